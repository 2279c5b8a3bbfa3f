"""``VACUUM t [RETAIN n VERSIONS | OLDER THAN INTERVAL '7 days'] [DRY RUN]``.

Every write leaves the files of older versions in place, so that time travel works;
VACUUM removes the versions that are older than the interval (7 days when none is
given, as Delta's VACUUM) or all but the newest ``n``, and the files only they used,
with Lance's ``cleanup_old_versions``. A tagged version is never removed, nor a
version a branch starts from (Lance keeps both), nor the newest version. ``DRY RUN``
removes nothing and lists what would go: one row per file, with its kind, its size
and, for a manifest, the version it is.

After VACUUM, reading a removed version is the catalog's OperationalError ("version
n ... was removed by cleanup"), in this connection and in any other that had that
version open: a connection checks that a pinned version's manifest is still there
before each statement that reads it. A query that is streaming rows of a version at
the moment it is removed can fail part way (an I/O error); tag a version to keep it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any

import pyarrow as pa
from sqlglot import exp
from sqlglot.tokens import TokenType

from lancesql.context import Result, StatementContext
from lancesql.errors import ProgrammingError
from lancesql.statements.base import command_tokens, statement
from lancesql.statements.grammar import Tokens
from lancesql.writes import committed, lance_error, open_target

#: How old a version must be for a plain VACUUM to remove it.
DEFAULT_AGE = dt.timedelta(days=7)

_UNITS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
}

VACUUM_SCHEMA = pa.schema(
    [
        pa.field("versions_removed", pa.int64()),
        pa.field("files_removed", pa.int64()),
        pa.field("bytes_removed", pa.int64()),
    ]
)

DRY_RUN_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string()),
        pa.field("path", pa.string()),
        pa.field("bytes", pa.int64()),
        pa.field("version", pa.int64()),
    ]
)


@statement(exp.Command)
def vacuum(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``VACUUM [TABLE] t [RETAIN n VERSIONS | OLDER THAN INTERVAL '...'] [DRY RUN]``."""
    tokens = Tokens(command_tokens(tree), ctx.params)  # type: ignore[arg-type]
    if not tokens.accept("VACUUM"):
        return None
    tokens.accept("TABLE")
    table = exp.Table(this=exp.to_identifier(tokens.table()))
    retain: int | None = None
    older: dt.timedelta | None = None
    if tokens.accept("RETAIN"):
        retain = _count(tokens)
        if not (tokens.accept("VERSIONS") or tokens.accept("VERSION")):
            raise tokens.error("VERSIONS")
    elif tokens.accept("OLDER", "THAN"):
        older = _interval(tokens)
    dry_run = tokens.accept("DRY", "RUN")
    tokens.end()
    if retain is None and older is None:
        older = DEFAULT_AGE
    uri, ds = open_target(ctx, table)
    name = ctx.catalog.name_of(uri)
    try:
        if dry_run:
            plan = ds.explain_cleanup_old_versions(
                older_than=older,
                retain_versions=retain,
                error_if_tagged_old_versions=False,
                include_files=True,
                max_files=100_000,
            )
            return Result.of(_listing(uri, plan.candidate_files))
        stats = ds.cleanup_old_versions(
            older_than=older, retain_versions=retain, error_if_tagged_old_versions=False
        )
    except (OSError, ValueError) as exc:
        raise lance_error(exc, f"VACUUM {name} failed") from exc
    committed(ctx, uri)  # cached handles of removed versions must not be used again
    files = (
        stats.data_files_removed
        + stats.transaction_files_removed
        + stats.index_files_removed
        + stats.deletion_files_removed
        + stats.old_versions  # each removed version's manifest
    )
    row = {
        "versions_removed": stats.old_versions,
        "files_removed": files,
        "bytes_removed": stats.bytes_removed,
    }
    return Result.of(pa.Table.from_pylist([row], schema=VACUUM_SCHEMA))


def _listing(uri: str, candidates: list[Any]) -> pa.Table:
    rows = []
    base = uri.rstrip("/").split("://", 1)[-1].lstrip("/")
    for candidate in candidates:
        path = str(candidate.path)
        relative = path.split(base, 1)[1].lstrip("/") if base and base in path else path
        version = None
        if candidate.kind == "manifest":
            stem = os.path.basename(path).split(".", 1)[0]
            if stem.isdigit():
                number = int(stem)
                version = 2**64 - 1 - number if number >= 2**63 else number
        rows.append(
            {"kind": candidate.kind, "path": relative, "bytes": candidate.size_bytes, "version": version}
        )
    rows.sort(key=lambda r: (r["version"] is None, r["version"] or 0, r["kind"], r["path"]))
    return pa.Table.from_pylist(rows, schema=DRY_RUN_SCHEMA)


def _count(tokens: Tokens) -> int:
    tok = tokens.peek()
    if tok is not None and tok.token_type == TokenType.NUMBER and tok.text.isdigit() and int(tok.text) > 0:
        tokens.pos += 1
        return int(tok.text)
    raise tokens.error("a number of versions to keep (1 or more)")


def _interval(tokens: Tokens) -> dt.timedelta:
    """``INTERVAL '7 days'``, ``INTERVAL 7 DAYS`` or ``'7 days'``."""
    tokens.accept("INTERVAL")
    tok = tokens.peek()
    if tok is None:
        raise tokens.error("an interval such as INTERVAL '7 days'")
    tokens.pos += 1
    text = tok.text
    if tok.token_type == TokenType.NUMBER and tokens.peek() is not None:
        text = f"{text} {tokens.peek().text}"  # type: ignore[union-attr]
        tokens.pos += 1
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+?)s?\s*", text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise ProgrammingError(
            f"bad interval {text!r}: write INTERVAL '7 days' (seconds, minutes, hours, days, weeks)"
        )
    return dt.timedelta(seconds=float(match.group(1)) * _UNITS[unit])
