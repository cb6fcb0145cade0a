"""Input checks shared by every layer: output sizes, image tensors, sample clouds.

Each check raises :class:`~ottex.core.errors.InputError` with a one-line message
in library terms (parameter names, no command-line flags).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence

import torch

from .errors import InputError

__all__ = ["MIN_SIDE", "MIN_EXAMPLE_SIDE", "check_int", "check_batch", "check_size", "check_image",
           "check_example", "check_cloud", "check_clouds", "check_gaussians", "is_integer", "renamed_keyword"]

#: Smallest output side: every method works on sizes of at least 16 px.
MIN_SIDE = 16
#: Smallest side of a style example or a content image: below it there is no texture (or layout) to take.
MIN_EXAMPLE_SIDE = 8

_SHAPES = {"single": "(1, 3, H, W)", "batch": "(B, 3, H, W)", "any": "(*, 3, H, W)"}


def is_integer(value: object) -> bool:
    """Whether ``value`` is an integer (numpy's too), not a bool, float or string.

    Example:
        >>> is_integer(3), is_integer(3.0), is_integer(True)
        (True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(value: object, name: str, low: int | None = None, high: int | None = None) -> int:
    """An integer setting given as a number or as text (``"3"``; a whole float such as ``3.0`` counts), within
    ``[low, high]``.

    Raises:
        InputError: ``"<name> takes an integer, got ..."`` or ``"<name> must be at least ..."`` (``option=name``).

    Example:
        >>> check_int("3", "batch", low=1), check_int(2.0, "size")
        (3, 2)
    """
    number: object = value
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = None
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    if not is_integer(number):
        raise InputError(f"{name} takes an integer, got {str(value)[:40]!r}", option=name)
    n = int(number)  # type: ignore[call-overload]
    if low is not None and n < low:
        raise InputError(f"{name} must be at least {low}, got {n}", option=name)
    if high is not None and n > high:
        raise InputError(f"{name} must be at most {high}, got {n}", option=name)
    return n


def renamed_keyword(new_value: object, old_value: object, new: str, old: str, default: object = None) -> object:
    """The value of a keyword argument renamed from ``old`` to ``new`` (the name the command line uses): ``new``'s,
    or ``old``'s with a :class:`FutureWarning` that names ``new``.

    Raises:
        InputError: both were given.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     renamed_keyword(None, 3, "rotations", "iterations")
        3
        >>> str(seen[0].message)
        'iterations= is deprecated: use rotations= (the same setting, named as on the command line)'
    """
    if old_value is None:
        return new_value
    if new_value is not default and new_value != default:
        raise InputError(f"give {new}= alone ({old}= is its former name)", option=new)
    warnings.warn(f"{old}= is deprecated: use {new}= (the same setting, named as on the command line)",
                  FutureWarning, stacklevel=3)
    return old_value


def check_batch(batch: object) -> int:
    """The number of images of a run: an integer of at least 1."""
    return check_int(batch, "batch", low=1)


def check_size(size: int | Sequence[int], min_side: int = MIN_SIDE) -> tuple[int, int]:
    """``(height, width)`` as two ints, both at least ``min_side``; an int is a square.

    Messages give sizes as width x height (``WxH``), as output names and the rest of ottex do.

    Example:
        >>> check_size((64, 96.0)), check_size(64)
        ((64, 96), (64, 64))
    """
    if isinstance(size, (int, float)) and not isinstance(size, bool):
        size = (size, size)
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2:
        raise InputError(f"size must be an int or (height, width), got {size!r}", option="size")
    h, w = check_int(size[0], "size"), check_int(size[1], "size")
    if h <= 0 or w <= 0:
        raise InputError(f"output size must be positive, got {w}x{h}", option="size")
    if min(h, w) < min_side:
        raise InputError(f"output size {w}x{h} is too small: both sides must be at least {min_side} px",
                         option="size")
    return h, w


def check_image(image: object, what: str = "image", shape: str = "single", path_ok: bool = False) -> torch.Tensor:
    """Check that ``image`` is an RGB tensor of the expected shape; returns it unchanged.

    Args:
        image: the value to check.
        what: its name in the message (``"style"``, ``"content"`` ...).
        shape: ``"single"`` (``(1, 3, H, W)`` or ``(3, H, W)``), ``"batch"``
            (``(B, 3, H, W)``) or ``"any"`` (``(*, 3, H, W)``).
        path_ok: an image path would also have been accepted (said in the message).

    Example:
        >>> check_image(torch.rand(2, 3, 8, 8), "style")
        Traceback (most recent call last):
        ...
        ottex.core.errors.InputError: style must be a single image, got a batch of 2
    """
    ok = isinstance(image, torch.Tensor) and image.dim() >= 3 and image.shape[-3] == 3
    if ok and shape == "single":
        ok = image.dim() in (3, 4)
    if ok and shape == "batch":
        ok = image.dim() == 4
    if not ok:
        got = f", got {tuple(image.shape)}" if isinstance(image, torch.Tensor) else ""
        kind = "an image path or an RGB tensor" if path_ok else "an RGB tensor"
        raise InputError(f"{what} must be {kind} of shape {_SHAPES[shape]}{got}", option=what)
    if shape == "single" and image.dim() == 4 and image.shape[0] != 1:
        raise InputError(f"{what} must be a single image, got a batch of {image.shape[0]}", option=what)
    return image


def check_example(image: torch.Tensor, what: str = "style") -> torch.Tensor:
    """Refuse a style example (or content image) too small to take a texture (or a layout) from; returns it.

    Example:
        >>> check_example(torch.rand(1, 3, 1, 1))
        Traceback (most recent call last):
        ...
        ottex.core.errors.InputError: style example is 1x1 px: too small to take a texture from (at least 8 px a side)
    """
    h, w = image.shape[-2:]
    if min(h, w) < MIN_EXAMPLE_SIDE:
        name, purpose = ("style example", "a texture") if what == "style" else (what, "a layout")
        raise InputError(f"{name} is {w}x{h} px: too small to take {purpose} from (at least {MIN_EXAMPLE_SIDE} px "
                         "a side)", option=what)
    return image


def check_clouds(x: torch.Tensor, y: torch.Tensor, names: tuple[str, str] = ("x", "y"),
                 p: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two sample clouds ``(*, N, C)`` and ``(*, M, C)`` compared column by column, in one floating dtype.

    Integer clouds become the default float dtype (their differences would wrap around: uint8 255 - 1 ...), and
    two float dtypes their promotion (as torch's arithmetic would).

    Args:
        x: first cloud.
        y: second cloud.
        names: their names in messages.
        p: an order that must be at least 1, if given.

    Returns:
        ``(x, y)``, converted where needed.

    Raises:
        InputError: a cloud has no samples or the wrong shape, their numbers of columns differ, or ``p < 1``.

    Example:
        >>> check_clouds(torch.zeros(2, 3, dtype=torch.uint8), torch.rand(4, 3))[0].dtype
        torch.float32
    """
    check_cloud(x, names[0])
    check_cloud(y, names[1])
    if x.shape[-1] != y.shape[-1]:
        raise InputError(f"{names[0]} has {x.shape[-1]} columns but {names[1]} has {y.shape[-1]}")
    if p is not None and not p >= 1:
        raise InputError(f"the order p must be at least 1, got {p}")
    dtype = _common_float(x, y)
    return x.to(dtype), y.to(dtype)


def check_gaussians(mean1: torch.Tensor, cov1: torch.Tensor, mean2: torch.Tensor, cov2: torch.Tensor,
                    names: tuple[str, str] = ("1", "2")) -> tuple[torch.Tensor, ...]:
    """Two Gaussians, means ``(*, C)`` and covariances ``(*, C, C)`` of one dimension ``C``, in one floating dtype.

    Integer tensors become the default float dtype, several float dtypes their promotion (as in
    :func:`check_clouds`); leading batch dimensions must broadcast.

    Args:
        mean1: first mean.
        cov1: first covariance.
        mean2: second mean.
        cov2: second covariance.
        names: the suffixes of the four names in messages (``mean1``, ``cov1`` ...).

    Returns:
        ``(mean1, cov1, mean2, cov2)``, converted where needed.

    Raises:
        InputError: a covariance is not square, a mean does not match its covariance, the two dimensions differ,
            or the batch dimensions do not broadcast.

    Example:
        >>> m, c = torch.zeros(3), torch.eye(3)
        >>> check_gaussians(m, c, m.double(), c)[1].dtype
        torch.float64
    """
    tensors = (mean1, cov1, mean2, cov2)
    for k, (mean, cov) in enumerate(((mean1, cov1), (mean2, cov2))):
        if cov.dim() < 2 or cov.shape[-1] != cov.shape[-2]:
            raise InputError(f"cov{names[k]} must have shape (*, C, C), got {tuple(cov.shape)}")
        if mean.dim() < 1 or mean.shape[-1] != cov.shape[-1]:
            raise InputError(f"mean{names[k]} must have shape (*, C) with C = {cov.shape[-1]} (the size of "
                             f"cov{names[k]}), got {tuple(mean.shape)}")
    if cov1.shape[-1] != cov2.shape[-1]:
        raise InputError(f"the Gaussians have {cov1.shape[-1]} and {cov2.shape[-1]} dimensions")
    try:
        torch.broadcast_shapes(mean1.shape[:-1], cov1.shape[:-2], mean2.shape[:-1], cov2.shape[:-2])
    except RuntimeError:
        raise InputError(f"the batch dimensions of the Gaussians do not broadcast: {tuple(mean1.shape)}, "
                         f"{tuple(cov1.shape)}, {tuple(mean2.shape)}, {tuple(cov2.shape)}") from None
    dtype = _common_float(*tensors)
    return tuple(t.to(dtype) for t in tensors)


def _common_float(*tensors: torch.Tensor) -> torch.dtype:
    """The promotion of the floating dtypes among ``tensors`` (the default float dtype when none is floating)."""
    floats = [t.dtype for t in tensors if t.is_floating_point()]
    if not floats:
        return torch.get_default_dtype()
    dtype = floats[0]
    for other in floats[1:]:
        dtype = torch.promote_types(dtype, other)
    return dtype


def check_cloud(x: torch.Tensor, name: str) -> None:
    """A sample cloud of shape ``(*, N, C)`` with at least one sample."""
    if x.dim() < 2:
        raise InputError(f"{name} must have shape (*, N, C), got {tuple(x.shape)}")
    if x.shape[-2] == 0:
        raise InputError(f"{name} has no samples")
