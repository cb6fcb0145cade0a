"""``ottex video``: style transfer of a clip, steady over time (:mod:`ottex.video`)."""

from __future__ import annotations

import argparse
import sys

from ...core.errors import InputError
from ...core.progress import TqdmProgress
from ...exec.batch import BatchProgress
from ...image.color import COLOR_MODES
from ...methods.base import TRANSFER
from ...nn.networks import keep_networks
from ...video.io import VIDEO_SUFFIXES
from ...video.run import DEFAULT_OVERLAP, TEMPORAL_MODES, make_video_job, run_video
from .batch import EXECUTOR_FLAGS, add_executor_options, make_executor
from .common import RUNTIME_FLAGS, add_runtime_options, add_size_options, check_runtime, make_outdir, parse_size
from .options import add_method_options, given_options

#: The flags of the video parameters (for one-line errors).
VIDEO_FLAGS = {"temporal": "--temporal", "blend": "--blend", "fps": "--fps", "frames": "--frames",
               "chunks": "--chunks", "overlap": "--overlap", **EXECUTOR_FLAGS}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "video",
        help="style transfer of a video clip, steady from frame to frame",
        description="Repaint every frame of CLIP with the textures of STYLE, steady over time: each frame after the "
        "first starts from the previous result moved along the clip's optical flow (consistent mode, Optimal "
        "Textures), or is blended with it where the flow is reliable (other methods). Reads and writes "
        f"{', '.join(VIDEO_SUFFIXES)} (PyAV) or a folder of images; keeps the frame rate and copies the audio. "
        "An interrupted run continues from the last frame written. Needs the video extra: pip install "
        "'ottex[video]'.",
        epilog="examples: ottex video walk.mp4 lava.jpg --size 512 -o walk_lava.mp4;  ottex video walk.mp4 "
        "lava.jpg -o walk_lava.mp4 --chunks 8 --overlap 4 --executor ray",
    )
    p.add_argument("clip", metavar="CLIP", help="video file, or a folder of images (frames, sorted by name)")
    p.add_argument("style", metavar="STYLE", nargs="+", help="style image(s); one output per style")
    add_size_options(p, "long side of the output in px, the clip's aspect kept [the clip's]", "the clip")
    p.add_argument("--preserve-color", nargs="?", const="full", default=None,
                   metavar="{" + ",".join(COLOR_MODES) + "}", help="keep the clip's colours (as in ottex style)")
    g = p.add_argument_group("video")
    g.add_argument("--temporal", default="consistent", choices=TEMPORAL_MODES,
                   help="consistent: start each frame from the previous result warped by the optical flow (ot; "
                   "other methods: blend); blend: each frame styled alone, then blended with the previous result "
                   "where the flow is reliable; per-frame: each frame alone (flickers) [consistent]")
    g.add_argument("--blend", metavar="W", help="weight of the previous result where the flow is reliable, 0 to 1 "
                   "[blend: 0.5; consistent: 0 with ot, else 0.5]")
    g.add_argument("--fps", metavar="N", help="frame rate of a folder of frames [25]; a video keeps its own")
    g.add_argument("--frames", metavar="START:STOP", help="only these frames (numbers from 0, STOP excluded)")
    g.add_argument("--keep-frames", action="store_true", help="keep the PNG frames beside a video output")
    c = p.add_argument_group("chunks", "cut the clip into ranges run as separate jobs (in parallel with "
                             "--executor ray), joined without a seam")
    c.add_argument("--chunks", default=1, metavar="N", help="ranges of frames, each one job [1]")
    c.add_argument("--overlap", metavar="N", help="frames each range after the first starts early; over them the "
                   "result cross-fades from the earlier range into the later one; at most the shortest range "
                   f"[{DEFAULT_OVERLAP}, at most half the shortest range]")
    add_executor_options(c)
    add_method_options(p, TRANSFER)
    add_runtime_options(p)
    for action in p._actions:  # -o names a clip here, not an image
        if "-o" in action.option_strings:
            action.help, action.metavar = ("output video (.mp4, .mov, .mkv, .webm) or folder of frames (no suffix) "
                                           "[named from the inputs, in --outdir]", "OUT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """One video job per style, each checked by :func:`make_video_job` (through ``make_job``) before any work."""
    args._ottex_flags = {**getattr(args, "_ottex_flags", {}), **VIDEO_FLAGS, **RUNTIME_FLAGS}
    if args.output and len(args.style) > 1:
        raise InputError(f"-o names one output but there are {len(args.style)} styles; use --outdir for several")
    options, size = given_options(args), parse_size(args)
    check_runtime(args)
    outdir = None if args.output else make_outdir(args.outdir)
    jobs = [make_video_job(args.clip, style, args.method, size=size, options=options, seed=args.seed,
                           preserve_color=args.preserve_color, output=args.output, outdir=outdir,
                           overwrite=args.force, temporal=args.temporal, blend=args.blend, fps=args.fps,
                           frames=args.frames, keep_frames=args.keep_frames, chunks=args.chunks,
                           overlap=args.overlap)
            for style in args.style]
    chunked = jobs[0].chunks > 1
    if not chunked and (args.executor != "local" or args.ray_address or args.workers is not None
                        or args.gpus_per_job is not None):
        raise InputError("--executor and the Ray flags run the ranges of --chunks N (N > 1)")
    executor = make_executor(args) if chunked else None
    try:
        for vjob in jobs:
            _run_one(vjob, args, executor)
    finally:
        if executor is not None:
            executor.close()
            keep_networks(0)  # free them (main() may be called again in this process, e.g. by tests)
    return 0


def _run_one(vjob, args: argparse.Namespace, executor) -> None:  # noqa: ANN001
    from tqdm.auto import tqdm  # noqa: PLC0415 - only when bars are shown

    total = vjob.stop - vjob.start
    chunks = None
    if executor is not None:
        chunks = BatchProgress(vjob.chunks, disable=args.quiet, desc=f"ottex video ({vjob.job.method}), ranges")
    clip_bar = None if args.quiet else tqdm(total=total, desc=f"ottex video ({vjob.job.method})", unit="frame")

    def on_frame(done: int, count: int) -> None:
        if clip_bar is not None:
            clip_bar.update(done - clip_bar.n)

    def factory(index: int) -> TqdmProgress | None:
        return None if args.quiet else TqdmProgress(f"frame {index}", leave=False)

    try:
        out = run_video(vjob, device=args.device, weights_dir=args.weights_dir, callback_factory=factory,
                        on_frame=on_frame, executor=executor, progress=chunks)
    finally:
        if chunks is not None:
            chunks.close()
        if clip_bar is not None:
            clip_bar.close()
    if not args.quiet:
        print(f"wrote {out}", file=sys.stdout)
