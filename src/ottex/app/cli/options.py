"""Command-line options made from the method registry: ``--method`` choices, one option group per set of
methods sharing fields, help with each method's default; and the option values given, as text, for
:func:`~ottex.methods.request.make_job` (which reads and checks them, as for every front end).

Nothing here knows a particular method: a method registered anywhere shows up in ``--method`` and its option
fields become flags.
"""

from __future__ import annotations

import argparse
from typing import Any

from ...methods.base import Method, list_methods
from ...methods.options import OptionSpec

__all__ = ["add_method_options", "given_options"]

_GIVEN = "_ottex_given"  # namespace attribute: {dest: the option string the user typed}


class _Record(argparse.Action):
    """Store the raw value and remember which spelling was used (for messages and applicability checks)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        given = dict(getattr(namespace, _GIVEN, None) or {})
        given[self.dest] = option_string
        setattr(namespace, _GIVEN, given)


class _RecordBool(argparse.BooleanOptionalAction):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        super().__call__(parser, namespace, values, option_string)
        given = dict(getattr(namespace, _GIVEN, None) or {})
        given[self.dest] = option_string
        setattr(namespace, _GIVEN, given)


def _fmt_default(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


def _defaults_note(entries: list[tuple[Method, OptionSpec]], task: str) -> str:
    by_value: dict[str, list[str]] = {}
    for m, spec in entries:
        shown = spec.shown_default(task) if spec.default is None and spec.shown_default is not None else None
        text = shown or _fmt_default(spec.default)
        if text is not None:
            by_value.setdefault(text, []).append(m.name)
    if not by_value:
        return ""
    if len(by_value) == 1:
        return f" [{next(iter(by_value))}]"
    return " [" + "; ".join(f"{', '.join(names)}: {value}" for value, names in by_value.items()) + "]"


def _help(entries: list[tuple[Method, OptionSpec]], task: str) -> str:
    """One help text for a flag several methods share: their helps, each with its default for ``task`` (made from
    the options' metadata: the field's default or its ``shown_default``; a help text states none), prefixed with
    the method names where they differ."""
    groups: dict[str, list[tuple[Method, OptionSpec]]] = {}
    for m, spec in entries:
        groups.setdefault(spec.help, []).append((m, spec))
    parts = []
    for text, members in groups.items():
        body = text + _defaults_note(members, task)
        parts.append(body if len(groups) == 1 else f"{', '.join(m.name for m, _ in members)}: {body}")
    return "; ".join(parts).replace("%", "%%")


def add_method_options(parser: argparse.ArgumentParser, task: str) -> None:
    """``--method`` and the options of every registered method that does ``task``, grouped by the methods
    that share them."""
    methods = list_methods(task)
    names = [m.name for m in methods]
    default = "ot" if "ot" in names else names[0]
    parser.add_argument(
        "--method", default=default, choices=names,
        help="; ".join(f"{m.name}: {m.description}" for m in methods) + f" [{default}]")
    fields: dict[str, list[tuple[Method, OptionSpec]]] = {}
    for m in methods:
        for spec in m.option_specs(task):
            if spec.cli:
                fields.setdefault(spec.name, []).append((m, spec))
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, entries in fields.items():
        groups.setdefault(tuple(m.name for m, _ in entries), []).append(name)
    for owners, field_names in groups.items():
        g = parser.add_argument_group(f"options of {', '.join(owners)}")
        for name in field_names:
            entries = fields[name]
            spec = entries[0][1]
            kwargs: dict[str, Any] = {"dest": name, "default": None, "help": _help(entries, task)}
            if spec.type.startswith("bool"):
                g.add_argument(spec.cli_flag, action=_RecordBool, **kwargs)
                continue
            choices = list(dict.fromkeys(c for _, s in entries for c in (s.choices or ())))
            kind = spec.type.split(" ")[0]
            metavar = "{" + ",".join(map(str, choices)) + "}" if choices else spec.metavar
            metavar = metavar or {"int": "N", "float": "X"}.get(kind)
            if metavar:  # the choices are checked with the other checks of the value (make_job)
                kwargs["metavar"] = metavar
            g.add_argument(spec.cli_flag, action=_Record, **kwargs)


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The method options given on the command line, ``{field: value}`` (text, or a bool for a switch), for
    :func:`~ottex.methods.request.make_job`; records the flag typed for each (``args._ottex_flags``), so that an
    error about an option names its flag."""
    given = dict(getattr(args, _GIVEN, None) or {})
    args._ottex_flags = {**getattr(args, "_ottex_flags", {}), **given}
    return {dest: getattr(args, dest) for dest in given}
