"""The Ray executor: the heavy statements on a Ray cluster, through Ray tasks and lance-ray.

Every statement keeps Lance's two-phase write: workers open the table by its URI (so
an object store works and no worker needs the driver's disk), each writes its share
(new column files of some fragments, index segments, compacted fragments, new
fragments of a copied scan) and hands back only metadata, and the driver commits
once. A worker that dies is retried by Ray or fails the statement; either way nothing
it wrote half-way is committed, so the table ends one version on, or where it was.

Backfills and merged columns are Ray tasks, one per fragment (Lance computes its own
SQL there; the engine computes the rest). Through the engine
(``ADD COLUMN clip AS (embed_image(image))``) they run the same SQL as the local path:
each worker process opens its own connection to the root (same engine, same settings)
for the statement, and the model behind ``embed_image`` is loaded once per worker
process and kept for every batch and every later statement it computes. Index builds,
compaction and copies of a Lance scan are lance-ray's.

Ray and lance-ray are imported on first use (``pip install 'lancesql[ray]'``).
"""

from __future__ import annotations

import logging
import pickle
import re
import threading
import types
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import lance
import pyarrow as pa
import pyarrow.compute as pc
from lance.optimize import CompactionOptions
from sqlglot import exp, parse_one

from lancesql import errors
from lancesql.arrow_types import storage_schema
from lancesql.backfill import compute_batch, engine_query, prepare
from lancesql.context import StatementContext
from lancesql.errors import Error, NotSupportedError, OperationalError, is_conflict, lance_error
from lancesql.executors.local import LOCAL, MERGE_ALL, VECTOR, check_index, segmented
from lancesql.parse import DIALECT
from lancesql.settings import SETTINGS, Settings
from lancesql.writes import PlainScan, plain_scan

log = logging.getLogger("lancesql")

INSTALL = "pip install 'lancesql[ray]'"
#: Index kinds lance-ray builds across workers; other kinds are built on the driver.
RAY_VECTOR = ("IVF_FLAT", "IVF_PQ", "IVF_SQ", "IVF_RQ", "IVF_HNSW_FLAT", "IVF_HNSW_PQ", "IVF_HNSW_SQ")
RAY_SCALAR = ("BTREE", "BITMAP", "INVERTED", "FTS", "ZONEMAP")

_INIT_LOCK = threading.Lock()
#: Times Ray reruns a task whose worker process died before the statement fails.
RETRIES = 3


def modules() -> tuple[Any, Any]:
    """``ray`` and ``lance_ray``, or a NotSupportedError naming the extra."""
    try:
        import lance_ray
        import ray
    except ImportError as exc:
        raise NotSupportedError(
            f"lancesql.executor = 'ray' needs Ray and lance-ray, which are not installed "
            f"({exc}): {INSTALL}, or SET lancesql.executor = 'local'"
        ) from None
    return ray, lance_ray


def start(address: str) -> Any:
    """Join the Ray cluster at ``address`` (empty: RAY_ADDRESS, a Ray running on this
    machine, or a new local one), once per process; returns the ``ray`` module."""
    ray, _ = modules()
    with _INIT_LOCK:
        if ray.is_initialized():
            return ray
        options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        try:
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            where = address or "RAY_ADDRESS / a local Ray"
            raise OperationalError(
                f"could not start or join Ray at {where}: {str(exc).splitlines()[0]}; check "
                "SET lancesql.ray_address (host:port of the head) or the ray:// address, or "
                "SET lancesql.executor = 'local'"
            ) from None
        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    return ray


@dataclass(frozen=True)
class RayExecutor:
    """See the module docstring and :class:`lancesql.executors.Executor`."""

    address: str
    workers: int
    cpus: float
    gpus: float
    batch_size: int
    name: str = field(default="ray", init=False)

    @classmethod
    def of(cls, settings: Settings, choice: str) -> RayExecutor:
        """The executor ``lancesql.executor = choice`` and the ``ray_*`` settings name."""
        address = choice if choice.startswith("ray://") else str(settings.get("ray_address") or "")
        modules()  # a missing extra fails the statement before anything is read
        return cls(
            address,
            int(settings.get("ray_workers")),
            float(settings.get("ray_cpus_per_task")),
            float(settings.get("ray_gpus_per_task")),
            int(settings.get("ray_batch_size")) or 1024,
        )

    # -- the statements ---------------------------------------------------------------------
    def add_columns(
        self,
        ctx: StatementContext,
        ds: lance.LanceDataset,
        columns: Mapping[str, exp.Expression],
        types: Mapping[str, pa.DataType | None],
        lance_sql: Mapping[str, str] | None,
    ) -> None:
        if lance_sql is not None and _lance_accepts(ds, lance_sql):
            # Lance computes these itself, on each worker for its fragments.
            self._compute_and_merge(ctx, ds, "ADD COLUMN", [], dict(lance_sql))
            return
        query, read, schema = prepare(ctx, ds, columns, types)  # type-checked here, on no rows
        query.close()
        self._compute_and_merge(ctx, ds, "ADD COLUMN", read, EngineColumns.of(ctx, columns, read, schema))

    def merge(self, ctx: StatementContext, ds: lance.LanceDataset, table: pa.Table, key: str) -> None:
        ray = start(self.address)
        transform = JoinOnKey(ray.put(table), key, pa.schema([f for f in table.schema if f.name != key]))
        self._compute_and_merge(ctx, ds, "ADD COLUMNS FROM", [key], transform)

    def _compute_and_merge(
        self,
        ctx: StatementContext,
        ds: lance.LanceDataset,
        what: str,
        read: list[str],
        transform: Callable[[pa.RecordBatch], pa.RecordBatch] | dict[str, str],
    ) -> None:
        """New columns computed and written fragment by fragment by Ray tasks, committed
        once by the driver as one Lance ``Merge``. ``transform`` is Lance's SQL (name ->
        expression), computed by Lance on the worker, or a function of a batch.

        Each task (:func:`fragment_columns`) reads one fragment's ``read`` columns at the
        statement's version, computes the new columns batch by batch in the worker's own
        thread, and hands the finished columns to Lance's ``merge_columns`` as a reader:
        lance-ray's ``add_columns`` would call the transform from inside Lance's writer,
        where an engine cannot run (DuckDB aborts the process there). Tasks, not actors:
        Ray keeps a task's worker process for the next task (``max_calls = 0``, GPU tasks
        included), so what a worker loads (lancesql, a model) is loaded once per process,
        not once per statement, and Ray retries the task of a worker that died.
        """
        ray = start(self.address)
        options = _options(ctx)
        uri, version = str(ds.uri), ds.version
        fragments = [f.fragment_id for f in ds.get_fragments()]
        limit = min(self.concurrency() or 1, max(1, len(fragments)))
        task = ray.remote(
            num_cpus=self.cpus, num_gpus=self.gpus or None, max_calls=0, max_retries=RETRIES
        )(fragment_columns)

        def job() -> None:
            shared = ray.put((uri, version, options, read, transform, self.batch_size))
            written: list[tuple[int, bytes, bytes]] = []
            todo, running = list(fragments), cast(list[Any], [])
            try:
                while todo or running:
                    while todo and len(running) < limit:
                        running.append(task.remote(shared, todo.pop(0)))
                    ready, running = ray.wait(running, num_returns=1)
                    written.extend(ray.get(ready))
            finally:
                for ref in running:
                    ray.cancel(ref)
            if sorted(f for f, _, _ in written) != sorted(fragments):
                raise OperationalError(f"{what}: the workers did not return every fragment exactly once")
            merged = [pickle.loads(m) for _, m, _ in written]
            schema = pickle.loads(written[0][2])
            lance.LanceDataset.commit(
                uri, lance.LanceOperation.Merge(merged, schema), read_version=version, storage_options=options
            )

        self._run(ctx, ds, what, job)

    def create_index(
        self,
        ctx: StatementContext,
        ds: lance.LanceDataset,
        column: str,
        kind: str,
        name: str | None,
        options: dict[str, Any],
    ) -> None:
        check_index(kind, options)
        if kind not in RAY_VECTOR + RAY_SCALAR:
            log.info("lance-ray does not build %s indices across workers: building it here", kind)
            LOCAL.create_index(ctx, ds, column, kind, name, options)
            return
        _, lance_ray = modules()
        kwargs = dict(options)
        replace = bool(kwargs.pop("replace", False))
        common = {
            "name": name,
            "replace": replace,
            "num_workers": self.concurrency() or 1,
            "storage_options": _options(ctx),
            "ray_remote_args": self.remote_args(),
        }
        if kind in VECTOR:
            if "max_iterations" in kwargs:
                kwargs["max_iters"] = kwargs.pop("max_iterations")
            partitions = int(kwargs.get("num_partitions") or 0)
            rows = ds.count_rows()
            if partitions and partitions * int(kwargs.get("sample_rate", 256)) > rows:
                # As pylance does locally: train on every row when the table is small.
                kwargs["sample_rate"] = max(1, rows // partitions)

            def build() -> Any:
                return lance_ray.create_index(str(ds.uri), column, kind, **common, **kwargs)

        else:

            def build() -> Any:
                return lance_ray.create_scalar_index(
                    str(ds.uri), column=column, index_type=kind, **common, **kwargs
                )

        self._run(ctx, ds, f"CREATE INDEX on {column}", build)

    def optimize(self, ctx: StatementContext, ds: lance.LanceDataset, options: Mapping[str, Any]) -> Any:
        _, lance_ray = modules()
        storage = _options(ctx)
        # Bringing the indices up to date is one job on the driver (lance-ray runs it
        # there too), as on the local path. An index built across workers is in one
        # segment per worker, and Lance compacts no fragments that two segments cover:
        # then its segments are merged first (appended rows are indexed on the way).
        merge_first = segmented(ds)
        if merge_first:
            self._run(
                ctx,
                ds,
                "OPTIMIZE",
                lambda: lance_ray.optimize_indices(
                    str(ds.uri), num_indices_to_merge=MERGE_ALL, storage_options=storage
                ),
            )
        compaction = CompactionOptions(**options)  # type: ignore[typeddict-item]
        metrics = self._run(
            ctx,
            ds,
            "OPTIMIZE",
            lambda: lance_ray.compact_files(
                str(ds.uri),
                compaction_options=compaction,
                num_workers=self.concurrency() or 1,
                storage_options=storage,
                ray_remote_args=self.remote_args(),
            ),
        )
        if metrics is None:  # lance-ray found nothing to compact
            metrics = types.SimpleNamespace(
                fragments_removed=0, fragments_added=0, files_removed=0, files_added=0
            )
        if not merge_first:
            self._run(
                ctx,
                ds,
                "OPTIMIZE",
                lambda: lance_ray.optimize_indices(str(ds.uri), storage_options=storage),
            )
        return metrics

    def write_scan(
        self,
        ctx: StatementContext,
        query: exp.Expression,
        uri: str,
        mode: str,
        schema: pa.Schema | None,
    ) -> int | None:
        scan = ray_scan(ctx, query, schema)
        if scan is None:
            return None
        _, lance_ray = modules()
        source = scan.ds
        rows = source.count_rows(filter=scan.filter)
        if rows == 0:
            return None  # nothing for workers to do; the local path writes the empty table
        out_schema = schema or storage_schema(_projected(scan))
        options = _options(ctx)

        def copy() -> None:
            start(self.address)
            frame = lance_ray.read_lance(
                str(source.uri),
                columns=scan.columns,
                filter=scan.filter,
                storage_options=_source_options(ctx, source),
                dataset_options={"version": source.version},
                ray_remote_args=self.remote_args(),
            )
            lance_ray.write_lance(
                frame,
                uri,
                schema=out_schema,
                mode=mode,
                enable_stable_row_ids=mode != "append",
                storage_options=options,
                ray_remote_args=self.remote_args(),
                concurrency=self.concurrency(),
            )

        what = "INSERT" if mode == "append" else "CREATE TABLE AS"
        try:
            copy()
        except BaseException as exc:
            raise self.error(exc, f"{what} {ctx.catalog.name_of(uri)}", None) from None
        return rows

    def describe(self) -> str:
        where = self.address or "RAY_ADDRESS / a local Ray"
        per_task = f"{self.cpus:g} CPU" + (f", {self.gpus:g} GPU" if self.gpus else "")
        workers = str(self.workers) if self.workers else "one per cluster CPU"
        return (
            f"ray ({where}) through lance-ray: workers = {workers}, {per_task} each, "
            f"batches of {self.batch_size} rows; the driver commits once"
        )

    # -- shared -----------------------------------------------------------------------------
    def remote_args(self) -> dict[str, Any]:
        """What each Ray worker asks for."""
        args: dict[str, Any] = {"num_cpus": self.cpus}
        if self.gpus:
            args["num_gpus"] = self.gpus
        return args

    def concurrency(self) -> int | None:
        """Worker processes per statement: the setting, else as many as the cluster fits."""
        if self.workers:
            return self.workers
        ray = start(self.address)
        resources = ray.cluster_resources()
        fits = int(resources.get("CPU", 1) // self.cpus) if self.cpus else int(resources.get("CPU", 1))
        if self.gpus:
            fits = min(fits, int(resources.get("GPU", 0) // self.gpus))
            if fits == 0:
                raise OperationalError(
                    f"lancesql.ray_gpus_per_task = {self.gpus:g} but the Ray cluster has no GPU "
                    "to give: SET lancesql.ray_gpus_per_task = 0, or add GPU nodes"
                )
        return max(1, fits)

    def _run(self, ctx: StatementContext, ds: lance.LanceDataset, what: str, job: Callable[[], Any]) -> Any:
        """Run ``job`` (one lance-ray call that commits once) and move ``ds`` to the
        version it committed; any failure leaves the table at ``ds.version``."""
        start(self.address)
        before = ds.version
        try:
            result = job()
        except BaseException as exc:
            raise self.error(exc, f"{what} on {ctx.catalog.name_of(str(ds.uri))}", before) from None
        ds.checkout_latest()
        return result

    @staticmethod
    def error(exc: BaseException, what: str, version: int | None) -> BaseException:
        """The DB-API error for a failed lance-ray call: the user's own error when a
        worker raised one (a bad value, a failing function), else what failed on Ray."""
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            return exc
        chain = _chain(exc)
        for cause in chain:
            if type(cause).__module__ == Error.__module__ and isinstance(cause, Error):
                return cause
        for cause in chain:
            # Ray Data keeps a worker's exception only as the text of its traceback.
            raised = re.findall(r"^lancesql\.errors\.(\w+): (.+)$", str(cause), re.M)
            if raised and isinstance(getattr(errors, raised[-1][0], None), type):
                kind = getattr(errors, raised[-1][0])
                if issubclass(kind, Error):
                    return kind(raised[-1][1])
        root = chain[-1]
        kept = f"the table is still at version {version}" if version is not None else "nothing was written"
        if any(is_conflict(c) for c in chain):
            return lance_error(next(c for c in chain if is_conflict(c)), what)
        text = str(root).strip().splitlines()[0] if str(root).strip() else type(root).__name__
        if any("actor died" in str(c).lower() or "worker died" in str(c).lower() for c in chain):
            err: Error = OperationalError(
                f"{what} failed on Ray: a worker died ({text}); nothing was committed and "
                f"{kept}: run the statement again"
            )
        else:
            err = lance_error(root, f"{what} failed on Ray ({kept})")
        err.__cause__ = exc
        return err


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything behind it: ``__cause__``, ``__context__``, and the worker's
    own exception that Ray keeps as ``cause``."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        for inner in (getattr(current, "cause", None), current.__cause__, current.__context__):
            if isinstance(inner, BaseException):
                todo.append(inner)
    return seen


def _options(ctx: StatementContext) -> dict[str, str] | None:
    options = ctx.catalog.storage_options
    return dict(options) if options else None


def _source_options(ctx: StatementContext, source: lance.LanceDataset) -> dict[str, str] | None:
    return _options(ctx) if "://" in str(source.uri) else None


def _lance_accepts(ds: lance.LanceDataset, lance_sql: Mapping[str, str]) -> bool:
    """Whether Lance itself computes these columns (as the local path tries first)."""
    try:
        ds.scanner(columns=dict(lance_sql), limit=1).to_table()
        return True
    except (OSError, ValueError):
        return False


def _projected(scan: PlainScan) -> pa.Schema:
    return scan.ds.scanner(columns=scan.columns, filter=scan.filter, limit=0).projected_schema


def ray_scan(ctx: StatementContext, query: exp.Expression, schema: pa.Schema | None) -> PlainScan | None:
    """``query`` when workers can copy it: a plain Lance scan without LIMIT whose
    columns are, for an INSERT, the table's own (names and types)."""
    scan = plain_scan(ctx, query)
    if scan is None or scan.limit is not None:
        return None
    if schema is not None:
        given = storage_schema(_projected(scan))
        if [(f.name, f.type) for f in given] != [(f.name, f.type) for f in schema]:
            return None  # the local INSERT maps and casts columns
    return scan


# -- what the workers run ----------------------------------------------------------------------
def _shipped(settings: Settings) -> dict[str, Any]:
    """The settings that differ from their defaults (SET, connect(), the driver's
    environment), for the workers' connections; they run their share locally."""
    values = {name: value for name, value, _ in settings.items() if value != SETTINGS[name].default}
    values["executor"] = "local"
    return values


_WORKER_STATE: dict[str, tuple[Any, Any, threading.Lock]] = {}


@dataclass
class EngineColumns:
    """New columns computed by the engine over each batch, on a Ray worker.

    Pickled to the workers with the connection's class, root, engine and settings; the
    first batch a worker process gets opens a connection there and prepares the query,
    and later batches (and later fragments) reuse it.
    """

    connection_class: type
    root: str
    storage_options: dict[str, str] | None
    engine: str
    settings: dict[str, Any]
    columns: dict[str, str]
    params: list[Any]
    read: list[str]
    schema: pa.Schema
    key: str

    @classmethod
    def of(
        cls,
        ctx: StatementContext,
        columns: Mapping[str, exp.Expression],
        read: list[str],
        schema: pa.Schema,
    ) -> EngineColumns:
        return cls(
            type(ctx.connection),
            ctx.catalog.root,
            _options(ctx),
            ctx.connection.engine.name,
            _shipped(ctx.settings),
            {name: e.sql(dialect=DIALECT) for name, e in columns.items()},
            list(ctx.params),
            read,
            schema,
            uuid.uuid4().hex,
        )

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        state = _WORKER_STATE.get(self.key)
        if state is None:
            _WORKER_STATE.clear()  # one statement's state per worker process
            connection = self.connection_class(self.root, self.engine, self.storage_options, self.settings)
            ctx = StatementContext(connection, connection.engine.cursor(connection), self.params)
            columns = {n: cast(exp.Expression, parse_one(t, read=DIALECT)) for n, t in self.columns.items()}
            query = engine_query(ctx, columns)
            state = _WORKER_STATE[self.key] = (connection, query, threading.Lock())
        _, query, lock = state
        with lock:
            return compute_batch(query, batch, self.read, self.schema)


def fragment_columns(shared: tuple[Any, ...], fragment_id: int) -> tuple[int, bytes, bytes]:
    """A Ray task adding new columns to one fragment (see
    :meth:`RayExecutor._compute_and_merge`): the fragment's id, new metadata and schema,
    pickled."""
    uri, version, storage_options, read, transform, batch_size = shared
    ds = _dataset(uri, version, storage_options)
    fragment = ds.get_fragment(fragment_id)
    if fragment is None:
        raise OperationalError(f"fragment {fragment_id} of {uri} version {version} is gone")
    if isinstance(transform, dict):  # Lance's own SQL
        merged, schema = fragment.merge_columns(transform, None, batch_size)
        return fragment_id, pickle.dumps(merged), pickle.dumps(schema)
    read = read or [_narrowest(ds.schema)]
    computed = [
        transform(batch)
        for batch in fragment.to_batches(columns=read, batch_size=batch_size)
        if batch.num_rows
    ] or [transform(pa.RecordBatch.from_pylist([], schema=ds.schema).select(read))]
    reader = pa.RecordBatchReader.from_batches(computed[0].schema, computed)
    merged, schema = fragment.merge_columns(reader, None, batch_size)
    return fragment_id, pickle.dumps(merged), pickle.dumps(schema)


_DATASETS: dict[tuple[str, int, str], lance.LanceDataset] = {}


def _dataset(uri: str, version: int, storage_options: dict[str, str] | None) -> lance.LanceDataset:
    """The table at ``version``, opened once per worker process and statement."""
    key = (uri, version, repr(sorted((storage_options or {}).items())))
    ds = _DATASETS.get(key)
    if ds is None:
        _DATASETS.clear()
        ds = _DATASETS[key] = lance.dataset(uri, version=version, storage_options=storage_options)
    return ds


def _narrowest(schema: pa.Schema) -> str:
    fixed = [f.name for f in schema if pa.types.is_primitive(f.type)]
    return min(fixed, key=lambda n: schema.field(n).type.bit_width) if fixed else schema.names[0]


@dataclass
class JoinOnKey:
    """``ADD COLUMNS FROM``'s rows, joined to each batch of the table on ``key`` on a Ray
    worker (rows without a match get NULLs, as Lance's merge gives them)."""

    ref: Any
    key: str
    schema: pa.Schema

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        table = _JOIN_TABLES.get(id(self))
        if table is None:
            import ray

            table = _JOIN_TABLES[id(self)] = ray.get(self.ref)
        positions = pc.index_in(batch.column(self.key), value_set=table.column(self.key))
        rows = table.select(self.schema.names).take(positions)
        arrays = [rows.column(i).combine_chunks() for i in range(rows.num_columns)]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


_JOIN_TABLES: dict[int, pa.Table] = {}
