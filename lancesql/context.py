"""What a statement runs with, and what it gives back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lancesql.catalog import Catalog
from lancesql.engines.base import EngineCursor
from lancesql.settings import Settings

if TYPE_CHECKING:
    from lancesql.connection import Connection


@dataclass
class Result:
    """A statement's result: rows to stream (or none), and the rows it changed."""

    reader: pa.RecordBatchReader | None = None
    rowcount: int = -1

    @classmethod
    def of(cls, table: pa.Table, rowcount: int = -1) -> Result:
        """A result holding ``table``."""
        return cls(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()), rowcount)

    @classmethod
    def done(cls, rowcount: int = -1) -> Result:
        """A statement that returns no rows."""
        return cls(None, rowcount)


@dataclass
class StatementContext:
    """One statement's run: the connection, the engine session, the bound parameters."""

    connection: Connection
    engine: EngineCursor
    params: Sequence[Any] = ()
    #: Names registered on ``engine`` for this statement, dropped before the next one.
    registered: list[str] = field(default_factory=list)

    @property
    def catalog(self) -> Catalog:
        return self.connection.catalog

    @property
    def settings(self) -> Settings:
        return self.connection.settings
