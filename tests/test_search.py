"""Search in SQL: vector_search, its prefilter planning, the ORDER BY distance rewrite,
text and hybrid search, EXPLAIN, and their errors, on both engines."""

from __future__ import annotations

from pathlib import Path

import lance
import numpy as np
import pyarrow as pa
import pytest

import lancesql
from tests.conftest import rows

NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def table(mnist_root: Path) -> pa.Table:
    """The MNIST rows the tests compare against (ids, labels, vectors)."""
    return lance.dataset(str(mnist_root / "mnist.lance")).to_table(
        columns=["id", "label", "image_emb"]
    )


def exact_ids(
    table: pa.Table, query: np.ndarray, k: int, mask: np.ndarray | None = None
) -> list[int]:
    """The true k nearest ids by cosine distance, computed with numpy."""
    vectors = np.stack(table.column("image_emb").to_numpy(zero_copy_only=False))
    sims = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    distance = 1 - sims
    if mask is not None:
        distance = np.where(mask, distance, np.inf)
    order = np.argsort(distance, kind="stable")[:k]
    ids = table.column("id").to_numpy()
    return [int(ids[i]) for i in order if np.isfinite(distance[i])]


def vector_of(table: pa.Table, row_id: int) -> np.ndarray:
    index = table.column("id").to_pylist().index(row_id)
    return np.asarray(table.column("image_emb")[index].as_py(), dtype=np.float32)


Q = "(SELECT image_emb FROM mnist WHERE id = 42)"


def test_vector_search_returns_nearest_with_distance(
    con: lancesql.Connection, table: pa.Table
) -> None:
    cur = con.cursor().execute(
        f"SELECT id, label, _distance FROM vector_search('mnist', 'image_emb', {Q}, 10)"
    )
    assert [d[0] for d in cur.description] == ["id", "label", "_distance"]
    result = cur.fetchall()
    assert len(result) == 10
    assert result[0][0] == 42 and abs(result[0][2]) < 1e-5  # refined: exact distances
    distances = [r[2] for r in result]
    assert distances == sorted(distances)
    truth = exact_ids(table, vector_of(table, 42), 10)
    assert len({r[0] for r in result} & set(truth)) >= 5  # PQ codes, refined only by k


def test_exact_search_equals_numpy(con: lancesql.Connection, table: pa.Table) -> None:
    result = rows(
        con, f"SELECT id FROM vector_search('mnist', 'image_emb', {Q}, 10, use_index => false)"
    )
    assert [r[0] for r in result] == exact_ids(table, vector_of(table, 42), 10)


def test_query_vector_forms(con: lancesql.Connection, table: pa.Table) -> None:
    vector = vector_of(table, 7)
    expected = rows(
        con,
        "SELECT id FROM vector_search('mnist', 'image_emb', "
        "(SELECT image_emb FROM mnist WHERE id = 7), 5)",
    )
    literal = "[" + ", ".join(repr(float(x)) for x in vector) + "]"
    as_literal = rows(con, f"SELECT id FROM vector_search('mnist', 'image_emb', {literal}, 5)")
    as_list = rows(
        con, "SELECT id FROM vector_search('mnist', 'image_emb', ?, 5)", [vector.tolist()]
    )
    as_numpy = rows(con, "SELECT id FROM vector_search('mnist', 'image_emb', ?, 5)", [vector])
    assert expected == as_literal == as_list == as_numpy
    assert expected[0][0] == 7


def test_selective_prefilter_returns_k_exact_rows(
    con: lancesql.Connection, table: pa.Table
) -> None:
    # 40 of 5,000 rows (0.8%) match: the k nearest among them, all k of them.
    result = rows(
        con,
        f"SELECT id, _distance FROM vector_search('mnist', 'image_emb', {Q}, 10, "
        "filter => 'id < 40')",
    )
    ids = table.column("id").to_numpy()
    assert [r[0] for r in result] == exact_ids(table, vector_of(table, 42), 10, mask=ids < 40)


def test_a_double_quoted_name_in_filter_text_is_a_column(con: lancesql.Connection, table: pa.Table) -> None:
    # As the laion card writes its filter: "NSFW" is a column in SQL, a string to Lance.
    result = rows(
        con,
        f"SELECT id FROM vector_search('mnist', 'image_emb', {Q}, 10, "
        """filter => '"id" < 40 AND "label" >= 0')""",
    )
    ids = table.column("id").to_numpy()
    assert [r[0] for r in result] == exact_ids(table, vector_of(table, 42), 10, mask=ids < 40)


def test_prefilter_through_the_index_keeps_k_rows(
    con: lancesql.Connection, table: pa.Table
) -> None:
    cur = con.cursor()
    cur.execute("SET lancesql.vector_search_exact_rows = 0")  # force the index path
    search = (
        f"SELECT id FROM vector_search('mnist', 'image_emb', {Q}, 10, "
        "filter => '{where}', nprobes => 2, refine_factor => 10)"
    )
    for where, mask in (
        ("label = 3", table.column("label").to_numpy() == 3),
        ("id < 40", table.column("id").to_numpy() < 40),  # 0.8% of the rows
    ):
        # the planner probes partitions until they hold enough matching rows
        result = cur.execute(search.format(where=where)).fetchall()
        assert len(result) == 10
        assert {r[0] for r in result} <= set(table.column("id").to_numpy()[mask].tolist())
    # and probes the partitions where the matching rows lie, so the recall stays up
    mask = table.column("label").to_numpy() == 3
    result = cur.execute(search.format(where="label = 3")).fetchall()
    truth = exact_ids(table, vector_of(table, 42), 10, mask=mask)
    assert len({r[0] for r in result} & set(truth)) >= 8


def test_filter_as_sql_predicate_with_parameters(con: lancesql.Connection) -> None:
    as_text = rows(
        con,
        f"SELECT id FROM vector_search('mnist', 'image_emb', {Q}, 5, "
        "filter => 'label = 3 AND id > 100')",
    )
    as_sql = rows(
        con,
        f"SELECT id FROM vector_search('mnist', 'image_emb', {Q}, 5, "
        "filter => label = ? AND id > ?)",
        [3, 100],
    )
    assert as_text == as_sql and len(as_sql) == 5


def test_where_outside_filters_the_result(con: lancesql.Connection) -> None:
    nearest = rows(con, f"SELECT id, label FROM vector_search('mnist', 'image_emb', {Q}, 20)")
    outside = rows(
        con, f"SELECT id, label FROM vector_search('mnist', 'image_emb', {Q}, 20) WHERE id % 2 = 0"
    )
    assert outside == [r for r in nearest if r[0] % 2 == 0]
    assert len(outside) < 20


def test_version_argument(con: lancesql.Connection) -> None:
    # version 1 is the first of four appends: ids 0..1249
    result = rows(con, f"SELECT id FROM vector_search('mnist', 'image_emb', {Q}, 10, version => 1)")
    assert len(result) == 10 and all(r[0] < 1250 for r in result)


def test_order_by_distance_rewrite_equals_vector_search(con: lancesql.Connection) -> None:
    explicit = rows(
        con,
        f"SELECT id, label FROM vector_search('mnist', 'image_emb', {Q}, 10, "
        "filter => 'label = 3', metric => 'cosine')",
    )
    ordered = rows(
        con,
        "SELECT id, "
        f"label FROM mnist WHERE label = ? ORDER BY array_cosine_distance(image_emb, {Q}) LIMIT 10",
        [3],
    )
    assert ordered == explicit
    plan = rows(
        con,
        "EXPLAIN SELECT id FROM mnist WHERE label = 3 "
        f"ORDER BY array_cosine_distance(image_emb, {Q}) LIMIT 10",
    )
    assert any(r[0].startswith("vector_search(") for r in plan)


def test_order_by_distance_unrewritten_runs_as_written(
    con: lancesql.Connection, table: pa.Table
) -> None:
    sql = f"SELECT id, {{f}}(image_emb, {Q}) AS d FROM mnist WHERE label = 8 ORDER BY d LIMIT 5"
    cur = con.cursor()
    cur.execute("SET lancesql.vector_search_cache_bytes = 0")  # the planner's own paths, not the cache
    for function in ("array_cosine_distance", "array_distance", "array_negative_inner_product"):
        rewritten = cur.execute(sql.format(f=function)).fetchall()
        cur.execute("SET lancesql.rewrite_order_by_distance = false")
        plan = cur.execute("EXPLAIN " + sql.format(f=function)).fetchall()
        assert not any(r[0].startswith("vector_search(") for r in plan)
        written = cur.execute(sql.format(f=function)).fetchall()
        cur.execute("SET lancesql.rewrite_order_by_distance = true")
        assert [r[0] for r in rewritten] == [r[0] for r in written]
        assert np.allclose([r[1] for r in rewritten], [r[1] for r in written], atol=1e-5)
    # the L2 and dot forms disagree with the cosine index: exact search, as written
    plan = rows(con, "EXPLAIN " + sql.format(f="array_distance"))
    assert "path: exact (the index" in "\n".join(r[1] for r in plan)


def test_order_by_rewrite_with_parameters_and_offset(
    con: lancesql.Connection, table: pa.Table
) -> None:
    vector = vector_of(table, 42)
    first = rows(
        con,
        "SELECT id FROM mnist WHERE label = ? ORDER BY array_cosine_distance(image_emb, ?) LIMIT ?",
        [8, vector.tolist(), 6],
    )
    page = rows(
        con,
        "SELECT id FROM mnist WHERE label = 8 "
        "ORDER BY array_cosine_distance(image_emb, ?) LIMIT 3 OFFSET 3",
        [vector.tolist()],
    )
    assert len(first) == 6 and page == first[3:]


def test_order_by_rewrite_at_a_version_and_path(con: lancesql.Connection, mnist_root: Path) -> None:
    old = rows(
        con,
        "SELECT id FROM mnist AT (VERSION => 1) "
        f"ORDER BY array_cosine_distance(image_emb, {Q}) LIMIT 10",
    )
    assert len(old) == 10 and all(r[0] < 1250 for r in old)  # version 1: ids 0..1249
    plan = rows(
        con,
        "EXPLAIN SELECT id FROM mnist AT (VERSION => 1) "
        f"ORDER BY array_cosine_distance(image_emb, {Q}) LIMIT 10",
    )
    assert any(r[0].startswith("vector_search(") and "@ version 1" in r[0] for r in plan)
    path = str(mnist_root / "mnist.lance")
    by_path = rows(
        con,
        f"SELECT x.id FROM '{path}' AS x ORDER BY array_cosine_distance(x.image_emb, {Q}) LIMIT 3",
    )
    unaliased = rows(
        con, f"SELECT id FROM '{path}' ORDER BY array_cosine_distance(image_emb, {Q}) LIMIT 3"
    )
    assert by_path == unaliased and by_path[0][0] == 42


def test_order_by_rewrite_keeps_star_columns(con: lancesql.Connection) -> None:
    cur = con.cursor().execute(
        f"SELECT * FROM mnist ORDER BY array_cosine_distance(image_emb, {Q}) LIMIT 3"
    )
    assert [d[0] for d in cur.description] == ["id", "image", "label", "label_name", "image_emb"]
    assert cur.fetchall()[0][0] == 42


def test_appended_rows_are_found(wcon: lancesql.Connection, root: Path, table: pa.Table) -> None:
    uri = str(root / "mnist.lance")
    ds = lance.dataset(uri)
    new = ds.to_table(filter="id = 42").set_column(0, "id", pa.array([99_999], pa.int64()))
    lance.write_dataset(new, uri, mode="append")
    result = rows(wcon, f"SELECT id FROM vector_search('mnist', 'image_emb', {Q}, 2)")
    assert {r[0] for r in result} == {42, 99_999}


def test_table_without_vector_index_searches_exactly(
    wcon: lancesql.Connection, root: Path, table: pa.Table
) -> None:
    lance.write_dataset(table, str(root / "plain.lance"))
    result = rows(
        wcon,
        "SELECT id FROM vector_search('plain', 'image_emb', ?, 10, metric => 'cosine')",
        [vector_of(table, 42)],
    )
    assert [r[0] for r in result] == exact_ids(table, vector_of(table, 42), 10)
    plan = rows(
        wcon,
        "EXPLAIN SELECT id FROM vector_search('plain', 'image_emb', ?, 10)",
        [vector_of(table, 42)],
    )
    assert "no vector index" in plan[1][1]


def test_explain_shows_what_reached_lance(con: lancesql.Connection) -> None:
    con.cursor().execute("SET lancesql.vector_search_cache_bytes = 0")  # the planner, not the cache
    con.cursor().execute("SET lancesql.vector_search_exact_rows = 0")
    con.cursor().execute("SET lancesql.vector_search_exact_cost = 1000")  # the index path
    plan = rows(
        con,
        f"EXPLAIN SELECT id FROM vector_search('mnist', 'image_emb', {Q}, 10, "
        "filter => 'label = 3', nprobes => 4, refine_factor => 5)",
    )
    assert plan[0][0].startswith("engine (")
    text = plan[1][1]
    assert plan[1][0].startswith("vector_search(") and "@ version 7" in plan[1][0]
    assert "columns: id, _distance" in text  # only what the query uses
    assert "prefilter: label = 3" in text
    assert "path: index" in text and "refine_factor: " in text and "nprobes: " in text
    assert "the 4 partitions nearest the query hold" in text
    assert "partitions probed (partition:matching/rows): " in text
    assert "label_idx(BTree)" in text and "image_emb_idx (IVF_PQ, cosine)" in text
    con.cursor().execute("RESET lancesql.vector_search_exact_rows")
    con.cursor().execute("RESET lancesql.vector_search_exact_cost")
    exact = rows(
        con,
        f"EXPLAIN SELECT id FROM vector_search('mnist', 'image_emb', {Q}, 10, filter => 'id < 20')",
    )
    assert "path: exact (20 of 5000 rows match" in exact[1][1]
    # any query: the tables the engine scans are listed with their version and indices
    plain = rows(con, "EXPLAIN SELECT count(*) FROM mnist AT (VERSION => 5) WHERE label = 1")
    assert plain[1][0].startswith("lance_scan(") and "@ version 5" in plain[1][0]
    assert "label_idx (BTree on label)" in plain[1][1]


@pytest.mark.parametrize(
    ("sql", "error", "message"),
    [
        (f"vector_search('mnist', 'nope', {Q}, 5)", lancesql.ProgrammingError, "no column 'nope'"),
        (
            f"vector_search('mnist', 'label', {Q}, 5)",
            lancesql.ProgrammingError,
            "not a vector column",
        ),
        ("vector_search('mnist', 'image_emb', [1.0, 2.0], 5)", lancesql.DataError, "has 2 values"),
        (f"vector_search('mnist', 'image_emb', {Q}, 0)", lancesql.DataError, "k > 0"),
        (
            f"vector_search('mnist', 'image_emb', {Q}, 5, metric => 'l2')",
            lancesql.ProgrammingError,
            "built with metric 'cosine'",
        ),
        (
            "vector_search('mnist', 'image_emb', (SELECT image_emb FROM mnist WHERE id < 0), 5)",
            lancesql.Error,
            "NULL",
        ),
    ],
)
def test_errors(con: lancesql.Connection, sql: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        rows(con, f"SELECT id FROM {sql}")


@pytest.fixture
def captions(root: Path, table: pa.Table) -> Path:
    """``captions.lance``: 1,000 digits with a caption made from their label, an INVERTED index."""
    small = table.slice(0, 1000)
    text = [
        f"a handwritten {NUMBERS[label]}" + (" in bold ink" if i % 10 == 0 else "")
        for i, label in enumerate(small.column("label").to_pylist())
    ]
    ds = lance.write_dataset(
        small.append_column("caption", pa.array(text, pa.string())), str(root / "captions.lance")
    )
    ds.create_scalar_index("caption", "INVERTED")
    ds.create_scalar_index("label", "BTREE")
    return root


def test_text_search(captions: Path, engine: str) -> None:
    with lancesql.connect(captions, engine=engine) as con:
        cur = con.cursor().execute(
            "SELECT id, caption, _score FROM text_search('captions', 'caption', 'seven', 5)"
        )
        assert [d[0] for d in cur.description] == ["id", "caption", "_score"]
        result = cur.fetchall()
        assert len(result) == 5 and all("seven" in r[1] for r in result)
        assert [r[2] for r in result] == sorted((r[2] for r in result), reverse=True)
        bold = rows(
            con,
            "SELECT id, caption FROM text_search('captions', 'caption', 'bold', 50, "
            "filter => label = ?)",
            [7],
        )
        assert bold and all(r[1] == "a handwritten seven in bold ink" for r in bold)
        with pytest.raises(lancesql.ProgrammingError, match="no INVERTED index"):
            rows(con, "SELECT * FROM text_search('mnist', 'label_name', 'x', 5)")


def test_hybrid_search_fuses_by_reciprocal_rank(
    captions: Path, engine: str, table: pa.Table
) -> None:
    with lancesql.connect(
        captions, engine=engine, settings={"hybrid_search_candidates": 20}
    ) as con:
        vector = vector_of(table, 42)
        fused = rows(
            con,
            "SELECT id, _distance, _score, _relevance FROM hybrid_search('captions', "
            "'image_emb', ?, 'caption', 'bold', 5)",
            [vector],
        )
        by_vector = [
            r[0]
            for r in rows(
                con, "SELECT id FROM vector_search('captions', 'image_emb', ?, 20)", [vector]
            )
        ]
        by_text = [
            r[0] for r in rows(con, "SELECT id FROM text_search('captions', 'caption', 'bold', 20)")
        ]
        score: dict[int, float] = {}
        for ranked in (by_vector, by_text):
            for rank, row_id in enumerate(ranked, start=1):
                score[row_id] = score.get(row_id, 0) + 1 / (60 + rank)
        expected = sorted(score, key=lambda r: -score[r])[:5]
        assert [r[0] for r in fused] == expected
        assert np.allclose([r[3] for r in fused], [score[r] for r in expected])
        assert fused[0][0] == 42 or fused[0][1] is not None
        filtered = rows(
            con,
            "SELECT label FROM hybrid_search('captions', 'image_emb', ?, 'caption', 'bold', "
            "5, filter => 'label = 4')",
            [vector],
        )
        assert len(filtered) == 5 and {r[0] for r in filtered} == {4}


@pytest.mark.parametrize("indexed", [False, True])
def test_order_by_distance_with_a_tie_breaker(tmp_path: Path, engine: str, indexed: bool) -> None:
    """``ORDER BY distance, id [DESC] LIMIT k`` is answered by the search, and the ties at
    the k-th distance are broken as the query says (ten rows share the nearest vector)."""
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((2000, 16)).astype(np.float32)
    vectors[100:110] = vectors[0] = rng.standard_normal(16).astype(np.float32)
    ds = lance.write_dataset(
        pa.table(
            {
                "id": np.arange(2000),
                "emb": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 16),
            }
        ),
        str(tmp_path / "dup.lance"),
    )
    if indexed:
        ds.create_index("emb", "IVF_PQ", metric="l2", num_partitions=4, num_sub_vectors=4)
    query = vectors[0].tolist()
    with lancesql.connect(tmp_path, engine=engine) as con:
        cur = con.cursor()
        distance = ((vectors - vectors[0]) ** 2).sum(axis=1)
        ids = np.arange(2000)
        for order, key in (("id DESC", -ids), ("id", ids)):
            expected = np.lexsort((key, distance))[:3].tolist()  # numpy: distance, then id
            sql = f"SELECT id FROM dup ORDER BY array_distance(emb, ?), {order} LIMIT 3"
            plan = cur.execute("EXPLAIN " + sql, [query]).fetchall()
            assert any(str(r[0]).startswith("vector_search(") for r in plan)
            assert [r[0] for r in cur.execute(sql, [query]).fetchall()] == expected


def test_vector_search_takes_any_number_of_arguments(con: lancesql.Connection, table: pa.Table) -> None:
    # issue 12: eight or more arguments hit sqlglot's BigQuery VECTOR_SEARCH (seven slots)
    sql = (
        f"SELECT id, label, _distance FROM vector_search('mnist', 'image_emb', {Q}, 5, "
        "filter => 'label = 3', metric => 'cosine', nprobes => 20, refine_factor => 10, use_index => false)"
    )
    got = rows(con, sql)
    labels = np.asarray(table.column("label").to_pylist())
    truth = exact_ids(table, vector_of(table, 42), 5, mask=labels == 3)
    assert [r[0] for r in got] == truth  # exact search among label 3: numpy is the oracle
    assert {r[1] for r in got} == {3}
