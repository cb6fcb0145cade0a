"""The ``ottex`` command: its parser (one sub-command module each) and the dispatch with one-line errors.

Imported by :func:`ottex.app.cli.main` inside its Ctrl-C guard (this module imports torch).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from ... import __version__
from ...core.errors import Cancelled, OttexError
from . import batch, bench, color, info, serve, style, synth, train, video, weights
from .common import apply_threads, format_error
from .parser import Parser, UsageError

__all__ = ["run", "build_parser", "COMMANDS"]

#: The sub-command modules, in help order: each has ``add_parser(subparsers)`` (which sets ``func``).
COMMANDS = (synth, style, video, color, train, bench, batch, weights, serve, info)


def build_parser() -> argparse.ArgumentParser:
    """The ``ottex`` parser, with the methods registered at this moment."""
    parser = Parser(
        prog="ottex",
        description="Texture synthesis and style transfer through optimal transport.",
        epilog="Run 'ottex COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"ottex {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    _name_values(parser)
    return parser


#: The placeholder of a value by its type, for options that name none: argparse would show the option's name in
#: capitals (``ROTATIONS``, ``MAX_QUEUE``) beside the ``N`` and ``PX`` of the others.
TYPE_METAVARS = {int: "N", float: "X"}


def _name_values(parser: argparse.ArgumentParser) -> None:
    """Give every option that takes a value and names no placeholder the one of its type (in every sub-command)."""
    for action in parser._actions:  # noqa: SLF001 - argparse keeps its actions and sub-parsers only there
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for child in dict.fromkeys(action.choices.values()):
                _name_values(child)
        elif action.option_strings and action.nargs != 0 and action.metavar is None and action.choices is None:
            action.metavar = TYPE_METAVARS.get(action.type)  # type: ignore[call-overload]


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"ottex: warning: {message}", file=sys.stderr)


def run(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the sub-command; returns the exit status (see :func:`ottex.app.cli.main`).

    Raises:
        SystemExit: ``--help`` and ``--version`` (status 0), and a command line that does not parse (status 2,
            after one line ``ottex: error: ottex COMMAND: ... (see 'ottex COMMAND --help')``).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"ottex: error: {exc.one_line()}", file=sys.stderr)
        raise SystemExit(2) from None
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        warnings.filterwarnings("always", category=DeprecationWarning, module=r"ottex(\.|$)")
        try:
            if args.command != "bench":  # bench's --threads is each case's, in its own process
                apply_threads(args)
            return int(args.func(args) or 0)
        except Cancelled as exc:
            print(f"ottex: {exc}", file=sys.stderr)
            return 130
        except OttexError as exc:
            print(f"ottex: error: {format_error(exc, args)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("ottex: interrupted", file=sys.stderr)
            return 130
        except MemoryError:
            print("ottex: error: out of memory; try a smaller size, --batch 1 or --device cpu", file=sys.stderr)
            return 1
