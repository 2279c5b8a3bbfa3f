"""Where a filter's rows lie in the IVF index, and how many partitions a search must probe.

An IVF search probes the ``nprobes`` partitions whose centroids lie nearest the query.
Without a filter those partitions hold the query's neighbours. With a prefilter they
may hold none of the matching rows (the filter keeps rows of other clusters), and then
Lance either returns too few rows (``nprobes`` fixes the most partitions) or widens until
it finds k rows anywhere (``minimum_nprobes``), which are not the k nearest matching rows.

So the planner looks at where the matching rows lie. The index keeps each row's
partition (its ``auxiliary.idx`` file lists row ids partition by partition, and the index
statistics give each partition's size and centroid); the rows a filter keeps are read
through the scalar indices as row ids and counted per partition. Both are cached: the
layout per open dataset, version and index, the counts per version, index and filter (a
version never changes).

The partitions are then walked in centroid-distance order, as Lance walks them. When
the partitions nearest the query (a tenth of ``nprobes``, at least one) hold matching
rows about as densely as the table does, or more (a filter spread evenly, or rows near
the query), those partitions are probed, as without a filter (and more if they hold
fewer than k matching rows). Otherwise the walk counts partitions by their density of
matching rows against the table's (at most 1 each; an empty one not at all) and goes on
until it has counted more than ``nprobes``: up to ``(1 + 5) x nprobes`` when none of the
matching rows lie near the query, since rows away from the query are all about as far
from it and its k nearest among them spread over more partitions (measured); the refine
factor is raised in the same proportion, as PQ distances rank such rows less surely.

Then the cheapest plan runs, by an estimate of its time (:class:`Costs`, in microseconds,
measured on the benchmark machine for 512-d vectors and scaled by the dimension): the
index over those partitions (a fixed cost, a PQ code compared per row in them, and the
refined candidates read in full), Lance's exact search over the matching rows (each read
in full and compared), or, when the matching rows' vectors are held in memory
(:mod:`lancesql.udfs.search_cache`), an exact scan of the matching rows in the partitions
nearest the query: walked in the same order until they hold as many matching rows as
the unfiltered search reads (its ``nprobes`` nearest partitions' rows), at least k.
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import lance
import numpy as np
from lance.file import LanceFileReader

from lancesql.settings import declare

declare(
    "vector_search_default_nprobes",
    20,
    int,
    "The nprobes a filtered vector_search plans for when none is given (LanceDB's default).",
)
declare(
    "vector_search_exact_cost",
    11.0,
    float,
    "The planner's estimate of the microseconds Lance's exact prefiltered search spends "
    "on each matching row of 512 dimensions (read in full and compared): a filtered "
    "search runs exactly when that is below the index search's estimate.",
)
#: How many more partitions of matching rows a search probes when none lie near the
#: query (measured: the k nearest far rows spread over several times nprobes partitions).
_AWAY = 5.0
#: From this (squared) density ratio near the query on, the matching rows count as near.
_LOCAL = 0.8


@dataclass(frozen=True)
class Costs:
    """Estimated microseconds of each plan's steps, for rows of ``dim`` dimensions.

    Measured on the benchmark machine (2 cores, 512-d float32, 200,000 rows): a Lance
    index search costs ~6 ms however few partitions it probes, ~0.1 us per row of the
    probed partitions (PQ codes) and ~15 us per refined candidate (a random read); its
    exact prefiltered search ~7 ms and ~11 us per matching row; reading the matching rows into
    memory ~5 us per row; comparing a held row ~0.4 us (one matrix-vector product,
    memory-bound); a held row against one more query in a matrix-matrix product
    ~0.04 us. The per-row costs of full vectors scale with the dimension."""

    exact_row: float = 11.0
    dim: int = 512

    index_setup: float = 6_000.0
    pq_row: float = 0.1
    refine: float = 15.0
    exact_setup: float = 7_000.0
    cached_setup: float = 1_000.0

    @property
    def scale(self) -> float:
        return max(self.dim, 1) / 512

    def index(self, scanned: int, candidates: int) -> float:
        """A Lance index search reading ``scanned`` rows' PQ codes, refining ``candidates``."""
        return self.index_setup + self.pq_row * scanned + self.refine * candidates

    def exact(self, matching: int) -> float:
        """Lance's exact prefiltered search over ``matching`` rows."""
        return self.exact_setup + self.exact_row * self.scale * matching

    def load(self, rows: int) -> float:
        """Reading ``rows`` rows' vectors into memory."""
        return 5.0 * self.scale * rows

    def cached(self, scanned: int) -> float:
        """An exact scan of ``scanned`` rows held in memory (and reading the k found)."""
        return self.cached_setup + 0.4 * self.scale * scanned

    def batched(self, scanned: int) -> float:
        """``scanned`` (row, query) pairs compared in matrix-matrix products."""
        return 0.04 * self.scale * scanned


@dataclass(frozen=True)
class IvfLayout:
    """Which partition each indexed row lies in, and the partitions' centroids."""

    centroids: np.ndarray  # partitions x dim
    sizes: np.ndarray  # rows in each partition
    row_ids: np.ndarray  # the indexed row ids, sorted
    partitions: np.ndarray  # the partition of each of row_ids

    @property
    def count(self) -> int:
        return len(self.sizes)


@dataclass(frozen=True)
class Matching:
    """The rows a filter keeps: how many in all, and in each partition."""

    total: int
    per_partition: np.ndarray


@dataclass(frozen=True)
class Probe:
    """The planner's choice for one filtered search."""

    path: str  # "index" or "exact"
    nprobes: int
    reason: str
    #: the refine factor: rows away from the query are ranked by PQ codes less surely,
    #: so more candidates are re-ranked with exact distances
    refine_factor: int | None = None
    #: (partition, rows in it, matching rows in it) for each probed partition, in order.
    probed: tuple[tuple[int, int, int], ...] = ()
    #: the estimated microseconds of the plan chosen
    cost: float = 0.0


_LOCK = threading.Lock()
#: Keyed by the open dataset handle too (weakly): a table dropped and made again at the
#: same path starts at the same version numbers, and the catalog gives it a new handle.
_HANDLES: weakref.WeakKeyDictionary[lance.LanceDataset, int] = weakref.WeakKeyDictionary()
_NEXT = itertools.count()
_LAYOUTS: OrderedDict[tuple[int, int, str], IvfLayout | None] = OrderedDict()
_MATCHING: OrderedDict[tuple[int, int, str, str], Matching] = OrderedDict()


def _handle(ds: lance.LanceDataset) -> int:
    with _LOCK:
        if ds not in _HANDLES:
            _HANDLES[ds] = next(_NEXT)
        return _HANDLES[ds]


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any, size: int) -> Any:
    with _LOCK:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > size:
            cache.popitem(last=False)
    return value


def ivf_layout(ds: lance.LanceDataset, index: str) -> IvfLayout | None:
    """The partition layout of IVF index ``index`` in this version of ``ds`` (cached), or
    None when the index does not expose it (not IVF, or its files cannot be read)."""
    key = (_handle(ds), ds.version, index)
    if key in _LAYOUTS:
        return _LAYOUTS[key]
    return _remember(_LAYOUTS, key, _read_layout(ds, index), 8)


def _read_layout(ds: lance.LanceDataset, index: str) -> IvfLayout | None:
    try:
        # the statistics without centroids (JSON of a few KB): the centroids are read
        # from the index file itself, the statistics with them are megabytes of JSON
        # text that take a third of a second to make and read (256 x 512 floats)
        segments = _segments(ds, index, centroids=False)
        centroids = _index_centroids(str(segments[0]["uri"])) if segments else None
        if segments and centroids is None:
            segments = _segments(ds, index, centroids=True)
        if not segments or not all("partitions" in s for s in segments):
            return None
        if centroids is None:
            if "centroids" not in segments[0]:
                return None
            centroids = np.asarray(segments[0]["centroids"], dtype=np.float32)
        sizes = np.zeros(len(centroids), np.int64)
        ids, parts = [], []
        for segment in segments:
            seg_sizes = np.array([p["size"] for p in segment["partitions"]], np.int64)
            if len(seg_sizes) != len(centroids):
                return None
            uri = str(segment["uri"])
            aux = uri[: uri.rfind("/") + 1] + "auxiliary.idx"
            reader = LanceFileReader(aux, columns=["_rowid"])
            column = reader.read_all(batch_size=1 << 20).to_table().column("_rowid")
            seg_ids = column.to_numpy()
            if len(seg_ids) != seg_sizes.sum():
                return None
            ids.append(seg_ids)
            parts.append(np.repeat(np.arange(len(seg_sizes), dtype=np.int32), seg_sizes))
            sizes += seg_sizes
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, IndexError):
        return None
    row_ids = np.concatenate(ids)
    partitions = np.concatenate(parts)
    order = np.argsort(row_ids, kind="stable")
    return IvfLayout(centroids, sizes, row_ids[order], partitions[order])


def _segments(ds: lance.LanceDataset, index: str, centroids: bool) -> list[dict[str, Any]]:
    """The statistics of each segment of ``index`` (with its centroids when asked)."""
    with _LOCK:
        # the statistics include the centroids only when asked for them
        before = os.environ.get("LANCE_INCLUDE_VECTOR_CENTROIDS")
        os.environ["LANCE_INCLUDE_VECTOR_CENTROIDS"] = "true" if centroids else "false"
        try:
            stats = ds.stats.index_stats(index)
        finally:
            if before is None:
                del os.environ["LANCE_INCLUDE_VECTOR_CENTROIDS"]
            else:
                os.environ["LANCE_INCLUDE_VECTOR_CENTROIDS"] = before
    return list(stats.get("indices") or [])


#: Lance's ``Tensor.DataType`` (``protos/index.proto``) to numpy's.
_TENSOR_TYPES = {1: "<f2", 2: "<f4", 3: "<f8"}


def _index_centroids(uri: str) -> np.ndarray | None:
    """The IVF centroids kept in index file ``uri`` (partitions x dim, float32), or None
    when it does not hold them as expected.

    The file's schema metadata ``lance:ivf`` names the global buffer holding the IVF
    model, a protobuf ``Ivf`` message whose field 4 is the centroids as a ``Tensor``
    (field 1 its data type, 2 its shape, 3 its little-endian bytes)."""
    try:
        reader = LanceFileReader(uri)
        metadata = reader.metadata().schema.metadata or {}
        buffer = bytes(reader.read_global_buffer(int(metadata[b"lance:ivf"])))
        tensor = dict((f, v) for f, _, v in _protobuf(buffer)).get(4)
        if not isinstance(tensor, bytes):
            return None
        fields = list(_protobuf(tensor))
        kind = next((v for f, w, v in fields if f == 1 and w == 0), 0)
        shape = [n for f, w, v in fields if f == 2 for n in (_packed(v) if w == 2 else [v])]
        data = next((v for f, w, v in fields if f == 3 and w == 2), None)
        dtype = _TENSOR_TYPES.get(int(kind))
        if dtype is None or not isinstance(data, bytes) or len(shape) != 2:
            return None
        count, dim = int(shape[0]), int(shape[1])
        if count * dim * np.dtype(dtype).itemsize != len(data):
            return None
        return np.frombuffer(data, dtype).reshape(count, dim).astype(np.float32)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, IndexError):
        return None


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _protobuf(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of a protobuf message, in order."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        field, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 1 or wire == 5:
            width = 8 if wire == 1 else 4
            value, at = data[at : at + width], at + width
        elif wire == 2:
            length, at = _varint(data, at)
            value, at = data[at : at + length], at + length
        else:
            raise ValueError(f"protobuf wire type {wire}")
        yield field, wire, value


def _packed(data: int | bytes) -> list[int]:
    """The varints of a packed repeated field."""
    if not isinstance(data, bytes):
        return [data]
    values, at = [], 0
    while at < len(data):
        value, at = _varint(data, at)
        values.append(value)
    return values


def matching(ds: lance.LanceDataset, index: str, layout: IvfLayout, filter: str) -> Matching:
    """The rows ``filter`` keeps, per partition of ``layout`` (cached per version and filter).

    The row ids come through the scalar indices; rows not in the index (appended after
    it was built) count in the total only: Lance searches them flat anyway.
    """
    key = (_handle(ds), ds.version, index, filter)
    cached = _MATCHING.get(key)
    if cached is not None:
        return cached
    table = ds.scanner(filter=filter, columns=[], with_row_id=True).to_table()
    ids = table.column("_rowid").to_numpy() if table.num_rows else np.empty(0, np.uint64)
    pos = np.searchsorted(layout.row_ids, ids)
    pos = np.minimum(pos, max(len(layout.row_ids) - 1, 0))
    indexed = layout.row_ids[pos] == ids if len(layout.row_ids) else np.zeros(len(ids), bool)
    per_partition = np.bincount(layout.partitions[pos[indexed]], minlength=layout.count)
    return _remember(_MATCHING, key, Matching(len(ids), per_partition), 256)


def centroid_order(layout: IvfLayout, query: np.ndarray, metric: str) -> np.ndarray:
    """The partitions in the order an IVF search probes them for ``query``."""
    c = layout.centroids
    q = np.asarray(query, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(c, axis=1) * max(float(np.linalg.norm(q)), 1e-30)
        distance = 1 - (c @ q) / np.maximum(norms, 1e-30)
    elif metric == "dot":
        distance = -(c @ q)
    else:
        distance = ((c - q) ** 2).sum(axis=1)
    return np.argsort(distance, kind="stable")


def plan_probes(
    layout: IvfLayout,
    rows: Matching,
    table_rows: int,
    query: np.ndarray,
    metric: str,
    k: int,
    nprobes: int,
    refine_factor: int | None,
    costs: Costs,
) -> Probe:
    """Choose between the index over enough partitions and an exact search (see above)."""
    order = centroid_order(layout, query, metric)
    sizes = layout.sizes[order]
    hits = rows.per_partition[order]
    nprobes = max(1, min(nprobes, layout.count))
    density = rows.total / max(table_rows, 1)
    # a partition counts by its density of matching rows against the table's, at most 1
    weight = np.minimum(1.0, hits / np.maximum(sizes, 1) / max(density, 1e-12))
    # how much the query's own neighbourhood (its nearest partitions) matches,
    # against the table as a whole: 1 or more when the matching rows lie near the query
    # or evenly, 0 when none lie near it
    nearest = max(1, nprobes // 10)  # the query's own partitions
    local = hits[:nearest].sum() / max(sizes[:nearest].sum(), 1) / max(density, 1e-12)
    local = float(min(1.0, local)) ** 2
    # rows away from the query spread over more partitions than its own neighbours do:
    # the further they lie, the more partitions of them are probed (up to 6 x nprobes)
    wanted = nprobes * (1 + _AWAY * (1 - local))
    counted = np.cumsum(weight)
    seen = np.cumsum(hits)
    at_least_k = seen >= min(k, int(hits.sum()))
    if local >= _LOCAL:
        # the query's neighbourhood matches about as densely as the table, or more: the
        # unfiltered search's partitions hold the nearest matching rows
        enough = at_least_k & (np.arange(1, len(order) + 1) >= nprobes)
    else:
        enough = (counted >= wanted - 1e-9) & at_least_k
    probes = int(np.argmax(enough)) + 1 if enough.any() else layout.count
    probes = max(probes, nprobes)
    scanned = int(sizes[:probes].sum())
    refine = None
    if refine_factor is not None:
        refine = round(refine_factor * (1 + _AWAY * (1 - local) / 2))
    candidates = k * (refine or 1)
    index_cost = costs.index(scanned, candidates)
    flat_cost = costs.exact(rows.total)
    probed = tuple(zip(order[:probes].tolist(), sizes[:probes].tolist(), hits[:probes].tolist(), strict=True))
    why = (
        f"{rows.total} of {table_rows} rows match; the {nprobes} partitions nearest the "
        f"query hold {int(hits[:nprobes].sum())} of them; probing {probes} partitions "
        f"({scanned} rows, {int(seen[probes - 1])} matching) sees {wanted:.0f} partitions of "
        f"matching rows (near the query they are {local:.0%} as dense as in the table, "
        f"squared); estimated "
        f"{index_cost / 1000:,.1f} ms (index) vs {flat_cost / 1000:,.1f} ms (exact over the matching rows)"
    )
    if flat_cost < index_cost:
        return Probe("exact", probes, why, cost=flat_cost)
    if refine is not None and refine != refine_factor:
        why += f"; refine_factor {refine_factor} -> {refine} (matching rows away from the query)"
    return Probe("index", probes, why, refine, probed, index_cost)


def describe(probed: tuple[tuple[int, int, int], ...], limit: int = 40) -> str:
    """``partition:matching/rows`` for each probed partition, for EXPLAIN."""
    parts = [f"{p}:{m}/{n}" for p, n, m in probed[:limit]]
    more = f" ... ({len(probed) - limit} more)" if len(probed) > limit else ""
    return " ".join(parts) + more
