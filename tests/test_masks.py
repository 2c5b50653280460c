"""Bad-pixel masks end to end: io (DQ/MASK HDUs, files, flags), datasets, losses, catalog."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tifffile
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.nddata.bitmask import bitfield_to_boolean_mask

from sciconv import io
from sciconv.datasets import from_pairs
from sciconv.errors import ConfigError, InvalidImageError, SciconvWarning
from sciconv.losses import BCEDiceLoss, DiceLoss, FocalLoss, bce_dice_loss
from sciconv.metrics import IoU
from sciconv.postprocess import COLUMN_UCDS, measure


def _np(x):
    return keras.ops.convert_to_numpy(x)


# --------------------------------------------------------------------------- io


def test_hst_cutout_dq_plane_masks_the_flagged_pixels(data_dir):
    hst = data_dir / "real" / "hst"
    sci_path, dq_path = hst / "j8bt06nyq_sci_cutout.fits", hst / "j8bt06nyq_dq_cutout.fits"
    dq = fits.getdata(dq_path).astype(np.int64)
    raw = fits.getdata(sci_path).astype(np.float32)
    img = io.read(sci_path, mask=dq_path)
    # every set bit flags a pixel (ignore_flags=0), counted independently of sciconv
    flagged = dq != 0
    assert img.mask.shape == (512, 512, 1) and 0 < flagged.sum() < 0.01 * dq.size
    np.testing.assert_array_equal(img.mask[..., 0], flagged)
    assert int(img.mask.sum()) == int(np.count_nonzero(bitfield_to_boolean_mask(dq)))
    assert np.isnan(img.data[..., 0][flagged]).all()
    np.testing.assert_array_equal(img.data[..., 0][~flagged], raw[~flagged])
    assert img.wcs is not None and img.meta["mask_from"] == str(dq_path)
    # HST flag expressions as astropy reads them: "~16" = only bit 16 is bad
    only16 = io.read(sci_path, mask=dq_path, ignore_flags="~16")
    np.testing.assert_array_equal(only16.mask[..., 0], (dq & 16) != 0)
    assert int(only16.mask.sum()) == 267  # 240 pixels flagged 16 + 27 flagged 80 = 64 + 16
    ignore = io.read(sci_path, mask=dq_path, ignore_flags=[8, 16, 64])
    np.testing.assert_array_equal(ignore.mask[..., 0], (dq & ~(8 | 16 | 64)) != 0)
    # a section cuts the mask file the same way
    cut = io.read(sci_path, mask=dq_path, section=(slice(100, 228), slice(0, 64)))
    np.testing.assert_array_equal(cut.mask[..., 0], flagged[100:228, :64])
    # the input files are not changed
    np.testing.assert_array_equal(fits.getdata(dq_path), dq)


@pytest.fixture
def mef(tmp_path):
    """SCI/ERR/DQ x 2 versions, DQ flags differing per version."""
    rng = np.random.default_rng(0)
    hdus = [fits.PrimaryHDU()]
    dqs = []
    for ver in (1, 2):
        sci = rng.normal(100, 5, (16, 12)).astype(np.float32)
        dq = np.zeros((16, 12), np.int16)
        dq[ver, :3] = 4
        dq[10, 5] = 4096 + 8
        dqs.append(dq)
        hdus += [
            fits.ImageHDU(sci, name="SCI", ver=ver),
            fits.ImageHDU(np.ones((16, 12), np.float32), name="ERR", ver=ver),
            fits.ImageHDU(dq, name="DQ", ver=ver),
        ]
    path = tmp_path / "mef.fits"
    fits.HDUList(hdus).writeto(path)
    return path, dqs


def test_fits_dq_hdu_found_next_to_the_science_hdu(mef):
    path, dqs = mef
    img = io.read(path)
    np.testing.assert_array_equal(img.mask[..., 0], dqs[0] != 0)
    assert img.meta["mask_from"].startswith("mask HDU 3 (DQ)")
    two = io.read(path, hdu=("SCI", 2))
    np.testing.assert_array_equal(two.mask[..., 0], dqs[1] != 0)
    assert io.read(path, hdu=("SCI", 2), ignore_flags="~4096").mask.sum() == 1
    assert not io.read(path, mask_hdu=None).mask.any()
    np.testing.assert_array_equal(io.read(path, mask_hdu=6).mask[..., 0], dqs[1] != 0)
    assert not io.read(path, hdu=("DQ", 1)).mask.any()  # the DQ read as an image is not masked
    # the pixels-only reader and the lazy reader agree with read()
    np.testing.assert_array_equal(io.read_pixels(path), img.data)
    with io.read(path, lazy=True).data as lazy:
        np.testing.assert_array_equal(lazy[0:4, 0:6], img.data[0:4, 0:6])
    with pytest.raises(InvalidImageError, match=r"mef\.fits.*no HDU 'NOPE'"):
        io.read(path, mask_hdu="NOPE")
    with pytest.raises(ConfigError, match="mask_hdu=1 is the HDU being read"):
        io.read(path, mask_hdu=1)


def test_plain_fits_with_a_dq_extension_is_not_read_by_the_fast_path(tmp_path):
    data = np.arange(20, dtype=np.float32).reshape(4, 5)
    dq = np.zeros((4, 5), np.uint8)
    dq[2, 3] = 1
    path = tmp_path / "plain.fits"
    fits.HDUList([fits.PrimaryHDU(data), fits.ImageHDU(dq, name="MASK")]).writeto(path)
    pixels = io.read_pixels(path)
    assert np.isnan(pixels[2, 3, 0]) and np.isfinite(np.delete(pixels.ravel(), 13)).all()
    assert io.probe_shape(path) == (4, 5, 1)


def test_ccddata_mask_extension_read_back(tmp_path):
    mask = np.zeros((6, 7), bool)
    mask[1:3, 2] = True
    path = tmp_path / "ccd.fits"
    CCDData(np.ones((6, 7)), unit="adu", mask=mask).write(path)
    img = io.read(path)
    np.testing.assert_array_equal(img.mask[..., 0], mask)
    assert img.meta["mask_from"].startswith("mask HDU 1 (MASK)")


def test_rubin_mask_planes_keep_detected_sources_and_read_the_variance(tmp_path):
    """A Rubin/LSST image (IMAGE, MASK naming its bit planes in MP_ cards, VARIANCE): every
    pixel of a detected source has the DETECTED bit set, and "every set bit is bad" made all
    the pipeline's sources NaN. Only the defect planes (BAD, SAT, CR, NO_DATA, ...) are bad
    now; the variance gives the error bars."""
    image = np.full((20, 24), 10.0, np.float32)
    image[5:10, 5:10] = 200.0  # a source
    mask = np.zeros((20, 24), np.int32)
    mask[4:11, 4:11] |= 1 << 5  # DETECTED around it
    mask[7, 7] |= 1 << 1  # its core saturated
    mask[15, 20] = 1 << 8  # NO_DATA
    mask[0, 0] = 1 << 9  # a plane this reader does not know as a defect
    header = fits.Header()
    for name, bit in [("BAD", 0), ("SAT", 1), ("INTRP", 2), ("CR", 3), ("EDGE", 4)]:
        header[f"MP_{name}"] = bit
    header["MP_DETECTED"] = 5
    header["HIERARCH MP_NO_DATA"], header["HIERARCH MP_CROSSTALK"] = 8, 9
    path = tmp_path / "visit_image.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(image, name="IMAGE"),
            fits.ImageHDU(mask, header=header, name="MASK"),
            fits.ImageHDU(np.full((20, 24), 4.0, np.float32), name="VARIANCE"),
        ]
    ).writeto(path)
    img = io.read(path)
    bad = np.zeros((20, 24), bool)
    bad[7, 7] = bad[15, 20] = True
    np.testing.assert_array_equal(img.mask[..., 0], bad)
    assert np.isfinite(img.data[5:10, 5:10, 0]).sum() == 24  # the detected source is data
    assert "planes BAD+CR+EDGE+INTRP+NO_DATA+SAT" in img.meta["mask_from"]
    assert img.meta["uncertainty_from"] == "HDU 3 (VARIANCE)"
    np.testing.assert_allclose(img.meta["uncertainty"].represent_as(StdDevUncertainty).array, 2.0)
    # flags given by the caller stand: every set bit bad when asked with a list of none ignored
    strict = io.read(path, ignore_flags="~1023")
    assert strict.mask[..., 0][4:11, 4:11].all()


def test_mask_of_wrong_size_in_the_file_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "odd.fits"
    hdus = [fits.PrimaryHDU(np.ones((4, 5), np.float32)), fits.ImageHDU(np.ones((3, 3), np.int16))]
    hdus[1].name = "DQ"
    fits.HDUList(hdus).writeto(path)
    with pytest.warns(
        SciconvWarning, match=r"HDU 1 \(DQ\) is 3 x 3 pixels, not the image's 5 x 4; not used"
    ):
        img = io.read(path)
    assert not img.mask.any()
    with pytest.raises(
        InvalidImageError, match=r"mask HDU 'DQ' is 3 x 3 pixels .* image HDU 0 is 5 x 4"
    ):
        io.read(path, mask_hdu="DQ")


def test_mask_arrays_files_and_errors(tmp_path):
    data = np.arange(30, dtype=np.float32).reshape(5, 6)
    img_path = io.write(tmp_path / "a.tif", data)
    bad = np.zeros((5, 6), bool)
    bad[0, 0] = bad[4, 5] = True
    img = io.read(img_path, mask=bad)
    np.testing.assert_array_equal(img.mask[..., 0], bad)
    assert img.meta["mask_from"] == "array"
    tifffile.imwrite(tmp_path / "m.tif", bad.astype(np.uint8) * 2)
    np.testing.assert_array_equal(io.read(img_path, mask=tmp_path / "m.tif").mask[..., 0], bad)
    assert not io.read(img_path, mask=tmp_path / "m.tif", ignore_flags=2).mask.any()
    with io.read(img_path, mask=bad, lazy=True).data as lazy:
        assert np.isnan(lazy[0:1, 0:2, 0]).tolist() == [[True, False]]
    with pytest.raises(InvalidImageError, match=r"mask array has shape \(5, 5\)"):
        io.read(img_path, mask=np.zeros((5, 5), bool))
    with pytest.raises(InvalidImageError, match="fractions"):
        io.read(img_path, mask=np.full((5, 6), 0.5))
    with pytest.raises(ConfigError, match="ignore_flags must be"):
        io.read(img_path, mask=bad, ignore_flags="bits")
    with pytest.raises(ConfigError, match="mask_hdu= applies to FITS files only"):
        io.read(img_path, mask_hdu="DQ")
    with pytest.raises(InvalidImageError, match=r"nope\.fits.*file not found"):
        io.read(img_path, mask=tmp_path / "nope.fits")
    np.testing.assert_array_equal(io.read(img_path).data[..., 0], data)  # input untouched


# --------------------------------------------------------------------------- datasets


def _write_pairs(root, *, garbage: bool):
    """Three 48x48 FITS images with labels; the left 24 columns of the first are garbage
    (huge values, labels all 0 there) flagged by a DQ extension when ``garbage``."""
    (root / "img").mkdir()
    (root / "lab").mkdir()
    rng = np.random.default_rng(1)
    clean = []
    for i in range(3):
        lab = np.zeros((48, 48), np.uint16)
        lab[8:20, 28:40] = 1
        lab[30:42, 6:18] = 2
        x = (lab > 0) * 100.0 + rng.normal(10, 2, lab.shape)
        clean.append(x.astype(np.float32))
        x = x.astype(np.float32)
        hdus = [fits.PrimaryHDU(x)]
        if i == 0:
            x[:, :24] = rng.uniform(1e4, 1e5, (48, 24))
            lab = lab.copy()
            lab[:, :24] = 0
            dq = np.zeros(lab.shape, np.int16)
            dq[:, :24] = 256
            hdus = [fits.PrimaryHDU(x)] + ([fits.ImageHDU(dq, name="DQ")] if garbage else [])
        fits.HDUList(hdus).writeto(root / "img" / f"c{i}.fits")
        tifffile.imwrite(root / "lab" / f"c{i}.tif", lab)
    return clean


def test_from_pairs_weights_masked_pixels_and_skips_them_in_statistics(tmp_path):
    clean = _write_pairs(tmp_path, garbage=True)
    kw = dict(batch_size=3, shuffle=False, seed=0, normalize="minmax")
    train = from_pairs(tmp_path / "img", tmp_path / "lab", **kw)
    assert train.weighted and train.masked_pixels == 48 * 24
    x, _, w = (t.numpy() for t in next(iter(train)))
    assert x.shape == (3, 48, 48, 1) and w.shape == (3, 48, 48) and w.dtype == np.float32
    np.testing.assert_array_equal(w[0], np.repeat([[0.0] * 24 + [1.0] * 24], 48, axis=0))
    assert (w[1:] == 1).all()
    # statistics from the good pixels only: the clean half normalizes as it would alone
    half = clean[0][:, 24:]
    lo, hi = half.min(), half.max()
    np.testing.assert_allclose(x[0, :, 24:, 0], (half - lo) / (hi - lo), atol=1e-5)
    # bad pixels enter the model as prediction feeds them: the good half mirrored at its edge
    np.testing.assert_allclose(x[0, :, 23:0:-1, 0], x[0, :, 25:48, 0], atol=1e-6)
    np.testing.assert_allclose(x[0, :, 0, 0], x[0, :, 24, 0], atol=1e-6)  # past it: nearest
    # class counts skip the masked pixels
    assert train.class_counts.sum() == 3 * 48 * 48 - 48 * 24
    lazy = from_pairs(tmp_path / "img", tmp_path / "lab", cache=False, **kw)  # read each pass
    assert lazy.cache_mode == "none"
    for a, b in zip(next(iter(lazy)), (x, None, w)):
        if b is not None:
            np.testing.assert_array_equal(a.numpy(), b)
    off = from_pairs(tmp_path / "img", tmp_path / "lab", sample_weights=False, **kw)
    assert not off.weighted and len(next(iter(off))) == 2


def test_from_pairs_patches_avoid_mostly_masked_regions(tmp_path):
    _write_pairs(tmp_path, garbage=True)
    ds = from_pairs(
        tmp_path / "img",
        tmp_path / "lab",
        patch_size=16,
        patches_per_image=16,
        batch_size=48,
        seed=3,
        max_masked=0.25,
        augment=True,
    )
    _, y, w = (t.numpy() for t in next(iter(ds)))
    assert w.shape == (48, 16, 16)
    masked = 1 - w.reshape(48, -1).mean(axis=1)
    assert masked.max() <= 0.25
    assert set(np.unique(w)) <= {0.0, 1.0} and y.dtype == np.int32
    # y and w moved together under augmentation: masked pixels hold no foreground label here
    assert not (y[w == 0] > 0).any()


def test_from_pairs_without_bad_pixels_is_unweighted_unless_asked(tmp_path):
    _write_pairs(tmp_path, garbage=False)
    assert not from_pairs(tmp_path / "img", tmp_path / "lab").weighted
    ds = from_pairs(tmp_path / "img", tmp_path / "lab", sample_weights=True, batch_size=3)
    assert (next(iter(ds))[2].numpy() == 1).all()
    with pytest.raises(ConfigError, match="sample_weights must be"):
        from_pairs(tmp_path / "img", tmp_path / "lab", sample_weights="yes")


# --------------------------------------------------------------------------- losses / metrics


def _seg_batch(seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((2, 8, 8)) > 0.6).astype(np.int32)
    p = rng.uniform(0.05, 0.95, (2, 8, 8)).astype(np.float32)
    soft = np.stack([1 - p, p], axis=-1)
    w = np.ones((2, 8, 8), np.float32)
    w[:, :, :3] = 0  # the left three columns are bad
    return y, soft, w


@pytest.mark.parametrize("loss", [BCEDiceLoss(), DiceLoss(), FocalLoss(), FocalLoss(alpha=0.3)])
def test_weighted_losses_ignore_masked_pixels(loss):
    y, p, w = _seg_batch()
    flipped = y.copy()
    flipped[:, :, :3] = 1 - flipped[:, :, :3]
    weighted = float(loss(y, p, sample_weight=w))
    assert float(loss(flipped, p, sample_weight=w)) == pytest.approx(weighted, abs=1e-6)
    assert abs(float(loss(flipped, p)) - float(loss(y, p))) > 1e-3  # unweighted: they count
    # the same as the loss on the good pixels alone
    assert float(loss(y[:, :, 3:], p[:, :, 3:])) == pytest.approx(weighted, rel=1e-5)


def test_weighted_loss_gradient_is_zero_at_masked_pixels():
    import tensorflow as tf

    y, p, w = _seg_batch(1)
    logits = tf.Variable(np.log(p))
    with tf.GradientTape() as tape:
        loss = BCEDiceLoss()(y, tf.nn.softmax(logits), sample_weight=w)
    grad = tape.gradient(loss, logits).numpy()
    assert np.abs(grad[:, :, :3]).max() == 0.0 and np.abs(grad[:, :, 3:]).max() > 1e-4


# keras.metrics.IoU keeps an int64 confusion matrix and says so for float weights (0/1 here)
@pytest.mark.filterwarnings("ignore:You are passing weight as `float`")
def test_iou_metric_ignores_masked_pixels():
    y, p, w = _seg_batch(2)
    flipped = y.copy()
    flipped[:, :, :3] = 1 - flipped[:, :, :3]
    scores = []
    for target in (y, flipped):
        metric = IoU(2)
        metric.update_state(target, p, sample_weight=w)
        scores.append(float(metric.result()))
    assert scores[0] == pytest.approx(scores[1])
    plain = IoU(2)
    plain.update_state(y[:, :, 3:], p[:, :, 3:])
    assert scores[0] == pytest.approx(float(plain.result()))


def test_fit_trains_on_weighted_pairs_and_refuses_loss_functions(tmp_path):
    import sciconv as sc

    _write_pairs(tmp_path, garbage=True)
    ds = from_pairs(tmp_path / "img", tmp_path / "lab", patch_size=16, batch_size=8, seed=0)
    keras.utils.set_random_seed(0)
    model = sc.models.segmenter(input_shape=(None, None, 1), depth=1, filters=4)
    history = sc.training.fit(model, ds, epochs=1, steps_per_epoch=2, verbose=0, tensorboard=False)
    assert np.isfinite(history.history["loss"]).all()
    assert isinstance(model.loss, BCEDiceLoss)
    other = sc.models.segmenter(input_shape=(None, None, 1), depth=1, filters=4)
    other.compile(optimizer="adam", loss=bce_dice_loss)
    with pytest.raises(
        ConfigError, match=r"per-pixel weights.*loss=sciconv.losses.BCEDiceLoss\(\)"
    ):
        sc.training.fit(other, ds, epochs=1, steps_per_epoch=1, verbose=0, tensorboard=False)


# --------------------------------------------------------------------------- catalog


def test_measure_flags_objects_touching_masked_pixels():
    labels = np.zeros((12, 12), np.int32)
    labels[1:4, 1:4] = 1  # far from the bad pixels
    labels[6:9, 6:9] = 2  # touches a bad pixel diagonally
    labels[2:4, 8:11] = 3  # holds two bad pixels
    bad = np.zeros((12, 12), bool)
    bad[9, 9] = True
    bad[3, 9:11] = True
    table = measure(labels, intensity=np.ones((12, 12)), mask=bad[..., None])
    assert table["flag_masked"].tolist() == [False, True, True]
    np.testing.assert_allclose(table["masked_fraction"], [0.0, 0.0, 2 / 6])
    assert table["flag_masked"].meta["ucd"] == COLUMN_UCDS["flag_masked"][0] == "meta.code"
    assert "flag_masked" not in measure(labels).colnames
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from astropy.io.votable import ucd

        assert ucd.check_ucd(COLUMN_UCDS["masked_fraction"][0], check_controlled_vocabulary=True)
    with pytest.raises(InvalidImageError, match=r"mask must have the labels' shape \(12, 12\)"):
        measure(labels, mask=np.zeros((5, 5), bool))
