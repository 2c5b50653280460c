"""A mask that flags the sources themselves is said; an ordinary DQ plane is not.

QA 55: a ZTF ``_mskimg`` (bit 1, value 2 = "pixel of a source SExtractor detected") given as
``read(mask=...)`` / ``--mask`` with the default ``ignore_flags=0`` made every star's core NaN:
aperture fluxes 1 % of the truth, and ``sciconv predict`` found 0 objects of 18, exit 0, no
warning. IRSA's recommended bad-pixel bits (6141) leave bit 1 out.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits

from sciconv import io
from sciconv.errors import SciconvWarning
from sciconv.io._image import LazyImage
from sciconv.io._masks import read_mask_source
from tests._helpers import run_cli

SKY, RMS = 150.0, 12.0


def _stars(shape=(200, 200), n=18, seed=71):
    """A ZTF-like field (not sky-subtracted) and its noise-free stars."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    model = np.zeros(shape)
    ys = np.linspace(15, shape[0] - 15, 6)
    xs = np.linspace(15, shape[1] - 15, 3)
    for y, x in [(y, x) for y in ys for x in xs][:n]:
        flux = np.exp(rng.uniform(np.log(5000), np.log(80000)))
        model += flux / (2 * np.pi * 1.6**2) * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 5.12)
    return (model + SKY + rng.normal(0, RMS, shape)).astype(np.float32), model


@pytest.fixture
def ztf(tmp_path):
    """``..._sciimg.fits`` and ``..._mskimg.fits``: bit 1 on every source pixel, bit 9 on a
    dead column, as the ZTF Science Data System writes them."""
    image, model = _stars()
    stem = tmp_path / "ztf_20200101123456_000567_zr_c04_o_q2"
    fits.PrimaryHDU(image).writeto(f"{stem}_sciimg.fits")
    mask = np.zeros(image.shape, np.int16)
    mask[model > 3 * RMS] |= 2
    mask[:, 60] |= 2**9
    fits.PrimaryHDU(mask).writeto(f"{stem}_mskimg.fits")
    return tmp_path / f"{stem.name}_sciimg.fits", tmp_path / f"{stem.name}_mskimg.fits", mask


def test_a_ztf_source_mask_is_said_naming_the_file_and_bits(ztf):
    sci, msk, mask = ztf
    with pytest.warns(SciconvWarning) as said:
        img = io.read(sci, mask=msk)
    text = str(said[0].message)
    assert len(said) == 1 and text.startswith(f"{msk}: the mask flags the sources themselves")
    assert "2 (bit 1) on 100%" in text
    assert "ignore_flags=2 (--ignore-flags 2)" in text and "ignore_flags='~6141'" in text
    assert int(img.mask.sum()) == int((mask != 0).sum())  # the mask is still applied as asked
    # read with IRSA's bits, or with bit 1 good: only the dead column, nothing said
    for flags in ("~6141", 2):
        with warnings.catch_warnings():
            warnings.simplefilter("error", SciconvWarning)
            good = io.read(sci, mask=msk, ignore_flags=flags)
        np.testing.assert_array_equal(good.mask[..., 0], (mask & 2**9) != 0)


def test_an_ordinary_dq_plane_of_cosmic_rays_and_bad_columns_is_not_said(tmp_path):
    """Cosmic rays (bright, flagged, grown by a pixel), hot pixels and a hot column are the
    brightest pixels of a sparse field; they are not sources."""
    from sciconv.io._mask_sources import sources_masked

    rng = np.random.default_rng(4)
    image, _ = _stars(shape=(300, 300), n=18, seed=5)
    image = image.astype(np.float64)
    dq = np.zeros(image.shape, np.int16)
    for _ in range(600):  # cosmic-ray tracks of 1-5 pixels: 2 % of the pixels, 7 % grown
        y, x = rng.integers(2, 298, 2)
        dy, dx = rng.integers(-1, 2, 2)
        for k in range(int(rng.integers(1, 6))):
            yy, xx = min(max(y + k * dy, 0), 299), min(max(x + k * dx, 0), 299)
            image[yy, xx] += rng.uniform(100, 5000)
            dq[yy, xx] |= 4096
    grown = dq.copy()
    for axis in (0, 1):
        for shift in (1, -1):
            grown |= np.roll(dq, shift, axis=axis)
    hot = rng.random(image.shape) < 0.01
    image[hot] += rng.uniform(50, 2000, hot.sum())
    grown[hot] |= 16
    image[:, 77] += 500
    grown[:, 77] |= 128
    path = tmp_path / "exposure_sci.fits"
    fits.PrimaryHDU(image.astype(np.float32)).writeto(path)
    fits.PrimaryHDU(grown).writeto(tmp_path / "exposure_dq.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciconvWarning)
        img = io.read(path, mask=tmp_path / "exposure_dq.fits")
    assert 0.05 < img.mask.mean() < 0.5
    found = sources_masked(image, grown != 0, grown)
    assert found.pixels >= 200 and found.share < 0.3 and not found.blanked


def test_the_bundled_hst_cutout_dq_is_not_said(data_dir):
    """Its DQ flags the saturated cores of a few stars (bits 256 + 2048): under a fifth of the
    source pixels."""
    from sciconv.io._mask_sources import sources_masked

    hst = data_dir / "real" / "hst"
    sci = fits.getdata(hst / "j8bt06nyq_sci_cutout.fits").astype(np.float32)
    dq = fits.getdata(hst / "j8bt06nyq_dq_cutout.fits").astype(np.int64)
    found = sources_masked(sci, dq != 0, dq)
    assert found.pixels > 1000 and 0.1 < found.share < 0.3 and not found.blanked
    assert {v for v, _ in found.bits[:2]} == {256, 2048}
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciconvWarning)
        io.read(hst / "j8bt06nyq_sci_cutout.fits", mask=hst / "j8bt06nyq_dq_cutout.fits")


def test_a_segmentation_array_and_a_maskbits_file(tmp_path):
    image, model = _stars()
    fits.PrimaryHDU(image).writeto(tmp_path / "sky.fits")
    with pytest.warns(SciconvWarning, match="a True/False mask.*leave it out") as said:
        io.read(tmp_path / "sky.fits", mask=model > 3 * RMS)
    assert str(said[0].message).startswith("mask array: the mask flags the sources")
    # Legacy Surveys maskbits: MEDIUM (2048) halos around the stars, SATUR_R (8) in the cores
    bits = np.where(model > RMS, 2048, 0) | np.where(model > 3000, 8, 0)
    name = tmp_path / "legacysurvey-1501p022-maskbits.fits"
    fits.PrimaryHDU(bits.astype(np.int16)).writeto(name)
    with pytest.warns(SciconvWarning) as said:
        io.read(tmp_path / "sky.fits", mask=name)
    text = str(said[0].message)
    assert text.startswith(f"{name}:") and "2048 (bit 11) on 100%" in text
    assert "ignore_flags=2048 (--ignore-flags 2048)" in text and "'~49404'" in text
    assert "leave the mask out" not in text  # it holds SATUR_R too: a real defect


def test_read_mask_source_says_it_given_the_image(ztf):
    sci, msk, mask = ztf
    image = io.read(sci)
    args = dict(
        shape=image.shape, section=None, path=sci, read_other=None,
        read_fits_flags=lambda p, section: fits.getdata(p),
    )  # fmt: skip
    with pytest.warns(SciconvWarning, match="ignore_flags=514 \\(--ignore-flags 514\\)"):
        bad, source = read_mask_source(msk, ignore_flags=512, image=image, **args)
    assert source == str(msk) and int(bad.sum()) == int(((mask & ~512) != 0).sum())
    with warnings.catch_warnings():  # no image: nothing to compare, nothing said
        warnings.simplefilter("error", SciconvWarning)
        read_mask_source(msk, ignore_flags=0, **args)


def test_a_large_image_is_looked_at_in_windows():
    """A 3000 x 5000 lazy image: 16 windows of 512 x 512 are read, not the whole image."""
    from sciconv.io._mask_sources import sources_masked, warn_if_sources_masked

    image, model = _stars(shape=(128, 128), n=4)
    tiled = np.tile(image, (24, 40))  # stars everywhere
    flags = np.tile(np.where(model > 3 * RMS, 2, 0), (24, 40)).astype(np.int16)
    read = []

    def reader(ys, xs):
        read.append((ys.stop - ys.start) * (xs.stop - xs.start))
        return tiled[ys, xs, None].astype(np.float32)

    lazy = LazyImage(reader, (tiled.shape[0], tiled.shape[1], 1))
    with pytest.warns(SciconvWarning, match="^tiles_mskimg.fits: the mask flags the sources"):
        found = warn_if_sources_masked(lazy, flags != 0, flags, source="tiles_mskimg.fits")
    assert found.blanked and found.share == 1.0 and found.bits == ((2, 1.0),)
    assert sum(read) == 16 * 512 * 512 < tiled.size / 3
    # the same pixels in memory: the same windows, the same answer
    assert sources_masked(tiled[..., None], flags != 0, flags) == found


@pytest.fixture(scope="module")
def everything_model(tmp_path_factory):
    """A segmenter that calls every pixel foreground."""
    import sciconv as sc

    path = tmp_path_factory.mktemp("flag_masks_cli") / "all.keras"
    model = sc.models.segmenter((None, None, 1), num_classes=2, depth=1, filters=2)
    last = model.layers[-2] if model.layers[-1].weights == [] else model.layers[-1]
    kernel, bias = last.get_weights()
    last.set_weights([np.zeros_like(kernel), np.array([0.0, 9.0], bias.dtype)])
    model.save(path)
    return path


def test_cli_predict_with_a_ztf_mask_says_it(capsys, tmp_path, ztf, everything_model):
    sci, msk, _ = ztf
    with pytest.warns(SciconvWarning, match="--ignore-flags 2"):
        code, _, err = run_cli(
            capsys, "predict", everything_model, sci, "--mask", msk, "--out", tmp_path / "o",
            "--quiet", "--background", "none",
        )  # fmt: skip
    assert code == 0, err
