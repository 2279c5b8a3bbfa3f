"""Statements lancesql runs itself, on Lance, rather than handing to the engine.

Each module handles one family (settings, metadata, tags, DDL, DML, ...) and registers
its handlers with :func:`statement`. A handler gets the parsed statement and returns a
:class:`~lancesql.context.Result`, or ``None`` when the statement is not its own; a
statement no handler takes is a query, rewritten and run on the engine.
"""

from __future__ import annotations

from sqlglot import exp

from lancesql.context import Result, StatementContext
from lancesql.query import run_query

# Importing a module registers its handlers.
from lancesql.statements import (  # noqa: F401
    alter,
    branch,
    create,
    dml,
    explain,
    index,
    merge,
    optimize,
    restore,
    settings,
    show,
    tags,
    vacuum,
    versions,
    views,
)
from lancesql.statements.base import HANDLERS
from lancesql.statements.outcome import label, outcome


def execute(ctx: StatementContext, tree: exp.Expression) -> Result:
    """Run one parsed statement; one that returns no rows says what it did (``outcome``)."""
    # what the statement is, before a handler changes the tree it was handed
    words = None if isinstance(tree, exp.Query) else label(tree)
    for kind, handler in HANDLERS:
        if isinstance(tree, kind):
            result = handler(ctx, tree)
            if result is not None:
                if result.reader is None and result.outcome is None:
                    result.outcome = outcome(ctx, tree, result.rowcount, words)
                return result
    return run_query(ctx, tree)
