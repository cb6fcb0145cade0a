"""Devices and random generators: tensors stay on the caller's device, runs are repeatable under a seed."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

from .checks import is_integer
from .errors import InputError

__all__ = ["resolve_device", "make_generator", "parse_seed", "MAX_SEED", "DEVICES", "DTYPE_CHOICES",
           "bfloat16_is_fast", "repeatable_on", "repeatable", "deterministic_backward", "NONDETERMINISTIC_WARNING"]

F = TypeVar("F", bound=Callable[..., Any])

#: The devices ottex runs on, as the error messages list them.
DEVICES = "auto, cpu, cuda, cuda:N"


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU; checks that a requested device exists.

    ottex runs on the CPU and on CUDA devices (``"cuda"``, ``"cuda:N"``); other
    device types torch knows (``"meta"``, ``"xla"`` ...) are refused here rather
    than failing later inside a method.

    Raises:
        InputError: an unknown or unsupported device, or a CUDA device that is
            not there (``option="device"``; messages start with "device").

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
        >>> resolve_device("tpu")
        Traceback (most recent call last):
        ...
        ottex.core.errors.InputError: device 'tpu' is unknown (choose from auto, cpu, cuda, cuda:N)
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"device '{device}' is unknown (choose from {DEVICES})", option="device") from None
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device '{device}' is not one ottex runs on (choose from {DEVICES})", option="device")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device '{device}' was requested but no CUDA device is available (use 'cpu' or "
                             "'auto')", option="device")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise InputError(f"device '{device}' was requested but there are {count} CUDA device(s): cuda:0 to "
                             f"cuda:{count - 1}", option="device")
    return dev


#: The largest seed a command takes: a batch's seeds ``seed, seed + 1, ...`` and the seeds derived from them stay
#: within torch's 64-bit seeds (negative seeds would alias large ones: -1 is 2**64 - 1 to torch).
MAX_SEED = 2**63 - 1


def parse_seed(text: str | int) -> int:
    """A seed from the command line or a form: an integer from 0 to :data:`MAX_SEED`.

    Raises:
        ValueError: not an integer, or out of that range (argparse reports it as the option's error).

    Example:
        >>> parse_seed("42")
        42
    """
    try:
        seed = int(text) if isinstance(text, (str, int)) and not isinstance(text, bool) else -1
    except ValueError:
        seed = -1
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"a seed is an integer from 0 to {MAX_SEED}, got {text!r}")
    return seed


def make_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A :class:`torch.Generator` on ``device`` seeded with ``seed`` (None: a random seed; else 0 to 2**64 - 1).

    Example:
        >>> a = torch.rand(2, generator=make_generator(0))
        >>> torch.equal(a, torch.rand(2, generator=make_generator(0)))
        True
    """
    if seed is not None and not (is_integer(seed) and 0 <= seed < 2**64):
        raise InputError(f"seed must be an integer from 0 to 2**64 - 1 (commands: 0 to {MAX_SEED}), got {seed}",
                         option="seed")
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


#: Values of the options that pick a computation's dtype (Optimal Textures' ``network_dtype``, STROTSS's
#: ``match_dtype``, ``moment_dtype``, ``similarity_dtype`` and ``network_dtype``): ``"auto"`` is bfloat16 where
#: :func:`bfloat16_is_fast`, else float32 (for Optimal Textures only from 1024 x 1024 px).
DTYPE_CHOICES = ("auto", "float32", "bfloat16")


def bfloat16_is_fast(device: torch.device | str) -> bool:
    """Whether bfloat16 convolutions and matrix products beat float32 ones on ``device``: CPUs whose oneDNN has
    native bfloat16 instructions (AVX512-BF16, AMX; measured on one core of an AMD EPYC with AVX512-BF16: 2x for a
    64-channel 3x3 convolution, 2.2x for the 1024 x 5000 products of a STROTSS step). Elsewhere (GPUs, older CPUs,
    where bfloat16 would be emulated) ottex keeps float32. The answer depends only on the machine, so runs with the
    same seed on one machine repeat."""
    if torch.device(device).type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


#: Torch's warning for an operation that has no deterministic CUDA implementation (raised as a
#: warning inside :func:`repeatable_on`; ottex's own code paths avoid such operations on CUDA, and
#: ``tests/test_cuda.py`` fails on any).
NONDETERMINISTIC_WARNING = re.compile(r".*does not have a deterministic implementation")


@contextlib.contextmanager
def repeatable_on(device: torch.device | str) -> Iterator[None]:
    """Make a run on ``device`` repeat bit for bit under a seed; restores torch's settings afterwards (the last of
    several runs in this context at once restores them).

    On the CPU this changes nothing (its kernels repeat). On CUDA, several kernels that a backward pass uses add
    with atomics in no fixed order (scatter and ``index_add_``, the backward of an indexing, cuDNN's convolution
    weight and data gradients), so two runs with the same seed drift apart step by step (measured on an H200:
    0.03 of the pixel range after 20 steps of STROTSS at 64 px). Inside this context cuDNN picks deterministic
    convolution algorithms and torch its deterministic versions of those kernels
    (``torch.use_deterministic_algorithms(True, warn_only=True)``); cuBLAS products repeat on one stream, so the
    warning torch gives about ``CUBLAS_WORKSPACE_CONFIG`` is filtered out (one warnings filter, added once).
    Operations with no deterministic CUDA version still run and warn (:data:`NONDETERMINISTIC_WARNING`); ottex's
    own backward passes replace theirs while the mode is on (:func:`deterministic_backward`), and torch's filling of
    new tensors with NaN (a check that comes with the mode) is off for the run. It costs time: STROTSS at 512 px
    took 15 s before, 30 s with it (``cd16x``, an H200), 17 s and 42 s (the hybrid network, an H100; README, "GPU").
    ``OTTEX_NO_CUDA_DETERMINISM=1`` in the environment turns it off.

    Example:
        >>> with repeatable_on("cpu"):
        ...     torch.ones(2).sum().item()
        2.0
    """
    if torch.device(device).type != "cuda" or os.environ.get("OTTEX_NO_CUDA_DETERMINISM"):
        yield
        return
    entered = False
    try:  # entered inside the try: an exception raised into the thread (a cancelled web job) cannot leak the count
        entered = _enter_deterministic()
        yield
    finally:
        if entered:
            _leave_deterministic()


# Runs on several CUDA devices at once (threads of the web app) share torch's process-wide settings: the first run
# to enter sets them, the last to leave restores them.
_LOCK = threading.Lock()
_DEPTH = 0
_SAVED: tuple[bool, bool, bool, bool, bool] = (False, False, False, False, True)
_CUBLAS_WARNING = ".*CUBLAS_WORKSPACE_CONFIG"


def _enter_deterministic() -> bool:
    global _DEPTH, _SAVED
    with _LOCK:
        if _DEPTH == 0:
            _SAVED = (torch.are_deterministic_algorithms_enabled(),
                      torch.is_deterministic_algorithms_warn_only_enabled(),
                      torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
                      torch.utils.deterministic.fill_uninitialized_memory)
            # A caller's strict mode stays strict (an operation without a deterministic kernel then raises).
            torch.use_deterministic_algorithms(True, warn_only=_SAVED[1] if _SAVED[0] else True)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
            # Deterministic mode also fills every new uninitialised tensor with NaN (a check for code that reads
            # memory it never wrote, which ottex's does not): hundreds of fill kernels per STROTSS step, measured
            # (README, "GPU"). Off for the run; the values are the same.
            torch.utils.deterministic.fill_uninitialized_memory = False
            # cuBLAS repeats on one stream; its warning (one filter, added once) would only say to set the variable.
            if not any(f[1] is not None and f[1].pattern == _CUBLAS_WARNING for f in warnings.filters):
                warnings.filterwarnings("ignore", message=_CUBLAS_WARNING)
        _DEPTH += 1
        return True


def _leave_deterministic() -> None:
    global _DEPTH
    with _LOCK:
        _DEPTH -= 1
        if _DEPTH == 0:
            torch.use_deterministic_algorithms(_SAVED[0], warn_only=_SAVED[1])
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = _SAVED[2], _SAVED[3]
            torch.utils.deterministic.fill_uninitialized_memory = _SAVED[4]


def deterministic_backward(x: torch.Tensor) -> bool:
    """Whether an operation on ``x`` must have a backward without atomics: ``x`` is a CUDA tensor that needs a
    gradient while torch's deterministic mode is on (as inside :func:`repeatable_on`). ottex then uses
    formulations of reflection padding, bilinear resampling and bilinear lookup whose backward repeats (their
    CUDA backward passes in torch add with atomics in no fixed order); elsewhere the usual operations."""
    return x.is_cuda and x.requires_grad and torch.is_grad_enabled() and torch.are_deterministic_algorithms_enabled()


def repeatable(fn: F) -> F:
    """Decorator: run ``fn`` inside :func:`repeatable_on` its ``device`` keyword argument (resolved as
    :func:`resolve_device` does: ``None``/``"auto"`` is CUDA when available)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with repeatable_on(resolve_device(kwargs.get("device"))):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
