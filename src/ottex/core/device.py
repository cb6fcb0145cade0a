"""Devices and random generators: tensors stay on the caller's device, runs are repeatable under a seed."""

from __future__ import annotations

import torch

from .errors import InputError

__all__ = ["resolve_device", "make_generator", "DEVICES"]

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
