"""Synthetic test clips with known motion, made from any still image: a camera pan, a zoom, and an object moving
over a still background. Each returns the frames and, for every frame after the first, its exact backward flow
(``(1, 2, H, W)``: where each pixel was in the previous frame, as :func:`ottex.video.flow.backward_flow`
estimates it), so that an estimated flow can be checked against the truth.

Example:
    >>> frames, flows = pan(torch.rand(1, 3, 40, 60), (16, 24), 3, (1.5, 0.0))
    >>> len(frames), tuple(frames[0].shape), float(flows[0][0, 0].mean())
    (3, (1, 3, 16, 24), 1.5)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..core.errors import InputError
from ..core.resample import resize

__all__ = ["cover", "pan", "pan_source_size", "zoom", "moving_object", "CLIPS", "PAN_STEP", "make_clip"]


def _sample(image: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """``image`` at pixel positions ``(px, py)`` (``(H, W)`` each), bilinear, edges replicated."""
    h, w = image.shape[-2:]
    grid = torch.stack((2 * px / (w - 1) - 1, 2 * py / (h - 1) - 1), dim=-1)[None]
    return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=True)


def _coords(size: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = size
    ys = torch.arange(h, device=device, dtype=torch.float32)[:, None].expand(h, w)
    xs = torch.arange(w, device=device, dtype=torch.float32)[None, :].expand(h, w)
    return xs, ys


def cover(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``image`` resized to cover ``size`` (aspect kept)."""
    s = max(size[0] / image.shape[-2], size[1] / image.shape[-1])
    return resize(image, (max(size[0], math.ceil(image.shape[-2] * s)), max(size[1], math.ceil(image.shape[-1] * s))))


def _check(frames: int) -> None:
    if frames < 1:
        raise InputError(f"a clip needs at least one frame, got {frames}", option="frames")


def pan_source_size(size: tuple[int, int], frames: int, step: tuple[float, float]) -> tuple[int, int]:
    """The ``(H, W)`` of the part of the image a :func:`pan` of ``size`` frames moving ``step`` px a frame sees."""
    return size[0] + math.ceil(abs(step[1]) * (frames - 1)) + 1, size[1] + math.ceil(abs(step[0]) * (frames - 1)) + 1


def pan(image: torch.Tensor, size: tuple[int, int], frames: int, step: tuple[float, float] = (2.0, 0.0)
        ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """A camera pan over ``image``: a ``size`` window moved ``step`` = (x, y) px a frame (fractions allowed)."""
    _check(frames)
    h, w = size
    dx, dy = step
    src = cover(image, pan_source_size(size, frames, step))
    x0 = 0.0 if dx >= 0 else abs(dx) * (frames - 1)
    y0 = 0.0 if dy >= 0 else abs(dy) * (frames - 1)
    xs, ys = _coords(size, image.device)
    out = [_sample(src, xs + x0 + t * dx, ys + y0 + t * dy) for t in range(frames)]
    flow = torch.tensor([dx, dy], dtype=torch.float32, device=image.device)[None, :, None, None].expand(1, 2, h, w)
    return out, [flow.clone() for _ in range(frames - 1)]


def zoom(image: torch.Tensor, size: tuple[int, int], frames: int, rate: float = 1.02
         ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """A zoom into the centre of ``image``: each frame magnified ``rate`` times the previous."""
    _check(frames)
    h, w = size
    src = cover(image, size)
    cx, cy = (src.shape[-1] - 1) / 2, (src.shape[-2] - 1) / 2
    xs, ys = _coords(size, image.device)
    u, v = xs - (w - 1) / 2, ys - (h - 1) / 2  # frame coordinates about the centre
    out = [_sample(src, cx + u / rate ** t, cy + v / rate ** t) for t in range(frames)]
    flow = torch.stack((u * (1 / rate - 1), v * (1 / rate - 1)))[None]
    return out, [flow.clone() for _ in range(frames - 1)]


def moving_object(background: torch.Tensor, thing: torch.Tensor, size: tuple[int, int], frames: int,
                  step: tuple[float, float] = (2.0, 1.0), side: float = 0.35
                  ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """A square cut from ``thing`` (``side`` of the frame's short side) moving ``step`` px a frame over a still
    ``background``, from the left third of the frame. The flow is ``-step`` on the object, 0 elsewhere."""
    _check(frames)
    h, w = size
    bg = _sample(cover(background, size), *_coords(size, background.device))
    k = max(2, round(min(h, w) * side))
    patch = resize(cover(thing, (k, k)), (k, k))
    xs, ys = _coords(size, background.device)
    out, flows = [], []
    for t in range(frames):
        x0, y0 = w / 6 + t * step[0], h / 4 + t * step[1]
        inside = ((xs >= x0) & (xs <= x0 + k - 1) & (ys >= y0) & (ys <= y0 + k - 1)).to(bg.dtype)
        obj = _sample(patch, (xs - x0).clamp(0, k - 1), (ys - y0).clamp(0, k - 1))
        out.append(bg * (1 - inside) + obj * inside)
        if t > 0:
            flows.append(torch.stack((-step[0] * inside, -step[1] * inside))[None])
    return out, flows


#: The clips of tests and benchmarks by name.
CLIPS = ("pan", "zoom", "object")
#: The motion of :func:`make_clip`'s pan: px a frame, (x, y).
PAN_STEP = (1.5, 0.5)


def make_clip(kind: str, image: torch.Tensor, size: tuple[int, int], frames: int, thing: torch.Tensor | None = None
              ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """One of :data:`CLIPS` with its default motion (``thing``: the moving object's image, default ``image``
    flipped)."""
    if kind == "pan":
        return pan(image, size, frames, PAN_STEP)
    if kind == "zoom":
        return zoom(image, size, frames, 1.015)
    if kind == "object":
        return moving_object(image, image.flip(-1) if thing is None else thing, size, frames)
    raise InputError(f"unknown clip '{kind}' (choose from {', '.join(CLIPS)})", option="clip")
