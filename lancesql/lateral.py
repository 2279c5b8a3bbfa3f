"""Binding a similarity join: the left side's arguments, searched in batches.

``lancesql.rewrite.lateral_search`` turned ``LATERAL vector_search(..., a.emb, ...)``
into a join with a placeholder whose ``meta`` holds a query over the left side that
reads the row-dependent arguments. Here that query runs, its distinct argument tuples
are grouped by everything but the vector, each group is searched in batches
(:func:`lancesql.udfs.search_many.search_many`), and the searches' rows come back with the
arguments they were found for, so the engine joins them to the left rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
from sqlglot import exp

from lancesql.context import Result, StatementContext
from lancesql.rewrite.bind_table_functions import META_KEY
from lancesql.rewrite.lateral_search import ARGUMENT, LATERAL_KEY
from lancesql.rewrite.project_table_functions import COLUMNS_KEY
from lancesql.udfs import TABLE_FUNCTIONS
from lancesql.udfs.search_many import QUERY_INDEX, search_many


def is_lateral(table: exp.Table) -> bool:
    """Whether placeholder ``table`` stands for a similarity join's searches."""
    return LATERAL_KEY in table.meta


def lateral_source(
    ctx: StatementContext,
    table: exp.Table,
    run: Callable[[StatementContext, exp.Expression], Result],
    argument: Callable[..., Any],
) -> pa.Table:
    """The searches for every distinct argument tuple of the left side, each result row
    with the arguments (``__lancesql_arg<i>``) it was found for."""
    name, args, kwargs = table.meta[META_KEY]
    info = table.meta[LATERAL_KEY]
    function = TABLE_FUNCTIONS[name]
    result = run(ctx, info["left"])
    assert result.reader is not None
    left = result.reader.read_all().combine_chunks()
    slots = [_plain(left.column(ARGUMENT.format(i))) for i in range(info["slots"])]

    params = function.params
    fixed: dict[str, Any] = {}
    row_dependent: dict[str, int] = {}
    for param, node in [*zip(params, args, strict=False), *kwargs.items()]:
        slot = _slot(node)
        if slot is None:
            fixed[param] = argument(ctx, function, param, node)
        else:
            row_dependent[param] = slot
    query_slot = row_dependent.pop("query", None)

    # distinct argument tuples: the vector's bytes and the other arguments' values
    groups: dict[tuple[Any, ...], dict[bytes, int]] = {}
    for row in range(left.num_rows):
        if query_slot is not None:
            vector = slots[query_slot][row]
            if not vector.is_valid:
                continue  # a NULL vector has no neighbours
            key = np.asarray(vector.values.to_numpy(zero_copy_only=False)).tobytes()
        else:
            key = b""
        others = tuple(slots[row_dependent[p]][row].as_py() for p in sorted(row_dependent))
        groups.setdefault(others, {}).setdefault(key, row)

    parts = []
    for others, members in groups.items():
        rows = list(members.values())
        bound = {**fixed, **dict(zip(sorted(row_dependent), others, strict=True))}
        if query_slot is not None:
            queries = [slots[query_slot][r].values.to_numpy(zero_copy_only=False) for r in rows]
        else:
            queries = [bound.pop("query")]
        found = search_many(
            ctx.connection,
            queries=queries,
            columns=table.meta.get(COLUMNS_KEY),
            **{p: v for p, v in bound.items() if p != "query"},
        )
        index = found.column(QUERY_INDEX)
        taken = pa.array(np.asarray(rows, np.int64)).take(index)
        found = found.drop_columns([QUERY_INDEX])
        for i, column in enumerate(slots):
            found = found.append_column(ARGUMENT.format(i), column.take(taken))
        parts.append(found)
    if not parts:
        empty = search_many(
            ctx.connection,
            queries=[],
            columns=table.meta.get(COLUMNS_KEY),
            **{p: v for p, v in fixed.items() if p != "query"},
        ).drop_columns([QUERY_INDEX])
        for i, column in enumerate(slots):
            empty = empty.append_column(ARGUMENT.format(i), pa.array([], column.type))
        return empty
    return pa.concat_tables(parts)


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """``column`` without view types (DataFusion's strings), which Arrow cannot take from."""
    if pa.types.is_string_view(column.type):
        return column.cast(pa.string())
    if pa.types.is_binary_view(column.type):
        return column.cast(pa.binary())
    return column


def _slot(node: exp.Expression) -> int | None:
    if isinstance(node, exp.Column) and node.name.startswith(ARGUMENT.format("")):
        return int(node.name.removeprefix(ARGUMENT.format("")))
    return None
