"""write_ome_zarr keeps a GridImage's channel names as OME-TIFF does (QA55 #6), and says how to
write a stack it cannot store."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("ome_zarr")
tifffile = pytest.importorskip("tifffile")

from sciconv import io  # noqa: E402
from sciconv.errors import ConfigError, InvalidImageError  # noqa: E402


@pytest.fixture
def two_channels(tmp_path):
    """A 2-channel OME-TIFF (DAPI, GFP), 0.325 µm pixels, read back."""
    pixels = (np.random.default_rng(0).random((2, 48, 40)) * 255).astype(np.uint8)
    path = tmp_path / "two.ome.tif"
    tifffile.imwrite(
        path,
        pixels,
        ome=True,
        photometric="minisblack",
        metadata={"axes": "CYX", "PhysicalSizeX": 0.325, "PhysicalSizeY": 0.325,
                  "Channel": {"Name": ["DAPI", "GFP"]}},
    )  # fmt: skip
    img = io.read(path)
    assert img.meta["channel_names"] == ["DAPI", "GFP"]
    return img


def _ngff(store):
    return json.loads((store / "zarr.json").read_text(encoding="utf-8"))["attributes"]["ome"]


def test_channel_names_of_the_image_are_written_and_read_back(two_channels, tmp_path):
    store = io.write_ome_zarr(tmp_path / "two.ome.zarr", two_channels)
    attrs = _ngff(store)
    assert [c["label"] for c in attrs["omero"]["channels"]] == ["DAPI", "GFP"]
    axes = attrs["multiscales"][0]["axes"]
    assert [(a["name"], a["type"]) for a in axes] == [("c", "channel"), ("y", "space"),
                                                      ("x", "space")]  # fmt: skip
    back = io.read(store)
    assert back.meta["channel_names"] == ["DAPI", "GFP"]
    assert back.pixel_scale.x == pytest.approx(0.325)
    np.testing.assert_array_equal(back.data, two_channels.data)
    # an array with like= takes them too
    again = io.write_ome_zarr(tmp_path / "like.ome.zarr", two_channels.data, like=two_channels)
    assert io.read(again).meta["channel_names"] == ["DAPI", "GFP"]


def test_given_names_win_and_a_count_that_differs_writes_none(two_channels, tmp_path):
    store = io.write_ome_zarr(tmp_path / "a.ome.zarr", two_channels, channel_names=["n", "g"])
    assert io.read(store).meta["channel_names"] == ["n", "g"]
    # one channel written with the 2-channel image's pixel size: no names, no error
    one = io.write_ome_zarr(tmp_path / "b.ome.zarr", two_channels.data[..., :1],
                            like=two_channels)  # fmt: skip
    assert "omero" not in _ngff(one)
    assert "channel_names" not in io.read(one).meta
    with pytest.raises(ConfigError, match="one name per channel"):
        io.write_ome_zarr(tmp_path / "c.ome.zarr", two_channels, channel_names=["DAPI"])
    assert not (tmp_path / "c.ome.zarr").exists()


def test_a_stack_is_refused_saying_how_to_write_it(tmp_path):
    stack = np.zeros((3, 32, 32, 1), np.uint16)
    target = tmp_path / "z.ome.zarr"
    with pytest.raises(InvalidImageError, match=r"stack of 3 planes") as err:
        io.write_ome_zarr(target, stack)
    message = str(err.value)
    assert "z.ome.zarr" in message and "array[i]" in message and 'stack_axes="Z"' in message
    assert not target.exists()
    # the advice works: the stack as OME-TIFF keeps its planes
    written = io.write(tmp_path / "z.ome.tif", stack, stack_axes="Z")
    assert io.read(written, stack=True).shape == (3, 32, 32, 1)
