"""Pseudo Optimizer (``po``): gradients, networks, training (the loss falls, resume, interruption), checkpoints
(bit-exact round trip, bad files refused), synthesis (size, range, seeds, tiling, unseen styles), CLI and bench.
Tiny models at 32 px, a few steps each."""

from __future__ import annotations

import shutil
import warnings
from dataclasses import replace

import pytest
import torch

import ottex
from ottex.app.cli import main
from ottex.core.errors import Cancelled, InputError
from ottex.image.io import save_image
from ottex.methods.pseudo_optimizer import (
    CheckpointError,
    POOptions,
    PseudoOptimizer,
    TrainOptions,
    load_checkpoint,
    save_checkpoint,
    train,
    unroll,
)
from ottex.nn.layout import conv_name
from ottex.nn.losses import gram_matrix
from ottex.nn.networks import load_feature_extractor
from ottex.nn.pseudo_optimizer import PO_LAYERS, POStage, gram_targets, pseudo_gradients, texture_loss

pytestmark = pytest.mark.needs_weights

TINY = TrainOptions(variant="po", size=32, style_side=48, steps=4, batch=2, lr=2e-3, width=8, save_every=100)


@pytest.fixture(scope="module")
def files(tmp_path_factory, load_test_image):
    d = tmp_path_factory.mktemp("po")
    paths = {}
    for name in ("zebra", "graffiti", "lava-small", "mondrian"):
        paths[name] = d / f"{name}.png"
        save_image(load_test_image(f"style/{name}.jpg", 80), paths[name])
    return paths


@pytest.fixture(scope="module")
def net(weights_dir):
    n = load_feature_extractor("cd16x", PO_LAYERS, weights_dir=weights_dir, pool="avg")
    return n.requires_grad_(False)


@pytest.fixture(scope="module")
def trained(files, tmp_path_factory, weights_dir):
    """A po model on zebra after 4 steps (the reference of the resume tests)."""
    path = tmp_path_factory.mktemp("ckpt") / "zebra.pt"
    meta = train([files["zebra"]], path, TINY, device="cpu", weights_dir=weights_dir)
    return path, meta


def test_gradients_are_those_of_each_layers_loss_through_the_read_out(net):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    targets = gram_targets(net(torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(1))))
    grams, grads = pseudo_gradients(net, x, targets, PO_LAYERS)
    taps, feats = net(x.clone(), read_out=False), net(x.clone())
    for k, g in zip(PO_LAYERS, grads):
        assert torch.allclose(grams[k], gram_matrix(feats[k]), rtol=1e-3, atol=1e-3)  # the read-out's Gram
        tap = taps[k].detach().requires_grad_(True)
        aux = net.aux[conv_name(k)]  # the 1x1 read-out
        (auto,) = torch.autograd.grad(texture_loss({k: aux(tap)}, targets, [k]).sum(), tap)
        cos = torch.nn.functional.cosine_similarity(auto.flatten(1), g.flatten(1)).min()
        assert cos > 0.9999 and g.shape == tap.shape  # same direction, unit RMS per image
        assert torch.allclose(g.pow(2).mean(dim=(1, 2, 3)), torch.ones(2), atol=1e-4)
    assert grams["relu1_1"].shape[1] == 64 and grads[0].shape[1] == 16  # VGG-width loss, quarter-width gradient


def test_stage_is_per_image_and_checks_its_inputs():
    torch.manual_seed(0)
    stage = POStage((4, 8, 8), (8, 16, 16))
    grads = [torch.randn(2, 4, 32, 32), torch.randn(2, 8, 16, 16), torch.randn(2, 8, 8, 8)]
    out = stage(grads)
    assert out.shape == (2, 3, 32, 32)
    assert torch.allclose(stage([g[1:] for g in grads]), out[1:], atol=1e-5)  # instance norm: no batch mixing
    with pytest.raises(InputError, match="reads 3 gradient maps, got 2"):
        stage(grads[:2])
    with pytest.raises(InputError, match="padding"):
        stage.padding = "mirror"


def test_training_lowers_the_texture_loss(files, weights_dir, net, tmp_path):
    opts = replace(TINY, steps=12)
    meta = train([files["zebra"]], tmp_path / "m.pt", opts, device="cpu", weights_dir=weights_dir)
    trained = load_checkpoint(tmp_path / "m.pt")["model"]
    torch.manual_seed(opts.seed)  # the same initialisation as the run's
    start = PseudoOptimizer("po", meta["in_channels"], opts.width, opts.blocks).eval()
    style = ottex.load_image(files["zebra"])
    targets = gram_targets(net(torch.nn.functional.interpolate(style, size=(48, 48), mode="bilinear")))
    z = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(123)) * 2 - 1  # held-out noise
    with torch.no_grad():
        before = texture_loss(net(unroll(start, net, targets, z)[0]), targets).mean().item()
        after = texture_loss(net(unroll(trained, net, targets, z)[0]), targets).mean().item()
    assert after < 0.7 * before, (before, after)
    assert len(meta["history"]) == 12 and meta["step"] == 12 and meta["seconds_per_step"] > 0


def test_checkpoint_round_trip_is_bit_exact(trained, tmp_path):
    path, meta = trained
    obj = load_checkpoint(path)
    assert obj["meta"]["step"] == 4 and obj["meta"]["texture_sha256"] == meta["texture_sha256"]
    assert obj["meta"]["layers"] == list(PO_LAYERS) and obj["meta"]["weights"] == "cd16x"
    assert "optimizer" in obj and "rng" in obj and obj["meta"]["ottex_version"]
    save_checkpoint(tmp_path / "copy.pt", obj["model"], obj["meta"])
    again = load_checkpoint(tmp_path / "copy.pt")["model"].state_dict()
    for k, v in obj["model"].state_dict().items():
        assert torch.equal(v, again[k]), k
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed


def test_resume_continues_from_the_saved_step_like_an_uninterrupted_run(files, trained, weights_dir, tmp_path):
    path, meta = trained
    part = tmp_path / "part.pt"
    stop = lambda e: e.done < 3  # noqa: E731 - a "Ctrl-C" after step 3 (save_every is 100: saved on the way out)
    with pytest.raises(Cancelled):
        train([files["zebra"]], part, TINY, device="cpu", weights_dir=weights_dir, callback=stop)
    assert load_checkpoint(part)["meta"]["step"] == 3
    steps_seen = []
    resumed = train([files["zebra"]], part, TINY, device="cpu", weights_dir=weights_dir,
                    callback=lambda e: steps_seen.append(e.done) if e.kind == "step" else None)
    assert steps_seen == [4] and resumed["step"] == 4  # one step left
    assert resumed["history"] == meta["history"]
    a, b = load_checkpoint(path)["model"].state_dict(), load_checkpoint(part)["model"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # same weights as 4 uninterrupted steps
    with pytest.raises(InputError, match="other settings \\(batch=2\\)"):
        train([files["zebra"]], part, replace(TINY, batch=1), weights_dir=weights_dir)
    with pytest.raises(InputError, match="trained on other textures"):
        train([files["graffiti"]], part, TINY, weights_dir=weights_dir)


def test_bad_checkpoints_are_refused(trained, tmp_path):
    path, _ = trained
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pt").write_text("not a model")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    obj = torch.load(path, weights_only=True)
    torch.save({**obj, "format_version": 99}, tmp_path / "future.pt")
    torch.save({**obj, "meta": {**obj["meta"], "width": 4}}, tmp_path / "mismatch.pt")
    cases = {"missing.pt": "model not found", "cut.pt": "not a readable ottex Pseudo Optimizer checkpoint",
             "text.pt": "not a readable", "other.pt": "not an ottex Pseudo Optimizer checkpoint",
             "future.pt": "format version 99", "mismatch.pt": "do not fit the model its metadata describes"}
    for name, message in cases.items():
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(tmp_path / name)


def test_synthesis_size_range_seeds_and_batch(files, trained, weights_dir):
    path, _ = trained
    po = ottex.get_method("po")
    opts = {"model": str(path)}
    a = po.synthesize(files["zebra"], (40, 56), opts, batch=2, seed=3, weights_dir=weights_dir)
    assert a.shape == (2, 3, 40, 56) and a.min() >= 0 and a.max() <= 1 and a.std() > 0.01
    assert torch.equal(a, po.synthesize(files["zebra"], (40, 56), opts, batch=2, seed=3, weights_dir=weights_dir))
    assert not torch.allclose(a[0], a[1])  # a batch of seeds: different textures
    one = ottex.po.synthesize(files["zebra"], path, (40, 56), seed=3, weights_dir=weights_dir)
    assert torch.allclose(one[0], a[0], atol=1e-3)  # the first of a batch is the single image of that seed
    assert not torch.allclose(po.synthesize(files["zebra"], (40, 56), opts, seed=4, weights_dir=weights_dir), one)
    with pytest.raises(InputError, match="needs a trained model"):
        po.synthesize(files["zebra"], (32, 32))
    with pytest.raises(InputError, match="multiples of 16"):
        po.synthesize(files["zebra"], (40, 48), POOptions(model=str(path), tile=True))
    with pytest.warns(UserWarning, match="one-texture model trained on zebra.png"):
        po.synthesize(files["graffiti"], (32, 32), opts, weights_dir=weights_dir)


def test_top_level_synthesize_takes_the_method_and_its_options(files, trained, weights_dir):
    path, _ = trained
    via_top = ottex.synthesize(files["zebra"], (40, 56), method="po", model=str(path), batch=2, seed=3,
                               weights_dir=weights_dir)
    direct = ottex.get_method("po").synthesize(files["zebra"], (40, 56), {"model": str(path)}, batch=2, seed=3,
                                               weights_dir=weights_dir)
    assert torch.equal(via_top, direct)
    with pytest.raises(InputError, match="method 'po' has no option 'passes'"):  # an ot-only setting is not dropped
        ottex.synthesize(files["zebra"], 32, method="po", model=str(path), passes=3)
    with pytest.raises(InputError, match="needs a trained model"):
        ottex.synthesize(files["zebra"], 32, method="po")


def test_tiled_synthesis_is_shift_equivariant(trained, net, files):
    model = load_checkpoint(trained[0])["model"]
    model.set_padding("circular")
    net.padding = "circular"
    try:
        targets = gram_targets(net(ottex.load_image(files["zebra"])))
        z = torch.rand(1, 3, 64, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
        with torch.no_grad():
            out = unroll(model, net, targets, z)[0]
            shifted = unroll(model, net, targets, z.roll((16, 32), dims=(-2, -1)))[0]
    finally:
        net.padding = "reflect"
    assert torch.allclose(shifted, out.roll((16, 32), dims=(-2, -1)), atol=1e-4)  # no seam anywhere


@pytest.mark.parametrize("variant", ["adapo", "propo"])
def test_multi_texture_models_take_unseen_styles(variant, files, weights_dir, tmp_path):
    path = tmp_path / f"{variant}.pt"
    meta = train([files["zebra"], files["graffiti"]], path, replace(TINY, variant=variant, steps=2),
                 weights_dir=weights_dir)
    assert meta["textures"] == ["zebra.png", "graffiti.png"] and meta["variant"] == variant
    model = load_checkpoint(path)["model"]
    assert len(model.stages) == (5 if variant == "propo" else 1)
    assert [model.stage_layers(s)[-1] for s in range(len(model.stages))][-1] == "relu5_1"
    po = ottex.get_method("po")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "one-texture model" warning for these
        lava = po.synthesize(files["lava-small"], (32, 32), {"model": str(path)}, weights_dir=weights_dir)
        mondrian = po.synthesize(files["mondrian"], (32, 32), {"model": str(path)}, weights_dir=weights_dir)
    assert lava.shape == (1, 3, 32, 32) and torch.isfinite(lava).all()
    assert (lava - mondrian).abs().mean() > 1e-3  # the style steers the output, without retraining


def test_train_and_synth_commands(files, tmp_path, capsys, weights_dir):
    pytest.importorskip("matplotlib")
    ckpt, plot, out = tmp_path / "z.pt", tmp_path / "loss.png", tmp_path / "t.png"
    base = ["train", str(files["zebra"]), "-o", str(ckpt), "--size", "32", "--style-side", "48", "--batch", "1",
            "--width", "8", "--weights-dir", str(weights_dir), "--device", "cpu"]
    assert main([*base, "--steps", "2", "-q", "--plot", str(plot)]) == 0
    assert plot.is_file() and load_checkpoint(ckpt)["meta"]["step"] == 2
    assert main([*base, "--steps", "3"]) == 0
    err = capsys.readouterr().err
    assert "resuming" in err and "from step 2" in err and "step 3" in err
    assert main([*base, "--steps", "3", "--batch", "2", "-q"]) == 1
    assert "(--restart)" in capsys.readouterr().err
    assert main(["synth", str(files["zebra"]), "--method", "po", "--model", str(ckpt), "--size", "48", "-q",
                 "-o", str(out), "--weights-dir", str(weights_dir)]) == 0
    assert ottex.load_image(out).shape == (1, 3, 48, 48)
    shutil.copy(files["zebra"], tmp_path / "fake.pt")
    assert main(["synth", str(files["zebra"]), "--method", "po", "--model", str(tmp_path / "fake.pt"), "-q",
                 "-o", str(tmp_path / "u.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ottex: error: --model: ") and "not a readable" in err and "Traceback" not in err


def test_bench_runs_po_with_a_model(trained, files, weights_dir, capsys):
    assert main(["bench", "--style", str(files["zebra"]), "--methods", "po", "--model", str(trained[0]),
                 "--sizes", "32", "--warmup", "0", "--device", "cpu", "--weights-dir", str(weights_dir), "-q"]) == 0
    out = capsys.readouterr().out
    assert "\n| po | 32 | cpu | " in out and "s of CPU time) on cpu (measured during training)" in out
    assert main(["bench", "--style", str(files["zebra"]), "--methods", "ot", "--model", str(trained[0]), "-q"]) == 1
    assert "none of the methods ot takes a model" in capsys.readouterr().err
