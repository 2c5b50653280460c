"""``cache="path"`` datasets (QA52 #5): a run killed in its first pass left TensorFlow's cache
lockfile, and every rerun failed with TensorFlow's AlreadyExistsError; a read-only or full
cache folder gave raw TensorFlow errors at the first batch. The cache is locked with a sciconv
lock that holds the pid: a dead writer's files are cleared, a live one is refused at build,
and the folder is checked when the dataset is built."""

from __future__ import annotations

import errno
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import namedtuple

import numpy as np
import pytest
from astropy.io import fits

from sciconv import datasets
from sciconv.errors import DatasetError, SciconvWarning, WriteError


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """2 classes of 4 16x16 FITS images."""
    root = tmp_path_factory.mktemp("classes")
    rng = np.random.default_rng(0)
    for c, name in enumerate(("a", "b")):
        (root / name).mkdir()
        for i in range(4):
            fits.writeto(root / name / f"g{i}.fits", rng.normal(c, 1, (16, 16)).astype("f4"))
    return root


def _build(folder, cache):
    return datasets.from_folder(folder, batch_size=3, seed=0, cache=cache)


def _batches(ds) -> list[np.ndarray]:
    return [np.asarray(x) for x, _ in ds]


@pytest.fixture(scope="module")
def complete(folder, tmp_path_factory):
    """A cache written to its end: its prefix name and the batches it gives."""
    where = tmp_path_factory.mktemp("complete")
    ds = _build(folder, where / "gal")
    batches = _batches(ds)
    del ds
    gc.collect()
    (index,) = [p.name for p in where.iterdir() if p.name.endswith(".index")]
    assert sorted(p.name for p in where.iterdir() if p.name.startswith(".")) == []  # released
    return where, index.removesuffix(".index"), batches


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _plant_killed_run(cache_dir, name):
    """What a run killed with SIGKILL in its first pass leaves (QA repro_5)."""
    (cache_dir / f"{name}_0.lockfile").write_text("Created at: 1796648000")
    (cache_dir / f"{name}_0.data-00000-of-00001.tempstate6622802261405897396").write_bytes(b"x")


@pytest.mark.parametrize("sciconv_lock", [True, False], ids=["dead-lock", "no-lock"])
def test_a_run_killed_in_its_first_pass_leaves_a_cache_the_next_run_writes(
    folder, complete, tmp_path, sciconv_lock
):
    _, name, expected = complete
    _plant_killed_run(tmp_path, name)
    if sciconv_lock:  # the killed run's sciconv lock (a pid no longer alive)
        lock = {"pid": _dead_pid(), "host": socket.gethostname(), "started": "2026-01-01T00:00"}
        (tmp_path / f".{name}.lock").write_text(json.dumps(lock))
        with pytest.warns(SciconvWarning, match="taking over the lock of a run that is no longer"):
            ds = _build(folder, tmp_path / "gal")
    else:  # killed by an older sciconv: TensorFlow's files only
        ds = _build(folder, tmp_path / "gal")
    got = _batches(ds)  # was: AlreadyExistsError "... cache lockfile already exists"
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f".{name}.lock",  # held while the dataset lives
        f"{name}.data-00000-of-00001",
        f"{name}.index",
    ]
    del ds
    gc.collect()
    assert not (tmp_path / f".{name}.lock").exists()  # released with the dataset


def test_a_cache_a_live_process_writes_is_refused_at_build(folder, complete, tmp_path):
    _, name, _ = complete
    _plant_killed_run(tmp_path, name)
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.1)
        started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        lock = {"pid": writer.pid, "host": socket.gethostname(), "started": started}
        (tmp_path / f".{name}.lock").write_text(json.dumps(lock))
        with pytest.raises(DatasetError) as info:
            _build(folder, tmp_path / "gal")
    finally:
        writer.kill()
        writer.wait()
    message = str(info.value)
    assert message.startswith(f"{tmp_path / name}: cache is in use by a run in progress")
    assert f"(pid {writer.pid} on " in message and "another cache= path, or cache=False" in message
    # the live writer's files are left alone
    assert (tmp_path / f"{name}_0.lockfile").exists() and (tmp_path / f".{name}.lock").exists()


def test_two_datasets_of_one_process_share_the_cache_lock(folder, tmp_path):
    first = _build(folder, tmp_path / "gal")
    again = _build(folder, tmp_path / "gal")  # a notebook cell run again: not refused
    assert len(_batches(again)) == len(_batches(first)) == 3
    (lock,) = [p for p in tmp_path.iterdir() if p.name.endswith(".lock")]
    del first
    gc.collect()
    assert lock.exists()  # still held for the other dataset
    del again
    gc.collect()
    assert not lock.exists()


def _refuse_writes_in(folder, monkeypatch):
    """Make ``folder`` refuse new files: read-only permissions, or (root ignores them) a
    read-only file system's EROFS from every file created in it."""
    os.chmod(folder, 0o555)
    if not os.access(folder, os.W_OK):
        return
    real = os.open

    def read_only(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and os.path.dirname(os.path.abspath(path)) == str(folder):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)


def test_a_read_only_cache_folder_is_a_write_error_at_build(folder, tmp_path, monkeypatch):
    cache_dir = tmp_path / "ro"
    cache_dir.mkdir()
    try:
        _refuse_writes_in(cache_dir, monkeypatch)
        with pytest.raises(WriteError) as info:
            _build(folder, cache_dir / "gal")  # was: PermissionDeniedError at the first batch
    finally:
        os.chmod(cache_dir, 0o755)
    message = str(info.value)
    assert message.startswith(f"{cache_dir}{os.sep}gal.")
    assert f"cannot write the cache file in {cache_dir} (" in message
    assert "pass cache= a path in a writable folder, or cache=False" in message
    assert sorted(os.listdir(cache_dir)) == []


def test_a_complete_cache_in_a_read_only_folder_is_read(folder, complete, monkeypatch):
    where, _, expected = complete
    before = sorted(p.name for p in where.iterdir())
    try:
        _refuse_writes_in(where, monkeypatch)
        got = _batches(_build(folder, where / "gal"))
    finally:
        os.chmod(where, 0o755)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in where.iterdir()) == before


def test_a_full_cache_folder_is_a_write_error_at_build(folder, tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(WriteError) as info:
        _build(folder, tmp_path / "gal")  # was: ResourceExhaustedError at the first batch
    message = str(info.value)
    assert message.startswith(f"{tmp_path}{os.sep}gal.")
    # 8 images of 16 x 16 x 1 float32
    assert f"needs at least 8192 bytes (the images as float32) and its folder {tmp_path} has " in (
        message
    )
    assert "1000 bytes free" in message
    assert sorted(os.listdir(tmp_path)) == []  # the lock went with the refusal
