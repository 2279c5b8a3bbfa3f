"""Rule: turn each Lance table named in a query into a ``lance_scan`` call."""

from __future__ import annotations

from sqlglot import exp

from lancesql.rewrite.scopes import cte_references, table_references


def qualify_tables(expression: exp.Expression) -> exp.Expression:
    """Rewrite ``FROM train`` and ``FROM 'path/x.lance'`` into ``lance_scan(...)``.

    Every unqualified table name that is not a CTE (one visible where the name stands,
    resolved by scope) is a Lance table under the root;
    a quoted path or URI is a dataset anywhere. Qualified names (``information_schema.tables``)
    belong to the engine and are left alone. The alias keeps the name the query uses.

    >>> import sqlglot
    >>> sql = "WITH c AS (SELECT 1) SELECT * FROM train, c, 'd/x.lance', information_schema.tables"
    >>> qualify_tables(sqlglot.parse_one(sql, read="duckdb")).sql("duckdb")
    "WITH c AS (SELECT 1) SELECT * FROM LANCE_SCAN('train') AS train, c, \
LANCE_SCAN('d/x.lance') AS x, information_schema.tables"
    >>> sql = "SELECT * FROM t JOIN (WITH t AS (SELECT 1 AS id) SELECT id FROM t) AS s USING (id)"
    >>> qualify_tables(sqlglot.parse_one(sql, read="duckdb")).sql("duckdb")
    "SELECT * FROM LANCE_SCAN('t') AS t JOIN (WITH t AS (SELECT 1 AS id) SELECT id FROM t) AS s USING (id)"
    """
    if not any(map(_named, expression.find_all(exp.Table))):
        return expression  # only table functions: the scopes need not be read
    ctes = cte_references(expression)
    for table in table_references(expression):
        if not _named(table):
            continue  # a table function, or a table of the engine's own schemas
        name = table.name
        if id(table) in ctes:
            continue
        if _is_target(table):
            continue
        short = name.rstrip("/").rsplit("/", 1)[-1].removesuffix(".lance")
        alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(short))
        call = exp.Anonymous(this="lance_scan", expressions=[exp.Literal.string(name)])
        table.replace(exp.Table(this=call, alias=alias, joins=table.args.get("joins")))
    return expression


def _named(table: exp.Table) -> bool:
    """Whether ``table`` is an unqualified name (a Lance table, or a CTE)."""
    qualified = table.args.get("db") or table.args.get("catalog")
    return isinstance(table.this, exp.Identifier) and not qualified


def _is_target(table: exp.Table) -> bool:
    """Tables a statement writes to or describes are the statement's business, not the scan's."""
    parent = table.parent
    statements = (exp.Create, exp.Insert, exp.Delete, exp.Update, exp.Describe, exp.Alter, exp.Drop)
    if isinstance(parent, statements):
        return parent.this is table
    return isinstance(parent, exp.Schema) and isinstance(parent.parent, (exp.Create, exp.Insert))
