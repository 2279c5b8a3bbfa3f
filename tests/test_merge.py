"""MERGE INTO on both engines. Oracle: a plain-Python model of the SQL standard's MERGE
(each target row takes the first WHEN clause that applies) over the same rows, and
pylance for versions and row ids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lance
import pyarrow as pa
import pytest

import lancesql
from tests.conftest import rows

Row = dict[str, Any]


@pytest.fixture
def items(tmp_path: Path, engine: str) -> tuple[lancesql.Connection, Path]:
    root = tmp_path / "items_root"
    root.mkdir()
    ids = list(range(20))
    lance.write_dataset(
        pa.table({"id": ids, "qty": [i % 5 for i in ids], "name": [f"n{i}" for i in ids]}),
        str(root / "items.lance"),
        enable_stable_row_ids=True,
    )
    lance.write_dataset(
        pa.table(
            {"id": [3, 4, 15, 30, 31], "qty": [30, 40, 150, 300, 310], "name": ["a", "b", "c", "d", "e"]}
        ),
        str(root / "changes.lance"),
    )
    con = lancesql.connect(root, engine=engine)
    yield con, root
    con.close()


def table(root: Path) -> list[Row]:
    return sorted(lance.dataset(str(root / "items.lance")).to_table().to_pylist(), key=lambda r: r["id"])


Clause = tuple[str, Callable[[Row | None, Row | None], bool], Callable[[Row | None, Row | None], Row | None]]


def model(target: list[Row], source: list[Row], clauses: list[Clause]) -> tuple[list[Row], int]:
    """MERGE as the SQL standard says, on key ``id``: the rows after it, and rows touched."""
    by_id = {r["id"]: r for r in source}
    out, touched = [], 0
    for row in target:
        src = by_id.get(row["id"])
        kind = "matched" if src else "gone"
        for k, cond, act in clauses:
            if k == kind and cond(row, src):
                new = act(row, src)
                touched += 1
                if new is not None:
                    out.append(new)
                break
        else:
            out.append(row)
    ids = {r["id"] for r in target}
    for src in source:
        if src["id"] in ids:
            continue
        for k, cond, act in clauses:
            if k == "new" and cond(None, src):
                out.append(act(None, src))  # type: ignore[arg-type]
                touched += 1
                break
    return sorted(out, key=lambda r: r["id"]), touched


CHANGES = [
    {"id": 3, "qty": 30, "name": "a"},
    {"id": 4, "qty": 40, "name": "b"},
    {"id": 15, "qty": 150, "name": "c"},
    {"id": 30, "qty": 300, "name": "d"},
    {"id": 31, "qty": 310, "name": "e"},
]


def test_upsert_goes_straight_to_lance(items: tuple[lancesql.Connection, Path]) -> None:
    con, root = items
    before = table(root)
    ds = lance.dataset(str(root / "items.lance"))
    ids_before = {r["id"]: r["_rowid"] for r in ds.to_table(with_row_id=True).to_pylist()}
    cur = con.cursor().execute(
        "MERGE INTO items USING changes ON items.id = changes.id "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
    want, touched = model(
        before,
        CHANGES,
        [("matched", lambda t, s: True, lambda t, s: s), ("new", lambda t, s: True, lambda t, s: s)],
    )
    assert table(root) == want and cur.rowcount == touched == 5
    after = lance.dataset(str(root / "items.lance"))
    assert after.version == ds.version + 1
    # updated rows keep their stable row ids
    kept = {r["id"]: r["_rowid"] for r in after.to_table(with_row_id=True).to_pylist()}
    assert all(kept[i] == ids_before[i] for i in (3, 4, 15))


def test_every_kind_of_clause_with_conditions(items: tuple[lancesql.Connection, Path]) -> None:
    con, root = items
    before = table(root)
    sql = (
        "MERGE INTO items AS t USING (SELECT * FROM changes WHERE qty > ?) AS s ON t.id = s.id "
        "WHEN MATCHED AND t.qty >= 4 THEN DELETE "
        "WHEN MATCHED THEN UPDATE SET qty = t.qty + s.qty, name = s.name || '!' "
        "WHEN NOT MATCHED AND s.qty > 305 THEN INSERT (id, qty, name) VALUES (s.id, s.qty * 2, 'new') "
        "WHEN NOT MATCHED BY SOURCE AND t.qty = 0 THEN UPDATE SET name = 'zero' "
        "WHEN NOT MATCHED BY SOURCE AND t.id > 17 THEN DELETE"
    )
    cur = con.cursor().execute(sql, [35])
    source = [r for r in CHANGES if r["qty"] > 35]
    want, touched = model(
        before,
        source,
        [
            ("matched", lambda t, s: t["qty"] >= 4, lambda t, s: None),
            (
                "matched",
                lambda t, s: True,
                lambda t, s: {**t, "qty": t["qty"] + s["qty"], "name": s["name"] + "!"},
            ),
            (
                "new",
                lambda t, s: s["qty"] > 305,
                lambda t, s: {"id": s["id"], "qty": s["qty"] * 2, "name": "new"},
            ),
            ("gone", lambda t, s: t["qty"] == 0, lambda t, s: {**t, "name": "zero"}),
            ("gone", lambda t, s: t["id"] > 17, lambda t, s: None),
        ],
    )
    assert table(root) == want
    assert cur.rowcount == touched
    assert lance.dataset(str(root / "items.lance")).version == 2


def test_sources_a_version_a_search_and_parameters(wcon: lancesql.Connection, root: Path) -> None:
    mnist = str(root / "mnist.lance")
    cur = wcon.cursor()
    # a search result as the source: the ten nearest digits of #42 get label 99
    near = [
        r[0]
        for r in rows(
            wcon,
            "SELECT id FROM vector_search('mnist', 'image_emb', "
            "(SELECT image_emb FROM mnist WHERE id = 42), 10)",
        )
    ]
    cur.execute(
        "MERGE INTO mnist USING (SELECT id FROM vector_search('mnist', 'image_emb', "
        "(SELECT image_emb FROM mnist WHERE id = ?), 10)) AS s ON mnist.id = s.id "
        "WHEN MATCHED THEN UPDATE SET label = 99",
        [42],
    )
    assert cur.rowcount == 10
    assert sorted(
        lance.dataset(mnist).to_table(columns=["id"], filter="label = 99")["id"].to_pylist()
    ) == sorted(near)
    # a version of the same table as the source puts the labels back
    cur.execute(
        "MERGE INTO mnist USING (SELECT id, label FROM mnist VERSION AS OF 7) AS old ON mnist.id = old.id "
        "WHEN MATCHED AND mnist.label <> old.label THEN UPDATE SET label = old.label"
    )
    assert cur.rowcount == 10
    assert lance.dataset(mnist).count_rows(filter="label = 99") == 0
    assert lance.dataset(mnist).version == 9


def test_a_target_row_matched_twice_is_an_integrity_error(items: tuple[lancesql.Connection, Path]) -> None:
    con, root = items
    dup = "(SELECT 3 AS id, 1 AS qty, 'x' AS name UNION ALL SELECT 3, 2, 'y') AS s"
    for whens in [
        "WHEN MATCHED THEN UPDATE SET *",  # straight to Lance
        "WHEN MATCHED AND s.qty > 0 THEN UPDATE SET qty = s.qty",  # through the engine
        "WHEN MATCHED THEN DELETE",
    ]:
        with pytest.raises(
            lancesql.IntegrityError, match=r"several source rows match the same target row \(id = 3\)"
        ):
            con.execute(f"MERGE INTO items USING {dup} ON items.id = s.id {whens}")
    assert lance.dataset(str(root / "items.lance")).version == 1
    # two new rows with one key are two inserts, as the standard says
    con.execute(
        f"MERGE INTO items USING {dup.replace('3', '77')} ON items.id = s.id WHEN NOT MATCHED THEN INSERT *"
    )
    assert [r["qty"] for r in table(root) if r["id"] == 77] == [1, 2]


def test_merge_bad_input(items: tuple[lancesql.Connection, Path]) -> None:
    con, root = items
    with pytest.raises(lancesql.ProgrammingError, match="the source has no column 'name'"):
        con.execute(
            "MERGE INTO items USING (SELECT id, qty FROM changes) AS s ON items.id = s.id "
            "WHEN MATCHED THEN UPDATE SET *"
        )
    with pytest.raises(
        lancesql.ProgrammingError, match="need every column of items in the source, which has no 'name'"
    ):
        con.execute(
            "MERGE INTO items USING (SELECT id, qty FROM changes) AS s ON items.id = s.id "
            "WHEN MATCHED AND s.qty > 1 THEN UPDATE SET *"
        )
    with pytest.raises(
        lancesql.DataError, match="column qty is BIGINT: cannot store the VARCHAR value 'many'"
    ):
        con.execute(
            "MERGE INTO items USING (SELECT 99 AS id, 'many' AS qty, 'x' AS name) AS s "
            "ON items.id = s.id WHEN NOT MATCHED THEN INSERT *"
        )
    with pytest.raises(lancesql.NotSupportedError, match="not an equality of a target and a source column"):
        con.execute("MERGE INTO items USING changes AS s ON items.id < s.id WHEN MATCHED THEN DELETE")
    with pytest.raises(lancesql.NotSupportedError, match="changes the ON key"):
        con.execute(
            "MERGE INTO items USING changes AS s ON items.id = s.id "
            "WHEN MATCHED THEN UPDATE SET id = s.id + 1"
        )
    with pytest.raises(lancesql.ProgrammingError, match="has no column 'nope'"):
        con.execute(
            "MERGE INTO items USING changes AS s ON items.id = s.id WHEN MATCHED THEN UPDATE SET nope = 1"
        )
    with pytest.raises(lancesql.ProgrammingError, match="unknown table 'nothere'"):
        con.execute("MERGE INTO items USING nothere AS s ON items.id = s.id WHEN MATCHED THEN DELETE")
    with pytest.raises(lancesql.ProgrammingError, match="a statement writes the newest version"):
        con.execute(
            "MERGE INTO items AT (VERSION => 1) USING changes AS s ON items.id = s.id "
            "WHEN MATCHED THEN DELETE"
        )
    assert lance.dataset(str(root / "items.lance")).version == 1
