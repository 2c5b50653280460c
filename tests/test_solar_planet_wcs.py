"""Images whose celestial axes are not the night sky: the Sun (helioprojective, heliographic),
a planet or the Earth. Whether a catalog gets ICRS ra/dec is decided by the axis types, never by
which frames some imported package (SunPy) taught astropy to transform to ICRS (QA: after
``import sunpy.map`` an AIA image's catalog got ra/dec 100-180 degrees from the Sun, and its
DS9 regions died with a bare ``KeyError: 'helioprojective'``)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS

from sciconv import postprocess
from sciconv.errors import SciconvWarning
from sciconv.io._scale import off_sky_frame

SOLAR = {"HPLN": "helioprojective", "HGLN": "heliographic Stonyhurst"}
SOLAR |= {"CRLN": "heliographic Carrington"}


def _wcs(ctypes, cunit="deg", cdelt=0.01, radius=None):
    w = WCS(naxis=2)
    w.wcs.ctype = ctypes
    w.wcs.cunit = [cunit, cunit]
    w.wcs.cdelt = [cdelt, cdelt]
    w.wcs.crpix = [20, 20]
    w.wcs.crval = [10.0, 5.0]
    w.wcs.dateobs = "2011-02-15T00:00:00"
    if radius is not None:  # a planet's axes need its radii to be read by astropy
        w.wcs.aux.a_radius = w.wcs.aux.b_radius = w.wcs.aux.c_radius = radius
    w.wcs.set()
    return w


def _labels():
    labels = np.zeros((40, 40), np.int32)
    labels[8:14, 10:16] = 1
    labels[25:31, 22:30] = 2
    return labels


@pytest.fixture
def solar_frames_reach_icrs(monkeypatch):
    """What ``import sunpy.map`` does, without SunPy: a frame named ``helioprojective``, read
    from HPLN/HGLN/CRLN axes through astropy's WCS frame mappings, with a transformation to ICRS
    (here the identity), removed again afterwards."""
    from astropy.coordinates import (
        ICRS,
        BaseCoordinateFrame,
        StaticMatrixTransform,
        UnitSphericalRepresentation,
        frame_transform_graph,
    )
    from astropy.wcs import utils

    class StandInHelioprojective(BaseCoordinateFrame):
        name = "helioprojective"
        default_representation = UnitSphericalRepresentation

    frame_transform_graph.add_transform(
        StandInHelioprojective, ICRS, StaticMatrixTransform(np.eye(3), StandInHelioprojective, ICRS)
    )

    def mapping(wcs):
        code = str(wcs.wcs.ctype[0])[:4].upper()
        return StandInHelioprojective() if code in SOLAR else None

    monkeypatch.setattr(utils, "WCS_FRAME_MAPPINGS", [[mapping], *utils.WCS_FRAME_MAPPINGS])
    yield StandInHelioprojective
    frame_transform_graph.remove_transform(StandInHelioprojective, ICRS, None)


@pytest.mark.parametrize("lon", sorted(SOLAR))
def test_a_solar_wcs_gets_no_ra_dec_though_a_package_made_it_reach_icrs(
    solar_frames_reach_icrs, lon
):
    wcs = _wcs([f"{lon}-TAN", f"{lon[:2]}LT-TAN"])
    assert wcs.pixel_to_world(19, 19).icrs.ra.deg == pytest.approx(10.0)  # it reaches ICRS
    match = rf"{lon}-TAN.*are {SOLAR[lon]} coordinates.*no transformation to ICRS.*ra/dec left out"
    with pytest.warns(SciconvWarning, match=match):
        table = postprocess.measure(_labels(), intensity=np.ones((40, 40)), wcs=wcs)
    assert len(table) == 2 and not {"ra", "dec"} & set(table.colnames)
    np.testing.assert_allclose(table["x"], [12.5, 25.5])


def test_regions_of_a_solar_wcs_that_reaches_icrs_are_pixel_regions(
    solar_frames_reach_icrs, tmp_path
):
    """QA: the DS9 writer raised a bare KeyError: 'helioprojective' and wrote nothing."""
    from regions import Regions

    wcs = _wcs(["HPLN-TAN", "HPLT-TAN"], cunit="arcsec", cdelt=19.18)
    with pytest.warns(SciconvWarning, match=r"HPLN-TAN.*helioprojective.*pixel regions written"):
        path = postprocess.write_regions(_labels(), tmp_path / "sun.reg", wcs=wcs)
    text = path.read_text()
    assert "image" in text and "helioprojective" not in text and "fk5" not in text
    back = Regions.read(path, format="ds9")
    assert [type(r).__name__ for r in back] == ["EllipsePixelRegion"] * 2
    np.testing.assert_allclose([back[0].center.x, back[0].center.y], [12.5, 10.5])


@pytest.mark.parametrize(
    ("ctypes", "radius", "frame"),
    [
        (["TLON-CAR", "TLAT-CAR"], None, "Earth body-fixed"),  # astropy: ITRS, which reaches ICRS
        (["MALN-CAR", "MALT-CAR"], 3396190.0, "Mars body-fixed"),
        (["SELN-CAR", "SELT-CAR"], 1737400.0, "Moon body-fixed"),
    ],
)
def test_a_body_fixed_wcs_gets_no_ra_dec(ctypes, radius, frame):
    wcs = _wcs(ctypes, radius=radius)
    with pytest.warns(SciconvWarning, match=rf"{ctypes[0]}.*are {frame} coordinates.*ra/dec left"):
        table = postprocess.measure(_labels(), wcs=wcs)
    assert len(table) == 2 and "ra" not in table.colnames


@pytest.mark.parametrize(
    ("ctypes", "frame"),
    [
        (["HPLN-TAN", "HPLT-TAN"], "helioprojective"),
        (["HPLT-TAN", "HPLN-TAN"], "helioprojective"),  # latitude first
        (["Solar-X", "Solar-Y"], "helioprojective"),  # Hinode XRT: not celestial to wcslib
        (["HGLN-CAR", "HGLT-CAR"], "heliographic Stonyhurst"),
        (["CRLN-CEA", "CRLT-CEA"], "heliographic Carrington"),
        (["MALN-CAR", "MALT-CAR"], "Mars body-fixed"),
        (["QQLN-CAR", "QQLT-CAR"], "QQLN/QQLT body-fixed"),
        (["ULON-CAR", "ULAT-CAR"], "ULON/ULAT"),
        (["RA---TAN", "DEC--TAN"], None),
        (["DEC--TAN", "RA---TAN"], None),
        (["GLON-CAR", "GLAT-CAR"], None),
        (["ELON-TAN", "ELAT-TAN"], None),
        (["SLON-TAN", "SLAT-TAN"], None),
        (["HLON-TAN", "HLAT-TAN"], None),
    ],
)
def test_off_sky_frame_is_read_from_the_axis_types(ctypes, frame):
    w = WCS(naxis=2)
    w.wcs.ctype = ctypes
    assert off_sky_frame(w) == frame


def test_sky_axes_keep_their_ra_dec(solar_frames_reach_icrs):
    from astropy.coordinates import SkyCoord

    for ctypes in (["RA---TAN", "DEC--TAN"], ["GLON-TAN", "GLAT-TAN"]):
        wcs = _wcs(ctypes)
        table = postprocess.measure(_labels(), wcs=wcs)
        sky = wcs.pixel_to_world(np.asarray(table["x"]), np.asarray(table["y"])).icrs
        back = SkyCoord(table["ra"], table["dec"], unit="deg")
        assert np.all(back.separation(sky).arcsec < 1e-6)


@pytest.mark.parametrize(
    ("ctypes", "cunit", "radius", "labels"),
    [
        (
            ["HPLN-TAN", "HPLT-TAN"],
            "arcsec",
            None,
            [
                "Helioprojective longitude (Solar-X) [arcsec]",
                "Helioprojective latitude (Solar-Y) [arcsec]",
            ],
        ),
        (
            ["HGLN-CAR", "HGLT-CAR"],
            "deg",
            None,
            ["Stonyhurst longitude [deg]", "Stonyhurst latitude [deg]"],
        ),
        (
            ["CRLN-CEA", "CRLT-CEA"],
            "deg",
            None,
            ["Carrington longitude [deg]", "Carrington latitude [deg]"],
        ),
        (
            ["MALN-CAR", "MALT-CAR"],
            "deg",
            3396190.0,
            ["Mars longitude [deg]", "Mars latitude [deg]"],
        ),
        (["GLON-CAR", "GLAT-CAR"], "deg", None, ["Galactic longitude", "Galactic latitude"]),
    ],
)
def test_plots_label_solar_and_planetary_axes_readably(ctypes, cunit, radius, labels):
    """QA: astropy 8 reports ``custom:pos.helioprojective.lon``, which was the label."""
    from sciconv.viz._display import axes_for

    _fig, ax = axes_for(None, _wcs(ctypes, cunit=cunit, radius=radius))
    assert [c.get_axislabel() for c in ax.coords] == labels


def test_a_product_of_a_solar_nddata_keeps_its_wcs():
    """A CCDData product made like an NDData with a helioprojective WCS lost its WCS (with a
    misleading 'ra/dec left out' warning): a product keeps the map's own WCS."""
    import warnings

    from astropy.nddata import NDData

    wcs = _wcs(["HPLN-TAN", "HPLT-TAN"], cunit="arcsec", cdelt=0.6)
    like = NDData(np.zeros((40, 40), np.float32), wcs=wcs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to say: no ra/dec were asked for
        ccd = postprocess.to_ccddata(_labels(), like=like)
    assert list(ccd.wcs.wcs.ctype) == ["HPLN-TAN", "HPLT-TAN"]
    np.testing.assert_allclose(ccd.wcs.wcs.cdelt, wcs.wcs.cdelt)
