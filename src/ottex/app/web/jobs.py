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

Every run has a record, ``results/<id>.json``, written when it is queued and at each change of state, so a
restarted server finds its runs again: finished ones as they were, queued ones queued again (their settings
checked again by ``parse``), and one that was running when the server was killed as failed, saying so. The queue
holds at most ``max_queued`` runs, and only the newest ``keep_unfinished`` failed or cancelled runs are kept;
finished runs can be deleted and starred.

Example:
    >>> queue = JobQueue(tmp, UploadStore(tmp), devices=["cpu"])  # doctest: +SKIP
    >>> queue.start(); job = queue.submit(settings)  # doctest: +SKIP
    >>> queue.wait(job.id).status  # doctest: +SKIP
    'done'
"""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import io
import json
import logging
import math
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Sequence
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
from .forms import COLOR, CONTAINERS, RunSettings, result_suffix
from .uploads import NotFound, UploadStore

__all__ = ["JobQueue", "WebJob", "Watcher", "EtaEstimator", "Interrupted", "QueueFull", "JOB_ID", "STATES",
           "FINISHED", "finite"]

log = logging.getLogger("ottex.serve")

JOB_ID = re.compile(r"[0-9a-f]{16}")
STATES = ("queued", "running", "done", "failed", "cancelled")
#: Finished runs whose last preview is kept (the others' are dropped).
KEEP_PREVIEWS = 4
FINISHED = ("done", "failed", "cancelled")
DEFAULT_MAX_QUEUED = 50
DEFAULT_KEEP_UNFINISHED = 50
#: Frames in the strip that is the thumbnail of a clip's result.
STRIP_FRAMES = 4
#: What a run that was running when its server was killed says after a restart.
INTERRUPTED = "the server stopped while this ran (run it again)"


class QueueFull(InputError):
    """The queue holds as many runs as the server takes."""


def finite(value: object) -> object:
    """``value`` with every float that is not finite (NaN, infinities) replaced by None, in lists and dicts too:
    JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def _read_record(path: Path) -> dict:
    """A run's record; a number JSON has not (``NaN``: written by servers before this check) is read as its
    text, so the run shows (and a re-run is refused with a message) instead of breaking every listing."""
    return json.loads(path.read_text(), parse_constant=str)


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
    evenly. The rate is measured from the first step on: the time before it (inputs read, networks built) is
    paid once and says nothing of the steps, so it is left out, and no estimate is given before the work of
    ``min_steps`` steps has been timed (one step says little: the first ones are the slowest).

    Example:
        >>> eta = EtaEstimator(min_steps=1)
        >>> ev = lambda scale, step, done, size: ProgressEvent("m", "step", scale, 2, size, step, 10, done, 20)
        >>> eta.update(ev(0, 1, 1, (8, 8)), elapsed=3.0)  # 3 s before the first step: not a rate
        >>> eta.update(ev(0, 5, 5, (8, 8)), elapsed=4.0)  # 4 steps in 1 s; 5 more at 8x8, 10 at 16x16 (4x each)
        11.25
        >>> EtaEstimator().update(ev(0, 1, 1, (8, 8)), elapsed=3.0) is None  # by default 2 steps are timed first
        True
    """

    def __init__(self, min_steps: int = 2) -> None:
        self._scales: dict[int, tuple[float, int]] = {}  # scale -> (pixels, planned steps)
        self._start: tuple[float, float] | None = None  # (work done, elapsed) at the first event with a step
        self.min_steps = min_steps
        self._steps = 0

    def update(self, event: ProgressEvent, elapsed: float) -> float | None:
        """Seconds left after ``event``, ``elapsed`` seconds into the run (None until enough steps are timed)."""
        area = float(event.size[0] * event.size[1])
        self._scales[event.scale] = (area, event.steps)
        if event.kind == "done":
            return 0.0
        step = min(event.step, event.steps)
        done_work = sum(a * n for s, (a, n) in self._scales.items() if s < event.scale) + step * area
        if done_work <= 0 or elapsed <= 0:
            return None
        if self._start is None:
            self._start = (done_work, elapsed)
            return None
        self._steps += 1
        timed_work, timed = done_work - self._start[0], elapsed - self._start[1]
        if self._steps < self.min_steps or timed_work <= 0 or timed <= 0:
            return None
        later_scales = event.scales - 1 - event.scale
        later_steps = max(0, event.total - (event.done - step + event.steps))
        remaining = (event.steps - step) * area
        if later_scales > 0:
            remaining += sum(later_steps / later_scales * area * 4**k for k in range(1, later_scales + 1))
        return timed / timed_work * remaining


def _container(settings: object) -> object:
    """The ``container`` of a settings record (a clip's result), or None."""
    return settings.get("container") if isinstance(settings, dict) else None


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
        notes: what the run told about itself (its ``"note"`` events: the layout ``auto`` chose, an optimiser
            that converged early), in order.
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
    starred: bool = False
    requeue: bool = False  # cancelled by the server's stop: queued again by the next server
    frames: int | None = None  # a clip's style transfer: frames of its video (its thumbnail is a frame strip)
    notes: list[str] = field(default_factory=list)

    @property
    def suffix(self) -> str:
        """The result's file suffix: ``.png``, or a clip's container (``.mp4`` or ``.webm``, from the settings)."""
        return result_suffix(bool(self.frames), _container(self.record))

    def summary(self, position: int | None = None) -> dict:
        """The run as JSON for the page (URLs of its result when done)."""
        out = {"id": self.id, "status": self.status, "label": self.label, "settings": self.record,
               "created": self.created, "started": self.started, "finished": self.finished, "seconds": self.seconds,
               "startup": self.startup, "device": self.device, "error": self.error, "option": self.error_option,
               "progress": self.progress, "position": position, "starred": self.starred, "notes": list(self.notes)}
        if self.status == "done":
            base = f"/api/jobs/{self.id}"
            out["result"] = {"image": f"{base}/image", "thumb": f"{base}/thumb", "settings": f"{base}/settings",
                             "width": self.size[0] if self.size else None,
                             "height": self.size[1] if self.size else None}
            if self.frames:  # a clip: the video, and its thumbnail a strip of frames
                out["result"].update(image=f"{base}/video", video=f"{base}/video", frames=self.frames)
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
        if event.kind == "note" and event.note:
            self.job.notes.append(event.note)
        progress = {"kind": event.kind, "scale": event.scale, "scales": event.scales, "size": list(event.size),
                    "step": event.step, "steps": event.steps, "done": event.done, "total": event.total,
                    "unit": event.unit, "loss": finite(event.loss), "elapsed": round(elapsed, 3),
                    "eta": None if eta is None else round(eta, 3), "preview": self.job.preview_count or None,
                    "notes": list(self.job.notes)}
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
        max_queued: runs waiting at most (more are refused with :class:`QueueFull`).
        keep_unfinished: failed and cancelled runs kept (the oldest go first).
        parse: checks the settings of a queued run found on disk (``record -> RunSettings``; None: such runs fail).
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
        max_queued: int = DEFAULT_MAX_QUEUED,
        keep_unfinished: int = DEFAULT_KEEP_UNFINISHED,
        parse: Callable[[dict], RunSettings] | None = None,
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
        self.max_queued = int(max_queued)
        self.keep_unfinished = int(keep_unfinished)
        self.parse = parse
        #: (folder, how it is shown) of the server's folders, left out of the messages of failed runs
        self.private_folders: list[tuple[str, str]] = [(str(Path(workdir).resolve()), ""),
                                                       (str(Path(workdir)), "")]
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
        self._load()

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

    def finished(self, offset: int = 0, limit: int | None = None, status: str | None = None,
                 starred: bool = False) -> list[dict]:
        """The finished runs, newest first, as JSON: ``limit`` of them from ``offset`` (all: None), of one
        ``status`` only, or the starred ones only."""
        return [j.summary() for j in self._finished(status, starred)[offset:None if limit is None else offset + limit]]

    def count_finished(self, status: str | None = None, starred: bool = False) -> int:
        return len(self._finished(status, starred))

    def _finished(self, status: str | None, starred: bool) -> list[WebJob]:
        with self._cond:
            jobs = [j for j in self._jobs.values() if j.status in FINISHED and (status is None or j.status == status)
                    and (j.starred or not starred)]
        return sorted(jobs, key=lambda j: j.finished or j.created, reverse=True)

    def uploads_in_use(self) -> set[str]:
        """Upload ids that runs of this server name (inputs, masks): not to be cleaned away."""
        with self._cond:
            records = [j.record for j in self._jobs.values()]
        ids: set[str] = set()
        for rec in records:
            ids.update(v for v in rec.get("style") or [] if isinstance(v, str))
            if isinstance(rec.get("content"), str):
                ids.add(rec["content"])
            ids.update(v for v in (rec.get("options") or {}).values() if isinstance(v, str))
        return ids

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
        return self.submit_many([settings])[0]

    def submit_many(self, runs: Sequence[RunSettings]) -> list[WebJob]:
        """Queue several runs (variations) at once, all or none.

        Raises:
            QueueFull: the queue would hold more than ``max_queued`` runs.
        """
        jobs = [WebJob(secrets.token_hex(8), s, s.to_json(), s.label()) for s in runs]
        with self._cond:
            if self._stopping:
                raise OttexError("the server is stopping")
            if len(self._queue) + len(jobs) > self.max_queued:
                raise QueueFull(f"the queue is full: this server keeps at most {self.max_queued} runs waiting "
                                f"({len(self._queue)} are); wait for some to finish, or cancel some", option="queue")
            for job in jobs:
                self._jobs[job.id] = job
                self._queue.append(job)
        for job in jobs:
            self._save(job)
        self.touch()
        return jobs

    def delete(self, job_id: str) -> None:
        """Remove a finished run: from the gallery and from disk (its image, thumbnail and record).

        Raises:
            InputError: no such run, or it is not finished (cancel it first).
        """
        job = self.get(job_id)
        with self._cond:
            if job.status not in FINISHED:
                raise InputError(f"run {job_id} is {job.status}: cancel it before deleting it", option="job")
            self._jobs.pop(job.id, None)
        for suffix in (".png", *(f".{c}" for c in CONTAINERS), ".thumb.jpg", ".json"):
            (self.results / f"{job.id}{suffix}").unlink(missing_ok=True)
        self.touch()

    def star(self, job_id: str, starred: bool) -> WebJob:
        """Mark a finished run as a favourite (or not); kept in its record."""
        job = self.get(job_id)
        if job.status not in FINISHED:
            raise InputError(f"run {job_id} is not finished yet", option="job")
        job.starred = bool(starred)
        self._save(job)
        self.touch()
        return job

    def _record(self, job: WebJob) -> dict:
        return {"id": job.id, "status": job.status, "label": job.label, "settings": job.record,
                "created": job.created, "started": job.started, "finished": job.finished, "seconds": job.seconds,
                "startup": job.startup, "device": job.device, "error": job.error, "option": job.error_option,
                "size": list(job.size) if job.size else None, "starred": job.starred, "frames": job.frames,
                "ottex": __version__}

    def _save(self, job: WebJob) -> None:
        """Write the run's record (atomically: a killed server leaves the old one or the new one)."""
        path = self.results / f"{job.id}.json"
        tmp = path.with_suffix(".json.tmp")
        try:
            tmp.write_text(json.dumps(finite(self._record(job)), indent=2, allow_nan=False))
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot write the record of run %s: %s", job.id, exc)

    def _trim(self) -> None:
        """Forget the oldest failed and cancelled runs beyond ``keep_unfinished`` (and their records)."""
        with self._cond:
            spare = sorted((j for j in self._jobs.values() if j.status in ("failed", "cancelled")),
                           key=lambda j: j.finished or j.created, reverse=True)[self.keep_unfinished:]
            for job in spare:
                self._jobs.pop(job.id, None)
        for job in spare:
            (self.results / f"{job.id}.json").unlink(missing_ok=True)

    def cancel(self, job_id: str) -> WebJob:
        """Cancel a queued run (at once) or a running one (at its next progress event, or interrupted after
        ``interrupt_after`` seconds); nothing is written."""
        job = self.get(job_id)
        with self._cond:
            queued = job.status == "queued"
            if queued:
                self._queue.remove(job)
                job.status = "cancelled"
                job.finished = time.time()
            elif job.status == "running" and not job.cancel_requested:
                job.cancel_requested = True
                timer = threading.Timer(self.interrupt_after, self._interrupt, (job.id,))
                timer.daemon = True
                timer.start()
        if queued:
            self._save(job)
            self._trim()
        self.touch()
        return job

    def redact(self, message: str) -> str:
        """A run's message without the server's folders (``uploads/...``, ``models/...`` are enough to say which
        file; where the server keeps them is not the page's business)."""
        for folder, shown in self.private_folders:
            message = message.replace(folder.rstrip("/") + "/", shown).replace(folder, shown.rstrip("/") or ".")
        return message

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
        """``image`` (PNG; a clip's: its video), ``video`` (MP4 or WebM), ``thumb`` (JPEG) or ``settings`` (JSON)
        of a finished run.

        Raises:
            InputError: no such run, or it made no image.
        """
        job = self.get(job_id)
        if job.status != "done":
            raise InputError(f"run {job_id} made no image ({job.status})", option="job")
        if what == "video" and not job.frames:
            raise InputError(f"run {job_id} made an image, not a video", option="job")
        suffixes = {"image": job.suffix, "video": job.suffix, "thumb": ".thumb.jpg", "settings": ".json"}
        return self.results / f"{job.id}{suffixes[what]}"

    def _load(self) -> None:
        """The runs of earlier servers in the same folder: finished ones join the gallery, queued ones wait for
        :meth:`start`, one that was running when its server was killed is failed (saying so)."""
        for meta in sorted(self.results.glob("*.json")):
            job_id = meta.stem
            if not JOB_ID.fullmatch(job_id):
                continue
            try:
                record = _read_record(meta)
                status = record.get("status", "done")
                made = result_suffix(bool(record.get("frames")), _container(record["settings"]))
                if status not in STATES or (status == "done" and not (self.results / f"{job_id}{made}").is_file()):
                    continue
                job = WebJob(job_id, None, record["settings"], record["label"], status=status,
                             created=record["created"], started=record.get("started"),
                             finished=record.get("finished"), seconds=record.get("seconds"),
                             startup=record.get("startup"), device=record.get("device"), error=record.get("error"),
                             error_option=record.get("option"), starred=bool(record.get("starred")),
                             size=tuple(record["size"]) if record.get("size") else None,
                             frames=record.get("frames"))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning("skipping unreadable run record %s: %s", meta, exc)
                continue
            if status == "running":
                job.status, job.error, job.finished = "failed", INTERRUPTED, time.time()
                self._save(job)
            self._jobs[job_id] = job
        for tmp in self.results.glob("*.json.tmp"):
            tmp.unlink(missing_ok=True)
        pending = sorted((j for j in self._jobs.values() if j.status == "queued"), key=lambda j: j.created)
        for job in pending:
            try:
                if self.parse is None:
                    raise InputError("its settings cannot be checked again here")
                job.settings = self.parse(job.record)
            except OttexError as exc:
                job.status, job.finished = "failed", time.time()
                job.error, job.error_option = f"not run again after a restart: {exc}", exc.option
                self._save(job)
                continue
            self._queue.append(job)
        self._trim()

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
            for job in list(self._queue):  # their records stay "queued": the next server runs them
                job.status, job.finished = "cancelled", time.time()
            self._queue.clear()
            running = [job.id for job in self._jobs.values() if job.status == "running"]
            for job_id in running:
                self._jobs[job_id].requeue = True
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
            self._save(job)
            self.touch()
            self._run(job, device)

    def _run(self, job: WebJob, device: torch.device) -> None:
        settings = job.settings
        assert settings is not None
        output = self.results / f"{job.id}{settings.suffix}"
        t0 = time.monotonic()
        status, error, option = "failed", None, None
        try:
            with self._interrupt_lock:
                self._interruptible[job.id] = threading.get_ident()
            try:
                if settings.task == COLOR:
                    self._color(settings, device, output)
                elif settings.clip:
                    self._video(job, settings, device, output)
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
            error, option = self.redact(str(exc)), exc.option
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
                for p in (output, output.with_suffix(".thumb.jpg")):
                    p.unlink(missing_ok=True)
                shutil.rmtree(self.results / f".{output.name}.frames", ignore_errors=True)  # a clip's frames
            with self._cond:
                job.status, job.error, job.error_option = status, error, option
                job.finished = time.time()
                # the last preview stays a little (a page may ask for it as the run ends), for a few runs only
                self._previews.append(job)
                if len(self._previews) > KEEP_PREVIEWS:
                    self._previews.popleft().preview = None
            if job.requeue and status == "cancelled":  # stopped with its server: the next one runs it again
                self._save(dataclasses.replace(job, status="queued", started=None, finished=None, device=None))
            elif status == "done":
                self._save(job)
            else:
                self._save(job)
                self._trim()
            self.touch()

    def _strip(self, output: Path) -> tuple[int, int]:
        """The thumbnail of a clip's result: :data:`STRIP_FRAMES` frames spread over it, side by side (JPEG)."""
        from ...video.io import open_clip  # noqa: PLC0415 - the video extra, only for a clip

        clip = open_clip(output)
        picks = sorted({round(i * (clip.count - 1) / max(1, STRIP_FRAMES - 1)) for i in range(STRIP_FRAMES)})
        tiles = []
        for index, frame in enumerate(clip.frames()):
            if index in picks:
                tile = to_pil(frame)
                tile.thumbnail((self.thumb_side, self.thumb_side))
                tiles.append(tile)
        strip = Image.new("RGB", (sum(t.width for t in tiles), max(t.height for t in tiles)))
        x = 0
        for tile in tiles:
            strip.paste(tile, (x, 0))
            x += tile.width
        tmp = output.with_suffix(".thumb.jpg.tmp")
        strip.save(tmp, format="JPEG", quality=88)
        os.replace(tmp, output.with_suffix(".thumb.jpg"))
        return clip.size[1], clip.size[0]

    def _color(self, settings: RunSettings, device: torch.device, output: Path) -> None:
        source = load_image(self.uploads.path(settings.content), device=device)
        target = load_image(self.uploads.path(settings.style[0]), device=device)
        out = color_transfer(source, target, rotations=settings.rotations or 1, seed=settings.seed)
        save_image(out, output)

    def _video(self, job: WebJob, settings: RunSettings, device: torch.device, output: Path) -> None:
        """A style transfer of a clip: the video job of ``ottex video`` (checked by its ``make_video_job``), run
        frame by frame with this run's progress (``frame``/``frames`` added to it after every frame)."""
        from ...video.run import run_video  # noqa: PLC0415 - the video extra, only for a clip

        vjob = settings.video_job(self.uploads, output)
        watcher = Watcher(job, self, self.preview_interval, self.preview_side)

        def on_frame(done: int, total: int) -> None:
            job.progress = {**(job.progress or {}), "frame": done, "frames": total}
            job.progress_count += 1
            self.touch(progress_only=True)

        run_video(vjob, device=device, weights_dir=self.weights_dir, callback_factory=lambda _index: watcher,
                  on_frame=on_frame)
        job.frames = vjob.stop - vjob.start

    def _finish(self, job: WebJob, output: Path) -> tuple[int, int]:
        """Thumbnail and settings record of a finished run; returns the image's ``(width, height)`` (a clip's:
        its frames', and its thumbnail a strip of :data:`STRIP_FRAMES` frames side by side)."""
        if job.frames:
            return self._strip(output)
        with Image.open(output) as img:
            size = img.size
            thumb = img.convert("RGB")
            thumb.thumbnail((self.thumb_side, self.thumb_side))
        thumb.save(output.with_suffix(".thumb.jpg"), format="JPEG", quality=90)
        return size
