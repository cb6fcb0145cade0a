"""Exception types of ottex.

Every error a user can cause (bad image, bad size, missing weights, ...) is an
:class:`OttexError`. Messages describe the problem in library terms (parameter
names, never command-line flags): the same text reads right in a notebook, a
web page or a terminal. An error may name the parameter at fault in
:attr:`OttexError.option`, so that a front end can add its own wording (the
command line adds e.g. "use --force to overwrite" for ``option="overwrite"``).

Example:
    >>> err = InputError("output size 0x64 must be positive", option="size")
    >>> str(err), err.option
    ('output size 0x64 must be positive', 'size')
"""

from __future__ import annotations

__all__ = ["OttexError", "ImageError", "WeightsError", "MissingWeightsError", "InputError", "Cancelled"]


class OttexError(Exception):
    """Base class of the errors ottex reports to users.

    Args:
        message: one line, in library terms.
        option: the parameter (or option field) at fault, if any.
    """

    def __init__(self, message: str = "", *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class ImageError(OttexError):
    """An image could not be read or written, or has an unusable size or content."""


class WeightsError(OttexError):
    """Pretrained weights are missing, corrupt, or lack a requested level."""


class MissingWeightsError(WeightsError):
    """A weight file is absent everywhere and could not be downloaded (a file that is present but fails its
    hash check is a plain :class:`WeightsError`)."""


class InputError(OttexError, ValueError):
    """An argument has a value that cannot be used (size, option, mask ...)."""


class Cancelled(OttexError):
    """A run was stopped by its progress callback; nothing was written."""
