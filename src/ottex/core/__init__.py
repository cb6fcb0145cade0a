"""Core layer: errors, devices, input checks, output files, resampling, the scale pyramid, progress events,
runtime settings.

Nothing here imports another ottex layer.
"""

from __future__ import annotations

from .checks import MIN_EXAMPLE_SIDE, MIN_SIDE, check_cloud, check_example, check_image, check_size
from .device import make_generator, resolve_device
from .errors import Cancelled, ImageError, InputError, MissingWeightsError, OttexError, WeightsError
from .files import atomic_output, check_writable, current_umask, new_file_mode
from .progress import Callback, LossHistory, ProgressEvent, Reporter, TqdmProgress, combine_callbacks, run_callbacks
from .pyramid import (
    MULTIPLE,
    content_output_size,
    crop_to,
    per_scale,
    pyramid_sizes,
    style_at,
    style_factor,
    working_size,
)
from .resample import resize, resize_long_side, wrap_resize
from .runtime import prepare_device, tune_cpu_allocator

__all__ = [
    "OttexError",
    "ImageError",
    "InputError",
    "WeightsError",
    "MissingWeightsError",
    "Cancelled",
    "resolve_device",
    "make_generator",
    "MIN_SIDE",
    "MIN_EXAMPLE_SIDE",
    "check_example",
    "check_size",
    "check_image",
    "check_cloud",
    "resize",
    "resize_long_side",
    "wrap_resize",
    "MULTIPLE",
    "working_size",
    "pyramid_sizes",
    "per_scale",
    "crop_to",
    "content_output_size",
    "style_factor",
    "style_at",
    "ProgressEvent",
    "Callback",
    "Reporter",
    "TqdmProgress",
    "LossHistory",
    "combine_callbacks",
    "run_callbacks",
    "tune_cpu_allocator",
    "prepare_device",
    "atomic_output",
    "check_writable",
    "current_umask",
    "new_file_mode",
]
