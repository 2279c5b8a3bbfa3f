"""One adapter per engine, behind the small interface in :mod:`lancesql.engines.base`."""

from __future__ import annotations

from lancesql.engines import datafusion_errors, duckdb
from lancesql.engines.base import Engine, EngineCursor
from lancesql.errors import MESSAGE_CLEANERS, ProgrammingError

ENGINES = ("duckdb", "datafusion")

MESSAGE_CLEANERS.extend([duckdb.clean_message, datafusion_errors.clean_message])


def create_engine(name: str) -> Engine:
    """The adapter for engine ``name``: ``duckdb`` (the default) or ``datafusion``."""
    key = name.lower()
    if key == "duckdb":
        return duckdb.DuckDBEngine()
    if key == "datafusion":
        from lancesql.engines.datafusion import DataFusionEngine

        return DataFusionEngine()
    raise ProgrammingError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Engine", "EngineCursor", "create_engine"]
