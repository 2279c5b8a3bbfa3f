"""lancesql.torch_dataset: a torch Dataset over the rows a query selects."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import lance
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lancesql  # noqa: E402
from tests.conftest import rows  # noqa: E402


def ids_of(loader) -> list[int]:
    return [int(i) for batch in loader for i in batch["id"]]


def test_import_does_not_import_torch() -> None:
    code = (
        "import sys, lancesql; assert 'torch' not in sys.modules; "
        "print(callable(lancesql.torch_dataset))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.stdout.strip() == "True"


def test_rows_and_columns_of_the_query(con: lancesql.Connection) -> None:
    sql = "SELECT id, image_emb, label FROM mnist WHERE label IN (4, 9)"
    ds = lancesql.torch_dataset(con, sql)
    expected = {r[0]: r for r in rows(con, sql)}
    assert len(ds) == len(expected) > 0
    sample = ds[3]
    assert set(sample) == {"id", "image_emb", "label"}
    assert sample["image_emb"].dtype == torch.float32 and sample["image_emb"].shape == (512,)
    row = expected[int(sample["id"])]
    np.testing.assert_allclose(sample["image_emb"].numpy(), np.array(row[1], np.float32))
    assert int(sample["label"]) == row[2]
    assert {int(s["label"]) for s in ds.__getitems__(list(range(len(ds))))} == {4, 9}
    assert int(ds[-1]["id"]) == int(ds[len(ds) - 1]["id"])
    picked = [int(s["id"]) for s in ds.__getitems__([3, 1, 3, 0])]
    assert picked == [int(ds[i]["id"]) for i in (3, 1, 3, 0)] and picked[0] == picked[2]
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_order_by_alias_limit_and_params(con: lancesql.Connection) -> None:
    sql = "SELECT id AS i, label FROM mnist WHERE label = ? ORDER BY i DESC LIMIT 10"
    ds = lancesql.torch_dataset(con, sql, [2])
    assert [int(ds[k]["i"]) for k in range(len(ds))] == [r[0] for r in rows(con, sql, [2])]
    by_position = lancesql.torch_dataset(
        con, "SELECT id FROM mnist WHERE label = 2 ORDER BY 1 LIMIT 5"
    )
    assert [int(s["id"]) for s in by_position.__getitems__(range(5))] == [
        r[0] for r in rows(con, "SELECT id FROM mnist WHERE label = 2 ORDER BY id LIMIT 5")
    ]


def test_unknown_columns_and_case(con: lancesql.Connection) -> None:
    with pytest.raises(lancesql.ProgrammingError, match="column 'nope' is not in table 'mnist'"):
        lancesql.torch_dataset(con, "SELECT nope FROM mnist")
    ds = lancesql.torch_dataset(con, "SELECT LABEL FROM mnist WHERE id = 0")
    assert int(ds[0]["LABEL"]) == rows(con, "SELECT label FROM mnist WHERE id = 0")[0][0]
    star = lancesql.torch_dataset(
        con, "SELECT * FROM mnist WHERE label = 2 ORDER BY 1 DESC LIMIT 3"
    )
    expected = rows(con, "SELECT id FROM mnist WHERE label = 2 ORDER BY id DESC LIMIT 3")
    assert [int(s["id"]) for s in star.__getitems__([0, 1, 2])] == [r[0] for r in expected]


def test_star_exclude_and_subquery_filter(con: lancesql.Connection) -> None:
    ds = lancesql.torch_dataset(
        con,
        "SELECT * EXCLUDE (image) FROM mnist "
        "WHERE id IN (SELECT id FROM mnist WHERE label = 7 LIMIT 5)",
    )
    assert len(ds) == 5
    assert list(ds[0]) == ["id", "label", "label_name", "image_emb"]
    assert ds[0]["label_name"] == "7"


def test_join_returns_the_qualified_tables_rows(con: lancesql.Connection) -> None:
    sql = (
        "SELECT a.id, a.label FROM mnist a JOIN (SELECT id FROM mnist WHERE label = 5) b "
        "ON a.id = b.id"
    )
    ds = lancesql.torch_dataset(con, sql)
    assert sorted(int(s["id"]) for s in ds.__getitems__(range(len(ds)))) == sorted(
        r[0] for r in rows(con, sql)
    )
    with pytest.raises(lancesql.ProgrammingError, match="qualified"):
        lancesql.torch_dataset(con, "SELECT id FROM mnist a JOIN mnist b USING (id)")


def test_dataloader_shuffles_with_workers(con: lancesql.Connection) -> None:
    sql = "SELECT id, label, image_emb FROM mnist WHERE label = 3"
    ds = lancesql.torch_dataset(con, sql)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=64, shuffle=True, num_workers=2, timeout=120, persistent_workers=True
    )
    first, second = ids_of(loader), ids_of(loader)
    expected = sorted(r[0] for r in rows(con, "SELECT id FROM mnist WHERE label = 3"))
    assert sorted(first) == sorted(second) == expected
    assert first != expected and first != second  # shuffled, differently each epoch
    batch = next(iter(loader))
    assert batch["image_emb"].shape == (64, 512) and batch["image_emb"].dtype == torch.float32
    assert set(batch["label"].tolist()) == {3}


def test_batch_loader_reads_whole_batches(con: lancesql.Connection) -> None:
    ds = lancesql.torch_dataset(con, "SELECT id, image_emb, label_name FROM mnist WHERE label = 8")
    loader = ds.loader(batch_size=100, shuffle=True, num_workers=2, timeout=120)
    batches = list(loader)
    expected = sorted(r[0] for r in rows(con, "SELECT id FROM mnist WHERE label = 8"))
    got = [int(i) for b in batches for i in b["id"]]
    assert sorted(got) == expected and got != expected
    assert batches[0]["image_emb"].shape == (100, 512) and batches[0]["label_name"][0] == "8"
    assert len(batches[-1]["id"]) == len(expected) % 100 or len(expected) % 100 == 0
    ordered = [int(i) for b in ds.loader(batch_size=64, shuffle=False) for i in b["id"]]
    assert ordered == [int(ds[k]["id"]) for k in range(len(ds))]


def test_image_bytes_are_read_only_when_selected(con: lancesql.Connection) -> None:
    without = lancesql.torch_dataset(con, "SELECT id, label FROM mnist")
    with_image = lancesql.torch_dataset(con, "SELECT id, image FROM mnist")
    taken = lance.dataset(with_image.uri)._take_rows(
        with_image.row_ids[:400].tolist(), columns=["image"]
    )
    total = sum(len(b) for b in taken["image"].to_pylist())
    read = {}
    for name, ds in (("without", without), ("with", with_image)):
        handle = lance.dataset(ds.uri, version=ds.version)
        ds._dataset = handle
        handle.io_stats_incremental()
        ds.__getitems__(range(400))
        read[name] = handle.io_stats_incremental().read_bytes
    assert read["with"] >= total
    assert read["without"] < total / 4


def test_binary_as_bytes_or_through_transform(con: lancesql.Connection) -> None:
    from PIL import Image

    raw = lancesql.torch_dataset(con, "SELECT image FROM mnist LIMIT 3")
    assert isinstance(raw[0]["image"], bytes) and raw[0]["image"][:4] == b"\x89PNG"

    def decode(data: bytes) -> torch.Tensor:
        return torch.from_numpy(np.array(Image.open(io.BytesIO(data)))).float() / 255

    ds = lancesql.torch_dataset(con, "SELECT image, label FROM mnist LIMIT 32", transform=decode)
    loader = torch.utils.data.DataLoader(ds, batch_size=8)
    batch = next(iter(loader))
    assert batch["image"].shape == (8, 28, 28) and float(batch["image"].max()) <= 1.0
    per_column = lancesql.torch_dataset(
        con, "SELECT id, label FROM mnist LIMIT 2", transform={"label": str}
    )
    assert isinstance(per_column[0]["label"], str)


def test_tagged_version_gives_its_rows_every_time(wcon: lancesql.Connection, root: Path) -> None:
    uri = str(root / "mnist.lance")
    lance.dataset(uri).tags.create("frozen", 5)
    expected = sorted(
        lance.dataset(uri, version=5).to_table(columns=["id"], filter="label = 1")["id"].to_pylist()
    )
    ds = lancesql.torch_dataset(wcon, "SELECT id FROM mnist AT (TAG => 'frozen') WHERE label = 1")
    lance.dataset(uri).delete("label = 1")  # the latest version loses those rows
    assert lancesql.torch_dataset(wcon, "SELECT id FROM mnist WHERE label = 1").__len__() == 0
    assert ds.version == 5
    loader = torch.utils.data.DataLoader(
        ds, batch_size=50, shuffle=True, num_workers=2, timeout=120, persistent_workers=True
    )
    assert sorted(ids_of(loader)) == expected
    assert sorted(ids_of(loader)) == expected


def test_queries_without_row_ids_point_to_the_iterable_form(con: lancesql.Connection) -> None:
    for sql in (
        "SELECT label, count(*) AS n FROM mnist GROUP BY label",
        "SELECT DISTINCT label FROM mnist",
        "SELECT label + 1 AS y FROM mnist",
        "SELECT id FROM mnist UNION ALL SELECT id FROM mnist",
    ):
        with pytest.raises(lancesql.NotSupportedError, match="iterable=True"):
            lancesql.torch_dataset(con, sql)
    sql = "SELECT label, count(*) AS n FROM mnist GROUP BY label ORDER BY label"
    it = lancesql.torch_dataset(con, sql, iterable=True)
    assert isinstance(it, torch.utils.data.IterableDataset)
    expected = rows(con, sql)
    assert [(int(s["label"]), int(s["n"])) for s in it] == expected
    loader = torch.utils.data.DataLoader(it, batch_size=4, num_workers=2, timeout=120)
    got = sorted(
        (int(a), int(b))
        for batch in loader
        for a, b in zip(batch["label"], batch["n"], strict=True)
    )
    assert got == sorted(expected)
