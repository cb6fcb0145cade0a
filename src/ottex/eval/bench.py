"""Benchmark: wall time, peak memory and quality of methods x sizes, as a Markdown table and JSON.

Each case (method, size) runs in a fresh child process, so that its peak
memory is its own: the peak resident set size of that process on CPU (which
includes the ~0.3-0.5 GB of the Python/torch runtime), or
``torch.cuda.max_memory_allocated`` on CUDA. Inside the child the method runs
``warmup`` times untimed, then ``repeats`` times timed; the median is reported.
Methods and their options come from the registry (:mod:`ottex.methods`): any
registered method can be benchmarked, with options checked before any child
starts. The last output is scored in the parent with :mod:`ottex.eval.metrics`,
against the style example at the scale the synthesis used
(:func:`~ottex.core.pyramid.style_factor`).

Reference images (e.g. another implementation's published results) are scored
the same way and listed in the same table, so a comparison is one run.

Example:
    >>> rows = run_benchmark("graffiti.jpg", methods=["ot"], sizes=[512])  # doctest: +SKIP
    >>> print(markdown_table(rows))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..core.checks import check_size
from ..core.device import resolve_device
from ..core.errors import InputError, OttexError
from ..core.files import atomic_output
from ..core.pyramid import content_output_size, crop_to
from ..core.resample import resize
from ..image.io import load_image, save_image
from ..methods.base import SYNTHESIS, TRANSFER, Method, get_method, list_methods
from ..methods.options import parse_value, unbracket, unquote
from .metrics import (
    DEFAULT_MEASURE_LAYERS,
    content_distance,
    measuring_network,
    structure_scores,
    style_at_output_scale,
    style_distance_per_layer,
)

#: The network-free columns of a synthesis' row (:func:`~ottex.eval.metrics.structure_scores`).
STRUCTURE_COLUMNS = ("patch", "orientation", "autocorr")

__all__ = [
    "COMMAND_PLACEHOLDERS",
    "BenchRecord",
    "run_case",
    "run_benchmark",
    "score_reference",
    "markdown_table",
    "bench_sheet",
    "write_json",
    "machine_name",
    "resolve_methods",
    "parse_sizes",
    "parse_variant",
    "variant_options",
]


@dataclass
class BenchRecord:
    """One row of the benchmark table (the JSON record has these keys)."""

    method: str
    size: int
    seconds: float | None  # median wall time; None for a reference image
    peak_mem_mb: float | None
    style_distance: float
    style_distance_layers: dict[str, float] = field(default_factory=dict)
    content_distance: float | None = None
    structure: dict[str, float] = field(default_factory=dict)  # network-free: patch, orientation, autocorr
    device: str = "cpu"
    repeats: int = 0
    times: list[float] = field(default_factory=list)
    output: str | None = None
    options: dict = field(default_factory=dict)


def machine_name(device: torch.device | str = "cpu", threads: int | None = None) -> str:
    """A short description of the machine a benchmark ran on; ``threads``: the torch threads its cases ran with
    (default: this process's)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return f"{torch.cuda.get_device_name(dev)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    threads = threads or torch.get_num_threads()
    return f"{cpu}, {os.cpu_count()} cores, {threads} torch threads, torch {torch.__version__}"


def _peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _child(queue: mp.Queue, kwargs: dict) -> None:  # runs in a fresh process
    try:
        queue.put(("ok", _run_in_process(**kwargs)))
    except OttexError as exc:
        queue.put(("error", str(exc)))
    except Exception as exc:  # noqa: BLE001 - reported as one line by the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def _run_in_process(
    method: str,
    method_module: str | None,
    style: str,
    size: int,
    repeats: int,
    warmup: int,
    device: str,
    seed: int,
    weights_dir: str | None,
    threads: int | None,
    options: dict,
    command: str | None = None,
    content: str | None = None,
) -> dict:
    if command is not None:
        return _run_command(command, style, size, repeats, warmup, seed, content)
    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    style_img = load_image(style, device=dev)
    options = dict(options)
    mix_with = options.pop("mix_with", None)
    m = get_method(method, SYNTHESIS if content is None else TRANSFER, module=method_module)
    opts = m.make_options(options)
    if content is None:
        styles: object = style_img
        if mix_with is not None:  # texture mixing: the style, then these examples (``mix`` gives the weights)
            others = [mix_with] if isinstance(mix_with, str) else list(mix_with)
            styles = [style_img, *(load_image(o, device=dev) for o in others)]

        def run() -> torch.Tensor:
            return m.synthesize(styles, (size, size), opts, seed=seed, device=dev, weights_dir=weights_dir)
    else:
        content_img = load_image(content, device=dev)

        def run() -> torch.Tensor:
            return m.transfer(content_img, style_img, size, opts, seed=seed, device=dev, weights_dir=weights_dir)

    def once() -> torch.Tensor:
        out = run()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return out

    for _ in range(warmup):
        once()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = once()
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else _peak_rss_mb()
    assert out is not None
    image = (out[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return {"times": times, "peak_mem_mb": peak, "image": image, "device": str(dev)}


#: What an external command of ``ottex bench --command`` may name (``{style}`` ...): the placeholders it is given.
COMMAND_PLACEHOLDERS = ("style", "content", "size", "output", "seed")


def _run_command(
    template: str, style: str, size: int, repeats: int, warmup: int, seed: int, content: str | None = None
) -> dict:
    """Time an external command; its peak memory is the largest child's peak RSS (this process is fresh)."""
    import shlex  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="ottex-bench-") as tmp:
        output = str(Path(tmp) / "out.png")
        values = {"style": shlex.quote(style), "content": shlex.quote(content or ""), "size": size,
                  "output": shlex.quote(output), "seed": seed}
        argv = shlex.split(template.format(**{k: values[k] for k in COMMAND_PLACEHOLDERS}))
        times = []
        for i in range(warmup + repeats):
            t0 = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, text=True)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no message"])[-1]
                raise OttexError(f"command exited with {done.returncode}: {last}")
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        if not Path(output).is_file():
            raise OttexError(f"command wrote no image at {{output}} ({output})")
        image = (load_image(output)[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peak = rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024
    return {"times": times, "peak_mem_mb": peak, "image": image, "device": "command"}


def run_case(
    method: str,
    style: str | os.PathLike,
    size: int,
    *,
    repeats: int = 1,
    warmup: int = 1,
    device: str = "auto",
    seed: int = 0,
    weights_dir: str | os.PathLike | None = None,
    threads: int | None = None,
    options: dict | None = None,
    command: str | None = None,
    content: str | os.PathLike | None = None,
    timeout: float | None = None,
) -> dict:
    """Run one case in a fresh process; returns ``times``, ``peak_mem_mb``, ``image`` (uint8 HWC) and ``device``.

    With ``command``, the case is an external program instead of an ottex
    method: a command line with the placeholders ``{style}``, ``{size}``,
    ``{output}`` (a PNG it must write), ``{seed}`` and ``{content}``. With
    ``content``, the method's style transfer runs (``size`` = long side).

    Raises:
        OttexError: the case failed (its one-line reason) or timed out.
    """
    module = None if command is not None else get_method(method).module
    kwargs = dict(method=method, method_module=module, style=str(style), size=int(size), repeats=int(repeats),
                  warmup=int(warmup), device=str(device), seed=int(seed),
                  weights_dir=None if weights_dir is None else str(weights_dir), threads=threads,
                  options=dict(options or {}), command=command, content=None if content is None else str(content))
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, kwargs))
    proc.start()
    try:
        status, payload = queue.get(timeout=timeout)
    except Exception:  # noqa: BLE001 - queue.Empty on timeout, or the child died
        proc.kill()
        proc.join()
        raise OttexError(f"benchmark case {method} at {size}px did not finish (exit code {proc.exitcode})") from None
    proc.join()
    if status != "ok":
        raise OttexError(f"benchmark case {method} at {size}px failed: {payload}")
    return payload


def score_reference(
    name: str,
    image: str | os.PathLike,
    style: str | os.PathLike,
    *,
    measure: str = "vgg19-caffe",
    weights_dir: str | os.PathLike | None = None,
    content: str | os.PathLike | None = None,
) -> BenchRecord:
    """Score an existing image (e.g. another implementation's result) like a benchmark output."""
    img = load_image(image)
    style_img = load_image(style)
    per = style_distance_per_layer(img, style_img, network=measure, weights_dir=weights_dir)  # at img's scale
    c_dist = None
    if content is not None:
        c_dist = content_distance(img, resize(load_image(content), img.shape[-2:]), network=measure,
                                  weights_dir=weights_dir)
    return BenchRecord(method=name, size=max(img.shape[-2:]), seconds=None, peak_mem_mb=None,
                       style_distance=sum(per.values()) / len(per), style_distance_layers=per,
                       content_distance=c_dist, structure=_structure(img, style_img, content is None),
                       output=str(image))


def _structure(image: torch.Tensor, style: torch.Tensor, synthesis: bool, rescale: bool = True) -> dict[str, float]:
    """The network-free measures of a synthesis (:func:`~ottex.eval.metrics.structure_scores`: mean patch distance,
    orientation, autocorrelation); none for a style transfer, whose layout is the content's."""
    if not synthesis:
        return {}
    scores = structure_scores(image, style, rescale=rescale)
    return {k: scores[k] for k in STRUCTURE_COLUMNS}


def run_benchmark(
    style: str | os.PathLike,
    methods: Sequence[str] = ("ot",),
    sizes: Sequence[int] = (512,),
    *,
    repeats: int = 1,
    warmup: int = 1,
    device: str = "auto",
    seed: int = 0,
    weights_dir: str | os.PathLike | None = None,
    measure: str = "vgg19-caffe",
    measure_max_side: int = 1024,
    threads: int | None = None,
    options: dict | None = None,
    save_dir: str | os.PathLike | None = None,
    commands: dict[str, str] | None = None,
    content: str | os.PathLike | None = None,
    variants: dict[str, dict] | None = None,
    method_options: dict[str, dict] | None = None,
    on_record=None,  # noqa: ANN001 - callable(BenchRecord), e.g. to print rows as they come
) -> list[BenchRecord]:
    """Run ``methods x variants x sizes`` on one style image and score the outputs.

    Args:
        style: style example path.
        methods: names of registered methods (:func:`ottex.methods.list_methods`).
        sizes: square output sides in px.
        repeats: timed runs per case (median reported).
        warmup: untimed runs before them (loads weights, warms caches).
        device: ``auto``, ``cpu`` or ``cuda``.
        seed: seed of every run.
        weights_dir: folder searched first for weights (also for the measuring network).
        measure: measuring network for the style distance.
        measure_max_side: outputs larger than this are scored on a centre crop of
            this size (and the style at the same scale), to bound the scoring cost.
        threads: torch threads in the child processes (default: torch's).
        options: option values for every method (fields of its options dataclass).
        save_dir: if given, outputs are written there as PNG.
        content: content image: the methods' style transfer runs instead of
            synthesis (``size`` is the output's long side) and the records get
            a ``content_distance`` (:func:`~ottex.eval.metrics.content_distance`).
        variants: settings to compare, ``{name: options}``: each method runs with
            its defaults and once per variant with ``options`` updated by it,
            labelled ``method[name]``. Values given as text (as
            :func:`parse_variant` returns them) are converted by each method's
            own option parsers (:func:`variant_options`). ``mix_with`` (a path
            or a tuple of paths) makes a synthesis variant mix ``style`` with
            those examples (``mix`` sets the weights); it is scored against ``style``.
        method_options: option values of one method each, ``{method: options}``
            (under ``options`` and the variants), e.g. ``{"po": {"model": "zebra.pt"}}``.
        commands: external programs run as extra cases, ``{name: command line}``
            (see :func:`run_case`), e.g. another implementation.
        on_record: called with each record as it is made.

    Returns:
        One :class:`BenchRecord` per case.

    Raises:
        InputError: an unknown method, one that does not do the task, an
            option (or variant) that a method does not have or a value it does
            not take, an output size too small for the methods, or an unknown
            measuring network, before any case runs.
    """
    task = SYNTHESIS if content is None else TRANSFER
    per_method = method_options or {}
    all_variants = {"": {}, **(variants or {})}
    settings: dict[tuple[str, str], dict] = {}  # (method, variant) -> the options of its cases
    for name in methods:  # every method and option is checked before a child process starts
        m = get_method(name, task)
        for vname, vopts in all_variants.items():
            opts = {**per_method.get(name, {}), **(options or {}), **variant_options(m, vname, vopts)}
            try:
                m.make_options({k: v for k, v in opts.items() if k != "mix_with"})
            except InputError as exc:
                if not vname:
                    raise
                raise InputError(f"variant {vname}: {exc}", option="variant") from None
            settings[name, vname] = opts
    style_img = load_image(style)
    content_img = None if content is None else load_image(content)
    _check_sizes(sizes, methods, None if content_img is None else tuple(content_img.shape[-2:]))
    if isinstance(measure, str):  # a bad name or missing weights fail here, not after the first case
        try:  # the network the scores use (cached): outputs are scored on the CPU
            measuring_network(measure, DEFAULT_MEASURE_LAYERS, weights_dir, "cpu")
        except OttexError as exc:
            raise type(exc)(f"measuring network '{measure}': {exc}", option="measure") from None
    records = []
    for size in sizes:
        cases = [(f"{m}[{v}]" if v else m, m, None, settings[m, v]) for m in methods for v in all_variants]
        cases += [(name, name, command, {}) for name, command in (commands or {}).items()]
        for label, method, command, opts in cases:
            res = run_case(method, style, size, repeats=repeats, warmup=warmup, device=device, seed=seed,
                           weights_dir=weights_dir, threads=threads, options=opts, command=command,
                           content=content)
            out = torch.from_numpy(np.ascontiguousarray(res["image"])).permute(2, 0, 1)[None].float() / 255
            ref_style = style_at_output_scale(style_img, tuple(out.shape[-2:]), opts.get("style_scale"))
            scored, scored_style = out, ref_style
            if max(out.shape[-2:]) > measure_max_side:  # same scale, bounded cost: crop both
                scored = _crop(out, measure_max_side)
                scored_style = _crop(ref_style, measure_max_side)
            per = style_distance_per_layer(scored, scored_style, network=measure, weights_dir=weights_dir,
                                           rescale=False)
            c_dist = None
            if content_img is not None:
                c_dist = content_distance(out, resize(content_img, out.shape[-2:]), network=measure,
                                          weights_dir=weights_dir)
            path = None
            if save_dir is not None:
                stem = Path(style).stem if content is None else f"{Path(content).stem}_{Path(style).stem}"
                path = str(Path(save_dir) / f"{stem}_{label}_{size}_s{seed}.png")
                save_image(out, path, overwrite=True)
            rec = BenchRecord(method=label, size=size, seconds=statistics.median(res["times"]),
                              peak_mem_mb=res["peak_mem_mb"], style_distance=sum(per.values()) / len(per),
                              style_distance_layers=per, content_distance=c_dist,
                              structure=_structure(scored, scored_style, content_img is None, rescale=False),
                              device=res["device"],
                              repeats=repeats, times=res["times"], output=path,
                              options={k: v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)
                                       for k, v in opts.items()})
            records.append(rec)
            if on_record is not None:
                on_record(rec)
    return records


def _check_sizes(sizes: Sequence[int], methods: Sequence[str], content_hw: tuple[int, int] | None) -> None:
    """Refuse output sizes too small for any method (the common size checks; a method's own larger minimum, such as
    STROTSS's 64 px long side, is still found in its case), before any case runs.

    Args:
        sizes: the benchmark's sizes (square sides; with a content, long sides).
        methods: the methods run (external commands decide for themselves).
        content_hw: ``(height, width)`` of the content image of a style transfer, else None.

    Raises:
        InputError: a size too small, with the output size it would give.
    """
    if not methods:
        return
    for size in sizes:
        if content_hw is None:
            check_size(size)
        else:
            content_output_size(content_hw, size)


def _crop(image: torch.Tensor, side: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    return crop_to(image, (min(h, side), min(w, side)))


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def markdown_table(records: Sequence[BenchRecord]) -> str:
    """The records as a Markdown table (time, peak memory, style distance per layer and mean, the network-free
    structure measures of syntheses, the content distance of transfers)."""
    layers = list(dict.fromkeys(k for r in records for k in r.style_distance_layers))
    with_content = any(r.content_distance is not None for r in records)
    structure = [k for k in STRUCTURE_COLUMNS if any(k in r.structure for r in records)]
    head = ["method", "size", "device", "seconds", "peak MB", *layers, "style dist.", *structure,
            *(["content dist."] if with_content else [])]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        cells = [r.method, str(r.size), r.device if r.seconds is not None else "-", _fmt(r.seconds, ".2f"),
                 _fmt(r.peak_mem_mb, ".0f"), *(_fmt(r.style_distance_layers.get(k), ".4f") for k in layers),
                 _fmt(r.style_distance, ".4f"), *(_fmt(r.structure.get(k), ".4f") for k in structure),
                 *([_fmt(r.content_distance, ".4f")] if with_content else [])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bench_sheet(
    records: Sequence[BenchRecord],
    style: str | os.PathLike,
    machine: str = "",
    tile: int = 256,
    content: str | os.PathLike | None = None,
) -> Image.Image:
    """A contact sheet: the inputs, then every record with an image, captioned with its scores."""
    from .report import contact_sheet  # noqa: PLC0415

    items: list = [] if content is None else [(f"content\n{Path(content).name}", content)]
    items.append((f"style\n{Path(style).name}", style))
    for r in records:
        if r.output is None:
            continue
        timing = "reference" if r.seconds is None else f"{r.seconds:.2f} s, {r.peak_mem_mb:.0f} MB"
        scores = f"style dist. {r.style_distance:.4f}"
        if r.content_distance is not None:
            scores += f"\ncontent dist. {r.content_distance:.4f}"
        items.append((f"{r.method} {r.size}px\n{timing}\n{scores}", r.output))
    return contact_sheet(items, tile=tile, title=f"ottex bench - {machine}" if machine else None)


def write_json(records: Sequence[BenchRecord], path: str | os.PathLike, machine: str) -> None:
    """Write the records (and the machine's description) as JSON, atomically."""
    text = json.dumps({"machine": machine, "records": [asdict(r) for r in records]}, indent=2)
    with atomic_output(path) as fh:
        fh.write(text.encode())


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``"nopca:pca=False;passes=2"`` -> ``("nopca", {"pca": "False", "passes": "2"})``.

    The values stay text: :func:`run_benchmark` converts them for each method
    with that option's own parser (:func:`variant_options`), so that a value an
    option does not take is refused, naming the variant and the option, before
    any case runs.

    Raises:
        InputError: the text is not ``NAME:key=value[;key=value...]``.
    """
    name, sep, body = text.partition(":")
    if not sep or not name.strip() or not body.strip():
        raise InputError(f"a variant is NAME:key=value[;key=value...], got '{text}'", option="variant")
    opts = {}
    for pair in body.split(";"):
        key, eq, value = pair.partition("=")
        if not eq or not key.strip().isidentifier():
            raise InputError(f"variant {name}: '{pair}' is not key=value", option="variant")
        opts[key.strip()] = value.strip()
    return name.strip(), opts


def _paths(text: str) -> str | tuple[str, ...]:
    """``mix_with`` from text: one path, or several (comma-separated, or a tuple as Python writes it)."""
    paths = tuple(unquote(p.strip()) for p in unbracket(unquote(text.strip())).split(",") if p.strip())
    return paths[0] if len(paths) == 1 else paths


def variant_options(method: Method, name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """A variant's option values for ``method``, text converted by each option's own parser.

    Text is read and checked by :func:`~ottex.methods.options.parse_value`, as
    for every front end. ``mix_with`` takes a path or several. Values that are
    not text (given from Python) and keys that are no option of the method
    (:meth:`~ottex.methods.base.Method.make_options` refuses them) are passed on as they are.

    Args:
        method: the method the variant runs.
        name: the variant's name, for messages.
        values: its option values, e.g. from :func:`parse_variant`.

    Returns:
        The values, converted.

    Raises:
        InputError: a value an option does not take, naming the variant and the option.

    Example:
        >>> variant_options(get_method("ot"), "nopca", {"pca": "no", "passes": "(2, 1)"})
        {'pca': False, 'passes': (2, 1)}
    """
    specs = {s.name: s for s in method.option_specs()}
    out = {}
    for key, value in values.items():
        if isinstance(value, str) and key == "mix_with":
            value = _paths(value)
        elif isinstance(value, str) and key in specs:
            try:
                value = parse_value(specs[key], value)
            except InputError as exc:
                raise InputError(f"variant {name}: {exc}", option="variant") from None
        out[key] = value
    return out


def parse_sizes(text: str) -> list[int]:
    """``"512,1024"`` -> ``[512, 1024]`` with a clear error."""
    try:
        sizes = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"sizes are comma-separated integers, got '{text}'", option="sizes") from None
    if not sizes or any(s < 16 for s in sizes):
        raise InputError(f"sizes must be integers of at least 16, got '{text}'", option="sizes")
    return sizes


def resolve_methods(text: str, task: str = SYNTHESIS) -> list[Method]:
    """``"ot,w2"`` -> those registered methods (checked to do ``task``); ``"all"``: every method that does it."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    if names == ["all"]:
        return list_methods(task)
    if not names:
        raise InputError("no method given", option="methods")
    return [get_method(n, task) for n in names]
