"""Image IO: every common mode converts to RGB [0, 1]; bad files give clear errors; writes are atomic."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image

from ottex.core.errors import ImageError, InputError
from ottex.core.resample import resize, resize_long_side
from ottex.image.io import load_image, save_image


def _write(tmp_path, name, img: Image.Image):
    p = tmp_path / name
    img.save(p)
    return p


@pytest.mark.parametrize(
    "mode,fill,expected",
    [
        ("L", 128, [128 / 255] * 3),
        ("RGB", (255, 0, 10), [1.0, 0.0, 10 / 255]),
        ("RGBA", (0, 0, 0, 0), [1.0, 1.0, 1.0]),  # transparent -> white background
        ("RGBA", (0, 255, 0, 255), [0.0, 1.0, 0.0]),
        ("LA", (0, 255), [0.0, 0.0, 0.0]),
        ("CMYK", (0, 0, 0, 0), [1.0, 1.0, 1.0]),
    ],
)
def test_modes_convert_to_rgb(tmp_path, mode, fill, expected):
    suffix = ".tif" if mode == "CMYK" else ".png"
    p = _write(tmp_path, f"img{suffix}", Image.new(mode, (5, 4), fill))
    t = load_image(p)
    assert t.shape == (1, 3, 4, 5) and t.dtype == torch.float32
    assert torch.allclose(t[0, :, 0, 0], torch.tensor(expected), atol=1e-6)


def test_palette_and_16bit(tmp_path):
    pal = Image.new("RGB", (4, 4), (10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE)
    t = load_image(_write(tmp_path, "p.png", pal))
    assert torch.allclose(t[0, :, 0, 0] * 255, torch.tensor([10.0, 200.0, 30.0]), atol=1.5)
    arr = np.full((3, 6), 65535 // 4, dtype=np.uint16)
    t16 = load_image(_write(tmp_path, "g16.png", Image.fromarray(arr)))
    assert t16.shape == (1, 3, 3, 6)
    assert t16[0, 0, 0, 0].item() == pytest.approx(0.25, abs=1e-3)


def test_bad_files(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)
    txt = tmp_path / "notes.png"
    txt.write_text("not an image")
    with pytest.raises(ImageError, match="not an image"):
        load_image(txt)
    good = _write(tmp_path, "ok.jpg", Image.new("RGB", (64, 64), (1, 2, 3)))
    truncated = tmp_path / "trunc.jpg"
    truncated.write_bytes(good.read_bytes()[:100])
    with pytest.raises(ImageError, match="cannot read"):
        load_image(truncated)


def test_save_is_atomic_and_refuses_overwrite(tmp_path):
    img = torch.rand(1, 3, 8, 9)
    p = save_image(img, tmp_path / "out.png")
    back = load_image(p)
    assert torch.allclose(back, (img * 255 + 0.5).floor() / 255, atol=1 / 255)
    with pytest.raises(ImageError, match="exists"):
        save_image(img, p)
    save_image(torch.zeros(1, 3, 8, 9), p, overwrite=True)
    assert load_image(p).max() == 0
    assert [f.name for f in tmp_path.iterdir()] == ["out.png"]  # no temporary files left
    with pytest.raises(ImageError, match="unknown image format"):
        save_image(img, tmp_path / "out.xyz")
    with pytest.raises(ImageError, match="does not exist"):
        save_image(img, tmp_path / "no" / "out.png")


def test_resize_helpers():
    x = torch.rand(2, 3, 40, 20)
    assert resize(x, (10, 5)).shape == (2, 3, 10, 5)
    assert resize_long_side(x, 80).shape == (2, 3, 80, 40)
    assert resize(x, (40, 20)) is x


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_respect_the_umask(tmp_path, umask, mode):
    """A new output gets the permissions any program would give it (0666 minus the umask); a replaced file
    keeps its own."""
    old = os.umask(umask)
    try:
        p = save_image(torch.rand(1, 3, 8, 8), tmp_path / "out.png")
        assert stat.S_IMODE(p.stat().st_mode) == mode
        p.chmod(0o640)
        save_image(torch.rand(1, 3, 8, 8), p, overwrite=True)
        assert stat.S_IMODE(p.stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_image_tensors_are_checked_and_converted_as_pytorch_users_expect():
    """uint8 tensors are 0-255 (divided by 255); a 0-255 float image, NaN values and other integer dtypes are clear
    errors (they gave black, white or NaN images before); the layout of the input does not matter."""
    from ottex.image.io import as_image

    img = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    u8 = (img * 255).round().to(torch.uint8)
    torch.testing.assert_close(as_image(u8), u8.float() / 255)
    with pytest.raises(InputError, match=r"style values must be in \[0, 1\], got .*a 0-255 image\? divide it by 255"):
        as_image(img * 255, what="style")
    with pytest.raises(InputError, match="content has NaN or infinite values"):
        as_image(img.clone().fill_(float("nan")), what="content")
    with pytest.raises(InputError, match="int64 tensor: give floats in"):
        as_image(u8.long())
    as_image(img * 1.0005 - 0.0001)  # rounding of earlier computations: within the tolerance
    cl = as_image(img.contiguous(memory_format=torch.channels_last))
    assert cl.is_contiguous() and torch.equal(cl, img)


def test_save_image_checks_its_tensor(tmp_path):
    """uint8 tensors are written as they are; wrong shapes, empty and NaN images are one-line ImageErrors (they failed
    inside Pillow, or were written black)."""
    u8 = torch.randint(0, 256, (1, 3, 6, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    save_image(u8, tmp_path / "u8.png")
    assert torch.equal((load_image(tmp_path / "u8.png") * 255).round().to(torch.uint8), u8)
    for bad, match in ((torch.rand(1, 1, 4, 4), "RGB tensor of shape"), (torch.rand(1, 3, 0, 4), "empty"),
                       (torch.full((1, 3, 4, 4), float("nan")), "NaN"), (torch.rand(4, 4), "RGB tensor of shape")):
        with pytest.raises(ImageError, match=match):
            save_image(bad, tmp_path / "bad.png")
        assert not (tmp_path / "bad.png").exists()


def test_load_image_refuses_integer_dtypes_and_absent_devices(tmp_path):
    """``dtype=torch.uint8`` quantised every pixel to 0 or 1; ``device="cuda"`` failed inside torch (an
    AssertionError) where the methods give an InputError."""
    save_image(torch.rand(1, 3, 4, 4), tmp_path / "a.png")
    with pytest.raises(InputError, match="must be a floating dtype"):
        load_image(tmp_path / "a.png", dtype=torch.uint8)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA device"):
            load_image(tmp_path / "a.png", device="cuda")
