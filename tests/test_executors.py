"""Choosing the executor, and what a user sees without Ray installed (no cluster needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import lancesql
from lancesql.executors import executor_for
from tests.conftest import rows


def _executor(con: lancesql.Connection) -> str:
    cur = con.cursor()
    cur.execute("SELECT 1")
    from lancesql.context import StatementContext

    return executor_for(StatementContext(con, con.engine.cursor(con))).name


def test_local_is_the_default_and_every_way_of_choosing_works(
    mnist_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("lance_ray")
    with lancesql.connect(mnist_root) as con:
        assert _executor(con) == "local"
        con.execute("SET lancesql.executor = 'ray'")
        assert _executor(con) == "ray"
        con.execute("SET lancesql.executor = 'local'")
        assert _executor(con) == "local"
    with lancesql.connect(mnist_root, executor="ray://head:10001") as con:
        assert _executor(con) == "ray"
        assert rows(con, "SHOW lancesql") and ("lancesql.executor", "ray://head:10001") in [
            r[:2] for r in rows(con, "SHOW lancesql")
        ]
    monkeypatch.setenv("LANCESQL_EXECUTOR", "ray")
    with lancesql.connect(mnist_root) as con:
        assert _executor(con) == "ray"
        assert rows(con, "SELECT count(*) FROM mnist") == [(5000,)]  # reads stay local


def test_bad_executor_values(mnist_root: Path) -> None:
    with pytest.raises(lancesql.ProgrammingError, match=r"lancesql.executor.*'local', 'ray' or 'ray://"):
        lancesql.connect(mnist_root, executor="spark")
    with lancesql.connect(mnist_root) as con:
        with pytest.raises(lancesql.ProgrammingError, match=r"ray_gpus_per_task.*>= 0"):
            con.execute("SET lancesql.ray_gpus_per_task = -1")
        with pytest.raises(lancesql.ProgrammingError, match=r"lancesql\.executor"):
            con.execute("SET lancesql.executor = 'ray:/oops'")


def test_without_the_extra_a_clear_error_and_nothing_written(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a machine without `lancesql[ray]` sees: importing ray or lance_ray fails.
    monkeypatch.setitem(sys.modules, "lance_ray", None)
    with lancesql.connect(root, executor="ray") as con:
        version = rows(con, "SELECT max(version) FROM lance_versions('mnist')")[0][0]
        for sql in (
            "ALTER TABLE mnist ADD COLUMN c AS (label + 1)",
            "CREATE INDEX ON mnist USING BTREE (id)",
            "CREATE TABLE copy AS SELECT id, label FROM mnist WHERE label = 3",
        ):
            with pytest.raises(lancesql.NotSupportedError, match=r"pip install 'lancesql\[ray\]'"):
                con.execute(sql)
        assert rows(con, "SELECT max(version) FROM lance_versions('mnist')") == [(version,)]
        assert [r[0] for r in rows(con, "SHOW TABLES")] == ["mnist"]
        con.execute("SET lancesql.executor = 'local'")
        con.execute("ALTER TABLE mnist ADD COLUMN c AS (label + 1)")
        assert rows(con, "SELECT count(*) FROM mnist WHERE c = label + 1") == [(5000,)]
