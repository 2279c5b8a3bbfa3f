"""Similarity joins: ``LATERAL vector_search(...)`` equals one vector_search per left row
(issue 15), in every join form, on both engines."""

from __future__ import annotations

from pathlib import Path

import lance
import pytest

import lancesql

Q = "SELECT id, _distance FROM vector_search('mnist', 'image_emb', ?, {k}{extra})"
LEFT = "(SELECT id, label, image_emb FROM mnist WHERE id IN (3, 17, 42, 99, 512)) AS a"


def singles(cur: lancesql.Cursor, ds: lance.LanceDataset, k: int, extra: str = "") -> set:
    """What running vector_search once per left row gives: (left id, neighbour id)."""
    left = ds.to_table(columns=["id", "image_emb"], filter="id IN (3, 17, 42, 99, 512)")
    pairs = set()
    for row in left.to_pylist():
        for found in cur.execute(Q.format(k=k, extra=extra), [row["image_emb"]]).fetchall():
            pairs.add((row["id"], found[0], round(found[1], 5)))
    return pairs


@pytest.mark.parametrize(
    "form",
    [
        "FROM {left}, LATERAL {call} AS s",
        "FROM {left} CROSS JOIN LATERAL {call} AS s",
        "FROM {left} JOIN LATERAL {call} AS s ON true",
        "FROM {left} LEFT JOIN LATERAL {call} AS s ON true",
    ],
)
def test_lateral_equals_one_search_per_row(
    con: lancesql.Connection, mnist_root: Path, form: str
) -> None:
    ds = lance.dataset(str(mnist_root / "mnist.lance"))
    cur = con.cursor()
    for k, extra in ((4, ""), (3, ", filter => 'label = 3', nprobes => 2, refine_factor => 3")):
        call = f"vector_search('mnist', 'image_emb', a.image_emb, {k}{extra})"
        sql = "SELECT a.id, s.id, s._distance " + form.format(left=LEFT, call=call)
        got = {(a, b, round(d, 5)) for a, b, d in cur.execute(sql).fetchall()}
        assert got == singles(cur, ds, k, extra)


def test_null_vector_left_join_and_row_arguments(con: lancesql.Connection) -> None:
    cur = con.cursor()
    left = (
        "(SELECT id, label, CASE WHEN id = 17 THEN NULL ELSE image_emb END AS v "
        "FROM mnist WHERE id IN (3, 17, 42)) AS a"
    )
    call = "vector_search('mnist', 'image_emb', a.v, 2)"
    inner = cur.execute(f"SELECT a.id, s.id FROM {left}, LATERAL {call} AS s").fetchall()
    assert {r[0] for r in inner} == {3, 42} and len(inner) == 4
    outer = cur.execute(
        f"SELECT a.id, s.id FROM {left} LEFT JOIN LATERAL {call} AS s ON true"
    ).fetchall()
    assert (17, None) in outer and len(outer) == 5
    # each row's own k and filter: k = 1 + (id % 3), neighbours with the row's label
    call = (
        "vector_search('mnist', 'image_emb', a.v, 1 + a.id % 3, "
        "filter => 'label = ' || CAST(a.label AS VARCHAR)) "
    )
    got = cur.execute(
        f"SELECT a.id, a.label, s.id, s.label FROM {left}, LATERAL {call} AS s"
    ).fetchall()
    per_row: dict[int, int] = {}
    for left_id, left_label, _, label in got:
        assert label == left_label
        per_row[left_id] = per_row.get(left_id, 0) + 1
    assert per_row == {3: 1, 42: 1}  # 3 % 3 = 0, 42 % 3 = 0: k = 1; 17 has no vector


def test_where_on_the_left_narrows_the_searches(con: lancesql.Connection) -> None:
    """The issue's near-duplicate query: WHERE on the left side alone, and on both."""
    cur = con.cursor()
    sql = (
        "SELECT a.id, s.id AS neighbour, s._distance FROM mnist AS a, "
        "LATERAL vector_search('mnist', 'image_emb', a.image_emb, 5, filter => 'label = 3') AS s "
        "WHERE a.label = 3 AND a.id < 300 AND s.id <> a.id AND s._distance < 0.2"
    )
    got = cur.execute(sql).fetchall()
    assert got and all(a != n and d < 0.2 for a, n, d in got)
    labels = dict(cur.execute("SELECT id, label FROM mnist").fetchall())
    assert all(labels[a] == 3 and labels[n] == 3 and a < 300 for a, n, _ in got)
