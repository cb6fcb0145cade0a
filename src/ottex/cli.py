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


def expand_inputs(specs: Sequence[str], what: str) -> list[str]:
    """Image arguments -> files: a file as given, a folder's images (sorted), or a glob pattern's matches."""
    import glob

    from .io import IMAGE_SUFFIXES

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


def run_jobs(jobs: Sequence[tuple[str, Callable[[], None]]], quiet: bool) -> int:
    """Run one job per input (or pair); a failing job is reported on one line and the others still run.

    Returns the exit status: 0 if every job succeeded, else 1. A single job's error propagates as usual.
    """
    if len(jobs) == 1:
        jobs[0][1]()
        return 0
    failed = 0
    for name, job in jobs:
        try:
            job()
        except OttexError as exc:
            failed += 1
            print(f"ottex: error: {name}: {exc}", file=sys.stderr)
    if failed:
        print(f"ottex: error: {failed} of {len(jobs)} failed", file=sys.stderr)
    elif not quiet:
        print(f"done: {len(jobs)} outputs")
    return 1 if failed else 0


def _one_output(args: argparse.Namespace, jobs: int) -> None:
    if args.output and jobs > 1:
        raise InputError(f"-o names one output but there are {jobs} inputs; use --outdir for several")
    if getattr(args, "plot", None) and jobs > 1:
        raise InputError(f"--plot writes one plot but there are {jobs} inputs; run them one at a time")


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
    p.add_argument("style", metavar="STYLE", nargs="+",
                   help="example texture image(s): files, folders or quoted glob patterns; one texture per "
                   "example, or one mixed texture with --mix")
    add_size_options(p)
    add_method_option(p)
    add_ot_options(p)
    g = p.add_argument_group("tiling, mixing and masks (Optimal Textures)")
    g.add_argument("--tile", action="store_true", help="tileable output: wraps around seamlessly")
    g.add_argument("--mix", metavar="W[,W...]",
                   help="mix the STYLE examples into one texture: with two, the weight of the second (e.g. 0.3); "
                   "with more, one weight per example (normalised)")
    g.add_argument("--mix-variation", type=float, default=0.5,
                   help="0: a uniform blend of the examples; 1: a patchwork of them; between: regions lean "
                   "towards one example [0.5]")
    g.add_argument("--style-mask", metavar="FILE", help="label map of the example (colour-coded regions)")
    g.add_argument("--target-mask", metavar="FILE", help="label map of the output: each region takes the "
                   "example's texture of the same colour (needs --style-mask)")
    add_opt_options(p, content=False)
    p.add_argument("--batch", type=int, default=1, help="number of textures per example (seeds share rotations) [1]")
    add_runtime_options(p)
    p.set_defaults(func=_run_synth)


def add_ot_options(p: argparse.ArgumentParser) -> None:
    """Options of the Optimal Textures loop, shared by ``synth`` and ``style``."""
    g = p.add_argument_group("Optimal Textures")
    g.add_argument("--passes", type=int, help="passes over the levels per resolution [6 at the coarsest, 4 at each "
                   "finer]")
    g.add_argument("--iterations", type=int, help="sliced-OT rotations per level after the Gaussian map [per level: "
                   "0 at relu5_1 ... 4 at relu1_1]")
    g.add_argument("--levels", default="5,4,3,2,1", help="VGG levels to match, deepest first [5,4,3,2,1]")
    g.add_argument("--scales", type=int, help="coarse-to-fine resolutions, each half the next [auto: down to a "
                   "256 px long side]")
    g.add_argument("--pca", action=argparse.BooleanOptionalAction, default=True,
                   help="sliced OT in the style's principal subspace (90%% of its variance; faster, and closer to "
                   "the style here); --no-pca matches every feature dimension [on]")
    g.add_argument("--mode", default="sort", choices=["sort", "chol", "pca", "sym"],
                   help="sort: exact sliced OT [default]; chol/pca/sym: one Gaussian map per level")
    g.add_argument("--style-scale", type=float, default=None,
                   help="size of style details: the example's short side becomes the output's short side x this "
                   "[auto: fit the short sides, never enlarging the example]")


def add_method_option(p: argparse.ArgumentParser, transfer: bool = False) -> None:
    choices = ["ot", "w2", "gatys", "swd"] + (["strotss"] if transfer else [])
    p.add_argument("--method", default="ot", choices=choices,
                   help="ot: Optimal Textures (fast, no back-propagation) [default]; w2: Gaussian Wasserstein "
                   "(Marron); gatys: Gram matrices; swd: sliced Wasserstein loss"
                   + ("; strotss: relaxed EMD + self-similarity (Kolkin 2019)" if transfer else "")
                   + " (all but ot optimise pixels)")


def add_opt_options(p: argparse.ArgumentParser, content: bool) -> None:
    """Options of the optimisation methods (``--method w2|gatys|swd``)."""
    g = p.add_argument_group("optimisation methods (w2, gatys, swd" + (", strotss)" if content else ")"))
    g.add_argument("--iters", help="optimiser iterations per scale, coarse to fine, e.g. 100,40 [100,40]"
                   + ("; strotss: RMSprop steps per scale 64, 128, 256, 512 px ... [200]" if content else ""))
    g.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs", help="[lbfgs]")
    g.add_argument("--loss-net", default="cd16x", help="loss network weight set: cd16x, vgg19-caffe (relu1_1-"
                   "relu3_1 here), vgg19-torchvision [cd16x]")
    g.add_argument("--plot", metavar="FILE", help="also write the loss over iterations as a PNG plot "
                   "(needs matplotlib: pip install \"ottex[plot]\")")
    if content:
        g.add_argument("--content-weight", type=float, default=1.0, help="weight of the content loss [1.0]")


_OT_ONLY = {"passes": None, "iterations": None, "scales": None, "levels": "5,4,3,2,1", "pca": True, "mode": "sort",
            "tile": False, "mix": None, "target_mask": None}
_OPT_ONLY = {"iters": None, "optimizer": "lbfgs", "loss_net": "cd16x", "content_weight": 1.0, "plot": None}


def _check_method_options(args: argparse.Namespace) -> None:
    """Options of one family of methods given with a method of the other are an error, not silently ignored."""
    other = _OT_ONLY if args.method != "ot" else _OPT_ONLY
    for name, default in other.items():
        if getattr(args, name, default) != default:
            flag = "--" + name.replace("_", "-")
            raise InputError(f"{flag} does not apply to --method {args.method}")


def opt_kwargs(args: argparse.Namespace, content: bool) -> dict:
    """Keyword arguments of the optimisation methods from the CLI options."""
    from .optimization import DEFAULT_STYLE_LAYERS, OptSettings

    iters = _parse_iters(args, OptSettings().iterations)
    layers = DEFAULT_STYLE_LAYERS if args.loss_net != "vgg19-caffe" else ("relu1_1", "relu2_1", "relu3_1")
    settings = OptSettings(iterations=iters, optimizer=args.optimizer, network=args.loss_net, style_layers=layers,
                           content_layer="relu4_1" if args.loss_net != "vgg19-caffe" else "relu3_1",
                           content_weight=args.content_weight if content else 1.0)
    return dict(settings=settings, style_scale=args.style_scale, seed=args.seed, weights_dir=args.weights_dir,
                progress=not args.quiet, history=[] if args.plot else None)


def _parse_iters(args: argparse.Namespace, default: tuple[int, ...]) -> tuple[int, ...]:
    """``--iters 100,40`` -> ``(100, 40)`` (``default`` when not given)."""
    if not args.iters:
        return default
    try:
        return tuple(int(v) for v in args.iters.split(","))
    except ValueError:
        raise InputError(f"--iters takes comma-separated integers, got '{args.iters}'") from None


def strotss_kwargs(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`ottex.strotss` from the CLI options."""
    if args.optimizer != "lbfgs":
        raise InputError("--optimizer does not apply to --method strotss (RMSprop, as the paper)")
    if args.init != "content":
        raise InputError("--init does not apply to --method strotss (style mean colour + content's finest band)")
    iters = _parse_iters(args, (200,))
    if args.style_scale is not None:
        raise InputError("--style-scale does not apply to --method strotss")
    return dict(iterations=iters, content_weight=args.content_weight, network=args.loss_net, seed=args.seed,
                weights_dir=args.weights_dir, progress=not args.quiet, history=[] if args.plot else None)


def _write_plot(args: argparse.Namespace, kwargs: dict) -> None:
    """The loss plot of an optimisation run (its path was checked before the run)."""
    if kwargs.get("history"):
        from .report import plot_history

        plot_history(kwargs["history"], args.plot, title=f"ottex --method {args.method}", overwrite=args.force)
        if not args.quiet:
            print(f"wrote {args.plot}")


def ot_kwargs(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`ottex.synthesize` / :func:`ottex.transfer` from the shared options."""
    from .optimal_textures import OTSchedule

    try:
        levels = tuple(int(v) for v in args.levels.split(","))
    except ValueError:
        raise InputError(f"--levels takes comma-separated integers, got '{args.levels}'") from None
    if any(lv not in (1, 2, 3, 4, 5) for lv in levels):
        raise InputError(f"--levels must be between 1 and 5, got '{args.levels}'")
    sched = OTSchedule()
    if args.scales is not None:
        if args.scales < 1:
            raise InputError(f"--scales must be at least 1, got {args.scales}")
        sched = sched.replace(scales=args.scales)
    return dict(passes=args.passes, iterations=args.iterations, levels=levels, pca=args.pca, mode=args.mode,
                style_scale=args.style_scale, seed=args.seed, weights=args.weights, weights_dir=args.weights_dir,
                schedule=sched, progress=not args.quiet)


def _settings_tag(args: argparse.Namespace) -> str:
    if args.method == "strotss":
        return f"strotss_s{args.seed}"
    if args.method != "ot":
        return f"{args.method}_{args.optimizer}_s{args.seed}"
    return f"{args.mode}{'' if args.pca else '_nopca'}_s{args.seed}"


def _mix_weights(spec: str | None, count: int) -> tuple[float, ...] | None:
    if spec is None:
        return None
    try:
        values = tuple(float(v) for v in spec.split(","))
    except ValueError:
        raise InputError(f"--mix takes a weight or comma-separated weights, got '{spec}'") from None
    if count < 2:
        raise InputError("--mix needs at least two STYLE examples")
    if len(values) == 1 and count == 2:
        if not 0 <= values[0] <= 1:
            raise InputError(f"--mix with two examples takes the second's weight in [0, 1], got {values[0]}")
        return (1 - values[0], values[0])
    return values  # counts and signs are checked by synthesize()


def _run_synth(args: argparse.Namespace) -> int:
    from .io import load_image, save_image
    from .optimal_textures import resolve_device, synthesize

    h, w = parse_size(args)
    _check_method_options(args)
    styles = expand_inputs(args.style, "style")
    mix = _mix_weights(args.mix, len(styles))
    if (args.style_mask or args.target_mask) and len(styles) > 1:
        raise InputError("--style-mask/--target-mask take one STYLE example")
    if args.method != "ot" and args.style_mask:
        raise InputError(f"--style-mask does not apply to --method {args.method}")
    if args.method == "ot":
        kwargs, fn = ot_kwargs(args), synthesize
        kwargs.update(tile=args.tile, style_mask=args.style_mask, target_mask=args.target_mask)
        if mix is not None:
            kwargs.update(mix=mix, mix_variation=args.mix_variation)
    else:
        from .optimization import synthesize_opt

        kwargs, fn = dict(opt_kwargs(args, content=False), method=args.method), synthesize_opt
    extra = ("_tile" if args.tile else "") + ("_masked" if args.style_mask else "")
    groups = [styles] if mix is not None else [[s] for s in styles]
    _one_output(args, len(groups))
    device = resolve_device(args.device)

    def job(group: list[str]) -> None:
        if mix is not None:
            name = "+".join(Path(s).stem for s in group) + f"_mix{'-'.join(fmt_float(v) for v in mix)}"
        else:
            name = Path(group[0]).stem
        paths = output_paths(args, f"{name}_synth_{w}x{h}{extra}_{_settings_tag(args)}", args.batch)
        masks = [m for m in (args.style_mask, args.target_mask) if m]
        check_outputs_free(paths, [*group, *masks], args.force)
        if args.method != "ot" and args.plot:
            check_outputs_free([Path(args.plot)], [*group, *map(str, paths)], args.force)
        images = [load_image(s, device=device) for s in group]
        out = fn(images if mix is not None else images[0], (h, w), batch=args.batch, device=device, **kwargs)
        for img, path in zip(out, paths):
            save_image(img.unsqueeze(0), path, overwrite=args.force)
            if not args.quiet:
                print(f"wrote {path}")
        _write_plot(args, kwargs)

    return run_jobs([(" + ".join(g), lambda g=g: job(g)) for g in groups], args.quiet)


# ----------------------------------------------------------------------------------------------
# style


@command
def _style_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "style",
        help="style transfer: CONTENT's layout with STYLE's textures (Optimal Textures)",
        description="Repaint CONTENT with the textures of STYLE by sliced optimal transport of VGG-19 features, "
        "pulling the deep features (relu5_1, relu4_1, relu3_1) toward the content's after every matching step "
        "(Risser 2020). The output keeps the content's aspect.",
        epilog="example: ottex style bridge.jpg lava.jpg --size 512 --content-strength 0.4",
    )
    p.add_argument("content", metavar="CONTENT", help="content image (layout); a folder or a quoted glob pattern "
                   "runs every image in it")
    p.add_argument("style", metavar="STYLE", nargs="+", help="style image(s) (textures, colours): files, folders or "
                   "quoted glob patterns; one output per (content, style) pair")
    p.add_argument("--size", type=int, help="long side of the output in px [the content's]")
    p.add_argument("--content-strength", type=float, default=None,
                   help="how strongly the content's layout is kept: 0 texture only, about 1 little style [0.6]")
    p.add_argument("--init", choices=["content", "noise"], default="content", help="starting image [content]")
    p.add_argument("--preserve-color", action="store_true",
                   help="keep the content's colours: luminance from the result, chroma from the content, then a "
                   "few sliced-OT steps on the RGB distribution")
    p.add_argument("--style-mask", metavar="FILE", help="label map of the style (colour-coded regions)")
    p.add_argument("--content-mask", metavar="FILE", help="label map of the content: each region is painted with "
                   "the style of the region of the same colour (needs --style-mask)")
    add_method_option(p, transfer=True)
    add_ot_options(p)
    add_opt_options(p, content=True)
    add_runtime_options(p)
    p.set_defaults(func=_run_style)


def _run_style(args: argparse.Namespace) -> int:
    from .io import load_image, save_image
    from .optimal_textures import DEFAULT_CONTENT_STRENGTH, resolve_device, transfer

    _check_method_options(args)
    contents = expand_inputs([args.content], "content")
    styles = expand_inputs(args.style, "style")
    pairs = [(c, s) for c in contents for s in styles]
    _one_output(args, len(pairs))
    masks = [m for m in (args.style_mask, args.content_mask) if m]
    if masks and len(pairs) > 1:
        raise InputError("--style-mask/--content-mask take one CONTENT and one STYLE")
    if masks and args.method not in ("ot", "strotss"):
        raise InputError(f"--style-mask/--content-mask do not apply to --method {args.method}")
    size = f"_{args.size}" if args.size else ""
    extra = ("_pc" if args.preserve_color else "") + ("_masked" if masks else "")
    if args.method == "ot":
        kwargs = ot_kwargs(args)
        strength = DEFAULT_CONTENT_STRENGTH if args.content_strength is None else args.content_strength
        tag = f"cs{fmt_float(strength)}{size}{extra}_{_settings_tag(args)}"
        kwargs.update(style_mask=args.style_mask, content_mask=args.content_mask, preserve_color=args.preserve_color)
    else:
        if args.content_strength is not None:
            raise InputError(f"--content-strength applies to --method ot; use --content-weight with {args.method}")
        kwargs = strotss_kwargs(args) if args.method == "strotss" else opt_kwargs(args, content=True)
        tag = f"cw{fmt_float(args.content_weight)}{size}{extra}_{_settings_tag(args)}"
    device = resolve_device(args.device)

    def job(content_path: str, style_path: str) -> None:
        (path,) = output_paths(args, f"{Path(content_path).stem}_{Path(style_path).stem}_style_{tag}", 1)
        check_outputs_free([path], [content_path, style_path, *masks], args.force)
        if args.method != "ot" and args.plot:
            check_outputs_free([Path(args.plot)], [content_path, style_path, str(path)], args.force)
        content = load_image(content_path, device=device)
        style = load_image(style_path, device=device)
        if args.method == "ot":
            out = transfer(content, style, args.size, content_strength=strength, init=args.init, device=device,
                           **kwargs)
        elif args.method == "strotss":
            from .strotss import strotss

            out = strotss(content, style, args.size, device=device, content_mask=args.content_mask,
                          style_mask=args.style_mask, **kwargs)
        else:
            from .optimization import stylize

            out = stylize(content, style, args.size, method=args.method, init=args.init, device=device, **kwargs)
        if args.preserve_color and args.method != "ot":  # ot does it inside transfer()
            from .color import preserve_color

            out = preserve_color(out, content, seed=args.seed)
        save_image(out, path, overwrite=args.force)
        if not args.quiet:
            print(f"wrote {path}")
        if args.method != "ot":
            _write_plot(args, kwargs)

    return run_jobs([(f"{c} + {s}", lambda c=c, s=s: job(c, s)) for c, s in pairs], args.quiet)


# ----------------------------------------------------------------------------------------------
# color


@command
def _color_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "color",
        help="colour transfer: give SOURCE the colours of TARGET (sliced OT of pixel colours)",
        description="Recolour SOURCE with the colour distribution of TARGET by Pitie's N-dimensional PDF "
        "transfer: random rotations of the RGB space and exact 1D optimal transport of every axis. No network, "
        "any image size.",
        epilog="example: ottex color photo.jpg sunset.jpg --iterations 20",
    )
    p.add_argument("source", metavar="SOURCE", help="image to recolour; a folder or quoted glob pattern runs each")
    p.add_argument("target", metavar="TARGET", help="image whose colours are taken")
    p.add_argument("--iterations", type=int, default=20, help="random rotations of the colour space [20]")
    add_runtime_options(p)
    p.set_defaults(func=_run_color)


def _run_color(args: argparse.Namespace) -> int:
    from .color import color_transfer
    from .io import load_image, save_image
    from .optimal_textures import resolve_device

    sources = expand_inputs([args.source], "source")
    _one_output(args, len(sources))
    if args.iterations < 1:
        raise InputError(f"--iterations must be at least 1, got {args.iterations}")
    device = resolve_device(args.device)

    def job(src: str) -> None:
        (path,) = output_paths(args, f"{Path(src).stem}_{Path(args.target).stem}_color_i{args.iterations}"
                               f"_s{args.seed}", 1)
        check_outputs_free([path], [src, args.target], args.force)
        out = color_transfer(load_image(src, device=device), load_image(args.target, device=device),
                             iterations=args.iterations, seed=args.seed)
        save_image(out, path, overwrite=args.force)
        if not args.quiet:
            print(f"wrote {path}")

    return run_jobs([(src, lambda src=src: job(src)) for src in sources], args.quiet)


# ----------------------------------------------------------------------------------------------
# bench


@command
def _bench_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="time, peak memory and style distance of methods x sizes (Markdown table + JSON)",
        description="Run each method at each size in a fresh process (warm-up, then timed repeats; median time, "
        "peak memory), score the outputs with a measuring network the synthesis does not use, and print a "
        "Markdown table. --reference scores existing images (e.g. another implementation's results) the same way.",
        epilog="example: ottex bench --style graffiti.jpg --sizes 512,1024 --repeats 3 --json bench.json "
        "--reference theirs=their_graffiti_512.png",
    )
    p.add_argument("--style", required=True, metavar="FILE", help="style example image")
    p.add_argument("--content", metavar="FILE", help="content image: benchmark style transfer (size = long side) "
                   "and report the content distance too")
    p.add_argument("--methods", default="ot", help="comma-separated methods: ot, w2, gatys, swd, and strotss "
                   "with --content [ot]")
    p.add_argument("--sizes", default="512", help="comma-separated square output sides [512]")
    p.add_argument("--repeats", type=int, default=1, help="timed runs per case; the median is reported [1]")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs before the timed ones [1]")
    p.add_argument("--reference", action="append", default=[], metavar="NAME=FILE",
                   help="an existing result to score in the same table (repeatable)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE[;KEY=VALUE]",
                   help="settings to compare: each method also runs with these keyword arguments, labelled "
                   "method[NAME], e.g. --variant \"nopca:pca=False\" --variant \"cs3:content_strength=0.3\"; "
                   "texture mixing: --variant \"mix:mix_with=zebra.jpg;mix=(0.5,0.5)\" (repeatable)")
    p.add_argument("--command", action="append", default=[], metavar="NAME=CMDLINE",
                   help="an external program run as one more case at each size, e.g. another implementation: "
                   "placeholders {style} {size} {output} {seed}; it must write a PNG to {output} (repeatable)")
    p.add_argument("--measure", default="vgg19-caffe", help="measuring network for the style distance [vgg19-caffe]")
    p.add_argument("--threads", type=int, help="torch threads per case [torch's default]")
    p.add_argument("--json", metavar="FILE", help="also write the records as JSON")
    p.add_argument("--save", metavar="DIR", help="write each case's output image into DIR")
    p.add_argument("--sheet", metavar="FILE", help="write a contact sheet (style, references, outputs with their "
                   "scores) as PNG")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing --sheet or --json file")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda [auto]")
    p.add_argument("--weights-dir", metavar="DIR", help="folder with one sub-folder per weight set")
    p.add_argument("--seed", type=int, default=0, help="seed of every run [0]")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the table")
    p.set_defaults(func=_run_bench)


def _name_value(spec: str, option: str, form: str) -> tuple[str, str]:
    name, sep, value = spec.partition("=")
    if not sep or not name or not value:
        raise InputError(f"{option} takes {form}, got '{spec}'")
    return name, value


def _run_bench(args: argparse.Namespace) -> int:
    import tempfile

    from .bench import (
        bench_sheet,
        machine_name,
        markdown_table,
        parse_sizes,
        parse_variant,
        run_benchmark,
        score_reference,
        write_json,
    )
    from .io import load_image, save_image
    from .methods import get_method
    from .optimal_textures import resolve_device

    sizes = parse_sizes(args.sizes)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        get_method(m).synthesize_fn() if args.content is None else get_method(m).transfer_fn()
    if args.repeats < 1 or args.warmup < 0:
        raise InputError("--repeats must be at least 1 and --warmup at least 0")
    refs = [_name_value(spec, "--reference", "NAME=FILE") for spec in args.reference]
    variants = dict(parse_variant(v) for v in args.variant) or None
    commands = dict(_name_value(spec, "--command", "NAME=CMDLINE") for spec in args.command)
    for name, cmdline in commands.items():
        if "{output}" not in cmdline:
            raise InputError(f"--command {name}: the command line must contain {{output}}")
    load_image(args.style)  # a bad input fails here, in one line, before any child process starts
    if args.content:
        load_image(args.content)
    inputs = [args.style] + ([args.content] if args.content else [])
    check_outputs_free([Path(p) for p in (args.json, args.sheet) if p], inputs, args.force)
    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    records = [score_reference(n, p, args.style, measure=args.measure, weights_dir=args.weights_dir,
                               content=args.content) for n, p in refs]

    def show(rec) -> None:  # noqa: ANN001
        if not args.quiet:
            extra = "" if rec.content_distance is None else f", content distance {rec.content_distance:.4f}"
            print(f"{rec.method} {rec.size}px: {rec.seconds:.2f} s, peak {rec.peak_mem_mb:.0f} MB, "
                  f"style distance {rec.style_distance:.4f}{extra}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="ottex-bench-") as tmp:
        save_dir = args.save or (tmp if args.sheet else None)
        records += run_benchmark(args.style, methods, sizes, repeats=args.repeats, warmup=args.warmup,
                                 device=str(device), seed=args.seed, weights_dir=args.weights_dir,
                                 measure=args.measure, threads=args.threads, save_dir=save_dir, commands=commands,
                                 content=args.content, variants=variants, on_record=show)
        machine = machine_name(device)
        if args.sheet:
            save_image(bench_sheet(records, args.style, machine, content=args.content), args.sheet,
                       overwrite=args.force)
    what = f"content {args.content}, style {args.style}" if args.content else f"style {args.style}"
    print(f"ottex bench on {machine}; {what}; distances measured with {args.measure}\n")
    print(markdown_table(records))
    if args.json:
        write_json(records, args.json, machine)
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
