"""gru_repro.atomic: the one temp-file-and-rename writer every module uses."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gru_repro.atomic import (
    TEMP_NAME,
    atomic_path,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_text,
    process_is_alive,
    remove_stale_temp_files,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_helpers_write_content_with_normal_permissions(tmp_path: Path, umask_022) -> None:
    text = atomic_write_text(tmp_path / "deep" / "a.md", "héllo\n")
    data = atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    ckpt = atomic_torch_save({"w": torch.arange(3)}, tmp_path / "c.pt")
    assert text.read_text(encoding="utf-8") == "héllo\n"  # parent folder created
    assert data.read_bytes() == b"\x00\x01"
    assert torch.equal(torch.load(ckpt, weights_only=True)["w"], torch.arange(3))
    for path in (text, data, ckpt):
        assert _mode(path) == 0o644, path  # 0o666 & ~umask, not mkstemp's 0o600
    assert sorted(p.name for p in tmp_path.rglob(".*")) == []  # no temp files left


def test_permissions_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        path = atomic_write_text(tmp_path / "private.txt", "x")
    finally:
        os.umask(old)
    assert _mode(path) == 0o600


def test_overwrite_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    atomic_write_text(target, "a much longer first version\n")
    atomic_write_text(target, "short\n")
    assert target.read_text() == "short\n"


def test_failure_keeps_old_file_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "curves.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            assert tmp.parent == target.parent and tmp != target
            raise RuntimeError("boom")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.csv"]


def test_temp_name_keeps_extension_or_takes_suffix(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "roll.png") as tmp:
        assert tmp.name.startswith(f".roll.png.{os.getpid()}.") and tmp.suffix == ".png"
        assert tmp.name.endswith(".tmp.png")
        tmp.write_bytes(b"png")
    with atomic_path(tmp_path / "x.mat", suffix=".part", fsync=True) as tmp:
        assert tmp.name.startswith(f".x.mat.{os.getpid()}.") and tmp.name.endswith(".tmp.part")
        tmp.write_bytes(b"mat")
    assert (tmp_path / "roll.png").read_bytes() == b"png"
    assert (tmp_path / "x.mat").read_bytes() == b"mat"


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_is_alive(child.pid)
    return child.pid


@pytest.mark.subprocess
def test_stale_temp_files_of_dead_writers_are_removed_the_rest_kept(tmp_path: Path) -> None:
    dead, live = _dead_pid(), os.getpid()
    stale = [
        f".figure3.png.{dead}.a1b2c3d4.tmp.png",
        f".curves.csv.{dead}.x_y2z3a4.tmp.csv",
        f".last.pt.{dead}.abcd1234.tmp.pt",
        f".x.mat.{dead}.abcd1234.tmp.part",
        f".Makefile.{dead}.abcd1234.tmp",
        ".figure3.png.a1b2c3d4.tmp.png",  # the naming scheme before the pid, hours old
        ".x.mat.abcd1234.part",
    ]
    kept = [
        f".last.pt.{live}.abcd1234.tmp.pt",  # this process: alive
        ".curves.csv.a1b2c3d4.tmp.csv",  # no pid, but recent: its writer may still run
        "figure3.png",
        f"figure3.png.{dead}.a1b2c3d4.tmp.png",  # not hidden: not a temp file of ours
        ".gitignore",
        f".notes.{dead}.txt",
    ]
    for name in stale + kept:
        (tmp_path / name).write_text(name)
    two_hours_ago = time.time() - 7200
    for name in (".figure3.png.a1b2c3d4.tmp.png", ".x.mat.abcd1234.part"):
        os.utime(tmp_path / name, (two_hours_ago, two_hours_ago))
    (tmp_path / f".dir.{dead}.abcd1234.tmp").mkdir()  # folders are never removed
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / f".metrics.json.{dead}.abcd1234.tmp.json").write_text("{")

    removed = remove_stale_temp_files(tmp_path)
    assert sorted(p.name for p in removed) == sorted(stale)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(kept + [f".dir.{dead}.abcd1234.tmp", "sub"])
    assert (tmp_path / "sub" / f".metrics.json.{dead}.abcd1234.tmp.json").exists()
    assert remove_stale_temp_files(tmp_path, recursive=True) == [
        tmp_path / "sub" / f".metrics.json.{dead}.abcd1234.tmp.json"
    ]
    assert remove_stale_temp_files(tmp_path / "absent") == []


@pytest.mark.subprocess
def test_temp_file_of_a_killed_writer_is_removed_one_being_written_kept(tmp_path: Path) -> None:
    killer = (
        "import os, signal, sys\n"
        "from gru_repro.atomic import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_text('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    child = subprocess.run([sys.executable, "-c", killer, str(tmp_path / "curves.csv")])
    assert child.returncode == -signal.SIGKILL
    (debris,) = tmp_path.iterdir()  # the kill left the temp file, named for the dead writer
    assert TEMP_NAME.match(debris.name)["pid"] != str(os.getpid())
    with atomic_path(tmp_path / "curves.csv") as tmp:
        tmp.write_text("new")
        assert remove_stale_temp_files(tmp_path) == [debris]  # ours is in use: kept
        assert tmp.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["curves.csv"]
