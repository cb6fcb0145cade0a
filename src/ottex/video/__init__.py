"""Video: clips in and out (:mod:`~ottex.video.io`, PyAV), optical flow, warping and the warping error
(:mod:`~ottex.video.flow`, OpenCV), synthetic clips with known motion (:mod:`~ottex.video.clips`), and the
style transfer of a clip made steady over time (:mod:`~ottex.video.run`; ``ottex video``). PyAV and OpenCV are
the ``video`` extra, imported only when a container is read or written or a flow computed."""

from .clips import CLIPS, make_clip, moving_object, pan, zoom
from .flow import backward_flow, optical_flow, reliable_mask, warp, warping_error, warping_errors
from .io import VIDEO_SUFFIXES, Clip, open_clip, write_clip
from .run import TEMPORAL_MODES, ClipJob, VideoJob, make_clip_job, make_video_job, run_video

__all__ = ["CLIPS", "make_clip", "moving_object", "pan", "zoom", "backward_flow", "optical_flow", "reliable_mask",
           "warp", "warping_error", "warping_errors", "VIDEO_SUFFIXES", "Clip", "open_clip", "write_clip",
           "TEMPORAL_MODES", "VideoJob", "ClipJob", "make_video_job", "make_clip_job", "run_video"]
