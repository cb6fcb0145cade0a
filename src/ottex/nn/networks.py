"""VGG-19 encoders, decoders and multi-layer feature extractors.

All networks take an RGB image tensor in ``[0, 1]`` of shape ``(B, 3, H, W)``.
Each pretrained file is converted by its :class:`~ottex.nn.weights.WeightSet`
to the canonical layout of :mod:`ottex.nn.layout`; the set also gives the
padding and decoder conventions the networks are built with.

Padding is a module attribute (``"reflect"``, ``"zeros"`` or ``"circular"``) so
the same weights can produce tileable (wrap-around) results.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from ..core.device import deterministic_backward
from ..core.errors import MissingWeightsError, WeightsError
from .layout import POOL_AFTER, UPSAMPLE_AFTER, VGG_CONVS, conv_name, level_conv, min_size_for_level, relu_name
from .weights import WeightSet, get_weight_set, resolve_weight_file

__all__ = [
    "VGG_CONVS",
    "relu_name",
    "conv_name",
    "run_in_bands",
    "Encoder",
    "Decoder",
    "VGGFeatures",
    "load_encoder",
    "load_decoder",
    "load_autoencoders",
    "load_feature_extractor",
    "keep_networks",
    "kept_networks",
    "available_levels",
    "min_size_for_level",
    "pad_for_3x3",
    "bfloat16_convolutions",
]


def pad_for_3x3(x: torch.Tensor, mode: str) -> torch.Tensor:
    """One pixel of padding on each side of ``(*, C, H, W)`` for a 3x3 convolution: ``"zeros"``, ``"reflect"``
    (``"replicate"`` for maps under 2 px) or ``"circular"``."""
    if mode == "zeros":
        return F.pad(x, (1, 1, 1, 1))
    if mode == "reflect" and min(x.shape[-2:]) < 2:
        mode = "replicate"
    if mode != "circular" and deterministic_backward(x):
        return _pad_repeatable(x, mode)
    out = F.pad(x, (1, 1, 1, 1), mode=mode)
    if mode == "circular" and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)  # circular padding returns channels-first
    return out


class _PadRepeatable(torch.autograd.Function):
    """``F.pad(x, (1, 1, 1, 1), mode)`` for ``"reflect"``/``"replicate"`` with a backward that folds each border's
    gradient back with a fixed order of plain additions (the CUDA backward of ``F.pad``'s reflect and replicate
    modes adds them with atomics in no fixed order, so runs would not repeat). Folds the columns, then the rows:
    two copies of the gradient and four one-pixel additions, where a formulation from slices and concatenations
    makes a zeroed full-size gradient per slice (measured on an H100: most of the time of a repeatable STROTSS
    step went to such small operations)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, mode: str) -> torch.Tensor:  # noqa: ANN001
        ctx.k = 1 if mode == "reflect" else 0
        return F.pad(x, (1, 1, 1, 1), mode=mode)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN001
        k = ctx.k
        cols = grad[..., 1:-1].clone()
        w = cols.shape[-1]
        cols[..., k] += grad[..., 0]
        cols[..., w - 1 - k] += grad[..., -1]
        out = cols[..., 1:-1, :].clone()
        h = out.shape[-2]
        out[..., k, :] += cols[..., 0, :]
        out[..., h - 1 - k, :] += cols[..., -1, :]
        return out, None


def _pad_repeatable(x: torch.Tensor, mode: str) -> torch.Tensor:
    """``F.pad(x, (1, 1, 1, 1), mode)`` for ``"reflect"``/``"replicate"``: the same values, a backward that repeats
    bit for bit on CUDA (:class:`_PadRepeatable`)."""
    return _PadRepeatable.apply(x, mode)


_pad = pad_for_3x3


#: Values (channels x pixels) of the widest activation held at once: encoders and decoders whose widest layer
#: would hold more run in bands of rows with overlapping margins (same result), so memory stays bounded at print,
#: 4K and 8K sizes (64 M float32 values: 256 MB, a few times that with the padded copies; a 4096 px wide image
#: goes through the full-width VGG-19 level 2-3 encoders 256 rows at a time).
BAND_VALUES = 1 << 26
#: Margins of the bands: at least the receptive-field radius of each level, in input rows (encoders: image
#: pixels, multiples of the level's pooling factor; decoders: feature pixels).
_ENCODER_HALO = {1: 4, 2: 8, 3: 16, 4: 48, 5: 96}
_DECODER_HALO = {1: 2, 2: 3, 3: 4, 4: 5, 5: 6}


def run_in_bands(
    forward: nn.Module | object, x: torch.Tensor, up: int, down: int, halo: int, band: int, circular: bool
) -> torch.Tensor:
    """Apply a convolutional ``forward`` (``h`` rows -> ``h * up // down`` rows) band by band.

    Each band of ``band`` input rows is extended by ``halo`` rows on both sides
    (clipped at the image's edges, where the network pads as usual; wrapped
    around when ``circular``), run through ``forward``, and the rows that the
    margins make exact are kept. ``band`` and ``halo`` must be multiples of
    ``down`` so that poolings line up.
    """
    h = x.shape[-2]
    off = 0
    if circular:
        halo = min(halo, h)
        x = torch.cat([x[..., h - halo :, :], x, x[..., :halo, :]], dim=-2)
        off = halo
    result: torch.Tensor | None = None
    for y0 in range(0, h, band):
        y1 = min(h, y0 + band)
        a, b = max(0, off + y0 - halo), min(x.shape[-2], off + y1 + halo)
        out = forward(x[..., a:b, :])
        top = (off + y0 - a) * up // down
        if result is None:  # written band by band: no list of pieces and concatenated copy
            result = out.new_empty(*out.shape[:-2], h * up // down, out.shape[-1])
        result[..., y0 * up // down : y1 * up // down, :] = out[..., top : top + (y1 - y0) * up // down, :]
        del out
    assert result is not None
    return result


def _band_rows(values_per_row: int, multiple: int, halo: int) -> int:
    """Rows per band that keep the widest activation under :data:`BAND_VALUES` (a multiple of ``multiple``,
    at least four halos so the margins cost at most half the work)."""
    rows = max(BAND_VALUES // max(values_per_row, 1), 4 * halo, multiple)
    return rows // multiple * multiple


def _widest(convs: nn.ModuleDict, names: tuple[str, ...], scale: dict[str, float]) -> float:
    """Values per input pixel of the widest activation: out channels x the layer's area relative to the input."""
    return max(convs[n].out_channels * scale[n] for n in names)


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last memory order on CPU, where oneDNN's convolutions run 1.3-1.5x faster in it
    (3x3 convolution, 64 channels, one core: 0.82 s vs 1.18 s per 1024x1024 image); unchanged elsewhere."""
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" and x.dim() == 4 else x


def bfloat16_convolutions(device: torch.device | str, enabled: bool = True) -> torch.autocast:
    """Context in which the networks' convolutions compute in bfloat16 (``torch.autocast``; outputs are bfloat16).

    Used for large images: features within about 1 % (relative L2 error of relu1_1..relu5_1 features
    of a 512 px photo: 0.4-0.8 %), decoded pixels within 0.001-0.0024 on average (levels 1-5)."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=enabled)


def _conv_module(weight: torch.Tensor, bias: torch.Tensor) -> nn.Conv2d:
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:], bias=True)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    conv.requires_grad_(False)
    return conv


class Encoder(nn.Module):
    """VGG-style encoder from RGB ``[0, 1]`` to ``relu{level}_1`` features.

    Args:
        state: canonical state dict (``conv0.*``, ``conv11.*`` ...).
        level: last block (1-5); the output is ``relu{level}_1``.
        padding: ``"reflect"``, ``"zeros"`` or ``"circular"``.

    Shape:
        ``(B, 3, H, W) -> (B, C, H / 2**(level-1), W / 2**(level-1))`` (floor division).
    """

    def __init__(self, state: dict[str, torch.Tensor], level: int, padding: str = "reflect") -> None:
        super().__init__()
        self.level = level
        self.padding = padding
        self.conv0 = _conv_module(state["conv0.weight"], state["conv0.bias"])
        last = VGG_CONVS.index(level_conv(level))
        self.names = VGG_CONVS[: last + 1]
        self.convs = nn.ModuleDict({n: _conv_module(state[f"{n}.weight"], state[f"{n}.bias"]) for n in self.names})
        area, scale = 1.0, {}
        for n in self.names:
            scale[n] = area
            if n in POOL_AFTER:
                area /= 4
        self._values_per_pixel = _widest(self.convs, self.names, scale)

    @property
    def out_channels(self) -> int:
        return self.convs[self.names[-1]].out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        down = 2 ** (self.level - 1)
        if h * w * self._values_per_pixel > BAND_VALUES and not torch.is_grad_enabled():
            band = _band_rows(int(w * self._values_per_pixel), down, _ENCODER_HALO[self.level])
            if band < h:
                return run_in_bands(self._forward, x, 1, down, _ENCODER_HALO[self.level], band,
                                    self.padding == "circular")
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv0(_channels_last(x))
        for n in self.names:
            x = F.relu(self.convs[n](_pad(x, self.padding)))
            if n in POOL_AFTER and n != self.names[-1]:
                x = F.max_pool2d(x, 2)
        return x.contiguous()


class Decoder(nn.Module):
    """Inverse of :class:`Encoder`: ``relu{level}_1`` features to RGB.

    Args:
        state: canonical state dict holding ``conv{level}1 ... conv11``.
        level: the relu level the decoder inverts.
        final_relu: apply a ReLU after the last convolution (as the CD networks do).
        padding: ``"reflect"``, ``"zeros"`` or ``"circular"``.

    Shape:
        ``(B, C, h, w) -> (B, 3, h * 2**(level-1), w * 2**(level-1))``.
    """

    def __init__(
        self, state: dict[str, torch.Tensor], level: int, final_relu: bool = False, padding: str = "reflect"
    ) -> None:
        super().__init__()
        self.level = level
        self.padding = padding
        self.final_relu = final_relu
        last = VGG_CONVS.index(level_conv(level))
        self.names = tuple(reversed(VGG_CONVS[: last + 1]))
        self.convs = nn.ModuleDict({n: _conv_module(state[f"{n}.weight"], state[f"{n}.bias"]) for n in self.names})
        area, scale = 1.0, {}
        for n in self.names:
            scale[n] = area
            if n in UPSAMPLE_AFTER:
                area *= 4
        self._values_per_pixel = max(_widest(self.convs, self.names, scale), 3 * area)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        up = 2 ** (self.level - 1)
        if h * w * self._values_per_pixel > BAND_VALUES and not torch.is_grad_enabled():
            band = _band_rows(int(w * self._values_per_pixel), 1, _DECODER_HALO[self.level])
            if band < h:
                return run_in_bands(self._forward, x, up, 1, _DECODER_HALO[self.level], band,
                                    self.padding == "circular")
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _channels_last(x)
        for n in self.names:
            x = self.convs[n](_pad(x, self.padding))
            if n != "conv11" or self.final_relu:
                x = F.relu(x)
            if n in UPSAMPLE_AFTER:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x.contiguous()


class VGGFeatures(nn.Module):
    """Multi-layer feature extractor (a loss network) with named taps.

    Args:
        state: canonical state dict; may hold ``convXY_aux`` 1x1 read-outs.
        layers: taps to return, e.g. ``("relu1_1", "relu2_1", "relu3_1")``.
        padding: ``"reflect"``, ``"zeros"`` or ``"circular"``.
        pool: ``"max"`` or ``"avg"`` (Gatys et al. use average pooling).
        aux: map each tap through its ``*_aux`` 1x1 read-out when present
            (the cd16x encoder's VGG-19-width features).
        pre_relu: return activations before the ReLU.

    Returns:
        ``forward`` returns a dict ``{layer: (B, C, h, w)}``.
    """

    def __init__(
        self,
        state: dict[str, torch.Tensor],
        layers: tuple[str, ...],
        padding: str = "reflect",
        pool: str = "max",
        aux: bool = True,
        pre_relu: bool = False,
    ) -> None:
        super().__init__()
        self.layers = tuple(layers)
        self.padding = padding
        self.pool = pool
        self.pre_relu = pre_relu
        convs = [conv_name(layer) for layer in self.layers]
        missing = [layer for layer, c in zip(self.layers, convs) if f"{c}.weight" not in state]
        if missing:
            have = [relu_name(c) for c in VGG_CONVS if f"{c}.weight" in state]
            raise WeightsError(f"layers {', '.join(missing)} are not in these weights (available: {', '.join(have)})")
        last = max(VGG_CONVS.index(c) for c in convs)
        self.names = VGG_CONVS[: last + 1]
        self.conv0 = _conv_module(state["conv0.weight"], state["conv0.bias"])
        self.convs = nn.ModuleDict({n: _conv_module(state[f"{n}.weight"], state[f"{n}.bias"]) for n in self.names})
        self.aux = nn.ModuleDict(
            {
                c: _conv_module(state[f"{c}_aux.weight"], state[f"{c}_aux.bias"])
                for c in convs
                if aux and f"{c}_aux.weight" in state
            }
        )

    def forward(self, x: torch.Tensor, read_out: bool = True) -> dict[str, torch.Tensor]:
        """The taps of ``x``; ``read_out=False`` leaves out the 1x1 read-outs (apply them later, to fewer
        values, with :meth:`read_out`: they are affine, so they commute with any interpolation)."""
        out: dict[str, torch.Tensor] = {}
        wanted = {conv_name(layer): layer for layer in self.layers}
        x = self.conv0(x)
        for n in self.names:
            pre = self.convs[n](_pad(x, self.padding))
            x = F.relu(pre)
            if n in wanted:
                tap = pre if self.pre_relu else x
                out[wanted[n]] = self.aux[n](tap) if read_out and n in self.aux else tap
            if n in POOL_AFTER and n != self.names[-1]:
                x = F.avg_pool2d(x, 2) if self.pool == "avg" else F.max_pool2d(x, 2)
        return out

    def read_out(self, layer: str, values: torch.Tensor) -> torch.Tensor:
        """The 1x1 read-out of tap ``layer`` applied to ``(N, C)`` feature vectors (unchanged if it has none).

        Example:
            >>> net = VGGFeatures(state, ("relu1_1",))  # doctest: +SKIP
            >>> taps = net(image, read_out=False)  # doctest: +SKIP
            >>> vectors = net.read_out("relu1_1", taps["relu1_1"].flatten(2)[0].T)  # doctest: +SKIP
        """
        conv = self.aux[conv_name(layer)] if conv_name(layer) in self.aux else None
        if conv is None:
            return values
        return torch.addmm(conv.bias, values, conv.weight.flatten(1).T)


def _dir(weights_dir: str | os.PathLike | None) -> str | None:
    return None if weights_dir is None else str(weights_dir)


_Net = TypeVar("_Net", bound=nn.Module)
_kept: OrderedDict[tuple, nn.Module] = OrderedDict()
_kept_limit = 0
_kept_lock = threading.Lock()


def keep_networks(limit: int = 32) -> None:
    """Keep the networks this process builds for later runs (a long-lived process such as ``ottex serve``).

    Off by default: a script's networks are freed with its run (their weights stay cached in memory, so a
    rebuild reads no file). When on, :func:`load_encoder`, :func:`load_decoder` and
    :func:`load_feature_extractor` return the network built before for the same file, device and settings
    (the file is still looked up, so a changed folder is noticed), keeping the ``limit`` most recently used.
    The networks are then shared between runs: use them from one thread per device. ``limit=0`` turns
    keeping off and frees the kept networks.

    Example:
        >>> keep_networks(8); kept_networks()
        0
        >>> keep_networks(0)
    """
    global _kept_limit
    with _kept_lock:
        _kept_limit = max(0, int(limit))
        while len(_kept) > _kept_limit:
            _kept.popitem(last=False)


def kept_networks() -> int:
    """How many networks :func:`keep_networks` holds now."""
    with _kept_lock:
        return len(_kept)


def _kept_or_build(
    ws: WeightSet, role: str, level: int, weights_dir: str | os.PathLike | None, settings: tuple,
    build: Callable[[], _Net],
) -> _Net:
    """``build()``, or the network kept from an earlier call with the same file and settings."""
    if not _kept_limit:
        return build()
    path = str(ws.resolve(role, level, _dir(weights_dir)))
    key = (ws.name, role, level, path, *(str(torch.device(v)) if isinstance(v, torch.device) else v
                                          for v in settings))
    with _kept_lock:
        net = _kept.get(key)
        if net is not None:
            _kept.move_to_end(key)
            return net  # type: ignore[return-value]
    net = build()
    with _kept_lock:
        if _kept_limit:
            _kept[key] = net
            while len(_kept) > _kept_limit:
                _kept.popitem(last=False)
    return net


def available_levels(set_name: str, weights_dir: str | os.PathLike | None = None) -> tuple[int, ...]:
    """Levels of a set whose encoder and decoder can be loaded (found locally or downloadable)."""
    wset = get_weight_set(set_name)
    if wset.parts:
        return tuple(level for level, names in wset.parts
                     if any(level in available_levels(name, weights_dir) for name in names))
    ok = []
    for level in wset.levels:
        try:
            resolve_weight_file(set_name, "encoder", level, _dir(weights_dir), download=False)
            resolve_weight_file(set_name, "decoder", level, _dir(weights_dir), download=False)
        except WeightsError:
            continue
        ok.append(level)
    return tuple(ok)


def load_encoder(
    set_name: str = "cd16x",
    level: int = 5,
    weights_dir: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    padding: str | None = None,
) -> Encoder:
    """Build the pretrained encoder to ``relu{level}_1`` of a weight set."""
    ws = get_weight_set(set_name)

    def build() -> Encoder:
        state = ws.load_state("encoder", level, _dir(weights_dir))
        enc = Encoder(state, level, padding or ws.padding)
        return enc.to(device).eval() if device is not None else enc.eval()

    return _kept_or_build(ws, "encoder", level, weights_dir, (device, padding), build)


def load_decoder(
    set_name: str = "cd16x",
    level: int = 5,
    weights_dir: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    padding: str | None = None,
) -> Decoder:
    """Build the pretrained decoder from ``relu{level}_1`` of a weight set."""
    ws = get_weight_set(set_name)

    def build() -> Decoder:
        state = ws.load_state("decoder", level, _dir(weights_dir))
        dec = Decoder(state, level, final_relu=ws.final_relu, padding=padding or ws.padding)
        return dec.to(device).eval() if device is not None else dec.eval()

    return _kept_or_build(ws, "decoder", level, weights_dir, (device, padding), build)


def load_autoencoders(
    set_name: str = "cd16x",
    levels: tuple[int, ...] = (5, 4, 3, 2, 1),
    weights_dir: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    padding: str | None = None,
    strict: bool = True,
) -> dict[int, tuple[Encoder, Decoder]]:
    """Load encoder/decoder pairs for several levels.

    Args:
        strict: raise when a requested level is missing; otherwise keep the
            levels whose files are there and warn which ones are missing.

    Raises:
        WeightsError: a level is missing (strict) or none is available, or a
            file is present but corrupt (whatever ``strict`` says).
    """
    wset = get_weight_set(set_name)
    if wset.parts:
        return _load_composite(wset, levels, weights_dir, device, padding, strict)
    nets: dict[int, tuple[Encoder, Decoder]] = {}
    missing: dict[int, WeightsError] = {}
    for level in levels:
        if level not in wset.levels:
            missing[level] = WeightsError(f"weight set '{set_name}' has no level {level}", option="weights")
            continue
        try:
            nets[level] = (
                load_encoder(set_name, level, weights_dir, device, padding),
                load_decoder(set_name, level, weights_dir, device, padding),
            )
        except MissingWeightsError as exc:  # absent only: a corrupt file is an error, never a missing level
            missing[level] = exc
    if missing and not nets:
        raise next(iter(missing.values()))
    if missing and strict:
        first = next(iter(missing.values()))
        raise type(first)(
            f"weight set '{set_name}' lacks level(s) {', '.join(map(str, sorted(missing)))} "
            f"(have {', '.join(map(str, sorted(nets))) or 'none'}): {first}",
            option=first.option,
        )
    if missing:
        warnings.warn(
            f"weight set '{set_name}': levels {', '.join(map(str, sorted(missing)))} are missing; "
            f"using levels {', '.join(map(str, sorted(nets)))}",
            stacklevel=2,
        )
    return nets


def _load_composite(
    wset: WeightSet,
    levels: tuple[int, ...],
    weights_dir: str | os.PathLike | None,
    device: torch.device | str | None,
    padding: str | None,
    strict: bool,
) -> dict[int, tuple[Encoder, Decoder]]:
    """Encoder/decoder pairs of a composite set: each level from the first of its sets whose files are there
    (or can be downloaded); a corrupt file is an error, never a reason to fall back."""
    parts = dict(wset.parts)
    nets: dict[int, tuple[Encoder, Decoder]] = {}
    missing: dict[int, MissingWeightsError] = {}
    notes: list[str] = []
    for level in levels:
        names = parts.get(level, ())
        if not names and strict:
            raise WeightsError(f"weight set '{wset.name}' has no level {level} (it has {wset.levels})",
                               option="weights")
        for i, name in enumerate(names):
            try:
                nets[level] = (load_encoder(name, level, weights_dir, device, padding),
                               load_decoder(name, level, weights_dir, device, padding))
                break
            except MissingWeightsError as exc:
                if i + 1 < len(names):
                    notes.append(f"{name} level {level} is missing ({exc}); using {names[i + 1]} for that level")
                else:
                    missing[level] = exc
    if missing and (strict or not nets):
        raise next(iter(missing.values()))
    notes += [f"level {level} is missing ({exc})" for level, exc in missing.items()]
    for note in notes:
        warnings.warn(f"weight set '{wset.name}': {note}", stacklevel=3)
    if not nets:
        raise WeightsError(f"weight set '{wset.name}' has none of levels {', '.join(map(str, levels))}",
                           option="weights")
    return nets


def load_feature_extractor(
    set_name: str = "vgg19-caffe",
    layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1"),
    weights_dir: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    pool: str = "max",
    pre_relu: bool = False,
    padding: str | None = None,
) -> VGGFeatures:
    """A multi-layer loss / measuring network.

    Built from the file the weight set names (:meth:`~ottex.nn.weights.WeightSet.feature_source`):
    ``cd16x`` uses the level-5 distilled encoder with its 1x1 ``aux`` read-outs
    (VGG-19 widths 64-512 at relu1_1 ... relu5_1); ``vgg19-caffe`` and
    ``vgg19-torchvision`` are ImageNet VGG-19; ``wct-vgg19`` uses its deepest
    needed encoder.
    """
    ws = get_weight_set(set_name)
    role, level = ws.feature_source(tuple(layers))

    def build() -> VGGFeatures:
        state = ws.load_state(role, level, _dir(weights_dir))
        net = VGGFeatures(state, layers, padding or ws.padding, pool=pool, pre_relu=pre_relu)
        return net.to(device).eval() if device is not None else net.eval()

    return _kept_or_build(ws, role, level, weights_dir, ("features", tuple(layers), device, pool, pre_relu, padding),
                          build)
