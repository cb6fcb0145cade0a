"""Alias of :mod:`ottex.eval.bench` (the same module object; this path is kept for ottex 0.1 code)."""

import sys

from .eval import bench as _module

sys.modules[__name__] = _module
