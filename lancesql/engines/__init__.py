"""One adapter per engine, behind the small interface in :mod:`lancesql.engines.base`."""

from __future__ import annotations

from lancesql.engines import datafusion, duckdb
from lancesql.engines.base import Engine, EngineCursor
from lancesql.engines.datafusion import DataFusionEngine
from lancesql.engines.duckdb import DuckDBEngine
from lancesql.errors import ENGINE_ERRORS, ProgrammingError

ENGINES = ("duckdb", "datafusion")

# DuckDB's errors by their class first; DataFusion's, which have no classes of their own,
# by their message, for whatever is left.
ENGINE_ERRORS.extend([duckdb.classify_error, datafusion.classify_error])


def create_engine(name: str) -> Engine:
    """The adapter for engine ``name``: ``duckdb`` (the default) or ``datafusion``."""
    key = name.lower()
    if key == "duckdb":
        return DuckDBEngine()
    if key == "datafusion":
        return DataFusionEngine()
    raise ProgrammingError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Engine", "EngineCursor", "create_engine"]
