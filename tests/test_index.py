"""CREATE INDEX / DROP INDEX — on both engines."""

from __future__ import annotations

from pathlib import Path

import lance
import pytest

import lancesql
from tests.conftest import rows


def indices(root: Path, table: str = "copy") -> dict[str, str]:
    ds = lance.dataset(str(root / f"{table}.lance"))
    return {i.name: i.type_url for i in ds.describe_indices()}


@pytest.fixture
def copy(wcon, root):
    """An index-free copy of mnist."""
    wcon.execute("CREATE TABLE copy AS SELECT * FROM mnist")
    return wcon


def version(root: Path) -> int:
    return int(lance.dataset(str(root / "copy.lance")).version)


def test_scalar_indices(copy, root):
    before = version(root)
    copy.execute("CREATE INDEX label_bt ON copy USING BTREE (label)")
    copy.execute("CREATE INDEX ON copy USING BITMAP (label_name)")
    assert version(root) == before + 2
    found = indices(root)
    assert "label_bt" in found and "BTree" in found["label_bt"]
    assert any("Bitmap" in t for t in found.values())
    # The new index answers filters, and the answer is unchanged.
    assert rows(copy, "SELECT count(*) FROM copy WHERE label = 3") == [(500,)]
    plan = lance.dataset(str(root / "copy.lance")).scanner(filter="label = 3").explain_plan()
    assert "label_bt" in plan


def test_vector_index_with_options(copy, root):
    before = version(root)
    copy.execute(
        "CREATE INDEX emb_idx ON copy USING IVF_PQ (image_emb) "
        "WITH (metric = 'cosine', num_partitions = 4, num_sub_vectors = 16, sample_rate = 16)"
    )
    assert version(root) == before + 1
    stats = lance.dataset(str(root / "copy.lance")).stats.index_stats("emb_idx")
    assert stats["index_type"] == "IVF_PQ"
    assert stats["indices"][0]["metric_type"] == "cosine"
    assert stats["indices"][0]["num_partitions"] == 4


def test_drop_index(copy, root):
    copy.execute("CREATE INDEX lab ON copy (label)")
    before = version(root)
    copy.execute("DROP INDEX lab ON copy")
    assert version(root) == before + 1
    assert "lab" not in indices(root)
    with pytest.raises(lancesql.ProgrammingError, match="no index 'lab'"):
        copy.execute("DROP INDEX lab ON copy")
    copy.execute("DROP INDEX IF EXISTS lab ON copy")
    with pytest.raises(lancesql.ProgrammingError, match="ON table"):
        copy.execute("DROP INDEX lab")


def test_index_errors(copy, root):
    copy.execute("CREATE INDEX lab ON copy USING BTREE (label)")
    before = version(root)
    with pytest.raises(lancesql.IntegrityError, match="already exists"):
        copy.execute("CREATE INDEX lab ON copy USING BTREE (label)")
    copy.execute("CREATE INDEX IF NOT EXISTS lab ON copy USING BTREE (label)")
    with pytest.raises(lancesql.ProgrammingError, match="no column"):
        copy.execute("CREATE INDEX ON copy USING BTREE (nope)")
    with pytest.raises(lancesql.ProgrammingError, match="unknown index type"):
        copy.execute("CREATE INDEX ON copy USING WHATEVER (label)")
    with pytest.raises(lancesql.ProgrammingError, match="unknown option"):
        copy.execute("CREATE INDEX ON copy USING IVF_PQ (image_emb) WITH (colour = 'red')")
    assert version(root) == before


def test_index_build_reports_progress(copy, caplog):
    with caplog.at_level("INFO", logger="lancesql"):
        copy.execute("CREATE INDEX ON copy USING BTREE (id)")
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("building BTREE index on copy.id (5000 rows)") for m in messages)
    assert any(m.startswith("built BTREE index on copy.id in") for m in messages)
