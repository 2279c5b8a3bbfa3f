"""Queries answered without the engine: picking columns of one source.

Design notes: ``docs/ARCHITECTURE.md``, "The direct read".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lance
import pyarrow as pa
from sqlglot import exp

from lancesql import lance_sql
from lancesql.errors import Error
from lancesql.fast_path import FastPath
from lancesql.rewrite.bind_table_functions import META_KEY
from lancesql.udfs.registry import Source


def lance_filter_of(
    fast: FastPath, schema: pa.Schema, value_of: Callable[[exp.Placeholder], Any] | None
) -> tuple[bool, str | None]:
    """Whether Lance can take the select's WHERE over a dataset of ``schema``, and its
    filter text (None without a WHERE)."""
    if fast.where is None:
        return True, None
    if value_of is None or not fast.lance_where:
        return False, None
    text = lance_filter(fast.where, schema, value_of)
    return text is not None, text


def project(
    source: Source,
    query: FastPath,
    value_of: Callable[[exp.Placeholder], Any] | None = None,
) -> pa.Table | None:
    """The picked columns of ``source`` (of the rows the query's WHERE keeps, within its
    LIMIT), or None when the engine must run the query (``query.reads`` must hold)."""
    picked, where = (list(query.columns) if query.columns is not None else None), query.where
    if isinstance(source, lance.LanceDataset):
        return _scan(source, query, value_of)
    pushed = isinstance(source, pa.RecordBatchReader) and _pushed(query.table)
    if pushed:
        where = None  # lance_scan already read the rows it keeps, up to LIMIT + OFFSET
    elif not isinstance(source, pa.Table) or where is not None:
        return None
    schema = source.schema
    names = schema.names
    if picked is None:
        picked = [(n, n) for n in names]
    outputs = [name for _, name in picked]
    if len(set(outputs)) != len(outputs) or len(set(names)) != len(names):
        return None
    for column, _ in picked:
        if column not in names or not _stable(schema.field(column).type):
            return None
    # only now, when this path answers: a reader read here is not the engine's to read
    table = source.read_all() if isinstance(source, pa.RecordBatchReader) else source
    if query.limit is not None or query.offset:
        table = table.slice(query.offset or 0, query.limit)
    return table.select([column for column, _ in picked]).rename_columns(outputs)


def _pushed(table: exp.Table) -> bool:
    """Whether ``table`` is a ``lance_scan`` that the push_limit rule gave a LIMIT."""
    function, _, kwargs = table.meta[META_KEY]
    return bool(function == "lance_scan" and "limit" in kwargs)


def _scan(
    ds: lance.LanceDataset,
    query: FastPath,
    value_of: Callable[[exp.Placeholder], Any] | None,
) -> pa.Table | None:
    picked = list(query.columns) if query.columns is not None else None
    schema = ds.schema
    if picked is None:
        picked = [(n, n) for n in schema.names]
    outputs = [name for _, name in picked]
    columns = [column for column, _ in picked]
    if len(set(outputs)) != len(outputs) or len(set(columns)) != len(columns):
        return None
    if any(c not in schema.names or not _stable(schema.field(c).type) for c in columns):
        return None
    lance_takes, condition = lance_filter_of(query, schema, value_of)
    if not lance_takes:
        return None
    try:
        table = ds.to_table(columns=columns, filter=condition, limit=query.limit, offset=query.offset or None)
    except (ValueError, OSError, RuntimeError):
        return None  # a filter Lance reads otherwise: the engine decides
    return table.rename_columns(outputs)


def lance_filter(
    where: exp.Expression, schema: pa.Schema, value_of: Callable[[exp.Placeholder], Any]
) -> str | None:
    """A WHERE that :func:`lancesql.lance_sql.is_lance_predicate` accepted, as the
    filter text Lance reads over a dataset of ``schema``; None when the engine must
    evaluate it (a name it resolves or rejects itself, a value Lance cannot be given)."""
    if not {c.name for c in where.find_all(exp.Column)} <= set(schema.names):
        return None
    try:
        text = lance_sql.render(where, value_of)
    except Error:
        return None
    return text if lance_sql.alike(text, schema) else None


def _stable(kind: pa.DataType) -> bool:
    """Types both engines hand back as they got them."""
    if pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind):
        return _stable(kind.value_type)
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_date32(kind)
    )
