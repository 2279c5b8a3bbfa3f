"""``embed_image(blob)`` and ``embed_text(varchar)``: OpenCLIP embeddings, ``FLOAT[512]``.

Both are scalar functions over Arrow batches, registered on DuckDB and DataFusion from
this one definition, and usable wherever an expression is: in a SELECT list, as the
query vector of ``vector_search``, in ``ALTER TABLE ... ADD COLUMN ... AS (...)``. The
vectors are cosine-normalised (unit length), as the public datasets' ``image_emb`` is,
so ``embed_text('a photo of a sneaker')`` searches a column filled by ``embed_image``.

NULL gives NULL. Bytes that do not decode as an image give NULL and a
:class:`BadImageWarning` counting them, or, with ``SET lancesql.clip_on_error =
'error'``, a DataError. Which model runs is the connection's ``clip_*`` settings (see
:mod:`lancesql.udfs.clip`), read on every call, so ``SET`` applies from the next statement.
"""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa

from lancesql.errors import DataError, NotSupportedError
from lancesql.udfs import clip
from lancesql.udfs.registry import Session, scalar_function

DIM = 512
VECTOR = pa.list_(pa.float32(), DIM)


class BadImageWarning(UserWarning):
    """Some values given to ``embed_image`` were not images; they gave NULL."""


@scalar_function("embed_image", (pa.binary(),), VECTOR)
def embed_image(session: Session, images: pa.Array) -> pa.Array:
    """The CLIP image embedding of each encoded image (PNG, JPEG, ... any PIL reads)."""
    blobs = images.to_pylist()
    if not any(b is not None for b in blobs):
        return pa.nulls(len(blobs), VECTOR)
    model, config = clip.load(session.settings)
    _check_dim(model, "embed_image")
    stop = config.on_error == "error"
    vectors, failures = model.encode_images(blobs, config.batch_size, stop_at_failure=stop)
    if failures:
        first = min(failures)
        where = f"value {first + 1} of a batch of {len(blobs)}"
        if stop:
            raise DataError(
                f"embed_image: {where} is not a readable image ({failures[first]}; "
                f"{_describe(blobs[first])}). SET lancesql.clip_on_error = 'null' to get NULL "
                "for such values instead"
            )
        warnings.warn(
            f"embed_image: {len(failures)} of {len(blobs)} values are not readable images and gave "
            f"NULL (first: {where}: {failures[first]}). SET lancesql.clip_on_error = 'error' "
            "to fail instead",
            BadImageWarning,
            stacklevel=2,
        )
    valid = np.array([b is not None for b in blobs])
    valid[list(failures)] = False
    return _vectors(vectors, valid)


@scalar_function("embed_text", (pa.string(),), VECTOR)
def embed_text(session: Session, texts: pa.Array) -> pa.Array:
    """The CLIP text embedding of each string, in the same space as ``embed_image``'s."""
    values = texts.to_pylist()
    given = [i for i, t in enumerate(values) if t is not None]
    if not given:
        return pa.nulls(len(values), VECTOR)
    model, config = clip.load(session.settings)
    _check_dim(model, "embed_text")
    vectors = np.zeros((len(values), model.dim), dtype=np.float32)
    vectors[given] = model.encode_texts([values[i] for i in given], config.batch_size)
    valid = np.zeros(len(values), dtype=bool)
    valid[given] = True
    return _vectors(vectors, valid)


def _vectors(vectors: np.ndarray, valid: np.ndarray) -> pa.Array:
    """``FLOAT[512]`` values, NULL where ``valid`` is False."""
    flat = pa.array(vectors.reshape(-1), pa.float32())
    mask = None if valid.all() else pa.array(~valid)
    return pa.FixedSizeListArray.from_arrays(flat, DIM, mask=mask)


def _check_dim(model: clip.ClipModel, name: str) -> None:
    if model.dim != DIM:
        raise NotSupportedError(
            f"{name} returns FLOAT[{DIM}] but {model.config.model} gives {model.dim}-dimensional "
            f"embeddings; choose a {DIM}-dimensional model (ViT-B-32, ViT-B-16, ...) "
            "in lancesql.clip_model"
        )


def _describe(blob: bytes | None) -> str:
    """Enough of a bad value to recognise it.

    >>> _describe(b"hello world, not a png")
    "22 bytes starting b'hello world, not'"
    """
    if blob is None:
        return "NULL"
    return f"{len(blob)} bytes starting {blob[:16]!r}"
