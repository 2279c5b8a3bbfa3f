"""Rule: replace table-function calls with named placeholders the adapter binds."""

from __future__ import annotations

import itertools

from sqlglot import exp

from udfs import TABLE_FUNCTIONS

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


def bind_table_functions(expression: exp.Expression) -> exp.Expression:
    """Replace each call of a lancesql table function with a placeholder table.

    Neither DuckDB's Python API nor DataFusion (for arguments that are not literals)
    can call Python table functions from SQL, so lancesql calls them itself: the
    placeholder keeps the call in ``meta``, and the engine adapter registers the
    call's result (a Lance dataset or an Arrow table) under the placeholder's name.

    >>> import sqlglot
    >>> tree = bind_table_functions(sqlglot.parse_one("SELECT * FROM lance_scan('t', 2) AS t", read="duckdb"))
    >>> tree.sql("duckdb"), tree.find(exp.Table).meta[META_KEY][0]
    ('SELECT * FROM __lancesql_0 AS t', 'lance_scan')
    """
    counter = itertools.count()
    for table in list(expression.find_all(exp.Table)):
        func = table.this
        if not isinstance(func, exp.Func):
            continue
        name, args, kwargs = call_parts(func)
        if name not in TABLE_FUNCTIONS:
            continue
        placeholder = exp.Table(
            this=exp.to_identifier(f"__lancesql_{next(counter)}"),
            alias=table.args.get("alias"),
            joins=table.args.get("joins"),
        )
        placeholder.meta.update(table.meta)
        placeholder.meta[META_KEY] = (name, args, kwargs)
        table.replace(placeholder)
    return expression
