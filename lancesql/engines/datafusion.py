"""The DataFusion adapter.

Design notes: ``docs/ARCHITECTURE.md``, "The DataFusion adapter".
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import datafusion
import lance
import pyarrow as pa
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB

from lancesql.engines.base import reporting
from lancesql.engines.held import HeldCopies
from lancesql.rewrite import RULES
from lancesql.udfs.registry import TABLE_FUNCTIONS, ScalarFunction, Session, Source, TableFunction


class Datafusion(DuckDB):
    """DuckDB's SQL as DataFusion reads it (registered with sqlglot as ``datafusion``)."""

    class Generator(DuckDB.Generator):  # type: ignore[misc,valid-type]
        #: DuckDB's vector distances under DataFusion's names (the same values).
        RENAMED: ClassVar[dict[str, str]] = {
            "array_cosine_distance": "cosine_distance",
            "array_inner_product": "inner_product",
        }

        def hexstring_sql(self, expression: exp.HexString, binary_function_repr: str | None = None) -> str:
            """``X'00FF'``, which DataFusion reads as a binary literal (it has no ``unhex``)."""
            return f"X'{expression.this}'"

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
        # DataFusion 54's dynamic join filters drop NULL keys where NULLs are equal
        # (``SELECT s FROM t INTERSECT SELECT s FROM t`` lost the NULL row)
        .set("datafusion.optimizer.enable_dynamic_filter_pushdown", "false")
    )


class DataFusionCopier:
    """DataFusion's copies of Lance columns (see :mod:`lancesql.engines.held`): Arrow
    batches in ``partitions`` parts, which DataFusion joins in parallel."""

    def __init__(self, partitions: int):
        self._partitions = partitions

    def copy(
        self, dataset: lance.LanceDataset, columns: list[str]
    ) -> tuple[list[list[pa.RecordBatch]], int] | None:
        table = dataset.to_table(columns=columns)
        rows = max(-(-table.num_rows // self._partitions), 1)
        parts = [table.slice(start, rows).to_batches() for start in range(0, table.num_rows, rows)]
        return parts or [[pa.RecordBatch.from_pylist([], schema=table.schema)]], table.nbytes

    def drop(self, copy: list[list[pa.RecordBatch]]) -> None:
        """Nothing to release: the batches go with the last statement that reads them."""


class DataFusionCursor:
    """A DataFusion session with lancesql's sources registered on it."""

    def __init__(
        self,
        ctx: datafusion.SessionContext,
        held: HeldCopies[list[list[pa.RecordBatch]]],
        session: Session,
        partitions: int,
    ):
        self.ctx = ctx
        self._held = held
        self._session = session
        self._partitions = partitions

    def register(
        self,
        name: str,
        source: Source,
        *,
        row_ids: bool = False,
        columns: Sequence[str] | None = None,
        statement: object | None = None,
    ) -> bool:
        if self.ctx.table_exist(name):
            self.ctx.deregister_table(name)
        if isinstance(source, lance.LanceDataset):
            if statement is not None and not row_ids:
                budget = int(self._session.settings.get("join_cache_bytes"))
                copier = DataFusionCopier(self._partitions)
                held = self._held.copy_for(source, columns, budget, statement, copier)
                if held is not None:
                    self.ctx.register_record_batches(name, held.copy)
                    return False
            self.ctx.register_table(name, lance.FFILanceTableProvider(source, with_row_id=row_ids))
            return True
        if isinstance(source, pa.RecordBatchReader):
            source = source.read_all()
        batches = source.to_batches() or [pa.RecordBatch.from_pylist([], schema=source.schema)]
        self.ctx.register_record_batches(name, [batches])
        return True

    def unregister(self, name: str) -> None:
        if self.ctx.table_exist(name):
            self.ctx.deregister_table(name)

    def execute(self, sql: str, params: Sequence[Any]) -> pa.RecordBatchReader:
        values = {str(i + 1): _scalar(v) for i, v in enumerate(params)} if params else None
        frame = self.ctx.sql(sql, param_values=values)
        return pa.RecordBatchReader.from_stream(frame)

    def create_function(self, function: ScalarFunction) -> None:
        create_function(self.ctx, function)

    def close(self) -> None:
        self.ctx = None  # type: ignore[assignment]


class DataFusionEngine:
    """A factory of DataFusion sessions sharing lancesql's functions."""

    name = "datafusion"
    dialect = "datafusion"
    rules = RULES

    def __init__(self) -> None:
        self._functions: dict[str, ScalarFunction] = {}
        self.held: HeldCopies[list[list[pa.RecordBatch]]] = HeldCopies()

    def cursor(self, session: Session) -> DataFusionCursor:
        partitions = int(session.settings.get("datafusion_target_partitions")) or os.cpu_count() or 1
        cursor = DataFusionCursor(
            datafusion.SessionContext(_config(partitions)), self.held, session, partitions
        )
        for function in self._functions.values():
            cursor.create_function(function)
        # lancesql binds table functions itself (their arguments may be subqueries); these
        # native ones serve SQL sent to the SessionContext directly, with literal arguments.
        for table_function in TABLE_FUNCTIONS.values():
            create_table_function(cursor.ctx, table_function, session)
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


def create_function(ctx: datafusion.SessionContext, function: ScalarFunction) -> None:
    """Register ``function`` (bound to its connection) on a DataFusion session; DataFusion
    calls it with whole record batches, from several threads.

    DataFusion matches a Python UDF's argument types exactly, with few coercions: a
    ``Binary`` parameter refuses the ``LargeBinary`` columns Lance writes. The view
    types accept every width (``BinaryView`` takes binary, large binary and views;
    ``Utf8View`` takes every string type), so binary and string parameters are declared
    as views and the function sees view arrays.
    """
    params = [_VIEWS.get(t, t) for t in function.arg_types]
    ctx.register_udf(
        datafusion.udf(reporting(function), params, function.return_type, "stable", function.name)
    )


_VIEWS = {
    pa.binary(): pa.binary_view(),
    pa.large_binary(): pa.binary_view(),
    pa.string(): pa.string_view(),
    pa.large_string(): pa.string_view(),
}


def create_table_function(ctx: datafusion.SessionContext, function: TableFunction, session: Session) -> None:
    """Register ``function`` as a DataFusion table function with literal arguments, so
    that ``lance_scan('x.lance')`` works in SQL sent to the ``SessionContext`` directly
    (lancesql itself binds table functions before the engine runs, see
    :mod:`lancesql.rewrite.bind_table_functions`)."""

    def call(*exprs: Any) -> Any:
        args = [_literal(e) for e in exprs]
        source = function(session, args, {})
        if isinstance(source, lance.LanceDataset):
            return lance.FFILanceTableProvider(source, with_row_id=False)
        table = source.read_all() if isinstance(source, pa.RecordBatchReader) else source
        return datafusion.Table(ctx.from_arrow(table))

    ctx.register_udtf(datafusion.udtf(call, function.name))


def _literal(expr: Any) -> Any:
    value = expr.python_value() if hasattr(expr, "python_value") else expr
    return value.as_py() if isinstance(value, pa.Scalar) else value
