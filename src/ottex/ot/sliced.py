"""Sliced optimal transport: random rotations and directions, sliced matching and the sliced W distance."""

from __future__ import annotations

import torch

from ..core.checks import check_clouds
from ..core.errors import InputError
from .exact import power_mean, sort_match, wasserstein_1d

__all__ = ["random_rotation", "random_directions", "sliced_match", "sliced_wasserstein_distance"]


def random_rotation(
    n: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Haar-distributed random rotation (orthonormal, determinant +1).

    QR decomposition of a Gaussian matrix with the sign of ``R``'s diagonal
    folded into ``Q`` (Mezzadri 2007), then one column flipped if needed.

    Args:
        n: dimension.
        generator: random generator (its device is used when ``device`` is None).
        device: device of the result.
        dtype: floating dtype of the result.

    Returns:
        ``(n, n)`` rotation matrix.
    """
    if device is None and generator is not None:
        device = generator.device
    g = torch.randn(n, n, generator=generator, device=device,
                    dtype=torch.float64 if dtype == torch.float64 else torch.float32)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    if torch.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.to(dtype)


def random_directions(
    dim: int,
    n: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``n`` random unit vectors of dimension ``dim`` as columns of a ``(dim, n)`` matrix."""
    if device is None and generator is not None:
        device = generator.device
    d = torch.randn(dim, n, generator=generator, device=device, dtype=dtype)
    return d / d.norm(dim=0, keepdim=True)


def sliced_match(
    source: torch.Tensor,
    target: torch.Tensor,
    iterations: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sliced optimal transport: repeat {random rotation, exact 1D matching, rotate back}.

    Args:
        source: ``(*, N, C)`` samples to move.
        target: ``(*, M, C)`` target samples.
        iterations: number of random rotations.
        generator: random generator for the rotations.

    Returns:
        ``(*, N, C)`` moved samples (integer samples as floats, two float dtypes in their promotion).

    Raises:
        InputError: a cloud is empty or not ``(*, N, C)``, or the numbers of columns differ.
    """
    x, target = check_clouds(source, target, ("source", "target"))
    for _ in range(iterations):
        rot = random_rotation(x.shape[-1], generator, device=x.device, dtype=x.dtype)
        x = sort_match(x @ rot, target @ rot) @ rot.T
    return x


def sliced_wasserstein_distance(
    x: torch.Tensor,
    y: torch.Tensor,
    n_projections: int = 64,
    p: float = 2.0,
    generator: torch.Generator | None = None,
    directions: torch.Tensor | None = None,
    normalize: bool = False,
) -> torch.Tensor:
    """Sliced Wasserstein distance between two clouds.

    ``(mean over directions of W_p(x . d, y . d)^p)^(1/p)``.

    Args:
        x: ``(*, N, C)`` samples.
        y: ``(*, M, C)`` samples.
        n_projections: number of random directions (ignored if ``directions`` is given).
        p: order (``>= 1``; ``math.inf``: the largest ``W_inf`` over the directions).
        generator: random generator for the directions.
        directions: ``(C, P)`` fixed unit directions.
        normalize: divide each direction's distance by the standard deviation of
            ``y`` along it (scale-free comparison between layers). Where ``y`` does
            not vary along a direction (one sample, a constant cloud), the standard
            deviation of ``x`` and ``y`` together is used instead; where neither
            varies the distance is zero.

    Returns:
        ``(*)`` distance.

    Raises:
        InputError: the clouds are empty, not ``(*, N, C)`` or of different numbers of columns, ``p < 1``, fewer
            than one direction, or directions of another number of rows. (Integer samples are compared as floats,
            two float dtypes in their promotion.)
    """
    x, y = check_clouds(x, y, ("x", "y"), p)
    if directions is None:
        if n_projections < 1:
            raise InputError(f"n_projections must be at least 1, got {n_projections}")
        directions = random_directions(x.shape[-1], n_projections, generator, device=x.device, dtype=x.dtype)
    elif directions.dim() != 2 or directions.shape[0] != x.shape[-1]:
        raise InputError(f"directions must be (C, P) with C = {x.shape[-1]} columns, got {tuple(directions.shape)}")
    directions = directions.to(x.dtype)
    px, py = x @ directions, y @ directions
    w = wasserstein_1d(px, py, p)
    if normalize:
        w = w / _spread(px, py)
    return power_mean(w, p)


def _spread(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Standard deviation of the ``(*, M, P)`` projections ``py`` per direction; where they do not vary (beyond
    rounding) that of ``px`` and ``py`` together; the smallest positive number where neither varies."""
    n, m = px.shape[-2], py.shape[-2]
    sy = py.std(dim=-2, correction=1 if m > 1 else 0)
    rounding = 64 * torch.finfo(py.dtype).eps * py.abs().amax(dim=-2)
    lead = torch.broadcast_shapes(px.shape[:-2], py.shape[:-2])
    both = torch.cat([px.expand(*lead, n, px.shape[-1]), py.expand(*lead, m, py.shape[-1])], dim=-2).std(dim=-2)
    return torch.where(sy > rounding, sy, both).clamp_min(torch.finfo(py.dtype).tiny)
