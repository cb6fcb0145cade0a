"""Command-line options made from the method registry: ``--method`` choices, one option group per set of
methods sharing fields, help with each method's default, checks that an option applies to the chosen method,
and the former spellings of renamed flags (accepted for one release with a warning).

Nothing here knows a particular method: a method registered anywhere shows up in ``--method``, its option
fields become flags, and its options object is built from what was given.
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from ...core.errors import InputError
from ...methods.base import Method, OptionSpec, get_method, list_methods

__all__ = ["add_method_options", "method_options", "mask_options", "given_flag", "DEPRECATED_PREFIX"]

DEPRECATED_PREFIX = "deprecated_flag:"
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


def given_flag(args: argparse.Namespace, dest: str) -> str | None:
    """The option string the user typed for ``dest`` (None if not given)."""
    return (getattr(args, _GIVEN, None) or {}).get(dest)


def _fmt_default(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


def _defaults_note(entries: list[tuple[Method, OptionSpec]]) -> str:
    by_value: dict[str, list[str]] = {}
    for m, spec in entries:
        text = _fmt_default(spec.default)
        if text is not None:
            by_value.setdefault(text, []).append(m.name)
    if not by_value:
        return ""
    if len(by_value) == 1:
        return f" [{next(iter(by_value))}]"
    return " [" + "; ".join(f"{', '.join(names)}: {value}" for value, names in by_value.items()) + "]"


def _help(entries: list[tuple[Method, OptionSpec]]) -> str:
    """One help text for a flag several methods share: their helps (each with its default unless it states
    one), prefixed with the method names where they differ."""
    groups: dict[str, list[tuple[Method, OptionSpec]]] = {}
    for m, spec in entries:
        groups.setdefault(spec.help, []).append((m, spec))
    parts = []
    for text, members in groups.items():
        body = text if "[" in text else text + _defaults_note(members)
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
    deprecated: dict[str, list[str]] = {}
    for owners, field_names in groups.items():
        g = parser.add_argument_group(f"options of {', '.join(owners)}")
        for name in field_names:
            entries = fields[name]
            spec = entries[0][1]
            kwargs: dict[str, Any] = {"dest": name, "default": None, "help": _help(entries)}
            if spec.type.startswith("bool"):
                g.add_argument(spec.cli_flag, action=_RecordBool, **kwargs)
                continue
            choices = list(dict.fromkeys(c for _, s in entries for c in (s.choices or ())))
            if choices:
                kwargs["choices"] = choices
            kind = spec.type.split(" ")[0]
            metavar = spec.metavar or {"int": "N", "float": "X"}.get(kind)
            if metavar and not choices:
                kwargs["metavar"] = metavar
            g.add_argument(spec.cli_flag, action=_Record, **kwargs)
            for _, s in entries:
                for old in s.deprecated_flags:
                    deprecated.setdefault(old, []).append(name)
    current = {spec.cli_flag for entries in fields.values() for _, spec in entries}
    for old in deprecated:
        if old not in current:  # a former spelling never shadows a flag some method uses today
            parser.add_argument(old, dest=DEPRECATED_PREFIX + old, action=_Record, default=None,
                                help=argparse.SUPPRESS)


def _convert(spec: OptionSpec, text: Any, flag: str) -> Any:
    """A flag's string as the field's value (by its ``parse``, else by its type)."""
    if not isinstance(text, str):
        return text  # booleans
    kind = spec.type.split(" ")[0]
    try:
        if spec.parse is not None:
            return spec.parse(text)
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError as exc:
        what = str(exc) if spec.parse is not None else {"int": "an integer", "float": "a number"}[kind]
        raise InputError(f"{flag} takes {what}, got '{text}'") from None
    return text


def method_options(args: argparse.Namespace, task: str, method: Method | None = None) -> Any:
    """The chosen method's options object from the flags given on the command line.

    Refuses flags that the chosen method does not have; turns former flag spellings into the current ones
    with a one-line deprecation warning. Records ``args._ottex_flags`` (option field -> flag as typed), so
    that errors about a field can name the flag.

    Raises:
        InputError: a flag that does not apply to the method, or a value that does not parse.
    """
    method = method or get_method(args.method, task)
    specs = {s.name: s for s in method.option_specs(task)}
    given = dict(getattr(args, _GIVEN, None) or {})
    values: dict[str, Any] = {}
    flags: dict[str, str] = {}
    # former spellings first, so that a current spelling given too wins
    for dest, typed in given.items():
        if not dest.startswith(DEPRECATED_PREFIX):
            continue
        old = dest[len(DEPRECATED_PREFIX):]
        target = next((s for s in specs.values() if old in s.deprecated_flags), None)
        if target is None:
            raise InputError(f"{typed} does not apply to --method {method.name}")
        warnings.warn(f"{old} is deprecated and will be removed in the next release; use {target.cli_flag}",
                      DeprecationWarning, stacklevel=1)
        if target.name not in given:
            values[target.name] = _convert(target, getattr(args, dest), old)
            flags[target.name] = old
    every = {s.name for m in list_methods(task) for s in m.option_specs(task) if s.cli}
    for dest, typed in given.items():
        if dest.startswith(DEPRECATED_PREFIX) or dest not in every:
            continue
        spec = specs.get(dest)
        if spec is None or not spec.cli:
            raise InputError(f"{typed} does not apply to --method {method.name}")
        values[dest] = _convert(spec, getattr(args, dest), typed)
        flags[dest] = typed
    args._ottex_flags = {**getattr(args, "_ottex_flags", {}), **flags}
    return method.make_options(values)


def mask_options(method: Method, options: Any, task: str) -> list[Any]:
    """The label-map files among a method's options (given ones only)."""
    return [getattr(options, s.name) for s in method.option_specs(task)
            if s.kind == "mask" and getattr(options, s.name) is not None]
