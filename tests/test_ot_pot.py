"""Property tests of ``ottex.ot`` against POT (a test oracle only: never a runtime dependency of ottex).

Random inputs drawn by hypothesis (derandomised: the same examples on every run), over well- and ill-conditioned
covariances (condition numbers 1 to 1e12, rank-deficient ones), 1 to 128 dimensions, float32 and float64, N != M,
for every public function of :mod:`ottex.ot` that POT also has: ``wasserstein_1d`` (``ot.wasserstein_1d``),
``sort_match`` (the plan of ``ot.emd_1d``), ``sliced_wasserstein_distance`` (``ot.sliced_wasserstein_distance``
with the same directions), ``sqrtm_psd`` (POT's backend ``sqrtm``), ``gaussian_mapping`` /
``bures_wasserstein_mapping`` (``ot.gaussian.bures_wasserstein_mapping`` / ``empirical_bures_wasserstein_mapping``)
and ``gaussian_wasserstein_distance`` (``ot.gaussian.bures_wasserstein_distance``).

Tolerances (stated per test, measured with a margin of about 10x):

* 1D and sliced distances: relative ``1e-9`` in float64 (POT sums its weights in floating point), ``1e-4`` in
  float32 (ottex in float32, POT on the same values in float64).
* The Bures map: POT's formula loses the small directions of ill-conditioned covariances (its error reaches 100 %
  at condition numbers of 1e8 on both sides, NaN beyond), so the oracle there is the defining property: ``A`` is
  symmetric positive semi-definite and the mapped covariance ``A S A`` equals the target ``T`` *in every
  eigen-direction of T*, ``|v_i^T (A S A - T) v_i| <= tol * lambda_i``, with ``tol = 1e-15 * cond`` (at least
  ``1e-9``; ``cond`` the larger condition number) in float64, and ``2e-6 * cond`` (at least ``1e-5``) for float32
  inputs (the covariances' own rounding); it is compared with POT entry by entry (rtol ``1e-6``) where POT is
  accurate (condition numbers up to 1e4).
* Gaussian W2: absolute ``1e-12 (tr S + tr T)`` in float64, ``1e-5 C (tr S + tr T)`` in float32, plus
  ``4 C sqrt(eps tr S tr T)`` (the square roots of rounding-level eigenvalues of ``T^1/2 S T^1/2`` when a
  covariance is singular: ``tr(M^1/2)`` is not Lipschitz at zero); never negative;
  against POT where POT is finite and against the nuclear-norm form ``tr S + tr T - 2 ||S^1/2 T^1/2||_*``
  everywhere.
"""

from __future__ import annotations

import numpy as np
import ot as pot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ottex.ot import (
    apply_mapping,
    bures_wasserstein_mapping,
    gaussian_mapping,
    gaussian_wasserstein_distance,
    mean_cov,
    sliced_wasserstein_distance,
    sort_match,
    sqrtm_psd,
    wasserstein_1d,
)

PROPERTY = settings(max_examples=20, deadline=None, derandomize=True)
F64 = torch.float64
dims = st.sampled_from([1, 2, 3, 8, 17, 64, 128])
dtypes = st.sampled_from([torch.float32, torch.float64])
seeds = st.integers(0, 2**31 - 1)
log_conds = st.sampled_from([0, 2, 4, 8, 10, 12])


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_cov(c: int, log_cond: float, seed: int, rank: int | None = None) -> torch.Tensor:
    """Symmetric PSD ``(c, c)`` float64 matrix: a random orthonormal basis, eigenvalues log-spaced from 1 down to
    ``10**-log_cond`` and scaled by a random factor in ``[1e-2, 1e2]``, then all but the ``rank`` largest set to
    zero."""
    g = gen(seed)
    q, _ = torch.linalg.qr(torch.randn(c, c, generator=g, dtype=F64))
    ev = torch.logspace(0, -log_cond, c, dtype=F64) * 10 ** (4 * torch.rand(1, generator=g, dtype=F64).item() - 2)
    if rank is not None:
        ev[rank:] = 0
    cov = (q * ev) @ q.T
    return (cov + cov.T) / 2


def psd_root(cov: torch.Tensor) -> torch.Tensor:
    """Reference square root: NumPy's ``eigh``, the eigenvalues clipped at zero (POT's ``sqrtm`` without a NaN
    for the rounding below zero of a singular matrix)."""
    ev, vec = np.linalg.eigh(cov.numpy())
    return torch.from_numpy((vec * np.sqrt(np.clip(ev, 0, None))) @ vec.T)


def eigen_errors(mapped: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative error of ``mapped`` in every eigen-direction of ``target``: ``|v_i^T (mapped - T) v_i| / lambda_i``."""
    ev, vec = torch.linalg.eigh(target)
    return ((vec.T @ (mapped - target) @ vec).diagonal() / ev).abs()


def cond_tol(dtype: torch.dtype, cond: float) -> float:
    return max(1e-9, 1e-15 * cond) if dtype == F64 else max(1e-5, 2e-6 * cond)


# ---------------------------------------------------------------- exact and sliced 1D distances


@PROPERTY
@given(c=dims, n=st.integers(1, 300), m=st.integers(1, 300), p=st.sampled_from([1.0, 1.5, 2.0, 3.0, 7.0]),
       dtype=dtypes, seed=seeds)
def test_wasserstein_1d_against_pot(c, n, m, p, dtype, seed):
    g = gen(seed)
    u = torch.randn(n, c, generator=g, dtype=F64).to(dtype)
    v = (torch.rand(m, c, generator=g, dtype=F64) ** 3 * 5 - 1).to(dtype)
    ours = wasserstein_1d(u, v, p=p)
    assert ours.dtype == dtype and ours.shape == (c,)
    ref = pot.wasserstein_1d(u.double().numpy(), v.double().numpy(), p=p) ** (1 / p)
    np.testing.assert_allclose(ours.double().numpy(), ref, rtol=1e-9 if dtype == F64 else 1e-4, atol=1e-12)


@PROPERTY
@given(c=dims, n=st.integers(2, 300), m=st.integers(2, 300), p=st.sampled_from([1.0, 2.0, 3.0]), dtype=dtypes,
       seed=seeds)
def test_sliced_wasserstein_distance_against_pot(c, n, m, p, dtype, seed):
    g = gen(seed)
    x = (torch.randn(n, c, generator=g, dtype=F64) @ torch.randn(c, c, generator=g, dtype=F64)).to(dtype)
    y = (torch.rand(m, c, generator=g, dtype=F64) * 3 + 1).to(dtype)
    dirs = torch.nn.functional.normalize(torch.randn(c, 20, generator=g, dtype=F64), dim=0)
    ours = sliced_wasserstein_distance(x, y, p=p, directions=dirs.to(dtype))
    ref = pot.sliced_wasserstein_distance(x.double().numpy(), y.double().numpy(), p=p,
                                          projections=dirs.to(dtype).double().numpy())
    assert ours.item() == pytest.approx(ref, rel=1e-9 if dtype == F64 else 1e-4)


@PROPERTY
@given(c=dims, n=st.integers(1, 200), dtype=dtypes, integer=st.booleans(), seed=seeds)
def test_sort_match_is_the_plan_of_pot_emd_1d(c, n, dtype, integer, seed):
    """N = M: the matched value of each source sample is where POT's exact 1D plan sends it (ties broken as POT does
    not matter: tied sources get the same multiset of target values)."""
    g = gen(seed)
    x = torch.randn(n, c, generator=g, dtype=F64).to(dtype)
    y = (torch.rand(n, c, generator=g, dtype=F64) * 9).to(dtype)
    if integer:
        x, y = (x * 3).round().to(torch.int64), y.round().to(torch.int64)
    z = sort_match(x, y)
    for j in range(min(c, 3)):  # POT's emd_1d takes one column at a time
        plan = pot.emd_1d(x[:, j].double().numpy(), y[:, j].double().numpy())
        ref = plan @ y[:, j].double().numpy() * n
        np.testing.assert_allclose(np.sort(z[:, j].double().numpy()), np.sort(ref), rtol=1e-12, atol=1e-12)
        # the map is monotone: sorting the source (ties by result) sorts the result
        zs = z[:, j].double().numpy()[np.lexsort((z[:, j].double().numpy(), x[:, j].double().numpy()))]
        assert (zs[1:] >= zs[:-1]).all()


@PROPERTY
@given(c=dims, n=st.integers(1, 300), m=st.integers(1, 300), dtype=dtypes, integer=st.booleans(), seed=seeds)
def test_sort_match_unequal_sizes_reaches_pot_distance_zero(c, n, m, dtype, integer, seed):
    """N != M: the result has, column by column, the target's distribution resampled to N quantiles (the W1 to the
    target, by POT, is no more than the gap between neighbouring target quantiles) and the source's order."""
    g = gen(seed)
    x = torch.randn(n, c, generator=g, dtype=F64).to(dtype)
    y = (torch.rand(m, c, generator=g, dtype=F64) * 9).to(dtype)
    if integer:
        x, y = (x * 3).round().to(torch.int64), y.round().to(torch.int64)
    z = sort_match(x, y)
    assert z.shape == x.shape and z.is_floating_point()
    ys = y.double().sort(0).values
    gap = (ys[-1] - ys[0]).numpy() / max(1, min(n, m) - 1) + 1e-6
    w1 = pot.wasserstein_1d(z.double().numpy(), y.double().numpy(), p=1)
    assert (w1 <= gap + 1e-9).all()


# ---------------------------------------------------------------- Gaussian OT


@PROPERTY
@given(c=dims, lc=log_conds, dtype=dtypes, seed=seeds)
def test_sqrtm_psd_in_every_eigen_direction(c, lc, dtype, seed):
    if dtype == torch.float32:
        lc = min(lc, 4)
    cov = random_cov(c, lc, seed).to(dtype)
    root = sqrtm_psd(cov)
    assert root.dtype == dtype
    exact = cov.double()
    err = eigen_errors(root.double() @ root.double(), exact)
    assert err.max() <= cond_tol(dtype, 10.0**lc)
    ref = torch.from_numpy(pot.backend.NumpyBackend().sqrtm(exact.numpy()))
    if lc <= 4:
        torch.testing.assert_close(root.double(), ref, rtol=1e-6, atol=1e-6 * ref.abs().max().item())


@PROPERTY
@given(c=dims, lcs=log_conds, lct=log_conds, dtype=dtypes, seed=seeds, same=st.booleans())
def test_bures_map_matches_target_in_every_eigen_direction(c, lcs, lct, dtype, seed, same):
    """The defect: eigenvalues of S^1/2 T S^1/2 spread over more than 1e8 lost their directions (100 % error there)."""
    if dtype == torch.float32:
        lcs, lct = min(lcs, 4), min(lct, 4)
    s = random_cov(c, lcs, seed).to(dtype)
    t = s.clone() if same else random_cov(c, lct, seed + 1).to(dtype)
    ms, mt = torch.randn(c, generator=gen(seed), dtype=F64).to(dtype), torch.zeros(c, dtype=dtype)
    a, b = gaussian_mapping(ms, s, mt, t, eps=0)
    assert a.dtype == dtype and b.dtype == dtype
    a64 = a.double()
    assert torch.allclose(a64, a64.T, rtol=0, atol=1e-6 * a64.abs().max().item())
    assert torch.linalg.eigvalsh(a64).min() >= -1e-6 * a64.abs().max()
    err = eigen_errors(a64 @ s.double() @ a64.T, t.double())
    assert err.max() <= cond_tol(dtype, 10.0 ** max(lcs, lct)), err.max()
    torch.testing.assert_close(b.double(), mt.double() - a64 @ ms.double(), rtol=1e-5, atol=1e-5)
    if dtype == F64 and max(lcs, lct) <= 4:
        a_ref, _ = pot.gaussian.bures_wasserstein_mapping(ms.numpy(), mt.numpy(), s.numpy(), t.numpy())
        np.testing.assert_allclose(a.numpy(), a_ref, rtol=1e-6, atol=1e-6 * np.abs(a_ref).max())


@PROPERTY
@given(c=st.sampled_from([2, 3, 8, 17, 64]), rank=st.integers(1, 64), lc=log_conds, seed=seeds)
def test_bures_map_rank_deficient_covariances(c, rank, lc, seed):
    """Rank-deficient covariances with the default regularisation: the map is finite and takes the regularised
    source covariance onto the regularised target in every eigen-direction (as POT's empirical map, which adds
    ``reg * I``, does on the same regularised covariances)."""
    rank = min(rank, c)
    s, t = random_cov(c, lc, seed, rank=rank), random_cov(c, lc, seed + 7, rank=max(1, c - rank))
    z = torch.zeros(c, dtype=F64)
    a, _ = gaussian_mapping(z, s, z, t)
    assert torch.isfinite(a).all()
    eye = torch.eye(c, dtype=F64)
    s_reg = s + 1e-6 * s.diagonal().mean() * eye
    t_reg = t + 1e-6 * t.diagonal().mean() * eye
    assert eigen_errors(a @ s_reg @ a, t_reg).max() <= 1e-6


def test_bures_map_random_64d_clouds_keep_every_direction():
    """The issue's case: 10 of 40 random 64-D clouds ``z @ randn(64, 64)`` lost a direction with default settings."""
    worst = 0.0
    for k in range(40):
        xs = torch.randn(2000, 64, generator=gen(k), dtype=F64) @ torch.randn(64, 64, generator=gen(100 + k),
                                                                              dtype=F64)
        xt = torch.randn(1500, 64, generator=gen(200 + k), dtype=F64) @ torch.randn(64, 64, generator=gen(300 + k),
                                                                                   dtype=F64)
        a, b = bures_wasserstein_mapping(xs, xt, eps=0)
        _, c_mapped = mean_cov(apply_mapping(xs, a, b))
        worst = max(worst, eigen_errors(c_mapped, mean_cov(xt)[1]).max().item())
    assert worst < 1e-7


@pytest.mark.parametrize("eps", [0.0, 1e-6])
def test_bures_map_diagonal_ill_conditioned_is_identity(eps):
    """The issue's case: diag(1, 1e-5) on both sides gave A = diag(1, 0) instead of the identity."""
    cov = torch.diag(torch.tensor([1.0, 1e-5], dtype=F64))
    z = torch.zeros(2, dtype=F64)
    a, b = gaussian_mapping(z, cov, z, cov, eps=eps)
    torch.testing.assert_close(a, torch.eye(2, dtype=F64), rtol=0, atol=1e-9)


@PROPERTY
@given(c=st.sampled_from([2, 3, 8, 17, 64]), n=st.integers(2, 400), m=st.integers(2, 400), seed=seeds)
def test_empirical_bures_map_against_pot(c, n, m, seed):
    g = gen(seed)
    xs = torch.randn(n + c, c, generator=g, dtype=F64) @ torch.randn(c, c, generator=g, dtype=F64)
    xt = torch.rand(m + c, c, generator=g, dtype=F64) @ torch.randn(c, c, generator=g, dtype=F64) + 2
    a, b = bures_wasserstein_mapping(xs, xt, eps=0)
    a_ref, b_ref = pot.gaussian.empirical_bures_wasserstein_mapping(xs.numpy(), xt.numpy(), reg=0)
    _, cs = mean_cov(xs)
    _, ct = mean_cov(xt)
    cond = (torch.linalg.cond(cs) * torch.linalg.cond(ct)).item()
    if cond < 1e8:  # POT is accurate there
        np.testing.assert_allclose(a.numpy(), a_ref, rtol=1e-6, atol=1e-7 * np.abs(a_ref).max())
        np.testing.assert_allclose(b.numpy(), b_ref.ravel(), rtol=1e-6, atol=1e-7 * np.abs(b_ref).max())
    assert eigen_errors(a @ cs @ a.T, ct).max() <= 1e-6


@PROPERTY
@given(c=dims, lcs=log_conds, lct=log_conds, dtype=dtypes, seed=seeds, same=st.booleans(),
       rank=st.sampled_from([None, 1, 2]))
def test_gaussian_wasserstein_distance_against_pot(c, lcs, lct, dtype, seed, same, rank):
    s = random_cov(c, lcs, seed, rank=rank).to(dtype)
    t = s.clone() if same else random_cov(c, lct, seed + 1).to(dtype)
    ms = torch.randn(c, generator=gen(seed), dtype=F64).to(dtype)
    mt = ms.clone() if same else torch.randn(c, generator=gen(seed + 1), dtype=F64).to(dtype)
    ours = gaussian_wasserstein_distance(ms, s, mt, t)
    assert ours.dtype == dtype and ours.item() >= 0  # a clamp, as POT's: float32 rounding went below zero
    assert torch.isfinite(ours.sqrt())
    s64, t64, ms64, mt64 = s.double(), t.double(), ms.double(), mt.double()
    scale = (s64.trace() + t64.trace()).item()
    # plus the square roots of rounding-level eigenvalues of T^1/2 S T^1/2 (rank-deficient S): sqrt(eps |S| |T|) each
    tol = (1e-12 if dtype == F64 else 1e-5 * c) * scale + 4 * c * (
        torch.finfo(dtype).eps * s64.trace() * t64.trace()).sqrt().item()
    # the nuclear-norm form: tr((T^1/2 S T^1/2)^1/2) = sum of the singular values of S^1/2 T^1/2
    roots = [psd_root(m) for m in (s64, t64)]
    nuclear = torch.linalg.svdvals(roots[0] @ roots[1]).sum()
    exact = max(0.0, ((ms64 - mt64) ** 2).sum().item() + scale - 2 * nuclear.item())
    assert ours.item() == pytest.approx(exact, abs=tol)
    try:
        with np.errstate(invalid="ignore"):
            ref = pot.gaussian.bures_wasserstein_distance(ms64.numpy(), mt64.numpy(), s64.numpy(), t64.numpy())
    except np.linalg.LinAlgError:  # POT's eigh of a NaN matrix (its root of a singular one)
        ref = np.nan
    if np.isfinite(ref):
        assert ours.item() == pytest.approx(float(ref) ** 2, abs=tol + 1e-7 * scale)
