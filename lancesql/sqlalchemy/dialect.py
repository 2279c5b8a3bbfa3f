"""The ``lancesql`` SQLAlchemy dialect: URL, SQL compilers, types and reflection."""

from __future__ import annotations

import datetime as dt
import decimal
import types
from typing import Any

import pyarrow as pa
from sqlalchemy import Index
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import URL, default, reflection
from sqlalchemy.exc import NoSuchTableError
from sqlalchemy.sql import compiler

import lancesql
from lancesql import views
from lancesql.errors import ProgrammingError


class VECTOR(sqltypes.TypeEngine[list]):
    """A fixed-size array of floats, ``FLOAT[n]`` in lancesql's SQL: what
    ``vector_search`` searches and an IVF_PQ index covers. Values are Python lists."""

    __visit_name__ = "VECTOR"

    def __init__(self, dim: int, item_type: str = "FLOAT"):
        self.dim = dim
        self.item_type = item_type

    @property
    def python_type(self) -> type:
        return list

    def __repr__(self) -> str:
        return f"VECTOR({self.dim}{'' if self.item_type == 'FLOAT' else f', {self.item_type!r}'})"


class BLOB(sqltypes.LargeBinary):
    """Bytes (images inline), ``BLOB`` in lancesql's SQL."""

    __visit_name__ = "BLOB"


class NUMERIC(sqltypes.Numeric[Any]):
    """A decimal. Arithmetic on DECIMALs that DuckDB does in DOUBLE (``/``) gives floats:
    a ``Numeric`` column or expression still reads as :class:`decimal.Decimal`, taken from
    the float's shortest form (``5.52 / 2.4`` reads as ``Decimal('2.3')``)."""

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        if not self.asdecimal:
            return super().result_processor(dialect, coltype)

        def process(value: Any) -> Any:
            return decimal.Decimal(repr(value)) if isinstance(value, float) else value

        return process


class _TypedLiteral:
    """Literal values written as ``TYPE 'text'``: a bare string does not go into a
    DATE, TIME or TIMESTAMP column (lancesql asks for a CAST)."""

    sql_type = ""

    def literal_processor(self, dialect: Any) -> Any:
        def process(value: Any) -> str:
            kind = self.sql_type
            if isinstance(value, dt.datetime):  # a datetime given for a DATE is its date
                if kind == "TIMESTAMP":
                    kind = "TIMESTAMPTZ" if value.tzinfo is not None else "TIMESTAMP"
                    value = value.isoformat(sep=" ")
                else:
                    value = value.date() if kind == "DATE" else value.time()
            return f"{kind} '{value}'"

        return process


class TIME(_TypedLiteral, sqltypes.Time):
    sql_type = "TIME"


class DATE(_TypedLiteral, sqltypes.Date):
    sql_type = "DATE"


class DATETIME(_TypedLiteral, sqltypes.DateTime):
    sql_type = "TIMESTAMP"


class LanceSQLTypeCompiler(compiler.GenericTypeCompiler):
    """SQLAlchemy types in lancesql's (DuckDB's) words."""

    def visit_VECTOR(self, type_: VECTOR, **kw: Any) -> str:
        return f"{type_.item_type}[{type_.dim}]"

    def visit_BLOB(self, type_: Any, **kw: Any) -> str:
        return "BLOB"

    def visit_large_binary(self, type_: Any, **kw: Any) -> str:
        return "BLOB"

    def visit_BINARY(self, type_: Any, **kw: Any) -> str:
        return "BLOB"

    def visit_VARBINARY(self, type_: Any, **kw: Any) -> str:
        return "BLOB"

    def visit_VARCHAR(self, type_: Any, **kw: Any) -> str:
        return "VARCHAR"  # Lance strings have no length limit

    def visit_CHAR(self, type_: Any, **kw: Any) -> str:
        return "VARCHAR"

    def visit_NVARCHAR(self, type_: Any, **kw: Any) -> str:
        return "VARCHAR"

    def visit_NCHAR(self, type_: Any, **kw: Any) -> str:
        return "VARCHAR"

    def visit_TEXT(self, type_: Any, **kw: Any) -> str:
        return "VARCHAR"

    def visit_CLOB(self, type_: Any, **kw: Any) -> str:
        return "VARCHAR"

    def visit_float(self, type_: Any, **kw: Any) -> str:
        # SQLAlchemy's Float is a Python float: keep all of it (DuckDB's FLOAT is 4 bytes).
        return "DOUBLE"

    def visit_FLOAT(self, type_: Any, **kw: Any) -> str:
        return "DOUBLE" if (type_.precision or 53) > 24 else "FLOAT"

    def visit_REAL(self, type_: Any, **kw: Any) -> str:
        return "FLOAT"

    def visit_DOUBLE_PRECISION(self, type_: Any, **kw: Any) -> str:
        return "DOUBLE"

    def visit_NUMERIC(self, type_: Any, **kw: Any) -> str:
        if type_.precision is None:
            return "DECIMAL(18,3)"
        return f"DECIMAL({type_.precision},{type_.scale or 0})"

    visit_DECIMAL = visit_NUMERIC

    def visit_DATETIME(self, type_: Any, **kw: Any) -> str:
        return "TIMESTAMP"

    def visit_TIMESTAMP(self, type_: Any, **kw: Any) -> str:
        return "TIMESTAMPTZ" if getattr(type_, "timezone", False) else "TIMESTAMP"

    def visit_datetime(self, type_: Any, **kw: Any) -> str:
        return self.visit_TIMESTAMP(type_, **kw)

    def visit_ARRAY(self, type_: Any, **kw: Any) -> str:
        return f"{self.process(type_.item_type, **kw)}[]"

    def visit_uuid(self, type_: Any, **kw: Any) -> str:
        return "VARCHAR"

    def visit_JSON(self, type_: Any, **kw: Any) -> str:
        return "VARCHAR"


class LanceSQLDDLCompiler(compiler.DDLCompiler):
    """CREATE TABLE without constraints: Lance stores columns, not keys or checks."""

    def visit_primary_key_constraint(self, constraint: Any, **kw: Any) -> str:
        return ""

    def visit_foreign_key_constraint(self, constraint: Any, **kw: Any) -> str:
        return ""

    def visit_unique_constraint(self, constraint: Any, **kw: Any) -> str:
        return ""

    def visit_check_constraint(self, constraint: Any, **kw: Any) -> str:
        return ""

    def get_column_specification(self, column: Any, **kwargs: Any) -> str:
        """``name TYPE [NOT NULL]``: Lance keeps a field's nullability and refuses NULLs
        in a NOT NULL column (a primary key's columns are NOT NULL, the key itself is not
        kept)."""
        type_sql = self.dialect.type_compiler_instance.process(column.type, type_expression=column)
        not_null = "" if column.nullable else " NOT NULL"
        return f"{self.preparer.format_column(column)} {type_sql}{not_null}"

    def visit_create_index(
        self, create: Any, include_schema: Any = False, include_table_schema: Any = True, **kw: Any
    ) -> str:
        index = create.element
        kind = index.dialect_options["lancesql"].get("using") or "BTREE"
        columns = ", ".join(self.preparer.format_column(c) for c in index.columns)
        table = self.preparer.format_table(index.table)
        return f"CREATE INDEX {self._prepared_index_name(index)} ON {table} USING {kind} ({columns})"


class LanceSQLCompiler(compiler.SQLCompiler):
    """Core statements in lancesql's SQL (DuckDB's dialect)."""

    def limit_clause(self, select: Any, **kw: Any) -> str:
        """``LIMIT n``, ``OFFSET m`` or both (SQLAlchemy's default writes ``LIMIT -1``
        for an offset alone, which DuckDB refuses)."""
        text = ""
        if select._limit_clause is not None:
            text += "\n LIMIT " + self.process(select._limit_clause, **kw)
        if select._offset_clause is not None:
            text += "\n OFFSET " + self.process(select._offset_clause, **kw)
        return text


    def visit_bitwise_xor_op_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        """``xor(a, b)``: DuckDB's ``^`` raises to a power."""
        return f"xor({self.process(binary.left, **kw)}, {self.process(binary.right, **kw)})"

    def visit_regexp_match_op_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        """``regexp_matches(s, pattern[, flags])``: a match anywhere in ``s``."""
        args = [self.process(binary.left, **kw), self.process(binary.right, **kw)]
        flags = binary.modifiers["flags"]
        if flags is not None:
            args.append(self.render_literal_value(flags, sqltypes.STRINGTYPE))
        return f"regexp_matches({', '.join(args)})"

    def visit_not_regexp_match_op_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        return f"NOT {self.visit_regexp_match_op_binary(binary, operator, **kw)}"

    def visit_regexp_replace_op_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        """``regexp_replace(s, pattern, replacement, 'g')``: every match replaced, as
        SQLAlchemy's ``regexp_replace`` means on every backend (DuckDB's default is the first)."""
        flags = "g" + (binary.modifiers["flags"] or "").replace("g", "")
        return (
            f"regexp_replace({self.process(binary.left, **kw)}, {self.process(binary.right, **kw)}, "
            f"{self.render_literal_value(flags, sqltypes.STRINGTYPE)})"
        )


class LanceSQLIdentifierPreparer(compiler.IdentifierPreparer):
    pass


def connect_args(url: URL) -> tuple[list[Any], dict[str, Any]]:
    """``lancesql.connect()``'s arguments for ``url``.

    >>> from sqlalchemy.engine import make_url
    >>> connect_args(make_url("lancesql:///data?engine=datafusion&vector_nprobes=32"))[1]
    {'root': 'data', 'engine': 'datafusion', 'storage_options': None, 'settings': {'vector_nprobes': '32'}}
    >>> url = make_url("lancesql:///?uri=s3://bucket/db&storage.aws_region=eu-west-1")
    >>> connect_args(url)[1]["root"], connect_args(url)[1]["storage_options"]
    ('s3://bucket/db', {'aws_region': 'eu-west-1'})
    """
    query = {k: v if isinstance(v, str) else v[-1] for k, v in url.query.items()}
    uri = query.pop("uri", None)
    if uri and url.database:
        raise ProgrammingError(
            f"give the root once: either a path (lancesql:///{url.database}) or ?uri=..., not both"
        )
    if url.host or url.username or url.port:
        raise ProgrammingError(
            "lancesql URLs have no host: write lancesql:///relative/path, lancesql:////absolute/path "
            "or lancesql:///?uri=s3://bucket/db"
        )
    root = uri or url.database or "."
    engine = query.pop("engine", "duckdb")
    storage = {k.removeprefix("storage."): query.pop(k) for k in list(query) if k.startswith("storage.")}
    settings = {k.removeprefix("lancesql."): v for k, v in query.items()}
    return [], {"root": root, "engine": engine, "storage_options": storage or None, "settings": settings}


def sqlalchemy_type(kind: pa.DataType) -> sqltypes.TypeEngine[Any]:
    """The SQLAlchemy type reflection reports for a column of Arrow type ``kind``.

    >>> sqlalchemy_type(pa.list_(pa.float32(), 512)), sqlalchemy_type(pa.large_binary())
    (VECTOR(512), BLOB())
    """
    if pa.types.is_fixed_size_list(kind) and (
        pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)
    ):
        item = "DOUBLE" if kind.value_type == pa.float64() else "FLOAT"
        if not pa.types.is_floating(kind.value_type):
            item = "INTEGER" if kind.value_type.bit_width <= 32 else "BIGINT"
        return VECTOR(kind.list_size, item)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return sqltypes.ARRAY(sqlalchemy_type(kind.value_type))
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        return BLOB()
    if pa.types.is_boolean(kind):
        return sqltypes.BOOLEAN()
    if pa.types.is_integer(kind):
        if kind.bit_width <= 16:
            return sqltypes.SMALLINT()
        return sqltypes.INTEGER() if kind.bit_width == 32 and pa.types.is_signed_integer(kind) else (
            sqltypes.BIGINT()
        )
    if pa.types.is_float32(kind) or pa.types.is_float16(kind):
        return sqltypes.REAL()
    if pa.types.is_float64(kind):
        return sqltypes.DOUBLE()
    if pa.types.is_decimal(kind):
        return sqltypes.DECIMAL(kind.precision, kind.scale)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return sqltypes.VARCHAR()
    if pa.types.is_date(kind):
        return sqltypes.DATE()
    if pa.types.is_timestamp(kind):
        return sqltypes.TIMESTAMP(timezone=kind.tz is not None)
    if pa.types.is_time(kind):
        return sqltypes.TIME()
    if pa.types.is_duration(kind):
        return sqltypes.Interval()
    return sqltypes.NullType()


class LanceSQLDialect(default.DefaultDialect):
    """SQLAlchemy's view of lancesql: DB-API ``qmark``, autocommit, no schemas, no
    constraints, Lance indices as indexes."""

    name = "lancesql"
    driver = "lancesql"
    default_paramstyle = "qmark"
    supports_statement_cache = True
    statement_compiler = LanceSQLCompiler
    ddl_compiler = LanceSQLDDLCompiler
    type_compiler_cls = LanceSQLTypeCompiler
    preparer = LanceSQLIdentifierPreparer
    supports_native_boolean = True
    supports_native_decimal = True
    supports_sane_rowcount = True
    supports_sane_multi_rowcount = True
    supports_multivalues_insert = True
    supports_default_values = False
    supports_default_metavalue = False
    supports_empty_insert = False
    supports_alter = False
    supports_sequences = False
    supports_comments = False
    supports_is_distinct_from = True
    div_is_floordiv = False  # DuckDB's / divides integers exactly
    postfetch_lastrowid = False
    implicit_returning = False
    insert_returning = False
    update_returning = False
    delete_returning = False
    supports_native_enum = False
    supports_simple_order_by_label = True
    supports_schemas = False
    requires_name_normalize = False
    construct_arguments = [(Index, {"using": None})]  # noqa: RUF012 (read by SQLAlchemy)
    colspecs = {  # noqa: RUF012
        sqltypes.LargeBinary: BLOB,
        sqltypes.Numeric: NUMERIC,
        sqltypes.Time: TIME,
        sqltypes.Date: DATE,
        sqltypes.DateTime: DATETIME,
    }
    ischema_names = {  # noqa: RUF012
        "BLOB": BLOB,
    }

    @classmethod
    def import_dbapi(cls) -> types.ModuleType:
        return lancesql

    def create_connect_args(self, url: URL) -> tuple[list[Any], dict[str, Any]]:
        return connect_args(url)

    # -- no transactions: every statement commits its own Lance version --------------
    def do_rollback(self, dbapi_connection: Any) -> None:
        """Nothing to roll back: each statement already committed (or left nothing)."""

    def do_commit(self, dbapi_connection: Any) -> None:
        dbapi_connection.commit()

    def get_isolation_level(self, dbapi_connection: Any) -> Any:
        return "AUTOCOMMIT"

    def get_isolation_level_values(self, dbapi_connection: Any) -> Any:
        return ["AUTOCOMMIT"]

    def set_isolation_level(self, dbapi_connection: Any, level: str) -> None:
        if level != "AUTOCOMMIT":
            raise lancesql.NotSupportedError(
                f"isolation level {level!r}: lancesql has no transactions, every statement "
                "commits its own Lance version (AUTOCOMMIT)"
            )

    def _get_server_version_info(self, connection: Any) -> tuple[int, ...]:
        return tuple(int(p) for p in lancesql.__version__.split(".")[:3])

    def _get_default_schema_name(self, connection: Any) -> str:
        return "main"

    # -- reflection --------------------------------------------------------------------
    def _rows(self, connection: Any, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in connection.exec_driver_sql(sql).fetchall()]

    @reflection.cache
    def get_schema_names(self, connection: Any, **kw: Any) -> list[str]:
        return ["main"]

    @reflection.cache
    def _kinds(self, connection: Any, **kw: Any) -> dict[str, str]:
        """Each name SHOW TABLES lists and its kind: ``table``, ``view`` (stored under the
        root) or ``temporary view`` (this connection's)."""
        return {r[0]: r[1] for r in self._rows(connection, "SHOW TABLES")}

    def _names(self, connection: Any, kind: str, **kw: Any) -> list[str]:
        return sorted(name for name, k in self._kinds(connection, **kw).items() if k == kind)

    def get_table_names(self, connection: Any, schema: str | None = None, **kw: Any) -> list[str]:
        return self._names(connection, "table", **kw)

    def get_view_names(self, connection: Any, schema: str | None = None, **kw: Any) -> list[str]:
        return self._names(connection, "view", **kw)

    def get_temp_view_names(self, connection: Any, schema: str | None = None, **kw: Any) -> list[str]:
        return self._names(connection, "temporary view", **kw)

    def has_table(self, connection: Any, table_name: str, schema: str | None = None, **kw: Any) -> bool:
        self._ensure_has_table_connection(connection)
        return table_name in self._kinds(connection, **kw)

    @reflection.cache
    def get_columns(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        if not self.has_table(connection, table_name, schema, **kw):

            raise NoSuchTableError(table_name)
        quoted = self.identifier_preparer.quote(table_name)
        cursor = connection.exec_driver_sql(f"SELECT * FROM {quoted} LIMIT 0").cursor
        # The engine's description says every column may be NULL; DESCRIBE reads Lance's schema.
        nullable = {name: null == "YES" for name, _, null in self._rows(connection, f"DESCRIBE {quoted}")}
        return [
            {
                "name": name,
                "type": sqlalchemy_type(code.arrow_type),
                "nullable": nullable.get(name, True),
                "default": None,
            }
            for name, code, *_ in cursor.description
        ]

    def get_pk_constraint(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        return {"constrained_columns": [], "name": None}

    def get_foreign_keys(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        return []

    def get_unique_constraints(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        return []

    def get_check_constraints(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        return []

    def get_table_comment(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        return {"text": None}

    @reflection.cache
    def get_indexes(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        if table_name not in self.get_table_names(connection, schema):
            return []
        quoted = self.identifier_preparer.quote(table_name)
        rows = self._rows(connection, f"SHOW INDEXES FROM {quoted}")
        return [
            {
                "name": name,
                "column_names": [c.strip() for c in (columns or "").split(",") if c.strip()],
                "unique": False,
                "dialect_options": {"lancesql_using": (kind or "").upper()},
            }
            for name, kind, columns, *_ in rows
        ]

    @reflection.cache
    def get_view_definition(
        self, connection: Any, view_name: str, schema: str | None = None, **kw: Any
    ) -> str:
        """The view's query as lancesql stored it (DuckDB's SQL), TEMP views first as
        lancesql resolves them."""
        con = connection.connection.dbapi_connection
        definition = con.temp_views.get(view_name) or views.stored(con.catalog).get(view_name)
        if definition is None:
            raise NoSuchTableError(view_name)
        return str(definition)
