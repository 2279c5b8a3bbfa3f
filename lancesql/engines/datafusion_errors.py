"""DataFusion's errors in the DB-API classes, and their messages in the user's terms.

DataFusion raises plain exceptions (and pyarrow's when a result is read), so its errors
are known by their message, whose cause sits inside DataFusion's own layers:
``Optimizer rule 'x' failed / caused by``, ``External error:``, ``Arrow error:``, and a
Python function's exception as ``PyErr { type: <class ...>, value: Cls('msg'), ... }``.
Kept apart from the adapter so that translating an error never imports DataFusion itself.
"""

from __future__ import annotations

import re

from lancesql.errors import DataError, Error, NotSupportedError, OperationalError, ProgrammingError

_ERROR_PATTERNS: list[tuple[re.Pattern[str], type[Error]]] = [
    (re.compile(r"SQL error|ParserError|Schema error|Plan\(|Error during planning"), ProgrammingError),
    (
        re.compile(r"Cast error|Arrow error: (Cast|Invalid argument)|Compute error|Divide by zero"),
        DataError,
    ),
    (re.compile(r"not implemented|NotImplemented|This feature is not implemented"), NotSupportedError),
    (re.compile(r"IO error|Object Store|ObjectStore"), OperationalError),
]


def classify_error(exc: BaseException) -> type[Error] | None:
    """The DB-API class of a DataFusion error, by its message (DataFusion raises plain
    exceptions, and pyarrow's when a result is read); None when no pattern matches."""
    message = str(exc)
    for pattern, cls in _ERROR_PATTERNS:
        if pattern.search(message):
            return cls
    return None


_LAYERS = re.compile(
    r"^(DataFusion error: |External error: |FFI error: |Execution error: |Arrow error: "
    r"|Error during planning: |Optimizer rule '[^']*' failed\s*caused by\s*|caused by\s*)+"
)
_PYERR = re.compile(
    r"PyErr \{ type: <class '[^']*'>, value: \w+\((['\"])(.*)\1\),? ?(traceback: .*)?\}", re.DOTALL
)


def clean_message(message: str, sql: str | None = None) -> str:
    """The part of a DataFusion message a user needs.

    >>> clean_message("Optimizer rule 'simplify_expressions' failed\\ncaused by\\n"
    ...               "Arrow error: Cast error: Cannot cast string 'abc' to value of Int32 type")
    "Cast error: Cannot cast string 'abc' to value of Int32 type"
    >>> clean_message("External error: Arrow error: Divide by zero error")
    'Divide by zero error'
    """
    text = _PYERR.sub(lambda m: m.group(2), message.strip())
    previous = None
    while previous != text:
        previous = text
        text = _LAYERS.sub("", text.strip())
    return text
