"""Grouped counts answered without the engine: ``SELECT label, count(*) FROM t GROUP BY label``.

Design notes: ``docs/ARCHITECTURE.md``, "The grouped count".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lance
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from lancesql.direct import lance_filter_of
from lancesql.fast_path import FastPath


def key(fast: FastPath, ds: lance.LanceDataset) -> tuple[Any, ...] | None:
    """What the engine's result schema of grouping ``fast`` depends on: the projections'
    names (an alias, or the text of an unnamed one) and the table's alias (an engine may
    qualify an unnamed output with it), the aggregates and grouping columns, and the
    types of the columns read; not the dataset, its version or the WHERE, so that a
    statement learns from another of the same shape (None when a column is missing, so
    that the engine reports it)."""
    assert fast.keys is not None and fast.aggregates is not None
    schema = ds.schema
    names = set(fast.keys) | {c for _, c in fast.aggregates if c is not None}
    if not names <= set(schema.names):
        return None
    fields = tuple((n, schema.field(n).type, schema.field(n).nullable) for n in sorted(names))
    return fast.written, fast.aggregates, fast.keys, fields


def aggregate(
    ds: lance.LanceDataset,
    fast: FastPath,
    schema: pa.Schema,
    value_of: Callable[[exp.Placeholder], Any],
) -> pa.Table | None:
    """The query's result computed by Lance and Arrow, cast to the engine's ``schema``;
    None when the engine must run it (``fast.groups`` must hold)."""
    assert fast.keys is not None and fast.aggregates is not None
    outputs, keys_read = fast.aggregates, fast.keys
    ds_schema = ds.schema
    if len(schema) != len(outputs):
        return None
    for function, column in (*outputs, *(("", k) for k in keys_read)):
        if column is not None and not _supported(function, ds_schema.field(column).type):
            return None
    lance_takes, condition = lance_filter_of(fast, ds_schema, value_of)
    if not lance_takes:
        return None
    read = list(dict.fromkeys([*keys_read, *(c for _, c in outputs if c is not None)]))
    try:
        if not read:  # count(*) alone: Lance counts from its metadata or an index
            count = pa.array([ds.count_rows(filter=condition)], pa.int64())
            return _cast([count] * len(outputs), schema)
        table = ds.to_table(columns=read, filter=condition)
    except (ValueError, OSError, RuntimeError):
        return None  # a filter Lance reads otherwise: the engine decides
    # Inputs under names of our own, so that no column's name meets an Arrow output name.
    keys = [f"k{i}" for i in range(len(keys_read))]
    inputs = {k: table.column(c) for k, c in zip(keys, keys_read, strict=True)}
    specs: dict[tuple[str, str | None], str] = {}
    aggregations: list[tuple[Any, ...]] = []
    for output in outputs:
        function, column = output
        if not function or output in specs:
            continue
        if column is None:
            aggregations.append(([], "count_all"))
            specs[output] = "count_all"
            continue
        name = f"v{len(specs)}"
        inputs[name] = table.column(column)
        options = pc.CountOptions(mode="only_valid") if function == "count" else None
        aggregations.append((name, function, options))
        specs[output] = f"{name}_{function}"
    grouped = pa.table(inputs).group_by(keys, use_threads=False).aggregate(aggregations)
    by_key = dict(zip(keys_read, keys, strict=True))
    columns = [
        grouped.column(specs[(f, c)] if f else by_key[c])  # type: ignore[index]
        for f, c in outputs
    ]
    return _cast(columns, schema)


def _cast(columns: list[Any], schema: pa.Schema) -> pa.Table | None:
    """``columns`` as a table of the engine's ``schema`` (None if a value does not fit)."""
    try:
        return pa.Table.from_arrays(columns, names=schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _supported(function: str, kind: pa.DataType) -> bool:
    """Column types whose aggregate Arrow computes exactly as the engines do."""
    if function == "count":
        return not pa.types.is_nested(kind)
    integer = pa.types.is_integer(kind) and kind.bit_width <= 32
    if function in ("sum", "mean"):  # float32 sums in float32 in Arrow, in double in SQL
        return integer or pa.types.is_float64(kind)
    return (  # min, max, and grouping keys
        pa.types.is_integer(kind)
        or pa.types.is_string(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_date32(kind)
    )
