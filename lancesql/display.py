"""How a value too big to print is named: what the terminal table (``lancesql`` CLI)
and the HTML view (notebook, ``lancesql ui``) both show in place of bytes.

Bytes are named by their format, read from the first bytes as ``file`` does (PNG, JPEG,
GIF, BMP, TIFF, WEBP, else BLOB), and their size in decimal units, as file managers
show it.
"""

from __future__ import annotations

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def blob_kind(data: bytes) -> str:
    """The image format ``data`` starts with, or ``BLOB``.

    >>> blob_kind(b"\\xff\\xd8\\xff\\xe0"), blob_kind(b"RIFF\\0\\0\\0\\0WEBPVP8 "), blob_kind(b"abc")
    ('JPEG', 'WEBP', 'BLOB')
    """
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((name for magic, name in _MAGIC if data.startswith(magic)), "BLOB")


def human_bytes(n: int) -> str:
    """``1234`` -> ``'1.2 kB'`` (decimal units, as file managers show them).

    >>> human_bytes(999), human_bytes(1234), human_bytes(5_000_000), human_bytes(3 * 10**12)
    ('999 B', '1.2 kB', '5.0 MB', '3.0 TB')
    """
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            return f"{value:.1f} {unit}"
    return f"{n} B"  # pragma: no cover


def blob_note(data: bytes) -> str:
    """A short note in place of bytes: their format and size.

    >>> blob_note(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(1200)), blob_note(b"abc")
    ('PNG 1.2 kB', 'BLOB 3 B')
    """
    return f"{blob_kind(data)} {human_bytes(len(data))}"
