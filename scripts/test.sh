#!/usr/bin/env bash
# Set up a virtual environment from pyproject.toml and run lint, types and the tests.
# This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev,clip,ray]"
.venv/bin/ruff check lancesql udfs tests examples benchmarks
.venv/bin/mypy
.venv/bin/lint-imports
# Two worker processes, each taking whole test modules (their fixtures built once per
# worker): much of the suite waits on subprocesses, Ray and I/O, so two cores run it in
# little more than half the time. LANCESQL_TEST_WORKERS=0 runs it in one process.
.venv/bin/python -m pytest -q -n "${LANCESQL_TEST_WORKERS:-2}" --dist loadfile "$@"
# SQLAlchemy's own dialect compliance suite is a pytest run of its own (SQLAlchemy's plugin
# takes over collection), on a fresh root; tests/sqlalchemy_suite/requirements.py says
# what lancesql does not support.
suite_root=$(mktemp -d)
trap 'rm -rf "$suite_root"' EXIT
repo=$PWD
(cd tests/sqlalchemy_suite && PYTHONPATH="$repo" "$repo/.venv/bin/python" -m pytest -c pytest.ini -q . \
    --dburi "lancesql:///$suite_root")
