"""Registry of the synthesis / style-transfer methods, for the CLI and the benchmark.

Each method names the functions that implement it (imported on first use, so
listing methods is cheap). Uniform call signatures:

* ``synthesize(style, size, *, seed, device, weights_dir, progress, **options)``
  with ``style`` a ``(1, 3, H, W)`` tensor and ``size=(H, W)``; returns ``(B, 3, H, W)``.
* ``transfer(content, style, *, seed, device, weights_dir, progress, **options)``
  with ``(1, 3, H, W)`` tensors; returns ``(1, 3, H, W)`` at the content's size.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .errors import InputError

__all__ = ["Method", "METHODS", "get_method"]


@dataclass(frozen=True)
class Method:
    """One method: a name, a one-line description, ``module:function`` targets and fixed keyword arguments."""

    name: str
    description: str
    synthesize: str | None = None
    transfer: str | None = None
    kwargs: tuple[tuple[str, object], ...] = ()

    def _load(self, target: str | None, what: str) -> Callable[..., torch.Tensor]:
        if target is None:
            raise InputError(f"method '{self.name}' does not do {what}")
        mod, fn = target.split(":")
        func = getattr(importlib.import_module(mod), fn)
        return functools.partial(func, **dict(self.kwargs)) if self.kwargs else func

    def synthesize_fn(self) -> Callable[..., torch.Tensor]:
        return self._load(self.synthesize, "texture synthesis")

    def transfer_fn(self) -> Callable[..., torch.Tensor]:
        return self._load(self.transfer, "style transfer")


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "ot",
            "Optimal Textures (Risser 2020): sliced OT of VGG features, no back-propagation",
            synthesize="ottex.optimal_textures:synthesize",
            transfer="ottex.optimal_textures:transfer",
        ),
        *(
            Method(name, desc, synthesize="ottex.optimization:synthesize_opt", transfer="ottex.optimization:stylize",
                   kwargs=(("method", name),))
            for name, desc in (
                ("w2", "Gaussian Wasserstein style transfer (Marron): pixels optimised against the closed-form W2 "
                       "distance of Gaussians fitted to VGG features"),
                ("gatys", "Gatys et al. (2016): pixels optimised against Gram-matrix losses"),
                ("swd", "Heitz et al. (2021): pixels optimised against a sliced Wasserstein feature loss"),
            )
        ),
        Method(
            "strotss",
            "STROTSS (Kolkin et al. 2019): pixels optimised against relaxed EMD, moment and palette losses of "
            "sampled hypercolumns plus a self-similarity content loss",
            transfer="ottex.strotss:strotss",
        ),
    )
}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise InputError(f"unknown method '{name}' (choose from {', '.join(METHODS)})") from None
