"""Devices and random generators: tensors stay on the caller's device, runs are repeatable under a seed."""

from __future__ import annotations

import torch

from .errors import InputError

__all__ = ["resolve_device", "make_generator", "DEVICES", "DTYPE_CHOICES", "bfloat16_is_fast"]

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


def make_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A :class:`torch.Generator` on ``device`` seeded with ``seed`` (None: a random seed).

    Example:
        >>> a = torch.rand(2, generator=make_generator(0))
        >>> torch.equal(a, torch.rand(2, generator=make_generator(0)))
        True
    """
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


#: Values of the options that pick a computation's dtype (Optimal Textures' ``network_dtype``, STROTSS's
#: ``match_dtype``): ``"auto"`` is bfloat16 where :func:`bfloat16_is_fast`, else float32.
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
