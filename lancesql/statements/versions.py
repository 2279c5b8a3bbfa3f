"""``SHOW VERSIONS FROM t``, ``SHOW TAGS FROM t`` and ``SHOW INDEXES FROM t [AT (VERSION => n)]``.

Each gives the same table as its table function (``lance_versions``, ``lance_tags``,
``lance_indexes``), so that what a user reads with SHOW they can also join on.
sqlglot keeps these statements as raw commands; they are parsed here from tokens.
"""

from __future__ import annotations

from sqlglot import exp

from lancesql.catalog import TableRef, VersionRef
from lancesql.context import Result, StatementContext
from lancesql.errors import ProgrammingError
from lancesql.parse import BRANCH_MARK
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
    if not (tokens.word() == "SHOW" and tokens.word(1) in _WHAT and tokens.word(2) in ("FROM", "IN")):
        return None
    what = _WHAT[tokens.word(1) or ""]
    tokens.pos += 3
    name = tokens.table()
    version, branch = _at_version(tokens)
    if version is not None and what != "indexes":
        raise ProgrammingError(
            f"SHOW {what.upper()} lists every version: drop the version, or give only a "
            "branch (AT (BRANCH => 'name'))"
        )
    tokens.end()
    catalog = ctx.catalog
    uri = catalog.resolve_uri(name, branch)
    if what == "versions":
        return Result.of(versions_table(catalog.latest(uri)))
    if what == "tags":
        return Result.of(tags_table(catalog.latest(uri)))
    return Result.of(indexes_table(catalog.open(TableRef(uri, version))))


def _at_version(tokens: Tokens) -> tuple[VersionRef, str | None]:
    """``AT (VERSION => v)`` (``AT (TAG => 't')`` arrives as ``AT (VERSION => 't')``,
    ``AT (BRANCH => 'b' [, VERSION => v])`` as ``AT (VERSION => __lancesql_branch('b' [, v]))``)
    or ``VERSION AS OF v``, or nothing: the version and the branch."""
    if tokens.accept("AT", "(", "VERSION", "=>"):
        version: VersionRef = None
        branch = None
        if tokens.accept(BRANCH_MARK.upper(), "("):
            branch = tokens.name("branch name")
            if tokens.accept(","):
                version = tokens.version()
            tokens.expect(")")
        else:
            version = tokens.version()
        tokens.expect(")")
        return version, branch
    if tokens.accept("VERSION", "AS", "OF"):
        return tokens.version(), None
    return None, None
