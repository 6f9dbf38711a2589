"""Fetching: mirror then URL, SHA-256 checks, atomic writes, clear errors, the CLI."""

from __future__ import annotations

import io
import urllib.request

import pytest

from gru_repro.data import ChecksumError, FetchError, load_splits
from gru_repro.data import fetch as fetch_module
from gru_repro.data.fetch import MANIFEST, RemoteFile, fetch_file, main, resolve_mirror, sha256_of

UNREACHABLE = "http://127.0.0.1:9/"  # discard port: connection refused at once, no network used
JSB = MANIFEST["jsb"]


@pytest.fixture
def no_env_mirror(monkeypatch):
    monkeypatch.delenv("DATA_MIRROR", raising=False)


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*.part"))


def test_manifest_matches_mirror_checksums(data_mirror):
    sums = dict(
        reversed(line.split())
        for line in (data_mirror / "poly" / "SHA256SUMS").read_text().splitlines()
    )
    for name in ("jsb", "nottingham", "musedata", "piano_midi"):
        entry = MANIFEST[name]
        assert sums[entry.relpath.removeprefix("poly/")] == entry.sha256
        assert (data_mirror / entry.relpath).stat().st_size == entry.size


def test_mirror_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_MIRROR", str(tmp_path / "env"))
    assert resolve_mirror(None) == tmp_path / "env"
    assert resolve_mirror("") == tmp_path / "env"  # empty config key: fall back to the env
    assert resolve_mirror(tmp_path / "arg") == tmp_path / "arg"  # explicit beats env
    monkeypatch.setenv("DATA_MIRROR", "")
    assert resolve_mirror("") is None


def test_copy_from_mirror_then_verified_local(tmp_path, data_mirror, no_env_mirror):
    path = fetch_file(JSB.relpath, UNREACHABLE, JSB.sha256, data_dir=tmp_path, mirror=data_mirror)
    assert path == tmp_path / JSB.relpath and sha256_of(path) == JSB.sha256
    # Second call: the verified local copy is used; no mirror and no network needed.
    assert fetch_file(JSB.relpath, UNREACHABLE, JSB.sha256, data_dir=tmp_path, mirror=None) == path
    assert leftovers(tmp_path) == []


def test_truncated_mirror_file_is_refused_and_not_copied(tmp_path, data_mirror, no_env_mirror):
    mirror = tmp_path / "mirror"
    (mirror / "poly").mkdir(parents=True)
    bad = mirror / JSB.relpath
    bad.write_bytes((data_mirror / JSB.relpath).read_bytes()[:50_000])
    with pytest.raises(ChecksumError) as err:
        load_splits("jsb", data_dir=tmp_path / "data", mirror=mirror)
    message = str(err.value)
    assert str(bad) in message and JSB.sha256 in message and sha256_of(bad) in message
    assert "\n" not in message
    assert not (tmp_path / "data" / JSB.relpath).exists()
    assert leftovers(tmp_path) == []


def test_altered_local_file_is_moved_aside_and_good_files_untouched(
    tmp_path, data_mirror, no_env_mirror
):
    data = tmp_path / "data"
    load_splits("jsb", data_dir=data, mirror=data_mirror)
    load_splits("piano_midi", data_dir=data, mirror=data_mirror)
    good = data / MANIFEST["piano_midi"].relpath
    good_stat = good.stat()
    target = data / JSB.relpath
    raw = bytearray(target.read_bytes())
    raw[1000] ^= 0xFF  # one flipped byte
    target.write_bytes(bytes(raw))
    altered_sha = sha256_of(target)

    with pytest.raises(ChecksumError) as err:
        load_splits("jsb", data_dir=data, mirror=data_mirror)
    message = str(err.value)
    assert str(target) in message and JSB.sha256 in message and altered_sha in message
    assert "make data" in message  # says what to do
    assert not target.exists()
    assert sha256_of(target.with_name(target.name + ".corrupt")) == altered_sha
    assert good.stat().st_mtime_ns == good_stat.st_mtime_ns
    assert sha256_of(good) == MANIFEST["piano_midi"].sha256
    # The next load fetches a fresh copy from the mirror.
    assert len(load_splits("jsb", data_dir=data, mirror=data_mirror).train) == 229


def test_no_network_and_no_mirror_names_files_urls_and_setting(tmp_path, no_env_mirror):
    url = UNREACHABLE + "JSB_Chorales.mat"
    with pytest.raises(FetchError) as err:
        fetch_file(JSB.relpath, url, JSB.sha256, data_dir=tmp_path, mirror=None)
    message = str(err.value)
    for needed in (JSB.relpath, url, "no mirror is set", "DATA_MIRROR", "--mirror"):
        assert needed in message
    assert not (tmp_path / JSB.relpath).exists() and leftovers(tmp_path) == []


def test_load_splits_offline_with_empty_mirror_setting(tmp_path, monkeypatch, no_env_mirror):
    monkeypatch.setitem(MANIFEST, "jsb", RemoteFile(JSB.relpath, UNREACHABLE + "x.mat", JSB.sha256))
    with pytest.raises(FetchError, match=r"poly/JSB_Chorales\.mat.*127\.0\.0\.1:9/x\.mat"):
        load_splits("jsb", data_dir=tmp_path, mirror="")


def test_mirror_without_the_file_falls_back_to_url(tmp_path, no_env_mirror):
    with pytest.raises(FetchError, match="has no poly/JSB_Chorales.mat"):
        fetch_file(JSB.relpath, UNREACHABLE, JSB.sha256, data_dir=tmp_path, mirror=tmp_path)


def test_download_verifies_and_writes_atomically(tmp_path, data_mirror, no_env_mirror):
    url = (data_mirror / JSB.relpath).as_uri()  # urllib reads file:// like a download
    path = fetch_file(JSB.relpath, url, JSB.sha256, data_dir=tmp_path / "a", mirror=None)
    assert sha256_of(path) == JSB.sha256
    with pytest.raises(ChecksumError, match=f"download of {url}.*expected {'0' * 64}"):
        fetch_file(JSB.relpath, url, "0" * 64, data_dir=tmp_path / "b", mirror=None)
    assert not (tmp_path / "b" / JSB.relpath).exists() and leftovers(tmp_path) == []


class _DroppingResponse(io.BytesIO):
    """A response that delivers some bytes, then fails like a dropped connection."""

    headers = {"Content-Length": "96095"}

    def read(self, size=-1):
        if self.tell() >= 4096:
            raise self.error
        return super().read(min(size, 4096))


@pytest.mark.parametrize("error", [ConnectionResetError("reset by peer"), KeyboardInterrupt()])
def test_interrupted_download_leaves_no_file(tmp_path, monkeypatch, no_env_mirror, error):
    response = _DroppingResponse(b"x" * 96095)
    response.error = error
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: response)
    with pytest.raises((FetchError, KeyboardInterrupt)):
        fetch_file(JSB.relpath, "https://example.invalid/JSB.mat", JSB.sha256, data_dir=tmp_path)
    assert not (tmp_path / JSB.relpath).exists()
    assert leftovers(tmp_path) == []


def test_cli_fetches_verifies_and_caches(tmp_path, data_mirror, capsys, no_env_mirror):
    code = main(["--dataset", "jsb", "--data-dir", str(tmp_path), "--mirror", str(data_mirror)])
    out = capsys.readouterr().out
    assert code == 0
    assert "jsb: verified" in out and "229/76/77 sequences" in out
    assert (tmp_path / JSB.relpath).is_file() and list((tmp_path / "cache").glob("jsb-*.npz"))


def test_cli_reports_failures_with_exit_code(tmp_path, capsys, monkeypatch, no_env_mirror):
    monkeypatch.setitem(MANIFEST, "jsb", RemoteFile(JSB.relpath, UNREACHABLE + "j.mat", JSB.sha256))
    assert main(["--dataset", "jsb", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "FAILED jsb" in err and "127.0.0.1:9/j.mat" in err


def test_cli_all_covers_music_and_speech():
    assert set(fetch_module.ALL) == {"jsb", "nottingham", "musedata", "piano_midi", "fsdd"}


def test_unknown_fetchable_name_lists_valid_names(tmp_path):
    with pytest.raises(ValueError, match="valid names: fsdd, jsb, jsb_pickle"):
        fetch_module.fetch_dataset("jsb_chorales", data_dir=tmp_path)
