"""Time of :func:`ottex.ot.argsort` against NumPy's ``argsort`` on the CPU, on the row shapes ottex sorts.

The shapes: a 512 px patch polish's 32 projections of 256 k patches, a 128 px layout scale's 32 of 14 k, a relu2_1
cloud's 64 dimensions at 256 px (65 k positions), three colour channels of a megapixel, and many short rows. Each
case is the median of ``--repeats`` calls after one warm-up, on 1 and on 2 torch threads (:func:`argsort` sorts
rows on as many threads as torch has); prints a Markdown table.

    python benchmarks/sorting.py --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from ottex.ot import argsort

SHAPES = ((32, 262144), (32, 14000), (64, 65536), (3, 1 << 20), (256, 4096))


def median_ms(fn, repeats: int) -> float:  # noqa: ANN001
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per case [7]")
    args = parser.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    print("| rows x values | NumPy argsort, ms | ottex argsort, 1 thread, ms | ottex argsort, 2 threads, ms |")
    print("|---|---|---|---|")
    for shape in SHAPES:
        x = torch.randn(*shape, generator=g)
        a = x.numpy()
        reference = median_ms(lambda a=a: np.argsort(a, axis=-1), args.repeats)
        ours = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            ours.append(median_ms(lambda x=x: argsort(x), args.repeats))
        print(f"| {shape[0]} x {shape[1]} | {reference:.1f} | {ours[0]:.1f} | {ours[1]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
