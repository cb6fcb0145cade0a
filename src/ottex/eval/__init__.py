"""Evaluation layer: quality metrics (:mod:`~ottex.eval.metrics`), contact sheets and loss plots
(:mod:`~ottex.eval.report`), and the benchmark of registered methods (:mod:`~ottex.eval.bench`)."""

from __future__ import annotations

from .metrics import content_distance, gram_distance, style_distance, style_distance_per_layer

__all__ = ["style_distance", "style_distance_per_layer", "content_distance", "gram_distance"]
