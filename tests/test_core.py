"""The core layer's shared helpers: the scale pyramid, the crop, input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ottex.core.device as device_module
from ottex.core.checks import check_image, check_size
from ottex.core.device import deterministic_backward, make_generator, repeatable, repeatable_on
from ottex.core.errors import InputError
from ottex.core.pyramid import crop_to, per_scale, pyramid_sizes, working_size
from ottex.image.io import as_image


def test_pyramid_sizes():
    assert pyramid_sizes((512, 512), 256) == [(256, 256), (512, 512)]
    assert pyramid_sizes((2048, 1024), 256) == [(256, 128), (512, 256), (1024, 512), (2048, 1024)]
    assert pyramid_sizes((100, 90), 256) == [(112, 96)]  # one scale, rounded up to 16
    assert pyramid_sizes((512, 512), 256, scales=3, min_side=64) == [(128, 128), (256, 256), (512, 512)]
    assert pyramid_sizes((512, 512), 256, scales=5, min_side=64) == [(64, 64), (128, 128), (256, 256), (512, 512)]
    assert pyramid_sizes((85, 128), 64, multiple=1) == [(42, 64), (85, 128)]
    for size in ((37, 300), (512, 77), (1000, 1000)):  # every scale a multiple of 16, halving at most
        sizes = pyramid_sizes(size, 64)
        assert sizes[-1] == working_size(size) and all(h % 16 == 0 and w % 16 == 0 for h, w in sizes)
        assert all(b[0] >= a[0] and b[1] >= a[1] for a, b in zip(sizes, sizes[1:]))


def test_crop_and_per_scale():
    x = torch.arange(48.0).reshape(1, 1, 6, 8)
    assert crop_to(x, (6, 8)) is x
    assert torch.equal(crop_to(x, (2, 4)), x[..., 2:4, 2:6])  # the centre
    assert per_scale((100, 40), 3) == [100, 40, 40] and per_scale((7,), 1) == [7]
    with pytest.raises(InputError):
        per_scale((), 2)


def test_input_checks():
    assert check_size((16, 20.0)) == (16, 20)
    with pytest.raises(InputError, match="too small"):
        check_size((8, 64))
    with pytest.raises(InputError, match=r"style must be a single image, got a batch of 2"):
        as_image(torch.rand(2, 3, 8, 8), what="style")
    with pytest.raises(InputError, match=r"content must be an image path or an RGB tensor of shape \(1, 3, H, W\)"):
        as_image(torch.rand(4, 8, 8), what="content")
    assert as_image(torch.rand(3, 8, 8)).shape == (1, 3, 8, 8)
    batch = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    assert as_image(batch, shape="any", dtype=None) is batch
    with pytest.raises(InputError, match=r"\(B, 3, H, W\), got \(3, 4, 4\)"):
        check_image(batch[0], "images", "batch")


def _determinism_settings() -> tuple[bool, bool, bool, bool, bool]:
    return (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
            torch.utils.deterministic.fill_uninitialized_memory)


def test_repeatable_on_sets_cuda_determinism_for_the_run_only(monkeypatch):
    monkeypatch.delenv("OTTEX_NO_CUDA_DETERMINISM", raising=False)
    before = _determinism_settings()
    with repeatable_on("cpu"):
        assert _determinism_settings() == before  # CPU kernels repeat: nothing to change
    with repeatable_on("cuda"):  # the settings only (no CUDA device needed to set them)
        assert _determinism_settings() == (True, True, True, False, False)
    assert _determinism_settings() == before
    with pytest.raises(ValueError, match="inside"), repeatable_on("cuda"):
        raise ValueError("inside")
    assert _determinism_settings() == before  # restored after an error too
    with repeatable_on("cuda"):
        with repeatable_on("cuda"):  # e.g. runs on two GPUs at once
            pass
        assert _determinism_settings() == (True, True, True, False, False)  # the other run still has them
    assert _determinism_settings() == before


def test_repeatable_on_keeps_a_callers_strict_mode(monkeypatch):
    monkeypatch.delenv("OTTEX_NO_CUDA_DETERMINISM", raising=False)
    torch.use_deterministic_algorithms(True)
    try:
        with repeatable_on("cuda"):
            assert torch.are_deterministic_algorithms_enabled()
            assert not torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_cuda_determinism_can_be_turned_off(monkeypatch):
    before = _determinism_settings()
    monkeypatch.setenv("OTTEX_NO_CUDA_DETERMINISM", "1")
    with repeatable_on("cuda"):
        assert _determinism_settings() == before


def test_deterministic_backward_only_for_cuda_tensors_that_need_a_gradient(monkeypatch):
    monkeypatch.delenv("OTTEX_NO_CUDA_DETERMINISM", raising=False)
    x = torch.ones(2, requires_grad=True)
    with repeatable_on("cuda"):
        assert torch.are_deterministic_algorithms_enabled()
        assert not deterministic_backward(x)  # a CPU tensor: its kernels repeat anyway


def test_repeatable_decorator_resolves_the_device_keyword(monkeypatch):
    @repeatable
    def run(*, device=None):  # noqa: ANN001, ANN202
        return _determinism_settings()[0]

    assert run(device="cpu") is torch.are_deterministic_algorithms_enabled()
    assert run.__name__ == "run"
    with pytest.raises(InputError, match="device 'tpu' is unknown"):
        run(device="tpu")
    monkeypatch.delenv("OTTEX_NO_CUDA_DETERMINISM", raising=False)
    monkeypatch.setattr(device_module, "resolve_device", lambda device: torch.device("cuda"))  # as on a GPU machine
    assert run(device=None) is True and run(device="cuda") is True
    assert not torch.are_deterministic_algorithms_enabled()


def test_seeds_are_checked():
    """A seed is 0 ... 2**63 - 1 on the command line (a batch's seeds seed + i stay within torch's 64 bits; -1 would
    alias 2**64 - 1); the generator refuses what torch cannot take with a clear error instead of an overflow."""
    import argparse

    from ottex.app.cli.common import seed_arg
    from ottex.core.device import MAX_SEED, parse_seed

    assert parse_seed("42") == 42 and parse_seed(MAX_SEED) == MAX_SEED
    for bad in ("-1", str(MAX_SEED + 1), "abc", "1.5"):
        with pytest.raises(ValueError, match="a seed is an integer from 0 to"):
            parse_seed(bad)
        with pytest.raises(argparse.ArgumentTypeError, match="a seed is an integer from 0 to"):
            seed_arg(bad)
    with pytest.raises(InputError, match="seed must be an integer from 0"):
        make_generator(10**23)
    with pytest.raises(InputError, match="seed must be an integer from 0"):
        make_generator(-1)
    assert torch.equal(torch.rand(3, generator=make_generator(2**64 - 1)),
                       torch.rand(3, generator=torch.Generator().manual_seed(2**64 - 1)))


def test_generator_seeds_are_integers():
    """``seed=1.5`` was silently the image of seed 1."""
    for bad in (1.5, True, "3"):
        with pytest.raises(InputError, match="seed must be an integer"):
            make_generator(bad)
    assert torch.equal(torch.rand(2, generator=make_generator(np.int64(3))), torch.rand(2, generator=make_generator(3)))
