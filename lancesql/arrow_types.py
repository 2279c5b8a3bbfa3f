"""SQL types as users write them (DuckDB's spelling) to the Arrow types Lance stores.

``CREATE TABLE t (emb FLOAT[512], img BLOB)``, ``ALTER COLUMN a TYPE BIGINT`` and
``ADD COLUMN c DOUBLE AS (...)`` all name types in SQL; Lance stores Arrow. Fixed-size
arrays become ``fixed_size_list`` (what vector indices need) and BLOB becomes
``large_binary`` (what Lance and the public ``*.lance`` datasets use for image bytes).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from sqlglot import exp

from lancesql.errors import NotSupportedError

T = exp.DataType.Type

_SIMPLE: dict[Any, pa.DataType] = {
    T.BOOLEAN: pa.bool_(),
    T.TINYINT: pa.int8(),
    T.SMALLINT: pa.int16(),
    T.INT: pa.int32(),
    T.BIGINT: pa.int64(),
    T.UTINYINT: pa.uint8(),
    T.USMALLINT: pa.uint16(),
    T.UINT: pa.uint32(),
    T.UBIGINT: pa.uint64(),
    T.FLOAT: pa.float32(),
    T.DOUBLE: pa.float64(),
    T.TEXT: pa.string(),
    T.VARCHAR: pa.string(),
    T.CHAR: pa.string(),
    T.NVARCHAR: pa.string(),
    T.BLOB: pa.large_binary(),
    T.VARBINARY: pa.large_binary(),
    T.BINARY: pa.large_binary(),
    T.DATE: pa.date32(),
    # DuckDB's TIMESTAMP and DATETIME, which sqlglot reads as TIMESTAMPNTZ: no zone
    T.TIMESTAMP: pa.timestamp("us"),
    T.TIMESTAMPNTZ: pa.timestamp("us"),
    T.DATETIME: pa.timestamp("us"),
    T.TIMESTAMP_S: pa.timestamp("s"),
    T.TIMESTAMP_MS: pa.timestamp("ms"),
    T.TIMESTAMP_NS: pa.timestamp("ns"),
    T.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
    T.TIMESTAMPLTZ: pa.timestamp("us", tz="UTC"),
    T.TIME: pa.time64("us"),
}


def arrow_type(dtype: exp.DataType) -> pa.DataType:
    """The Arrow type for a SQL type.

    >>> import sqlglot
    >>> def t(sql): return arrow_type(exp.DataType.build(sql, dialect="duckdb"))
    >>> t("FLOAT[512]"), t("BLOB")
    (FixedSizeListType(fixed_size_list<item: float>[512]), DataType(large_binary))
    >>> t("BIGINT"), t("VARCHAR[]")
    (DataType(int64), ListType(list<item: string>))
    >>> [str(t(s)) for s in ("TIMESTAMP", "DATETIME", "TIMESTAMPTZ", "TIME", "DECIMAL(15,2)")]
    ['timestamp[us]', 'timestamp[us]', 'timestamp[us, tz=UTC]', 'time64[us]', 'decimal128(15, 2)']
    """
    kind = dtype.this
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if kind == T.DECIMAL:
        params = [int(p.name) for p in dtype.expressions]
        precision, scale = (params + [18, 3][len(params) :])[:2]
        return pa.decimal128(precision, scale)
    if kind in (T.ARRAY, T.LIST) and dtype.expressions:
        item = arrow_type(dtype.expressions[0])
        size = dtype.args.get("values")
        if size:
            return pa.list_(item, int(size[0].name))
        return pa.list_(item)
    raise NotSupportedError(
        f"type {dtype.sql(dialect='duckdb')} is not supported for Lance columns; use one of "
        "BOOLEAN, TINYINT..BIGINT, FLOAT, DOUBLE, DECIMAL(p,s), VARCHAR, BLOB, DATE, TIME, "
        "TIMESTAMP, TIMESTAMPTZ, "
        "TYPE[n] (fixed-size array) or TYPE[] (list)"
    )


#: Names of the UTC zone that engines give (DuckDB's session zone is often ``Etc/UTC``).
_UTC_NAMES = {"Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu", "+00:00"}


#: Arrow types both engines CAST to by these SQL names.
_SQL_NAMES = {
    pa.bool_(): "BOOLEAN",
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INT",
    pa.int64(): "BIGINT",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
    pa.string(): "VARCHAR",
    pa.date32(): "DATE",
}


def sql_type(dtype: pa.DataType) -> exp.DataType | None:
    """The SQL type both engines CAST to for an Arrow column type, or None.

    >>> sql_type(pa.decimal128(15, 2)).sql("duckdb"), sql_type(pa.int8()).sql("duckdb"), sql_type(pa.binary())
    ('DECIMAL(15, 2)', 'TINYINT', None)
    """
    if pa.types.is_decimal128(dtype):
        return exp.DataType.build(f"DECIMAL({dtype.precision}, {dtype.scale})", dialect="duckdb")
    name = _SQL_NAMES.get(dtype)
    return exp.DataType.build(name, dialect="duckdb") if name else None


def storage_type(dtype: pa.DataType) -> pa.DataType:
    """The type lancesql stores for an engine's output type: view and small binary
    types become the plain types Lance and the public datasets use, list items are
    named ``item``, and UTC is called ``UTC`` whatever the engine calls it (so that a
    table written through the engine and one read by Lance directly agree). Each is the
    same values under another name of their type.

    >>> storage_type(pa.binary()), storage_type(pa.string_view())
    (DataType(large_binary), DataType(string))
    >>> storage_type(pa.list_(pa.field("", pa.float32()), 2))
    FixedSizeListType(fixed_size_list<item: float>[2])
    >>> storage_type(pa.timestamp("us", "Etc/UTC")), storage_type(pa.timestamp("us", "Europe/Paris"))
    (TimestampType(timestamp[us, tz=UTC]), TimestampType(timestamp[us, tz=Europe/Paris]))
    """
    if pa.types.is_timestamp(dtype) and dtype.tz in _UTC_NAMES:
        return pa.timestamp(dtype.unit, "UTC")
    if pa.types.is_binary(dtype) or pa.types.is_binary_view(dtype):
        return pa.large_binary()
    if pa.types.is_string_view(dtype):
        return pa.string()
    if pa.types.is_fixed_size_list(dtype):
        # DuckDB names the item field "" where Arrow and Lance say "item".
        return pa.list_(storage_type(dtype.value_type), dtype.list_size)
    if pa.types.is_list(dtype) or pa.types.is_list_view(dtype):
        return pa.list_(storage_type(dtype.value_type))
    if pa.types.is_large_list(dtype):
        return pa.large_list(storage_type(dtype.value_type))
    return dtype


def storage_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with each top-level field in its :func:`storage_type`."""
    return pa.schema([f.with_type(storage_type(f.type)) for f in schema], metadata=schema.metadata)
