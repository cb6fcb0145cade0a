"""Building blocks shared by the methods' coarse-to-fine loops (the scale pyramid itself is
:mod:`ottex.core.pyramid`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.errors import InputError
from ..core.resample import wrap_resize

__all__ = ["INITS", "check_init", "noise_like", "next_scale_image"]

#: Where a style transfer starts: from the content, or from noise with the style's colours.
INITS = ("content", "noise")


def check_init(init: str) -> None:
    """Raise :class:`InputError` unless ``init`` is one of :data:`INITS`."""
    if init not in INITS:
        raise InputError(f"init must be 'content' or 'noise', got '{init}'", option="init")


def noise_like(style: torch.Tensor, batch: int, size: tuple[int, int], gen: torch.Generator,
               spread: float | None = None) -> torch.Tensor:
    """Gaussian noise ``(batch, 3, *size)`` with the style's mean colour and per-channel spread (at most ``spread``
    when given: a flat style gives its flat colour), in ``[0, 1]``.

    Example:
        >>> noise_like(torch.full((1, 3, 8, 8), 0.3), 2, (4, 4), torch.Generator().manual_seed(0)).shape
        torch.Size([2, 3, 4, 4])
    """
    mu = style.mean(dim=(-2, -1), keepdim=True)
    sd = style.std(dim=(-2, -1), keepdim=True)
    sd = sd if spread is None else sd.clamp(max=spread)
    noise = torch.randn(batch, 3, *size, generator=gen, device=gen.device, dtype=style.dtype)
    return (mu + sd * noise).clamp(0, 1)


def next_scale_image(
    image: torch.Tensor | None,
    size: tuple[int, int],
    style: torch.Tensor,
    content: torch.Tensor | None,
    init: str,
    batch: int,
    gen: torch.Generator,
    wrap: bool = False,
    spread: float | None = None,
) -> torch.Tensor:
    """The image a coarse-to-fine scale starts from: the previous scale's result upsampled (periodically when
    ``wrap``), or at the first scale the content (``init="content"``) or noise with the style's colour statistics
    (:func:`noise_like`, with ``spread``)."""
    if image is not None:
        return wrap_resize(image, size) if wrap else F.interpolate(image, size=size, mode="bilinear",
                                                                   align_corners=False)
    if init == "content" and content is not None:
        return content.expand(batch, -1, -1, -1).clone()
    return noise_like(style, batch, size, gen, spread)
