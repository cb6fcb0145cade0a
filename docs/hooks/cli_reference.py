"""MkDocs hook: the command-line reference (docs/cli.md) generated from ``ottex``'s own argparse parser.

``docs/cli.md`` holds the marker ``<!-- cli-reference -->``; at build time it is replaced by one section per
command and sub-command with its help text, exactly as ``ottex COMMAND --help`` prints it (80 columns), so the
page cannot drift from the parser. :func:`cli_reference` is also what ``tests/test_docs.py`` checks.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import Any

MARKER = "<!-- cli-reference -->"


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """``(name, one-line help, parser)`` of each sub-command of ``parser``, in help order."""
    for action in parser._actions:  # noqa: SLF001 - argparse keeps its sub-parsers only there
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}  # noqa: SLF001
            for name, sub in action.choices.items():
                yield name, helps.get(name, ""), sub


def _walk(parser: argparse.ArgumentParser, prog: str) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    for name, summary, sub in _subcommands(parser):
        yield f"{prog} {name}", summary, sub
        yield from _walk(sub, f"{prog} {name}")


def cli_reference() -> str:
    """The Markdown of the reference: a table of the commands, then each command's ``--help``."""
    from ottex.app.cli import build_parser  # noqa: PLC0415 - imported when the page is built

    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"  # argparse wraps to the terminal; the page always shows 80 columns
    try:
        parser = build_parser()
        commands = list(_walk(parser, "ottex"))
        lines = ["| command | what it does |", "|---|---|"]
        for prog, summary, _ in commands:
            anchor = prog.replace(" ", "-")
            text = summary.replace("|", "\\|")
            lines.append(f"| [`{prog}`](#{anchor}) | {text} |")
        lines += ["", "## `ottex`", "", "```text", parser.format_help().rstrip(), "```", ""]
        for prog, _, sub in commands:
            anchor = prog.replace(" ", "-")
            level = "#" * min(2 + prog.count(" ") - 1, 4)
            lines += [f"{level} `{prog}` {{#{anchor}}}", "", "```text", sub.format_help().rstrip(), "```", ""]
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Put the generated reference in place of the marker of ``cli.md``."""
    if page.file.src_uri == "cli.md":
        if MARKER not in markdown:
            raise ValueError(f"docs/cli.md lost its marker {MARKER}")
        markdown = markdown.replace(MARKER, cli_reference())
    return markdown
