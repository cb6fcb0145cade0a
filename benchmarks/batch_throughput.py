"""Throughput of ``ottex batch``: images per minute with the local executor and with 1 and 2 Ray workers.

Style transfer at 256 px (``ot``, default settings) of N crops of the shared content photos with one style,
each executor on a fresh output folder. Prints one JSON line per executor: wall time of the batch (cluster start
excluded, worker start and network loading included), images per minute, and the sizes of what travels per job.

    PYTHONPATH=src OTTEX_WEIGHTS=../shared/weights OTTEX_OFFLINE=1 python benchmarks/batch_throughput.py --jobs 8
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import tempfile
import time
from pathlib import Path

import torch

from ottex.core.resample import resize
from ottex.exec.batch import BatchLocal, run_batch
from ottex.exec.local import Job
from ottex.image.io import load_image, save_image
from ottex.methods.base import get_method
from ottex.nn.networks import keep_networks

IMAGES = Path(os.environ.get("OTTEX_IMAGES", Path(__file__).resolve().parents[2] / "shared" / "images"))


def make_inputs(folder: Path, count: int, size: int) -> tuple[list[Path], Path]:
    photos = sorted((IMAGES / "content").glob("*.jpg"))
    contents = []
    for i in range(count):
        img = load_image(photos[i % len(photos)])
        s = size / min(img.shape[-2:])
        img = resize(img, (max(size, round(img.shape[-2] * s)), max(size, round(img.shape[-1] * s))))
        contents.append(save_image(img[..., :size, :size], folder / f"c{i:03d}.png"))
    style = load_image(IMAGES / "style" / "zebra.jpg")
    s = size / min(style.shape[-2:])
    style = resize(style, (round(style.shape[-2] * s), round(style.shape[-1] * s)))
    return contents, save_image(style, folder / "style.png")


def jobs_for(contents: list[Path], style: Path, out: Path) -> list[Job]:
    opts = get_method("ot", "transfer").make_options({})
    return [Job("ot", "transfer", style=str(style), content=str(c), outputs=[str(out / f"{c.stem}.png")],
                options=opts, seed=0) for c in contents]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--runs", default="local,ray1,ray2")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the local executor (a Ray worker has "
                    "one per CPU it asks for: 1)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ottex-bench-"))
    contents, style = make_inputs(root, args.jobs, args.size)
    sizes = {"job_pickle_bytes": len(pickle.dumps(jobs_for(contents, style, root)[0])),
             "input_png_bytes": contents[0].stat().st_size, "style_png_bytes": style.stat().st_size}
    for run in args.runs.split(","):
        out = root / run
        out.mkdir()
        jobs = jobs_for(contents, style, out)
        t_start = time.perf_counter()
        if run == "local":
            torch.set_num_threads(args.threads)
            keep_networks(32)  # as ottex batch and the Ray workers do
            ex = BatchLocal("cpu")
            workers = 1
        else:
            import ray  # noqa: PLC0415 - optional

            from ottex.exec.ray_executor import RayExecutor  # noqa: PLC0415 - optional

            workers = int(run[3:])
            src = str(Path(__file__).resolve().parents[1] / "src")
            env = {"PYTHONPATH": src, "OMP_NUM_THREADS": "1",
                   **{k: v for k, v in os.environ.items() if k.startswith("OTTEX_")}}
            ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": env})
            ex = RayExecutor(workers=workers, cpus_per_job=1, device="cpu")
        t0 = time.perf_counter()
        summary = run_batch(jobs, ex)
        wall = time.perf_counter() - t0
        if run != "local":
            ex.close()
            ray.shutdown()
        per_job = [o.seconds for o in summary.outcomes]
        print(json.dumps({"executor": run, "workers": workers, "threads": torch.get_num_threads() if run == "local"
                          else 1, "jobs": len(jobs), "size": args.size,
                          "counts": summary.counts(), "cluster_start_s": round(t0 - t_start, 2),
                          "batch_s": round(wall, 2), "images_per_min": round(60 * len(jobs) / wall, 2),
                          "job_s_median": round(sorted(per_job)[len(per_job) // 2], 2),
                          "cpus": os.cpu_count(), "load1": round(os.getloadavg()[0], 2), **sizes}), flush=True)
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
