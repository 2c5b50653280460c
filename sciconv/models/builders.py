"""The model builders: :func:`classifier`, :func:`regressor`, :func:`segmenter`.

Each builder validates its arguments once, here, in private helpers, records them as the model's
``architecture`` metadata (which :func:`sciconv.models.load` uses to rebuild a model written by a
newer Keras), then assembles the model from tensor-in/tensor-out backbones
(:mod:`~sciconv.models.backbones`) and heads (:mod:`~sciconv.models.heads`). Every layer is named
``{name}_{stage}_{role}``. :func:`check_input_shape` tells whether an image fits a built model.

Examples
--------
>>> from sciconv.models.builders import classifier, segmenter
>>> classifier((32, 32, 1), 3, filters=(8, 16), dense=(32,)).output_shape
(None, 3)
>>> segmenter((None, None, 1), depth=2, filters=4).output_shape
(None, None, None, 2)
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from sciconv import __version__
from sciconv._validation import check_int, look_up_option
from sciconv.errors import ModelError
from sciconv.models.backbones import conv_pool_stack, unet
from sciconv.models.blocks import POOLING, UPSAMPLING
from sciconv.models.heads import (
    HEADS,
    INSTANCE_OUTPUTS,
    classification_head,
    regression_head,
    segmentation_head,
)
from sciconv.models.invariant import INVARIANCES, D4Stack, d4_elements
from sciconv.models.layers import SciconvMetadata
from sciconv.models.metadata import get_metadata

__all__ = ["check_input_shape", "classifier", "regressor", "segmenter"]


# --------------------------------------------------------------------------- validation helpers


def _validate_input_shape(input_shape, *, spatial_none: bool, name: str) -> tuple:
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if shape is None or len(shape) != 3:
        raise ModelError(f"input_shape must be (H, W, C); got {input_shape!r}")
    out = []
    for i, s in enumerate(shape):
        if s is None and i < 2 and spatial_none:
            out.append(None)
            continue
        if isinstance(s, bool) or (not isinstance(s, int) and not hasattr(s, "__index__")):
            allowed = "an int or None" if spatial_none and i < 2 else "an int"
            raise ModelError(
                f"input_shape[{i}] must be {allowed}; got {s!r} in input_shape={input_shape!r}"
                + (
                    " (use head='gap' to accept images of any size)"
                    if s is None and name != "segmenter"
                    else ""
                )
            )
        if int(s) <= 0:
            raise ModelError(f"input_shape must hold positive sizes; got input_shape={shape!r}")
        out.append(int(s))
    return tuple(out)


def _validate_name(name) -> str:
    """``name`` if Keras takes it as a model name and layer-name prefix: a non-empty str
    without ``"/"`` (Keras refuses ``"/"`` in any model, layer or variable name)."""
    if not isinstance(name, str) or not name or "/" in name:
        raise ModelError(f"name must be a non-empty str without '/'; got {name!r}")
    return name


def _validate_int(value, *, name: str, minimum: int) -> int:
    return check_int(value, name=name, minimum=minimum, error=ModelError)


def _validate_ints(values, *, name: str, allow_empty: bool) -> tuple[int, ...]:
    if isinstance(values, int) and not isinstance(values, bool):
        values = (values,)
    if not isinstance(values, Sequence) or (not values and not allow_empty):
        raise ModelError(f"{name} must be a sequence of positive ints; got {values!r}")
    return tuple(_validate_int(v, name=name, minimum=1) for v in values)


def _validate_rate(value, *, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ModelError(f"{name} must be a float in [0, 1); got {value!r}")
    return float(value)


def _validate_activation(value) -> str:
    try:
        keras.activations.get(value)
    except (ValueError, TypeError):
        raise ModelError(
            f"activation must be a Keras activation name such as 'relu', 'elu', 'gelu'; "
            f"got {value!r}"
        ) from None
    return value


def _validate_backbone(*, input_shape, filters, convs_per_stage, kernel_size, pooling, head, name):
    filters = _validate_ints(filters, name="filters", allow_empty=False)
    convs_per_stage = _validate_int(convs_per_stage, name="convs_per_stage", minimum=1)
    kernel_size = _validate_int(kernel_size, name="kernel_size", minimum=1)
    pooling = look_up_option(pooling, POOLING, name="pooling", error=ModelError)
    head = look_up_option(head, HEADS, name="head", error=ModelError)
    shape = _validate_input_shape(input_shape, spatial_none=head == "gap", name=name)
    smallest = 2 ** len(filters)
    for s in shape[:2]:
        if s is not None and s < smallest:
            raise ModelError(
                f"input_shape={shape!r} is too small for {len(filters)} pooling stages "
                f"(filters={filters!r}): H and W must be at least {smallest}"
            )
    return shape, filters, convs_per_stage, kernel_size, pooling, head


def _input(shape, *, name: str, metadata: dict):
    inputs = keras.Input(shape=shape, name=f"{name}_input")
    x = SciconvMetadata(metadata, name=f"{name}_metadata")(inputs)
    return inputs, x


def _base_metadata(task: str, shape: tuple, architecture: dict) -> dict:
    return {
        "task": task,
        "input_channels": shape[2],
        "input_shape": list(shape),
        "architecture": architecture,
        "sciconv_version": __version__,
    }


def _conv_pool_architecture(
    builder: str,
    *,
    filters,
    convs_per_stage,
    kernel_size,
    pooling,
    batch_norm,
    activation,
    head,
    dense,
    dropout,
    invariant,
    input_pool=1,
) -> dict:
    """Validate the head arguments of a conv-pool model; return its ``architecture`` record."""
    dense = _validate_ints(dense, name="dense", allow_empty=True)
    dropout = _validate_rate(dropout, name="dropout")
    activation = _validate_activation(activation)
    invariant = look_up_option(invariant, INVARIANCES, name="invariant", error=ModelError)
    arch = dict(
        builder=builder,
        filters=list(filters),
        convs_per_stage=convs_per_stage,
        kernel_size=kernel_size,
        pooling=pooling,
        batch_norm=bool(batch_norm),
        activation=activation,
        head=head,
        dense=list(dense),
        dropout=dropout,
    )
    if invariant is not None:  # recorded only when set: older records rebuild unchanged
        arch["invariant"] = invariant
    if input_pool > 1:  # likewise
        arch["input_pool"] = int(input_pool)
    return arch


#: ``input_pool="auto"`` bins inputs whose larger side exceeds this down to at most it.
AUTO_INPUT_SIDE = 128


def _resolve_input_pool(input_pool, shape: tuple, filters) -> int:
    """``input_pool`` as an int: ``"auto"`` is the smallest power of two that brings the
    larger known side to :data:`AUTO_INPUT_SIDE` or less (1 for inputs of any size)."""
    sides = [s for s in shape[:2] if s is not None]
    if isinstance(input_pool, str):
        look_up_option(input_pool, ("auto",), name="input_pool", error=ModelError)
        k = 1
        while sides and max(sides) / k > AUTO_INPUT_SIDE:
            k *= 2
        return k
    k = _validate_int(input_pool, name="input_pool", minimum=1)
    if k > 1 and len(sides) < 2:
        raise ModelError("input_pool > 1 needs a known input height and width")
    smallest = 2 ** len(filters) * k
    if any(s < smallest for s in sides):
        raise ModelError(
            f"input_pool={k} leaves an input of {tuple(shape[:2])} too small for "
            f"{len(filters)} pooling stages: H and W must be at least {smallest}"
        )
    return k


def _conv_pool_model(shape: tuple, meta: dict, *, make_head, name: str, **head_kwargs):
    """Input + metadata, :func:`conv_pool_stack`, then ``make_head`` (classifier, regressor)."""
    arch = meta["architecture"]
    inputs, x = _input(shape, name=name, metadata=meta)
    transforms = None
    if arch.get("invariant") == "d4":  # before the binning: each copy is binned on its own grid,
        # so a side that k does not divide (edge rows dropped) keeps the model exactly invariant
        transforms = d4_elements(shape[0], shape[1])
        x = D4Stack(transforms, name=f"{name}_d4_stack")(x)
    if arch.get("input_pool", 1) > 1:  # k x k bins of a large cutout (module notes)
        k = int(arch["input_pool"])
        x = keras.layers.AveragePooling2D(k, name=f"{name}_input_pool")(x)
    x = conv_pool_stack(
        x,
        filters=tuple(arch["filters"]),
        convs_per_stage=arch["convs_per_stage"],
        kernel_size=arch["kernel_size"],
        pooling=arch["pooling"],
        batch_norm=arch["batch_norm"],
        activation=arch["activation"],
        name=name,
    )
    outputs = make_head(
        x,
        head=arch["head"],
        dense=tuple(arch["dense"]),
        dropout=arch["dropout"],
        activation=arch["activation"],
        name=name,
        pool_transforms=transforms,
        **head_kwargs,
    )
    return keras.Model(inputs, outputs, name=name)


# --------------------------------------------------------------------------- builders


def classifier(
    input_shape: Sequence[int | None],
    num_classes: int,
    *,
    filters: Sequence[int] = (32, 64, 128),
    convs_per_stage: int = 1,
    kernel_size: int = 3,
    pooling: str = "max",
    batch_norm: bool = False,
    activation: str = "relu",
    head: str = "flatten",
    dense: Sequence[int] = (128,),
    dropout: float = 0.0,
    multilabel: bool = False,
    invariant: str | None = None,
    input_pool: int | str = "auto",
    name: str = "classifier",
) -> keras.Model:
    """Conv-pool-dense image classifier (softmax over classes, or sigmoid per class).

    Parameters
    ----------
    input_shape : tuple
        ``(H, W, C)``. With ``head="gap"`` H and W may be None (any size).
    num_classes : int
        Number of classes (>= 2; >= 1 with ``multilabel=True``).
    filters : sequence of int
        Channels of each conv-pool stage; each stage halves H and W.
    convs_per_stage : int
        Convolutions per stage.
    kernel_size : int
        Convolution kernel size.
    pooling : {"max", "avg"}
        MaxPooling2D or AveragePooling2D after every stage.
    batch_norm : bool
        BatchNormalization after every convolution.
    activation : str
        Activation of the convolutions and hidden dense layers.
    head : {"flatten", "gap"}
        Flatten the last feature map, or global-average-pool it.
    dense : sequence of int
        Hidden dense layers of the head.
    dropout : float
        Dropout rate in the head. Default 0: on a few hundred cutouts trained with D4
        augmentation (what :func:`sciconv.training.fit` does for sky cutouts) a head dropout of
        0.3 kept the loss at chance level longer (disks against spirals, 30 epochs: mean ROC
        AUC 0.74 over 3 seeds with 0.3, 0.86 over 5 without); models saved with a dropout keep
        it.
    multilabel : bool
        Independent sigmoid outputs (several labels per image) instead of a softmax.
    invariant : {None, "d4"}
        ``"d4"``: exactly invariant to flips and 90° rotations. The conv stack runs on the 8
        transformed copies of each image (layer ``{name}_d4_stack``, one batch of ``8 N``) and
        their flattened or pooled features are averaged (``{name}_head_d4_pool``) before the
        dense layers (see :mod:`sciconv.models.invariant`); 8 times the conv compute, the same
        weights. A non-square ``input_shape`` uses the 4 transforms that keep its shape; with
        H and W None the images must be square. None (default): a plain network (trained
        with D4 augmentation on sky images by :func:`sciconv.training.fit`).
    input_pool : int or "auto"
        Average the input over ``k x k`` bins first (layer ``{name}_input_pool``), as Galaxy Zoo
        CNNs downsample their large cutouts. ``"auto"`` (default): the smallest power of two
        that brings the larger side to :data:`AUTO_INPUT_SIDE` (128) pixels or less, so inputs up
        to 128 px are untouched and a 256 px Galaxy10 cutout is binned 2 x 2. Measured on
        Galaxy10-like simulated composites (disks against spirals, 400 training images,
        ``benchmarks/bench_small_galaxies.py --size 256 --upsample 4``): ROC AUC 0.70 at the full
        256 px against 0.99 binned (see ``benchmarks/README.md``). 1 keeps every pixel.
    name : str
        Model name and layer-name prefix: a non-empty str without "/" (Keras refuses it).

    Returns
    -------
    keras.Model
        Uncompiled; outputs ``(N, num_classes)`` float32 probabilities. Metadata: ``task``
        (``"classification"`` or ``"multilabel"``), ``num_classes``, ``input_channels``.

    Raises
    ------
    ModelError
        For an invalid argument (the message names it and what is allowed).

    Examples
    --------
    >>> from sciconv.models import classifier
    >>> model = classifier((64, 64, 1), 3, filters=(8, 16), pooling="avg")
    >>> model.get_layer("classifier_stage1_pool").__class__.__name__
    'AveragePooling2D'
    >>> model.output_shape
    (None, 3)
    >>> classifier((32, 32, 1), 2, filters=(4,), invariant="d4").get_layer(
    ...     "classifier_head_d4_pool").elements
    8
    """
    name = _validate_name(name)
    shape, filters, convs_per_stage, kernel_size, pooling, head = _validate_backbone(
        input_shape=input_shape,
        filters=filters,
        convs_per_stage=convs_per_stage,
        kernel_size=kernel_size,
        pooling=pooling,
        head=head,
        name="classifier",
    )
    num_classes = _validate_int(num_classes, name="num_classes", minimum=1 if multilabel else 2)
    architecture = _conv_pool_architecture(
        "classifier",
        filters=filters,
        convs_per_stage=convs_per_stage,
        kernel_size=kernel_size,
        pooling=pooling,
        batch_norm=batch_norm,
        activation=activation,
        head=head,
        dense=dense,
        dropout=dropout,
        invariant=invariant,
        input_pool=_resolve_input_pool(input_pool, shape, filters),
    )
    architecture["multilabel"] = bool(multilabel)
    meta = _base_metadata("multilabel" if multilabel else "classification", shape, architecture)
    meta["num_classes"] = num_classes
    return _conv_pool_model(
        shape,
        meta,
        make_head=classification_head,
        name=name,
        num_classes=num_classes,
        multilabel=bool(multilabel),
    )


def regressor(
    input_shape: Sequence[int | None],
    outputs: int = 1,
    *,
    filters: Sequence[int] = (32, 64, 128),
    convs_per_stage: int = 1,
    kernel_size: int = 3,
    pooling: str = "max",
    batch_norm: bool = False,
    activation: str = "relu",
    head: str = "gap",
    dense: Sequence[int] = (128,),
    dropout: float = 0.0,
    uncertainty: bool = False,
    invariant: str | None = None,
    input_pool: int | str = "auto",
    name: str = "regressor",
) -> keras.Model:
    """Conv-pool-dense regressor with linear outputs (optionally mean and log-variance).

    Parameters
    ----------
    input_shape : tuple
        ``(H, W, C)``; H and W may be None with ``head="gap"`` (the default).
    outputs : int
        Number of continuous targets.
    uncertainty : bool
        Also predict a log-variance per target: the output is ``(N, 2 * outputs)`` holding
        ``[mean, log_var]``; :func:`sciconv.training.fit` then trains it with
        :func:`sciconv.losses.gaussian_nll` and ``exp(0.5 * log_var)`` is the 1-sigma error bar.
    invariant : {None, "d4"}
        As in :func:`classifier`: only for targets that do not change under flips and 90°
        rotations (a flux, a size, a redshift; not a position angle).
    filters, convs_per_stage, kernel_size, pooling, batch_norm, activation, head, dense, dropout
        As in :func:`classifier`.
    input_pool : int or "auto"
        As in :func:`classifier` (large inputs binned to at most 128 px by default).
    name : str
        Model name and layer-name prefix: a non-empty str without "/" (Keras refuses it).

    Returns
    -------
    keras.Model
        Uncompiled; metadata ``task="regression"``, ``outputs``, ``uncertainty``. Its last
        layer, :class:`~sciconv.models.layers.TargetScale` (``{name}_head_target_scale``), gives
        the outputs in the targets' units: :func:`sciconv.training.fit` sets it from the
        training targets; with Keras' own ``model.fit`` call its ``adapt(y_train)`` first.

    Examples
    --------
    >>> from sciconv.models import regressor
    >>> model = regressor((32, 32, 1), 2, filters=(4, 8), uncertainty=True)
    >>> model.output_shape
    (None, 4)
    """
    name = _validate_name(name)
    shape, filters, convs_per_stage, kernel_size, pooling, head = _validate_backbone(
        input_shape=input_shape,
        filters=filters,
        convs_per_stage=convs_per_stage,
        kernel_size=kernel_size,
        pooling=pooling,
        head=head,
        name="regressor",
    )
    n_out = _validate_int(outputs, name="outputs", minimum=1)
    architecture = _conv_pool_architecture(
        "regressor",
        filters=filters,
        convs_per_stage=convs_per_stage,
        kernel_size=kernel_size,
        pooling=pooling,
        batch_norm=batch_norm,
        activation=activation,
        head=head,
        dense=dense,
        dropout=dropout,
        invariant=invariant,
        input_pool=_resolve_input_pool(input_pool, shape, filters),
    )
    meta = _base_metadata("regression", shape, architecture)
    meta.update(outputs=n_out, uncertainty=bool(uncertainty))
    return _conv_pool_model(
        shape,
        meta,
        make_head=regression_head,
        name=name,
        outputs=n_out,
        uncertainty=bool(uncertainty),
    )


def segmenter(
    input_shape: Sequence[int | None] = (None, None, 1),
    num_classes: int = 2,
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
    instance_output: str | None = None,
    name: str = "segmenter",
) -> keras.Model:
    """U-Net for per-pixel classification (semantic segmentation).

    Parameters
    ----------
    input_shape : tuple
        ``(H, W, C)``; H and W may be None (any size). Known H and W must be multiples of
        ``2**depth``; with None the model checks the size whenever Keras knows it at trace time,
        and :func:`check_input_shape` checks a shape explicitly. The divisor is stored as
        ``get_metadata(model)["divisor"]`` and inference pads images to a multiple of it.
    num_classes : int
        Classes including background (2: background/foreground; 3: background/interior/boundary).
    depth : int
        Number of down-sampling levels.
    filters : int
        Channels of the first level (doubled at each level down).
    convs_per_stage, kernel_size, batch_norm, activation, pooling
        As in :func:`classifier` (two convolutions per level by default, with BatchNorm).
    upsampling : {"transpose", "bilinear"}
        Conv2DTranspose, or bilinear UpSampling2D followed by a convolution.
    dropout : float
        Dropout at the bottleneck.
    instance_output : {None, "distance", "boundary"}
        Add a second ``(N, H, W, 1)`` output for instance separation (a distance map or a boundary
        probability); the model then has two outputs, which ``fit`` trains and ``model.predict``
        gives; sciconv's predict paths take one-output models (``predict_tiled`` says how to
        predict the first).
    name : str
        Model name and layer-name prefix: a non-empty str without "/" (Keras refuses it).

    Returns
    -------
    keras.Model
        Uncompiled; outputs ``(N, H, W, num_classes)`` float32 softmax probabilities. Metadata:
        ``task="segmentation"``, ``num_classes``, ``divisor`` (``2**depth``), ``input_channels``.

    Raises
    ------
    ModelError
        For an invalid argument, H/W not multiples of ``2**depth``, or a ``depth`` and
        ``filters`` that would make more than 500 million parameters (checked
        before any layer allocates its weights).

    Examples
    --------
    >>> from sciconv.models import segmenter
    >>> model = segmenter((None, None, 1), num_classes=3, depth=2, filters=4)
    >>> model.output_shape
    (None, None, None, 3)
    >>> segmenter((30, 32, 1), depth=2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sciconv.errors.ModelError: input_shape=(30, 32, 1): H and W must be multiples of ...
    """
    name = _validate_name(name)
    shape = _validate_input_shape(input_shape, spatial_none=True, name="segmenter")
    depth = _validate_int(depth, name="depth", minimum=1)
    n_filters = _validate_int(filters, name="filters", minimum=1)
    convs_per_stage = _validate_int(convs_per_stage, name="convs_per_stage", minimum=1)
    kernel_size = _validate_int(kernel_size, name="kernel_size", minimum=1)
    num_classes = _validate_int(num_classes, name="num_classes", minimum=2)
    upsampling = look_up_option(upsampling, UPSAMPLING, name="upsampling", error=ModelError)
    pooling = look_up_option(pooling, POOLING, name="pooling", error=ModelError)
    instance_output = look_up_option(
        instance_output, INSTANCE_OUTPUTS, name="instance_output", error=ModelError
    )
    dropout = _validate_rate(dropout, name="dropout")
    activation = _validate_activation(activation)
    _check_unet_size(shape[-1], depth, n_filters, convs_per_stage, kernel_size)
    divisor = 2**depth
    if any(s is not None and s % divisor for s in shape[:2]):
        raise ModelError(
            f"input_shape={shape!r}: H and W must be multiples of 2**depth = {divisor} "
            f"(depth={depth}); use None for any size, or a size such as "
            f"{(-(-(shape[0] or divisor) // divisor)) * divisor}"
        )
    architecture = dict(
        builder="segmenter",
        depth=depth,
        filters=n_filters,
        convs_per_stage=convs_per_stage,
        kernel_size=kernel_size,
        batch_norm=bool(batch_norm),
        activation=activation,
        upsampling=upsampling,
        pooling=pooling,
        dropout=dropout,
    )
    meta = _base_metadata("segmentation", shape, architecture)
    meta.update(num_classes=num_classes, divisor=divisor)
    if instance_output is not None:
        meta["instance_output"] = instance_output
    inputs, x = _input(shape, name=name, metadata=meta)
    x = unet(
        x,
        depth=depth,
        filters=n_filters,
        convs_per_stage=convs_per_stage,
        kernel_size=kernel_size,
        batch_norm=bool(batch_norm),
        activation=activation,
        upsampling=upsampling,
        pooling=pooling,
        dropout=dropout,
        name=name,
    )
    outputs = segmentation_head(x, num_classes, instance_output=instance_output, name=name)
    return keras.Model(inputs, outputs, name=name)


MAX_PARAMETERS = 500_000_000
"""The most parameters a builder makes (2 GB of float32 weights): a larger request, such as
``segmenter(depth=20)``, is refused before any layer allocates its weights."""


def _unet_parameters(channels: int, depth: int, filters: int, convs: int, kernel: int) -> int:
    """The U-Net's convolution weights (a slight underestimate: biases, norms, up-sampling)."""
    total, cin = 0, channels
    for level in range(depth + 1):
        f = filters * 2**level
        total += kernel * kernel * (cin * f + (convs - 1) * f * f)
        cin = f
    for level in range(depth):
        f = filters * 2**level
        total += kernel * kernel * (convs + 1) * f * f
    return total


def _check_unet_size(channels, depth: int, filters: int, convs: int, kernel: int) -> None:
    # any depth >= 40 is far over the limit: the estimate need not count its 2**depth filters
    n = _unet_parameters(int(channels or 1), min(depth, 40), filters, convs, kernel)
    if n > MAX_PARAMETERS:
        raise ModelError(
            f"segmenter(depth={depth}, filters={filters}, convs_per_stage={convs}, "
            f"kernel_size={kernel}) would have about {n / 1e6:,.0f} million parameters (its "
            f"bottleneck {filters} * 2**{depth} filters wide), over the limit of "
            f"{MAX_PARAMETERS // 1_000_000} million: it would not fit in memory. Use a smaller "
            "depth (4 or 5 is usual) or fewer filters"
        )


# --------------------------------------------------------------------------- shape check


def check_input_shape(model: keras.Model, shape: Sequence[int]) -> None:
    """Raise :class:`~sciconv.errors.ModelError` if an image of ``shape`` cannot go through
    ``model``.

    A U-Net built with ``depth=d`` accepts any H and W that are multiples of ``2**d`` (recorded as
    ``get_metadata(model)["divisor"]``); :func:`sciconv.inference.predict_tiled` pads images to
    that multiple itself. The check also runs inside the model whenever the spatial size is known
    when Keras traces it.

    Parameters
    ----------
    model : keras.Model
        A sciconv model.
    shape : sequence of int
        ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``.

    Examples
    --------
    >>> from sciconv.models import check_input_shape, segmenter
    >>> model = segmenter((None, None, 1), depth=2, filters=2)
    >>> check_input_shape(model, (64, 48, 1))
    >>> check_input_shape(model, (64, 50, 1))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sciconv.errors.ModelError: input of shape (64, 50, 1): H and W must be multiples of 4 ...
    """
    shape = tuple(int(s) for s in shape)
    hw = shape[-3:-1] if len(shape) >= 3 else shape
    meta = get_metadata(model)
    divisor = int(meta.get("divisor", 1))
    if any(s % divisor for s in hw):
        raise ModelError(
            f"input of shape {shape}: H and W must be multiples of {divisor} for model "
            f"{model.name!r} (a U-Net of depth {divisor.bit_length() - 1}); pad or crop the image"
        )
    channels = meta.get("input_channels")
    if len(shape) >= 3 and channels is not None and shape[-1] != channels:
        raise ModelError(
            f"input of shape {shape}: model {model.name!r} expects {channels} channel(s); "
            f"got {shape[-1]}"
        )
