"""``text_search`` over an INVERTED index, and ``hybrid_search`` fusing it with a vector search.

``hybrid_search`` ranks rows by reciprocal rank fusion (Cormack et al., 2009), as
LanceDB's default reranker does: each of the two searches returns its
``hybrid_search_candidates`` best rows (at least k), and a row's fused score is

    _relevance = sum over the searches that found it of 1 / (hybrid_rrf_k + rank)

with ranks counted from 1 and ``hybrid_rrf_k`` = 60 by default. The constant damps the
weight of the very first ranks, so a row both searches place fairly high beats a row
only one of them places first. Ties keep the vector search's order.
"""

from __future__ import annotations

from typing import Any

import lance
import pyarrow as pa

from lancesql.catalog import VersionRef
from lancesql.errors import ProgrammingError
from lancesql.explain import is_collecting, record_search
from lancesql.settings import declare
from lancesql.udfs.registry import Session, table_function
from lancesql.udfs.search import (
    check_k,
    check_positive,
    field_of,
    is_vector,
    open_table,
    plan_search,
    read_columns,
    vector_index,
)
from lancesql.udfs.search import (
    query_vector as as_query_vector,
)

declare("hybrid_rrf_k", 60, int, "The k constant of hybrid_search's reciprocal rank fusion.")
declare(
    "hybrid_search_candidates",
    50,
    int,
    "How many rows each of hybrid_search's two searches contributes to the fusion (at least k).",
)


def inverted_index(ds: lance.LanceDataset, column: str) -> str | None:
    """The name of the INVERTED (full-text) index on ``column``, if any."""
    for description in ds.describe_indices():
        if list(description.field_names) == [column] and "Inverted" in description.type_url:
            return str(description.name)
    return None


def _text_scan(
    ds: lance.LanceDataset,
    function: str,
    column: str,
    text: Any,
    k: int,
    filter: str | None,
    wanted: list[str],
    with_row_id: bool = False,
) -> tuple[pa.Table, lance.LanceScanner]:
    field = field_of(ds, function, column)
    if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
        raise ProgrammingError(
            f"{function}(): column {column!r} is not a text column (its type is {field.type})"
        )
    if inverted_index(ds, column) is None:
        raise ProgrammingError(
            f"{function}(): column {column!r} has no INVERTED index: build one with "
            f"CREATE INDEX ON <table> USING INVERTED ({column})"
        )
    if not isinstance(text, str):
        raise ProgrammingError(f"{function}(): the text to search for must be a string; got {text!r}")
    if filter is not None and not isinstance(filter, str):
        raise ProgrammingError(f"{function}(): filter must be a condition, e.g. filter => 'label = 3'")
    scanner = ds.scanner(
        columns=wanted,
        filter=filter,
        prefilter=True if filter else None,
        full_text_query={"query": text, "columns": [column]},
        limit=k,
        with_row_id=with_row_id or None,
        disable_scoring_autoprojection=True,
    )
    return scanner.to_table(), scanner


@table_function("text_search", projects=True, predicates=("filter",))
def text_search(
    session: Session,
    table: str,
    column: str,
    query: str,
    k: int,
    filter: str | None = None,
    version: VersionRef = None,
    branch: str | None = None,
    *,
    columns: list[str] | None = None,
) -> pa.Table:
    """The ``k`` rows whose ``column`` best matches ``query`` (BM25 over the INVERTED
    index), among the rows ``filter`` keeps, with their ``_score``, best first."""
    name = "text_search"
    ds = open_table(session, name, table, version, branch)
    k = check_k(name, k)
    wanted = read_columns(ds, columns, "_score")
    result, scanner = _text_scan(ds, name, column, query, k, filter, wanted)
    if is_collecting():
        details = {"full-text index": str(inverted_index(ds, column)), "query": query, "k": str(k)}
        record_search(name, ds, wanted, filter, details, scanner)
    return result


@table_function("hybrid_search", projects=True, predicates=("filter",))
def hybrid_search(
    session: Session,
    table: str,
    vector_column: str,
    query_vector: Any,
    text_column: str,
    text: str,
    k: int,
    filter: str | None = None,
    metric: str | None = None,
    nprobes: int | None = None,
    refine_factor: int | None = None,
    version: VersionRef = None,
    branch: str | None = None,
    *,
    columns: list[str] | None = None,
) -> pa.Table:
    """The ``k`` best rows by reciprocal rank fusion of a vector search and a text search
    (see the module's docstring), with ``_distance``, ``_score`` and ``_relevance``."""
    name = "hybrid_search"
    ds = open_table(session, name, table, version, branch)
    k = check_k(name, k)
    field = field_of(ds, name, vector_column)
    if not is_vector(field):
        raise ProgrammingError(
            f"{name}(): column {vector_column!r} is not a vector column (its type is {field.type})"
        )
    vector = as_query_vector(name, query_vector, field)
    nprobes = check_positive(name, "nprobes", nprobes)
    refine_factor = check_positive(name, "refine_factor", refine_factor)
    candidates = max(k, int(session.settings.get("hybrid_search_candidates")))
    rrf_k = int(session.settings.get("hybrid_rrf_k"))
    keep = read_columns(ds, columns, "_rowid")[:-1]

    plan = plan_search(
        session,
        ds,
        vector_column,
        vector,
        candidates,
        filter,
        metric,
        nprobes,
        refine_factor,
        True,
        name,
    )
    vector_scanner = ds.scanner(
        columns=[*keep, "_distance"],
        filter=filter,
        prefilter=True if filter else None,
        nearest=plan.nearest,
        with_row_id=True,
        disable_scoring_autoprojection=True,
    )
    by_vector = vector_scanner.to_table()
    by_text, text_scanner = _text_scan(
        ds, name, text_column, text, candidates, filter, [*keep, "_score"], with_row_id=True
    )

    fused: dict[int, float] = {}
    for ranked in (by_vector, by_text):
        for rank, row_id in enumerate(ranked.column("_rowid").to_pylist(), start=1):
            fused[row_id] = fused.get(row_id, 0.0) + 1.0 / (rrf_k + rank)
    order = sorted(fused, key=lambda r: -fused[r])[:k]  # sorted() is stable: vector order on ties

    rows = pa.concat_tables(
        [
            by_vector.select([*keep, "_rowid"]),
            by_text.select([*keep, "_rowid"]),
        ]
    )
    first: dict[int, int] = {}
    for position, row_id in enumerate(rows.column("_rowid").to_pylist()):
        first.setdefault(row_id, position)
    result = rows.take(pa.array([first[r] for r in order], pa.int64()))
    distances = dict(
        zip(
            by_vector.column("_rowid").to_pylist(),
            by_vector.column("_distance").to_pylist(),
            strict=True,
        )
    )
    scores = dict(
        zip(by_text.column("_rowid").to_pylist(), by_text.column("_score").to_pylist(), strict=True)
    )
    result = result.drop_columns(["_rowid"])
    result = result.append_column("_distance", pa.array([distances.get(r) for r in order], pa.float32()))
    result = result.append_column("_score", pa.array([scores.get(r) for r in order], pa.float32()))
    result = result.append_column("_relevance", pa.array([fused[r] for r in order], pa.float64()))
    if is_collecting():
        index = vector_index(ds, vector_column)
        details = {
            "path": f"{plan.path} ({plan.reason})",
            "fusion": f"reciprocal rank fusion, k = {rrf_k}, {candidates} candidates from each search",
            "full-text index": str(inverted_index(ds, text_column)),
        }
        if index is not None:
            details["vector index"] = f"{index.name} ({index.index_type}, {index.metric})"
        record_search(name, ds, keep, filter, details, vector_scanner, text_scanner)
    return result
