"""``io.read(..., uncertainty=FILE_OR_ARRAY, uncertainty_type=...)``: an error map served as a
file of its own.

QA 55 (finding 6): Legacy Surveys ``-invvar-``, unWISE ``-std-``, Pan-STARRS ``.wt``, Euclid
``RMS`` and DECam ``oow`` files hold the errors of an image beside it; ``read`` took a separate
mask but no separate error map, so catalogs fell back to the sky rms (``flux_err`` 6-10x small
for bright sources). The file must give exactly what an ``IVAR``/``VAR``/``ERR`` HDU in the
image's own file gives.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty
from astropy.wcs import WCS

from sciconv import io, postprocess
from sciconv.errors import ConfigError, InvalidImageError, SciconvWarning

SHAPE = (24, 32)


def _wcs_header(crval=(150.1, 2.2)) -> fits.Header:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(crval)
    w.wcs.crpix = [16.5, 12.5]
    w.wcs.cd = np.array([[-0.262 / 3600, 0], [0, 0.262 / 3600]])
    return w.to_header()


@pytest.fixture
def survey(tmp_path):
    """A Legacy Surveys-like pair (tile-compressed image and invvar, empty primaries, the same
    WCS and BUNIT) and the same data as one file with an IVAR HDU; invvar 0 on a patch."""
    rng = np.random.default_rng(5)
    image = rng.normal(1.0, 0.1, SHAPE).astype(np.float32)
    ivar = rng.uniform(50.0, 150.0, SHAPE).astype(np.float32)
    ivar[2:4, 5:9] = 0.0  # no data: an infinite error
    h = _wcs_header()
    h["BUNIT"] = "nanomaggy"
    sci = tmp_path / "legacysurvey-1501p022-image-r.fits.fz"
    err = tmp_path / "legacysurvey-1501p022-invvar-r.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(image, header=h)]).writeto(sci)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(ivar, header=h)]).writeto(err)
    image, ivar = fits.getdata(sci, 1), fits.getdata(err, 1)  # as RICE quantized them
    both = tmp_path / "one_file.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(image, header=h, name="SCI"),
         fits.ImageHDU(ivar, header=_wcs_header(), name="IVAR")]
    ).writeto(both)  # fmt: skip
    return sci, err, both, image, ivar


def _sigma(img):
    return postprocess.own_error(img).squeeze()


def test_an_invvar_file_gives_what_an_ivar_hdu_gives(survey):
    sci, err, both, _, ivar = survey
    inside = io.read(both)
    beside = io.read(sci, uncertainty=err, uncertainty_type="ivar")
    assert type(beside.meta["uncertainty"]) is type(inside.meta["uncertainty"]) is InverseVariance
    np.testing.assert_array_equal(
        beside.meta["uncertainty"].array, inside.meta["uncertainty"].array
    )
    # no measurement (invvar 0): NaN and masked, as with the HDU; the other pixels untouched
    np.testing.assert_array_equal(beside.mask, inside.mask)
    assert beside.mask[2:4, 5:9].all() and int(beside.mask.sum()) == 8
    np.testing.assert_array_equal(beside.data, inside.data)
    assert str(err) in beside.meta["uncertainty_from"]
    # the catalog's errors come from it: sqrt(sum 1/ivar) over an object's good pixels
    labels = np.zeros(SHAPE, np.int32)
    labels[10:16, 10:16] = 1
    table = postprocess.measure(labels, intensity=beside, background=0.0, error="auto")
    expected = np.sqrt(np.sum(1.0 / ivar[10:16, 10:16].astype(np.float64)))
    assert float(table["flux_err"][0]) == pytest.approx(expected, rel=1e-6)
    plain = postprocess.measure(labels, intensity=io.read(sci), background=0.0, error="auto")
    assert "flux_err" not in plain.colnames or float(plain["flux_err"][0]) != pytest.approx(
        expected, rel=1e-3
    )


@pytest.mark.parametrize(
    ("kind", "convert"),
    [("std", lambda s: s), ("var", lambda s: s**2), ("ivar", lambda s: 1 / s**2)],
)
def test_each_type_gives_the_same_standard_deviations(tmp_path, kind, convert):
    sigma = np.random.default_rng(1).uniform(0.5, 2.0, SHAPE)
    sci, err = tmp_path / "img.fits", tmp_path / "map.fits"
    fits.writeto(sci, np.ones(SHAPE, np.float32))
    fits.writeto(err, convert(sigma).astype(np.float64))
    img = io.read(sci, uncertainty=err, uncertainty_type=kind)
    np.testing.assert_allclose(_sigma(img), sigma, rtol=1e-6)  # read as float32 pixels


def test_the_type_is_read_from_the_file_and_recorded(tmp_path, survey):
    sci, err, *_ = survey
    img = io.read(sci, uncertainty=err)  # 'invvar' in its name
    assert isinstance(img.meta["uncertainty"], InverseVariance)
    assert "'invvar' in its name" in img.meta["uncertainty_from"]
    # an EXTNAME says it: unWISE/Euclid-like RMS extension, a name saying nothing
    rms = tmp_path / "tile_noise_map.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(np.full(SHAPE, 0.5, np.float32), header=_wcs_header(),
                                          name="RMS")]
    ).writeto(rms)  # fmt: skip
    img = io.read(sci, uncertainty=rms)
    assert isinstance(img.meta["uncertainty"], StdDevUncertainty)
    assert "EXTNAME 'RMS'" in img.meta["uncertainty_from"]
    # a BUNIT that is the image's squared: a variance
    var = tmp_path / "field_errors.fits"
    h = _wcs_header()
    h["BUNIT"] = "nanomaggy2"
    fits.writeto(var, np.full(SHAPE, 0.25, np.float32), h)
    img = io.read(sci, uncertainty=var)
    np.testing.assert_allclose(_sigma(img), 0.5)
    assert "BUNIT" in img.meta["uncertainty_from"]


def test_a_file_that_does_not_say_what_it_holds_is_refused(tmp_path, survey):
    sci, *_ = survey
    wt = tmp_path / "rings.v3.skycell.1234.056.stk.r.unconv.wt.fits"  # PS1: a variance
    fits.writeto(wt, np.ones(SHAPE, np.float32), _wcs_header())
    with pytest.raises(ConfigError, match=r"unconv\.wt\.fits: nothing says.*uncertainty_type"):
        io.read(sci, uncertainty=wt)
    given = io.read(sci, uncertainty=wt, uncertainty_type="var")
    assert isinstance(given.meta["uncertainty"], VarianceUncertainty)
    both = tmp_path / "x_invvar_std.fits"  # two words that disagree
    fits.writeto(both, np.ones(SHAPE, np.float32), _wcs_header())
    with pytest.raises(ConfigError, match=r"x_invvar_std\.fits: .*says different things"):
        io.read(sci, uncertainty=both)


def test_a_type_against_the_header_is_kept_with_a_warning(tmp_path, survey):
    sci, *_ = survey
    err = tmp_path / "e.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(np.full(SHAPE, 4.0, np.float32), name="IVAR")]
    ).writeto(err)
    with pytest.warns(SciconvWarning, match=r"e\.fits: read as standard deviation.*EXTNAME"):
        img = io.read(sci, uncertainty=err, uncertainty_type="std")
    np.testing.assert_allclose(_sigma(img), 4.0)


def test_section_and_lazy_reads_take_the_matching_window(survey):
    sci, err, _, _, ivar = survey
    whole = io.read(sci, uncertainty=err, uncertainty_type="ivar")
    section = (slice(1, 9), slice(4, 20))
    cut = io.read(sci, uncertainty=err, uncertainty_type="ivar", section=section)
    np.testing.assert_array_equal(_sigma(cut), _sigma(whole)[section])
    np.testing.assert_array_equal(cut.mask, whole.mask[section])
    lazy = io.read(sci, uncertainty=err, uncertainty_type="ivar", lazy=True, section=section)
    try:
        windows = lazy.meta["uncertainty_windows"]  # read window by window, as an ERR HDU's
        assert isinstance(windows, io.ErrorHDU) and "uncertainty" not in lazy.meta
        # float32 pixels, as an ERR HDU's windows (ErrorHDU.read) give them
        np.testing.assert_allclose(windows.read((0, 4), (2, 9)), _sigma(whole)[1:5, 6:13], 1e-6)
        assert postprocess.error_windows(lazy) is windows
        block = lazy.data[0:4, 0:8]  # rows 1-4, columns 4-11 of the file: ivar 0 at 2:4, 5:9
        np.testing.assert_array_equal(np.isnan(block[..., 0]), whole.mask[1:5, 4:12, 0])
        # a worker's copy opens both files itself
        copy = pickle.loads(pickle.dumps(lazy.data))
        np.testing.assert_array_equal(copy[0:4, 0:8], block)
    finally:
        lazy.data.close()
    assert np.isnan(ivar[2:4, 5:9]).sum() == 0  # the fixture's own array is untouched


def test_an_error_map_off_the_image_grid_is_refused(tmp_path, survey):
    sci, *_ = survey
    small = tmp_path / "small_std.fits"
    fits.writeto(small, np.ones((SHAPE[0], SHAPE[1] - 1), np.float32))
    with pytest.raises(InvalidImageError, match=r"small_std\.fits: .*24 x 31 pixels.*24 x 32"):
        io.read(sci, uncertainty=small)
    other = tmp_path / "other_tile_std.fits"
    fits.writeto(other, np.ones(SHAPE, np.float32), _wcs_header(crval=(151.0, 2.2)))
    with pytest.raises(InvalidImageError, match=r"other_tile_std\.fits: .*pixel grid.*CRVAL1"):
        io.read(sci, uncertainty=other)
    with pytest.raises(InvalidImageError, match=r"no_such_ivar\.fits"):
        io.read(sci, uncertainty=tmp_path / "no_such_ivar.fits")


def test_an_array_or_an_astropy_uncertainty(survey):
    sci, _, _, _, ivar = survey
    img = io.read(sci, uncertainty=ivar, uncertainty_type="ivar")
    assert isinstance(img.meta["uncertainty"], InverseVariance) and img.mask[2:4, 5:9].all()
    same = io.read(sci, uncertainty=InverseVariance(ivar))
    np.testing.assert_array_equal(_sigma(same), _sigma(img))
    with pytest.raises(ConfigError, match="needs uncertainty_type"):
        io.read(sci, uncertainty=ivar)
    with pytest.raises(ConfigError, match=r"shape \(24, 31\)"):
        io.read(sci, uncertainty=ivar[:, 1:], uncertainty_type="ivar")
    with pytest.raises(ConfigError, match="InverseVariance but uncertainty_type='std'"):
        io.read(sci, uncertainty=InverseVariance(ivar), uncertainty_type="std")
    # the long forms (astropy's, the EXTNAMEs') are the same kinds
    long = io.read(sci, uncertainty=ivar, uncertainty_type="inverse variance")
    np.testing.assert_array_equal(_sigma(long), _sigma(img))
    assert isinstance(
        io.read(sci, uncertainty=1.0 / ivar, uncertainty_type="Variance").meta["uncertainty"],
        VarianceUncertainty,
    )
    with pytest.raises(ConfigError, match=r"uncertainty_type must be one of.*'sd'"):
        io.read(sci, uncertainty=ivar, uncertainty_type="sd")
    with pytest.raises(ConfigError, match="without uncertainty="):
        io.read(sci, uncertainty_type="ivar")
    with pytest.raises(ConfigError, match="stack=True"):
        io.read(sci, uncertainty=ivar, uncertainty_type="ivar", stack=True)


def test_a_block_wise_catalog_takes_its_flux_errors_from_the_error_file(tmp_path, threshold_model):
    """``predict_mosaic(uncertainty=...)`` (``sciconv predict --block N --uncertainty-file``):
    the catalog's ``flux_err`` is the one the same error map gives as an IVAR HDU."""
    from sciconv.inference import predict_mosaic

    rng = np.random.default_rng(8)
    image = rng.normal(-1.0, 0.05, (96, 128)).astype(np.float32)
    for y, x in ((20, 30), (60, 90), (70, 20)):
        image[y - 5 : y + 5, x - 6 : x + 6] += 3.0  # three objects
    ivar = rng.uniform(50.0, 150.0, image.shape).astype(np.float32)
    sci, err, both = tmp_path / "f-image.fits", tmp_path / "f-invvar.fits", tmp_path / "f.fits"
    fits.writeto(sci, image)
    fits.writeto(err, ivar)
    fits.HDUList(
        [fits.PrimaryHDU(image), fits.ImageHDU(ivar, name="IVAR")]
    ).writeto(both)  # fmt: skip
    fast = dict(normalize=None, progress=False, blend="none", margin=24, min_size=4, block=64)
    a = predict_mosaic(
        threshold_model, sci, tmp_path / "a", uncertainty=err, uncertainty_type="ivar", **fast
    )
    b = predict_mosaic(threshold_model, both, tmp_path / "b", **fast)
    from astropy.table import Table

    ta, tb = Table.read(a["catalog"]), Table.read(b["catalog"])
    assert len(ta) == len(tb) == 3
    ta.sort("flux_sum"), tb.sort("flux_sum")
    np.testing.assert_allclose(ta["flux_err"], tb["flux_err"], rtol=1e-6)
    # 120 pixels of sigma about 0.1 each: about 1.1, not the sky rms of 0.05 per pixel (0.55)
    assert 0.9 < float(np.median(ta["flux_err"])) < 1.4
