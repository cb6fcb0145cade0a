"""The web app of ``ottex serve`` through its HTTP API (Starlette's TestClient, and a real server for the event
streams): every endpoint, bad uploads, bad settings, failed and cancelled runs, the queue, reproducibility."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from PIL import Image

from web_support import bomb_png, http_module, png_bytes, require

require("starlette", "the web app tests")
require("httpx2", "the web app tests")

from starlette.testclient import TestClient  # noqa: E402

from ottex.app.web.forms import form_schema, parse_settings  # noqa: E402
from ottex.app.web.jobs import EtaEstimator  # noqa: E402
from ottex.app.web.server import ServerConfig, ServerThread, create_app  # noqa: E402
from ottex.app.web.uploads import UploadStore  # noqa: E402
from ottex.core.errors import InputError  # noqa: E402
from ottex.core.progress import ProgressEvent  # noqa: E402
from ottex.methods.base import get_method, register_method, unregister_method  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def sleepy():
    import web_fakes

    register_method(web_fakes.METHOD, replace=True)
    yield web_fakes.METHOD
    unregister_method("sleepy")


def make_app(workdir, **changes):
    return create_app(ServerConfig(workdir, **{"devices": ["cpu"], "preview_interval": 0, **changes}))


@pytest.fixture()
def client(tmp_path):
    with TestClient(make_app(tmp_path / "work"), base_url="http://127.0.0.1") as c:
        yield c


def upload(client, data=None, name="style.png"):
    r = client.post("/api/uploads", params={"name": name}, content=png_bytes() if data is None else data,
                    headers={"content-type": "image/png"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def submit(client, settings, status=201):
    r = client.post("/api/jobs", json=settings)
    assert r.status_code == status, r.text
    return r.json()


def finish(client, job_id, timeout=60):
    client.app.state.queue.wait(job_id, timeout)
    return client.get(f"/api/jobs/{job_id}").json()


def sleepy_run(client, style, **options):
    return {"task": "synthesis", "method": "sleepy", "style": [style], "width": 32, "height": 48, "seed": 3,
            "options": options}


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------------------------------------------------
# The page and the schema


def test_page_and_static_files_with_a_strict_policy(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert '<script src="/static/app.js"' in r.text and "<style" not in r.text  # no inline code: CSP holds
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    for path, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        r = client.get(path)
        assert r.status_code == 200 and kind in r.headers["content-type"], path
    assert client.get("/static/../forms.py").status_code == 404
    assert client.get("/static/%2e%2e/forms.py").status_code == 404


def test_schema_is_the_registry(client, sleepy):
    schema = client.get("/api/schema").json()
    registry = json.loads(json.dumps(form_schema(client.app.state.config.limits())))
    offered = json.loads(json.dumps(schema))
    for m, r in zip(offered["methods"], registry["methods"]):  # weight sets and models: choices, else the registry's
        for o, ro in zip(m["options"], r["options"]):
            if o["name"] in ("weights", "model"):
                assert o["widget"] == "choice" and ro["widget"] in ("text", "choice"), o
                assert o["default"] == ro["default"] and o["help"].startswith(ro["help"])
                o.update(widget=ro["widget"], choices=ro["choices"], help=ro["help"])
    assert offered == registry
    names = [m["name"] for m in schema["methods"]]
    assert {"ot", "w2", "gatys", "swd", "strotss", "sleepy"} <= set(names)
    assert schema["default_method"] == "ot"
    for m in schema["methods"]:
        method = get_method(m["name"])
        assert m["tasks"] == list(method.tasks) and m["description"] == method.description
        specs = {s.name: s for s in method.option_specs() if s.cli}
        assert [o["name"] for o in m["options"]] == list(specs), m["name"]
        for o in m["options"]:
            assert o["help"].startswith(specs[o["name"]].help) and o["tasks"] == list(specs[o["name"]].tasks)
    ot = {o["name"]: o for o in schema["methods"][names.index("ot")]["options"]}
    assert ot["content_strength"]["default"] == 0.7 and ot["content_strength"]["widget"] == "float"
    assert ot["tile"]["widget"] == "bool" and ot["tile"]["tasks"] == ["synthesis"]
    assert ot["mode"]["widget"] == "choice" and ot["mode"]["choices"] == ["sort", "chol", "pca", "sym"]
    assert ot["style_mask"]["widget"] == "mask" and ot["passes"]["widget"] == "text"
    assert ot["weights"]["widget"] == "choice" and ot["weights"]["choices"] == ["hybrid", "cd16x", "wct-vgg19"]
    assert "schedule" not in ot  # library-only options are not offered (as on the command line)
    w2 = {o["name"]: o for o in schema["methods"][names.index("w2")]["options"]}
    assert w2["steps"]["default"] == "100,40"
    assert w2["weights"]["choices"] == ["cd16x", "vgg19-caffe", "vgg19-torchvision"]
    strotss = {o["name"]: o for o in schema["methods"][names.index("strotss")]["options"]}
    assert strotss["weights"]["choices"] == ["hybrid", "cd16x", "vgg19-caffe"]
    assert schema["methods"][names.index("ot")]["mixes"] and not schema["methods"][names.index("w2")]["mixes"]
    assert [t["name"] for t in schema["tasks"]] == ["synthesis", "transfer", "color"]
    assert schema["color"]["rotations"]["default"] == 20


def test_status(client):
    st = client.get("/api/status").json()
    assert st["devices"] == ["cpu"] and st["queued"] == 0 and st["running"] == 0
    assert st["limits"]["upload_bytes"] > 0 and st["version"]


# ----------------------------------------------------------------------------------------------------------
# Uploads


def test_upload_is_decoded_and_stored_under_a_server_chosen_name(client):
    folder = client.app.state.uploads.folder
    r = client.post("/api/uploads", params={"name": "../../etc/passwd\x00.png"}, content=png_bytes((40, 30)))
    assert r.status_code == 201, r.text
    info = r.json()
    assert (info["width"], info["height"], info["format"]) == (40, 30, "PNG")
    assert info["name"] == "passwd.png" and "/" not in info["name"]
    assert leftovers(folder) == sorted([f"{info['id']}.png", f"{info['id']}.json", f"{info['id']}.thumb.jpg"])
    got = client.get(info["url"])
    assert got.status_code == 200 and got.content == png_bytes((40, 30))
    assert client.get(f"/api/uploads/{info['id']}/info").json()["name"] == "passwd.png"


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_upload_of_other_modes_and_formats(client, mode):
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    r = client.post("/api/uploads", params={"name": f"x.{fmt.lower()}"}, content=png_bytes(mode=mode, fmt=fmt))
    assert r.status_code == 201, r.text


def test_bad_uploads_get_a_message_and_leave_nothing(tmp_path):
    app = make_app(tmp_path / "work", max_upload_bytes=20_000, max_upload_pixels=100_000)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        folder = app.state.uploads.folder
        good = png_bytes((64, 64))
        buf = io.BytesIO()
        Image.new("L", (400, 300)).save(buf, format="PNG")  # few bytes, many pixels
        flat = buf.getvalue()
        assert len(flat) < 20_000
        cases = {
            "empty": (b"", 400, "empty"),
            "text": (b"hello, I am not an image" * 10, 400, "not an image"),
            "truncated": (good[: len(good) // 2], 400, "cannot read"),
            "too many bytes": (png_bytes((120, 120)), 413, "too large"),
            "too many pixels": (flat, 413, "400x300 px"),
            "bomb": (bomb_png(), 413, "decompression bomb"),
            "gif is fine but svg is not": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", 400, "not an image"),
        }
        for name, (data, status, words) in cases.items():
            r = client.post("/api/uploads", params={"name": "x.png"}, content=data)
            assert r.status_code == status, (name, r.text)
            body = r.json()
            assert words in body["error"] and body["option"] == "upload", (name, body)
            assert "Traceback" not in r.text and "File \"" not in r.text
        assert leftovers(folder) == []  # no temporary files, nothing kept
        assert client.post("/api/uploads", content=good).status_code == 201  # still serving


def test_upload_over_the_byte_limit_is_refused_while_streaming(tmp_path):
    app = make_app(tmp_path / "work", max_upload_bytes=50_000)
    with TestClient(app, base_url="http://127.0.0.1") as client:

        def chunks():  # no content-length: the limit must be enforced on the bytes as they come
            for _ in range(100):
                yield b"\x00" * 10_000

        r = client.post("/api/uploads", content=chunks())
        assert r.status_code == 413 and "too large" in r.json()["error"]
        assert leftovers(app.state.uploads.folder) == []


def test_upload_ids_cannot_name_other_files(client):
    for bad in ("..%2F..%2Fetc%2Fpasswd", "0" * 31, "g" * 32, "0" * 32, "%2e%2e"):
        r = client.get(f"/api/uploads/{bad}")
        assert r.status_code == 404, bad
        assert "error" in r.json()


# ----------------------------------------------------------------------------------------------------------
# Runs


def test_a_run_from_queue_to_gallery(client):
    style = upload(client)
    job = submit(client, sleepy_run(client, style, steps=6))
    assert job["status"] in ("queued", "running") and job["label"] == "sleepy texture 32x48, seed 3"
    done = finish(client, job["id"])
    assert done["status"] == "done", done
    assert done["progress"]["done"] == done["progress"]["total"] == 6
    assert done["progress"]["eta"] == 0.0 and done["progress"]["elapsed"] > 0
    assert 0 <= done["startup"] <= done["seconds"]
    res = done["result"]
    assert (res["width"], res["height"]) == (32, 48)
    r = client.get(res["image"])
    assert r.headers["content-type"] == "image/png" and "attachment" in r.headers["content-disposition"]
    assert Image.open(io.BytesIO(r.content)).size == (32, 48)
    thumb = client.get(res["thumb"])
    assert thumb.headers["content-type"] == "image/jpeg"
    record = client.get(res["settings"]).json()
    assert record["settings"] == done["settings"] == sleepy_run(client, style, steps=6) | {"options": {"steps": 6}}
    assert record["seconds"] > 0 and record["device"] == "cpu" and record["ottex"]
    assert "attachment" in client.get(res["settings"], params={"download": 1}).headers["content-disposition"]
    jobs = client.get("/api/jobs").json()
    assert jobs["active"] == [] and [j["id"] for j in jobs["finished"]] == [job["id"]]


def test_same_settings_same_image_and_a_new_seed_a_new_one(client):
    style = upload(client)
    first = finish(client, submit(client, sleepy_run(client, style))["id"])
    again = finish(client, submit(client, first["settings"])["id"])  # the recorded settings, posted again
    image = client.get(first["result"]["image"]).content
    assert client.get(again["result"]["image"]).content == image
    r = client.post(f"/api/jobs/{first['id']}/rerun", json={})
    assert r.status_code == 201
    rerun = finish(client, r.json()["id"])
    assert rerun["settings"]["seed"] != first["settings"]["seed"]
    assert {k: v for k, v in rerun["settings"].items() if k != "seed"} == \
        {k: v for k, v in first["settings"].items() if k != "seed"}
    assert client.get(rerun["result"]["image"]).content != image
    chosen = finish(client, client.post(f"/api/jobs/{first['id']}/rerun", json={"seed": 11}).json()["id"])
    assert chosen["settings"]["seed"] == 11


def test_bad_settings_are_refused_with_the_setting_named(client):
    style = upload(client)
    base = sleepy_run(client, style)
    cases = [
        ({**base, "method": "nope"}, "method", "unknown method"),
        ({**base, "task": "dance"}, "task", "unknown task"),
        ({**base, "options": {"steps": 0}}, "steps", "at least 1"),
        ({**base, "options": {"steps": "many"}}, "steps", "takes an integer"),
        ({**base, "options": {"content_strength": 0.5}}, "content_strength", "no option"),
        ({**base, "options": {"fail": "sometimes"}}, "fail", "one of"),
        ({**base, "width": 8}, "width", "at least 16"),
        ({**base, "width": 100000, "height": 100000}, "size", "megapixels"),
        ({**base, "seed": -1}, "seed", "at least 0"),
        ({**base, "style": []}, "style", "style image"),
        ({**base, "style": ["0" * 32]}, "style", "no upload"),
        ({**base, "style": ["../../x"]}, "style", "not an upload id"),
        ({**base, "method": "w2", "style": [style, style], "options": {}}, "style", "takes one style"),
        ({**base, "task": "transfer", "options": {}}, "content", "content image"),
        ({**base, "nonsense": 1}, "nonsense", "unknown setting"),
        ({**base, "method": "ot", "options": {"passes": "1,x"}}, "passes", "comma-separated"),
        ({**base, "method": "ot", "options": {"style_mask": "0" * 32}}, "style_mask", "no upload"),
        ({**base, "method": "ot", "options": {"mix": "1.5"}, "style": [style, style]}, "mix", "[0, 1]"),
    ]
    for settings, option, words in cases:
        r = client.post("/api/jobs", json=settings)
        assert r.status_code == 400, (settings, r.text)
        assert r.json()["option"] == option and words in r.json()["error"], (settings, r.json())
    r = client.post("/api/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "the request body is not JSON"
    assert client.get("/api/jobs").json()["active"] == []


def test_failed_runs_say_why_without_a_stack_trace_and_the_server_goes_on(client):
    style = upload(client)
    user = finish(client, submit(client, sleepy_run(client, style, fail="input"))["id"])
    assert user["status"] == "failed" and user["error"] == "the sleepy method refuses to run"
    assert user["option"] == "fail"
    bug = finish(client, submit(client, sleepy_run(client, style, fail="crash"))["id"])
    assert bug["status"] == "failed"
    assert bug["error"].startswith("internal error (RuntimeError)") and "Traceback" not in bug["error"]
    assert client.get(f"/api/jobs/{bug['id']}/image").status_code == 400
    ok = finish(client, submit(client, sleepy_run(client, style))["id"])
    assert ok["status"] == "done"
    results = client.app.state.queue.results  # the failed runs keep their record (they show after a restart)
    assert leftovers(results) == sorted([f"{ok['id']}{s}" for s in (".json", ".png", ".thumb.jpg")] +
                                        [f"{user['id']}.json", f"{bug['id']}.json"])


def test_cancel_stops_a_run_long_before_its_end_and_leaves_no_output(client):
    """How soon is a measurement (docs/benchmarks.md, Web app: about half a second); the bound here only tells an
    interrupted run (20 s long) from one that ran on, with room for a busy machine."""
    style = upload(client)
    job = submit(client, sleepy_run(client, style, steps=400, delay=0.05))  # 20 s if not cancelled
    queue = client.app.state.queue
    end = time.monotonic() + 20
    while (queue.get(job["id"]).progress or {}).get("done", 0) < 2:
        assert time.monotonic() < end, "no progress"
        time.sleep(0.02)
    preview = client.get(f"/api/jobs/{job['id']}/preview")
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
    t0 = time.monotonic()
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    done = finish(client, job["id"], timeout=10)
    assert done["status"] == "cancelled" and time.monotonic() - t0 < 5.0
    assert done["progress"]["done"] < 400
    assert leftovers(queue.results) == [f"{job['id']}.json"]  # the cancelled run left its record only
    assert client.get(f"/api/jobs/{job['id']}/image").status_code == 400
    assert client.get(f"/api/jobs/{job['id']}/preview").status_code == 200  # a page may still ask for it
    for _ in range(4):  # kept for the last few finished runs only
        finish(client, submit(client, sleepy_run(client, style))["id"])
    assert client.get(f"/api/jobs/{job['id']}/preview").status_code == 404
    assert [p for p in leftovers(queue.results) if p.startswith(job["id"])] == [f"{job['id']}.json"]


def test_a_run_with_long_steps_is_interrupted_soon_after_cancel(client):
    style = upload(client)
    job = submit(client, sleepy_run(client, style, steps=2, delay=20))  # one step takes 20 s
    queue = client.app.state.queue
    end = time.monotonic() + 20
    while queue.get(job["id"]).progress is None:  # the first event: the first scale begins
        assert time.monotonic() < end
        time.sleep(0.01)
    t0 = time.monotonic()
    client.post(f"/api/jobs/{job['id']}/cancel")
    done = finish(client, job["id"], timeout=10)
    assert done["status"] == "cancelled" and done["error"] is None
    assert time.monotonic() - t0 < 5  # the grace of 0.5 s, then interrupted between two short operations (not 20 s)
    assert leftovers(queue.results) == [f"{job['id']}.json"]
    assert json.loads((queue.results / f"{job['id']}.json").read_text())["status"] == "cancelled"
    after = finish(client, submit(client, sleepy_run(client, style))["id"])  # the worker is fine
    assert after["status"] == "done"


def test_the_queue_runs_one_at_a_time_in_order_and_shows_itself(client):
    style = upload(client)
    ids = [submit(client, sleepy_run(client, style, steps=40, delay=0.02))["id"] for _ in range(3)]
    queue = client.app.state.queue
    end = time.monotonic() + 20
    while queue.get(ids[0]).status != "running":
        assert time.monotonic() < end
        time.sleep(0.01)
    active = client.get("/api/jobs").json()["active"]
    assert [(j["id"], j["status"], j["position"]) for j in active] == \
        [(ids[0], "running", None), (ids[1], "queued", 0), (ids[2], "queued", 1)]
    cancelled = client.post(f"/api/jobs/{ids[1]}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["started"] is None  # a queued run leaves at once
    first, third = finish(client, ids[0]), finish(client, ids[2])
    assert first["status"] == third["status"] == "done"
    assert first["finished"] <= third["started"]  # never two at once on one device
    assert queue.get(ids[1]).started is None


def test_unknown_runs(client):
    done = finish(client, submit(client, sleepy_run(client, upload(client)))["id"])
    for what in ("foo", "json", "image.png", "preview.jpg"):
        r = client.get(f"/api/jobs/{done['id']}/{what}")
        assert r.status_code == 404 and "error" in r.json(), what
    for path in ("/api/jobs/0123456789abcdef", "/api/jobs/nope", "/api/jobs/0123456789abcdef/image"):
        assert client.get(path).status_code == 404, path
    assert client.post("/api/jobs/0123456789abcdef/cancel").status_code == 404
    assert client.post("/api/jobs/0123456789abcdef/rerun", json={}).status_code == 404


def test_transfer_and_colour_transfer(client):
    content = upload(client, png_bytes((64, 48), seed=1), "content.png")
    style = upload(client, png_bytes((40, 40), seed=2), "style.jpg")
    t = finish(client, submit(client, {"task": "transfer", "method": "sleepy", "style": [style], "content": content,
                                       "size": 32, "preserve_color": "luminance"})["id"])
    assert t["status"] == "done" and (t["result"]["width"], t["result"]["height"]) == (32, 24)
    assert t["settings"]["preserve_color"] == "luminance"
    c = finish(client, submit(client, {"task": "color", "style": [style], "content": content, "rotations": 5})["id"])
    assert c["status"] == "done" and (c["result"]["width"], c["result"]["height"]) == (64, 48)
    assert c["label"] == "colour transfer, 5 rotations, seed 0"
    c2 = finish(client, submit(client, c["settings"])["id"])
    assert client.get(c2["result"]["image"]).content == client.get(c["result"]["image"]).content


def test_results_outlive_the_server(tmp_path):
    with TestClient(make_app(tmp_path / "work"), base_url="http://127.0.0.1") as client:
        job = finish(client, submit(client, sleepy_run(client, upload(client)))["id"])
    with TestClient(make_app(tmp_path / "work"), base_url="http://127.0.0.1") as client:
        (again,) = client.get("/api/jobs").json()["finished"]
        assert again["id"] == job["id"] and again["settings"] == job["settings"]
        assert client.get(again["result"]["image"]).status_code == 200
        rerun = finish(client, client.post(f"/api/jobs/{job['id']}/rerun", json={"seed": 3}).json()["id"])
        assert rerun["status"] == "done"


def test_foreign_hosts_and_cross_site_requests_are_refused(client):
    assert client.get("/api/status", headers={"host": "evil.example"}).status_code == 400  # DNS rebinding
    assert client.get("/api/status", headers={"host": "evil.example:80"}).status_code == 400
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000"):
        assert client.get("/api/status", headers={"host": host}).status_code == 200, host
    r = client.post("/api/uploads", content=png_bytes(), headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and r.json()["error"] == "cross-site request refused"
    assert client.post("/api/uploads", content=png_bytes(), headers={"origin": "http://127.0.0.1"}).status_code == 201


def test_job_event_stream(client):
    style = upload(client)
    job = submit(client, sleepy_run(client, style, steps=10, delay=0.03))
    events = []
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    progress = [d for k, d in events if k == "progress"]
    states = [d["status"] for k, d in events if k == "state"]
    assert states[-1] == "done" and "running" in states
    assert len(progress) >= 2 and all(p["id"] == job["id"] for p in progress)
    mid = [p for p in progress if 0 < p["done"] < p["total"]]
    # the time left is estimated once min_steps steps after the first are timed (EtaEstimator); which events the
    # stream relays depends on timing, so an early one (done <= min_steps) may come without it
    timed = [p for p in mid if p["done"] > EtaEstimator().min_steps]
    assert timed and all(p["eta"] is not None and p["eta"] > 0 and p["elapsed"] > 0 for p in timed), progress
    assert all(p["preview"] for p in mid) and {p["unit"] for p in progress} == {"step"}


# ----------------------------------------------------------------------------------------------------------
# A real server: the global event stream, disconnecting clients


def test_server_event_stream_and_clients_that_disconnect(tmp_path):
    app = make_app(tmp_path / "work")
    with ServerThread(app) as url, http_module().Client(base_url=url, timeout=10) as http:
        style = http.post("/api/uploads", content=png_bytes()).json()["id"]
        for _ in range(5):  # clients that read a little and go away, mid-stream
            with http.stream("GET", "/api/events") as r:
                assert r.status_code == 200
                for line in r.iter_lines():
                    if line.startswith("event: queue"):
                        break
        job = http.post("/api/jobs", json=sleepy_run(None, style, steps=20, delay=0.05)).json()
        seen = {"queue": 0, "progress": 0}
        with http.stream("GET", "/api/events") as r:
            kind = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind in seen:
                    seen[kind] += 1
                    data = json.loads(line[6:])
                    if kind == "progress":
                        assert data["id"] == job["id"]
                        if data["done"] >= 3:
                            break  # and disconnect while the run goes on
        assert seen["queue"] >= 1 and seen["progress"] >= 1
        app.state.queue.wait(job["id"], 30)
        assert http.get(f"/api/jobs/{job['id']}").json()["status"] == "done"
        assert http.get("/").status_code == 200


# ----------------------------------------------------------------------------------------------------------
# Pieces


def test_eta_weights_steps_by_the_pixels_of_their_scale():
    eta = EtaEstimator()

    def ev(kind, scale, step, done, steps=(4, 4), sizes=((16, 16), (32, 32))):
        return ProgressEvent("m", kind, scale, 2, sizes[scale], step, steps[scale], done, sum(steps))

    assert eta.update(ev("scale", 0, 0, 0), 0.1) is None
    # the first step ends 5 s in (inputs read, networks built: paid once, not a rate): no estimate yet, nor after
    # one timed step; then 2 steps in 1 s: 1 coarse step (0.5 s) and 4 steps of 4x the pixels (8 s) are left
    assert eta.update(ev("step", 0, 1, 1), 5.0) is None
    assert eta.update(ev("step", 0, 2, 2), 5.5) is None
    assert eta.update(ev("step", 0, 3, 3), 6.0) == pytest.approx(8.5)  # the old estimate: 34 s (startup as work)
    assert eta.update(ev("step", 1, 2, 6), 10.0) == pytest.approx(5.0 / (3 * 256 + 2 * 1024) * 2 * 1024)
    assert eta.update(ev("done", 1, 4, 8), 12.0) == 0.0


def test_settings_convert_like_the_command_line(tmp_path):
    store = UploadStore(tmp_path)
    a, b = (store.add_bytes(png_bytes(seed=i), "x.png").id for i in (1, 2))
    s = parse_settings({"task": "synthesis", "method": "ot", "style": [a, b], "width": "64", "height": "",
                        "options": {"mix": "0.3", "passes": "2,1", "pca": "off", "tile": True, "mode": "sym",
                                    "style_scale": "", "rotations": 3}}, store)
    assert (s.width, s.height) == (64, 64)
    assert s.values == {"mix": (0.7, 0.3), "passes": (2, 1), "pca": False, "tile": True, "mode": "sym",
                        "rotations": 3}
    assert s.options["mix"] == [0.3] and s.options["passes"] == [2, 1]  # as given: posting them again is the same
    assert parse_settings(s.to_json(), store).values == s.values
    job = s.job(store, tmp_path / "out.png")
    assert job.style == [str(store.path(a)), str(store.path(b))] and job.size == (64, 64)
    assert job.options.mix == (0.7, 0.3) and job.options.passes == (2, 1)
    with pytest.raises(InputError, match="mix needs at least two"):
        parse_settings({"method": "ot", "style": [a], "options": {"mix": "0.3"}}, store)


def test_workers_start_and_stop_with_the_app(tmp_path):
    def workers():
        return [t for t in threading.enumerate() if t.name.startswith("ottex-serve-")]

    assert workers() == []
    with TestClient(make_app(tmp_path / "work", devices=["cpu", "cpu"]), base_url="http://127.0.0.1") as client:
        assert len(workers()) == 2 and client.get("/api/status").json()["devices"] == ["cpu", "cpu"]
        style = upload(client)
        long = [submit(client, sleepy_run(client, style, steps=2, delay=30))["id"] for _ in range(3)]
        queue = client.app.state.queue
        end = time.monotonic() + 20
        while sum(queue.get(i).progress is not None for i in long) < 2:  # two running, one queued
            assert time.monotonic() < end
            time.sleep(0.01)
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 3  # the server stopped its runs (interrupted: each step takes 30 s)
    assert workers() == []
    assert [queue.get(i).status for i in long] == ["cancelled"] * 3


# ----------------------------------------------------------------------------------------------------------
# Real methods


@pytest.mark.needs_weights
def test_ot_reproduces_its_image_and_keeps_its_networks_between_runs(client, monkeypatch, load_test_image):
    from ottex.image.io import to_pil
    from ottex.nn import networks

    buf = io.BytesIO()
    to_pil(load_test_image("style/zebra.jpg", 48)).save(buf, format="PNG")
    style = upload(client, buf.getvalue(), "zebra.png")
    built = []
    for cls in (networks.Encoder, networks.Decoder):
        def counting(self, *args, _init=cls.__init__, **kwargs):
            built.append(type(self).__name__)
            _init(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", counting)
    settings = {"task": "synthesis", "method": "ot", "style": [style], "width": 32, "height": 32, "seed": 5,
                "options": {"weights": "cd16x", "passes": "2"}}
    first = finish(client, submit(client, settings)["id"])
    assert first["status"] == "done", first
    # the run's notes reach the page: the layout auto chose, and why
    assert len(first["notes"]) == 1 and first["notes"][0].startswith("layout off: auto, the example is not structured")
    assert first["progress"]["notes"] == first["notes"]
    assert len(built) == 10 and client.get("/api/status").json()["networks"] == 10  # 5 levels, encoder + decoder
    second = finish(client, submit(client, settings)["id"])
    assert len(built) == 10  # nothing rebuilt: the networks stayed loaded
    image = client.get(first["result"]["image"]).content
    assert client.get(second["result"]["image"]).content == image
    other = finish(client, client.post(f"/api/jobs/{first['id']}/rerun", json={"seed": 6}).json()["id"])
    assert client.get(other["result"]["image"]).content != image


# ----------------------------------------------------------------------------------------------------------
# The command


def test_serve_command_help_and_errors(capsys, monkeypatch, tmp_path):
    from ottex.app.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["serve", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--device", "--workdir", "--max-upload-mb", "--max-upload-megapixels",
                 "--allow-host", "--no-token", "--models-dir", "--max-queue", "--keep-uploads-days"):
        assert flag in out
    assert main(["serve", "--port", "70000", "--workdir", str(tmp_path)]) == 1
    assert "--port must be between 0 and 65535" in capsys.readouterr().err
    assert main(["serve", "--max-queue", "0", "--workdir", str(tmp_path)]) == 1
    assert "--max-queue must be at least 1" in capsys.readouterr().err
    if not __import__("torch").cuda.is_available():
        assert main(["serve", "--device", "cuda", "--port", "0", "--workdir", str(tmp_path)]) == 1
        assert "no CUDA device" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ottex.app.web.server", None)  # as without the web extra
    assert main(["serve", "--port", "0", "--workdir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ottex: error: ottex serve needs the web extra: pip install \"ottex[web]\"")
    assert "Traceback" not in err


def test_serve_prints_its_url_warns_off_loopback_and_stops_on_ctrl_c(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from ottex.app.cli import main; sys.exit(main())",
                             "serve", "--host", "0.0.0.0", "--port", "0", "--workdir", str(tmp_path / "w"),
                             "--device", "cpu", "--allow-host", "studio.example"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        port = re.search(r"http://[^:/]+:(\d+)/\?token=([\w-]+) ", line)
        assert port and str(tmp_path / "w") in line, line
        url, token = f"http://127.0.0.1:{port.group(1)}", port.group(2)
        with http_module().Client(base_url=url, timeout=10) as c:
            assert c.get("/").status_code == 401  # the access link's token is needed off loopback
            r = c.get(f"/?token={token}", follow_redirects=True)  # the link: a cookie, then the page
            assert r.status_code == 200 and "ottex" in r.text
            assert c.get("/api/status").status_code == 200
            assert c.get("/api/status", headers={"host": "evil.example"}).status_code == 400  # DNS rebinding
            assert c.get("/api/status", headers={"host": "my-laptop.local"}).status_code == 400
            assert c.get("/api/status", headers={"host": "my-laptop.local", "x-ottex-token": token}).status_code == 400
            assert c.get("/api/status", headers={"host": "studio.example:8000", "x-ottex-token": token}).status_code \
                == 200  # --allow-host
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "stopped" in out
    assert "ottex: warning: listening on 0.0.0.0" in err and "access link" in err


def test_a_client_that_leaves_mid_upload(tmp_path):
    import socket

    app = make_app(tmp_path / "work")
    with ServerThread(app) as url:
        host, port = url.split("//")[1].rstrip("/").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"POST /api/uploads?name=x.png HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
                         + png_bytes()[:500])
            time.sleep(0.3)
        time.sleep(0.3)
        assert leftovers(app.state.uploads.folder) == []  # the partial upload was removed
        with http_module().Client(base_url=url) as c:
            assert c.post("/api/uploads", content=png_bytes()).status_code == 201


# ----------------------------------------------------------------------------------------------------------
# Issue 31: what a security review and an afternoon as an artist found


def test_nan_and_infinity_are_refused_at_submit_and_never_reach_json(client):
    style = upload(client)
    ot = {"task": "synthesis", "method": "ot", "style": [style], "width": 64, "height": 64}
    cases = [({**ot, "options": {"style_scale": "nan"}}, "style_scale"),
             ({**ot, "options": {"style_scale": "inf"}}, "style_scale"),
             ({**sleepy_run(client, style), "options": {"delay": "-Infinity"}}, "delay"),
             ({**ot, "style": [style, style], "options": {"mix_variation": "NaN"}}, "mix_variation"),
             ({**ot, "style": [style, style, style], "options": {"mix": "nan,1,1"}}, "mix"),
             ({**sleepy_run(client, style), "options": {"delay": "nan"}}, "delay")]
    for settings, option in cases:
        r = client.post("/api/jobs", json=settings)
        assert r.status_code == 400, (settings, r.text)
        assert r.json()["option"] == option and "finite" in r.json()["error"], r.json()
    # NaN as a JSON literal (Python's json writes and reads it; JSON has no such number)
    r = client.post("/api/jobs", content=b'{"task": "synthesis", "method": "sleepy", "style": ["%s"], "width": NaN}'
                    % style.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 400 and "finite" in r.json()["error"]
    assert client.get("/api/jobs").json() == {"active": [], "finished": [], "total": 0, "offset": 0}
    # a record with NaN from an earlier server (as the old code wrote them) no longer breaks the gallery
    done = finish(client, submit(client, sleepy_run(client, style))["id"])
    queue = client.app.state.queue
    record = json.loads((queue.results / f"{done['id']}.json").read_text())
    record["settings"]["options"]["delay"] = float("nan")
    (queue.results / f"{done['id']}.json").write_text(json.dumps(record))  # writes NaN
    with TestClient(make_app(queue.results.parent), base_url="http://127.0.0.1") as again:
        r = again.get("/api/jobs")
        assert r.status_code == 200 and ":NaN" not in r.text  # JSON, which has no NaN
        assert r.json()["finished"][0]["settings"]["options"]["delay"] == "NaN"
        r = again.post(f"/api/jobs/{done['id']}/rerun", json={})
        assert r.status_code == 400 and r.json()["option"] == "delay"


def test_a_nan_loss_does_not_break_the_listing(client):
    from ottex.app.web.server import SafeJSON, _sse

    assert json.loads(SafeJSON({"loss": float("nan"), "x": [float("inf"), 1.0]}).body) == {"loss": None,
                                                                                         "x": [None, 1.0]}
    assert "NaN" not in _sse("progress", {"loss": float("nan")})


def test_an_upload_costs_its_pixels_not_a_gigabyte(tmp_path):
    """A one-colour 6300x6300 PNG (131 KB, 39.7 megapixels): 1.2 GB to check as floats; bytes only now."""
    script = f"""
import resource, struct, zlib
from ottex.app.web.uploads import UploadStore
def chunk(kind, data):  # the PNG written row by row: making it costs no memory to speak of
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
z, row, parts = zlib.compressobj(9), b"\\x00" + bytes([200, 120, 40]) * 6300, []
for _ in range(6300):
    parts.append(z.compress(row))
parts.append(z.flush())
data = (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 6300, 6300, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
store = UploadStore({str(tmp_path / 'w')!r})
import os
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, rss()
info = store.add_bytes(data, "flat.png")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(data), info.width, info.height, (after - before) / 1024, rss() - start)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    size, w, h, grown_mb, kept_mb = out.stdout.split()
    assert (int(w), int(h)) == (6300, 6300) and int(size) < 200_000
    print(f"\nupload of a {int(size) // 1000} KB 6300x6300 PNG: peak memory grew {float(grown_mb):.0f} MB, "
          f"{float(kept_mb):.0f} MB kept after")
    assert float(grown_mb) < 300, grown_mb  # its pixels are 159 MB in Pillow; as floats (and copies) 1.2 GB
    assert float(kept_mb) < 60, kept_mb  # and the memory goes back to the system


def test_uploads_have_jpeg_thumbnails_whatever_their_format(client):
    r = client.post("/api/uploads", params={"name": "scan.tif"}, content=png_bytes((300, 200), fmt="TIFF"))
    assert r.status_code == 201, r.text
    info = r.json()
    assert info["format"] == "TIFF" and info["thumb"] == f"/api/uploads/{info['id']}/thumb"
    thumb = client.get(info["thumb"])
    assert thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size == (256, 171)
    listed = client.get("/api/uploads").json()
    assert listed["total"] == 1 and listed["uploads"][0]["id"] == info["id"]


def test_decodes_are_bounded(tmp_path):
    store = UploadStore(tmp_path, max_decodes=2)
    seen, inside, lock = [], [0], threading.Lock()
    real = store._decode

    def slow(path, name):
        with lock:
            inside[0] += 1
            seen.append(inside[0])
        time.sleep(0.1)
        try:
            return real(path, name)
        finally:
            with lock:
                inside[0] -= 1

    store._decode = slow
    threads = [threading.Thread(target=store.add_bytes, args=(png_bytes(seed=i), "x.png")) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(seen) == 2 and len(seen) == 6


def test_json_bodies_are_bounded(client):
    big = b'{"task": "synthesis", "style": ["' + b"a" * 300_000 + b'"]}'
    r = client.post("/api/jobs", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["error"]

    def chunks():  # no content-length: stopped as the bytes come
        yield b'{"style": ["'
        for _ in range(1000):
            yield b"a" * 10_000

    r = client.post("/api/jobs", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    done = finish(client, submit(client, sleepy_run(client, upload(client)))["id"])
    assert client.post(f"/api/jobs/{done['id']}/rerun", content=big).status_code == 413


def test_queue_and_history_are_bounded_and_runs_can_be_deleted_starred_and_paged(tmp_path):
    app = make_app(tmp_path / "work", max_queued=3, keep_unfinished=2)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        style = upload(client)
        long = sleepy_run(client, style, steps=400, delay=0.05)
        ids = [submit(client, long)["id"] for _ in range(4)]  # one runs, three wait
        r = client.post("/api/jobs", json=long)
        assert r.status_code == 429 and "queue is full" in r.json()["error"]
        assert client.post("/api/jobs", json={**long, "variations": 2}).status_code == 429
        for job_id in ids:
            client.post(f"/api/jobs/{job_id}/cancel")
            finish(client, job_id)
        finished = client.get("/api/jobs").json()["finished"]
        assert len(finished) == 2 and all(j["status"] == "cancelled" for j in finished)  # the newest two kept
        assert len(list(app.state.queue.results.glob("*.json"))) == 2
        # variations: several runs, the next seeds
        made = submit(client, {**sleepy_run(client, style), "variations": 3})
        runs = [finish(client, j) for j in made["runs"]]
        assert [j["settings"]["seed"] for j in runs] == [3, 4, 5] and all(j["status"] == "done" for j in runs)
        assert client.post("/api/jobs", json={**sleepy_run(client, style), "variations": 99}).status_code == 400
        # paging, newest first
        page = client.get("/api/jobs", params={"status": "done", "limit": 2}).json()
        assert page["total"] == 3 and [j["id"] for j in page["finished"]] == [runs[2]["id"], runs[1]["id"]]
        page = client.get("/api/jobs", params={"status": "done", "limit": 2, "offset": 2}).json()
        assert [j["id"] for j in page["finished"]] == [runs[0]["id"]]
        # star, kept in the record
        assert client.post(f"/api/jobs/{runs[0]['id']}/star", json={"starred": True}).json()["starred"] is True
        assert [j["id"] for j in client.get("/api/jobs", params={"starred": 1}).json()["finished"]] == [runs[0]["id"]]
        # delete: gone from the gallery and the disk
        assert client.delete(f"/api/jobs/{runs[1]['id']}").status_code == 204
        assert not list(app.state.queue.results.glob(f"{runs[1]['id']}*"))
        assert client.get(f"/api/jobs/{runs[1]['id']}").status_code == 404
    with TestClient(make_app(tmp_path / "work"), base_url="http://127.0.0.1") as client:
        assert client.get(f"/api/jobs/{runs[0]['id']}").json()["starred"] is True
        assert client.get("/api/jobs", params={"status": "done"}).json()["total"] == 2


def test_off_loopback_only_the_servers_names_and_its_token(tmp_path):
    from ottex.app.web.server import host_names

    names = host_names("0.0.0.0", ["my-laptop.local"])
    assert "my-laptop.local" in names and "127.0.0.1" in names and "evil.example" not in names
    app = make_app(tmp_path / "work", allowed_hosts=names, token="s3cret")
    with TestClient(app, base_url="http://my-laptop.local", follow_redirects=False) as client:
        r = client.get("/api/status", headers={"host": "evil.example", "origin": "http://evil.example"})
        assert r.status_code == 400  # DNS rebinding: refused whatever the Origin says
        assert client.get("/api/status").status_code == 401  # no token
        assert client.get("/api/status", headers={"x-ottex-token": "wrong"}).status_code == 401
        r = client.get("/?token=s3cret")
        assert r.status_code == 303 and r.headers["location"] == "/" and "httponly" in r.headers["set-cookie"].lower()
        cookie = r.headers["set-cookie"].split(";")[0]
        assert cookie.endswith("=s3cret") and client.get("/api/status", headers={"cookie": cookie}).status_code == 200
        assert client.get("/api/status", headers={"x-ottex-token": "s3cret"}).status_code == 200


def test_a_model_is_a_name_in_the_models_folder_never_a_path(client):
    style = upload(client)
    base = {"task": "synthesis", "method": "po", "style": [style], "width": 64, "height": 64}
    answers = set()
    for path in ("/etc/passwd", "/root/.ssh/id_rsa", "../../etc/passwd", "nope.pt"):
        r = client.post("/api/jobs", json={**base, "options": {"model": path}})
        assert r.status_code == 400 and r.json()["option"] == "model", r.text
        answers.add(r.json()["error"].replace(path, "X"))
    assert len(answers) == 1 and "models folder" in answers.pop()  # the same answer, whether a file is there or not
    models = client.app.state.models
    (models / "zebra.pt").write_bytes(b"not really a checkpoint")
    po = next(m for m in client.get("/api/schema").json()["methods"] if m["name"] == "po")
    model = next(o for o in po["options"] if o["name"] == "model")
    assert model["widget"] == "choice" and model["choices"] == ["zebra.pt"]
    job = submit(client, {**base, "options": {"model": "zebra.pt"}})
    assert job["settings"]["options"]["model"] == "zebra.pt"  # the name is recorded, not the server's path
    failed = finish(client, job["id"])
    assert failed["status"] == "failed" and failed["option"] == "model", failed
    assert failed["error"].startswith("models/zebra.pt") and str(models.parent) not in failed["error"], failed


def test_wrong_types_huge_numbers_and_deep_nesting_are_400(client):
    style = upload(client)
    base = sleepy_run(client, style)
    cases = [({**base, "method": ["ot"]}, "method"), ({**base, "task": {"a": 1}}, "task"),
             ({**base, "width": 10**400}, "width"), ({**base, "seed": 10**30}, "seed"),
             ({**base, "width": [64]}, "width"), ({**base, "style": {"id": style}}, "style"),
             ({**base, "options": [1, 2]}, "options"), ({**base, "options": {"steps": {"a": 1}}}, "steps"),
             ({**base, "options": {"steps": 10**400}}, "steps"), ({**base, "options": {"mix": [1, 10**400]}}, "mix")]
    for settings, option in cases:
        r = client.post("/api/jobs", content=json.dumps(settings), headers={"content-type": "application/json"})
        assert r.status_code == 400, (settings, r.text)
        assert r.json()["option"] == option, r.json()
    deep = b"[" * 100_000 + b"]" * 100_000
    r = client.post("/api/jobs", content=deep, headers={"content-type": "application/json"})
    assert r.status_code in (400, 413) and "error" in r.json()
    r = client.post("/api/jobs", content=b"[" * 5_000 + b"]" * 5_000, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "nested" in r.json()["error"]


def test_what_a_run_would_refuse_is_refused_at_submit(client):
    tiny = upload(client, png_bytes((4, 4)), "tiny.png")
    style = upload(client)
    ot = {"task": "synthesis", "method": "ot", "width": 64, "height": 64}
    cases = [({**ot, "style": [tiny]}, "style", "too small"),
             ({**ot, "style": [style, style, style], "options": {"mix": "0,0,0"}}, "mix", "not all zero"),
             ({**ot, "style": [style, style, style], "options": {"mix": "1,1"}}, "mix", "2 mixing weights"),
             ({**ot, "style": [style], "options": {"weights": "my-own-set"}}, "weights", "one of hybrid"),
             ({**ot, "style": [style], "options": {"weights": "vgg19-caffe"}}, "weights", "one of hybrid"),
             ({"task": "transfer", "method": "sleepy", "style": [style], "content": tiny}, "content", "too small")]
    for settings, option, words in cases:
        r = client.post("/api/jobs", json=settings)
        assert r.status_code == 400, (settings, r.text)
        assert r.json()["option"] == option and words in r.json()["error"], r.json()
    assert client.get("/api/jobs").json()["active"] == []


def test_restarts_keep_queued_failed_and_cancelled_runs_and_clean_up(tmp_path):
    work = tmp_path / "work"
    with TestClient(make_app(work), base_url="http://127.0.0.1") as client:
        style = upload(client)
        failed = finish(client, submit(client, sleepy_run(client, style, fail="input"))["id"])
        running = submit(client, sleepy_run(client, style, steps=400, delay=0.05))["id"]
        queued = submit(client, sleepy_run(client, style, steps=2))["id"]
        cancelled = submit(client, sleepy_run(client, style))["id"]
        client.post(f"/api/jobs/{cancelled}/cancel")
        queue = client.app.state.queue
        while queue.get(running).status != "running":
            time.sleep(0.01)
    # as if killed (kill -9) during a run and during an upload, with an old upload no run uses
    results, uploads = work / "results", work / "uploads"
    killed = json.loads((results / f"{failed['id']}.json").read_text())
    killed.update(id="0123456789abcdef", status="running", error=None)
    (results / "0123456789abcdef.json").write_text(json.dumps(killed))
    stale = uploads / ".upload-abc123.tmp"
    stale.write_bytes(b"half an image")
    old = upload_store = UploadStore(work)
    unused = upload_store.add_bytes(png_bytes(seed=9), "old.png").id
    month = time.time() - 40 * 86400
    for p in [stale, *uploads.glob(f"{unused}.*"), *uploads.glob(f"{style}.*")]:
        os.utime(p, (month, month))
    del old
    with TestClient(make_app(work), base_url="http://127.0.0.1") as client:
        queue = client.app.state.queue
        assert queue.get(failed["id"]).status == "failed" and queue.get(failed["id"]).error == failed["error"]
        assert queue.get(cancelled).status == "cancelled"
        assert queue.get("0123456789abcdef").status == "failed"
        assert "stopped while this ran" in queue.get("0123456789abcdef").error
        # the run stopped with its server, and the one waiting, run again (in their order)
        assert queue.get(running).status in ("queued", "running") and queue.get(queued).status == "queued"
        client.post(f"/api/jobs/{running}/cancel")
        assert finish(client, running)["status"] == "cancelled"
        assert finish(client, queued)["status"] == "done"
        assert not stale.exists()
        assert not list(uploads.glob(f"{unused}.*"))  # old and unused: removed
        assert list(uploads.glob(f"{style}.*"))  # old but named by runs: kept
