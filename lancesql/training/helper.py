"""Lance I/O from a forked DataLoader worker, through a helper process."""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from lancesql.connection import Connection, connect
from lancesql.training import take_server


def reconnect(root: str, engine: str, storage_options: Any, settings: Any) -> Connection:
    """A connection like the one a dataset was made on, in another process."""
    return connect(root, engine, storage_options, settings=settings)


class LanceHelper:
    """A helper process that does Lance I/O for a forked DataLoader worker.

    Lance is not fork-safe: once its I/O runtime has started (and running the query
    started it), a forked child that touches Lance hangs. DataLoader forks its workers
    by default, and a forked worker keeps what spawn would lose (a ``transform`` that is
    a lambda, say), so rather than asking users for ``multiprocessing_context="spawn"``,
    each forked worker starts one fresh interpreter (a plain subprocess: DataLoader
    workers are daemons, which multiprocessing forbids to have children) and asks it
    for Arrow data over a pipe. It exits when the worker closes the pipe or dies.

    ``query=False`` (rows by id, the map-style dataset) runs :mod:`take_server` as a
    script, which imports Lance alone; ``query=True`` (a query's batches, the iterable
    form) imports lancesql to run the query.
    """

    def __init__(self, query: bool = False) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        if query:
            command = [sys.executable, "-c", "from lancesql.training.helper import serve; serve()"]
        else:
            command = [sys.executable, take_server.__file__]
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def call(self, op: str, *args: Any) -> Any:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        pickle.dump((op, args), self._proc.stdin, protocol=5)
        self._proc.stdin.flush()
        try:
            ok, value = pickle.load(self._proc.stdout)
        except EOFError:
            raise OSError(f"the Lance helper process exited (status {self._proc.wait()})") from None
        if not ok:
            raise value
        return value

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            self._proc.wait()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown
            self.close()


class Batches:
    """``query`` runs a query; each ``next`` then gives its next batch (None at the end)."""

    def __init__(self) -> None:
        self.reader: Iterator[pa.RecordBatch] | None = None

    def query(self, connect_args: Any, sql: str, params: Any) -> None:
        self.reader = iter(reconnect(*connect_args).cursor().execute(sql, params).fetch_record_batch())

    def next(self) -> pa.RecordBatch | None:
        return next(self.reader, None) if self.reader is not None else None


def serve() -> None:
    """The helper's loop for a query's batches (and rows by id)."""
    batches = Batches()
    take_server.serve({"take": take_server.Takes(), "query": batches.query, "next": batches.next})
