"""Settings: one name, three places, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import lancesql
from tests.conftest import rows


def test_unknown_settings_are_programming_errors(mnist_root: Path) -> None:
    with pytest.raises(lancesql.ProgrammingError, match=r"unknown setting lancesql\.no_such"):
        lancesql.connect(mnist_root, settings={"no_such": 1})
    with (
        lancesql.connect(mnist_root) as con,
        pytest.raises(lancesql.ProgrammingError, match="the settings are"),
    ):
        con.execute("SET lancesql.no_such = 1")


def test_set_beats_connect_beats_environment(mnist_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANCESQL_VECTOR_SEARCH_EXACT_ROWS", "7")
    with lancesql.connect(mnist_root) as con:
        assert con.settings.get("vector_search_exact_rows") == 7
    with lancesql.connect(mnist_root, settings={"vector_search_exact_rows": 8}) as con:
        assert con.settings.get("lancesql.vector_search_exact_rows") == 8
        con.execute("SET lancesql.vector_search_exact_rows = 9")
        assert con.settings.get("vector_search_exact_rows") == 9
        got = dict((n, v) for n, v, _ in rows(con, "SHOW lancesql"))
        assert got["lancesql.vector_search_exact_rows"] == "9"
        con.execute("RESET lancesql.vector_search_exact_rows")
        assert con.settings.get("vector_search_exact_rows") == 8


def test_a_bad_value_says_what_was_expected(mnist_root: Path) -> None:
    with lancesql.connect(mnist_root) as con, pytest.raises(lancesql.ProgrammingError, match="bad value"):
        con.execute("SET lancesql.rewrite_order_by_distance = 'perhaps'")


def test_numbers_and_booleans_go_through_the_parser(mnist_root: Path) -> None:
    with lancesql.connect(mnist_root, settings={"vector_search_exact_rows": "12"}) as con:
        assert con.settings.get("vector_search_exact_rows") == 12
        con.execute("SET lancesql.vector_search_exact_rows = 3")
        assert con.settings.get("vector_search_exact_rows") == 3
        with pytest.raises(lancesql.ProgrammingError, match="bad value"):
            con.execute("SET lancesql.vector_search_exact_rows = 2.5")
        con.execute("SET lancesql.rewrite_order_by_distance = false")
        assert con.settings.get("rewrite_order_by_distance") is False


def test_datafusion_target_partitions_reach_new_cursors(mnist_root: Path) -> None:
    sql = "EXPLAIN SELECT label, count(*) FROM mnist GROUP BY label"
    for partitions, repartitioned in ((1, False), (4, True)):
        settings = {"datafusion_target_partitions": partitions}
        with lancesql.connect(mnist_root, engine="datafusion", settings=settings) as con:
            plan = dict(con.execute(sql).fetchall())["engine (datafusion)"]
            assert ("RepartitionExec: partitioning=Hash" in plan) == repartitioned, plan
            assert f"Hash([label@0], {partitions})" in plan or not repartitioned
