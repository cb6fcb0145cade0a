"""Quality metrics on image tensors.

All functions take RGB tensors in ``[0, 1]`` of shape ``(1, 3, H, W)``; the two
images may differ in size (distributions of features are compared, not pixels).

* :func:`style_distance`: sliced Wasserstein distance between the feature
  distributions of an image and a style example, on a *measuring* network.
  For each layer, ``P`` fixed unit directions are drawn from ``seed``; both
  feature clouds are projected on them; the exact 1D W2 distance of each
  projection is divided by the style's standard deviation along it; the layer
  score is the root mean square over directions; the result is the mean over
  layers. Identical images score 0; the score is scale-free per layer.
  Clouds larger than ``max_samples`` positions are subsampled with ``seed``.
  The style is first resized to the detail scale the methods give it for an
  output of the image's size (:func:`~ottex.core.pyramid.style_factor`: short
  sides fitted and never enlarged, or the style's short side ``style_scale``
  times the output's), which is also what ``ottex bench`` measures; with
  ``rescale=False`` it is compared as given.
  The per-layer score is :func:`ottex.ot.sliced_wasserstein_distance` with
  ``normalize=True``.
* :func:`gram_distance`: the texture loss of Gatys et al. (2015) as a score:
  per layer the mean squared difference of Gram matrices ``G = F F^T / (h w)``
  (:func:`ottex.nn.losses.gram_matrix`), summed over layers. (Called
  ``gram_loss`` in ottex 0.1; that name is deprecated here, the differentiable
  loss is :func:`ottex.nn.losses.gram_loss`.)
* :func:`content_distance`: the self-similarity distance of STROTSS (Kolkin
  2019): features at ``layer`` are average-pooled onto a coarse grid (long side
  ``grid`` cells), the cosine-distance matrix between all cells is formed and
  each column divided by its sum; the distance is the mean absolute difference
  of the two matrices. Insensitive to colours and textures, sensitive to layout.
* :func:`feature_mse`: mean squared difference of features at ``layer``, the
  image resized to the content's size (Gatys' content loss).
* :func:`diversity`: mean L1 distance between the feature maps (measuring
  layers) of every pair of samples, e.g. outputs made with different seeds.
* :func:`patch_distance_per_scale` / :func:`patch_distance`: a network-free
  measure of the multi-scale pixel-patch distribution (the statistic GPDM,
  Elnekave & Weiss 2022, matches): at each scale of a pyramid (full size, 1/2,
  1/4; antialiased resizes) every ``patch x patch`` RGB patch is a point of
  ``3 patch^2`` dimensions; the two patch clouds are compared like
  :func:`style_distance` compares feature clouds (``P`` fixed random unit
  directions from ``seed``, exact 1D W2 per direction divided by the style's
  standard deviation along it, root mean square over directions). Keys
  ``patch7@1``, ``patch7@1/2``, ``patch7@1/4``; the distance is their mean.
  The style is resized to the output's detail scale first, as in
  :func:`style_distance`.
* :func:`orientation_distance`: where edges point. The structure tensor of the
  luminance (Sobel gradients, Gaussian window of ``sigma`` px) gives each pixel
  an orientation in ``[0, 180)`` degrees and a weight, its gradient energy times
  its coherence ``(l1 - l2) / (l1 + l2)``; the weighted orientation histograms
  (``bins`` bins) of the two images are compared by the 1-Wasserstein distance
  on the circle, in degrees. Straight stripes give one sharp peak, bricks and
  tiles two peaks 90 degrees apart; stripes turned by 30 degrees score about 30,
  stripes broken into blobs spread their mass and score by how far it spreads.
* :func:`autocorrelation_distance`: long-range layout. The normalised
  autocorrelation of the luminance (zero-padded FFT, each lag divided by its
  overlap count and by the variance) on the lags up to a quarter of the smaller
  image's short side, for both images; the distance is the mean absolute
  difference over those lags (0: same correlations; values near 1 are far).
  Straight stripes correlate all along their direction, a checkerboard at every
  multiple of its cell, with alternating signs; blobs lose both.
* :func:`copied_share`: how much of a result is copied from the example. The
  result is cut into ``block x block`` tiles; each tile's best normalised
  cross-correlation with any same-size window of the example (RGB, each
  channel's mean removed) is found with FFTs; the share of tiles at or above
  ``threshold`` (0.95) is returned. A synthesis that copies (a shifted
  example, pasted blocks) scores near 1, a new sample near 0; low distances
  with a high share mean copying, not synthesis. On a perfectly periodic
  example every exact synthesis is a shifted copy.
* :func:`seam_error`: how visible the wrap-around edges of a tileable image
  are: the mean absolute difference between the last and first column (and
  row) divided by the mean absolute difference between neighbouring columns
  (and rows) inside the image. About 1 or below: seamless.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache

import torch
import torch.nn.functional as F

from ..core.errors import InputError
from ..core.pyramid import style_at, style_factor
from ..core.resample import resize
from ..image.io import as_image
from ..image.patches import autocorrelation, orientation_histogram
from ..nn.losses import gram_matrix
from ..nn.networks import VGGFeatures, load_feature_extractor
from ..ot import random_directions, sliced_wasserstein_distance, subsample

__all__ = [
    "style_distance",
    "style_distance_per_layer",
    "style_at_output_scale",
    "gram_matrix",
    "gram_distance",
    "gram_loss",
    "self_similarity",
    "content_distance",
    "feature_mse",
    "diversity",
    "seam_error",
    "patch_distance",
    "patch_distance_per_scale",
    "orientation_distance",
    "autocorrelation_distance",
    "structure_scores",
    "copied_share",
    "measuring_network",
    "DEFAULT_MEASURE_LAYERS",
]

DEFAULT_MEASURE_NET = "vgg19-caffe"
DEFAULT_MEASURE_LAYERS = ("relu1_1", "relu2_1", "relu3_1")


@lru_cache(maxsize=8)
def _measuring_network(name: str, layers: tuple[str, ...], weights_dir: str | None, device: str) -> VGGFeatures:
    return load_feature_extractor(name, layers, weights_dir=weights_dir, device=device)


def measuring_network(
    name: str = DEFAULT_MEASURE_NET,
    layers: tuple[str, ...] = DEFAULT_MEASURE_LAYERS,
    weights_dir: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
) -> VGGFeatures:
    """The (cached) network used to measure results."""
    return _measuring_network(name, tuple(layers), None if weights_dir is None else str(weights_dir), str(device))


def _cloud(f: torch.Tensor, max_samples: int, seed: int) -> torch.Tensor:
    """``(1, C, H, W)`` -> ``(n, C)``, at most ``max_samples`` positions drawn without replacement."""
    return subsample(f.flatten(2)[0].T, max_samples, torch.Generator().manual_seed(seed), dim=0)


def style_at_output_scale(
    style: torch.Tensor, output_hw: tuple[int, int], style_scale: float | None = None
) -> torch.Tensor:
    """The style example at the detail scale the methods give it for an output of ``output_hw``.

    Example:
        >>> style_at_output_scale(torch.rand(1, 3, 400, 300), (150, 150)).shape
        torch.Size([1, 3, 200, 150])
    """
    return style_at(style, style_factor(style.shape[-2:], output_hw, style_scale))


@torch.no_grad()
def style_distance_per_layer(
    image: torch.Tensor,
    style: torch.Tensor,
    network: str | VGGFeatures = DEFAULT_MEASURE_NET,
    layers: tuple[str, ...] = DEFAULT_MEASURE_LAYERS,
    n_directions: int = 128,
    seed: int = 0,
    weights_dir: str | os.PathLike | None = None,
    max_samples: int = 65536,
    *,
    style_scale: float | None = None,
    rescale: bool = True,
) -> dict[str, float]:
    """Normalised sliced Wasserstein distance per layer (see module docstring and :func:`style_distance`)."""
    image = as_image(image, what="image", shape="batch")
    style = as_image(style, what="style", shape="batch")
    if rescale:
        style = style_at_output_scale(style, tuple(image.shape[-2:]), style_scale)
    net = network if isinstance(network, VGGFeatures) else measuring_network(network, layers, weights_dir, image.device)
    fi, fs = net(image), net(style.to(image.device))
    out: dict[str, float] = {}
    gen = torch.Generator(device="cpu").manual_seed(seed)
    for layer in net.layers:
        xi, xs = _cloud(fi[layer], max_samples, seed), _cloud(fs[layer], max_samples, seed)
        dirs = random_directions(xi.shape[1], n_directions, gen).to(xi.device)
        out[layer] = float(sliced_wasserstein_distance(xi, xs, directions=dirs, normalize=True))
    return out


def style_distance(
    image: torch.Tensor,
    style: torch.Tensor,
    network: str | VGGFeatures = DEFAULT_MEASURE_NET,
    layers: tuple[str, ...] = DEFAULT_MEASURE_LAYERS,
    n_directions: int = 128,
    seed: int = 0,
    weights_dir: str | os.PathLike | None = None,
    max_samples: int = 65536,
    *,
    style_scale: float | None = None,
    rescale: bool = True,
) -> float:
    """Mean over layers of :func:`style_distance_per_layer`.

    Args:
        image: ``(1, 3, H, W)`` result.
        style: ``(1, 3, H', W')`` style example, e.g. as loaded: it is resized
            to the output's detail scale first (see ``rescale``).
        network: name of a weight set usable as a loss network (default
            ``vgg19-caffe``, a network the synthesis does not use) or a built
            :class:`~ottex.nn.networks.VGGFeatures`.
        layers: taps of the measuring network.
        n_directions: number of fixed random directions per layer.
        seed: seed of the directions (same seed = comparable numbers).
        weights_dir: where to look for the measuring network's weights.
        max_samples: positions per image and layer (drawn with ``seed``) beyond
            which the feature cloud is subsampled.
        style_scale: the ``style_scale`` the result was made with (None: the
            methods' default, short sides fitted and the example never enlarged).
        rescale: resize the style to the result's detail scale first
            (:func:`style_at_output_scale`, what the methods and ``ottex bench``
            do); False compares the style as given.

    Returns:
        The distance (0 for identical feature distributions).

    Example:
        >>> d = style_distance(result, load_image("graffiti.jpg"))  # doctest: +SKIP
        >>> d = style_distance(result, style, style_scale=0.5)  # made with style_scale=0.5  # doctest: +SKIP
    """
    per = style_distance_per_layer(image, style, network, layers, n_directions, seed, weights_dir, max_samples,
                                   style_scale=style_scale, rescale=rescale)
    return sum(per.values()) / len(per)


def _net(network: str | VGGFeatures, layers: tuple[str, ...], weights_dir, device) -> VGGFeatures:  # noqa: ANN001
    if isinstance(network, VGGFeatures):
        missing = [layer for layer in layers if layer not in network.layers]
        if missing:
            raise InputError(f"the measuring network has no tap {', '.join(missing)} (it has {network.layers})")
        return network
    return measuring_network(network, layers, weights_dir, device)


@torch.no_grad()
def gram_distance(
    image: torch.Tensor,
    style: torch.Tensor,
    network: str | VGGFeatures = DEFAULT_MEASURE_NET,
    layers: tuple[str, ...] = DEFAULT_MEASURE_LAYERS,
    weights_dir: str | os.PathLike | None = None,
) -> float:
    """Gatys texture loss: sum over ``layers`` of the mean squared Gram-matrix difference.

    Args:
        image: ``(1, 3, H, W)`` result.
        style: ``(1, 3, H', W')`` style example (sizes may differ).
        network: measuring network name or a built :class:`~ottex.nn.networks.VGGFeatures`.
        layers: taps.
        weights_dir: where to look for the network's weights.

    Returns:
        The loss (0 for identical Gram matrices).
    """
    image = as_image(image, what="image", shape="batch")
    style = as_image(style, what="style", shape="batch")
    net = _net(network, tuple(layers), weights_dir, image.device)
    fi, fs = net(image), net(style.to(image.device))
    return float(sum((gram_matrix(fi[k]) - gram_matrix(fs[k])).pow(2).mean() for k in layers))


def gram_loss(*args: object, **kwargs: object) -> float:
    """Deprecated name of :func:`gram_distance` (the differentiable loss is :func:`ottex.nn.losses.gram_loss`)."""
    warnings.warn("ottex.metrics.gram_loss is deprecated; use gram_distance (a score) or ottex.nn.losses.gram_loss "
                  "(the differentiable loss)", DeprecationWarning, stacklevel=2)
    return gram_distance(*args, **kwargs)


def self_similarity(features: torch.Tensor, grid: int = 32) -> torch.Tensor:
    """Column-normalised cosine-distance matrix of ``(B, C, H, W)`` features pooled to a coarse grid.

    Args:
        features: feature maps.
        grid: cells along the long side (the short side keeps the aspect).

    Returns:
        ``(B, n, n)`` with ``n`` grid cells; each column sums to 1.
    """
    h, w = features.shape[-2:]
    s = min(1.0, grid / max(h, w))
    pooled = F.adaptive_avg_pool2d(features, (max(1, round(h * s)), max(1, round(w * s))))
    x = F.normalize(pooled.flatten(2), dim=1)  # (B, C, n)
    d = 1.0 - x.transpose(1, 2) @ x
    return d / d.sum(dim=1, keepdim=True).clamp_min(1e-8)


@torch.no_grad()
def content_distance(
    image: torch.Tensor,
    content: torch.Tensor,
    network: str | VGGFeatures = DEFAULT_MEASURE_NET,
    layer: str = "relu3_1",
    grid: int = 32,
    weights_dir: str | os.PathLike | None = None,
) -> float:
    """STROTSS self-similarity distance between an image and a content image (see module docstring).

    The image is resized to the content's size first, so both give the same grid.

    Example:
        >>> content_distance(result, photo)  # doctest: +SKIP
    """
    fi, fc = _content_features(image, content, network, layer, weights_dir)
    si, sc = self_similarity(fi, grid), self_similarity(fc, grid)
    return float((si - sc).abs().mean() * si.shape[-1])  # x n: a scale that does not shrink with the grid


@torch.no_grad()
def feature_mse(
    image: torch.Tensor,
    content: torch.Tensor,
    network: str | VGGFeatures = DEFAULT_MEASURE_NET,
    layer: str = "relu3_1",
    weights_dir: str | os.PathLike | None = None,
) -> float:
    """Mean squared difference of ``layer`` features, the image resized to the content's size."""
    fi, fc = _content_features(image, content, network, layer, weights_dir)
    return float((fi - fc).pow(2).mean())


def _content_features(image, content, network, layer, weights_dir) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
    """Features at ``layer`` of the image (resized to the content's size) and of the content."""
    image = as_image(image, what="image", shape="batch")
    content = as_image(content, what="content", shape="batch")
    net = _net(network, (layer,), weights_dir, image.device)
    content = content.to(image.device)
    if image.shape[-2:] != content.shape[-2:]:
        image = resize(image, tuple(content.shape[-2:]))
    return net(image)[layer], net(content)[layer]


@torch.no_grad()
def diversity(
    images: torch.Tensor,
    network: str | VGGFeatures = DEFAULT_MEASURE_NET,
    layers: tuple[str, ...] = DEFAULT_MEASURE_LAYERS,
    weights_dir: str | os.PathLike | None = None,
) -> float:
    """Mean pairwise L1 distance between the feature maps of ``B >= 2`` samples of one size.

    Averaged over the pairs and over ``layers``; 0 when all samples are equal.
    """
    images = as_image(images, what="images", shape="batch")
    if images.shape[0] < 2:
        raise InputError(f"diversity needs at least 2 samples, got {images.shape[0]}")
    net = _net(network, tuple(layers), weights_dir, images.device)
    feats = net(images)
    total = 0.0
    for k in layers:
        f = feats[k].flatten(1)
        total += float(torch.cdist(f, f, p=1).sum() / (f.shape[0] * (f.shape[0] - 1)) / f.shape[1])
    return total / len(layers)


def seam_error(image: torch.Tensor) -> float:
    """Wrap-edge difference over interior neighbour difference (see module docstring).

    Example:
        >>> ramp = torch.linspace(0, 1, 64).expand(1, 3, 64, 64)  # jumps from 1 back to 0 at the wrap
        >>> seam_error(ramp) > 10
        True
    """
    image = as_image(image, what="image", shape="batch")
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs().mean()
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean()
    ex = (image[..., :, 0] - image[..., :, -1]).abs().mean()
    ey = (image[..., 0, :] - image[..., -1, :]).abs().mean()
    return float((ex + ey) / (dx + dy).clamp_min(1e-8))


def _measured_pair(image: torch.Tensor, style: torch.Tensor, style_scale: float | None, rescale: bool
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    image = as_image(image, what="image", shape="batch")
    style = as_image(style, what="style", shape="batch").to(image.device)
    if rescale:
        style = style_at_output_scale(style, tuple(image.shape[-2:]), style_scale)
    return image, style


@torch.no_grad()
def patch_distance_per_scale(
    image: torch.Tensor,
    style: torch.Tensor,
    patch: int = 7,
    scales: int = 3,
    n_directions: int = 128,
    seed: int = 0,
    max_samples: int = 65536,
    *,
    style_scale: float | None = None,
    rescale: bool = True,
) -> dict[str, float]:
    """Normalised sliced Wasserstein distance of ``patch x patch`` pixel patches, per pyramid scale.

    See the module docstring. Scales at which either image is smaller than a patch are left out.

    Args:
        image: ``(1, 3, H, W)`` result.
        style: ``(1, 3, H', W')`` style example (resized to the result's detail scale unless ``rescale=False``).
        patch: side of the square patches, in pixels (odd or even).
        scales: pyramid scales: 1 (full size only), 2 (and half size), 3 (and a quarter) ...
        n_directions: fixed random directions (from ``seed``).
        seed: seed of the directions and of the subsampling.
        max_samples: patches per image and scale beyond which the clouds are subsampled.
        style_scale, rescale: as in :func:`style_distance`.

    Returns:
        ``{"patch7@1": d, "patch7@1/2": d, ...}``.

    Example:
        >>> img = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        >>> patch_distance_per_scale(img, img)["patch7@1"]
        0.0
        >>> patch_distance_per_scale(img, img.flip(-1).roll(9, -2))["patch7@1"] < 0.1  # same patches, moved
        True
    """
    if patch < 1 or scales < 1:
        raise InputError(f"patch and scales must be at least 1, got {patch} and {scales}")
    image, style = _measured_pair(image, style, style_scale, rescale)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    dirs = random_directions(3 * patch * patch, n_directions, gen).to(image.device)
    out: dict[str, float] = {}
    for s in range(scales):
        f = 2**s
        hi, wi = image.shape[-2] // f, image.shape[-1] // f
        hs, ws = style.shape[-2] // f, style.shape[-1] // f
        if min(hi, wi, hs, ws) < patch:
            break
        xi = F.unfold(resize(image[:1], (hi, wi)), patch)[0].T
        xs = F.unfold(resize(style[:1], (hs, ws)), patch)[0].T
        xi, xs = (subsample(x, max_samples, torch.Generator().manual_seed(seed), dim=0) for x in (xi, xs))
        out[f"patch{patch}@1" + ("" if f == 1 else f"/{f}")] = float(
            sliced_wasserstein_distance(xi, xs, directions=dirs, normalize=True))
    if not out:
        raise InputError(f"the images are smaller than one {patch}x{patch} patch")
    return out


def patch_distance(image: torch.Tensor, style: torch.Tensor, **kwargs: object) -> float:
    """Mean over scales of :func:`patch_distance_per_scale` (same arguments).

    Example:
        >>> img = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        >>> patch_distance(img, torch.full_like(img, 0.5)) > 1  # noise against a flat image
        True
    """
    per = patch_distance_per_scale(image, style, **kwargs)
    return sum(per.values()) / len(per)


@torch.no_grad()
def orientation_distance(
    image: torch.Tensor,
    style: torch.Tensor,
    bins: int = 90,
    sigma: float = 2.0,
    *,
    style_scale: float | None = None,
    rescale: bool = True,
) -> float:
    """Circular 1-Wasserstein distance, in degrees, between the orientation histograms (see module docstring).

    Args:
        image: ``(1, 3, H, W)`` result.
        style: ``(1, 3, H', W')`` style example (resized to the result's detail scale unless ``rescale=False``).
        bins: histogram bins over ``[0, 180)`` degrees.
        sigma: standard deviation of the structure tensor's Gaussian window, in pixels.
        style_scale, rescale: as in :func:`style_distance`.

    Returns:
        The distance in degrees, between 0 and 90.

    Example:
        >>> from ottex.eval.textures import stripes
        >>> 27 < orientation_distance(stripes(64, angle=90), stripes(64, angle=60), rescale=False) < 33
        True
    """
    image, style = _measured_pair(image, style, style_scale, rescale)
    hi, hs = orientation_histogram(image[:1], bins, sigma)[0], orientation_histogram(style[:1], bins, sigma)[0]
    diff = torch.cumsum(hi - hs, 0)
    # W1 on the circle: the cumulative difference minus its median, in absolute value, summed (bins of 180/bins deg)
    return round(float((diff - diff.median()).abs().sum() * 180.0 / bins), 4)


@torch.no_grad()
def autocorrelation_distance(
    image: torch.Tensor,
    style: torch.Tensor,
    radius: int | None = None,
    *,
    style_scale: float | None = None,
    rescale: bool = True,
) -> float:
    """Mean absolute difference of the normalised luminance autocorrelations (see module docstring).

    Args:
        image: ``(1, 3, H, W)`` result.
        style: ``(1, 3, H', W')`` style example (resized to the result's detail scale unless ``rescale=False``).
        radius: largest lag in pixels (default: a quarter of the smaller of the two short sides).
        style_scale, rescale: as in :func:`style_distance`.

    Example:
        >>> from ottex.eval.textures import checkerboard
        >>> autocorrelation_distance(checkerboard(64, cell=8), checkerboard(64, cell=8).roll(3, -1)) < 0.05
        True
        >>> autocorrelation_distance(checkerboard(64, cell=8), checkerboard(64, cell=12)) > 0.3
        True
    """
    image, style = _measured_pair(image, style, style_scale, rescale)
    r = radius or max(1, min(min(image.shape[-2:]), min(style.shape[-2:])) // 4)
    return float((autocorrelation(image, r) - autocorrelation(style, r)).abs().mean())


def structure_scores(image: torch.Tensor, style: torch.Tensor, *, style_scale: float | None = None,
                     rescale: bool = True) -> dict[str, float]:
    """The network-free measures of a result in one dict: :func:`patch_distance_per_scale`'s scales, their mean
    ``patch``, ``orientation`` (:func:`orientation_distance`, degrees) and ``autocorr``
    (:func:`autocorrelation_distance`); ``style_scale`` and ``rescale`` as in :func:`style_distance`."""
    kw = {"style_scale": style_scale, "rescale": rescale}
    per = patch_distance_per_scale(image, style, **kw)
    return {**per, "patch": sum(per.values()) / len(per), "orientation": orientation_distance(image, style, **kw),
            "autocorr": autocorrelation_distance(image, style, **kw)}


@torch.no_grad()
def copied_share(image: torch.Tensor, style: torch.Tensor, block: int = 32, threshold: float = 0.95, *,
                 style_scale: float | None = None, rescale: bool = True) -> float:
    """The share of a result's ``block x block`` tiles that are copies of a window of the example (see module
    docstring). Only the first image of a batch is scored, and only whole tiles (strips at the right and bottom
    narrower than a block are left out). Tiles without variation (flat colour) are left out, and flat windows of
    the example match nothing; with no tile left the share is 0. The correlation ignores contrast, so very smooth
    grey tiles (a gradient, noise blurred over half a tile) resemble each other and can count as copies: read the
    share on textures with detail at the tile's scale.

    Args:
        image: ``(1, 3, H, W)`` result.
        style: ``(1, 3, H', W')`` example (resized to the result's detail scale unless ``rescale=False``).
        block: side of the tiles, in pixels.
        threshold: normalised cross-correlation (at most 1) from which a tile counts as copied.
        style_scale, rescale: as in :func:`style_distance`.

    Returns:
        The share in ``[0, 1]``.

    Raises:
        InputError: ``block`` is under 4 px or larger than the result or the example.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> example = torch.rand(1, 3, 64, 64, generator=g)
        >>> # circularly shifted: the 7 of 16 tiles across the wrap seams are not windows of the example
        >>> copied_share(example.roll((5, 9), (-2, -1)), example, 16, rescale=False)
        0.5625
        >>> copied_share(torch.rand(1, 3, 64, 64, generator=g), example, 16, rescale=False)
        0.0
    """
    image, style = _measured_pair(image, style, style_scale, rescale)
    (h, w), (sh, sw) = image.shape[-2:], style.shape[-2:]
    if block < 4 or block > min(h, w, sh, sw):
        raise InputError(f"block must be between 4 px and the smallest side ({min(h, w, sh, sw)} px), got {block}")
    image, style = image[0].double(), style[0].double()
    flat = 1e-3 * block  # a tile's or window's spread below this (about a sixth of an 8-bit level per pixel): flat
    tiles = image[:, : h - h % block, : w - w % block].unfold(1, block, block).unfold(2, block, block)
    tiles = tiles.permute(1, 2, 0, 3, 4).reshape(-1, 3, block, block)
    tiles = tiles - tiles.mean(dim=(-2, -1), keepdim=True)
    norms = tiles.flatten(1).norm(dim=1)
    tiles, norms = tiles[norms > flat], norms[norms > flat]
    if tiles.numel() == 0:
        return 0.0
    # the example's window energies about their means, at every valid position
    sums = F.avg_pool2d(style[None], block, stride=1)[0] * block * block
    squares = F.avg_pool2d(style[None] ** 2, block, stride=1)[0] * block * block
    energy = (squares - sums**2 / (block * block)).sum(0).clamp_min(0).sqrt()
    spectrum = torch.fft.rfft2(style)
    best = []
    for chunk, chunk_norms in zip(tiles.split(32), norms.split(32)):
        # correlation of each tile with every window: one inverse FFT per tile, the channels summed before it
        corr = torch.fft.irfft2((spectrum * torch.fft.rfft2(chunk, s=(sh, sw)).conj()).sum(1), s=(sh, sw))
        corr = corr[:, : sh - block + 1, : sw - block + 1] / (energy.clamp_min(flat) * chunk_norms[:, None, None])
        best.append(corr.masked_fill(energy <= flat, -1.0).flatten(1).amax(1))
    return float((torch.cat(best) >= threshold).double().mean())
