"""The torch Datasets: map-style over row ids, and iterable over a query's result."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import lance
import numpy as np
import pyarrow as pa
import torch

from lancesql.connection import Connection
from lancesql.training.helper import LanceHelper, reconnect
from lancesql.training.rows import one_query, select_row_ids
from lancesql.training.samples import Sample, Transform, batch_to_columns, batch_to_samples


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
        dataset, row_ids, columns = select_row_ids(con, sql, params)
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






class QueryIterableDataset(torch.utils.data.IterableDataset):
    """An IterableDataset streaming any query's result, one sample a row.

    Each iteration runs the query (in each DataLoader worker, on its own connection).
    With several workers the rows are dealt out by position, which is only safe when
    the order is fixed: with an ORDER BY each worker yields every n-th row; without one
    the first worker yields them all (the others none), so no row comes twice.
    """

    def __init__(self, con: Connection, sql: str, params: list[Any], transform: Transform):
        query = one_query(sql, params)  # refuse a bad query now, not in a worker
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
            helper = LanceHelper(query=True)
            try:
                helper.call("query", self._connect_args(), self.sql, self.params)
                while (batch := helper.call("next")) is not None:
                    yield batch
            finally:
                helper.close()
            return
        if self._con is None:
            self._con = reconnect(*self._connect_args())
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

