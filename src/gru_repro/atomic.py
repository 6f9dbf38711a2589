"""Atomic file writes: write a temp file beside the target, then ``os.replace`` it onto the target.

A crash or an exception mid-write leaves the old file (or none), never a torn one that passes
for complete. The one place in the package that does this; everything that writes a result,
checkpoint, cache or download goes through here.

    with atomic_path(out / "roll.png") as tmp:   # tmp: a fresh empty file beside the target
        fig.savefig(tmp)                          # renamed onto out/roll.png on success,
                                                  # deleted on any exception
    atomic_write_text(path, text); atomic_write_bytes(path, data); atomic_torch_save(obj, path)
    remove_stale_temp_files(folder)              # temp files of killed writers

The temp file is named ``.<target name>.<writer pid>.<random>.tmp<ending>``, e.g.
``.roll.png.4242.x1y2z3a4.tmp.png``: hidden, naming the target and the process that writes it,
and ending in the target's extension (or ``suffix``) so that writers which pick a format from
the name (matplotlib, soundfile) still work. It ends with a normal file's permissions
(``0o666 & ~umask``), not ``mkstemp``'s private 0600.

A process killed mid-write (SIGKILL, power loss) cannot delete its temp file;
``remove_stale_temp_files`` deletes those whose writer no longer runs. The pid is checked on
this machine: temp files written by another machine into a shared folder look dead here, so
clean only folders this machine writes.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# ".<target>.<pid>.<random>.tmp<ending>": see the module docstring and atomic_path.
TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>[0-9]+)\.[a-z0-9_]+\.tmp(?:\.[^.]*)?$")
# Before the pid was part of the name: ".<target>.<8 random>.tmp<extension>" or ".part".
LEGACY_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}(?:\.tmp(?:\.[^.]*)?|\.part)$")
LEGACY_MAX_AGE_S = 3600.0  # a legacy temp file untouched this long has no writer left


def _current_umask() -> int:
    """The process umask (reading it means setting it, so set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to disk."""
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

    The temp name is ``.<name>.<pid>.<random>.tmp<ending>`` (``remove_stale_temp_files``
    recognises it); ``suffix``: the ending, one extension such as ``.part`` (fetch), default
    the target's extension. ``fsync``: flush the data to disk before the rename, for files a
    resumed run depends on (checkpoints, metrics). Parent folders are created. On any exception
    the temp file is removed and the exception propagates; the target is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=path.parent,
        prefix=f".{path.name}.{os.getpid()}.",
        suffix=".tmp" + (path.suffix if suffix is None else suffix),
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            fsync_path(tmp)
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


def process_is_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (the current process does, by definition).

    ``os.kill(pid, 0)`` sends no signal, only checks: ProcessLookupError means no such process;
    PermissionError means it exists under another user. A pid reused by a new process reads as
    alive, which only keeps a file longer.
    """
    if pid == os.getpid():
        return True
    if pid <= 0:
        return True  # 0 and negatives name process groups, never a writer: keep the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:  # larger than any pid this system hands out
        return False
    return True


def _stale_reason(path: Path, now: float, legacy_max_age_s: float) -> str | None:
    """Why ``path`` is a temp file nobody will finish, or None when it is not (or may be)."""
    match = TEMP_NAME.match(path.name)
    if match is not None:
        pid = int(match["pid"])
        return None if process_is_alive(pid) else f"its writer, pid {pid}, no longer runs"
    if LEGACY_TEMP_NAME.match(path.name):
        try:
            age = now - path.stat().st_mtime
        except FileNotFoundError:
            return None
        if age > legacy_max_age_s:
            return f"temp name without a pid, untouched for {age / 3600:.1f} h"
    return None


def remove_stale_temp_files(
    folder: str | Path, *, recursive: bool = False, legacy_max_age_s: float = LEGACY_MAX_AGE_S
) -> list[Path]:
    """Delete the temp files of ``atomic_path`` in ``folder`` that no process will finish.

    Removed: regular files named ``.<target>.<pid>.<random>.tmp<ending>`` whose writer ``pid``
    no longer runs (``process_is_alive``); and files of the naming scheme before the pid
    (``.<target>.<random>.tmp<ending>``, ``.<target>.<random>.part``) not modified for
    ``legacy_max_age_s`` seconds: their writer is unknown, but every writer keeps writing while
    its temp file is open, and none takes an hour. Everything else (targets, folders, links,
    temp files of live writers, including this process's) is kept. ``recursive``: also in the
    subfolders. Returns the removed paths, each logged with its reason. A missing folder has
    nothing to remove.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    walk = os.walk(folder) if recursive else [(str(folder), [], os.listdir(folder))]
    now, removed = time.time(), []
    for parent, _, names in walk:
        for name in names:
            path = Path(parent) / name
            if not name.startswith(".") or path.is_symlink() or not path.is_file():
                continue
            reason = _stale_reason(path, now, legacy_max_age_s)
            if reason is not None:
                path.unlink(missing_ok=True)
                log.info("removed stale temp file %s (%s)", path, reason)
                removed.append(path)
    return removed
