"""Weight registry and resolution: search order, hash checks, download into the cache, clear errors."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from ottex.core.errors import WeightsError
from ottex.nn import weights as W
from ottex.nn.weights import WEIGHT_SETS, WeightFile, WeightSet, get_weight_set, register_weight_set


def test_registry_contents():
    cd = W.get_weight_set("cd16x")
    assert cd.levels == (1, 2, 3, 4, 5)
    for f in cd.files:
        assert f.url.startswith("https://") and len(f.sha256) == 64 and f.size > 0
    wct = W.get_weight_set("wct-vgg19")
    assert wct.levels == (1, 2, 3, 4, 5)
    assert {f.level for f in wct.files if f.sha256} == {1, 2, 3}
    assert W.get_weight_set("vgg19-torchvision").files[0].url.endswith("vgg19-dcbb9e9d.pth")
    with pytest.raises(WeightsError, match="unknown weight set 'nope'"):
        W.get_weight_set("nope")


def test_resolve_from_env_and_explicit_dir(weights_dir, tmp_path, monkeypatch):
    p = W.resolve_weight_file("cd16x", "encoder", 1)
    assert p == weights_dir / "cd16x" / "encoder1.pth"
    # an explicit directory is searched before $OTTEX_WEIGHTS
    (tmp_path / "cd16x").mkdir()
    shutil.copy(p, tmp_path / "cd16x" / "encoder1.pth")
    assert W.resolve_weight_file("cd16x", "encoder", 1, weights_dir=tmp_path) == tmp_path / "cd16x" / "encoder1.pth"


def test_missing_file_error_names_file_places_and_url(tmp_path, monkeypatch):
    monkeypatch.setenv("OTTEX_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("OTTEX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OTTEX_OFFLINE", "1")
    with pytest.raises(WeightsError) as info:
        W.resolve_weight_file("cd16x", "decoder", 3)
    msg = str(info.value)
    assert "cd16x/decoder3.pth" in msg and str(tmp_path / "empty" / "cd16x") in msg
    assert str(tmp_path / "cache" / "weights" / "cd16x") in msg
    assert "https://" in msg and "weights_dir" in msg and "\n" not in msg
    assert "--" not in msg  # library messages name parameters, not command-line flags (the CLI adds those)


def test_local_only_file_says_it_cannot_be_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("OTTEX_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("OTTEX_CACHE", str(tmp_path / "cache"))
    with pytest.raises(WeightsError, match="no public download"):
        W.resolve_weight_file("vgg19-caffe", "loss")


def test_hash_mismatch_is_refused(weights_dir, tmp_path):
    (tmp_path / "cd16x").mkdir()
    bad = tmp_path / "cd16x" / "encoder2.pth"
    bad.write_bytes((weights_dir / "cd16x" / "encoder2.pth").read_bytes()[:-10] + b"0123456789")
    with pytest.raises(WeightsError, match="sha256"):
        W.resolve_weight_file("cd16x", "encoder", 2, weights_dir=tmp_path)


def _fake_set(monkeypatch, tmp_path: Path, payload: bytes, sha: str) -> None:
    src = tmp_path / "upstream.bin"
    src.write_bytes(payload)
    ws = W.WeightSet("fake", "test set", (W.WeightFile("f.pth", src.as_uri(), sha, len(payload), "encoder", 1),))
    monkeypatch.setitem(W.WEIGHT_SETS, "fake", ws)
    monkeypatch.setenv("OTTEX_WEIGHTS", str(tmp_path / "none"))
    monkeypatch.setenv("OTTEX_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("OTTEX_OFFLINE", raising=False)


def test_download_into_cache_with_hash_check(tmp_path, monkeypatch):
    payload = b"weights" * 1000
    _fake_set(monkeypatch, tmp_path, payload, hashlib.sha256(payload).hexdigest())
    p = W.resolve_weight_file("fake", "encoder", 1, progress=False)
    assert p == tmp_path / "cache" / "weights" / "fake" / "f.pth"
    assert p.read_bytes() == payload
    assert not list(p.parent.glob("*.part"))  # no temporary file left behind


def test_download_with_wrong_hash_is_deleted(tmp_path, monkeypatch):
    _fake_set(monkeypatch, tmp_path, b"tampered", "0" * 64)
    with pytest.raises(WeightsError, match="sha256"):
        W.resolve_weight_file("fake", "encoder", 1, progress=False)
    assert not (tmp_path / "cache" / "weights" / "fake" / "f.pth").exists()


def test_offline_refuses_download(tmp_path, monkeypatch):
    _fake_set(monkeypatch, tmp_path, b"x", hashlib.sha256(b"x").hexdigest())
    monkeypatch.setenv("OTTEX_OFFLINE", "1")
    with pytest.raises(WeightsError, match="missing weight file fake/f.pth"):
        W.resolve_weight_file("fake", "encoder", 1)


def test_cache_dir_default_uses_platformdirs(monkeypatch):
    monkeypatch.delenv("OTTEX_CACHE", raising=False)
    assert W.cache_dir().name == "weights" and "ottex" in str(W.cache_dir())


# ---------------------------------------------------------------------------------------------- WeightSet objects


def test_weight_set_objects_carry_their_conventions():
    cd, caffe, wct = get_weight_set("cd16x"), get_weight_set("vgg19-caffe"), get_weight_set("wct-vgg19")
    assert (cd.padding, cd.final_relu, cd.levels) == ("reflect", True, (1, 2, 3, 4, 5))
    assert (caffe.padding, caffe.final_relu, caffe.levels) == ("zeros", False, ())
    assert cd.feature_source(("relu1_1",)) == ("encoder", 5)
    assert wct.feature_source(("relu1_1", "relu3_1")) == ("encoder", 3)
    assert caffe.feature_source(("relu3_1",)) == ("loss", 0)
    assert caffe.taps[-1] == "relu3_4" and "relu4_1" not in caffe.taps and "relu5_1" in cd.taps
    assert all(ws.convert is not None for ws in WEIGHT_SETS.values() if not ws.parts)  # composites: their parts'
    with pytest.raises(WeightsError, match="already registered"):
        register_weight_set(WeightSet("cd16x", "again", ()))


def test_a_weight_set_without_converter_cannot_load(tmp_path, monkeypatch):
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "f.pth").write_bytes(b"x")
    sha = __import__("hashlib").sha256(b"x").hexdigest()
    monkeypatch.setitem(WEIGHT_SETS, "bare", WeightSet("bare", "no converter", (WeightFile("f.pth", None, sha, 1,
                                                                                           "loss"),)))
    with pytest.raises(WeightsError, match="no loader for weight set 'bare'"):
        get_weight_set("bare").load_state("loss", 0, tmp_path)


@pytest.mark.needs_weights
def test_weight_set_loads_canonical_state(weights_dir):
    state = get_weight_set("cd16x").load_state("encoder", 2, weights_dir)
    assert {"conv0.weight", "conv11.weight", "conv21.weight"} <= set(state)
    caffe = get_weight_set("vgg19-caffe").load_state("loss", 0, weights_dir)
    assert caffe["conv0.weight"].shape == (3, 3, 1, 1) and "conv34.weight" in caffe


def test_hybrid_set_takes_each_level_from_its_part(tmp_path, weights_dir, monkeypatch):
    """The composite 'hybrid' set: wct-vgg19 at levels 2-3, cd16x at 1, 4, 5; when wct-vgg19 is absent it falls
    back to cd16x with a warning, but a corrupt wct-vgg19 file is an error."""
    import warnings

    from ottex.core.errors import WeightsError
    from ottex.nn.networks import available_levels, load_autoencoders
    from ottex.nn.weights import get_weight_set

    ws = get_weight_set("hybrid")
    assert ws.levels == (1, 2, 3, 4, 5)
    assert [(part.name, f.level) for part, f in ws.member_files()][2:4] == [("wct-vgg19", 2), ("wct-vgg19", 2)]
    nets = load_autoencoders("hybrid", (3, 4), weights_dir)
    assert nets[3][0].out_channels == 256 and nets[4][0].out_channels == 128  # wct-vgg19 relu3_1, cd16x relu4_1
    only_cd = tmp_path / "only"
    shutil.copytree(weights_dir / "cd16x", only_cd / "cd16x")
    monkeypatch.setenv("OTTEX_WEIGHTS", str(only_cd))
    monkeypatch.setenv("OTTEX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OTTEX_OFFLINE", "1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nets = load_autoencoders("hybrid", (3,), only_cd)
    assert nets[3][0].out_channels == 64 and any("using cd16x" in str(w.message) for w in caught)
    assert available_levels("hybrid", only_cd) == (1, 2, 3, 4, 5)
    broken = tmp_path / "broken"
    shutil.copytree(weights_dir / "cd16x", broken / "cd16x")
    shutil.copytree(weights_dir / "wct-vgg19", broken / "wct-vgg19")
    (broken / "wct-vgg19" / "feature_invertor_conv3_1.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="sha256"):
        load_autoencoders("hybrid", (3,), broken)


def test_downloaded_file_respects_the_umask(tmp_path, monkeypatch):
    import os
    import stat

    payload = b"weights" * 10
    _fake_set(monkeypatch, tmp_path, payload, hashlib.sha256(payload).hexdigest())
    old = os.umask(0o022)
    try:
        p = W.resolve_weight_file("fake", "encoder", 1, progress=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644


# ---------------------------------------------------------------------------------------------- corrupt files


@pytest.mark.needs_weights
def test_a_corrupt_file_is_an_error_not_a_missing_level(weights_dir, tmp_path):
    """decoder1.pth overwritten with random bytes: an error naming the file, both hashes and the fix, never the
    fallback to the other levels that an absent file gets."""
    import warnings

    from ottex.core.errors import MissingWeightsError
    from ottex.nn.networks import load_autoencoders

    shutil.copytree(weights_dir / "cd16x", tmp_path / "cd16x")
    bad = tmp_path / "cd16x" / "decoder1.pth"
    bad.write_bytes(bytes(range(256)) * 13)
    actual = hashlib.sha256(bad.read_bytes()).hexdigest()
    expected = get_weight_set("cd16x").file("decoder", 1).sha256
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "levels 1 are missing" warning either
        with pytest.raises(WeightsError) as info:
            load_autoencoders("cd16x", (2, 1), tmp_path, strict=False)
    msg = str(info.value)
    assert not isinstance(info.value, MissingWeightsError)
    assert str(bad) in msg and actual in msg and expected in msg and "delete it" in msg and "https://" in msg
    assert "\n" not in msg and "--" not in msg


def test_a_corrupt_file_in_the_cache_is_downloaded_again(tmp_path, monkeypatch):
    payload = b"weights" * 100
    _fake_set(monkeypatch, tmp_path, payload, hashlib.sha256(payload).hexdigest())
    cached = tmp_path / "cache" / "weights" / "fake" / "f.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"truncated")
    monkeypatch.setenv("OTTEX_OFFLINE", "1")
    with pytest.raises(WeightsError, match="delete it") as info:  # offline: said, with both hashes
        W.resolve_weight_file("fake", "encoder", 1, progress=False)
    assert hashlib.sha256(b"truncated").hexdigest() in str(info.value)
    monkeypatch.delenv("OTTEX_OFFLINE")
    with pytest.warns(UserWarning, match="downloading it again"):
        p = W.resolve_weight_file("fake", "encoder", 1, progress=False)
    assert p == cached and p.read_bytes() == payload


def test_a_file_saved_under_its_upstream_name_is_found(weights_dir, tmp_path, monkeypatch):
    """Issue 30: the upstream 20191109-211322_E20.pth saved as it was downloaded is cd16x's encoder5.pth."""
    monkeypatch.setenv("OTTEX_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("OTTEX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OTTEX_OFFLINE", "1")
    wf = W.get_weight_set("cd16x").file("encoder", 5)
    assert W.upstream_name(wf) == "20191109-211322_E20.pth"
    (tmp_path / "mine" / "cd16x").mkdir(parents=True)
    shutil.copy(weights_dir / "cd16x" / "encoder5.pth", tmp_path / "mine" / "cd16x" / "20191109-211322_E20.pth")
    found = W.resolve_weight_file("cd16x", "encoder", 5, weights_dir=tmp_path / "mine")
    assert found == tmp_path / "mine" / "cd16x" / "20191109-211322_E20.pth"


def test_offline_message_says_how_to_save_the_file_in_the_one_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("OTTEX_WEIGHTS", raising=False)
    monkeypatch.setenv("OTTEX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OTTEX_OFFLINE", "1")
    with pytest.raises(WeightsError) as info:
        W.resolve_weight_file("cd16x", "encoder", 5)
    msg = str(info.value)
    assert "one of those folders" not in msg  # one folder was searched
    assert "save it as encoder5.pth (or under its upstream name 20191109-211322_E20.pth) in that folder" in msg


def test_a_failed_download_leaves_no_empty_cache_folders(tmp_path, monkeypatch):
    ws = W.WeightSet("fake", "test set", (W.WeightFile("f.pth", (tmp_path / "absent.bin").as_uri(), "0" * 64, 1,
                                                       "encoder", 1),))
    monkeypatch.setitem(W.WEIGHT_SETS, "fake", ws)
    monkeypatch.setenv("OTTEX_WEIGHTS", str(tmp_path / "none"))
    monkeypatch.setenv("OTTEX_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("OTTEX_OFFLINE", raising=False)
    with pytest.raises(WeightsError, match="could not download"):
        W.resolve_weight_file("fake", "encoder", 1, progress=False)
    assert not (tmp_path / "cache").exists()
