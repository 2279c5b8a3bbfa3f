"""The SQL functions of lancesql, each defined once here and registered on every engine.

Table functions (``lance_scan``, ``vector_search``, ...) are Python functions that take
the connection and the call's arguments and return what the query reads: a Lance
dataset (scanned with projection and filter pushdown) or an Arrow table. The rewriter
replaces each call with a placeholder that the engine adapter binds to that result.
Scalar functions (``embed_image``, ...) are Arrow-batch functions registered as UDFs.
"""

from __future__ import annotations

from lancesql.udfs.registry import SCALAR_FUNCTIONS, TABLE_FUNCTIONS, ScalarFunction, TableFunction

__all__ = ["SCALAR_FUNCTIONS", "TABLE_FUNCTIONS", "ScalarFunction", "TableFunction"]

# Importing a function's module registers it.
from lancesql.udfs import embed, lance_changes, lance_scan, lance_versions, text_search, vector_search  # noqa: F401
