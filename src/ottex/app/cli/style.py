"""``ottex style``: style transfer with any registered method."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...core.errors import InputError
from ...exec.local import Job
from ...image.color import COLOR_MODES
from ...methods.base import TRANSFER, get_method, settings_digest
from .common import (
    add_runtime_options,
    add_size_options,
    check_runtime,
    expand_inputs,
    fit_size,
    one_output,
    output_paths,
    parse_size,
)
from .options import add_method_options, mask_options, method_options
from .run import add_plot_option, check_plot, run_method_jobs


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "style",
        help="style transfer: CONTENT's layout with STYLE's textures (Optimal Textures and other methods)",
        description="Repaint CONTENT with the textures of STYLE. The default method, Optimal Textures, moves VGG-19 "
        "features by sliced optimal transport, pulling the deep features (relu5_1, relu4_1, relu3_1) toward the "
        "content's before every matching step (after Risser 2020). The output keeps the content's aspect.",
        epilog="example: ottex style bridge.jpg lava.jpg --size 512 --content-strength 0.4",
    )
    p.add_argument("content", metavar="CONTENT", help="content image (layout); a folder or a quoted glob pattern "
                   "runs every image in it")
    p.add_argument("style", metavar="STYLE", nargs="+", help="style image(s) (textures, colours): files, folders or "
                   "quoted glob patterns; one output per (content, style) pair")
    add_size_options(p, "long side of the output in px, the content's aspect kept [the content's]", "the content")
    p.add_argument("--preserve-color", nargs="?", const="full", default=None, choices=COLOR_MODES,
                   help="keep the content's colours (any method): full (the default when the flag is given alone): "
                   "luminance from the result, chroma from the content, then a few sliced-OT steps on the RGB "
                   "distribution; luminance: the chroma swap alone, keeping the style's light and shade")
    p.add_argument("--batch", type=int, default=1, help="variations per (content, style) pair, with seeds SEED, "
                   "SEED+1, ... [1]")
    add_plot_option(p)
    add_method_options(p, TRANSFER)
    add_runtime_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    requested = parse_size(args)
    method = get_method(args.method, TRANSFER)
    opts = method_options(args, TRANSFER, method)
    check_plot(args, method)
    check_runtime(args)
    contents = expand_inputs([args.content], "content")
    styles = expand_inputs(args.style, "style")
    pairs = [(c, s) for c in contents for s in styles]
    one_output(args, len(pairs))
    if args.batch < 1:
        raise InputError(f"--batch must be at least 1, got {args.batch}")
    if args.plot and args.batch > 1:
        raise InputError(f"--plot writes one plot but --batch makes {args.batch} outputs; run them one at a time")
    masks = [str(m) for m in mask_options(method, opts, TRANSFER)]
    if masks and len(pairs) > 1:
        raise InputError("--style-mask/--content-mask take one CONTENT and one STYLE")
    extra = {None: "", "full": "_pc", "luminance": "_lum"}[args.preserve_color] + ("_masked" if masks else "")
    head = method.content_label(opts)
    digest = settings_digest(method.name, opts)
    jobs = []
    for content, style in pairs:
        size = requested if requested is None or isinstance(requested, int) else fit_size(requested, content)
        size_tag = "" if size is None else f"_{size}" if isinstance(size, int) else f"_{size[1]}x{size[0]}"
        named = output_paths(args, "", args.batch) if args.output else None  # -o NAME: NAME_0, NAME_1 ... for a batch
        for i, seed in enumerate(range(args.seed, args.seed + args.batch)):  # a batch: one run per seed
            tag = f"{head}{size_tag}{extra}".lstrip("_") + f"_{method.label(opts, TRANSFER)}_s{seed}"
            if digest:
                tag += f"_{digest}"
            path = named[i] if named else output_paths(args, f"{Path(content).stem}_{Path(style).stem}_style_{tag}",
                                                       1)[0]
            label = f"{content} + {style}" + (f" (seed {seed})" if args.batch > 1 else "")
            jobs.append(Job(method.name, TRANSFER, style=style, content=content, outputs=[path], size=size,
                            options=opts, seed=seed, preserve_color=args.preserve_color, overwrite=args.force,
                            name=label, inputs=masks))
    return run_method_jobs(args, method, "style", jobs)
