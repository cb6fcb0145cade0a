"""Progress of a run as events: methods report, subscribers (progress bars, loss plots, web pages) watch.

A method creates one :class:`Reporter` per run and calls
:meth:`Reporter.begin_scale` when a scale of its coarse-to-fine pyramid starts,
:meth:`Reporter.step` after every step (a level visit of Optimal Textures, a
loss evaluation, an optimiser step) and :meth:`Reporter.finish` at the end.
Each call sends a :class:`ProgressEvent` to the run's ``callback``. A callback
that returns ``False`` (or raises :class:`~ottex.core.errors.Cancelled`) stops
the run: the method raises :class:`~ottex.core.errors.Cancelled` and returns
nothing, so nothing is written.

Subscribers here: :class:`TqdmProgress` (a progress bar) and
:class:`LossHistory` (the loss records that :func:`ottex.eval.report.plot_history`
plots); :func:`combine_callbacks` lets several watch one run.

Example:
    >>> seen = []
    >>> rep = Reporter("demo", seen.append, sizes=[(8, 8), (16, 16)], steps=[2, 1])
    >>> rep.begin_scale(0); rep.step(loss=1.0); rep.step(loss=0.5)
    >>> rep.begin_scale(1); rep.step(loss=0.2); rep.finish()
    >>> [(e.kind, e.scale, e.step, e.done, e.total) for e in seen]  # doctest: +NORMALIZE_WHITESPACE
    [('scale', 0, 0, 0, 3), ('step', 0, 1, 1, 3), ('step', 0, 2, 2, 3), ('scale', 1, 0, 2, 3),
     ('step', 1, 1, 3, 3), ('done', 1, 1, 3, 3)]
    >>> stop = Reporter("demo", lambda e: e.done < 1, sizes=[(8, 8)], steps=[5])
    >>> stop.begin_scale(0); stop.step()
    Traceback (most recent call last):
    ...
    ottex.core.errors.Cancelled: demo: cancelled by the progress callback
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import Cancelled

__all__ = [
    "ProgressEvent",
    "Callback",
    "Reporter",
    "TqdmProgress",
    "LossHistory",
    "combine_callbacks",
    "run_callbacks",
]


@dataclass(frozen=True)
class ProgressEvent:
    """One report of a running method.

    Attributes:
        method: the method's registry name (``"ot"``, ``"w2"`` ...).
        kind: ``"scale"`` (a scale starts; ``step`` is 0), ``"step"`` (a step
            is done), ``"note"`` (something to tell about the run, in ``note``:
            e.g. the scale ended before its planned steps because the optimiser
            converged, or the layout ``layout="auto"`` chose, before the first
            step) or ``"done"`` (the run finished).
        scale: index of the current scale, 0 = coarsest.
        scales: number of scales.
        size: ``(height, width)`` of the current scale.
        step: steps done at this scale (1-based after a step). L-BFGS may
            evaluate the loss a few times more than planned (line search), so
            ``step`` can exceed ``steps``.
        steps: steps planned at this scale.
        done: steps done in the whole run (never above ``total``).
        total: steps planned in the whole run.
        unit: what a step is (``"level"``, ``"eval"``, ``"step"``).
        loss: the loss after this step, for methods that have one.
        parts: named terms of the loss (e.g. STROTSS: content, remd, moment, palette).
        image: the current image ``(B, 3, h, w)``, only when a callback asks
            for images (``wants_image = True``).
        note: the message of a ``"note"`` event (e.g. ``"converged at step 36"``).
        work: the work done in the whole run, in pixel-steps (each step weighted by the pixels of its scale: a
            step at 1024 px costs about 16 at 256 px), for honest times left; 0 when not reported.
        work_total: the work planned in the whole run, in pixel-steps.
    """

    method: str
    kind: str
    scale: int
    scales: int
    size: tuple[int, int]
    step: int
    steps: int
    done: int
    total: int
    unit: str = "step"
    loss: float | None = None
    parts: Mapping[str, float] = field(default_factory=dict)
    image: torch.Tensor | None = None
    note: str | None = None
    work: float = 0.0
    work_total: float = 0.0

    @property
    def fraction(self) -> float:
        """Share of the run's work done, in ``[0, 1]`` (steps weighted by their pixels when reported)."""
        if self.work_total:
            return self.work / self.work_total
        return self.done / self.total if self.total else 1.0


#: A progress subscriber: called with every event; returning ``False`` asks the run to stop.
#: An object with ``wants_image = True`` also receives the current image.
Callback = Callable[[ProgressEvent], "bool | None"]


class Reporter:
    """What a method uses to report its progress and to learn that it must stop.

    Args:
        method: the method's name, copied into every event.
        callback: the subscriber (None: reporting costs nothing).
        sizes: the size of every scale, coarsest first.
        steps: the steps planned at every scale.
        unit: what a step is, for display.
    """

    def __init__(
        self,
        method: str,
        callback: Callback | None,
        sizes: Sequence[tuple[int, int]],
        steps: Sequence[int],
        unit: str = "step",
    ) -> None:
        self.method = method
        self.callback = callback
        self.sizes = [tuple(s) for s in sizes]
        self.steps = list(steps)
        self.unit = unit
        self.total = sum(self.steps)
        self._area = [float(h * w) for h, w in self.sizes]
        self.work_total = sum(a * n for a, n in zip(self._area, self.steps))
        self.scale = 0
        self.step_in_scale = 0
        self.done = 0
        self._done_before = 0

    @property
    def wants_image(self) -> bool:
        """Whether the callback wants the current image with each event (pass it to :meth:`step` only then)."""
        return bool(getattr(self.callback, "wants_image", False))

    def begin_scale(self, scale: int) -> None:
        """Scale ``scale`` starts (sends a ``"scale"`` event)."""
        self.scale = scale
        self.step_in_scale = 0
        self._done_before = sum(self.steps[:scale])
        self.done = self._done_before
        self._emit("scale")

    def step(
        self,
        *,
        loss: float | None = None,
        parts: Mapping[str, float] | None = None,
        image: torch.Tensor | Callable[[], torch.Tensor] | None = None,
    ) -> None:
        """One step is done (sends a ``"step"`` event).

        Args:
            loss: the loss value, if the method has one.
            parts: named loss terms.
            image: the current image, or a function that makes it (called
                only when the callback wants images).

        Raises:
            Cancelled: the callback asked the run to stop.
        """
        self.step_in_scale += 1
        self.done = self._done_before + min(self.step_in_scale, self.steps[self.scale])
        self._emit("step", loss, parts, image)

    def note(self, message: str) -> None:
        """Tell the subscribers something about the run (sends a ``"note"`` event), e.g. why the current scale
        ended before its planned steps: ``"converged at step 36"``."""
        self._emit("note", note=message)

    def finish(self, image: torch.Tensor | Callable[[], torch.Tensor] | None = None) -> None:
        """The run is over (sends a ``"done"`` event)."""
        self.done = self.total
        self._emit("done", image=image)

    def _emit(
        self,
        kind: str,
        loss: float | None = None,
        parts: Mapping[str, float] | None = None,
        image: torch.Tensor | Callable[[], torch.Tensor] | None = None,
        note: str | None = None,
    ) -> None:
        if self.callback is None:
            return
        if image is not None and self.wants_image:
            image = image() if callable(image) else image
            image = image.detach()
        else:
            image = None
        work = sum(a * n for a, n in zip(self._area[:self.scale], self.steps)) + self._area[self.scale] * min(
            self.step_in_scale, self.steps[self.scale])
        event = ProgressEvent(
            method=self.method, kind=kind, scale=self.scale, scales=len(self.sizes), size=self.sizes[self.scale],
            step=self.step_in_scale, steps=self.steps[self.scale], done=self.done, total=self.total, unit=self.unit,
            loss=loss, parts=dict(parts or {}), image=image, note=note,
            work=self.work_total if kind == "done" else work, work_total=self.work_total,
        )
        if self.callback(event) is False:
            raise Cancelled(f"{self.method}: cancelled by the progress callback")


class TqdmProgress:
    """A tqdm progress bar as a subscriber: the steps done, the loss and the scale's size in the postfix, and the
    notes of the run (e.g. "converged at step 36") at its end.

    The bar and its time left follow the run's *work*, each step weighted by the pixels of its scale (the events'
    ``work``), not its step count: the last scales of a coarse-to-fine run hold most of the time (at 8192 px,
    63 of 95 level visits are done in a few minutes and the other 32 take most of an hour), so a count of steps
    would promise far too early an end.

    Args:
        desc: the bar's label.
        disable: make no bar (a no-op subscriber).
        **tqdm_kwargs: passed to :class:`tqdm.auto.tqdm`.

    Use it as a context manager (or call :meth:`close`) so that the bar is
    closed even when the run fails.
    """

    #: The bar's line: share of the work, the bar, elapsed and time left, the steps (with the loss and size).
    BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"

    def __init__(self, desc: str = "ottex", disable: bool = False, **tqdm_kwargs: Any) -> None:
        self.desc = desc
        self.disable = disable
        self.kwargs = tqdm_kwargs
        self.bar = None
        self.notes: list[str] = []
        self.status = ""

    def __call__(self, event: ProgressEvent) -> None:
        if self.disable:
            return
        weighted = event.work_total > 0
        if self.bar is None:
            from tqdm.auto import tqdm  # noqa: PLC0415 - only when a bar is shown

            total = event.work_total if weighted else event.total
            kwargs = {"bar_format": self.BAR_FORMAT, **self.kwargs} if weighted else dict(self.kwargs)
            self.bar = tqdm(total=total, desc=self.desc, unit=event.unit, **kwargs)
        if event.kind == "note" and event.note:
            where = f"scale {event.scale + 1}/{event.scales}: " if event.scales > 1 and event.done > 0 else ""
            self.notes.append(where + event.note)
        position = event.work if weighted else event.done
        if position > self.bar.n:
            self.bar.update(position - self.bar.n)
        parts = [f"{event.done}/{event.total} {event.unit}s"] if weighted else []
        if event.loss is not None:
            h, w = event.size
            parts += [f"loss={event.loss:.4g}", f"size={w}x{h}"]
        if event.kind == "done":
            parts += self.notes  # the bar ends with why the run took fewer steps than planned
        status = ", ".join(parts)
        if status != self.status:
            self.status = status
            self.bar.set_postfix_str(status, refresh=event.kind == "done")
        if event.kind == "done":
            self.close()

    def close(self) -> None:
        """Close the bar (safe to call more than once)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LossHistory:
    """Records the loss of every step: ``{"scale", "size", "eval", "loss", **parts}`` per record.

    Attributes:
        records: the records, in order (the format :func:`ottex.eval.report.plot_history` plots).
    """

    def __init__(self, records: list[dict] | None = None) -> None:
        self.records = records if records is not None else []

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "step" and event.loss is not None:
            self.records.append({"scale": event.scale, "size": event.size, "eval": event.step, "loss": event.loss,
                                 **event.parts})


class _Several:
    def __init__(self, callbacks: Sequence[Callback]) -> None:
        self.callbacks = list(callbacks)
        self.wants_image = any(getattr(c, "wants_image", False) for c in self.callbacks)

    def __call__(self, event: ProgressEvent) -> bool:
        keep_going = True
        for c in self.callbacks:
            if c(event) is False:
                keep_going = False
        return keep_going


def combine_callbacks(*callbacks: Callback | None) -> Callback | None:
    """One callback that calls each of ``callbacks`` (Nones skipped); it asks to stop if any of them does."""
    live = [c for c in callbacks if c is not None]
    if not live:
        return None
    return live[0] if len(live) == 1 else _Several(live)


@contextlib.contextmanager
def run_callbacks(
    callback: Callback | None = None,
    *,
    progress: bool = False,
    desc: str = "ottex",
    history: list[dict] | None = None,
) -> Iterator[Callback | None]:
    """The callback of a run from the classic arguments: ``callback``, a bar when ``progress``, loss records
    appended to ``history`` when it is a list. The bar is closed on exit."""
    bar = TqdmProgress(desc) if progress else None
    try:
        yield combine_callbacks(callback, bar, None if history is None else LossHistory(history))
    finally:
        if bar is not None:
            bar.close()
