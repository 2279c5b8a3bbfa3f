"""embed_image and embed_text: open_clip's numbers, through SQL, on both engines.

No weights can be downloaded here, so the tests build the real ViT-B-32 architecture
with random weights (``pretrained=None``), save it, and load it through the
``clip_pretrained`` checkpoint-path setting. Random weights make a different model, not
a different computation: the functions must give what open_clip gives for these weights.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lance
import numpy as np
import pyarrow as pa
import pytest

import lancesql
from lancesql.udfs import clip
from lancesql.udfs.embed import BadImageWarning
from tests.conftest import rows

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

TOLERANCE = 1e-5


@pytest.fixture(scope="session")
def weights(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """ViT-B-32 with seeded random weights, saved as a local checkpoint, and the same
    model kept in memory to compute the expected embeddings with open_clip directly."""
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    model.eval()
    path = tmp_path_factory.mktemp("clip") / "vit_b_32_random.pt"
    torch.save(model.state_dict(), path)
    return SimpleNamespace(
        path=str(path),
        model=model,
        preprocess=preprocess,
        tokenizer=open_clip.get_tokenizer("ViT-B-32"),
    )


def open_clip_images(weights: SimpleNamespace, blobs: list[bytes]) -> np.ndarray:
    """What open_clip itself gives: decode, preprocess, encode, normalise."""
    from PIL import Image

    batch = torch.stack([weights.preprocess(Image.open(io.BytesIO(b))) for b in blobs])
    with torch.no_grad():
        features = weights.model.encode_image(batch)
    return (features / features.norm(dim=-1, keepdim=True)).numpy()


def open_clip_texts(weights: SimpleNamespace, texts: list[str]) -> np.ndarray:
    with torch.no_grad():
        features = weights.model.encode_text(weights.tokenizer(texts))
    return (features / features.norm(dim=-1, keepdim=True)).numpy()


@pytest.fixture
def ccon(mnist_root: Path, engine: str, weights: SimpleNamespace) -> Iterator[lancesql.Connection]:
    """A connection to the MNIST root whose CLIP model is the saved checkpoint."""
    with lancesql.connect(
        mnist_root, engine=engine, clip={"pretrained": weights.path, "device": "cpu"}
    ) as con:
        yield con


def vectors(values: list[Any]) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def test_embed_image_equals_open_clip(ccon: lancesql.Connection, weights: SimpleNamespace) -> None:
    cur = ccon.cursor().execute("SELECT image, embed_image(image) AS emb FROM mnist LIMIT 8")
    table = cur.fetch_arrow_table()
    assert table.schema.field("emb").type == pa.list_(pa.float32(), 512)
    got = vectors(table["emb"].to_pylist())
    expected = open_clip_images(weights, table["image"].to_pylist())
    assert got.shape == (8, 512)
    np.testing.assert_allclose(got, expected, atol=TOLERANCE)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_select_embed_image_limit(ccon: lancesql.Connection) -> None:
    result = rows(ccon, "SELECT embed_image(image) FROM mnist LIMIT 8")
    assert len(result) == 8
    assert all(len(r[0]) == 512 for r in result)


def test_embed_text_equals_open_clip(ccon: lancesql.Connection, weights: SimpleNamespace) -> None:
    texts = ["a photo of a sneaker", "a handwritten seven"]
    [(sneaker, seven, param, none)] = rows(
        ccon,
        "SELECT embed_text('a photo of a sneaker'), embed_text('a handwritten seven'), "
        "embed_text(?), embed_text(NULL)",
        ["a photo of a sneaker"],
    )
    expected = open_clip_texts(weights, texts)
    np.testing.assert_allclose(vectors([sneaker, seven]), expected, atol=TOLERANCE)
    np.testing.assert_allclose(vectors(param), expected[0], atol=TOLERANCE)
    assert none is None


def test_smaller_batches_give_the_same_vectors(
    ccon: lancesql.Connection, weights: SimpleNamespace
) -> None:
    cur = ccon.cursor()
    cur.execute("SET lancesql.clip_batch_size = 3")
    table = cur.execute(
        "SELECT image, embed_image(image) AS emb FROM mnist WHERE id < 7"
    ).fetch_arrow_table()
    expected = open_clip_images(weights, table["image"].to_pylist())
    np.testing.assert_allclose(vectors(table["emb"].to_pylist()), expected, atol=TOLERANCE)


@pytest.fixture
def odd_images(tmp_path: Path) -> Path:
    """A root whose table ``odd`` holds a PNG, a NULL, bytes that are no image, a JPEG,
    and a PNG cut off half-way (a truncated download)."""
    from PIL import Image
    from skimage import data

    def encoded(pixels: np.ndarray, fmt: str) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format=fmt)
        return buf.getvalue()

    images = [
        encoded(data.camera()[::4, ::4], "PNG"),
        None,
        b"not an image at all",
        encoded(data.astronaut(), "JPEG"),
    ]
    whole = encoded(data.coffee(), "PNG")
    images.append(whole[: len(whole) // 2])
    table = pa.table(
        {"id": pa.array([0, 1, 2, 3, 4], pa.int64()), "image": pa.array(images, pa.large_binary())}
    )
    lance.write_dataset(table, tmp_path / "odd.lance")
    return tmp_path


def test_null_and_bad_images(odd_images: Path, engine: str, weights: SimpleNamespace) -> None:
    with lancesql.connect(odd_images, engine=engine, clip={"pretrained": weights.path}) as con:
        with pytest.warns(BadImageWarning, match=r"2 of 5 values are not readable images"):
            table = con.execute(
                "SELECT id, image, embed_image(image) AS emb FROM odd ORDER BY id"
            ).fetch_arrow_table()
        emb = table["emb"].to_pylist()
        assert emb[1] is None and emb[2] is None and emb[4] is None
        images = table["image"].to_pylist()
        np.testing.assert_allclose(
            vectors([emb[0], emb[3]]),
            open_clip_images(weights, [images[0], images[3]]),
            atol=TOLERANCE,
        )
        con.execute("SET lancesql.clip_on_error = 'error'")
        with pytest.raises(
            lancesql.DataError, match=r"value 3 of a batch of 5 is not a readable image"
        ):
            con.execute("SELECT embed_image(image) FROM odd ORDER BY id").fetchall()
        assert rows(con, "SELECT embed_image(image) FROM odd WHERE id = 1") == [(None,)]


def test_bound_bytes(ccon: lancesql.Connection, weights: SimpleNamespace) -> None:
    [(image,)] = rows(ccon, "SELECT image FROM mnist WHERE id = 3")
    [(emb,)] = rows(ccon, "SELECT embed_image(?)", [image])
    np.testing.assert_allclose(vectors(emb), open_clip_images(weights, [image])[0], atol=TOLERANCE)


@pytest.fixture(scope="module")
def embedded_root(
    mnist_root: Path, tmp_path_factory: pytest.TempPathFactory, weights: SimpleNamespace
) -> Path:
    """A root with ``mnist`` and ``emb64``: 64 of its rows, materialised with CTAS and given
    an ``emb`` column by ``ALTER TABLE ... ADD COLUMN emb AS (embed_image(image))`` (a
    backfill through the engine), all in SQL."""
    root = tmp_path_factory.mktemp("embedded")
    (root / "mnist.lance").symlink_to(mnist_root / "mnist.lance", target_is_directory=True)
    with lancesql.connect(root, clip={"pretrained": weights.path}) as con:
        con.execute("CREATE TABLE emb64 AS SELECT id, label, image FROM mnist WHERE id < 64")
        con.execute("ALTER TABLE emb64 ADD COLUMN emb AS (embed_image(image))")
    return root


def test_add_column_backfills_embed_image(embedded_root: Path, weights: SimpleNamespace) -> None:
    ds = lance.dataset(embedded_root / "emb64.lance")
    assert ds.schema.field("emb").type == pa.list_(pa.float32(), 512)
    assert [v["version"] for v in ds.versions()] == [1, 2]  # CTAS, then one ADD COLUMN
    table = ds.to_table(columns=["id", "image", "emb"]).sort_by("id")
    expected = open_clip_images(weights, table["image"].to_pylist()[:4])
    np.testing.assert_allclose(vectors(table["emb"].to_pylist()[:4]), expected, atol=TOLERANCE)


def test_image_of_row_42_finds_row_42_first(
    embedded_root: Path, engine: str, weights: SimpleNamespace
) -> None:
    query = "embed_image((SELECT image FROM mnist WHERE id = 42))"
    with lancesql.connect(embedded_root, engine=engine, clip={"pretrained": weights.path}) as con:
        found = rows(con, f"SELECT id, _distance FROM vector_search('emb64', 'emb', {query}, 3)")
        ordered = rows(con, f"SELECT id FROM emb64 ORDER BY array_distance(emb, {query}) LIMIT 3")
        by_text = rows(
            con, "SELECT id FROM vector_search('emb64', 'emb', embed_text('a handwritten four'), 5)"
        )
    assert found[0][0] == 42
    assert found[0][1] < 1e-4 < found[1][1]
    assert [r[0] for r in ordered] == [r[0] for r in found]
    assert len(by_text) == 5


def test_settings_from_set_environment_and_connect(
    mnist_root: Path, engine: str, weights: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    with lancesql.connect(mnist_root, engine=engine) as con:
        [(image,)] = rows(con, "SELECT image FROM mnist WHERE id = 5")
    expected = open_clip_images(weights, [image])[0]
    sql = "SELECT embed_image(image) FROM mnist WHERE id = 5"
    with lancesql.connect(mnist_root, engine=engine) as con:
        cur = con.cursor()
        cur.execute("SET lancesql.clip_pretrained = ?", [weights.path])
        np.testing.assert_allclose(
            vectors(cur.execute(sql).fetchone()[0]), expected, atol=TOLERANCE
        )
        assert con.settings.get("clip_model") == "ViT-B-32"
        assert con.settings.get("clip_pretrained") == weights.path
    monkeypatch.setenv("LANCESQL_CLIP_PRETRAINED", weights.path)
    with lancesql.connect(mnist_root, engine=engine) as con:
        np.testing.assert_allclose(vectors(rows(con, sql)[0][0]), expected, atol=TOLERANCE)
    monkeypatch.setenv("LANCESQL_CLIP_PRETRAINED", "/nowhere/weights.pt")
    with lancesql.connect(
        mnist_root, engine=engine, clip={"pretrained": weights.path}
    ) as con:  # beats env
        np.testing.assert_allclose(vectors(rows(con, sql)[0][0]), expected, atol=TOLERANCE)


def test_model_is_loaded_once_per_process(mnist_root: Path, weights: SimpleNamespace) -> None:
    settings = {"pretrained": weights.path, "device": "cpu"}
    with (
        lancesql.connect(mnist_root, clip=settings) as a,
        lancesql.connect(mnist_root, engine="datafusion", clip=settings) as b,
    ):
        rows(a, "SELECT embed_text('x')")
        rows(b, "SELECT embed_text('y')")
        assert clip.load(a.settings)[0] is clip.load(b.settings)[0]
        loaded = [key for key in clip._MODELS if key[1] == weights.path and key[2] == "cpu"]
        assert len(loaded) == 1


def test_half_precision_path(mnist_root: Path, weights: SimpleNamespace) -> None:
    """bf16 (the GPU's half-precision path, runnable on the CPU) stays close to fp32."""
    with lancesql.connect(
        mnist_root, clip={"pretrained": weights.path, "precision": "bf16"}
    ) as con:
        [(image, emb)] = rows(con, "SELECT image, embed_image(image) FROM mnist WHERE id = 9")
    expected = open_clip_images(weights, [image])[0]
    assert float(np.dot(vectors(emb), expected)) > 0.99


def test_unknown_model_tag_or_path(ccon: lancesql.Connection) -> None:
    cur = ccon.cursor()
    cur.execute("SET lancesql.clip_pretrained = 'no_such_tag'")
    with pytest.raises(
        lancesql.ProgrammingError, match=r"neither a pretrained tag.*clip_pretrained = '/path"
    ):
        cur.execute("SELECT embed_text('x')").fetchall()
    cur.execute("SET lancesql.clip_pretrained = '/nowhere/at/all.pt'")
    with pytest.raises(lancesql.ProgrammingError, match=r"nor a checkpoint file"):
        cur.execute("SELECT embed_image(image) FROM mnist LIMIT 1").fetchall()
    cur.execute("SET lancesql.clip_model = 'ViT-Q-99'")
    with pytest.raises(lancesql.ProgrammingError, match=r"unknown OpenCLIP model 'ViT-Q-99'"):
        cur.execute("SELECT embed_text('x')").fetchall()


def test_bad_device_and_batch_size(ccon: lancesql.Connection) -> None:
    cur = ccon.cursor()
    with pytest.raises(lancesql.ProgrammingError, match=r"clip_batch_size"):
        cur.execute("SET lancesql.clip_batch_size = -2")  # refused when set, a number or not
    cur.execute("SET lancesql.clip_batch_size = 0")
    with pytest.raises(lancesql.ProgrammingError, match=r"lancesql.clip_device"):
        cur.execute("SET lancesql.clip_device = 'tpu'")
    if not torch.cuda.is_available():
        cur.execute("SET lancesql.clip_device = 'cuda'")
        with pytest.raises(lancesql.OperationalError, match=r"torch sees no CUDA device"):
            cur.execute("SELECT embed_text('x')").fetchall()


def test_unreachable_weights_say_how_to_use_a_local_checkpoint(
    ccon: lancesql.Connection, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(clip, "_FAILURES", {})
    cur = ccon.cursor()
    cur.execute("SET lancesql.clip_pretrained = 'laion2b_s34b_b79k'")
    with pytest.raises(
        lancesql.OperationalError,
        match=r"could not download.*SET lancesql.clip_pretrained = '/path",
    ):
        cur.execute("SELECT embed_text('a photo of a sneaker')").fetchall()


def test_without_open_clip_says_what_to_install(
    ccon: lancesql.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "open_clip", None)  # import open_clip raises ImportError
    with pytest.raises(lancesql.NotSupportedError, match=r"pip install 'lancesql\[clip\]'"):
        ccon.execute("SELECT embed_text('a photo of a sneaker')").fetchall()
    with pytest.raises(lancesql.NotSupportedError, match=r"pip install 'lancesql\[clip\]'"):
        ccon.execute("SELECT embed_image(image) FROM mnist LIMIT 2").fetchall()


def test_example_rebuilds_image_emb(tmp_path: Path, weights: SimpleNamespace) -> None:
    from examples import embed as example

    ds = example.rebuild(tmp_path, weights.path, limit=6, indices=False)
    table = ds.to_table()
    assert table.num_rows == 6 and table.column_names == example.mnist.SCHEMA.names
    expected = open_clip_images(weights, table["image"].to_pylist())
    np.testing.assert_allclose(vectors(table["image_emb"].to_pylist()), expected, atol=TOLERANCE)
