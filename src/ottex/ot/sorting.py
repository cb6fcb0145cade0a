"""Sorting, subsampling and quantiles of sample clouds: the building blocks of exact 1D optimal transport.

NumPy's vectorised (AVX2/AVX-512) sorts are 3-15x faster than ``torch.sort`` on
CPU for the long rows of feature clouds; :func:`sort_values` and :func:`argsort`
use them where they give the same result, torch elsewhere. NumPy's vectorised
sorts are of values, not indices: :func:`argsort` of float32 rows sorts 64-bit
keys that hold each value's bits (made order-preserving) above its index, and
sorts several rows on as many threads as torch's.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

__all__ = ["subsample", "sort_values", "argsort", "quantiles"]


def _numpy_sortable(x: torch.Tensor, dim: int) -> bool:
    """Whether ``x`` is sorted faster by NumPy: a CPU float tensor outside autograd, sorted along its last dim.

    NumPy's vectorised (AVX2/AVX-512) sorts are 3-15x faster than ``torch.sort``
    on CPU for the long rows of feature clouds; CUDA tensors and anything that
    needs gradients stay with torch.
    """
    return (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and not (x.requires_grad and torch.is_grad_enabled())
        and dim in (-1, x.dim() - 1)
        and x.numel() >= 4096
    )


def subsample(x: torch.Tensor, n: int, generator: torch.Generator | None = None, dim: int = -1) -> torch.Tensor:
    """At most ``n`` samples of ``x`` along ``dim``, drawn without replacement (``x`` itself when it has no more).

    Example:
        >>> subsample(torch.rand(3, 1000), 100, torch.Generator().manual_seed(0)).shape
        torch.Size([3, 100])
    """
    if x.shape[dim] <= n:
        return x
    device = generator.device if generator is not None else x.device
    idx = torch.randperm(x.shape[dim], generator=generator, device=device)[:n]
    return x.index_select(dim, idx.to(x.device))


def sort_values(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``torch.sort(x, dim).values``, by NumPy on CPU where that is faster (same result)."""
    if _numpy_sortable(x, dim):
        return torch.from_numpy(np.sort(x.detach().contiguous().numpy(), axis=-1))
    return x.sort(dim=dim).values


def argsort(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Indices that sort ``x`` along ``dim`` (ties in any order), by NumPy on CPU where that is faster.

    On CPU, float32 rows are sorted as 64-bit keys (:func:`_argsort_rows`), and from a million values on, the rows
    are split among torch's threads: 1.4-1.9x as fast as NumPy's ``argsort`` on one thread, 2.1-2.8x on two
    (``benchmarks/sorting.py``; docs/benchmarks.md, "Sorting").

    Example:
        >>> x = torch.tensor([[3.0, -1.0, 2.0], [0.5, 0.25, -0.0]])
        >>> argsort(x)
        tensor([[1, 2, 0],
                [2, 1, 0]])
    """
    if _numpy_sortable(x, dim):
        a = x.detach().contiguous().numpy()
        if a.dtype != np.float32 or a.shape[-1] >= 1 << 32:
            return torch.from_numpy(np.argsort(a, axis=-1))
        return torch.from_numpy(_by_rows(_argsort_rows, a))
    return x.argsort(dim=dim)


_SIGN = np.uint32(0x80000000)
_LOW = np.uint64(0xFFFFFFFF)


def _argsort_rows(a: np.ndarray) -> np.ndarray:
    """Indices that sort float32 rows (fewer than 2**32 values each) along the last axis, by one sort of 64-bit
    integer keys: each value's bits made order-preserving (a negative's all flipped, a positive's sign bit set)
    above its index, so NumPy's vectorised integer sort does the work; the low halves are the indices. Equal values
    keep their positions' order, except that -0.0 comes before 0.0; NaNs come last, as with ``np.argsort``."""
    u = a.view(np.uint32)
    nan = np.isnan(a)
    if nan.any():  # every NaN as the largest positive one (a negative NaN's bits would sort it first)
        u = np.where(nan, np.uint32(0x7FFFFFFF), u)
    key = (u ^ ((u >> np.uint32(31)) * np.uint32(0x7FFFFFFF) | _SIGN)).astype(np.uint64)
    key <<= np.uint64(32)
    key |= np.arange(a.shape[-1], dtype=np.uint64)
    key.sort(axis=-1)
    out = np.empty(key.shape, np.int64)
    np.bitwise_and(key, _LOW, out=out.view(np.uint64))
    return out


#: Values per call from which :func:`_by_rows` splits the rows among threads.
_THREADED_VALUES = 1 << 20
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _forget_pool() -> None:
    """In a forked child: the parent's pool threads do not exist there (and its lock may be held): start afresh."""
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _by_rows(fn, a: np.ndarray) -> np.ndarray:  # noqa: ANN001  (a function of rows to rows of the same shape)
    """``fn(a)`` for a function applied row by row along the last axis, the rows split among torch's intra-op
    threads (NumPy's sorts release the GIL) when there are several and enough values."""
    threads = min(torch.get_num_threads(), os.cpu_count() or 1)
    rows = a.reshape(-1, a.shape[-1])
    if threads < 2 or rows.shape[0] < 2 or a.size < _THREADED_VALUES:
        return fn(a)
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="ottex-sort")
        pool = _POOL
    bounds = np.linspace(0, rows.shape[0], min(threads, rows.shape[0]) + 1).astype(int)
    parts = pool.map(lambda i: fn(rows[bounds[i] : bounds[i + 1]]), range(len(bounds) - 1))
    return np.concatenate(list(parts)).reshape(a.shape)


def quantiles(sorted_values: torch.Tensor, n: int, dim: int = -2) -> torch.Tensor:
    """Resample sorted samples to ``n`` evenly spaced quantiles.

    Quantile ``i`` is taken at probability ``(i + 0.5) / n`` of the empirical
    distribution, linearly interpolated between the ``M`` sorted samples
    (each sample sits at probability ``(j + 0.5) / M``).

    Args:
        sorted_values: ``(*, M, C)`` sorted along ``dim``.
        n: number of quantiles.
        dim: the sample dimension.

    Returns:
        Same shape with ``n`` samples along ``dim``; the input itself when ``n == M``.
    """
    m = sorted_values.shape[dim]
    if m == n:
        return sorted_values
    pos = (torch.arange(n, device=sorted_values.device, dtype=torch.float64) + 0.5) * (m / n) - 0.5
    pos = pos.clamp_(0, m - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp_(max=m - 1)
    shape = [1] * sorted_values.dim()
    shape[dim] = n
    w = (pos - lo).to(sorted_values.dtype).reshape(shape)
    return torch.lerp(sorted_values.index_select(dim, lo), sorted_values.index_select(dim, hi), w)
