"""Guards of test-time augmentation and block-wise errors (mutation-testing survivors i02, e01).

- i02: ``predict_d4`` turns each per-pixel output back (inverse transform) before averaging:
  an equivariant model's average is its plain prediction (no ghost of the object at the
  rotated place, spread 0), and any model's average is the hand-written mean of
  ``g^-1(model(g(x)))`` over the group.
- e01: the error HDU of a lazily read FITS *section* is read window by window at the section's
  place in the file: the windows equal the file's errors there, and a block-wise catalog of the
  section has the same ``flux_err`` as the whole-image catalog with those errors.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from astropy.io import fits

from sciconv import io, postprocess
from sciconv.inference import predict_d4, predict_instances_blocks


def _pixelwise_model():
    """A 1 x 1 convolution: exactly D4-equivariant."""
    inputs = keras.Input((None, None, 1))
    out = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones")(inputs)
    return keras.Model(inputs, out, name="pixelwise")


def _skewed_model():
    """A 3 x 3 convolution with an asymmetric kernel and 2 output channels: not equivariant."""
    kernel = np.arange(18, dtype=np.float32).reshape(3, 3, 1, 2) / 10.0 - 0.4
    kernel[0, 2, 0, 1] = 3.0
    inputs = keras.Input((None, None, 1))
    layer = keras.layers.Conv2D(2, 3, padding="same", use_bias=False)
    model = keras.Model(inputs, layer(inputs), name="skewed")
    layer.set_weights([kernel])
    return model


def _views(square: bool):
    """(forward, inverse) pairs on (H, W) axes 1, 2 of a batch: D4 (8) or the 4 that keep a
    non-square shape, written with numpy alone."""
    rot = lambda a, k: np.rot90(a, k, axes=(1, 2))  # noqa: E731
    flip = lambda a: a[:, :, ::-1]  # noqa: E731
    if square:
        out = [((lambda a, k=k: rot(a, k)), (lambda a, k=k: rot(a, -k))) for k in range(4)]
        out += [
            ((lambda a, k=k: rot(flip(a), k)), (lambda a, k=k: flip(rot(a, -k)))) for k in range(4)
        ]
        return out
    ident = lambda a: a  # noqa: E731
    flip_v = lambda a: a[:, ::-1]  # noqa: E731
    return [(ident, ident), ((lambda a: rot(a, 2)),) * 2, (flip, flip), (flip_v, flip_v)]


def _asymmetric_image(shape):
    x = np.zeros((1, *shape, 1), np.float32)
    x[0, 2:5, 3:6] = 1.0  # a bright 3 x 3 object near a corner
    x[0, 1, 9] = 0.5  # and a fainter dot elsewhere
    return x


@pytest.mark.parametrize("shape", [(16, 16), (12, 16)])
def test_predict_d4_of_an_equivariant_model_is_its_plain_prediction(shape):
    model = _pixelwise_model()
    x = _asymmetric_image(shape)
    mean, std = predict_d4(model, x, normalize=None, return_std=True)
    plain = np.asarray(model(x))
    np.testing.assert_allclose(mean, plain, atol=1e-6)
    np.testing.assert_allclose(std, 0.0, atol=1e-6)
    h, w = shape
    assert mean[0, 3, 4, 0] == pytest.approx(1.0)  # the object stays whole where it was
    assert mean[0, h - 4, w - 5, 0] == pytest.approx(0.0)  # no ghost at the 180-degree place


@pytest.mark.parametrize("shape", [(16, 16), (12, 16)])
def test_predict_d4_of_a_dense_model_is_the_mean_of_the_turned_back_views(shape):
    model = _skewed_model()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, *shape, 1)).astype(np.float32)
    views = _views(square=shape[0] == shape[1])
    outs = [inverse(np.asarray(model(np.ascontiguousarray(fwd(x))))) for fwd, inverse in views]
    want = np.mean(outs, axis=0)
    mean, std = predict_d4(model, x, normalize=None, return_std=True)
    assert mean.shape == want.shape == (2, *shape, 2)
    np.testing.assert_allclose(mean, want, atol=1e-5)
    np.testing.assert_allclose(std, np.std(outs, axis=0), atol=1e-5)
    # one image (H, W, 1) gives the same per-pixel map
    np.testing.assert_allclose(predict_d4(model, x[1], normalize=None), want[1], atol=1e-5)


# --------------------------------------------------------------------------------------------------
# error windows of a section read (e01)

H, W = 128, 160
SECTION = (slice(20, 116), slice(40, 152))


@pytest.fixture
def field_with_errors(tmp_path):
    """SCI: 8 x 8 squares of +5 on a -5 sky; ERR: rising across the file in x and in y."""
    image = np.full((H, W), -5.0, np.float32)
    for y in range(4, H - 10, 20):
        for x in range(4, W - 10, 20):
            image[y : y + 8, x : x + 8] = 5.0
    cols = 1.0 + np.arange(W, dtype=np.float32) / 10.0
    rows = 1.0 + np.arange(H, dtype=np.float32)[:, None] / 100.0
    err = (cols[None, :] * rows).astype(np.float32)
    path = tmp_path / "field.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(image, name="SCI"), fits.ImageHDU(err, name="ERR")]
    ).writeto(path)
    return path, image, err


def test_error_windows_of_a_lazy_section_are_the_files_errors_there(field_with_errors):
    path, _, err = field_with_errors
    lazy = io.read(path, section=SECTION, lazy=True)
    assert lazy.meta["uncertainty_from"] == "HDU 2 (ERR)"
    windows = postprocess.error_windows(lazy)
    sub = err[SECTION]
    for ys, xs in [((0, 2), (0, 3)), ((10, 30), (50, 70)), ((90, 96), (100, 112))]:
        got = windows.read(ys, xs)
        np.testing.assert_allclose(got, sub[ys[0] : ys[1], xs[0] : xs[1]], rtol=1e-6)


def test_block_catalog_of_a_lazy_section_has_the_whole_image_flux_err(
    field_with_errors, threshold_model
):
    path, image, err = field_with_errors
    lazy = io.read(path, section=SECTION, lazy=True)
    labels, got = predict_instances_blocks(
        threshold_model, lazy, block=48, margin=16, normalize=None, progress=False,
        background="none", min_size=1,
    )  # fmt: skip
    labels = np.asarray(labels)
    labels = labels[..., 0] if labels.ndim == 3 else labels
    whole = postprocess.measure(labels, intensity=image[SECTION], error=err[SECTION])
    assert len(got) == len(whole) == 30 and got.meta["FLUXERR"] == "image uncertainty"
    keys = ("bbox_ymin", "bbox_xmin", "area")
    order_got = np.lexsort([np.asarray(got[k]) for k in keys[::-1]])
    order_exp = np.lexsort([np.asarray(whole[k]) for k in keys[::-1]])
    got, whole = got[order_got], whole[order_exp]
    for key in keys:
        np.testing.assert_array_equal(got[key], whole[key], err_msg=key)
    np.testing.assert_allclose(got["flux_sum"], whole["flux_sum"], rtol=1e-6)
    np.testing.assert_allclose(got["flux_err"], whole["flux_err"], rtol=1e-6)
    # a full 8 x 8 square at the section's top left: its errors are the file's there
    first = np.s_[SECTION[0].start + 4 : SECTION[0].start + 12]
    assert float(got["flux_err"][0]) == pytest.approx(
        float(np.sqrt((err[first, 44:52] ** 2).sum())), rel=1e-6
    )
