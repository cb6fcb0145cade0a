"""Optical flow between frames, warping by a flow, the occlusion mask, and the warping error of a clip.

The flow comes from OpenCV's DIS optical flow (``opencv-python-headless``, the ``video`` extra, imported only
here) on the grey frames; a flow ``f`` of frame ``t`` says, for each pixel ``x`` of frame ``t``, where it was in
frame ``t-1``: ``x + f(x)`` (:func:`backward_flow`). :func:`reliable_mask` keeps the pixels whose backward
and forward flows agree (the forward-backward check of Sundaram et al. 2010: ``|b + f(x + b)|^2 <= 0.01
(|b|^2 + |f(x + b)|^2) + 0.5``) and whose origin lies inside the frame; the others are occluded or uncertain.

:func:`warping_error` is the standard temporal measure (Lai et al. 2018): each output frame against the
previous output warped by the *input's* flow, squared differences averaged over the reliable pixels and the
channels, then over the frame pairs. Measured on the input clip itself it gives the input's own error (flow
and interpolation errors, lighting): a stylised clip is as steady as its input when its error is about the
same.

Tensors are ``(1, 3, H, W)`` in ``[0, 1]`` and stay on their device (the flow is computed on the CPU and moved).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import InputError

__all__ = ["WARP_MODES", "optical_flow", "backward_flow", "warp", "reliable_mask", "warping_error", "warping_errors"]


def _cv2() -> Any:
    try:
        import cv2  # noqa: PLC0415 - the optional video extra, only when a flow is computed
    except ImportError:
        raise InputError("optical flow needs OpenCV: pip install 'ottex[video]'", option="clip") from None
    return cv2


def _grey(image: torch.Tensor) -> np.ndarray:
    rgb = image[0].detach().float().cpu().clamp(0, 1)
    grey = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (grey * 255).round().to(torch.uint8).numpy()


def optical_flow(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """DIS optical flow (OpenCV, preset "medium") from ``src`` to ``dst``: ``(1, 2, H, W)`` (x, y) in pixels, such
    that ``src(x) ~ dst(x + flow(x))``; on ``src``'s device."""
    if src.shape != dst.shape:
        raise InputError(f"frames differ in size: {tuple(src.shape[-2:])} and {tuple(dst.shape[-2:])}",
                         option="frames")
    cv2 = _cv2()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(_grey(src), _grey(dst), None)
    return torch.from_numpy(flow).permute(2, 0, 1)[None].to(src.device, torch.float32)


def backward_flow(current: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """The flow of frame ``current`` back to ``previous`` (where each pixel was): :func:`optical_flow`."""
    return optical_flow(current, previous)


def _grid(flow: torch.Tensor) -> torch.Tensor:
    """Sampling grid (for ``grid_sample``, ``align_corners=True``) of the positions ``x + flow(x)``."""
    _, _, h, w = flow.shape
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype)
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype)
    px = xs[None, :] + flow[:, 0]
    py = ys[:, None] + flow[:, 1]
    return torch.stack((2 * px / max(w - 1, 1) - 1, 2 * py / max(h - 1, 1) - 1), dim=-1)


#: The interpolations of :func:`warp`.
WARP_MODES = ("bilinear", "bicubic", "lanczos")
#: Half-width of the Lanczos kernel of :func:`warp` (``"lanczos"``: 6x6 taps).
LANCZOS_A = 3


def warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """``image`` (the previous frame) sampled at ``x + flow(x)``: it moved onto the current frame (edges
    replicated).

    Args:
        image: ``(N, C, H, W)``.
        flow: ``(N, 2, H, W)`` backward flow (:func:`backward_flow`).
        mode: ``"bilinear"`` (what :func:`warping_error` uses), ``"bicubic"`` or ``"lanczos"`` (Lanczos-3, the
            sharpest: what :func:`~ottex.video.run.run_video` carries a result over with, because a texture
            moved along the flow frame after frame is blurred by every resampling). The last two may overshoot:
            clamp the result.

    Returns:
        ``(N, C, H, W)``, on ``image``'s device and dtype.

    Example:
        >>> image = torch.rand(1, 3, 8, 8)
        >>> still = torch.zeros(1, 2, 8, 8)  # nothing moved
        >>> all(torch.allclose(warp(image, still, m), image, atol=1e-6) for m in WARP_MODES)
        True
    """
    if mode not in WARP_MODES:
        raise ValueError(f"unknown warp mode '{mode}' (choose from {', '.join(WARP_MODES)})")
    flow = flow.to(image.device, image.dtype)
    if mode == "lanczos":
        return _lanczos_warp(image, flow)
    return F.grid_sample(image, _grid(flow), mode=mode, padding_mode="border", align_corners=True)


def _lanczos_weights(pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The taps of positions ``pos`` (``(N, H, W)``, in pixels) along one axis: ``(2a, N, H, W)`` integer
    positions and normalised Lanczos weights."""
    base = pos.floor()
    taps = base + torch.arange(1 - LANCZOS_A, LANCZOS_A + 1, device=pos.device, dtype=pos.dtype).view(-1, 1, 1, 1)
    d = (pos - taps).abs()
    weights = torch.special.sinc(d) * torch.special.sinc(d / LANCZOS_A)
    return taps, weights / weights.sum(0, keepdim=True)


def _lanczos_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """:func:`warp` with separable Lanczos-3 weights: 6x6 gathered taps per pixel, edges replicated."""
    n, c, h, w = image.shape
    ys = torch.arange(h, device=image.device, dtype=image.dtype)[:, None]
    xs = torch.arange(w, device=image.device, dtype=image.dtype)[None, :]
    tx, wx = _lanczos_weights(xs + flow[:, 0])
    ty, wy = _lanczos_weights(ys + flow[:, 1])
    ix = tx.clamp(0, w - 1).long()
    iy = ty.clamp(0, h - 1).long() * w
    flat = image.reshape(n, c, h * w)
    out = torch.zeros_like(image)
    for j in range(2 * LANCZOS_A):  # 36 taps: a loop over the kernel, each tap a gather of the whole batch
        for i in range(2 * LANCZOS_A):
            index = (iy[j] + ix[i]).reshape(n, 1, h * w).expand(n, c, h * w)
            out += torch.gather(flat, 2, index).view(n, c, h, w) * (wy[j] * wx[i])[:, None]
    return out


def reliable_mask(backward: torch.Tensor, forward: torch.Tensor) -> torch.Tensor:
    """``(1, 1, H, W)`` 1 where the backward flow (current -> previous) and the forward flow (previous -> current)
    agree and the origin is inside the frame, else 0."""
    fw = warp(forward, backward)
    total = backward + fw
    sq = (total ** 2).sum(1, keepdim=True)
    bound = 0.01 * ((backward ** 2).sum(1, keepdim=True) + (fw ** 2).sum(1, keepdim=True)) + 0.5
    grid = _grid(backward)
    inside = (grid.abs() <= 1).all(-1)[:, None]
    return ((sq <= bound) & inside).to(backward.dtype)


def _pair_flow(current: torch.Tensor, previous: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward flow of a frame pair and its reliable mask."""
    back = optical_flow(current, previous)
    return back, reliable_mask(back, optical_flow(previous, current))


def warping_errors(inputs: Sequence[torch.Tensor], outputs: Sequence[torch.Tensor]) -> list[float]:
    """The warping error of each consecutive pair of ``outputs`` under the flow of ``inputs`` (see the module);
    outputs of another size than the inputs are compared at the inputs' size."""
    if len(inputs) != len(outputs):
        raise InputError(f"{len(inputs)} input frames but {len(outputs)} output frames", option="frames")
    if len(inputs) < 2:
        raise InputError(f"a warping error needs at least two frames, got {len(inputs)}", option="frames")
    errors = []
    h, w = inputs[0].shape[-2:]

    def fit(x: torch.Tensor) -> torch.Tensor:
        return x if x.shape[-2:] == (h, w) else F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)

    for t in range(1, len(inputs)):
        back, mask = _pair_flow(inputs[t], inputs[t - 1])
        cur, prev = fit(outputs[t]).to(back.device), fit(outputs[t - 1]).to(back.device)
        diff = (cur - warp(prev, back)) ** 2 * mask
        errors.append(float(diff.sum() / (3 * mask.sum()).clamp_min(1)))
    return errors


def warping_error(inputs: Sequence[torch.Tensor], outputs: Sequence[torch.Tensor]) -> float:
    """Mean of :func:`warping_errors`: the warping error of a clip (``outputs`` = ``inputs``: the input's own).

    Example:
        >>> frames = [torch.rand(1, 3, 16, 16)] * 3  # a still clip: nothing moves, nothing changes
        >>> round(warping_error(frames, frames), 6)
        0.0
    """
    errors = warping_errors(inputs, outputs)
    return sum(errors) / len(errors)
