"""The command line, run as a user runs it: a subprocess, and a shell on a pseudo-terminal."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import lancesql
from tests.conftest import rows

REPO = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return dict(
        os.environ,
        PYTHONPATH=str(REPO),
        LANCESQL_HISTORY=str(tmp_path / "history"),
        TERM="xterm",
        PROMPT_TOOLKIT_NO_CPR="1",
        **extra,
    )


def cli(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lancesql", *args],
        input=stdin.encode() if stdin is not None else b"",
        capture_output=True,
        env=env(tmp_path),
        timeout=120,
        check=False,
    )


def text(result: subprocess.CompletedProcess) -> str:
    return result.stdout.decode()


def test_execute_prints_a_table_with_size_notes(mnist_root: Path, engine: str, tmp_path: Path):
    sql = "SELECT id, image, image_emb, label FROM mnist ORDER BY id LIMIT 3"
    result = cli(tmp_path, str(mnist_root), "--engine", engine, "-e", sql)
    assert result.returncode == 0, result.stderr
    lines = text(result).splitlines()
    assert [c.strip() for c in lines[0].split("|")] == ["id", "image", "image_emb", "label"]
    assert re.search(r"<PNG \d+ B>", lines[2])
    assert re.search(r"\[[-0-9.e]+, .*, …, [-0-9.e]+\] \(512\)", lines[2])
    assert lines[-1] == "(3 rows)"
    assert b"\x89PNG" not in result.stdout


def test_file_script_runs_every_statement(mnist_root: Path, tmp_path: Path):
    script = tmp_path / "q.sql"
    script.write_text(
        "-- counts; by label\nSELECT count(*) AS n FROM mnist;\n"
        "SELECT 'a;b' AS s;\nSELECT label FROM mnist WHERE id = 0"
    )
    result = cli(tmp_path, str(mnist_root), "-f", str(script))
    assert result.returncode == 0, result.stderr
    out = text(result)
    assert "5000" in out and "a;b" in out and out.count("(1 row)") == 3


def test_statements_piped_on_stdin_run_as_a_script(mnist_root: Path, tmp_path: Path):
    result = cli(tmp_path, str(mnist_root), "--format", "csv", stdin="SHOW TABLES;\nSELECT 42 AS x;\n")
    assert result.returncode == 0, result.stderr
    assert text(result).splitlines() == ["name,kind", "mnist,table", "x", "42"]


def test_csv_and_json_keep_every_value(mnist_root: Path, engine: str, tmp_path: Path):
    con = lancesql.connect(mnist_root, engine=engine)
    sql = "SELECT id, label, label_name FROM mnist WHERE label = 7 ORDER BY id LIMIT 50"
    expected = [list(r) for r in rows(con, sql)]
    got = cli(tmp_path, str(mnist_root), "--engine", engine, "--format", "csv", "-e", sql)
    table = list(csv.reader(io.StringIO(text(got))))
    assert table[0] == ["id", "label", "label_name"]
    assert [[int(a), int(b), c] for a, b, c in table[1:]] == expected
    got = cli(
        tmp_path,
        str(mnist_root),
        "--engine",
        engine,
        "--format",
        "json",
        "-e",
        "SELECT id, image, image_emb FROM mnist ORDER BY id LIMIT 2",
    )
    records = json.loads(text(got))
    first = rows(con, "SELECT image, image_emb FROM mnist ORDER BY id LIMIT 1")[0]
    import base64

    assert base64.b64decode(records[0]["image"]) == first[0]
    assert records[0]["image_emb"] == pytest.approx(first[1])


def test_parquet_to_a_file_and_to_stdout(mnist_root: Path, tmp_path: Path):
    sql = "SELECT id, image, image_emb FROM mnist WHERE label = 1"
    out = tmp_path / "ones.parquet"
    result = cli(tmp_path, str(mnist_root), "--format", "parquet", "-o", str(out), "-e", sql)
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    con = lancesql.connect(mnist_root)
    assert table.num_rows == rows(con, "SELECT count(*) FROM mnist WHERE label = 1")[0][0]
    assert str(table.schema.field("image_emb").type).startswith("fixed_size_list")
    piped = cli(tmp_path, str(mnist_root), "--format", "parquet", "-e", "SELECT 1 AS one")
    assert pq.read_table(io.BytesIO(piped.stdout)).to_pylist() == [{"one": 1}]


def test_errors_are_one_line_and_stop_a_script(mnist_root: Path, tmp_path: Path):
    result = cli(tmp_path, str(mnist_root), stdin="SELECT 1 AS a;\nSELECT * FROM nope;\nSELECT 2 AS b;\n")
    assert result.returncode == 1
    assert "a" in text(result) and "b\n" not in text(result)
    err = result.stderr.decode().strip().splitlines()
    # one line of error, then the user's line with a caret under the place
    assert err[0].startswith("Error: ProgrammingError: unknown table 'nope'")
    assert err[1:] == ["LINE 1: SELECT * FROM nope", " " * 22 + "^^^^"]
    verbose = cli(tmp_path, str(mnist_root), "--traceback", "-e", "SELEC 1")
    assert verbose.returncode == 1 and b"Traceback" in verbose.stderr
    missing = cli(tmp_path, str(tmp_path / "no-such-root"), "-e", "SELECT 1")
    assert missing.returncode == 1 and missing.stderr.decode().startswith("Error: OperationalError")


class Terminal:
    """The shell on a pseudo-terminal, read with timeouts."""

    def __init__(self, args: list[str], environ: dict[str, str]):
        master, slave = os.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lancesql", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=environ,
            start_new_session=True,
        )
        os.close(slave)
        self.fd = master
        self.seen = ""

    def expect(self, needle: str, timeout: float = 60) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            clean = ANSI.sub("", self.seen)
            if needle in clean:
                self.seen = clean[clean.index(needle) + len(needle) :]
                return clean
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.fd, 65536).decode("utf-8", "replace")
                except OSError:
                    break
        raise AssertionError(f"the shell never printed {needle!r}; it printed {ANSI.sub('', self.seen)!r}")

    def send(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\r")

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            os.close(self.fd)


@pytest.mark.parametrize("backend", ["prompt_toolkit", "readline"])
def test_interactive_shell(mnist_root: Path, tmp_path: Path, backend: str):
    extra = {"LANCESQL_SHELL": "readline"} if backend == "readline" else {}
    term = Terminal([str(mnist_root)], env(tmp_path, **extra))
    try:
        term.expect("lancesql>")
        term.send(".tables")
        assert "mnist" in term.expect("(1 row)")
        term.send("SELECT label, count(*) AS n")
        term.expect("...>")
        term.send("FROM mnist GROUP BY label ORDER BY label;")
        out = term.expect("(10 rows)")
        assert re.search(r"\b9 \|\s+\d+", out)
        term.send("SELECT * FROM nope;")
        assert "Traceback" not in term.expect("Error: ProgrammingError: unknown table 'nope'")
        term.send("SET lancesql.vector_search_refine_factor = 3;")
        term.expect("OK: SET lancesql.vector_search_refine_factor = 3")
        term.send("EXPLAIN SELECT id FROM mnist WHERE label = 3;")
        plan = term.expect("(2 rows)")
        assert "plan:\n    " in plan and "\\n" not in plan
        term.send(".help")
        term.expect(".quit")
        term.send(".quit")
        assert term.close() == 0
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
    history = (tmp_path / "history").read_text()
    assert "FROM mnist GROUP BY label ORDER BY label;" in history


def test_output_file_holds_every_result_and_a_closed_pipe_is_no_error(mnist_root: Path, tmp_path: Path):
    out = tmp_path / "out.csv"
    result = cli(
        tmp_path,
        str(mnist_root),
        "--format",
        "csv",
        "-o",
        str(out),
        "-e",
        "SELECT 1 AS a; SELECT 2 AS b",
    )
    assert result.returncode == 0 and result.stdout == b""
    assert out.read_text().splitlines() == ["a", "1", "b", "2"]
    piped = subprocess.run(
        f"{sys.executable} -m lancesql {mnist_root} --format csv -e 'SELECT * FROM mnist' | head -n 2",
        shell=True,
        capture_output=True,
        env=env(tmp_path),
        timeout=120,
        check=False,
    )
    assert piped.stdout.decode().splitlines()[0] == "id,image,label,label_name,image_emb"
    assert piped.stderr == b""


# -- issue 14: outcomes, warnings, plans, numbers, errors as text --------------------------------
def test_every_statement_prints_a_one_line_outcome(root: Path, engine: str, tmp_path: Path):
    script = (
        "ALTER TABLE mnist CREATE TAG 'clip-v1';\n"
        "CREATE TABLE subset AS SELECT * FROM mnist WHERE id < 500;\n"
        "ALTER TABLE mnist ADD COLUMN is_one BOOLEAN AS (label = 1);\n"
        "INSERT INTO subset SELECT * FROM subset WHERE id < 3;\n"
        "DELETE FROM subset WHERE id = 1;\n"
        "CREATE TABLE empty (id BIGINT);\n"
        "DROP TABLE empty;\n"
        "SET lancesql.vector_search_refine_factor = 3;\n"
    )
    result = cli(tmp_path, str(root), "--engine", engine, stdin=script)
    assert result.returncode == 0, result.stderr
    assert text(result).splitlines() == [
        "OK: tag clip-v1 created at version 7",
        "OK: 500 rows written to subset (version 1)",
        "OK: mnist version 8: add columns is_one",
        "OK: 3 rows inserted into subset (version 2)",
        "OK: 2 rows deleted from subset (version 3)",
        "OK: table empty created (version 1)",
        "OK: table empty dropped",
        "OK: SET lancesql.vector_search_refine_factor = 3",
    ]


def test_a_plan_prints_as_a_block(mnist_root: Path, engine: str, tmp_path: Path):
    result = cli(
        tmp_path, str(mnist_root), "--engine", engine, "-e", "EXPLAIN SELECT id FROM mnist WHERE label = 3"
    )
    assert result.returncode == 0, result.stderr
    out = text(result)
    assert "\\n" not in out  # no literal backslash-n
    lines = out.splitlines()
    assert lines[0] == f"source : engine ({engine})" and lines[1] == "plan:"
    assert all(line.startswith("    ") for line in lines[2:5])
    assert any(line.startswith("source : lance_scan(") for line in lines)
    assert lines[-1] == "(2 rows)"


def test_numbers_print_at_the_precision_that_tells_rows_apart(mnist_root: Path, engine: str, tmp_path: Path):
    sql = (
        "SELECT id, array_cosine_distance(image_emb, (SELECT image_emb FROM mnist WHERE id = 1)) AS d, "
        "-0.0::DOUBLE AS z, 0.1234561::DOUBLE + id / 10000000.0 AS close "
        "FROM mnist WHERE id IN (1, 2, 3) ORDER BY id"
    )
    result = cli(tmp_path, str(mnist_root), "--engine", engine, "-e", sql)
    assert result.returncode == 0, result.stderr
    rows_ = [[c.strip() for c in line.split("|")] for line in text(result).splitlines()[2:5]]
    expected = [
        r[0] for r in lancesql.connect(mnist_root).execute(sql.replace("-0.0::DOUBLE", "0.0")).fetchall()
    ]
    assert [int(r[0]) for r in rows_] == expected
    assert rows_[0][1] == "0.000000"  # the row's own vector: 0, not -1.19209e-07 or -0.0000
    assert all(re.fullmatch(r"\d\.\d{6}", r[1]) for r in rows_)
    assert [r[2] for r in rows_] == ["0.0"] * 3
    assert [r[3] for r in rows_] == ["0.1234562", "0.1234563", "0.1234564"]


def test_a_warning_prints_as_one_line(root: Path, tmp_path: Path):
    script = "RESTORE TABLE mnist TO VERSION 6;\nSELECT count(*) AS n FROM lance_changes('mnist', 7, 8);\n"
    result = cli(tmp_path, str(root), stdin=script)
    assert result.returncode == 0, result.stderr
    err = result.stderr.decode().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: table 'mnist' "), err
    assert "ChangesWarning" not in err[0] and ".py:" not in err[0]


def test_runtime_errors_are_lancesql_errors_in_the_cli(mnist_root: Path, tmp_path: Path):
    result = cli(
        tmp_path,
        str(mnist_root),
        "--engine",
        "datafusion",
        "-e",
        "SELECT 1 / (label - label) AS x FROM mnist",
    )
    assert result.returncode == 1
    err = result.stderr.decode()
    assert err.startswith("Error: DataError: Divide by zero") and "Traceback" not in err
    parse = cli(tmp_path, str(mnist_root), "-e", "SELECT id FROM mnist WHERE label = %s")
    assert "use ? for parameters" in parse.stderr.decode()
    assert parse.stderr.decode().splitlines()[1] == "LINE 1: SELECT id FROM mnist WHERE label = %s"


def test_runtime_errors_in_the_pty_shell(mnist_root: Path, tmp_path: Path):
    term = Terminal([str(mnist_root), "--engine", "datafusion"], env(tmp_path))
    try:
        term.expect("lancesql>")
        term.send("SELECT 1 / (label - label) AS x FROM mnist;")
        assert "Traceback" not in term.expect("Error: DataError: Divide by zero")
        term.send("SELECT id FROM mnist LIMIT;")
        out = term.expect("^^^^^")
        assert "LIMIT is incomplete" in out and "sqlglot" not in out
        term.send(".quit")
        assert term.close() == 0
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
