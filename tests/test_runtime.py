"""Allocator tuning: in effect on Linux/glibc, off when asked."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ottex.core.runtime import tune_cpu_allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_tuning_applies_once_and_can_be_turned_off():
    assert tune_cpu_allocator() is True
    assert tune_cpu_allocator() is True  # idempotent
    code = "from ottex.core.runtime import tune_cpu_allocator as t; print(t())"
    env = {"OTTEX_NO_MALLOC_TUNING": "1", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
