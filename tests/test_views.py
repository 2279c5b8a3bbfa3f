"""CREATE [OR REPLACE] [TEMP] VIEW, DROP VIEW, SHOW TABLES with views (issue 12: CREATE
VIEW returned without error and did nothing) — on both engines, against DuckDB itself
over the same rows as the oracle."""

from __future__ import annotations

from pathlib import Path

import duckdb
import lance
import pytest

import lancesql
from tests.conftest import rows

VIEW = "SELECT id, label FROM mnist WHERE label IN (3, 5)"


def plain(root: Path, sql: str) -> list[tuple]:
    """The oracle: DuckDB with the view written out, over the table as Arrow."""
    db = duckdb.connect()
    db.register("mnist", lance.dataset(root / "mnist.lance").to_table(columns=["id", "label"]))
    db.execute(f"CREATE VIEW threes AS {VIEW}")
    return sorted(db.sql(sql).fetchall())


def test_a_view_is_stored_under_the_root_for_every_connection(root: Path, engine: str) -> None:
    with lancesql.connect(root, engine=engine) as one:
        one.execute(f"CREATE VIEW threes AS {VIEW}")
    for other_engine in ("duckdb", "datafusion"):
        with lancesql.connect(root, engine=other_engine) as two:
            for sql in (
                "SELECT label, count(*) FROM threes GROUP BY label",
                "SELECT t.id FROM threes AS t JOIN mnist USING (id) WHERE t.label = 5 AND t.id < 200",
                "SELECT id FROM threes WHERE id < 100 LIMIT 1000",
            ):
                assert sorted(rows(two, sql)) == plain(root, sql), (other_engine, sql)
            assert ("threes", "view") in rows(two, "SHOW TABLES")
            assert rows(two, "DESCRIBE threes")[0][:2] == ("id", "int64")
    assert (root / "_views.lance").is_dir()
    assert "_views" not in [r[0] for r in rows(lancesql.connect(root), "SHOW TABLES")]


def test_time_travel_and_search_work_inside_a_view(wcon: lancesql.Connection, root: Path) -> None:
    wcon.execute("CREATE VIEW first AS SELECT id, label FROM mnist AT (VERSION => 1)")
    expected = lance.dataset(root / "mnist.lance", version=1).count_rows()
    assert rows(wcon, "SELECT count(*) FROM first") == [(expected,)]
    wcon.execute(
        "CREATE VIEW near AS SELECT id, _distance FROM vector_search('mnist', 'image_emb', "
        "(SELECT image_emb FROM mnist WHERE id = 42), 5, filter => 'label = 3')"
    )
    got = rows(wcon, "SELECT id FROM near ORDER BY _distance")
    assert len(got) == 5
    labels = dict(rows(wcon, "SELECT id, label FROM mnist WHERE id IN (SELECT id FROM near)"))
    assert set(labels.values()) == {3}


def test_temp_view_belongs_to_the_connection(root: Path, engine: str) -> None:
    with lancesql.connect(root, engine=engine) as one, lancesql.connect(root, engine=engine) as two:
        one.execute(f"CREATE TEMP VIEW threes AS {VIEW}")
        assert sorted(rows(one, "SELECT id FROM threes")) == plain(root, "SELECT id FROM threes")
        assert ("threes", "temporary view") in rows(one, "SHOW TABLES")
        with pytest.raises(lancesql.ProgrammingError, match="threes"):
            two.execute("SELECT * FROM threes")
        one.execute("CREATE OR REPLACE TEMP VIEW threes AS SELECT 1 AS id")
        assert rows(one, "SELECT id FROM threes") == [(1,)]
        one.execute("DROP VIEW threes")
        with pytest.raises(lancesql.ProgrammingError, match="threes"):
            one.execute("SELECT * FROM threes")
    assert not (root / "_views.lance").exists()


def test_view_errors(wcon: lancesql.Connection, root: Path) -> None:
    wcon.execute(f"CREATE VIEW threes AS {VIEW}")
    with pytest.raises(lancesql.ProgrammingError, match=r"already exists.*OR REPLACE"):
        wcon.execute("CREATE VIEW threes AS SELECT 1")
    wcon.execute("CREATE VIEW IF NOT EXISTS threes AS SELECT 1")
    with pytest.raises(lancesql.ProgrammingError, match="'mnist' is a table"):
        wcon.execute("CREATE VIEW mnist AS SELECT 1")
    with pytest.raises(lancesql.ProgrammingError, match="'threes' is a view"):
        wcon.execute("CREATE TABLE threes AS SELECT 1 AS x")
    with pytest.raises(lancesql.ProgrammingError, match="unknown view 'nope'"):
        wcon.execute("DROP VIEW nope")
    with pytest.raises(lancesql.ProgrammingError, match="it is a table"):
        wcon.execute("DROP VIEW mnist")
    with pytest.raises(lancesql.ProgrammingError, match="nope"):
        wcon.execute("CREATE VIEW broken AS SELECT * FROM nope")  # checked when created
    with pytest.raises(lancesql.ProgrammingError, match="no versions"):
        wcon.execute("SELECT * FROM threes AT (VERSION => 1)")
    wcon.execute("DROP VIEW IF EXISTS nope")
    wcon.execute("CREATE OR REPLACE VIEW threes AS SELECT 7 AS id")
    assert rows(wcon, "SELECT * FROM threes") == [(7,)]
    wcon.execute("DROP VIEW threes")
    assert [r for r in rows(wcon, "SHOW TABLES") if r[1] != "table"] == []
