"""Memory-mapped images are read through mappings of their own (``sciconv.io.read_mapped``).

A huge memory-mapped input must not pile up in the process's resident set as it is read: the
normalization sample (strided rows, which the kernel reads ahead) and the tile and block windows
each map the file anew and unmap it after the copy -- for a numpy memory map
(``sciconv.inference._source``) and for ``sciconv.io.read(path, lazy=True)`` of a plain FITS HDU
or an uncompressed TIFF. Before this, a 20480^2 float32 memmap added about 1.6 GB of file pages to
the block-wise run's peak RSS, and a lazy FITS or TIFF mosaic the whole file.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from sciconv import io
from sciconv.errors import InvalidImageError
from sciconv.inference import _source
from sciconv.inference._source import Source
from sciconv.io import file_map, read_mapped


def _rss_file_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    raise RuntimeError("no RssFile in /proc/self/status")


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("shape", [(37, 53), (37, 53, 3)])
def test_read_mapped_equals_indexing(tmp_path, order, shape):
    data = np.asfortranarray(np.arange(np.prod(shape), dtype=np.int16).reshape(shape))
    if order == "C":
        data = np.ascontiguousarray(data)
    np.save(tmp_path / "x.npy", data)
    memmap = np.load(tmp_path / "x.npy", mmap_mode="r")
    ref = file_map(memmap)
    assert ref is not None and ref[4] == order and ref[2] == shape
    for key in [(slice(3, 30), slice(5, 50)), (slice(None, None, 4), slice(1, None, 3))]:
        got = read_mapped(ref, key, dtype=np.float32)
        assert got.dtype == np.float32 and type(got) is np.ndarray
        np.testing.assert_array_equal(got, data[key])


def test_file_map_only_for_whole_shared_maps(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((8, 8), np.float32))
    assert file_map(np.ones((8, 8))) is None
    assert file_map(np.load(tmp_path / "x.npy", mmap_mode="r")[2:]) is None  # a view
    cow = np.load(tmp_path / "x.npy", mmap_mode="c")
    cow[0, 0] = 5.0  # a private change a new mapping would not see
    assert file_map(cow) is None
    assert Source(cow, promote=True, path=None).read(slice(0, 1), slice(0, 1))[0, 0, 0] == 5.0


def test_limits_sample_of_a_memmap_equals_the_in_memory_one(tmp_path, monkeypatch):
    monkeypatch.setattr(_source, "_LIMIT_SAMPLES", 500)  # sample windows, as when huge
    data = np.random.default_rng(0).normal(size=(1501, 43, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", data)
    memmap = np.load(tmp_path / "x.npy", mmap_mode="r")
    got = Source(memmap, promote=False, path=None).limits_sample()
    want = Source(data, promote=False, path=None).limits_sample()
    assert got.shape == want.shape and 0 < got.size < data.size
    np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_reading_a_memmap_does_not_keep_its_pages_resident(tmp_path):
    side = 4096  # 64 MiB of float32: its 4 Mpx above the every-pixel limit, so rows are sampled
    image = np.lib.format.open_memmap(
        tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(side, side)
    )
    image[:] = 1.0
    image.flush()
    del image
    memmap = np.load(tmp_path / "x.npy", mmap_mode="r")
    source = Source(memmap, promote=True, path=None)
    before = _rss_file_kib()
    sample = source.limits_sample()
    total = float(np.sum(sample))  # the pixels used, as the limits and the network use them
    for y in range(0, side, 512):
        tile = source.read(slice(y, y + 512), slice(0, side))
        assert tile.shape == (512, side, 1)
        total += float(np.sum(tile))
    grown = (_rss_file_kib() - before) / 1024
    assert sample.size < side * side and total == sample.size + side * side
    # the old persistent mapping kept the whole file resident after these reads (about 64 MiB)
    assert grown < 16, f"file pages left resident: {grown:.1f} MiB"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("suffix", [".fits", ".tif"])
def test_lazy_files_are_read_without_keeping_their_pages_resident(tmp_path, suffix):
    side = 4096
    data = np.random.default_rng(1).normal(size=(side, side)).astype(np.float32)
    path = io.write(tmp_path / f"mosaic{suffix}", data)
    expected = data[1000:1512, 2000:2512].copy()
    del data
    img = io.read(path, lazy=True)
    source = Source(io.as_array(img), promote=False, path=str(path))
    before = _rss_file_kib()
    total = float(np.sum(source.limits_sample()))
    for y in range(0, side, 1024):
        for x in range(0, side, 1024):
            total += float(np.sum(source.read(slice(y, y + 1024), slice(x, x + 1024))))
    grown = (_rss_file_kib() - before) / 1024
    window = source.read(slice(1000, 1512), slice(2000, 2512))
    np.testing.assert_array_equal(window[..., 0], expected)
    assert np.isfinite(total)
    # through one map held open, the whole file (64 MiB) stayed resident after these reads
    assert grown < 16, f"file pages left resident: {grown:.1f} MiB"
    img.data.close()
    with pytest.raises(InvalidImageError, match="closed"):
        img.data[0:1, 0:1]


def test_lazy_fits_reads_gzipped_and_scaled_files_alike(tmp_path):
    """Files read through astropy's sections (gzip) and through a map (plain) give one answer."""
    from astropy.io import fits

    raw = np.arange(-600, 600, dtype=np.int16).reshape(30, 40)
    raw[3, 4] = -32768
    hdu = fits.PrimaryHDU(raw, do_not_scale_image_data=True)
    hdu.header.update(BSCALE=0.5, BZERO=1000.0, BLANK=-32768)
    hdu.writeto(tmp_path / "s.fits")
    hdu.writeto(tmp_path / "s.fits.gz")
    eager = io.read(tmp_path / "s.fits").data
    for name in ("s.fits", "s.fits.gz"):
        lazy = io.read(tmp_path / name, lazy=True)
        np.testing.assert_array_equal(lazy.data[2:20, 1:39], eager[2:20, 1:39])
        assert np.isnan(lazy.data[3, 4, 0]) and lazy.data[0, 0, 0] == 700.0
        lazy.data.close()


def test_a_replaced_file_is_refused_or_read_as_opened(tmp_path):
    """A pipeline that replaces a file under its name never mixes two versions into one result."""
    old = np.arange(64, dtype=np.float32).reshape(8, 8)
    np.save(tmp_path / "x.npy", old)
    ref = file_map(np.load(tmp_path / "x.npy", mmap_mode="r"))
    io.write(tmp_path / "x.fits", old)
    lazy = io.read(tmp_path / "x.fits", lazy=True)
    np.save(tmp_path / "new.npy", old + 100)
    (tmp_path / "new.npy").replace(tmp_path / "x.npy")  # atomic replacement, as writers do
    io.write(tmp_path / "x.fits", old + 100, overwrite=True)
    with pytest.raises(InvalidImageError, match=r"replaced.*x\.npy|x\.npy.*replaced"):
        read_mapped(ref, (slice(0, 2), slice(0, 2)))
    np.testing.assert_array_equal(lazy.data[:, :, 0], old)  # the version it opened
    lazy.data.close()
    np.testing.assert_array_equal(io.read(tmp_path / "x.fits", lazy=True).data[:, :, 0], old + 100)


def test_block_windows_of_a_memmap_ship_as_a_file_reference(tmp_path):
    """What a dask worker gets: the file reference, not a copy of the pixels, and equal reads."""
    import pickle

    from sciconv.inference._blocks import _Windows

    data = np.random.default_rng(2).normal(size=(256, 192)).astype(np.float32)
    np.save(tmp_path / "x.npy", data)
    windows = _Windows(np.load(tmp_path / "x.npy", mmap_mode="r"))
    blob = pickle.dumps(windows)
    assert len(blob) < 4096  # the pixels are 192 KiB
    shipped = pickle.loads(blob)
    assert shipped.shape == (256, 192)
    np.testing.assert_array_equal(shipped.read((3, 100), (5, 150))[..., 0], data[3:100, 5:150])


def test_limits_sample_does_not_alias_with_a_periodic_mosaic(monkeypatch):
    """Every n-th row and column of a mosaic of repeated tiles saw the same few places of every
    tile: bright columns 5 px off the sampling grid were never seen (a 16k slide mosaic gave
    limits of 38k instead of 137k). Rows and columns at random places see them about as often
    as they are (100 of the 1000 columns here: 5 +- 2 % bright)."""
    monkeypatch.setattr(_source, "_LIMIT_SAMPLES", 10_000)  # a 1 Mpx image is "huge" here
    rng = np.random.default_rng(0)
    image = rng.normal(0, 1, (1000, 1000)).astype(np.float32)
    image[:, 5::20] = 1000.0  # 5 % of the pixels, in columns the old grid (step 10) skipped
    sample = Source(image, promote=True, path=None).limits_sample()
    assert 0 < sample.size <= 0.02 * image.size
    bright = float(np.mean(sample == 1000.0))
    assert 0.01 < bright < 0.11, bright  # their share of the image: 0.05
    np.testing.assert_allclose(np.percentile(sample, 99.8), np.percentile(image, 99.8), rtol=1e-6)
    # the same windows for the same shape: a memory map, a dask array and blocks agree
    again = Source(image.copy(), promote=True, path=None).limits_sample()
    np.testing.assert_array_equal(sample, again)
