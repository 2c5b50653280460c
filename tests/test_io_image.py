"""sciconv.io._image: as_array, the one way every stage unwraps an image."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sciconv import io
from sciconv.errors import ConfigError


@pytest.fixture
def lazy_fits(tmp_path):
    path = tmp_path / "a.fits"
    io.write(path, np.arange(20, dtype=np.int16).reshape(4, 5))
    img = io.read(path, lazy=True)
    yield img
    img.data.close()


def test_gridimage_gives_its_data():
    x = np.zeros((4, 5, 1), np.float32)
    assert io.as_array(io.GridImage(x)) is x
    assert io.as_array(io.GridImage(x), load=True) is x


def test_nddata_and_ccddata_give_their_data():
    from astropy.nddata import CCDData, NDData

    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert io.as_array(NDData(x)) is x
    ccd = CCDData(x, unit="adu", mask=x > 5)
    out = io.as_array(ccd, load=True)
    assert type(out) is np.ndarray
    # its masked pixels are bad pixels, NaN, as a masked array's (QA inputs: ignored, they set
    # the stretch of normalize and show); the CCDData's own pixels are left as they were
    np.testing.assert_array_equal(out, np.where(x > 5, np.nan, x))
    assert np.isfinite(ccd.data).all()


def test_arrays_pass_through_unchanged(tmp_path):
    x = np.ones((2, 3), np.uint8)
    assert io.as_array(x) is x and io.as_array(x, load=True) is x
    mm = np.memmap(tmp_path / "m.raw", dtype=np.float32, mode="w+", shape=(3, 4))
    assert io.as_array(mm) is mm
    loaded = io.as_array(mm, load=True)
    assert type(loaded) is np.ndarray and loaded.shape == (3, 4)
    assert io.as_array([[1, 2]]) == [[1, 2]]
    np.testing.assert_array_equal(io.as_array([[1, 2]], load=True), np.array([[1, 2]]))


def test_lazy_image_is_read_only_with_load(lazy_fits):
    lazy = lazy_fits.data
    assert io.as_array(lazy) is lazy
    assert io.as_array(lazy_fits) is lazy
    for value in (lazy, lazy_fits):
        out = io.as_array(value, load=True)
        assert type(out) is np.ndarray and out.dtype == np.float32 and out.shape == (4, 5, 1)
        np.testing.assert_array_equal(out[..., 0], np.arange(20).reshape(4, 5))


def test_dask_array_is_computed_only_with_load():
    import dask.array as da

    x = da.arange(12, chunks=5).reshape(3, 4)
    assert io.as_array(x) is x
    out = io.as_array(x, load=True)
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, np.arange(12).reshape(3, 4))


@pytest.mark.parametrize("load", [1, "yes", None])
def test_load_must_be_a_bool(load):
    with pytest.raises(ConfigError, match=r"load must be True or False; got"):
        io.as_array(np.zeros(2), load=load)


def test_import_and_as_array_stay_light():
    """``import sciconv.io`` and as_array on arrays import neither TensorFlow nor astropy.nddata."""
    code = (
        "import sys, numpy as np, sciconv.io as io\n"
        "io.as_array(np.zeros(3)); io.as_array(np.zeros(3), load=True)\n"
        "bad = [m for m in ('tensorflow', 'keras', 'astropy.nddata') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- pixel scale (issue 17)


def _sky_wcs(cd):
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [3.0, 2.0]
    w.wcs.cd = np.asarray(cd) / 3600.0
    return w


def test_pixel_scale_from_a_fits_wcs_non_square_and_rotated(tmp_path):
    from sciconv.io import PixelScale, read_pixel_scale

    # x pixels 0.1", y pixels 0.3", rotated by 30 degrees: the scale is per pixel axis
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    cd = np.array([[-c, s], [s, c]]) @ np.diag([0.1, 0.3])
    img = io.GridImage(np.zeros((4, 6, 1), np.float32), wcs=_sky_wcs(cd))
    assert img.pixel_scale == PixelScale(0.3, 0.1, "arcsec")
    path = io.write(tmp_path / "sky.fits", img)
    assert io.read(path).pixel_scale == PixelScale(0.3, 0.1, "arcsec")
    assert read_pixel_scale(path) == PixelScale(0.3, 0.1, "arcsec")
    assert io.read(path).cutout(1, 3, 2, 5).pixel_scale == PixelScale(0.3, 0.1, "arcsec")
    assert img.to_nddata().wcs is not None
    assert io.GridImage.from_nddata(img.to_nddata()).pixel_scale == img.pixel_scale


def test_no_pixel_scale_without_celestial_wcs_or_calibration(tmp_path):
    from astropy.wcs import WCS

    from sciconv.io import PixelScale, read_pixel_scale

    linear = WCS(naxis=2)  # e.g. a detector or a spectral plane: no sky angle per pixel
    linear.wcs.ctype = ["LINEAR", "WAVE"]
    assert PixelScale.from_wcs(linear) is None
    assert io.GridImage(np.zeros((2, 2, 1)), wcs=None).pixel_scale is None
    assert (
        io.GridImage(
            np.zeros((2, 2, 1)), meta={"pixel_size": (1.0, 1.0), "pixel_unit": "pixel"}
        ).pixel_scale
        is None
    )
    plain = io.write(tmp_path / "plain.fits", np.zeros((3, 3), np.float32))
    assert io.read(plain).pixel_scale is None and read_pixel_scale(plain) is None
    png = io.write(tmp_path / "a.png", np.zeros((3, 3), np.uint8))
    assert read_pixel_scale(png) is None


def test_pixel_scale_set_by_hand_wins():
    import astropy.units as u

    from sciconv.io._image import PixelScale

    img = io.GridImage(
        np.zeros((2, 2, 1)),
        wcs=_sky_wcs(np.diag([-0.1, 0.1])),
        meta={"pixel_scale": 0.05 * u.arcsec},
    )
    assert img.pixel_scale == PixelScale(0.05, 0.05, "arcsec")


def test_pixel_scale_validation_and_conversion():
    import astropy.units as u

    from sciconv.io._image import PixelScale

    s = PixelScale(0.65, 0.325, "micron")
    assert s.unit == "um" and s.to("nm") == PixelScale(650, 325, "nm")
    assert s.mean == pytest.approx(np.sqrt(0.65 * 0.325))
    assert PixelScale.from_value(s.to_dict()) == s
    assert PixelScale.from_value([0.65, 0.325] * u.um) == s
    assert PixelScale.from_value((0.65, 0.325, "µm")) == s
    with pytest.raises(ConfigError, match="positive number; got -1"):
        PixelScale(-1, 1, "um")
    with pytest.raises(ConfigError, match=r"length or angle.*'adu'"):
        PixelScale(1, 1, "adu")
    with pytest.raises(ConfigError, match="cannot be expressed in arcsec"):
        s.to("arcsec")
    with pytest.raises(ConfigError, match="a number needs its unit"):
        PixelScale.from_value(0.5)


def test_nddata_unit_reads_the_bunit_spellings_of_real_files(data_dir, tmp_path):
    """HST writes BUNIT = 'ELECTRONS'; to_nddata gave UnrecognizedUnit(ELECTRONS), which no
    conversion accepts. Now the unit is the one astropy's own CCDData.read gives, and the other
    pipeline spellings read too; an unreadable one warns, naming the file."""
    from astropy import units as u
    from astropy.io import fits
    from astropy.nddata import CCDData

    from sciconv import io
    from sciconv.errors import SciconvWarning

    real = data_dir / "real" / "hst" / "j8bt06nyq_sci_cutout.fits"
    nd = io.read(real).to_nddata(ccd=True)
    assert nd.unit == CCDData.read(real).unit == u.electron
    assert (3 * nd.unit).to(u.electron).value == 3
    for bunit, unit in (
        ("ELECTRONS/S", u.electron / u.s),
        ("COUNTS", u.count),
        ("counts/sec", u.count / u.s),
        ("ADU", u.adu),
        ("MJy/sr", u.MJy / u.sr),
        ("1e-17 erg/s/cm^2/Angstrom", 1e-17 * u.erg / u.s / u.cm**2 / u.AA),
    ):
        path = tmp_path / "u.fits"
        fits.writeto(
            path, np.ones((4, 5), np.float32), fits.Header({"BUNIT": bunit}), overwrite=True
        )
        assert io.read(path).to_nddata().unit == unit, bunit
    fits.writeto(
        path, np.ones((4, 5), np.float32), fits.Header({"BUNIT": "furlongs"}), overwrite=True
    )
    with pytest.warns(SciconvWarning, match=r"u\.fits: BUNIT 'furlongs'"):
        assert isinstance(io.read(path).to_nddata().unit, u.UnrecognizedUnit)


def test_radio_and_flux_density_bunits_read_and_an_unknown_one_warns_once(tmp_path):
    """AIPS/CASA write JY/BEAM, Spitzer-style capitals MJY/SR (unread before, warned on every
    ``.unit``); HST/SDSS/MUSE write erg/s/cm2/A meaning Angstrom (read as ampere before); CASA
    moment-0 maps JY/BEAM.KM/S (unread, or Jy / (beam km s) in lower case)."""
    from astropy import units as u
    from astropy.io import fits

    from sciconv import io
    from sciconv.errors import SciconvWarning

    flam = u.erg / u.s / u.cm**2 / u.AA
    path = tmp_path / "r.fits"
    for bunit, unit in (
        ("JY/BEAM", u.Jy / u.beam),
        ("Jy/beam", u.Jy / u.beam),
        ("MJY/SR", u.MJy / u.sr),
        ("mJy/beam", u.mJy / u.beam),
        ("JY/PIXEL", u.Jy / u.pix),
        ("erg/s/cm2/A", flam),
        ("ERG/S/CM2/A", flam),
        ("1E-20 erg/s/cm2/A", 1e-20 * flam),
        ("A", u.A),  # a current stays a current
        ("erg/s/cm2/A/arcsec2", flam / u.arcsec**2),  # a surface brightness per wavelength
        ("mJY/BEAM", u.mJy / u.beam),
        # radio moment maps: (Jy/beam) (km/s), which the FITS grammar reads Jy / (beam km s)
        ("JY/BEAM.KM/S", u.Jy / u.beam * u.km / u.s),
        ("Jy/beam km/s", u.Jy / u.beam * u.km / u.s),
        ("mJy/beam.km/s", u.mJy / u.beam * u.km / u.s),
        ("K.KM/S", u.K * u.km / u.s),
        ("M/S", u.m / u.s),  # a velocity (moment-1) map in capitals
        ("KM/S", u.km / u.s),
    ):
        fits.writeto(
            path, np.ones((4, 5), np.float32), fits.Header({"BUNIT": bunit}), overwrite=True
        )
        assert io.read(path).unit == unit, bunit
    fits.writeto(
        path, np.ones((4, 5), np.float32), fits.Header({"BUNIT": "parsecs"}), overwrite=True
    )
    img = io.read(path)
    with pytest.warns(SciconvWarning, match="BUNIT 'parsecs'") as said:
        img.unit, img.unit, img.to_nddata()
    assert len(said) == 1
    fits.writeto(  # an unread unit before a velocity: said once, as written (review)
        path, np.ones((4, 5), np.float32), fits.Header({"BUNIT": "FOO.KM/S"}), overwrite=True
    )
    with pytest.warns(SciconvWarning, match="BUNIT 'FOO.KM/S'") as said:
        _ = io.read(path).unit
    assert len(said) == 1


def test_cutout_cuts_an_nddata_uncertainty_like_the_pixels():
    """A cutout of an image from a CCDData keeps error bars aligned with its pixels (the full
    (64, 80) uncertainty was carried onto a (32, 40) cutout, value for value misaligned)."""
    from astropy.nddata import CCDData, StdDevUncertainty

    data = np.arange(64 * 80, dtype=np.float32).reshape(64, 80)
    ccd = CCDData(data, unit="electron", uncertainty=StdDevUncertainty(np.sqrt(data)))
    out = io.GridImage.from_nddata(ccd).cutout(10, 42, 40, 80).to_nddata(ccd=True)
    assert isinstance(out.uncertainty, StdDevUncertainty)
    assert out.uncertainty.array.shape == out.data.shape == (32, 40)
    np.testing.assert_array_equal(out.uncertainty.array, np.sqrt(data[10:42, 40:80]))


def test_an_nddata_round_trip_keeps_its_own_meta_and_its_whole_wcs():
    """QA: an NDData's meta dict (not FITS cards) was kept by from_nddata but to_nddata gave
    {}; a cube's FREQ axis and a long slit's WAVE x OFFSET WCS were dropped silently, and
    to_ccddata refused the slit ('ra/dec need a celestial WCS', none asked for)."""
    from astropy.nddata import NDData
    from astropy.wcs import WCS

    from sciconv import postprocess

    meta = {"pipeline": {"version": "1.2"}, "observer": "me"}
    cube = WCS(naxis=3)
    cube.wcs.ctype = ["RA---TAN", "DEC--TAN", "FREQ"]
    cube.wcs.cdelt = [-1e-4, 1e-4, 1e6]
    nd = NDData(np.ones((3, 16, 16)), wcs=cube, meta=meta)
    img = io.GridImage.from_nddata(nd)
    assert img.wcs.naxis == 2  # sciconv reads the celestial axes
    back = img.to_nddata()
    assert back.meta == meta and list(back.wcs.wcs.ctype) == ["RA---TAN", "DEC--TAN", "FREQ"]
    slit = WCS(naxis=2)
    slit.wcs.ctype = ["WAVE", "OFFSET"]
    slit.wcs.cdelt = [1e-10, 0.1]
    nd = NDData(np.ones((16, 20)), wcs=slit)
    assert io.GridImage.from_nddata(nd).wcs is None
    assert list(io.GridImage.from_nddata(nd).to_nddata().wcs.wcs.ctype) == ["WAVE", "OFFSET"]
    ccd = postprocess.to_ccddata(np.zeros((16, 20, 2), np.float32), like=nd)
    assert list(ccd.wcs.wcs.ctype) == ["WAVE", "OFFSET"]
    # a cutout is not the NDData's geometry: its own (celestial) WCS, not the whole one (review)
    part = io.GridImage.from_nddata(NDData(np.ones((3, 16, 16)), wcs=cube)).cutout(2, 10, 4, 12)
    assert part.to_nddata().wcs.naxis == 2


def test_a_header_with_an_unparsable_bunit_has_no_unit():
    """Review: GridImage.unit read the header's BUNIT directly; an unquoted BUNIT = Jy/beam
    made astropy raise VerifyError and sciconv predict end with 'unexpected VerifyError'."""
    from astropy.io import fits

    header = fits.Header.fromstring("BUNIT   = Jy/beam" + " " * 63, sep="")
    img = io.GridImage(np.ones((4, 4, 1), np.float32), header=header)
    assert img.unit is None


def test_flux_density_per_wavelength_bunit_is_angstrom_without_astropys_type_names(monkeypatch):
    """astropy 6.0 names no "surface brightness wav" physical type: erg/s/cm2/A/arcsec2 was
    read in amperes there (QA floors). The Angstrom is decided by unit equivalence, so it holds
    whatever physical types astropy names."""
    from astropy import units as u

    from sciconv.io._units import fits_unit

    monkeypatch.setattr(u.UnitBase, "physical_type", property(lambda self: "unknown"))
    flam = u.erg / u.s / u.cm**2 / u.AA
    assert fits_unit("erg/s/cm2/A/arcsec2") == flam / u.arcsec**2
    assert fits_unit("ERG/S/CM2/A") == flam
    assert fits_unit("erg/s/cm2/A/pix") == u.erg / u.s / u.cm**2 / u.A / u.pix  # no guess
    assert fits_unit("A") == u.A
