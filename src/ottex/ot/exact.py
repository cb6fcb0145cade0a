"""Exact 1D optimal transport of every column of a cloud: matching, distances, fitted maps."""

from __future__ import annotations

import torch

from ..core.checks import check_cloud, check_clouds
from ..core.errors import InputError
from .sorting import argsort, quantiles, sort_values

__all__ = ["sort_match", "monotone_map", "wasserstein_1d"]


def sort_match(
    source: torch.Tensor,
    target: torch.Tensor,
    target_sorted: bool = False,
    dim: int = -2,
) -> torch.Tensor:
    """Exact 1D optimal transport of every column of ``source`` onto ``target``.

    Each column of the source is replaced by the target's quantiles in the
    order of the source's ranks: the monotone (optimal for any convex cost) map
    between the two 1D empirical distributions. ``N != M`` is allowed; the
    target quantiles are then interpolated.

    Args:
        source: ``(*, N, C)`` samples to move.
        target: ``(*, M, C)`` samples of the target distribution (leading
            dimensions broadcast against the source's).
        target_sorted: ``target`` is already sorted along ``dim``.
        dim: the sample dimension; ``-1`` takes channels-first ``(*, C, N)``
            clouds, which sort faster on CPU.

    Returns:
        Tensor shaped like ``source`` with, column by column, the target's
        distribution and the source's ordering.

    Example:
        >>> x = torch.randn(1000, 4)
        >>> y = torch.rand(500, 4) * 10
        >>> z = sort_match(x, y)
        >>> z.shape
        torch.Size([1000, 4])
    """
    check_cloud(source, "source")
    check_cloud(target, "target")
    cdim = -1 if dim == -2 else -2
    if source.shape[cdim] != target.shape[cdim]:
        raise InputError(f"source has {source.shape[cdim]} channels but target has {target.shape[cdim]}")
    tq = quantiles(target if target_sorted else sort_values(target, dim), source.shape[dim], dim)
    tq = tq.to(source.dtype).expand_as(source)
    order = argsort(source, dim)
    return torch.empty_like(source).scatter_(dim, order, tq)


def monotone_map(x: torch.Tensor, source_sorted: torch.Tensor, target_sorted: torch.Tensor) -> torch.Tensor:
    """Apply the 1D OT map fitted on samples to new values, every row at once.

    The map sends the ``j``-th sorted source sample to the target's quantile of
    the same rank; between samples it is linear, beyond the ends a translation.
    Fitting on a subsample and applying to all pixels makes exact 1D OT of a
    4K image cheap (colour transfer).

    Args:
        x: ``(*, C, N)`` values to map (channels first).
        source_sorted: ``(*, C, M)`` sorted source samples.
        target_sorted: ``(*, C, K)`` sorted target samples (resampled to ``M`` quantiles).

    Returns:
        ``(*, C, N)`` mapped values.

    Example:
        >>> src = torch.linspace(0, 1, 11)[None]
        >>> monotone_map(torch.tensor([[0.25, 2.0]]), src, 2 * src)
        tensor([[0.5000, 3.0000]])
    """
    m = source_sorted.shape[-1]
    tq = quantiles(target_sorted, m, dim=-1).to(x.dtype)
    src = source_sorted.to(x.dtype).contiguous()
    if m == 1:  # one source value (a 1-pixel image): no segments to interpolate, the shift onto its quantile
        return tq + (x - src)
    hi = torch.searchsorted(src, x.contiguous()).clamp_(1, max(m - 1, 1))
    lo = hi - 1
    s0, s1 = src.gather(-1, lo), src.gather(-1, hi)
    t0, t1 = tq.gather(-1, lo), tq.gather(-1, hi)
    w = ((x - s0) / (s1 - s0).clamp_min(1e-12)).clamp_(0, 1)
    y = t0 + w * (t1 - t0)
    below, above = x < src[..., :1], x > src[..., -1:]
    y = torch.where(below, tq[..., :1] + (x - src[..., :1]), y)
    return torch.where(above, tq[..., -1:] + (x - src[..., -1:]), y)


def wasserstein_1d(u: torch.Tensor, v: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Exact p-Wasserstein distance between the 1D empirical distributions of every column.

    Uniform weights; ``N != M`` allowed (the quantile functions are compared on
    the merged grid of their breakpoints).

    Args:
        u: ``(*, N, C)`` samples.
        v: ``(*, M, C)`` samples.
        p: order of the distance (``>= 1``).

    Returns:
        ``(*, C)``: ``W_p`` per column (not raised to ``p``).

    Raises:
        InputError: a cloud is empty or not ``(*, N, C)``, the numbers of columns differ, or ``p < 1``. (Integer
            samples are compared as floats.)
    """
    u, v = check_clouds(u, v, ("u", "v"), p)
    n, m = u.shape[-2], v.shape[-2]
    # Sort with the sample dimension last: contiguous sorts are much faster on CPU.
    us = sort_values(u.transpose(-1, -2))
    vs = sort_values(v.transpose(-1, -2))
    if n == m:
        return (us - vs).abs().pow(p).mean(dim=-1).pow(1.0 / p)
    dev = u.device
    f64 = torch.float64
    t = torch.cat([torch.arange(1, n + 1, device=dev, dtype=f64) / n,
                   torch.arange(1, m + 1, device=dev, dtype=f64) / m])
    t = t.sort().values
    width = torch.diff(t, prepend=t.new_zeros(1))
    mid = t - width / 2
    iu = (mid * n).floor().long().clamp_(0, n - 1)
    iv = (mid * m).floor().long().clamp_(0, m - 1)
    diff = (us.index_select(-1, iu) - vs.index_select(-1, iv)).abs().pow(p)
    return (diff * width.to(diff.dtype)).sum(dim=-1).pow(1.0 / p)
