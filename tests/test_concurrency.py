"""Concurrency: two processes writing one table, readers during writes, and threads
sharing a connection.

Lance rebases a commit over the ones made since it started when it can (two appends
both land; a tag makes no version), and refuses one it cannot (a new column while rows
were appended): lancesql turns that into an OperationalError that says to run the
statement again, and nothing of the refused statement is written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lance
import pytest

import lancesql
from tests.conftest import ROOT, rows
from tests.test_crash import CHILD

APPEND = "INSERT INTO mnist SELECT * REPLACE (slow_double(id) + {offset} AS id) FROM mnist WHERE id < 100"


def start(root: Path, sql: str, slow: float = 0.0, go: Path | None = None) -> subprocess.Popen[str]:
    """A child process running ``sql`` on ``root``, once it has printed ``start`` (and,
    with ``go``, once that file exists: the child is loaded and waits for it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SLOW": str(slow), "TQDM_DISABLE": "1"}
    if go is not None:
        env["GO"] = str(go)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), sql],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "start"
    return child


def finish(child: subprocess.Popen[str]) -> str:
    """``done``, or ``error <class>: <message>`` (what the child printed); a child that
    printed neither gives its exit status and the end of its stderr, to say why."""
    out, err = child.communicate(timeout=120)
    return out.strip() or f"no output, exit {child.returncode}: {err[-2000:]}"


@pytest.fixture
def root(mnist_root: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "root"
    shutil.copytree(mnist_root, copy)
    return copy


def dataset(root: Path) -> lance.LanceDataset:
    return lance.dataset(str(root / "mnist.lance"))


def test_two_appends_both_land(root: Path) -> None:
    first = start(root, APPEND.format(offset=100_000), slow=0.5)
    second = start(root, APPEND.format(offset=200_000), slow=0.0)
    assert finish(second) == "done"
    assert finish(first) == "done"
    ds = dataset(root)
    assert ds.version == 9
    assert ds.count_rows() == 5200
    assert ds.count_rows(filter="id >= 100000 AND id < 200000") == 100
    assert ds.count_rows(filter="id >= 200000") == 100


def test_append_during_add_column_conflicts_and_the_retry_lands(root: Path, tmp_path: Path) -> None:
    """The append lands; the ADD COLUMN that was computing over the old rows is refused
    whole with retry guidance (Lance cannot add a column to rows it did not see), and
    running it again adds the column to every row, the appended ones included.

    Both children are loaded before either starts (loading lancesql can take longer
    than the whole ADD COLUMN on a busy machine), then the append starts while the
    column is being computed (ten batches of 500 rows, a second each)."""
    add = "ALTER TABLE mnist ADD COLUMN c AS (slow_double(id))"
    go_add, go_append = tmp_path / "go-add", tmp_path / "go-append"
    adding = start(root, add, slow=1.0, go=go_add)
    appending = start(root, APPEND.format(offset=100_000), go=go_append)
    go_add.touch()
    time.sleep(0.5)
    go_append.touch()
    assert finish(appending) == "done"
    outcome = finish(adding)
    ds = dataset(root)
    if outcome != "done":  # the append committed while the column was being computed
        assert outcome.startswith("error OperationalError:") and "ADD COLUMN failed" in outcome
        assert "another writer committed" in outcome and "run the statement again" in outcome
        assert ds.version == 8 and "c" not in ds.schema.names
        assert finish(start(root, add)) == "done"
    ds = dataset(root)
    assert ds.version == 9
    assert ds.count_rows() == 5100
    assert ds.count_rows(filter="c = id * 2") == 5100


def test_conflict_is_an_operational_error_saying_retry(root: Path, engine: str) -> None:
    """The same conflict, made certain: a column computed by Lance, committed from a
    handle that an append has made stale, in this process."""
    import lancesql.writes as writes

    with lancesql.connect(root, engine=engine) as con:
        stale = dataset(root)
        original = writes.open_target

        def stale_target(ctx, table):  # type: ignore[no-untyped-def]
            uri, _ = original(ctx, table)
            return uri, stale

        con.cursor().execute("INSERT INTO mnist SELECT * FROM mnist WHERE id < 10")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("lancesql.statements.alter.open_target", stale_target)
            retry = r"another writer committed.*run the statement again"
            with pytest.raises(lancesql.OperationalError, match=retry):
                con.cursor().execute("ALTER TABLE mnist ADD COLUMN c BIGINT AS (id * 2)")
        assert rows(con, "SELECT count(*) FROM mnist") == [(5010,)]
        con.cursor().execute("ALTER TABLE mnist ADD COLUMN c BIGINT AS (id * 2)")
        assert rows(con, "SELECT count(*) FROM mnist WHERE c = id * 2") == [(5010,)]


def test_tag_during_append_both_land(root: Path) -> None:
    appending = start(root, APPEND.format(offset=100_000), slow=0.5)
    tagging = start(root, "ALTER TABLE mnist CREATE TAG 'during'")
    assert finish(tagging) == "done"
    assert finish(appending) == "done"
    ds = dataset(root)
    assert ds.count_rows() == 5100
    assert ds.tags.list()["during"]["version"] in {7, 8}


def test_readers_see_whole_versions(root: Path, engine: str) -> None:
    """A reader looping ``SELECT count(*)`` while another process appends 100 rows five
    times (each streamed slowly) sees 5000, 5100, ... and nothing in between."""
    writes = "; ".join(APPEND.format(offset=100_000 * (i + 1)) for i in range(5))
    writer = start(root, writes, slow=0.1)
    seen: list[int] = []
    with lancesql.connect(root, engine=engine) as con:
        cur = con.cursor()
        while writer.poll() is None:
            seen.append(cur.execute("SELECT count(*) FROM mnist").fetchone()[0])
        assert finish(writer) == "done"
        seen.append(cur.execute("SELECT count(*) FROM mnist").fetchone()[0])
    assert set(seen) <= {5000 + 100 * i for i in range(6)}, sorted(set(seen))
    assert seen == sorted(seen) and seen[-1] == 5500


QUERIES = [
    ("SELECT count(*) FROM mnist WHERE label = ?", [3]),
    ("SELECT label, count(*) FROM mnist GROUP BY label ORDER BY label", None),
    ("SELECT count(*) FROM mnist AT (VERSION => 2)", None),
    (
        "SELECT id FROM vector_search('mnist', 'image_emb', "
        "(SELECT image_emb FROM mnist WHERE id = 7), 5)",
        None,
    ),
    ("SELECT id FROM mnist WHERE label_name = ? ORDER BY id LIMIT 20", ["4"]),
]


@pytest.fixture
def shared(mnist_root: Path, engine: str) -> Iterator[lancesql.Connection]:
    with lancesql.connect(mnist_root, engine=engine) as con:
        yield con


def test_threads_share_a_connection_each_with_its_own_cursor(shared: lancesql.Connection) -> None:
    expected = [rows(shared, sql, params) for sql, params in QUERIES]

    def work(worker: int) -> list[list[tuple]]:
        cur = shared.cursor()
        out = []
        for round_ in range(6):
            sql, params = QUERIES[(worker + round_) % len(QUERIES)]
            out.append(cur.execute(sql, params).fetchall())
        cur.close()
        return out

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(4)))
    for worker, got in enumerate(results):
        for round_, result in enumerate(got):
            assert result == expected[(worker + round_) % len(QUERIES)]


def test_a_cursor_used_by_two_threads_at_once_says_so(shared: lancesql.Connection) -> None:
    """Sharing one cursor is refused while the other thread is inside it, never mixed."""
    cur = shared.cursor()
    inside = threading.Event()
    release = threading.Event()
    real = cur._next_batch

    def slow_next_batch() -> bool:
        inside.set()
        release.wait(10)
        return real()

    cur.execute("SELECT id FROM mnist WHERE label = 1 ORDER BY id")
    cur._next_batch = slow_next_batch  # type: ignore[method-assign]
    holder = threading.Thread(target=cur.fetchall)
    holder.start()
    assert inside.wait(10)
    with pytest.raises(lancesql.InterfaceError, match=r"in use by another thread.*its own"):
        cur.execute("SELECT 1")
    with pytest.raises(lancesql.InterfaceError, match="in use by another thread"):
        cur.fetchone()
    release.set()
    holder.join(10)
    cur._next_batch = real  # type: ignore[method-assign]
    # Once the other thread is done, the cursor works from this one.
    assert cur.execute("SELECT count(*) FROM mnist").fetchone() == (5000,)


def test_threads_writing_through_one_connection(root: Path, engine: str) -> None:
    """Appends from four threads of one connection all land (Lance rebases appends)."""
    with lancesql.connect(root, engine=engine) as con:

        def append(worker: int) -> int:
            cur = con.cursor()
            for i in range(3):
                offset = 100_000 * (worker + 1) + 1000 * i
                sql = "INSERT INTO mnist SELECT * REPLACE (id + ? AS id) FROM mnist WHERE id < 10"
                assert cur.execute(sql, [offset]).rowcount == 10
            return worker

        with ThreadPoolExecutor(4) as pool:
            assert sorted(pool.map(append, range(4))) == [0, 1, 2, 3]
        assert rows(con, "SELECT count(*), count(DISTINCT id) FROM mnist") == [(5120, 5120)]
        assert rows(con, "SELECT max(version) FROM lance_versions('mnist')") == [(19,)]


def test_a_table_dropped_by_another_connection_can_be_created_again(tmp_path: Path, engine: str) -> None:
    """A connection that has read a table does not take its cached handle as proof the
    table still exists once another connection dropped it (a pool of connections, as
    SQLAlchemy keeps, does this all the time)."""
    with lancesql.connect(tmp_path, engine=engine) as a, lancesql.connect(tmp_path, engine=engine) as b:
        a.execute("CREATE TABLE t (x INTEGER)")
        a.execute("INSERT INTO t VALUES (1)")
        assert rows(a, "SELECT x FROM t") == [(1,)]
        b.execute("DROP TABLE t")
        a.execute("CREATE TABLE t (y VARCHAR)")
        a.execute("INSERT INTO t VALUES ('new')")
        assert rows(a, "SELECT * FROM t") == [("new",)]
        assert rows(b, "SELECT * FROM t") == [("new",)]


def test_a_table_another_connection_created_again_is_read_as_it_is_now(tmp_path: Path, engine: str) -> None:
    """Dropped and created again elsewhere, at the same version number, a table is read
    with its new columns and rows, not through the handle cached for the old one."""
    with lancesql.connect(tmp_path, engine=engine) as a, lancesql.connect(tmp_path, engine=engine) as b:
        a.execute("CREATE TABLE t AS SELECT 1 AS x")
        assert rows(a, "SELECT * FROM t") == [(1,)]
        b.execute("DROP TABLE t")
        b.execute("CREATE TABLE t AS SELECT 'new' AS y, 2 AS z")
        assert lance.dataset(str(tmp_path / "t.lance")).version == 1
        assert rows(a, "SELECT * FROM t") == [("new", 2)]
        assert [d[0] for d in a.execute("SELECT * FROM t").description] == ["y", "z"]
