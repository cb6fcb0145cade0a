"""The layout: one import direction between layers, no module importing another's private names, and the
top level holding the facade only (the 0.1 module paths are gone)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ottex"
#: Each layer may import the layers listed before it (and itself).
LAYERS = ["core", "ot", "image", "nn", "methods", "eval|exec", "video", "app"]


def _rank(layer: str) -> int:
    return next(i for i, group in enumerate(LAYERS) if layer in group.split("|"))


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if len(rel.parts) > 1:  # inside a layer package; top-level files are the facade and 0.1 aliases
            yield path, rel.parts[0]


def _imports(path: Path):
    """(imported ottex module, imported names) for every import in a module, absolute or relative."""
    tree = ast.parse(path.read_text())
    pkg = ["ottex", *path.relative_to(SRC).parts[:-1]]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []


@pytest.mark.parametrize("path,layer", list(_modules()), ids=lambda v: str(v).split("ottex/")[-1])
def test_one_import_direction_and_no_private_imports(path, layer):
    own = _rank(layer)
    for target, names in _imports(path):
        if not target.startswith("ottex"):
            continue
        parts = target.split(".")
        if len(parts) == 1:  # "from ottex import __version__" (app) or "from .. import x"
            assert layer == "app" and names == ["__version__"], f"{path}: imports {names} from the facade"
            continue
        other = parts[1]
        assert other in {g for group in LAYERS for g in group.split("|")}, f"{path}: imports the alias {target}"
        assert _rank(other) <= own, f"{path} ({layer}) imports {target} of a later layer"
        if _rank(other) == own and other != layer:
            raise AssertionError(f"{path} ({layer}) imports {target}: eval and exec are siblings")
        module_file = SRC.joinpath(*parts[1:]).with_suffix(".py")
        if module_file != path:
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            assert not private, f"{path} imports private names {private} from {target}"


#: The top-level modules of ottex 0.1, removed (CHANGELOG.md): the package's top level is the facade only.
OLD_PATHS = ["ottex.optimal_textures", "ottex.optimization", "ottex.strotss", "ottex.networks", "ottex.weights",
             "ottex.losses", "ottex.io", "ottex.color", "ottex.masks", "ottex.metrics", "ottex.report", "ottex.bench",
             "ottex.errors", "ottex.runtime", "ottex.cli", "ottex.po"]


@pytest.mark.parametrize("old", OLD_PATHS)
def test_the_0_1_module_paths_are_gone(old):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(old)


def test_the_top_level_is_the_facade_only():
    assert sorted(p.name for p in SRC.glob("*.py")) == ["__init__.py", "__main__.py"]


def test_public_names_import():
    import ottex

    for name in ("synthesize", "transfer", "stylize", "synthesize_opt", "strotss", "color_transfer", "OptSettings",
                 "OTSchedule", "load_image", "save_image", "style_distance", "OttexError", "ImageError",
                 "InputError", "WeightsError", "Job", "make_job"):
        assert hasattr(ottex, name), name
    assert callable(ottex.strotss) and ottex.po.TrainOptions is not None
    assert [m.name for m in ottex.list_methods()] == ["ot", "w2", "gatys", "swd", "po", "strotss"]


def _top_level_imports(path: Path):
    """Modules imported at the top level of a module (not inside functions)."""
    tree = ast.parse(path.read_text())
    pkg = ["ottex", *path.relative_to(SRC).parts[:-1]]
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            base = pkg[: len(pkg) - node.level + 1] if node.level else []
            yield ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


WEB_PACKAGES = ("starlette", "uvicorn")


def test_the_web_extra_stays_in_the_web_app():
    """The web framework is an optional extra: only ``app/web/server.py`` imports it; the command line imports the
    web app inside ``serve`` only, and the two front ends do not import each other otherwise."""
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        everywhere = [t for t, _ in _imports(path)]
        if rel != "app/web/server.py":
            assert not [t for t in everywhere if t.split(".")[0] in WEB_PACKAGES], f"{rel} imports the web extra"
        top = list(_top_level_imports(path))
        if rel.startswith("app/cli/"):
            assert not [t for t in top if t.startswith("ottex.app.web")], f"{rel} imports the web app at import"
            if rel != "app/cli/serve.py":
                assert not [t for t in everywhere if t.startswith("ottex.app.web")], f"{rel} imports the web app"
        if rel.startswith("app/web/"):
            assert not [t for t in everywhere if t.startswith("ottex.app.cli")], f"{rel} imports the command line"


def test_the_command_line_imports_without_the_web_extra():
    import subprocess
    import sys

    code = ("import sys, ottex.app.cli.command; assert not {'starlette', 'uvicorn'} & set(sys.modules), "
            "'web extra imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_facade_is_lazy_and_complete():
    """``import ottex`` (and the command's entry module) loads no torch; every public name resolves."""
    import subprocess
    import sys

    code = "import sys, ottex, ottex.app.cli; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"
    import ottex

    assert all(getattr(ottex, name) is not None for name in ottex.__all__)
    assert set(ottex.__all__) <= set(dir(ottex)) and ottex.methods.get_method("ot").name == "ot"
    with pytest.raises(AttributeError):
        ottex.no_such_name  # noqa: B018
