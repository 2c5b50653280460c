"""Pixel units as solar archives write them: SDO/AIA's ``PIXLUNIT`` where ``BUNIT`` is absent."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits

from sciconv.io import GridImage, read, unit_card, write
from sciconv.postprocess import effective_gain, measure


def _aia(path, **cards):
    """An AIA level-1-like file: a Rice-compressed image in HDU 1, its unit in PIXLUNIT."""
    data = np.full((48, 48), 10.0, np.float32)
    data[20:24, 20:24] += 500.0
    header = fits.Header({"PIXLUNIT": "DN", "EXPTIME": 2.9, "DN_GAIN": 17.7, **cards})
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header)]).writeto(path)
    return path


def _labels():
    labels = np.zeros((48, 48), np.int32)
    labels[19:25, 19:25] = 1
    return labels


@pytest.mark.parametrize("lazy", [False, True])
def test_pixlunit_is_the_unit_of_pixels_and_catalog_fluxes(tmp_path, lazy):
    img = read(_aia(tmp_path / "aia.fits"), lazy=lazy)
    assert img.unit == u.DN
    assert img.meta["bunit"] == "DN"
    cat = measure(_labels(), intensity=img)
    assert cat["flux_sum"].unit == u.DN
    assert cat["flux_sum"][0] == pytest.approx(36 * 10.0 + 16 * 500.0, rel=1e-4)  # Rice


def test_bunit_wins_over_pixlunit(tmp_path):
    img = read(_aia(tmp_path / "aia.fits", BUNIT="DN/s"))
    assert img.unit == u.DN / u.s
    assert unit_card(fits.Header({"BUNIT": " ", "PIXLUNIT": "DN/s"})) == "DN/s"


def test_header_of_a_grid_image_gives_its_pixlunit():
    img = GridImage(np.ones((4, 4, 1), np.float32), header=fits.Header({"PIXLUNIT": "DN/s"}))
    assert img.unit == u.DN / u.s


def test_products_drop_pixlunit_with_the_pixel_values(tmp_path):
    img = read(_aia(tmp_path / "aia.fits"))
    write(tmp_path / "labels.fits", _labels(), like=img)
    labels_header = fits.getheader(tmp_path / "labels.fits")
    assert "PIXLUNIT" not in labels_header and "BUNIT" not in labels_header
    assert "DN_GAIN" not in labels_header  # AIA's gain is true of DN, not of instance ids
    write(tmp_path / "twice.fits", img.data * 2, like=img)
    twice = fits.getheader(tmp_path / "twice.fits")
    assert twice["BUNIT"] == "DN" and "PIXLUNIT" not in twice  # one unit card, the standard's
    assert read(tmp_path / "twice.fits").unit == u.DN


def test_pixlunit_counts_as_a_stated_unit_for_the_gain(tmp_path):
    # An unreadable PIXLUNIT is a unit the file states: no gain is guessed for its pixels,
    # as for an unreadable BUNIT.
    img = read(_aia(tmp_path / "aia.fits", PIXLUNIT="furlongs per DN", GAIN=4.0))
    with pytest.warns(Warning, match="furlongs"):
        assert not isinstance(img.unit, u.UnitBase) or img.unit.physical_type == "unknown"
    assert effective_gain(img) is None
    assert effective_gain(read(_aia(tmp_path / "dn.fits", GAIN=4.0))) == 4.0  # DN: ADU-like
