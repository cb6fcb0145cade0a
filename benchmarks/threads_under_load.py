"""Wall time of a small run with 1 or 2 torch threads while other processes keep cores busy.

Each case runs ``ottex synth STYLE --size SIZE`` in a fresh process (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` set
to the thread count) while ``busy`` pure-Python spinning processes compete for the CPU, ``--repeats`` times, and
prints a Markdown table of the median and range. On a machine shared with other work the numbers also carry that
work's load: say what else ran.

    python benchmarks/threads_under_load.py --style graffiti.jpg --size 128 --busy 0,1,2 --repeats 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _spin() -> None:  # pragma: no cover - a competing process
    while True:
        pass


def run_once(style: str, size: int, threads: int, out: Path) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "ottex", "synth", style, "--size", str(size), "-q", "--force", "-o", str(out),
           "--device", "cpu"]
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--style", required=True)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--busy", default="0,1,2", help="numbers of competing busy processes")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(f"cpus: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}")
    print("| busy processes | torch threads | median s | min s | max s |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for busy in map(int, args.busy.split(",")):
            spinners = [mp.Process(target=_spin, daemon=True) for _ in range(busy)]
            for s in spinners:
                s.start()
            try:
                for threads in map(int, args.threads.split(",")):
                    times = [run_once(args.style, args.size, threads, Path(tmp) / "out.png")
                             for _ in range(args.repeats)]
                    print(f"| {busy} | {threads} | {statistics.median(times):.1f} | {min(times):.1f} | "
                          f"{max(times):.1f} |", flush=True)
            finally:
                for s in spinners:
                    s.terminate()
                    s.join()


if __name__ == "__main__":
    main()
