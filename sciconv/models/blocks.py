"""Building blocks: tensor-in, tensor-out functions that add named Keras layers.

Every layer is named ``f"{name}_{role}"`` where ``name`` already holds the model and stage
(``"classifier_stage1"``), so ``model.summary()`` reads like the architecture:
``classifier_stage1_conv1``, ``classifier_stage1_relu1``, ``classifier_stage1_pool``.

Examples
--------
>>> import keras
>>> from sciconv.models.blocks import conv_block, pool
>>> x = keras.Input((16, 16, 1))
>>> y = pool(conv_block(x, 8, name="demo_stage1"), kind="avg", name="demo_stage1")
>>> y.shape
(None, 8, 8, 8)
"""

from __future__ import annotations

import keras

from sciconv._validation import look_up_option
from sciconv.models.layers import BilinearUpSampling2D

__all__ = ["POOLING", "UPSAMPLING", "conv_block", "pool", "sync_batch_norm", "up_block"]

#: Pooling layers a conv-pool stage can use.
POOLING = ("max", "avg")
#: Up-sampling layers of a U-Net decoder stage.
UPSAMPLING = ("transpose", "bilinear")


def conv_block(
    x,
    filters: int,
    *,
    convs: int = 1,
    kernel_size: int = 3,
    batch_norm: bool = False,
    activation: str = "relu",
    dropout: float = 0.0,
    name: str,
):
    """Add ``convs`` times Conv2D (+ BatchNorm) + activation, then optional dropout.

    Parameters
    ----------
    x : KerasTensor
        Input feature map ``(N, H, W, C)``.
    filters : int
        Output channels of every convolution.
    convs : int
        Number of convolutions in the block.
    kernel_size : int
        Square kernel size; padding is ``"same"`` so H and W are kept.
    batch_norm : bool
        Insert BatchNormalization between convolution and activation (the convolution then has
        no bias). Built inside a ``tf.distribute`` scope of several replicas (MirroredStrategy,
        MultiWorkerMirroredStrategy), it is synchronized (:func:`sync_batch_norm`), so training
        uses the statistics of the global batch, as on one device.
    activation : str
        Any Keras activation name.
    dropout : float
        Dropout rate after the last activation (0 adds no layer).
    name : str
        Prefix of the layer names, e.g. ``"segmenter_enc2"``.

    Returns
    -------
    KerasTensor
        ``(N, H, W, filters)``.

    Examples
    --------
    >>> import keras
    >>> from sciconv.models.blocks import conv_block
    >>> x = keras.Input((8, 8, 3))
    >>> conv_block(x, 4, convs=2, batch_norm=True, name="m_stage1").shape
    (None, 8, 8, 4)
    """
    for i in range(1, convs + 1):
        x = keras.layers.Conv2D(
            filters,
            kernel_size,
            padding="same",
            use_bias=not batch_norm,
            kernel_initializer="he_normal",
            name=f"{name}_conv{i}",
        )(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(
                synchronized=sync_batch_norm(), name=f"{name}_bn{i}"
            )(x)
        x = keras.layers.Activation(activation, name=f"{name}_{activation}{i}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def sync_batch_norm() -> bool:
    """Whether BatchNorm layers built now synchronize their batch statistics over replicas.

    True inside the scope of a ``tf.distribute`` strategy with more than one replica (on the
    TensorFlow backend, the only one where Keras' ``synchronized=True`` exists). Each replica
    otherwise normalizes with the mean and variance of its own share of the batch, so training
    under MirroredStrategy differed from one device with the same global batch (weights 1e-2
    apart after three epochs). Elsewhere False: a model built on one device is the same as
    before, and inference (moving statistics) is the same either way.

    Examples
    --------
    >>> from sciconv.models.blocks import sync_batch_norm
    >>> sync_batch_norm()
    False
    """
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return tf.distribute.has_strategy() and tf.distribute.get_strategy().num_replicas_in_sync > 1


def pool(x, *, kind: str = "max", size: int = 2, name: str):
    """Add a 2x2 MaxPooling2D (``kind="max"``) or AveragePooling2D (``kind="avg"``).

    Parameters
    ----------
    x : KerasTensor
        Input feature map ``(N, H, W, C)``.
    kind : {"max", "avg"}
        Max or average pooling (default ``"max"``).
    size : int
        Pool size and stride (default 2).
    name : str
        Prefix of the layer name: the layer is ``f"{name}_pool"``.

    Examples
    --------
    >>> import keras
    >>> from sciconv.models.blocks import pool
    >>> x = keras.Input((8, 8, 3))
    >>> pool(x, kind="max", name="m_stage1").shape
    (None, 4, 4, 3)
    """
    kind = look_up_option(kind, POOLING, name="pooling")
    layer = keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D
    return layer(pool_size=size, name=f"{name}_pool")(x)


def up_block(
    x,
    skip,
    filters: int,
    *,
    upsampling: str = "transpose",
    convs: int = 2,
    kernel_size: int = 3,
    batch_norm: bool = True,
    activation: str = "relu",
    dropout: float = 0.0,
    name: str,
):
    """U-Net decoder step: upsample x2, concatenate the encoder skip, then a conv block.

    Parameters
    ----------
    x : KerasTensor
        Decoder feature map ``(N, H, W, C)``.
    skip : KerasTensor
        Encoder feature map ``(N, 2H, 2W, C')``.
    filters : int
        Channels of the upsampling and of the convolutions.
    upsampling : {"transpose", "bilinear"}
        ``"transpose"``: Conv2DTranspose with stride 2; ``"bilinear"``: bilinear x2 upsampling
        (:class:`~sciconv.models.layers.BilinearUpSampling2D`) followed by a convolution.
    convs, kernel_size, batch_norm, activation, dropout
        As in :func:`conv_block`.
    name : str
        Prefix of the layer names, e.g. ``"segmenter_dec1"``.

    Examples
    --------
    >>> import keras
    >>> from sciconv.models.blocks import up_block
    >>> x, skip = keras.Input((4, 4, 8)), keras.Input((8, 8, 4))
    >>> up_block(x, skip, 4, upsampling="bilinear", name="m_dec1").shape
    (None, 8, 8, 4)
    """
    upsampling = look_up_option(upsampling, UPSAMPLING, name="upsampling")
    if upsampling == "transpose":
        x = keras.layers.Conv2DTranspose(
            filters, 2, strides=2, padding="same", name=f"{name}_upconv"
        )(x)
    else:
        x = BilinearUpSampling2D(name=f"{name}_upsample")(x)
        x = keras.layers.Conv2D(filters, kernel_size, padding="same", name=f"{name}_upconv")(x)
    x = keras.layers.Concatenate(name=f"{name}_concat")([x, skip])
    return conv_block(
        x,
        filters,
        convs=convs,
        kernel_size=kernel_size,
        batch_norm=batch_norm,
        activation=activation,
        dropout=dropout,
        name=name,
    )
