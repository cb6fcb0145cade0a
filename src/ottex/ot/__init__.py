"""Optimal-transport primitives shared by every method (POT-like flat names: ``ottex.ot.sort_match`` ...).

Sample clouds are tensors of shape ``(*, N, C)``: ``N`` samples of dimension
``C``, with optional leading batch dimensions. Every function runs on the
device and in the dtype of its inputs and has no Python loop over channels.

Contents:
    * :mod:`~ottex.ot.sorting`: :func:`sort_values`, :func:`argsort` (NumPy's
      vectorised sorts on CPU, several times faster than ``torch.sort`` there;
      torch elsewhere), :func:`subsample`, :func:`quantiles`;
    * :mod:`~ottex.ot.exact`, exact 1D OT: :func:`sort_match` (quantile
      matching of every column), :func:`wasserstein_1d`, :func:`monotone_map`
      (the fitted 1D map applied to new samples), :func:`power_mean` (the
      order-``p`` mean of the distances, without overflow; ``p = inf`` too);
    * :mod:`~ottex.ot.binned`: :func:`binned_sort_match`, the same matching for
      rows too long to sort (ranks from a binned CDF: linear time, bounded memory);
    * :mod:`~ottex.ot.sliced`: :func:`random_rotation`, :func:`sliced_match`,
      :func:`random_directions`, :func:`sliced_wasserstein_distance`;
    * :mod:`~ottex.ot.gaussian`: :func:`mean_cov`, :func:`sqrtm_psd`,
      :func:`trace_sqrtm`, :func:`gaussian_mapping` (``"chol"``, ``"pca"``,
      ``"sym"`` = the Bures/W2 Monge map), :func:`bures_wasserstein_mapping`,
      :func:`gaussian_wasserstein_distance`, :func:`pca_basis`.

Example:
    >>> import torch
    >>> from ottex import ot
    >>> x, y = torch.randn(500, 3), torch.rand(400, 3)
    >>> ot.sort_match(x, y).shape
    torch.Size([500, 3])
"""

from __future__ import annotations

from .binned import binned_sort_match
from .exact import monotone_map, power_mean, sort_match, wasserstein_1d
from .gaussian import (
    apply_mapping,
    bures_wasserstein_mapping,
    gaussian_mapping,
    gaussian_wasserstein_distance,
    mean_cov,
    pca_basis,
    sqrtm_psd,
    trace_sqrtm,
)
from .sliced import random_directions, random_rotation, sliced_match, sliced_wasserstein_distance
from .sorting import argsort, quantiles, sort_values, subsample

__all__ = [
    "sort_values",
    "subsample",
    "argsort",
    "quantiles",
    "sort_match",
    "binned_sort_match",
    "wasserstein_1d",
    "monotone_map",
    "power_mean",
    "random_rotation",
    "random_directions",
    "sliced_match",
    "sliced_wasserstein_distance",
    "mean_cov",
    "sqrtm_psd",
    "trace_sqrtm",
    "gaussian_mapping",
    "apply_mapping",
    "bures_wasserstein_mapping",
    "gaussian_wasserstein_distance",
    "pca_basis",
]
