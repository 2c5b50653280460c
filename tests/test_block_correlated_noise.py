"""Block-wise catalogs of a resampled image take the whole image's noise correlation (QA
errbars, finding 1): flux_err, the centroid errors and ra_err equal the whole-image catalog's
whatever the block size, with the background and with the file's own errors (images whose
header says they were drizzled; tests/test_correlated_noise_gate.py: the decision without)."""

import keras
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from scipy import ndimage as ndi

from sciconv import inference, io, postprocess


def _detector(threshold=8.0, slope=2.0):
    """Foreground where the raw pixel is above ``threshold`` (normalize=None)."""
    inputs = keras.Input((None, None, 1))
    conv = keras.layers.Conv2D(2, 1, activation="softmax")
    model = keras.Model(inputs, conv(inputs))
    weights = np.array([[[[-slope, slope]]]], np.float32)
    conv.set_weights([weights, np.array([slope * threshold, -slope * threshold], np.float32)])
    return model


def _resampled_field(shape=(320, 352), seed=0):
    rng = np.random.default_rng(seed)
    big = (shape[0] + 120, shape[1] + 120)
    yy, xx = np.mgrid[: big[0], : big[1]]
    truth = np.zeros(big)
    for _ in range(40):
        y, x = rng.uniform(70, big[0] - 70), rng.uniform(70, big[1] - 70)
        truth += rng.uniform(300, 3000) * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 4.5) / 14.1
    turn = np.deg2rad(17.0)
    m = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    centre = np.array(big) / 2
    noisy = truth + rng.normal(0, 3.0, big)
    out = ndi.affine_transform(noisy, m, offset=centre - m @ centre + [0.3, 0.6], order=1)
    return out[60:-60, 60:-60].astype(np.float32)


def _wcs(shape):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [shape[1] / 2, shape[0] / 2]
    w.wcs.cdelt = [-0.03 / 3600, 0.03 / 3600]
    return w


def _by_position(whole, blocks):
    d = np.hypot(
        np.asarray(whole["x"])[:, None] - np.asarray(blocks["x"])[None],
        np.asarray(whole["y"])[:, None] - np.asarray(blocks["y"])[None],
    )
    assert d.min(1).max() < 1e-6 and len(whole) == len(blocks) > 10
    return d.argmin(1)


@pytest.mark.parametrize("block", [96, 160])
def test_block_catalog_of_a_resampled_image_has_the_whole_image_errors(block, monkeypatch):
    monkeypatch.setenv("SCICONV_PRECISION", "float32")
    data = _resampled_field()
    image = io.GridImage(  # its primary header says it was drizzled
        data[..., None],
        wcs=_wcs(data.shape),
        meta={"bunit": "ELECTRONS", "primary": {"NDRIZIM": 4}},
    )
    model = _detector()
    labels = inference.predict_instances(model, image, normalize=None, progress=False)
    level, rms = postprocess.background_and_rms(image, labels)
    error, source = postprocess.estimate_error(image, labels, background=level, background_rms=rms)
    whole = postprocess.measure(
        labels, intensity=image, wcs=image.wcs, background=level, error=error
    )
    assert "flux_err x sqrt(R" in whole.meta["FLUXCORR"] and "over R(inf)" in source
    _, table = inference.predict_instances_blocks(
        model, image, block=block, background=True, normalize=None, progress=False
    )
    j = _by_position(whole, table)
    for name in ("flux_err", "x_weighted_err", "ra_err", "dec_err"):
        np.testing.assert_allclose(
            np.asarray(table[name])[j], np.asarray(whole[name]), rtol=1e-6, err_msg=name
        )
    assert table.meta["FLUXCORR"] == whole.meta["FLUXCORR"]
    assert table.meta["FLUXERR"] == postprocess.flux_error_note(source, whole)


def test_mosaic_catalog_with_the_files_errors_has_the_whole_image_factor(tmp_path):
    from astropy.table import Table

    from sciconv.inference import predict_mosaic

    data = _resampled_field(seed=1)
    path = tmp_path / "drz.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(data, fits.Header({"D001KERN": "square"}), name="SCI"),
            fits.ImageHDU(np.full(data.shape, 2.1, np.float32), name="ERR"),
        ]
    ).writeto(path)
    outs = predict_mosaic(
        _detector(), path, tmp_path / "out", block=96, margin=16, normalize=None,
        progress=False, background="none",
    )  # fmt: skip
    got = Table.read(outs["catalog"])
    whole = postprocess.measure(io.read_labels(outs["labels"]), intensity=io.read(path))
    assert "flux_err x sqrt(R" in whole.meta["FLUXCORR"]
    np.testing.assert_allclose(np.sort(got["flux_err"]), np.sort(whole["flux_err"]), rtol=1e-6)
    assert got.meta["FLUXERR"] == "image uncertainty" + " x correlated-noise factor (FLUXCORR)"


def test_block_catalog_of_a_headerless_resampled_image_decides_as_the_whole_image():
    """Nothing in the header says resampled: the block-wise catalog, as the whole image's
    "auto", measures nothing and keeps flux_err of independent pixels."""
    data = _resampled_field(seed=2)
    image = io.GridImage(data[..., None], wcs=_wcs(data.shape), meta={"bunit": "ELECTRONS"})
    model = _detector()
    labels = inference.predict_instances(model, image, normalize=None, progress=False)
    level, rms = postprocess.background_and_rms(image, labels)
    error, _ = postprocess.estimate_error(image, labels, background=level, background_rms=rms)
    whole = postprocess.measure(labels, intensity=image, background=level, error=error)
    plain = postprocess.measure(
        labels, intensity=image, background=level, error=error, noise_correlation=None
    )
    np.testing.assert_array_equal(whole["flux_err"], plain["flux_err"])
    assert "FLUXCORR" not in whole.meta
    _, table = inference.predict_instances_blocks(
        model, image, block=96, background=True, normalize=None, progress=False
    )
    j = _by_position(whole, table)
    np.testing.assert_allclose(np.asarray(table["flux_err"])[j], whole["flux_err"], rtol=1e-6)
    assert "FLUXCORR" not in table.meta
