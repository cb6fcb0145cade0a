"""Running the method jobs of ``synth`` and ``style`` through the local executor: progress bars, loss plots,
one line per written file or failure."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ...core.errors import InputError
from ...core.progress import LossHistory, TqdmProgress, combine_callbacks
from ...eval.report import plot_history
from ...exec.local import Job, JobResult, LocalExecutor, check_outputs_free
from ...methods.base import Method
from .common import report_results

__all__ = ["add_plot_option", "check_plot", "run_method_jobs"]


def add_plot_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plot", metavar="FILE", help="also write the loss over the steps as a PNG plot (methods with a "
                   "loss: all but ot; needs matplotlib: pip install \"ottex[plot]\")")


def check_plot(args: argparse.Namespace, method: Method) -> None:
    if args.plot and not method.reports_loss:
        raise InputError(f"--plot does not apply to --method {method.name} (it has no loss to plot)")


class _Subscribers:
    """The progress bar and, with --plot, the loss records of one job (closed by the executor)."""

    def __init__(self, desc: str, quiet: bool, plot: bool) -> None:
        self.bar = TqdmProgress(desc, disable=quiet)
        self.history = LossHistory() if plot else None
        self.callback = combine_callbacks(self.bar, self.history)
        self.wants_image = False

    def __call__(self, event: object) -> bool | None:
        return self.callback(event)  # type: ignore[misc]

    def close(self) -> None:
        self.bar.close()


def run_method_jobs(args: argparse.Namespace, method: Method, command: str, jobs: Sequence[Job]) -> int:
    """Run the jobs; print what was written; write the loss plot (one job only). Returns the exit status."""
    batch_runner = getattr(args, "batch_runner", None)
    if batch_runner is not None:  # ottex batch style/synth: resumable, retried, local or on Ray (cli/batch.py)
        return batch_runner(args, method, command, jobs)
    subscribers: dict[int, _Subscribers] = {}

    def factory(job: Job) -> _Subscribers:
        if args.plot:  # checked before any work: the plot is one more output
            check_outputs_free([Path(args.plot)], [*job.input_files(), *map(str, job.outputs)], args.force)
        subscribers[id(job)] = _Subscribers(f"ottex {command} ({method.name})", args.quiet, bool(args.plot))
        return subscribers[id(job)]

    def on_result(result: JobResult) -> None:
        if not result.ok:
            return
        if not args.quiet:
            for path in result.outputs:
                print(f"wrote {path}")
        history = subscribers[id(result.job)].history
        if history is not None and history.records:
            plot_history(history.records, args.plot, title=f"ottex --method {method.name}", overwrite=args.force)
            if not args.quiet:
                print(f"wrote {args.plot}")

    executor = LocalExecutor(args.device, args.weights_dir, callback_factory=factory, on_result=on_result)
    results = executor.run(jobs, raise_errors=len(jobs) == 1)
    return report_results(results, args)
