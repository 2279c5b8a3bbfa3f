"""``vector_search(table, column, query, k, ...)``: the k nearest rows, with a planned
prefilter (see :mod:`lancesql.udfs.search` for the plan)."""

from __future__ import annotations

from typing import Any

import lance
import numpy as np
import pyarrow as pa

from lancesql.catalog import VersionRef
from lancesql.errors import ProgrammingError, lance_error
from lancesql.explain import is_collecting, record_search
from lancesql.lance_sql import alike_part
from lancesql.udfs.registry import Session, table_function
from lancesql.udfs.search import (
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
from lancesql.udfs.search_cache import Cached, Scan, nearest
from lancesql.udfs.search_plan import describe, ivf_layout


@table_function("vector_search", projects=True, predicates=("filter",))
def vector_search(
    session: Session,
    table: str,
    column: str,
    query: Any,
    k: int,
    filter: str | None = None,
    metric: str | None = None,
    nprobes: int | None = None,
    refine_factor: int | None = None,
    version: VersionRef = None,
    use_index: Any = True,
    branch: str | None = None,
    with_ties: bool = False,
    as_where: bool = False,
    *,
    columns: list[str] | None = None,
) -> pa.Table:
    """The ``k`` rows of ``table`` nearest ``query`` in ``column`` among the rows
    ``filter`` keeps, with their ``_distance``, nearest first (on ``branch`` when given);
    ``with_ties``: also every row as near as the k-th (as SQL's ``FETCH FIRST k ROWS WITH
    TIES``), so that an ``ORDER BY distance, id LIMIT k`` over the result breaks ties among
    all of them.

    ``as_where`` (set by the ``order_by_distance`` rule, which keeps its WHERE and LIMIT
    in the query) says the filter is a query's WHERE, to be read as SQL reads it: when
    Lance would read part of it otherwise (a literal of another type than its column,
    see :func:`lancesql.lance_sql.alike`), every row that the part Lance reads alike
    keeps is returned, nearest first, for the engine to filter and limit.
    """
    name = "vector_search"
    ds = open_table(session, name, table, version, branch)
    field = field_of(ds, name, column)
    if not is_vector(field):
        vectors = [f.name for f in ds.schema if is_vector(f)]
        raise ProgrammingError(
            f"{name}(): column {column!r} is not a vector column (its type is {field.type}); "
            f"vector columns: {', '.join(vectors) or 'none'}"
        )
    vector = query_vector(name, query, field)
    k = check_k(name, k)
    nprobes = check_positive(name, "nprobes", nprobes)
    refine_factor = check_positive(name, "refine_factor", refine_factor)
    if filter is not None and not isinstance(filter, str):
        raise ProgrammingError(f"{name}(): filter must be a condition, e.g. filter => 'label = 3'")
    wanted = read_columns(ds, columns, "_distance")
    if as_where is True and filter is not None:
        lance_part, whole = alike_part(filter, ds.schema)
        if not whole:  # the engine filters: an exact search over every row Lance may keep
            filter, use_index, with_ties = lance_part, False, False
            k = max(count_matching(ds, filter) if filter else ds.count_rows(), 1)
    try:
        plan = plan_search(
            session,
            ds,
            column,
            vector,
            k,
            filter,
            metric,
            nprobes,
            refine_factor,
            use_index,
            cache=True,
        )
        if not isinstance(with_ties, bool):
            raise ProgrammingError(f"{name}(): with_ties must be true or false; got {with_ties!r}")
        fetch = k + 1 if with_ties else k
        scanner = None
        read = 0
        while plan.cached is None:
            scanner = ds.scanner(
                columns=wanted,
                filter=filter,
                prefilter=True if filter else None,
                nearest={**plan.nearest, "k": fetch},
                disable_scoring_autoprojection=True,
            )
            result = scanner.to_table()
            if not with_ties:
                break
            result = result.sort_by("_distance")
            distances = result.column("_distance").to_numpy()
            if len(distances) == 0:
                break
            if len(distances) < fetch or distances[-1] > distances[k - 1]:
                # the rows up to the last one tied with the k-th
                last = int(np.searchsorted(distances, distances[min(k, len(distances)) - 1], "right"))
                result = result.slice(0, last)
                break
            fetch *= 2
        if plan.cached is not None:
            result, read = _take_nearest(
                ds, plan.cached, vector, plan.nearest["metric"], k, with_ties, wanted, plan.scan
            )
    except (OSError, ValueError) as exc:
        what = f"{name}(): the filter {filter!r} failed" if filter else f"{name}() failed"
        raise lance_error(exc, what) from exc
    if is_collecting():
        details = {
            "path": f"{plan.path} ({plan.reason})",
            "metric": plan.nearest["metric"],
            "k": str(k),
        }
        for key in ("nprobes", "minimum_nprobes", "refine_factor"):
            if key in plan.nearest and plan.cached is None:
                details[key] = str(plan.nearest[key])
        if plan.probed and plan.cached is None:
            details["partitions probed (partition:matching/rows)"] = describe(plan.probed)
        elif plan.scan is not None and plan.cached is not None:
            held = plan.cached.per_bucket
            sizes = _partition_sizes(ds, column)
            scanned = tuple(
                (int(b), int(sizes[b]) if b < len(sizes) else int(held[b]), int(held[b]))
                for b in plan.scan.order[:read]
                if b < len(sizes)
            )
            details["partitions compared in memory (partition:matching/rows)"] = (
                f"{len(scanned)} of {len(sizes)}: " + describe(scanned)
            )
        index = vector_index(ds, column)
        if index is not None:
            details["vector index"] = f"{index.name} ({index.index_type}, {index.metric})"
        record_search(name, ds, wanted, filter, details, *([scanner] if scanner else []))
    return result


def _take_nearest(
    ds: lance.LanceDataset,
    cached: Cached,
    vector: np.ndarray,
    metric: str,
    k: int,
    with_ties: bool,
    wanted: list[str],
    scan: Scan | None,
) -> tuple[pa.Table, int]:
    """The nearest rows among the cached matching rows (those ``scan`` reads), read by
    row id, nearest first; and how many buckets were read."""
    row_ids, distances, read = nearest(cached, vector, metric, k, with_ties, scan)
    rows = take_rows(ds, [c for c in wanted if c != "_distance"], row_ids)
    return rows.append_column("_distance", pa.array(distances, pa.float32())), read


def _partition_sizes(ds: lance.LanceDataset, column: str) -> np.ndarray:
    """The rows in each partition of ``column``'s IVF index (for EXPLAIN)."""
    index = vector_index(ds, column)
    layout = ivf_layout(ds, index.name) if index is not None else None
    return layout.sizes if layout is not None else np.empty(0, np.int64)
