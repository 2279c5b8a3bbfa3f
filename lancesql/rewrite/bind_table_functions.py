"""Rule: replace table-function calls with named placeholders the adapter binds."""

from __future__ import annotations

import itertools
from collections.abc import Collection

from sqlglot import exp

from lancesql.rewrite.scopes import table_references

#: Key under ``Table.meta`` where the call a placeholder stands for is kept.
META_KEY = "lancesql_call"


def call_parts(func: exp.Func) -> tuple[str, list[exp.Expression], dict[str, exp.Expression]]:
    """A table-function call's name, positional and named arguments, in the order written.

    sqlglot reads ``vector_search`` as BigQuery's ``VECTOR_SEARCH`` and puts its
    arguments into BigQuery's slots; they are taken back out in order here.

    >>> import sqlglot
    >>> sql = "SELECT * FROM vector_search('t', 'e', [1], 5, filter => 'a = 1')"
    >>> f = sqlglot.parse_one(sql, read="duckdb")
    >>> name, args, kwargs = call_parts(f.find(exp.Table).this)
    >>> name, [a.sql("duckdb") for a in args], {k: v.sql("duckdb") for k, v in kwargs.items()}
    ('vector_search', ["'t'", "'e'", '[1]', '5'], {'filter': "'a = 1'"})
    """
    if isinstance(func, exp.Anonymous):
        name, values = str(func.this), list(func.expressions)
    else:
        name = func.sql_name().lower()
        values = []
        for value in func.args.values():
            values.extend(value if isinstance(value, list) else [value])
    args: list[exp.Expression] = []
    kwargs: dict[str, exp.Expression] = {}
    for value in values:
        if value is None:
            continue
        if isinstance(value, (exp.Kwarg, exp.PropertyEQ)):
            kwargs[value.this.name.lower()] = value.expression
        else:
            args.append(value)
    return name.lower(), args, kwargs


def _default_alias(name: str, args: list[exp.Expression]) -> str:
    """The name an unaliased call goes by: a scanned dataset's short name, else the function's."""
    if name == "lance_scan" and args and isinstance(args[0], exp.Literal) and args[0].is_string:
        return args[0].name.rstrip("/").rsplit("/", 1)[-1].removesuffix(".lance")
    return name


def _alias(name: str) -> exp.TableAlias:
    return exp.TableAlias(this=exp.to_identifier(name))


def bind_table_functions(expression: exp.Expression, functions: Collection[str]) -> exp.Expression:
    """Replace each call of a table function named in ``functions`` with a placeholder table.

    Neither DuckDB's Python API nor DataFusion (for arguments that are not literals)
    can call Python table functions from SQL, so lancesql calls them itself: the
    placeholder keeps the call in ``meta``, and the engine adapter registers the
    call's result (a Lance dataset or an Arrow table) under the placeholder's name.

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("SELECT * FROM lance_scan('t', 2) AS t", read="duckdb")
    >>> tree = bind_table_functions(tree, {"lance_scan"})
    >>> tree.sql("duckdb"), tree.find(exp.Table).meta[META_KEY][0]
    ('SELECT * FROM __lancesql_0 AS t', 'lance_scan')

    A call with no alias is named as the engine would name it, never by the
    placeholder (DataFusion shows a table's name in unaliased column names such as
    ``count(t.k)``): ``lance_scan('d/x.lance')`` by its dataset, ``x``, as ``FROM
    'd/x.lance'`` is, and any other function by its own name.

    >>> sql = "SELECT count(k) FROM lance_scan('d/x.lance', 2), vector_search('t', 'e', [1], 5)"
    >>> tree = sqlglot.parse_one(sql, read="duckdb")
    >>> bind_table_functions(tree, {"lance_scan", "vector_search"}).sql("duckdb")
    'SELECT COUNT(k) FROM __lancesql_0 AS x, __lancesql_1 AS vector_search'
    """
    if not any(isinstance(t.this, exp.Func) for t in expression.find_all(exp.Table)):
        return expression  # no call: the scopes need not be read
    counter = itertools.count()
    for table in table_references(expression):
        func = table.this
        if not isinstance(func, exp.Func):
            continue
        name, args, kwargs = call_parts(func)
        if name not in functions:
            continue
        placeholder = exp.Table(
            this=exp.to_identifier(f"__lancesql_{next(counter)}"),
            alias=table.args.get("alias") or _alias(_default_alias(name, args)),
            joins=table.args.get("joins"),
        )
        placeholder.meta.update(table.meta)
        placeholder.meta[META_KEY] = (name, args, kwargs)
        table.replace(placeholder)
    return expression
