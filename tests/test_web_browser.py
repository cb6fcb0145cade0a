"""``ottex serve`` in a real headless Chromium (Playwright driving Debian's ``chromium``): upload a style, run a
64 px texture, watch its progress, see the result in the gallery and download it, cancel a second run, see a bad
upload refused in the page. With ``OTTEX_SCREENSHOT=FILE`` it also saves the screenshot of README."""

from __future__ import annotations

import io
import json
import os
import time

import pytest
from PIL import Image

from web_support import chromium, require

require("starlette", "the browser test")
require("playwright", "the browser test")
CHROMIUM = chromium()

from playwright.sync_api import sync_playwright  # noqa: E402

from ottex.app.web.server import ServerConfig, ServerThread, create_app  # noqa: E402
from ottex.image.io import to_pil  # noqa: E402

pytestmark = pytest.mark.needs_weights

RUNNING = "#running .job"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = create_app(ServerConfig(tmp_path_factory.mktemp("serve"), devices=["cpu"], preview_interval=0.2))
    with ServerThread(app) as url:
        yield app, url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def progress_between(page):
    """Wait until the running card shows progress strictly between start and end; returns its text."""
    page.wait_for_function(
        "() => { const el = document.querySelector('#running .job');"
        " return el && +el.dataset.done > 0 && +el.dataset.done < +el.dataset.total; }", timeout=60_000)
    return page.text_content(f"{RUNNING} .progress-text")


def test_texture_progress_gallery_download_cancel_in_chromium(server, browser, tmp_path, load_test_image):
    app, url = server
    style = tmp_path / "zebra.png"
    to_pil(load_test_image("style/zebra.jpg", 64)).save(style)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#method option").all_text_contents()[:4] == ["ot", "w2", "gatys", "swd"]
    assert page.input_value("#opt-weights") == "hybrid"  # the registry's default, with its help below
    assert "weight set" in page.text_content("[data-option=weights] .help")

    # upload a style and start a 64 px run (fast weights; passes enough to watch it form)
    page.set_input_files("#style-input", str(style))
    page.wait_for_selector("#style-thumbs .upload img")
    page.fill("#width", "64")
    page.fill("#height", "64")
    page.fill("#opt-weights", "cd16x")
    page.fill("#opt-passes", "12")
    page.click("#run")
    text = progress_between(page)
    assert "elapsed" in text and "level" in text, text
    page.wait_for_function("() => { const img = document.querySelector('#running .job .preview');"
                           " return img && !img.hidden && img.complete && img.naturalWidth > 0; }", timeout=30_000)

    # the result in the gallery, with a thumbnail, its settings and a full-size download
    card = page.wait_for_selector("#gallery .card[data-status=done]", timeout=60_000)
    page.wait_for_function("() => { const img = document.querySelector('#gallery .card[data-status=done] img.thumb');"
                           " return img && img.complete && img.naturalWidth > 0; }")
    job_id = card.get_attribute("data-id")
    with page.expect_download() as info:
        card.query_selector("a.download").click()
    data = open(info.value.path(), "rb").read()
    assert Image.open(io.BytesIO(data)).size == (64, 64)
    assert data == (app.state.queue.results / f"{job_id}.png").read_bytes()
    assert info.value.suggested_filename.endswith(f"_{job_id}.png")
    card.query_selector(".show-settings").click()
    settings = json.loads(card.query_selector("pre.settings").text_content())
    assert settings["method"] == "ot" and (settings["width"], settings["height"]) == (64, 64)
    assert settings["options"] == {"weights": "cd16x", "passes": [12]}  # what differs from the defaults
    card.query_selector(".show-settings").click()
    assert not card.query_selector("pre.settings").is_visible()

    # a second, longer run: watch it, then cancel it
    page.fill("#width", "128")
    page.fill("#height", "128")
    page.fill("#opt-passes", "40")
    page.click("#run")
    progress_between(page)
    page.wait_for_function("() => { const img = document.querySelector('#running .job .preview');"
                           " return img && !img.hidden && img.naturalWidth > 0; }", timeout=30_000)
    if os.environ.get("OTTEX_SCREENSHOT"):
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=os.environ["OTTEX_SCREENSHOT"], full_page=False)
    second = page.get_attribute(RUNNING, "data-id")
    t0 = time.monotonic()
    page.click(f"{RUNNING} .cancel")
    page.wait_for_selector(f"#gallery .card[data-id='{second}'][data-status=cancelled]", timeout=5_000)
    assert time.monotonic() - t0 < 2.0
    assert page.locator(RUNNING).count() == 0 and page.is_visible("#idle")
    job = app.state.queue.get(second)
    assert job.status == "cancelled" and job.progress["done"] < job.progress["total"]
    assert sorted(p.name for p in app.state.queue.results.iterdir()) == \
        sorted(f"{job_id}{s}" for s in (".json", ".png", ".thumb.jpg"))  # the cancelled run left nothing

    # run the first again with a new seed; then its settings back into the form
    first = page.locator(f"#gallery .card[data-id='{job_id}']")
    first.locator(".rerun").click()
    page.wait_for_function("() => document.querySelectorAll('#gallery .card[data-status=done]').length == 2",
                           timeout=60_000)
    rerun = [j for j in app.state.queue.finished() if j["status"] == "done" and j["id"] != job_id]
    assert len(rerun) == 1 and rerun[0]["settings"]["seed"] != 0
    assert {k: v for k, v in rerun[0]["settings"].items() if k != "seed"} == \
        {k: v for k, v in settings.items() if k != "seed"}
    page.fill("#opt-passes", "")
    page.fill("#width", "300")
    first.locator(".use-settings").click()
    page.wait_for_function("() => document.querySelector('#width').value === '64'")
    assert page.input_value("#opt-passes") == "12" and page.input_value("#opt-weights") == "cd16x"
    assert page.get_attribute("#style-thumbs .upload", "data-id") == settings["style"][0]

    # a bad upload: a message in the page, no stack trace, and the page keeps working
    page.set_input_files("#style-input", files=[{"name": "notes.png", "mimeType": "image/png",
                                                 "buffer": b"these are not pixels"}])
    page.wait_for_selector("#form-error:not([hidden])")
    message = page.text_content("#form-error")
    assert "notes.png: not an image file" in message and "Traceback" not in message
    assert page.locator("#style-thumbs .upload").count() == 1  # the good style is still there
    # the only error the browser saw: the refused upload's response
    assert len(problems) == 1 and "400" in problems[0], problems
    context.close()
