"""Methods layer: the :class:`Method` contract and registry (:mod:`~ottex.methods.base`), options and the one
place where their values are read and checked (:mod:`~ottex.methods.options`), the request of a run
(:mod:`~ottex.methods.request`), the building blocks the
coarse-to-fine loops share (:mod:`~ottex.methods.common`), and one module per method, each registering itself:
:mod:`~ottex.methods.optimal_textures` (``ot``), :mod:`~ottex.methods.optimization` (``w2``, ``gatys``, ``swd``),
:mod:`~ottex.methods.strotss` (``strotss``).

Example:
    >>> from ottex.methods import list_methods
    >>> [m.name for m in list_methods("transfer")]
    ['ot', 'w2', 'gatys', 'swd', 'strotss']
"""

from __future__ import annotations

from .base import SYNTHESIS, TASKS, TRANSFER, Method, get_method, list_methods, register_method, unregister_method
from .options import Options, OptionSpec, make_options, option, option_specs

__all__ = [
    "SYNTHESIS",
    "TRANSFER",
    "TASKS",
    "Method",
    "Options",
    "OptionSpec",
    "option",
    "option_specs",
    "make_options",
    "register_method",
    "unregister_method",
    "get_method",
    "list_methods",
]
