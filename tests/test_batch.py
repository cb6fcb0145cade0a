"""Batches with the local executor: job keys, keyed outputs, skipping done jobs, retries, the failure report,
``ottex batch`` (folders, manifests) and the temporal stability measure."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from ottex.app.cli import main
from ottex.exec.batch import BatchLocal, run_batch
from ottex.exec.keys import job_key, output_key, read_output_key, save_keyed
from ottex.exec.local import Job
from ottex.image.io import load_image, save_image
from ottex.methods.base import register_method, unregister_method


@pytest.fixture
def flaky():
    import flaky_method

    register_method(flaky_method.METHOD, replace=True)
    yield flaky_method
    unregister_method("flaky")


def _jobs(inputs, style, out: Path, state: Path, fail=None):
    fail = fail or {}
    return [Job("flaky", "transfer", style=str(style), content=str(p), outputs=[str(out / f"{p.stem}.png")],
                options={"fail": fail.get(p.stem, "never"), "state": str(state)}) for p in inputs]


def test_job_key_follows_bytes_settings_and_seed(tmp_path, flaky):
    (a,) = flaky.make_inputs(tmp_path / "in", 1, corrupt=False)
    job = Job("flaky", "transfer", style=str(a), content=str(a), options={"level": 0.3})
    key = job_key(job)
    assert key == job_key(Job("flaky", "transfer", style=str(a), content=str(a), options={"level": 0.3}))
    assert key != job_key(Job("flaky", "transfer", style=str(a), content=str(a), options={"level": 0.4}))
    assert key != job_key(Job("flaky", "transfer", style=str(a), content=str(a), options={"level": 0.3}, seed=1))
    assert key != job_key(Job("ot", "transfer", style=str(a), content=str(a)))
    # same path, other bytes: another job (the digest cache keys on size and mtime too)
    save_image(torch.zeros(1, 3, 8, 8), a, overwrite=True)
    assert key != job_key(job)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp"])
def test_keyed_outputs_record_their_key(tmp_path, suffix):
    path = tmp_path / f"o{suffix}"
    save_keyed(torch.rand(1, 3, 16, 16), path, "k" * 64)
    assert read_output_key(path) == "k" * 64
    assert load_image(path).shape == (1, 3, 16, 16)
    save_image(torch.rand(1, 3, 16, 16), tmp_path / f"plain{suffix}")
    assert read_output_key(tmp_path / f"plain{suffix}") is None
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary files left


def test_retries_report_and_rerun_skips(tmp_path, flaky):
    inputs = flaky.make_inputs(tmp_path / "in", 4)
    state, out = tmp_path / "state", tmp_path / "out"
    state.mkdir(), out.mkdir()
    jobs = _jobs(inputs, inputs[0], out, state, {"f1": "once", "f2": "always"})
    report = out / "report.jsonl"
    summary = run_batch(jobs, BatchLocal("cpu"), retries=2, report=report)
    status = {Path(o.job.content).stem: (o.status, o.attempts) for o in summary.outcomes}
    assert status == {"f0": ("done", 1), "f1": ("done", 2), "f2": ("failed", 3), "f3": ("done", 1),
                      "zbad": ("failed", 1)}  # a corrupt input fails the same way each time: not retried
    assert sorted(flaky.tries(state).values()) == [1, 1, 2, 3]
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [(Path(r["outputs"][0]).name, r["error_type"], r["attempts"]) for r in lines] == [
        ("f2.png", "RuntimeError", 3), ("zbad.png", "ImageError", 1)]
    assert "injected failure (try 3)" in lines[0]["error"] and "not an image file" in lines[1]["error"]
    assert sorted(p.name for p in out.glob("*.png")) == ["f0.png", "f1.png", "f3.png"]
    for o in summary.outcomes:
        if o.status == "done":
            assert read_output_key(o.outputs[0]) == o.key

    # the same batch again: the done jobs are skipped without running, the failed ones run again
    before = flaky.tries(state)
    again = run_batch(_jobs(inputs, inputs[0], out, state, {"f1": "once", "f2": "always"}), BatchLocal("cpu"),
                      retries=0, report=report)
    assert again.counts() == {"done": 0, "skipped": 3, "failed": 2}
    after = flaky.tries(state)
    assert {k: after[k] - before.get(k, 0) for k in after} == {k: int(before[k] == 3) for k in before}
    assert len(report.read_text().splitlines()) == 2


def test_ctrl_c_stops_the_batch_and_a_rerun_finishes_it(tmp_path, flaky, capsys):
    inputs = flaky.make_inputs(tmp_path / "frames", 3, corrupt=False)
    state, out = tmp_path / "state", tmp_path / "out"
    state.mkdir()
    # the second frame's first try is interrupted: the first frame's output stays, nothing half-written is left
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(
        {"content": str(p), "style": str(inputs[0]), "method": "flaky",
         "options": {"state": str(state), "fail": "ctrl-c-once" if p.stem == "f1" else "never"}}) + "\n"
        for p in inputs))
    argv = ["batch", "manifest", str(tmp_path / "m.jsonl"), "--outdir", str(out), "-q"]
    assert main(argv) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "ottex: interrupted"
    assert [p.name.split("_")[0] for p in sorted(out.iterdir())] == ["f0"]  # no temporary files either
    assert main(argv) == 0
    assert [p.name.split("_")[0] for p in sorted(out.glob("*.png"))] == ["f0", "f1", "f2"]
    assert sorted(flaky.tries(state).values()) == [1, 1, 2]  # f0 was not run again


def test_foreign_output_is_not_replaced(tmp_path, flaky):
    (a,) = flaky.make_inputs(tmp_path / "in", 1, corrupt=False)
    out = tmp_path / "out"
    out.mkdir()
    save_image(torch.ones(1, 3, 8, 8), out / "f0.png")  # not made by this job (no key)
    jobs = _jobs([a], a, out, tmp_path)
    summary = run_batch(jobs, BatchLocal("cpu"))
    assert summary.counts()["failed"] == 1 and "output exists" in summary.failed[0].failure.message
    assert load_image(out / "f0.png").mean() == 1.0
    summary = run_batch(jobs, BatchLocal("cpu"), force=True)
    assert summary.counts()["done"] == 1 and read_output_key(out / "f0.png") == summary.outcomes[0].key


def test_partial_outputs_of_a_job_are_finished(tmp_path, flaky):
    """A job of two outputs stopped after writing the first: the re-run replaces it (it is the job's own)."""
    (style,) = flaky.make_inputs(tmp_path, 1, corrupt=False)
    outs = [tmp_path / "t_0.png", tmp_path / "t_1.png"]
    job = Job("flaky", "synthesis", style=str(style), size=(16, 16), batch=2, outputs=[str(p) for p in outs],
              options={"state": str(tmp_path), "level": 0.5})
    key = job_key(job)
    save_keyed(torch.zeros(1, 3, 16, 16), outs[0], output_key(key, 0, 2))
    assert run_batch([job], BatchLocal("cpu")).counts() == {"done": 1, "skipped": 0, "failed": 0}
    assert [read_output_key(p) for p in outs] == [f"{key}/1of2", f"{key}/2of2"]
    assert abs(load_image(outs[0]).mean().item() - 0.5) < 0.01
    assert run_batch([job], BatchLocal("cpu")).counts() == {"done": 0, "skipped": 1, "failed": 0}
    # a first output of another job (other settings) is not this job's to replace
    other = Job("flaky", "synthesis", style=str(style), size=(16, 16), batch=2, outputs=[str(p) for p in outs],
                options={"state": str(tmp_path), "level": 0.7})
    outs[1].unlink()
    (failed,) = run_batch([other], BatchLocal("cpu")).failed
    assert "output exists" in failed.failure.message and not outs[1].exists()


def test_cli_batch_folder_rerun_and_exit_status(tmp_path, flaky, capsys):
    inputs = flaky.make_inputs(tmp_path / "frames", 3)
    state = tmp_path / "state"
    state.mkdir()
    out = tmp_path / "new" / "out"  # made by the command
    argv = ["batch", "style", str(tmp_path / "frames"), str(inputs[0]), "--method", "flaky", "--state", str(state),
            "--outdir", str(out), "-q"]
    assert main(argv) == 1  # the corrupt frame failed
    err = capsys.readouterr().err
    assert "zbad.png" in err and "1 failed of 4 jobs" in err
    assert len(list(out.glob("f*_style_*.png"))) == 3
    (record,) = [json.loads(x) for x in (out / "ottex-batch-failures.jsonl").read_text().splitlines()]
    assert record["error_type"] == "ImageError" and record["job"].endswith(f"zbad.png + {inputs[0]}")
    (tmp_path / "frames" / "zbad.png").unlink()
    assert main(argv) == 0
    assert main(argv[:-1]) == 0
    assert "0 done, 3 skipped (done before), 0 failed of 3 jobs" in capsys.readouterr().out
    assert sorted(flaky.tries(state).values()) == [1, 1, 1]
    assert (out / "ottex-batch-failures.jsonl").read_text() == ""


def test_cli_manifest_csv_and_jsonl(tmp_path, flaky):
    flaky.make_inputs(tmp_path, 2, corrupt=False)
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "jobs.csv").write_text(
        "content,style,method,seed,level,options\n"
        f"f0.png,f1.png,flaky,3,0.2,state={state}\n"
        f"f1.png,f0.png,flaky,,0.9,\"{{\"\"state\"\": \"\"{state}\"\"}}\"\n")
    out = tmp_path / "out"
    assert main(["batch", "manifest", str(tmp_path / "jobs.csv"), "--outdir", str(out), "-q"]) == 0
    made = sorted(out.glob("*.png"))
    assert [p.name.split("_style_")[0] for p in made] == ["f0_f1", "f1_f0"]
    assert "_s3_" in made[0].name and "_s0_" in made[1].name  # the seeds, then the settings hash
    assert abs(load_image(made[0]).mean().item() - 0.23) < 0.01  # level 0.2 + 0.01 x seed 3
    (tmp_path / "jobs.jsonl").write_text(
        json.dumps({"content": "f0.png", "style": "f1.png", "method": "flaky", "seed": 3, "options":
                    {"level": 0.2, "state": str(state)}}) + "\n"
        + json.dumps({"content": "f0.png", "style": "f1.png", "method": "flaky", "options": {"nope": 1}}) + "\n")
    assert main(["batch", "manifest", str(tmp_path / "jobs.jsonl"), "--outdir", str(out), "-q"]) == 1  # nope
    (tmp_path / "jobs.jsonl").write_text((tmp_path / "jobs.jsonl").read_text().splitlines()[0] + "\n")
    assert main(["batch", "manifest", str(tmp_path / "jobs.jsonl"), "--outdir", str(out)]) == 0
    assert sorted(flaky.tries(state).values()) == [1, 1]  # the first row was done by the CSV run: skipped


def test_cli_batch_errors_before_any_work(tmp_path, flaky, monkeypatch, capsys):
    (a,) = flaky.make_inputs(tmp_path, 1, corrupt=False)
    base = ["batch", "style", str(a), str(a), "--method", "flaky", "--outdir", str(tmp_path / "o")]
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    assert main([*base, "--executor", "ray"]) == 1
    assert 'ottex: error: --executor: the Ray executor needs Ray: pip install "ottex[ray]"' in capsys.readouterr().err
    assert main([*base, "--gpus-per-job", "0.5"]) == 1
    assert "--gpus-per-job applies to --executor ray" in capsys.readouterr().err
    (tmp_path / "m.csv").write_text("content,style,method,output\nf0.png,f0.png,flaky,x.png\n"
                                    "f0.png,f0.png,flaky,x.png\n")
    assert main(["batch", "manifest", str(tmp_path / "m.csv"), "--outdir", str(tmp_path / "o"), "-q"]) == 1
    assert "jobs 1 and 2 both write" in capsys.readouterr().err
    assert read_output_key(tmp_path / "o" / "x.png")  # the first row ran; its output in --outdir


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ottex: error: "), err
    return err[0]


def test_cli_manifest_errors_name_the_row_on_one_line(tmp_path, flaky, capsys):
    flaky.make_inputs(tmp_path, 1, corrupt=False)
    out = tmp_path / "out"
    bad = tmp_path / "badsize.csv"
    bad.write_text("content,style,method,size\nf0.png,f0.png,flaky,32\nf0.png,f0.png,flaky,abc\n")
    assert main(["batch", "manifest", str(bad), "--outdir", str(out), "-q"]) == 1
    assert _one_error(capsys) == f"ottex: error: manifest {bad} line 3: size takes an integer, got 'abc'"
    bad.write_text("content,style,method,preserve_color\nf0.png,f0.png,flaky,bogus\n")
    assert main(["batch", "manifest", str(bad), "--outdir", str(out), "-q"]) == 1
    assert _one_error(capsys) == (f"ottex: error: manifest {bad} line 2: preserve_color takes one of full, luminance, "
                                  "got 'bogus'")
    lines = tmp_path / "bad.jsonl"
    lines.write_text('{"content": "f0.png", "style": "f0.png", "method": "flaky"}\n{nope\n')
    assert main(["batch", "manifest", str(lines), "--outdir", str(out), "-q"]) == 1
    assert _one_error(capsys).startswith(f"ottex: error: manifest {lines} line 2: not JSON")  # no "FILE:"
    assert not list(out.glob("*.png"))


@pytest.mark.parametrize("output", ["../escape.png", "sub/../../escape.png", "..", "."])
def test_cli_manifest_output_stays_in_outdir(tmp_path, flaky, capsys, output):
    flaky.make_inputs(tmp_path, 1, corrupt=False)
    state = tmp_path / "state"
    state.mkdir()
    out = tmp_path / "out"
    name = output.format(abs=tmp_path / "abs.png")
    (tmp_path / "m.csv").write_text(f"content,style,method,state,output\nf0.png,f0.png,flaky,{state},ok.png\n"
                                    f"f0.png,f0.png,flaky,{state},{name}\n")
    assert main(["batch", "manifest", str(tmp_path / "m.csv"), "--outdir", str(out), "-q"]) == 1
    err = _one_error(capsys)
    assert f"manifest {tmp_path / 'm.csv'} line 3: output {name} " in err, err
    assert not (tmp_path / "escape.png").exists() and not (tmp_path / "abs.png").exists()
    assert flaky.tries(state) == {} and not list(out.glob("*.png"))  # refused before any job ran


def test_cli_manifest_takes_an_absolute_output(tmp_path, flaky, capsys):
    """An absolute ``output`` is the user's explicit choice (and was taken before the --outdir check): kept."""
    flaky.make_inputs(tmp_path, 1, corrupt=False)
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "m.csv").write_text(f"content,style,method,state,output\nf0.png,f0.png,flaky,{state},"
                                    f"{tmp_path / 'abs.png'}\n")
    assert main(["batch", "manifest", str(tmp_path / "m.csv"), "--outdir", str(tmp_path / "out"), "-q"]) == 0
    assert (tmp_path / "abs.png").exists()


def test_cli_manifest_takes_no_output_flag(tmp_path, flaky, capsys):
    flaky.make_inputs(tmp_path, 1, corrupt=False)
    (tmp_path / "m.csv").write_text("content,style,method\nf0.png,f0.png,flaky\n")
    with pytest.raises(SystemExit) as exc:
        main(["batch", "manifest", str(tmp_path / "m.csv"), "--outdir", str(tmp_path / "o"), "-o", "single.png"])
    assert exc.value.code == 2
    assert "ottex batch manifest: unrecognized arguments: -o single.png" in _one_error(capsys)
    assert not (tmp_path / "o").exists() and not (tmp_path / "single.png").exists()


@pytest.mark.needs_weights
def test_cli_batch_ot_frames_and_temporal_stability(tmp_path, load_test_image, capsys):
    from ottex.eval.temporal import temporal_stability

    photo = load_test_image("content/golden_gate.jpg", (48, 80))
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):  # a camera pan, 2 px a frame
        save_image(photo[..., :, 2 * i:2 * i + 48], frames / f"frame_{i:04d}.png")
    style = load_test_image("style/zebra.jpg", 48)
    save_image(style, tmp_path / "zebra.png")
    out = tmp_path / "out"
    argv = ["batch", "style", str(frames), str(tmp_path / "zebra.png"), "--passes", "1", "--weights", "cd16x",
            "--outdir", str(out), "--device", "cpu", "-q"]
    assert main(argv) == 0
    made = sorted(out.glob("frame_*.png"))
    assert len(made) == 3 and all(read_output_key(p) for p in made)
    s = temporal_stability(sorted(frames.glob("*.png")), made)
    assert 0 < s["input_change"] and 0 < s["output_change"]
    assert main(argv[:-1]) == 0 and "3 skipped" in capsys.readouterr().out


def test_cli_manifest_yes_no_options_take_the_same_words_as_the_web_form(tmp_path, flaky, capsys):
    """A yes/no option in a manifest row: true/false, yes/no, on/off or 1/0; anything else was silently 'no'."""
    from ottex.methods.options import parse_bool

    assert [parse_bool(w) for w in ("TRUE", "on", "1", "No", "off", "0")] == [True, True, True, False, False, False]
    with pytest.raises(ValueError, match="true or false"):
        parse_bool("maybe")
    flaky.make_inputs(tmp_path, 1, corrupt=False)
    (tmp_path / "m.csv").write_text("style,task,method,pca\nf0.png,synth,ot,maybe\n")
    assert main(["batch", "manifest", str(tmp_path / "m.csv"), "--outdir", str(tmp_path / "o"), "-q"]) == 1
    err = _one_error(capsys)
    assert f"manifest {tmp_path / 'm.csv'} line 2: pca takes true or false" in err, err
