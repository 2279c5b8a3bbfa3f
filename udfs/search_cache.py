"""The vectors of a filter's rows held in memory, so an exact filtered search is one matmul.

A filter whose rows lie away from the query makes an IVF search probe many partitions,
and an exact search read every matching row: both cost several times the unfiltered
search. But the same filter comes back (a curation session asks many queries of one
label), and a version never changes. So the matching rows' ids and vectors are read once,
as a numpy matrix, cached per (dataset, version, filter, column) in an LRU capped at
``vector_search_cache_bytes``; later searches are one matrix product and an
``argpartition``: exact, as Lance's exact prefiltered search, in milliseconds. A new
version is a new key, so a write never sees stale vectors.

Distances are Lance's: ``l2`` the squared Euclidean distance, ``cosine`` one minus the
cosine similarity, ``dot`` one minus the dot product. Rows whose vector is NULL are never
neighbours.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import lance
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lancesql.settings import declare

declare(
    "vector_search_cache_bytes",
    256 << 20,
    int,
    "Memory for the vectors of filtered searches' matching rows, cached per version and "
    "filter so that later searches with the same filter run exactly as one matrix product "
    "(0 turns the cache off).",
)

#: Metrics the cache computes as Lance does.
METRICS = ("l2", "cosine", "dot")


@dataclass(frozen=True)
class Cached:
    """The rows a filter keeps that have a vector: their row ids and vectors."""

    row_ids: np.ndarray  # uint64
    vectors: np.ndarray  # rows x dim, float32
    norms: np.ndarray  # each row's L2 norm

    @property
    def nbytes(self) -> int:
        return int(self.row_ids.nbytes + self.vectors.nbytes + self.norms.nbytes)


_LOCK = threading.Lock()
_CACHE: OrderedDict[tuple[str, int, str, str, str], Cached] = OrderedDict()


def _key(ds: lance.LanceDataset, filter: str, column: str) -> tuple[str, int, str, str, str]:
    """Shared by every connection that opens this version: the path and version, and the
    newest data file's name (a uuid), since a table dropped and made again at the same
    path starts at the same version numbers."""
    fragments = ds.get_fragments()
    files = fragments[-1].data_files() if fragments else []
    newest = f"{len(fragments)}:{files[0].path if files else ''}"
    return (str(ds.uri), ds.version, newest, filter, column)


def lookup(ds: lance.LanceDataset, filter: str, column: str) -> Cached | None:
    """The cached rows of ``filter`` in this version of ``ds``, if held."""
    key = _key(ds, filter, column)
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
        return cached


def fits(rows: int, dim: int, cap: int) -> bool:
    """Whether ``rows`` vectors of ``dim`` floats fit in the cache's ``cap`` bytes."""
    return cap > 0 and rows * (dim * 4 + 12) <= cap


def load(ds: lance.LanceDataset, filter: str, column: str, cap: int) -> Cached | None:
    """Read the rows ``filter`` keeps (their ids and ``column``) and cache them, evicting
    the least recently used; None when they do not fit in ``cap`` bytes."""
    table = ds.to_table(columns=[column], filter=filter, with_row_id=True)
    vectors = table.column(column).combine_chunks()
    keep = pc.is_valid(vectors)
    row_ids = table.column("_rowid").combine_chunks().filter(keep).to_numpy()
    vectors = vectors.filter(keep)
    dim = vectors.type.list_size
    flat = pc.list_flatten(vectors).cast(pa.float32()).to_numpy(zero_copy_only=False)
    matrix = np.ascontiguousarray(flat.reshape(-1, dim), dtype=np.float32)
    cached = Cached(np.asarray(row_ids, np.uint64), matrix, np.linalg.norm(matrix, axis=1))
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


def nearest(
    cached: Cached, query: np.ndarray, metric: str, k: int, with_ties: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Row ids and distances of the ``k`` nearest cached rows, nearest first (and every
    row tied with the k-th too when ``with_ties``)."""
    q = np.asarray(query, dtype=np.float32)
    dots = cached.vectors @ q
    distance: np.ndarray
    if metric == "cosine":
        norms = cached.norms * np.float32(np.linalg.norm(q))
        distance = 1 - dots / np.where(norms == 0, np.float32(np.nan), norms)
    elif metric == "dot":
        distance = 1 - dots
    else:
        # |v|^2 - 2 v.q + |q|^2 cancels digits: rank by it, then recompute the nearest
        # few directly (below)
        distance = cached.norms**2 - 2 * dots + np.float32(q @ q)
    distance = distance.astype(np.float32)
    valid = np.flatnonzero(~np.isnan(distance))
    if metric == "l2":
        few = 2 * k + 64
        if len(valid) > few:
            kth = np.partition(distance[valid], few - 1)[few - 1]
            valid = valid[distance[valid] <= kth]
        distance[valid] = ((cached.vectors[valid] - q) ** 2).sum(axis=1)
    if len(valid) > k:
        part = valid[np.argpartition(distance[valid], k - 1)[:k]]
        if with_ties:
            kth = distance[part].max()
            part = valid[distance[valid] <= kth]
    else:
        part = valid
    order = part[np.lexsort((cached.row_ids[part], distance[part]))]
    return cached.row_ids[order], distance[order]
