"""A lazy ``.fits.gz`` reads its windows from the file it opened (QA52 #4): not the path read
again at the first window (which failed after ``os.chdir`` and gave a replaced file's pixels
under the old header), and its decompressed copy is not left in the temporary folder by a
process killed with SIGKILL."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from astropy.io import fits

from sciconv import io


def _write_gz(path, hdu) -> None:
    with gzip.open(path, "wb") as out:
        hdu.writeto(out)


def test_a_relative_lazy_fits_gz_reads_its_windows_after_chdir(tmp_path, monkeypatch):
    data = np.arange(40 * 30, dtype=np.float32).reshape(40, 30)
    _write_gz(tmp_path / "a.fits.gz", fits.PrimaryHDU(data))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(tmp_path)
    img = io.read("a.fits.gz", lazy=True)  # a relative name, as a notebook gives it
    monkeypatch.chdir(elsewhere)  # a notebook or a pipeline step changes folder
    np.testing.assert_array_equal(img.data[5:9, 3:7, 0], data[5:9, 3:7])
    img.data.close()


def test_a_lazy_fits_gz_replaced_under_its_name_reads_the_file_it_opened(tmp_path):
    path = tmp_path / "a.fits.gz"
    old = np.arange(32 * 32, dtype=np.float32).reshape(32, 32)
    _write_gz(path, fits.PrimaryHDU(old))
    img = io.read(path, lazy=True)
    # a pipeline writes a new version atomically under the same name: another BITPIX and a
    # longer header (its pixels at another offset)
    new = fits.PrimaryHDU(np.full((32, 32), 7, np.int16))
    for k in range(60):
        new.header[f"HIST{k:04d}"] = "x" * 40
    _write_gz(tmp_path / "new.fits.gz", new)
    os.replace(tmp_path / "new.fits.gz", path)
    np.testing.assert_array_equal(img.data[0:4, 0:6, 0], old[0:4, 0:6])
    np.testing.assert_array_equal(img.data[:, :, 0], old)
    img.data.close()
    assert io.read(path).data[0, 0, 0] == 7  # a new read gives the new file


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX")
def test_a_killed_reader_leaves_no_decompressed_copy_in_the_temporary_folder(tmp_path):
    path = tmp_path / "big.fits.gz"
    data = np.arange(256 * 256, dtype=np.float32).reshape(256, 256)
    _write_gz(path, fits.PrimaryHDU(data))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    code = textwrap.dedent(
        f"""
        import sys, time
        from sciconv import io
        img = io.read({str(path)!r}, lazy=True)
        window = img.data[0:8, 0:8, 0]  # the copy is made at the first window
        print(float(window[1, 0]), flush=True)
        time.sleep(60)
        """
    )
    env = {**os.environ, "TMPDIR": str(scratch), "TEMP": str(scratch), "TMP": str(scratch)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        line = proc.stdout.readline()
        assert float(line) == 256.0  # the window was read (from the copy)
        proc.send_signal(signal.SIGKILL)  # the OOM killer, a batch system after its grace time
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert sorted(p.name for p in scratch.iterdir()) == []  # no 256 KB copy left for ever
