"""Encoders, decoders and feature extractors built from the pretrained files."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from ottex.core.errors import WeightsError
from ottex.nn.networks import _pad_repeatable as pad_repeatable
from ottex.nn.networks import (
    load_autoencoders,
    load_decoder,
    load_encoder,
    load_feature_extractor,
)

pytestmark = pytest.mark.needs_weights

CHANNELS = {1: 24, 2: 32, 3: 64, 4: 128, 5: 128}


@pytest.fixture(scope="module")
def photo(load_test_image):
    return load_test_image("content/bridge.jpg", (64, 64))


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5])
def test_cd16x_round_trip(photo, level):
    enc, dec = load_encoder("cd16x", level), load_decoder("cd16x", level)
    with torch.no_grad():
        f = enc(photo)
        out = dec(f)
    s = 2 ** (level - 1)
    assert f.shape == (1, CHANNELS[level], 64 // s, 64 // s)
    assert out.shape == photo.shape
    mse = (out.clamp(0, 1) - photo).pow(2).mean().item()
    assert mse < [0.001, 0.004, 0.008, 0.02, 0.03][level - 1]  # README: 0.0002 (level 1) .. 0.011 (level 5)


def test_wct_levels_1_to_3_and_missing_levels_reported(photo):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        nets = load_autoencoders("wct-vgg19", (5, 4, 3, 2, 1), strict=False)
    assert sorted(nets) == [1, 2, 3]
    assert any("levels 4, 5 are missing" in str(w.message) for w in rec)
    with pytest.raises(WeightsError, match=r"lacks level\(s\) 4, 5 \(have 1, 2, 3\)"):
        load_autoencoders("wct-vgg19", (5, 4, 3, 2, 1), strict=True)
    enc, dec = nets[3]
    with torch.no_grad():
        out = dec(enc(photo))
    assert out.shape == photo.shape and (out.clamp(0, 1) - photo).pow(2).mean() < 0.02


def test_caffe_features_and_missing_layers():
    net = load_feature_extractor("vgg19-caffe", ("relu1_1", "relu3_1"))
    x = torch.rand(1, 3, 32, 40)
    out = net(x)
    assert out["relu1_1"].shape == (1, 64, 32, 40) and out["relu3_1"].shape == (1, 256, 8, 10)
    # conv0 turns RGB [0,1] into Caffe's BGR*255 minus the ImageNet mean
    bgr = net.conv0(x)
    assert torch.allclose(bgr[:, 0], x[:, 2] * 255 - 103.939, atol=1e-3)
    with pytest.raises(WeightsError, match="relu4_1.*available: relu1_1"):
        load_feature_extractor("vgg19-caffe", ("relu4_1",))


def test_cd16x_aux_features_have_vgg_widths():
    net = load_feature_extractor("cd16x", ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"))
    out = net(torch.rand(1, 3, 32, 32))
    assert [v.shape[1] for v in out.values()] == [64, 128, 256, 512, 512]
    pre = load_feature_extractor("cd16x", ("relu3_1",), pre_relu=True, pool="avg")(torch.rand(1, 3, 32, 32))
    assert pre["relu3_1"].shape == (1, 256, 8, 8)


def test_circular_padding_commutes_with_rolls():
    enc = load_encoder("cd16x", 3, padding="circular")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a = enc(torch.roll(x, shifts=(8, 4), dims=(2, 3)))
        b = torch.roll(enc(x), shifts=(2, 1), dims=(2, 3))
    assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize(("mode", "hw"), [("reflect", (5, 7)), ("reflect", (2, 2)), ("reflect", (3, 2)),
                                          ("replicate", (5, 7)), ("replicate", (1, 3)), ("replicate", (1, 1))])
def test_repeatable_padding_is_f_pad(mode, hw):
    """The CUDA padding of tensors that need a gradient (a backward that repeats): F.pad's values and gradient."""
    x = torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(0), dtype=torch.float64, requires_grad=True)
    g = torch.rand(2, 3, hw[0] + 2, hw[1] + 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a, b = pad_repeatable(x, mode), F.pad(x, (1, 1, 1, 1), mode=mode)
    assert torch.equal(a, b)
    torch.testing.assert_close(torch.autograd.grad(a, x, g)[0], torch.autograd.grad(b, x, g)[0], rtol=0, atol=1e-12)


def test_device_and_dtype_kept():
    enc = load_encoder("cd16x", 2, device="cpu")
    assert next(enc.parameters()).device.type == "cpu"
    assert enc(torch.rand(1, 3, 16, 16)).dtype == torch.float32


@pytest.mark.parametrize("padding", ["reflect", "circular"])
def test_large_inputs_run_in_bands_with_the_same_result(monkeypatch, padding):
    import ottex.nn.networks as nets_mod

    nets = load_autoencoders("cd16x", (1, 3, 5), padding=padding)
    x = torch.rand(1, 3, 1024, 96, generator=torch.Generator().manual_seed(0))
    calls = []
    real = nets_mod.run_in_bands
    with torch.no_grad():
        whole = {lvl: (e(x), d(e(x))) for lvl, (e, d) in nets.items()}
        monkeypatch.setattr(nets_mod, "BAND_VALUES", 96 * 64 * 16)
        monkeypatch.setattr(nets_mod, "run_in_bands", lambda *a, **k: calls.append(1) or real(*a, **k))
        for lvl, (e, d) in nets.items():
            feats = e(x)
            assert feats.shape == whole[lvl][0].shape
            assert torch.allclose(feats, whole[lvl][0], rtol=1e-4, atol=1e-5 * float(feats.abs().max()))
            assert torch.allclose(d(whole[lvl][0]), whole[lvl][1], atol=1e-5)
    assert len(calls) == 6  # every encoder and decoder ran in bands


def test_kept_networks_are_reused_per_file_device_and_settings():
    from ottex.nn.networks import keep_networks, kept_networks

    assert load_encoder("cd16x", 2) is not load_encoder("cd16x", 2)  # off by default: built anew
    keep_networks(3)
    try:
        enc = load_encoder("cd16x", 2, device="cpu")
        assert load_encoder("cd16x", 2, device=torch.device("cpu")) is enc
        assert load_encoder("cd16x", 2, device="cpu", padding="circular") is not enc
        assert load_decoder("cd16x", 2, device="cpu") is not enc
        assert kept_networks() == 3
        feats = load_feature_extractor("cd16x", ("relu1_1", "relu2_1"), device="cpu")  # evicts the oldest: enc
        assert kept_networks() == 3
        assert load_feature_extractor("cd16x", ("relu1_1", "relu2_1"), device="cpu") is feats
        assert load_feature_extractor("cd16x", ("relu1_1",), device="cpu") is not feats
        assert load_encoder("cd16x", 2, device="cpu") is not enc
    finally:
        keep_networks(0)
    assert kept_networks() == 0
