"""Plots for scientific images and the networks that read them.

Every function here returns a :class:`matplotlib.figure.Figure` built without pyplot state, so
nothing leaks between calls, scripts can ``fig.savefig(...)`` and notebooks display the returned
figure (run ``%matplotlib inline`` once, or import pyplot, so Jupyter knows how to draw a bare
Figure). None of them calls ``plt.show()``.

- Images: :func:`show` (astronomical stretches, sky axes from a WCS), :func:`overlay_mask`,
  :func:`contours`, :func:`outlines` (instance boundaries).
- Inside a network: :func:`feature_maps`, :func:`filters`, :func:`grad_cam`
  (:func:`grad_cam_heatmap` returns the bare array).
- Training and evaluation: :func:`training_curves`, :func:`confusion_matrix`
  (:func:`confusion_counts` returns the bare counts), :func:`compare_catalogs`
  (:func:`match_catalogs` returns the bare match).

Examples
--------
>>> import numpy as np
>>> from sciconv import viz
>>> fig = viz.show(np.arange(64.0).reshape(8, 8), stretch="linear", title="ramp")
>>> fig.axes[0].get_title()
'ramp'
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from sciconv._validation import look_up_option
from sciconv.errors import ConfigError, InvalidImageError, ModelError, SciconvError

__all__ = [
    "STRETCHES",
    "compare_catalogs",
    "confusion_counts",
    "confusion_matrix",
    "contours",
    "feature_maps",
    "filters",
    "grad_cam",
    "grad_cam_heatmap",
    "match_catalogs",
    "outlines",
    "overlay_mask",
    "show",
    "training_curves",
]

#: Display stretches understood by :func:`show` and the overlay functions.
STRETCHES = ("asinh", "zscale", "percentile", "linear")


# --------------------------------------------------------------------------------------------
# private helpers: validation at the boundary
# --------------------------------------------------------------------------------------------
def _split_image(image: Any, wcs: Any) -> tuple[np.ndarray, Any]:
    """Return ``(array, wcs)`` from a GridImage-like object or an array."""
    if hasattr(image, "data") and not isinstance(image, np.ndarray):
        if wcs is None:
            wcs = getattr(image, "wcs", None)
        image = image.data
    lazy = hasattr(image, "shape") and hasattr(image, "__getitem__")
    if lazy and not isinstance(image, np.ndarray):
        image = image[tuple(slice(None) for _ in image.shape)]  # a LazyImage: read it whole
    try:
        arr = np.asarray(image, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidImageError(
            f"image must be a numeric array; got {type(image).__name__}"
        ) from exc
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != 3) or 0 in arr.shape:
        raise InvalidImageError(
            "image must be (H, W), (H, W, 1) or (H, W, 3) (RGB) to display; got shape "
            f"{arr.shape}: pick one channel first, e.g. image[..., 0]"
        )
    return arr, wcs


def _norm(arr: np.ndarray, stretch: str):
    """Return an astropy ImageNormalize for ``arr`` with limits from its finite pixels."""
    from astropy.visualization import (
        AsinhStretch,
        AsymmetricPercentileInterval,
        ImageNormalize,
        LinearStretch,
        MinMaxInterval,
        ZScaleInterval,
    )

    stretch = look_up_option(stretch, STRETCHES, name="stretch")
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        raise InvalidImageError("image has no finite pixels to display (all NaN or Inf)")
    if stretch == "zscale":
        interval, stretch_obj = ZScaleInterval(), LinearStretch()
    elif stretch == "percentile":
        interval, stretch_obj = AsymmetricPercentileInterval(1.0, 99.8), LinearStretch()
    elif stretch == "asinh":
        interval, stretch_obj = AsymmetricPercentileInterval(0.5, 99.9), AsinhStretch(a=0.1)
    else:
        interval, stretch_obj = MinMaxInterval(), LinearStretch()
    vmin, vmax = (float(v) for v in interval.get_limits(finite))
    if not vmax > vmin:  # constant image: give it a unit range so it still draws
        vmin, vmax = vmin - 0.5, vmax + 0.5
    return ImageNormalize(vmin=vmin, vmax=vmax, stretch=stretch_obj, clip=True)


def _axes(ax, wcs, *, figsize=(6.0, 5.0)):
    """Return ``(fig, ax)``: the given axes, or a new Figure (WCSAxes when ``wcs`` is given)."""
    if ax is not None:
        if hasattr(ax, "coords") and hasattr(ax, "wcs"):  # a WCSAxes made by the caller
            ax.coords[0].set_axislabel("RA")
            ax.coords[1].set_axislabel("Dec")
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    if wcs is not None:
        ax = fig.add_subplot(projection=wcs)
        ax.coords[0].set_axislabel("RA")
        ax.coords[1].set_axislabel("Dec")
        ax.coords.grid(color="white", alpha=0.3, linestyle=":")
    else:
        ax = fig.add_subplot()
        ax.set_xlabel("x [pixel]")
        ax.set_ylabel("y [pixel]")
    return fig, ax


def _draw(arr, ax, *, stretch, cmap, colorbar, fig):
    norm = _norm(arr, stretch)
    if arr.ndim == 3:  # RGB: one stretch for all channels
        rgb = np.nan_to_num(np.asarray(norm(arr)), nan=0.0)
        im = ax.imshow(np.clip(rgb, 0.0, 1.0), origin="lower", interpolation="nearest")
    else:
        im = ax.imshow(arr, origin="lower", norm=norm, cmap=cmap, interpolation="nearest")
        if colorbar:
            fig.colorbar(im, ax=ax, shrink=0.85)
    return im


def _as_labels(labels: Any, shape: tuple[int, int], *, name: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 3 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.shape != shape:
        raise InvalidImageError(f"{name} must have the image's shape {shape}; got {labels.shape}")
    if labels.dtype == bool:
        return labels.astype(np.int32)
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise InvalidImageError(f"{name} must hold integer ids; got dtype {labels.dtype}")
    return labels.astype(np.int64)


# --------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------
def show(
    image: Any,
    *,
    stretch: str = "asinh",
    wcs: Any = None,
    ax: Any = None,
    title: str | None = None,
    cmap: str = "gray",
    colorbar: bool = True,
) -> Figure:
    """Display an image with an astronomical stretch, on sky axes when it has a WCS.

    Parameters
    ----------
    image : GridImage or array_like
        ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` (RGB). A ``GridImage`` brings its own WCS.
        NaN pixels are drawn blank and ignored by the stretch.
    stretch : {"asinh", "zscale", "percentile", "linear"}
        ``"asinh"``: 0.5–99.9 percentile limits and an asinh stretch (faint structure and bright
        cores together); ``"zscale"``: IRAF's zscale limits, linear; ``"percentile"``: 1–99.8
        percentile limits, linear; ``"linear"``: min to max.
    wcs : astropy.wcs.WCS, optional
        Celestial WCS; the axes then show RA/Dec (astropy WCSAxes). Ignored when ``ax`` is given.
    ax : matplotlib Axes, optional
        Draw into these axes instead of a new figure.
    title : str, optional
    cmap : str
        Colormap for single-channel images.
    colorbar : bool
        Add a colour bar (single-channel images).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:32, :32]
    >>> blob = np.exp(-((yy - 16) ** 2 + (xx - 10) ** 2) / 8.0)
    >>> fig = show(blob, stretch="zscale", title="blob")
    >>> fig.axes[0].images[0].get_array().shape
    (32, 32)
    """
    arr, wcs = _split_image(image, wcs)
    fig, ax = _axes(ax, wcs)
    _draw(arr, ax, stretch=stretch, cmap=cmap, colorbar=colorbar, fig=fig)
    if title is not None:
        ax.set_title(title)
    return fig


def overlay_mask(
    image: Any,
    mask: Any,
    *,
    alpha: float = 0.4,
    color: Any = "red",
    stretch: str = "asinh",
    wcs: Any = None,
    ax: Any = None,
    title: str | None = None,
    cmap: str = "gray",
) -> Figure:
    """Draw a mask (boolean, or integer class ids) semi-transparently over an image.

    Parameters
    ----------
    image : GridImage or array_like
        As for :func:`show`.
    mask : array_like, (H, W)
        Boolean mask or integer class ids (0 = background, left transparent). A binary mask is
        drawn in ``color``; several classes get one colour each (``tab10``).
    alpha : float
        Opacity of the mask.
    color : matplotlib colour
        Colour of a binary mask.
    stretch, wcs, ax, title, cmap
        As for :func:`show`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).normal(size=(16, 16))
    >>> fig = overlay_mask(img, img > 1, title="mask")
    >>> len(fig.axes[0].images)
    2
    """
    from matplotlib import colors as mcolors

    arr, wcs = _split_image(image, wcs)
    ids = _as_labels(mask, arr.shape[:2], name="mask")
    fig, ax = _axes(ax, wcs)
    _draw(arr, ax, stretch=stretch, cmap=cmap, colorbar=False, fig=fig)
    classes = np.unique(ids[ids > 0])
    rgba = np.zeros((*ids.shape, 4), dtype=np.float32)
    if classes.size <= 1:
        rgba[ids > 0] = mcolors.to_rgba(color, alpha)
    else:
        from matplotlib import colormaps

        tab = colormaps["tab10"]
        for i, k in enumerate(classes):
            rgba[ids == k] = (*tab(i % 10)[:3], alpha)
    ax.imshow(rgba, origin="lower", interpolation="nearest")
    if title is not None:
        ax.set_title(title)
    return fig


def contours(
    image: Any,
    data: Any = None,
    *,
    levels: int | Sequence[float] = (0.5,),
    colors: Any = "cyan",
    linewidths: float = 1.0,
    stretch: str = "asinh",
    wcs: Any = None,
    ax: Any = None,
    title: str | None = None,
    cmap: str = "gray",
) -> Figure:
    """Draw contours of ``data`` (a probability map, a model image) over ``image``.

    Parameters
    ----------
    image : GridImage or array_like
        The background image, as for :func:`show`.
    data : array_like, (H, W) or (H, W, 1), optional
        The field to contour; ``None`` contours ``image`` itself.
    levels : int or sequence of float
        Contour levels (default ``(0.5,)``, the usual probability threshold), or their number.
    colors, linewidths
        Passed to :meth:`matplotlib.axes.Axes.contour`.
    stretch, wcs, ax, title, cmap
        As for :func:`show`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:32, :32]
    >>> prob = np.exp(-((yy - 16) ** 2 + (xx - 16) ** 2) / 30.0)
    >>> fig = contours(prob, prob, levels=(0.5,))
    >>> len(fig.axes[0].collections) >= 1
    True
    """
    arr, wcs = _split_image(image, wcs)
    if data is None:
        field = arr if arr.ndim == 2 else arr.mean(axis=-1)
    else:
        field, _ = _split_image(data, None)
        if field.ndim != 2 or field.shape != arr.shape[:2]:
            raise InvalidImageError(
                f"data to contour must be one channel with the image's shape {arr.shape[:2]}; "
                f"got {field.shape}"
            )
    fig, ax = _axes(ax, wcs)
    _draw(arr, ax, stretch=stretch, cmap=cmap, colorbar=False, fig=fig)
    ax.contour(field, levels=levels, colors=colors, linewidths=linewidths, origin="lower")
    if title is not None:
        ax.set_title(title)
    return fig


def outlines(
    image: Any,
    labels: Any,
    *,
    color: Any = "yellow",
    mode: str = "inner",
    thickness: int | None = None,
    stretch: str = "asinh",
    wcs: Any = None,
    ax: Any = None,
    title: str | None = None,
    cmap: str = "gray",
) -> Figure:
    """Draw the outline of every instance in ``labels`` over ``image``.

    Touching instances keep their shared boundary, so separated objects look separated.

    Parameters
    ----------
    image : GridImage or array_like
        As for :func:`show`.
    labels : array_like of int, (H, W)
        Instance labels, 0 = background.
    color : matplotlib colour
    mode : {"inner", "outer", "thick", "thin"}
        Boundary mode of :func:`skimage.segmentation.find_boundaries`.
    thickness : int, optional
        Line width in image pixels; default grows with the image (1 px up to 300 px, then one
        more per 300 px) so outlines stay visible on large images.
    stretch, wcs, ax, title, cmap
        As for :func:`show`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((20, 20), dtype=np.int32)
    >>> labels[2:8, 2:8], labels[10:18, 5:15] = 1, 2
    >>> fig = outlines(np.ones((20, 20)), labels, stretch="linear")
    >>> len(fig.axes[0].images)
    2
    """
    from matplotlib import colors as mcolors
    from skimage.segmentation import find_boundaries

    arr, wcs = _split_image(image, wcs)
    ids = _as_labels(labels, arr.shape[:2], name="labels")
    mode = look_up_option(mode, ("inner", "outer", "thick", "thin"), name="mode")
    edges = find_boundaries(ids, mode=mode)
    if thickness is None:
        thickness = 1 + max(ids.shape) // 300
    if not isinstance(thickness, (int, np.integer)) or thickness < 1:
        raise ConfigError(f"thickness must be a positive int; got {thickness!r}")
    if thickness > 1:
        from scipy.ndimage import binary_dilation

        edges = binary_dilation(edges, iterations=int(thickness) - 1)
        if mode == "inner":  # stay inside the objects
            edges &= ids > 0
    fig, ax = _axes(ax, wcs)
    _draw(arr, ax, stretch=stretch, cmap=cmap, colorbar=False, fig=fig)
    rgba = np.zeros((*ids.shape, 4), dtype=np.float32)
    rgba[edges] = mcolors.to_rgba(color, 1.0)
    ax.imshow(rgba, origin="lower", interpolation="nearest")
    if title is not None:
        ax.set_title(title)
    return fig


# --------------------------------------------------------------------------------------------
# inside a network
# --------------------------------------------------------------------------------------------
def _batch(model, image, normalize) -> np.ndarray:
    """Return a float32 batch of one ``(1, H, W, C)`` ready for ``model``."""
    if hasattr(image, "data") and not isinstance(image, np.ndarray):
        image = image.data
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise InvalidImageError(f"image must be (H, W), (H, W, C) or (1, H, W, C); got {x.shape}")
    if normalize is not None:
        from sciconv import inference, models, preprocess

        spec = inference._resolve_spec(
            model, normalize, models.get_metadata(model), error=ConfigError
        )
        x = preprocess.normalize_spec(x[0], spec)[None]
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


def _map_grid(fig, maps: np.ndarray, *, rows: int, row: int, ncols: int, label: str, cmap: str):
    """Draw up to ``ncols`` maps (H, W, n) in one row of a grid of ``rows`` rows."""
    n = min(ncols, maps.shape[-1])
    for j in range(n):
        ax = fig.add_subplot(rows, ncols, row * ncols + j + 1)
        ax.imshow(maps[..., j], cmap=cmap, origin="lower", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if j == 0:
            ax.set_ylabel(label, fontsize=8)
    return n


def feature_maps(
    model: Any,
    image: Any,
    *,
    layers: Sequence[str | int] | None = None,
    max_maps: int = 16,
    normalize: str | Mapping | None = None,
    cmap: str = "viridis",
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
    normalize : None, "model" or dict
        ``None`` feeds ``image`` as it is (already preprocessed); ``"model"`` applies the
        normalization recorded with the model; a dict is a normalization spec.
    cmap : str

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.activations`` maps each layer name to its ``(h, w, channels)`` output array.

    Examples
    --------
    >>> import keras, numpy as np
    >>> inp = keras.Input((16, 16, 1))
    >>> out = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    >>> fig = feature_maps(keras.Model(inp, out), np.zeros((16, 16, 1)))
    >>> fig.activations["conv"].shape
    (16, 16, 4)
    """
    if not isinstance(max_maps, int) or max_maps < 1:
        raise ConfigError(f"max_maps must be a positive int; got {max_maps!r}")
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
    fig = Figure(figsize=(1.4 * ncols + 0.6, 1.5 * len(acts) + 0.4), layout="constrained")
    for i, (name, a) in enumerate(acts.items()):
        _map_grid(fig, a, rows=len(acts), row=i, ncols=ncols, label=f"{name}\n{a.shape}", cmap=cmap)
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

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.kernels`` holds the drawn ``(kh, kw, n)`` array.

    Examples
    --------
    >>> import keras
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
    fig = Figure(figsize=(1.2 * ncols + 0.8, 1.2 * nrows + 0.6), layout="constrained")
    im = None
    for j in range(n):
        ax = fig.add_subplot(nrows, ncols, j + 1)
        im = ax.imshow(k[..., j], cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(str(j), fontsize=7)
    fig.colorbar(im, ax=fig.axes, shrink=0.8)
    fig.suptitle(f"{lay.name}: {kernel.shape[0]}×{kernel.shape[1]} kernels")
    fig.kernels = k
    return fig


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
    normalize: str | Mapping | None = None,
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
    normalize : None, "model" or dict
        As for :func:`feature_maps`.

    Returns
    -------
    numpy.ndarray, float32 (H, W)
        0 where nothing pushed the score up, 1 at the strongest evidence.

    Examples
    --------
    >>> import keras, numpy as np
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
    normalize: str | Mapping | None = None,
    class_names: Sequence[str] | None = None,
    alpha: float = 0.5,
    stretch: str = "asinh",
) -> Figure:
    """Grad-CAM figure: the image, and the heatmap of :func:`grad_cam_heatmap` over it.

    Parameters
    ----------
    model, image, class_index, layer, normalize
        As for :func:`grad_cam_heatmap`.
    class_names : sequence of str, optional
        Names for the title (default: the model's recorded class names when available).
    alpha : float
        Opacity of the heatmap.
    stretch : str
        Display stretch of the image (see :func:`show`).

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.heatmap`` is the ``(H, W)`` heatmap and ``fig.class_index`` the explained class.

    Examples
    --------
    >>> import keras, numpy as np
    >>> inp = keras.Input((16, 16, 1))
    >>> x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv")(inp)
    >>> x = keras.layers.GlobalAveragePooling2D()(x)
    >>> model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x))
    >>> image = np.random.default_rng(0).random((16, 16, 1))
    >>> fig = grad_cam(model, image, class_index=1)
    >>> fig.heatmap.shape, fig.class_index
    ((16, 16), 1)
    """
    x = _batch(model, image, normalize)
    preds = np.asarray(model(x, training=False), dtype=np.float32).reshape(-1)
    if class_index is None:
        class_index = int(np.argmax(preds))
    heat = grad_cam_heatmap(model, x, class_index=class_index, layer=layer)
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
    shown = x[0, ..., 0] if x.shape[-1] != 3 else x[0]
    fig = Figure(figsize=(9.0, 4.2), layout="constrained")
    ax0 = fig.add_subplot(1, 2, 1)
    _draw(shown, ax0, stretch=stretch, cmap="gray", colorbar=False, fig=fig)
    ax0.set_title("input")
    ax1 = fig.add_subplot(1, 2, 2)
    _draw(shown, ax1, stretch=stretch, cmap="gray", colorbar=False, fig=fig)
    im = ax1.imshow(heat, cmap="jet", alpha=alpha, vmin=0, vmax=1, origin="lower")
    fig.colorbar(im, ax=ax1, shrink=0.85)
    ax1.set_title(f"Grad-CAM: {name} (score {preds[class_index]:.2f})")
    fig.heatmap = heat
    fig.class_index = int(class_index)
    return fig


# --------------------------------------------------------------------------------------------
# training and evaluation
# --------------------------------------------------------------------------------------------
def _read_log(source) -> dict[str, np.ndarray]:
    if hasattr(source, "history") and isinstance(source.history, Mapping):
        source = source.history
    if isinstance(source, Mapping):
        hist = {str(k): np.asarray(v, dtype=np.float64).reshape(-1) for k, v in source.items()}
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            path = path / "log.csv"
        if not path.is_file():
            raise SciconvError("training log not found (expected a CSV written by fit)", path=path)
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        if not rows:
            raise SciconvError("training log has no epochs yet", path=path)
        hist = {}
        for key in rows[0]:
            try:
                hist[key] = np.array([float(r[key]) for r in rows])
            except (TypeError, ValueError):
                raise SciconvError(
                    f"training log column {key!r} holds non-numbers", path=path
                ) from None
    else:
        raise ConfigError(
            "training_curves needs a keras History, a dict of lists, or the path of a CSV log; "
            f"got {type(source).__name__}"
        )
    hist.pop("epoch", None)
    if not hist:
        raise SciconvError("training history holds no metrics")
    return hist


def training_curves(history: Any, *, title: str | None = None) -> Figure:
    """Plot loss and metrics per epoch, training and validation together, one panel per metric.

    Parameters
    ----------
    history : keras.callbacks.History, dict or path
        A History from :func:`sciconv.training.fit`, a dict of per-epoch lists, or the run's
        ``log.csv`` (or its workdir).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        One axes per metric, titled with the metric's name.

    Examples
    --------
    >>> fig = training_curves({"loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7]})
    >>> [ax.get_title() for ax in fig.axes]
    ['loss']
    """
    hist = _read_log(history)
    bases = []
    for key in hist:
        base = key[4:] if key.startswith("val_") else key
        if base not in bases:
            bases.append(base)
    ncols = min(3, len(bases))
    nrows = int(np.ceil(len(bases) / ncols))
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
    for i, base in enumerate(bases):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        for key, label in ((base, "train"), (f"val_{base}", "validation")):
            if key in hist:
                values = hist[key]
                ax.plot(np.arange(1, values.size + 1), values, marker="o", ms=3, label=label)
        ax.set_title(base)
        ax.set_xlabel("epoch")
        if base in ("learning_rate", "lr"):
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    if title is not None:
        fig.suptitle(title)
    return fig


def confusion_counts(y_true: Any, y_pred: Any, *, num_classes: int | None = None) -> np.ndarray:
    """Confusion counts ``(K, K)``: row = true class, column = predicted class.

    Parameters
    ----------
    y_true : array_like of int, (N,)
    y_pred : array_like, (N,) class ids or (N, K) scores (arg-maxed)
    num_classes : int, optional
        Default: one more than the largest id seen (or K of the scores).

    Returns
    -------
    numpy.ndarray of int64, (K, K)

    Examples
    --------
    >>> confusion_counts([0, 0, 1, 2], [0, 1, 1, 2])
    array([[1, 1, 0],
           [0, 1, 0],
           [0, 0, 1]])
    """
    yt = np.asarray(y_true).reshape(-1)
    yp = np.asarray(y_pred)
    if yp.ndim == 2:
        num_classes = num_classes or yp.shape[1]
        yp = yp.argmax(axis=1)
    yp = yp.reshape(-1)
    if yt.shape != yp.shape:
        raise ConfigError(f"y_true and y_pred must hold as many items; got {yt.size} and {yp.size}")
    for name, y in (("y_true", yt), ("y_pred", yp)):
        if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0):
            raise ConfigError(f"{name} must hold non-negative integer class ids")
    k = int(num_classes or (max(yt.max(initial=-1), yp.max(initial=-1)) + 1))
    if yt.size and max(yt.max(), yp.max()) >= k:
        raise ConfigError(f"class ids must be below num_classes={k}; got {max(yt.max(), yp.max())}")
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (yt, yp), 1)
    return counts


def confusion_matrix(
    y_true: Any,
    y_pred: Any,
    class_names: Sequence[str],
    *,
    normalize: bool = False,
    title: str | None = None,
    cmap: str = "Blues",
) -> Figure:
    """Plot the confusion matrix with counts (or row fractions) written in each cell.

    Parameters
    ----------
    y_true : array_like of int, (N,)
    y_pred : array_like, (N,) class ids or (N, K) scores
    class_names : sequence of str
        One name per class, in id order.
    normalize : bool
        Colour and annotate by fraction of each true class (rows sum to 1).
    title : str, optional
        Default: the overall accuracy.
    cmap : str

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.matrix`` holds the ``(K, K)`` integer counts (row = true, column = predicted).

    Examples
    --------
    >>> fig = confusion_matrix([0, 1, 1], [0, 1, 0], ["disk", "spiral"])
    >>> fig.matrix.tolist()
    [[1, 0], [1, 1]]
    """
    names = [str(c) for c in class_names]
    counts = confusion_counts(y_true, y_pred, num_classes=len(names))
    if counts.shape[0] != len(names):
        raise ConfigError(f"got {len(names)} class_names for {counts.shape[0]} classes")
    shown = counts.astype(np.float64)
    if normalize:
        shown = shown / np.maximum(shown.sum(axis=1, keepdims=True), 1)
    k = len(names)
    size = max(4.0, 0.7 * k + 2.5)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap=cmap, vmin=0, interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8)
    top = shown.max() if shown.size else 0
    for i in range(k):
        for j in range(k):
            text = f"{shown[i, j]:.2f}" if normalize else str(counts[i, j])
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                color="white" if shown[i, j] > 0.5 * top else "black",
                fontsize=9,
            )
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    total = counts.sum()
    acc = np.trace(counts) / total if total else float("nan")
    ax.set_title(title if title is not None else f"accuracy {acc:.3f} (N={total})")
    fig.matrix = counts
    return fig


# --------------------------------------------------------------------------------------------
# catalogs
# --------------------------------------------------------------------------------------------
def _columns(table, names, *, which):
    missing = [c for c in names if c not in table.colnames]
    if missing:
        raise ConfigError(
            f"{which} catalog lacks column(s) {missing}; it has {list(table.colnames)}"
        )
    return np.column_stack([np.asarray(table[c], dtype=np.float64) for c in names])


def match_catalogs(
    reference: Any,
    found: Any,
    *,
    max_separation: float,
    columns: tuple[str, str] = ("x", "y"),
    sky: bool = False,
) -> dict[str, Any]:
    """Match each reference source to its nearest found source within ``max_separation``.

    Each found source is used at most once (nearest pairs first).

    Parameters
    ----------
    reference, found : astropy.table.Table
        Catalogs with the position columns.
    max_separation : float
        Largest separation of a match: pixels, or arcseconds when ``sky=True``.
    columns : (str, str)
        Position columns (pixels); ignored when ``sky=True`` (which uses ``ra``/``dec`` in deg).
    sky : bool
        Match on the sky with great-circle separations.

    Returns
    -------
    dict
        ``ref_index``, ``found_index`` (matched pairs), ``separation`` (pixels or arcsec),
        ``dx``, ``dy`` (found − reference, in pixels or arcsec on the sky), ``completeness``
        (matched / reference), ``purity`` (matched / found).

    Examples
    --------
    >>> from astropy.table import Table
    >>> ref = Table({"x": [10.0, 50.0], "y": [10.0, 50.0]})
    >>> got = Table({"x": [10.5, 90.0], "y": [9.8, 90.0]})
    >>> m = match_catalogs(ref, got, max_separation=2.0)
    >>> m["ref_index"].tolist(), m["found_index"].tolist(), m["completeness"]
    ([0], [0], 0.5)
    """
    if not (isinstance(max_separation, (int, float)) and max_separation > 0):
        raise ConfigError(f"max_separation must be a positive number; got {max_separation!r}")
    cols = ("ra", "dec") if sky else tuple(columns)
    a = _columns(reference, cols, which="reference")
    b = _columns(found, cols, which="found")
    if sky:
        dec0 = np.deg2rad(a[:, 1])[:, None]
        dra = (b[None, :, 0] - a[:, None, 0] + 180.0) % 360.0 - 180.0
        dx = dra * np.cos(dec0) * 3600.0
        dy = (b[None, :, 1] - a[:, None, 1]) * 3600.0
    else:
        dx = b[None, :, 0] - a[:, None, 0]
        dy = b[None, :, 1] - a[:, None, 1]
    d = np.hypot(dx, dy) if a.size and b.size else np.zeros((len(a), len(b)))
    ri, fi = np.nonzero(d <= max_separation)
    order = np.argsort(d[ri, fi], kind="stable")
    used_r, used_f, pairs = set(), set(), []
    for k in order:
        r, f = int(ri[k]), int(fi[k])
        if r not in used_r and f not in used_f:
            used_r.add(r)
            used_f.add(f)
            pairs.append((r, f))
    pairs.sort()
    r_idx = np.array([p[0] for p in pairs], dtype=np.int64)
    f_idx = np.array([p[1] for p in pairs], dtype=np.int64)
    return {
        "ref_index": r_idx,
        "found_index": f_idx,
        "separation": d[r_idx, f_idx] if pairs else np.zeros(0),
        "dx": dx[r_idx, f_idx] if pairs else np.zeros(0),
        "dy": dy[r_idx, f_idx] if pairs else np.zeros(0),
        "completeness": len(pairs) / len(a) if len(a) else float("nan"),
        "purity": len(pairs) / len(b) if len(b) else float("nan"),
    }


def compare_catalogs(
    reference: Any,
    found: Any,
    *,
    max_separation: float = 3.0,
    columns: tuple[str, str] = ("x", "y"),
    sky: bool = False,
    flux_columns: tuple[str, str] | None = None,
    names: tuple[str, str] = ("reference", "found"),
) -> Figure:
    """Compare a found catalog with a reference: positions, offsets, and fluxes when given.

    Parameters
    ----------
    reference, found, max_separation, columns, sky
        As for :func:`match_catalogs`.
    flux_columns : (str, str), optional
        Flux column of the reference and of the found catalog for a flux–flux panel.
    names : (str, str)
        Labels of the two catalogs.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.match`` is the dict of :func:`match_catalogs`.

    Examples
    --------
    >>> from astropy.table import Table
    >>> ref = Table({"x": [10.0, 50.0], "y": [10.0, 50.0]})
    >>> fig = compare_catalogs(ref, ref, max_separation=1.0)
    >>> fig.match["completeness"]
    1.0
    """
    match = match_catalogs(
        reference, found, max_separation=max_separation, columns=columns, sky=sky
    )
    cols = ("ra", "dec") if sky else tuple(columns)
    a = _columns(reference, cols, which="reference")
    b = _columns(found, cols, which="found")
    npanel = 3 if flux_columns else 2
    fig = Figure(figsize=(4.3 * npanel, 4.0), layout="constrained")
    ax = fig.add_subplot(1, npanel, 1)
    ax.scatter(a[:, 0], a[:, 1], s=30, facecolors="none", edgecolors="C0", label=names[0])
    ax.scatter(b[:, 0], b[:, 1], s=6, color="C1", label=names[1])
    ax.set_xlabel(cols[0])
    ax.set_ylabel(cols[1])
    if sky:
        ax.invert_xaxis()
    ax.set_title(
        f"matched {len(match['ref_index'])}: completeness {match['completeness']:.2f}, "
        f"purity {match['purity']:.2f}",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    unit = "arcsec" if sky else "pixel"
    ax = fig.add_subplot(1, npanel, 2)
    ax.scatter(match["dx"], match["dy"], s=6)
    ax.axhline(0, color="gray", lw=0.5)
    ax.axvline(0, color="gray", lw=0.5)
    ax.set_xlabel(f"Δ{'RA cos Dec' if sky else 'x'} [{unit}]")
    ax.set_ylabel(f"Δ{'Dec' if sky else 'y'} [{unit}]")
    rms = float(np.sqrt(np.mean(match["separation"] ** 2))) if match["separation"].size else np.nan
    ax.set_title(f"offsets (rms {rms:.3g} {unit})", fontsize=9)
    if flux_columns:
        fa = np.asarray(reference[flux_columns[0]], dtype=np.float64)[match["ref_index"]]
        fb = np.asarray(found[flux_columns[1]], dtype=np.float64)[match["found_index"]]
        ax = fig.add_subplot(1, npanel, 3)
        ax.scatter(fa, fb, s=6)
        good = (fa > 0) & (fb > 0)
        if good.any():
            ax.set_xscale("log")
            ax.set_yscale("log")
            lo, hi = min(fa[good].min(), fb[good].min()), max(fa[good].max(), fb[good].max())
            ax.plot([lo, hi], [lo, hi], color="gray", lw=0.8)
        ax.set_xlabel(f"{names[0]} {flux_columns[0]}")
        ax.set_ylabel(f"{names[1]} {flux_columns[1]}")
        ax.set_title("flux", fontsize=9)
    fig.match = match
    return fig
