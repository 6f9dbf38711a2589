"""gru_repro.atomic: the one temp-file-and-rename writer every module uses."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from gru_repro.atomic import atomic_path, atomic_torch_save, atomic_write_bytes, atomic_write_text


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
        assert tmp.name.startswith(".roll.png.") and tmp.suffix == ".png"
        tmp.write_bytes(b"png")
    with atomic_path(tmp_path / "x.mat", suffix=".part", fsync=True) as tmp:
        assert tmp.name.endswith(".part")
        tmp.write_bytes(b"mat")
    assert (tmp_path / "roll.png").read_bytes() == b"png"
    assert (tmp_path / "x.mat").read_bytes() == b"mat"
