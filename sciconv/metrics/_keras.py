"""Keras IoU / Dice metrics for training, registered with ``package="sciconv"``.

They take integer labels ``(N, H, W)`` or ``(N, H, W, 1)`` and probabilities: softmax
``(N, H, W, K)`` is arg-maxed, a single sigmoid channel ``(N, H, W, 1)`` is thresholded. They
build on ``keras.metrics.IoU`` (its confusion matrix, ``ignore_class`` and sample weights).
Imported when first asked for (:mod:`sciconv.metrics` loads Keras only then).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

__all__ = ["Dice", "IoU", "MeanIoU"]

_register = keras.saving.register_keras_serializable(package="sciconv")


def _per_label_weights(sample_weight, labels):
    """Weights shaped like the label map: per pixel ``(N, H, W)`` (a trailing 1 dropped) or
    per sample ``(N,)`` spread over each sample's pixels (Keras' IoU flattens the labels and
    could not broadcast them)."""
    w = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
    rank = len(labels.shape)
    if len(w.shape) == rank + 1 and w.shape[-1] == 1:
        w = ops.squeeze(w, axis=-1)
    if 0 < len(w.shape) < rank:
        w = ops.reshape(w, tuple(ops.shape(w)) + (1,) * (rank - len(w.shape)))
        w = ops.broadcast_to(w, ops.shape(labels))
    return w


class _LabelIoUBase(keras.metrics.IoU):
    """keras.metrics.IoU fed with label maps made from probabilities (argmax or threshold).

    The confusion matrix is float32 by default (Keras' is int): fractional per-pixel weights
    count as given instead of being truncated, and no int32 count overflows on large sets.
    """

    def __init__(
        self,
        num_classes: int,
        target_class_ids: Sequence[int],
        *,
        threshold: float = 0.5,
        ignore_class: int | None = None,
        name: str | None = None,
        dtype=None,
    ):
        super().__init__(
            num_classes=num_classes,
            target_class_ids=list(target_class_ids),
            name=name,
            dtype=dtype or "float32",
            ignore_class=ignore_class,
            sparse_y_true=True,
            sparse_y_pred=True,
        )
        self.threshold = float(threshold)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred)
        if y_pred.shape[-1] == 1:
            labels = ops.cast(y_pred[..., 0] > self.threshold, "int32")
        else:
            labels = ops.argmax(y_pred, axis=-1)
        y_true = ops.convert_to_tensor(y_true)
        if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
            y_true = ops.squeeze(y_true, axis=-1)
        if sample_weight is not None:
            sample_weight = _per_label_weights(sample_weight, labels)
        return super().update_state(ops.cast(y_true, "int32"), labels, sample_weight)

    def get_config(self):
        return {
            "name": self.name,
            "dtype": self.dtype,
            "num_classes": self.num_classes,
            "threshold": self.threshold,
            "ignore_class": self.ignore_class,
        }


@_register
class IoU(_LabelIoUBase):
    """Intersection over union of one class, from integer labels and probabilities.

    Parameters
    ----------
    num_classes : int
        Number of classes K (2 for a binary sigmoid output).
    class_id : int
        The class scored (default 1: the foreground).
    threshold : float
        Threshold applied to a single sigmoid channel.
    ignore_class : int, optional
        Label value left out (e.g. 255 for "unknown" pixels).
    name : str, optional
        Metric name (default ``"iou_<class_id>"``).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.metrics import IoU
    >>> m = IoU(2, class_id=1)
    >>> _ = m.update_state(np.array([[0, 1, 1, 0]]), np.eye(2)[[[0, 1, 0, 1]]])
    >>> round(float(m.result()), 3)
    0.333
    """

    def __init__(self, num_classes: int = 2, class_id: int = 1, **kwargs):
        kwargs.setdefault("name", f"iou_{class_id}")
        super().__init__(num_classes, [class_id], **kwargs)
        self.class_id = class_id

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id}


@_register
class MeanIoU(_LabelIoUBase):
    """Mean IoU over classes (all K by default, or ``class_ids``), from labels and probabilities.

    Classes absent from both truth and prediction are left out of the mean.

    Parameters
    ----------
    num_classes : int, optional
        Number of classes K (2 for a binary sigmoid output). Default 2.
    class_ids : sequence of int, optional
        The classes averaged; None (default) averages all K.
    **kwargs
        ``threshold`` (single sigmoid channel, default 0.5), ``ignore_class`` and ``name``
        (default ``"mean_iou"``), as for :class:`IoU`.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.metrics import MeanIoU
    >>> m = MeanIoU(2)
    >>> _ = m.update_state(np.array([[0, 1, 1, 0]]), np.eye(2)[[[0, 1, 0, 1]]])
    >>> round(float(m.result()), 3)
    0.333
    """

    def __init__(self, num_classes: int = 2, class_ids: Sequence[int] | None = None, **kwargs):
        kwargs.setdefault("name", "mean_iou")
        ids = list(range(num_classes)) if class_ids is None else [int(c) for c in class_ids]
        super().__init__(num_classes, ids, **kwargs)
        self.class_ids = None if class_ids is None else ids

    def get_config(self):
        return {**super().get_config(), "class_ids": self.class_ids}


@_register
class Dice(_LabelIoUBase):
    """Dice coefficient ``2 TP / (2 TP + FP + FN)`` of one class or the mean over classes.

    Parameters
    ----------
    num_classes : int
        Number of classes K.
    class_id : int, optional
        Score this class only; None averages over the foreground classes ``1..K-1``.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.metrics import Dice
    >>> m = Dice(2, class_id=1)
    >>> _ = m.update_state(np.array([[0, 1, 1, 0]]), np.eye(2)[[[0, 1, 0, 1]]])
    >>> round(float(m.result()), 3)
    0.5
    """

    def __init__(self, num_classes: int = 2, class_id: int | None = None, **kwargs):
        kwargs.setdefault("name", "dice" if class_id is None else f"dice_{class_id}")
        ids = list(range(1, num_classes)) if class_id is None else [class_id]
        super().__init__(num_classes, ids, **kwargs)
        self.class_id = class_id

    def result(self):
        cm = ops.cast(self.total_cm, "float32")
        tp = ops.diag(cm)
        denom = ops.sum(cm, axis=0) + ops.sum(cm, axis=1)  # 2 TP + FP + FN
        ids = ops.convert_to_tensor(self.target_class_ids, dtype="int32")
        tp, denom = ops.take(tp, ids), ops.take(denom, ids)
        valid = ops.cast(denom > 0, "float32")
        dice = ops.where(denom > 0, 2.0 * tp / ops.maximum(denom, 1e-12), 0.0)
        return ops.sum(dice) / ops.maximum(ops.sum(valid), 1.0)

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id}
