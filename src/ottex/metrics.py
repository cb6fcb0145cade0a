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
  The style is compared as given: pass it at the scale the result should have
  (ottex resizes styles so their long side is the output's long side times
  ``style_scale``).
"""

from __future__ import annotations

import os
from functools import lru_cache

import torch

from .networks import VGGFeatures, load_feature_extractor
from .ot import random_directions, wasserstein_1d

__all__ = ["style_distance", "style_distance_per_layer", "measuring_network", "DEFAULT_MEASURE_LAYERS"]

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
    x = f.flatten(2)[0].T
    if x.shape[0] > max_samples:
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(x.shape[0], generator=gen)[:max_samples].to(x.device)
        x = x.index_select(0, idx)
    return x


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
) -> dict[str, float]:
    """Normalised sliced Wasserstein distance per layer (see module docstring)."""
    net = network if isinstance(network, VGGFeatures) else measuring_network(network, layers, weights_dir, image.device)
    fi, fs = net(image), net(style.to(image.device))
    out: dict[str, float] = {}
    gen = torch.Generator(device="cpu").manual_seed(seed)
    for layer in net.layers:
        xi, xs = _cloud(fi[layer], max_samples, seed), _cloud(fs[layer], max_samples, seed)
        dirs = random_directions(xi.shape[1], n_directions, gen).to(xi.device)
        pi, ps = xi @ dirs, xs @ dirs
        w = wasserstein_1d(pi, ps) / ps.std(dim=0).clamp_min(1e-6)
        out[layer] = float(w.pow(2).mean().sqrt())
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
) -> float:
    """Mean over layers of :func:`style_distance_per_layer`.

    Args:
        image: ``(1, 3, H, W)`` result.
        style: ``(1, 3, H', W')`` style example.
        network: name of a weight set usable as a loss network (default
            ``vgg19-caffe``, a network the synthesis does not use) or a built
            :class:`~ottex.networks.VGGFeatures`.
        layers: taps of the measuring network.
        n_directions: number of fixed random directions per layer.
        seed: seed of the directions (same seed = comparable numbers).
        weights_dir: where to look for the measuring network's weights.
        max_samples: positions per image and layer (drawn with ``seed``) beyond
            which the feature cloud is subsampled.

    Returns:
        The distance (0 for identical feature distributions).

    Example:
        >>> d = style_distance(result, style)  # doctest: +SKIP
    """
    per = style_distance_per_layer(image, style, network, layers, n_directions, seed, weights_dir, max_samples)
    return sum(per.values()) / len(per)
