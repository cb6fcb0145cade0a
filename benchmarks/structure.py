"""Structure benchmark: how well syntheses keep stripes, bricks, tiles and grain, on a public texture set.

The set (at least 30 examples, every licence allowing use; nothing is committed or downloaded by ottex):

* ``procedural``: the 10 examples of :mod:`ottex.eval.textures` (stripes at three angles and periods,
  checkerboard, bricks, planks, weave, tiles, dots, glyphs), made by code: CC0.
* ``skimage``: ``brick``, ``grass``, ``gravel`` (CC0, from CC0Textures) and ``text`` (public domain) as shipped
  in the scikit-image wheel (``pip install scikit-image``).
* ``gimp``: the seamless patterns of GIMP (GPL-3+), read from a folder of ``.pat`` files (Debian:
  ``apt-get download gimp-data && dpkg-deb -x gimp-data_*.deb gimp``, then
  ``--gimp gimp/usr/share/gimp/2.0/patterns``); each is tiled to the example size.
* ``shared``: the Optimal Textures replication's textures in ``$OTTEX_IMAGES/style`` (MIT).

Each example gets a category, ``structured`` (straight stripes, bricks, tiles, planks, weaves, grids, text) or
``irregular``. Every method runs on every example (seed 0, ``--size`` px square outputs, examples resized so that
their short side is the output's); every result is scored per layer on the measuring network
(:func:`ottex.eval.metrics.style_distance_per_layer`, ImageNet VGG-19) and by the network-free measures
(:func:`ottex.eval.metrics.structure_scores`), and by the share of it copied from the example
(:func:`ottex.eval.metrics.copied_share`: low distances with a high share are copying, not synthesis). The output:
a JSON record per result, a Markdown table of means per category and method, win counts of the first method
against each other one per measure, and a contact sheet per category (JPEG). External programs run as more methods
(``--command``, as for ``ottex bench``): each is given the example as a temporary PNG and must write its result to
``{output}``; that result is scored like the others, its wall time (the whole command) recorded, and every other
method's win counts against it are given too.
A run is incremental: a result whose record is already in ``--out`` is not run again, so a stopped run resumes.

Example::

    python benchmarks/structure.py --out out/structure --gimp gimp/usr/share/gimp/2.0/patterns \\
        --methods "ot,ot:layout=off" --threads 2 \\
        --command "gpdm=python benchmarks/peers/gpdm.py --repo ../GPDM --threads 2 {style} {size} {output} {seed}"
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import ottex
from ottex.app.cli.common import name_value
from ottex.core.errors import OttexError
from ottex.core.resample import resize
from ottex.eval.bench import COMMAND_PLACEHOLDERS, parse_variant, run_case, variant_options
from ottex.eval.metrics import copied_share, structure_scores, style_distance_per_layer
from ottex.eval.report import contact_sheet
from ottex.eval.textures import procedural_set

#: GIMP patterns of the set: name -> category.
GIMP = {
    "brick": "structured", "burlap": "structured", "parque1": "structured", "parque2": "structured",
    "parque3": "structured", "wood1": "structured", "wood5": "structured", "bluesquares": "structured",
    "sm_squares": "structured", "bark": "structured", "wood2": "structured", "wood3": "structured",
    "pine": "structured", "bluegrid": "structured", "qube1": "structured", "warning": "structured",
    "terra": "structured", "recessed": "structured", "redcube": "structured",
    "corkboard": "irregular", "slate": "irregular", "marble1": "irregular", "leopard": "irregular",
    "rock": "irregular", "stone33": "irregular", "crinklepaper": "irregular", "ground1": "irregular",
    "leather": "irregular", "cracked": "irregular", "granite1": "irregular", "java": "irregular",
}
SKIMAGE = {"brick": "structured", "text": "structured", "grass": "irregular", "gravel": "irregular"}
SHARED = {"zebra": "structured", "pattern-small": "irregular", "lava-small": "irregular",
          "mechanism-large": "irregular", "green-paint-large": "irregular", "graffiti": "irregular"}
PROCEDURAL_CATEGORY = {"dots": "structured", "glyphs": "structured"}  # every procedural example is structured


def read_gimp_pattern(path: Path) -> torch.Tensor:
    """A GIMP ``.pat`` file (big-endian header: size, version, width, height, bytes per pixel, ``GPAT``, name;
    then the pixels) as a ``(1, 3, H, W)`` image."""
    data = path.read_bytes()
    header, _, w, h, depth = struct.unpack(">5I", data[:20])
    pixels = np.frombuffer(data[header : header + w * h * depth], np.uint8).reshape(h, w, depth)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[depth]
    rgb = Image.fromarray(pixels[..., 0] if depth == 1 else pixels, mode).convert("RGB")
    return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1)[None].float() / 255


def tiled(image: torch.Tensor, side: int) -> torch.Tensor:
    """A seamless pattern repeated to cover ``side`` x ``side`` (cropped)."""
    h, w = image.shape[-2:]
    return image.repeat(1, 1, -(-side // h), -(-side // w))[..., :side, :side]


def square(image: torch.Tensor, side: int) -> torch.Tensor:
    """The centre square of an example, resized to ``side``."""
    h, w = image.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return resize(image[..., top : top + s, left : left + s], (side, side))


def texture_set(side: int, gimp: Path | None, images: Path | None) -> dict[str, tuple[str, str, torch.Tensor]]:
    """name -> (category, licence, example) for every source available."""
    out = {f"proc-{k}": (PROCEDURAL_CATEGORY.get(k, "structured"), "CC0 (procedural)", v)
           for k, v in procedural_set(side).items()}
    try:
        import skimage.data  # noqa: PLC0415  (optional: only this benchmark uses it)

        folder = Path(skimage.data.__file__).parent
        for name, cat in SKIMAGE.items():
            img = ottex.load_image(folder / f"{name}.png")
            out[f"sk-{name}"] = (cat, "public domain" if name == "text" else "CC0", square(img, side))
    except ImportError:
        print("scikit-image is not installed: its 4 textures are left out", file=sys.stderr)
    if gimp is not None:
        for name, cat in GIMP.items():
            files = list(gimp.rglob(f"{name}.pat"))
            if files:
                out[f"gimp-{name}"] = (cat, "GPL-3+ (GIMP)", tiled(read_gimp_pattern(files[0]), side))
    if images is not None:
        for name, cat in SHARED.items():
            path = images / "style" / f"{name}.jpg"
            if path.is_file():
                out[f"ot-{name}"] = (cat, "MIT (OptimalTextures)", square(ottex.load_image(path), side))
    return out


def run_method(label: str, example: torch.Tensor, side: int, seed: int) -> tuple[torch.Tensor, float]:
    """One synthesis by a method with options: ``ot``, ``ot:layout=off``, ``swd:steps=200;optimizer=lbfgs``."""
    name, values = parse_variant(label) if ":" in label else (label, {})
    method = ottex.get_method(name, "synthesis")
    options = method.make_options(**variant_options(method, label, values))
    start = time.perf_counter()
    out = method.synthesize(example, (side, side), options, seed=seed)
    return out, time.perf_counter() - start


def run_command(label: str, command: str, example: torch.Tensor, side: int, seed: int) -> tuple[torch.Tensor, float]:
    """One synthesis by an external program (:func:`ottex.eval.bench.run_case`): the example as a temporary PNG
    for ``{style}``; the seconds are the command's wall time."""
    with tempfile.TemporaryDirectory(prefix="ottex-structure-") as tmp:
        style = Path(tmp) / "example.png"
        ottex.save_image(example, style)
        result = run_case(label, style, side, repeats=1, warmup=0, seed=seed, command=command)
    out = torch.from_numpy(result["image"]).permute(2, 0, 1)[None].float() / 255
    return out, result["times"][0]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for images, records, tables and sheets")
    ap.add_argument("--size", type=int, default=256, help="side of the examples and outputs [256]")
    ap.add_argument("--methods", default="ot,ot:layout=off",
                    help="methods with options (METHOD[:key=value;...]), comma-separated; the first is compared "
                    "with each other one")
    ap.add_argument("--command", action="append", default=[], metavar="NAME=CMDLINE",
                    help="an external program run as one more method, named NAME: placeholders "
                    f"{' '.join('{' + n + '}' for n in COMMAND_PLACEHOLDERS if n != 'content')}; it must write a "
                    "PNG to {output} (repeatable)")
    ap.add_argument("--gimp", type=Path, help="folder of GIMP .pat files")
    ap.add_argument("--images", type=Path, default=os.environ.get("OTTEX_IMAGES"), help="ottex test images")
    ap.add_argument("--only", help="comma-separated example names, run in that order (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    commands = dict(name_value(spec, "--command", "NAME=CMDLINE") for spec in args.command)
    for label, cmdline in commands.items():
        if "{output}" not in cmdline:
            ap.error(f"--command {label}: the command line must contain {{output}}")
    methods = args.methods.split(",") + list(commands)
    examples = texture_set(args.size, args.gimp, args.images)
    if args.only:  # in the order given (a run stopped early has done the first ones)
        names = args.only.split(",")
        if missing := [k for k in names if k not in examples]:
            print(f"--only: no example {', '.join(missing)}", file=sys.stderr)
        examples = {k: examples[k] for k in names if k in examples}
    args.out.mkdir(parents=True, exist_ok=True)
    records_path = args.out / "records.jsonl"
    done = set()
    if records_path.exists():
        done = {(r["example"], r["method"]) for r in map(json.loads, records_path.read_text().splitlines())}
    for name, (cat, licence, example) in examples.items():
        ottex.save_image(example, args.out / f"{name}.png", overwrite=True)
        for label in methods:
            if (name, label) in done:
                continue
            if label in commands:
                try:
                    out, seconds = run_command(label, commands[label], example, args.size, args.seed)
                except OttexError as exc:  # a failing peer is reported; the others still run
                    print(f"{name:24s} {label:22s} failed: {exc}", file=sys.stderr, flush=True)
                    continue
            else:
                out, seconds = run_method(label, example, args.size, args.seed)
            ottex.save_image(out[:1], args.out / f"{name}__{_slug(label)}.png", overwrite=True)
            rec = {"example": name, "category": cat, "licence": licence, "method": label, "seconds": seconds,
                   **style_distance_per_layer(out[:1], example), **structure_scores(out[:1], example),
                   "copied": copied_share(out[:1], example)}
            with records_path.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            print(f"{name:24s} {label:22s} {seconds:6.1f}s " + " ".join(
                f"{k}={rec[k]:.4f}" for k in ("relu1_1", "relu2_1", "relu3_1", "patch", "orientation", "autocorr",
                                              "copied")),
                flush=True)
    records = [json.loads(line) for line in records_path.read_text().splitlines()]
    records = [r for r in records if r["example"] in examples and r["method"] in methods]
    report = summary(records, methods, peers=list(commands))
    (args.out / "summary.md").write_text(report)
    print(report)
    for cat in ("structured", "irregular"):
        names = [n for n, (c, _, _) in examples.items() if c == cat]
        items = []
        for n in names:
            items.append((n, args.out / f"{n}.png"))
            items += [(m, args.out / f"{n}__{_slug(m)}.png") for m in methods]
        if items:
            sheet = contact_sheet(items, tile=128, columns=len(methods) + 1, title=f"{cat}: example, " +
                                  ", ".join(methods))
            sheet.save(args.out / f"sheet_{cat}.jpg", quality=80)


MEASURES = ("relu1_1", "relu2_1", "relu3_1", "patch", "orientation", "autocorr")


def summary(records: list[dict], methods: list[str], peers: list[str] | None = None) -> str:
    """Means per category and method, and how often the first method is closer than each other one (and each
    method than each of ``peers``, the external programs)."""
    lines = []
    for cat in ("structured", "irregular", "all"):
        rows = [r for r in records if cat == "all" or r["category"] == cat]
        if not rows:
            continue
        n = len({r["example"] for r in rows})
        lines += [f"\n**{cat}** ({n} examples): means (lower is closer to the example)\n",
                  "| method | seconds | " + " | ".join(MEASURES) + " | copied |", "|---" * (len(MEASURES) + 3) + "|"]
        for m in methods:
            mine = [r for r in rows if r["method"] == m]
            if mine:
                cells = [f"{np.mean([r[k] for r in mine]):.4f}" for k in MEASURES]
                copied = [r["copied"] for r in mine if "copied" in r]  # records of earlier runs may lack it
                cells.append("-" if not copied else f"{np.mean(copied):.2f}" if len(copied) == len(mine)
                             else f"{np.mean(copied):.2f} ({len(copied)} of {len(mine)})")
                lines.append(f"| {m} | {np.mean([r['seconds'] for r in mine]):.1f} | " + " | ".join(cells) + " |")
        by = {(r["example"], r["method"]): r for r in rows}
        compared = [(methods[0], other) for other in methods[1:]]
        compared += [(m, p) for p in peers or [] for m in methods[1:] if m not in (peers or []) and m != p]
        for first, other in compared:
            pairs = [(by[(e, first)], by[(e, other)]) for e in {r["example"] for r in rows}
                     if (e, first) in by and (e, other) in by]
            if pairs:
                wins = [sum(a[k] < b[k] for a, b in pairs) for k in MEASURES]
                lines.append(f"\n{first} closer than {other} on (of {len(pairs)}): " +
                             ", ".join(f"{k} {w}" for k, w in zip(MEASURES, wins)))
    return "\n".join(lines) + "\n"


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label).strip("_")


if __name__ == "__main__":
    main()
