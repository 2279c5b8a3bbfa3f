"""Rule: push a plain scan's LIMIT (and its filter) into Lance."""

from __future__ import annotations

from sqlglot import exp

from lancesql.fast_path import analyse
from lancesql.lance_sql import to_lance

#: What a select may have for its scan to take the LIMIT (a CTE, INTO or SAMPLE of the
#: select leaves its own scan's rows as they are).
_ACCEPTS = ("limit", "offset", "with_", "with", "into", "sample", "prewhere")


def push_limit(expression: exp.Expression) -> exp.Expression:
    """Give ``lance_scan`` the LIMIT, filter and columns of a plain scan over it.

    DuckDB reads a Lance dataset's fragments in parallel and stops only after the
    LIMIT is met, having read far more than it needed; Lance itself stops at once. A
    SELECT over one ``lance_scan`` with no ORDER BY, grouping, aggregate, window, join or
    DISTINCT, whose WHERE Lance evaluates alike (see :mod:`lancesql.lance_sql`), can
    hand all three to Lance. The WHERE stays in the query too, so the result is the
    same whatever Lance returns.

    >>> import sqlglot
    >>> sql = "SELECT id FROM LANCE_SCAN('t') AS t WHERE label = 3 LIMIT 5"
    >>> push_limit(sqlglot.parse_one(sql, read="duckdb")).sql("duckdb")
    "SELECT id FROM LANCE_SCAN('t', columns => ['id', 'label'], filter => 'label = 3', \
limit => 5) AS t WHERE label = 3 LIMIT 5"
    >>> sql = "SELECT label, count(*) FROM LANCE_SCAN('t') AS t GROUP BY label LIMIT 5"
    >>> push_limit(sqlglot.parse_one(sql, read="duckdb")).sql("duckdb")
    "SELECT label, COUNT(*) FROM LANCE_SCAN('t') AS t GROUP BY label LIMIT 5"
    """
    for select in list(expression.find_all(exp.Select)):
        if select.args.get("limit") is None:
            continue  # nothing to push (and no need to analyse it)
        fast = analyse(select)
        if fast is None or fast.limit is None or fast.source != "lance_scan" or not fast.alone(_ACCEPTS):
            continue
        if any(e.find(exp.AggFunc, exp.Window, exp.Subquery, exp.Select) for e in fast.items):
            continue
        lance_filter = to_lance(fast.where) if fast.where is not None else None
        if fast.where is not None and lance_filter is None:
            continue  # the engine must evaluate it, so Lance cannot stop at the LIMIT
        call = fast.table.this
        if any(isinstance(a, exp.Kwarg) for a in call.expressions):
            continue
        if not any(e.is_star for e in fast.items):
            listed = exp.Array(expressions=[exp.Literal.string(n) for n in fast.named])
            call.append("expressions", _kwarg("columns", listed))
        if lance_filter is not None:
            call.append("expressions", _kwarg("filter", exp.Literal.string(lance_filter)))
        call.append("expressions", _kwarg("limit", exp.Literal.number(fast.limit + (fast.offset or 0))))
    return expression


def _kwarg(name: str, value: exp.Expression) -> exp.Kwarg:
    return exp.Kwarg(this=exp.var(name), expression=value)
