"""Guards of the file readers' science values (mutation-testing survivors f03 and t03).

- f03: a uint16 data-quality (DQ) array, as HST/JWST store it and astropy writes it
  (``BITPIX=16, BZERO=32768``), must read as its flags: only the flagged pixels are bad, in the
  DQ HDU of the file, in a separate mask file, eagerly and lazily, and ``ignore_flags`` clears
  exactly the ignored bits.
- t03: an ImageJ stack calibrated in inches gets its z spacing in micrometres, as its pixel size.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from sciconv import io

SHAPE = (32, 40)
# (row, col, flag): bit 4 = bad detector pixel; 32768 | 4 uses the top bit of a uint16
FLAGS = [(5, 5, 4), (10, 20, 4), (30, 33, 32768 | 4)]


def _dq() -> np.ndarray:
    dq = np.zeros(SHAPE, np.uint16)
    for r, c, f in FLAGS:
        dq[r, c] = f
    return dq


def _bad_pixels(mask) -> set[tuple[int, int]]:
    m = np.asarray(mask)
    m = m[..., 0] if m.ndim == 3 else m
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(m))}


@pytest.fixture
def hst_like(tmp_path):
    """SCI float32 + DQ uint16 in one file, as an HST/JWST calibrated frame."""
    sci = np.random.default_rng(0).normal(10, 1, SHAPE).astype(np.float32)
    path = tmp_path / "frame.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(sci, name="SCI"), fits.ImageHDU(_dq(), name="DQ")]
    ).writeto(path)
    header = fits.getheader(path, "DQ")
    assert header["BITPIX"] == 16 and header["BZERO"] == 32768  # how astropy stores uint16
    return path, sci


def test_uint16_dq_hdu_flags_exactly_its_flagged_pixels(hst_like):
    path, sci = hst_like
    img = io.read(path, hdu="SCI")
    flagged = {(r, c) for r, c, _ in FLAGS}
    assert int(np.asarray(img.mask).sum()) == 3
    assert _bad_pixels(img.mask) == flagged
    data = np.asarray(img.data)[..., 0]
    assert np.isnan(data[tuple(np.array(sorted(flagged)).T)]).all()
    good = ~np.asarray(img.mask)[..., 0]
    np.testing.assert_array_equal(data[good], sci[good])  # every other flux kept


def test_uint16_dq_hdu_ignore_flags_clears_exactly_the_ignored_bit(hst_like):
    path, _ = hst_like
    # bit 4 ignored: only the pixel that also carries bit 32768 stays bad
    assert _bad_pixels(io.read(path, hdu="SCI", ignore_flags=[4]).mask) == {(30, 33)}
    # only bit 4 counts: all three
    assert len(_bad_pixels(io.read(path, hdu="SCI", ignore_flags="~4").mask)) == 3
    # only bit 32768 counts: the one pixel
    assert _bad_pixels(io.read(path, hdu="SCI", ignore_flags="~32768").mask) == {(30, 33)}


def test_uint16_dq_hdu_of_a_lazy_section_read(hst_like):
    path, _ = hst_like
    section = (slice(4, 32), slice(4, 36))
    img = io.read(path, hdu="SCI", section=section, lazy=True)
    window = np.asarray(img.data[0:28, 0:32])[..., 0]
    bad = {(int(r), int(c)) for r, c in zip(*np.nonzero(np.isnan(window)))}
    assert bad == {(r - 4, c - 4) for r, c, _ in FLAGS}


def test_uint16_mask_file_reads_as_its_flags(tmp_path):
    image = tmp_path / "image.fits"
    fits.PrimaryHDU(np.ones(SHAPE, np.float32)).writeto(image)
    mask = tmp_path / "dq.fits"
    fits.PrimaryHDU(_dq()).writeto(mask)
    assert fits.getheader(mask)["BZERO"] == 32768
    img = io.read(image, mask=mask)
    assert _bad_pixels(img.mask) == {(r, c) for r, c, _ in FLAGS}
    assert _bad_pixels(io.read(image, mask=mask, ignore_flags=4).mask) == {(30, 33)}
    cut = io.read(image, mask=mask, section=(slice(8, 32), slice(0, 40)))
    assert _bad_pixels(cut.mask) == {(2, 20), (22, 33)}


def test_imagej_stack_calibrated_in_inches_gets_its_z_spacing_in_micrometres(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    path = tmp_path / "stack.tif"
    # a 300 dpi scan, planes 0.01 inch apart
    tifffile.imwrite(
        path,
        np.zeros((3, 16, 16), np.uint8),
        imagej=True,
        resolution=(300.0, 300.0),
        metadata={"axes": "ZYX", "unit": "inch", "spacing": 0.01},
    )
    meta = io.read(path, stack=True).meta
    assert meta["pixel_unit"] in ("µm", "um")
    assert meta["pixel_size"] == pytest.approx((25400.0 / 300.0, 25400.0 / 300.0))
    assert meta["z_spacing"] == pytest.approx(254.0)  # 0.01 inch = 254 µm
