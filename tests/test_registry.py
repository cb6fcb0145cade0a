"""The Method contract and its registry: a method registered outside ottex shows up in the CLI (choices, option
groups, help, applicability checks), the benchmark and the executor; options are made and checked from the
registry."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import ottex
from ottex.app.cli import build_parser, main
from ottex.core.errors import InputError
from ottex.exec.local import Job, LocalExecutor
from ottex.image.io import save_image
from ottex.methods import SYNTHESIS, TRANSFER, get_method, list_methods, register_method


@pytest.fixture()
def style_file(tmp_path):
    p = tmp_path / "s.png"
    save_image(torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(0)), p)
    return p


def _subparser(parser, name):
    return parser._subparsers._group_actions[0].choices[name]


def test_builtin_methods_and_tasks():
    assert [m.name for m in list_methods(SYNTHESIS)] == ["ot", "w2", "gatys", "swd", "po"]
    assert [m.name for m in list_methods(TRANSFER)] == ["ot", "w2", "gatys", "swd", "strotss"]
    ot = get_method("ot")
    assert ot.tasks == (SYNTHESIS, TRANSFER) and isinstance(ot.make_options(), ottex.OTOptions)
    assert get_method("w2").reports_loss and not ot.reports_loss
    with pytest.raises(InputError, match="does not do texture synthesis"):
        get_method("strotss", SYNTHESIS)
    with pytest.raises(InputError, match="unknown method 'nope' \\(choose from ot, w2"):
        get_method("nope")


def test_make_options_checks_names_and_values_and_former_names_are_gone():
    ot = get_method("ot")
    assert ot.make_options({"passes": 2}).passes == (2,)
    with pytest.raises(InputError, match="method 'ot' has no option 'steps'"):
        ot.make_options(steps=3)
    with pytest.raises(InputError, match="levels must be among 1-5"):
        ot.make_options(levels=(1, 9))
    with pytest.raises(InputError, match="method 'ot' has no option 'iterations'"):  # the 0.1 name, removed
        ot.make_options(iterations=2)
    with pytest.raises(InputError, match="method 'gatys' has no option 'network'"):
        get_method("gatys").make_options(network="cd16x")
    base = ot.make_options(passes=1)
    assert ot.make_options(base, mode="sym") == base.replace(mode="sym")
    specs = {s.name: s for s in ot.option_specs(SYNTHESIS)}
    assert "tile" in specs and "content_strength" not in specs and specs["mode"].choices == ("sort", "chol", "pca",
                                                                                              "sym")


def test_registered_method_runs_through_the_contract(grey, style_file):
    out = grey.synthesize(style_file, (16, 24), {"level": 0.25}, batch=2)
    assert out.shape == (2, 3, 16, 24) and torch.all(out == 0.25)
    with pytest.raises(InputError, match="level must be in"):
        grey.synthesize(style_file, (16, 24), {"level": 2.0})
    with pytest.raises(InputError, match="batch must be at least 1"):
        grey.synthesize(style_file, (16, 24), batch=0)
    c = torch.rand(1, 3, 20, 30)
    out = grey.transfer(c, style_file, options={"level": 1.0}, preserve_color=True)  # the generic post-step
    assert out.shape == c.shape


def test_registered_method_shows_up_in_the_cli(grey, style_file, tmp_path, capsys):
    parser = build_parser()
    synth = _subparser(parser, "synth")
    method = next(a for a in synth._actions if a.dest == "method")
    assert "grey" in method.choices
    text = synth.format_help()
    assert "options of grey" in text and "--level" in text and "grey level of the texture [0.5]" in text
    assert "--boost" not in _subparser(parser, "style").format_help()  # a synthesis-only option
    out = tmp_path / "g.png"
    assert main(["synth", str(style_file), "--method", "grey", "--level", "0.25", "--size", "16", "-q",
                 "-o", str(out)]) == 0
    assert np.allclose(np.asarray(Image.open(out)), 64, atol=1)
    assert main(["synth", str(style_file), "--method", "grey", "--size", "16", "-q", "--outdir", str(tmp_path)]) == 0
    assert (tmp_path / "s_synth_16x16_grey0p5_s0.png").is_file()  # named by the method's label
    assert main(["synth", str(style_file), "--method", "grey", "--passes", "2", "-q"]) == 1
    assert "--passes: method 'grey' has no option 'passes'" in capsys.readouterr().err
    assert main(["synth", str(style_file), "--level", "0.3", "-q"]) == 1
    assert "--level: method 'ot' has no option 'level'" in capsys.readouterr().err
    assert main(["synth", str(style_file), "--method", "grey", "--level", "3", "-q"]) == 1
    assert capsys.readouterr().err.strip() == "ottex: error: --level must be in [0, 1], got 3.0"
    assert main(["synth", str(style_file), "--method", "grey", "--level", "x", "-q"]) == 1
    assert "--level takes a number, got 'x'" in capsys.readouterr().err


def test_loss_plot_from_progress_events(grey, style_file, tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "loss.png"
    assert main(["synth", str(style_file), "--method", "grey", "--size", "16", "-q", "-o", str(tmp_path / "o.png"),
                 "--plot", str(plot)]) == 0
    assert Image.open(plot).format == "PNG"


@pytest.mark.needs_weights
def test_registered_method_in_the_benchmark(grey, style_file, tmp_path, weights_dir, capsys):
    from ottex.eval.bench import run_benchmark

    (rec,) = run_benchmark(style_file, ["grey"], [32], warmup=0, device="cpu", weights_dir=weights_dir,
                           variants=None, options={"level": 0.5})  # the child process imports the method's module
    assert rec.method == "grey" and rec.size == 32 and rec.style_distance > 0
    with pytest.raises(InputError, match="method 'grey' has no option 'pca'"):  # checked before any child starts
        run_benchmark(style_file, ["grey"], [32], warmup=0, variants={"x": {"pca": False}})
    assert main(["bench", "--style", str(style_file), "--methods", "grey,nope", "-q"]) == 1
    assert "unknown method 'nope'" in capsys.readouterr().err


def test_executor_runs_jobs_and_reports_failures(grey, style_file, tmp_path):
    done = []
    ex = LocalExecutor("cpu", on_result=done.append)
    jobs = [Job("grey", SYNTHESIS, style=style_file, outputs=[tmp_path / "a.png"], size=(16, 16)),
            Job("grey", SYNTHESIS, style=tmp_path / "missing.png", outputs=[tmp_path / "b.png"], size=(16, 16)),
            Job("grey", SYNTHESIS, style=style_file, outputs=[style_file], size=(16, 16), overwrite=True)]
    results = ex.run(jobs)
    assert [r.ok for r in results] == [True, False, False] and done == results
    assert "image not found" in str(results[1].error) and "is one of the inputs" in str(results[2].error)
    assert (tmp_path / "a.png").is_file() and not (tmp_path / "b.png").exists()
    with pytest.raises(InputError, match="output exists"):
        ex.run(jobs[:1], raise_errors=True)


def test_cancelling_raises_and_writes_nothing(grey, style_file, tmp_path):
    seen = []

    def stop_after_two(event):
        seen.append(event)
        return event.done < 2

    out = tmp_path / "never.png"
    ex = LocalExecutor("cpu", callback_factory=lambda job: stop_after_two)
    with pytest.raises(ottex.Cancelled, match="grey: cancelled by the progress callback"):
        ex.run([Job("grey", SYNTHESIS, style=style_file, outputs=[out], size=(16, 16)),
                Job("grey", SYNTHESIS, style=style_file, outputs=[tmp_path / "next.png"], size=(16, 16))])
    assert not out.exists() and not (tmp_path / "next.png").exists()  # the batch stops too
    assert [e.kind for e in seen] == ["scale", "step", "step"]


def test_a_taken_name_is_refused(grey):
    from ottex.methods.base import Method

    with pytest.raises(InputError, match="already registered"):
        register_method(Method("grey", "another", grey.options, synthesize=lambda *a, **k: None, module="elsewhere"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert register_method(grey) is grey  # the same method again (a re-import) is fine


def test_make_options_reads_text_and_refuses_values_of_the_wrong_kind():
    """``pca="no"`` was stored as the string and taken as true; ``rotations="2"`` failed with "'<' not supported";
    text is now read as every front end reads it; numpy's scalars are numbers like Python's."""
    from ottex.core.errors import InputError

    m = ottex.get_method("ot")
    opts = m.make_options(pca="no", rotations="2", content_strength="0.5")
    assert (opts.pca, opts.rotations, opts.content_strength) == (False, 2, 0.5)
    with pytest.raises(InputError, match=r"^pca takes true or false \(also yes/no, on/off, 1/0\), got 'maybe'$"):
        m.make_options(pca="maybe")
    with pytest.raises(InputError, match=r"^rotations takes an integer, got 2.5$"):
        m.make_options(rotations=2.5)
    with pytest.raises(InputError, match=r"^content_strength takes a number, got \[0.5\]$"):
        m.make_options(content_strength=[0.5])
    opts = m.make_options(pca=np.bool_(False), rotations=np.int64(3), content_strength=np.float32(0.5), scales=None)
    assert opts.pca == False and opts.rotations == 3  # noqa: E712 - numpy's bool compares equal


def test_options_of_the_other_task_are_refused_in_a_run():
    """A transfer-only option given to a synthesis (or the reverse) was ignored when the options came as a mapping;
    the command line refused it already."""
    from ottex.core.errors import InputError

    m = ottex.get_method("ot")
    style, content = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 48)
    with pytest.raises(InputError, match="option 'content_strength' of method 'ot' does not apply to synthesis"):
        m.synthesize(style, 32, {"passes": 1, "content_strength": 0.3})
    with pytest.raises(InputError, match="option 'tile' of method 'ot' does not apply to transfer"):
        m.transfer(content, style, 32, {"passes": 1, "tile": True})
    with pytest.raises(InputError, match="does not apply to synthesis"):
        ottex.synthesize(style, 32, passes=1, content_mask=style)
