"""What a FITS product written like an input keeps of the input's header (QA finding 3).

Probabilities, labels and masks copied the input's DATAMIN/DATAMAX (FITS 4.0 section 4.4.2.5:
the valid range of the array: 0 % of a probability map's pixels were "valid", and DS9 and IRAF
act on them), SATURATE, GAIN and zero points; ``io.write(path, img.data * 2, like=img)`` kept an
out-of-date DATAMAX. The observation's cards, the WCS and HISTORY stay.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
import pytest
from _helpers import tan_wcs
from astropy.io import fits

from sciconv import io, postprocess
from sciconv.io._fits_errors import GAIN_KEYWORDS

H, W = 32, 40
#: an HST-like calibrated frame's cards on its pixel values: its statistics ...
STATISTICS = {
    "DATAMIN": 850.0,
    "DATAMAX": 60000.0,
    "DATAMEAN": 1001.0,
    "GOODMIN": 851.0,
    "GOODMAX": 5.9e4,
    "SNRMAX": 313.9,
    "NGOODPIX": H * W,
}
#: ... and their calibration
CALIBRATION = {
    "SATURATE": 55000.0,
    "GAIN": 2.0,
    "ATODGNA": 2.02,
    "RDNOISE": 4.5,
    "PHOTFLAM": 1.278e-19,
    "PHOTZPT": -21.1,
    "PHOTPLAM": 5887.9,
    "PHOTBW": 664.9,
    "MAGZPT": 25.1,
    "MAGZPERR": 0.02,
}
#: the observation: kept on every product
OBSERVATION = {
    "EXPTIME": 60.0,
    "DATE-OBS": "2002-04-13",
    "OBJECT": "NGC104",
    "TELESCOP": "HST",
}


@pytest.fixture
def frame(tmp_path) -> io.GridImage:
    """An ADU frame (with a WCS) whose header has every kind of card, as io.read gives it."""
    data = np.random.default_rng(0).normal(1000.0, 30.0, (H, W)).astype(np.float32)
    header = tan_wcs((H, W)).to_header()
    header["BUNIT"] = "ADU"
    header.update({**STATISTICS, **CALIBRATION, **OBSERVATION})
    fits.writeto(tmp_path / "frame.fits", data, header)
    return io.read(tmp_path / "frame.fits")


def _labels() -> np.ndarray:
    labels = np.zeros((H, W), np.int32)
    labels[4:12, 5:14] = 1
    labels[18:28, 20:34] = 2
    return labels


def _prob() -> np.ndarray:
    fg = (_labels() > 0).astype(np.float32) * 0.9 + 0.05
    return np.stack([1 - fg, fg], axis=-1)


def _cards(header) -> set[str]:
    return set(header.keys())


def _assert_no_pixel_cards(header, where) -> None:
    kept = _cards(header) & {*STATISTICS, *CALIBRATION, "BUNIT"}
    assert not kept, f"{where}: the input's {sorted(kept)}"
    for key, value in OBSERVATION.items():
        assert header[key] == value, (where, key)
    assert header["CTYPE1"] == "RA---TAN" and header["CTYPE2"] == "DEC--TAN", where
    history = " ".join(str(line) for line in header["HISTORY"])
    assert "Written by sciconv" in history and "left out" in history, where


def test_products_drop_the_cards_on_the_input_pixel_values(tmp_path, frame):
    """repro_3: prediction_prob.fits (0..1) and prediction_labels.fits (0..2) said DATAMIN =
    850, DATAMAX = 60000: 0 % of their pixels inside; SATURATE, GAIN, MAGZPT copied too."""
    mask = np.zeros((H, W), bool)
    mask[0, 0] = True
    paths = postprocess.write_products(
        tmp_path / "out",
        prob=_prob(),
        labels=_labels(),
        mask=mask,
        uncertainty=np.full((H, W, 2), 0.1, np.float32),
        like=frame,
    )
    for key in ("prob", "labels"):
        with fits.open(paths[key]) as hdul:
            _assert_no_pixel_cards(hdul[0].header, paths[key].name)
            for ext in hdul[1:]:  # MASK, UNCERT: CCDData's own headers, clean already
                assert not _cards(ext.header) & {*STATISTICS, *CALIBRATION}, ext.name
    # the input keeps them: what measure's saturation flags and the error model read
    assert frame.header["SATURATE"] == 55000.0 and frame.header["GAIN"] == 2.0
    assert postprocess.saturation_level(frame) == 55000.0
    assert postprocess.effective_gain(frame) == 2.0


@pytest.mark.parametrize("kind", ["labels", "mask", "prob"])
def test_write_like_an_image_drops_them_for_pixels_of_another_kind(tmp_path, frame, kind):
    """io.write, the README's idiom: integer and bool arrays (labels, masks) by default, float
    arrays of another kind (probabilities) with like_pixels=False."""
    array = {"labels": _labels(), "mask": _labels() > 0, "prob": _prob()}[kind]
    extra = {"like_pixels": False} if kind == "prob" else {}
    path = io.write(tmp_path / f"{kind}.fits", array, like=frame, **extra)
    _assert_no_pixel_cards(fits.getheader(path), kind)


def test_new_pixel_values_drop_the_array_statistics_only(tmp_path, frame):
    """img.data * 2 kept DATAMAX = 60000 (its pixels reach 120000). Same-unit science pixels
    keep BUNIT and the calibration: a gain or zero point holds for any pixels in that unit."""
    header = fits.getheader(io.write(tmp_path / "twice.fits", frame.data * 2, like=frame))
    assert not _cards(header) & set(STATISTICS)
    assert {key: header[key] for key in CALIBRATION} == CALIBRATION
    assert header["BUNIT"] == "ADU" and header["EXPTIME"] == 60.0
    assert any("DATAMIN" in str(line) for line in header["HISTORY"])
    # the caller who knows the new range says it
    again = io.write(
        tmp_path / "said.fits", frame.data * 2, like=frame, header={"DATAMAX": 120000.0}
    )
    assert fits.getheader(again)["DATAMAX"] == 120000.0
    # a header alone shows no pixels: its statistics are not carried onto an array
    hdr = fits.getheader(io.write(tmp_path / "h.fits", frame.data[..., 0], like=frame.header))
    assert not _cards(hdr) & set(STATISTICS) and hdr["GAIN"] == 2.0


def test_the_input_own_pixels_keep_every_card(tmp_path, frame):
    """Written back (the GridImage itself, its values, a cutout, with masked pixels NaN), the
    pixels are the input's: DATAMIN/DATAMAX and the statistics still describe them."""
    masked = io.GridImage(frame.data, header=frame.header, wcs=frame.wcs, mask=frame.data > 1050)
    cutout = frame.cutout(4, 20, 6, 30)
    for name, array, like in (
        ("self", frame, None),
        ("values", frame.data[..., 0], frame),
        ("float64", frame.data.astype(np.float64), frame),
        ("masked", masked, None),
        ("masked_values", masked.data, masked),
        ("cutout", cutout, None),
    ):
        header = fits.getheader(io.write(tmp_path / f"{name}.fits", array, like=like))
        expected = {**STATISTICS, **CALIBRATION, **OBSERVATION}
        assert {key: header[key] for key in expected} == expected, name
        assert header["BUNIT"].lower() == "adu", name
        assert not any("left out" in str(line) for line in header["HISTORY"]), name
    # and an integer image written as the same kind, said so
    raw = io.write(tmp_path / "raw.fits", np.rint(frame.data).astype(np.int32), like=frame,
                   like_pixels=True)  # fmt: skip
    header = fits.getheader(raw)
    assert header["GAIN"] == 2.0 and header["BUNIT"] == "ADU" and "DATAMAX" not in header


def test_real_hst_products_drop_photometry_and_statistics(tmp_path):
    """The bundled HST/ACS cutout's probability product carried PHOTFLAM, PHOTZPT, GOODMAX =
    1.5e5 and SNRMAX above a 0..1 cube (QA); EXPTIME, the target and the WCS stay."""
    hst = Path(__file__).parents[1] / "data" / "real" / "hst" / "j8bt06nyq_sci_cutout.fits"
    img = io.read(hst)
    assert {"PHOTFLAM", "GOODMAX", "SNRMAX", "NGOODPIX"} <= _cards(img.header)
    prob = np.full((*img.shape[:2], 2), 0.5, np.float32)
    path = postprocess.write_products(tmp_path, prob=prob, like=img)["prob"]
    header = fits.getheader(path)
    photometry = ("PHOTFLAM", "PHOTZPT", "PHOTPLAM", "PHOTBW", "BUNIT")
    statistics = ("NGOODPIX", "GOODMIN", "GOODMAX", "GOODMEAN", "SNRMIN", "SNRMAX", "SNRMEAN")
    assert not _cards(header) & {*photometry, *statistics}
    assert header["EXPTIME"] == 60.0 and header["TARGNAME"] == "NGC104"
    assert header["PHOTMODE"] == "ACS HRC F606W"  # the observation's mode, not a calibration
    assert io.read(path).wcs is not None


def test_the_keyword_lists_cover_what_sciconv_reads_from_an_input():
    """The saturation and gain keywords measure() and the error model read from the input are
    among those a product drops; the two lists do not overlap."""
    from sciconv.io._header import (
        ARRAY_STATISTICS_KEYWORDS,
        PIXEL_CALIBRATION_KEYWORDS,
        PIXEL_VALUE_KEYWORDS,
    )

    for key in (*postprocess.SATURATION_KEYWORDS, *GAIN_KEYWORDS, "DATAMIN", "MAGZP_R"):
        assert any(fnmatchcase(key, p) for p in PIXEL_VALUE_KEYWORDS), key
    assert not set(ARRAY_STATISTICS_KEYWORDS) & set(PIXEL_CALIBRATION_KEYWORDS)
    for key in ("EXPTIME", "DATE-OBS", "OBJECT", "TELESCOP", "PHOTMODE", "CTYPE1", "HISTORY"):
        assert not any(fnmatchcase(key, p) for p in PIXEL_VALUE_KEYWORDS), key
