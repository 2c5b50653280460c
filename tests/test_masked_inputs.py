"""A GridImage's or NDData's mask is honoured by every stage that unwraps an image
(sciconv.io.as_array): inference, normalization and display skip the flagged pixels as they skip
NaN (QA inputs: a hand-built GridImage's junk under its mask set the stretch, 0 nuclei of 76)."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import threshold_model
from astropy.nddata import CCDData, NDData

from sciconv import inference, io, preprocess, viz
from sciconv.errors import InvalidImageError


def _field():
    """Four squares on a dark ground, and a flagged strip of junk a thousand times brighter."""
    image = np.zeros((48, 64), np.float32)
    for y, x in ((4, 4), (4, 40), (30, 10), (30, 44)):
        image[y : y + 8, x : x + 8] = 1.0
    bad = np.zeros(image.shape, bool)
    bad[16:24, :] = True
    return image, np.where(bad, np.float32(1000.0), image), bad


@pytest.mark.parametrize("mask_shape", ["(H, W, 1)", "(H, W)"])
def test_inference_skips_a_grid_images_masked_pixels(mask_shape):
    image, junk, bad = _field()
    model = threshold_model(level=0.5)
    reference = inference.predict_instances(model, np.where(bad, np.nan, image), progress=False)
    assert reference.max() == 4
    mask = bad[..., None] if mask_shape == "(H, W, 1)" else bad
    labels = inference.predict_instances(
        model, io.GridImage(junk[..., None], mask=mask), progress=False
    )
    np.testing.assert_array_equal(labels, reference)
    prob = inference.predict_tiled(model, io.GridImage(junk[..., None], mask=mask), progress=False)
    assert np.isnan(prob[bad]).all() and np.isfinite(prob[~bad]).all()


@pytest.mark.parametrize("kind", ["NDData", "CCDData", "GridImage"])
def test_normalize_leaves_masked_pixels_out_of_the_stretch(kind):
    image, junk, bad = _field()
    wrapped = {
        "NDData": lambda: NDData(junk, mask=bad),
        "CCDData": lambda: CCDData(junk, mask=bad, unit="adu"),
        "GridImage": lambda: io.GridImage(junk[..., None], mask=bad[..., None]),
    }[kind]()
    out = np.squeeze(preprocess.normalize(wrapped, method="minmax"))
    assert np.isnan(out[bad]).all()
    np.testing.assert_allclose(out[~bad], image[~bad])  # 0 and 1: the junk set nothing


def test_show_leaves_masked_pixels_out_of_its_colour_limits():
    import matplotlib

    matplotlib.use("Agg")
    image, junk, bad = _field()
    image = image + 1.0
    junk = np.where(bad, np.float32(1e5), image)
    fig = viz.show(NDData(junk, mask=bad), stretch="linear")
    shown = fig.axes[0].images[0]
    assert shown.get_clim()[1] < 10
    assert np.ma.getmaskarray(shown.get_array())[bad].all()


def test_as_array_keeps_pixels_whose_masked_pixels_are_nan_already():
    # sciconv.io.read's images: masked pixels NaN in the data already, no copy made
    image, _, bad = _field()
    data = np.where(bad, np.float32(np.nan), image)[..., None]
    assert io.as_array(io.GridImage(data, mask=bad[..., None])) is data
    assert io.as_array(io.GridImage(data, mask=np.zeros(data.shape, bool))) is data
    counts = (np.arange(12, dtype=np.uint16).reshape(3, 4, 1), np.eye(3, 4, dtype=bool))
    out = io.as_array(io.GridImage(counts[0], mask=counts[1]))
    assert out.dtype == np.float32 and np.isnan(out[..., 0][counts[1]]).all()
    assert out[0, 1, 0] == 1.0
    with pytest.raises(InvalidImageError, match=r"mask of shape \(2, 2\)"):
        io.as_array(io.GridImage(data, mask=np.zeros((2, 2), bool)))


def test_predict_d4_skips_a_masked_arrays_masked_pixels():
    import keras

    from sciconv.models import classifier

    keras.utils.set_random_seed(0)
    model = classifier((16, 16, 1), num_classes=3, filters=(4,), dense=(4,))
    rng = np.random.default_rng(0)
    batch = rng.normal(100, 10, (2, 16, 16, 1)).astype(np.float32)
    bad = np.zeros(batch.shape, bool)
    bad[:, :3] = True
    junk = np.where(bad, np.float32(1e6), batch)
    masked = inference.predict_d4(model, np.ma.array(junk, mask=bad))
    np.testing.assert_allclose(masked, inference.predict_d4(model, np.where(bad, np.nan, batch)))
    assert np.abs(masked - inference.predict_d4(model, junk)).max() > 1e-3  # the junk matters


@pytest.mark.parametrize("kind", ["CCDData", "masked array"])
def test_blockwise_catalog_flags_objects_on_masked_pixels(kind):
    # the labels skipped the mask, but the catalog had no flag_masked column unless the image
    # came as a GridImage or with NaN (QA inputs)
    image, _, _ = _field()
    bad = np.zeros(image.shape, bool)
    bad[4:6, :] = True  # crosses the two top squares
    given = (
        CCDData(image, unit="adu", mask=bad) if kind == "CCDData" else np.ma.array(image, mask=bad)
    )
    model = threshold_model(level=0.5)
    kwargs = dict(block=32, progress=False, brightness=None, denoise=None, object_size=None)
    labels, catalog = inference.predict_instances_blocks(model, given, **kwargs)
    reference, expected = inference.predict_instances_blocks(
        model, np.where(bad, np.nan, image), **kwargs
    )
    np.testing.assert_array_equal(np.asarray(labels), np.asarray(reference))
    assert "flag_masked" in catalog.colnames
    np.testing.assert_array_equal(catalog["flag_masked"], expected["flag_masked"])
    assert 0 < int(np.sum(catalog["flag_masked"])) < len(catalog)


def test_from_arrays_takes_a_grid_image_with_a_two_dimensional_mask():
    from sciconv.datasets import from_arrays

    image, junk, bad = _field()
    given = io.GridImage(junk[..., None], mask=bad)  # (H, W) mask of (H, W, 1) pixels
    reference = io.GridImage(np.where(bad, np.nan, image)[..., None])
    got = next(iter(from_arrays([given] * 2, [0, 1], batch_size=2, shuffle=False)))[0]
    want = next(iter(from_arrays([reference] * 2, [0, 1], batch_size=2, shuffle=False)))[0]
    np.testing.assert_allclose(np.asarray(got), np.asarray(want))


def test_from_folder_refuses_a_list_of_files_by_name():
    from sciconv.datasets import from_folder
    from sciconv.errors import DatasetError

    with pytest.raises(DatasetError, match=r"one folder.*from_catalog"):
        from_folder(["a.fits", "b.fits"])


def test_float64_pixels_are_stretched_before_they_become_float32():
    # tiles were cast to float32 before the stretch: a pedestal of 1e5 under a signal of 1e-3
    # lost the signal, values past float32's range became inf (QA inputs)
    ramp = np.tile(np.linspace(0.0, 1.0, 64), (48, 1))
    model = threshold_model(level=0.5)
    reference = inference.predict_tiled(model, ramp, normalize="minmax", progress=False)
    # float32 steps 0.0078 at 1e5: a signal of 0.05 kept 7 levels
    for given in (1e5 + 0.05 * ramp, 1e300 * ramp):
        got = inference.predict_tiled(model, given, normalize="minmax", progress=False)
        np.testing.assert_allclose(got, reference, atol=1e-4)
