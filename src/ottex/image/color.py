"""Colour transfer by sliced optimal transport of pixel colours, and colour preservation for style transfer.

:func:`color_transfer` is Pitié's N-dimensional PDF transfer (Pitié, Kokaram &
Dahyot 2005): repeat {random rotation of the RGB space, exact 1D OT of every
axis, rotation back}, which moves the whole colour distribution of the source
onto the target's (not only its mean and covariance). The 1D maps are fitted on
a random subsample of the pixels (the map of a quantile function is smooth)
and applied to every pixel; above 8 megapixels the fitted map is tabulated on
a 129^3 RGB grid and applied by trilinear lookup, so a 4K photograph costs
seconds rather than a minute.

:func:`preserve_color` keeps a content image's colours in a stylised result:
luminance from the result, chroma from the content, then a few sliced-OT steps
matching the result's RGB distribution to the content's.

Example:
    >>> photo, sunset = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 24, 40) * 0.5
    >>> color_transfer(photo, sunset, rotations=20).mean() < 0.4  # the sunset's darker colours
    tensor(True)
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from ..core.checks import is_integer, renamed_keyword
from ..core.device import make_generator
from ..core.errors import InputError
from ..core.resample import resize
from ..ot import monotone_map, random_rotation, sort_values, subsample
from .io import as_image

__all__ = [
    "COLOR_MODES",
    "color_mode",
    "color_transfer",
    "regrain",
    "preserve_color",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
]

# ITU-R BT.601 (JPEG) full-range YCbCr.
_YCBCR = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def rgb_to_ycbcr(image: torch.Tensor) -> torch.Tensor:
    """``(*, 3, H, W)`` RGB in ``[0, 1]`` -> YCbCr (Y in ``[0, 1]``, chroma centred on 0.5)."""
    m = _YCBCR.to(image)
    out = torch.einsum("ij,...jhw->...ihw", m, image)
    return out + torch.tensor([0.0, 0.5, 0.5], dtype=image.dtype, device=image.device)[:, None, None]


def ycbcr_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr`."""
    m = torch.linalg.inv(_YCBCR.double()).to(image)
    centred = image - torch.tensor([0.0, 0.5, 0.5], dtype=image.dtype, device=image.device)[:, None, None]
    return torch.einsum("ij,...jhw->...ihw", m, centred)


def color_transfer(
    source: torch.Tensor | str | os.PathLike,
    target: torch.Tensor | str | os.PathLike,
    rotations: int = 20,
    samples: int = 1 << 16,
    seed: int | None = 0,
    regrain: bool = True,
    *,
    iterations: int | None = None,
) -> torch.Tensor:
    """Give ``source`` the colour distribution of ``target`` (Pitié's N-D PDF transfer, then his regraining).

    Args:
        source: image to recolour, ``(*, 3, H, W)`` in ``[0, 1]`` or a path.
        target: image whose colours are taken (any size), or a path.
        rotations: random rotations of the RGB space (10-30 is typical; ``ottex color --rotations``).
        samples: pixels of each image on which the 1D maps are fitted.
        seed: random seed of the rotations and the subsampling.
        regrain: follow the mapping with :func:`regrain` (Pitié et al. 2007),
            which keeps the source's gradients where the colour map would
            stretch grain and JPEG noise into visible artefacts (noisy flat
            areas, bands in skies); False returns the mapped colours as they are.
        iterations: the former name of ``rotations`` (deprecated: a :class:`FutureWarning`).

    Returns:
        Tensor shaped like ``source`` in ``[0, 1]``, on its device.

    Raises:
        InputError: a bad image argument, ``rotations`` not an integer of at least 1, or ``samples`` not an
            integer of at least 1.

    Example:
        >>> src, tgt = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 40, 24) * 0.5
        >>> color_transfer(src, tgt, rotations=5).shape
        torch.Size([1, 3, 32, 32])
    """
    rotations = renamed_keyword(rotations, iterations, "rotations", "iterations", default=20)
    for name, value in (("rotations", rotations), ("samples", samples)):
        if not is_integer(value) or value < 1:
            raise InputError(f"{name} must be an integer of at least 1, got {value!r}", option=name)
    src = as_image(source, None, "source", shape="any", dtype=None)
    tgt = as_image(target, src.device, "target", shape="any", dtype=None).to(src)
    gen = make_generator(seed, src.device)
    shape = src.shape
    x = src.reshape(-1, 3, shape[-2] * shape[-1]).transpose(0, 1).reshape(3, -1)  # (3, B*H*W)
    y = tgt.reshape(-1, 3, tgt.shape[-2] * tgt.shape[-1]).transpose(0, 1).reshape(3, -1)
    xs = subsample(x, samples, gen)
    ys = subsample(y, samples, gen)
    use_lut = x.shape[-1] > LUT_PIXELS
    pts = _lut_points(src.device, src.dtype) if use_lut else x
    for _ in range(rotations):
        rot = random_rotation(3, gen, device=src.device, dtype=src.dtype)  # columns: the new axes
        xs_r, ys_r = rot.T @ xs, rot.T @ ys
        fit_x, fit_y = sort_values(xs_r), sort_values(ys_r)
        pts = rot @ monotone_map(rot.T @ pts, fit_x, fit_y)
        xs = rot @ monotone_map(xs_r, fit_x, fit_y)
    x = _apply_lut(pts, x) if use_lut else pts
    out = x.reshape(3, -1, shape[-2] * shape[-1]).transpose(0, 1).reshape(shape)
    if regrain:  # (the function regrain(), which this parameter shadows)
        src4, out4 = src.reshape(-1, 3, *shape[-2:]), out.reshape(-1, 3, *shape[-2:])
        out = _regrain_rec(out4.clone(), src4, out4, REGRAIN_ITERATIONS, 0, 1.0).reshape(shape)
    return out.clamp_(0, 1)


#: Jacobi iterations of :func:`regrain` per scale, finest first (Pitié's ``regrain.m``).
REGRAIN_ITERATIONS = (4, 16, 32, 64, 64, 64)


def _shifted(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The right, down, left and up neighbours of every pixel of ``(B, C, H, W)`` (edges replicated)."""
    right = torch.cat([x[..., :, 1:], x[..., :, -1:]], -1)
    down = torch.cat([x[..., 1:, :], x[..., -1:, :]], -2)
    left = torch.cat([x[..., :, :1], x[..., :, :-1]], -1)
    up = torch.cat([x[..., :1, :], x[..., :-1, :]], -2)
    return right, down, left, up


def _regrain_scale(
    out: torch.Tensor, original: torch.Tensor, mapped: torch.Tensor, iterations: int, level: int, smoothness: float
) -> torch.Tensor:
    """Relaxed Jacobi iterations of the Euler-Lagrange equation of :func:`regrain`'s energy at one scale."""
    right, down, left, up = _shifted(original)
    delta = ((right - left).square() + (down - up).square()).sum(-3, keepdim=True).sqrt()  # |grad I|, (B, 1, H, W)
    psi = (256.0 * delta / 5.0).clamp_(max=1.0)  # follow the mapped colours on edges ...
    phi = 30.0 * 2.0**-level / (1.0 + 10.0 * delta / smoothness)  # ... and the original's gradients in flat areas
    weights = [(phi + n) / 2 for n in _shifted(phi)]  # the gradient weight between a pixel and each neighbour
    den = psi + sum(weights) + 1e-6
    # sum_n phi_n (I - I_n): fixed during the iterations
    fixed = psi * mapped + sum(w * (original - n) for w, n in zip(weights, _shifted(original)))
    rho = 0.2  # relaxation: a fifth of the previous estimate is kept
    for _ in range(iterations):
        num = fixed + sum(w * n for w, n in zip(weights, _shifted(out)))
        out = (1 - rho) * num / den + rho * out
    return out


def regrain(
    original: torch.Tensor,
    mapped: torch.Tensor,
    smoothness: float = 1.0,
    iterations: tuple[int, ...] = REGRAIN_ITERATIONS,
) -> torch.Tensor:
    """Pitié's regraining (Pitié, Kokaram & Dahyot 2007, "Automated colour grading using colour distribution
    transfer", section 5): the image ``J`` whose gradients follow the original's while its colours follow the
    mapped image's, minimising

    ``sum phi |grad J - grad I|^2 + psi |J - t(I)|^2``

    with ``I`` the original, ``t(I)`` the colour-mapped image, ``psi = min(1, 256 |grad I| / 5)`` (the mapped
    colours count on edges) and ``phi = 30 / (1 + 10 |grad I| / smoothness)`` (the original's gradients count in
    flat areas, where a colour map stretches grain and noise). Solved coarse to fine on a pyramid of halved sizes
    (down to about 20 px) by relaxed Jacobi iterations, ``iterations`` per scale, finest first, as in the paper's
    code; the gradient weight halves at each finer scale.

    Args:
        original: ``(B, 3, H, W)`` image before the colour transfer.
        mapped: the same image after it (same shape).
        smoothness: larger: more of the original's gradients are kept on weak edges too.
        iterations: Jacobi iterations per scale, finest first.

    Returns:
        ``(B, 3, H, W)``; not clamped.

    Example:
        >>> flat = torch.full((1, 3, 32, 32), 0.5)
        >>> grainy = flat + 0.1 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> float(regrain(flat, grainy).std()) < 0.5 * float(grainy.std())
        True
    """
    if original.shape != mapped.shape:
        raise InputError(f"original and mapped images differ in shape: {tuple(original.shape)} and "
                         f"{tuple(mapped.shape)}")
    return _regrain_rec(mapped.clone(), original, mapped, tuple(iterations), 0, smoothness)


def _regrain_rec(out: torch.Tensor, original: torch.Tensor, mapped: torch.Tensor, iterations: tuple[int, ...],
                 level: int, smoothness: float) -> torch.Tensor:
    h, w = original.shape[-2:]
    h2, w2 = (h + 1) // 2, (w + 1) // 2
    if len(iterations) > 1 and h2 > 20 and w2 > 20:  # solve the half-size problem first; it starts this one
        half = [F.interpolate(t, size=(h2, w2), mode="bilinear", align_corners=False, antialias=True)
                for t in (out, original, mapped)]
        coarse = _regrain_rec(*half, iterations[1:], level + 1, smoothness)
        out = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return _regrain_scale(out, original, mapped, iterations[0], level, smoothness)


#: Images with more pixels than this are recoloured through a 3D look-up table of the fitted map (one trilinear
#: lookup per pixel instead of one pass per rotation; 129^3 entries). Measured on a photo: median difference to
#: the exact map 0.35/255, 99 % of pixels within 3.4/255; 4096x4096 several times faster.
LUT_PIXELS = 1 << 23
LUT_SIZE = 129


def _lut_points(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The ``(3, L**3)`` RGB grid of the look-up table (red slowest, blue fastest)."""
    v = torch.linspace(0, 1, LUT_SIZE, device=device, dtype=dtype)
    r, g, b = torch.meshgrid(v, v, v, indexing="ij")
    return torch.stack([r.flatten(), g.flatten(), b.flatten()])


def _apply_lut(table: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Map ``(3, N)`` colours in ``[0, 1]`` through the mapped grid ``table`` by trilinear interpolation."""
    volume = table.reshape(1, 3, LUT_SIZE, LUT_SIZE, LUT_SIZE)  # (D=red, H=green, W=blue)
    coords = (x.clamp(0, 1) * 2 - 1).flip(0).T.reshape(1, 1, 1, -1, 3)  # grid_sample wants (x=blue, y=green, z=red)
    return F.grid_sample(volume, coords, mode="bilinear", align_corners=True).reshape(3, -1)


#: Ways to keep the content's colours: ``"full"`` (chroma swap, then the RGB distribution matched to the
#: content's) and ``"luminance"`` (chroma swap only: the style's light and shade, the content's hues).
COLOR_MODES = ("full", "luminance")


def color_mode(value: bool | str | None) -> str | None:
    """Normalise a ``preserve_color`` argument: False/None -> None, True -> ``"full"``, or a name of
    :data:`COLOR_MODES`.

    Example:
        >>> color_mode(True), color_mode("luminance"), color_mode(False)
        ('full', 'luminance', None)
    """
    if value is None or value is False:
        return None
    if value is True:
        return "full"
    if value not in COLOR_MODES:
        raise InputError(f"preserve_color takes one of {', '.join(COLOR_MODES)}, got {value!r}",
                         option="preserve_color")
    return str(value)


def preserve_color(
    result: torch.Tensor, content: torch.Tensor, steps: int = 3, seed: int | None = 0, *, mode: str = "full"
) -> torch.Tensor:
    """Keep the content's colours in a stylised ``result``.

    Luminance (Y) comes from the result, chroma (CbCr) from the content resized
    to the result (``mode="luminance"``: luminance-only transfer, as Gatys et
    al. 2016 and the Optimal Textures replication's ``lum``); with
    ``mode="full"`` (default) ``steps`` sliced-OT iterations then match the RGB
    distribution to the content's, which restores colours that the chroma swap
    alone leaves dull, and takes the content's light and shade too.

    Args:
        result: ``(*, 3, H, W)`` stylised image in ``[0, 1]``.
        content: ``(1, 3, H', W')`` content image in ``[0, 1]``.
        steps: sliced-OT iterations after the chroma swap in ``"full"`` mode (0: none).
        seed: random seed of the rotations.
        mode: ``"full"`` or ``"luminance"``.

    Returns:
        Tensor shaped like ``result``.
    """
    if color_mode(mode) == "luminance":
        steps = 0
    content = resize(content.to(result), tuple(result.shape[-2:]))
    ycc = rgb_to_ycbcr(result)
    merged = torch.cat([ycc[..., :1, :, :], rgb_to_ycbcr(content)[..., 1:, :, :].expand_as(ycc[..., 1:, :, :])], -3)
    out = ycbcr_to_rgb(merged).clamp_(0, 1)
    if steps > 0:
        out = color_transfer(out, content, rotations=steps, seed=seed, regrain=False)
    return out
