"""The request of one run, and the one function that builds it from text or Python values and checks it.

A :class:`Job` says what to run (a registered method, a task, inputs, options, size, seed, batch) and where to
write (one path per output image). :func:`make_job` builds it and checks every part before any work: the task and
the method, each option (:func:`~ottex.methods.options.make_options`: kinds, finite numbers, choices, bounds, the
method's own checks), the size, seed and batch, the colour preservation, that the input files (images, label maps,
trained models) exist. Every front end goes through it: the command line (``ottex synth``/``style``/``batch``),
the web form, batch manifests and bench variants, so a bad value gives the same message everywhere. The executors
(:mod:`ottex.exec`) run jobs.

Example:
    >>> job = make_job("synthesis", "ot", style="zebra.jpg", size="256", options={"passes": "2"},
    ...                outputs=["out.png"])  # doctest: +SKIP
    >>> job.size, job.options.passes  # doctest: +SKIP
    ((256, 256), (2,))
    >>> make_job("synthesis", "ot", style=torch.rand(1, 3, 32, 32), options={"style_scale": "nan"})
    Traceback (most recent call last):
    ...
    ottex.core.errors.InputError: style_scale takes a finite number, got nan
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.checks import check_batch, check_int, check_size
from ..core.device import parse_seed
from ..core.errors import ImageError, InputError
from ..image.color import color_mode
from ..image.io import image_size
from .base import get_method
from .cost import check_run_cost, output_hw
from .options import SYNTHESIS, TASKS, TRANSFER, Options, jsonable, label_number, option_values, settings_digest

__all__ = ["Job", "make_job", "output_stem", "fit_size", "file_options", "job_settings"]

PathLike = str | os.PathLike
ImageInput = PathLike | torch.Tensor


@dataclass
class Job:
    """One run of a method: the request every front end builds (with :func:`make_job`) and an executor runs.

    Attributes:
        method: registered method name.
        task: ``"synthesis"`` or ``"transfer"``.
        style: the style image (a path or a tensor), or several for methods that mix examples.
        outputs: where to write: one path per output image (``batch`` of them for synthesis).
        content: the content image (transfer).
        size: ``(H, W)`` for synthesis; for transfer the long side (None: the content's) or ``(H, W)``.
        options: the method's options object (a mapping of option values is checked when the job runs).
        batch: synthesis: images made at once.
        seed: random seed.
        preserve_color: transfer: keep the content's colours (True, "full" or "luminance").
        overwrite: replace existing output files.
        name: how the job is called in reports (default: its inputs).
        inputs: other input files (e.g. label maps) that must never be overwritten.
        key: the job's key (:func:`ottex.exec.keys.job_key`), recorded in its outputs when given.
    """

    method: str
    task: str
    style: ImageInput | Sequence[ImageInput]
    outputs: Sequence[PathLike] = ()
    content: ImageInput | None = None
    size: tuple[int, int] | int | None = None
    options: Any = None
    batch: int = 1
    seed: int | None = 0
    preserve_color: bool | str | None = False
    overwrite: bool = False
    name: str = ""
    inputs: Sequence[PathLike] = ()
    key: str | None = None

    def input_files(self) -> list[PathLike]:
        """Every input that is a file (never to be overwritten)."""
        styles = self.style if isinstance(self.style, (list, tuple)) else [self.style]
        items = [*styles, self.content, *self.inputs]
        return [p for p in items if isinstance(p, (str, os.PathLike))]

    def label(self) -> str:
        return self.name or " + ".join(str(p) for p in self.input_files()) or self.method


def fit_size(size: tuple[int | None, int | None], image: ImageInput | None) -> tuple[int, int]:
    """``(H, W)`` with a missing side taken from the aspect of ``image`` (a file, read from its header, or a
    tensor).

    An image that cannot be read gives a square here: its job then fails with the reading error.
    """
    h, w = size
    if h is not None and w is not None:
        return h, w
    try:
        if isinstance(image, torch.Tensor):
            ih, iw = image.shape[-2:]
        else:
            ih, iw = image_size(image) if image is not None else (1, 1)
    except ImageError:
        ih, iw = 1, 1
    if h is None:
        return max(1, round(w * ih / iw)), w  # type: ignore[operator]
    return h, max(1, round(h * iw / ih))


def file_options(method: str, task: str) -> list[str]:
    """The options of a method that name input files: label maps and trained models."""
    return [s.name for s in get_method(method, task).option_specs(task) if s.is_file]


def _version() -> str:
    try:
        return importlib.metadata.version("ottex")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def job_settings(
    job: Job, options: Options, size: tuple[int, int], index: int = 0, device: torch.device | str | None = None
) -> dict[str, Any]:
    """What made one output of a job, as a JSON-able record: the method, task, inputs, output size, seed, every
    option value, the batch (and which image of it), colour preservation, device and ottex version.

    Input files are recorded by their absolute paths, inputs given as tensors as ``"<tensor>"``; so are the
    options that name files (label maps, trained models: :func:`~ottex.methods.request.file_options`), so that the
    record makes the image again from any folder.
    """

    def name(x: object) -> str:
        return os.path.abspath(x) if isinstance(x, (str, os.PathLike)) else "<tensor>"

    styles = job.style if isinstance(job.style, (list, tuple)) else None
    inputs: dict[str, Any] = {"style": [name(s) for s in styles] if styles is not None else name(job.style)}
    if job.content is not None:
        inputs["content"] = name(job.content)
    record: dict[str, Any] = {"ottex": _version(), "method": job.method, "task": job.task, "inputs": inputs,
                              "size": list(size), "requested_size": jsonable(job.size), "seed": job.seed,
                              "options": _absolute_files(job, options)}
    if job.task == SYNTHESIS:
        record["batch"] = job.batch
        if job.batch > 1:
            record["index"] = index
    else:
        record["preserve_color"] = color_mode(job.preserve_color)
    if device is not None:
        record["device"] = str(device)
    return record


def _absolute_files(job: Job, options: Options) -> dict[str, Any]:
    """A job's options as JSON values: those of its task (a synthesis records no ``content_strength``), the files
    of :func:`file_options` (given as paths) by absolute paths."""
    task_options = {spec.name for spec in get_method(job.method, job.task).option_specs(job.task)}
    values = {k: v for k, v in option_values(options).items() if k in task_options}
    for name in file_options(job.method, job.task):
        value = getattr(options, name, None)
        if isinstance(value, (str, os.PathLike)):
            values[name] = os.path.abspath(value)
    return values


def _check_file(path: Any, name: str, what: str = "file") -> None:
    """An input given as a path must be a file (``"style image not found: x.jpg"``)."""
    if isinstance(path, (str, os.PathLike)) and not Path(path).is_file():
        problem = "is a folder, not a file" if Path(path).is_dir() else "not found"
        raise InputError(f"{name} {what} {problem}: {path}", option=name)


def _size(task: str, size: Any, image: ImageInput | None) -> tuple[int, int] | int | None:
    """The output size: synthesis ``(H, W)`` (an int: a square) [512]; transfer the long side (None: the
    content's) or ``(H, W)``; sides may be text; a side given as None follows the aspect of ``image``."""
    if isinstance(size, str):
        size = None if not size.strip() else check_int(size, "size")
    if isinstance(size, (tuple, list)) and len(size) == 2:
        size = tuple(None if s is None else check_int(s, "size") for s in size)
        if None in size:
            size = fit_size(size, image) if size != (None, None) else None
    if task == TRANSFER:
        if size is None:
            return None
        return check_size(size) if isinstance(size, tuple) else check_size(size)[0]
    return check_size((512, 512) if size is None else size)


def _mix(options: Options, count: int) -> Options:
    """``mix`` (methods that mix several style images): with two images one weight is the second's; else one
    weight per image (their count and signs are the method's checks)."""
    mix = getattr(options, "mix", None)
    if mix is None:
        return options
    if count < 2:
        raise InputError("mix needs at least two style images", option="mix")
    if len(mix) == 1 and count == 2:
        if not 0 <= mix[0] <= 1:
            raise InputError(f"mix with two style images takes the second's weight in [0, 1], got {mix[0]:g}",
                             option="mix")
        return options.replace(mix=(1 - mix[0], mix[0]))
    return options


def output_stem(job: Job) -> str:
    """The name of a job's output (without suffix) from its inputs and settings, as ``ottex synth``/``style``
    and batch manifests name outputs: ``<style>_synth_<W>x<H>[_masked]_<label>_s<seed>[_<digest>]`` (several mixed
    examples: ``<style>+<style>_mix<weights>``), ``<content>_<style>_style_<content label>[_<W>x<H>][_pc|_lum]
    [_masked]_<label>_s<seed>[_<digest>]`` (the output's size whenever a size was asked for, however it was
    given: ``size=256`` and ``size=(None, 256)`` name a 256x171 output alike); the digest of the settings that are
    not at their defaults (and, for synthesis, of a batch above 1: its images share their rotations, so they
    differ from single runs)."""
    method = get_method(job.method, job.task)
    masked = "_masked" if job.inputs else ""
    if job.task == SYNTHESIS:
        styles = job.style if isinstance(job.style, list) else [job.style]
        mix = getattr(job.options, "mix", None)
        name = "+".join(_stem(s) for s in styles) + (f"_mix{'-'.join(label_number(v) for v in mix)}" if mix else "")
        h, w = job.size  # type: ignore[misc]
        tag = f"{name}_synth_{w}x{h}{masked}"
        digest = settings_digest(method.name, job.options, job.batch)
    else:
        hw = None if job.size is None else output_hw(job.size, job.content)
        size_tag = "" if job.size is None else f"_{hw[1]}x{hw[0]}" if hw else f"_{job.size}"
        colors = {False: "", "full": "_pc", "luminance": "_lum"}[job.preserve_color]  # type: ignore[index]
        head = f"{method.content_label(job.options)}{size_tag}{colors}{masked}".lstrip("_")
        tag = f"{_stem(job.content)}_{_stem(job.style)}_style_{head}"
        digest = settings_digest(method.name, job.options)
    return f"{tag}_{method.label(job.options, job.task)}_s{job.seed}" + (f"_{digest}" if digest else "")


def _stem(image: Any) -> str:
    return Path(image).stem if isinstance(image, (str, os.PathLike)) else "tensor"


def make_job(
    task: str,
    method: str = "ot",
    *,
    style: ImageInput | Sequence[ImageInput],
    content: ImageInput | None = None,
    size: Any = None,
    options: Mapping[str, Any] | Options | None = None,
    seed: int | str = 0,
    batch: int | str = 1,
    preserve_color: bool | str | None = None,
    outputs: Sequence[PathLike] = (),
    outdir: PathLike | None = None,
    overwrite: bool = False,
    name: str = "",
    key: str | None = None,
    device: str | torch.device | None = None,
) -> Job:
    """The checked request of one run, from values given as text (a command line, a form, a manifest row, a
    bench variant) or as Python values.

    Args:
        task: ``"synthesis"`` or ``"transfer"``.
        method: a registered method that does ``task``.
        style: the style image(s) (paths or tensors; several only for a method with a ``mix`` option).
        content: the content image (transfer only).
        size: synthesis: ``(H, W)``, an int (a square) [512]; transfer: the long side (None: the content's) or
            ``(H, W)``; a side None follows the aspect of the content (or the style).
        options: the method's option values by name (text or values), or an options object.
        seed: random seed, 0 to 2**63-1.
        batch: images of one synthesis run.
        preserve_color: transfer: None, True/``"full"`` or ``"luminance"``.
        outputs: where to write.
        outdir: without ``outputs``: write into this folder, named by :func:`output_stem` (``_<i>`` added for
            each image of a batch).
        overwrite: replace existing outputs.
        name: how reports call the job.
        key: the job's key (ottex batch).
        device: where it will run: a run whose estimated peak memory exceeds what that device has available is
            refused (:func:`~ottex.methods.cost.check_run_cost`; default: CUDA if available, else the CPU).

    Raises:
        InputError: naming the parameter at fault (``option``), before any work.
    """
    if task not in TASKS:
        raise InputError(f"unknown task {str(task)[:40]!r} (choose from {', '.join(TASKS)})", option="task")
    m = get_method(method, task)
    opts = m.make_options(options, task)
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise InputError("give a style image", option="style")
    if len(styles) > 1 and not any(s.name == "mix" for s in m.option_specs(task)):
        raise InputError(f"method '{m.name}' takes one style image (only methods with a mix option mix several)",
                         option="style")
    for s in styles:
        _check_file(s, "style", "image")
    if task == TRANSFER:
        if content is None:
            raise InputError("a style transfer needs a content image", option="content")
        _check_file(content, "content", "image")
        if len(styles) > 1:
            raise InputError("a style transfer takes one style image", option="style")
    elif content is not None:
        raise InputError("a texture synthesis takes no content image", option="content")
    files = [getattr(opts, f) for f in file_options(m.name, task) if getattr(opts, f) is not None]
    for f in file_options(m.name, task):
        _check_file(getattr(opts, f), f)
    if files and len(styles) > 1:
        raise InputError("label maps take one style image", option="style")
    opts = _mix(opts, len(styles))
    try:
        seed = parse_seed(seed.strip() if isinstance(seed, str) else seed)
    except ValueError as exc:
        raise InputError(f"seed takes {str(exc).removeprefix('a seed is ')}", option="seed") from None
    if task == SYNTHESIS:
        batch = check_batch(batch)
    elif batch != 1:
        raise InputError("batch applies to synthesis (a style transfer makes one image per seed)", option="batch")
    mode = color_mode(None if isinstance(preserve_color, str) and preserve_color.lower() in ("", "none", "off")
                      else preserve_color)
    if mode is not None and task != TRANSFER:
        raise InputError("preserve_color applies to style transfer", option="preserve_color")
    job = Job(m.name, task, style=styles if len(styles) > 1 else styles[0], content=content,
              size=_size(task, size, content if content is not None else styles[0]), options=opts, batch=batch,
              seed=seed, preserve_color=mode or False, outputs=list(outputs), overwrite=overwrite, name=name,
              inputs=[f for f in files if isinstance(f, (str, os.PathLike))], key=key)
    check_run_cost(m, output_hw(job.size, job.content), job.batch, device, warn=False, options=opts,
                   task=task)  # the run warns itself
    if not job.outputs and outdir is not None:
        stem = output_stem(job)
        names = [f"{stem}.png"] if batch == 1 else [f"{stem}_{i}.png" for i in range(batch)]
        job.outputs = [Path(outdir) / n for n in names]
    return job
