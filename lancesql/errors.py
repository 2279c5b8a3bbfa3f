"""The PEP 249 exception hierarchy, and the translation of engine errors into it.

Every error a user can cause reaches them as one of these classes, with a message
that says what to do next. Engines raise their own types (``duckdb.Error``,
DataFusion's plain ``Exception``); :func:`translate` maps them here so that calling
code catches one hierarchy whatever the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pyarrow as pa
from lance.commit import CommitConflictError


class Warning(Exception):
    """Important warnings, such as data truncation."""


class Error(Exception):
    """Base class of every lancesql error."""


class InterfaceError(Error):
    """The interface was misused: a closed cursor or connection, say."""


class DatabaseError(Error):
    """An error related to the database."""


class DataError(DatabaseError):
    """A value could not be processed: a vector of the wrong length, a bad cast."""


class OperationalError(DatabaseError):
    """The database's operation failed: a missing root, a version removed by cleanup."""


class IntegrityError(DatabaseError):
    """Relational integrity is affected: a tag that already exists, a duplicate key."""


class InternalError(DatabaseError):
    """lancesql or an engine reached a state it should not: please report it."""


class ProgrammingError(DatabaseError):
    """The SQL is wrong: it does not parse, or names an unknown table, column or version."""


class NotSupportedError(DatabaseError):
    """The statement or call is not supported (``rollback()``, say)."""


#: How each engine's errors map to the classes above: a function from an engine's
#: exception to its class, or None when the exception is not that engine's. Each engine
#: adapter adds its own when imported (see ``lancesql/engines/``): those that know an
#: error by its class (DuckDB's) are asked before those that guess from its message
#: (DataFusion's, which have no classes of their own).
ERRORS_BY_CLASS: list[Callable[[BaseException], type[Error] | None]] = []
ERRORS_BY_MESSAGE: list[Callable[[BaseException], type[Error] | None]] = []


#: Errors that lancesql's SQL functions raised inside an engine, by message (see below).
_RAISED_IN_FUNCTIONS: dict[str, Error] = {}


def raised_in_function(exc: Error) -> None:
    """Remember ``exc``, raised by a SQL function while the engine ran it.

    Engines report a Python function's exception only as text inside their own error
    (DuckDB: ``... executing the UDF: NotSupportedError: msg``, DataFusion:
    ``PyErr { ..., value: NotSupportedError('msg') }``), so :func:`translate` looks for
    the remembered error's text in the engine's message and gives the user the
    original error, class and message, back.
    """
    if len(_RAISED_IN_FUNCTIONS) > 64:  # never consumed (an engine used directly): bounded
        _RAISED_IN_FUNCTIONS.clear()
    _RAISED_IN_FUNCTIONS[f"{type(exc).__name__}: {exc}"] = exc
    _RAISED_IN_FUNCTIONS[repr(exc)] = exc


def _from_function(message: str) -> Error | None:
    for text, err in list(_RAISED_IN_FUNCTIONS.items()):
        if text in message:
            for key in [k for k, v in _RAISED_IN_FUNCTIONS.items() if v is err]:
                _RAISED_IN_FUNCTIONS.pop(key, None)
            return err
    return None


#: Each engine's cleaning of its own messages (its prefixes, its wrappers, its copy of
#: the SQL it ran), added by the adapters in ``lancesql/engines/`` when imported: a
#: function from an engine's message to the part a user needs, given the user's SQL.
MESSAGE_CLEANERS: list[Callable[[str, str | None], str]] = []


def translate(exc: BaseException, sql: str | None = None) -> Error:
    """Return ``exc`` as an exception of the PEP 249 hierarchy, in the user's terms.

    The class says what went wrong; the message keeps what the engine or Lance said,
    without lancesql's insides (see :func:`in_user_terms`), and with a caret under
    the place in ``sql``, the user's statement, where it can be found.

    >>> translate(ValueError("boom")).__class__.__name__
    'DatabaseError'
    >>> print(translate(ValueError('Referenced column "nope" not found'), "SELECT nope FROM t"))
    Referenced column "nope" not found
    LINE 1: SELECT nope FROM t
                   ^^^^
    """
    if isinstance(exc, Error):
        if sql is not None and not getattr(exc, "_in_user_terms", False):
            message = in_user_terms(str(exc), sql, engine=False)
            if message != str(exc):
                err = type(exc)(message)
                err.__cause__ = exc.__cause__ or exc
                exc = err
            exc._in_user_terms = True  # type: ignore[attr-defined]
        return exc
    if _RAISED_IN_FUNCTIONS and (original := _from_function(str(exc))) is not None:
        return translate(original, sql)
    cls: type[Error] = DatabaseError
    for classify in (*ERRORS_BY_CLASS, *ERRORS_BY_MESSAGE):
        found = classify(exc)
        if found is not None:
            cls = found
            break
    if cls is DatabaseError and isinstance(exc, (pa.ArrowInvalid, pa.ArrowTypeError)):
        cls = DataError  # a value Arrow could not compute or convert
    err = cls(in_user_terms(_clean(str(exc)), sql))
    err._in_user_terms = True  # type: ignore[attr-defined]
    err.__cause__ = exc
    return err


def _clean(message: str) -> str:
    """Drop the engines' repeated prefixes ("DataFusion error: FFI error: ...")."""
    message = re.sub(r"^(DataFusion error: |External error: |FFI error: )+", "", message.strip())
    return message


#: lancesql's own names for what it registers on an engine (``__lancesql_0`` for the
#: first table function of a query, ``__lancesql_local`` for a backfill's rows).
_INTERNAL_AS = re.compile(r"\b__lancesql_\w+\s+AS\s+", re.IGNORECASE)
_INTERNAL = re.compile(r"\b__lancesql_\w+")
#: A Rust source location Lance or DataFusion appends (``, /home/.../src/io.rs:12:5``).
_RUST_PATH = re.compile(r",?\s*(at\s+)?(/[\w.~-]+)*/?[\w.-]+\.rs:\d+(:\d+)?")
#: A Python class as ``repr`` shows it (``<class 'sqlglot.expressions.query.Limit'>``).
_PY_CLASS = re.compile(r"<class '(?:[\w]+\.)*(\w+)'>")


def in_user_terms(message: str, sql: str | None = None, engine: bool = True) -> str:
    """``message`` without lancesql's insides, with a caret under its place in ``sql``.

    Engines see rewritten SQL: placeholder tables (``__lancesql_0 AS t``), lancesql's
    own helper tables, and a copy of that SQL in their messages. The user wrote none
    of it, so names become theirs, the engines' copies of the SQL go (see each
    adapter's cleaner in ``lancesql/engines/``; ``engine=False`` for lancesql's own
    messages, which have no engine's layers) and, when the message names something
    the statement holds, the user's own line is shown with a caret under it.

    >>> in_user_terms("Binder Error: column x not in __lancesql_0 AS train")
    'Binder Error: column x not in train'
    >>> in_user_terms("bad <class 'sqlglot.expressions.query.Limit'>")
    'bad Limit'
    """
    text = message.strip()
    for clean in MESSAGE_CLEANERS if engine else []:
        text = clean(text, sql)
    if sql:
        text = _as_written(text, sql)
    text = _INTERNAL_AS.sub("", text)
    text = _INTERNAL.sub("the table", text)
    text = _RUST_PATH.sub("", text)
    text = _PY_CLASS.sub(r"\1", text)
    if sql and "\nLINE " not in text and not text.startswith("LINE "):
        for name in _quoted_names(text):
            block = caret(sql, name)
            if block:
                text = f"{text}\n{block}"
                break
    return text.strip()


#: A function lancesql calls in place of what the user wrote (``ORDER BY
#: array_cosine_distance(col, q) LIMIT k`` runs as ``vector_search``), and what they wrote.
_CALLED_FOR = re.compile(r"^(vector_search)\(\)")
_DISTANCE_CALL = re.compile(
    r"\b(array_cosine_distance|array_distance|array_negative_inner_product)\s*\(", re.IGNORECASE
)


def _as_written(message: str, sql: str) -> str:
    """A message about a function lancesql called for the user speaks of what they wrote.

    >>> _as_written("vector_search(): the query vector has 3 values",
    ...             "SELECT id FROM t ORDER BY array_distance(e, [1, 2, 3]) LIMIT 3")
    'ORDER BY array_distance(e, ...): the query vector has 3 values'
    """
    called = _CALLED_FOR.match(message)
    if called is None or re.search(rf"\b{called.group(1)}\b", sql, re.IGNORECASE):
        return message
    written = _DISTANCE_CALL.search(sql)
    if written is None:
        return message
    argument = re.match(r"\s*([\w.\"]+)", sql[written.end() :])
    shown = f"{written.group(1)}({argument.group(1) + ', ' if argument else ''}...)"
    return f"ORDER BY {shown}{message[called.end() :]}"


def _quoted_names(message: str) -> Iterator[str]:
    """The names a message quotes (``"nope"``, ``'nope'``, ``named nope``), in order."""
    for match in re.finditer(r"\"([^\"]+)\"|'([^']+)'|named (\w+)", message):
        name = next(g for g in match.groups() if g)
        if "(" not in name and len(name) < 64:
            yield name.split(".")[-1]


def caret(sql: str, fragment: str, start: int | None = None) -> str:
    r"""The line of ``sql`` holding ``fragment`` (or offset ``start``), a caret under it.

    >>> print(caret("SELECT a,\n  nope FROM t", "nope"))
    LINE 2:   nope FROM t
              ^^^^
    >>> caret("SELECT a FROM t", "zzz")
    ''
    """
    if start is None:
        match = re.search(rf"(?<![\w.]){re.escape(fragment)}(?!\w)", sql, re.IGNORECASE)
        if match is None:
            return ""
        start = match.start()
    start = max(0, min(start, len(sql)))
    line_no = sql.count("\n", 0, start) + 1
    line_start = sql.rfind("\n", 0, start) + 1
    line_end = sql.find("\n", start)
    line = sql[line_start : line_end if line_end >= 0 else len(sql)]
    prefix = f"LINE {line_no}: "
    width = max(1, min(len(fragment), len(line) - (start - line_start)))
    return f"{prefix}{line}\n{' ' * (len(prefix) + start - line_start)}{'^' * width}"


def translating(reader: pa.RecordBatchReader, sql: str | None = None) -> pa.RecordBatchReader:
    """``reader``, whose errors while streaming arrive translated (:func:`translate`).

    An engine raises its own errors (DataFusion: ``pyarrow.lib.ArrowInvalid``) from the
    batch that fails, long after ``execute`` returned; a user reading the stream with
    ``read_all``, ``read_next_batch`` or a ``for`` loop gets a lancesql error instead.
    """

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        except Exception as exc:
            raise translate(exc, sql) from exc

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def is_conflict(exc: BaseException) -> bool:
    """Whether Lance refused a commit because another writer committed first.

    Lance rebases what it can (two appends both land; a delete or update after an
    append too); a commit it cannot rebase (a new column while rows were appended or
    deleted) fails whole, so the statement can simply run again on the new version.
    """
    return isinstance(exc, CommitConflictError) or (
        isinstance(exc, OSError) and "commit conflict" in str(exc).lower()
    )


def lance_error(exc: BaseException, what: str) -> Error:
    """A Lance error as a DB-API error whose message says which statement failed."""
    if isinstance(exc, Error):
        return exc
    text = str(exc).strip()
    # Lance appends the Rust source location of the error: users have no use for it.
    first = text.split(", /home/")[0].split(", src/")[0].strip()
    first = first.removeprefix("Invalid user input: ")
    message = f"{what}: {first}"
    if "cannot contain `.`" in first:  # an unaliased expression, named by the engine
        message += " (name each computed column with AS)"
    lowered = first.lower()
    cls: type[Error]
    if is_conflict(exc):
        cls = OperationalError
        message = (
            f"{what}: another writer committed to the table while this statement ran, and "
            f"the two changes cannot be combined; nothing was written: run the statement "
            f"again (Lance: {first})"
        )
    elif "already exists" in lowered or "duplicate" in lowered:
        cls = IntegrityError
    elif "cast" in lowered or "overflow" in lowered:
        cls = DataError
    elif (
        "not found" in lowered
        or "no field" in lowered
        or "does not exist" in lowered
        or "invalid user input" in text.lower()
        or "error during planning" in lowered
        or "not supported" in lowered
        or "lanceerror(schema)" in lowered
    ):
        cls = ProgrammingError
    elif isinstance(exc, OSError):
        cls = OperationalError
    else:
        cls = DatabaseError
    err = cls(message)
    err.__cause__ = exc
    return err
