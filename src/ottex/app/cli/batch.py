"""``ottex batch``: many jobs (folders, glob patterns or a manifest), resumable, locally or on a Ray cluster.

``ottex batch style CONTENT STYLE...`` and ``ottex batch synth STYLE...`` take every argument of ``ottex style``
and ``ottex synth`` (the jobs and their output names are made by those commands) plus the batch options;
``ottex batch manifest FILE`` reads one job per CSV row or JSON line. The jobs run through
:func:`ottex.exec.batch.run_batch`: done jobs (outputs carrying the job's key) are skipped, failures are retried,
then written to a JSONL report; the exit status is 1 if any job failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ...core.checks import check_int
from ...core.errors import InputError
from ...core.progress import TqdmProgress
from ...exec.batch import BatchLocal, BatchProgress, JobOutcome, read_manifest, run_batch
from ...exec.ray_executor import KEPT_NETWORKS, RayExecutor
from ...methods.base import SYNTHESIS, TRANSFER
from ...methods.request import Job, make_job
from ...nn.networks import keep_networks
from ...video.run import make_clip_job
from . import style, synth
from .common import add_runtime_options, format_error

__all__ = ["add_parser", "add_executor_options", "make_executor", "run_jobs", "REPORT_NAME", "EXECUTOR_FLAGS"]

#: The report's file name in ``--outdir`` (unless ``--report`` names one).
REPORT_NAME = "ottex-batch-failures.jsonl"
#: The flags of the executor's parameters (for one-line errors).
EXECUTOR_FLAGS = {"executor": "--executor", "gpus_per_job": "--gpus-per-job", "cpus_per_job": "--cpus-per-job",
                  "workers": "--workers", "ray_address": "--ray-address"}
_FLAGS = {**EXECUTOR_FLAGS, "retries": "--retries"}
#: Examples of ``ottex batch style`` and ``ottex batch synth`` (their parsers are those of ``ottex style``/``synth``).
_EXAMPLES = {
    "style": "example: ottex batch style photos/ lava.jpg zebra.jpg --outdir out/ --size 512",
    "synth": "example: ottex batch synth 'textures/*.jpg' --size 256 --seed 3 --outdir lib/",
}
#: The fields of a manifest row that styles a range of a clip (``clip`` given): one ``ClipJob``, a folder of frames.
CLIP_FIELDS = ("clip", "frames", "temporal", "blend", "fps")
_ROW_FIELDS = {"_line", "task", "content", "style", "method", "size", "width", "height", "seed", "batch", "output",
               "preserve_color", "options", *CLIP_FIELDS}


def add_batch_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("batch")
    add_executor_options(g)
    g.add_argument("--retries", type=int, default=2, metavar="N", help="tries again of a failed job (not of a bad "
                   "input or option) [2]")
    g.add_argument("--report", metavar="FILE", help=f"JSONL report of the failed jobs [OUTDIR/{REPORT_NAME}]")
    g.add_argument("--job-progress", action="store_true", help="local executor: a progress bar per job too")


def add_executor_options(g: argparse._ActionsContainer) -> None:
    """The flags that choose and size the executor (``ottex batch``, ``ottex video --chunks``): --executor,
    --ray-address, --workers, --gpus-per-job, --cpus-per-job; read by :func:`make_executor`."""
    g.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: one job after the other in this process; ray: worker processes on a Ray cluster "
                   "(pip install \"ottex[ray]\") [local]")
    g.add_argument("--ray-address", metavar="ADDRESS", help="join a running Ray cluster: auto or HOST:PORT (implies "
                   "--executor ray) [start a local one]")
    g.add_argument("--workers", type=int, metavar="N", help="Ray worker processes [as many as the cluster's GPUs "
                   "(or CPUs) hold at the per-job amounts]")
    g.add_argument("--gpus-per-job", type=float, metavar="X", help="GPUs per Ray worker, fractions allowed (0.5: "
                   "two workers per GPU) [1 when the cluster has GPUs, else 0]")
    g.add_argument("--cpus-per-job", type=float, default=1, metavar="N", help="CPUs (torch threads) per Ray "
                   "worker [1]")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch",
        help="many jobs from folders, glob patterns or a manifest: resumable, retried, locally or on a Ray cluster",
        description="Run many synthesis or style-transfer jobs. Each output records its job's key (a hash of the "
        "inputs' bytes, the method, every option and the seed): running the same command again skips the jobs "
        "that are done, so a batch stopped by a crash, Ctrl-C or a lost node finishes only the rest. Failed jobs "
        "are tried again (--retries), then written to a JSONL report; the exit status is 1 if any job failed.",
        epilog="examples: ottex batch style frames/ van_gogh.jpg --outdir out/ --size 512;  "
        "ottex batch synth 'textures/*.jpg' --size 256 --executor ray --ray-address auto;  "
        "ottex batch manifest jobs.csv --outdir out/",
    )
    bsub = p.add_subparsers(dest="batch_command", metavar="KIND")
    bsub.required = True
    for module in (style, synth):
        module.add_parser(bsub)
        kind = module.__name__.rsplit(".", 1)[-1]
        child = bsub.choices[kind]
        child.epilog = _EXAMPLES[kind]
        add_batch_options(child)
        child.set_defaults(func=_command(child.get_default("func")), batch_runner=run_jobs)
    m = bsub.add_parser(
        "manifest",
        help="jobs from a CSV or JSONL file (content, style, method, size, seed, options)",
        description="One job per CSV row (header line first) or JSON line. Fields: content (style transfer), "
        "style, task (style or synth; default: style when there is a content), method [ot], size (transfer: "
        "long side; synthesis: square side), width and height (synthesis), seed [--seed], batch, "
        "preserve_color, output (a file name in --outdir, or an absolute path; default: named as ottex "
        "style/synth name it), options "
        "(JSONL: an object; CSV: a JSON object or name=value;name=value); any other column is one option of the "
        "method (e.g. content_strength). A row with a clip (a video file or a folder of frames) styles a range "
        "of it into a folder of frames, as ottex video does: clip, style, frames (START:STOP) [all], temporal, "
        "blend, fps, size, seed, options; output names the folder. Relative paths are read from the manifest's "
        "folder.",
        epilog="example CSV: content,style,method,size,seed,content_strength  /  "
        "photos/a.jpg,styles/lava.jpg,ot,512,0,0.4",
    )
    m.add_argument("manifest", metavar="FILE", help="the manifest (.csv, or .jsonl for JSON lines)")
    add_runtime_options(m, output=False)  # each row names its output (in --outdir)
    add_batch_options(m)
    m.set_defaults(func=_run_manifest, batch_runner=run_jobs)


def _command(inner: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        _prepare(args)
        return inner(args)

    return run


def _prepare(args: argparse.Namespace) -> None:
    args._ottex_flags = {**getattr(args, "_ottex_flags", {}), **_FLAGS}
    if getattr(args, "plot", None):
        raise InputError("--plot draws one run; it is not available in ottex batch")
    if getattr(args, "save_every", None) is not None or getattr(args, "save_scales", False):
        raise InputError("--save-every and --save-scales are not available in ottex batch")
    if args.ray_address:
        args.executor = "ray"
    if args.retries < 0:
        raise InputError(f"--retries must be at least 0, got {args.retries}")
    outdir = Path(args.outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot make the output folder {outdir}: {exc.strerror}") from None


def run_jobs(args: argparse.Namespace, command: str, jobs: Sequence[Job]) -> int:
    """Run the jobs of a batch (or collect them, for a manifest); print failures and a summary. Returns the
    exit status: 0 if every job is done (now or before), 1 if any failed."""
    executor = make_executor(args)
    progress = BatchProgress(len(jobs), disable=args.quiet)
    report = Path(args.report) if args.report else Path(args.outdir) / REPORT_NAME
    try:
        summary = run_batch(jobs, executor, retries=args.retries, report=report, force=args.force,
                            progress=progress)
    finally:
        progress.close()
        executor.close()
        if args.executor == "local":
            keep_networks(0)  # free them (main() may be called again in this process, e.g. by tests)
    for o in summary.failed:
        print(f"ottex: error: {o.job.label()}: {_message(o, args)}", file=sys.stderr)
    c = summary.counts()
    rate = 60.0 * c["done"] / summary.seconds if summary.seconds > 0 else 0.0
    line = (f"{c['done']} done, {c['skipped']} skipped (done before), {c['failed']} failed of {len(jobs)} jobs "
            f"in {summary.seconds:.1f} s ({rate:.1f} jobs/min)")
    if c["failed"]:
        print(f"ottex: error: {line}; report: {report}", file=sys.stderr)
    elif not args.quiet:
        print(line)
    return 1 if c["failed"] else 0


def _message(outcome: JobOutcome, args: argparse.Namespace) -> str:
    assert outcome.failure is not None
    tries = f" (after {outcome.attempts} tries)" if outcome.attempts > 1 else ""
    return format_error(outcome.failure.as_error(), args) + tries


def make_executor(args: argparse.Namespace) -> Any:
    """The batch executor the flags of :func:`add_executor_options` ask for: a :class:`BatchLocal` (keeping the
    networks it builds) or a :class:`RayExecutor`.

    Raises:
        InputError: a Ray flag with the local executor; Ray missing or the cluster out of reach.
    """
    if args.ray_address:
        args.executor = "ray"
    if args.executor == "local":
        for flag, value in (("--workers", args.workers), ("--gpus-per-job", args.gpus_per_job)):
            if value is not None:
                raise InputError(f"{flag} applies to --executor ray")
        factory = None
        if getattr(args, "job_progress", False) and not args.quiet:
            def factory(job: Job) -> TqdmProgress:
                return TqdmProgress(Path(str(job.outputs[0])).name if job.outputs else job.method, leave=False,
                                    position=1)
        keep_networks(KEPT_NETWORKS)  # one process for all the jobs: build each network once
        return BatchLocal(args.device, args.weights_dir, callback_factory=factory)
    return RayExecutor(args.ray_address, workers=args.workers, gpus_per_job=args.gpus_per_job,
                       cpus_per_job=args.cpus_per_job, device=args.device, weights_dir=args.weights_dir)


# ----------------------------------------------------------------------------------------------
# Manifests


def _row_options(row: dict[str, Any], where: str) -> dict[str, Any]:
    """A row's option values (text or JSON values): its ``options`` field (an object; in CSV a JSON object or
    ``name=value;name=value``) and every other column."""
    opts: dict[str, Any] = {}
    raw = row.get("options")
    if isinstance(raw, dict):
        opts.update(raw)
    elif isinstance(raw, str) and raw.strip():
        text = raw.strip()
        if text.startswith("{"):
            try:
                opts.update(json.loads(text))
            except json.JSONDecodeError as exc:
                raise InputError(f"{where}: options is not a JSON object ({exc.msg})") from None
        else:
            for part in text.split(";"):
                name, sep, value = part.partition("=")
                if not sep:
                    raise InputError(f"{where}: options takes name=value;name=value, got '{part}'")
                opts[name.strip()] = value.strip()
    elif raw is not None:
        raise InputError(f"{where}: options must be an object")
    opts.update({k: v for k, v in row.items() if k not in _ROW_FIELDS and v not in (None, "")})
    return opts


def _given(row: dict[str, Any], name: str) -> Any:
    value = row.get(name)
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def _row_output(row: dict[str, Any], outdir: str, where: str) -> None:
    """A row's ``output``: a file name in ``--outdir`` (as its path there), or an absolute path (kept).

    Raises:
        InputError: a relative path that leaves ``--outdir`` (``..``; on Windows also ``C:x`` or ``\\x``).
    """
    raw = row.get("output")
    if raw in (None, ""):
        return
    name = str(raw)
    if Path(name).is_absolute():
        return
    normal = os.path.normpath(name)
    if Path(name).drive or Path(name).root or normal in (".", "..") or normal.startswith(".." + os.sep):
        raise InputError(f"{where}: output {name} is not a file name in --outdir {outdir} (nor an absolute path)")
    row["output"] = str(Path(outdir) / normal)


def _row_jobs(row: dict[str, Any], args: argparse.Namespace, where: str) -> list[Job]:
    """The jobs of a manifest row: made and checked by :func:`make_job` (as those of ``ottex style``/``synth``),
    named as those commands name them unless the row names its output."""
    content, styles = _given(row, "content"), _given(row, "style")
    if _given(row, "clip") is not None:
        return [_clip_job(row, args, where)]
    task = str(row.get("task") or ("style" if content else "synth"))
    if task not in ("style", "synth"):
        raise InputError(f"{where}: task must be style or synth, got '{task}'")
    if not styles:
        raise InputError(f"{where}: no style")
    width, height, size = _given(row, "width"), _given(row, "height"), _given(row, "size")
    if size is not None and (width is not None or height is not None):
        raise InputError(f"{where}: give either size or width/height, not both")
    if width is not None or height is not None:
        size = (height, width)
    seed = _given(row, "seed")
    batch = _given(row, "batch") or 1
    output = _given(row, "output")
    common = {"options": _row_options(row, where), "size": size, "overwrite": args.force, "outdir": args.outdir}
    first = args.seed if seed is None else seed
    if task == "synth":
        job = make_job(SYNTHESIS, _given(row, "method") or "ot", style=styles, batch=batch, seed=first, **common)
        if output is not None:
            job.outputs = _indexed(Path(output), job.batch)
        return [job]
    variations = check_int(batch, "batch", low=1)  # a transfer: one run per seed, as ottex style --batch
    named = _indexed(Path(output), variations) if output is not None else None
    seed0 = check_int(first, "seed")
    return [make_job(TRANSFER, _given(row, "method") or "ot", style=styles, content=content, seed=seed0 + i,
                     preserve_color=_given(row, "preserve_color"), outputs=[named[i]] if named else (), **common)
            for i in range(variations)]


def _clip_job(row: dict[str, Any], args: argparse.Namespace, where: str) -> Job:
    """A row with a ``clip``: a range of the clip (``frames`` START:STOP, all by default) into a folder of frames,
    made and checked by :func:`~ottex.video.run.make_clip_job` (the request of ``ottex video``)."""
    for name in ("content", "batch", "width", "height"):
        if _given(row, name) is not None:
            raise InputError(f"{where}: {name} does not apply to a clip")
    styles = _given(row, "style")
    if isinstance(styles, list):
        if len(styles) != 1:
            raise InputError(f"{where}: a clip takes one style, got {len(styles)}")
        styles = styles[0]
    if not styles:
        raise InputError(f"{where}: no style")
    seed = _given(row, "seed")
    return make_clip_job(row["clip"], styles, _given(row, "method") or "ot", output=_given(row, "output"),
                         outdir=args.outdir, size=_given(row, "size"), options=_row_options(row, where),
                         seed=args.seed if seed is None else seed, preserve_color=_given(row, "preserve_color"),
                         overwrite=args.force, temporal=_given(row, "temporal") or "consistent",
                         blend=_given(row, "blend"), fps=_given(row, "fps"), frames=_given(row, "frames"))


def _indexed(base: Path, count: int) -> list[Path]:
    """One output file, or ``NAME_<i>.png`` for each of several."""
    if count == 1:
        return [base]
    return [base.with_name(f"{base.stem}_{i}{base.suffix}") for i in range(count)]


def _run_manifest(args: argparse.Namespace) -> int:
    _prepare(args)
    rows = read_manifest(args.manifest)
    if not rows:
        raise InputError(f"no jobs in manifest {args.manifest}")
    jobs: list[Job] = []
    for row in rows:
        where = f"manifest {args.manifest} line {row['_line']}"
        _row_output(row, args.outdir, where)
        try:
            jobs += _row_jobs(row, args, where)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    return run_jobs(args, "manifest", jobs)
