"""The DuckDB adapter: the embedded default.

Lance datasets are registered on the DuckDB cursor that runs the statement
(``cursor.register(name, dataset)``: a LanceDataset is a pyarrow Dataset, so DuckDB
pushes projection and ``=``, ``IN``, range and AND/OR filters into Lance, where they
hit the scalar indices). A DuckDB cursor does not see what its parent connection
registered, so each lancesql cursor has its own DuckDB cursor; scalar functions are in
the database's catalog, which the cursors share, and are registered once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import lance
import pyarrow as pa

from lancesql.rewrite import DUCKDB_RULES
from lancesql.udfs.registry import ScalarFunction, Source

if TYPE_CHECKING:
    from lancesql.connection import Connection

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

    def cursor(self, connection: Connection) -> DuckDBCursor:
        return DuckDBCursor(self._db.cursor())

    def register_function(self, function: ScalarFunction) -> None:
        """Functions live in the database's catalog, which every cursor shares (unlike
        registered tables), so each is created once, on the database."""
        from lancesql.udfs.engines import duckdb_function

        if function.name in self._functions:
            self._db.remove_function(function.name)
        duckdb_function(self._db, function)
        self._functions[function.name] = function

    def close(self) -> None:
        self._db.close()
