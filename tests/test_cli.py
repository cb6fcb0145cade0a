"""The ottex command: outputs, naming, refusal to clobber, one-line errors with non-zero exit."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ottex.app.cli import main

pytestmark = pytest.mark.needs_weights

FAST = ["--size", "48", "--passes", "1", "--levels", "3,2,1", "-q"]


@pytest.fixture()
def style(tmp_path, images_dir):
    p = tmp_path / "zebra.jpg"
    Image.open(images_dir / "style" / "zebra.jpg").resize((64, 64)).save(p)
    return p


def test_synth_auto_name_and_no_clobber(tmp_path, style, capsys):
    assert main(["synth", str(style), *FAST, "--outdir", str(tmp_path)]) == 0
    (out,) = tmp_path.glob("zebra_synth_48x48_sort_s0_*.png")  # FAST's settings: a settings hash in the name
    assert Image.open(out).size == (48, 48)
    mtime = out.stat().st_mtime_ns
    assert main(["synth", str(style), *FAST, "--outdir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("ottex: error: output exists") and "--force" in err[-1]
    assert out.stat().st_mtime_ns == mtime
    assert main(["synth", str(style), *FAST, "--outdir", str(tmp_path), "--force"]) == 0


def test_synth_explicit_output_batch_and_size(tmp_path, style):
    o = tmp_path / "tex.png"
    assert main(["synth", str(style), "--width", "64", "--height", "32", "--passes", "1", "--batch", "2",
                 "-q", "-o", str(o)]) == 0
    assert sorted(p.name for p in tmp_path.glob("tex_*.png")) == ["tex_0.png", "tex_1.png"]
    assert Image.open(tmp_path / "tex_1.png").size == (64, 32)


def test_never_overwrites_an_input(tmp_path, style, capsys):
    before = style.read_bytes()
    assert main(["synth", str(style), *FAST, "-o", str(style), "--force"]) == 1
    assert "is one of the inputs" in capsys.readouterr().err
    assert style.read_bytes() == before


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16"])
def test_odd_image_modes_are_converted(tmp_path, style, mode):
    img = Image.open(style)
    conv = img.convert("L").convert("I;16") if mode == "I;16" else img.convert(mode)
    p = tmp_path / f"in_{mode.replace(';', '')}.png"
    conv.save(p)
    assert main(["synth", str(p), *FAST, "-o", str(tmp_path / "o.png")]) == 0


@pytest.mark.parametrize(
    "args,message",
    [
        (["synth", "{missing}"], "image not found"),
        (["synth", "{corrupt}"], "not an image file"),
        (["synth", "{style}", "--size", "0"], "must be positive"),
        (["synth", "{style}", "--size", "64", "--width", "32"], "either --size or --width"),
        (["synth", "{style}", "--weights", "nope"], "unknown weight set"),
        (["synth", "{style}", "--levels", "1,9"], "--levels"),
        (["synth", "{style}", "--outdir", "{style}"], "is a file, not a folder"),
    ],
)
def test_errors_are_one_line(tmp_path, style, capsys, args, message):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG garbage")
    fill = {"missing": str(tmp_path / "nope.png"), "corrupt": str(corrupt), "style": str(style)}
    argv = [a.format(**fill) for a in args] + ["-q", "--outdir", str(tmp_path)] * ("--outdir" not in args)
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ottex: error:") and message in err[0]
    assert not list(tmp_path.glob("*synth*"))  # no partial output


def test_outdir_is_created_for_synth_and_style(tmp_path, style, images_dir):
    """A fresh --outdir (nested) is created, for a batch of textures and for a folder x styles."""
    out = tmp_path / "out" / "synth"
    assert main(["synth", str(style), *FAST, "--batch", "2", "--outdir", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())  # FAST's settings and the batch: a settings hash in the name
    assert len(names) == 2 and all(re.fullmatch(r"zebra_synth_48x48_sort_s0_[0-9a-f]{6}_[01]\.png", n) for n in names)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.open(images_dir / "content" / "bridge.jpg").resize((48, 32)).save(photos / "bridge.jpg")
    lava = tmp_path / "lava.jpg"
    Image.open(images_dir / "style" / "lava-small.jpg").resize((48, 48)).save(lava)
    out = tmp_path / "out" / "style"
    assert main(["style", str(photos), str(lava), str(style), "--passes", "1", "--levels", "3,2,1", "-q",
                 "--outdir", str(out)]) == 0
    assert len(list(out.glob("bridge_*_style_*.png"))) == 2


def test_missing_output_folder_is_worded_alike(tmp_path):
    """The library and the command line call it the same: "output folder"."""
    from ottex.core.errors import ImageError
    from ottex.image.io import save_image

    with pytest.raises(ImageError, match="output folder does not exist"):
        save_image(torch.zeros(1, 3, 8, 8), tmp_path / "no" / "x.png")


def test_missing_weights_error(tmp_path, style, capsys, monkeypatch):
    monkeypatch.setenv("OTTEX_WEIGHTS", str(tmp_path / "noweights"))
    monkeypatch.setenv("OTTEX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OTTEX_OFFLINE", "1")
    assert main(["synth", str(style), *FAST, "--outdir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "missing weight file cd16x/encoder3.pth" in err and "noweights" in err and "https://" in err


@pytest.mark.slow
def test_console_script_help_and_weights_list(weights_dir):
    exe = shutil.which("ottex")
    cmd = [exe] if exe else [sys.executable, "-m", "ottex"]
    out = subprocess.run([*cmd, "synth", "--help"], capture_output=True, text=True, check=True).stdout
    assert "--style-scale" in out and "--weights-dir" in out
    res = subprocess.run([*cmd, "weights", "list", "--weights-dir", str(weights_dir)], capture_output=True,
                         text=True, check=True)
    assert "cd16x" in res.stdout and "10/10" in res.stdout


# ---------------------------------------------------------------------------------------------- renamed flags, hints


@pytest.fixture()
def files(tmp_path, images_dir):
    s, c = tmp_path / "lava.png", tmp_path / "bridge.png"
    Image.open(images_dir / "style" / "lava-small.jpg").resize((48, 48)).save(s)
    Image.open(images_dir / "content" / "bridge.jpg").resize((48, 32)).save(c)
    return s, c


def _pixels(path):
    return np.asarray(Image.open(path))


@pytest.mark.parametrize("args", [
    ["synth", "{style}", "--iterations", "2"],
    ["style", "{style}", "{style}", "--method", "gatys", "--iters", "3"],
    ["synth", "{style}", "--method", "gatys", "--loss-net", "vgg19-caffe"],
    ["color", "{style}", "{style}", "--iterations", "3"],
])
def test_the_0_1_flag_spellings_are_gone(style, capsys, args):
    """``--iters``, ``--iterations`` and ``--loss-net`` were kept for one release (CHANGELOG.md); ``--measure`` is
    now the abbreviation argparse allows of ``--measure-weights``."""
    with pytest.raises(SystemExit) as exc:
        main([a.format(style=style) for a in args] + ["-q"])
    assert exc.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


def test_cli_adds_flags_to_library_errors(tmp_path, files, capsys, monkeypatch):
    style, _ = files
    out = tmp_path / "o.png"
    out.write_bytes(b"taken")
    assert main(["color", str(style), str(style), "-q", "-o", str(out)]) == 1
    assert capsys.readouterr().err.strip() == f"ottex: error: output exists: {out} (use --force to overwrite)"
    monkeypatch.setenv("OTTEX_WEIGHTS", str(tmp_path / "none"))
    monkeypatch.setenv("OTTEX_CACHE", str(tmp_path / "cache"))
    assert main(["synth", str(style), "--size", "32", "-q", "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err.strip()
    assert "missing weight file" in err and "point --weights-dir or $OTTEX_WEIGHTS at" in err
    assert "weights_dir" not in err and "(or pass --weights-dir DIR)" not in err  # the flag, said once


# ---------------------------------------------------------------------------------------------- before any work


def _unwritable_folder(tmp_path):
    """A folder where no file can be created: read-only permissions, or (for root, whom those do not stop) a
    read-only system folder."""
    d = tmp_path / "read-only"
    d.mkdir()
    d.chmod(0o555)
    for candidate in (d, Path("/sys"), Path("/proc/sys")):
        try:
            fd, name = tempfile.mkstemp(dir=candidate)
        except OSError:
            return candidate
        os.close(fd)
        os.unlink(name)
    pytest.skip("no unwritable folder on this machine")


def test_unwritable_output_is_refused_before_any_work(tmp_path, style, capsys, monkeypatch):
    import ottex.app.cli.color
    import ottex.methods.optimal_textures as ot
    import ottex.methods.optimization as opt

    def computed(*args, **kwargs):
        raise AssertionError("the run started before the output folder was checked")

    monkeypatch.setattr(ot, "_run_schedule", computed)
    monkeypatch.setattr(opt, "_run", computed)
    monkeypatch.setattr(ottex.app.cli.color, "color_transfer", computed)
    folder = _unwritable_folder(tmp_path)
    for argv in (["synth", str(style), *FAST, "-o", str(folder / "x.png")],
                 ["synth", str(style), *FAST, "--outdir", str(folder)],
                 ["color", str(style), str(style), "-q", "--outdir", str(folder)],
                 ["synth", str(style), "--size", "32", "--method", "gatys", "--steps", "1", "-q",
                  "--plot", str(folder / "loss.png"), "-o", str(tmp_path / "x.png")]):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"ottex: error: cannot write to output folder {folder}"), err


@pytest.mark.parametrize("device", ["tpu", "meta", "xla", "cuda:x", "cuda:99"])
def test_unusable_device_is_one_line(tmp_path, style, capsys, device):
    assert main(["synth", str(style), *FAST, "--device", device, "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ottex: error: --device") and device in err[0], err
    assert not (tmp_path / "x.png").exists()


_CTRL_C_AT_IMPORT = """
import builtins, sys
real_import = builtins.__import__
def interrupted(name, *args, **kwargs):
    if name == "torch":
        raise KeyboardInterrupt  # Ctrl-C while the command starts (torch takes the longest to import)
    return real_import(name, *args, **kwargs)
builtins.__import__ = interrupted
from ottex.app.cli import main  # what the console script does
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_during_start_up_is_one_line(tmp_path, style):
    res = subprocess.run([sys.executable, "-c", _CTRL_C_AT_IMPORT, "synth", str(style), "-o", str(tmp_path / "x.png")],
                         capture_output=True, text=True)
    assert res.returncode == 130 and res.stderr == "ottex: interrupted\n", res.stderr


_CTRL_C_SIGNAL_IN_IMPORT = """
import builtins, signal, sys
real_import = builtins.__import__
def interrupted(name, *args, **kwargs):
    if name == "torch" and not getattr(interrupted, "done", False):
        interrupted.done = True
        try:  # a real SIGINT in the middle of an import whose code catches what it raises, as seen in numpy's
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            if sys.argv[1] == "convert":
                raise ImportError("cannot load module more than once per process") from None
    return real_import(name, *args, **kwargs)
builtins.__import__ = interrupted
from ottex.app.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("how", ["swallow", "convert"])
def test_ctrl_c_signal_inside_an_import_is_held_until_the_imports_are_done(tmp_path, style, how):
    """A Ctrl-C that an import swallowed let the command run on (exit 0, output written); one it turned into an
    ImportError gave a traceback: both seen in an audit at about 0.3 s after the start."""
    out = tmp_path / "x.png"
    res = subprocess.run([sys.executable, "-c", _CTRL_C_SIGNAL_IN_IMPORT, how, "synth", str(style), "--size", "32",
                          "--passes", "1", "-o", str(out)], capture_output=True, text=True)
    assert res.returncode == 130 and res.stderr == "ottex: interrupted\n", res.stderr
    assert not out.exists()


# ---------------------------------------------------------------------------------------------- settings checked


def test_width_or_height_alone_keeps_the_input_aspect(tmp_path, images_dir):
    wide = tmp_path / "wide.png"
    Image.open(images_dir / "style" / "zebra.jpg").resize((96, 48)).save(wide)
    fast = ["--passes", "1", "--levels", "3,2,1", "-q"]
    assert main(["synth", str(wide), "--width", "64", *fast, "-o", str(tmp_path / "w.png")]) == 0
    assert Image.open(tmp_path / "w.png").size == (64, 32)  # the example's 2:1, not a square
    assert main(["synth", str(wide), "--height", "24", *fast, "-o", str(tmp_path / "h.png")]) == 0
    assert Image.open(tmp_path / "h.png").size == (48, 24)
    content = tmp_path / "photo.png"
    Image.open(images_dir / "content" / "bridge.jpg").resize((48, 32)).save(content)
    assert main(["style", str(content), str(wide), "--width", "36", *fast, "-o", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").size == (36, 24)  # the content's 3:2
    assert main(["style", str(content), str(wide), "--width", "40", "--height", "40", *fast,
                 "-o", str(tmp_path / "s2.png")]) == 0
    assert Image.open(tmp_path / "s2.png").size == (40, 40)  # both given: exactly that


@pytest.mark.parametrize("args,message", [
    (["style", "{content}", "{style}", "--content-strength", "50"], "--content-strength: content strength must be "
     "between 0 and 2"),
    (["synth", "{style}", "--weights-dir", "{missing}"], "--weights-dir {missing} is not a folder"),
    (["synth", "{tiny}"], "style example is 1x1 px: too small to take a texture from (at least 8 px a side)"),
    (["style", "{content}", "{tiny}"], "style example is 1x1 px"),
    (["style", "{tiny}", "{style}"], "content is 1x1 px"),
    (["synth", "{tiny}", "--method", "gatys"], "style example is 1x1 px"),
])
def test_settings_are_checked_before_any_work(tmp_path, style, capsys, args, message):
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1), (200, 30, 30)).save(tiny)
    content = tmp_path / "photo.png"
    Image.open(style).resize((48, 32)).save(content)
    fill = {"style": str(style), "content": str(content), "tiny": str(tiny), "missing": str(tmp_path / "nowhere")}
    argv = [a.format(**fill) for a in args] + ["--size", "32", "-q", "-o", str(tmp_path / "out.png")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ottex: error:") and message.format(**fill) in err[0], err
    assert not (tmp_path / "out.png").exists()


def test_plot_without_matplotlib_is_refused_before_any_work(tmp_path, style, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    out = tmp_path / "tex.png"
    assert main(["synth", str(style), "--method", "gatys", "--steps", "1", "--size", "32", "-q", "-o", str(out),
                 "--plot", str(tmp_path / "loss.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--plot needs matplotlib" in err[0] and 'pip install "ottex[plot]"' in err[0], err
    assert not out.exists()


# ---------------------------------------------------------------------------------------------- names and settings


@pytest.mark.slow
def test_output_names_differ_whenever_the_settings_do(tmp_path, style):
    """Each setting of the issue's list gives its own automatic name (a short hash of the settings); default
    settings keep the plain name."""
    other = tmp_path / "lava.png"
    Image.open(style).transpose(Image.Transpose.ROTATE_90).save(other)
    base = ["synth", str(style), "--size", "32", "-q", "--outdir", str(tmp_path / "out")]
    runs = [[], ["--style-scale", "0.5"], ["--passes", "2"], ["--passes", "3"], ["--rotations", "1"],
            ["--weights", "cd16x"], ["--levels", "3,2,1"], ["--batch", "2"]]
    mix = ["synth", str(style), str(other), "--mix", "0.3", "--size", "32", "-q", "--outdir", str(tmp_path / "out")]
    seen: set[str] = set()
    for argv in [base + extra for extra in runs] + [mix, [*mix, "--mix-variation", "0.2"]]:
        assert main(argv) == 0, argv
        new = {p.name for p in (tmp_path / "out").iterdir()} - seen
        assert new and not new & seen, argv
        seen |= new
    assert "zebra_synth_32x32_sort_s0.png" in seen


def test_settings_are_recorded_in_the_png_and_reproduce_it(tmp_path, style, capsys):
    from ottex import __version__
    from ottex.image.io import read_settings

    out = tmp_path / "tex.png"
    assert main(["synth", str(style), "--width", "40", "--height", "32", "--passes", "2", "--no-pca", "--seed", "3",
                 "-q", "-o", str(out)]) == 0
    rec = read_settings(out)
    assert rec["ottex"] == __version__ and rec["method"] == "ot" and rec["task"] == "synthesis"
    assert rec["seed"] == 3 and rec["size"] == [32, 40] and rec["options"]["passes"] == [2]
    assert rec["options"]["pca"] is False and rec["inputs"]["style"] == str(style)
    assert main(["info", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    (command,) = [line.split(": ", 1)[1] for line in lines if line.startswith("reproduce: ")]
    argv = shlex.split(command)
    assert argv[0] == "ottex" and argv[argv.index("-o") + 1] == str(out)
    argv[argv.index("-o") + 1] = str(tmp_path / "again.png")
    assert main([*argv[1:], "-q"]) == 0
    assert np.array_equal(_pixels(out), _pixels(tmp_path / "again.png"))
    content = tmp_path / "photo.png"
    Image.open(style).resize((48, 32)).save(content)
    styled = tmp_path / "styled.png"
    assert main(["style", str(content), str(style), "--size", "32", "--passes", "1", "--preserve-color", "-q",
                 "-o", str(styled)]) == 0
    rec = read_settings(styled)
    assert rec["task"] == "transfer" and rec["inputs"]["content"] == str(content) and rec["preserve_color"] == "full"
    assert main(["info", str(styled), str(content)]) == 1  # the photo has no settings: said on one line
    captured = capsys.readouterr()
    assert "--preserve-color full" in captured.out and f"{content}: no ottex settings recorded" in captured.err


def test_corrupt_weight_file_is_one_line_and_no_output(tmp_path, style, weights_dir, capsys):
    shutil.copytree(weights_dir / "cd16x", tmp_path / "w" / "cd16x")
    (tmp_path / "w" / "cd16x" / "decoder1.pth").write_bytes(os.urandom(3220))
    out = tmp_path / "x.png"
    assert main(["synth", str(style), *FAST, "--weights", "cd16x", "--weights-dir", str(tmp_path / "w"),
                 "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "decoder1.pth is corrupt" in err[0] and not out.exists(), err


def test_style_batch_makes_one_variation_per_seed(tmp_path, style):
    content = tmp_path / "photo.png"
    Image.open(style).resize((48, 32)).save(content)
    fast = ["--size", "32", "--passes", "1", "--levels", "3,2,1", "-q"]
    assert main(["style", str(content), str(style), *fast, "--batch", "2", "--seed", "4", "--outdir",
                 str(tmp_path / "out")]) == 0
    a, b = sorted((tmp_path / "out").iterdir())
    assert "_s4_" in a.name and "_s5_" in b.name and not np.array_equal(_pixels(a), _pixels(b))
    assert main(["style", str(content), str(style), *fast, "--batch", "2", "-o", str(tmp_path / "v.png")]) == 0
    assert (tmp_path / "v_0.png").is_file() and (tmp_path / "v_1.png").is_file()


def test_intermediate_images_are_written_next_to_the_output(tmp_path, style, capsys):
    out = tmp_path / "tex.png"
    assert main(["synth", str(style), "--size", "128", "--scales", "2", "--passes", "1", "--levels", "2,1",
                 "--save-scales", "--save-every", "3", "-q", "-o", str(out)]) == 0
    names = sorted(p.name for p in tmp_path.glob("tex*"))
    assert names == ["tex.png", "tex_scale1of2_64x64.png", "tex_scale2of2_128x128.png", "tex_step3.png"]
    assert Image.open(tmp_path / "tex_scale1of2_64x64.png").size == (64, 64)
    opt = tmp_path / "opt.png"
    assert main(["synth", str(style), "--method", "gatys", "--size", "32", "--steps", "4", "--save-every", "2",
                 "-q", "-o", str(opt)]) == 0
    assert (tmp_path / "opt_step2.png").is_file() and (tmp_path / "opt_step4.png").is_file()
    assert main(["synth", str(style), "--method", "gatys", "--size", "32", "--steps", "4", "--save-every", "2",
                 "-q", "-o", str(tmp_path / "again.png")]) == 0
    (tmp_path / "third_step2.png").write_bytes(b"taken")
    assert main(["synth", str(style), "--method", "gatys", "--size", "32", "--steps", "4", "--save-every", "2",
                 "-q", "-o", str(tmp_path / "third.png")]) == 1  # an intermediate would clobber a file
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "third_step2.png" in err[0] and not (tmp_path / "third.png").exists()


def test_version(capsys):
    from ottex import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"ottex {__version__}"


# ---------------------------------------------------------------------------------------------- command-line syntax


@pytest.mark.parametrize("args,message", [
    (["synth", "{style}", "--method", "nope"], "ottex synth: argument --method: invalid choice: 'nope'"),
    (["color", "{style}", "{style}", "--rotations", "abc"], "ottex color: argument --rotations: invalid int value"),
    (["style", "{style}", "{style}", "--method", "w2", "--tile"],
     "ottex style: unrecognized arguments: --tile (see 'ottex style --help')"),
    (["color", "{style}", "{style}", "--size", "64"], "ottex color: unrecognized arguments: --size 64"),
    (["batch", "synth", "{style}", "--bogus"], "ottex batch synth: unrecognized arguments: --bogus"),
    (["nope"], "argument COMMAND: invalid choice: 'nope'"),
])
def test_command_line_syntax_errors_are_one_line(tmp_path, style, capsys, args, message):
    argv = [a.format(style=style) for a in args] + ["-q", "--outdir", str(tmp_path / "out")] * (args != ["nope"])
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and err[0].startswith("ottex: error: ") and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_batch_help_gives_batch_examples_and_no_output_flag_for_manifests(capsys):
    for kind in ("style", "synth"):
        with pytest.raises(SystemExit):
            main(["batch", kind, "--help"])
        out = capsys.readouterr().out
        assert f"example: ottex batch {kind} " in out and f"example: ottex {kind} " not in out
    with pytest.raises(SystemExit):
        main(["batch", "manifest", "--help"])
    out = capsys.readouterr().out
    assert "--outdir" in out and "--output" not in out and "-o " not in out


# ---------------------------------------------------------------------------------------------- extra outputs


@pytest.mark.parametrize("flag,name,message", [
    ("--plot", "pl.xyz", "--plot: unknown image format for output"),
    ("--plot", "adir", "--plot: output {path} is a folder"),
    ("-o", "adir", "output {path} is a folder"),
    ("-o", "out.xyz", "unknown image format for output"),
])
def test_output_names_are_checked_before_any_work(tmp_path, style, capsys, monkeypatch, flag, name, message):
    import ottex.methods.optimization as opt

    def computed(*args, **kwargs):
        raise AssertionError("the run started before the output names were checked")

    monkeypatch.setattr(opt, "_run", computed)
    (tmp_path / "adir").mkdir()
    path = tmp_path / name
    out = ["-o", str(tmp_path / "d2.png")] if flag == "--plot" else []
    argv = ["synth", str(style), "--size", "32", "--method", "gatys", "--steps", "1", "-q", flag, str(path), *out]
    for extra in ([], ["--force"]):
        assert main(argv + extra) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message.format(path=path) in err[0], err
        assert not (tmp_path / "d2.png").exists()


def test_outputs_without_a_settings_record_are_warned_about(tmp_path, files, capsys):
    style, content = files
    assert main(["color", str(content), str(style), "--rotations", "2", "-q", "-o", str(tmp_path / "c.bmp")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ottex: warning: ") and "cannot hold the settings record" in err[0]
    assert main(["color", str(content), str(style), "--rotations", "2", "-q", "-o", str(tmp_path / "c.png")]) == 0
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------- info, weights


def test_settings_record_file_options_by_absolute_paths(tmp_path, monkeypatch):
    from ottex.app.cli.info import reproduce_command
    from ottex.exec.local import Job, job_settings
    from ottex.methods.base import get_method

    monkeypatch.chdir(tmp_path)
    here = Path.cwd()
    opts = get_method("ot", "transfer").make_options(style_mask="mask.png", content_mask="sub/cmask.png")
    job = Job("ot", "transfer", style="s.png", content="c.png", outputs=["o.png"], options=opts)
    rec = job_settings(job, opts, (32, 48))
    assert rec["options"]["style_mask"] == str(here / "mask.png")
    assert rec["options"]["content_mask"] == str(here / "sub" / "cmask.png")
    argv, _ = reproduce_command(rec, "o.png")
    assert argv[argv.index("--content-mask") + 1] == str(here / "sub" / "cmask.png")
    assert argv[argv.index("--style-mask") + 1] == str(here / "mask.png")


def test_info_on_a_folder_says_so(tmp_path, capsys):
    assert main(["info", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == f"ottex: error: {tmp_path} is a folder; give the images ottex wrote"


@pytest.mark.parametrize("where", ["file", "missing"])
def test_weights_list_refuses_a_weights_dir_that_is_no_folder(tmp_path, style, capsys, where):
    folder = style if where == "file" else tmp_path / "nowhere"
    assert main(["weights", "list", "--weights-dir", str(folder)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip() == f"ottex: error: --weights-dir {folder} is not a folder"


def test_weights_fetch_says_when_downloads_are_off(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OTTEX_WEIGHTS", str(tmp_path / "emptyw"))
    monkeypatch.setenv("OTTEX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OTTEX_OFFLINE", "1")
    assert main(["weights", "fetch", "cd16x", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing weight file cd16x/" in err[0] and "$OTTEX_OFFLINE is set" in err[0], err
