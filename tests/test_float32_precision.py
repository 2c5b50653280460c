"""Pixels whose variation float32 cannot hold at their level (QA dtypes #4): float64 on a 1e11
pedestal and int64 near 2**60 became one value, a uint32 image on a 2**31 pedestal 7 levels,
without a word (or with a posterised-image warning blaming "a 16-bit container"). Readers,
predictions and datasets now warn, naming the file, and ordinary data does not."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import tifffile
from _helpers import threshold_model
from astropy.io import fits

from sciconv import inference, io
from sciconv.datasets import from_arrays
from sciconv.errors import SciconvWarning
from sciconv.inference._source import Source
from sciconv.io._precision import float32_loss, float32_steps, wider_than_float32
from sciconv.models import set_metadata

LOST = "float32 keeps steps of"


def _field(shape=(96, 96), seed=1) -> np.ndarray:
    """Five bright blobs (1500 counts) on a background of 100 with noise of 5 (float64)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    im = np.full(shape, 100.0)
    for cy, cx in [(20, 20), (60, 70), (30, 75), (75, 25), (50, 45)]:
        im += 1500 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 3.5**2))
    return im + rng.normal(0, 5, shape)


def _lost(said) -> list[str]:
    return [str(w.message) for w in said if LOST in str(w.message)]


def _hdu(kind: str) -> fits.PrimaryHDU:
    im = _field()
    if kind == "float64":
        return fits.PrimaryHDU(im + 1e11)
    if kind == "int64":
        return fits.PrimaryHDU(im.astype(np.int64) + 2**60)
    if kind == "uint32":  # stored as int32 with BZERO = 2**31
        return fits.PrimaryHDU((im.astype(np.int64) + 2**31).astype(np.uint32))
    hdu = fits.PrimaryHDU((im * 10).astype(np.int16))  # scaled: 0.1 steps on 1e11
    hdu.header["BSCALE"], hdu.header["BZERO"] = 0.1, 1e11
    return hdu


STEPS = {"float64": "8.19e+03", "int64": "1.37e+11", "uint32": "256", "scaled": "8.19e+03"}


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("kind", list(STEPS))
def test_a_file_whose_signal_float32_loses_is_named_once(tmp_path, kind, lazy):
    path = tmp_path / f"{kind}.fits"
    _hdu(kind).writeto(path)
    with pytest.warns(SciconvWarning, match=LOST) as said:
        img = io.read(path, lazy=lazy)
        if lazy:  # said on the first window, not on every one
            img.data[0:10, 0:10], img.data[10:60, :]
            img.close()
    (message,) = _lost(said)
    assert message.startswith(f"{path}: pixels vary by about ")
    assert f"steps of {STEPS[kind]} there" in message
    assert "subtract the pedestal in float64" in message
    if kind == "uint32":  # 7 levels left of 547
        with pytest.warns(SciconvWarning, match="547 distinct values of a sample become 7"):
            assert np.unique(io.read(path).data).size == 7


def _quiet_hdus():
    rng = np.random.default_rng(0)
    base = _field()
    cam = fits.PrimaryHDU(base.astype(np.uint16))  # uint16 camera: BZERO = 32768
    scaled = fits.PrimaryHDU((base * 10).astype(np.int16))
    scaled.header["BSCALE"] = 0.1
    offset = fits.PrimaryHDU((base - 100).astype(np.int16))  # integer steps: float32 exact
    offset.header["BZERO"] = 1e6
    blank = np.full((96, 96), -(2**31), np.int32)  # mostly BLANK, data of 100 +- 5
    blank[40:60, 40:60] = base[40:60, 40:60].astype(np.int32)
    blank_hdu = fits.PrimaryHDU(blank)
    blank_hdu.header["BLANK"] = -(2**31)
    hdr = base.copy()
    hdr[rng.random(hdr.shape) < 0.005] = 1e9  # bright stars: the background keeps its steps
    return {
        "uint16 camera": cam,
        "float32": fits.PrimaryHDU(base.astype(np.float32)),
        "int16 BSCALE": scaled,
        "int16 BZERO 1e6": offset,
        "float64 sky at 1000": fits.PrimaryHDU(base + 900),
        "int32 under 2**24": fits.PrimaryHDU((base + 1e7).astype(np.int32)),
        "int32 mostly BLANK": blank_hdu,
        "float64 with stars at 1e9": fits.PrimaryHDU(hdr),
        "int64 labels": fits.PrimaryHDU((base > 500).astype(np.int64) * 7),
    }


@pytest.mark.parametrize("case", list(_quiet_hdus()))
@pytest.mark.parametrize("lazy", [False, True])
def test_ordinary_files_read_without_a_precision_warning(tmp_path, case, lazy):
    path = tmp_path / "x.fits"
    _quiet_hdus()[case].writeto(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciconvWarning)
        img = io.read(path, lazy=lazy)
        if lazy:
            img.data[:, :]
            img.close()


def test_bundled_samples_and_ordinary_tiffs_read_without_a_precision_warning(data_dir, tmp_path):
    files = [
        *sorted(data_dir.glob("real/nuclei/images/*.tif"))[:3],  # DSB2018 nuclei
        *sorted(data_dir.glob("cells/images/*"))[:3],
        *sorted(data_dir.glob("real/hst/*.fits*"))[:2],
        data_dir / "sky" / "field.fits.fz",
    ]
    for dtype in ("uint16", "uint32", "int32", "float64"):  # ordinary levels in wide types
        tifffile.imwrite(tmp_path / f"{dtype}.tif", _field().astype(dtype))
        files.append(tmp_path / f"{dtype}.tif")
    assert len(files) >= 8
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciconvWarning)
        for path in files:
            io.read(path)


def test_the_loss_is_measured_exactly_on_integers_and_ignores_no_data():
    big = _field().astype(np.int64) + 2**60
    loss = float32_loss(big)
    assert loss.after == 1 and loss.before > 100 and loss.step == 2.0**37
    assert 3 < loss.spread < 40  # the noise and blobs, not float64's steps of 256 at 2**60
    padded = np.zeros((300, 300))  # a mosaic's zero padding around the pedestal
    padded[100:196, 100:196] = _field() + 1e11
    assert float32_loss(padded).step == 8192.0
    assert float32_loss(np.where(padded == 0, np.nan, padded)).step == 8192.0
    assert float32_loss(padded.astype(np.float32)) is None  # only wider types are measured
    assert [wider_than_float32(t) for t in ("f8", "i4", "u8", "f4", "u2")] == [1, 1, 1, 0, 0]


def test_the_check_costs_little_on_a_large_image():
    big = np.random.default_rng(0).normal(100.0, 5.0, (4000, 4000))
    lost = big + 1e11
    float32_loss(big)
    start = time.perf_counter()
    assert float32_loss(big) is None
    quiet = time.perf_counter() - start
    start = time.perf_counter()
    assert float32_loss(lost).after < 5
    loud = time.perf_counter() - start
    assert quiet < 0.25 and loud < 0.5  # a subsample of 250k pixels (about 15 and 30 ms)


def _gray_model():
    model = threshold_model(0.3)
    set_metadata(model, input_transform={"to_gray": True})  # computes in float32
    return model


def test_an_array_whose_signal_float32_loses_is_said_once_per_prediction():
    image = _field() + 1e11
    for kwargs in ({}, {"block": 32}):  # whole, block by block
        with pytest.warns(SciconvWarning, match=LOST) as said:
            inference.predict_instances(_gray_model(), image, progress=False, **kwargs)
        (message,) = _lost(said)
        assert message.startswith("image: pixels vary by about ")
        assert "e.g. image - np.median(image)" in message
    with pytest.warns(SciconvWarning, match=LOST):  # raw pixels go to the model in float32
        inference.predict_tiled(threshold_model(0.3), image, normalize=None, progress=False)


def test_32_bit_integers_are_normalized_exactly_and_ordinary_arrays_stay_quiet():
    field = _field()
    wide = (field.astype(np.int64) + 2**31).astype(np.uint32)
    model = threshold_model(0.3)  # no input transform: stretched in float64
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciconvWarning)
        got = inference.predict_tiled(model, wide, progress=False)
        want = inference.predict_tiled(model, field.astype(np.int64), progress=False)
        for image in (field, field.astype(np.uint16), field.astype(np.int32), field + 1e3):
            inference.predict_tiled(_gray_model(), image, progress=False)
    np.testing.assert_allclose(got, want, atol=1e-5)
    window = Source(wide, promote=True, path=None).read(slice(0, 2), slice(0, 2), exact=True)
    assert window.dtype == np.float64 and np.array_equal(window[..., 0], wide[:2, :2])


def test_from_arrays_says_the_loss_once_for_all_its_images():
    stack = np.stack([_field(seed=s).astype(np.int64) + 2**60 for s in range(4)])
    with pytest.warns(SciconvWarning, match=LOST) as said:
        from_arrays(stack, [0, 1, 0, 1], validation_split=0.5, batch_size=2)
    (message,) = _lost(said)
    assert message.startswith("4 of 4 images (images[0], images[1], images[2], ...) lose ")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciconvWarning)
        from_arrays(np.stack([_field(seed=s) for s in range(4)]), [0, 1, 0, 1], batch_size=2)
        from_arrays(stack.astype(np.uint16) * 0 + 7, [0, 1, 0, 1], batch_size=2)


def test_a_posterised_image_blames_float32_not_its_container(tmp_path):
    path = tmp_path / "u32.fits"
    _hdu("uint32").writeto(path)
    with pytest.warns(SciconvWarning, match=LOST):
        img = io.read(path)
    labels = np.zeros((96, 96), np.int32)
    for k, (cy, cx) in enumerate([(20, 20), (60, 70), (30, 75), (75, 25), (50, 45)]):
        labels[cy - 4 : cy + 5, cx - 4 : cx + 5] = k + 1
    model = threshold_model(0.3, object_level={"typical": 0.5, "faint_below": 0.01})
    set_metadata(model, object_snr={"typical": 14.0, "noisy_below": 0.1})
    with pytest.warns(SciconvWarning, match="posterised") as said:
        inference.second_pass_input(model, img, labels, brightness=None)
    (message,) = [str(w.message) for w in said if "posterised" in str(w.message)]
    assert "7 distinct pixel values 256 apart around 2.14748" in message
    assert "float32's steps there" in message and "16-bit container" not in message
    dim = np.repeat(np.arange(500, 507, dtype=np.float32), 2)  # a dim signal: not float32's
    assert float32_steps(dim) is None
    assert "256 apart" in float32_steps(np.float32(2**31) + 256 * np.arange(7))


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_tiff_and_zarr_files_whose_signal_float32_loses_are_named_once(tmp_path, suffix, lazy):
    # the TIFF and zarr readers cast through io._common.to_float32: checked there, a lazy
    # image on its first window only
    data = (_field().astype(np.int64) + 2**31).astype(np.uint32)
    path = tmp_path / f"pedestal{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(path, data, tile=(32, 32))
    else:
        zarr = pytest.importorskip("zarr")
        zarr.open(str(path), mode="w", shape=data.shape, chunks=(32, 32), dtype="uint32")[:] = data
    with pytest.warns(SciconvWarning, match=LOST) as said:
        img = io.read(path, lazy=lazy)
        if lazy:
            img.data[0:10, 0:10], img.data[10:60, :], img.data[:, :]
    (message,) = _lost(said)
    assert message.startswith(f"{path}: pixels vary by about ") and "steps of 256 there" in message
    quiet = tmp_path / f"camera{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(quiet, _field().astype(np.uint16))
    else:
        zarr.open(str(quiet), mode="w", shape=data.shape, dtype="uint32")[:] = data - 2**31 + 7
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciconvWarning)
        assert io.read(quiet, lazy=lazy).data[5:7, 5:7].shape[:2] == (2, 2)
