"""The real samples in data/real/: DSB2018 nuclei pairs and the HST/ACS 47 Tuc cutout."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import tifffile
from astropy.io import fits
from astropy.wcs import WCS

import sciconv.io as scio


@pytest.fixture(scope="module")
def real(data_dir):
    return data_dir / "real"


def _nuclei_ids(real):
    return sorted(p.stem for p in (real / "nuclei" / "images").glob("*.tif"))


def test_nuclei_pairs_read_through_sciconv(real):
    ids = _nuclei_ids(real)
    assert len(ids) == 15
    assert ids == sorted(p.stem for p in (real / "nuclei" / "labels").glob("*.tif"))
    shapes = set()
    for image_id in ids:
        raw = tifffile.imread(real / "nuclei" / "images" / f"{image_id}.tif")
        assert raw.dtype == np.uint8 and raw.ndim == 2
        img = scio.read(real / "nuclei" / "images" / f"{image_id}.tif")
        assert img.data.shape == (*raw.shape, 1) and img.data.dtype == np.float32
        np.testing.assert_array_equal(img.data[..., 0], raw.astype(np.float32))
        lab = scio.read(real / "nuclei" / "labels" / f"{image_id}.tif")
        assert lab.meta["dtype"] == "uint16"
        labels = lab.data[..., 0].astype(np.int64)
        assert labels.shape == raw.shape
        n = len(np.unique(labels[labels > 0]))
        assert n >= 3 and labels.max() == n  # numbered 1..N
        # fluorescence: nuclei brighter than the background
        assert raw[labels > 0].mean() > raw[labels == 0].mean() + 5
        shapes.add(raw.shape)
    assert shapes == {(256, 256), (360, 360), (520, 696)}


def test_nuclei_are_from_the_validation_division(real):
    """The pretrained model never trained on these: every id is in the fixed validation list."""
    val_ids = set((real / "nuclei_val_ids.txt").read_text().split())
    assert len(val_ids) == 82
    for image_id in val_ids:  # the division rule: sha256(id) in the first 15 %
        assert int(hashlib.sha256(image_id.encode()).hexdigest()[:8], 16) / 2**32 < 0.15
    assert set(_nuclei_ids(real)) <= val_ids


def test_brightfield_pairs_read_through_sciconv(real):
    """H&E / brightfield colour (RGB) and grey brightfield images, dark nuclei on a bright
    background, from the validation rule applied to those modalities (never trained on)."""
    folder = real / "nuclei_brightfield"
    ids = sorted(p.stem for p in (folder / "images").glob("*.tif"))
    assert len(ids) == 5
    assert ids == sorted(p.stem for p in (folder / "labels").glob("*.tif"))
    kinds = []
    for image_id in ids:
        assert int(hashlib.sha256(image_id.encode()).hexdigest()[:8], 16) / 2**32 < 0.15
        raw = tifffile.imread(folder / "images" / f"{image_id}.tif")
        img = scio.read(folder / "images" / f"{image_id}.tif")
        channels = 3 if raw.ndim == 3 else 1
        kinds.append(channels)
        assert raw.dtype == np.uint8 and img.data.shape == (*raw.shape[:2], channels)
        labels = scio.read(folder / "labels" / f"{image_id}.tif").data[..., 0].astype(np.int64)
        assert labels.shape == raw.shape[:2] and labels.max() == len(np.unique(labels)) - 1
        grey = raw.mean(axis=-1) if raw.ndim == 3 else raw
        assert grey[labels > 0].mean() < grey[labels == 0].mean() - 20  # dark nuclei
    assert sorted(kinds) == [1, 3, 3, 3, 3]


# The original frame's WCS (j8bt06nyq_flt.fits[SCI,1]); the cutout starts at (x, y) = (256, 256).
ORIGINAL = {
    "CTYPE1": "RA---TAN",
    "CTYPE2": "DEC--TAN",
    "CRPIX1": 512.0,
    "CRPIX2": 512.0,
    "CRVAL1": 6.027148333333,
    "CRVAL2": -72.08351111111,
    "CD1_1": -7.3605e-06,
    "CD1_2": 1.8456e-06,
    "CD2_1": 2.86858e-06,
    "CD2_2": 6.64946e-06,
}


def test_hst_cutout_wcs_matches_astropy(real):
    sci = scio.read(real / "hst" / "j8bt06nyq_sci_cutout.fits")
    assert sci.shape == (512, 512, 1)
    assert sci.wcs is not None and sci.wcs.naxis == 2
    x = np.array([0.0, 100.0, 255.5, 511.0])
    y = np.array([0.0, 400.0, 17.25, 511.0])
    own = WCS(fits.getheader(real / "hst" / "j8bt06nyq_sci_cutout.fits"))
    original = WCS(fits.Header(ORIGINAL))
    ra, dec = sci.wcs.pixel_to_world_values(x, y)
    ra0, dec0 = original.pixel_to_world_values(x + 256, y + 256)
    ra1, dec1 = own.pixel_to_world_values(x, y)
    np.testing.assert_allclose(ra, ra0, rtol=0, atol=1e-9)  # 1e-9 deg = 4 micro-arcsec
    np.testing.assert_allclose(dec, dec0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ra1, ra0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(dec1, dec0, rtol=0, atol=1e-9)
    # and back
    xb, yb = sci.wcs.world_to_pixel_values(ra0, dec0)
    np.testing.assert_allclose(xb, x, atol=1e-6)
    np.testing.assert_allclose(yb, y, atol=1e-6)


def test_hst_cutout_values_and_dq(real):
    sci = scio.read(real / "hst" / "j8bt06nyq_sci_cutout.fits")
    assert sci.header["TELESCOP"] == "HST" and sci.header["INSTRUME"] == "ACS"
    assert sci.header["BUNIT"] == "ELECTRONS"
    data = sci.data[..., 0]
    assert np.isfinite(data).all()
    # a crowded globular-cluster field: sky of a few hundred electrons, stars far above it
    assert 50 < np.median(data) < 2000
    assert np.percentile(data, 99.9) > 20 * np.median(data)
    dq_raw = fits.getdata(real / "hst" / "j8bt06nyq_dq_cutout.fits")
    assert dq_raw.dtype.kind == "i" and dq_raw.shape == (512, 512)
    assert 0 < (dq_raw > 0).mean() < 0.2  # some flagged pixels, mostly good
    dq = scio.read(real / "hst" / "j8bt06nyq_dq_cutout.fits")
    np.testing.assert_array_equal(dq.data[..., 0], dq_raw.astype(np.float32))
    np.testing.assert_allclose(
        dq.wcs.pixel_to_world_values(10, 20), sci.wcs.pixel_to_world_values(10, 20), atol=1e-12
    )
