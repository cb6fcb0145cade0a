"""The test suite on a fresh clone without ../shared: every test that needs the weights or the images skips with
one clear reason (which folder is missing and how to name it), and nothing fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_without_shared_data_tests_skip_with_one_clear_reason(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(OTTEX_WEIGHTS=str(empty), OTTEX_IMAGES=str(empty), OTTEX_CACHE=str(tmp_path / "cache"))
    files = ["tests/test_weights.py", "tests/test_masks.py", "tests/test_strotss.py", "tests/test_cli.py"]
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *files],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = res.stdout
    assert res.returncode == 0, out[-3000:]  # no failure, no error
    reasons = {line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("SKIPPED")}
    assert len(reasons) == 2, reasons  # one reason per missing folder, for every skipped test
    weights, images = sorted(reasons, key=lambda line: "images" in line)
    assert weights.startswith(f"pretrained weights not found in {empty}") and "OTTEX_WEIGHTS" in weights
    assert images.startswith(f"test images not found in {empty}") and "OTTEX_IMAGES" in images and "README" in images
