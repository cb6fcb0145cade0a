"""Gaussian optimal transport: moments, PSD square roots, the closed-form maps and distance, PCA subspaces."""

from __future__ import annotations

import torch

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
    """Mean ``(*, C)`` and (biased, 1/N) covariance ``(*, C, C)`` of a ``(*, N, C)`` cloud."""
    mu = x.mean(dim=-2)
    n = x.shape[-2]
    step = 1 << 20  # large clouds are centred chunk by chunk: no full-size temporary
    cov = None
    for s in range(0, n, step):
        xc = x[..., s : s + step, :] - mu.unsqueeze(-2)
        part = xc.transpose(-1, -2) @ xc
        cov = part if cov is None else cov + part
    return mu, cov / n


def _psd_roots(cov: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Square root and pseudo-inverse square root from one eigen-decomposition (float64)."""
    c64 = cov.double()
    evals, evecs = torch.linalg.eigh((c64 + c64.transpose(-1, -2)) / 2)
    floor = evals.amax(dim=-1, keepdim=True).clamp_min(1e-300) * eps
    keep = evals > floor
    ev = evals.clamp_min(0)
    root = torch.where(keep, ev.sqrt(), torch.zeros_like(ev))
    inv_root = torch.where(keep, ev.clamp_min(1e-300).rsqrt(), torch.zeros_like(ev))
    vt = evecs.transpose(-1, -2)
    return (evecs * root.unsqueeze(-2)) @ vt, (evecs * inv_root.unsqueeze(-2)) @ vt


def sqrtm_psd(cov: torch.Tensor, inverse: bool = False, eps: float = 1e-8) -> torch.Tensor:
    """Square root (or pseudo-inverse square root) of symmetric PSD matrices.

    Eigenvalues below ``eps`` times the largest are treated as zero (their
    inverse root too), so rank-deficient covariances stay finite.

    Args:
        cov: ``(*, C, C)`` symmetric PSD.
        inverse: return the pseudo-inverse square root.
        eps: relative eigenvalue floor.

    Returns:
        ``(*, C, C)`` in the dtype of ``cov``.
    """
    root, inv_root = _psd_roots(cov, eps)
    return (inv_root if inverse else root).to(cov.dtype)


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
        eps: regularisation relative to the mean eigenvalue, for rank-deficient covariances.

    Returns:
        ``(A, b)``, ``A`` of shape ``(*, C, C)`` and ``b`` of shape ``(*, C)``, so that
        :func:`apply_mapping` computes ``x @ A.T + b``.
    """
    c = cov_s.shape[-1]
    eye = torch.eye(c, device=cov_s.device, dtype=torch.float64)

    def reg(cov: torch.Tensor) -> torch.Tensor:
        cov = cov.double()
        scale = torch.diagonal(cov, dim1=-2, dim2=-1).mean(-1).clamp_min(1e-12)[..., None, None]
        return (cov + cov.transpose(-1, -2)) / 2 + eps * scale * eye

    s, t = reg(cov_s), reg(cov_t)
    if method == "sym":
        s_half, s_ihalf = _psd_roots(s, 1e-12)
        a = s_ihalf @ sqrtm_psd(s_half @ t @ s_half) @ s_ihalf
    elif method == "chol":
        a = _cholesky(t) @ torch.linalg.inv(_cholesky(s))
    elif method == "pca":
        es, vs = torch.linalg.eigh(s)
        et, vt = torch.linalg.eigh(t)
        a = (vt * et.clamp_min(0).sqrt().unsqueeze(-2)) @ (vs * es.clamp_min(1e-300).rsqrt().unsqueeze(-2)).transpose(
            -1, -2)
    else:
        raise InputError(f"unknown Gaussian mapping '{method}' (use sym, chol or pca)")
    return a.to(cov_s.dtype), mean_t - (mean_s.unsqueeze(-2) @ a.to(cov_s.dtype).transpose(-1, -2)).squeeze(-2)


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

    Example:
        >>> xs, xt = torch.randn(500, 3), torch.randn(400, 3) * 2 + 1
        >>> a, b = bures_wasserstein_mapping(xs, xt)
        >>> apply_mapping(xs, a, b).mean(0).round()
        tensor([1., 1., 1.])
    """
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
    ev = torch.linalg.eigvalsh((m + m.transpose(-1, -2)) / 2)
    floor = ev.detach().amax(dim=-1, keepdim=True).clamp_min(1e-30) * eps
    live = ev.clamp_min(floor).sqrt()  # finite gradient everywhere
    frozen = ev.detach().clamp_min(0).sqrt()  # value kept, no gradient
    return torch.where(ev > floor, live, frozen).sum(-1)


def gaussian_wasserstein_distance(
    mean1: torch.Tensor,
    cov1: torch.Tensor,
    mean2: torch.Tensor,
    cov2: torch.Tensor,
    cov2_sqrt: torch.Tensor | None = None,
) -> torch.Tensor:
    """Squared W2 distance between two Gaussians (closed form, differentiable in ``mean1`` and ``cov1``).

    ``|m1 - m2|^2 + tr(C1) + tr(C2) - 2 tr((C2^1/2 C1 C2^1/2)^1/2)``, the last
    trace by :func:`trace_sqrtm` (finite gradients for rank-deficient ``C1``).

    Args:
        mean1, cov1: ``(*, C)`` and ``(*, C, C)``.
        mean2, cov2: the other Gaussian.
        cov2_sqrt: ``cov2``'s square root, if precomputed (e.g. a fixed style target).

    Returns:
        ``(*)`` squared distances.

    Example:
        >>> eye = torch.eye(2, dtype=torch.float64)
        >>> gaussian_wasserstein_distance(torch.zeros(2), eye, torch.ones(2), 4 * eye)
        tensor(4., dtype=torch.float64)
    """
    root = sqrtm_psd(cov2) if cov2_sqrt is None else cov2_sqrt
    tr = torch.diagonal(cov1, dim1=-2, dim2=-1).sum(-1) + torch.diagonal(cov2, dim1=-2, dim2=-1).sum(-1)
    return (mean1 - mean2).pow(2).sum(-1) + tr - 2 * trace_sqrtm(root @ cov1 @ root)


def pca_basis(y: torch.Tensor, variance: float = 0.9) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Principal subspace of a cloud holding a fraction of its variance.

    Columns are centred; the eigenvalues of the covariance are the squared
    singular values of the centred data over ``N``.

    Args:
        y: ``(N, C)`` samples.
        variance: fraction of the total variance to keep, in ``(0, 1]``.

    Returns:
        ``(mean (C,), basis (C, k), eigenvalues (k,))``, components sorted by
        decreasing variance, ``k`` the smallest count reaching ``variance``.
    """
    if not 0 < variance <= 1:
        raise InputError(f"variance fraction must be in (0, 1], got {variance}")
    mu, cov = mean_cov(y)
    evals, evecs = torch.linalg.eigh(cov.double())
    evals, evecs = evals.flip(-1).clamp_min(0), evecs.flip(-1)
    frac = evals.cumsum(-1) / evals.sum().clamp_min(1e-300)
    k = int((frac < variance - 1e-12).sum().item()) + 1
    k = min(k, y.shape[-1])
    return mu, evecs[:, :k].to(y.dtype), evals[:k].to(y.dtype)
