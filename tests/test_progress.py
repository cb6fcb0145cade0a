"""Progress as events: every method reports scale, step and totals (and its loss when it has one), optional
images, loss history for plots, cancellation."""

from __future__ import annotations

import pytest
import torch

import ottex
from ottex import OptSettings, OTSchedule, synthesize, synthesize_opt
from ottex.core.progress import LossHistory, ProgressEvent, Reporter, TqdmProgress, combine_callbacks
from ottex.methods.strotss import strotss

FAST = dict(samples=128, style_samples=256)


def _check_counts(events: list[ProgressEvent]) -> None:
    steps = [e for e in events if e.kind == "step"]
    assert events[0].kind == "scale" and events[-1].kind == "done"
    assert [e.done for e in steps] == sorted(e.done for e in steps)  # never goes back
    assert events[-1].done == events[-1].total == sum(
        e.steps for e in events if e.kind == "scale")
    for e in events:
        assert 0 <= e.scale < e.scales and e.size == tuple(e.size)


@pytest.mark.needs_weights
def test_ot_reports_each_level_visit_with_the_image(zebra):
    events: list[ProgressEvent] = []

    class Watch:
        wants_image = True

        def __call__(self, event):
            events.append(event)

    out = synthesize(zebra, (48, 48), schedule=OTSchedule(passes=(1,)), levels=(3, 2, 1), callback=Watch())
    _check_counts(events)
    steps = [e for e in events if e.kind == "step"]
    assert len(steps) == 3 and all(e.unit == "level" and e.loss is None for e in steps)
    assert [(e.scale, e.step, e.steps, e.done, e.total) for e in steps] == [(0, 1, 3, 1, 3), (0, 2, 3, 2, 3),
                                                                            (0, 3, 3, 3, 3)]
    assert steps[0].image.shape == (1, 3, 48, 48) and torch.allclose(events[-1].image, out)


@pytest.mark.needs_weights
def test_ot_two_scales(zebra):
    events = []
    synthesize(zebra, (64, 64), schedule=OTSchedule(passes=(1, 2), scales=2, min_side=16), levels=(2, 1),
               callback=events.append)
    scales = [e for e in events if e.kind == "scale"]
    assert [(e.scale, e.size, e.steps) for e in scales] == [(0, (32, 32), 2), (1, (64, 64), 4)]
    assert events[-1].total == 6 and events[0].image is None  # no image unless asked for


@pytest.mark.needs_weights
def test_optimisation_reports_the_loss_and_history_is_a_subscriber(lava_small):
    events, history = [], []
    settings = OptSettings(steps=(4, 2), coarse_side=16)
    synthesize_opt(lava_small, (32, 32), method="gatys", settings=settings, callback=events.append, history=history)
    _check_counts(events)
    steps = [e for e in events if e.kind == "step"]
    assert all(e.loss is not None and e.unit == "eval" for e in steps)
    assert history == _records(events)  # the classic history list is a LossHistory subscriber
    assert events[-1].total == 4 * 5 // 4 + 2 * 5 // 4  # the evaluations L-BFGS may make: 5/4 of its steps


def _records(events):
    h = LossHistory()
    for e in events:
        h(e)
    return h.records


@pytest.mark.needs_weights
def test_strotss_reports_loss_parts(load_test_image):
    content = load_test_image("content/bridge.jpg", (64, 96))
    style = load_test_image("style/lava-small.jpg", 64)
    events = []
    strotss(content, style, 64, steps=2, callback=events.append, **FAST)
    steps = [e for e in events if e.kind == "step"]
    assert len(steps) == 2 and set(steps[0].parts) == {"content", "remd", "moment", "palette"}


@pytest.mark.needs_weights
def test_cancel_stops_a_method(zebra):
    with pytest.raises(ottex.Cancelled):
        synthesize(zebra, (48, 48), passes=1, levels=(3, 2, 1), callback=lambda e: e.done < 1)

    def raise_it(event):
        if event.kind == "step":
            raise ottex.Cancelled("stop now")

    with pytest.raises(ottex.Cancelled, match="stop now"):
        synthesize_opt(zebra, (32, 32), settings=OptSettings(steps=(3,), coarse_side=64), callback=raise_it)


def test_reporter_caps_done_and_combines_subscribers(capsys):
    got_a, got_b = [], []
    rep = Reporter("m", combine_callbacks(got_a.append, None, got_b.append), [(8, 8)], [2], unit="eval")
    rep.begin_scale(0)
    for _ in range(3):  # a line search may evaluate more than planned
        rep.step(loss=1.0)
    assert [e.step for e in got_a[1:]] == [1, 2, 3] and [e.done for e in got_a[1:]] == [1, 2, 2]
    assert got_a == got_b and combine_callbacks(None) is None
    with TqdmProgress("demo bar") as bar:
        Reporter("m", bar, [(8, 8)], [2]).begin_scale(0)
    assert "demo bar" in capsys.readouterr().err


def test_bar_ends_with_the_notes_those_before_any_step_without_a_scale():
    import io

    text = io.StringIO()
    with TqdmProgress("demo", file=text) as bar:
        rep = Reporter("m", bar, [(8, 8), (16, 16)], [1, 1])
        rep.begin_scale(0)
        rep.note("layout on: about the whole run")
        rep.step()
        rep.begin_scale(1)
        rep.note("converged early")
        rep.step()
        rep.finish()
    last = text.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert "2/2 steps, layout on: about the whole run, scale 2/2: converged early" in last, last


@pytest.fixture(scope="module")
def lava_small(load_test_image):
    return load_test_image("style/lava-small.jpg", 48)


@pytest.mark.needs_weights
@pytest.mark.parametrize("method", ["gatys", "swd"])
def test_bar_ends_with_the_reason_when_lbfgs_stops_early(method):
    """A flat style is matched exactly at the first evaluation: L-BFGS stops at step 1 of 100. The events say so
    and the progress bar ends with the reason, not at a silent 1/100."""
    import io

    events: list[ProgressEvent] = []
    text = io.StringIO()
    bar = TqdmProgress(method, file=text)
    style = torch.full((1, 3, 32, 32), 0.5)
    ottex.get_method(method).synthesize(style, 32, {"steps": (100,)}, callback=combine_callbacks(events.append, bar))
    notes = [e for e in events if e.kind == "note"]
    assert [(e.note, e.step) for e in notes] == [("converged at step 1", 1)] and events[-1].kind == "done"
    last = text.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert "converged at step 1" in last, last
