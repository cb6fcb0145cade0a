"""Shared fixtures: the weights and test images beside the checkout (../shared), or the
folders named by $OTTEX_WEIGHTS / $OTTEX_IMAGES. Nothing is downloaded in tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from ottex.core.resample import resize
from ottex.image.io import load_image

# A method module for the registry tests: imported by them (which registers it), never collected for doctests.
collect_ignore = ["fake_method.py", "flaky_method.py"]

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
WEIGHTS = Path(os.environ.get("OTTEX_WEIGHTS") or SHARED / "weights").resolve()
IMAGES = Path(os.environ.get("OTTEX_IMAGES") or SHARED / "images").resolve()

# Tests never download: point the library at the local weights and forbid network access.
os.environ["OTTEX_WEIGHTS"] = str(WEIGHTS)
os.environ["OTTEX_OFFLINE"] = "1"
torch.set_num_threads(min(2, torch.get_num_threads()))


def pytest_collection_modifyitems(config, items):  # noqa: ANN001
    if not (WEIGHTS / "cd16x" / "encoder5.pth").is_file():
        if os.environ.get("CI"):  # CI has the weights: a missing folder is a broken set-up, not a skip
            raise pytest.UsageError(f"CI: weights not found in {WEIGHTS} (set OTTEX_WEIGHTS)")
        skip = pytest.mark.skip(reason=f"weights not found in {WEIGHTS} (set OTTEX_WEIGHTS)")
        for item in items:
            if "needs_weights" in item.keywords:
                item.add_marker(skip)


def pytest_configure(config):  # noqa: ANN001
    config.addinivalue_line("markers", "needs_weights: uses the pretrained weights in OTTEX_WEIGHTS")


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    return WEIGHTS


@pytest.fixture(scope="session")
def images_dir() -> Path:
    return IMAGES


def _img(rel: str, size: int | tuple[int, int]) -> torch.Tensor:
    img = load_image(IMAGES / rel)
    if isinstance(size, int):
        h, w = img.shape[-2:]
        s = size / max(h, w)
        size = (max(1, round(h * s)), max(1, round(w * s)))
    return resize(img, size)


@pytest.fixture(scope="session")
def load_test_image():
    """``load_test_image("style/zebra.jpg", 64)``: a shared image resized (long side or (H, W))."""
    return _img


@pytest.fixture(scope="session")
def zebra() -> torch.Tensor:
    return _img("style/zebra.jpg", 64)


@pytest.fixture(scope="session")
def graffiti() -> torch.Tensor:
    return _img("style/graffiti.jpg", 96)
