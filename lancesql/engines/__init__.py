"""One adapter per engine, behind the small interface in :mod:`lancesql.engines.base`."""

from __future__ import annotations

from lancesql.engines.base import Engine, EngineCursor
from lancesql.engines.datafusion import DataFusionEngine
from lancesql.engines.duckdb import DuckDBEngine
from lancesql.errors import ProgrammingError

ENGINES = ("duckdb", "datafusion")


def create_engine(name: str) -> Engine:
    """The adapter for engine ``name``: ``duckdb`` (the default) or ``datafusion``."""
    key = name.lower()
    if key == "duckdb":
        return DuckDBEngine()
    if key == "datafusion":
        return DataFusionEngine()
    raise ProgrammingError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Engine", "EngineCursor", "create_engine"]
