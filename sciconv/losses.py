"""Losses for segmentation and regression with error bars (all registered with Keras).

Segmentation losses accept the label forms a scientist has at hand:

* **multi-class**: ``y_pred`` softmax ``(N, H, W, K)``; ``y_true`` integer class ids
  ``(N, H, W)`` or ``(N, H, W, 1)`` (sparse), or one-hot ``(N, H, W, K)``;
* **binary**: ``y_pred`` sigmoid ``(N, H, W, 1)``; ``y_true`` 0/1 ``(N, H, W)`` or ``(N, H, W, 1)``.

They also work on ``(N, K)`` classifier outputs. Each function returns one value per sample
``(N,)``; Keras averages over the batch. Functions are usable directly in ``model.compile``; the
classes (:class:`DiceLoss`, :class:`FocalLoss`, :class:`BCEDiceLoss`, :class:`GaussianNLL`) take
parameters and save them in the model file.

Per-pixel weights (bad pixels)
    The segmentation losses take ``sample_weight`` per pixel ``(N, H, W)``: a pixel of weight 0
    (a masked, bad pixel) counts nowhere: not in the Dice overlap, not in the cross-entropy mean
    (a weighted mean over the pixels). Keras hands a dataset's third element ``(x, y, w)`` to a
    Loss *object* only, so train with the classes (:class:`BCEDiceLoss`, :class:`DiceLoss`,
    :class:`FocalLoss`: :func:`sciconv.training.fit` compiles with them): a plain function in
    ``model.compile`` returns one value per sample and Keras cannot weigh its pixels.

Examples
--------
>>> import numpy as np
>>> from sciconv.losses import dice_loss
>>> y_true = np.array([[[0, 1], [1, 1]]])                  # (N, H, W) class ids
>>> y_pred = np.eye(2, dtype="float32")[y_true]            # perfect softmax (N, H, W, 2)
>>> float(dice_loss(y_true, y_pred)[0]) < 1e-6
True
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = [
    "LOG_VAR_SAFE",
    "BCEDiceLoss",
    "DiceLoss",
    "FocalLoss",
    "GaussianNLL",
    "bce_dice_loss",
    "dice_loss",
    "focal_loss",
    "gaussian_nll",
]

_EPS = 1e-7
_register = keras.saving.register_keras_serializable(package="sciconv")


def _one_hot_pair(y_true, y_pred):
    """Return ``(t, p, binary)``: float32 one-hot targets and probabilities, same shape.

    Binary sigmoid outputs (last axis 1) are expanded to two channels ``[1 - p, p]``.
    """
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    y_true = ops.convert_to_tensor(y_true)
    k = y_pred.shape[-1]
    rank_p, rank_t = len(y_pred.shape), len(y_true.shape)
    if k == 1:  # binary sigmoid
        t = ops.cast(y_true, "float32")
        if rank_t == rank_p - 1:
            t = ops.expand_dims(t, -1)
        return (
            ops.concatenate([1.0 - t, t], axis=-1),
            ops.concatenate([1.0 - y_pred, y_pred], -1),
            True,
        )
    if rank_t == rank_p and y_true.shape[-1] == k:  # already one-hot
        return ops.cast(y_true, "float32"), y_pred, False
    if rank_t == rank_p:  # (N, H, W, 1) sparse
        y_true = ops.squeeze(y_true, axis=-1)
    t = ops.one_hot(ops.cast(y_true, "int32"), k, dtype="float32")
    return t, y_pred, False


def _spatial_axes(x) -> list[int]:
    return list(range(1, len(x.shape) - 1))


def _pixel_weights(sample_weight, p):
    """float32 weights shaped to broadcast against ``p`` ``(N, ..., K)``: ``(N, ..., 1)``."""
    w = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
    rank_w, rank_p = len(w.shape), len(p.shape)
    if rank_w == rank_p - 1:
        w = ops.expand_dims(w, -1)
    elif rank_w != rank_p or w.shape[-1] not in (1, None):
        raise ValueError(
            f"sample_weight must have the labels' shape (N, H, W) or (N, H, W, 1); got shape "
            f"{tuple(w.shape)} for predictions of shape {tuple(p.shape)}"
        )
    return w


def _weighted_mean(loss, sample_weight):
    """Mean of per-pixel ``loss`` ``(N, ...)`` over its pixels, weighted; ``(N,)``."""
    axes = list(range(1, len(loss.shape)))
    if sample_weight is None:
        return ops.mean(loss, axis=axes) if axes else loss
    w = ops.cast(ops.convert_to_tensor(sample_weight), loss.dtype)
    if len(w.shape) == len(loss.shape) + 1:
        w = ops.squeeze(w, axis=-1)
    if not axes:
        return loss * w
    return ops.sum(loss * w, axis=axes) / ops.maximum(ops.sum(w, axis=axes), _EPS)


@_register
def dice_loss(
    y_true, y_pred, smooth: float = 1.0, include_background: bool = False, sample_weight=None
):
    """Soft Dice loss, ``1 - mean_k (2 |T_k P_k| + s) / (|T_k| + |P_k| + s)``, per sample.

    Parameters
    ----------
    y_true : array
        Class ids ``(N, H, W)`` / ``(N, H, W, 1)``, one-hot ``(N, H, W, K)`` or binary 0/1.
    y_pred : array
        Softmax ``(N, H, W, K)`` or sigmoid ``(N, H, W, 1)`` probabilities.
    smooth : float
        Added to numerator and denominator (an empty class predicted empty scores 1); default 1.
    include_background : bool
        Average over all K classes; by default (False) class 0 (background) is left out when
        K > 1, as is usual for foreground segmentation. A binary sigmoid output scores its
        foreground only.
    sample_weight : array, optional
        Per-pixel weights ``(N, H, W)`` (or ``(N, H, W, 1)``): each pixel's share of the overlap
        and the sums, so a pixel of weight 0 does not count.

    Returns
    -------
    tensor
        ``(N,)`` loss in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.losses import dice_loss
    >>> t = np.array([[[0, 1, 1, 0]]])
    >>> p = np.full((1, 1, 4, 1), 0.5, "float32")       # binary sigmoid, undecided
    >>> round(float(dice_loss(t, p, smooth=0.0)[0]), 3)  # 1 - 2 * 1.0 / (2 + 2)
    0.5
    >>> w = np.array([[[1, 1, 1, 0]]])                  # the last pixel is bad: not counted,
    >>> q = p.copy(); q[0, 0, 3] = 0.9                  # so a wrong guess there costs nothing
    >>> a, b = dice_loss(t, q, sample_weight=w)[0], dice_loss(t[..., :3], p[:, :, :3])[0]
    >>> bool(np.isclose(a, b))
    True
    """
    t, p, _ = _one_hot_pair(y_true, y_pred)
    if sample_weight is not None:
        w = _pixel_weights(sample_weight, p)
        t, p = t * w, p * w
    axes = _spatial_axes(p)
    if not include_background:
        t, p = t[..., 1:], p[..., 1:]
    if axes:
        inter = ops.sum(t * p, axis=axes)
        denom = ops.sum(t, axis=axes) + ops.sum(p, axis=axes)
    else:
        inter, denom = t * p, t + p
    dice = (2.0 * inter + smooth) / (denom + smooth + _EPS)
    return 1.0 - ops.mean(dice, axis=-1)


@_register
def focal_loss(y_true, y_pred, gamma: float = 2.0, alpha: float | None = None, sample_weight=None):
    """Focal loss ``-alpha_t (1 - p_t)**gamma log p_t`` averaged over pixels, per sample.

    Parameters
    ----------
    y_true, y_pred : array
        As in :func:`dice_loss`.
    gamma : float
        Focusing parameter (default 2); 0 gives plain cross-entropy.
    alpha : float, optional
        Weight of the foreground (classes > 0) in ``(0, 1)``; background gets ``1 - alpha``.
        None (default) weighs all classes equally.
    sample_weight : array, optional
        Per-pixel weights ``(N, H, W)``: the loss is their weighted mean over the pixels (a pixel
        of weight 0 does not count).

    Returns
    -------
    tensor
        ``(N,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.losses import focal_loss
    >>> t = np.array([1, 0])                           # (N,) sparse labels
    >>> p = np.array([[0.2, 0.8], [0.9, 0.1]], "float32")
    >>> loss = focal_loss(t, p, gamma=0.0)             # == cross-entropy
    >>> np.allclose(loss, [-np.log(0.8), -np.log(0.9)], atol=1e-6)
    True
    """
    t, p, _ = _one_hot_pair(y_true, y_pred)
    p = ops.clip(p, _EPS, 1.0 - _EPS)
    p_t = ops.sum(t * p, axis=-1)
    weight = ops.power(1.0 - p_t, gamma)
    if alpha is not None:
        fg = 1.0 - t[..., 0]  # 1 where the true class is not background
        weight = weight * (alpha * fg + (1.0 - alpha) * (1.0 - fg))
    loss = -weight * ops.log(p_t)
    return _weighted_mean(loss, sample_weight)


def _crossentropy(y_true, y_pred, sample_weight=None):
    t, p, _ = _one_hot_pair(y_true, y_pred)
    ce = -ops.sum(t * ops.log(ops.clip(p, _EPS, 1.0)), axis=-1)
    return _weighted_mean(ce, sample_weight)


@_register
def bce_dice_loss(
    y_true, y_pred, dice_weight: float = 1.0, smooth: float = 1.0, sample_weight=None
):
    """Cross-entropy + ``dice_weight`` x Dice loss, per sample.

    Binary (sigmoid) outputs get binary cross-entropy, softmax outputs categorical
    cross-entropy (from sparse or one-hot labels). Cross-entropy gives smooth per-pixel gradients
    early in training; Dice counters the imbalance of a small foreground. ``sample_weight``
    (per pixel, ``(N, H, W)``) weighs both terms (see :func:`dice_loss`, :func:`focal_loss`).

    Parameters
    ----------
    y_true, y_pred : array
        As in :func:`dice_loss`.
    dice_weight : float
        Weight of the Dice term added to the cross-entropy (default 1).
    smooth : float
        Smoothing of the Dice term, as in :func:`dice_loss` (default 1).
    sample_weight : array, optional
        Per-pixel weights ``(N, H, W)`` of both terms (a pixel of weight 0 does not count).

    Returns
    -------
    tensor
        ``(N,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.losses import bce_dice_loss, dice_loss
    >>> t = np.array([[[0, 1]]])
    >>> p = np.array([[[[0.9, 0.1], [0.2, 0.8]]]], "float32")
    >>> bool(bce_dice_loss(t, p)[0] > dice_loss(t, p)[0])
    True
    """
    ce = _crossentropy(y_true, y_pred, sample_weight)
    dice = dice_loss(y_true, y_pred, smooth=smooth, sample_weight=sample_weight)
    return ce + dice_weight * dice


#: The size of a log-variance beyond which float32 loses exp(log_var) (exp(88) overflows): the clip
#: of :func:`gaussian_nll` and :func:`sciconv.calibration.regression_moments`.
LOG_VAR_SAFE = 80.0


@_register
def gaussian_nll(y_true, y_pred):
    """Gaussian negative log-likelihood for a ``[mean, log_var]`` regression output.

    ``0.5 * (log_var + (y - mean)**2 / exp(log_var))`` averaged over targets (the constant
    ``0.5 log 2 pi`` is left out), in the targets' units. ``log_var`` is clipped to [-80, 80],
    where float32 still holds ``exp(log_var)``; a sciconv regressor bounds its own in
    standardized units (:class:`sciconv.models.layers.TargetScale`), so error bars of any size
    in the targets' units are learnt (the clip was [-15, 15] in those units: no 1-sigma error
    above 1808, whatever the targets).

    Parameters
    ----------
    y_true : array
        ``(N, D)`` or ``(N,)`` targets.
    y_pred : array
        ``(N, 2 D)``: means in the first D columns, log-variances in the last D (the output of
        :func:`sciconv.models.regressor` with ``uncertainty=True``).

    Returns
    -------
    tensor
        ``(N,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.losses import gaussian_nll
    >>> y = np.array([[1.0], [2.0]], "float32")
    >>> pred = np.array([[1.0, 0.0], [0.0, np.log(4.0)]], "float32")
    >>> [round(float(v), 4) for v in gaussian_nll(y, pred)]
    [0.0, 1.1931]
    """
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
    d = y_pred.shape[-1] // 2
    mean, log_var = y_pred[..., :d], ops.clip(y_pred[..., d:], -LOG_VAR_SAFE, LOG_VAR_SAFE)
    if len(y_true.shape) == len(y_pred.shape) - 1:
        y_true = ops.expand_dims(y_true, -1)
    nll = 0.5 * (log_var + ops.square(y_true - mean) * ops.exp(-log_var))
    return ops.mean(nll, axis=-1)


def _scale_for_replicas(value):
    """Divide a batch-mean loss by the replicas in sync, as Keras' own reduction does.

    Under ``tf.distribute`` each replica's loss is summed into the gradient; Keras divides a
    ``"sum_over_batch_size"`` loss by the number of replicas (and multiplies it back for the
    logged value). A loss that reduces itself must do the same, or every replica adds a full
    batch mean and training runs at ``num_replicas`` times the loss and gradient.
    """
    if keras.backend.backend() != "tensorflow":
        return value
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        value = value * ops.cast(1.0 / replicas, value.dtype)
    return value


class _ParamLoss(keras.losses.Loss):
    """A Loss whose call forwards its stored parameters to a loss function.

    Per-pixel sample weights (rank >= 2, e.g. ``(N, H, W)`` from a dataset yielding
    ``(x, y, w)``) go to the function, which weighs its pixels itself; the per-sample values are
    then reduced over the batch unweighted (and divided by the replicas in sync under
    ``tf.distribute``, as Keras' reduction does). Per-sample weights ``(N,)`` are Keras's as usual.
    """

    _fn = None
    _default_name = "loss"
    _pixel_weights = True  # the function takes sample_weight= per pixel

    def __init__(self, *, name=None, reduction="sum_over_batch_size", dtype=None, **params):
        super().__init__(name=name or self._default_name, reduction=reduction, dtype=dtype)
        self.params = params

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None or not self._pixel_weights or len(ops.shape(sample_weight)) <= 1:
            return super().__call__(y_true, y_pred, sample_weight=sample_weight)
        losses = type(self)._fn(y_true, y_pred, sample_weight=sample_weight, **self.params)
        losses = ops.cast(losses, self.dtype)
        if self.reduction in (None, "none"):
            return losses
        if self.reduction == "sum":
            return ops.sum(losses)
        return _scale_for_replicas(ops.mean(losses))

    def call(self, y_true, y_pred):
        return type(self)._fn(y_true, y_pred, **self.params)

    def get_config(self):
        return {**super().get_config(), **self.params}


@_register
class DiceLoss(_ParamLoss):
    """:func:`dice_loss` as a Loss object with parameters saved in the model file.

    Parameters
    ----------
    smooth : float, optional
        As in :func:`dice_loss` (default 1).
    include_background : bool, optional
        As in :func:`dice_loss` (default False: class 0 left out).
    **kwargs
        Keras Loss arguments: ``name`` (default ``"dice_loss"``), ``reduction`` (default
        ``"sum_over_batch_size"``), ``dtype``.

    Examples
    --------
    >>> from sciconv.losses import DiceLoss
    >>> DiceLoss(smooth=0.5).get_config()["smooth"]
    0.5
    """

    _fn = staticmethod(dice_loss)
    _default_name = "dice_loss"

    def __init__(self, smooth: float = 1.0, include_background: bool = False, **kwargs):
        super().__init__(smooth=smooth, include_background=include_background, **kwargs)


@_register
class FocalLoss(_ParamLoss):
    """:func:`focal_loss` as a Loss object.

    Parameters
    ----------
    gamma : float, optional
        Focusing parameter, as in :func:`focal_loss` (default 2).
    alpha : float, optional
        Foreground weight, as in :func:`focal_loss` (default None: classes weighed equally).
    **kwargs
        Keras Loss arguments: ``name`` (default ``"focal_loss"``), ``reduction`` (default
        ``"sum_over_batch_size"``), ``dtype``.

    Examples
    --------
    >>> from sciconv.losses import FocalLoss
    >>> FocalLoss(gamma=1.0).get_config()["gamma"]
    1.0
    """

    _fn = staticmethod(focal_loss)
    _default_name = "focal_loss"

    def __init__(self, gamma: float = 2.0, alpha: float | None = None, **kwargs):
        super().__init__(gamma=gamma, alpha=alpha, **kwargs)


@_register
class BCEDiceLoss(_ParamLoss):
    """:func:`bce_dice_loss` as a Loss object.

    Parameters
    ----------
    dice_weight : float, optional
        Weight of the Dice term, as in :func:`bce_dice_loss` (default 1).
    smooth : float, optional
        Smoothing of the Dice term (default 1).
    **kwargs
        Keras Loss arguments: ``name`` (default ``"bce_dice_loss"``), ``reduction`` (default
        ``"sum_over_batch_size"``), ``dtype``.

    Examples
    --------
    >>> from sciconv.losses import BCEDiceLoss
    >>> BCEDiceLoss(dice_weight=0.5).get_config()["dice_weight"]
    0.5
    """

    _fn = staticmethod(bce_dice_loss)
    _default_name = "bce_dice_loss"

    def __init__(self, dice_weight: float = 1.0, smooth: float = 1.0, **kwargs):
        super().__init__(dice_weight=dice_weight, smooth=smooth, **kwargs)


@_register
class GaussianNLL(_ParamLoss):
    """:func:`gaussian_nll` as a Loss object.

    Parameters
    ----------
    **kwargs
        Keras Loss arguments: ``name`` (default ``"gaussian_nll"``), ``reduction`` (default
        ``"sum_over_batch_size"``), ``dtype``.

    Examples
    --------
    >>> from sciconv.losses import GaussianNLL
    >>> GaussianNLL().name
    'gaussian_nll'
    """

    _fn = staticmethod(gaussian_nll)
    _default_name = "gaussian_nll"
    _pixel_weights = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
