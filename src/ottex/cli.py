"""Moved to :mod:`ottex.app.cli`; ``ottex.cli`` stays an alias of that package (``ottex.cli:main`` works)."""

import sys

from .app import cli as _module

if __name__ == "__main__":  # python -m ottex.cli
    sys.exit(_module.main())
sys.modules[__name__] = _module
