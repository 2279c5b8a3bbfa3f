"""Registering lancesql's functions on each engine, from their one definition.

A :class:`~udfs.registry.ScalarFunction` is an Arrow function; DuckDB calls it through
``create_function(type="arrow")`` (with chunks of at most 2,048 rows) and DataFusion
through ``udf`` (with whole record batches). A :class:`~udfs.registry.TableFunction` is
called by lancesql itself for both engines (see ``lancesql.rewrite.bind_table_functions``);
on DataFusion it is also registered as a native table function, so that
``lance_scan('x.lance')`` works in SQL sent to the ``SessionContext`` directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import datafusion
import duckdb
import lance
import pyarrow as pa

from udfs.registry import ScalarFunction, TableFunction

if TYPE_CHECKING:
    from lancesql.connection import Connection


def duckdb_function(cursor: duckdb.DuckDBPyConnection, function: ScalarFunction) -> None:
    """Register ``function`` on a DuckDB cursor as a vectorised (Arrow) function."""
    params = [_duckdb_type(t) for t in function.arg_types]
    cursor.create_function(  # type: ignore[call-overload]
        function.name,
        function.fn,
        params,
        _duckdb_type(function.return_type),
        type="arrow",
        null_handling="special",
        exception_handling="default",
        side_effects=False,
    )


def _duckdb_type(arrow_type: pa.DataType) -> Any:
    """DuckDB's type for an Arrow type, as DuckDB itself maps it (duckdb 2 has no
    ``duckdb.typing``, and ``DuckDBPyType`` does not take Arrow types)."""
    return duckdb.from_arrow(pa.table({"x": pa.array([], arrow_type)})).types[0]


def datafusion_function(ctx: datafusion.SessionContext, function: ScalarFunction) -> None:
    """Register ``function`` on a DataFusion session."""

    def call(*arrays: pa.Array) -> pa.Array:
        return function.fn(*arrays)

    ctx.register_udf(
        datafusion.udf(call, list(function.arg_types), function.return_type, "stable", function.name)
    )


def datafusion_table_function(
    ctx: datafusion.SessionContext, function: TableFunction, connection: Connection
) -> None:
    """Register ``function`` as a DataFusion table function with literal arguments."""

    def call(*exprs: Any) -> Any:
        args = [_literal(e) for e in exprs]
        source = function(connection, args, {})
        if isinstance(source, lance.LanceDataset):
            return lance.FFILanceTableProvider(source, with_row_id=False)
        table = source.read_all() if isinstance(source, pa.RecordBatchReader) else source
        return datafusion.Table(ctx.from_arrow(table))

    ctx.register_udtf(datafusion.udtf(call, function.name))


def _literal(expr: Any) -> Any:
    value = expr.python_value() if hasattr(expr, "python_value") else expr
    return value.as_py() if isinstance(value, pa.Scalar) else value
