"""Tags, Iceberg style: ALTER TABLE t CREATE | REPLACE | DROP TAG, and tags used as versions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import lance
import pytest
import sqlglot

import lancesql
from lancesql.context import StatementContext
from lancesql.statements.tags import alter_tag
from tests.conftest import rows


def dataset(root: Path) -> lance.LanceDataset:
    return lance.dataset(str(root / "mnist.lance"))


def tags(con: lancesql.Connection) -> list[tuple[str, int]]:
    return [(r[0], r[1]) for r in rows(con, "SHOW TAGS FROM mnist")]


def test_create_tag_at_a_version_and_read_it_every_way(wcon: lancesql.Connection) -> None:
    cur = wcon.cursor().execute("ALTER TABLE mnist CREATE TAG 'two' AS OF VERSION 2")
    assert cur.description is None
    assert tags(wcon) == [("two", 2)]
    for sql in (
        "SELECT count(*) FROM mnist AT (TAG => 'two')",
        "SELECT count(*) FROM mnist VERSION AS OF 'two'",
        "SELECT count(*) FROM lance_scan('mnist', 'two')",
        "SELECT count(*) FROM mnist AT (VERSION => 'two')",
    ):
        assert rows(wcon, sql) == [(2500,)], sql
    # A tag makes no version.
    assert len(rows(wcon, "SHOW VERSIONS FROM mnist")) == 7
    assert rows(wcon, "SELECT tags FROM lance_versions('mnist') WHERE version = 2") == [("two",)]


def test_create_tag_defaults_to_the_latest_version(wcon: lancesql.Connection) -> None:
    wcon.execute("ALTER TABLE mnist CREATE TAG latest_build")
    assert tags(wcon) == [("latest_build", 7)]


def test_tag_names_as_identifiers_strings_and_parameters(wcon: lancesql.Connection) -> None:
    wcon.execute('ALTER TABLE mnist CREATE TAG "clip-v1" AS OF VERSION 3')
    wcon.execute("ALTER TABLE mnist CREATE TAG ? AS OF VERSION ?", ["v1.0", 1])
    wcon.execute("ALTER TABLE mnist CREATE TAG bare_name AS OF VERSION 'clip-v1'")
    assert tags(wcon) == [("bare_name", 3), ("clip-v1", 3), ("v1.0", 1)]
    assert rows(wcon, "SELECT count(*) FROM mnist AT (TAG => ?)", ["v1.0"]) == [(1250,)]


def test_create_existing_tag_is_an_integrity_error(wcon: lancesql.Connection) -> None:
    wcon.execute("ALTER TABLE mnist CREATE TAG 'prod' AS OF VERSION 4")
    with pytest.raises(
        lancesql.IntegrityError,
        match=r"'mnist' already has tag 'prod' \(on version 4; tags: 'prod' \(version 4\)\)",
    ):
        wcon.execute("ALTER TABLE mnist CREATE TAG 'prod' AS OF VERSION 2")
    wcon.execute("ALTER TABLE mnist CREATE TAG IF NOT EXISTS 'prod' AS OF VERSION 2")
    assert tags(wcon) == [("prod", 4)]


def test_replace_and_create_or_replace_move_a_tag(wcon: lancesql.Connection) -> None:
    wcon.execute("ALTER TABLE mnist CREATE TAG prod AS OF VERSION 1")
    wcon.execute("ALTER TABLE mnist REPLACE TAG prod AS OF VERSION 3")
    assert tags(wcon) == [("prod", 3)]
    wcon.execute("ALTER TABLE mnist CREATE OR REPLACE TAG prod AS OF VERSION 2")
    wcon.execute("ALTER TABLE mnist CREATE OR REPLACE TAG staging")
    assert tags(wcon) == [("prod", 2), ("staging", 7)]
    assert rows(wcon, "SELECT count(*) FROM mnist AT (TAG => 'prod')") == [(2500,)]
    with pytest.raises(lancesql.ProgrammingError, match=r"no tag 'nope' to replace \(tags: 'prod'"):
        wcon.execute("ALTER TABLE mnist REPLACE TAG nope AS OF VERSION 2")


def test_drop_tag(wcon: lancesql.Connection) -> None:
    wcon.execute("ALTER TABLE mnist CREATE TAG a AS OF VERSION 1")
    wcon.execute("ALTER TABLE mnist CREATE TAG b AS OF VERSION 2")
    wcon.execute("ALTER TABLE mnist DROP TAG 'a'")
    assert tags(wcon) == [("b", 2)]
    with pytest.raises(
        lancesql.ProgrammingError, match=r"has no tag 'a' \(tags: 'b' \(version 2\)\)"
    ):
        wcon.execute("ALTER TABLE mnist DROP TAG a")
    wcon.execute("ALTER TABLE mnist DROP TAG IF EXISTS a")
    # The version a tag named stays.
    assert rows(wcon, "SELECT count(*) FROM mnist AT (VERSION => 1)") == [(1250,)]
    with pytest.raises(lancesql.ProgrammingError, match="has no tag 'a'"):
        rows(wcon, "SELECT count(*) FROM mnist AT (TAG => 'a')")


def test_join_a_tagged_version_with_the_latest(wcon: lancesql.Connection, root: Path) -> None:
    wcon.execute("ALTER TABLE mnist CREATE TAG 'trained-on' AS OF VERSION 2")
    ids_then = dataset(root).checkout_version(2).to_table(columns=["id"])["id"].to_pylist()
    dataset(root).update({"label": "9 - label"}, where="id < 100")
    got = rows(
        wcon,
        "SELECT count(*), count(*) FILTER (WHERE n.label <> o.label) "
        "FROM mnist n JOIN mnist AT (TAG => 'trained-on') o ON n.id = o.id",
    )
    # 9 - label never equals label: every updated row that version 2 held differs.
    assert got == [(2500, sum(1 for i in ids_then if i < 100))]
    flipped = rows(
        wcon,
        "SELECT n.id, o.label, n.label FROM mnist n JOIN mnist VERSION AS OF 'trained-on' o "
        "USING (id) WHERE n.label <> o.label ORDER BY n.id",
    )
    assert flipped and all(i < 100 and new == 9 - old for i, old, new in flipped)


def test_tag_on_an_unknown_version_or_table(wcon: lancesql.Connection) -> None:
    with pytest.raises(lancesql.ProgrammingError, match=r"no version 99; its versions are 1\.\.7"):
        wcon.execute("ALTER TABLE mnist CREATE TAG x AS OF VERSION 99")
    with pytest.raises(lancesql.ProgrammingError, match=r"no tag 'nope'"):
        wcon.execute("ALTER TABLE mnist CREATE TAG x AS OF VERSION 'nope'")
    with pytest.raises(lancesql.ProgrammingError, match=r"unknown table 'nope'"):
        wcon.execute("ALTER TABLE nope CREATE TAG x")
    assert tags(wcon) == []


def test_tag_on_a_version_removed_by_cleanup(wcon: lancesql.Connection, root: Path) -> None:
    dataset(root).cleanup_old_versions(older_than=dt.timedelta(0))
    with pytest.raises(
        lancesql.OperationalError, match=r"version 3 .* removed by cleanup.* 7\.\.7"
    ):
        wcon.execute("ALTER TABLE mnist CREATE TAG x AS OF VERSION 3")


@pytest.mark.parametrize(
    "name",
    ["x'; DROP TABLE mnist; --", "../../escape", "a b", "", ".hidden", "a..b", "x/y"],
)
def test_no_tag_name_reaches_a_path_or_a_statement(
    wcon: lancesql.Connection, root: Path, name: str
) -> None:
    quoted = "'" + name.replace("'", "''") + "'"
    with pytest.raises(lancesql.ProgrammingError):
        wcon.execute(f"ALTER TABLE mnist CREATE TAG {quoted}")
    with pytest.raises(lancesql.ProgrammingError):
        wcon.execute("ALTER TABLE mnist CREATE TAG ?", [name])
    assert tags(wcon) == []
    assert (root / "mnist.lance").is_dir()
    assert not (root / "escape.json").exists()


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE mnist CREATE TAG (SELECT 'x')",
        "ALTER TABLE mnist CREATE TAG 42",
        "ALTER TABLE mnist CREATE TAG x AS OF VERSION 2 + 1",
        "ALTER TABLE mnist CREATE TAG x y",
        "ALTER TABLE mnist CREATE TAG x AS OF VERSION",
        "ALTER TABLE mnist DROP TAG",
    ],
)
def test_malformed_tag_statements(wcon: lancesql.Connection, sql: str) -> None:
    with pytest.raises(lancesql.ProgrammingError, match="expected"):
        wcon.execute(sql)
    assert tags(wcon) == []


def test_other_alter_statements_are_not_the_tag_handlers(wcon: lancesql.Connection) -> None:
    ctx = StatementContext(wcon, wcon.engine.cursor(wcon))
    for sql in (
        "ALTER TABLE mnist ADD COLUMN c INTEGER",
        "ALTER TABLE mnist DROP COLUMN label",
        "ALTER TABLE mnist RENAME COLUMN a TO b",
        "ALTER TABLE mnist ADD COLUMNS FROM (SELECT 1) ON key",
        "ALTER VIEW v AS SELECT 1",
    ):
        tree = sqlglot.parse_one(sql, read=lancesql.parse.DIALECT)
        assert alter_tag(ctx, tree) is None, sql
