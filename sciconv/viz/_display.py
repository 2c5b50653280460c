"""Images: astronomical stretches, sky axes, masks, contours and instance outlines.

:func:`draw_image` (an array drawn with a stretch) is shared with the network figures; the
public functions are re-exported by :mod:`sciconv.viz`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from sciconv._validation import look_up_option
from sciconv.errors import ConfigError, InvalidImageError
from sciconv.io import as_array
from sciconv.io._common import channels_first_hint

__all__ = [
    "ORIGINS",
    "STRETCHES",
    "contours",
    "draw_image",
    "outlines",
    "overlay_mask",
    "resolve_origin",
    "show",
]

#: Display stretches understood by :func:`show` and the overlay functions.
STRETCHES = ("asinh", "zscale", "percentile", "linear")

#: Where row 0 of an image is drawn: ``"auto"`` picks per image (see :func:`resolve_origin`).
ORIGINS = ("auto", "upper", "lower")


# --------------------------------------------------------------------------------------------
# helpers: validation at the boundary, stretch, axes
# --------------------------------------------------------------------------------------------
def _split_image(image: Any, wcs: Any) -> tuple[np.ndarray, Any]:
    """Return ``(array, wcs)`` from a GridImage, an NDData or an array (a lazy one read whole)."""
    if wcs is None:
        wcs = getattr(image, "wcs", None)
    try:
        raw = as_array(image, load=True)
        if np.dtype(getattr(raw, "dtype", np.float32)).kind == "c":
            raise TypeError("complex pixels: take np.abs, .real or .imag first")
        arr = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidImageError(
            f"image must be a numeric array; got {type(image).__name__} ({exc})"
        ) from exc
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != 3) or 0 in arr.shape:
        fix = channels_first_hint(arr.shape) or (
            f"a stack of {arr.shape[0]} images? show one, e.g. image[0]"
            if arr.ndim == 4
            else "pick one channel first, e.g. image[..., 0]"
        )
        raise InvalidImageError(
            "image must be (H, W), (H, W, 1) or (H, W, 3) (RGB) to display; got shape "
            f"{arr.shape}: {fix}"
        )
    return arr, wcs


def _is_wcs_axes(ax: Any) -> bool:
    return ax is not None and hasattr(ax, "coords") and hasattr(ax, "wcs")


def resolve_origin(
    origin: str | None, image: Any = None, *, wcs: Any = None, ax: Any = None
) -> str:
    """Return ``"upper"`` or ``"lower"``: where row 0 of ``image`` is drawn.

    Astronomy draws row 0 at the bottom (FITS, DS9, astropy: ``"lower"``); microscopy and
    photography draw it at the top (Fiji, napari, QuPath, TIFF and PNG viewers: ``"upper"``).

    Parameters
    ----------
    origin : {None, "auto", "upper", "lower"}
        ``None`` or ``"auto"``: ``"lower"`` when the image is astronomical, i.e. it has a
        celestial WCS (``wcs``, or the image's own ``.wcs``), it is a GridImage read from a FITS
        file (it carries a FITS ``.header``), or it is drawn into the caller's astropy
        WCSAxes; ``"upper"`` otherwise (TIFF, PNG, plain arrays). ``"upper"`` or ``"lower"``
        forces it.
    image : GridImage, NDData or array_like, optional
        The image to draw.
    wcs : astropy.wcs.WCS, optional
        The WCS given with the image.
    ax : matplotlib Axes, optional
        The axes it goes into.

    Returns
    -------
    str

    Examples
    --------
    >>> import numpy as np
    >>> resolve_origin("auto", np.zeros((4, 4)))
    'upper'
    >>> from sciconv.io import GridImage
    >>> from astropy.io import fits
    >>> resolve_origin(None, GridImage(np.zeros((4, 4, 1)), header=fits.Header()))
    'lower'
    >>> resolve_origin("lower", np.zeros((4, 4)))
    'lower'
    """
    origin = look_up_option("auto" if origin is None else origin, ORIGINS, name="origin")
    if origin != "auto":
        return origin
    if wcs is None:
        wcs = getattr(image, "wcs", None)
    fits_header = getattr(image, "header", None) is not None
    return "lower" if wcs is not None or fits_header or _is_wcs_axes(ax) else "upper"


def _check_origin_axes(origin: str, ax: Any) -> None:
    if origin == "upper" and _is_wcs_axes(ax):
        raise ConfigError(
            "origin='upper' cannot be drawn on sky axes (astropy WCSAxes draws row 0 at the "
            "bottom); pass origin='lower' or plain matplotlib axes"
        )


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


def _axes(ax, wcs, *, origin: str = "lower", figsize=(6.0, 5.0)):
    """Return ``(fig, ax)``: the given axes, or a new Figure (WCSAxes when ``wcs`` is given).

    Sky axes need row 0 at the bottom: with ``origin="upper"`` a new figure gets pixel axes.
    """
    if ax is not None:
        _check_origin_axes(origin, ax)
        if _is_wcs_axes(ax):  # a WCSAxes made by the caller
            ax.coords[0].set_axislabel("RA")
            ax.coords[1].set_axislabel("Dec")
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    if wcs is not None and origin == "lower":
        ax = fig.add_subplot(projection=wcs)
        ax.coords[0].set_axislabel("RA")
        ax.coords[1].set_axislabel("Dec")
        ax.coords.grid(color="white", alpha=0.3, linestyle=":")
    else:
        ax = fig.add_subplot()
        ax.set_xlabel("x [pixel]")
        ax.set_ylabel("y [pixel]")
    return fig, ax


def draw_image(
    arr: np.ndarray,
    ax: Any,
    *,
    stretch: str,
    cmap: str,
    colorbar: bool,
    fig: Any,
    origin: str = "lower",
):
    """Draw a display array ``(H, W)`` or RGB ``(H, W, 3)`` into ``ax`` with a stretch; return it.

    ``origin`` (``"upper"`` or ``"lower"``, resolved by :func:`resolve_origin`) is where row 0
    goes; either way pixel ``(x, y)`` = (column, row) sits at data coordinates ``(x, y)``, so
    overlays drawn in pixel coordinates stay aligned.

    Examples
    --------
    >>> fig = Figure()
    >>> im = draw_image(np.eye(4), fig.add_subplot(), stretch="linear", cmap="gray",
    ...                 colorbar=False, fig=fig)
    >>> im.norm.vmin, im.norm.vmax
    (0.0, 1.0)
    """
    norm = _norm(arr, stretch)
    if arr.ndim == 3:  # RGB: one stretch for all channels
        rgb = np.nan_to_num(np.asarray(norm(arr)), nan=0.0)
        im = ax.imshow(np.clip(rgb, 0.0, 1.0), origin=origin, interpolation="nearest")
    else:
        im = ax.imshow(arr, origin=origin, norm=norm, cmap=cmap, interpolation="nearest")
        if colorbar:
            fig.colorbar(im, ax=ax, shrink=0.85)
    return im


def _as_labels(labels: Any, shape: tuple[int, int], *, name: str) -> np.ndarray:
    if not isinstance(labels, np.ndarray):  # a GridImage or NDData: its pixels
        from sciconv.postprocess._labels import label_pixels

        labels = label_pixels(labels, name=name)
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
    origin: str | None = "auto",
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
    origin : {"auto", "upper", "lower"} or None
        Where row 0 is drawn. ``"auto"`` (default, also ``None``): at the bottom
        (``"lower"``, astronomy's convention, as in DS9) for an image with a celestial WCS or
        read from a FITS file, at the top (``"upper"``, as in Fiji, napari and QuPath) for TIFF,
        PNG and plain arrays; ``"upper"``/``"lower"`` force it. Sky axes need ``"lower"``:
        ``"upper"`` draws an image with a WCS on pixel axes (and raises on the caller's
        WCSAxes). Pixel ``(x, y)`` stays at data coordinates ``(x, y)`` either way, so markers
        drawn with ``ax.scatter(x, y)`` line up.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.viz import show
    >>> yy, xx = np.mgrid[:32, :32]
    >>> blob = np.exp(-((yy - 16) ** 2 + (xx - 10) ** 2) / 8.0)
    >>> fig = show(blob, stretch="zscale", title="blob")
    >>> fig.axes[0].images[0].get_array().shape
    (32, 32)

    An array (a TIFF, microscopy) has row 0 at the top; a sky image at the bottom:

    >>> fig.axes[0].images[0].origin, bool(fig.axes[0].yaxis_inverted())
    ('upper', True)
    >>> show(blob, origin="lower").axes[0].images[0].origin
    'lower'
    """
    origin = resolve_origin(origin, image, wcs=wcs, ax=ax)
    arr, wcs = _split_image(image, wcs)
    fig, ax = _axes(ax, wcs, origin=origin)
    draw_image(arr, ax, stretch=stretch, cmap=cmap, colorbar=colorbar, fig=fig, origin=origin)
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
    origin: str | None = "auto",
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
    origin : {"auto", "upper", "lower"} or None
        Where row 0 is drawn, as for :func:`show`; the overlay always follows the image.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.viz import overlay_mask
    >>> img = np.random.default_rng(0).normal(size=(16, 16))
    >>> fig = overlay_mask(img, img > 1, title="mask")
    >>> len(fig.axes[0].images)
    2
    """
    from matplotlib import colors as mcolors

    origin = resolve_origin(origin, image, wcs=wcs, ax=ax)
    arr, wcs = _split_image(image, wcs)
    ids = _as_labels(mask, arr.shape[:2], name="mask")
    fig, ax = _axes(ax, wcs, origin=origin)
    draw_image(arr, ax, stretch=stretch, cmap=cmap, colorbar=False, fig=fig, origin=origin)
    classes = np.unique(ids[ids > 0])
    rgba = np.zeros((*ids.shape, 4), dtype=np.float32)
    if classes.size <= 1:
        rgba[ids > 0] = mcolors.to_rgba(color, alpha)
    else:
        from matplotlib import colormaps

        tab = colormaps["tab10"]
        for i, k in enumerate(classes):
            rgba[ids == k] = (*tab(i % 10)[:3], alpha)
    ax.imshow(rgba, origin=origin, interpolation="nearest")
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
    origin: str | None = "auto",
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
    origin : {"auto", "upper", "lower"} or None
        Where row 0 is drawn, as for :func:`show`; the overlay always follows the image.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.viz import contours
    >>> yy, xx = np.mgrid[:32, :32]
    >>> prob = np.exp(-((yy - 16) ** 2 + (xx - 16) ** 2) / 30.0)
    >>> fig = contours(prob, prob, levels=(0.5,))
    >>> len(fig.axes[0].collections) >= 1
    True
    """
    origin = resolve_origin(origin, image, wcs=wcs, ax=ax)
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
    fig, ax = _axes(ax, wcs, origin=origin)
    draw_image(arr, ax, stretch=stretch, cmap=cmap, colorbar=False, fig=fig, origin=origin)
    # no ``origin=`` here: matplotlib then puts field[row, col] at data (col, row), the pixel
    # centre imshow uses for either origin (contour's own origin="lower" shifts it by half a
    # pixel, and "upper" would mirror it in data coordinates)
    ax.contour(field, levels=levels, colors=colors, linewidths=linewidths)
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
    origin: str | None = "auto",
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
    origin : {"auto", "upper", "lower"} or None
        Where row 0 is drawn, as for :func:`show`; the overlay always follows the image.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.viz import outlines
    >>> labels = np.zeros((20, 20), dtype=np.int32)
    >>> labels[2:8, 2:8], labels[10:18, 5:15] = 1, 2
    >>> fig = outlines(np.ones((20, 20)), labels, stretch="linear")
    >>> len(fig.axes[0].images)
    2
    """
    from matplotlib import colors as mcolors
    from skimage.segmentation import find_boundaries

    origin = resolve_origin(origin, image, wcs=wcs, ax=ax)
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
    fig, ax = _axes(ax, wcs, origin=origin)
    draw_image(arr, ax, stretch=stretch, cmap=cmap, colorbar=False, fig=fig, origin=origin)
    rgba = np.zeros((*ids.shape, 4), dtype=np.float32)
    rgba[edges] = mcolors.to_rgba(color, 1.0)
    ax.imshow(rgba, origin=origin, interpolation="nearest")
    if title is not None:
        ax.set_title(title)
    return fig
