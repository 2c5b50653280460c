"""sciconv.io.write takes what notebook users hold (QA inputs): a CCDData keeps its WCS, unit and
mask; a channel-first cube is refused, not written as W planes of C x H; 64-bit integer labels
and float16 go to OME-TIFF in a type OME stores, or are refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from _helpers import tan_wcs
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.wcs import WCS

from sciconv import io
from sciconv.errors import InvalidImageError


def test_a_ccddata_is_written_with_its_wcs_unit_and_mask(tmp_path):
    data = np.arange(40 * 50, dtype=np.float32).reshape(40, 50)
    mask = np.zeros(data.shape, bool)
    mask[:3] = True
    ccd = CCDData(data, unit="electron", wcs=tan_wcs(), mask=mask)
    out = io.write(tmp_path / "ccd.fits", ccd)
    header, written = fits.getheader(out), fits.getdata(out)
    assert WCS(header).has_celestial and header["CTYPE1"] == "RA---TAN"
    assert header["BUNIT"].strip().lower() in ("electron", "e-")
    assert np.isnan(written[mask]).all()
    np.testing.assert_array_equal(written[~mask], data[~mask])
    assert not np.isnan(data).any()  # the caller's array is left as it was


@pytest.mark.parametrize("name", ["cube.fits", "cube.tif", "cube.ome.tif"])
def test_a_channel_first_array_is_refused(tmp_path, name):
    rgb = np.zeros((3, 64, 80), np.uint8)
    with pytest.raises(InvalidImageError, match=r"channel-first.*np.moveaxis") as err:
        io.write(tmp_path / name, rgb)
    assert name in str(err.value)
    assert not list(tmp_path.iterdir())
    io.write(tmp_path / name, np.moveaxis(rgb, 0, -1))  # channels last: written
    assert io.read(tmp_path / name).shape == (64, 80, 3)


def test_ome_tiff_takes_int64_labels_and_float16_in_types_ome_stores(tmp_path):
    labels = np.zeros((20, 24), int)  # int64, as np.zeros(shape, int) gives
    labels[2:6, 2:6], labels[10:15, 10:20] = 1, 2**31 + 7  # past int32: uint32
    out = io.write(tmp_path / "labels.ome.tif", labels)
    stored = tifffile.imread(out)
    assert stored.dtype == np.uint32
    np.testing.assert_array_equal(stored, labels)
    small = io.write(tmp_path / "small.ome.tif", np.minimum(labels, 5))
    assert tifffile.imread(small).dtype == np.int32
    half = np.linspace(0, 1, 20 * 24, dtype=np.float16).reshape(20, 24)
    np.testing.assert_array_equal(tifffile.imread(io.write(tmp_path / "h.ome.tif", half)), half)
    huge = labels.copy()
    huge[0, 0] = 2**40
    with pytest.raises(InvalidImageError, match=r"huge\.ome\.tif.*\.tif, \.fits or OME-Zarr"):
        io.write(tmp_path / "huge.ome.tif", huge)
    assert not (tmp_path / "huge.ome.tif").exists()


def test_an_imagej_calibration_in_inches_reads_in_micrometres(tmp_path):
    # ImageJ records unit=inch for a 72-dpi TIFF it re-saves: no measurement, like plain TIFF;
    # a real inch calibration is a length, in µm (OME has no "inch"; astropy parses none)
    screen = tmp_path / "screen.tif"
    tifffile.imwrite(
        screen, np.zeros((8, 8), np.uint16), imagej=True, resolution=(72.0, 72.0),
        metadata={"unit": "inch"},
    )  # fmt: skip
    assert io.read(screen).pixel_scale is None
    scanned = tmp_path / "scanned.tif"
    tifffile.imwrite(
        scanned, np.zeros((8, 8), np.uint16), imagej=True, resolution=(25400.0, 25400.0),
        metadata={"unit": "inch"},
    )  # fmt: skip
    scale = io.read(scanned).pixel_scale
    assert scale is not None and scale.unit == "um"
    assert scale.y == pytest.approx(1.0) and scale.x == pytest.approx(1.0)
