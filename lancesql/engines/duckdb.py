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
from udfs.registry import ScalarFunction, Source

if TYPE_CHECKING:
    from lancesql.connection import Connection

_BATCH_ROWS = 65_536


class _Registered(lance.LanceDataset):
    """A Lance dataset as lancesql registers it on DuckDB: it knows its row count, and with
    ``row_ids`` its schema also shows ``_rowid``.

    DuckDB binds column names against ``schema`` and then asks ``scanner(columns=...)``
    for the ones a query uses; Lance's scanner already accepts ``_rowid`` there, so only
    the schema has to say that the column exists. The row count (``count_rows()``, read
    from the manifest, no data) is what DuckDB's join planner estimates the scan at; see
    :func:`_estimate_lance_scans`.
    """

    def __init__(self, inner: lance.LanceDataset, *, row_ids: bool):  # shares the open handle, reads nothing
        self.__dict__.update(inner.__dict__)
        self.lancesql_row_ids = row_ids
        self.lancesql_rows = inner.count_rows()

    @property
    def schema(self) -> pa.Schema:
        schema = super().schema
        return schema.append(pa.field("_rowid", pa.uint64())) if self.lancesql_row_ids else schema


def _estimate_lance_scans() -> None:
    """Give DuckDB the row count of each registered Lance dataset.

    DuckDB 2 reads a registered pyarrow Dataset through a source object whose ``rows()``
    is the scan's cardinality estimate; for a Dataset it is unknown, so DuckDB estimated
    every Lance scan at one row and could order joins badly (build a hash table on a
    million-row scan, probe it with a hundred rows). The Python API has no public way to
    pass an estimate with a registered object, so the pyarrow-Dataset source is taught
    to read ``lancesql_rows`` from the objects lancesql registers; any other object gets
    what DuckDB gave it before. Without that source class (another DuckDB major), scans
    stay unestimated, and ``tests/test_laion_joins.py`` says so.
    """
    try:
        from duckdb._sources.pyarrow import PyArrowDatasetSource
    except ImportError:  # pragma: no cover - another DuckDB release
        return
    if getattr(PyArrowDatasetSource.rows, "lancesql", False):
        return
    unknown = PyArrowDatasetSource.rows

    def rows(self: Any) -> int | None:
        known = getattr(self.obj, "lancesql_rows", None)
        return known if isinstance(known, int) else unknown(self)

    rows.lancesql = True  # type: ignore[attr-defined]
    PyArrowDatasetSource.rows = rows  # type: ignore[method-assign]


_estimate_lance_scans()


class DuckDBCursor:
    """A DuckDB cursor with lancesql's sources registered on it."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection):
        self._cursor = cursor

    def register(self, name: str, source: Source, *, row_ids: bool = False) -> None:
        if isinstance(source, lance.LanceDataset):
            source = _Registered(source, row_ids=row_ids)
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
        from udfs.engines import duckdb_function

        if function.name in self._functions:
            self._db.remove_function(function.name)
        duckdb_function(self._db, function)
        self._functions[function.name] = function

    def close(self) -> None:
        self._db.close()
