"""Colour-coded label maps (region guidance) for mask-guided synthesis and style transfer.

A label map is an image whose distinct colours name regions: the same colour in
the style's map and in the target's (or content's) map means "this part of the
output takes its style from that part of the example". Maps saved as JPEG carry
compression noise, so colours are quantised to the *dominant* colours of the
map: colours are counted in coarse bins, bins holding at least ``min_fraction``
of the pixels become labels (close bins merged), and every pixel takes the
label of the nearest dominant colour.

Labels are returned as soft one-hot masks ``(K, H, W)`` (the weights of the K
labels sum to 1 at every pixel) so they can be resampled to any feature
resolution with soft borders (:func:`resample_masks`).

Example:
    >>> style_m, target_m, colours = load_label_pair("style_mask.png", "target_mask.png")  # doctest: +SKIP
    >>> style_m.shape  # (K, Hs, Ws), one channel per region  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from ..core.errors import InputError
from .io import load_image

__all__ = [
    "check_mask_aspect",
    "dominant_colors",
    "quantize_labels",
    "load_label_map",
    "load_label_pair",
    "resample_masks",
    "masks_from_labels",
]

Colour = tuple[int, int, int]


def dominant_colors(image: torch.Tensor, min_fraction: float = 0.002, merge_distance: float = 40.0) -> torch.Tensor:
    """The dominant colours of a label-map image.

    Args:
        image: ``(1, 3, H, W)`` or ``(3, H, W)`` tensor in ``[0, 1]``.
        min_fraction: a colour becomes a label if at least this fraction of
            the pixels fall in its bin (16 levels per channel).
        merge_distance: bins whose mean colours are closer than this (in
            0-255 RGB units) are one label.

    Returns:
        ``(K, 3)`` float tensor of colours in 0-255, most frequent first.
    """
    img = image.reshape(3, *image.shape[-2:]).float() * 255.0
    rgb = img.reshape(3, -1).T.clamp(0, 255)
    # Only pixels inside flat areas vote: compression ringing and blended borders sit on edges.
    pad = F.pad(img[None], (1, 1, 1, 1), mode="replicate")[0]
    h, w = img.shape[-2:]
    jump = torch.stack([(pad[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] - img).abs().amax(0)
                        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0))]).amax(0).flatten()
    flat = jump < 24
    if int(flat.sum()) >= 0.05 * flat.numel():
        rgb = rgb[flat]
    bins = (rgb // 16).long()
    key = bins[:, 0] * 256 + bins[:, 1] * 16 + bins[:, 2]
    counts = torch.bincount(key, minlength=4096).float()
    sums = torch.zeros(4096, 3, dtype=torch.float64, device=rgb.device).index_add_(0, key, rgb.double())
    order = torch.argsort(counts, descending=True)
    keep = order[counts[order] >= max(1.0, min_fraction * rgb.shape[0])]
    colours: list[torch.Tensor] = []
    weights: list[float] = []
    for k in keep.tolist():  # a handful of bins
        c = (sums[k] / counts[k]).float()
        for i, d in enumerate(colours):
            if float((d - c).norm()) < merge_distance:
                w = weights[i]
                colours[i] = (d * w + c * counts[k]) / (w + counts[k])
                weights[i] = w + float(counts[k])
                break
        else:
            colours.append(c)
            weights.append(float(counts[k]))
    return torch.stack(colours) if colours else rgb.mean(0, keepdim=True)


def quantize_labels(image: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """Label of every pixel: index of the nearest of ``colours`` (``(K, 3)``, 0-255); returns ``(H, W)`` long."""
    h, w = image.shape[-2:]
    rgb = image.reshape(3, -1).T.float() * 255.0
    return torch.cdist(rgb, colours.to(rgb)).argmin(1).reshape(h, w)


def masks_from_labels(labels: torch.Tensor, k: int) -> torch.Tensor:
    """``(H, W)`` integer labels -> ``(k, H, W)`` float one-hot masks."""
    return F.one_hot(labels.long(), k).permute(2, 0, 1).float()


def resample_masks(masks: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize soft masks ``(K, H, W)`` to ``size=(h, w)``; borders become soft, weights still sum to 1 per pixel."""
    size = (int(size[0]), int(size[1]))
    if tuple(masks.shape[-2:]) == size:
        return masks
    shrink = size[0] < masks.shape[-2] or size[1] < masks.shape[-1]
    m = F.interpolate(masks[None], size=size, mode="bilinear", align_corners=False, antialias=shrink)[0].clamp_min(0)
    return m / m.sum(0, keepdim=True).clamp_min(1e-8)


def load_label_map(
    path: str | os.PathLike | torch.Tensor, min_fraction: float = 0.002
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a colour-coded label map.

    Args:
        path: image file or ``(1, 3, H, W)`` tensor in ``[0, 1]``.
        min_fraction: smallest share of the pixels a colour needs to be a label.

    Returns:
        ``(labels, colours)``: ``(H, W)`` long labels and ``(K, 3)`` colours (0-255).
    """
    image = _mask_image(path, "label map")
    colours = dominant_colors(image, min_fraction)
    return quantize_labels(image, colours), colours


def check_mask_aspect(mask_hw: Sequence[int], image_hw: Sequence[int], what: str, against: str) -> None:
    """Raise a clear error when a label map's aspect ratio is not its image's (within 3 %, for rounded sizes).

    Args:
        mask_hw: the label map's ``(H, W)``.
        image_hw: the ``(H, W)`` of the image it labels.
        what: the map's name in the message (``"style mask"``).
        against: the image's name in the message (``"style image"``).

    Raises:
        InputError: the aspect ratios differ.

    Example:
        >>> check_mask_aspect((64, 96), (128, 192), "content mask", "content image")  # same aspect: no error
    """
    (mh, mw), (ih, iw) = (int(v) for v in mask_hw), (int(v) for v in image_hw)
    if abs(math.log((mh / mw) / (ih / iw))) > 0.03:
        raise InputError(f"the {what} ({mw}x{mh}) does not match the {against} ({iw}x{ih}): aspect ratios differ")


def _mask_image(mask: str | os.PathLike | torch.Tensor, what: str, name: str | None = None) -> torch.Tensor:
    """A label map as a ``(1, 3, H, W)`` CPU float tensor (files are read and converted to RGB; one-channel
    tensors are repeated); a file that is not there is an error naming the parameter ``name``."""
    if not isinstance(mask, torch.Tensor):
        if name is not None and not Path(mask).is_file():
            raise InputError(f"{name} file not found: {mask}", option=name)
        return load_image(mask)
    m = mask.detach().float().cpu()
    if m.dim() == 2:
        m = m[None]
    if m.dim() == 4 and m.shape[0] == 1:
        m = m[0]
    if m.dim() != 3 or m.shape[0] not in (1, 3):
        raise InputError(f"{what} must be an image path or a (1, 3, H, W) / (H, W) tensor, got {tuple(mask.shape)}")
    return m.expand(3, -1, -1)[None]


def _name(path: object) -> str:
    return "tensor" if isinstance(path, torch.Tensor) else str(path)


def load_label_pair(
    style_mask: str | os.PathLike | torch.Tensor,
    target_mask: str | os.PathLike | torch.Tensor,
    min_fraction: float = 0.002,
    tolerance: float = 60.0,
    device: torch.device | str | None = None,
    names: tuple[str, str] = ("style_mask", "target_mask"),
) -> tuple[torch.Tensor, torch.Tensor, list[Colour]]:
    """Read a style label map and a target (or content) label map whose colours correspond.

    Each target colour is paired with the nearest style colour; regions of the
    target smaller than ``min_fraction`` of its pixels are ignored (with a
    warning: their pixels join the nearest kept label). Style regions without a
    target counterpart are dropped.

    Args:
        style_mask: label map of the style example.
        target_mask: label map of the output (synthesis) or of the content (transfer).
        min_fraction: smallest share of the pixels a region needs.
        tolerance: largest RGB distance (0-255 units) between a target colour and
            its style colour.
        device: device of the returned masks.
        names: the parameters that gave the two maps, named by the message about a missing file.

    Returns:
        ``(style_masks, target_masks, colours)``: ``(K, Hs, Ws)`` and ``(K, Ht, Wt)``
        one-hot masks with matching channels, and the K label colours.

    Raises:
        InputError: a target colour has no counterpart in the style's map.
    """
    s_img, t_img = _mask_image(style_mask, "style mask", names[0]), _mask_image(target_mask, "target mask", names[1])
    s_cols = dominant_colors(s_img, min_fraction)
    t_all = dominant_colors(t_img, 0.0005)
    t_labels = quantize_labels(t_img, t_all)
    share = torch.bincount(t_labels.flatten(), minlength=len(t_all)).float() / t_labels.numel()
    keep = share >= min_fraction
    if not bool(keep.all()):
        small = [tuple(int(v) for v in t_all[i].round()) for i in torch.nonzero(~keep).flatten().tolist()]
        warnings.warn(f"ignoring {len(small)} tiny region(s) of the target mask {_name(target_mask)} (colours "
                      f"{', '.join(map(str, small))}: under {min_fraction:.1%} of the pixels)", stacklevel=2)
    t_cols = t_all[keep]
    dist = torch.cdist(t_cols, s_cols)
    nearest = dist.argmin(1)
    bad = dist.min(1).values > tolerance
    if bool(bad.any()):
        missing = [tuple(int(v) for v in t_cols[i].round()) for i in torch.nonzero(bad).flatten().tolist()]
        have = [tuple(int(v) for v in c.round()) for c in s_cols]
        raise InputError(f"label colour(s) {', '.join(map(str, missing))} of the target mask {_name(target_mask)} "
                         f"are not in the style mask {_name(style_mask)} (its labels: {', '.join(map(str, have))})")
    # Labels are the style colours used by the target, in target order (duplicates merged).
    used = list(dict.fromkeys(nearest.tolist()))
    colours = s_cols[used]
    s_lab = quantize_labels(s_img, s_cols)
    remap = torch.full((len(s_cols),), -1, dtype=torch.long, device=s_cols.device)
    remap[used] = torch.arange(len(used), device=s_cols.device)
    s_lab = remap[s_lab]
    t_lab = quantize_labels(t_img, t_cols)
    t_lab = remap[nearest.to(remap.device)][t_lab.to(remap.device)]
    k = len(used)
    valid = s_lab >= 0
    s_masks = masks_from_labels(s_lab.clamp_min(0), k) * valid
    t_masks = masks_from_labels(t_lab, k)
    for i in range(k):
        if float(s_masks[i].sum()) == 0:
            raise InputError(f"label colour {tuple(int(v) for v in colours[i].round())} is not in the style mask "
                             f"{_name(style_mask)}")
    out = [tuple(int(v) for v in c.round()) for c in colours]
    return s_masks.to(device), t_masks.to(device), out  # type: ignore[return-value]
