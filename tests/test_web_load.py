"""A bounded load test of ``ottex serve`` on loopback (the scenario is in ``web_load_scenario``): every one of 2 x 20
runs finishes and is listed, the page loads while runs go on, and the server's memory does not grow from one round
of runs to the next. How fast the page loads under that load is a measurement, not an assertion:
``python benchmarks/web_load.py`` prints it (docs/benchmarks.md, "Web app")."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from web_support import http_module, png_bytes, require

require("starlette", "the load test")
require("httpx2", "the load test")

from web_load_scenario import CLIENTS, load_page, one_round, rss_mb, serve, sleepy_settings  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the server's memory from /proc")]


@pytest.fixture()
def server(tmp_path):
    with serve(tmp_path) as (proc, url):
        yield proc, url


def test_twenty_clients(server):
    proc, url = server
    first, errors, times = one_round(url)
    assert errors == []
    before = rss_mb(proc.pid)
    second, errors, times2 = one_round(url)
    assert errors == []
    grown = rss_mb(proc.pid) - before
    for results in (first, second):
        assert sorted(results) == list(range(CLIENTS))
        assert all(r["status"] == "done" for r in results.values()), [r["error"] for r in results.values()]
    ids = {r["id"] for r in [*first.values(), *second.values()]}
    with http_module().Client(base_url=url) as c:
        finished = {j["id"] for j in c.get("/api/jobs").json()["finished"]}
    assert len(ids) == 2 * CLIENTS and ids == finished  # no run lost
    # every load answered 200 (one_round checks)
    assert times and times2, "the page was never loaded while a run went on"
    # every run makes a 512x512 image (3 MB as a tensor): keeping them, or their previews, would show here
    assert grown < 30, grown


def test_the_page_loads_while_a_run_holds_the_worker(server):
    """A run of one step that takes 30 s: the page loads three times (each part within 10 s) and the run is still
    going afterwards, so the server answered during the step rather than after it (then cancelled, which ends it
    at once)."""
    _, url = server
    with http_module().Client(base_url=url, timeout=10) as c:
        style = c.post("/api/uploads", params={"name": "s.png"}, content=png_bytes((40, 40))).json()["id"]
        job = c.post("/api/jobs", json=sleepy_settings(style, 0, steps=1, delay=30)).json()["id"]
        end = time.monotonic() + 20
        while (status := c.get(f"/api/jobs/{job}").json()["status"]) != "running":
            assert status == "queued" and time.monotonic() < end, status
            time.sleep(0.02)
        for _ in range(3):
            load_page(c)
        assert c.get(f"/api/jobs/{job}").json()["status"] == "running"
        assert c.post(f"/api/jobs/{job}/cancel").status_code == 200
        end = time.monotonic() + 20
        while (status := c.get(f"/api/jobs/{job}").json()["status"]) == "running":
            assert time.monotonic() < end
            time.sleep(0.05)
        assert status == "cancelled"
