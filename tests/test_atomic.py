"""Nothing lost: io.write is atomic. A writer SIGKILLed mid-write leaves the old file or no file,
never a partial one, and its temporary file is hidden (name starts with '.') from list_images."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from sciconv import io
from sciconv.errors import InvalidImageError, OutputExistsError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

# The child writes a large image with io.write. With SLOW_RENAME set it pauses just before the
# final rename, i.e. after the temporary file is complete: the worst moment to die.
CHILD = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from sciconv import io
    target, mode = sys.argv[1], sys.argv[2]
    if mode == "slow-rename":
        real_replace = os.replace
        def slow_replace(src, dst):
            print("RENAMING", flush=True)
            time.sleep(60)
            real_replace(src, dst)
        os.replace = slow_replace
    data = np.random.default_rng(1).normal(size=(2048, 2048)).astype(np.float64)  # 32 MiB
    print("WRITING", flush=True)
    io.write(target, data, overwrite=True, history="from the child")
    print("DONE", flush=True)
    """
)


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _spawn(target: Path, mode: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(target), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for_line(proc: subprocess.Popen, word: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if word in line:
            return
        if not line and proc.poll() is not None:
            raise AssertionError(f"child ended early: {proc.stderr.read()[-2000:]}")
    raise AssertionError(f"child never printed {word!r}")


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("old", [False, True], ids=["no-old-file", "old-file"])
def test_kill_before_rename_keeps_old_file_or_none(tmp_path, old):
    target = tmp_path / "out.fits"
    if old:
        io.write(target, np.full((4, 4), 7.0, np.float32))
        before = sha(target)
    proc = _spawn(target, "slow-rename")
    try:
        _wait_for_line(proc, "RENAMING")
        temps = _temps(tmp_path)
        assert len(temps) == 1 and temps[0].stat().st_size > 32 * 2**20  # complete, not renamed
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    if old:
        assert sha(target) == before
        np.testing.assert_array_equal(io.read(target).data, 7.0)
    else:
        assert not target.exists()
    # the killed writer's temporary file is hidden from list_images
    assert [p.name for p in io.list_images(tmp_path)] == (["out.fits"] if old else [])
    assert all(p.name.startswith(".out.") for p in _temps(tmp_path))


def test_kill_while_writing_bytes_never_leaves_partial_target(tmp_path):
    """Kill as soon as the temporary file appears, while its bytes are still being written."""
    target = tmp_path / "out.fits"
    io.write(target, np.full((4, 4), 3.0, np.float32))
    before = sha(target)
    proc = _spawn(target, "fast")
    killed_mid_write = False
    try:
        _wait_for_line(proc, "WRITING")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            temps = _temps(tmp_path)
            if temps:
                size = temps[0].stat().st_size if temps[0].exists() else 0
                proc.send_signal(signal.SIGKILL)
                killed_mid_write = size < 2048 * 2048 * 8
                break
            time.sleep(0.0005)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    if proc.returncode == 0:  # the child finished first: then the new file must be complete
        img = io.read(target)
        assert img.shape == (2048, 2048, 1)
        assert "from the child" in [str(h) for h in img.header["HISTORY"]]
    else:
        assert sha(target) == before, "a killed writer changed the target"
        assert [p.name for p in io.list_images(tmp_path)] == ["out.fits"]
    # we really did kill it mid-write at least in the common case (documented, not asserted: a
    # very fast disk can finish 32 MiB before the first poll)
    print(f"killed_mid_write={killed_mid_write} returncode={proc.returncode}")


def test_failed_write_leaves_nothing_and_overwrite_needs_flag(tmp_path):
    target = tmp_path / "a.png"
    with pytest.raises(InvalidImageError, match=r"a\.png: PNG stores uint8 or uint16"):
        io.write(target, np.zeros((4, 4), np.float32))  # PNG refuses float: nothing written
    assert list(tmp_path.iterdir()) == []
    io.write(target, np.zeros((4, 4), np.uint8))
    before = sha(target)
    with pytest.raises(OutputExistsError, match=r"a\.png: output exists"):
        io.write(target, np.ones((4, 4), np.uint8))
    assert sha(target) == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary left behind


def _race(target: Path, writers: int) -> tuple[list[int], list[BaseException]]:
    """``writers`` threads write ``target`` with overwrite=False, committing at the same instant."""
    import threading

    from sciconv._atomic import atomic_output

    barrier = threading.Barrier(writers)
    won, errors = [], []

    def write(k: int) -> None:
        try:
            with atomic_output(target) as tmp:
                tmp.write_text(f"writer {k}")
                barrier.wait(timeout=30)
            won.append(k)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return won, errors


def test_overwrite_false_is_atomic_under_racing_writers(tmp_path, monkeypatch):
    # before issue 15 the writer checked path.exists() and then renamed: several racing writers
    # could all succeed, each replacing the file of the one before. A slow check (a busy file
    # system, a preempted thread) widens that window here; an atomic commit does not care.
    real_exists = Path.exists

    def slow_exists(self, *args, **kwargs):
        found = real_exists(self, *args, **kwargs)
        if self.name.startswith("race"):
            time.sleep(0.01)
        return found

    monkeypatch.setattr(Path, "exists", slow_exists)
    for round_ in range(10):
        target = tmp_path / f"race{round_}.csv"
        won, errors = _race(target, 8)
        assert len(won) == 1, f"round {round_}: {len(won)} writers succeeded"
        assert len(errors) == 7 and all(isinstance(e, OutputExistsError) for e in errors)
        assert target.read_text() == f"writer {won[0]}"
    assert _temps(tmp_path) == []


def test_overwrite_false_falls_back_where_hard_links_are_missing(tmp_path, monkeypatch):
    import errno

    from sciconv._atomic import atomic_output

    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    with atomic_output(tmp_path / "a.txt") as tmp:
        tmp.write_text("first")
    assert (tmp_path / "a.txt").read_text() == "first"
    with pytest.raises(OutputExistsError, match="appeared while writing"):
        with atomic_output(tmp_path / "b.txt", overwrite=False) as tmp:
            (tmp_path / "b.txt").write_text("x")  # appears while writing
            tmp.write_text("second")
    assert (tmp_path / "b.txt").read_text() == "x"
    assert _temps(tmp_path) == []


def test_partial_files_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    from sciconv._atomic import STALE_SECONDS

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    old = time.time() - STALE_SECONDS - 5
    stale = tmp_path / f".out.{dead_pid}.abc123.part.fits"  # a killed writer's leftover
    young = tmp_path / f".out.{dead_pid}.young1.part.fits"  # too recent to judge
    alive = tmp_path / f".out.{os.getpid()}.alive1.part.fits"  # a live writer's
    other = tmp_path / f".out2.{dead_pid}.other1.part.fits"  # another target's
    for p in (stale, young, alive, other):
        p.write_bytes(b"partial")
    for p in (stale, alive, other):
        os.utime(p, (old, old))
    io.write(tmp_path / "out.fits", np.zeros((2, 2), np.float32))
    assert not stale.exists()
    assert young.exists() and alive.exists() and other.exists()


def test_a_broken_link_where_an_output_goes_is_an_existing_output(tmp_path):
    # QA: "output appeared while writing" (sciconv predict then deleted the user's link)
    from sciconv._cli_predict_outputs import check_outputs

    link = tmp_path / "cell_labels.tif"
    os.symlink("/scratch/purged/cell_labels.tif", link)
    said = r"output exists \(a broken symbolic link to /scratch/purged/cell_labels\.tif\); pass"
    with pytest.raises(OutputExistsError, match=said + " overwrite=True"):
        io.write(link, np.zeros((4, 4), np.uint16))
    with pytest.raises(OutputExistsError, match=said + " --overwrite"):
        check_outputs([link], overwrite=False)
    assert os.path.islink(link)  # kept
    io.write(link, np.zeros((4, 4), np.uint16), overwrite=True)  # asked for: the link replaced
    assert not os.path.islink(link) and link.is_file()


def test_recording_writes_in_two_threads_ends_each_ones_own_record(tmp_path):
    # QA threads: two sciconv predict runs in threads: the records became equal sets and
    # list.remove took the other's: "unexpected ValueError: list.remove(x): x not in list"
    import threading

    from sciconv._atomic import atomic_output, recording_writes

    wrote, first_left = threading.Barrier(2), threading.Event()
    made_first, both_made = threading.Event(), threading.Barrier(2)
    errors, records = [], {}

    def write(name):
        with atomic_output(tmp_path / name) as tmp:
            tmp.write_text(name)

    def run(k):
        try:
            if k == 1:
                made_first.wait()  # the record of thread 0 comes first in the list
            with recording_writes() as written:
                made_first.set()
                both_made.wait()
                write(f"{k}.txt")
                wrote.wait()  # both records hold both files now: equal sets
                if k == 0:  # the first record made ends last
                    first_left.wait()
                    write("0b.txt")  # after the other's record ended
            records[k] = written
        except Exception as err:  # pragma: no cover - the failure being tested
            errors.append(err)
        finally:
            first_left.set()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert tmp_path / "0b.txt" in records[0] and tmp_path / "0b.txt" not in records[1]
