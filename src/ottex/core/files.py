"""Files written the same way everywhere: atomically, with ordinary permissions, into a folder checked first.

:func:`atomic_output` writes to a temporary file in the target folder and
renames it into place, so a failure or Ctrl-C never leaves a partial file. The
temporary file is created with mode 0600 (``tempfile.mkstemp``); before the
rename it gets the mode any program would give a new file (``0666`` minus the
umask), or the mode of the file it replaces. :func:`check_writable` tells
whether a file can be created in a folder, before any work is done.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_output(folder / "notes.txt") as fh:
    ...     _ = fh.write(b"hello")
    >>> (folder / "notes.txt").read_bytes(), [p.name for p in folder.iterdir()]
    (b'hello', ['notes.txt'])
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import InputError

__all__ = ["current_umask", "new_file_mode", "atomic_output", "check_writable", "sha256sum"]


def current_umask() -> int:
    """The process's umask (read from ``/proc`` where it can be, so that it is never changed, even briefly)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode(path: str | os.PathLike) -> int:
    """Permission bits for a file written to ``path``: those of the file already there, else ``0666 & ~umask``."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """A binary file object whose content replaces ``path`` when the block ends without an error.

    The folder must exist. On any error (or KeyboardInterrupt) the temporary
    file is removed and ``path`` is left as it was.

    Args:
        path: the file to write.
        suffix: suffix of the temporary file (hidden, in the same folder).

    Raises:
        OSError: the folder is not writable, or writing fails.
    """
    p = Path(path)
    mode = new_file_mode(p)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=suffix, dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(folder: str | os.PathLike) -> None:
    """Check that a new file can be created in ``folder`` (by creating and removing an empty one).

    A real attempt rather than :func:`os.access`: it also sees read-only file
    systems, and what root may not write.

    Raises:
        InputError: the folder does not exist, or no file can be created in it (``option="outputs"``).
    """
    d = Path(folder)
    if not d.is_dir():
        raise InputError(f"output folder does not exist: {d}", option="outputs")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".ottex-write-check.", dir=d)
    except OSError as exc:
        raise InputError(f"cannot write to output folder {d} (creating a file there failed: {exc.strerror or exc})",
                         option="outputs") from None
    os.close(fd)
    os.unlink(tmp)


def sha256sum(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "a.bin"
        >>> _ = f.write_bytes(b"abc")
        >>> sha256sum(f)[:16]
        'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
