"""ottex: texture synthesis and style transfer through optimal transport.

The layers, each importing only those before it: :mod:`ottex.core` (errors,
devices, checks, the scale pyramid, progress events) <- :mod:`ottex.ot` (OT
primitives) <- :mod:`ottex.image` (files, colour, label maps) <- :mod:`ottex.nn`
(weight sets, networks, losses) <- :mod:`ottex.methods` (the :class:`Method`
contract, its registry, one module per method) <- :mod:`ottex.eval` (metrics,
reports, benchmark) and :mod:`ottex.exec` (executors) <- :mod:`ottex.video` (clips,
optical flow, the style transfer of a clip: :func:`make_video_job`, :func:`run_video`) <- :mod:`ottex.app` (the
command line and the web app). A run is one :class:`Job`, built and checked by :func:`make_job` from text or Python
values; every front end makes one and hands it to an executor.

The public names below are imported on first use (PEP 562), so ``import ottex``
is quick and the ``ottex`` command can handle a Ctrl-C while torch loads.

Example:
    >>> import ottex
    >>> texture = ottex.synthesize("graffiti.jpg", size=(512, 512), seed=0)  # doctest: +SKIP
    >>> ottex.save_image(texture, "out.png")  # doctest: +SKIP
    >>> ottex.run_video(ottex.make_video_job("walk.mp4", "graffiti.jpg", output="walk.webm"))  # doctest: +SKIP
    PosixPath('walk.webm')
    >>> [m.name for m in ottex.list_methods("synthesis")]
    ['ot', 'w2', 'gatys', 'swd', 'po']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from .core.errors import Cancelled, ImageError, InputError, OttexError, WeightsError
    from .core.progress import LossHistory, ProgressEvent, TqdmProgress
    from .eval.metrics import style_distance
    from .exec.local import LocalExecutor
    from .image.color import color_transfer
    from .image.io import load_image, save_image
    from .methods import pseudo_optimizer as po
    from .methods.base import Method, get_method, list_methods, register_method
    from .methods.optimal_textures import OTOptions, OTSchedule, synthesize, transfer
    from .methods.optimization import OptOptions, OptSettings, stylize, synthesize_opt
    from .methods.pseudo_optimizer import POOptions
    from .methods.request import Job, make_job
    from .methods.strotss import StrotssOptions, strotss
    from .video.flow import warping_error
    from .video.io import open_clip
    from .video.run import make_video_job, run_video

#: Public name -> the module that defines it (imported when the name is first used).
_EXPORTS = {
    "Cancelled": ".core.errors",
    "ImageError": ".core.errors",
    "InputError": ".core.errors",
    "OttexError": ".core.errors",
    "WeightsError": ".core.errors",
    "LossHistory": ".core.progress",
    "ProgressEvent": ".core.progress",
    "TqdmProgress": ".core.progress",
    "style_distance": ".eval.metrics",
    "Job": ".methods.request",
    "make_job": ".methods.request",
    "LocalExecutor": ".exec.local",
    "color_transfer": ".image.color",
    "load_image": ".image.io",
    "save_image": ".image.io",
    "Method": ".methods.base",
    "get_method": ".methods.base",
    "list_methods": ".methods.base",
    "register_method": ".methods.base",
    "OTOptions": ".methods.optimal_textures",
    "OTSchedule": ".methods.optimal_textures",
    "synthesize": ".methods.optimal_textures",
    "transfer": ".methods.optimal_textures",
    "OptOptions": ".methods.optimization",
    "OptSettings": ".methods.optimization",
    "stylize": ".methods.optimization",
    "synthesize_opt": ".methods.optimization",
    "POOptions": ".methods.pseudo_optimizer",
    "StrotssOptions": ".methods.strotss",
    "strotss": ".methods.strotss",
    "make_video_job": ".video.run",
    "run_video": ".video.run",
    "open_clip": ".video.io",
    "warping_error": ".video.flow",
}
#: The layer packages, also reachable as attributes (``ottex.methods`` ...) without an explicit import.
_SUBPACKAGES = ("core", "ot", "image", "nn", "methods", "eval", "exec", "video", "app")

__all__ = [
    "__version__",
    "synthesize",
    "transfer",
    "stylize",
    "synthesize_opt",
    "strotss",
    "color_transfer",
    "OptSettings",
    "OTSchedule",
    "OTOptions",
    "OptOptions",
    "StrotssOptions",
    "POOptions",
    "po",
    "Method",
    "get_method",
    "list_methods",
    "register_method",
    "ProgressEvent",
    "TqdmProgress",
    "LossHistory",
    "Job",
    "make_job",
    "LocalExecutor",
    "make_video_job",
    "run_video",
    "open_clip",
    "warping_error",
    "load_image",
    "save_image",
    "style_distance",
    "OttexError",
    "ImageError",
    "InputError",
    "WeightsError",
    "Cancelled",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    if name == "po":  # the Pseudo Optimizer API (train, synthesize, TrainOptions ...)
        return importlib.import_module(".methods.pseudo_optimizer", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*(n for n in globals() if n.startswith("__")), *__all__, *_SUBPACKAGES})
