"""DuckDB's copies of Lance columns (see :mod:`lancesql.engines.held`): tables in the
database's ``main`` schema, which every cursor of the database sees (registered objects
are each cursor's own), shown to a statement as a temporary view under its name."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import duckdb
import lance

#: Numbers for the copies' table names (unique in the process).
_NUMBERS = itertools.count(1)


class DuckDBCopier:
    """Copies made and dropped through one DuckDB cursor; ``scan`` makes the object
    lancesql registers for the dataset (only when a copy is made), so a copy has the
    types a scan of it gives."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, scan: Callable[[], object]):
        self._cursor = cursor
        self._scan = scan

    def copy(self, dataset: lance.LanceDataset, columns: list[str]) -> tuple[str, int] | None:
        number = next(_NUMBERS)
        name = f"__lancesql_held_{number}"
        source = f"__lancesql_copying_{number}"
        before = _table_bytes(self._cursor)
        self._cursor.register(source, self._scan())
        try:
            self._cursor.execute(f'CREATE TABLE main."{name}" AS SELECT {_names(columns)} FROM "{source}"')
        except duckdb.Error:  # a type DuckDB cannot hold, memory: the statement reads Lance
            self.drop(name)
            return None
        finally:
            self._cursor.unregister(source)
        return name, max(_table_bytes(self._cursor) - before, 0)

    def drop(self, copy: str) -> None:
        self._cursor.execute(f'DROP TABLE IF EXISTS main."{copy}"')


def view_sql(name: str, held: str, columns: Sequence[str]) -> str:
    """The temporary view that shows a held copy under the name a statement reads."""
    return f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT {_names(columns)} FROM main."{held}"'


def _table_bytes(cursor: duckdb.DuckDBPyConnection) -> int:
    rows = cursor.sql(
        "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag = 'IN_MEMORY_TABLE'"
    ).fetchall()
    return int(rows[0][0]) if rows else 0


def _names(columns: Sequence[str]) -> str:
    return ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
