"""Rule: turn time travel on a table into a ``lance_scan`` call at that version."""

from __future__ import annotations

from sqlglot import exp

from lancesql.parse import BRANCH_MARK
from lancesql.rewrite.scopes import table_references


def time_travel(expression: exp.Expression) -> exp.Expression:
    """Rewrite ``t AT (VERSION => n)``, ``AT (TIMESTAMP => ...)``, ``VERSION AS OF``
    and ``TIMESTAMP AS OF`` into ``lance_scan('t', <version>) AS t``.

    DuckDB parses ``AT (...)`` but refuses it for tables that are not in a lake
    catalog, and DataFusion has no time travel at all, so neither engine may see it.

    >>> import sqlglot
    >>> sql = "SELECT * FROM t AT (VERSION => 3) JOIN t VERSION AS OF 'v1' AS o USING (id)"
    >>> time_travel(sqlglot.parse_one(sql, read="duckdb")).sql("duckdb")
    "SELECT * FROM LANCE_SCAN('t', 3) AS t JOIN LANCE_SCAN('t', 'v1') AS o USING (id)"
    >>> sql = "SELECT * FROM t AT (VERSION => __lancesql_branch('exp', 3))"
    >>> time_travel(sqlglot.parse_one(sql, read="duckdb")).sql("duckdb")
    "SELECT * FROM LANCE_SCAN('t', 3, 'exp') AS t"
    >>> sql = "SELECT * FROM t TIMESTAMP AS OF '2026-11-01 10:00'"
    >>> time_travel(sqlglot.parse_one(sql, read="duckdb")).sql("duckdb")
    "SELECT * FROM LANCE_SCAN('t', CAST('2026-11-01 10:00' AS TIMESTAMP)) AS t"
    """
    if not any(t.args.get("when") or t.args.get("version") for t in expression.find_all(exp.Table)):
        return expression  # no time travel: the scopes need not be read
    for table in table_references(expression):
        when = table.args.get("when")
        version = table.args.get("version")
        if isinstance(when, exp.HistoricalData):
            kind, value = str(when.args.get("kind", "")).upper(), when.expression
        elif isinstance(version, exp.Version):
            kind, value = str(version.this).upper(), version.expression
        else:
            continue
        if kind in ("TIMESTAMP", "TIMESTAMP_LTZ", "TIMESTAMP_NTZ") and not isinstance(value, exp.Cast):
            value = exp.cast(value, exp.DataType.build("TIMESTAMP"))
        name = table.name
        arguments = [exp.Literal.string(name), value.copy()]
        if isinstance(value, exp.Anonymous) and str(value.this).lower() == BRANCH_MARK:
            # AT (BRANCH => b [, VERSION => v]), as lancesql.parse carries it
            branch, *version = value.expressions
            at = version[0].copy() if version else exp.null()
            arguments = [exp.Literal.string(name), at, branch.copy()]
        call = exp.Anonymous(this="lance_scan", expressions=arguments)
        short = name.rstrip("/").rsplit("/", 1)[-1].removesuffix(".lance")
        alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(short))
        table.replace(exp.Table(this=call, alias=alias))
    return expression
