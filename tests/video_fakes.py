"""A method that gives its content back (``copy``): the video tests check the number, order and joins of frames
without weights. Importing this module registers it (also in a Ray worker that unpickles its options); the tests
unregister it when they are done."""

from __future__ import annotations

from dataclasses import dataclass

from ottex.core.device import resolve_device
from ottex.image.io import as_image
from ottex.methods.base import Method, register_method
from ottex.methods.options import Options, option


@dataclass(frozen=True)
class CopyOptions(Options):
    gain: float = option(1.0, low=0.0, help="multiplies the content")


def _transfer(content, style, size, options, *, seed=0, device=None, weights_dir=None, callback=None):  # noqa: ANN001
    return (as_image(content, resolve_device(device), "content") * options.gain).clamp(0, 1)


METHOD = register_method(Method("copy", "the content itself (test method)", CopyOptions, transfer=_transfer),
                         replace=True)
