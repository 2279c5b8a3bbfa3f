"""Expressions Lance can evaluate itself, translated into Lance's SQL: the one place.

Lance evaluates SQL expressions natively in ``add_columns({"c": "expr"})``,
``delete(where)``, ``update({"c": "expr"}, where)`` and every scan or search filter: no
other column is read or rewritten, nothing crosses into Python, and a filter is
answered by the scalar indices. Lance's SQL is DataFusion's, which differs from DuckDB's
in places (``/`` on integers truncates; ``CASE`` is refused; ``"x"`` is a string, not a
column), so only expressions built from a small set of forms that mean the same in both
are handed to Lance; anything else (UDFs such as ``embed_image``, subqueries, ``CASE``,
division) is computed by the engine instead. :func:`to_lance` returns ``None`` for those.

Three callers share it: ALTER/DELETE/UPDATE (:func:`to_lance`), a search's prefilter
(:func:`render`, which must run in Lance and says why when it cannot), and the rewrite
rules that move a WHERE into Lance (:func:`is_lance_predicate`, ``push_limit``).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB

from lancesql.errors import DataError, ProgrammingError


class _LanceSQL(DuckDB):
    """DuckDB's SQL with Lance's identifier quotes: Lance reads ``"x"`` in a filter as
    the string 'x', and ```x``` as the column; and with Lance's type names (DuckDB
    writes ``FLOAT`` as ``REAL``, which Lance refuses)."""

    class Generator(DuckDB.Generator):  # type: ignore[misc,valid-type]
        TYPE_MAPPING: ClassVar[dict[Any, str]] = {
            **DuckDB.Generator.TYPE_MAPPING,
            exp.DataType.Type.FLOAT: "FLOAT",
        }


_LanceSQL.IDENTIFIER_START = "`"
_LanceSQL.IDENTIFIER_END = "`"
_DIALECT = _LanceSQL()
#: One generator per thread: building one costs more than generating a short expression.
_LOCAL = threading.local()


def _generate(tree: exp.Expression) -> str:
    generator = getattr(_LOCAL, "generator", None)
    if generator is None:
        generator = _LOCAL.generator = _DIALECT.generator()
    return str(generator.generate(tree))


#: Node types whose meaning is the same in DuckDB and in Lance's DataFusion.
_SAFE: tuple[type[exp.Expression], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Neg,
    exp.Not,
    exp.And,
    exp.Or,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Mod,
    exp.Like,
    exp.DPipe,
    exp.Coalesce,
    exp.Abs,
    exp.Lower,
    exp.Upper,
    exp.Cast,
    exp.DataType,
    exp.Tuple,
)

#: Casts Lance's SQL spells the same way.
_CASTS = {
    exp.DataType.Type.BOOLEAN,
    exp.DataType.Type.TINYINT,
    exp.DataType.Type.SMALLINT,
    exp.DataType.Type.INT,
    exp.DataType.Type.BIGINT,
    exp.DataType.Type.FLOAT,
    exp.DataType.Type.DOUBLE,
    exp.DataType.Type.VARCHAR,
    exp.DataType.Type.TEXT,
}


def to_lance(expression: exp.Expression, params: Sequence[Any] = ()) -> str | None:
    """Lance's SQL for ``expression``, or None when the engine must compute it.

    Bound ``?`` parameters (``$n``) are inlined as literals when they are plain values.

    >>> import sqlglot
    >>> def t(sql, *p):
    ...     return to_lance(sqlglot.parse_one(sql, read="duckdb"), p)
    >>> t("label IN (0, 3, 6) AND NOT name LIKE 'a%'")
    "label IN (0, 3, 6) AND NOT name LIKE 'a%'"
    >>> t("id = $1", "it's")
    "id = 'it''s'"
    >>> t('"Id" > 2'), t("f = CAST('NaN' AS FLOAT)")
    ('`Id` > 2', "f = CAST('NaN' AS FLOAT)")
    >>> t("label / 2"), t("embed_image(image)"), t("CASE WHEN a THEN 1 END")
    (None, None, None)
    """
    tree = expression.copy()
    for node in list(tree.walk()):
        if isinstance(node, exp.Placeholder):
            literal = _literal(node, params)
            if literal is None:
                return None
            if node is tree:
                tree = literal
            else:
                node.replace(literal)
        elif not _safe(node):
            return None
        elif isinstance(node, exp.Column) and node.table:
            # ``t.col``: Lance knows one table only and reads the bare name.
            node.set("table", None)
    return _generate(tree)


def _safe(node: Any) -> bool:
    if not isinstance(node, _SAFE):
        return False
    if isinstance(node, exp.Cast):
        return node.to.this in _CASTS and not node.args.get("safe")
    if isinstance(node, exp.In):
        return not (node.args.get("query") or node.args.get("unnest"))
    return True


def _literal(node: exp.Placeholder, params: Sequence[Any]) -> exp.Expression | None:
    try:
        value = params[int(node.name) - 1]
    except (ValueError, IndexError):
        return None
    return literal(value)


def literal(value: Any) -> exp.Expression | None:
    """A Python value as a SQL literal, or None for a value with no literal form.

    >>> literal(3).sql(), literal(-2.5).sql(), literal("a").sql(), literal(None).sql(), literal(True).sql()
    ('3', '-2.5', "'a'", 'NULL', 'TRUE')
    """
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN and infinities have no literal in Lance's SQL: the engine runs it
    if isinstance(value, int) and value == -(2**63):
        # Lance reads -9223372036854775808 as minus a literal too large for BIGINT (a float).
        largest = exp.Neg(this=exp.Literal.number(2**63 - 1))
        return exp.paren(exp.Sub(this=largest, expression=exp.Literal.number(1)))
    if isinstance(value, (int, float)):
        number = exp.Literal.number(abs(value))
        return exp.Neg(this=number) if value < 0 else number
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, dt.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if hasattr(value, "item"):  # numpy scalars
        return literal(value.item())
    return None


#: Expression shapes a table function takes as a predicate (rendered), not a value.
PREDICATE_SHAPES = (exp.Predicate, exp.Connector, exp.Not, exp.Paren, exp.Boolean)


def is_lance_predicate(node: exp.Expression, alias: str) -> bool:
    """Whether ``node`` can run in Lance as a filter on the table called ``alias``.

    >>> import sqlglot
    >>> is_lance_predicate(sqlglot.parse_one("t.label IN (1, 2) AND name LIKE 'a%'"), "t")
    True
    >>> is_lance_predicate(sqlglot.parse_one("my_udf(name) = 'a'"), "t")
    False
    >>> is_lance_predicate(sqlglot.parse_one("o.label = 1"), "t")
    False
    """
    for sub in node.walk():
        if not (_safe(sub) or isinstance(sub, exp.Placeholder)):
            return False
        if isinstance(sub, exp.Column) and (sub.args.get("db") or sub.table not in ("", alias)):
            return False
    return True


def render(node: exp.Expression, value_of: Callable[[exp.Placeholder], Any]) -> str:
    """``node`` as a filter in Lance's SQL, each parameter replaced by its value.

    >>> import sqlglot
    >>> tree = sqlglot.parse_one('t.label = $1 AND NOT "Name" IS NULL', read="duckdb")
    >>> render(tree, lambda p: "x'y")
    "label = 'x''y' AND NOT `Name` IS NULL"
    """
    tables = {c.table for c in node.find_all(exp.Column) if c.table}
    alias = tables.pop() if len(tables) == 1 else ""
    if not is_lance_predicate(node, alias):
        raise ProgrammingError(
            f"the filter {node.sql('duckdb')!r} cannot run inside Lance: use comparisons, "
            "AND/OR/NOT, IN, BETWEEN, IS NULL, LIKE and arithmetic on the table's columns, "
            "or write it as a string in Lance's filter syntax"
        )
    tree = node.copy()
    for placeholder in list(tree.find_all(exp.Placeholder)):
        value = value_of(placeholder)
        replacement = literal(value)
        if replacement is None:
            raise DataError(f"a parameter of type {type(value).__name__} cannot be used in a filter")
        if placeholder is tree:
            tree = replacement
        else:
            placeholder.replace(replacement)
    rendered = to_lance(tree)
    if rendered is None:  # a parameter whose literal Lance's SQL does not share (a date)
        raise DataError(
            f"the filter {node.sql('duckdb')!r} cannot run inside Lance with these parameter "
            "values: bind numbers, strings or booleans, or write the value in the filter"
        )
    return rendered


def quote(name: str) -> str:
    """A column name as Lance's SQL reads it.

    >>> quote("label"), quote("my col")
    ('label', '`my col`')
    """
    return _generate(exp.column(name, quoted=not name.isidentifier() or name.lower() != name))


def columns_of(expression: exp.Expression) -> list[str]:
    """The names of the columns ``expression`` reads, in order of first mention.

    >>> import sqlglot
    >>> columns_of(sqlglot.parse_one("f(a, t.b) + a", read="duckdb"))
    ['a', 'b']
    """
    seen: dict[str, None] = {}
    for column in expression.find_all(exp.Column):
        seen.setdefault(column.name, None)
    return list(seen)
