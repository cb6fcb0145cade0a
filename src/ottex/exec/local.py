"""Running jobs: one method on one set of inputs, written to files; a failing job does not stop the others.

A :class:`~ottex.methods.request.Job` (built and checked by
:func:`~ottex.methods.request.make_job`) says what to run and where to write. :class:`LocalExecutor`
runs jobs in this process, one after the other: it refuses to overwrite an
input (ever) or an existing file (unless the job allows it) before any work,
loads the inputs on the device, runs the method with a progress callback, and
writes the outputs atomically. An :class:`~ottex.core.errors.OttexError` fails
its job only (recorded in the :class:`JobResult`); :class:`~ottex.core.errors.Cancelled`
stops the whole batch. The command line runs its jobs through it; a Ray
executor will take the same jobs.

Example:
    >>> job = make_job("synthesis", "ot", style="zebra.jpg", size=256, outputs=["out.png"])  # doctest: +SKIP
    >>> (result,) = LocalExecutor(device="cpu").run([job])  # doctest: +SKIP
    >>> result.ok, result.outputs  # doctest: +SKIP
    (True, [PosixPath('out.png')])
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.device import resolve_device
from ..core.errors import Cancelled, ImageError, InputError, OttexError
from ..core.files import check_writable
from ..core.progress import Callback
from ..image.io import load_image, output_format, save_image
from ..methods.base import get_method
from ..methods.options import SYNTHESIS
from ..methods.request import Job, job_settings
from ..nn.weights import search_dirs
from .keys import KEY_FIELD, output_key, write_key_sidecar

__all__ = ["Job", "JobResult", "LocalExecutor", "check_image_name", "check_outputs_free", "job_settings"]

PathLike = str | os.PathLike


@dataclass
class JobResult:
    """What became of a job: the written files, or the error that stopped it."""

    job: Job
    outputs: list[Path] = field(default_factory=list)
    error: OttexError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def check_image_name(path: PathLike) -> None:
    """Check that an image can be written to ``path``: it is not a folder and its suffix names an image format.

    Raises:
        InputError: ``path`` is a folder, or its suffix is no image format (``option="outputs"``).
    """
    p = Path(path)
    _refuse_folder(p)
    try:
        output_format(p)
    except ImageError as exc:
        raise InputError(str(exc), option="outputs") from None


def _refuse_folder(p: Path) -> None:
    if p.is_dir():
        raise InputError(f"output {p} is a folder; give a file name", option="outputs")


def check_outputs_free(outputs: Sequence[PathLike], inputs: Sequence[PathLike], overwrite: bool,
                       images: bool = True) -> None:
    """Before any work: refuse to overwrite an input (ever), a folder, or an existing output (unless
    ``overwrite``); check that the outputs are named as images (``images``) and that their folders exist and are
    writable.

    Raises:
        InputError: an output is an input, a folder or not an image name, or its folder is missing or not writable
            (``option="outputs"``), or it exists (``option="overwrite"``).
    """
    ins = {Path(p).resolve() for p in inputs}
    for p in map(Path, outputs):
        if p.resolve() in ins:
            raise InputError(f"output {p} is one of the inputs; choose another output name", option="outputs")
        _refuse_folder(p)
        if p.exists() and not overwrite:
            raise InputError(f"output exists: {p}", option="overwrite")
        if images:
            check_image_name(p)
    for folder in dict.fromkeys(Path(p).parent for p in outputs):
        check_writable(folder)


class LocalExecutor:
    """Runs jobs one after the other in this process.

    Args:
        device: where the methods run (``"auto"``, ``"cpu"``, ``"cuda"`` ...).
        weights_dir: folder searched first for weights.
        callback_factory: ``factory(job) -> callback`` (or None): the progress
            subscriber of each job, e.g. a progress bar.
        on_result: called with each :class:`JobResult` as it is made.
        record: write each output's settings into it (:func:`job_settings`,
            read back by :func:`ottex.image.io.read_settings`).
        record_extra: more fields for every settings record (e.g. the front end's name).
    """

    def __init__(
        self,
        device: str | torch.device | None = "auto",
        weights_dir: PathLike | None = None,
        callback_factory: Callable[[Job], Callback | None] | None = None,
        on_result: Callable[[JobResult], None] | None = None,
        record: bool = True,
        record_extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.device = resolve_device(device)
        search_dirs(weights_dir)  # a --weights-dir that is no folder is refused before any job
        self.weights_dir = None if weights_dir is None else str(weights_dir)
        self.callback_factory = callback_factory
        self.on_result = on_result
        self.record = record
        self.record_extra = dict(record_extra or {})

    def run(self, jobs: Sequence[Job], *, raise_errors: bool = False) -> list[JobResult]:
        """Run ``jobs``; a job's :class:`OttexError` is recorded in its result and the next job runs.

        Args:
            jobs: the jobs.
            raise_errors: re-raise a job's error instead of recording it.

        Raises:
            Cancelled: a progress callback stopped a job (the remaining jobs do not run).
        """
        results = []
        for job in jobs:
            try:
                result = JobResult(job, outputs=self.run_one(job))
            except Cancelled:
                raise
            except OttexError as exc:
                if raise_errors:
                    raise
                result = JobResult(job, error=exc)
            results.append(result)
            if self.on_result is not None:
                self.on_result(result)
        return results

    def run_one(self, job: Job) -> list[Path]:
        """Run one job and write its outputs; returns their paths.

        A job that runs itself (a :class:`~ottex.methods.request.Job` subclass with a ``run_with(executor)``
        method, such as a clip range of :mod:`ottex.video`) is handed this executor (its device, weights and
        progress subscribers) and does its own checks and writing.

        Raises:
            OttexError: the job failed (nothing was written).
        """
        run_with = getattr(job, "run_with", None)
        if callable(run_with):
            return [Path(p) for p in run_with(self)]
        method = get_method(job.method, job.task)
        options = method.make_options(job.options, job.task)
        outputs = [Path(p) for p in job.outputs]
        check_outputs_free(outputs, job.input_files(), job.overwrite)
        callback = self.callback_factory(job) if self.callback_factory is not None else None
        try:
            if job.task == SYNTHESIS:
                styles = job.style if isinstance(job.style, (list, tuple)) else None
                style = [self._load(s) for s in styles] if styles is not None else self._load(job.style)
                size = job.size if job.size is not None else (512, 512)
                out = method.synthesize(style, size, options, batch=job.batch, seed=job.seed,
                                        device=self.device, weights_dir=self.weights_dir, callback=callback)
            else:  # TRANSFER (get_method checked the task)
                if job.content is None:
                    raise InputError("a style transfer job needs a content image", option="content")
                content = self._load(job.content)
                out = method.transfer(content, self._load(job.style), job.size, options,
                                      preserve_color=job.preserve_color, seed=job.seed, device=self.device,
                                      weights_dir=self.weights_dir, callback=callback)
        finally:
            close = getattr(callback, "close", None)
            if close is not None:
                close()
        if len(outputs) != out.shape[0]:
            raise ImageError(f"the job made {out.shape[0]} image(s) but names {len(outputs)} output(s)")
        for i, (img, path) in enumerate(zip(out, outputs)):
            settings = None
            if self.record or job.key is not None:
                settings = {**job_settings(job, options, tuple(img.shape[-2:]), i, self.device), **self.record_extra}
            if job.key is not None:  # ottex batch: the job's key, by which a re-run knows the output is done
                settings[KEY_FIELD] = output_key(job.key, i, len(outputs))
            save_image(img.unsqueeze(0), path, overwrite=job.overwrite, settings=settings)
            if job.key is not None:
                write_key_sidecar(path, settings[KEY_FIELD])
        return outputs

    def _load(self, image: PathLike | torch.Tensor) -> torch.Tensor:
        if isinstance(image, torch.Tensor):
            return image.to(self.device)
        return load_image(image, device=self.device)
