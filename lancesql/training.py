"""Training from SQL: a torch Dataset over the rows a query selects.

``torch_dataset(con, "SELECT image_emb, label FROM train WHERE label IN (4, 9)")`` runs
the query **once**, asking the engine for Lance's ``_rowid`` of each row instead of its
columns (the table is registered with row ids; the WHERE, ORDER BY and LIMIT run on the
engine as written, so any predicate the engine knows works, subqueries included). The
Dataset then holds only those row ids: ``__getitems__`` fetches a batch of rows with
Lance's random access (``_take_rows``), reading only the columns the query selects, so
a query that does not name ``image`` never reads image bytes, and a DataLoader may
shuffle freely, since every index is a row id away from its row.

Why row ids rather than the engine's result: the engine streams, it cannot seek, and
materialising the result would copy every selected column (image bytes included) into
memory before the first batch. Row ids are 8 bytes a row.

The dataset pins the version the query read: a worker process reopens the dataset by
URI and version number (tags and timestamps are resolved once, up front), so every
epoch and every worker sees exactly the rows the query selected, whatever is written
to the table meanwhile.

A query whose rows are not rows of one Lance table (GROUP BY, aggregates, DISTINCT,
UNION, computed columns) has no row ids; ``torch_dataset(..., iterable=True)`` gives an
:class:`torch.utils.data.IterableDataset` that streams such a query's result instead.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import lance
import numpy as np
import pyarrow as pa
import torch
from sqlglot import exp

from lancesql.connection import Connection, connect
from lancesql.context import StatementContext
from lancesql.errors import Error, NotSupportedError, ProgrammingError, translate
from lancesql.parse import parse
from lancesql.query import call_source, to_sql
from lancesql.rewrite import rewrite
from lancesql.rewrite.bind_table_functions import META_KEY
from lancesql.udfs import TABLE_FUNCTIONS

#: ``transform=``: one callable for every binary column, or one per column name.
Transform = Union[Callable[[bytes], Any], Mapping[str, Callable[[Any], Any]], None]  # noqa: UP007

#: The engine column the row-id query returns.
ROWID = "__lancesql_rowid"

Sample = dict[str, Any]


def torch_dataset(
    con: Connection,
    sql: str,
    params: Sequence[Any] | None = None,
    *,
    transform: Transform = None,
    iterable: bool = False,
) -> RowIdDataset | QueryIterableDataset:
    """A torch Dataset over the rows ``sql`` selects (see the module docstring).

    Each sample is a dict keyed by the query's output names: fixed-size lists (vectors)
    are float32 tensors, numbers are 0-d tensors, strings are ``str``, binary is
    ``bytes`` or, with ``transform=``, whatever it makes of them (a decoded image
    tensor, say). ``transform`` is a callable applied to every binary column, or a
    mapping from column names to callables applied to those columns.

    ``iterable=True`` streams the query's result instead (for queries without row ids).
    """
    params = list(params or [])
    if iterable:
        return QueryIterableDataset(con, sql, params, transform)
    return RowIdDataset.from_query(con, sql, params, transform)


# -- planning: which table gives the row ids, which columns to take --------------------


@dataclass(frozen=True)
class RowPlan:
    """What a map-style query reads: the placeholder of its row source, and its output
    columns as ``(output name, source column)``; ``None`` columns means ``*``."""

    table: exp.Table
    columns: list[tuple[str, str]] | None
    excluded: frozenset[str]


def _needs_iterable(why: str) -> NotSupportedError:
    return NotSupportedError(
        f"torch_dataset() reads rows by their Lance row id, but {why}, so its rows have no "
        "row id: pass iterable=True for a torch IterableDataset that streams the query's "
        "result, or select plain columns of one table"
    )


def plan_rows(tree: exp.Expression) -> RowPlan:
    """Check that a rewritten query's rows are rows of one Lance table, and say which.

    >>> import sqlglot
    >>> sql = "SELECT image_emb AS x, label FROM t WHERE id < 5"
    >>> plan = plan_rows(rewrite(sqlglot.parse_one(sql), functions=TABLE_FUNCTIONS))
    >>> plan.table.alias_or_name, plan.columns
    ('t', [('x', 'image_emb'), ('label', 'label')])
    >>> grouped = sqlglot.parse_one("SELECT label, count(*) FROM t GROUP BY 1")
    >>> plan_rows(rewrite(grouped, functions=TABLE_FUNCTIONS))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lancesql.errors.NotSupportedError: torch_dataset() reads rows by their Lance row id, ...
    """
    if not isinstance(tree, exp.Select):
        kind = type(tree).__name__.upper()
        raise _needs_iterable(f"the statement is a {kind}, not a single SELECT")
    if tree.args.get("group") or tree.args.get("having"):
        raise _needs_iterable("the query groups rows (GROUP BY)")
    if tree.args.get("distinct"):
        raise _needs_iterable("the query has DISTINCT")
    for item in tree.expressions:
        if item.find(exp.AggFunc):
            raise _needs_iterable(f"{item.sql('duckdb')} is an aggregate")
        if item.find(exp.Window):
            raise _needs_iterable(f"{item.sql('duckdb')} is a window function")
    from_ = tree.args.get("from_") or tree.args.get("from")
    if from_ is None:
        raise _needs_iterable("the query reads no table")
    joins = tree.args.get("joins") or []
    tables = {
        t.alias_or_name: t
        for t in [from_.this, *(j.this for j in joins)]
        if isinstance(t, exp.Table)
    }
    qualifiers = {
        c.table for item in tree.expressions for c in item.find_all(exp.Column) if c.table
    }
    if not joins:
        chosen: exp.Expression = from_.this
    elif len(qualifiers) == 1 and next(iter(qualifiers)) in tables:
        chosen = tables[next(iter(qualifiers))]
    else:
        raise ProgrammingError(
            "torch_dataset() over a join needs every selected column qualified by the one "
            "table whose rows it returns (SELECT t.image_emb, t.label FROM t JOIN ...)"
        )
    if (
        not isinstance(chosen, exp.Table)
        or META_KEY not in chosen.meta
        or chosen.meta[META_KEY][0] != "lance_scan"
    ):
        source = (
            f"{chosen.meta[META_KEY][0]}(...)"
            if isinstance(chosen, exp.Table) and META_KEY in chosen.meta
            else chosen.sql("duckdb")
        )
        raise _needs_iterable(f"its rows come from {source}, not from a Lance table")
    alias = chosen.alias_or_name
    columns: list[tuple[str, str]] = []
    excluded: frozenset[str] = frozenset()
    for item in tree.expressions:
        target = item.this if isinstance(item, exp.Alias) else item
        star = (
            target
            if isinstance(target, exp.Star)
            else target.this
            if isinstance(target, exp.Column)
            else None
        )
        if isinstance(star, exp.Star):
            if len(tree.expressions) != 1 or (isinstance(target, exp.Star) and joins):
                raise ProgrammingError("torch_dataset(): write * alone, or name the columns")
            excluded = frozenset(
                c.name for c in star.args.get("except_") or star.args.get("except") or []
            )
            return RowPlan(chosen, None, excluded)
        if not isinstance(target, exp.Column) or (target.table and target.table != alias):
            raise _needs_iterable(
                f"{item.sql('duckdb')} is not a column of {alias} (compute it in transform=)"
            )
        columns.append((item.alias_or_name, target.name))
    return RowPlan(chosen, columns, excluded)


def _row_id_query(tree: exp.Select, alias: str, columns: list[tuple[str, str]]) -> exp.Select:
    """``tree`` selecting the row source's ``_rowid`` instead of its ``columns``.

    ORDER BY may name an output alias or position; those are put back to the column.
    """
    outputs = dict(columns)
    order = tree.args.get("order")
    if order is not None:
        for ordered in order.expressions:
            key = ordered.this
            if isinstance(key, exp.Literal) and key.is_int and 1 <= int(key.name) <= len(columns):
                ordered.set("this", exp.column(columns[int(key.name) - 1][1], table=alias))
            elif isinstance(key, exp.Column) and not key.table and key.name in outputs:
                ordered.set("this", exp.column(outputs[key.name], table=alias))
    tree.set("expressions", [exp.alias_(exp.column("_rowid", table=alias), ROWID)])
    return tree


def _resolve_columns(plan: RowPlan, dataset: lance.LanceDataset) -> list[tuple[str, str]]:
    """The plan's columns as ``(output name, dataset column)``, checked against the
    dataset (the engine never sees them: the row-id query selects ``_rowid`` only)."""
    names = [f.name for f in dataset.schema]
    by_lower = {n.lower(): n for n in names}
    if plan.columns is None:
        unknown = {c for c in plan.excluded if c.lower() not in by_lower}
        if unknown:
            raise ProgrammingError(f"EXCLUDE names unknown columns: {', '.join(sorted(unknown))}")
        excluded = {by_lower[c.lower()] for c in plan.excluded}
        return [(n, n) for n in names if n not in excluded]
    resolved = []
    for out, src in plan.columns:
        actual = src if src in names else by_lower.get(src.lower())
        if actual is None:
            raise ProgrammingError(
                f"column {src!r} is not in table {plan.table.alias_or_name!r}; its columns are "
                f"{', '.join(names)}"
            )
        resolved.append((out, actual))
    return resolved


def _one_query(sql: str, params: Sequence[Any]) -> exp.Expression:
    """The one statement of ``sql``, its ``?`` count checked against ``params``."""
    trees, count = parse(sql)
    if len(trees) != 1:
        raise ProgrammingError(f"torch_dataset() takes one query, got {len(trees)} statements")
    if count != len(params):
        raise ProgrammingError(
            f"the SQL has {count} parameter(s) (?) but {len(params)} value(s) were given"
        )
    return trees[0]


def _select_row_ids(
    con: Connection, sql: str, params: list[Any]
) -> tuple[lance.LanceDataset, np.ndarray, list[tuple[str, str]]]:
    """Run the row-id query: the row source's dataset, the row ids, the output columns."""
    tree = rewrite(_one_query(sql, params), functions=TABLE_FUNCTIONS)
    plan = plan_rows(tree)
    assert isinstance(tree, exp.Select)
    engine = con.engine.cursor(con)
    ctx = StatementContext(con, engine, params)
    try:
        dataset: lance.LanceDataset | None = None
        for table in list(tree.find_all(exp.Table)):
            if META_KEY not in table.meta:
                continue
            source = call_source(ctx, table)
            is_rows = table is plan.table
            if is_rows:
                assert isinstance(source, lance.LanceDataset)
                dataset = source
            engine.register(table.name, source, row_ids=is_rows)
        assert dataset is not None
        columns = _resolve_columns(plan, dataset)
        query = _row_id_query(tree, plan.table.alias_or_name, columns)
        text, values = to_sql(ctx, query)
        reader = engine.execute(text, values)
        ids = reader.read_all().column(0)
    except Error:
        raise
    except Exception as exc:
        raise translate(exc) from exc
    finally:
        engine.close()
    row_ids = ids.to_numpy().astype(np.uint64) if len(ids) else np.empty(0, np.uint64)
    return dataset, row_ids, columns


# -- Arrow to samples -------------------------------------------------------------------


def _column_values(name: str, array: pa.Array, transform: Transform) -> list[Any] | torch.Tensor:
    """One column of a batch as a tensor (numbers, vectors) or a list (everything else)."""
    kind = array.type
    fn: Callable[[Any], Any] | None
    if isinstance(transform, Mapping):
        fn = transform.get(name)
    elif transform is not None and (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)):
        fn = transform
    else:
        fn = None
    if fn is not None:
        return [None if v is None else fn(v) for v in array.to_pylist()]
    if pa.types.is_fixed_size_list(kind) and (
        pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)
    ):
        size = kind.list_size
        if array.null_count == 0:
            flat = array.flatten().to_numpy(zero_copy_only=False)
            # A copy: Arrow's buffers are read-only, and a training loop may write in place.
            return torch.from_numpy(np.array(flat, dtype=np.float32).reshape(len(array), size))
        out = np.full((len(array), size), np.nan, dtype=np.float32)
        valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False))
        out[valid] = np.asarray(array.drop_null().flatten().to_numpy(zero_copy_only=False)).reshape(
            -1, size
        )
        return torch.from_numpy(out)
    if (
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
    ) and not array.null_count:
        return torch.from_numpy(np.asarray(array.to_numpy(zero_copy_only=False)).copy())
    return array.to_pylist()


def batch_to_columns(
    batch: pa.Table | pa.RecordBatch, names: Sequence[str], transform: Transform
) -> dict[str, Any]:
    """A batch as one value a column (a tensor of the batch, or a list), keyed by ``names``."""
    return {
        name: _column_values(name, _combined(batch.column(i)), transform)
        for i, name in enumerate(names)
    }


def batch_to_samples(
    batch: pa.Table | pa.RecordBatch, names: Sequence[str], transform: Transform
) -> list[Sample]:
    """A batch as one dict a row, keyed by ``names`` (the query's output names)."""
    columns = batch_to_columns(batch, names, transform)
    return [{name: column[i] for name, column in columns.items()} for i in range(batch.num_rows)]


def _combined(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


# -- the map-style dataset --------------------------------------------------------------


class RowIdDataset(torch.utils.data.Dataset):
    """A map-style Dataset: index ``i`` is the query's ``i``-th row, fetched by row id.

    It pickles to its URI, version, storage options, row ids and columns, so DataLoader
    workers reopen the dataset at the same version and take from it directly.
    """

    def __init__(
        self,
        uri: str,
        version: int,
        row_ids: np.ndarray,
        columns: list[tuple[str, str]],
        storage_options: Mapping[str, str] | None = None,
        transform: Transform = None,
        dataset: lance.LanceDataset | None = None,
    ):
        self.uri = uri
        self.version = version
        self.row_ids = row_ids
        self.columns = columns
        self.storage_options = dict(storage_options) if storage_options else None
        self.transform = transform
        self._dataset = dataset
        self._pid = os.getpid()
        self._helper: LanceHelper | None = None
        self._names = [out for out, _ in columns]
        self._read = list(dict.fromkeys(src for _, src in columns))
        self._positions = [self._read.index(src) for _, src in columns]

    @classmethod
    def from_query(
        cls, con: Connection, sql: str, params: list[Any], transform: Transform
    ) -> RowIdDataset:
        dataset, row_ids, columns = _select_row_ids(con, sql, params)
        return cls(
            str(dataset.uri).rstrip("/"),
            dataset.version,
            row_ids,
            columns,
            con.catalog.storage_options,
            transform,
            dataset,
        )

    @property
    def dataset(self) -> lance.LanceDataset:
        """The Lance dataset at the pinned version (opened once per process)."""
        if self._dataset is None:
            self._dataset = lance.dataset(
                self.uri, version=self.version, storage_options=self.storage_options
            )
        return self._dataset

    def __len__(self) -> int:
        return len(self.row_ids)

    def __getitem__(self, index: int | Sequence[int]) -> Sample:
        """Row ``index``; or, given a list of indices (a ``BatchSampler``'s), the whole
        batch as one dict of batched tensors and lists (see :meth:`loader`)."""
        if not isinstance(index, (int, np.integer)):
            return batch_to_columns(self._take(index), self._names, self.transform)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} rows")
        return self.__getitems__([int(index) % len(self)])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[Sample]:
        """A batch of rows, in the order asked, with one random-access read."""
        return batch_to_samples(self._take(indices), self._names, self.transform)

    def loader(
        self, batch_size: int = 256, shuffle: bool = True, drop_last: bool = False, **kwargs: Any
    ) -> torch.utils.data.DataLoader:
        """A DataLoader that reads whole batches: each batch is one take and one tensor a
        column, with no per-row dicts to collate (about 1.3x faster than
        ``DataLoader(ds, batch_size=..., shuffle=...)``, which works as well).
        ``kwargs`` go to DataLoader (``num_workers``, ``pin_memory``, ...).
        """
        sampler: torch.utils.data.Sampler[int]
        if shuffle:
            sampler = torch.utils.data.RandomSampler(self)
        else:
            sampler = torch.utils.data.SequentialSampler(self)
        batches = torch.utils.data.BatchSampler(sampler, batch_size, drop_last)
        return torch.utils.data.DataLoader(self, batch_size=None, sampler=batches, **kwargs)

    def _take(self, indices: Sequence[int]) -> pa.Table:
        """The rows at ``indices`` (positions in the query's result), in that order."""
        # Lance reads sorted row ids about twice as fast as shuffled ones: take them in
        # order, once each, then put the rows back in the order asked.
        wanted = self.row_ids[np.asarray(indices, dtype=np.int64)]
        unique, inverse = np.unique(wanted, return_inverse=True)
        ids = pa.array(unique, pa.uint64())
        if os.getpid() == self._pid:
            table = self.dataset._take_rows(ids, columns=self._read)
        else:  # a forked DataLoader worker: Lance cannot run here (see LanceHelper)
            if self._helper is None:
                self._helper = LanceHelper()
            table = self._helper.call(
                "take", self.uri, self.version, self.storage_options, ids, self._read
            )
        if len(unique) != len(wanted) or not np.array_equal(unique, wanted):
            table = table.take(pa.array(inverse.ravel()))
        return table.select(self._positions)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_dataset"] = None
        state["_helper"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()  # unpickled (spawn, forkserver): Lance runs here directly

    def __repr__(self) -> str:
        return (
            f"RowIdDataset({self.uri!r}, version={self.version}, rows={len(self)}, "
            f"columns={self._names})"
        )


# -- the iterable form ------------------------------------------------------------------


class QueryIterableDataset(torch.utils.data.IterableDataset):
    """An IterableDataset streaming any query's result, one sample a row.

    Each iteration runs the query (in each DataLoader worker, on its own connection).
    With several workers the rows are dealt out by position, which is only safe when
    the order is fixed: with an ORDER BY each worker yields every n-th row; without one
    the first worker yields them all (the others none), so no row comes twice.
    """

    def __init__(self, con: Connection, sql: str, params: list[Any], transform: Transform):
        query = _one_query(sql, params)  # refuse a bad query now, not in a worker
        self.sql = sql
        self.params = params
        self.transform = transform
        self.ordered = bool(query.args.get("order"))
        self.root = con.root
        self.engine = con.engine.name
        self.storage_options = con.catalog.storage_options
        self.settings = {name: value for name, value, _ in con.settings.items()}
        self._con: Connection | None = con
        self._pid = os.getpid()

    def __iter__(self) -> Iterator[Sample]:
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        if workers > 1 and not self.ordered and worker != 0:
            return
        position = 0
        for batch in self._batches():
            names = batch.schema.names
            if workers > 1 and self.ordered:
                keep = np.nonzero(
                    (np.arange(position, position + batch.num_rows) % workers) == worker
                )[0]
                position += batch.num_rows
                batch = batch.take(pa.array(keep))
            yield from batch_to_samples(batch, names, self.transform)

    def _batches(self) -> Iterator[pa.RecordBatch]:
        if os.getpid() != self._pid:  # a forked DataLoader worker: run the query in a helper
            helper = LanceHelper()
            try:
                helper.call("query", self._connect_args(), self.sql, self.params)
                while (batch := helper.call("next")) is not None:
                    yield batch
            finally:
                helper.close()
            return
        if self._con is None:
            self._con = _connect(*self._connect_args())
        yield from self._con.cursor().execute(self.sql, self.params).fetch_record_batch()

    def _connect_args(self) -> tuple[Any, ...]:
        return (self.root, self.engine, self.storage_options, self.settings)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_con"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()


def _connect(root: str, engine: str, storage_options: Any, settings: Any) -> Connection:
    return connect(root, engine, storage_options, settings=settings)


# -- Lance from a forked worker ---------------------------------------------------------


class LanceHelper:
    """A helper process that does Lance I/O for a forked DataLoader worker.

    Lance is not fork-safe: once its I/O runtime has started (and running the query
    started it), a forked child that touches Lance hangs. DataLoader forks its workers
    by default, and a forked worker keeps what spawn would lose (a ``transform`` that is
    a lambda, say), so rather than asking users for ``multiprocessing_context="spawn"``,
    each forked worker starts one fresh interpreter (a plain subprocess: DataLoader
    workers are daemons, which multiprocessing forbids to have children) and asks it
    for Arrow data over a pipe. It exits when the worker closes the pipe or dies.
    """

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from lancesql.training import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def call(self, op: str, *args: Any) -> Any:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        pickle.dump((op, args), self._proc.stdin, protocol=5)
        self._proc.stdin.flush()
        try:
            ok, value = pickle.load(self._proc.stdout)
        except EOFError:
            raise OSError(f"the Lance helper process exited (status {self._proc.wait()})") from None
        if not ok:
            raise value
        return value

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            self._proc.wait()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown
            self.close()


def serve() -> None:
    """The helper's loop: requests in on stdin, pickled results out on stdout."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    datasets: dict[tuple[str, int], lance.LanceDataset] = {}
    reader: Iterator[pa.RecordBatch] | None = None
    while True:
        try:
            op, args = pickle.load(stdin)
        except EOFError:
            return
        try:
            if op == "take":
                uri, version, options, ids, columns = args
                key = (uri, version)
                if key not in datasets:
                    datasets[key] = lance.dataset(uri, version=version, storage_options=options)
                result: Any = datasets[key]._take_rows(ids, columns=columns)
            elif op == "query":
                connect_args, sql, params = args
                reader = iter(
                    _connect(*connect_args).cursor().execute(sql, params).fetch_record_batch()
                )
                result = None
            else:
                result = next(reader, None) if reader is not None else None
            reply: tuple[bool, Any] = (True, result)
        except Exception as exc:
            reply = (False, exc)
        try:
            data = pickle.dumps(reply, protocol=5)
        except Exception:  # an exception that does not pickle
            data = pickle.dumps(
                (False, OSError(f"{type(reply[1]).__name__}: {reply[1]}")), protocol=5
            )
        stdout.write(data)
        stdout.flush()
