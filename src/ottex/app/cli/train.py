"""``ottex train``: train a Pseudo Optimizer (``po``, ``adapo``, ``propo``) on textures into a checkpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...core.errors import InputError
from ...core.progress import TqdmProgress
from ...eval.report import plot_history
from ...methods.pseudo_optimizer import LR_SCHEDULES, VARIANTS, TrainOptions, load_checkpoint, train
from .common import expand_inputs, seed_arg
from .run import check_plot_name

#: Flags of the errors that name an option (see common.format_error).
FLAGS = {"variant": "--variant", "size": "--size", "style_side": "--style-side", "steps": "--steps",
         "batch": "--batch", "lr": "--lr", "lr_schedule": "--lr-schedule", "width": "--width", "blocks": "--blocks",
         "save_every": "--save-every", "output": "-o", "model": "-o", "weights": "--weights"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = TrainOptions()
    p = sub.add_parser(
        "train",
        help="train a Pseudo Optimizer (method po) on textures: a checkpoint for 'ottex synth --method po'",
        description="Train a Pseudo Optimizer (Shi & Qiao 2020) on random crops and flips of TEXTURES: a network "
        "that then makes a texture in one forward pass (ottex synth STYLE --method po --model CKPT). po: one "
        "texture; adapo: one network for many textures, which also takes textures it was not trained on; propo: "
        "five progressive stages (the official 'improved' model). If the output exists, training resumes from it "
        "(same settings and textures); the checkpoint is written every --save-every steps, atomically.",
        epilog="example: ottex train zebra.jpg -o zebra.pt --steps 2000; ottex train styles/ --variant adapo "
        "-o styles.pt --plot loss.png",
    )
    p.add_argument("textures", metavar="TEXTURE", nargs="+", help="texture images: files, folders or quoted globs")
    p.add_argument("-o", "--output", metavar="CKPT", required=True, help="checkpoint file to write (or resume)")
    p.add_argument("--variant", choices=VARIANTS, default=d.variant, help=f"model [{d.variant}]")
    p.add_argument("--size", type=int, default=d.size, metavar="PX",
                   help=f"side of the training crops, multiple of 16 [{d.size}]")
    p.add_argument("--style-side", type=int, default=d.style_side, metavar="PX",
                   help=f"textures are resized to this short side before cropping (the detail scale) [{d.style_side}]")
    p.add_argument("--steps", type=int, default=d.steps, help=f"training steps in all [{d.steps}]")
    p.add_argument("--batch", type=int, default=d.batch, help=f"crops per step [{d.batch}]")
    p.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate [{d.lr:g}]")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=d.lr_schedule,
                   help=f"cosine: to 0 at the last step; step: x0.1 at 3/4 [{d.lr_schedule}]")
    p.add_argument("--width", type=int, default=d.width,
                   help=f"network channels at full resolution (x2 per level, at most x8) [{d.width}]")
    p.add_argument("--blocks", type=int, default=d.blocks, help=f"residual blocks per level [{d.blocks}]")
    p.add_argument("--weights", default=d.weights, metavar="SET", help=f"loss network weight set [{d.weights}]")
    p.add_argument("--save-every", type=int, default=d.save_every,
                   help=f"write the checkpoint every N steps (a crash loses at most these) [{d.save_every}]")
    p.add_argument("--restart", action="store_true", help="start again even if the output exists (replaces it)")
    p.add_argument("--plot", metavar="FILE", help="write the loss curve (PNG) at the end")
    p.add_argument("--device", default="auto", metavar="DEVICE",
                   help="auto (CUDA if available), cpu, cuda or cuda:N [auto]")
    p.add_argument("--weights-dir", metavar="DIR", help="folder with one sub-folder per weight set")
    p.add_argument("--seed", type=seed_arg, default=0, metavar="N",
                   help="seed of the initialisation, crops and noise [0]")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing --plot file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    args._ottex_flags = FLAGS
    opts = TrainOptions(variant=args.variant, size=args.size, style_side=args.style_side, steps=args.steps,
                        batch=args.batch, lr=args.lr, lr_schedule=args.lr_schedule, seed=args.seed, width=args.width,
                        blocks=args.blocks, weights=args.weights, save_every=args.save_every)
    textures = expand_inputs(args.textures, "texture")
    out = Path(args.output)
    if out.resolve() in {Path(t).resolve() for t in textures}:
        raise InputError(f"the output {out} is one of the textures")
    if args.plot:
        check_plot_name(args.plot)
    if args.plot and Path(args.plot).exists() and not args.force:
        raise InputError(f"output exists: {args.plot}", option="overwrite")
    resume = out.exists() and not args.restart
    if resume and not args.quiet:
        step = load_checkpoint(out)["meta"]["step"]
        print(f"ottex: resuming {out} from step {step}", file=sys.stderr)
    meta = None
    try:
        with TqdmProgress(f"ottex train ({args.variant})", disable=args.quiet) as bar:
            meta = train(textures, out, opts, device=args.device, weights_dir=args.weights_dir, resume=resume,
                         callback=bar)
    except InputError as exc:
        if exc.option == "output":  # a checkpoint of another run: say how to start again here
            raise InputError(str(exc).replace("(resume=False)", "(--restart)"), option=exc.option) from None
        raise
    except KeyboardInterrupt:
        if out.exists():
            print(f"ottex: saved {out} at step {load_checkpoint(out)['meta']['step']}; run the same command to "
                  "resume", file=sys.stderr)
        raise
    if not args.quiet:
        print(f"ottex: {out}: {meta['variant']} on {len(meta['textures'])} texture(s), step {meta['step']}, "
              f"{meta.get('seconds_per_step', 0):.3f} s per step ({meta.get('cpu_seconds_per_step', 0):.3f} s of CPU "
              f"time) on {meta['device']}", file=sys.stderr)
    if args.plot:
        history = [{"scale": 0, "size": (opts.size, opts.size), "eval": i + 1, "loss": v}
                   for i, v in enumerate(meta["history"])]
        plot_history(history, args.plot, title=f"ottex train ({meta['variant']}): texture loss",
                     overwrite=args.force)
    return 0
