"""ALTER TABLE: computed and backfilled columns, merges, schema evolution — on both engines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import lance
import pytest

import lancesql
from tests.conftest import ROOT, rows


def version(root: Path, name: str = "mnist") -> int:
    return int(lance.dataset(str(root / f"{name}.lance")).version)


def data_files(root: Path) -> set[str]:
    ds = lance.dataset(str(root / "mnist.lance"))
    return {f.path for frag in ds.get_fragments() for f in frag.data_files()}


def test_add_column_from_expression_is_one_version_and_rewrites_nothing(wcon, root):
    before, files = version(root), data_files(root)
    wcon.execute(
        "ALTER TABLE mnist ADD COLUMN is_curvy BOOLEAN AS (label IN (0, 3, 6, 8, 9)), "
        "ADD COLUMN twice AS (label * 2)"
    )
    assert version(root) == before + 1
    # The old data files are all still there: only files for the new columns were added.
    assert files < data_files(root)
    got = rows(wcon, "SELECT label, is_curvy, twice FROM mnist")
    assert len(got) == 5000
    assert all(c == (label in (0, 3, 6, 8, 9)) and t == 2 * label for label, c, t in got)


def test_add_column_backfilled_by_engine(wcon, root):
    before = version(root)
    # CASE and division are not handed to Lance: the engine computes them batch by batch.
    wcon.execute(
        "ALTER TABLE mnist ADD COLUMN size AS (CASE WHEN label >= 5 THEN 'big' ELSE label_name END), "
        "ADD COLUMN half DOUBLE AS (label / 2)"
    )
    assert version(root) == before + 1
    got = rows(wcon, "SELECT label, label_name, size, half FROM mnist")
    assert all(s == ("big" if lab >= 5 else name) for lab, name, s, _ in got)
    # Division is the engine's own: DuckDB's is exact, DataFusion's truncates integers.
    three = 1.5 if wcon.engine.name == "duckdb" else 1.0
    assert {(lab, h) for lab, _, _, h in got} >= {(4, 2.0), (3, three)}
    ds = lance.dataset(str(root / "mnist.lance"))
    assert str(ds.schema.field("half").type) == "double"


def test_add_column_reading_its_own_table(wcon, root):
    """A backfill whose expression reads the table it adds to (a subquery over it):
    the engine reads the version being extended while Lance writes the new column."""
    before = version(root)
    wcon.execute("ALTER TABLE mnist ADD COLUMN gap AS ((SELECT max(label) FROM mnist) - label)")
    assert version(root) == before + 1
    # The oracle: pylance's own copy of the labels.
    labels = lance.dataset(str(root / "mnist.lance")).to_table(columns=["id", "label", "gap"]).to_pylist()
    top = max(r["label"] for r in labels)
    assert top == 9 and all(r["gap"] == top - r["label"] for r in labels)


def test_add_column_errors_leave_table_unchanged(wcon, root):
    before = version(root)
    with pytest.raises(lancesql.ProgrammingError, match="already exists"):
        wcon.execute("ALTER TABLE mnist ADD COLUMN label AS (id + 1)")
    with pytest.raises(lancesql.ProgrammingError):
        wcon.execute("ALTER TABLE mnist ADD COLUMN bad AS (label + image_emb)")
    with pytest.raises(lancesql.ProgrammingError):
        wcon.execute("ALTER TABLE mnist ADD COLUMN bad AS (no_such_function(label))")
    with pytest.raises(lancesql.ProgrammingError):
        wcon.execute("ALTER TABLE mnist ADD COLUMN bad AS (no_such_column + 1)")
    assert version(root) == before
    assert "bad" not in lance.dataset(str(root / "mnist.lance")).schema.names


def test_add_empty_typed_column(wcon, root):
    before = version(root)
    wcon.execute("ALTER TABLE mnist ADD COLUMN note VARCHAR")
    assert version(root) == before + 1
    assert rows(wcon, "SELECT count(*) FROM mnist WHERE note IS NULL") == [(5000,)]


def test_merge_columns_from_query(wcon, root):
    before = version(root)
    wcon.execute(
        "ALTER TABLE mnist ADD COLUMNS FROM "
        "(SELECT id, label * 10 AS score FROM mnist WHERE label < 5) ON id"
    )
    assert version(root) == before + 1
    got = rows(wcon, "SELECT label, score FROM mnist")
    assert all((s == 10 * lab) if lab < 5 else s is None for lab, s in got)


def test_merge_key_must_be_unique(wcon, root):
    before = version(root)
    with pytest.raises(lancesql.IntegrityError, match="not unique"):
        wcon.execute("ALTER TABLE mnist ADD COLUMNS FROM (SELECT label, 1 AS one FROM mnist) ON label")
    with pytest.raises(lancesql.ProgrammingError, match="key"):
        wcon.execute("ALTER TABLE mnist ADD COLUMNS FROM (SELECT id AS k, 1 AS one FROM mnist) ON id")
    assert version(root) == before


def test_drop_rename_and_retype_columns(wcon, root):
    wcon.execute("ALTER TABLE mnist ADD COLUMN small INT AS (label)")
    before = version(root)
    wcon.execute("ALTER TABLE mnist RENAME COLUMN small TO digit")
    assert version(root) == before + 1
    wcon.execute("ALTER TABLE mnist ALTER COLUMN digit TYPE BIGINT")
    assert version(root) == before + 2
    assert str(lance.dataset(str(root / "mnist.lance")).schema.field("digit").type) == "int64"
    assert rows(wcon, "SELECT count(*) FROM mnist WHERE digit = label") == [(5000,)]
    wcon.execute("ALTER TABLE mnist DROP COLUMN digit")
    assert version(root) == before + 3
    assert "digit" not in lance.dataset(str(root / "mnist.lance")).schema.names
    with pytest.raises(lancesql.ProgrammingError, match="no column"):
        wcon.execute("ALTER TABLE mnist DROP COLUMN digit")
    with pytest.raises(lancesql.NotSupportedError, match="separate"):
        wcon.execute("ALTER TABLE mnist DROP COLUMN label_name, ADD COLUMN x AS (1)")
    assert version(root) == before + 3


def test_read_only_root_is_refused_before_anything_runs():
    con = lancesql.connect("hf://datasets/someone/mnist-lance")
    with pytest.raises(lancesql.OperationalError, match="read-only"):
        con.execute("ALTER TABLE train ADD COLUMN x AS (label + 1)")
    with pytest.raises(lancesql.OperationalError, match=r"CREATE TABLE '\./train\.lance'"):
        con.execute("DELETE FROM train WHERE label = 1")


# -- a backfill killed part-way resumes without redoing finished batches -------------------------
SCRIPT = textwrap.dedent(
    """
    import sys, time
    import pyarrow as pa, pyarrow.compute as pc
    from lancesql.udfs.registry import scalar_function
    import lancesql

    root, calls, engine, delay, checkpoints = sys.argv[1:6]

    @scalar_function("slow_double", (pa.int32(),), pa.int64())
    def slow_double(connection, values):
        if len(values):
            with open(calls, "a") as fh:
                fh.write(f"{len(values)}\\n")
            time.sleep(float(delay))
        return pc.multiply(pc.cast(values, pa.int64()), 2)

    con = lancesql.connect(root, engine=engine,
                           settings={"backfill_batch_size": 250, "backfill_checkpoint_dir": checkpoints})
    con.execute("ALTER TABLE mnist ADD COLUMN d AS (slow_double(label))")
    print("done")
    """
)


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_backfill_killed_part_way_resumes(root, engine, tmp_path):
    script = tmp_path / "backfill.py"
    script.write_text(SCRIPT)
    checkpoints = tmp_path / "checkpoints"
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = version(root)
    total = 20  # 4 fragments of 1,250 rows, in batches of 250

    proc = subprocess.Popen(
        [sys.executable, str(script), str(root), str(first), engine, "0.3", str(checkpoints)], env=env
    )
    deadline = time.monotonic() + 120
    while _lines(first) < 8 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before_kill = _lines(first)
    assert 8 <= done_before_kill < total
    # Nothing was committed: same version, no new column.
    assert version(root) == before
    assert "d" not in lance.dataset(str(root / "mnist.lance")).schema.names

    out = subprocess.run(
        [sys.executable, str(script), str(root), str(second), engine, "0", str(checkpoints)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    redone = _lines(second)
    # At most the batch in flight when killed is computed twice.
    assert redone <= total - done_before_kill + 1
    assert redone < total
    assert version(root) == before + 1
    with lancesql.connect(root, engine=engine) as con:
        assert rows(con, "SELECT count(*) FROM mnist WHERE d = 2 * label") == [(5000,)]
    assert list(checkpoints.iterdir()) == []  # Lance removed the checkpoint once committed


def test_backfill_reads_only_the_columns_it_needs(wcon, root, monkeypatch):
    from lancesql import writes

    seen: list[list[str]] = []
    run = writes.LocalQuery.run

    def spy(self, source):  # type: ignore[no-untyped-def]
        seen.append(list(source.schema.names))
        return run(self, source)

    monkeypatch.setattr(writes.LocalQuery, "run", spy)
    wcon.execute("ALTER TABLE mnist ADD COLUMN tag AS (CASE WHEN label > 4 THEN label_name END)")
    assert len(seen) > 1  # the type check on no rows, then batch after batch
    # Only the expression's columns reach the engine: never the image bytes or embeddings.
    assert all(set(names) == {"label", "label_name", "__lancesql_pos"} for names in seen)
    big = rows(wcon, "SELECT count(*) FROM mnist WHERE label > 4")
    assert rows(wcon, "SELECT count(tag) FROM mnist") == big
