"""The cost of a run, estimated from its size before it starts (issue 30, item 1): what cannot fit is refused at
once with one line saying what would, a large run is announced, and the bar's time left weighs steps by pixels.

No test allocates much: the available memory is set, and the refused sizes are never run."""

from __future__ import annotations

import re
import time
import warnings

import pytest
import torch

from ottex.app.cli import main
from ottex.core.errors import InputError
from ottex.core.progress import Reporter, TqdmProgress
from ottex.image.io import save_image
from ottex.methods import cost
from ottex.methods.base import get_method


@pytest.fixture()
def eight_gb(monkeypatch):
    monkeypatch.setattr(cost, "available_memory", lambda device=None: 8000.0)


@pytest.fixture()
def style(tmp_path):
    p = tmp_path / "graffiti.png"
    save_image(torch.rand(1, 3, 40, 32, generator=torch.Generator().manual_seed(0)), p)
    return p


def test_a_huge_size_is_refused_at_once_on_the_command_line(eight_gb, style, tmp_path, capsys):
    start = time.perf_counter()
    assert main(["synth", str(style), "--size", "100000", "--outdir", str(tmp_path)]) == 1
    elapsed = time.perf_counter() - start
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("ottex: error: --size 100000x100000 needs about 2.08 TB of memory with method ot, more "
                           "than the 8 GB available here; about ") and line.endswith(" px would fit")
    assert not list(tmp_path.glob("*_synth_*")) and elapsed < 60  # nothing made; generous bound, no timing claim


def test_the_fitting_size_named_fits_and_keeps_the_aspect(eight_gb):
    ot = get_method("ot")
    with pytest.raises(InputError, match=r"about (\d+)x(\d+) px would fit") as info:
        cost.check_run_cost(ot, (30000, 60000), warn=False)
    w, h = map(int, re.search(r"about (\d+)x(\d+) px", str(info.value)).groups())
    assert abs(w / h - 2) < 0.05 and w % 16 == 0 and h % 16 == 0
    assert cost.check_run_cost(ot, (h, w), warn=False).memory_mb <= 8000.0


@pytest.mark.parametrize("run", [
    lambda ottex, s: ottex.synthesize(s, 100000),
    lambda ottex, s: ottex.synthesize(s, (20000, 40000), method="w2"),
    lambda ottex, s: ottex.transfer(s, s, 100000),
    lambda ottex, s: ottex.stylize(s, s, size=50000),
    lambda ottex, s: ottex.strotss(s, s, 50000),
    lambda ottex, s: ottex.get_method("ot").synthesize(s, 100000),
    lambda ottex, s: ottex.make_job("synthesis", "ot", style=s, size=100000),
    lambda ottex, s: ottex.make_job("transfer", "ot", style=s, content=s, size=100000),
])
def test_every_entry_point_refuses_what_cannot_fit(eight_gb, style, run):
    import ottex

    with pytest.raises(InputError, match="more than the 8 GB available here") as info:
        run(ottex, style)
    assert info.value.option == "size"


def test_the_web_form_refuses_what_cannot_fit(eight_gb, style, tmp_path):
    from ottex.app.web.forms import parse_settings
    from ottex.app.web.uploads import UploadStore

    uploads = UploadStore(tmp_path)
    upload = uploads.add_bytes(style.read_bytes(), "graffiti.png")
    with pytest.raises(InputError, match="more than the 8 GB available here"):
        parse_settings({"task": "synthesis", "method": "ot", "style": [upload.id], "width": "30000",
                        "height": "30000"}, uploads, max_output_pixels=10**10)


def test_a_large_run_is_announced_with_its_estimate(eight_gb):
    with pytest.warns(UserWarning, match=r"a 4096x4096 output \(ot\) needs about 6.0\d GB of memory \(8 GB "
                                         r"available\) and takes about 3 min"):
        est = cost.check_run_cost(get_method("ot"), (4096, 4096))
    assert est.memory_mb == pytest.approx(6035.0, rel=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cost.check_run_cost(get_method("ot"), (512, 512))  # a small run: no word


def test_a_long_run_is_announced_even_when_it_fits(monkeypatch):
    monkeypatch.setattr(cost, "available_memory", lambda device=None: 1e6)
    with pytest.warns(UserWarning, match="takes about 18 min"):
        cost.check_run_cost(get_method("ot"), (8192, 8192))


def test_the_estimate_interpolates_the_measured_points():
    c = cost.RunCost(((1.0, 1000.0, 10.0), (4.0, 4000.0, None), (16.0, 10000.0, 100.0)))
    assert c.memory_mb(0.1) == 1000.0 and c.memory_mb(2.5) == 2500.0 and c.memory_mb(28.0) == 16000.0
    assert c.seconds(8.5) == pytest.approx(55.0) and cost.RunCost(((2.0, 500.0, 10.0),)).seconds(4.0) == 20.0


def test_the_bar_weighs_steps_by_their_pixels():
    """Ten steps at each of 64, 128 and 256 px: after the first ten the bar is 1/21 of the way, not 1/3, so the
    time left it shows is the time the rest takes."""
    import io

    bar = TqdmProgress("t", file=io.StringIO())
    report = Reporter("m", bar, [(64, 64), (128, 128), (256, 256)], [10, 10, 10], unit="level")
    report.begin_scale(0)
    for _ in range(10):
        report.step()
    assert bar.bar.n / bar.bar.total == pytest.approx(1 / 21)
    assert "10/30 levels" in bar.status
    report.finish()


def test_the_estimate_reads_the_options(monkeypatch, style, tmp_path, capsys):
    """``quality="best"`` adds the refinement's memory and time; the refusal reads the run's options on every path
    (the command line's request and the Python method call)."""
    ot = get_method("ot")
    default, best = (cost.estimate_run(ot, (512, 512), options=o) for o in (None, {"quality": "best"}))
    assert best.memory_mb > default.memory_mb and best.seconds > 2 * default.seconds
    big = cost.estimate_run(ot, (4096, 4096), options={"quality": "best"})
    assert big.memory_mb >= cost.estimate_run(ot, (4096, 4096)).memory_mb and big.seconds > best.seconds
    assert cost.estimate_run(ot, (512, 512), task="transfer").memory_mb == default.memory_mb
    high = cost.estimate_run(ot, (512, 512), options={"quality": "high"})
    assert default.memory_mb < high.memory_mb and default.seconds < high.seconds < best.seconds
    # above 1024x1024 px the finest resolution is made without the inversion: the coarser ones' cost on top
    big_high = cost.estimate_run(ot, (4096, 4096), options={"quality": "high"})
    assert big_high.memory_mb >= cost.estimate_run(ot, (4096, 4096)).memory_mb and big_high.seconds > high.seconds
    # a memory that holds the default 512 px run and not the best one: only best is refused
    monkeypatch.setattr(cost, "available_memory", lambda device=None: (default.memory_mb + best.memory_mb) / 2)
    assert cost.check_run_cost(ot, (512, 512), warn=False) is not None
    with pytest.raises(InputError, match="with method ot, more than"):
        ot.synthesize(style, 512, {"quality": "best"})
    assert main(["synth", str(style), "--size", "512", "--quality", "best", "--outdir", str(tmp_path)]) == 1
    assert "needs about" in capsys.readouterr().err
