"""Pan-STARRS asinh-compressed pixels (``BSOFTEN``/``BOFFSET``) are read linear.

QA 55 finding 1: a PS1 DR2 full skycell stack (``rings.v3.skycell.*.stk.*.unconv.fits``, RICE
int16 with BSCALE/BZERO and BSOFTEN/BOFFSET) was read with BSCALE/BZERO applied but not the
asinh step its header declares: pixels -0.29..3.59 where the linear image is -31..1876, catalog
fluxes ~200 times too small, no warning. The IPP's own formula (Pan-STARRS IPP wiki
"asinh_compression"): ``L = BOFFSET + BSOFTEN * (exp(C / a) - exp(-C / a))``, ``a = 2.5
log10(e)``; the stack's ``.wt`` (a variance image) carries the same keywords.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import sciconv as sc
from sciconv import io
from sciconv.errors import SciconvWarning
from sciconv.io._fits import read_plain_fits
from tests._helpers import run_cli

ALPHA = 2.5 * np.log10(np.e)


def _linear(shape=(60, 80), seed=3) -> np.ndarray:
    """Sky noise of rms 8 around 5 and a few bright stars (up to ~2000 a pixel)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = 5.0 + rng.normal(0.0, 8.0, shape)
    for x, y, flux in ((15.3, 20.1, 30000.0), (55.7, 35.2, 8000.0), (40.0, 12.5, 2500.0)):
        image += flux / (2 * np.pi * 1.6**2) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 5.12)
    return image


def _compress(linear: np.ndarray):
    """C, BOFFSET, BSOFTEN as the IPP computes them."""
    boffset = float(np.mean(linear))
    bsoften = float(np.sqrt(ALPHA) * np.std(linear))
    return ALPHA * np.arcsinh((linear - boffset) / (2.0 * bsoften)), boffset, bsoften


def ps1_stack(path, linear: np.ndarray, *, blank_at=(0, 0)):
    """A skycell stack as MAST serves it: empty primary, RICE int16 + BSCALE/BZERO/BLANK and
    BSOFTEN/BOFFSET; the pixel ``blank_at`` undefined (BLANK)."""
    c, boffset, bsoften = _compress(linear)
    bscale = (c.max() - c.min()) / 65000.0
    bzero = (c.max() + c.min()) / 2.0
    raw = np.round((c - bzero) / bscale).astype(np.int16)
    raw[blank_at] = -32768
    header = fits.Header({"BSOFTEN": bsoften, "BOFFSET": boffset, "EXPTIME": 1200.0})
    comp = fits.CompImageHDU(data=raw, header=header, compression_type="RICE_1")
    comp.header["BSCALE"], comp.header["BZERO"], comp.header["BLANK"] = bscale, bzero, -32768
    fits.HDUList([fits.PrimaryHDU(), comp]).writeto(path)
    # what the file holds, decoded exactly (the test's own reference)
    stored = raw.astype(np.float64) * bscale + bzero
    expected = boffset + bsoften * (np.exp(stored / ALPHA) - np.exp(-stored / ALPHA))
    expected[blank_at] = np.nan
    return expected, boffset, bsoften


@pytest.fixture
def stack(tmp_path):
    linear = _linear()
    path = tmp_path / "rings.v3.skycell.1725.051.stk.r.unconv.fits"
    expected, boffset, bsoften = ps1_stack(path, linear)
    return path, linear, expected, boffset, bsoften


def test_a_ps1_stack_is_read_linear_and_says_so(stack):
    path, linear, expected, boffset, bsoften = stack
    img = io.read(path)
    data = img.data[..., 0]
    np.testing.assert_allclose(data, expected.astype(np.float32), rtol=2e-6, atol=1e-4)
    # the quantised file gives back the linear image (not the pseudo-magnitudes, 0..4)
    good = ~np.isnan(expected)
    np.testing.assert_allclose(data[good], linear[good], rtol=2e-3, atol=0.05)
    assert np.nanmax(data) > 1000.0
    assert np.isnan(data[0, 0]) and img.mask[0, 0, 0] and int(img.mask.sum()) == 1  # BLANK
    assert img.meta["scaling"] == "asinh"
    assert img.meta["boffset"] == pytest.approx(boffset)
    assert img.meta["bsoften"] == pytest.approx(bsoften)
    assert "bscale" in img.meta and img.meta["blank"] == -32768
    # a star's flux is the linear one: 30000 in the star at (15.3, 20.1)
    star = linear[10:31, 5:26] - 5.0
    assert float(np.sum(data[10:31, 5:26] - 5.0)) == pytest.approx(float(star.sum()), rel=2e-3)


def test_section_and_lazy_reads_decode_the_same_pixels(stack):
    path = stack[0]
    whole = io.read(path).data
    sec = io.read(path, section=(slice(5, 40), slice(10, 70)))
    np.testing.assert_array_equal(sec.data, whole[5:40, 10:70])
    assert sec.meta["scaling"] == "asinh"
    with io.read(path, lazy=True) as lazy:
        np.testing.assert_array_equal(lazy.data[:, :], whole)
        np.testing.assert_array_equal(lazy.data[20:30, 40:55], whole[20:30, 40:55])
        assert lazy.meta["scaling"] == "asinh"


def test_a_plain_wt_variance_file_with_the_keywords_leaves_the_fast_path(tmp_path):
    """A ``.wt`` (variance) image in a plain float32 primary HDU: the fast path for plain files
    would read it as stored; it declines and read() decodes it."""
    variance = np.abs(_linear(seed=7)) + 1.0
    c, boffset, bsoften = _compress(variance)
    hdu = fits.PrimaryHDU(c.astype(np.float32))
    hdu.header["BSOFTEN"], hdu.header["BOFFSET"] = bsoften, boffset
    path = tmp_path / "rings.v3.skycell.1725.051.stk.r.unconv.wt.fits"
    hdu.writeto(path)
    assert read_plain_fits(str(path)) is None
    stored = c.astype(np.float32).astype(np.float64)
    expected = boffset + 2.0 * bsoften * np.sinh(stored / ALPHA)
    np.testing.assert_allclose(io.read(path).data[..., 0], expected, rtol=1e-6)
    np.testing.assert_allclose(io.read_pixels(path)[..., 0], expected, rtol=1e-6)
    np.testing.assert_allclose(io.read(path).data[..., 0], variance, rtol=1e-4)


def test_products_written_like_it_drop_the_keywords_and_read_back_once(stack, tmp_path):
    path, _, _, boffset, bsoften = stack
    img = io.read(path)
    out = io.write(tmp_path / "copy.fits", img.data, like=img)
    header = fits.getheader(out)
    assert "BSOFTEN" not in header and "BOFFSET" not in header
    history = "".join(str(v) for v in header["HISTORY"])  # a long line goes on over cards
    assert "Pan-STARRS asinh pixels read linear" in history
    assert f"BOFFSET={boffset:.7g} BSOFTEN={bsoften:.7g}" in history
    again = io.read(out)
    np.testing.assert_array_equal(again.data, img.data)  # not decoded a second time
    assert "scaling" not in again.meta
    # a header given as like= (or header=) loses them too
    out2 = io.write(tmp_path / "copy2.fits", img.data, like=img.header, header=img.header)
    header2 = fits.getheader(out2)
    assert "BSOFTEN" not in header2 and "BOFFSET" not in header2
    np.testing.assert_array_equal(io.read(out2).data, img.data)


def test_one_keyword_alone_is_said_and_not_applied(tmp_path):
    path = tmp_path / "half.fits"
    hdu = fits.PrimaryHDU(np.arange(12, dtype=np.float32).reshape(3, 4))
    hdu.header["BSOFTEN"] = 3.0
    hdu.writeto(path)
    with pytest.warns(SciconvWarning, match=r"half\.fits: BSOFTEN without BOFFSET"):
        img = io.read(path)
    np.testing.assert_array_equal(img.data[..., 0], np.arange(12).reshape(3, 4))
    assert "scaling" not in img.meta


def test_a_decoded_value_beyond_float32_is_said_and_masked(tmp_path):
    path = tmp_path / "over.fits"
    hdu = fits.PrimaryHDU(np.array([[0.0, 1.0], [200.0, 2.0]], np.float32))
    hdu.header["BSOFTEN"], hdu.header["BOFFSET"] = 1.0, 0.0
    hdu.writeto(path)
    with pytest.warns(SciconvWarning, match=r"over\.fits: 1 pixel.*asinh decode"):
        img = io.read(path)
    assert np.isnan(img.data[1, 0, 0]) and int(img.mask.sum()) == 1
    assert img.data[0, 1, 0] == pytest.approx(2.0 * np.sinh(1.0 / ALPHA))


@pytest.fixture(scope="module")
def everything_model(tmp_path_factory):
    """A segmenter that calls every pixel foreground: one object covering the image."""
    path = tmp_path_factory.mktemp("ps1") / "all.keras"
    model = sc.models.segmenter((None, None, 1), num_classes=2, depth=1, filters=2)
    last = model.layers[-2] if model.layers[-1].weights == [] else model.layers[-1]
    kernel, bias = last.get_weights()
    last.set_weights([np.zeros_like(kernel), np.array([0.0, 9.0], bias.dtype)])
    model.save(path)
    return path


def test_predict_measures_linear_fluxes(capsys, tmp_path, stack, everything_model):
    path, _, expected, *_ = stack
    code, _, err = run_cli(
        capsys, "predict", everything_model, path, "--out", tmp_path / "out", "--quiet",
        "--background", "none",
    )  # fmt: skip
    assert code == 0, err
    stem = path.name.removesuffix(".fits")
    table = Table.read(tmp_path / "out" / f"{stem}_catalog.ecsv")
    assert len(table) == 1
    total = float(np.nansum(expected.astype(np.float32)))
    assert float(np.asarray(table["flux_sum"])[0]) == pytest.approx(total, rel=1e-3)
    labels = fits.getheader(tmp_path / "out" / f"{stem}_labels.fits")
    assert "BSOFTEN" not in labels and "BOFFSET" not in labels
    assert "Pan-STARRS asinh pixels read linear" in "".join(map(str, labels["HISTORY"]))


def test_a_ccddata_product_like_it_is_not_decoded_again(stack, tmp_path):
    path = stack[0]
    img = io.read(path)
    labels = (np.nan_to_num(img.data[..., 0]) > 500).astype(np.int32)
    ccd = sc.postprocess.to_ccddata(labels, like=img)
    assert "BSOFTEN" not in ccd.meta and "BOFFSET" not in ccd.meta
    ccd.write(tmp_path / "ccd.fits")
    back = io.read(tmp_path / "ccd.fits")
    assert back.meta.get("scaling") is None
    np.testing.assert_array_equal(np.nan_to_num(back.data[..., 0]), labels)  # BLANK: masked
