"""A token cursor for the small statements lancesql parses itself.

sqlglot hands statements it has no grammar for (``ALTER TABLE t CREATE TAG ...``,
``SHOW VERSIONS FROM t``, ``RESTORE TABLE ...``) back as raw text. They are read here
from sqlglot's own tokens, by small recursive-descent parsers, never with a regular
expression over the text: a string literal is one token whatever it holds, so a quote,
a semicolon or a comment inside a tag name can never turn into SQL. Names are taken
only from a string literal, a double-quoted identifier or a bare word; anything else
is a ProgrammingError that says what was expected.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence
from typing import Any

from sqlglot.tokens import Token, TokenType

from lancesql.catalog import VersionRef
from lancesql.errors import ProgrammingError
from lancesql.parse import tokenize

_BARE = re.compile(r"^[^\W\d]\w*$")
_TIME_WORDS = ("TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMP_NS", "DATETIME")


@functools.lru_cache(maxsize=64)
def _tokens_of(sql: str) -> tuple[Token, ...]:
    """The tokens of ``sql`` but its semicolons, kept for the statement's other handlers
    (each handler of a raw command reads its tokens to see whether it is its own)."""
    return tuple(t for t in tokenize(sql) if t.token_type != TokenType.SEMICOLON)


class Tokens:
    """The tokens of one statement, consumed left to right.

    >>> t = Tokens("ALTER TABLE train CREATE TAG 'clip-v1' AS OF VERSION 3")
    >>> t.accept("ALTER", "TABLE"), t.table(), t.accept("CREATE", "TAG"), t.name("tag")
    (True, 'train', True, 'clip-v1')
    >>> t.expect("AS", "OF", "VERSION"); t.version(); t.end()
    3
    """

    def __init__(self, sql: str, params: Sequence[Any] = ()):
        self.sql = sql
        self.tokens: list[Token] = list(_tokens_of(sql))
        self.pos = 0
        self.params = params

    # -- looking -------------------------------------------------------------------------
    def peek(self, offset: int = 0) -> Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def word(self, offset: int = 0) -> str | None:
        """The upper-cased keyword at ``offset``; None for a literal, a quoted name, the end."""
        tok = self.peek(offset)
        if tok is None or tok.token_type in (
            TokenType.STRING,
            TokenType.IDENTIFIER,
            TokenType.NUMBER,
        ):
            return None
        return tok.text.upper()

    def at_end(self) -> bool:
        return self.pos >= len(self.tokens)

    # -- consuming -----------------------------------------------------------------------
    def accept(self, *words: str) -> bool:
        """Consume ``words`` if they come next (keywords, any case); else consume nothing."""
        if all(self.word(i) == w for i, w in enumerate(words)):
            self.pos += len(words)
            return True
        return False

    def expect(self, *words: str) -> None:
        """Consume ``words`` or raise a ProgrammingError naming what was found instead."""
        if not self.accept(*words):
            raise self.error(" ".join(words))

    def end(self) -> None:
        """Raise unless every token was consumed."""
        if not self.at_end():
            raise self.error("the end of the statement")

    def name(self, what: str) -> str:
        """A name: a string literal, a double-quoted identifier or a bare word."""
        tok = self.peek()
        if tok is not None and tok.token_type in (TokenType.STRING, TokenType.IDENTIFIER):
            self.pos += 1
            return tok.text
        if tok is not None and _BARE.match(tok.text) and tok.token_type != TokenType.PARAMETER:
            self.pos += 1
            return tok.text
        if (param := self._parameter()) is not None:
            if not isinstance(param, str):
                raise ProgrammingError(f"the {what} must be a string, got {param!r}")
            return param
        raise self.error(f"a {what} (a 'quoted string' or a name)")

    def table(self) -> str:
        """A table: a name, a ``"quoted name"`` or a ``'path/or/uri.lance'``."""
        return self.name("table name or dataset URI")

    def version(self) -> VersionRef:
        """A version: a number, a tag name (a string), ``TIMESTAMP '...'`` or a ``?`` parameter."""
        tok = self.peek()
        if tok is not None and tok.token_type == TokenType.NUMBER and tok.text.isdigit():
            self.pos += 1
            return int(tok.text)
        if tok is not None and tok.token_type == TokenType.STRING:
            self.pos += 1
            return tok.text
        if (
            self.word() in _TIME_WORDS
            and (nxt := self.peek(1)) is not None
            and nxt.token_type == TokenType.STRING
        ):
            self.pos += 2
            return _timestamp(nxt.text)
        if self.word() in _TIME_WORDS and self.word(1) == "$":
            self.pos += 1
            param = self._parameter()
            if isinstance(param, str):
                param = _timestamp(param)
            if not isinstance(param, dt.datetime):
                raise ProgrammingError(f"TIMESTAMP ? needs a datetime, got {param!r}")
            return param
        if (param := self._parameter()) is not None:
            if isinstance(param, bool) or not isinstance(param, (int, str, dt.datetime)):
                raise ProgrammingError(
                    f"a version must be a number, a tag name or a timestamp, not {param!r}"
                )
            return param
        raise self.error("a version (a number, a 'tag' or TIMESTAMP '...')")

    def _parameter(self) -> Any | None:
        """The value bound to a ``?`` (the parser numbered it ``$n``), if one comes next."""
        tok, nxt = self.peek(), self.peek(1)
        if tok is None or tok.token_type != TokenType.PARAMETER or nxt is None or not nxt.text.isdigit():
            return None
        index = int(nxt.text) - 1
        if index >= len(self.params):
            raise ProgrammingError(
                f"the statement has a parameter ${index + 1} but {len(self.params)} value(s) were given"
            )
        self.pos += 2
        return self.params[index]

    def error(self, expected: str) -> ProgrammingError:
        tok = self.peek()
        found = "the end of the statement" if tok is None else repr(tok.text)
        return ProgrammingError(f"{self.sql.strip()!r}: expected {expected}, found {found}")


def _timestamp(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise ProgrammingError(f"bad timestamp {text!r}: write it as 'YYYY-MM-DD HH:MM:SS'") from None
