"""Per-pixel uncertainty wrappers (tta, mc_dropout, ensemble) and per-object scores."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from sciconv.augment import d4_inverse, d4_transform  # noqa: E402
from sciconv.errors import InferenceError, SciconvWarning  # noqa: E402
from sciconv.inference import (  # noqa: E402
    predict_instances,
    predict_tiled,
    predict_uncertainty,
    split_moments,
    uncertainty_model,
)
from sciconv.models import attach_metadata, get_metadata, segmenter  # noqa: E402
from sciconv.models.uncertainty_layers import (  # noqa: E402
    AlwaysDropout,
    D4Transform,
    EnsembleMoments,
    RepeatBatch,
)
from sciconv.postprocess import object_scores  # noqa: E402

RNG = np.random.default_rng(0)
TILED = dict(tile=16, overlap=8, blend="none", normalize=None, progress=False)


def _conv_model(kernel: int, channels: int = 1, seed: int = 0, name: str = "conv"):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 1))
    out = keras.layers.Conv2D(channels, kernel, padding="same", name=f"{name}_c")(inputs)
    return keras.Model(inputs, out, name=name)


def _manual_d4(model, x):
    preds = [
        d4_inverse(np.asarray(model(d4_transform(x, k, axes=(1, 2)))), k, axes=(1, 2))
        for k in range(8)
    ]
    return np.mean(preds, axis=0), np.std(preds, axis=0)


# ------------------------------------------------------------------------------------------- tta
def test_tta_spread_is_zero_for_a_d4_equivariant_model():
    model = _conv_model(1, channels=2)  # a 1x1 convolution commutes with flips and transposes
    image = RNG.normal(size=(24, 40)).astype("float32")  # non-square, several tiles
    mean, std = predict_uncertainty(model, image, **TILED)
    assert mean.shape == (24, 40, 2) and std.shape == (24, 40, 2)
    np.testing.assert_allclose(std, 0.0, atol=1e-5)
    np.testing.assert_allclose(mean, predict_tiled(model, image, **TILED), atol=1e-5)


def test_tta_mean_and_std_equal_the_manual_average_of_the_8_transforms():
    model = _conv_model(3)  # random 3x3 kernel: not D4-symmetric
    x = RNG.normal(size=(2, 8, 12, 1)).astype("float32")
    y = np.asarray(uncertainty_model(model, "tta")(x))
    mean, std = _manual_d4(model, x)
    assert y.shape == (2, 8, 12, 2)
    np.testing.assert_allclose(y[..., :1], mean, atol=1e-5)
    np.testing.assert_allclose(y[..., 1:], std, atol=1e-5)
    assert std.max() > 1e-2  # the asymmetric kernel gives a real spread


def test_tta_tiled_mean_equals_predict_tiled_d4_and_spread_is_positive():
    model = _conv_model(3, seed=1)
    image = RNG.normal(size=(40, 50)).astype("float32")
    mean, std = predict_uncertainty(model, image, **TILED)
    assert mean.shape == std.shape == (40, 50, 1) and mean.dtype == np.float32
    np.testing.assert_allclose(mean, predict_tiled(model, image, tta="d4", **TILED), atol=1e-5)
    whole_mean, whole_std = _manual_d4(model, image[None, ..., None])
    np.testing.assert_allclose(mean, whole_mean[0], atol=1e-5)
    np.testing.assert_allclose(std, whole_std[0], atol=1e-5)  # tiles reproduce the whole image
    assert float(std.mean()) > 1e-2


def test_d4_transform_layers_invert_and_match_numpy():
    x = RNG.normal(size=(1, 3, 5, 2)).astype("float32")
    seen = set()
    for k in range(8):
        y = np.asarray(D4Transform(k)(x))
        np.testing.assert_array_equal(np.asarray(D4Transform(k, inverse=True)(y)), x)
        seen.add(y.tobytes())
    assert len(seen) == 8  # the eight elements are distinct
    with pytest.raises(InferenceError, match="0 <= k < 8"):
        D4Transform(8)


# ----------------------------------------------------------------------------------- mc dropout
def _bn_model(dropout: str | None):
    keras.utils.set_random_seed(2)
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    bn = keras.layers.BatchNormalization()
    x = bn(x)
    if dropout == "dropout":
        x = keras.layers.Dropout(0.5)(x)
    elif dropout == "spatial":
        x = keras.layers.SpatialDropout2D(0.5)(x)
    out = keras.layers.Conv2D(1, 1)(x)
    # moving statistics far from a batch's own: training-mode BatchNorm would change the output
    bn.moving_mean.assign(np.full(4, 3.0, "float32"))
    bn.moving_variance.assign(np.full(4, 9.0, "float32"))
    return keras.Model(inputs, out, name=f"bn_{dropout}")


@pytest.mark.parametrize("kind", ["dropout", "spatial"])
def test_mc_dropout_gives_spread_with_dropout_and_keeps_batchnorm_in_inference(kind):
    model = _bn_model(kind)
    wrapper = uncertainty_model(model, "mc_dropout", samples=8)
    x = RNG.normal(size=(1, 16, 16, 1)).astype("float32")
    y = np.asarray(wrapper(x))
    assert y.shape == (1, 16, 16, 2)
    assert float(y[..., 1].mean()) > 1e-2
    np.testing.assert_array_equal(y, np.asarray(wrapper(x)))  # fixed-seed masks: reproducible
    # the mean of the 8 samples approaches the deterministic (inference-mode) output
    plain = np.asarray(model(x, training=False))
    assert np.abs(y[..., :1] - plain).mean() < np.abs(plain).mean()
    assert not any(isinstance(layer, AlwaysDropout) for layer in model.layers)  # model untouched


def test_uncertainty_maps_stay_float32_when_auto_would_choose_bfloat16(monkeypatch):
    """Under precision="auto" on a bfloat16 CPU the mc_dropout maps came out on bfloat16's
    steps (p = 255/256, spreads of exactly 0): the moments of the samples need float32."""
    model = _bn_model("dropout")
    image = RNG.normal(size=(16, 16)).astype("float32")
    kw = dict(method="mc_dropout", samples=4, **TILED)
    float32 = predict_uncertainty(model, image, precision="float32", **kw)
    monkeypatch.setenv("SCICONV_PRECISION", "bfloat16")  # what "auto" picks on such a CPU
    auto = predict_uncertainty(model, image, **kw)
    for a, b in zip(auto, float32):
        np.testing.assert_array_equal(a, b)
    bf16 = predict_uncertainty(model, image, precision="bfloat16", **kw)  # asked for: honoured
    assert not np.array_equal(bf16[1], float32[1])


def test_mc_dropout_without_dropout_is_refused():
    """Samples of a model without dropout are all equal: the error bar would be 0 everywhere
    (pretrained:nuclei through `--uncertainty mc_dropout` wrote all-zero maps)."""
    with pytest.raises(InferenceError, match=r"no Dropout.*spread 0 everywhere.*method='tta'"):
        uncertainty_model(_bn_model(None), "mc_dropout", samples=4)


def test_ensemble_of_models_with_one_name():
    """Two segmenter(...) models (or two runs' best.keras) share the name 'segmenter': Keras
    refused the wrapper ('The name "segmenter" is used 2 times'); members get a view each."""
    from sciconv.models import segmenter

    a = segmenter((None, None, 1), 2, depth=1, filters=4)
    b = segmenter((None, None, 1), 2, depth=1, filters=4)
    assert a.name == b.name
    wrapper = uncertainty_model(a, "ensemble", models=[b])
    x = RNG.normal(size=(1, 16, 16, 1)).astype("float32")
    y = np.asarray(wrapper(x))
    pa, pb = np.asarray(a(x)), np.asarray(b(x))
    np.testing.assert_allclose(y[..., :2], (pa + pb) / 2, atol=1e-6)
    np.testing.assert_allclose(y[..., 2:], np.abs(pa - pb) / 2, atol=1e-6)


def test_ensemble_mean_and_std_and_entropy():
    a, b = _conv_model(3, seed=3, name="a"), _conv_model(3, seed=4, name="b")
    x = RNG.normal(size=(1, 8, 8, 1)).astype("float32")
    pa, pb = np.asarray(a(x)), np.asarray(b(x))
    y = np.asarray(uncertainty_model(a, "ensemble", models=[b])(x))
    np.testing.assert_allclose(y[..., :1], (pa + pb) / 2, atol=1e-5)
    np.testing.assert_allclose(y[..., 1:], np.abs(pa - pb) / 2, atol=1e-5)
    mean, ent = predict_uncertainty(
        None, x[0], method="ensemble", models=[a, b], output="entropy", **TILED
    )
    np.testing.assert_allclose(mean, (pa + pb)[0] / 2, atol=1e-5)
    p = np.clip((pa + pb)[0] / 2, 1e-7, 1 - 1e-7)
    np.testing.assert_allclose(ent, -(p * np.log(p) + (1 - p) * np.log(1 - p)), atol=1e-4)


def test_entropy_of_a_softmax_over_channels():
    probs = [
        np.full((1, 2, 2, 2), [0.5, 0.5], "float32"),
        np.full((1, 2, 2, 2), [1.0, 0.0], "float32"),
    ]
    y = np.asarray(EnsembleMoments(output="entropy")(probs))
    p = np.array([0.75, 0.25])
    assert y.shape == (1, 2, 2, 3)
    np.testing.assert_allclose(y[0, 0, 0, 2], -(p * np.log(p)).sum(), atol=1e-5)


# ------------------------------------------------------------------- predict_tiled(uncertainty=)
def test_predict_tiled_uncertainty_equals_predict_uncertainty_for_every_method():
    image = RNG.normal(size=(24, 40)).astype("float32")
    model = _bn_model("dropout")
    for method in ("tta", "mc_dropout"):
        mean, std = predict_tiled(model, image, uncertainty=method, **TILED)
        want_mean, want_std = predict_uncertainty(model, image, method=method, **TILED)
        assert mean.shape == std.shape == (24, 40, 1) and mean.dtype == np.float32
        np.testing.assert_array_equal(mean, want_mean)
        np.testing.assert_array_equal(std, want_std)
        assert float(std.mean()) > 1e-3, method
    a, b = _conv_model(3, seed=3, name="a"), _conv_model(3, seed=4, name="b")
    mean, std = predict_tiled([a, b], image, uncertainty="ensemble", **TILED)
    pa, pb = predict_tiled(a, image, **TILED), predict_tiled(b, image, **TILED)
    np.testing.assert_allclose(mean, (pa + pb) / 2, atol=1e-5)
    np.testing.assert_allclose(std, np.abs(pa - pb) / 2, atol=1e-5)
    want_mean, want_std = predict_uncertainty(
        None, image, method="ensemble", models=[a, b], **TILED
    )
    np.testing.assert_array_equal(mean, want_mean)
    np.testing.assert_array_equal(std, want_std)


def test_auto_overlap_of_a_wrapper_is_the_one_measured_on_it():
    """The wrapper's overlap comes from its members: the value measuring the wrapper gives."""
    from sciconv.inference import resolve_settings
    from sciconv.inference._uncertainty import _auto_overlap

    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 1))
    tall = keras.Model(inputs, keras.layers.Conv2D(1, (9, 3), padding="same")(inputs), name="t")
    wide = _conv_model(5, seed=2, name="wide")
    for method, members in (("tta", [tall]), ("ensemble", [wide, tall])):
        wrapper = uncertainty_model(members[0], method, models=members[1:] or None)
        measured = resolve_settings(wrapper, (40, 40), overlap="auto", tile=16).overlap
        assert _auto_overlap(wrapper, members) == measured == 8, method
    image = RNG.normal(size=(40, 40)).astype("float32")
    kw = dict(tile=16, normalize=None, progress=False)
    mean, std = predict_uncertainty(tall, image, **kw)  # overlap="auto": tiles match the whole
    whole_mean, whole_std = _manual_d4(tall, image[None, ..., None])
    np.testing.assert_allclose(mean, whole_mean[0], atol=1e-5)
    np.testing.assert_allclose(std, whole_std[0], atol=1e-5)


def test_predict_tiled_uncertainty_errors_list_the_methods():
    model = _conv_model(1)
    image = np.zeros((8, 8), "float32")
    with pytest.raises(InferenceError, match=r"'tta', 'mc_dropout', 'ensemble'; got 'bayes'"):
        predict_tiled(model, image, uncertainty="bayes", **TILED)
    with pytest.raises(InferenceError, match="did you mean 'ensemble'"):
        predict_tiled(model, image, uncertainty="ensembl", **TILED)
    with pytest.raises(InferenceError, match="leave tta=None"):
        predict_tiled(model, image, uncertainty="tta", tta="d4", **TILED)
    with pytest.raises(InferenceError, match="out= is not available"):
        predict_tiled(model, image, uncertainty="tta", out=np.zeros((8, 8, 1), "float32"), **TILED)
    with pytest.raises(InferenceError, match="uncertainty='ensemble'"):
        predict_tiled([model, model], image, **TILED)
    with pytest.raises(InferenceError, match="a list of models is an ensemble"):
        predict_tiled([model, model], image, uncertainty="tta", **TILED)
    with pytest.raises(InferenceError, match="at least 2 models"):
        predict_tiled(model, image, uncertainty="ensemble", **TILED)
    with pytest.raises(InferenceError, match="does not take uncertainty="):
        predict_uncertainty(model, image, uncertainty="tta")


# ------------------------------------------------------------------------- metadata and saving
def test_wrapper_keeps_the_sciconv_metadata_and_splits_by_it():
    model = segmenter((None, None, 1), num_classes=2, depth=2, filters=2)
    model = attach_metadata(model, normalization={"method": "minmax"})
    wrapper = uncertainty_model(model, "tta")
    meta = get_metadata(wrapper)
    assert meta["divisor"] == 4 and meta["normalization"] == {"method": "minmax"}
    assert meta["uncertainty_method"] == "tta" and meta["mean_channels"] == 2
    mean, std = split_moments(np.asarray(wrapper(RNG.random((1, 12, 20, 1))))[0], wrapper)
    assert mean.shape == std.shape == (12, 20, 2)
    np.testing.assert_allclose(mean.sum(axis=-1), 1.0, atol=1e-5)  # softmax means sum to 1
    m2, s2 = split_moments(np.zeros((3, 3, 4)), wrapper)
    assert m2.shape == s2.shape == (3, 3, 2)


def test_wrapper_saves_and_loads(tmp_path):
    model = _bn_model("dropout")
    x = RNG.normal(size=(1, 8, 8, 1)).astype("float32")
    for method in ("tta", "mc_dropout"):
        wrapper = uncertainty_model(model, method, samples=3)
        path = tmp_path / f"{method}.keras"
        wrapper.save(path)
        loaded = keras.models.load_model(path)
        np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(wrapper(x)), atol=1e-5)


@pytest.mark.parametrize(
    "layer",
    [
        D4Transform(6, inverse=True),
        AlwaysDropout(0.2, spatial=True, seed=5),
        RepeatBatch(3),
        EnsembleMoments(4, output="entropy"),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_layer_config_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


# --------------------------------------------------------------------------------------- errors
def test_errors_name_the_problem():
    model = _conv_model(1)
    with pytest.raises(InferenceError, match="did you mean 'mc_dropout'"):
        uncertainty_model(model, "dropout")
    with pytest.raises(InferenceError, match="at least 2 models"):
        uncertainty_model(model, "ensemble")
    with pytest.raises(InferenceError, match="only for method='ensemble'"):
        uncertainty_model(model, "tta", models=[model])
    with pytest.raises(InferenceError, match="choose method='tta'"):
        predict_uncertainty(model, np.zeros((8, 8)), tta="d4")
    inputs = keras.Input((8, 12, 1))
    fixed = keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs))
    with pytest.raises(InferenceError, match="square inputs"):
        uncertainty_model(fixed, "tta")
    other = _conv_model(1, channels=3, name="three")
    with pytest.raises(InferenceError, match="share input and output shapes"):
        uncertainty_model(model, "ensemble", models=[other])


# ------------------------------------------------------------------------------------ per object
def test_object_scores_from_probability_and_std():
    labels = np.zeros((6, 8), np.int32)
    labels[1:3, 1:3] = 1
    labels[3:5, 4:8] = 4
    prob = np.zeros((6, 8, 2), np.float32)
    prob[..., 1] = 0.2
    prob[1:3, 1:3, 1] = 0.9
    prob[3:5, 4:8, 1] = [0.5, 0.7, 0.5, 0.7]
    std = np.zeros((6, 8, 2), np.float32)
    std[3:5, 4:8] = 0.25  # softmax: both channels have the same spread
    table = object_scores(labels, prob, std)
    assert table["label"].tolist() == [1, 4]
    np.testing.assert_allclose(table["score"], [0.9, 0.6], atol=1e-6)
    np.testing.assert_allclose(table["uncertainty"], [0.0, 0.25], atol=1e-6)
    no_std = object_scores(labels, prob[..., 1])
    assert no_std.colnames == ["label", "score"]  # no spread: no uncertainty column
    np.testing.assert_allclose(no_std["score"], [0.9, 0.6], atol=1e-6)


def test_predict_instances_with_uncertainty_gives_labels_from_the_mean_and_a_spread():
    """The labels come from the D4 mean; an asymmetric model has spread, a 1x1 one has none."""
    image = np.zeros((32, 32), "float32")
    image[4:12, 4:12] = 5
    image[18:28, 16:30] = 5
    inputs = keras.Input((None, None, 1))
    logits = keras.layers.Conv2D(
        2, 1, kernel_initializer=keras.initializers.Constant([[[[-1.0, 1.0]]]])
    )(inputs)
    symmetric = keras.Model(inputs, keras.layers.Softmax()(logits))
    kw = dict(normalize=None, progress=False, tile=16, overlap=8)
    plain = predict_instances(symmetric, image, **kw)
    labels, prob, std = predict_instances(symmetric, image, uncertainty="tta", **kw)
    np.testing.assert_array_equal(labels, plain)
    assert prob.shape == std.shape == (32, 32, 2)
    assert float(np.abs(std).max()) < 1e-5
    scores = object_scores(labels, prob, std)
    assert list(scores["label"]) == [1, 2]
    assert np.all(np.asarray(scores["score"]) > 0.5)
    skewed = _conv_model(3, channels=2, seed=3, name="skewed")
    with pytest.warns(SciconvWarning, match="not probabilities"):  # a bare conv: scores
        _, _, std2 = predict_instances(skewed, image, uncertainty="tta", threshold=0.0, **kw)
    assert float(np.nanmax(std2)) > 1e-3
    with pytest.raises(InferenceError, match="tta"):
        predict_instances(symmetric, image, uncertainty="tta", tta="d4", **kw)
    with pytest.raises(InferenceError, match="uncertainty"):
        predict_instances(symmetric, image, uncertainty="bayes", **kw)
