"""Many vector searches at once: the right-hand side of a similarity join.

``LATERAL vector_search(...)`` searches once per left row. Doing that as one Lance call
per row costs a Python round trip, a scanner and a plan per row; Lance instead takes a
2-d ``q`` and runs a batch of searches in one call (adding ``query_index``). The queries
are planned one by one (a filtered search probes partitions chosen for its own vector,
see :mod:`lancesql.udfs.search_plan`), grouped by plan, and each group goes to Lance in chunks
run on several threads (Lance's searches release the GIL).
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
from lancesql.udfs.registry import Session
from lancesql.udfs.search import (
    check_k,
    check_positive,
    field_of,
    is_vector,
    open_table,
    plan_search,
    query_vector,
    read_columns,
)

declare(
    "vector_search_batch_size",
    64,
    int,
    "How many query vectors a similarity join (LATERAL vector_search) hands Lance per call.",
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
    groups: dict[tuple[Any, ...], list[int]] = {}
    plans: dict[tuple[Any, ...], dict[str, Any]] = {}
    plan = None
    for i, vector in enumerate(vectors):
        if plan is None or filter is not None:  # without a filter the plan is the same for all
            plan = plan_search(
                session, ds, column, vector, k, filter, metric, nprobes, refine_factor, use_index
            )
        key = tuple(sorted((n, v) for n, v in plan.nearest.items() if n != "q"))
        groups.setdefault(key, []).append(i)
        plans[key] = plan.nearest
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


def _empty(ds: Any, wanted: list[str]) -> pa.Table:
    fields = [ds.schema.field(n) for n in wanted if n != "_distance"]
    return pa.schema([*fields, pa.field("_distance", pa.float32())]).empty_table()
