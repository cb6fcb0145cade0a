"""The paths that bound memory on large outputs, forced on small inputs: streamed sliced OT (blocks of directions,
binned 1D matches), banded networks, heap trimming. They must give the in-memory path's result, up to the stated
tolerances."""

from __future__ import annotations

import pytest
import torch

import ottex.methods.optimal_textures as ot_mod
import ottex.nn.networks as nets_mod
from ottex import OTSchedule, synthesize
from ottex.core.resample import resize_long_side
from ottex.eval.metrics import style_distance_per_layer
from ottex.methods.optimal_textures import NOISE_SCHEDULE

SMALL = NOISE_SCHEDULE.replace(passes=(2, 1))  # from noise, relu5_1 ... relu1_1 (ottex 0.1's schedule)


def _cloud_and_target(pca: bool):
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(16, 16, generator=g)
    style = mix @ torch.randn(16, 30_000, generator=g).relu()  # skewed, correlated, like ReLU features
    target = ot_mod._target_from_cloud(style, pca, 0.9, 1 << 14, torch.Generator().manual_seed(1))
    x = (torch.randn(16, 16, generator=g) @ torch.randn(2, 16, 60_000, generator=g).relu()).contiguous()
    return x, target


@pytest.mark.parametrize("pca", [True, False])
@pytest.mark.parametrize("elements", [1 << 24, 2 * 60_000 * 3])  # every direction at once; blocks of 3
def test_streamed_sliced_ot_matches_the_in_memory_path(monkeypatch, pca, elements):
    x, target = _cloud_and_target(pca)
    whole = ot_mod._match(x.clone(), target, 3, "sym", torch.Generator().manual_seed(2))
    monkeypatch.setattr(ot_mod, "LARGE_CLOUD_COLUMNS", 0)
    monkeypatch.setattr(ot_mod, "STREAM_ELEMENTS", elements)
    moved = x.clone()
    streamed = ot_mod._match(moved, target, 3, "sym", torch.Generator().manual_seed(2))
    assert streamed.data_ptr() == moved.data_ptr()  # in place: no copy of the cloud
    rel = (streamed - whole).abs().mean() / whole.std()
    assert float(rel) < 1e-3  # the binned 1D matches: ranks off by a few values in 60 000
    # the largest differences are at the extreme tails, where the style's quantiles are far apart
    assert float(torch.quantile((streamed - whole).abs().flatten(), 0.999) / whole.std()) < 0.05


@pytest.mark.needs_weights
def test_synthesis_with_every_large_output_path_forced(monkeypatch, graffiti):
    """Banded encoders/decoders, streamed sliced OT and heap trimming at 96 px: same size and range, a style
    distance per layer within the spread of two seeds of the in-memory path."""
    size = (96, 96)
    style = resize_long_side(graffiti, 96)
    ref = [style_distance_per_layer(synthesize(graffiti, size, schedule=SMALL, seed=s), style) for s in (0, 1)]
    trims = []
    monkeypatch.setattr(ot_mod, "LARGE_CLOUD_COLUMNS", 0)
    monkeypatch.setattr(ot_mod, "STREAM_ELEMENTS", 96 * 96)
    monkeypatch.setattr(ot_mod, "TRIM_PIXELS", 0)
    monkeypatch.setattr(ot_mod, "release_free_memory", lambda: trims.append(1) or True)
    monkeypatch.setattr(nets_mod, "BAND_VALUES", 96 * 16 * 16)
    bands = []
    real = nets_mod.run_in_bands
    monkeypatch.setattr(nets_mod, "run_in_bands", lambda *a, **k: bands.append(1) or real(*a, **k))
    out = synthesize(graffiti, size, schedule=SMALL, seed=0)
    assert out.shape == (1, 3, 96, 96) and float(out.min()) >= 0 and float(out.max()) <= 1
    assert bands and trims
    got = style_distance_per_layer(out, style)
    for layer, value in got.items():
        lo, hi = sorted(float(r[layer]) for r in ref)
        assert float(value) < hi + 0.25 * (hi - lo) + 0.1 * hi, layer


def _visits_per_scale(style, size, **kwargs) -> list[int]:
    steps = []
    synthesize(style, size, seed=0, callback=lambda ev: steps.append(ev) or True, **kwargs)
    scales = max(ev.scale for ev in steps) + 1
    return [sum(1 for ev in steps if ev.kind == "step" and ev.scale == s) for s in range(scales)]


@pytest.mark.needs_weights
@pytest.mark.filterwarnings("ignore:the .* style example is enlarged")  # the 32 px scale of a 64 px example
@pytest.mark.slow
def test_large_resolutions_get_at_most_large_passes(zebra):
    # three resolutions (32, 64, 128 px); "large" from 48 px here: 6, then 4 capped to 2, 2 passes of 5 levels
    sched = NOISE_SCHEDULE.replace(scales=3, passes=(6, 4), min_side=32, large_passes=((48, 2),))
    assert _visits_per_scale(zebra, 128, schedule=sched) == [30, 10, 10]
    # and one pass from 128 px
    assert _visits_per_scale(zebra, 128, schedule=sched.replace(large_passes=((48, 2), (128, 1)))) == [30, 10, 5]
    assert _visits_per_scale(zebra, 128, schedule=sched.replace(large_passes=None)) == [30, 20, 20]
    # passes given by the user are run as given
    assert _visits_per_scale(zebra, 128, schedule=sched, passes=(6, 4)) == [30, 20, 20]
    assert OTSchedule().large_passes == ((1024, 2), (4096, 1))  # 512 px runs unchanged


@pytest.mark.needs_weights
def test_network_dtype(monkeypatch, zebra):
    """bfloat16 runs the networks under autocast (a different sample of the same quality); auto keeps float32
    below 1024x1024 px; unknown values are refused."""
    from ottex.core.errors import InputError

    seen = []
    real = nets_mod.Encoder._forward

    def spy(self, x):
        out = real(self, x)
        seen.append(out.dtype)
        return out

    monkeypatch.setattr(nets_mod.Encoder, "_forward", spy)
    size = (64, 64)
    f32 = synthesize(zebra, size, schedule=SMALL, seed=0, network_dtype="float32")
    assert torch.bfloat16 not in seen
    assert torch.equal(synthesize(zebra, size, schedule=SMALL, seed=0), f32)  # auto: float32 at this size
    seen.clear()
    bf16 = synthesize(zebra, size, schedule=SMALL, seed=0, network_dtype="bfloat16")
    assert torch.bfloat16 in seen  # the level visits (the style's statistics are taken in float32)
    assert bf16.dtype == torch.float32 and bf16.shape == f32.shape and float(bf16.min()) >= 0
    assert not torch.equal(bf16, f32)
    style = resize_long_side(zebra, 64)
    d32, d16 = style_distance_per_layer(f32, style), style_distance_per_layer(bf16, style)
    for layer in d32:
        assert float(d16[layer]) < 1.5 * float(d32[layer]) + 0.02, layer
    with pytest.raises(InputError, match="network_dtype takes one of"):
        synthesize(zebra, size, network_dtype="float16")
