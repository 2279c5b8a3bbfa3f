"""Queries answered without the engine: picking columns of one source.

``SELECT id, label, _distance FROM vector_search(...)`` is the commonest search query,
and its result is the search's own Arrow table with some columns picked. Registering
that table on the engine, generating SQL and running it costs a few milliseconds, as
much as the search itself on a small index; so a query that only names columns (or
``*``) of one table function's in-memory result is answered by selecting them from it.

The same holds for a plain read of one Lance table, ``SELECT id, label FROM t WHERE
label = 3``: Lance reads those columns of the rows its filter keeps (through the scalar
index) and nothing is left for an engine to do but copy them; handing it the stream
costs the engine's own per-query overhead, as much again as the read. So such a query
is answered by Lance's scanner directly, when its WHERE is one Lance evaluates exactly
as SQL does (see :mod:`lancesql.lance_sql`).

A LIMIT (and OFFSET) with no ORDER BY asks for any rows, so it is handed to the read
as well: Lance stops at once, where the engine costs more than the read itself. Anything
else (an expression, ORDER BY, grouping, a join, a WHERE on a search result) goes to
the engine as usual. Only column types that the engines return
unchanged qualify, and column names must match exactly, so the result is the same
either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lance
import pyarrow as pa
from sqlglot import exp

from lancesql import lance_sql
from lancesql.errors import Error
from lancesql.fast_path import answers_alone
from lancesql.rewrite.bind_table_functions import META_KEY
from lancesql.udfs.registry import Source


@dataclass(frozen=True)
class Picked:
    """What a query that only picks columns of one source asks of it."""

    table: exp.Table
    #: [(column, output name)], or None for ``*``.
    columns: list[tuple[str, str]] | None
    where: exp.Expression | None
    limit: int | None = None
    offset: int = 0


def picked_columns(tree: exp.Expression) -> Picked | None:
    """What ``tree`` picks, when it only picks columns of one source, perhaps filtered
    and limited."""
    if not isinstance(tree, exp.Select) or not answers_alone(tree, accepts={"limit", "offset"}):
        return None
    limit = _integer(tree.args.get("limit"))
    offset = _integer(tree.args.get("offset"))
    if (tree.args.get("limit") and limit is None) or (tree.args.get("offset") and offset is None):
        return None
    table = only_source(tree)
    if table is None:
        return None
    alias = table.alias_or_name
    picked: list[tuple[str, str]] = []
    for projection in tree.expressions:
        if isinstance(projection, exp.Star) and not any(projection.args.values()):
            if len(tree.expressions) != 1:
                return None
            return Picked(table, None, condition_of(tree), limit, offset or 0)
        column = column_name(projection.this if isinstance(projection, exp.Alias) else projection, alias)
        if column is None:
            return None
        picked.append((column, projection.alias_or_name))
    return Picked(table, picked, condition_of(tree), limit, offset or 0)


def only_source(select: exp.Select) -> exp.Table | None:
    """The one table function placeholder ``select`` reads, when it reads one and no join."""
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is None or not isinstance(from_.this, exp.Table):
        return None
    table = from_.this
    if META_KEY not in table.meta or table.args.get("joins"):
        return None
    return table


def column_name(node: exp.Expression, alias: str) -> str | None:
    """The name of ``node`` when it is a plain column of the source aliased ``alias``."""
    if not isinstance(node, exp.Column) or not isinstance(node.this, exp.Identifier):
        return None
    if node.args.get("db") or node.table not in ("", alias):
        return None
    return node.name


def _integer(clause: exp.Expression | None) -> int | None:
    """The count of a ``LIMIT n`` or ``OFFSET n`` with a literal n, else None."""
    if clause is None:
        return None
    value = clause.args.get("expression")
    if isinstance(value, exp.Literal) and value.is_int and int(value.name) >= 0:
        return int(value.name)
    return None


def condition_of(tree: exp.Expression) -> exp.Expression | None:
    """The condition of ``tree``'s WHERE, or None."""
    where = tree.args.get("where")
    return where.this if where is not None else None


def project(
    source: Source,
    query: Picked,
    value_of: Callable[[exp.Placeholder], Any] | None = None,
) -> pa.Table | None:
    """The picked columns of ``source`` (of the rows the query's WHERE keeps, within its
    LIMIT), or None when the engine must run the query."""
    picked, where = query.columns, query.where
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
        table = table.slice(query.offset, query.limit)
    return table.select([column for column, _ in picked]).rename_columns(outputs)


def _pushed(table: exp.Table) -> bool:
    """Whether ``table`` is a ``lance_scan`` that the push_limit rule gave a LIMIT."""
    function, _, kwargs = table.meta[META_KEY]
    return bool(function == "lance_scan" and "limit" in kwargs)


def _scan(
    ds: lance.LanceDataset,
    query: Picked,
    value_of: Callable[[exp.Placeholder], Any] | None,
) -> pa.Table | None:
    picked, where, alias = query.columns, query.where, query.table.alias_or_name
    schema = ds.schema
    if picked is None:
        picked = [(n, n) for n in schema.names]
    outputs = [name for _, name in picked]
    columns = [column for column, _ in picked]
    if len(set(outputs)) != len(outputs) or len(set(columns)) != len(columns):
        return None
    if any(c not in schema.names or not _stable(schema.field(c).type) for c in columns):
        return None
    condition = None
    if where is not None:
        if value_of is None or not lance_sql.is_lance_predicate(where, alias):
            return None
        condition = lance_filter(where, schema, value_of)
        if condition is None:
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
