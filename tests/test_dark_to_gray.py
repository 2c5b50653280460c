"""Input transform "dark_to_gray": a fluorescence image saved in colour (nuclei in one channel)
reaches an RGB nuclei model as its grey image, as the model's fluorescence training images were;
H&E images keep their hue, and the transform stays idempotent."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile

import sciconv
from sciconv.errors import ConfigError, SciconvWarning
from sciconv.preprocess import apply_input_transform

SPEC = {"to_rgb": True, "invert": "auto", "dark_to_gray": True}


def _nuclei(seed=0) -> np.ndarray:
    """Bright blobs on a dark background, (64, 64) float32."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    img = np.zeros((64, 64), np.float32)
    for y, x in rng.uniform(8, 56, size=(6, 2)):
        img += 200 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 20)
    return img + rng.uniform(0, 5, img.shape).astype(np.float32)


def test_a_colour_fluorescence_image_becomes_its_grey_image():
    grey = _nuclei()
    z = np.zeros_like(grey)
    blue = np.stack([z, z, grey], axis=-1)
    out = apply_input_transform(blue, SPEC)
    assert out.shape == (64, 64, 3)
    np.testing.assert_allclose(out, np.repeat(grey[..., None] / 3, 3, axis=-1), rtol=1e-6)
    # without the key the hue is kept (what the model never saw in fluorescence training)
    np.testing.assert_array_equal(apply_input_transform(blue, {"to_rgb": True}), blue)
    # two stains, one channel empty (nuclei blue, cytoplasm red): also averaged, with a warning
    # that the stains merge (segment one channel); one stain in two channels (cyan) is silent
    two = np.stack([0.5 * _nuclei(1), z, grey], axis=-1)
    with pytest.warns(SciconvWarning, match=r"different signals in R and B .*--channel K"):
        out = apply_input_transform(two, SPEC)
    assert np.ptp(out, axis=-1).max() == 0
    # a dim 16-bit DAPI channel (range ~300) beside a bright stain (~3000) was taken for an
    # empty channel: averaged without the warning (AP 0.002 on a real DSB image)
    dim = np.stack([z, 15 * _nuclei(2) + 200, 1.5 * grey + 100], axis=-1).astype(np.uint16)
    with pytest.warns(SciconvWarning, match=r"different signals in G and B"):
        apply_input_transform(dim, SPEC)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        apply_input_transform(np.stack([z, grey, grey], axis=-1), SPEC)
        apply_input_transform(blue, SPEC)
        noisy = np.random.default_rng(3).uniform(0, 4, grey.shape).astype(np.float32)
        apply_input_transform(np.stack([noisy, z, 40 * grey], axis=-1), SPEC)  # R: noise only
    # idempotent: the result is R = G = B, which passes unchanged
    np.testing.assert_array_equal(apply_input_transform(out, SPEC), out)


def test_he_images_keep_their_hue_flipped_or_not():
    """A bright-background H&E image is flipped and keeps its hue; applied again (a dark
    background now, but every channel carries the stain) nothing changes."""
    rng = np.random.default_rng(0)
    he = np.empty((64, 64, 3), np.float32)
    he[:] = (230.0, 200.0, 220.0)  # pink eosin background
    he[20:30, 20:30] = (90.0, 60.0, 140.0)  # purple nuclei
    he[40:52, 35:47] = (100.0, 70.0, 150.0)
    he += rng.uniform(0, 4, he.shape).astype(np.float32)
    once = apply_input_transform(he, SPEC)
    np.testing.assert_array_equal(
        once, apply_input_transform(he, {"to_rgb": True, "invert": "auto"})
    )
    assert np.ptp(once, axis=-1).max() > 20  # hue kept
    np.testing.assert_array_equal(apply_input_transform(once, SPEC), once)
    # a grey image is replicated as before
    grey = _nuclei()
    np.testing.assert_array_equal(
        apply_input_transform(grey, SPEC), np.repeat(grey[..., None], 3, axis=-1)
    )


def test_dark_to_gray_needs_to_rgb():
    with pytest.raises(ConfigError, match="'dark_to_gray' needs 'to_rgb'"):
        apply_input_transform(_nuclei(), {"to_gray": True, "dark_to_gray": True})
    with pytest.raises(ConfigError, match="must be true or false"):
        apply_input_transform(_nuclei(), {"to_rgb": True, "dark_to_gray": "yes"})


def test_pretrained_nuclei_read_colour_fluorescence_as_grey(data_dir):
    """Bundled real fluorescence nuclei saved as blue-only RGB (DAPI as viewers show it) give
    exactly the grey image's labels; with a red cytoplasm-like stain added the model still
    finds the nuclei (measured on all 15 images: blue only 0.36 -> 0.835 = grey, blue + red
    cytoplasm 0.09 -> 0.72, AP@0.5)."""
    from scipy import ndimage as ndi

    model = sciconv.models.pretrained("nuclei")
    assert sciconv.models.get_metadata(model)["input_transform"] == {
        **SPEC,
        "restore_saturated": True,
    }
    folder = data_dir / "real" / "nuclei"
    grey_ap, two_ap = [], []
    for path in sorted((folder / "images").glob("*.tif"))[:4]:
        image = tifffile.imread(path)
        truth = tifffile.imread(folder / "labels" / path.name)
        z = np.zeros_like(image)
        grey = sciconv.inference.predict_instances(model, image, progress=False)
        blue = sciconv.inference.predict_instances(
            model, np.stack([z, z, image], axis=-1), progress=False
        )
        np.testing.assert_array_equal(blue, grey)
        cyto = ndi.gaussian_filter((truth > 0).astype(float), 6)
        cyto = (150 * cyto / cyto.max()).astype(image.dtype)
        with warnings.catch_warnings():  # a blurred copy of the nuclei may correlate > 0.9
            warnings.filterwarnings("ignore", "a dark-background colour image", SciconvWarning)
            two = sciconv.inference.predict_instances(
                model, np.stack([cyto, z, image], axis=-1), progress=False
            )
        grey_ap.append(float(sciconv.metrics.average_precision(truth, grey)["ap"][0]))
        two_ap.append(float(sciconv.metrics.average_precision(truth, two)["ap"][0]))
    assert np.mean(two_ap) >= 0.5, (grey_ap, two_ap)
