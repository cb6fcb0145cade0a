"""``ottex synth``: texture synthesis with any registered method."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...core.errors import InputError
from ...exec.local import Job
from ...methods.base import SYNTHESIS, get_method, label_number, settings_digest
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
    p.add_argument("--batch", type=int, default=1, help="number of textures per example (seeds share rotations) [1]")
    add_plot_option(p)
    add_method_options(p, SYNTHESIS)
    add_runtime_options(p)
    p.set_defaults(func=run)


def _mix_weights(values: tuple[float, ...] | None, count: int) -> tuple[float, ...] | None:
    """``--mix``: with two examples one weight (the second's); else one weight per example."""
    if values is None:
        return None
    if count < 2:
        raise InputError("--mix needs at least two STYLE examples")
    if len(values) == 1 and count == 2:
        if not 0 <= values[0] <= 1:
            raise InputError(f"--mix with two examples takes the second's weight in [0, 1], got {values[0]}")
        return (1 - values[0], values[0])
    return values  # counts and signs are checked by the method


def _output_size(size: tuple[int | None, int | None] | int | None, example: str) -> tuple[int, int]:
    """The output ``(H, W)``: ``--size`` (a square, 512 by default) or ``--width``/``--height``, a side not given
    following the example's aspect."""
    if size is None or isinstance(size, int):
        n = 512 if size is None else size
        return n, n
    return fit_size(size, example)


def run(args: argparse.Namespace) -> int:
    size = parse_size(args)
    method = get_method(args.method, SYNTHESIS)
    opts = method_options(args, SYNTHESIS, method)
    check_plot(args, method)
    check_runtime(args)
    styles = expand_inputs(args.style, "style")
    # a method with a ``mix`` option takes several examples at once and mixes them; others make one texture each
    mix = _mix_weights(getattr(opts, "mix", None), len(styles))
    if mix is not None:
        opts = opts.replace(mix=mix)
    masks = [str(m) for m in mask_options(method, opts, SYNTHESIS)]
    if masks and len(styles) > 1:
        raise InputError("--style-mask/--target-mask take one STYLE example")
    groups = [styles] if mix is not None else [[s] for s in styles]
    one_output(args, len(groups))
    digest = settings_digest(method.name, opts, args.batch)
    tag = f"{'_masked' if masks else ''}_{method.label(opts, SYNTHESIS)}_s{args.seed}{'_' + digest if digest else ''}"
    jobs = []
    for group in groups:
        h, w = _output_size(size, group[0])
        if mix is not None:
            name = "+".join(Path(s).stem for s in group) + f"_mix{'-'.join(label_number(v) for v in mix)}"
        else:
            name = Path(group[0]).stem
        outputs = output_paths(args, f"{name}_synth_{w}x{h}{tag}", args.batch)
        jobs.append(Job(method.name, SYNTHESIS, style=group if mix is not None else group[0], outputs=outputs,
                        size=(h, w), options=opts, batch=args.batch, seed=args.seed, overwrite=args.force,
                        name=" + ".join(group), inputs=masks))
    return run_method_jobs(args, method, "synth", jobs)
