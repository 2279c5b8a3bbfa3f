"""``SHOW VERSIONS FROM t``, ``SHOW TAGS FROM t`` and ``SHOW INDEXES FROM t [AT (VERSION => n)]``.

Each gives the same table as its table function (``lance_versions``, ``lance_tags``,
``lance_indexes``), so that what a user reads with SHOW they can also join on.
sqlglot keeps these statements as raw commands; they are parsed here from tokens.
"""

from __future__ import annotations

from sqlglot import exp

from lancesql.catalog import TableRef, VersionRef
from lancesql.context import Result, StatementContext
from lancesql.statements.base import command_tokens, statement
from lancesql.statements.grammar import Tokens
from lancesql.udfs.lance_versions import indexes_table, tags_table, versions_table

_WHAT = {
    "VERSIONS": "versions",
    "TAGS": "tags",
    "INDEXES": "indexes",
    "INDEX": "indexes",
    "INDICES": "indexes",
}


@statement(exp.Command)
def show_history(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``SHOW VERSIONS|TAGS|INDEXES FROM|IN <table>``; other SHOW commands are not ours."""
    text = command_tokens(tree)  # type: ignore[arg-type]
    tokens = Tokens(text, ctx.params)
    if not (
        tokens.word() == "SHOW" and tokens.word(1) in _WHAT and tokens.word(2) in ("FROM", "IN")
    ):
        return None
    what = _WHAT[tokens.word(1) or ""]
    tokens.pos += 3
    name = tokens.table()
    version: VersionRef = None
    if what == "indexes":
        version = _at_version(tokens)
    tokens.end()
    catalog = ctx.catalog
    uri = catalog.resolve_uri(name)
    if what == "versions":
        return Result.of(versions_table(catalog.latest(uri)))
    if what == "tags":
        return Result.of(tags_table(catalog.latest(uri)))
    return Result.of(indexes_table(catalog.open(TableRef(uri, version))))


def _at_version(tokens: Tokens) -> VersionRef:
    """``AT (VERSION => v)`` (``AT (TAG => 't')`` arrives as ``AT (VERSION => 't')``) or
    ``VERSION AS OF v``, or nothing."""
    if tokens.accept("AT", "(", "VERSION", "=>"):
        version = tokens.version()
        tokens.expect(")")
        return version
    if tokens.accept("VERSION", "AS", "OF"):
        return tokens.version()
    return None
