"""More wrong inputs to the public API: clear sciconv errors or warnings, no bare Keras/numpy
traceback and no silent wrong result (QA report qa35/api, the remaining findings)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import sciconv as sc  # noqa: E402
from sciconv.errors import ConfigError, DatasetError, ModelError, SciconvWarning  # noqa: E402

SIZE = 16
CHANNELS_FIRST = r"looks channels-first \(C, H, W\) = \(3, 64, 48\).*np\.moveaxis\(x, 0, -1\)"


def _clf(k: int = 2):
    return sc.models.classifier((SIZE, SIZE, 1), k, filters=(2,), dense=())


def _x(n: int = 4) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, SIZE, SIZE, 1)).astype(np.float32)


# --------------------------------------------------------------------------- calibrate


@pytest.mark.parametrize("bad", ["1", "abc", object(), [1.0], True])
def test_calibrate_refuses_a_temperature_that_is_not_a_number(bad):
    with pytest.raises(ConfigError, match=r"temperature must be a finite number > 0; got"):
        sc.calibration.calibrate(_clf(), temperature=bad)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, 0, np.float32(np.nan)])
def test_calibrate_refuses_a_non_finite_or_non_positive_temperature(bad):
    with pytest.raises(ConfigError, match=r"temperature must be a finite number > 0; got"):
        sc.calibration.calibrate(_clf(), temperature=bad)


@pytest.mark.parametrize("good", [2, 1.5, np.float32(0.5), np.int64(3)])
def test_calibrate_takes_any_real_positive_temperature(good):
    model = sc.calibration.calibrate(_clf(), temperature=good)
    assert sc.models.get_metadata(model)["temperature"] == float(good)


# --------------------------------------------------------------------------- fit


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "32", None])
def test_fit_refuses_a_bad_batch_size(bad):
    with pytest.raises(ConfigError, match=r"batch_size must be an int >= 1; got"):
        sc.training.fit(_clf(), (_x(), np.array([0, 1, 0, 1])), epochs=1, batch_size=bad)


@pytest.mark.parametrize("bad", ["loud", 3, -1, True, 1.0, None])
def test_fit_refuses_a_bad_verbose(bad):
    with pytest.raises(ConfigError, match=r"verbose must be 'auto', 0, 1 or 2 .*; got"):
        sc.training.fit(_clf(), (_x(), np.array([0, 1, 0, 1])), epochs=1, verbose=bad)


def test_fit_value_checks_take_batch_size_and_verbose():
    from sciconv._fit_args import validate_fit_values

    validate_fit_values(batch_size=np.int64(8), verbose=2)
    validate_fit_values(verbose="auto")
    with pytest.raises(ConfigError, match="batch_size"):
        validate_fit_values(batch_size=0)
    with pytest.raises(ConfigError, match="verbose"):
        validate_fit_values(verbose="loud")


# --------------------------------------------------------------------------- model names


@pytest.mark.parametrize(
    ("build", "kw"),
    [
        (sc.models.classifier, {"input_shape": (16, 16, 1), "num_classes": 2, "filters": (2,)}),
        (sc.models.regressor, {"input_shape": (16, 16, 1), "filters": (2,)}),
        (sc.models.segmenter, {"input_shape": (16, 16, 1), "depth": 1, "filters": 2}),
    ],
)
@pytest.mark.parametrize("bad", ["a/b", "", 123, None])
def test_builders_refuse_a_bad_name(build, kw, bad):
    with pytest.raises(ModelError, match=r"name must be a non-empty str without '/'; got"):
        build(**kw, name=bad)


def test_builders_keep_names_keras_accepts():
    assert sc.models.classifier((16, 16, 1), 2, filters=(2,), name="my net:v2").name == "my net:v2"


# --------------------------------------------------------------------------- from_folder


def _class_folder(root, names):
    for c, name in enumerate(names):
        (root / name).mkdir(parents=True)
        for i in range(2):
            sc.io.write(root / name / f"{i}.fits", np.full((8, 8), c + i, np.float32))
    return root


def test_from_folder_refuses_a_single_class(tmp_path):
    root = _class_folder(tmp_path / "data", ["spiral"])
    with pytest.raises(
        DatasetError, match=r"data: only one class sub-folder \('spiral'\).*at least two"
    ):
        sc.datasets.from_folder(root, image_size=8)


def test_from_folder_takes_two_classes(tmp_path):
    ds = sc.datasets.from_folder(_class_folder(tmp_path, ["a", "b"]), image_size=8, seed=0)
    assert ds.class_names == ["a", "b"]


# --------------------------------------------------------------------------- channels-first


def _chw():
    return np.random.default_rng(0).random((3, 64, 48)).astype(np.float32)


def test_channels_first_rule():
    from sciconv.io._common import warn_if_channels_first

    with pytest.warns(SciconvWarning, match=CHANNELS_FIRST):
        warn_if_channels_first(_chw(), name="x")
    with pytest.warns(SciconvWarning, match=r"\(C, H, W\) = \(1, 32, 32\)"):
        warn_if_channels_first(np.zeros((5, 1, 32, 32)), name="x")  # a batch: axis 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for shape in [
            (64, 48, 3),  # (H, W, C)
            (64, 48, 1),
            (4, 4, 4),
            (3, 64, 4),  # small last axis: channels last
            (3, 8, 48),
            (3, 64, 16),
            (64, 48),
            (5, 64, 48, 3),  # a batch, channels last
            (5, 4, 4, 4),
            (6, 64, 48),  # first axis > 4
        ]:
            warn_if_channels_first(np.zeros(shape), name="x")


def test_normalize_warns_on_channels_first():
    with pytest.warns(SciconvWarning, match=CHANNELS_FIRST):
        sc.preprocess.normalize(_chw())
    with pytest.warns(SciconvWarning, match=r"\(C, H, W\) = \(3, 64, 48\)"):
        sc.preprocess.normalize(np.stack([_chw()] * 2))


def test_from_arrays_warns_once_on_channels_first():
    images = [np.random.default_rng(i).normal(size=(3, 32, 32)) for i in range(6)]
    with pytest.warns(SciconvWarning, match=r"images.*\(C, H, W\) = \(3, 32, 32\)") as seen:
        sc.datasets.from_arrays(images, [0, 1] * 3, shuffle=False)
    assert sum("channels-first" in str(w.message) for w in seen) == 1
    with pytest.warns(SciconvWarning, match=r"\(C, H, W\) = \(3, 32, 32\)"):
        sc.datasets.from_arrays(np.stack(images), [0, 1] * 3, shuffle=False)


def test_write_products_refuses_a_channels_first_prob(tmp_path):
    # it warned, then wrote 48 planes of 3 x 64 pixels; io.write refuses such arrays too
    from sciconv.errors import InvalidImageError

    with pytest.raises(InvalidImageError, match=r"prob of shape \(3, 64, 48\).*moveaxis"):
        sc.postprocess.write_products(tmp_path, prob=_chw(), labels=np.zeros((64, 48), int))
    assert not list(tmp_path.iterdir())


def test_channels_last_images_pass_without_a_warning(tmp_path):
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sc.preprocess.normalize(rng.random((64, 48, 3)))
        sc.preprocess.normalize(rng.random((2, 64, 48, 4)))
        sc.preprocess.normalize(rng.random((3, 64, 4)))
        sc.datasets.from_arrays([rng.normal(size=(32, 32, 3)) for _ in range(4)], [0, 1] * 2)
        sc.postprocess.write_products(tmp_path, prob=rng.random((64, 48, 3)).astype(np.float32))


def test_a_file_name_where_labels_are_expected_says_which_reader():
    """measure("labels.tif") and average_precision("a.tif", "b.tif") said "got shape ()"."""
    from sciconv.errors import ConfigError

    with pytest.raises(ConfigError, match=r"labels must be pixels.*'labels\.tif'.*read_labels"):
        sc.postprocess.measure("labels.tif")
    with pytest.raises(ConfigError, match=r"true_labels must be pixels.*read_labels"):
        sc.metrics.average_precision("a.tif", "b.tif")


def test_an_option_that_differs_in_case_alone_gets_a_suggestion():
    from sciconv.errors import ConfigError

    with pytest.raises(ConfigError, match=r"got 'PERCENTILE' \(did you mean 'percentile'\?\)"):
        sc.preprocess.normalize(np.ones((4, 4), np.float32), method="PERCENTILE")


def test_instances_of_logits_are_warned_about():
    """postprocess.instances(logits) found 0 objects without a word (threshold 0.5 on scores
    from -6 to 6)."""
    logits = np.full((32, 32, 2), [3.0, -3.0], np.float32)
    logits[8:20, 8:20] = [-6.0, 6.0]
    with pytest.warns(SciconvWarning, match=r"values from -6 to 6, not probabilities.*softmax"):
        sc.postprocess.instances(logits)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sc.postprocess.instances(probs).max() == 1


def test_show_names_the_fix_for_a_channels_first_image():
    # it suggested image[..., 0], a (3, H) sliver of a (3, H, W) image (QA inputs)
    from sciconv.errors import InvalidImageError

    with pytest.raises(InvalidImageError, match=r"channels-first.*np\.moveaxis\(image, 0, -1\)"):
        sc.viz.show(np.zeros((3, 40, 50)))


def test_complex_pixels_are_refused_by_measure_and_show():
    # numpy dropped the imaginary part with a ComplexWarning only (QA inputs)
    from sciconv.errors import InvalidImageError

    labels = np.zeros((8, 8), np.int32)
    labels[2:5, 2:5] = 1
    wave = np.ones((8, 8)) * (1 + 2j)
    with pytest.raises(ConfigError, match=r"intensity must hold real numbers; got complex"):
        sc.postprocess.measure(labels, intensity=wave)
    with pytest.raises(InvalidImageError, match=r"complex pixels: take np\.abs"):
        sc.viz.show(wave)
