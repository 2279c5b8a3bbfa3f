"""A remote root for real: ``s3://`` served by moto's S3 server on 127.0.0.1.

The server is started by the test (bounded: it must answer within 60 s) and killed at
the end; every call goes through ``storage_options``, as against any S3-compatible store.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import lance
import pytest

import lancesql
from tests.conftest import rows, stop

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")

BUCKET = "lancesql-test"
REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_options() -> Iterator[dict[str, str]]:
    """An S3 server on 127.0.0.1 with an empty bucket, and the options to reach it."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.2)
        options = {
            "aws_endpoint": endpoint,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "aws_region": "us-east-1",
            "allow_http": "true",
        }
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        ).create_bucket(Bucket=BUCKET)
        yield options
    finally:
        stop(server, timeout=10)


@pytest.fixture(scope="module")
def s3_root(s3_options: dict[str, str], mnist_root: Path) -> str:
    """``s3://lancesql-test/db`` holding ``mnist`` (400 rows in two versions) and ``other``."""
    root = f"s3://{BUCKET}/db"
    local = lance.dataset(str(mnist_root / "mnist.lance"))
    table = local.to_table(filter="id < 400").sort_by("id")
    uri = f"{root}/mnist.lance"
    lance.write_dataset(table.slice(0, 200), uri, storage_options=s3_options)
    lance.write_dataset(table.slice(200), uri, mode="append", storage_options=s3_options)
    lance.write_dataset(table.slice(0, 5), f"{root}/other.lance", storage_options=s3_options)
    return root


@pytest.fixture
def s3con(s3_root: str, s3_options: dict[str, str], engine: str) -> Iterator[lancesql.Connection]:
    with lancesql.connect(s3_root, engine=engine, storage_options=s3_options) as connection:
        yield connection


def test_show_tables_lists_the_remote_root(s3con: lancesql.Connection) -> None:
    assert rows(s3con, "SHOW TABLES") == [("mnist", "table"), ("other", "table")]


def test_a_view_is_stored_on_the_remote_root(
    s3_root: str, s3_options: dict[str, str], s3con: lancesql.Connection, engine: str
) -> None:
    s3con.execute("CREATE VIEW few AS SELECT id FROM other WHERE id < 3")
    with lancesql.connect(s3_root, engine=engine, storage_options=s3_options) as other:
        assert ("few", "view") in rows(other, "SHOW TABLES")
        expected = lance.dataset(f"{s3_root}/other.lance", storage_options=s3_options).count_rows("id < 3")
        assert rows(other, "SELECT count(*) FROM few") == [(expected,)]
        other.execute("DROP VIEW few")
    assert ("few", "view") not in rows(s3con, "SHOW TABLES")


def test_reads_and_time_travel(s3con: lancesql.Connection, mnist_root: Path) -> None:
    assert rows(s3con, "SELECT count(*) FROM mnist") == [(400,)]
    assert rows(s3con, "SELECT count(*) FROM mnist AT (VERSION => 1)") == [(200,)]
    assert rows(s3con, "SELECT max(id) FROM mnist VERSION AS OF 1") == [(199,)]
    local = lancesql.connect(mnist_root)
    sql = "SELECT id, label_name FROM mnist WHERE label = 3 AND id < 400 ORDER BY id"
    assert rows(s3con, sql) == rows(local, sql)
    described = rows(s3con, "DESCRIBE mnist")
    assert [r[0] for r in described] == ["id", "image", "label", "label_name", "image_emb"]


def test_unknown_remote_table_and_missing_bucket(
    s3con: lancesql.Connection, s3_options: dict[str, str]
) -> None:
    with pytest.raises(lancesql.ProgrammingError, match=r"unknown table 'nope'.*mnist, other"):
        rows(s3con, "SELECT * FROM nope")
    with (
        lancesql.connect("s3://no-such-bucket-x/db", storage_options=s3_options) as con,
        pytest.raises(lancesql.OperationalError, match="cannot list the tables"),
    ):
        rows(con, "SHOW TABLES")


def test_torch_dataset_over_s3(s3con: lancesql.Connection) -> None:
    pytest.importorskip("torch")
    ds = lancesql.torch_dataset(
        s3con, "SELECT id, image_emb FROM mnist AT (VERSION => 1) WHERE label = 3"
    )
    ids = sorted(int(s["id"]) for s in ds.__getitems__(range(len(ds))))
    assert ids == [
        r[0] for r in rows(s3con, "SELECT id FROM mnist WHERE label = 3 AND id < 200 ORDER BY id")
    ]
    assert ds.storage_options is not None and ds.version == 1
    # A worker reopens the dataset on S3 with the connection's storage_options.
    loader = ds.loader(batch_size=16, num_workers=1, timeout=120)
    assert sorted(int(i) for batch in loader for i in batch["id"]) == ids


def test_command_line_on_s3(s3_root: str, s3_options: dict[str, str], tmp_path: Path) -> None:
    flags = [f"--storage-option={k}={v}" for k, v in s3_options.items()]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lancesql",
            s3_root,
            *flags,
            "--format",
            "csv",
            "-e",
            "SHOW TABLES; SELECT count(*) AS n FROM mnist AT (VERSION => 1)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["name,kind", "mnist,table", "other,table", "n", "200"]


def test_search_over_s3(s3con: lancesql.Connection) -> None:
    got = rows(
        s3con,
        "SELECT id FROM vector_search('mnist', 'image_emb', "
        "(SELECT image_emb FROM mnist WHERE id = 7), 5)",
    )
    assert len(got) == 5 and got[0][0] == 7


def test_tag_over_s3(s3_root: str, s3_options: dict[str, str]) -> None:
    with lancesql.connect(s3_root, storage_options=s3_options) as con:
        con.execute("ALTER TABLE other CREATE TAG 'first' AS OF VERSION 1")
        assert rows(con, "SELECT count(*) FROM other AT (TAG => 'first')") == [(5,)]


def test_add_column_over_s3(s3_root: str, s3_options: dict[str, str]) -> None:
    with lancesql.connect(s3_root, storage_options=s3_options) as con:
        con.execute("ALTER TABLE other ADD COLUMN is_odd BOOLEAN AS (id % 2 = 1)")
        assert rows(con, "SELECT count(*) FROM other WHERE is_odd") == [(2,)]
