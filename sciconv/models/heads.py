"""Heads: classification, regression and segmentation outputs (tensor in, tensor out).

The last layer of every head has ``dtype="float32"`` so that a model trained under a mixed
precision policy (``mixed_bfloat16``, ``mixed_float16``) still returns float32 probabilities.

Examples
--------
>>> import keras
>>> from sciconv.models.heads import classification_head
>>> x = keras.Input((4, 4, 8))
>>> classification_head(x, 3, head="gap", dense=(), name="demo").shape
(None, 3)
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from sciconv._validation import look_up_option
from sciconv.models.invariant import D4Pool
from sciconv.models.layers import TargetScale

__all__ = [
    "HEADS",
    "INSTANCE_OUTPUTS",
    "classification_head",
    "regression_head",
    "segmentation_head",
]

#: How a classifier or regressor head reduces the feature map: flatten or global average pooling.
HEADS = ("flatten", "gap")
#: Extra per-pixel outputs a segmenter can have for instance separation.
INSTANCE_OUTPUTS = (None, "distance", "boundary")


def _features(
    x,
    *,
    head: str,
    dense: Sequence[int],
    dropout: float,
    activation: str,
    name: str,
    pool_transforms: int | None = None,
):
    head = look_up_option(head, HEADS, name="head")
    if head == "flatten":
        x = keras.layers.Flatten(name=f"{name}_head_flatten")(x)
    else:
        x = keras.layers.GlobalAveragePooling2D(name=f"{name}_head_gap")(x)
    if pool_transforms:  # the features of the D4Stack copies, averaged: an invariant vector
        x = D4Pool(pool_transforms, name=f"{name}_head_d4_pool")(x)
    if dropout and not dense:
        x = keras.layers.Dropout(dropout, name=f"{name}_head_dropout")(x)
    for i, units in enumerate(dense, start=1):
        x = keras.layers.Dense(units, activation=activation, name=f"{name}_head_dense{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{name}_head_dropout{i}")(x)
    return x


def classification_head(
    x,
    num_classes: int,
    *,
    head: str = "flatten",
    dense: Sequence[int] = (128,),
    dropout: float = 0.3,
    activation: str = "relu",
    multilabel: bool = False,
    pool_transforms: int | None = None,
    name: str,
):
    """Flatten or global-average-pool, dense layers with dropout, then softmax (or sigmoid).

    Parameters
    ----------
    x : KerasTensor
        Feature map ``(N, h, w, C)``.
    num_classes : int
        Number of output units.
    head : {"flatten", "gap"}
        How the feature map becomes a vector.
    dense : sequence of int
        Units of the hidden fully connected layers (may be empty).
    dropout : float
        Dropout rate after each hidden layer (or after the pooling when ``dense`` is empty).
    activation : str
        Activation of the hidden layers.
    multilabel : bool
        Independent sigmoid per class instead of a softmax over classes.
    pool_transforms : int, optional
        The batch holds this many transformed copies of each image
        (:class:`~sciconv.models.invariant.D4Stack`): their feature vectors are averaged
        (:class:`~sciconv.models.invariant.D4Pool`, layer ``{name}_head_d4_pool``) before the
        dense layers.
    name : str
        Model name used as layer-name prefix.

    Returns
    -------
    KerasTensor
        ``(N, num_classes)`` float32 probabilities; the layer is ``{name}_head_softmax`` (or
        ``{name}_head_sigmoid``) and the logits layer ``{name}_head_logits``.

    Examples
    --------
    >>> import keras
    >>> from sciconv.models.heads import classification_head
    >>> x = keras.Input((4, 4, 8))
    >>> classification_head(x, 5, multilabel=True, dense=(16,), name="m").shape
    (None, 5)
    """
    x = _features(
        x,
        head=head,
        dense=dense,
        dropout=dropout,
        activation=activation,
        name=name,
        pool_transforms=pool_transforms,
    )
    x = keras.layers.Dense(num_classes, name=f"{name}_head_logits")(x)
    final = "sigmoid" if multilabel else "softmax"
    return keras.layers.Activation(final, dtype="float32", name=f"{name}_head_{final}")(x)


def regression_head(
    x,
    outputs: int = 1,
    *,
    head: str = "gap",
    dense: Sequence[int] = (128,),
    dropout: float = 0.0,
    activation: str = "relu",
    uncertainty: bool = False,
    pool_transforms: int | None = None,
    name: str,
):
    """Linear outputs; with ``uncertainty=True`` also a log-variance per output.

    Parameters
    ----------
    x : KerasTensor
        Feature map ``(N, h, w, C)``.
    outputs : int
        Number of continuous targets (default 1).
    head : {"flatten", "gap"}
        How the feature map becomes a vector (default ``"gap"``).
    dense : sequence of int
        Units of the hidden fully connected layers (default ``(128,)``; may be empty).
    dropout : float
        Dropout rate after each hidden layer, or after the pooling when ``dense`` is empty
        (default 0: no layer).
    activation : str
        Activation of the hidden layers (default ``"relu"``).
    uncertainty : bool
        Also predict a log-variance per target (default False).
    pool_transforms : int, optional
        Average the features of this many transformed copies of each image, as in
        :func:`classification_head` (default None: no averaging).
    name : str
        Model name used as layer-name prefix.

    Returns
    -------
    KerasTensor
        ``(N, outputs)``, or ``(N, 2 * outputs)`` holding ``[mean, log_var]`` concatenated when
        ``uncertainty=True`` (train it with :func:`sciconv.losses.gaussian_nll`; the standard
        deviation is ``exp(0.5 * log_var)``), in the targets' units: the last layer,
        :class:`~sciconv.models.layers.TargetScale`, maps the standardized outputs the network
        learns back (:func:`sciconv.training.fit` sets it from the training targets).

    Examples
    --------
    >>> import keras
    >>> from sciconv.models.heads import regression_head
    >>> x = keras.Input((4, 4, 8))
    >>> regression_head(x, 2, uncertainty=True, dense=(), name="m").shape
    (None, 4)
    """
    x = _features(
        x,
        head=head,
        dense=dense,
        dropout=dropout,
        activation=activation,
        name=name,
        pool_transforms=pool_transforms,
    )
    mean = keras.layers.Dense(outputs, dtype="float32", name=f"{name}_head_mean")(x)
    scale = TargetScale(outputs, uncertainty=uncertainty, name=f"{name}_head_target_scale")
    if not uncertainty:
        return scale(mean)
    log_var = keras.layers.Dense(
        outputs, dtype="float32", kernel_initializer="zeros", name=f"{name}_head_log_var"
    )(x)
    both = keras.layers.Concatenate(dtype="float32", name=f"{name}_head_mean_log_var")(
        [mean, log_var]
    )
    return scale(both)


def segmentation_head(x, num_classes: int = 2, *, instance_output: str | None = None, name: str):
    """1x1 convolution to per-pixel class scores, softmax over classes.

    Parameters
    ----------
    x : KerasTensor
        Full-resolution features ``(N, H, W, C)``.
    num_classes : int
        Classes including background (2 for foreground/background).
    instance_output : {None, "distance", "boundary"}
        Optional second output ``(N, H, W, 1)`` to separate touching objects: ``"distance"`` is a
        linear map (train with MSE against a distance transform), ``"boundary"`` a sigmoid map
        (train with binary cross-entropy against object boundaries).
    name : str
        Model name used as layer-name prefix.

    Returns
    -------
    KerasTensor or list of KerasTensor
        ``(N, H, W, num_classes)`` float32 probabilities (layer ``{name}_head_softmax``), plus the
        instance output (layer ``{name}_head_distance`` / ``{name}_head_boundary``) when asked.

    Examples
    --------
    >>> import keras
    >>> from sciconv.models.heads import segmentation_head
    >>> x = keras.Input((8, 8, 4))
    >>> [t.shape for t in segmentation_head(x, 3, instance_output="distance", name="m")]
    [(None, 8, 8, 3), (None, 8, 8, 1)]
    """
    instance_output = look_up_option(instance_output, INSTANCE_OUTPUTS, name="instance_output")
    logits = keras.layers.Conv2D(num_classes, 1, name=f"{name}_head_logits")(x)
    probs = keras.layers.Activation("softmax", dtype="float32", name=f"{name}_head_softmax")(logits)
    if instance_output is None:
        return probs
    act = "linear" if instance_output == "distance" else "sigmoid"
    extra = keras.layers.Conv2D(1, 1, name=f"{name}_head_{instance_output}_conv")(x)
    extra = keras.layers.Activation(act, dtype="float32", name=f"{name}_head_{instance_output}")(
        extra
    )
    return [probs, extra]
