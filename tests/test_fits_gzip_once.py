"""A compressed FITS file (``.fits.gz``, ``.fits.bz2``) is decompressed once (QA 54): the
padding check keeps what it decompresses in a temporary file with no name and astropy reads that
copy, eagerly, lazily, from threads and from forked workers; nothing is left behind after a read,
a close, a collection or a refusal; where no copy can be kept, the compressed stream is read."""

from __future__ import annotations

import bz2
import gc
import gzip
import multiprocessing
import os
import tempfile
import threading

import numpy as np
import pytest
from astropy.io import fits

from sciconv import io
from sciconv.errors import InvalidImageError

_OPENERS = {".fits.gz": gzip.open, ".fits.bz2": bz2.open}


@pytest.fixture
def decompressed(monkeypatch):
    """Bytes decompressed from any gzip or bzip2 stream in this process while the test runs
    (sciconv's check, astropy's reads and seeks, a lazy image's copy alike)."""
    compression = pytest.importorskip("_compression")  # the stdlib's shared stream reader
    total = [0]

    def counting(read):
        def wrapper(self, *args, **kwargs):
            data = read(self, *args, **kwargs)
            total[0] += len(data)
            return data

        return wrapper

    monkeypatch.setattr(gzip._GzipReader, "read", counting(gzip._GzipReader.read))
    reader = compression.DecompressReader
    monkeypatch.setattr(reader, "read", counting(reader.read))  # bzip2
    return total


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """The temporary folder sciconv's copies go to."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _held(folder) -> set[str]:
    """The files in ``folder`` (named or not: a nameless copy too) this process holds open, by
    a descriptor or a memory map (which holds a descriptor of its own)."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc (Linux) to see nameless files")
    held = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the descriptor listdir itself used
            continue
        if target.startswith(str(folder)):
            held.add(target)
    return held


def _write(path, *, padding: int = 0) -> tuple[np.ndarray, bytes]:
    """A multi-extension file: scaled int16 SCI (BSCALE/BZERO), its DQ plane, checksums.
    Returns astropy's physical SCI values with the flagged pixels NaN, and the FITS bytes."""
    rng = np.random.default_rng(3)
    physical = np.round(rng.normal(500.0, 20.0, (96, 80)) * 2) / 2  # multiples of BSCALE
    sci = fits.ImageHDU(physical, name="SCI")
    sci.scale("int16", bscale=0.5, bzero=500.0)
    sci.header["BUNIT"] = "adu"
    dq = fits.ImageHDU((rng.random((96, 80)) < 0.03).astype(np.int16) * 4, name="DQ")
    hdul = fits.HDUList([fits.PrimaryHDU(), sci, dq])
    plain = path.with_name("plain.fits")
    hdul.writeto(plain, checksum=True)
    raw = plain.read_bytes() + bytes(padding)
    with _OPENERS["".join(path.suffixes[-2:])](path, "wb") as out:
        out.write(raw)
    with fits.open(plain) as direct:  # astropy's own read: BSCALE/BZERO applied
        expected = direct["SCI"].data.astype(np.float32)
        expected[direct["DQ"].data != 0] = np.nan
    plain.unlink()
    return expected, raw


@pytest.mark.parametrize("suffix", sorted(_OPENERS))
@pytest.mark.parametrize("lazy", [False, True])
def test_a_compressed_fits_is_decompressed_once_with_astropys_values(
    tmp_path, scratch, decompressed, suffix, lazy
):
    path = tmp_path / f"flt{suffix}"
    expected, raw = _write(path)
    given = path.read_bytes()
    decompressed[0] = 0
    img = io.read(path, hdu="SCI", lazy=lazy)
    if lazy:
        np.testing.assert_array_equal(img.data[10:40, 5:70, 0], expected[10:40, 5:70])
        got = img.data[:, :, 0]
    else:
        got = img.data[..., 0]
    np.testing.assert_array_equal(got, expected)  # BSCALE/BZERO and the DQ plane applied
    assert img.header["BUNIT"] == "adu" and img.meta["hdu"] == 1 and img.meta["bitpix"] == 16
    assert decompressed[0] == len(raw)  # once: the check's pass is the only one
    if lazy:
        assert len(_held(scratch)) == 1  # the copy, with no name in the folder
        img.data.close()
    assert _held(scratch) == set() and list(scratch.iterdir()) == []
    assert path.read_bytes() == given  # the input as it was


def test_a_section_of_a_fits_gz_is_read_from_the_one_copy(tmp_path, scratch, decompressed):
    path = tmp_path / "flt.fits.gz"
    expected, raw = _write(path)
    decompressed[0] = 0
    img = io.read(path, hdu="SCI", section=(slice(7, 50), slice(30, 61)))
    np.testing.assert_array_equal(img.data[..., 0], expected[7:50, 30:61])
    assert decompressed[0] == len(raw)
    assert _held(scratch) == set()


def _window_in_child(args):
    img, ys, xs = args
    return img.data[ys, xs, 0], img.data._pid == os.getpid()


def test_lazy_windows_of_the_copy_from_threads_and_forked_workers(tmp_path, scratch, decompressed):
    path = tmp_path / "flt.fits.gz"
    expected, raw = _write(path)
    decompressed[0] = 0
    img = io.read(path, hdu="SCI", lazy=True)
    wrong, errors = [], []
    start = threading.Barrier(4)

    def cut(seed):
        r = np.random.default_rng(seed)
        start.wait()
        for _ in range(8):
            y, x = r.integers(0, 64, 2)
            try:
                got = img.data[y : y + 32, x : x + 16, 0]
            except Exception as err:  # pragma: no cover - the failure being tested
                errors.append(err)
                continue
            if not np.array_equal(got, expected[y : y + 32, x : x + 16], equal_nan=True):
                wrong.append((y, x))

    threads = [threading.Thread(target=cut, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and not wrong, (errors[:1], len(wrong))
    assert decompressed[0] == len(raw)  # 32 windows, no decompression past the check's
    jobs = [(img, slice(y, y + 40), slice(x, x + 30)) for y in (0, 50) for x in (0, 45)]
    with multiprocessing.get_context("fork").Pool(2) as pool:  # no TensorFlow: file reads only
        results = pool.map_async(_window_in_child, jobs).get(timeout=120)
    for (_, ys, xs), (got, own) in zip(jobs, results, strict=True):
        np.testing.assert_array_equal(got, expected[ys, xs])
        assert own  # the child opened the file itself
    np.testing.assert_array_equal(img.data[0:5, 0:5, 0], expected[0:5, 0:5])  # the parent's still
    img.data.close()
    assert _held(scratch) == set()


def test_a_lazy_image_never_closed_removes_its_copy_when_collected(tmp_path, scratch):
    path = tmp_path / "flt.fits.gz"
    expected, _ = _write(path)
    img = io.read(path, hdu="SCI", lazy=True)
    np.testing.assert_array_equal(img.data[3:9, 4:8, 0], expected[3:9, 4:8])
    assert len(_held(scratch)) == 1
    del img
    gc.collect()
    assert _held(scratch) == set()


@pytest.mark.parametrize("lazy", [False, True])
def test_a_refused_padded_file_leaves_nothing_and_never_reaches_astropy(
    tmp_path, scratch, monkeypatch, lazy
):
    path = tmp_path / "pad.fits.gz"
    _write(path, padding=3 * 2**20)
    opened = []
    real_open = fits.open
    monkeypatch.setattr(fits, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    with pytest.raises(InvalidImageError, match="continues more than 1,048,576 bytes") as err:
        io.read(path, hdu="SCI", lazy=lazy)
    assert str(path) in str(err.value) and "sciconv-" not in str(err.value)
    assert opened == []  # refused before astropy parsed anything
    assert _held(scratch) == set() and list(scratch.iterdir()) == []


def test_astropy_reads_the_copy_under_the_users_file_name(tmp_path, scratch):
    from sciconv.io._fits_stream import open_fits

    path = tmp_path / "flt.fits.gz"
    _write(path)
    hdul, copy = open_fits(path)
    try:
        assert copy is not None and hdul.filename() == str(path)  # what astropy says names it
        assert hdul[1]._file.compression is None  # a plain file: memory-mapped, no stream
    finally:
        hdul.close()
    assert copy.closed and _held(scratch) == set()


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("cause", ["no temporary file", "no room"])
def test_without_room_for_a_copy_the_compressed_stream_is_read(
    tmp_path, scratch, monkeypatch, decompressed, lazy, cause
):
    import sciconv.io._fits_stream as stream_mod

    if cause == "no temporary file":

        def full(*args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(tempfile, "TemporaryFile", full)  # the lazy image's copy too
    else:  # a copy larger than its share of the free space: dropped while it is written
        monkeypatch.setattr(stream_mod, "COPY_SHARE_OF_FREE_SPACE", 1e-12)
    path = tmp_path / "flt.fits.gz"
    expected, raw = _write(path)
    decompressed[0] = 0
    img = io.read(path, hdu="SCI", lazy=lazy)
    got = img.data[:, :, 0] if lazy else img.data[..., 0]
    np.testing.assert_array_equal(got, expected)
    assert decompressed[0] > len(raw)  # astropy read the compressed file itself
    if lazy:
        img.data.close()
    assert _held(scratch) == set() and list(scratch.iterdir()) == []
