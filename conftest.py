"""Collection of the docstring examples (``--doctest-modules`` over ``src/ottex``): the web server's module is
skipped without the optional web extra."""

from __future__ import annotations

from pathlib import Path

collect_ignore: list[str] = []

try:  # the web app's server module needs the optional web extra (its tests say so when it is missing)
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError:
    collect_ignore.append(str(Path("src", "ottex", "app", "web", "server.py")))
