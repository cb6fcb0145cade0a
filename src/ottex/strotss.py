"""Alias of :mod:`ottex.methods.strotss` (the same module object; this path is kept for ottex 0.1 code)."""

import sys

from .methods import strotss as _module

sys.modules[__name__] = _module
