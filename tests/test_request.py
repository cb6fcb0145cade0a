"""One request path: every front end (Python, ``make_job``, the command line, the web form, batch manifests, bench
variants) reads and checks an option's value in one place, so a bad value gives the same message everywhere, and
NaN or infinity is refused everywhere."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
from PIL import Image

import ottex
from ottex.app.cli import main
from ottex.core.errors import InputError
from ottex.eval.bench import run_benchmark
from ottex.methods import get_method
from ottex.methods.options import Options, make_options, option, parse_value
from ottex.methods.request import Job, make_job, output_stem

#: (option, text as typed, the same value from Python, the message every front end gives)
BAD = [
    ("style_scale", "nan", float("nan"), "style_scale takes a finite number, got nan"),
    ("style_scale", "inf", float("inf"), "style_scale takes a finite number, got inf"),
    ("mix_variation", "-inf", float("-inf"), "mix_variation takes a finite number, got -inf"),
    ("mix", "nan,1,1", (float("nan"), 1.0, 1.0), "mix takes a finite number, got nan"),
    ("mode", "fancy", "fancy", "mode takes one of sort, chol, pca, sym, got 'fancy'"),
    ("passes", "0", (0,), "passes must be at least 1, got (0,)"),
]
FRONT_ENDS = ["python", "make_job", "cli", "web", "manifest", "bench"]


@pytest.fixture
def style_file(tmp_path):
    path = tmp_path / "s.png"
    Image.new("RGB", (32, 32), (120, 80, 40)).save(path)
    return path


def _message(front_end: str, name: str, text: str, value: object, style, tmp_path, capsys) -> str:
    """The one-line message a front end gives for option ``name`` set to ``text`` (``value`` from Python), with
    the front end's own framing taken off (the CLI's flag, the manifest's row, the bench's variant)."""
    flag = "--" + name.replace("_", "-")
    if front_end == "python":
        with pytest.raises(InputError) as exc:
            ottex.synthesize(torch.rand(1, 3, 32, 32), 32, **{name: value})
        return str(exc.value)
    if front_end == "make_job":
        with pytest.raises(InputError) as exc:
            make_job("synthesis", "ot", style=str(style), options={name: text})
        return str(exc.value)
    if front_end == "cli":
        assert main(["synth", str(style), "--size", "32", f"{flag}={text}", "-q", "--outdir", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"ottex: error: {flag} "), err
        return err[0].removeprefix("ottex: error: ").replace(flag, name, 1)
    if front_end == "web":
        from ottex.app.web.forms import parse_settings
        from ottex.app.web.uploads import UploadStore

        store = UploadStore(tmp_path / "uploads")
        upload = store.add_bytes(style.read_bytes(), "s.png").id
        with pytest.raises(InputError) as exc:
            parse_settings({"task": "synthesis", "method": "ot", "style": [upload], "width": 32, "height": 32,
                            "options": {name: text}}, store)
        assert exc.value.option == name
        return str(exc.value)
    if front_end == "manifest":
        manifest = tmp_path / "jobs.jsonl"
        manifest.write_text(json.dumps({"style": str(style), "task": "synth", "size": 32, name: text}) + "\n")
        assert main(["batch", "manifest", str(manifest), "--outdir", str(tmp_path / "o"), "-q"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        return err[0].removeprefix(f"ottex: error: manifest {manifest} line 1: ")
    assert front_end == "bench"
    with pytest.raises(InputError) as exc:  # checked before any case runs (no image is loaded)
        run_benchmark(style, ["ot"], [32], variants={"v": {name: text}}, weights_dir=tmp_path)
    return str(exc.value).removeprefix("variant v: ")


@pytest.mark.parametrize("front_end", FRONT_ENDS)
@pytest.mark.parametrize("name,text,value,message", BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_a_bad_value_gives_the_same_message_in_every_front_end(front_end, name, text, value, message, style_file,
                                                               tmp_path, capsys):
    assert _message(front_end, name, text, value, style_file, tmp_path, capsys) == message
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())  # refused before any work


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_are_refused_by_every_number_option_from_python(bad):
    """Before, NaN passed every number option (``ottex.synthesize(s, size=64, style_scale=nan)`` returned an
    image); a range check written ``x < 0`` lets NaN through, so the check is one for every field."""
    style, content = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with pytest.raises(InputError, match="content_strength takes a finite number"):
        ottex.transfer(content, style, 32, content_strength=bad)
    with pytest.raises(InputError, match="lr takes a finite number"):
        get_method("w2").transfer(content, style, 32, {"lr": bad})
    for method in ottex.list_methods():
        for spec in method.option_specs():
            if spec.kinds[0] == "float":
                with pytest.raises(InputError, match=f"^{spec.name} takes a finite number"):
                    method.make_options({spec.name: bad})


def test_every_options_class_checks_its_fields_however_it_is_made():
    """A plugin's options class without a ``__post_init__`` is checked too (no call to the base needed)."""

    @dataclass(frozen=True)
    class Plain(Options):
        level: float = option(0.5, low=0, high=1, help="grey level")
        count: int = option(1, above=0, help="how many")

    with pytest.raises(InputError, match=r"^level takes a finite number, got nan$"):
        Plain(level=float("nan"))
    with pytest.raises(InputError, match=r"^level must be at most 1, got 2$"):
        make_options(Plain, {"level": "2"})
    with pytest.raises(InputError, match=r"^count must be above 0, got 0$"):
        Plain(count=0)
    with pytest.raises(InputError, match=r"^count takes an integer, got '1.5'$"):
        make_options(Plain, {"count": "1.5"})
    assert make_options(Plain, {"level": "0.25", "count": "3"}) == Plain(0.25, 3)
    spec = next(s for s in get_method("ot").option_specs() if s.name == "passes")
    assert parse_value(spec, "[6, 2]") == (6, 2) and parse_value(spec, [6, 2]) == (6, 2)  # text or a JSON array


def test_make_job_checks_the_whole_request_before_any_work(style_file, tmp_path):
    job = make_job("synthesis", "ot", style=str(style_file), size=("48", None), seed="3", batch="2",
                   options={"passes": "2", "pca": "off"}, outdir=tmp_path)
    assert isinstance(job, Job) and job.size == (48, 48) and job.seed == 3 and job.batch == 2
    assert job.options.passes == (2,) and job.options.pca is False
    assert [p.name for p in job.outputs] == [f"{output_stem(job)}_{i}.png" for i in range(2)]
    assert output_stem(job).startswith("s_synth_48x48_sort_nopca_s3_")
    cases = [
        ({"task": "dance"}, "task", "unknown task 'dance'"),
        ({"method": "strotss"}, "method", "does not do texture synthesis"),
        ({"size": "big"}, "size", "size takes an integer, got 'big'"),
        ({"size": 8}, "size", "too small"),
        ({"seed": "-1"}, "seed", "seed takes an integer from 0 to"),
        ({"batch": "0"}, "batch", "batch must be at least 1, got 0"),
        ({"style": str(tmp_path / "nope.png")}, "style", "style image not found"),
        ({"options": {"style_mask": str(tmp_path / "nope.png")}}, "style_mask", "style_mask file not found"),
        ({"options": {"content_strength": "0.5"}}, "content_strength", "does not apply to synthesis"),
        ({"preserve_color": "full"}, "preserve_color", "applies to style transfer"),
        ({"options": {"mix": "0.5"}}, "mix", "mix needs at least two style images"),
        ({"style": [str(style_file)] * 2, "options": {"mix": "1.5"}}, "mix", "in [0, 1], got 1.5"),
        ({"method": "w2", "style": [str(style_file)] * 2}, "style", "takes one style image"),
    ]
    for changes, option_name, words in cases:
        kwargs = {"task": "synthesis", "method": "ot", "style": str(style_file), **changes}
        with pytest.raises(InputError, match=None) as exc:
            make_job(kwargs.pop("task"), kwargs.pop("method"), **kwargs)
        assert exc.value.option == option_name and words in str(exc.value), (changes, str(exc.value))
    mixed = make_job("synthesis", "ot", style=[str(style_file)] * 2, options={"mix": "0.3"})
    assert mixed.options.mix == (0.7, 0.3)
    transfer = make_job("transfer", "ot", style=str(style_file), content=str(style_file), size="24",
                        preserve_color="luminance")
    assert transfer.size == 24 and transfer.preserve_color == "luminance"
    with pytest.raises(InputError, match="a style transfer needs a content image"):
        make_job("transfer", "ot", style=str(style_file))
