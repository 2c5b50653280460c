"""Bad inputs for sciconv.io: each gives an InvalidImageError naming the file and the problem,
or a documented fallback (asserted here). Nothing may end in a raw astropy/tifffile/Pillow error.

Other modules (datasets, inference, CLI) test their own bad inputs in their own test files.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from astropy.io import fits
from PIL import Image

from sciconv import io
from sciconv.errors import InvalidImageError, SciconvError, SciconvWarning


def _fits_bytes(data=None, **cards) -> bytes:
    hdu = fits.PrimaryHDU(data)
    for k, v in cards.items():
        hdu.header[k] = v
    from io import BytesIO

    buf = BytesIO()
    hdu.writeto(buf)
    return buf.getvalue()


def _raw_header(cards: list[str]) -> bytes:
    text = "".join(c.ljust(80)[:80] for c in [*cards, "END"])
    return text.encode("ascii").ljust(2880 * (len(text) // 2880 + 1), b" ")


def _png_bytes(arr) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _tiff_bytes(arr, **kw) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    tifffile.imwrite(buf, arr, **kw)
    return buf.getvalue()


GOOD_FITS = _fits_bytes(np.arange(64 * 64, dtype=np.float32).reshape(64, 64))
GOOD_PNG = _png_bytes(np.zeros((40, 40, 3), np.uint8) + 7)
GOOD_TIFF = _tiff_bytes(np.zeros((40, 40), np.uint16))


def _write(name: str, content: bytes):
    def make(tmp: Path) -> Path:
        p = tmp / name
        p.write_bytes(content)
        return p

    return make


def _fifo(tmp: Path) -> Path:
    p = tmp / "pipe.fits"
    os.mkfifo(p)
    return p


def _broken_link(tmp: Path) -> Path:
    p = tmp / "link.fits"
    p.symlink_to(tmp / "gone.fits")
    return p


def _folder(tmp: Path) -> Path:
    p = tmp / "folder.fits"
    p.mkdir()
    return p


# (id, factory, regex the message must match after the file name)
BAD = [
    ("missing", lambda t: t / "nothere.fits", "file not found"),
    ("directory", _folder, "is a directory"),
    ("broken-symlink", _broken_link, r"broken symbolic link \(target .*gone\.fits"),
    ("fifo", _fifo, "not a regular file"),
    ("zero-byte-fits", _write("empty.fits", b""), r"empty file \(0 bytes\)"),
    ("zero-byte-png", _write("empty.png", b""), r"empty file \(0 bytes\)"),
    ("zero-byte-tif", _write("empty.tif", b""), r"empty file \(0 bytes\)"),
    (
        "text-as-fits",
        _write("notes.fits", b"ra,dec\n1,2\n"),
        "not a FITS file: it holds plain text",
    ),
    (
        "html-as-fits",
        _write("page.fits", b"<!DOCTYPE html><html><body>404 Not Found</body></html>"),
        "HTML",
    ),
    ("html-as-png", _write("page.png", b"<html><head></head></html>"), "not a PNG file.*HTML"),
    ("binary-junk-tif", _write("junk.tif", bytes(range(256)) * 4), "not a TIFF file"),
    ("png-named-tif", _write("wrong.tif", GOOD_PNG), "named as TIFF but the content is PNG"),
    ("fits-named-png", _write("wrong.png", GOOD_FITS), "named as PNG but the content is FITS"),
    ("gzip-named-tif", _write("x.tif", b"\x1f\x8b\x08\x00" + bytes(40)), "gzip-compressed file"),
    ("truncated-fits-data", _write("cut.fits", GOOD_FITS[:5000]), "truncated file: HDU 0 needs"),
    ("truncated-fits-header", _write("cut2.fits", GOOD_FITS[:1000]), "header-only|not a readable"),
    ("truncated-gz", _write("cut.fits.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00"), "FITS"),
    (
        "header-only",
        _write("hdr.fits", _fits_bytes(None, OBJECT="M31")),
        r"no image data: header-only FITS",
    ),
    (
        "table-only",
        _write(
            "tab.fits",
            b"".join(
                [
                    _fits_bytes(None),
                    _raw_header(
                        [
                            "XTENSION= 'BINTABLE'",
                            "BITPIX  = 8",
                            "NAXIS   = 2",
                            "NAXIS1  = 4",
                            "NAXIS2  = 1",
                            "PCOUNT  = 0",
                            "GCOUNT  = 1",
                            "TFIELDS = 1",
                            "TFORM1  = '1E'",
                            "EXTNAME = 'EVENTS'",
                        ]
                    ),
                    bytes(2880),
                ]
            ),
        ),
        r"no image HDU with pixels \(HDUs: 0:PrimaryHDU\(PRIMARY\), 1:BinTableHDU\(EVENTS\)\)",
    ),
    (
        "zero-size-axis",
        _write(
            "zero.fits",
            _raw_header(
                ["SIMPLE  = T", "BITPIX  = 8", "NAXIS   = 2", "NAXIS1  = 0", "NAXIS2  = 5"]
            ),
        ),
        "header-only FITS",
    ),
    (
        "1-D",
        _write("spec.fits", _fits_bytes(np.arange(10, dtype=np.float32))),
        r"1-D data \(NAXIS=1",
    ),
    (
        "5-D",
        _write("five.fits", _fits_bytes(np.zeros((2, 2, 2, 4, 4), np.float32))),
        r"5-D data \(NAXIS1..n = 4 x 4 x 2 x 2 x 2\)",
    ),
    (
        "4-D-needs-stack",
        _write("four.fits", _fits_bytes(np.zeros((2, 3, 4, 4), np.float32))),
        r"4-D data.*read\(path, stack=True\) reads it as a stack; to segment one plane",
    ),
    (
        "bad-bitpix",
        _write(
            "bitpix.fits",
            _raw_header(
                ["SIMPLE  = T", "BITPIX  = 12", "NAXIS   = 2", "NAXIS1  = 2", "NAXIS2  = 2"]
            )
            + bytes(2880),
        ),
        "BITPIX|not a readable FITS",
    ),
    (
        "text-bscale",
        _write(
            "bscale.fits",
            _raw_header(
                [
                    "SIMPLE  = T",
                    "BITPIX  = 16",
                    "NAXIS   = 2",
                    "NAXIS1  = 2",
                    "NAXIS2  = 2",
                    "BSCALE  = 'two'",
                ]
            )
            + bytes(2880),
        ),
        "BSCALE is not a number",
    ),
    ("truncated-png", _write("cut.png", GOOD_PNG[: len(GOOD_PNG) // 2]), "not a readable PNG"),
    ("truncated-tif", _write("cut.tif", GOOD_TIFF[:200]), "TIFF"),
    ("truncated-jpeg", _write("cut.jpg", b"\xff\xd8\xff\xe0" + bytes(30)), "not a readable JPEG"),
    (
        "tiff-5d-axes",
        _write(
            "tzc.tif",
            _tiff_bytes(
                np.zeros((2, 3, 2, 8, 8), np.uint8),
                photometric="minisblack",
                metadata={"axes": "TZCYX"},
            ),
        ),
        r"TIFF axes 'TZCYX'.*stack=True",
    ),
    ("unknown-extension", _write("data.xyz", b"\x00\x01\x02garbage"), "not a FITS, TIFF, PNG"),
]


def sha(p: Path) -> str | None:
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None


@pytest.mark.parametrize(("make", "problem"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_file_raises_invalid_image_error_naming_file(tmp_path, make, problem):
    path = make(tmp_path)
    before = sha(path) if not path.is_fifo() else None
    with pytest.raises(InvalidImageError, match=re.escape(str(path)) + ": .*(" + problem + ")"):
        io.read(path)
    if before is not None:
        assert sha(path) == before


@pytest.mark.parametrize("lazy", [False, True])
def test_bad_file_lazy_and_section_paths_fail_the_same(tmp_path, lazy):
    p = tmp_path / "cut.fits"
    p.write_bytes(GOOD_FITS[:5000])
    with warnings.catch_warnings():  # sciconv's one error, not astropy's warning before it
        warnings.simplefilter("error")
        with pytest.raises(InvalidImageError, match=r"cut\.fits: truncated file"):
            io.read(p, lazy=lazy, section=(slice(0, 4), slice(0, 4)))


def test_unreadable_file(tmp_path, monkeypatch):
    p = tmp_path / "secret.fits"
    p.write_bytes(GOOD_FITS)
    p.chmod(0)
    try:
        if os.geteuid() == 0:  # root reads anything: simulate what a normal user sees
            monkeypatch.setattr(os, "access", lambda *a, **k: False)
        with pytest.raises(InvalidImageError, match=r"secret\.fits: permission denied"):
            io.read(p)
    finally:
        p.chmod(0o644)


def test_wrong_path_type():
    with pytest.raises(InvalidImageError, match=r"path must be a str or os\.PathLike; got int"):
        io.read(42)


# ------------------------------------------------------------------------------------------------
# documented fallbacks
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_all_nan_or_inf_image_reads_fully_masked(tmp_path, value):
    """Fallback: a file that is all NaN/Inf is a valid image whose pixels are all bad."""
    p = tmp_path / "bad.fits"
    p.write_bytes(_fits_bytes(np.full((4, 5), value, np.float32)))
    img = io.read(p)
    assert img.mask.all() and np.isnan(img.data).all()


def test_integer_overflow_on_scaling_warns_and_masks(tmp_path):
    """Fallback: BSCALE that overflows float32 gives NaN (masked) and a SciconvWarning."""
    raw = np.array([[1, 2], [400, 30000]], dtype=np.int16)
    p = tmp_path / "ovf.fits"
    p.write_bytes(_fits_bytes(raw, BSCALE=1e36))
    with pytest.warns(SciconvWarning, match=r"ovf\.fits: 2 pixel\(s\) exceed the float32 range"):
        img = io.read(p)
    np.testing.assert_array_equal(img.mask[..., 0], [[False, False], [True, True]])
    np.testing.assert_allclose(img.data[0, :, 0], [1e36, 2e36], rtol=1e-6)


def test_non_integer_blank_warns_and_is_ignored(tmp_path):
    raw = np.array([[1, 2], [3, 4]], dtype=np.int16)
    p = tmp_path / "blank.fits"
    p.write_bytes(_fits_bytes(raw, BLANK="none"))
    with pytest.warns(SciconvWarning, match=r"blank\.fits: BLANK is not an integer"):
        img = io.read(p)
    np.testing.assert_array_equal(img.data[..., 0], raw)


def test_one_by_one_image_is_valid(tmp_path):
    p = tmp_path / "px.fits"
    p.write_bytes(_fits_bytes(np.array([[5.0]], np.float32)))
    assert io.read(p).shape == (1, 1, 1)


def test_palette_png_and_bilevel_png(tmp_path):
    im = Image.fromarray(np.array([[0, 1]], np.uint8), mode="P")
    im.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    im.info["transparency"] = 0
    im.save(tmp_path / "t.png", transparency=0)
    img = io.read(tmp_path / "t.png")
    assert img.shape == (1, 2, 3)  # the transparent index -> alpha 0: no data, alpha dropped
    assert img.meta["alpha"] == "dropped; 1 fully transparent pixels are no data (NaN)"
    np.testing.assert_array_equal(img.data[0, 1], [40, 50, 60])
    assert np.isnan(img.data[0, 0]).all() and img.mask[0, 0].all()
    Image.fromarray(np.array([[True, False]])).save(tmp_path / "b.png")
    np.testing.assert_array_equal(io.read(tmp_path / "b.png").data[0, :, 0], [255, 0])


def test_junk_folder_lists_only_images_and_each_reads_or_fails_cleanly(tmp_path):
    for name, content in [
        ("good.fits", GOOD_FITS),
        ("good.png", GOOD_PNG),
        ("good.tif", GOOD_TIFF),
        ("bad.fits", b"<html></html>"),
        ("empty.tif", b""),
        ("readme.md", b"# hi"),
        (".hidden.fits", GOOD_FITS),
    ]:
        (tmp_path / name).write_bytes(content)
    (tmp_path / "dangling.png").symlink_to(tmp_path / "nope.png")
    listed = io.list_images(tmp_path)
    assert [p.name for p in listed] == [
        "bad.fits",
        "empty.tif",
        "good.fits",
        "good.png",
        "good.tif",
    ]
    outcomes = {}
    for p in listed:
        try:
            outcomes[p.name] = io.read(p).shape
        except SciconvError as exc:
            assert str(p) in str(exc)
            outcomes[p.name] = type(exc).__name__
    assert outcomes == {
        "bad.fits": "InvalidImageError",
        "empty.tif": "InvalidImageError",
        "good.fits": (64, 64, 1),
        "good.png": (40, 40, 3),
        "good.tif": (40, 40, 1),
    }


def test_text_file_error_never_quotes_its_contents(tmp_path):
    path = tmp_path / "secrets.fits"
    path.write_text("password=hunter2\napi_key=abc123\n")
    with pytest.raises(InvalidImageError) as e:
        io.read(path)
    message = str(e.value)
    assert "secrets.fits" in message and "plain text" in message
    assert "hunter2" not in message and "password" not in message


@pytest.mark.parametrize(
    ("name", "head", "vendor"),
    [("a.czi", b"ZISRAWFILE", "Zeiss CZI"), ("b.nd2", b"\xda\xce\xbe\x0a", "Nikon ND2")],
)
def test_a_vendor_microscopy_file_is_named_with_the_way_to_convert_it(tmp_path, name, head, vendor):
    """QA: a CZI or ND2 given alone got "unrecognized binary content"."""
    path = tmp_path / name
    path.write_bytes(head + bytes(64))
    with pytest.raises(InvalidImageError, match=rf"a {vendor} file.*OME-TIFF") as info:
        io.read(path)
    assert name in str(info.value)
