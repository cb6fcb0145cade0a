"""Pretrained weight sets: one :class:`WeightSet` object per set knows everything about it.

A set holds its files (pinned upstream URL and sha256, in the manner of
torchvision's weight enums), its levels, how its upstream files are converted
to the canonical layout of :mod:`ottex.nn.layout` (``convert``), its
conventions (padding, a final ReLU in the decoders), which file a feature
extractor is built from and which layers it can tap. A file is looked up, in
order:

1. an explicit directory (``weights_dir=`` argument),
2. the directory named by the environment variable ``OTTEX_WEIGHTS``,
3. the user cache (``OTTEX_CACHE`` or ``platformdirs.user_cache_dir("ottex")``
   + ``/weights``),
4. a download of the upstream URL into the cache (temporary file, sha256
   check, atomic rename).

Every directory is laid out with one sub-directory per set, e.g.
``<dir>/cd16x/encoder5.pth``.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..core.errors import MissingWeightsError, WeightsError
from ..core.files import atomic_output, sha256sum
from .layout import VGG_CONVS, conv_name, level_conv, relu_name

__all__ = [
    "WeightFile",
    "WeightSet",
    "WEIGHT_SETS",
    "register_weight_set",
    "get_weight_set",
    "cache_dir",
    "search_dirs",
    "resolve_weight_file",
    "upstream_name",
    "sha256sum",
]

ENV_WEIGHTS = "OTTEX_WEIGHTS"
ENV_CACHE = "OTTEX_CACHE"
ENV_OFFLINE = "OTTEX_OFFLINE"


@dataclass(frozen=True)
class WeightFile:
    """One pretrained file.

    Attributes:
        filename: name inside the set's directory.
        url: public upstream URL, or ``None`` when the file must be supplied locally.
        sha256: full sha256 hex digest, a prefix of it (torchvision style), or
            ``None`` when no hash is pinned (a warning is printed on use).
        size: size in bytes when known.
        role: ``"encoder"``, ``"decoder"`` or ``"loss"``.
        level: the relu level N_1 the file encodes to / decodes from (0 if n/a).
    """

    filename: str
    url: str | None
    sha256: str | None
    size: int | None
    role: str
    level: int = 0


#: Converts one upstream file (as loaded: a state dict, an npz mapping ...) of ``(role, level)`` to the canonical
#: state dict (``conv0.*``, ``conv11.*`` ...).
Converter = Callable[[str, int, object], "dict[str, torch.Tensor]"]


@dataclass(frozen=True)
class WeightSet:
    """A named family of files (one autoencoder per level, or one loss network) and how to use them.

    Attributes:
        name: registry name, also the folder name on disk.
        description: one line for listings.
        files: the files, with URLs and hashes.
        convert: upstream file -> canonical state dict (None: the set cannot be loaded).
        padding: the padding its convolutions were trained with (``"reflect"`` or ``"zeros"``).
        final_relu: its decoders end with a ReLU.
        feature_file: ``(role, level)`` of the file a multi-layer feature
            extractor is built from; level 0 with role ``"encoder"`` means the
            deepest level the requested layers need.
        taps: the layers a feature extractor of this set can return.
        parts: for a *composite* set (no files of its own), per level the
            sets its encoder and decoder come from, in order of preference:
            the next one is used, with a warning, when the files of the first
            are absent and cannot be downloaded (never when they are corrupt).
    """

    name: str
    description: str
    files: tuple[WeightFile, ...]
    convert: Converter | None = None
    padding: str = "reflect"
    final_relu: bool = False
    feature_file: tuple[str, int] = ("loss", 0)
    taps: tuple[str, ...] = ()
    parts: tuple[tuple[int, tuple[str, ...]], ...] = ()

    def file(self, role: str, level: int = 0) -> WeightFile:
        """The file of ``role`` (``"encoder"``, ``"decoder"``, ``"loss"``) at ``level``."""
        for f in self.files:
            if f.role == role and f.level == level:
                return f
        raise WeightsError(f"weight set '{self.name}' has no {role} for level {level}")

    @property
    def levels(self) -> tuple[int, ...]:
        """Levels with both an encoder and a decoder in the registry."""
        if self.parts:
            return tuple(sorted(level for level, _ in self.parts))
        enc = {f.level for f in self.files if f.role == "encoder"}
        dec = {f.level for f in self.files if f.role == "decoder"}
        return tuple(sorted(enc & dec))

    def member_files(self) -> list[tuple[WeightSet, WeightFile]]:
        """``(set, file)`` for every file the set uses: its own, or for a composite set the encoder and decoder
        of each level in the set it prefers for that level."""
        if not self.parts:
            return [(self, f) for f in self.files]
        out = []
        for level, names in self.parts:
            part = get_weight_set(names[0])
            out += [(part, part.file(role, level)) for role in ("encoder", "decoder")]
        return out

    def resolve(
        self, role: str, level: int = 0, weights_dir: str | os.PathLike | None = None, download: bool = True,
        progress: bool = True,
    ) -> Path:
        """Find (or download) one file; see :func:`resolve_weight_file`."""
        return resolve_weight_file(self.name, role, level, weights_dir, download, progress)

    def load_state(self, role: str, level: int = 0, weights_dir: str | os.PathLike | None = None) -> dict:
        """The canonical state dict of one file (resolved on every call, read once per path)."""
        path = self.resolve(role, level, weights_dir)
        return _read_state(str(path), self.name, role, level)

    def feature_source(self, layers: tuple[str, ...]) -> tuple[str, int]:
        """``(role, level)`` of the file a feature extractor tapping ``layers`` is built from."""
        role, level = self.feature_file
        if role == "encoder" and level == 0:
            level = max(int(conv_name(layer)[4]) for layer in layers)
        return role, level


_CD = "https://raw.githubusercontent.com/MingSun-Tse/Collaborative-Distillation/master/trained_models"
_DT = "https://raw.githubusercontent.com/pietrocarbo/deep-transfer/master/models/autoencoder_vgg19"

_CD16X_FILES = (
    # (level, encoder upstream name, sha256, size, decoder upstream name, sha256, size)
    (1, "20191110-133713_E20.pth", "f74755a65164a88e0db8cbb7d99d7078b9fa505df0953fac5123bfc7c84e0ea4", 10271,
     "20191111-091942_E20.pth", "05f26ad40044c019da0cf731372d5bd2ee4b477825c7f45508da70b1cd5a95fd", 3220),
    (2, "20191110-132713_E20.pth", "cb654af6bae77176f8c7721c965483e865b987f2f1612dda1ba0d0b5c3819a61", 52833,
     "20191111-091932_E20.pth", "94dd26f0e69857f79bf284a43a3708aa05c09c2593427c7f6e400ad12ce314e6", 30672),
    (3, "20191110-132705_E20.pth", "269cdd0e2634e3e1e5d3005b9e7eca0f4cc8077653fee1ac8c0cf1cbe9ab8758", 231124,
     "20191111-091929_E20.pth", "005faba27859435762a8a9386116c00629cd8835a01617d0a71defa577c42174", 142014),
    (4, "20191110-132643_E20.pth", "d2f059cbcd6669556a43aadef58d20c8b280462c18b60a9e7424a14dd271cd6b", 1235183,
     "20191111-092553_E20.pth", "902f65e2c6033d803d02df552eb898e5985190a7ae67d155e384826eec6f04cb", 881308),
    (5, "20191109-211322_E20.pth", "9417c34d0d8d621bc6af78be745f1b8d30f5f210efa01e50655c60eb3770816b", 3862288,
     "20191110-204615_E20.pth", "17fd0f81622f01366eb21cb4d40140ee38cf988ed6eaf266629709c397a8b485", 3243622),
)

_WCT_HASHES = {
    ("encoder", 1): ("9f60c0230232985e2505eeaaeb670119eacfd590cb06c2ea752538b974a1d2aa", 8031),
    ("encoder", 2): ("b86e3e26b907a9d97a0567826b18fc85c23b5873acc1c2b7ddb9b0a70fc4a0cb", 451726),
    ("encoder", 3): ("ff8506173d3a17e7b0fbfbff242c00b6827cfbcd7c21852b46806ae6a3fd7b09", 2223308),
    ("decoder", 1): ("78e72d8d80ea9460c45bc89bf9c29d0804639771e443a18c46e20e1f73a57578", 7488),
    ("decoder", 2): ("4d4134c572dfa273b4f1f3d76a2439d62197a018de6d743c2b9d85b2093c409e", 450926),
    ("decoder", 3): ("f32bc7bd366ff027936b3d90a98bc3f8667ba3f2762df916261a0586c5e30ab5", 2221993),
}


def _convert_cd16x(role: str, level: int, raw: object) -> dict[str, torch.Tensor]:
    """The CD files are ``{'model': state_dict, 'epoch': int}`` already in the canonical layout."""
    return dict(raw["model"])  # type: ignore[index]


def _sequential_convs(sd: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    idx = sorted({int(k.split(".")[0]) for k in sd if k.endswith(".weight")})
    return [(sd[f"{i}.weight"], sd[f"{i}.bias"]) for i in idx]


def _convert_wct(role: str, level: int, raw: object) -> dict[str, torch.Tensor]:
    """``nn.Sequential`` state dicts: the convolutions in order (the encoder's first is the 1x1 ``conv0``)."""
    convs = _sequential_convs(raw)  # type: ignore[arg-type]
    if role == "encoder":
        names = ("conv0",) + VGG_CONVS[: VGG_CONVS.index(level_conv(level)) + 1]
    else:
        names = tuple(reversed(VGG_CONVS[: VGG_CONVS.index(level_conv(level)) + 1]))
    if len(names) != len(convs):
        raise WeightsError(f"wct-vgg19 {role}{level}: expected {len(names)} convolutions, found {len(convs)}")
    out = {}
    for n, (w, b) in zip(names, convs):
        out[f"{n}.weight"], out[f"{n}.bias"] = w, b
    return out


def _caffe_conv0() -> dict[str, torch.Tensor]:
    """RGB [0,1] -> BGR*255 minus the ImageNet mean, as a 1x1 convolution."""
    w = torch.zeros(3, 3, 1, 1)
    for out_c, in_c in ((0, 2), (1, 1), (2, 0)):
        w[out_c, in_c] = 255.0
    b = -torch.tensor([103.939, 116.779, 123.68])
    return {"conv0.weight": w, "conv0.bias": b}


def _convert_caffe(role: str, level: int, raw: object) -> dict[str, torch.Tensor]:
    """numpy kernels named ``conv1_1.weight`` ... (Caffe's BGR, 0-255 input)."""
    out = _caffe_conv0()
    for k, v in raw.items():  # type: ignore[union-attr]
        block, rest = k.split("_", 1)  # "conv1", "1.weight"
        out[f"{block}{rest}"] = torch.from_numpy(np.asarray(v, dtype=np.float32))
    return out


def _torchvision_conv0() -> dict[str, torch.Tensor]:
    mean = torch.tensor([0.485, 0.456, 0.406])
    std = torch.tensor([0.229, 0.224, 0.225])
    return {"conv0.weight": torch.diag(1.0 / std).reshape(3, 3, 1, 1), "conv0.bias": -mean / std}


def _convert_torchvision(role: str, level: int, raw: object) -> dict[str, torch.Tensor]:
    """torchvision's ``vgg19`` state dict: ``features.N`` convolutions in order (ImageNet mean/std input)."""
    feats = {k.removeprefix("features."): v for k, v in raw.items() if k.startswith("features.")}  # type: ignore[union-attr]
    out = _torchvision_conv0()
    for n, (w, b) in zip(VGG_CONVS, _sequential_convs(feats)):
        out[f"{n}.weight"], out[f"{n}.bias"] = w, b
    return out


_ALL_TAPS = tuple(relu_name(c) for c in VGG_CONVS)


def _cd16x() -> WeightSet:
    files: list[WeightFile] = []
    for lvl, enc, enc_sha, enc_size, dec, dec_sha, dec_size in _CD16X_FILES:
        files.append(WeightFile(f"encoder{lvl}.pth", f"{_CD}/wct_se_16x_new/{enc}", enc_sha, enc_size, "encoder", lvl))
        files.append(WeightFile(f"decoder{lvl}.pth", f"{_CD}/wct_se_16x_new_sd/{dec}", dec_sha, dec_size, "decoder",
                                lvl))
    return WeightSet(
        "cd16x",
        "Collaborative Distillation 16x-compressed VGG-19 autoencoders, levels 1-5 (Wang et al. 2020, MIT)",
        tuple(files),
        convert=_convert_cd16x,
        padding="reflect",
        final_relu=True,
        feature_file=("encoder", 5),  # the level-5 encoder with its 1x1 aux read-outs to VGG-19 widths
        taps=_ALL_TAPS,
    )


def _wct_vgg19() -> WeightSet:
    files: list[WeightFile] = []
    for lvl in range(1, 6):
        for role, stem in (("encoder", "vgg_normalised"), ("decoder", "feature_invertor")):
            name = f"{stem}_conv{lvl}_1.pth"
            sha, size = _WCT_HASHES.get((role, lvl), (None, None))
            files.append(WeightFile(name, f"{_DT}/vgg19_{lvl}/{name}", sha, size, role, lvl))
    return WeightSet(
        "wct-vgg19",
        "Universal Style Transfer normalised VGG-19 autoencoders, levels 1-5 (Li et al. 2017)",
        tuple(files),
        convert=_convert_wct,
        padding="reflect",
        feature_file=("encoder", 0),  # the deepest encoder the layers need
        taps=_ALL_TAPS,
    )


WEIGHT_SETS: dict[str, WeightSet] = {}


def register_weight_set(ws: WeightSet, replace: bool = False) -> WeightSet:
    """Add a weight set to the registry (``replace`` an existing one of that name only when asked)."""
    if ws.name in WEIGHT_SETS and not replace:
        raise WeightsError(f"weight set '{ws.name}' is already registered")
    WEIGHT_SETS[ws.name] = ws
    return ws


register_weight_set(_cd16x())
register_weight_set(_wct_vgg19())
register_weight_set(
    WeightSet(
        "hybrid",
        "wct-vgg19 at levels 2-3 (full-width VGG-19 features, sharper decoders), cd16x at levels 1, 4, 5; the "
        "default of Optimal Textures (STROTSS's hybrid loss network: wct-vgg19 relu1_1-relu3_1, cd16x relu4_1, "
        "relu5_1)",
        (),
        parts=((1, ("cd16x",)), (2, ("wct-vgg19", "cd16x")), (3, ("wct-vgg19", "cd16x")), (4, ("cd16x",)),
               (5, ("cd16x",))),
    )
)
register_weight_set(
    WeightSet(
        "vgg19-caffe",
        "ImageNet VGG-19 (original Caffe weights) as numpy kernels; supply the file locally",
        (
            WeightFile(
                "vgg19_caffe_conv1_1-conv3_4.npz",
                None,
                "f45e91dffaaf9d0b6b3aca516f6239791be70e16c513c32b7db39611e9ababdb",
                9306422,
                "loss",
            ),
        ),
        convert=_convert_caffe,
        padding="zeros",
        taps=_ALL_TAPS[: VGG_CONVS.index("conv34") + 1],
    )
)
register_weight_set(
    WeightSet(
        "vgg19-torchvision",
        "torchvision ImageNet VGG-19 (hash prefix in the file name, torchvision style)",
        (WeightFile("vgg19-dcbb9e9d.pth", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "dcbb9e9d", None,
                    "loss"),),
        convert=_convert_torchvision,
        padding="zeros",
        taps=_ALL_TAPS,
    )
)


def get_weight_set(name: str) -> WeightSet:
    """Return the registry entry of a weight set, or raise a clear error."""
    try:
        return WEIGHT_SETS[name]
    except KeyError:
        raise WeightsError(f"unknown weight set '{name}' (known: {', '.join(WEIGHT_SETS)})", option="weights") from None


def cache_dir() -> Path:
    """The user cache directory for weights: ``$OTTEX_CACHE/weights`` or the platform cache."""
    root = os.environ.get(ENV_CACHE)
    if not root:
        import platformdirs  # noqa: PLC0415 - only without $OTTEX_CACHE

        root = platformdirs.user_cache_dir("ottex")
    return Path(root) / "weights"


def search_dirs(weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """Directories searched for weight files, in order.

    Raises:
        WeightsError: ``weights_dir`` is given but is not a folder (``option="weights_dir"``).
    """
    dirs: list[Path] = []
    if weights_dir:
        if not Path(weights_dir).is_dir():
            raise WeightsError(f"weights_dir {weights_dir} is not a folder", option="weights_dir")
        dirs.append(Path(weights_dir))
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        dirs.append(Path(env))
    dirs.append(cache_dir())
    return dirs


def _hash_mismatch(path: Path, wf: WeightFile) -> str | None:
    """None when ``path`` has ``wf``'s pinned hash (or none is pinned: a warning); else the file's sha256."""
    if wf.sha256 is None:
        warnings.warn(f"no sha256 is pinned for {wf.filename}; loading it unverified", stacklevel=4)
        return None
    digest = sha256sum(path)
    return None if digest.startswith(wf.sha256) else digest


def _corrupt_message(path: Path, wf: WeightFile, digest: str, fix: str | None = None) -> str:
    expected = wf.sha256 if wf.sha256 and len(wf.sha256) == 64 else f"one starting with {wf.sha256}"
    if fix is None:
        fix = (f"delete it and download it again from {wf.url}" if wf.url
               else "replace it with the original file (it has no public download)")
    return f"weight file {path} is corrupt: its sha256 is {digest}, expected {expected}; {fix}"


def _check_hash(path: Path, wf: WeightFile) -> None:
    digest = _hash_mismatch(path, wf)
    if digest is not None:
        raise WeightsError(_corrupt_message(path, wf, digest))


def upstream_name(wf: WeightFile) -> str | None:
    """The file name of ``wf``'s upstream download when it differs from ours (``20191109-211322_E20.pth`` for
    ``cd16x/encoder5.pth``): a file saved under that name in a set's folder is found too."""
    if wf.url is None:
        return None
    name = Path(urllib.parse.urlparse(wf.url).path).name
    return name if name and name != wf.filename else None


def _download(url: str, dest: Path, progress: bool) -> None:
    """Download ``url`` to ``dest`` atomically; the folders made for it are removed again when it fails."""
    from tqdm.auto import tqdm  # noqa: PLC0415 - only when downloading

    made = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_output(dest, suffix=".part") as out, urllib.request.urlopen(url, timeout=60) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                for chunk in iter(lambda: resp.read(1 << 16), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    except BaseException:
        for folder in made:  # innermost first: an empty cache folder left behind says nothing
            try:
                folder.rmdir()
            except OSError:
                break
        raise


_verified: set[tuple[str, str]] = set()


def resolve_weight_file(
    set_name: str,
    role: str,
    level: int = 0,
    weights_dir: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
) -> Path:
    """Find (or download) one weight file and verify its hash.

    Args:
        set_name: registry name, e.g. ``"cd16x"``.
        role: ``"encoder"``, ``"decoder"`` or ``"loss"``.
        level: relu level (1-5) for encoders and decoders.
        weights_dir: a directory searched first (one sub-directory per set).
        download: fetch the upstream file into the cache when it is not found
            (also disabled by the environment variable ``OTTEX_OFFLINE=1``).
        progress: show a download progress bar.

    Returns:
        Path of the verified file.

    A file found with the wrong sha256 is an error that names it, both hashes
    and the fix; in the cache, where ottex put it, it is downloaded again (with
    a warning) when downloads are allowed.

    Raises:
        MissingWeightsError: the file is missing everywhere and cannot be downloaded.
        WeightsError: a file is there but its sha256 does not match the registry.
    """
    wset = get_weight_set(set_name)
    wf = wset.file(role, level)
    dirs = search_dirs(weights_dir)
    offline = os.environ.get(ENV_OFFLINE, "") not in ("", "0")
    cached = cache_dir() / set_name / wf.filename
    upstream = upstream_name(wf)
    for d in dirs:
        path = d / set_name / wf.filename
        if not path.is_file() and upstream is not None:  # the file saved under its upstream name
            path = d / set_name / upstream
        if path.is_file():
            key = (str(path.resolve()), wf.sha256 or "")
            if key in _verified:
                return path
            digest = _hash_mismatch(path, wf)
            if digest is None:
                _verified.add(key)
                return path
            in_cache = path.resolve() == cached.resolve()
            if not (in_cache and wf.url and download and not offline):
                fix = None
                if in_cache and wf.url:
                    fix = (f"delete it: it is downloaded again on first use when downloads are allowed (${ENV_OFFLINE} "
                           f"is set), or download it from {wf.url}")
                raise WeightsError(_corrupt_message(path, wf, digest, fix))
            warnings.warn(_corrupt_message(path, wf, digest, "downloading it again"), stacklevel=2)
            path.unlink()
            break  # download below
    looked = ", ".join(str(d / set_name) for d in dirs)
    also = f" (or under its upstream name {upstream})" if upstream is not None else ""
    where = "one of those folders" if len(dirs) > 1 else "that folder"
    how = (
        f"save it as {wf.filename}{also} in {where}, or point weights_dir or ${ENV_WEIGHTS} "
        f"at a folder holding {set_name}/{wf.filename}"
    )
    if wf.url is None:
        raise MissingWeightsError(f"missing weight file {set_name}/{wf.filename} (looked in {looked}); it has no "
                           f"public download: {how}", option="weights_dir")
    if not download or offline:
        why = f" (not downloaded: ${ENV_OFFLINE} is set)" if offline else ""
        raise MissingWeightsError(f"missing weight file {set_name}/{wf.filename} (looked in {looked}); download it "
                                  f"from {wf.url} or {how}{why}", option="weights_dir")
    dest = cache_dir() / set_name / wf.filename
    try:
        _download(wf.url, dest, progress)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise MissingWeightsError(f"could not download {wf.url} ({exc}); missing weight file {set_name}/{wf.filename} "
                           f"(looked in {looked}): {how}", option="weights_dir") from None
    try:
        _check_hash(dest, wf)
    except WeightsError:
        dest.unlink(missing_ok=True)
        raise
    return dest


@lru_cache(maxsize=64)
def _read_state(path_str: str, set_name: str, role: str, level: int) -> dict[str, torch.Tensor]:
    """Read one verified file and convert it with its set's converter (cached by path)."""
    wset = get_weight_set(set_name)
    if wset.convert is None:
        raise WeightsError(f"no loader for weight set '{set_name}'")
    path = Path(path_str)
    try:
        if path.suffix == ".npz":
            with np.load(path) as z:
                raw: object = {k: z[k] for k in z.files}
        else:
            # The upstream files are plain containers of tensors: safe to load with weights_only=True.
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unreadable despite a matching hash: one clear error
        raise WeightsError(f"could not read weight file {path}: {exc}") from None
    return {k: v.float() for k, v in wset.convert(role, level, raw).items()}
