"""Feature losses: values against direct numpy/scipy computations, finite-difference gradients, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from ottex.core.errors import InputError
from ottex.nn.losses import (
    GaussianW2Loss,
    GramLoss,
    SlicedWassersteinLoss,
    content_loss,
    gaussian_w2_loss,
    gram_loss,
    make_style_loss,
    sliced_wasserstein_loss,
    trace_sqrtm,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gaussian_w2_matches_scipy():
    x = torch.randn(1, 4, 6, 5, generator=gen(0), dtype=torch.float64)
    s = torch.randn(1, 4, 7, 7, generator=gen(1), dtype=torch.float64) * 2 + 1
    xs, ss = x[0].reshape(4, -1).numpy(), s[0].reshape(4, -1).numpy()
    mx, ms = xs.mean(1), ss.mean(1)
    cx, cs = np.cov(xs, bias=True), np.cov(ss, bias=True)
    rs = scipy.linalg.sqrtm(cs).real
    cross = np.trace(scipy.linalg.sqrtm(rs @ cx @ rs).real)
    expected = ((mx - ms) ** 2).sum() + np.trace(cx) + np.trace(cs) - 2 * cross
    got = gaussian_w2_loss(x, torch.from_numpy(ms), torch.from_numpy(cs))
    assert got.shape == (1,)
    assert float(got) == pytest.approx(expected, rel=1e-7, abs=1e-9)


def test_gaussian_w2_gradient_by_finite_differences():
    s = torch.randn(1, 3, 5, 5, generator=gen(1), dtype=torch.float64)
    mu, cov = s[0].reshape(3, -1).mean(1), torch.cov(s[0].reshape(3, -1), correction=0)
    x = torch.randn(1, 3, 4, 4, generator=gen(2), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: gaussian_w2_loss(t, mu, cov), (x,), eps=1e-6, atol=1e-6)


def test_gaussian_w2_rank_deficient_stays_finite():
    s = torch.randn(1, 8, 2, 2, generator=gen(3))  # 4 samples in 8 dimensions: rank 3
    x = torch.zeros(1, 8, 3, 3)
    x[:, 0] = torch.randn(3, 3, generator=gen(4))  # rank 1, many zero eigenvalues
    x.requires_grad_(True)
    value = GaussianW2Loss({"l": s})({"l": x})
    value.sum().backward()
    assert torch.isfinite(value).all() and torch.isfinite(x.grad).all()
    assert float(GaussianW2Loss({"l": s})({"l": s})) == pytest.approx(0, abs=1e-4)


def test_trace_sqrtm():
    m = torch.diag(torch.tensor([4.0, 9.0, 0.0], dtype=torch.float64)).requires_grad_(True)
    t = trace_sqrtm(m)
    t.backward()
    assert float(t.detach()) == pytest.approx(5.0)
    assert torch.isfinite(m.grad).all()
    assert float(m.grad[0, 0]) == pytest.approx(0.25) and float(m.grad[2, 2]) == 0.0  # frozen zero eigenvalue


def test_gram_and_content_losses():
    f = torch.randn(2, 3, 4, 4, generator=gen(5))
    g = (f[0].reshape(3, 16) @ f[0].reshape(3, 16).T) / 16
    val = gram_loss(f, g)
    assert val.shape == (2,) and float(val[0]) == pytest.approx(0, abs=1e-6) and float(val[1]) > 0
    assert float(GramLoss({"l": f[:1]})({"l": f[:1]})) == pytest.approx(0, abs=1e-6)
    assert float(content_loss(f, f).sum()) == 0
    torch.testing.assert_close(content_loss(f, torch.zeros_like(f)), f.pow(2).mean(dim=(1, 2, 3)))


def test_sliced_loss_zero_on_itself_and_drives_down():
    s = torch.randn(1, 4, 8, 8, generator=gen(6)) * 3 + 2
    assert float(sliced_wasserstein_loss(s, s, gen(0))) == pytest.approx(0, abs=1e-6)
    x = torch.randn(1, 4, 6, 6, generator=gen(7)).requires_grad_(True)  # other size: quantiles resampled
    loss = SlicedWassersteinLoss({"l": s}, gen(1))
    opt = torch.optim.Adam([x], lr=0.1)
    first = float(loss({"l": x}).detach())
    for _ in range(150):
        opt.zero_grad()
        loss({"l": x}).backward()
        opt.step()
    assert float(loss({"l": x}).detach()) < 0.05 * first


def test_unknown_loss_and_bad_shape():
    with pytest.raises(InputError, match="unknown style loss"):
        make_style_loss("fancy", {"l": torch.rand(1, 2, 3, 3)})
    with pytest.raises(InputError, match="features"):
        gaussian_w2_loss(torch.rand(2, 3), torch.zeros(2), torch.eye(2))
