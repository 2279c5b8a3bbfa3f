"""Results as HTML, for people: image bytes as thumbnails, vectors shortened, long text
folded, and every value escaped.

The notebook view (``con.sql(...)._repr_html_()``) and the local web page
(``lancesql ui``) both draw rows with :func:`cell` and :func:`thumbnails`. Images are
decoded and scaled on several threads (Pillow releases the GIL while it decodes), each
to at most ``size`` pixels a side; bytes Pillow cannot read, or images too large to
decode safely, show as a size note instead. Nothing a value holds reaches the page
unescaped: a caption holding ``<script>`` shows as text.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa

#: Thumbnails are at most this many pixels a side.
THUMBNAIL_SIZE = 96
#: Bytes above this are not decoded (a size note shows instead).
MAX_IMAGE_BYTES = 32 * 1024 * 1024
#: Images with more pixels than this are not decoded (Pillow's bomb guard is 89 M).
MAX_IMAGE_PIXELS = 64 * 1024 * 1024
#: Text longer than this is folded behind a "more" toggle.
FOLD_TEXT = 160
#: A vector shows this many leading values, then its last and its length.
VECTOR_HEAD = 4

_WORKERS = max(2, min(8, os.cpu_count() or 2))

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def escape(value: object) -> str:
    """``value`` as HTML text: ``<``, ``>``, ``&`` and both quotes escaped.

    >>> escape('<script>alert("x")</script>')
    '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'
    """
    return html.escape(str(value), quote=True)


def human_bytes(n: int) -> str:
    """``1234`` -> ``'1.2 kB'`` (decimal units, as file managers show them)."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            return f"{value:.1f} {unit}"
    return f"{n} B"  # pragma: no cover


def blob_note(data: bytes) -> str:
    """A short note in place of bytes that are not shown as a picture.

    >>> blob_note(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(1200)), blob_note(b"abc")
    ('PNG 1.2 kB', 'BLOB 3 B')
    """
    kind = next((name for magic, name in _MAGIC if data.startswith(magic)), "BLOB")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = "WEBP"
    return f"{kind} {human_bytes(len(data))}"


def thumbnail(data: bytes, size: int = THUMBNAIL_SIZE) -> str | None:
    """A ``data:`` URI of ``data`` scaled to at most ``size`` pixels a side, or None
    when Pillow cannot read it (or it is over the size caps).

    Small and transparent images become PNG, photos JPEG.
    """
    if not data or len(data) > MAX_IMAGE_BYTES:
        return None
    try:
        from PIL import Image
    except ImportError:  # Pillow is in the ui and clip extras; without it, notes
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                return None
            image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale
            image.thumbnail((size, size))
            alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            small = image.width * image.height <= 64 * 64
            out = io.BytesIO()
            if alpha or small or image.mode in ("1", "L", "P"):
                image.convert("RGBA" if alpha else "L" if image.mode in ("1", "L") else "RGB").save(
                    out, "PNG", optimize=False
                )
                mime = "image/png"
            else:
                image.convert("RGB").save(out, "JPEG", quality=80)
                mime = "image/jpeg"
    except Exception:  # anything Pillow refuses is shown as a note, never an error
        return None
    return f"data:{mime};base64,{base64.b64encode(out.getvalue()).decode('ascii')}"


def thumbnails(blobs: Sequence[bytes | None], size: int = THUMBNAIL_SIZE) -> list[str | None]:
    """:func:`thumbnail` of each of ``blobs`` (None stays None), on several threads."""
    todo = [(i, b) for i, b in enumerate(blobs) if b]
    out: list[str | None] = [None] * len(blobs)
    if len(todo) <= 2:
        for i, b in todo:
            out[i] = thumbnail(b, size)
        return out
    with ThreadPoolExecutor(max_workers=min(_WORKERS, len(todo))) as pool:
        for (i, _), uri in zip(todo, pool.map(lambda ib: thumbnail(ib[1], size), todo), strict=True):
            out[i] = uri
    return out


def is_binary(kind: pa.DataType) -> bool:
    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind)


def is_vector(kind: pa.DataType) -> bool:
    """A fixed-size list of floats: what ``vector_search`` searches."""
    return pa.types.is_fixed_size_list(kind) and pa.types.is_floating(kind.value_type)


def short(value: Any) -> str:
    """One value as plain text, vectors and lists shortened.

    >>> short([0.25] * 512)
    '[0.25, 0.25, 0.25, 0.25, …, 0.25] (512)'
    >>> short(None), short(1 / 3), short(True)
    ('NULL', '0.333333', 'true')
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return blob_note(bytes(value))
    if isinstance(value, list):
        if len(value) > VECTOR_HEAD + 2:  # format only what shows: vectors are long
            head = ", ".join(short(v) for v in value[:VECTOR_HEAD])
            return f"[{head}, …, {short(value[-1])}] ({len(value)})"
        return f"[{', '.join(short(v) for v in value)}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {short(v)}" for k, v in value.items()) + "}"
    return str(value)


def cell(value: Any, image: str | None = None) -> str:
    """The HTML of one value: a thumbnail when ``image`` (a data URI) is given, long
    text folded in a ``<details>``, everything else escaped text.

    >>> cell("<b>bold</b>")
    '&lt;b&gt;bold&lt;/b&gt;'
    >>> cell(None)
    '<span class="ls-null">NULL</span>'
    """
    if image is not None:
        return f'<img class="ls-thumb" src="{image}" alt="{escape(blob_note(bytes(value)))}">'
    if value is None:
        return '<span class="ls-null">NULL</span>'
    text = short(value)
    if len(text) > FOLD_TEXT:
        return (
            f'<details class="ls-fold"><summary>{escape(text[:FOLD_TEXT])}…</summary>'
            f"{escape(text)}</details>"
        )
    return escape(text)


def column_thumbnails(batch: pa.RecordBatch | pa.Table, size: int = THUMBNAIL_SIZE) -> dict[int, list]:
    """For each binary column of ``batch``, the thumbnail of each value (None where
    the bytes are not a picture), by column position."""
    out: dict[int, list] = {}
    for i, field in enumerate(batch.schema):
        if is_binary(field.type):
            out[i] = thumbnails(batch.column(i).to_pylist(), size)
    return out


STYLE = """<style>
.ls-result{font-family:system-ui,sans-serif;font-size:13px}
.ls-result table{border-collapse:collapse}
.ls-result th,.ls-result td{border:1px solid #ddd;padding:2px 6px;vertical-align:top;text-align:left}
.ls-result th{background:#f4f4f4}
.ls-result .ls-type{color:#888;font-weight:normal;font-size:11px}
.ls-result .ls-null{color:#aaa}
.ls-result .ls-thumb{max-width:96px;max-height:96px;image-rendering:auto}
.ls-result .ls-foot{color:#555;margin-top:4px}
</style>"""


def table(
    rows: pa.Table,
    *,
    total_rows: int,
    elapsed: float | None = None,
    size: int = THUMBNAIL_SIZE,
) -> str:
    """A whole HTML view of ``rows`` (the rows to show), saying ``total_rows`` and how
    long the query took."""
    parts = [STYLE, '<div class="ls-result"><table><thead><tr>']
    for field in rows.schema:
        kind = escape(type_name(field.type))
        parts.append(f'<th>{escape(field.name)} <span class="ls-type">{kind}</span></th>')
    parts.append("</tr></thead><tbody>")
    parts.extend(body_rows(rows, size))
    parts.append("</tbody></table>")
    parts.append(f'<div class="ls-foot">{escape(footer(rows.num_rows, total_rows, elapsed))}</div></div>')
    return "".join(parts)


def body_rows(rows: pa.Table | pa.RecordBatch, size: int = THUMBNAIL_SIZE) -> Iterable[str]:
    """``<tr>`` elements for ``rows``, images as thumbnails."""
    images = column_thumbnails(rows, size)
    columns = [c.to_pylist() for c in rows.columns]
    for r in range(rows.num_rows):
        cells = "".join(
            f"<td>{cell(col[r], images[c][r] if c in images else None)}</td>"
            for c, col in enumerate(columns)
        )
        yield f"<tr>{cells}</tr>"


def footer(shown: int, total: int, elapsed: float | None) -> str:
    """``'3 rows, 12 ms'`` or ``'1,000 rows (first 20 shown), 1.2 s'``.

    >>> footer(20, 1000, 1.234), footer(1, 1, 0.012)
    ('1,000 rows (first 20 shown), 1.23 s', '1 row, 12 ms')
    """
    text = f"{total:,} row{'' if total == 1 else 's'}"
    if shown < total:
        text += f" (first {shown:,} shown)"
    if elapsed is not None:
        text += f", {elapsed * 1000:.0f} ms" if elapsed < 1 else f", {elapsed:.2f} s"
    return text


def type_name(kind: pa.DataType) -> str:
    """An Arrow type in SQL words, as DESCRIBE would say it.

    >>> type_name(pa.list_(pa.float32(), 512)), type_name(pa.large_binary()), type_name(pa.int64())
    ('FLOAT[512]', 'BLOB', 'BIGINT')
    """
    if pa.types.is_fixed_size_list(kind):
        return f"{type_name(kind.value_type)}[{kind.list_size}]"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return f"{type_name(kind.value_type)}[]"
    if is_binary(kind):
        return "BLOB"
    names = {
        pa.bool_(): "BOOLEAN",
        pa.int8(): "TINYINT",
        pa.int16(): "SMALLINT",
        pa.int32(): "INTEGER",
        pa.int64(): "BIGINT",
        pa.float16(): "HALF",
        pa.float32(): "FLOAT",
        pa.float64(): "DOUBLE",
        pa.string(): "VARCHAR",
        pa.large_string(): "VARCHAR",
        pa.string_view(): "VARCHAR",
        pa.date32(): "DATE",
    }
    if kind in names:
        return names[kind]
    if pa.types.is_timestamp(kind):
        return "TIMESTAMP" if kind.tz is None else "TIMESTAMPTZ"
    if pa.types.is_decimal(kind):
        return f"DECIMAL({kind.precision},{kind.scale})"
    return str(kind).upper()
