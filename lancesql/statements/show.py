"""``SHOW TABLES`` and ``DESCRIBE t`` (at any version)."""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from lancesql.context import Result, StatementContext
from lancesql.query import run_query, sources
from lancesql.statements.base import statement


@statement(exp.Show)
def show_tables(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``SHOW TABLES``: the Lance datasets under the root."""
    if str(tree.this).upper() not in ("TABLES", "ALL TABLES"):
        return None
    return Result.of(pa.table({"name": pa.array(ctx.catalog.table_names(), pa.string())}))


@statement(exp.Describe)
def describe(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``DESCRIBE t [AT (VERSION => n)]`` and ``DESCRIBE SELECT ...``: names and types.

    The types are Arrow's, as Lance stores them (``fixed_size_list<item: float>[512]``),
    so that a Lance schema reads the same on both engines.
    """
    target = tree.this
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
