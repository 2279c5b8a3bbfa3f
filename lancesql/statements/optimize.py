"""``OPTIMIZE t [WITH (target_rows_per_fragment = n, ...)]``: compact, then re-index.

Many small appends leave many small fragments, and rows appended after an index was
built are searched by brute force until the index covers them. OPTIMIZE runs Lance's
``compact_files`` (small fragments rewritten into fewer, deleted rows dropped; indices
remapped) and then ``optimize_indices`` (the rows no index covers yet are added to
every index), and returns one row saying what it did: fragments before and after,
files rewritten, rows newly indexed, and the version it left.

Lance commits each step as it goes: the compaction (and, when indices cover the
rewritten fragments, their remapping as a version of its own), then the re-indexing;
so OPTIMIZE makes up to three versions, none when there is nothing to do, and each is
a whole, readable state of the table. A crash between them leaves a compacted table
whose indices the next OPTIMIZE brings up to date. With ``executor = 'ray'`` the
compaction tasks run on Ray workers (lance-ray), committed once by the driver. Query results are the same
before and after, and old versions still read (until VACUUM removes them). The WITH
options are Lance's compaction options (``target_rows_per_fragment``,
``max_rows_per_group``, ``max_bytes_per_file``, ``materialize_deletions``,
``materialize_deletions_threshold``, ``num_threads``).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from sqlglot import exp
from sqlglot.tokens import TokenType

from lancesql.context import Result, StatementContext
from lancesql.errors import Error, ProgrammingError
from lancesql.executors import executor_for
from lancesql.statements.base import command_tokens, statement
from lancesql.statements.grammar import Tokens
from lancesql.udfs.lance_versions import indexes_table
from lancesql.writes import committed, lance_error, open_target

#: The options OPTIMIZE takes, and the Python type of each.
OPTIONS: dict[str, type] = {
    "target_rows_per_fragment": int,
    "max_rows_per_group": int,
    "max_bytes_per_file": int,
    "materialize_deletions": bool,
    "materialize_deletions_threshold": float,
    "num_threads": int,
}

OPTIMIZE_SCHEMA = pa.schema(
    [
        pa.field("fragments_before", pa.int64()),
        pa.field("fragments_after", pa.int64()),
        pa.field("files_removed", pa.int64()),
        pa.field("files_added", pa.int64()),
        pa.field("rows_newly_indexed", pa.int64()),
        pa.field("version", pa.int64()),
    ]
)


@statement(exp.Command)
def optimize(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``OPTIMIZE [TABLE] t [WITH (option = value, ...)]``."""
    tokens = Tokens(command_tokens(tree), ctx.params)  # type: ignore[arg-type]
    if not tokens.accept("OPTIMIZE"):
        return None
    tokens.accept("TABLE")
    table = exp.Table(this=exp.to_identifier(tokens.table()))
    options = _options(tokens)
    tokens.end()
    uri, ds = open_target(ctx, table)
    name = ctx.catalog.name_of(uri)
    before = len(ds.get_fragments())
    unindexed = _unindexed(ds)
    try:
        metrics = executor_for(ctx).optimize(ctx, ds, options)
    except (OSError, ValueError) as exc:
        committed(ctx, uri)
        raise lance_error(exc, f"OPTIMIZE {name} failed") from exc
    except Error:
        committed(ctx, uri)
        raise
    committed(ctx, uri, ds)
    return Result.of(
        pa.Table.from_pylist(
            [
                {
                    "fragments_before": before,
                    "fragments_after": len(ds.get_fragments()),
                    "files_removed": metrics.files_removed,
                    "files_added": metrics.files_added,
                    "rows_newly_indexed": max(0, unindexed - _unindexed(ds)),
                    "version": ds.version,
                }
            ],
            schema=OPTIMIZE_SCHEMA,
        )
    )


def _unindexed(ds: Any) -> int:
    """Rows that some index does not cover yet, summed over the indices."""
    table = indexes_table(ds)
    return int(sum(v or 0 for v in table.column("rows_unindexed").to_pylist()))


def _options(tokens: Tokens) -> dict[str, Any]:
    """``WITH (name = value, ...)``, checked against :data:`OPTIONS`."""
    if not tokens.accept("WITH"):
        return {}
    tokens.expect("(")
    options: dict[str, Any] = {}
    while True:
        key = tokens.name("option name").lower()
        if key not in OPTIONS:
            raise ProgrammingError(f"OPTIMIZE has no option {key!r}; its options are {', '.join(OPTIONS)}")
        tokens.expect("=")
        options[key] = _value(tokens, key, OPTIONS[key])
        if tokens.accept(")"):
            return options
        tokens.expect(",")


def _value(tokens: Tokens, key: str, kind: type) -> Any:
    tok = tokens.peek()
    if tok is None:
        raise tokens.error(f"a value for {key}")
    tokens.pos += 1
    text = tok.text
    if kind is bool:
        if text.upper() in ("TRUE", "FALSE"):
            return text.upper() == "TRUE"
    elif tok.token_type == TokenType.NUMBER:
        value = kind(text) if kind is float else int(text) if text.isdigit() else None
        if value is not None and value > 0:
            return value
    raise ProgrammingError(
        f"OPTIMIZE option {key} takes a positive {'number' if kind is not bool else 'TRUE or FALSE'}, "
        f"not {text}"
    )
