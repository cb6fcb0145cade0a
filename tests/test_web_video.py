"""A short clip in the web app: its upload (limits, unreadable files), a style transfer of it as a video job
through the queue (the fast test method), its video and frame strip in the gallery and the API."""

from __future__ import annotations

import io
import time
from fractions import Fraction

import pytest
import torch
from PIL import Image

from web_support import png_bytes, require

require("starlette", "the web app tests")
require("httpx2", "the web app tests")
require("av", "the video tests")

from starlette.testclient import TestClient  # noqa: E402

from ottex.app.web import uploads as upload_module  # noqa: E402
from ottex.app.web.server import ServerConfig, create_app  # noqa: E402
from ottex.image.io import save_image  # noqa: E402
from ottex.methods.base import register_method, unregister_method  # noqa: E402
from ottex.video import make_clip, open_clip, write_clip  # noqa: E402
from ottex.video.io import frame_name  # noqa: E402

FRAMES = 6


@pytest.fixture(scope="module", autouse=True)
def sleepy():
    import web_fakes

    register_method(web_fakes.METHOD, replace=True)
    yield web_fakes.METHOD
    unregister_method("sleepy")


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory):
    """A 64x48 pan of 6 frames, as .mp4 bytes."""
    folder = tmp_path_factory.mktemp("clip")
    image = torch.rand(1, 3, 80, 96, generator=torch.Generator().manual_seed(0))
    frames, _ = make_clip("pan", image, (48, 64), FRAMES)
    for i, frame in enumerate(frames):
        save_image(frame, folder / frame_name(i))
    out = write_clip(folder, FRAMES, folder / "pan.mp4", Fraction(10))
    return out.read_bytes()


@pytest.fixture()
def client(tmp_path):
    app = create_app(ServerConfig(tmp_path / "work", devices=["cpu"], preview_interval=0))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def post(client, data, name):
    return client.post("/api/uploads", params={"name": name}, content=data,
                       headers={"content-type": "application/octet-stream"})


def test_a_clip_upload_is_checked_and_kept_with_a_thumbnail(client, clip_bytes):
    r = post(client, clip_bytes, "walk.mp4")
    assert r.status_code == 201, r.text
    info = r.json()
    assert (info["format"], info["frames"], info["width"], info["height"]) == ("MP4", FRAMES, 64, 48)
    assert client.get(info["url"]).content == clip_bytes  # kept as it came
    thumb = Image.open(io.BytesIO(client.get(info["thumb"]).content))
    assert thumb.format == "JPEG" and thumb.size == (64, 48)
    image = post(client, png_bytes(), "style.png").json()
    assert image["frames"] is None
    limits = client.get("/api/status").json()["limits"]
    assert limits["clip_bytes"] == upload_module.MAX_CLIP_BYTES and limits["clip_frames"] == 120
    folder = client.app.state.uploads.folder
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_over_limit_and_unreadable_clips_get_one_line_and_leave_nothing(client, clip_bytes, monkeypatch):
    folder = client.app.state.uploads.folder
    monkeypatch.setattr(upload_module, "MAX_CLIP_FRAMES", 4)
    r = post(client, clip_bytes, "long.mp4")
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "long.mp4: the clip has 6 frames; this server takes clips of up to 4 frames"
    monkeypatch.setattr(upload_module, "MAX_CLIP_BYTES", 1000)
    r = post(client, clip_bytes, "big.mp4")
    assert r.status_code == 413 and r.json()["error"].startswith("big.mp4: the clip is too large (")
    assert "\n" not in r.json()["error"] and "up to 0.001 MB" in r.json()["error"]
    monkeypatch.undo()
    r = post(client, b"not a video at all" * 10, "broken.webm")
    assert r.status_code == 400, r.text
    message = r.json()["error"]
    assert message.startswith("broken.webm: cannot read clip the upload") and "\n" not in message
    assert str(folder) not in message
    assert list(folder.iterdir()) == []


def test_a_clip_style_transfer_runs_as_a_video_job_with_a_frame_strip(client, clip_bytes):
    clip = post(client, clip_bytes, "walk.mp4").json()["id"]
    style = post(client, png_bytes(), "style.png").json()["id"]
    settings = {"task": "transfer", "method": "sleepy", "style": [style], "content": clip, "seed": 2,
                "options": {"steps": 2}}
    r = client.post("/api/jobs", json=settings)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    assert r.json()["label"].startswith("sleepy clip style transfer")
    client.app.state.queue.wait(job_id, 60)
    job = client.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "done", job
    assert job["progress"]["frame"] == FRAMES and job["progress"]["frames"] == FRAMES  # progress per frame
    result = job["result"]
    assert result["frames"] == FRAMES and result["video"] == f"/api/jobs/{job_id}/video"
    assert (result["width"], result["height"]) == (64, 48)
    r = client.get(result["video"])
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    results = client.app.state.queue.results
    made = open_clip(results / f"{job_id}.mp4")
    assert made.count == FRAMES and made.size == (48, 64)
    strip = Image.open(io.BytesIO(client.get(result["thumb"]).content))
    assert strip.format == "JPEG" and strip.size == (4 * 64, 48)  # four frames side by side
    assert [p.name for p in results.iterdir() if p.name.startswith(".")] == []  # the frames went
    assert [p.name for p in client.app.state.uploads.folder.iterdir() if p.name.startswith(".")] == []
    listed = client.get("/api/jobs").json()["finished"]
    assert [j["id"] for j in listed] == [job_id] and listed[0]["result"]["frames"] == FRAMES
    assert client.app.state.uploads.path(clip).read_bytes() == clip_bytes  # the input untouched
    again = create_app(ServerConfig(client.app.state.config.workdir, devices=["cpu"]))  # a restarted server
    assert again.state.queue.finished()[0]["result"]["video"] == result["video"]
    r = client.delete(f"/api/jobs/{job_id}")
    assert r.status_code == 204 and not (results / f"{job_id}.mp4").exists()


def test_a_clip_is_only_the_content_of_a_style_transfer(client, clip_bytes):
    clip = post(client, clip_bytes, "walk.mp4").json()["id"]
    image = post(client, png_bytes(), "style.png").json()["id"]
    r = client.post("/api/jobs", json={"task": "transfer", "method": "sleepy", "style": [clip], "content": image})
    assert r.status_code == 400 and r.json()["option"] == "style"
    assert r.json()["error"].startswith("style: a clip cannot be a style")
    r = client.post("/api/jobs", json={"task": "color", "style": [image], "content": clip})
    assert r.status_code == 400 and r.json()["option"] == "content"


def test_a_cancelled_clip_run_leaves_no_video_and_no_frames(client, clip_bytes):
    clip = post(client, clip_bytes, "walk.mp4").json()["id"]
    style = post(client, png_bytes(), "style.png").json()["id"]
    job_id = client.post("/api/jobs", json={"task": "transfer", "method": "sleepy", "style": [style], "content": clip,
                                            "options": {"steps": 4, "delay": 0.4}}).json()["id"]
    queue = client.app.state.queue  # 1.6 s a frame: the run cannot end between the first frame and the check
    deadline = time.monotonic() + 30
    while not (queue.get(job_id).progress or {}).get("frame") and time.monotonic() < deadline:
        time.sleep(0.02)  # a frame written: the frames folder exists
    assert queue.get(job_id).status == "running", queue.get(job_id).error
    assert (queue.results / f".{job_id}.mp4.frames").is_dir()
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    assert queue.wait(job_id, 30).status == "cancelled"
    assert sorted(p.name for p in queue.results.iterdir()) == [f"{job_id}.json"]


@pytest.fixture()
def made_video_jobs(monkeypatch):
    """The video jobs that make_video_job (the one request path) makes, as the web app calls it."""
    from ottex.video import run as video_run

    made, real = [], video_run.make_video_job

    def spy(*args, **kwargs):
        vjob = real(*args, **kwargs)
        made.append(vjob)
        return vjob

    monkeypatch.setattr(video_run, "make_video_job", spy)
    return made


def test_a_clip_run_takes_the_temporal_mode_and_a_frame_range(client, clip_bytes, made_video_jobs):
    clip = post(client, clip_bytes, "walk.mp4").json()["id"]
    style = post(client, png_bytes(), "style.png").json()["id"]
    r = client.post("/api/jobs", json={"task": "transfer", "method": "sleepy", "style": [style], "content": clip,
                                       "temporal": "per-frame", "frames": "1:4", "blend": "0.25",
                                       "options": {"steps": 1}})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    client.app.state.queue.wait(job_id, 60)
    job = client.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "done", job
    assert job["result"]["frames"] == 3 and job["progress"]["frames"] == 3
    recorded = job["settings"]
    assert (recorded["temporal"], recorded["frames"], recorded["blend"], recorded["container"]) == \
        ("per-frame", "1:4", 0.25, "mp4")
    saved = client.get(f"/api/jobs/{job_id}/settings").json()["settings"]  # the record on disk
    assert saved["temporal"] == "per-frame" and saved["frames"] == "1:4"
    run = made_video_jobs[-1]  # the job that ran: built by make_video_job with the form's settings
    assert (run.temporal, run.blend, run.start, run.stop) == ("per-frame", 0.25, 1, 4)
    assert run.output.name == f"{job_id}.mp4"
    assert open_clip(client.app.state.queue.results / f"{job_id}.mp4").count == 3
    r = client.post(f"/api/jobs/{job_id}/rerun", json={"seed": 5})  # the record posted again: the same range
    assert r.status_code == 201 and r.json()["settings"]["frames"] == "1:4"
    client.app.state.queue.wait(r.json()["id"], 60)
    assert client.get(f"/api/jobs/{r.json()['id']}").json()["result"]["frames"] == 3


@pytest.mark.parametrize("extra,option,message", [
    ({"blend": 2}, "blend", "blend takes a number between 0 and 1, got 2"),
    ({"blend": "lots"}, "blend", "blend takes a number between 0 and 1, got 'lots'"),
    ({"frames": "7:9"}, "frames", "frames 7:9 select no frame of a 6-frame clip"),
    ({"frames": "4:2"}, "frames", "frames 4:2 select no frame of a 6-frame clip"),
    ({"frames": "three"}, "frames", "frames takes START:STOP (frame numbers), got 'three'"),
    ({"temporal": "sideways"}, "temporal", "unknown temporal mode 'sideways' (choose from consistent, blend, "
                                           "per-frame)"),
    ({"container": "avi"}, "container", "container takes mp4 or webm, got 'avi'"),
])
def test_bad_clip_settings_are_make_video_jobs_one_line_errors(client, clip_bytes, extra, option, message):
    clip = post(client, clip_bytes, "walk.mp4").json()["id"]
    style = post(client, png_bytes(), "style.png").json()["id"]
    r = client.post("/api/jobs", json={"task": "transfer", "method": "sleepy", "style": [style], "content": clip,
                                       **extra})
    assert r.status_code == 400, r.text
    assert r.json() == {"error": message, "option": option}
    assert client.get("/api/jobs").json()["active"] == []  # nothing queued


def test_clip_settings_are_refused_for_an_image(client):
    image = post(client, png_bytes(), "content.png").json()["id"]
    style = post(client, png_bytes(), "style.png").json()["id"]
    r = client.post("/api/jobs", json={"task": "transfer", "method": "sleepy", "style": [style], "content": image,
                                       "temporal": "blend"})
    assert r.status_code == 400 and r.json()["option"] == "temporal"
    assert r.json()["error"] == "temporal applies to a clip (the content of a style transfer), not to an image"
    r = client.post("/api/jobs", json={"task": "transfer", "method": "sleepy", "style": [style], "content": image,
                                       "temporal": "", "blend": None, "frames": "", "container": ""})
    assert r.status_code == 201, r.text  # blank: as the page's hidden fields
    assert "temporal" not in r.json()["settings"]
    schema = client.get("/api/schema").json()["clip"]
    assert schema["temporal"] == ["consistent", "blend", "per-frame"] and schema["containers"] == ["mp4", "webm"]


def test_a_webm_result_downloads_as_video_webm(client, clip_bytes):
    clip = post(client, clip_bytes, "walk.mp4").json()["id"]
    style = post(client, png_bytes(), "style.png").json()["id"]
    r = client.post("/api/jobs", json={"task": "transfer", "method": "sleepy", "style": [style], "content": clip,
                                       "temporal": "per-frame", "frames": ":2", "container": "webm"})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    assert r.json()["settings"]["frames"] == "0:2" and r.json()["settings"]["container"] == "webm"
    queue = client.app.state.queue
    queue.wait(job_id, 60)
    result = client.get(f"/api/jobs/{job_id}").json()["result"]
    assert result["frames"] == 2
    for url in (result["video"], result["image"]):
        r = client.get(url)
        assert r.status_code == 200 and r.headers["content-type"] == "video/webm"
        assert r.headers["content-disposition"].endswith(f'_{job_id}.webm"')
        assert r.content == (queue.results / f"{job_id}.webm").read_bytes()
    assert not (queue.results / f"{job_id}.mp4").exists()
    assert open_clip(queue.results / f"{job_id}.webm").count == 2
    assert client.get(result["thumb"]).headers["content-type"] == "image/jpeg"
    again = create_app(ServerConfig(client.app.state.config.workdir, devices=["cpu"]))  # a restarted server
    assert again.state.queue.finished()[0]["result"]["video"] == result["video"]
    r = client.delete(f"/api/jobs/{job_id}")
    assert r.status_code == 204 and sorted(p.name for p in queue.results.iterdir()) == []
