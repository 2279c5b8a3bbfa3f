"""``lancesql ui [ROOT] [--port N] [--write]``: a local web page over a root.

It serves on 127.0.0.1 only, behind a random token in its URL (printed at start, as
Jupyter does): the tables with their versions, tags and branches, a SQL box whose
results show as a grid of thumbnails or a table, "similar" on any row with a vector
column (a ``vector_search`` by that row's vector), and a version/tag picker that
re-runs the query at that version. Read-only unless started with ``--write``.
Needs the ``ui`` extra (Starlette, uvicorn, Jinja2, Pillow); htmx is vendored in
``static/``, so the page works offline.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from collections.abc import Sequence

import lancesql


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lancesql ui",
        description="A local web page to browse and query the Lance datasets under ROOT "
        "(on 127.0.0.1, with a token in its URL).",
    )
    p.add_argument("root", nargs="?", default=os.environ.get("LANCESQL_ROOT", "."))
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free one)")
    p.add_argument("--write", action="store_true", help="allow statements that change data")
    p.add_argument("--engine", choices=("duckdb", "datafusion"), default="duckdb")
    p.add_argument("--max-rows", type=int, default=200, metavar="N", help="rows a result shows (200)")
    p.add_argument(
        "--storage-option", action="append", metavar="KEY=VALUE", help="an object-store option for Lance"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the page until interrupted."""
    args = parser().parse_args(argv)
    try:
        import uvicorn

        from lancesql.ui.app import create_app
    except ImportError as exc:
        print(f"Error: lancesql ui needs the ui extra ({exc}): pip install 'lancesql[ui]'", file=sys.stderr)
        return 1
    options = dict(item.split("=", 1) for item in args.storage_option or [])
    try:
        connection = lancesql.connect(args.root, engine=args.engine, storage_options=options or None)
    except (lancesql.Error, OSError) as exc:
        print(f"Error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    token = secrets.token_urlsafe(24)
    app = create_app(connection, token, write=args.write, max_rows=args.max_rows)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", args.port))
    except OSError as exc:
        print(f"Error: cannot listen on 127.0.0.1:{args.port} ({exc}): try --port 0", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    print(f"lancesql ui on {connection.root} ({'read-write' if args.write else 'read-only'})", flush=True)
    print(f"    http://127.0.0.1:{port}/?token={token}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    try:
        server.run(sockets=[sock])
    finally:
        connection.close()
    return 0
