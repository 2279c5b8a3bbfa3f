"""The PEP 249 exception hierarchy, and the translation of engine errors into it.

Every error a user can cause reaches them as one of these classes, with a message
that says what to do next. Engines raise their own types (``duckdb.Error``,
DataFusion's plain ``Exception``); :func:`translate` maps them here so that calling
code catches one hierarchy whatever the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable

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


def translate(exc: BaseException) -> Error:
    """Return ``exc`` as an exception of the PEP 249 hierarchy, keeping its message.

    >>> translate(ValueError("boom")).__class__.__name__
    'DatabaseError'
    """
    if isinstance(exc, Error):
        return exc
    if _RAISED_IN_FUNCTIONS and (original := _from_function(str(exc))) is not None:
        return original
    cls: type[Error] = DatabaseError
    for classify in (*ERRORS_BY_CLASS, *ERRORS_BY_MESSAGE):
        found = classify(exc)
        if found is not None:
            cls = found
            break
    err = cls(_clean(str(exc)))
    err.__cause__ = exc
    return err


def _clean(message: str) -> str:
    """Drop the engines' repeated prefixes ("DataFusion error: FFI error: ...")."""
    message = re.sub(r"^(DataFusion error: |External error: |FFI error: )+", "", message.strip())
    return message


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
