"""ottex: texture synthesis and style transfer through optimal transport.

Example:
    >>> import ottex
    >>> texture = ottex.synthesize("graffiti.jpg", size=(512, 512), seed=0)  # doctest: +SKIP
    >>> ottex.save_image(texture, "out.png")  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from .color import color_transfer
from .errors import ImageError, InputError, OttexError, WeightsError
from .io import load_image, save_image
from .metrics import style_distance
from .optimal_textures import OTSchedule, synthesize, transfer
from .optimization import OptSettings, stylize, synthesize_opt
from .strotss import strotss

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
    "load_image",
    "save_image",
    "style_distance",
    "OttexError",
    "ImageError",
    "InputError",
    "WeightsError",
]
