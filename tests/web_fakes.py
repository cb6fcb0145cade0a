"""A method for the web tests: seeded noise made in a chosen number of steps, with an optional delay per step and
optional failures; it reports progress with the current image like the real methods.

Importing this module registers it as "sleepy"; the tests unregister it when they are done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ottex.core.device import make_generator, resolve_device
from ottex.core.errors import InputError
from ottex.core.progress import Reporter
from ottex.image.io import as_image
from ottex.methods.base import Method, register_method
from ottex.methods.options import SYNTHESIS, Options, option


@dataclass(frozen=True)
class SleepyOptions(Options):
    steps: int = option(4, help="steps of the run")
    delay: float = option(0.0, help="seconds per step")
    fail: str = option("no", choices=("no", "input", "crash"), help="fail at the first step: input: with a "
                       "library error; crash: with a RuntimeError")
    mix: tuple[float, ...] | None = option(None, tasks=(SYNTHESIS,), help="mixing weights (ignored)",
                                           parse=lambda t: tuple(float(v) for v in t.split(",")))

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise InputError(f"steps must be at least 1, got {self.steps}", option="steps")


def _run(size, options, seed, device, callback):  # noqa: ANN001
    dev = resolve_device(device)
    gen = make_generator(seed, dev)
    h, w = size
    coarse = options.steps // 2
    report = Reporter("sleepy", callback, [(h // 2, w // 2), (h, w)], [coarse, options.steps - coarse])
    image = torch.rand(1, 3, h, w, generator=gen, device=dev)
    for scale in (0, 1):
        report.begin_scale(scale)
        for _ in range(report.steps[scale]):
            if options.fail == "input":
                raise InputError("the sleepy method refuses to run", option="fail")
            if options.fail == "crash":
                raise RuntimeError("sleepy crashed (a bug, not a user error)")
            for _ in range(round(options.delay / 0.01)):  # a step of many short operations, like a method's
                time.sleep(0.01)
            report.step(loss=1.0, image=image)
    report.finish(image)
    return image


def _synthesize(style, size, options, *, batch=1, seed=0, device=None, weights_dir=None, callback=None):  # noqa: ANN001
    for s in style if isinstance(style, list) else [style]:
        as_image(s, resolve_device(device), "style")
    return _run(tuple(size), options, seed, device, callback)


def _transfer(content, style, size, options, *, seed=0, device=None, weights_dir=None, callback=None):  # noqa: ANN001
    c = as_image(content, resolve_device(device), "content")
    as_image(style, resolve_device(device), "style")
    h, w = c.shape[-2:]
    if size is not None:
        s = size / max(h, w)
        h, w = max(16, round(h * s)), max(16, round(w * s))
    return _run((h, w), options, seed, device, callback)


METHOD = register_method(Method("sleepy", "seeded noise, slowly (test method)", SleepyOptions,
                                synthesize=_synthesize, transfer=_transfer))
