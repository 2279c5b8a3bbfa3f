"""Random search queries, differential: ``vector_search`` with random filters, k, metric
and index use, and ``ORDER BY <distance>(...) LIMIT k``, run on both engines; each runs
on both or fails on both with the same DB-API error class, and both give the same rows.
Exact searches are also checked against pylance's own search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lance
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lancesql
from tests.conftest import fuzz_settings

FUZZ = fuzz_settings(30)


@pytest.fixture(scope="module")
def mnist_ds(mnist_root: Path) -> lance.LanceDataset:
    return lance.dataset(str(mnist_root / "mnist.lance"))


filters = st.one_of(
    st.none(),
    st.integers(-1, 10).map(lambda n: f"label = {n}"),
    st.lists(st.integers(0, 9), min_size=1, max_size=3, unique=True).map(
        lambda xs: "label IN (" + ", ".join(map(str, xs)) + ")"
    ),
    st.integers(0, 5100).map(lambda n: f"id < {n}"),
    st.integers(0, 9).map(lambda n: f"label_name = '{n}' AND id % 2 = 0"),
    st.just("no_such_column = 1"),
)


def run(con: lancesql.Connection, sql: str, params: list[Any]) -> tuple[str, Any]:
    try:
        return "ok", con.cursor().execute(sql, params).fetchall()
    except lancesql.Error as exc:
        return "error", type(exc).__name__


@FUZZ
@given(
    seed=st.integers(0, 4999),
    k=st.one_of(st.integers(1, 40), st.sampled_from([0, -3, 6000])),
    where=filters,
    metric=st.sampled_from([None, "cosine", "l2"]),
    use_index=st.sampled_from([None, "true", "false"]),
    outer=st.sampled_from([None, "label < 5"]),
)
def test_vector_search_agrees(
    both: dict[str, lancesql.Connection],
    mnist_ds: lance.LanceDataset,
    seed: int,
    k: int,
    where: str | None,
    metric: str | None,
    use_index: str | None,
    outer: str | None,
) -> None:
    query = mnist_ds.take([seed], columns=["image_emb"]).column(0)[0].values.to_numpy()
    named = ""
    if where is not None:
        named += ", filter => ?"
    if metric is not None:
        named += f", metric => '{metric}'"
    if use_index is not None:
        named += f", use_index => {use_index}"
    sql = f"SELECT id, _distance FROM vector_search('mnist', 'image_emb', ?, {k}{named})"
    if outer:
        sql += f" WHERE {outer}"
    sql += " ORDER BY _distance, id"
    params: list[Any] = [query] + ([where] if where is not None else [])
    outcomes = {engine: run(con, sql, params) for engine, con in both.items()}
    assert outcomes["duckdb"][0] == outcomes["datafusion"][0], outcomes
    if outcomes["duckdb"][0] == "error":
        assert outcomes["duckdb"] == outcomes["datafusion"]
        return
    ids = {engine: [r[0] for r in result] for engine, (_, result) in outcomes.items()}
    assert ids["duckdb"] == ids["datafusion"]
    got = ids["duckdb"]
    assert len(got) <= k
    exact = use_index == "false" or metric == "l2"  # no l2 index: a flat search
    if exact and outer is None:
        expected = mnist_ds.to_table(
            columns=["id"],
            nearest={
                "column": "image_emb",
                "q": query,
                "k": k,
                "metric": metric or "cosine",
                "use_index": False,
            },
            filter=where,
            prefilter=True,
        )
        assert sorted(got) == sorted(expected.column("id").to_pylist())


@FUZZ
@given(
    seed=st.integers(0, 4999),
    k=st.integers(1, 30),
    function=st.sampled_from(["array_cosine_distance", "array_distance"]),
    where=st.one_of(st.none(), st.integers(0, 9).map(lambda n: f"label = {n}")),
)
def test_order_by_distance_agrees(
    both: dict[str, lancesql.Connection],
    mnist_ds: lance.LanceDataset,
    seed: int,
    k: int,
    function: str,
    where: str | None,
) -> None:
    query = mnist_ds.take([seed], columns=["image_emb"]).column(0)[0].values.to_numpy()
    sql = "SELECT id FROM mnist"
    if where:
        sql += f" WHERE {where}"
    sql += f" ORDER BY {function}(image_emb, ?::FLOAT[512]) LIMIT {k}"
    outcomes = {engine: run(con, sql, [query]) for engine, con in both.items()}
    assert outcomes["duckdb"] == outcomes["datafusion"]
    assert outcomes["duckdb"][0] == "ok"
    got = [r[0] for r in outcomes["duckdb"][1]]
    assert len(got) == k
    if function == "array_distance":  # the index is cosine: an exact (flat) l2 search
        vectors = mnist_ds.to_table(columns=["id", "image_emb"], filter=where)
        matrix = np.stack(vectors.column("image_emb").to_numpy(zero_copy_only=False))
        distances = np.linalg.norm(matrix - query, axis=1)
        best = np.asarray(vectors.column("id"))[np.argsort(distances, kind="stable")[:k]]
        assert len(set(best.tolist()) & set(got)) >= k - 1  # a tie at the k-th distance aside
