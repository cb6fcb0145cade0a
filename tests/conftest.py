"""Shared fixtures: the weights and test images beside the checkout (../shared), or the
folders named by $OTTEX_WEIGHTS / $OTTEX_IMAGES. Nothing is downloaded in tests.

Without them (a fresh clone), every test that needs them is skipped, with one
reason per missing folder (docs/development.md, "Test data", says where they come from);
CI, which has them, fails instead."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from ottex.core.resample import resize
from ottex.image.io import load_image
from ottex.methods.base import register_method, unregister_method

# Helper modules of the tests (fake methods that register when imported, web test helpers): never collected.
collect_ignore = ["fake_method.py", "web_fakes.py", "web_support.py", "flaky_method.py", "video_fakes.py"]

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
WEIGHTS = Path(os.environ.get("OTTEX_WEIGHTS") or SHARED / "weights").resolve()
IMAGES = Path(os.environ.get("OTTEX_IMAGES") or SHARED / "images").resolve()
HAVE_WEIGHTS = (WEIGHTS / "cd16x" / "encoder5.pth").is_file()
HAVE_IMAGES = (IMAGES / "style" / "zebra.jpg").is_file()
MISSING = {
    "weights": f"pretrained weights not found in {WEIGHTS} (set OTTEX_WEIGHTS to a folder with cd16x/, wct-vgg19/ "
               "and vgg19-caffe/)",
    "images": f"test images not found in {IMAGES} (set OTTEX_IMAGES to a folder with style/, content/ and "
              "guidance/; README and docs/development.md say which images)",
}

# Tests never download: point the library at the local weights and forbid network access.
os.environ["OTTEX_WEIGHTS"] = str(WEIGHTS)
os.environ["OTTEX_OFFLINE"] = "1"
# pytest -n N (pytest-xdist): one thread per worker, so N workers share the cores instead of oversubscribing them
# (the processes the tests start, mkdocs or a bench's runs, inherit the setting)
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
else:
    torch.set_num_threads(min(2, torch.get_num_threads()))


def _require(what: str) -> None:
    """Skip the test when the shared ``what`` ("weights", "images") is missing, with its one reason."""
    if not {"weights": HAVE_WEIGHTS, "images": HAVE_IMAGES}[what]:
        pytest.skip(MISSING[what])


def pytest_report_header(config):  # noqa: ANN001
    state = lambda ok: "found" if ok else "MISSING: tests that need them are skipped"  # noqa: E731
    return [f"ottex test weights: {WEIGHTS} ({state(HAVE_WEIGHTS)})",
            f"ottex test images: {IMAGES} ({state(HAVE_IMAGES)})"]


def pytest_collection_modifyitems(config, items):  # noqa: ANN001
    if os.environ.get("CI") and not (HAVE_WEIGHTS and HAVE_IMAGES):  # CI has them: missing is a broken set-up
        raise pytest.UsageError(f"CI: {MISSING['weights'] if not HAVE_WEIGHTS else MISSING['images']}")


def pytest_configure(config):  # noqa: ANN001
    config.addinivalue_line("markers", "needs_weights: uses the pretrained weights in OTTEX_WEIGHTS")


@pytest.fixture(autouse=True)
def _skip_without_weights(request):  # noqa: ANN001, ANN202
    if request.node.get_closest_marker("needs_weights"):
        _require("weights")


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    _require("weights")
    return WEIGHTS


@pytest.fixture(scope="session")
def images_dir() -> Path:
    _require("images")
    return IMAGES


def _img(rel: str, size: int | tuple[int, int]) -> torch.Tensor:
    img = load_image(IMAGES / rel)
    if isinstance(size, int):
        h, w = img.shape[-2:]
        s = size / max(h, w)
        size = (max(1, round(h * s)), max(1, round(w * s)))
    return resize(img, size)


@pytest.fixture(scope="session")
def load_test_image(images_dir):  # noqa: ANN001
    """``load_test_image("style/zebra.jpg", 64)``: a shared image resized (long side or (H, W))."""
    return _img


@pytest.fixture(scope="session")
def zebra(images_dir) -> torch.Tensor:  # noqa: ANN001
    return _img("style/zebra.jpg", 64)


@pytest.fixture(scope="session")
def graffiti(images_dir) -> torch.Tensor:  # noqa: ANN001
    return _img("style/graffiti.jpg", 96)


@pytest.fixture()
def grey():
    """The fake method ``grey`` of ``tests/fake_method.py``, registered for one test."""
    import fake_method

    register_method(fake_method.METHOD)
    yield fake_method.METHOD
    unregister_method("grey")
