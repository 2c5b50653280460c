"""Pixel sizes in lengths that are neither on the sky nor in microscopy metadata (QA 55): a FITS
WCS whose axes are lengths (a lab camera in mm, a map in m) and a projected GeoTIFF."""

import numpy as np
import pytest
import tifffile
from astropy import units as u
from astropy.io import fits

import sciconv as sc
from sciconv.io import PixelScale, image_pixel_scale, read_pixel_scale

NO_SKY = "WCS ignored: no celestial axes"


def _image():
    data = np.random.default_rng(0).normal(100, 3, (64, 64)).astype("f4")
    data[20:30, 20:30] += 2000  # one 100-pixel object
    return data


def _fits(tmp_path, cards, name="lab.fits"):
    path = tmp_path / name
    fits.PrimaryHDU(_image(), fits.Header(cards)).writeto(path)
    return path


LAB = {"CTYPE1": "LINEAR", "CTYPE2": "LINEAR", "CUNIT1": "mm", "CUNIT2": "mm",
       "CRPIX1": 1, "CRPIX2": 1, "CRVAL1": 0.0, "CRVAL2": 0.0,
       "CDELT1": 0.0065, "CDELT2": 0.0065}  # fmt: skip


def test_linear_mm_fits_gives_its_pixel_size_and_catalog_area_in_um2(tmp_path):
    path = _fits(tmp_path, LAB)
    with pytest.warns(UserWarning, match=NO_SKY):  # still no celestial WCS: said, as before
        img = sc.io.read(path)
    assert img.wcs is None
    assert image_pixel_scale(img) == PixelScale(0.0065, 0.0065, "mm")
    with pytest.warns(UserWarning, match=NO_SKY):
        assert read_pixel_scale(path) == PixelScale(0.0065, 0.0065, "mm")
    table = sc.postprocess.measure((img.data[..., 0] > 1000).astype(int), intensity=img)
    assert table["area"][0] == 100
    assert table["area_phys"].unit == u.um**2  # the catalog-unit rule: lengths in µm
    assert table["area_phys"][0] == pytest.approx(100 * 6.5**2)
    assert table["equivalent_diameter_phys"].unit == u.um


def test_x_y_axes_in_metres_with_a_cd_matrix(tmp_path):
    cards = {"CTYPE1": "X", "CTYPE2": "Y", "CUNIT1": "m", "CUNIT2": "m",
             "CD1_1": 2.0, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 3.0}  # fmt: skip
    path = _fits(tmp_path, cards)
    with pytest.warns(UserWarning, match=NO_SKY):
        img = sc.io.read(path)
    assert image_pixel_scale(img) == PixelScale(3.0, 2.0, "m")
    # a unit per axis: the y axis in mm is converted to the x axis's metres
    cards.update(CUNIT2="mm", CD2_2=3000.0)
    with pytest.warns(UserWarning, match=NO_SKY):
        assert read_pixel_scale(_fits(tmp_path, cards, "mixed.fits")) == PixelScale(3, 2, "m")


@pytest.mark.parametrize(
    "change",
    [
        {"CUNIT1": "deg", "CUNIT2": "deg"},  # not lengths
        {"CUNIT1": None, "CUNIT2": None},  # no unit: pixels of unknown size
        {"CDELT1": None, "CDELT2": None},  # no scale: astropy's 1 mm would be invented
        {"CTYPE1": "WAVE"},  # a spectral axis in metres is not a pixel size
    ],
)
def test_a_wcs_not_in_stated_lengths_gives_no_scale(tmp_path, change):
    cards = {k: v for k, v in {**LAB, **change}.items() if v is not None}
    path = _fits(tmp_path, cards)
    with pytest.warns(UserWarning, match="WCS ignored"):
        img = sc.io.read(path)
    assert image_pixel_scale(img) is None


def test_celestial_fits_unchanged(tmp_path):
    cards = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CUNIT1": "deg", "CUNIT2": "deg",
             "CRPIX1": 32, "CRPIX2": 32, "CRVAL1": 150.0, "CRVAL2": 2.0,
             "CDELT1": -0.2 / 3600, "CDELT2": 0.2 / 3600}  # fmt: skip
    path = _fits(tmp_path, cards)
    img = sc.io.read(path)
    assert img.wcs is not None
    assert image_pixel_scale(img) == PixelScale(0.2, 0.2, "arcsec")
    assert read_pixel_scale(path) == PixelScale(0.2, 0.2, "arcsec")


def _geotiff(tmp_path, keys, scale=(30.0, 30.0, 0.0), name="map.tif"):
    path = tmp_path / name
    tags = [(33550, "d", 3, scale), (33922, "d", 6, (0, 0, 0, 5e5, 4.1e6, 0)),
            (34735, "H", len(keys), keys)]  # fmt: skip
    tifffile.imwrite(path, _image(), extratags=tags)  # tifffile's default 72 dpi, no unit
    return path


# GeoKey directory: version 1.1.0, N keys; GTModelType 1 (projected), GTRasterType 1 (area),
# ProjectedCSType 32611 (WGS 84 / UTM 11N)
UTM = (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32611)


def test_projected_geotiff_gives_metres(tmp_path):
    path = _geotiff(tmp_path, UTM)
    img = sc.io.read(path)
    assert img.pixel_scale == PixelScale(30.0, 30.0, "m")
    assert "GeoTIFF ModelPixelScaleTag" in img.meta["pixel_size_from"]
    assert "EPSG:32611" in img.meta["pixel_size_from"]
    assert read_pixel_scale(path) == PixelScale(30.0, 30.0, "m")
    table = sc.postprocess.measure((img.data[..., 0] > 1000).astype(int), intensity=img)
    assert table["area_phys"].quantity[0].to_value(u.m**2) == pytest.approx(100 * 900.0)


def test_projected_geotiff_in_us_feet_is_converted(tmp_path):
    keys = (1, 1, 0, 3, 1024, 0, 1, 1, 3072, 0, 1, 32767, 3076, 0, 1, 9003)
    path = _geotiff(tmp_path, keys, scale=(3937.0, 3937.0, 0.0))
    assert read_pixel_scale(path) == PixelScale(1200.0, 1200.0, "m")


def test_geographic_geotiff_has_no_scale(tmp_path):
    # GTModelType 2 (geographic), GeographicType 4326: degrees on the Earth, not a length
    keys = (1, 1, 0, 2, 1024, 0, 1, 2, 2048, 0, 1, 4326)
    path = _geotiff(tmp_path, keys, scale=(0.00027, 0.00027, 0.0))
    img = sc.io.read(path)  # no warning (sciconv's warnings are errors here)
    assert img.pixel_scale is None
    assert "pixel_size" not in img.meta
    assert read_pixel_scale(path) is None


def test_projected_geotiff_in_an_unknown_unit_warns(tmp_path):
    keys = (1, 1, 0, 2, 1024, 0, 1, 1, 3076, 0, 1, 9999)
    path = _geotiff(tmp_path, keys)
    with pytest.warns(UserWarning, match=r"map\.tif: GeoTIFF pixel scale ignored: linear unit"):
        img = sc.io.read(path)
    assert img.pixel_scale is None


def test_read_gives_a_lab_fits_its_pixel_scale_and_source(tmp_path):
    """``io.read`` itself (not only ``image_pixel_scale``) gives the lab file its pixel size."""
    header = fits.Header(
        {"CTYPE1": "LINEAR", "CTYPE2": "LINEAR", "CUNIT1": "mm", "CUNIT2": "mm",
         "CDELT1": 0.0065, "CDELT2": 0.0065, "CRPIX1": 1.0, "CRPIX2": 1.0}
    )  # fmt: skip
    fits.writeto(tmp_path / "lab.fits", np.zeros((16, 16), np.float32), header)
    with pytest.warns(sc.errors.SciconvWarning, match="WCS"):  # not a sky WCS: said, as before
        img = sc.io.read(tmp_path / "lab.fits")
    assert img.wcs is None
    assert img.pixel_scale is not None and img.pixel_scale.x == pytest.approx(0.0065)
    assert img.pixel_scale.unit == "mm" and "pixel_size_from" in img.meta
