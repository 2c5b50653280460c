"""Backbones: the classic conv-pool stack and a U-Net encoder/decoder (tensor in, tensor out).

Examples
--------
>>> import keras
>>> from sciconv.models.backbones import conv_pool_stack, unet
>>> x = keras.Input((32, 32, 1))
>>> conv_pool_stack(x, filters=(4, 8), name="demo").shape
(None, 8, 8, 8)
>>> unet(x, depth=2, filters=4, name="demo_unet").shape
(None, 32, 32, 4)
"""

from __future__ import annotations

from collections.abc import Sequence

from sciconv.models.blocks import conv_block, pool, up_block

__all__ = ["conv_pool_stack", "unet"]


def conv_pool_stack(
    x,
    *,
    filters: Sequence[int] = (32, 64, 128),
    convs_per_stage: int = 1,
    kernel_size: int = 3,
    pooling: str = "max",
    batch_norm: bool = False,
    activation: str = "relu",
    name: str,
):
    """Stages of conv block + 2x2 pooling; stage ``i`` has ``filters[i]`` channels.

    Layers are named ``{name}_stage{i}_conv{j}``, ``{name}_stage{i}_{activation}{j}`` and
    ``{name}_stage{i}_pool`` (``i``, ``j`` from 1).

    Parameters
    ----------
    x : KerasTensor
        Input feature map ``(N, H, W, C)``.
    filters : sequence of int
        Channels of each stage's convolutions, one stage per entry (default ``(32, 64, 128)``).
    convs_per_stage : int
        Convolutions per stage (default 1).
    kernel_size : int
        Square kernel size of the convolutions (default 3).
    pooling : {"max", "avg"}
        Pooling after each stage (default ``"max"``).
    batch_norm : bool
        BatchNormalization after each convolution (default False).
    activation : str
        Keras activation name (default ``"relu"``).
    name : str
        Prefix of the layer names, e.g. ``"classifier"``.

    Returns
    -------
    KerasTensor
        ``(N, H // 2**len(filters), W // 2**len(filters), filters[-1])``.

    Examples
    --------
    >>> import keras
    >>> from sciconv.models.backbones import conv_pool_stack
    >>> x = keras.Input((16, 16, 1))
    >>> conv_pool_stack(x, filters=(2, 4, 8), pooling="avg", name="m").shape
    (None, 2, 2, 8)
    """
    for stage, n in enumerate(filters, start=1):
        prefix = f"{name}_stage{stage}"
        x = conv_block(
            x,
            n,
            convs=convs_per_stage,
            kernel_size=kernel_size,
            batch_norm=batch_norm,
            activation=activation,
            name=prefix,
        )
        x = pool(x, kind=pooling, name=prefix)
    return x


def unet(
    x,
    *,
    depth: int = 4,
    filters: int = 32,
    convs_per_stage: int = 2,
    kernel_size: int = 3,
    batch_norm: bool = True,
    activation: str = "relu",
    upsampling: str = "transpose",
    pooling: str = "max",
    dropout: float = 0.0,
    name: str,
):
    """U-Net: ``depth`` encoder levels (channels ``filters * 2**level``), bottleneck, decoder.

    H and W of the input must be multiples of ``2**depth``. Layers are named ``{name}_enc{i}_*``,
    ``{name}_bottleneck_*`` and ``{name}_dec{i}_*`` (``dec1`` is the full-resolution level).
    ``dropout`` is applied at the end of the bottleneck.

    Parameters
    ----------
    x : KerasTensor
        Input feature map ``(N, H, W, C)``.
    depth : int
        Number of encoder (and decoder) levels (default 4).
    filters : int
        Channels of the first level, doubled at each level below (default 32).
    convs_per_stage : int
        Convolutions per level (default 2).
    kernel_size : int
        Square kernel size of the convolutions (default 3).
    batch_norm : bool
        BatchNormalization after each convolution (default True).
    activation : str
        Keras activation name (default ``"relu"``).
    upsampling : {"transpose", "bilinear"}
        Decoder up-sampling, as in :func:`~sciconv.models.blocks.up_block` (default
        ``"transpose"``).
    pooling : {"max", "avg"}
        Encoder down-sampling (default ``"max"``).
    dropout : float
        Dropout rate at the end of the bottleneck (default 0: no layer).
    name : str
        Prefix of the layer names, e.g. ``"segmenter"``.

    Returns
    -------
    KerasTensor
        ``(N, H, W, filters)`` full-resolution features.

    Examples
    --------
    >>> import keras
    >>> from sciconv.models.backbones import unet
    >>> x = keras.Input((None, None, 2))
    >>> unet(x, depth=3, filters=2, upsampling="bilinear", name="m").shape
    (None, None, None, 2)
    """
    block = dict(
        convs=convs_per_stage,
        kernel_size=kernel_size,
        batch_norm=batch_norm,
        activation=activation,
    )
    skips = []
    for level in range(1, depth + 1):
        x = conv_block(x, filters * 2 ** (level - 1), name=f"{name}_enc{level}", **block)
        skips.append(x)
        x = pool(x, kind=pooling, name=f"{name}_enc{level}")
    x = conv_block(x, filters * 2**depth, dropout=dropout, name=f"{name}_bottleneck", **block)
    for level in range(depth, 0, -1):
        x = up_block(
            x,
            skips[level - 1],
            filters * 2 ** (level - 1),
            upsampling=upsampling,
            name=f"{name}_dec{level}",
            **block,
        )
    return x
