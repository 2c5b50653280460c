"""Physical pixel scale through the stages (issue 17) and NDData in datasets (issue 18)."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.table import Table

from sciconv import simulate
from sciconv.datasets._arrays import image_array
from sciconv.datasets._scan import common_scale
from sciconv.errors import ConfigError, DatasetError, InferenceError, ModelError, SciconvWarning
from sciconv.inference import (
    image_pixel_scale,
    physical_object_size,
    resample,
    resolve_scale,
)
from sciconv.io import GridImage, PixelScale
from sciconv.postprocess import add_physical_columns

UM = PixelScale(0.25, 0.25, "um")

# ---------------------------------------------------------------- resolve_scale


@pytest.mark.parametrize(
    ("image", "model", "scale", "want"),
    [
        (PixelScale(0.1, 0.1, "um"), UM, "auto", 0.4),  # finer image: shrink it
        (PixelScale(500, 500, "nm"), UM, "auto", 2.0),  # units converted
        (
            {"y": 0.2, "x": 0.2, "unit": "arcsec"},
            {"y": 0.4, "x": 0.4, "unit": "arcsec"},
            "auto",
            0.5,
        ),
        (PixelScale(0.2501, 0.2499, "um"), UM, "auto", 1.0),  # within tolerance: no resampling
        (PixelScale(0.1, 0.1, "um"), None, "auto", 1.0),  # the model says nothing
        (PixelScale(0.1, 0.1, "um"), UM, 0.7, 0.7),  # explicit factor wins
        (None, UM, 0.5 * u.um, 2.0),  # explicit image scale
        (PixelScale(0.1, 0.1, "um"), UM, None, 1.0),  # resampling switched off
    ],
)
def test_resolve_scale(image, model, scale, want):
    assert resolve_scale(image, model, scale) == pytest.approx(want, rel=1e-12)


def test_resolve_scale_warns_when_only_the_model_knows():
    with pytest.warns(SciconvWarning, match=r"a\.tif: the image's pixel scale is unknown.*0\.25"):
        assert resolve_scale(None, UM, path="a.tif") == 1.0


def test_resolve_scale_errors():
    with pytest.raises(ConfigError, match=r"in arcsec but the model was trained at 0\.25 um"):
        resolve_scale(PixelScale(0.2, 0.2, "arcsec"), UM)
    with pytest.raises(ConfigError, match=r"scale must be 'auto'.*got 'atuo'"):
        resolve_scale(None, UM, "atuo")
    with pytest.raises(ConfigError, match=r"positive number.*got -2"):
        resolve_scale(None, UM, -2)


def test_physical_object_size_and_image_scale():
    img = GridImage(np.zeros((4, 4, 1)), meta={"pixel_size": (0.5, 0.5), "pixel_unit": "µm"})
    assert physical_object_size(12 * u.um, image_pixel_scale(img)) == 24.0
    assert physical_object_size(12000 * u.nm, img.pixel_scale) == 24.0
    assert physical_object_size(18, None) == 18.0
    with pytest.raises(ConfigError, match="pixel scale is unknown"):
        physical_object_size(12 * u.um, None)
    with pytest.raises(ConfigError, match="does not convert"):
        physical_object_size(1 * u.arcsec, img.pixel_scale)
    wcs = simulate.tan_wcs((8, 8), ra=10.0, dec=0.0, pixel_scale=0.2)
    assert image_pixel_scale(CCDData(np.zeros((8, 8)), unit="adu", wcs=wcs)).mean == 0.2


def test_resample_shapes_values_and_labels():
    x = np.tile(np.linspace(0, 1, 20, dtype=np.float32), (10, 1))[..., None]
    small = resample(x, 0.5)
    assert small.shape == (5, 10, 1) and small.dtype == np.float32
    assert small.mean() == pytest.approx(x.mean(), abs=0.01)
    labels = np.zeros((8, 8), np.int32)
    labels[2:6, 2:6] = 7
    big = resample(labels, 2.0, order=0)
    assert big.dtype == np.int32 and set(np.unique(big)) == {0, 7}
    assert (big == 7).sum() == 4 * 16
    with pytest.raises(InferenceError, match="into"):
        resample(x, 0.05)


# ---------------------------------------------------------------- catalogs, model metadata


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_resample_keeps_a_bad_region_its_size(factor):
    """NaN spread over the interpolation's reach: ~3 px of good data lost around a hole (1,236
    extra NaN pixels at 0.5 around a 100 x 100 hole); now the hole maps, good pixels stay."""
    x = np.random.default_rng(0).random((200, 200)).astype(np.float32)
    x[50:150, 50:150] = np.nan
    y = resample(x, factor)
    side = round(100 * factor)
    assert int(np.isnan(y).sum()) == side * side
    lo = round(50 * factor)
    assert np.isnan(y[lo : lo + side, lo : lo + side]).all()
    assert np.isfinite(y[:lo, :]).all() and 0 <= np.nanmin(y) and np.nanmax(y) <= 1


def test_add_physical_columns():
    t = Table({"area": [4, 9], "semi_major": [2.0, 3.0], "semi_minor": [1.0, 1.5]})
    out = add_physical_columns(t, PixelScale(0.2, 0.2, "arcsec"))
    assert out is t
    np.testing.assert_allclose(t["area_phys"], [0.16, 0.36])
    assert t["area_phys"].unit == u.arcsec**2 and t["semi_major_phys"].unit == u.arcsec
    np.testing.assert_allclose(t["semi_major_phys"], [0.4, 0.6])
    np.testing.assert_allclose(t["equivalent_diameter_phys"], 2 * np.sqrt(t["area_phys"] / np.pi))
    assert t["area_phys"].meta["ucd"] == "phys.area"
    assert t.meta["PIXSCALE"] == "0.2 0.2 arcsec"
    assert add_physical_columns(Table({"area": [1]}), None).colnames == ["area"]
    with pytest.raises(ConfigError, match="'area' column"):
        add_physical_columns(Table({"x": [1]}), UM)


def test_physical_area_of_a_skewed_wcs_is_the_determinant(data_dir):
    """The real HST/ACS HRC cutout's CD matrix is skewed by 5.8°: area_phys was y * x (the
    columns' lengths), 0.51 % too large; it is |det CD| now, as astropy's pixel area."""
    from astropy.wcs.utils import proj_plane_pixel_area

    from sciconv import io

    img = io.read(data_dir / "real" / "hst" / "j8bt06nyq_sci_cutout.fits")
    scale = img.pixel_scale
    true_area = proj_plane_pixel_area(img.wcs.celestial) * 3600**2  # arcsec² per pixel
    assert scale.y * scale.x > 1.005 * true_area  # the skew is real
    np.testing.assert_allclose(scale.area, true_area, rtol=1e-9)
    np.testing.assert_allclose(scale.to("mas").area, true_area * 1e6, rtol=1e-9)
    t = add_physical_columns(Table({"area": [100], "semi_major": [2.0]}), scale)
    np.testing.assert_allclose(t["area_phys"], 100 * true_area, rtol=1e-9)
    np.testing.assert_allclose(t["semi_major_phys"], 2 * np.sqrt(true_area), rtol=1e-9)
    assert PixelScale(0.2, 0.2, "arcsec").area == pytest.approx(0.04)  # square: unchanged
    with pytest.raises(ConfigError, match="area_ratio"):
        PixelScale(0.2, 0.2, "arcsec", 1.5)


def test_model_metadata_pixel_scale_round_trip(tmp_path):
    from sciconv import models
    from sciconv.models.metadata import get_pixel_scale

    model = models.classifier((8, 8, 1), 2, filters=(2,), dense=())
    models.set_metadata(model, pixel_scale=0.65 * u.um)
    assert models.get_metadata(model)["pixel_scale"] == {"y": 0.65, "x": 0.65, "unit": "um"}
    path = tmp_path / "m.keras"
    model.save(path)
    assert get_pixel_scale(models.load(path)) == PixelScale(0.65, 0.65, "um")
    with pytest.raises(ModelError, match="pixel_scale"):
        models.set_metadata(model, pixel_scale=0.65)


# ---------------------------------------------------------------- datasets


def test_common_scale_agrees_or_warns():
    a, b = PixelScale(0.2, 0.2, "arcsec"), PixelScale(0.4, 0.4, "arcsec")
    assert common_scale(["a", "b"], [a, PixelScale(200, 200, "mas")], what="x") == a
    assert common_scale(["a", "b"], [None, None], what="x") is None
    with pytest.warns(SciconvWarning, match=r"different pixel scales \(e\.g\. a: 0\.2"):
        assert common_scale(["a", "b"], [a, b], what="x") is None
    with pytest.warns(SciconvWarning, match="1 do not"):
        assert common_scale(["a", "b"], [a, None], what="x") is None
    with pytest.warns(SciconvWarning, match="different pixel scales"):
        assert common_scale(["a", "b"], [a, UM], what="x") is None


def _fits_folder(root, scales):
    for c, name in enumerate(["elliptical", "spiral"]):
        (root / name).mkdir()
        for i in range(2):
            scale = scales[2 * c + i]
            header = None
            if scale is not None:
                header = simulate.tan_wcs((8, 8), ra=10.0, dec=0.0, pixel_scale=scale).to_header()
            fits.writeto(root / name / f"{i}.fits", np.full((8, 8), c + i, "float32"), header)


def test_from_folder_records_the_files_pixel_scale(tmp_path):
    from sciconv.datasets import from_folder

    _fits_folder(tmp_path, [0.2, 0.2, 0.2, 0.2])
    ds = from_folder(tmp_path, batch_size=4, seed=0)
    assert ds.pixel_scale == {"y": 0.2, "x": 0.2, "unit": "arcsec"}
    assert PixelScale.from_value(ds.pixel_scale).mean == 0.2


def test_from_folder_with_mixed_scales_records_none(tmp_path):
    from sciconv.datasets import from_folder

    _fits_folder(tmp_path, [0.2, 0.2, 0.4, 0.2])
    with pytest.warns(SciconvWarning, match="different pixel scales"):
        ds = from_folder(tmp_path, batch_size=4, seed=0)
    assert ds.pixel_scale is None


def test_image_array_takes_nddata_ccddata_gridimage_and_arrays():
    data = np.arange(12.0).reshape(3, 4)
    mask = data > 9
    x, w = image_array(CCDData(data, unit="adu", mask=mask))
    assert x.shape == (3, 4, 1) and x.dtype == np.float32
    assert np.isnan(x[mask]).all() and np.array_equal(x[~mask][:, 0], data[~mask])
    np.testing.assert_array_equal(w, (~mask).astype(np.float32))
    cube, w = image_array(CCDData(np.ones((2, 3, 4)), unit="adu"))  # (C, H, W) -> (H, W, C)
    assert cube.shape == (3, 4, 2) and w is None
    img = GridImage(np.ones((3, 4, 1), np.float32), mask=np.zeros((3, 4, 1), bool))
    img.mask[1, 1] = True
    assert image_array(img)[1][1, 1] == 0 and image_array(img)[1].sum() == 11
    nan = data.copy()
    nan[0, 0] = np.nan
    assert image_array(nan)[1][0, 0] == 0
    with pytest.raises(DatasetError, match=r"images\[3\] must be \(H, W\) or \(H, W, C\)"):
        image_array(np.ones(5), name="images[3]")


def test_from_arrays_takes_ccddata_with_mask_and_wcs():
    from sciconv.datasets._images import from_arrays

    wcs = simulate.tan_wcs((8, 8), ra=10.0, dec=0.0, pixel_scale=0.2)
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(4):
        mask = np.zeros((8, 8), bool)
        mask[0, :] = True  # a bad row of huge values: masked, so it must not sway the limits
        data = rng.normal(100.0, 1.0, (8, 8))
        data[0, :] = 1e9
        frames.append(CCDData(data, unit="adu", mask=mask, wcs=wcs))
    ds = from_arrays(frames, [0, 1, 0, 1], batch_size=4, shuffle=False, normalize="minmax")
    x, y = next(iter(ds))
    assert tuple(x.shape) == (4, 8, 8, 1) and y.numpy().tolist() == [0, 1, 0, 1]
    # masked row: filled as the network always sees bad pixels (the image mirrored at its edge)
    np.testing.assert_array_equal(x.numpy()[:, 0], x.numpy()[:, 2])
    assert x.numpy()[:, 1:].max() == pytest.approx(1.0) and x.numpy()[:, 1:].min() == 0.0
    assert ds.pixel_scale == {"y": 0.2, "x": 0.2, "unit": "arcsec"}
    assert ds.task == "classification" and ds.class_counts.tolist() == [2, 2]

    reg = from_arrays(np.ones((3, 6, 6)), [0.5, 1.5, 2.5], batch_size=3)
    assert reg.task == "regression" and reg.pixel_scale is None
    assert next(iter(reg))[1].dtype.name == "float32"
    with pytest.raises(DatasetError, match="N labels; got 3 image"):
        from_arrays(np.ones((3, 6, 6)), [0, 1])


def test_predict_instances_resamples_by_the_pixel_scales_of_image_and_model():
    """A model trained at 0.5 um/px on an image at 0.25 um/px: the image is shrunk by 0.5, so
    min_size (counted at the model's scale) removes an object that is large enough unscaled."""
    import keras

    from sciconv.inference import predict_instances
    from sciconv.io import GridImage
    from sciconv.models import attach_metadata

    inputs = keras.Input((None, None, 1))
    logits = keras.layers.Conv2D(
        2, 1, kernel_initializer=keras.initializers.Constant([[[[-1.0, 1.0]]]])
    )(inputs)
    model = attach_metadata(
        keras.Model(inputs, keras.layers.Softmax()(logits)),
        pixel_scale={"y": 0.5, "x": 0.5, "unit": "um"},
        postprocess={"min_size": 60},  # recorded: the model's pixels
    )
    data = np.zeros((64, 64, 1), "float32")
    data[6:16, 6:16] = 5  # 100 px here, under 60 px at the model's scale (blur included)
    data[30:50, 30:50] = 5
    img = GridImage(data, meta={"pixel_scale": {"y": 0.25, "x": 0.25, "unit": "um"}})
    kw = dict(normalize=None, progress=False)
    with pytest.warns(SciconvWarning, match=r"resampling the image by 0\.5 .* 0\.25 um"):
        auto = predict_instances(model, img, **kw)
    assert auto.shape == (64, 64) and int(auto.max()) == 1
    assert int(predict_instances(model, img, scale=None, **kw).max()) == 2
    assert int(predict_instances(model, img, scale=1.0, **kw).max()) == 2
    with pytest.warns(SciconvWarning, match="pixel scale"):
        predict_instances(model, data, **kw)


def test_predict_instances_object_size_physical_or_pixels_resamples_like_scale():
    """A model trained on 10 px objects, objects of 5 um at 0.25 um/px (20 px): shrink by 0.5."""
    import keras

    from sciconv.inference import object_size_factor, predict_instances
    from sciconv.models import attach_metadata

    inputs = keras.Input((None, None, 1))
    logits = keras.layers.Conv2D(
        2, 1, kernel_initializer=keras.initializers.Constant([[[[-1.0, 1.0]]]])
    )(inputs)
    plain = keras.Model(inputs, keras.layers.Softmax()(logits))
    # a recorded min_size counts the model's pixels
    model = attach_metadata(plain, object_size=10.0, postprocess={"min_size": 60})
    data = np.zeros((64, 64, 1), "float32")
    data[6:16, 6:16] = 5  # 100 px here, under 60 px once shrunk by 0.5
    data[30:50, 30:50] = 5
    img = GridImage(data, meta={"pixel_scale": {"y": 0.25, "x": 0.25, "unit": "um"}})
    kw = dict(normalize=None, progress=False)
    by_scale = predict_instances(model, img, scale=0.5, **kw)
    assert by_scale.shape == (64, 64) and int(by_scale.max()) == 1
    assert int(predict_instances(model, img, scale=None, **kw).max()) == 2
    for size in (5 * u.um, 5000 * u.nm, 20):  # physical (units converted) or pixels
        np.testing.assert_array_equal(
            predict_instances(model, img, object_size=size, **kw), by_scale
        )
    # a plain array: the pixel scale through scale=
    np.testing.assert_array_equal(
        predict_instances(model, data, object_size=5 * u.um, scale=0.25 * u.um, **kw), by_scale
    )
    # objects of the training size: no resampling at all
    np.testing.assert_array_equal(
        predict_instances(model, img, object_size=2.5 * u.um, return_prob=True, **kw)[1],
        predict_instances(model, img, scale=None, return_prob=True, **kw)[1],
    )
    assert object_size_factor(12 * u.um, 18.0, PixelScale(0.5, 0.5, "um")) == 0.75
    with pytest.raises(ConfigError, match="pixel scale is unknown"):
        predict_instances(model, data, object_size=5 * u.um, **kw)
    with pytest.raises(ConfigError, match="does not convert"):
        predict_instances(model, img, object_size=1 * u.arcsec, **kw)
    with pytest.raises(ConfigError, match="does not record one"):
        predict_instances(plain, img, object_size=5 * u.um, **kw)
    with pytest.raises(InferenceError, match="both set the resampling"):
        predict_instances(model, img, object_size=5 * u.um, scale=0.5, **kw)
    with pytest.raises(ConfigError, match="positive"):
        predict_instances(model, img, object_size=-3, **kw)


@pytest.mark.parametrize("orientation", [0.0, 37.0, 90.0, -60.0])
def test_physical_semi_axes_follow_the_pixel_shape(data_dir, orientation):
    """semi_major_phys / semi_minor_phys were the pixel axes times sqrt(pixel area): -8..+9 % on
    the real HRC cutout (skewed, non-square pixels), up to 22 % for 0.10 x 0.15" pixels. Now the
    ellipse is mapped through the WCS; checked against astropy's sky separations of the
    ellipse's outline from its centre (max: semi-major, min: semi-minor)."""
    from sciconv import io

    img = io.read(data_dir / "real" / "hst" / "j8bt06nyq_sci_cutout.fits")
    a, b, x0, y0 = 6.0, 2.0, 100.0, 120.0
    t = Table({"area": [40], "semi_major": [a], "semi_minor": [b], "orientation": [orientation]})
    add_physical_columns(t, img.pixel_scale)
    phi = np.linspace(0, 2 * np.pi, 3601)
    th = np.deg2rad(orientation)
    px = x0 + a * np.cos(phi) * np.cos(th) - b * np.sin(phi) * np.sin(th)
    py = y0 + a * np.cos(phi) * np.sin(th) + b * np.sin(phi) * np.cos(th)
    centre = img.wcs.celestial.pixel_to_world(x0, y0)
    sep = centre.separation(img.wcs.celestial.pixel_to_world(px, py)).arcsec
    np.testing.assert_allclose(t["semi_major_phys"][0], sep.max(), rtol=2e-4)
    np.testing.assert_allclose(t["semi_minor_phys"][0], sep.min(), rtol=2e-4)
    old = a * np.sqrt(img.pixel_scale.area)  # what the rule before gave
    assert orientation != 37.0 or abs(old / sep.max() - 1) > 0.02


def test_pixel_scale_matrix_of_non_square_pixels_and_its_units():
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    th = np.deg2rad(30)
    w.wcs.cd = (
        np.array([[0.1 * np.cos(th), -0.15 * np.sin(th)], [0.1 * np.sin(th), 0.15 * np.cos(th)]])
        / 3600
    )
    scale = PixelScale.from_wcs(w)
    assert (scale.y, scale.x) == pytest.approx((0.15, 0.1))
    t = Table({"area": [1], "semi_major": [20.0], "semi_minor": [4.0], "orientation": [0.0]})
    add_physical_columns(t, scale)  # along x: 20 x 0.1"; across: 4 x 0.15"
    np.testing.assert_allclose([t["semi_major_phys"][0], t["semi_minor_phys"][0]], [2.0, 0.6])
    np.testing.assert_allclose(scale.to("mas").jacobian, scale.jacobian * 1000)
    assert PixelScale(0.5, 0.25, "um").jacobian.tolist() == [[0.25, 0.0], [0.0, 0.5]]
    with pytest.raises(ConfigError, match="invertible 2 x 2"):
        PixelScale(0.2, 0.2, "arcsec", matrix=[[1, 2], [2, 4]])
    with pytest.raises(ConfigError, match="invertible 2 x 2"):
        PixelScale(0.2, 0.2, "arcsec", matrix="abc")
    with pytest.raises(ConfigError, match=r"not the pixel's x = 0\.1"):
        PixelScale(0.1, 0.1, "arcsec", matrix=[[5, 0], [0, 5]])
    # an orientation column in radians is read as such
    t = Table({"area": [1], "semi_major": [20.0], "semi_minor": [4.0], "orientation": [np.pi / 2]})
    t["orientation"].unit = "rad"
    add_physical_columns(t, PixelScale(0.5, 0.1, "um"))  # along y: 20 x 0.5 um
    np.testing.assert_allclose([t["semi_major_phys"][0], t["semi_minor_phys"][0]], [10.0, 0.4])


def _sip_wcs():
    """A 4096 px TAN-SIP frame (HST ACS/WFC-like 0.05" pixels) with a strong quadratic term."""
    from astropy.wcs import WCS, Sip

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    w.wcs.crpix = [2048.0, 2048.0]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.cd = np.array([[-0.05, 0.0], [0.0, 0.05]]) / 3600
    a = np.zeros((3, 3))
    b = np.zeros((3, 3))
    a[2, 0] = 8e-6  # x' = x + 8e-6 x^2: pixels 3 % longer along x at the far corner
    b[0, 2] = 6e-6
    w.sip = Sip(a, b, None, None, w.wcs.crpix)
    return w


def test_physical_sizes_follow_a_distorted_wcs_object_by_object():
    """A detector frame with SIP distortion: the pixel's size on the sky changes over the chip
    (here 3 % at the corner), which one matrix at CRPIX misses; given the WCS, each object's
    area and axes use the sky's local shape. Checked against astropy's sky separations of the
    ellipse's outline (which apply the SIP terms)."""
    wcs = _sip_wcs()
    scale = PixelScale.from_wcs(wcs)
    x0, y0, a, b, angle = 3900.0, 3800.0, 8.0, 3.0, 30.0
    t = Table(
        {"area": [100], "x": [x0], "y": [y0], "semi_major": [a], "semi_minor": [b],
         "orientation": [angle]}
    )  # fmt: skip
    add_physical_columns(t, scale, wcs=wcs)
    phi = np.linspace(0, 2 * np.pi, 3601)
    th = np.deg2rad(angle)
    px = x0 + a * np.cos(phi) * np.cos(th) - b * np.sin(phi) * np.sin(th)
    py = y0 + a * np.cos(phi) * np.sin(th) + b * np.sin(phi) * np.cos(th)
    sep = wcs.pixel_to_world(x0, y0).separation(wcs.pixel_to_world(px, py)).arcsec
    np.testing.assert_allclose(t["semi_major_phys"][0], sep.max(), rtol=1e-3)
    np.testing.assert_allclose(t["semi_minor_phys"][0], sep.min(), rtol=1e-3)
    flat = Table({k: t[k] for k in ("area", "x", "y", "semi_major", "semi_minor", "orientation")})
    add_physical_columns(flat, scale)  # the matrix at CRPIX alone
    assert flat["semi_major_phys"][0] < 0.985 * sep.max()  # 3 % short at this corner
    assert t["area_phys"][0] > 1.03 * flat["area_phys"][0]


@pytest.mark.parametrize("lon", ["MALN", "PMLN", "HGLN", "CRLN"])
def test_a_wcs_on_a_planet_or_the_sun_has_no_sky_pixel_scale(lon):
    """QA: a Mars longitude/latitude WCS got PIXSCALE and area_phys in arcsec, which mean
    nothing there; sky axes (helioprojective included) keep theirs."""
    from astropy.wcs import WCS

    from sciconv.io import PixelScale

    def scale(ctypes):
        w = WCS(naxis=2)
        w.wcs.ctype = ctypes
        w.wcs.cdelt = [0.2 / 3600, 0.2 / 3600]
        return PixelScale.from_wcs(w)

    assert scale([f"{lon}-CAR", f"{lon[:2]}LT-CAR"]) is None
    for sky in (["HPLN-TAN", "HPLT-TAN"], ["RA---TAN", "DEC--TAN"], ["ELON-TAN", "ELAT-TAN"]):
        assert scale(sky).x == pytest.approx(0.2)


def _pairs_folder(root, resolutions):
    import tifffile

    (root / "img").mkdir()
    (root / "lab").mkdir()
    rng = np.random.default_rng(0)
    for i, res in enumerate(resolutions):
        lab = np.zeros((32, 32), np.uint16)
        lab[4:12, 4:12], lab[18:28, 16:26] = 1, 2
        img = (lab > 0) * 200.0 + rng.normal(20, 3, lab.shape)
        kw = {} if res is None else {"resolution": (res, res), "metadata": {"unit": "um"}}
        tifffile.imwrite(root / "img" / f"{i}.tif", img.astype(np.float32), imagej=True, **kw)
        tifffile.imwrite(root / "lab" / f"{i}.tif", lab)


def test_from_pairs_records_the_images_pixel_scale_and_fit_keeps_it(tmp_path):
    # compat QA: from_pairs recorded none, so a segmenter trained on 0.5 um pairs was never
    # resampled (316 objects for 103 on 0.25 um images)
    from sciconv import models, training
    from sciconv.datasets import from_pairs
    from sciconv.models import get_metadata

    _pairs_folder(tmp_path, [2.0, 2.0, 2.0])  # 2 pixels per um: 0.5 um
    ds = from_pairs(tmp_path / "img", tmp_path / "lab", batch_size=2, seed=0)
    assert ds.pixel_scale == {"y": 0.5, "x": 0.5, "unit": "um"}
    model = models.segmenter((None, None, 1), num_classes=2, depth=1, filters=4)
    training.fit(model, ds, epochs=1, steps_per_epoch=1, verbose=0)
    assert get_metadata(model)["pixel_scale"] == {"y": 0.5, "x": 0.5, "unit": "um"}


def test_from_pairs_with_mixed_scales_records_none(tmp_path):
    from sciconv.datasets import from_pairs

    _pairs_folder(tmp_path, [2.0, None, 2.0])
    with pytest.warns(SciconvWarning, match="no pixel scale is recorded"):
        ds = from_pairs(tmp_path / "img", tmp_path / "lab", batch_size=2, seed=0)
    assert ds.pixel_scale is None
