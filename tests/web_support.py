"""What the web tests share: the optional packages they need, small images, an app on a temporary folder."""

from __future__ import annotations

import importlib
import io
import os
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image


def require(module: str, what: str) -> None:
    """Skip the calling test module when ``module`` is not installed, saying why; in CI (``$CI`` set) fail instead:
    CI installs the web extra and the browser, so a skip there would hide a broken set-up."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI: {module} is not installed ({what}; {exc})", pytrace=False)
        pytest.skip(f"{module} is not installed ({what}): pip install -e \".[test,web]\"", allow_module_level=True)


def http_module():
    """The HTTP client package Starlette's test client uses: ``httpx2`` (newer Starlette), else ``httpx``."""
    try:
        return importlib.import_module("httpx2")
    except ImportError:
        return importlib.import_module("httpx")


def png_bytes(size: tuple[int, int] = (48, 40), seed: int = 0, mode: str = "RGB", fmt: str = "PNG") -> bytes:
    """A small noise image (width, height) as file bytes."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").convert(mode).save(buf, format=fmt)
    return buf.getvalue()


def bomb_png(width: int = 60000, height: int = 60000) -> bytes:
    """A valid PNG header claiming ``width`` x ``height`` grey pixels, with a few bytes of data: a decompression
    bomb as a file (it would decode to gigabytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4, 9)  # the first rows only: enough for a header check
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def chromium() -> str:
    """The Chromium binary for the browser test (``$OTTEX_CHROMIUM``, else ``chromium`` on the PATH): skipped with
    the reason when there is none, and a failure in CI (``.ci/run`` installs Debian's ``chromium``)."""
    for name in (os.environ.get("OTTEX_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name) if name else None
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("CI: no chromium binary for the browser test (apt-get install chromium, or set OTTEX_CHROMIUM)",
                    pytrace=False)
    pytest.skip("no chromium binary for the browser test (apt-get install chromium, or set OTTEX_CHROMIUM)",
                allow_module_level=True)
