"""sciconv's warning blocks in several threads at once (dask and web workers, notebooks):
the process's warning state is left as it was, and each warning names its own file (QA threads:
overlapping ``catch_warnings`` blocks left filters behind and sent every later warning of the
process into a finished block's list within 1-7 rounds; a clean file's read was reported with
another file's broken header)."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from sciconv import io
from sciconv._warnings import carried, caught, naming
from sciconv.errors import SciconvWarning

HST = Path(__file__).resolve().parents[1] / "data/real/hst/j8bt06nyq_sci_cutout.fits"


def _nul_padded(folder: Path) -> Path:
    """A small FITS file whose header is padded with NUL bytes (astropy warns about it)."""
    path = folder / "nullpad.fits"
    fits.PrimaryHDU(np.arange(256, dtype=np.float32).reshape(16, 16)).writeto(path)
    raw = bytearray(path.read_bytes())
    end = raw.find(b"END" + b" " * 77)
    raw[end + 80 : 2880] = bytes(2880 - end - 80)
    path.write_bytes(bytes(raw))
    return path


def _in_threads(target, n: int = 4) -> None:
    start = threading.Barrier(n)

    def run(k):
        start.wait()
        target(k)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_reads_in_threads_leave_the_warning_state_as_it_was(tmp_path):
    bad = _nul_padded(tmp_path)
    filters = list(warnings.filters)
    with pytest.warns(SciconvWarning, match="headers suspect"):
        _in_threads(lambda k: [io.read(bad if k % 2 else HST) for _ in range(8)])
    assert warnings.filters == filters  # nothing left behind (it kept 'always', 'ignore' ...)
    with warnings.catch_warnings(record=True) as later:  # a later warning is shown, not lost
        warnings.simplefilter("always")
        warnings.warn("the user's own", UserWarning, stacklevel=1)
    assert [str(w.message) for w in later] == ["the user's own"]


def test_a_warning_names_the_file_of_its_own_thread(tmp_path):
    bad = _nul_padded(tmp_path)
    stop = threading.Event()

    def read_clean():
        while not stop.is_set():
            io.read(HST)

    other = threading.Thread(target=read_clean)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        other.start()
        for _ in range(10):
            io.read(bad)
        stop.set()
        other.join()
    suspect = [str(w.message) for w in said if "headers suspect" in str(w.message)]
    assert len(suspect) == 10 and all(str(bad) in m for m in suspect), suspect[:2]


def test_recorded_and_reworded_blocks_keep_to_their_thread():
    inside, leave = threading.Barrier(2), threading.Barrier(2)
    got = {}

    def run(k):
        with caught("always", record=True) as said, naming(f"in{k}: "):
            inside.wait()
            warnings.warn(f"from {k}", SciconvWarning, stacklevel=1)
            leave.wait()
        got[k] = [str(w.message) for w in said]

    _in_threads(run, n=2)
    assert got == {0: ["in0: from 0"], 1: ["in1: from 1"]}  # each its own thread's, named
    with warnings.catch_warnings(record=True) as after:
        warnings.simplefilter("always")
        with naming("x.fits: "):
            warnings.warn("kept", SciconvWarning, stacklevel=1)
    assert [str(w.message) for w in after] == ["x.fits: kept"]


def test_a_block_leaves_an_equal_filter_of_its_caller_in_place():
    # review: the block's ("always", Warning) replaced the caller's equal one and took it away
    # on exit: the caller's next warning met pytest's "error" filter (sciconv predict on a movie)
    with warnings.catch_warnings(record=True) as outer:
        warnings.simplefilter("always")
        own = warnings.filters[0]
        with caught("always", record=True):
            pass
        assert warnings.filters[0] is own
        warnings.warn("after the block", SciconvWarning, stacklevel=1)
    assert [str(w.message) for w in outer] == ["after the block"]


def test_a_block_can_record_the_warnings_of_its_thread_pool():
    from concurrent.futures import ThreadPoolExecutor

    def work(k):
        warnings.warn(f"file {k}", SciconvWarning, stacklevel=1)

    with caught("always", record=True) as said:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(carried(work), range(3)))
    assert sorted(str(w.message) for w in said) == ["file 0", "file 1", "file 2"]
    with caught("always", record=True) as own:  # its own thread's only
        with ThreadPoolExecutor(1) as pool, pytest.warns(SciconvWarning, match="file 9"):
            list(pool.map(work, [9]))
    assert list(own) == []
