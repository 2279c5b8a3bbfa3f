"""The heavy statements on a Ray cluster give the tables the local path gives.

One local Ray cluster for the module: a head (with a Ray Client server) and one more
worker node (separate raylets and worker processes, one CPU each) on 127.0.0.1, no
dashboard, started with a deadline and shut down at the end. Every statement runs twice, on two copies of one
table, through ``executor = 'ray'`` and through the local path, and the two tables
must agree: schema, values, row count, versions, and the answers of the indices.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import lance
import numpy as np
import pyarrow as pa
import pytest

import lancesql
from examples import mnist
from tests.conftest import ROOT, rows, stop
from tests.test_remote import BUCKET
from tests.test_remote import s3_options as s3_options  # the S3 server fixture

with contextlib.suppress(ImportError, pytest.skip.Exception):  # the model, with the clip extra
    from tests.test_embed import weights as weights

if importlib.util.find_spec("ray") is None or importlib.util.find_spec("lance_ray") is None:
    pytest.skip("needs the ray extra: pip install 'lancesql[ray]'", allow_module_level=True)

# Every Ray address on loopback: set before ray is imported (ray reads it at import).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import ray
from ray.cluster_utils import Cluster

pytestmark = pytest.mark.ray

START_DEADLINE_S = 180


def _timeout(signum: int, frame: FrameType | None) -> None:
    raise TimeoutError(f"the local Ray cluster did not start within {START_DEADLINE_S} s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head node and one worker node, one CPU each, on 127.0.0.1."""
    with pytest.MonkeyPatch.context() as patch:
        # Worker processes import lancesql from this checkout.
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        previous = signal.signal(signal.SIGALRM, _timeout)
        signal.alarm(START_DEADLINE_S)
        started = None
        try:
            started = Cluster(
                initialize_head=True,
                head_node_args={
                    "num_cpus": 1,
                    "include_dashboard": False,
                    "node_ip_address": "127.0.0.1",
                },
            )
            started.add_node(num_cpus=1, node_ip_address="127.0.0.1")
            signal.alarm(0)
            yield started
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
            ray.shutdown()
            if started is not None:
                started.shutdown()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 real digits written in 4 appends (4 fragments), no index."""
    root = tmp_path_factory.mktemp("ray_base")
    mnist.build(root, limit=400, batches=4, indices=False)
    return root


@pytest.fixture
def pair(
    base: Path, tmp_path: Path, cluster: Cluster
) -> Iterator[tuple[lancesql.Connection, lancesql.Connection]]:
    """A connection through Ray and a local one, each on its own copy of ``base``."""
    shutil.copytree(base, tmp_path / "ray")
    shutil.copytree(base, tmp_path / "local")
    settings = {"ray_address": cluster.address, "ray_batch_size": 100}
    with (
        lancesql.connect(tmp_path / "ray", executor="ray", settings=settings) as on_ray,
        lancesql.connect(tmp_path / "local") as local,
    ):
        yield on_ray, local


def _table(con: lancesql.Connection, name: str = "mnist") -> pa.Table:
    return con.execute(f"SELECT * FROM {name} ORDER BY id").fetch_arrow_table()


def _version(con: lancesql.Connection, name: str = "mnist") -> int:
    return int(rows(con, f"SELECT max(version) FROM lance_versions('{name}')")[0][0])


def _same(on_ray: lancesql.Connection, local: lancesql.Connection, name: str = "mnist") -> pa.Table:
    """Both tables agree in schema, values and version; returns the Ray one."""
    got, want = _table(on_ray, name), _table(local, name)
    assert got.schema == want.schema
    assert got.num_rows == want.num_rows
    assert got.equals(want)
    assert _version(on_ray, name) == _version(local, name)
    return got


def both(pair: tuple[lancesql.Connection, lancesql.Connection], sql: str) -> None:
    for con in pair:
        con.execute(sql)


def test_backfills_by_lance_and_by_the_engine(pair: tuple[lancesql.Connection, lancesql.Connection]) -> None:
    on_ray, local = pair
    before = _version(on_ray)
    # Lance computes this one on each worker...
    both(pair, "ALTER TABLE mnist ADD COLUMN curvy BOOLEAN AS (label IN (0, 3, 6, 8, 9))")
    # ... and the engine these (a subquery; a cast), on a connection each worker opens.
    both(pair, "ALTER TABLE mnist ADD COLUMN gap AS ((SELECT 9) - label)")
    both(pair, "ALTER TABLE mnist ADD COLUMN tag VARCHAR AS (label_name || '#' || CAST(id AS VARCHAR))")
    got = _same(on_ray, local)
    assert _version(on_ray) == before + 3
    assert got.column("gap").to_pylist() == [9 - v for v in got.column("label").to_pylist()]
    assert got.column("tag")[0].as_py() == f"{got.column('label_name')[0]}#{got.column('id')[0]}"
    # Parameters reach the workers too.
    for con in pair:
        con.execute("ALTER TABLE mnist ADD COLUMN shifted AS (label + ? + (SELECT 0))", [100])
    assert _same(on_ray, local).column("shifted").to_pylist()[:3] == [
        v + 100 for v in got.column("label").to_pylist()[:3]
    ]


def test_a_failing_backfill_commits_nothing(pair: tuple[lancesql.Connection, lancesql.Connection]) -> None:
    on_ray, _ = pair
    before = _version(on_ray)
    with pytest.raises(lancesql.Error, match=r"(?i)conversion|cast|overflow|could not"):
        on_ray.execute(
            "ALTER TABLE mnist ADD COLUMN bad AS (CAST(label_name || 'x' AS INTEGER) + (SELECT 0))"
        )
    assert _version(on_ray) == before
    assert "bad" not in _table(on_ray).column_names


def test_add_columns_from_a_query(pair: tuple[lancesql.Connection, lancesql.Connection]) -> None:
    on_ray, local = pair
    both(
        pair,
        "ALTER TABLE mnist ADD COLUMNS FROM "
        "(SELECT id, label * 10 AS score, label_name || '!' AS loud FROM mnist WHERE id % 3 = 0) ON id",
    )
    got = _same(on_ray, local)
    assert got.column("score").null_count == sum(1 for i in got.column("id").to_pylist() if i % 3)


def test_on_a_branch_index_then_optimize(pair: tuple[lancesql.Connection, lancesql.Connection]) -> None:
    """On a branch: CREATE INDEX (scalar and vector) and OPTIMIZE through Ray change the
    branch only and give the local path's table and answers; OPTIMIZE compacts the
    fragments although workers built the indices in one segment each."""
    on_ray, local = pair
    main = _table(on_ray)
    main_version = _version(on_ray)
    both(pair, "ALTER TABLE mnist CREATE BRANCH 'exp'")
    both(pair, "USE BRANCH 'exp'")
    both(pair, "ALTER TABLE mnist ADD COLUMN gap AS ((SELECT 9) - label)")  # tasks on the workers
    both(pair, "INSERT INTO mnist SELECT * FROM mnist WHERE label = 4")  # Ray Data
    both(pair, "CREATE INDEX ON mnist USING BTREE (label)")
    both(
        pair,
        "CREATE INDEX emb_idx ON mnist USING IVF_FLAT (image_emb) "
        "WITH (metric = 'cosine', num_partitions = 4)",
    )
    for con in pair:
        kinds = {(r[0], r[1]) for r in rows(con, "SHOW INDEXES FROM mnist")}
        assert ("emb_idx", "IVF_FLAT") in kinds and any(k[1].upper() == "BTREE" for k in kinds), kinds
    branch = lance.dataset(str(Path(on_ray.root) / "mnist.lance" / "tree" / "exp"))
    assert max(len(d.segments) for d in branch.describe_indices()) > 1  # one per worker
    results = [rows(con, "OPTIMIZE mnist WITH (target_rows_per_fragment = 250)") for con in pair]
    (before, after, *_), *_ = results[0]
    assert results[0] == results[1] and before > 4 and after < before - 2, results
    _same(on_ray, local)
    query = "SELECT id, label FROM mnist WHERE label = 7 ORDER BY id"
    assert rows(on_ray, query) == rows(local, query)
    emb = np.stack(_table(local).column("image_emb").to_numpy(zero_copy_only=False))
    ids = np.asarray(_table(local).column("id"))
    for probe in (0, 17, 399):
        q = emb[probe]
        search = "SELECT id FROM vector_search('mnist', 'image_emb', ?, 10, metric => 'cosine', nprobes => 4)"
        got = [r[0] for r in rows(on_ray, search.replace("?", _vec(q)))]
        want = [r[0] for r in rows(local, search.replace("?", _vec(q)))]
        # The oracle: exact cosine distances with numpy.
        sims = emb @ q / (np.linalg.norm(emb, axis=1) * np.linalg.norm(q))
        exact = ids[np.argsort(-sims, kind="stable")][:10].tolist()
        assert got == want
        assert set(got) == set(exact)
    # main is untouched: its rows, its version, no index
    both(pair, "USE BRANCH 'main'")
    assert _version(on_ray) == main_version and _table(on_ray).equals(main)
    assert rows(on_ray, "SHOW INDEXES FROM mnist") == []


def _vec(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{float(v)!r}" for v in values) + "]"


def test_ctas_and_insert_select_of_a_lance_scan(
    pair: tuple[lancesql.Connection, lancesql.Connection],
) -> None:
    on_ray, local = pair
    both(pair, "CREATE TABLE threes AS SELECT id, label, image_emb FROM mnist WHERE label = 3")
    got = _same(on_ray, local, "threes")
    assert got.num_rows == rows(local, "SELECT count(*) FROM mnist WHERE label = 3")[0][0] > 0
    for con in pair:
        cur = con.cursor()
        cur.execute("INSERT INTO threes SELECT id, label, image_emb FROM mnist WHERE label = 4")
        assert cur.rowcount == rows(local, "SELECT count(*) FROM mnist WHERE label = 4")[0][0]
    _same(on_ray, local, "threes")
    assert _version(on_ray, "threes") == 2
    # Written by the workers fragment by fragment (several fragments), committed once.
    ds = lance.dataset(str(Path(on_ray.root) / "threes.lance"))
    assert ds.versions()[0]["version"] == 1 and len(ds.versions()) == 2


def test_remote_root(cluster: Cluster, base: Path, tmp_path: Path, s3_options: dict[str, str]) -> None:
    """Workers read and write an s3:// root (a local S3-compatible server) through its URI."""
    root = f"s3://{BUCKET}/ray"
    table = lance.dataset(str(base / "mnist.lance")).to_table().sort_by("id")
    uri = f"{root}/mnist.lance"
    lance.write_dataset(table.slice(0, 200), uri, mode="overwrite", storage_options=s3_options)
    lance.write_dataset(table.slice(200), uri, mode="append", storage_options=s3_options)
    shutil.copytree(base, tmp_path / "local")
    local_ds = lance.dataset(str(tmp_path / "local" / "mnist.lance"))
    lance.write_dataset(table.slice(0, 200), local_ds.uri, mode="overwrite")
    lance.write_dataset(table.slice(200), local_ds.uri, mode="append")
    settings = {"ray_address": cluster.address}
    with (
        lancesql.connect(root, storage_options=s3_options, executor="ray", settings=settings) as on_ray,
        lancesql.connect(tmp_path / "local") as local,
    ):
        for sql in (
            "ALTER TABLE mnist ADD COLUMN gap AS ((SELECT 9) - label)",
            "ALTER TABLE mnist ADD COLUMN curvy AS (label IN (0, 3, 6, 8, 9))",
            "CREATE TABLE sevens AS SELECT id, label_name, image_emb FROM mnist WHERE label = 7",
        ):
            assert dict(rows(on_ray, f"EXPLAIN {sql}"))["executor"].startswith("ray")
            on_ray.execute(sql)
            local.execute(sql)
        for name in ("mnist", "sevens"):
            got, want = _table(on_ray, name), _table(local, name)
            assert got.schema == want.schema and got.equals(want)


def test_explain_says_where_it_runs(
    pair: tuple[lancesql.Connection, lancesql.Connection], cluster: Cluster
) -> None:
    on_ray, local = pair
    before = _version(on_ray)
    for sql in (
        "ALTER TABLE mnist ADD COLUMN c AS (label + 1)",
        "CREATE INDEX ON mnist USING BTREE (label)",
        "CREATE TABLE x AS SELECT id FROM mnist WHERE label = 1",
    ):
        plan = dict(rows(on_ray, f"EXPLAIN {sql}"))
        assert plan["executor"].startswith(f"ray ({cluster.address}) through lance-ray"), plan
        assert dict(rows(local, f"EXPLAIN {sql}"))["executor"].startswith("local")
    plan = dict(rows(on_ray, "EXPLAIN CREATE TABLE x AS SELECT label, count(*) FROM mnist GROUP BY label"))
    assert plan["executor"].startswith("local"), plan  # not a plain scan: the engine runs it
    assert _version(on_ray) == before and [r[0] for r in rows(on_ray, "SHOW TABLES")] == ["mnist"]


def _task_workers(cluster: Cluster) -> list[int]:
    """Process ids of this cluster's worker processes running a backfill task now (Ray
    titles a worker process by the task it runs)."""
    raylets = {
        node.all_processes["raylet"][0].process.pid for node in [cluster.head_node, *cluster.worker_nodes]
    }
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read()
        except OSError:
            continue
        if parent in raylets and command.startswith(b"ray::fragment_columns"):
            found.append(int(entry))
    return found


def test_a_worker_killed_mid_task(
    pair: tuple[lancesql.Connection, lancesql.Connection], cluster: Cluster
) -> None:
    """Kill a worker process while it computes a fragment: Ray reruns its task, the
    statement completes, and the table is what it was plus the column: no row missing or
    twice."""
    on_ray, _ = pair
    before = _table(on_ray)
    version = _version(on_ray)
    # Each batch costs the engine a moment, so the statement is still running at the kill.
    sql = (
        "ALTER TABLE mnist ADD COLUMN slow AS "
        "((SELECT count(*) FROM range(20000000) WHERE range % 7 = 0) * 0 + id)"
    )
    on_ray.execute("SET lancesql.ray_batch_size = 10")
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            on_ray.execute(sql)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    killed = None
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        if _task_workers(cluster):
            time.sleep(0.3)  # into its fragment
            running = _task_workers(cluster)
            if running:
                os.kill(running[0], signal.SIGKILL)
                killed = running[0]
        time.sleep(0.02)
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert killed is not None, "no worker was seen running a task"
    assert outcome == [None], outcome  # Ray reran the dead worker's task
    assert _version(on_ray) == version + 1
    got = _table(on_ray)
    assert got.drop_columns(["slow"]).equals(before)
    ids = got.column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 400
    assert got.column("slow").to_pylist() == ids


def test_embed_image_backfill(cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """``ADD COLUMN clip AS (embed_image(image))`` on a worker gives open_clip's own
    vectors (ViT-B-32 with seeded random weights from a local checkpoint, on the CPU);
    the one worker loads the model once for both fragments."""
    pytest.importorskip("open_clip")
    from tests.test_embed import open_clip_images

    weights = request.getfixturevalue("weights")
    mnist.build(tmp_path, limit=16, batches=2, indices=False)
    clip = {"pretrained": weights.path, "device": "cpu", "batch_size": 8}
    settings = {"ray_address": cluster.address, "ray_batch_size": 8, "ray_workers": 1}
    with lancesql.connect(tmp_path, executor="ray", settings=settings, clip=clip) as on_ray:
        before = _table(on_ray)
        on_ray.execute("ALTER TABLE mnist ADD COLUMN clip AS (embed_image(image))")
        got = _table(on_ray)
    assert got.num_rows == 16 and got.schema.field("clip").type == pa.list_(pa.float32(), 512)
    vectors = np.stack(got.column("clip").to_numpy(zero_copy_only=False))
    want = open_clip_images(weights, got.column("image").to_pylist())
    assert np.allclose(vectors, want, atol=1e-4)
    assert got.drop_columns(["clip"]).equals(before)


#: What a user's own script does with a cluster's Ray Client address.
CLIENT_SCRIPT = textwrap.dedent(
    """
    import sys

    import ray
    import lancesql

    root, address = sys.argv[1], sys.argv[2]
    with lancesql.connect(root, executor=address, settings={"ray_batch_size": 50}) as con:
        sql = "ALTER TABLE mnist ADD COLUMN gap AS ((SELECT 9) - label)"
        print("executor:", dict(con.execute("EXPLAIN " + sql).fetchall())["executor"])
        con.execute(sql)
        con.execute("ALTER TABLE mnist ADD COLUMN curvy AS (label IN (0, 3, 6, 8, 9))")
        print("client:", ray.util.client.ray.is_connected())
    """
)


@pytest.fixture
def client_address(cluster: Cluster) -> Iterator[str]:
    """A Ray Client server for ``cluster`` on 127.0.0.1: ``ray://127.0.0.1:port``.

    Ray's own ``ray start --ray-client-server-port`` serves clients through a proxy that
    starts a server process per client; on a busy 2-core machine that process once took
    over 150 s to start. The server here is Ray's single-process ("legacy") one: the same
    Ray Client protocol a user's ``ray://`` address speaks, one process started up front.
    """
    port = _free_port()
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ray.util.client.server",
            "--mode",
            "legacy",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--address",
            cluster.address,
        ],
        env={**os.environ, "PYTHONPATH": path},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, "the Ray Client server exited at start"
            assert time.monotonic() < deadline, "the Ray Client server did not listen within 60 s"
            time.sleep(0.2)
        yield f"ray://127.0.0.1:{port}"
    finally:
        stop(server, timeout=20)


def test_ray_client_address(client_address: str, base: Path, tmp_path: Path) -> None:
    """``executor = 'ray://host:port'``: a driver in another process (a user's script)
    joins the cluster through its Ray Client server; its backfills (by the engine and
    by Lance) give the local path's table."""
    for name in ("client", "local"):
        shutil.copytree(base, tmp_path / name)
    address = client_address
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT, str(tmp_path / "client"), address],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"executor: ray ({address}) through lance-ray" in done.stdout
    assert "client: True" in done.stdout
    with lancesql.connect(tmp_path / "local") as local:
        local.execute("ALTER TABLE mnist ADD COLUMN gap AS ((SELECT 9) - label)")
        local.execute("ALTER TABLE mnist ADD COLUMN curvy AS (label IN (0, 3, 6, 8, 9))")
        want = _table(local)
    with lancesql.connect(tmp_path / "client") as client:
        got = _table(client)
    assert got.schema == want.schema and got.equals(want)
