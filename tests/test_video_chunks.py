"""Chunked runs of ``ottex video`` (``--chunks N --overlap K``): the ranges, reading a range from the key frame
before it, ranges run as ``ottex batch`` jobs (local executor and Ray workers) joined in order with the frame
rate kept, manifest rows with a clip, and joins without a seam (the warping error at the join frames)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from ottex.app.cli import main
from ottex.image.io import load_image, save_image
from ottex.methods.base import register_method, unregister_method
from ottex.video import make_clip, make_video_job, open_clip, run_video, warping_errors
from ottex.video.io import frame_name
from ottex.video.run import chunk_ranges

TESTS = Path(__file__).resolve().parent
COUNT, FPS = 16, 10


def _need(module: str):
    """The video extra (and Ray): skipped where missing, except on CI (which installs them)."""
    if os.environ.get("CI"):
        return __import__(module)
    return pytest.importorskip(module)


def _level(t: int) -> int:
    return 20 + 13 * t  # frame t's grey level: the order of the frames can be read back from a lossy clip


@pytest.fixture(scope="module")
def ramp_mp4(tmp_path_factory):
    """16 frames of 64x48 at 10 fps, frame t a flat grey of :func:`_level` (t), a key frame every 4 frames."""
    av = _need("av")
    path = tmp_path_factory.mktemp("ramp") / "ramp.mp4"
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.codec_context.gop_size = 4
        for t in range(COUNT):
            arr = np.full((48, 64, 3), _level(t), np.uint8)
            for p in v.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
    return path


@pytest.fixture()
def copy_method():
    """``copy`` (tests/video_fakes.py): the content back, so the order of the frames shows in the output."""
    import video_fakes

    register_method(video_fakes.METHOD, replace=True)
    yield video_fakes.METHOD
    unregister_method("copy")


@pytest.fixture(scope="module")
def style_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("style") / "style.png"
    save_image(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)), path)
    return path


def _levels(clip) -> list[int]:
    return [round(float(f.mean()) * 255) for f in clip.frames()]


def test_ranges_share_the_frames_and_start_early():
    assert chunk_ranges(0, 12, 3, 2) == [(0, 4), (2, 8), (6, 12)]
    assert chunk_ranges(4, 10, 2, 1) == [(4, 7), (6, 10)]
    assert chunk_ranges(0, 5, 1, 0) == [(0, 5)]


def _flat_ranges(jobs, levels) -> None:
    """Each range's frames a flat grey of its level (16x16 px: the flow of the join needs 12 px)."""
    for j, level in zip(jobs, levels):
        j.folder.mkdir(parents=True)
        for i in range(len(j.outputs)):
            save_image(torch.full((1, 3, 16, 16), level), j.folder / frame_name(i))


def _joined_levels(vjob, jobs, join_frames) -> list[float]:
    """Join the ranges into the video job's folder; the joined frames' mean levels."""
    vjob.work.mkdir(parents=True, exist_ok=True)
    join_frames(vjob, jobs)
    return [round(float(load_image(vjob.work / frame_name(t)).mean()), 2) for t in range(vjob.stop - vjob.start)]


def test_the_join_cross_fades_over_the_overlap_with_rising_weights(ramp_mp4, style_png, tmp_path, copy_method,
                                                                   monkeypatch):
    import ottex.video.run as video_run
    from ottex.video.run import clip_jobs, join_frames, join_pass

    vjob = make_video_job(ramp_mp4, style_png, "copy", output=tmp_path / "out", frames="0:10", chunks=2, overlap=3)
    jobs = clip_jobs(vjob)
    assert [j.frames for j in jobs] == [(0, 5), (2, 10)]
    _flat_ranges(jobs, (0.0, 1.0))  # the earlier range black, the later one white
    levels = _joined_levels(vjob, jobs, join_frames)
    # frames 2-9 are the first 8 of the fade over JOIN_FADE = 12 frames: the later range's weight (j + 1) / 13;
    # after the 3 shared frames, the difference of the ranges (-1) carried along the flow of the still grey frames
    assert levels == [0, 0, *(round((j + 1) / 13, 2) for j in range(8))]
    with monkeypatch.context() as m:  # the fade over the overlap only
        m.setattr(video_run, "JOIN_FADE", 0)
        levels = _joined_levels(vjob, jobs, join_frames)
    assert levels == [0, 0, 0.25, 0.5, 0.75, 1, 1, 1, 1, 1]
    for j in jobs:  # where the ranges agree, the join keeps the later range's frames as they are
        for i in range(len(j.outputs)):
            save_image(torch.full((1, 3, 16, 16), 0.2 + 0.05 * (j.frames[0] + i)), j.folder / frame_name(i),
                       overwrite=True)
    assert _joined_levels(vjob, jobs, join_frames) == [round(0.2 + 0.05 * t, 2) for t in range(10)]
    assert join_pass(vjob) is None  # the pass needs a warm start (ot, consistent)


def test_each_join_fades_from_the_range_just_before_it(ramp_mp4, style_png, tmp_path, copy_method):
    from ottex.video.run import JOIN_FADE, clip_jobs, join_frames

    vjob = make_video_job(ramp_mp4, style_png, "copy", output=tmp_path / "out", frames="0:10", chunks=3, overlap=0)
    jobs = clip_jobs(vjob)
    assert [j.frames for j in jobs] == [(0, 3), (3, 7), (7, 10)] and JOIN_FADE > 4  # fades longer than a range
    _flat_ranges(jobs, (0.0, 0.3, 1.0))
    levels = _joined_levels(vjob, jobs, join_frames)
    w = [(j + 1) / (JOIN_FADE + 1) for j in range(4)]
    # no shared frames: the earlier range's last frame carried one frame on (the flow of still grey frames);
    # frames 7-9 fade from the second range (0.3), not from the first join's difference carried on
    assert levels == pytest.approx([0, 0, 0, *(0.3 - 0.3 * (1 - x) for x in w), *(1 - 0.7 * (1 - x) for x in w[:3])],
                                   abs=0.01)  # 8-bit frames


def test_a_range_is_decoded_from_the_key_frame_before_it(ramp_mp4, monkeypatch):
    import ottex.video.io as vio

    clip = open_clip(ramp_mp4)
    decoded = []
    real = vio._decode

    def counting(path, start):
        for index, frame in real(path, start):
            decoded.append(index)
            yield index, frame

    monkeypatch.setattr(vio, "_decode", counting)
    assert _levels(clip)[9:12] == [round(float(f.mean()) * 255) for f in clip.frames(9, 12)]
    decoded.clear()
    assert [round(float(f.mean()) * 255) for f in clip.frames(13, 16)] == pytest.approx(
        [_level(t) for t in (13, 14, 15)], abs=3)
    assert decoded[0] == 12 and len(decoded) <= 4  # from the key frame 12, not from frame 0


def test_bad_chunks_and_overlaps_are_one_line_errors(ramp_mp4, style_png, tmp_path, capsys, copy_method):
    out = str(tmp_path / "o.mp4")
    cases = [(["--chunks", "0"], "--chunks must be at least 1"),
             (["--chunks", "17"], "--chunks must be at most 16"),
             (["--chunks", "x"], "--chunks takes an integer"),
             (["--chunks", "2", "--overlap", "9"], "--overlap 9 is longer than the shortest of 2 ranges"),
             (["--chunks", "2", "--frames", "0:6", "--overlap", "4"], "--overlap 4 is longer"),
             (["--overlap", "2"], "--overlap 2 applies only to a run in several chunks"),
             (["--executor", "ray"], "--executor and the Ray flags run the ranges of --chunks N")]
    for extra, message in cases:
        assert main(["video", str(ramp_mp4), str(style_png), "-o", out, "-q", "--method", "copy", *extra]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())  # refused before any work


def _check_ramp_output(out: Path, count: int = COUNT, first: int = 0) -> None:
    clip = open_clip(out)
    assert (clip.count, clip.fps, clip.size) == (count, Fraction(FPS), (48, 64))
    assert _levels(clip) == pytest.approx([_level(t) for t in range(first, first + count)], abs=3)  # in order
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())  # the frame and range folders are gone


def test_a_chunked_run_writes_every_frame_in_order_at_the_clip_rate(ramp_mp4, style_png, tmp_path, copy_method):
    out = tmp_path / "chunked.mp4"
    assert main(["video", str(ramp_mp4), str(style_png), "-o", str(out), "-q", "--method", "copy",
                 "--temporal", "per-frame", "--chunks", "3", "--overlap", "2"]) == 0
    _check_ramp_output(out)


def test_a_chunked_run_that_stopped_continues_without_running_done_ranges(ramp_mp4, style_png, tmp_path,
                                                                           copy_method):
    out = tmp_path / "frames"
    settings = {"output": out, "temporal": "per-frame", "chunks": 3, "overlap": 2, "keep_frames": True}
    run_video(make_video_job(ramp_mp4, style_png, "copy", **settings), device="cpu")
    ranges = sorted((out / ".chunks").rglob("frame_*.png"))
    stamps = [p.stat().st_mtime_ns for p in ranges]
    assert len(ranges) == 5 + 8 + 7  # (0, 5), (3, 11), (9, 16)
    for t in range(7, COUNT):  # as if the join had stopped after frame 6
        (out / frame_name(t)).unlink()
    run_video(make_video_job(ramp_mp4, style_png, "copy", **settings), device="cpu")
    assert [p.stat().st_mtime_ns for p in ranges] == stamps  # the ranges were done: not run again
    levels = [round(float(load_image(out / frame_name(t)).mean()) * 255) for t in range(COUNT)]
    assert levels == pytest.approx([_level(t) for t in range(COUNT)], abs=3)


@pytest.mark.slow  # a Ray cluster starts: about 15 s
def test_ranges_run_on_ray_workers_are_joined_in_order(ramp_mp4, style_png, tmp_path, copy_method):
    ray = _need("ray")
    env = {"PYTHONPATH": os.pathsep.join([str(TESTS.parent / "src"), str(TESTS)]), "OMP_NUM_THREADS": "1"}
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env})
    try:
        out = tmp_path / "ray.mp4"
        assert main(["video", str(ramp_mp4), str(style_png), "-o", str(out), "-q", "--method", "copy",
                     "--temporal", "per-frame", "--chunks", "4", "--overlap", "1", "--frames", "2:14",
                     "--executor", "ray", "--workers", "2"]) == 0
    finally:
        ray.shutdown()
    _check_ramp_output(out, 12, first=2)


def test_a_manifest_row_with_a_clip_styles_its_range_once(ramp_mp4, style_png, tmp_path, copy_method, capsys):
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text(f'{{"clip": "{ramp_mp4}", "style": "{style_png}", "method": "copy", "frames": "4:10", '
                        '"temporal": "per-frame", "output": "part"}\n')
    args = ["batch", "manifest", str(manifest), "--outdir", str(tmp_path / "out"), "-q"]
    assert main(args) == 0
    folder = tmp_path / "out" / "part"
    frames = [load_image(folder / frame_name(i)) for i in range(6)]
    assert sorted(p.name for p in folder.glob("frame_*.png")) == [frame_name(i) for i in range(6)]
    assert [round(float(f.mean()) * 255) for f in frames] == pytest.approx([_level(t) for t in range(4, 10)], abs=3)
    stamps = [(folder / frame_name(i)).stat().st_mtime_ns for i in range(6)]
    capsys.readouterr()
    assert main(args[:-1]) == 0
    assert "0 done, 1 skipped" in capsys.readouterr().out  # the job's key is in its frames: done once
    assert [(folder / frame_name(i)).stat().st_mtime_ns for i in range(6)] == stamps


@pytest.mark.needs_weights
def test_a_join_fades_in_as_steadily_as_the_frames_around_it(tmp_path, images_dir, monkeypatch):
    _need("cv2")
    import ottex.video.run as video_run

    photo = load_image(images_dir / "content" / "golden_gate.jpg")
    n = 24
    frames, _ = make_clip("pan", photo, (48, 64), n)
    clip = tmp_path / "frames"
    clip.mkdir()
    for i, f in enumerate(frames):
        save_image(f, clip / frame_name(i))
    style = images_dir / "style" / "brushstrokes.jpg"
    ratios = {}
    for label, overlap, fade in (("cut", 0, 0), ("overlap only", 4, 4), ("default", 4, video_run.JOIN_FADE)):
        monkeypatch.setattr(video_run, "JOIN_FADE", fade)
        out = tmp_path / label
        run_video(make_video_job(clip, style, output=out, chunks=2, overlap=overlap), device="cpu")
        errs = warping_errors(frames, [load_image(out / frame_name(i)) for i in range(n)])
        first = chunk_ranges(0, n, 2, overlap)[1][0]
        seam = range(first - 1, first + max(fade, 1))  # the pairs that end in the fade and the first after it
        others = [e for i, e in enumerate(errs) if i not in seam]
        ratios[label] = max(errs[i] for i in seam) / (sum(others) / len(others))
    # measured on this 64x48 px pan: a cut 65x the other pairs' warping error, a fade over the 4 shared frames 3.7x,
    # over JOIN_FADE = 12 frames (the ranges' difference carried along the flow after the shared ones) 1.5x
    assert ratios["cut"] > 20
    assert ratios["overlap only"] > 3
    assert ratios["default"] < 3
    assert ratios["default"] < ratios["overlap only"] / 2
