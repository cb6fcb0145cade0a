"""Pictures for comparing results by eye: contact sheets of labelled images.

Example:
    >>> sheet = contact_sheet([("style", torch.rand(1, 3, 32, 32)), ("ours", torch.rand(1, 3, 32, 48))], tile=64)
    >>> sheet.size  # two 64 px tiles with captions
    (146, 96)
    >>> save_image(sheet, "sheet.png")  # atomic, no clobbering  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

from ..core.errors import InputError
from ..image.io import load_image, save_image, to_pil

__all__ = ["contact_sheet", "plot_history", "require_matplotlib"]

_LINE = 14  # px per caption line with Pillow's default bitmap font


def _as_pil(image: torch.Tensor | str | os.PathLike | Image.Image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, torch.Tensor):
        return to_pil(image if image.dim() == 4 else image.unsqueeze(0))
    return to_pil(load_image(image))


def _fit(im: Image.Image, tile: int) -> Image.Image:
    """Scale into a ``tile`` box, aspect kept: Lanczos when shrinking, nearest when enlarging (pixels stay visible)."""
    s = tile / max(im.size)
    size = (max(1, round(im.width * s)), max(1, round(im.height * s)))
    return im.resize(size, Image.Resampling.LANCZOS if s < 1 else Image.Resampling.NEAREST)


def contact_sheet(
    items: Sequence[tuple[str, torch.Tensor | str | os.PathLike | Image.Image]],
    tile: int = 256,
    columns: int | None = None,
    title: str | None = None,
) -> Image.Image:
    """Lay images out in a grid with a caption under each.

    Args:
        items: ``(caption, image)`` pairs; an image is a ``(1, 3, H, W)`` tensor,
            a path or a Pillow image. Captions may have several lines (``\\n``).
        tile: each image is scaled to fit a ``tile x tile`` box, aspect kept.
        columns: images per row (default: all in one row, at most 6).
        title: optional line above the grid.

    Returns:
        The sheet as a Pillow RGB image.
    """
    if not items:
        raise InputError("a contact sheet needs at least one image")
    if tile < 16:
        raise InputError(f"tile must be at least 16 px, got {tile}")
    cols = columns or min(len(items), 6)
    rows = -(-len(items) // cols)
    lines = max(caption.count("\n") + 1 for caption, _ in items)
    cap_h = lines * _LINE + 6
    top = _LINE + 8 if title else 0
    pad = 6
    sheet = Image.new("RGB", (cols * (tile + pad) + pad, top + rows * (tile + cap_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    if title:
        draw.text((pad, 4), title, fill="black", font=font)
    for i, (caption, image) in enumerate(items):
        im = _fit(_as_pil(image), tile)
        r, c = divmod(i, cols)
        x0 = pad + c * (tile + pad)
        y0 = top + pad + r * (tile + cap_h + pad)
        sheet.paste(im, (x0 + (tile - im.width) // 2, y0 + (tile - im.height) // 2))
        draw.multiline_text((x0, y0 + tile + 3), caption, fill="black", font=font, spacing=2)
    return sheet


def require_matplotlib() -> None:
    """Check that matplotlib can be imported (plots need it), so that a front end can refuse a plot before a run.

    Raises:
        InputError: it cannot.
    """
    try:
        import matplotlib  # noqa: F401, PLC0415 - optional dependency
    except ImportError:
        raise InputError('plots need matplotlib: pip install "ottex[plot]"') from None


def plot_history(
    history: Sequence[dict],
    path: str | os.PathLike,
    title: str | None = None,
    overwrite: bool = False,
) -> None:
    """Plot the loss over the steps of a run as PNG.

    ``history`` is the list of records of a :class:`~ottex.core.progress.LossHistory`
    subscriber (or the ``history`` list of :func:`ottex.stylize`). One line per
    scale of the coarse-to-fine schedule, on a log scale.
    Needs matplotlib (``pip install "ottex[plot]"``).
    """
    require_matplotlib()
    import matplotlib  # noqa: PLC0415 - optional dependency

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    if not history:
        raise InputError("no loss history to plot")

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    offset = 0
    for scale in sorted({h["scale"] for h in history}):
        rows = [h for h in history if h["scale"] == scale]
        xs = [offset + h["eval"] for h in rows]
        h, w = rows[0]["size"]
        ax.plot(xs, [h_["loss"] for h_ in rows], label=f"{w}x{h}")
        offset = xs[-1]
    ax.set_yscale("log")
    ax.set_xlabel("loss evaluation")
    ax.set_ylabel("loss")
    ax.legend(title="scale")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.canvas.draw()
    image = Image.frombuffer("RGBA", fig.canvas.get_width_height(), fig.canvas.buffer_rgba()).convert("RGB")
    plt.close(fig)
    save_image(image, path, overwrite=overwrite)
