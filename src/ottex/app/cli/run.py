"""Running the method jobs of ``synth`` and ``style`` through the local executor: progress bars, loss plots,
one line per written file or failure."""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from ... import __version__
from ...core.errors import InputError
from ...core.progress import LossHistory, ProgressEvent, TqdmProgress, combine_callbacks
from ...eval.report import plot_history, require_matplotlib
from ...exec.local import JobResult, LocalExecutor, check_image_name, check_outputs_free
from ...image.io import holds_settings, save_image
from ...methods.base import Method, get_method
from ...methods.request import Job
from .common import check_runtime, report_results

__all__ = ["add_plot_option", "check_plot", "check_plot_name", "run_method_jobs", "warn_unrecorded"]

def warn_unrecorded(paths: Sequence[str | Path]) -> None:
    """Warn (one line for all) when outputs are in a format that cannot hold the settings record (BMP, TIFF, WebP,
    GIF)."""
    lost = [Path(p) for p in paths if not holds_settings(p)]
    if lost:
        more = f" and {len(lost) - 1} more" if len(lost) > 1 else ""
        warnings.warn(f"{lost[0]}{more}: {lost[0].suffix} files cannot hold the settings record (PNG and JPEG do); "
                      "ottex info will not tell how they were made", UserWarning, stacklevel=2)


def add_plot_option(p: argparse.ArgumentParser) -> None:
    """``--plot`` and the options that write intermediate images."""
    p.add_argument("--plot", metavar="FILE", help="also write the loss over the steps as a PNG plot (methods with a "
                   "loss: all but ot; needs matplotlib: pip install \"ottex[plot]\")")
    p.add_argument("--save-every", type=int, metavar="N", help="also write the image every N steps (optimiser "
                   "steps or loss evaluations; ot: level visits) next to the output, as NAME_stepK.png")
    p.add_argument("--save-scales", action="store_true", help="also write the result of every coarse-to-fine "
                   "scale next to the output, as NAME_scaleIofN_WxH.png")


class _Intermediates:
    """Writes a run's intermediate images next to its outputs: every ``every`` steps (``NAME_stepK.png``) and
    the result of each scale (``NAME_scaleIofN_WxH.png``); their names are checked at the first event, before
    any step, and a taken one stops the job."""

    wants_image = True

    def __init__(self, job: Job, every: int | None, scales: bool) -> None:
        self.job = job
        self.every = every
        self.scales = scales
        self.last: torch.Tensor | None = None
        self.sizes: dict[int, tuple[int, int]] = {}
        self.saved_done = -1
        self.written: list[Path] = []

    def _paths(self, suffix: str) -> list[Path]:
        return [Path(o).with_name(f"{Path(o).stem}_{suffix}{Path(o).suffix}") for o in self.job.outputs]

    def _write(self, image: torch.Tensor | None, suffix: str) -> None:
        if image is None:
            return
        for img, path in zip(image, self._paths(suffix)):
            self.written.append(save_image(img.unsqueeze(0), path, overwrite=True))

    def _scale_suffix(self, scale: int, scales: int) -> str:
        h, w = self.sizes[scale]
        return f"scale{scale + 1}of{scales}_{w}x{h}"

    def __call__(self, event: ProgressEvent) -> None:
        self.sizes.setdefault(event.scale, tuple(event.size))
        if self.saved_done < 0:  # the first event: every name is known, check them all before any work
            names = [] if not self.every else [p for k in range(self.every, event.total + 1, self.every)
                                               for p in self._paths(f"step{k}")]
            if self.scales:
                names += [p for i in range(event.scales) for p in self._paths(f"scale{i + 1}of{event.scales}")]
            check_outputs_free(names, self.job.input_files(), self.job.overwrite)
            self.saved_done = 0
        if event.kind == "scale" and event.scale > 0 and self.scales:
            self._write(self.last, self._scale_suffix(event.scale - 1, event.scales))
        if event.image is not None:
            self.last = event.image
        if (event.kind == "step" and self.every and event.done % self.every == 0 and event.done != self.saved_done
                and event.step <= event.steps):
            self.saved_done = event.done
            self._write(event.image, f"step{event.done}")
        if event.kind == "done" and self.scales:
            self._write(self.last, self._scale_suffix(event.scale, event.scales))


def check_plot_name(plot: str | Path) -> None:
    """``--plot FILE``: an image name, not a folder (whether it is free is checked with the outputs).

    Raises:
        InputError: a folder, or a suffix that is no image format.
    """
    try:
        check_image_name(plot)
    except InputError as exc:
        raise InputError(f"--plot: {exc}") from None


def check_plot(args: argparse.Namespace, method: Method) -> None:
    """``--plot``: the method must have a loss, the file an image name (not a folder), and matplotlib must be
    there (checked before any work; whether the file is free is checked with the outputs)."""
    if not args.plot:
        return
    if not method.reports_loss:
        raise InputError(f"--plot does not apply to --method {method.name} (it has no loss to plot)")
    check_plot_name(args.plot)
    try:
        require_matplotlib()
    except InputError:
        raise InputError('--plot needs matplotlib: pip install "ottex[plot]"') from None


class _Subscribers:
    """The progress bar and, with --plot, the loss records of one job (closed by the executor); with
    --save-every/--save-scales, the writer of its intermediate images."""

    def __init__(self, desc: str, quiet: bool, plot: bool, intermediates: _Intermediates | None = None) -> None:
        self.bar = TqdmProgress(desc, disable=quiet)
        self.history = LossHistory() if plot else None
        self.intermediates = intermediates
        self.callback = combine_callbacks(self.bar, self.history, intermediates)
        self.wants_image = intermediates is not None

    def __call__(self, event: object) -> bool | None:
        return self.callback(event)  # type: ignore[misc]

    def close(self) -> None:
        self.bar.close()


def run_method_jobs(args: argparse.Namespace, command: str, jobs: Sequence[Job]) -> int:
    """Run the jobs (made by :func:`~ottex.methods.request.make_job`, all of one method); print what was written;
    write the loss plot (one job only). Returns the exit status."""
    batch_runner = getattr(args, "batch_runner", None)
    if batch_runner is not None:  # ottex batch style/synth: resumable, retried, local or on Ray (cli/batch.py)
        check_runtime(args)
        return batch_runner(args, command, jobs)
    if args.plot:
        check_plot(args, get_method(jobs[0].method, jobs[0].task))
    if args.save_every is not None and args.save_every < 1:
        raise InputError(f"--save-every must be at least 1, got {args.save_every}")
    subscribers: dict[int, _Subscribers] = {}

    def factory(job: Job) -> _Subscribers:
        if args.plot:  # checked before any work: the plot is one more output
            check_outputs_free([Path(args.plot)], [*job.input_files(), *map(str, job.outputs)], args.force)
        save = _Intermediates(job, args.save_every, args.save_scales) if args.save_every or args.save_scales else None
        subscribers[id(job)] = _Subscribers(f"ottex {command} ({job.method})", args.quiet, bool(args.plot), save)
        return subscribers[id(job)]

    def on_result(result: JobResult) -> None:
        if not result.ok:
            return
        warn_unrecorded(result.outputs)
        if not args.quiet:
            for path in result.outputs:
                print(f"wrote {path}")
            saved = subscribers[id(result.job)].intermediates
            if saved is not None and saved.written:
                print(f"wrote {len(saved.written)} intermediate images: {saved.written[0].name} ... "
                      f"{saved.written[-1].name}")
        history = subscribers[id(result.job)].history
        if history is not None and history.records:
            plot_history(history.records, args.plot, title=f"ottex --method {result.job.method}", overwrite=args.force)
            if not args.quiet:
                print(f"wrote {args.plot}")

    executor = LocalExecutor(args.device, args.weights_dir, callback_factory=factory, on_result=on_result,
                             record_extra={"ottex": __version__, "command": command})  # checks both before any work
    results = executor.run(jobs, raise_errors=len(jobs) == 1)
    return report_results(results, args)
