"""The contract every method fulfils, and the registry the CLI, the benchmark and later front ends read.

A method is a :class:`Method`: a name, a one-line description, the tasks it
does (:data:`SYNTHESIS`, :data:`TRANSFER`), an options dataclass whose fields
carry their help, choices and defaults (:func:`option`), and one callable per
task::

    synthesize(style, size, options, *, batch, seed, device, weights_dir, callback) -> (batch, 3, H, W)
    transfer(content, style, size, options, *, seed, device, weights_dir, callback) -> (1, 3, H, W)

``style`` and ``content`` are image paths or ``(1, 3, H, W)`` tensors in
``[0, 1]`` (``style`` may be a list for methods that mix examples); ``size`` is
``(H, W)`` (or an int: a square) for synthesis, and for transfer the long side
(None: the content's) or ``(H, W)``. ``callback`` receives :class:`~ottex.core.progress.ProgressEvent`\\ s
and may cancel the run. A method module registers its method where it is
defined (:func:`register_method`); the registry imports every module of the
``ottex.methods`` package, and the ``ottex.methods`` entry points of installed
packages, on first use, so adding a method touches its own module only.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class FlatOptions(Options):
    ...     level: float = option(0.5, help="grey level of the output")
    >>> def flat(style, size, options, *, batch=1, seed=0, device=None, weights_dir=None, callback=None):
    ...     return torch.full((batch, 3, *size), options.level)
    >>> m = register_method(Method("flat", "a flat grey texture", FlatOptions, synthesize=flat))
    >>> m.tasks, m.synthesize(torch.rand(1, 3, 8, 8), (16, 16), {"level": 0.25}).mean().item()
    (('synthesis',), 0.25)
    >>> unregister_method("flat")
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import numbers
import pkgutil
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass
from typing import Any, Protocol

import torch

from ..core.checks import check_size, is_integer
from ..core.errors import InputError, OttexError
from ..core.progress import Callback, TqdmProgress
from ..image.color import color_mode
from ..image.color import preserve_color as keep_content_colours
from ..image.io import ImageLike, as_image

__all__ = [
    "SYNTHESIS",
    "TRANSFER",
    "TASKS",
    "Options",
    "OptionSpec",
    "option",
    "option_specs",
    "option_values",
    "settings_digest",
    "jsonable",
    "Method",
    "SynthesizeFn",
    "TransferFn",
    "register_method",
    "unregister_method",
    "get_method",
    "list_methods",
    "label_number",
    "parse_ints",
    "parse_bool",
    "BOOL_WORDS",
    "parse_floats",
]

SYNTHESIS = "synthesis"
TRANSFER = "transfer"
TASKS = (SYNTHESIS, TRANSFER)
_TASK_WORDS = {SYNTHESIS: "texture synthesis", TRANSFER: "style transfer"}


# ----------------------------------------------------------------------------------------------
# Options


@dataclass(frozen=True)
class OptionSpec:
    """What a front end needs to know about one option field.

    Attributes:
        name: the field's name (also the keyword of :meth:`Method.make_options`).
        help: one line of help.
        default: the field's default (None when it has a factory).
        type: the field's annotation, as written (``"float | None"``; a class by its name).
        choices: allowed values, if a closed set.
        parse: converts a command-line string to the value (default: by ``type``).
        metavar: placeholder in help texts.
        tasks: the tasks the option applies to.
        cli: offered on the command line.
        flag: the command-line flag (default ``--name-with-dashes``).
        aliases: former keyword names, still accepted with a deprecation warning.
        deprecated_flags: former flags, still accepted for one release with a warning.
        kind: ``"mask"`` for a label-map input, ``"flag"`` for an on/off switch, else None.
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
    aliases: tuple[str, ...] = ()
    deprecated_flags: tuple[str, ...] = ()
    kind: str | None = None

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def kinds(self) -> tuple[str, ...]:
        """The alternatives of :attr:`type`: ``("float", "None")`` for ``"float | None"``."""
        return tuple(k.strip() for k in self.type.split("|"))


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
    aliases: Sequence[str] = (),
    deprecated_flags: Sequence[str] = (),
    kind: str | None = None,
) -> Any:
    """A dataclass field of a method's options, with what the CLI and other front ends need to offer it.

    Args:
        default: the default value.
        help: one line of help (no defaults in it: front ends add them).
        default_factory: instead of ``default``, for mutable defaults.
        choices: the allowed values.
        parse: command-line string -> value (e.g. comma-separated integers).
        metavar: placeholder in help texts.
        tasks: the tasks it applies to (default: all the method does).
        cli: offer it on the command line (False for library-only objects).
        flag: the command-line flag, if not ``--name-with-dashes``.
        aliases: former keyword names (accepted with a deprecation warning).
        deprecated_flags: former command-line flags (accepted for one release with a warning).
        kind: ``"mask"`` (a label-map file) or ``"flag"`` (an on/off switch).
    """
    meta = {"help": help, "choices": None if choices is None else tuple(choices), "parse": parse,
            "metavar": metavar, "tasks": tuple(tasks), "cli": cli, "flag": flag, "aliases": tuple(aliases),
            "deprecated_flags": tuple(deprecated_flags), "kind": kind}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={"ottex": meta})
    return dataclasses.field(default=default, metadata={"ottex": meta})


@dataclass(frozen=True)
class Options:
    """Base class of the methods' options dataclasses (frozen; validate in ``__post_init__``)."""

    def replace(self, **changes: Any) -> Options:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


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


def option_specs(options: type | Options, task: str | None = None) -> list[OptionSpec]:
    """The :class:`OptionSpec` of every field of an options dataclass (those of ``task`` only, if given)."""
    specs = []
    for f in dataclasses.fields(options):
        meta = dict(f.metadata.get("ottex") or {"help": ""})
        default = None if f.default is MISSING else f.default
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        spec = OptionSpec(name=f.name, default=default, type=kind, **meta)
        if task is None or task in spec.tasks:
            specs.append(spec)
    return specs


# ----------------------------------------------------------------------------------------------
# Methods


class SynthesizeFn(Protocol):
    """The synthesis callable of a method."""

    def __call__(
        self, style: ImageLike | Sequence[ImageLike], size: tuple[int, int], options: Any, *, batch: int,
        seed: int | None, device: str | torch.device | None, weights_dir: str | None, callback: Callback | None,
    ) -> torch.Tensor: ...


class TransferFn(Protocol):
    """The style-transfer callable of a method."""

    def __call__(
        self, content: ImageLike, style: ImageLike, size: int | tuple[int, int] | None, options: Any, *,
        seed: int | None,
        device: str | torch.device | None, weights_dir: str | None, callback: Callback | None,
    ) -> torch.Tensor: ...


#: The words a yes/no option takes as text (case-insensitive): the web form, manifest rows and bench variants.
BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def parse_bool(value: object) -> bool:
    """A yes/no option's value: a bool as it is, or one of :data:`BOOL_WORDS` (any case).

    Raises:
        ValueError: with what the text should be, for the front end's message.

    Example:
        >>> parse_bool("No"), parse_bool(True)
        (False, True)
    """
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in BOOL_WORDS:
        raise ValueError("true or false (also yes/no, on/off, 1/0)")
    return BOOL_WORDS[word]


def _check_value_type(spec: OptionSpec, value: Any, method: str) -> None:
    """Refuse a value of the wrong kind for a yes/no, integer or number option (a string "no" for a yes/no option
    was taken as true; "2" for an integer failed deep inside with a comparison error).

    Raises:
        InputError: naming the option, what it takes and what it got.
    """
    if value is None and "None" in spec.kinds:
        return
    plain = set(spec.kinds) - {"None"}
    ok = {  # numpy's scalars count (numbers.Integral / Real; numpy.bool_ for yes/no)
        "bool": lambda v: isinstance(v, bool) or (type(v).__module__ == "numpy" and "bool" in type(v).__name__),
        "int": is_integer,
        "float": lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool),
    }
    if len(plain) == 1 and (kind := next(iter(plain))) in ok and not ok[kind](value):
        what = {"bool": "true or false", "int": "an integer", "float": "a number"}[kind]
        raise InputError(f"option '{spec.name}' of method '{method}' takes {what}, got {value!r}", option=spec.name)


def parse_ints(text: str) -> tuple[int, ...]:
    """``"100,40"`` -> ``(100, 40)`` (the command-line form of per-scale and per-level settings).

    Raises:
        ValueError: with what the text should be, for the front end's message.
    """
    try:
        return tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise ValueError("comma-separated integers") from None


def parse_floats(text: str) -> tuple[float, ...]:
    """``"0.7,0.3"`` -> ``(0.7, 0.3)``.

    Raises:
        ValueError: with what the text should be, for the front end's message.
    """
    try:
        return tuple(float(v) for v in str(text).split(","))
    except ValueError:
        raise ValueError("a number or comma-separated numbers") from None


def label_number(x: float) -> str:
    """A number for file names: ``0.6`` -> ``"0p6"``."""
    return f"{x:g}".replace(".", "p")


class Method:
    """One synthesis / style-transfer method: what it is, what it takes, how to run it.

    Args:
        name: registry name (``--method NAME``).
        description: one line.
        options: its options dataclass (fields made with :func:`option`).
        synthesize: the synthesis callable (see the module docstring), or None.
        transfer: the style-transfer callable, or None.
        reports_loss: its progress events carry a loss (a loss plot makes sense).
        label: ``label(options, task)``: a short file-name-safe summary of the
            settings for automatic output names (default: the name).
        content_label: ``content_label(options)``: the content trade-off setting
            in transfer output names (e.g. ``"cs0p6"``).
        module: module to import to get this method registered (default: the
            module of its callables; the benchmark's child processes import it).
    """

    def __init__(
        self,
        name: str,
        description: str,
        options: type[Options],
        *,
        synthesize: SynthesizeFn | None = None,
        transfer: TransferFn | None = None,
        reports_loss: bool = False,
        label: Callable[[Any, str], str] | None = None,
        content_label: Callable[[Any], str] | None = None,
        module: str | None = None,
    ) -> None:
        if synthesize is None and transfer is None:
            raise InputError(f"method '{name}' needs a synthesize or a transfer callable")
        if not dataclasses.is_dataclass(options):
            raise InputError(f"the options of method '{name}' must be a dataclass")
        self.name = name
        self.description = description
        self.options = options
        self._synthesize = synthesize
        self._transfer = transfer
        self.reports_loss = reports_loss
        self._label = label
        self._content_label = content_label
        self.module = module or (synthesize or transfer).__module__

    def __repr__(self) -> str:
        return f"Method({self.name!r}, tasks={self.tasks})"

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks it does, among :data:`TASKS`."""
        return tuple(t for t, fn in ((SYNTHESIS, self._synthesize), (TRANSFER, self._transfer)) if fn is not None)

    def supports(self, task: str) -> bool:
        return task in self.tasks

    def check_task(self, task: str) -> None:
        """Raise :class:`InputError` unless the method does ``task``."""
        if task not in TASKS:
            raise InputError(f"unknown task '{task}' (choose from {', '.join(TASKS)})")
        if not self.supports(task):
            raise InputError(f"method '{self.name}' does not do {_TASK_WORDS[task]}", option="method")

    def option_specs(self, task: str | None = None) -> list[OptionSpec]:
        """Its options (those of ``task`` only, if given)."""
        return option_specs(self.options, task)

    def make_options(self, values: Mapping[str, Any] | Any = None, /, **changes: Any) -> Any:
        """Its options object from keyword values (defaults for the others).

        ``values`` may already be an options object (``changes`` are then
        applied to it) or a mapping. Former names of fields (their ``aliases``)
        are accepted with a :class:`DeprecationWarning`.

        Raises:
            InputError: an unknown option, or a value its options refuse.
        """
        return self._options(values, changes, None, stacklevel=3)

    def _options(self, values: Mapping[str, Any] | Any, changes: Mapping[str, Any], task: str | None,
                 stacklevel: int) -> Any:
        """:meth:`make_options`; with a ``task``, an option given that applies only to the other task is an error
        (it was ignored: ``content_strength`` in a synthesis, ``tile`` in a transfer), as on the command line."""
        if isinstance(values, self.options):
            base, values = values, {}
        elif values is None or isinstance(values, Mapping):
            base = None
        else:
            raise InputError(f"options of method '{self.name}' must be a {self.options.__name__} or a mapping, "
                             f"got {type(values).__name__}")
        given = {**(values or {}), **changes}
        specs = {s.name: s for s in self.option_specs()}
        alias_of = {a: s.name for s in specs.values() for a in s.aliases}
        kwargs = {}
        for key, value in given.items():
            if key in alias_of:
                warnings.warn(f"option '{key}' of method '{self.name}' is deprecated; use '{alias_of[key]}'",
                              DeprecationWarning, stacklevel=stacklevel)
                key = alias_of[key]
            if key not in specs:
                raise InputError(f"method '{self.name}' has no option '{key}' (its options: {', '.join(specs)})",
                                 option=key)
            if task is not None and task not in specs[key].tasks:
                raise InputError(f"option '{key}' of method '{self.name}' does not apply to {task} (only to "
                                 f"{', '.join(specs[key].tasks)})", option=key)
            _check_value_type(specs[key], value, self.name)
            kwargs[key] = value
        try:
            return dataclasses.replace(base, **kwargs) if base is not None else self.options(**kwargs)
        except TypeError as exc:  # e.g. a missing required field
            raise InputError(f"options of method '{self.name}': {exc}") from None

    def label(self, options: Any, task: str) -> str:
        """A short summary of the settings for automatic output names."""
        return self._label(options, task) if self._label is not None else self.name

    def content_label(self, options: Any) -> str:
        """The content trade-off setting, for automatic transfer output names (may be empty)."""
        return self._content_label(options) if self._content_label is not None else ""

    def synthesize(
        self,
        style: ImageLike | Sequence[ImageLike],
        size: int | Sequence[int] = (512, 512),
        options: Any = None,
        *,
        batch: int = 1,
        seed: int | None = 0,
        device: str | torch.device | None = None,
        weights_dir: str | None = None,
        callback: Callback | None = None,
    ) -> torch.Tensor:
        """Make ``batch`` textures like ``style`` of ``size=(H, W)`` (an int: a square); returns
        ``(batch, 3, H, W)`` in ``[0, 1]``.

        ``options`` is an options object, a mapping of option values, or None (defaults).

        Raises:
            InputError: the method does no synthesis, or an option or input is bad.
            Cancelled: ``callback`` asked the run to stop.
        """
        self.check_task(SYNTHESIS)
        opts = options if isinstance(options, self.options) else self._options(options, {}, SYNTHESIS, stacklevel=4)
        if batch < 1:
            raise InputError(f"batch must be at least 1, got {batch}", option="batch")
        return self._synthesize(style, check_size(size), opts, batch=batch, seed=seed, device=device,
                                weights_dir=None if weights_dir is None else str(weights_dir), callback=callback)

    def transfer(
        self,
        content: ImageLike,
        style: ImageLike,
        size: int | tuple[int, int] | None = None,
        options: Any = None,
        *,
        preserve_color: bool | str = False,
        seed: int | None = 0,
        device: str | torch.device | None = None,
        weights_dir: str | None = None,
        callback: Callback | None = None,
    ) -> torch.Tensor:
        """Repaint ``content`` with the style of ``style``; returns ``(1, 3, H, W)`` in ``[0, 1]``.

        Args:
            content, style: images (paths or tensors).
            size: long side of the output (None: the content's), the aspect the content's; or ``(H, W)``.
            options: an options object, a mapping of option values, or None.
            preserve_color: keep the content's colours afterwards: True or
                ``"full"``, or ``"luminance"`` (:func:`ottex.image.color.preserve_color`, with ``seed``).
            seed, device, weights_dir, callback: as for :meth:`synthesize`.
        """
        self.check_task(TRANSFER)
        colors = color_mode(preserve_color)
        opts = options if isinstance(options, self.options) else self._options(options, {}, TRANSFER, stacklevel=4)
        out = self._transfer(content, style, size, opts, seed=seed, device=device,
                             weights_dir=None if weights_dir is None else str(weights_dir), callback=callback)
        if colors is not None:
            out = keep_content_colours(out, as_image(content, out.device, "content"), seed=seed, mode=colors)
        return out

    # Classic keyword-argument entry points (the registry of ottex 0.1): ``fn(style, size, *, seed, device,
    # weights_dir, progress, **options)`` and ``fn(content, style, size=None, *, ...)``.

    def synthesize_fn(self) -> Callable[..., torch.Tensor]:
        """``fn(style, size, *, seed, device, weights_dir, progress, batch, **options)``."""
        self.check_task(SYNTHESIS)

        def fn(style: Any, size: int | Sequence[int] = (512, 512), *, seed: int | None = 0, device: Any = None,
               weights_dir: Any = None, progress: bool = False, batch: int = 1, **options: Any) -> torch.Tensor:
            with TqdmProgress(f"ottex synth ({self.name})", disable=not progress) as bar:
                return self.synthesize(style, size, options, batch=batch, seed=seed,
                                       device=device, weights_dir=weights_dir, callback=bar if progress else None)

        return fn

    def transfer_fn(self) -> Callable[..., torch.Tensor]:
        """``fn(content, style, size=None, *, seed, device, weights_dir, progress, preserve_color, **options)``."""
        self.check_task(TRANSFER)

        def fn(content: Any, style: Any, size: int | None = None, *, seed: int | None = 0, device: Any = None,
               weights_dir: Any = None, progress: bool = False, preserve_color: bool | str = False,
               **options: Any) -> torch.Tensor:
            with TqdmProgress(f"ottex style ({self.name})", disable=not progress) as bar:
                return self.transfer(content, style, size, options, seed=seed, device=device,
                                     weights_dir=weights_dir, preserve_color=preserve_color,
                                     callback=bar if progress else None)

        return fn


# ----------------------------------------------------------------------------------------------
# Registry

_REGISTRY: dict[str, Method] = {}
_discovered = False
ENTRY_POINT_GROUP = "ottex.methods"


def register_method(method: Method, *, replace: bool = False) -> Method:
    """Add ``method`` to the registry (where it is defined, at import); returns it.

    Raises:
        InputError: another method has that name (unless ``replace``).
    """
    old = _REGISTRY.get(method.name)
    if old is not None and old is not method and not replace and old.module != method.module:
        raise InputError(f"a method named '{method.name}' is already registered (from {old.module})")
    _REGISTRY[method.name] = method
    return method


def unregister_method(name: str) -> None:
    """Remove a method from the registry (no error if it is not there)."""
    _REGISTRY.pop(name, None)


def _discover() -> None:
    """Import the method modules of this package and of installed plugins (once)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    package = importlib.import_module(__package__)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__package__}.{info.name}")
    from importlib.metadata import entry_points  # noqa: PLC0415

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break ottex
            warnings.warn(f"could not load the ottex method plugin '{ep.name}' ({ep.value}): {exc}", stacklevel=2)


def _builtin_rank(method: Method, names: list[str]) -> int:
    """Position of a method's module among this package's modules ``names``, or after them all."""
    prefix = f"{__package__}."
    short = method.module[len(prefix):] if method.module.startswith(prefix) else None
    return names.index(short) if short in names else len(names)


def list_methods(task: str | None = None) -> list[Method]:
    """The registered methods (those doing ``task`` only, if given): ottex's own in the order of their modules,
    whichever was imported first, then the others in registration order."""
    _discover()
    names = sorted(info.name for info in pkgutil.iter_modules(importlib.import_module(__package__).__path__))
    ranked = sorted(enumerate(_REGISTRY.values()), key=lambda im: (_builtin_rank(im[1], names), im[0]))
    return [m for _, m in ranked if task is None or m.supports(task)]


def get_method(name: str, task: str | None = None, module: str | None = None) -> Method:
    """The method registered as ``name`` (checked to do ``task``, if given).

    Args:
        name: the method's name.
        task: a task it must do.
        module: a module to import first if the method is not registered yet
            (:attr:`Method.module`, e.g. in a child process).

    Raises:
        InputError: no such method, or it does not do ``task``.
    """
    _discover()
    if name not in _REGISTRY and module is not None:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise OttexError(f"cannot import method module '{module}': {exc}") from None
    method = _REGISTRY.get(name)
    if method is None:
        known = ", ".join(m.name for m in list_methods(task))
        raise InputError(f"unknown method '{name}' (choose from {known})", option="method")
    if task is not None:
        method.check_task(task)
    return method
