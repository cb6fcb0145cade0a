"""What a new user hit following the README (issue 30): names, records, messages and help that drifted."""

from __future__ import annotations

import pytest
import torch

from ottex.app.cli import main
from ottex.core.errors import InputError
from ottex.image.io import save_image
from ottex.methods.request import make_job, output_stem


@pytest.fixture()
def images(tmp_path):
    gen = torch.Generator().manual_seed(0)
    style, content = tmp_path / "style.png", tmp_path / "photo.png"
    save_image(torch.rand(1, 3, 40, 40, generator=gen), style)
    save_image(torch.rand(1, 3, 64, 96, generator=gen), content)  # 96x64: landscape
    return style, content


def test_info_of_an_output_at_its_defaults_says_so_once(grey, images, tmp_path, capsys):
    style, _ = images
    out = tmp_path / "tex.png"
    assert main(["synth", str(style), "--method", "grey", "--size", "16", "-q", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("options:")]
    assert line.strip() == "options: all at their defaults"  # was "options: defaults, the others at their defaults"


@pytest.mark.parametrize("size", [48, "48", (None, 48), ("32", None)])
def test_style_names_give_the_output_size_however_it_was_asked(images, tmp_path, size):
    style, content = images
    job = make_job("transfer", "ot", style=style, content=content, size=size)
    assert "_style_cs0p7_48x32_sort_s0" in output_stem(job)  # --size 48 gave _48_, --width 48 gave _48x32_


def test_a_style_batch_names_its_runs_as_single_runs_and_a_synth_batch_adds_a_hash(grey, images, tmp_path):
    style, content = images
    assert main(["style", str(content), str(style), "--method", "grey", "--batch", "2", "-q", "--outdir",
                 str(tmp_path / "style")]) == 0
    assert main(["style", str(content), str(style), "--method", "grey", "--seed", "1", "-q", "--outdir",
                 str(tmp_path / "single")]) == 0
    names = sorted(p.name for p in (tmp_path / "style").iterdir())
    (single,) = [p.name for p in (tmp_path / "single").iterdir()]
    assert single in names and [n.replace("_s0", "_s1") for n in names[:1]] == [single]
    assert main(["synth", str(style), "--method", "grey", "--size", "16", "--batch", "2", "-q", "--outdir",
                 str(tmp_path / "synth")]) == 0
    synth = sorted(p.name for p in (tmp_path / "synth").iterdir())
    assert len(synth) == 2 and all(len(n.split("_s0_")[1]) == len("abcdef_0.png") for n in synth)


def test_a_transfer_with_one_mask_names_region_guidance_and_the_missing_mask(images):
    from ottex import transfer

    style, content = images
    with pytest.raises(InputError, match="region guidance needs both a style mask and a content mask") as info:
        transfer(content, style, 32, content_mask=torch.zeros(64, 96), device="cpu")
    assert info.value.option == "style_mask"
    with pytest.raises(InputError) as info:
        transfer(content, style, 32, style_mask=torch.zeros(40, 40), device="cpu")
    assert info.value.option == "content_mask" and "synthesis" not in str(info.value)


def test_a_missing_mask_file_names_its_parameter(images, tmp_path):
    from ottex import synthesize

    style, _ = images
    with pytest.raises(InputError, match="^style_mask file not found: ") as info:
        synthesize(style, 32, style_mask=tmp_path / "nope.png", target_mask=torch.zeros(32, 32), device="cpu")
    assert info.value.option == "style_mask"


def test_the_command_line_names_the_mask_flag(images, tmp_path, capsys):
    style, content = images
    assert main(["style", str(content), str(style), "--content-mask", str(tmp_path / "nope.png"), "-q",
                 "--outdir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == f"ottex: error: --content-mask file not found: {tmp_path / 'nope.png'}"


def test_a_synthesis_record_holds_only_synthesis_options(images):
    from ottex.exec.local import job_settings

    style, content = images
    synth = make_job("synthesis", "ot", style=style, size=32)
    options = job_settings(synth, synth.options, (32, 32))["options"]
    assert not {"content_strength", "init", "content_mask"} & set(options) and "tile" in options
    styled = make_job("transfer", "ot", style=style, content=content, size=32)
    options = job_settings(styled, styled.options, (21, 32))["options"]
    assert {"content_strength", "init", "content_mask"} <= set(options) and "tile" not in options


def test_python_keywords_are_the_command_line_names():
    """``steps`` for optimiser steps, ``rotations`` for OT rotations, in every function (issue 30, item 2)."""
    import inspect

    import ottex

    expected = {ottex.synthesize: "rotations", ottex.transfer: "rotations", ottex.stylize: "steps",
                ottex.synthesize_opt: "steps", ottex.strotss: "steps", ottex.color_transfer: "rotations"}
    for fn, name in expected.items():
        assert name in inspect.signature(fn).parameters, fn.__name__


def test_steps_and_rotations_are_taken_and_checked(images):
    import ottex

    style, content = images
    with pytest.raises(InputError, match="^steps"):  # was: TypeError, unexpected keyword argument 'steps'
        ottex.stylize(content, style, steps=(0, 3), device="cpu")
    with pytest.raises(InputError, match="^rotations"):
        ottex.synthesize(style, 32, rotations=-2, device="cpu")
    with pytest.raises(InputError, match="^steps"):
        ottex.strotss(content, style, steps=0, device="cpu")
    a = ottex.color_transfer(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), rotations=3)
    b = ottex.color_transfer(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), 3)
    assert a.shape == b.shape


@pytest.mark.parametrize("call,new", [
    (lambda s, c: __import__("ottex").synthesize(s, 32, iterations=-2, device="cpu"), "rotations"),
    (lambda s, c: __import__("ottex").transfer(c, s, 32, iterations=-2, device="cpu"), "rotations"),
    (lambda s, c: __import__("ottex").stylize(c, s, iterations=0, device="cpu"), "steps"),
    (lambda s, c: __import__("ottex").synthesize_opt(s, 32, iterations=0, device="cpu"), "steps"),
    (lambda s, c: __import__("ottex").strotss(c, s, iterations=0, device="cpu"), "steps"),
    (lambda s, c: __import__("ottex").color_transfer(c, s, iterations=0), "rotations"),
])
def test_the_former_iterations_keyword_warns_with_the_new_name(images, call, new):
    style, content = images
    with pytest.warns(FutureWarning, match=f"iterations= is deprecated: use {new}="), \
            pytest.raises(InputError, match=f"^{new}"):
        call(style, content)


def test_both_names_at_once_are_refused(images):
    import ottex

    style, _ = images
    with pytest.raises(InputError, match="give rotations= alone"):
        ottex.synthesize(style, 32, rotations=2, iterations=3, device="cpu")
    from ottex.methods.optimization import OptSettings

    with pytest.warns(FutureWarning, match="use steps="):
        assert OptSettings(iterations=(3,)).steps == (3,)


def test_a_result_saved_from_python_records_how_it_was_made(images, tmp_path, capsys):
    """README: every output records how it was made; ``ottex.save_image(tex, "tex.png")`` wrote none."""
    import ottex
    from ottex.image.io import read_settings

    style, content = images
    tex = ottex.synthesize(style, 32, passes=1, levels=(3, 2, 1), seed=4, device="cpu")
    ottex.save_image(tex, tmp_path / "tex.png")
    record = read_settings(tmp_path / "tex.png")
    assert record is not None and record["method"] == "ot" and record["task"] == "synthesis"
    assert record["seed"] == 4 and record["size"] == [32, 32] and record["options"]["passes"] == [1]
    assert record["inputs"]["style"] == str(style) and "content_strength" not in record["options"]
    assert main(["info", str(tmp_path / "tex.png")]) == 0
    out = capsys.readouterr().out
    assert "reproduce: ottex synth" in out and "--passes 1" in out
    ottex.save_image(tex.clamp(0, 0.5), tmp_path / "changed.png")  # another image: no record
    assert read_settings(tmp_path / "changed.png") is None


def test_every_registered_method_records_its_results(grey, images, tmp_path):
    from ottex.image.io import read_settings

    style, content = images
    out = grey.transfer(content, style, 32, {"level": 0.25}, seed=2)
    save_image(out, tmp_path / "t.png")
    record = read_settings(tmp_path / "t.png")
    assert record["method"] == "grey" and record["options"] == {"level": 0.25} and record["seed"] == 2
    assert record["inputs"] == {"style": str(style), "content": str(content)}


def test_threads_option_sets_torch_threads_and_is_checked(grey, images, tmp_path, capsys):
    style, _ = images
    before = torch.get_num_threads()
    try:
        assert main(["synth", str(style), "--method", "grey", "--size", "16", "--threads", "1", "-q", "-o",
                     str(tmp_path / "a.png")]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert main(["synth", str(style), "--method", "grey", "--threads", "0", "-q", "-o", str(tmp_path / "b.png")]) == 1
    assert capsys.readouterr().err.strip() == "ottex: error: --threads must be at least 1, got 0"
