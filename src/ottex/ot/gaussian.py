"""Gaussian optimal transport: moments, PSD square roots, the closed-form maps and distance, PCA subspaces."""

from __future__ import annotations

import torch

from ..core.checks import check_cloud, check_clouds, check_gaussians
from ..core.errors import InputError

__all__ = [
    "mean_cov",
    "sqrtm_psd",
    "trace_sqrtm",
    "gaussian_mapping",
    "apply_mapping",
    "bures_wasserstein_mapping",
    "gaussian_wasserstein_distance",
    "pca_basis",
]


def mean_cov(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(*, C)`` and (biased, 1/N) covariance ``(*, C, C)`` of a ``(*, N, C)`` cloud.

    Raises:
        InputError: ``x`` is not ``(*, N, C)`` or has no samples.
    """
    check_cloud(x, "x")
    mu = x.mean(dim=-2)
    n = x.shape[-2]
    step = 1 << 20  # large clouds are centred chunk by chunk: no full-size temporary
    cov = None
    for s in range(0, n, step):
        xc = x[..., s : s + step, :] - mu.unsqueeze(-2)
        part = xc.transpose(-1, -2) @ xc
        cov = part if cov is None else cov + part
    return mu, cov / n


def _eigh64(cov: torch.Tensor, name: str = "cov", dtype: torch.dtype | None = None) -> tuple[torch.Tensor, ...]:
    """Eigenvalues and eigenvectors of the symmetric part of ``cov``, in float64; refuses a matrix that is not
    positive semi-definite (an eigenvalue below ``-max(sqrt(eps), 1e-6)`` times the largest, ``eps`` that of
    ``dtype``, by default ``cov``'s: more than rounding; the 1e-6 floor lets through the float32 rounding of the
    float64 covariances that the losses make from float32 features)."""
    c64 = cov.double()
    evals, evecs = torch.linalg.eigh((c64 + c64.transpose(-1, -2)) / 2)
    _check_psd(evals, dtype or cov.dtype, name)
    return evals, evecs


#: Smallest relative tolerance of the positive semi-definite check (see :func:`_eigh64`).
PSD_TOLERANCE = 1e-6


def _check_psd(evals: torch.Tensor, dtype: torch.dtype, name: str) -> None:
    """Raise :class:`InputError` when eigenvalues ``(*, C)`` show a matrix that is not positive semi-definite."""
    tol = max(PSD_TOLERANCE, (torch.finfo(dtype).eps if dtype.is_floating_point else torch.finfo(torch.float64).eps)
              ** 0.5)
    top = evals.detach().abs().amax(dim=-1)
    low = evals.detach().amin(dim=-1)
    if bool((low < -tol * top).any()):
        worst = int(torch.argmin(low / top.clamp_min(1e-300)).item()) if low.dim() else 0
        raise InputError(f"{name} is not positive semi-definite: eigenvalue {low.flatten()[worst].item():.3g} "
                         f"(largest {top.flatten()[worst].item():.3g})")


def _psd_roots(
    cov: torch.Tensor, eps: float, name: str = "cov", dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Square root, pseudo-inverse square root and the projector on the kept eigen-directions, from one float64
    eigen-decomposition.

    The root keeps every eigenvalue (negative rounding clamped to zero): it is accurate in every eigen-direction,
    relative to that direction's eigenvalue. Only the inverse root treats eigenvalues below ``eps`` times the
    largest as zero.
    """
    evals, evecs = _eigh64(cov, name, dtype)
    floor = evals.amax(dim=-1, keepdim=True).clamp_min(1e-300) * eps
    keep = evals > floor
    root = evals.clamp_min(0).sqrt()
    inv_root = torch.where(keep, evals.clamp_min(1e-300).rsqrt(), torch.zeros_like(evals))
    vt = evecs.transpose(-1, -2)
    proj = (evecs * keep.to(evecs.dtype).unsqueeze(-2)) @ vt
    return (evecs * root.unsqueeze(-2)) @ vt, (evecs * inv_root.unsqueeze(-2)) @ vt, proj


def sqrtm_psd(cov: torch.Tensor, inverse: bool = False, eps: float = 1e-8) -> torch.Tensor:
    """Square root (or pseudo-inverse square root) of symmetric PSD matrices.

    The square root keeps every eigenvalue, so it is accurate in every eigen-direction (relative to that
    direction's eigenvalue) however ill-conditioned ``cov`` is. For the inverse root, eigenvalues below ``eps``
    times the largest are treated as zero, so rank-deficient covariances stay finite.

    Args:
        cov: ``(*, C, C)`` symmetric PSD.
        inverse: return the pseudo-inverse square root.
        eps: relative eigenvalue floor of the inverse root.

    Returns:
        ``(*, C, C)`` in the dtype of ``cov``.

    Raises:
        InputError: ``cov`` is not square or not positive semi-definite (an eigenvalue below ``-sqrt(eps)``
            times the largest, ``eps`` the precision of its dtype).

    Example:
        >>> sqrtm_psd(torch.diag(torch.tensor([4.0, 1e-10], dtype=torch.float64))).diagonal()
        tensor([2.0000e+00, 1.0000e-05], dtype=torch.float64)
    """
    if cov.dim() < 2 or cov.shape[-1] != cov.shape[-2]:
        raise InputError(f"cov must have shape (*, C, C), got {tuple(cov.shape)}")
    root, inv_root, _ = _psd_roots(cov, eps)
    dtype = cov.dtype if cov.is_floating_point() else torch.get_default_dtype()
    return (inv_root if inverse else root).to(dtype)


def _cholesky(cov: torch.Tensor) -> torch.Tensor:
    """Cholesky factor, with growing diagonal jitter for (numerically) singular matrices."""
    low, info = torch.linalg.cholesky_ex(cov)
    jitter = 1e-10
    scale = torch.diagonal(cov, dim1=-2, dim2=-1).mean(-1).clamp_min(1e-12)[..., None, None]
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    while bool((info > 0).any()) and jitter < 1:
        low, info = torch.linalg.cholesky_ex(cov + jitter * scale * eye)
        jitter *= 10
    return low


def gaussian_mapping(
    mean_s: torch.Tensor,
    cov_s: torch.Tensor,
    mean_t: torch.Tensor,
    cov_t: torch.Tensor,
    method: str = "sym",
    eps: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear map ``x -> (x - mean_s) @ A.T + mean_t`` taking N(mean_s, cov_s) to N(mean_t, cov_t).

    Args:
        mean_s, cov_s: source mean ``(*, C)`` and covariance ``(*, C, C)``.
        mean_t, cov_t: target mean and covariance.
        method: ``"sym"`` (the Monge / Bures-Wasserstein map
            ``S^-1/2 (S^1/2 T S^1/2)^1/2 S^-1/2``, the W2-optimal one),
            ``"chol"`` (``L_t L_s^-1``) or ``"pca"`` (``E_t D_t^1/2 D_s^-1/2 E_s^T``).
        eps: regularisation relative to the mean eigenvalue, for rank-deficient covariances (``eps`` times
            the mean of the diagonal is added to both diagonals).

    Returns:
        ``(A, b)``, ``A`` of shape ``(*, C, C)`` and ``b`` of shape ``(*, C)``, so that
        :func:`apply_mapping` computes ``x @ A.T + b``; in the promotion of the inputs' float dtypes. The
        ``"sym"`` map takes the (regularised) source covariance onto the target's in every eigen-direction, to a
        relative ``1e-15`` times the larger condition number (``tests/test_ot_pot.py``).

    Raises:
        InputError: the means and covariances do not have matching shapes, a covariance is not positive
            semi-definite, or ``method`` is unknown.

    Example:
        >>> cov = torch.diag(torch.tensor([1.0, 1e-5], dtype=torch.float64))
        >>> a, b = gaussian_mapping(torch.zeros(2), cov, torch.ones(2), cov, eps=0)
        >>> torch.allclose(a, torch.eye(2, dtype=torch.float64)), b
        (True, tensor([1., 1.], dtype=torch.float64))
    """
    mean_s, cov_s, mean_t, cov_t = check_gaussians(mean_s, cov_s, mean_t, cov_t, ("_s", "_t"))
    c = cov_s.shape[-1]
    eye = torch.eye(c, device=cov_s.device, dtype=torch.float64)

    def reg(cov: torch.Tensor) -> torch.Tensor:
        cov = cov.double()
        scale = torch.diagonal(cov, dim1=-2, dim2=-1).mean(-1).clamp_min(1e-12)[..., None, None]
        return (cov + cov.transpose(-1, -2)) / 2 + eps * scale * eye

    if method not in ("sym", "chol", "pca"):
        raise InputError(f"unknown Gaussian mapping '{method}' (use sym, chol or pca)")
    s, t = reg(cov_s), reg(cov_t)
    if method == "sym":
        a = _bures_map(s, t, cov_s.dtype)
    elif method == "chol":
        for cov, name in ((s, "cov_s"), (t, "cov_t")):
            _check_psd(torch.linalg.eigvalsh(cov), cov_s.dtype, name)
        a = _cholesky(t) @ torch.linalg.inv(_cholesky(s))
    else:
        es, vs = _eigh64(s, "cov_s", cov_s.dtype)
        et, vt = _eigh64(t, "cov_t", cov_s.dtype)
        a = (vt * et.clamp_min(0).sqrt().unsqueeze(-2)) @ (vs * es.clamp_min(1e-300).rsqrt().unsqueeze(-2)).transpose(
            -1, -2)
    a = a.to(cov_s.dtype)
    return a, mean_t - (mean_s.unsqueeze(-2) @ a.transpose(-1, -2)).squeeze(-2)


def _bures_map(s: torch.Tensor, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The Bures-Wasserstein Monge map ``A = S^-1/2 (S^1/2 T S^1/2)^1/2 S^-1/2`` of float64 PSD ``(*, C, C)``.

    The middle root is not taken from the eigenvalues of ``S^1/2 T S^1/2`` (which span the product of both
    condition numbers: beyond about 1e8 the small ones drown in rounding, and an eigenvalue floor drops their
    directions altogether) but from the polar factor of ``P = T^1/2 S^1/2 = W Sigma V^T``: ``P^T P = S^1/2 T S^1/2``,
    so ``(S^1/2 T S^1/2)^1/2 = V Sigma V^T = V W^T P``, and ``A = S^+1/2 V W^T T^1/2 Pi``, ``Pi`` the projector on
    the range of ``S``. The singular values, which carry the rounding, are never used: the mapped covariance
    ``A S A`` matches ``T`` in every eigen-direction to a relative ``1e-15`` times the condition number.
    ``dtype``: that of the caller's covariances, for the tolerance of the positive semi-definite check.
    """
    s_half, s_ihalf, s_proj = _psd_roots(s, 64 * torch.finfo(torch.float64).eps, "cov_s", dtype)
    t_half = _psd_roots(t, 0.0, "cov_t", dtype)[0]
    w, _, vh = torch.linalg.svd(t_half @ s_half)
    a = s_ihalf @ (vh.transpose(-1, -2) @ w.transpose(-1, -2)) @ t_half @ s_proj
    return (a + a.transpose(-1, -2)) / 2


def apply_mapping(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Apply an affine map ``x @ A.T + b`` to a ``(*, N, C)`` cloud."""
    return x @ a.transpose(-1, -2) + b.unsqueeze(-2)


def bures_wasserstein_mapping(
    xs: torch.Tensor, xt: torch.Tensor, method: str = "sym", eps: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit Gaussians to two clouds and return the affine OT map ``(A, b)`` between them.

    Args:
        xs: ``(*, N, C)`` source samples.
        xt: ``(*, M, C)`` target samples.
        method: see :func:`gaussian_mapping`.

    Returns:
        ``(A, b)``: apply with :func:`apply_mapping`.

    Raises:
        InputError: a cloud is empty or not ``(*, N, C)``, or the numbers of columns differ. (Integer samples are
            taken as floats, two float dtypes in their promotion.)

    Example:
        >>> xs, xt = torch.randn(500, 3), torch.randn(400, 3) * 2 + 1
        >>> a, b = bures_wasserstein_mapping(xs, xt)
        >>> apply_mapping(xs, a, b).mean(0).round()
        tensor([1., 1., 1.])
    """
    xs, xt = check_clouds(xs, xt, ("xs", "xt"))
    ms, cs = mean_cov(xs)
    mt, ct = mean_cov(xt)
    return gaussian_mapping(ms, cs, mt, ct, method, eps)


def trace_sqrtm(m: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """``tr(M^1/2)`` of symmetric PSD ``(*, C, C)`` matrices, with a gradient that stays finite.

    The sum of the square roots of the eigenvalues (``eigvalsh``, whose gradient
    ``U diag(g) U^T`` stays finite for repeated eigenvalues); eigenvalues below
    ``eps`` times the largest are frozen (no gradient), so rank-deficient
    matrices are safe.

    Example:
        >>> trace_sqrtm(torch.diag(torch.tensor([4.0, 9.0])))
        tensor(5.)
    """
    return _trace_sqrtm(m, eps)[0]


def _trace_sqrtm(m: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`trace_sqrtm` and the eigenvalues it was taken from."""
    ev = torch.linalg.eigvalsh((m + m.transpose(-1, -2)) / 2)
    floor = ev.detach().amax(dim=-1, keepdim=True).clamp_min(1e-30) * eps
    live = ev.clamp_min(floor).sqrt()  # finite gradient everywhere
    frozen = ev.detach().clamp_min(0).sqrt()  # value kept, no gradient
    return torch.where(ev > floor, live, frozen).sum(-1), ev


def gaussian_wasserstein_distance(
    mean1: torch.Tensor,
    cov1: torch.Tensor,
    mean2: torch.Tensor,
    cov2: torch.Tensor,
    cov2_sqrt: torch.Tensor | None = None,
) -> torch.Tensor:
    """Squared W2 distance between two Gaussians (closed form, differentiable in ``mean1`` and ``cov1``).

    ``|m1 - m2|^2 + tr(C1) + tr(C2) - 2 tr((C2^1/2 C1 C2^1/2)^1/2)``, the last
    trace by :func:`trace_sqrtm` (finite gradients for rank-deficient ``C1``), clamped
    at zero as POT's is (in float32 the rounding of the traces took equal Gaussians
    below zero: -5.9e-3 at 64-D with a trace of 4e3).

    Args:
        mean1, cov1: ``(*, C)`` and ``(*, C, C)``.
        mean2, cov2: the other Gaussian.
        cov2_sqrt: ``cov2``'s square root, if precomputed (e.g. a fixed style target).

    Returns:
        ``(*)`` squared distances, in the promotion of the inputs' float dtypes.

    Raises:
        InputError: the means and covariances do not have matching shapes, or a covariance is not positive
            semi-definite (``cov1`` seen through ``C2^1/2 C1 C2^1/2``).

    Example:
        >>> eye = torch.eye(2, dtype=torch.float64)
        >>> gaussian_wasserstein_distance(torch.zeros(2), eye, torch.ones(2), 4 * eye)
        tensor(4., dtype=torch.float64)
    """
    mean1, cov1, mean2, cov2 = check_gaussians(mean1, cov1, mean2, cov2)
    root = sqrtm_psd(cov2) if cov2_sqrt is None else cov2_sqrt.to(cov1.dtype)
    tr = torch.diagonal(cov1, dim1=-2, dim2=-1).sum(-1) + torch.diagonal(cov2, dim1=-2, dim2=-1).sum(-1)
    tr_root, ev = _trace_sqrtm(root @ cov1 @ root, 1e-10)
    _check_psd(ev, cov1.dtype, "cov1")
    return ((mean1 - mean2).pow(2).sum(-1) + tr - 2 * tr_root).clamp_min(0)


def pca_basis(y: torch.Tensor, variance: float = 0.9, components: int | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Principal subspace of a cloud holding a fraction of its variance (or of a given dimension).

    Columns are centred; the eigenvalues of the covariance are the squared
    singular values of the centred data over ``N``. The eigendecomposition is
    made in float64: a float32 one of a nearly flat cloud (a covariance of
    1e-5 and rank 13 of 147: a checkerboard shrunk below its cells) can fail
    to converge.

    Args:
        y: ``(N, C)`` samples.
        variance: fraction of the total variance to keep, in ``(0, 1]``.
        components: keep exactly the first ``min(components, C)`` axes instead of a variance fraction.

    Returns:
        ``(mean (C,), basis (C, k), eigenvalues (k,))``, components sorted by
        decreasing variance, ``k`` the smallest count reaching ``variance``
        (or ``components``).

    Raises:
        InputError: ``variance`` outside ``(0, 1]``, ``components`` below 1, or no samples.

    Example:
        >>> y = torch.randn(500, 6, generator=torch.Generator().manual_seed(0)) * torch.tensor([5.0, 1, 1, 1, 1, 1])
        >>> mean, basis, evals = pca_basis(y, components=2)
        >>> basis.shape, round(float(basis[0, 0].abs()), 2)
        (torch.Size([6, 2]), 1.0)
    """
    if not 0 < variance <= 1:
        raise InputError(f"variance fraction must be in (0, 1], got {variance}")
    if components is not None and components < 1:
        raise InputError(f"components must be at least 1, got {components}")
    mu, cov = mean_cov(y)
    evals, evecs = torch.linalg.eigh(cov.double())
    evals, evecs = evals.flip(-1).clamp_min(0), evecs.flip(-1)
    if components is None:
        frac = evals.cumsum(-1) / evals.sum().clamp_min(1e-300)
        k = int((frac < variance - 1e-12).sum().item()) + 1
    else:
        k = components
    k = min(k, y.shape[-1])
    return mu, evecs[:, :k].to(y.dtype), evals[:k].to(y.dtype)
