"""Branches: ``CREATE | DROP BRANCH``, ``SHOW BRANCHES``, ``USE BRANCH``.

::

    ALTER TABLE t CREATE BRANCH [IF NOT EXISTS] 'exp'
        [AS OF VERSION v | AS OF TAG 'x' | AS OF BRANCH 'b' [VERSION v]]
    ALTER TABLE t DROP BRANCH [IF EXISTS] 'exp'
    SHOW BRANCHES FROM t
    USE BRANCH 'exp'            -- also SET lancesql.branch = 'exp'; USE BRANCH 'main' returns
    RESTORE TABLE t TO BRANCH 'exp'   -- refused: see restore_to_branch

A Lance branch is a line of versions of its own, started from a version of another
line; Lance keeps it inside the dataset, at ``<uri>/tree/<branch>``, where it opens,
reads and writes as a dataset of its own (tags and branches stay shared). So a branch
is, to lancesql, just that URI: the catalog hands it out for ``AT (BRANCH => 'exp')``,
``lance_scan('t', branch => 'exp')`` and, after ``USE BRANCH 'exp'``, for every bare
table name that has the branch, and every writing statement then writes there and
never to main. A version number on a branch counts on from the version it started at.

Creating a branch copies one manifest and makes no version on either line. A branch a
tag or another branch still starts from cannot be dropped (Lance refuses: drop those
first).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
from sqlglot import exp

from lancesql.catalog import MAIN, Catalog, TableRef, VersionRef, branch_uri, split_branch
from lancesql.context import Result, StatementContext
from lancesql.errors import IntegrityError, NotSupportedError, ProgrammingError
from lancesql.settings import declare
from lancesql.statements.base import command_tokens, statement
from lancesql.statements.grammar import Tokens
from lancesql.statements.tags import alter_table_tokens, check_tag_name
from lancesql.udfs.lance_versions import local_time
from lancesql.writes import check_writable, lance_error

BRANCHES_SCHEMA = pa.schema(
    [
        pa.field("branch", pa.string(), nullable=False),
        pa.field("parent_branch", pa.string()),
        pa.field("parent_version", pa.int64()),
        pa.field("created", pa.timestamp("us")),
        pa.field("latest_version", pa.int64()),
        pa.field("rows", pa.int64()),
    ]
)


def check_branch_name(name: str) -> str:
    """``name`` if Lance can keep it as a branch (the rule for tag names, and not ``main``).

    >>> check_branch_name("relabel-2")
    'relabel-2'
    >>> check_branch_name("main")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lancesql.errors.ProgrammingError: 'main' is every table's own line of versions, ...
    """
    if name == MAIN:
        raise ProgrammingError(
            "'main' is every table's own line of versions, not a branch: name the branch otherwise"
        )
    try:
        return check_tag_name(name)
    except ProgrammingError as exc:
        raise ProgrammingError(str(exc).replace("tag name", "branch name")) from None


def _branch_setting(text: str) -> str:
    return text if text == MAIN else check_branch_name(text)


declare(
    "branch",
    None,
    _branch_setting,
    "The branch that bare table names read and write (USE BRANCH 'name'); tables "
    "without that branch are read on main and refuse writes. 'main' or unset: main.",
)


# -- CREATE / DROP BRANCH -------------------------------------------------------------------
@statement(exp.Command, exp.Alter)
def alter_branch(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``ALTER TABLE t CREATE BRANCH ...`` and ``ALTER TABLE t DROP BRANCH ...``."""
    found = alter_table_tokens(ctx, tree)
    if found is None:
        return None
    tokens, start = found
    if [tokens.word(), tokens.word(1)] not in (["CREATE", "BRANCH"], ["DROP", "BRANCH"]):
        return None
    tokens.pos = start
    table = tokens.table()
    catalog = ctx.catalog
    uri = catalog.resolve_uri(table)
    check_writable(ctx, uri)
    if tokens.accept("DROP", "BRANCH"):
        if_exists = tokens.accept("IF", "EXISTS")
        name = check_branch_name(tokens.name("branch name"))
        tokens.end()
        drop_branch(catalog, uri, name, if_exists)
        return Result.done(outcome=f"branch {name} dropped")
    tokens.expect("CREATE", "BRANCH")
    if_not_exists = tokens.accept("IF", "NOT", "EXISTS")
    name = check_branch_name(tokens.name("branch name"))
    source: str | None = split_branch(uri)[1]
    version: VersionRef = None
    if tokens.accept("AS", "OF", "BRANCH"):
        source = tokens.name("branch name")
        if tokens.accept("VERSION"):
            version = tokens.version()
    elif tokens.accept("AS", "OF", "VERSION"):
        version = tokens.version()
    elif tokens.accept("AS", "OF", "TAG"):
        version = tokens.name("tag name")
    elif tokens.word() == "AS":
        raise tokens.error("AS OF VERSION v, AS OF TAG 'x' or AS OF BRANCH 'b' [VERSION v]")
    tokens.end()
    started = create_branch(catalog, uri, name, source, version, if_not_exists)
    if started is None:
        return Result.done(outcome=f"branch {name} already exists: kept")
    return Result.done(outcome=f"branch {name} created from {started[0] or 'main'} version {started[1]}")


def create_branch(
    catalog: Catalog,
    uri: str,
    name: str,
    source: str | None,
    version: VersionRef,
    if_not_exists: bool = False,
) -> tuple[str | None, int] | None:
    """Start branch ``name`` of the table at ``uri`` from ``version`` of branch ``source``
    (None: main; the latest version when ``version`` is None; a tag names its own branch).
    Returns the branch and version it started from; None when ``if_not_exists`` kept one."""
    base = split_branch(uri)[0]
    table = catalog.name_of(base)
    main = catalog.latest(base)
    if name in catalog.branches(base):
        if if_not_exists:
            return None
        raise IntegrityError(
            f"table {table!r} already has branch {name!r}: ALTER TABLE {table} DROP BRANCH "
            f"'{name}' first, or CREATE BRANCH IF NOT EXISTS to keep it"
        )
    if name in main.tags.list():
        raise ProgrammingError(
            f"table {table!r} has a tag named {name!r}: a branch and a tag of one table must "
            f"not share a name (AS OF '{name}' would be ambiguous); name the branch otherwise"
        )
    start_uri = catalog.branch_of(base, source) if source else base
    # Opening the version checks that it exists and was not removed by cleanup, and
    # finds the branch a tag points into.
    start = catalog.open(TableRef(start_uri, version))
    reference = (split_branch(str(start.uri).rstrip("/"))[1], int(start.version))
    try:
        main.create_branch(name, reference)
    except (OSError, ValueError) as exc:
        raise lance_error(exc, f"ALTER TABLE {table} CREATE BRANCH '{name}' failed") from exc
    return reference


def drop_branch(catalog: Catalog, uri: str, name: str, if_exists: bool = False) -> None:
    """Remove branch ``name`` and the versions only it holds."""
    base = split_branch(uri)[0]
    table = catalog.name_of(base)
    if name not in catalog.branches(base):
        if if_exists:
            return
        raise catalog.unknown_branch(base, name)
    main = catalog.latest(base)
    tags = sorted(t for t, info in main.tags.list().items() if info.get("branch") == name)
    if tags:
        raise IntegrityError(
            f"branch {name!r} of {table!r} has tags ({', '.join(repr(t) for t in tags)}): drop "
            f"them first (ALTER TABLE {table} DROP TAG '{tags[0]}')"
        )
    try:
        main.branches.delete(name)
    except (OSError, ValueError) as exc:
        text = str(exc)
        if "referenced by" in text:
            children = sorted(
                b for b, info in catalog.branches(base).items() if info.get("parent_branch") == name
            )
            raise IntegrityError(
                f"branch {name!r} of {table!r} is where other branches start "
                f"({', '.join(repr(c) for c in children) or 'see SHOW BRANCHES'}): drop them first"
            ) from exc
        raise lance_error(exc, f"ALTER TABLE {table} DROP BRANCH '{name}' failed") from exc
    catalog.forget(branch_uri(base, name))


# -- SHOW BRANCHES --------------------------------------------------------------------------
@statement(exp.Command)
def show_branches(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``SHOW BRANCHES FROM|IN t``: main and each branch, where it started, how far it got."""
    tokens = Tokens(command_tokens(tree), ctx.params)  # type: ignore[arg-type]
    if not (tokens.word() == "SHOW" and tokens.word(1) == "BRANCHES" and tokens.word(2) in ("FROM", "IN")):
        return None
    tokens.pos += 3
    base = split_branch(ctx.catalog.resolve_uri(tokens.table()))[0]
    tokens.end()
    return Result.of(branches_table(ctx.catalog, base))


def branches_table(catalog: Catalog, base: str) -> pa.Table:
    """One row for main and one per branch of the table at ``base``."""
    main = catalog.latest(base)
    first = min(main.versions(), key=lambda v: v["version"])
    rows: list[dict[str, Any]] = [
        {
            "branch": MAIN,
            "parent_branch": None,
            "parent_version": None,
            "created": local_time(first["timestamp"]),
            "latest_version": main.version,
            "rows": main.count_rows(),
        }
    ]
    for name, info in sorted(catalog.branches(base).items()):
        head = catalog.latest(branch_uri(base, name))
        created = info.get("create_at")
        rows.append(
            {
                "branch": name,
                "parent_branch": info.get("parent_branch") or MAIN,
                "parent_version": info.get("parent_version"),
                "created": dt.datetime.fromtimestamp(created) if isinstance(created, (int, float)) else None,
                "latest_version": head.version,
                "rows": head.count_rows(),
            }
        )
    return pa.Table.from_pylist(rows, schema=BRANCHES_SCHEMA)


# -- USE BRANCH / SET lancesql.branch -------------------------------------------------------
@statement(exp.Use)
def use_branch(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``USE BRANCH 'exp'`` (sqlglot reads it as USE of a table ``BRANCH`` aliased ``exp``)."""
    target = tree.this
    if not (isinstance(target, exp.Table) and target.name.upper() == "BRANCH" and target.alias):
        return None
    switch_branch(ctx, target.alias)
    return Result.done(outcome=f"using branch {target.alias}")


@statement(exp.Set)
def set_branch(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``SET lancesql.branch = 'exp'``: checked as USE BRANCH is; other SETs are not ours."""
    items = tree.expressions
    if len(items) != 1 or not isinstance(items[0].this, exp.EQ):
        return None
    target, value = items[0].this.this, items[0].this.expression
    if not (isinstance(target, exp.Column) and target.table == "lancesql" and target.name == "branch"):
        return None
    if isinstance(value, (exp.Literal, exp.Var)) or (isinstance(value, exp.Column) and not value.table):
        switch_branch(ctx, value.name)
        return Result.done(outcome=f"using branch {value.name}")
    return None  # a parameter or an expression: the SET handler evaluates and checks it


def switch_branch(ctx: StatementContext, name: str) -> None:
    """Send bare table names to branch ``name`` from now on (``main``: back to main).

    The name must be a branch of at least one table under the root, so that a typo is
    an error rather than a silent read of main.
    """
    if name != MAIN:
        check_branch_name(name)
        catalog = ctx.catalog
        found: set[str] = set()
        for table in catalog.table_names():
            uri = catalog.uri_for(table)
            if catalog.has_branch(uri, name):
                break
            found.update(catalog.branches(uri))
        else:
            known = ", ".join(repr(b) for b in sorted(found)) or "none"
            raise ProgrammingError(
                f"no table under the root has branch {name!r} (branches: 'main', {known}); "
                f"create it with ALTER TABLE t CREATE BRANCH '{name}'"
            )
    ctx.settings.set("branch", name)


# -- RESTORE ... TO BRANCH ------------------------------------------------------------------
@statement(exp.Command)
def restore_to_branch(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``RESTORE TABLE t TO BRANCH 'exp'``: refused, with the statement that does it.

    Lance 14 cannot make a branch's state main's newest version: its restore commits a
    version of the same line, and a manifest on main cannot refer to a branch's files.
    A MERGE INTO main from the branch copies the branch's changes over in one version.
    """
    tokens = Tokens(command_tokens(tree), ctx.params)  # type: ignore[arg-type]
    if not tokens.accept("RESTORE"):
        return None
    tokens.accept("TABLE")
    table = tokens.table()
    if not tokens.accept("TO", "BRANCH"):
        return None
    name = tokens.name("branch name")
    tokens.end()
    catalog = ctx.catalog
    catalog.branch_of(catalog.resolve_uri(table), name)  # an unknown branch says so first
    raise NotSupportedError(
        f"Lance cannot make branch {name!r} the newest version of main. Copy its changes over "
        f"in one version instead, joining on the table's key (here 'id'): MERGE INTO {table} "
        f"USING (SELECT * FROM {table} AT (BRANCH => '{name}')) AS s ON {table}.id = s.id "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT * "
        "WHEN NOT MATCHED BY SOURCE THEN DELETE (USE BRANCH 'main' first; a column the "
        "branch added needs ALTER TABLE ... ADD COLUMN on main first)"
    )
