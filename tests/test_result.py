"""con.sql(): a result to look at, and its HTML view for notebooks."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from PIL import Image

import lancesql


def png(value: int, size: tuple[int, int] = (28, 28)) -> bytes:
    out = io.BytesIO()
    Image.new("L", size, color=value).save(out, "PNG")
    return out.getvalue()


def jpeg(size: tuple[int, int]) -> bytes:
    rng = np.random.default_rng(0)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def con(tmp_path):
    con = lancesql.connect(tmp_path)
    rows = 30
    table = pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "image": pa.array([png(i * 8) for i in range(rows - 2)] + [jpeg((640, 480)), b"not an image"],
                              pa.large_binary()),
            "emb": pa.FixedSizeListArray.from_arrays(
                pa.array(np.arange(rows * 8, dtype=np.float32)), 8
            ),
            "caption": ["<script>alert('x')</script>"] + ["a long caption " * 20] + ["plain"] * (rows - 2),
        }
    )
    import lance

    lance.write_dataset(table, str(tmp_path / "pics.lance"))
    yield con
    con.close()


def test_sql_gives_arrow_pandas_polars_and_rows(con):
    result = con.sql("SELECT id, caption FROM pics WHERE id < ? ORDER BY id", [3])
    expected = [(0, "<script>alert('x')</script>"), (1, "a long caption " * 20), (2, "plain")]
    assert result.fetchall() == expected
    assert result.arrow().column("id").to_pylist() == [0, 1, 2]
    assert isinstance(result.df(), pd.DataFrame) and result.df()["id"].tolist() == [0, 1, 2]
    assert isinstance(result.pl(), pl.DataFrame) and result.pl()["id"].to_list() == [0, 1, 2]
    assert result.fetchone() == expected[0]
    assert result.columns == ["id", "caption"] and len(result) == 3


def test_sql_without_rows_is_none_and_errors_are_dbapi(con):
    assert con.sql("CREATE TABLE t2 AS SELECT id FROM pics") is None
    assert con.sql("SELECT count(*) FROM t2").fetchall() == [(30,)]
    with pytest.raises(lancesql.ProgrammingError):
        con.sql("SELECT * FROM nowhere")


def test_html_view_shows_thumbnails_escapes_and_counts(con):
    page = con.sql("SELECT * FROM pics ORDER BY id")._repr_html_()
    # Every value escaped: the caption shows as text, never as a tag.
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    # Thumbnails: data URIs that decode to images at most 96 pixels a side.
    uris = re.findall(r'src="data:(image/[a-z]+);base64,([^"]+)"', page)
    assert len(uris) == 20  # 20 rows shown, all PNGs
    for _, data in uris[:3]:
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            assert image.size == (28, 28)
    # Vectors shortened, long text folded, count and time in the footer.
    assert "[0, 1, 2, 3, …, 7] (8)" in page
    assert "<details" in page
    assert re.search(r"30 rows \(first 20 shown\), \d+ ms", page)


def test_html_view_scales_large_images_and_notes_other_bytes(con):
    page = con.sql("SELECT id, image FROM pics WHERE id >= 28 ORDER BY id")._repr_html_()
    uris = re.findall(r'src="data:(image/[a-z]+);base64,([^"]+)"', page)
    assert [mime for mime, _ in uris] == ["image/jpeg"]
    with Image.open(io.BytesIO(base64.b64decode(uris[0][1]))) as image:
        assert max(image.size) == 96 and image.size == (96, 72)
    assert "BLOB 12 B" in page  # bytes Pillow cannot read: a note, not an error
    assert "2 rows" in page


def test_repr_is_a_text_table(con):
    text = repr(con.sql("SELECT id, emb FROM pics ORDER BY id LIMIT 2"))
    assert "id" in text.splitlines()[0] and "(8)" in text and "2 rows" in text
