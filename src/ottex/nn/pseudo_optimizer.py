"""The Pseudo Optimizer networks (Shi & Qiao, CVPR 2020) and the Gram-loss gradients they read.

A Pseudo Optimizer (PO) imitates the pixel optimisation of Gatys et al.: its
input is the gradient of the Gram texture loss with respect to the feature map
of every layer of a loss network (not with respect to the pixels), and its
output is a step ``delta`` of the image's pre-activation, ``x = sigmoid(z +
delta)``. Texture loss and gradients are pure functions of feature maps
(:func:`texture_loss`, :func:`gram_loss_gradient`, :func:`pseudo_gradients`);
:class:`POStage` is one network of the official code's improved model, coarse
to fine from the deepest layer:

* each layer's gradient goes through conv 3x3 + instance norm + leaky ReLU + conv 3x3;
* the result of the deeper level is activated, upsampled (nearest, x2),
  convolved to this level's width and added; then instance norm and two
  residual blocks;
* at full resolution a leaky ReLU and a 3x3 convolution give ``delta`` (3 channels).

Layers of different widths and magnitudes weigh alike: each layer's loss is
divided by the mean squared entry of the target's Gram matrix (as
:class:`~ottex.nn.losses.GramLoss`), and each gradient map is scaled to unit
RMS per image before it enters the network. Padding is an attribute
(``"reflect"``, ``"zeros"`` or ``"circular"``: tileable outputs).

Example:
    >>> stage = POStage(in_channels=(4, 8), widths=(8, 16))
    >>> grads = [torch.randn(2, 4, 32, 32), torch.randn(2, 8, 16, 16)]
    >>> stage(grads).shape
    torch.Size([2, 3, 32, 32])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import InputError
from .layout import conv_name
from .losses import gram_loss, gram_matrix
from .networks import VGGFeatures, pad_for_3x3

__all__ = [
    "PO_LAYERS",
    "gram_targets",
    "texture_loss",
    "gram_loss_gradient",
    "normalize_gradient",
    "readout_gram_and_gradient",
    "layer_grams",
    "gram_texture_loss",
    "pseudo_gradients",
    "POStage",
]

#: The loss network's layers, finest first: the paper's conv1_1, pool1 ... pool4 resolutions (1, 1/2 ... 1/16).
PO_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def gram_targets(features: Mapping[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{layer: (gram, norm)}``: Gram matrices ``(B, C, C)`` of target features and their mean squared entries
    ``(B,)`` (each layer's loss is divided by it).

    Example:
        >>> g, n = gram_targets({"a": torch.ones(1, 2, 4, 4)})["a"]
        >>> g.shape, n
        (torch.Size([1, 2, 2]), tensor([1.]))
    """
    out = {}
    for k, f in features.items():
        g = gram_matrix(f)
        out[k] = (g, g.pow(2).mean(dim=(-2, -1)).clamp_min(1e-12))
    return out


def texture_loss(
    features: Mapping[str, torch.Tensor],
    targets: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    layers: Sequence[str] | None = None,
) -> torch.Tensor:
    """Normalised Gram loss ``sum_l mean((G_l - T_l)^2) / norm_l`` per image; ``(B,)``.

    Args:
        features: ``{layer: (B, C, H, W)}``.
        targets: :func:`gram_targets` of the targets (batch 1 or B).
        layers: the layers to sum (default: all of ``targets``).
    """
    layers = tuple(targets) if layers is None else tuple(layers)
    return sum(gram_loss(features[k], targets[k][0]) / targets[k][1] for k in layers)


def gram_loss_gradient(features: torch.Tensor, gram_target: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    """Gradient of ``gram_loss(features, gram_target) / norm`` with respect to ``features``, in closed form.

    With ``G = F F^T / N`` (``C`` channels, ``N`` positions) the gradient of
    ``mean((G - T)^2) / norm`` is ``4 (G - T) F / (C^2 N norm)``. Differentiable
    (no ``autograd.grad`` graph needed). ``gram_target`` must be symmetric (a Gram matrix).

    Args:
        features: ``(B, C, H, W)``.
        gram_target: ``(B, C, C)`` or ``(1, C, C)``.
        norm: ``(B,)`` or ``(1,)``.

    Returns:
        ``(B, C, H, W)``.

    Example:
        >>> f = torch.rand(1, 3, 5, 5, requires_grad=True)
        >>> t, n = gram_matrix(torch.rand(1, 3, 4, 4)), torch.tensor([2.0])
        >>> (auto,) = torch.autograd.grad(gram_loss(f, t).sum() / 2.0, f)
        >>> torch.allclose(gram_loss_gradient(f, t, n), auto)
        True
    """
    b, c, h, w = features.shape
    flat = features.flatten(2)
    diff = gram_matrix(features) - gram_target
    scale = 4.0 / (c * c * h * w * norm.reshape(-1, 1, 1))
    return (scale * (diff @ flat)).reshape(b, c, h, w)


def normalize_gradient(grad: torch.Tensor) -> torch.Tensor:
    """``grad / RMS(grad)`` per image: every layer's gradient map enters the network at unit scale.

    Scale-free: the raw gradients are tiny (``1 / (C^2 N)``), so the map is first
    divided by its largest magnitude (no epsilon that would dominate them).

    Example:
        >>> normalize_gradient(torch.full((2, 1, 2, 2), 3e-20)).unique()
        tensor([1.])
    """
    dims = tuple(range(1, grad.dim()))
    peak = grad.detach().abs().amax(dim=dims, keepdim=True).clamp_min(torch.finfo(grad.dtype).tiny)
    g = grad / peak
    return g / g.pow(2).mean(dim=dims, keepdim=True).sqrt().clamp_min(1e-20)


def readout_gram_and_gradient(
    tap: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    gram_target: torch.Tensor | None = None,
    norm: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gram matrix of the 1x1 read-out ``Y = W t + b`` of a tap, and the loss gradient with respect to the tap.

    Computed in the tap's (narrow) space, without making ``Y``: with ``G_t = t tᵀ / N``
    and ``m`` the tap's mean, ``G_Y = W G_t Wᵀ + (W m) bᵀ + b (W m)ᵀ + b bᵀ`` and the
    gradient of ``mean((G_Y - T)^2) / norm`` is ``4 / (C² N norm) (Wᵀ D W t + Wᵀ D b)``
    with ``D = G_Y - T`` (for ``cd16x`` at relu1_1 about 30x less work than through ``Y``).

    Args:
        tap: ``(B, c, H, W)``.
        weight: ``(C, c, 1, 1)`` read-out weights, or None (no read-out: ``Y = t``).
        bias: ``(C,)`` or None.
        gram_target: ``(B or 1, C, C)``; None: no gradient.
        norm: ``(B or 1,)`` the target's normalisation.

    Returns:
        ``(G_Y (B, C, C), gradient (B, c, H, W) or None)``.

    Example:
        >>> t, w, b = torch.rand(2, 3, 4, 4), torch.randn(5, 3, 1, 1), torch.randn(5)
        >>> y = torch.nn.functional.conv2d(t, w, b)
        >>> g, _ = readout_gram_and_gradient(t, w, b)
        >>> torch.allclose(g, gram_matrix(y), atol=1e-5)
        True
    """
    if weight is None:
        gram = gram_matrix(tap)
        grad = None if gram_target is None else gram_loss_gradient(tap, gram_target, norm)
        return gram, grad
    b_, c, h, w = tap.shape
    n = h * w
    wt = weight.flatten(1)  # (C, c)
    flat = tap.flatten(2)  # (B, c, N)
    gram = wt @ (flat @ flat.transpose(1, 2) / n) @ wt.T
    if bias is not None:
        wm = flat.mean(-1) @ wt.T  # (B, C)
        cross = wm[:, :, None] * bias[None, None, :]
        gram = gram + cross + cross.transpose(1, 2) + bias[:, None] * bias[None, :]
    if gram_target is None:
        return gram, None
    d = gram - gram_target
    big = wt.shape[0]
    scale = 4.0 / (big * big * n * norm.reshape(-1, 1, 1))
    grad = (wt.T @ d @ wt) @ flat
    if bias is not None:
        grad = grad + (wt.T @ (d @ bias[:, None]))
    return gram, (scale * grad).reshape(b_, c, h, w)


def _read_out_params(net: VGGFeatures, layer: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    conv = conv_name(layer)
    if conv in net.aux:
        return net.aux[conv].weight, net.aux[conv].bias
    return None, None


def layer_grams(net: VGGFeatures, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """Gram matrices of the network's read-outs ``{layer: (B, C, C)}`` (through :func:`readout_gram_and_gradient`)."""
    taps = net(image, read_out=False)
    return {k: readout_gram_and_gradient(taps[k], *_read_out_params(net, k))[0] for k in net.layers}


def gram_texture_loss(
    grams: Mapping[str, torch.Tensor],
    targets: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    layers: Sequence[str] | None = None,
) -> torch.Tensor:
    """:func:`texture_loss` from Gram matrices ``{layer: (B, C, C)}``; ``(B,)``."""
    layers = tuple(targets) if layers is None else tuple(layers)
    return sum((grams[k] - targets[k][0]).pow(2).mean(dim=(-2, -1)) / targets[k][1] for k in layers)


def pseudo_gradients(
    net: VGGFeatures,
    image: torch.Tensor,
    targets: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    layers: Sequence[str],
) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """The Gram matrices of ``image`` and the normalised Gram-loss gradients with respect to its feature maps.

    Each layer's gradient is that of its own loss term (the partial derivative;
    the official code back-propagates the whole loss to every layer, which costs
    a backward pass through the loss network, and twice that in training; here the
    network's coarse-to-fine path carries the deeper layers' terms to the fine
    levels). The loss is measured on the network's read-outs (for ``cd16x``, the 1x1
    ``aux`` read-outs at VGG-19 widths); the gradient is taken with respect to
    the network's own tap (the ``cd16x`` quarter-width map), through the
    read-out's transposed 1x1 weights (:func:`readout_gram_and_gradient`), and
    scaled to unit RMS.

    Args:
        net: the loss network (built with at least ``layers``).
        image: ``(B, 3, H, W)``.
        targets: :func:`gram_targets` of the target's read-outs.
        layers: the layers whose gradients are returned, finest first.

    Returns:
        ``({layer: read-out Gram matrix (B, C, C)} for every layer of the network, [gradient per layer of layers])``.
    """
    taps = net(image, read_out=False)
    grams, grads = {}, []
    wanted = set(layers)
    for k in net.layers:
        target = targets[k] if k in wanted else (None, None)
        grams[k], g = readout_gram_and_gradient(taps[k], *_read_out_params(net, k), *target)
        if g is not None:
            grads.append(normalize_gradient(g))
    order = [k for k in net.layers if k in wanted]
    if order != list(layers):
        raise InputError(f"layers must be in the network's order, got {tuple(layers)}")
    return grams, grads


class _Conv(nn.Conv2d):
    """A 3x3 convolution that pads as its owner says (``padding`` attribute set by :class:`POStage`)."""

    def __init__(self, cin: int, cout: int, bias: bool = False) -> None:
        super().__init__(cin, cout, 3, bias=bias)
        self.pad_mode = "reflect"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(pad_for_3x3(x, self.pad_mode))


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class _ResBlock(nn.Module):
    """``x + IN(conv(act(IN(conv(act(x))))))`` (the official code's post-norm residual block)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv0, self.norm0 = _Conv(width, width), nn.InstanceNorm2d(width, affine=True)
        self.conv1, self.norm1 = _Conv(width, width), nn.InstanceNorm2d(width, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _act(self.norm0(self.conv0(_act(x))))
        return x + self.norm1(self.conv1(y))


class _Level(nn.Module):
    def __init__(self, cin: int, width: int, deeper: int | None, blocks: int) -> None:
        super().__init__()
        self.grad_conv1, self.grad_norm = _Conv(cin, width), nn.InstanceNorm2d(width, affine=True)
        self.grad_conv2 = _Conv(width, width)
        self.up = None if deeper is None else _Conv(deeper, width)
        self.norm = nn.InstanceNorm2d(width, affine=True)
        self.blocks = nn.Sequential(*[_ResBlock(width) for _ in range(blocks)])

    def forward(self, grad: torch.Tensor, deeper: torch.Tensor | None) -> torch.Tensor:
        x = self.grad_conv2(_act(self.grad_norm(self.grad_conv1(grad))))
        if deeper is not None and self.up is not None:
            x = x + self.up(F.interpolate(_act(deeper), size=x.shape[-2:], mode="nearest"))
        return self.blocks(self.norm(x))


class POStage(nn.Module):
    """One Pseudo Optimizer network: gradients of ``L`` layers (finest first) -> a 3-channel step.

    Args:
        in_channels: channels of each layer's gradient, finest first.
        widths: the network's channels at each level (same length).
        blocks: residual blocks per level.
        padding: ``"reflect"``, ``"zeros"`` or ``"circular"`` (may be changed later: :attr:`padding`).

    Shape:
        ``[(B, C_0, H, W), (B, C_1, H/2, W/2), ...] -> (B, 3, H, W)``.
    """

    def __init__(
        self, in_channels: Sequence[int], widths: Sequence[int], blocks: int = 2, padding: str = "reflect"
    ) -> None:
        super().__init__()
        if len(in_channels) != len(widths) or not widths:
            raise InputError(f"one width per layer: {len(in_channels)} layers, widths {tuple(widths)}")
        n = len(widths)
        self.levels = nn.ModuleList(
            _Level(in_channels[i], widths[i], widths[i + 1] if i + 1 < n else None, blocks) for i in range(n)
        )
        self.last = _Conv(widths[0], 3, bias=True)
        self.padding = padding

    @property
    def padding(self) -> str:
        return self._padding

    @padding.setter
    def padding(self, mode: str) -> None:
        if mode not in ("reflect", "zeros", "circular"):
            raise InputError(f"padding must be reflect, zeros or circular, got '{mode}'")
        self._padding = mode
        for m in self.modules():
            if isinstance(m, _Conv):
                m.pad_mode = mode

    def forward(self, grads: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(grads) != len(self.levels):
            raise InputError(f"this stage reads {len(self.levels)} gradient maps, got {len(grads)}")
        x = None
        for level, grad in zip(reversed(self.levels), reversed(list(grads))):
            x = level(grad, x)
        return self.last(_act(x))
