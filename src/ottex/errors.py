"""Exception types of ottex.

Every error a user can cause (bad image, bad size, missing weights, ...) is an
:class:`OttexError`. The command line prints its message on one line and exits
with a non-zero status instead of showing a traceback.
"""

from __future__ import annotations

__all__ = ["OttexError", "ImageError", "WeightsError", "InputError"]


class OttexError(Exception):
    """Base class of the errors ottex reports to users."""


class ImageError(OttexError):
    """An image could not be read or written, or has an unusable size or content."""


class WeightsError(OttexError):
    """Pretrained weights are missing, corrupt, or lack a requested level."""


class InputError(OttexError, ValueError):
    """An argument has a value that cannot be used (size, option, mask ...)."""
