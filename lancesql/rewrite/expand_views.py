"""Rule: replace each view named in a query by its query, as a CTE would be."""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from lancesql.errors import ProgrammingError
from lancesql.rewrite.scopes import cte_references, table_references

#: How deep views may name views before lancesql takes it for a cycle.
MAX_DEPTH = 32


def expand_views(expression: exp.Expression, views: Mapping[str, exp.Query]) -> exp.Expression:
    """Replace each table name that is a view (and not a CTE visible there) with the view's
    query as a subquery under the name the query uses.

    The view's SQL is expanded before every other rule, so time travel, search and
    pushdown work inside it as in a query written out in full. Views may name views.

    >>> import sqlglot
    >>> views = {"threes": sqlglot.parse_one("SELECT id FROM train WHERE label = 3")}
    >>> sql = "SELECT count(*) FROM threes JOIN train AS t USING (id)"
    >>> expand_views(sqlglot.parse_one(sql), views).sql()
    'SELECT COUNT(*) FROM (SELECT id FROM train WHERE label = 3) AS threes JOIN train AS t USING (id)'
    >>> sql = "WITH threes AS (SELECT 1 AS id) SELECT * FROM threes"
    >>> expand_views(sqlglot.parse_one(sql), views).sql()
    'WITH threes AS (SELECT 1 AS id) SELECT * FROM threes'
    """
    if not views:
        return expression
    for _ in range(MAX_DEPTH):
        ctes = cte_references(expression)
        found = False
        for table in table_references(expression):
            if not _is_view(table, views, ctes):
                continue
            found = True
            alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name))
            subquery = exp.Subquery(this=views[table.name].copy(), alias=alias.copy())
            if table.args.get("joins"):
                subquery.set("joins", table.args["joins"])
            if table is expression:
                return subquery
            table.replace(subquery)
        if not found:
            return expression
    raise ProgrammingError(f"views nest more than {MAX_DEPTH} deep: does a view name itself?")


def _is_view(table: exp.Table, views: Mapping[str, exp.Query], ctes: set[int]) -> bool:
    if not isinstance(table.this, exp.Identifier) or table.this.quoted or id(table) in ctes:
        return False
    if table.args.get("db") or table.args.get("catalog") or table.name not in views:
        return False
    if table.args.get("when") or table.args.get("version"):
        raise ProgrammingError(f"{table.name!r} is a view: views have no versions; time travel its tables")
    parent = table.parent
    statements = (exp.Create, exp.Insert, exp.Delete, exp.Update, exp.Alter, exp.Drop, exp.Describe)
    return not (isinstance(parent, statements) and parent.this is table)
