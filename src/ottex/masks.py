"""Alias of :mod:`ottex.image.masks` (the same module object; this path is kept for ottex 0.1 code)."""

import sys

from .image import masks as _module

sys.modules[__name__] = _module
