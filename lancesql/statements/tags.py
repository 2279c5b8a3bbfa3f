"""Tags, Iceberg style: ``ALTER TABLE t CREATE | REPLACE | DROP TAG``.

::

    ALTER TABLE t CREATE [OR REPLACE] TAG [IF NOT EXISTS] name [AS OF VERSION v]
    ALTER TABLE t REPLACE TAG name [AS OF VERSION v]
    ALTER TABLE t DROP TAG [IF EXISTS] name

``v`` is a version number, another tag (``'clip-v1'``), ``TIMESTAMP '...'`` or a ``?``
parameter; the latest version when omitted. A tag names a version and makes none, so
these statements commit no Lance version. Once made, a tag works wherever a version
does: ``AT (TAG => 'x')``, ``VERSION AS OF 'x'``, ``lance_scan(uri, 'x')``.

sqlglot keeps ``CREATE``/``REPLACE TAG`` as a raw command and ``DROP TAG`` as an
``ALTER`` whose action is a raw command; both are parsed here from tokens
(:mod:`lancesql.statements.grammar`). A tag name is one token (a string literal, a
quoted identifier or a bare word) and must also pass Lance's own rule for names
(letters, digits, ``.``, ``-``, ``_``), so no name can reach a path or a statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from lancesql.catalog import Catalog, TableRef, VersionRef, split_branch
from lancesql.context import Result, StatementContext
from lancesql.errors import IntegrityError, ProgrammingError
from lancesql.statements.base import command_tokens, statement
from lancesql.statements.grammar import Tokens

#: Longest tag name: Lance keeps each tag in a file named after it.
MAX_TAG_LENGTH = 200


def check_tag_name(name: str) -> str:
    """``name`` if Lance can store it as a tag, else a ProgrammingError saying why.

    ASCII only: Lance stores a tag in a file named after it, and a non-ASCII name can be
    created but not dropped again (its file name is percent-encoded twice on delete).

    >>> check_tag_name("clip-v1.2_final")
    'clip-v1.2_final'
    >>> check_tag_name("x'; DROP TABLE t --")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lancesql.errors.ProgrammingError: bad tag name "x'; DROP TABLE t --": use ASCII letters, ...
    """
    ok = (
        0 < len(name.encode()) <= MAX_TAG_LENGTH
        and all((c.isascii() and c.isalnum()) or c in "._-" for c in name)
        and not name.startswith(".")
        and not name.endswith((".", ".lock"))
        and ".." not in name
    )
    if not ok:
        if not name:
            raise ProgrammingError("a tag name cannot be empty")
        if len(name.encode()) > MAX_TAG_LENGTH:
            raise ProgrammingError(f"tag name is longer than {MAX_TAG_LENGTH} bytes")
        raise ProgrammingError(
            f"bad tag name {name!r}: use ASCII letters, digits, '.', '-' and '_' "
            "(not starting or ending with '.', no '..', not ending with '.lock')"
        )
    return name


def alter_command_text(tree: exp.Expression) -> str | None:
    """The text of an ``ALTER TABLE`` statement sqlglot kept raw (``CREATE TAG``,
    ``DROP TAG``, ``CREATE BRANCH``, ...), or None for any other statement."""
    if isinstance(tree, exp.Command):
        return command_tokens(tree)
    if isinstance(tree, exp.Alter):
        # DROP TAG parses as ALTER with a raw DROP command as its only action.
        actions = tree.args.get("actions") or []
        if (
            len(actions) == 1
            and isinstance(actions[0], exp.Command)
            and str(actions[0].this).upper() == "DROP"
        ):
            rest = actions[0].expression
            tail = rest.sql() if isinstance(rest, exp.Expression) else str(rest or "")
            return f"ALTER TABLE {tree.this.sql(dialect='duckdb')} DROP {tail}"
    return None


def alter_table_tokens(ctx: StatementContext, tree: exp.Expression) -> tuple[Tokens, int] | None:
    """The tokens of a raw ``ALTER TABLE t ...``, positioned after the table name, and
    where the name starts; None for any other statement."""
    text = alter_command_text(tree)
    if text is None:
        return None
    tokens = Tokens(text, ctx.params)
    if not tokens.accept("ALTER", "TABLE"):
        return None
    start = tokens.pos
    try:
        tokens.table()
    except ProgrammingError:  # a table form of some other ALTER statement
        return None
    return tokens, start


@statement(exp.Command, exp.Alter)
def alter_tag(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``ALTER TABLE t CREATE | REPLACE | DROP TAG ...``; any other ALTER is not ours."""
    found = alter_table_tokens(ctx, tree)
    if found is None:
        return None
    tokens, start = found
    action = [tokens.word(i) for i in range(4)]
    if not (
        action[:2] in (["CREATE", "TAG"], ["REPLACE", "TAG"], ["DROP", "TAG"])
        or action == ["CREATE", "OR", "REPLACE", "TAG"]
    ):
        return None
    tokens.pos = start
    table = tokens.table()
    catalog = ctx.catalog
    uri = catalog.resolve_uri(table)
    if tokens.accept("DROP", "TAG"):
        if_exists = tokens.accept("IF", "EXISTS")
        name = check_tag_name(tokens.name("tag name"))
        tokens.end()
        dropped = drop_tag(catalog, uri, name, if_exists)
        return Result.done(outcome=f"tag {name} dropped" if dropped else f"no tag {name} to drop")
    replace = tokens.accept("REPLACE", "TAG")
    create_or_replace = not replace and tokens.accept("CREATE", "OR", "REPLACE", "TAG")
    if not (replace or create_or_replace):
        tokens.expect("CREATE", "TAG")
    if_not_exists = not replace and tokens.accept("IF", "NOT", "EXISTS")
    name = check_tag_name(tokens.name("tag name"))
    version = _as_of(tokens)
    tokens.end()
    number = set_tag(
        catalog,
        uri,
        name,
        version,
        mode="replace" if replace else "upsert" if create_or_replace else "create",
        if_not_exists=if_not_exists,
    )
    if number is None:
        return Result.done(outcome=f"tag {name} already exists: kept")
    done = "moved to" if replace or (create_or_replace and number < 0) else "created at"
    return Result.done(outcome=f"tag {name} {done} version {abs(number)}")


def _as_of(tokens: Tokens) -> VersionRef:
    """``AS OF VERSION v`` or ``AS OF TIMESTAMP '...'``, or nothing (the latest version)."""
    if tokens.accept("AS", "OF", "VERSION"):
        return tokens.version()
    if tokens.word() == "AS" and tokens.word(1) == "OF" and tokens.word(2) in ("TIMESTAMP", "TIMESTAMPTZ"):
        tokens.pos += 2
        return tokens.version()
    return None


def set_tag(
    catalog: Catalog,
    uri: str,
    name: str,
    version: VersionRef,
    mode: str = "create",
    if_not_exists: bool = False,
) -> int | None:
    """Point tag ``name`` at ``version``: ``create`` a new tag, ``replace`` an existing
    one, or ``upsert`` either way. Returns the version, negated when an existing tag
    moved; None when ``if_not_exists`` kept an existing tag."""
    latest = catalog.latest(uri)
    table = catalog.name_of(uri)
    # Opening the version checks that it exists and was not removed by cleanup.
    opened = catalog.open(TableRef(uri, version), latest)
    number = opened.version
    # a tag names a version of one branch: the one this version is on
    reference = (split_branch(str(opened.uri).rstrip("/"))[1], number)
    # Lance refuses a duplicate or a missing tag itself: the tags are listed only to say so
    if mode == "replace":
        try:
            latest.tags.update(name, reference)
        except ValueError as exc:
            if not _missing(exc):
                raise
            raise ProgrammingError(
                f"table {table!r} has no tag {name!r} to replace (tags: {_listing(latest.tags.list())}); "
                f"create it with ALTER TABLE {table} CREATE TAG '{name}'"
            ) from None
        return -number
    try:
        latest.tags.create(name, reference)
        return number
    except ValueError as exc:
        if "already exists" not in str(exc):
            raise
        if mode == "create":
            if if_not_exists:
                return None
            tags = latest.tags.list()
            held = f"on version {tags[name]['version']}; " if name in tags else ""
            raise IntegrityError(
                f"table {table!r} already has tag {name!r} ({held}tags: {_listing(tags)}): "
                f"ALTER TABLE {table} REPLACE TAG '{name}' AS OF VERSION <n> moves it, "
                "CREATE TAG IF NOT EXISTS keeps it"
            ) from None
    latest.tags.update(name, reference)  # CREATE OR REPLACE of a tag that exists
    return -number


def _missing(exc: ValueError) -> bool:
    """Whether Lance refused a tag operation because the tag does not exist."""
    text = str(exc)
    return "does not exist" in text or "not found" in text.lower()


def drop_tag(catalog: Catalog, uri: str, name: str, if_exists: bool = False) -> bool:
    """Remove tag ``name``; the version it named stays. False when ``if_exists`` found none."""
    latest = catalog.latest(uri)
    try:
        latest.tags.delete(name)
    except ValueError as exc:
        if not _missing(exc):
            raise
        if if_exists:
            return False
        table = catalog.name_of(uri)
        tags = latest.tags.list()
        raise ProgrammingError(f"table {table!r} has no tag {name!r} (tags: {_listing(tags)})") from None
    return True


def _listing(tags: Mapping[str, Any]) -> str:
    return ", ".join(f"{t!r} (version {info['version']})" for t, info in sorted(tags.items())) or "none"
