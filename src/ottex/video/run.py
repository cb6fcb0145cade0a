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
  schedule runs (one pass over relu3_1 ... relu1_1), with the same rotations; then the blend, when ``blend`` is
  given (none by default here). Other methods fall back to ``"blend"``.

Frames are written one by one, atomically, as PNGs into a work folder (the output folder itself for an image
sequence); a run that stops is continued by the same call from the last written frame (the settings of the run
are kept beside the frames, and frames made with other settings are never mixed in). A container is encoded
at the end, with the clip's frame rate and its audio copied as it is.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.device import resolve_device
from ..core.errors import InputError
from ..core.files import atomic_output, check_writable
from ..core.progress import Callback
from ..core.pyramid import content_output_size
from ..core.resample import resize
from ..exec.local import check_outputs_free, job_settings
from ..image.color import preserve_color as keep_colours
from ..image.io import load_image, save_image
from ..methods.base import get_method
from ..methods.optimal_textures import transfer_from
from ..methods.options import TRANSFER
from ..methods.request import Job, make_job
from .flow import optical_flow, reliable_mask, warp
from .io import Clip, check_video_output, frame_name, is_video_name, open_clip, write_clip, written_frames

__all__ = ["TEMPORAL_MODES", "DEFAULT_BLEND", "VideoJob", "make_video_job", "run_video", "video_output_name"]

TEMPORAL_MODES = ("consistent", "blend", "per-frame")
#: Weight of the previous result (warped) where the flow is reliable in ``"blend"`` (``"consistent"`` with a warm
#: start: :data:`WARM_BLEND`; benchmarks/video.py: 0.5 cut the warping error of per-frame results 4x but blurred
#: the textures, the per-layer style distance 1.5-2x worse).
DEFAULT_BLEND = 0.5
#: Methods that can continue a transfer from a given image (the ``"consistent"`` mode's warm start).
WARM_STARTS: dict[str, Callable[..., torch.Tensor]] = {"ot": transfer_from}
#: The warm start's schedule: one pass over the levels from relu3_1 down, at the finest scale (benchmarks/video.py:
#: relu5_1/relu4_1 and more passes moved the textures of a pan 2-3x more from frame to frame, and were slower).
WARM_LEVELS, WARM_PASSES = 3, (1,)
#: The blend after a warm start: none (docs/video.md: 0.3 halved the warping error of a pan again but made relu1_1's
#: style distance 22 % worse than the per-frame results', a blur; without it every layer is closer to the style).
WARM_BLEND = 0.0
SETTINGS_FILE = "ottex-video.json"


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
        return record


def video_output_name(clip: str | os.PathLike, style: str | os.PathLike, method: str, seed: int, temporal: str,
                      suffix: str) -> str:
    """The automatic output name: ``<clip>_<style>_video_<method>[_<mode>]_s<seed><suffix>``."""
    mode = "" if temporal == "consistent" else f"_{temporal}"
    return f"{Path(clip).stem}_{Path(style).stem}_video_{method}{mode}_s{seed}{suffix}"


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
) -> VideoJob:
    """The checked request of a clip's style transfer (see the module). Output: ``output``, or named by
    :func:`video_output_name` in ``outdir`` (the clip's container, .mp4 for an image sequence).

    Raises:
        InputError: naming the parameter at fault, before any work.
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
    if output is None:
        suffix = Path(clip).suffix.lower() if is_video_name(clip) else ".mp4"
        output = Path(outdir or ".") / video_output_name(clip, style, job.method, job.seed, temporal, suffix)
    out = Path(output)
    _check_output(out, [Path(clip), Path(style)], overwrite)
    return VideoJob(job, c, out, style, temporal, blend, start, stop, keep_frames)


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
) -> Path:
    """Style the clip's frames (see the module), write them, encode the output; returns its path.

    Args:
        vjob: from :func:`make_video_job`.
        device, weights_dir: as for the executors.
        callback_factory: ``factory(frame index) -> callback``: the progress subscriber of one frame's run.
        on_frame: ``on_frame(frames done, frames in all)`` after every frame (also for frames found done).
    """
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
            out = _frame(method, warm, frame, style, job, options, dev, wdir, cb, vjob, prev_in, prev_out)
        finally:
            close = getattr(cb, "close", None)
            if close is not None:
                close()
        out = (out * 255).round_().div_(255)  # what the file holds: a resumed run continues from the same values
        save_image(out, name, overwrite=True, settings=vjob.settings(tuple(out.shape[-2:]), dev) | {"frame": i})
        prev_out, prev_in = out, frame
        if on_frame is not None:
            on_frame(i + 1, total)
    if vjob.is_sequence:
        return vjob.output
    whole = vjob.start == 0 and vjob.stop == vjob.clip.count
    write_clip(vjob.work, total, vjob.output, vjob.clip.fps,
               audio_from=vjob.clip.path if whole and vjob.clip.files is None else None)
    if not vjob.keep_frames:
        shutil.rmtree(vjob.work, ignore_errors=True)
    return vjob.output


def _frame(method: Any, warm: Callable[..., torch.Tensor] | None, frame: torch.Tensor, style: torch.Tensor,
           job: Job, options: Any, dev: torch.device, wdir: str | None, cb: Callback | None, vjob: VideoJob,
           prev_in: torch.Tensor | None, prev_out: torch.Tensor | None) -> torch.Tensor:
    """One frame's result: a transfer on its own, or warm-started and blended with the previous result."""
    if prev_out is None or prev_in is None or vjob.temporal == "per-frame":
        return method.transfer(frame, style, job.size, options, preserve_color=job.preserve_color, seed=job.seed,
                               device=dev, weights_dir=wdir, callback=cb)
    hw = tuple(prev_out.shape[-2:])
    cur_s, prev_s = resize(frame, hw), resize(prev_in, hw)
    back = optical_flow(cur_s, prev_s)
    mask = reliable_mask(back, optical_flow(prev_s, cur_s))
    warped = warp(prev_out, back)
    if warm is not None:
        start = cur_s + mask * (warped - cur_s)
        out = warm(start, frame, style, job.size, _warm_options(options), seed=job.seed, device=dev,
                   weights_dir=wdir, callback=cb)
        if job.preserve_color:
            out = keep_colours(out, frame, seed=job.seed, mode="full" if job.preserve_color is True
                               else job.preserve_color)
    else:
        out = method.transfer(frame, style, job.size, options, preserve_color=job.preserve_color, seed=job.seed,
                              device=dev, weights_dir=wdir, callback=cb)
    out = resize(out, hw) if out.shape[-2:] != hw else out
    return out + (vjob.blend * mask) * (warped - out)


def _warm_options(options: Any) -> Any:
    """The options of a warm start (``ot``): the levels given (default all) from relu3_1 down, one pass."""
    levels = tuple(lvl for lvl in (options.levels or (5, 4, 3, 2, 1)) if lvl <= WARM_LEVELS) or options.levels
    return options.replace(levels=levels, passes=WARM_PASSES)
