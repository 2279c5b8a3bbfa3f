"""Many vector searches at once: the right-hand side of a similarity join.

``LATERAL vector_search(...)`` searches once per left row, and by default (``auto``) each
row's answer is the one ``vector_search`` gives for it alone. The queries are planned one
by one, as single searches are (a filtered search probes partitions chosen for its own
vector, see :mod:`lancesql.udfs.search_plan`; rows whose plan compares the matching rows
held in memory are answered from them, as :func:`vector_search` answers them), then
answered in one of two ways, whichever the planner's estimate of their time
(:class:`lancesql.udfs.search_plan.Costs`) says is cheaper:

- ``partitions``: the table's vectors read once, each partition compared with every
  query that probes it in one matrix product (:mod:`lancesql.udfs.search_batch`): exact
  distances over the same partitions Lance would probe. Reading the table costs the
  same for ten queries as for ten thousand, so it pays for many queries.
- ``index``: Lance's own searches, grouped by plan, a batch of query vectors per call
  (a 2-d ``q``; Lance adds ``query_index``), the batches run on several threads (Lance's
  searches release the GIL). Few queries.

The partition path's answers are exact over the partitions compared, Lance's index search
ranks by PQ codes: under ``auto`` it answers rows that a single search answers exactly
(an exact plan), and unfiltered index plans only over the table's vectors held in memory
by partition (:mod:`lancesql.udfs.search_cache`, read here when they fit
``vector_search_cache_bytes``), which single searches of the table then compare as the
join did (the ``nprobes`` nearest partitions, exactly). Otherwise, Lance's searches.
``vector_search_join_path`` forces either path (``partitions`` then streams the table when
it does not fit, and its answers may be better than single searches').
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa

from lancesql.catalog import VersionRef
from lancesql.errors import NotSupportedError, ProgrammingError, lance_error
from lancesql.settings import declare
from lancesql.udfs import search_batch, search_cache
from lancesql.udfs.registry import Session
from lancesql.udfs.search import (
    Plan,
    check_k,
    check_positive,
    count_matching,
    field_of,
    is_vector,
    open_table,
    plan_search,
    query_vector,
    read_columns,
    take_rows,
    vector_index,
)
from lancesql.udfs.search_plan import Costs, ivf_layout


def _join_path(value: str) -> str:
    path = str(value).strip().lower()
    if path not in ("auto", "partitions", "index"):
        raise ValueError(f"vector_search_join_path must be auto, partitions or index; got {value!r}")
    return path


declare(
    "vector_search_batch_size",
    64,
    int,
    "How many query vectors a similarity join (LATERAL vector_search) hands Lance per call.",
)
declare(
    "vector_search_join_path",
    "auto",
    _join_path,
    "How a similarity join (LATERAL vector_search) searches: auto (each row's answer the "
    "one vector_search gives it, the faster way by estimated cost), partitions (the table "
    "read once, each IVF partition compared with all the queries probing it, exact "
    "distances) or index (Lance's search per query, in batches).",
)
declare(
    "vector_search_threads",
    0,
    int,
    "Threads a similarity join runs its batches of searches on (0: one per CPU core).",
)

#: The column of a batch result naming the query (position in ``queries``) of each row.
QUERY_INDEX = "query_index"


def search_many(
    session: Session,
    table: str,
    column: str,
    queries: list[Any],
    k: int,
    filter: str | None = None,
    metric: str | None = None,
    nprobes: int | None = None,
    refine_factor: int | None = None,
    version: VersionRef = None,
    use_index: Any = True,
    branch: str | None = None,
    with_ties: bool = False,
    *,
    columns: list[str] | None = None,
) -> pa.Table:
    """``vector_search`` for each of ``queries``: its result rows, with ``query_index``
    (the query's position) first."""
    name = "vector_search"
    if with_ties:
        raise NotSupportedError(
            f"{name}(): with_ties is not supported in a LATERAL join; "
            "search without it, or search each row on its own"
        )
    ds = open_table(session, name, table, version, branch)
    field = field_of(ds, name, column)
    if not is_vector(field):
        raise ProgrammingError(
            f"{name}(): column {column!r} is not a vector column (its type is {field.type})"
        )
    k = check_k(name, k)
    nprobes = check_positive(name, "nprobes", nprobes)
    refine_factor = check_positive(name, "refine_factor", refine_factor)
    if filter is not None and not isinstance(filter, str):
        raise ProgrammingError(f"{name}(): filter must be a condition, e.g. filter => 'label = 3'")
    wanted = read_columns(ds, columns, "_distance")
    vectors = [query_vector(name, q, field) for q in queries]
    # by default each row is planned as a single vector_search plans it (the matching
    # rows held in memory included), so that its answer is the same
    alike = str(session.settings.get("vector_search_join_path")) == "auto" and filter is not None
    plan = None
    all_plans: list[Plan] = []
    for vector in vectors:
        if plan is None or filter is not None:  # without a filter the plan is the same for all
            plan = plan_search(
                session, ds, column, vector, k, filter, metric, nprobes, refine_factor, use_index,
                cache=alike,
            )
        all_plans.append(plan)
    now_held = alike and search_cache.lookup(ds, filter, column) is not None
    if now_held and any(p.cached is None for p in all_plans):
        # the matching rows were read while planning (a filter searched again): the rows
        # planned before then are planned again, as their single searches now would be
        all_plans = [
            p
            if p.cached is not None
            else plan_search(
                session, ds, column, v, k, filter, metric, nprobes, refine_factor, use_index, cache=True
            )
            for p, v in zip(all_plans, vectors, strict=True)
        ]
    held = [i for i, p in enumerate(all_plans) if p.cached is not None]
    rest = [i for i, p in enumerate(all_plans) if p.cached is None]
    tables = [_from_held(ds, [vectors[i] for i in held], [all_plans[i] for i in held], k, wanted, held)]
    if rest:
        tables.append(_searched(session, ds, column, rest, vectors, all_plans, k, filter, wanted, name))
    return pa.concat_tables([t for t in tables if t.num_rows] or tables[-1:])


def _searched(
    session: Session,
    ds: Any,
    column: str,
    which: list[int],
    all_vectors: list[np.ndarray],
    all_plans: list[Plan],
    k: int,
    filter: str | None,
    wanted: list[str],
    name: str,
) -> pa.Table:
    """The searches of rows ``which`` (positions among all the queries): partition by
    partition, or Lance's searches in batches."""
    vectors = [all_vectors[i] for i in which]
    picked = [all_plans[i] for i in which]
    found = _by_partitions(session, ds, column, vectors, picked, k, filter, wanted)
    if found is not None:
        local = found.column(QUERY_INDEX).to_numpy()
        index = np.asarray(which, np.int64)[local] if len(local) else local.astype(np.int64)
        return found.set_column(0, QUERY_INDEX, pa.array(index, pa.int64()))
    groups: dict[tuple[Any, ...], list[int]] = {}
    plans: dict[tuple[Any, ...], dict[str, Any]] = {}
    for i in which:
        nearest = all_plans[i].nearest
        key = tuple(sorted((n, v) for n, v in nearest.items() if n != "q"))
        groups.setdefault(key, []).append(i)
        plans[key] = nearest
    vectors = all_vectors
    size = max(1, int(session.settings.get("vector_search_batch_size")))
    chunks = [
        (key, members[start : start + size])
        for key, members in groups.items()
        for start in range(0, len(members), size)
    ]
    batchable = QUERY_INDEX not in ds.schema.names

    def run(chunk: tuple[tuple[Any, ...], list[int]]) -> pa.Table:
        key, members = chunk
        nearest = plans[key]
        if batchable and len(members) > 1:
            found = ds.scanner(
                columns=wanted,
                filter=filter,
                prefilter=True if filter else None,
                nearest={**nearest, "q": np.stack([vectors[i] for i in members])},
                disable_scoring_autoprojection=True,
            ).to_table()
            local = found.column(QUERY_INDEX).to_numpy()
            index = np.asarray(members, np.int64)[local]
            found = found.drop_columns([QUERY_INDEX])
        else:
            parts = []
            for i in members:
                part = ds.scanner(
                    columns=wanted,
                    filter=filter,
                    prefilter=True if filter else None,
                    nearest={**nearest, "q": vectors[i]},
                    disable_scoring_autoprojection=True,
                ).to_table()
                parts.append((i, part))
            found = pa.concat_tables([p for _, p in parts]) if parts else _empty(ds, wanted)
            index = np.concatenate(
                [np.full(p.num_rows, i, np.int64) for i, p in parts] or [np.empty(0, np.int64)]
            )
        return found.add_column(0, QUERY_INDEX, pa.array(index, pa.int64()))

    threads = int(session.settings.get("vector_search_threads")) or os.cpu_count() or 1
    try:
        if threads > 1 and len(chunks) > 1:
            with ThreadPoolExecutor(min(threads, len(chunks))) as pool:
                tables = list(pool.map(run, chunks))
        else:
            tables = [run(chunk) for chunk in chunks]
    except (OSError, ValueError) as exc:
        what = f"{name}(): the filter {filter!r} failed" if filter else f"{name}() failed"
        raise lance_error(exc, what) from exc
    if not tables:
        empty = _empty(ds, wanted)
        return empty.add_column(0, QUERY_INDEX, pa.array([], pa.int64()))
    return pa.concat_tables(tables)


def _from_held(
    ds: Any, vectors: list[np.ndarray], plans: list[Plan], k: int, wanted: list[str], which: list[int]
) -> pa.Table:
    """The searches whose plan compares the matching rows held in memory (all of them, or
    the partitions nearest the query: :class:`lancesql.udfs.search_cache.Scan`), one by
    one as ``vector_search`` runs them (each a matrix-vector product, no call into Lance)."""
    query, row_ids, distances = [], [], []
    for i, vector, plan in zip(which, vectors, plans, strict=True):
        assert plan.cached is not None
        ids, dist, _ = search_cache.nearest(plan.cached, vector, plan.nearest["metric"], k, False, plan.scan)
        query.append(np.full(len(ids), i, np.int64))
        row_ids.append(ids)
        distances.append(dist)
    return _rows(
        ds,
        wanted,
        np.concatenate(query or [np.empty(0, np.int64)]),
        np.concatenate(row_ids or [np.empty(0, np.uint64)]),
        np.concatenate(distances or [np.empty(0, np.float32)]),
    )


def _rows(
    ds: Any, wanted: list[str], query: np.ndarray, row_ids: np.ndarray, distances: np.ndarray
) -> pa.Table:
    """The rows ``row_ids`` (read once each) with their ``_distance`` and ``query_index``."""
    result = take_rows(ds, [c for c in wanted if c != "_distance"], row_ids)
    result = result.append_column("_distance", pa.array(distances, pa.float32()))
    return result.add_column(0, QUERY_INDEX, pa.array(query, pa.int64()))


def _empty(ds: Any, wanted: list[str]) -> pa.Table:
    fields = [ds.schema.field(n) for n in wanted if n != "_distance"]
    return pa.schema([*fields, pa.field("_distance", pa.float32())]).empty_table()


def _by_partitions(
    session: Session,
    ds: Any,
    column: str,
    vectors: list[np.ndarray],
    plans: list[Plan],
    k: int,
    filter: str | None,
    wanted: list[str],
) -> pa.Table | None:
    """The searches answered partition by partition (:mod:`lancesql.udfs.search_batch`),
    when the setting or the cost estimate says so; None to search with Lance instead."""
    choice = str(session.settings.get("vector_search_join_path"))
    if choice == "index" or not vectors or QUERY_INDEX in ds.schema.names:
        return None
    metric = plans[0].nearest["metric"]
    if metric not in search_cache.METRICS or any("minimum_nprobes" in p.nearest for p in plans):
        return None  # Lance's own distances, or an index whose partitions are not known
    index = vector_index(ds, column)
    layout = ivf_layout(ds, index.name) if index is not None else None
    default = int(session.settings.get("vector_search_default_nprobes"))
    everything = layout.count if layout is not None else 1
    nprobes = np.array(
        [p.nearest.get("nprobes", default) if p.path == "index" else everything for p in plans], np.int64
    )
    auto = choice == "auto"
    indexed = any(p.path == "index" for p in plans)
    if auto and indexed and (filter is not None or layout is None):
        # Lance's PQ search for these rows, as their single searches run
        return None
    held = search_cache.lookup(ds, filter, column)
    if auto and indexed and held is not None and held.buckets != everything + 1:
        held = None  # not by partition: the single searches do not use them
    total = ds.count_rows()
    rows = len(held.row_ids) if held is not None else (count_matching(ds, filter) if filter else total)
    costs = Costs(float(session.settings.get("vector_search_exact_cost")), len(vectors[0]))
    share = np.minimum(nprobes, everything) / everything  # the rows each query compares, about
    batched = (0.0 if held is not None else costs.load(rows)) + costs.batched(int((share * rows).sum()))
    per_query = 0.0
    for plan, probed in zip(plans, share, strict=True):
        if plan.cost:
            per_query += plan.cost
        elif plan.path == "index":
            per_query += costs.index(int(probed * total), k * int(plan.nearest.get("refine_factor") or 1))
        else:
            per_query += costs.exact(rows)
    if auto and batched >= per_query:
        return None
    if auto and indexed and held is None:
        # the table's vectors read once and kept, by partition: the single searches that
        # follow compare the same partitions of them (search.plan_search), as these rows do
        cap = int(session.settings.get("vector_search_cache_bytes"))
        if not search_cache.fits(total, len(vectors[0]), cap):
            return None
        assert layout is not None
        held = search_cache.load(ds, None, column, cap, (layout.row_ids, layout.partitions, layout.count))
        if held is None:
            return None
    query, row_ids, distances = search_batch.search(
        ds, column, np.stack(vectors).astype(np.float32), k, metric, filter, layout, nprobes, held
    )
    return _rows(ds, wanted, query, row_ids, distances)
