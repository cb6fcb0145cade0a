"""Alias of :mod:`ottex.methods.optimization` (the same module object; this path is kept for ottex 0.1 code)."""

import sys

from .methods import optimization as _module

sys.modules[__name__] = _module
