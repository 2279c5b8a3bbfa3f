"""SQL predicates as Lance filters.

A search's prefilter runs inside Lance (answered by its BTREE/BITMAP indices), so it
must be written in Lance's filter syntax, not handed to the engine. lancesql accepts a
predicate there in two forms: a string already in that syntax (``filter => 'label = 3'``),
or a SQL boolean expression (``filter => label = ?``, and the WHERE clause the
``order_by_distance`` rule moves into a search), which is rendered here with its
parameters bound as literals. Only the plain shapes both languages read alike are
accepted: comparisons, AND/OR/NOT, IN, BETWEEN, IS [NOT] NULL, LIKE, over columns of
the searched table and literal values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlglot import exp

from lancesql.errors import DataError, ProgrammingError

#: Nodes a Lance filter may contain.
_ALLOWED = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Placeholder,
    exp.Neg,
    exp.Paren,
    exp.And,
    exp.Or,
    exp.Not,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.In,
    exp.Between,
    exp.Is,
    exp.Like,
    exp.Tuple,
)

#: Expression shapes taken as a predicate (rendered), rather than a value (evaluated).
PREDICATE_SHAPES = (exp.Predicate, exp.Connector, exp.Not, exp.Paren, exp.Boolean)


def is_lance_predicate(node: exp.Expression, alias: str) -> bool:
    """Whether ``node`` can run in Lance as a filter on the table called ``alias``.

    >>> import sqlglot
    >>> is_lance_predicate(sqlglot.parse_one("t.label IN (1, 2) AND name LIKE 'a%'"), "t")
    True
    >>> is_lance_predicate(sqlglot.parse_one("lower(name) = 'a'"), "t")
    False
    >>> is_lance_predicate(sqlglot.parse_one("o.label = 1"), "t")
    False
    """
    for sub in node.walk():
        if not isinstance(sub, _ALLOWED):
            return False
        if isinstance(sub, exp.Column) and (sub.args.get("db") or sub.table not in ("", alias)):
            return False
    return True


def render(node: exp.Expression, value_of: Callable[[exp.Placeholder], Any]) -> str:
    """``node`` in Lance's filter syntax, with each parameter replaced by its value.

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("t.label = $1 AND NOT name IS NULL", read="duckdb")
    >>> render(tree, lambda p: "x'y")
    "label = 'x''y' AND NOT name IS NULL"
    """
    alias = _alias_of(node)
    if not is_lance_predicate(node, alias):
        raise ProgrammingError(
            f"the filter {node.sql('duckdb')!r} cannot run inside Lance: use comparisons, "
            "AND/OR/NOT, IN, BETWEEN, IS NULL and LIKE on the table's columns, or write it "
            "as a string in Lance's filter syntax"
        )
    tree = node.copy()
    for column in list(tree.find_all(exp.Column)):
        column.set("table", None)
    for placeholder in list(tree.find_all(exp.Placeholder)):
        placeholder.replace(literal(value_of(placeholder)))
    return tree.sql(dialect="duckdb")


def literal(value: Any) -> exp.Expression:
    """A Python value as a SQL literal.

    >>> literal(3).sql(), literal("a").sql(), literal(None).sql(), literal(True).sql()
    ('3', "'a'", 'NULL', 'TRUE')
    """
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        number = exp.Literal.number(abs(value))
        return exp.Neg(this=number) if value < 0 else number
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, dt.datetime):
        return exp.cast(
            exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.build("TIMESTAMP")
        )
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))
    if hasattr(value, "item"):  # numpy scalars
        return literal(value.item())
    raise DataError(f"a parameter of type {type(value).__name__} cannot be used in a search filter")


def _alias_of(node: exp.Expression) -> str:
    tables = {c.table for c in node.find_all(exp.Column) if c.table}
    return tables.pop() if len(tables) == 1 else ""
