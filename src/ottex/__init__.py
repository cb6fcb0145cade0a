"""ottex: texture synthesis and style transfer through optimal transport.

The layers, each importing only those before it: :mod:`ottex.core` (errors,
devices, checks, the scale pyramid, progress events) <- :mod:`ottex.ot` (OT
primitives) <- :mod:`ottex.image` (files, colour, label maps) <- :mod:`ottex.nn`
(weight sets, networks, losses) <- :mod:`ottex.methods` (the :class:`Method`
contract, its registry, one module per method) <- :mod:`ottex.eval` (metrics,
reports, benchmark) and :mod:`ottex.exec` (executors) <- :mod:`ottex.app` (the
command line). The modules of ottex 0.1 (``ottex.optimal_textures``,
``ottex.metrics``, ``ottex.cli`` ...) remain as aliases of their new homes.

Example:
    >>> import ottex
    >>> texture = ottex.synthesize("graffiti.jpg", size=(512, 512), seed=0)  # doctest: +SKIP
    >>> ottex.save_image(texture, "out.png")  # doctest: +SKIP
    >>> [m.name for m in ottex.list_methods("synthesis")]
    ['ot', 'w2', 'gatys', 'swd', 'po']
"""

from __future__ import annotations

__version__ = "0.1.0"

import sys as _sys

from .core.errors import Cancelled, ImageError, InputError, OttexError, WeightsError
from .core.progress import LossHistory, ProgressEvent, TqdmProgress
from .eval.metrics import style_distance
from .exec.local import Job, LocalExecutor
from .image.color import color_transfer
from .image.io import load_image, save_image
from .methods.base import Method, get_method, list_methods, register_method
from .methods.optimal_textures import OTOptions, OTSchedule, synthesize, transfer
from .methods.optimization import OptOptions, OptSettings, stylize, synthesize_opt
from .methods.pseudo_optimizer import POOptions
from .methods.strotss import StrotssOptions, strotss

#: ``ottex.po``: the Pseudo Optimizer API (``train``, ``synthesize``, ``TrainOptions`` ...), also ``import ottex.po``.
po = _sys.modules[POOptions.__module__]

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
    "LocalExecutor",
    "load_image",
    "save_image",
    "style_distance",
    "OttexError",
    "ImageError",
    "InputError",
    "WeightsError",
    "Cancelled",
]
