"""CUDA: the OT primitives keep device and dtype, every method runs on a CUDA device with its result there, repeats
bit for bit under a seed (no operation without a deterministic CUDA kernel on its path), and moves the statistics
toward the style as on the CPU.

Skipped where torch sees no CUDA device (CI has none): run them on a GPU machine with
``python -m pytest tests/test_cuda.py``. ``OTTEX_TEST_DEVICE=cpu`` runs the same checks on the CPU (to check the
tests themselves on a machine without a GPU)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import pytest
import torch

from ottex.core.device import NONDETERMINISTIC_WARNING
from ottex.eval.metrics import content_distance, style_distance
from ottex.methods import get_method
from ottex.ot import (
    binned_sort_match,
    bures_wasserstein_mapping,
    sliced_match,
    sliced_wasserstein_distance,
    sort_match,
    wasserstein_1d,
)

DEVICE = os.environ.get("OTTEX_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="no CUDA device")

# Small, quick settings per method (the CPU test modules check the full behaviour).
FAST = {
    "ot": {"passes": (2, 1)},
    "w2": {"steps": (20,)},
    "gatys": {"steps": (20,)},
    "swd": {"steps": (20,)},
    "strotss": {"steps": (20,)},
}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator(device=DEVICE).manual_seed(seed)


def _twice(run: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Run twice; fail unless both results are equal and no operation without a deterministic kernel ran."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a, b = run(), run()
    bad = sorted({str(w.message)[:120] for w in caught if NONDETERMINISTIC_WARNING.match(str(w.message))})
    assert not bad, f"operations without a deterministic CUDA kernel: {bad}"
    assert torch.equal(a, b), f"same seed, max difference {(a - b).abs().max().item()}"
    return a


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_primitives_keep_device_and_dtype_and_match_the_cpu(dtype):
    cpu = torch.Generator().manual_seed(0)
    x = torch.randn(2, 500, 6, generator=cpu, dtype=dtype)
    y = torch.randn(2, 700, 6, generator=cpu, dtype=dtype) * 2 + 1
    xd, yd = x.to(DEVICE), y.to(DEVICE)
    tol = {"rtol": 1e-4, "atol": 1e-4}
    out = sort_match(xd, yd)
    assert out.device.type == torch.device(DEVICE).type and out.dtype == dtype
    assert torch.allclose(out.cpu(), sort_match(x, y), **tol)
    w = wasserstein_1d(xd[0], yd[0])
    assert w.device.type == torch.device(DEVICE).type and w.dtype == dtype
    assert torch.allclose(w.cpu(), wasserstein_1d(x[0], y[0]), **tol)
    big_x, big_y = torch.randn(3, 20000, generator=cpu, dtype=dtype), torch.rand(3, 30000, generator=cpu, dtype=dtype)
    binned = binned_sort_match(big_x.to(DEVICE), big_y.to(DEVICE))
    assert binned.device.type == torch.device(DEVICE).type and binned.dtype == dtype
    assert (binned.cpu() - binned_sort_match(big_x, big_y)).abs().max() < 1e-3
    moved = sliced_match(xd, yd, iterations=4, generator=_gen())
    assert moved.device.type == torch.device(DEVICE).type and moved.dtype == dtype
    before = sliced_wasserstein_distance(xd[0], yd[0], generator=_gen(1))
    after = sliced_wasserstein_distance(moved[0], yd[0], generator=_gen(1))
    assert after.device.type == torch.device(DEVICE).type and after < 0.2 * before
    a, b = bures_wasserstein_mapping(xd[0], yd[0])
    assert a.device.type == torch.device(DEVICE).type and a.dtype == dtype
    a_cpu, b_cpu = bures_wasserstein_mapping(x[0], y[0])
    assert torch.allclose(a.cpu(), a_cpu, rtol=1e-3, atol=1e-3) and torch.allclose(b.cpu(), b_cpu, rtol=1e-3,
                                                                                   atol=1e-3)


@pytest.mark.needs_weights
@pytest.mark.parametrize("name", ["ot", "w2", "gatys", "swd"])
def test_synthesis_runs_on_the_device_repeats_and_matches_the_cpu_quality(name, graffiti, weights_dir):
    method = get_method(name)
    style = graffiti[..., :64, :64]
    out = _twice(lambda: method.synthesize(style, (64, 64), FAST[name], seed=3, device=DEVICE,
                                           weights_dir=str(weights_dir)))
    assert out.device.type == torch.device(DEVICE).type and out.shape == (1, 3, 64, 64)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    on_cpu = method.synthesize(style, (64, 64), FAST[name], seed=3, device="cpu", weights_dir=str(weights_dir))
    d_dev, d_cpu = style_distance(out.cpu(), style), style_distance(on_cpu, style)
    assert d_dev < 1.3 * d_cpu + 0.01, f"{name}: style distance {d_dev:.4f} on {DEVICE}, {d_cpu:.4f} on the CPU"


@pytest.mark.needs_weights
@pytest.mark.parametrize("name", ["ot", "strotss"])
def test_transfer_runs_on_the_device_and_matches_the_cpu_quality(name, load_test_image, weights_dir):
    method = get_method(name)
    content, style = load_test_image("content/avril.jpg", 64), load_test_image("style/lava-small.jpg", 64)
    out = _twice(lambda: method.transfer(content, style, 64, FAST[name], seed=0, device=DEVICE,
                                         weights_dir=str(weights_dir)))
    assert out.device.type == torch.device(DEVICE).type and out.shape[-2:] == content.shape[-2:]
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    on_cpu = method.transfer(content, style, 64, FAST[name], seed=0, device="cpu", weights_dir=str(weights_dir))
    s_dev, s_cpu = style_distance(out.cpu(), style), style_distance(on_cpu, style)
    c_dev, c_cpu = content_distance(out.cpu(), content), content_distance(on_cpu, content)
    assert s_dev < 1.3 * s_cpu + 0.01 and c_dev < 1.3 * c_cpu + 0.01, (s_dev, s_cpu, c_dev, c_cpu)


@pytest.mark.needs_weights
def test_pseudo_optimizer_trains_and_synthesises_on_the_device(tmp_path, graffiti, weights_dir):
    from ottex.methods.pseudo_optimizer import TrainOptions, load_checkpoint, train

    opts = TrainOptions(variant="po", size=32, style_side=48, steps=4, batch=2, lr=2e-3, width=8, save_every=100)
    paths = iter([tmp_path / "a.pt", tmp_path / "b.pt"])

    def trained_weights() -> torch.Tensor:
        path = next(paths)
        train([graffiti], path, opts, device=DEVICE, weights_dir=str(weights_dir))
        state = load_checkpoint(path)["model"].state_dict()
        assert all(v.device.type == "cpu" for v in state.values())  # a checkpoint loads anywhere
        return torch.cat([v.flatten().float() for v in state.values()])

    _twice(trained_weights)  # training repeats too
    po = get_method("po")
    out = _twice(lambda: po.synthesize(graffiti, (48, 48), {"model": str(tmp_path / "a.pt")}, seed=1, device=DEVICE,
                                       weights_dir=str(weights_dir)))
    assert out.device.type == torch.device(DEVICE).type and out.shape == (1, 3, 48, 48)
    assert torch.isfinite(out).all()
