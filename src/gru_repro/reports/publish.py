"""Publish a rebuilt report set into its folder so that it is never left half old, half new.

    with staged_report_set(out_dir) as staging:  # an empty folder inside out_dir
        write every report file into staging      # the slow part: figures
    # here out_dir holds the new set; on an exception it still holds the old one
    finish_interrupted_swap(out_dir)              # a reader's or the next build's recovery

The report files (table2.md, table2.csv, lr_search.md, figure3.png, figure3_more.png,
README.md) lie directly in results/, beside folders that are not part of the set (runs/,
samples/, ...), at the paths the READMEs and the repository link to. POSIX renames one path at
a time: swapping a folder would change those paths (or need symlinks in git), and renaming the
files one by one is not atomic as a set. So the set is published like a journal entry:

1. Stage: every file is written into ``out_dir/.reports-staging.<pid>.<random>/`` (same file
   system, so renames are cheap). A kill here leaves the old set untouched and a staging folder
   that the next build deletes, its pid being dead.
2. Commit: the staged files are flushed to disk, then the marker ``.reports-swap-in-progress``
   is written atomically, naming the staging folder and each file with its SHA-256. From this
   moment the new set is decided.
3. Swap (milliseconds): each staged file is renamed onto its final path, then the marker and
   the staging folder are removed.

A kill during the swap leaves the marker, and ``finish_interrupted_swap`` (run at the start of
every build, and by any reader that needs a consistent set) renames the files still staged,
checks every file against its recorded SHA-256 and removes the marker. So without a marker the
folder holds the complete old or the complete new set, and with one, finishing it gives the
complete new set. Swaps into one folder take an exclusive ``flock`` on the folder itself (no
lock file to leave behind), so two builds never interleave their swaps.

Only the out folder's set is covered: the project README's results block is rewritten from
the swapped-in table2.md afterwards, and a kill in between leaves it one build behind until
the next build.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gru_repro.atomic import (
    atomic_write_text,
    fsync_path,
    process_is_alive,
    remove_stale_temp_files,
)

log = logging.getLogger(__name__)

SWAP_MARKER = ".reports-swap-in-progress"
STAGING_PREFIX = ".reports-staging."
_STAGING_NAME = re.compile(r"^\.reports-staging\.(?P<pid>[0-9]+)\.[A-Za-z0-9_]+$")
_PLAIN_NAME = re.compile(r"^[^./][^/]*$")  # a visible file name, no folder part


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive flock on `folder` itself; released on exit or when the process dies."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_marker(out_dir: Path) -> dict | None:
    """The swap record left by a build, or None when no swap is in progress."""
    marker = out_dir / SWAP_MARKER
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
        valid = (
            isinstance(record, dict)
            and bool(_STAGING_NAME.match(str(record.get("staging", ""))))
            and isinstance(record.get("files"), dict)
            and all(_PLAIN_NAME.match(name) for name in record["files"])
        )
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        valid = False
    if not valid:
        raise ValueError(
            f"{marker}: not a report swap record (staging, files); it was not written by "
            "the report build: delete it and rebuild the reports"
        )
    return record


def _complete(out_dir: Path, record: dict) -> list[str]:
    """Rename the record's files still staged into `out_dir`; the names whose final file
    differs from the record (empty: the new set is complete, marker and staging removed)."""
    staging = out_dir / record["staging"]
    for name in record["files"]:
        staged = staging / name
        if staged.is_file():
            os.replace(staged, out_dir / name)
    fsync_path(out_dir)
    wrong = [
        name
        for name, digest in record["files"].items()
        if not (out_dir / name).is_file() or _sha256(out_dir / name) != digest
    ]
    if not wrong:
        (out_dir / SWAP_MARKER).unlink()
        shutil.rmtree(staging, ignore_errors=True)
    return wrong


def _finish_locked(out_dir: Path) -> bool:
    record = _read_marker(out_dir)
    if record is None:
        return False
    wrong = _complete(out_dir, record)
    if wrong:
        log.warning(
            "%s: a report swap was interrupted and its staged copies of %s are gone; the "
            "marker %s stays until a complete build replaces the set",
            out_dir,
            ", ".join(wrong),
            SWAP_MARKER,
        )
        return False
    log.warning(
        "%s: finished the report swap an interrupted build left (%s)",
        out_dir,
        ", ".join(record["files"]),
    )
    return True


def finish_interrupted_swap(out_dir: str | Path) -> bool:
    """Complete the swap a killed build left in `out_dir`; True when there was one to finish.

    Afterwards `out_dir` holds the complete new set of that build, unless its staged files were
    deleted by hand (then a warning names them and the marker stays).
    """
    out_dir = Path(out_dir)
    if not (out_dir / SWAP_MARKER).exists():
        return False
    with _folder_lock(out_dir):
        return _finish_locked(out_dir)


def _remove_stale_staging(out_dir: Path) -> None:
    """Delete staging folders of builds that no longer run (killed while staging), and temp
    files of dead writers (`gru_repro.atomic.remove_stale_temp_files`)."""
    remove_stale_temp_files(out_dir)
    for path in out_dir.iterdir():
        match = _STAGING_NAME.match(path.name)
        if match and path.is_dir() and not path.is_symlink():
            if not process_is_alive(int(match["pid"])):
                shutil.rmtree(path, ignore_errors=True)
                log.info("removed %s (its build, pid %s, no longer runs)", path, match["pid"])


def recover_report_folder(out_dir: str | Path) -> None:
    """What a build does first: finish an interrupted swap, then delete the staging folders and
    temp files that killed builds left in `out_dir` (those of live processes stay)."""
    out_dir = Path(out_dir)
    if out_dir.is_dir():
        with _folder_lock(out_dir):
            _finish_locked(out_dir)
            _remove_stale_staging(out_dir)


def _staged_files(staging: Path) -> dict[str, str]:
    """Name -> SHA-256 of the staged files, flushed to disk; only plain, visible files."""
    files = {}
    for path in sorted(staging.iterdir()):
        if path.name.startswith(".") or path.is_symlink() or not path.is_file():
            raise ValueError(f"{path}: a report set holds plain files only")
        fsync_path(path)
        files[path.name] = _sha256(path)
    fsync_path(staging)
    return files


@contextmanager
def staged_report_set(out_dir: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder inside `out_dir`; when the block ends normally, the files
    written there replace those of the same names in `out_dir` as one set (module docstring).

    Files of `out_dir` not in the new set are left alone. On an exception in the block the
    staging folder is deleted and `out_dir` is untouched. On entry, `recover_report_folder`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _folder_lock(out_dir):
        _finish_locked(out_dir)
        _remove_stale_staging(out_dir)
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}.", dir=out_dir))
    try:
        yield staging
        files = _staged_files(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    record = {"pid": os.getpid(), "staging": staging.name, "files": files}
    with _folder_lock(out_dir):
        atomic_write_text(out_dir / SWAP_MARKER, json.dumps(record, indent=2) + "\n", fsync=True)
        wrong = _complete(out_dir, record)
    if wrong:  # only if someone deleted the staged files mid-swap
        raise RuntimeError(f"{out_dir}: the swap of {', '.join(wrong)} did not complete")
