"""Page loads of ``ottex serve`` while 20 clients run 512 px jobs, and the server's memory across rounds.

Runs the scenario of ``tests/web_load_scenario.py`` (the server in its own process, 20 clients that upload, submit
and follow a run of the test method "sleepy" while the page's five parts are loaded one after the other) for
``--rounds`` rounds on one server and prints a Markdown table: per round, how many page loads happened while a
run went on, their median, 95th percentile and slowest time, the server's resident memory after the round, and the
load average. On a machine shared with other work the times carry that work's load: say what else ran.

    python benchmarks/web_load.py --rounds 4
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from web_load_scenario import CLIENTS, one_round, rss_mb, serve  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=4, help="rounds of 20 runs on one server (default 4)")
    args = p.parse_args()
    print("| round | runs done | page loads during runs | median ms | 95th percentile ms | slowest ms "
          "| server RSS MB after | load average |\n|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp)) as (proc, url):
        rss = rss_mb(proc.pid)
        print(f"| start | | | | | | {rss:.0f} | {os.getloadavg()[0]:.1f} |")
        for r in range(1, args.rounds + 1):
            results, errors, times = one_round(url)
            if errors:
                sys.exit(f"round {r}: {errors[0]}")
            times.sort()
            done = sum(v["status"] == "done" for v in results.values())
            ms = [1000 * times[i] for i in (len(times) // 2, int(0.95 * len(times)), -1)] if times else [0.0] * 3
            print(f"| {r} | {done} of {CLIENTS} | {len(times)} | {ms[0]:.0f} | {ms[1]:.0f} | {ms[2]:.0f} "
                  f"| {rss_mb(proc.pid):.0f} | {os.getloadavg()[0]:.1f} |")


if __name__ == "__main__":
    main()
