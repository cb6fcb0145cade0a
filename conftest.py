"""Collection of the docstring examples (``--doctest-modules`` over ``src/ottex``): the modules that only alias
a module's ottex 0.1 path to its new home are skipped (their docstrings are collected at the new path)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).parent / "src" / "ottex"
collect_ignore = [
    str(p.relative_to(Path(__file__).parent))
    for p in _PACKAGE.glob("*.py")
    if "sys.modules[__name__] = _module" in p.read_text()
]

try:  # the web app's server module needs the optional web extra (its tests say so when it is missing)
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError:
    collect_ignore.append(str(Path("src", "ottex", "app", "web", "server.py")))
