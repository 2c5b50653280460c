"""Units of Quantity arguments and instance ids beyond int32 in the postprocess bridges.

Each test checks against astropy, photutils, shapely or plain numpy arithmetic (QA46).
"""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import photutils_name
from astropy import units as u
from astropy.nddata import CCDData, NDData, StdDevUncertainty

from sciconv import postprocess
from sciconv.errors import ConfigError, SciconvWarning

BIG = 2**31 + 5  # an id int32 cannot hold


@pytest.fixture
def jy_field():
    """16-pixel object; 2 Jy per pixel, background 1 Jy (given in mJy), error 3 mJy."""
    labels = np.zeros((20, 20), np.int32)
    labels[5:9, 5:9] = 1
    image = np.full((20, 20), 2.0) * u.Jy
    background = np.full((20, 20), 1000.0) * u.mJy
    error = np.full((20, 20), 3.0) * u.mJy
    return labels, image, background, error


# --------------------------------------------------------------------------------------------
# 1. Quantity background= / error= are converted to the intensity's unit


def test_measure_converts_quantity_background_and_error_to_the_intensity_unit(jy_field):
    labels, image, background, error = jy_field
    table = postprocess.measure(labels, intensity=image, background=background, error=error)
    sel = labels == 1
    flux = (image[sel] - background[sel]).sum().to(u.Jy)  # astropy's arithmetic: 16 Jy
    flux_err = np.sqrt((error[sel] ** 2).sum()).to(u.Jy)  # 0.012 Jy
    assert table["flux"].unit == u.Jy
    assert table["flux"][0] == pytest.approx(flux.value, rel=1e-12)
    assert table["background"][0] == pytest.approx(background[sel].mean().to_value(u.Jy))
    assert table["flux_err"][0] == pytest.approx(flux_err.value, rel=1e-12)
    # the same error as an NDData uncertainty in mJy (converted by astropy) gives the same
    nd = NDData(image.value, unit="Jy", uncertainty=StdDevUncertainty(error.value, unit="mJy"))
    assert postprocess.measure(labels, intensity=nd)["flux_err"][0] == pytest.approx(
        table["flux_err"][0], rel=1e-12
    )
    # a single number as a Quantity broadcasts too
    one = postprocess.measure(labels, intensity=image, background=500.0 * u.mJy)
    assert one["flux"][0] == pytest.approx((image[sel] - 500 * u.mJy).sum().to_value(u.Jy))


@pytest.mark.parametrize("name", ["background", "error"])
def test_measure_refuses_a_quantity_that_does_not_convert(jy_field, name):
    labels, image, _, _ = jy_field
    with pytest.raises(ConfigError, match=rf"{name} is in m, .*intensity's unit Jy"):
        postprocess.measure(labels, intensity=image, **{name: np.ones((20, 20)) * u.m})


def test_quantity_beside_an_intensity_without_unit(jy_field):
    """Only a dimensionless Quantity has a meaning next to bare pixel values."""
    labels, image, background, _ = jy_field
    plain = image.value
    with pytest.raises(ConfigError, match="background is in mJy but the intensity has no unit"):
        postprocess.measure(labels, intensity=plain, background=background)
    table = postprocess.measure(labels, intensity=plain, background=50 * u.percent)
    assert table["flux"][0] == pytest.approx(16 * (2.0 - 0.5))


def test_to_photutils_converts_quantity_background_and_error(jy_field):
    pytest.importorskip("photutils")
    labels, image, background, error = jy_field
    _, cat = postprocess.to_photutils(labels, image, background=background, error=error)
    sel = labels == 1
    assert cat.segment_flux[0].to_value(u.Jy) == pytest.approx(
        (image[sel] - background[sel]).sum().to_value(u.Jy), rel=1e-12
    )
    assert getattr(cat, photutils_name("segment_flux_err"))[0].to_value(u.Jy) == pytest.approx(
        np.sqrt((error[sel] ** 2).sum()).to_value(u.Jy), rel=1e-12
    )
    ours = postprocess.measure(labels, intensity=image, background=background, error=error)
    assert cat.segment_flux[0].to_value(u.Jy) == pytest.approx(ours["flux"][0], rel=1e-12)
    with pytest.raises(ConfigError, match=r"error is in m, .*unit Jy"):
        postprocess.to_photutils(labels, image, error=np.ones((20, 20)) * u.m)


def test_estimate_error_converts_a_quantity_background_rms(jy_field):
    # a 3 mJy rms beside a Jy image was read as 3 Jy (QA inputs)
    _, image, background, _ = jy_field
    rms = np.full((20, 20), 3.0) * u.mJy
    error, _ = postprocess.estimate_error(
        NDData(image.value, unit="Jy"), background=background, background_rms=rms
    )
    np.testing.assert_allclose(error, 0.003)
    with pytest.raises(ConfigError, match=r"background_rms is in m"):
        postprocess.estimate_error(
            NDData(image.value, unit="Jy"), background=background, background_rms=rms.value * u.m
        )


# --------------------------------------------------------------------------------------------
# 2. to_ccddata / to_photutils and ids above 2**31 - 1


def _two_objects(big=BIG):
    labels = np.zeros((16, 16), np.int64)
    labels[2:6, 2:6] = big
    labels[8:12, 8:12] = 3
    return labels


def test_to_ccddata_keeps_ids_beyond_int32(tmp_path):
    labels = _two_objects()
    ccd = postprocess.to_ccddata(labels)
    assert ccd.data.dtype == np.int64
    np.testing.assert_array_equal(ccd.data, labels)
    path = tmp_path / "labels.fits"
    ccd.write(path)
    np.testing.assert_array_equal(CCDData.read(path, unit=u.one).data, labels)  # astropy: exact
    assert postprocess.to_ccddata(_two_objects(big=7)).data.dtype == np.int32  # as before


def test_to_photutils_renumbers_ids_beyond_int32_and_keeps_them():
    photutils = pytest.importorskip("photutils.segmentation")
    labels = _two_objects()
    image = np.where(labels == 3, 2.0, 1.0)
    with pytest.warns(SciconvWarning, match="renumbered 1..2 for photutils"):
        segm, cat = postprocess.to_photutils(labels, image)
    assert list(segm.labels) == [1, 2]
    assert list(cat.original_label) == [3, BIG]
    table = cat.to_table()
    assert table.colnames[:2] == ["label", "original_label"]
    # fluxes against numpy, and against photutils on the ids renumbered by hand
    for row in table:
        sel = labels == row["original_label"]
        assert row["segment_flux"] == pytest.approx(image[sel].sum())
    ref = photutils.SourceCatalog(
        image, photutils.SegmentationImage(np.searchsorted([0, 3, BIG], labels))
    )
    np.testing.assert_allclose(table["segment_flux"], ref.segment_flux)


def test_to_photutils_leaves_ordinary_ids_alone():
    pytest.importorskip("photutils")
    labels = _two_objects(big=7)
    segm, cat = postprocess.to_photutils(labels, np.ones(labels.shape))  # no warning
    assert list(segm.labels) == [3, 7] and "original_label" not in cat.to_table().colnames


# --------------------------------------------------------------------------------------------
# 3. object_scores with sparse (hashed, offset) ids


def test_object_scores_renumbers_sparse_ids_and_keeps_int64():
    import tracemalloc

    labels = np.zeros((32, 32), np.int64)
    labels[2:8, 2:8] = 1 << 36  # a hashed id: the old code allocated 512 GiB (MemoryError)
    labels[12:20, 12:20] = BIG
    labels[22:30, 2:10] = 5
    rng = np.random.default_rng(0)
    prob = rng.random((32, 32)).astype(np.float32)
    prob[3, 3] = np.nan
    scores = postprocess.object_scores(labels, prob)
    assert scores["label"].dtype == np.int64
    assert scores["label"].tolist() == [5, BIG, 1 << 36]
    expected = [np.nanmean(prob[labels == i].astype(np.float64)) for i in (5, BIG, 1 << 36)]
    np.testing.assert_allclose(scores["score"], expected, rtol=1e-6)
    assert scores.colnames == ["label", "score"]  # no spread: no uncertainty column
    # join with measure (which renumbers the same way) on the exact ids
    assert scores["label"].tolist() == postprocess.measure(labels)["label"].tolist()
    # memory by objects: ids of 1e8 allocated 2.4 GB for this 32 x 32 image
    offset = np.where(labels > 0, np.searchsorted([0, 5, BIG, 1 << 36], labels) + 10**8, 0)
    tracemalloc.start()
    try:
        small = postprocess.object_scores(offset, prob)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000
    assert small["label"].dtype == np.int32
    np.testing.assert_allclose(small["score"], expected, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# 4. + 5. GeoJSON: int64 ids back, centroids in the geometry's convention


def test_geojson_round_trip_of_ids_beyond_int32():
    pytest.importorskip("shapely")
    labels = _two_objects()
    labels[8:12, 8:14] = 3
    back = postprocess.geojson_to_labels(postprocess.labels_to_geojson(labels), labels.shape)
    assert back.dtype == np.int64
    np.testing.assert_array_equal(back, labels)


def test_geojson_centroid_measurements_are_the_polygon_centroid():
    shapely_geometry = pytest.importorskip("shapely.geometry")
    labels = np.zeros((24, 24), np.int32)
    labels[8:12, 8:14] = 1
    labels[14:21, 2:5] = 2
    labels[15:19, 3] = 0  # not convex
    intensity = np.ones((24, 24))
    table = postprocess.measure(labels, intensity=intensity)
    fc = postprocess.labels_to_geojson(labels, measurements=table)
    for feature in fc["features"]:
        geom = shapely_geometry.shape(feature["geometry"])
        m = feature["properties"]["measurements"]
        row = table[table["label"] == feature["properties"]["label"]][0]
        # a flat intensity: the weighted centroid is the geometric one, the polygon's
        assert (m["x px"], m["y px"]) == pytest.approx(geom.centroid.coords[0], abs=1e-9)
        assert (m["x_weighted px"], m["y_weighted px"]) == pytest.approx(geom.centroid.coords[0])
        assert m["x px"] == pytest.approx(row["x"] + 0.5)
        # the box stays the polygon's bounds (pixel edges)
        bbox = (m["bbox_xmin px"], m["bbox_ymin px"], m["bbox_xmax px"], m["bbox_ymax px"])
        assert bbox == geom.bounds
        assert m["semi_major px"] == pytest.approx(row["semi_major"])  # sizes not shifted


# --------------------------------------------------------------------------------------------
# 6. instances: masked pixels of a numpy masked array are no data (NaN)


def test_instances_treats_masked_pixels_as_nan():
    prob = np.zeros((64, 64), np.float32)
    prob[5:20, 5:20] = 0.9
    prob[40:55, 40:55] = 0.9
    mask = np.zeros(prob.shape, bool)
    mask[:32] = True
    masked = postprocess.instances(np.ma.array(prob, mask=mask), min_size=5)
    reference = postprocess.instances(np.where(mask, np.nan, prob), min_size=5)
    np.testing.assert_array_equal(masked, reference)
    assert masked.max() == 1 and not masked[mask].any()
    # a (H, W, 3) masked prediction too
    three = np.stack([1 - prob, prob, np.zeros_like(prob)], axis=-1)
    cube = np.ma.array(three, mask=np.repeat(mask[..., None], 3, axis=-1))
    np.testing.assert_array_equal(postprocess.instances(cube, min_size=5), reference)
