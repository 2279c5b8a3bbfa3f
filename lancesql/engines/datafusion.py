"""The DataFusion adapter.

Lance datasets reach DataFusion through pylance's ``FFILanceTableProvider``, which
pushes projection, filters, LIMIT and scalar-index lookups into Lance natively (the
plan shows ``FilteredReadExec`` and ``ScalarIndexExec``). That provider loads only in
the DataFusion major pylance was built against (pylance 14: DataFusion 54), hence the
pin in ``pyproject.toml``.

Round-robin repartitioning is turned off: DataFusion 54 otherwise inserts a
``RepartitionExec`` under the provider's pushed-down ``GlobalLimitExec`` and the query
fails an internal assertion (``GlobalLimitExec requires a single input partition``)
for every ``WHERE ... LIMIT``. Hash repartitioning for joins and aggregates stays on.

Each lancesql cursor gets its own ``SessionContext``, so the names registered for one
statement never collide with another cursor's.

SQL is generated for DataFusion in the ``datafusion`` dialect below: DuckDB's, with the
few DuckDB function names DataFusion spells differently translated.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import datafusion
import lance
import pyarrow as pa
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB

from lancesql.rewrite import RULES
from lancesql.udfs.registry import ScalarFunction, Source

if TYPE_CHECKING:
    from lancesql.connection import Connection


class Datafusion(DuckDB):
    """DuckDB's SQL as DataFusion reads it (registered with sqlglot as ``datafusion``)."""

    class Generator(DuckDB.Generator):  # type: ignore[misc,valid-type]
        #: DuckDB's vector distances under DataFusion's names (the same values).
        RENAMED: ClassVar[dict[str, str]] = {
            "array_cosine_distance": "cosine_distance",
            "array_inner_product": "inner_product",
        }

        def anonymous_sql(self, expression: exp.Anonymous) -> str:
            name = expression.name.lower()
            if name in self.RENAMED:
                return self.func(self.RENAMED[name], *expression.expressions)
            if name == "array_negative_inner_product":
                return f"(-{self.func('inner_product', *expression.expressions)})"
            return super().anonymous_sql(expression)


def _config(target_partitions: int) -> datafusion.SessionConfig:
    partitions = target_partitions or os.cpu_count() or 1
    return (
        datafusion.SessionConfig()
        .with_target_partitions(partitions)
        .set("datafusion.optimizer.enable_round_robin_repartition", "false")
        .set("datafusion.sql_parser.enable_ident_normalization", "false")
    )


class DataFusionCursor:
    """A DataFusion session with lancesql's sources registered on it."""

    def __init__(self, ctx: datafusion.SessionContext):
        self.ctx = ctx

    def register(self, name: str, source: Source, *, row_ids: bool = False) -> None:
        if self.ctx.table_exist(name):
            self.ctx.deregister_table(name)
        if isinstance(source, lance.LanceDataset):
            self.ctx.register_table(name, lance.FFILanceTableProvider(source, with_row_id=row_ids))
            return
        if isinstance(source, pa.RecordBatchReader):
            source = source.read_all()
        batches = source.to_batches() or [pa.RecordBatch.from_pylist([], schema=source.schema)]
        self.ctx.register_record_batches(name, [batches])

    def unregister(self, name: str) -> None:
        if self.ctx.table_exist(name):
            self.ctx.deregister_table(name)

    def execute(self, sql: str, params: Sequence[Any]) -> pa.RecordBatchReader:
        values = {str(i + 1): _scalar(v) for i, v in enumerate(params)} if params else None
        frame = self.ctx.sql(sql, param_values=values)
        return pa.RecordBatchReader.from_stream(frame)

    def create_function(self, function: ScalarFunction) -> None:
        from lancesql.udfs.engines import datafusion_function

        datafusion_function(self.ctx, function)

    def close(self) -> None:
        self.ctx = None  # type: ignore[assignment]


class DataFusionEngine:
    """A factory of DataFusion sessions sharing lancesql's functions."""

    name = "datafusion"
    dialect = "datafusion"
    rules = RULES

    def __init__(self) -> None:
        self._functions: dict[str, ScalarFunction] = {}

    def cursor(self, connection: Connection) -> DataFusionCursor:
        from lancesql.udfs import TABLE_FUNCTIONS
        from lancesql.udfs.engines import datafusion_table_function

        partitions = int(connection.settings.get("datafusion_target_partitions"))
        cursor = DataFusionCursor(datafusion.SessionContext(_config(partitions)))
        for function in self._functions.values():
            cursor.create_function(function)
        # lancesql binds table functions itself (their arguments may be subqueries); these
        # native ones serve SQL sent to the SessionContext directly, with literal arguments.
        for table_function in TABLE_FUNCTIONS.values():
            datafusion_table_function(cursor.ctx, table_function, connection)
        return cursor

    def register_function(self, function: ScalarFunction) -> None:
        self._functions[function.name] = function

    def close(self) -> None:
        self._functions.clear()


def _scalar(value: Any) -> Any:
    """Parameters as DataFusion takes them: numpy arrays and lists become Arrow scalars."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return pa.scalar(list(value))
    return value
