"""Image input and output with Pillow.

Images are float tensors in ``[0, 1]`` of shape ``(1, 3, H, W)`` (RGB).
:func:`as_image` is the one entry point of every method for an image argument
(a path or a tensor).
Grayscale, palette, RGBA, CMYK, 16-bit and 32-bit images are converted on load;
EXIF orientation is applied. Writes are atomic (temporary file + rename) and
never replace an existing file unless asked to.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from ..core.checks import check_image
from ..core.device import resolve_device
from ..core.errors import ImageError, InputError
from ..core.files import atomic_output
from ..core.resample import resize, resize_long_side

__all__ = [
    "load_image",
    "save_image",
    "output_format",
    "holds_settings",
    "as_image",
    "image_size",
    "read_settings",
    "SETTINGS_KEY",
    "to_pil",
    "to_rgb_array",
    "resize",
    "resize_long_side",
    "IMAGE_SUFFIXES",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Any Pillow image -> float32 (H, W, 3) array in [0, 1]."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img, dtype=np.float32) / 65535.0
        return np.repeat(arr[..., None], 3, axis=2)
    if mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        hi = 65535.0 if arr.max(initial=0) > 255 else 255.0
        if mode == "F" and arr.max(initial=0) <= 1.0:
            hi = 1.0
        arr = np.clip(arr / hi, 0.0, 1.0)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # Composite transparent pixels over white: what image viewers show.
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def load_image(
    path: str | os.PathLike,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Read an image file as an RGB tensor.

    Args:
        path: image file (any format Pillow reads).
        device: device of the returned tensor.
        dtype: floating dtype of the returned tensor.

    Returns:
        Tensor of shape ``(1, 3, H, W)`` with values in ``[0, 1]``.

    Raises:
        ImageError: missing, unreadable, corrupt or empty image.
        InputError: a dtype that is not floating, or a device that is not there.

    Example:
        >>> img = load_image("style.jpg")  # doctest: +SKIP
        >>> img.shape  # doctest: +SKIP
        torch.Size([1, 3, 512, 512])
    """
    if not dtype.is_floating_point:
        raise InputError(f"load_image gives floats in [0, 1]: dtype must be a floating dtype, got {dtype}")
    if device is not None:
        device = resolve_device(device)  # a clear error for a CUDA device that is not there
    p = Path(path)
    if not p.exists():
        raise ImageError(f"image not found: {p}")
    if p.is_dir():
        raise ImageError(f"expected an image file, got a directory: {p}")
    try:
        with Image.open(p) as img:
            img.load()
            img = ImageOps.exif_transpose(img) or img
            arr = to_rgb_array(img)
    except UnidentifiedImageError:
        raise ImageError(f"not an image file (or an unsupported format): {p}") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(f"cannot read image {p}: {exc}") from None
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"image has no pixels: {p}")
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0)
    return t.to(device=device, dtype=dtype)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(height, width)`` of an image file as :func:`load_image` would return it (EXIF orientation applied),
    from its header only.

    Raises:
        ImageError: missing or unreadable file.
    """
    p = Path(path)
    if not p.is_file():
        raise ImageError(f"image not found: {p}")
    try:
        with Image.open(p) as img:
            w, h = img.size
            orientation = img.getexif().get(0x0112, 1)  # EXIF Orientation: 5-8 turn the image by 90 degrees
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(f"cannot read image {p}: {exc}") from None
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def to_pil(image: torch.Tensor) -> Image.Image:
    """``(1, 3, H, W)`` or ``(3, H, W)`` tensor in ``[0, 1]`` -> 8-bit RGB Pillow image."""
    if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4) or image.shape[-3] != 3:
        got = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ImageError(f"an image to write is an RGB tensor of shape (1, 3, H, W) or (3, H, W), got {got}")
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ImageError(f"to_pil takes one image, got a batch of {image.shape[0]}")
        image = image[0]
    if min(image.shape[-2:]) == 0:
        raise ImageError(f"an image to write is empty: {tuple(image.shape)}")
    if image.dtype == torch.uint8:  # 0-255 already
        return Image.fromarray(image.detach().permute(1, 2, 0).cpu().numpy(), "RGB")
    if image.is_floating_point() and not bool(torch.isfinite(image).all()):
        raise ImageError("an image to write has NaN or infinite values")
    arr = (image.detach().float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, "RGB")


#: Key of the settings record in a PNG text chunk (in a JPEG: the comment holds the record).
SETTINGS_KEY = "ottex"


#: The formats whose files hold the settings record (a PNG text chunk, a JPEG comment).
RECORDING_FORMATS = ("PNG", "JPEG")


def holds_settings(path: str | os.PathLike) -> bool:
    """Whether an image written to ``path`` keeps the settings record (its format is one of :data:`RECORDING_FORMATS`).

    Example:
        >>> holds_settings("a.png"), holds_settings("a.webp")
        (True, False)
    """
    return Image.registered_extensions().get(Path(path).suffix.lower()) in RECORDING_FORMATS


def output_format(path: str | os.PathLike) -> str:
    """Pillow's format name for writing ``path``, from its suffix (``"PNG"`` for ``x.png``).

    Raises:
        ImageError: the suffix names no image format (``option="outputs"``).

    Example:
        >>> output_format("wall.JPG")
        'JPEG'
    """
    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    if fmt is None:
        raise ImageError(f"unknown image format for output {path} (use e.g. .png or .jpg)", option="outputs")
    return fmt


def save_image(
    image: torch.Tensor | Image.Image,
    path: str | os.PathLike,
    overwrite: bool = False,
    quality: int = 95,
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """Write an image atomically, optionally with the settings that made it.

    The image is written to a temporary file in the target folder and renamed
    into place, so a failure never leaves a partial file behind; a new file gets
    the permissions of any new file (``0666`` minus the umask), a replaced one
    keeps its own (:func:`ottex.core.files.atomic_output`).

    Args:
        image: ``(1, 3, H, W)`` or ``(3, H, W)`` tensor in ``[0, 1]``, or a Pillow image.
        path: output file; the format follows its suffix (PNG, JPEG, ...).
        overwrite: replace an existing file.
        quality: JPEG/WebP quality.
        settings: a JSON-able record of how the image was made, stored in the
            file (PNG: a text chunk ``ottex``; JPEG: the comment; other formats:
            not stored); :func:`read_settings` reads it back. Default: the
            record a result of ottex carries (``image.ottex_settings``: the
            tensor ``ottex.synthesize``, ``ottex.transfer``, ``Method.synthesize``
            ... returned, as it was returned), else none.

    Returns:
        The written path.

    Raises:
        ImageError: the file exists (and ``overwrite`` is false), the suffix is
            not an image format, or the folder is missing or not writable.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise ImageError(f"output exists: {p}", option="overwrite")
    fmt = output_format(p)
    if not p.parent.exists():
        raise ImageError(f"output folder does not exist: {p.parent}")
    pil = image if isinstance(image, Image.Image) else to_pil(image)
    if settings is None:
        settings = getattr(image, "ottex_settings", None)
    kwargs: dict[str, Any] = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if settings is not None:
        text = json.dumps(settings, sort_keys=True)
        if fmt == "PNG":
            info = PngImagePlugin.PngInfo()
            info.add_text(SETTINGS_KEY, text)
            kwargs["pnginfo"] = info
        elif fmt == "JPEG":
            kwargs["comment"] = text
    try:
        with atomic_output(p) as fh:
            pil.save(fh, format=fmt, **kwargs)
    except OSError as exc:
        raise ImageError(f"cannot write {p}: {exc.strerror or exc}") from None
    return p


def read_settings(path: str | os.PathLike) -> dict[str, Any] | None:
    """The settings record :func:`save_image` stored in an image file (None when it has none).

    Raises:
        ImageError: missing or unreadable file.

    Example:
        >>> read_settings("texture.png")["seed"]  # doctest: +SKIP
        0
    """
    p = Path(path)
    if not p.is_file():
        raise ImageError(f"image not found: {p}")
    try:
        with Image.open(p) as img:
            text = getattr(img, "text", {}).get(SETTINGS_KEY) if img.format == "PNG" else img.info.get("comment")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(f"cannot read image {p}: {exc}") from None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        record = json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and SETTINGS_KEY in record else None


ImageLike = torch.Tensor | str | os.PathLike


def as_image(
    image: ImageLike,
    device: torch.device | str | None = None,
    what: str = "image",
    *,
    shape: str = "single",
    dtype: torch.dtype | None = torch.float32,
) -> torch.Tensor:
    """An image argument (a path or a tensor) as a tensor: the one input check of every method.

    Args:
        image: an image file, or an RGB tensor in ``[0, 1]``.
        device: device of the result (None: a tensor stays where it is).
        what: the argument's name in error messages (``"style"``, ``"content"``).
        shape: ``"single"``: one image, returned as ``(1, 3, H, W)``; ``"any"``:
            ``(*, 3, H, W)`` returned as given.
        dtype: dtype of the result (None: a tensor keeps its dtype).

    Returns:
        The image tensor.

    A ``uint8`` tensor is taken as 0-255 (as torchvision's ``ToTensor`` does) and divided by 255; the result is
    in the standard (contiguous) memory layout, so that a channels-last or transposed input gives the same image.

    Raises:
        InputError: a tensor of the wrong shape, of an integer dtype other than ``uint8``, with NaN or infinite
            values, or with values outside ``[0, 1]`` (a 0-255 float image, say).
        ImageError: a file that cannot be read.

    Example:
        >>> as_image(torch.rand(3, 8, 8), what="style").shape
        torch.Size([1, 3, 8, 8])
        >>> as_image(torch.full((3, 2, 2), 255, dtype=torch.uint8)).max().item()
        1.0
    """
    if isinstance(image, (str, os.PathLike)):
        return load_image(image, device=device, dtype=dtype or torch.float32)
    check_image(image, what, shape, path_ok=True)
    if image.dtype == torch.uint8:
        image = image.to(dtype or torch.float32) / 255.0
    _check_values(image, what)
    if shape == "single" and image.dim() == 3:
        image = image.unsqueeze(0)
    if device is None and dtype is None:
        return image
    return image.to(device=device, dtype=dtype).contiguous(memory_format=torch.contiguous_format)


#: How far outside ``[0, 1]`` an image tensor's values may lie (rounding of earlier computations) before
#: :func:`as_image` refuses it.
RANGE_TOLERANCE = 1e-3


def _check_values(image: torch.Tensor, what: str) -> None:
    """Refuse a non-float tensor, NaN or infinite values, and values outside ``[0, 1]``."""
    if not image.is_floating_point():
        raise InputError(f"{what} is a {str(image.dtype).replace('torch.', '')} tensor: give floats in [0, 1] "
                         "(or uint8 in 0-255)", option=what)
    if image.numel() == 0:
        return
    if not bool(torch.isfinite(image).all()):
        raise InputError(f"{what} has NaN or infinite values", option=what)
    lo, hi = (float(v) for v in torch.aminmax(image.detach()))
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        hint = ": a 0-255 image? divide it by 255" if hi > 2 else ""
        raise InputError(f"{what} values must be in [0, 1], got {lo:.4g} ... {hi:.4g}{hint}", option=what)
