"""Command-line interface: ``ottex <command> ...``.

Every user error is printed as one line ``ottex: error: ...`` with exit status 1
(2 for bad command-line syntax); there are no tracebacks for bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .errors import InputError, OttexError

__all__ = ["main", "build_parser"]

_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def command(fn: Callable[[argparse._SubParsersAction], None]) -> Callable[[argparse._SubParsersAction], None]:
    """Register a function that adds one sub-command to the parser."""
    _COMMANDS.append(fn)
    return fn


# ----------------------------------------------------------------------------------------------
# shared options


def add_runtime_options(p: argparse.ArgumentParser) -> None:
    """Options every compute command takes: device, weights, seed, output, verbosity."""
    g = p.add_argument_group("runtime")
    g.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N [auto]")
    g.add_argument("--weights", default="cd16x", help="encoder/decoder weight set [cd16x]")
    g.add_argument(
        "--weights-dir",
        metavar="DIR",
        help="folder with one sub-folder per weight set, searched before $OTTEX_WEIGHTS and the cache",
    )
    g.add_argument("--seed", type=int, default=0, help="random seed; same seed + settings + device = same image [0]")
    g.add_argument("-o", "--output", metavar="FILE", help="output image (default: named from inputs and settings)")
    g.add_argument("--outdir", metavar="DIR", default=".", help="folder for automatically named outputs [.]")
    g.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars or messages")


def parse_size(args: argparse.Namespace, default: int = 512) -> tuple[int, int]:
    """``--size N`` or ``--width W --height H`` -> ``(H, W)``."""
    if args.size is not None and (args.width is not None or args.height is not None):
        raise InputError("give either --size or --width/--height, not both")
    if args.width is not None or args.height is not None:
        w = args.width if args.width is not None else args.height
        h = args.height if args.height is not None else args.width
        return h, w
    n = args.size if args.size is not None else default
    return n, n


def add_size_options(p: argparse.ArgumentParser, default: int = 512) -> None:
    g = p.add_argument_group("size")
    g.add_argument("--size", type=int, help=f"square output side in px [{default}]")
    g.add_argument("--width", type=int, help="output width in px")
    g.add_argument("--height", type=int, help="output height in px")


def output_paths(args: argparse.Namespace, stem: str, count: int, suffix: str = ".png") -> list[Path]:
    """Output file names: ``-o`` (indexed when several) or ``<outdir>/<stem>[_<i>].png``."""
    if args.output:
        base = Path(args.output)
        if count == 1:
            return [base]
        return [base.with_name(f"{base.stem}_{i}{base.suffix}") for i in range(count)]
    out = Path(args.outdir)
    if not out.is_dir():
        raise InputError(f"output folder does not exist: {out}")
    if count == 1:
        return [out / f"{stem}{suffix}"]
    return [out / f"{stem}_{i}{suffix}" for i in range(count)]


def check_outputs_free(paths: Sequence[Path], inputs: Sequence[str | os.PathLike], force: bool) -> None:
    """Refuse to overwrite an input (ever) or an existing output (unless forced), before any work."""
    ins = {Path(p).resolve() for p in inputs}
    for p in paths:
        if p.resolve() in ins:
            raise InputError(f"output {p} is one of the inputs; choose another output name")
        if p.exists() and not force:
            raise InputError(f"output exists: {p} (use --force to overwrite)")


def fmt_float(x: float) -> str:
    return f"{x:g}".replace(".", "p")


# ----------------------------------------------------------------------------------------------
# synth


@command
def _synth_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="synthesise a texture from an example image (Optimal Textures)",
        description="Synthesise a texture that looks like STYLE, of any size, by sliced optimal transport of "
        "VGG-19 features (Risser 2020). Weights are downloaded on first use (or read from --weights-dir).",
        epilog="example: ottex synth graffiti.jpg --size 1024 --seed 3 -o wall.png",
    )
    p.add_argument("style", metavar="STYLE", help="example texture image")
    add_size_options(p)
    g = p.add_argument_group("Optimal Textures")
    g.add_argument("--passes", type=int, help="passes over the levels per resolution [schedule: 3 coarse, 1 fine]")
    g.add_argument("--iterations", type=int, help="random rotations per level [schedule: 16 deep ... 1 shallow]")
    g.add_argument("--levels", default="5,4,3,2,1", help="VGG levels to match, deepest first [5,4,3,2,1]")
    g.add_argument("--scales", type=int, help="coarse-to-fine resolutions, each half the next [2]")
    g.add_argument("--pca", action="store_true", help="match in the style's PCA subspace (90%% of variance)")
    g.add_argument("--mode", default="sort", choices=["sort", "chol", "pca", "sym"],
                   help="sort: exact sliced OT [default]; chol/pca/sym: one Gaussian map per level")
    g.add_argument("--style-scale", type=float, default=None,
                   help="size of style details: the example's short side becomes the output's short side x this "
                   "[auto: fit the short sides, never enlarging the example]")
    g.add_argument("--batch", type=int, default=1, help="number of textures to make (seeds share rotations) [1]")
    add_runtime_options(p)
    p.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    import torch

    from .io import load_image, save_image
    from .optimal_textures import OTSchedule, resolve_device, synthesize

    h, w = parse_size(args)
    try:
        levels = tuple(int(v) for v in args.levels.split(","))
    except ValueError:
        raise InputError(f"--levels takes comma-separated integers, got '{args.levels}'") from None
    if any(lv not in (1, 2, 3, 4, 5) for lv in levels):
        raise InputError(f"--levels must be between 1 and 5, got '{args.levels}'")
    stem = f"{Path(args.style).stem}_synth_{w}x{h}_{args.mode}{'_pca' if args.pca else ''}_s{args.seed}"
    paths = output_paths(args, stem, args.batch)
    check_outputs_free(paths, [args.style], args.force)
    device = resolve_device(args.device)
    style = load_image(args.style, device=device)
    sched = OTSchedule()
    if args.scales is not None:
        if args.scales < 1:
            raise InputError(f"--scales must be at least 1, got {args.scales}")
        sched = OTSchedule(**{**sched.__dict__, "scales": args.scales})
    out = synthesize(
        style, (h, w), passes=args.passes, iterations=args.iterations, levels=levels, pca=args.pca,
        mode=args.mode, style_scale=args.style_scale, seed=args.seed, batch=args.batch, weights=args.weights,
        weights_dir=args.weights_dir, device=device, schedule=sched, progress=not args.quiet,
    )
    for img, path in zip(out, paths):
        save_image(img.unsqueeze(0), path, overwrite=args.force)
        if not args.quiet:
            print(f"wrote {path}")
    del torch
    return 0


# ----------------------------------------------------------------------------------------------
# weights


@command
def _weights_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="list, locate or download pretrained weights",
                       description="Pretrained weight sets known to ottex, where they are found, and download.")
    p.add_argument("action", choices=["list", "where", "fetch"], help="list sets; where: show search folders; "
                   "fetch: download a set into the cache")
    p.add_argument("name", nargs="?", default="cd16x", help="weight set for fetch [cd16x]")
    p.add_argument("--weights-dir", metavar="DIR", help="folder searched first")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_run_weights)


def _run_weights(args: argparse.Namespace) -> int:
    from .errors import WeightsError
    from .weights import WEIGHT_SETS, get_weight_set, resolve_weight_file, search_dirs

    if args.action == "where":
        for d in search_dirs(args.weights_dir):
            print(d)
        return 0
    if args.action == "list":
        for ws in WEIGHT_SETS.values():
            found = []
            for f in ws.files:
                try:
                    resolve_weight_file(ws.name, f.role, f.level, args.weights_dir, download=False)
                    found.append(f)
                except WeightsError:
                    pass
            levels = ",".join(map(str, ws.levels)) or "-"
            print(f"{ws.name:18s} levels {levels:10s} files here {len(found)}/{len(ws.files)}  {ws.description}")
        return 0
    ws = get_weight_set(args.name)
    for f in ws.files:
        p = resolve_weight_file(ws.name, f.role, f.level, args.weights_dir, progress=not args.quiet)
        if not args.quiet:
            print(p)
    return 0


# ----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ottex",
        description="Texture synthesis and style transfer through optimal transport.",
        epilog="Run 'ottex COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"ottex {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in _COMMANDS:
        add(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
    print(f"ottex: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ottex`` command. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.showwarning = _one_line_warning
    try:
        return int(args.func(args) or 0)
    except OttexError as exc:
        print(f"ottex: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ottex: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("ottex: error: out of memory; try a smaller size, --batch 1 or --device cpu", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
