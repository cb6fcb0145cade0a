"""Optimal Textures (Risser 2020): texture synthesis by sliced optimal transport of VGG features.

No back-propagation. For each resolution of a coarse-to-fine schedule and each
pass, for each level ``relu5_1 -> relu1_1``: encode the current image with that
level's encoder, move its feature cloud onto the style's, and decode back to
pixels. The move is the closed-form Gaussian OT (Monge) map, which carries the
style's mean and covariance, followed by repeated {random rotation, exact 1D
optimal transport of every marginal, rotation back} (optionally inside the
style's PCA subspace), which carries the full distribution. With
``OTSchedule(gaussian=None)`` the move is pure sliced OT, as in the paper.

Feature clouds are kept channels-first, ``(B, C, N)``, so that the sorts run on
contiguous memory; the whole batch shares each random rotation.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .errors import ImageError, InputError
from .io import load_image, resize
from .networks import Decoder, Encoder, load_autoencoders, min_size_for_level
from .runtime import tune_cpu_allocator
from .ot import gaussian_mapping, mean_cov, pca_basis, random_rotation, sort_match

__all__ = ["synthesize", "transfer", "OTSchedule", "MATCH_MODES", "resolve_device", "working_size", "style_factor", "style_at"]

MATCH_MODES = ("sort", "chol", "pca", "sym")
MULTIPLE = 16  # working sizes are multiples of 2**4 so that every level decodes to the same size


@dataclass(frozen=True)
class OTSchedule:
    """Coarse-to-fine schedule of an Optimal Textures run.

    At every level visited, the feature cloud is first moved by the closed-form
    Gaussian OT map ``gaussian`` (the Bures-Wasserstein Monge map by default,
    which carries the style's mean and covariance), then by ``iterations[level]``
    exact sliced-OT steps (random rotation, sort-based 1D matching of every
    marginal, rotation back), which carry the full marginals.

    Attributes:
        scales: number of resolutions, each half the next one's size, or
            ``None`` (default) to halve while the long side stays at least
            ``coarse_side`` (512 px -> 256, 512; 2048 px -> 256 ... 2048); the
            coarsest is never smaller than ``min_side`` on its short side.
        passes: passes over the levels at each resolution, coarse to fine; the
            last value repeats for extra resolutions.
        levels: levels visited at the coarsest resolution, deepest first.
        fine_levels: levels visited at the finer resolutions (relu5_1 included:
            it keeps strokes and letters whole at the output's scale).
        iterations: sliced-OT rotations per level at the coarsest resolution.
        fine_iterations: sliced-OT rotations per level at finer resolutions.
        gaussian: Gaussian map applied before the rotations at each level
            (``"sym"``, ``"chol"``, ``"pca"``) or ``None`` for pure sliced OT
            as in the paper.
        min_side: smallest short side of the coarsest resolution.
        max_style_samples: the style cloud of each level is randomly
            subsampled to this many feature vectors.
    """

    scales: int | None = None
    passes: tuple[int, ...] = (6, 4)
    levels: tuple[int, ...] = (5, 4, 3, 2, 1)
    fine_levels: tuple[int, ...] = (5, 4, 3, 2, 1)
    iterations: dict[int, int] = field(default_factory=lambda: {5: 0, 4: 1, 3: 1, 2: 2, 1: 4})
    fine_iterations: dict[int, int] = field(default_factory=lambda: {5: 0, 4: 0, 3: 1, 2: 2, 1: 4})
    gaussian: str | None = "sym"
    min_side: int = 64
    coarse_side: int = 256
    max_style_samples: int = 1 << 14

    def replace(self, **changes: object) -> "OTSchedule":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU; checks that CUDA exists when asked for."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was requested but no CUDA device is available (use --device cpu)")
    return dev


def working_size(size: tuple[int, int]) -> tuple[int, int]:
    """Round a size up to a multiple of 16 (every level then decodes to exactly that size)."""
    return (math.ceil(size[0] / MULTIPLE) * MULTIPLE, math.ceil(size[1] / MULTIPLE) * MULTIPLE)


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    if len(size) != 2:
        raise InputError(f"size must be (height, width), got {tuple(size)}")
    h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0:
        raise InputError(f"output size must be positive, got {h}x{w}")
    if min(h, w) < MULTIPLE:
        raise InputError(f"output size {h}x{w} is too small: both sides must be at least {MULTIPLE} px")
    return h, w


def _scale_sizes(size: tuple[int, int], schedule: OTSchedule) -> list[tuple[int, int]]:
    sizes = [working_size(size)]
    while schedule.scales is None or len(sizes) < schedule.scales:
        h, w = sizes[0]
        if min(h, w) // 2 < schedule.min_side:
            break
        if schedule.scales is None and max(h, w) // 2 < schedule.coarse_side:
            break
        sizes.insert(0, working_size((h // 2, w // 2)))
    return sizes


@dataclass
class _LevelTarget:
    """The style's feature statistics at one level."""

    cloud: torch.Tensor  # (C', M) channels-first samples, in PCA coordinates when ``basis`` is set
    mean: torch.Tensor  # (C,) mean of the full cloud
    cov: torch.Tensor  # (C, C) covariance of the full cloud
    basis: torch.Tensor | None = None  # (C, k) PCA basis


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


def style_at(style: torch.Tensor, factor: float) -> torch.Tensor:
    """The style example resized by ``factor`` (each side at least 16 px), as :func:`synthesize` uses it."""
    h, w = style.shape[-2:]
    if factor == 1.0:
        return style
    return resize(style, (max(MULTIPLE, round(h * factor)), max(MULTIPLE, round(w * factor))))


def _subsample(cloud: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    if cloud.shape[-1] <= n:
        return cloud
    idx = torch.randperm(cloud.shape[-1], generator=gen, device=gen.device)[:n]
    return cloud.index_select(-1, idx.to(cloud.device))


def _level_target(
    feats: torch.Tensor, pca: bool, pca_variance: float, max_samples: int, gen: torch.Generator
) -> _LevelTarget:
    cloud = feats.flatten(2)[0]  # (C, M)
    mu, cov = mean_cov(cloud.T)
    cloud = _subsample(cloud, max_samples, gen)
    if not pca:
        return _LevelTarget(cloud=cloud.contiguous(), mean=mu, cov=cov)
    _, basis, _ = pca_basis(cloud.T, pca_variance)
    proj = basis.T @ (cloud - mu[:, None])
    return _LevelTarget(cloud=proj.contiguous(), mean=mu, cov=cov, basis=basis)


def _match(
    x: torch.Tensor,
    target: _LevelTarget,
    iterations: int,
    gaussian: str | None,
    gen: torch.Generator,
    content: torch.Tensor | None = None,
    strength: float = 0.0,
) -> torch.Tensor:
    """Move a ``(B, C, N)`` feature cloud onto the target distribution.

    First the closed-form Gaussian map (if any), then ``iterations`` sliced-OT
    steps, in the style's PCA subspace when the target has a basis. With
    ``content`` (``(1, C, N)`` features), every step is followed by a pull
    ``x += strength * (content - x)`` (style transfer).
    """
    pull = content is not None and strength > 0
    if gaussian is not None:
        mu, cov = mean_cov(x.transpose(1, 2))
        a, b = gaussian_mapping(mu, cov, target.mean.expand_as(mu), target.cov.expand_as(cov), method=gaussian)
        x = a @ x + b.unsqueeze(-1)
        if pull:
            x = torch.lerp(x, content.expand_as(x), strength)
    if iterations <= 0:
        return x
    full = x
    if target.basis is not None:  # match the principal coordinates; the residual keeps the Gaussian map's result
        x = target.basis.T @ (full - target.mean[:, None])
        if pull:
            content = target.basis.T @ (content - target.mean[:, None])
    start = x
    c = x.shape[1]
    for _ in range(iterations):
        rot = random_rotation(c, gen, device=x.device, dtype=x.dtype)
        x = rot @ sort_match(rot.T @ x, rot.T @ target.cloud, dim=-1)
        if pull:
            x = torch.lerp(x, content.expand_as(x), strength)
    if target.basis is not None:
        x = full + target.basis @ (x - start)
    return x


def _as_image(image: torch.Tensor | str | os.PathLike, device: torch.device, what: str = "style") -> torch.Tensor:
    if isinstance(image, (str, os.PathLike)):
        return load_image(image, device=device)
    if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4) or image.shape[-3] != 3:
        raise InputError(f"{what} must be an image path or an RGB tensor of shape (1, 3, H, W)")
    image = image if image.dim() == 4 else image.unsqueeze(0)
    if image.shape[0] != 1:
        raise InputError(f"{what} must be a single image, got a batch of {image.shape[0]}")
    return image.to(device=device, dtype=torch.float32)


def _warn_upsampling(style: torch.Tensor, factor: float) -> None:
    if factor > 2:
        h, w = style.shape[-2:]
        warnings.warn(
            f"the {w}x{h} px style example is upsampled {factor:.1f}x to match the output, so its details will "
            "be blurry; use a larger example or a smaller --style-scale"
        )


@torch.no_grad()
def synthesize(
    style: torch.Tensor | str | os.PathLike,
    size: Sequence[int] = (512, 512),
    *,
    passes: Sequence[int] | int | None = None,
    iterations: int | None = None,
    levels: Sequence[int] | None = None,
    pca: bool = True,
    pca_variance: float = 0.9,
    mode: str = "sort",
    style_scale: float | None = None,
    seed: int | None = 0,
    batch: int = 1,
    weights: str = "cd16x",
    weights_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    schedule: OTSchedule | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Synthesise textures that look like ``style`` (Optimal Textures).

    Args:
        style: style example, an image path or a ``(1, 3, H, W)`` tensor in ``[0, 1]``.
        size: output ``(height, width)``; any size and aspect, e.g. larger than the example.
        passes: passes over the levels per resolution (an int applies to each),
            overriding the schedule's.
        iterations: sliced-OT rotations per level at every resolution, overriding
            the schedule's level-dependent counts.
        levels: levels to visit, deepest first (default ``(5, 4, 3, 2, 1)``).
        pca: do the sliced-OT rotations inside the style's principal subspace
            holding ``pca_variance`` of its variance (default; the residual
            keeps the Gaussian map's result). Measured on graffiti/zebra at
            512 px: about twice as fast and closer to the style than without.
        pca_variance: fraction of variance kept when ``pca`` is on.
        mode: ``"sort"`` (default: at each level the schedule's Gaussian map, then
            exact sliced-OT rotations) or a Gaussian map alone, ``"chol"``,
            ``"pca"`` or ``"sym"`` (one linear map per level; fastest).
        style_scale: size of style details: ``None`` (default) fits the example's
            short side to the output's without ever enlarging it (outputs larger
            than the example keep its detail size); a number makes the example's
            short side ``style_scale`` times the output's (see :func:`style_factor`).
        seed: random seed (None: nondeterministic).
        batch: number of samples to make at once (different noise, shared rotations).
        weights: encoder/decoder weight set (``cd16x`` default).
        weights_dir: directory searched first for the weights.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or a :class:`torch.device`.
        schedule: full control of the coarse-to-fine schedule.
        progress: show a progress bar.

    Returns:
        ``(batch, 3, height, width)`` tensor in ``[0, 1]`` on ``device``.

    Example:
        >>> out = ottex.synthesize("graffiti.jpg", size=(512, 512), seed=1)  # doctest: +SKIP
    """
    h, w = _check_size(size)
    if batch < 1:
        raise InputError(f"batch must be at least 1, got {batch}")
    _check_options(mode, style_scale)
    dev = resolve_device(device)
    sched = _effective_schedule(schedule or OTSchedule(), passes, iterations, levels, mode)
    image = _run_schedule(_as_image(style, dev), (h, w), sched, weights, weights_dir, seed, style_scale, pca,
                          pca_variance, batch=batch, progress=progress, desc="ottex synth")
    return _center_crop(image, (h, w))


def _check_options(mode: str, style_scale: float | None) -> None:
    if mode not in MATCH_MODES:
        raise InputError(f"unknown matching mode '{mode}' (choose from {', '.join(MATCH_MODES)})")
    if style_scale is not None and style_scale <= 0:
        raise InputError(f"style scale must be positive, got {style_scale}")


DEFAULT_CONTENT_STRENGTH = 0.6


@torch.no_grad()
def transfer(
    content: torch.Tensor | str | os.PathLike,
    style: torch.Tensor | str | os.PathLike,
    size: int | None = None,
    *,
    content_strength: float = DEFAULT_CONTENT_STRENGTH,
    init: str = "content",
    passes: Sequence[int] | int | None = None,
    iterations: int | None = None,
    levels: Sequence[int] | None = None,
    pca: bool = True,
    pca_variance: float = 0.9,
    mode: str = "sort",
    style_scale: float | None = None,
    seed: int | None = 0,
    weights: str = "cd16x",
    weights_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    schedule: OTSchedule | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Style transfer by Optimal Textures: the content's layout with the style's textures.

    The same coarse-to-fine loop as :func:`synthesize`, started from the content
    (or noise). The content's features at relu5_1, relu4_1 and relu3_1, moved
    onto the style's mean, pull the matched features after every matching
    step: ``x += w * (content - x)`` with ``w = content_strength x (1, 1/2, 1/4)``.

    Args:
        content: content image, a path or a ``(1, 3, H, W)`` tensor in ``[0, 1]``.
        style: style image, a path or a ``(1, 3, H', W')`` tensor.
        size: long side of the output (default: the content's); the content's
            aspect is kept.
        content_strength: how strongly the layout is kept (0: texture only;
            about 1: little style).
        init: ``"content"`` (default) or ``"noise"``.
        style_scale: size of style details, as in :func:`synthesize`.
        passes, iterations, levels, pca, pca_variance, mode, seed, weights,
        weights_dir, device, schedule, progress: as in :func:`synthesize`.

    Returns:
        ``(1, 3, H, W)`` tensor in ``[0, 1]`` on ``device``.

    Example:
        >>> out = ottex.transfer("bridge.jpg", "lava.jpg", size=512)  # doctest: +SKIP
    """
    if content_strength < 0:
        raise InputError(f"content strength must be at least 0, got {content_strength}")
    if init not in ("content", "noise"):
        raise InputError(f"init must be 'content' or 'noise', got '{init}'")
    _check_options(mode, style_scale)
    dev = resolve_device(device)
    content_img = _as_image(content, dev, "content")
    h, w = content_output_size(content_img.shape[-2:], size)
    sched = _effective_schedule(schedule or OTSchedule(), passes, iterations, levels, mode)
    image = _run_schedule(_as_image(style, dev), (h, w), sched, weights, weights_dir, seed, style_scale, pca,
                          pca_variance, content=content_img, content_strength=content_strength, init=init,
                          progress=progress, desc="ottex style")
    return resize(image, (h, w)).clamp_(0, 1)


def _generator(device: torch.device, seed: int | None) -> torch.Generator:
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


#: Weight of the content pull per level, times ``content_strength`` (Risser 2020: 1, 1/2, 1/4).
CONTENT_LEVEL_WEIGHTS = {5: 1.0, 4: 0.5, 3: 0.25}


def _run_schedule(
    style_img: torch.Tensor,
    size: tuple[int, int],
    sched: OTSchedule,
    weights: str,
    weights_dir: str | os.PathLike | None,
    seed: int | None,
    style_scale: float | None,
    pca: bool,
    pca_variance: float,
    *,
    batch: int = 1,
    content: torch.Tensor | None = None,
    content_strength: float = 0.0,
    init: str = "noise",
    progress: bool = False,
    desc: str = "ottex",
) -> torch.Tensor:
    """The coarse-to-fine loop shared by synthesis and style transfer.

    Returns the image at the finest working size (``size`` rounded up to a multiple of 16).
    """
    dev = style_img.device
    if dev.type == "cpu":
        tune_cpu_allocator()
    nets = load_autoencoders(weights, tuple(dict.fromkeys(sched.levels + sched.fine_levels)), weights_dir, dev,
                             strict=False)
    gen = _generator(dev, seed)
    sizes = _scale_sizes(size, sched)
    factor = style_factor(style_img.shape[-2:], size, style_scale)
    _warn_upsampling(style_img, factor)
    plan = []  # (scale index, levels, iterations) per pass
    for si in range(len(sizes)):
        lv = [lvl for lvl in (sched.levels if si == 0 else sched.fine_levels) if lvl in nets]
        its = sched.iterations if si == 0 else sched.fine_iterations
        plan += [(si, lv, its)] * sched.passes[min(si, len(sched.passes) - 1)]
    bar = tqdm(total=sum(len(p[1]) for p in plan), desc=desc, disable=not progress, unit="level")
    image: torch.Tensor | None = None
    targets: dict[int, _LevelTarget] = {}
    content_feats: dict[int, torch.Tensor] = {}
    current = -1
    for si, lv, its in plan:
        if si != current:  # a new resolution: style statistics at the matching scale, upsampled image
            current = si
            sh, sw = sizes[si]
            style_s = style_at(style_img, _network_factor(style_img, factor * sh / sizes[-1][0], lv))
            targets = {lvl: _level_target(nets[lvl][0](style_s), pca, pca_variance, sched.max_style_samples, gen)
                       for lvl in lv}
            content_s = None if content is None else resize(content, (sh, sw))
            if content_s is not None and content_strength > 0:
                content_feats = {lvl: _centred_content(nets[lvl][0](content_s), targets[lvl].mean)
                                 for lvl in lv if lvl in CONTENT_LEVEL_WEIGHTS}
            image = next_scale_image(image, (sh, sw), style_s, content_s, init, batch, gen)
        for lvl in lv:
            pull = content_strength * CONTENT_LEVEL_WEIGHTS.get(lvl, 0.0)
            image = _level_step(image, nets[lvl], targets[lvl], its.get(lvl, 0), sched.gaussian, gen,
                                content_feats.get(lvl), pull)
            bar.update(1)
    bar.close()
    assert image is not None
    return image


def _network_factor(style: torch.Tensor, factor: float, levels: Sequence[int]) -> float:
    """``factor``, raised (with a warning) where the example would be too small for the deepest encoder."""
    need = min_size_for_level(max(levels, default=1))
    short = min(style.shape[-2:])
    if short * factor >= need:
        return factor
    warnings.warn(f"the {style.shape[-1]}x{style.shape[-2]} px style example is enlarged to a {need} px short side, "
                  f"the least the relu{max(levels)}_1 encoder needs; use a larger example for sharper details")
    return need / short


def _centred_content(feats: torch.Tensor, style_mean: torch.Tensor) -> torch.Tensor:
    """``(1, C, h, w)`` content features -> ``(1, C, N)`` cloud moved onto the style's mean (per channel)."""
    x = feats.flatten(2)
    return x - x.mean(dim=-1, keepdim=True) + style_mean[:, None]


def _effective_schedule(
    sched: OTSchedule,
    passes: Sequence[int] | int | None,
    iterations: int | None,
    levels: Sequence[int] | None,
    mode: str,
) -> OTSchedule:
    """Apply the convenience arguments of :func:`synthesize` to a schedule."""
    if levels is not None:
        levels = tuple(levels)
        if not levels or any(lvl not in (1, 2, 3, 4, 5) for lvl in levels):
            raise InputError(f"levels must be among 1-5, got {levels}")
        sched = sched.replace(levels=levels, fine_levels=tuple(lvl for lvl in sched.fine_levels if lvl in levels)
                              or levels)
    if passes is not None:
        sched = sched.replace(passes=(passes,) if isinstance(passes, int) else tuple(passes))
    if not sched.passes or any(p < 1 for p in sched.passes):
        raise InputError(f"passes must be at least 1, got {sched.passes}")
    if iterations is not None:
        if iterations < 0:
            raise InputError(f"iterations must be at least 0, got {iterations}")
        sched = sched.replace(iterations={lvl: iterations for lvl in range(1, 6)},
                              fine_iterations={lvl: iterations for lvl in range(1, 6)})
    if mode != "sort":  # a Gaussian mode: one closed-form map per level, no rotations
        sched = sched.replace(gaussian=mode, iterations={}, fine_iterations={})
    if sched.scales is not None and sched.scales < 1:
        raise InputError(f"scales must be at least 1, got {sched.scales}")
    return sched


def next_scale_image(
    image: torch.Tensor | None,
    size: tuple[int, int],
    style: torch.Tensor,
    content: torch.Tensor | None,
    init: str,
    batch: int,
    gen: torch.Generator,
) -> torch.Tensor:
    """The image a coarse-to-fine scale starts from: the previous scale's result upsampled, or at the first
    scale the content (``init="content"``) or noise with the style's colour statistics."""
    if image is not None:
        return F.interpolate(image, size=size, mode="bilinear", align_corners=False)
    if init == "content" and content is not None:
        return content.expand(batch, -1, -1, -1).clone()
    return _noise_like(style, batch, size, gen)


def content_output_size(content_hw: Sequence[int], size: int | None) -> tuple[int, int]:
    """Output ``(H, W)`` of a style transfer: the content's, or with long side ``size`` (aspect kept)."""
    h, w = int(content_hw[0]), int(content_hw[1])
    if size is not None:
        if size < MULTIPLE:
            raise InputError(f"output size {size} is too small: at least {MULTIPLE} px")
        s = size / max(h, w)
        h, w = round(h * s), round(w * s)
    return _check_size((h, w))


def _noise_like(style: torch.Tensor, batch: int, size: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise with the style's mean colour and per-channel spread."""
    mu = style.mean(dim=(-2, -1), keepdim=True)
    sd = style.std(dim=(-2, -1), keepdim=True)
    noise = torch.randn(batch, 3, *size, generator=gen, device=gen.device, dtype=style.dtype)
    return (mu + sd * noise).clamp(0, 1)


def _level_step(
    image: torch.Tensor,
    nets: tuple[Encoder, Decoder],
    target: _LevelTarget,
    iterations: int,
    gaussian: str | None,
    gen: torch.Generator,
    content: torch.Tensor | None = None,
    strength: float = 0.0,
) -> torch.Tensor:
    enc, dec = nets
    feats = enc(image)
    b, c, fh, fw = feats.shape
    x = _match(feats.flatten(2), target, iterations, gaussian, gen, content, strength)
    out = dec(x.reshape(b, c, fh, fw))
    if out.shape[-2:] != image.shape[-2:]:
        out = F.interpolate(out, size=image.shape[-2:], mode="bilinear", align_corners=False)
    return out.clamp_(0, 1)


def _center_crop(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    h, w = image.shape[-2:]
    top, left = (h - size[0]) // 2, (w - size[1]) // 2
    return image[..., top : top + size[0], left : left + size[1]].contiguous()
