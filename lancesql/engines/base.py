"""The interface every engine adapter implements.

An engine runs the SQL the rewriter produced, over sources lancesql registers for the
statement: Lance datasets (which the engine scans with projection, filter and limit
pushed into Lance) and Arrow tables (results of table functions). Everything else
(parsing, rewriting, the catalog, DDL on Lance) is engine-independent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import pyarrow as pa

from lancesql.errors import Error, raised_in_function
from lancesql.rewrite import Rule
from lancesql.udfs.registry import ScalarFunction, Session, Source


class EngineCursor(Protocol):
    """One engine session: registrations made on it are seen by its statements only."""

    def register(
        self,
        name: str,
        source: Source,
        *,
        row_ids: bool = False,
        columns: Sequence[str] | None = None,
        statement: object | None = None,
    ) -> bool:
        """Make ``source`` readable as table ``name``; with ``row_ids``, a Lance dataset
        also shows Lance's ``_rowid`` column (for :func:`lancesql.torch_dataset`).

        ``columns``: the columns the statement may read of it (a superset; None: all);
        ``statement``: for a statement that reads more than one Lance table, an object
        standing for it (the same in all its registrations), whose Lance tables an
        engine may answer from copies it holds (see ``engines/held.py``); None for any
        other. Returns whether the registration may serve the next statement reading
        the same source."""

    def unregister(self, name: str) -> None:
        """Forget table ``name``."""

    def execute(self, sql: str, params: Sequence[Any]) -> pa.RecordBatchReader:
        """Run ``sql`` (parameters written ``$1``, ``$2``, ...) and stream its result."""

    def close(self) -> None:
        """Release the session."""


class Engine(Protocol):
    """An engine: a factory of cursors that share its functions."""

    #: ``duckdb`` or ``datafusion``.
    name: str
    #: The sqlglot dialect its SQL is generated in.
    dialect: str
    #: The rewrite rules its queries go through (see :mod:`lancesql.rewrite`).
    rules: tuple[Rule, ...]

    def cursor(self, session: Session) -> EngineCursor:
        """A new session with every lancesql function registered."""

    def register_function(self, function: ScalarFunction) -> None:
        """Register a scalar function on cursors made from now on."""

    def close(self) -> None:
        """Release the engine."""


def reporting(function: ScalarFunction) -> Callable[..., pa.Array]:
    """``function``, remembering the lancesql errors it raises, for an engine to call
    (engines report a Python function's error only as text: see ``errors.translate``)."""

    def call(*arrays: Any) -> pa.Array:
        try:
            return function(*arrays)
        except Error as exc:
            raised_in_function(exc)
            raise

    return call
