"""One process per run folder: an OS file lock (``fcntl.flock``) held for the run's lifetime.

The kernel drops the lock when its process dies, SIGKILL included, so a killed run never leaves
a stale lock; the file itself stays and is harmless. Two sweeps started into one folder, or a
sweep and a hand-started rerun, cannot both train there: the second is refused.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from gru_repro.config.checks import ConfigError

LOCK_FILE = ".run.lock"


class RunFolderLock:
    """``with RunFolderLock(run_dir): ...`` (ConfigError when another process holds it)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> RunFolderLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(
                f"run folder {self.path.parent} is in use by another process (pid {holder}); "
                "wait for it to finish, or train into another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None
