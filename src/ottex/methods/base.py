"""The contract every method fulfils, and the registry the CLI, the benchmark and later front ends read.

A method is a :class:`Method`: a name, a one-line description, the tasks it
does (:data:`SYNTHESIS`, :data:`TRANSFER`), an options dataclass whose fields
carry their help, choices, bounds and defaults (:mod:`ottex.methods.options`), and one callable per
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
    >>> from ottex.methods.options import Options, option
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
import importlib
import pkgutil
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import torch

from ..core.checks import check_batch, check_size
from ..core.errors import InputError, OttexError
from ..core.progress import Callback
from ..image.color import color_mode
from ..image.color import preserve_color as keep_content_colours
from ..image.io import ImageLike, as_image
from .cost import RunCost, check_run_cost, output_hw
from .options import SYNTHESIS, TASK_WORDS, TASKS, TRANSFER, Options, OptionSpec, make_options, option_specs

__all__ = [
    "SYNTHESIS",
    "TRANSFER",
    "TASKS",
    "Method",
    "SynthesizeFn",
    "TransferFn",
    "register_method",
    "unregister_method",
    "get_method",
    "list_methods",
]


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


class Method:
    """One synthesis / style-transfer method: what it is, what it takes, how to run it.

    Args:
        name: registry name (``--method NAME``).
        description: one line.
        options: its options dataclass (fields made with :func:`~ottex.methods.options.option`).
        synthesize: the synthesis callable (see the module docstring), or None.
        transfer: the style-transfer callable, or None.
        reports_loss: its progress events carry a loss (a loss plot makes sense).
        label: ``label(options, task)``: a short file-name-safe summary of the
            settings for automatic output names (default: the name).
        content_label: ``content_label(options)``: the content trade-off setting
            in transfer output names (e.g. ``"cs0p6"``).
        module: module to import to get this method registered (default: the
            module of its callables; the benchmark's child processes import it).
        cost: its measured peak memory and time against the output size (:class:`~ottex.methods.cost.RunCost`;
            None: :data:`~ottex.methods.cost.DEFAULT_COST`), or ``cost(options, task)`` returning one where the
            options change it (e.g. ``ot``'s ``quality="best"``); read by
            :func:`~ottex.methods.cost.check_run_cost` before every run (:meth:`run_cost`).
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
        cost: RunCost | Callable[[Any, str], RunCost] | None = None,
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
        self.cost = cost

    def __repr__(self) -> str:
        return f"Method({self.name!r}, tasks={self.tasks})"

    def run_cost(self, options: Any = None, task: str = SYNTHESIS) -> RunCost | None:
        """The cost model of a run with ``options`` (an options object, or None: the defaults) for ``task``."""
        if self.cost is None or isinstance(self.cost, RunCost):
            return self.cost
        opts = options if isinstance(options, self.options) else self.make_options(options, task)
        return self.cost(opts, task)

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
            raise InputError(f"method '{self.name}' does not do {TASK_WORDS[task]}", option="method")

    def option_specs(self, task: str | None = None) -> list[OptionSpec]:
        """Its options (those of ``task`` only, if given)."""
        return option_specs(self.options, task)

    def make_options(self, values: Mapping[str, Any] | Options | None = None, /, task: str | None = None,
                     **changes: Any) -> Any:
        """Its options object from values given as text or Python values (:func:`~ottex.methods.options.make_options`;
        ``changes`` are applied to an options object given as ``values``).

        Raises:
            InputError: an unknown option (or one of the other ``task``), or a value its options refuse.
        """
        if isinstance(values, self.options):
            return dataclasses.replace(values, **changes) if changes else values
        return make_options(self.options, {**(values or {}), **changes}, task=task, method=self.name)

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
        opts = self.make_options(options, SYNTHESIS)
        check_batch(batch)
        size = check_size(size)
        check_run_cost(self, size, batch, device, options=opts)  # what cannot fit is refused before any work
        out = self._synthesize(style, size, opts, batch=batch, seed=seed, device=device,
                               weights_dir=None if weights_dir is None else str(weights_dir), callback=callback)
        return self._with_settings(out, SYNTHESIS, style, None, size, opts, batch, seed, False)

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
        opts = self.make_options(options, TRANSFER)
        # what cannot fit is refused before any work
        check_run_cost(self, output_hw(size, content), 1, device, options=opts, task=TRANSFER)
        out = self._transfer(content, style, size, opts, seed=seed, device=device,
                             weights_dir=None if weights_dir is None else str(weights_dir), callback=callback)
        if colors is not None:
            out = keep_content_colours(out, as_image(content, out.device, "content"), seed=seed, mode=colors)
        return self._with_settings(out, TRANSFER, style, content, size, opts, 1, seed, colors or False)

    def _with_settings(self, out: torch.Tensor, task: str, style: Any, content: Any, size: Any, options: Any,
                       batch: int, seed: int | None, preserve_color: bool | str) -> torch.Tensor:
        """``out`` with the record of how it was made as its ``ottex_settings`` attribute, the record the
        executor writes (:func:`~ottex.methods.request.job_settings`): :func:`ottex.image.io.save_image` stores it
        when given ``out`` itself (a tensor computed from ``out`` is another image, with no record)."""
        from .request import Job, job_settings  # noqa: PLC0415 - request imports this module

        job = Job(self.name, task, style=style, content=content, size=size, options=options, batch=batch,
                  seed=seed, preserve_color=preserve_color)
        out.ottex_settings = {**job_settings(job, options, tuple(out.shape[-2:]), 0, out.device), "command": "python"}
        return out


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
