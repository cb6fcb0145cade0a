"""Label maps: dominant colours of noisy (JPEG) masks, label pairing, resampling, errors."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from ottex.core.errors import InputError
from ottex.image.masks import dominant_colors, load_label_map, load_label_pair, quantize_labels, resample_masks

RED, BLUE, GREEN = (200, 30, 30), (30, 60, 200), (40, 190, 60)


def _mask_file(path, layout, size=(64, 48), quality=60):
    """A JPEG label map: ``layout`` is a list of (colour, box) drawn in order on white."""
    img = Image.new("RGB", size, (255, 255, 255))
    for colour, box in layout:
        img.paste(colour, box)
    img.save(path, quality=quality)
    return path


def test_jpeg_noise_is_quantised_to_the_dominant_colours(tmp_path):
    p = _mask_file(tmp_path / "m.jpg", [(RED, (0, 0, 32, 48)), (BLUE, (32, 0, 64, 24))])
    labels, colours = load_label_map(p)
    assert len(colours) == 3  # red, blue, white; JPEG ringing does not create labels
    for want in (RED, BLUE, (255, 255, 255)):
        assert torch.cdist(torch.tensor([want], dtype=torch.float32), colours).min() < 12
    red = int(torch.cdist(torch.tensor([RED], dtype=torch.float32), colours).argmin())
    assert (labels[:, :32] == red).float().mean() > 0.97


def test_pair_matches_colours_and_sums_to_one(tmp_path):
    style = _mask_file(tmp_path / "s.jpg", [(RED, (0, 0, 32, 48)), (BLUE, (32, 0, 64, 48))])
    target = _mask_file(tmp_path / "t.png", [(BLUE, (0, 0, 80, 20)), (RED, (0, 20, 80, 40))], size=(80, 40))
    s, t, colours = load_label_pair(style, target)
    assert s.shape == (2, 48, 64) and t.shape == (2, 40, 80) and len(colours) == 2
    k_red = 0 if colours[0][0] > 100 else 1
    assert t[k_red, 30].mean() == 1 and t[k_red, 5].mean() == 0  # red is the target's bottom
    assert s[k_red, :, :28].mean() > 0.97 and s[k_red, :, 36:].mean() < 0.03
    r = resample_masks(t, (7, 9))
    assert r.shape == (2, 7, 9) and torch.allclose(r.sum(0), torch.ones(7, 9), atol=1e-5)


def test_missing_label_is_a_clear_error(tmp_path):
    style = _mask_file(tmp_path / "s.png", [(RED, (0, 0, 32, 48))])
    target = _mask_file(tmp_path / "t.png", [(GREEN, (0, 0, 30, 48))])
    with pytest.raises(InputError, match=r"not in the style mask"):
        load_label_pair(style, target)


def test_tiny_target_region_is_ignored_with_a_warning(tmp_path):
    style = _mask_file(tmp_path / "s.png", [(RED, (0, 0, 32, 48))])
    target = _mask_file(tmp_path / "t.png", [(RED, (0, 0, 32, 48)), (GREEN, (60, 0, 66, 6))], size=(200, 100))
    with pytest.warns(UserWarning, match="tiny region"):
        s, t, colours = load_label_pair(style, target)
    assert len(colours) == 2  # white and red; the small green square joined its neighbours


def test_guidance_masks(images_dir):
    g = images_dir / "guidance"
    s, t, colours = load_label_pair(g / "style_guidance.jpg", g / "content_guidance.jpg")
    assert len(colours) == 5 and s.shape[0] == t.shape[0] == 5
    assert s.shape[-2:] == (1600, 1200) and t.shape[-2:] == (321, 481)
    assert torch.all(s.sum((1, 2)) > 0) and torch.all(t.sum((1, 2)) > 0)


def test_quantize_labels_nearest():
    img = torch.tensor([[[0.0, 1.0]], [[0.0, 1.0]], [[0.1, 0.9]]])  # (3, 1, 2): a dark and a light pixel
    cols = torch.tensor([[250.0, 250.0, 250.0], [5.0, 5.0, 5.0]])
    assert quantize_labels(img, cols).tolist() == [[1, 0]]
    assert dominant_colors(img, min_fraction=0.4).shape == (2, 3)


def test_bad_mask_file(tmp_path):
    p = tmp_path / "nope.png"
    p.write_text("not an image")
    with pytest.raises(Exception, match="not an image"):
        load_label_pair(p, p)


def test_tensor_masks_of_any_channel_count():
    grey_style = torch.zeros(64, 64)
    grey_style[:, 32:] = 1.0  # black | white
    grey_target = torch.ones(1, 1, 40, 40)
    grey_target[..., :20, :] = 0.0
    s, t, colours = load_label_pair(grey_style, grey_target)
    assert s.shape == (2, 64, 64) and t.shape == (2, 40, 40) and len(colours) == 2
    with pytest.raises(InputError, match="must be an image path"):
        load_label_pair(torch.zeros(2, 3, 8, 8), grey_target)
