"""A downloaded archive unpacked once, safely when jobs do it at once (QA: three jobs loading
DSB2018 together kept a short copy, 345-399 of 400 images, as complete), and read-only caches."""

from __future__ import annotations

import io
import os
import tempfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

import sciconv._unpack as unpack_mod
import sciconv.fetch as fetch_mod
from sciconv.errors import ConfigError, DownloadError, SciconvWarning, WriteError
from sciconv.fetch import cache_dir, load


def _zip(path: Path, n: int = 300) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for k in range(n):
            zf.writestr(f"set/{k:04d}.txt", str(k) * 50)
    return path


def test_jobs_unpacking_at_once_each_get_every_member(tmp_path):
    archive = _zip(tmp_path / "set.zip")
    results, errors = [], []
    start = threading.Barrier(4)

    def job():
        start.wait()
        try:
            results.append(unpack_mod.unpack_once(archive, stamp="v1", what="it"))
        except Exception as err:  # pragma: no cover - the failure being tested
            errors.append(err)

    threads = [threading.Thread(target=job) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and {r for r in results} == {(tmp_path / "set", False)}
    assert len(list((tmp_path / "set" / "set").iterdir())) == 300
    assert (tmp_path / "set" / ".complete").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set", "set.zip"]  # no scratch left


def test_a_folder_another_job_renamed_first_is_taken(tmp_path, monkeypatch):
    archive = _zip(tmp_path / "set.zip", n=5)
    real = unpack_mod.extract_checked

    def slower_than_another_job(file, scratch, **kwargs):
        real(file, tmp_path / "theirs", **kwargs)
        (tmp_path / "theirs" / ".complete").write_text("v1")
        os.rename(tmp_path / "theirs", tmp_path / "set")  # the other job's rename lands first
        real(file, scratch, **kwargs)

    monkeypatch.setattr(unpack_mod, "extract_checked", slower_than_another_job)
    folder, temporary = unpack_mod.unpack_once(archive, stamp="v1", what="it")
    assert folder == tmp_path / "set" and not temporary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set", "set.zip"]


@pytest.mark.parametrize("stamp", ["ok\n", "v0"])  # an older sciconv's stamp; another archive
def test_a_folder_from_another_or_an_interrupted_unpacking_is_unpacked_again(tmp_path, stamp):
    archive = _zip(tmp_path / "set.zip", n=20)
    (tmp_path / "set" / "set").mkdir(parents=True)
    (tmp_path / "set" / "set" / "0000.txt").write_text("short")  # 1 of 20, marked complete
    (tmp_path / "set" / ".complete").write_text(stamp)
    folder, _ = unpack_mod.unpack_once(archive, stamp="v1", what="it")
    assert len(list((folder / "set").iterdir())) == 20
    assert (folder / "set" / "0000.txt").read_text() == "0" * 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set", "set.zip"]


def test_a_member_missing_after_unpacking_keeps_nothing(tmp_path, monkeypatch):
    archive = _zip(tmp_path / "set.zip", n=10)
    real = zipfile.ZipFile.extractall

    def loses_one(self, path=None, members=None, pwd=None):
        real(self, path, members, pwd)
        (Path(path) / "set" / "0003.txt").unlink()  # another process deleted it (the old race)

    monkeypatch.setattr(zipfile.ZipFile, "extractall", loses_one)
    with pytest.raises(DownloadError, match=r"left out 1 of 10 members \(e\.g\. set/0003\.txt\)"):
        unpack_mod.unpack_once(archive, stamp="v1", what="it")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set.zip"]


def _png(array) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _dsb_zip(path: Path) -> None:
    img = np.zeros((12, 12), np.uint8)
    img[2:6, 2:6] = 200
    mask = (img > 0).astype(np.uint8) * 255
    with zipfile.ZipFile(path, "w") as zf:
        for name in ("aaaa", "bbbb"):
            zf.writestr(f"{name}/images/{name}.png", _png(img))
            zf.writestr(f"{name}/masks/m1.png", _png(mask))


def test_a_read_only_cache_loads_from_a_temporary_unpacking(tmp_path, monkeypatch):
    # QA: a zip placed by hand in a read-only SCICONV_DATA_DIR failed "cannot check the cached
    # file (Permission denied)" (its checksum record); not yet unpacked: "cannot unpack ...;
    # delete it and fetch it again". Root ignores permission bits: the refusals are simulated.
    cache = tmp_path / "shared"
    cache.mkdir()
    _dsb_zip(cache / fetch_mod.REGISTRY["dsb2018"]["fname"])
    record = cache / f".{fetch_mod.REGISTRY['dsb2018']['fname']}.sha256"
    record.mkdir()  # the record cannot be written

    def read_only(path):
        raise WriteError("cannot write (Permission denied)", path=path)

    monkeypatch.setattr(unpack_mod, "scratch_folder", read_only)
    before = set(Path(tempfile.gettempdir()).glob("sciconv-dsb2018_stage1_train-*"))
    with pytest.warns(SciconvWarning, match=r"shared cannot be written .*temporary folder"):
        _, labels, ids = load("dsb2018", cache=cache, progress=False)
    assert ids == ["aaaa", "bbbb"] and int(labels[0].max()) == 1
    assert set(Path(tempfile.gettempdir()).glob("sciconv-dsb2018_stage1_train-*")) == before
    assert not (cache / "dsb2018_stage1_train").exists()  # nothing unpacked in the cache


def test_no_home_directory_names_the_variable_to_set(monkeypatch):
    import pooch

    def no_home(name):
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv(fetch_mod.ENV_VAR, raising=False)
    monkeypatch.setattr(pooch, "os_cache", no_home)
    with pytest.raises(ConfigError, match=r"home directory is unknown .*set SCICONV_DATA_DIR"):
        cache_dir()


def test_an_unwritable_cache_is_not_blamed_on_the_network(tmp_path, monkeypatch):
    import pooch

    def refused(self, fname, **kwargs):
        raise PermissionError(f"Pooch could not write to data cache folder '{tmp_path}'.")

    monkeypatch.setattr(pooch.Pooch, "fetch", refused)
    with pytest.raises(DownloadError, match=r"cannot write into the cache folder .*writable") as e:
        fetch_mod.fetch("galaxy10", cache=tmp_path / "c", progress=False)
    assert "no internet" not in str(e.value)


def test_the_stamp_is_the_recorded_checksum_and_killed_unpackings_are_cleared(tmp_path):
    # review: a cache copied without its times was unpacked again at every load (the stamp was
    # size + mtime); a killed unpacking's ".stale" folder stayed for good
    cache = tmp_path / "c"
    cache.mkdir()
    archive = cache / fetch_mod.REGISTRY["dsb2018"]["fname"]
    _dsb_zip(archive)
    load("dsb2018", cache=cache, progress=False)
    folder = archive.with_suffix("")
    stamp = (folder / ".complete").read_text()
    assert stamp == (cache / f".{archive.name}.sha256").read_text()
    os.utime(archive, (1, 1))  # copied without its times: the same archive
    (cache / f".{folder.name}.99999999.stale").mkdir()  # a pid that no longer runs
    load("dsb2018", cache=cache, progress=False)
    assert (folder / ".complete").read_text() == stamp
    assert not (cache / f".{folder.name}.99999999.stale").exists()
