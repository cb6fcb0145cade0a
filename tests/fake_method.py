"""A method defined outside ottex, for the registry tests: a flat grey texture of a chosen level.

Importing this module registers it (as a method module would); the tests unregister it when they are done.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ottex.core.device import resolve_device
from ottex.core.errors import InputError
from ottex.core.progress import Reporter
from ottex.image.io import as_image
from ottex.methods.base import Method, register_method
from ottex.methods.options import SYNTHESIS, Options, label_number, option

STEPS = 3


@dataclass(frozen=True)
class GreyOptions(Options):
    level: float = option(0.5, help="grey level of the texture")
    boost: float = option(0.0, tasks=(SYNTHESIS,), help="added to the level")

    def __post_init__(self) -> None:
        if not 0 <= self.level <= 1:
            raise InputError(f"level must be in [0, 1], got {self.level}", option="level")


def _synthesize(style, size, options, *, batch=1, seed=0, device=None, weights_dir=None, callback=None):  # noqa: ANN001
    dev = resolve_device(device)
    as_image(style if not isinstance(style, list) else style[0], dev, "style")
    report = Reporter("grey", callback, [tuple(size)], [STEPS])
    report.begin_scale(0)
    image = torch.full((batch, 3, *size), options.level + options.boost, device=dev)
    for i in range(STEPS):
        report.step(loss=1.0 / (i + 1), image=image)
    report.finish(image)
    return image


def _transfer(content, style, size, options, *, seed=0, device=None, weights_dir=None, callback=None):  # noqa: ANN001
    c = as_image(content, resolve_device(device), "content")
    return torch.full_like(c, options.level)


METHOD = register_method(Method("grey", "a flat grey texture (test method)", GreyOptions, synthesize=_synthesize,
                                transfer=_transfer, reports_loss=True,
                                label=lambda o, task: f"grey{label_number(o.level)}"))
