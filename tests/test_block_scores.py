"""Block-wise catalogs' ``score``: each object's own (its block's probabilities), also when the
blocks are resampled and objects are dropped on the way back, and when the catalog is measured
after the labels (background subtraction)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sciconv.inference import predict_instances_blocks


@pytest.fixture(scope="module")
def model():
    import keras

    inputs = keras.Input((None, None, 1))
    logits = keras.layers.Conv2D(
        2, 1, kernel_initializer=keras.initializers.Constant([[[[-1.0, 1.0]]]])
    )(inputs)
    return keras.Model(inputs, keras.layers.Softmax()(logits))  # fg = sigmoid(2 * pixel)


def _squares():
    """Uniform squares on a dark floor, each of its own brightness (so its own score)."""
    rng = np.random.default_rng(1)
    img = np.full((160, 160), -4.0, np.float32)
    for y in range(6, 150, 14):
        for x in range(6, 150, 14):
            s = rng.integers(3, 9)
            img[y : y + s, x : x + s] = rng.uniform(0.2, 2.5)
    return img


@pytest.mark.parametrize(
    "options", [{}, {"scale": 0.7, "min_size": 20}, {"background": True}], ids=str
)
def test_block_scores_belong_to_their_objects(model, options):
    img = _squares()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # resampling and background notices
        labels, table = predict_instances_blocks(
            model, img, block=64, normalize=None, progress=False, blend="none", **options
        )
    labels = np.asarray(labels)
    assert len(table) > 20 and np.all(np.isfinite(table["score"]))
    # a uniform square's score is its pixels' probability: sigmoid(2 * brightness)
    bright = np.array([img[labels == i].mean() for i in table["label"]])
    expected = 1 / (1 + np.exp(-2 * bright))
    score = np.asarray(table["score"])
    if not options.get("scale"):
        np.testing.assert_allclose(score, expected, atol=0.02)
    else:  # resampled, a small square's edges blur (lower scores), but each keeps its own:
        # the scores rank as the brightness does (a neighbour's score: rank correlation 0.17)
        ranks = np.argsort(np.argsort(score)), np.argsort(np.argsort(bright))
        assert np.corrcoef(*ranks)[0, 1] > 0.9
        assert np.all(score <= expected + 0.02)
