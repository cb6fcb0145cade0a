"""Run GPDM (Elnekave & Weiss, ECCV 2022; github.com/ariel415el/GPDM, Apache-2.0) as a peer of ottex.

GPDM matches the distribution of 7x7 pixel patches by sliced Wasserstein descent (Adam on the pixels), coarse to
fine. It needs no network and runs on the CPU. Its code is not part of ottex: clone or fetch it yourself and pass
its folder with ``--repo``. It imports ``torchvision`` for an anti-aliased resize and image saving only; when
torchvision is missing (there is no CPU wheel here) this script provides those few calls from torch itself.

Use it through ``ottex bench --command`` (the placeholders are filled in by ottex)::

    ottex bench --style bricks.png --sizes 256 \\
        --command "gpdm=python benchmarks/peers/gpdm.py --repo ../GPDM {style} {size} {output} {seed}"

GPDM's defaults are kept (patch 7, 64 projections, 300 Adam steps per scale, pyramid from 21 px by 0.85,
initial zeros plus noise of sigma 1.5); the output is ``size`` x ``size`` px at the example's own detail scale
when the example is ``size`` px tall (as in the structure benchmark).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def _resize_module() -> types.ModuleType:
    """A stand-in for the torchvision calls GPDM makes (Resize with antialias, save_image, to-tensor transforms)."""

    class Resize:
        def __init__(self, size, antialias: bool = True) -> None:  # noqa: ANN001
            self.size = size

        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            h, w = x.shape[-2:]
            if isinstance(self.size, int):
                size = (self.size, max(1, round(w * self.size / h)))
            else:
                size = tuple(int(s) for s in self.size)
            return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)

    def _unsupported(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("this torchvision stand-in covers only what GPDM's texture synthesis calls")

    tv = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    utils = types.ModuleType("torchvision.utils")
    transforms.Resize = Resize
    for name in ("ToTensor", "CenterCrop", "Grayscale", "Normalize", "Compose", "GaussianBlur"):
        setattr(transforms, name, _unsupported)
    utils.save_image = _unsupported
    tv.transforms, tv.utils = transforms, utils
    return tv


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", type=Path, required=True, help="folder of a GPDM checkout")
    ap.add_argument("--steps", type=int, default=300, help="Adam steps per scale [300, GPDM's default]")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("style")
    ap.add_argument("size", type=int)
    ap.add_argument("output")
    ap.add_argument("seed", type=int)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        import torchvision  # noqa: F401, PLC0415
    except ImportError:
        tv = _resize_module()
        sys.modules.update({"torchvision": tv, "torchvision.transforms": tv.transforms, "torchvision.utils": tv.utils})
    sys.path.insert(0, str(args.repo))
    import GPDM  # noqa: PLC0415  (the peer's own modules)
    from patch_swd import PatchSWDLoss  # noqa: PLC0415
    from utils import get_pyramid_scales  # noqa: PLC0415

    torch.manual_seed(args.seed)
    img = Image.open(args.style).convert("RGB")
    img = img.resize((round(img.width * args.size / img.height), args.size), Image.Resampling.LANCZOS)
    ref = torch.from_numpy(np.asarray(img, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    criteria = PatchSWDLoss(patch_size=7, stride=1, num_proj=64, c=3)
    with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar
        out, _ = GPDM.generate(ref, criteria, pyramid_scales=get_pyramid_scales(args.size, 21, 0.85),
                               aspect_ratio=(1.0, args.size / ref.shape[-1]), init_from="zeros", lr=0.01,
                               num_steps=args.steps, additive_noise_sigma=1.5, num_outputs=1, device="cpu")
    arr = ((out[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(arr).save(args.output)


if __name__ == "__main__":
    main()
