"""The page's form, made from the method registry, and the settings of a run, checked and turned into a job.

:func:`form_schema` describes the tasks, the registered methods and every option they offer on the command line
(name, widget, default, choices, help): the page builds its form from it, so a method registered anywhere shows
up with its options and nothing here names one. :func:`parse_settings` checks what the page (or any client)
posts, with the same conversions and checks as the command line, and returns :class:`RunSettings`: the settings
as recorded with each result (JSON; posting them again reproduces the image) and the executor's
:class:`~ottex.exec.local.Job`.

Example:
    >>> schema = form_schema()
    >>> [t["name"] for t in schema["tasks"]]
    ['synthesis', 'transfer', 'color']
    >>> ot = next(m for m in schema["methods"] if m["name"] == "ot")
    >>> next(o for o in ot["options"] if o["name"] == "content_strength")["default"]
    0.7
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import __version__
from ...core.checks import MIN_SIDE, check_int
from ...core.errors import InputError
from ...image.color import COLOR_MODES, color_mode, color_transfer
from ...methods.base import SYNTHESIS, TRANSFER, Method, get_method, list_methods
from ...methods.options import OptionSpec, jsonable
from ...methods.request import Job, make_job
from .uploads import NotFound, UploadStore

if TYPE_CHECKING:
    from ...video.run import VideoJob

__all__ = ["COLOR", "TASKS", "RunSettings", "form_schema", "parse_settings", "DEFAULT_SIZE", "MAX_SEED",
           "CONTAINERS", "CLIP_SETTINGS"]

#: Colour transfer: no method of the registry, the colour distribution of one image given to another.
COLOR = "color"
TASKS = (SYNTHESIS, TRANSFER, COLOR)
TASK_LABELS = {SYNTHESIS: "Texture", TRANSFER: "Style transfer", COLOR: "Colour transfer"}
DEFAULT_SIZE = 512
MAX_SEED = 2**53 - 1  # what JavaScript numbers hold exactly
#: The rotations of colour transfer: the library's default, and the command line's help.
COLOR_ROTATIONS = inspect.signature(color_transfer).parameters["rotations"].default
COLOR_ROTATIONS_HELP = "random rotations of the colour space"
#: The containers of a clip's result (the first the default) and their content types.
CONTAINERS = {"mp4": "video/mp4", "webm": "video/webm"}
#: Settings of a clip's style transfer only (``ottex video``'s ``--temporal``, ``--blend``, ``--frames``, and the
#: result's container).
CLIP_SETTINGS = ("temporal", "blend", "frames", "container")


def _widget(spec: OptionSpec) -> str:
    base = spec.type.split(" ")[0].split("[")[0]
    if spec.kind == "mask":
        return "mask"
    if base == "bool":
        return "bool"
    if spec.choices:
        return "choice"
    if spec.parse is None and base in ("int", "float"):
        return base
    return "text"


def _json_value(value: Any) -> Any:
    """A setting as JSON: tuples as lists, paths as strings."""
    if isinstance(value, (tuple, list)):
        return [_json_value(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _default_text(spec: OptionSpec, widget: str) -> Any:
    if widget == "text" and isinstance(spec.default, (tuple, list)):
        return ",".join(str(v) for v in spec.default)
    return _json_value(spec.default)


def form_options(method: Method) -> list[dict]:
    """The options of ``method`` the page offers (those of the command line), in the order of its dataclass."""
    out = []
    for spec in method.option_specs():
        if not spec.cli:
            continue
        widget = _widget(spec)
        out.append({
            "name": spec.name,
            "label": spec.name.replace("_", " "),
            "help": spec.help,
            "widget": widget,
            "default": _default_text(spec, widget),
            "choices": list(spec.choices) if spec.choices else None,
            "optional": "None" in spec.type,
            "metavar": spec.metavar,
            "tasks": list(spec.tasks),
            "flag": spec.cli_flag,
        })
    return out


def _mixes(method: Method) -> bool:
    """A method with a ``mix`` option takes several style examples at once (as on the command line)."""
    return any(s.name == "mix" for s in method.option_specs(SYNTHESIS))


def result_suffix(clip: bool, container: object = None) -> str:
    """The suffix of a run's result: ``.png``, or for a clip its container's (``.mp4`` unless ``container`` names
    another of :data:`CONTAINERS`)."""
    if not clip:
        return ".png"
    return f".{container if container in CONTAINERS else next(iter(CONTAINERS))}"


def clip_schema() -> dict:
    """The settings of a clip's style transfer for the page: the temporal modes of ``ottex video --temporal``
    (the first the default), the blend weight's bounds and its default in the blend mode, the result's containers
    (the first the default)."""
    from ...video.run import DEFAULT_BLEND, TEMPORAL_MODES  # noqa: PLC0415 - the video package, only here

    return {"temporal": list(TEMPORAL_MODES), "blend": {"default": DEFAULT_BLEND, "low": 0.0, "high": 1.0},
            "containers": list(CONTAINERS)}


def form_schema(limits: Mapping[str, Any] | None = None) -> dict:
    """Tasks, methods and options for the page (JSON). ``limits`` (upload and output bounds) are passed on."""
    methods = []
    for m in list_methods():
        methods.append({"name": m.name, "description": m.description, "tasks": list(m.tasks),
                        "mixes": SYNTHESIS in m.tasks and _mixes(m), "reports_loss": m.reports_loss,
                        "options": form_options(m)})
    names = [m["name"] for m in methods]
    return {
        "version": __version__,
        "tasks": [{"name": t, "label": TASK_LABELS[t]} for t in TASKS],
        "methods": methods,
        "default_method": "ot" if "ot" in names else (names[0] if names else None),
        "preserve_color": list(COLOR_MODES),
        "color": {"rotations": {"default": COLOR_ROTATIONS, "help": COLOR_ROTATIONS_HELP}},
        "defaults": {"width": DEFAULT_SIZE, "height": DEFAULT_SIZE, "size": DEFAULT_SIZE, "seed": 0},
        "limits": dict(limits or {}),
        "clip": clip_schema(),
    }


# ----------------------------------------------------------------------------------------------------------
# Settings of a run


@dataclass
class RunSettings:
    """The checked settings of one run (what is recorded with its result).

    Attributes:
        task: ``"synthesis"``, ``"transfer"`` or ``"color"``.
        method: the registered method (None for colour transfer).
        style: upload ids of the style image(s) (colour transfer: the image whose colours are taken).
        content: upload id of the content image (colour transfer: the image recoloured).
        width, height: synthesis: the output size.
        size: style transfer: the output's long side (None: the content's).
        seed: random seed.
        preserve_color: style transfer: ``"full"``, ``"luminance"`` or None.
        rotations: colour transfer: random rotations of the colour space.
        options: the method's options as given (JSON values; masks as upload ids).
        values: the same, converted (tuples, mask paths): what the method's options are made from.
        clip: the content is a clip (an upload of a video): the run is a video job (:meth:`video_job`).
        temporal, blend, frames: a clip's temporal mode, blend weight (None: the mode's default) and frame range
            (``"START:STOP"``; None: all), as ``ottex video``'s ``--temporal``, ``--blend``, ``--frames``.
        container: a clip's result: ``"mp4"`` or ``"webm"`` (:data:`CONTAINERS`).
    """

    task: str
    method: str | None
    style: list[str]
    content: str | None = None
    width: int | None = None
    height: int | None = None
    size: int | None = None
    seed: int = 0
    preserve_color: str | None = None
    rotations: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    clip: bool = False
    temporal: str | None = None
    blend: float | None = None
    frames: str | None = None
    container: str | None = None

    @property
    def suffix(self) -> str:
        """The result's file suffix: ``.png``, or a clip's container (:func:`result_suffix`)."""
        return result_suffix(self.clip, self.container)

    def to_json(self) -> dict:
        """The settings as JSON: posting them to the server again makes the same image."""
        out: dict[str, Any] = {"task": self.task}
        if self.method is not None:
            out["method"] = self.method
        out["style"] = list(self.style)
        if self.content is not None:
            out["content"] = self.content
        if self.task == SYNTHESIS:
            out.update(width=self.width, height=self.height)
        elif self.task == TRANSFER:
            out.update(size=self.size, preserve_color=self.preserve_color)
            if self.clip:
                out.update(temporal=self.temporal, blend=self.blend, frames=self.frames, container=self.container)
        else:
            out["rotations"] = self.rotations
        out["seed"] = self.seed
        if self.method is not None:
            out["options"] = dict(self.options)
        return out

    def label(self) -> str:
        """A short description: ``"ot texture 512x512, seed 0"``."""
        if self.task == SYNTHESIS:
            what = f"{self.method} texture {self.width}x{self.height}"
        elif self.task == TRANSFER:
            kind = "clip style transfer" if self.clip else "style transfer"
            what = f"{self.method} {kind}" + (f", {self.size} px" if self.size else "")
        else:
            what = f"colour transfer, {self.rotations} rotations"
        return f"{what}, seed {self.seed}"

    def job(self, uploads: UploadStore, output: Path | None = None) -> Job:
        """The executor's job for a method run (built and checked by :func:`make_job`), writing ``output``."""
        if self.method is None:
            raise InputError("colour transfer runs without a method")
        if self.clip:
            raise InputError("the content is a clip: a video job", option="content")
        styles = [str(uploads.path(s)) for s in self.style]
        content = None if self.content is None else str(uploads.path(self.content))
        size = (self.height, self.width) if self.task == SYNTHESIS else self.size
        return make_job(self.task, self.method, style=styles, content=content, size=size, options=self.values,
                        seed=self.seed, preserve_color=self.preserve_color, outputs=[] if output is None else [output],
                        name=self.label())


    def video_job(self, uploads: UploadStore, output: Path | None = None) -> VideoJob:
        """The video job of a style transfer whose content is a clip (built and checked by
        :func:`~ottex.video.run.make_video_job`, as ``ottex video``: the temporal mode, blend and frame range
        too), writing ``output`` (an .mp4 or .webm: :attr:`suffix`) [None: only checked, with an output name in
        the uploads folder that is never written]."""
        from ...video.run import make_video_job  # noqa: PLC0415 - the video extra, only for a clip

        assert self.method is not None and self.content is not None
        check = uploads.folder / f".check-{self.content}{self.suffix}"
        return make_video_job(uploads.path(self.content), uploads.path(self.style[0]), self.method, size=self.size,
                              options=self.values, seed=self.seed, preserve_color=self.preserve_color,
                              temporal=self.temporal or "consistent", blend=self.blend, frames=self.frames,
                              output=output if output is not None else check)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _upload(uploads: UploadStore, upload_id: Any, what: str) -> Path:
    """The file of an upload named in the settings (an unknown id is a bad setting, not a missing page)."""
    try:
        return uploads.path(upload_id)
    except NotFound as exc:
        raise InputError(f"{what}: {exc}", option=what) from None


def _ids(value: Any, what: str) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else ([] if _blank(value) else [value])
    if not all(isinstance(v, str) for v in items):
        raise InputError(f"{what} must be upload ids", option=what)
    return list(items)


def parse_settings(data: Any, uploads: UploadStore, max_output_pixels: int | None = None) -> RunSettings:
    """Check the settings of a run as posted (JSON) and return them.

    Expected keys: ``task``; ``method`` (not for colour transfer); ``style`` (upload ids: one, or several for
    a method that mixes examples); ``content`` (an upload id: transfers); ``width``/``height`` (synthesis),
    ``size`` (style transfer: the long side, empty for the content's), ``preserve_color`` (style transfer),
    ``rotations`` (colour transfer); ``seed``; ``options`` (the method's options by name: strings as typed
    in the form or JSON values; a mask is an upload id; an empty value means the default). A style transfer of a
    clip also takes ``temporal``, ``blend``, ``frames`` (as ``ottex video``; checked by its ``make_video_job``)
    and ``container`` (``mp4`` or ``webm``); other runs take none of them.

    Raises:
        InputError: with ``option`` naming the setting at fault, and a message for the page.
    """
    if not isinstance(data, Mapping):
        raise InputError("the settings must be a JSON object")
    known = {"task", "method", "style", "content", "width", "height", "size", "seed", "preserve_color", "rotations",
             "options", *CLIP_SETTINGS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"unknown setting(s): {', '.join(map(str, unknown))[:200]}", option=str(unknown[0]))
    task = data.get("task", SYNTHESIS)
    if task not in TASKS:
        raise InputError(f"unknown task {str(task)[:40]!r} (choose from {', '.join(TASKS)})", option="task")
    seed = 0 if _blank(data.get("seed")) else check_int(data.get("seed"), "seed", 0, MAX_SEED)
    styles = _ids(data.get("style"), "style")
    for s in styles:
        _upload(uploads, s, "style")
        if uploads.info(s).is_clip:
            raise InputError("style: a clip cannot be a style (give an image; a clip is the content of a style "
                             "transfer)", option="style")
    if not styles:
        raise InputError("give a style image" if task != COLOR else "give the image whose colours are taken",
                         option="style")
    content = None if _blank(data.get("content")) else data.get("content")
    if task == SYNTHESIS:
        if content is not None:
            raise InputError("a texture takes no content image (choose style transfer)", option="content")
    else:
        if content is None:
            raise InputError("give a content image" if task == TRANSFER else "give the image to recolour",
                             option="content")
        _upload(uploads, content, "content")
        if task == COLOR and uploads.info(content).is_clip:
            raise InputError("colour transfer takes an image, not a clip (a clip is the content of a style "
                             "transfer)", option="content")
    if content is None or not uploads.info(content).is_clip:
        for name in CLIP_SETTINGS:
            if not _blank(data.get(name)):
                raise InputError(f"{name} applies to a clip (the content of a style transfer), not to an image",
                                 option=name)
    if task == COLOR:
        if len(styles) > 1:
            raise InputError("colour transfer takes the colours of one image", option="style")
        if not _blank(data.get("method")):
            raise InputError("colour transfer has no method", option="method")
        rotations = data.get("rotations")
        rotations = COLOR_ROTATIONS if _blank(rotations) else check_int(rotations, "rotations", 1, 1000)
        info = uploads.info(content)
        _check_pixels(info.width * info.height, max_output_pixels)
        return RunSettings(COLOR, None, styles, content, rotations=rotations, seed=seed)

    method = get_method(data.get("method") or "ot", task)
    specs = {s.name: s for s in method.option_specs(task) if s.cli}
    given = data.get("options") or {}
    if not isinstance(given, Mapping):
        raise InputError("options must be a JSON object of option values", option="options")
    values: dict[str, Any] = {}
    for name, raw in given.items():
        if name not in specs:
            raise InputError(f"method '{method.name}' has no option '{str(name)[:40]}' for "
                             f"{TASK_LABELS[task].lower()}", option=str(name))
        if _blank(raw):
            continue
        values[name] = str(_upload(uploads, raw, name)) if specs[name].kind == "mask" else raw
    checked = method.make_options(values, task)  # the one reading and check of every option (make_options)
    options = {name: raw if specs[name].kind == "mask" else jsonable(getattr(checked, name))
               for name, raw in given.items() if name in values}
    values = {name: getattr(checked, name) for name in values}

    settings = RunSettings(task, method.name, styles, content, seed=seed, options=options, values=values)
    if task == SYNTHESIS:
        settings.width = check_int(_or(data.get("width"), DEFAULT_SIZE), "width", MIN_SIDE)
        settings.height = check_int(_or(data.get("height"), settings.width), "height", MIN_SIDE)
        _check_pixels(settings.width * settings.height, max_output_pixels)
    else:
        if len(styles) > 1:
            raise InputError("style transfer takes one style image", option="style")
        size = data.get("size")
        settings.size = None if _blank(size) else check_int(size, "size", MIN_SIDE)
        info = uploads.info(content)
        settings.clip = info.is_clip
        long_side = max(info.width, info.height)
        scale = (settings.size or long_side) / long_side
        _check_pixels(round(info.width * scale) * round(info.height * scale), max_output_pixels)
        mode = data.get("preserve_color")
        if mode in (True, "true", "on"):
            mode = "full"
        if _blank(mode) or mode in (False, "off", "none"):
            mode = None
        settings.preserve_color = color_mode(mode)
        if settings.clip:
            _clip_settings(settings, data)
    # the whole request checked (make_job: styles, mix, files, size, seed; a clip: make_video_job) before queueing
    if settings.clip:
        vjob = settings.video_job(uploads)
        job = vjob.job
        if settings.frames is not None:  # as make_video_job read them: "START:STOP" within the clip, a number
            settings.frames = f"{vjob.start}:{vjob.stop}"
        if settings.blend is not None:
            settings.blend = vjob.blend
    else:
        job = settings.job(uploads)
    settings.values = {name: getattr(job.options, name) for name in settings.values}
    return settings


def _clip_settings(settings: RunSettings, data: Mapping[str, Any]) -> None:
    """A clip's temporal mode, blend and frame range as given (make_video_job checks them), and its container."""
    temporal, blend, frames, container = (data.get(name) for name in CLIP_SETTINGS)
    settings.temporal = "consistent" if _blank(temporal) else str(temporal)
    settings.blend = None if _blank(blend) else blend
    settings.frames = None if _blank(frames) else str(frames).strip()
    container = next(iter(CONTAINERS)) if _blank(container) else str(container).strip().lower().lstrip(".")
    if container not in CONTAINERS:
        raise InputError(f"container takes {' or '.join(CONTAINERS)}, got '{str(data.get('container'))[:20]}'",
                         option="container")
    settings.container = container


def _or(value: Any, default: Any) -> Any:
    return default if _blank(value) else value


def _check_pixels(pixels: int, limit: int | None) -> None:
    if limit is not None and pixels > limit:
        raise InputError(f"the output would have {pixels / 1e6:.3g} megapixels; this server makes images up to "
                         f"{limit / 1e6:.3g} megapixels", option="size")
