"""Metrics: zero for identical inputs, and orderings a person would agree with."""

from __future__ import annotations

import pytest
import torch

from ottex.core.errors import InputError
from ottex.eval.metrics import (
    content_distance,
    diversity,
    feature_mse,
    gram_distance,
    gram_matrix,
    measuring_network,
    seam_error,
    self_similarity,
    style_distance,
)

pytestmark = pytest.mark.needs_weights


def _shuffle_patches(x: torch.Tensor, p: int, seed: int = 0) -> torch.Tensor:
    b, c, h, w = x.shape
    tiles = x.unfold(2, p, p).unfold(3, p, p).reshape(b, c, -1, p, p)
    perm = torch.randperm(tiles.shape[2], generator=torch.Generator().manual_seed(seed))
    tiles = tiles[:, :, perm].reshape(b, c, h // p, w // p, p, p)
    return tiles.permute(0, 1, 2, 4, 3, 5).reshape(b, c, h, w)


@pytest.fixture(scope="module")
def zebra96(load_test_image):
    return load_test_image("style/zebra.jpg", (96, 96))


@pytest.fixture(scope="module")
def photo(load_test_image):
    return load_test_image("content/bridge.jpg", (64, 96))


def test_identical_images_score_zero(zebra96, photo):
    assert style_distance(zebra96, zebra96) == pytest.approx(0, abs=1e-6)
    assert gram_distance(zebra96, zebra96) == pytest.approx(0, abs=1e-9)
    assert content_distance(photo, photo) == pytest.approx(0, abs=1e-7)
    assert feature_mse(photo, photo) == pytest.approx(0, abs=1e-9)


def test_style_metrics_rank_textures(load_test_image):
    wide = load_test_image("style/graffiti.jpg", (96, 192))
    style, other_half = wide[..., :96], wide[..., 96:]  # two crops of one (stationary) texture
    other = load_test_image("style/lava-small.jpg", (96, 96))
    noise = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    shuffled = _shuffle_patches(style, 16)
    for metric in (style_distance, gram_distance):
        d_self = metric(other_half, style)
        d_shuffled = metric(shuffled, style)
        d_other = metric(other, style)
        d_noise = metric(noise, style)
        assert d_self < 0.3 * d_other, metric.__name__
        assert d_shuffled < 0.5 * d_noise, metric.__name__


def test_content_distance_sees_layout_not_colour(photo, load_test_image):
    recoloured = (photo * torch.tensor([0.7, 1.0, 1.2]).view(1, 3, 1, 1)).clamp(0, 1)
    other = load_test_image("content/rocket.jpg", (64, 96))
    assert content_distance(recoloured, photo) < 0.25 * content_distance(other, photo)
    assert feature_mse(photo.flip(-1), photo) > feature_mse(recoloured, photo)
    # a result of another size is compared at the content's size
    big = torch.nn.functional.interpolate(photo, scale_factor=2, mode="bilinear", align_corners=False)
    assert content_distance(big, photo) < 0.25 * content_distance(other, photo)


def test_self_similarity_columns_sum_to_one():
    s = self_similarity(torch.rand(2, 8, 20, 40), grid=10)
    assert s.shape == (2, 50, 50)
    torch.testing.assert_close(s.sum(dim=1), torch.ones(2, 50))


def test_gram_matrix_definition():
    f = torch.randn(2, 3, 4, 5)
    g = gram_matrix(f)
    torch.testing.assert_close(g[1], f[1].reshape(3, 20) @ f[1].reshape(3, 20).T / 20)


def test_diversity(zebra96):
    same = zebra96.expand(3, -1, -1, -1)
    assert diversity(same) == pytest.approx(0, abs=1e-6)
    varied = torch.cat([zebra96, zebra96.flip(-1), zebra96.flip(-2)])
    assert diversity(varied) > 0.1 * float(measuring_network()(zebra96)["relu1_1"].abs().mean())
    with pytest.raises(InputError, match="at least 2"):
        diversity(zebra96)


def _blur(x: torch.Tensor, mode: str) -> torch.Tensor:
    k = torch.ones(3, 1, 9, 9) / 81
    return torch.nn.functional.conv2d(torch.nn.functional.pad(x, (4, 4, 4, 4), mode=mode), k, groups=3)


def test_seam_error():
    noise = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    periodic = _blur(noise, "circular")  # smooth and wraps around seamlessly
    plain = _blur(noise, "reflect")  # smooth, but its opposite edges do not meet
    assert 0.5 < seam_error(periodic) < 1.5
    assert seam_error(plain) > 3 * seam_error(periodic)
    ramp = torch.linspace(0, 1, 64).expand(1, 3, 64, 64)
    assert seam_error(ramp) > 10


def test_metric_errors(zebra96):
    with pytest.raises(InputError, match="RGB"):
        style_distance(torch.rand(3, 8, 8), zebra96)
    with pytest.raises(InputError, match="RGB"):
        content_distance(zebra96, torch.rand(1, 1, 8, 8))
    with pytest.raises(InputError, match="no tap"):
        gram_distance(zebra96, zebra96, network=measuring_network(layers=("relu1_1",)), layers=("relu2_1",))


@pytest.mark.slow
def test_style_distance_compares_at_the_outputs_detail_scale(images_dir):
    """As README shows it, ``style_distance(texture, style)`` with the example as loaded: the style is resized to
    the output's detail scale first, as the methods and ``ottex bench`` do (graffiti: 1141x1600 px)."""
    from ottex.core.pyramid import crop_to, style_at, style_factor
    from ottex.eval.metrics import style_distance_per_layer
    from ottex.image.io import load_image

    style = load_image(images_dir / "style" / "graffiti.jpg")
    fitted = style_at(style, style_factor(style.shape[-2:], (96, 96)))  # short side 96, as synthesis uses it
    texture = crop_to(fitted, (96, 96))  # an ideal 96 px texture: the example at the output's scale
    d = style_distance(texture, style)
    assert d == pytest.approx(style_distance(texture, fitted, rescale=False))  # what bench measures
    assert d < 0.2
    assert style_distance(texture, style, rescale=False) > 2 * d  # as given: the scale difference, not the style
    assert d == pytest.approx(style_distance(texture, style, style_scale=1.0))  # the same scale, given explicitly
    assert style_distance(texture, style, style_scale=0.5) > d  # details half as large: further
    per = style_distance_per_layer(texture, style)
    assert sum(per.values()) / len(per) == pytest.approx(d)


def test_metrics_take_images_as_the_methods_do(zebra):
    """float64 and uint8 (0-255) images are scored as the float32 image they are (a dtype error inside a convolution
    before); NaN values are a clear error (NaN distances before)."""
    style = zebra[..., :48, :48]
    ref = style_distance(zebra, style)
    assert style_distance(zebra.double(), style) == pytest.approx(ref, rel=1e-5)
    u8 = (zebra * 255).round().to(torch.uint8)
    assert style_distance(u8, style) == pytest.approx(style_distance(u8.float() / 255, style), rel=1e-6)
    with pytest.raises(InputError, match="image has NaN or infinite values"):
        style_distance(zebra.clone().fill_(float("nan")), style)
