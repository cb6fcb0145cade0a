"""Contact sheets: layout, captions, inputs of every kind, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ottex.core.errors import InputError
from ottex.eval.report import contact_sheet
from ottex.image.io import save_image


def test_sheet_layout_and_content(tmp_path):
    red = torch.zeros(1, 3, 40, 80)
    red[:, 0] = 1
    path = tmp_path / "blue.png"
    save_image(Image.new("RGB", (30, 30), (0, 0, 255)), path)
    sheet = contact_sheet([("red\nwide", red), ("blue", path), ("green", Image.new("RGB", (10, 20), "green"))],
                          tile=64, columns=2, title="demo")
    assert sheet.mode == "RGB"
    w, h = sheet.size
    assert w == 2 * (64 + 6) + 6 and h > 2 * 64  # two columns, two rows
    arr = np.asarray(sheet)
    assert (arr[..., 0] > 200).sum() > 64 * 30  # the red tile fills its box's width (aspect kept)
    assert ((arr[..., 2] > 200) & (arr[..., 0] < 50)).sum() > 60 * 60 * 0.9  # blue thumbnail scaled up to 64
    assert (arr.reshape(-1, 3).min(axis=1) < 60).sum() > 50  # captions drawn in black


def test_sheet_errors():
    with pytest.raises(InputError, match="at least one"):
        contact_sheet([])
    with pytest.raises(InputError, match="tile"):
        contact_sheet([("x", torch.rand(1, 3, 8, 8))], tile=4)


def test_plot_history(tmp_path):
    pytest.importorskip("matplotlib")
    from ottex.core.errors import ImageError
    from ottex.eval.report import plot_history

    history = [{"scale": s, "size": (32 * (s + 1), 32 * (s + 1)), "eval": i + 1, "loss": 10.0 / (i + 1 + 5 * s)}
               for s in (0, 1) for i in range(5)]
    out = tmp_path / "loss.png"
    plot_history(history, out, title="w2")
    with Image.open(out) as im:
        assert im.size == (600, 350) and im.mode == "RGB"
        arr = np.asarray(im)
    assert (arr.min(axis=2) < 128).sum() > 500  # axes, ticks and lines drawn
    with pytest.raises(ImageError, match="exists"):
        plot_history(history, out)
    with pytest.raises(InputError, match="no loss history"):
        plot_history([], tmp_path / "empty.png")
