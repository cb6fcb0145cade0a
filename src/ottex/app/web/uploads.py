"""Uploaded images: bounded in bytes and pixels, decoded by the command line's loader, stored under server-chosen
names.

An upload is written to a temporary file while its bytes are counted (more than ``max_bytes`` stops it), its
header is read for the pixel count (more than ``max_pixels`` is refused before anything is decoded, which is what
stops a decompression bomb: a few kilobytes that claim gigapixels), then it is decoded once by Pillow, as bytes
(no float copy: a 40-megapixel image costs at most its own pixels, and at most ``max_decodes`` images are decoded
at a time), and a small JPEG thumbnail is made from it with the command line's colour conversion (every mode the
loader takes). The file is kept as ``uploads/<id>.<format>`` with a random 32-hex-digit id, next to its record
(``<id>.json``) and thumbnail (``<id>.thumb.jpg``: what the page shows, whatever the format). The user's file name
is kept for display only, never as a path. Temporary files left by a killed server, and uploads older than
``keep_seconds`` that no run needs, are removed by :meth:`UploadStore.clean`.

Example:
    >>> store = UploadStore(tmp, max_bytes=1 << 20, max_pixels=10**6)  # doctest: +SKIP
    >>> info = store.add_bytes(open("zebra.jpg", "rb").read(), "zebra.jpg")  # doctest: +SKIP
    >>> store.path(info.id)  # doctest: +SKIP
    PosixPath('.../uploads/3f2a....jpeg')
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ...core.errors import ImageError, InputError
from ...image.io import to_rgb_array

__all__ = ["UploadInfo", "UploadStore", "TooLarge", "NotFound", "UPLOAD_ID", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS",
           "MAX_CLIP_BYTES", "MAX_CLIP_FRAMES", "CLIP_FORMATS"]

#: What an upload id looks like (anything else is refused before it is used in a path).
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
#: Images decoded at once (each costs up to its pixels in bytes, x4 for 16-bit and float modes).
DEFAULT_MAX_DECODES = 2
#: Long side of the thumbnails the page shows.
THUMB_SIDE = 256
#: Temporary files older than this (seconds) are a killed upload's.
STALE_TEMP_SECONDS = 600
#: Formats kept (Pillow's names -> suffix); others are refused.
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif"}
#: Short clips taken as the content of a style transfer (by the suffix of the user's file name -> format).
CLIP_FORMATS = {".mp4": "MP4", ".webm": "WEBM", ".mov": "MOV"}
#: Largest clip accepted, in bytes (an image may be larger: ``max_bytes``).
MAX_CLIP_BYTES = 10 * 1024 * 1024
#: Most frames in a clip accepted (each is one style transfer).
MAX_CLIP_FRAMES = 120


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
        format: ``"PNG"``, ``"JPEG"`` ... (a clip: ``"MP4"``, ``"WEBM"``, ``"MOV"``)
        bytes: size of the file.
        frames: a clip's frame count (None: an image).
        fps: a clip's frame rate.
    """

    id: str
    name: str
    width: int
    height: int
    format: str
    bytes: int
    frames: int | None = None
    fps: float | None = None

    @property
    def is_clip(self) -> bool:
        return self.frames is not None

    def to_json(self) -> dict:
        return asdict(self)


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


def _give_back_memory() -> None:
    """Return the freed memory of a decode to the system (glibc keeps freed blocks of tens of megabytes in its
    heaps otherwise: a server that decoded a few large images would hold their size for good)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


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
        max_decodes: images decoded at the same time (the others wait their turn).
        keep_seconds: uploads older than this that no run needs are removed by :meth:`clean` (None: kept).
    """

    def __init__(self, workdir: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_pixels: int = DEFAULT_MAX_PIXELS, max_decodes: int = DEFAULT_MAX_DECODES,
                 keep_seconds: float | None = None) -> None:
        self.folder = Path(workdir) / "uploads"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self.max_pixels = int(max_pixels)
        self.keep_seconds = keep_seconds
        self._decodes = threading.BoundedSemaphore(max(1, int(max_decodes)))

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
        if Path(name).suffix.lower() in CLIP_FORMATS:
            return self._keep_clip(tmp, name, size)
        fmt, (w, h) = self._header(tmp, name)
        if fmt not in FORMATS:
            raise ImageError(f"{name}: {fmt} images are not taken here (use PNG, JPEG, WebP, BMP or TIFF)",
                             option="upload")
        with self._decodes:  # a bounded number at a time: each may cost up to its pixels x 4 bytes
            try:
                thumb, (width, height) = self._decode(tmp, name)
            finally:
                _give_back_memory()
        upload_id = secrets.token_hex(16)
        final = self.folder / f"{upload_id}{FORMATS[fmt]}"
        thumb.save(self.folder / f"{upload_id}.thumb.jpg", format="JPEG", quality=88)
        os.replace(tmp, final)
        info = UploadInfo(upload_id, name, int(width), int(height), fmt, size)
        (self.folder / f"{upload_id}.json").write_text(json.dumps(info.to_json()))
        return info

    def _keep_clip(self, tmp: Path, name: str, size: int) -> UploadInfo:
        """Check a short clip (bytes, frames, frame size; read by the video command's :func:`open_clip`) and keep
        it, with its first frame as the thumbnail."""
        from ...video.io import open_clip  # noqa: PLC0415 - the video extra, only for a clip

        if size > MAX_CLIP_BYTES:
            raise TooLarge(f"{name}: the clip is too large ({size / 1e6:.3g} MB): this server takes clips up to "
                           f"{MAX_CLIP_BYTES / 1e6:.3g} MB", option="upload")
        suffix = Path(name).suffix.lower()
        named = tmp.with_name(f"{tmp.stem}{suffix}")  # the container is known by its suffix
        os.replace(tmp, named)
        try:
            with self._decodes:
                try:
                    clip = open_clip(named)
                except InputError as exc:
                    message = str(exc).replace(str(named), "the upload")
                    raise ImageError(f"{name}: {message}", option="upload") from None
                h, w = clip.size
                if clip.count > MAX_CLIP_FRAMES:
                    raise TooLarge(f"{name}: the clip has {clip.count} frames; this server takes clips of up to "
                                   f"{MAX_CLIP_FRAMES} frames", option="upload")
                if w * h > self.max_pixels:
                    raise TooLarge(f"{name}: the clip's frames are {w}x{h} px ({_megapixels(w * h)}); this server "
                                   f"takes up to {_megapixels(self.max_pixels)}", option="upload")
                first = next(clip.frames(0, 1))
            arr = first[0].permute(1, 2, 0).clamp(0, 1).mul(255).round().byte().cpu().numpy()
            thumb = Image.fromarray(arr, "RGB")
            thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
            upload_id = secrets.token_hex(16)
            thumb.save(self.folder / f"{upload_id}.thumb.jpg", format="JPEG", quality=88)
            os.replace(named, self.folder / f"{upload_id}{suffix}")
        finally:
            named.unlink(missing_ok=True)
        info = UploadInfo(upload_id, name, int(w), int(h), CLIP_FORMATS[suffix], size, clip.count, float(clip.fps))
        (self.folder / f"{upload_id}.json").write_text(json.dumps(info.to_json()))
        return info

    def _decode(self, path: Path, name: str) -> tuple[Image.Image, tuple[int, int]]:
        """Decode the whole image once (a truncated or corrupt file fails here, as in the loader), as Pillow's
        bytes, never as floats; returns its thumbnail (RGB, converted as the loader converts) and its size after
        the EXIF orientation."""
        try:
            with Image.open(path) as img:
                img.load()
                img.thumbnail((THUMB_SIDE, THUMB_SIDE), reducing_gap=None)  # the big decoded copy goes here
                small = ImageOps.exif_transpose(img) or img
                rgb = to_rgb_array(small)
                with Image.open(path) as header:  # the size after the EXIF orientation, from the header again
                    w, h = header.size
                    if header.getexif().get(0x0112) in (5, 6, 7, 8):
                        w, h = h, w
        except UnidentifiedImageError:
            raise ImageError(f"{name}: not an image file (or an unsupported format)", option="upload") from None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            message = str(exc).replace(str(path), "the upload")
            raise ImageError(f"{name}: cannot read the image ({message})", option="upload") from None
        if w == 0 or h == 0 or rgb.size == 0:
            raise ImageError(f"{name}: the image has no pixels", option="upload")
        thumb = Image.fromarray(np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8), "RGB")
        return thumb, (w, h)

    # -- cleaning ---------------------------------------------------------------------------------------------

    def clean(self, keep: Collection[str] = (), now: float | None = None) -> int:
        """Remove temporary files of uploads that never finished (a killed server's), and uploads older than
        ``keep_seconds`` whose id is not in ``keep`` (those that runs still need); returns how many went."""
        now = time.time() if now is None else now
        gone = 0
        for tmp in self.folder.glob(".upload-*"):  # .tmp, or a clip being checked (.mp4 ...)
            try:
                if now - tmp.stat().st_mtime > STALE_TEMP_SECONDS:
                    tmp.unlink()
                    gone += 1
            except OSError:
                pass
        if self.keep_seconds is None:
            return gone
        for meta in self.folder.glob("*.json"):
            upload_id = meta.stem
            if not UPLOAD_ID.fullmatch(upload_id) or upload_id in keep:
                continue
            try:
                if now - meta.stat().st_mtime <= self.keep_seconds:
                    continue
            except OSError:
                continue
            for p in self.folder.glob(f"{upload_id}.*"):
                p.unlink(missing_ok=True)
            gone += 1
        return gone

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
        for suffix in (*FORMATS.values(), *CLIP_FORMATS):
            p = self.folder / f"{upload_id}{suffix}"
            if p.is_file():
                return p
        raise NotFound(f"no upload {upload_id} on this server (upload the image again)", option="upload")

    def info(self, upload_id: str) -> UploadInfo:
        """The record of an upload (its id is checked as by :meth:`path`)."""
        self.path(upload_id)
        meta = self.folder / f"{upload_id}.json"
        return UploadInfo(**json.loads(meta.read_text()))

    def thumb(self, upload_id: str) -> Path:
        """The JPEG thumbnail of an upload (made again from the image if missing: uploads of older servers)."""
        path = self.path(upload_id)
        thumb = self.folder / f"{upload_id}.thumb.jpg"
        if not thumb.is_file() and path.suffix in CLIP_FORMATS:
            raise NotFound(f"no thumbnail of clip {upload_id} (upload it again)", option="upload")
        if not thumb.is_file():
            with self._decodes:
                small, _ = self._decode(path, "upload")
            small.save(thumb, format="JPEG", quality=88)
        return thumb

    def recent(self, offset: int = 0, limit: int = 50) -> tuple[list[UploadInfo], int]:
        """The uploads, newest first: ``(a page of them, how many in all)``."""
        metas = []
        for meta in self.folder.glob("*.json"):
            if UPLOAD_ID.fullmatch(meta.stem):
                try:
                    metas.append((meta.stat().st_mtime, meta))
                except OSError:
                    pass
        metas.sort(reverse=True)
        out = []
        for _, meta in metas[offset:offset + limit]:
            try:
                out.append(UploadInfo(**json.loads(meta.read_text())))
            except (OSError, ValueError, TypeError):
                continue
        return out, len(metas)
