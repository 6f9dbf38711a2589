"""FSDD fetch: shipped checksums, mirror copy, archive path, cached verification, bad copies."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from gru_repro.data import fetch, speech_fsdd
from gru_repro.data.errors import ChecksumError
from gru_repro.data.speech_fsdd import (
    FSDD_COMMIT,
    expected_sha256,
    fetch_fsdd,
    install_from_archive,
    load_fsdd_waveforms,
)

SUBSET = ["0_george_0.wav", "3_jackson_12.wav", "9_yweweler_49.wav", "5_theo_7.wav"]


@pytest.fixture
def few(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Pretend the data set is four recordings, so that these tests copy little."""
    sums = {name: expected_sha256()[name] for name in SUBSET}
    monkeypatch.setattr(speech_fsdd, "expected_sha256", lambda: dict(sums))
    return sums


def test_shipped_checksums_match_the_mirror(data_mirror: Path) -> None:
    shipped = expected_sha256()
    assert len(shipped) == 3000
    mirror_sums = {}
    for line in (data_mirror / "fsdd" / "SHA256SUMS").read_text().splitlines():
        digest, relpath = line.split()
        mirror_sums[Path(relpath).name] = digest
    assert shipped == mirror_sums


def test_mirror_copy_is_verified_once_then_cached(
    tmp_path: Path, data_mirror: Path, few: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = fetch_fsdd(tmp_path, data_mirror)
    assert sorted(p.name for p in folder.iterdir()) == sorted(few)
    waves = load_fsdd_waveforms(tmp_path, data_mirror)
    assert set(waves) == set(few) and (tmp_path / "fsdd" / "waveforms.npz").is_file()

    def no_hashing(*args, **kwargs):
        raise AssertionError("re-hashed although nothing changed")

    monkeypatch.setattr(fetch, "sha256_of", no_hashing)
    monkeypatch.setattr(speech_fsdd, "fetch_file", no_hashing)
    assert fetch_fsdd(tmp_path, None) == folder  # the stamp is enough, even without a mirror
    again = load_fsdd_waveforms(tmp_path, None)
    assert all((again[n] == waves[n]).all() for n in few)


def test_altered_recording_is_caught_and_moved_aside(
    tmp_path: Path, data_mirror: Path, few: dict[str, str]
) -> None:
    folder = fetch_fsdd(tmp_path, data_mirror)
    victim = folder / SUBSET[1]
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=SUBSET[1]):
        fetch_fsdd(tmp_path, data_mirror)
    assert (folder / (SUBSET[1] + ".corrupt")).exists()
    fetch_fsdd(tmp_path, data_mirror)  # a fresh copy from the mirror
    assert fetch.sha256_of(victim) == few[SUBSET[1]]


def _archive(tmp_path: Path, data_mirror: Path, alter: str | None = None) -> Path:
    path = tmp_path / "archive.tar.gz"
    prefix = f"free-spoken-digit-dataset-{FSDD_COMMIT}"
    with tarfile.open(path, "w:gz") as tar:
        readme = tarfile.TarInfo(f"{prefix}/README.md")
        readme.size = 5
        tar.addfile(readme, io.BytesIO(b"hello"))
        for name in SUBSET:
            data = (data_mirror / "fsdd" / "recordings" / name).read_bytes()
            if name == alter:
                data = data[:-10]
            info = tarfile.TarInfo(f"{prefix}/recordings/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_archive_members_are_verified(tmp_path: Path, data_mirror: Path, few) -> None:
    good = _archive(tmp_path, data_mirror)
    out = tmp_path / "out"
    install_from_archive(good, out, few)
    assert {name: fetch.sha256_of(out / name) for name in SUBSET} == few

    bad = _archive(tmp_path, data_mirror, alter=SUBSET[2])
    out_bad = tmp_path / "out_bad"
    with pytest.raises(ChecksumError, match=SUBSET[2]):
        install_from_archive(bad, out_bad, few)
    assert not (out_bad / SUBSET[2]).exists()  # never written
    assert not [p for p in out_bad.iterdir() if p.name.startswith(".")]  # no temp files left


def test_without_mirror_the_pinned_archive_is_used(
    tmp_path: Path, data_mirror: Path, few, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATA_MIRROR", raising=False)
    target = tmp_path / "data" / "fsdd" / f"fsdd-{FSDD_COMMIT[:12]}.tar.gz"
    target.parent.mkdir(parents=True)
    os.replace(_archive(tmp_path, data_mirror), target)  # as if already downloaded
    folder = fetch_fsdd(tmp_path / "data", None)
    assert sorted(p.name for p in folder.iterdir()) == sorted(few)
    assert not target.exists()  # the archive is removed once its recordings are in place
