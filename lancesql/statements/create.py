"""``CREATE TABLE ... AS SELECT``, ``CREATE TABLE t (cols)`` and ``DROP TABLE``.

A CTAS streams the engine's result batch by batch into ``lance.write_dataset``, so
memory does not grow with the result, and Lance commits the manifest last: a query that
fails part-way leaves no dataset (lancesql removes the data files it wrote). The target
is a table under the root, or any path or URI given as a quoted name, which is how a
subset of a read-only remote root is materialised locally. Datasets lancesql creates
have stable row ids, so ``lance_changes`` can follow rows through updates.

``CREATE OR REPLACE`` on an existing dataset commits a new version that replaces its
rows and schema (the old versions stay, as Delta and Iceberg keep theirs).
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any

import lance
import pyarrow as pa
from sqlglot import exp

from lancesql.arrow_types import arrow_type, storage_schema
from lancesql.catalog import SUFFIX, is_uri
from lancesql.context import Result, StatementContext
from lancesql.errors import NotSupportedError, ProgrammingError, lance_error
from lancesql.executors import executor_for
from lancesql.query import run_query
from lancesql.statements.base import statement
from lancesql.views import stored as stored_views
from lancesql.writes import Stream, check_writable, direct_scan, table_uri

log = logging.getLogger("lancesql")


@statement(exp.Create)
def create_table(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``CREATE [OR REPLACE] TABLE [IF NOT EXISTS] name|'path' AS SELECT ...`` and
    ``CREATE TABLE name (col TYPE, ...)``."""
    if str(tree.args.get("kind", "")).upper() != "TABLE":
        return None
    target = tree.this
    uri = table_uri(ctx, target)
    check_writable(ctx, uri)
    name = ctx.catalog.name_of(uri)
    exists = ctx.catalog.exists(uri)
    replace = bool(tree.args.get("replace"))
    if exists and tree.args.get("exists"):
        return Result.done()
    if exists and not replace:
        raise ProgrammingError(
            f"table {name!r} already exists: use CREATE OR REPLACE TABLE to write a new "
            f"version of it, or DROP TABLE {name} first"
        )
    if not is_uri(name) and name in {**stored_views(ctx.catalog), **ctx.connection.temp_views}:
        raise ProgrammingError(f"{name!r} is a view: give the table another name, or DROP VIEW {name} first")
    mode = "overwrite" if exists else "create"
    query = tree.expression
    if isinstance(query, exp.Query):
        if isinstance(target, exp.Schema):
            raise NotSupportedError(
                "CREATE TABLE t (cols) AS SELECT: drop the column list, or CAST in the SELECT"
            )
        rows = _write_query(ctx, uri, name, query, mode)
    elif isinstance(target, exp.Schema):
        schema = _schema(target)
        _write(ctx, uri, name, Stream(schema, iter([])), mode)
        rows = -1  # no rows written: PEP 249's rowcount is -1 for a statement without one
    else:
        raise ProgrammingError(f"CREATE TABLE {name} needs AS SELECT ... or a column list (id BIGINT, ...)")
    ctx.catalog.forget(uri)
    ctx.commits.append((uri, int(ctx.catalog.latest(uri).version)))
    return Result.done(rows)


def _schema(target: exp.Schema) -> pa.Schema:
    fields = []
    for column in target.expressions:
        if not isinstance(column, exp.ColumnDef) or not isinstance(column.args.get("kind"), exp.DataType):
            raise ProgrammingError(f"give each column a type: {column.sql(dialect='duckdb')}")
        nullable = not any(
            isinstance(c.args.get("kind"), (exp.NotNullColumnConstraint, exp.PrimaryKeyColumnConstraint))
            and not c.args["kind"].args.get("allow_null")
            for c in column.args.get("constraints") or []
        )
        fields.append(pa.field(column.name, arrow_type(column.args["kind"]), nullable=nullable))
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise ProgrammingError(f"duplicate column names in {', '.join(names)}")
    return pa.schema(fields)


def _write_query(ctx: StatementContext, uri: str, name: str, query: Any, mode: str) -> int:
    existed = _path_exists(uri)
    try:
        written = executor_for(ctx).write_scan(ctx, query, uri, mode, None)
    except BaseException:
        if not existed:
            _remove(ctx, uri)
        raise
    if written is not None:
        return written
    reader = direct_scan(ctx, query)
    if reader is None:
        result = run_query(ctx, query)
        assert result.reader is not None
        reader = result.reader
    schema = storage_schema(reader.schema)
    if len(set(schema.names)) != len(schema.names):
        raise ProgrammingError(
            f"the query gives duplicate column names ({', '.join(schema.names)}): alias them"
        )
    stream = Stream(schema, (b if b.schema == schema else b.cast(schema) for b in reader))
    _write(ctx, uri, name, stream, mode)
    return stream.rows


def _write(ctx: StatementContext, uri: str, name: str, stream: Stream, mode: str) -> None:
    existed = _path_exists(uri)
    try:
        lance.write_dataset(
            stream.reader(),
            uri,
            mode=mode,
            enable_stable_row_ids=True,
            storage_options=ctx.catalog.storage_options,
        )
    except BaseException as exc:
        if not existed:
            _remove(ctx, uri)
        raise stream.failure(exc, f"CREATE TABLE {name} failed") from None


def _path_exists(uri: str) -> bool:
    if "://" not in uri:
        return os.path.exists(uri)
    return True  # never remove a remote prefix we cannot see


def _remove(ctx: StatementContext, uri: str) -> None:
    """Remove what a failed create wrote (data files without a manifest)."""
    try:
        if "://" not in uri:
            shutil.rmtree(uri, ignore_errors=True)
        else:
            lance.LanceDataset.drop(uri, storage_options=ctx.catalog.storage_options, ignore_not_found=True)
    except Exception:  # best effort: the dataset was never committed
        log.warning("could not remove the partial write at %s", uri)


@statement(exp.Drop)
def drop_table(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``DROP TABLE [IF EXISTS] t, ...``: remove datasets under the root."""
    if str(tree.args.get("kind", "")).upper() != "TABLE":
        return None
    for table in tree.args.get("tables") or []:
        if not isinstance(table, exp.Table) or is_uri(table.name) or table.args.get("db"):
            raise ProgrammingError(
                f"DROP TABLE removes tables under the root by name; {table.sql()!r} is a path "
                "(delete the directory yourself if that is what you mean)"
            )
        uri = ctx.catalog.uri_for(table.name)
        check_writable(ctx, uri)
        if not ctx.catalog.exists(uri):
            if tree.args.get("exists"):
                continue
            ctx.catalog.latest(uri)  # raises the catalog's unknown-table error
        try:
            if "://" not in uri:
                shutil.rmtree(uri)
            else:
                lance.LanceDataset.drop(uri, storage_options=ctx.catalog.storage_options)
        except OSError as exc:
            raise lance_error(exc, f"DROP TABLE {table.name} failed") from exc
        finally:
            ctx.catalog.forget(uri)
        log.info("dropped %s", uri.removesuffix(SUFFIX))
    return Result.done()
