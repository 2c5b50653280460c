"""With the _read.py / _image.py / _write.py diffs (QA55 #5, #6): sections of any format and
cutouts are placed in the full image; a plain TIFF keeps like's channel names."""

from __future__ import annotations

import numpy as np
import pytest

shapely_geometry = pytest.importorskip("shapely.geometry")
tifffile = pytest.importorskip("tifffile")

from sciconv import io  # noqa: E402
from sciconv.postprocess import labels_to_geojson, measure  # noqa: E402


@pytest.mark.parametrize("name", ["slide.tif", "slide.png", "slide.fits"])
def test_a_section_of_any_file_is_placed_in_the_full_image(tmp_path, name):
    pixels = np.zeros((64, 80), np.uint8)
    pixels[12:20, 32:40] = 200
    path = io.write(tmp_path / name, pixels)
    img = io.read(path, section=(slice(5, 40), slice(-60, None)))
    assert img.meta["section_origin"] == (5, 20)
    labels = (img.data[..., 0] > 100).astype(np.int32)
    fc = labels_to_geojson(labels, measurements=measure(labels), like=img)
    shape = shapely_geometry.shape(fc["features"][0]["geometry"])
    assert shape.bounds == (32.0, 12.0, 40.0, 20.0)
    assert fc["features"][0]["properties"]["measurements"]["x px"] == 36.0
    # a cutout of the section: still in the file's pixels
    cut = img.cutout(3, 30, 4, 40)
    assert cut.meta["section_origin"] == (8, 24)
    labels = (cut.data[..., 0] > 100).astype(np.int32)
    bounds = shapely_geometry.shape(labels_to_geojson(labels, like=cut)["features"][0]["geometry"])
    assert bounds.bounds == (32.0, 12.0, 40.0, 20.0)


def test_plain_tiff_keeps_like_channel_names(tmp_path):
    pixels = (np.random.default_rng(0).random((2, 32, 40)) * 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "two.ome.tif", pixels, ome=True, photometric="minisblack",
                     metadata={"axes": "CYX", "PhysicalSizeX": 0.325, "PhysicalSizeY": 0.325,
                               "Channel": {"Name": ["DAPI", "GFP"]}})  # fmt: skip
    img = io.read(tmp_path / "two.ome.tif")
    back = io.read(io.write(tmp_path / "two.tif", img.data, like=img))
    assert back.meta["channel_names"] == ["DAPI", "GFP"]
    assert back.pixel_scale.x == pytest.approx(0.325)
    # one plane written with the 2-channel image as like: no names
    one = io.read(io.write(tmp_path / "one.tif", img.data[..., :1], like=img))
    assert "channel_names" not in one.meta


def test_a_cutout_of_an_array_in_memory_is_placed_in_its_own_pixels():
    """Review: ``cutout`` recorded an origin on images with no file, so a GeoJSON of the
    cutout written as its own image landed off its objects."""
    img = io.GridImage(np.zeros((40, 50, 1), np.float32))
    cut = img.cutout(10, 30, 20, 40)
    assert "section_origin" not in cut.meta
    labels = np.zeros((20, 20), np.int32)
    labels[2:6, 3:9] = 1
    shape = shapely_geometry.shape(labels_to_geojson(labels, like=cut)["features"][0]["geometry"])
    assert shape.bounds == (3.0, 2.0, 9.0, 6.0)
