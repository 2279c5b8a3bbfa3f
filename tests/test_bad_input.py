"""The bad-input matrix, on both engines: every case ends in a lancesql DB-API error
whose message says what is wrong (asserted on key words), or in a documented result,
and the connection runs the next statement afterwards."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import lancesql
from tests.conftest import rows

VECTOR = [0.1] * 512
V = "[" + ", ".join(["0.1"] * 512) + "]"


#: What must never reach a message: lancesql's placeholder tables and helper names,
#: Python classes (sqlglot's node classes), pyarrow's and Rust's insides, engine wrappers.
INTERNAL = re.compile(
    r"__lancesql|<class '|sqlglot\.|pyarrow\.|\.rs:\d|PyErr|External error|Optimizer rule"
    r"|ArrowInvalid|Traceback"
)


def usable(con: lancesql.Connection) -> None:
    """The connection (and a fresh cursor) still answers after the failed statement."""
    assert rows(con, "SELECT count(*) FROM mnist")[0][0] > 0


#: (id, sql, parameters, exception class, regex on its message)
READING_ERRORS: list[tuple[str, str, Any, type[lancesql.Error], str]] = [
    ("unknown column", "SELECT nope FROM mnist", None, lancesql.ProgrammingError, r"(?i)nope"),
    (
        "search: unknown column",
        "SELECT * FROM vector_search('mnist', 'nope', [1.0, 2.0], 3)",
        None,
        lancesql.ProgrammingError,
        r"no column 'nope'.*columns are id, image",
    ),
    (
        "search: not a vector column",
        "SELECT * FROM vector_search('mnist', 'label', [1.0, 2.0], 3)",
        None,
        lancesql.ProgrammingError,
        r"not a vector column.*vector columns: image_emb",
    ),
    (
        "search: short vector literal",
        "SELECT * FROM vector_search('mnist', 'image_emb', [1.0, 2.0], 3)",
        None,
        lancesql.DataError,
        r"has 2 values but column 'image_emb' holds vectors of 512",
    ),
    (
        "search: short bound vector",
        "SELECT * FROM vector_search('mnist', 'image_emb', ?, 3)",
        [[1.0, 2.0, 3.0]],
        lancesql.DataError,
        r"has 3 values .* of 512",
    ),
    (
        "search: 2-d numpy vector",
        "SELECT * FROM vector_search('mnist', 'image_emb', ?, 3)",
        [np.ones((2, 512), dtype=np.float32)],
        lancesql.ProgrammingError,
        r"parameter 1 cannot be bound.*1-d array",
    ),
    (
        "search: string as vector",
        "SELECT * FROM vector_search('mnist', 'image_emb', ?, 3)",
        ["abc"],
        lancesql.DataError,
        r"must be a list of numbers, got str",
    ),
    (
        "search: NULL literal query",
        "SELECT * FROM vector_search('mnist', 'image_emb', NULL, 3)",
        None,
        lancesql.DataError,
        r"query vector is NULL",
    ),
    (
        "search: NULL bound query",
        "SELECT * FROM vector_search('mnist', 'image_emb', ?, 3)",
        [None],
        lancesql.DataError,
        r"query vector is NULL",
    ),
    (
        "search: subquery finding no row",
        "SELECT * FROM vector_search('mnist', 'image_emb', "
        "(SELECT image_emb FROM mnist WHERE id = -1), 3)",
        None,
        lancesql.DataError,
        r"query vector is NULL \(a NULL value, or a subquery that found no row",
    ),
    (
        "search: k = 0",
        f"SELECT * FROM vector_search('mnist', 'image_emb', {V}, 0)",
        None,
        lancesql.DataError,
        r"needs k > 0",
    ),
    (
        "search: negative k",
        "SELECT * FROM vector_search('mnist', 'image_emb', ?, -5)",
        [VECTOR],
        lancesql.DataError,
        r"needs k > 0 .*got -5",
    ),
    (
        "search: k not an integer",
        "SELECT * FROM vector_search('mnist', 'image_emb', ?, 'ten')",
        [VECTOR],
        lancesql.ProgrammingError,
        r"k, the number of rows, as an integer",
    ),
    (
        "search: filter on unknown column",
        "SELECT * FROM vector_search('mnist', 'image_emb', ?, 3, filter => 'nocol = 1')",
        [VECTOR],
        lancesql.ProgrammingError,
        r"the filter 'nocol = 1' failed: .*No field named nocol",
    ),
    (
        "search: unknown metric",
        "SELECT * FROM vector_search('mnist', 'image_emb', ?, 3, metric => 'manhattan')",
        [VECTOR],
        lancesql.ProgrammingError,
        r"unknown metric 'manhattan'; use one of cosine",
    ),
    (
        "ORDER BY distance: short vector",
        "SELECT id FROM mnist ORDER BY array_cosine_distance(image_emb, ?) LIMIT 3",
        [[1.0, 2.0]],
        lancesql.DataError,
        r"has 2 values .* of 512",
    ),
    (
        "ORDER BY distance: NULL vector",
        "SELECT id FROM mnist ORDER BY array_cosine_distance(image_emb, ?) LIMIT 3",
        [None],
        lancesql.DataError,
        r"query vector is NULL",
    ),
    (
        "ORDER BY distance: LIMIT 0",
        "SELECT id FROM mnist ORDER BY array_cosine_distance(image_emb, ?) LIMIT 0",
        [VECTOR],
        lancesql.DataError,
        r"needs k > 0",
    ),
    ("negative LIMIT", "SELECT * FROM mnist LIMIT -1", None, lancesql.ProgrammingError, r"LIMIT"),
    (
        "ORDER BY distance: negative LIMIT",
        "SELECT id FROM mnist ORDER BY array_distance(image_emb, ?) LIMIT -1",
        [VECTOR],
        lancesql.ProgrammingError,
        r"LIMIT",
    ),
    (
        "too many parameters",
        "SELECT id FROM mnist WHERE label = ?",
        [1, 2],
        lancesql.ProgrammingError,
        r"1 parameter \(\?\) but 2 values were given",
    ),
    (
        "too few parameters",
        "SELECT id FROM mnist WHERE label = ? AND id = ?",
        [1],
        lancesql.ProgrammingError,
        r"2 parameters \(\?\) but 1 value was given",
    ),
    (
        "no parameters at all",
        "SELECT id FROM mnist WHERE label = ?",
        None,
        lancesql.ProgrammingError,
        r"1 parameter \(\?\) but 0 values",
    ),
    (
        "parameters as a dict",
        "SELECT id FROM mnist WHERE label = ?",
        {"label": 3},
        lancesql.ProgrammingError,
        r"must be a sequence .*got dict .*paramstyle is qmark",
    ),
    (
        "parameters as a scalar",
        "SELECT id FROM mnist WHERE label = ?",
        3,
        lancesql.ProgrammingError,
        r"must be a sequence .*got int",
    ),
    (
        "parameters as a string",
        "SELECT id FROM mnist WHERE label = ?",
        "3",
        lancesql.ProgrammingError,
        r"must be a sequence .*got str",
    ),
    (
        "unbindable parameter",
        "SELECT id FROM mnist WHERE label = ?",
        [object()],
        lancesql.ProgrammingError,
        r"parameter 1 cannot be bound: a object is not a SQL value",
    ),
    (
        "string parameter for an INT column",
        "SELECT id FROM mnist WHERE label = ?",
        ["three"],
        lancesql.DataError,
        r"(?i)'three'",
    ),
]


@pytest.mark.parametrize(
    ("sql", "params", "error", "message"),
    [case[1:] for case in READING_ERRORS],
    ids=[case[0] for case in READING_ERRORS],
)
def test_reading_errors(
    con: lancesql.Connection, sql: str, params: Any, error: type[lancesql.Error], message: str
) -> None:
    cur = con.cursor()
    with pytest.raises(error, match=message):
        cur.execute(sql, params)
    assert cur.execute("SELECT count(*) FROM mnist").fetchone() == (5000,)
    usable(con)


#: Documented results, not errors: (id, sql, parameters, rows expected).
READING_RESULTS: list[tuple[str, str, Any, list[tuple[Any, ...]]]] = [
    ("zero-row result", "SELECT id FROM mnist WHERE label = 99", None, []),
    ("zero-row count", "SELECT count(*) FROM mnist WHERE label = ?", [99], [(0,)]),
    (
        "huge k gives every row",
        "SELECT count(*) FROM vector_search('mnist', 'image_emb', ?, 100000)",
        [VECTOR],
        [(5000,)],
    ),
    (
        "huge LIMIT on ORDER BY distance gives every row",
        "SELECT count(*) FROM (SELECT id FROM mnist "
        "ORDER BY array_cosine_distance(image_emb, ?) LIMIT 100000)",
        [VECTOR],
        [(5000,)],
    ),
    (
        "a filter no row passes gives no row",
        "SELECT count(*) FROM vector_search('mnist', 'image_emb', ?, 10, filter => 'label = 99')",
        [VECTOR],
        [(0,)],
    ),
    (
        "a WHERE after the search keeps fewer than k",
        "SELECT count(*) FROM vector_search('mnist', 'image_emb', ?, 10) WHERE label = 99",
        [VECTOR],
        [(0,)],
    ),
    (
        "a numpy vector parameter",
        "SELECT count(*) FROM vector_search('mnist', 'image_emb', ?, 4)",
        [np.full(512, 0.1, dtype=np.float32)],
        [(4,)],
    ),
]


@pytest.mark.parametrize(
    ("sql", "params", "expected"),
    [case[1:] for case in READING_RESULTS],
    ids=[case[0] for case in READING_RESULTS],
)
def test_documented_results(
    con: lancesql.Connection, sql: str, params: Any, expected: list[tuple[Any, ...]]
) -> None:
    assert rows(con, sql, params) == expected


UNKNOWN_TABLE = r"unknown table 'nope'.*tables: mnist"

#: Writes that must fail and leave the table at its version: (id, sql, params, class, regex).
WRITE_ERRORS: list[tuple[str, str, Any, type[lancesql.Error], str]] = [
    (
        "INSERT: string into INT",
        "INSERT INTO mnist (id, label) VALUES (1, 'abc')",
        None,
        lancesql.DataError,
        r"column label is INTEGER: cannot store the VARCHAR value 'abc' in it; CAST it",
    ),
    (
        "INSERT: short vector literal",
        "INSERT INTO mnist (id, image_emb) VALUES (1, [1.0, 2.0])",
        None,
        lancesql.DataError,
        r"column image_emb holds 512 values; a row has 2: give FLOAT\[512\] vectors",
    ),
    (
        "INSERT: short bound vector",
        "INSERT INTO mnist (id, image_emb) VALUES (?, ?)",
        [1, [1.0, 2.0]],
        lancesql.DataError,
        r"column image_emb holds 512 values; a row has 2",
    ),
    (
        "INSERT: string as vector",
        "INSERT INTO mnist (id, image_emb) VALUES (?, ?)",
        [1, "x"],
        lancesql.ProgrammingError,
        r"column 'image_emb' of mnist is fixed_size_list.* but the query gives string.*CAST it",
    ),
    (
        "INSERT: dict as INT",
        "INSERT INTO mnist (id, label) VALUES (?, ?)",
        [1, {"a": 1}],
        lancesql.ProgrammingError,
        r"column 'label' of mnist is int32, but the query gives struct",
    ),
    (
        "INSERT: out of range",
        "INSERT INTO mnist (id, label) VALUES (?, ?)",
        [1, 2**40],
        lancesql.DataError,
        r"column label is INTEGER: the value 1099511627776 is out of its range",
    ),
    (
        "INSERT: unknown column",
        "INSERT INTO mnist (id, nope) VALUES (1, 2)",
        None,
        lancesql.ProgrammingError,
        r"mnist has no column 'nope' \(columns: id, image",
    ),
    (
        "INSERT: NULL into NOT NULL",
        "INSERT INTO mnist (id) VALUES (NULL)",
        None,
        lancesql.IntegrityError,
        r"column id is NOT NULL",
    ),
    (
        "INSERT: too few values",
        "INSERT INTO mnist VALUES (1)",
        None,
        lancesql.ProgrammingError,
        r"mnist has 5 columns .* gives 1: name the columns",
    ),
    (
        "INSERT: wrong parameter count",
        "INSERT INTO mnist (id, label) VALUES (?, ?)",
        [1],
        lancesql.ProgrammingError,
        r"2 parameters \(\?\) but 1 value was given",
    ),
    (
        "UPDATE: unknown column",
        "UPDATE mnist SET nope = 1",
        None,
        lancesql.ProgrammingError,
        r"mnist has no column 'nope'",
    ),
    (
        "UPDATE: string into INT",
        "UPDATE mnist SET label = 'abc' WHERE id = 1",
        None,
        lancesql.DataError,
        r"(?i)(cast|convert).*'abc'",
    ),
    (
        "DELETE: unknown column",
        "DELETE FROM mnist WHERE nope = 1",
        None,
        lancesql.ProgrammingError,
        r"DELETE FROM mnist failed: .*No field named nope",
    ),
    (
        "ADD COLUMN: unknown column",
        "ALTER TABLE mnist ADD COLUMN z AS (nope + 1)",
        None,
        lancesql.ProgrammingError,
        r"ADD COLUMN z: mnist has no column 'nope' \(columns: id, image",
    ),
    (
        "ADD COLUMN through the engine: unknown column",
        "ALTER TABLE mnist ADD COLUMN z AS (upper(nope))",
        None,
        lancesql.ProgrammingError,
        r"mnist has no column 'nope'",
    ),
    *[
        (f"unknown table: {sql.split()[0]}", sql, None, lancesql.ProgrammingError, UNKNOWN_TABLE)
        for sql in (
            "INSERT INTO nope VALUES (1)",
            "DELETE FROM nope",
            "UPDATE nope SET a = 1",
            "ALTER TABLE nope ADD COLUMN c INT AS (1)",
            "DROP TABLE nope",
        )
    ],
    (
        "CREATE TABLE over an existing one",
        "CREATE TABLE mnist AS SELECT 1 AS x",
        None,
        lancesql.ProgrammingError,
        r"'mnist' already exists: use CREATE OR REPLACE TABLE",
    ),
    (
        "CREATE INDEX: unknown column",
        "CREATE INDEX ON mnist USING BTREE (nope)",
        None,
        lancesql.ProgrammingError,
        r"mnist has no column 'nope'",
    ),
    (
        "CREATE INDEX: unknown kind",
        "CREATE INDEX ON mnist USING FANCY (label)",
        None,
        lancesql.ProgrammingError,
        r"unknown index type FANCY: use one of IVF_PQ",
    ),
    (
        "RESTORE: unknown version",
        "RESTORE TABLE mnist TO VERSION 99",
        None,
        lancesql.ProgrammingError,
        r"no version 99; its versions are 1\.\.7",
    ),
    (
        "tag: unknown version",
        "ALTER TABLE mnist CREATE TAG t1 AS OF VERSION 99",
        None,
        lancesql.ProgrammingError,
        r"no version 99",
    ),
    (
        "tag: drop an unknown one",
        "ALTER TABLE mnist DROP TAG nope",
        None,
        lancesql.ProgrammingError,
        r"no tag 'nope'",
    ),
    (
        "tag: space in name",
        "ALTER TABLE mnist CREATE TAG 'a b'",
        None,
        lancesql.ProgrammingError,
        r"bad tag name 'a b': use ASCII letters",
    ),
    (
        "tag: path in name",
        "ALTER TABLE mnist CREATE TAG '../x'",
        None,
        lancesql.ProgrammingError,
        r"bad tag name '\.\./x'",
    ),
    (
        "tag: unicode name",
        "ALTER TABLE mnist CREATE TAG 'été-1'",
        None,
        lancesql.ProgrammingError,
        r"bad tag name 'été-1': use ASCII letters",
    ),
    (
        "tag: quote in name",
        "ALTER TABLE mnist CREATE TAG \"it's\"",
        None,
        lancesql.ProgrammingError,
        r"bad tag name",
    ),
]


@pytest.mark.parametrize(
    ("sql", "params", "error", "message"),
    [case[1:] for case in WRITE_ERRORS],
    ids=[case[0] for case in WRITE_ERRORS],
)
def test_write_errors_leave_the_table_alone(
    wcon: lancesql.Connection, sql: str, params: Any, error: type[lancesql.Error], message: str
) -> None:
    before = rows(wcon, "SELECT max(version) FROM lance_versions('mnist')")
    with pytest.raises(error, match=message) as caught:
        wcon.cursor().execute(sql, params)
    assert not INTERNAL.search(str(caught.value)), str(caught.value)
    assert rows(wcon, "SELECT max(version) FROM lance_versions('mnist')") == before
    assert rows(wcon, "SHOW TAGS FROM mnist") == []
    usable(wcon)


def test_empty_table(wcon: lancesql.Connection) -> None:
    """A table with no rows answers every query with no rows; search too."""
    cur = wcon.cursor()
    cur.execute("CREATE TABLE empty (id BIGINT, emb FLOAT[4])")
    assert cur.execute("SELECT * FROM empty").fetchall() == []
    assert [d[0] for d in cur.description or []] == ["id", "emb"]
    assert cur.execute("SELECT count(*) FROM empty").fetchall() == [(0,)]
    assert cur.execute("SELECT * FROM vector_search('empty', 'emb', [1.0, 2, 3, 4], 3)").fetchall() == []
    for function in ("array_cosine_distance", "array_distance"):
        sql = f"SELECT id FROM empty ORDER BY {function}(emb, [1.0, 2, 3, 4]::FLOAT[4]) LIMIT 3"
        assert cur.execute(sql).fetchall() == []
    with pytest.raises(lancesql.DataError, match="has 2 values but column 'emb' holds vectors of 4"):
        cur.execute("SELECT * FROM vector_search('empty', 'emb', [1.0, 2], 3)")
    assert cur.execute("DELETE FROM empty WHERE id = 1").rowcount == 0
    usable(wcon)


def test_unicode_and_quotes_in_table_and_column_names(wcon: lancesql.Connection) -> None:
    cur = wcon.cursor()
    cur.execute('CREATE TABLE "naïve ""q""" (id BIGINT, "côté ""x""" VARCHAR)')
    cur.execute('INSERT INTO "naïve ""q""" VALUES (?, ?)', [1, "l'été \"chaud\""])
    assert cur.execute('SELECT "côté ""x""" FROM "naïve ""q"""').fetchall() == [("l'été \"chaud\"",)]
    assert [r[0] for r in cur.execute('DESCRIBE "naïve ""q"""').fetchall()] == ["id", 'côté "x"']
    cur.execute('ALTER TABLE "naïve ""q""" ADD COLUMN "ü ""2""" BIGINT AS (id * 2)')
    assert cur.execute('SELECT "ü ""2""" FROM "naïve ""q"""').fetchall() == [(2,)]
    assert 'naïve "q"' in [r[0] for r in cur.execute("SHOW TABLES").fetchall()]
    with pytest.raises(lancesql.ProgrammingError, match="unknown table 'naïve'"):
        cur.execute("SELECT * FROM naïve")
    usable(wcon)


def test_star_modifiers_reach_the_write(wcon: lancesql.Connection) -> None:
    """``* REPLACE`` / ``* EXCLUDE`` in INSERT ... SELECT and CREATE TABLE AS are applied
    (a plain scan of one table is read by Lance directly, which must not drop them)."""
    cur = wcon.cursor()
    cur.execute("INSERT INTO mnist SELECT * REPLACE (id + 100000 AS id) FROM mnist WHERE id < 10")
    assert cur.execute("SELECT count(*), min(id) FROM mnist WHERE id >= 100000").fetchall() == [(10, 100000)]
    cur.execute("CREATE TABLE slim AS SELECT * EXCLUDE (image) FROM mnist WHERE label = 1")
    columns = [r[0] for r in cur.execute("DESCRIBE slim").fetchall()]
    assert columns == ["id", "label", "label_name", "image_emb"]


def test_rows_with_null_vectors_are_left_out_of_searches(wcon: lancesql.Connection) -> None:
    """A NULL vector has no distance: searches never return its row (documented), and
    searching *with* it is a DataError."""
    cur = wcon.cursor()
    cur.execute("INSERT INTO mnist (id, label) VALUES (90000, 3)")
    searches = [
        "SELECT id FROM vector_search('mnist', 'image_emb', ?, 6000)",
        "SELECT id FROM vector_search('mnist', 'image_emb', ?, 6000, use_index => false)",
        "SELECT id FROM vector_search('mnist', 'image_emb', ?, 6000, filter => 'label = 3')",
        "SELECT id FROM mnist ORDER BY array_distance(image_emb, ?::FLOAT[512]) LIMIT 6000",
    ]
    for sql in searches:
        found = [r[0] for r in cur.execute(sql, [VECTOR]).fetchall()]
        assert 90000 not in found and len(found) in (5000, 500), sql
    with pytest.raises(lancesql.DataError, match="query vector is NULL"):
        cur.execute(
            "SELECT * FROM vector_search('mnist', 'image_emb', "
            "(SELECT image_emb FROM mnist WHERE id = 90000), 3)"
        )
    usable(wcon)
