"""Grouped counts answered without the engine: ``SELECT label, count(*) FROM t GROUP BY label``.

Counting a table by a label is the first question asked of a dataset, and on a small
one most of its cost is the engine's own: DuckDB or DataFusion planning a query,
starting a scan of the Lance dataset and building a hash table take longer than
Lance reading the one column and Arrow grouping it (see ``benchmarks/bench_query.py``).
So a query that only groups one Lance table by some of its columns, perhaps through a
WHERE Lance evaluates exactly as SQL does, and computes ``count(*)``, ``count(c)``,
``min``, ``max``, ``sum`` or ``avg`` of plain columns, is answered by Lance's scanner and
Arrow's hash aggregation.

The result must be the one the engine gives, names and types included, and those are
the engine's own (DuckDB calls ``count(*)`` ``count_star()`` and widens an integer sum to
``DECIMAL(38,0)``; DataFusion keeps ``count(*)`` and ``Int64``). Rather than restate
each engine's rules, the first run of a statement goes to the engine and its result
schema is kept on the prepared statement, keyed by the types of the columns read; later
runs compute the values with Arrow and cast them to that schema. Anything else
(HAVING, ORDER BY, LIMIT, DISTINCT, expressions, a join, aggregates whose result could
differ in its last bits or on overflow, such as ``min`` of floats with NaN or ``sum`` of
64-bit integers) goes to the engine as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lance
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from lancesql import lance_sql
from lancesql.direct import column_name, condition_of, lance_filter, only_source
from lancesql.fast_path import answers_alone

#: Clauses that make a grouped select more than a grouping (and a filter).

#: SQL aggregate -> Arrow's hash aggregate.
_FUNCTIONS: dict[type[exp.Expression], str] = {
    exp.Count: "count",
    exp.Sum: "sum",
    exp.Avg: "mean",
    exp.Min: "min",
    exp.Max: "max",
}

#: An output column: a grouping column (function ``""``), or an aggregate of a column
#: (column ``None`` for ``count(*)``).
Output = tuple[str, "str | None"]


@dataclass(frozen=True)
class Grouping:
    """What a grouped query asks of its one table."""

    table: exp.Table
    keys: tuple[str, ...]
    outputs: tuple[Output, ...]
    where: exp.Expression | None

    def key(self, ds: lance.LanceDataset) -> tuple[Any, ...] | None:
        """What the engine's result schema depends on: the types of the columns read
        (None when a column is missing, so that the engine reports it)."""
        schema = ds.schema
        names = set(self.keys) | {c for _, c in self.outputs if c is not None}
        if not names <= set(schema.names):
            return None
        return tuple((name, schema.field(name).type) for name in sorted(names))


def grouping(tree: exp.Expression) -> Grouping | None:
    """The grouping ``tree`` asks for, when it has the shape described above."""
    if not isinstance(tree, exp.Select) or not answers_alone(tree, accepts={"group"}):
        return None
    table = only_source(tree)
    if table is None:
        return None
    alias = table.alias_or_name
    group = tree.args.get("group")
    keys: list[str] = []
    if group is not None:
        if any(group.args.get(a) for a in ("grouping_sets", "cube", "rollup", "totals", "all")):
            return None
        for node in group.expressions:
            name = column_name(node, alias)
            if name is None:
                return None
            keys.append(name)
    outputs: list[Output] = []
    for projection in tree.expressions:
        node = projection.this if isinstance(projection, exp.Alias) else projection
        name = column_name(node, alias)
        if name is not None:
            if name not in keys:
                return None  # not grouped: the engine says so
            outputs.append(("", name))
            continue
        function = _FUNCTIONS.get(type(node))
        if function is None or node.args.get("expressions"):
            return None
        argument = node.this
        if isinstance(argument, exp.Star) and function == "count":
            outputs.append(("count_all", None))
            continue
        column = column_name(argument, alias)
        if column is None:
            return None
        outputs.append((function, column))
    if not any(function for function, _ in outputs):
        return None  # a DISTINCT in disguise: the engine does it as well
    condition = condition_of(tree)
    if condition is not None and not lance_sql.is_lance_predicate(condition, alias):
        return None
    return Grouping(table, tuple(dict.fromkeys(keys)), tuple(outputs), condition)


def aggregate(
    ds: lance.LanceDataset,
    shape: Grouping,
    schema: pa.Schema,
    value_of: Callable[[exp.Placeholder], Any],
) -> pa.Table | None:
    """The query's result computed by Lance and Arrow, cast to the engine's ``schema``;
    None when the engine must run it."""
    ds_schema = ds.schema
    if len(schema) != len(shape.outputs):
        return None
    for function, column in (*shape.outputs, *(("", k) for k in shape.keys)):
        if column is not None and not _supported(function, ds_schema.field(column).type):
            return None
    condition = None
    if shape.where is not None:
        condition = lance_filter(shape.where, ds_schema, value_of)
        if condition is None:
            return None
    read = list(dict.fromkeys([*shape.keys, *(c for _, c in shape.outputs if c is not None)]))
    try:
        if not read:  # count(*) alone: Lance counts from its metadata or an index
            count = pa.array([ds.count_rows(filter=condition)], pa.int64())
            return _cast([count] * len(shape.outputs), schema)
        table = ds.to_table(columns=read, filter=condition)
    except (ValueError, OSError, RuntimeError):
        return None  # a filter Lance reads otherwise: the engine decides
    # Inputs under names of our own, so that no column's name meets an Arrow output name.
    keys = [f"k{i}" for i in range(len(shape.keys))]
    inputs = {k: table.column(c) for k, c in zip(keys, shape.keys, strict=True)}
    specs: dict[Output, str] = {}
    aggregations: list[tuple[Any, ...]] = []
    for output in shape.outputs:
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
    by_key = dict(zip(shape.keys, keys, strict=True))
    columns = [
        grouped.column(specs[(f, c)] if f else by_key[c])  # type: ignore[index]
        for f, c in shape.outputs
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
