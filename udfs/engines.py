"""Registering lancesql's functions on each engine, from their one definition.

A :class:`~lancesql.udfs.registry.ScalarFunction`, bound to its connection, is an Arrow function;
DuckDB calls it through ``create_function(type="arrow")`` (with chunks of at most 2,048
rows) and DataFusion through ``udf`` (with whole record batches); both call it from
several threads at once. A :class:`~lancesql.udfs.registry.TableFunction` is
called by lancesql itself for both engines (see ``lancesql.rewrite.bind_table_functions``);
on DataFusion it is also registered as a native table function, so that
``lance_scan('x.lance')`` works in SQL sent to the ``SessionContext`` directly.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import datafusion
import duckdb
import duckdb.func
import lance
import pyarrow as pa

from lancesql.errors import Error, raised_in_function
from lancesql.udfs.registry import ScalarFunction, TableFunction

if TYPE_CHECKING:
    from lancesql.connection import Connection


def duckdb_function(cursor: duckdb.DuckDBPyConnection, function: ScalarFunction) -> None:
    """Register ``function`` (bound to its connection) on a DuckDB cursor as an Arrow function.

    ``null_handling="special"`` hands NULLs to the function, which decides what they give.
    """
    cursor.create_function(
        function.name,
        _reporting(function),
        [_duckdb_type(cursor, t) for t in function.arg_types],
        _duckdb_type(cursor, function.return_type),
        type=duckdb.func.PythonUDFType.ARROW,
        null_handling=duckdb.func.FunctionNullHandling.SPECIAL,
        exception_handling=duckdb.PythonExceptionHandling.DEFAULT,
        side_effects=False,
    )


def datafusion_function(ctx: datafusion.SessionContext, function: ScalarFunction) -> None:
    """Register ``function`` (bound to its connection) on a DataFusion session.

    DataFusion matches a Python UDF's argument types exactly, with few coercions: a
    ``Binary`` parameter refuses the ``LargeBinary`` columns Lance writes. The view
    types accept every width (``BinaryView`` takes binary, large binary and views;
    ``Utf8View`` takes every string type), so binary and string parameters are declared
    as views and the function sees view arrays.
    """
    params = [_VIEWS.get(t, t) for t in function.arg_types]
    ctx.register_udf(
        datafusion.udf(_reporting(function), params, function.return_type, "stable", function.name)
    )


_VIEWS = {
    pa.binary(): pa.binary_view(),
    pa.large_binary(): pa.binary_view(),
    pa.string(): pa.string_view(),
    pa.large_string(): pa.string_view(),
}


_DUCKDB_TYPES: dict[pa.DataType, Any] = {}
# DuckDB objects still alive at interpreter exit are reported as leaks by nanobind.
atexit.register(_DUCKDB_TYPES.clear)


def _duckdb_type(cursor: duckdb.DuckDBPyConnection, arrow_type: pa.DataType) -> Any:
    """DuckDB's type for ``arrow_type``, as DuckDB itself maps it when reading Arrow
    (DuckDB 2.0's Python API has no Arrow-to-DuckDB type constructor)."""
    if arrow_type not in _DUCKDB_TYPES:
        empty = pa.table({"x": pa.array([], arrow_type)})
        _DUCKDB_TYPES[arrow_type] = cursor.from_arrow(empty).types[0]
    return _DUCKDB_TYPES[arrow_type]


def _reporting(function: ScalarFunction) -> Callable[..., pa.Array]:
    """``function``, remembering the lancesql errors it raises (see ``errors.translate``)."""

    def call(*arrays: Any) -> pa.Array:
        try:
            return function(*arrays)
        except Error as exc:
            raised_in_function(exc)
            raise

    return call


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
