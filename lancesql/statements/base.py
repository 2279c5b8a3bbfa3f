"""The statement registry: each statement module registers its handlers here."""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from lancesql.context import Result, StatementContext

Handler = Callable[[StatementContext, exp.Expression], "Result | None"]

HANDLERS: list[tuple[type[exp.Expression], Handler]] = []


def statement(*kinds: type[exp.Expression]) -> Callable[[Handler], Handler]:
    """Register a handler for statements parsed as any of ``kinds``."""

    def register(handler: Handler) -> Handler:
        for kind in kinds:
            HANDLERS.append((kind, handler))
        return handler

    return register


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
