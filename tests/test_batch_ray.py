"""The Ray executor on a local Ray cluster started here (2 CPUs, tiny images): every job done once by
long-lived workers, a failing job retried and reported, a dead worker replaced, a corrupt input reported while
the others finish, and a re-run that skips everything. Skipped when Ray is not installed (``pip install
"ottex[ray]"``), except in CI, which installs it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ottex.app.cli import main
from ottex.core.errors import InputError
from ottex.exec.batch import run_batch
from ottex.exec.keys import read_output_key
from ottex.exec.local import Job
from ottex.methods.base import register_method, unregister_method

if os.environ.get("CI"):
    import ray  # CI installs the ray extra: a missing Ray is a broken set-up, not a skip
else:
    ray = pytest.importorskip("ray", reason='Ray is not installed: pip install "ottex[ray]" to run these tests')

from ottex.exec.ray_executor import RayExecutor  # noqa: E402 - after the check that Ray is there

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


@pytest.fixture(scope="module")
def cluster():
    env = {"PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)]), "OMP_NUM_THREADS": "1"}
    env.update({k: v for k, v in os.environ.items() if k.startswith("OTTEX_")})
    # one GPU declared (the workers see no CUDA device: they run on the CPU) to check how GPUs are shared out
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env})
    yield
    ray.shutdown()


@pytest.fixture
def flaky(cluster):
    import flaky_method

    register_method(flaky_method.METHOD, replace=True)
    yield flaky_method
    unregister_method("flaky")


def _jobs(inputs, out: Path, state: Path, fail=None):
    fail = fail or {}
    return [Job("flaky", "transfer", style=str(inputs[0]), content=str(p), outputs=[str(out / f"{p.stem}.png")],
                options={"fail": fail.get(p.stem, "never"), "state": str(state)}) for p in inputs]


@pytest.mark.slow
def test_every_job_done_once_by_long_lived_workers(tmp_path, flaky):
    inputs = flaky.make_inputs(tmp_path / "in", 6, corrupt=False)
    state, out = tmp_path / "state", tmp_path / "out"
    state.mkdir(), out.mkdir()
    ex = RayExecutor(gpus_per_job=0)
    try:
        assert ex.max_workers == 2 and ex.gpus_per_job == 0
        summary = run_batch(_jobs(inputs, out, state), ex)
        info = ex.info()
    finally:
        ex.close()
    assert summary.counts() == {"done": 6, "skipped": 0, "failed": 0}
    assert sorted(flaky.tries(state).values()) == [1] * 6  # each job ran exactly once
    assert all(read_output_key(o.outputs[0]) == o.key for o in summary.outcomes)
    # two worker processes, none of them the driver, took all the jobs between them
    pids = {int(x) for x in (state / "pids").read_text().split()}
    assert pids == {w["pid"] for w in info} and os.getpid() not in pids and len(pids) == 2
    assert sum(w["jobs"] for w in info) == 6
    assert ray.is_initialized()  # the executor used the cluster of this test and left it running


@pytest.mark.slow
def test_retry_dead_worker_corrupt_input_report_and_rerun(tmp_path, flaky, capsys):
    inputs = flaky.make_inputs(tmp_path / "frames", 4)  # f0..f3 and the corrupt zbad.png
    state, out = tmp_path / "state", tmp_path / "out"
    state.mkdir(), out.mkdir()
    fail = {"f1": "once", "f2": "always", "f3": "exit-once"}
    ex = RayExecutor(gpus_per_job=0)
    try:
        summary = run_batch(_jobs(inputs, out, state, fail), ex, retries=2, report=out / "report.jsonl")
        replaced = ex.replaced
    finally:
        ex.close()
    status = {Path(o.job.content).stem: (o.status, o.attempts) for o in summary.outcomes}
    assert status == {"f0": ("done", 1), "f1": ("done", 2), "f2": ("failed", 3), "f3": ("done", 2),
                      "zbad": ("failed", 1)}
    assert replaced == 1  # the worker that died (f3's first try) was replaced
    lines = [json.loads(x) for x in (out / "report.jsonl").read_text().splitlines()]
    assert [(Path(r["outputs"][0]).name, r["error_type"], r["attempts"]) for r in lines] == [
        ("f2.png", "RuntimeError", 3), ("zbad.png", "ImageError", 1)]
    assert sorted(p.name for p in out.glob("*.png")) == ["f0.png", "f1.png", "f3.png"]

    # the command line on the same cluster: one output per frame, the corrupt one reported, exit status 1
    cli_out = tmp_path / "cli"
    argv = ["batch", "style", str(tmp_path / "frames"), str(inputs[0]), "--method", "flaky", "--state",
            str(state), "--fail", "never", "--outdir", str(cli_out), "--executor", "ray", "--gpus-per-job", "0.5", "-q"]
    assert main(argv) == 1
    assert "1 failed of 5 jobs" in capsys.readouterr().err
    (record,) = [json.loads(x) for x in (cli_out / "ottex-batch-failures.jsonl").read_text().splitlines()]
    assert record["error_type"] == "ImageError" and "zbad.png" in record["job"]
    # the same command again: every done job is skipped (none runs again), the corrupt one is reported again
    before = flaky.tries(state)
    assert main(argv[:-1]) == 1
    assert "0 done, 4 skipped (done before), 1 failed of 5 jobs" in capsys.readouterr().err
    assert flaky.tries(state) == before


@pytest.mark.slow
def test_workers_share_the_gpus(tmp_path, flaky):
    inputs = flaky.make_inputs(tmp_path / "in", 4, corrupt=False)
    (tmp_path / "state").mkdir()
    assert RayExecutor().max_workers == 1  # the cluster has a GPU: one worker per GPU by default
    with pytest.warns(UserWarning, match="holds 1 worker"):
        assert RayExecutor(workers=3).max_workers == 1
    ex = RayExecutor(gpus_per_job=0.5)
    try:
        summary = run_batch(_jobs(inputs, tmp_path, tmp_path / "state"), ex)
        info = ex.info()
    finally:
        ex.close()
    assert summary.counts()["done"] == 4
    assert len(info) == 2 and [w["gpu_ids"] for w in info] == [["0"], ["0"]]  # two workers on GPU 0
    with pytest.raises(InputError, match="exceeds the cluster's GPUs"):
        RayExecutor(gpus_per_job=2)


@pytest.mark.needs_weights
@pytest.mark.slow
def test_ot_on_ray_workers(tmp_path, cluster, load_test_image):
    from ottex.image.io import save_image

    for i, name in enumerate(["content/bridge.jpg", "content/rocket.jpg"]):
        save_image(load_test_image(name, 48), tmp_path / f"c{i}.png")
    save_image(load_test_image("style/zebra.jpg", 48), tmp_path / "zebra.png")
    out = tmp_path / "out"
    argv = ["batch", "style", str(tmp_path / "c*.png"), str(tmp_path / "zebra.png"), "--passes", "1", "--weights",
            "cd16x", "--outdir", str(out), "--executor", "ray", "--gpus-per-job", "0", "--workers", "2", "-q"]
    assert main(argv) == 0
    made = sorted(out.glob("c*_zebra_style_*.png"))
    assert len(made) == 2 and all(read_output_key(p) for p in made)
