"""Compressed and tiled TIFF (whole slides, OME-TIFF exports) read window by window: only the
tiles a window touches are decoded, through tifffile's zarr store."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile

from sciconv import io
from sciconv.errors import InvalidImageError, SciconvWarning

pytest.importorskip("zarr")


def _quiet_read(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciconvWarning)
        return io.read(path, **kwargs)


@pytest.fixture
def slide(tmp_path):
    """A 512 x 640 RGB image stored in deflate-compressed 128 x 128 tiles."""
    rgb = np.random.default_rng(0).integers(0, 255, (512, 640, 3), dtype=np.uint8)
    path = tmp_path / "slide.tif"
    tifffile.imwrite(path, rgb, tile=(128, 128), compression="zlib", photometric="rgb")
    return path, rgb


def test_tiled_tiff_reads_window_by_window(slide):
    path, rgb = slide
    img = _quiet_read(path, lazy=True)  # no "read into memory" note
    assert type(img.data).__name__ == "LazyImage" and img.shape == (512, 640, 3)
    assert img.meta["chunks"] == (128, 128, 3)
    np.testing.assert_array_equal(img.data[100:300, 250:420], rgb[100:300, 250:420])
    np.testing.assert_array_equal(np.asarray(img.data), rgb)
    sec = _quiet_read(path, section=(slice(5, 133), slice(600, 640)))
    np.testing.assert_array_equal(sec.data, rgb[5:133, 600:640])
    img.data.close()
    with pytest.raises(InvalidImageError, match="LazyImage was closed"):
        img.data[0:2, 0:2]


def test_only_the_tiles_a_window_touches_are_decoded(slide):
    """A damaged tile far from the window does not stop the window from reading (nothing else
    decodes it); the whole image, and a window over that tile, fail naming the file."""
    path, rgb = slide
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        offsets, counts = page.dataoffsets, page.databytecounts
    last = len(offsets) - 1  # the bottom-right tile
    raw = bytearray(path.read_bytes())
    raw[offsets[last] : offsets[last] + counts[last]] = b"\xff" * counts[last]
    path.write_bytes(bytes(raw))
    img = _quiet_read(path, lazy=True)
    np.testing.assert_array_equal(img.data[0:256, 0:256], rgb[0:256, 0:256])
    with pytest.raises(InvalidImageError, match=r"slide\.tif: cannot decode TIFF pixels"):
        img.data[500:510, 630:640]
    img.data.close()
    with pytest.raises(InvalidImageError, match=r"slide\.tif"):
        io.read(path)


def test_strips_pyramids_and_files_in_one_piece(tmp_path):
    grey = np.random.default_rng(1).integers(0, 4000, (300, 200), dtype=np.uint16)
    strips = tmp_path / "strips.tif"  # LZW in strips of 16 rows: a window decodes its strips
    tifffile.imwrite(strips, grey, compression="lzw", rowsperstrip=16)
    img = _quiet_read(strips, lazy=True)
    assert img.meta["chunks"] == (16, 200)
    np.testing.assert_array_equal(img.data[40:90, 10:30, 0], grey[40:90, 10:30])
    img.data.close()
    pyramid = tmp_path / "pyramid.ome.tif"  # the full-resolution level of an OME pyramid
    with tifffile.TiffWriter(pyramid, ome=True) as w:
        w.write(grey, tile=(64, 64), compression="zlib", subifds=1)
        w.write(grey[::2, ::2], tile=(64, 64), compression="zlib", subfiletype=1)
    img = _quiet_read(pyramid, lazy=True)
    assert img.shape == (300, 200, 1)
    np.testing.assert_array_equal(img.data[250:300, 150:200, 0], grey[250:300, 150:200])
    img.data.close()
    whole = tmp_path / "whole.tif"  # one compressed strip: decoded once, with a note
    tifffile.imwrite(whole, grey, compression="zlib", rowsperstrip=300)
    with pytest.warns(SciconvWarning, match="cannot be read window by window .* in one piece"):
        img = io.read(whole, lazy=True)
    np.testing.assert_array_equal(img.data[1:3, 2:4, 0], grey[1:3, 2:4])


def test_jpeg_tiled_slide_segments_block_by_block_as_in_memory(tmp_path):
    """A JPEG-tiled RGB slide (how scanners store them) segmented block by block from the lazy
    file gives the labels of the same pixels segmented in memory."""
    import keras

    from sciconv import inference

    rng = np.random.default_rng(2)
    rgb = np.full((384, 384, 3), 30, np.uint8)
    for y, x in rng.integers(10, 374, (40, 2)):
        rgb[max(y - 5, 0) : y + 5, max(x - 5, 0) : x + 5] = 220
    path = tmp_path / "he.tif"
    tifffile.imwrite(path, rgb, tile=(128, 128), compression="jpeg", photometric="rgb")
    decoded = tifffile.imread(path)  # JPEG is lossy: compare with what the file holds
    inputs = keras.Input((None, None, 3))
    logits = keras.layers.Conv2D(  # foreground where the mean of R, G, B is above 125
        2,
        1,
        kernel_initializer=keras.initializers.Constant([[[[-1 / 30, 1 / 30]] * 3]]),
        bias_initializer=keras.initializers.Constant([12.5, -12.5]),
    )(inputs)
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    lazy = _quiet_read(path, lazy=True)
    blocks = inference.predict_instances(model, lazy, normalize=None, block=128, progress=False)
    whole = inference.predict_instances(model, decoded, normalize=None, progress=False)
    assert int(whole.max()) > 20
    np.testing.assert_array_equal(blocks > 0, whole > 0)
    assert int(blocks.max()) == int(whole.max())
    lazy.data.close()


def test_lazy_tiled_tiff_travels_to_worker_processes(slide):
    """A dask.distributed worker process gets the lazy image pickled: the open file stays behind
    and the copy opens the file itself (before, only an image read whole into memory could be
    shipped)."""
    cloudpickle = pytest.importorskip("cloudpickle")
    path, rgb = slide
    img = _quiet_read(path, lazy=True)
    img.data[0:2, 0:2]  # the original has the file open
    copy = cloudpickle.loads(cloudpickle.dumps(img.data))
    img.data.close()  # closing the original does not close the copy
    np.testing.assert_array_equal(copy[300:400, 10:90], rgb[300:400, 10:90])
    copy.close()
