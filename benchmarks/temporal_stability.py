"""Temporal stability of ``ottex batch style`` over video frames: a synthetic camera pan (crops of a photo moved
``--shift`` px a frame), styled with one seed for every frame (what ``ottex batch style frames/ style.jpg`` does)
and, for comparison, with a different seed per frame (with ``--video``, also ``ottex video``'s consistent mode).
Prints the mean change between consecutive frames of the input and of each output sequence
(``ottex.eval.temporal``), and the change between two outputs of the same frame.

    PYTHONPATH=src OTTEX_WEIGHTS=../shared/weights OTTEX_OFFLINE=1 python benchmarks/temporal_stability.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from ottex.core.resample import resize
from ottex.eval.temporal import frame_change, temporal_stability
from ottex.exec.batch import BatchLocal, run_batch
from ottex.exec.local import Job
from ottex.image.io import load_image, save_image

IMAGES = Path(os.environ.get("OTTEX_IMAGES", Path(__file__).resolve().parents[2] / "shared" / "images"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--shift", type=int, default=2)
    ap.add_argument("--content", default="content/golden_gate.jpg")
    ap.add_argument("--style", default="style/zebra.jpg")
    ap.add_argument("--video", action="store_true", help="also ottex video's consistent mode on the same frames")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ottex-temporal-"))
    photo = load_image(IMAGES / args.content)
    s = max(args.size / photo.shape[-2], (args.size + args.shift * (args.frames - 1)) / photo.shape[-1])
    photo = resize(photo, (round(photo.shape[-2] * s), round(photo.shape[-1] * s)))[..., :args.size, :]
    frames = []
    for i in range(args.frames):
        x = i * args.shift
        frames.append(save_image(photo[..., :, x:x + args.size], root / f"frame_{i:04d}.png"))
    style = IMAGES / args.style
    runs = {"same seed": lambda i: 0, "seed per frame": lambda i: i}
    result = {"frames": args.frames, "size": args.size, "shift_px": args.shift, "content": args.content,
              "style": args.style}
    outs = {}
    for name, seed in runs.items():
        out = root / name.replace(" ", "_")
        out.mkdir()
        jobs = [Job("ot", "transfer", style=str(style), content=str(f), outputs=[str(out / f.name)], seed=seed(i))
                for i, f in enumerate(frames)]
        summary = run_batch(jobs, BatchLocal("cpu"))
        assert summary.counts()["failed"] == 0, summary.failed
        outs[name] = [out / f.name for f in frames]
        result[name] = {k: round(v, 4) for k, v in temporal_stability(frames, outs[name]).items()}
    if args.video:  # ottex video's consistent mode on the same frames (needs the video extra)
        from ottex.video import make_video_job, run_video  # noqa: PLC0415

        out = Path(tempfile.mkdtemp(prefix="ottex-temporal-video-"))  # not inside the input folder
        run_video(make_video_job(root, style, output=out, seed=0, overwrite=True), device="cpu")
        outs["ottex video"] = sorted(out.glob("frame_*.png"))
        result["ottex video (consistent)"] = {
            k: round(v, 4) for k, v in temporal_stability(frames, outs["ottex video"]).items()}
    # the same frame styled twice with the same seed (run-to-run determinism)
    again = root / "again.png"
    run_batch([Job("ot", "transfer", style=str(style), content=str(frames[0]), outputs=[str(again)], seed=0)],
              BatchLocal("cpu"))
    result["same frame twice, same seed"] = round(frame_change([outs["same seed"][0], again]), 6)
    print(json.dumps(result))
    keep = os.environ.get("KEEP_FRAMES")
    if keep:
        shutil.copytree(root, keep, dirs_exist_ok=True)
    shutil.rmtree(root)
    if args.video:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
