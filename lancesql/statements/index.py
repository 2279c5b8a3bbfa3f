"""``CREATE INDEX`` and ``DROP INDEX`` on Lance tables.

``CREATE INDEX [name] ON t USING IVF_PQ (image_emb) WITH (metric = 'cosine', ...)``
builds a vector index; ``USING BTREE | BITMAP | LABEL_LIST | INVERTED | ...`` a scalar
one. Without ``USING``, a fixed-size-list column gets IVF_PQ and any other a BTREE.
Each build commits one version. Builds report progress to the ``lancesql`` logger,
and to stderr when it is a terminal, because a large IVF_PQ build takes minutes.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import pyarrow as pa
from sqlglot import exp

from lancesql.context import Result, StatementContext
from lancesql.errors import IntegrityError, ProgrammingError, lance_error
from lancesql.executors import executor_for
from lancesql.statements.base import statement
from lancesql.writes import committed, open_target

log = logging.getLogger("lancesql")

@statement(exp.Create)
def create_index(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``CREATE INDEX [IF NOT EXISTS] [name] ON t [USING kind] (col) [WITH (k = v, ...)]``."""
    if str(tree.args.get("kind", "")).upper() != "INDEX":
        return None
    index = tree.this
    params = index.args.get("params")
    uri, ds = open_target(ctx, index.args["table"])
    table = ctx.catalog.name_of(uri)
    columns = [c.this if isinstance(c, exp.Ordered) else c for c in (params.args.get("columns") or [])]
    if len(columns) != 1:
        raise ProgrammingError(f"CREATE INDEX ON {table} takes one column: USING BTREE (col)")
    column = columns[0].name
    if column not in ds.schema.names:
        raise ProgrammingError(f"{table} has no column {column!r} (columns: {', '.join(ds.schema.names)})")
    field = ds.schema.field(column)
    using = params.args.get("using")
    kind = (using.name if using is not None else _default_kind(field)).upper()
    options = {
        p.this.name.lower(): _value(p.args.get("value")) for p in params.args.get("with_storage") or []
    }
    name = index.name or None
    existing = {i.name for i in ds.describe_indices()}
    if name and name in existing:
        if tree.args.get("exists"):
            return Result.done()
        if not options.get("replace"):
            raise IntegrityError(
                f"index {name!r} already exists on {table}: DROP INDEX {name} ON {table}, or "
                "add WITH (replace = true)"
            )
    started = time.monotonic()
    executor = executor_for(ctx)
    where = "" if executor.name == "local" else f" on {executor.name}"
    _note(f"building {kind} index on {table}.{column} ({ds.count_rows()} rows){where}...")
    try:
        executor.create_index(ctx, ds, column, kind, name, options)
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise lance_error(exc, f"CREATE INDEX on {table}.{column} failed") from exc
    _note(f"built {kind} index on {table}.{column} in {time.monotonic() - started:.1f} s")
    committed(ctx, uri, ds)
    return Result.done()


def _default_kind(field: pa.Field) -> str:
    if pa.types.is_fixed_size_list(field.type):
        return "IVF_PQ"
    return "BTREE"


def _value(node: exp.Expression | None) -> Any:
    if node is None:
        return True
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.name
        text = node.name
        return float(text) if "." in text or "e" in text.lower() else int(text)
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, (exp.Column, exp.Identifier, exp.Var)):
        return node.name
    raise ProgrammingError(f"index options take literal values, not {node.sql()}")


def _note(message: str) -> None:
    log.info(message)
    if sys.stderr.isatty():
        print(message, file=sys.stderr, flush=True)


@statement(exp.Drop)
def drop_index(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``DROP INDEX [IF EXISTS] name ON t``."""
    if str(tree.args.get("kind", "")).upper() != "INDEX":
        return None
    on = tree.args.get("cluster")
    if not isinstance(on, exp.OnProperty):
        raise ProgrammingError("say which table the index is on: DROP INDEX name ON table")
    uri, ds = open_target(ctx, on.this)
    table = ctx.catalog.name_of(uri)
    name = (tree.args.get("tables") or [exp.to_identifier("")])[0].name
    existing = sorted(i.name for i in ds.describe_indices())
    if name not in existing:
        if tree.args.get("exists"):
            return Result.done()
        raise ProgrammingError(
            f"{table} has no index {name!r} (indices: {', '.join(existing) or 'none'}; "
            f"SHOW INDEXES FROM {table})"
        )
    try:
        ds.drop_index(name)
    except (OSError, ValueError) as exc:
        raise lance_error(exc, f"DROP INDEX {name} failed") from exc
    committed(ctx, uri, ds)
    return Result.done()
