"""``SHOW TABLES`` and ``DESCRIBE t`` (at any version)."""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from lancesql.context import Result, StatementContext
from lancesql.query import all_views, run_query, sources
from lancesql.statements.base import statement
from lancesql.views import stored


@statement(exp.Show)
def show_tables(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``SHOW TABLES``: the Lance datasets under the root and the views, with their kind
    (``table``, ``view``, or ``temporary view`` for this connection's TEMP views)."""
    if str(tree.this).upper() not in ("TABLES", "ALL TABLES"):
        return None
    kinds = dict.fromkeys(ctx.catalog.table_names(), "table")
    kinds.update(dict.fromkeys(stored(ctx.catalog), "view"))
    kinds.update(dict.fromkeys(ctx.connection.temp_views, "temporary view"))
    names = sorted(kinds)
    return Result.of(
        pa.table(
            {
                "name": pa.array(names, pa.string()),
                "kind": pa.array([kinds[n] for n in names], pa.string()),
            }
        )
    )


@statement(exp.Describe)
def describe(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``DESCRIBE t [AT (VERSION => n)]`` and ``DESCRIBE SELECT ...``: names and types.

    The types are Arrow's, as Lance stores them (``fixed_size_list<item: float>[512]``),
    so that a Lance schema reads the same on both engines.
    """
    target = tree.this
    if isinstance(target, exp.Table) and not target.this.quoted and target.name in all_views(ctx):
        target = exp.select("*").from_(target.copy())  # a view: the schema its query gives
    if isinstance(target, exp.Table):
        # A table's schema is Lance's own, whatever types the engine would map it to.
        schema = sources(ctx, exp.select("*").from_(target.copy()))[0].schema
    else:
        result = run_query(ctx, exp.select("*").from_(target.copy().subquery("q")).limit(0))
        assert result.reader is not None
        schema = result.reader.schema
        result.reader.close()
    return Result.of(
        pa.table(
            {
                "column_name": pa.array([f.name for f in schema], pa.string()),
                "column_type": pa.array([str(f.type) for f in schema], pa.string()),
                "null": pa.array(["YES" if f.nullable else "NO" for f in schema], pa.string()),
            }
        )
    )
