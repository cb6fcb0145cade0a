"""The coarse-to-fine scale pyramid every method runs on, and the size rules around it.

One rule for every method: the finest scale is the requested size rounded up
to a multiple of ``multiple`` (16 for methods whose networks decode to the
input's size: every VGG level then has whole pixels), and each coarser scale
is the previous one halved (floor) and rounded up again, while the halved long
side stays at least ``coarse_side`` and the halved short side at least
``min_side``. Synthesis results are cut from the finest scale with
:func:`crop_to` (centre crop); style transfer, whose content was resampled to
the working size, resamples back (:func:`~ottex.core.resample.resize`).

Example:
    >>> pyramid_sizes((512, 512), coarse_side=256)
    [(256, 256), (512, 512)]
    >>> pyramid_sizes((341, 512), coarse_side=64, multiple=1)
    [(42, 64), (85, 128), (170, 256), (341, 512)]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TypeVar

import torch

from .checks import MIN_SIDE, check_size
from .errors import InputError
from .resample import resize

__all__ = [
    "MULTIPLE",
    "working_size",
    "pyramid_sizes",
    "per_scale",
    "crop_to",
    "content_output_size",
    "style_factor",
    "network_factor",
    "style_at",
]

#: Working sizes of the encoder/decoder methods are multiples of 2**4, so that every level decodes to that size.
MULTIPLE = 16

T = TypeVar("T")


def working_size(size: Sequence[int], multiple: int = MULTIPLE) -> tuple[int, int]:
    """Round a ``(height, width)`` up to a multiple of ``multiple``.

    Example:
        >>> working_size((40, 56))
        (48, 64)
    """
    return (math.ceil(size[0] / multiple) * multiple, math.ceil(size[1] / multiple) * multiple)


def pyramid_sizes(
    size: Sequence[int],
    coarse_side: int = 256,
    *,
    min_side: int = MIN_SIDE,
    scales: int | None = None,
    multiple: int = MULTIPLE,
) -> list[tuple[int, int]]:
    """Sizes of a coarse-to-fine schedule for an output of ``size=(H, W)``, coarsest first.

    Args:
        size: the output's ``(height, width)``.
        coarse_side: with ``scales=None``, halve while the halved long side is
            at least this.
        min_side: never halve below this short side.
        scales: a fixed number of scales instead (still limited by ``min_side``).
        multiple: every size is rounded up to a multiple of this (1: exact sizes).

    Returns:
        ``[(h, w), ...]``, the last one ``working_size(size, multiple)``.

    Example:
        >>> pyramid_sizes((100, 600), coarse_side=64, multiple=1)
        [(25, 150), (50, 300), (100, 600)]
    """
    sizes = [working_size(size, multiple)]
    while scales is None or len(sizes) < scales:
        h, w = sizes[0]
        if min(h, w) // 2 < min_side:
            break
        if scales is None and max(h, w) // 2 < coarse_side:
            break
        sizes.insert(0, working_size((h // 2, w // 2), multiple))
    return sizes


def per_scale(values: Sequence[T], scales: int) -> list[T]:
    """One value per scale from a coarse-to-fine sequence whose last value repeats.

    Example:
        >>> per_scale((100, 40), 3)
        [100, 40, 40]
    """
    if not values:
        raise InputError("a per-scale setting needs at least one value")
    return [values[min(i, len(values) - 1)] for i in range(scales)]


def crop_to(image: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """The centre ``size=(h, w)`` crop of ``(*, C, H, W)`` (the image itself when it has that size).

    Example:
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> crop_to(x, (2, 2))
        tensor([[[[ 5.,  6.],
                  [ 9., 10.]]]])
    """
    h, w = image.shape[-2:]
    if (h, w) == (int(size[0]), int(size[1])):
        return image
    top, left = (h - size[0]) // 2, (w - size[1]) // 2
    return image[..., top : top + size[0], left : left + size[1]].contiguous()


def content_output_size(
    content_hw: Sequence[int], size: int | Sequence[int] | None, min_side: int = MIN_SIDE
) -> tuple[int, int]:
    """Output ``(H, W)`` of a style transfer: the content's, with long side ``size`` (aspect kept), or
    ``size=(H, W)`` exactly.

    Example:
        >>> content_output_size((300, 400), 200), content_output_size((300, 400), (100, 100))
        ((150, 200), (100, 100))
    """
    if size is not None and not isinstance(size, (int, float)):
        return check_size(size, min_side)
    h, w = int(content_hw[0]), int(content_hw[1])
    if size is not None:
        if size < min_side:
            raise InputError(f"output size {size} is too small: at least {min_side} px", option="size")
        s = size / max(h, w)
        h, w = round(h * s), round(w * s)
    return check_size((h, w), min_side)


def style_factor(style_hw: Sequence[int], size: Sequence[int], style_scale: float | None = None) -> float:
    """Resize factor applied to a style example for an output of ``size``.

    Args:
        style_hw: ``(height, width)`` of the example.
        size: ``(height, width)`` of the output.
        style_scale: ``None`` (auto): the example's short side is fitted to the
            output's short side, but never enlarged, so an output larger than the
            example repeats its details at their native pixel size. A number:
            the example's short side becomes ``style_scale`` times the output's
            (below 1: smaller details; may enlarge the example).

    Returns:
        The factor (1 keeps the example's pixels as they are).

    Example:
        >>> style_factor((1600, 1141), (512, 512))  # the short sides match
        0.4487...
    """
    factor = min(size) / min(style_hw)
    if style_scale is None:
        return min(1.0, factor)
    return factor * style_scale


def network_factor(
    style_hw: Sequence[int], factor: float, min_short: int, network: str = "the network"
) -> float:
    """``factor``, raised where it would resize a style example below the least short side a network needs.

    The example is then resized to a ``min_short`` px short side instead (its details come out coarser than
    asked). For an example larger than that this is still a shrink, and nothing is said; only where the example
    itself is smaller, so that it is enlarged beyond its own size (its details blur), a :class:`UserWarning`
    says so.

    Args:
        style_hw: ``(height, width)`` of the example.
        factor: the resize factor asked for (:func:`style_factor`, times the scale's share).
        min_short: the least short side ``network`` takes, in px.
        network: the network in the warning, e.g. ``"the relu5_1 encoder"``.

    Returns:
        ``factor``, or ``min_short / short side`` where that is larger.

    Example:
        >>> network_factor((64, 64), 0.25, 32)  # 16 px would be too small: 32 px, still a shrink
        0.5
        >>> network_factor((64, 64), 1.0, 32)
        1.0
    """
    h, w = int(style_hw[0]), int(style_hw[1])
    short = min(h, w)
    if short * factor >= min_short:
        return factor
    raised = min_short / short
    if raised > 1:
        warnings.warn(f"the {w}x{h} px style example is enlarged to a {min_short} px short side, the least "
                      f"{network} needs; use a larger example for sharper details", stacklevel=3)
    return raised


def style_at(style: torch.Tensor, factor: float, min_side: int = MULTIPLE) -> torch.Tensor:
    """The style example resized by ``factor`` (each side at least ``min_side`` px).

    Example:
        >>> style_at(torch.rand(1, 3, 100, 200), 0.5).shape
        torch.Size([1, 3, 50, 100])
    """
    h, w = style.shape[-2:]
    if factor == 1.0:
        return style
    return resize(style, (max(min_side, round(h * factor)), max(min_side, round(w * factor))))
