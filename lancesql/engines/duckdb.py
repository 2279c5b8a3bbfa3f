"""The DuckDB adapter: the embedded default.

Lance datasets are registered on the DuckDB cursor that runs the statement
(``cursor.register(name, dataset)``: a LanceDataset is a pyarrow Dataset, so DuckDB
pushes projection and ``=``, ``IN``, range and AND/OR filters into Lance, where they
hit the scalar indices). A DuckDB cursor does not see what its parent connection
registered, so each lancesql cursor has its own DuckDB cursor; scalar functions are in
the database's catalog, which the cursors share, and are registered once.
"""

from __future__ import annotations

import atexit
from collections.abc import Sequence
from typing import Any

import duckdb
import duckdb.func
import lance
import pyarrow as pa

from lancesql.engines.base import reporting
from lancesql.engines.push_limit import push_limit
from lancesql.errors import (
    DataError,
    Error,
    IntegrityError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
)
from lancesql.rewrite import Rule
from lancesql.rewrite.bind_table_functions import bind_table_functions
from lancesql.rewrite.order_by_distance import order_by_distance
from lancesql.rewrite.project_table_functions import project_table_functions
from lancesql.rewrite.qualify_tables import qualify_tables
from lancesql.rewrite.time_travel import time_travel
from lancesql.udfs.registry import ScalarFunction, Session, Source

#: DuckDB's rules: it stops a scan only after reading fragments in parallel, so a plain
#: scan's LIMIT is handed to Lance first (DataFusion's Lance provider takes it natively).
DUCKDB_RULES: tuple[Rule, ...] = (
    time_travel,
    order_by_distance,
    qualify_tables,
    push_limit,
    bind_table_functions,
    project_table_functions,
)

_BATCH_ROWS = 65_536


class _WithRowIds(lance.LanceDataset):
    """A Lance dataset whose schema also shows ``_rowid``.

    DuckDB binds column names against ``schema`` and then asks ``scanner(columns=...)``
    for the ones a query uses; Lance's scanner already accepts ``_rowid`` there, so
    only the schema has to say that the column exists.
    """

    def __init__(self, inner: lance.LanceDataset):  # shares the open handle, reads nothing
        self.__dict__.update(inner.__dict__)

    @property
    def schema(self) -> pa.Schema:
        return super().schema.append(pa.field("_rowid", pa.uint64()))


class DuckDBCursor:
    """A DuckDB cursor with lancesql's sources registered on it."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection):
        self._cursor = cursor

    def register(self, name: str, source: Source, *, row_ids: bool = False) -> None:
        if row_ids and isinstance(source, lance.LanceDataset):
            source = _WithRowIds(source)
        self._cursor.register(name, source)

    def unregister(self, name: str) -> None:
        self._cursor.unregister(name)

    def execute(self, sql: str, params: Sequence[Any]) -> pa.RecordBatchReader:
        relation = self._cursor.sql(sql, params=list(params) if params else None)
        if relation is None:  # a statement with no result (SET, CREATE ...)
            return pa.RecordBatchReader.from_batches(pa.schema([]), [])
        return relation.to_arrow_reader(_BATCH_ROWS)

    def close(self) -> None:
        self._cursor.close()


class DuckDBEngine:
    """One in-memory DuckDB database per lancesql connection."""

    name = "duckdb"
    dialect = "duckdb"
    rules = DUCKDB_RULES

    def __init__(self) -> None:
        self._db = duckdb.connect(":memory:")
        self._functions: dict[str, ScalarFunction] = {}

    def cursor(self, session: Session) -> DuckDBCursor:
        return DuckDBCursor(self._db.cursor())

    def register_function(self, function: ScalarFunction) -> None:
        """Functions live in the database's catalog, which every cursor shares (unlike
        registered tables), so each is created once, on the database."""
        if function.name in self._functions:
            self._db.remove_function(function.name)
        create_function(self._db, function)
        self._functions[function.name] = function

    def close(self) -> None:
        self._db.close()


def create_function(cursor: duckdb.DuckDBPyConnection, function: ScalarFunction) -> None:
    """Register ``function`` (bound to its connection) on a DuckDB cursor as an Arrow
    function: DuckDB calls it with chunks of at most 2,048 rows, from several threads.

    ``null_handling="special"`` hands NULLs to the function, which decides what they give.
    """
    cursor.create_function(
        function.name,
        reporting(function),
        [_duckdb_type(cursor, t) for t in function.arg_types],
        _duckdb_type(cursor, function.return_type),
        type=duckdb.func.PythonUDFType.ARROW,
        null_handling=duckdb.func.FunctionNullHandling.SPECIAL,
        exception_handling=duckdb.PythonExceptionHandling.DEFAULT,
        side_effects=False,
    )


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


_ERROR_CLASSES: dict[str, type[Error]] = {
    "ParserException": ProgrammingError,
    "CatalogException": ProgrammingError,
    "BinderException": ProgrammingError,
    "SyntaxException": ProgrammingError,
    "InvalidInputException": ProgrammingError,
    "ConversionException": DataError,
    "OutOfRangeException": DataError,
    "InvalidTypeException": DataError,
    "TypeMismatchException": DataError,
    "ConstraintException": IntegrityError,
    "NotImplementedException": NotSupportedError,
    "InternalException": InternalError,
    "IOException": OperationalError,
    "HTTPException": OperationalError,
    "OutOfMemoryException": OperationalError,
    "InterruptException": OperationalError,
}


def classify_error(exc: BaseException) -> type[Error] | None:
    """The DB-API class of a DuckDB exception, by its class; None for any other."""
    for klass in type(exc).__mro__:
        if klass.__module__.startswith(("duckdb", "_duckdb")) and klass.__name__ in _ERROR_CLASSES:
            return _ERROR_CLASSES[klass.__name__]
    return None
