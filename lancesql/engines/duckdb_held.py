"""Lance table versions held as DuckDB tables, so that DuckDB plans joins as over Parquet.

DuckDB orders a join by its inputs' row counts and their keys' distinct counts. A Lance
scan reaches it as a Python source, which gives a row count and nothing else (no
statistics callback in DuckDB 2.0's scan of Python objects nor in its C API), so a key's
distinct count falls back to the smallest row count among the tables it joins and plans
tie that Parquet's min/max tell apart: the laion three-table join built its last hash table
on a million-row scan and took 2.2x its time over Parquet (benchmarks/bench_laion_joins.py).
DuckDB's own tables carry the statistics it plans with (HyperLogLog distinct counts,
min/max) and are read without leaving the engine.

A Lance version never changes, so a copy of the columns a query reads stays right for as
long as that version is read. The copy is made the second time a statement that reads two
or more Lance tables (a join, a set operation, a subquery over another table) reads the
same version, so a one-off query does not pay for it; it holds only the columns those
statements named, and only while the copies fit ``duckdb_table_cache_bytes`` (least
recently used dropped first). A table with a ``*`` on it, or whose columns do not fit, is
scanned as before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import lance
import pyarrow as pa

from lancesql.catalog import version_identity
from lancesql.settings import declare

declare(
    "duckdb_table_cache_bytes",
    256 << 20,
    int,
    "Memory for copies, in DuckDB tables, of the columns that statements reading two or "
    "more Lance tables (joins) read of a table version, made the second time a version is "
    "read so; DuckDB then plans the join with the column statistics a Lance scan cannot "
    "give it (0 turns the copies off; DataFusion does not use them).",
)

#: Lance's own columns, which a copy does not hold.
_META_COLUMNS = frozenset(
    {"_rowid", "_rowaddr", "_rowoffset", "_row_created_at_version", "_row_last_updated_at_version"}
)

#: The size recorded for a copy that failed, so that it is not tried again.
_NEVER = 1 << 62

#: How many table versions' uses are remembered (a bound on the bookkeeping, not the data).
_USES_KEPT = 1024


@dataclass(frozen=True)
class Held:
    """A DuckDB table holding some columns of one Lance table version."""

    name: str
    columns: frozenset[str]
    nbytes: int


@dataclass
class _Use:
    """The columns statements of several tables read of a version, and the last of them."""

    columns: set[str]
    statement: object


class HeldTables:
    """The copies one DuckDB database holds, shared by its cursors (tables in ``main``
    are visible to every cursor of the database, unlike registered objects)."""

    def __init__(self, db: duckdb.DuckDBPyConnection):
        self._db = db
        self._lock = threading.Lock()
        self._held: OrderedDict[tuple[object, ...], Held] = OrderedDict()
        self._uses: OrderedDict[tuple[object, ...], _Use] = OrderedDict()
        #: The estimated bytes of copies considered (a version too large is not re-estimated).
        self._sizes: dict[tuple[tuple[object, ...], frozenset[str]], int] = {}
        self._count = 0

    def table_for(
        self,
        cursor: duckdb.DuckDBPyConnection,
        dataset: lance.LanceDataset,
        columns: Sequence[str] | None,
        budget: int,
        scan: object,
        statement: object,
    ) -> str | None:
        """The DuckDB table holding ``columns`` of ``dataset``'s version, copying them from
        ``scan`` (what lancesql would register for the dataset) when a second statement
        (``statement`` tells them apart) reads the version among other tables and the
        columns fit ``budget``; None: scan Lance."""
        if budget <= 0:
            return None
        wanted = _wanted(dataset.schema, columns)
        if wanted is None:
            return None
        key = version_identity(dataset)
        with self._lock:
            held = self._held.get(key)
            if held is not None and wanted <= held.columns:
                self._held.move_to_end(key)
                return held.name
            use = self._uses.get(key)
            if use is None or use.statement == statement:
                # a first read (one statement reading a version twice, a self-join, is one read)
                if use is None:
                    self._uses[key] = use = _Use(set(), statement)
                    if len(self._uses) > _USES_KEPT:
                        self._uses.popitem(last=False)
                use.columns.update(wanted)
                return None
            use.statement = statement
            seen = use.columns
            seen |= wanted
            self._uses.move_to_end(key)
            copy = frozenset(seen) | (held.columns if held is not None else frozenset())
            if self._sizes.get((key, copy)) is None:
                self._sizes[(key, copy)] = _estimate(dataset, copy)
                if len(self._sizes) > _USES_KEPT:
                    self._sizes.pop(next(iter(self._sizes)))
            if self._sizes[(key, copy)] > budget:
                return None
            return self._copy(cursor, key, dataset, copy, budget, scan)

    def _copy(
        self,
        cursor: duckdb.DuckDBPyConnection,
        key: tuple[object, ...],
        dataset: lance.LanceDataset,
        columns: frozenset[str],
        budget: int,
        scan: object,
    ) -> str | None:
        self._count += 1
        name = f"__lancesql_held_{self._count}"
        source = f"__lancesql_copying_{self._count}"
        ordered = [f.name for f in dataset.schema if f.name in columns]
        before = _table_bytes(cursor)
        cursor.register(source, scan)
        try:
            cursor.execute(f'CREATE TABLE main."{name}" AS SELECT {_names(ordered)} FROM "{source}"')
        except duckdb.Error:
            # whatever failed (a type DuckDB cannot hold, memory), the statement reads Lance
            # as before and this copy is not tried again
            cursor.execute(f'DROP TABLE IF EXISTS main."{name}"')
            self._sizes[(key, columns)] = _NEVER
            return None
        finally:
            cursor.unregister(source)
        nbytes = max(_table_bytes(cursor) - before, 0)
        old = self._held.pop(key, None)
        if old is not None:
            self._drop(cursor, old)
        self._held[key] = Held(name, columns, nbytes)
        # what DuckDB took is the size from now on: a copy larger than the budget is not made again
        self._sizes[(key, columns)] = max(self._sizes.get((key, columns), 0), nbytes)
        while self._held and sum(h.nbytes for h in self._held.values()) > budget:
            _, evicted = self._held.popitem(last=False)
            self._drop(cursor, evicted)
        return name if key in self._held else None

    @staticmethod
    def _drop(cursor: duckdb.DuckDBPyConnection, held: Held) -> None:
        cursor.execute(f'DROP TABLE IF EXISTS main."{held.name}"')

    def held(self) -> dict[tuple[object, ...], Held]:
        """The copies held now, least recently used first (for EXPLAIN and tests)."""
        with self._lock:
            return dict(self._held)


def view_sql(name: str, held: str, columns: Sequence[str]) -> str:
    """The temporary view that shows a held copy under the name a statement reads."""
    return f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT {_names(columns)} FROM main."{held}"'


def _wanted(schema: pa.Schema, columns: Sequence[str] | None) -> frozenset[str] | None:
    """The table's columns among ``columns`` (a superset that may name other tables'
    columns), all of them for None; None when a statement reads one a copy cannot hold."""
    if columns is None:
        return frozenset(schema.names)
    if any(c.lower() in _META_COLUMNS for c in columns):
        return None
    named = {c.lower() for c in columns}  # DuckDB matches names without regard to case
    wanted = frozenset(n for n in schema.names if n.lower() in named)
    return wanted or None


def _estimate(dataset: lance.LanceDataset, columns: frozenset[str]) -> int:
    """The bytes DuckDB will hold for ``columns``: fixed-width values by their width, the
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


def _table_bytes(cursor: duckdb.DuckDBPyConnection) -> int:
    rows = cursor.sql(
        "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag = 'IN_MEMORY_TABLE'"
    ).fetchall()
    return int(rows[0][0]) if rows else 0


def _names(columns: Sequence[str]) -> str:
    return ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
