"""Products written like images whose WCS carries a distortion astropy re-expresses.

QA 55 (astrometry): an IRAF TNX image's products kept the input's ``WAT1_``/``WAT2_`` cards
beside astropy's TPD translation of them (``CQDISn``/``DQn``), and opening such a product
aborted the process (wcslib heap corruption, exit -6); products of an HST image with lookup-table
distortion kept ``DP1.EXTVER``/``D2IM1.NAXES`` (taken for alternate-WCS cards), so astropy
refused their header and sciconv re-read its own products with ``wcs=None``.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from sciconv import io

S = 0.27 / 3600


def _tnx(path: Path) -> Path:
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "RA---TNX", "DEC--TNX"
    h["CRVAL1"], h["CRVAL2"], h["CRPIX1"], h["CRPIX2"] = 150.0, 2.0, 50.0, 50.0
    h["CD1_1"], h["CD2_2"], h["CD1_2"], h["CD2_1"] = -S, S, 0.0, 0.0
    h["WAT0_001"] = "system=image"
    lng = 'wtype=tnx axtype=ra lngcor = "3. 2. 2. 2. -1. 1. -1. 1. 0.0005 0.002 0.001 "'
    lat = 'wtype=tnx axtype=dec latcor = "3. 2. 2. 2. -1. 1. -1. 1. 0.0002 0.001 0.0004 "'
    for ax, text in ((1, lng), (2, lat)):
        for i in range(0, len(text), 68):
            h[f"WAT{ax}_{i // 68 + 1:03d}"] = text[i : i + 68]
    data = np.random.default_rng(0).normal(10, 1, (100, 100)).astype(np.float32)
    fits.PrimaryHDU(data, h).writeto(path)
    return path


def _child(code: str) -> subprocess.CompletedProcess:
    """``code`` in a child process: a wcslib abort kills it, not the test run."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_a_tnx_images_product_opens_with_the_same_sky_coordinates(tmp_path):
    src = _tnx(tmp_path / "tnx.fits")
    img = io.read(src)
    product = io.write(tmp_path / "product.fits", img.data, like=img)
    header = fits.getheader(product)
    assert not [k for k in header if k.startswith("WAT")]  # the TPD translation carries it
    code = (
        "import sys; from sciconv import io\n"
        f"a, b = io.read({str(src)!r}), io.read({str(product)!r})\n"
        "print(a.wcs.pixel_to_world_values(10.0, 80.0), b.wcs.pixel_to_world_values(10.0, 80.0))\n"
        "d = abs(a.wcs.pixel_to_world_values(10.0, 80.0)[1] - b.wcs.pixel_to_world_values("
        "10.0, 80.0)[1])\n"
        "sys.exit(0 if d < 1e-9 else 3)\n"
    )
    run = _child(code)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_header_with_wat_cards_beside_their_translation_is_read_not_aborted(tmp_path):
    """A third-party file holding both (what ``header.update(wcs.to_header())`` leaves)."""
    src = _tnx(tmp_path / "tnx.fits")
    header = fits.getheader(src)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header.update(WCS(header).to_header(relax=True))
    both = tmp_path / "both.fits"
    fits.PrimaryHDU(np.zeros((100, 100), np.float32), header).writeto(both)
    run = _child(f"from sciconv import io; print(io.read({str(both)!r}).wcs is not None)")
    assert run.returncode == 0 and run.stdout.strip() == "True", run.stdout + run.stderr


def test_a_lookup_table_distortion_product_keeps_a_wcs(tmp_path):
    tests = pytest.importorskip("astropy.wcs.tests")
    src = Path(tests.__file__).parent / "data" / "dist_lookup.fits.gz"
    if not src.exists():
        pytest.skip("astropy's test data are not installed")
    img = io.read(src)
    assert img.wcs is not None
    labels = (np.nan_to_num(img.data[..., 0]) > np.nanmedian(img.data)).astype(np.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the lookup tables cannot go into one HDU: said
        product = io.write(tmp_path / "labels.fits", labels, like=img)
    header = fits.getheader(product)
    assert not [k for k in header if "." in k]  # no DP1.EXTVER, D2IM1.NAXES left
    WCS(header)  # astropy takes it
    back = io.read(product)
    assert back.wcs is not None
    sky_in = img.wcs.pixel_to_world_values(20.0, 30.0)
    sky_out = back.wcs.pixel_to_world_values(20.0, 30.0)
    np.testing.assert_allclose(sky_out, sky_in, atol=1e-4)  # the SIP part; tables left out
