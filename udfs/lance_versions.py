"""``lance_versions('t')``, ``lance_tags('t')`` and ``lance_indexes('t')``: a dataset's
history, tags and indices as tables, to join on or to read with ``SHOW VERSIONS``,
``SHOW TAGS`` and ``SHOW INDEXES``.

Everything here comes from manifests and transaction files; no data file is read, and
each is read once per process, since a version never changes: its manifest (time, rows)
when it is first listed (``catalog.kept_versions``), its transaction file (the
operation; cached by path, version and commit time) when a query first reads its
``operation`` or ``detail`` column. A long history lists at the cost of its new versions.
Timestamps are naive, in the machine's local time: that is how Lance reports a
version's time, and how ``AT (TIMESTAMP => '...')`` reads one, so a time copied from
``SHOW VERSIONS`` selects that version.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import lance
import pyarrow as pa
from lance.dataset import Version

from lancesql.catalog import MAIN, TableRef, VersionRef, kept_versions, split_branch
from lancesql.errors import ProgrammingError
from lancesql.udfs.registry import Session, table_function

VERSIONS_SCHEMA = pa.schema(
    [
        pa.field("version", pa.int64(), nullable=False),
        pa.field("timestamp", pa.timestamp("us")),
        pa.field("rows", pa.int64()),
        pa.field("operation", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("tags", pa.string()),
    ]
)

TAGS_SCHEMA = pa.schema(
    [
        pa.field("tag", pa.string(), nullable=False),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("created_at", pa.timestamp("us")),
        pa.field("updated_at", pa.timestamp("us")),
        pa.field("branch", pa.string()),
    ]
)

INDEXES_SCHEMA = pa.schema(
    [
        pa.field("name", pa.string(), nullable=False),
        pa.field("type", pa.string()),
        pa.field("columns", pa.string()),
        pa.field("version", pa.int64()),
        pa.field("rows_indexed", pa.int64()),
        pa.field("rows_unindexed", pa.int64()),
        pa.field("size_bytes", pa.int64()),
    ]
)


def _latest(
    session: Session, uri: Any, function: str, branch: str | None = None
) -> tuple[str, lance.LanceDataset]:
    if not isinstance(uri, str) or not uri:
        raise ProgrammingError(f"{function}() needs a table name or a dataset URI as its first argument")
    catalog = session.catalog
    resolved = catalog.resolve_uri(uri, branch)
    return resolved, catalog.latest(resolved)


def versions_table(ds: lance.LanceDataset, columns: list[str] | None = None) -> pa.Table:
    """One row per kept version of ``ds``: number, time, rows, and the operation that made
    it (read only when ``columns``, the columns wanted, holds ``operation`` or ``detail``)."""
    operations = columns is None or bool({"operation", "detail"} & set(columns))
    tags: dict[int, list[str]] = {}
    branch = split_branch(str(ds.uri).rstrip("/"))[1]
    for name, info in ds.tags.list().items():
        if (info.get("branch") or None) != branch:
            continue  # a tag on another branch names that branch's version
        tags.setdefault(int(info["version"]), []).append(name)
    entries = kept_versions(ds)
    numbers = [int(entry["version"]) for entry in entries]
    rows = []
    for number, entry in zip(numbers, entries, strict=True):
        total = (entry.get("metadata") or {}).get("total_rows")
        rows.append(int(total) if total is not None else ds.checkout_version(number).count_rows())
    described = _operations(ds, entries) if operations else [(None, None)] * len(entries)
    return pa.Table.from_arrays(
        [
            pa.array(numbers, pa.int64()),
            # Lance's version times are naive local times already (see local_time)
            pa.array([e["timestamp"] for e in entries], pa.timestamp("us")),
            pa.array(rows, pa.int64()),
            pa.array([d[0] for d in described], pa.string()),
            pa.array([d[1] for d in described], pa.string()),
            pa.array([", ".join(sorted(tags[n])) if n in tags else None for n in numbers], pa.string()),
        ],
        schema=VERSIONS_SCHEMA,
    )


#: (path, version, commit time) -> (operation, detail, the columns after it when its
#: transaction says them): a version never changes; the time tells apart a table
#: dropped and made again at the same path.
_Described = tuple[str | None, str | None, list[str] | None]
_OPERATIONS: OrderedDict[tuple[str, int, Any], _Described] = OrderedDict()
_OPERATIONS_LOCK = threading.Lock()
_OPERATIONS_KEPT = 65_536


def _operations(ds: lance.LanceDataset, entries: list[Version]) -> list[tuple[str | None, str | None]]:
    """:func:`describe_operation` of each version (``ds.versions()``'s entries, oldest
    first), each read once per process. A version that adds or drops columns is
    described against the columns of the one before, known without reading its manifest
    when that one's transaction said them (as each ``ADD``/``DROP COLUMN`` does)."""
    uri = str(ds.uri)
    keys = [(uri, int(e["version"]), e["timestamp"]) for e in entries]
    with _OPERATIONS_LOCK:
        found = {key: _OPERATIONS[key] for key in keys if key in _OPERATIONS}
    previous = dict(zip((key[1] + 1 for key in keys), keys, strict=True))

    def columns_before(version: int) -> list[str]:
        before = found.get(previous[version]) if version in previous else None
        if before is not None and before[2] is not None:
            return before[2]
        return _column_names(ds, version - 1)

    for key in keys:
        if key not in found:
            found[key] = described = _describe(ds, key[1], columns_before)
            with _OPERATIONS_LOCK:
                _OPERATIONS[key] = described
                while len(_OPERATIONS) > _OPERATIONS_KEPT:
                    _OPERATIONS.popitem(last=False)
    return [found[key][:2] for key in keys]


def describe_operation(ds: lance.LanceDataset, version: int) -> tuple[str | None, str | None]:
    """The operation Lance recorded for ``version``, and what it did in words.

    The names are Lance's (``Append``, ``Delete``, ``Update``, ``Merge`` for added
    columns, ``Project`` for dropped ones, ``Rewrite`` for compaction, ``CreateIndex``,
    ``Restore``), except that the ``Overwrite`` that writes version 1 reads ``Create``.
    The detail says what changed as a person would (``add columns is_curvy``,
    ``index label_idx``, ``1250 rows written``). None where the transaction file is gone
    or holds an operation pylance does not name.
    """
    name, detail, _ = _describe(ds, version, lambda v: _column_names(ds, v - 1))
    return name, detail


def _describe(
    ds: lance.LanceDataset, version: int, columns_before: Callable[[int], list[str]]
) -> _Described:
    """:func:`describe_operation`, and the columns after ``version`` when its transaction
    holds the schema (adding or dropping columns); ``columns_before(version)`` gives
    those of the version before."""
    try:
        transaction = ds.read_transaction(version)
    except Exception:  # pylance 14 raises TypeError decoding a compaction
        # that rewrote indices (RewrittenIndex); a history listing must not fail on it.
        return None, None, None
    if transaction is None:
        return None, None, None
    op = transaction.operation
    name = type(op).__name__
    if name == "BaseOperation":
        return None, None, None
    if name == "Overwrite" and transaction.read_version == 0:
        name = "Create"
    schema = getattr(op, "schema", None) if name in ("Merge", "Project") else None
    after = list(schema.to_pyarrow().names) if schema is not None else None
    message = (transaction.transaction_properties or {}).get("__lance_commit_message")
    if message:
        return name, message, after
    if after is not None:
        return name, _columns_detail(columns_before(version), after), after
    return name, _detail(ds, version, name, op), after


def _columns_detail(before: list[str], after: list[str]) -> str | None:
    """What adding or dropping columns did, in words."""
    new = [c for c in after if c not in before]
    gone = [c for c in before if c not in after]
    words = []
    if new:
        words.append(f"add columns {', '.join(new)}")
    if gone:
        words.append(f"drop columns {', '.join(gone)}")
    if not words and before:
        words.append("alter columns")
    return "; ".join(words) or None


def _detail(ds: lance.LanceDataset, version: int, name: str, op: Any) -> str | None:
    if name == "Delete":
        return f"delete WHERE {op.predicate}" if getattr(op, "predicate", None) else "delete rows"
    if name == "Restore":
        return f"restore version {op.version}"
    if name == "CreateIndex":
        added = sorted({i.name for i in getattr(op, "new_indices", [])})
        removed = sorted({i.name for i in getattr(op, "removed_indices", [])} - set(added))
        if added:
            return f"index {', '.join(added)}"
        return f"drop index {', '.join(removed)}" if removed else None
    if name in ("Append", "Create", "Overwrite"):
        fragments = getattr(op, "fragments", None) or []
        added_rows = sum(f.physical_rows for f in fragments)
        return f"{added_rows} rows written" if fragments else None
    if name in ("Merge", "Project"):  # without a schema: the columns after are unknown
        return _columns_detail(_column_names(ds, version - 1), [])
    if name == "Update":
        fields = getattr(op, "fields_modified", None) or []
        if fields:
            by_id = {f.id: f.name for f in _lance_fields(ds, version)}
            names = [by_id.get(i, str(i)) for i in fields]
            return f"update {', '.join(names)}"
        rewritten = sum(f.physical_rows for f in getattr(op, "new_fragments", None) or [])
        return f"update {rewritten} row{'s' if rewritten != 1 else ''}" if rewritten else "update rows"
    if name == "Rewrite":
        return "compact files"
    return None


def _column_names(ds: lance.LanceDataset, version: int) -> list[str]:
    """The columns of ``version`` of ``ds``; none when it is gone (cleaned up) or 0."""
    if version < 1:
        return []
    try:
        return list(ds.checkout_version(version).schema.names)
    except Exception:  # a version removed by cleanup: nothing to compare with
        return []


def _lance_fields(ds: lance.LanceDataset, version: int) -> list[Any]:
    try:
        return list(ds.checkout_version(version).lance_schema.fields())
    except Exception:  # field ids unknown: the detail falls back to ids
        return []


def tags_table(ds: lance.LanceDataset) -> pa.Table:
    """One row per tag of ``ds``: its name, the version it names, when it was made and moved."""
    rows = [
        {
            "tag": name,
            "version": int(info["version"]),
            "created_at": local_time(info.get("created_at")),
            "updated_at": local_time(info.get("updated_at")),
            "branch": info.get("branch") or MAIN,
        }
        for name, info in sorted(ds.tags.list().items())
    ]
    return pa.Table.from_pylist(rows, schema=TAGS_SCHEMA)


def indexes_table(ds: lance.LanceDataset) -> pa.Table:
    """One row per index of ``ds`` (at its version): name, type, columns, the version it
    was last built or updated at, and how many rows it covers and does not cover yet."""
    live = {f.fragment_id: _live_rows(f.metadata) for f in ds.get_fragments()}
    found: dict[str, int] = {}
    rows = []
    for index in sorted(ds.describe_indices(), key=lambda i: i.name):
        built = [_built_in(ds, s.uuid, s.dataset_version_at_last_update, found) for s in index.segments]
        covered: set[int] = set()
        for segment in index.segments:
            covered.update(segment.fragment_ids)
        # Rows in fragments no segment covers: searched by brute force until re-indexed.
        unindexed = sum(n for fid, n in live.items() if fid not in covered)
        rows.append(
            {
                "name": index.name,
                "type": index.index_type,
                "columns": ", ".join(index.field_names),
                "version": max(built) if built else None,
                "rows_indexed": index.num_rows_indexed,
                "rows_unindexed": unindexed,
                "size_bytes": index.total_size_bytes,
            }
        )
    return pa.Table.from_pylist(rows, schema=INDEXES_SCHEMA)


def _built_in(ds: lance.LanceDataset, uuid: str, read_version: int, found: dict[str, int]) -> int:
    """The version whose commit added index segment ``uuid``: what SHOW VERSIONS lists.

    Lance's manifest records the version an index was built *from*
    (``dataset_version_at_last_update``: the data it read); its commit is a later
    version, the one whose ``CreateIndex`` transaction names the segment. Where the
    transactions are gone (cleanup), the version after the one it read is the best guess.
    """
    if uuid in found:
        return found[uuid]
    for version in range(read_version + 1, ds.version + 1):
        try:
            transaction = ds.read_transaction(version)
        except Exception:  # a transaction pylance cannot decode, or one cleaned up
            continue
        op = getattr(transaction, "operation", None)
        for index in getattr(op, "new_indices", None) or []:
            found.setdefault(str(index.uuid), version)
        if uuid in found:
            return found[uuid]
    return read_version + 1


def _count(ds: lance.LanceDataset, version: int) -> int:
    """Rows of a version whose manifest does not record them (older datasets)."""
    return int(ds.checkout_version(version).count_rows())


def _live_rows(fragment: Any) -> int:
    """A fragment's rows less its deleted ones, from its metadata alone."""
    deleted = fragment.deletion_file.num_deleted_rows if fragment.deletion_file else 0
    return int(fragment.physical_rows) - int(deleted or 0)


def local_time(value: Any) -> dt.datetime | None:
    """A naive local time: Lance's version times already are, tag times are UTC-aware."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone().replace(tzinfo=None)
    return value


@table_function("lance_versions", projects=True)
def lance_versions(
    session: Session, uri: str, branch: str | None = None, *, columns: list[str] | None = None
) -> pa.Table:
    """The versions of a table (name or URI), of ``branch`` when given: ``version,
    timestamp, rows, operation, detail, tags``, oldest first; versions removed by cleanup
    are not listed."""
    _, ds = _latest(session, uri, "lance_versions", branch)
    return versions_table(ds, columns)


@table_function("lance_tags")
def lance_tags(session: Session, uri: str) -> pa.Table:
    """The tags of a table: ``tag, version, created_at, updated_at, branch``, by name."""
    _, ds = _latest(session, uri, "lance_tags")
    return tags_table(ds)


@table_function("lance_indexes")
def lance_indexes(session: Session, uri: str, version: VersionRef = None) -> pa.Table:
    """The indices of a table at a version (the latest when omitted): ``name, type,
    columns, version, rows_indexed, rows_unindexed, size_bytes``."""
    resolved, _ = _latest(session, uri, "lance_indexes")
    return indexes_table(session.catalog.open(TableRef(resolved, version)))
