"""Copies, held by the engine, of the columns joins read of Lance table versions.

An engine joining Lance scans reads every table of the join from Lance at each statement,
and DuckDB plans the join without column statistics, which a Lance scan cannot give it (a
DuckDB Python source answers a row count and nothing else; see "The DuckDB adapter" in
docs/ARCHITECTURE.md): a key's distinct count falls back to the smallest row count of the
tables it joins, so plans tie that Parquet's min/max tell apart (the laion three-table join
built its last hash table on a million-row scan, 2.2x its time over Parquet). Over a copy
in its own tables DuckDB keeps the statistics it plans Parquet with; DataFusion joins
in-memory batches without reading Lance again.

A Lance version never changes, so a copy of the columns statements read stays right for
as long as that version is read, and a new version is a new key: a copy is never stale.
It is made the second time a statement that reads more than one Lance table (a join, a
set operation, a subquery over another table) reads the same version, so a one-off query
does not pay for it, and holds the columns those statements named (all of them for a
``*``). Copies live while they fit ``join_cache_bytes``, least recently used dropped
first; a copy that failed, or measured over the budget, is not tried again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import lance
import pyarrow as pa

from lancesql.catalog import version_identity
from lancesql.settings import declare

declare(
    "join_cache_bytes",
    256 << 20,
    int,
    "Memory for the engine's copies of the columns that statements reading two or more "
    "Lance tables (joins) read of a table version, made the second time a version is read "
    "so: DuckDB plans joins over them with the column statistics a Lance scan cannot give "
    "it, and neither engine reads Lance again (0 turns the copies off).",
)

#: Lance's own columns, which a copy does not hold.
_META_COLUMNS = frozenset(
    {"_rowid", "_rowaddr", "_rowoffset", "_row_created_at_version", "_row_last_updated_at_version"}
)

#: The size recorded for a copy that failed, so that it is not tried again.
_NEVER = 1 << 62

#: How many table versions' reads (and sizes) are remembered: a bound on the bookkeeping.
_KEPT = 1024

T = TypeVar("T")


@dataclass(frozen=True)
class Held(Generic[T]):
    """An engine's copy (a DuckDB table's name, DataFusion's batches) of some columns of
    one Lance table version, in the table's column order, and the memory it takes."""

    copy: T
    columns: tuple[str, ...]
    nbytes: int


class Copier(Protocol[T]):
    """How an engine copies columns of a Lance version, and lets a copy go."""

    def copy(self, dataset: lance.LanceDataset, columns: list[str]) -> tuple[T, int] | None:
        """The copy of ``columns`` (in the table's order) and the bytes it takes; None
        when it could not be made (the statement then reads Lance)."""

    def drop(self, copy: T) -> None:
        """Release a copy no longer held."""


@dataclass
class _Reads:
    """The columns statements of several tables read of a version, and the last of them."""

    columns: set[str]
    statement: object


class HeldCopies(Generic[T]):
    """The copies one engine holds, shared by its cursors."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: OrderedDict[tuple[object, ...], Held[T]] = OrderedDict()
        self._reads: OrderedDict[tuple[object, ...], _Reads] = OrderedDict()
        self._sizes: OrderedDict[tuple[tuple[object, ...], frozenset[str]], int] = OrderedDict()

    def copy_for(
        self,
        dataset: lance.LanceDataset,
        columns: Sequence[str] | None,
        budget: int,
        statement: object,
        copier: Copier[T],
    ) -> Held[T] | None:
        """The copy holding ``columns`` (a superset that may name other tables' columns;
        None: all) of ``dataset``'s version, made by ``copier`` when a second statement
        (``statement`` tells them apart) reads the version among other tables and the
        columns fit ``budget``; None: read Lance."""
        if budget <= 0:
            return None
        wanted = _wanted(dataset.schema, columns)
        if wanted is None:
            return None
        key = version_identity(dataset)
        with self._lock:
            held = self._held.get(key)
            if held is not None and wanted <= set(held.columns):
                self._held.move_to_end(key)
                return held
            reads = self._reads.get(key)
            if reads is None or reads.statement == statement:
                # a first read (a statement reading a version twice, a self-join, is one read)
                if reads is None:
                    self._reads[key] = reads = _Reads(set(), statement)
                    _bound(self._reads)
                reads.columns.update(wanted)
                return None
            reads.statement = statement
            reads.columns.update(wanted)
            self._reads.move_to_end(key)
            chosen = frozenset(reads.columns) | frozenset(held.columns if held is not None else ())
            size = self._sizes.get((key, chosen))
            if size is None:
                size = self._sizes[(key, chosen)] = _estimate(dataset, chosen)
                _bound(self._sizes)
            if size > budget:
                return None
            ordered = [f.name for f in dataset.schema if f.name in chosen]
            made = copier.copy(dataset, ordered)
            if made is None:
                self._sizes[(key, chosen)] = _NEVER
                return None
            copy, nbytes = made
            # what the engine took is the size from now on: a copy over the budget is not made again
            self._sizes[(key, chosen)] = max(size, nbytes)
            old = self._held.pop(key, None)
            if old is not None:
                copier.drop(old.copy)
            self._held[key] = Held(copy, tuple(ordered), nbytes)
            while self._held and sum(h.nbytes for h in self._held.values()) > budget:
                _, evicted = self._held.popitem(last=False)
                copier.drop(evicted.copy)
            return self._held.get(key)

    def held(self) -> dict[tuple[object, ...], Held[T]]:
        """The copies held now, least recently used first (for tests)."""
        with self._lock:
            return dict(self._held)


def shown_columns(held: Sequence[str], columns: Sequence[str] | None) -> list[str]:
    """The columns of a copy a statement is shown: those it may read (all for None)."""
    if columns is None:
        return list(held)
    named = {c.lower() for c in columns}
    return [c for c in held if c.lower() in named]


def _bound(entries: OrderedDict[Any, Any]) -> None:
    while len(entries) > _KEPT:
        entries.popitem(last=False)


def _wanted(schema: pa.Schema, columns: Sequence[str] | None) -> frozenset[str] | None:
    """The table's columns among ``columns``, all of them for None; None when a
    statement reads one a copy does not hold. Names match without regard to case, as
    both engines match unquoted names."""
    if columns is None:
        return frozenset(schema.names)
    if any(c.lower() in _META_COLUMNS for c in columns):
        return None
    named = {c.lower() for c in columns}
    wanted = frozenset(n for n in schema.names if n.lower() in named)
    return wanted or None


def _estimate(dataset: lance.LanceDataset, columns: frozenset[str]) -> int:
    """The bytes a copy of ``columns`` will take: fixed-width values by their width, the
    rest by what Lance stores of them, at least 16 bytes a row (DuckDB's string header)."""
    rows = dataset.count_rows()
    on_disk = _bytes_on_disk(dataset)
    total = 0
    for field in dataset.schema:
        if field.name not in columns:
            continue
        try:
            width = field.type.bit_width // 8
        except ValueError:
            width = 0
        total += rows * width if width else max(on_disk.get(field.name, 0), rows * 16)
    return total


def _bytes_on_disk(dataset: lance.LanceDataset) -> dict[str, int]:
    """What Lance stores of each top-level column (its fields' bytes summed)."""
    ids = {}
    for field in dataset.lance_schema.fields():
        ids[field.id()] = field.name()
        stack = list(field.children())
        while stack:
            child = stack.pop()
            ids[child.id()] = field.name()
            stack.extend(child.children())
    sizes: dict[str, int] = {}
    fields: Any = dataset.stats.data_stats().fields  # pylance types it as one field
    for stat in fields:
        name = ids.get(stat.id)
        if name is not None:
            sizes[name] = sizes.get(name, 0) + stat.bytes_on_disk
    return sizes
