"""Shared input checks and size rules: messages give sizes as width x height; the style example is only said to
be enlarged where it is."""

from __future__ import annotations

import warnings

import pytest
from PIL import Image

from ottex.app.cli import main
from ottex.core.checks import check_size
from ottex.core.errors import InputError
from ottex.core.pyramid import content_output_size, network_factor


def test_size_messages_are_width_by_height():
    with pytest.raises(InputError, match=r"output size 15x64 is too small: both sides must be at least 16 px"):
        check_size((64, 15))  # (height, width): 15 wide, 64 high
    with pytest.raises(InputError, match=r"output size must be positive, got 32x0"):
        check_size((0, 32))
    # a 96 wide x 64 high content at a long side of 20: 20 wide x 13 high
    with pytest.raises(InputError, match=r"output size 20x13 is too small"):
        content_output_size((64, 96), 20)


def test_cli_size_error_is_width_by_height(tmp_path, capsys):
    style = tmp_path / "rgb64.png"
    Image.new("RGB", (64, 64), (120, 60, 30)).save(style)
    assert main(["synth", str(style), "--width", "15", "--height", "64", "-q", "-o", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "output size 15x64 is too small" in err[0], err


def test_network_factor_warns_only_when_the_example_is_enlarged():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert network_factor((64, 64), 1.0, 32) == 1.0  # large enough as it is
        assert network_factor((64, 64), 0.25, 32) == 0.5  # 16 px is too small: 32 px, still a shrink, said nothing
        assert network_factor((64, 96), 0.25, 32, "the relu5_1 encoder") == 0.5
    with pytest.warns(UserWarning, match=r"the 30x20 px style example is enlarged to a 32 px short side, the least "
                      r"the relu5_1 encoder needs"):
        assert network_factor((20, 30), 0.5, 32, "the relu5_1 encoder") == pytest.approx(1.6)
    with pytest.warns(UserWarning, match="enlarged to a 32 px short side"):  # asked to enlarge, but not enough
        assert network_factor((20, 20), 1.2, 32) == pytest.approx(1.6)
