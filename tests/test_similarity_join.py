"""Similarity joins: ``LATERAL vector_search(...)`` equals one vector_search per left row
(issue 15), in every join form, on both engines."""

from __future__ import annotations

from pathlib import Path

import lance
import numpy as np
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
    cur = con.cursor()  # the default settings: the join path is chosen by cost
    cases = (
        (4, ""),
        (5, ", nprobes => 2"),
        (3, ", filter => 'label = 3', nprobes => 2, refine_factor => 3"),
        (3, ", filter => 'label < 5', nprobes => 2"),  # 2,500 rows: planned, then held
    )
    for k, extra in cases:
        call = f"vector_search('mnist', 'image_emb', a.image_emb, {k}{extra})"
        sql = "SELECT a.id, s.id, s._distance " + form.format(left=LEFT, call=call)
        got = {(a, b, round(d, 5)) for a, b, d in cur.execute(sql).fetchall()}
        assert got == singles(cur, ds, k, extra)
    # the join compared the table's vectors partition by partition and kept them: the
    # single searches compared the same partitions of them
    vector = ds.to_table(columns=["image_emb"], filter="id = 3").column(0)[0].as_py()
    plan = cur.execute("EXPLAIN " + Q.format(k=5, extra=", nprobes => 2"), [vector]).fetchall()[1][1]
    assert "held in memory (read by a similarity join): the 2 partitions nearest" in plan


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


def exact(ds: lance.LanceDataset, vector: list[float], k: int, where: str | None) -> list[tuple]:
    """pylance's exact search (cosine, as the table's index): (id, distance) of the k
    nearest, nearest first."""
    got = ds.to_table(
        columns=["id"],
        filter=where,
        prefilter=True if where else None,
        nearest={"column": "image_emb", "q": vector, "k": k, "metric": "cosine", "use_index": False},
    )
    return list(zip(got["id"].to_pylist(), got["_distance"].to_pylist(), strict=True))


def test_partition_path_is_exact_over_the_probed_partitions(
    con: lancesql.Connection, mnist_root: Path
) -> None:
    """The table read once, each partition compared with every left row probing it:
    probing every partition, the neighbours and distances are pylance's exact search;
    probing two, the recall is at least that of Lance's search per row."""
    ds = lance.dataset(str(mnist_root / "mnist.lance"))
    left = ds.to_table(columns=["id", "image_emb"], filter="id < 30").to_pylist()
    cur = con.cursor()
    for where in (None, "label = 3"):
        extra = f", filter => '{where}'" if where else ""
        call = f"vector_search('mnist', 'image_emb', a.image_emb, 4, nprobes => 1000{extra})"
        sql = f"SELECT a.id, s.id, s._distance FROM mnist AS a, LATERAL {call} AS s WHERE a.id < 30"
        cur.execute("SET lancesql.vector_search_join_path = partitions")
        got: dict[int, list[tuple]] = {}
        for a, b, d in cur.execute(sql).fetchall():
            got.setdefault(a, []).append((b, d))
        for row in left:
            want = exact(ds, row["image_emb"], 4, where)
            ours = sorted(got[row["id"]], key=lambda r: r[1])
            assert {b for b, _ in ours} == {b for b, _ in want}
            np.testing.assert_allclose([d for _, d in ours], [d for _, d in want], atol=1e-5)

    sql = (
        "SELECT a.id, s.id FROM mnist AS a, LATERAL vector_search('mnist', 'image_emb', "
        "a.image_emb, 10, nprobes => 2, refine_factor => 2) AS s WHERE a.id < 30"
    )
    recall = {}
    for path in ("partitions", "index"):
        cur.execute(f"SET lancesql.vector_search_join_path = {path}")
        found: dict[int, set] = {}
        for a, b in cur.execute(sql).fetchall():
            found.setdefault(a, set()).add(b)
        recall[path] = np.mean(
            [len(found[r["id"]] & {b for b, _ in exact(ds, r["image_emb"], 10, None)}) / 10 for r in left]
        )
    assert recall["partitions"] >= recall["index"] and recall["partitions"] > 0.5
    cur.execute("RESET lancesql.vector_search_join_path")
