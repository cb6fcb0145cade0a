"""Job keys: what makes a job's outputs the same, recorded inside each output so that a re-run skips done work.

A job's key is the SHA-256 of the bytes of every input file (styles, content, label maps), the method, the task
and every option value (defaults included), the size, the batch, the seed and the colour mode. It is stored in
the output file itself, in the settings record the executor writes there (field ``job_key``; a PNG text chunk,
a JPEG comment: :func:`ottex.image.io.read_settings`), so the file and its key appear together by one rename;
formats that cannot hold the record get a sidecar ``<name>.ottex-key`` written after the image.
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..core.errors import ImageError
from ..core.files import atomic_output, sha256sum
from ..image.io import SETTINGS_KEY, holds_settings, read_settings, save_image
from ..methods.base import get_method
from ..methods.request import Job

__all__ = ["job_key", "output_key", "read_output_key", "save_keyed", "file_digest", "KEY_FIELD"]

#: The field of an output's settings record (:func:`ottex.image.io.read_settings`) that holds the key.
KEY_FIELD = "job_key"
_SIDECAR = ".ottex-key"
_DIGESTS: dict[tuple[str, int, int], str] = {}
#: The fields of a plain Job (the key records them one by one; a subclass's other fields go in "extra").
_JOB_FIELDS = {f.name for f in dataclasses.fields(Job)}


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
            _DIGESTS[cache] = sha256sum(p)
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
    if Path(item).is_dir():  # a folder of frames (a clip): its files' names and bytes
        files = sorted(p for p in Path(item).iterdir() if p.is_file())
        return "folder:" + hashlib.sha256(json.dumps([[p.name, file_digest(p)] for p in files]).encode()).hexdigest()
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
    """The key of a :class:`~ottex.exec.local.Job`: a hex SHA-256 of its inputs' bytes and its settings (and the
    fields a subclass of ``Job`` adds, such as a clip range's frames; a folder input counts by its files' bytes).

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
    extra = {f.name: _plain(getattr(job, f.name)) for f in dataclasses.fields(job) if f.name not in _JOB_FIELDS}
    if extra:  # a Job subclass's own settings (a clip range: its frames, temporal mode ...)
        record["extra"] = extra
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def output_key(key: str, index: int, count: int) -> str:
    """What output ``index`` of a job of ``count`` outputs records."""
    return key if count == 1 else f"{key}/{index + 1}of{count}"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _SIDECAR)


def read_output_key(path: str | os.PathLike) -> str | None:
    """The key recorded with an output file (None if it has none or cannot be read)."""
    p = Path(path)
    if not p.is_file():
        return None
    if holds_settings(p):
        try:
            record = read_settings(p)
        except ImageError:
            return None
        key = (record or {}).get(KEY_FIELD)
        return key if isinstance(key, str) else None
    side = _sidecar(p)
    return (side.read_text().strip() or None) if side.is_file() else None


def write_key_sidecar(path: str | os.PathLike, key: str) -> None:
    """For formats that cannot hold the settings record (BMP, TIFF, WebP): the key in ``<name>.ottex-key``,
    written atomically after the image (an image without it is not done)."""
    p = Path(path)
    if holds_settings(p):
        return
    try:
        with atomic_output(_sidecar(p)) as fh:
            fh.write(key.encode() + b"\n")
    except OSError as exc:
        raise ImageError(f"cannot write {_sidecar(p)}: {exc.strerror or exc}") from None


def save_keyed(image: torch.Tensor, path: str | os.PathLike, key: str, overwrite: bool = False,
               settings: dict[str, Any] | None = None) -> Path:
    """Write an image atomically with its job key in its settings record (or beside it, see
    :func:`write_key_sidecar`).

    Raises:
        ImageError: the file exists (and ``overwrite`` is false), an unknown format, or a write failure.
    """
    record = {SETTINGS_KEY: "", **(settings or {}), KEY_FIELD: key}
    p = save_image(image, path, overwrite=overwrite, settings=record)
    write_key_sidecar(p, key)
    return p


def outputs_done(outputs: Sequence[str | os.PathLike], key: str) -> bool:
    """Whether every output exists with the key of this job."""
    n = len(outputs)
    return n > 0 and all(read_output_key(p) == output_key(key, i, n) for i, p in enumerate(outputs))
