"""Optimal Textures synthesis: size, range, determinism, and statistics moved toward the style."""

from __future__ import annotations

import warnings

import pytest
import torch

from ottex import OTOptions, OTSchedule, get_method, synthesize
from ottex.core.errors import InputError
from ottex.core.pyramid import style_factor
from ottex.core.resample import resize_long_side
from ottex.eval.metrics import style_distance
from ottex.methods.optimal_textures import NOISE_SCHEDULE

pytestmark = pytest.mark.needs_weights

SMALL = NOISE_SCHEDULE.replace(passes=(2, 1))  # from noise, relu5_1 ... relu1_1 (ottex 0.1's schedule)


def test_shape_range_and_non_square(zebra):
    out = synthesize(zebra, (48, 80), schedule=SMALL, seed=1)
    assert out.shape == (1, 3, 48, 80)
    assert out.min() >= 0 and out.max() <= 1 and out.dtype == torch.float32


def test_same_seed_same_image_and_batches(zebra):
    a = synthesize(zebra, (64, 64), schedule=SMALL, seed=3, batch=2)
    b = synthesize(zebra, (64, 64), schedule=SMALL, seed=3, batch=2)
    c = synthesize(zebra, (64, 64), schedule=SMALL, seed=4, batch=2)
    assert a.shape == (2, 3, 64, 64)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert (a[0] - a[1]).abs().mean() > 0.05  # samples of a batch differ


def test_moves_features_toward_the_style(graffiti, zebra):
    """The result is much closer to the style than the noise it starts from, and than another texture."""
    size = (96, 96)
    out = synthesize(graffiti, size, seed=0)
    style = resize_long_side(graffiti, 96)
    d_out = style_distance(out, style)
    noise = (torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0)) * 0.25 + 0.5).clamp(0, 1)
    d_noise = style_distance(noise, style)
    d_other = style_distance(resize_long_side(zebra, 96), style)
    assert d_out < 0.35 * d_noise
    assert d_out < 0.5 * d_other


def test_output_larger_than_example(zebra):
    out = synthesize(zebra[..., :48, :48], (96, 128), schedule=SMALL)
    assert out.shape == (1, 3, 96, 128)


@pytest.mark.parametrize("mode", ["sym", "chol", "pca"])
def test_gaussian_modes(zebra, mode):
    out = synthesize(zebra, (64, 64), mode=mode, passes=1)
    assert out.shape == (1, 3, 64, 64) and torch.isfinite(out).all()


def test_pca_and_pure_sliced(zebra):
    a = synthesize(zebra, (64, 64), pca=False, schedule=SMALL)
    b = synthesize(zebra, (64, 64), schedule=SMALL.replace(gaussian=None))
    assert a.shape == b.shape == (1, 3, 64, 64)
    assert not torch.equal(a, b)


def test_set_with_missing_levels_uses_what_it_has(zebra):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = synthesize(zebra, (64, 64), weights="wct-vgg19", schedule=SMALL)
    assert out.shape == (1, 3, 64, 64)
    assert any("levels 4, 5 are missing" in str(w.message) for w in rec)


def test_small_example_warns_only_when_enlarged(zebra):
    with pytest.warns(UserWarning, match="upsampled"):
        synthesize(zebra[..., :20, :20], (64, 64), passes=1, levels=(3, 2, 1), style_scale=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto scale: the example keeps its own pixel size
        synthesize(zebra[..., :20, :20], (64, 64), passes=1, levels=(3, 2, 1))


def test_style_factor():
    assert style_factor((1600, 1141), (512, 512)) == pytest.approx(512 / 1141)  # short sides fitted
    assert style_factor((256, 256), (1024, 2048)) == 1.0  # never enlarged by default
    assert style_factor((256, 256), (1024, 2048), 0.5) == pytest.approx(2.0)  # explicit: enlarged
    assert style_factor((400, 300), (300, 300), 0.5) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"size": (0, 64)}, "positive"),
        ({"size": (8, 64)}, "too small"),
        ({"mode": "fancy"}, "mode takes one of sort, chol, pca, sym"),
        ({"batch": 0}, "batch"),
        ({"style_scale": -1}, "style scale"),
        ({"passes": 0}, "passes"),
        ({"levels": (6,)}, "levels"),
        ({"rotations": -2}, "rotations"),
    ],
)
def test_bad_arguments(zebra, kwargs, match):
    kwargs = {"size": (64, 64), **kwargs}
    with pytest.raises(InputError, match=match):
        synthesize(zebra, **kwargs)


def test_bad_style_argument():
    with pytest.raises(InputError, match="style must be"):
        synthesize(torch.rand(3, 3), (64, 64))


def test_example_too_small_for_the_network_is_enlarged_with_a_warning(zebra):
    with pytest.warns(UserWarning, match="enlarged to a 32 px short side"):
        out = synthesize(zebra[..., :10, :12], (64, 64), schedule=SMALL)
    assert out.shape == (1, 3, 64, 64) and torch.isfinite(out).all()


def test_examples_without_a_texture_are_refused(zebra):
    with pytest.raises(InputError, match=r"style example is 1x1 px: too small to take a texture from \(at least 8 px"):
        synthesize(torch.rand(1, 3, 1, 1), (32, 32), passes=1, levels=(1,))
    with pytest.raises(InputError, match="style example is 40x7 px"):
        get_method("gatys").synthesize(zebra[..., :7, :40], (32, 32), {"steps": (1,)})


def test_content_strength_has_a_range():
    with pytest.raises(InputError, match="content strength must be between 0 and 2, got 50"):
        OTOptions(content_strength=50)


def test_weights_dir_must_exist(zebra, tmp_path):
    from ottex.core.errors import WeightsError

    with pytest.raises(WeightsError, match="is not a folder") as info:
        synthesize(zebra, (32, 32), passes=1, levels=(1,), weights_dir=tmp_path / "nowhere")
    assert info.value.option == "weights_dir" and "--" not in str(info.value)


def test_size_may_be_an_int_as_in_transfer(zebra):
    assert synthesize(zebra, size=32, passes=1, levels=(2, 1)).shape == (1, 3, 32, 32)
    assert get_method("gatys").synthesize(zebra, 32, {"steps": (1,)}).shape == (1, 3, 32, 32)
    with pytest.raises(InputError, match="size must be an int or"):
        synthesize(zebra, size="64")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_library_errors_name_parameters_not_flags(zebra):
    with pytest.raises(InputError) as info:
        synthesize(zebra, (32, 32), device="cuda")
    assert info.value.option == "device" and "--" not in str(info.value) and "'cpu'" in str(info.value)


def test_scales_that_do_not_fit_are_reported(zebra):
    """``scales`` asks for a number of resolutions; where halving would go under the encoders' least side, fewer are
    made, and a warning says so (it was silent)."""
    with pytest.warns(UserWarning, match=r"3 scales asked for, 1 made"):
        out = synthesize(zebra, (64, 64), schedule=OTSchedule(scales=3), passes=1)
    assert out.shape == (1, 3, 64, 64)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*scales asked for")
        synthesize(zebra, (64, 64), schedule=OTSchedule(scales=1), passes=1)


def test_a_64px_example_at_16px_is_not_said_to_be_enlarged(zebra):
    """The example is resized to the relu5_1 encoder's least short side (32 px): from 64 px that is a shrink, which
    once warned that the example was 'enlarged' and should be larger."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert synthesize(zebra, (16, 16), passes=1).shape == (1, 3, 16, 16)
