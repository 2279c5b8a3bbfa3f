"""The vectors of a filter's rows held in memory, grouped by IVF partition, so an exact
filtered search is one matrix product over the partitions it needs.

A filter whose rows lie away from the query makes an IVF search probe many partitions,
and an exact search read every matching row: both cost several times the unfiltered
search. But the same filter comes back (a curation session asks many queries of one
label), and a version never changes. So the matching rows' ids and vectors are read once,
as a numpy matrix, cached per (dataset, version, filter, column) in an LRU capped at
``vector_search_cache_bytes``. A new version is a new key, so a write never sees stale
vectors.

The rows are held in the order of the vector index's partitions (those not in the
index first), so a search can read only the partitions nearest the query (:class:`Scan`):
in centroid order until it has compared as many rows as the unfiltered search reads,
then a window of a quarter as many more at a time for as long as the last window found one of
the k nearest so far. With exact distances the nearest partitions hold the nearest rows
(measured on 200,000 clustered 512-d vectors: recall@10 0.995 or more at every filter,
about 25,000 rows compared; see ``BENCHMARKS.md``). When comparing every held row is
estimated no dearer than the plan the cache replaces, or that plan was exact, every row
is compared: exact, as Lance's exact prefiltered search.

Distances are Lance's: ``l2`` the squared Euclidean distance, ``cosine`` one minus the
cosine similarity, ``dot`` one minus the dot product. Rows whose vector is NULL are never
neighbours.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import lance
import numpy as np
import pyarrow as pa
from threadpoolctl import ThreadpoolController

from lancesql.catalog import version_identity
from lancesql.settings import declare

declare(
    "vector_search_cache_bytes",
    512 << 20,
    int,
    "Memory for the vectors of filtered searches' matching rows, cached per version and "
    "filter so that later searches with the same filter run exactly as one matrix product, "
    "and for a table's vectors read by a similarity join, which later searches of the "
    "table compare as the join did (0 turns the cache off).",
)

#: Metrics the cache computes as Lance does.
METRICS = ("l2", "cosine", "dot")


@dataclass(frozen=True)
class Cached:
    """The rows a filter keeps that have a vector: their row ids and vectors, grouped by
    partition: bucket ``b``'s rows are ``[offsets[b], offsets[b + 1])``, the last bucket
    the rows outside the index (all rows when there is no partitioned index)."""

    row_ids: np.ndarray  # uint64
    vectors: np.ndarray  # rows x dim, float32
    norms: np.ndarray  # each row's L2 norm
    offsets: np.ndarray  # buckets + 1 starts

    @property
    def nbytes(self) -> int:
        return int(self.row_ids.nbytes + self.vectors.nbytes + self.norms.nbytes)

    @property
    def buckets(self) -> int:
        return len(self.offsets) - 1

    @property
    def per_bucket(self) -> np.ndarray:
        return np.diff(self.offsets)


_LOCK = threading.Lock()
_CACHE: OrderedDict[tuple[str, int, str, str, str], Cached] = OrderedDict()
#: How many searches asked for each key (bounded): a filter searched again is worth reading.
_ASKED: OrderedDict[tuple[str, int, str, str, str], int] = OrderedDict()


def _key(ds: lance.LanceDataset, filter: str | None, column: str) -> tuple[str, int, str, str, str]:
    """Shared by every connection that opens this version (see
    :func:`lancesql.catalog.version_identity`). No filter (None) holds every row."""
    return (*version_identity(ds), "" if filter is None else filter, column)


_BLAS: list[ThreadpoolController] = []


def one_blas_thread() -> Any:
    """A context in which BLAS runs on the calling thread alone. Its own threads, woken
    for each of many small products, stall on a busy machine (measured: a partition scan
    3x slower, a similarity join 3x slower, at a load of 2 per core)."""
    if not _BLAS:
        _BLAS.append(ThreadpoolController())  # finding the BLAS libraries takes ~ms: once
    return _BLAS[0].limit(limits=1, user_api="blas")


def lookup(ds: lance.LanceDataset, filter: str | None, column: str) -> Cached | None:
    """The cached rows of ``filter`` in this version of ``ds``, if held."""
    if not _CACHE:
        return None  # (every unfiltered search asks: no key to make when nothing is held)
    key = _key(ds, filter, column)
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
        return cached


def asked(ds: lance.LanceDataset, filter: str | None, column: str) -> int:
    """Count one more search of ``filter`` on this version; how many there were so far."""
    key = _key(ds, filter, column)
    with _LOCK:
        count = _ASKED.get(key, 0) + 1
        _ASKED[key] = count
        _ASKED.move_to_end(key)
        while len(_ASKED) > 1024:
            _ASKED.popitem(last=False)
        return count


def fits(rows: int, dim: int, cap: int) -> bool:
    """Whether ``rows`` vectors of ``dim`` floats fit in the cache's ``cap`` bytes."""
    return cap > 0 and rows * (dim * 4 + 12) <= cap


def vectors_of(table: pa.Table, column: str) -> tuple[np.ndarray, np.ndarray]:
    """The row ids and vectors (float32 matrix) of ``table``'s rows whose ``column`` is not NULL."""
    row_ids, pieces = _pieces(table, column)
    dim = table.schema.field(column).type.list_size
    if len(pieces) == 1 and pieces[0].dtype == np.float32 and pieces[0].flags.c_contiguous:
        return row_ids, pieces[0]
    return row_ids, _stack(pieces, len(row_ids), dim)


def _stack(pieces: list[np.ndarray], rows: int, dim: int, place: np.ndarray | None = None) -> np.ndarray:
    """``pieces`` as one float32 matrix of ``rows`` rows: in order, or each row written
    once, straight to its row in ``place``."""
    matrix = np.empty((rows, dim), np.float32)
    at = 0
    for piece in pieces:
        matrix[slice(at, at + len(piece)) if place is None else place[at : at + len(piece)]] = piece
        at += len(piece)
    return matrix


def _pieces(table: pa.Table, column: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """The row ids of ``table``'s rows whose ``column`` is not NULL, and their vectors as
    one matrix per chunk (views of Arrow's buffers where they can be: no copy)."""
    dim = table.schema.field(column).type.list_size
    ids = table.column("_rowid")
    pieces, kept = [], []
    at = 0
    for chunk in table.column(column).chunks:
        n = len(chunk)
        chunk_ids = ids.slice(at, n)
        at += n
        if chunk.null_count:
            valid = chunk.is_valid()
            chunk, chunk_ids = chunk.filter(valid), chunk_ids.filter(valid)
        if not len(chunk):
            continue
        flat = chunk.flatten().to_numpy(zero_copy_only=False)
        pieces.append(flat.reshape(len(chunk), dim))
        kept.append(np.asarray(chunk_ids.to_numpy(), np.uint64))
    row_ids = np.concatenate(kept) if kept else np.empty(0, np.uint64)
    return row_ids, pieces


def row_norms(matrix: np.ndarray) -> np.ndarray:
    """The L2 norm of each row of ``matrix`` (as ``np.linalg.norm(matrix, axis=1)``, without
    its temporary copy of the squared matrix)."""
    return np.sqrt(np.einsum("ij,ij->i", matrix, matrix))


def partition_of(row_ids: np.ndarray, indexed: np.ndarray, partitions: np.ndarray, count: int) -> np.ndarray:
    """The partition of each of ``row_ids`` (``count`` for rows outside the index), given
    the index's sorted row ids ``indexed`` and their ``partitions``."""
    if not len(indexed):
        return np.full(len(row_ids), count, np.int64)
    pos = np.minimum(np.searchsorted(indexed, row_ids), len(indexed) - 1)
    return np.where(indexed[pos] == row_ids, partitions[pos], count).astype(np.int64)


def load(
    ds: lance.LanceDataset,
    filter: str | None,
    column: str,
    cap: int,
    layout: tuple[np.ndarray, np.ndarray, int] | None = None,
) -> Cached | None:
    """Read the rows ``filter`` keeps (their ids and ``column``), grouped by the partitions
    of ``layout`` (the index's sorted row ids, their partitions, the partition count), and
    cache them, evicting the least recently used; None when they do not fit in ``cap``."""
    table = ds.to_table(columns=[column], filter=filter or None, with_row_id=True)
    if layout is None:
        row_ids, matrix = vectors_of(table, column)
        offsets = np.array([0, len(row_ids)], np.int64)
    else:
        row_ids, pieces = _pieces(table, column)
        indexed, partitions, count = layout
        bucket = partition_of(row_ids, indexed, partitions, count)
        order = np.argsort(bucket, kind="stable")
        # each row written once, straight to its place in partition order
        place = np.empty(len(order), np.int64)
        place[order] = np.arange(len(order))
        matrix = _stack(pieces, len(row_ids), table.schema.field(column).type.list_size, place)
        row_ids = row_ids[order]
        offsets = np.searchsorted(bucket[order], np.arange(count + 2)).astype(np.int64)
    cached = Cached(row_ids, matrix, row_norms(matrix), offsets)
    if cached.nbytes > cap:
        return None
    key = _key(ds, filter, column)
    with _LOCK:
        _CACHE[key] = cached
        _CACHE.move_to_end(key)
        total = sum(c.nbytes for c in _CACHE.values())
        while total > cap and len(_CACHE) > 1:
            _, evicted = _CACHE.popitem(last=False)
            total -= evicted.nbytes
    return cached


def distances(vectors: np.ndarray, norms: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """Lance's distance of each of ``queries`` (rows) to each of ``vectors``: queries x
    rows, float32, NaN where undefined (a zero vector under cosine). ``l2`` comes from
    |v|^2 - 2 v.q + |q|^2, which cancels digits: rank by it, then :func:`l2_exact`."""
    q = np.asarray(queries, dtype=np.float32).reshape(-1, vectors.shape[1])
    q_norm, q_square = np.linalg.norm(q, axis=1)[:, None], (q * q).sum(axis=1)[:, None]
    return _from_dots(q @ vectors.T, norms[None, :], q_norm, q_square, metric)


def _from_dots(
    dots: np.ndarray, norms: np.ndarray, q_norm: Any, q_square: Any, metric: str
) -> np.ndarray:
    """Lance's distance from the dot products of queries and rows, the rows' norms and the
    queries' norms and squared norms (each shaped to broadcast against ``dots``)."""
    if metric == "cosine":
        scale = q_norm * norms
        with np.errstate(divide="ignore", invalid="ignore"):
            return (1 - dots / np.where(scale == 0, np.float32(np.nan), scale)).astype(np.float32)
    if metric == "dot":
        return (1 - dots).astype(np.float32)
    return (norms**2 - 2 * dots + q_square).astype(np.float32)


def l2_exact(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances computed directly (no cancellation)."""
    return ((vectors - np.asarray(query, np.float32)) ** 2).sum(axis=-1).astype(np.float32)


@dataclass(frozen=True)
class Scan:
    """Which held rows a search compares: the buckets in ``order`` (partitions nearest the
    query first), at least ``budget`` rows, then ``window`` rows more at a time for as long
    as the last window found one of the k nearest so far (no more with ``window`` 0)."""

    order: np.ndarray
    budget: int
    window: int


def nearest(
    cached: Cached,
    query: np.ndarray,
    metric: str,
    k: int,
    with_ties: bool,
    scan: Scan | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Row ids and distances of the ``k`` nearest cached rows, nearest first (and every
    row tied with the k-th too when ``with_ties``), and how many buckets were read: all
    rows when ``scan`` is None (exact), else the rows ``scan`` reads."""
    q = np.asarray(query, dtype=np.float32)
    few = 2 * k + 64  # kept between windows: l2 ranks by a cancelling form (below)
    if scan is None:
        index = np.arange(len(cached.row_ids))
        with one_blas_thread():
            distance = _distances(cached, [(0, len(cached.row_ids))], q, metric)
        return (*_select(cached, index, distance, q, metric, k, with_ties), cached.buckets)
    index, distance = np.empty(0, np.int64), np.empty(0, np.float32)
    offsets, read, first = cached.offsets, 0, True
    while read < len(scan.order):
        goal, rows, spans = scan.budget if first else scan.window, 0, []
        while read < len(scan.order) and (rows < goal or not rows):
            b = int(scan.order[read])
            start, end = int(offsets[b]), int(offsets[b + 1])
            read += 1
            if end > start:
                spans.append((start, end))
                rows += end - start
        if not spans:
            break
        new_index = np.concatenate([np.arange(s, e) for s, e in spans])
        with one_blas_thread():
            new = _distances(cached, spans, q, metric)
        kth = _kth(distance, k)
        index, distance = np.concatenate([index, new_index]), np.concatenate([distance, new])
        if len(distance) > few:
            keep = np.flatnonzero(~np.isnan(distance))
            if len(keep) > few:
                cut = np.partition(distance[keep], few - 1)[few - 1]
                keep = keep[distance[keep] <= cut]
            index, distance = index[keep], distance[keep]
        if not first and not (new < kth).any():
            break  # the last window found none of the k nearest: the rest lie further
        if scan.window <= 0:
            break
        first = False
    return (*_select(cached, index, distance, q, metric, k, with_ties), read)


def _select(
    cached: Cached,
    index: np.ndarray,
    distance: np.ndarray,
    q: np.ndarray,
    metric: str,
    k: int,
    with_ties: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest of the compared rows ``index`` (every tie of the k-th too when
    ``with_ties``), nearest first, then by row id."""
    few = 2 * k + 64
    valid = np.flatnonzero(~np.isnan(distance))
    if metric == "l2":
        if len(valid) > few:
            kth = np.partition(distance[valid], few - 1)[few - 1]
            valid = valid[distance[valid] <= kth]
        distance[valid] = l2_exact(cached.vectors[index[valid]], q)
    if len(valid) > k:
        part = valid[np.argpartition(distance[valid], k - 1)[:k]]
        if with_ties:
            kth = distance[part].max()
            part = valid[distance[valid] <= kth]
    else:
        part = valid
    ids = cached.row_ids[index[part]]
    order = np.lexsort((ids, distance[part]))
    return ids[order], distance[part][order]


def _distances(cached: Cached, spans: list[tuple[int, int]], q: np.ndarray, metric: str) -> np.ndarray:
    """Lance's distance of ``q`` to the held rows of ``spans``, in order (NaN: undefined)."""
    dots = np.concatenate([cached.vectors[s:e] @ q for s, e in spans])
    norms = np.concatenate([cached.norms[s:e] for s, e in spans])
    return _from_dots(dots, norms, np.float32(np.linalg.norm(q)), np.float32(q @ q), metric)


def _kth(distance: np.ndarray, k: int) -> float:
    """The k-th smallest of ``distance`` (NaN ignored), infinity when fewer."""
    valid = distance[~np.isnan(distance)]
    return float(np.partition(valid, k - 1)[k - 1]) if len(valid) >= k else float("inf")
