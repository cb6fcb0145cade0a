"""Peak memory and wall time of whole runs against their output size: the measurements behind
:data:`ottex.methods.cost` 's per-method model (``ottex.methods.cost.RunCost``).

Each case runs ``ottex synth``/``ottex style`` in a fresh process (``--quiet``, the default settings unless
``--steps`` is given for the optimisation methods) and reads its peak resident memory from
``os.wait4`` (the child's own ``ru_maxrss``); the script prints a Markdown table and the least-squares line
``peak = base + bytes_per_pixel * pixels`` of each method.

    python benchmarks/run_cost.py --style graffiti.jpg --sizes 256,512,1024 --methods ot --threads 1
    python benchmarks/run_cost.py --style bricks.png --sizes 256,512 --methods "ot --quality best"

A method may carry flags of its own after its name (``"ot --quality best"``); methods are comma-separated.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_case(args: argparse.Namespace, case: str, size: int, outdir: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (bytes) of one run in a child process (``case``: a method and its own flags)."""
    method, *flags = shlex.split(case)
    cmd = [sys.executable, "-m", "ottex"]
    if args.content:
        cmd += ["style", args.content, args.style]
    else:
        cmd += ["synth", args.style]
    cmd += ["--size", str(size), "--method", method, "--quiet", "--force", "-o",
            str(Path(outdir) / f"{method}_{size}.png"), "--device", "cpu"]
    cmd += args.extra.get(method, []) + flags
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    start = time.perf_counter()
    child = subprocess.Popen(cmd, env=env)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own resource usage (ru_maxrss in KiB on Linux)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if child.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with exit status {child.returncode}")
    return wall, usage.ru_maxrss * 1024.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--style", required=True)
    p.add_argument("--content")
    p.add_argument("--sizes", default="256,512,1024")
    p.add_argument("--methods", default="ot")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", help="--steps for the methods that take it (memory does not depend on it)")
    args = p.parse_args()
    args.extra = {m: ["--steps", args.steps] for m in ("w2", "gatys", "swd", "strotss")} if args.steps else {}
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print("| method | size | megapixels | seconds | peak MB |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as outdir:
        for method in args.methods.split(","):
            points = []
            for size in sizes:
                wall, peak = run_case(args, method, size, outdir)
                pixels = size * size
                points.append((pixels, peak, wall))
                print(f"| {method} | {size} | {pixels / 1e6:.3f} | {wall:.1f} | {peak / 1e6:.0f} |", flush=True)
            n = len(points)
            mx = sum(x for x, _, _ in points) / n
            my = sum(y for _, y, _ in points) / n
            sxx = sum((x - mx) ** 2 for x, _, _ in points)
            slope = sum((x - mx) * (y - my) for x, y, _ in points) / sxx if sxx else 0.0
            print(f"{method}: peak ~ {(my - slope * mx) / 1e6:.0f} MB + {slope:.0f} B/px", flush=True)


if __name__ == "__main__":
    main()
