"""Alias of :mod:`ottex.methods.optimal_textures` (the same module object; this path is kept for ottex 0.1 code)."""

import sys

from .methods import optimal_textures as _module

sys.modules[__name__] = _module
