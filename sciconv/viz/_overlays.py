"""Overlays on an image: masks (class ids or instances), contours and instance outlines.

The image itself is drawn by :func:`sciconv.viz._display.draw_image`; these functions add one
layer over it. The public functions are re-exported by :mod:`sciconv.viz`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from sciconv._validation import look_up_option
from sciconv.errors import ConfigError, InvalidImageError
from sciconv.viz._display import (
    as_labels,
    axes_for,
    draw_image,
    finish_axes,
    pixel_aspect,
    resolve_origin,
    resolve_stretch,
    split_image,
)

__all__ = ["contours", "default_thickness", "instance_palette", "outlines", "overlay_mask"]

#: Class ids up to this are drawn in ``tab10`` colours keyed on the id by :func:`overlay_mask`;
#: masks with larger ids are taken as instance labels.
MAX_CLASS_ID = 10


# --------------------------------------------------------------------------------------------
# colour tables
# --------------------------------------------------------------------------------------------
def instance_palette(n: int = 24) -> np.ndarray:
    """``n`` well-separated saturated colours (RGB in 0..1) for instance labels.

    Chosen greedily, each the candidate farthest in CIELAB from those already chosen
    (Glasbey et al. 2007), among colours of medium lightness and strong chroma, so none is
    grey, black or white (neither the background nor a grey image) and neighbours differ.

    Parameters
    ----------
    n : int
        How many colours (at most 64).

    Returns
    -------
    numpy.ndarray, float (n, 3)

    Examples
    --------
    >>> from sciconv.viz import instance_palette
    >>> pal = instance_palette(24)
    >>> pal.shape, bool(pal.min() >= 0 and pal.max() <= 1)
    ((24, 3), True)
    """
    if not isinstance(n, (int, np.integer)) or not 1 <= n <= 64:
        raise ConfigError(f"n must be an int in 1..64; got {n!r}")
    return _palette(int(n)).copy()  # the caller's own: scaling it leaves later overlays alone


@functools.lru_cache(maxsize=4)
def _palette(n: int) -> np.ndarray:
    from skimage.color import rgb2lab

    levels = np.linspace(0.0, 1.0, 12)
    cand = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    lab = rgb2lab(cand[None])[0]
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    keep = (lab[:, 0] > 35) & (lab[:, 0] < 90) & (chroma > 35)
    cand, lab = cand[keep], lab[keep]
    chosen = [int(np.argmin(np.linalg.norm(cand - [1.0, 0.0, 0.0], axis=1)))]  # start: red
    dist = np.linalg.norm(lab - lab[chosen[0]], axis=1)
    while len(chosen) < n:
        k = int(np.argmax(dist))
        chosen.append(k)
        dist = np.minimum(dist, np.linalg.norm(lab - lab[k], axis=1))
    out = cand[chosen]
    out.flags.writeable = False  # shared by every call
    return out


def _touching_pairs(ids: np.ndarray) -> np.ndarray:
    """Pairs ``(a, b)``, a < b, of instances that touch (8-connected), shape (P, 2)."""
    found = []
    for a, b in (
        (ids[:, :-1], ids[:, 1:]),
        (ids[:-1], ids[1:]),
        (ids[:-1, :-1], ids[1:, 1:]),
        (ids[:-1, 1:], ids[1:, :-1]),
    ):
        m = (a != b) & (a > 0) & (b > 0)
        found.append(np.stack([a[m], b[m]], axis=1))
    pairs = np.concatenate(found)
    if pairs.size == 0:
        return pairs.reshape(0, 2)
    pairs.sort(axis=1)
    return np.unique(pairs, axis=0)


def _instance_colours(classes: np.ndarray, ids: np.ndarray, n_colours: int) -> np.ndarray:
    """A palette index per instance: shuffled by id, then recoloured so no two touching
    instances share a colour (greedy; a planar map needs at most 4, the palette has more)."""
    start = (classes.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(n_colours)
    colour = dict(zip(classes.tolist(), start.astype(np.int64).tolist()))
    neighbours: dict[int, list[int]] = {}
    for a, b in _touching_pairs(ids).tolist():
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    done: set[int] = set()
    for k in classes.tolist():
        taken = {colour[j] for j in neighbours.get(k, ()) if j in done}
        c = colour[k]
        for step in range(n_colours):
            if (c + step) % n_colours not in taken:
                colour[k] = (c + step) % n_colours
                break
        done.add(k)
    return np.array([colour[k] for k in classes.tolist()], dtype=np.int64)


def _paint(ids: np.ndarray, classes: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """One pass: the uint8 RGBA of every pixel, ``lut[i]`` for id ``classes[i]`` (0: clear)."""
    top = int(classes[-1]) if classes.size else 0
    if top < 2**22:  # a table over every id up to the largest: one indexing pass
        full = np.zeros((top + 1, 4), dtype=np.uint8)
        full[classes] = lut
        return full[np.clip(ids, 0, top)]
    return lut[np.searchsorted(classes, ids)]


def _class_names(class_names: Any) -> dict[int, str]:
    if class_names is None:
        return {}
    if isinstance(class_names, Mapping):
        return {int(k): str(v) for k, v in class_names.items()}
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise ConfigError(
            "class_names must be a sequence (entry k names class id k; entry 0 the "
            f"background) or a dict {{id: name}}; got {class_names!r}"
        )
    return {k: str(v) for k, v in enumerate(class_names)}


# --------------------------------------------------------------------------------------------
# overlays
# --------------------------------------------------------------------------------------------
def overlay_mask(
    image: Any,
    mask: Any,
    *,
    alpha: float = 0.4,
    color: Any = "red",
    stretch: str | None = None,
    wcs: Any = None,
    ax: Any = None,
    title: str | None = None,
    cmap: str = "gray",
    origin: str | None = "auto",
    colors: Mapping[int, Any] | None = None,
    class_names: Sequence[str] | Mapping[int, str] | None = None,
    instances: bool | None = None,
    bad_color: Any = "auto",
) -> Figure:
    """Draw a mask (boolean, class ids or instance labels) semi-transparently over an image.

    Parameters
    ----------
    image : GridImage or array_like
        As for :func:`show`.
    mask : array_like, (H, W)
        Boolean mask, class ids or instance labels (0 = background, left transparent).
    alpha : float
        Opacity of the mask.
    color : matplotlib colour
        Colour of a binary mask (boolean, or ids 0 and 1 only).
    stretch, wcs, ax, title, cmap, bad_color
        As for :func:`show`.
    origin : {"auto", "upper", "lower"} or None
        Where row 0 is drawn, as for :func:`show`; the overlay always follows the image.
    colors : dict {int: colour}, optional
        Colours of class ids, overriding the defaults.
    class_names : sequence or dict {int: str}, optional
        Names of the class ids (a sequence: entry k names id k, entry 0 the background, not
        drawn): adds a legend of the named classes.
    instances : bool, optional
        Colour ``mask`` as instance labels. Default: when its largest id is above 10.
        Class ids (up to 10, or any ids with ``colors``) get the ``tab10`` colour of their
        id, class k always ``tab10[k - 1]`` whatever else is present, so truth and prediction
        drawn side by side agree. Instances get colours from :func:`instance_palette`
        shuffled by id, and touching instances never share one.

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
    from matplotlib import colormaps
    from matplotlib import colors as mcolors

    if not 0.0 <= float(alpha) <= 1.0:
        raise ConfigError(f"alpha must be in 0..1; got {alpha!r}")
    origin = resolve_origin(origin, image, wcs=wcs, ax=ax)
    pixels = split_image(image, wcs)
    raw_bool = np.asarray(mask).dtype == bool if isinstance(mask, np.ndarray) else False
    ids = as_labels(mask, pixels.array.shape[:2], name="mask")
    if ids.size and ids.min() < 0:
        ids = np.where(ids > 0, ids, 0)
    fig, ax = axes_for(ax, pixels.wcs, origin=origin)
    stretch = resolve_stretch(stretch, pixels)
    draw_image(
        pixels.array,
        ax,
        stretch=stretch,
        cmap=cmap,
        colorbar=False,
        fig=fig,
        origin=origin,
        bad_color=bad_color,
    )
    classes = np.unique(ids)
    a8 = round(float(alpha) * 255)
    lut = np.zeros((classes.size, 4), dtype=np.uint8)
    fg = classes > 0
    top = int(classes[-1]) if classes.size else 0
    if instances is None:
        instances = colors is None and top > MAX_CLASS_ID
    given = {int(k): v for k, v in (colors or {}).items()}
    binary = (raw_bool or top <= 1) and not given and not instances
    tab = colormaps["tab10"]

    def class_rgb(k: int):
        if binary:
            return mcolors.to_rgb(color)
        return mcolors.to_rgb(given[k]) if k in given else tab((k - 1) % 10)[:3]

    if instances:
        pal = instance_palette(24)
        pick = _instance_colours(classes[fg], ids, len(pal))
        lut[fg, :3] = np.round(pal[pick] * 255).astype(np.uint8)
    else:
        for i in np.flatnonzero(fg):
            lut[i, :3] = np.round(np.asarray(class_rgb(int(classes[i]))) * 255).astype(np.uint8)
    lut[fg, 3] = a8
    rgba = _paint(ids, classes, lut)
    ax.imshow(rgba, origin=origin, interpolation="nearest", interpolation_stage="data")
    names = _class_names(class_names)
    if names and not instances:
        from matplotlib.patches import Patch

        handles = [
            Patch(color=class_rgb(k), alpha=max(float(alpha), 0.6), label=name)
            for k, name in sorted(names.items())
            if k > 0
        ]
        ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.8)
    finish_axes(ax, title=title, aspect=pixel_aspect(image))
    return fig


def contours(
    image: Any,
    data: Any = None,
    *,
    levels: int | Sequence[float] = (0.5,),
    colors: Any = "cyan",
    linewidths: float = 1.0,
    stretch: str | None = None,
    wcs: Any = None,
    ax: Any = None,
    title: str | None = None,
    cmap: str = "gray",
    origin: str | None = "auto",
    bad_color: Any = "auto",
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
    stretch, wcs, ax, title, cmap, bad_color
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
    pixels = split_image(image, wcs)
    arr = pixels.array
    if data is None:
        field = arr if arr.ndim == 2 else arr.mean(axis=-1)
    else:
        field = split_image(data, None).array
        if field.ndim != 2 or field.shape != arr.shape[:2]:
            raise InvalidImageError(
                f"data to contour must be one channel with the image's shape {arr.shape[:2]}; "
                f"got {field.shape}"
            )
    fig, ax = axes_for(ax, pixels.wcs, origin=origin)
    draw_image(
        arr,
        ax,
        stretch=resolve_stretch(stretch, pixels),
        cmap=cmap,
        colorbar=False,
        fig=fig,
        origin=origin,
        bad_color=bad_color,
    )
    # no ``origin=`` here: matplotlib then puts field[row, col] at data (col, row), the pixel
    # centre imshow uses for either origin (contour's own origin="lower" shifts it by half a
    # pixel, and "upper" would mirror it in data coordinates)
    ax.contour(field, levels=levels, colors=colors, linewidths=linewidths)
    finish_axes(ax, title=title, aspect=pixel_aspect(image))
    return fig


def _display_scale(fig: Any, ax: Any, shape: tuple[int, int]) -> float:
    """Image pixels per screen pixel in ``ax`` at the figure's dpi (the axes' current box)."""
    box = ax.get_position()
    w_px = box.width * fig.get_figwidth() * fig.dpi
    h_px = box.height * fig.get_figheight() * fig.dpi
    if w_px <= 0 or h_px <= 0:
        return 1.0
    return max(shape[1] / w_px, shape[0] / h_px)


def default_thickness(ids: np.ndarray, scale: float) -> int:
    """Outline width in image pixels: about one screen pixel (``scale`` image pixels per
    screen pixel), but never more than a third of the median object radius, so an outline
    never fills the objects it outlines.

    Examples
    --------
    >>> ids = np.zeros((600, 1200), int)
    >>> ids[100:110, 100:110] = 1  # a 10 px object
    >>> default_thickness(ids, 2.4), default_thickness(ids * 0, 2.4)
    (1, 2)
    """
    areas = np.bincount(ids.ravel())[1:] if ids.size else np.zeros(0)
    areas = areas[areas > 0]
    want = max(1, round(scale))
    if areas.size == 0:
        return want
    radius = float(np.sqrt(np.median(areas) / np.pi))
    return max(1, min(want, int(radius // 3)))


def _auto_line_colour(im: Any) -> str:
    """Yellow on a dark image (fluorescence, the sky), dark green on a bright one (brightfield,
    H&E): the median luminance of the drawn image (a sample of its pixels) decides."""
    shown = np.asarray(im.get_array())
    step = max(1, int(np.sqrt(shown.shape[0] * shown.shape[1] / 65536)))
    sample = shown[::step, ::step].reshape(-1, *shown.shape[2:])
    rgb = sample[:, :3] if shown.ndim == 3 else im.cmap(im.norm(sample))[:, :3]
    rgb = np.clip(np.nan_to_num(np.asarray(rgb, dtype=np.float64)), 0.0, 1.0)
    luminance = rgb @ np.array([0.2126, 0.7152, 0.0722])
    return "darkgreen" if float(np.median(luminance)) > 0.5 else "yellow"


def outlines(
    image: Any,
    labels: Any,
    *,
    color: Any = "auto",
    mode: str = "inner",
    thickness: int | None = None,
    stretch: str | None = None,
    wcs: Any = None,
    ax: Any = None,
    title: str | None = None,
    cmap: str = "gray",
    origin: str | None = "auto",
    bad_color: Any = "auto",
) -> Figure:
    """Draw the outline of every instance in ``labels`` over ``image``.

    Touching instances keep their shared boundary, so separated objects look separated.

    Parameters
    ----------
    image : GridImage or array_like
        As for :func:`show`.
    labels : array_like of int, (H, W)
        Instance labels, 0 = background.
    color : matplotlib colour or "auto"
        ``"auto"`` (default): yellow over a dark image (fluorescence, the sky), dark green
        over a bright one (brightfield, H&E), judged on the drawn image's median luminance.
    mode : {"inner", "outer", "thick", "thin"}
        Boundary mode of :func:`skimage.segmentation.find_boundaries`.
    thickness : int, optional
        Line width in image pixels. Default: about one screen pixel (the image's pixels per
        screen pixel at the figure's dpi, so a 1272 px image in a 6 inch figure gets 2), but
        at most a third of the median object radius (1 px for 10 px nuclei), so outlines
        never fill small objects.
    stretch, wcs, ax, title, cmap, bad_color
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
    pixels = split_image(image, wcs)
    ids = as_labels(labels, pixels.array.shape[:2], name="labels")
    mode = look_up_option(mode, ("inner", "outer", "thick", "thin"), name="mode")
    if thickness is not None and (
        not isinstance(thickness, (int, np.integer)) or isinstance(thickness, bool) or thickness < 1
    ):
        raise ConfigError(f"thickness must be a positive int; got {thickness!r}")
    fig, ax = axes_for(ax, pixels.wcs, origin=origin)
    if thickness is None:
        thickness = default_thickness(np.clip(ids, 0, None), _display_scale(fig, ax, ids.shape))
    edges = find_boundaries(ids, mode=mode)
    if thickness > 1:
        from scipy.ndimage import binary_dilation

        edges = binary_dilation(edges, iterations=int(thickness) - 1)
        if mode == "inner":  # stay inside the objects
            edges &= ids > 0
    im = draw_image(
        pixels.array,
        ax,
        stretch=resolve_stretch(stretch, pixels),
        cmap=cmap,
        colorbar=False,
        fig=fig,
        origin=origin,
        bad_color=bad_color,
    )
    if isinstance(color, str) and color == "auto":
        color = _auto_line_colour(im)
    rgba = np.zeros((*ids.shape, 4), dtype=np.uint8)
    rgba[edges] = np.round(np.asarray(mcolors.to_rgba(color, 1.0)) * 255).astype(np.uint8)
    ax.imshow(rgba, origin=origin, interpolation="nearest", interpolation_stage="data")
    finish_axes(ax, title=title, aspect=pixel_aspect(image))
    fig.thickness = int(thickness)
    return fig
