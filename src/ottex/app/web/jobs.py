"""The server's job queue: one run at a time per device on the local executor, with live progress and results.

:class:`JobQueue` keeps the runs of a server in order: ``queued`` -> ``running`` -> ``done``, ``failed`` or
``cancelled``. One worker thread per device takes the oldest queued run and runs it through
:class:`~ottex.exec.local.LocalExecutor` (colour transfer, which is no method, through
:func:`~ottex.image.color.color_transfer`), writing ``results/<id>.png``, a thumbnail and the settings
(``results/<id>.json``). The run's progress callback (a :class:`Watcher`) records each
:class:`~ottex.core.progress.ProgressEvent` with the elapsed time and an ETA (:class:`EtaEstimator`), asks the
method for its current image at most once per ``preview_interval`` seconds (a JPEG preview), and stops the run
when it is cancelled (the method raises :class:`~ottex.core.errors.Cancelled`; nothing is written). A method
whose steps are long (Optimal Textures at 512 px and more: seconds per level) is interrupted if it has not stopped
half a second after the request: :class:`Interrupted` is raised asynchronously in the worker thread, where it
takes effect as soon as the running tensor operation returns (only while the method runs). A failed run
records its message (a library error's own; anything else: a generic one, the traceback going to the log) and
the worker goes on with the next. The networks the methods build are kept between runs
(:func:`ottex.nn.networks.keep_networks`).

Example:
    >>> queue = JobQueue(tmp, UploadStore(tmp), devices=["cpu"])  # doctest: +SKIP
    >>> queue.start(); job = queue.submit(settings)  # doctest: +SKIP
    >>> queue.wait(job.id).status  # doctest: +SKIP
    'done'
"""

from __future__ import annotations

import collections
import ctypes
import io
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from ... import __version__
from ...core.device import resolve_device
from ...core.errors import Cancelled, InputError, OttexError
from ...core.progress import ProgressEvent
from ...exec.local import LocalExecutor
from ...image.color import color_transfer
from ...image.io import load_image, save_image, to_pil
from ...nn.networks import keep_networks, kept_networks
from .forms import COLOR, RunSettings
from .uploads import NotFound, UploadStore

__all__ = ["JobQueue", "WebJob", "Watcher", "EtaEstimator", "Interrupted", "JOB_ID", "STATES", "FINISHED"]

log = logging.getLogger("ottex.serve")

JOB_ID = re.compile(r"[0-9a-f]{16}")
STATES = ("queued", "running", "done", "failed", "cancelled")
#: Finished runs whose last preview is kept (the others' are dropped).
KEEP_PREVIEWS = 4
FINISHED = ("done", "failed", "cancelled")


class Interrupted(Cancelled):
    """Raised in a worker thread whose run was cancelled and did not stop at a progress event in time."""


def _raise_in_thread(thread_id: int, exc: type[BaseException] | None) -> None:
    """Make ``exc`` raised in the thread at its next Python instruction (None: forget one not raised yet)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               None if exc is None else ctypes.py_object(exc))


class EtaEstimator:
    """Time left in a run, from its progress events.

    A step is taken to cost in proportion to the pixels of its scale; the scales not reached yet are taken to be
    twice the previous one's sides (the pyramid every method uses) and to share the run's remaining steps
    evenly. The rate is the run's own so far: elapsed time over the work done.

    Example:
        >>> eta = EtaEstimator()
        >>> ev = lambda scale, step, done, size: ProgressEvent("m", "step", scale, 2, size, step, 10, done, 20)
        >>> eta.update(ev(0, 5, 5, (8, 8)), elapsed=1.0)  # 5 of 10 steps at 8x8, then 10 at 16x16 (4x each)
        9.0
    """

    def __init__(self) -> None:
        self._scales: dict[int, tuple[float, int]] = {}  # scale -> (pixels, planned steps)

    def update(self, event: ProgressEvent, elapsed: float) -> float | None:
        """Seconds left after ``event``, ``elapsed`` seconds into the run (None until a step is done)."""
        area = float(event.size[0] * event.size[1])
        self._scales[event.scale] = (area, event.steps)
        if event.kind == "done":
            return 0.0
        step = min(event.step, event.steps)
        done_work = sum(a * n for s, (a, n) in self._scales.items() if s < event.scale) + step * area
        if done_work <= 0 or elapsed <= 0:
            return None
        later_scales = event.scales - 1 - event.scale
        later_steps = max(0, event.total - (event.done - step + event.steps))
        remaining = (event.steps - step) * area
        if later_scales > 0:
            remaining += sum(later_steps / later_scales * area * 4**k for k in range(1, later_scales + 1))
        return elapsed / done_work * remaining


@dataclass
class WebJob:
    """One run of the server.

    Attributes:
        id: 16 hex digits.
        settings: the checked settings (None for a run found on disk from an earlier server).
        record: the settings as JSON (what is shown and saved with the result).
        label: a short description.
        status: one of :data:`STATES`.
        error, error_option: the message of a failed run, and the setting at fault if known.
        progress: the last progress (scale, step, elapsed, ETA ...), JSON.
        preview: the last preview image (JPEG bytes) while running (and for the last few finished runs);
            ``preview_count`` counts them.
        startup: seconds from the start of the run to its first progress event (inputs read, networks ready).
    """

    id: str
    settings: RunSettings | None
    record: dict
    label: str
    status: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    seconds: float | None = None
    startup: float | None = None  # seconds from the start of the run to its first progress event
    device: str | None = None
    error: str | None = None
    error_option: str | None = None
    progress: dict | None = None
    preview: bytes | None = None
    preview_count: int = 0
    progress_count: int = 0
    cancel_requested: bool = False
    size: tuple[int, int] | None = None  # (width, height) of the result

    def summary(self, position: int | None = None) -> dict:
        """The run as JSON for the page (URLs of its result when done)."""
        out = {"id": self.id, "status": self.status, "label": self.label, "settings": self.record,
               "created": self.created, "started": self.started, "finished": self.finished, "seconds": self.seconds,
               "startup": self.startup, "device": self.device, "error": self.error, "option": self.error_option,
               "progress": self.progress, "position": position}
        if self.status == "done":
            base = f"/api/jobs/{self.id}"
            out["result"] = {"image": f"{base}/image", "thumb": f"{base}/thumb", "settings": f"{base}/settings",
                             "width": self.size[0] if self.size else None,
                             "height": self.size[1] if self.size else None}
        return out


class Watcher:
    """The progress callback of one run: records progress and previews on its job, stops it when cancelled.

    ``wants_image`` is true only when a preview is due, so the method makes its current image at most once per
    ``interval`` seconds.
    """

    def __init__(self, job: WebJob, queue: JobQueue, interval: float, side: int) -> None:
        self.job = job
        self.queue = queue
        self.interval = interval
        self.side = side
        self.eta = EtaEstimator()
        self.t0 = time.monotonic()
        self.last_preview = -float("inf")

    @property
    def wants_image(self) -> bool:
        return time.monotonic() - self.last_preview >= self.interval

    def __call__(self, event: ProgressEvent) -> bool | None:
        if self.job.cancel_requested:
            return False
        elapsed = time.monotonic() - self.t0
        if self.job.startup is None:
            self.job.startup = round(elapsed, 4)
        eta = self.eta.update(event, elapsed)
        progress = {"kind": event.kind, "scale": event.scale, "scales": event.scales, "size": list(event.size),
                    "step": event.step, "steps": event.steps, "done": event.done, "total": event.total,
                    "unit": event.unit, "loss": event.loss, "elapsed": round(elapsed, 3),
                    "eta": None if eta is None else round(eta, 3), "preview": self.job.preview_count or None}
        if event.image is not None:
            self.job.preview = _jpeg(event.image, self.side)
            self.job.preview_count += 1
            progress["preview"] = self.job.preview_count
            self.last_preview = time.monotonic()
        self.job.progress = progress
        self.job.progress_count += 1
        self.queue.touch(progress_only=True)
        return not self.job.cancel_requested


def _jpeg(image: torch.Tensor, side: int) -> bytes:
    pil = to_pil(image[:1] if image.dim() == 4 else image)
    pil.thumbnail((side, side))
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


class JobQueue:
    """The runs of a server and the workers that run them.

    Args:
        workdir: the server's folder (results go to ``<workdir>/results``).
        uploads: where the runs' input images are.
        devices: one worker per device (``"auto"``, ``"cpu"``, ``"cuda:1"`` ...): one run at a time on each.
        weights_dir: folder searched first for the weights.
        preview_interval: seconds between preview images of a run (0: after every step).
        preview_side: long side of the previews, in px.
        thumb_side: long side of the results' thumbnails, in px.
        keep_networks_limit: networks kept built between runs (0: none).
        interrupt_after: seconds a cancelled run has to stop at a progress event before it is interrupted.
    """

    def __init__(
        self,
        workdir: str | os.PathLike,
        uploads: UploadStore,
        devices: Sequence[str | torch.device] = ("auto",),
        weights_dir: str | os.PathLike | None = None,
        preview_interval: float = 1.0,
        preview_side: int = 384,
        thumb_side: int = 256,
        keep_networks_limit: int = 64,
        interrupt_after: float = 0.5,
    ) -> None:
        self.results = Path(workdir) / "results"
        self.results.mkdir(parents=True, exist_ok=True)
        self.uploads = uploads
        self.devices = [resolve_device(d) for d in devices] or [resolve_device("auto")]
        self.weights_dir = None if weights_dir is None else str(weights_dir)
        self.preview_interval = float(preview_interval)
        self.preview_side = int(preview_side)
        self.thumb_side = int(thumb_side)
        self.keep_networks_limit = int(keep_networks_limit)
        self.interrupt_after = float(interrupt_after)
        self._interruptible: dict[str, int] = {}  # run id -> its worker thread, while the method runs
        self._interrupt_lock = threading.Lock()
        self._previews: collections.deque[WebJob] = collections.deque()  # finished runs still holding one
        self._jobs: dict[str, WebJob] = {}
        self._queue: collections.deque[WebJob] = collections.deque()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self.revision = 0  # bumped when a run changes state or is added
        self.progress_revision = 0  # bumped on every progress event too
        self._load_finished()

    # -- state ------------------------------------------------------------------------------------------------

    def touch(self, progress_only: bool = False) -> None:
        """Note a change (the page's event stream sends what changed)."""
        with self._cond:
            self.progress_revision += 1
            if not progress_only:
                self.revision += 1
            self._cond.notify_all()

    def get(self, job_id: object) -> WebJob:
        """The run with this id.

        Raises:
            InputError: no such run.
        """
        job = self._jobs.get(job_id) if isinstance(job_id, str) and JOB_ID.fullmatch(job_id) else None
        if job is None:
            raise NotFound(f"no run {str(job_id)[:40]!r} on this server", option="job")
        return job

    def active(self) -> list[dict]:
        """The running runs and the queue, in order, as JSON (``position`` 0 is the next to run)."""
        with self._cond:
            running = [j.summary() for j in self._jobs.values() if j.status == "running"]
            queued = [j.summary(position=i) for i, j in enumerate(self._queue)]
        return running + queued

    def finished(self) -> list[dict]:
        """The finished runs, newest first, as JSON."""
        with self._cond:
            jobs = [j for j in self._jobs.values() if j.status in FINISHED]
        return [j.summary() for j in sorted(jobs, key=lambda j: j.finished or j.created, reverse=True)]

    def status(self) -> dict:
        """Devices, counts of queued, running and finished runs, networks kept built."""
        with self._cond:
            jobs = list(self._jobs.values())
            queued = len(self._queue)
        return {"devices": [str(d) for d in self.devices], "queued": queued,
                "running": sum(j.status == "running" for j in jobs),
                "finished": sum(j.status in FINISHED for j in jobs), "networks": kept_networks(),
                "revision": self.revision}

    # -- commands ---------------------------------------------------------------------------------------------

    def submit(self, settings: RunSettings) -> WebJob:
        """Queue a run of checked settings; returns it."""
        job = WebJob(secrets.token_hex(8), settings, settings.to_json(), settings.label())
        with self._cond:
            if self._stopping:
                raise OttexError("the server is stopping")
            self._jobs[job.id] = job
            self._queue.append(job)
        self.touch()
        return job

    def cancel(self, job_id: str) -> WebJob:
        """Cancel a queued run (at once) or a running one (at its next progress event, or interrupted after
        ``interrupt_after`` seconds); nothing is written."""
        job = self.get(job_id)
        with self._cond:
            if job.status == "queued":
                self._queue.remove(job)
                job.status = "cancelled"
                job.finished = time.time()
            elif job.status == "running" and not job.cancel_requested:
                job.cancel_requested = True
                timer = threading.Timer(self.interrupt_after, self._interrupt, (job.id,))
                timer.daemon = True
                timer.start()
        self.touch()
        return job

    def _interrupt(self, job_id: str) -> None:
        with self._interrupt_lock:
            thread_id = self._interruptible.get(job_id)
            if thread_id is not None:
                log.info("interrupting run %s: no progress event since it was cancelled", job_id)
                _raise_in_thread(thread_id, Interrupted)

    def wait(self, job_id: str, timeout: float | None = None) -> WebJob:
        """Block until a run is finished (for scripts and tests); returns it."""
        job = self.get(job_id)
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while job.status not in FINISHED:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"run {job_id} still {job.status} after {timeout} s")
                self._cond.wait(left)
        return job

    # -- results ----------------------------------------------------------------------------------------------

    def result_path(self, job_id: str, what: str = "image") -> Path:
        """``image`` (PNG), ``thumb`` (JPEG) or ``settings`` (JSON) of a finished run.

        Raises:
            InputError: no such run, or it made no image.
        """
        job = self.get(job_id)
        if job.status != "done":
            raise InputError(f"run {job_id} made no image ({job.status})", option="job")
        return self.results / f"{job.id}{ {'image': '.png', 'thumb': '.thumb.jpg', 'settings': '.json'}[what]}"

    def _load_finished(self) -> None:
        """The results of earlier servers in the same folder join the gallery."""
        for meta in sorted(self.results.glob("*.json")):
            job_id = meta.stem
            if not JOB_ID.fullmatch(job_id) or not (self.results / f"{job_id}.png").is_file():
                continue
            try:
                record = json.loads(meta.read_text())
                job = WebJob(job_id, None, record["settings"], record["label"], status="done",
                             created=record["created"], started=record.get("started"), finished=record["finished"],
                             seconds=record.get("seconds"), startup=record.get("startup"),
                             device=record.get("device"),
                             size=tuple(record["size"]) if record.get("size") else None)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("skipping unreadable result record %s: %s", meta, exc)
                continue
            self._jobs[job_id] = job

    # -- workers ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start one worker thread per device (and keep the networks they build between runs)."""
        if self._threads:
            return
        if self.keep_networks_limit:
            keep_networks(self.keep_networks_limit)
        self._stopping = False
        for device in self.devices:
            t = threading.Thread(target=self._work, args=(device,), name=f"ottex-serve-{device}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel the running runs, drop the queue, stop the workers and free the kept networks."""
        with self._cond:
            self._stopping = True
            for job in list(self._queue):
                job.status, job.finished = "cancelled", time.time()
            self._queue.clear()
            running = [job.id for job in self._jobs.values() if job.status == "running"]
            self._cond.notify_all()
        for job_id in running:
            self.cancel(job_id)  # at its next step, or interrupted
        for t in self._threads:
            t.join(timeout)
        self._threads = []
        if self.keep_networks_limit:
            keep_networks(0)  # frees them

    def _work(self, device: torch.device) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._queue:
                    self._cond.wait()
                if self._stopping:
                    return
                job = self._queue.popleft()
                job.status, job.started, job.device = "running", time.time(), str(device)
            self.touch()
            self._run(job, device)

    def _run(self, job: WebJob, device: torch.device) -> None:
        settings = job.settings
        assert settings is not None
        output = self.results / f"{job.id}.png"
        t0 = time.monotonic()
        status, error, option = "failed", None, None
        try:
            with self._interrupt_lock:
                self._interruptible[job.id] = threading.get_ident()
            try:
                if settings.task == COLOR:
                    self._color(settings, device, output)
                else:
                    watcher = Watcher(job, self, self.preview_interval, self.preview_side)
                    executor = LocalExecutor(device, self.weights_dir, callback_factory=lambda _job: watcher)
                    executor.run_one(settings.job(self.uploads, output))
            finally:  # an interruption raised from here on is still caught below
                with self._interrupt_lock:
                    self._interruptible.pop(job.id, None)
                    _raise_in_thread(threading.get_ident(), None)
            if job.cancel_requested:  # asked after the last event: honoured, nothing kept
                output.unlink(missing_ok=True)
                raise Cancelled("cancelled")
            job.seconds = round(time.monotonic() - t0, 3)
            job.size = self._finish(job, output)
            status = "done"
        except Cancelled:
            status = "cancelled"
        except OttexError as exc:
            error, option = str(exc), exc.option
        except MemoryError:
            error = "out of memory: try a smaller size"
        except Exception as exc:  # noqa: BLE001 - a failed run must not stop the server; the log has the traceback
            if not job.cancel_requested:
                log.exception("run %s failed", job.id)
            error = f"internal error ({type(exc).__name__}); the server's log has the details"
        finally:
            if job.cancel_requested and status == "failed":  # an interruption that a library turned into an error
                status, error, option = "cancelled", None, None
            with self._interrupt_lock:
                self._interruptible.pop(job.id, None)
            if status != "done":
                for p in (output, output.with_suffix(".thumb.jpg"), output.with_suffix(".json")):
                    p.unlink(missing_ok=True)
            with self._cond:
                job.status, job.error, job.error_option = status, error, option
                job.finished = time.time()
                # the last preview stays a little (a page may ask for it as the run ends), for a few runs only
                self._previews.append(job)
                if len(self._previews) > KEEP_PREVIEWS:
                    self._previews.popleft().preview = None
            self.touch()

    def _color(self, settings: RunSettings, device: torch.device, output: Path) -> None:
        source = load_image(self.uploads.path(settings.content), device=device)
        target = load_image(self.uploads.path(settings.style[0]), device=device)
        out = color_transfer(source, target, iterations=settings.rotations or 1, seed=settings.seed)
        save_image(out, output)

    def _finish(self, job: WebJob, output: Path) -> tuple[int, int]:
        """Thumbnail and settings record of a finished run; returns the image's ``(width, height)``."""
        with Image.open(output) as img:
            size = img.size
            thumb = img.convert("RGB")
            thumb.thumbnail((self.thumb_side, self.thumb_side))
        thumb.save(output.with_suffix(".thumb.jpg"), format="JPEG", quality=90)
        record = {"id": job.id, "label": job.label, "settings": job.record, "created": job.created,
                  "started": job.started, "finished": time.time(), "seconds": job.seconds, "startup": job.startup,
                  "device": job.device,
                  "size": list(size), "ottex": __version__}
        output.with_suffix(".json").write_text(json.dumps(record, indent=2))
        return size
