"""Networks layer: the canonical VGG layout, weight sets (one object per set), encoders/decoders/feature
extractors, and the differentiable feature losses."""

from __future__ import annotations

from .losses import STYLE_LOSSES, content_loss, gram_matrix, make_style_loss
from .networks import (
    Decoder,
    Encoder,
    VGGFeatures,
    load_autoencoders,
    load_decoder,
    load_encoder,
    load_feature_extractor,
)
from .weights import WEIGHT_SETS, WeightFile, WeightSet, get_weight_set, register_weight_set

__all__ = [
    "WeightFile",
    "WeightSet",
    "WEIGHT_SETS",
    "get_weight_set",
    "register_weight_set",
    "Encoder",
    "Decoder",
    "VGGFeatures",
    "load_encoder",
    "load_decoder",
    "load_autoencoders",
    "load_feature_extractor",
    "STYLE_LOSSES",
    "make_style_loss",
    "content_loss",
    "gram_matrix",
]
