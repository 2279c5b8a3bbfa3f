"""Parsing: lancesql's SQL into sqlglot trees.

Design notes: ``docs/ARCHITECTURE.md``, "Parsing lancesql's own forms".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ParseError, TokenError
from sqlglot.parsers.duckdb import DuckDBParser
from sqlglot.tokens import Token, TokenType

from lancesql.errors import ProgrammingError, caret


def _anonymous(name: str) -> Callable[[list[exp.Expression]], exp.Anonymous]:
    def build(args: list[exp.Expression]) -> exp.Anonymous:
        return exp.Anonymous(this=name, expressions=args)

    return build


class LanceSQL(DuckDB):
    """DuckDB's SQL, plus the statements lancesql runs itself that sqlglot cannot parse.

    Without this, ``RESTORE TABLE t TO VERSION 3`` is a ParseError (and so is ``X'00'``); with ``RESTORE``
    read as a command keyword it comes back as an ``exp.Command`` holding its raw text,
    like ``CREATE TAG``. A column named ``restore`` still parses as a column.

    ``vector_search(...)`` is lancesql's table function, not BigQuery's ``VECTOR_SEARCH``
    (which sqlglot knows, with seven fixed slots): it is read as a plain call, so it takes
    any number of positional and named arguments, in the order written.

    >>> tree = sqlglot.parse_one(
    ...     "SELECT * FROM vector_search('t', 'e', [1], 5, filter => 'a = 1', metric => 'cosine', "
    ...     "nprobes => 20, refine_factor => 10)", read=LanceSQL)
    >>> call = tree.find(exp.Table).this
    >>> type(call).__name__, len(call.expressions)
    ('Anonymous', 8)
    """

    class Parser(DuckDBParser):
        FUNCTIONS: ClassVar[dict[str, Any]] = {
            **DuckDBParser.FUNCTIONS,
            "VECTOR_SEARCH": _anonymous("vector_search"),
        }

    class Tokenizer(DuckDB.Tokenizer):
        KEYWORDS: ClassVar[dict[str, TokenType]] = {
            **DuckDB.Tokenizer.KEYWORDS,
            "RESTORE": TokenType.COMMAND,
        }
        #: ``X'00FF'``, a BLOB literal DuckDB and DataFusion both read (sqlglot's DuckDB does not).
        HEX_STRINGS: ClassVar[list[str | tuple[str, str]]] = [("x'", "'"), ("X'", "'")]


class _WordTokenizer(LanceSQL.Tokenizer):
    """lancesql's tokens, with a command's words kept one by one rather than folded
    into one string, so that ``?`` in ``RESTORE ... ?`` is numbered like any other and
    the statement handlers can parse commands from tokens."""

    COMMANDS: ClassVar[set[TokenType]] = set()


#: The dialect lancesql reads, whatever the engine.
DIALECT = LanceSQL
_DIALECT = LanceSQL()
_TOKENIZER = _WordTokenizer()
#: Tokens after which sqlglot's own tokenizer folds the rest of a statement into one
#: string (``_WordTokenizer`` does not): such text is tokenized again to be parsed.
_COMMANDS = frozenset(LanceSQL.Tokenizer.COMMANDS)


def tokenize(sql: str) -> list[Token]:
    """The tokens of ``sql``, or a ProgrammingError saying where it went wrong."""
    try:
        return _TOKENIZER.tokenize(sql)
    except TokenError as exc:
        raise ProgrammingError(f"SQL does not parse: {exc}") from None


def preprocess(sql: str) -> tuple[str, int]:
    """Rewrite lancesql's own token-level forms into SQL sqlglot parses; count the ``?``.

    >>> preprocess("SELECT * FROM t AT (TAG => 'v1') WHERE a = ? AND b = '?'")
    ("SELECT * FROM t AT (VERSION => 'v1') WHERE a = $1 AND b = '?'", 1)
    >>> preprocess("SELECT ?::FLOAT[2], ?")
    ('SELECT $1::FLOAT[2], $2', 2)
    >>> preprocess("FROM t AT (BRANCH => 'exp', VERSION => ?)")[0]
    "FROM t AT (VERSION => __lancesql_branch('exp', $1))"
    """
    edits, count, _ = _edits(tokenize(sql))
    return _apply(sql, edits), count


def _edits(tokens: list[Token]) -> tuple[list[tuple[int, int, str]], int, set[int] | None]:
    """The text edits :func:`preprocess` makes, the number of ``?``, and the tokens to
    read as ``VERSION`` (``AT (TAG => ...)``) when every edit can be made on the tokens
    (numbering a ``?`` or renaming a ``TAG``; None otherwise)."""
    edits: list[tuple[int, int, str]] = []
    count = 0
    renamed: set[int] | None = set()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.token_type == TokenType.PLACEHOLDER and tok.text == "?":
            count += 1
            edits.append((tok.start, tok.end + 1, f"${count}"))
        elif tok.token_type == TokenType.QDCOLON:  # ``?::FLOAT[512]`` is one token
            count += 1
            edits.append((tok.start, tok.end + 1, f"${count}::"))
        elif (
            tok.text.upper() == "AT"
            and i + 5 < len(tokens)
            and tokens[i + 1].token_type == TokenType.L_PAREN
            and tokens[i + 2].text.upper() == "TAG"
            and tokens[i + 3].token_type == TokenType.FARROW
            and tokens[i + 5].token_type == TokenType.R_PAREN
        ):
            tag = tokens[i + 2]
            edits.append((tag.start, tag.end + 1, "VERSION"))
            if renamed is not None:
                renamed.add(i + 2)
        elif tok.text.upper() == "AT" and (branch := _branch_clause(tokens, i)):
            edits.extend(branch)
            renamed = None
        i += 1
    return edits, count, renamed


def _apply(sql: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, text in sorted(edits, reverse=True):
        sql = sql[:start] + text + sql[end:]
    return sql


def _numbered(tokens: list[Token], renamed: set[int]) -> list[Token]:
    """``tokens`` with each ``?`` as the tokens of ``$n`` (what :func:`preprocess` writes),
    at the place of the ``?`` in the text, and the ``TAG`` at each index of ``renamed``
    read as ``VERSION``, so the parser need not tokenize again."""
    out: list[Token] = []
    count = 0
    for index, tok in enumerate(tokens):
        question = tok.token_type == TokenType.PLACEHOLDER and tok.text == "?"
        if question or tok.token_type == TokenType.QDCOLON:
            count += 1
            where = (tok.line, tok.col, tok.start, tok.start)
            out.append(Token(TokenType.PARAMETER, "$", *where))
            out.append(Token(TokenType.NUMBER, str(count), *where))
            if tok.token_type == TokenType.QDCOLON:
                out.append(Token(TokenType.DCOLON, "::", tok.line, tok.col, tok.start + 1, tok.end))
            out[-1].comments = tok.comments  # the comments after it, as on the text's last token
        elif index in renamed:
            version = Token(tok.token_type, "VERSION", tok.line, tok.col, tok.start, tok.end)
            version.comments = tok.comments
            out.append(version)
        else:
            out.append(tok)
    return out


#: The function ``AT (BRANCH => ...)`` is carried in, through sqlglot, to the rewriter.
BRANCH_MARK = "__lancesql_branch"


def _branch_clause(tokens: list[Token], i: int) -> list[tuple[int, int, str]]:
    """The edits that turn ``AT (BRANCH => b [, VERSION => v])`` at ``tokens[i]`` into
    ``AT (VERSION => __lancesql_branch(b [, v]))``; none for any other ``AT``."""
    def is_(k: int, kind: TokenType | None = None, word: str | None = None) -> bool:
        if k >= len(tokens):
            return False
        return (kind is None or tokens[k].token_type == kind) and (
            word is None or tokens[k].text.upper() == word
        )

    if not (
        is_(i + 1, TokenType.L_PAREN)
        and is_(i + 2, word="BRANCH")
        and is_(i + 3, TokenType.FARROW)
        and i + 4 < len(tokens)
    ):
        return []
    edits = [(tokens[i + 2].start, tokens[i + 4].start, f"VERSION => {BRANCH_MARK}(")]
    if is_(i + 5, TokenType.R_PAREN):
        close = i + 5
    elif is_(i + 5, TokenType.COMMA) and is_(i + 6, word="VERSION") and is_(i + 7, TokenType.FARROW):
        close = i + 9
        if not is_(close, TokenType.R_PAREN):
            return []
        edits.append((tokens[i + 5].start, tokens[i + 8].start, ", "))
    else:
        return []
    edits.append((tokens[close].start, tokens[close].start, ")"))
    return edits


class Parsed(NamedTuple):
    """Parsed SQL: its statements, and how many ``?`` parameters they hold."""

    statements: list[exp.Expression]
    parameters: int


def parse(sql: str) -> Parsed:
    """Parse one or more statements; a syntax error names its line and column.

    (The connection caches the result by text: see ``Connection.parse``.)
    """
    if not sql or not sql.strip():
        raise ProgrammingError("empty SQL: give a statement such as SELECT * FROM <table> LIMIT 5")
    tokens = tokenize(sql)
    edits, count, renamed = _edits(tokens)
    text = sql
    trees: list[exp.Expr | None] = []
    try:
        if renamed is not None and not any(t.token_type in _COMMANDS for t in tokens):
            # the tokens sqlglot would read from the edited text: parsed as they are
            trees = _DIALECT.parser().parse(_numbered(tokens, renamed), sql)
            if edits and any(isinstance(t, exp.Command) for t in trees):
                trees = []  # a command keeps its raw text: the edited text's
        if not trees:
            text = _apply(sql, edits)
            if count:
                # sqlglot 30 reads ``$1`` as the start of a ``$tag$`` string, and that
                # speculative scan fails on an escaped quote at the very end (``... = $1
                # AND s = ''``): a trailing space ends the text after the quote instead
                text += " "
            trees = sqlglot.parse(text, read=DIALECT)
    except ParseError as exc:
        raise ProgrammingError(_describe(exc, sql, text)) from None
    except TokenError as exc:
        raise ProgrammingError(f"SQL does not parse: {exc}") from None
    # a comment after the last ``;`` comes back as an empty ``Semicolon`` statement
    statements = [t for t in trees if isinstance(t, exp.Expression) and not isinstance(t, exp.Semicolon)]
    if not statements:
        raise ProgrammingError("empty SQL: give a statement such as SELECT * FROM <table> LIMIT 5")
    return Parsed(statements, count)


def _describe(exc: ParseError, sql: str, text: str) -> str:
    """A parse error in the user's terms: what is wrong, the fix where one is known,
    and the user's line with a caret under the place (``text`` is ``sql`` after
    :func:`preprocess`, whose positions sqlglot reports)."""
    if not exc.errors:
        return f"SQL does not parse: {exc}"
    err = exc.errors[0]
    desc = str(err.get("description", "")).split(" <Token")[0]
    near = (err.get("highlight") or "").strip()
    placeholder = _foreign_placeholder(sql)
    if placeholder:
        desc = (
            f"{placeholder} is not a parameter marker here: use ? for parameters "
            "(paramstyle is qmark), e.g. WHERE label = ? with [3]"
        )
    elif missing := re.match(r"Required keyword: '(\w+)' missing for <class '[\w.]*?(\w+)'>", desc):
        desc = f"{missing.group(2).upper()} is incomplete: a value or expression is missing after it"
    else:
        desc = re.sub(r"<class '[\w.]*?(\w+)'>", r"\1", desc)
    line, col = int(err.get("line") or 1), int(err.get("col") or 1)
    where = f"line {line}, column {col}"
    near_text = f" near {near!r}" if near and not placeholder else ""
    if placeholder:
        block = caret(sql, placeholder)
    elif text == sql and near:
        lines = sql.splitlines(keepends=True)
        start = sum(len(x) for x in lines[: line - 1]) + max(col - len(near), 0)
        block = caret(sql, near, start)
    else:
        block = caret(sql, near) if near else ""
    return f"SQL does not parse at {where}{near_text}: {desc}" + (f"\n{block}" if block else "")


def _foreign_placeholder(sql: str) -> str | None:
    """A parameter marker of another paramstyle (``%s``, ``%(name)s``, ``:name``) in code.

    >>> _foreign_placeholder("SELECT * FROM t WHERE a = %s AND b = '%s'")
    '%s'
    """
    for token in _TOKENIZER.tokenize(sql) if "%" in sql else []:
        if token.token_type == TokenType.MOD:
            following = sql[token.end + 1 : token.end + 3]
            if following.startswith("s"):
                return "%s"
            named = re.match(r"%\(\w*\)s", sql[token.start :])
            if named:
                return named.group(0)
    return None
