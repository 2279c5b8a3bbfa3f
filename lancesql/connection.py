"""The DB-API connection, and :func:`connect`."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
from sqlglot import exp

from lancesql import errors
from lancesql.catalog import Catalog
from lancesql.cursor import Cursor
from lancesql.engines import Engine, create_engine
from lancesql.errors import InterfaceError, NotSupportedError
from lancesql.parse import Parsed, parse
from lancesql.result import QueryResult
from lancesql.settings import Settings
from lancesql.udfs import SCALAR_FUNCTIONS

_PARSE_CACHE_SIZE = 256


class Connection:
    """A connection to a root of Lance datasets, through one engine.

    Every statement commits its own Lance version, so there is no transaction to
    commit or roll back: ``commit()`` does nothing and ``rollback()`` raises
    NotSupportedError (a failed statement never leaves anything half-written).

    The exception classes are attributes too (PEP 249's optional extension, which
    pandas and SQLAlchemy use): ``except con.ProgrammingError``.
    """

    Warning = errors.Warning
    Error = errors.Error
    InterfaceError = errors.InterfaceError
    DatabaseError = errors.DatabaseError
    DataError = errors.DataError
    OperationalError = errors.OperationalError
    IntegrityError = errors.IntegrityError
    InternalError = errors.InternalError
    ProgrammingError = errors.ProgrammingError
    NotSupportedError = errors.NotSupportedError

    def __init__(
        self,
        root: str | os.PathLike[str],
        engine: str = "duckdb",
        storage_options: Mapping[str, str] | None = None,
        settings: Mapping[str, Any] | None = None,
    ):
        self.catalog = Catalog(root, storage_options)
        self.settings = Settings(settings)
        self.catalog.current_branch = lambda: self.settings.get("branch")
        self.engine: Engine = create_engine(engine)
        for function in SCALAR_FUNCTIONS.values():
            self.engine.register_function(function.bind(self))
        self.closed = False
        self.lock = threading.RLock()
        self._parsed: dict[str, Parsed] = {}
        #: ``CREATE TEMP VIEW``s: name -> SQL, seen by this connection only.
        self.temp_views: dict[str, str] = {}
        #: The engine's result schemas of grouped counts, by what decides them
        #: (:func:`lancesql.direct_aggregate.key`): learnt from its first run of each shape.
        self.aggregate_schemas: dict[Any, pa.Schema] = {}

    def parse(self, sql: str) -> Parsed:
        """Parse ``sql``, from a cache of recent statements.

        Queries are shared between runs (their prepared form is kept on the tree, see
        :mod:`lancesql.query`); other statements are handed out as fresh copies, since
        their handlers may change them.
        """
        parsed = self._parsed.get(sql)
        if parsed is None:
            parsed = parse(sql)
            if len(self._parsed) >= _PARSE_CACHE_SIZE:
                self._parsed.pop(next(iter(self._parsed)))
            self._parsed[sql] = parsed
        if all(isinstance(t, exp.Query) for t in parsed.statements):
            return parsed
        fresh = [t if isinstance(t, exp.Query) else t.copy() for t in parsed.statements]
        return Parsed(fresh, parsed.parameters)

    @property
    def root(self) -> str:
        """The root every table name is looked up under."""
        return self.catalog.root

    def cursor(self) -> Cursor:
        """A new cursor."""
        self._check_open()
        return Cursor(self)

    def execute(self, operation: str, parameters: Sequence[Any] | None = None) -> Cursor:
        """Run ``operation`` on a new cursor and return it (a shortcut, as in sqlite3)."""
        return self.cursor().execute(operation, parameters)

    def sql(self, query: str, parameters: Sequence[Any] | None = None) -> QueryResult | None:
        """Run ``query`` and return its result to look at (``.arrow()``, ``.df()``,
        ``.pl()``, ``.fetchall()``, an HTML view in notebooks), as DuckDB's ``con.sql``
        does; None for a statement that returns no rows."""
        started = time.perf_counter()
        cursor = self.cursor().execute(query, parameters)
        if cursor.description is None:
            cursor.close()
            return None
        return QueryResult(cursor, started)

    def commit(self) -> None:
        """Nothing to do: every statement commits a Lance version as it runs."""
        self._check_open()

    def rollback(self) -> None:
        """Not supported: statements commit as they run; restore an old version instead."""
        self._check_open()
        raise NotSupportedError(
            "lancesql has no transactions: each statement commits its own Lance version. "
            "To undo a change, RESTORE TABLE <t> TO VERSION <n>."
        )

    def close(self) -> None:
        """Close the connection; its cursors can no longer run statements."""
        if not self.closed:
            self.engine.close()
            self.closed = True

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self.closed:
            raise InterfaceError("the connection is closed: open a new one with lancesql.connect()")


def connect(
    root: str | os.PathLike[str] = ".",
    engine: str = "duckdb",
    storage_options: Mapping[str, str] | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
    clip: Mapping[str, Any] | None = None,
    executor: str | None = None,
) -> Connection:
    """Connect to ``root``: a directory or URI whose ``<name>.lance`` datasets are tables.

    ``engine`` is ``"duckdb"`` (the embedded default) or ``"datafusion"``; the SQL is
    the same. ``storage_options`` go to Lance for object stores (keys, endpoint,
    region). ``settings`` sets any ``lancesql.*`` setting for this connection, and
    ``clip={"model": ..., "pretrained": ..., "device": ..., "batch_size": ...,
    "precision": ...}`` sets the ``clip_*`` ones. ``executor`` (``"local"``, ``"ray"`` or
    ``"ray://host:10001"``) is where backfills, index builds, OPTIMIZE and copies of Lance
    scans run (the ``executor`` setting; see :mod:`lancesql.executors`).
    """
    merged = dict(settings or {})
    if executor is not None:
        merged["executor"] = executor
    for key, value in (clip or {}).items():
        merged[f"clip_{key}"] = value
    return Connection(root, engine, storage_options, merged)
