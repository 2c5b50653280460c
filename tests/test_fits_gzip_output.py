"""Gzipped FITS outputs (QA52 paths #3): any case of ``.gz`` is gzip, and the gzip header names
the product, not the hidden scratch file, with bytes that repeat."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from sciconv import io, postprocess


def _stored_name(path) -> str:
    """The FNAME field of a gzip member header (RFC 1952)."""
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b", f"{path.name} is not gzip"
    flags = raw[3]
    assert flags & 0x08, "no file name stored"
    start = 10
    if flags & 0x04:  # FEXTRA
        start += 2 + struct.unpack("<H", raw[10:12])[0]
    return raw[start : raw.index(b"\0", start)].decode("latin-1")


@pytest.mark.parametrize("name", ["img.fits.gz", "img.FITS.GZ", "img.Fits.Gz"])
def test_images_are_gzipped_whatever_the_case_with_the_products_name(tmp_path, name):
    data = np.arange(30 * 20, dtype=np.float32).reshape(30, 20)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = io.write(tmp_path / "a" / name, data)
    two = io.write(tmp_path / "b" / name, data)
    assert _stored_name(one) == name[: -len(".gz")]  # was .img.fits.<pid>.<random>.part.fits
    assert one.read_bytes() == two.read_bytes()  # no time, no random name in the header
    np.testing.assert_array_equal(fits.getdata(one), data)
    with gzip.open(one) as fh:  # gzip itself reads it (an upper-case .GZ was plain FITS)
        assert fh.read(6) == b"SIMPLE"
    np.testing.assert_array_equal(io.read(one).data[..., 0], data)


@pytest.mark.parametrize("name", ["cat.fits.gz", "cat.FITS.GZ"])
def test_catalogs_are_gzipped_whatever_the_case(tmp_path, name):
    table = Table({"id": np.arange(1, 4), "flux": np.array([1.0, 2.5, 4.0])})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = postprocess.write_catalog(table, tmp_path / "a" / name)
    two = postprocess.write_catalog(table, tmp_path / "b" / name)
    assert _stored_name(one) == name[: -len(".gz")]
    assert one.read_bytes() == two.read_bytes()
    back = Table.read(one)
    assert back["id"].tolist() == [1, 2, 3] and back["flux"].tolist() == [1.0, 2.5, 4.0]
