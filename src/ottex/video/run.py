"""A style transfer of a clip, frame by frame, made steady over time.

:func:`make_video_job` checks the whole request before any work: the clip (:func:`~ottex.video.io.open_clip`),
and, through :func:`~ottex.methods.request.make_job` (the one request path) on the clip's first frame, the
method, style, options, size, seed and colour preservation; then the output (never an input, not an existing
file unless ``overwrite``, a known container or a folder for an image sequence). :func:`run_video` runs it.

Temporal modes (``temporal``):

* ``"per-frame"``: every frame styled on its own, with the same seed (so the same random rotations and noise).
* ``"blend"``: as per-frame, then where the input's optical flow is reliable (:func:`~ottex.video.flow.
  reliable_mask`) the result is blended with the previous result warped by that flow, with weight ``blend``.
  Works with every method.
* ``"consistent"`` (the default): for methods that can start from a given image (``ot``:
  :func:`~ottex.methods.optimal_textures.transfer_from`), each frame after the first starts from the previous
  result warped by the flow (the frame itself where the flow is not reliable) and only the finest scale of the
  schedule runs (one pass over relu3_1 ... relu1_1), with the same rotations; then the blend (weight
  :data:`WARM_BLEND`, 0.9, unless ``blend`` is given). The first frame is a full transfer followed by
  :data:`WARM_SETTLE` warm starts from itself, so that the frames after it, which change it only a little, start
  from where the warm start settles. Other methods fall back to ``"blend"``.

A result is carried to the next frame by Lanczos-3 resampling along the flow (:func:`~ottex.video.flow.warp`,
clamped to ``[0, 1]``): bilinear resampling blurs a little at every frame, and the blur adds up in a result that
is mostly carried over (bicubic, less).

Chunks (``chunks``, ``overlap``): the frames are cut into ``chunks`` ranges run as separate jobs (:class:`ClipJob`,
through :func:`~ottex.exec.batch.run_batch` on the local executor or Ray workers); each range after the first
starts ``overlap`` frames before its first frame of its own (a full style transfer there, then the temporal mode),
and over those frames the result cross-fades from the earlier range to the later one (weights ``1/(K+1) ...
K/(K+1)``), so the two textures meet without a jump (:func:`join_frames`).

Frames are written one by one, atomically, as PNGs into a work folder (the output folder itself for an image
sequence); a run that stops is continued by the same call from the last written frame (the settings of the run
are kept beside the frames, and frames made with other settings are never mixed in). A container is encoded
at the end, with the clip's frame rate and its audio copied as it is.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.checks import check_int
from ..core.device import resolve_device
from ..core.errors import InputError, OttexError
from ..core.files import atomic_output, check_writable
from ..core.progress import Callback
from ..core.pyramid import content_output_size
from ..core.resample import resize
from ..exec.batch import BatchLocal, BatchProgress, run_batch
from ..exec.keys import KEY_FIELD, output_key
from ..exec.local import check_outputs_free, job_settings
from ..image.color import preserve_color as keep_colours
from ..image.io import load_image, save_image
from ..methods.base import get_method
from ..methods.optimal_textures import transfer_from
from ..methods.options import TRANSFER
from ..methods.request import Job, make_job
from .flow import optical_flow, reliable_mask, warp
from .io import Clip, check_video_output, frame_name, is_video_name, open_clip, write_clip, written_frames

__all__ = ["TEMPORAL_MODES", "DEFAULT_BLEND", "DEFAULT_OVERLAP", "VideoJob", "ClipJob", "make_video_job",
           "make_clip_job", "run_video", "video_output_name", "chunk_ranges", "clip_jobs", "join_frames", "join_pass"]

TEMPORAL_MODES = ("consistent", "blend", "per-frame")
#: Weight of the previous result (warped) where the flow is reliable in ``"blend"`` (``"consistent"`` with a warm
#: start: :data:`WARM_BLEND`; benchmarks/video.py: 0.5 cut the warping error of per-frame results 4x but blurred
#: the textures, the per-layer style distance 1.5-2x worse).
DEFAULT_BLEND = 0.5
#: Methods that can continue a transfer from a given image (the ``"consistent"`` mode's warm start); each takes
#: ``prepared``, a dict kept for the clip where it keeps the style's statistics after the first warm start.
WARM_STARTS: dict[str, Callable[..., torch.Tensor]] = {"ot": transfer_from}
#: The warm start's schedule: one pass over the levels from relu3_1 down, at the finest scale (benchmarks/video.py:
#: relu5_1/relu4_1 and more passes moved the textures of a pan 2-3x more from frame to frame, and were slower).
WARM_LEVELS, WARM_PASSES = 3, (1,)
#: The blend after a warm start (docs/video.md: with the first frame settled and Lanczos carrying, 0.9 brings the
#: warping error of the 256 px test clips to 0.10-1.43x the input's own, from 3-17x without a blend, every layer's
#: style distance below the per-frame results'; with bilinear carrying, a blend blurred the texture).
WARM_BLEND = 0.9
#: Warm starts of the first frame from its own full transfer (docs/video.md: without them the next frames' blend
#: averages the full transfer's texture with the warm start's, which differ: relu1_1 13 % further from the style).
WARM_SETTLE = 4
#: How a result is carried along the flow to the next frame (:func:`~ottex.video.flow.warp`).
CARRY_MODE = "lanczos"
SETTINGS_FILE = "ottex-video.json"
#: Frames each range after the first starts early, cross-faded with the range before (benchmarks/video.py
#: ``--chunks``: docs/video.md).
DEFAULT_OVERLAP = 4
#: Frames over which a range after the first fades in (:func:`join_frames`): with frames as steady as the consistent
#: mode's, a fade over the 4 frames of the overlap was a visible change (warping error 3.7x the others'); longer,
#: the two ranges' difference carried along the flow stands in for the frames the earlier range did not compute.
JOIN_FADE = 12
#: The folder of the ranges' frames, inside the work folder.
CHUNKS_FOLDER = ".chunks"


@dataclass
class VideoJob:
    """A checked video request: ``job`` (the request of every frame, made by :func:`make_job` on the first
    frame), the ``clip``, the ``output`` (a container file or a frame folder), the temporal mode and blend, the
    frame range ``[start, stop)``."""

    job: Job
    clip: Clip
    output: Path
    style: str | os.PathLike
    temporal: str = "consistent"
    blend: float = DEFAULT_BLEND
    start: int = 0
    stop: int = 0
    keep_frames: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    chunks: int = 1
    overlap: int = 0

    @property
    def is_sequence(self) -> bool:
        return not is_video_name(self.output)

    @property
    def work(self) -> Path:
        """Where the frames are written: the output folder, or a hidden folder beside the output file."""
        return self.output if self.is_sequence else self.output.with_name(f".{self.output.name}.frames")

    def settings(self, size: tuple[int, int], device: torch.device | str | None) -> dict[str, Any]:
        record = job_settings(self.job, self.job.options, size, 0, None)
        record["inputs"] = {"clip": os.path.abspath(self.clip.path), "style": os.path.abspath(self.style)}
        record.update(temporal=self.temporal, blend=self.blend, frames=[self.start, self.stop],
                      fps=str(self.clip.fps), **self.extra)
        if self.chunks > 1:
            record.update(chunks=self.chunks, overlap=self.overlap)
        return record


@dataclass
class ClipJob(Job):
    """A range of a clip styled into a folder of frames: a :class:`~ottex.methods.request.Job` that runs itself
    (``run_with``), so that :func:`~ottex.exec.batch.run_batch` runs it on the local executor or a Ray worker
    with keys, skipping and retries. Its ``outputs`` are the range's frames (``frame_000000.png`` ... in one
    folder), its ``content`` the clip's path; made by :func:`make_clip_job` (a manifest row with a ``clip``) or
    :func:`clip_jobs` (the chunks of a :class:`VideoJob`).

    Attributes:
        clip: the checked clip.
        frames: ``(start, stop)``: the range of the clip's frames.
        temporal, blend: as for :class:`VideoJob`.
    """

    clip: Clip | None = None
    frames: tuple[int, int] = (0, 0)
    temporal: str = "consistent"
    blend: float = DEFAULT_BLEND

    @property
    def folder(self) -> Path:
        return Path(self.outputs[0]).parent

    def video_job(self) -> VideoJob:
        """The range as a :class:`VideoJob` writing into :attr:`folder`."""
        assert self.clip is not None
        return VideoJob(self, self.clip, self.folder, self.style, self.temporal, self.blend, *self.frames,
                        keep_frames=True)

    def run_with(self, executor: Any) -> list[Path]:
        """Run the range with an executor's device, weights and progress subscriber (``callback_factory(job)``,
        made once per frame); returns the frames written."""
        factory = getattr(executor, "callback_factory", None)
        run_video(self.video_job(), device=executor.device, weights_dir=executor.weights_dir,
                  callback_factory=None if factory is None else (lambda _index: factory(self)))
        return [Path(p) for p in self.outputs]


def chunk_ranges(start: int, stop: int, chunks: int, overlap: int) -> list[tuple[int, int]]:
    """The frame ranges ``[a, b)`` of ``chunks`` jobs over frames ``start`` to ``stop``: equal shares, each share
    after the first begun ``overlap`` frames early.

    Example:
        >>> chunk_ranges(0, 12, 3, 2)
        [(0, 4), (2, 8), (6, 12)]
    """
    total = stop - start
    bounds = [start + round(c * total / chunks) for c in range(chunks + 1)]
    return [(max(start, bounds[c] - overlap) if c else start, bounds[c + 1]) for c in range(chunks)]


def clip_jobs(vjob: VideoJob) -> list[ClipJob]:
    """The :class:`ClipJob` of each chunk of ``vjob`` (:func:`chunk_ranges`), writing into
    ``<work>/.chunks/<start>-<stop>/``."""
    base = {f.name: getattr(vjob.job, f.name) for f in dataclasses.fields(Job)}
    jobs = []
    for a, b in chunk_ranges(vjob.start, vjob.stop, vjob.chunks, vjob.overlap):
        folder = vjob.work / CHUNKS_FOLDER / f"{a:06d}-{b:06d}"
        base.update(content=str(vjob.clip.path), outputs=[folder / frame_name(i) for i in range(b - a)],
                    name=f"{vjob.clip.path} [{a}:{b}] + {vjob.style}", key=None)
        jobs.append(ClipJob(**base, clip=vjob.clip, frames=(a, b), temporal=vjob.temporal, blend=vjob.blend))
    return jobs


def video_output_name(clip: str | os.PathLike, style: str | os.PathLike, method: str, seed: int, temporal: str,
                      suffix: str, frames: tuple[int, int] | None = None) -> str:
    """The automatic output name: ``<clip>_<style>_video_<method>[_<mode>]_s<seed>[_f<start>-<stop>]<suffix>``
    (the range when ``frames`` is given: a part of the clip)."""
    mode = "" if temporal == "consistent" else f"_{temporal}"
    part = "" if frames is None else f"_f{frames[0]}-{frames[1]}"
    return f"{Path(clip).stem}_{Path(style).stem}_video_{method}{mode}_s{seed}{part}{suffix}"


def _parse_range(frames: str | tuple[int, int | None] | None, count: int) -> tuple[int, int]:
    """``"START:STOP"`` (either may be left out) or a tuple -> ``(start, stop)`` within the clip."""
    if frames is None:
        return 0, count
    if isinstance(frames, str):
        a, sep, b = frames.partition(":")
        try:
            start, stop = int(a) if a.strip() else 0, int(b) if b.strip() else count
        except ValueError:
            raise InputError(f"frames takes START:STOP (frame numbers), got '{frames}'", option="frames") from None
        if not sep:
            raise InputError(f"frames takes START:STOP (frame numbers), got '{frames}'", option="frames")
    else:
        start, stop = frames[0], count if frames[1] is None else frames[1]
    if not 0 <= start < min(stop, count):
        raise InputError(f"frames {start}:{stop} select no frame of a {count}-frame clip", option="frames")
    return start, min(stop, count)


def make_video_job(
    clip: str | os.PathLike,
    style: str | os.PathLike,
    method: str = "ot",
    *,
    size: Any = None,
    options: Any = None,
    seed: int | str = 0,
    preserve_color: bool | str | None = None,
    output: str | os.PathLike | None = None,
    outdir: str | os.PathLike | None = None,
    overwrite: bool = False,
    temporal: str = "consistent",
    blend: float | str | None = None,
    fps: float | str | None = None,
    frames: str | tuple[int, int | None] | None = None,
    keep_frames: bool = False,
    chunks: int | str = 1,
    overlap: int | str | None = None,
    sequence: bool = False,
) -> VideoJob:
    """The checked request of a clip's style transfer (see the module).

    Args:
        clip: a video file or a folder of frames.
        style: the style image.
        method: a method that transfers (``"ot"`` for the ``"consistent"`` mode).
        size, options, seed, preserve_color: as for :func:`~ottex.methods.request.make_job` (checked there).
        output: a container file (.mp4, .mov, .mkv, .webm) or a folder of frames (no suffix) [named by
            :func:`video_output_name` in ``outdir``: the clip's container, .mp4 for an image sequence, a folder
            with ``sequence``].
        overwrite: replace an existing output, and frames of other settings.
        temporal, blend: the temporal mode and the blend weight (see the module).
        fps: frame rate of a folder of frames [25].
        frames: ``"START:STOP"`` or ``(start, stop)``: only these frames.
        keep_frames: keep the PNG frames beside a container output.
        chunks: cut the frames into this many ranges run as separate jobs (:func:`run_video` with an executor).
        overlap: frames each range after the first starts early and cross-fades, at most the shortest range's
            length [4, at most half the shortest range's].
        sequence: an unnamed output is a folder of frames rather than a container.

    Returns:
        The :class:`VideoJob`, for :func:`run_video`.

    Raises:
        InputError: naming the parameter at fault, before any work.

    Example:
        >>> vjob = make_video_job("walk.mp4", "strokes.jpg", size=512, output="walk_strokes.mp4",
        ...                       chunks=4, overlap=4)  # doctest: +SKIP
        >>> run_video(vjob, device="cpu")  # doctest: +SKIP
        PosixPath('walk_strokes.mp4')
    """
    if temporal not in TEMPORAL_MODES:
        raise InputError(f"unknown temporal mode '{temporal}' (choose from {', '.join(TEMPORAL_MODES)})",
                         option="temporal")
    try:
        blend = float(blend) if blend is not None else DEFAULT_BLEND if temporal != "consistent" else None
    except (TypeError, ValueError):
        raise InputError(f"blend takes a number between 0 and 1, got '{blend}'", option="blend") from None
    if blend is not None and not 0 <= blend <= 1:
        raise InputError(f"blend takes a number between 0 and 1, got {blend:g}", option="blend")
    try:
        rate = None if fps is None else float(fps)
    except (TypeError, ValueError):
        raise InputError(f"fps takes a number, got '{fps}'", option="fps") from None
    c = open_clip(clip, rate)
    first = next(c.frames(0, 1))
    job = make_job(TRANSFER, method, style=style, content=first, size=size, options=options, seed=seed,
                   preserve_color=preserve_color, overwrite=overwrite, name=f"{clip} + {style}")
    if job.inputs:
        raise InputError("label maps (masks) do not apply to a clip", option="content_mask")
    if blend is None:  # consistent: no blend after a warm start, else the blend mode's
        blend = WARM_BLEND if job.method in WARM_STARTS else DEFAULT_BLEND
    start, stop = _parse_range(frames, c.count)
    chunks = check_int(chunks, "chunks", low=1, high=stop - start)
    shortest = (stop - start) // chunks
    if overlap is None:
        overlap = min(DEFAULT_OVERLAP, shortest // 2) if chunks > 1 else 0
    overlap = check_int(overlap, "overlap", low=0)
    if chunks == 1 and overlap:
        raise InputError(f"overlap {overlap} applies only to a run in several chunks", option="overlap")
    if overlap > shortest:
        raise InputError(f"overlap {overlap} is longer than the shortest of {chunks} ranges of {stop - start} frames "
                         f"({shortest})", option="overlap")
    if output is None:
        suffix = "" if sequence else Path(clip).suffix.lower() if is_video_name(clip) else ".mp4"
        part = None if (start, stop) == (0, c.count) else (start, stop)
        output = Path(outdir or ".") / video_output_name(clip, style, job.method, job.seed, temporal, suffix, part)
    out = Path(output)
    _check_output(out, [Path(clip), Path(style)], overwrite)
    return VideoJob(job, c, out, style, temporal, blend, start, stop, keep_frames, chunks=chunks,
                    overlap=overlap if chunks > 1 else 0)


def make_clip_job(clip: str | os.PathLike, style: str | os.PathLike, method: str = "ot", *,
                  output: str | os.PathLike | None = None, outdir: str | os.PathLike | None = None,
                  **settings: Any) -> ClipJob:
    """A range of a clip as one job of :func:`~ottex.exec.batch.run_batch` (``ottex batch manifest``: a row
    with a ``clip``): checked by :func:`make_video_job` (the same arguments), written as a folder of frames.

    Args:
        clip, style, method: as for :func:`make_video_job`.
        output: the folder of frames [named by :func:`video_output_name` in ``outdir``, with the range].
        outdir: where an unnamed output goes.
        **settings: the other arguments of :func:`make_video_job` (``frames``, ``temporal``, ``size`` ...).

    Returns:
        The :class:`ClipJob` (its folder made).

    Raises:
        InputError: as :func:`make_video_job`; an output with a suffix (a container: ``ottex video`` writes
            those).

    Example:
        >>> job = make_clip_job("walk.mp4", "strokes.jpg", frames="0:48", outdir="out")  # doctest: +SKIP
        >>> len(job.outputs), job.folder.name  # doctest: +SKIP
        (48, 'walk_strokes_video_ot_s0_f0-48')
    """
    if output is not None and Path(output).suffix:
        raise InputError(f"a clip job writes a folder of frames; got {output} (ottex video writes a container)",
                         option="outputs")
    vjob = make_video_job(clip, style, method, output=output, outdir=outdir, sequence=True, **settings)
    (job,) = clip_jobs(dataclasses.replace(vjob, chunks=1, overlap=0))
    folder = vjob.output
    job.outputs = [folder / frame_name(i) for i in range(vjob.stop - vjob.start)]
    job.name = f"{clip} [{vjob.start}:{vjob.stop}] + {style}"
    folder.mkdir(exist_ok=True)
    return job


def _check_output(out: Path, inputs: list[Path], overwrite: bool) -> None:
    """A video file: the executors' checks (:func:`~ottex.exec.local.check_outputs_free`); a frame folder: not an
    input or inside an input folder, not a file, its folder writable."""
    check_video_output(out)
    if is_video_name(out):
        check_outputs_free([out], inputs, overwrite, images=False)
        return
    resolved = out.resolve()
    if any(resolved == p.resolve() or (p.is_dir() and resolved.is_relative_to(p.resolve())) for p in inputs):
        raise InputError(f"output {out} is one of the inputs; choose another output name", option="outputs")
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} is a file; give a folder for an image sequence", option="outputs")
    check_writable(out if out.is_dir() else out.parent)


def _prepare_work(vjob: VideoJob, record: dict[str, Any]) -> int:
    """Create the frame folder, or take up the frames of an interrupted run with the same settings; returns how
    many frames are done."""
    work = vjob.work
    path = work / SETTINGS_FILE
    text = json.dumps(record, sort_keys=True, indent=1)
    if work.is_dir() and path.is_file():
        if path.read_text() == text:
            return written_frames(work)
        if not vjob.job.overwrite:
            raise InputError(f"{work} holds frames made with other settings", option="overwrite")
    if work.is_dir() and written_frames(work) and not vjob.job.overwrite:
        raise InputError(f"{work} holds frames already", option="overwrite")
    work.mkdir(exist_ok=True)
    for i in range(written_frames(work)):  # overwrite: start again
        (work / frame_name(i)).unlink()
    with atomic_output(path) as fh:
        fh.write(text.encode())
    return 0


def run_video(
    vjob: VideoJob,
    *,
    device: str | torch.device | None = "auto",
    weights_dir: str | os.PathLike | None = None,
    callback_factory: Callable[[int], Callback | None] | None = None,
    on_frame: Callable[[int, int], None] | None = None,
    executor: Any = None,
    retries: int = 2,
    progress: BatchProgress | None = None,
) -> Path:
    """Style the clip's frames (see the module), write them, encode the output; returns its path.

    Args:
        vjob: from :func:`make_video_job`.
        device, weights_dir: as for the executors.
        callback_factory: ``factory(frame index) -> callback``: the progress subscriber of one frame's run (not
            with chunks: the executor's own).
        on_frame: ``on_frame(frames done, frames in all)`` after every frame (also for frames found done; with
            chunks, as the ranges are joined).
        executor: with chunks: the batch executor that runs the ranges (:class:`~ottex.exec.batch.BatchLocal`,
            :class:`~ottex.exec.ray_executor.RayExecutor`) [a ``BatchLocal`` on ``device``].
        retries: with chunks: further tries of a range that failed.
        progress: with chunks: the bar over the ranges.

    Returns:
        The output's path.

    Raises:
        OttexError: a frame (or a range) failed; the frames written stay, and the same call continues.
    """
    if vjob.chunks > 1:
        return _run_chunks(vjob, device, weights_dir, on_frame, executor, retries, progress)
    job = vjob.job
    dev = resolve_device(device)
    method = get_method(job.method, TRANSFER)
    options = method.make_options(job.options, TRANSFER)
    wdir = None if weights_dir is None else str(weights_dir)
    style = load_image(vjob.style, device=dev)
    warm = WARM_STARTS.get(method.name) if vjob.temporal == "consistent" else None
    total = vjob.stop - vjob.start
    prev_out: torch.Tensor | None = None
    prev_in: torch.Tensor | None = None
    prepared: dict = {}  # the style's statistics, made by the first warm start and reused by the next frames
    done = -1
    for i, frame in enumerate(vjob.clip.frames(vjob.start, vjob.stop, dev)):
        if done < 0:  # the first frame fixes the output size: check the frame folder
            hw = content_output_size(frame.shape[-2:], job.size)
            done = _prepare_work(vjob, vjob.settings(hw, dev))
        name = vjob.work / frame_name(i)
        if i < done:
            if i == done - 1:
                prev_out, prev_in = load_image(name, device=dev), frame
            if on_frame is not None:
                on_frame(i + 1, total)
            continue
        cb = callback_factory(i) if callback_factory is not None else None
        try:
            out = _frame(method, warm, frame, style, job, options, dev, wdir, cb, vjob, prev_in, prev_out, prepared)
        finally:
            close = getattr(cb, "close", None)
            if close is not None:
                close()
        out = (out * 255).round_().div_(255)  # what the file holds: a resumed run continues from the same values
        record = vjob.settings(tuple(out.shape[-2:]), dev) | {"frame": i}
        if job.key is not None:  # a ClipJob of ottex batch: each frame is an output carrying the job's key
            record[KEY_FIELD] = output_key(job.key, i, total)
        save_image(out, name, overwrite=True, settings=record)
        prev_out, prev_in = out, frame
        if on_frame is not None:
            on_frame(i + 1, total)
    return _finish(vjob, total)


def _finish(vjob: VideoJob, total: int) -> Path:
    """Encode a container output from the frame folder (with the clip's audio when it is the whole clip)."""
    if vjob.is_sequence:
        if not vjob.keep_frames:
            shutil.rmtree(vjob.work / CHUNKS_FOLDER, ignore_errors=True)
        return vjob.output
    whole = vjob.start == 0 and vjob.stop == vjob.clip.count
    write_clip(vjob.work, total, vjob.output, vjob.clip.fps,
               audio_from=vjob.clip.path if whole and vjob.clip.files is None else None)
    if not vjob.keep_frames:
        shutil.rmtree(vjob.work, ignore_errors=True)
    return vjob.output


def _run_chunks(vjob: VideoJob, device: Any, weights_dir: Any, on_frame: Callable[[int, int], None] | None,
                executor: Any, retries: int, progress: BatchProgress | None) -> Path:
    """The chunked run: the ranges as :class:`ClipJob` s through :func:`run_batch`, then :func:`join_frames`."""
    total = vjob.stop - vjob.start
    hw = content_output_size(vjob.clip.size, vjob.job.size)
    dev = resolve_device(device) if executor is None else getattr(executor, "device", None)
    done = _prepare_work(vjob, vjob.settings(hw, None))
    if done < total:
        jobs = clip_jobs(vjob)
        for j in jobs:
            j.folder.mkdir(parents=True, exist_ok=True)
        runner = executor if executor is not None else BatchLocal(dev, weights_dir)
        summary = run_batch(jobs, runner, retries=retries, force=vjob.job.overwrite, progress=progress)
        if summary.failed:
            failure = summary.failed[0].failure
            raise failure.as_error() if failure is not None else OttexError("a range of the clip failed")
        join_frames(vjob, jobs, done, on_frame)
    elif on_frame is not None:
        on_frame(total, total)
    return _finish(vjob, total)


def join_pass(vjob: VideoJob, device: Any = "auto", weights_dir: Any = None
              ) -> Callable[[int, torch.Tensor, float, torch.Tensor], torch.Tensor] | None:
    """Another join for :func:`join_frames` (``refine=``), measured but not the default (docs/video.md): over the
    shared frames, the consistent mode's warm start (one pass over relu3_1 ... relu1_1 at the finest scale, the
    same rotations, the style prepared once) from ``(1 - w)`` the previous output moved along the flow plus ``w``
    the later range's frame. The shared frames keep the style's statistics (a cross-fade averages two textures:
    softer), but the join is less steady than the cross-fade's. None when the mode or the method has no warm start.

    Returns:
        ``refine(clip frame index, the later range's frame, w, the previous output frame) -> frame``, or None.

    Example:
        >>> join_frames(vjob, clip_jobs(vjob), refine=join_pass(vjob, "cpu"))  # doctest: +SKIP
    """
    job = vjob.job
    method = get_method(job.method, TRANSFER)
    warm = WARM_STARTS.get(method.name) if vjob.temporal == "consistent" else None
    if warm is None:
        return None
    dev = resolve_device(device)
    options = _warm_options(method.make_options(job.options, TRANSFER))
    wdir = None if weights_dir is None else str(weights_dir)
    style = load_image(vjob.style, device=dev)
    prepared: dict = {}

    def refine(index: int, later: torch.Tensor, weight: float, previous: torch.Tensor) -> torch.Tensor:
        before, frame = vjob.clip.frames(index - 1, index + 1, dev)
        hw = tuple(previous.shape[-2:])
        cur_s, prev_s = resize(frame, hw), resize(before, hw)
        back = optical_flow(cur_s, prev_s)
        mask = reliable_mask(back, optical_flow(prev_s, cur_s))
        carried = cur_s + mask * (_carry(previous.to(dev), back) - cur_s)
        out = warm((1 - weight) * carried + weight * later.to(dev), frame, style, job.size, options, seed=job.seed,
                   device=dev, weights_dir=wdir, prepared=prepared)
        if job.preserve_color:
            out = keep_colours(out, frame, seed=job.seed, mode="full" if job.preserve_color is True
                               else job.preserve_color)
        return (resize(out, hw) if out.shape[-2:] != hw else out).cpu()

    return refine


def join_frames(vjob: VideoJob, jobs: list[ClipJob], done: int = 0,
                on_frame: Callable[[int, int], None] | None = None,
                refine: Callable[[int, torch.Tensor, float, torch.Tensor], torch.Tensor] | None = None) -> None:
    """Write the frames of ``vjob`` from those of its ranges (``jobs``, in order): a frame of one range as it is;
    over the first ``F = max(overlap, JOIN_FADE)`` frames of a range after the first, the later range's frame plus
    ``1 - w`` times the difference ``d`` of the earlier range's texture from it, ``w = (j + 1) / (F + 1)`` at its
    ``j``-th frame: a cross-fade. Over the ``overlap`` frames the two ranges share, ``d`` is the difference of their
    frames; after them, ``d`` is carried along the input's flow (:data:`CARRY_MODE`; 0 where the flow is not
    reliable), so the fade is as long as :data:`JOIN_FADE` without computing more frames, and where the two ranges
    agree the later range's frames are kept as they are. With ``refine``
    (:func:`join_pass`), over the shared frames only: ``refine(clip frame index, the later range's frame,
    j / (overlap + 1)..., the previous output frame)``. Frames before ``done`` are kept.

    Example:
        >>> # two ranges of a 24-frame clip with overlap 4: (0, 12) and (8, 24); frame 9 is 11/13 of the
        >>> # first range's frame 9 and 2/13 of the second's frame 1; frame 13 is the second's frame 5 plus 7/13
        >>> # of the two ranges' difference at frame 11 carried along the flow over frames 12 and 13
        >>> chunk_ranges(0, 24, 2, 4)
        [(0, 12), (8, 24)]
    """
    total = vjob.stop - vjob.start
    fade = vjob.overlap if refine is not None else max(vjob.overlap, JOIN_FADE)
    previous = load_image(vjob.work / frame_name(done - 1)) if done > 0 else None
    carried: tuple[ClipJob, int, torch.Tensor] | None = None  # the later range, a frame, the ranges' difference there
    for t in range(done, total):
        index = vjob.start + t
        k = max(i for i, job in enumerate(jobs) if job.frames[0] <= index < job.frames[1])
        later = jobs[k]
        out = load_image(later.folder / frame_name(index - later.frames[0]))
        j = index - later.frames[0]
        if k > 0 and j < fade:
            earlier = jobs[k - 1]
            w = (j + 1) / (fade + 1)
            if refine is not None and previous is not None:
                out = refine(index, out, w, previous)
            else:
                carried = (later, index, _join_residual(vjob, earlier, later, index, out, carried))
                out = out + (1 - w) * carried[2]
            out = out.mul(255).round_().div_(255)
        record = vjob.settings(tuple(out.shape[-2:]), None) | {"frame": t}
        save_image(out, vjob.work / frame_name(t), overwrite=True, settings=record)
        previous = out
        if on_frame is not None:
            on_frame(t + 1, total)


def _join_residual(vjob: VideoJob, earlier: ClipJob, later: ClipJob, index: int, later_frame: torch.Tensor,
                   carried: tuple[ClipJob, int, torch.Tensor] | None) -> torch.Tensor:
    """The earlier range's texture minus the later range's (``later_frame``) at clip frame ``index`` (see
    :func:`join_frames`): the difference of their frames over the frames they share; after them, the difference
    carried along the input's flow frame by frame (from ``carried``, the same ranges' difference at ``index - 1``,
    when it is that); without shared frames, first the earlier range's last frame carried one frame on, less the
    later range's first frame. 0 where the flow is not reliable."""
    def frame_of(job: ClipJob, k: int) -> torch.Tensor:
        return later_frame if job is later and k == index else load_image(job.folder / frame_name(k - job.frames[0]))

    stop = earlier.frames[1]
    if index < stop:
        return frame_of(earlier, index) - later_frame
    if carried is not None and carried[0] is later and carried[1] == index - 1:
        first, residual, texture = index, carried[2], False
    elif later.frames[0] < stop:  # from the last shared frame
        first, residual, texture = stop, frame_of(earlier, stop - 1) - frame_of(later, stop - 1), False
    else:  # no shared frame: the earlier range's last frame
        first, residual, texture = stop, frame_of(earlier, stop - 1), True
    hw = tuple(residual.shape[-2:])
    inputs = [resize(f.cpu(), hw) for f in vjob.clip.frames(first - 1, index + 1)]
    for i in range(1, len(inputs)):
        back = optical_flow(inputs[i], inputs[i - 1])
        mask = reliable_mask(back, optical_flow(inputs[i - 1], inputs[i]))
        if texture:
            residual, texture = mask * (_carry(residual, back) - frame_of(later, first - 1 + i)), False
        else:
            residual = mask * warp(residual, back, CARRY_MODE)
    return residual


def _frame(method: Any, warm: Callable[..., torch.Tensor] | None, frame: torch.Tensor, style: torch.Tensor,
           job: Job, options: Any, dev: torch.device, wdir: str | None, cb: Callback | None, vjob: VideoJob,
           prev_in: torch.Tensor | None, prev_out: torch.Tensor | None, prepared: dict) -> torch.Tensor:
    """One frame's result: a transfer on its own, or warm-started (with the style prepared once for the clip:
    ``prepared``) and blended with the previous result."""
    def warm_start(start: torch.Tensor) -> torch.Tensor:
        assert warm is not None
        return warm(start, frame, style, job.size, _warm_options(options), seed=job.seed, device=dev,
                    weights_dir=wdir, callback=cb, prepared=prepared)

    def colours(out: torch.Tensor) -> torch.Tensor:
        return keep_colours(out, frame, seed=job.seed, mode="full" if job.preserve_color is True
                            else job.preserve_color) if job.preserve_color else out

    if prev_out is None or prev_in is None or vjob.temporal == "per-frame":
        out = method.transfer(frame, style, job.size, options, preserve_color=job.preserve_color, seed=job.seed,
                              device=dev, weights_dir=wdir, callback=cb)
        if warm is None or vjob.temporal == "per-frame":
            return out
        for _ in range(WARM_SETTLE):  # the first frame of a consistent run: settled
            out = warm_start(out)
        return colours(out)
    hw = tuple(prev_out.shape[-2:])
    cur_s, prev_s = resize(frame, hw), resize(prev_in, hw)
    back = optical_flow(cur_s, prev_s)
    mask = reliable_mask(back, optical_flow(prev_s, cur_s))
    warped = _carry(prev_out, back)
    if warm is not None:
        out = colours(warm_start(cur_s + mask * (warped - cur_s)))
    else:
        out = method.transfer(frame, style, job.size, options, preserve_color=job.preserve_color, seed=job.seed,
                              device=dev, weights_dir=wdir, callback=cb)
    out = resize(out, hw) if out.shape[-2:] != hw else out
    return out + (vjob.blend * mask) * (warped - out)


def _carry(image: torch.Tensor, back: torch.Tensor) -> torch.Tensor:
    """A result moved along the backward flow ``back`` onto the next frame (:data:`CARRY_MODE`, in ``[0, 1]``)."""
    return warp(image, back, CARRY_MODE).clamp_(0, 1)


def _warm_options(options: Any) -> Any:
    """The options of a warm start (``ot``): the levels given (default all) from relu3_1 down, one pass."""
    levels = tuple(lvl for lvl in (options.levels or (5, 4, 3, 2, 1)) if lvl <= WARM_LEVELS) or options.levels
    return options.replace(levels=levels, passes=WARM_PASSES)
