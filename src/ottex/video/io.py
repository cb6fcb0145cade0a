"""Video clips in and out: containers and codecs through PyAV (the ``video`` extra, imported only here), or a
folder of images (an image sequence).

:func:`open_clip` checks a clip before any work (missing, corrupt, no video stream, no frames: one
:class:`~ottex.core.errors.InputError`) and gives a :class:`Clip`: its frame rate, frame count and size, and
:meth:`Clip.frames`, the frames as ``(1, 3, H, W)`` tensors in ``[0, 1]``. :func:`write_clip` encodes a folder of
frames (``frame_000000.png`` ...) into a container (H.264 in .mp4/.mov/.mkv, VP9 in .webm) at a given frame rate,
with the audio streams of a source clip copied packet for packet (not re-encoded), into a temporary file renamed
into place, so an interrupted write never leaves a partial video.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import InputError
from ..core.files import check_writable
from ..image.io import IMAGE_SUFFIXES, load_image

__all__ = ["VIDEO_SUFFIXES", "DEFAULT_FPS", "Clip", "open_clip", "write_clip", "frame_name", "is_video_name",
           "check_video_output", "written_frames", "listed_frames"]

#: Containers written and read by name: the video codec each is encoded with.
VIDEO_SUFFIXES = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}
#: Frame rate of an image sequence unless one is given.
DEFAULT_FPS = 25
#: Audio codecs a container takes as they are (others are left out, with a warning).
AUDIO_CODECS = {".webm": {"opus", "vorbis"}, ".mp4": {"aac", "mp3", "opus", "ac3", "alac", "flac"}}


def frame_name(index: int) -> str:
    """The file name of frame ``index`` in a frame folder (the image-sequence output and the work folder)."""
    return f"frame_{index:06d}.png"


def is_video_name(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a video container (by its suffix) rather than an image-sequence folder."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def check_video_output(path: str | os.PathLike) -> None:
    """Check that ``path`` names a video container (:data:`VIDEO_SUFFIXES`) or, without a suffix, a folder for
    an image sequence.

    Raises:
        InputError: another suffix (``option="outputs"``).
    """
    p = Path(path)
    if p.suffix and not is_video_name(p):
        raise InputError(f"unknown video container '{p.suffix}' (choose from {', '.join(VIDEO_SUFFIXES)}, or a "
                         "folder name without a suffix for an image sequence)", option="outputs")


def written_frames(folder: str | os.PathLike) -> int:
    """How many frames ``frame_000000.png``, ``frame_000001.png`` ... are in ``folder`` without a gap."""
    n = 0
    while (Path(folder) / frame_name(n)).is_file():
        n += 1
    return n


def _av() -> Any:
    try:
        import av  # noqa: PLC0415 - the optional video extra, only when a container is read or written
    except ImportError:
        raise InputError("video files need PyAV: pip install 'ottex[video]'", option="clip") from None
    return av


@dataclass
class Clip:
    """A checked clip: ``path`` (a container or a folder of images), ``fps``, ``count`` frames of ``(H, W)``
    ``size``; ``files`` for an image sequence; ``audio``: whether it has an audio stream."""

    path: Path
    fps: Fraction
    count: int
    size: tuple[int, int]
    files: list[Path] | None = None
    audio: bool = False

    def frames(self, start: int = 0, stop: int | None = None, device: str | torch.device = "cpu"
               ) -> Iterator[torch.Tensor]:
        """Frames ``start`` to ``stop`` (exclusive), decoded one at a time, as ``(1, 3, H, W)`` tensors.

        An image sequence reads only those files. A container seeks to the key frame at or before ``start``
        (:func:`_decode`) and decodes from there, so a range late in a long clip does not decode the clip's
        beginning; it stops decoding at ``stop``.

        Example:
            >>> clip = open_clip("walk.mp4")  # doctest: +SKIP
            >>> [tuple(f.shape) for f in clip.frames(100, 102)]  # doctest: +SKIP
            [(1, 3, 720, 1280), (1, 3, 720, 1280)]
        """
        stop = self.count if stop is None else min(stop, self.count)
        if self.files is not None:
            for f in self.files[start:stop]:
                yield load_image(f, device=device)
            return
        for i, frame in _decode(self.path, start):
            if i >= stop:
                break
            if i >= start:
                yield _tensor(frame.to_ndarray(format="rgb24"), device)


def _decode(path: Path, start: int) -> Iterator[tuple[int, Any]]:
    """``(index, frame)`` of a container's frames from one at or before ``start`` on. With ``start > 0``, a seek
    to the key frame at or before ``start``'s time stamp (a constant frame rate: ``index / (rate * time_base)``
    after the stream's start); the first frame decoded there is numbered from its time stamp and the next ones
    counted on. When the stream has no time stamps or rate, cannot seek, or the seek lands after ``start``, the
    clip is decoded from its beginning."""
    av = _av()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate, base = stream.average_rate or stream.guessed_rate, stream.time_base
        origin = stream.start_time or 0
        if start > 0 and rate and base:
            try:
                container.seek(origin + int(start / (rate * base)), stream=stream, backward=True, any_frame=False)
            except av.FFmpegError:  # pragma: no cover - a container that cannot seek
                pass
            else:
                frames = container.decode(stream)
                first = next(frames, None)
                if first is not None and first.pts is not None:
                    index = round((first.pts - origin) * base * rate)
                    if 0 <= index <= start:
                        yield index, first
                        yield from enumerate(frames, index + 1)
                        return
    with av.open(str(path)) as container:  # from the beginning
        yield from enumerate(container.decode(container.streams.video[0]))


def _tensor(array: np.ndarray, device: str | torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(device).permute(2, 0, 1)[None].float().div_(255)


def listed_frames(stream: Any) -> int | None:
    """The frame count a container lists for its video ``stream`` (PyAV's ``stream.frames``), when it can be
    trusted: positive, and within one frame of the stream's duration times its frame rate; else None (decode to
    count).

    MP4 and MOV list the count of their sample table, equal to the frames decoded (tests/test_video.py checks it
    on the clips :func:`write_clip` makes, and a pan with B-frames and audio); WebM and Matroska list none (0).
    The duration check drops a count that an edit list (frames listed but not shown) would make wrong.
    """
    listed = int(stream.frames or 0)
    rate = stream.average_rate or stream.guessed_rate
    if listed <= 0 or not rate or stream.duration is None or stream.time_base is None:
        return None
    shown = float(stream.duration * stream.time_base * rate)
    return listed if abs(listed - shown) <= 1 else None


def open_clip(path: str | os.PathLike, fps: float | None = None) -> Clip:
    """Check a clip and read its frame rate, frame count and size: the count the container lists when it can be
    trusted (:func:`listed_frames`: MP4, MOV), else the frames decoded once (WebM, Matroska ...).

    Args:
        path: a video file (any container FFmpeg reads) or a folder of images (sorted by name).
        fps: frame rate of an image sequence [25]; a video keeps its own.

    Raises:
        InputError: the clip is missing, unreadable or has no frames; ``fps`` given for a video file
            (``option="clip"`` / ``"fps"``).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"clip not found: {p}", option="clip")
    if fps is not None and not (float(fps) > 0 and np.isfinite(float(fps))):
        raise InputError(f"fps must be a positive number, got {fps}", option="fps")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"clip folder {p} holds no images ({', '.join(IMAGE_SUFFIXES)})", option="clip")
        first = load_image(files[0])
        rate = Fraction(fps if fps is not None else DEFAULT_FPS).limit_denominator(1001)
        return Clip(p, rate, len(files), tuple(first.shape[-2:]), files=files)
    if fps is not None:
        raise InputError("fps applies to an image-sequence folder; a video file keeps its frame rate", option="fps")
    av = _av()
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise InputError(f"{p} holds no video stream", option="clip")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(DEFAULT_FPS)
            decoded = container.decode(stream)
            first = next(decoded, None)
            size = (0, 0) if first is None else (first.height, first.width)
            count = 0 if first is None else listed_frames(stream)
            if count is None:  # no trustworthy count in the container: decode to count
                count = 1 + sum(1 for _ in decoded)
            audio = bool(container.streams.audio)
    except av.FFmpegError as exc:
        raise InputError(f"cannot read clip {p}: {_reason(exc)}", option="clip") from None
    if count == 0:
        raise InputError(f"clip {p} has no frames", option="clip")
    return Clip(p, Fraction(rate), count, size, audio=audio)


def _reason(exc: Exception) -> str:
    return (getattr(exc, "strerror", None) or str(exc)).strip().rstrip(".").lower() or type(exc).__name__


def write_clip(frames_dir: str | os.PathLike, count: int, path: str | os.PathLike, fps: Fraction,
               audio_from: str | os.PathLike | None = None, quality: int = 18) -> Path:
    """Encode frames ``0 .. count-1`` of ``frames_dir`` into the container ``path`` at ``fps``.

    H.264 (yuv420p, ``crf`` ``quality``) for .mp4/.mov/.mkv, VP9 for .webm; sides are cropped to even numbers
    (what yuv420p needs). The audio streams of ``audio_from`` (a video file) are copied as they are; a codec the
    container cannot hold is left out with a warning. Written to a temporary file in the same folder, renamed
    into place at the end.

    Raises:
        InputError: ``path`` does not name a known container, or its folder is not writable.
    """
    av = _av()
    out = Path(path)
    check_video_output(out)
    suffix = out.suffix.lower()
    check_writable(out.parent)
    tmp = out.with_name(f".{out.stem}.part{out.suffix}")
    try:
        with av.open(str(tmp), "w") as dst:
            first = load_image(Path(frames_dir) / frame_name(0))
            h, w = (first.shape[-2] // 2) * 2, (first.shape[-1] // 2) * 2
            stream = dst.add_stream(VIDEO_SUFFIXES[suffix], rate=fps)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"crf": str(quality)} if suffix != ".webm" else {"crf": str(quality + 12), "b": "0"}
            src, copies = _audio_source(av, audio_from, dst, suffix)
            for i in range(count):
                img = load_image(Path(frames_dir) / frame_name(i))[0, :, :h, :w]
                arr = (img.permute(1, 2, 0) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
                for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                    dst.mux(packet)
            for packet in stream.encode():
                dst.mux(packet)
            if src is not None:
                for packet in src.demux(*copies.keys()):
                    if packet.dts is None:
                        continue
                    packet.stream = copies[packet.stream]
                    dst.mux(packet)
                src.close()
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def _audio_source(av: Any, audio_from: str | os.PathLike | None, dst: Any, suffix: str) -> tuple[Any, dict]:
    """The opened source and ``{its audio stream: the copy in dst}`` (none: ``(None, {})``)."""
    if audio_from is None or Path(audio_from).is_dir():
        return None, {}
    src = av.open(str(audio_from))
    copies = {}
    for a in src.streams.audio:
        allowed = AUDIO_CODECS.get(suffix)
        if allowed is not None and a.codec_context.name not in allowed:
            warnings.warn(f"the clip's {a.codec_context.name} audio cannot go into a {suffix} file; written without "
                          "it (choose .mkv or .mov to keep it)", stacklevel=3)
            continue
        copies[a] = dst.add_stream_from_template(a)
    if not copies:
        src.close()
        return None, {}
    return src, copies
