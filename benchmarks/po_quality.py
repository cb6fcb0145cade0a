"""Quality of Pseudo Optimizer models against gatys at 256 px (the README's "Pseudo Optimizer / Measured" table).

For each texture: ``gatys`` (default settings) and each PO model make 4 textures (seed 0, one batch); each is
scored with the measuring network ``vgg19-caffe`` (relu1_1-relu3_1), which neither method uses: the mean
``style_distance`` and ``gram_distance`` of the 4 images and the ``diversity`` of the 4, against the style at the
scale both methods use (short side 256 px, as ``ottex bench`` scores). Prints a Markdown table with the ratios to
gatys and the CPU time per image. One torch thread.

    python benchmarks/po_quality.py --model po=zebra.pt --model adapo=style.pt \\
        --texture zebra=trained --texture graffiti="held out" --gatys-dir gatys_cache/

``--gatys-dir`` keeps the gatys batches (``gatys_<texture>.pt``) so that a second run scores them again instead of
optimising for about 100 s of CPU per texture.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import ottex
from ottex.core.pyramid import style_at, style_factor
from ottex.eval.metrics import diversity, gram_distance, style_distance

SIZE = 256


def score(images: torch.Tensor, ref: torch.Tensor) -> tuple[float, float, float]:
    n = images.shape[0]
    return (sum(style_distance(images[i : i + 1], ref) for i in range(n)) / n,
            sum(gram_distance(images[i : i + 1], ref) for i in range(n)) / n,
            diversity(images))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", required=True, metavar="LABEL=CKPT")
    p.add_argument("--texture", action="append", required=True, metavar="PATH_OR_NAME=SPLIT",
                   help="a style image (or a name in --images) and its split, e.g. trained or held out (as given)")
    p.add_argument("--gatys-dir", type=Path, help="cache of the gatys batches")
    p.add_argument("--images", type=Path, default=Path("../shared/images/style"))
    args = p.parse_args()
    torch.set_num_threads(1)
    models = dict(m.split("=", 1) for m in args.model)
    po, gatys = ottex.get_method("po"), ottex.get_method("gatys")
    print("| method | texture | split (as given) | style dist. | x gatys | Gram loss | x gatys | diversity | "
          "x gatys | CPU s / image |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for spec in args.texture:
        name, split = spec.split("=", 1)
        path = Path(name) if Path(name).is_file() else args.images / f"{name}.jpg"
        style = ottex.load_image(path)
        ref = style_at(style, style_factor(style.shape[-2:], (SIZE, SIZE)))
        cache = None if args.gatys_dir is None else args.gatys_dir / f"gatys_{path.stem}.pt"
        c0 = time.process_time()
        if cache is not None and cache.is_file():
            g, g_cpu = torch.load(cache, weights_only=True), float("nan")
        else:
            g = gatys.synthesize(path, (SIZE, SIZE), {}, batch=4, seed=0)
            g_cpu = (time.process_time() - c0) / 4
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                torch.save(g, cache)
        base = score(g, ref)
        print(f"| gatys | {path.stem} | - | {base[0]:.4f} | 1 | {base[1]:.3g} | 1 | {base[2]:.1f} | 1 | {g_cpu:.0f} |")
        for label, ckpt in models.items():
            po.synthesize(path, (SIZE, SIZE), {"model": ckpt}, seed=0)  # warm-up (reads the model)
            c0 = time.process_time()
            out = po.synthesize(path, (SIZE, SIZE), {"model": ckpt}, batch=4, seed=0)
            cpu = (time.process_time() - c0) / 4
            sd, gd, dv = score(out, ref)
            print(f"| {label} | {path.stem} | {split} | {sd:.4f} | {sd / base[0]:.2f} | {gd:.3g} | {gd / base[1]:.2f} "
                  f"| {dv:.1f} | {dv / base[2]:.2f} | {cpu:.2f} |", flush=True)


if __name__ == "__main__":
    main()
