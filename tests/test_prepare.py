"""sciconv.datasets.prepare (FilePrep) and the lazy, TensorFlow-free parts of sciconv.datasets."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from sciconv import io, preprocess
from sciconv.datasets.prepare import SIZE_POLICIES, FilePrep
from sciconv.errors import ConfigError, InferenceError


def test_size_policies():
    assert SIZE_POLICIES == ("auto", "crop", "pad", "resize")


def test_auto_size_policy_resamples_large_cutouts_and_crops_near_sized_ones(tmp_path):
    """from_folder(image_size=64) on 256 px galaxy cutouts cut out their central 6 % (random
    crops anywhere in the frame when augmenting: the galaxy often outside): held-out ROC AUC
    0.75-0.80 against 0.998 resampled. "auto" (the default) resamples an image over 1.5x the
    size, and still crops one just larger (the margin around a centred object)."""
    import tifffile

    from sciconv import datasets

    yy, xx = np.mgrid[:256, :256]
    galaxy = np.exp(-((yy - 128.0) ** 2 + (xx - 128.0) ** 2) / (2 * 40.0**2))  # sigma 40 px
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for k in range(4):
            tifffile.imwrite(tmp_path / name / f"{k}.tif", (galaxy * (100 + k)).astype(np.float32))
    train, _ = datasets.from_folder(
        tmp_path,
        image_size=64,
        augment=True,
        validation_split=0.5,
        batch_size=4,
        seed=0,
        normalize=None,
    )
    x = next(iter(train))[0].numpy()
    assert train.size_policy == "auto"
    # the whole galaxy, shrunk 4x (sigma 10 px): centred, its wings inside the frame
    peak = np.unravel_index(np.argmax(x[0, ..., 0]), (64, 64))
    assert abs(peak[0] - 31.5) <= 1.5 and abs(peak[1] - 31.5) <= 1.5, peak
    assert x[0, 0, 0, 0] < 0.05 * x[0, ..., 0].max()
    near = FilePrep.create(image_size=64, size_policy="auto", normalize=None)
    assert near.fit(np.ones((80, 90, 1), np.float32)).shape == (64, 64, 1)
    assert near.resolved((80, 90, 1)) == "crop" and near.resolved((97, 64, 1)) == "resize"


def test_create_defaults_and_recorded_spec():
    prep = FilePrep.create()
    assert prep.size is None and prep.policy == "crop"
    assert prep.normalization.to_dict() == preprocess.DEFAULT_NORMALIZATION
    assert FilePrep.create(image_size=5).size == (5, 5)
    assert FilePrep.create(normalize=None).normalization is None
    spec = FilePrep.create(normalize="model", recorded={"method": "zscale"}).normalization
    assert spec.to_dict() == {"method": "zscale"}
    assert FilePrep.create(normalize="model").normalization.to_dict() == (
        preprocess.DEFAULT_NORMALIZATION
    )
    with pytest.raises(AttributeError):
        prep.size = (3, 3)  # frozen


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_size": 0}, r"image_size must hold positive ints; got \(0, 0\)"),
        ({"image_size": (4, 4, 4)}, r"image_size must be an int or a sequence of 2 ints"),
        ({"image_size": (4.5, 4)}, r"image_size must hold ints"),
        ({"size_policy": "crap"}, r"size_policy must be one of .*got 'crap' \(did you mean 'crop'"),
        ({"normalize": 42}, r"normalize must be .*got 42"),
        ({"normalize": "percentil"}, r"normalize must be one of .*did you mean 'percentile'"),
        ({"normalize": {"method": "minmax", "lo": 1}}, r"normalization spec key .*'lo'"),
    ],
)
@pytest.mark.parametrize("error", [ConfigError, InferenceError])
def test_create_errors_name_the_argument(kwargs, match, error):
    with pytest.raises(error, match=match):
        FilePrep.create(error=error, **kwargs)


def test_read_is_read_pixels_then_normalize(tmp_path):
    data = np.random.default_rng(0).normal(100, 5, (9, 11)).astype(np.float32)
    data[2, 3] = np.nan
    fits.writeto(tmp_path / "a.fits", data)
    prep = FilePrep.create()
    got = prep.read(tmp_path / "a.fits")
    expect = preprocess.normalize_spec(io.read_pixels(tmp_path / "a.fits"), prep.normalization)
    expect = preprocess.fill_nan(expect, method=preprocess.BAD_PIXEL_FILL)
    assert got.dtype == np.float32 and got.shape == (9, 11, 1)
    np.testing.assert_array_equal(got, expect)
    assert np.isfinite(got).all()


def test_normalize_fills_non_finite_as_prediction_does():
    """NaN and +/-inf were zeros in training while prediction mirrors the good pixels: both
    fill with preprocess.BAD_PIXEL_FILL now."""
    x = np.array([[[1.0], [2.0], [np.nan], [np.inf], [5.0]]])
    out = FilePrep.create(normalize=None).normalize(x)
    assert out.dtype == np.float32
    assert out[..., 0].tolist() == [[1.0, 2.0, 1.0, 5.0, 5.0]]


@pytest.mark.parametrize(
    ("policy", "shape", "expect"),
    [
        ("crop", (10, 7, 2), (6, 6, 2)),
        ("pad", (3, 5, 1), (6, 6, 1)),
        ("resize", (12, 3, 1), (6, 6, 1)),
    ],
)
def test_fit_policies(policy, shape, expect):
    prep = FilePrep.create(image_size=6, size_policy=policy, normalize=None)
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    out = prep.fit(x)
    assert out.shape == expect and out.dtype == np.float32
    if policy == "crop":  # the centre window
        np.testing.assert_array_equal(out, x[2:8, 0:6])
    if policy == "pad":  # centred, zeros around
        np.testing.assert_array_equal(out[1:4, 0:5], x)
        assert out.sum() == x.sum()


def test_fit_keeps_larger_and_random_fit_is_seeded():
    prep = FilePrep.create(image_size=4, normalize=None)
    x = np.arange(80.0, dtype=np.float32).reshape(8, 10, 1)
    assert prep.fit(x, keep_larger=True).shape == (8, 10, 1)
    assert prep.fit(np.ones((2, 9, 1)), keep_larger=True).shape == (4, 9, 1)
    windows = {prep.random_fit(x, s).tobytes() for s in range(20)}
    assert len(windows) > 5
    np.testing.assert_array_equal(prep.random_fit(x, 7), prep.random_fit(x, 7))
    w = prep.random_fit(x, 7)[..., 0]
    top, left = divmod(int(w[0, 0]), 10)
    np.testing.assert_array_equal(w, x[top : top + 4, left : left + 4, 0])


def test_numpy_modules_do_not_import_tensorflow():
    code = (
        "import sys, sciconv.datasets.patches, sciconv.datasets.prepare\n"
        "import sciconv.datasets as d\n"
        "d.FilePrep, d.sample_patches, d.boundary_target, d.CACHE_BUDGET\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lazy_access_to_the_builders():
    import sciconv as sc
    from sciconv import datasets
    from sciconv.datasets import from_pairs

    assert sc.datasets.from_pairs is from_pairs
    assert callable(sc.datasets.from_folder) and callable(datasets.class_weights)
    assert datasets.FilePrep is FilePrep
    assert set(datasets.__all__) <= set(dir(datasets))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        datasets.nope  # noqa: B018
