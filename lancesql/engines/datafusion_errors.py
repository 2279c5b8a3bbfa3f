"""DataFusion's errors in the DB-API classes.

DataFusion raises plain exceptions (and pyarrow's when a result is read), so its errors
are known by their message. Kept apart from the adapter so that translating an error
never imports DataFusion itself.
"""

from __future__ import annotations

import re

from lancesql.errors import DataError, Error, NotSupportedError, OperationalError, ProgrammingError

_ERROR_PATTERNS: list[tuple[re.Pattern[str], type[Error]]] = [
    (re.compile(r"SQL error|ParserError|Schema error|Plan\(|Error during planning"), ProgrammingError),
    (re.compile(r"Cast error|Arrow error: (Cast|Invalid argument)|Compute error"), DataError),
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
