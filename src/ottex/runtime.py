"""Alias of :mod:`ottex.core.runtime` (the same module object; this path is kept for ottex 0.1 code)."""

import sys

from .core import runtime as _module

sys.modules[__name__] = _module
