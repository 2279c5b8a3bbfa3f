"""Backfilling new columns through the engine, batch by batch, resumably.

Design notes: ``docs/ARCHITECTURE.md``, "Backfill and its checkpoint".
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sqlite3
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lance
import pyarrow as pa
from lance.udf import BatchUDFCheckpoint
from sqlglot import exp
from tqdm import tqdm

from lancesql.arrow_types import storage_type
from lancesql.context import StatementContext
from lancesql.errors import Error, InternalError, ProgrammingError, lance_error
from lancesql.settings import declare
from lancesql.writes import LocalQuery, cast_to_column, local_select


def _default_checkpoint_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lancesql", "backfill")


declare(
    "backfill_batch_size",
    1024,
    int,
    "Rows per batch when a new column is computed by the engine (ADD COLUMN ... AS (udf(...))): "
    "the unit of memory, progress and resumption.",
)
declare(
    "backfill_checkpoint_dir",
    _default_checkpoint_dir(),
    str,
    "Local directory holding the checkpoints that let an interrupted backfill resume.",
)

#: Position column added to each batch so the engine's output keeps the batch's order.
_POSITION = "__lancesql_pos"


def backfill(
    ctx: StatementContext,
    ds: lance.LanceDataset,
    columns: Mapping[str, exp.Expression],
    types: Mapping[str, pa.DataType | None],
) -> None:
    """Add ``columns`` (name -> expression) to ``ds``, computed by the engine; one version.

    ``types`` gives each column's declared type (None: the engine's result type).
    Raises a DB-API error and commits nothing when an expression does not type-check or
    fails on some batch.
    """
    query, read, schema = prepare(ctx, ds, columns, types)
    lock = threading.Lock()
    worker = ThreadPoolExecutor(1, thread_name_prefix="lancesql-backfill")
    try:
        batch_size = int(ctx.settings.get("backfill_batch_size"))
        checkpoint = _checkpoint_path(ctx, ds, query.sql, batch_size, schema)
        progress = _progress(ds, ", ".join(columns))
        failure: list[BaseException] = []

        def compute(batch: pa.RecordBatch) -> pa.RecordBatch:
            try:
                with lock:
                    # In a thread of our own: Lance calls this from inside its writer,
                    # where an engine that reads a Lance table (a subquery over one)
                    # cannot run (DuckDB aborts the process there).
                    out = worker.submit(compute_batch, query, batch, read, schema).result()
                progress.update(batch.num_rows)
                return out
            except BaseException as exc:
                failure.append(exc)
                raise

        udf = lance.batch_udf(output_schema=schema)(compute)
        udf.cache = cache = Checkpoint(checkpoint)
        # Lance holds the handle it writes through for the whole call, and the engine
        # may read this very table meanwhile (``ADD COLUMN x AS ((SELECT max(label)
        # FROM t) - label)``) through the catalog's handle, ``ds``: write through a
        # handle of its own at the same version, then move ``ds`` on.
        writer = lance.dataset(
            str(ds.uri), version=ds.version, storage_options=ctx.catalog.storage_options or None
        )
        try:
            writer.add_columns(udf, read_columns=read or ["_rowid"], batch_size=batch_size)
        except BaseException as exc:
            if failure:
                raise failure[0] from None
            raise lance_error(exc, "ADD COLUMN failed") from exc
        finally:
            progress.close()
            with contextlib.suppress(sqlite3.ProgrammingError):
                cache.close()  # a no-op after Lance's cleanup on success
        ds.checkout_latest()
    finally:
        worker.shutdown()
        query.close()


def prepare(
    ctx: StatementContext,
    ds: lance.LanceDataset,
    columns: Mapping[str, exp.Expression],
    types: Mapping[str, pa.DataType | None],
) -> tuple[LocalQuery, list[str], pa.Schema]:
    """The query computing ``columns`` over a batch, the table columns it reads, and
    the new columns' schema, type-checked on no rows so that a wrong expression fails
    before any work is done. The caller closes the query."""
    names = set(ds.schema.names)
    read = [c for c in ds.schema.names if any(_reads(e, c) for e in columns.values())]
    query = engine_query(ctx, columns)
    try:
        sample = ds.schema.empty_table().select(read) if read else _rowid_table(0)
        result = query.run(_with_position(sample)).read_all()
        schema = _output_schema(result.schema, columns, types)
        for field in schema:
            if field.name in names:
                raise ProgrammingError(f"column {field.name!r} already exists")
    except BaseException:
        query.close()
        raise
    return query, read, schema


def engine_query(ctx: StatementContext, columns: Mapping[str, exp.Expression]) -> LocalQuery:
    """``SELECT <columns> FROM <batch> ORDER BY <position>`` on ``ctx``'s engine."""
    return LocalQuery(ctx, local_select(dict(columns)).order_by(exp.column(_POSITION)))


def compute_batch(
    query: LocalQuery, batch: pa.RecordBatch, read: list[str], schema: pa.Schema
) -> pa.RecordBatch:
    """The new columns of one batch of the table: ``query`` run on the engine over it,
    in the batch's order, cast to ``schema``."""
    table = pa.Table.from_batches([batch]).select(read) if read else batch
    out = query.run(_with_position(pa.table(table))).read_all()
    if out.num_rows != batch.num_rows:
        raise InternalError(f"the engine gave {out.num_rows} rows for a batch of {batch.num_rows}")
    arrays = [_cast(out.column(i), f) for i, f in enumerate(schema)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _reads(expression: exp.Expression, name: str) -> bool:
    return any(c.name == name for c in expression.find_all(exp.Column))


def _rowid_table(rows: int) -> pa.Table:
    return pa.table({"_rowid": pa.array(range(rows), pa.uint64())})


def _with_position(table: pa.Table | pa.RecordBatch) -> pa.Table:
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    return table.append_column(_POSITION, pa.array(range(table.num_rows), pa.int64()))


def _output_schema(
    result: pa.Schema, columns: Mapping[str, exp.Expression], types: Mapping[str, pa.DataType | None]
) -> pa.Schema:
    fields = []
    for name, field in zip(columns, result, strict=True):
        declared = types.get(name)
        fields.append(pa.field(name, declared or storage_type(field.type), nullable=True))
    return pa.schema(fields)


def _cast(column: pa.ChunkedArray, field: pa.Field) -> pa.Array:
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if array.type == field.type:
        return array
    return cast_to_column(array, field, "the expression")


def _checkpoint_path(
    ctx: StatementContext, ds: lance.LanceDataset, sql: str, batch_size: int, schema: pa.Schema
) -> Path:
    """One checkpoint per (dataset, version, computation): a re-run of the same statement
    on the same version finds it; anything else starts afresh."""
    directory = Path(str(ctx.settings.get("backfill_checkpoint_dir"))).expanduser()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Error(
            f"cannot create the backfill checkpoint directory {directory}: {exc}; "
            f"SET lancesql.backfill_checkpoint_dir = '<a writable local directory>'"
        ) from None
    key = "\n".join([str(ds.uri), str(ds.version), sql, str(batch_size), str(schema)])
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return directory / f"{digest}.sqlite"


class Checkpoint(BatchUDFCheckpoint):
    """Lance's SQLite checkpoint of finished batches, on one connection in WAL mode with
    ``synchronous = NORMAL``.

    Lance's own opens, commits, fsyncs and closes the database for every batch, which
    costs more than computing a cheap batch (about 20 ms here). A WAL commit with
    NORMAL sync survives the process being killed, the failure this checkpoint exists
    for; only a power cut may lose the last batches, which a re-run computes again.
    Lance calls it from its own threads, so the one connection is shared under a lock.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS batches (fragment_id INT, batch_index INT, result BLOB)"
        )
        self._conn.execute("CREATE TABLE IF NOT EXISTS fragments (fragment_id INT, data BLOB)")
        self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def cleanup(self) -> None:
        self.close()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path + suffix)

    def get_batch(self, info: BatchUDFCheckpoint.BatchInfo) -> pa.RecordBatch | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT result FROM batches WHERE fragment_id = ? AND batch_index = ?",
                (info.fragment_id, info.batch_index),
            ).fetchone()
        return pickle.loads(row[0]) if row is not None else None

    def insert_batch(self, info: BatchUDFCheckpoint.BatchInfo, batch: pa.RecordBatch) -> None:
        data = pickle.dumps(batch)
        with self._lock:
            self._conn.execute(
                "INSERT INTO batches (fragment_id, batch_index, result) VALUES (?, ?, ?)",
                (info.fragment_id, info.batch_index, data),
            )
            self._conn.commit()

    def get_fragment(self, fragment_id: int) -> str | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT data FROM fragments WHERE fragment_id = ?", (fragment_id,)
            ).fetchone()
        return row[0] if row is not None else None

    def insert_fragment(self, fragment_id: int, fragment: str) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO fragments (fragment_id, data) VALUES (?, ?)", (fragment_id, fragment)
            )
            self._conn.execute("DELETE FROM batches WHERE fragment_id = ?", (fragment_id,))
            self._conn.commit()


class _Progress:
    """A tqdm bar on a terminal, nothing elsewhere."""

    def __init__(self, total: int, desc: str):
        self._bar = None
        if sys.stderr.isatty() and not os.environ.get("TQDM_DISABLE"):
            self._bar = tqdm(total=total, desc=desc, unit="rows", file=sys.stderr)

    def update(self, rows: int) -> None:
        if self._bar is not None:
            self._bar.update(rows)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _progress(ds: lance.LanceDataset, names: str) -> _Progress:
    return _Progress(ds.count_rows(), f"backfill {names}")
