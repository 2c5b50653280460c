"""The tta uncertainty wrapper runs the 8 D4 transforms as one batch (D4Moments).

Its output equals the per-transform wrapper it replaced (8 model calls, kept here as the
reference), the base model is traced once per square tile shape instead of 8 times, and wrappers
saved in either form load.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import sciconv as sc  # noqa: E402
from sciconv.errors import InferenceError  # noqa: E402
from sciconv.inference import uncertainty_model  # noqa: E402
from sciconv.models.layers import SciconvMetadata  # noqa: E402
from sciconv.models.uncertainty_layers import (  # noqa: E402
    D4Moments,
    D4Transform,
    EnsembleMoments,
)

RNG = np.random.default_rng(0)
TRACES = {"n": 0}


@keras.saving.register_keras_serializable(package="sciconv_tests")
class CountTraces(keras.layers.Layer):
    """Identity that counts how often its ``call`` runs (once per trace of the graph)."""

    def call(self, inputs):
        TRACES["n"] += 1
        return inputs


def _per_transform_wrapper(base, output="std"):
    """The tta wrapper as it was built before D4Moments: one model call per D4 element."""
    meta = dict(sc.models.get_metadata(base).items())  # a plain dict (Keras tracks dicts)
    meta.update(uncertainty_method="tta", uncertainty_output=output, uncertainty_samples=8)
    meta["mean_channels"] = int(base.outputs[0].shape[-1])
    inputs = keras.Input(shape=base.inputs[0].shape[1:], name=f"{base.name}_tta_input")
    x = SciconvMetadata(meta, name=f"{base.name}_tta_metadata")(inputs)
    preds = [
        D4Transform(k, inverse=True, name=f"{base.name}_tta_{k}_undo")(
            base(D4Transform(k, name=f"{base.name}_tta_{k}")(x))
        )
        for k in range(8)
    ]
    moments = EnsembleMoments(output=output, name=f"{base.name}_tta_moments")(preds)
    return keras.Model(inputs, moments, name=f"{base.name}_tta")


@pytest.fixture(scope="module")
def base():
    """A segmenter with random 3x3 kernels and batch norm: not D4-symmetric."""
    keras.utils.set_random_seed(3)
    return sc.models.segmenter((None, None, 1), num_classes=3, depth=2, filters=4)


@pytest.fixture(scope="module")
def counted():
    """A small per-pixel model that counts its traces."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((None, None, 1))
    x = CountTraces(name="count")(inputs)
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu")(x)
    return keras.Model(inputs, keras.layers.Conv2D(2, (3, 5), padding="same")(x), name="skew")


@pytest.mark.parametrize(
    ("shape", "output"),
    [((2, 16, 16, 1), "std"), ((3, 12, 20, 1), "entropy")],
    ids=["square-std", "wide-entropy"],
)
def test_batched_tta_equals_the_per_transform_wrapper(base, shape, output):
    x = RNG.normal(size=shape).astype("float32")
    batched = uncertainty_model(base, "tta", output=output)
    want = _per_transform_wrapper(base, output).predict_on_batch(x)
    got = batched.predict_on_batch(x)
    assert got.shape == want.shape == (*shape[:3], 3 + (3 if output == "std" else 1))
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert float(want[..., 3:].max()) > 1e-2  # the model is not symmetric: a real spread
    np.testing.assert_allclose(np.asarray(batched(x)), want, atol=2e-5)  # eager call too


def test_square_tiles_trace_the_model_once(counted):
    x = RNG.normal(size=(2, 16, 16, 1)).astype("float32")
    wide = RNG.normal(size=(2, 16, 24, 1)).astype("float32")
    for build, square, non_square in (
        (lambda m: uncertainty_model(m, "tta"), 1, 2),
        (_per_transform_wrapper, 8, 8),
    ):
        wrapper = build(counted)
        traces = []
        for batch in (x, x, wide):
            before = TRACES["n"]
            wrapper.predict_on_batch(batch)
            traces.append(TRACES["n"] - before)
        assert traces == [square, 0, non_square], build


def test_wrappers_saved_in_either_form_load(base, tmp_path):
    x = RNG.normal(size=(1, 12, 20, 1)).astype("float32")
    batched = uncertainty_model(base, "tta")
    want = batched.predict_on_batch(x)
    for name, wrapper in (("batched", batched), ("per_transform", _per_transform_wrapper(base))):
        path = tmp_path / f"{name}.keras"
        wrapper.save(path)
        loaded = sc.models.load(path)
        np.testing.assert_allclose(loaded.predict_on_batch(x), want, atol=2e-5)
        assert sc.models.get_metadata(loaded)["uncertainty_method"] == "tta"
    layer = sc.models.load(tmp_path / "batched.keras").layers[-1]
    assert isinstance(layer, D4Moments) and layer.model is not base  # its own copy, loaded


def test_d4_moments_config_round_trip_and_errors(counted):
    layer = D4Moments(counted, output="entropy", name="moments")
    clone = D4Moments.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone.model.set_weights(counted.get_weights())
    x = RNG.normal(size=(1, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(clone(x)), np.asarray(layer(x)), atol=1e-6)
    with pytest.raises(InferenceError, match="did you mean 'entropy'"):
        D4Moments(counted, output="entropie")
    with pytest.raises(InferenceError, match="must be a Keras model; got str"):
        D4Moments("skew.keras")


class _Subclassed(keras.Model):
    """A model without symbolic outputs: D4Moments runs it on one batch of 8 N."""

    def __init__(self):
        super().__init__(name="subclassed")
        self.conv = keras.layers.Conv2D(2, (3, 5), padding="same")

    def call(self, inputs):
        return self.conv(inputs)


def test_a_model_without_symbolic_outputs_runs_as_one_batch():
    from sciconv.augment import d4_inverse, d4_transform

    keras.utils.set_random_seed(2)
    model = _Subclassed()
    x = RNG.normal(size=(2, 8, 12, 1)).astype("float32")
    preds = [
        d4_inverse(np.asarray(model(d4_transform(x, k, axes=(1, 2)))), k, axes=(1, 2))
        for k in range(8)
    ]
    y = np.asarray(D4Moments(model)(x))
    assert y.shape == (2, 8, 12, 4)
    np.testing.assert_allclose(y[..., :2], np.mean(preds, axis=0), atol=1e-5)
    np.testing.assert_allclose(y[..., 2:], np.std(preds, axis=0), atol=1e-5)
