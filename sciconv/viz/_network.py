"""Inside a network: feature maps, convolution kernels and Grad-CAM.

TensorFlow and Keras are imported only when one of these functions runs, so ``import sciconv.viz``
stays light.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from sciconv._validation import look_up_option
from sciconv.errors import ConfigError, InvalidImageError, ModelError
from sciconv.io import as_array
from sciconv.viz._display import draw_image, resolve_origin

if TYPE_CHECKING:
    from sciconv.preprocess import NormSpec

__all__ = ["feature_maps", "filters", "grad_cam", "grad_cam_heatmap", "short_layer_label"]


# --------------------------------------------------------------------------------------------
# helpers: the input batch, layers, sub-models
# --------------------------------------------------------------------------------------------
def _batch(model, image, normalize) -> np.ndarray:
    """Return a float32 batch of one ``(1, H, W, C)`` ready for ``model``."""
    x = np.asarray(as_array(image, load=True), dtype=np.float32)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise InvalidImageError(f"image must be (H, W), (H, W, C) or (1, H, W, C); got {x.shape}")
    if normalize is not None:
        from sciconv import models
        from sciconv.preprocess import normalize_spec, resolve_normalization

        spec = resolve_normalization(
            normalize, recorded=models.get_metadata(model).get("normalization"), error=ConfigError
        )
        x = normalize_spec(x[0], spec)[None]
    expected = getattr(model, "input_shape", None)
    if isinstance(expected, tuple) and len(expected) == 4:
        want = expected[1:]
        got = x.shape[1:]
        if any(w is not None and w != g for w, g in zip(want, got)):
            raise ModelError(f"model {model.name!r} expects inputs {want}; image has {got}")
    return x


def _conv_layers(model) -> list:
    import keras

    return [
        layer
        for layer in model.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.SeparableConv2D))
        and not isinstance(layer, keras.layers.Conv2DTranspose)
    ]


def _get_layer(model, layer):
    """Return a layer of ``model`` given by name, index or object; errors list the names."""
    import keras

    if isinstance(layer, keras.layers.Layer):
        return layer
    if isinstance(layer, int) and not isinstance(layer, bool):
        try:
            return model.layers[layer]
        except IndexError:
            raise ModelError(
                f"layer index {layer} is out of range; model {model.name!r} has "
                f"{len(model.layers)} layers"
            ) from None
    names = [lay.name for lay in model.layers]
    return model.get_layer(look_up_option(layer, names, name="layer", error=ModelError))


def _submodel(model, outputs):
    import keras

    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ModelError(
            f"model {model.name!r} has no defined inputs (subclassed or unbuilt); use a "
            "functional or Sequential model that has been called once"
        )
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs)


def short_layer_label(name: str, shape: tuple[int, ...], width: int = 16) -> str:
    """A feature-map row label that fits a row: the layer name cut in the middle to ``width``
    characters, and the map's size.

    Examples
    --------
    >>> print(short_layer_label("classifier_stage2_relu1", (8, 8, 16)))
    classif…e2_relu1
    8×8×16
    """
    if len(name) > width:
        half = (width - 1) // 2
        name = f"{name[:half]}…{name[-(width - 1 - half) :]}"
    return f"{name}\n{'×'.join(str(n) for n in shape)}"


def _map_grid(
    fig, maps: np.ndarray, *, rows: int, row: int, ncols: int, label: str, cmap: str, origin: str
):
    """Draw up to ``ncols`` maps (H, W, n) in one row of a grid of ``rows`` rows."""
    n = min(ncols, maps.shape[-1])
    for j in range(n):
        ax = fig.add_subplot(rows, ncols, row * ncols + j + 1)
        ax.imshow(maps[..., j], cmap=cmap, origin=origin, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if j == 0:
            ax.set_ylabel(label, fontsize=7)
    return n


# --------------------------------------------------------------------------------------------
# feature maps and kernels
# --------------------------------------------------------------------------------------------
def feature_maps(
    model: Any,
    image: Any,
    *,
    layers: Sequence[str | int] | None = None,
    max_maps: int = 16,
    normalize: str | Mapping | NormSpec | None = "model",
    cmap: str = "viridis",
    origin: str | None = "auto",
    fig: Any = None,
) -> Figure:
    """Show what the chosen layers of ``model`` output for one image: one row per layer.

    Parameters
    ----------
    model : keras.Model
        A functional or Sequential model.
    image : GridImage or array_like
        One image ``(H, W, C)`` (or ``(1, H, W, C)``) as the model expects it.
    layers : sequence of str or int, optional
        Layer names (or indices) with 4-D outputs. Default: every convolution layer.
    max_maps : int
        At most this many channels per layer are drawn (the first ones).
    normalize : None, str, dict or NormSpec
        ``"model"`` (default: raw pixels in, as everywhere in sciconv) applies the normalization
        recorded with the model (else the shared default); ``None`` feeds ``image`` as it is
        (already preprocessed: before, the default, so raw pixels reached the network
        unnormalized and its heatmaps saturated, often to zero); ``"default"`` the shared
        default; a method name (``"zscale"``, ...), a spec dict or a
        :class:`~sciconv.preprocess.NormSpec` applies that normalization. The grammar of
        :func:`sciconv.preprocess.resolve_normalization`, as everywhere in sciconv.
    cmap : str
    origin : {"auto", "upper", "lower"} or None
        Where row 0 of every map is drawn, as for :func:`sciconv.viz.show`: ``"auto"`` (default)
        draws FITS images and images with a WCS with row 0 at the bottom, arrays, TIFF and PNG
        with row 0 at the top, so the maps face the way the image does.
    fig : matplotlib Figure or SubFigure, optional
        Draw the grid into this (empty) figure or subfigure, e.g. one panel of a paper
        figure (``Figure.subfigures``); default: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into. ``fig.activations`` maps each layer name to its
        ``(h, w, channels)`` output array.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from sciconv.viz import feature_maps
    >>> inp = keras.Input((16, 16, 1))
    >>> out = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    >>> fig = feature_maps(keras.Model(inp, out), np.zeros((16, 16, 1)))
    >>> fig.activations["conv"].shape
    (16, 16, 4)
    >>> fig.axes[0].images[0].origin  # an array: row 0 at the top
    'upper'
    """
    if not isinstance(max_maps, int) or max_maps < 1:
        raise ConfigError(f"max_maps must be a positive int; got {max_maps!r}")
    origin = resolve_origin(origin, image)
    x = _batch(model, image, normalize)
    chosen = _conv_layers(model) if layers is None else [_get_layer(model, la) for la in layers]
    if not chosen:
        raise ModelError(f"model {model.name!r} has no convolution layers; name layers=...")
    for layer in chosen:
        shape = getattr(layer.output, "shape", ())
        if len(shape) != 4:
            raise ModelError(
                f"layer {layer.name!r} outputs shape {tuple(shape)}; feature maps need 4-D "
                "(N, H, W, C) outputs"
            )
    outs = _submodel(model, [layer.output for layer in chosen])(x, training=False)
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    acts = {layer.name: np.asarray(o, dtype=np.float32)[0] for layer, o in zip(chosen, outs)}
    ncols = min(max_maps, max(a.shape[-1] for a in acts.values()))
    if fig is None:
        fig = Figure(figsize=(1.4 * ncols + 0.6, 1.5 * len(acts) + 0.4), layout="constrained")
    for i, (name, a) in enumerate(acts.items()):
        _map_grid(
            fig,
            a,
            rows=len(acts),
            row=i,
            ncols=ncols,
            label=short_layer_label(name, a.shape),
            cmap=cmap,
            origin=origin,
        )
    fig.suptitle("feature maps")
    fig.activations = acts
    return fig


def filters(
    model: Any,
    layer: str | int,
    *,
    max_filters: int = 32,
    in_channel: int | None = None,
    cmap: str = "RdBu_r",
    fig: Any = None,
) -> Figure:
    """Show the convolution kernels of one layer, one small image per output filter.

    Parameters
    ----------
    model : keras.Model
    layer : str or int
        A convolution layer's name or index.
    max_filters : int
        At most this many filters are drawn.
    in_channel : int, optional
        Show the kernel slice for this input channel; default: the mean over input channels.
    cmap : str
        A diverging colormap centred on zero (positive weights red, negative blue).
    fig : matplotlib Figure or SubFigure, optional
        Draw into this (empty) figure or subfigure; default: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into. ``fig.kernels`` holds the drawn ``(kh, kw, n)`` array.

    Examples
    --------
    >>> import keras
    >>> from sciconv.viz import filters
    >>> inp = keras.Input((16, 16, 1))
    >>> model = keras.Model(inp, keras.layers.Conv2D(8, 3, name="conv")(inp))
    >>> filters(model, "conv").kernels.shape
    (3, 3, 8)
    """
    lay = _get_layer(model, layer)
    weights = lay.get_weights() if hasattr(lay, "get_weights") else []
    if not weights or np.asarray(weights[0]).ndim != 4:
        raise ModelError(
            f"layer {lay.name!r} is not a 2-D convolution with (kh, kw, in, out) kernels"
        )
    if not isinstance(max_filters, int) or max_filters < 1:
        raise ConfigError(f"max_filters must be a positive int; got {max_filters!r}")
    kernel = np.asarray(weights[0], dtype=np.float32)
    if in_channel is None:
        k = kernel.mean(axis=2)
    else:
        if not 0 <= in_channel < kernel.shape[2]:
            raise ConfigError(
                f"in_channel must be in 0..{kernel.shape[2] - 1} for layer {lay.name!r}; got "
                f"{in_channel!r}"
            )
        k = kernel[:, :, in_channel, :]
    k = k[..., :max_filters]
    n = k.shape[-1]
    ncols = min(8, n)
    nrows = int(np.ceil(n / ncols))
    lim = float(np.abs(k).max()) or 1.0
    if fig is None:
        fig = Figure(figsize=(1.2 * ncols + 0.8, 1.2 * nrows + 0.6), layout="constrained")
    im = None
    for j in range(n):
        ax = fig.add_subplot(nrows, ncols, j + 1)
        im = ax.imshow(k[..., j], cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(str(j), fontsize=7)
    fig.colorbar(im, ax=fig.axes[-n:], shrink=0.8)
    fig.suptitle(f"{lay.name}: {kernel.shape[0]}×{kernel.shape[1]} kernels")
    fig.kernels = k
    return fig


# --------------------------------------------------------------------------------------------
# Grad-CAM
# --------------------------------------------------------------------------------------------
def _last_conv(model):
    """The last convolution layer, followed through a BatchNorm / activation right after it."""
    import keras

    convs = _conv_layers(model)
    if not convs:
        raise ModelError(
            f"model {model.name!r} has no convolution layer for Grad-CAM; pass layer=..."
        )
    layers = list(model.layers)
    i = layers.index(convs[-1])
    follow = (
        keras.layers.BatchNormalization,
        keras.layers.Activation,
        keras.layers.ReLU,
        keras.layers.LeakyReLU,
    )
    while i + 1 < len(layers) and isinstance(layers[i + 1], follow):
        i += 1
    return layers[i]


def _score_tensor(model):
    """The class scores before a final softmax/sigmoid (Grad-CAM's choice), else the output."""
    import keras

    last = model.layers[-1]
    act = None
    if isinstance(last, keras.layers.Softmax):
        act = "softmax"
    elif isinstance(last, keras.layers.Activation):
        act = keras.activations.serialize(last.activation)
        act = act if isinstance(act, str) else getattr(last.activation, "__name__", None)
    if act in ("softmax", "sigmoid") and len(getattr(last, "_inbound_nodes", [])) == 1:
        return last.input
    return model.outputs[0]


def grad_cam_heatmap(
    model: Any,
    image: Any,
    *,
    class_index: int | None = None,
    layer: str | int | None = None,
    normalize: str | Mapping | NormSpec | None = "model",
) -> np.ndarray:
    """Grad-CAM heatmap ``(H, W)`` in [0, 1]: where the image drove the class score up.

    The gradient of the class score with respect to a convolution layer's output, averaged over
    space, weights that layer's channels; the ReLU of the weighted sum is resized to the image.
    (Selvaraju et al. 2017.) The score is taken before a final softmax or sigmoid layer (the
    logit), as in the paper, so other classes' probabilities do not leak into the map.

    Parameters
    ----------
    model : keras.Model
        A functional or Sequential classifier (softmax, sigmoid or linear outputs).
    image : GridImage or array_like
        One image as the model expects it.
    class_index : int, optional
        The class to explain; default: the predicted class.
    layer : str or int, optional
        The convolution layer; default: the last one (its activation when one follows it).
    normalize : None, str, dict or NormSpec
        As for :func:`feature_maps`.

    Returns
    -------
    numpy.ndarray, float32 (H, W)
        0 where nothing pushed the score up, 1 at the strongest evidence.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from sciconv.viz import grad_cam_heatmap
    >>> inp = keras.Input((16, 16, 1))
    >>> x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv")(inp)
    >>> x = keras.layers.GlobalAveragePooling2D()(x)
    >>> model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x))
    >>> image = np.random.default_rng(0).random((16, 16, 1))
    >>> heat = grad_cam_heatmap(model, image)
    >>> heat.shape, bool(0.0 <= heat.min() and heat.max() <= 1.0)
    ((16, 16), True)
    """
    import tensorflow as tf

    x = _batch(model, image, normalize)
    conv = _last_conv(model) if layer is None else _get_layer(model, layer)
    if len(getattr(conv.output, "shape", ())) != 4:
        raise ModelError(f"layer {conv.name!r} has no 4-D (N, H, W, C) output for Grad-CAM")
    grad_model = _submodel(model, [conv.output, _score_tensor(model)])
    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        fmap, preds = grad_model(xt, training=False)
        fmap = tf.cast(fmap, tf.float32)
        preds = tf.cast(preds, tf.float32)
        tape.watch(fmap)
        preds = tf.reshape(preds, (1, -1))
        n_out = int(preds.shape[-1])
        if class_index is None:
            class_index = int(tf.argmax(preds[0]))
        elif not (isinstance(class_index, (int, np.integer)) and 0 <= class_index < n_out):
            raise ConfigError(f"class_index must be an int in 0..{n_out - 1}; got {class_index!r}")
        score = preds[:, int(class_index)]
    grads = tape.gradient(score, fmap)
    if grads is None:
        raise ModelError(f"the class score does not depend on layer {conv.name!r}")
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * fmap, axis=-1))[0].numpy()
    from skimage.transform import resize

    cam = resize(cam, x.shape[1:3], order=1, mode="edge", anti_aliasing=False)
    peak = float(cam.max())
    cam = cam / peak if peak > 0 else np.zeros_like(cam)
    return cam.astype(np.float32)


def grad_cam(
    model: Any,
    image: Any,
    *,
    class_index: int | None = None,
    layer: str | int | None = None,
    normalize: str | Mapping | NormSpec | None = "model",
    class_names: Sequence[str] | None = None,
    alpha: float = 0.5,
    stretch: str = "asinh",
    origin: str | None = "auto",
    cmap: str = "inferno",
    ax: Any = None,
) -> Figure:
    """Grad-CAM figure: the image, and the heatmap of :func:`grad_cam_heatmap` over it.

    Parameters
    ----------
    model, image, class_index, layer, normalize
        As for :func:`grad_cam_heatmap`.
    class_names : sequence of str, optional
        Names for the title (default: the model's recorded class names when available).
    alpha : float
        Opacity of the strongest evidence: the heatmap's opacity rises with its value
        (``alpha * heat``), so where there is no evidence the image shows bare.
    stretch : str
        Display stretch of the image (see :func:`show`).
    origin : {"auto", "upper", "lower"} or None
        Where row 0 is drawn, for the image and its heatmap alike, as for
        :func:`sciconv.viz.show`: ``"auto"`` (default) puts it at the bottom for FITS images
        and images with a WCS, at the top for arrays, TIFF and PNG.
    cmap : str
        Colormap of the heatmap; default ``"inferno"`` (perceptually uniform, readable in
        grey and by colour-blind readers, unlike ``jet``).
    ax : matplotlib Axes, optional
        Draw only the overlay panel into these axes (default: a new figure with the input
        and the overlay side by side).

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.heatmap`` is the ``(H, W)`` heatmap, ``fig.class_index`` the explained class and
        ``fig.empty`` True when the map is all zero: nothing at that layer pushed the class
        score up (the title then says so; try an earlier ``layer=``). The title gives the
        class's probability ``p`` when the model ends in a softmax or sigmoid, else its score.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from sciconv.viz import grad_cam
    >>> inp = keras.Input((16, 16, 1))
    >>> x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv")(inp)
    >>> x = keras.layers.GlobalAveragePooling2D()(x)
    >>> model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x))
    >>> image = np.random.default_rng(0).random((16, 16, 1))
    >>> fig = grad_cam(model, image, class_index=1)
    >>> fig.heatmap.shape, fig.class_index
    ((16, 16), 1)
    >>> [im.origin for im in fig.axes[1].images]  # the heatmap follows the image
    ['upper', 'upper']
    """
    origin = resolve_origin(origin, image)
    x = _batch(model, image, normalize)
    preds = np.asarray(model(x, training=False), dtype=np.float32).reshape(-1)
    if class_index is None:
        class_index = int(np.argmax(preds))
    # x is normalized already: normalizing it again would explain another image
    heat = grad_cam_heatmap(model, x, class_index=class_index, layer=layer, normalize=None)
    if class_names is None:
        try:
            from sciconv import models

            class_names = models.get_metadata(model).get("class_names")
        except Exception:  # metadata is optional here; a plain Keras model has none
            class_names = None
    name = (
        class_names[class_index]
        if class_names is not None and class_index < len(class_names)
        else f"class {class_index}"
    )
    conv = _last_conv(model) if layer is None else _get_layer(model, layer)
    empty = not float(heat.max()) > 0
    shown = x[0, ..., 0] if x.shape[-1] != 3 else x[0]
    if ax is None:
        fig = Figure(figsize=(9.0, 4.2), layout="constrained")
        ax0 = fig.add_subplot(1, 2, 1)
        draw_image(shown, ax0, stretch=stretch, cmap="gray", colorbar=False, fig=fig, origin=origin)
        ax0.set_title("input")
        ax1 = fig.add_subplot(1, 2, 2)
    else:
        fig, ax1 = ax.figure, ax
    draw_image(shown, ax1, stretch=stretch, cmap="gray", colorbar=False, fig=fig, origin=origin)
    im = ax1.imshow(
        heat,
        cmap=cmap,
        alpha=np.clip(float(alpha) * heat, 0.0, 1.0),
        vmin=0,
        vmax=1,
        origin=origin,
        interpolation="nearest",
    )
    fig.colorbar(im, ax=ax1, shrink=0.85, label="Grad-CAM (relative evidence)")
    is_prob = _score_tensor(model) is not model.outputs[0]
    value = f"p={preds[class_index]:.2f}" if is_prob else f"score {preds[class_index]:.2f}"
    if empty:
        ax1.set_title(
            f"Grad-CAM empty: no positive evidence for {name} ({value})\n"
            f"at layer {conv.name!r}; try an earlier layer=",
            fontsize=9,
        )
    else:
        ax1.set_title(f"Grad-CAM: {name} ({value})")
    fig.empty = bool(empty)
    fig.heatmap = heat
    fig.class_index = int(class_index)
    return fig
