"""Where the time and memory of an Optimal Textures synthesis go: seconds and peak RSS per part and resolution.

Wraps the encoders, decoders, feature matching and style statistics with timers and reads the process's peak
resident set size around each call (``/proc/self/status`` ``VmHWM``, reset before each call through
``/proc/self/clear_refs``; Linux only), then prints a Markdown table: one column per resolution of the schedule,
one row per part (full-width VGG-19 levels 2-3, the distilled levels 1, 4, 5, matching, style statistics), and the
peak. README, "Large outputs", shows its output at 4096 px.

    PYTHONPATH=src OTTEX_WEIGHTS=../shared/weights OTTEX_OFFLINE=1 \
        python benchmarks/profile_ot.py --size 4096 --threads 2
"""

from __future__ import annotations

import argparse
import collections
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

import ottex
from ottex.methods import optimal_textures as ot
from ottex.nn import networks

IMAGES = Path(os.environ.get("OTTEX_IMAGES", Path(__file__).resolve().parents[2] / "shared" / "images"))
PARTS = ("VGG-19 convolutions, levels 2-3", "distilled convolutions, levels 1, 4, 5",
         "feature matching (Gaussian maps, sliced OT)", "style statistics")


def _peak_mb() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) // 1024
    return 0


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--style", default=str(IMAGES / "style" / "graffiti.jpg"))
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--weights", default=ot.DEFAULT_WEIGHTS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seconds: dict[tuple[int, str], float] = collections.defaultdict(float)
    peak: dict[int, int] = collections.defaultdict(int)
    scale = {"side": 0, "depth": 0}
    wct = args.weights == "wct-vgg19" or args.weights == "hybrid"

    def timed(fn: Callable, part: Callable[..., str]) -> Callable:
        def inner(*a, **k):  # noqa: ANN002, ANN003, ANN202
            if scale["depth"]:  # inside another timed part (the style statistics' encoders): counted there
                return fn(*a, **k)
            _reset_peak()
            scale["depth"] += 1
            t = time.perf_counter()
            try:
                out = fn(*a, **k)
            finally:
                scale["depth"] -= 1
            seconds[(scale["side"], part(*a))] += time.perf_counter() - t
            peak[scale["side"]] = max(peak[scale["side"]], _peak_mb())
            return out
        return inner

    def net_part(net, *_: object) -> str:  # noqa: ANN001
        return PARTS[0] if wct and net.level in (2, 3) else PARTS[1]

    networks.Encoder.forward = timed(networks.Encoder.forward, net_part)
    networks.Decoder.forward = timed(networks.Decoder.forward, net_part)
    ot._match = timed(ot._match, lambda *a: PARTS[2])
    ot._match_regions = timed(ot._match_regions, lambda *a: PARTS[2])
    ot._scale_targets = timed(ot._scale_targets, lambda *a: PARTS[3])

    def on_event(ev) -> None:  # noqa: ANN001
        if ev.kind == "scale":
            scale["side"] = max(ev.size)

    t0 = time.perf_counter()
    ottex.synthesize(args.style, args.size, seed=0, weights=args.weights, callback=on_event)
    total = time.perf_counter() - t0
    sides = sorted(peak)
    top = max(peak.values())
    print(f"{args.size} px, weights {args.weights}, {args.threads} threads: {total:.1f} s, peak {top} MB")
    print("| part | " + " | ".join(str(s) for s in sides) + " |")
    print("|---|" + "---|" * len(sides))
    for part in PARTS:
        print(f"| {part} | " + " | ".join(f"{seconds[(s, part)]:.1f}" for s in sides) + " |")
    print("| peak MB | " + " | ".join(str(peak[s]) for s in sides) + " |")


if __name__ == "__main__":
    main()
