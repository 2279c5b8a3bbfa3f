"""The command line: ``lancesql [ROOT] [-e SQL | -f FILE] [--engine ...] [--format ...]``.

With ``-e`` or ``-f`` the SQL runs as a script; so do statements piped on standard
input (as in DuckDB's CLI). With neither, on a terminal, an interactive shell starts:
history (in ``~/.lancesql_history``), statements over several lines ending with ``;``,
and dot commands (``.tables``, ``.schema``, ``.format``, ``.timer``, ``.help``,
``.quit``). It uses prompt_toolkit when installed (the ``cli`` extra), readline
otherwise.

Results print as an aligned text table (the default), CSV, JSON or Parquet. The table
is for people: image bytes show as a size note (``<PNG 1.2 kB>``) and long vectors are
abbreviated; CSV and JSON keep every value (binary as base64); Parquet keeps Arrow
types and goes to ``-o FILE`` or to standard output when it is not a terminal.

An error prints as one line on standard error, without a traceback unless
``--traceback``; a script stops at the first error and exits with status 1.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import csv
import datetime as dt
import decimal
import json
import math
import os
import re
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

import lancesql
from lancesql.errors import Error, ProgrammingError
from lancesql.html import blob_note
from lancesql.parse import tokenize
from lancesql.ui import main as ui_main

FORMATS = ("table", "csv", "json", "parquet")
HISTORY = os.path.expanduser(os.environ.get("LANCESQL_HISTORY", "~/.lancesql_history"))
PROMPT = "lancesql> "
CONTINUATION = "     ...> "

HELP = """\
Statements end with ';' and may span lines. Dot commands:
  .tables              list the tables under the root (SHOW TABLES)
  .schema TABLE        the columns of TABLE (DESCRIBE TABLE)
  .format FORMAT       table, csv, json or parquet (parquet needs .output FILE)
  .output [FILE]       write results to FILE; without FILE, back to the terminal
  .maxrows N           rows a table shows (0: all)
  .timer on|off        print how long each statement took
  .help                this text
  .quit / .exit        leave (Ctrl-D does too)"""


# -- splitting scripts --------------------------------------------------------------------


def split_statements(sql: str) -> list[str]:
    """The statements of a script, split at ``;`` outside strings and comments.

    >>> split_statements("SELECT ';' AS s; -- a comment; here\\nSELECT 2")
    ["SELECT ';' AS s", '-- a comment; here\\nSELECT 2']
    """
    tokens = tokenize(sql)
    out: list[str] = []
    start = 0
    for tok in tokens:
        if tok.text == ";" and tok.token_type.name == "SEMICOLON":
            text = sql[start : tok.start].strip()
            if text:
                out.append(text)
            start = tok.end + 1
    rest = sql[start:].strip()
    if rest and any(t.start >= start for t in tokens):
        out.append(rest)
    return out


def is_complete(buffer: str) -> bool:
    """Whether a shell's buffer ends a statement: its last token is a ``;``.

    >>> is_complete("SELECT 1;"), is_complete("SELECT ';"), is_complete("SELECT 1 -- x;")
    (True, False, False)
    """
    try:
        tokens = tokenize(buffer)
    except ProgrammingError:  # an unterminated string or comment: keep reading
        return False
    return bool(tokens) and tokens[-1].token_type.name == "SEMICOLON"


# -- rendering values ---------------------------------------------------------------------



def size_note(data: bytes) -> str:
    """A short note in place of binary data.

    >>> size_note(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(1200)), size_note(b"abc")
    ('<PNG 1.2 kB>', '<BLOB 3 B>')
    """
    return f"<{blob_note(data)}>"




def display(value: Any, width: int = 60) -> str:
    """One value as the table shows it.

    >>> display([0.5] * 512)
    '[0.5, 0.5, 0.5, 0.5, …, 0.5] (512)'
    >>> display(None), display(1.0 / 3), display("x" * 70)[-3:]
    ('NULL', '0.333333', 'xx…')
    """
    if value is None:
        return "NULL"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return size_note(bytes(value))
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else _unsigned_zero(f"{value:.{6 if width > 20 else 4}g}")
    if isinstance(value, list):
        items = [display(v, 20) for v in value]
        if len(items) > 6:
            return f"[{', '.join(items[:4])}, …, {items[-1]}] ({len(items)})"
        text = f"[{', '.join(items)}]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {display(v, 20)}" for k, v in value.items()) + "}"
    else:
        text = str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def _unsigned_zero(text: str) -> str:
    """``-0.0`` (and ``-0.0000``, ``-0``) as ``0.0``: a sign on zero says nothing to a reader."""
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def _decimals(values: Sequence[float], significant: int = 6) -> int:
    """Decimals that show the largest of ``values`` to ``significant`` digits, less
    the trailing zeros no value needs (``[1.0, 2.5]``: 1)."""
    largest = max((abs(v) for v in values), default=0.0)
    if largest == 0:
        return 1
    places = min(8, max(1, significant - 1 - math.floor(math.log10(largest))))
    needed = [len(f"{v:.{places}f}".split(".")[1].rstrip("0")) for v in values]
    return max([1, *needed])


def number_format(values: Sequence[Any]) -> Callable[[float], str]:
    """How a column of floats prints: one number of decimals for the whole column,
    enough to show six significant digits and to tell apart every two rows that
    differ, with ``-0.0`` as ``0.0``; ``%g`` for columns of huge or tiny magnitudes.

    >>> fmt = number_format([-1.1920929e-07, 0.2345678, 0.31])
    >>> [fmt(v) for v in [-1.1920929e-07, 0.2345678, 0.31]]
    ['0.000000', '0.234568', '0.310000']
    >>> fmt = number_format([1.0, 2.5, -0.0])
    >>> [fmt(v) for v in [1.0, 2.5, -0.0]]
    ['1.0', '2.5', '0.0']
    >>> fmt = number_format([0.1234561, 0.1234562])
    >>> [fmt(v) for v in [0.1234561, 0.1234562]]
    ['0.1234561', '0.1234562']
    """
    finite = [float(v) for v in values if isinstance(v, float) and math.isfinite(v)]
    largest = max((abs(v) for v in finite), default=0.0)
    if largest >= 1e15 or (largest and largest < 1e-4):
        return lambda v: _unsigned_zero(f"{v:.6g}")
    places = _decimals(finite)
    distinct = len(set(finite))
    while places < 12 and len({round(v, places) for v in finite}) < distinct:
        places += 1
    return lambda v: _unsigned_zero(f"{v:.{places}f}")


def plain(value: Any) -> Any:
    """One value as JSON holds it: binary as base64, times as ISO text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (dt.date, dt.time, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def _is_numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


# -- writing results ----------------------------------------------------------------------


class Output:
    """Where results go, in which format."""

    def __init__(self, fmt: str, path: str | None, max_rows: int):
        self.format = fmt
        self.max_rows = max_rows
        self._path = path
        self._file: IO[Any] | None = None
        self._parquet_done = False

    @property
    def path(self) -> str | None:
        return self._path

    @path.setter
    def path(self, value: str | None) -> None:
        """``.output FILE``: later results go to FILE (created now), or back to stdout."""
        self.close()
        self._path = value

    def write(self, reader: pa.RecordBatchReader) -> None:
        """Write one result; the results of one run follow each other in one file."""
        if self._path is None:
            self._write_to(reader, sys.stdout, sys.stdout.buffer)
            sys.stdout.flush()
            return
        if self.format == "parquet":
            if self._parquet_done:
                raise ProgrammingError("--format parquet writes one result: run one query")
            with open(self._path, "wb") as fh:
                self._write_to(reader, None, fh)
            return
        if self._file is None:
            self._file = open(self._path, "w", encoding="utf-8")  # noqa: SIM115 - kept open
        self._write_to(reader, self._file, None)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write_to(self, reader: pa.RecordBatchReader, text: IO[str] | None, binary: Any) -> None:
        if self.format == "table":
            assert text is not None
            write_table(reader, text, self.max_rows)
        elif self.format == "csv":
            assert text is not None
            write_csv(reader, text)
        elif self.format == "json":
            assert text is not None
            write_json(reader, text)
        else:
            if self._parquet_done:
                raise ProgrammingError("--format parquet writes one result: run one query")
            if self._path is None and sys.stdout.isatty():
                raise ProgrammingError("--format parquet is binary: give -o FILE or redirect standard output")
            write_parquet(reader, binary)
            self._parquet_done = True


def write_table(reader: pa.RecordBatchReader, out: IO[str], max_rows: int = 40) -> None:
    """An aligned text table; at most ``max_rows`` rows (0: all), then a count."""
    schema = reader.schema
    rows: list[list[str]] = []
    total = 0
    values: list[tuple[Any, ...]] = []
    for batch in reader:
        total += batch.num_rows
        room = batch.num_rows if max_rows <= 0 else max(0, max_rows - len(values))
        if room:
            columns = [c.to_pylist() for c in batch.slice(0, room).columns]
            values.extend(zip(*columns, strict=True))
    if any(isinstance(v, str) and "\n" in v for row in values for v in row):
        write_blocks(schema.names, values, total, out)
        return
    formats = [
        number_format([row[i] for row in values]) if pa.types.is_floating(f.type) else None
        for i, f in enumerate(schema)
    ]
    rows = [
        [
            fmt(v) if fmt is not None and isinstance(v, float) and math.isfinite(v) else display(v)
            for v, fmt in zip(row, formats, strict=True)
        ]
        for row in values
    ]
    names = schema.names
    widths = [len(n) for n in names]
    for row in rows:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    right = [_is_numeric(f.type) for f in schema]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)]
        return " | ".join(parts).rstrip()

    out.write(line(names) + "\n")
    out.write("-+-".join("-" * w for w in widths) + "\n")
    for row in rows:
        out.write(line(row) + "\n")
    out.write(_count_line(len(rows), total))


def _count_line(shown: int, total: int) -> str:
    more = f", {shown} shown (.maxrows / --max-rows)" if shown < total else ""
    return f"({total} row{'s' if total != 1 else ''}{more})\n"


def write_blocks(names: Sequence[str], rows: Sequence[Sequence[Any]], total: int, out: IO[str]) -> None:
    """Rows holding text of several lines (an EXPLAIN plan), one field a line and the
    long text as the block it is, indented under its name, rather than cut into a
    table cell with literal ``\\n``."""
    width = max(len(n) for n in names)
    for number, row in enumerate(rows):
        if number:
            out.write("\n")
        for name, value in zip(names, row, strict=True):
            if isinstance(value, str) and "\n" in value:
                out.write(f"{name}:\n")
                out.writelines(f"    {line}\n" for line in value.rstrip("\n").split("\n"))
            else:
                out.write(f"{name.ljust(width)} : {display(value, 200)}\n")
    out.write(_count_line(len(rows), total))


def write_csv(reader: pa.RecordBatchReader, out: IO[str]) -> None:
    """CSV with a header; lists and structs as JSON, binary as base64."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(reader.schema.names)
    for batch in reader:
        columns = [c.to_pylist() for c in batch.columns]
        for row in zip(*columns, strict=True):
            writer.writerow(
                [
                    "" if v is None else json.dumps(plain(v)) if isinstance(v, (list, dict)) else plain(v)
                    for v in row
                ]
            )


def write_json(reader: pa.RecordBatchReader, out: IO[str]) -> None:
    """A JSON array of objects (as DuckDB's ``.mode json``), written as rows arrive."""
    names = reader.schema.names
    first = True
    out.write("[")
    for batch in reader:
        columns = [c.to_pylist() for c in batch.columns]
        for row in zip(*columns, strict=True):
            record = {n: plain(v) for n, v in zip(names, row, strict=True)}
            out.write(("\n" if first else ",\n") + json.dumps(record, ensure_ascii=False))
            first = False
    out.write("\n]\n" if not first else "]\n")


def write_parquet(reader: pa.RecordBatchReader, out: Any) -> None:
    """Parquet, streamed batch by batch."""
    sink = pa.PythonFile(out, mode="w")
    with pq.ParquetWriter(sink, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)


# -- running ------------------------------------------------------------------------------


class Session:
    """A connection, an output, and the options a shell can change."""

    def __init__(self, args: argparse.Namespace):
        options = dict(_pairs(args.storage_option, "--storage-option"))
        settings = dict(_pairs(args.set, "--set"))
        self.connection = lancesql.connect(
            args.root, engine=args.engine, storage_options=options or None, settings=settings
        )
        self.output = Output(args.format, args.output, args.max_rows)
        self.traceback = args.traceback
        self.timer = False
        self.spinner = sys.stderr.isatty()

    def run(self, sql: str) -> None:
        """Run one statement and write its result, if it has one."""
        cursor = self.connection.cursor()
        start = time.perf_counter()
        with _Progress(self.spinner):
            cursor.execute(sql)
        if cursor.description is not None:
            self.output.write(cursor.fetch_record_batch())
        elif self.output.format == "table":
            print(f"OK: {cursor.statusmessage or 'done'}")
        if self.timer:
            print(f"Run time: {time.perf_counter() - start:.3f} s", file=sys.stderr)
        cursor.close()

    def report(self, exc: BaseException) -> None:
        """An error in one line (or with its traceback, when asked)."""
        if self.traceback:
            traceback.print_exception(exc)
        print(error_line(exc), file=sys.stderr)


def error_line(exc: BaseException) -> str:
    """``Error: ProgrammingError: unknown table 'x' ...`` on one line, then the user's
    line of SQL with a caret under the place, when the error points at one."""
    text = str(exc)
    block = ""
    where = re.search(r"\nLINE \d+: ", text)
    if where is not None:
        text, block = text[: where.start()], text[where.start() :].rstrip()
    message = " ".join(text.split()) or type(exc).__name__
    return f"Error: {type(exc).__name__}: {message}{block}"


def warning_line(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    """A Python warning as one line on standard error: ``warning: ...`` (installed as
    ``warnings.showwarning`` by :func:`main`: no file path, no source line)."""
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)


class _Progress:
    """An elapsed-time note on standard error while a statement runs longer than a second."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        start = time.perf_counter()
        if self._stop.wait(1.0):
            return
        frames = "|/-\\"
        i = 0
        while not self._stop.wait(0.2):
            sys.stderr.write(f"\r{frames[i % 4]} running… {time.perf_counter() - start:.1f} s ")
            sys.stderr.flush()
            i += 1
        sys.stderr.write("\r" + " " * 30 + "\r")
        sys.stderr.flush()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def run_script(session: Session, sql: str) -> int:
    """Run every statement of ``sql``; stop at the first error with status 1."""
    try:
        statements = split_statements(sql)
    except Error as exc:
        session.report(exc)
        return 1
    for statement in statements:
        try:
            session.run(statement)
        except BrokenPipeError:  # `lancesql ... | head`: the reader has had enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except (Error, OSError) as exc:
            session.report(exc)
            return 1
    return 0


# -- the interactive shell ----------------------------------------------------------------


def line_reader() -> Callable[[str], str]:
    """A function that reads a line with history: prompt_toolkit's, else readline's."""
    if os.environ.get("LANCESQL_SHELL") != "readline":
        try:
            from prompt_toolkit import PromptSession
            from prompt_toolkit.history import FileHistory

            prompt_session: Any = PromptSession(history=FileHistory(HISTORY))
            return lambda prompt: str(prompt_session.prompt(prompt))
        except ImportError:
            pass
    try:
        import readline

        with contextlib.suppress(OSError):
            readline.read_history_file(HISTORY)
        readline.set_history_length(10_000)
        atexit.register(_save_history, readline)
    except ImportError:  # no readline (Windows): plain input
        pass
    return input


def _save_history(readline: Any) -> None:
    with contextlib.suppress(OSError):
        readline.write_history_file(HISTORY)


def shell(session: Session, read: Callable[[str], str] | None = None) -> int:
    """The interactive loop."""
    read = read or line_reader()
    con = session.connection
    print(f"lancesql {_version()} on {con.engine.name}, root {con.root}\nEnter SQL ending with ';', or .help")
    buffer = ""
    while True:
        try:
            line = read(CONTINUATION if buffer else PROMPT)
        except EOFError:
            print()
            return 0
        except KeyboardInterrupt:
            buffer = ""
            print("^C")
            continue
        if not buffer and line.strip().startswith("."):
            if dot_command(session, line.strip()) is False:
                return 0
            continue
        buffer = f"{buffer}\n{line}" if buffer else line
        if not buffer.strip():
            buffer = ""
            continue
        if not is_complete(buffer):
            continue
        text, buffer = buffer, ""
        try:
            for statement in split_statements(text):
                session.run(statement)
        except KeyboardInterrupt:
            print("^C (statement interrupted)", file=sys.stderr)
        except (Error, OSError) as exc:
            session.report(exc)


def dot_command(session: Session, line: str) -> bool:
    """Run a dot command; False means quit."""
    name, _, arg = line.partition(" ")
    arg = arg.strip().rstrip(";")
    try:
        if name in (".quit", ".exit", ".q"):
            return False
        if name == ".help":
            print(HELP)
        elif name == ".tables":
            session.run("SHOW TABLES")
        elif name == ".schema":
            if not arg:
                raise ProgrammingError(".schema needs a table name: .schema TABLE")
            session.run(f"DESCRIBE {arg}")
        elif name in (".format", ".mode"):
            if arg not in FORMATS:
                raise ProgrammingError(f"{name} takes one of {', '.join(FORMATS)}")
            session.output.format = arg
        elif name == ".output":
            session.output.path = arg or None
        elif name == ".maxrows":
            session.output.max_rows = int(arg)
        elif name == ".timer":
            session.timer = arg.lower() in ("on", "1", "true")
        else:
            raise ProgrammingError(f"unknown command {name}: see .help")
    except (Error, OSError, ValueError) as exc:
        session.report(exc)
    return True


def _version() -> str:
    return lancesql.__version__


def _pairs(items: Sequence[str] | None, flag: str) -> Iterator[tuple[str, str]]:
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ProgrammingError(f"{flag} takes KEY=VALUE, got {item!r}")
        yield key.strip(), value.strip()


# -- main ---------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lancesql",
        description="SQL over the Lance datasets under ROOT (each <name>.lance is a table).",
        epilog="With no -e/-f, statements piped on standard input run as a script; "
        "on a terminal an interactive shell starts. `lancesql ui [ROOT]` serves a local web page.",
    )
    p.add_argument(
        "root",
        nargs="?",
        default=os.environ.get("LANCESQL_ROOT", "."),
        help="directory or URI holding *.lance datasets (default: .)",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("-e", "--execute", metavar="SQL", help="run SQL and exit")
    source.add_argument("-f", "--file", metavar="FILE", help="run the SQL script FILE and exit")
    p.add_argument("--engine", choices=("duckdb", "datafusion"), default="duckdb")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (table)")
    p.add_argument("-o", "--output", metavar="FILE", help="write results to FILE")
    p.add_argument(
        "--max-rows",
        type=int,
        default=40,
        metavar="N",
        help="rows a table shows (0: all; csv/json/parquet write all)",
    )
    p.add_argument(
        "--storage-option",
        action="append",
        metavar="KEY=VALUE",
        help="an object-store option for Lance (repeatable)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="a lancesql setting, as SET lancesql.NAME = VALUE (repeatable)",
    )
    p.add_argument("--traceback", action="store_true", help="print tracebacks of errors")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The ``lancesql`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ui"]:  # `lancesql ui [ROOT] ...`: the local web page
        return ui_main(argv[1:])
    args = parser().parse_args(argv)
    warnings.showwarning = warning_line
    try:
        session = Session(args)
    except (Error, OSError) as exc:
        if args.traceback:
            traceback.print_exc()
        print(error_line(exc), file=sys.stderr)
        return 1
    try:
        if args.execute is not None:
            return run_script(session, args.execute)
        if args.file is not None:
            try:
                with open(args.file, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError as exc:
                session.report(exc)
                return 1
            return run_script(session, text)
        if not sys.stdin.isatty():
            return run_script(session, sys.stdin.read())
        return shell(session)
    finally:
        session.output.close()
        session.connection.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
