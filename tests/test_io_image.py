"""sciconv.io._image: as_array, the one way every stage unwraps an image."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sciconv import io
from sciconv.errors import ConfigError


@pytest.fixture
def lazy_fits(tmp_path):
    path = tmp_path / "a.fits"
    io.write(path, np.arange(20, dtype=np.int16).reshape(4, 5))
    img = io.read(path, lazy=True)
    yield img
    img.data.close()


def test_gridimage_gives_its_data():
    x = np.zeros((4, 5, 1), np.float32)
    assert io.as_array(io.GridImage(x)) is x
    assert io.as_array(io.GridImage(x), load=True) is x


def test_nddata_and_ccddata_give_their_data():
    from astropy.nddata import CCDData, NDData

    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert io.as_array(NDData(x)) is x
    ccd = CCDData(x, unit="adu", mask=x > 5)
    out = io.as_array(ccd, load=True)
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, x)  # the mask is not applied


def test_arrays_pass_through_unchanged(tmp_path):
    x = np.ones((2, 3), np.uint8)
    assert io.as_array(x) is x and io.as_array(x, load=True) is x
    mm = np.memmap(tmp_path / "m.raw", dtype=np.float32, mode="w+", shape=(3, 4))
    assert io.as_array(mm) is mm
    loaded = io.as_array(mm, load=True)
    assert type(loaded) is np.ndarray and loaded.shape == (3, 4)
    assert io.as_array([[1, 2]]) == [[1, 2]]
    np.testing.assert_array_equal(io.as_array([[1, 2]], load=True), np.array([[1, 2]]))


def test_lazy_image_is_read_only_with_load(lazy_fits):
    lazy = lazy_fits.data
    assert io.as_array(lazy) is lazy
    assert io.as_array(lazy_fits) is lazy
    for value in (lazy, lazy_fits):
        out = io.as_array(value, load=True)
        assert type(out) is np.ndarray and out.dtype == np.float32 and out.shape == (4, 5, 1)
        np.testing.assert_array_equal(out[..., 0], np.arange(20).reshape(4, 5))


def test_dask_array_is_computed_only_with_load():
    import dask.array as da

    x = da.arange(12, chunks=5).reshape(3, 4)
    assert io.as_array(x) is x
    out = io.as_array(x, load=True)
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, np.arange(12).reshape(3, 4))


@pytest.mark.parametrize("load", [1, "yes", None])
def test_load_must_be_a_bool(load):
    with pytest.raises(ConfigError, match=r"load must be True or False; got"):
        io.as_array(np.zeros(2), load=load)


def test_import_and_as_array_stay_light():
    """``import sciconv.io`` and as_array on arrays import neither TensorFlow nor astropy.nddata."""
    code = (
        "import sys, numpy as np, sciconv.io as io\n"
        "io.as_array(np.zeros(3)); io.as_array(np.zeros(3), load=True)\n"
        "bad = [m for m in ('tensorflow', 'keras', 'astropy.nddata') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
