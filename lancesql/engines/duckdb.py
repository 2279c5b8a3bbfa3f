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
import re
from collections.abc import Sequence
from typing import Any

import duckdb
import duckdb.func
import lance
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
from pyarrow.substrait import serialize_expressions

from lancesql.engines.base import reporting
from lancesql.engines.duckdb_held import DuckDBCopier, view_sql
from lancesql.engines.held import HeldCopies, shown_columns
from lancesql.engines.push_limit import push_limit
from lancesql.errors import (
    DataError,
    Error,
    IntegrityError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    caret,
)
from lancesql.rewrite import Rule
from lancesql.rewrite.bind_table_functions import bind_table_functions
from lancesql.rewrite.fetch_first import fetch_first
from lancesql.rewrite.lateral_search import lateral_search
from lancesql.rewrite.order_by_distance import order_by_distance
from lancesql.rewrite.project_table_functions import project_table_functions
from lancesql.rewrite.qualify_tables import qualify_tables
from lancesql.rewrite.time_travel import time_travel
from lancesql.udfs.registry import ScalarFunction, Session, Source

#: DuckDB's rules: it stops a scan only after reading fragments in parallel, so a plain
#: scan's LIMIT is handed to Lance first (DataFusion's Lance provider takes it natively).
DUCKDB_RULES: tuple[Rule, ...] = (
    fetch_first,
    time_travel,
    lateral_search,
    order_by_distance,
    qualify_tables,
    push_limit,
    bind_table_functions,
    project_table_functions,
)

_BATCH_ROWS = 65_536

#: DuckDB's copy of the SQL it ran: ``LINE 1: SELECT ... FROM __lancesql_0 AS t`` and a
#: line of carets under the place.
_SQL_BLOCK = re.compile(r"\n*LINE (\d+): (.*)\n( *)(\^+)\s*$")


def clean_message(message: str, sql: str | None = None) -> str:
    r"""A DuckDB message with its copy of the engine's SQL (lancesql's rewrite of the
    user's statement) replaced by the user's line, the caret under the same words.

    >>> print(clean_message("Conversion Error: no\n\nLINE 1: SELECT CAST(a AS INT) FROM __lancesql_0"
    ...     "\n               ^^^^", "SELECT cast(a as int) FROM t"))
    Conversion Error: no
    LINE 1: SELECT cast(a as int) FROM t
                   ^^^^
    """
    match = _SQL_BLOCK.search(message)
    if match is None:
        return message
    head = message[: match.start()].rstrip()
    line, pad, marks = match.group(2), match.group(3), match.group(4)
    offset = len(pad) - len(f"LINE {match.group(1)}: ")
    fragment = line[offset : offset + max(len(marks), 1)] if offset >= 0 else ""
    word = re.match(r"[\w\"']+|.", fragment.strip())
    block = caret(sql, word.group(0)) if sql and word else ""
    if sql and not block and fragment.strip():
        block = caret(sql, fragment.strip())
    return f"{head}\n{block}" if block else head


class _ForDuckDB(lance.LanceDataset):
    """A Lance dataset as DuckDB's Arrow-dataset scan needs it.

    ``row_ids``: the schema also shows ``_rowid``. DuckDB binds column names against
    ``schema`` and then asks ``scanner(columns=...)`` for the ones a query uses; Lance's
    scanner already accepts ``_rowid`` there, so only the schema has to say it exists.

    ``arrow_filter``: DuckDB hands its filters to ``scanner(filter=...)`` as a pyarrow
    expression, which Lance reads through Substrait, and Lance's Substrait reader refuses
    a schema holding a type it has no mapping for (``TIME``: "Unsupported Substrait type:
    Time", whatever the filter names) and a filter naming an unsigned integer or a binary
    column ("pushdown filter referenced a field that is not yet supported"). For such a
    filter Lance reads only the columns asked for plus those the filter names, and Arrow
    applies the filter: the same rows, without the scalar indices.

    ``lancesql_rows``: the row count (``count_rows()``, from the manifest, no data read),
    which DuckDB's join planner estimates the scan at; see :func:`_estimate_lance_scans`.
    """

    def __init__(self, inner: lance.LanceDataset, *, row_ids: bool, arrow_filter: bool):
        self.__dict__.update(inner.__dict__)  # shares the open handle, reads nothing
        self._lancesql_row_ids = row_ids
        self._lancesql_arrow_filter = arrow_filter
        self.lancesql_rows = inner.count_rows()

    @property
    def schema(self) -> pa.Schema:
        schema = super().schema
        return schema.append(pa.field("_rowid", pa.uint64())) if self._lancesql_row_ids else schema

    def scanner(self, *args: Any, **kwargs: Any) -> Any:
        where = kwargs.get("filter")
        if not self._lancesql_arrow_filter or not isinstance(where, pc.Expression) or args:
            return super().scanner(*args, **kwargs)
        schema = super().schema
        named = _fields_named(where, schema)
        if not _has_time(schema) and all(_substrait_reads(schema.field(n).type) for n in named):
            return super().scanner(*args, **kwargs)
        columns = kwargs.pop("columns", None)
        kwargs.pop("filter")
        read = None
        if columns is not None:
            read = list(columns) + [n for n in named if n not in columns]
        reader = super().scanner(columns=read, **kwargs).to_reader()
        return pds.Scanner.from_batches(reader, filter=where, columns=columns)


def _fields_named(where: pc.Expression, schema: pa.Schema) -> list[str]:
    """The columns a pyarrow filter names (pyarrow has no public walk of an expression:
    a field is named when the filter no longer binds once that field is renamed)."""
    fields = [pa.field(f.name, f.type if _serializable(f.type) else pa.int8()) for f in schema]
    named = []
    for i, field in enumerate(fields):
        renamed = pa.schema([*fields[:i], field.with_name("__lancesql_absent__"), *fields[i + 1 :]])
        try:
            serialize_expressions([where], ["filter"], renamed)
        except (pa.ArrowException, ValueError, TypeError):
            named.append(field.name)
    return named


def _serializable(kind: pa.DataType) -> bool:
    return not (pa.types.is_nested(kind) or isinstance(kind, pa.BaseExtensionType))


def _has_time(schema: pa.Schema) -> bool:
    """Whether ``schema`` holds a TIME anywhere (Lance's Substrait reader refuses it)."""

    def has(kind: pa.DataType) -> bool:
        if pa.types.is_time(kind):
            return True
        if pa.types.is_struct(kind):
            return any(has(kind.field(i).type) for i in range(kind.num_fields))
        if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
            return has(kind.value_type)
        return False

    return any(has(f.type) for f in schema)


def _substrait_reads(kind: pa.DataType) -> bool:
    """Whether Lance's Substrait reader takes a filter on a column of type ``kind``."""
    return (
        pa.types.is_signed_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_date32(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_decimal(kind)
    )


def _needs_arrow_filter(schema: pa.Schema) -> bool:
    """Whether some filter over ``schema`` is one Lance's Substrait reader refuses."""
    return _has_time(schema) or not all(_substrait_reads(f.type) for f in schema)


def _estimate_lance_scans() -> None:
    """Give DuckDB the row count of each Lance dataset lancesql registers.

    DuckDB 2 reads a registered pyarrow Dataset through a source object whose ``rows()``
    is the scan's cardinality estimate; for a Dataset it is unknown, so DuckDB estimated
    every Lance scan at one row and could order joins badly (build a hash table on a
    million-row scan, probe it with a hundred rows). The Python API has no public way to
    pass an estimate with a registered object, so the pyarrow-Dataset source is taught
    to read ``lancesql_rows`` from the objects lancesql registers; any other object gets
    what DuckDB gave it before. Without that source class (another DuckDB release), scans
    stay unestimated, which ``tests/test_row_estimates.py`` reports.

    A row count is all a source can give: DuckDB's scan of a Python object sets the
    cardinality from ``rows()`` and has no statistics callback (nor has DuckDB's C API),
    so a join key's distinct count falls back to the smallest row count among the tables
    it joins (see "The DuckDB adapter" in docs/ARCHITECTURE.md).
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


def _scan(dataset: lance.LanceDataset, *, row_ids: bool) -> _ForDuckDB:
    """``dataset`` as lancesql registers it for DuckDB's scan."""
    return _ForDuckDB(dataset, row_ids=row_ids, arrow_filter=_needs_arrow_filter(dataset.schema))


class DuckDBCursor:
    """A DuckDB cursor with lancesql's sources registered on it."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, held: HeldCopies[str], session: Session):
        self._cursor = cursor
        self._held = held
        self._session = session
        #: Names shown as views of held copies (dropped, not unregistered, before reuse).
        self._views: set[str] = set()

    def register(
        self,
        name: str,
        source: Source,
        *,
        row_ids: bool = False,
        columns: Sequence[str] | None = None,
        statement: object | None = None,
    ) -> bool:
        """Register ``source`` as ``name``; a Lance version a statement of several tables
        reads for the second time is shown as a view of its copy in DuckDB (see
        :mod:`lancesql.engines.duckdb_held`), which is not kept for the next statement."""
        if isinstance(source, lance.LanceDataset):
            dataset = source
            if statement is not None and not row_ids:
                budget = int(self._session.settings.get("join_cache_bytes"))
                copier = DuckDBCopier(self._cursor, lambda: _scan(dataset, row_ids=False))
                held = self._held.copy_for(dataset, columns, budget, statement, copier)
                if held is not None:
                    shown = shown_columns(held.columns, columns)
                    self._cursor.execute(view_sql(name, held.copy, shown))
                    self._views.add(name)
                    return False
            source = _scan(dataset, row_ids=row_ids)
        self._drop_view(name)
        self._cursor.register(name, source)
        return True

    def _drop_view(self, name: str) -> None:
        if name in self._views:
            self._views.discard(name)
            self._cursor.execute(f'DROP VIEW IF EXISTS "{name}"')

    def unregister(self, name: str) -> None:
        if name in self._views:
            self._drop_view(name)
        else:
            self._cursor.unregister(name)

    def execute(self, sql: str, params: Sequence[Any]) -> pa.RecordBatchReader:
        relation = self._cursor.sql(sql, params=list(params) if params else None)
        if relation is None:  # a statement with no result (SET, CREATE ...)
            return pa.RecordBatchReader.from_batches(pa.schema([]), [])
        return relation.to_arrow_reader(_BATCH_ROWS)

    def close(self) -> None:
        self._cursor.close()


#: DuckDB optimizers that guess wrong without column statistics (see DuckDBEngine).
_DISABLED_OPTIMIZERS = "partial_aggregate_pushdown"


class DuckDBEngine:
    """One in-memory DuckDB database per lancesql connection."""

    name = "duckdb"
    dialect = "duckdb"
    rules = DUCKDB_RULES

    def __init__(self) -> None:
        self._db = duckdb.connect(":memory:")
        # DuckDB's partial aggregate pushdown groups a join's side by the join key before
        # the join when it guesses that shrinks it; with Parquet's min/max it sees a key
        # is (near) unique and does not, but a Lance scan gives it only a row count, so it
        # grouped a million-row side by a unique key before every aggregate over a join
        # (the laion three-table join: 2.6x the time over Parquet). Off, the plans over
        # Lance are the plans over Parquet (benchmarks/bench_laion_joins.py).
        self._db.execute(f"SET GLOBAL disabled_optimizers = '{_DISABLED_OPTIMIZERS}'")
        self._functions: dict[str, ScalarFunction] = {}
        self.held: HeldCopies[str] = HeldCopies()

    def cursor(self, session: Session) -> DuckDBCursor:
        return DuckDBCursor(self._db.cursor(), self.held, session)

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


#: DuckDB's message prefixes ("Invalid Input Error: ...") -> its exception class names.
_MESSAGE_PREFIXES = re.compile(
    r"^(Invalid Input|Binder|Catalog|Parser|Syntax|Conversion|Out of Range|Constraint|"
    r"Not implemented|INTERNAL|IO) Error:"
)
_PREFIX_CLASSES = {
    "Invalid Input": "InvalidInputException",
    "Binder": "BinderException",
    "Catalog": "CatalogException",
    "Parser": "ParserException",
    "Syntax": "SyntaxException",
    "Conversion": "ConversionException",
    "Out of Range": "OutOfRangeException",
    "Constraint": "ConstraintException",
    "Not implemented": "NotImplementedException",
    "INTERNAL": "InternalException",
    "IO": "IOException",
}


def classify_message(exc: BaseException) -> type[Error] | None:
    """The DB-API class of a DuckDB error that reached lancesql as another exception
    (raised while its result streamed: Arrow's), by DuckDB's message prefix."""
    found = _MESSAGE_PREFIXES.match(str(exc).strip())
    return _ERROR_CLASSES.get(_PREFIX_CLASSES[found.group(1)]) if found else None
