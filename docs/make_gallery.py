"""Render every picture of README.md and the documentation site, from inputs anyone may redistribute.

    python docs/make_gallery.py                 # all pictures into docs/images/ (a few minutes on 2 CPU cores)
    python docs/make_gallery.py --only tile mix # some of them
    python docs/make_gallery.py --list          # the pictures and the commands that make them

The inputs are written by :func:`write_inputs`: photographs and textures shipped with scikit-image
(``skimage.data``: public domain or CC0, see :data:`CREDITS`) and procedural images drawn here with a seeded
random generator (CC0). No other image is read. Each picture runs the ``ottex`` commands listed in :data:`GALLERY`
(the same lines README.md and the docs show; ``tests/test_docs.py`` checks that they match), in one process with
one torch thread and the default seed 0, then lays the inputs and outputs out with
:func:`ottex.eval.report.contact_sheet` and writes a JPEG (quality 85, at most 150 KB). Rerunning the script with the
same torch build gives the same pictures.

Needs the weights (``$OTTEX_WEIGHTS`` or the cache: ``ottex weights fetch hybrid``) and scikit-image.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
IMAGES = HERE / "images"
MAX_BYTES = 150_000

#: Where each input comes from, and its licence (shown on the docs' gallery page).
CREDITS = {
    "gravel.jpg": "scikit-image `data.gravel()`: CC0Textures Gravel04, CC0",
    "brick.jpg": "scikit-image `data.brick()`: CC0Textures Bricks25, CC0",
    "grass.jpg": "scikit-image `data.grass()`: Grass-01 by linolafett (DeviantArt), CC0",
    "ihc.jpg": "scikit-image `data.immunohistochemistry()`: IHC-stained colonic glands (CMMI), no known copyright "
               "restrictions",
    "hubble.jpg": "scikit-image `data.hubble_deep_field()`: NASA Hubble eXtreme Deep Field, public domain",
    "rocket.jpg": "scikit-image `data.rocket()`: DSCOVR launch by SpaceX, public domain",
    "chelsea.jpg": "scikit-image `data.chelsea()`: Chelsea the cat by Stefan van der Walt, CC0",
    "coffee.jpg": "scikit-image `data.coffee()`: coffee cup by Rachel Michetti, CC0",
    "strokes.jpg": "procedural: coloured brush strokes drawn by this script (seed 0), CC0",
    "tiles.png": "procedural: `ottex.eval.textures.tiles(256)`, CC0",
    "regions.jpg": "procedural: `ihc.jpg` beside `strokes.jpg`, CC0 as its parts",
    "regions_mask.png": "procedural: the two halves of `regions.jpg` in red and blue, CC0",
    "ot_mask.png": "procedural: the letters 'ot' in red on blue, CC0",
    "rocket_mask.png": "procedural: the rocket photo's sky (blue) and the rest (red), CC0",
    "strokes_mask.png": "procedural: the strokes' blue half and yellow half, CC0",
}


# ---------------------------------------------------------------------------------------------------------- inputs
def _skimage(name: str) -> Image.Image:
    from skimage import data  # noqa: PLC0415 - only this script needs scikit-image

    array = getattr(data, name)()
    image = Image.fromarray(array)
    return image.convert("RGB")


def _strokes(size: int = 384, seed: int = 0) -> Image.Image:
    """Brush strokes of a blue-and-yellow palette that follow a swirling flow, on a dark canvas."""
    rng = np.random.default_rng(seed)
    palette = [(28, 60, 140), (52, 104, 190), (96, 160, 220), (235, 200, 60), (245, 150, 40), (240, 236, 210),
               (20, 28, 60), (120, 190, 130)]
    image = Image.new("RGB", (size, size), (18, 24, 48))
    draw = ImageDraw.Draw(image)
    for k in range(1400):
        x, y = rng.uniform(0, size, 2)
        angle = math.sin(x / size * 6.0) * 1.3 + math.cos(y / size * 5.0) * 1.1 + rng.normal(0, 0.15)
        length = rng.uniform(8, 26)
        width = int(rng.integers(3, 8))
        warm = y < size / 2
        choices = [3, 4, 5, 2] if warm else [0, 1, 2, 7]
        if k > 1200:  # the last strokes: highlights
            choices = [5, 2]
        colour = np.array(palette[int(rng.choice(choices))]) + rng.integers(-18, 19, 3)
        dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
        draw.line((x - dx, y - dy, x + dx, y + dy), fill=tuple(int(c) for c in np.clip(colour, 0, 255)),
                  width=width)
    return image.filter(ImageFilter.SMOOTH)


def _ot_mask(size: int) -> Image.Image:
    mask = Image.new("RGB", (size, size), (0, 0, 255))
    draw = ImageDraw.Draw(mask)
    font = ImageFont.load_default(size=int(size * 0.62))
    box = draw.textbbox((0, 0), "ot", font=font)
    x = (size - (box[2] - box[0])) / 2 - box[0]
    y = (size - (box[3] - box[1])) / 2 - box[1]
    draw.text((x, y), "ot", fill=(255, 0, 0), font=font, stroke_width=max(1, size // 28), stroke_fill=(255, 0, 0))
    return mask


def _halves(width: int, height: int, top: tuple[int, int, int], bottom: tuple[int, int, int],
            split: float = 0.5) -> Image.Image:
    mask = Image.new("RGB", (width, height), bottom)
    ImageDraw.Draw(mask).rectangle((0, 0, width, int(height * split)), fill=top)
    return mask


def make_inputs(side: int | None = None) -> dict[str, Image.Image]:
    """The input images by file name; ``side`` (the docs test's small size) resizes each to that long side."""
    from ottex.eval import textures  # noqa: PLC0415 - the procedural textures

    ihc = _skimage("immunohistochemistry").resize((384, 384), Image.LANCZOS)
    strokes = _strokes()
    regions = Image.new("RGB", (768, 384))
    regions.paste(ihc, (0, 0))
    regions.paste(strokes, (384, 0))
    regions_mask = Image.new("RGB", (768, 384), (255, 0, 0))
    ImageDraw.Draw(regions_mask).rectangle((384, 0, 767, 383), fill=(0, 0, 255))
    rocket = _skimage("rocket")
    tiles = textures.tiles(256)
    tiles_image = Image.fromarray((tiles[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))
    inputs = {
        "gravel.jpg": _skimage("gravel"),
        "brick.jpg": _skimage("brick"),
        "grass.jpg": _skimage("grass"),
        "ihc.jpg": ihc,
        "hubble.jpg": _skimage("hubble_deep_field").resize((500, 436), Image.LANCZOS),
        "rocket.jpg": rocket,
        "chelsea.jpg": _skimage("chelsea"),
        "coffee.jpg": _skimage("coffee"),
        "strokes.jpg": strokes,
        "tiles.png": tiles_image,
        "regions.jpg": regions,
        "regions_mask.png": regions_mask,
        "ot_mask.png": _ot_mask(256),
        # the rocket photo: sky above about 40 % of its height (blue), the rest (red); the strokes: blue below
        "rocket_mask.png": _halves(rocket.width, rocket.height, (0, 0, 255), (255, 0, 0), split=0.4),
        "strokes_mask.png": _halves(strokes.width, strokes.height, (255, 0, 0), (0, 0, 255)),
    }
    if side:
        inputs = {name: _fit(image, side, nearest=name.endswith("_mask.png")) for name, image in inputs.items()}
    return inputs


def _fit(image: Image.Image, side: int, nearest: bool = False) -> Image.Image:
    scale = side / max(image.size)
    size = (max(8, round(image.width * scale)), max(8, round(image.height * scale)))
    return image.resize(size, Image.NEAREST if nearest else Image.LANCZOS)


def write_inputs(folder: str | os.PathLike, side: int | None = None) -> list[str]:
    """Write the inputs into ``folder`` (JPEG quality 92, masks as PNG); returns their names."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    inputs = make_inputs(side)
    for name, image in inputs.items():
        image.save(folder / name, quality=92)
    return sorted(inputs)


# --------------------------------------------------------------------------------------------------------- gallery
@dataclass
class Picture:
    """One picture: the commands that make its outputs and how they are laid out (``(caption, file)`` tiles)."""

    name: str
    commands: list[str]
    tiles: list[tuple[str, str]]
    columns: int | None = None
    tile: int = 256
    layout: Callable[[Path, Picture], Image.Image] | None = None
    extra: dict = field(default_factory=dict)


def _tiled(work: Path, picture: Picture) -> Image.Image:
    """The tileable texture repeated 2x2 beside the example (no seam should show)."""
    from ottex.eval.report import contact_sheet  # noqa: PLC0415

    texture = Image.open(work / picture.tiles[1][1]).convert("RGB")
    w, h = texture.size
    grid = Image.new("RGB", (2 * w, 2 * h))
    for dx in (0, w):
        for dy in (0, h):
            grid.paste(texture, (dx, dy))
    items = [(picture.tiles[0][0], work / picture.tiles[0][1]), (picture.tiles[1][0], grid)]
    return contact_sheet(items, tile=picture.tile)


#: Every picture, in README order. Sizes are small (256 px) so that the whole script runs in minutes on a CPU.
GALLERY: list[Picture] = [
    Picture("textures", [
        "ottex synth gravel.jpg --size 256 -o gravel_256.png",
        "ottex synth ihc.jpg --size 256 -o ihc_256.png",
        "ottex synth brick.jpg --size 256 -o brick_256.png",
    ], [("gravel.jpg", "gravel.jpg"), ("synthesised", "gravel_256.png"), ("ihc.jpg", "ihc.jpg"),
        ("synthesised", "ihc_256.png"), ("brick.jpg", "brick.jpg"), ("synthesised", "brick_256.png")],
        columns=6, tile=192),
    Picture("tile", ["ottex synth grass.jpg --size 256 --tile -o grass_tile.png"],
            [("grass.jpg", "grass.jpg"), ("--tile, repeated 2x2", "grass_tile.png")], tile=360, layout=_tiled),
    Picture("style", [
        "ottex style rocket.jpg strokes.jpg --size 256 -o rocket_strokes.png",
        "ottex style chelsea.jpg ihc.jpg --size 256 -o chelsea_ihc.png",
    ], [("rocket.jpg", "rocket.jpg"), ("strokes.jpg", "strokes.jpg"), ("style transfer", "rocket_strokes.png"),
        ("chelsea.jpg", "chelsea.jpg"), ("ihc.jpg", "ihc.jpg"), ("style transfer", "chelsea_ihc.png")],
        columns=6, tile=192),
    Picture("color", [
        "ottex style rocket.jpg strokes.jpg --size 256 --preserve-color -o rocket_strokes_color.png",
        "ottex color coffee.jpg strokes.jpg -o coffee_strokes.png",
    ], [("rocket.jpg", "rocket.jpg"), ("--preserve-color", "rocket_strokes_color.png"),
        ("coffee.jpg", "coffee.jpg"), ("strokes.jpg", "strokes.jpg"), ("ottex color", "coffee_strokes.png")],
        columns=5, tile=192),
    Picture("mix", ["ottex synth ihc.jpg strokes.jpg --mix 0.5 --size 256 -o mix.png"],
            [("ihc.jpg", "ihc.jpg"), ("strokes.jpg", "strokes.jpg"), ("--mix 0.5", "mix.png")]),
    Picture("masks", [
        "ottex synth regions.jpg --style-mask regions_mask.png --target-mask ot_mask.png --size 256 "
        "-o ot_regions.png",
    ], [("regions.jpg", "regions.jpg"), ("regions_mask.png", "regions_mask.png"), ("ot_mask.png", "ot_mask.png"),
        ("result", "ot_regions.png")], columns=4, tile=192),
    Picture("structure", [
        "ottex synth tiles.png --size 256 -o tiles_256.png",
        "ottex synth tiles.png --size 256 --layout off -o tiles_nolayout.png",
        "ottex synth tiles.png --size 256 --quality best -o tiles_best.png",
    ], [("tiles.png", "tiles.png"), ("default (layout auto)", "tiles_256.png"),
        ("--layout off", "tiles_nolayout.png"), ("--quality best", "tiles_best.png")], columns=4, tile=192),
    Picture("methods_synth", [
        "ottex synth ihc.jpg --size 256 --method w2 -o ihc_w2.png",
        "ottex synth ihc.jpg --size 256 --method gatys -o ihc_gatys.png",
        "ottex synth ihc.jpg --size 256 --method swd -o ihc_swd.png",
        "ottex train ihc.jpg -o ihc_po.pt --steps 300 --size 64 --batch 2",
        "ottex synth ihc.jpg --size 256 --method po --model ihc_po.pt -o ihc_po.png",
    ], [("ihc.jpg", "ihc.jpg"), ("ot", "ihc_256.png"), ("w2", "ihc_w2.png"), ("gatys", "ihc_gatys.png"),
        ("swd", "ihc_swd.png"), ("po (300 training steps)", "ihc_po.png")], columns=6, tile=192),
    Picture("methods_style", [
        "ottex style rocket.jpg strokes.jpg --size 256 --method w2 -o rocket_w2.png",
        "ottex style rocket.jpg strokes.jpg --size 256 --method gatys -o rocket_gatys.png",
        "ottex style rocket.jpg strokes.jpg --size 256 --method swd -o rocket_swd.png",
        "ottex style rocket.jpg strokes.jpg --size 256 --method strotss --fast -o rocket_strotss.png",
        "ottex style rocket.jpg strokes.jpg --size 256 --method strotss --fast --content-mask rocket_mask.png "
        "--style-mask strokes_mask.png -o rocket_strotss_guided.png",
    ], [("ot", "rocket_strokes.png"), ("w2", "rocket_w2.png"), ("gatys", "rocket_gatys.png"),
        ("swd", "rocket_swd.png"), ("strotss --fast", "rocket_strotss.png"),
        ("strotss, masks", "rocket_strotss_guided.png")], columns=6, tile=192),
]
#: Pictures whose outputs another picture needs first (the method sheets reuse ot's results).
NEEDS = {"methods_synth": ["textures"], "methods_style": ["style"]}


def _run(command: str, work: Path) -> None:
    from ottex.app.cli import main  # noqa: PLC0415

    argv = shlex.split(command)
    assert argv[0] == "ottex", command
    cwd = os.getcwd()
    os.chdir(work)
    try:
        status = main([*argv[1:], "--force", "--quiet"] if argv[1] != "train" else [*argv[1:], "--quiet"])
    finally:
        os.chdir(cwd)
    if status:
        raise SystemExit(f"make_gallery: '{command}' failed with status {status}")


def save_jpeg(image: Image.Image, path: Path, max_bytes: int = MAX_BYTES) -> int:
    """Write ``image`` as a JPEG of at most ``max_bytes`` (quality 85, lowered if needed); returns its size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for quality in (85, 80, 75, 70, 60, 50):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality, optimize=True)
        if buffer.tell() <= max_bytes:
            break
    path.write_bytes(buffer.getvalue())
    return buffer.tell()


def render(picture: Picture, work: Path, out: Path) -> Path:
    from ottex.eval.report import contact_sheet  # noqa: PLC0415

    for command in picture.commands:
        started = time.perf_counter()
        _run(command, work)
        print(f"  {time.perf_counter() - started:6.1f} s  {command}", flush=True)
    if picture.layout is not None:
        sheet = picture.layout(work, picture)
    else:
        sheet = contact_sheet([(caption, work / file) for caption, file in picture.tiles], tile=picture.tile,
                              columns=picture.columns)
    path = out / f"{picture.name}.jpg"
    size = save_jpeg(sheet, path)
    print(f"wrote {path} ({size // 1000} KB)", flush=True)
    return path


def screenshot(out: Path, work: Path) -> None:
    """The web app's screenshot: ``ottex serve`` on a free port, driven by a headless Chromium through playwright.

    One 128 px texture of ``ihc.jpg`` is made and lands in the gallery; a second one, 256 px, is photographed while
    it forms. Needs the ``web`` extra, playwright and a Chromium binary (``$OTTEX_CHROMIUM``, or
    ``chromium`` on the PATH).
    """
    import shutil  # noqa: PLC0415
    import socket  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only for the screenshot

    binary = os.environ.get("OTTEX_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        raise SystemExit("make_gallery: no Chromium binary for the screenshot (apt-get install chromium)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen([sys.executable, "-m", "ottex", "serve", "--port", str(port), "--workdir",
                               str(work / "serve"), "--device", "cpu"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as play:
            browser = play.chromium.launch(executable_path=binary, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']")
            page.set_input_files("#style-input", str(work / "ihc.jpg"))
            page.wait_for_selector("#style-thumbs .upload img")
            page.fill("#width", "128")
            page.fill("#height", "128")
            page.click("#run")
            page.wait_for_selector("#gallery .card[data-status=done]", timeout=600_000)
            page.fill("#width", "256")
            page.fill("#height", "256")
            page.click("#run")
            page.wait_for_function("() => { const img = document.querySelector('#running .job .preview');"
                                   " return img && !img.hidden && img.complete && img.naturalWidth > 0; }",
                                   timeout=600_000)
            time.sleep(3)
            shot = work / "serve.png"
            page.screenshot(path=str(shot), full_page=False)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    image = Image.open(shot).convert("RGB")
    image.thumbnail((1100, 1100))
    size = save_jpeg(image, out / "web.jpg")
    print(f"wrote {out / 'web.jpg'} ({size // 1000} KB)", flush=True)


def score_methods(work: Path) -> str:
    """A Markdown table of the method pictures' outputs, scored as ``ottex bench`` scores (``vgg19-caffe``
    distances per layer; structure measures for syntheses, the content distance for transfers)."""
    from ottex.eval.bench import score_reference  # noqa: PLC0415

    rows = ["| task | method | relu1_1 | relu2_1 | relu3_1 | style dist. | patch | orientation | autocorr | content |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for picture, task, style, content in (("methods_synth", "synthesis", "ihc.jpg", None),
                                          ("methods_style", "transfer", "strokes.jpg", "rocket.jpg")):
        for caption, file in next(p for p in GALLERY if p.name == picture).tiles:
            if file in (style, content) or not (work / file).exists():
                continue
            record = score_reference(caption, work / file, work / style,
                                     content=None if content is None else work / content)
            layers = record.style_distance_layers
            structure = record.structure or {}
            cells = [task, caption, *(f"{layers[k]:.4f}" for k in ("relu1_1", "relu2_1", "relu3_1")),
                     f"{record.style_distance:.4f}",
                     *(f"{structure[k]:.4f}" if k in structure else "-" for k in ("patch", "orientation", "autocorr")),
                     "-" if record.content_distance is None else f"{record.content_distance:.4f}"]
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="pictures to make (default: all)")
    parser.add_argument("--list", action="store_true", help="print the pictures and their commands")
    parser.add_argument("--work", help="folder for inputs and outputs (default: a temporary one)")
    parser.add_argument("--out", default=str(IMAGES / "gallery"), help="where the JPEGs go [docs/images/gallery]")
    parser.add_argument("--screenshot", action="store_true", help="also the web app's screenshot (docs/images)")
    parser.add_argument("--screenshot-only", action="store_true", help="only the web app's screenshot")
    parser.add_argument("--scores", action="store_true",
                        help="print the method pictures' distances (needs --work with their outputs)")
    args = parser.parse_args(argv)
    if args.list:
        for picture in GALLERY:
            print(f"{picture.name}:")
            for command in picture.commands:
                print(f"    {command}")
        return 0
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)
    if args.scores:
        if not args.work:
            parser.error("--scores needs --work, the folder of an earlier run")
        print(score_methods(Path(args.work)))
        return 0
    names = [] if args.screenshot_only else args.only or [p.name for p in GALLERY]
    args.screenshot = args.screenshot or args.screenshot_only
    wanted = [p for p in GALLERY if p.name in names or any(p.name in NEEDS.get(n, []) for n in names)]
    unknown = set(names) - {p.name for p in GALLERY}
    if unknown:
        parser.error(f"unknown pictures: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        write_inputs(work)
        out = Path(args.out)
        timings = {}
        for picture in wanted:
            started = time.perf_counter()
            render(picture, work, out)
            timings[picture.name] = round(time.perf_counter() - started, 1)
        if args.screenshot:
            screenshot(IMAGES if args.out == str(IMAGES / "gallery") else out, work)
    print(json.dumps(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
