"""Images: astronomical stretches, sky axes, bad pixels, colour bars.

:func:`draw_image` (an array drawn with a stretch) and the helpers below are shared with the
overlay and network figures (:mod:`sciconv.viz._overlays`, :mod:`sciconv.viz._network`); the
public functions are re-exported by :mod:`sciconv.viz`.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure

from sciconv._validation import look_up_option
from sciconv.errors import ConfigError, InvalidImageError
from sciconv.io import as_array, image_pixel_scale, recorded_dtype
from sciconv.io._common import channels_first_hint
from sciconv.io._scale import BODY_CODES, axis_code

__all__ = [
    "BAD_COLORS",
    "ORIGINS",
    "SKY_LABELS",
    "STRETCHES",
    "Pixels",
    "as_labels",
    "axes_for",
    "bad_colour",
    "colorbar_text",
    "draw_image",
    "finish_axes",
    "pixel_aspect",
    "resolve_origin",
    "resolve_stretch",
    "show",
    "split_image",
]

#: Display stretches understood by :func:`show` and the overlay functions.
STRETCHES = ("asinh", "zscale", "percentile", "linear")

#: Where row 0 of an image is drawn: ``"auto"`` picks per image (see :func:`resolve_origin`).
ORIGINS = ("auto", "upper", "lower")

#: Colours tried for bad (NaN) pixels with ``bad_color="auto"``: the one farthest from every
#: colour of the colormap (or of an RGB image) is used, so masked data never looks like signal.
BAD_COLORS = ("magenta", "tab:red", "lime", "cyan", "blue", "yellow")

#: Axis labels of the sky, solar and planetary frames, by the world axis physical type astropy
#: reports (UCD1+; astropy 8 prefixes the solar ones with ``custom:``).
SKY_LABELS = {
    "pos.eq.ra": "RA",
    "pos.eq.dec": "Dec",
    "pos.galactic.lon": "Galactic longitude",
    "pos.galactic.lat": "Galactic latitude",
    "pos.ecliptic.lon": "Ecliptic longitude",
    "pos.ecliptic.lat": "Ecliptic latitude",
    "pos.supergalactic.lon": "Supergalactic longitude",
    "pos.supergalactic.lat": "Supergalactic latitude",
    "pos.helioprojective.lon": "Helioprojective longitude (Solar-X)",
    "pos.helioprojective.lat": "Helioprojective latitude (Solar-Y)",
    "pos.heliographic.stonyhurst.lon": "Stonyhurst longitude",
    "pos.heliographic.stonyhurst.lat": "Stonyhurst latitude",
    "pos.heliographic.carrington.lon": "Carrington longitude",
    "pos.heliographic.carrington.lat": "Carrington latitude",
    "pos.bodyrc.lon": "Longitude",
    "pos.bodyrc.lat": "Latitude",
}

# physical types of axes off the sky (the Sun, a planet): their labels say the unit, as SunPy's
_OFF_SKY_TYPES = ("pos.helioprojective.", "pos.heliographic.", "pos.bodyrc.")


# --------------------------------------------------------------------------------------------
# helpers: validation at the boundary, stretch, axes
# --------------------------------------------------------------------------------------------
class Pixels(NamedTuple):
    """An image ready to draw: float32 ``array`` (H, W) or (H, W, 3), its ``wcs``, the stored
    ``dtype`` (the file's, as a GridImage's ``meta["dtype"]`` records it: an 8-bit RGB photo
    is drawn as stored) and its ``unit`` text ("" if unknown)."""

    array: np.ndarray
    wcs: Any
    dtype: np.dtype
    unit: str


def _unit_text(image: Any) -> str:
    unit = getattr(image, "unit", None)
    if unit is None:
        return ""
    try:
        from astropy import units as u

        unit = u.Unit(unit)
    except (TypeError, ValueError):
        return str(unit)
    return "" if unit == u.dimensionless_unscaled else unit.to_string()


def split_image(image: Any, wcs: Any = None) -> Pixels:
    """Return the :class:`Pixels` of a GridImage, an NDData or an array (a lazy one read whole).

    Examples
    --------
    >>> px = split_image(np.zeros((4, 4, 3), np.uint8))
    >>> px.array.shape, px.array.dtype, px.dtype
    ((4, 4, 3), dtype('float32'), dtype('uint8'))
    """
    if wcs is None:
        wcs = getattr(image, "wcs", None)
    try:
        raw = as_array(image, load=True)
        dtype = np.dtype(getattr(raw, "dtype", np.float32))
        if dtype.kind == "c":
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
    stored = recorded_dtype(image)  # sciconv.io.read gives float32 pixels, records the file's
    if stored is not None:
        dtype = stored
    return Pixels(arr, wcs, dtype, _unit_text(image))


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


def resolve_stretch(stretch: str | None, pixels: Pixels) -> str | None:
    """The stretch to draw ``pixels`` with: ``None`` for an 8-bit RGB image drawn as stored.

    ``stretch=None`` (the default of every image function) draws a 3-channel integer image
    whose values fit 0..255 as stored (divided by 255, as Fiji and QuPath draw a photo) and
    anything else with ``"asinh"``; a stretch given by name is always applied.

    Examples
    --------
    >>> resolve_stretch(None, split_image(np.zeros((4, 4, 3), np.uint8))) is None
    True
    >>> resolve_stretch(None, split_image(np.zeros((4, 4)))), resolve_stretch("linear", None)
    ('asinh', 'linear')
    """
    if stretch is not None:
        return look_up_option(stretch, STRETCHES, name="stretch")
    arr = pixels.array
    if arr.ndim == 3 and pixels.dtype.kind in "ui":
        finite = arr[np.isfinite(arr)]
        if finite.size and finite.min() >= 0 and finite.max() <= 255:
            return None
    return "asinh"


def _norm(arr: np.ndarray, stretch: str):
    """Return an astropy ImageNormalize for ``arr`` with limits from its finite pixels.

    ``clip=False``: values beyond the limits still take the colormap's end colours, and the
    colour bar then drops the ticks outside the limits (a clipping norm pins them to the ends,
    labelling the bar's ends with values it does not show).
    """
    from astropy.visualization import (
        AsinhStretch,
        AsymmetricPercentileInterval,
        ImageNormalize,
        LinearStretch,
        ManualInterval,
        MinMaxInterval,
    )

    stretch = look_up_option(stretch, STRETCHES, name="stretch")
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        raise InvalidImageError("image has no finite pixels to display (all NaN or Inf)")
    if stretch == "zscale":  # as sciconv normalizes (compute_limits), not 1000 random pixels
        from sciconv.preprocess import compute_limits

        zs = compute_limits(arr, method="zscale", per_channel=False)
        interval = ManualInterval(float(np.min(zs.vmin)), float(np.max(zs.vmax)))
        stretch_obj = LinearStretch()
    elif stretch == "percentile":
        interval, stretch_obj = AsymmetricPercentileInterval(1.0, 99.8), LinearStretch()
    elif stretch == "asinh":
        interval, stretch_obj = AsymmetricPercentileInterval(0.5, 99.9), AsinhStretch(a=0.1)
    else:
        interval, stretch_obj = MinMaxInterval(), LinearStretch()
    vmin, vmax = (float(v) for v in interval.get_limits(finite))
    if not vmax > vmin:  # a collapsed interval (a sparse counts image: 99.9 % zeros): min..max,
        # as sciconv.preprocess falls back, so empty sky is black and single photons show
        vmin, vmax = float(finite.min()), float(finite.max())
    if not vmax > vmin:  # constant image: give it a unit range so it still draws
        vmin, vmax = vmin - 0.5, vmax + 0.5
    return ImageNormalize(vmin=vmin, vmax=vmax, stretch=stretch_obj, clip=False)


def _sky_labels(ax: Any, *, keep: bool) -> None:
    """Label the sky axes of a WCSAxes by their frame (RA/Dec, Galactic, ecliptic, ...).

    ``keep``: leave a label the caller set (anything but astropy's default) as it is.
    """
    for coord in ax.coords:
        default = getattr(coord, "default_label", "")
        current = coord.get_axislabel()
        if keep and current not in ("", default):
            continue
        label = _axis_label(coord, default)
        if label is not None:
            coord.set_axislabel(label)


def _axis_label(coord: Any, default: str) -> str | None:
    """The readable label of a WCSAxes coordinate, from its physical type (astropy 8 spells
    the solar ones ``custom:pos.helioprojective.lon``: QA, shown as they were) or, for a
    planet's ``xxLN``/``xxLT`` axes (no physical type), its CTYPE ("Mars longitude"); None
    keeps astropy's."""
    kind = default.removeprefix("custom:") if isinstance(default, str) else ""
    label = SKY_LABELS.get(kind)
    if label is None:
        code = axis_code(kind)  # astropy's default for a type-less axis: the CTYPE, lower case
        if len(code) != 4 or code[2:] not in ("LN", "LT") or code[:2] not in BODY_CODES:
            return None
        body = BODY_CODES[code[:2]]
        label = f"{body} {'longitude' if code[2:] == 'LN' else 'latitude'}"
    elif not kind.startswith(_OFF_SKY_TYPES):
        return label  # sky axes: the ticks say the unit (° ′ ″, h m s)
    try:
        unit = coord.get_format_unit() or coord.coord_unit
    except Exception:  # no unit known: the label alone
        unit = None
    return label if unit is None else f"{label} [{unit.to_string()}]"


def axes_for(ax: Any, wcs: Any, *, origin: str = "lower", figsize=(6.0, 5.0)):
    """Return ``(fig, ax)``: the given axes, or a new Figure (WCSAxes when ``wcs`` is given).

    Sky axes need row 0 at the bottom: with ``origin="upper"`` a new figure gets pixel axes.
    Sky axes are labelled by their frame (``"RA"``/``"Dec"``, ``"Galactic longitude"``, ...,
    from the WCS's world axis physical types, in the WCS's own axis order); labels the caller
    already set on their own axes are kept.

    Examples
    --------
    >>> from astropy.wcs import WCS
    >>> w = WCS(naxis=2)
    >>> w.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
    >>> fig, ax = axes_for(None, w)
    >>> ax.coords[0].get_axislabel(), ax.coords[1].get_axislabel()
    ('Galactic longitude', 'Galactic latitude')
    """
    if ax is not None:
        _check_origin_axes(origin, ax)
        if _is_wcs_axes(ax):  # a WCSAxes made by the caller: fill in only missing labels
            _sky_labels(ax, keep=True)
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    if wcs is not None and origin == "lower":
        ax = fig.add_subplot(projection=wcs)
        _sky_labels(ax, keep=False)
        ax.coords.grid(color="white", alpha=0.3, linestyle=":")
    else:
        ax = fig.add_subplot()
        ax.set_xlabel("x [pixel]")
        ax.set_ylabel("y [pixel]")
    return fig, ax


def pixel_aspect(image: Any) -> float | None:
    """Height over width of one pixel when the image says its pixels are not square, else None.

    Examples
    --------
    >>> from sciconv.io import GridImage
    >>> pixel_aspect(GridImage(np.zeros((2, 2, 1)), meta={"pixel_size": (2.0, 0.5),
    ...                                                   "pixel_unit": "um"}))
    4.0
    >>> pixel_aspect(np.zeros((2, 2))) is None
    True
    """
    try:
        scale = image_pixel_scale(image)
    except Exception:  # an unreadable scale is not worth failing a figure for
        return None
    if scale is None or not scale.x > 0 or np.isclose(scale.y, scale.x, rtol=1e-6):
        return None
    return float(scale.y / scale.x)


def finish_axes(ax: Any, *, title: str | None = None, aspect: float | None = None) -> None:
    """Set the title and, on pixel axes, the aspect of non-square pixels (after every imshow,
    which resets it)."""
    if aspect is not None and not _is_wcs_axes(ax):
        ax.set_aspect(aspect)
    if title is not None:
        ax.set_title(title)


@functools.lru_cache(maxsize=64)
def _far_colour_from(colours: tuple) -> str:
    from matplotlib import colors as mcolors

    pts = np.asarray(colours, dtype=np.float64).reshape(-1, 3)
    best, best_d = BAD_COLORS[0], -1.0
    for name in BAD_COLORS:
        d = float(np.min(np.linalg.norm(pts - np.asarray(mcolors.to_rgb(name)), axis=1)))
        if d > best_d + 1e-9:
            best, best_d = name, d
    return best


def bad_colour(bad_color: Any, *, cmap: Any = None, rgb: np.ndarray | None = None):
    """Resolve ``bad_color="auto"``: the colour of :data:`BAD_COLORS` farthest from every colour
    of ``cmap`` (or of a sample of the RGB image's pixels); any other value is returned as is.

    Examples
    --------
    >>> bad_colour("auto", cmap="gray"), bad_colour("auto", cmap="viridis"), bad_colour("k")
    ('magenta', 'magenta', 'k')
    """
    if not (isinstance(bad_color, str) and bad_color == "auto"):
        return bad_color
    if rgb is not None:
        flat = rgb.reshape(-1, 3)
        flat = flat[np.isfinite(flat).all(axis=1)]
        step = max(1, flat.shape[0] // 4096)
        sample = np.round(np.clip(flat[::step], 0, 1), 2)
        sample = np.unique(sample, axis=0) if sample.size else np.zeros((1, 3))
        return _far_colour_from(tuple(map(tuple, sample.tolist())))
    from matplotlib import colormaps

    cm = colormaps[cmap] if isinstance(cmap, str) else cmap
    return _far_colour_from(tuple(map(tuple, np.round(cm(np.linspace(0, 1, 64))[:, :3], 3))))


def colorbar_text(unit: str, stretch: str | None) -> str:
    """The default colour bar label: the pixels' unit and the stretch, e.g. ``"electron (asinh)"``.

    Examples
    --------
    >>> colorbar_text("electron / s", "asinh"), colorbar_text("", "zscale")
    ('electron / s (asinh)', 'zscale stretch')
    """
    if stretch is None:
        return unit
    return f"{unit} ({stretch})" if unit else f"{stretch} stretch"


def draw_image(
    arr: np.ndarray,
    ax: Any,
    *,
    stretch: str | None,
    cmap: str,
    colorbar: bool,
    fig: Any,
    origin: str = "lower",
    bad_color: Any = "auto",
    colorbar_label: str | None = None,
):
    """Draw a display array ``(H, W)`` or RGB ``(H, W, 3)`` into ``ax`` with a stretch; return it.

    ``origin`` (``"upper"`` or ``"lower"``, resolved by :func:`resolve_origin`) is where row 0
    goes; either way pixel ``(x, y)`` = (column, row) sits at data coordinates ``(x, y)``, so
    overlays drawn in pixel coordinates stay aligned. ``stretch=None`` draws an RGB image as
    stored (0..255 -> 0..1) and a single channel with ``"asinh"``. NaN pixels (bad, masked)
    are drawn in ``bad_color`` (``"auto"``: see :func:`bad_colour`). Pixels are sampled before
    colour mapping (``interpolation_stage="data"``): a large image costs memory for its
    screen size, not for its full size.

    Examples
    --------
    >>> fig = Figure()
    >>> im = draw_image(np.eye(4), fig.add_subplot(), stretch="linear", cmap="gray",
    ...                 colorbar=False, fig=fig)
    >>> im.norm.vmin, im.norm.vmax
    (0.0, 1.0)
    """
    from matplotlib import colormaps
    from matplotlib import colors as mcolors

    draw = {"origin": origin, "interpolation": "nearest", "interpolation_stage": "data"}
    if arr.ndim == 3:  # RGB: one stretch for all channels
        rgb = arr / 255.0 if stretch is None else np.asarray(_norm(arr, stretch)(arr))
        bad = ~np.isfinite(arr).all(axis=-1)
        rgb = np.clip(np.nan_to_num(rgb, nan=0.0), 0.0, 1.0).astype(np.float32)
        if bad.any():
            rgb[bad] = mcolors.to_rgb(bad_colour(bad_color, rgb=rgb[~bad]))
        return ax.imshow(rgb, **draw)
    norm = _norm(arr, stretch or "asinh")
    cm = colormaps[cmap] if isinstance(cmap, str) else cmap
    cm = cm.with_extremes(bad=bad_colour(bad_color, cmap=cm))
    im = ax.imshow(arr, norm=norm, cmap=cm, **draw)
    if colorbar:
        fig.colorbar(im, ax=ax, shrink=0.85, label=colorbar_label or "")
    return im


def as_labels(labels: Any, shape: tuple[int, int], *, name: str) -> np.ndarray:
    """Integer ids ``(H, W)`` (0 = background) from a mask, a label image or a GridImage.

    Examples
    --------
    >>> as_labels(np.eye(2, dtype=bool), (2, 2), name="mask").tolist()
    [[1, 0], [0, 1]]
    """
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
    stretch: str | None = None,
    wcs: Any = None,
    ax: Any = None,
    title: str | None = None,
    cmap: str = "gray",
    colorbar: bool = True,
    origin: str | None = "auto",
    bad_color: Any = "auto",
    colorbar_label: str | None = None,
) -> Figure:
    """Display an image with an astronomical stretch, on sky axes when it has a WCS.

    Parameters
    ----------
    image : GridImage or array_like
        ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` (RGB). A ``GridImage`` brings its own WCS,
        unit and pixel size. NaN pixels (sciconv's bad pixels: a DQ mask, an NDData's
        ``.mask``) are ignored by the stretch and drawn in ``bad_color``.
    stretch : {None, "asinh", "zscale", "percentile", "linear"}
        ``None`` (default): ``"asinh"``, except that an 8-bit RGB image (integer pixels in
        0..255: a photo, a brightfield or H&E slide) is drawn as stored. ``"asinh"``:
        0.5–99.9 percentile limits and an asinh stretch (faint structure and bright cores
        together); ``"zscale"``: IRAF's zscale limits, linear; ``"percentile"``: 1–99.8
        percentile limits, linear; ``"linear"``: min to max.
    wcs : astropy.wcs.WCS, optional
        Celestial WCS; the axes then show sky coordinates (astropy WCSAxes), labelled by the
        WCS's frame ("RA"/"Dec", "Galactic longitude"/"Galactic latitude", ...). Ignored when
        ``ax`` is given; labels already set on the caller's WCSAxes are kept.
    ax : matplotlib Axes, optional
        Draw into these axes instead of a new figure.
    title : str, optional
    cmap : str
        Colormap for single-channel images.
    colorbar : bool
        Add a colour bar (single-channel images). Its ticks stay within the displayed range.
    origin : {"auto", "upper", "lower"} or None
        Where row 0 is drawn. ``"auto"`` (default, also ``None``): at the bottom
        (``"lower"``, astronomy's convention, as in DS9) for an image with a celestial WCS or
        read from a FITS file, at the top (``"upper"``, as in Fiji, napari and QuPath) for TIFF,
        PNG and plain arrays; ``"upper"``/``"lower"`` force it. Sky axes need ``"lower"``:
        ``"upper"`` draws an image with a WCS on pixel axes (and raises on the caller's
        WCSAxes). Pixel ``(x, y)`` stays at data coordinates ``(x, y)`` either way, so markers
        drawn with ``ax.scatter(x, y)`` line up. Pixels that the image says are not square
        (``pixel_scale`` y ≠ x) are drawn with their true aspect on pixel axes.
    bad_color : matplotlib colour or "auto"
        Colour of NaN (bad, masked) pixels. ``"auto"`` (default): a colour that is not in the
        colormap (magenta on ``gray`` and ``viridis``; for RGB, the one of
        :data:`BAD_COLORS` farthest from the image's colours), so masked data never looks like
        signal (a transparent NaN would show the white page: the colour of a saturated star).
    colorbar_label : str, optional
        Label of the colour bar. Default: the pixels' unit (FITS ``BUNIT``, an NDData's or a
        Quantity's unit) and the stretch, e.g. ``"electron / s (asinh)"``.

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

    NaN pixels get a colour of their own; the colour bar names the stretch:

    >>> blob[0, 0] = np.nan
    >>> fig = show(blob)
    >>> fig.axes[0].images[0].cmap.get_bad().round(2).tolist(), fig.axes[1].get_ylabel()
    ([1.0, 0.0, 1.0, 1.0], 'asinh stretch')
    """
    origin = resolve_origin(origin, image, wcs=wcs, ax=ax)
    pixels = split_image(image, wcs)
    stretch = resolve_stretch(stretch, pixels)
    fig, ax = axes_for(ax, pixels.wcs, origin=origin)
    label = colorbar_label if colorbar_label is not None else colorbar_text(pixels.unit, stretch)
    draw_image(
        pixels.array,
        ax,
        stretch=stretch,
        cmap=cmap,
        colorbar=colorbar,
        fig=fig,
        origin=origin,
        bad_color=bad_color,
        colorbar_label=label,
    )
    finish_axes(ax, title=title, aspect=pixel_aspect(image))
    return fig
