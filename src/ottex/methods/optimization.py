"""Optimisation-based style transfer and texture synthesis: pixels optimised against feature losses.

One engine for three style losses (:mod:`ottex.nn.losses`), registered as three
methods: ``w2`` (Gaussian Wasserstein, Marron), ``gatys`` (Gram matrices) and
``swd`` (sliced Wasserstein, Heitz et al. 2021), plus an optional content loss.
The image is optimised coarse to fine on the scale pyramid of
:mod:`ottex.core.pyramid` (the result of each scale, upsampled, starts the next)
with L-BFGS (default) or Adam; the loss network is a multi-layer VGG-19 feature
extractor (:func:`ottex.nn.networks.load_feature_extractor`, ``cd16x`` read-outs
by default, average pooling as Gatys and Marron use).

Pixels are kept in ``[0, 1]``: Adam clamps after every step; L-BFGS, which
needs a smooth objective, adds a penalty on values outside ``[0, 1]`` and the
image is clamped after each scale. Every loss evaluation is a progress step
with its loss (:class:`~ottex.core.progress.ProgressEvent`).

Example:
    >>> out = stylize("bridge.jpg", "lava.jpg", method="w2", size=512)  # doctest: +SKIP
    >>> out = ottex.get_method("gatys").transfer("bridge.jpg", "lava.jpg", 512, {"steps": (50, 20)})  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core.checks import check_example, check_size, renamed_keyword
from ..core.device import make_generator, repeatable
from ..core.errors import InputError, OttexError
from ..core.progress import Callback, Reporter, run_callbacks
from ..core.pyramid import content_output_size, crop_to, per_scale, pyramid_sizes, style_at, style_factor
from ..core.resample import resize
from ..core.runtime import prepare_device
from ..image.io import ImageLike, as_image
from ..nn.losses import STYLE_LOSSES, SlicedWassersteinLoss, content_loss, make_style_loss
from ..nn.networks import load_feature_extractor
from ..nn.weights import WEIGHT_SETS, get_weight_set
from .base import Method, register_method
from .common import INITS, check_init, next_scale_image
from .cost import RunCost
from .options import TRANSFER, Options, label_number, option, parse_ints

__all__ = ["OptSettings", "OptOptions", "stylize", "synthesize_opt", "swd_refine", "refine_sizes", "OPTIMIZERS",
           "DEFAULT_STYLE_LAYERS", "REFINE_LAYERS", "REFINE_RUNS", "REFINE_MAX_SIDE"]

OPTIMIZERS = ("lbfgs", "adam")
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
DEFAULT_CONTENT_LAYER = "relu4_1"


@dataclass(frozen=True)
class OptOptions(Options):
    """Options of the optimisation methods ``w2``, ``gatys`` and ``swd``."""

    steps: tuple[int, ...] = option(
        (100, 40), parse=parse_ints, metavar="N[,N...]",
        help="optimiser steps per scale (L-BFGS iterations, Adam steps), coarse to fine, the last repeating")
    optimizer: str = option("lbfgs", choices=OPTIMIZERS, help="optimiser")
    lr: float | None = option(None, help="learning rate [L-BFGS: 1 (step scale), Adam: 0.02]")
    weights: str = option("cd16x", metavar="SET",
                          help="loss network weight set (cd16x, vgg19-caffe, vgg19-torchvision)")
    style_layers: tuple[str, ...] | None = option(
        None, cli=False, help="taps of the loss network for the style loss [relu1_1 ... relu5_1, those the weight "
        "set has]")
    content_layer: str | None = option(
        None, cli=False, tasks=(TRANSFER,), help="tap for the content loss [relu4_1, else the deepest style tap]")
    content_weight: float = option(1.0, tasks=(TRANSFER,), help="weight of the (normalised) content loss")
    init: str = option("content", choices=INITS, tasks=(TRANSFER,), help="starting image")
    style_scale: float | None = option(
        None, help="size of style details: the example's short side becomes the output's short side x this "
        "[auto: fit the short sides, never enlarging the example]")
    pool: str = option("avg", choices=("avg", "max"), help="pooling in the loss network")
    pre_relu: bool = option(False, help="tap the loss network before the ReLUs")
    range_weight: float = option(10.0, cli=False, help="weight of the penalty on pixels outside [0, 1] (L-BFGS)")
    coarse_side: int = option(256, cli=False, help="scales halve the output's long side down to at least this")

    def __post_init__(self) -> None:
        if isinstance(self.steps, int):
            object.__setattr__(self, "steps", (self.steps,))
        object.__setattr__(self, "steps", tuple(self.steps))
        if not self.steps or any(i < 1 for i in self.steps):
            raise InputError(f"steps (optimiser iterations per scale) must be at least 1, got {self.steps}",
                             option="steps")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"unknown optimizer '{self.optimizer}' (choose from {', '.join(OPTIMIZERS)})",
                             option="optimizer")
        if self.lr is not None and not self.lr > 0:
            raise InputError(f"lr must be positive, got {self.lr}", option="lr")
        if self.content_weight < 0:
            raise InputError(f"content weight must be at least 0, got {self.content_weight}", option="content_weight")
        if not get_weight_set(self.weights).taps:
            usable = ", ".join(n for n in WEIGHT_SETS if WEIGHT_SETS[n].taps)
            raise InputError(f"the weight set '{self.weights}' is not a loss network of w2, gatys and swd (use one "
                             f"of {usable})", option="weights")
        if self.style_scale is not None and self.style_scale <= 0:
            raise InputError(f"style scale must be positive, got {self.style_scale}", option="style_scale")
        check_init(self.init)

    def layers(self) -> tuple[tuple[str, ...], str]:
        """The style taps and the content tap: as given, or the defaults the weight set offers."""
        taps = get_weight_set(self.weights).taps
        style = self.style_layers or tuple(layer for layer in DEFAULT_STYLE_LAYERS if layer in taps)
        content = self.content_layer or (DEFAULT_CONTENT_LAYER if DEFAULT_CONTENT_LAYER in taps else style[-1])
        return tuple(style), content


@dataclass(frozen=True)
class OptSettings:
    """Settings of an optimisation run (the classic form of :class:`OptOptions`).

    Attributes:
        steps: optimiser steps per scale, coarse to fine (the last value
            repeats for extra scales); :attr:`OptOptions.steps`.
        coarse_side: scales halve the output's long side down to at least this.
        optimizer: ``"lbfgs"`` or ``"adam"``.
        lr: learning rate (L-BFGS step scale; Adam step size).
        style_layers: taps of the loss network for the style loss.
        content_layer: tap for the content loss.
        content_weight: weight of the (normalised) content loss.
        network: loss network weight set (:attr:`OptOptions.weights`).
        pool: ``"avg"`` or ``"max"`` pooling in the loss network.
        range_weight: weight of the penalty on pixels outside ``[0, 1]`` (L-BFGS).
        pre_relu: tap the loss network before the ReLUs instead of after.
        iterations: the former name of ``steps`` (deprecated: a :class:`FutureWarning`).
    """

    steps: tuple[int, ...] = (100, 40)
    coarse_side: int = 256
    optimizer: str = "lbfgs"
    lr: float | None = None
    style_layers: tuple[str, ...] = DEFAULT_STYLE_LAYERS
    content_layer: str = DEFAULT_CONTENT_LAYER
    content_weight: float = 1.0
    network: str = "cd16x"
    pool: str = "avg"
    range_weight: float = 10.0
    pre_relu: bool = False
    iterations: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.iterations is not None:
            steps = renamed_keyword(self.steps, self.iterations, "steps", "iterations", default=(100, 40))
            object.__setattr__(self, "steps", steps)
            object.__setattr__(self, "iterations", None)

    def to_options(self, **changes: object) -> OptOptions:
        """The same settings as :class:`OptOptions` (with ``changes``)."""
        return OptOptions(steps=self.steps, coarse_side=self.coarse_side, optimizer=self.optimizer, lr=self.lr,
                          style_layers=self.style_layers, content_layer=self.content_layer,
                          content_weight=self.content_weight, weights=self.network, pool=self.pool,
                          range_weight=self.range_weight, pre_relu=self.pre_relu, **changes)


def _optimize(
    image: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    iterations: int,
    opts: OptOptions,
    on_eval: Callable[[float, torch.Tensor], None],
) -> tuple[torch.Tensor, bool]:
    """Minimise ``objective(image)`` over the pixels; returns the image clamped to ``[0, 1]`` and whether the
    optimiser stopped before its planned iterations because it converged (L-BFGS: no further decrease)."""
    x = image.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    if opts.optimizer == "adam":
        opt = torch.optim.Adam([x], lr=0.02 if opts.lr is None else opts.lr)
        for _ in range(iterations):
            opt.zero_grad(set_to_none=True)
            loss = objective(x)
            loss.backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0, 1)
            on_eval(float(loss.detach()), x)
        return x.detach(), False

    opt = torch.optim.LBFGS([x], lr=1.0 if opts.lr is None else opts.lr, max_iter=iterations,
                            max_eval=_max_evals(iterations, opts.optimizer), history_size=20, tolerance_grad=0.0,
                            tolerance_change=0.0, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        out_of_range = (F.relu(x - 1) + F.relu(-x)).pow(2).mean()
        loss = objective(x)
        total = loss + opts.range_weight * out_of_range
        total.backward()
        on_eval(float(loss.detach()), x)
        return total

    opt.step(closure)
    state = opt.state[x]
    evals = state.get("func_evals", 0)
    converged = state.get("n_iter", 0) < iterations and evals < _max_evals(iterations, opts.optimizer)
    return x.detach().clamp_(0, 1), converged


def _run(
    style_img: torch.Tensor,
    content_img: torch.Tensor | None,
    size: tuple[int, int],
    method: str,
    opts: OptOptions,
    batch: int,
    seed: int | None,
    weights_dir: str | os.PathLike | None,
    callback: Callback | None,
) -> torch.Tensor:
    """The coarse-to-fine optimisation shared by synthesis and transfer; the image at the finest working size."""
    dev = style_img.device
    gen = make_generator(seed, dev)
    style_layers, content_layer = opts.layers()
    use_content = content_img is not None and opts.content_weight > 0
    layers = tuple(dict.fromkeys(style_layers + ((content_layer,) if use_content else ())))
    net = load_feature_extractor(opts.weights, layers, weights_dir=weights_dir, device=dev, pool=opts.pool,
                                 pre_relu=opts.pre_relu)
    for p in net.parameters():
        p.requires_grad_(False)
    sizes = pyramid_sizes(size, opts.coarse_side)
    factor = style_factor(style_img.shape[-2:], size, opts.style_scale)
    iters = per_scale(opts.steps, len(sizes))
    redraws = hasattr(STYLE_LOSSES.get(method), "redraw")  # swd: directions drawn anew for each optimiser run
    spread = getattr(STYLE_LOSSES.get(method), "start_spread", None)  # swd: Heitz et al.'s start
    # the bar counts loss evaluations: L-BFGS may make up to 5/4 of its iterations
    evals = [sum(_max_evals(n, opts.optimizer) for n in _runs(it, redraws, opts)) for it in iters]
    report = Reporter(method, callback, sizes, evals, unit="eval")
    image: torch.Tensor | None = None
    for si, (sh, sw) in enumerate(sizes):
        report.begin_scale(si)
        style_s = style_at(style_img, factor * sh / sizes[-1][0])
        with torch.no_grad():
            sf = net(style_s)
        style_loss = make_style_loss(method, {k: sf[k] for k in style_layers}, gen)
        content_target = None
        content_s = None if content_img is None else resize(content_img, (sh, sw))
        if content_s is not None and use_content:
            with torch.no_grad():
                content_target = net(content_s)[content_layer]
        c_norm = None if content_target is None else content_target.pow(2).mean().clamp_min(1e-12)
        image = next_scale_image(image, (sh, sw), style_s, content_s, opts.init, batch, gen, spread=spread)
        objective = _objective(net, style_loss, content_layer, content_target, c_norm, opts.content_weight)

        losses: list[float] = []

        def on_eval(value: float, x: torch.Tensor, losses: list[float] = losses) -> None:
            losses.append(value)
            report.step(loss=value, image=lambda: x.detach().clamp(0, 1))

        for n in _runs(iters[si], redraws, opts):
            if redraws:
                style_loss.redraw()
            start = len(losses)
            image, converged = _optimize(image, objective, n, opts, on_eval)
            if converged and min(losses[start:], default=0.0) >= losses[start] * (1 - 1e-6):
                break  # no progress even with new directions: the optimiser is done with this scale
        if converged:
            report.note(f"converged at step {report.step_in_scale}")
            if si == 0 and (content_img is None or opts.init == "noise"):
                _check_progress(method, losses, (sh, sw))
    assert image is not None
    report.finish(image)
    return image


#: L-BFGS iterations per run of a loss with random directions (``swd``): the directions are drawn anew for each
#: run and fixed within it, so that the line search sees one objective. Heitz et al. (2021) make 20 runs of 64
#: function evaluations at 256 px.
LBFGS_RUN_STEPS = 50
#: When the optimiser stops early at the first scale from noise, its loss must have fallen below this fraction of
#: its first value (or below :data:`MATCHED_LOSS`), else the run is an error rather than a noise image written as
#: a result.
NOISE_LOSS_FRACTION = 0.5
#: A loss this small is a match (a flat style is matched at the first evaluation).
MATCHED_LOSS = 1e-6


def _max_evals(iterations: int, optimizer: str) -> int:
    """Loss evaluations an optimiser run of ``iterations`` may make (L-BFGS's line search: 5/4 of them)."""
    return iterations * 5 // 4 if optimizer == "lbfgs" else iterations


#: Loss evaluations one L-BFGS run of :func:`swd_refine` may make.
REFINE_RUN_EVALS = _max_evals(LBFGS_RUN_STEPS, "lbfgs")


def _runs(steps: int, redraws: bool, opts: OptOptions) -> list[int]:
    """The optimiser runs of one scale: one of ``steps``, or runs of :data:`LBFGS_RUN_STEPS` with L-BFGS and a
    loss whose directions are redrawn per run (``redraws``)."""
    if opts.optimizer != "lbfgs" or not redraws:
        return [steps]
    return [min(LBFGS_RUN_STEPS, steps - s) for s in range(0, steps, LBFGS_RUN_STEPS)]


def _check_progress(method: str, losses: Sequence[float], size: tuple[int, int]) -> None:
    """Refuse a first scale from noise that stopped early with a loss that did not fall (the optimiser stalled: the
    image is still noise)."""
    finite = [v for v in losses if math.isfinite(v)]
    if not finite or (min(finite) > NOISE_LOSS_FRACTION * finite[0] and min(finite) > MATCHED_LOSS):
        first = f"{finite[0]:.4g}" if finite else "nan"
        best = f"{min(finite):.4g}" if finite else "nan"
        raise OttexError(f"{method}: the optimisation did not converge at the {size[1]}x{size[0]} px scale (loss "
                         f"{first} -> {best} in {len(losses)} evaluations), so no result was written; try more steps "
                         "or optimizer adam")


def _objective(
    net: torch.nn.Module,
    style_loss: torch.nn.Module,
    content_layer: str,
    content_target: torch.Tensor | None,
    c_norm: torch.Tensor | None,
    content_weight: float,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The loss of one scale: style loss plus the normalised content loss (when there is a content target)."""

    def objective(x: torch.Tensor) -> torch.Tensor:
        feats = net(x)
        loss = style_loss(feats)
        if content_target is not None:
            loss = loss + content_weight * content_loss(feats[content_layer], content_target) / c_norm
        return loss.sum()

    return objective


def _check_method(method: str) -> None:
    if method not in STYLE_LOSSES:
        raise InputError(f"unknown optimisation method '{method}' (choose from {', '.join(STYLE_LOSSES)})",
                         option="method")


def _transfer_with(method: str) -> Callable[..., torch.Tensor]:
    @repeatable
    def transfer(
        content: ImageLike, style: ImageLike, size: int | tuple[int, int] | None, opts: OptOptions, *,
        seed: int | None = 0,
        device: str | torch.device | None = None, weights_dir: str | os.PathLike | None = None,
        callback: Callback | None = None,
    ) -> torch.Tensor:
        dev = prepare_device(device)
        content_img = check_example(as_image(content, dev, "content"), "content")
        style_img = check_example(as_image(style, dev, "style"))
        h, w = content_output_size(content_img.shape[-2:], size)
        out = _run(style_img, content_img, (h, w), method, opts, 1, seed, weights_dir, callback)
        return resize(out, (h, w)).clamp_(0, 1)

    transfer.__doc__ = f"The ``{method}`` method's style transfer (the registry's contract; see :func:`stylize`)."
    return transfer


def _synthesize_with(method: str) -> Callable[..., torch.Tensor]:
    @repeatable
    def synthesize(
        style: ImageLike, size: Sequence[int], opts: OptOptions, *, batch: int = 1, seed: int | None = 0,
        device: str | torch.device | None = None, weights_dir: str | os.PathLike | None = None,
        callback: Callback | None = None,
    ) -> torch.Tensor:
        h, w = check_size(size)
        dev = prepare_device(device)
        style_img = check_example(as_image(style, dev, "style"))
        out = _run(style_img, None, (h, w), method, opts.replace(init="noise"), batch, seed, weights_dir, callback)
        return crop_to(out, (h, w))

    synthesize.__doc__ = f"The ``{method}`` method's synthesis (the registry's contract; see :func:`synthesize_opt`)."
    return synthesize


def _legacy_options(settings: OptSettings | None, steps: Sequence[int] | int | None,
                    content_weight: float | None, **more: object) -> OptOptions:
    s = settings or OptSettings()
    if steps is not None:
        s = dataclasses.replace(s, steps=(steps,) if isinstance(steps, int) else tuple(steps))
    if content_weight is not None:
        s = dataclasses.replace(s, content_weight=float(content_weight))
    return s.to_options(**more)


def stylize(
    content: ImageLike,
    style: ImageLike,
    size: int | tuple[int, int] | None = None,
    *,
    method: str = "w2",
    settings: OptSettings | None = None,
    steps: Sequence[int] | int | None = None,
    content_weight: float | None = None,
    init: str = "content",
    style_scale: float | None = None,
    seed: int | None = 0,
    weights_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    history: list[dict] | None = None,
    callback: Callback | None = None,
    iterations: Sequence[int] | int | None = None,
) -> torch.Tensor:
    """Style transfer by optimisation of the pixels against a style loss plus a content loss.

    Args:
        content: content image (path or ``(1, 3, H, W)`` tensor in ``[0, 1]``).
        style: style image.
        size: long side of the output (default: the content's), aspect kept; or ``(height, width)``.
        method: ``"w2"`` (Gaussian W2, Marron), ``"gatys"`` (Gram) or ``"swd"``
            (sliced Wasserstein).
        settings: all settings (:class:`OptSettings`); the arguments below override it.
        steps: optimiser steps per scale, coarse to fine (an int: at every scale; ``--steps``).
        content_weight: weight of the content loss.
        init: ``"content"`` (default) or ``"noise"``.
        style_scale: size of style details, as in :func:`ottex.synthesize`.
        seed: random seed (noise, sliced directions).
        weights_dir: folder searched first for the loss network's weights.
        device: ``auto``, ``cpu``, ``cuda`` or a device.
        progress: show a progress bar with the loss.
        history: if a list, one record per loss evaluation is appended
            (``scale``, ``size``, ``eval``, ``loss``), e.g. for a plot.
        callback: progress subscriber (one event per loss evaluation, with the
            loss); returning False cancels the run.
        iterations: the former name of ``steps`` (deprecated: a :class:`FutureWarning`).

    Returns:
        ``(1, 3, H, W)`` tensor in ``[0, 1]``.

    Example:
        >>> out = stylize(photo, painting, method="gatys", steps=(50, 20))  # doctest: +SKIP
    """
    steps = renamed_keyword(steps, iterations, "steps", "iterations")
    opts = _legacy_options(settings, steps, content_weight, init=init, style_scale=style_scale)
    _check_method(method)
    with run_callbacks(callback, progress=progress, desc=f"ottex style ({method})", history=history) as cb:
        return METHODS[method].transfer(content, style, size, opts, seed=seed, device=device,
                                        weights_dir=weights_dir, callback=cb)  # checked as every run is


def synthesize_opt(
    style: ImageLike,
    size: int | Sequence[int] = (512, 512),
    *,
    method: str = "w2",
    settings: OptSettings | None = None,
    steps: Sequence[int] | int | None = None,
    style_scale: float | None = None,
    batch: int = 1,
    seed: int | None = 0,
    weights_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    history: list[dict] | None = None,
    callback: Callback | None = None,
    iterations: Sequence[int] | int | None = None,
) -> torch.Tensor:
    """Texture synthesis by optimisation from noise against a style loss (see :func:`stylize`; ``steps`` and the
    deprecated ``iterations`` as there).

    Sizes off the 16 px grid are made at the next multiple of 16 and cut from its centre.

    Returns:
        ``(batch, 3, H, W)`` tensor in ``[0, 1]``.
    """
    steps = renamed_keyword(steps, iterations, "steps", "iterations")
    opts = _legacy_options(settings, steps, None, style_scale=style_scale)
    _check_method(method)
    with run_callbacks(callback, progress=progress, desc=f"ottex synth ({method})", history=history) as cb:
        return METHODS[method].synthesize(style, size, opts, batch=batch, seed=seed, device=device,
                                          weights_dir=weights_dir, callback=cb)  # checked as every run is


#: Taps of :func:`swd_refine`'s loss. relu5_1 is left out: on the distilled ``cd16x`` read-outs it pulled the result
#: away from the example at relu3_1 (Heitz et al.'s example at 256 px: 0.0552 with it, 0.0425 without;
#: docs/structure.md).
REFINE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
#: L-BFGS runs of :func:`swd_refine` at half and at full working resolution (each run: new random directions,
#: :data:`LBFGS_RUN_STEPS` iterations).
REFINE_RUNS = (3, 1)
#: Longest side at which :func:`swd_refine` optimises; larger images get the change made at this size, upsampled
#: (back-propagation through the loss network costs about 6 KB per pixel).
REFINE_MAX_SIDE = 512
#: The half-resolution runs of :func:`swd_refine` are skipped when that resolution's short side is below this (the
#: relu4_1 tap would see too few positions).
REFINE_MIN_SIDE = 64


def refine_sizes(size: tuple[int, int], runs: Sequence[int] = REFINE_RUNS, max_side: int = REFINE_MAX_SIDE
                 ) -> list[tuple[tuple[int, int], int]]:
    """The resolutions :func:`swd_refine` works at for an image of ``size``, coarse to fine, with their L-BFGS runs.

    Example:
        >>> refine_sizes((256, 256))
        [((128, 128), 3), ((256, 256), 1)]
        >>> refine_sizes((1024, 2048))
        [((128, 256), 3), ((256, 512), 1)]
    """
    h, w = size
    s = min(1.0, max_side / max(h, w))
    fine = (max(1, round(h * s)), max(1, round(w * s)))
    half = (max(1, round(fine[0] / 2)), max(1, round(fine[1] / 2)))
    out = []
    if runs[0] > 0 and min(half) >= REFINE_MIN_SIDE:
        out.append((half, runs[0]))
    if len(runs) > 1 and runs[1] > 0:
        out.append((fine, runs[1]))
    return out


def swd_refine(
    image: torch.Tensor,
    style: torch.Tensor,
    runs: Sequence[int] = REFINE_RUNS,
    *,
    layers: Sequence[str] = REFINE_LAYERS,
    weights: str = "cd16x",
    weights_dir: str | os.PathLike | None = None,
    generator: torch.Generator | None = None,
    wrap: bool = False,
    max_side: int = REFINE_MAX_SIDE,
    on_scale: Callable[[int], None] | None = None,
    on_eval: Callable[[float, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Refine a finished texture by optimising its pixels against the sliced Wasserstein feature loss of Heitz
    et al. (2021), coarse to fine on :func:`refine_sizes` (half, then full resolution; the result of the half
    resolution is upsampled and optimised further).

    The loss network is a VGG-19 feature extractor (:func:`~ottex.nn.networks.load_feature_extractor`, average
    pooling); each L-BFGS run draws new random directions and keeps them (one objective per run). Starting from a
    synthesis that already has the example's layout, a few runs reach what the loss alone reaches from noise in
    hundreds of steps, and restore the sharp, regular local patterns that decoders blur.

    Args:
        image: ``(B, 3, H, W)`` texture in ``[0, 1]``.
        style: ``(1, 3, H', W')`` example at the detail scale of ``image``.
        runs: L-BFGS runs at half and at full resolution.
        layers: taps of the loss network.
        weights: loss network weight set.
        weights_dir: local folder of weight files.
        generator: source of the random directions.
        wrap: the image is tileable (the loss network pads circularly).
        max_side: longest side optimised at; larger images get the change made at this size, upsampled.
        on_scale: called with the index of each resolution of :func:`refine_sizes` as it starts.
        on_eval: called with the loss and the current image after every loss evaluation.

    Returns:
        ``(B, 3, H, W)`` in ``[0, 1]``.

    Example:
        >>> import ottex
        >>> example = ottex.load_image("bricks.png")  # doctest: +SKIP
        >>> out = swd_refine(ottex.synthesize(example, 256), example)  # doctest: +SKIP
    """
    h, w = image.shape[-2:]
    plan = refine_sizes((h, w), runs, max_side)
    if not plan:
        return image
    net = load_feature_extractor(weights, tuple(layers), weights_dir=weights_dir, device=image.device, pool="avg",
                                 padding="circular" if wrap else None)
    for p in net.parameters():
        p.requires_grad_(False)
    opts = OptOptions(steps=(LBFGS_RUN_STEPS,), weights=weights)
    fine = plan[-1][0]
    start = image if fine == (h, w) else resize(image, fine)
    x = start
    for si, ((sh, sw), n_runs) in enumerate(plan):
        if on_scale is not None:
            on_scale(si)
        x = x if x.shape[-2:] == (sh, sw) else resize(x, (sh, sw))
        with torch.no_grad():
            sf = net(style_at(style, sh / h))
        loss = SlicedWassersteinLoss({k: sf[k] for k in layers}, generator)
        objective = _objective(net, loss, layers[-1], None, None, 0.0)  # the style loss alone (no content target)

        for _ in range(n_runs):
            loss.redraw()
            x, _ = _optimize(x, objective, LBFGS_RUN_STEPS, opts, on_eval or (lambda value, t: None))
    if x.shape[-2:] == (h, w):
        return x
    return (image + resize(x - start, (h, w))).clamp_(0, 1)


#: Largest image, in pixels, that ``ot`` inverts features at (:func:`invert_features`; ``--quality high``, and the
#: default's last pass at small outputs):
#: back-propagation through the encoder up to relu3_1 costs about 3 KB per pixel (``benchmarks/run_cost.py``).
INVERT_MAX_PIXELS = 1024 * 1024


def invert_features(
    encoder: Callable[[torch.Tensor], torch.Tensor],
    target: torch.Tensor,
    image: torch.Tensor,
    steps: int = 10,
) -> torch.Tensor:
    """The image whose ``encoder`` features are closest to ``target``, by L-BFGS on the pixels from ``image``.

    A decoder inverts an encoder only approximately: the distilled decoders of relu2_1 and relu3_1 give back a
    blurred image (the example itself through relu2_1 and its decoder: 0.068 per-layer distance at relu1_1 on the
    measuring network, 0.012 after 10 steps of this; docs/structure.md). Starting from the decoder's output, a
    few steps of the mean squared feature error (relative to the target's mean square, with the pixel range
    penalty of :class:`OptOptions`) put back the sharp local patterns the matched features describe.

    Args:
        encoder: maps ``(B, 3, H, W)`` pixels to ``(B, C, h, w)`` features (its parameters are not changed).
        target: ``(B, C, h, w)`` features to reach (e.g. the matched features the decoder was given).
        image: ``(B, 3, H, W)`` start in ``[0, 1]``, usually the decoder's output.
        steps: L-BFGS iterations (0: ``image`` unchanged).

    Returns:
        ``(B, 3, H, W)`` in ``[0, 1]``, on ``image``'s device and dtype.

    Example:
        >>> enc = torch.nn.Conv2d(3, 4, 3, padding=1)
        >>> x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> start = torch.full_like(x, 0.5)
        >>> out = invert_features(enc, enc(x).detach(), start, steps=20)
        >>> error = lambda y: float((enc(y) - enc(x)).detach().pow(2).mean())
        >>> error(out) < 0.1 * error(start)
        True
    """
    if steps <= 0:
        return image
    target = target.detach()
    scale = target.pow(2).mean().clamp_min(1e-12)
    params = list(encoder.parameters()) if isinstance(encoder, torch.nn.Module) else []
    kept = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        with torch.enable_grad():
            out, _ = _optimize(image, lambda x: (encoder(x) - target).pow(2).mean() / scale, steps, OptOptions(),
                               lambda value, x: None)
    finally:
        for p, k in zip(params, kept):
            p.requires_grad_(k)
    return out.to(image.dtype)


def _label(method: str) -> Callable[[OptOptions, str], str]:
    return lambda opts, task: f"{method}_{opts.optimizer}"


def _content_label(opts: OptOptions) -> str:
    return f"cw{label_number(opts.content_weight)}"


#: Measured peaks of ``swd`` (the largest of the three; ``benchmarks/run_cost.py``, one thread): (megapixels, peak MB,
#: seconds); back-propagation through the loss network costs about 6 KB per pixel. Times depend on the steps: none.
OPT_COST = RunCost(((0.066, 820.0, None), (0.262, 2011.0, None)))

_DESCRIPTIONS = {
    "w2": "Gaussian Wasserstein style transfer (Marron): pixels optimised against the closed-form W2 distance of "
          "Gaussians fitted to VGG features",
    "gatys": "Gatys et al. (2016): pixels optimised against Gram-matrix losses",
    "swd": "Heitz et al. (2021): pixels optimised against a sliced Wasserstein feature loss",
}

METHODS = {
    name: register_method(Method(name, _DESCRIPTIONS[name], OptOptions, synthesize=_synthesize_with(name),
                                 transfer=_transfer_with(name), reports_loss=True, label=_label(name),
                                 content_label=_content_label, cost=OPT_COST))
    for name in STYLE_LOSSES
}
