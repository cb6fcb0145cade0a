"""The argument parser of the ``ottex`` commands: its errors are exceptions, printed by the caller on one line.

argparse prints a usage block and exits when a command line does not parse; :class:`Parser` raises
:class:`UsageError` instead (with the command at fault), so that :func:`ottex.app.cli.command.run` prints one line
``ottex: error: ottex synth: argument --size: ... (see 'ottex synth --help')`` and ``ottex batch manifest`` names
the manifest row. Unknown arguments are blamed on the sub-command they were given to.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn

__all__ = ["Parser", "UsageError"]


class UsageError(Exception):
    """A command line that does not parse.

    Attributes:
        prog: the (sub-)command whose arguments are wrong, e.g. ``"ottex synth"``.
        message: argparse's message, e.g. ``"argument --size: invalid int value: 'abc'"``.
    """

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(f"{prog}: {message}")
        self.prog = prog
        self.message = message

    def one_line(self) -> str:
        """The message and where to read about the command: ``PROG: MESSAGE (see 'PROG --help')`` (the top-level
        command, which every message names anyway, without ``PROG:``)."""
        head = f"{self.prog}: " if " " in self.prog else ""
        return f"{head}{self.message} (see '{self.prog} --help')"


class Parser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` (and the class of its sub-command parsers) that raises
    :class:`UsageError` instead of printing the usage and exiting."""

    def error(self, message: str) -> NoReturn:
        """Raise :class:`UsageError` for this parser's command."""
        raise UsageError(self.prog, message)

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        """As :meth:`argparse.ArgumentParser.parse_args`; unknown arguments are an error of the sub-command
        that was given them (``ottex synth``, not ``ottex``)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            _chosen(self, parsed).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


def _chosen(parser: argparse.ArgumentParser, parsed: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost sub-command parser that ``parsed`` went through (``parser`` itself if none)."""
    for action in parser._actions:  # noqa: SLF001 - argparse keeps its sub-parsers only there
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            name: Any = getattr(parsed, action.dest, None) if action.dest != argparse.SUPPRESS else None
            child = action.choices.get(name) if isinstance(name, str) else None
            if child is not None:
                return _chosen(child, parsed)
    return parser
