"""Job keys: what makes a job's outputs the same, recorded inside each output so that a re-run skips done work.

A job's key is the SHA-256 of the bytes of every input file (styles, content, label maps), the method, the task
and every option value (defaults included), the size, the batch, the seed and the colour mode. It is stored in
the output file itself, so the file and its key appear together by one rename: a PNG text chunk
(``ottex-job-key``), a JPEG comment; other formats get a sidecar ``<name>.ottex-key`` written after the image.
Output ``i`` of a job of ``n`` outputs carries ``<key>/<i>of<n>``.

Example:
    >>> from ottex.exec.local import Job
    >>> a = Job("ot", "synthesis", style=torch.zeros(1, 3, 4, 4), size=(8, 8), seed=0)
    >>> b = Job("ot", "synthesis", style=torch.zeros(1, 3, 4, 4), size=(8, 8), seed=1)
    >>> len(job_key(a)), job_key(a) == job_key(b), job_key(a) == job_key(Job("ot", "synthesis", a.style, size=(8, 8)))
    (64, False, True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image, PngImagePlugin

from ..core.errors import ImageError
from ..image.io import to_pil
from ..methods.base import get_method

__all__ = ["job_key", "output_key", "read_output_key", "save_keyed", "file_digest", "KEY_FIELD"]

#: The PNG text chunk (and JPEG comment prefix) that holds the key.
KEY_FIELD = "ottex-job-key"
_SIDECAR = ".ottex-key"
_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (cached by path, size and modification time).

    Raises:
        ImageError: the file cannot be read.
    """
    p = Path(path)
    try:
        st = p.stat()
        cache = (str(p.resolve()), st.st_size, st.st_mtime_ns)
        if cache not in _DIGESTS:
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            _DIGESTS[cache] = h.hexdigest()
        return _DIGESTS[cache]
    except FileNotFoundError:
        raise ImageError(f"image not found: {p}") from None
    except IsADirectoryError:
        raise ImageError(f"expected an image file, got a directory: {p}") from None
    except OSError as exc:
        raise ImageError(f"cannot read {p}: {exc}") from None


def _digest(item: Any) -> str:
    if isinstance(item, torch.Tensor):
        t = item.detach().to("cpu", torch.float32).contiguous()
        return "tensor:" + hashlib.sha256(str(tuple(t.shape)).encode() + t.numpy().tobytes()).hexdigest()
    return file_digest(item)


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, torch.Tensor):
        return _digest(value)
    return str(value)


def job_key(job: Any) -> str:
    """The key of a :class:`~ottex.exec.local.Job`: a hex SHA-256 of its inputs' bytes and its settings.

    Raises:
        ImageError: an input file cannot be read.
        InputError: an unknown method or option.
    """
    method = get_method(job.method, job.task)
    options = method.make_options(job.options)
    styles = job.style if isinstance(job.style, (list, tuple)) else [job.style]
    record = {
        "v": 1,
        "method": job.method,
        "task": job.task,
        "options": _plain(options),
        "size": _plain(job.size),
        "batch": job.batch,
        "seed": job.seed,
        "preserve_color": _plain(job.preserve_color),
        "style": [_digest(s) for s in styles],
        "content": None if job.content is None else _digest(job.content),
        "inputs": [_digest(p) for p in job.inputs],
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def output_key(key: str, index: int, count: int) -> str:
    """What output ``index`` of a job of ``count`` outputs records."""
    return key if count == 1 else f"{key}/{index + 1}of{count}"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _SIDECAR)


def read_output_key(path: str | os.PathLike) -> str | None:
    """The key recorded in an output file (None if it has none or cannot be read)."""
    p = Path(path)
    if not p.is_file():
        return None
    try:
        with Image.open(p) as img:
            if img.format == "PNG":
                return getattr(img, "text", {}).get(KEY_FIELD)
            if img.format == "JPEG":
                comment = img.info.get("comment", b"")
                text = comment.decode("ascii", "replace") if isinstance(comment, bytes) else str(comment)
                prefix = KEY_FIELD + "="
                return text[len(prefix):] if text.startswith(prefix) else None
    except (OSError, ValueError, SyntaxError):
        return None
    side = _sidecar(p)
    return side.read_text().strip() or None if side.is_file() else None


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files: give the output the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ImageError(f"cannot write {path}: {exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_keyed(image: torch.Tensor, path: str | os.PathLike, key: str, overwrite: bool = False) -> Path:
    """Write an image atomically with its job key recorded inside it (or beside it for formats without text).

    Raises:
        ImageError: the file exists (and ``overwrite`` is false), an unknown format, or a write failure.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise ImageError(f"output exists: {p}", option="overwrite")
    fmt = Image.registered_extensions().get(p.suffix.lower())
    if fmt is None:
        raise ImageError(f"unknown image format for output {p} (use e.g. .png or .jpg)")
    if not p.parent.is_dir():
        raise ImageError(f"output directory does not exist: {p.parent}")
    pil = to_pil(image)
    kwargs: dict[str, Any] = {}
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text(KEY_FIELD, key)
        kwargs["pnginfo"] = info
    elif fmt == "JPEG":
        kwargs.update(quality=95, comment=f"{KEY_FIELD}={key}".encode())
    elif fmt == "WEBP":
        kwargs["quality"] = 95
    _atomic_write(p, lambda fh: pil.save(fh, format=fmt, **kwargs))
    if fmt not in ("PNG", "JPEG"):
        _atomic_write(_sidecar(p), lambda fh: fh.write(key.encode() + b"\n"))
    return p


def outputs_done(outputs: Sequence[str | os.PathLike], key: str) -> bool:
    """Whether every output exists with the key of this job."""
    n = len(outputs)
    return n > 0 and all(read_output_key(p) == output_key(key, i, n) for i, p in enumerate(outputs))
