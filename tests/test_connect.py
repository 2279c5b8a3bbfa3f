"""Connecting: roots, engines, the dataset cache, and other writers' versions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lance
import pytest

import lancesql
from tests.conftest import rows


def test_connect_reads_every_dataset_under_the_root(con: lancesql.Connection) -> None:
    assert rows(con, "SHOW TABLES") == [("mnist", "table")]
    assert rows(con, "SELECT count(*) FROM mnist") == [(5000,)]


def test_connect_accepts_a_path_object_and_a_file_uri(mnist_root: Path, engine: str) -> None:
    for root in (mnist_root, f"file://{mnist_root}"):
        with lancesql.connect(root, engine=engine) as con:
            assert rows(con, "SELECT count(*) FROM mnist") == [(5000,)]


def test_a_root_that_does_not_exist_is_an_operational_error(tmp_path: Path) -> None:
    with pytest.raises(lancesql.OperationalError, match=r"does not exist.*mkdir"):
        lancesql.connect(tmp_path / "nope")


def test_an_unknown_engine_is_named_with_the_choices(mnist_root: Path) -> None:
    with pytest.raises(lancesql.ProgrammingError, match="duckdb, datafusion"):
        lancesql.connect(mnist_root, engine="sqlite")


def test_datasets_are_opened_once_per_connection(
    con: lancesql.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows(con, "SELECT count(*) FROM mnist")
    opened: list[str] = []
    real = lance.dataset

    def spy(uri, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(uri)
        return real(uri, *args, **kwargs)

    monkeypatch.setattr(lance, "dataset", spy)
    for _ in range(3):
        rows(con, "SELECT count(*) FROM mnist WHERE label = 1")
    assert opened == []


def test_a_version_written_by_another_process_is_seen_by_the_next_statement(root: Path, engine: str) -> None:
    with lancesql.connect(root, engine=engine) as con:
        cur = con.cursor()
        assert cur.execute("SELECT count(*) FROM mnist").fetchone() == (5000,)
        uri = str(root / "mnist.lance")
        script = (
            f"import lance; d = lance.dataset({uri!r}); "
            f"lance.write_dataset(d.to_table(limit=7), {uri!r}, mode='append')"
        )
        subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
        assert cur.execute("SELECT count(*) FROM mnist").fetchone() == (5007,)
        # the cached handle moved, not a fresh open: old versions still resolve through it
        assert cur.execute("SELECT count(*) FROM mnist AT (VERSION => 7)").fetchone() == (5000,)


def test_a_dataset_added_to_the_root_after_connecting_is_a_table(root: Path, engine: str) -> None:
    with lancesql.connect(root, engine=engine) as con:
        lance.write_dataset(lance.dataset(root / "mnist.lance").to_table(limit=3), root / "small.lance")
        assert rows(con, "SELECT count(*) FROM small") == [(3,)]
        assert rows(con, "SHOW TABLES") == [("mnist", "table"), ("small", "table")]
