"""The documentation: README.md and docs/ build into a site in strict mode, and every example in them runs.

- ``mkdocs build --strict`` into a temporary folder (warnings are errors: broken links and anchors, pages left out
  of the navigation, API pages whose objects or docstrings do not resolve). Skipped when mkdocs is not installed
  and ``$CI`` is unset (``pip install -e ".[docs]"``); in CI it fails instead.
- Every fenced ``bash`` and ``python`` block of README.md and docs/**.md runs, in one folder holding the
  gallery's inputs (``docs/make_gallery.py``, 64 px): ``ottex`` lines through :func:`ottex.app.cli.main` in this
  process (a line shown on several pages once), Python blocks one after the other in one namespace per page.
  Sizes come down to 64 px and optimiser
  steps to 2 (:func:`small_argv`, :func:`small_python`), so all of it takes seconds, not the minutes the shown
  sizes would. A fenced block with a ``title="NAME"`` (a CSV manifest, a JSON file) is written to that file first.
  A block that cannot run here (``pip install``, ``ottex serve``, ffmpeg, a Ray cluster) is preceded by
  ``<!-- docs-test: skip REASON -->`` and listed with its reason.
- The gallery's commands (``docs/make_gallery.py``) are the ones README.md shows, and the CLI reference page is
  generated from the parser (``docs/hooks/cli_reference.py``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ottex.app.cli import main as ottex_main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
SMALL = 64  # px: outputs of the examples in the test
INPUTS = 64  # px: long side of the examples' inputs (the layout stage's cost grows with the example's pixels)
STEPS = 2  # optimiser and training steps of the examples in the test

_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)(?P<attrs>[^\n]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                    re.M | re.S)
_SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s+(?P<reason>.+?)\s*-->\s*$")
_TITLE = re.compile(r'title="([^"]+)"')


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    body: str
    title: str | None
    skip: str | None

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a page, with the skip reason of a ``<!-- docs-test: skip ... -->`` line before."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = _SKIP.search(before)
        title = _TITLE.search(match["attrs"])
        body = "\n".join(row[len(match["indent"]):] for row in match["body"].splitlines())
        found.append(Block(page, line, match["lang"], body, title[1] if title else None,
                           skip["reason"] if skip else None))
    return found


def commands(body: str) -> list[list[str]]:
    """The command lines of a shell block (continuation lines joined, comments dropped)."""
    joined = re.sub(r"\\\n", " ", body)
    return [argv for row in joined.splitlines() if (argv := shlex.split(row, comments=True))]


def _small_list(value: str, small: int, unique: bool = False) -> str:
    values = [str(min(int(v), small)) if v.isdigit() else v for v in value.split(",")]
    return ",".join(dict.fromkeys(values) if unique else values)


def small_argv(argv: list[str]) -> list[str]:
    """An ``ottex`` command line at the test's sizes: sides at most 64 px (a width and height pair keeps its
    aspect), optimiser and training steps 2, one bench repeat without warm-up; everything else as written."""
    out = list(argv)
    values = {flag: out[i + 1] for i, flag in enumerate(out[:-1]) if flag.startswith("--")}
    width, height = values.get("--width"), values.get("--height")
    scale = min(1.0, SMALL / max(int(width or 1), int(height or 1)))
    for i, flag in enumerate(out[:-1]):
        value = out[i + 1]
        if flag in ("--size", "--style-side") and value.isdigit():
            out[i + 1] = str(min(int(value), SMALL))
        elif flag in ("--width", "--height") and value.isdigit():
            out[i + 1] = str(max(32, round(int(value) * scale)))
        elif flag == "--sizes":
            out[i + 1] = _small_list(value, SMALL, unique=True)
        elif flag == "--steps":
            out[i + 1] = _small_list(value, STEPS)
        elif flag == "--repeats":
            out[i + 1] = "1"
    command = out[1:3] if out[1:2] == ["batch"] else out[1:2]
    if command[-1:] in (["synth"], ["style"]) and not {"--size", "--width", "--height"} & set(values):
        out += ["--size", str(SMALL)]  # the default, 512 px, would take the test minutes
    method = values.get("--method", "ot")
    if method in ("w2", "gatys", "swd", "strotss") and "--steps" not in values:
        out.append(f"--steps={STEPS}")
    if out[1:2] == ["bench"] and "--warmup" not in values:
        out += ["--warmup", "0"]
    if command[-1:] in (["synth"], ["style"], ["color"], ["train"]) and not {"-f", "--force"} & set(out):
        out.append("--force")  # the pages share one folder: an example may make a file another page made
    if out[1:2] == ["train"]:
        out += [] if "--size" in values else ["--size", str(SMALL)]
        out += [] if "--steps" in values else ["--steps", str(STEPS)]
    return out


def small_python(source: str) -> str:
    """A Python example at the test's sizes: ``size=N`` / ``size=(H, W)`` at most 64 px, ``steps=`` 2."""
    source = re.sub(r"\bsize=(\d+)", lambda m: f"size={min(int(m[1]), SMALL)}", source)
    source = re.sub(r"\bsize=\((\d+), (\d+)\)",
                    lambda m: "size=({}, {})".format(*(max(16, round(int(v) * min(1.0, SMALL / max(
                        int(m[1]), int(m[2]))))) for v in (m[1], m[2]))), source)
    source = re.sub(r"\bsteps=(\d+)", f"steps={STEPS}", source)
    source = re.sub(r'"steps": \([\d, ]+\)', f'"steps": ({STEPS},)', source)
    source = re.sub(r"\bsteps=\([\d, ]+\)", f"steps=({STEPS},)", source)
    return source


def _gallery():
    spec = importlib.util.spec_from_file_location("make_gallery", DOCS / "make_gallery.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_gallery", module)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------------ pure checks
def test_small_argv_scales_sizes_and_steps():
    assert small_argv(["ottex", "synth", "a.jpg", "--size", "1024"]) == ["ottex", "synth", "a.jpg", "--size", "64",
                                                                         "--force"]
    assert small_argv(["ottex", "synth", "a.jpg", "--width", "1920", "--height", "1080"])[3:7] == [
        "--width", "64", "--height", "36"]
    assert small_argv(["ottex", "style", "c", "s", "--method", "w2", "--steps", "100,40"])[7] == "2,2"
    assert small_argv(["ottex", "synth", "a", "--method", "gatys"])[-4:] == ["--size", "64", "--steps=2", "--force"]
    assert small_argv(["ottex", "batch", "style", "c", "s"])[-3:] == ["--size", "64", "--force"]
    assert small_argv(["ottex", "info", "a.png"]) == ["ottex", "info", "a.png"]
    assert small_python("f(x, size=1024, steps=500)") == "f(x, size=64, steps=2)"
    assert small_python("f(size=(512, 1024))") == "f(size=(32, 64))"
    assert small_python('g(steps=(40,), options={"steps": (50, 20)})') == 'g(steps=(2,), options={"steps": (2,)})'


def test_blocks_are_found_with_their_skip_reasons(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("x\n\n```bash\nottex synth a.jpg  # c\n```\n<!-- docs-test: skip runs a server -->\n"
                    "```bash\nottex serve\n```\n  ```csv title=\"m.csv\"\n  a,b\n  ```\n")
    found = blocks(page)
    assert [(b.lang, b.skip, b.title) for b in found] == [("bash", None, None), ("bash", "runs a server", None),
                                                          ("csv", None, "m.csv")]
    assert commands(found[0].body) == [["ottex", "synth", "a.jpg"]] and found[2].body == "a,b"


def test_every_block_has_a_known_language():
    """Fences say what they hold: shell and Python run, the others (text, csv, json, yaml) are data."""
    for page in PAGES:
        for block in blocks(page):
            assert block.lang in ("bash", "python", "text", "csv", "json", "yaml", "toml"), (
                f"{block.where()}: fenced block without a known language ({block.lang!r})")


def test_gallery_commands_are_readme_s():
    """Every command of docs/make_gallery.py is shown in README.md or the gallery page, and every picture is."""
    gallery = _gallery()
    shown = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "README.md", DOCS / "gallery.md"))
    flat = re.sub(r"\\\n\s*", "", shown)
    for picture in gallery.GALLERY:
        assert f"images/gallery/{picture.name}.jpg" in shown, picture.name
        assert (DOCS / "images" / "gallery" / f"{picture.name}.jpg").is_file(), picture.name
        for command in picture.commands:
            assert command in flat, f"{picture.name}: '{command}' is not shown"


def test_committed_pictures_are_small():
    pictures = sorted((DOCS / "images").rglob("*.jpg"))
    assert pictures
    for picture in pictures:
        assert picture.stat().st_size <= 150_000, picture


def test_cli_reference_is_generated_from_the_parser():
    spec = importlib.util.spec_from_file_location("cli_reference", DOCS / "hooks" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert module.MARKER in page and "--tile" not in page  # nothing of the reference is written by hand
    text = module.cli_reference()
    for prog in ("ottex synth", "ottex style", "ottex batch manifest", "ottex weights", "ottex serve"):
        assert f"`{prog}`" in text
    assert "--tile" in text and "--content-strength" in text


# ------------------------------------------------------------------------------------------------ the examples
def _require_skimage() -> None:
    """The examples' inputs come from scikit-image's sample data (the docs extra)."""
    if importlib.util.find_spec("skimage") is None:
        if os.environ.get("CI"):
            pytest.fail('scikit-image is missing (pip install -e ".[docs]")')
        pytest.skip('scikit-image not installed: the inputs of the examples are its sample images '
                    '(pip install -e ".[docs]")')


@pytest.fixture(scope="module")
def docs_folder(tmp_path_factory):
    """One folder for every page's examples, with the gallery's inputs at 64 px, and the command lines run so far:
    a command shown on several pages (the gallery's, in README and docs/gallery.md) runs once. The examples' runs
    share their networks (as ``ottex serve`` does), freed at the end."""
    from ottex.nn.networks import keep_networks

    _require_skimage()
    folder = tmp_path_factory.mktemp("docs")
    _gallery().write_inputs(folder, side=INPUTS)
    keep_networks(16)
    yield folder, set()
    keep_networks(0)


def _runnable_pages() -> list[Path]:
    return [p for p in PAGES if any(b.lang in ("bash", "python") and not b.skip for b in blocks(p))]


@pytest.mark.slow
@pytest.mark.needs_weights
@pytest.mark.parametrize("page", _runnable_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_run(page, docs_folder, monkeypatch, capsys):
    folder, done = docs_folder
    monkeypatch.chdir(folder)
    timings: list[tuple[float, str]] = []
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for block in blocks(page):
        if block.title and block.lang not in ("bash", "python"):
            (folder / block.title).write_text(block.body + "\n", encoding="utf-8")
            continue
        if block.lang not in ("bash", "python") or block.skip:
            continue
        if block.lang == "python":
            started = time.perf_counter()
            try:
                exec(compile(small_python(block.body), block.where(), "exec"), namespace)  # noqa: S102
            except Exception as exc:  # noqa: BLE001 - reported with the block's place
                pytest.fail(f"{block.where()}: {type(exc).__name__}: {exc}")
            timings.append((time.perf_counter() - started, f"python block at {block.where()}"))
            ran += 1
            continue
        for argv in commands(block.body):
            assert argv[0] == "ottex", (f"{block.where()}: '{shlex.join(argv)}' is not an ottex command; mark the "
                                        "block <!-- docs-test: skip REASON --> if it cannot run here")
            small = small_argv(argv)
            if tuple(small) in done:  # shown on an earlier page too, and ran there
                ran += 1
                continue
            started = time.perf_counter()
            status = ottex_main(small[1:])
            err = capsys.readouterr().err
            timings.append((time.perf_counter() - started, shlex.join(small)))
            assert status == 0, f"{block.where()}: '{shlex.join(small)}' exited {status}: {err[-800:]}"
            done.add(tuple(small))
            ran += 1
    assert ran
    with capsys.disabled():
        if os.environ.get("OTTEX_DOCS_TIMES"):  # where the time goes: the slowest examples of the page
            for seconds, what in sorted(timings, reverse=True)[:8]:
                print(f"\n  {seconds:6.1f} s  {what}", end="")


def test_skipped_blocks_say_why():
    """The blocks the test does not run, each with its reason (shown with pytest -rA)."""
    skipped = [(b.where(), b.skip) for p in PAGES for b in blocks(p) if b.skip]
    for where, reason in skipped:
        assert len(reason) > 8, f"{where}: give a reason"
    print("\n".join(f"{where}: {reason}" for where, reason in skipped))


# ------------------------------------------------------------------------------------------------ the site
def test_site_builds_in_strict_mode(tmp_path):
    mkdocs = shutil.which("mkdocs")
    try:
        import material  # noqa: F401
        import mkdocstrings  # noqa: F401
    except ImportError:
        mkdocs = None
    if mkdocs is None:
        if os.environ.get("CI"):
            pytest.fail('mkdocs, mkdocs-material or mkdocstrings is missing (pip install -e ".[docs]")')
        pytest.skip('mkdocs, mkdocs-material or mkdocstrings not installed (pip install -e ".[docs]")')
    path = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": path}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "cli" / "index.html").is_file()
    cli = (tmp_path / "site" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "--content-strength" in cli  # the generated reference is in the built page
