"""Temporal stability of a stylised frame sequence: how much consecutive output frames change against how much
consecutive input frames change.

``frame_change`` is the mean absolute difference of consecutive frames (RGB in ``[0, 1]``, averaged over pixels,
channels and frame pairs). ``temporal_stability`` gives it for the inputs and the outputs and their ratio: 1
means the outputs change as much as the video itself; well above 1 means flicker added by the stylisation.
It does not follow motion: the standard measure that does (the warping error, each output frame against the previous
one moved by the input's optical flow, occlusions masked) is :func:`ottex.video.flow.warping_error`.

Example:
    >>> still = [torch.zeros(1, 3, 8, 8)] * 3
    >>> moving = [torch.full((1, 3, 8, 8), v) for v in (0.0, 0.1, 0.2)]
    >>> round(frame_change(moving), 3), frame_change(still)
    (0.1, 0.0)
    >>> s = temporal_stability(moving, [torch.full((1, 3, 8, 8), v) for v in (0.0, 0.2, 0.4)])
    >>> round(s["ratio"], 2)
    2.0
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from ..core.errors import InputError
from ..image.io import as_image

__all__ = ["frame_change", "temporal_stability"]

Frame = torch.Tensor | str | os.PathLike


def frame_change(frames: Sequence[Frame]) -> float:
    """Mean absolute difference between consecutive frames (files or ``(1, 3, H, W)`` tensors of one size).

    Raises:
        InputError: fewer than two frames, or frames of different sizes.
    """
    if len(frames) < 2:
        raise InputError(f"frame_change needs at least two frames, got {len(frames)}", option="frames")
    total = 0.0
    prev = as_image(frames[0], "cpu", "frame")
    for f in frames[1:]:
        cur = as_image(f, "cpu", "frame")
        if cur.shape != prev.shape:
            raise InputError(f"frames differ in size: {tuple(prev.shape[-2:])} and {tuple(cur.shape[-2:])}",
                             option="frames")
        total += float((cur - prev).abs().mean())
        prev = cur
    return total / (len(frames) - 1)


def temporal_stability(inputs: Sequence[Frame], outputs: Sequence[Frame]) -> dict[str, float]:
    """``{"input_change", "output_change", "ratio"}`` of a frame sequence and its stylised frames (same order)."""
    if len(inputs) != len(outputs):
        raise InputError(f"{len(inputs)} input frames but {len(outputs)} output frames", option="frames")
    a, b = frame_change(inputs), frame_change(outputs)
    return {"input_change": a, "output_change": b, "ratio": b / a if a > 0 else float("inf")}
