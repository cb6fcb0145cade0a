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
    assert page.eval_on_selector("#opt-weights", "el => [el.tagName, [...el.options].map(o => o.value)]") == \
        ["SELECT", ["hybrid", "cd16x", "wct-vgg19"]]  # a choice list, not a free text box
    assert not page.is_visible("#opt-passes")  # the advanced options are folded
    page.click("#options summary")

    # upload a style and start a 64 px run (fast weights; passes enough to watch it form)
    page.set_input_files("#style-input", str(style))
    page.wait_for_selector("#style-thumbs .upload img")
    page.fill("#width", "64")
    page.fill("#height", "64")
    page.select_option("#opt-weights", "cd16x")
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
        sorted([f"{job_id}{s}" for s in (".json", ".png", ".thumb.jpg")] + [f"{second}.json"])  # its record only

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


@pytest.fixture()
def sleepy():
    import web_fakes
    from ottex.methods.base import register_method, unregister_method

    register_method(web_fakes.METHOD, replace=True)
    yield web_fakes.METHOD
    unregister_method("sleepy")


def in_view(page, selector, height):
    box = page.locator(selector).first.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


def shot(page, name, tmp_path):
    """A screenshot in ``$OTTEX_SCREENSHOTS`` (a folder; else the test's temporary folder)."""
    folder = os.environ.get("OTTEX_SCREENSHOTS") or str(tmp_path)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    page.screenshot(path=path, full_page=False)
    return path


@pytest.mark.slow
def test_what_an_artist_needs_in_chromium(tmp_path, browser, sleepy, load_test_image):
    """Run and progress in view at 1280x800, options folded, variations, ETA, dates, star, delete, the view
    (side by side, before/after, keys), results back in as inputs (button and drag), earlier uploads, size presets
    and aspect lock, presets, the form kept on reload, paging, TIFF thumbnails, and a phone-sized page."""
    app = create_app(ServerConfig(tmp_path / "serve", devices=["cpu"], preview_interval=0.1))
    style, content = tmp_path / "zebra.png", tmp_path / "scan.tif"
    to_pil(load_test_image("style/zebra.jpg", 96)).save(style)
    to_pil(load_test_image("style/zebra.jpg", 80)).save(content, format="TIFF")
    with ServerThread(app) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        problems = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        assert in_view(page, "#run", 800) and not page.is_visible("#opt-passes")  # Run in view, options folded
        start = shot(page, "serve-desktop-start.png", tmp_path)
        assert page.input_value("#size-preset") == "512x512"  # the default size is a preset

        page.set_input_files("#style-input", str(style))
        page.wait_for_selector("#style-thumbs .upload img")
        page.select_option("#method", "sleepy")
        page.click("#options summary")
        page.fill("#opt-steps", "60")
        page.fill("#opt-delay", "0.03")
        page.select_option("#size-preset", "256x256")
        assert (page.input_value("#width"), page.input_value("#height")) == ("256", "256")
        page.fill("#variations", "3")
        assert in_view(page, "#run", 800)  # still in view with the options open
        page.focus("#seed")
        page.keyboard.press("Control+Enter")  # the shortcut runs
        page.wait_for_selector("#running .job", timeout=20_000)
        assert in_view(page, "#running .job", 800)  # the progress is in view after Run
        first_text = page.text_content("#running .progress-text")
        assert "estimating" in first_text or "left" in first_text or first_text == "starting", first_text
        progress_between(page)
        page.wait_for_function("() => /about .* left/.test(document.querySelector('#running .progress-text')"
                               ".textContent)", timeout=20_000)
        desktop = shot(page, "serve-desktop-running.png", tmp_path)
        page.wait_for_function("() => document.querySelectorAll('#gallery .card[data-status=done]').length == 3",
                               timeout=60_000)
        seeds = sorted(j["settings"]["seed"] for j in app.state.queue.finished())
        assert seeds == [0, 1, 2]
        meta = page.text_content("#gallery .card .card-meta")
        assert "today" in meta, meta  # the date, not only the time

        # the view: style beside the result, before/after, keys
        page.click("#gallery .card[data-status=done] .thumb-link")
        page.wait_for_selector("#lightbox:not([hidden]) #lightbox-side figure.result img")
        assert page.locator("#lightbox-side figure").count() == 2  # the style and the result
        page.wait_for_function("() => [...document.querySelectorAll('#lightbox-side img')]"
                               ".every(i => i.complete && i.naturalWidth > 0)")
        side = shot(page, "serve-view-side-by-side.png", tmp_path)
        label = page.text_content("#lightbox-label")
        page.keyboard.press("ArrowRight")
        assert page.text_content("#lightbox-label") != label
        page.keyboard.press("b")
        assert page.is_visible("#lightbox-compare") and not page.is_visible("#lightbox-side")
        page.fill("#compare-slider", "30")
        compare = shot(page, "serve-view-before-after.png", tmp_path)
        page.keyboard.press("s")  # star from the view
        page.wait_for_function("() => document.querySelectorAll('#gallery .card.starred').length == 1")
        page.keyboard.press("Escape")
        assert not page.is_visible("#lightbox")

        # star filter and delete
        page.check("#starred-only")
        page.wait_for_function("() => document.querySelectorAll('#gallery .card').length == 1")
        page.uncheck("#starred-only")
        page.wait_for_function("() => document.querySelectorAll('#gallery .card').length == 3")
        doomed = page.get_attribute("#gallery .card:not(.starred)", "data-id")
        page.click(f"#gallery .card[data-id='{doomed}'] .delete")
        page.wait_for_function("() => document.querySelectorAll('#gallery .card').length == 2")
        assert not list(app.state.queue.results.glob(f"{doomed}*"))

        # a result back in: as the content (a style transfer), by button; as the style, by dragging it
        before = page.get_attribute("#style-thumbs .upload", "data-id")
        page.click("#gallery .card[data-status=done] .as-content")
        page.wait_for_selector("#content-thumbs .upload img")
        assert page.is_checked("input[name=task][value=transfer]")
        page.drag_and_drop("#gallery .card[data-status=done] img.thumb", "#style-drop")
        page.wait_for_function(f"() => {{ const u = document.querySelector('#style-thumbs .upload');"
                               f" return u && u.dataset.id !== '{before}'; }}", timeout=10_000)
        assert page.text_content("#style-thumbs .upload .name").startswith("result_")

        # a TIFF content: its thumbnail shows (the server's JPEG)
        page.set_input_files("#content-input", str(content))
        page.wait_for_function("() => { const i = document.querySelector('#content-thumbs .upload img');"
                               " return i && i.complete && i.naturalWidth > 0 && i.src.endsWith('/thumb'); }")
        tiff_id = page.get_attribute("#content-thumbs .upload", "data-id")

        # earlier uploads: the first style picked again
        page.click("#content-drop .earlier")
        page.wait_for_selector("#earlier:not([hidden]) #earlier-thumbs .upload")
        # style, two results, the TIFF (once, under load, 3 were listed: the server's own list in the message)
        stored = [(u.name, u.id) for u in app.state.uploads.recent()[0]]
        shown = page.eval_on_selector_all("#earlier-thumbs .upload", "us => us.map(u => u.dataset.id)")
        assert len(shown) == 4, f"listed {shown}, stored {stored}"
        page.click(f"#earlier-thumbs .upload[data-id='{before}']")
        assert page.get_attribute("#content-thumbs .upload", "data-id") == before and page.is_hidden("#earlier")

        # size presets and the aspect lock (back to textures)
        page.check("input[name=task][value=synthesis]")
        page.select_option("#size-preset", "1920x1080")
        page.check("#aspect-lock")
        page.fill("#width", "960")
        assert page.input_value("#height") == "540" and page.input_value("#size-preset") == ""

        # presets: saved, changed, chosen again
        page.fill("#opt-steps", "7")
        page.click("#presets-box summary")
        page.fill("#preset-name", "quick draft")
        page.click("#preset-save")
        page.fill("#opt-steps", "99")
        page.fill("#width", "320")
        page.select_option("#preset", "quick draft")
        page.wait_for_function("() => document.querySelector('#opt-steps').value === '7'")
        assert page.input_value("#width") == "960"

        # the form is kept on reload
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        page.wait_for_function("() => document.querySelector('#width').value === '960'")
        assert page.input_value("#method") == "sleepy" and page.input_value("#opt-steps") == "7"
        assert page.get_attribute("#style-thumbs .upload", "data-id") != before  # the dragged-in result
        assert page.input_value("#variations") == "3"
        assert tiff_id  # uploaded above

        # paging: 24 at a time, More for the rest
        style_id = app.state.uploads.recent()[0][-1].id
        quick = {"task": "synthesis", "method": "sleepy", "style": [style_id], "width": 16, "height": 16,
                 "options": {"steps": 1}}
        ids = []
        for n in (16, 9):
            made = app.state.queue.submit_many([_parse(app, {**quick, "seed": 100 + n + k}) for k in range(n)])
            ids += [j.id for j in made]
        for job_id in ids:
            app.state.queue.wait(job_id, 60)
        page.wait_for_function("() => document.querySelector('#gallery-count').textContent === '(24 of 27)'",
                               timeout=20_000)
        assert page.locator("#gallery .card").count() == 24 and page.is_visible("#gallery-more")
        page.click("#gallery-more")
        page.wait_for_function("() => document.querySelectorAll('#gallery .card').length == 27")
        assert page.is_hidden("#gallery-more")
        page.click("#show-keys")
        assert page.is_visible("#keys") and "Ctrl+Enter" in page.text_content("#keys")
        page.keyboard.press("Escape")
        assert problems == [], problems
        context.close()

        # a phone: Run stays in view at the foot of the screen
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page = phone.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        assert in_view(page, "#run", 844)
        # down to the gallery (scrolled again while it waits: the page grows as the gallery's thumbnails load)
        page.wait_for_function("() => { window.scrollTo(0, document.body.scrollHeight); return window.scrollY > 500; }")
        assert in_view(page, "#run", 844)
        mobile = shot(page, "serve-phone.png", tmp_path)
        phone.close()
    print("\nscreenshots:", start, desktop, side, compare, mobile)


def _parse(app, data):
    from ottex.app.web.forms import parse_settings

    return parse_settings(data, app.state.uploads, app.state.config.max_output_pixels)


def test_the_clip_controls_show_for_a_clip_only_in_chromium(tmp_path, browser, sleepy, load_test_image):
    """A clip as the content shows the temporal mode, blend, frames and container (an image hides them); a bad
    blend is make_video_job's one line, with the field marked; a per-frame WebM of 2 frames downloads as .webm."""
    require("av", "the clip controls")
    from fractions import Fraction

    from ottex.image.io import save_image
    from ottex.video import make_clip, open_clip, write_clip
    from ottex.video.io import frame_name

    frames, _ = make_clip("pan", load_test_image("style/zebra.jpg", 96), (48, 64), 4)
    for i, frame in enumerate(frames):
        save_image(frame, tmp_path / frame_name(i))
    clip = write_clip(tmp_path, 4, tmp_path / "walk.mp4", Fraction(10))
    style, image = tmp_path / "zebra.png", tmp_path / "photo.png"
    to_pil(load_test_image("style/zebra.jpg", 48)).save(style)
    to_pil(load_test_image("style/zebra.jpg", 40)).save(image)
    app = create_app(ServerConfig(tmp_path / "serve", devices=["cpu"], preview_interval=0.1))
    with ServerThread(app) as url:
        page = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True).new_page()
        problems = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        page.check("input[name=task][value=transfer]")
        page.select_option("#method", "sleepy")
        page.set_input_files("#style-input", str(style))
        page.wait_for_selector("#style-thumbs .upload img")
        page.set_input_files("#content-input", str(image))
        page.wait_for_selector("#content-thumbs .upload img")
        assert not page.is_visible("#temporal") and page.is_disabled("#frames")  # an image: no clip controls
        page.set_input_files("#content-input", str(clip))
        page.wait_for_selector("#temporal", state="visible")
        assert page.eval_on_selector("#temporal", "el => [...el.options].map(o => o.value)") == \
            ["consistent", "blend", "per-frame"]
        assert page.input_value("#temporal") == "consistent" and page.input_value("#container") == "mp4"
        assert "clip is styled frame by frame" in page.text_content("#clip-help")
        page.select_option("#temporal", "per-frame")
        assert "on its own" in page.text_content("#temporal-help")
        page.fill("#blend", "2")
        page.click("#run")
        page.wait_for_selector("#form-error:not([hidden])")
        assert page.text_content("#form-error") == "blend takes a number between 0 and 1, got 2"
        assert page.eval_on_selector("#blend", "el => el.closest('.row').classList.contains('invalid')")
        page.fill("#blend", "")
        page.fill("#frames", "1:3")
        page.select_option("#container", "webm")
        page.click("#run")
        card = page.wait_for_selector("#gallery .card[data-status=done]", timeout=60_000)
        job_id = card.get_attribute("data-id")
        assert card.query_selector("a.download").text_content() == "WEBM"
        with page.expect_download() as info:
            card.query_selector("a.download").click()
        assert info.value.suggested_filename.endswith(f"_{job_id}.webm")
        assert open_clip(info.value.path().rename(tmp_path / "got.webm")).count == 2
        settings = app.state.queue.get(job_id).record
        assert (settings["temporal"], settings["frames"], settings["container"]) == ("per-frame", "1:3", "webm")
        page.set_input_files("#content-input", str(image))  # back to an image: hidden again
        page.wait_for_selector("#temporal", state="hidden")
        assert problems == []
