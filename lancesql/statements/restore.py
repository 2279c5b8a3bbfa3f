"""``RESTORE TABLE t TO VERSION n``: make an old version the newest.

::

    RESTORE [TABLE] t TO VERSION n            -- also TO VERSION AS OF n (Delta's spelling)
    RESTORE [TABLE] t TO VERSION 'clip-v1'    -- a tag, as everywhere a version is taken
    RESTORE [TABLE] t TO TAG 'clip-v1'
    RESTORE [TABLE] t TO TIMESTAMP '2026-11-01 10:00'   -- also TO TIMESTAMP AS OF '...'

Lance's restore commits one new version whose contents (data, schema and indices) are
version n's; the versions in between stay, so the restore itself can be undone by
restoring again. Stable row ids carry over, so ``lance_changes`` across a restore
reports the rows it brought back and took away.
"""

from __future__ import annotations

from sqlglot import exp

from lancesql.catalog import TableRef, VersionRef
from lancesql.context import Result, StatementContext
from lancesql.statements.base import command_tokens, statement
from lancesql.statements.grammar import Tokens


@statement(exp.Command)
def restore_table(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``RESTORE [TABLE] t TO VERSION | TAG | TIMESTAMP ...``."""
    tokens = Tokens(command_tokens(tree), ctx.params)  # type: ignore[arg-type]
    if not tokens.accept("RESTORE"):
        return None
    tokens.accept("TABLE")
    uri = ctx.catalog.resolve_uri(tokens.table())
    tokens.expect("TO")
    version = _target(tokens)
    tokens.end()
    restore(ctx, uri, version)
    return Result.done()


def _target(tokens: Tokens) -> VersionRef:
    if tokens.accept("VERSION"):
        tokens.accept("AS", "OF")
        return tokens.version()
    if tokens.accept("TAG"):
        return tokens.name("tag name")
    if tokens.word() in ("TIMESTAMP", "TIMESTAMPTZ"):
        if tokens.word(1) == "AS" and tokens.word(2) == "OF":
            del tokens.tokens[tokens.pos + 1 : tokens.pos + 3]
        return tokens.version()
    raise tokens.error("VERSION n, TAG 'name' or TIMESTAMP '...'")


def restore(ctx: StatementContext, uri: str, version: VersionRef) -> int:
    """Commit a new version of ``uri`` with ``version``'s contents; its number."""
    catalog = ctx.catalog
    # Opening the version checks that it exists and was not removed by cleanup.
    number = catalog.open(TableRef(uri, version)).version
    # A handle of its own: restore() moves the handle it is called on, and the
    # catalog's cached handle of that version must keep reading that version.
    target = catalog.latest(uri).checkout_version(number)
    target.restore()
    restored = target.checkout_version(target.latest_version)
    catalog.refreshed(restored)
    ctx.commits.append((uri, int(restored.version)))
    return int(restored.version)
