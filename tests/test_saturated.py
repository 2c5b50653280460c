"""Saturated objects: the flat plateaus of over-exposed nuclei get a rounded profile back
(``sciconv.preprocess.restore_saturated``, input transform key ``restore_saturated``), so the
pretrained nuclei model finds them."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

import sciconv
from sciconv.errors import ConfigError
from sciconv.preprocess import MIN_PLATEAU_RADIUS, apply_input_transform, restore_saturated
from sciconv.preprocess._transform import resolve_input_transform

SPEC = {"to_rgb": True, "invert": "auto", "dark_to_gray": True, "restore_saturated": True}


def _touching(ceiling: float = 200.0) -> tuple[np.ndarray, np.ndarray]:
    """Two cone-shaped nuclei (peak 300, 20 per pixel) whose flanks meet, clipped at ``ceiling``
    into one flat plateau shaped like an 8; the unclipped image too."""
    yy, xx = np.mgrid[:48, :64].astype(np.float32)
    cones = [300.0 - 20.0 * np.hypot(yy - 24, xx - cx) for cx in (22.0, 42.0)]
    image = np.clip(np.maximum(*cones), 0, None).astype(np.float32)
    return np.minimum(image, ceiling), image


def test_a_plateau_gets_a_peak_per_nucleus_and_a_saddle_between():
    clipped, _ = _touching()
    assert (clipped == 200).sum() > 2 * MIN_PLATEAU_RADIUS**2  # one plateau, both cores
    out = restore_saturated(clipped)
    assert out.dtype == np.float32 and out.shape == clipped.shape
    left, right, neck = out[24, 22], out[24, 42], out[24, 32]
    assert left > 220 and right > 220  # risen towards each centre
    assert neck < min(left, right) - 10  # a dip where they touch: two nuclei, not one
    # the flanks continue: the first pixel inside rises about as the flank outside did (20/px)
    assert 5 < out[24, 22 - 4] - out[24, 22 - 5] < 25
    # everything not saturated is left exactly as it was
    np.testing.assert_array_equal(out[clipped < 200], clipped[clipped < 200])


def test_images_without_a_deep_plateau_are_returned_unchanged():
    _, unclipped = _touching()
    np.testing.assert_array_equal(restore_saturated(unclipped), unclipped)
    # a clipped tip (core 2 px deep) is a bright peak a network reads as it is
    tip = np.minimum(unclipped, 280.0)
    assert (tip == 280).sum() > 1
    np.testing.assert_array_equal(restore_saturated(tip), tip)
    # hot pixels at the ceiling are not plateaus either
    hot = unclipped.copy()
    hot[::7, ::9] = 1e4
    np.testing.assert_array_equal(restore_saturated(hot), hot)


def test_channels_nan_and_a_given_level():
    clipped, _ = _touching()
    clipped[5, 5] = np.nan
    rgb = np.repeat(clipped[..., None], 3, axis=-1)
    out = restore_saturated(rgb)
    assert out.shape == rgb.shape and np.isnan(out[5, 5]).all()
    np.testing.assert_array_equal(out[..., 0], out[..., 2])  # every channel raised alike
    np.testing.assert_allclose(out[..., 0], restore_saturated(clipped), equal_nan=True)
    # a level above the image's pixels: nothing is saturated
    np.testing.assert_array_equal(restore_saturated(clipped, 250.0), clipped)


def test_input_transform_restores_after_the_flip_and_is_idempotent():
    clipped, _ = _touching()
    once = apply_input_transform(clipped, SPEC)
    assert once.shape == (48, 64, 3) and once[24, 22, 0] > 220
    np.testing.assert_array_equal(apply_input_transform(once, SPEC), once)
    # brightfield: a white background clipped at 255 is flipped to the dark side first, so it
    # is never raised; dark nuclei are the bright objects after the flip
    bright = (255 - 0.5 * _touching(400.0)[0]).astype(np.float32)  # unsaturated dark nuclei
    bright[bright > 250] = 255.0  # the background saturated
    flipped = apply_input_transform(bright, SPEC)
    np.testing.assert_array_equal(
        flipped, apply_input_transform(bright, {**SPEC, "restore_saturated": False})
    )
    with pytest.raises(ConfigError, match=r"restore_saturated.*true or false"):
        apply_input_transform(clipped, {**SPEC, "restore_saturated": "yes"})


def test_windows_with_margins_restore_as_the_whole_image():
    """Block-wise inference applies the resolved transform window by window: a window holding
    the plateau and a margin gives the whole image's pixels there."""
    clipped, _ = _touching()
    image = np.zeros((96, 128), np.float32)
    image[24:72, 32:96] = clipped
    transform = resolve_input_transform(image, SPEC)
    assert transform.saturated_at == 200.0
    whole = transform(image)
    window = transform(image[10:90, 20:110])
    np.testing.assert_array_equal(window, whole[10:90, 20:110])
    # the level is the whole image's: a window without the plateau keeps its own maximum
    corner = image[:30, :40] + np.linspace(0, 5, 40, dtype=np.float32)
    np.testing.assert_array_equal(transform(corner), np.repeat(corner[..., None], 3, -1))


def test_pretrained_model_finds_over_exposed_nuclei(data_dir):
    """A real fluorescence image (24 large nuclei) over-exposed: a quarter of its pixels at the
    ceiling. Measured on all 15 bundled images clipped at 0.3 of their maximum, AP@0.5 0.636 ->
    0.802 (0.844 unclipped; 0.6 of the maximum: 0.793 -> 0.843); this one 0.167 -> 0.917."""
    folder = data_dir / "real" / "nuclei"
    name = "0532c64c2fd0c4d3188cc751cdfd566b1cfba3d269358717295bab1504c7c275.tif"
    image = tifffile.imread(folder / "images" / name).astype(np.float32)
    truth = tifffile.imread(folder / "labels" / name)
    top = 0.3 * image.max()
    over = (np.minimum(image, top) / top * 255).astype(np.uint8)
    assert (over == 255).mean() > 0.2
    model = sciconv.models.pretrained("nuclei")
    # denoise=None: its image holds 11 grey levels, which denoise="auto" smooths as posterised
    # (that alone lifts the unrestored pass to 0.875): the restoring is measured on its own
    found = sciconv.inference.predict_instances(model, over, progress=False, denoise=None)
    ap = float(sciconv.metrics.average_precision(truth, found)["ap"][0])
    spec = dict(sciconv.models.get_metadata(model)["input_transform"], restore_saturated=False)
    sciconv.models.set_metadata(model, input_transform=spec)
    flat = sciconv.inference.predict_instances(model, over, progress=False, denoise=None)
    ap_flat = float(sciconv.metrics.average_precision(truth, flat)["ap"][0])
    assert ap >= 0.8 and ap_flat <= 0.4, (ap, ap_flat)


def test_hot_pixels_above_the_ceiling_do_not_hide_the_plateau():
    """The level was the image's maximum: one hot pixel above a 12-bit camera's ceiling turned
    the step off (review: AP 0.917 -> 0.167). It is the highest value forming a plateau."""
    clipped, _ = _touching()
    hot = clipped.copy()
    hot[2, 3] = hot[40, 60] = 65535.0
    hot[::9, 50] = 9000.0  # a column of cosmic-ray hits: many pixels, no plateau
    out = restore_saturated(hot)
    keep = hot < 1000
    np.testing.assert_array_equal(out[keep], restore_saturated(clipped)[keep])
    assert out[24, 22] > 220
    transform = resolve_input_transform(hot, SPEC)
    assert transform.saturated_at == 200.0


def test_a_white_frame_is_not_an_object():
    """A 12 px frame at the top value was raised by up to 254 (review: AP 0.667 -> 0.552); a
    saturated nucleus inside the frame still is."""
    _, unclipped = _touching(400.0)  # nothing clipped: no plateau inside
    framed = np.pad(unclipped / 300 * 200, 12, constant_values=255.0).astype(np.float32)
    np.testing.assert_array_equal(restore_saturated(framed), framed)
    nuclei = np.pad(_touching(200.0)[0] / 200 * 255, 12, constant_values=255.0)
    out = restore_saturated(nuclei.astype(np.float32))
    assert (out[:12] == 255).all() and out[12 + 24, 12 + 22] > 270


def test_rows_of_a_sample_and_dask_chunks_are_transformed_pixel_by_pixel(tmp_path):
    """A limits sample read one row at a time crashed the step (np.gradient on one row; any
    lazy image over 4 Mpx with clipped nuclei); dask chunks meet with no overlap, so a cut
    plateau was raised on each side (seams): both go pixel by pixel."""
    import dask.array as da
    import keras

    from sciconv.inference._source import input_transform

    clipped, _ = _touching()
    transform = resolve_input_transform(clipped, SPEC)
    row = clipped[24:25]
    np.testing.assert_array_equal(transform(row), transform.pointwise()(row))
    inputs = keras.Input((None, None, 3))
    logits = keras.layers.Conv2D(2, 1)(inputs)
    model = sciconv.models.attach_metadata(keras.Model(inputs, keras.layers.Softmax()(logits)))
    sciconv.models.set_metadata(model, input_transform=SPEC, task="segmentation")
    big = np.tile(clipped, (44, 33))[:2100, :2100]  # 4.4 Mpx: the limits sample is rows
    np.save(tmp_path / "big.npy", big)
    mapped = np.load(tmp_path / "big.npy", mmap_mode="r")
    prob = sciconv.inference.predict_tiled(model, mapped, progress=False)
    assert prob.shape == (2100, 2100, 2) and np.isfinite(prob).all()
    chunked = input_transform(model, da.from_array(clipped, chunks=20), None).compute()
    np.testing.assert_array_equal(chunked, transform.pointwise()(clipped))
