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

Anything else (an expression, ORDER BY, LIMIT, grouping, a join, a WHERE on a search
result) goes to the engine as usual. Only column types that the engines return
unchanged qualify, and column names must match exactly, so the result is the same
either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lance
import pyarrow as pa
from sqlglot import exp

from lancesql import lance_sql
from lancesql.errors import Error
from lancesql.rewrite.bind_table_functions import META_KEY
from udfs.registry import Source

#: Clauses that make a select more than a projection (and a filter).
_CLAUSES = (
    "group",
    "having",
    "order",
    "limit",
    "offset",
    "distinct",
    "joins",
    "laterals",
    "qualify",
    "with_",
    "with",
    "windows",
    "into",
    "sample",
)


Picked = tuple[exp.Table, "list[tuple[str, str]] | None", "exp.Expression | None"]


def picked_columns(tree: exp.Expression) -> Picked | None:
    """(placeholder, [(column, output name)] or None for ``*``, the WHERE condition or
    None) when ``tree`` only picks columns of one source, perhaps filtered."""
    if not isinstance(tree, exp.Select) or any(tree.args.get(c) for c in _CLAUSES):
        return None
    from_ = tree.args.get("from_") or tree.args.get("from")
    if from_ is None or not isinstance(from_.this, exp.Table):
        return None
    table = from_.this
    if META_KEY not in table.meta or table.args.get("joins"):
        return None
    alias = table.alias_or_name
    picked: list[tuple[str, str]] = []
    for projection in tree.expressions:
        if isinstance(projection, exp.Star) and not any(projection.args.values()):
            if len(tree.expressions) != 1:
                return None
            return table, None, _condition(tree)
        column, name = projection, projection.alias_or_name
        if isinstance(projection, exp.Alias):
            column = projection.this
        if not isinstance(column, exp.Column) or not isinstance(column.this, exp.Identifier):
            return None
        if column.args.get("db") or column.table not in ("", alias):
            return None
        picked.append((column.name, name))
    return table, picked, _condition(tree)


def _condition(tree: exp.Expression) -> exp.Expression | None:
    where = tree.args.get("where")
    return where.this if where is not None else None


def project(
    source: Source,
    picked: list[tuple[str, str]] | None,
    where: exp.Expression | None = None,
    value_of: Callable[[exp.Placeholder], Any] | None = None,
    alias: str = "",
) -> pa.Table | None:
    """The picked columns of ``source`` (of the rows ``where`` keeps), or None when the
    engine must run the query."""
    if isinstance(source, lance.LanceDataset):
        return _scan(source, picked, where, value_of, alias)
    if not isinstance(source, pa.Table) or where is not None:
        return None
    names = source.column_names
    if picked is None:
        picked = [(n, n) for n in names]
    outputs = [name for _, name in picked]
    if len(set(outputs)) != len(outputs) or len(set(names)) != len(names):
        return None
    for column, _ in picked:
        if column not in names or not _stable(source.schema.field(column).type):
            return None
    table = source.select([column for column, _ in picked])
    return table.rename_columns(outputs)


def _scan(
    ds: lance.LanceDataset,
    picked: list[tuple[str, str]] | None,
    where: exp.Expression | None,
    value_of: Callable[[exp.Placeholder], Any] | None,
    alias: str,
) -> pa.Table | None:
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
        names = {c.name for c in where.find_all(exp.Column)}
        if not names <= set(schema.names):
            return None  # the engine says which name is unknown (or resolves its case)
        try:
            condition = lance_sql.render(where, value_of)
        except Error:
            return None
    try:
        table = ds.to_table(columns=columns, filter=condition)
    except (ValueError, OSError, RuntimeError):
        return None  # a filter Lance reads otherwise: the engine decides
    return table.rename_columns(outputs)


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
