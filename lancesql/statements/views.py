"""``CREATE [OR REPLACE] [TEMP] VIEW v AS SELECT ...`` and ``DROP VIEW [IF EXISTS] v``.

A TEMP view belongs to the connection; any other view is stored under the root (see
:mod:`lancesql.views`) and every connection on that root sees it, on either engine. A
view's query is expanded into each query that names it before the rewriter runs.
"""

from __future__ import annotations

from sqlglot import exp

from lancesql import views
from lancesql.context import Result, StatementContext
from lancesql.errors import NotSupportedError, ProgrammingError
from lancesql.parse import DIALECT
from lancesql.query import run_query
from lancesql.statements.base import statement
from lancesql.writes import check_writable


def _name(target: exp.Expression | None) -> str:
    table = target.this if isinstance(target, exp.Schema) else target
    if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
        raise ProgrammingError("a view needs a plain name: CREATE VIEW v AS SELECT ...")
    if table.args.get("db") or table.args.get("catalog") or (table.this.quoted and "/" in table.name):
        raise ProgrammingError(f"{table.sql()!r}: a view needs a plain name (no schema, no path)")
    if table.name == views.STORE:
        raise ProgrammingError(f"{views.STORE!r} is reserved: it holds the root's views")
    return table.name


@statement(exp.Create)
def create_view(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """Create (or replace) a view, after checking that its query runs."""
    if str(tree.args.get("kind", "")).upper() != "VIEW":
        return None
    name = _name(tree.this)
    query = tree.expression
    if not isinstance(query, exp.Query):
        raise ProgrammingError("CREATE VIEW needs a query: CREATE VIEW v AS SELECT ...")
    if isinstance(tree.this, exp.Schema) and tree.this.expressions:
        raise NotSupportedError("CREATE VIEW v (columns) AS ...: name the columns in the SELECT (AS name)")
    if query.find(exp.Placeholder):
        raise ProgrammingError("a view cannot hold ? parameters: write the values in its SQL")
    temporary = tree.find(exp.TemporaryProperty) is not None
    if ctx.catalog.exists(ctx.catalog.uri_for(name)):
        raise ProgrammingError(f"{name!r} is a table under the root: give the view another name")
    stored = views.stored(ctx.catalog)
    existing = name in (ctx.connection.temp_views if temporary else stored)
    if existing and tree.args.get("exists"):
        return Result.done()
    if existing and not tree.args.get("replace"):
        raise ProgrammingError(
            f"view {name!r} already exists: use CREATE OR REPLACE VIEW, or DROP VIEW {name}"
        )
    sql = query.sql(dialect=DIALECT)
    # the view must run now: name its tables and columns right (and not itself)
    probe = exp.select("*").from_(query.copy().subquery("_view")).limit(0)
    result = run_query(ctx, probe)
    if result.reader is not None:
        result.reader.close()
    if temporary:
        ctx.connection.temp_views[name] = sql
    else:
        check_writable(ctx, ctx.catalog.uri_for(views.STORE))
        views.store(ctx.catalog, {**stored, name: sql})
    return Result.done()


@statement(exp.Drop)
def drop_view(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """Drop a view: this connection's TEMP view of that name first, else the stored one."""
    if str(tree.args.get("kind", "")).upper() != "VIEW":
        return None
    for target in tree.args.get("tables") or [tree.this]:
        name = _name(target)
        if name in ctx.connection.temp_views:
            del ctx.connection.temp_views[name]
            continue
        stored = views.stored(ctx.catalog)
        if name in stored:
            check_writable(ctx, ctx.catalog.uri_for(views.STORE))
            del stored[name]
            views.store(ctx.catalog, stored)
        elif not tree.args.get("exists"):
            hint = " (it is a table: DROP TABLE)" if ctx.catalog.exists(ctx.catalog.uri_for(name)) else ""
            raise ProgrammingError(f"unknown view {name!r}{hint}: SHOW TABLES lists the views")
    return Result.done()
