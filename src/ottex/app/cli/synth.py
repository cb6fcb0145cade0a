"""``ottex synth``: texture synthesis with any registered method."""

from __future__ import annotations

import argparse

from ...core.errors import InputError
from ...methods.base import SYNTHESIS
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
        "synth",
        help="synthesise a texture from an example image (Optimal Textures and other methods)",
        description="Synthesise a texture that looks like STYLE, of any size. The default method, Optimal Textures, "
        "moves VGG-19 features by sliced optimal transport (Risser 2020). Weights are downloaded on first use (or "
        "read from --weights-dir).",
        epilog="example: ottex synth graffiti.jpg --size 1024 --seed 3 -o wall.png",
    )
    p.add_argument("style", metavar="STYLE", nargs="+",
                   help="example texture image(s): files, folders or quoted glob patterns; one texture per "
                   "example, or one mixed texture with --mix")
    add_size_options(p, "square output side in px [512]", "the example")
    p.add_argument("--batch", default=1, metavar="N", help="number of textures per example (seeds share rotations) [1]")
    add_plot_option(p)
    add_method_options(p, SYNTHESIS)
    add_runtime_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """One job per example (or one for all, mixed, with ``--mix``), each made, checked and named by
    :func:`make_job`, handed to the executor."""
    styles = expand_inputs(args.style, "style")
    options, size = given_options(args), parse_size(args)
    # a method with a ``mix`` option takes several examples at once and mixes them; others make one texture each
    groups = [styles] if options.get("mix") is not None else [[s] for s in styles]
    one_output(args, len(groups))
    outdir = None if args.output else make_outdir(args.outdir)
    jobs = [make_job(SYNTHESIS, args.method, style=group, size=size, options=options, seed=args.seed,
                     batch=args.batch, outdir=outdir, overwrite=args.force, name=" + ".join(group), device=args.device)
            for group in groups]
    if len(styles) > 1 and jobs[0].inputs:
        raise InputError("--style-mask/--target-mask take one STYLE example")
    if args.output:  # -o NAME: NAME_0, NAME_1 ... for a batch
        jobs[0].outputs = output_paths(args, "", jobs[0].batch)
    return run_method_jobs(args, "synth", jobs)
