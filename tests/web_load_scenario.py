"""The web load scenario shared by ``tests/test_web_load.py`` (which asserts its behaviour) and
``benchmarks/web_load.py`` (which times it): ``ottex serve`` in its own process (as run by the command line, with
the test method "sleepy" registered), 20 clients that upload, submit and follow their runs (half by event stream,
half by polling) while the page is loaded again and again (its HTML, CSS, JavaScript, schema and gallery)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from web_support import http_module, png_bytes

CLIENTS = 20
PAGE = ("/", "/static/style.css", "/static/app.js", "/api/schema", "/api/jobs")
TESTS = Path(__file__).resolve().parent
# the command line's main with the test method registered (it comes from the tests folder)
SERVE = "import sys, web_fakes; from ottex.app.cli import main; sys.exit(main(sys.argv[1:]))"


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (Linux: read from /proc)."""
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


@contextlib.contextmanager
def serve(workdir: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """``ottex serve --port 0`` in its own process; yields (process, base URL) and stops it with Ctrl-C, which must
    end it cleanly (exit 0)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "stderr.txt"
    with open(log, "w") as err:  # a file, not a pipe: the server never blocks on its log
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "serve", "--port", "0", "--workdir", str(workdir / "work"), "--device",
             "cpu"], stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match, (line, log.read_text())
        yield proc, match.group(0)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(20) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()


def sleepy_settings(style_id: str, seed: int, steps: int = 6, delay: float = 0.01, size: int = 512) -> dict:
    return {"task": "synthesis", "method": "sleepy", "style": [style_id], "width": size, "height": size,
            "seed": seed, "options": {"steps": steps, "delay": delay}}


def client_run(url: str, index: int, image: bytes, results: dict, errors: list) -> None:
    """One artist: upload ``image`` (PNG bytes), submit a 512 px run, follow it to its end (stream or poll)."""
    try:
        with http_module().Client(base_url=url, timeout=60) as c:
            up = c.post("/api/uploads", params={"name": f"s{index}.png"}, content=image)
            assert up.status_code == 201, up.text
            job = c.post("/api/jobs", json=sleepy_settings(up.json()["id"], index))
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
    except Exception as exc:  # noqa: BLE001 - reported by the caller
        errors.append(f"client {index}: {exc!r}")


def load_page(client) -> float:  # noqa: ANN001 - an httpx client
    """Load the page's parts one after the other; returns the seconds it took (every part must answer 200)."""
    t0 = time.perf_counter()
    for path in PAGE:
        assert client.get(path).status_code == 200, path
    return time.perf_counter() - t0


def one_round(url: str) -> tuple[dict, list, list]:
    """20 clients at once; returns their runs, errors, and the page-load times measured while a run was going."""
    results, errors, times = {}, [], []
    # the images are made here, before the threads: numpy's first use of a submodule is not thread-safe
    images = [png_bytes((40, 40), seed=i) for i in range(CLIENTS)]
    threads = [threading.Thread(target=client_run, args=(url, i, images[i], results, errors)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    with http_module().Client(base_url=url, timeout=10) as c:
        while any(t.is_alive() for t in threads):
            if c.get("/api/status").json()["running"]:
                times.append(load_page(c))
            time.sleep(0.05)
    for t in threads:
        t.join()
    return results, errors, times
