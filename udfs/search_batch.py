"""Many vector searches answered together: each IVF partition read once and compared
with every query that probes it in one matrix product.

A similarity join searches thousands of vectors against one table. One Lance search per
query costs a fixed ~6 ms (a plan, a scanner, the partitions opened, the candidates
re-read to refine them) whatever it finds, so a loop of them runs at a few hundred
queries a second at best. Here the queries' partitions are chosen as Lance chooses them
(the ``nprobes`` whose centroids lie nearest each query, or every partition for an exact
plan), the table's vectors (the filter's matching rows, from memory when
:mod:`lancesql.udfs.search_cache` holds them) are read once, partition by partition,
and each partition's rows are compared with all the queries that probe it at once
(a BLAS matrix product; one BLAS thread per core, each on its own partitions: OpenBLAS's
own threads over small products stall on a busy machine). Distances are exact, so each query's k nearest
among its probed partitions are found exactly: the recall is at least that of Lance's
PQ search over the same partitions, and ``_distance`` is what ``refine_factor`` gives.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import lance
import numpy as np
import pyarrow as pa

from lancesql.udfs import search_cache
from lancesql.udfs.search_plan import IvfLayout

#: Bytes of vectors read from Lance per batch while streaming the table: a partition's
#: rows in one batch make one matrix product, the more the faster.
_BATCH_BYTES = 256 << 20
#: Most distances computed in one matrix product (queries x rows), to bound memory.
_MOST_PAIRS = 8 << 20


@dataclass
class Found:
    """Each query's k nearest so far: row ids and distances (queries x k, +inf unfilled)."""

    row_ids: np.ndarray
    distances: np.ndarray

    @classmethod
    def empty(cls, queries: int, k: int) -> Found:
        return cls(np.zeros((queries, k), np.uint64), np.full((queries, k), np.inf, np.float32))

    def merge(self, queries: np.ndarray, row_ids: np.ndarray, distances: np.ndarray) -> None:
        """Keep the k nearest of the held ones and the new (``queries`` x m) candidates."""
        k = self.distances.shape[1]
        ids = np.concatenate([self.row_ids[queries], row_ids], axis=1)
        dist = np.concatenate([self.distances[queries], distances], axis=1)
        keep = np.argpartition(dist, k - 1, axis=1)[:, :k] if dist.shape[1] > k else np.argsort(dist, axis=1)
        self.row_ids[queries] = np.take_along_axis(ids, keep, axis=1)
        self.distances[queries] = np.take_along_axis(dist, keep, axis=1)


def probes(layout: IvfLayout, queries: np.ndarray, metric: str, nprobes: np.ndarray) -> list[np.ndarray]:
    """For each partition, the queries that probe it: query i the ``nprobes[i]`` partitions
    whose centroids lie nearest it (as :func:`lancesql.udfs.search_plan.centroid_order`)."""
    c = layout.centroids
    q = queries.astype(np.float32)
    dots = q @ c.T
    if metric == "cosine":
        norms = np.linalg.norm(q, axis=1)[:, None] * np.linalg.norm(c, axis=1)[None, :]
        distance = 1 - dots / np.maximum(norms, 1e-30)
    elif metric == "dot":
        distance = -dots
    else:
        distance = (c * c).sum(axis=1)[None, :] - 2 * dots
    order = np.argsort(distance, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(layout.count)[None, :], axis=1)
    probed = rank < np.minimum(nprobes, layout.count)[:, None]
    return [np.flatnonzero(probed[:, p]) for p in range(layout.count)]


def compare(
    found: Found,
    queries: np.ndarray,
    which: np.ndarray,
    row_ids: np.ndarray,
    vectors: np.ndarray,
    norms: np.ndarray,
    metric: str,
) -> None:
    """Compare queries ``which`` with these rows, keeping each query's k nearest in ``found``."""
    if not len(which) or not len(row_ids):
        return
    k = found.distances.shape[1]
    step = max(1, _MOST_PAIRS // len(row_ids))
    for start in range(0, len(which), step):
        chunk = which[start : start + step]
        q = queries[chunk]
        distance = search_cache.distances(vectors, norms, q, metric)
        distance[np.isnan(distance)] = np.inf
        # l2 ranks by a cancelling form: keep a few more, then compute those directly
        take = min(len(row_ids), k + 16 if metric == "l2" else k)
        if take < len(row_ids):
            best = np.argpartition(distance, take - 1, axis=1)[:, :take]
        else:
            best = np.broadcast_to(np.arange(len(row_ids)), (len(chunk), take))
        chosen = np.take_along_axis(distance, best, axis=1)
        if metric == "l2":
            exact = search_cache.l2_exact(vectors[best], q[:, None, :])
            chosen = np.where(np.isinf(chosen), np.inf, exact).astype(np.float32)
        found.merge(chunk, row_ids[best], chosen)


def groups(
    ds: lance.LanceDataset,
    column: str,
    filter: str | None,
    layout: IvfLayout | None,
    held: search_cache.Cached | None,
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """(bucket, row ids, vectors, norms) of the rows to compare, a partition's rows at a
    time (bucket ``layout.count``, or 0 without a layout: rows outside the index): from
    memory when ``held``, else streamed from the table (its rows ``filter`` keeps)."""
    count = layout.count if layout is not None else 0
    if held is not None and held.buckets == count + 1:
        for b in range(held.buckets):
            start, end = int(held.offsets[b]), int(held.offsets[b + 1])
            if end > start:
                yield b, held.row_ids[start:end], held.vectors[start:end], held.norms[start:end]
        return
    if held is not None:  # held without partitions: compare all with every query
        yield count, held.row_ids, held.vectors, held.norms
        return
    field = ds.schema.field(column)
    rows = max(4096, _BATCH_BYTES // max(field.type.list_size * 4, 1))
    scanner = ds.scanner(columns=[column], filter=filter, with_row_id=True, batch_size=rows)
    for batch in scanner.to_batches():
        row_ids, vectors = search_cache.vectors_of(pa.Table.from_batches([batch]), column)
        if not len(row_ids):
            continue
        norms = search_cache.row_norms(vectors)
        if layout is None:
            yield count, row_ids, vectors, norms
            continue
        bucket = search_cache.partition_of(row_ids, layout.row_ids, layout.partitions, count)
        order = np.argsort(bucket, kind="stable")
        bucket, row_ids, vectors, norms = bucket[order], row_ids[order], vectors[order], norms[order]
        bounds = np.flatnonzero(np.diff(bucket)) + 1
        for start, end in zip(np.r_[0, bounds], np.r_[bounds, len(bucket)], strict=True):
            yield int(bucket[start]), row_ids[start:end], vectors[start:end], norms[start:end]


def search(
    ds: lance.LanceDataset,
    column: str,
    queries: np.ndarray,
    k: int,
    metric: str,
    filter: str | None,
    layout: IvfLayout | None,
    nprobes: np.ndarray,
    held: search_cache.Cached | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k nearest rows of each of ``queries`` among the rows ``filter`` keeps in the
    ``nprobes[i]`` partitions nearest query i (all rows without a ``layout``), and rows
    outside the index: (query index, row id, distance), each query's nearest first."""
    everyone = np.arange(len(queries))
    by_partition = probes(layout, queries, metric, nprobes) if layout is not None else []
    # each thread keeps its own k nearest (partitions share queries), merged at the end
    own: dict[int, Found] = {}

    def run(which: np.ndarray, row_ids: np.ndarray, vectors: np.ndarray, norms: np.ndarray) -> None:
        mine = own.setdefault(threading.get_ident(), Found.empty(len(queries), k))
        compare(mine, queries, which, row_ids, vectors, norms, metric)

    threads = max(1, os.cpu_count() or 1)
    with search_cache.one_blas_thread(), ThreadPoolExecutor(threads) as pool:
        pending: list[Future[None]] = []
        for bucket, row_ids, vectors, norms in groups(ds, column, filter, layout, held):
            which = by_partition[bucket] if bucket < len(by_partition) else everyone
            pending.append(pool.submit(run, which, row_ids, vectors, norms))
            if len(pending) > 4 * threads:
                pending.pop(0).result()
        for future in pending:
            future.result()
    found = Found.empty(len(queries), k)
    for other in own.values():
        found.merge(everyone, other.row_ids, other.distances)
    query = np.repeat(everyone, k).reshape(len(queries), k)
    order = np.lexsort((found.row_ids, found.distances), axis=1)
    ids = np.take_along_axis(found.row_ids, order, axis=1)
    dist = np.take_along_axis(found.distances, order, axis=1)
    real = np.isfinite(dist)
    return query[real], ids[real], dist[real]
