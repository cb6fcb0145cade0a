"""Uploaded images: bounded in bytes and pixels, decoded by the command line's loader, stored under server-chosen
names.

An upload is written to a temporary file while its bytes are counted (more than ``max_bytes`` stops it), its
header is read for the pixel count (more than ``max_pixels`` is refused before anything is decoded, which is what
stops a decompression bomb: a few kilobytes that claim gigapixels), then it is decoded with
:func:`ottex.image.io.load_image` (the loader of the command line) and kept as ``uploads/<id>.<format>`` with a
random 32-hex-digit id. The user's file name is kept for display only, never as a path.

Example:
    >>> store = UploadStore(tmp, max_bytes=1 << 20, max_pixels=10**6)  # doctest: +SKIP
    >>> info = store.add_bytes(open("zebra.jpg", "rb").read(), "zebra.jpg")  # doctest: +SKIP
    >>> store.path(info.id)  # doctest: +SKIP
    PosixPath('.../uploads/3f2a....jpeg')
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ...core.errors import ImageError, InputError
from ...image.io import load_image

__all__ = ["UploadInfo", "UploadStore", "TooLarge", "NotFound", "UPLOAD_ID", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS"]

#: What an upload id looks like (anything else is refused before it is used in a path).
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
#: Formats kept (Pillow's names -> suffix); others are refused.
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif"}


class TooLarge(InputError):
    """An upload is over the server's limit in bytes or pixels."""


class NotFound(InputError):
    """No upload (or run) of that id on this server."""


@dataclass(frozen=True)
class UploadInfo:
    """One stored upload.

    Attributes:
        id: 32 hex digits, chosen by the server.
        name: the file name the user gave (for display only; never used as a path).
        width, height: pixels, after the EXIF orientation is applied.
        format: ``"PNG"``, ``"JPEG"`` ...
        bytes: size of the file.
    """

    id: str
    name: str
    width: int
    height: int
    format: str
    bytes: int

    def to_json(self) -> dict:
        return asdict(self)


def _display_name(name: str | None) -> str:
    """The user's file name, for display: its last component, printable characters only, at most 80."""
    base = re.split(r"[\\/]", name or "")[-1]
    clean = "".join(ch for ch in base if ch.isprintable()).strip()
    return clean[:80] or "image"


def _megapixels(n: int) -> str:
    return f"{n / 1e6:.3g} megapixels"


class UploadStore:
    """The uploads of a server, in ``<workdir>/uploads``.

    Args:
        workdir: the server's work folder.
        max_bytes: largest file accepted.
        max_pixels: largest image accepted (width x height, as the file's header states it).
    """

    def __init__(self, workdir: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.folder = Path(workdir) / "uploads"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self.max_pixels = int(max_pixels)

    # -- writing --------------------------------------------------------------------------------------------

    def too_many_bytes(self, size: int | None = None) -> TooLarge:
        got = "" if size is None else f" ({size / 1e6:.3g} MB)"
        return TooLarge(f"the upload is too large{got}: this server takes images up to "
                        f"{self.max_bytes / 1e6:.3g} MB", option="upload")

    def open_temp(self) -> tuple[Path, int]:
        """A new temporary file in the uploads folder: ``(path, fd)`` (for streaming an upload into it)."""
        fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=".tmp", dir=self.folder)
        return Path(tmp), fd

    def add_bytes(self, data: bytes, name: str | None = None) -> UploadInfo:
        """Check and store an upload given as bytes."""
        if len(data) > self.max_bytes:
            raise self.too_many_bytes(len(data))
        tmp, fd = self.open_temp()
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return self.add_file(tmp, name)

    def add_chunks(self, chunks: Iterable[bytes], name: str | None = None) -> UploadInfo:
        """Check and store an upload arriving in chunks (stops reading past ``max_bytes``)."""
        tmp, fd = self.open_temp()
        size = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise self.too_many_bytes()
                    fh.write(chunk)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self.add_file(tmp, name)

    def add_file(self, tmp: Path, name: str | None = None) -> UploadInfo:
        """Check a complete temporary file of the uploads folder and keep it (it is removed if refused).

        Raises:
            TooLarge: over the byte or pixel limit.
            ImageError: empty, not an image, or undecodable (the loader's message).
        """
        try:
            return self._keep(tmp, _display_name(name))
        finally:
            tmp.unlink(missing_ok=True)

    def _keep(self, tmp: Path, name: str) -> UploadInfo:
        size = tmp.stat().st_size
        if size == 0:
            raise ImageError(f"{name}: the upload is empty", option="upload")
        if size > self.max_bytes:
            raise self.too_many_bytes(size)
        fmt, (w, h) = self._header(tmp, name)
        if fmt not in FORMATS:
            raise ImageError(f"{name}: {fmt} images are not taken here (use PNG, JPEG, WebP, BMP or TIFF)",
                             option="upload")
        try:
            image = load_image(tmp)  # the command line's loader: every mode it converts, every error it gives
        except ImageError as exc:
            message = str(exc).replace(f" {tmp}", "").replace(str(tmp), "the upload")
            raise ImageError(f"{name}: {message}", option="upload") from None
        height, width = image.shape[-2:]
        upload_id = secrets.token_hex(16)
        final = self.folder / f"{upload_id}{FORMATS[fmt]}"
        os.replace(tmp, final)
        info = UploadInfo(upload_id, name, int(width), int(height), fmt, size)
        (self.folder / f"{upload_id}.json").write_text(json.dumps(info.to_json()))
        return info

    def _header(self, path: Path, name: str) -> tuple[str, tuple[int, int]]:
        """Format and size from the file's header alone (nothing decoded), refusing images over the limit."""
        try:
            with Image.open(path) as img:  # reads the header only
                fmt, (w, h) = img.format or "", img.size
        except Image.DecompressionBombError:  # over twice Pillow's own limit: refused by Pillow itself
            raise TooLarge(f"{name}: the image claims more pixels than this server takes "
                           f"({_megapixels(self.max_pixels)}): refused as a possible decompression bomb",
                           option="upload") from None
        except UnidentifiedImageError:
            raise ImageError(f"{name}: not an image file (or an unsupported format)", option="upload") from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"{name}: cannot read the image ({exc})", option="upload") from None
        if w * h > self.max_pixels:
            raise TooLarge(f"{name}: the image is {w}x{h} px ({_megapixels(w * h)}); this server takes images up "
                           f"to {_megapixels(self.max_pixels)} (a larger one may be a decompression bomb)",
                           option="upload")
        return fmt, (w, h)

    # -- reading --------------------------------------------------------------------------------------------

    def path(self, upload_id: object) -> Path:
        """The stored file of an upload id.

        Raises:
            InputError: not an upload id, or no such upload.
        """
        if not isinstance(upload_id, str) or not UPLOAD_ID.fullmatch(upload_id):
            raise NotFound(f"not an upload id: {str(upload_id)[:40]!r}", option="upload")
        for suffix in FORMATS.values():
            p = self.folder / f"{upload_id}{suffix}"
            if p.is_file():
                return p
        raise NotFound(f"no upload {upload_id} on this server (upload the image again)", option="upload")

    def info(self, upload_id: str) -> UploadInfo:
        """The record of an upload (its id is checked as by :meth:`path`)."""
        self.path(upload_id)
        meta = self.folder / f"{upload_id}.json"
        return UploadInfo(**json.loads(meta.read_text()))
