"""Sliced optimal transport of pixel patches: the layout stage of Optimal Textures' synthesis and the polish that
ends a synthesis or a style transfer.

Per-position feature matching (the levels of :mod:`ottex.methods.optimal_textures`) carries the local look of a
texture but has no notion of where things are relative to each other: long straight stripes come out as blobs,
checkerboards and brick walls lose their lattice. Matching the distribution of *patches* couples neighbouring
pixels: every ``p x p`` RGB patch of the image is a point of ``3 p^2`` dimensions; one step rotates that cloud by a
random orthonormal basis, replaces every marginal by the example's (exact 1D OT, :func:`~ottex.ot.sort_match`),
rotates back and puts each pixel back as the mean of the moved patches that cover it. Run coarse to fine on a
pyramid that starts where one patch spans a good part of the image, the steps settle the layout (the statistic
GPDM, Elnekave & Weiss 2022, optimises by gradient descent; here each step is a closed-form projection, as in
Optimal Textures). The layout works in the example's first :data:`LAYOUT_COMPONENTS` principal axes of patch
space, where a rotation costs a fifth of the sorts, and with the patches that lie inside the image (mirrored
patches at the borders bent lattices there): 100 rotations per scale at about the cost of 30 over the whole space,
and the lattices of checkerboards, tiles and planks come out whole.

* :func:`patch_sliced_ot`: ``iterations`` such steps on one image.
* :func:`patch_layout`: a new image of a given size, from noise, coarse to fine.
* :func:`patch_polish`: a few such steps on a finished image, at its own resolution (at most
  :data:`POLISH_MAX_SIDE`; larger images get the change made at that size, upsampled) and, with ``scales``, first
  at half that side (the synthesis and style-transfer schedules take 2): it restores the sharp, consistent local
  patterns that the decoders of the feature levels blur. With ``momentum`` its steps go further for the same sorts
  (a synthesis whose last pass is not inverted takes 16, 24 and 16 rotations at 0.8 at a quarter, half and all of
  its side, with 7, 7 and 5 px patches).

Example:
    >>> from ottex.eval.textures import stripes
    >>> out = patch_layout(stripes(64, period=8, angle=90), (48, 48), generator=torch.Generator().manual_seed(0))
    >>> out.shape
    torch.Size([1, 3, 48, 48])
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..core.errors import InputError
from ..core.resample import resize, wrap_resize
from ..ot import pca_basis, random_rotation, sort_match, sort_values, subsample

__all__ = [
    "patch_sliced_ot",
    "patch_layout",
    "patch_polish",
    "layout_sizes",
    "orientation_histogram",
    "autocorrelation",
    "structure_strength",
    "is_structured",
    "structure_verdict",
    "LAYOUT_PATCH",
    "LAYOUT_MIN_SIDE",
    "LAYOUT_COMPONENTS",
    "LAYOUT_FACTOR",
    "POLISH_MAX_SIDE",
    "POLISH_COMPONENTS",
    "STRUCTURED",
    "STRUCTURE_MIN_SIDE",
]

#: Side of the patches, in pixels.
LAYOUT_PATCH = 7
#: Short side of the coarsest image of :func:`patch_layout`'s pyramid: a 7 px patch spans close to half of it, so
#: long stripes come out straight.
LAYOUT_MIN_SIDE = 16
#: Principal axes of the example's patch space that :func:`patch_layout` works in (of 147 for 7x7 RGB patches): the
#: layout needs the large shapes, and each rotation then costs 32 sorts instead of 147, so many more fit.
LAYOUT_COMPONENTS = 32
#: Ratio of neighbouring sides of the pyramid (GPDM's 0.75: a patch of one scale overlaps the next one's well).
LAYOUT_FACTOR = 0.75
#: Principal axes :func:`patch_polish` moves the patches in (keeping what lies outside them): 8 rotations within 32
#: axes measured closer to the example than 4 over all 147, at half the time (docs/structure.md).
POLISH_COMPONENTS = 32
#: Longest side at which :func:`patch_polish` works (its time grows with the pixels: one rotation takes about 0.42 s
#: at 512 x 512 px on 2 CPU cores, 2026-12-07); larger images get the change made at this size, upsampled.
POLISH_MAX_SIDE = 512
#: Style patches kept per scale (randomly subsampled beyond).
MAX_STYLE_PATCHES = 1 << 15


def patch_sliced_ot(
    image: torch.Tensor,
    style: torch.Tensor,
    iterations: int = 10,
    patch: int = LAYOUT_PATCH,
    generator: torch.Generator | None = None,
    wrap: bool = False,
    components: int | None = None,
    keep_residual: bool = False,
    momentum: float = 0.0,
) -> torch.Tensor:
    """Move the ``patch x patch`` patches of ``image`` towards the example's by sliced OT, ``iterations`` times.

    The patches are those that lie wholly inside the image (a tileable image's wrap around its borders): padding
    would add mirrored patches that the example does not have, and bend lattices at the borders.

    With ``keep_residual`` each step is a change of the image, the mean over the patches that cover a pixel of how
    far each moved. ``momentum`` adds that share of the previous step's change to each step (heavy-ball): the
    averaging over overlapping patches makes each step short, and successive steps point much the same way, so
    the steps go further for the same sorts.

    Args:
        image: ``(B, C, H, W)`` image (any range; the result is not clamped).
        style: ``(1, C, H', W')`` example with at least one patch.
        iterations: random rotations (each: project every patch, match every marginal exactly, rotate back,
            average the overlapping patches).
        patch: odd side of the patches.
        generator: source of the rotations and of the subsample of the style's patches.
        wrap: the image wraps around (tileable): its patches cross the borders.
        components: work in the span of the example's first ``components`` principal axes of patch space
            (rotations of that subspace; what lies outside it is dropped): far fewer sorts per rotation, and the
            rotations go where the example varies. None: the whole ``C * patch**2``-dimensional space.
        keep_residual: move each patch by the change of its coordinates on the axes, keeping the part outside
            them (with ``components``: fine detail stays) instead of dropping it.
        momentum: share of the previous step's change added to each step, in ``[0, 1)`` (with ``keep_residual``).

    Returns:
        ``(B, C, H, W)``.

    Raises:
        InputError: an even patch, or one larger than the example or the (not tileable) image; a ``momentum``
            outside ``[0, 1)``, or one above 0 without ``keep_residual``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> img, sty = torch.rand(1, 3, 16, 16, generator=g), torch.rand(1, 3, 20, 20, generator=g)
        >>> patch_sliced_ot(img, sty, 2, patch=3, generator=g, components=8).shape
        torch.Size([1, 3, 16, 16])
    """
    if patch < 1 or patch % 2 == 0:
        raise InputError(f"patch must be an odd number of pixels, got {patch}", option="patch")
    if min(style.shape[-2:]) < patch:
        raise InputError(f"the {style.shape[-1]}x{style.shape[-2]} px example is smaller than one {patch}x{patch} "
                         "patch", option="patch")
    if not wrap and min(image.shape[-2:]) < patch:
        raise InputError(f"the {image.shape[-1]}x{image.shape[-2]} px image is smaller than one {patch}x{patch} "
                         "patch", option="patch")
    check_momentum(momentum)
    if momentum > 0 and not keep_residual:
        raise InputError("momentum needs keep_residual (steps that change the image)", option="momentum")
    c = image.shape[1]
    p = patch // 2
    target = subsample(F.unfold(style[:1].to(image), patch)[0], MAX_STYLE_PATCHES, generator)  # (D, M)
    d = target.shape[0]
    mean = target.mean(dim=1, keepdim=True)
    target = target - mean
    k = d if components is None else max(1, min(components, d))
    if k < d:  # principal axes, largest first
        basis = pca_basis(target.T, components=k)[1]
    else:
        basis = torch.eye(d, dtype=image.dtype, device=image.device)
    # each patch is a (C, patch, patch) window: projecting all of them is a convolution, putting them back (and
    # summing where they overlap) its transpose
    window = image.shape[-2:] if wrap else (image.shape[-2] - 2 * p, image.shape[-1] - 2 * p)
    ones = torch.ones(1, 1, *window, dtype=image.dtype, device=image.device)
    cover = F.conv_transpose2d(ones, torch.ones(1, 1, patch, patch, dtype=image.dtype, device=image.device))
    base = F.conv_transpose2d(ones, mean.reshape(1, c, patch, patch))
    if wrap:
        cover, base = _wrap_fold(cover, p), _wrap_fold(base, p)
    velocity = None  # the last change (keep_residual), carried with momentum
    for _ in range(iterations):
        axes = basis @ random_rotation(k, generator, device=image.device, dtype=image.dtype)  # (D, k)
        filters = axes.T.reshape(k, c, patch, patch)
        padded = F.pad(image, (p, p, p, p), mode="circular") if wrap else image
        coords = F.conv2d(padded, filters) - (axes.T @ mean).reshape(1, k, 1, 1)
        moved = sort_match(coords.flatten(2), sort_values(axes.T @ target), target_sorted=True, dim=-1)
        if keep_residual:  # move by the change of the coordinates only (over all axes: the same as replacing)
            back = F.conv_transpose2d(moved.view_as(coords) - coords, filters)
            step = (_wrap_fold(back, p) if wrap else back) / cover
            velocity = step if velocity is None or momentum == 0 else velocity.mul_(momentum).add_(step)
            image = image + velocity
        else:
            back = F.conv_transpose2d(moved.view_as(coords), filters)
            image = ((_wrap_fold(back, p) if wrap else back) + base) / cover
    return image


def check_momentum(momentum: float, name: str = "momentum") -> None:
    """Raise :class:`~ottex.core.errors.InputError` unless ``momentum`` (of :func:`patch_sliced_ot`) is in
    ``[0, 1)``; ``name`` says which setting it is."""
    if not 0 <= momentum < 1:
        raise InputError(f"{name} must be in [0, 1), got {momentum:g}", option="momentum")


def _wrap_fold(x: torch.Tensor, p: int) -> torch.Tensor:
    """A folded ``(B, C, H + 2p, W + 2p)`` map -> ``(B, C, H, W)`` with the padding added to the opposite sides."""
    if p == 0:
        return x
    x = x.clone()
    x[..., p : 2 * p, :] += x[..., -p:, :]
    x[..., -2 * p : -p, :] += x[..., :p, :]
    x[..., :, p : 2 * p] += x[..., :, -p:]
    x[..., :, -2 * p : -p] += x[..., :, :p]
    return x[..., p:-p, p:-p]


def layout_sizes(size: tuple[int, int], min_side: int = LAYOUT_MIN_SIDE, factor: float = LAYOUT_FACTOR
                 ) -> list[tuple[int, int]]:
    """The pyramid of :func:`patch_layout`, coarse to fine: ``size`` shrunk by ``factor`` while the short side
    stays at least ``min_side``.

    Example:
        >>> layout_sizes((64, 128))
        [(20, 40), (27, 54), (36, 72), (48, 96), (64, 128)]
    """
    h, w = size
    out = [(h, w)]
    s = 1.0
    while min(h, w) * s * factor >= min_side:
        s *= factor
        out.append((max(1, round(h * s)), max(1, round(w * s))))
    return out[::-1]


def patch_layout(
    style: torch.Tensor,
    size: tuple[int, int],
    iterations: int = 10,
    patch: int = LAYOUT_PATCH,
    batch: int = 1,
    generator: torch.Generator | None = None,
    wrap: bool = False,
    min_side: int = LAYOUT_MIN_SIDE,
    factor: float = LAYOUT_FACTOR,
    components: int | None = LAYOUT_COMPONENTS,
) -> torch.Tensor:
    """A new ``size`` image whose patches at every scale follow the example's: :func:`patch_sliced_ot` coarse to
    fine on :func:`layout_sizes`, from noise of the example's mean and spread.

    Args:
        style: ``(1, 3, H', W')`` example at the detail scale of ``size`` (the pyramid shrinks it with the image).
        size: ``(height, width)`` of the result.
        iterations: rotations per scale.
        patch: odd side of the patches.
        batch: images made at once (different noise, shared rotations).
        generator: source of the noise and the rotations.
        wrap: make a tileable layout.
        min_side: short side of the coarsest scale.
        factor: ratio of neighbouring sides.
        components: principal axes of the example's patches worked in (:func:`patch_sliced_ot`); None: all.

    Returns:
        ``(batch, 3, height, width)`` clamped to ``[0, 1]``.
    """
    sizes = layout_sizes(size, min_side, factor)
    image = None
    for h, w in sizes:
        example = _scaled(style, h / size[0], patch)
        if image is None:
            mean = example.mean(dim=(-2, -1), keepdim=True)
            spread = example.std(dim=(-2, -1), keepdim=True)
            noise = torch.randn(batch, style.shape[1], h, w, generator=generator, device=generator.device
                                if generator is not None else style.device, dtype=style.dtype).to(style.device)
            image = mean + spread * noise
        else:
            image = wrap_resize(image, (h, w)) if wrap else F.interpolate(image, size=(h, w), mode="bilinear",
                                                                          align_corners=False)
        image = patch_sliced_ot(image, example, iterations, patch, generator, wrap, components)
    assert image is not None
    return image.clamp_(0, 1)


def patch_polish(
    image: torch.Tensor,
    style: torch.Tensor,
    iterations: int | Sequence[int] = 4,
    patch: int | Sequence[int] = LAYOUT_PATCH,
    generator: torch.Generator | None = None,
    wrap: bool = False,
    max_side: int = POLISH_MAX_SIDE,
    components: int | None = POLISH_COMPONENTS,
    scales: int = 1,
    momentum: float = 0.0,
) -> torch.Tensor:
    """:func:`patch_sliced_ot` on a finished image, at its resolution or, when larger, at a long side of
    ``max_side`` with the change upsampled and added (so time and memory stay bounded at large sizes).

    With ``scales`` > 1 (or a sequence of ``iterations``, one per scale) the steps run first at half that side (and
    a quarter, ...), coarse to fine, each change upsampled and added: a 7 px patch at half the size spans twice the
    pixels, so the polish also corrects the mid-scale patterns (stripes, cells) that one scale's patches are too
    small to see.

    Args:
        image: ``(B, 3, H, W)`` image in ``[0, 1]``.
        style: ``(1, 3, H', W')`` example at the detail scale of ``image``.
        iterations: rotations at each scale (0 returns the image unchanged), or a sequence of them, one per scale,
            coarse to fine (its length is then the number of scales).
        patch: odd side of the patches, or a sequence of them, one per scale, coarse to fine (with a sequence of
            ``iterations`` of the same length).
        generator: source of the rotations.
        wrap: the image is tileable.
        max_side: longest side worked at.
        components: the patches move within the example's first ``components`` principal axes, the rest of
            each patch is kept (:func:`patch_sliced_ot`'s ``keep_residual``); None: all axes.
        scales: sides worked at, each half the next, ending at the image's (or ``max_side``); a coarser side whose
            short side would be under :data:`LAYOUT_MIN_SIDE` is left out (the last one always runs unless its
            rotations are 0). With a sequence of ``iterations``: 1 or its length.
        momentum: :func:`patch_sliced_ot`'s ``momentum``.

    Returns:
        ``(B, 3, H, W)`` clamped to ``[0, 1]``.

    Raises:
        InputError: ``scales`` under 1 or, with a sequence of ``iterations``, neither 1 nor its length; an empty
            sequence, a negative or fractional number of rotations; a patch side that is not odd, whole and under
            :data:`LAYOUT_MIN_SIDE`, or a sequence of them without a sequence of ``iterations`` as long;
            :func:`patch_sliced_ot`'s errors.

    Example:
        >>> from ottex.eval.textures import stripes
        >>> g = torch.Generator().manual_seed(0)
        >>> patch_polish(torch.rand(1, 3, 40, 40, generator=g), stripes(48, period=8), 2, generator=g).shape
        torch.Size([1, 3, 40, 40])
    """
    if scales < 1:
        raise InputError(f"scales must be at least 1, got {scales}")
    per_scale = isinstance(iterations, Sequence)
    try:
        counts = [operator.index(n) for n in iterations] if per_scale else [operator.index(iterations)] * scales
    except TypeError:
        raise InputError(f"the polish's rotations must be whole numbers, got {iterations!r}") from None
    if not counts:
        raise InputError("the polish needs the rotations of at least one scale, got an empty sequence")
    if per_scale and scales not in (1, len(counts)):
        raise InputError(f"scales must be 1 or {len(counts)} (the number of rotations per scale given), got {scales}")
    if min(counts) < 0:
        raise InputError(f"the polish's rotations must be at least 0 at every scale, got {iterations!r}")
    if isinstance(patch, Sequence) and not (per_scale and len(patch) == len(counts)):
        raise InputError(f"patch sides per scale need rotations per scale, as many: got patch {tuple(patch)!r} "
                         f"and rotations {iterations!r}", option="patch")
    sides = check_patch_sides(patch)
    sides = sides if isinstance(patch, Sequence) else sides * len(counts)
    h, w = image.shape[-2:]
    side = min(max_side, max(h, w))
    for k, n, pt in zip(reversed(range(len(counts))), counts, sides):
        if n > 0 and (min(h, w) * (side >> k) / max(h, w) >= LAYOUT_MIN_SIDE or k == 0):
            image = _polish_at(image, style, n, pt, generator, wrap, side >> k, components, momentum)
    return image


def check_patch_sides(patch: int | Sequence[int]) -> list[int]:
    """The polish's patch side, or sides, as a list; :class:`~ottex.core.errors.InputError` unless each is an odd
    whole number (not a bool) from 1 to ``LAYOUT_MIN_SIDE - 1`` (a patch must fit the coarsest side worked at)."""
    values = list(patch) if isinstance(patch, Sequence) else [patch]
    if not values or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and 1 <= s < LAYOUT_MIN_SIDE
                             and s % 2 == 1 for s in values):
        raise InputError(f"the polish's patch sides must be odd whole numbers from 1 to {LAYOUT_MIN_SIDE - 1}, got "
                         f"{patch!r}", option="patch")
    return [int(s) for s in values]


def _polish_at(image: torch.Tensor, style: torch.Tensor, iterations: int, patch: int,
               generator: torch.Generator | None, wrap: bool, max_side: int, components: int | None,
               momentum: float) -> torch.Tensor:
    """One scale of :func:`patch_polish`: at the image's size or, when larger, at a long side of ``max_side``
    with the change upsampled and added."""
    h, w = image.shape[-2:]
    s = min(1.0, max_side / max(h, w))
    if s == 1.0:
        return patch_sliced_ot(image, style, iterations, patch, generator, wrap, components, keep_residual=True,
                               momentum=momentum).clamp_(0, 1)
    resample = wrap_resize if wrap else resize
    small = resample(image, (max(patch, round(h * s)), max(patch, round(w * s))))
    change = patch_sliced_ot(small, _scaled(style, s, patch), iterations, patch, generator, wrap, components,
                             keep_residual=True, momentum=momentum) - small
    return (image + resample(change, (h, w))).clamp_(0, 1)


def _scaled(style: torch.Tensor, factor: float, patch: int) -> torch.Tensor:
    """The example resized by ``factor``, never below one patch."""
    sh, sw = style.shape[-2:]
    return resize(style, (max(patch, round(sh * factor)), max(patch, round(sw * factor))))


def _luma(image: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` -> ``(B, 1, H, W)`` Rec. 601 luminance."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype, device=image.device)
    return (image * w[:, None, None]).sum(dim=-3, keepdim=True)


def orientation_histogram(image: torch.Tensor, bins: int = 90, sigma: float = 2.0) -> torch.Tensor:
    """Where the edges of an image run: ``(B, bins)`` histograms over ``[0, 180)`` degrees (each sums to 1).

    The structure tensor of the luminance (Sobel gradients, Gaussian window of ``sigma`` px) gives each pixel the
    direction of its edge (across its dominant gradient) and a weight, its gradient energy times its coherence,
    ``sqrt((Jxx - Jyy)^2 + 4 Jxy^2)``.

    Example:
        >>> from ottex.eval.textures import stripes
        >>> int(orientation_histogram(stripes(64, angle=90), bins=4).argmax())  # the [90, 135) degrees bin
        2
    """
    y = _luma(image)
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=y.dtype, device=y.device) / 8
    g = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), torch.stack([sobel, sobel.T])[:, None])
    gx, gy = g[:, :1], g[:, 1:]
    t = torch.cat([gx * gx, gx * gy, gy * gy], dim=1)
    r = max(1, int(3 * sigma))
    x = torch.arange(-r, r + 1, dtype=y.dtype, device=y.device)
    g1 = torch.exp(-x.pow(2) / (2 * sigma**2))
    g1 = g1 / g1.sum()
    t = F.pad(t, (r, r, r, r), mode="replicate")
    t = F.conv2d(t, g1.view(1, 1, 1, -1).expand(3, 1, 1, -1).contiguous(), groups=3)
    t = F.conv2d(t, g1.view(1, 1, -1, 1).expand(3, 1, -1, 1).contiguous(), groups=3)
    jxx, jxy, jyy = t[:, 0], t[:, 1], t[:, 2]
    weight = torch.sqrt((jxx - jyy).pow(2) + 4 * jxy.pow(2))
    theta = (0.5 * torch.atan2(2 * jxy, jxx - jyy) + torch.pi / 2) % torch.pi
    idx = (theta / torch.pi * bins).long().clamp_(0, bins - 1).flatten(1)
    hist = torch.zeros(image.shape[0], bins, dtype=y.dtype, device=y.device)
    hist.scatter_add_(1, idx, weight.flatten(1))
    return hist / hist.sum(dim=1, keepdim=True).clamp_min(1e-12)


def autocorrelation(image: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised autocorrelation of the first image's luminance on the lags ``[-radius, radius]^2``.

    Zero-padded FFT; each lag divided by its overlap count and by the variance (lag 0 is 1).

    Returns:
        ``(2 radius + 1, 2 radius + 1)``, lag ``(0, 0)`` at the centre.

    Example:
        >>> from ottex.eval.textures import stripes
        >>> a = autocorrelation(stripes(64, period=8, angle=90, colors=((0, 0, 0), (1, 1, 1))), 8)
        >>> round(float(a[0, 8]), 2), round(float(a[8, 0]), 2)  # 8 px along the stripes: 1; across: -1
        (1.0, -1.0)
    """
    y = _luma(image[:1])[0, 0].double()
    h, w = y.shape
    y = y - y.mean()
    fh, fw = 2 * h, 2 * w
    corr = torch.fft.irfft2(torch.fft.rfft2(y, s=(fh, fw)).abs().pow(2), s=(fh, fw))
    ones = torch.fft.rfft2(torch.ones_like(y), s=(fh, fw))
    count = torch.fft.irfft2(ones.abs().pow(2), s=(fh, fw)).round().clamp_min(1)
    corr = torch.fft.fftshift(corr / count)
    c0 = corr[fh // 2, fw // 2].clamp_min(1e-12)
    return (corr[fh // 2 - radius : fh // 2 + radius + 1, fw // 2 - radius : fw // 2 + radius + 1] / c0).to(
        image.dtype)


#: :func:`is_structured`'s and :func:`structure_verdict`'s threshold on both statistics of :func:`structure_strength`.
STRUCTURED = 0.5

#: The smallest short side (px) at which :func:`structure_strength` reads the orientation of an example's edges at a
#: coarser scale than its own (below it the statistic of whole scenes turns noisy: graffiti 0.67 at 16 px).
STRUCTURE_MIN_SIDE = 64


def structure_strength(image: torch.Tensor) -> tuple[float, float]:
    """Two numbers in ``[0, 1]`` that say how strongly structured an example is.

    * ``orientation``: the share of the edge weight of :func:`orientation_histogram` (36 bins of 5 degrees) in its
      4 largest bins, the largest of it at the example's scale and at every half of it down to a short side of
      :data:`STRUCTURE_MIN_SIDE` px (average pooling): near 1 when the edges run along one or two directions at some
      scale (stripes, planks, bricks, tiles; rows of glyphs and lines of text, whose edges run every way at the scale
      of a stroke but along the rows at a coarser one), about 0.2 for edges in every direction at every scale
      (graffiti, lava, gravel).
    * ``repeat``: the largest absolute autocorrelation (:func:`autocorrelation`) at lags from an eighth to a quarter
      of the short side: near 1 for patterns that repeat (checkerboards, dot grids, weaves), below 0.4 for
      irregular ones.

    Example:
        >>> from ottex.eval.textures import checkerboard, glyphs
        >>> [round(v, 2) for v in structure_strength(checkerboard(64, cell=8))]
        [1.0, 1.0]
        >>> round(structure_strength(glyphs(256))[0], 2)  # 0.41 at its own scale, 0.82 at a quarter of it
        0.82
    """
    orientation, factor = 0.0, 1
    while factor == 1 or min(image.shape[-2:]) // factor >= STRUCTURE_MIN_SIDE:
        hist = orientation_histogram(F.avg_pool2d(image[:1], factor) if factor > 1 else image[:1], 36)[0]
        orientation, factor = max(orientation, float(hist.sort(descending=True).values[:4].sum())), 2 * factor
    r = max(4, min(image.shape[-2:]) // 4)
    a = autocorrelation(image, r).abs()
    lag = torch.arange(-r, r + 1, device=a.device).abs()
    far = torch.maximum(lag[:, None], lag[None, :]) >= r // 2
    return orientation, min(1.0, float(a[far].max()))


def structure_verdict(image: torch.Tensor) -> tuple[bool, str]:
    """Whether either statistic of :func:`structure_strength` reaches :data:`STRUCTURED` (0.5), and why, in words: a
    synthesis with ``layout="auto"`` starts from a :func:`patch_layout` when it does, and says so in a progress note.

    Args:
        image: ``(B, 3, H, W)`` example (the first image is read).

    Returns:
        ``(structured, words)``: the verdict and the two statistics with the threshold, e.g. ``"structured (edge
        orientation 0.82, repeat 0.33; 0.5 or more)"``.

    Example:
        >>> from ottex.eval.textures import checkerboard
        >>> structure_verdict(checkerboard(64, cell=8))
        (True, 'structured (edge orientation 1.00, repeat 1.00; 0.5 or more)')
    """
    orientation, repeat = structure_strength(image)
    structured = max(orientation, repeat) >= STRUCTURED
    figures = f"edge orientation {orientation:.2f}, repeat {repeat:.2f}"
    return structured, (f"structured ({figures}; {STRUCTURED} or more)" if structured
                        else f"not structured ({figures}; both under {STRUCTURED})")


def is_structured(image: torch.Tensor) -> bool:
    """Whether either statistic of :func:`structure_strength` reaches :data:`STRUCTURED` (0.5): the examples whose
    synthesis starts from a :func:`patch_layout` when ``layout="auto"`` (:func:`structure_verdict`)."""
    return structure_verdict(image)[0]
