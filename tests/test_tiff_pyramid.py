"""Whole-slide products as tiled, pyramidal (OME-)TIFF: ``io.write`` of a 2-D image above
``PYRAMID_MIN_SIDE`` stores 512 x 512 tiles and reduced levels as SubIFDs (what QuPath, napari
and OMERO open lazily); ``io.read`` gives the full-resolution image back unchanged.

The constants are lowered here (600 x 700 images, 128 px tiles, levels down to 128 px), so
each file takes milliseconds and has several bands, tiles and levels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile

from sciconv import io
from sciconv.errors import SciconvWarning

zarr = pytest.importorskip("zarr")

MIN_SIDE, TILE, TOP = 512, 128, 128
PIXEL_SIZE = (0.5, 0.25)


@pytest.fixture(autouse=True)
def small_pyramids(monkeypatch):
    monkeypatch.setattr("sciconv.io._pyramid.PYRAMID_MIN_SIDE", MIN_SIDE)
    monkeypatch.setattr("sciconv.io._pyramid.PYRAMID_TILE", TILE)
    monkeypatch.setattr("sciconv.io._pyramid.PYRAMID_TOP_SIDE", TOP)


def _labels(shape=(600, 700)) -> np.ndarray:
    """int32 labels: discs with ids up to ~100,000 (not a range a reduction could make up)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    out = np.zeros(shape, np.int32)
    for cy, cx, r, i in zip(
        rng.integers(0, shape[0], 60),
        rng.integers(0, shape[1], 60),
        rng.integers(5, 30, 60),
        rng.choice(100_000, 60, replace=False) + 1,
    ):
        out[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = i
    return out


def _probs(shape=(601, 703, 3)) -> np.ndarray:
    """float32 class probabilities, odd sizes, with NaN pixels (one whole 2 x 2 block)."""
    p = np.random.default_rng(1).random(shape, dtype=np.float32)
    p[10:12, 20:22] = np.nan  # a block that is NaN all through: NaN in level 1
    p[101, 33] = np.nan  # one NaN of four: the mean of the other three
    return p


def _source(kind: str, array: np.ndarray, tmp_path):
    if kind == "numpy":
        return array
    if kind == "memmap":
        mm = np.lib.format.open_memmap(tmp_path / "src.npy", "w+", array.dtype, array.shape)
        mm[:] = array
        mm.flush()
        del mm
        return np.lib.format.open_memmap(tmp_path / "src.npy", mode="r")
    chunks = (100, 90, *array.shape[2:])  # not aligned with the tiles nor the bands
    z = zarr.create_array(
        store=str(tmp_path / "src.zarr"), shape=array.shape, dtype=array.dtype, chunks=chunks
    )
    z[:] = array
    return zarr.open_array(str(tmp_path / "src.zarr"), mode="r")


def _reference_levels(array: np.ndarray) -> list[np.ndarray]:
    """The expected pyramid (H, W[, C]), written out independently of the writer: integers
    every second pixel, floats the NaN-mean of each 2 x 2 block, each from the level before."""
    levels = [array]
    while max(levels[-1].shape[:2]) > TOP:
        a = levels[-1]
        if a.dtype.kind != "f":
            levels.append(a[::2, ::2])
            continue
        h, w = -(-a.shape[0] // 2), -(-a.shape[1] // 2)
        padded = np.full((2 * h, 2 * w, *a.shape[2:]), np.nan, a.dtype)
        padded[: a.shape[0], : a.shape[1]] = a
        quads = np.stack([padded[i::2, j::2] for i in (0, 1) for j in (0, 1)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks
            levels.append(np.nanmean(quads, axis=0).astype(a.dtype))
    return levels


def _stored(level: np.ndarray) -> np.ndarray:
    """A level (H, W[, C]) as the file stores it: (H, W) or (C, H, W)."""
    if level.ndim == 2:
        return level
    return np.moveaxis(level, -1, 0)


def _quiet_read(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciconvWarning)  # no "other series" for the levels
        return io.read(path, **kwargs)


@pytest.mark.parametrize("ext", [".tif", ".ome.tif"])
@pytest.mark.parametrize("kind", ["numpy", "memmap", "zarr"])
@pytest.mark.parametrize("what", ["labels", "probs"])
def test_pyramid_round_trip_and_levels(tmp_path, what, kind, ext):
    array = _labels() if what == "labels" else _probs()
    names = ["cells"] if what == "labels" else ["background", "cell", "edge"]
    like = io.GridImage(np.zeros((2, 2, 1), np.float32), meta={"pixel_size": PIXEL_SIZE})
    path = io.write(tmp_path / f"out{ext}", _source(kind, array, tmp_path), like=like,
                    channel_names=names)  # fmt: skip

    img = _quiet_read(path)
    expected = array if array.ndim == 3 else array[..., None]
    np.testing.assert_array_equal(img.data, expected.astype(np.float32))
    assert img.meta["dtype"] == array.dtype.name
    assert img.meta["pixel_size"] == PIXEL_SIZE and img.meta["pixel_unit"] == "µm"
    assert img.meta["channel_names"] == names
    assert img.meta.get("ome", False) == (ext == ".ome.tif")

    reference = _reference_levels(array)
    assert len(reference) == 4  # 600 -> 300 -> 150 -> 75 rows
    with tifffile.TiffFile(path) as tif:
        assert len(tif.series) == 1 and tif.is_bigtiff
        series, page = tif.series[0], tif.pages[0]
        assert page.is_tiled and (page.tilelength, page.tilewidth) == (TILE, TILE)
        assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        assert len(page.subifds) == len(reference) - 1
        assert len(series.levels) == len(reference)
        shapes = [tuple(level.shape) for level in series.levels]
        assert shapes == [_stored(ref).shape for ref in reference]
        for k in range(1, len(shapes)):  # each level half the previous one, rounded up
            assert shapes[k][-2:] == tuple(-(-n // 2) for n in shapes[k - 1][-2:])
        for level, ref in zip(series.levels, reference):
            got = level.asarray()
            assert got.dtype == array.dtype
            if what == "labels":  # nearest: only ids of the full image, no new values
                np.testing.assert_array_equal(got, _stored(ref))
                assert set(np.unique(got)) <= set(np.unique(array))
            else:  # the same means, summed in another order
                np.testing.assert_allclose(got, _stored(ref), rtol=1e-6, equal_nan=True)
            assert level.keyframe.is_tiled
        top = series.levels[-1].asarray()
        if what == "probs":  # NaN-aware: one NaN of four is skipped, four of four stay NaN
            level1 = series.levels[1].asarray()
            assert np.isnan(level1[:, 5, 10]).all()
            np.testing.assert_allclose(
                level1[:, 50, 16], np.nanmean(array[100:102, 32:34], axis=(0, 1)), rtol=1e-6
            )
        assert max(top.shape[-2:]) <= TOP < 2 * max(top.shape[-2:])


def test_plain_tiff_levels_carry_their_resolution(tmp_path):
    like = io.GridImage(np.zeros((2, 2, 1), np.float32), meta={"pixel_size": PIXEL_SIZE})
    path = io.write(tmp_path / "labels.tif", _labels(), like=like)
    with tifffile.TiffFile(path) as tif:
        pages = [level.keyframe for level in tif.series[0].levels]
        res = [p.get_resolution() for p in pages]
        unit = {int(p.tags["ResolutionUnit"].value) for p in pages}
    assert unit == {int(tifffile.RESUNIT.CENTIMETER)}
    # 0.25 µm wide, 0.5 µm tall pixels: 40000 and 20000 per cm, halved on each level
    for k, (rx, ry) in enumerate(res):
        assert (rx, ry) == pytest.approx((40000.0 / 2**k, 20000.0 / 2**k))


def test_level0_of_an_array_outside_memory_goes_to_tifffile_as_tiles(tmp_path, monkeypatch):
    """numpy in memory is handed to tifffile whole; a memory map or zarr array as an iterator
    of tiles (the file is read band by band), and no level tifffile gets is full size."""
    calls = []
    original = tifffile.TiffWriter.write

    def spy(self, data=None, *args, **kwargs):
        calls.append((type(data), getattr(data, "shape", None)))
        return original(self, data, *args, **kwargs)

    monkeypatch.setattr(tifffile.TiffWriter, "write", spy)
    array = _probs()
    for kind in ("numpy", "memmap", "zarr"):
        calls.clear()
        io.write(tmp_path / f"{kind}.ome.tif", _source(kind, array, tmp_path), overwrite=True)
        first, levels = calls[0], calls[1:]
        assert len(levels) == 3
        if kind == "numpy":
            assert first[1] == (3, 601, 703)
        else:
            assert first[1] is None and hasattr(first[0], "__next__")
        assert [shape for _, shape in levels] == [(3, 301, 352), (3, 151, 176), (3, 76, 88)]


class _BandOnly:
    """An array outside memory that records each read and refuses to be read whole."""

    def __init__(self, array: np.ndarray, fail_after: int | None = None):
        self._array = array
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim
        self.reads: list[tuple[int, int]] = []
        self._fail_after = fail_after

    def __getitem__(self, key):
        rows = key[0] if isinstance(key, tuple) else key
        self.reads.append((rows.start, min(rows.stop, self.shape[0])))
        if self._fail_after is not None and len(self.reads) > self._fail_after:
            raise RuntimeError("source went away")
        return self._array[key]

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole source was read at once")


def test_a_source_outside_memory_is_read_once_band_by_band(tmp_path):
    array = _labels()
    source = _BandOnly(array)
    path = io.write(tmp_path / "labels.ome.tif", source)
    np.testing.assert_array_equal(tifffile.imread(path), array)
    assert max(stop - start for start, stop in source.reads) <= TILE
    assert sorted(source.reads) == [(y, min(y + TILE, 600)) for y in range(0, 600, TILE)]


def test_a_failed_write_leaves_no_file(tmp_path):
    source = _BandOnly(_labels(), fail_after=2)
    with pytest.raises(RuntimeError, match="source went away"):
        io.write(tmp_path / "labels.ome.tif", source)
    assert list(tmp_path.iterdir()) == []


def test_lazy_image_and_bool_sources(tmp_path):
    """A LazyImage (another slide read lazily) and a bool zarr array (a mask) are written band
    by band too: values kept, bool as uint8."""
    array = _labels()
    first = io.write(tmp_path / "first.ome.tif", array)
    lazy = _quiet_read(first, lazy=True)
    second = io.write(tmp_path / "second.tif", lazy.data)
    lazy.data.close()
    np.testing.assert_array_equal(tifffile.imread(second), array.astype(np.float32))
    mask = _source("zarr", array > 0, tmp_path)
    out = io.write(tmp_path / "mask.tif", mask)
    with tifffile.TiffFile(out) as tif:
        assert tif.pages[0].is_tiled and len(tif.series[0].levels) == 4
        np.testing.assert_array_equal(tif.series[0].asarray(), (array > 0).astype(np.uint8))


def test_rgb_pyramid_stays_interleaved(tmp_path):
    rgb = np.random.default_rng(3).integers(0, 255, (520, 300, 3), dtype=np.uint8)
    path = io.write(tmp_path / "rgb.ome.tif", rgb)
    with tifffile.TiffFile(path) as tif:
        levels = tif.series[0].levels
        assert tif.series[0].axes == "YXS" and [lv.shape for lv in levels][1] == (260, 150, 3)
        np.testing.assert_array_equal(levels[1].asarray(), rgb[::2, ::2])
    np.testing.assert_array_equal(_quiet_read(path).data, rgb.astype(np.float32))


@pytest.mark.parametrize("ext", [".tif", ".ome.tif"])
def test_small_images_and_stacks_are_written_as_before(tmp_path, ext):
    """Up to PYRAMID_MIN_SIDE on both sides, and any stack, stays one strip-organised,
    uncompressed image with no SubIFDs."""
    for name, array, kwargs in [
        ("side", np.zeros((MIN_SIDE, 300), np.int32), {}),
        ("small", np.ones((40, 50, 2), np.float32), {}),
        ("stack", np.zeros((2, 600, 700), np.int32), {"stack_axes": "T"}),
    ]:
        path = io.write(tmp_path / f"{name}{ext}", array, **kwargs)
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            assert not page.is_tiled and not page.subifds and not tif.is_bigtiff
            assert page.compression == tifffile.COMPRESSION.NONE
            assert len(tif.series[0].levels) == 1
    path = io.write(tmp_path / f"over{ext}", np.zeros((MIN_SIDE + 1, 300), np.int32))
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].is_tiled and len(tif.pages[0].subifds) == 3  # 257, 129, 65 rows
