"""Lance I/O from a forked DataLoader worker, through a helper process."""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import lance
import pyarrow as pa

from lancesql.connection import Connection, connect


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
    """

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from lancesql.training.helper import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

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


def serve() -> None:
    """The helper's loop: requests in on stdin, pickled results out on stdout."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    datasets: dict[tuple[str, int], lance.LanceDataset] = {}
    reader: Iterator[pa.RecordBatch] | None = None
    while True:
        try:
            op, args = pickle.load(stdin)
        except EOFError:
            return
        try:
            if op == "take":
                uri, version, options, ids, columns = args
                key = (uri, version)
                if key not in datasets:
                    datasets[key] = lance.dataset(uri, version=version, storage_options=options)
                result: Any = datasets[key]._take_rows(ids, columns=columns)
            elif op == "query":
                connect_args, sql, params = args
                reader = iter(
                    reconnect(*connect_args).cursor().execute(sql, params).fetch_record_batch()
                )
                result = None
            else:
                result = next(reader, None) if reader is not None else None
            reply: tuple[bool, Any] = (True, result)
        except Exception as exc:
            reply = (False, exc)
        try:
            data = pickle.dumps(reply, protocol=5)
        except Exception:  # an exception that does not pickle
            data = pickle.dumps(
                (False, OSError(f"{type(reply[1]).__name__}: {reply[1]}")), protocol=5
            )
        stdout.write(data)
        stdout.flush()
