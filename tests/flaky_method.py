"""A method for the batch tests: a flat texture whose first tries can fail in chosen ways.

``fail`` picks how: ``"never"``, ``"once"`` (raises on the first try of each job, then works), ``"always"``
(raises every time), ``"exit-once"`` (kills its process on the first try: a dead worker) or ``"ctrl-c-once"`` (as
if the user pressed Ctrl-C during the first try). Tries are counted in
files under ``state`` (a folder), so they are seen across processes (Ray workers). Importing this module
registers the method ``flaky`` (a Ray worker imports it when it unpickles the options).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ottex.core.device import resolve_device
from ottex.image.io import as_image
from ottex.methods.base import Method, register_method
from ottex.methods.options import Options, option


@dataclass(frozen=True)
class FlakyOptions(Options):
    fail: str = option("never", help="how the first tries fail",
                       choices=("never", "once", "always", "exit-once", "ctrl-c-once"))
    state: str = option("", help="folder counting the tries (none: no counting, no failures)")
    level: float = option(0.5, help="grey level")


def _try(options: FlakyOptions, image: torch.Tensor) -> None:
    if not options.state:  # no folder to count in: never fails
        return
    state = Path(options.state)
    counter = state / (hashlib.sha256(image.cpu().numpy().tobytes()).hexdigest()[:16] + ".tries")
    tries = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(tries))
    with open(state / "pids", "a") as fh:
        fh.write(f"{os.getpid()}\n")
    if options.fail == "always" or (options.fail == "once" and tries == 1):
        raise RuntimeError(f"injected failure (try {tries})")
    if options.fail == "exit-once" and tries == 1:
        os._exit(3)
    if options.fail == "ctrl-c-once" and tries == 1:
        raise KeyboardInterrupt


def _synthesize(style, size, options, *, batch=1, seed=0, device=None, weights_dir=None, callback=None):  # noqa: ANN001
    dev = resolve_device(device)
    s = as_image(style, dev, "style")
    _try(options, s)
    return torch.full((batch, 3, *size), options.level, device=dev) + 0 * s.mean()


def _transfer(content, style, size, options, *, seed=0, device=None, weights_dir=None, callback=None):  # noqa: ANN001
    dev = resolve_device(device)
    c = as_image(content, dev, "content")
    as_image(style, dev, "style")
    _try(options, c)
    return (c * 0 + options.level + 0.01 * seed).clamp(0, 1)


METHOD = register_method(Method("flaky", "a flat texture that fails on purpose (test method)", FlakyOptions,
                                synthesize=_synthesize, transfer=_transfer), replace=True)


def make_inputs(folder: Path, count: int, corrupt: bool = True, size: int = 32) -> list[Path]:
    """``count`` small random PNG frames (``f0.png`` ...) and, if ``corrupt``, a broken ``zbad.png``."""
    from ottex.image.io import save_image

    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(count)
    paths = []
    for i in range(count):
        paths.append(save_image(torch.rand(1, 3, size, size, generator=gen), folder / f"f{i}.png"))
    if corrupt:
        (folder / "zbad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
        paths.append(folder / "zbad.png")
    return paths


def tries(state: Path) -> dict[str, int]:
    """How often each job's method ran (by the content's hash)."""
    return {p.stem: int(p.read_text()) for p in state.glob("*.tries")}
