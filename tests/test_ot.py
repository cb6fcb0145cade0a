"""OT primitives checked against their definitions and against POT / scipy."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import ot as pot
import pytest
import scipy.linalg
import torch

from ottex.core.errors import InputError
from ottex.ot import (
    apply_mapping,
    argsort,
    bures_wasserstein_mapping,
    gaussian_mapping,
    gaussian_wasserstein_distance,
    mean_cov,
    pca_basis,
    quantiles,
    random_rotation,
    sliced_match,
    sliced_wasserstein_distance,
    sort_match,
    sort_values,
    sqrtm_psd,
    wasserstein_1d,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- exact 1D OT


def test_sort_match_reproduces_target_and_keeps_order():
    x = torch.randn(500, 6, generator=gen(0))
    y = torch.rand(500, 6, generator=gen(1)) * 3 + 2
    z = sort_match(x, y)
    assert torch.equal(z.sort(0).values, y.sort(0).values)  # exactly the target's values per column
    assert torch.equal(z.argsort(0), x.argsort(0))  # monotone: the source's order is kept


def test_sort_match_unequal_sizes_gives_target_quantiles():
    x = torch.randn(1000, 3, generator=gen(0))
    y = torch.randn(250, 3, generator=gen(1)) * 5 + 1
    z = sort_match(x, y)
    assert z.shape == x.shape
    q = quantiles(y.sort(0).values, 1000)
    assert torch.allclose(z.sort(0).values, q)
    assert torch.allclose(q.mean(0), y.mean(0), atol=0.05)
    # monotone map: larger source value -> larger-or-equal target value
    zs = z.gather(0, x.argsort(0))
    assert (zs[1:] >= zs[:-1] - 1e-6).all()


def test_sort_match_batched_and_channels_first_agree():
    x = torch.randn(2, 300, 4, generator=gen(0))
    y = torch.randn(200, 4, generator=gen(1))
    a = sort_match(x, y)
    b = sort_match(x.transpose(-1, -2), y.T, dim=-1).transpose(-1, -2)
    assert torch.equal(a, b)
    assert torch.equal(a[1], sort_match(x[1], y))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_sorts_agree_with_torch(dtype):
    x = torch.randn(3, 5, 7000, dtype=dtype)  # large enough for the NumPy path
    assert torch.equal(sort_values(x), x.sort(dim=-1).values)
    idx = argsort(x)
    assert idx.dtype == torch.int64 and sort_values(x).dtype == dtype
    assert torch.equal(x.gather(-1, idx), x.sort(dim=-1).values)
    xt = x.transpose(-1, -2)  # another dim goes through torch
    assert torch.equal(sort_values(xt, dim=-2), xt.sort(dim=-2).values)
    g = x.clone().requires_grad_()
    sort_values(g).sum().backward()  # gradients flow (torch path under autograd)
    assert torch.equal(g.grad, torch.ones_like(x))


def test_argsort_of_float32_keys_orders_special_values_and_ties_like_torch():
    """The 64-bit-key sort of float32 rows: signed zeros, infinities, subnormals, ties and the largest magnitudes
    come out in order; ties keep their positions' order (the sort is stable), as torch's stable sort does."""
    special = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), 1e-45, -1e-45, 3.4e38, -3.4e38, 1.0, -1.0])
    ties = torch.randn(8000, generator=gen()).round(decimals=1) + 0.0  # many ties; + 0.0 makes -0.0 a 0.0
    x = torch.cat([special, ties]).repeat(2, 1)
    idx = argsort(x)
    assert idx.dtype == torch.int64 and idx.shape == x.shape
    assert torch.equal(x.gather(-1, idx), x.sort(dim=-1).values)
    # NaNs last, whatever their sign bit, as NumPy and torch put them
    nans = torch.tensor([float("nan"), 1.0, -float("nan"), -2.0] * 1200).reshape(2, -1)
    assert torch.equal(argsort(nans)[:, -1200:].sort(-1).values, nans.isnan().nonzero()[:, 1].reshape(2, -1))
    # a transposed (not contiguous) view
    xt = x.T.contiguous().T
    assert torch.equal(x.gather(-1, argsort(xt)), x.sort(dim=-1).values)
    # stable, as torch's stable sort, except among the zeros: the one -0.0 comes before every 0.0 (equal values)
    ref = x.sort(dim=-1, stable=True).indices
    nonzero = x.gather(-1, ref) != 0
    assert torch.equal(idx[nonzero], ref[nonzero])


@pytest.mark.parametrize("threads", [1, 2])
def test_argsort_splits_rows_among_threads_with_the_same_result(threads, monkeypatch):
    from ottex.ot import sorting

    x = torch.randn(7, 20000, generator=gen(1))
    one = argsort(x)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    monkeypatch.setattr(sorting.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(sorting, "_THREADED_VALUES", 1000)
    calls = []
    rows = sorting._argsort_rows
    monkeypatch.setattr(sorting, "_argsort_rows", lambda a: calls.append(a.shape) or rows(a))
    assert torch.equal(argsort(x), one)
    assert len(calls) == threads and sum(c[0] for c in calls) == 7


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_argsort_works_in_a_forked_process(monkeypatch):
    """The sorting threads of a parent do not exist in a fork: the child makes its own (it hung before)."""
    from ottex.ot import sorting

    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(sorting.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(sorting, "_THREADED_VALUES", 1000)
    x = torch.randn(4, 50000, generator=gen(2))
    expected = argsort(x)  # the parent's pool exists now
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 if its argsort agrees (compared by NumPy: torch's OpenMP threads do
        # not survive a fork either, so torch.equal could hang there)
        os._exit(0 if np.array_equal(argsort(x).numpy(), expected.numpy()) else 1)
    for _ in range(600):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("argsort in a forked process did not finish in 30 s")
    assert os.waitstatus_to_exitcode(status) == 0


def test_quantiles_identity_and_interpolation():
    v = torch.arange(4.0).reshape(4, 1)
    assert quantiles(v, 4) is v
    q = quantiles(v, 8)  # quantile i at probability (i + .5)/8; sample j sits at (j + .5)/4
    assert torch.allclose(q[:, 0], torch.tensor([0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sort_match_keeps_dtype(dtype):
    x = torch.randn(50, 2, dtype=dtype)
    assert sort_match(x, torch.randn(40, 2, dtype=dtype)).dtype == dtype


def test_sort_match_errors():
    with pytest.raises(InputError):
        sort_match(torch.randn(5, 3), torch.randn(5, 4))
    with pytest.raises(InputError):
        sort_match(torch.randn(0, 3), torch.randn(5, 3))
    with pytest.raises(InputError):
        sort_match(torch.randn(5), torch.randn(5))


@pytest.mark.parametrize("n,m", [(300, 300), (300, 170)])
@pytest.mark.parametrize("p", [1.0, 2.0])
def test_wasserstein_1d_matches_pot(n, m, p):
    u = torch.randn(n, 3, generator=gen(0), dtype=torch.float64)
    v = torch.rand(m, 3, generator=gen(1), dtype=torch.float64) * 2
    ours = wasserstein_1d(u, v, p=p).numpy()
    ref = pot.wasserstein_1d(u.numpy(), v.numpy(), p=p) ** (1 / p)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)  # POT accumulates its weights in floating point


def test_wasserstein_1d_zero_for_permutation():
    u = torch.randn(100, 2, generator=gen(3))
    assert wasserstein_1d(u, u[torch.randperm(100)]).abs().max() == 0


# ---------------------------------------------------------------- sliced OT


@pytest.mark.parametrize("n", [2, 3, 17])
def test_random_rotation_is_a_rotation(n):
    r = random_rotation(n, gen(n), dtype=torch.float64)
    assert torch.allclose(r @ r.T, torch.eye(n, dtype=torch.float64), atol=1e-12)
    assert torch.linalg.det(r).item() == pytest.approx(1.0, abs=1e-10)
    assert torch.equal(r, random_rotation(n, gen(n), dtype=torch.float64))  # repeatable under a seed
    assert not torch.equal(r, random_rotation(n, gen(n + 100), dtype=torch.float64))


def test_random_rotation_dtype():
    assert random_rotation(4, gen(), dtype=torch.float32).dtype == torch.float32


def test_sliced_match_drives_sliced_wasserstein_down():
    x = torch.randn(2000, 5, generator=gen(0))
    y = torch.rand(1500, 5, generator=gen(1)) ** 2 * 4 + torch.tensor([3.0, -2, 0, 1, 5])
    dirs = torch.nn.functional.normalize(torch.randn(5, 64, generator=gen(9)), dim=0)
    before = sliced_wasserstein_distance(x, y, directions=dirs)
    after = sliced_match(x, y, iterations=30, generator=gen(2))
    d_after = sliced_wasserstein_distance(after, y, directions=dirs)
    assert d_after < 0.05 * before
    assert torch.allclose(after.mean(0), y.mean(0), atol=0.02)


def test_sliced_wasserstein_distance_properties():
    x = torch.randn(400, 3, generator=gen(0))
    assert sliced_wasserstein_distance(x, x, generator=gen(1)) == 0
    shifted = sliced_wasserstein_distance(x, x + 1.0, generator=gen(1))
    assert shifted > 0.3
    norm = sliced_wasserstein_distance(x, x + 1.0, generator=gen(1), normalize=True)
    norm10 = sliced_wasserstein_distance(x * 10, x * 10 + 10.0, generator=gen(1), normalize=True)
    assert norm10 == pytest.approx(norm.item(), rel=1e-4)  # scale-free when normalised


# ---------------------------------------------------------------- Gaussian OT


def _cloud(n: int, c: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    mix = torch.randn(c, c, generator=gen(seed + 1000), dtype=torch.float64)
    return torch.randn(n, c, generator=gen(seed), dtype=torch.float64) @ mix * scale + shift


@pytest.mark.parametrize("method", ["sym", "chol", "pca"])
def test_gaussian_mapping_reproduces_target_moments(method):
    xs, xt = _cloud(3000, 4, 0), _cloud(2000, 4, 1, scale=2.0, shift=3.0)
    a, b = bures_wasserstein_mapping(xs, xt, method=method, eps=0)
    mapped = apply_mapping(xs, a, b)
    m1, c1 = mean_cov(mapped)
    m2, c2 = mean_cov(xt)
    assert torch.allclose(m1, m2, atol=1e-8)
    assert torch.allclose(c1, c2, rtol=1e-6, atol=1e-8)


def test_bures_map_matches_pot_and_is_symmetric():
    xs, xt = _cloud(1000, 3, 2), _cloud(800, 3, 3, scale=0.5, shift=-1.0)
    a, b = bures_wasserstein_mapping(xs, xt, eps=0)
    assert torch.allclose(a, a.T, atol=1e-10)
    assert (torch.linalg.eigvalsh(a) > 0).all()
    ms, cs = mean_cov(xs)
    mt, ct = mean_cov(xt)
    a_ref, b_ref = pot.gaussian.bures_wasserstein_mapping(ms.numpy(), mt.numpy(), cs.numpy(), ct.numpy())
    np.testing.assert_allclose(a.numpy(), a_ref, rtol=1e-7, atol=1e-9)  # A is symmetric: no transpose issue
    np.testing.assert_allclose(b.numpy(), b_ref.ravel(), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("method", ["sym", "chol", "pca"])
def test_gaussian_mapping_rank_deficient_stays_finite(method):
    flat = torch.zeros(500, 4, dtype=torch.float64)
    flat[:, :2] = torch.randn(500, 2, generator=gen(4), dtype=torch.float64)  # rank 2 in 4D
    xt = _cloud(500, 4, 5)
    a, b = bures_wasserstein_mapping(flat, xt, method=method)
    assert torch.isfinite(a).all() and torch.isfinite(b).all()
    a2, b2 = bures_wasserstein_mapping(xt, flat, method=method)
    out = apply_mapping(xt, a2, b2)
    assert torch.isfinite(out).all()
    assert out[:, 2:].abs().max() < 1e-2  # lands (almost) in the target's subspace


def test_gaussian_mapping_unknown_method():
    c = torch.eye(2)
    with pytest.raises(InputError):
        gaussian_mapping(torch.zeros(2), c, torch.zeros(2), c, method="nope")


def test_sqrtm_psd_against_scipy():
    c = mean_cov(_cloud(200, 5, 6))[1]
    root = sqrtm_psd(c)
    np.testing.assert_allclose(root.numpy(), scipy.linalg.sqrtm(c.numpy()).real, rtol=1e-7, atol=1e-9)
    inv = sqrtm_psd(c, inverse=True)
    assert torch.allclose(inv @ c @ inv, torch.eye(5, dtype=torch.float64), atol=1e-8)


def test_gaussian_wasserstein_distance_closed_form():
    (m1, c1), (m2, c2) = mean_cov(_cloud(300, 3, 7)), mean_cov(_cloud(300, 3, 8, shift=1.0))
    ours = gaussian_wasserstein_distance(m1, c1, m2, c2).item()
    c2h = scipy.linalg.sqrtm(c2.numpy()).real
    ref = ((m1 - m2) ** 2).sum().item() + np.trace(c1.numpy()) + np.trace(c2.numpy()) - 2 * np.trace(
        scipy.linalg.sqrtm(c2h @ c1.numpy() @ c2h).real
    )
    assert ours == pytest.approx(ref, rel=1e-8)
    assert gaussian_wasserstein_distance(m1, c1, m1, c1).item() == pytest.approx(0.0, abs=1e-9)


def test_pca_basis_keeps_requested_variance():
    std = torch.tensor([10.0, 5.0, 1.0, 0.1], dtype=torch.float64).sqrt()
    y = torch.randn(20000, 4, generator=gen(9), dtype=torch.float64) * std + 7
    mu, basis, ev = pca_basis(y, 0.9)
    assert basis.shape == (4, 2)  # (10 + 5) / 16.1 = 0.93 >= 0.9 > 10 / 16.1
    assert torch.allclose(basis.T @ basis, torch.eye(2, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(mu, torch.full((4,), 7.0, dtype=torch.float64), atol=0.05)
    assert ev[0] == pytest.approx(10.0, rel=0.05) and ev[1] == pytest.approx(5.0, rel=0.05)
    assert pca_basis(y, 1.0)[1].shape == (4, 4)
    with pytest.raises(InputError):
        pca_basis(y, 0.0)
    # a fixed number of axes instead of a variance fraction: the same first axes, at most C of them
    assert torch.equal(pca_basis(y, components=2)[1], basis)
    assert pca_basis(y, components=1)[1].shape == (4, 1) and pca_basis(y, components=9)[1].shape == (4, 4)
    with pytest.raises(InputError, match="components"):
        pca_basis(y, components=0)


def test_distances_compare_integer_samples_as_numbers_and_check_their_columns():
    """uint8 samples were subtracted in uint8 (wrapping around: 63 where 26 is right); a 1-column cloud was silently
    broadcast over 3; p = 0 divided by zero; mixed float dtypes and bad directions failed inside torch."""
    a = torch.randint(0, 255, (5, 3), dtype=torch.uint8, generator=gen(0))
    b = torch.randint(0, 255, (7, 3), dtype=torch.uint8, generator=gen(1))
    torch.testing.assert_close(wasserstein_1d(a, b), wasserstein_1d(a.float(), b.float()))
    x, y = torch.rand(20, 3, generator=gen(2)), torch.rand(30, 3, generator=gen(3))
    for bad_y, kwargs, match in ((y[:, :1], {}, "x has 3 columns but y has 1"), (y, {"p": 0.0}, "at least 1"),
                                 (y, {"n_projections": 0}, "n_projections"),
                                 (y, {"directions": torch.rand(2, 4)}, r"directions must be \(C, P\)")):
        with pytest.raises(InputError, match=match):
            sliced_wasserstein_distance(x, bad_y, **kwargs)
    with pytest.raises(InputError, match="u has 3 columns but v has 2"):
        wasserstein_1d(x, y[:, :2])
    mixed = sliced_wasserstein_distance(x, y.double(), generator=gen(4))
    assert mixed.dtype == torch.float64


# ---------------------------------------------------------------- issue 28: edge cases found against POT


def test_orders_inf_and_large_are_right_in_float32():
    """p = inf was accepted and gave 1.0 whatever the clouds; p = 60 overflowed float32 (NaN)."""
    u = torch.randn(300, 3, generator=gen(0), dtype=torch.float64) * 10
    v = torch.rand(200, 3, generator=gen(1), dtype=torch.float64) * 4
    # W_inf: the largest gap between the quantile functions, on the merged grid of their breakpoints
    t = torch.cat([torch.arange(1, 301) / 300, torch.arange(1, 201) / 200]).double().unique()
    mid = (t - torch.diff(t, prepend=t.new_zeros(1)) / 2)
    gaps = u.sort(0).values[(mid * 300).long()] - v.sort(0).values[(mid * 200).long()]
    torch.testing.assert_close(wasserstein_1d(u, v, p=float("inf")), gaps.abs().amax(0))
    for p in (60.0, 200.0):
        exact = wasserstein_1d(u, v, p=p)
        assert torch.isfinite(exact).all() and (exact <= gaps.abs().amax(0) + 1e-9).all()
        torch.testing.assert_close(wasserstein_1d(u.float(), v.float(), p=p), exact.float(), rtol=1e-5, atol=0)
    dirs = torch.nn.functional.normalize(torch.randn(3, 16, generator=gen(2), dtype=torch.float64), dim=0)
    per_dir = wasserstein_1d(u @ dirs, v @ dirs, p=float("inf"))
    assert sliced_wasserstein_distance(u, v, p=float("inf"), directions=dirs) == per_dir.max()
    sw60 = sliced_wasserstein_distance(u.float(), v.float(), p=60.0, directions=dirs.float())
    assert sw60.item() == pytest.approx(sliced_wasserstein_distance(u, v, p=60.0, directions=dirs).item(), rel=1e-5)
    with pytest.raises(InputError, match="at least 1"):
        wasserstein_1d(u, v, p=float("nan"))


def test_sort_match_integer_samples_with_unequal_sizes():
    """Integer clouds with N != M raised NotImplementedError from lerp (wasserstein_1d converted them)."""
    x = torch.randint(0, 50, (40, 3), generator=gen(0))
    y = torch.randint(0, 9, (25, 3), generator=gen(1), dtype=torch.int32)
    z = sort_match(x, y)
    assert z.dtype == torch.get_default_dtype()
    torch.testing.assert_close(z, sort_match(x.float(), y.float()))
    torch.testing.assert_close(sort_match(x.T, y.T, dim=-1), sort_match(x.float(), y.float()).T)


def test_sort_match_layouts_identical_on_large_clouds():
    """The (N, C) layout is matched through its (C, N) transpose (contiguous sorts): identical results, ties too."""
    x = (torch.randn(5000, 3, generator=gen(0)) * 4).round()  # many ties
    y = torch.rand(3000, 3, generator=gen(1))
    a = sort_match(x, y)
    assert a.is_contiguous() and a.shape == x.shape
    assert torch.equal(a, sort_match(x.T.contiguous(), y.T.contiguous(), dim=-1).T)
    x64 = torch.randn(6000, 4, generator=gen(2), dtype=torch.float64)  # no ties: the map is unique
    y64 = torch.rand(4000, 4, generator=gen(3), dtype=torch.float64)
    ref = torch.empty_like(x64).scatter_(0, x64.argsort(0), quantiles(y64.sort(0).values, 6000))
    assert torch.equal(sort_match(x64, y64), ref)
    with pytest.raises(InputError, match="dim must be"):
        sort_match(x, y, dim=0)


def test_sort_match_mixed_dtypes_promote():
    z = sort_match(torch.randn(30, 2), torch.randn(20, 2, dtype=torch.float64))
    assert z.dtype == torch.float64


def test_normalized_sliced_distance_one_sample_or_constant_target():
    """normalize=True gave NaN for a one-sample target and 1.25e8 for a constant one (std floored at 1e-8)."""
    x = torch.randn(400, 3, generator=gen(0))
    dirs = torch.nn.functional.normalize(torch.randn(3, 32, generator=gen(1)), dim=0)
    one = sliced_wasserstein_distance(x, x[:1], directions=dirs, normalize=True)
    const = sliced_wasserstein_distance(x, torch.ones(50, 3), directions=dirs, normalize=True)
    for d in (one, const):
        assert torch.isfinite(d) and 0.5 < d < 5  # a distance of a unit cloud to a point, over their joint spread
    # scale-free, as with a spread target
    const10 = sliced_wasserstein_distance(x * 10, torch.ones(50, 3) * 10, directions=dirs, normalize=True)
    assert const10.item() == pytest.approx(const.item(), rel=1e-4)
    assert sliced_wasserstein_distance(torch.ones(5, 3), torch.ones(7, 3), directions=dirs, normalize=True) == 0


def test_gaussian_functions_refuse_non_psd_and_mismatched_inputs():
    """A negative-definite covariance gave 0.0 (or a negative distance) silently; mismatched sizes raised raw
    torch errors; mixed dtypes failed inside torch."""
    z2, eye2 = torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64)
    for bad in (-eye2, torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=torch.float64)):  # negative-, in-definite
        with pytest.raises(InputError, match="not positive semi-definite"):
            gaussian_wasserstein_distance(z2, bad, z2, eye2)
        with pytest.raises(InputError, match="not positive semi-definite"):
            gaussian_wasserstein_distance(z2, eye2, z2, bad)
        for method in ("sym", "chol", "pca"):
            with pytest.raises(InputError, match="not positive semi-definite"):
                gaussian_mapping(z2, bad, z2, eye2, method=method)
            with pytest.raises(InputError, match="not positive semi-definite"):
                gaussian_mapping(z2, eye2, z2, bad, method=method)
        with pytest.raises(InputError, match="not positive semi-definite"):
            sqrtm_psd(bad)
    # rounding below zero is not refused
    c = mean_cov(torch.randn(3, 5, generator=gen(0)))[1]  # rank 2 in 5-D, float32
    assert gaussian_wasserstein_distance(torch.zeros(5), c, torch.zeros(5), c) >= 0
    z3 = torch.zeros(3)
    for args in ((z3, torch.eye(2), z2, eye2), (z2, torch.eye(3), z2, eye2), (z2, eye2, z3, torch.eye(3)),
                 (z2, torch.ones(2, 3), z2, eye2)):
        with pytest.raises(InputError):
            gaussian_wasserstein_distance(*args)
        with pytest.raises(InputError):
            gaussian_mapping(*args)
    with pytest.raises(InputError, match="xs has 2 columns but xt has 3"):
        bures_wasserstein_mapping(torch.randn(10, 2), torch.randn(10, 3))
    d = gaussian_wasserstein_distance(torch.zeros(2), torch.eye(2), z2, 4 * eye2)
    assert d.dtype == torch.float64 and d.item() == pytest.approx(2.0)
    a, b = gaussian_mapping(torch.zeros(2), torch.eye(2), z2 + 1, 4 * eye2)
    assert a.dtype == b.dtype == torch.float64
    torch.testing.assert_close(a, 2 * eye2, rtol=1e-5, atol=1e-6)


def test_float32_gaussian_distance_never_negative():
    """float32 self-distance was -5.9e-3 at 64-D (trace 4e3) and its square root NaN; clamped at 0 as POT does."""
    x = torch.randn(5000, 64, generator=gen(0)) @ torch.randn(64, 64, generator=gen(1))
    m, c = mean_cov(x)
    d = gaussian_wasserstein_distance(m, c, m, c)
    assert d.item() >= 0 and torch.isfinite(d.sqrt())
    assert d.item() < 1e-4 * c.trace().item()


def test_cloud_functions_refuse_bad_clouds_with_input_errors():
    """mean_cov of a 1-D tensor, pca_basis of an empty cloud and sliced_match of mismatched clouds raised raw
    IndexError / TypeError / RuntimeError; mixed dtypes failed inside torch's matmul."""
    with pytest.raises(InputError, match=r"shape \(\*, N, C\)"):
        mean_cov(torch.randn(5))
    with pytest.raises(InputError, match="no samples"):
        pca_basis(torch.randn(0, 3))
    with pytest.raises(InputError, match="source has 3 columns but target has 2"):
        sliced_match(torch.randn(10, 3), torch.randn(10, 2))
    out = sliced_match(torch.randn(10, 3), torch.randn(12, 3, dtype=torch.float64), generator=gen(0))
    assert out.dtype == torch.float64 and out.shape == (10, 3)
