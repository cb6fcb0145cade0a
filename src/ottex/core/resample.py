"""Resampling of image tensors ``(*, C, H, W)``: plain resize, long-side resize, periodic resize."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["resize", "resize_long_side", "wrap_resize"]


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``(*, C, H, W)`` to ``size=(H, W)`` (antialiased bilinear when shrinking).

    Example:
        >>> resize(torch.rand(1, 3, 32, 48), (16, 24)).shape
        torch.Size([1, 3, 16, 24])
    """
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    shape = image.shape
    x = image.reshape(-1, *shape[-3:])
    shrink = size[0] < shape[-2] or size[1] < shape[-1]
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return x.reshape(*shape[:-2], *size)


def resize_long_side(image: torch.Tensor, long_side: int) -> torch.Tensor:
    """Resize keeping the aspect ratio so that the longer side is ``long_side``.

    Example:
        >>> resize_long_side(torch.rand(1, 3, 30, 60), 20).shape
        torch.Size([1, 3, 10, 20])
    """
    h, w = image.shape[-2:]
    s = long_side / max(h, w)
    return resize(image, (max(1, round(h * s)), max(1, round(w * s))))


def wrap_resize(image: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of a periodic ``(*, C, H, W)`` image: samples beyond an edge wrap to the other side.

    Example:
        >>> wrap_resize(torch.rand(1, 3, 16, 16), (32, 32)).shape
        torch.Size([1, 3, 32, 32])
    """
    out = image
    for dim, n in ((-2, int(size[0])), (-1, int(size[1]))):
        m = out.shape[dim]
        if m == n:
            continue
        pos = (torch.arange(n, device=out.device, dtype=torch.float32) + 0.5) * (m / n) - 0.5
        lo = torch.floor(pos)
        frac = (pos - lo).to(out.dtype)
        i0 = lo.long().remainder(m)
        i1 = (i0 + 1).remainder(m)
        shape = [1] * out.dim()
        shape[dim] = n
        frac = frac.reshape(shape)
        out = out.index_select(dim, i0) * (1 - frac) + out.index_select(dim, i1) * frac
    return out
