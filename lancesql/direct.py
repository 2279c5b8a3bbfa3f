"""Queries answered without the engine: picking columns of one table function's result.

``SELECT id, label, _distance FROM vector_search(...)`` is the commonest search query,
and its result is the search's own Arrow table with some columns picked. Registering
that table on the engine, generating SQL and running it costs a few milliseconds, as
much as the search itself on a small index; so a query that only names columns (or
``*``) of one table function's in-memory result is answered by selecting them from it.
Anything else (a WHERE, an expression, ORDER BY, a join) goes to the engine as usual.
Only column types that the engines return unchanged qualify, so the result is the
same either way.
"""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from lancesql.rewrite.bind_table_functions import META_KEY
from udfs.registry import Source

#: Clauses that make a select more than a projection.
_CLAUSES = (
    "where",
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


def picked_columns(tree: exp.Expression) -> tuple[exp.Table, list[tuple[str, str]] | None] | None:
    """(placeholder, [(column, output name)] or None for ``*``) when ``tree`` only picks
    columns of one table function's result."""
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
            return table, None
        column, name = projection, projection.alias_or_name
        if isinstance(projection, exp.Alias):
            column = projection.this
        if not isinstance(column, exp.Column) or not isinstance(column.this, exp.Identifier):
            return None
        if column.args.get("db") or column.table not in ("", alias):
            return None
        picked.append((column.name, name))
    return table, picked


def project(source: Source, picked: list[tuple[str, str]] | None) -> pa.Table | None:
    """The picked columns of ``source``, or None when the engine must run the query."""
    if not isinstance(source, pa.Table):
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
