"""The rows of a Lance dataset by row id, for a forked DataLoader worker, over a pipe.

Run as a script (``python take_server.py``), so that the helper process a worker starts
imports only Lance and Arrow, not lancesql and its engines: a worker's first batch then
waits about half as long. :mod:`lancesql.training.helper` starts it and serves a
query's batches the same way (:func:`serve` with more handlers).
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable
from typing import Any

import lance

#: A request's handler: its arguments in, the reply's value out.
Handler = Callable[..., Any]


class Takes:
    """``take``: rows by row id, keeping each dataset open for the next request."""

    def __init__(self) -> None:
        self.datasets: dict[tuple[str, int], lance.LanceDataset] = {}

    def __call__(self, uri: str, version: int, options: Any, ids: Any, columns: Any) -> Any:
        key = (uri, version)
        if key not in self.datasets:
            self.datasets[key] = lance.dataset(uri, version=version, storage_options=options)
        return self.datasets[key]._take_rows(ids, columns=columns)


def serve(handlers: dict[str, Handler]) -> None:
    """The helper's loop: ``(op, args)`` requests in on stdin, pickled ``(ok, value)``
    replies out on stdout, until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            op, args = pickle.load(stdin)
        except EOFError:
            return
        try:
            reply: tuple[bool, Any] = (True, handlers[op](*args))
        except Exception as exc:
            reply = (False, exc)
        try:
            data = pickle.dumps(reply, protocol=5)
        except Exception:  # an exception that does not pickle
            data = pickle.dumps((False, OSError(f"{type(reply[1]).__name__}: {reply[1]}")), protocol=5)
        stdout.write(data)
        stdout.flush()


if __name__ == "__main__":
    serve({"take": Takes()})
