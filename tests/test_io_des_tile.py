"""Survey multi-extension files: a DES tile's ``MSK`` is its bad-pixel mask; ``hdu="SCI,2"``.

QA 55 finding 5: a DES coadd tile (``DESJJJJ+DDDD_rNNNNpNN_g.fits.fz``: SCI, MSK, WGT in one
fpack file; DECam CP ``immask`` files name theirs alike) was read with no mask: 0 of the 10 000
MSK-flagged pixels masked, their zero-filled sky read as data. Finding 3 (minor): the command
line's ``--hdu SCI,2`` works, Python's ``read(path, hdu="SCI,2")`` was refused.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from sciconv import io
from sciconv.errors import ConfigError, InvalidImageError
from sciconv.io._fits_hdus import parse_hdu


def des_tile(path, shape=(40, 50), *, order=("SCI", "MSK", "WGT")):
    """SCI with a bad region (columns 35-) that SWarp filled with 0, flagged in MSK; WGT (an
    inverse variance) 0 there. Returns the science pixels and the MSK flags."""
    rng = np.random.default_rng(5)
    sci = rng.normal(100.0, 10.0, shape).astype(np.float32)
    msk = np.zeros(shape, np.int32)
    msk[:, 35:] = 1
    msk[3, 4] = 2  # a single bad pixel elsewhere (a column defect, a star mask bit)
    sci[:, 35:] = 0.0
    wgt = np.where(msk == 1, 0.0, 0.01).astype(np.float32)
    planes = {"SCI": sci, "MSK": msk, "WGT": wgt}
    hdus = [fits.PrimaryHDU()]
    for name in order:
        hdus.append(fits.CompImageHDU(planes[name], name=name))
    hdus[1 + order.index("SCI")].header["MAGZERO"] = 30.0
    fits.HDUList(hdus).writeto(path)
    return sci, msk


def test_a_des_tile_masks_the_pixels_its_msk_flags(tmp_path):
    path = tmp_path / "DES0958+0209_r4575p01_g.fits.fz"
    sci, msk = des_tile(path)
    img = io.read(path)
    assert img.meta["extname"] == "SCI"
    assert img.meta["mask_from"] == "mask HDU 2 (MSK)"
    bad = msk != 0
    assert img.mask[..., 0].tolist() == bad.tolist()
    assert int(img.mask.sum()) == 40 * 15 + 1
    assert np.isnan(img.data[..., 0][bad]).all()
    stored = fits.getdata(path, "SCI")  # the tile-compressed floats as astropy decodes them
    np.testing.assert_allclose(stored, sci, atol=0.6)
    np.testing.assert_array_equal(img.data[..., 0][~bad], stored[~bad])
    # a window and a lazy read mask the same pixels
    sec = io.read(path, section=(slice(0, 20), slice(30, 50)))
    assert sec.mask[..., 0].tolist() == bad[:20, 30:].tolist()
    with io.read(path, lazy=True) as lazy:
        window = lazy.data[2:10, 0:40]
    assert np.isnan(window[..., 0]).tolist() == bad[2:10, :40].tolist()
    # mask_hdu=None: no MSK; the WGT = 0 region (no data: an inverse variance of 0) stays bad
    assert io.read(path, mask_hdu=None).mask[..., 0].tolist() == (msk == 1).tolist()


def test_msk_before_sci_is_not_taken_for_the_image(tmp_path):
    path = tmp_path / "tile.fits.fz"
    _, msk = des_tile(path, order=("MSK", "SCI", "WGT"))
    img = io.read(path)
    assert img.meta["hdu"] == 2 and img.meta["mask_from"] == "mask HDU 1 (MSK)"
    assert int(img.mask.sum()) == int((msk != 0).sum())


def _flt(path):
    """An HST _flt: SCI/ERR/DQ for chips 1 and 2; DQ,2 flags one pixel."""
    hdus = [fits.PrimaryHDU()]
    for chip in (1, 2):
        sci = np.full((6, 8), 10.0 * chip, np.float32)
        dq = np.zeros((6, 8), np.int16)
        dq[chip, chip] = 4 if chip == 2 else 0
        hdus += [
            fits.ImageHDU(sci, name="SCI", ver=chip),
            fits.ImageHDU(np.ones((6, 8), np.float32), name="ERR", ver=chip),
            fits.ImageHDU(dq, name="DQ", ver=chip),
        ]
    fits.HDUList(hdus).writeto(path)
    return path


def test_hdu_given_as_extname_comma_extver_text(tmp_path):
    path = _flt(tmp_path / "jabc01abq_flt.fits")
    img = io.read(path, hdu="SCI,2")
    assert (img.meta["hdu"], img.meta["extname"], img.meta["extver"]) == (4, "SCI", 2)
    assert float(np.nanmax(img.data)) == 20.0
    assert img.mask[2, 2, 0] and int(img.mask.sum()) == 1  # DQ,2 paired with it
    np.testing.assert_array_equal(img.data, io.read(path, hdu=("SCI", 2)).data)
    assert io.read(path, hdu=" sci , 2 ").meta["hdu"] == 4
    # the same text names a mask HDU; "1" is the index, as on the command line
    assert io.read(path, hdu="SCI,1", mask_hdu="DQ,2").mask[2, 2, 0]
    assert io.read(path, hdu="1").meta["hdu"] == 1
    assert io.probe_shape(path, hdu="SCI,2") == (6, 8, 1)
    with pytest.raises(InvalidImageError, match=r"jabc01abq_flt\.fits.*no HDU 'SCI,3'.*SCI,2"):
        io.read(path, hdu="SCI,3")


def test_an_extname_spelled_with_a_comma_is_still_found(tmp_path):
    path = tmp_path / "odd.fits"
    fits.HDUList(
        [fits.PrimaryHDU(np.zeros((3, 3), np.float32)),
         fits.ImageHDU(np.ones((3, 3), np.float32), name="A,1")]
    ).writeto(path)  # fmt: skip
    assert io.read(path, hdu="A,1").meta["hdu"] == 1


def test_parse_hdu_is_the_command_lines_parser():
    assert parse_hdu("SCI,2") == ("SCI", 2)
    assert parse_hdu("S29") == "S29"
    assert parse_hdu("3") == 3
    with pytest.raises(ConfigError, match=r"EXTVER must be an integer.*'SCI,x'"):
        parse_hdu("SCI,x")
    with pytest.raises(ConfigError, match=r"expected INDEX, EXTNAME or EXTNAME,EXTVER"):
        parse_hdu(",2")
