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
