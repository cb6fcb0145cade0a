"""``ottex style``: style transfer with any registered method."""

from __future__ import annotations

import argparse

from ...core.checks import check_int
from ...core.errors import InputError
from ...image.color import COLOR_MODES
from ...methods.base import TRANSFER
from ...methods.request import make_job
from .common import (
    add_runtime_options,
    add_size_options,
    expand_inputs,
    make_outdir,
    one_output,
    output_paths,
    parse_size,
)
from .options import add_method_options, given_options
from .run import add_plot_option, run_method_jobs


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "style",
        help="style transfer: CONTENT's layout with STYLE's textures (Optimal Textures and other methods)",
        description="Repaint CONTENT with the textures of STYLE. The default method, Optimal Textures, moves VGG-19 "
        "features by sliced optimal transport, pulling the deep features (relu5_1, relu4_1, relu3_1) toward the "
        "content's before every matching step (after Risser 2020), then polishes the result's pixel patches toward "
        "the style's. The output keeps the content's aspect; less --content-strength gives more of the style's "
        "shapes (long stripes need about 0.5 or less).",
        epilog="example: ottex style bridge.jpg lava.jpg --size 512 --content-strength 0.4",
    )
    p.add_argument("content", metavar="CONTENT", help="content image (layout); a folder or a quoted glob pattern "
                   "runs every image in it")
    p.add_argument("style", metavar="STYLE", nargs="+", help="style image(s) (textures, colours): files, folders or "
                   "quoted glob patterns; one output per (content, style) pair")
    add_size_options(p, "long side of the output in px, the content's aspect kept [the content's]", "the content")
    p.add_argument("--preserve-color", nargs="?", const="full", default=None, metavar="{" + ",".join(COLOR_MODES) + "}",
                   help="keep the content's colours (any method): full (the default when the flag is given alone): "
                   "luminance from the result, chroma from the content, then a few sliced-OT steps on the RGB "
                   "distribution; luminance: the chroma swap alone, keeping the style's light and shade")
    p.add_argument("--batch", default=1, metavar="N", help="variations per (content, style) pair, with seeds SEED, "
                   "SEED+1, ... [1]")
    add_plot_option(p)
    add_method_options(p, TRANSFER)
    add_runtime_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """One job per (content, style) pair and seed, each made, checked and named by :func:`make_job`, handed to the
    executor."""
    variations = check_int(args.batch, "batch", low=1)
    contents = expand_inputs([args.content], "content")
    styles = expand_inputs(args.style, "style")
    pairs = [(c, s) for c in contents for s in styles]
    one_output(args, len(pairs))
    if args.plot and variations > 1:
        raise InputError(f"--plot writes one plot but --batch makes {variations} outputs; run them one at a time")
    options, size = given_options(args), parse_size(args)
    named = output_paths(args, "", variations) if args.output else None  # -o NAME: NAME_0, NAME_1 ... for a batch
    outdir = None if args.output else make_outdir(args.outdir)
    jobs = [make_job(TRANSFER, args.method, style=style, content=content, size=size, options=options,
                     seed=args.seed + i, preserve_color=args.preserve_color, outputs=[named[i]] if named else (),
                     outdir=outdir, overwrite=args.force, device=args.device,
                     name=f"{content} + {style}" + (f" (seed {args.seed + i})" if variations > 1 else ""))
            for content, style in pairs for i in range(variations)]  # a batch: one run per seed
    if len(pairs) > 1 and jobs[0].inputs:
        raise InputError("--style-mask/--content-mask take one CONTENT and one STYLE")
    return run_method_jobs(args, "style", jobs)
