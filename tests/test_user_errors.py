"""Every failure a lancesql error in the user's words, through every way of reading a
result, on both engines (issue 14): the class says what went wrong, the message speaks
of the SQL the user wrote (a caret under the place), never of lancesql's insides."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

import lancesql
from tests.conftest import rows
from tests.test_bad_input import INTERNAL, READING_ERRORS


def _reader_all(cur: lancesql.Cursor) -> Any:
    return cur.fetch_record_batch().read_all()


def _reader_loop(cur: lancesql.Cursor) -> Any:
    return [b.num_rows for b in cur.fetch_record_batch()]


def _reader_next(cur: lancesql.Cursor) -> Any:
    reader = cur.fetch_record_batch(rows_per_batch=7)
    while True:
        reader.read_next_batch()


#: Every way of reading a result: (name, how it reads a cursor that executed).
FETCHES: list[tuple[str, Callable[[lancesql.Cursor], Any]]] = [
    ("fetchone", lambda cur: [cur.fetchone() for _ in range(10_000)]),
    ("fetchmany", lambda cur: [cur.fetchmany(1000) for _ in range(10)]),
    ("fetchall", lambda cur: cur.fetchall()),
    ("fetch_arrow_table", lambda cur: cur.fetch_arrow_table()),
    ("reader.read_all", _reader_all),
    ("reader iteration", _reader_loop),
    ("reader.read_next_batch", _reader_next),
    ("iteration", lambda cur: list(cur)),
    ("fetchdf", lambda cur: cur.fetchdf()),
]


def read_with(con: lancesql.Connection, how: str, sql: str, params: Any = None) -> Any:
    """Run ``sql`` and read its result by ``how`` (a name of :data:`FETCHES`, or
    ``con.sql``)."""
    if how == "con.sql":
        result = con.sql(sql, params)
        return result.arrow() if result is not None else None
    fetch = dict(FETCHES)[how]
    cur = con.cursor()
    try:
        return fetch(cur.execute(sql, params))
    except StopIteration:
        return None


METHODS = [name for name, _ in FETCHES] + ["con.sql"]


def assert_users_terms(exc: BaseException) -> None:
    assert isinstance(exc, lancesql.Error), f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    assert not INTERNAL.search(str(exc)), str(exc)


# -- 1. one translation point, every fetch method ---------------------------------------------
@pytest.mark.parametrize(
    ("case", "sql", "params", "error", "message"),
    READING_ERRORS,
    ids=[case[0] for case in READING_ERRORS],
)
def test_every_bad_input_error_through_every_fetch_method(
    con: lancesql.Connection, case: str, sql: str, params: Any, error: type, message: str
) -> None:
    for how in METHODS:
        with pytest.raises(error, match=message) as caught:
            read_with(con, how, sql, params)
        assert_users_terms(caught.value)
    assert rows(con, "SELECT count(*) FROM mnist") == [(5000,)]


#: Errors raised while the rows stream (DataFusion raises them from the batch that
#: fails, after execute returned), and the class each must arrive as.
RUNTIME_ERRORS = [
    ("bad cast of a column", "SELECT CAST(label_name || 'x' AS INTEGER) AS n FROM mnist", lancesql.DataError),
    ("bad cast of a literal", "SELECT CAST('abc' AS INTEGER) AS n FROM mnist", lancesql.DataError),
]


@pytest.mark.parametrize(("case", "sql", "error"), RUNTIME_ERRORS, ids=[c[0] for c in RUNTIME_ERRORS])
def test_runtime_errors_arrive_translated_through_every_fetch_method(
    con: lancesql.Connection, case: str, sql: str, error: type
) -> None:
    for how in METHODS:
        with pytest.raises(error) as caught:
            read_with(con, how, sql)
        assert_users_terms(caught.value)
    assert rows(con, "SELECT count(*) FROM mnist") == [(5000,)]


def test_division_by_zero_on_datafusion_is_a_data_error(mnist_root: Any) -> None:
    with lancesql.connect(mnist_root, engine="datafusion") as con:
        for how in METHODS:
            with pytest.raises(lancesql.DataError, match=r"(?i)divide by zero") as caught:
                read_with(con, how, "SELECT 1 / (label - label) AS x FROM mnist")
            assert_users_terms(caught.value)


def test_engine_errors_show_the_users_sql_with_a_caret(con: lancesql.Connection) -> None:
    sql = "SELECT id,\n  nope FROM mnist AS m WHERE label = 1"
    with pytest.raises(lancesql.ProgrammingError) as caught:
        rows(con, sql)
    message = str(caught.value)
    assert_users_terms(caught.value)
    assert "LINE 2:   nope FROM mnist AS m WHERE label = 1\n" + " " * 10 + "^^^^" in message


def test_parse_errors_point_at_the_place_and_say_what_is_missing(con: lancesql.Connection) -> None:
    with pytest.raises(lancesql.ProgrammingError) as caught:
        rows(con, "SELECT id FROM mnist LIMIT;")
    message = str(caught.value)
    assert_users_terms(caught.value)
    assert "LIMIT is incomplete" in message
    assert message.endswith("LINE 1: SELECT id FROM mnist LIMIT;\n" + " " * 29 + "^^^^^")


@pytest.mark.parametrize("marker", ["%s", "%(label)s"])
def test_foreign_parameter_markers_say_use_question_marks(con: lancesql.Connection, marker: str) -> None:
    with pytest.raises(lancesql.ProgrammingError, match=r"use \? for parameters") as caught:
        rows(con, f"SELECT id FROM mnist WHERE label = {marker}", None)
    assert_users_terms(caught.value)
    assert "LINE 1: SELECT id FROM mnist WHERE label = " in str(caught.value)


def test_order_by_distance_errors_speak_of_what_the_user_wrote(con: lancesql.Connection) -> None:
    sql = "SELECT id FROM mnist ORDER BY array_cosine_distance(image_emb, [1.0, 2.0, 3.0]) LIMIT 3"
    with pytest.raises(lancesql.DataError) as caught:
        rows(con, sql)
    message = str(caught.value)
    assert message.startswith("ORDER BY array_cosine_distance(image_emb, ...): the query vector has 3")
    assert "vector_search" not in message
    # a vector_search the user wrote keeps its own name
    with pytest.raises(lancesql.DataError, match=r"^vector_search\(\): the query vector has 3"):
        rows(con, "SELECT * FROM vector_search('mnist', 'image_emb', [1.0, 2.0, 3.0], 3)")


def test_insert_of_a_wrong_length_vector_names_the_column(wcon: lancesql.Connection) -> None:
    cur = wcon.cursor()
    for sql, params in [
        ("INSERT INTO mnist (id, image_emb) VALUES (1, [1.0, 2.0])", None),
        ("INSERT INTO mnist (id, image_emb) VALUES (?, ?)", [1, [1.0, 2.0]]),
        ("INSERT INTO mnist (id, image_emb) SELECT 1, [1.0, 2.0]", None),
    ]:
        with pytest.raises(lancesql.DataError) as caught:
            cur.execute(sql, params)
        assert str(caught.value).startswith("column image_emb holds 512 values; a row has 2")
        assert_users_terms(caught.value)
        # the same cursor runs the next statement (no result left open on the engine)
        assert cur.execute("SELECT count(*) FROM mnist").fetchall() == [(5000,)]


def test_translate_is_the_one_point_for_foreign_errors() -> None:
    from lancesql.errors import translate

    err = translate(pa.ArrowInvalid("External error: Arrow error: Divide by zero error"))
    assert type(err) is lancesql.DataError and str(err) == "Divide by zero error"
    err = translate(RuntimeError("no such column in __lancesql_0 AS train"), "SELECT * FROM train")
    assert "__lancesql" not in str(err) and "train" in str(err)


def test_model_download_noise_is_silenced(capfd: pytest.CaptureFixture[str]) -> None:
    from udfs.clip import _quiet_downloads

    root = logging.getLogger()
    handlers = list(root.handlers)
    with _quiet_downloads():
        logging.error("Failed to download weights for tag 'x': no network")
        logging.getLogger("huggingface_hub.utils._http").warning("Retrying in 1s [Retry 1/5].")
    err = capfd.readouterr().err
    assert "Failed to download" not in err and "Retrying" not in err
    assert root.handlers == handlers  # the user's logging is left as it was
    # outside the load, the user's own root-logger errors still print
    out = subprocess.run(
        [sys.executable, "-c", "import logging; logging.error('mine')"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "ERROR:root:mine" in out.stderr


# -- 2. DB-API to the letter ------------------------------------------------------------------
def test_exception_classes_are_connection_attributes(con: lancesql.Connection) -> None:
    for name in [
        "Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError",
        "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError",
    ]:  # fmt: skip
        assert getattr(con, name) is getattr(lancesql, name)
    with pytest.raises(con.ProgrammingError):
        rows(con, "SELECT nope FROM mnist")


def test_rowcount_is_minus_one_for_statements_without_a_count(wcon: lancesql.Connection) -> None:
    cur = wcon.cursor()
    for sql in [
        "CREATE TABLE t (id BIGINT, v FLOAT[2])",
        "ALTER TABLE t ADD COLUMN c INTEGER",
        "ALTER TABLE mnist CREATE TAG 'x'",
        "SET lancesql.vector_search_refine_factor = 3",
        "CREATE VIEW v AS SELECT 1 AS one",
        "DROP VIEW v",
        "DROP TABLE t",
    ]:
        assert cur.execute(sql).rowcount == -1, sql
    assert cur.execute("SELECT id FROM mnist LIMIT 2").rowcount == -1
    assert cur.execute("INSERT INTO mnist (id) VALUES (90001), (90002)").rowcount == 2
    assert cur.lastrowid is None
    assert cur.connection is wcon


def test_a_closed_connection_refuses_every_cursor_operation(mnist_root: Any, engine: str) -> None:
    con = lancesql.connect(mnist_root, engine=engine)
    cur = con.cursor().execute("SELECT id FROM mnist ORDER BY id LIMIT 3")
    assert cur.fetchone() == (0,)  # the rest are buffered in the cursor
    con.close()
    operations: list[Callable[[], Any]] = [
        cur.fetchone,
        cur.fetchall,
        lambda: cur.fetchmany(2),
        cur.fetch_arrow_table,
        cur.fetch_record_batch,
        lambda: next(iter(cur)),
        lambda: cur.execute("SELECT 1"),
        lambda: cur.executemany("SELECT ?", [[1]]),
        lambda: cur.executemany("SELECT ?", []),
        con.cursor,
        con.commit,
        con.rollback,
    ]
    for operation in operations:
        with pytest.raises(lancesql.InterfaceError, match="closed"):
            operation()


def test_executemany_on_a_closed_cursor_raises(con: lancesql.Connection) -> None:
    cur = con.cursor()
    cur.close()
    with pytest.raises(lancesql.InterfaceError, match="cursor is closed"):
        cur.executemany("SELECT ?", [])


def test_statusmessage_says_what_each_statement_did(wcon: lancesql.Connection) -> None:
    cur = wcon.cursor()
    assert cur.execute("ALTER TABLE mnist CREATE TAG 'clip-v1'").statusmessage == (
        "tag clip-v1 created at version 7"
    )
    assert cur.execute("CREATE TABLE subset AS SELECT * FROM mnist WHERE label = 1").statusmessage == (
        f"{rows(wcon, 'SELECT count(*) FROM mnist WHERE label = 1')[0][0]} rows written to subset (version 1)"
    )
    assert cur.execute("ALTER TABLE mnist ADD COLUMN is_one BOOLEAN AS (label = 1)").statusmessage == (
        "mnist version 8: add columns is_one"
    )
    assert cur.execute("SELECT 1 AS one").statusmessage is None
