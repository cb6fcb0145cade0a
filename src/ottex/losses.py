"""Alias of :mod:`ottex.nn.losses` (the same module object; this path is kept for ottex 0.1 code)."""

import sys

from .nn import losses as _module

sys.modules[__name__] = _module
