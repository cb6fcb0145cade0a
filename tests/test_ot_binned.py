"""binned_sort_match: the linear-time 1D OT of long rows, checked against the exact sort-based match."""

from __future__ import annotations

import pytest
import torch

from ottex.core.errors import InputError
from ottex.ot import binned_sort_match, sort_match, sort_values


def _rows(n: int = 200_000) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    gauss = torch.randn(n, generator=g)
    skewed = torch.randn(n, generator=g) ** 2  # chi-squared: most values near 0, a long right tail
    spiky = torch.randn(n, generator=g).relu()  # half the values exactly 0 (ties), like ReLU features
    return torch.stack([gauss, skewed, spiky])


@pytest.mark.parametrize("chunk", [1 << 22, 7_777])
def test_matches_the_exact_sort_match_closely(chunk):
    x = _rows()
    target = torch.rand(3, 5000, generator=torch.Generator().manual_seed(1)) * 4 - 1
    exact = sort_match(x, target, dim=-1)
    approx = binned_sort_match(x, target, chunk=chunk)
    err = (approx - exact).abs()
    spread = sort_values(target).std(dim=-1)
    # continuous rows: the ranks are off by a fraction of one fine bin (N / 65536 = 3 values)
    assert float((err[:2].mean(dim=-1) / spread[:2]).max()) < 2e-4
    assert float((err[:2].max(dim=-1).values / spread[:2]).max()) < 0.05
    # ties (half the row exactly 0): the exact match spreads them over their quantiles in index order; here they
    # all take the quantile of their middle rank, and the other values match as before
    zeros = x[2] == 0
    assert float(approx[2][zeros].std()) < 1e-6
    assert float(approx[2][zeros][0]) == pytest.approx(float(torch.quantile(target[2], 0.25)), abs=0.01)
    assert float(err[2][~zeros].mean() / spread[2]) < 2e-4


def test_output_has_the_target_distribution_and_keeps_the_order():
    x = _rows()[:2]
    target = torch.randn(2, 3000, generator=torch.Generator().manual_seed(2)) * 3 + 5
    out = binned_sort_match(x, target)
    assert out.shape == x.shape
    order = x.argsort(dim=-1)
    assert bool((out.gather(-1, order).diff(dim=-1) >= -1e-5).all())  # monotone in the source's order
    tq = sort_values(target)
    assert bool((out >= tq[:, :1] - 1e-5).all()) and bool((out <= tq[:, -1:] + 1e-5).all())
    assert torch.allclose(out.mean(dim=-1), target.mean(dim=-1), atol=0.01)
    assert torch.allclose(out.std(dim=-1), target.std(dim=-1), rtol=0.01)


def test_leading_dimensions_broadcast_and_dtype_and_device_kept():
    x = torch.randn(2, 3, 10_000, dtype=torch.float64)
    target = torch.rand(3, 500, dtype=torch.float64)
    out = binned_sort_match(x, target)
    assert out.shape == x.shape and out.dtype == torch.float64 and out.device == x.device
    assert torch.allclose(out[1], binned_sort_match(x[1], target))


def test_sorted_target_flag_gives_the_same_result():
    x = torch.randn(2, 5000)
    target = torch.randn(2, 400)
    assert torch.equal(binned_sort_match(x, target), binned_sort_match(x, sort_values(target), target_sorted=True))


def test_constant_row_stays_finite():
    out = binned_sort_match(torch.ones(1, 1000), torch.arange(10.0)[None])
    assert bool(out.isfinite().all())


@pytest.mark.parametrize(
    ("source", "target", "kwargs", "match"),
    [
        (torch.randn(10), torch.randn(1, 10), {}, "rows"),
        (torch.randn(2, 10), torch.randn(3, 10), {}, "2 rows but target has 3"),
        (torch.randn(2, 10), torch.randn(2, 1), {}, "at least 2 samples"),
        (torch.randn(2, 10), torch.randn(2, 5), {"bins": 0}, "positive"),
    ],
)
def test_errors(source, target, kwargs, match):
    with pytest.raises(InputError, match=match):
        binned_sort_match(source, target, **kwargs)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_refuses_nan_and_infinite_values(bad):
    """A NaN in the source crashed with 'index -9223372036854775808 is out of bounds'."""
    x = torch.randn(2, 1000, generator=torch.Generator().manual_seed(0))
    y = torch.randn(2, 50, generator=torch.Generator().manual_seed(1))
    x[0, 5] = bad
    with pytest.raises(InputError, match="source holds NaN or infinite values"):
        binned_sort_match(x, y)
    x[0, 5] = 0
    y[1, 3] = bad
    with pytest.raises(InputError, match="target holds NaN or infinite values"):
        binned_sort_match(x, y)
