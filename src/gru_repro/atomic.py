"""Atomic file writes: write a temp file beside the target, then ``os.replace`` it onto the target.

A crash or an exception mid-write leaves the old file (or none), never a torn one that passes
for complete. The one place in the package that does this; everything that writes a result,
checkpoint, cache or download goes through here.

    with atomic_path(out / "roll.png") as tmp:   # tmp: a fresh empty file beside the target
        fig.savefig(tmp)                          # renamed onto out/roll.png on success,
                                                  # deleted on any exception
    atomic_write_text(path, text); atomic_write_bytes(path, data); atomic_torch_save(obj, path)

The temp file keeps the target's extension at the end of its name (``.roll.png.x1y2.tmp.png``)
so that writers which pick a format from the name (matplotlib, soundfile) still work; it ends
with a normal file's permissions (``0o666 & ~umask``), not ``mkstemp``'s private 0600.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _current_umask() -> int:
    """The process umask (reading it means setting it, so set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(
    path: str | Path, *, suffix: str | None = None, fsync: bool = False
) -> Iterator[Path]:
    """Yield a temp path in ``path``'s folder; on success it is renamed onto ``path``.

    ``suffix``: the temp name's ending (default ``.tmp<target extension>``; fetch uses
    ``.part``). ``fsync``: flush the data to disk before the rename, for files a resumed run
    depends on (checkpoints, metrics). Parent folders are created. On any exception the temp
    file is removed and the exception propagates; the target is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=path.parent,
        prefix=f".{path.name}.",
        suffix=f".tmp{path.suffix}" if suffix is None else suffix,
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; results are shared
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # no-op after a successful rename


def atomic_write_bytes(path: str | Path, data: bytes | memoryview, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, *, fsync: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically and durably (fsync before the rename).

    A kill at any moment leaves the old checkpoint or the new one, never a torn one.
    """
    import torch  # here, not at the top: data and report code use this module without torch

    with atomic_path(path, fsync=True) as tmp:
        torch.save(obj, tmp)
    return Path(path)
