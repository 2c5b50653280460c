"""Ctrl-C during a store write leaves no hidden scratch store, even while the process lives.

QA: after Ctrl-C in ``write_ome_zarr``, ``atomic_store`` removed its scratch folder, but chunk
writes still in flight in zarr's I/O thread re-created it milliseconds later: a hidden full-size
``.NAME.PID.*.part`` store that ``remove_stale_partials`` spared because its pid (a notebook
kernel) was alive.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sciconv._atomic import atomic_store, remove_stale_partials
from sciconv.errors import WriteError


def _hidden(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


def _late_chunk_writes(folder: Path, count: int, done: list) -> None:
    """Zarr's I/O thread after the interrupt: each time the scratch is removed, one more chunk
    write lands in it (creating the folders on its way, as zarr's LocalStore does)."""
    deadline = time.monotonic() + 20
    for i in range(count):
        while os.path.lexists(folder) and time.monotonic() < deadline:
            time.sleep(0.002)  # until sciconv removed it
        time.sleep(0.01)
        while time.monotonic() < deadline:
            try:
                (folder / "0" / "c").mkdir(parents=True, exist_ok=True)
                (folder / "0" / "c" / str(i)).write_bytes(b"\0" * 4096)
                break
            except OSError:  # removed again while writing: the write is retried
                continue
        done.append(i)


def test_scratch_recreated_by_in_flight_chunk_writes_is_removed(tmp_path):
    target = tmp_path / "image.ome.zarr"
    done: list = []
    with pytest.raises(KeyboardInterrupt):
        with atomic_store(target) as tmp:
            (tmp / "0").mkdir(parents=True)
            (tmp / "zarr.json").write_text("{}")
            writer = threading.Thread(target=_late_chunk_writes, args=(tmp, 3, done))
            writer.start()
            raise KeyboardInterrupt
    writer.join(timeout=30)
    assert done == [0, 1, 2]  # every late write landed after a removal
    assert _hidden(tmp_path) == [] and not target.exists()


def _interrupted_store(target):
    """The scratch folder of an atomic_store write of ``target`` stopped by Ctrl-C."""
    with pytest.raises(KeyboardInterrupt):
        with atomic_store(target) as tmp:
            tmp.mkdir()
            raise KeyboardInterrupt
    return tmp


def test_scratch_written_after_the_wait_is_swept_though_this_process_lives(tmp_path):
    target = tmp_path / "image.ome.zarr"
    tmp = _interrupted_store(target)
    assert not tmp.exists()
    with atomic_store(tmp_path / "other.ome.zarr") as live:  # a live write of this process
        live.mkdir()
        (live / "zarr.json").write_text("{}")
        (tmp / "1" / "c").mkdir(parents=True)  # a chunk write landing later still
        (tmp / "1" / "c" / "0").write_bytes(b"\0" * 4096)
        # a sweep for any target removes the abandoned scratch, never the live one
        assert remove_stale_partials(tmp_path / "catalog.csv") == [tmp]
        assert remove_stale_partials(tmp_path / "other.ome.zarr") == []
        assert live.is_dir() and (live / "zarr.json").read_text() == "{}"
    assert _hidden(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["other.ome.zarr"]
    assert os.listdir(tmp_path / "other.ome.zarr") == ["zarr.json"]


def test_a_new_write_of_the_same_target_removes_the_abandoned_scratch(tmp_path):
    target = tmp_path / "image.ome.zarr"
    tmp = _interrupted_store(target)
    (tmp / "0").mkdir(parents=True)  # re-created after the wait
    with atomic_store(target) as new:
        new.mkdir()
        (new / "zarr.json").write_text("{}")
    assert _hidden(tmp_path) == [] and os.listdir(target) == ["zarr.json"]


def test_scratch_written_after_the_wait_is_removed_when_the_process_ends(tmp_path):
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from sciconv._atomic import atomic_store
        try:
            with atomic_store(Path({str(tmp_path / "a.ome.zarr")!r})) as tmp:
                tmp.mkdir()
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            pass
        (tmp / "0" / "c").mkdir(parents=True)  # a chunk write landing after the wait
        (tmp / "0" / "c" / "0").write_bytes(bytes(4096))
        print(tmp.name)
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().startswith(".a.ome.zarr.")
    assert _hidden(tmp_path) == [] and os.listdir(tmp_path) == []


def test_a_failed_overwrite_puts_the_old_store_back(tmp_path, monkeypatch):
    target = tmp_path / "image.ome.zarr"
    target.mkdir()
    (target / "zarr.json").write_text("old")
    real_rename = os.rename

    def rename(src, dst):
        if Path(dst) == target and not str(src).endswith(".old"):  # the new one cannot move in
            raise OSError(28, "No space left on device")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(WriteError, match=r"image\.ome\.zarr: cannot write \(No space left"):
        with atomic_store(target, overwrite=True) as tmp:
            tmp.mkdir()
            (tmp / "zarr.json").write_text("new")
    monkeypatch.undo()
    assert (target / "zarr.json").read_text() == "old"
    assert _hidden(tmp_path) == []


def test_write_ome_zarr_interrupted_with_chunk_writes_in_flight_leaves_nothing(
    tmp_path, monkeypatch
):
    pytest.importorskip("ome_zarr")
    import ome_zarr.writer

    import sciconv as sc

    image = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    # zarr and its codecs started (a session's first write pauses while they load)
    sc.io.write_ome_zarr(tmp_path / "warm" / "w.ome.zarr", image[:64, :64], levels=2)
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    real_write_image = ome_zarr.writer.write_image
    state: dict = {}

    def write_image(*args, **kwargs):
        """Ctrl-C while the pyramid is being written: zarr's I/O thread goes on writing every
        chunk of it (sync() leaves its coroutine running), here after sciconv removed the
        scratch store, as QA saw."""
        [scratch] = _hidden(tmp_path)

        def run():
            while os.path.lexists(tmp_path / scratch):
                time.sleep(0.001)
            try:
                real_write_image(*args, **kwargs)
                state["written"] = True
            except Exception as exc:  # the scratch vanishing under it again
                state["error"] = exc

        state["thread"] = threading.Thread(target=run, daemon=True)
        state["thread"].start()
        raise KeyboardInterrupt

    monkeypatch.setattr(ome_zarr.writer, "write_image", write_image)
    with pytest.raises(KeyboardInterrupt):
        sc.io.write_ome_zarr(tmp_path / "image.ome.zarr", image, levels=2)
    state["thread"].join(timeout=60)
    assert not state["thread"].is_alive() and ("written" in state or "error" in state)
    assert _hidden(tmp_path) == [] and os.listdir(tmp_path) == []

    monkeypatch.setattr(ome_zarr.writer, "write_image", real_write_image)
    sc.io.write_ome_zarr(tmp_path / "image.ome.zarr", image, levels=2)  # the rerun
    np.testing.assert_array_equal(sc.io.read(tmp_path / "image.ome.zarr").data[..., 0], image)
    assert _hidden(tmp_path) == []
