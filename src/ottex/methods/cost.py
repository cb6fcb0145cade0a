"""What a run will cost, from its output size, before it starts: peak memory and time, and the one check that
refuses a run this machine cannot hold.

Each method carries a :class:`RunCost` (``Method(..., cost=...)``): measured points ``(megapixels, peak MB,
seconds)`` of whole runs at default settings, read by linear interpolation in the output's pixels (times the
batch) and extrapolated beyond the last point along the line through the last two. The points are measured, not
modelled (``benchmarks/run_cost.py`` measures peak RSS in a fresh process per size; the large sizes are those of
README, "Large outputs"); the estimate is rough (settings and the example change it by tens of per cent) and is
meant to tell a 512 px run from a 100000 px one, not to plan to the second. Times are those of this project's
2-core CPU with 2 torch threads and nothing else running; on a GPU they are not given.

:func:`check_run_cost` is called by :func:`~ottex.methods.request.make_job` (every front end: the command line,
the web app, manifests) and by :meth:`~ottex.methods.base.Method.synthesize` / ``transfer`` (every run, the Python
functions included): a run whose estimated peak exceeds the memory available on its device is an
:class:`~ottex.core.errors.InputError` that says what would fit; one that needs more than half of it, or more than
:data:`WARN_SECONDS`, is a warning with the estimate.

Example:
    >>> cost = RunCost(((0.25, 1000.0, 10.0), (1.0, 2000.0, 40.0)))
    >>> cost.memory_mb(4.0), cost.seconds(0.5)  # beyond the last point: along the last segment
    (6000.0, 20.0)
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..core.device import resolve_device
from ..core.errors import ImageError, InputError
from ..core.pyramid import content_output_size
from ..image.io import image_size

__all__ = ["RunCost", "Estimate", "DEFAULT_COST", "WARN_SECONDS", "WARN_MEMORY_SHARE", "available_memory",
           "estimate_run", "check_run_cost", "output_hw"]

#: A run estimated to take longer than this (seconds, on this project's 2-core CPU) is announced with a warning.
WARN_SECONDS = 15 * 60
#: A run estimated to need more than this share of the available memory is announced with a warning.
WARN_MEMORY_SHARE = 0.5


@dataclass(frozen=True)
class RunCost:
    """Peak memory and time of a method's runs against their output pixels.

    Attributes:
        points: measured ``(megapixels, peak MB, seconds)`` of whole runs (output pixels times the batch),
            increasing in megapixels; seconds may be None where not measured (then no time is estimated).
    """

    points: tuple[tuple[float, float, float | None], ...]

    def _read(self, megapixels: float, column: int) -> float | None:
        pts = [(p[0], p[column]) for p in self.points if p[column] is not None]
        if not pts:
            return None
        if len(pts) == 1:  # one point: in proportion to the pixels
            return pts[0][1] * megapixels / pts[0][0]
        if megapixels <= pts[0][0]:
            return pts[0][1]  # below the first point: its cost (the start-up dominates)
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            if megapixels <= x1:
                return y0 + (y1 - y0) * (megapixels - x0) / (x1 - x0)
        (x0, y0), (x1, y1) = pts[-2:]  # beyond the last point: along the last segment
        return y1 + (y1 - y0) * (megapixels - x1) / (x1 - x0)

    def memory_mb(self, megapixels: float) -> float:
        """Estimated peak memory, MB."""
        return float(self._read(megapixels, 1) or 0.0)

    def seconds(self, megapixels: float) -> float | None:
        """Estimated wall time on this project's 2-core CPU, seconds (None: not measured)."""
        return self._read(megapixels, 2)


#: The cost of a method that declares none: ``ot``'s, the least per pixel of the measured methods, so that only a
#: run that cannot fit even then is refused.
DEFAULT_COST = RunCost(((1.05, 2417.0, None), (67.1, 16500.0, None)))


@dataclass(frozen=True)
class Estimate:
    """The estimated cost of one run.

    Attributes:
        method: the method's name.
        size: output ``(height, width)``.
        batch: images made at once.
        memory_mb: estimated peak memory, MB.
        seconds: estimated wall time on this project's 2-core CPU (None: not measured, or a GPU run).
        available_mb: memory available on the run's device, MB (None: unknown).
    """

    method: str
    size: tuple[int, int]
    batch: int
    memory_mb: float
    seconds: float | None
    available_mb: float | None

    def describe(self) -> str:
        """``"a 8192x8192 output (ot) needs about 16.5 GB of memory (22.3 GB available) and about 18 min"``."""
        h, w = self.size
        what = f"{self.batch} outputs of {w}x{h}" if self.batch > 1 else f"a {w}x{h} output"
        text = f"{what} ({self.method}) needs about {_bytes(self.memory_mb)} of memory"
        if self.available_mb is not None:
            text += f" ({_bytes(self.available_mb)} available)"
        if self.seconds is not None:
            text += f" and takes about {_duration(self.seconds)} on a quiet 2-core CPU"
        return text


def _bytes(mb: float) -> str:
    if mb >= 1e6:
        return f"{mb / 1e6:.3g} TB"
    return f"{mb / 1e3:.3g} GB" if mb >= 1e3 else f"{mb:.0f} MB"


def _duration(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} hours"
    return f"{max(1, round(seconds / 60))} min" if seconds >= 90 else f"{seconds:.0f} s"


def available_memory(device: str | torch.device | None = None) -> float | None:
    """Memory a run on ``device`` can take now, MB: free memory of a CUDA device, else the host's available
    memory (``MemAvailable`` of ``/proc/meminfo``; elsewhere the physical memory). None when unknown."""
    try:
        dev = resolve_device(device)
    except InputError:
        return None
    if dev.type == "cuda":
        try:
            return torch.cuda.mem_get_info(dev)[0] / 1e6
        except RuntimeError:
            return None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (ValueError, OSError, AttributeError):
        return None


def output_hw(size: Any, content: Any = None) -> tuple[int, int] | None:
    """Output ``(H, W)`` of a run: ``size`` as ``(H, W)``, an int square (synthesis) or, with a ``content`` (a
    path or a tensor), the long side applied to the content's aspect, or the content's own size for None. None
    when it cannot be known yet (a content that cannot be read: its run fails with the reading error)."""
    if isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2:
        return int(size[0]), int(size[1])
    if content is None:
        return (int(size), int(size)) if size is not None else None
    try:
        hw = content.shape[-2:] if isinstance(content, torch.Tensor) else image_size(content)
        return content_output_size(hw, size)
    except (ImageError, InputError, TypeError, OSError):
        return None


def _cost(method: Any, options: Any, task: str) -> RunCost:
    """The method's cost model for these options (:meth:`~ottex.methods.base.Method.run_cost`), or the default."""
    run_cost = getattr(method, "run_cost", None)
    cost = run_cost(options, task) if run_cost is not None else getattr(method, "cost", None)
    return cost or DEFAULT_COST


def estimate_run(method: Any, size: tuple[int, int], batch: int = 1,
                 device: str | torch.device | None = None, options: Any = None, task: str = "synthesis") -> Estimate:
    """The estimated cost of a run of ``method`` (a :class:`~ottex.methods.base.Method`) making ``batch`` images
    of ``size`` on ``device``, with ``options`` (None: the defaults) for ``task``."""
    cost = _cost(method, options, task)
    megapixels = size[0] * size[1] * batch / 1e6
    try:
        on_gpu = resolve_device(device).type != "cpu"
    except InputError:
        on_gpu = False
    return Estimate(method.name, (int(size[0]), int(size[1])), batch, cost.memory_mb(megapixels),
                    None if on_gpu else cost.seconds(megapixels), available_memory(device))


def _fitting(est: Estimate, cost: RunCost) -> tuple[int, int] | None:
    """The largest output of ``est``'s aspect whose estimate fits the available memory (sides multiples of 16)."""
    h, w = est.size
    low, high = 0.0, 1.0
    for _ in range(40):  # the estimate grows with the pixels: bisect the scale
        mid = (low + high) / 2
        if cost.memory_mb(h * w * mid * mid * est.batch / 1e6) <= (est.available_mb or 0):
            low = mid
        else:
            high = mid
    fh, fw = (int(side * low) // 16 * 16 for side in (h, w))
    return (fh, fw) if min(fh, fw) >= 16 else None


def check_run_cost(method: Any, size: tuple[int, int] | None, batch: int = 1,
                   device: str | torch.device | None = None, warn: bool = True, *, options: Any = None,
                   task: str = "synthesis") -> Estimate | None:
    """Refuse a run whose estimated peak memory exceeds what its device has available; warn (``warn``) about one
    that needs more than :data:`WARN_MEMORY_SHARE` of it or more than :data:`WARN_SECONDS`.

    Args:
        method: the :class:`~ottex.methods.base.Method`.
        size: output ``(height, width)`` (None: not known yet; nothing is checked).
        batch: images made at once.
        device: where it runs.
        warn: announce a large run with a :class:`UserWarning`.
        options: the run's options (None: the defaults); some change the cost (``ot``'s ``quality="best"``).
        task: ``"synthesis"`` or ``"transfer"``.

    Returns:
        The estimate (None without a size).

    Raises:
        InputError: ``"size 100000x100000 needs about ... of memory, more than the ... available here; ..."``
            (``option="size"``), before any work.
    """
    if size is None:
        return None
    est = estimate_run(method, size, batch, device, options, task)
    h, w = est.size
    if est.available_mb is not None and est.memory_mb > est.available_mb:
        fit = _fitting(est, _cost(method, options, task))
        fits = f"about {fit[1]}x{fit[0]} px would fit" if fit else "no output of this method fits"
        many = f" x {batch} images" if batch > 1 else ""
        raise InputError(f"size {w}x{h}{many} needs about {_bytes(est.memory_mb)} of memory with method "
                         f"{est.method}, more than the {_bytes(est.available_mb)} available here; {fits}"
                         + (" (or a smaller batch)" if batch > 1 else ""), option="size")
    large_memory = est.available_mb is not None and est.memory_mb > WARN_MEMORY_SHARE * est.available_mb
    if warn and (large_memory or (est.seconds is not None and est.seconds > WARN_SECONDS)):
        warnings.warn(f"{est.describe()}; Ctrl-C stops it", UserWarning, stacklevel=3)
    return est

