"""The Free Spoken Digit Dataset: fetch, verify (SHA-256 of all 3,000 recordings), cache.

Sources, in order: `<mirror>/fsdd/recordings/` (each file copied through `fetch_file`, which
verifies it and writes atomically), else the pinned GitHub archive, downloaded to a temporary
file and read member by member (never extracted blindly): only `*/recordings/<name>.wav` members
whose name and SHA-256 are in the shipped `fsdd_sha256sums.txt` are written.

Verification is cached: once all 3,000 files have matched their checksums, a stamp
`<data_dir>/fsdd/recordings.verified.json` records each file's size and mtime; later calls
re-hash only when one of those changed. The decoded waveforms are cached too, as one float32
array in `<data_dir>/fsdd/waveforms.npz` keyed by the stamp, so that loading takes well under a
second. Every file is written atomically (`gru_repro.atomic`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import tarfile
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

import numpy as np
import soundfile as sf

from gru_repro.atomic import atomic_path, atomic_write_bytes
from gru_repro.data.errors import ChecksumError, FetchError
from gru_repro.data.fetch import CHUNK_BYTES, fetch_file, resolve_mirror

logger = logging.getLogger(__name__)

FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
FSDD_REPO = "https://github.com/Jakobovski/free-spoken-digit-dataset"
FSDD_ARCHIVE_URL = f"{FSDD_REPO}/archive/{FSDD_COMMIT}.tar.gz"
FSDD_FILE_URL = (
    "https://raw.githubusercontent.com/Jakobovski/free-spoken-digit-dataset/"
    f"{FSDD_COMMIT}/recordings/{{name}}"
)
FSDD_SAMPLE_RATE = 8000  # Hz, every recording
FSDD_SUBDIR = "fsdd"
_STAMP = "recordings.verified.json"
_CACHE = "waveforms.npz"


def expected_sha256() -> dict[str, str]:
    """{file name: SHA-256} of the 3,000 recordings, from the shipped fsdd_sha256sums.txt."""
    text = resources.files("gru_repro.data").joinpath("fsdd_sha256sums.txt").read_text()
    sums = {}
    for line in text.splitlines():
        if line.strip():
            digest, relpath = line.split(maxsplit=1)
            sums[Path(relpath.strip()).name] = digest
    return sums


def _stat_table(folder: Path, names: list[str]) -> dict[str, list[int]] | None:
    table = {}
    for name in names:
        try:
            stat = (folder / name).stat()
        except FileNotFoundError:
            return None
        table[name] = [stat.st_size, stat.st_mtime_ns]
    return table


def _stamp_is_current(folder: Path, expected: dict[str, str]) -> bool:
    stamp = folder.parent / _STAMP
    if not stamp.is_file():
        return False
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    current = _stat_table(folder, sorted(expected))
    return recorded.get("sha256") == expected and recorded.get("files") == current


def _write_stamp(folder: Path, expected: dict[str, str]) -> None:
    files = _stat_table(folder, sorted(expected))
    payload = json.dumps({"commit": FSDD_COMMIT, "sha256": expected, "files": files}).encode()
    atomic_write_bytes(folder.parent / _STAMP, payload)


def _install_from_mirror(mirror: Path, data_dir: Path, expected: dict[str, str]) -> None:
    for name, digest in sorted(expected.items()):
        fetch_file(
            f"{FSDD_SUBDIR}/recordings/{name}",
            FSDD_FILE_URL.format(name=name),
            digest,
            data_dir=data_dir,
            mirror=mirror,
        )


def install_from_archive(archive: Path, folder: Path, expected: dict[str, str]) -> None:
    """Write each expected recording found in a .tar.gz into `folder`, verified, atomically.

    Raises ChecksumError for a member whose SHA-256 differs (that file is not written) and
    FetchError when recordings are missing from the archive.
    """
    folder.mkdir(parents=True, exist_ok=True)
    found = set()
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            parts = Path(member.name).parts
            name = parts[-1] if parts else ""
            if not member.isfile() or len(parts) < 2 or parts[-2] != "recordings":
                continue
            if name not in expected:
                continue
            data = tar.extractfile(member).read()
            actual = hashlib.sha256(data).hexdigest()
            if actual != expected[name]:
                raise ChecksumError(
                    f"{archive}: member {member.name} has SHA-256 {actual}, expected "
                    f"{expected[name]}; the archive is damaged or not commit {FSDD_COMMIT}: "
                    "delete it and fetch again"
                )
            atomic_write_bytes(folder / name, data)
            found.add(name)
    missing = sorted(set(expected) - found)
    if missing:
        raise FetchError(
            f"{archive}: {len(missing)} recordings missing (e.g. {missing[0]}); it is not the "
            f"FSDD archive of commit {FSDD_COMMIT}: download {FSDD_ARCHIVE_URL} by hand"
        )


def _download_archive(data_dir: Path) -> Path:
    target = data_dir / FSDD_SUBDIR / f"fsdd-{FSDD_COMMIT[:12]}.tar.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s", FSDD_ARCHIVE_URL)
    try:
        with urllib.request.urlopen(FSDD_ARCHIVE_URL, timeout=60) as response:
            with atomic_path(target, suffix=".part") as tmp, open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, CHUNK_BYTES)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise FetchError(
            f"cannot fetch FSDD: no mirror with fsdd/recordings/ is set and downloading "
            f"{FSDD_ARCHIVE_URL} failed ({getattr(error, 'reason', error)}); download it by "
            f"hand to {target}, or set DATA_MIRROR to a data mirror folder (fsdd/recordings)"
        ) from error
    return target


def fetch_fsdd(data_dir: str | Path, mirror: str | Path | None = None) -> Path:
    """Make sure the 3,000 verified recordings are in `<data_dir>/fsdd/recordings/`; return it."""
    data_dir = Path(data_dir)
    folder = data_dir / FSDD_SUBDIR / "recordings"
    expected = expected_sha256()
    if _stamp_is_current(folder, expected):
        return folder
    mirror_dir = resolve_mirror(mirror)
    if mirror_dir is not None and (mirror_dir / FSDD_SUBDIR / "recordings").is_dir():
        logger.info("FSDD: verifying %d recordings from mirror %s", len(expected), mirror_dir)
        _install_from_mirror(mirror_dir, data_dir, expected)
    else:
        archive = data_dir / FSDD_SUBDIR / f"fsdd-{FSDD_COMMIT[:12]}.tar.gz"
        if not archive.is_file():
            archive = _download_archive(data_dir)
        install_from_archive(archive, folder, expected)
        archive.unlink()
    _write_stamp(folder, expected)
    logger.info("FSDD: %d recordings verified in %s", len(expected), folder)
    return folder


def load_fsdd_waveforms(
    data_dir: str | Path, mirror: str | Path | None = None
) -> dict[str, np.ndarray]:
    """{file name: float32 waveform (N,) in [-1, 1] at 8 kHz} for all 3,000 recordings."""
    folder = fetch_fsdd(data_dir, mirror)
    key = hashlib.sha256((folder.parent / _STAMP).read_bytes()).hexdigest()
    cache = folder.parent / _CACHE
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as npz:
                if str(npz["key"]) == key:
                    bounds = np.cumsum(npz["lengths"])[:-1]
                    waves = np.split(npz["samples"], bounds)
                    return dict(zip(npz["names"].tolist(), waves, strict=True))
        except (OSError, ValueError, KeyError):
            logger.warning("FSDD cache %s is unreadable; rebuilding it", cache)
    names = sorted(expected_sha256())
    waves = []
    for name in names:
        wave, rate = sf.read(str(folder / name), dtype="float32")
        if rate != FSDD_SAMPLE_RATE or wave.ndim != 1:
            raise ChecksumError(f"{folder / name}: expected mono {FSDD_SAMPLE_RATE} Hz audio")
        waves.append(wave)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        key=np.array(key),
        names=np.array(names),
        lengths=np.array([w.size for w in waves], dtype=np.int64),
        samples=np.concatenate(waves),
    )
    atomic_write_bytes(cache, buffer.getbuffer())
    return dict(zip(names, waves, strict=True))
