"""STROTSS (Kolkin, Salavon & Shakhnarovich, CVPR 2019): style transfer by relaxed optimal transport and
self-similarity.

The output image is optimised (RMSprop, over the coefficients of a 5-band
Laplacian pyramid rather than the pixels) against losses on *hypercolumns*:
at a random set of output positions (``samples``, 1024 by default, redrawn at
every step) the features of several layers of the loss network are looked up
bilinearly and concatenated with the RGB values. The loss network
(``network``) is by default ``hybrid``: VGG-19's own full-width relu1_1,
relu1_2, relu2_1, relu2_2 and relu3_1 (``wct-vgg19``) with ``cd16x``'s relu4_1
and relu5_1 (the deepest layers this project has weights for): 1667 values per
position, against the paper's 2179 from nine VGG-16 layers. ``cd16x`` alone
(relu1_1 ... relu5_1, distilled approximations of VGG-19's) takes 0.6-0.7x the
time with mushier shapes (README). The style is a fixed set of
hypercolumns drawn from random style positions once per scale
(``style_samples``, 5000 by default). Per step, with ``alpha`` the content
weight of the scale:

* ``l_r``, relaxed EMD of the hypercolumns with the cosine cost:
  ``max(mean_i min_j C_ij, mean_j min_i C_ij)``;
* ``l_m``, moment matching: mean absolute difference of the means plus mean
  absolute difference of the covariance matrices;
* ``l_p``, palette: relaxed EMD of the RGB values with the cost
  ``cosine + RMS difference``;
* ``l_c``, self-similarity content loss: the cosine-distance matrices of the
  output's and of the content's hypercolumns (same positions), each column
  divided by its sum; mean absolute difference times the number of samples;
* total ``(alpha * l_c + l_r + l_m + l_p / max(alpha, 1)) / (alpha + 2)``.

Coarse to fine on the scale pyramid of :mod:`ottex.core.pyramid` with exact
sizes (``multiple=1``): long sides ``64, 128, 256, 512`` (for ``size=512``; one
more doubling per doubling of ``size``). The first scale starts from the style's
mean colour plus the finest Laplacian band of the content; each later scale
from the previous result upsampled, plus the content's finest band except at
the last scale, where the learning rate is halved. The content weight is the
user's value times 16 at the coarsest scale and halves at every scale. The
style example is resized so that its long side is the scale's long side.

Speed (issue 17; the same losses): the hypercolumns are contiguous rows; the
``cd16x`` read-outs are applied to the looked-up vectors, not to full maps; the
output's unit rows are computed once per step (with a closed-form backward)
and the style's once per scale; the nearest-neighbour search of the relaxed
EMD runs without autograd, in bfloat16 on CPUs with native bfloat16 products
(``match_dtype``; the matched pairs' costs and gradients stay float32), and
the column relaxation's gradient is a sum of the style rows per output row
rather than a gather's scatter-add; the moment loss's covariance and its
gradient are bfloat16 products on such CPUs too (``moment_dtype``: the value
within 1e-6 relative, the gradient's direction within 1e-5 of float32's), and
so are the self-similarity matrices and their gradient (``similarity_dtype``)
and the loss network's convolutions at every step (``network_dtype``; the
features are made float32 before the lookup, and the style's and content's
are computed in float32): whole runs with them end at the same distances as
float32 runs, within one seed's spread, in about 0.8x the time (README).

Region guidance: two colour-coded label maps (content and style) whose colours
correspond (:func:`ottex.image.masks.load_label_pair`). The style losses are then
computed per region, output positions of one region against the style samples of
the same region (the content loss too: the self-similarity of the region's
positions), and averaged over the regions. By default
(``region_samples="auto"``: ``"each"``) every region gets ``samples`` output
positions per step, as in the official code, so a step costs about one unguided
step per region. ``"shared"`` (what ``auto`` means in the ``fast`` preset on a CPU)
splits the ``samples`` positions over the regions in proportion to their area
(at least :data:`MIN_REGION_SAMPLES` each): a guided run then takes about 1.2x
an unguided one's time, but fewer positions are moved per step and the petals
come out softer (measured on the owls pair at 512 px with the hybrid network:
396 s against 747 s for ``"each"`` and 336 s unguided; relu1_1 / relu2_1 /
relu3_1 0.1818 / 0.1508 / 0.1675 against 0.1732 / 0.1248 / 0.1482; with
``cd16x`` the style was clearly weaker; README, "Measuring results").

Registered as the method ``"strotss"`` (style transfer only; :class:`StrotssOptions`).

Example:
    >>> out = strotss("owls.jpg", "flowers.jpg", 512, content_weight=1.0)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
import operator
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..core.checks import check_example, renamed_keyword
from ..core.device import DTYPE_CHOICES, bfloat16_is_fast, deterministic_backward, make_generator, repeatable
from ..core.errors import InputError, MissingWeightsError
from ..core.progress import Callback, Reporter, run_callbacks
from ..core.pyramid import content_output_size, per_scale, pyramid_sizes
from ..core.resample import resize
from ..core.runtime import prepare_device
from ..image.io import ImageLike, as_image
from ..image.masks import check_mask_aspect, load_label_pair, resample_masks
from ..nn.networks import VGGFeatures, load_feature_extractor
from .base import Method, get_method, register_method
from .cost import RunCost
from .options import TRANSFER, Options, label_number, option, parse_ints

__all__ = [
    "strotss",
    "StrotssOptions",
    "REPEAT_TOLERANCE",
    "NETWORK_LAYERS",
    "HYBRID_PARTS",
    "DEFAULT_NETWORK",
    "HybridFeatures",
    "loss_network",
    "cosine_cost",
    "palette_cost",
    "relaxed_emd",
    "moment_loss",
    "search_dtype",
    "MATCH_DTYPES",
    "self_similarity_loss",
    "laplacian_pyramid",
    "reconstruct_pyramid",
    "scale_sizes",
    "MIN_REGION_SAMPLES",
    "REGION_SAMPLES",
]

#: The ``hybrid`` loss network's parts: weight set -> its taps (VGG-19's own full-width layers where this project
#: has them, wct-vgg19 levels 1-3; cd16x's read-outs deeper).
HYBRID_PARTS: dict[str, tuple[str, ...]] = {
    "wct-vgg19": ("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1"),
    "cd16x": ("relu4_1", "relu5_1"),
}
#: Taps of the loss network per weight set (the paper: VGG-16 relu1_1 ... relu5_3, plus RGB).
NETWORK_LAYERS: dict[str, tuple[str, ...]] = {
    "hybrid": tuple(itertools.chain.from_iterable(HYBRID_PARTS.values())),
    "cd16x": ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
    "vgg19-caffe": ("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3"),
}
#: The default loss network (``cd16x`` before issue 17's fourth session; measured against it in README).
DEFAULT_NETWORK = "hybrid"

COARSEST_SIDE = 64  # long side of the coarsest scale (for a power-of-two ``size``)
PYRAMID_LEVELS = 5  # Laplacian bands of the optimised image (plus the low-pass residual)
GRID_CELLS = 128 * 128  # output positions are drawn from a strided grid of about this many cells ...
GRID_EVERY = 10  # ... whose random offset is redrawn every this many steps
#: With region guidance and ``region_samples="shared"``: the fewest output positions a region gets per step (or all
#: of its positions on the grid, if fewer).
MIN_REGION_SAMPLES = 128
#: Values of the ``region_samples`` option (``auto``: ``each``, or ``shared`` in the ``fast`` preset on a CPU).
REGION_SAMPLES = ("auto", "shared", "each")
#: RMSprop steps per scale: the default (the official code's 250; 200 before issue 17, measured against 250 in README)
#: and the ``fast`` preset's.
DEFAULT_STEPS = (250,)
FAST_STEPS = (100,)
CONTENT_WEIGHT_SCALE = 16.0  # user content weight x 16 at the coarsest scale, halved at each finer one
#: Two runs with the same seed, settings and device give the same image up to this (largest difference of a pixel
#: value in [0, 1]); far below what an 8-bit image file holds (1/255). On the 2-core CPU of this project same-seed
#: runs with 1 or 2 threads are equal: the 1.3e-7 (and, once a last bit flipped a nearest neighbour, 1e-5)
#: differences seen with several threads came from the backward of a row gather (``x[index]``), a scatter-add with
#: atomics on several CPU threads, which the relaxed EMD no longer uses. The tolerance is what is promised for
#: other devices and kernels.
REPEAT_TOLERANCE = 1e-6
_EPS = 1e-8


# ---------------------------------------------------------------------------------------------
# Losses on (N, D) clouds of hypercolumns


class _UnitRows(torch.autograd.Function):
    """``x / max(|x_i|, eps)`` row by row, with the backward in closed form.

    ``g_x = (g - u (g . u)) / |x|`` (the part of ``g`` orthogonal to each unit
    row; ``g / eps`` for rows shorter than ``eps``): three passes over ``(n, d)``
    where autograd's division and norm backward take about five times as long.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        norm = x.norm(dim=-1, keepdim=True)
        short = norm < _EPS
        norm = norm.clamp_min(_EPS)
        u = x / norm
        ctx.save_for_backward(u, norm, short)
        return u

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        u, norm, short = ctx.saved_tensors
        radial = (grad * u).sum(-1, keepdim=True).masked_fill_(short, 0.0)
        return (grad - u * radial) / norm


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length (rows shorter than ``_EPS`` divided by ``_EPS``)."""
    if x.requires_grad:
        return _UnitRows.apply(x)
    return x / x.norm(dim=-1, keepdim=True).clamp_min(_EPS)


class _Gram(torch.autograd.Function):
    """``a^T a`` whose backward is one product, ``a (G + G^T)`` (autograd's ``mm`` backward takes two).

    With a ``dtype`` (bfloat16), both products take ``a`` rounded to it; oneDNN sums in float32 and the result
    is rounded once, then returned in ``a``'s dtype.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:  # noqa: ANN001
        low = a if dtype is None else a.to(dtype)
        ctx.save_for_backward(low)
        return (low.T @ low).to(a.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN001
        (low,) = ctx.saved_tensors
        return (low @ (grad + grad.T).to(low.dtype)).to(grad.dtype), None


def _gram(a: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    if a.requires_grad:
        return _Gram.apply(a, dtype)
    low = a if dtype is None else a.to(dtype)
    return (low.T @ low).to(a.dtype)


def cosine_cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cosine distances ``1 - <x_i, y_j> / (|x_i| |y_j|)`` between the rows of ``(n, d)`` and ``(m, d)``.

    Returns:
        ``(n, m)`` matrix with values in ``[0, 2]``.

    Example:
        >>> cosine_cost(torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
        tensor([[0., 1.]])
    """
    return 1.0 - _unit(x) @ _unit(y).T


def _rms_distance(sq: torch.Tensor, d: int) -> torch.Tensor:
    return (sq / d).clamp_min(_EPS).sqrt()


def palette_cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Colour cost of the palette loss: cosine distance plus RMS difference of ``(n, 3)`` and ``(m, 3)`` colours.

    (The official code first applies an orthogonal RGB -> "YUV" matrix, which
    changes neither term.)

    Returns:
        ``(n, m)`` matrix.
    """
    sq = (x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1)[None] - 2.0 * x @ y.T).clamp_min(0)
    return cosine_cost(x, y) + _rms_distance(sq, x.shape[1])


_COSTS = {"cosine": cosine_cost, "palette": palette_cost}
#: Values of the ``match_dtype`` option: the dtype of the nearest-neighbour search of the relaxed EMD.
MATCH_DTYPES = DTYPE_CHOICES


def search_dtype(choice: str, device: torch.device | str, option: str = "match_dtype") -> torch.dtype | None:
    """The dtype of the relaxed EMD's nearest-neighbour search for ``choice`` on ``device`` (``None``: the clouds').
    (Also that of the moment loss's covariance products, of the self-similarity's and of the loss network's
    convolutions: ``option="moment_dtype"``, ``"similarity_dtype"``, ``"network_dtype"``.)

    ``"auto"`` is bfloat16 on CPUs whose oneDNN has native bfloat16 matrix
    products (AVX512-BF16 / AMX: about 2.2x faster than float32 for the 1024 x
    5000 products of a STROTSS step) and the clouds' own dtype elsewhere (GPUs,
    older CPUs, where bfloat16 would be emulated). The answer depends only on
    the machine, so runs with the same seed on one machine repeat.

    Raises:
        InputError: an unknown choice.
    """
    _check_dtype_choice(choice, option)
    if choice == "bfloat16":
        return torch.bfloat16
    if choice == "float32":
        return None
    return torch.bfloat16 if bfloat16_is_fast(device) else None


def _check_dtype_choice(choice: str, option: str) -> None:
    if choice not in MATCH_DTYPES:
        raise InputError(f"unknown {option.replace('_', ' ')} '{choice}' (choose from {', '.join(MATCH_DTYPES)})",
                         option=option)


@dataclass
class _Cloud:
    """A fixed cloud to match against (a region's style samples), with what every step's matching reuses."""

    points: torch.Tensor  # (m, d)
    unit: torch.Tensor  # (m, d) unit rows (cosine cost)
    search: torch.Tensor | None = None  # (m, d + 1) [-unit, 1] in a narrower dtype, for the cosine search
    sq_norm: torch.Tensor | None = None  # (m,) squared norms (palette cost)

    @classmethod
    def of(cls, y: torch.Tensor, cost: str, dtype: torch.dtype | None = None) -> _Cloud:
        """``y`` prepared for :func:`_match` with ``cost``; ``dtype``: that of the search (cosine cost only)."""
        unit = _unit(y)
        if cost == "palette":  # 3 columns: nothing to gain from a narrower dtype
            return cls(points=y, unit=unit, sq_norm=y.pow(2).sum(1))
        if dtype is None or dtype == y.dtype:
            return cls(points=y, unit=unit)
        return cls(points=y, unit=unit, search=torch.cat([-unit, unit.new_ones(len(unit), 1)], 1).to(dtype))


def _nearest(x: torch.Tensor, y: _Cloud, cost: str, x_unit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Nearest neighbours both ways (no autograd): ``(row_arg, col_arg, rows)``.

    ``row_arg[i]``: the ``y`` nearest to ``x_i``; ``col_arg[j]``: the ``x``
    nearest to ``y_j``; ``rows``: whether the row relaxation is the larger.
    Only the order of the costs matters, so the cosine search in the clouds'
    dtype looks for the largest similarities (no ``1 - S`` pass), and the
    palette matrix is the cost minus 1. In a narrower dtype (``y.search``) the
    products are ``[x_u, 1] . [-y_u, 1] = 1 - <x_u, y_u>``: the cost itself,
    accumulated in float32 and rounded once, so the nearest costs keep the
    dtype's *relative* precision (a similarity near 1 in bfloat16 would be
    rounded to steps of 0.004).
    """
    with torch.no_grad():
        if cost == "cosine" and y.search is not None:
            xs = torch.cat([x_unit.detach(), x_unit.new_ones(len(x_unit), 1)], 1).to(y.search.dtype)
            c = xs @ y.search.T
            row_val, row_arg = c.min(1)
            col_val, col_arg = c.min(0)
            return row_arg, col_arg, bool(row_val.float().mean() >= col_val.float().mean())
        if cost == "cosine":
            sim = x_unit.detach() @ y.unit.T
            row_val, row_arg = sim.max(1)
            col_val, col_arg = sim.max(0)
            return row_arg, col_arg, bool(row_val.mean() <= col_val.mean())
        xd = x.detach()
        d = xd.shape[1]
        # RMS part: (|x|^2 + |y|^2 - 2 <x, y>) / d, floored at _EPS (as _rms_distance), then minus the cosine
        c = torch.addmm(y.sq_norm[None] / d, xd, y.points.T, alpha=-2.0 / d).add_(xd.pow(2).sum(1, keepdim=True) / d)
        c = torch.addmm(c.clamp_(min=_EPS).sqrt_(), x_unit.detach(), y.unit.T, alpha=-1.0)
        row_val, row_arg = c.min(1)
        col_val, col_arg = c.min(0)
        return row_arg, col_arg, bool(row_val.mean() >= col_val.mean())


def _match(x: torch.Tensor, y: _Cloud, cost: str = "cosine", x_unit: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`relaxed_emd` of ``x`` against a prepared cloud; ``x_unit``: ``x``'s unit rows if already computed.

    The value and gradient are those of the matched pairs' exact costs (in
    ``x``'s dtype), whatever the dtype of the search.
    """
    xu = _unit(x) if x_unit is None else x_unit
    row_arg, col_arg, rows = _nearest(x, y, cost, xu)
    if rows:
        c = 1.0 - (xu * y.unit[row_arg]).sum(-1)
        if cost == "palette":
            c = c + _rms_distance((x - y.points[row_arg]).pow(2).sum(-1), x.shape[1])
    elif cost == "cosine":
        # mean_j (1 - <xu[col_arg[j]], yu_j>) = 1 - <xu, pull> / m with pull_i the sum of the y_j whose nearest
        # is x_i: no (m, d) gather of xu, whose backward (a scatter-add with atomics on several CPU threads)
        # would make same-seed runs differ in the last bits
        with torch.no_grad():
            pull = torch.zeros_like(xu).index_add_(0, col_arg, y.unit)
        return 1.0 - (xu * pull).sum() / col_arg.numel()
    else:
        xm = x.index_select(0, col_arg)  # backward: index_add_, deterministic (indexing's is not, see above)
        c = 1.0 - (_unit(xm) * y.unit).sum(-1) + _rms_distance((xm - y.points).pow(2).sum(-1), x.shape[1])
    return c.mean()


def relaxed_emd(x: torch.Tensor, y: torch.Tensor, cost: str = "cosine") -> torch.Tensor:
    """Relaxed earth mover's distance ``max(mean_i min_j C_ij, mean_j min_i C_ij)`` between two clouds.

    Each relaxation drops one of the two marginal constraints of optimal
    transport, so every point simply moves to its nearest neighbour in the
    other cloud; the larger of the two is a lower bound of the EMD.

    The cost matrix is formed without autograd; the gradient (that of the
    selected minima, which is what autograd gives for ``min``) is obtained by
    re-evaluating only the matched pairs, so no ``(n, m)`` matrix is kept for
    the backward pass.

    Args:
        x: ``(n, d)`` cloud (e.g. output hypercolumns; gradients flow to it).
        y: ``(m, d)`` cloud (e.g. style hypercolumns).
        cost: ``"cosine"`` (:func:`cosine_cost`) or ``"palette"`` (:func:`palette_cost`).

    Returns:
        Scalar tensor; 0 for identical clouds.

    Example:
        >>> x = torch.randn(5, 4)
        >>> float(relaxed_emd(x, x)) < 1e-6
        True
    """
    if cost not in _COSTS:
        raise InputError(f"unknown cost '{cost}' (choose from {', '.join(_COSTS)})")
    return _match(x, _Cloud.of(y, cost), cost)


def _moments(x: torch.Tensor, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    mu = x.mean(0)
    return mu, _gram(x - mu, dtype) / x.shape[0]


def moment_loss(
    x: torch.Tensor, y: torch.Tensor | tuple[torch.Tensor, torch.Tensor], dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Moment matching: ``mean|mu_x - mu_y| + mean|Sigma_x - Sigma_y|`` (covariances divided by ``n``).

    Args:
        x: ``(n, d)`` cloud.
        y: ``(m, d)`` cloud, or its precomputed ``(mean, covariance)``.
        dtype: dtype of the products of ``x``'s covariance and its gradient
            (e.g. ``torch.bfloat16``; sums in float32); None: ``x``'s.

    Returns:
        Scalar tensor.
    """
    mu_y, cov_y = _moments(y) if isinstance(y, torch.Tensor) else y
    mu_x, cov_x = _moments(x, dtype)
    return (mu_x - mu_y).abs().mean() + (cov_x - cov_y).abs().mean()


def self_similarity_loss(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Self-similarity content loss between hypercolumns of the output and of the content at the same positions.

    ``D^X`` and ``D^C`` are the ``(n, n)`` cosine-distance matrices of the two
    clouds, each column divided by its sum; the loss is the mean absolute
    difference times ``n`` (as the official code; the paper writes ``1/n^2``
    times the sum). The same normalisation as :func:`ottex.eval.metrics.self_similarity`.

    Args:
        x: ``(n, d)`` output hypercolumns.
        c: ``(n, d)`` content hypercolumns (row ``i`` at the position of ``x``'s row ``i``).

    Returns:
        Scalar tensor; 0 when both clouds have the same cosine self-similarity.
    """
    return _self_similarity(_unit(x), _unit(c))


def _self_similarity(xu: torch.Tensor, cu: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """:func:`self_similarity_loss` from the unit rows of both clouds (``dtype``: that of the products)."""
    dx = 1.0 - _gram(xu.T, dtype)  # = cosine_cost(x, x), with a cheaper backward
    dc = 1.0 - _gram(cu.T, dtype)
    dx = dx / dx.sum(0, keepdim=True).clamp_min(_EPS)
    dc = dc / dc.sum(0, keepdim=True).clamp_min(_EPS)
    return (dx - dc).abs().mean() * xu.shape[0]


# ---------------------------------------------------------------------------------------------
# Laplacian pyramid


def _half(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.interpolate(x, size=(max(h // 2, 1), max(w // 2, 1)), mode="bilinear", align_corners=False)


_CPU = torch.device("cpu")


def _up(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    if deterministic_backward(x):
        return bilinear_by_products(x, size)
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


@functools.lru_cache(maxsize=64)
def _bilinear_weights(n_out: int, n_in: int, device: torch.device = _CPU, dtype: torch.dtype = torch.float64
                      ) -> torch.Tensor:
    """``(n_out, n_in)`` weights of 1-D bilinear resampling as ``F.interpolate`` computes them
    (``align_corners=False``: source ``(i + 0.5) n_in / n_out - 0.5``, clamped at 0), made in float64 and kept
    per size pair, device and dtype (a STROTSS step resamples the same sizes every time). Made outside inference
    mode, so that a first call inside ``torch.inference_mode()`` leaves nothing in the cache that autograd refuses."""
    with torch.inference_mode(False):
        if device != _CPU or dtype != torch.float64:
            return _bilinear_weights(n_out, n_in).to(device, dtype)
        src = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5).clamp_min(0)
        i0 = src.floor().long().clamp_max(n_in - 1)
        frac = src - i0
        rows = torch.arange(n_out)
        w = torch.zeros(n_out, n_in, dtype=torch.float64)
        w.index_put_((rows, i0), 1 - frac, accumulate=True)
        return w.index_put_((rows, (i0 + 1).clamp_max(n_in - 1)), frac, accumulate=True)


def bilinear_by_products(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resampling of ``(*, C, H, W)`` to ``size`` as two matrix products: the values of
    ``F.interpolate(x, size, mode="bilinear", align_corners=False)`` up to rounding, with a backward that
    repeats bit for bit on CUDA (``F.interpolate``'s CUDA backward adds with atomics in no fixed order).
    STROTSS rebuilds its image from the pyramid this way where the backward must repeat
    (:func:`~ottex.core.device.deterministic_backward`)."""
    h, w = (int(s) for s in size)
    wh = _bilinear_weights(h, x.shape[-2], x.device, x.dtype)
    ww = _bilinear_weights(w, x.shape[-1], x.device, x.dtype)
    return torch.matmul(torch.matmul(wh, x), ww.T)


def laplacian_pyramid(image: torch.Tensor, levels: int = PYRAMID_LEVELS) -> list[torch.Tensor]:
    """Decompose ``(B, C, H, W)`` into ``levels`` band-pass images (finest first) and a low-pass residual.

    Each band is ``current - up(down(current))`` with bilinear halving (a 2x2
    mean for even sizes) and bilinear upsampling.

    Returns:
        ``levels + 1`` tensors; :func:`reconstruct_pyramid` inverts the decomposition.
    """
    bands = []
    cur = image
    for _ in range(levels):
        small = _half(cur)
        bands.append(cur - _up(small, cur.shape[-2:]))
        cur = small
    bands.append(cur)
    return bands


def reconstruct_pyramid(bands: Sequence[torch.Tensor]) -> torch.Tensor:
    """Inverse of :func:`laplacian_pyramid`: upsample and add the bands, coarse to fine."""
    cur = bands[-1]
    for band in reversed(bands[:-1]):
        cur = band + _up(cur, band.shape[-2:])
    return cur


def _finest_band(image: torch.Tensor) -> torch.Tensor:
    return image - _up(_half(image), image.shape[-2:])


# ---------------------------------------------------------------------------------------------
# Scales, positions, hypercolumns


def scale_sizes(size: tuple[int, int], coarsest: int = COARSEST_SIDE) -> list[tuple[int, int]]:
    """Sizes of the coarse-to-fine schedule for an output of ``size=(H, W)``: :func:`~ottex.core.pyramid.pyramid_sizes`
    with exact sizes.

    The long side halves from the output's while it stays at least ``coarsest``
    (512 -> 64, 128, 256, 512; 1024 adds 1024; 600 -> 75, 150, 300, 600); no
    side is halved below 16 px.

    Example:
        >>> scale_sizes((341, 512))
        [(42, 64), (85, 128), (170, 256), (341, 512)]
    """
    return pyramid_sizes(size, coarsest, multiple=1)


def _pixel_grid(flat_idx: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Flat pixel indices -> ``(1, 1, N, 2)`` ``grid_sample`` coordinates of the pixel centres."""
    h, w = hw
    rows = torch.div(flat_idx, w, rounding_mode="floor")
    cols = flat_idx - rows * w
    gx = (cols.float() + 0.5) * (2.0 / w) - 1.0
    gy = (rows.float() + 0.5) * (2.0 / h) - 1.0
    return torch.stack([gx, gy], -1).view(1, 1, -1, 2)


def _lookup(t: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of ``(1, C, h, w)`` at a ``(1, 1, N, 2)`` grid (border padding): ``(1, C, 1, N)``; by
    :func:`lookup_by_gathers` where the backward must repeat (:func:`~ottex.core.device.deterministic_backward`:
    ``grid_sample``'s CUDA backward adds with atomics in no fixed order)."""
    if deterministic_backward(t):
        return lookup_by_gathers(t, grid)
    return F.grid_sample(t, grid.to(t.dtype), mode="bilinear", padding_mode="border", align_corners=False)


def lookup_by_gathers(t: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``F.grid_sample(t, grid, mode="bilinear", padding_mode="border", align_corners=False)`` for ``t`` of shape
    ``(1, C, h, w)`` and ``grid`` of shape ``(1, 1, N, 2)``, as one gather of the four neighbouring pixels of each
    position: the same values up to rounding, with a backward (one ``index_add_``) that torch's deterministic mode
    makes repeat on CUDA."""
    c, h, w = t.shape[1:]
    g = grid.reshape(-1, 2).to(t.dtype)
    x = (((g[:, 0] + 1) * w - 1) / 2).clamp(0, w - 1)  # border padding clamps the source coordinates
    y = (((g[:, 1] + 1) * h - 1) / 2).clamp(0, h - 1)
    x0, y0 = x.floor().long(), y.floor().long()
    x1, y1 = (x0 + 1).clamp_max(w - 1), (y0 + 1).clamp_max(h - 1)
    fx, fy = x - x0, y - y0
    idx = torch.stack([y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1])  # (4, N): one gather, one scatter back
    wts = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy])
    out = (t.reshape(c, h * w).index_select(1, idx.view(-1)).view(c, 4, -1) * wts).sum(1)
    return out.view(1, c, 1, -1)


def _hypercolumns(
    image: torch.Tensor,
    feats: dict[str, torch.Tensor],
    layers: Sequence[str],
    grid: torch.Tensor,
    net: VGGFeatures | HybridFeatures | None = None,
) -> torch.Tensor:
    """RGB and features at the grid positions (bilinear lookup in every layer): ``(N, 3 + sum C)``, contiguous
    (row-wise norms and gathers of a transposed layout take several times as long).

    With ``net``, ``feats`` are its taps without read-outs (``net(x, read_out=False)``) and the read-outs are
    applied to the looked-up vectors: the same values (a 1x1 affine map commutes with bilinear lookup), without
    making the wide full-resolution maps of ``cd16x``.
    """
    cols = [_lookup(t, grid) for t in (image, *(feats[k] for k in layers))]
    if net is None:
        return torch.cat(cols, 1)[0, :, 0].T.contiguous()
    rows = [c[0, :, 0].T for c in cols]
    return torch.cat([rows[0], *(net.read_out(k, v) for k, v in zip(layers, rows[1:]))], 1)


@dataclass
class _Region:
    """One region of one scale: where the output is sampled, and the style samples it is compared with."""

    labels_mask: torch.Tensor  # (h*w,) bool: output pixels of the region
    style: _Cloud  # (m, D) style hypercolumns, prepared for the cosine relaxed EMD
    style_rgb: _Cloud  # (m, 3), prepared for the palette loss
    style_moments: tuple[torch.Tensor, torch.Tensor]
    candidates: torch.Tensor | None = None  # flat indices on the current strided grid


def _grid_mask(hw: tuple[int, int], gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """Flat bool mask of a strided grid (about ``GRID_CELLS`` cells, random offset)."""
    h, w = hw
    stride = max(1, int(math.sqrt(h * w / GRID_CELLS)))
    off = torch.randint(stride, (2,), generator=gen, device=gen.device).tolist()
    rows = torch.arange(h, device=device) % stride == off[0]
    cols = torch.arange(w, device=device) % stride == off[1]
    return (rows[:, None] & cols[None, :]).flatten()


def _draw(pool: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` distinct entries of ``pool`` (all of them if fewer), in random order."""
    perm = torch.randperm(pool.numel(), generator=gen, device=gen.device)[:n]
    return pool[perm.to(pool.device)]


def _labels(masks: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft ``(K, H, W)`` masks -> resampled ``(K, h*w)`` weights and ``(h*w,)`` labels (-1: no region)."""
    m = resample_masks(masks, hw).flatten(1)
    weight, lab = m.max(0)
    return m, torch.where(weight > 0.25, lab, torch.full_like(lab, -1))


# ---------------------------------------------------------------------------------------------
# The loss network


class HybridFeatures(torch.nn.Module):
    """Several feature extractors run on the same image as one: their taps merged (each layer from one part), with
    the ``layers``, ``read_out=False`` and :meth:`read_out` protocol of :class:`~ottex.nn.networks.VGGFeatures`."""

    def __init__(self, parts: Sequence[VGGFeatures]) -> None:
        super().__init__()
        self.parts = torch.nn.ModuleList(parts)
        self._owner = {layer: part for part in parts for layer in part.layers}
        self.layers = tuple(self._owner)

    def forward(self, x: torch.Tensor, read_out: bool = True) -> dict[str, torch.Tensor]:
        taps: dict[str, torch.Tensor] = {}
        for part in self.parts:
            taps.update(part(x, read_out=read_out))
        return taps

    def read_out(self, layer: str, values: torch.Tensor) -> torch.Tensor:
        return self._owner[layer].read_out(layer, values)


def loss_network(name: str, weights_dir: str | os.PathLike | None = None, device: torch.device | str | None = None
                 ) -> VGGFeatures | HybridFeatures:
    """STROTSS's loss network ``name`` (a key of :data:`NETWORK_LAYERS`), frozen; its ``layers`` are the taps the
    hypercolumns take.

    ``hybrid`` whose ``wct-vgg19`` file is absent falls back to ``cd16x`` alone with a warning naming the file (as
    the ``hybrid`` set of Optimal Textures does); a corrupt file is an error.

    Raises:
        InputError: an unknown name.
        WeightsError: a weight file is missing or corrupt (the message names it, where it was looked for and how to
            provide it).
    """
    if name not in NETWORK_LAYERS:
        raise InputError(f"unknown STROTSS network '{name}' (choose from {', '.join(NETWORK_LAYERS)})",
                         option="weights")
    if name != "hybrid":
        return load_feature_extractor(name, NETWORK_LAYERS[name], weights_dir=weights_dir, device=device, pool="max")
    parts = []
    for part, layers in HYBRID_PARTS.items():
        try:
            parts.append(load_feature_extractor(part, layers, weights_dir=weights_dir, device=device, pool="max"))
        except MissingWeightsError as exc:  # absent only: a corrupt file stays an error
            if part == "cd16x":
                raise
            warnings.warn(f"STROTSS network 'hybrid': {exc}; using cd16x for all layers (relu1_1 ... relu5_1)",
                          stacklevel=2)
            return loss_network("cd16x", weights_dir, device)
    return HybridFeatures(parts)


# ---------------------------------------------------------------------------------------------
# The optimisation


def _dtype_option(help: str) -> Any:  # noqa: A002
    """An option picking a computation's dtype: ``auto`` (:func:`search_dtype`), ``float32`` or ``bfloat16``."""
    return option("auto", choices=MATCH_DTYPES, help=help)


@dataclass(frozen=True)
class StrotssOptions(Options):
    """Options of STROTSS (``--method strotss``)."""

    steps: tuple[int, ...] = option(
        DEFAULT_STEPS, parse=parse_ints, metavar="N[,N...]",
        help="RMSprop steps per scale (long sides 64, 128, 256, 512 px ...), the last repeating (the official code: "
        "250)")
    fast: bool = option(False, kind="flag",
                        help="quicker preset: 100 steps per scale instead of 250 (unless steps are given) and, "
                        "with region guidance on a CPU, --region-samples shared (unless given); about 0.4x the "
                        "time unguided, 0.2x guided on a CPU; the quality loss is measured in README")
    lr: float = option(2e-3, help="RMSprop learning rate; halved at the last scale")
    samples: int | tuple[int, ...] = option(
        1024, parse=parse_ints, metavar="N[,N...]",
        help="output positions per step, per scale as --steps (the last repeating; with guidance: per region, or "
        "split over the regions with --region-samples shared)")
    style_samples: int = option(5000, help="style positions per scale (and per region)")
    region_samples: str = option(
        "auto", choices=REGION_SAMPLES,
        help="with region guidance: each (that many output positions in every region, as the official code), "
        "shared (split over the regions by area: about 1.2x the time of an unguided run on a CPU, 1.9x faster "
        "than each with 5 regions, softer petals; no faster on a GPU) or auto (each; shared with --fast on a CPU)")
    match_dtype: str = _dtype_option(
        "dtype of the relaxed EMD's nearest-neighbour search (auto: bfloat16 on CPUs with native bfloat16 "
        "products, else float32); the matched pairs' costs and gradients are float32")
    moment_dtype: str = _dtype_option(
        "dtype of the products of the moment loss's covariance and its gradient (auto: bfloat16 on CPUs with "
        "native bfloat16 products, else float32); sums in float32")
    similarity_dtype: str = _dtype_option(
        "dtype of the products of the self-similarity matrices and their gradient (auto: bfloat16 on CPUs with "
        "native bfloat16 products, else float32); sums in float32")
    network_dtype: str = _dtype_option(
        "dtype of the loss network's convolutions at every step (auto: bfloat16 at every size on CPUs with native "
        "bfloat16 products, else float32); the style's and content's features and the hypercolumns stay float32")
    weights: str = option(DEFAULT_NETWORK, metavar="SET",
                          help="loss network weight set: hybrid (VGG-19's own relu1_1 ... relu3_1 from wct-vgg19, "
                          "cd16x's relu4_1, relu5_1: clearer shapes), cd16x (relu1_1 ... relu5_1: 0.6-0.7x the "
                          "time) or vgg19-caffe (relu1_1 ... relu3_3)")
    content_weight: float = option(
        1.0, help="the content weight (the paper's alpha is this x 16 at the coarsest scale, halved at each finer "
        "one); 0 ignores the content")
    style_mask: ImageLike | None = option(None, kind="mask", metavar="FILE",
                                          help="label map of the style (colour-coded regions)")
    content_mask: ImageLike | None = option(
        None, kind="mask", metavar="FILE",
        help="label map of the content: each region is painted with the style of the region of the same colour "
        "(needs a style mask)")

    def __post_init__(self) -> None:
        if self.weights not in NETWORK_LAYERS:
            raise InputError(f"unknown STROTSS network '{self.weights}' (choose from {', '.join(NETWORK_LAYERS)})",
                             option="weights")
        steps = _ints(self.steps, "steps")
        if self.fast and steps == DEFAULT_STEPS:
            steps = FAST_STEPS
        object.__setattr__(self, "steps", steps)
        if not steps or min(steps) < 1:
            raise InputError(f"steps (iterations per scale) must be at least 1, got {steps}", option="steps")
        if not self.lr > 0:
            raise InputError(f"lr must be positive, got {self.lr}", option="lr")
        samples = _ints(self.samples, "samples")
        while len(samples) > 1 and samples[-1] == samples[-2]:  # the last value repeats anyway
            samples = samples[:-1]
        # One value is kept as a number: the settings records and digests of earlier versions (batch job keys,
        # output names, `ottex info`) stay those of today's default runs.
        object.__setattr__(self, "samples", samples[0] if len(samples) == 1 else samples)
        if not samples or min(samples) < 2 or self.style_samples < 1:
            raise InputError(f"samples must be at least 2 and style samples at least 1, got "
                             f"{','.join(map(str, samples))}, {self.style_samples}", option="samples")
        if self.region_samples not in REGION_SAMPLES:
            raise InputError(f"unknown region sampling '{self.region_samples}' (choose from "
                             f"{', '.join(REGION_SAMPLES)})", option="region_samples")
        for name in ("match_dtype", "moment_dtype", "similarity_dtype", "network_dtype"):
            _check_dtype_choice(getattr(self, name), name)
        if not self.content_weight >= 0:
            raise InputError(f"content weight must be at least 0, got {self.content_weight}", option="content_weight")
        if (self.content_mask is None) != (self.style_mask is None):
            raise InputError("region guidance needs both a style mask and a content mask",
                             option="style_mask" if self.style_mask is None else "content_mask")


def _ints(value: int | str | Sequence[int], name: str) -> tuple[int, ...]:
    """A per-scale setting as a tuple of ints: from an int, ``"100,40"`` or a sequence of ints."""
    try:
        if isinstance(value, str):
            return parse_ints(value)
        if isinstance(value, numbers.Integral):
            return (operator.index(value),)
        return tuple(operator.index(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an int or comma-separated ints (one per scale), got {value!r}",
                         option=name) from None


def strotss(
    content: ImageLike,
    style: ImageLike,
    size: int | tuple[int, int] | None = None,
    *,
    content_weight: float = 1.0,
    content_mask: ImageLike | None = None,
    style_mask: ImageLike | None = None,
    steps: int | Sequence[int] = 250,
    fast: bool = False,
    lr: float = 2e-3,
    samples: int | Sequence[int] = 1024,
    style_samples: int = 5000,
    region_samples: str = "auto",
    network: str = DEFAULT_NETWORK,
    match_dtype: str = "auto",
    moment_dtype: str = "auto",
    similarity_dtype: str = "auto",
    network_dtype: str = "auto",
    seed: int | None = 0,
    device: str | torch.device | None = None,
    weights_dir: str | os.PathLike | None = None,
    progress: bool = False,
    history: list[dict] | None = None,
    callback: Callback | None = None,
    iterations: int | Sequence[int] | None = None,
) -> torch.Tensor:
    """Style transfer with STROTSS (Kolkin et al. 2019); see the module docstring for the losses and schedule.

    Args:
        content: content image (path or ``(1, 3, H, W)`` tensor in ``[0, 1]``).
        style: style image.
        size: long side of the output, at least 64 (default: the content's
            long side, as the other transfer methods of ottex; the paper and
            official code use 512). The aspect is the content's; scales have
            long sides ``size / 2**k`` down to at least 64. Or ``(height, width)``.
        content_weight: the user's content weight (the paper's alpha is this
            times 16 at the coarsest scale, halved at each finer scale); larger
            keeps more of the content's layout, 0 ignores it.
        content_mask: colour-coded region map of the content (needs ``style_mask``).
        style_mask: colour-coded region map of the style; the same colour marks
            corresponding regions (see :func:`ottex.image.masks.load_label_pair`).
        steps: RMSprop steps per scale (a sequence: per scale, coarse to
            fine, the last value repeating); 250 as the official code (``--steps``).
        fast: the quicker preset, :data:`FAST_STEPS` per scale (when
            ``steps`` is left at its default) and, on a CPU,
            ``region_samples`` ``"shared"`` (when left at ``"auto"``).
        lr: RMSprop learning rate; halved at the last scale.
        samples: output positions per step, or one number per scale (the last
            repeating, as ``steps``); with guidance: in every region, or
            split over the regions (see ``region_samples``).
        style_samples: style positions per scale (and per region).
        region_samples: with guidance, ``"each"`` (``samples`` positions in
            every region: the official code), ``"shared"`` (the ``samples``
            positions split over the regions by area, at least
            :data:`MIN_REGION_SAMPLES` each: about 1.2x an unguided run's time
            on a CPU, softer petals) or ``"auto"`` (``"each"``; ``"shared"``
            with ``fast`` on a CPU).
        network: loss network weight set: ``"cd16x"`` (relu1_1 ... relu5_1),
            ``"hybrid"`` (:data:`HYBRID_PARTS`: VGG-19's full-width relu1_1 ...
            relu3_1 from ``wct-vgg19``, ``cd16x``'s relu4_1 and relu5_1) or
            ``"vgg19-caffe"`` (relu1_1 ... relu3_3).
        match_dtype: dtype of the relaxed EMD's nearest-neighbour search
            (:func:`search_dtype`): ``"auto"``, ``"float32"`` or ``"bfloat16"``.
        moment_dtype: dtype of the products of the moment loss's covariance and
            its gradient; the same choices, ``"auto"`` resolved as for ``match_dtype``.
        similarity_dtype: dtype of the products of the self-similarity
            matrices and their gradient; the same choices.
        network_dtype: dtype of the loss network's convolutions at every step
            (autocast; the features are made float32 before the lookup, and
            the style's and content's, computed once a scale, stay float32);
            the same choices.
        seed: random seed of the sampled positions (``None``: random); the same
            seed gives the same image up to :data:`REPEAT_TOLERANCE`.
        device: ``auto``, ``cpu``, ``cuda`` or a device.
        weights_dir: folder searched first for the loss network's weights.
        progress: show a progress bar with the loss.
        history: if a list, one record per step is appended: ``scale``,
            ``size``, ``eval``, ``loss`` and the parts ``content``, ``remd``,
            ``moment``, ``palette`` (means over the regions).
        callback: progress subscriber (one event per step, with the loss and
            its parts); returning False cancels the run.
        iterations: the former name of ``steps`` (deprecated: a :class:`FutureWarning`).

    Returns:
        ``(1, 3, H, W)`` tensor in ``[0, 1]`` on the device.

    Raises:
        InputError: unknown network, bad steps / lr / samples / size /
            content weight, only one mask given, a mask that does not fit its image.

    Example:
        >>> out = strotss(photo, painting, 256, steps=100)  # doctest: +SKIP
        >>> out = strotss(photo, painting, content_mask="c_map.png", style_mask="s_map.png")  # doctest: +SKIP
    """
    steps = renamed_keyword(steps, iterations, "steps", "iterations", default=250)
    opts = StrotssOptions(steps=steps, fast=fast, lr=lr, samples=samples, style_samples=style_samples,
                          region_samples=region_samples, weights=network, match_dtype=match_dtype,
                          moment_dtype=moment_dtype, similarity_dtype=similarity_dtype,
                          network_dtype=network_dtype, content_weight=content_weight, style_mask=style_mask,
                          content_mask=content_mask)
    with run_callbacks(callback, progress=progress, desc="ottex strotss", history=history) as cb:
        return get_method("strotss", TRANSFER).transfer(content, style, size, opts, seed=seed, device=device,
                                                        weights_dir=weights_dir, callback=cb)  # checked as every run


@repeatable
def _transfer(
    content: ImageLike,
    style: ImageLike,
    size: int | tuple[int, int] | None,
    opts: StrotssOptions,
    *,
    seed: int | None = 0,
    device: str | torch.device | None = None,
    weights_dir: str | os.PathLike | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """The ``"strotss"`` method's style transfer (the registry's contract; see :func:`strotss`)."""
    long_side = size if size is None or isinstance(size, (int, float)) else max(size)
    if long_side is not None and long_side < COARSEST_SIDE:
        raise InputError(f"output size {size} is too small for STROTSS: a long side of at least {COARSEST_SIDE} px",
                         option="size")
    dev = prepare_device(device)
    content_img = check_example(as_image(content, dev, "content"), "content")
    style_img = check_example(as_image(style, dev, "style"))
    if size is None and max(content_img.shape[-2:]) < COARSEST_SIDE:
        raise InputError(f"the content ({content_img.shape[-1]}x{content_img.shape[-2]}) is too small for STROTSS: "
                         f"pass size >= {COARSEST_SIDE}", option="size")
    h, w = content_output_size(content_img.shape[-2:], size)
    masks = None
    if opts.content_mask is not None:
        s_masks, c_masks, _ = load_label_pair(opts.style_mask, opts.content_mask, device=dev,
                                              names=("style_mask", "content_mask"))
        check_mask_aspect(c_masks.shape[-2:], content_img.shape[-2:], "content mask", "content image")
        check_mask_aspect(s_masks.shape[-2:], style_img.shape[-2:], "style mask", "style image")
        masks = (c_masks, s_masks)
    net = loss_network(opts.weights, weights_dir, dev)
    layers = net.layers
    gen = make_generator(seed, dev)
    search = search_dtype(opts.match_dtype, dev)
    moment = search_dtype(opts.moment_dtype, dev, option="moment_dtype")
    similarity = search_dtype(opts.similarity_dtype, dev, option="similarity_dtype")
    conv_dtype = search_dtype(opts.network_dtype, dev, option="network_dtype")
    sizes = scale_sizes((h, w))
    steps = per_scale(opts.steps, len(sizes))
    samples = per_scale(_ints(opts.samples, "samples"), len(sizes))
    report = Reporter("strotss", callback, sizes, steps)
    image: torch.Tensor | None = None
    for si, hw in enumerate(sizes):
        report.begin_scale(si)
        last = si == len(sizes) - 1
        alpha = CONTENT_WEIGHT_SCALE * opts.content_weight / 2**si
        content_s = resize(content_img, hw)
        long_side = max(hw)
        sh, sw = style_img.shape[-2:]
        style_s = resize(style_img, (max(16, round(sh * long_side / max(sh, sw))),
                                     max(16, round(sw * long_side / max(sh, sw)))))
        if image is None:
            image = style_s.mean(dim=(-2, -1), keepdim=True) + _finest_band(content_s)
        else:
            image = _up(image, hw) + (0 if last else _finest_band(content_s))
        with torch.no_grad():
            content_feats = net(content_s, read_out=False)
            regions = _scale_regions(net(style_s, read_out=False), style_s, layers, hw, masks, opts.style_samples,
                                     gen, net, search)
        image = _optimise_scale(image, net, layers, content_s, content_feats, regions, alpha,
                                opts.lr / 2 if last else opts.lr, steps[si], samples[si], gen, report,
                                shared=_shares_region_samples(opts, dev), moment=moment, similarity=similarity,
                                conv_dtype=conv_dtype)
    assert image is not None
    report.finish(image)
    return image.clamp_(0, 1)


def _content_label(opts: StrotssOptions) -> str:
    return f"cw{label_number(opts.content_weight)}"


METHOD = register_method(Method(
    "strotss",
    "STROTSS (Kolkin et al. 2019): pixels optimised against relaxed EMD, moment and palette losses of sampled "
    "hypercolumns plus a self-similarity content loss",
    StrotssOptions,
    transfer=_transfer,
    reports_loss=True,
    content_label=_content_label,
    cost=RunCost(((0.066, 895.0, None), (0.175, 1490.0, 324.0), (0.262, 2086.0, None))),  # methods.cost: measured
))


def _scale_regions(
    style_feats: dict[str, torch.Tensor],
    style_s: torch.Tensor,
    layers: Sequence[str],
    hw: tuple[int, int],
    masks: tuple[torch.Tensor, torch.Tensor] | None,
    style_samples: int,
    gen: torch.Generator,
    net: VGGFeatures | HybridFeatures | None = None,
    search: torch.dtype | None = None,
) -> list[_Region]:
    """The regions of one scale, with their style samples (drawn once per scale; ``search``: the dtype of the
    cosine nearest-neighbour search)."""
    s_hw = tuple(style_s.shape[-2:])
    n_out, n_sty = hw[0] * hw[1], s_hw[0] * s_hw[1]
    dev = style_s.device
    if masks is None:
        parts = [(torch.ones(n_out, dtype=torch.bool, device=dev), torch.arange(n_sty, device=dev))]
    else:
        _, c_lab = _labels(masks[0], hw)
        s_weight, s_lab = _labels(masks[1], s_hw)
        parts = []
        for k in range(masks[0].shape[0]):
            out_k = c_lab == k
            if not bool(out_k.any()):
                continue  # a region too small to have a pixel at this scale
            sty_k = torch.nonzero(s_lab == k).flatten()
            if sty_k.numel() == 0:  # only soft pixels at this scale: take the strongest
                sty_k = torch.nonzero(s_weight[k] >= 0.5 * s_weight[k].max()).flatten()
            parts.append((out_k, sty_k))
    regions = []
    for out_k, sty_k in parts:
        idx = _draw(sty_k, style_samples, gen)
        hs = _hypercolumns(style_s, style_feats, layers, _pixel_grid(idx, s_hw), net)
        regions.append(_Region(labels_mask=out_k, style=_Cloud.of(hs, "cosine", search),
                               style_rgb=_Cloud.of(hs[:, :3].contiguous(), "palette"), style_moments=_moments(hs)))
    return regions


def _optimise_scale(
    image: torch.Tensor,
    net: VGGFeatures | HybridFeatures,
    layers: Sequence[str],
    content_s: torch.Tensor,
    content_feats: dict[str, torch.Tensor],
    regions: list[_Region],
    alpha: float,
    lr: float,
    steps: int,
    samples: int,
    gen: torch.Generator,
    report: Reporter,
    shared: bool = False,
    moment: torch.dtype | None = None,
    similarity: torch.dtype | None = None,
    conv_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """RMSprop over the Laplacian pyramid of ``image`` for ``steps`` steps; returns the image (no grad).

    ``shared``: the ``samples`` positions of a step are split over the regions (:func:`_region_counts`); else
    every region gets ``samples`` positions. Every loss is per region. With one region both are the same.
    ``moment``, ``similarity``: the dtypes of the moment loss's and the self-similarity's products; ``conv_dtype``:
    that of the loss network's convolutions (autocast; the features are made float32 before the lookups).
    """
    hw = tuple(image.shape[-2:])
    bands = [b.detach().clone().requires_grad_(True) for b in laplacian_pyramid(image)]
    opt = torch.optim.RMSprop(bands, lr=lr)
    palette_weight = 1.0 / max(alpha, 1.0)
    counts: list[int] = []
    for step in range(steps):
        if step % GRID_EVERY == 0:
            grid = _grid_mask(hw, gen, image.device)
            for r in regions:
                cand = torch.nonzero(r.labels_mask & grid).flatten()
                r.candidates = cand if cand.numel() else torch.nonzero(r.labels_mask).flatten()
            counts = _region_counts([r.candidates.numel() for r in regions], samples, shared)
        opt.zero_grad(set_to_none=True)
        x = reconstruct_pyramid(bands)
        # the read-outs are applied to the looked-up vectors only
        if conv_dtype is None:
            feats = net(x, read_out=False)
        else:
            with torch.autocast(x.device.type, dtype=conv_dtype):
                low = net(x, read_out=False)
            feats = {k: v.float() for k, v in low.items()}
        idx = [_draw(r.candidates, n, gen) for r, n in zip(regions, counts)]  # type: ignore[arg-type]
        g = _pixel_grid(torch.cat(idx), hw)  # one lookup for all regions: rows grouped by region
        hx = _hypercolumns(x, feats, layers, g, net)
        xu = _unit(hx)  # shared by the self-similarity and the relaxed EMD
        ends = list(itertools.accumulate(len(i) for i in idx))
        spans = list(zip([0, *ends[:-1]], ends))
        cu = None
        if alpha > 0:
            with torch.no_grad():
                cu = _unit(_hypercolumns(content_s, content_feats, layers, g, net))
        l_c = hx.new_zeros(())
        if cu is not None:  # the self-similarity of each region's positions
            l_c = sum(_self_similarity(xu[s:e], cu[s:e], similarity) for s, e in spans) / len(spans)
        style = hx.new_zeros(())
        parts = torch.zeros(3, device=x.device)
        for r, (s, e) in zip(regions, spans):
            l_r = _match(hx[s:e], r.style, "cosine", xu[s:e])
            l_m = moment_loss(hx[s:e], r.style_moments, moment)
            l_p = _match(hx[s:e, :3], r.style_rgb, "palette")
            style = style + l_r + l_m + palette_weight * l_p
            parts += torch.stack([l_r, l_m, l_p]).detach()
        loss = (alpha * l_c + style / len(regions)) / (alpha + 2.0)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        named = None
        if report.callback is not None:
            named = dict(zip(("content", "remd", "moment", "palette"),
                             [float(l_c.detach()), *(parts / len(regions)).tolist()]))
        report.step(loss=value, parts=named, image=lambda: reconstruct_pyramid(bands).detach().clamp(0, 1))
    with torch.no_grad():
        return reconstruct_pyramid(bands)


def _shares_region_samples(opts: StrotssOptions, device: torch.device | str = "cpu") -> bool:
    """Whether guided steps split their output positions over the regions: ``region_samples`` ``"shared"``, or
    ``"auto"`` in the ``fast`` preset on a CPU (on a GPU the per-region work is cheap: ``shared`` was no faster
    there and its style weaker, README "GPU"). ``auto`` stays in the options as given, so the settings records and
    output names of default runs are those they had when ``each`` was the default."""
    if opts.region_samples != "auto":
        return opts.region_samples == "shared"
    return opts.fast and torch.device(device).type == "cpu"


def _region_counts(available: Sequence[int], samples: int, shared: bool) -> list[int]:
    """Output positions per region for one step: ``samples`` each, or (``shared``) ``samples`` split in proportion
    to the regions' ``available`` positions, at least :data:`MIN_REGION_SAMPLES` (or all) each.

    Example:
        >>> _region_counts([9000, 1000], 1024, shared=True)
        [922, 128]
    """
    if not shared or len(available) == 1:
        return [samples] * len(available)
    total = max(1, sum(available))
    return [min(a, max(MIN_REGION_SAMPLES, round(samples * a / total))) for a in available]
