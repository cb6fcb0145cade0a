"""Image layer: files in and out (:mod:`~ottex.image.io`), colour transfer (:mod:`~ottex.image.color`),
colour-coded label maps (:mod:`~ottex.image.masks`)."""

from __future__ import annotations

from .color import color_transfer, preserve_color, rgb_to_ycbcr, ycbcr_to_rgb
from .io import IMAGE_SUFFIXES, as_image, image_size, load_image, save_image, to_pil
from .masks import load_label_map, load_label_pair, resample_masks

__all__ = [
    "IMAGE_SUFFIXES",
    "as_image",
    "image_size",
    "load_image",
    "save_image",
    "to_pil",
    "color_transfer",
    "preserve_color",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
    "load_label_map",
    "load_label_pair",
    "resample_masks",
]
