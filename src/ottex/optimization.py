"""Optimisation-based style transfer and texture synthesis: pixels optimised against feature losses.

One engine for three style losses (:mod:`ottex.losses`): ``w2`` (Gaussian
Wasserstein, Marron), ``gatys`` (Gram matrices) and ``swd`` (sliced
Wasserstein, Heitz et al. 2021), plus an optional content loss. The image is
optimised coarse to fine (the result of each scale, upsampled, starts the
next) with L-BFGS (default) or Adam; the loss network is a multi-layer VGG-19
feature extractor (:func:`ottex.networks.load_feature_extractor`, ``cd16x``
read-outs by default, average pooling as Gatys and Marron use).

Pixels are kept in ``[0, 1]``: Adam clamps after every step; L-BFGS, which
needs a smooth objective, adds a penalty on values outside ``[0, 1]`` and the
image is clamped after each scale.

Example:
    >>> out = stylize("bridge.jpg", "lava.jpg", method="w2", size=512)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .errors import InputError
from .io import resize
from .losses import STYLE_LOSSES, content_loss, make_style_loss
from .networks import load_feature_extractor
from .optimal_textures import (
    _as_image,
    _check_size,
    _generator,
    content_output_size,
    next_scale_image,
    resolve_device,
    style_at,
    style_factor,
    working_size,
)
from .runtime import tune_cpu_allocator

__all__ = ["OptSettings", "stylize", "synthesize_opt", "OPTIMIZERS", "DEFAULT_STYLE_LAYERS"]

OPTIMIZERS = ("lbfgs", "adam")
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class OptSettings:
    """Settings of an optimisation run.

    Attributes:
        iterations: optimiser iterations per scale, coarse to fine (the last
            value repeats for extra scales).
        coarse_side: scales halve the output's long side down to at least this.
        optimizer: ``"lbfgs"`` or ``"adam"``.
        lr: learning rate (L-BFGS step scale; Adam step size).
        style_layers: taps of the loss network for the style loss.
        content_layer: tap for the content loss.
        content_weight: weight of the (normalised) content loss.
        network: loss network weight set.
        pool: ``"avg"`` or ``"max"`` pooling in the loss network.
        range_weight: weight of the penalty on pixels outside ``[0, 1]`` (L-BFGS).
        pre_relu: tap the loss network before the ReLUs instead of after.
    """

    iterations: tuple[int, ...] = (100, 40)
    coarse_side: int = 256
    optimizer: str = "lbfgs"
    lr: float | None = None
    style_layers: tuple[str, ...] = DEFAULT_STYLE_LAYERS
    content_layer: str = "relu4_1"
    content_weight: float = 1.0
    network: str = "cd16x"
    pool: str = "avg"
    range_weight: float = 10.0
    pre_relu: bool = False


def _scales(size: tuple[int, int], coarse_side: int) -> list[tuple[int, int]]:
    sizes = [working_size(size)]
    while max(sizes[0]) // 2 >= coarse_side and min(sizes[0]) // 2 >= 16:
        h, w = sizes[0]
        sizes.insert(0, working_size((h // 2, w // 2)))
    return sizes


def _check_settings(method: str, settings: OptSettings) -> None:
    if method not in STYLE_LOSSES:
        raise InputError(f"unknown optimisation method '{method}' (choose from {', '.join(STYLE_LOSSES)})")
    if settings.optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer '{settings.optimizer}' (choose from {', '.join(OPTIMIZERS)})")
    if not settings.iterations or any(i < 1 for i in settings.iterations):
        raise InputError(f"iterations must be at least 1, got {settings.iterations}")
    if settings.content_weight < 0:
        raise InputError(f"content weight must be at least 0, got {settings.content_weight}")


def _optimize(
    image: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    iterations: int,
    settings: OptSettings,
    on_eval: Callable[[float], None],
) -> torch.Tensor:
    """Minimise ``objective(image)`` over the pixels; returns the image clamped to ``[0, 1]``."""
    x = image.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    if settings.optimizer == "adam":
        opt = torch.optim.Adam([x], lr=settings.lr or 0.02)
        for _ in range(iterations):
            opt.zero_grad(set_to_none=True)
            loss = objective(x)
            loss.backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0, 1)
            on_eval(float(loss.detach()))
        return x.detach()

    opt = torch.optim.LBFGS([x], lr=settings.lr or 1.0, max_iter=iterations, max_eval=iterations * 5 // 4,
                            history_size=20, tolerance_grad=0.0, tolerance_change=0.0,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        out_of_range = (F.relu(x - 1) + F.relu(-x)).pow(2).mean()
        loss = objective(x)
        total = loss + settings.range_weight * out_of_range
        total.backward()
        on_eval(float(loss.detach()))
        return total

    opt.step(closure)
    return x.detach().clamp_(0, 1)


def _run(
    style_img: torch.Tensor,
    content_img: torch.Tensor | None,
    size: tuple[int, int],
    method: str,
    settings: OptSettings,
    style_scale: float | None,
    init: str,
    batch: int,
    seed: int | None,
    weights_dir: str | os.PathLike | None,
    progress: bool,
    history: list[dict] | None,
    desc: str,
) -> torch.Tensor:
    dev = style_img.device
    if dev.type == "cpu":
        tune_cpu_allocator()
    gen = _generator(dev, seed)
    layers = tuple(dict.fromkeys(settings.style_layers + ((settings.content_layer,) if content_img is not None
                                                          and settings.content_weight > 0 else ())))
    net = load_feature_extractor(settings.network, layers, weights_dir=weights_dir, device=dev, pool=settings.pool,
                                 pre_relu=settings.pre_relu)
    for p in net.parameters():
        p.requires_grad_(False)
    sizes = _scales(size, settings.coarse_side)
    factor = style_factor(style_img.shape[-2:], size, style_scale)
    iters = [settings.iterations[min(i, len(settings.iterations) - 1)] for i in range(len(sizes))]
    bar = tqdm(total=sum(iters), desc=desc, disable=not progress, unit="eval")
    image: torch.Tensor | None = None
    for si, (sh, sw) in enumerate(sizes):
        style_s = style_at(style_img, factor * sh / sizes[-1][0])
        with torch.no_grad():
            sf = net(style_s)
        style_loss = make_style_loss(method, {k: sf[k] for k in settings.style_layers}, gen)
        content_target = None
        content_s = None if content_img is None else resize(content_img, (sh, sw))
        if content_s is not None and settings.content_weight > 0:
            with torch.no_grad():
                content_target = net(content_s)[settings.content_layer]
            c_norm = content_target.pow(2).mean().clamp_min(1e-12)
        image = next_scale_image(image, (sh, sw), style_s, content_s, init, batch, gen)

        def objective(x: torch.Tensor) -> torch.Tensor:
            feats = net(x)
            loss = style_loss(feats)
            if content_target is not None:
                loss = loss + settings.content_weight * content_loss(feats[settings.content_layer],
                                                                     content_target) / c_norm
            return loss.sum()

        evals = 0

        def on_eval(value: float) -> None:
            nonlocal evals
            evals += 1
            if evals <= iters[si]:
                bar.update(1)
            bar.set_postfix(loss=f"{value:.4g}", size=f"{sw}x{sh}")
            if history is not None:
                history.append({"scale": si, "size": (sh, sw), "eval": evals, "loss": value})

        image = _optimize(image, objective, iters[si], settings, on_eval)
    bar.close()
    assert image is not None
    return image


def stylize(
    content: torch.Tensor | str | os.PathLike,
    style: torch.Tensor | str | os.PathLike,
    size: int | None = None,
    *,
    method: str = "w2",
    settings: OptSettings | None = None,
    iterations: Sequence[int] | int | None = None,
    content_weight: float | None = None,
    init: str = "content",
    style_scale: float | None = None,
    seed: int | None = 0,
    weights_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    history: list[dict] | None = None,
) -> torch.Tensor:
    """Style transfer by optimisation of the pixels against a style loss plus a content loss.

    Args:
        content: content image (path or ``(1, 3, H, W)`` tensor in ``[0, 1]``).
        style: style image.
        size: long side of the output (default: the content's); aspect kept.
        method: ``"w2"`` (Gaussian W2, Marron), ``"gatys"`` (Gram) or ``"swd"``
            (sliced Wasserstein).
        settings: all settings (:class:`OptSettings`); the arguments below override it.
        iterations: optimiser iterations per scale (an int: at every scale).
        content_weight: weight of the content loss.
        init: ``"content"`` (default) or ``"noise"``.
        style_scale: size of style details, as in :func:`ottex.synthesize`.
        seed: random seed (noise, sliced directions).
        weights_dir: folder searched first for the loss network's weights.
        device: ``auto``, ``cpu``, ``cuda`` or a device.
        progress: show a progress bar with the loss.
        history: if a list, one record per loss evaluation is appended
            (``scale``, ``size``, ``eval``, ``loss``), e.g. for a plot.

    Returns:
        ``(1, 3, H, W)`` tensor in ``[0, 1]``.

    Example:
        >>> out = stylize(photo, painting, method="gatys", iterations=(50, 20))  # doctest: +SKIP
    """
    settings = _override(settings, iterations, content_weight)
    _check_settings(method, settings)
    if init not in ("content", "noise"):
        raise InputError(f"init must be 'content' or 'noise', got '{init}'")
    dev = resolve_device(device)
    content_img = _as_image(content, dev, "content")
    style_img = _as_image(style, dev)
    h, w = content_output_size(content_img.shape[-2:], size)
    out = _run(style_img, content_img, (h, w), method, settings, style_scale, init, 1, seed, weights_dir, progress,
               history, f"ottex style ({method})")
    return resize(out, (h, w)).clamp_(0, 1)


def synthesize_opt(
    style: torch.Tensor | str | os.PathLike,
    size: Sequence[int] = (512, 512),
    *,
    method: str = "w2",
    settings: OptSettings | None = None,
    iterations: Sequence[int] | int | None = None,
    style_scale: float | None = None,
    batch: int = 1,
    seed: int | None = 0,
    weights_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    history: list[dict] | None = None,
) -> torch.Tensor:
    """Texture synthesis by optimisation from noise against a style loss (see :func:`stylize`).

    Returns:
        ``(batch, 3, H, W)`` tensor in ``[0, 1]``.
    """
    settings = _override(settings, iterations, None)
    _check_settings(method, settings)
    if batch < 1:
        raise InputError(f"batch must be at least 1, got {batch}")
    h, w = _check_size(size)
    dev = resolve_device(device)
    out = _run(_as_image(style, dev), None, (h, w), method, settings, style_scale, "noise", batch, seed,
               weights_dir, progress, history, f"ottex synth ({method})")
    return out[..., :h, :w].contiguous() if out.shape[-2:] != (h, w) else out


def _override(settings: OptSettings | None, iterations: Sequence[int] | int | None,
              content_weight: float | None) -> OptSettings:
    import dataclasses  # noqa: PLC0415

    s = settings or OptSettings()
    if iterations is not None:
        s = dataclasses.replace(s, iterations=(iterations,) if isinstance(iterations, int) else tuple(iterations))
    if content_weight is not None:
        s = dataclasses.replace(s, content_weight=float(content_weight))
    return s
