"""Astronomy-native products: photutils, DS9 regions, NDData/CCDData in and out."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import photutils_name
from astropy import units as u
from astropy.nddata import CCDData, NDData

from sciconv import io, postprocess
from sciconv.errors import ConfigError, InvalidImageError, SciconvWarning
from sciconv.io import GridImage

photutils = pytest.importorskip("photutils")
regions = pytest.importorskip("regions")


@pytest.fixture(scope="module")
def field():
    """A simulated 256 x 256 field with its TAN WCS, and labels from a plain threshold."""
    from scipy import ndimage as ndi

    from sciconv import simulate

    image, wcs, _ = simulate.sky_field((256, 256), seed=3, n_stars=40, n_galaxies=25)
    labels, n = ndi.label(image > np.median(image) + 60)
    assert n > 20
    return image.astype(np.float64), wcs, labels.astype(np.int32)


def test_measure_agrees_with_photutils_on_a_simulated_field(field):
    image, wcs, labels = field
    ours = postprocess.measure(labels, intensity=image, wcs=wcs)
    segm, cat = postprocess.to_photutils(labels, image, wcs=wcs)
    x, y = photutils_name("x_centroid"), photutils_name("y_centroid")
    theirs = cat.to_table(columns=["label", "area", x, y, "sky_centroid"])
    assert len(segm.labels) == len(ours) and list(theirs["label"]) == list(ours["label"])
    np.testing.assert_array_equal(theirs["area"].to_value(u.pix**2), ours["area"])  # exact
    # intensity-weighted centroids, same convention (0-based pixel centres): far below 0.01 px
    assert np.abs(theirs[x] - ours["x_weighted"]).max() < 1e-6
    assert np.abs(theirs[y] - ours["y_weighted"]).max() < 1e-6
    sep = theirs["sky_centroid"].separation(cat.sky_centroid.__class__(ours["ra"], ours["dec"]))
    assert sep.to_value(u.arcsec).max() < 1e-4
    # the geometric centroid is photutils' on a flat image
    _, flat = postprocess.to_photutils(labels, np.ones_like(image))
    assert np.abs(getattr(flat, x) - ours["x"]).max() < 1e-6
    assert np.abs(getattr(flat, y) - ours["y"]).max() < 1e-6


def test_to_photutils_takes_the_wcs_and_mask_of_a_grid_image(field):
    image, wcs, labels = field
    mask = np.zeros((*image.shape, 1), bool)
    ys, xs = np.nonzero(labels == 1)
    mask[ys[0], xs[0]] = True
    img = GridImage(image[..., None].astype(np.float32), wcs=wcs, mask=mask)
    _, cat = postprocess.to_photutils(labels, img)
    assert cat.sky_centroid is not None  # the GridImage's WCS
    area = postprocess.measure(labels)["area"][0]
    assert cat.area[0].value == area - 1  # the masked pixel is left out
    with pytest.raises(ConfigError, match="no object"):
        postprocess.to_photutils(np.zeros((4, 4), int), np.ones((4, 4)))


def test_to_photutils_names_the_pip_command_when_photutils_is_missing(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "photutils.segmentation", None)
    with pytest.raises(ConfigError, match="pip install photutils"):
        postprocess.to_photutils(np.ones((4, 4), int), np.ones((4, 4)))


# --------------------------------------------------------------------------------------------------
# regions


def _two_objects():
    labels = np.zeros((40, 50), np.int32)
    labels[5:10, 4:20] = 1  # 16 x 5 box
    yy, xx = np.mgrid[:40, :50]
    labels[(yy - 28) ** 2 + (xx - 30) ** 2 <= 36] = 2  # disc, r = 6
    return labels


@pytest.mark.parametrize("with_wcs", [False, True])
def test_ellipse_regions_round_trip_through_a_ds9_file(tmp_path, field, with_wcs):
    labels = _two_objects()
    _, wcs, _ = field
    table = postprocess.measure(labels)
    path = postprocess.write_regions(table, tmp_path / "objects.reg", wcs=wcs if with_wcs else None)
    back = regions.Regions.read(path, format="ds9")
    assert len(back) == 2 and [str(r.meta["text"]) for r in back] == ["1", "2"]
    if with_wcs:
        assert isinstance(back[0], regions.EllipseSkyRegion)
        back = regions.Regions([r.to_pixel(wcs) for r in back])
    for r, row in zip(back, table, strict=True):
        assert isinstance(r, regions.EllipsePixelRegion)
        assert (r.center.x, r.center.y) == pytest.approx((row["x"], row["y"]), abs=1e-4)
        assert r.width == pytest.approx(2 * row["semi_major"], rel=1e-4)
        assert r.height == pytest.approx(2 * row["semi_minor"], rel=1e-4)
    assert back[1].width == pytest.approx(12, rel=0.05)  # the disc's diameter
    assert back[0].contains(regions.PixCoord(11.5, 7))
    with pytest.raises(Exception, match="overwrite=True"):
        postprocess.write_regions(table, path)


def test_regions_of_a_catalog_read_back_from_its_votable_sit_on_its_ra_dec(tmp_path, field):
    """QA: ellipses were centred on x_weighted only when meta['RADECSRC'] said so, and a
    VOTable read back by astropy has no meta: regions from it sat up to 2.8 HST pixels off the
    catalog's own ra/dec."""
    from astropy.table import Table

    labels = _two_objects()
    image, wcs, _ = field
    intensity = np.asarray(image, np.float32)[:40, :50]
    intensity = intensity + 50.0 * (np.arange(50)[None, :] / 50)  # a gradient: weighted moves
    table = postprocess.measure(labels, intensity=intensity, wcs=wcs)
    assert np.abs(table["x_weighted"] - table["x"]).max() > 0.1
    back = Table.read(postprocess.write_catalog(table, tmp_path / "cat.vot"))
    assert "RADECSRC" not in back.meta
    path = postprocess.write_regions(back, tmp_path / "cat.reg", wcs=wcs)
    for r, row in zip(regions.Regions.read(path, format="ds9"), table, strict=True):
        assert r.center.ra.deg == pytest.approx(row["ra"], abs=5e-8)  # 8 decimals
        assert r.center.dec.deg == pytest.approx(row["dec"], abs=5e-8)
    # a pixel catalog (no ra/dec: a microscopy image's) keeps its geometric centres (review)
    pixels = postprocess.measure(labels, intensity=intensity)
    pixels.meta.clear()
    for r, row in zip(postprocess.to_regions(pixels), pixels, strict=True):
        assert (r.center.x, r.center.y) == pytest.approx((row["x"], row["y"]))


def test_sky_regions_of_a_large_catalog_show_their_progress(tmp_path, field, capsys):
    """QA: 352,717 sky ellipses took over 14 minutes with no output (about 3 ms an object);
    with progress=True a progress bar counts the objects."""
    _, wcs, _ = field
    table = postprocess.measure(_two_objects())
    postprocess.write_regions(table, tmp_path / "quiet.reg", wcs=wcs)
    assert "to_regions" not in capsys.readouterr().err
    path = postprocess.write_regions(table, tmp_path / "shown.reg", wcs=wcs, progress=True)
    assert "to_regions: 2/2 objects" in capsys.readouterr().err
    assert len(regions.Regions.read(path, format="ds9")) == 2


def test_background_subtracted_fluxes_and_centroids_match_the_truth():
    """A Gaussian source on a sky of 100 with a gradient, its label box off-centre: flux_sum
    holds sky x area, ``flux`` the source; the centroid of the background-subtracted pixels is
    the source's (raw pixels pull it to the box centre); photutils agrees."""
    yy, xx = np.mgrid[:128, :128].astype(float)
    sky = 100.0 + 0.01 * xx
    source = 400.0 * np.exp(-((xx - 60.3) ** 2 + (yy - 70.6) ** 2) / (2 * 2.0**2))
    image = sky + source
    labels = np.zeros((128, 128), np.int32)
    labels[62:80, 52:75] = 1  # box centre (63.5, 70.5): off the source in x
    labels[10:14, 100:104] = 2
    bkg = postprocess.estimate_background(image, labels, box_size=32)
    # the gradient, objects left out (Background2D's boxes extrapolate at the edges)
    np.testing.assert_allclose(bkg[32:96, 32:96], sky[32:96, 32:96], atol=0.05)
    t = postprocess.measure(labels, intensity=image, background=bkg)
    true_flux = source[labels == 1].sum()
    assert t["flux_sum"][0] > 3 * true_flux  # the sky under 414 pixels dominates
    assert abs(t["flux"][0] - true_flux) < 0.01 * true_flux
    np.testing.assert_allclose(t["background"][0], sky[labels == 1].mean(), atol=0.05)
    assert abs(t["x_weighted"][0] - 60.3) < 0.02 and abs(t["y_weighted"][0] - 70.6) < 0.02
    raw = postprocess.measure(labels, intensity=image)
    assert abs(raw["x_weighted"][0] - 60.3) > 1.0 and "flux" not in raw.colnames
    _, cat = postprocess.to_photutils(labels, image - bkg)
    np.testing.assert_allclose(cat.segment_flux, t["flux"], rtol=1e-6)
    # one level per image (a number) works too; a wrong shape is refused
    assert postprocess.measure(labels, intensity=image, background=100.0)["background"][0] == 100
    with pytest.raises(InvalidImageError, match="background must be a number or have"):
        postprocess.measure(labels, intensity=image, background=np.ones((5, 5)))


def test_background_without_photutils_is_one_level_and_says_so(monkeypatch):
    import builtins

    from sciconv.errors import SciconvWarning

    real_import = builtins.__import__

    def no_photutils(name, *args, **kwargs):
        if name.startswith("photutils"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_photutils)
    image = np.random.default_rng(0).normal(50.0, 1.0, (40, 40))
    with pytest.warns(
        SciconvWarning, match="one sigma-clipped median level.*pip install photutils"
    ):
        bkg = postprocess.estimate_background(image, box_size=16)
    assert bkg.shape == (40, 40) and np.ptp(bkg) == 0 and abs(bkg[0, 0] - 50) < 0.2


def test_solar_wcs_gives_a_catalog_and_regions_without_sky_coordinates():
    """An SDO/AIA-style helioprojective WCS is celestial to astropy but has no way to ICRS:
    the products come without ra/dec (a warning says so) instead of an AttributeError."""
    from astropy.wcs import WCS

    from sciconv.errors import SciconvWarning

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["HPLN-TAN", "HPLT-TAN"]
    wcs.wcs.cunit = ["arcsec", "arcsec"]
    wcs.wcs.cdelt = [0.6, 0.6]
    wcs.wcs.crpix = [32, 32]
    labels = np.zeros((64, 64), np.int32)
    labels[10:20, 30:40] = 1
    image = np.ones((64, 64))
    with pytest.warns(SciconvWarning, match=r"HPLN-TAN.*no transformation to ICRS.*ra/dec left"):
        table = postprocess.measure(labels, intensity=image, wcs=wcs)
    assert len(table) == 1 and "ra" not in table.colnames
    np.testing.assert_allclose([table["x"][0], table["y"][0]], [34.5, 14.5])
    with pytest.warns(SciconvWarning, match="pixel regions written"):
        regs = postprocess.to_regions(labels, wcs=wcs)
    assert type(regs[0]).__name__ == "EllipsePixelRegion"


def test_one_pixel_wide_objects_get_one_pixel_wide_ellipses():
    labels = np.zeros((8, 8), np.int32)
    labels[2, 1:6] = 1  # a row: no second moment across
    labels[5, 5] = 2  # a single pixel
    reg = postprocess.to_regions(labels)
    assert reg[0].height == 1.0 and reg[0].width == pytest.approx(4 * np.sqrt(2))
    assert reg[1].width == reg[1].height == 1.0


def test_polygon_regions_trace_the_outlines(tmp_path):
    labels = _two_objects()
    reg = postprocess.to_regions(labels, shape="polygon")
    assert all(isinstance(r, regions.PolygonPixelRegion) for r in reg)
    box = reg[0]
    xs, ys = box.vertices.x, box.vertices.y
    # pixel-edge midpoints: half a pixel inside the outer pixel edges
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (3.5, 19.5, 4.5, 9.5)
    mask = box.to_mask(mode="center").to_image(labels.shape).astype(bool)
    assert (mask == (labels == 1)).mean() > 0.97
    path = postprocess.write_regions(reg, tmp_path / "outlines.reg")
    back = regions.Regions.read(path, format="ds9")
    np.testing.assert_allclose(back[1].vertices.x, reg[1].vertices.x, atol=1e-6)


def test_casa_region_files_hold_sky_regions_at_full_precision(tmp_path, field):
    """QA: a pixel .crtf died in a bare UnitConversionError deep in regions (which writes no
    pixel CRTF); sky ones were rounded to 6 decimals of a degree (HST ellipse axes up to 12.6 %
    off) and moved from ICRS to FK5 J2000 (24 mas)."""
    _, wcs, labels = field
    table = postprocess.measure(labels, wcs=wcs)
    with pytest.raises(ConfigError, match=r"\.crtf\) hold sky regions only; pass the image's wcs"):
        postprocess.write_regions(table, tmp_path / "pix.crtf")
    assert not (tmp_path / "pix.crtf").exists()
    path = postprocess.write_regions(table, tmp_path / "sky.crtf", wcs=wcs)
    text = path.read_text()
    assert "coord=ICRS" in text
    back = regions.Regions.read(path, format="crtf")
    ds9 = postprocess.to_regions(table, wcs=wcs)
    for got, want in zip(back, ds9, strict=True):
        assert got.center.separation(want.center).arcsec < 1e-4
        assert got.height.to_value("arcsec") == pytest.approx(want.height.to_value("arcsec"), 1e-4)


def test_regions_bad_input(tmp_path):
    labels = _two_objects()
    with pytest.raises(ConfigError, match="shape must be one of"):
        postprocess.to_regions(labels, shape="circle")
    with pytest.raises(ConfigError, match="needs the label image"):
        postprocess.to_regions(postprocess.measure(labels), shape="polygon")
    with pytest.raises(ConfigError, match="extension must be one of"):
        postprocess.write_regions(labels, tmp_path / "objects.txt")


# --------------------------------------------------------------------------------------------------
# NDData / CCDData


def test_grid_image_nddata_round_trip_drops_nothing(field):
    from astropy.io import fits
    from astropy.nddata import StdDevUncertainty

    image, wcs, _ = field
    mask = np.zeros(image.shape, bool)
    mask[3, 4] = True
    header = wcs.to_header()
    header["OBJECT"] = "sim"
    nd = CCDData(
        image,
        unit="adu",
        mask=mask,
        uncertainty=StdDevUncertainty(np.sqrt(image)),
        wcs=wcs,
        meta=header,
    )
    img = GridImage.from_nddata(nd)
    assert img.shape == (*image.shape, 1) and img.meta["bunit"] == "adu"
    assert np.isnan(img.data[3, 4, 0]) and img.mask[3, 4, 0] and img.header["OBJECT"] == "sim"
    back = img.to_nddata(ccd=True)
    assert isinstance(back, CCDData) and back.unit == u.adu
    np.testing.assert_array_equal(back.mask, mask)
    np.testing.assert_array_equal(back.data[~mask], image.astype(np.float32)[~mask])
    np.testing.assert_array_equal(back.uncertainty.array, nd.uncertainty.array)
    assert isinstance(back.meta, fits.Header) and back.meta["OBJECT"] == "sim"
    _same_sky(back.wcs, wcs)
    plain = img.to_nddata()
    assert type(plain) is NDData and plain.unit == u.adu
    rgb = GridImage(np.zeros((3, 4, 2), np.float32))
    assert rgb.to_nddata().data.shape == (2, 3, 4)
    assert GridImage.from_nddata(rgb.to_nddata()).shape == (3, 4, 2)
    with pytest.raises(ConfigError, match="NDData"):
        GridImage.from_nddata(image)


def _same_sky(a, b):
    px = np.array([0.0, 100.0, 255.0])
    for p, q in zip(a.pixel_to_world_values(px, px[::-1]), b.pixel_to_world_values(px, px[::-1])):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["prob", "labels"])
def test_to_ccddata_round_trips_through_fits_with_mask_and_wcs(tmp_path, field, kind):
    image, wcs, labels = field
    header = wcs.to_header()
    header["TELESCOP"] = "sim"
    like = GridImage(image[..., None].astype(np.float32), header=header, wcs=wcs)
    like.mask = np.zeros(like.shape, bool)
    like.mask[10, 20] = True
    if kind == "prob":
        fg = (labels > 0).astype(np.float32)
        product = np.stack([1 - fg, fg], axis=-1)
    else:
        product = labels
    ccd = postprocess.to_ccddata(product, like=like)
    path = tmp_path / f"{kind}.fits"
    ccd.write(path)
    back = CCDData.read(path, unit=u.one)
    expected = np.moveaxis(product, -1, 0) if kind == "prob" else product
    np.testing.assert_array_equal(back.data, expected)
    assert back.mask.shape == expected.shape and back.mask[..., 10, 20].all()
    assert back.mask.sum() == (2 if kind == "prob" else 1)
    assert back.header["TELESCOP"] == "sim"
    _same_sky(back.wcs.celestial, wcs)
    if kind == "prob":
        assert (back.header["CLASS0"], back.header["CLASS1"]) == ("background", "foreground")


def test_to_ccddata_uncertainty_round_trips_as_stddev(tmp_path, field):
    from astropy.io import fits
    from astropy.nddata import StdDevUncertainty, VarianceUncertainty

    from sciconv.errors import InvalidImageError

    image, wcs, labels = field
    fg = (labels > 0).astype(np.float32)
    prob = np.stack([1 - fg, fg], axis=-1)
    std = np.random.default_rng(1).uniform(0, 0.2, prob.shape).astype(np.float32)
    mask = np.zeros(labels.shape, bool)
    mask[7, 9] = True
    like = GridImage(image[..., None].astype(np.float32), wcs=wcs)
    ccd = postprocess.to_ccddata(prob, like=like, mask=mask, uncertainty=std)
    path = tmp_path / "prob.fits"
    ccd.write(path)
    back = CCDData.read(path, unit=u.one)
    assert isinstance(back.uncertainty, StdDevUncertainty)
    np.testing.assert_array_equal(back.uncertainty.array, np.moveaxis(std, -1, 0))
    assert back.mask[:, 7, 9].all() and back.mask.sum() == 2
    _same_sky(back.wcs.celestial, wcs)
    with fits.open(path) as hdul:
        assert hdul["UNCERT"].header["UTYPE"] == "StdDevUncertainty"
    # labels take a (H, W) standard deviation; a StdDevUncertainty is taken as it is
    one = postprocess.to_ccddata(labels, uncertainty=StdDevUncertainty(np.ones(labels.shape)))
    assert one.uncertainty.array.shape == labels.shape
    with pytest.raises(ConfigError, match="standard deviation"):
        postprocess.to_ccddata(prob, uncertainty=VarianceUncertainty(std))
    with pytest.raises(InvalidImageError, match="cannot be negative"):
        postprocess.to_ccddata(prob, uncertainty=-std)
    with pytest.raises(InvalidImageError, match="shape of the probabilities"):
        postprocess.to_ccddata(prob, uncertainty=std[..., :1])


def test_to_ccddata_bad_like():
    with pytest.raises(ConfigError, match="like must be"):
        postprocess.to_ccddata(np.zeros((4, 4), np.int32), like="field.fits")


# --------------------------------------------------------------------------------------------------
# inference takes NDData


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    from sciconv import models

    keras.utils.set_random_seed(0)
    return models.segmenter(input_shape=(None, None, 1), num_classes=2, depth=1, filters=4)


def test_predict_tiled_and_instances_take_nddata(tiny_model):
    from sciconv import inference

    rng = np.random.default_rng(0)
    pixels = rng.normal(100, 5, (48, 40)).astype(np.float32)
    kw = dict(tile=40, overlap=18, progress=False)
    expected = inference.predict_tiled(tiny_model, pixels, **kw)
    for nd in (NDData(pixels), CCDData(pixels, unit="adu")):
        prob = inference.predict_tiled(tiny_model, nd, **kw)
        np.testing.assert_allclose(prob, expected, atol=1e-6)
        labels = inference.predict_instances(tiny_model, nd, **kw)
        assert labels.shape == pixels.shape and labels.dtype == np.int32
    # a masked NDData: through GridImage.from_nddata the masked pixels are NaN in and out
    mask = np.zeros(pixels.shape, bool)
    mask[5:8, 6:9] = True
    img = GridImage.from_nddata(CCDData(pixels, unit="adu", mask=mask))
    prob = inference.predict_tiled(tiny_model, img, **kw)
    assert np.isnan(prob[mask]).all() and np.isfinite(prob[~mask]).all()


def test_to_ccddata_refuses_a_science_image_as_probabilities(data_dir):
    """The HST electron image (values to ~1.5e5) was taken as one probability plane, named
    CLASS0, made dimensionless and stripped of its BUNIT."""
    from sciconv import io
    from sciconv.errors import InvalidImageError

    img = io.read(data_dir / "real" / "hst" / "j8bt06nyq_sci_cutout.fits")
    with pytest.raises(InvalidImageError, match=r"class probabilities .*\(a science image\?"):
        postprocess.to_ccddata(img.data, like=img)


def test_measure_fluxes_take_the_unit_of_a_real_hst_image(data_dir):
    """A GridImage read from a file with BUNIT='ELECTRONS' gave unitless fluxes (only an NDData
    carried its unit), so every CLI catalog of an HST frame lacked the flux unit."""
    from sciconv import io

    img = io.read(data_dir / "real" / "hst" / "j8bt06nyq_sci_cutout.fits")
    labels = np.zeros(img.shape[:2], np.int32)
    labels[100:110, 100:110] = 1
    for intensity in (img, img.to_nddata()):
        table = postprocess.measure(labels, intensity=intensity, wcs=img.wcs)
        assert str(table["flux_sum"].unit) == str(table["flux_mean"].unit) == "electron"
    assert postprocess.measure(labels, intensity=img.data)["flux_sum"].unit is None


@pytest.mark.parametrize("with_wcs", [False, True])
def test_polygon_regions_keep_every_piece_of_an_object(tmp_path, field, with_wcs):
    """A label in two separate pieces gave one DS9 polygon (its longest outline): the other piece
    was missing from the region file while the GeoJSON wrote both (a MultiPolygon)."""
    labels = np.zeros((40, 40), np.int32)
    labels[5:10, 5:10] = 1
    labels[20:25, 30:35] = 1  # the second piece of label 1
    labels[30:36, 5:9] = 2
    labels[31:34, 6:8] = 0  # a hole: still one piece, one polygon
    wcs = field[1] if with_wcs else None
    reg = postprocess.to_regions(labels, shape="polygon", wcs=wcs)
    assert [r.meta["text"] for r in reg] == ["1", "1", "2"]
    path = postprocess.write_regions(reg, tmp_path / "outlines.reg")
    back = regions.Regions.read(path, format="ds9")
    assert [str(r.meta.get("text")) for r in back] == ["1", "1", "2"]  # regions reads ints
    if with_wcs:
        back = [r.to_pixel(wcs) for r in back]
    for piece, (ys, xs) in zip(
        back[:2], [(slice(5, 10), slice(5, 10)), (slice(20, 25), slice(30, 35))]
    ):
        expected = np.zeros(labels.shape, bool)
        expected[ys, xs] = True
        drawn = piece.to_mask(mode="center").to_image(labels.shape).astype(bool)
        np.testing.assert_array_equal(drawn, expected)
    # the one-piece object with a hole is drawn by its outer outline only
    outer = back[2].to_mask(mode="center").to_image(labels.shape).astype(bool)
    assert outer[30:36, 5:9].all() and outer.sum() == 24


def _ecliptic_wcs(kind: str):
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = [f"{kind}LON-TAN", f"{kind}LAT-TAN"]
    w.wcs.crval, w.wcs.crpix, w.wcs.cdelt = [149.0, -8.9], [10.5, 10.5], [-1e-4, 1e-4]
    w.wcs.dateobs = "2021-03-01T00:00:00"
    w.wcs.set()
    return w


def test_an_ecliptic_wcs_gives_icrs_positions(tmp_path):
    """QA: for ELON/ELAT axes wcslib sets RADESYS = 'ICRS' and astropy read the ecliptic
    longitude and latitude as RA and Dec (astropy issue 6483): catalog positions 12.4 degrees
    off, DS9 regions declared icrs."""
    from astropy.coordinates import BarycentricMeanEcliptic, SkyCoord
    from regions import Regions

    labels = np.zeros((20, 20), np.int32)
    labels[8:12, 8:12] = 1  # centred on the reference pixel (9.5, 9.5 0-based)
    table = postprocess.measure(labels, wcs=_ecliptic_wcs("E"))
    true = SkyCoord(149.0, -8.9, unit="deg", frame=BarycentricMeanEcliptic(equinox="J2000")).icrs
    got = SkyCoord(table["ra"][0], table["dec"][0], unit="deg")
    assert got.separation(true).arcsec < 0.01 and abs(table["dec"][0] - 3.466) < 1e-3
    # a WCS astropy read before sciconv.io registered the frame caches ICRS on it (review)
    from astropy.wcs import utils

    from sciconv.io._frames import ecliptic_frame

    early, saved = _ecliptic_wcs("E"), list(utils.WCS_FRAME_MAPPINGS)
    utils.WCS_FRAME_MAPPINGS[:] = [g for g in saved if ecliptic_frame not in g]
    try:
        assert early.pixel_to_world(9.5, 9.5).frame.name == "icrs"  # astropy's bug, cached
    finally:
        utils.WCS_FRAME_MAPPINGS[:] = saved
    again = postprocess.measure(labels, wcs=early)
    assert SkyCoord(again["ra"][0], again["dec"][0], unit="deg").separation(true).arcsec < 0.01
    path = tmp_path / "r.reg"
    postprocess.write_regions(table, path, wcs=_ecliptic_wcs("E"))
    assert "ecliptic" in path.read_text()
    center = Regions.read(path, format="ds9")[0].center
    assert center.icrs.separation(true).arcsec < 0.01


def test_a_helioecliptic_wcs_leaves_ra_dec_out():
    """HLON/HLAT (heliocentric ecliptic) has no transformation to ICRS without distances:
    ra/dec are left out with a warning (they were the helioecliptic angles, called ICRS)."""
    labels = np.zeros((20, 20), np.int32)
    labels[8:13, 8:13] = 1
    with pytest.warns(SciconvWarning, match="no transformation to ICRS"):
        table = postprocess.measure(labels, wcs=_ecliptic_wcs("H"))
    assert "ra" not in table.colnames


def test_a_radio_map_in_jy_per_beam_gets_flux_densities_in_jy():
    """QA: a Jy/beam map's catalog flux was a pixel sum labelled Jy/beam (11 times too bright
    read as Jy with an 11-pixel beam) and its error assumed independent pixels (3.3 times too
    small): flux_density (Jy) = sum / beam pixels, its error times sqrt(beam pixels)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype, w.wcs.cdelt = ["RA---SIN", "DEC--SIN"], [-2 / 3600, 2 / 3600]
    header = fits.Header({"BMAJ": 8 / 3600, "BMIN": 6 / 3600, "BUNIT": "JY/BEAM"})
    beam = np.pi / (4 * np.log(2)) * 8 * 6 / 4  # pixels of 2 arcsec
    data = np.full((20, 20, 1), 0.5, np.float32)
    img = GridImage(data, header=header, wcs=w, meta={"bunit": "JY/BEAM"})
    labels = np.zeros((20, 20), np.int32)
    labels[5:15, 5:15] = 1
    table = postprocess.measure(labels, intensity=img, error=np.full((20, 20), 0.1))
    assert table["flux_sum"][0] == pytest.approx(50.0)
    assert table["flux_density"][0] == pytest.approx(50.0 / beam)
    assert table["flux_density"].unit == u.Jy
    assert table["flux_density_err"][0] == pytest.approx(table["flux_err"][0] / np.sqrt(beam))
    assert table.meta["BEAMPIX"] == pytest.approx(beam)
    plain = GridImage(data, header=fits.Header({"BUNIT": "JY"}), wcs=w, meta={"bunit": "JY"})
    assert "flux_density" not in postprocess.measure(labels, intensity=plain).colnames


def test_regions_of_an_ecliptic_wcs_of_another_equinox_are_pixel_regions():
    """QA: region files name only 'ecliptic', read as J2000: an EQUINOX 1950 image's sky
    regions were 0.69 degrees off (its catalog positions are right)."""
    wcs = _ecliptic_wcs("E")
    wcs.wcs.equinox = 1950.0
    wcs.wcs.set()
    labels = np.zeros((20, 20), np.int32)
    labels[8:12, 8:12] = 1
    table = postprocess.measure(labels, wcs=wcs)
    from astropy.coordinates import BarycentricMeanEcliptic, SkyCoord

    true = SkyCoord(149.0, -8.9, unit="deg", frame=BarycentricMeanEcliptic(equinox="J1950")).icrs
    got = SkyCoord(table["ra"][0], table["dec"][0], unit="deg")
    assert got.separation(true).arcsec < 0.01  # the catalog in the WCS's own equinox
    with pytest.warns(SciconvWarning, match="no ecliptic of equinox 1950"):
        regions = postprocess.to_regions(table, wcs=wcs)
    assert type(regions[0]).__name__ == "EllipsePixelRegion"
    assert type(postprocess.to_regions(table, wcs=_ecliptic_wcs("E"))[0]).__name__ == (
        "EllipseSkyRegion"
    )


def test_an_uncertainty_in_another_unit_than_the_data_is_converted():
    """QA: an NDData in Jy with a StdDevUncertainty in mJy had flux_err read as Jy (1000 times
    too large) in measure and to_photutils; variances in mJy^2 too. A unit that does not
    convert is refused, naming both."""
    from astropy.nddata import StdDevUncertainty, VarianceUncertainty

    rng = np.random.default_rng(1)
    data = rng.normal(0, 0.002, (40, 40))
    data[15:25, 15:25] += 0.1
    labels = np.zeros((40, 40), np.int32)
    labels[15:25, 15:25] = 1
    for unc in (
        StdDevUncertainty(np.full(data.shape, 2.0), unit="mJy"),
        VarianceUncertainty(np.full(data.shape, 4.0), unit="mJy2"),
    ):
        nd = CCDData(data, unit="Jy", uncertainty=unc)
        table = postprocess.measure(labels, intensity=nd)
        assert table["flux_err"][0] == pytest.approx(10 * 0.002)  # sqrt(100 pixels) x 2 mJy
        _, cat = postprocess.to_photutils(labels, nd)
        flux_err = getattr(cat, photutils_name("segment_flux_err"))
        assert flux_err[0].to_value(u.Jy) == pytest.approx(0.02)
        img = GridImage.from_nddata(nd)
        assert postprocess.measure(labels, intensity=img)["flux_err"][0] == pytest.approx(0.02)
    same = CCDData(data, unit="Jy", uncertainty=StdDevUncertainty(np.full(data.shape, 0.002)))
    assert postprocess.measure(labels, intensity=same)["flux_err"][0] == pytest.approx(0.02)
    odd = GridImage(  # astropy refuses such an NDData; a GridImage's meta may hold it
        data[..., None].astype(np.float32),
        meta={"bunit": "Jy", "uncertainty": StdDevUncertainty(np.ones(data.shape), unit="s")},
    )
    with pytest.raises(InvalidImageError, match=r"uncertainty is in s, .* data's unit Jy"):
        postprocess.measure(labels, intensity=odd)


def test_a_surface_brightness_image_gets_flux_densities_in_jy():
    """QA: 100 pixels of 5 MJy/sr (0.031" pixels) gave flux '500 MJy/sr' and nothing in Jy
    (11.3 uJy): flux_density = sum x the pixel's solid angle, its error likewise; per arcsec^2
    units lose their arcsec^2; magnitudes per arcsec^2 (logarithmic) and Jy/beam are left alone
    by this rule (the beam's own rule gives Jy/beam maps theirs)."""
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cdelt = [-0.031 / 3600, 0.031 / 3600]
    data = np.full((40, 40), 0.2, np.float32)
    data[15:25, 15:25] += 5.0
    labels = np.zeros((40, 40), np.int32)
    labels[15:25, 15:25] = 1
    pixel_sr = ((0.031 * u.arcsec) ** 2).to_value(u.sr)
    img = GridImage(data[..., None], wcs=w, meta={"bunit": "MJy/sr"})
    table = postprocess.measure(labels, intensity=img, background=0.2, error=np.full((40, 40), 0.1))
    assert table["flux_density"].unit == u.Jy
    assert table["flux_density"][0] == pytest.approx(5e6 * 100 * pixel_sr, rel=1e-5)
    assert table["flux_density_err"][0] == pytest.approx(1e6 * 1.0 * pixel_sr, rel=1e-5)
    assert table.meta["PIXSR"] == pytest.approx(pixel_sr)
    flam = GridImage(data[..., None], wcs=w, meta={"bunit": "erg / (s cm2 Angstrom arcsec2)"})
    table = postprocess.measure(labels, intensity=flam, background=0.2)
    assert table["flux_density"].unit == u.erg / u.s / u.cm**2 / u.AA
    assert table["flux_density"][0] == pytest.approx(500 * 0.031**2, rel=1e-5)
    nd = CCDData(data, unit="MJy/sr", wcs=w)  # an NDData as a GridImage (review)
    table = postprocess.measure(labels, intensity=nd, background=0.2)
    assert table["flux_density"][0] == pytest.approx(5e6 * 100 * pixel_sr, rel=1e-5)
    for bunit in ("mag / arcsec2", "adu"):
        plain = GridImage(data[..., None], wcs=w, meta={"bunit": bunit})
        assert "flux_density" not in postprocess.measure(labels, intensity=plain).colnames


def test_radio_cube_planes_take_their_own_beam_and_maps_per_pixel_sum_to_jy(tmp_path):
    """Radio QA: a CASA cube's BEAMS table was not read (a channel with a 1.4x larger beam got
    flux densities 1.83x too bright with the representative BMAJ; none at all without it); a
    Jy/beam map without a beam lost flux_density silently; Jy/pixel sums stayed 'Jy / pix'."""
    from astropy.io import fits
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.cdelt = [-1.5 / 3600, 1.5 / 3600]
    header = w.to_header()
    header.update({"CTYPE3": "FREQ", "CRVAL3": 1.4e9, "CDELT3": 1e6, "CRPIX3": 1.0})
    header.update({"BUNIT": "JY/BEAM", "BMAJ": 9 / 3600, "BMIN": 6 / 3600, "CASAMBM": True})
    beams = fits.BinTableHDU.from_columns([
        fits.Column(name="BMAJ", format="E", unit="arcsec", array=[9.0, 10.0, 12.6]),
        fits.Column(name="BMIN", format="E", unit="arcsec", array=[6.0, 7.0, 8.4]),
        fits.Column(name="BPA", format="E", unit="deg", array=[0.0, 0.0, 0.0]),
        fits.Column(name="CHAN", format="J", array=[0, 1, 2]),
        fits.Column(name="POL", format="J", array=[0, 0, 0])], name="BEAMS")  # fmt: skip
    cube = np.ones((3, 40, 40), np.float32)
    fits.HDUList([fits.PrimaryHDU(cube, header=header), beams]).writeto(tmp_path / "mb.fits")
    labels = np.zeros((40, 40), np.int32)
    labels[10:30, 10:30] = 1
    img = io.read(tmp_path / "mb.fits")
    for k, (bmaj, bmin) in enumerate([(9.0, 6.0), (10.0, 7.0), (12.6, 8.4)]):
        table = postprocess.measure(labels, intensity=img.channel(k))
        beam = np.pi / (4 * np.log(2)) * bmaj * bmin / 1.5**2
        assert table["flux_density"][0] == pytest.approx(400 / beam, rel=1e-4), k
    # review: 1-based CHAN, upper-case units, rows of a second POL; too few rows are said
    for name, chans, unit, pols in (
        ("one.fits", [1, 2, 3], "ARCSEC", [0, 0, 0]),
        ("pol.fits", [0, 1, 2, 0, 1, 2], "arcsec", [0, 0, 0, 1, 1, 1]),
    ):
        n = len(chans)
        table = fits.BinTableHDU.from_columns([
            fits.Column(name="BMAJ", format="E", unit=unit, array=([9.0, 10.0, 12.6] * 2)[:n]),
            fits.Column(name="BMIN", format="E", unit=unit, array=([6.0, 7.0, 8.4] * 2)[:n]),
            fits.Column(name="CHAN", format="J", array=chans),
            fits.Column(name="POL", format="J", array=pols)], name="BEAMS")  # fmt: skip
        fits.HDUList([fits.PrimaryHDU(cube, header=header), table]).writeto(tmp_path / name)
        plane = io.read(tmp_path / name).channel(2)
        assert plane.header["BMAJ"] == pytest.approx(12.6 / 3600), name
    columns = [
        fits.Column(name=k, format="E", unit="arcsec", array=[6.0]) for k in ("BMAJ", "BMIN")
    ]
    short = fits.BinTableHDU.from_columns(columns, name="BEAMS")
    fits.HDUList([fits.PrimaryHDU(cube, header=header), short]).writeto(tmp_path / "short.fits")
    with pytest.warns(SciconvWarning, match=r"BEAMS table does not give a beam for each of the 3"):
        io.read(tmp_path / "short.fits")
    plain = GridImage(cube[0][..., None], wcs=w, meta={"bunit": "JY/BEAM"})
    with pytest.warns(SciconvWarning, match=r"no restoring beam .* no flux_density"):
        assert "flux_density" not in postprocess.measure(labels, intensity=plain).colnames
    per_pixel = GridImage(cube[0][..., None], wcs=w, meta={"bunit": "Jy/pixel"})
    table = postprocess.measure(labels, intensity=per_pixel)
    assert table["flux_density"][0] == 400.0 and table["flux_density"].unit == u.Jy
    for bunit in ("electron/s/pix", "MJy/sr/pix"):  # per pixel, but not flux densities (review)
        odd = GridImage(cube[0][..., None], wcs=w, meta={"bunit": bunit})
        assert "flux_density" not in postprocess.measure(labels, intensity=odd).colnames
