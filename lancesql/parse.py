"""Parsing: lancesql's SQL into sqlglot trees.

lancesql speaks DuckDB's SQL plus a few forms of its own. sqlglot parses nearly all of
it; two forms are adjusted on the token stream first, where strings and comments are
already told apart from code, so nothing inside a literal is ever touched:

- ``AT (TAG => 'name')`` (which sqlglot refuses) becomes ``VERSION AS OF 'name'``;
- each ``?`` becomes ``$1``, ``$2``, ... in the order written, so that parameters keep
  their positions whatever the rewriter moves.
"""

from __future__ import annotations

from typing import NamedTuple

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from lancesql.errors import ProgrammingError

#: The dialect lancesql reads, whatever the engine.
DIALECT = "duckdb"
_TOKENIZER = DuckDB().tokenizer_class()


def tokenize(sql: str) -> list[Token]:
    """The tokens of ``sql``, or a ProgrammingError saying where it went wrong."""
    try:
        return _TOKENIZER.tokenize(sql)
    except TokenError as exc:
        raise ProgrammingError(f"SQL does not parse: {exc}") from None


def preprocess(sql: str) -> tuple[str, int]:
    """Rewrite lancesql's own token-level forms into SQL sqlglot parses; count the ``?``.

    >>> preprocess("SELECT * FROM t AT (TAG => 'v1') WHERE a = ? AND b = '?'")
    ("SELECT * FROM t VERSION AS OF 'v1' WHERE a = $1 AND b = '?'", 1)
    """
    tokens = tokenize(sql)
    edits: list[tuple[int, int, str]] = []
    count = 0
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.token_type == TokenType.PLACEHOLDER and tok.text == "?":
            count += 1
            edits.append((tok.start, tok.end + 1, f"${count}"))
        elif (
            tok.text.upper() == "AT"
            and i + 5 < len(tokens)
            and tokens[i + 1].token_type == TokenType.L_PAREN
            and tokens[i + 2].text.upper() == "TAG"
            and tokens[i + 3].token_type == TokenType.FARROW
            and tokens[i + 5].token_type == TokenType.R_PAREN
        ):
            value = sql[tokens[i + 4].start : tokens[i + 4].end + 1]
            edits.append((tok.start, tokens[i + 5].end + 1, f"VERSION AS OF {value}"))
            i += 5
        i += 1
    for start, end, text in reversed(edits):
        sql = sql[:start] + text + sql[end:]
    return sql, count


class Parsed(NamedTuple):
    """Parsed SQL: its statements, and how many ``?`` parameters they hold."""

    statements: list[exp.Expression]
    parameters: int


def parse(sql: str) -> Parsed:
    """Parse one or more statements; a syntax error names its line and column."""
    if not sql or not sql.strip():
        raise ProgrammingError("empty SQL: give a statement such as SELECT * FROM <table> LIMIT 5")
    text, count = preprocess(sql)
    try:
        trees = sqlglot.parse(text, read=DIALECT)
    except ParseError as exc:
        raise ProgrammingError(_describe(exc)) from None
    statements = [t for t in trees if isinstance(t, exp.Expression)]
    if not statements:
        raise ProgrammingError("empty SQL: give a statement such as SELECT * FROM <table> LIMIT 5")
    return Parsed(statements, count)


def _describe(exc: ParseError) -> str:
    if not exc.errors:
        return f"SQL does not parse: {exc}"
    err = exc.errors[0]
    desc = str(err.get("description", "")).split(" <Token")[0]
    near = (err.get("highlight") or "").strip()
    where = f"line {err.get('line')}, column {err.get('col')}"
    near_text = f" near {near!r}" if near else ""
    return f"SQL does not parse at {where}{near_text}: {desc}"
