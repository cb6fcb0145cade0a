"""Methods layer: the :class:`Method` contract and registry (:mod:`~ottex.methods.base`), the building blocks the
coarse-to-fine loops share (:mod:`~ottex.methods.common`), and one module per method, each registering itself:
:mod:`~ottex.methods.optimal_textures` (``ot``), :mod:`~ottex.methods.optimization` (``w2``, ``gatys``, ``swd``),
:mod:`~ottex.methods.strotss` (``strotss``).

Example:
    >>> from ottex.methods import list_methods
    >>> [m.name for m in list_methods("transfer")]
    ['ot', 'w2', 'gatys', 'swd', 'strotss']
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from .base import (
    SYNTHESIS,
    TASKS,
    TRANSFER,
    Method,
    Options,
    OptionSpec,
    get_method,
    list_methods,
    option,
    option_specs,
    register_method,
    unregister_method,
)

__all__ = [
    "SYNTHESIS",
    "TRANSFER",
    "TASKS",
    "Method",
    "Options",
    "OptionSpec",
    "option",
    "option_specs",
    "register_method",
    "unregister_method",
    "get_method",
    "list_methods",
    "METHODS",
]


class _Registry(Mapping):
    """Read-only ``{name: Method}`` view of the registry (the ``METHODS`` dict of ottex 0.1)."""

    def __getitem__(self, name: str) -> Method:
        for m in list_methods():
            if m.name == name:
                return m
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter([m.name for m in list_methods()])

    def __len__(self) -> int:
        return len(list_methods())


#: All registered methods by name.
METHODS: Mapping[str, Method] = _Registry()
