"""Alias of :mod:`ottex.methods.strotss` (the same module object; this path is kept for ottex 0.1 code).

``ottex.strotss`` is also the function :func:`ottex.methods.strotss.strotss`, and importing this path sets that
package attribute to the module: the module is therefore made callable as the function, so that
``ottex.strotss(content, style, 512)`` works whether or not this path was imported.
"""

import sys
import types
from typing import Any

from .methods import strotss as _module


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.strotss(*args, **kwargs)


_module.__class__ = _CallableModule
sys.modules[__name__] = _module
