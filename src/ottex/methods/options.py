"""Method options: how they are declared, and the one place where a value of an option is read and checked.

A method's options are a frozen dataclass, a subclass of :class:`Options`, whose fields are made with
:func:`option`: each carries its help, choices, bounds, command-line parser and placeholder. Every options object
checks its fields when it is made, however it is made (``OTOptions(style_scale=...)`` in Python, or
:func:`make_options` from a command line, a web form, a manifest row or a bench variant): the value's kind (yes/no,
integer, number), that numbers are finite, the choices and the bounds (:func:`check_value`); the subclass's own
``__post_init__`` then checks combinations. Text is turned into a value by :func:`parse_value` only, so an option's
check and its message exist once.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Grey(Options):
    ...     level: float = option(0.5, low=0, high=1, help="grey level")
    >>> make_options(Grey, {"level": "0.25"}).level
    0.25
    >>> Grey(level=float("nan"))
    Traceback (most recent call last):
    ...
    ottex.core.errors.InputError: level takes a finite number, got nan
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass
from typing import Any

import torch

from ..core.checks import is_integer
from ..core.errors import InputError

__all__ = [
    "SYNTHESIS",
    "TRANSFER",
    "TASKS",
    "TASK_WORDS",
    "Options",
    "OptionSpec",
    "option",
    "option_specs",
    "option_values",
    "check_value",
    "parse_value",
    "make_options",
    "settings_digest",
    "jsonable",
    "label_number",
    "parse_ints",
    "parse_floats",
    "parse_bool",
    "BOOL_WORDS",
]

SYNTHESIS = "synthesis"
TRANSFER = "transfer"
TASKS = (SYNTHESIS, TRANSFER)
#: How messages name the tasks.
TASK_WORDS = {SYNTHESIS: "texture synthesis", TRANSFER: "style transfer"}


@dataclass(frozen=True)
class OptionSpec:
    """What a front end needs to know about one option field.

    Attributes:
        name: the field's name (the keyword of :func:`make_options`).
        help: one line of help.
        default: the field's default (None when it has a factory).
        type: the field's annotation, as written (``"float | None"``; a class by its name).
        choices: allowed values, if a closed set.
        parse: converts text to the value (default: by ``type``).
        metavar: placeholder in help texts.
        tasks: the tasks the option applies to.
        cli: offered by the front ends (False for library-only objects).
        flag: the command-line flag (default ``--name-with-dashes``).
        kind: ``"mask"`` for a label-map input, ``"file"`` for another input file (a trained model), ``"flag"``
            for an on/off switch, else None.
        low, high: inclusive bounds of a number (of each number of a sequence).
        above: exclusive lower bound of a number.
        shown_default: ``shown_default(task)``: the default to show for a task when the field's own is None
            because another object decides it (a schedule), made from that object so that it cannot drift.
    """

    name: str
    help: str
    default: Any = None
    type: str = ""
    choices: tuple | None = None
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    tasks: tuple[str, ...] = TASKS
    cli: bool = True
    flag: str | None = None
    kind: str | None = None
    low: float | None = None
    high: float | None = None
    above: float | None = None
    shown_default: Callable[[str | None], str] | None = None

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def kinds(self) -> tuple[str, ...]:
        """The alternatives of :attr:`type`: ``("float", "None")`` for ``"float | None"``."""
        return tuple(k.strip() for k in self.type.split("|"))

    @property
    def optional(self) -> bool:
        return "None" in self.kinds

    @property
    def is_file(self) -> bool:
        """It names an input file (a label map or a trained model)."""
        return self.kind in ("mask", "file")


def option(
    default: Any = MISSING,
    *,
    help: str,  # noqa: A002 - the natural name, as argparse's
    default_factory: Callable[[], Any] | Any = MISSING,
    choices: Sequence | None = None,
    parse: Callable[[str], Any] | None = None,
    metavar: str | None = None,
    tasks: Sequence[str] = TASKS,
    cli: bool = True,
    flag: str | None = None,
    kind: str | None = None,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    shown_default: Callable[[str | None], str] | None = None,
) -> Any:
    """A dataclass field of a method's options, with what the front ends need to offer and check it.

    Args:
        default: the default value.
        help: one line of help (no defaults in it: front ends add them).
        default_factory: instead of ``default``, for mutable defaults.
        choices: the allowed values.
        parse: text -> value (e.g. comma-separated integers); raises ValueError saying what it takes.
        metavar: placeholder in help texts.
        tasks: the tasks it applies to (default: all the method does).
        cli: offer it in the front ends (False for library-only objects).
        flag: the command-line flag, if not ``--name-with-dashes``.
        kind: ``"mask"`` (a label-map file), ``"file"`` (another input file) or ``"flag"`` (an on/off switch).
        low, high: inclusive bounds of a number (each number of a sequence).
        above: exclusive lower bound of a number (``above=0``: positive).
        shown_default: ``shown_default(task)`` -> the default front ends show when ``default`` is None because
            another object decides it (e.g. a schedule): read from that object, never written by hand.
    """
    meta = {"help": help, "choices": None if choices is None else tuple(choices), "parse": parse,
            "metavar": metavar, "tasks": tuple(tasks), "cli": cli, "flag": flag, "kind": kind, "low": low,
            "high": high, "above": above, "shown_default": shown_default}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={"ottex": meta})
    return dataclasses.field(default=default, metadata={"ottex": meta})


def _spec_of(f: dataclasses.Field) -> OptionSpec:
    meta = dict(f.metadata.get("ottex") or {"help": ""})
    default = None if f.default is MISSING else f.default
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return OptionSpec(name=f.name, default=default, type=kind, **meta)


@dataclass(frozen=True)
class Options:
    """Base class of the methods' options dataclasses (frozen).

    Every field is checked by :func:`check_value` when an object is made; a subclass's ``__post_init__`` (which
    need not call this one) runs after that, for checks of combinations.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__post_init__")
        if own is None or getattr(own, "_checks_fields", False):
            return

        def __post_init__(self: Options) -> None:  # noqa: N807 - the dataclass hook
            _check_fields(self)
            own(self)

        __post_init__._checks_fields = True  # type: ignore[attr-defined]
        cls.__post_init__ = __post_init__  # type: ignore[method-assign]

    def __post_init__(self) -> None:
        _check_fields(self)

    def replace(self, **changes: Any) -> Options:
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)


def _check_fields(options: Options) -> None:
    for f in dataclasses.fields(options):
        if "ottex" in f.metadata:
            check_value(_spec_of(f), getattr(options, f.name))


def _is_bool(value: object) -> bool:
    return isinstance(value, bool) or (type(value).__module__ == "numpy" and "bool" in type(value).__name__)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not _is_bool(value)


#: What a value of each plain kind must be, and how messages say it.
_KINDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "bool": (_is_bool, "true or false"),
    "int": (lambda v: is_integer(v) and not _is_bool(v), "an integer"),
    "float": (_is_number, "a number"),
}


def check_value(spec: OptionSpec, value: Any) -> None:
    """Refuse a value an option does not take: the wrong kind for a yes/no, integer or number option, a number
    that is not finite (NaN, infinity; in a sequence too), a value outside the choices or the bounds.

    Raises:
        InputError: ``"<name> takes ..., got ..."`` or ``"<name> must be ..., got ..."``, with ``option=name``.
    """
    name = spec.name
    if value is None and spec.optional:
        return
    plain = [k for k in spec.kinds if k != "None"]
    if len(plain) == 1 and plain[0] in _KINDS:
        ok, what = _KINDS[plain[0]]
        if not ok(value):
            raise InputError(f"{name} takes {what}, got {value!r}", option=name)
    items = list(value) if isinstance(value, (tuple, list)) else [value]
    for item in items:
        if _is_number(item) and not math.isfinite(item):
            raise InputError(f"{name} takes a finite number, got {item!r}", option=name)
    if spec.choices is not None and value not in spec.choices:
        raise InputError(f"{name} takes one of {', '.join(map(str, spec.choices))}, got {value!r}", option=name)
    for item in items:
        if not _is_number(item):
            continue
        if spec.low is not None and item < spec.low:
            raise InputError(f"{name} must be at least {spec.low:g}, got {item:g}", option=name)
        if spec.high is not None and item > spec.high:
            raise InputError(f"{name} must be at most {spec.high:g}, got {item:g}", option=name)
        if spec.above is not None and not item > spec.above:
            raise InputError(f"{name} must be above {spec.above:g}, got {item:g}", option=name)


#: The words a yes/no option takes as text (case-insensitive).
BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def parse_bool(value: object) -> bool:
    """A yes/no value: a bool as it is, or one of :data:`BOOL_WORDS` (any case).

    Raises:
        ValueError: with what the text should be, for the caller's message.

    Example:
        >>> parse_bool("No"), parse_bool(True)
        (False, True)
    """
    if _is_bool(value):
        return bool(value)
    word = str(value).strip().lower()
    if word not in BOOL_WORDS:
        raise ValueError("true or false (also yes/no, on/off, 1/0)")
    return BOOL_WORDS[word]


def parse_ints(text: str) -> tuple[int, ...]:
    """``"100,40"`` -> ``(100, 40)`` (per-scale and per-level settings).

    Raises:
        ValueError: with what the text should be, for the caller's message.
    """
    try:
        return tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise ValueError("comma-separated integers") from None


def parse_floats(text: str) -> tuple[float, ...]:
    """``"0.7,0.3"`` -> ``(0.7, 0.3)``.

    Raises:
        ValueError: with what the text should be, for the caller's message.
    """
    try:
        return tuple(float(v) for v in str(text).split(","))
    except ValueError:
        raise ValueError("a number or comma-separated numbers") from None


def unquote(text: str) -> str:
    """``'sym'`` or ``"sym"`` -> ``sym`` (a string as Python writes it)."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def unbracket(text: str) -> str:
    """``(0.5,0.5)`` or ``[0.5, 0.5]`` -> ``0.5,0.5`` (a sequence as Python writes it)."""
    if len(text) >= 2 and (text[0], text[-1]) in (("(", ")"), ("[", "]")):
        text = text[1:-1].strip()
        return text[:-1] if text.endswith(",") else text  # (1,)
    return text


_NUMBERS: dict[str, tuple[type, str]] = {"int": (int, "an integer"), "float": (float, "a number")}


def _from_text(spec: OptionSpec, text: str) -> Any:
    """Text -> value, by the option's own parser, else by its type (without the checks of :func:`check_value`).

    Raises:
        ValueError: what the option takes.
    """
    kinds = spec.kinds
    text = unquote(text.strip())
    if spec.optional and text.lower() in ("none", ""):
        return None
    if "bool" in kinds:
        return parse_bool(text)
    if spec.parse is not None:
        return spec.parse(unbracket(text))
    if kinds[0] in _NUMBERS:
        convert, what = _NUMBERS[kinds[0]]
        try:
            return convert(text)
        except ValueError:
            raise ValueError(what) from None
    if kinds[0].startswith(("tuple[", "Sequence[")):  # e.g. tuple[str, ...]: comma-separated items
        item = kinds[0].split("[", 1)[1].split(",")[0].strip(" ]")
        convert, what = _NUMBERS.get(item, (str, "text"))
        try:
            return tuple(convert(unquote(v.strip())) for v in unbracket(text).split(","))
        except ValueError:
            raise ValueError(f"comma-separated values, each {what}") from None
    if kinds[0] in ("str", "ImageLike", "Path"):
        return text
    raise ValueError(f"a {spec.type}, which cannot be given as text")


def parse_value(spec: OptionSpec, value: Any) -> Any:
    """An option's value from text (the command line, a form, a manifest, a bench variant) or from Python,
    checked by :func:`check_value`.

    Text is read by the option's ``parse`` (a sequence in brackets is taken too), else by its type: yes/no
    options take :data:`BOOL_WORDS`, numbers their type, optional options ``none``; quotes around a string are
    dropped; a list (a JSON array) for a tuple option becomes a tuple. Other values are checked as they are.

    Raises:
        InputError: ``"<name> takes ..., got ..."`` (``option=name``).

    Example:
        >>> from ottex.methods.optimal_textures import OTOptions
        >>> spec = next(s for s in option_specs(OTOptions) if s.name == "passes")
        >>> parse_value(spec, "(6, 2)")
        (6, 2)
    """
    if isinstance(value, str) and not (spec.kinds[0] in ("str", "ImageLike", "Path") and spec.parse is None
                                       and not spec.choices):
        try:
            value = _from_text(spec, value)
        except (ValueError, TypeError) as exc:
            raise InputError(f"{spec.name} takes {exc}, got {value.strip()[:40]!r}", option=spec.name) from None
    if isinstance(value, list) and spec.kinds[0].startswith("tuple["):  # a JSON array
        value = tuple(value)
    check_value(spec, value)
    return value


def option_specs(options: type | Options, task: str | None = None) -> list[OptionSpec]:
    """The :class:`OptionSpec` of every field of an options dataclass (those of ``task`` only, if given)."""
    specs = [_spec_of(f) for f in dataclasses.fields(options)]
    return [s for s in specs if task is None or task in s.tasks]


def make_options(options: type[Options], values: Mapping[str, Any] | Options | None = None, *,
                 task: str | None = None, method: str = "") -> Options:
    """An options object from values given as text or as Python values (defaults for the others).

    Args:
        options: the options dataclass.
        values: option values by name (text is read by :func:`parse_value`), or an options object (returned).
        task: refuse options that apply only to the other task (they would be ignored).
        method: the method's name, for messages.

    Raises:
        InputError: an unknown option, one of the other task, or a value the option refuses.
    """
    if isinstance(values, options):
        return values
    if values is not None and not isinstance(values, Mapping):
        raise InputError(f"options of method '{method}' must be a {options.__name__} or a mapping, got "
                         f"{type(values).__name__}", option="options")
    specs = {s.name: s for s in option_specs(options)}
    kwargs = {}
    for key, value in (values or {}).items():
        spec = specs.get(key)
        if spec is None:
            raise InputError(f"method '{method}' has no option '{str(key)[:40]}' (its options: {', '.join(specs)})",
                             option=str(key))
        if task is not None and task not in spec.tasks:
            raise InputError(f"option '{key}' of method '{method}' does not apply to {task} (only to "
                             f"{', '.join(spec.tasks)})", option=key)
        kwargs[key] = parse_value(spec, value)
    try:
        return options(**kwargs)
    except TypeError as exc:  # e.g. a missing required field
        raise InputError(f"options of method '{method}': {exc}", option="options") from None


def jsonable(value: Any) -> Any:
    """A value as JSON can hold it: tuples as lists, paths as strings, dataclasses as dicts, a tensor as its
    description (settings records and digests)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, torch.Tensor):
        return f"<tensor {tuple(value.shape)}>"
    return str(value)  # paths and anything else


def option_values(options: Options, changed_only: bool = False) -> dict[str, Any]:
    """The fields of an options object as JSON values (``changed_only``: those that differ from their default).

    Example:
        >>> from ottex.methods.optimal_textures import OTOptions
        >>> option_values(OTOptions(passes=2, pca=False), changed_only=True)
        {'passes': [2], 'pca': False}
    """
    out = {}
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        if changed_only:
            default = f.default_factory() if f.default_factory is not MISSING else f.default  # type: ignore[misc]
            if default is not MISSING and jsonable(value) == jsonable(default):
                continue
        out[f.name] = jsonable(value)
    return out


def settings_digest(method: str, options: Options, batch: int = 1, length: int = 6) -> str:
    """A short hex digest of the settings that are not at their defaults (options, and the batch size when above
    1), for output names that differ whenever the image would; ``""`` when every setting is the default."""
    changed = option_values(options, changed_only=True)
    if not changed and batch == 1:
        return ""
    record = {"method": method, "options": changed, "batch": batch}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:length]


def label_number(x: float) -> str:
    """A number for file names: ``0.6`` -> ``"0p6"``."""
    return f"{x:g}".replace(".", "p")
