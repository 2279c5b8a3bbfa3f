"""Crash safety: each writing statement runs in a child process that is SIGKILLed at a
random point (a seeded delay after the statement starts; ``LANCESQL_CRASH_SEED``
picks other points). The table must then open, be at the old version or the new one
with that version's content, hold every row, and take the statement again.

A slow scalar function (``slow_double``, sleeping in each call) stretches the statements
that stream rows through the engine, so the kill lands while data files are being
written, before Lance commits the manifest."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lance
import pytest

import lancesql
from tests.conftest import ROOT

CHILD = """
import os, sys, time
import pyarrow as pa, pyarrow.compute as pc
from lancesql.udfs.registry import scalar_function

SLOW = float(os.environ.get("SLOW", "0"))

@scalar_function("slow_double", (pa.int64(),), pa.int64())
def slow_double(connection, ids):
    time.sleep(SLOW)
    return pc.multiply(ids, 2)

import lancesql
con = lancesql.connect(sys.argv[1], settings={"backfill_batch_size": 500})
cur = con.cursor()
print("start", flush=True)
GO = os.environ.get("GO")  # a file whose creation lets the statement begin
while GO and not os.path.exists(GO):
    time.sleep(0.01)
try:
    cur.execute(sys.argv[2])
except lancesql.Error as exc:
    print(f"error {type(exc).__name__}: {exc}", flush=True)
    sys.exit(3)
print("done", flush=True)
"""

ROWS = 5000
COLUMNS = ["id", "image", "label", "label_name", "image_emb"]


@dataclass
class Case:
    sql: str
    #: Whether the table (``ds``, latest version) shows the statement's effect.
    done: Callable[[Path], bool]
    #: Seconds the statement runs for (with ``slow``): the kill lands in [0, window * 1.2].
    window: float
    #: Seconds ``slow_double`` sleeps in each call.
    slow: float = 0.0
    #: How many Lance versions of main the statement makes (tags, VACUUM and branch
    #: writes make none; OPTIMIZE up to three: see lancesql/statements/optimize.py).
    versions: int = 1


def mnist(root: Path, version: int | None = None) -> lance.LanceDataset:
    return lance.dataset(str(root / "mnist.lance"), version=version)


def count(root: Path, where: str | None = None) -> int:
    return mnist(root).count_rows(filter=where)


def column_added(name: str, check: str) -> Callable[[Path], bool]:
    def done(root: Path) -> bool:
        ds = mnist(root)
        if ds.schema.names != [*COLUMNS, name]:
            return False
        return ds.count_rows(filter=check) == ROWS

    return done


def copy_done(root: Path) -> bool:
    if not (root / "copy.lance").exists():
        return False
    try:
        copy = lance.dataset(str(root / "copy.lance"))
    except (OSError, ValueError):
        return False  # data files but no manifest: a table that was never committed
    assert copy.count_rows() == ROWS and copy.schema.names == ["id", "d", "label"]
    return True


def on_branch(root: Path) -> lance.LanceDataset | None:
    """Branch ``exp`` of mnist, which must open whenever Lance lists it."""
    if "exp" not in mnist(root).branches.list():
        return None
    branch = mnist(root).checkout_version(("exp", None))
    assert branch.version in (7, 8) and branch.count_rows() == ROWS  # its base, or one write
    return branch


def branch_relabelled(root: Path) -> bool:
    branch = on_branch(root)
    return branch is not None and branch.count_rows(filter="label = 3") == 0


def optimized(root: Path) -> bool:
    return len(mnist(root).get_fragments()) < 4


def vacuumed(root: Path) -> bool:
    versions = sorted(v["version"] for v in mnist(root).versions())
    assert versions[-1] == 7
    return versions == [7]


def tagged(root: Path) -> bool:
    tags = mnist(root).tags.list()
    assert set(tags) <= {"v1"}
    return "v1" in tags and mnist(root).tags.get_version("v1") == 7


CASES = {
    "ADD COLUMN computed by Lance": Case(
        "ALTER TABLE mnist ADD COLUMN c BIGINT AS (id * 2)", column_added("c", "c = id * 2"), 0.1
    ),
    "ADD COLUMN backfilled by the engine": Case(
        "ALTER TABLE mnist ADD COLUMN c AS (slow_double(id))",
        column_added("c", "c = id * 2"),
        1.2,
        slow=0.1,
    ),
    "ADD COLUMNS FROM (merge)": Case(
        "ALTER TABLE mnist ADD COLUMNS FROM (SELECT id, slow_double(id) AS t FROM mnist) ON id",
        column_added("t", "t = id * 2"),
        1.0,
        slow=0.3,
    ),
    "INSERT ... SELECT": Case(
        "INSERT INTO mnist SELECT * REPLACE (slow_double(id) + 100000 AS id) FROM mnist",
        lambda root: count(root) == 2 * ROWS and count(root, "id >= 100000") == ROWS,
        1.0,
        slow=0.3,
    ),
    "DELETE": Case(
        "DELETE FROM mnist WHERE slow_double(id) % 3 = 0",
        lambda root: count(root) == ROWS - len(range(0, ROWS, 3)) and count(root, "id % 3 = 0") == 0,
        1.0,
        slow=0.3,
    ),
    "UPDATE by Lance": Case(
        "UPDATE mnist SET label = label + 10 WHERE label = 3",
        lambda root: count(root, "label = 13") > 0 and count(root, "label = 3") == 0,
        0.1,
    ),
    "UPDATE through the engine": Case(
        "UPDATE mnist SET label = slow_double(id) % 7 + 100 WHERE label = 3",
        lambda root: count(root, "label >= 100") > 0 and count(root, "label = 3") == 0,
        1.0,
        slow=0.3,
    ),
    "CREATE TABLE AS": Case(
        "CREATE TABLE copy AS SELECT id, slow_double(id) AS d, label FROM mnist",
        copy_done,
        1.0,
        slow=0.3,
        versions=False,  # mnist stays at its version; copy is made whole or not at all
    ),
    "CREATE INDEX": Case(
        "CREATE INDEX ON mnist USING IVF_PQ (image_emb) WITH (metric = 'l2', num_partitions = 8, "
        "num_sub_vectors = 16, sample_rate = 16, replace = true)",
        lambda root: any(
            (i.details or {}).get("metric_type", "").lower() == "l2" for i in mnist(root).describe_indices()
        ),
        2.0,
    ),
    "CREATE TAG": Case("ALTER TABLE mnist CREATE TAG 'v1'", tagged, 0.05, versions=False),
    "MERGE INTO through the engine": Case(
        "MERGE INTO mnist USING (SELECT id, slow_double(id) % 7 + 100 AS label FROM mnist "
        "WHERE label = 3) AS s ON mnist.id = s.id WHEN MATCHED THEN UPDATE SET label = s.label",
        lambda root: count(root, "label >= 100") > 0 and count(root, "label = 3") == 0,
        1.0,
        slow=0.3,
    ),
    "MERGE INTO straight to Lance": Case(
        "MERGE INTO mnist USING (SELECT * REPLACE (label + 10 AS label) FROM mnist) AS s "
        "ON mnist.id = s.id WHEN MATCHED THEN UPDATE SET *",
        lambda root: count(root, "label >= 10") == ROWS,
        1.5,
    ),
    "OPTIMIZE": Case(
        "OPTIMIZE mnist WITH (target_rows_per_fragment = 100000)",
        optimized,
        1.5,
        versions=3,  # compaction, index remap, re-indexing: each a whole state
    ),
    "VACUUM": Case("VACUUM mnist RETAIN 1 VERSIONS", vacuumed, 0.3, versions=0),
    "UPDATE on a branch": Case(
        "ALTER TABLE mnist CREATE BRANCH IF NOT EXISTS 'exp'; USE BRANCH 'exp'; "
        "UPDATE mnist SET label = slow_double(id) % 7 + 100 WHERE label = 3",
        branch_relabelled,
        1.0,
        slow=0.3,
        versions=0,  # main never moves
    ),
    "RESTORE": Case(
        "RESTORE TABLE mnist TO VERSION 3",
        lambda root: mnist(root).version == 8 and count(root) == 3750,
        0.05,
    ),
}


def run_child(root: Path, sql: str, slow: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SLOW": str(slow), "TQDM_DISABLE": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), sql],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("name", list(CASES))
def test_sigkill_leaves_old_or_new_version(name: str, mnist_root: Path, tmp_path: Path) -> None:
    case = CASES[name]
    root = tmp_path / "root"
    shutil.copytree(mnist_root, root)
    old = mnist(root)
    old_ids = sorted(old.to_table(columns=["id"]).column("id").to_pylist())

    seed = os.environ.get("LANCESQL_CRASH_SEED", "0")  # vary it to soak other kill points
    delay = random.Random(f"{seed}:{name}").uniform(0, case.window * 1.2)
    child = run_child(root, case.sql, case.slow)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "start", "the child did not start"
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)

    ds = mnist(root)  # opens
    landed = case.done(root)
    if case.versions > 1 and landed:  # killed between the steps, or after them
        assert old.version < ds.version <= old.version + case.versions, f"{name}: version {ds.version}"
    else:
        expected_version = old.version + 1 if landed and case.versions else old.version
        assert ds.version == expected_version, f"{name}: version {ds.version}, landed={landed}"
    if not landed:
        assert ds.schema.names == COLUMNS
        assert ds.count_rows() == ROWS
    ids = ds.to_table(columns=["id"]).column("id").to_pylist()
    if not landed:
        assert sorted(ids) == old_ids, "rows were lost"
    elif name not in {"DELETE", "RESTORE"}:  # those two remove rows by design
        assert set(old_ids) <= set(ids), "rows were lost"

    # lancesql reads it, and the statement runs (again) to completion.
    with lancesql.connect(root) as con:
        assert con.cursor().execute("SELECT count(*) FROM mnist").fetchone() == (ds.count_rows(),)
    if not landed:
        again = run_child(root, case.sql, 0.0)
        out, _ = again.communicate(timeout=120)
        assert again.returncode == 0 and "done" in out, f"{name}: the statement failed after the crash"
        assert case.done(root)
        if case.versions <= 1:
            assert mnist(root).version == old.version + case.versions
