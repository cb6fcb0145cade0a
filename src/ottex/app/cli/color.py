"""``ottex color``: colour transfer (sliced OT of pixel colours; no network, any size)."""

from __future__ import annotations

import argparse
import inspect
import os
from pathlib import Path

from ... import __version__
from ...core.device import resolve_device
from ...core.errors import InputError
from ...exec.local import check_outputs_free
from ...image.color import color_transfer
from ...image.io import load_image, save_image
from .common import add_runtime_options, check_runtime, expand_inputs, one_output, output_paths, run_batch
from .run import warn_unrecorded

#: The default of ``--rotations``: :func:`~ottex.image.color.color_transfer`'s own.
DEFAULT_ROTATIONS = inspect.signature(color_transfer).parameters["rotations"].default


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "color",
        help="colour transfer: give SOURCE the colours of TARGET (sliced OT of pixel colours)",
        description="Recolour SOURCE with the colour distribution of TARGET by Pitie's N-dimensional PDF "
        "transfer: random rotations of the RGB space and exact 1D optimal transport of every axis, then Pitie's "
        "regraining (the source's gradients where the colour map would stretch noise). No network, any image size.",
        epilog="example: ottex color photo.jpg sunset.jpg --rotations 20",
    )
    p.add_argument("source", metavar="SOURCE", help="image to recolour; a folder or quoted glob pattern runs each")
    p.add_argument("target", metavar="TARGET", help="image whose colours are taken")
    p.add_argument("--rotations", type=int, default=None, metavar="N",
                   help=f"random rotations of the colour space [{DEFAULT_ROTATIONS}]")
    p.add_argument("--regrain", action=argparse.BooleanOptionalAction, default=True,
                   help="Pitie's regraining after the colour map: the source's gradients where the map would stretch "
                   "grain and noise (smooth skies, clean flat areas) [on]")
    add_runtime_options(p, weights=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rotations = DEFAULT_ROTATIONS if args.rotations is None else args.rotations
    sources = expand_inputs([args.source], "source")
    one_output(args, len(sources))
    if rotations < 1:
        raise InputError(f"--rotations must be at least 1, got {rotations}")
    check_runtime(args)
    device = resolve_device(args.device)

    def job(src: str) -> None:
        tag = f"color_r{rotations}{'' if args.regrain else '_noregrain'}_s{args.seed}"
        (path,) = output_paths(args, f"{Path(src).stem}_{Path(args.target).stem}_{tag}", 1)
        check_outputs_free([path], [src, args.target], args.force)
        out = color_transfer(load_image(src, device=device), load_image(args.target, device=device),
                             rotations=rotations, seed=args.seed, regrain=args.regrain)
        inputs = {"source": os.path.abspath(src), "target": os.path.abspath(args.target)}
        settings = {"ottex": __version__, "command": "color", "task": "color", "inputs": inputs,
                    "size": list(out.shape[-2:]), "seed": args.seed,
                    "options": {"rotations": rotations, "regrain": args.regrain}, "device": str(device)}
        save_image(out, path, overwrite=args.force, settings=settings)
        warn_unrecorded([path])
        if not args.quiet:
            print(f"wrote {path}")

    return run_batch([(src, lambda src=src: job(src)) for src in sources], args)
