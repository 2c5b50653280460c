"""A grey image with a colour cast (an RGB camera with an off white balance: each channel an
affine copy of one grey image) reaches the pretrained nuclei model as its grey image.

Flipped about one value, a grey brightfield image saved as R = inv, G = 0.8 inv, B = 0.95 inv
got a background whose channels differ (the gains became offsets): the model found 4 nuclei
instead of 120 on a real DSB2018 brightfield image. ``dark_to_gray`` now averages R, G, B of
such an image before the flip; H&E images (their hue varies with the stain) keep it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

import sciconv
from sciconv.preprocess import apply_input_transform
from sciconv.preprocess._transform import _one_signal, resolve_input_transform

SPEC = {"to_rgb": True, "invert": "auto", "dark_to_gray": True}
DATA = Path(__file__).resolve().parents[1] / "data" / "real"
BRIGHTFIELD = DATA / "nuclei_brightfield"
#: The grey brightfield image among the bundled brightfield images (the others are H&E colour).
GREY_BF = "4217e25defac94ff465157d53f5a24b8a14045b763d8606ec4a97d71d99ee381.tif"
#: A bundled fluorescence image the model segments well (AP@0.5 0.96 grey).
FLUO = "0532c64c2fd0c4d3188cc751cdfd566b1cfba3d269358717295bab1504c7c275.tif"


def _read(folder: Path, name: str):
    image = tifffile.imread(folder / "images" / name)
    return image, tifffile.imread(folder / "labels" / name).astype(np.int32)


def _cast(grey: np.ndarray, gains, offsets=(0, 0, 0), top: float = 255) -> np.ndarray:
    """A grey image as an RGB camera with an off white balance saves it (clipped, rounded)."""
    x = np.stack([grey.astype(np.float64) * g + o for g, o in zip(gains, offsets)], axis=-1)
    return np.clip(np.round(x), 0, top).astype(grey.dtype)


def _balance(rgb: np.ndarray, gains, offsets=(0, 0, 0)) -> np.ndarray:
    """An RGB image with another white balance (per-channel gains and offsets)."""
    x = rgb.astype(np.float64) * np.asarray(gains) + np.asarray(offsets)
    return np.clip(np.round(x), 0, 255).astype(rgb.dtype)


def _colour_images():
    names = sorted(p.name for p in (BRIGHTFIELD / "images").glob("*.tif") if p.name != GREY_BF)
    assert len(names) == 4
    return [_read(BRIGHTFIELD, n)[0][..., :3] for n in names]


@pytest.fixture(scope="module")
def model():
    return sciconv.models.pretrained("nuclei")


def _ap(model, image, truth) -> float:
    labels = sciconv.inference.predict_instances(model, image, precision="float32", progress=False)
    return float(sciconv.metrics.average_precision(truth, labels)["ap"][0])


@pytest.fixture(scope="module")
def grey_reference(model):
    """The grey brightfield image, its labels and its AP@0.5 (computed once for the casts)."""
    grey, truth = _read(BRIGHTFIELD, GREY_BF)
    return grey, truth, _ap(model, grey, truth)


@pytest.mark.parametrize("gains", [(1, 0.8, 0.95), (0.9, 1, 0.7), (1, 1, 0.85)])
def test_a_tinted_brightfield_image_segments_like_the_grey_one(model, grey_reference, gains):
    """Before: AP@0.5 0.61, 0.40 and 0.00 (4 objects) against 0.71 grey."""
    grey, truth, reference = grey_reference
    assert grey.ndim == 2
    tinted = _cast(grey, gains)
    assert reference > 0.65
    assert _ap(model, tinted, truth) >= reference - 0.03


def test_the_tinted_image_reaches_the_model_as_its_grey_image():
    grey, _ = _read(BRIGHTFIELD, GREY_BF)
    tinted = _cast(grey, (1, 0.8, 0.95), (0, 15, 30))
    t = resolve_input_transform(tinted, SPEC)
    assert t.gray and t.flip_at is not None
    out = apply_input_transform(tinted, SPEC)
    assert np.ptp(out, axis=-1).max() == 0  # R = G = B
    mean = tinted.astype(np.float32).mean(axis=-1)
    np.testing.assert_allclose(out[..., 0], mean.max() - mean, atol=1e-4)  # flipped about its top
    # a grey image flips about its top: the same pixels up to the cast's (affine) change
    r = np.corrcoef(out[..., 0].ravel(), apply_input_transform(grey, SPEC)[..., 0].ravel())
    assert r[0, 1] > 0.99
    # idempotent: the result is grey on a dark background and passes unchanged
    np.testing.assert_array_equal(apply_input_transform(out, SPEC), out)
    # without the key the hue is kept, as before
    assert not resolve_input_transform(tinted, {"to_rgb": True, "invert": "auto"}).gray


def test_a_tinted_fluorescence_image_becomes_its_grey_image(model):
    """Dark background, offsets per channel: kept in colour before (AP@0.5 0.00, 0.96 grey)."""
    grey, truth = _read(DATA / "nuclei", FLUO)
    top = float(np.iinfo(grey.dtype).max)
    tinted = _cast(grey, (1, 0.8, 0.95), (0, 15 * top / 255, 30 * top / 255), top)
    t = resolve_input_transform(tinted, SPEC)
    assert t.gray and t.flip_at is None
    assert _ap(model, tinted, truth) >= _ap(model, grey, truth) - 0.05


def test_he_images_are_not_one_signal_and_transform_as_before():
    """The bundled H&E images, as they are and with a white-balance cast of their own: not one
    signal (their hue follows the stain), flipped about their largest value, hue kept; a cast
    (more than WHITE_CAST off) is taken out first, channel by channel."""
    from sciconv.preprocess._transform import white_balance

    for he in _colour_images():
        assert white_balance(he) is None  # their glass is white within 10 %: as before
        for image in (he, _balance(he, (1, 1, 0.85)), _balance(he, (0.9, 1, 0.7), (10, 0, 20))):
            assert not _one_signal(image.astype(np.float32))
            t = resolve_input_transform(image, SPEC)
            gains = np.float32(t.gains if t.gains is not None else (1.0, 1.0, 1.0))
            balanced = image.astype(np.float32) * gains
            assert (t.gray, t.flip_at) == (False, float(balanced.max()))
            out = apply_input_transform(image, SPEC)
            np.testing.assert_array_equal(out, np.float32(t.flip_at) - balanced)


@pytest.mark.parametrize("gains", [(0.78, 0.88, 1.0), (1.0, 0.92, 0.70)])
def test_an_he_slide_with_a_camera_cast_segments_like_the_balanced_one(model, gains):
    """QA histo: flipped about one value, a blue or yellow cast became a background level per
    channel, a hue the model never saw (8 real H&E images: AP@0.5 0.699 -> 0.442 / 0.567)."""
    name = "7798ca1ddb3133563e290c36228bc8f8f3c9f224e096f442ef0653856662d121.tif"
    he, truth = _read(BRIGHTFIELD, name)
    he = he[..., :3]
    t = resolve_input_transform(_balance(he, gains), SPEC)
    assert t.gains is not None
    reference = _ap(model, he, truth)
    assert _ap(model, _balance(he, gains), truth) >= reference - 0.03


@pytest.fixture(scope="module")
def left_half_reference(model, grey_reference):
    """The grey image's left half, its labels and its AP@0.5 (the right half padded below)."""
    grey, truth, _ = grey_reference
    left = grey.shape[1] // 2
    return left, truth[:, :left], _ap(model, grey[:, :left], truth[:, :left])


def test_transparent_pixels_of_an_rgba_tile_are_no_data(model, grey_reference, left_half_reference):
    """QA histo: half a tile transparent black (OpenSlide outside the scanned area) kept the
    image unflipped: AP@0.5 0.83 -> 0.00 on grey brightfield; alpha 0 is now NaN."""
    grey, _, _ = grey_reference
    rgba = np.dstack([grey, grey, grey, np.full(grey.shape, 255, np.uint8)])
    rgba[:, grey.shape[1] // 2 :] = 0  # the right half transparent black
    t = resolve_input_transform(rgba, SPEC)
    assert t.transparent and t.flip_at is not None
    out = apply_input_transform(rgba, SPEC)
    assert np.isnan(out[:, grey.shape[1] // 2 :]).all()
    assert np.isfinite(out[:, : grey.shape[1] // 2]).all()
    left, half, reference = left_half_reference
    labels = sciconv.inference.predict_instances(model, rgba, precision="float32", progress=False)
    assert not labels[:, left:].any()
    got = float(sciconv.metrics.average_precision(half, labels[:, :left])["ap"][0])
    assert got >= reference - 0.05


def test_black_padding_of_a_brightfield_tile_is_no_data(model, grey_reference, left_half_reference):
    """QA histo: the same tile with its alpha dropped (an OpenSlide region taken to RGB: the
    outside opaque black) stayed unflipped, AP@0.5 0.83 -> 0.00 on grey brightfield. Black rows
    and columns at the edges are left out of the flip decision, and black is NaN once flipped."""
    grey, _, _ = grey_reference
    left, half, reference = left_half_reference
    rgb = np.dstack([grey, grey, grey])
    rgb[:, left:] = 0
    t = resolve_input_transform(rgb, SPEC)
    assert t.black_padding and t.flip_at is not None
    out = apply_input_transform(rgb, SPEC)
    assert np.isnan(out[:, left:]).all() and np.isfinite(out[:, :left]).all()
    labels = sciconv.inference.predict_instances(model, rgb, precision="float32", progress=False)
    assert not labels[:, left:].any()
    got = float(sciconv.metrics.average_precision(half, labels[:, :left])["ap"][0])
    assert got >= reference - 0.05 and reference > 0.5


def test_black_padding_in_a_corner_of_an_he_tile():
    """Past the slide's right and bottom edges at once: the padding is an L of whole rows and
    columns; the H&E tile inside is flipped as it is alone, with the same white point."""
    he = _colour_images()[0]
    h, w = he.shape[:2]
    padded = np.zeros((h + 40, w + 70, 3), he.dtype)
    padded[:h, :w] = he
    alone, t = resolve_input_transform(he, SPEC), resolve_input_transform(padded, SPEC)
    assert alone.flip_at is not None and not alone.black_padding
    assert t.black_padding and (t.flip_at, t.gains, t.gray) == (alone.flip_at, alone.gains, False)
    out = apply_input_transform(padded, SPEC)
    assert np.isnan(out[h:]).all() and np.isnan(out[:, w:]).all()
    np.testing.assert_array_equal(out[:h, :w], apply_input_transform(he, SPEC))


def test_black_edges_of_a_fluorescence_image_stay_background():
    """Fluorescence is often exactly 0 outside the nuclei (thresholded, background-subtracted),
    whole edge rows included: left unflipped, its zeros stay data (0, not NaN)."""
    fluo, _ = _read(DATA / "nuclei", FLUO)
    x = np.array(fluo[..., :3] if fluo.ndim == 3 else fluo, dtype=np.float32)
    x[x < np.percentile(x, 60)] = 0  # the background thresholded to 0
    x[:12] = 0
    x[:, -9:] = 0
    t = resolve_input_transform(x, SPEC)
    assert t.flip_at is None and not t.black_padding
    out = apply_input_transform(x, SPEC)
    assert np.isfinite(out).all() and (out[:12] == 0).all()


def test_grey_images_in_any_form_transform_as_before():
    """R = G = B (a grey image saved as RGB or RGBA) is grey already: never averaged, so its
    pixels are those of the grey image's transform to the last bit (float data too)."""
    grey, _ = _read(BRIGHTFIELD, GREY_BF)
    rng = np.random.default_rng(0)
    for g in (grey, grey.astype(np.float32) * np.float32(0.1) + rng.random(grey.shape, np.float32)):
        rgb = np.repeat(g[..., None], 3, axis=-1)
        rgba = np.concatenate([rgb, np.full_like(g, 255)[..., None]], axis=-1)
        assert not _one_signal(rgb.astype(np.float32))
        expected = apply_input_transform(g, SPEC)
        for image in (rgb, rgba):
            assert not resolve_input_transform(image, SPEC).gray
            np.testing.assert_array_equal(apply_input_transform(image, SPEC), expected)


def test_one_signal_edge_cases():
    yy, xx = np.mgrid[:128, :128]
    s = (0.5 + 0.5 * np.sin(yy / 9) * np.cos(xx / 13)).astype(np.float32)
    # clipped background (a channel saturated): the rest is still on one line
    assert _one_signal(np.clip(np.dstack([1.3 * s, s, 0.8 * s]), 0, 1))
    # a constant channel is a copy with gain 0; NaN pixels are left out
    with_nan = np.dstack([s, 0.5 * s, np.full_like(s, 0.2)])
    with_nan[::7, ::5] = np.nan
    assert _one_signal(with_nan)
    # two signals, tiny images, all NaN and grey images are not
    assert not _one_signal(np.dstack([s, s.T, s]))
    assert not _one_signal(np.ones((3, 3, 3), np.float32) * [1, 2, 3])
    assert not _one_signal(np.full((32, 32, 3), np.nan, np.float32))
    assert not _one_signal(np.zeros((32, 32, 3), np.float32))
    assert not _one_signal(s[..., None])


def test_dense_nuclei_on_a_background_of_zero_are_not_padding():
    """Review: a fluorescence image on a background of exact 0 has black edges and black between
    its nuclei; taken for padding, the box around 9 dense nuclei was flipped and its background
    made no data (0 of 9 found). Black inside the edges (over BLACK_INSIDE) means background."""
    yy, xx = np.mgrid[:256, :256]
    img = np.zeros((256, 256), np.float32)
    for cy in range(104, 160, 20):
        for cx in range(104, 160, 20):
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < 9.5**2] = 150
    t = resolve_input_transform(img, SPEC)
    assert t.flip_at is None and not t.black_padding
    assert np.isfinite(apply_input_transform(img, SPEC)).all()
