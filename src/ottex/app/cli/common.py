"""What the sub-commands share: runtime and size options, input expansion, output names, batch reports."""

from __future__ import annotations

import argparse
import glob
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ...core.checks import check_int
from ...core.device import parse_seed, resolve_device
from ...core.errors import InputError, MissingWeightsError, OttexError
from ...exec.local import JobResult
from ...image.io import IMAGE_SUFFIXES
from ...nn.weights import search_dirs

__all__ = [
    "add_runtime_options",
    "add_size_options",
    "parse_size",
    "check_runtime",
    "apply_threads",
    "output_paths",
    "make_outdir",
    "expand_inputs",
    "one_output",
    "format_error",
    "report_results",
    "run_batch",
    "name_value",
]

#: What the command line adds to a library error about a parameter (the library never names flags).
HINTS = {
    "overwrite": "use --force to overwrite",
}
#: The flags of the parameters of a run (the method options' flags are recorded as they are parsed).
RUNTIME_FLAGS = {"device": "--device", "weights_dir": "--weights-dir", "size": "--size", "seed": "--seed",
                 "batch": "--batch", "preserve_color": "--preserve-color", "method": "--method"}


def format_error(exc: OttexError, args: argparse.Namespace | None = None) -> str:
    """One line: the library's message with the flag of the parameter at fault, and a command-line hint.

    A message about a parameter that starts with its name (``style_scale takes a finite number, got nan``) gets
    the flag in its place (``--style-scale takes ...``); other messages about a parameter are prefixed with its
    flag. A missing weight file names ``--weights-dir``.
    """
    msg = str(exc)
    option = getattr(exc, "option", None)
    if isinstance(exc, MissingWeightsError):
        return _missing_weights(msg)
    flags = {**RUNTIME_FLAGS, **(getattr(args, "_ottex_flags", {}) if args is not None else {})}
    if option in flags and msg.startswith(f"{option} "):
        msg = flags[option] + msg[len(option):]
    elif option in flags and not msg.startswith(flags[option]):
        msg = f"{flags[option]}: {msg}"
    if option in HINTS:
        msg = f"{msg} ({HINTS[option]})"
    return msg


def seed_arg(text: str) -> int:
    """argparse type of ``--seed``: :func:`~ottex.core.device.parse_seed`, its message as the option's error."""
    try:
        return parse_seed(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _missing_weights(msg: str) -> str:
    """A missing weight file: the library's message with the flag for its ``weights_dir`` parameter (the library
    says itself when ``$OTTEX_OFFLINE`` kept the file from being downloaded)."""
    msg = msg.replace("point weights_dir or", "point --weights-dir or")
    if "--weights-dir" not in msg:
        msg += " (or pass --weights-dir DIR)"
    return msg


def add_runtime_options(p: argparse.ArgumentParser, output: bool = True, weights: bool = True) -> None:
    """Options every compute command takes: device, weights folder (unless ``weights`` is false: for commands that
    use no network), seed, output (``-o``, unless ``output`` is false: for commands that name their outputs
    otherwise), output folder, verbosity."""
    g = p.add_argument_group("runtime")
    g.add_argument("--device", default="auto", metavar="DEVICE",
                   help="auto (CUDA if available), cpu, cuda or cuda:N [auto]")
    if weights:
        g.add_argument(
            "--weights-dir",
            metavar="DIR",
            help="folder with one sub-folder per weight set, searched before $OTTEX_WEIGHTS and the cache",
        )
    g.add_argument("--threads", metavar="N", help="CPU threads of torch [one per core]; on a CPU that other work "
                   "keeps busy, 1 is several times faster")
    g.add_argument("--seed", type=seed_arg, default=0, metavar="N",
                   help="random seed, 0 to 2**63-1; same seed + settings + device = same image [0]")
    if output:
        g.add_argument("-o", "--output", metavar="FILE",
                       help="output image (default: named from inputs and settings)")
    g.add_argument("--outdir", metavar="DIR", default=".",
                   help="folder for automatically named outputs, created if needed [.]")
    g.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars or messages")


def add_size_options(p: argparse.ArgumentParser, size_help: str, aspect_of: str) -> None:
    """``--size`` and ``--width``/``--height`` (one of them alone keeps the aspect of ``aspect_of``)."""
    g = p.add_argument_group("size")
    g.add_argument("--size", metavar="PX", help=size_help)
    g.add_argument("--width", metavar="PX",
                   help=f"output width in px (alone: the height follows {aspect_of}'s aspect)")
    g.add_argument("--height", metavar="PX",
                   help=f"output height in px (alone: the width follows {aspect_of}'s aspect)")


def parse_size(args: argparse.Namespace) -> tuple[int | None, int | None] | int | None:
    """``--size N`` -> ``N``; ``--width W``/``--height H`` -> ``(H, W)``, None for a side not given; neither ->
    None (as text: :func:`~ottex.methods.request.make_job` reads and checks them)."""
    if args.size is not None and (args.width is not None or args.height is not None):
        raise InputError("give either --size or --width/--height, not both")
    if args.width is not None or args.height is not None:
        return args.height, args.width
    return args.size


def check_runtime(args: argparse.Namespace) -> None:
    """The runtime options that can be checked before any work: the device and ``--weights-dir``."""
    resolve_device(args.device)
    search_dirs(getattr(args, "weights_dir", None))


def apply_threads(args: argparse.Namespace) -> None:
    """``--threads N``: torch's CPU threads for this process (checked: an integer of at least 1)."""
    if getattr(args, "threads", None) is not None:
        torch.set_num_threads(check_int(args.threads, "--threads", low=1))


def output_paths(args: argparse.Namespace, stem: str, count: int, suffix: str = ".png") -> list[Path]:
    """Output file names: ``-o`` (indexed when several) or ``<outdir>/<stem>[_<i>].png``; ``--outdir`` is
    created (with its parents) when it does not exist."""
    if args.output:
        base = Path(args.output)
        if count == 1:
            return [base]
        return [base.with_name(f"{base.stem}_{i}{base.suffix}") for i in range(count)]
    out = make_outdir(args.outdir)
    if count == 1:
        return [out / f"{stem}{suffix}"]
    return [out / f"{stem}_{i}{suffix}" for i in range(count)]


def make_outdir(folder: str | Path) -> Path:
    """The ``--outdir`` folder, created with its parents if needed.

    Raises:
        InputError: it names a file, or it cannot be created.
    """
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise InputError(f"--outdir {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    return out


def expand_inputs(specs: Sequence[str], what: str) -> list[str]:
    """Image arguments -> files: a file as given, a folder's images (sorted), or a glob pattern's matches."""
    files: list[str] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found = sorted(str(f) for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise InputError(f"no {what} images ({', '.join(IMAGE_SUFFIXES)}) in folder {p}")
            files += found
        elif not p.exists() and glob.has_magic(spec):
            found = sorted(f for f in glob.glob(spec) if Path(f).suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise InputError(f"no {what} images match '{spec}'")
            files += found
        else:
            files.append(spec)
    return files


def one_output(args: argparse.Namespace, jobs: int) -> None:
    """``-o`` and ``--plot`` name one file: refuse them with several jobs."""
    if args.output and jobs > 1:
        raise InputError(f"-o names one output but there are {jobs} inputs; use --outdir for several")
    if getattr(args, "plot", None) and jobs > 1:
        raise InputError(f"--plot writes one plot but there are {jobs} inputs; run them one at a time")


def name_value(spec: str, option: str, form: str) -> tuple[str, str]:
    """``NAME=VALUE`` -> ``(NAME, VALUE)``."""
    name, sep, value = spec.partition("=")
    if not sep or not name or not value:
        raise InputError(f"{option} takes {form}, got '{spec}'")
    return name, value


def report_results(results: Sequence[JobResult], args: argparse.Namespace) -> int:
    """Print each written file and each failure on one line; returns the exit status (1 if any job failed)."""
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"ottex: error: {r.job.label()}: {format_error(r.error, args)}", file=sys.stderr)
    if failed:
        print(f"ottex: error: {len(failed)} of {len(results)} failed", file=sys.stderr)
    elif not args.quiet and len(results) > 1:
        print(f"done: {len(results)} outputs")
    return 1 if failed else 0


def run_batch(jobs: Sequence[tuple[str, Callable[[], None]]], args: argparse.Namespace) -> int:
    """Run ``(name, job)`` pairs that are not method runs (e.g. colour transfer) with the executor's rule: a
    failing job is reported on one line and the others still run; a single job's error propagates."""
    if len(jobs) == 1:
        jobs[0][1]()
        return 0
    failed = 0
    for name, job in jobs:
        try:
            job()
        except OttexError as exc:
            failed += 1
            print(f"ottex: error: {name}: {format_error(exc, args)}", file=sys.stderr)
    if failed:
        print(f"ottex: error: {failed} of {len(jobs)} failed", file=sys.stderr)
    elif not args.quiet:
        print(f"done: {len(jobs)} outputs")
    return 1 if failed else 0
