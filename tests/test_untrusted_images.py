"""Images from untrusted sources (QA 53, findings 2 and 5): decompression bombs are refused by
every reader that decodes a whole image; window reads map only the window's pages, so they work
under an address-space limit (ulimit -v) smaller than the file."""

from __future__ import annotations

import errno
import mmap

import numpy as np
import pytest
import tifffile
from astropy.io import fits
from PIL import Image

import sciconv as sc
from sciconv.errors import InvalidImageError
from sciconv.io import _common, read_mapped


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # refused above 2000 pixels


def _bomb_message(err, path):
    said = str(err.value)
    assert str(path) in said and "claims 2,500 pixels" in said
    assert "lazy=True or section=" in said and "MAX_IMAGE_PIXELS" in said


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_tiff_over_pixel_limit_refused_whole_read_windows_allowed(
    tmp_path, small_limit, compression
):
    path = tmp_path / "big.tif"
    image = np.arange(2500, dtype=np.uint16).reshape(50, 50)
    tifffile.imwrite(path, image, compression=compression, tile=(16, 16) if compression else None)
    with pytest.raises(InvalidImageError) as err:
        sc.io.read(path)
    _bomb_message(err, path)
    window = sc.io.read(path, section=(slice(3, 9), slice(4, 7))).data[..., 0]
    assert np.array_equal(window, image[3:9, 4:7])
    with sc.io.read(path, lazy=True) as lazy:
        assert np.array_equal(lazy.data[40:50, 0:5][..., 0], image[40:50, 0:5])


def test_palette_tiff_over_pixel_limit_refused(tmp_path, small_limit):
    path = tmp_path / "palette.tif"
    Image.fromarray(np.zeros((50, 50), np.uint8)).convert("P").save(path)
    with pytest.raises(InvalidImageError, match=r"palette TIFF \(50 x 50\) claims 2,500") as err:
        sc.io.read(path)
    assert str(path) in str(err.value)


def test_ome_zarr_over_pixel_limit_refused_whole_read(tmp_path, small_limit):
    path = tmp_path / "big.ome.zarr"
    image = np.arange(2500, dtype=np.float32).reshape(50, 50)
    sc.io.write_ome_zarr(path, image)
    with pytest.raises(InvalidImageError) as err:
        sc.io.read(path)
    _bomb_message(err, path)
    window = sc.io.read(path, section=(slice(0, 10), slice(0, 10))).data[..., 0]
    assert np.array_equal(window, image[:10, :10])
    assert np.array_equal(sc.io.read(path, lazy=True).data[5:7, 1:3][..., 0], image[5:7, 1:3])


def test_plain_zarr_array_over_pixel_limit_refused(tmp_path, small_limit):
    zarr = pytest.importorskip("zarr")
    path = tmp_path / "labels.zarr"
    zarr.open(str(path), mode="w", shape=(50, 50), chunks=(25, 25), dtype="int32")[:] = 7
    with pytest.raises(InvalidImageError) as err:
        sc.io.read(path)
    _bomb_message(err, path)
    assert sc.io.read(path, section=(slice(0, 2), slice(0, 2))).data.sum() == 28


def test_zarr_read_checks_free_memory(tmp_path, monkeypatch):
    path = tmp_path / "image.ome.zarr"
    sc.io.write_ome_zarr(path, np.zeros((40, 40), np.float32))
    monkeypatch.setattr(_common, "available_memory", lambda: (1000, "free"))
    with pytest.raises(InvalidImageError, match=r"needs about .* GiB to load, more than") as err:
        sc.io.read(path)
    assert str(path) in str(err.value)


@pytest.fixture
def address_limit(monkeypatch):
    """Mappings over 256 kB fail with ENOMEM, as under ``ulimit -v`` smaller than the file."""
    real = mmap.mmap

    def capped(fileno, length, *args, **kwargs):
        if length == 0 or length > 256 * 1024:
            raise OSError(errno.ENOMEM, "Cannot allocate memory")
        return real(fileno, length, *args, **kwargs)

    monkeypatch.setattr(mmap, "mmap", capped)


def _files(tmp_path, image):
    fits_path, tiff_path = tmp_path / "big.fits", tmp_path / "big.tif"
    fits.PrimaryHDU(image).writeto(fits_path)
    axes = {"metadata": {"axes": "CYX"}, "photometric": "minisblack"} if image.ndim == 3 else {}
    tifffile.imwrite(tiff_path, image, **axes)  # uncompressed, contiguous
    return fits_path, tiff_path


def test_window_reads_under_address_space_limit(tmp_path, address_limit):
    image = np.arange(1000 * 1000, dtype=np.float32).reshape(1000, 1000)  # 4 MB
    for path in _files(tmp_path, image):
        part = sc.io.read(path, section=(slice(500, 510), slice(20, 30))).data[..., 0]
        assert np.array_equal(part, image[500:510, 20:30]), path
        with sc.io.read(path, lazy=True) as lazy:
            assert np.array_equal(lazy.data[990:1000, 0:1000][..., 0], image[990:]), path


def test_window_across_planes_read_without_mapping_when_span_too_large(tmp_path, address_limit):
    planes = np.arange(3 * 300 * 300, dtype=np.float32).reshape(3, 300, 300)  # planes 360 kB apart
    for path in _files(tmp_path, planes):
        with sc.io.read(path, lazy=True) as lazy:
            got = lazy.data[10:12, 5:8]
        assert np.array_equal(got, np.moveaxis(planes[:, 10:12, 5:8], 0, -1)), path


@pytest.mark.parametrize("order", ["C", "F"])
def test_read_mapped_basic_keys_match_numpy(tmp_path, monkeypatch, order):
    image = np.asarray(np.arange(3 * 37 * 53, dtype=">i2").reshape(3, 37, 53), order=order)
    path = tmp_path / "x.bin"
    path.write_bytes(b"h" * 77 + image.tobytes(order=order))
    ref = (str(path), ">i2", image.shape, 77, order)
    keys = [
        (slice(None), slice(3, 20), slice(5, 40, 3)),
        (1, slice(30, 2, -2), -1),
        (Ellipsis, slice(0, 5)),
        (2,),
        ([0, 2], slice(0, 2)),  # fancy: numpy's own map
    ]
    for k in keys:
        assert np.array_equal(read_mapped(ref, k), image[k]), k

    def refuse(*args, **kwargs):
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    monkeypatch.setattr(mmap, "mmap", refuse)  # no mapping at all: read run by run
    for k in keys[:4]:
        assert np.array_equal(read_mapped(ref, k), image[k]), k


def _compressed_fits(path, opener, padding: int, extra_hdu: bool = False):
    image = np.arange(64 * 64, dtype=">f4").reshape(64, 64)
    with opener(path, "wb") as f:
        hdus = [fits.PrimaryHDU(image)]
        if extra_hdu:
            hdus.append(fits.ImageHDU(np.ones((64, 64), ">f4"), name="ERR"))
        fits.HDUList(hdus).writeto(f)
        for _ in range(padding // 2**20):
            f.write(bytes(2**20))
        f.write(bytes(padding % 2**20))
    return image


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("suffix", [".fits.gz", ".fits.bz2"])
def test_compressed_fits_padded_past_last_hdu_refused(tmp_path, lazy, suffix):
    import bz2
    import gzip

    path = tmp_path / f"pad{suffix}"
    _compressed_fits(path, gzip.open if suffix.endswith("gz") else bz2.open, 8 * 2**20)
    assert path.stat().st_size < 100_000
    with pytest.raises(InvalidImageError, match="continues more than 1,048,576 bytes past") as err:
        sc.io.read(path, lazy=lazy)
    assert str(path) in str(err.value) and "ends at byte 20,160" in str(err.value)


def test_compressed_fits_with_extensions_still_read(tmp_path):
    import gzip

    path = tmp_path / "two.fits.gz"
    image = _compressed_fits(path, gzip.open, 0, extra_hdu=True)
    img = sc.io.read(path)
    assert np.array_equal(img.data[..., 0], image) and img.meta["uncertainty_from"].startswith(
        "HDU 1"
    )


def test_compressed_fits_header_without_end_refused(tmp_path, monkeypatch):
    import gzip

    from sciconv.io import _fits_stream

    monkeypatch.setattr(_fits_stream, "MAX_HEADER_BYTES", 20 * 2880)
    path = tmp_path / "noend.fits.gz"
    with gzip.open(path, "wb") as f:
        fits.PrimaryHDU(np.zeros((4, 4), ">f4")).writeto(f)
        f.write(b"XTENSION= 'IMAGE   '".ljust(80) + b"COMMENT".ljust(80) * 35)
        for _ in range(30):
            f.write(b"COMMENT".ljust(80) * 36)
    with pytest.raises(InvalidImageError, match="HDU 1 of the compressed file has no END") as err:
        sc.io.read(path)
    assert str(path) in str(err.value)


def test_label_reader_applies_the_pixel_limit_lazy_reads_stay_open(tmp_path, small_limit):
    # read_labels decoded a label TIFF or zarr array whole whatever it declared (QA 53 left it)
    labels = np.arange(2500, dtype=np.uint16).reshape(50, 50)
    tif = tmp_path / "labels.tif"
    tifffile.imwrite(tif, labels, compression="zlib")
    with pytest.raises(InvalidImageError) as err:
        sc.io.read_labels(tif)
    _bomb_message(err, tif)
    assert np.array_equal(np.asarray(sc.io.read_labels(tif, lazy=True)), labels)
    zarr = pytest.importorskip("zarr")
    store = tmp_path / "labels.zarr"
    zarr.open(str(store), mode="w", shape=(50, 50), chunks=(25, 25), dtype="int32")[:] = labels
    with pytest.raises(InvalidImageError) as err:
        sc.io.read_labels(store)
    _bomb_message(err, store)
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, labels[:20, :20])
    assert np.array_equal(sc.io.read_labels(small), labels[:20, :20])
