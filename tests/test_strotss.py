"""STROTSS: the losses against their definitions, the Laplacian pyramid, the schedule, runs (shape, determinism,
style/content trade-off, region guidance), errors and the methods registry."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ottex.core.errors import InputError
from ottex.core.resample import resize, resize_long_side
from ottex.eval.metrics import content_distance, self_similarity, style_distance
from ottex.image.io import load_image, save_image
from ottex.methods import get_method
from ottex.methods.strotss import (
    MIN_REGION_SAMPLES,
    REPEAT_TOLERANCE,
    _pixel_grid,
    _region_counts,
    bilinear_by_products,
    cosine_cost,
    laplacian_pyramid,
    lookup_by_gathers,
    moment_loss,
    palette_cost,
    reconstruct_pyramid,
    relaxed_emd,
    scale_sizes,
    self_similarity_loss,
    strotss,
)

FAST = dict(samples=256, style_samples=1024)  # small sample sets: the tests run in seconds on 2 cores


# ---------------------------------------------------------------------------------------------
# Losses on small hand-made clouds (no weights needed)


def _dense_remd(x: torch.Tensor, y: torch.Tensor, cost) -> torch.Tensor:  # noqa: ANN001
    c = cost(x, y)
    return torch.maximum(c.min(1).values.mean(), c.min(0).values.mean())


def test_cosine_cost_definition():
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 3.0]])
    y = torch.tensor([[2.0, 0.0], [0.0, -1.0]])
    expected = torch.tensor([[0.0, 1.0], [1 - 1 / math.sqrt(2), 1 + 1 / math.sqrt(2)], [1.0, 2.0]])
    torch.testing.assert_close(cosine_cost(x, y), expected)


def test_relaxed_emd_hand_made_clouds():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([[1.0, 0.0]])
    # rows: x0 -> y0 costs 0, x1 -> y0 costs 1 (mean 0.5); column: y0 -> x0 costs 0; max = 0.5
    assert float(relaxed_emd(x, y)) == pytest.approx(0.5)
    assert float(relaxed_emd(y, x)) == pytest.approx(0.5)  # symmetric
    assert float(relaxed_emd(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(relaxed_emd(x, 3 * x)) == pytest.approx(0.0, abs=1e-6)  # cosine: scale-free
    # palette: cosine + RMS difference; identical clouds ~0, (1,0,0) vs (0,1,0): 1 + sqrt(2/3)
    red, green = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]])
    assert float(relaxed_emd(red, red, "palette")) < 1e-3
    assert float(relaxed_emd(red, green, "palette")) == pytest.approx(1 + math.sqrt(2 / 3), rel=1e-5)
    with pytest.raises(InputError, match="cost"):
        relaxed_emd(x, y, "l7")


@pytest.mark.parametrize("cost", ["cosine", "palette"])
def test_relaxed_emd_value_and_gradient_match_the_dense_definition(cost):
    g = torch.Generator().manual_seed(0)
    for n, m in ((40, 25), (25, 40)):  # either relaxation can be the larger one
        d = 3 if cost == "palette" else 16
        x = torch.rand(n, d, generator=g, dtype=torch.float64).requires_grad_(True)
        y = torch.rand(m, d, generator=g, dtype=torch.float64) + 0.2
        fast = relaxed_emd(x, y, cost)
        (gx_fast,) = torch.autograd.grad(fast, x)
        dense = _dense_remd(x, y, cosine_cost if cost == "cosine" else palette_cost)
        (gx_dense,) = torch.autograd.grad(dense, x)
        torch.testing.assert_close(fast, dense)
        torch.testing.assert_close(gx_fast, gx_dense)


def test_moment_loss_definition():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(500, 6, generator=g, dtype=torch.float64)
    assert float(moment_loss(x, x)) == pytest.approx(0.0, abs=1e-12)
    assert float(moment_loss(x + 0.3, x)) == pytest.approx(0.3)  # mean shift, same covariance
    cov = torch.cov(x.T, correction=0)
    assert float(moment_loss(2 * x, x)) == pytest.approx(float(x.mean(0).abs().mean() + 3 * cov.abs().mean()))
    stats = (x.mean(0), cov)  # precomputed moments give the same value
    assert float(moment_loss(2 * x, stats)) == pytest.approx(float(moment_loss(2 * x, x)))


def test_self_similarity_loss_definition():
    g = torch.Generator().manual_seed(2)
    c = torch.rand(64, 10, generator=g)
    assert float(self_similarity_loss(c, c)) == pytest.approx(0.0, abs=1e-6)
    scaled = c * torch.rand(64, 1, generator=g).add(0.5)  # cosine distances ignore each row's scale
    assert float(self_similarity_loss(scaled, c)) == pytest.approx(0.0, abs=1e-5)
    other = torch.rand(64, 10, generator=g)
    loss = self_similarity_loss(other, c)
    assert float(loss) > 0.05
    # the same normalisation as ottex.eval.metrics.self_similarity (columns sum to 1), times n
    as_map = lambda f: f.T.reshape(1, 10, 1, 64)  # noqa: E731
    ref = (self_similarity(as_map(other), grid=64) - self_similarity(as_map(c), grid=64)).abs().mean() * 64
    torch.testing.assert_close(loss, ref, rtol=1e-4, atol=1e-6)


def test_moment_and_self_similarity_gradients_match_plain_autograd():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(30, 7, generator=g, dtype=torch.float64).requires_grad_(True)
    y = torch.rand(50, 7, generator=g, dtype=torch.float64)
    c = torch.rand(30, 7, generator=g, dtype=torch.float64)

    def plain_moments(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        cov_a, cov_b = torch.cov(a.T, correction=0), torch.cov(b.T, correction=0)
        return (a.mean(0) - b.mean(0)).abs().mean() + (cov_a - cov_b).abs().mean()

    def plain_self_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        da, db = cosine_cost(a, a), cosine_cost(b, b)
        return (da / da.sum(0) - db / db.sum(0)).abs().mean() * a.shape[0]

    for ours, plain, other in ((moment_loss, plain_moments, y), (self_similarity_loss, plain_self_similarity, c)):
        value = ours(x, other)
        (grad,) = torch.autograd.grad(value, x)
        ref = plain(x, other)
        (ref_grad,) = torch.autograd.grad(ref, x)
        torch.testing.assert_close(value, ref)
        torch.testing.assert_close(grad, ref_grad)


def test_bfloat16_products_of_the_moment_loss_stay_close():
    """moment_dtype=bfloat16 on hypercolumn-like clouds (non-negative, 1475 wide): value and gradient as float32's."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(512, 1475, generator=g).relu().requires_grad_(True)
    y = torch.randn(800, 1475, generator=g).relu() * 1.5
    exact, fast = moment_loss(x, y), moment_loss(x, y, dtype=torch.bfloat16)
    assert fast.dtype == torch.float32
    (g_exact,), (g_fast,) = torch.autograd.grad(exact, x), torch.autograd.grad(fast, x)
    # measured: value within 1.3e-7 relative, gradients' cosine 1.000003
    torch.testing.assert_close(fast, exact, rtol=1e-4, atol=0)
    assert float(F.cosine_similarity(g_fast.flatten(), g_exact.flatten(), dim=0)) > 0.9999


def test_bfloat16_products_of_the_self_similarity_stay_close():
    """similarity_dtype=bfloat16: the value as float32's; the gradient's direction within a fraction of a percent
    (the L1 loss's signs flip for near-equal entries), far less than another draw of the sampled positions moves it
    on the positions both draws share (checked here)."""
    from ottex.methods.strotss import _self_similarity, _unit

    g = torch.Generator().manual_seed(7)
    pool = torch.randn(2048, 1667, generator=g).relu()  # the hybrid network's hypercolumn width
    content = pool + 2.0 * torch.randn(2048, 1667, generator=g).relu()

    def loss_and_grad(rows: torch.Tensor, dtype: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor]:
        x = pool.clone().requires_grad_(True)
        value = _self_similarity(_unit(x[rows]), _unit(content[rows]), dtype)
        return value, torch.autograd.grad(value, x)[0]

    first, second = torch.arange(0, 1024), torch.arange(512, 1536)  # two draws sharing rows 512-1023
    exact, g_exact = loss_and_grad(first, None)
    fast, g_fast = loss_and_grad(first, torch.bfloat16)
    _, g_other = loss_and_grad(second, None)
    shared = slice(512, 1024)
    cos = lambda a, b: float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))  # noqa: E731
    assert fast.dtype == torch.float32
    # measured: value within 9e-4 relative, gradients' cosine 0.997; another draw's, on the shared rows, 0.91
    torch.testing.assert_close(fast, exact, rtol=2e-3, atol=0)
    assert cos(g_fast, g_exact) > 0.99
    assert 10 * (1 - cos(g_fast[shared], g_exact[shared])) < 1 - cos(g_other[shared], g_exact[shared])


@pytest.mark.parametrize("hw", [(43, 64), (85, 128), (37, 21)])
def test_laplacian_pyramid_round_trip(hw):
    x = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(3))
    bands = laplacian_pyramid(x)
    assert len(bands) == 6 and bands[0].shape == x.shape
    assert bands[-1].shape[-1] == max(1, hw[1] // 32)
    torch.testing.assert_close(reconstruct_pyramid(bands), x, rtol=0, atol=1e-6)
    # a constant image has no band-pass energy
    flat = laplacian_pyramid(torch.full((1, 3, *hw), 0.4))
    assert all(float(b.abs().max()) < 1e-6 for b in flat[:-1])


@pytest.mark.parametrize(("hw", "out"), [((43, 64), (86, 128)), ((21, 32), (43, 64)), ((5, 7), (11, 13)),
                                         ((8, 8), (8, 8)), ((10, 10), (4, 5))])
def test_bilinear_by_products_is_bilinear_interpolation(hw, out):
    """The pyramid's CUDA upsampling (products, a backward that repeats): F.interpolate's values and gradient."""
    x = torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(0), dtype=torch.float64, requires_grad=True)
    g = torch.rand(2, 3, *out, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a = bilinear_by_products(x, out)
    b = F.interpolate(x, size=out, mode="bilinear", align_corners=False)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.autograd.grad(a, x, g)[0], torch.autograd.grad(b, x, g)[0], rtol=0, atol=1e-12)
    assert a.dtype == x.dtype and a.device == x.device


@pytest.mark.parametrize("hw", [(43, 64), (21, 32), (5, 8), (1, 1)])
def test_lookup_by_gathers_is_grid_sample(hw):
    """The hypercolumn lookup on CUDA (gathers, a backward that repeats): grid_sample's values and gradient."""
    gen = torch.Generator().manual_seed(0)
    t = torch.rand(1, 5, *hw, generator=gen, dtype=torch.float64, requires_grad=True)
    grid = _pixel_grid(torch.randperm(43 * 64, generator=gen)[:50], (43, 64)).double()
    a = lookup_by_gathers(t, grid)
    b = F.grid_sample(t, grid, mode="bilinear", padding_mode="border", align_corners=False)
    g = torch.rand(b.shape, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.autograd.grad(a, t, g)[0], torch.autograd.grad(b, t, g)[0], rtol=0, atol=1e-12)


def test_cached_upsampling_weights_survive_inference_mode():
    with torch.inference_mode():
        bilinear_by_products(torch.rand(1, 3, 7, 9), (13, 17))
    x = torch.rand(1, 3, 7, 9, requires_grad=True)
    bilinear_by_products(x, (13, 17)).sum().backward()  # the cached weights are usable by autograd
    assert x.grad is not None and x.grad.shape == x.shape


def test_scale_sizes():
    # the one pyramid of every method (ottex.core.pyramid): floor halving, so 341 px -> 42 at 1/8 (0.1: 43, rounded)
    assert scale_sizes((341, 512)) == [(42, 64), (85, 128), (170, 256), (341, 512)]
    assert [max(s) for s in scale_sizes((1024, 768))] == [64, 128, 256, 512, 1024]
    assert scale_sizes((64, 96)) == [(64, 96)]
    assert [max(s) for s in scale_sizes((400, 600))] == [75, 150, 300, 600]
    assert scale_sizes((40, 512)) == [(20, 256), (40, 512)]  # no side is halved below 16 px


# ---------------------------------------------------------------------------------------------
# Runs


@pytest.fixture(scope="module")
def content(load_test_image):
    return load_test_image("content/bridge.jpg", (64, 96))


@pytest.fixture(scope="module")
def lava(load_test_image):
    return load_test_image("style/lava-small.jpg", 128)


@pytest.mark.needs_weights
def test_samples_per_scale(content, lava, monkeypatch):
    """``samples`` takes one number per scale as ``steps`` does, the last repeating."""
    import ottex.methods.strotss as st

    seen: list[int] = []
    real = st._optimise_scale

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        seen.append(args[9])  # the positions per step of this scale
        return real(*args, **kwargs)

    monkeypatch.setattr(st, "_optimise_scale", spy)
    strotss(content, lava, 256, steps=1, samples=(64, 128), style_samples=256)
    assert seen == [64, 128, 128]
    assert get_method("strotss").make_options(samples=512).samples == 512


@pytest.mark.needs_weights
def test_deterministic_formulations_give_the_same_run(content, lava, monkeypatch):
    """The formulations used on CUDA in deterministic mode (padding with its own backward, upsampling by products,
    lookup by gathers), forced on the CPU: the same step up to rounding. One step per scale: after a few, RMSprop's
    first steps (about lr x 10 whatever the gradient's size) turn rounding-level differences of near-zero gradients
    into visible ones, as any change of rounding does (measured: 1e-3 after one step, 0.09 after three)."""
    import ottex.methods.strotss as st
    import ottex.nn.networks as nets

    exact = dict(network_dtype="float32", similarity_dtype="float32", **FAST)  # bfloat16 rounding would hide them
    usual = strotss(content, lava, 128, steps=1, seed=0, **exact)

    def forced(x: torch.Tensor) -> bool:
        return x.requires_grad and torch.is_grad_enabled()

    monkeypatch.setattr(st, "deterministic_backward", forced)
    monkeypatch.setattr(nets, "deterministic_backward", forced)
    calls = {name: 0 for name in ("bilinear_by_products", "lookup_by_gathers", "_pad_repeatable")}
    for mod, name in ((st, "bilinear_by_products"), (st, "lookup_by_gathers"), (nets, "_pad_repeatable")):
        real = getattr(mod, name)

        def counted(*a, _real=real, _name=name, **k):  # noqa: ANN002, ANN003, ANN202
            calls[_name] += 1
            return _real(*a, **k)

        monkeypatch.setattr(mod, name, counted)
    forced_run = strotss(content, lava, 128, steps=1, seed=0, **exact)
    assert all(n > 0 for n in calls.values()), calls
    assert (forced_run - usual).abs().max() < 5e-3 and (forced_run - usual).abs().mean() < 1e-5


def test_samples_values_are_kept_as_before_when_one():
    """One value (also written as a repeat) is stored as a number, as before per-scale samples: the settings records,
    job keys and output names of default runs do not change."""
    opts = get_method("strotss").make_options
    assert opts(samples=(1024, 1024)).samples == 1024 == opts().samples
    assert opts(samples="1024,2048,2048").samples == (1024, 2048)
    with pytest.raises(InputError, match="samples takes comma-separated integers, got 'many'"):
        opts(samples="many")


def test_region_samples_auto_is_each_or_shared_with_the_fast_preset():
    """``auto`` (the default) is ``each``, or ``shared`` in the ``fast`` preset on a CPU (the preset that meets issue
    17's guided time; on a GPU ``shared`` is no faster); a value given is kept. Default runs keep an empty settings
    digest (their output names are those of when ``each`` was the default)."""
    from ottex.methods.options import settings_digest
    from ottex.methods.strotss import _shares_region_samples

    opts = get_method("strotss").make_options
    assert not _shares_region_samples(opts()) and not _shares_region_samples(opts(region_samples="each"))
    assert _shares_region_samples(opts(fast=True)) and opts(fast=True).steps == (100,)
    assert not _shares_region_samples(opts(fast=True), "cuda") and _shares_region_samples(opts(fast=True), "cpu")
    assert _shares_region_samples(opts(region_samples="shared"), "cuda")
    assert not _shares_region_samples(opts(fast=True, region_samples="each"))
    assert _shares_region_samples(opts(region_samples="shared"))
    assert settings_digest("strotss", opts()) == ""


@pytest.mark.needs_weights
def test_fast_preset_shares_the_region_samples():
    """A guided run with ``fast`` (steps given, so only the sampling differs) is the ``shared`` run, not ``each``."""
    style, style_mask, content_mask = _two_region_inputs()
    content = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    masks = dict(content_mask=content_mask, style_mask=style_mask)
    kw = dict(steps=2, seed=0, **FAST, **masks)
    fast = strotss(content, style, fast=True, **kw)
    assert torch.equal(fast, strotss(content, style, region_samples="shared", **kw))
    assert not torch.allclose(fast, strotss(content, style, region_samples="each", **kw), atol=1e-3)


@pytest.mark.needs_weights
def test_shape_range_history_and_schedule(content, lava):
    history: list[dict] = []
    out = strotss(content, lava, 128, steps=(2, 3), history=history, **FAST)
    assert out.shape == (1, 3, 85, 128) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    assert [(h["scale"], h["size"], h["eval"]) for h in history] == [
        (0, (42, 64), 1), (0, (42, 64), 2), (1, (85, 128), 1), (1, (85, 128), 2), (1, (85, 128), 3)]
    assert all(math.isfinite(h["loss"]) and h["remd"] > 0 and h["content"] >= 0 for h in history)
    assert strotss(content, lava, steps=1, **FAST).shape == content.shape  # default size: the content's


@pytest.mark.needs_weights
def test_seed_repeats_within_the_stated_tolerance(content, lava):
    """Same seed: the same image up to REPEAT_TOLERANCE (with several CPU threads two runs have differed by 1.3e-7
    under load: the last bits of a multi-threaded sum); another seed: a clearly different image."""
    a = strotss(content, lava, steps=3, seed=5, **FAST)
    b = strotss(content, lava, steps=3, seed=5, **FAST)
    c = strotss(content, lava, steps=3, seed=6, **FAST)
    assert float((a - b).abs().max()) <= REPEAT_TOLERANCE
    assert float((a - c).abs().max()) > 1000 * REPEAT_TOLERANCE


@pytest.mark.needs_weights
@pytest.mark.slow
def test_moves_to_the_style_and_content_weight_trades_style_for_layout(content, lava):
    style = resize_long_side(lava, 128)  # STROTSS resizes the style to the output's long side
    start = style_distance(resize(content, (85, 128)), style)
    scores = {}
    for cw in (0.25, 4.0):
        out = strotss(content, lava, 128, steps=15, content_weight=cw, **FAST)
        scores[cw] = (style_distance(out, style), content_distance(out, content))
    # measured (2 scales x 15 steps): style 0.69 -> 0.41 (cw 0.25) / 0.58 (cw 4); content 0.15 / 0.11
    assert scores[0.25][0] < 0.75 * start
    assert scores[4.0][1] < 0.85 * scores[0.25][1]
    assert scores[4.0][0] > scores[0.25][0]


def _two_region_inputs():
    """A style whose left half is red and right half blue, with label maps: style red|green, content green/red."""
    tex = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    style = torch.zeros(1, 3, 64, 64)
    style[:, 0, :, :32] = 0.5 + 0.5 * tex[:, 0, :, :32]
    style[:, 2, :, 32:] = 0.5 + 0.5 * tex[:, 0, :, 32:]
    style[:, 1] = 0.2 * tex[:, 0]
    style_mask = torch.zeros(1, 3, 64, 64)
    style_mask[:, 0, :, :32] = 1  # red label on the red half
    style_mask[:, 1, :, 32:] = 1  # green label on the blue half
    content_mask = torch.zeros(1, 3, 64, 64)
    content_mask[:, 1, :32] = 1  # top: green label -> blue style
    content_mask[:, 0, 32:] = 1  # bottom: red label -> red style
    return style, style_mask, content_mask


@pytest.mark.needs_weights
@pytest.mark.parametrize("region_samples", ["shared", "each"])
@pytest.mark.slow
def test_region_guidance_follows_the_labels(load_test_image, region_samples):
    content = load_test_image("content/bridge.jpg", (64, 64))
    style, style_mask, content_mask = _two_region_inputs()
    kw = dict(steps=20, content_weight=0.25, **FAST)
    guided = strotss(content, style, content_mask=content_mask, style_mask=style_mask, region_samples=region_samples,
                     **kw)
    free = strotss(content, style, **kw)

    def blue_minus_red(img: torch.Tensor) -> tuple[float, float]:
        d = img[0, 2] - img[0, 0]
        return float(d[:32].mean()), float(d[32:].mean())

    top, bottom = blue_minus_red(guided)  # measured: shared +0.17 / -0.24, each +0.17 / -0.25
    assert top > 0.05 and bottom < -0.1 and top - bottom > 0.25
    top, bottom = blue_minus_red(free)  # measured: -0.06 / +0.02: no such split without guidance
    assert abs(top - bottom) < 0.15


def test_region_counts_split_the_samples_by_area():
    assert _region_counts([9000, 1000], 1024, shared=True) == [922, 128]  # 102 by area: raised to the minimum
    assert _region_counts([50, 9000], 1024, shared=True) == [50, 1018]  # a region with fewer positions: all of them
    assert _region_counts([3000, 3000, 3000], 1024, shared=True) == [341, 341, 341]
    assert _region_counts([9000, 1000], 1024, shared=False) == [1024, 1024]
    assert _region_counts([9000], 1024, shared=True) == [1024]
    assert MIN_REGION_SAMPLES == 128


@pytest.mark.needs_weights
def test_one_region_is_the_unguided_run_in_both_modes(content, lava):
    kw = dict(steps=2, seed=3, **FAST)
    free = strotss(content, lava, **kw)
    for mode in ("shared", "each"):  # one white region covering both images
        guided = strotss(content, lava, content_mask=torch.ones_like(content), style_mask=torch.ones_like(lava),
                         region_samples=mode, **kw)
        assert torch.allclose(guided, free, atol=1e-6), mode


@pytest.mark.needs_weights
def test_vgg19_caffe_network_and_progress(content, lava, capsys):
    out = strotss(content, lava, steps=1, network="vgg19-caffe", progress=True, **FAST)
    assert out.shape == content.shape
    assert "strotss" in capsys.readouterr().err


@pytest.mark.needs_weights
def test_hybrid_network_takes_each_layer_from_its_part(content, weights_dir):
    """hybrid: VGG-19's own full-width layers from wct-vgg19 up to relu3_1, cd16x's read-outs at relu4_1 and relu5_1;
    every tap is the value its part gives alone."""
    from ottex.methods.strotss import HYBRID_PARTS, NETWORK_LAYERS, loss_network
    from ottex.nn.networks import load_feature_extractor

    net = loss_network("hybrid", weights_dir)
    assert not any(p.requires_grad for p in net.parameters())
    image = content[..., :64, :96]
    with torch.no_grad():
        taps = net(image)
        narrow = net(image, read_out=False)
    assert tuple(taps) == NETWORK_LAYERS["hybrid"]
    widths = {k: v.shape[1] for k, v in taps.items()}
    assert widths == {"relu1_1": 64, "relu1_2": 64, "relu2_1": 128, "relu2_2": 128, "relu3_1": 256, "relu4_1": 512,
                      "relu5_1": 512}
    for part, layers in HYBRID_PARTS.items():
        alone = load_feature_extractor(part, layers, weights_dir=weights_dir, pool="max")
        with torch.no_grad():
            ref = alone(image)
        for k in layers:
            torch.testing.assert_close(taps[k], ref[k])
    # the read-outs (cd16x's) after a lookup: the wide values
    row = narrow["relu4_1"][0, :, 1, 2][None]
    torch.testing.assert_close(net.read_out("relu4_1", row), taps["relu4_1"][0, :, 1, 2][None], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(net.read_out("relu2_2", narrow["relu2_2"][0, :, 1, 2][None]),
                               taps["relu2_2"][0, :, 1, 2][None])


@pytest.mark.needs_weights
def test_hybrid_is_the_default_and_falls_back_to_cd16x_without_its_wct_file(content, lava, weights_dir, tmp_path,
                                                                             monkeypatch):
    """The default network; without wct-vgg19's file, cd16x for every layer with a warning naming the file (as the
    hybrid set of Optimal Textures); a corrupt file stays an error; an unknown name is an input error."""
    import shutil

    from ottex.core.errors import WeightsError
    from ottex.methods.strotss import DEFAULT_NETWORK, NETWORK_LAYERS, loss_network

    assert DEFAULT_NETWORK == "hybrid" == get_method("strotss").make_options().weights
    used: list[str] = []
    real = loss_network

    def spy(name, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        used.append(name)
        return real(name, *a, **k)

    monkeypatch.setattr("ottex.methods.strotss.loss_network", spy)
    out = strotss(content, lava, 64, steps=2, **FAST)
    assert used == ["hybrid"] and out.shape == (1, 3, 43, 64) and 0 <= float(out.min()) and float(out.max()) <= 1
    monkeypatch.undo()

    shutil.copytree(weights_dir / "cd16x", tmp_path / "w" / "cd16x")  # no wct-vgg19
    monkeypatch.setenv("OTTEX_WEIGHTS", str(tmp_path / "w"))
    monkeypatch.setenv("OTTEX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OTTEX_OFFLINE", "1")
    with pytest.warns(UserWarning, match="wct-vgg19/vgg_normalised_conv3_1.pth.*using cd16x for all layers"):
        net = loss_network("hybrid", tmp_path / "w")
    assert net.layers == NETWORK_LAYERS["cd16x"]
    (tmp_path / "w" / "wct-vgg19").mkdir()
    (tmp_path / "w" / "wct-vgg19" / "vgg_normalised_conv3_1.pth").write_bytes(b"not a checkpoint" * 100)
    with pytest.raises(WeightsError, match="sha256"):
        loss_network("hybrid", tmp_path / "w")
    with pytest.raises(InputError, match="unknown STROTSS network 'alexnet'"):
        loss_network("alexnet")


@pytest.mark.needs_weights
def test_similarity_dtype_reaches_the_self_similarity(content, lava, monkeypatch):
    import ottex.methods.strotss as st

    seen: list[object] = []
    real = st._self_similarity

    def spy(xu, cu, dtype=None):  # noqa: ANN001, ANN202
        seen.append(dtype)
        return real(xu, cu, dtype)

    monkeypatch.setattr(st, "_self_similarity", spy)
    strotss(content, lava, 64, steps=1, similarity_dtype="bfloat16", **FAST)
    strotss(content, lava, 64, steps=1, similarity_dtype="float32", **FAST)
    assert seen == [torch.bfloat16, None]


@pytest.mark.needs_weights
def test_registry_transfer(content, lava):
    out = strotss(content, lava, seed=0, device="cpu", steps=1, **FAST)
    assert out.shape == content.shape
    again = get_method("strotss").transfer(content, lava, options={"steps": (1,), **FAST}, device="cpu")
    assert torch.equal(out, again)


@pytest.mark.needs_weights
def test_accepts_paths(tmp_path, content, images_dir):
    save_image(content, tmp_path / "c.png")
    out = strotss(tmp_path / "c.png", images_dir / "style" / "lava-small.jpg", 64, steps=1, **FAST)
    assert out.shape == (1, 3, 43, 64)
    assert torch.allclose(load_image(tmp_path / "c.png"), content, atol=1 / 255)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"network": "alexnet"}, "unknown STROTSS network"),
        ({"steps": 0}, "steps"),
        ({"steps": (3, 0)}, "steps"),
        ({"lr": 0.0}, "lr"),
        ({"samples": 1}, "samples"),
        ({"samples": (256, 1)}, "samples"),
        ({"region_samples": "all"}, "region_samples takes one of auto, shared, each"),
        ({"content_weight": -1.0}, "content weight"),
        ({"size": 32}, "too small"),
        ({"content_mask": torch.zeros(1, 3, 64, 96)}, "both a style mask and a content mask"),
        ({"style_mask": torch.zeros(1, 3, 64, 64)}, "both a style mask and a content mask"),
    ],
)
def test_bad_arguments(content, lava, kwargs, match):
    with pytest.raises(InputError, match=match):
        strotss(content, lava, **kwargs)


def test_bad_masks(load_test_image):
    content = load_test_image("content/bridge.jpg", (64, 64))
    style, style_mask, content_mask = _two_region_inputs()
    with pytest.raises(InputError, match="does not match"):  # content mask of another aspect
        strotss(content, style, content_mask=content_mask[..., :32], style_mask=style_mask)
    with pytest.raises(InputError, match="does not match"):  # style mask of another aspect
        strotss(content, style, content_mask=content_mask, style_mask=style_mask[..., :16, :])
    blue = content_mask.clone()
    blue[:, :, :32] = torch.tensor([0.0, 0.0, 1.0])[:, None, None]  # a label the style's map lacks
    with pytest.raises(InputError, match="not in the style mask"):
        strotss(content, style, content_mask=blue, style_mask=style_mask)
    with pytest.raises(InputError, match="too small"):  # a tiny content and no size
        strotss(resize(content, (32, 32)), style)


@pytest.mark.needs_weights
def test_cli_style_method_strotss(tmp_path, images_dir, capsys):
    from PIL import Image

    from ottex.app.cli import main

    c, s = tmp_path / "c.jpg", tmp_path / "s.jpg"
    Image.open(images_dir / "content" / "bridge.jpg").resize((96, 64)).save(c)
    Image.open(images_dir / "style" / "lava-small.jpg").resize((64, 64)).save(s)
    args = ["style", str(c), str(s), "--method", "strotss", "--steps", "2", "--outdir", str(tmp_path), "-q"]
    assert main(args) == 0
    (out,) = tmp_path.glob("c_s_style_cw1_strotss_s0_*.png")  # --steps 2: a settings hash in the name
    assert Image.open(out).size == (96, 64)
    assert main([*args, "--optimizer", "adam", "--force"]) == 1
    assert "--optimizer: method 'strotss' has no option 'optimizer'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # not a synthesis method: argparse refuses the choice
        main(["synth", str(s), "--method", "strotss", "-q"])
    assert exc.value.code == 2 and "invalid choice: 'strotss'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["style", "--help"])
    out = capsys.readouterr().out
    assert "--fast" in out and "--region-samples" in out and "--moment-dtype" in out
    assert "--similarity-dtype" in out and "--network-dtype" in out


def test_fast_preset_replaces_the_default_steps_only():
    from ottex.methods.strotss import DEFAULT_STEPS, FAST_STEPS, StrotssOptions

    assert StrotssOptions().steps == DEFAULT_STEPS == (250,)
    assert StrotssOptions(fast=True).steps == FAST_STEPS == (100,)
    assert StrotssOptions(fast=True, steps=(50, 20)).steps == (50, 20)  # steps given: the preset leaves them


# ---------------------------------------------------------------------------------------------
# The fast paths of a step (issue 17): the same losses, gradients and lookups as the plain definitions


def test_unit_rows_backward_matches_autograd_of_the_definition():
    from ottex.methods.strotss import _EPS, _unit

    g = torch.Generator().manual_seed(7)
    x = torch.randn(20, 9, generator=g, dtype=torch.float64)
    x[3] = 0.0  # a row shorter than eps: divided by eps, no radial part
    x[5] *= 1e-9
    x.requires_grad_(True)
    w = torch.randn(20, 9, generator=g, dtype=torch.float64)
    (ours,) = torch.autograd.grad((_unit(x) * w).sum(), x)
    plain = x / x.norm(dim=-1, keepdim=True).clamp_min(_EPS)
    (ref,) = torch.autograd.grad((plain * w).sum(), x)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(_unit(x), plain)


def test_search_dtype_choices():
    from ottex.methods.strotss import search_dtype

    assert search_dtype("float32", "cpu") is None
    assert search_dtype("bfloat16", "cpu") is torch.bfloat16
    assert search_dtype("auto", "cpu") in (None, torch.bfloat16)  # bfloat16 only where the CPU has native products
    assert search_dtype("auto", "cuda") is None  # no device needed to answer
    with pytest.raises(InputError, match="match dtype"):
        search_dtype("float16", "cpu")
    with pytest.raises(InputError, match="match_dtype takes one of"):
        strotss(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), match_dtype="int8")
    with pytest.raises(InputError, match="moment_dtype takes one of"):
        strotss(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), moment_dtype="int8")
    with pytest.raises(InputError, match="similarity_dtype takes one of"):
        strotss(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), similarity_dtype="float16")
    with pytest.raises(InputError, match="network_dtype takes one of"):
        strotss(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), network_dtype="half")


@pytest.mark.needs_weights
def test_network_dtype_runs_the_step_convolutions_in_bfloat16_only(content, lava, monkeypatch):
    """network_dtype=bfloat16: the convolutions of every step are bfloat16, those of the style's and content's
    features float32; the first step's loss is the float32 run's up to the rounding of the features."""
    seen: list[tuple[bool, torch.dtype]] = []
    real = F.conv2d

    def spy(x, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        out = real(x, *a, **k)
        seen.append((torch.is_grad_enabled(), out.dtype))
        return out

    monkeypatch.setattr(F, "conv2d", spy)
    h_exact: list[dict] = []
    h_fast: list[dict] = []
    strotss(content, lava, 128, steps=1, seed=0, network_dtype="float32", history=h_exact, **FAST)
    assert seen and {d for _, d in seen} == {torch.float32}
    seen.clear()
    fast = strotss(content, lava, 128, steps=1, seed=0, network_dtype="bfloat16", history=h_fast, **FAST)
    assert {d for grad, d in seen if grad} == {torch.bfloat16}  # the steps'
    assert {d for grad, d in seen if not grad} == {torch.float32}  # the style's and content's features
    assert fast.shape == (1, 3, 85, 128)
    # the same positions, the same image: the loss differs by the features' rounding only (an RMSprop step
    # later, the images differ as after any change of rounding: its first steps are about lr x 10 per pixel)
    first, first_fast = h_exact[0]["loss"], h_fast[0]["loss"]
    assert first != first_fast and first_fast == pytest.approx(first, rel=1e-2)


@pytest.mark.parametrize("shape", [(300, 120), (120, 300)])  # the row and the column relaxation
def test_bfloat16_search_finds_the_same_pairs_and_gives_float32_values(shape):
    from ottex.methods.strotss import _Cloud, _match

    g = torch.Generator().manual_seed(8)
    n, m = shape
    k = 60
    centres = torch.randn(k, 256, generator=g)

    # copies of the centres at relative distances 0.02, 0.07, 0.12, ... (the nearest copy last): nearest neighbours
    # with costs from 4e-4 up, whose similarities bfloat16 would round to the same step of 0.004 near 1
    def copies(count: int) -> torch.Tensor:
        spread = 0.02 + 0.05 * (count // k - 1 - torch.arange(count) // k).float()[:, None]
        return centres[torch.arange(count) % k] + spread * torch.randn(count, 256, generator=g)

    x, y = copies(n).requires_grad_(True), copies(m)
    exact = _match(x, _Cloud.of(y, "cosine"))
    fast = _match(x, _Cloud.of(y, "cosine", torch.bfloat16))
    assert fast.dtype == torch.float32
    (g_exact,), (g_fast,) = torch.autograd.grad(exact, x), torch.autograd.grad(fast, x)
    # measured: one pair of 300 (120) differs, by a cost difference of ~1e-4; a search on bfloat16 similarities
    # differs in about half of them (value off by ~1e-3)
    torch.testing.assert_close(fast, exact, rtol=0, atol=2e-6)
    same_rows = (g_fast - g_exact).abs().amax(1) < 1e-9
    assert float(same_rows.float().mean()) > 0.97
    torch.testing.assert_close(exact, relaxed_emd(x, y), rtol=0, atol=1e-6)  # and the public definition


@pytest.mark.needs_weights
def test_read_outs_after_the_lookup_give_the_wide_maps_hypercolumns(content):
    from ottex.methods.strotss import _hypercolumns, _pixel_grid
    from ottex.nn.networks import load_feature_extractor

    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    net = load_feature_extractor("cd16x", layers, pool="max")
    grid = _pixel_grid(torch.randperm(64 * 96, generator=torch.Generator().manual_seed(9))[:200], (64, 96))
    wide = _hypercolumns(content, net(content), layers, grid)
    narrow = _hypercolumns(content, net(content, read_out=False), layers, grid, net)
    assert wide.shape == narrow.shape == (200, 3 + 64 + 128 + 256 + 512 + 512)
    assert wide.is_contiguous() and narrow.is_contiguous()
    torch.testing.assert_close(narrow, wide, rtol=1e-4, atol=1e-4)


@pytest.mark.needs_weights
@pytest.mark.slow
def test_seed_repeats_exactly_with_two_threads(content, lava):
    """The column relaxation's gradient has no scatter-add (whose atomics made 2-thread runs differ by ~1e-5
    once a last-bit difference flipped a nearest neighbour): same seed, 2 threads, the same image."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runs = [strotss(content, lava, steps=3, seed=5, device="cpu", **FAST) for _ in range(3)]
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(runs[0], r) for r in runs[1:])
