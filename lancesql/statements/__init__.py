"""Statements lancesql runs itself, on Lance, rather than handing to the engine.

Each module handles one family (settings, metadata, tags, DDL, DML, ...) and registers
its handlers with :func:`statement`. A handler gets the parsed statement and returns a
:class:`~lancesql.context.Result`, or ``None`` when the statement is not its own; a
statement no handler takes is a query, rewritten and run on the engine.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from lancesql.context import Result, StatementContext

Handler = Callable[[StatementContext, exp.Expression], "Result | None"]

_HANDLERS: list[tuple[type[exp.Expression], Handler]] = []


def statement(*kinds: type[exp.Expression]) -> Callable[[Handler], Handler]:
    """Register a handler for statements parsed as any of ``kinds``."""

    def register(handler: Handler) -> Handler:
        for kind in kinds:
            _HANDLERS.append((kind, handler))
        return handler

    return register


def execute(ctx: StatementContext, tree: exp.Expression) -> Result:
    """Run one parsed statement."""
    for kind, handler in _HANDLERS:
        if isinstance(tree, kind):
            result = handler(ctx, tree)
            if result is not None:
                return result
    from lancesql.query import run_query

    return run_query(ctx, tree)


def command_tokens(tree: exp.Command) -> str:
    """The raw text of a statement sqlglot kept as a Command (``CREATE TAG ...``)."""
    rest = tree.expression
    if isinstance(rest, exp.Literal):
        tail = rest.name
    elif isinstance(rest, exp.Expression):
        tail = rest.sql()
    else:  # sqlglot keeps most commands' text as a plain string
        tail = str(rest or "")
    return f"{tree.this} {tail}".strip()


# Importing a module registers its handlers.
from lancesql.statements import (  # noqa: E402,F401
    alter,
    create,
    dml,
    explain,
    index,
    restore,
    settings,
    show,
    tags,
    versions,
    views,
)
