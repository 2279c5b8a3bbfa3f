"""What a statement runs with, and what it gives back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from lancesql.catalog import Catalog
from lancesql.engines.base import Engine, EngineCursor
from lancesql.settings import Settings
from lancesql.udfs.registry import Session


class EngineSession(Session, Protocol):
    """What a statement uses of its connection: the functions' session, and the engine
    (a :class:`lancesql.Connection` is one)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def temp_views(self) -> dict[str, str]: ...

    @property
    def aggregate_schemas(self) -> dict[Any, pa.Schema]: ...


@dataclass
class Result:
    """A statement's result: rows to stream (or none), and the rows it changed."""

    reader: pa.RecordBatchReader | None = None
    rowcount: int = -1
    #: What the statement did, in one line for a person (``tag v1 created at
    #: version 7``); the cursor's ``statusmessage``, the CLI's ``OK: ...`` line.
    outcome: str | None = None

    @classmethod
    def of(cls, table: pa.Table, rowcount: int = -1) -> Result:
        """A result holding ``table``."""
        return cls(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()), rowcount)

    @classmethod
    def done(cls, rowcount: int = -1, outcome: str | None = None) -> Result:
        """A statement that returns no rows."""
        return cls(None, rowcount, outcome)


@dataclass
class StatementContext:
    """One statement's run: the connection, the engine session, the bound parameters."""

    connection: EngineSession
    engine: EngineCursor
    params: Sequence[Any] = ()
    #: What the cursor has registered on ``engine``, by name (kept across statements,
    #: so an unchanged dataset is not registered again).
    registered: dict[str, Any] = field(default_factory=dict)
    #: The versions the statement committed: (dataset URI, version), in order.
    commits: list[tuple[str, int]] = field(default_factory=list)

    @property
    def catalog(self) -> Catalog:
        return self.connection.catalog

    @property
    def settings(self) -> Settings:
        return self.connection.settings
