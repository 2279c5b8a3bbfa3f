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
from udfs.lance_versions import describe_operation

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
    # what the statement is, before a handler changes the tree it was handed
    label = None if isinstance(tree, exp.Query) else _label(tree)
    for kind, handler in _HANDLERS:
        if isinstance(tree, kind):
            result = handler(ctx, tree)
            if result is not None:
                if result.reader is None and result.outcome is None:
                    result.outcome = outcome(ctx, tree, result.rowcount, label)
                return result
    from lancesql.query import run_query

    return run_query(ctx, tree)


#: The verb of each row-counting statement, and the preposition before its table.
_COUNTED = {
    exp.Insert: ("inserted", "into"),
    exp.Update: ("updated", "in"),
    exp.Delete: ("deleted", "from"),
    exp.Merge: ("merged", "into"),
    exp.Create: ("written", "to"),
}


def outcome(ctx: StatementContext, tree: exp.Expression, rowcount: int, label: str | None = None) -> str:
    """What a statement that returns no rows did, in one line: the rows it changed,
    and each version it committed with what that version did (as SHOW VERSIONS says).

    ``500 rows written to subset (version 1)``, ``mnist version 8: add columns
    is_one``, or the statement's own words when it committed nothing (``SET``).
    """
    names = [ctx.catalog.name_of(uri) for uri, _ in ctx.commits]
    numbers = [f"version {v}" for _, v in ctx.commits]
    counted = next((words for kind, words in _COUNTED.items() if isinstance(tree, kind)), None)
    if counted is not None and rowcount >= 0 and names:
        verb, preposition = counted
        return (
            f"{rowcount} row{'s' if rowcount != 1 else ''} {verb} {preposition} {names[-1]} ({numbers[-1]})"
        )
    if isinstance(tree, exp.Create) and str(tree.args.get("kind")).upper() == "TABLE" and names:
        kind = str(tree.args.get("kind") or "table").lower()
        return f"{kind} {names[-1]} created ({numbers[-1]})"
    if ctx.commits:
        parts = []
        for (uri, version), name in zip(ctx.commits, names, strict=True):
            _, detail = describe_operation(ctx.catalog.latest(uri), version)
            parts.append(f"{name} version {version}" + (f": {detail}" if detail else ""))
        return "; ".join(parts)
    return label or _label(tree)


def _label(tree: exp.Expression) -> str:
    """A statement in a few words: ``view v created``, ``SET lancesql.x = 1``."""
    targets = [tree.this] if isinstance(tree.this, exp.Expression) else list(tree.args.get("tables") or [])
    if isinstance(tree, (exp.Create, exp.Drop)) and targets:
        kind = str(tree.args.get("kind") or "").lower()
        names = [t.this if isinstance(t, exp.Schema) else t for t in targets]
        verb = "created" if isinstance(tree, exp.Create) else "dropped"
        return f"{kind} {', '.join(n.sql(dialect='duckdb') for n in names)} {verb}".strip()
    text = command_tokens(tree) if isinstance(tree, exp.Command) else tree.sql(dialect="duckdb")
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:79] + "…"


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
