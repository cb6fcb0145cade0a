"""A bounded load test of ``ottex serve`` on loopback: the server in its own process (as run by the command line),
20 clients that upload, submit and follow their runs (half by event stream, half by polling) while the page is
loaded again and again (its HTML, CSS, JavaScript, schema and gallery, one after the other). Every run finishes
and is listed, the page loads in under 200 ms while runs go on (95 % of the loads; a median under 50 ms), and the
server's memory does not grow from one round of runs to the next."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from web_support import http_module, png_bytes, require

require("starlette", "the load test")
require("httpx2", "the load test")

CLIENTS = 20
PAGE = ("/", "/static/style.css", "/static/app.js", "/api/schema", "/api/jobs")
PAGE_SECONDS = 0.2
TESTS = Path(__file__).resolve().parent
# the command line's main with the test method registered (it comes from the tests folder)
SERVE = "import sys, web_fakes; from ottex.app.cli import main; sys.exit(main(sys.argv[1:]))"


def rss_mb(pid: int) -> float:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def client_run(url, index, results, errors):
    """One artist: upload, submit a 512 px run, follow it to its end (stream or poll)."""
    try:
        with http_module().Client(base_url=url, timeout=60) as c:
            up = c.post("/api/uploads", params={"name": f"s{index}.png"}, content=png_bytes((40, 40), seed=index))
            assert up.status_code == 201, up.text
            settings = {"task": "synthesis", "method": "sleepy", "style": [up.json()["id"]], "width": 512,
                        "height": 512, "seed": index, "options": {"steps": 6, "delay": 0.01}}
            job = c.post("/api/jobs", json=settings)
            assert job.status_code == 201, job.text
            job_id = job.json()["id"]
            if index % 2:
                with c.stream("GET", f"/api/jobs/{job_id}/events") as r:
                    for _ in r.iter_lines():
                        pass  # the stream ends with the run
            else:
                while c.get(f"/api/jobs/{job_id}").json()["status"] in ("queued", "running"):
                    time.sleep(0.1)
            results[index] = c.get(f"/api/jobs/{job_id}").json()
    except Exception as exc:  # noqa: BLE001 - reported by the test
        errors.append(f"client {index}: {exc!r}")


def one_round(url):
    """20 clients at once; returns their runs, errors, and the page-load times measured while a run was going."""
    results, errors, times = {}, [], []
    threads = [threading.Thread(target=client_run, args=(url, i, results, errors)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    with http_module().Client(base_url=url, timeout=10) as c:
        while any(t.is_alive() for t in threads):
            if c.get("/api/status").json()["running"]:
                t0 = time.perf_counter()
                for path in PAGE:
                    assert c.get(path).status_code == 200, path
                times.append(time.perf_counter() - t0)
            time.sleep(0.05)
    for t in threads:
        t.join()
    return results, errors, times


@pytest.fixture()
def server(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:  # a file, not a pipe: the server never blocks on its log
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "serve", "--port", "0", "--workdir", str(tmp_path / "work"), "--device",
             "cpu"], stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match, (line, log.read_text())
        yield proc, match.group(0)
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: stops cleanly
        try:
            assert proc.wait(20) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the server's memory from /proc")
def test_twenty_clients(server):
    proc, url = server
    start = rss_mb(proc.pid)
    first, errors, times = one_round(url)
    assert errors == []
    before = rss_mb(proc.pid)
    second, errors, times2 = one_round(url)
    assert errors == []
    grown = rss_mb(proc.pid) - before
    times = sorted(times + times2)
    median, p95 = times[len(times) // 2], times[int(0.95 * len(times))]
    print(f"\n{len(times)} page loads while runs went on: median {1000 * median:.0f} ms, 95th percentile "
          f"{1000 * p95:.0f} ms, slowest {1000 * times[-1]:.0f} ms; server RSS {start:.0f} MB at start, "
          f"{before:.0f} MB after {CLIENTS} runs, grew {grown:.1f} MB over the next {CLIENTS}; load average "
          f"{os.getloadavg()[0]:.1f}")
    for results in (first, second):
        assert sorted(results) == list(range(CLIENTS))
        assert all(r["status"] == "done" for r in results.values()), [r["error"] for r in results.values()]
    ids = {r["id"] for r in [*first.values(), *second.values()]}
    with http_module().Client(base_url=url) as c:
        finished = {j["id"] for j in c.get("/api/jobs").json()["finished"]}
    assert len(ids) == 2 * CLIENTS and ids == finished  # no run lost
    # on a shared machine a rare page load waits for the CPU itself: the bound holds for 95 % of them
    assert len(times) >= 10 and p95 < PAGE_SECONDS and median < PAGE_SECONDS / 4
    # every run makes a 512x512 image (3 MB as a tensor): keeping them, or their previews, would show here
    assert grown < 30, grown
