"""Procedural test textures: strongly structured examples made by code (CC0: no licence to track).

Each generator returns a ``(1, 3, H, W)`` float32 image in ``[0, 1]`` of the requested ``size`` (an int: a
square), drawn from a seeded :class:`torch.Generator` where it has random parts (colours, offsets, grain), so the
same seed gives the same image. They are the structured half of the texture set of ``benchmarks/structure.py``
and the inputs of the structure tests: straight stripes at several angles and periods, checkerboards, running-bond
bricks, wooden planks, a basket weave, square tiles, a grid of dots and rows of glyphs.

:data:`PROCEDURAL` maps a name to ``(generator, keyword arguments)``; :func:`procedural_set` makes all of them.

Example:
    >>> img = stripes(64, period=16, angle=90)
    >>> img.shape, float(img.min()) >= 0, float(img.max()) <= 1
    (torch.Size([1, 3, 64, 64]), True, True)
    >>> bool((img[..., 0, :] == img[..., 40, :]).all())  # vertical stripes: every row the same
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..core.checks import check_size

__all__ = [
    "stripes",
    "checkerboard",
    "bricks",
    "planks",
    "weave",
    "tiles",
    "dots",
    "glyphs",
    "PROCEDURAL",
    "procedural_set",
]

Size = int | Sequence[int]


def _grid(size: Size) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = check_size(size)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    return yy, xx


def _colors(colors: Sequence[Sequence[float]]) -> torch.Tensor:
    return torch.tensor([list(c) for c in colors], dtype=torch.float32)  # (K, 3)


def _paint(index: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """``(H, W)`` integer labels -> ``(1, 3, H, W)`` image of their palette colours."""
    return palette[index.long() % len(palette)].permute(2, 0, 1)[None].contiguous()


def _noise(size: tuple[int, int], generator: torch.Generator, scale: float, cells: tuple[int, int]) -> torch.Tensor:
    """Smooth value noise ``(H, W)`` of amplitude ``scale``: random cells upsampled bicubically."""
    coarse = torch.rand(1, 1, cells[0] + 3, cells[1] + 3, generator=generator) * 2 - 1
    up = F.interpolate(coarse, size=(size[0] + 3 * size[0] // cells[0], size[1] + 3 * size[1] // cells[1]),
                       mode="bicubic", align_corners=False)
    return up[0, 0, : size[0], : size[1]] * scale


def stripes(
    size: Size,
    period: float = 16.0,
    angle: float = 90.0,
    colors: Sequence[Sequence[float]] = ((0.78, 0.70, 0.90), (0.70, 0.90, 0.80), (0.98, 0.82, 0.70),
                                         (0.70, 0.82, 0.96)),
    duty: float = 1.0,
    background: Sequence[float] = (0.15, 0.15, 0.18),
) -> torch.Tensor:
    """Straight stripes, one colour each in turn.

    Args:
        size: ``(height, width)`` or a square's side.
        period: width of one stripe plus its gap, in pixels.
        angle: direction of the stripes in degrees (90: vertical, 0: horizontal, 45: diagonal).
        colors: colours of successive stripes, RGB in ``[0, 1]``.
        duty: fraction of each period the stripe fills; the rest is ``background`` (1: no gap).
        background: colour of the gaps.

    Returns:
        ``(1, 3, H, W)`` image.
    """
    yy, xx = _grid(size)
    t = math.radians(angle)
    across = xx * round(math.sin(t), 12) - yy * round(math.cos(t), 12)  # the coordinate across the stripes
    index = torch.floor(across / period)
    img = _paint(index, _colors(colors))
    if duty < 1:
        gap = (across / period - index) >= duty
        img = torch.where(gap, torch.tensor(background, dtype=torch.float32)[:, None, None], img)
    return img.clamp_(0, 1)


def checkerboard(
    size: Size, cell: int = 16, colors: Sequence[Sequence[float]] = ((0.92, 0.90, 0.85), (0.15, 0.20, 0.35))
) -> torch.Tensor:
    """Square cells of two colours.

    Args:
        size: ``(height, width)`` or a square's side.
        cell: side of a cell in pixels.
        colors: the two colours.
    """
    yy, xx = _grid(size)
    return _paint(torch.div(yy, cell, rounding_mode="floor") + torch.div(xx, cell, rounding_mode="floor"),
                  _colors(colors))


def bricks(size: Size, brick: tuple[int, int] = (16, 40), mortar: int = 3, seed: int = 0) -> torch.Tensor:
    """Running-bond brick wall: rows of ``brick`` = ``(height, width)`` bricks offset by half a brick, each of a
    slightly different red, in light mortar lines of ``mortar`` px, with a fine grain."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = _grid(size)
    bh, bw = brick
    row = torch.div(yy, bh, rounding_mode="floor")
    shifted = xx + (row % 2) * (bw // 2)
    col = torch.div(shifted, bw, rounding_mode="floor")
    ids = (row * 7919 + col).long() % 997
    tint = torch.rand(997, 3, generator=gen) * 0.12
    base = torch.tensor([0.62, 0.27, 0.20]) + tint - 0.06
    img = base[ids].permute(2, 0, 1)[None]
    grain = _noise(tuple(yy.shape), gen, 0.05, (yy.shape[0] // 4 + 1, yy.shape[1] // 4 + 1))
    img = img + grain
    joint = ((yy % bh) < mortar) | ((shifted % bw) < mortar)
    img = torch.where(joint, torch.tensor([0.80, 0.78, 0.72])[:, None, None] + grain * 0.5, img)
    return img.clamp_(0, 1).contiguous()


def planks(size: Size, width: int = 28, seed: int = 0) -> torch.Tensor:
    """Horizontal wooden planks of ``width`` px with a long grain along them, dark seams between planks and
    staggered butt joints."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = _grid(size)
    h, w = yy.shape
    row = torch.div(yy, width, rounding_mode="floor")
    offset = torch.rand(h // width + 2, generator=gen)[row.long()] * 200
    length = 150
    plank = torch.div(xx + offset, length, rounding_mode="floor")
    ids = (row * 131 + plank).long() % 503
    tone = torch.rand(503, generator=gen)[ids] * 0.15
    phase = torch.rand(503, generator=gen)[ids] * 6.28
    warp = _noise((h, w), gen, 3.0, (max(2, h // 32), max(2, w // 96)))
    grain = 0.5 + 0.5 * torch.sin((yy + warp) * 1.3 + phase) * torch.sin((yy + warp) * 0.31 + phase)
    wood = torch.tensor([0.55, 0.36, 0.20])[:, None, None] * (0.8 + 0.3 * grain + tone)
    seam = ((yy % width) < 2) | (((xx + offset) % length) < 2)
    img = torch.where(seam, torch.tensor([0.18, 0.11, 0.07])[:, None, None], wood)
    return img[None].clamp_(0, 1).contiguous()


def weave(size: Size, cell: int = 12) -> torch.Tensor:
    """Basket weave: blocks of ``cell`` px alternate between horizontal and vertical threads (shaded so each
    thread is visible)."""
    yy, xx = _grid(size)
    block = (torch.div(yy, cell, rounding_mode="floor") + torch.div(xx, cell, rounding_mode="floor")) % 2
    thread = cell / 3
    along_x = 0.5 + 0.5 * torch.cos(2 * math.pi * (yy % thread) / thread)  # horizontal threads
    along_y = 0.5 + 0.5 * torch.cos(2 * math.pi * (xx % thread) / thread)
    shade = torch.where(block.bool(), along_x, along_y)
    base = torch.where(block.bool(), torch.tensor([0.85, 0.72, 0.45])[:, None, None],
                       torch.tensor([0.70, 0.55, 0.32])[:, None, None])
    return (base * (0.55 + 0.45 * shade))[None].clamp_(0, 1).contiguous()


def tiles(size: Size, cell: int = 32, grout: int = 3, seed: int = 0) -> torch.Tensor:
    """Square ceramic tiles of ``cell`` px, each a slightly different blue-green, in ``grout`` px grey joints."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = _grid(size)
    ids = (torch.div(yy, cell, rounding_mode="floor") * 613 + torch.div(xx, cell, rounding_mode="floor")).long()
    palette = torch.tensor([0.20, 0.50, 0.55]) + (torch.rand(1021, 3, generator=gen) - 0.5) * 0.16
    img = palette[ids % 1021].permute(2, 0, 1)
    joint = ((yy % cell) < grout) | ((xx % cell) < grout)
    img = torch.where(joint, torch.tensor([0.75, 0.75, 0.72])[:, None, None], img)
    return img[None].clamp_(0, 1).contiguous()


def dots(size: Size, spacing: int = 20, radius: float = 6.0) -> torch.Tensor:
    """A square grid of round dots (red on cream), ``spacing`` px apart."""
    yy, xx = _grid(size)
    dy = (yy % spacing) - spacing / 2
    dx = (xx % spacing) - spacing / 2
    inside = (dx.pow(2) + dy.pow(2)).sqrt() - radius
    alpha = (0.5 - inside).clamp(0, 1)  # one pixel of anti-aliasing
    fg = torch.tensor([0.80, 0.15, 0.18])[:, None, None]
    bg = torch.tensor([0.96, 0.93, 0.84])[:, None, None]
    return (alpha * fg + (1 - alpha) * bg)[None].contiguous()


def glyphs(size: Size, cell: tuple[int, int] = (14, 9), seed: int = 0) -> torch.Tensor:
    """Rows of random block glyphs, like lines of text: each glyph a random 5x3 bit pattern drawn in a ``cell``
    (line height, advance), with a blank line between lines of text."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = _grid(size)
    ch, cw = cell
    line = torch.div(yy, ch, rounding_mode="floor").long()
    pos = torch.div(xx, cw, rounding_mode="floor").long()
    bits = torch.rand(4099, 5, 3, generator=gen) < 0.5
    space = torch.rand(4099, generator=gen) < 0.15
    gid = (line * 977 + pos) % 4099
    gy = ((yy % ch) - 3).long()  # the glyph's 5 rows start 3 px into the line, 2 px per bit row
    gx = ((xx % cw) - 1).long()
    by, bx = torch.div(gy, 2, rounding_mode="floor"), torch.div(gx, 2, rounding_mode="floor")
    ok = (gy >= 0) & (by < 5) & (gx >= 0) & (bx < 3) & ~space[gid] & (line % 4 != 3)
    ink = bits[gid, by.clamp(0, 4), bx.clamp(0, 2)] & ok
    img = torch.where(ink, torch.tensor(0.1), torch.tensor(0.95)).expand(3, -1, -1)
    return img[None].contiguous()


#: The procedural examples of the texture set: name -> (generator, keyword arguments).
PROCEDURAL: dict[str, tuple[Callable[..., torch.Tensor], dict]] = {
    "stripes-vertical": (stripes, {"period": 14, "angle": 90}),
    "stripes-fine": (stripes, {"period": 6, "angle": 0, "colors": ((0.95, 0.85, 0.20),), "duty": 0.5}),
    "stripes-diagonal": (stripes, {"period": 18, "angle": 45, "colors": ((0.10, 0.25, 0.55), (0.95, 0.95, 0.90)),
                                   "duty": 1.0}),
    "checkerboard": (checkerboard, {"cell": 16}),
    "bricks": (bricks, {}),
    "planks": (planks, {}),
    "weave": (weave, {}),
    "tiles": (tiles, {}),
    "dots": (dots, {}),
    "glyphs": (glyphs, {}),
}


def procedural_set(size: Size = 256) -> dict[str, torch.Tensor]:
    """Every example of :data:`PROCEDURAL` at ``size``.

    Example:
        >>> sorted(procedural_set(32))[:3]
        ['bricks', 'checkerboard', 'dots']
    """
    return {name: fn(size, **kw) for name, (fn, kw) in PROCEDURAL.items()}
