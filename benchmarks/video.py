"""Temporal consistency of ``ottex video``: the warping error (Lai et al. 2018; ``ottex.video.flow``) of each
temporal mode on synthetic clips with known motion (a pan, a zoom, an object moving over a still photo;
``ottex.video.clips``), beside the input clip's own and the per-frame result's; the per-layer style distance of
the frames (mean over frames; ``ottex.eval.metrics.style_distance_per_layer``, the neutral vgg19-caffe network)
against the per-frame result's; time per frame. Then the speed at ``--speed-size`` px against one ``ottex
style`` of a frame in the same warm process, and a frame strip (input / per-frame / consistent) for
docs/video.md. Everything runs through ``make_video_job`` / ``run_video`` (what ``ottex video`` runs).

    PYTHONPATH=src OTTEX_WEIGHTS=../shared/weights OTTEX_IMAGES=../shared/images OTTEX_OFFLINE=1 \\
        python benchmarks/video.py --strip docs/images/video_strip.jpg

``--chunks N --overlaps 0,2,4`` measures the joins of chunked runs instead (``ottex video --chunks``): each clip
run whole and in N ranges with each overlap (consistent mode, the local executor), the warping error of the frame
pairs a join touches (its fade's, over JOIN_FADE frames or the overlap, and the first after it) against the mean
of the other pairs, and relu1_1's style distance of the faded frames against the others'; beside the join of
``ottex video`` (a cross-fade), the same ranges joined by ``join_pass`` (a warm start over the shared frames) and
cut after the warm-up (the later range from the end of its overlap on):

    python benchmarks/video.py --chunks 2 --overlaps 0,2,4 --size 96 --frames 12
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import torch
from PIL import Image

from ottex.core.resample import resize
from ottex.eval.metrics import style_distance_per_layer
from ottex.image.io import load_image, save_image, to_pil
from ottex.methods.base import get_method
from ottex.video import make_clip, make_video_job, run_video, warping_error, warping_errors
from ottex.video.clips import PAN_STEP, cover, pan_source_size
from ottex.video.io import frame_name
from ottex.video.run import JOIN_FADE, chunk_ranges, clip_jobs, join_frames, join_pass

IMAGES = Path(os.environ.get("OTTEX_IMAGES", Path(__file__).resolve().parents[2] / "shared" / "images"))
#: (label, temporal mode, blend) of each row; None: the mode's default.
MODES = [("per-frame", "per-frame", None), ("blend 0.5", "blend", 0.5), ("consistent (default)", "consistent", None),
         ("consistent, --blend 0", "consistent", 0.0)]


def _glued(kind: str, photo: torch.Tensor, thing: torch.Tensor, style: torch.Tensor, hw: tuple[int, int],
           frames: int, seed: int) -> list[torch.Tensor]:
    """The yardstick's floor: the clip made from the style transfer (``ot``) of the scene (and of the moving
    object), so that the style moves exactly with the scene, each frame resampled once (bilinear) by the clip's
    generator. Its warping error is what a perfectly steady result with this texture's detail scores."""
    method = get_method("ot", "transfer")
    options = method.make_options({}, "transfer")

    def styled(image: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        source = cover(image, shape)  # what the clip's generator samples from
        return method.transfer(source, style, tuple(source.shape[-2:]), options, seed=seed, device="cpu")

    shape = pan_source_size(hw, frames, PAN_STEP) if kind == "pan" else hw
    small = max(64, round(min(hw) * 0.35))  # the object's size in the clip, at least what the encoders take
    return make_clip(kind, styled(photo, shape), hw, frames, thing=styled(thing, (small, small)))[0]


def _frames(folder: Path, n: int) -> list[torch.Tensor]:
    return [load_image(folder / frame_name(i)) for i in range(n)]


def _run(clip: Path, style: Path, out: Path, temporal: str, blend: float | None, size: int | None, seed: int
         ) -> tuple[list[torch.Tensor], float, float]:
    """Frames of one run, seconds per frame (all), seconds per frame after the first."""
    times: list[float] = []
    vjob = make_video_job(clip, style, size=size, output=out, temporal=temporal, blend=blend, seed=seed)
    t0 = time.perf_counter()
    run_video(vjob, device="cpu", on_frame=lambda done, count: times.append(time.perf_counter()))
    n = vjob.stop - vjob.start
    later = (times[-1] - times[0]) / (n - 1) if n > 1 else float("nan")
    return _frames(out, n), (times[-1] - t0) / n, later


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256, help="long side of the clips")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--clips", default="pan,zoom,object")
    ap.add_argument("--content", default="content/golden_gate.jpg")
    ap.add_argument("--thing", default="content/sailboat.jpg", help="the moving object's image")
    ap.add_argument("--style", default="style/brushstrokes.jpg")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--modes", default="0,1,2,3", help="rows of MODES to run (0: per-frame, the reference, first)")
    ap.add_argument("--speed-size", type=int, default=512, help="0: no speed comparison")
    ap.add_argument("--speed-frames", type=int, default=3)
    ap.add_argument("--strip", help="write the frame strip (JPEG) here")
    ap.add_argument("--no-glued", dest="glued", action="store_false",
                    help="leave out the reference row of the style glued to the scene")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--chunks", type=int, default=0, help="measure the joins of runs in this many ranges instead")
    ap.add_argument("--overlaps", default="0,2,4", help="the overlaps of --chunks")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.manual_seed(args.seed)
    root = Path(tempfile.mkdtemp(prefix="ottex-video-"))
    photo, thing = load_image(IMAGES / args.content), load_image(IMAGES / args.thing)
    style = IMAGES / args.style
    style_img = load_image(style)
    hw = (args.size * 3 // 4, args.size)
    if args.chunks:
        _joins(args, photo, thing, style, style_img, hw, root)
        return
    rows, strips = [], {}
    for kind in args.clips.split(","):
        clip, frames = _write_clip(kind, photo, thing, hw, args.frames, root)
        own = warping_error(frames, frames)
        base = None
        for m in map(int, args.modes.split(",")):
            label, temporal, blend = MODES[m]
            outs, per_frame_s, later_s = _run(clip, style, root / f"{kind}_{m}", temporal, blend, None, args.seed)
            we = warping_error(frames, outs)
            sd = [style_distance_per_layer(o, style_img) for o in outs]
            layers = {k: sum(d[k] for d in sd) / len(sd) for k in sd[0]}
            if base is None:
                base = {"we": we, "layers": layers}
            rows.append({"clip": kind, "mode": label, "input_we": own, "we": we, "x_input": we / own,
                         "x_per_frame": we / base["we"], "layers": layers,
                         "layers_vs_per_frame": {k: layers[k] / base["layers"][k] - 1 for k in layers},
                         "s_per_frame": per_frame_s, "s_later_frame": later_s})
            print(json.dumps(rows[-1]), flush=True)
            if kind == "pan" and label in ("per-frame", "consistent (default)"):
                strips[label] = outs
        if base is not None and args.glued:  # the reference: the style fixed to the scene
            outs = _glued(kind, photo, thing, style_img, hw, args.frames, args.seed)
            we = warping_error(frames, outs)
            sd = [style_distance_per_layer(o, style_img) for o in outs]
            layers = {k: sum(d[k] for d in sd) / len(sd) for k in sd[0]}
            rows.append({"clip": kind, "mode": "style glued to the scene (reference)", "input_we": own, "we": we,
                         "x_input": we / own, "x_per_frame": we / base["we"], "layers": layers,
                         "layers_vs_per_frame": {k: layers[k] / base["layers"][k] - 1 for k in layers},
                         "s_per_frame": float("nan"), "s_later_frame": float("nan")})
            print(json.dumps(rows[-1]), flush=True)
        if kind == "pan":
            strips["input"] = frames
    if args.strip and strips:
        _strip(strips, Path(args.strip))
    speed_row = _speed(args, photo, style, style_img, root) if args.speed_size else None
    _table(rows, speed_row, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "speed": speed_row}, indent=1))


def _write_clip(kind: str, photo: torch.Tensor, thing: torch.Tensor, hw: tuple[int, int], count: int, root: Path
                ) -> tuple[Path, list[torch.Tensor]]:
    """A synthetic clip written as a folder of frames under ``root``, and its frames as read back (8 bits)."""
    frames, _ = make_clip(kind, photo, hw, count, thing=thing)
    clip = root / kind
    clip.mkdir()
    for i, f in enumerate(frames):
        save_image(f, clip / frame_name(i))
    return clip, _frames(clip, count)


def _joins(args: argparse.Namespace, photo: torch.Tensor, thing: torch.Tensor, style: Path, style_img: torch.Tensor,
           hw: tuple[int, int], root: Path) -> None:
    """The warping error at the joins of chunked runs against a whole run (consistent mode), and relu1_1's style
    distance of the frames two ranges share against the other frames'."""
    rows = []
    for kind in args.clips.split(","):
        clip, frames = _write_clip(kind, photo, thing, hw, args.frames, root)
        for chunks, overlap in [(1, 0), *((args.chunks, int(k)) for k in args.overlaps.split(","))]:
            out = root / f"{kind}_{chunks}_{overlap}"
            t0 = time.perf_counter()
            vjob = make_video_job(clip, style, output=out, seed=args.seed, chunks=chunks, overlap=overlap,
                                  keep_frames=True)
            run_video(vjob, device="cpu")
            seconds = time.perf_counter() - t0
            ranges = chunk_ranges(0, args.frames, chunks, overlap)
            # pair i is frames (i, i + 1): a join touches the pairs from the one entering its fade to the one
            # leaving it (a hard cut: the one pair across it)
            fade = max(overlap, JOIN_FADE) if chunks > 1 else 0
            seam = {i for a, _ in ranges[1:] for i in range(max(0, a - 1), min(args.frames - 1, a + fade))}
            runs = [("cross-fade", _frames(out, args.frames), seam)]
            if overlap:  # the same ranges joined with the pass of join_pass, and by a cut after the warm-up
                other = root / f"{kind}_{chunks}_{overlap}_pass"
                other.mkdir()
                join_frames(dataclasses.replace(vjob, output=other), clip_jobs(vjob),
                            refine=join_pass(vjob, "cpu"))
                runs.append(("cross-fade + pass", _frames(other, args.frames), seam))
                cut = []
                for t in range(args.frames):
                    a, b = next((a, b) for c, (a, b) in enumerate(ranges) if (a + overlap if c else a) <= t < b)
                    cut.append(load_image(out / ".chunks" / f"{a:06d}-{b:06d}" / frame_name(t - a)))
                runs.append(("cut after the warm-up", cut, {a + overlap - 1 for a, _ in ranges[1:]}))
            shared = {t for a, _ in ranges[1:] for t in range(a, a + fade)}
            for join, outs, pairs in runs:
                errors = warping_errors(frames, outs)
                others = [e for i, e in enumerate(errors) if i not in pairs]
                fine = [style_distance_per_layer(o, style_img)["relu1_1"] for o in outs]
                faded = join.startswith("cross-fade")
                inside = [d for t, d in enumerate(fine) if t in shared and faded]
                outside = [d for t, d in enumerate(fine) if not (t in shared and faded)]
                worst = max((errors[i] for i in pairs), default=float("nan"))
                row = {"clip": kind, "chunks": chunks, "overlap": overlap, "join": join,
                       "we": sum(errors) / len(errors), "join_max": worst, "others_mean": sum(others) / len(others),
                       "seconds": seconds,
                       "relu1_1_x_others": sum(inside) / len(inside) / (sum(outside) / len(outside))
                       if inside else float("nan")}
                row["x_others"] = row["join_max"] / row["others_mean"]
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(f"\n{args.frames} frames, {hw[0]}x{hw[1]} px, style {args.style}, seed {args.seed}, consistent\n")
    print("| clip | run | warping error (all pairs) | at the join (worst pair) | x the other pairs' mean | "
          "relu1_1 of the shared frames, x the others' | s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        run = "whole" if r["chunks"] == 1 else f"{r['chunks']} chunks, overlap {r['overlap']}" + (
            f", {r['join']}" if r["overlap"] else "")
        join = "-" if r["chunks"] == 1 else f"{r['join_max']:.5f}"
        ratio = "-" if r["chunks"] == 1 else f"{r['x_others']:.2f}"
        fade = "-" if r["relu1_1_x_others"] != r["relu1_1_x_others"] else f"{r['relu1_1_x_others']:.2f}"
        print(f"| {r['clip']} | {run} | {r['we']:.5f} | {join} | {ratio} | {fade} | {r['seconds']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"joins": rows}, indent=1))


def _speed(args: argparse.Namespace, photo: torch.Tensor, style: Path, style_img: torch.Tensor, root: Path) -> dict:
    """Speed at --speed-size: one `ottex style` of a frame (warm: a first run is discarded) against the clip."""
    frames, _ = make_clip("pan", photo, (args.speed_size * 3 // 4, args.speed_size), args.speed_frames)
    clip = root / "speed"
    clip.mkdir()
    for i, f in enumerate(frames):
        save_image(f, clip / frame_name(i))
    method = get_method("ot", "transfer")
    method.transfer(resize(frames[0], (96, 128)), style_img, None, {}, seed=args.seed, device="cpu")
    t0 = time.perf_counter()
    method.transfer(load_image(clip / frame_name(0)), style_img, None, {}, seed=args.seed, device="cpu")
    style_s = time.perf_counter() - t0
    speed = {}
    for label, temporal, blend in (MODES[0], MODES[2]):
        _, all_s, later_s = _run(clip, style, root / f"speed_{temporal}", temporal, blend, None, args.seed)
        speed[label] = {"s_per_frame": all_s, "s_later_frame": later_s}
    speed_row = {"size": args.speed_size, "frames": args.speed_frames, "ottex_style_s": style_s, **speed}
    print(json.dumps(speed_row), flush=True)
    return speed_row


def _table(rows: list[dict], speed: dict | None, args: argparse.Namespace) -> None:
    layers = list(rows[0]["layers"])
    print(f"\n{args.frames} frames, {args.size * 3 // 4}x{args.size} px, style {args.style}, seed {args.seed}\n")
    print("| clip | mode | warping error | x input's | x per-frame's | " + " | ".join(
        f"{k} (vs per-frame)" for k in layers) + " | s/frame |")
    print("|---|---|---|---|---|" + "---|" * len(layers) + "---|")
    for r in rows:
        cells = " | ".join(f"{r['layers'][k]:.3f} ({100 * r['layers_vs_per_frame'][k]:+.0f}%)" for k in layers)
        print(f"| {r['clip']} | {r['mode']} | {r['we']:.5f} | {r['x_input']:.1f} | {r['x_per_frame']:.2f} | {cells} "
              f"| {r['s_per_frame']:.2f} |")
    print("\nthe input clips' own warping error: " + ", ".join(
        f"{r['clip']} {r['input_we']:.5f}" for r in rows if r["mode"] == "per-frame"))
    if speed is None:
        return
    s = speed
    print(f"\nspeed at {s['size']} px ({s['frames']} frames): ottex style {s['ottex_style_s']:.1f} s; per-frame "
          f"{s['per-frame']['s_per_frame']:.1f} s/frame; consistent {s['consistent (default)']['s_per_frame']:.1f} "
          f"s/frame ({s['consistent (default)']['s_later_frame']:.1f} s for each frame after the first)")


def _strip(strips: dict[str, list[torch.Tensor]], path: Path, limit: int = 150_000) -> None:
    """Rows input / per-frame / consistent of frames 0, middle, last, three differences of consecutive frames."""
    n = len(strips["input"])
    idx = [0, n // 2, n - 1]
    rows = []
    for key in ("input", "per-frame", "consistent (default)"):
        fr = strips[key]
        hw = strips["input"][0].shape[-2:]
        fr = [resize(f, hw) if f.shape[-2:] != hw else f for f in fr]
        rows.append(torch.cat([fr[i] for i in idx], -1))
    img = to_pil(torch.cat(rows, -2))
    img = img.resize((img.width * 2 // 3, img.height * 2 // 3), Image.LANCZOS)
    for q in (90, 85, 80, 75, 70, 60, 50):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=q)
        if buf.tell() <= limit:
            break
    path.write_bytes(buf.getvalue())
    print(f"wrote {path} ({buf.tell() // 1000} KB, quality {q})")


if __name__ == "__main__":
    main()
