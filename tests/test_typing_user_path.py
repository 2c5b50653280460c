"""``user_path`` and ``check_name_length`` with an ``error`` class that is not a SciconvError.

Their annotation, ``error: type[Exception]``, lets a type checker accept ``error=ValueError``;
the refusals that name a path then raised ``TypeError: ValueError() takes no keyword
arguments`` instead of the message. Any exception class is accepted: a SciconvError gets the
path as its ``.path``, another class the path at the start of its message.
"""

from __future__ import annotations

import pytest

from sciconv.errors import ConfigError, WriteError
from sciconv.io import user_path
from sciconv.io._files import check_name_length

URL = "https://archive.stsci.edu/a.fits"


def test_url_refused_with_a_builtin_error_class():
    with pytest.raises(ValueError) as info:
        user_path(URL, error=ValueError, what="images")
    assert type(info.value) is ValueError
    assert str(info.value).startswith(f"{URL}: URLs are not read or written")


def test_url_refused_with_a_sciconv_error_keeps_its_path():
    with pytest.raises(ConfigError) as info:
        user_path(URL)
    assert info.value.path == URL
    assert info.value.message.startswith("URLs are not read or written")
    assert str(info.value) == f"{URL}: {info.value.message}"


def test_bytes_refused_with_a_builtin_error_class():
    with pytest.raises(TypeError, match=r"images must be a str or os\.PathLike; got bytes"):
        user_path(b"a.fits", error=TypeError, what="images")


def test_long_name_refused_with_a_builtin_error_class(tmp_path):
    name = "x" * 300 + ".fits"
    with pytest.raises(ValueError) as info:
        check_name_length(tmp_path / name, error=ValueError, hint="; rename it")
    assert type(info.value) is ValueError
    text = str(info.value)
    assert "file name too long (305 bytes; the file system allows" in text
    assert text.endswith("; rename it")
    assert text.startswith(str(tmp_path))  # the path (its long name shortened) leads


def test_long_path_refused_with_a_builtin_error_class(tmp_path):
    deep = tmp_path.joinpath(*["d" * 10] * 400, "a.fits")  # short names, a path over 4096 bytes
    with pytest.raises(OSError, match=r"path too long \(\d+ bytes; the file system allows"):
        check_name_length(deep, error=OSError)


def test_long_name_refused_with_a_sciconv_error_keeps_its_path(tmp_path):
    with pytest.raises(WriteError) as info:
        check_name_length(tmp_path / ("x" * 300 + ".fits"))
    assert info.value.path is not None and info.value.path.startswith(str(tmp_path))
    assert info.value.message.startswith("file name too long (305 bytes")
