"""One adapter per engine, behind the small interface in :mod:`lancesql.engines.base`."""

from __future__ import annotations

from lancesql.engines import datafusion_errors, duckdb
from lancesql.engines.base import Engine, EngineCursor
from lancesql.engines.duckdb import DuckDBEngine
from lancesql.errors import ERRORS_BY_CLASS, ERRORS_BY_MESSAGE, MESSAGE_CLEANERS, ProgrammingError
from lancesql.settings import declare

ENGINES = ("duckdb", "datafusion")

ERRORS_BY_CLASS.append(duckdb.classify_error)
ERRORS_BY_MESSAGE.append(duckdb.classify_message)
ERRORS_BY_MESSAGE.append(datafusion_errors.classify_error)
MESSAGE_CLEANERS.extend([duckdb.clean_message, datafusion_errors.clean_message])

declare(
    "datafusion_target_partitions",
    0,
    int,
    "DataFusion's target partitions; 0 means one per CPU core.",
)


def create_engine(name: str) -> Engine:
    """The adapter for engine ``name``: ``duckdb`` (the default) or ``datafusion``."""
    key = name.lower()
    if key == "duckdb":
        return DuckDBEngine()
    if key == "datafusion":
        # Imported on first use: a DuckDB connection never loads DataFusion.
        from lancesql.engines.datafusion import DataFusionEngine

        return DataFusionEngine()
    raise ProgrammingError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Engine", "EngineCursor", "create_engine"]
