"""lancesql: SQL over Lance datasets, from DuckDB or DataFusion, through DB-API 2.0.

>>> import lancesql
>>> lancesql.apilevel, lancesql.paramstyle
('2.0', 'qmark')
"""

from __future__ import annotations

import logging
from typing import Any

from lancesql.connection import Connection, connect
from lancesql.cursor import Cursor
from lancesql.dbapi_types import (
    BINARY,
    DATETIME,
    NUMBER,
    ROWID,
    STRING,
    Binary,
    Date,
    DateFromTicks,
    Time,
    TimeFromTicks,
    Timestamp,
    TimestampFromTicks,
)
from lancesql.errors import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Warning,
)

#: PEP 249: the DB-API level supported.
apilevel = "2.0"
#: PEP 249: threads may share the module and connections, but not cursors (a cursor
#: that two threads use at once raises InterfaceError rather than mix their results).
threadsafety = 2
#: PEP 249: parameters are question marks, bound by position.
paramstyle = "qmark"

logging.getLogger("sqlglot").setLevel(logging.ERROR)

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``lancesql.torch_dataset``, imported on first use so that ``import lancesql``
    never imports torch."""
    if name == "torch_dataset":
        try:
            from lancesql.training import torch_dataset
        except ImportError as exc:
            raise ImportError(
                f"lancesql.torch_dataset needs PyTorch ({exc}): pip install 'lancesql[clip]' "
                "or pip install torch"
            ) from exc
        return torch_dataset
    raise AttributeError(f"module 'lancesql' has no attribute {name!r}")


__all__ = [
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "Binary",
    "Connection",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "Warning",
    "apilevel",
    "connect",
    "paramstyle",
    "threadsafety",
]
