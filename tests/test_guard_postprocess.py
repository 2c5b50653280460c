"""Guards of the orientation of DS9/CRTF region ellipses (mutation-testing survivor a02).

a02: the ellipse of an object tilted 30 degrees (from +x towards +y) has the catalog's
orientation as its angle and holds the object's pixels, as a pixel region, in a DS9 file, and
as a sky region (DS9 and CASA .crtf) turned back into pixels.
"""

from __future__ import annotations

import numpy as np
import pytest

regions = pytest.importorskip("regions")
from astropy.wcs import WCS  # noqa: E402

from sciconv import postprocess  # noqa: E402

TILT = 30.0  # degrees, from +x towards +y


def _tilted_object():
    """One 41 x 13 px ellipse whose long axis points 30 degrees from +x towards +y."""
    yy, xx = np.mgrid[:80, :90].astype(float)
    dx, dy = xx - 45.0, yy - 38.0
    t = np.deg2rad(TILT)
    u = dx * np.cos(t) + dy * np.sin(t)  # along the long axis
    v = -dx * np.sin(t) + dy * np.cos(t)
    labels = ((u / 20.5) ** 2 + (v / 6.5) ** 2 <= 1).astype(np.int32)
    return labels


def _sky_wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [45.0, 40.0]
    w.wcs.cdelt = [-0.1 / 3600, 0.1 / 3600]  # north up, east left, as on the sky
    return w


def _inside(region, labels) -> float:
    yy, xx = np.nonzero(labels)
    return float(np.mean(region.contains(regions.PixCoord(xx, yy))))


def _angle_diff(a, b) -> float:
    """Difference of two ellipse angles in degrees (an ellipse is the same turned by 180)."""
    return abs((float(a) - float(b) + 90.0) % 180.0 - 90.0)


def test_pixel_ellipse_of_a_tilted_object_has_its_orientation_and_holds_its_pixels():
    labels = _tilted_object()
    row = postprocess.measure(labels)[0]
    assert float(row["orientation"]) == pytest.approx(TILT, abs=1.0)
    region = postprocess.to_regions(labels)[0]
    assert isinstance(region, regions.EllipsePixelRegion)
    assert _angle_diff(region.angle.to_value("deg"), row["orientation"]) < 1e-6
    assert _inside(region, labels) > 0.95
    # the mirrored ellipse (angle -30) would cross the object
    mirrored = regions.EllipsePixelRegion(
        region.center, region.width, region.height, angle=-region.angle
    )
    assert _inside(mirrored, labels) < 0.6


def test_ds9_file_of_a_tilted_object_keeps_its_angle(tmp_path):
    labels = _tilted_object()
    table = postprocess.measure(labels)
    path = postprocess.write_regions(table, tmp_path / "objects.reg")
    (back,) = regions.Regions.read(path, format="ds9")
    assert _angle_diff(back.angle.to_value("deg"), TILT) < 1.0
    assert _inside(back, labels) > 0.95


@pytest.mark.parametrize("suffix, fmt", [(".reg", "ds9"), (".crtf", "crtf")])
def test_sky_ellipse_of_a_tilted_object_holds_its_pixels_back_on_the_image(tmp_path, suffix, fmt):
    labels = _tilted_object()
    wcs = _sky_wcs()
    sky = postprocess.to_regions(labels, wcs=wcs)[0]
    assert isinstance(sky, regions.EllipseSkyRegion)
    pix = sky.to_pixel(wcs)
    assert _angle_diff(pix.angle.to_value("deg"), TILT) < 1.0
    assert _inside(pix, labels) > 0.95
    path = postprocess.write_regions(labels, tmp_path / f"objects{suffix}", wcs=wcs)
    (back,) = regions.Regions.read(path, format=fmt)
    back = back.to_pixel(wcs)
    assert _angle_diff(back.angle.to_value("deg"), TILT) < 1.0
    assert _inside(back, labels) > 0.95
