"""Shared fixtures: the example MNIST dataset, and every test on both engines."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import lancesql  # noqa: E402
from examples import mnist  # noqa: E402

ENGINES = ["duckdb", "datafusion"]


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root holding ``mnist.lance`` (5,000 real digits, 4 appends, 3 index builds:
    versions 1..7) — read only: tests that write take :func:`root` instead."""
    root = tmp_path_factory.mktemp("mnist_root")
    mnist.build(root)
    return root


@pytest.fixture
def root(mnist_root: Path, tmp_path: Path) -> Path:
    """A private, writable copy of :func:`mnist_root`."""
    copy = tmp_path / "root"
    shutil.copytree(mnist_root, copy)
    return copy


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs once per engine."""
    return str(request.param)


@pytest.fixture
def con(mnist_root: Path, engine: str) -> Iterator[lancesql.Connection]:
    """A connection to the read-only MNIST root, on each engine."""
    with lancesql.connect(mnist_root, engine=engine) as connection:
        yield connection


@pytest.fixture
def wcon(root: Path, engine: str) -> Iterator[lancesql.Connection]:
    """A connection to a writable copy of the MNIST root, on each engine."""
    with lancesql.connect(root, engine=engine) as connection:
        yield connection


def fuzz_settings(default_examples: int) -> settings:
    """Hypothesis settings for the fuzzers: bounded, no deadline (engines warm up), no
    example database.

    By default (CI) the examples are derandomized: each run draws the same ones, which
    change only when a test or a generator does, so CI cannot fail by chance.
    ``LANCESQL_FUZZ_EXAMPLES=n`` is the longer local hunt: n examples, drawn at random
    each run; a failure prints the blob that replays it (``@reproduce_failure``).
    """
    hunting = "LANCESQL_FUZZ_EXAMPLES" in os.environ
    return settings(
        max_examples=int(os.environ.get("LANCESQL_FUZZ_EXAMPLES", str(default_examples))),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
        database=None,
        derandomize=not hunting,
        print_blob=hunting,
    )


@pytest.fixture(scope="module")
def both(mnist_root: Path) -> Iterator[dict[str, lancesql.Connection]]:
    """One read-only connection per engine, for differential tests."""
    cons = {e: lancesql.connect(mnist_root, engine=e) for e in ENGINES}
    yield cons
    for c in cons.values():
        c.close()


def rows(con: lancesql.Connection, sql: str, params: list | None = None) -> list[tuple]:
    """Every row of ``sql``."""
    return con.cursor().execute(sql, params).fetchall()


os.environ.setdefault("TQDM_DISABLE", "1")


def stop(server: subprocess.Popen[bytes], timeout: float) -> None:
    """Stop a server process a test started: terminate, then kill after ``timeout`` s."""
    server.terminate()
    try:
        server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
