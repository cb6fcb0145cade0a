"""Optimal Textures style transfer: size and aspect, the content-strength trade-off, determinism, errors, CLI."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from ottex import OTSchedule, transfer
from ottex.app.cli import main
from ottex.core.pyramid import style_at, style_factor
from ottex.errors import InputError
from ottex.io import save_image
from ottex.metrics import content_distance, style_distance

pytestmark = pytest.mark.needs_weights

SMALL = OTSchedule(passes=(2, 1))


@pytest.fixture(scope="module")
def content(load_test_image):
    return load_test_image("content/bridge.jpg", (64, 96))


@pytest.fixture(scope="module")
def lava(load_test_image):
    return load_test_image("style/lava-small.jpg", 96)


def test_size_and_aspect(content, lava):
    out = transfer(content, lava, schedule=SMALL)
    assert out.shape == (1, 3, 64, 96) and 0 <= out.min() and out.max() <= 1
    out = transfer(content, lava, 48, schedule=SMALL)
    assert out.shape == (1, 3, 32, 48)


def test_content_strength_trades_style_for_layout(content, lava):
    style_ref = style_at(lava, style_factor(lava.shape[-2:], content.shape[-2:]))
    scores = {}
    for strength in (0.0, 0.6, 1.5):
        out = transfer(content, lava, content_strength=strength, seed=0)
        scores[strength] = (style_distance(out, style_ref), content_distance(out, content))
    s0, c0 = scores[0.0]
    s1, c1 = scores[1.5]
    assert c1 < 0.9 * c0  # a stronger pull keeps more of the layout
    assert s0 < s1  # ... and less of the style
    # the default result is much closer to the style than the content itself is
    assert scores[0.6][0] < 0.6 * style_distance(content, style_ref)


def test_same_seed_same_image(content, lava):
    a = transfer(content, lava, schedule=SMALL, seed=2)
    b = transfer(content, lava, schedule=SMALL, seed=2)
    c = transfer(content, lava, schedule=SMALL, seed=3, init="noise")
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"content_strength": -1}, "content strength"),
        ({"init": "style"}, "init"),
        ({"size": 8}, "too small"),
        ({"mode": "fancy"}, "unknown matching mode"),
    ],
)
def test_bad_arguments(content, lava, kwargs, match):
    with pytest.raises(InputError, match=match):
        transfer(content, lava, **kwargs)


def test_bad_content_tensor(lava):
    with pytest.raises(InputError, match="content must be"):
        transfer(torch.rand(2, 3, 32, 32), lava)


def test_style_command(tmp_path, content, lava, capsys):
    c, s = tmp_path / "bridge.png", tmp_path / "lava.png"
    save_image(content, c)
    save_image(lava, s)
    fast = ["--passes", "1", "--levels", "4,3,2,1", "-q"]
    assert main(["style", str(c), str(s), "--size", "48", "--outdir", str(tmp_path), *fast]) == 0
    out = tmp_path / "bridge_lava_style_cs0p6_48_sort_s0.png"
    assert Image.open(out).size == (48, 32)
    assert main(["style", str(c), str(s), "--size", "48", "-o", str(s), "--force", *fast]) == 1
    assert "is one of the inputs" in capsys.readouterr().err
    assert main(["style", str(c), str(tmp_path / "missing.png"), *fast]) == 1
    assert capsys.readouterr().err.startswith("ottex: error: image not found")
