"""Command-line interface: ``ottex <command> ...``, one module per sub-command.

The method options of ``synth``, ``style`` and ``bench`` come from the method
registry (:mod:`ottex.app.cli.options`); method runs go through the local
executor (:mod:`ottex.exec.local`). Every user error is printed as one line
``ottex: error: ...`` with exit status 1 (2 for bad command-line syntax);
there are no tracebacks for bad input. Library messages name parameters; this
package adds the flag at fault and hints such as "use --force to overwrite".

This module imports nothing heavy: :func:`main` imports the commands (and
torch) with Ctrl-C held back until they are loaded, so an interrupt while the
command starts is one line (``ottex: interrupted``, exit status 130), like one
during a run.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main", "build_parser", "COMMANDS"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ottex`` command. Returns the exit status."""
    try:
        run = _load_commands()
        return run(argv)
    except KeyboardInterrupt:
        print("ottex: interrupted", file=sys.stderr)
        return 130


def _load_commands() -> Callable[[Sequence[str] | None], int]:
    """Import the commands (and torch) with Ctrl-C held back until the imports are done, then raised.

    A ``KeyboardInterrupt`` raised inside an extension module's import (numpy's, under torch's) can surface as an
    ``ImportError`` traceback, or be swallowed so that the command runs on (both seen in an audit, at about 0.3 s
    after the start); held back, it is one ``ottex: interrupted``. Outside the main thread (no signal handlers
    there) the imports run as they are.
    """
    held: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    except ValueError:  # not the main thread
        previous = None
    try:
        from .command import run  # noqa: PLC0415 - the commands and torch load inside the Ctrl-C guard
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt
    return run


def __getattr__(name: str) -> Any:
    """``build_parser`` and ``COMMANDS`` of :mod:`ottex.app.cli.command`, imported on first use."""
    if name in ("build_parser", "COMMANDS"):
        from . import command  # noqa: PLC0415 - heavy; only when asked for

        return getattr(command, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
