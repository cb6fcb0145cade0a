"""Differentiable style and content losses on feature maps, for the optimisation-based methods.

Each loss is a pure function of feature tensors plus a small ``nn.Module`` that
holds the precomputed style (or content) statistics, kornia-style. Feature maps
have shape ``(B, C, H, W)``; statistics are per image of the batch.

* :func:`gaussian_w2_loss` (Marron, "Style transfer as optimal transport"): the
  closed-form squared 2-Wasserstein distance between Gaussians fitted to the
  features (:func:`ottex.ot.gaussian_wasserstein_distance`, whose trace root has
  finite gradients for rank-deficient covariances).
* :func:`gram_loss` (Gatys et al. 2016): squared Frobenius distance of Gram
  matrices ``F F^T / (H W)`` (:func:`gram_matrix`, also used by the metrics).
* :func:`sliced_wasserstein_loss` (Heitz et al. 2021): random orthonormal
  directions (as many as channels), exact 1D W2 by sorting, the style's sorted
  projections resampled to the image's count. :class:`SlicedWassersteinLoss`
  keeps its directions until :meth:`~SlicedWassersteinLoss.redraw` is called,
  so that an L-BFGS run sees one deterministic objective (Heitz et al. draw new
  directions for each of their L-BFGS runs); before the first ``redraw`` it
  draws new ones at every call (a stochastic loss, for Adam).
* :func:`content_loss`: mean squared feature difference.

Every layer's loss is divided by a constant of the target (its total variance,
squared Gram norm, ...) so that layers of different widths and magnitudes weigh
alike and the values are comparable across images.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..core.errors import InputError
from ..ot import (
    argsort,
    gaussian_wasserstein_distance,
    mean_cov,
    quantiles,
    random_rotation,
    sort_values,
    sqrtm_psd,
    trace_sqrtm,
)

__all__ = [
    "feature_stats",
    "gram_matrix",
    "trace_sqrtm",
    "gaussian_w2_loss",
    "gram_loss",
    "sliced_wasserstein_loss",
    "content_loss",
    "GaussianW2Loss",
    "GramLoss",
    "SlicedWassersteinLoss",
    "StyleLoss",
    "STYLE_LOSSES",
    "make_style_loss",
]


def _cloud(features: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, H W, C)``."""
    if features.dim() != 4:
        raise InputError(f"features must have shape (B, C, H, W), got {tuple(features.shape)}")
    return features.flatten(2).transpose(1, 2)


def feature_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(B, C)`` and covariance ``(B, C, C)`` of ``(B, C, H, W)`` feature maps.

    The products run in the features' dtype (float32 matrix products are several
    times faster than float64 on CPU); the results are float64 for the eigen-solvers.
    """
    mu, cov = mean_cov(_cloud(features))
    return mu.double(), cov.double()


def gaussian_w2_loss(
    features: torch.Tensor,
    mean_s: torch.Tensor,
    cov_s: torch.Tensor,
    cov_s_sqrt: torch.Tensor | None = None,
) -> torch.Tensor:
    """Squared W2 distance between Gaussians fitted to ``features`` and ``N(mean_s, cov_s)``.

    Args:
        features: ``(B, C, H, W)``.
        mean_s: ``(C,)`` or ``(B, C)`` style mean.
        cov_s: ``(C, C)`` or ``(B, C, C)`` style covariance.
        cov_s_sqrt: its square root, if precomputed.

    Returns:
        ``(B,)`` distances (float64).
    """
    mu, cov = feature_stats(features)
    mean_s, cov_s = mean_s.to(mu), cov_s.to(cov)
    root = sqrtm_psd(cov_s) if cov_s_sqrt is None else cov_s_sqrt.to(cov)
    return gaussian_wasserstein_distance(mu, cov, mean_s, cov_s, root)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, C, C)`` Gram matrices ``F F^T / (H W)``.

    Example:
        >>> gram_matrix(torch.ones(1, 2, 4, 4))
        tensor([[[1., 1.],
                 [1., 1.]]])
    """
    f = features.flatten(2)
    return f @ f.transpose(1, 2) / f.shape[-1]


def gram_loss(features: torch.Tensor, gram_s: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of Gram matrices ``F F^T / (H W)``; ``(B,)``."""
    return (gram_matrix(features) - gram_s).pow(2).mean(dim=(-2, -1))


def sliced_wasserstein_loss(
    features: torch.Tensor,
    style_features: torch.Tensor,
    generator: torch.Generator | None = None,
    rotation: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sliced W2^2 between the feature clouds along ``C`` random orthonormal directions; ``(B,)``.

    Args:
        features: ``(B, C, H, W)`` (differentiable).
        style_features: ``(1, C, h, w)`` or ``(B, C, h, w)`` targets (sizes may differ).
        generator: source of the random directions.
        rotation: ``(C, C)`` orthonormal directions (columns) to use instead of random ones.

    Example:
        >>> f = torch.rand(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> float(sliced_wasserstein_loss(f, f.flip(-1))) < 1e-12  # the same values in another place
        True
    """
    c = features.shape[1]
    rot = random_rotation(c, generator, device=features.device, dtype=features.dtype) if rotation is None else \
        rotation.to(features.dtype)
    px = rot.T @ features.flatten(2)  # (B, C, N)
    ps = sort_values((rot.T @ style_features.flatten(2).to(features.dtype)).detach())
    target = quantiles(ps, px.shape[-1], dim=-1)
    sx = px.gather(-1, argsort(px.detach(), dim=-1))  # sorted, differentiable; the fast sort finds the order
    return (sx - target).pow(2).mean(dim=(-2, -1))


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of ``(B, C, H, W)`` feature maps; ``(B,)``."""
    return (features - target).pow(2).mean(dim=(1, 2, 3))


class StyleLoss(nn.Module):
    """A style loss over several layers, targets precomputed from style feature maps.

    Call with a dict ``{layer: (B, C, H, W)}`` of the image's features; returns
    ``(B,)``: the sum over layers of each layer's normalised loss.
    """

    def __init__(self, style_features: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        self.layers = tuple(style_features)

    def layer_loss(self, layer: str, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.layer_loss(k, features[k]).float() for k in self.layers)


class GaussianW2Loss(StyleLoss):
    """:func:`gaussian_w2_loss` per layer, divided by the style's ``|mu|^2 + tr(S)``."""

    def __init__(self, style_features: Mapping[str, torch.Tensor]) -> None:
        super().__init__(style_features)
        self.stats = {}
        for k, f in style_features.items():
            mu, cov = feature_stats(f.detach())
            mu, cov = mu[0], cov[0]
            norm = (mu.pow(2).sum() + torch.diagonal(cov).sum()).clamp_min(1e-12)
            self.stats[k] = (mu, cov, sqrtm_psd(cov), norm)

    def layer_loss(self, layer: str, features: torch.Tensor) -> torch.Tensor:
        mu, cov, root, norm = self.stats[layer]
        return gaussian_w2_loss(features, mu, cov, root) / norm


class GramLoss(StyleLoss):
    """:func:`gram_loss` per layer, divided by the mean squared entry of the style's Gram matrix."""

    def __init__(self, style_features: Mapping[str, torch.Tensor]) -> None:
        super().__init__(style_features)
        self.grams = {}
        for k, f in style_features.items():
            g = gram_matrix(f.detach())[0]
            self.grams[k] = (g, g.pow(2).mean().clamp_min(1e-12))

    def layer_loss(self, layer: str, features: torch.Tensor) -> torch.Tensor:
        g, norm = self.grams[layer]
        return gram_loss(features, g) / norm


class SlicedWassersteinLoss(StyleLoss):
    """:func:`sliced_wasserstein_loss` per layer, divided by the style's total variance over ``C``.

    The directions are fixed from one :meth:`redraw` to the next (one deterministic objective for an L-BFGS
    run); before the first ``redraw``, every call draws new ones.
    """

    #: Standard deviation of the noise around the example's mean colour that a synthesis with this loss starts from
    #: (Heitz et al. 2021's start; at most the example's own spread): the loss network hardly sees pixel-scale noise,
    #: so noise with the example's spread survived the optimisation as a colour grain (docs/structure.md).
    start_spread = 0.01

    def __init__(self, style_features: Mapping[str, torch.Tensor], generator: torch.Generator | None = None) -> None:
        super().__init__(style_features)
        self.generator = generator
        self.rotations: dict[str, torch.Tensor] = {}
        self.targets = {}
        for k, f in style_features.items():
            f = f.detach().flatten(2)[0]  # (C, N)
            # One position (a small style example at a deep layer) has no variance: its mean square instead
            # (the variance of one value is NaN, which made the whole image NaN, saved black).
            var = f.var(dim=-1).mean() if f.shape[-1] > 1 else f.pow(2).mean()
            self.targets[k] = (f, var.clamp_min(1e-12))

    def redraw(self) -> None:
        """Draw new random directions for every layer; they stay until the next call."""
        for k, (f, _) in self.targets.items():
            self.rotations[k] = random_rotation(f.shape[0], self.generator, device=f.device, dtype=f.dtype)

    def layer_loss(self, layer: str, features: torch.Tensor) -> torch.Tensor:
        f, var = self.targets[layer]
        return sliced_wasserstein_loss(features, f[None], self.generator, self.rotations.get(layer)) / var


#: Style losses by method name.
STYLE_LOSSES: dict[str, type[StyleLoss]] = {
    "w2": GaussianW2Loss,
    "gatys": GramLoss,
    "swd": SlicedWassersteinLoss,
}


def make_style_loss(
    method: str, style_features: Mapping[str, torch.Tensor], generator: torch.Generator | None = None
) -> StyleLoss:
    """The style loss of ``method`` (``w2``, ``gatys`` or ``swd``) for these style features."""
    if method not in STYLE_LOSSES:
        raise InputError(f"unknown style loss '{method}' (choose from {', '.join(STYLE_LOSSES)})")
    if method == "swd":
        return SlicedWassersteinLoss(style_features, generator)
    return STYLE_LOSSES[method](style_features)
