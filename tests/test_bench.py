"""Benchmark: records, table, JSON and the ``ottex bench`` command (tiny sizes, one child process each)."""

from __future__ import annotations

import json
import statistics
import sys

import pytest
from PIL import Image

from ottex import OTSchedule
from ottex.app.cli import main
from ottex.core.errors import InputError, OttexError
from ottex.eval import bench
from ottex.eval.bench import (
    markdown_table,
    parse_sizes,
    parse_variant,
    run_benchmark,
    score_reference,
    variant_options,
)
from ottex.image.io import save_image
from ottex.methods import get_method

pytestmark = pytest.mark.needs_weights


def test_parse_sizes():
    assert parse_sizes("64, 128") == [64, 128]
    for bad in ("", "a,64", "8"):
        with pytest.raises(InputError, match="sizes"):
            parse_sizes(bad)


def test_run_benchmark_times_and_scores(tmp_path, zebra, weights_dir):
    style = tmp_path / "zebra.png"
    save_image(zebra, style)
    rows = run_benchmark(style, ["ot"], [48], repeats=2, warmup=0, device="cpu", weights_dir=weights_dir,
                         options={"schedule": OTSchedule(passes=(1,))}, save_dir=tmp_path)
    (rec,) = rows
    assert rec.method == "ot" and rec.size == 48 and rec.device == "cpu"
    assert len(rec.times) == 2 and rec.seconds == pytest.approx(statistics.median(rec.times))
    assert 100 < rec.peak_mem_mb < 8000  # a child process with torch loaded
    assert set(rec.style_distance_layers) == {"relu1_1", "relu2_1", "relu3_1"}
    assert 0 < rec.style_distance < 1.0
    assert (tmp_path / "zebra_ot_48_s0.png").is_file()
    table = markdown_table([rec, score_reference("itself", style, style, weights_dir=weights_dir)])
    lines = table.splitlines()
    assert lines[0].startswith("| method | size") and len(lines) == 4
    assert lines[3].startswith("| itself |") and "0.0000" in lines[3]  # the style scores 0 against itself


def test_failed_case_is_one_error(tmp_path, zebra):
    style = tmp_path / "zebra.png"
    save_image(zebra, style)
    with pytest.raises(OttexError, match="failed: .*weight set"):
        run_benchmark(style, ["ot"], [32], warmup=0, device="cpu", options={"weights": "nope"})


def test_bench_command_json(tmp_path, zebra, capsys):
    style = tmp_path / "z.png"
    save_image(zebra, style)
    out, sheet = tmp_path / "b.json", tmp_path / "sheet.png"
    argv = ["bench", "--style", str(style), "--sizes", "32", "--warmup", "0", "--json", str(out),
            "--reference", f"same={style}", "--device", "cpu", "-q", "--sheet", str(sheet)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    with Image.open(sheet) as im:  # style, reference, output
        assert im.format == "PNG" and im.width > 3 * 256
    assert main(argv) == 1  # existing outputs are not replaced without --force
    assert "exists" in capsys.readouterr().err
    assert "| ot | 32 | cpu |" in printed and "| same |" in printed
    data = json.loads(out.read_text())
    assert "cores" in data["machine"]
    ours = [r for r in data["records"] if r["method"] == "ot"][0]
    assert {"method", "size", "seconds", "peak_mem_mb", "style_distance"} <= set(ours)
    assert ours["seconds"] > 0


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--sizes", "x"], "--sizes"),
        (["--methods", "nope"], "unknown method"),
        (["--reference", "broken"], "NAME=FILE"),
        (["--repeats", "0"], "--repeats"),
        (["--command", "peer=run {style}"], "{output}"),
        (["--variant", "nopca:pca=maybe"], "--variant nopca: pca takes true or false"),
        (["--measure-weights", "nope"], "measuring network 'nope'"),
    ],
)
def test_bench_command_errors(tmp_path, zebra, capsys, no_cases, argv, match):
    style = tmp_path / "z.png"
    save_image(zebra, style)
    assert main(["bench", "--style", str(style), *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ottex: error:") and match in err[0]


SCRIPT = """
import sys
from PIL import Image
style, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if size == 13:
    sys.exit("this peer cannot do 13 px")
Image.open(style).convert("RGB").resize((size, size)).save(out)
"""


@pytest.mark.slow
def test_external_command_is_one_more_case(tmp_path, zebra, weights_dir):
    style = tmp_path / "zebra.png"
    save_image(zebra, style)
    script = tmp_path / "peer.py"
    script.write_text(SCRIPT)
    cmd = f"{sys.executable} {script} {{style}} {{size}} {{output}}"
    (rec,) = run_benchmark(style, [], [48], warmup=0, weights_dir=weights_dir, commands={"peer": cmd})
    assert rec.method == "peer" and rec.device == "command" and rec.seconds > 0 and rec.peak_mem_mb > 1
    assert rec.style_distance < 0.2  # the peer returned the style itself, resized
    with pytest.raises(OttexError, match="peer at 13px failed: command exited with 1: this peer cannot do 13 px"):
        run_benchmark(style, [], [13], warmup=0, weights_dir=weights_dir, commands={"peer": cmd})


def test_parse_variant():  # values stay text: each method's options parse them (variant_options)
    assert parse_variant("a:pca=False;mode='sym';passes=(2, 1);x=abc") == (
        "a", {"pca": "False", "mode": "'sym'", "passes": "(2, 1)", "x": "abc"})
    for bad in ("nocolon", "n:", "n:pca", "n:1x=2"):
        with pytest.raises(InputError, match="variant"):
            parse_variant(bad)


def test_variant_values_are_parsed_by_the_options_own_parsers():
    ot = get_method("ot")
    for text, value in (("False", False), ("false", False), ("0", False), ("NO", False), ("yes", True),
                        ("True", True), ("1", True)):
        assert variant_options(ot, "v", {"pca": text}) == {"pca": value}
    got = variant_options(ot, "v", {"passes": "2,1", "mode": "'sym'", "style_scale": "0.5", "rotations": "3",
                                    "mix": "(0.5,0.5)", "levels": "None", "mix_with": "a.png", "x": "abc"})
    assert got == {"passes": (2, 1), "mode": "sym", "style_scale": 0.5, "rotations": 3, "mix": (0.5, 0.5),
                   "levels": None, "mix_with": "a.png", "x": "abc"}  # unknown keys: make_options refuses them
    assert variant_options(ot, "v", {"passes": "(2, 1)", "mix_with": "(a.png, b.png)"}) == {
        "passes": (2, 1), "mix_with": ("a.png", "b.png")}
    assert variant_options(ot, "v", {"pca": 0, "passes": (3,)}) == {"pca": 0, "passes": (3,)}  # Python values
    for values, match in (({"pca": "maybe"}, "variant v: pca takes true or false .*got 'maybe'"),
                          ({"passes": "two"}, "variant v: passes takes comma-separated integers, got 'two'"),
                          ({"rotations": "1.5"}, "variant v: rotations takes an integer, got '1.5'"),
                          ({"style_scale": "big"}, "variant v: style_scale takes a number"),
                          ({"mode": "fancy"}, "variant v: mode takes one of sort, .*got 'fancy'")):
        with pytest.raises(InputError, match=match):
            variant_options(ot, "v", values)


@pytest.fixture
def no_cases(monkeypatch):
    """Fail the test if a benchmark case starts (bad settings must be refused before)."""
    def run_case(*args, **kwargs):
        raise AssertionError("a case ran")

    monkeypatch.setattr(bench, "run_case", run_case)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"variants": {"nopca": {"pca": "maybe"}}}, "variant nopca: pca takes true or false"),
        ({"variants": {"p": {"passes": "0"}}}, "variant p: passes must be at least 1"),
        ({"sizes": [8]}, "output size 8x8 is too small"),
        ({"measure": "nope"}, "measuring network 'nope': .*nope"),
    ],
)
def test_bad_settings_are_refused_before_any_case(tmp_path, no_cases, kwargs, match):
    style = tmp_path / "rgb64.png"
    Image.new("RGB", (64, 64), (120, 60, 30)).save(style)
    kwargs = {"sizes": [32], **kwargs}
    with pytest.raises(OttexError, match=match):
        run_benchmark(style, ["ot"], warmup=0, device="cpu", **kwargs)


def test_transfer_sizes_are_checked_before_any_case(tmp_path, no_cases):
    style, content = tmp_path / "rgb64.png", tmp_path / "content96x64.png"
    Image.new("RGB", (64, 64), (120, 60, 30)).save(style)
    Image.new("RGB", (96, 64), (20, 60, 130)).save(content)
    with pytest.raises(InputError, match="output size 20x13 is too small"):  # long side 20: 20 wide, 13 high
        run_benchmark(style, ["ot"], [32, 20], warmup=0, device="cpu", content=content)


@pytest.mark.slow
def test_bench_command_variants(tmp_path, zebra, capsys):
    style = tmp_path / "z.png"
    save_image(zebra, style)
    out = tmp_path / "v.json"
    assert main(["bench", "--style", str(style), "--sizes", "32", "--warmup", "0", "--device", "cpu", "-q",
                 "--variant", "nopca:pca=False", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| ot | 32 | cpu |" in printed and "| ot[nopca] | 32 | cpu |" in printed
    recs = json.loads(out.read_text())["records"]
    assert [r["options"] for r in recs] == [{}, {"pca": False}]


@pytest.mark.slow
def test_mixing_variant_runs_a_mix(tmp_path, zebra, images_dir, weights_dir):
    style = tmp_path / "zebra.png"
    save_image(zebra, style)
    lava = images_dir / "style" / "lava-small.jpg"
    rows = run_benchmark(style, ["ot"], [48], warmup=0, device="cpu", weights_dir=weights_dir,
                         options={"schedule": OTSchedule(passes=(1,))},
                         variants={"mix": {"mix_with": str(lava), "mix": (0.5, 0.5)}}, save_dir=tmp_path)
    plain, mixed = rows
    assert mixed.method == "ot[mix]" and "mix_with" in mixed.options
    assert mixed.style_distance > plain.style_distance  # half lava: further from the zebra


def test_machine_name_states_the_threads_the_cases_ran_with():
    assert "3 torch threads" in bench.machine_name("cpu", threads=3)
    assert "torch threads" in bench.machine_name("cpu")
