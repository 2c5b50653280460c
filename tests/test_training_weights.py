"""Per-pixel weights in the metrics fit compiles: a pixel of weight 0 (bad, or padding of a
whole validation image) counts in no loss and no metric."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import sciconv as sc


def _foreground_everywhere(model):
    """Make the segmenter predict class 1 at every pixel (zero kernel, biased last layer)."""
    for layer in model.layers[::-1]:
        if layer.weights:
            kernel, _ = layer.get_weights()
            layer.set_weights([kernel * 0, np.array([-5.0, 5.0], "float32")])
            return


def test_fit_compiles_segmentation_metrics_weighted():
    model = sc.models.segmenter((None, None, 1), 2, depth=1, filters=2)
    x = np.zeros((4, 16, 16, 1), "float32")
    y = np.zeros((4, 16, 16), "int32")
    y[:, :, :8] = 1  # left half foreground
    w = np.zeros((4, 16, 16), "float32")
    w[:, :, :8] = 1.0  # only the left half counts
    ds = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(4)
    sc.training.fit(model, ds, epochs=1, learning_rate=1e-12, verbose=0, tensorboard=False)
    _foreground_everywhere(model)
    res = model.evaluate(ds, verbose=0, return_dict=True)
    # every counted pixel is foreground, predicted foreground (unweighted: 0.5, 0.25, 0.667)
    assert res["iou_1"] == pytest.approx(1.0)
    assert res["mean_iou"] == pytest.approx(1.0)
    assert res["dice"] == pytest.approx(1.0)
    unweighted = model.evaluate(ds.map(lambda a, b, c: (a, b)), verbose=0, return_dict=True)
    assert unweighted["iou_1"] == pytest.approx(0.5)


@pytest.mark.parametrize("metric_cls", [sc.metrics.IoU, sc.metrics.MeanIoU, sc.metrics.Dice])
def test_label_metrics_take_pixel_and_sample_weights(metric_cls):
    y = np.zeros((2, 4, 4), "int32")
    y[0, :, :2] = 1
    p = np.zeros((2, 4, 4, 2), "float32")
    p[..., 1] = 1.0  # foreground everywhere

    def score(weight):
        metric = metric_cls(2)
        metric.update_state(y, p, sample_weight=weight)
        return float(metric.result())

    only_first = np.array([1.0, 0.0], "float32")
    per_pixel = np.zeros((2, 4, 4), "float32")
    per_pixel[0] = 1.0
    assert score(only_first) == pytest.approx(score(per_pixel))
    assert score(per_pixel[..., None]) == pytest.approx(score(per_pixel))
    assert score(per_pixel) != pytest.approx(score(None))
    # fractional weights count as given (Keras' int confusion matrix truncated 0.5 to 0)
    assert score(per_pixel * 0.5) == pytest.approx(score(per_pixel))
    assert score(np.where(per_pixel > 0, 1.0, 0.5)) != pytest.approx(score(per_pixel))
