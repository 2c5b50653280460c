"""sciconv.io.read_pixels and probe_shape: the fast path for plain FITS agrees with io.read.

Every case compares ``read_pixels(path)`` with ``read(path).data`` (and ``probe_shape`` with
``read(path).shape``), and says whether the fast path took the file (``read_plain_fits``) or
declined it, so that the rule "anything unusual goes to astropy" is pinned down case by case.
"""

from __future__ import annotations

import gzip
import os
import warnings

import numpy as np
import pytest
import tifffile
from astropy.io import fits

from sciconv import io
from sciconv.errors import InvalidImageError, SciconvError, SciconvWarning
from sciconv.io._fits import read_plain_fits

RAW = (np.arange(35, dtype=np.int16).reshape(5, 7) * 3 - 40).astype(">i2")


def card(key: str, value) -> str:
    text = {True: "T", False: "F"}.get(value, value) if isinstance(value, bool) else value
    return f"{key:<8}= {text!s:>20}"


def fits_bytes(cards: list[str], data: bytes, *, end: str = "END") -> bytes:
    """A FITS file written byte by byte: cards as given (duplicates and all), then the data."""
    head = "".join(c.ljust(80)[:80] for c in cards) + end.ljust(80)
    raw = head.encode("latin-1")
    raw = raw.ljust(-(-len(raw) // 2880) * 2880, b" ")
    return raw + data.ljust(-(-len(data) // 2880) * 2880, b"\0")


def int16_file(*extra: str, end: str = "END", first=None) -> bytes:
    first = first or [
        card("SIMPLE", True),
        card("BITPIX", 16),
        card("NAXIS", 2),
        card("NAXIS1", 7),
        card("NAXIS2", 5),
    ]
    return fits_bytes([*first, *extra], RAW.tobytes(), end=end)


def outcome(fn, path):
    """(value, error type) of ``fn(path)``, third-party warnings ignored."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(path), None
        except SciconvError as exc:
            assert exc.path is not None and os.path.samefile(exc.path, path), str(exc)
            return None, type(exc)


def assert_agrees(path, *, fast: bool):
    """read_pixels == read().data and probe_shape == read().shape, and the fast path as said."""
    assert (read_plain_fits(str(path)) is not None) == fast
    ref, ref_error = outcome(lambda p: io.read(p).data, path)
    got, got_error = outcome(io.read_pixels, path)
    assert got_error is ref_error
    shape, shape_error = outcome(io.probe_shape, path)
    if ref_error is not None:
        assert shape_error is ref_error
        return None
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.flags.writeable
    np.testing.assert_array_equal(got, ref)  # NaN where NaN, bit for bit elsewhere
    assert shape == ref.shape and shape_error is None
    return got


# --------------------------------------------------------------------------------------------------
# files the fast path takes
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64", "int16", "uint8", "int32", "int64"])
def test_plain_files_take_the_fast_path(tmp_path, dtype):
    rng = np.random.default_rng(0)
    data = (rng.random((9, 11)) * 200 - (0 if dtype == "uint8" else 100)).astype(dtype)
    if dtype == "int64":
        data[0, 0] = 2**62 + 1  # rounds through float64, as io.read does
    path = tmp_path / f"{dtype}.fits"
    fits.writeto(path, data)
    got = assert_agrees(path, fast=True)
    assert got.shape == (9, 11, 1)


def test_nan_and_inf_become_nan(tmp_path):
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    data[0, 1], data[2, 2], data[1, 3] = np.nan, np.inf, -np.inf
    path = tmp_path / "nan.fits"
    fits.writeto(path, data)
    got = assert_agrees(path, fast=True)
    assert np.isnan(got[..., 0]).sum() == 3


@pytest.mark.parametrize(
    "extra",
    [
        [card("BSCALE", 1.0), card("BZERO", 0.0)],
        [card("BSCALE", "1.0D0"), card("BZERO", "-0.0E+00")],
        [card("EXTEND", True), card("ENDTIME", "'12:00'"), "COMMENT BSCALE = 2"],
    ],
    ids=["neutral", "fortran-neutral", "harmless"],
)
def test_neutral_and_harmless_cards_keep_the_fast_path(tmp_path, extra):
    path = tmp_path / "a.fits"
    path.write_bytes(int16_file(*extra))
    got = assert_agrees(path, fast=True)
    np.testing.assert_array_equal(got[..., 0], RAW.astype(np.float32))


def test_float64_overflow_warns_the_same_on_both_paths(tmp_path):
    path = tmp_path / "big.fits"
    fits.writeto(path, np.array([[1.0, 1e300], [-1e300, 2.0]]))
    with pytest.warns(SciconvWarning, match=r"big\.fits: 2 pixel\(s\) exceed the float32 range"):
        assert read_plain_fits(str(path)) is not None  # the fast path warns as read() does
    with pytest.warns(SciconvWarning, match=r"big\.fits: 2 pixel\(s\) exceed the float32 range"):
        got = io.read_pixels(path)
    with pytest.warns(SciconvWarning, match=r"big\.fits: 2 pixel\(s\) exceed the float32 range"):
        ref = io.read(path).data
    np.testing.assert_array_equal(got, ref)
    assert np.isnan(got).sum() == 2


def test_pixels_only_never_warns_about_a_broken_wcs(tmp_path):
    path = tmp_path / "wcs.fits"
    header = fits.Header({"CTYPE1": "RA---XYZ", "CTYPE2": "DEC--XYZ"})
    fits.writeto(path, np.ones((4, 4), np.float32), header)
    with pytest.warns(SciconvWarning, match="WCS ignored"):
        ref = io.read(path).data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(io.read_pixels(path), ref)
        assert io.probe_shape(path) == (4, 4, 1)
        gz = tmp_path / "wcs.fits.gz"  # the astropy path skips the WCS too
        gz.write_bytes(gzip.compress(path.read_bytes()))
        np.testing.assert_array_equal(io.read_pixels(gz), ref)


# --------------------------------------------------------------------------------------------------
# files the fast path declines: astropy decides, the values are still read()'s
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        [card("BSCALE", 2.0), card("BSCALE", 1.0)],  # astropy uses the first card
        [card("BSCALE", 1.0), card("BSCALE", 2.0)],
        [card("BZERO", 0.0), card("BZERO", 5.0)],
        [card("BZERO", 5.0), card("BZERO", 0.0)],
        [card("BLANK", -40), card("BLANK", 2)],
        [card("NAXIS1", 7)],
        [card("NAXIS", 2)],
        [card("BITPIX", 16)],
        [card("NAXIS3", 1)],
    ],
    ids=[
        "bscale-2-then-1",
        "bscale-1-then-2",
        "bzero-0-then-5",
        "bzero-5-then-0",
        "blank-twice",
        "naxis1-twice",
        "naxis-twice",
        "bitpix-twice",
        "naxis3",
    ],
)
def test_duplicated_cards_decline_and_agree(tmp_path, extra):
    path = tmp_path / "dup.fits"
    path.write_bytes(int16_file(*extra))
    assert_agrees(path, fast=False)


def test_duplicated_bscale_reads_the_first_card(tmp_path):
    """The case the old fast reader got wrong: it took the last BSCALE, astropy the first."""
    path = tmp_path / "dup.fits"
    path.write_bytes(int16_file(card("BSCALE", 2.0), card("BSCALE", 1.0)))
    got = assert_agrees(path, fast=False)
    np.testing.assert_array_equal(got[..., 0], RAW.astype(np.float32) * 2)


@pytest.mark.parametrize(
    "extra",
    [
        [card("bscale", 2.0)],
        [card(" BSCALE", 2.0)],
        ["HIERARCH BSCALE = 2.0"],
        ["BSCALE  =2.0"],
        [card("BSCALE", "'2.0'")],
        [card("BSCALE", "1_0.0")],
        [card("BZERO", "nan")],
        [card("GROUPS", True)],
        [card("PCOUNT", 0), card("GCOUNT", 1)],
        ["COMMENT caf\xe9"],  # non-ASCII: astropy replaces it, with a warning
    ],
    ids=[
        "lowercase",
        "indented",
        "hierarch",
        "no-space",
        "string",
        "underscore",
        "nan",
        "groups",
        "pcount",
        "non-ascii",
    ],
)
def test_unusual_cards_decline_and_agree(tmp_path, extra):
    path = tmp_path / "odd.fits"
    path.write_bytes(int16_file(*extra))
    assert_agrees(path, fast=False)


@pytest.mark.parametrize(
    ("first", "end"),
    [
        (["SIMPLE  =                    F", "BITPIX  = 16", "NAXIS   = 2"], "END"),
        ([card("BITPIX", 16), card("SIMPLE", True), card("NAXIS", 2)], "END"),
        (None, "END     x"),  # a malformed END card astropy accepts, with a warning
        (None, "END"),
    ],
    ids=["simple-false", "out-of-order", "malformed-end", "standard"],
)
def test_structure_of_the_header(tmp_path, first, end):
    path = tmp_path / "s.fits"
    if first is not None:
        first = [*first, card("NAXIS1", 7), card("NAXIS2", 5)]
    path.write_bytes(int16_file(end=end, first=first))
    assert_agrees(path, fast=first is None and end == "END")


def test_scaled_blank_and_unsigned_files(tmp_path):
    scaled = tmp_path / "scaled.fits"
    scaled.write_bytes(int16_file(card("BSCALE", 0.5), card("BZERO", 3.0), card("BLANK", -40)))
    got = assert_agrees(scaled, fast=False)
    assert np.isnan(got[0, 0, 0]) and got[0, 1, 0] == -37 * 0.5 + 3.0
    unsigned = tmp_path / "u16.fits"
    fits.writeto(unsigned, np.array([[0, 65535], [1, 2]], np.uint16))  # BZERO = 32768
    np.testing.assert_array_equal(assert_agrees(unsigned, fast=False)[..., 0], [[0, 65535], [1, 2]])


def test_cubes_extensions_and_compressed_files(tmp_path):
    cube = np.random.default_rng(1).normal(size=(3, 6, 7)).astype(np.float32)
    path = tmp_path / "cube.fits"
    fits.writeto(path, cube)
    assert assert_agrees(path, fast=False).shape == (6, 7, 3)
    ext = tmp_path / "ext.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(cube[0])]).writeto(ext)
    assert assert_agrees(ext, fast=False).shape == (6, 7, 1)
    for suffix in (".fits.gz", ".fits.fz"):
        comp = tmp_path / f"c{suffix}"
        io.write(comp, cube[0])
        np.testing.assert_array_equal(assert_agrees(comp, fast=False)[..., 0], cube[0])
    gz_named_fits = tmp_path / "gz.fits"  # gzip content under a plain name
    gz_named_fits.write_bytes(gzip.compress((tmp_path / "ext.fits").read_bytes()))
    assert assert_agrees(gz_named_fits, fast=False).shape == (6, 7, 1)


def test_tiff_and_png(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 255, (5, 6, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "a.tif", rgb, photometric="rgb")
    io.write(tmp_path / "a.png", rgb)
    for name in ("a.tif", "a.png"):
        assert assert_agrees(tmp_path / name, fast=False).shape == (5, 6, 3)


def test_compressed_tiff_probe_is_quiet(tmp_path):
    """probe_shape reads a compressed TIFF whole, without the note that read(lazy=True) gives."""
    path = tmp_path / "z.tif"
    tifffile.imwrite(path, np.ones((8, 9), np.uint16), compression="zlib")
    with pytest.warns(SciconvWarning, match="cannot be read window by window"):
        io.read(path, lazy=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert io.probe_shape(path) == (8, 9, 1)


# --------------------------------------------------------------------------------------------------
# damaged and missing files: the same error type as read(), naming the file
# --------------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:File may have been truncated")  # astropy's own note
def test_truncated_plain_file(tmp_path):
    path = tmp_path / "cut.fits"
    fits.writeto(path, np.random.default_rng(3).random((64, 64)).astype(np.float32))
    path.write_bytes(path.read_bytes()[:4000])
    assert read_plain_fits(str(path)) is None
    for fn in (io.read_pixels, io.probe_shape, io.read):
        with pytest.raises(InvalidImageError, match=r"cut\.fits: truncated file"):
            fn(path)


def test_truncated_last_row_of_other_files_is_caught_by_probe(tmp_path):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, np.ones((64, 64), np.float32))
    path.write_bytes(path.read_bytes()[:8000])
    assert_agrees(path, fast=False)
    with pytest.raises(InvalidImageError, match=r"cut\.tif: "):
        io.probe_shape(path)


@pytest.mark.parametrize("kind", ["missing", "folder", "fifo", "empty", "header-only", "text"])
def test_files_that_are_not_images(tmp_path, kind):
    path = tmp_path / "x.fits"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(path)  # must not block: nothing ever writes to it
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "header-only":
        fits.PrimaryHDU().writeto(path)
    elif kind == "text":
        path.write_text("SIMPLE = maybe\n")
    for fn in (io.read_pixels, io.probe_shape):
        with pytest.raises(InvalidImageError, match=r"x\.fits: "):
            fn(path)
    with pytest.raises(InvalidImageError, match=r"path must be a str or os\.PathLike; got int"):
        io.read_pixels(3)
