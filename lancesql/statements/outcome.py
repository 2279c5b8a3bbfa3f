"""What a statement that returns no rows did, in one line for a person.

The cursor's ``statusmessage`` and the CLI's ``OK: ...`` line: the rows a statement
changed and the version it committed (``3 rows inserted into t (version 9)``), what
that version did in the words SHOW VERSIONS uses (``mnist version 8: add columns
is_one``), or the statement's own few words when it committed nothing.
"""

from __future__ import annotations

from sqlglot import exp

from lancesql.context import StatementContext
from lancesql.statements.base import command_tokens
from lancesql.udfs.lance_versions import describe_operation

#: The verb of each row-counting statement, and the preposition before its table.
_COUNTED = {
    exp.Insert: ("inserted", "into"),
    exp.Update: ("updated", "in"),
    exp.Delete: ("deleted", "from"),
    exp.Merge: ("merged", "into"),
    exp.Create: ("written", "to"),
}


def outcome(ctx: StatementContext, tree: exp.Expression, rowcount: int, words: str | None = None) -> str:
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
    return words or label(tree)


def label(tree: exp.Expression) -> str:
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
