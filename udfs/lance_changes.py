"""``lance_changes('t', from, to)``: the rows inserted, updated and deleted between two
versions, as ``_change`` (``'insert' | 'update' | 'delete'``) and the row's columns.

Inserted and updated rows carry their values at ``to``; deleted rows their values at
``from``. ``from`` and ``to`` are versions as anywhere else (a number, a tag, a
timestamp); ``to`` is the latest when omitted. A row inserted and deleted within the
range is not reported; a row inserted and then updated is an insert.

Design notes: ``docs/ARCHITECTURE.md``, "lance_changes: three ways to compute changes".
"""

from __future__ import annotations

import warnings
from typing import Any

import lance
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lancesql.catalog import Catalog, TableRef, VersionRef
from lancesql.errors import ProgrammingError
from lancesql.udfs.registry import Session, table_function

#: The schema metadata key naming the way the changes were computed.
PATH_KEY = "lancesql.changes"

#: Columns Lance adds to delta results; not the row's own.
_LINEAGE = ("_rowid", "_rowaddr", "_row_created_at_version", "_row_last_updated_at_version")

#: Operations whose effect on rows Lance's delta reads from row lineage and deletions.
_LINEAGE_SAFE = frozenset(
    {
        "Append",
        "Delete",
        "Update",
        "Merge",
        "Overwrite",
        "CreateIndex",
        "Project",
        "Rewrite",
        "UpdateConfig",
    }
)

_TAKE_CHUNK = 65_536


class ChangesWarning(UserWarning):
    """``lance_changes`` compared whole versions rather than following row lineage."""


@table_function("lance_changes")
def lance_changes(
    session: Session,
    uri: str,
    from_version: VersionRef = None,
    to_version: VersionRef = None,
    branch: str | None = None,
) -> pa.Table:
    """The rows changed between ``from_version`` and ``to_version`` (the latest when
    omitted), of ``branch`` when given."""
    if not isinstance(uri, str) or not uri:
        raise ProgrammingError("lance_changes() needs a table name or a dataset URI as its first argument")
    if from_version is None:
        raise ProgrammingError(
            "lance_changes() needs the version to compare from: "
            "lance_changes('t', 3) or lance_changes('t', 3, 8)"
        )
    catalog = session.catalog
    resolved = catalog.resolve_uri(uri, branch)
    old = catalog.open(TableRef(resolved, from_version))
    new = catalog.open(TableRef(resolved, to_version))
    if old.version > new.version:
        raise ProgrammingError(
            f"lance_changes(): version {old.version} is newer than {new.version}; "
            f"give the older version first: lance_changes('{uri}', {new.version}, {old.version})"
        )
    return changes(session, old, new)


def changes(session: Session, old: lance.LanceDataset, new: lance.LanceDataset) -> pa.Table:
    """The changes from ``old`` to ``new`` (two versions of one dataset), by the cheapest
    correct path."""
    schema = result_schema(new.schema)
    if not (old.has_stable_row_ids and new.has_stable_row_ids):
        table = _full_comparison(old, new)
        path = "full_comparison"
        _warn(
            session.catalog,
            new,
            "has no stable row ids, so lance_changes compared the two versions whole "
            "(an update shows as a delete and an insert); datasets lancesql writes have them",
        )
    elif _lineage_safe(new, old.version, new.version):
        table = _lineage(old, new, schema)
        path = "lineage"
    else:
        table = _row_id_comparison(old, new, schema)
        path = "row_ids"
        _warn(
            session.catalog,
            new,
            f"versions {old.version}..{new.version} hold a RESTORE or another operation row "
            "lineage does not follow, so lance_changes compared the row ids of both versions",
        )
    return table.replace_schema_metadata({**(table.schema.metadata or {}), PATH_KEY: path})


def result_schema(schema: pa.Schema) -> pa.Schema:
    """``_change`` then the table's columns, all nullable (a deleted row may lack a new column)."""
    fields = [pa.field("_change", pa.string(), nullable=False)]
    fields += [f.with_nullable(True) for f in schema if f.name not in _LINEAGE]
    return pa.schema(fields)


# -- lineage ---------------------------------------------------------------------------------
def _lineage_safe(ds: lance.LanceDataset, begin: int, end: int) -> bool:
    """Whether every commit in ``(begin, end]`` is one whose effect the delta follows."""
    if begin == end:
        return True
    try:
        transactions = ds.delta(begin_version=begin, end_version=end).list_transactions()
    except Exception:  # pylance 14 raises TypeError decoding some compactions
        return False  # cannot tell what happened: compare row ids instead
    if len(transactions) != end - begin or any(t is None for t in transactions):
        return False  # a transaction file is missing: cannot tell what happened
    for offset, transaction in enumerate(transactions):
        name = type(transaction.operation).__name__
        if name in _LINEAGE_SAFE:
            continue
        # Operations pylance does not name (reserving fragment ids before a compaction):
        # safe when they left every fragment as it was.
        version = begin + offset + 1
        if name != "BaseOperation" or not _same_fragments(ds, version - 1, version):
            return False
    return True


def _same_fragments(ds: lance.LanceDataset, a: int, b: int) -> bool:
    try:
        before = [f.metadata for f in ds.checkout_version(a).get_fragments()]
        after = [f.metadata for f in ds.checkout_version(b).get_fragments()]
    except (OSError, ValueError, RuntimeError):
        return False
    return before == after


def _lineage(old: lance.LanceDataset, new: lance.LanceDataset, schema: pa.Schema) -> pa.Table:
    if old.version == new.version:
        return schema.empty_table()
    # The delta reads rows from the handle it is called on: that must be ``new``.
    delta = new.delta(begin_version=old.version, end_version=new.version)
    inserted = delta.get_inserted_rows().read_all()
    updated = delta.get_updated_rows().read_all()
    deleted_ids = delta.get_deleted_row_ids().read_all().column("_rowid")
    present = pa.concat_arrays(
        [c.combine_chunks() for c in (inserted.column("_rowid"), updated.column("_rowid"))]
    ).cast(pa.uint64())
    if len(deleted_ids) and len(present):
        deleted_ids = deleted_ids.filter(pc.invert(pc.is_in(deleted_ids, value_set=present)))
    deleted = _take(old, deleted_ids, schema)
    return _stack(schema, [("insert", inserted), ("update", updated), ("delete", deleted)])


# -- row ids -----------------------------------------------------------------------------------
def _row_id_comparison(old: lance.LanceDataset, new: lance.LanceDataset, schema: pa.Schema) -> pa.Table:
    columns = ["_rowid", "_row_last_updated_at_version"]
    before = old.to_table(columns=columns)
    after = new.to_table(columns=columns)
    inserted = after.filter(pc.invert(pc.is_in(after["_rowid"], value_set=before["_rowid"])))["_rowid"]
    deleted = before.filter(pc.invert(pc.is_in(before["_rowid"], value_set=after["_rowid"])))["_rowid"]
    both = after.join(before, "_rowid", join_type="inner", right_suffix="_before")
    changed = both.filter(
        pc.not_equal(both["_row_last_updated_at_version"], both["_row_last_updated_at_version_before"])
    )["_rowid"]
    return _stack(
        schema,
        [
            ("insert", _take(new, inserted, schema)),
            ("update", _take(new, changed, schema)),
            ("delete", _take(old, deleted, schema)),
        ],
    )


def _take(ds: lance.LanceDataset, row_ids: Any, schema: pa.Schema) -> pa.Table:
    """Rows of ``ds`` by stable row id (ids ``ds`` does not hold are skipped), in the
    columns of ``schema`` that ``ds`` has."""
    ids = row_ids.combine_chunks() if isinstance(row_ids, pa.ChunkedArray) else pa.array(row_ids)
    names = [f.name for f in schema if f.name != "_change" and f.name in ds.schema.names]
    if len(ids) == 0:
        return pa.schema([ds.schema.field(n) for n in names]).empty_table()
    parts = [
        ds._take_rows(ids.slice(start, _TAKE_CHUNK).to_pylist(), columns=names)
        for start in range(0, len(ids), _TAKE_CHUNK)
    ]
    return pa.concat_tables(parts)


# -- full comparison -------------------------------------------------------------------------
def _full_comparison(old: lance.LanceDataset, new: lance.LanceDataset) -> pa.Table:
    """``EXCEPT ALL`` both ways, over the columns both versions share."""
    shared = [
        f.name for f in new.schema if f.name in old.schema.names and old.schema.field(f.name).type == f.type
    ]
    schema = pa.schema(
        [pa.field("_change", pa.string(), nullable=False)]
        + [new.schema.field(n).with_nullable(True) for n in shared]
    )
    if old.version == new.version or not shared:
        return schema.empty_table()
    before = old.to_table(columns=shared)
    after = new.to_table(columns=shared)
    inserted, deleted = _except_all(after, before), _except_all(before, after)
    return _stack(schema, [("insert", inserted), ("delete", deleted)])


def _except_all(left: pa.Table, right: pa.Table) -> pa.Table:
    """``left EXCEPT ALL right``: each row of ``left`` as many times as it occurs there
    more often than in ``right`` (NULLs equal, as in SQL's set operations).

    Rows are grouped by their values, both sides at once, each value made a key Arrow
    can group by (:func:`_groupable`); per group, one row of ``left`` is repeated.
    """
    if left.num_rows == 0:
        return left
    keys = [f"k{i}" for i in range(left.num_columns)]
    columns = {
        k: _groupable(pa.chunked_array([*left[i].chunks, *right[i].chunks], left.schema[i].type))
        for i, k in enumerate(keys)
    }
    index = pa.array(np.arange(left.num_rows + right.num_rows, dtype=np.int64))
    on_left = pa.array(np.arange(left.num_rows + right.num_rows) < left.num_rows)
    columns["l"] = pc.if_else(on_left, index, None)
    columns["r"] = pc.if_else(on_left, None, index)
    grouped = (
        pa.table(columns)
        .group_by(keys, use_threads=False)
        .aggregate([("l", "count"), ("l", "min"), ("r", "count")])
    )
    extra = np.clip(grouped["l_count"].to_numpy() - grouped["r_count"].to_numpy(), 0, None)
    first = grouped["l_min"].fill_null(0).to_numpy()
    return left.take(pa.array(np.repeat(first, extra), pa.int64()))


def _groupable(column: pa.ChunkedArray) -> pa.Array:
    """``column`` as values Arrow groups by, equal where the values are: nested values
    (vectors, lists, structs) as bytes, the rest as they are."""
    array = column.combine_chunks()
    kind = array.type
    if not pa.types.is_nested(kind):
        return array
    child = kind.value_type if pa.types.is_fixed_size_list(kind) else None
    if child is not None and (pa.types.is_integer(child) or pa.types.is_floating(child)):
        valid = array.is_valid()
        flat = array.filter(valid).flatten()
        if flat.null_count == 0:
            width = kind.list_size * child.bit_width // 8
            rows = np.zeros((len(array), kind.list_size), flat.type.to_pandas_dtype())
            rows[valid.to_numpy(zero_copy_only=False)] = flat.to_numpy().reshape(-1, kind.list_size)
            data = pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(width), len(array), [None, pa.py_buffer(rows.tobytes())]
            )
            return pc.if_else(valid, data, pa.scalar(None, pa.binary(width)))
    # Any other nested type: its Python value's repr, exact for numbers and bytes.
    return pa.array([None if v is None else repr(v) for v in array.to_pylist()], pa.string())


# -- shaping -----------------------------------------------------------------------------------
def _stack(schema: pa.Schema, parts: list[tuple[str, pa.Table]]) -> pa.Table:
    tables = []
    for change, table in parts:
        if table.num_rows:
            table = table.append_column("_change", pa.array([change] * table.num_rows, pa.string()))
            tables.append(_conform(table, schema))
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in ``schema``: its columns in order, cast where a type moved, NULL where
    missing."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            column = table.column(field.name)
            columns.append(column if column.type == field.type else column.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _warn(catalog: Catalog, ds: lance.LanceDataset, message: str) -> None:
    name = catalog.name_of(str(ds.uri).rstrip("/"))
    warnings.warn(f"table {name!r} {message}", ChangesWarning, stacklevel=2)
