"""Object-store requests of a backfill on Ray, counted on an S3 server (docs/SCALE.md).

moto's S3 server runs in this process behind a WSGI layer that counts every request
(method, and the kind of object: a manifest, a transaction file, a data file, a
listing); a local Ray (2 CPUs) runs the statements against an ``s3://`` root on it, so
the counts include the workers' requests and the driver's. Each statement runs on a
fresh table of F fragments of R MNIST rows (PNG images, 512-d embeddings), for two
values of F: the difference, divided by the difference in F, is what one more
fragment costs; the rest is the statement's fixed cost.

1. ``ADD COLUMN curvy AS (label IN (...))``: Lance computes it on the workers.
2. ``ADD COLUMN size AS ((SELECT 0) + octet_length(image))``: the engine computes it
   from the images, as ``embed_image(image)`` reads them.

Run: ``python benchmarks/s3_requests.py [--rows 500] [--fragments 2 8]`` (needs
``lancesql[ray]`` and ``moto[server]``). It prints a Markdown table.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import socket
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray on 127.0.0.1

import boto3  # noqa: E402
import lance  # noqa: E402
from moto.server import DomainDispatcherApplication, create_backend_app  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

import lancesql  # noqa: E402
from examples import mnist  # noqa: E402

BUCKET = "requests"
STATEMENTS = {
    "Lance-computed backfill": "ALTER TABLE mnist ADD COLUMN curvy AS (label IN (0, 3, 6, 8, 9))",
    "engine backfill reading the images": (
        "ALTER TABLE mnist ADD COLUMN size AS ((SELECT 0) + octet_length(image))"
    ),
}


class Counting:
    """A WSGI layer counting requests by method and kind of object."""

    def __init__(self, app: Any):
        self.app = app
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        if "list-type" in query or path.rstrip("/") == f"/{BUCKET}":
            kind = "LIST"
        elif "/_versions/" in path:
            kind = f"{method} manifest"
        elif "/_transactions/" in path:
            kind = f"{method} transaction"
        elif "/data/" in path:
            multipart = "uploadId" in query or "uploads" in query
            kind = f"{method} data file" + (" (multipart)" if multipart else "")
        else:
            kind = f"{method} other"
        with self.lock:
            self.counts[kind] += 1
        return self.app(environ, start_response)

    def take(self) -> collections.Counter[str]:
        with self.lock:
            counts, self.counts = self.counts, collections.Counter()
        return counts


def serve() -> tuple[Counting, dict[str, str]]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    counting = Counting(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, counting, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1"
    ).create_bucket(Bucket=BUCKET)
    options = {
        "aws_endpoint": endpoint,
        "aws_access_key_id": "t",
        "aws_secret_access_key": "t",
        "aws_region": "us-east-1",
        "allow_http": "true",
    }
    return counting, options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=500, help="rows per fragment")
    parser.add_argument("--fragments", type=int, nargs=2, default=[2, 8])
    args = parser.parse_args()
    counting, options = serve()
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp)
        mnist.build(local, limit=args.rows * max(args.fragments), batches=1, indices=False)
        rows = lance.dataset(str(local / "mnist.lance")).to_table().sort_by("id")
    results: dict[tuple[str, int], collections.Counter[str]] = {}
    for fragments in args.fragments:
        for label, sql in STATEMENTS.items():
            root = f"s3://{BUCKET}/f{fragments}-{len(results)}"
            uri = f"{root}/mnist.lance"
            for i in range(fragments):
                part = rows.slice(i * args.rows, args.rows)
                lance.write_dataset(part, uri, mode="append" if i else "create", storage_options=options)
            settings = {"ray_batch_size": 1024}
            with lancesql.connect(root, storage_options=options, executor="ray", settings=settings) as con:
                con.execute("SELECT count(*) FROM mnist").fetchall()  # open the table, start Ray
                con.execute(sql.replace("curvy", "warm").replace("size", "warm"))  # warm workers
                counting.take()
                con.execute(sql)
                results[(label, fragments)] = counting.take()
    low, high = args.fragments
    kinds = sorted({k for c in results.values() for k in c})
    print(f"{args.rows} rows per fragment; requests for the statement, F = {low} and F = {high} fragments\n")
    print(f"| statement | request | F={low} | F={high} | per extra fragment | fixed |")
    print("|---|---|---:|---:|---:|---:|")
    for label in STATEMENTS:
        for kind in [*kinds, "all"]:
            a = sum(results[(label, low)].values()) if kind == "all" else results[(label, low)][kind]
            b = sum(results[(label, high)].values()) if kind == "all" else results[(label, high)][kind]
            if a == b == 0:
                continue
            per = (b - a) / (high - low)
            print(f"| {label} | {kind} | {a} | {b} | {per:.1f} | {a - per * low:.1f} |")


if __name__ == "__main__":
    main()
