"""The OpenCLIP model behind ``embed_image`` and ``embed_text``: settings, loading, batching.

The model is loaded the first time a function needs it, once per process for each
(model, pretrained, device, precision), and shared by every connection that asks for
the same four. torch and open_clip are imported only then, so lancesql runs without
them (they are the ``clip`` extra) until a query calls an embedding function.

Images are encoded in whole batches of ``clip_batch_size``. Decoding and preprocessing
(PIL decode, resize, crop, normalise: open_clip's own evaluation transform, so results
equal open_clip's) run on a thread pool a batch ahead of the model, so the model is not
kept waiting; the engines call a function from several threads at once, and a lock
lets one batch at a time through the model while the other threads decode theirs.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from lancesql.errors import Error, NotSupportedError, OperationalError, ProgrammingError
from lancesql.settings import Settings, declare

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "pure_fp16", "pure_bf16")
INSTALL_HINT = "pip install 'lancesql[clip]'"


def parse_device(text: str) -> str:
    """``auto`` (cuda, then mps, then cpu) or a torch device name.

    >>> parse_device(" CUDA:1 "), parse_device("auto")
    ('cuda:1', 'auto')
    """
    value = text.strip().lower()
    if value == "auto" or value in ("cpu", "mps", "cuda") or value.startswith("cuda:"):
        return value
    raise ValueError(f"expected auto, cpu, cuda, cuda:N or mps, got {text!r}")


def parse_precision(text: str) -> str:
    """``auto`` (fp16 on a GPU, fp32 on the CPU) or one of open_clip's precisions.

    >>> parse_precision("FP16")
    'fp16'
    """
    value = text.strip().lower()
    if value not in PRECISIONS:
        raise ValueError(f"expected one of {', '.join(PRECISIONS)}, got {text!r}")
    return value


def parse_batch_size(text: str) -> int:
    """A positive number of images a batch, or 0 for the device's default.

    >>> parse_batch_size("32")
    32
    """
    value = int(text)
    if value < 0:
        raise ValueError(f"expected a batch size >= 0, got {text!r}")
    return value


def parse_on_error(text: str) -> str:
    """``null`` or ``error``.

    >>> parse_on_error("Error")
    'error'
    """
    value = text.strip().lower()
    if value not in ("null", "error"):
        raise ValueError(f"expected null or error, got {text!r}")
    return value


declare("clip_model", DEFAULT_MODEL, str.strip, "OpenCLIP model of embed_image/embed_text.")
declare(
    "clip_pretrained",
    DEFAULT_PRETRAINED,
    str.strip,
    "OpenCLIP pretrained tag (downloaded once) or the path of a local checkpoint file.",
)
declare(
    "clip_device",
    "auto",
    parse_device,
    "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.",
)
declare(
    "clip_batch_size",
    0,
    parse_batch_size,
    "Images per model batch; 0: 256 on a GPU, 64 on the CPU.",
)
declare(
    "clip_precision",
    "auto",
    parse_precision,
    "auto (fp16 on a GPU, fp32 on the CPU), fp32, fp16, bf16.",
)
declare(
    "clip_on_error",
    "null",
    parse_on_error,
    "An undecodable image gives NULL and a warning (null) or fails the statement (error).",
)


@dataclass(frozen=True)
class ClipConfig:
    """One connection's model choice, with ``auto`` resolved for this machine."""

    model: str
    pretrained: str
    device: str
    precision: str
    batch_size: int
    on_error: str

    @classmethod
    def of(cls, settings: Settings) -> ClipConfig:
        """The ``clip_*`` settings; resolving ``auto`` needs torch (see :func:`require`)."""
        torch, _ = require()
        device = settings.get("clip_device")
        if device == "auto":
            if torch.cuda.is_available():
                device = "cuda"
            elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
                device = "mps"
            else:
                device = "cpu"
        elif device.startswith("cuda") and not torch.cuda.is_available():
            raise OperationalError(
                f"lancesql.clip_device is {device!r} but torch sees no CUDA device; "
                "SET lancesql.clip_device = 'auto' to use what there is"
            )
        gpu = device != "cpu"
        precision = settings.get("clip_precision")
        if precision == "auto":
            precision = "fp16" if gpu else "fp32"
        try:  # SET with a number and connect(clip={...}) skip the parser
            batch_size = parse_batch_size(str(settings.get("clip_batch_size")))
        except ValueError as exc:
            raise ProgrammingError(f"bad value for lancesql.clip_batch_size: {exc}") from None
        batch_size = batch_size or (256 if gpu else 64)
        pretrained = settings.get("clip_pretrained") or ""
        if pretrained and os.path.exists(os.path.expanduser(pretrained)):
            pretrained = os.path.abspath(os.path.expanduser(pretrained))
        return cls(
            settings.get("clip_model"),
            pretrained,
            device,
            precision,
            batch_size,
            settings.get("clip_on_error"),
        )

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What a loaded model is shared by."""
        return (self.model, self.pretrained, self.device, self.precision)


def require() -> tuple[Any, Any]:
    """torch and open_clip, or an error saying what to install."""
    try:
        import open_clip
        import torch
    except ImportError as exc:
        raise NotSupportedError(
            f"embed_image and embed_text need torch, torchvision and open_clip_torch: {INSTALL_HINT} ({exc})"
        ) from exc
    return torch, open_clip


class ClipModel:
    """A loaded OpenCLIP model with its transform and tokenizer, and batched encoders."""

    def __init__(self, config: ClipConfig, model: Any, preprocess: Any, tokenizer: Any, dim: int):
        torch, _ = require()
        self.config = config
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.dim = dim
        self.device = torch.device(config.device)
        self.dtype = {"fp16": torch.float16, "pure_fp16": torch.float16}.get(
            config.precision, torch.bfloat16 if "bf16" in config.precision else torch.float32
        )
        #: One batch at a time through the model; the engines' other threads decode meanwhile.
        self.lock = threading.Lock()

    def encode_images(
        self, blobs: Sequence[bytes | None], batch_size: int, stop_at_failure: bool = False
    ) -> tuple[np.ndarray, dict[int, str]]:
        """Unit-length embeddings of ``blobs`` (rows of zeros where a blob is None or bad),
        and why each bad one failed, by position. With ``stop_at_failure`` it returns at
        the first batch holding a bad image, leaving the rest unencoded.
        """
        out = np.zeros((len(blobs), self.dim), dtype=np.float32)
        failures: dict[int, str] = {}
        todo = [i for i, blob in enumerate(blobs) if blob is not None]
        batches = [todo[s : s + batch_size] for s in range(0, len(todo), batch_size)]
        if not batches:
            return out, failures
        pool = _pool()
        chunk = max(1, -(-batch_size // _WORKERS))  # each batch split over every thread

        def submit(batch: list[int]) -> list[Future[tuple[list[int], list[Any], dict[int, str]]]]:
            return [
                pool.submit(self._prepare, blobs, batch[s : s + chunk]) for s in range(0, len(batch), chunk)
            ]

        pending = [submit(batches[0])]
        try:
            for n in range(len(batches)):
                if n + 1 < len(batches):  # decode the next batch while this one runs
                    pending.append(submit(batches[n + 1]))
                rows: list[int] = []
                tensors: list[Any] = []
                for future in pending.pop(0):
                    ok, prepared, bad = future.result()
                    rows += ok
                    tensors += prepared
                    failures.update(bad)
                if stop_at_failure and failures:
                    break
                if tensors:
                    out[rows] = self._encode_image_batch(tensors)
        finally:
            for futures in pending:
                for future in futures:
                    future.cancel()
        return out, failures

    def encode_texts(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Unit-length embeddings of ``texts``, in batches."""
        torch, _ = require()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(list(texts[start : start + batch_size]))
            with self.lock, torch.inference_mode():
                features = self.model.encode_text(tokens.to(self.device))
                out[start : start + len(tokens)] = _unit(torch, features)
        return out

    def _prepare(
        self, blobs: Sequence[bytes | None], rows: list[int]
    ) -> tuple[list[int], list[Any], dict[int, str]]:
        """Decode and preprocess ``rows`` (on a pool thread)."""
        from PIL import Image, UnidentifiedImageError

        ok: list[int] = []
        tensors: list[Any] = []
        bad: dict[int, str] = {}
        for i in rows:
            blob = blobs[i]
            try:
                with Image.open(io.BytesIO(blob)) as image:  # type: ignore[arg-type]
                    tensors.append(self.preprocess(image))
                ok.append(i)
            except UnidentifiedImageError:
                bad[i] = "not an image format PIL knows"
            except Exception as exc:  # truncated, too large, bad mode...: PIL raises many kinds
                bad[i] = f"{type(exc).__name__}: {exc}"
        return ok, tensors, bad

    def _encode_image_batch(self, tensors: list[Any]) -> np.ndarray:
        torch, _ = require()
        batch = torch.stack(tensors)
        if self.device.type == "cuda":
            batch = batch.pin_memory()
        with self.lock, torch.inference_mode():
            images = batch.to(self.device, dtype=self.dtype, non_blocking=True)
            return _unit(torch, self.model.encode_image(images))


def _unit(torch: Any, features: Any) -> np.ndarray:
    """Rows scaled to unit length (cosine-normalised), as float32 on the CPU."""
    features = torch.nn.functional.normalize(features.float(), dim=-1)
    return features.cpu().numpy()


_MODELS: dict[tuple[str, str, str, str], ClipModel] = {}
_FAILURES: dict[tuple[str, str, str, str], tuple[float, Error]] = {}
_LOAD_LOCK = threading.Lock()
#: A failed load is not retried for this long: engines retry a failing constant
#: expression several times, and an offline download takes ~45 s to give up.
FAILURE_TTL_S = 300.0
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
_WORKERS = min(8, os.cpu_count() or 1)


def load(settings: Settings) -> tuple[ClipModel, ClipConfig]:
    """The model the settings name, loaded on first use and kept for the process."""
    config = ClipConfig.of(settings)
    model = _MODELS.get(config.key)
    if model is None:
        with _LOAD_LOCK:
            model = _MODELS.get(config.key)
            if model is None:
                failed = _FAILURES.get(config.key)
                if failed is not None and time.monotonic() - failed[0] < FAILURE_TTL_S:
                    raise failed[1]
                try:
                    model = _load(config)
                except Error as exc:
                    _FAILURES[config.key] = (time.monotonic(), exc)
                    raise
                _FAILURES.pop(config.key, None)
                _MODELS[config.key] = model
    return model, config


class _DownloadNoise(logging.Filter):
    """Drops open_clip's ``Failed to download weights ...`` record (logged on the root
    logger), which lancesql's own OperationalError says again, with what to do."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to download")


@contextlib.contextmanager
def _quiet_downloads() -> Iterator[None]:
    """While a model loads, silence the third-party log lines that duplicate the error
    lancesql raises: open_clip's download failure on the root logger, and
    huggingface_hub's line per retry. Nothing else of the user's logging changes: a
    root logger without handlers gets none for good (``logging.error`` would otherwise
    install one, and print ``ERROR:root:...`` from then on)."""
    root = logging.getLogger()
    placeholder = logging.NullHandler() if not root.handlers else None
    if placeholder is not None:
        root.addHandler(placeholder)
    hub = logging.getLogger("huggingface_hub")
    hub_level = hub.level
    hub.setLevel(logging.CRITICAL)
    noise = _DownloadNoise()
    root.addFilter(noise)
    try:
        yield
    finally:
        root.removeFilter(noise)
        hub.setLevel(hub_level)
        if placeholder is not None:
            root.removeHandler(placeholder)


def _load(config: ClipConfig) -> ClipModel:
    _, open_clip = require()
    name = config.model
    model_config = open_clip.get_model_config(name)
    if model_config is None:
        raise ProgrammingError(
            f"unknown OpenCLIP model {name!r} (lancesql.clip_model); "
            f"choose one of open_clip.list_models(), such as {DEFAULT_MODEL}"
        )
    pretrained = config.pretrained or None
    is_file = pretrained is not None and os.path.isfile(pretrained)
    if pretrained is not None and not is_file and not open_clip.get_pretrained_cfg(name, pretrained):
        tags = open_clip.list_pretrained_tags_by_model(name)
        raise ProgrammingError(
            f"lancesql.clip_pretrained = {pretrained!r} is neither a pretrained tag of {name} "
            f"({', '.join(tags) or 'none'}) nor a checkpoint file; {_LOCAL_HINT}"
        )
    try:
        with _quiet_downloads():
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pretrained, device=config.device, precision=config.precision
            )
    except RuntimeError as exc:
        if "download" in str(exc).lower():
            raise OperationalError(
                f"could not download the weights of {name} / {pretrained}: {exc}. {_LOCAL_HINT}"
            ) from exc
        raise OperationalError(
            f"could not load OpenCLIP {name} / {pretrained} on {config.device}: {exc}"
        ) from exc
    except (OSError, ValueError, KeyError) as exc:
        raise OperationalError(
            f"could not load OpenCLIP {name} from {pretrained!r}: {type(exc).__name__}: {exc}. " + _LOCAL_HINT
        ) from exc
    model.eval()
    return ClipModel(config, model, preprocess, open_clip.get_tokenizer(name), int(model_config["embed_dim"]))


_LOCAL_HINT = (
    "Without network access, copy the checkpoint file (open_clip_pytorch_model.bin or "
    "open_clip_model.safetensors of the model's Hugging Face repository) to this machine and "
    "point lancesql at it: SET lancesql.clip_pretrained = '/path/to/checkpoint', "
    "lancesql.connect(root, clip={'pretrained': '/path/to/checkpoint'}) "
    "or LANCESQL_CLIP_PRETRAINED=/path/to/checkpoint"
)


def _pool() -> ThreadPoolExecutor:
    """The process's decoding threads (PIL and torch release the GIL while they work)."""
    global _POOL
    if _POOL is None:
        with _POOL_LOCK:
            if _POOL is None:
                _POOL = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="lancesql-clip")
    return _POOL
