"""Pseudo Optimizer (Shi & Qiao, CVPR 2020): trained networks that make a texture in a few forward passes.

Gatys-style synthesis optimises the pixels for hundreds of steps; a Pseudo
Optimizer (PO) is a network trained to imitate that optimisation. It reads the
gradients of the Gram texture loss with respect to the loss network's feature
maps at five layers (:func:`ottex.nn.pseudo_optimizer.pseudo_gradients`) and
returns a step of the image's pre-activation: ``x = sigmoid(z + delta)`` with
noise ``z ~ U(-1, 1)`` (:class:`~ottex.nn.pseudo_optimizer.POStage`). Three
variants:

* ``po``: one network for one texture;
* ``adapo``: one network for many textures. The target enters only through the
  gradients (computed from the target's Gram matrices), so a texture it was not
  trained on can be synthesised without retraining;
* ``propo`` (the official code's "improved" model): 5 stages with separate
  weights; stage ``s`` reads the gradients of the first ``s + 1`` layers (finest
  first) of its input image; each intermediate image is scored on the layers its
  stage read, the last on all. Trained on many textures, like ``adapo``.

Training (:func:`train`) minimises the expected normalised Gram loss of the
outputs over noise inputs (:func:`ottex.nn.pseudo_optimizer.texture_loss`),
with Adam (``beta1 = 0.5``) on random crops and flips of the textures, which
are first resized to a short side of ``style_side`` px. Checkpoints
(:func:`save_checkpoint`, :func:`load_checkpoint`) are a state dict plus
metadata (variant, loss network weight set and layers, the training set's
sha256 hashes, steps, ottex version), the Adam state and the random state, so
a run resumes where it stopped; they are written atomically and read with
``torch.load(weights_only=True)``.

Synthesis (the ``po`` method of the registry, :func:`synthesize`) computes the
target Gram matrices of the style at the detail scale of training (short side
``style_side``), then runs the network(s) once: any output size (made at the
next multiple of 16 and cut from the centre), batches of seeds, ``tile=True``
for wrap-around textures (circular padding everywhere).

Example:
    >>> meta = train(["zebra.jpg"], "zebra.pt", TrainOptions(variant="po", steps=2000))  # doctest: +SKIP
    >>> tex = get_method("po").synthesize("zebra.jpg", (512, 512), {"model": "zebra.pt"})  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import pickle
import time
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.checks import check_size
from ..core.device import make_generator, repeatable
from ..core.errors import InputError
from ..core.files import atomic_output, sha256sum
from ..core.progress import Callback, Reporter
from ..core.pyramid import crop_to, working_size
from ..core.resample import resize
from ..core.runtime import prepare_device
from ..image.io import ImageLike, as_image
from ..nn.networks import VGGFeatures, load_feature_extractor
from ..nn.pseudo_optimizer import PO_LAYERS, POStage, gram_targets, gram_texture_loss, layer_grams, pseudo_gradients
from ..nn.weights import get_weight_set
from .base import Method, register_method
from .options import Options, option

__all__ = [
    "VARIANTS",
    "LR_SCHEDULES",
    "TrainOptions",
    "POOptions",
    "PseudoOptimizer",
    "CheckpointError",
    "train",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "synthesize",
    "unroll",
    "FORMAT",
]

VARIANTS = ("po", "adapo", "propo")
LR_SCHEDULES = ("constant", "cosine", "step")
#: The ``format`` entry of every checkpoint (and its version, for later changes).
FORMAT = "ottex-pseudo-optimizer"
FORMAT_VERSION = 1


class CheckpointError(InputError):
    """A model file that is missing, corrupt, or not a Pseudo Optimizer checkpoint of this version."""


# ----------------------------------------------------------------------------------------------
# The model


class PseudoOptimizer(nn.Module):
    """The stages of a Pseudo Optimizer (one for ``po``/``adapo``, five for ``propo``).

    Args:
        variant: ``"po"``, ``"adapo"`` or ``"propo"``.
        in_channels: channels of the loss network's maps at :data:`PO_LAYERS`, finest first.
        width: the network's channels at the finest level (doubled per level, at most 8x).
        blocks: residual blocks per level.
        padding: ``"reflect"``, ``"zeros"`` or ``"circular"``.
    """

    def __init__(
        self, variant: str, in_channels: Sequence[int], width: int = 16, blocks: int = 2, padding: str = "reflect"
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise InputError(f"unknown variant '{variant}' (choose from {', '.join(VARIANTS)})", option="variant")
        self.variant = variant
        widths = [width * min(2**i, 8) for i in range(len(in_channels))]
        counts = range(1, len(in_channels) + 1) if variant == "propo" else [len(in_channels)]
        self.stages = nn.ModuleList(POStage(in_channels[:n], widths[:n], blocks, padding) for n in counts)

    def stage_layers(self, s: int) -> tuple[str, ...]:
        """The layers stage ``s`` reads."""
        return PO_LAYERS[: len(self.stages[s].levels)]

    def set_padding(self, mode: str) -> None:
        for stage in self.stages:
            stage.padding = mode


def unroll(
    model: PseudoOptimizer,
    net: VGGFeatures,
    targets: dict[str, tuple[torch.Tensor, torch.Tensor]],
    z: torch.Tensor,
    score: bool = False,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run every stage from the pre-activation ``z``; returns the image and (with ``score``) the losses.

    The losses (``(B,)`` each) are those of the intermediate images on the layers
    their stage read, then of the output on all layers (the training objective).
    """
    pre = z
    losses: list[torch.Tensor] = []
    for s, stage in enumerate(model.stages):
        layers = model.stage_layers(s)
        grams, grads = pseudo_gradients(net, torch.sigmoid(pre), targets, layers)
        if score and s > 0:
            losses.append(gram_texture_loss(grams, targets, model.stage_layers(s - 1)))
        pre = pre + stage(grads)
    image = torch.sigmoid(pre)
    if score:
        losses.append(gram_texture_loss(layer_grams(net, image), targets, PO_LAYERS))
    return image, losses


# ----------------------------------------------------------------------------------------------
# Checkpoints


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())


def save_checkpoint(
    path: str | os.PathLike,
    model: PseudoOptimizer,
    meta: dict,
    optimizer: torch.optim.Optimizer | None = None,
    rng: torch.Tensor | None = None,
) -> None:
    """Write a checkpoint atomically (a temporary file in the same folder, then ``os.replace``).

    Args:
        path: the file.
        model: the network.
        meta: its metadata (plain values: str, int, float, bool, lists, dicts).
        optimizer: the training optimiser, for resuming.
        rng: the training generator's state, for resuming.
    """
    obj = {"format": FORMAT, "format_version": FORMAT_VERSION, "meta": meta,
           "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    if optimizer is not None:
        obj["optimizer"] = optimizer.state_dict()
    if rng is not None:
        obj["rng"] = rng.cpu()
    _atomic_save(obj, Path(path))


def load_checkpoint(path: str | os.PathLike, device: str | torch.device | None = "cpu") -> dict:
    """Read a checkpoint safely (``weights_only=True``) and check it: the raw dict, with ``"model"`` added.

    Raises:
        CheckpointError: the file is missing, is not a checkpoint (corrupt,
            truncated, another format) or does not fit its own metadata.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"model not found: {p}", option="model")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError,
            AttributeError, IndexError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{p} is not a readable ottex Pseudo Optimizer checkpoint (corrupt, truncated or "
                              f"another format: {type(exc).__name__})", option="model") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not an ottex Pseudo Optimizer checkpoint (made with 'ottex train')",
                              option="model")
    if obj.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{p} has checkpoint format version {obj.get('format_version')}; this ottex reads "
                              f"version {FORMAT_VERSION}", option="model")
    meta = obj.get("meta")
    state = obj.get("state_dict")
    need = ("variant", "in_channels", "width", "blocks", "padding", "weights", "layers", "style_side", "step")
    if not isinstance(meta, dict) or not isinstance(state, dict) or any(k not in meta for k in need):
        raise CheckpointError(f"{p}: incomplete checkpoint (metadata or weights missing)", option="model")
    if tuple(meta["layers"]) != PO_LAYERS:
        raise CheckpointError(f"{p}: trained on layers {meta['layers']}, this ottex uses {PO_LAYERS}",
                              option="model")
    try:
        model = PseudoOptimizer(meta["variant"], meta["in_channels"], meta["width"], meta["blocks"], meta["padding"])
        model.load_state_dict(state, strict=True)
    except (RuntimeError, InputError, TypeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise CheckpointError(f"{p}: the weights do not fit the model its metadata describes ({first})",
                              option="model") from None
    obj["model"] = model.to(device).eval()
    return obj


_MODELS: dict[tuple, tuple[PseudoOptimizer, dict]] = {}
_NETS: dict[tuple, VGGFeatures] = {}


def load_model(path: str | os.PathLike, device: str | torch.device | None = "cpu") -> tuple[PseudoOptimizer, dict]:
    """The model and metadata of a checkpoint, cached per file version and device (a warm process reads once)."""
    p = Path(path)
    st = p.stat() if p.is_file() else None
    key = (str(p.resolve()), st and st.st_mtime_ns, st and st.st_size, str(device))
    if st is None or key not in _MODELS:
        obj = load_checkpoint(p, device)
        _MODELS.clear()
        _MODELS[key] = (obj["model"], obj["meta"])
    return _MODELS[key]


def _loss_network(weights: str, weights_dir: str | None, device: torch.device) -> VGGFeatures:
    key = (weights, weights_dir, str(device))
    if key not in _NETS:
        missing = [layer for layer in PO_LAYERS if layer not in get_weight_set(weights).taps]
        if missing:
            raise InputError(f"weight set '{weights}' lacks layers {', '.join(missing)} (the Pseudo Optimizer uses "
                             f"{', '.join(PO_LAYERS)}; use cd16x)", option="weights")
        net = load_feature_extractor(weights, PO_LAYERS, weights_dir=weights_dir, device=device, pool="avg")
        net.requires_grad_(False)
        _NETS[key] = net
    return _NETS[key]


def _short_side(image: torch.Tensor, side: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    s = side / min(h, w)
    return resize(image, (max(side, round(h * s)), max(side, round(w * s)))) if s != 1 else image


# ----------------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class TrainOptions:
    """Settings of a training run.

    Attributes:
        variant: ``"po"`` (one texture), ``"adapo"`` or ``"propo"`` (any number).
        size: side of the square training crops (and outputs) in px; a multiple of 16.
        style_side: the textures are resized to this short side before cropping
            (the detail scale; synthesis uses it for the targets too).
        steps: Adam steps in all (a resumed run continues up to this).
        batch: crops (and noise inputs) per step.
        lr: Adam learning rate.
        lr_schedule: ``"constant"``, ``"cosine"`` (to 0 at ``steps``) or ``"step"`` (x0.1 at 3/4 of ``steps``).
        seed: seed of the weights' initialisation, the crops and the noise.
        width: the network's channels at the finest level (x2 per level, at most x8).
        blocks: residual blocks per level.
        weights: loss network weight set.
        save_every: write the checkpoint every this many steps (a crash loses at most these).
    """

    variant: str = "po"
    size: int = 128
    style_side: int = 256
    steps: int = 2000
    batch: int = 4
    lr: float = 1e-3
    lr_schedule: str = "cosine"
    seed: int = 0
    width: int = 16
    blocks: int = 2
    weights: str = "cd16x"
    save_every: int = 100

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise InputError(f"unknown variant '{self.variant}' (choose from {', '.join(VARIANTS)})",
                             option="variant")
        if self.size < 16 or self.size % 16:
            raise InputError(f"training size must be a multiple of 16 of at least 16, got {self.size}",
                             option="size")
        if self.style_side < self.size:
            raise InputError(f"style_side ({self.style_side}) must be at least the crop size ({self.size})",
                             option="style_side")
        for name in ("steps", "batch", "width", "save_every"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}", option=name)
        if self.blocks < 0:
            raise InputError(f"blocks must be at least 0, got {self.blocks}", option="blocks")
        if not self.lr > 0:
            raise InputError(f"learning rate must be positive, got {self.lr}", option="lr")
        if self.lr_schedule not in LR_SCHEDULES:
            raise InputError(f"unknown learning-rate schedule '{self.lr_schedule}' (choose from "
                             f"{', '.join(LR_SCHEDULES)})", option="lr_schedule")

    def lr_at(self, step: int) -> float:
        """The learning rate of step ``step`` (0-based).

        Example:
            >>> o = TrainOptions(steps=100, lr=1.0)
            >>> o.lr_at(0), o.lr_at(50), TrainOptions(steps=100, lr=1.0, lr_schedule="step").lr_at(80)
            (1.0, 0.5, 0.1)
        """
        if self.lr_schedule == "cosine":
            return self.lr * 0.5 * (1 + math.cos(math.pi * min(step, self.steps) / self.steps))
        if self.lr_schedule == "step":
            return self.lr * (0.1 if step >= self.steps * 3 // 4 else 1.0)
        return self.lr


#: Settings that must match to resume a run (the others, e.g. ``steps`` or ``lr``, may change).
_RESUME_KEYS = ("variant", "size", "style_side", "batch", "width", "blocks", "weights", "seed")


def _sample(textures: list[torch.Tensor], size: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    """``batch`` random crops with random flips, each from a random texture."""
    crops = []
    for _ in range(batch):
        t = textures[int(torch.randint(len(textures), (1,), generator=gen))]
        h, w = t.shape[-2:]
        top = int(torch.randint(h - size + 1, (1,), generator=gen))
        left = int(torch.randint(w - size + 1, (1,), generator=gen))
        crop = t[..., top : top + size, left : left + size]
        flips = torch.randint(2, (2,), generator=gen).tolist()
        dims = [d for d, f in zip((-1, -2), flips) if f]
        crops.append(crop.flip(dims) if dims else crop)
    return torch.cat(crops)


@repeatable
def train(
    textures: Sequence[ImageLike],
    output: str | os.PathLike,
    options: TrainOptions | None = None,
    *,
    device: str | torch.device | None = None,
    weights_dir: str | os.PathLike | None = None,
    resume: bool = True,
    callback: Callback | None = None,
) -> dict:
    """Train a Pseudo Optimizer on ``textures`` and write it to ``output``; returns the checkpoint's metadata.

    Args:
        textures: image files (or ``(1, 3, H, W)`` tensors); ``po`` takes exactly one.
        output: the checkpoint file, written every ``save_every`` steps and at the end.
        options: the settings (:class:`TrainOptions`).
        device: ``auto``, ``cpu``, ``cuda`` or a device.
        weights_dir: folder searched first for the loss network's weights.
        resume: continue from ``output`` if it exists (same settings and
            textures: the result is the same as an uninterrupted run on the
            same device); False starts again and replaces it.
        callback: progress subscriber (one event per step, with the loss).

    Raises:
        InputError: bad settings or textures, or ``output`` is a run with other settings.
        CheckpointError: ``output`` exists but cannot be read.
        Cancelled: the callback asked to stop (the checkpoint is written first).
    """
    opts = options or TrainOptions()
    if not textures:
        raise InputError("no training textures given", option="textures")
    if opts.variant == "po" and len(textures) != 1:
        raise InputError(f"variant po is trained on one texture, got {len(textures)} (use adapo or propo for "
                         "several)", option="variant")
    dev = prepare_device(device)
    wdir = None if weights_dir is None else str(weights_dir)
    net = _loss_network(opts.weights, wdir, dev)
    names, hashes, images = [], [], []
    for t in textures:
        img = as_image(t, dev, "texture")
        if isinstance(t, (str, os.PathLike)):
            names.append(Path(t).name)
            hashes.append(sha256sum(t))
        else:
            names.append("<tensor>")
            hashes.append(hashlib.sha256(img.cpu().numpy().tobytes()).hexdigest())
        images.append(_short_side(img, opts.style_side))
    out = Path(output)
    gen = make_generator(opts.seed, "cpu")
    with torch.no_grad():
        taps = net(torch.zeros(1, 3, 32, 32, device=dev), read_out=False)
    in_channels = [int(taps[k].shape[1]) for k in PO_LAYERS]
    with torch.random.fork_rng(devices=[]):  # the weights' initialisation, without touching the global state
        torch.manual_seed(opts.seed)
        model = PseudoOptimizer(opts.variant, in_channels, opts.width, opts.blocks).to(dev)
    adam = torch.optim.Adam(model.parameters(), lr=opts.lr, betas=(0.5, 0.999))
    settings = {k: v for k, v in dataclasses.asdict(opts).items()}
    meta = {"variant": opts.variant, "in_channels": in_channels, "width": opts.width, "blocks": opts.blocks,
            "padding": "reflect", "weights": opts.weights, "layers": list(PO_LAYERS), "style_side": opts.style_side,
            "size": opts.size, "textures": names, "texture_sha256": hashes, "step": 0, "steps": opts.steps,
            "settings": settings, "history": [], "seconds": 0.0, "cpu_seconds": 0.0,
            "ottex_version": _version(), "device": str(dev)}
    old = None
    if resume and out.exists():
        obj = load_checkpoint(out, dev)
        old = obj["meta"]
        before = old.get("settings", {})
        diff = [f"{k}={before.get(k)}" for k in _RESUME_KEYS if before.get(k) != settings[k]]
        if diff:
            raise InputError(f"{out} is a run with other settings ({', '.join(diff)}); "
                             "give the same settings, another output, or start again (resume=False)", option="output")
        if sorted(old.get("texture_sha256", [])) != sorted(hashes):
            raise InputError(f"{out} was trained on other textures ({', '.join(old.get('textures', []))}); give the "
                             "same ones, another output, or start again (resume=False)", option="output")
        model.load_state_dict(obj["model"].state_dict())
        if "optimizer" in obj:
            adam.load_state_dict(obj["optimizer"])
        if "rng" in obj:
            gen.set_state(obj["rng"])
        meta.update(step=int(old["step"]), history=list(old.get("history", [])), seconds=float(old.get("seconds", 0)),
                    cpu_seconds=float(old.get("cpu_seconds", 0)))
    start = meta["step"]
    report = Reporter("po-train", callback, [(opts.size, opts.size)], [max(opts.steps, start)], unit="step")
    report.begin_scale(0)
    report.step_in_scale = start
    model.train()

    saved = [start]

    def save() -> None:
        meta["seconds_per_step"] = meta["seconds"] / max(1, meta["step"])
        meta["cpu_seconds_per_step"] = meta["cpu_seconds"] / max(1, meta["step"])
        save_checkpoint(out, model, meta, adam, gen.get_state())
        saved[0] = meta["step"]

    step = start
    try:
        while step < opts.steps:
            t0, c0 = time.perf_counter(), time.process_time()
            for group in adam.param_groups:
                group["lr"] = opts.lr_at(step)
            crops = _sample(images, opts.size, opts.batch, gen)
            z = torch.rand(opts.batch, 3, opts.size, opts.size, generator=gen).to(dev) * 2 - 1
            with torch.no_grad():
                targets = gram_targets(net(crops))
            _, losses = unroll(model, net, targets, z, score=True)
            loss = sum(v.mean() for v in losses)
            adam.zero_grad(set_to_none=True)
            loss.backward()
            adam.step()
            step += 1
            final = float(losses[-1].mean().detach())
            meta["history"].append(final)
            meta["step"] = step
            meta["seconds"] += time.perf_counter() - t0
            meta["cpu_seconds"] += time.process_time() - c0
            if step % opts.save_every == 0 or step == opts.steps:
                save()
            report.step(loss=final)
    except BaseException:  # Ctrl-C, a cancelled run, an error: keep the steps done so far
        if meta["step"] > saved[0]:
            with contextlib.suppress(Exception):
                save()
        raise
    if step == start:  # nothing to do (already trained that far): the file stays as it is
        return old if old is not None else meta
    report.finish()
    model.eval()
    return meta


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415 - only when saving

    try:
        return version("ottex")
    except PackageNotFoundError:
        return "unknown"


# ----------------------------------------------------------------------------------------------
# Synthesis (the registry's ``po`` method)


@dataclass(frozen=True)
class POOptions(Options):
    """Options of the ``po`` method (synthesis with a trained Pseudo Optimizer)."""

    model: str | None = option(None, metavar="CKPT", kind="file",
                               help="trained model (a checkpoint of 'ottex train'); required")
    style_side: int | None = option(
        None, metavar="PX", help="short side the style example is resized to for its Gram targets (detail scale) "
        "[the model's training value]")
    tile: bool = option(False, kind="flag", help="tileable output (circular padding; sizes multiple of 16)")

    def __post_init__(self) -> None:
        if self.model is not None:
            object.__setattr__(self, "model", str(self.model))
        if self.style_side is not None and self.style_side < 16:
            raise InputError(f"style side must be at least 16 px, got {self.style_side}", option="style_side")


def _synthesize(
    style: ImageLike | Sequence[ImageLike],
    size: Sequence[int],
    opts: POOptions,
    *,
    batch: int = 1,
    seed: int | None = 0,
    device: str | torch.device | None = None,
    weights_dir: str | os.PathLike | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    if opts.model is None:
        raise InputError("method 'po' needs a trained model (model=CKPT; train one with 'ottex train')",
                         option="model")
    if isinstance(style, (list, tuple)):
        if len(style) != 1:
            raise InputError("method 'po' takes one style example", option="style")
        style = style[0]
    h, w = check_size(size)
    if opts.tile and (h % 16 or w % 16):
        raise InputError(f"tileable outputs need sides that are multiples of 16, got {w}x{h}", option="tile")
    dev = prepare_device(device)
    model, meta = load_model(opts.model, dev)
    style_img = as_image(style, dev, "style")
    if meta["variant"] == "po" and isinstance(style, (str, os.PathLike)) and meta.get("texture_sha256") \
            and sha256sum(style) not in meta["texture_sha256"]:
        warnings.warn(f"{Path(opts.model).name} is a one-texture model trained on {', '.join(meta['textures'])}; "
                      f"{Path(style).name} is another texture (adapo and propo models take any)", stacklevel=2)
    net = _loss_network(meta["weights"], None if weights_dir is None else str(weights_dir), dev)
    padding = "circular" if opts.tile else meta["padding"]
    net.padding = "circular" if opts.tile else get_weight_set(meta["weights"]).padding
    model.set_padding(padding)
    report = Reporter("po", callback, [(h, w)], [len(model.stages)])
    report.begin_scale(0)
    with torch.no_grad():
        targets = gram_targets(net(_short_side(style_img, opts.style_side or int(meta["style_side"]))))
        hh, ww = working_size((h, w))
        z = torch.rand(batch, 3, hh, ww, generator=make_generator(seed, dev), device=dev) * 2 - 1
        image, _ = unroll(model, net, targets, z)
    net.padding = get_weight_set(meta["weights"]).padding
    for _ in model.stages:
        report.step()
    out = crop_to(image, (h, w)).clamp_(0, 1)
    report.finish(out)
    return out


def synthesize(
    style: ImageLike,
    model: str | os.PathLike,
    size: Sequence[int] = (512, 512),
    *,
    batch: int = 1,
    seed: int | None = 0,
    tile: bool = False,
    style_side: int | None = None,
    device: str | torch.device | None = None,
    weights_dir: str | os.PathLike | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Textures like ``style`` from a trained Pseudo Optimizer ``model``: ``(batch, 3, H, W)`` in ``[0, 1]``.

    Same seed, model, settings and device give the same images. An ``adapo``
    or ``propo`` model takes styles it was not trained on.
    """
    return METHOD.synthesize(style, size, POOptions(model=str(model), tile=tile, style_side=style_side),
                             batch=batch, seed=seed, device=device, weights_dir=weights_dir, callback=callback)


def _label(opts: POOptions, task: str) -> str:
    return "po" if opts.model is None else f"po_{Path(opts.model).stem}"


METHOD = register_method(Method(
    "po", "Pseudo Optimizer (Shi & Qiao 2020): a network trained with 'ottex train' makes the texture in one "
    "forward pass (po, adapo, propo models)", POOptions, synthesize=_synthesize, label=_label))
