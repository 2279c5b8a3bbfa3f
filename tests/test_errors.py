"""Errors a user can act on, and a connection that stays usable after them."""

from __future__ import annotations

import pytest

import lancesql
from tests.conftest import rows


def test_sql_that_does_not_parse_names_line_and_column(con: lancesql.Connection) -> None:
    with pytest.raises(lancesql.ProgrammingError, match=r"line 2, column \d+"):
        rows(con, "SELECT *\nFROM WHERE label = 3")


def test_empty_sql(con: lancesql.Connection) -> None:
    with pytest.raises(lancesql.ProgrammingError, match="empty SQL"):
        rows(con, "  ")


def test_unknown_table_lists_the_tables(con: lancesql.Connection) -> None:
    with pytest.raises(lancesql.ProgrammingError, match=r"unknown table 'trian'.*tables: mnist"):
        rows(con, "SELECT * FROM trian")


def test_unknown_path(con: lancesql.Connection) -> None:
    with pytest.raises(lancesql.ProgrammingError, match="no Lance dataset at"):
        rows(con, "SELECT * FROM '/no/such/x.lance'")


def test_unknown_version_lists_the_versions(con: lancesql.Connection) -> None:
    with pytest.raises(lancesql.ProgrammingError, match=r"no version 99; its versions are 1\.\.7"):
        rows(con, "SELECT * FROM mnist AT (VERSION => 99)")
    with pytest.raises(lancesql.ProgrammingError, match="no version 0"):
        rows(con, "SELECT * FROM lance_scan('mnist', 0)")


def test_unknown_tag_says_how_to_create_it(con: lancesql.Connection) -> None:
    with pytest.raises(lancesql.ProgrammingError, match=r"no tag 'v9' \(tags: none\).*CREATE TAG"):
        rows(con, "SELECT * FROM mnist AT (TAG => 'v9')")


def test_unknown_column_is_a_programming_error(con: lancesql.Connection) -> None:
    with pytest.raises(lancesql.ProgrammingError):
        rows(con, "SELECT no_such_column FROM mnist")


def test_bad_table_function_arguments(con: lancesql.Connection) -> None:
    with pytest.raises(lancesql.ProgrammingError, match="no argument 'verison'"):
        rows(con, "SELECT * FROM lance_scan('mnist', verison => 2)")
    with pytest.raises(lancesql.ProgrammingError, match="not a value here"):
        rows(con, "SELECT * FROM lance_scan(mnist)")


def test_a_failed_statement_leaves_the_connection_usable(con: lancesql.Connection) -> None:
    cur = con.cursor()
    for bad in ("SELEC 1", "SELECT * FROM nope", "SELECT * FROM mnist AT (VERSION => 42)", "SELECT 1/'x'"):
        with pytest.raises(lancesql.Error):
            cur.execute(bad)
        assert cur.execute("SELECT count(*) FROM mnist").fetchone() == (5000,)
