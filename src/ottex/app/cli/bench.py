"""``ottex bench``: time, peak memory and quality of registered methods x sizes."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from ...core.device import resolve_device
from ...core.errors import InputError
from ...eval.bench import (
    COMMAND_PLACEHOLDERS,
    BenchRecord,
    bench_sheet,
    machine_name,
    markdown_table,
    parse_sizes,
    parse_variant,
    resolve_methods,
    run_benchmark,
    score_reference,
    write_json,
)
from ...exec.local import check_outputs_free
from ...image.io import load_image, save_image
from ...methods.base import SYNTHESIS, TRANSFER, get_method, list_methods
from ...methods.pseudo_optimizer import load_checkpoint
from .common import name_value, seed_arg

#: Flags of the errors that name an option (see common.format_error).
FLAGS = {"sizes": "--sizes", "variant": "--variant", "methods": "--methods", "method": "--methods"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    names = ", ".join(m.name for m in list_methods())
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
    p.add_argument("--methods", default="ot", metavar="METHODS",
                   help=f"comma-separated registered methods ({names}), or all [ot]")
    p.add_argument("--sizes", default="512", metavar="PX[,PX...]",
                   help="comma-separated output sides in px: square syntheses; with --content the long side of the "
                   "transfer, the content's aspect kept [512]")
    p.add_argument("--repeats", type=int, default=1, help="timed runs per case; the median is reported [1]")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs before the timed ones [1]")
    p.add_argument("--reference", action="append", default=[], metavar="NAME=FILE",
                   help="an existing result to score in the same table (repeatable)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE[;KEY=VALUE]",
                   help="settings to compare: each method also runs with these options (fields of its options, "
                   "e.g. pca, rotations, steps), labelled method[NAME], e.g. --variant \"nopca:pca=False\" --variant "
                   "\"cs3:content_strength=0.3\"; texture mixing: --variant \"mix:mix_with=zebra.jpg;mix=(0.5,0.5)\" "
                   "(repeatable)")
    p.add_argument("--command", action="append", default=[], metavar="NAME=CMDLINE",
                   help="an external program run as one more case at each size, e.g. another implementation: "
                   f"placeholders {' '.join('{' + n + '}' for n in COMMAND_PLACEHOLDERS)} ({{content}}: with "
                   "--content); it must write a PNG to {output} (repeatable)")
    p.add_argument("--model", metavar="CKPT", help="trained model of the methods that take one (po: a checkpoint "
                   "of 'ottex train'); its training time per step is printed too")
    p.add_argument("--measure-weights", default=None, metavar="SET",
                   help="weight set of the measuring network for the distances [vgg19-caffe]")
    p.add_argument("--threads", type=int, help="torch threads per case [torch's default]")
    p.add_argument("--json", metavar="FILE", help="also write the records as JSON")
    p.add_argument("--save", metavar="DIR", help="write each case's output image into DIR")
    p.add_argument("--sheet", metavar="FILE", help="write a contact sheet (style, references, outputs with their "
                   "scores) as PNG")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing --sheet or --json file")
    p.add_argument("--device", default="auto", metavar="DEVICE", help="auto, cpu or cuda [auto]")
    p.add_argument("--weights-dir", metavar="DIR", help="folder with one sub-folder per weight set")
    p.add_argument("--seed", type=seed_arg, default=0, metavar="N", help="seed of every run [0]")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    args._ottex_flags = FLAGS
    measure = args.measure_weights or "vgg19-caffe"
    sizes = parse_sizes(args.sizes)
    task = SYNTHESIS if args.content is None else TRANSFER
    methods = [m.name for m in resolve_methods(args.methods, task)]
    if args.methods.strip() == "all" and not args.model:  # methods that need a trained model run with --model only
        methods = [m for m in methods if not any(s.name == "model" for s in get_method(m).option_specs())]
    if args.repeats < 1 or args.warmup < 0:
        raise InputError("--repeats must be at least 1 and --warmup at least 0")
    refs = [name_value(spec, "--reference", "NAME=FILE") for spec in args.reference]
    variants = dict(parse_variant(v) for v in args.variant) or None
    commands = dict(name_value(spec, "--command", "NAME=CMDLINE") for spec in args.command)
    for name, cmdline in commands.items():
        if "{output}" not in cmdline:
            raise InputError(f"--command {name}: the command line must contain {{output}}")
    load_image(args.style)  # a bad input fails here, in one line, before any child process starts
    if args.content:
        load_image(args.content)
    inputs = [args.style] + ([args.content] if args.content else [])
    if args.sheet:
        check_outputs_free([Path(args.sheet)], inputs, args.force)  # an image: its name is checked too
    if args.json:
        check_outputs_free([Path(args.json)], inputs, args.force, images=False)
    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
    method_options = {}
    if args.model:
        method_options = {m: {"model": args.model} for m in methods
                          if any(s.name == "model" for s in get_method(m).option_specs())}
        if not method_options:
            raise InputError(f"--model: none of the methods {', '.join(methods)} takes a model")
    device = resolve_device(args.device)
    records = [score_reference(n, p, args.style, measure=measure, weights_dir=args.weights_dir,
                               content=args.content) for n, p in refs]

    def show(rec: BenchRecord) -> None:
        if not args.quiet:
            extra = "" if rec.content_distance is None else f", content distance {rec.content_distance:.4f}"
            print(f"{rec.method} {rec.size}px: {rec.seconds:.2f} s, peak {rec.peak_mem_mb:.0f} MB, "
                  f"style distance {rec.style_distance:.4f}{extra}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="ottex-bench-") as tmp:
        save_dir = args.save or (tmp if args.sheet else None)
        records += run_benchmark(args.style, methods, sizes, repeats=args.repeats, warmup=args.warmup,
                                 device=str(device), seed=args.seed, weights_dir=args.weights_dir,
                                 measure=measure, threads=args.threads, save_dir=save_dir, commands=commands,
                                 content=args.content, variants=variants, method_options=method_options,
                                 on_record=show)
        machine = machine_name(device, args.threads)
        if args.sheet:
            save_image(bench_sheet(records, args.style, machine, content=args.content), args.sheet,
                       overwrite=args.force)
    what = f"content {args.content}, style {args.style}" if args.content else f"style {args.style}"
    print(f"ottex bench on {machine}; {what}; distances measured with {measure}\n")
    print(markdown_table(records))
    if method_options:
        meta, nan = load_checkpoint(args.model)["meta"], float("nan")
        cpu = f" ({meta['cpu_seconds_per_step']:.3f} s of CPU time)" if "cpu_seconds_per_step" in meta else ""
        print(f"\nmodel {args.model}: {meta['variant']} on {len(meta['textures'])} texture(s), {meta['step']} steps "
              f"of {meta['settings']['batch']} crops of {meta['size']} px, training time "
              f"{meta.get('seconds_per_step', nan):.3f} s per step{cpu} on {meta.get('device', '?')} (measured during "
              "training)")
    if args.json:
        write_json(records, args.json, machine)
    return 0
