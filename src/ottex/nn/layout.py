"""The canonical VGG-19 layout every weight set is converted to, and its layer names.

``conv0`` (a 1x1 convolution performing the set's own colour normalisation)
followed by the VGG-19 convolutions ``conv11, conv12, conv21, ..., conv51``
(3x3, ReLU after each) with 2x2 pooling between blocks. Layer outputs are named
as in pystiche: ``relu1_1, relu1_2, relu2_1, ...``.

Example:
    >>> conv_name("relu3_1"), relu_name("conv31"), level_conv(4)
    ('conv31', 'relu3_1', 'conv41')
"""

from __future__ import annotations

from ..core.errors import WeightsError

__all__ = ["VGG_CONVS", "POOL_AFTER", "UPSAMPLE_AFTER", "relu_name", "conv_name", "level_conv", "min_size_for_level"]

#: VGG-19 convolutions up to relu5_1, in order.
VGG_CONVS: tuple[str, ...] = (
    "conv11", "conv12", "conv21", "conv22", "conv31", "conv32", "conv33", "conv34",
    "conv41", "conv42", "conv43", "conv44", "conv51",
)
#: Convolutions followed by 2x2 pooling (encoders) ...
POOL_AFTER = frozenset({"conv12", "conv22", "conv34", "conv44"})
#: ... and by 2x nearest upsampling (decoders).
UPSAMPLE_AFTER = frozenset({"conv51", "conv41", "conv31", "conv21"})


def relu_name(conv: str) -> str:
    """``conv31`` -> ``relu3_1``."""
    return f"relu{conv[4]}_{conv[5]}"


def conv_name(relu: str) -> str:
    """``relu3_1`` -> ``conv31``."""
    if not (relu.startswith("relu") and len(relu) == 7 and relu[5] == "_"):
        raise WeightsError(f"bad layer name '{relu}': expected e.g. relu3_1")
    return f"conv{relu[4]}{relu[6]}"


def level_conv(level: int) -> str:
    """The first convolution of block ``level``: ``4`` -> ``conv41``."""
    return f"conv{level}1"


def min_size_for_level(level: int) -> int:
    """Smallest image side for which relu{level}_1 still has at least 2x2 pixels."""
    return 2 ** level
