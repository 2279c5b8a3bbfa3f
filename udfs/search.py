"""What the search functions share: opening the table, checking arguments, and planning
a vector search around its prefilter.

Design notes: ``docs/ARCHITECTURE.md``, "The search prefilter".
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from typing import Any

import lance
import numpy as np
import pyarrow as pa

from lancesql.catalog import TableRef, VersionRef
from lancesql.errors import DataError, ProgrammingError
from lancesql.settings import declare
from lancesql.udfs import search_cache, search_plan
from lancesql.udfs.registry import Session
from lancesql.udfs.search_plan import ivf_layout, plan_probes

# Lance's index statistics would otherwise warn about centroids on every call.
os.environ.setdefault("LANCE_INCLUDE_VECTOR_CENTROIDS", "false")

declare(
    "vector_search_exact_rows",
    1_000,
    int,
    "A filtered vector_search whose filter keeps at most this many rows searches them "
    "exactly (flat) without planning; above it the planner chooses the index or an exact "
    "search by their estimated cost.",
)
declare(
    "vector_search_refine_factor",
    1,
    int,
    "refine_factor of an index search that gives none: the candidates are re-ranked with "
    "exact distances, so _distance is exact (0 turns it off: PQ-approximate distances).",
)

#: Metric names users may write, to Lance's.
METRICS = {"cosine": "cosine", "l2": "l2", "euclidean": "l2", "dot": "dot", "hamming": "hamming"}


@dataclass(frozen=True)
class VectorIndex:
    """A vector index on one column."""

    name: str
    index_type: str
    metric: str


def open_table(
    session: Session, function: str, table: Any, version: VersionRef, branch: str | None = None
) -> lance.LanceDataset:
    """The dataset a search's first argument names, at ``version`` (of ``branch``)."""
    if not isinstance(table, str) or not table:
        raise ProgrammingError(f"{function}() needs a table name or a dataset URI as its first argument")
    catalog = session.catalog
    return catalog.open(TableRef(catalog.resolve_uri(table, branch), version))


def check_k(function: str, k: Any) -> int:
    """``k`` as a positive number of rows."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ProgrammingError(f"{function}() needs k, the number of rows, as an integer; got {k!r}")
    if k <= 0:
        raise DataError(f"{function}() needs k > 0 (the number of rows to return); got {k}")
    return int(k)


def check_positive(function: str, name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise DataError(f"{function}() needs {name} to be a positive integer; got {value!r}")
    return int(value)


def field_of(ds: lance.LanceDataset, function: str, column: Any) -> pa.Field:
    """The schema field of ``column``, or an error listing the table's columns."""
    if not isinstance(column, str):
        raise ProgrammingError(f"{function}() needs the column name as a string, e.g. 'image_emb'")
    schema = ds.schema
    index = schema.get_field_index(column)
    if index < 0:
        raise ProgrammingError(
            f"{function}(): the table has no column {column!r}; its columns are {', '.join(schema.names)}"
        )
    return schema.field(index)


def is_vector(field: pa.Field) -> bool:
    """Whether ``field`` holds vectors Lance can search: fixed-size lists of numbers."""
    return pa.types.is_fixed_size_list(field.type) and (
        pa.types.is_floating(field.type.value_type) or pa.types.is_integer(field.type.value_type)
    )


#: The vector index of each column, per open dataset handle and version (as ``_COUNTS``).
_INDICES: weakref.WeakKeyDictionary[lance.LanceDataset, dict[tuple[int, str], VectorIndex | None]] = (
    weakref.WeakKeyDictionary()
)


def vector_index(ds: lance.LanceDataset, column: str) -> VectorIndex | None:
    """The vector index on ``column`` in this version of ``ds``, if any (cached)."""
    known = _INDICES.setdefault(ds, {})
    key = (ds.version, column)
    if key not in known:
        known[key] = _find_vector_index(ds, column)
    return known[key]


def _find_vector_index(ds: lance.LanceDataset, column: str) -> VectorIndex | None:
    for description in ds.describe_indices():
        if list(description.field_names) != [column] or "Vector" not in description.type_url:
            continue
        details = description.details or {}
        metric = str(details.get("metric_type", "l2")).lower()
        return VectorIndex(description.name, description.index_type, METRICS.get(metric, metric))
    return None


def read_columns(ds: lance.LanceDataset, columns: list[str] | None, extra: str) -> list[str]:
    """The table's columns the query reads (all when None), then ``extra``."""
    names = ds.schema.names
    wanted = names if columns is None else [n for n in names if n in set(columns)]
    return [n for n in wanted if n != extra] + [extra]


def take_rows(ds: lance.LanceDataset, columns: list[str], row_ids: np.ndarray) -> pa.Table:
    """Rows ``row_ids`` of ``ds`` (in that order, repeats allowed), ``columns`` only: each
    row read once, in row order (fewer, more sequential reads), then put in order."""
    unique, position = np.unique(row_ids, return_inverse=True)
    if not len(unique):
        return ds.schema.empty_table().select(columns)
    rows = ds._take_rows(pa.array(unique, pa.uint64()), columns=columns)
    return rows.take(pa.array(position, pa.int64()))


def query_vector(function: str, query: Any, field: pa.Field) -> np.ndarray:
    """``query`` as a 1-d array matching the column's length."""
    if query is None:
        raise DataError(
            f"{function}(): the query vector is NULL (a NULL value, or a subquery that found no row)"
        )
    if isinstance(query, pa.Array | pa.ChunkedArray | pa.Scalar):
        query = query.to_pylist() if not isinstance(query, pa.Scalar) else query.as_py()
    try:
        vector = np.asarray(query, dtype=np.float64 if field.type.value_type == pa.float64() else np.float32)
    except (TypeError, ValueError):
        raise DataError(
            f"{function}(): the query must be a list of numbers, got {type(query).__name__}"
        ) from None
    if vector.ndim != 1:
        raise DataError(f"{function}(): the query must be one vector (a flat list of numbers)")
    size = field.type.list_size
    if len(vector) != size:
        raise DataError(
            f"{function}(): the query vector has {len(vector)} values but column "
            f"{field.name!r} holds vectors of {size}"
        )
    return vector


#: Rows each filter keeps, per open dataset handle and version. A version never
#: changes, so a count stays true; a recreated table gets a new handle from the catalog.
_COUNTS: weakref.WeakKeyDictionary[lance.LanceDataset, dict[tuple[int, str], int]] = (
    weakref.WeakKeyDictionary()
)


def count_matching(ds: lance.LanceDataset, filter: str) -> int:
    """How many rows of ``ds`` ``filter`` keeps (through the scalar indices; cached)."""
    counts = _COUNTS.setdefault(ds, {})
    key = (ds.version, filter)
    if key not in counts:
        if len(counts) > 256:
            counts.clear()
        counts[key] = ds.count_rows(filter=filter)
    return counts[key]


@dataclass
class Plan:
    """How one vector search runs."""

    path: str  # "exact", "index" or "cached"
    nearest: dict[str, Any]
    reason: str
    matching: int | None = None
    #: (partition, rows, matching rows) of each partition probed, when planned by them
    probed: tuple[tuple[int, int, int], ...] = ()
    #: the matching rows' vectors in memory, when the search runs over them ("cached")
    cached: search_cache.Cached | None = None
    #: which of ``cached``'s rows the search compares (None: all of them)
    scan: search_cache.Scan | None = None
    #: the planner's estimate of its time, in microseconds (0: not estimated)
    cost: float = 0.0


def plan_search(
    session: Session,
    ds: lance.LanceDataset,
    column: str,
    vector: np.ndarray,
    k: int,
    filter: str | None,
    metric: str | None,
    nprobes: int | None,
    refine_factor: int | None,
    use_index: Any,
    function: str = "vector_search",
    cache: bool = False,
) -> Plan:
    """Choose between an exact search and the index (see the module's docstring); with
    ``cache``, also an exact search over the matching rows' vectors held in memory
    (:mod:`lancesql.udfs.search_cache`), which the caller runs from ``Plan.cached``."""
    if metric is not None:
        if not isinstance(metric, str) or metric.lower() not in METRICS:
            raise ProgrammingError(
                f"{function}(): unknown metric {metric!r}; use one of cosine, l2, dot, hamming"
            )
        metric = METRICS[metric.lower()]
    auto = isinstance(use_index, str) and use_index.lower() == "auto"
    if not auto and not isinstance(use_index, bool):
        raise ProgrammingError(f"{function}(): use_index must be true, false or 'auto'; got {use_index!r}")
    index = vector_index(ds, column)
    nearest: dict[str, Any] = {"column": column, "q": vector, "k": k}
    if index is not None and metric is not None and metric != index.metric and use_index is True:
        raise ProgrammingError(
            f"{function}(): the vector index {index.name!r} on {column!r} was built with metric "
            f"{index.metric!r}, not {metric!r}: search with metric => '{index.metric}', or "
            f"search exactly with use_index => false"
        )
    metric = metric or (index.metric if index is not None else "l2")
    nearest["metric"] = metric
    if refine_factor is None:
        refine_factor = int(session.settings.get("vector_search_refine_factor")) or None
    if refine_factor is not None:
        nearest["refine_factor"] = refine_factor
    costs = search_plan.Costs(float(session.settings.get("vector_search_exact_cost")), len(vector))
    planned = nprobes or int(session.settings.get("vector_search_default_nprobes"))

    def exact(reason: str, matching: int | None = None) -> Plan:
        flat = {key: value for key, value in nearest.items() if key != "refine_factor"}
        if matching is None and cache and filter is not None:
            matching = count_matching(ds, filter)
        cost = costs.exact(matching) if matching is not None else 0.0
        plan = Plan("exact", {**flat, "use_index": False}, reason, matching, cost=cost)
        return in_memory(plan) or plan

    def in_memory(plan: Plan, layout: search_plan.IvfLayout | None = None) -> Plan | None:
        """The plan over the matching rows held in memory, when they are held, or when
        reading them now is estimated to pay: at once (cheaper than ``plan`` even with
        the read), or on this filter's second search (its later searches will reuse them).
        An exact ``plan`` compares every held row; an index plan the partitions nearest
        the query (:class:`lancesql.udfs.search_cache.Scan`), unless comparing every
        held row is estimated no dearer."""
        if not cache or filter is None or metric not in search_cache.METRICS or not plan.cost:
            return None
        cap = int(session.settings.get("vector_search_cache_bytes"))
        if cap <= 0:
            return None
        held = search_cache.lookup(ds, filter, column)
        rows = (
            held.row_ids.size
            if held is not None
            else (plan.matching if plan.matching is not None else count_matching(ds, filter))
        )
        scan = None
        scanned = rows
        grouped_ok = layout is not None and (held is None or held.buckets == layout.count + 1)
        if layout is not None and grouped_ok and costs.cached(rows) > plan.cost:
            order = search_plan.centroid_order(layout, vector, metric)
            budget = max(int(layout.sizes[order[: max(planned, 1)]].sum()), k)
            # the rows outside the index first: Lance searches them too
            scan = search_cache.Scan(np.append(layout.count, order), budget, max(budget // 4, 1))
            scanned = min(rows, budget + budget // 4)
        cost = costs.cached(scanned)
        if held is not None:
            how = "cached"
            if cost >= plan.cost:
                return None
        else:
            if not search_cache.fits(rows, len(vector), cap):
                return None
            read = costs.load(rows)
            searches = search_cache.asked(ds, filter, column)
            if read + cost <= plan.cost:
                how = f"read now (estimated {read / 1000:,.1f} ms) and cached"
            elif searches >= 2 and cost < plan.cost:
                how = (
                    f"read now (estimated {read / 1000:,.1f} ms; search {searches} "
                    "with this filter: the next ones reuse them) and cached"
                )
            else:
                return None
            grouped = None if layout is None else (layout.row_ids, layout.partitions, layout.count)
            held = search_cache.load(ds, filter, column, cap, grouped)
            if held is None:
                return None
        if scan is None:
            what = f"exact over all {len(held.row_ids)} {how} matching rows"
        else:
            what = (
                f"exact over the {how} matching rows ({len(held.row_ids)}) of the partitions "
                f"nearest the query: at least {scan.budget} rows (as many as the unfiltered "
                f"search reads), then {scan.window} more while they add to the {k} nearest"
            )
        reason = (
            f"{what}; estimated {cost / 1000:,.1f} ms against {plan.cost / 1000:,.1f} ms for "
            f"the {plan.path} plan ({plan.reason})"
        )
        return Plan("cached", plan.nearest, reason, plan.matching, (), held, scan, cost)

    def held_table(plan: Plan) -> Plan | None:
        """The plan over the table's vectors held in memory, when a similarity join has
        read them (:mod:`lancesql.udfs.search_many`): the rows of the ``nprobes``
        partitions nearest the query and those outside the index, compared exactly, as
        the join compared them for each of its rows."""
        if int(session.settings.get("vector_search_cache_bytes")) <= 0 or metric not in search_cache.METRICS:
            return None
        held = search_cache.lookup(ds, None, column)
        layout = ivf_layout(ds, index.name) if index is not None and held is not None else None
        if held is None or layout is None or held.buckets != layout.count + 1:
            return None
        order = search_plan.centroid_order(layout, vector, metric)
        probes = max(1, min(planned, layout.count))
        budget = int(held.per_bucket[layout.count] + held.per_bucket[order[:probes]].sum())
        if budget == 0:
            return None
        scan = search_cache.Scan(np.append(layout.count, order), budget, 0)
        reason = (
            f"exact over the table's vectors held in memory (read by a similarity join): the "
            f"{probes} partitions nearest the query and the rows outside the index ({budget} rows)"
        )
        return Plan("cached", plan.nearest, reason, None, (), held, scan, costs.cached(budget))

    if index is None:
        return exact(f"no vector index on {column!r}")
    if use_index is False:
        return exact("use_index => false")
    if metric != index.metric:
        return exact(f"the index {index.name!r} was built with metric {index.metric!r}, not {metric!r}")
    if filter is None:
        if nprobes is not None:
            nearest["nprobes"] = nprobes
        plan = Plan("index", nearest, f"no filter: index {index.name!r}")
        return (held_table(plan) if cache else None) or plan
    total = ds.count_rows()
    matching = count_matching(ds, filter)
    limit = int(session.settings.get("vector_search_exact_rows"))
    if matching <= limit:
        return exact(
            f"{matching} of {total} rows match the filter (<= vector_search_exact_rows = {limit})",
            matching,
        )
    layout = ivf_layout(ds, index.name)
    if layout is None:
        # the index does not say where its rows lie: widen until k rows are found
        if nprobes is not None:
            nearest["minimum_nprobes"] = nprobes
        return Plan(
            "index",
            nearest,
            f"{matching} of {total} rows match the filter "
            f"(> vector_search_exact_rows = {limit}): index {index.name!r}",
            matching,
        )
    probe = plan_probes(
        layout,
        search_plan.matching(ds, index.name, layout, filter),
        total,
        vector,
        metric,
        k,
        planned,
        refine_factor,
        costs,
    )
    if probe.path == "exact":
        return exact(probe.reason, matching)
    nearest["nprobes"] = probe.nprobes
    if probe.refine_factor is not None:
        nearest["refine_factor"] = probe.refine_factor
    plan = Plan(
        "index", nearest, f"index {index.name!r}: {probe.reason}", matching, probe.probed, cost=probe.cost
    )
    return in_memory(plan, layout) or plan
