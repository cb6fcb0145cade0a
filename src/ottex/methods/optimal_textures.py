"""Optimal Textures (Risser 2020): texture synthesis by sliced optimal transport of VGG features.

No back-propagation. For each resolution of a coarse-to-fine schedule and each
pass, for each level (``relu3_1 -> relu1_1`` in synthesis, ``relu5_1 -> relu1_1``
in style transfer): encode the current image with that level's encoder, move its
feature cloud onto the style's, and decode back to pixels. A synthesis starts
from a *layout* rather than from noise: sliced OT of the example's 7x7 pixel
patches, coarse to fine up to 128 px (:func:`ottex.image.patches.patch_layout`),
which keeps stripes straight and lattices regular where per-position feature
matching alone breaks them into blobs (docs/structure.md). The move is the
closed-form Gaussian OT (Monge) map, which carries the style's mean and
covariance, followed by repeated {random rotation, exact 1D optimal transport
of every marginal, rotation back} (optionally inside the style's PCA subspace),
which carries the full distribution. With ``OTSchedule(gaussian=None)`` the move is pure sliced OT, as in the paper.

Feature clouds are kept channels-first, ``(B, C, N)``, so that the sorts run on
contiguous memory; the whole batch shares each random rotation.

The method is registered as ``"ot"`` (:class:`OTOptions`); :func:`synthesize`
and :func:`transfer` are the keyword-argument entry points. The coarse-to-fine
loop is :func:`_run_schedule`; one visit of a level is :func:`_level_step`, the
feature move :func:`_match` (with the content pull of style transfer).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ..core.checks import check_example, check_size, renamed_keyword
from ..core.device import DTYPE_CHOICES, bfloat16_is_fast, make_generator, resolve_device
from ..core.errors import InputError
from ..core.progress import Callback, Reporter, run_callbacks
from ..core.pyramid import (
    content_output_size,
    crop_to,
    network_factor,
    per_scale,
    pyramid_sizes,
    style_at,
    style_factor,
    working_size,
)
from ..core.resample import resize, wrap_resize
from ..core.runtime import prepare_device, release_free_memory
from ..image.io import ImageLike, as_image
from ..image.masks import check_mask_aspect, load_label_pair, resample_masks
from ..image.patches import (
    LAYOUT_MIN_SIDE,
    LAYOUT_PATCH,
    check_momentum,
    check_patch_sides,
    patch_layout,
    patch_polish,
    structure_verdict,
)
from ..nn.networks import (
    Decoder,
    Encoder,
    bfloat16_convolutions,
    load_autoencoders,
    min_size_for_level,
)
from ..ot import (
    binned_sort_match,
    gaussian_mapping,
    mean_cov,
    pca_basis,
    random_rotation,
    sort_match,
    sort_values,
    subsample,
)
from .base import Method, get_method, register_method
from .common import INITS, check_init, next_scale_image
from .cost import RunCost
from .options import SYNTHESIS, TRANSFER, Options, label_number, option, parse_floats, parse_ints

__all__ = [
    "synthesize",
    "transfer",
    "transfer_from",
    "OTSchedule",
    "OTOptions",
    "TRANSFER_SCHEDULE",
    "NOISE_SCHEDULE",
    "Guide",
    "MATCH_MODES",
    "DEFAULT_CONTENT_STRENGTH",
    "wrap_resize",
    "resolve_device",
    "working_size",
    "style_factor",
    "style_at",
]

MATCH_MODES = ("sort", "chol", "pca", "sym")
LAYOUTS = ("auto", "on", "off")
QUALITIES = ("default", "high", "best")
#: L-BFGS runs of the sliced Wasserstein refinement of ``quality="best"`` at half and full resolution
#: (:func:`~ottex.methods.optimization.swd_refine`).
BEST_REFINE = (3, 1)
#: L-BFGS steps of the feature inversion after each decoding of relu2_1 and relu3_1
#: (:func:`~ottex.methods.optimization.invert_features`): in the last pass of the finest resolution of a default
#: synthesis of at most :data:`DEFAULT_INVERT_PIXELS`, in the last two passes of every resolution for
#: ``quality="high"``.
INVERT_STEPS = 10
#: Largest output, in pixels, whose default synthesis inverts the decodings of its last pass (256 x 256 px): there
#: it costs 8-9 s on one CPU core (5.5 s on two) and takes the default closer than Heitz et al.'s published result
#: per layer on their example; at 512 px it would cost four times that, over the default's time budget
#: (docs/structure.md).
DEFAULT_INVERT_PIXELS = 256 * 256
#: Rotations per scale (a quarter, half and all of the polish's side, coarse to fine), momentum and patch side per
#: scale of the patch polish of a synthesis whose last pass is not inverted (outputs over
#: :data:`DEFAULT_INVERT_PIXELS`): the polish alone undoes the decoders' blur there, at a quarter of the side its 7 px
#: patches see cells and stripes whole, and at the whole side 5 px patches restore the finest detail. Measured at
#: 512 px on Heitz et al.'s example, per layer: 8 plain rotations at two scales 0.0501 / 0.0725 / 0.1308, 16 with
#: momentum 0.8 at two scales 0.0271 / 0.0327 / 0.0766, three scales of 7 px patches 0.0251 / 0.0292 / 0.0658, these
#: 0.0200 / 0.0296 / 0.0670 (their published result 0.0280 / 0.0350 / 0.0598; docs/structure.md, fifth to seventh
#: rounds).
POLISH_WITHOUT_INVERSION = ((16, 24, 16), 0.8, (7, 7, 5))
NETWORK_DTYPES = DTYPE_CHOICES
#: From this many pixels per image, ``network_dtype="auto"`` runs the encoders and decoders in bfloat16 where that is
#: fast (:func:`~ottex.core.device.bfloat16_is_fast`).
BFLOAT16_PIXELS = 1024 * 1024
DEFAULT_CONTENT_STRENGTH = 0.7
#: Above 1 the deep features are pulled past the content's (an extrapolation); 2 is far beyond any useful setting.
MAX_CONTENT_STRENGTH = 2.0
#: Encoder/decoder set of Optimal Textures: wct-vgg19 at levels 2-3, cd16x at 1, 4, 5 (see ``ottex.nn.weights``).
DEFAULT_WEIGHTS = "hybrid"


@dataclass(frozen=True)
class OTSchedule:
    """Coarse-to-fine schedule of an Optimal Textures run.

    At every level visited, the feature cloud is first moved by the closed-form
    Gaussian OT map ``gaussian`` (the Bures-Wasserstein Monge map by default,
    which carries the style's mean and covariance), then by ``iterations[level]``
    exact sliced-OT steps (random rotation, sort-based 1D matching of every
    marginal, rotation back), which carry the full marginals.

    Attributes:
        scales: number of resolutions, each half the next one's size, or
            ``None`` (default) to halve while the long side stays at least
            ``coarse_side`` (512 px -> 256, 512; 2048 px -> 256 ... 2048); the
            coarsest is never smaller than ``min_side`` on its short side.
        passes: passes over the levels at each resolution, coarse to fine; the
            last value repeats for extra resolutions.
        levels: levels visited at the coarsest resolution, deepest first.
        fine_levels: levels visited at the finer resolutions (relu5_1 included:
            it keeps strokes and letters whole at the output's scale).
        iterations: sliced-OT rotations per level at the coarsest resolution.
        fine_iterations: sliced-OT rotations per level at finer resolutions.
        gaussian: Gaussian map applied before the rotations at each level
            (``"sym"``, ``"chol"``, ``"pca"``) or ``None`` for pure sliced OT
            as in the paper.
        min_side: smallest short side of the coarsest resolution.
        max_style_samples: the style cloud of each level is randomly
            subsampled to this many feature vectors.
        layout_iterations: patch sliced-OT rotations per scale of the layout stage that starts a synthesis
            (:func:`~ottex.image.patches.patch_layout`); 0: start from noise, as the paper does. Style
            transfer and region-guided runs start from the content or noise.
        layout_side: long side, in pixels, of the layout (at most; the coarsest resolution's if smaller), or an
            eighth of the output's if that is larger (2048 px: 256 px), so that the example keeps its shapes there.
        layout_scales: at most this many resolutions (the finest ones) when the layout stage runs: at a coarser
            first resolution the example is a quarter of its size or less, and the feature passes there break the
            layout (procedural bricks at 1024 px: broken courses with 256, 512, 1024; whole with 512, 1024, and
            faster, docs/structure.md). None: as many as ``coarse_side`` makes.
        polish_iterations: rotations of the patch polish of the finished synthesis or style transfer
            (:func:`~ottex.image.patches.patch_polish`, within the style's 32 principal patch axes, the rest of
            each patch kept; not in region-guided runs; every frame of a video): it takes out the speckle and
            rough edges the feature passes leave and puts back the sharp local patterns the decoders blur (8
            rotations at one scale: about 15 % of the time of a 256 px synthesis; the half-side scale of
            ``polish_scales`` adds a quarter of that; in style transfer closer to the style per layer and by patches
            for a content distance about 1 % further, at most 4 %, docs/structure.md). A synthesis whose last pass
            is not inverted takes ``polish_without_inversion`` instead. A schedule of one's own polishes unless
            this is 0.
        polish_scales: sides the polish works at, each half the next, ending at the output's (at most
            :data:`~ottex.image.patches.POLISH_MAX_SIDE`; not where ``polish_without_inversion`` gives rotations
            per scale, as the default does above 256 x 256 px): at half the side a 7 px patch spans twice the pixels,
            so the polish also corrects stripes and cells wider than one patch (2: on the 35 examples that take the
            layout closer per layer on 25 / 23 / 31, by patches on 33; in style transfer closer to the style
            for the same content distance; docs/structure.md).
        polish_momentum: heavy-ball momentum of the polish's steps (:func:`~ottex.image.patches.patch_sliced_ot`):
            each step adds this share of the previous step's change, so the steps go further for the same sorts.
        polish_without_inversion: ``(rotations, momentum)`` or ``(rotations, momentum, patch)`` of the polish, in place
            of ``polish_iterations`` and ``polish_momentum``, for a synthesis whose last pass was not inverted (larger
            outputs than ``invert_max_output``, or ``invert_steps=0``; a schedule that polishes): there the polish alone
            undoes the decoders' blur, and :data:`POLISH_WITHOUT_INVERSION` took 512 px syntheses much closer to their
            examples (docs/structure.md). ``rotations`` is a number (at each of ``polish_scales``) or a tuple of them,
            each at least 1, one per scale, coarse to fine (its length is then the number of scales, in place of
            ``polish_scales``); ``patch`` the odd patch side (7 if left out), or a tuple of them as long as the
            rotations'. None: the same polish everywhere.
        invert_steps: L-BFGS steps of a feature inversion after each decoding of ``invert_levels``
            (:func:`~ottex.methods.optimization.invert_features`: the pixels whose features are the matched ones,
            from the decoder's output; at resolutions of at most
            :data:`~ottex.methods.optimization.INVERT_MAX_PIXELS`; synthesis only, not style transfer or video
            frames): the decoders of relu2_1 and relu3_1 blur, this puts back the sharp local patterns
            (docs/structure.md). 0: none; the default takes :data:`INVERT_STEPS` in its last pass at small
            outputs (``invert_max_output``), ``--quality high`` in the last two passes of every resolution.
        invert_levels: the levels whose decodings are inverted.
        invert_passes: the inversion runs in this many of the last passes of each resolution (the earlier ones
            are decoded over again; the schedule from noise makes six at its first resolution).
        invert_scales: the inversion runs at this many of the finest resolutions (None: at every one).
        invert_max_output: the inversion runs only when the requested output has at most this many pixels (None:
            any output; each resolution up to :data:`~ottex.methods.optimization.INVERT_MAX_PIXELS`). The default
            schedule inverts the last pass of its finest resolution at outputs up to :data:`DEFAULT_INVERT_PIXELS`
            (256 x 256 px).
        refine_runs: L-BFGS runs, at half and at full resolution, of the refinement of the finished synthesis
            against Heitz et al.'s sliced Wasserstein feature loss (:func:`~ottex.methods.optimization.swd_refine`;
            not in style transfer or region-guided runs): it takes the layout the feature passes made and gives
            it the example's sharp, regular local patterns (docs/structure.md: closer than Heitz's published
            result per layer on their example, in about 4x the default's time at 256 px). ``(0, 0)`` (default):
            none; ``--quality best`` takes :data:`BEST_REFINE`.
        large_passes: caps on the passes of large resolutions, ``(side,
            passes)`` pairs: a resolution whose long side is at least ``side``
            gets at most ``passes`` passes (None: no cap). The layout is settled
            at the coarser resolutions. Measured on graffiti (README, "Large
            outputs"): at 1024 px, two passes instead of four at the finest
            resolution gave the same per-layer style distances (within the
            spread of two seeds) in about two thirds of the time; at 4096 px, one
            pass instead of two gave 0.1685 / 0.1364 / 0.1296 against 0.1708 /
            0.1518 / 0.1346 on the centre crop and the same picture, in 202 s
            against 285 s.
    """

    scales: int | None = None
    passes: tuple[int, ...] = (2, 1)
    levels: tuple[int, ...] = (3, 2, 1)
    fine_levels: tuple[int, ...] = (3, 2, 1)
    iterations: dict[int, int] = field(default_factory=lambda: {5: 0, 4: 1, 3: 1, 2: 2, 1: 4})
    fine_iterations: dict[int, int] = field(default_factory=lambda: {5: 0, 4: 0, 3: 1, 2: 2, 1: 4})
    gaussian: str | None = "sym"
    min_side: int = 64
    coarse_side: int = 256
    max_style_samples: int = 1 << 14
    large_passes: tuple[tuple[int, int], ...] | None = ((1024, 2), (4096, 1))
    layout_iterations: int = 100
    layout_side: int = 128
    layout_scales: int | None = 2
    polish_iterations: int = 8
    polish_scales: int = 2
    polish_momentum: float = 0.0
    polish_without_inversion: tuple | None = POLISH_WITHOUT_INVERSION
    invert_steps: int = INVERT_STEPS
    invert_levels: tuple[int, ...] = (2, 3)
    invert_passes: int = 1
    invert_scales: int | None = 1
    invert_max_output: int | None = DEFAULT_INVERT_PIXELS
    refine_runs: tuple[int, int] = (0, 0)

    def replace(self, **changes: object) -> OTSchedule:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


#: The schedule of ottex 0.1's synthesis (and of Risser 2020, with the Gaussian map added): from noise, six passes
#: over relu5_1 ... relu1_1 at the coarsest resolution, four at each finer one. Runs with ``layout="off"`` (or
#: ``"auto"`` and an example that is not structured), and region-guided or mixed syntheses (whose regions have no
#: layout stage), use it. Since 2026-12-07, like the default's, its last pass is inverted at outputs up to
#: :data:`DEFAULT_INVERT_PIXELS` (so it is 0.1's schedule only above that size).
NOISE_SCHEDULE = OTSchedule(passes=(6, 4), levels=(5, 4, 3, 2, 1), fine_levels=(5, 4, 3, 2, 1), layout_iterations=0,
                            polish_iterations=0)
#: The default schedule of style transfer: two passes at each finer resolution instead of four. The content's
#: layout comes from the pull at every match, so the extra fine passes change the per-layer style and content
#: distances by a few per cent either way (README, "Style transfer against the replication") while costing
#: 30 % of the time at 512 px and 40 % at 1024 px (rocket + lava, quiet 2-core CPU). It ends with the patch polish
#: (docs/structure.md, "Style transfer"), without the inversion of synthesis.
TRANSFER_SCHEDULE = NOISE_SCHEDULE.replace(passes=(6, 2), polish_iterations=8, invert_steps=0)


def _schedule_default(task: str | None, name: str) -> str:
    """The default of a schedule field (``passes``, ``levels``, ``rotations``) as help texts show it, read from the
    schedules themselves: for ``task`` (None: both), and for synthesis with and without the layout stage."""

    def text(sched: OTSchedule) -> str:
        if name == "rotations":  # per level, deepest first: the coarsest resolution's, then the finer ones'
            coarse, fine = (",".join(str(d[lvl]) for lvl in sorted(d, reverse=True))
                            for d in (sched.iterations, sched.fine_iterations))
            return f"per level 5..1: {coarse}" + ("" if fine == coarse else f", then {fine}")
        return ",".join(map(str, getattr(sched, name)))

    shown = []
    if task != TRANSFER:
        layout, noise = text(OTSchedule()), text(NOISE_SCHEDULE)
        shown.append(layout if layout == noise else f"{layout}; without layout {noise}")
    if task != SYNTHESIS:
        shown.append(text(TRANSFER_SCHEDULE))
    return f"synthesis {shown[0]}; style transfer {shown[1]}" if task is None else shown[0]


@dataclass(frozen=True)
class OTOptions(Options):
    """Options of Optimal Textures (``--method ot``); None means "the schedule's value".

    Attributes: see each field's help; ``schedule`` gives full control of the
    coarse-to-fine schedule (:class:`OTSchedule`), the fields above it override it.
    """

    passes: tuple[int, ...] | None = option(
        None, parse=parse_ints, metavar="N[,N...]", shown_default=lambda task: _schedule_default(task, "passes"),
        help="passes over the levels per resolution, coarse to fine, the last repeating")
    rotations: int | None = option(
        None, shown_default=lambda task: _schedule_default(task, "rotations"),
        help="sliced-OT rotations after the Gaussian map, one count for every level")
    levels: tuple[int, ...] | None = option(
        None, parse=parse_ints, metavar="L[,L...]", shown_default=lambda task: _schedule_default(task, "levels"),
        help="VGG levels to match, deepest first")
    layout: str = option(
        "auto", choices=LAYOUTS, tasks=(SYNTHESIS,), help="on: start from a layout made by sliced OT of the "
        "example's pixel patches, then match relu3_1 ... relu1_1 (keeps stripes, bricks, tiles and grids straight); "
        "off: from noise with relu5_1 ... relu1_1 (keeps large irregular shapes such as graffiti letters whole); "
        "auto: on for examples whose edges run along one or two directions at some scale (rows of text too) or that "
        "repeat")
    quality: str = option(
        "default", choices=QUALITIES, tasks=(SYNTHESIS,), help="default: outputs up to 256x256 px optimise the "
        "pixels towards the matched features after the last decodings of relu3_1 and relu2_1 (the decoders blur; "
        "about twice the time of a run without); high: after those of the last two passes at every resolution "
        "(sharper edges and patterns; about 1.5x the default's time at 256 px, 3-5x above; at resolutions up to "
        "1024x1024 px); best: refine the finished texture by optimising it against the sliced Wasserstein feature "
        "loss of Heitz et al. 2021 (closest per layer; about 4x the time at 256 px, 16x at 512 px)")
    scales: int | None = option(
        None, help="coarse-to-fine resolutions, each half the next [auto: down to a 256 px long side]")
    pca: bool = option(
        True, help="sliced OT in the style's principal subspace (90% of its variance; faster, and closer to the "
        "style here); off: every feature dimension")
    pca_variance: float = option(0.9, cli=False, help="fraction of the style's variance the PCA subspace keeps")
    mode: str = option(
        "sort", choices=MATCH_MODES, help="sort: Gaussian map then exact sliced OT; chol/pca/sym: one Gaussian map "
        "per level (fastest)")
    style_scale: float | None = option(
        None, help="size of style details: the example's short side becomes the output's short side x this "
        "[auto: fit the short sides, never enlarging the example]")
    weights: str = option(
        DEFAULT_WEIGHTS, metavar="SET", help="encoder/decoder weight set: hybrid (wct-vgg19 at levels 2-3, cd16x at "
        "1, 4, 5: sharper structures), cd16x (about 2x faster), wct-vgg19")
    network_dtype: str = option(
        "auto", choices=NETWORK_DTYPES, help="dtype of the encoders and decoders: float32, bfloat16 (about 1.5x "
        "faster where the CPU has bfloat16 units, features within 1 %), auto: bfloat16 from 1024x1024 px on such "
        "CPUs, else float32")
    schedule: OTSchedule | None = option(None, cli=False, help="full control of the coarse-to-fine schedule")
    tile: bool = option(False, tasks=(SYNTHESIS,), help="tileable output: wraps around seamlessly")
    mix: tuple[float, ...] | None = option(
        None, tasks=(SYNTHESIS,), parse=parse_floats, metavar="W[,W...]",
        help="mix several STYLE examples into one texture: with two, the weight of the second (e.g. 0.3); with "
        "more, one weight per example (normalised)")
    mix_variation: float = option(
        0.5, tasks=(SYNTHESIS,), help="0: a uniform blend of the mixed examples; 1: a patchwork of them; between: "
        "regions lean towards one example")
    style_mask: ImageLike | None = option(
        None, kind="mask", metavar="FILE", help="label map of the style (colour-coded regions)")
    target_mask: ImageLike | None = option(
        None, kind="mask", metavar="FILE", tasks=(SYNTHESIS,),
        help="label map of the output: each region takes the style's texture of the same colour (needs a style "
        "mask)")
    content_mask: ImageLike | None = option(
        None, kind="mask", metavar="FILE", tasks=(TRANSFER,),
        help="label map of the content: each region is painted with the style of the region of the same colour "
        "(needs a style mask)")
    content_strength: float = option(
        DEFAULT_CONTENT_STRENGTH, tasks=(TRANSFER,),
        help="how strongly the content's layout is kept, 0 to 2: 0 texture only, about 1 little style")
    init: str = option("content", choices=INITS, tasks=(TRANSFER,), help="starting image")

    def __post_init__(self) -> None:
        if isinstance(self.passes, int):
            object.__setattr__(self, "passes", (self.passes,))
        if self.levels is not None:
            object.__setattr__(self, "levels", tuple(self.levels))
            if not self.levels or any(lvl not in (1, 2, 3, 4, 5) for lvl in self.levels):
                raise InputError(f"levels must be among 1-5, got {self.levels}", option="levels")
        if self.passes is not None and (not self.passes or any(p < 1 for p in self.passes)):
            raise InputError(f"passes must be at least 1, got {self.passes}", option="passes")
        if self.rotations is not None and self.rotations < 0:
            raise InputError(f"rotations (sliced-OT iterations per level) must be at least 0, got {self.rotations}",
                             option="rotations")
        if self.scales is not None and self.scales < 1:
            raise InputError(f"scales must be at least 1, got {self.scales}", option="scales")
        if self.network_dtype not in NETWORK_DTYPES:
            raise InputError(f"unknown network dtype '{self.network_dtype}' (choose from {', '.join(NETWORK_DTYPES)})",
                             option="network_dtype")
        if self.mode not in MATCH_MODES:
            raise InputError(f"unknown matching mode '{self.mode}' (choose from {', '.join(MATCH_MODES)})",
                             option="mode")
        if self.style_scale is not None and self.style_scale <= 0:
            raise InputError(f"style scale must be positive, got {self.style_scale}", option="style_scale")
        if not 0 <= self.content_strength <= MAX_CONTENT_STRENGTH:
            raise InputError(f"content strength must be between 0 and {MAX_CONTENT_STRENGTH:g}, got "
                             f"{self.content_strength:g}", option="content_strength")
        check_init(self.init)

    def effective_schedule(self, task: str = SYNTHESIS, structured: bool = True) -> OTSchedule:
        """The schedule these options run for ``task``: ``schedule`` (without its layout stage unless the layout
        is on), or the task's default: for synthesis :class:`OTSchedule`'s, with a layout stage, when ``layout``
        is ``"on"``, or ``"auto"`` and the example is ``structured``, else :data:`NOISE_SCHEDULE`;
        :data:`TRANSFER_SCHEDULE` for style transfer. The fields above are applied to it."""
        layout = task == SYNTHESIS and (self.layout == "on" or (self.layout == "auto" and structured))
        if self.schedule is not None:  # its layout stage runs only where the layout is on
            sched = self.schedule if layout else self.schedule.replace(layout_iterations=0)
        elif task == TRANSFER:
            sched = TRANSFER_SCHEDULE
        else:
            sched = OTSchedule() if layout else NOISE_SCHEDULE
        if self.scales is not None:
            sched = sched.replace(scales=self.scales)
        if task == SYNTHESIS and self.quality == "high":
            sched = sched.replace(invert_steps=max(sched.invert_steps, INVERT_STEPS),
                                  invert_passes=max(sched.invert_passes, 2), invert_scales=None, invert_max_output=None)
        if task == SYNTHESIS and self.quality == "best":
            sched = sched.replace(refine_runs=tuple(max(a, b) for a, b in zip(sched.refine_runs, BEST_REFINE)))
        return _effective_schedule(sched, self.passes, self.rotations, self.levels, self.mode)


def _label(opts: OTOptions, task: str) -> str:
    layout = f"_layout{opts.layout}" if task == SYNTHESIS and opts.layout != "auto" else ""
    quality = f"_{opts.quality}" if task == SYNTHESIS and opts.quality != "default" else ""
    settings = f"{opts.mode}{'' if opts.pca else '_nopca'}{layout}{quality}"
    return f"tile_{settings}" if task == SYNTHESIS and opts.tile else settings


def _content_label(opts: OTOptions) -> str:
    return f"cs{label_number(opts.content_strength)}"


def synthesize(
    style: ImageLike | Sequence[ImageLike],
    size: int | Sequence[int] = (512, 512),
    *,
    passes: Sequence[int] | int | None = None,
    rotations: int | None = None,
    levels: Sequence[int] | None = None,
    pca: bool = True,
    pca_variance: float = 0.9,
    mode: str = "sort",
    style_scale: float | None = None,
    seed: int | None = 0,
    batch: int = 1,
    weights: str = DEFAULT_WEIGHTS,
    weights_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    schedule: OTSchedule | None = None,
    network_dtype: str = "auto",
    mix: Sequence[float] | None = None,
    mix_variation: float = 0.5,
    style_mask: ImageLike | None = None,
    target_mask: ImageLike | None = None,
    tile: bool = False,
    layout: str = "auto",
    quality: str = "default",
    progress: bool = False,
    callback: Callback | None = None,
    method: str = "ot",
    iterations: int | None = None,
    **options: Any,
) -> torch.Tensor:
    """Synthesise textures that look like ``style`` (Optimal Textures, or another registered method).

    Args:
        style: style example, an image path or a ``(1, 3, H, W)`` tensor in ``[0, 1]``;
            or several examples to mix (texture mixing, see ``mix``).
        size: output ``(height, width)`` (an int: a square); any size and aspect, e.g. larger than the example.
        passes: passes over the levels per resolution (an int applies to each),
            overriding the schedule's.
        rotations: sliced-OT rotations per level at every resolution, overriding
            the schedule's level-dependent counts (:attr:`OTOptions.rotations`; ``--rotations``).
        levels: levels to visit, deepest first (default ``(5, 4, 3, 2, 1)``).
        pca: do the sliced-OT rotations inside the style's principal subspace
            holding ``pca_variance`` of its variance (default; the residual
            keeps the Gaussian map's result). Measured on graffiti/zebra at
            512 px: about twice as fast and closer to the style than without.
        pca_variance: fraction of variance kept when ``pca`` is on.
        mode: ``"sort"`` (default: at each level the schedule's Gaussian map, then
            exact sliced-OT rotations) or a Gaussian map alone, ``"chol"``,
            ``"pca"`` or ``"sym"`` (one linear map per level; fastest).
        style_scale: size of style details: ``None`` (default) fits the example's
            short side to the output's without ever enlarging it (outputs larger
            than the example keep its detail size); a number makes the example's
            short side ``style_scale`` times the output's (see :func:`~ottex.core.pyramid.style_factor`).
        seed: random seed (None: nondeterministic).
        batch: number of samples to make at once (different noise, shared rotations).
        weights: encoder/decoder weight set: ``hybrid`` (default: the full-width
            ``wct-vgg19`` networks at levels 2-3, whose features and decoders
            keep structures sharper, and ``cd16x`` at levels 1, 4, 5), ``cd16x``
            (about 2x faster, softer) or ``wct-vgg19``.
        weights_dir: directory searched first for the weights.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or a :class:`torch.device`.
        schedule: full control of the coarse-to-fine schedule.
        network_dtype: dtype of the encoders and decoders: ``"float32"``,
            ``"bfloat16"`` (about 1.5x faster on CPUs with bfloat16 units; a
            different sample of the same quality) or ``"auto"`` (default:
            bfloat16 at resolutions from 1024x1024 px where it is fast).
        mix: texture mixing: the weight of each style (normalised; default equal).
            The output is cut into regions by a random smooth mask, one per
            style with an area proportional to its weight; every region takes
            the feature distribution of a barycenter of the styles (sliced-OT
            maps between their feature clouds, interpolated), leaning towards
            its own style by ``mix_variation``. Styles of any sizes mix.
        mix_variation: 0: every region takes the same barycenter (a uniform
            blend); 1: every region takes its own style alone (a patchwork).
        style_mask: label map of the example (colour-coded regions); with
            ``target_mask``, the label map of the output: each output region takes
            its statistics from the example's pixels of the same colour.
        target_mask: label map of the output (resampled to ``size``).
        layout: ``"on"``: start from a layout made by sliced OT of the
            example's 7x7 pixel patches, then match relu3_1 ... relu1_1 (keeps
            stripes, bricks, tiles and grids straight); ``"off"``: from noise
            with relu5_1 ... relu1_1 (:data:`NOISE_SCHEDULE`, ottex 0.1's
            synthesis: keeps large irregular shapes such as graffiti letters
            whole);
            ``"auto"`` (default): ``"on"`` for structured examples
            (:func:`~ottex.image.patches.is_structured`; the choice and its
            figures come to ``callback`` as a ``"note"`` event).
        quality: ``"high"``: after each decoding of relu3_1 and relu2_1
            in the last two passes of every resolution, optimise the pixels
            towards the matched features
            (:func:`~ottex.methods.optimization.invert_features`,
            :data:`INVERT_STEPS` L-BFGS steps; the decoders blur):
            sharper edges and patterns in about 3-5x the time, at resolutions
            up to 1024x1024 px (the default does this in its last pass at
            outputs up to 256x256 px, :data:`DEFAULT_INVERT_PIXELS`); ``"best"``: refine the finished texture by
            optimising its pixels against Heitz et al.'s sliced Wasserstein
            feature loss, at half and at full resolution (at most 512 px;
            :func:`~ottex.methods.optimization.swd_refine`): closest per
            layer, several times the time; ``"default"``: neither, but the
            inverted last pass at small outputs.
        tile: make a tileable texture (circular padding in the networks and
            periodic resampling): the output wraps around seamlessly. Sides
            that are not multiples of 16 are made at the next multiple and
            resampled periodically, which stretches the texture slightly
            (by up to 15 px per side; use multiples of 16 to avoid it).
        progress: show a progress bar.
        callback: progress subscriber (:class:`~ottex.core.progress.ProgressEvent`
            per level visit); returning False cancels the run.
        method: another registered synthesis method (``"po"``, ``"gatys"`` ...):
            its options are given as keywords (``options``), e.g.
            ``synthesize(style, 256, method="po", model="po.pt")``; the options
            above that it also has (``style_scale``, ``tile`` ...) pass on to it.
        iterations: the former name of ``rotations`` (deprecated: a :class:`FutureWarning`).
        **options: options of ``method`` (fields of its options class).

    Returns:
        ``(batch, 3, height, width)`` tensor in ``[0, 1]`` on ``device``.

    Raises:
        InputError: bad size or option, a mask without its partner, a target
            label absent from the style's mask; an option ``method`` does not have.
        Cancelled: the callback stopped the run.

    Example:
        >>> out = ottex.synthesize("graffiti.jpg", size=(512, 512), seed=1)  # doctest: +SKIP
        >>> mixed = ottex.synthesize(["lava.jpg", "zebra.jpg"], mix=(0.7, 0.3))  # doctest: +SKIP
    """
    rotations = renamed_keyword(rotations, iterations, "rotations", "iterations")
    if method != "ot" or options:
        ours = {"passes": (passes, None), "rotations": (rotations, None), "levels": (levels, None),
                "pca": (pca, True), "pca_variance": (pca_variance, 0.9), "mode": (mode, "sort"),
                "style_scale": (style_scale, None), "weights": (weights, DEFAULT_WEIGHTS), "schedule": (schedule, None),
                "network_dtype": (network_dtype, "auto"),
                "mix": (mix, None), "mix_variation": (mix_variation, 0.5), "style_mask": (style_mask, None),
                "target_mask": (target_mask, None), "tile": (tile, False), "layout": (layout, "auto"),
                "quality": (quality, "default")}
        given = {k: v for k, (v, default) in ours.items() if v is not default and v != default}
        return _synthesize_with(method, style, size, {**given, **options}, batch=batch, seed=seed, device=device,
                                weights_dir=weights_dir, progress=progress, callback=callback)
    opts = OTOptions(passes=passes, rotations=rotations, levels=levels, pca=pca, pca_variance=pca_variance,
                     mode=mode, style_scale=style_scale, weights=weights, schedule=schedule,
                     network_dtype=network_dtype, mix=None if mix is None else tuple(mix),
                     mix_variation=mix_variation, style_mask=style_mask, target_mask=target_mask, tile=tile,
                     layout=layout, quality=quality)
    return _synthesize_with("ot", style, size, opts, batch=batch, seed=seed, device=device, weights_dir=weights_dir,
                            progress=progress, callback=callback)


def _synthesize_with(
    name: str,
    style: ImageLike | Sequence[ImageLike],
    size: int | Sequence[int],
    options: dict[str, Any] | OTOptions,
    **run: Any,
) -> torch.Tensor:
    """:func:`synthesize` by the registered method ``name`` with ``options`` (checked by its :class:`Method`, as
    every run is: the same checks, and the same estimate of its cost, as the command line's)."""
    method = get_method(name, SYNTHESIS)
    with run_callbacks(run.pop("callback"), progress=run.pop("progress"), desc=f"ottex synth ({name})") as cb:
        return method.synthesize(style, size, options, callback=cb, **run)


@torch.no_grad()
def _synthesize(
    style: ImageLike | Sequence[ImageLike],
    size: Sequence[int],
    opts: OTOptions,
    *,
    batch: int = 1,
    seed: int | None = 0,
    device: str | torch.device | None = None,
    weights_dir: str | os.PathLike | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """The ``"ot"`` method's synthesis (the registry's contract; see :func:`synthesize`)."""
    h, w = check_size(size)
    dev = prepare_device(device)
    styles = [check_example(as_image(s, dev, "style")) for s in _as_list(style)]
    guide = _make_guide(styles, (h, w), opts.mix, opts.mix_variation, opts.style_mask, opts.target_mask, "target",
                        seed)
    if guide is not None:  # regions (masks, mixing) have no layout stage: they start from noise with the deep levels
        opts = opts.replace(layout="off")
    structured, note = structure_verdict(styles[0]) if opts.layout == "auto" else (False, None)
    sched = opts.effective_schedule(structured=structured)
    if note:
        note = f"layout {'on' if sched.layout_iterations > 0 else 'off'}: auto, the example is {note}"
    if guide is not None and opts.style_mask is not None and not opts.tile:  # the output is cropped from the centre
        guide.target = _pad_to_working(resample_masks(guide.target, (h, w)))
    image = _run_schedule(styles, (h, w), sched, opts.weights, weights_dir, seed, opts.style_scale, opts.pca,
                          opts.pca_variance, batch=batch, guide=guide, tile=opts.tile, callback=callback,
                          network_dtype=opts.network_dtype, note=note)
    if opts.tile:
        return wrap_resize(image, (h, w)).clamp_(0, 1)
    return crop_to(image, (h, w))


def transfer(
    content: ImageLike,
    style: ImageLike,
    size: int | tuple[int, int] | None = None,
    *,
    content_strength: float = DEFAULT_CONTENT_STRENGTH,
    init: str = "content",
    passes: Sequence[int] | int | None = None,
    rotations: int | None = None,
    levels: Sequence[int] | None = None,
    pca: bool = True,
    pca_variance: float = 0.9,
    mode: str = "sort",
    style_scale: float | None = None,
    seed: int | None = 0,
    weights: str = DEFAULT_WEIGHTS,
    weights_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    schedule: OTSchedule | None = None,
    network_dtype: str = "auto",
    style_mask: ImageLike | None = None,
    content_mask: ImageLike | None = None,
    preserve_color: bool | str = False,
    progress: bool = False,
    callback: Callback | None = None,
    iterations: int | None = None,
) -> torch.Tensor:
    """Style transfer by Optimal Textures: the content's layout with the style's textures.

    The same coarse-to-fine loop as :func:`synthesize`, started from the content
    (or noise). Before every matching step at relu5_1, relu4_1 and relu3_1 the
    features are pulled towards the content's (moved onto the style's mean):
    ``x += w * (content - x)`` with ``w = content_strength x (1, 1, 1/2)``;
    the match that follows gives them the style's distribution again. The
    result's pixel patches are then polished towards the style's
    (:func:`~ottex.image.patches.patch_polish`; not with masks).

    Args:
        content: content image, a path or a ``(1, 3, H, W)`` tensor in ``[0, 1]``.
        style: style image, a path or a ``(1, 3, H', W')`` tensor.
        size: long side of the output (default: the content's), the content's
            aspect kept; or ``(height, width)``.
        content_strength: how strongly the layout is kept, between 0 (texture
            only) and 2; about 1 leaves little style.
        init: ``"content"`` (default) or ``"noise"``.
        style_scale: size of style details, as in :func:`synthesize`.
        passes, rotations, levels, pca, pca_variance, mode, seed, weights,
        weights_dir, device, schedule, network_dtype, progress, callback, iterations: as in :func:`synthesize`.
        style_mask: label map of the style (colour-coded regions); with
            ``content_mask``, the content's: each region of the content is
            painted with the style of the region of the same colour.
        content_mask: label map of the content (resampled to the output).
        preserve_color: keep the content's colours: True or ``"full"``:
            luminance from the result, chroma from the content, then a few
            sliced-OT steps that match the RGB distribution to the content's;
            ``"luminance"``: the chroma swap alone, so the light and shade stay
            the style's (:func:`ottex.image.color.preserve_color`).

    Returns:
        ``(1, 3, H, W)`` tensor in ``[0, 1]`` on ``device``.

    Example:
        >>> out = ottex.transfer("bridge.jpg", "lava.jpg", size=512)  # doctest: +SKIP
    """
    rotations = renamed_keyword(rotations, iterations, "rotations", "iterations")
    opts = OTOptions(passes=passes, rotations=rotations, levels=levels, pca=pca, pca_variance=pca_variance,
                     mode=mode, style_scale=style_scale, weights=weights, schedule=schedule,
                     network_dtype=network_dtype, style_mask=style_mask, content_mask=content_mask,
                     content_strength=content_strength, init=init)
    with run_callbacks(callback, progress=progress, desc="ottex style") as cb:  # checked by its Method, as every run
        return get_method("ot", TRANSFER).transfer(content, style, size, opts, preserve_color=preserve_color,
                                                   seed=seed, device=device, weights_dir=weights_dir, callback=cb)


@torch.no_grad()
def _transfer(
    content: ImageLike,
    style: ImageLike,
    size: int | tuple[int, int] | None,
    opts: OTOptions,
    *,
    seed: int | None = 0,
    device: str | torch.device | None = None,
    weights_dir: str | os.PathLike | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """The ``"ot"`` method's style transfer (the registry's contract; see :func:`transfer`)."""
    dev = prepare_device(device)
    content_img = check_example(as_image(content, dev, "content"), "content")
    h, w = content_output_size(content_img.shape[-2:], size)
    sched = opts.effective_schedule(TRANSFER)
    style_img = check_example(as_image(style, dev, "style"))
    guide = _make_guide([style_img], (h, w), None, 0.0, opts.style_mask, opts.content_mask, "content", seed,
                        labelled_hw=content_img.shape[-2:])
    image = _run_schedule([style_img], (h, w), sched, opts.weights, weights_dir, seed, opts.style_scale, opts.pca,
                          opts.pca_variance, content=content_img, content_strength=opts.content_strength,
                          init=opts.init, guide=guide, callback=callback, network_dtype=opts.network_dtype)
    return resize(image, (h, w)).clamp_(0, 1)


#: Measured whole runs of ``ot`` (``methods.cost``): (megapixels, peak MB, seconds). Peaks: 256-1024 px one thread
#: (``benchmarks/run_cost.py``), 2048-8192 px README "Large outputs"; seconds: that bench, 2 threads, quiet.
OT_COST = ((0.066, 972.0, None), (0.262, 1098.0, 14.7), (1.05, 2417.0, 36.9), (4.19, 2840.0, 101.1),
           (16.8, 6035.0, 197.8), (67.1, 16500.0, 1108.0))

#: Measured whole runs of ``ot --quality best`` (synthesis; ``benchmarks/run_cost.py --methods "ot --quality
#: best"``, procedural bricks, 2 threads, quiet): (megapixels, peak MB, seconds).
BEST_COST = ((0.066, 862.0, 92.9), (0.262, 2178.0, 227.9), (1.049, 2454.0, 221.2))


#: Whole runs of ``ot --quality high`` (synthesis, procedural bricks; ``benchmarks/run_cost.py --methods "ot --quality
#: high,ot" --threads 1``): (megapixels, peak MB, seconds). Peaks measured; seconds: the default's (:data:`OT_COST`)
#: times the ratio high / default measured in that run (5.3x at 512 px, 5.0x at 1024 px; one thread, loaded machine).
HIGH_COST = ((0.066, 616.0, None), (0.262, 1380.0, 78.0), (1.049, 3985.0, 185.0))


def _beyond_measured(points: tuple[tuple[float, float, float | None], ...]) -> RunCost:
    """The cost model of a quality whose extra work is bounded in size (the refinement works at 512 px at most, the
    inversion at 1024x1024 px at most): its measured ``points``, then the default's larger points with that work's
    cost on top: the larger peak of the two, the default's time plus the extra time of the last measured point."""
    mp, peak, seconds = points[-1]
    extra = seconds - RunCost(OT_COST).seconds(mp)
    return RunCost(points + tuple((m, max(p, peak), None if t is None else t + extra) for m, p, t in OT_COST if m > mp))


_COSTS = {"default": RunCost(OT_COST), "high": _beyond_measured(HIGH_COST), "best": _beyond_measured(BEST_COST)}


def _cost(opts: OTOptions, task: str) -> RunCost:
    """The cost model of a run: the default's, or that of ``quality`` ``"high"`` or ``"best"`` for a synthesis."""
    return _COSTS[opts.quality if task == SYNTHESIS else "default"]


METHOD = register_method(Method(
    "ot",
    "Optimal Textures (Risser 2020): sliced OT of VGG features, no back-propagation",
    OTOptions,
    synthesize=_synthesize,
    transfer=_transfer,
    label=_label,
    content_label=_content_label,
    cost=_cost,
))


def _pad_to_working(masks: torch.Tensor) -> torch.Tensor:
    """``(K, h, w)`` masks over the output -> over the working size, placed where
    :func:`~ottex.core.pyramid.crop_to` takes the output from (edges replicated)."""
    h, w = masks.shape[-2:]
    hh, ww = working_size((h, w))
    top, left = (hh - h) // 2, (ww - w) // 2
    return F.pad(masks[None], (left, ww - w - left, top, hh - h - top), mode="replicate")[0]


def _as_list(style: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    if isinstance(style, (str, os.PathLike, torch.Tensor)):
        return [style]
    styles = list(style)
    if not styles:
        raise InputError("no style image given")
    return styles


def _make_guide(
    styles: Sequence[torch.Tensor],
    size: tuple[int, int],
    mix: Sequence[float] | None,
    mix_variation: float,
    style_mask: ImageLike | None,
    target_mask: ImageLike | None,
    target_name: str,
    seed: int | None,
    labelled_hw: Sequence[int] | None = None,
) -> Guide | None:
    """The region guidance of a run from the mixing and mask arguments (None: a plain run). ``labelled_hw``: the
    size of the image the target mask labels (the content, for a transfer; default: the output ``size``)."""
    dev = styles[0].device
    if (style_mask is None) != (target_mask is None):
        raise InputError(f"region guidance needs both a style mask and a {target_name} mask",
                         option="style_mask" if style_mask is None else f"{target_name}_mask")
    if style_mask is not None:
        if len(styles) > 1 or mix is not None:
            raise InputError("masks and texture mixing cannot be combined: give one style with masks")
        s_masks, t_masks, _ = load_label_pair(style_mask, target_mask, device=dev,
                                              names=("style_mask", f"{target_name}_mask"))
        check_mask_aspect(s_masks.shape[-2:], styles[0].shape[-2:], "style mask", "style image")
        check_mask_aspect(t_masks.shape[-2:], labelled_hw or size, f"{target_name} mask",
                          "output" if labelled_hw is None else f"{target_name} image")
        s_masks = resample_masks(s_masks, styles[0].shape[-2:])
        return Guide(target=t_masks, style_masks=[s_masks], weights=torch.ones(len(s_masks), 1, device=dev))
    if len(styles) == 1:
        if mix is not None and len(mix) > 1:
            raise InputError(f"{len(mix)} mixing weights given for 1 style")
        return None
    weights = torch.full((len(styles),), 1.0 / len(styles)) if mix is None else torch.tensor([float(v) for v in mix])
    if len(weights) != len(styles):
        raise InputError(f"{len(weights)} mixing weights given for {len(styles)} styles")
    if bool((weights < 0).any()) or float(weights.sum()) <= 0:
        raise InputError(f"mixing weights must be non-negative and not all zero, got {tuple(weights.tolist())}")
    if not 0 <= mix_variation <= 1:
        raise InputError(f"mix variation must be between 0 and 1, got {mix_variation}")
    weights = weights / weights.sum()
    return _mix_guide(weights, size, mix_variation, seed, dev)


def _mix_guide(weights: torch.Tensor, size: tuple[int, int], variation: float, seed: int | None,
               device: torch.device) -> Guide:
    """Texture mixing as region guidance: a random smooth partition of the output, one region per style with an
    area proportional to its weight; region ``i`` takes the barycenter ``(1 - variation) * weights + variation *
    e_i`` of the styles."""
    gen = make_generator(None if seed is None else seed + 7919, "cpu")
    h, w = size
    cells = (max(2, round(5 * h / max(h, w))), max(2, round(5 * w / max(h, w))))
    field = wrap_resize(torch.rand(1, 1, *cells, generator=gen), (max(8, h // 4), max(8, w // 4)))[0, 0]
    ranks = torch.argsort(torch.argsort(field.flatten())).float().reshape(field.shape) / field.numel()
    edges = torch.cumsum(weights, 0)
    labels = torch.bucketize(ranks, edges[:-1].contiguous(), right=True)
    target = F.one_hot(labels, len(weights)).permute(2, 0, 1).float()
    region_w = (1 - variation) * weights[None, :] + variation * torch.eye(len(weights))
    keep = weights > 0
    return Guide(target=target[keep].to(device), style_masks=[None] * len(weights),
                 weights=region_w[keep].to(device))


#: Weight of the content pull per level, times ``content_strength``. Risser 2020 pulls with 1, 1/2, 1/4 after
#: every matching step; ottex pulls before the match, and relu4_1 keeps the layout as strongly as relu5_1.
CONTENT_LEVEL_WEIGHTS = {5: 1.0, 4: 1.0, 3: 0.5}


@dataclass
class Guide:
    """Region guidance of a run: ``K`` regions of the output, each with its own style statistics.

    Region ``k`` of the output (soft weights ``target[k]``) draws its feature
    statistics from the style pixels of region ``k`` (``style_masks[i][k]``, or
    all pixels of style ``i`` when ``style_masks[i]`` is None), mixed over the
    styles with the barycentric weights ``weights[k]``. Mask-guided synthesis
    and transfer use one style and label masks; texture mixing uses several
    styles, whole, and a random partition of the output.

    Attributes:
        target: ``(K, H, W)`` soft masks over the output (any resolution; resampled).
        style_masks: per style, ``(K, Hs, Ws)`` masks over that style, or None.
        weights: ``(K, S)`` weights of the ``S`` styles in each region.
    """

    target: torch.Tensor
    style_masks: list[torch.Tensor | None]
    weights: torch.Tensor


def _run_schedule(
    style_imgs: Sequence[torch.Tensor],
    size: tuple[int, int],
    sched: OTSchedule,
    weights: str,
    weights_dir: str | os.PathLike | None,
    seed: int | None,
    style_scale: float | None,
    pca: bool,
    pca_variance: float,
    *,
    batch: int = 1,
    content: torch.Tensor | None = None,
    content_strength: float = 0.0,
    init: str = "noise",
    guide: Guide | None = None,
    tile: bool = False,
    callback: Callback | None = None,
    network_dtype: str = "auto",
    start: torch.Tensor | None = None,
    start_scale: int = 0,
    prepared: dict | None = None,
    note: str | None = None,
) -> torch.Tensor:
    """The coarse-to-fine loop shared by synthesis, style transfer, mixing and guided synthesis.

    Returns the image at the finest working size (``size`` rounded up to a multiple of 16). Reports one
    progress step per level visit. ``start`` (video, :func:`transfer_from`): the image the run starts from, at
    scale ``start_scale`` (negative: counted from the finest); the scales before it are skipped; ``prepared``:
    the style's statistics of earlier calls (see :func:`transfer_from`); ``note``: told to the progress callback
    after the first scale's event, before the first step (the layout's choice).
    """
    dev = style_imgs[0].device
    nets = load_autoencoders(weights, tuple(dict.fromkeys(sched.levels + sched.fine_levels)), weights_dir, dev,
                             padding="circular" if tile else None, strict=False)
    gen = make_generator(seed, dev)
    sizes = pyramid_sizes(size, sched.coarse_side, min_side=sched.min_side, scales=sched.scales)
    if sched.scales is not None and len(sizes) < sched.scales:
        warnings.warn(f"{sched.scales} scales asked for, {len(sizes)} made: a further halving of the "
                      f"{sizes[0][1]}x{sizes[0][0]} px coarsest scale would go under the {sched.min_side} px short "
                      "side the encoders need", stacklevel=2)
    layout = start is None and sched.layout_iterations > 0  # only synthesis without regions has the stage
    if layout and sched.layout_scales:
        sizes = sizes[-sched.layout_scales :]  # start where the example is at least half its size
    factors = [style_factor(img.shape[-2:], size, style_scale) for img in style_imgs]
    for img, factor in zip(style_imgs, factors):
        _warn_upsampling(img, factor)
    plan = []  # (scale index, levels, iterations) per pass
    for si, passes in enumerate(per_scale(sched.passes, len(sizes))):
        for side, cap in sched.large_passes or ():
            if max(sizes[si]) >= side:
                passes = min(passes, cap)
        lv = [lvl for lvl in (sched.levels if si == 0 else sched.fine_levels) if lvl in nets]
        its = sched.iterations if si == 0 else sched.fine_iterations
        plan += [(si, lv, its)] * passes
    if start is not None:  # transfer_from: only the scales from start_scale on
        plan = [p for p in plan if p[0] >= start_scale % len(sizes)]
    level_visits = [sum(len(lv) for s, lv, _ in plan if s == si) for si in range(len(sizes))]
    # the refinement of a plain synthesis: its resolutions follow the schedule's in the progress events (imported
    # here: importing the module registers w2, gatys and swd, which come after ot in the registry)
    from .optimization import INVERT_MAX_PIXELS, REFINE_RUN_EVALS, refine_sizes, swd_refine  # noqa: PLC0415

    synthesis = content is None and start is None
    plain = synthesis and guide is None  # a synthesis without regions: refine
    # a synthesis or a style transfer without regions, a video's warm-started frames too (docs/video.md, "Speed")
    polish = guide is None and sched.polish_iterations > 0
    # the inversion: synthesis only, at outputs up to its bound, at the finest invert_scales resolutions
    invert_steps = sched.invert_steps if synthesis and (
        sched.invert_max_output is None or size[0] * size[1] <= sched.invert_max_output) else 0
    first_inverted = 0 if sched.invert_scales is None else len(sizes) - sched.invert_scales
    if invert_steps > 0 and sizes[-1][0] * sizes[-1][1] > INVERT_MAX_PIXELS:
        side = math.isqrt(INVERT_MAX_PIXELS)
        warnings.warn(f"the feature inversion works up to {side}x{side} px: the {sizes[-1][1]}x{sizes[-1][0]} px "
                      "resolution of this run is made without it", stacklevel=2)
    refine = refine_sizes(sizes[-1], sched.refine_runs) if plain else []
    report = Reporter("ot", callback, sizes + [s for s, _ in refine],
                      level_visits + [n * REFINE_RUN_EVALS for _, n in refine], unit="step" if refine else "level")
    image: torch.Tensor | None = None
    targets: dict[int, list[_LevelTarget]] = {}
    content_feats: dict[int, torch.Tensor] = {}
    current = -1
    inverted = False  # whether the last pass so far had decodings inverted
    for pi, (si, lv, its) in enumerate(plan):
        if si != current:  # a new resolution: style statistics at the matching scale, upsampled image
            current = si
            report.begin_scale(si)
            if note:  # once, after the first scale's event
                report.note(note)
                note = None
            sh, sw = sizes[si]
            kept = None if prepared is None else prepared.get((si, sh, sw, tuple(lv)))
            if kept is not None:  # transfer_from: the statistics of an earlier call, the random state after them
                styles_s, targets = kept[0], kept[1]
                gen.set_state(kept[2])
            else:
                styles_s = [style_at(img, _network_factor(img, f * sh / sizes[-1][0], lv))
                            for img, f in zip(style_imgs, factors)]
                targets = {lvl: _scale_targets(nets[lvl][0], styles_s, guide, sched, pca, pca_variance, gen)
                           for lvl in lv}
                if prepared is not None:
                    prepared[(si, sh, sw, tuple(lv))] = (styles_s, targets, gen.get_state())
            content_s = None if content is None else resize(content, (sh, sw))
            if content_s is not None and content_strength > 0:
                content_feats = {lvl: nets[lvl][0](content_s).flatten(2) for lvl in lv if lvl in CONTENT_LEVEL_WEIGHTS}
            if image is None and start is not None:
                image = resize(start, (sh, sw))
            elif image is None and layout:
                image = _layout(style_imgs[0], factors[0] * sh / sizes[-1][0], (sh, sw), sched, batch, gen, tile,
                                max(sizes[-1]))
            else:
                image = next_scale_image(image, (sh, sw), _mean_style(styles_s, guide), content_s, init, batch, gen,
                                         wrap=tile)
            # the output's regions at each level's feature resolution (sizes are multiples of 16)
            half = network_dtype == "bfloat16" or (network_dtype == "auto" and sh * sw >= BFLOAT16_PIXELS
                                                and bfloat16_is_fast(dev))
            regions = {} if guide is None else {
                lvl: resample_masks(guide.target, (sh >> (lvl - 1), sw >> (lvl - 1))).flatten(1) for lvl in lv}
        # the decodings of this pass are inverted if it is one of its resolution's last ones
        inverted = invert_steps > 0 and si >= first_inverted and sh * sw <= INVERT_MAX_PIXELS and \
            sum(p[0] == si for p in plan[pi + 1 :]) < sched.invert_passes and any(
                lvl in sched.invert_levels for lvl in lv)
        for lvl in lv:
            pull = content_strength * CONTENT_LEVEL_WEIGHTS.get(lvl, 0.0)
            invert = invert_steps if inverted and lvl in sched.invert_levels else 0
            image = _level_step(image, nets[lvl], targets[lvl], regions.get(lvl), its.get(lvl, 0), sched.gaussian,
                                gen, content_feats.get(lvl), pull, half, invert)
            if sh * sw >= TRIM_PIXELS:  # the decoder's bands
                release_free_memory()
            report.step(image=image)
    assert image is not None
    if polish:  # the example at the output's scale (and large enough for its tool)
        example = style_at(style_imgs[0], _network_factor(style_imgs[0], factors[0], (1,)))
        steps, momentum = sched.polish_iterations, sched.polish_momentum
        patch = LAYOUT_PATCH
        if synthesis and not inverted and sched.polish_without_inversion is not None:  # the last pass's blur is left
            steps, momentum, *sides = sched.polish_without_inversion
            patch = sides[0] if sides else patch
        image = patch_polish(image, example, steps, patch=patch, generator=gen, wrap=tile, momentum=momentum,
                             scales=1 if isinstance(steps, tuple) else sched.polish_scales)
    if refine:
        example = style_at(style_imgs[0], _network_factor(style_imgs[0], factors[0], (4,)))
        image = swd_refine(image, example, sched.refine_runs, weights_dir=weights_dir, generator=gen, wrap=tile,
                           on_scale=lambda i: report.begin_scale(len(sizes) + i),
                           on_eval=lambda value, x: report.step(loss=value, image=lambda: x.detach().clamp(0, 1)))
    report.finish(image)
    return image


#: From this many pixels per image, the free heap is given back to the kernel after the encoding, the matching and
#: the decoding of every level visit (see :func:`~ottex.core.runtime.release_free_memory`): the peak memory of long
#: large runs stays that of the largest of these steps.
TRIM_PIXELS = 1 << 20

#: Sliced-OT rotations of the maps between styles that make a mixed (barycenter) style.
MIX_ITERATIONS = 8


def _scale_targets(
    encoder: Encoder,
    styles: Sequence[torch.Tensor],
    guide: Guide | None,
    sched: OTSchedule,
    pca: bool,
    pca_variance: float,
    gen: torch.Generator,
) -> list[_LevelTarget]:
    """The style statistics of one level at one resolution: one target, or one per region of the guide."""
    feats = [encoder(s) for s in styles]
    if guide is None:
        return [_target_from_cloud(feats[0].flatten(2)[0], pca, pca_variance, sched.max_style_samples, gen)]
    masks = [None if m is None else F.interpolate(m[None], size=f.shape[-2:], mode="bilinear", align_corners=False,
                                                  antialias=True)[0]
             for f, m in zip(feats, guide.style_masks)]  # (K, h, w) per style, at this level's resolution
    out = []
    for k in range(guide.weights.shape[0]):
        clouds = [_region_cloud(f, None if m is None else m[k]) for f, m in zip(feats, masks)]
        cloud = _barycenter_cloud(clouds, guide.weights[k].tolist(), sched.max_style_samples, MIX_ITERATIONS, gen)
        out.append(_target_from_cloud(cloud, pca, pca_variance, sched.max_style_samples, gen))
    return out


def _layout(style: torch.Tensor, factor: float, size: tuple[int, int], sched: OTSchedule, batch: int,
            gen: torch.Generator, tile: bool, out_side: int) -> torch.Tensor:
    """The image the first resolution starts from: :func:`~ottex.image.patches.patch_layout` at a long side of at
    most ``sched.layout_side`` or an eighth of the output's long side ``out_side``, whichever is larger (the style at
    the detail scale ``factor`` of ``size``), resized to ``size``."""
    s = min(1.0, max(sched.layout_side, out_side // 8) / max(size))
    small = (max(LAYOUT_MIN_SIDE, round(size[0] * s)), max(LAYOUT_MIN_SIDE, round(size[1] * s)))
    example = style_at(style, factor * small[0] / size[0])
    image = patch_layout(example, small, sched.layout_iterations, batch=batch, generator=gen, wrap=tile)
    return wrap_resize(image, size) if tile else resize(image, size)


def _mean_style(styles: Sequence[torch.Tensor], guide: Guide | None) -> torch.Tensor:
    """The style whose colour statistics start the synthesis (the most weighted one when mixing)."""
    if guide is None or len(styles) == 1:
        return styles[0]
    return styles[int(guide.weights.sum(0).argmax())]


def _network_factor(style: torch.Tensor, factor: float, levels: Sequence[int]) -> float:
    """``factor``, raised where the example would be too small for the deepest encoder (:func:`network_factor`)."""
    deepest = max(levels, default=1)
    return network_factor(style.shape[-2:], factor, min_size_for_level(deepest), f"the relu{deepest}_1 encoder")


def _counts(value: object) -> bool:
    """Whether ``value`` is a whole number of at least 1 (not a bool) or a non-empty tuple of them."""
    values = value if isinstance(value, tuple) else (value,)
    return bool(values) and all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1
                                for n in values)


def _effective_schedule(
    sched: OTSchedule,
    passes: Sequence[int] | int | None,
    iterations: int | None,
    levels: Sequence[int] | None,
    mode: str,
) -> OTSchedule:
    """Apply the convenience fields of :class:`OTOptions` (checked there) to a schedule."""
    if levels is not None:
        levels = tuple(levels)
        sched = sched.replace(levels=levels, fine_levels=tuple(lvl for lvl in sched.fine_levels if lvl in levels)
                              or levels)
    if passes is not None:
        sched = sched.replace(passes=(passes,) if isinstance(passes, int) else tuple(passes), large_passes=None)
    if not sched.passes or any(p < 1 for p in sched.passes):
        raise InputError(f"passes must be at least 1, got {sched.passes}", option="passes")
    if sched.polish_scales < 1:
        raise InputError(f"polish_scales must be at least 1, got {sched.polish_scales}")
    check_momentum(sched.polish_momentum, "polish_momentum")
    if sched.polish_without_inversion is not None:
        pair = sched.polish_without_inversion
        ok = isinstance(pair, tuple) and len(pair) in (2, 3) and isinstance(pair[1], numbers.Real)
        counts = pair[0] if ok else None
        sides = pair[2] if ok and len(pair) == 3 else LAYOUT_PATCH
        if not (_counts(counts) and (not isinstance(sides, tuple) or (
                isinstance(counts, tuple) and len(sides) == len(counts)))):
            raise InputError("polish_without_inversion must be (rotations >= 1 or a tuple of them, one per scale, "
                             "momentum) or (rotations, momentum, odd patch side or a tuple of them as long as the "
                             f"rotations') or None, got {pair!r}")
        check_momentum(pair[1], "polish_without_inversion's momentum")
        check_patch_sides(sides)  # the sides' values, with patch_polish's own message
    if iterations is not None:
        sched = sched.replace(iterations={lvl: iterations for lvl in range(1, 6)},
                              fine_iterations={lvl: iterations for lvl in range(1, 6)})
    if mode != "sort":  # a Gaussian mode: one closed-form map per level, no rotations
        sched = sched.replace(gaussian=mode, iterations={}, fine_iterations={})
    if sched.scales is not None and sched.scales < 1:
        raise InputError(f"scales must be at least 1, got {sched.scales}", option="scales")
    return sched


def _warn_upsampling(style: torch.Tensor, factor: float) -> None:
    if factor > 2:
        h, w = style.shape[-2:]
        warnings.warn(
            f"the {w}x{h} px style example is upsampled {factor:.1f}x to match the output, so its details will "
            "be blurry; use a larger example or a smaller style scale",
            stacklevel=2,
        )


@dataclass
class _LevelTarget:
    """The style's feature statistics at one level."""

    cloud: torch.Tensor  # (C', M) channels-first samples, in PCA coordinates when ``basis`` is set
    mean: torch.Tensor  # (C,) mean of the full cloud
    cov: torch.Tensor  # (C, C) covariance of the full cloud
    basis: torch.Tensor | None = None  # (C, k) PCA basis


def _target_from_cloud(
    cloud: torch.Tensor, pca: bool, pca_variance: float, max_samples: int, gen: torch.Generator
) -> _LevelTarget:
    """Statistics of a ``(C, M)`` style cloud: mean and covariance of all of it, a subsample, its PCA basis."""
    mu, cov = mean_cov(cloud.T)
    cloud = subsample(cloud, max_samples, gen)
    if not pca:
        return _LevelTarget(cloud=cloud.contiguous(), mean=mu, cov=cov)
    _, basis, _ = pca_basis(cloud.T, pca_variance)
    proj = basis.T @ (cloud - mu[:, None])
    return _LevelTarget(cloud=proj.contiguous(), mean=mu, cov=cov, basis=basis)


def _barycenter_cloud(
    clouds: Sequence[torch.Tensor], weights: Sequence[float], max_samples: int, iterations: int,
    gen: torch.Generator,
) -> torch.Tensor:
    """Sliced-OT barycenter of ``(C, M_i)`` clouds with ``weights``.

    The first cloud with a positive weight is the reference; it is mapped onto
    every other cloud (Gaussian map, then sliced OT) and the maps are averaged
    with the weights: the displacement interpolation between the styles'
    feature distributions.
    """
    live = [(c, float(w)) for c, w in zip(clouds, weights) if w > 0]
    if len(live) == 1:
        return live[0][0]
    total = sum(w for _, w in live)
    ref = subsample(live[0][0], max_samples, gen)
    acc = ref * (live[0][1] / total)
    for cloud, w in live[1:]:
        target = _target_from_cloud(cloud, False, 1.0, max_samples, gen)
        acc = acc + (w / total) * _match(ref[None].clone(), target, iterations, "sym", gen)[0]  # moved in place
    return acc


def _region_cloud(feats: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``(1, C, h, w)`` features -> ``(C, M)`` cloud of the pixels of a region (``mask``: ``(h, w)`` weights)."""
    cloud = feats.flatten(2)[0]
    if mask is None:
        return cloud
    m = mask.flatten()
    idx = torch.nonzero(m >= 0.5).flatten()
    if idx.numel() < 4:  # a region too small for this level's resolution: its most covered pixels
        idx = torch.topk(m, min(4, m.numel())).indices
    return cloud.index_select(-1, idx)


def _level_step(
    image: torch.Tensor,
    nets: tuple[Encoder, Decoder],
    targets: Sequence[_LevelTarget],
    regions: torch.Tensor | None,  # (K, fh * fw) soft region weights at the features' resolution
    iterations: int,
    gaussian: str | None,
    gen: torch.Generator,
    content: torch.Tensor | None = None,
    strength: float = 0.0,
    half: bool = False,
    invert: int = 0,
) -> torch.Tensor:
    """One visit of a level: encode, move the features onto the style's (per region with ``regions``), decode.
    ``half``: the networks run in bfloat16 (the features are moved in float32). ``invert``: then that many L-BFGS
    steps of :func:`~ottex.methods.optimization.invert_features` towards the moved features (in float32)."""
    enc, dec = nets
    trim = image.shape[-2] * image.shape[-1] >= TRIM_PIXELS
    with bfloat16_convolutions(image.device, half):
        feats = enc(image).float()
    if trim:  # the encoder's bands are freed: give them back before the matching's temporaries
        release_free_memory()
    b, c, fh, fw = feats.shape
    x = feats.flatten(2)
    if regions is None:
        cont = None if content is None else _centred(content, targets[0].mean)
        x = _match(x, targets[0], iterations, gaussian, gen, cont, strength)
    else:
        x = _match_regions(x, targets, regions, iterations, gaussian, gen, content, strength)
    if trim:
        release_free_memory()
    with bfloat16_convolutions(image.device, half):
        out = dec(x.reshape(b, c, fh, fw)).float()
    if out.shape[-2:] != image.shape[-2:]:
        out = F.interpolate(out, size=image.shape[-2:], mode="bilinear", align_corners=False)
    out = out.clamp_(0, 1)
    if invert > 0:
        from .optimization import invert_features  # noqa: PLC0415  (see _run_schedule)

        out = invert_features(enc, x.reshape(b, c, fh, fw), out, invert)
    return out


def _centred(content: torch.Tensor, style_mean: torch.Tensor) -> torch.Tensor:
    """``(1, C, N)`` content features moved onto the style's mean (per channel)."""
    return content - content.mean(dim=-1, keepdim=True) + style_mean[:, None]


def _match_regions(
    x: torch.Tensor,
    targets: Sequence[_LevelTarget],
    weights: torch.Tensor,
    iterations: int,
    gaussian: str | None,
    gen: torch.Generator,
    content: torch.Tensor | None,
    strength: float,
) -> torch.Tensor:
    """Match each region of a ``(B, C, N)`` cloud to its own target; ``weights``: ``(K, N)`` soft region masks.

    Every region is matched on the pixels where its weight is above 1 %
    (its own Gaussian map, so its own mean, then sliced OT), and the results
    are blended with the weights, which makes the borders soft.
    """
    out = torch.zeros_like(x)
    total = torch.zeros(x.shape[-1], dtype=x.dtype, device=x.device)
    for k, target in enumerate(targets):
        idx = torch.nonzero(weights[k] > 0.01).flatten()
        if idx.numel() < 2:
            continue
        w = weights[k].index_select(0, idx)
        cont = None if content is None else _centred(content.index_select(-1, idx), target.mean)
        y = _match(x.index_select(-1, idx), target, iterations, gaussian, gen, cont, strength)
        out.index_add_(-1, idx, y * w)
        total.index_add_(0, idx, w)
    missing = total <= 0
    if bool(missing.any()):  # pixels of no region (cannot happen with masks that sum to 1): left as they were
        out[..., missing] = x[..., missing]
        total[missing] = 1
    return out / total


def _match(
    x: torch.Tensor,
    target: _LevelTarget,
    iterations: int,
    gaussian: str | None,
    gen: torch.Generator,
    content: torch.Tensor | None = None,
    strength: float = 0.0,
) -> torch.Tensor:
    """Move a ``(B, C, N)`` feature cloud onto the target distribution (in place where it can: pass a copy
    to keep ``x``).

    With ``content`` (``(1, C, N)`` features, style transfer), the cloud is
    first pulled towards it, ``x += strength * (content - x)``; then come the
    closed-form Gaussian map (if any) and ``iterations`` sliced-OT steps, in
    the style's PCA subspace when the target has a basis. The match comes
    last, so the features that are decoded have the style's distribution; the
    layout of the pulled cloud survives because each map is monotone along
    every direction it moves. (Pulling after the match, as Risser 2020 does,
    blends the two clouds and blurs the style: README, "Style transfer".)
    """
    if content is not None and strength > 0:
        x.lerp_(content.expand_as(x), strength)
    if gaussian is not None:
        mu, cov = mean_cov(x.transpose(1, 2))
        a, b = gaussian_mapping(mu, cov, target.mean.expand_as(mu), target.cov.expand_as(cov), method=gaussian)
        _affine_(x, a, b.unsqueeze(-1))
    if iterations <= 0:
        return x
    if x.shape[-1] > LARGE_CLOUD_COLUMNS:
        return _streamed_sliced_ot(x, target, iterations, gen)
    full = x
    if target.basis is not None:  # match the principal coordinates; the residual keeps the Gaussian map's result
        x = target.basis.T @ full - (target.basis.T @ target.mean)[:, None]
    start = x
    c = x.shape[1]
    for _ in range(iterations):
        rot = random_rotation(c, gen, device=x.device, dtype=x.dtype)
        x = rot @ sort_match(rot.T @ x, rot.T @ target.cloud, dim=-1)
    if target.basis is None:
        return x
    for s, e in _chunks(full.shape[-1]):  # full += basis @ (x - start), without a full-size temporary
        full[..., s:e] += target.basis @ (x[..., s:e] - start[..., s:e])
    return full


#: Columns per chunk of the pointwise maps applied to large feature clouds (temporaries that stay in the CPU cache:
#: 1 << 15 against 1 << 20 made the streamed steps of a 4096 px relu1_1 cloud 1.3x faster).
CHUNK_COLUMNS = 1 << 15
#: Feature clouds with more columns than this (relu1_1 above 1024x1024 px, relu2_1 above 2048x2048, relu3_1 above
#: 4096x4096) take their sliced-OT steps streamed (:func:`_streamed_sliced_ot`): memory beyond the cloud itself
#: bounded by :data:`STREAM_ELEMENTS`, 1D matches by :func:`~ottex.ot.binned_sort_match` in linear time (a 1 M-value
#: row: 2-5x faster than the exact sort, a mean error of 7e-6 of the target's spread).
LARGE_CLOUD_COLUMNS = 1 << 20
#: Projected values held at once by the streamed steps (a block of directions times the cloud's columns).
STREAM_ELEMENTS = 1 << 25


def _streamed_sliced_ot(
    full: torch.Tensor, target: _LevelTarget, iterations: int, gen: torch.Generator
) -> torch.Tensor:
    """The sliced-OT steps of :func:`_match` for a large ``(B, C, N)`` cloud, in place, a few directions at a time.

    Each step draws the same random rotation as the in-memory path; its directions are taken a few at a time:
    project the cloud on them, match each projection to the style's with :func:`~ottex.ot.binned_sort_match`,
    add the moves back along the same directions. The directions of one rotation are orthonormal, so moving
    along some of them leaves the projections on the others unchanged and the blocks give the step's result
    whatever their size; only a block's projections are held, never all ``k`` rotated rows. When the target
    has a PCA basis, the steps move the cloud's ``(B, k, N)`` principal coordinates (a fraction ``k / C`` of the
    cloud: 7 of 24 channels at relu1_1), which are added back to the cloud once after all the steps, as in the
    in-memory path: each block then reads and writes ``k`` rows instead of the whole cloud. The 1D matches read
    ranks off a binned CDF instead of sorting: the only difference from the in-memory path (measured in README,
    "Large outputs").
    """
    basis = target.basis
    n = full.shape[-1]
    if basis is None:
        x = full
    else:  # the principal coordinates, centred like the target's cloud
        shift = (basis.T @ target.mean)[:, None]
        x = full.new_empty(full.shape[0], basis.shape[1], n)
        for s, e in _chunks(n):
            torch.sub(basis.T @ full[..., s:e], shift, out=x[..., s:e])
    k = x.shape[1]
    block = max(1, min(k, STREAM_ELEMENTS // (n * x.shape[0])))
    for _ in range(iterations):
        rot = random_rotation(k, gen, device=full.device, dtype=full.dtype)
        tgt = sort_values(rot.T @ target.cloud)  # (k, M): the style's projections, sorted
        for j in range(0, k, block):
            d = rot[:, j : j + block]
            y = d.T @ x  # (B, b, N)
            move = binned_sort_match(y, tgt[j : j + block], target_sorted=True).sub_(y)
            del y
            for s, e in _chunks(n):
                x[..., s:e] += d @ move[..., s:e]
    if basis is not None:  # full += basis @ (moved - original coordinates), chunk by chunk
        for s, e in _chunks(n):
            x[..., s:e] -= basis.T @ full[..., s:e] - shift
            full[..., s:e] += basis @ x[..., s:e]
    return full


def _chunks(n: int) -> list[tuple[int, int]]:
    return [(s, min(n, s + CHUNK_COLUMNS)) for s in range(0, n, CHUNK_COLUMNS)]


def _affine_(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``x <- a @ x + b`` in place for a ``(B, C, N)`` cloud, chunk by chunk of columns."""
    for s, e in _chunks(x.shape[-1]):
        x[..., s:e] = torch.baddbmm(b.expand(x.shape[0], -1, e - s), a.expand(x.shape[0], -1, -1), x[..., s:e])
    return x


# ----------------------------------------------------------------------------------------------
# Video (issue 32, ``ottex.video``): continue a style transfer from a given image


@torch.no_grad()
def transfer_from(
    start: torch.Tensor,
    content: ImageLike,
    style: ImageLike,
    size: int | tuple[int, int] | None,
    options: OTOptions,
    *,
    start_scale: int = -1,
    seed: int | None = 0,
    device: str | torch.device | None = None,
    weights_dir: str | os.PathLike | None = None,
    callback: Callback | None = None,
    prepared: dict | None = None,
) -> torch.Tensor:
    """The ``"ot"`` style transfer of ``content``, started from ``start`` (a ``(1, 3, h, w)`` image, e.g. the
    previous video frame's result warped onto this frame) at scale ``start_scale`` of the coarse-to-fine
    schedule (-1: the finest only) instead of from the content at the coarsest. Same seed, same rotations.

    ``prepared``: a dict the caller keeps between calls with the same style, size, options and seed (the frames
    of a clip): the first call stores the style's statistics at each scale and level there (and the random
    state after them), the next ones reuse them instead of encoding the style again; the results are the
    same."""
    dev = prepare_device(device)
    content_img = check_example(as_image(content, dev, "content"), "content")
    h, w = content_output_size(content_img.shape[-2:], size)
    style_img = check_example(as_image(style, dev, "style"))
    guide = _make_guide([style_img], (h, w), None, 0.0, options.style_mask, options.content_mask, "content", seed,
                        labelled_hw=content_img.shape[-2:])
    image = _run_schedule([style_img], (h, w), options.effective_schedule(TRANSFER), options.weights, weights_dir,
                          seed, options.style_scale, options.pca, options.pca_variance, content=content_img,
                          content_strength=options.content_strength, init=options.init, guide=guide,
                          callback=callback, network_dtype=options.network_dtype,
                          start=as_image(start, dev, "start"), start_scale=start_scale, prepared=prepared)
    return resize(image, (h, w)).clamp_(0, 1)
