"""Batches that can be resumed: job keys, skipping done jobs, retries, a report of failures, one progress bar.

:func:`run_batch` takes :class:`~ottex.exec.local.Job` s and an executor
(:class:`BatchLocal` in this process, or :class:`~ottex.exec.ray_executor.RayExecutor`
on a Ray cluster; both run the same jobs with :meth:`LocalExecutor.run_one <ottex.exec.local.LocalExecutor.run_one>`):

1. each job gets its key (:func:`~ottex.exec.keys.job_key`: the inputs' bytes and every setting); a job whose
   outputs all exist and carry its key is skipped, so running the same batch again after a crash, a Ctrl-C or a
   lost node does only the rest. An existing output without the job's key is an error of that job (unless the
   jobs allow overwriting), never silently replaced;
2. the other jobs run; outputs are written atomically with their key inside (temporary file + rename);
3. a failed job is tried again up to ``retries`` times (default 2), except for errors that would fail the same
   way again (a corrupt or missing input, a bad option: :class:`~ottex.core.errors.InputError` and
   :class:`~ottex.core.errors.ImageError`); then it is recorded (one JSON line per failed job in ``report``)
   and the others go on.

Example:
    >>> import torch
    >>> from ottex.exec.local import Job
    >>> job = Job("ot", "synthesis", style=torch.rand(1, 3, 32, 32), size=(32, 32), outputs=["t.png"])  # doctest: +SKIP
    >>> summary = run_batch([job], BatchLocal(device="cpu"), retries=2, report="failures.jsonl")  # doctest: +SKIP
    >>> summary.counts()  # doctest: +SKIP
    {'done': 1, 'skipped': 0, 'failed': 0}
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..core.errors import Cancelled, ImageError, InputError, OttexError
from ..methods.base import get_method
from .keys import job_key, outputs_done, read_output_key
from .local import Job, LocalExecutor, check_outputs_free

__all__ = [
    "JobFailure",
    "JobOutcome",
    "BatchSummary",
    "BatchExecutor",
    "BatchLocal",
    "BatchProgress",
    "run_batch",
    "read_manifest",
]

PathLike = str | os.PathLike


@dataclass
class JobFailure:
    """Why one try of a job failed (picklable: it travels back from Ray workers)."""

    type: str
    message: str
    retryable: bool = True
    option: str | None = None

    known: bool = False

    @classmethod
    def from_exception(cls, exc: BaseException) -> JobFailure:
        # a bad input or option fails the same way every time: no retry
        retry = not isinstance(exc, (InputError, ImageError))
        return cls(type(exc).__name__, (str(exc) or repr(exc))[:2000], retry, getattr(exc, "option", None),
                   isinstance(exc, OttexError))

    def as_error(self) -> OttexError:
        """As an :class:`OttexError` (for the command line's one-line messages)."""
        return OttexError(self.message if self.known else f"{self.type}: {self.message}", option=self.option)


@dataclass
class JobOutcome:
    """What became of a job in a batch: ``status`` is ``"done"``, ``"skipped"`` (already done) or ``"failed"``."""

    job: Job
    key: str | None = None
    status: str = "pending"
    outputs: list[Path] = field(default_factory=list)
    failure: JobFailure | None = None
    attempts: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("done", "skipped")

    def record(self) -> dict[str, Any]:
        """One line of the report."""
        f = self.failure
        return {"job": self.job.label(), "status": self.status, "key": self.key,
                "inputs": [str(p) for p in self.job.input_files()], "outputs": [str(p) for p in self.job.outputs],
                "method": self.job.method, "seed": self.job.seed, "attempts": self.attempts,
                "error": None if f is None else f.message, "error_type": None if f is None else f.type}


@dataclass
class BatchSummary:
    """The outcomes of a batch, in the order of its jobs, and its wall time."""

    outcomes: list[JobOutcome]
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        return {s: sum(o.status == s for o in self.outcomes) for s in ("done", "skipped", "failed")}

    @property
    def failed(self) -> list[JobOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


#: What an executor yields for a job: its written outputs, or why the try failed.
Result = list[Path] | JobFailure


class BatchExecutor(Protocol):
    """Runs jobs, yielding ``(index, outputs or JobFailure)`` as they finish, in any order; calls
    ``started(index)`` when a job starts. :class:`~ottex.core.errors.Cancelled` and ``KeyboardInterrupt``
    stop the batch."""

    def map_unordered(self, jobs: Sequence[Job], started: Callable[[int], None]) -> Iterator[tuple[int, Result]]:
        ...  # pragma: no cover


class BatchLocal:
    """The local executor as a batch executor: jobs one after the other in this process.

    Args:
        device, weights_dir: as for :class:`~ottex.exec.local.LocalExecutor`.
        callback_factory: per-job progress subscriber (or None).
    """

    def __init__(self, device: Any = "auto", weights_dir: PathLike | None = None,
                 callback_factory: Callable[[Job], Any] | None = None) -> None:
        self.executor = LocalExecutor(device, weights_dir, callback_factory=callback_factory)
        self.workers = 1

    def map_unordered(self, jobs: Sequence[Job], started: Callable[[int], None]) -> Iterator[tuple[int, Result]]:
        for i, job in enumerate(jobs):
            started(i)
            try:
                result: Result = self.executor.run_one(job)
            except Cancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of one job is recorded; the batch goes on
                result = JobFailure.from_exception(exc)
            yield i, result

    def close(self) -> None:
        pass


class BatchProgress:
    """One bar over the jobs of a batch: done / failed / running / skipped, jobs per minute and the ETA.

    Args:
        total: the number of jobs.
        disable: no bar (the counts are still kept).
    """

    def __init__(self, total: int, disable: bool = False, desc: str = "ottex batch") -> None:
        self.counts = {"done": 0, "failed": 0, "running": 0, "skipped": 0}
        self.start = time.perf_counter()
        self.bar = None
        if not disable:
            from tqdm.auto import tqdm  # noqa: PLC0415 - only when a bar is shown

            self.bar = tqdm(total=total, desc=desc, unit="job", file=sys.stderr, dynamic_ncols=True)

    def skipped(self, n: int = 1) -> None:
        self.counts["skipped"] += n
        if self.bar is not None:
            self.bar.total -= n  # skipped jobs take no time: throughput and ETA count the jobs that run
            self.bar.refresh()
        self._show()

    def started(self) -> None:
        self.counts["running"] += 1
        self._show()

    def finished(self, ok: bool, retried: bool = False) -> None:
        self.counts["running"] -= 1
        if retried:
            self._show()
            return
        self.counts["done" if ok else "failed"] += 1
        if self.bar is not None:
            self.bar.update(1)
        self._show()

    def per_minute(self) -> float:
        elapsed = time.perf_counter() - self.start
        finished = self.counts["done"]
        return 60.0 * finished / elapsed if elapsed > 0 else 0.0

    def _show(self) -> None:
        if self.bar is not None:
            c = self.counts
            self.bar.set_postfix_str(f"done={c['done']} failed={c['failed']} running={c['running']} "
                                     f"skipped={c['skipped']} {self.per_minute():.1f}/min")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _prepare(outcome: JobOutcome, force: bool) -> None:
    """Key the job; mark it skipped if its outputs are done; allow replacing outputs that are its own."""
    job = outcome.job
    outcome.key = job_key(job)
    if not force and outputs_done(job.outputs, outcome.key):
        outcome.status = "skipped"
        outcome.outputs = [Path(p) for p in job.outputs]
        return
    # outputs left by an unfinished earlier run of this job (some of several) are its own: replace them
    prefix = outcome.key
    own = all(not Path(p).exists() or (read_output_key(p) or "").startswith(prefix) for p in job.outputs)
    overwrite = job.overwrite or own
    check_outputs_free(job.outputs, job.input_files(), overwrite)
    # the options as the method's options object: workers import the method's module when they unpickle it
    options = get_method(job.method, job.task).make_options(job.options)
    outcome.job = dataclasses.replace(job, key=outcome.key, overwrite=overwrite, options=options)


def write_report(outcomes: Sequence[JobOutcome], path: PathLike) -> Path:
    """One JSON line per failed job (the file is replaced; empty when none failed)."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    with open(tmp, "w") as fh:
        for o in outcomes:
            if o.status == "failed":
                fh.write(json.dumps(o.record()) + "\n")
    os.replace(tmp, p)
    return p


def run_batch(
    jobs: Sequence[Job],
    executor: BatchExecutor,
    *,
    retries: int = 2,
    report: PathLike | None = None,
    force: bool = False,
    progress: BatchProgress | None = None,
    on_outcome: Callable[[JobOutcome], None] | None = None,
) -> BatchSummary:
    """Run the jobs that are not done yet; retry failures; write the report of those that still failed.

    Args:
        jobs: the jobs (with their output paths).
        executor: :class:`BatchLocal` or a :class:`~ottex.exec.ray_executor.RayExecutor`.
        retries: further tries of a job that failed (not for bad inputs or options).
        report: JSONL file of the failed jobs (written after the batch, also when none failed).
        force: run every job again, replacing its outputs.
        progress: the bar (default: none).
        on_outcome: called with each job's final outcome.

    Raises:
        Cancelled: a job was cancelled (the other jobs do not run; done outputs stay).
        KeyboardInterrupt: passed on (done outputs stay; a re-run finishes the rest).
    """
    if retries < 0:
        raise InputError(f"retries must be at least 0, got {retries}", option="retries")
    t0 = time.perf_counter()
    bar = progress if progress is not None else BatchProgress(len(jobs), disable=True)
    outcomes = [JobOutcome(dataclasses.replace(job, overwrite=job.overwrite or force)) for job in jobs]
    todo: list[int] = []
    seen: dict[Path, int] = {}
    for i, o in enumerate(outcomes):
        try:
            for p in o.job.outputs:  # two jobs writing one file would silently keep only the last one
                q = Path(p).resolve()
                if q in seen:
                    raise InputError(f"jobs {seen[q] + 1} and {i + 1} both write {p}", option="outputs")
                seen[q] = i
            _prepare(o, force)
        except OttexError as exc:
            o.status, o.failure = "failed", JobFailure.from_exception(exc)
        if o.status == "pending":
            todo.append(i)
        elif o.status == "skipped":
            bar.skipped()
        else:
            bar.counts["failed"] += 1
            if bar.bar is not None:
                bar.bar.update(1)
        if o.status != "pending" and on_outcome is not None:
            on_outcome(o)
    attempt = 0
    while todo and attempt <= retries:
        attempt += 1
        batch = [outcomes[i].job for i in todo]
        again: list[int] = []
        last = attempt > retries

        def started(k: int, todo: list[int] = todo) -> None:
            outcomes[todo[k]].seconds = time.perf_counter()
            bar.started()

        for k, result in executor.map_unordered(batch, started):
            o = outcomes[todo[k]]
            o.attempts = attempt
            o.seconds = time.perf_counter() - o.seconds
            if isinstance(result, JobFailure):
                o.failure = result
                if result.retryable and not last:
                    again.append(todo[k])
                    bar.finished(False, retried=True)
                    continue
                o.status = "failed"
            else:
                o.status, o.outputs, o.failure = "done", list(result), None
            bar.finished(o.status == "done")
            if on_outcome is not None:
                on_outcome(o)
        todo = sorted(again)
    summary = BatchSummary(outcomes, time.perf_counter() - t0)
    if report is not None:
        write_report(outcomes, report)
    return summary


def read_manifest(path: PathLike) -> list[dict[str, Any]]:
    """The rows of a manifest: a CSV file with a header line, or JSON Lines (``.jsonl``, one object a line).

    Fields: ``content`` (transfer), ``style`` (one path; in JSONL also a list), ``clip`` (a range of a clip,
    ``ottex.video.run.make_clip_job``: with ``frames``, ``temporal``, ``blend``, ``fps``), ``task`` (``style`` or
    ``synth``; default: ``style`` when there is a content), ``method``, ``size``, ``seed``, ``options`` (in JSONL
    an object; in CSV a JSON object or ``name=value;name=value``) and any other column as one option. Relative
    paths are taken from the manifest's folder. Empty CSV cells are absent values.

    Raises:
        InputError: the file cannot be read or a line is not an object.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InputError(f"cannot read manifest {p}: {exc}", option="manifest") from None
    rows: list[dict[str, Any]] = []
    if p.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"manifest {p} line {n}: not JSON ({exc.msg})", option="manifest") from None
            if not isinstance(row, dict):
                raise InputError(f"manifest {p} line {n}: expected an object", option="manifest")
            rows.append({"_line": n, **row})
    else:
        reader = csv.DictReader(text.splitlines())
        for n, row in enumerate(reader, 2):
            clean = {k.strip(): v.strip() for k, v in row.items() if k and v is not None and v.strip()}
            if clean:
                rows.append({"_line": n, **clean})
    for row in rows:
        for k in ("content", "style", "clip"):
            v = row.get(k)
            if isinstance(v, str):
                row[k] = str(p.parent / v) if not Path(v).is_absolute() else v
            elif isinstance(v, list):
                row[k] = [str(p.parent / s) if not Path(s).is_absolute() else s for s in v]
    return rows
