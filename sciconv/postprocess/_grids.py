"""Pixel grids of labels and images: whether two WCSs describe one grid, and labels carried
from one grid to another.

Labels found on one image (a detection band, one night) index *its* pixels. Summed over the
pixels of another band or night, on a grid shifted, rotated or rescaled on the sky, they give
fluxes of the sky beside the stars and positions arcseconds off, in rows that look right.
:func:`grid_offset` measures how far two WCSs place the same pixel (astropy's
:func:`~astropy.wcs.utils.pixel_to_pixel` at the corners, edge midpoints and centre),
:func:`check_measure_grid` is the check :func:`~sciconv.postprocess.measure` makes, and
:func:`reproject_labels` carries labels onto another grid (nearest neighbour: ids kept; an
object smaller than a target pixel keeps the one its pixels fall in).
"""

from __future__ import annotations

import warnings

import numpy as np

from sciconv.errors import ConfigError, InvalidImageError, SciconvWarning
from sciconv.io import GridImage, is_nddata
from sciconv.io._chips import image_source
from sciconv.io._header import replace_wcs_cards
from sciconv.postprocess._labels import label_pixels, validate_labels

__all__ = [
    "GRID_TOLERANCE",
    "check_measure_grid",
    "grid_offset",
    "reproject_labels",
    "same_grid",
]

#: Pixels two WCSs may place one pixel apart and still be one grid (astrometric rounding)
GRID_TOLERANCE = 0.1

#: Rows of the target grid mapped at once by :func:`reproject_labels` (memory by the chunk)
_ROWS_PER_CHUNK = 512

#: How to bring labels and an intensity on two grids together (the messages' advice)
_HOW_TO_FIX = (
    "carry the labels onto the intensity's grid with sciconv.postprocess.reproject_labels("
    "labels, labels_wcs, intensity.wcs, intensity.shape) and measure the band's own pixels; "
    "or reproject the band onto the labels' grid with the reproject package "
    "(reproject_exact or reproject_interp, times the pixel-area ratio for counts), wrap it as "
    "GridImage(data, header=band.header, wcs=labels_wcs) and write it with "
    'sciconv.io.write(..., history="reproject ...") so that noise_correlation="auto" '
    "corrects flux_err for the resampled, correlated noise"
)


def _plane_wcs(wcs):
    """The celestial 2-D part of an astropy WCS of more axes (an NDData cube's), else ``wcs``."""
    if wcs is None:
        return None
    naxis = getattr(wcs, "naxis", 2)
    if naxis > 2 and getattr(wcs, "has_celestial", False):
        return wcs.celestial
    return wcs


def _grid_shape(shape, name: str = "shape") -> tuple[int, int]:
    """``(H, W)`` of a shape ``(H, W)`` or ``(H, W, C)``, checked."""
    try:
        dims = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        dims = ()
    if len(dims) < 2 or min(dims[:2]) < 1:
        raise ConfigError(f"{name} must be the grid's (H, W) (or (H, W, C)); got {shape!r}")
    return dims[0], dims[1]


def _probe_points(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """x, y of the corners, edge midpoints and centre of a grid (0-based pixel centres)."""
    h, w = shape
    x, y = np.meshgrid([0.0, (w - 1) / 2, w - 1.0], [0.0, (h - 1) / 2, h - 1.0])
    return x.ravel(), y.ravel()


def grid_offset(wcs_a, wcs_b, shape) -> float:
    """The largest distance, in pixels, between where two WCSs place the same pixel.

    The corners, edge midpoints and centre of a ``shape`` grid are mapped from ``wcs_a``'s
    pixels through the sky to ``wcs_b``'s (:func:`astropy.wcs.utils.pixel_to_pixel`, frames
    converted); the largest distance from where they started is returned. 0 for one grid; a
    shifted pointing, a rotation or another pixel scale give more (``inf`` when a point falls
    off ``wcs_b``'s projection).

    Parameters
    ----------
    wcs_a, wcs_b : astropy.wcs.WCS or APE 14 WCS
        The two grids (an astropy WCS of more axes: its celestial part).
    shape : tuple of int
        The grid's ``(H, W)`` (or ``(H, W, C)``).

    Returns
    -------
    float
        Pixels (of ``wcs_b``'s grid).

    Raises
    ------
    ConfigError
        A WCS missing, or two WCSs astropy cannot relate (other world axes).

    Examples
    --------
    >>> from astropy.wcs import WCS
    >>> from sciconv.postprocess import grid_offset
    >>> a = WCS(naxis=2); a.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    >>> a.wcs.cdelt = [-7e-5, 7e-5]; a.wcs.crval = [150.0, 2.0]; a.wcs.crpix = [50, 50]
    >>> b = a.deepcopy(); b.wcs.crpix = [53, 54]  # the same sky 3 px right, 4 px up
    >>> round(grid_offset(a, b, (100, 100)), 6)
    5.0
    >>> grid_offset(a, a.deepcopy(), (100, 100)) < 1e-6
    True
    """
    from astropy.wcs.utils import pixel_to_pixel

    grid = _grid_shape(shape)
    if wcs_a is None or wcs_b is None:
        raise ConfigError("grid_offset needs two WCSs; got None")
    if wcs_a is wcs_b:
        return 0.0
    x, y = _probe_points(grid)
    try:
        with warnings.catch_warnings():  # astropy's own notes on the WCSs: not ours to repeat
            warnings.simplefilter("ignore")
            xb, yb = pixel_to_pixel(_plane_wcs(wcs_a), _plane_wcs(wcs_b), x, y)
    except Exception as exc:  # other world axes, frames with no transformation
        raise ConfigError(
            f"cannot map one grid's pixels onto the other's ({type(exc).__name__}: {exc})"
        ) from exc
    dist = np.hypot(np.asarray(xb, float) - x, np.asarray(yb, float) - y)
    return float(dist.max()) if np.isfinite(dist).all() else float("inf")


def same_grid(wcs_a, wcs_b, shape, tolerance: float = GRID_TOLERANCE) -> bool:
    """Whether two WCSs describe one pixel grid: :func:`grid_offset` at most ``tolerance``.

    Parameters
    ----------
    wcs_a, wcs_b : astropy.wcs.WCS or APE 14 WCS
        The two grids.
    shape : tuple of int
        The grid's ``(H, W)`` (or ``(H, W, C)``).
    tolerance : float, optional
        Pixels; default :data:`GRID_TOLERANCE` (0.1).

    Returns
    -------
    bool

    Raises
    ------
    ConfigError
        As :func:`grid_offset`.

    Examples
    --------
    >>> from astropy.wcs import WCS
    >>> from sciconv.postprocess import same_grid
    >>> a = WCS(naxis=2); a.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    >>> a.wcs.cdelt = [-7e-5, 7e-5]; a.wcs.crpix = [50, 50]
    >>> b = a.deepcopy(); b.wcs.crpix = [50.05, 50]
    >>> same_grid(a, b, (100, 100)), same_grid(a, b, (100, 100), tolerance=0.01)
    (True, False)
    """
    return grid_offset(wcs_a, wcs_b, shape) <= float(tolerance)


def _own_wcs(value):
    """The WCS a GridImage or NDData carries (its celestial part), else None."""
    if isinstance(value, GridImage) or is_nddata(value):
        return _plane_wcs(getattr(value, "wcs", None))
    return None


def _named(what: str, value) -> str:
    """``what`` with the file and HDU it came from, when known (``labels (r_labels.fits)``,
    ``intensity (j8_flc.fits[SCI,2])``: two chips of one file are told apart)."""
    where = image_source(value) if isinstance(value, GridImage) else None
    return f"{what} ({where})" if where else what


def check_measure_grid(labels, intensity=None, wcs=None) -> None:
    """Refuse labels and an intensity on two pixel grids; warn when ``wcs=`` is another grid.

    The check :func:`~sciconv.postprocess.measure` makes before summing pixels (its arguments
    as given). Labels index the pixels of the image they were found on; a GridImage of labels
    (:func:`sciconv.io.read_labels` with ``grid=True``, :func:`reproject_labels`) carries that
    grid's WCS. Compared (:func:`grid_offset`, tolerance :data:`GRID_TOLERANCE`):

    - the labels' WCS and the ``intensity``'s own (a GridImage's or NDData's ``.wcs``): more
      than 0.1 px apart anywhere is an error, since the fluxes would be summed over other
      pixels of the sky;
    - ``wcs`` and the grid of the pixels measured (the ``intensity``'s own WCS, else the
      labels'): more than 0.1 px apart is a :class:`~sciconv.errors.SciconvWarning` only, as a
      corrected astrometric solution of the same pixels is a legitimate ``wcs``: ra/dec come
      from ``wcs``, the fluxes from the intensity's pixels.

    Nothing is checked where a side carries no WCS (plain arrays) or the shapes differ (which
    ``measure`` refuses itself).

    Parameters
    ----------
    labels : GridImage, NDData or array_like
        ``measure``'s labels.
    intensity : GridImage, NDData or array_like, optional
        ``measure``'s intensity.
    wcs : astropy.wcs.WCS, optional
        ``measure``'s ``wcs``.

    Raises
    ------
    InvalidImageError
        Labels and intensity whose WCSs place a pixel more than 0.1 px apart; the message
        names the offset and how to bring them onto one grid.

    Warns
    -----
    SciconvWarning
        ``wcs`` more than 0.1 px from the measured pixels' grid; two WCSs that cannot be
        compared (nothing checked).

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.wcs import WCS
    >>> from sciconv.io import GridImage
    >>> from sciconv.postprocess import check_measure_grid
    >>> w = WCS(naxis=2); w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    >>> w.wcs.cdelt = [-7e-5, 7e-5]; w.wcs.crpix = [10, 10]
    >>> labels = GridImage(np.zeros((20, 20, 1), np.int32), wcs=w)
    >>> check_measure_grid(labels, GridImage(np.zeros((20, 20, 1), np.float32), wcs=w))
    >>> shifted = w.deepcopy(); shifted.wcs.crpix = [13, 14]
    >>> check_measure_grid(labels, GridImage(np.zeros((20, 20, 1), np.float32), wcs=shifted))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sciconv.errors.InvalidImageError: labels and intensity are not on one pixel grid: ...
    """
    labels_wcs = _own_wcs(labels)
    image_wcs = _own_wcs(intensity)
    pixels_wcs = image_wcs if image_wcs is not None else labels_wcs  # the measured pixels' grid
    both = labels_wcs is not None and image_wcs is not None
    if not both and (wcs is None or pixels_wcs is None):
        return  # nothing to compare
    shape = tuple(np.shape(label_pixels(labels)))[:2]
    if len(shape) < 2 or min(shape) < 1:
        return  # no grid to compare: measure says what is wrong with the labels
    if intensity is not None:
        own = isinstance(intensity, GridImage) or is_nddata(intensity)
        pixels = intensity.data if own else intensity
        if tuple(np.shape(pixels))[:2] != shape:
            return  # measure refuses another shape itself
    h, w = shape
    if both:
        offset = _offset_or_warn(labels_wcs, image_wcs, shape, "the labels' and the intensity's")
        if offset is not None and offset > GRID_TOLERANCE:
            raise InvalidImageError(
                f"{_named('labels', labels)} and {_named('intensity', intensity)} are not on "
                f"one pixel grid: their WCSs place the same pixel up to {offset:.3g} px apart "
                f"(corners, edge midpoints and centre of the {h} x {w} grid; at most "
                f"{GRID_TOLERANCE} px is one grid), so the fluxes would be summed over other "
                f"pixels of the sky (another band's or night's image?): {_HOW_TO_FIX}"
            )
    if wcs is None or pixels_wcs is None:
        return
    whose = "intensity's" if image_wcs is not None else "labels'"
    offset = _offset_or_warn(_plane_wcs(wcs), pixels_wcs, shape, f"wcs= and the {whose}")
    if offset is not None and offset > GRID_TOLERANCE:
        warnings.warn(
            f"wcs= and the {whose} own WCS place the same pixel up to {offset:.3g} px apart "
            f"on the {h} x {w} grid: ra/dec come from wcs=, the fluxes from the intensity's "
            f"pixels, so the labels must be on the intensity's grid and wcs= describe those "
            f"pixels (fine for a corrected astrometric solution of the same image; if wcs= is "
            f"another band's or night's grid, {_HOW_TO_FIX})",
            SciconvWarning,
            stacklevel=3,
        )


def _offset_or_warn(wcs_a, wcs_b, shape, whose: str) -> float | None:
    """:func:`grid_offset`, or None with a warning when the two WCSs cannot be compared."""
    try:
        return grid_offset(wcs_a, wcs_b, shape)
    except ConfigError as err:
        warnings.warn(
            f"{whose} WCSs cannot be compared ({err}): whether they are one pixel grid is not "
            "checked",
            SciconvWarning,
            stacklevel=4,
        )
        return None


def reproject_labels(labels, from_wcs, to_wcs, shape):
    """Carry instance labels onto another pixel grid, by nearest neighbour (ids kept).

    Each pixel of the target grid takes the label of the pixel of ``labels`` nearest to the
    same point of the sky (:func:`astropy.wcs.utils.pixel_to_pixel`); target pixels that fall
    outside ``labels`` get 0 (background). For one night's detections measured on another
    night's native pixels, or a detection band's labels on another band's grid: the fluxes
    are then sums of the band's own, uncorrelated pixels.

    Nearest neighbour keeps the ids exactly (no blend of two ids) but not the areas: onto a
    grid of larger pixels an object loses area. The footprints are the labels' own, on the
    sky, so their flux fraction is the one they had, within the target pixels' rounding.

    No object that the target grid covers is lost: one smaller than a target pixel (which
    nearest-neighbour sampling misses) still has a position there, and forced photometry
    gives one row per object. Each id that sampling missed takes the one target pixel that
    most of its own pixels fall in (ties: the nearest to its centroid), where that pixel is
    background, else where the object there keeps other pixels, else the next pixel its
    footprint covers. Its flux is then that target pixel's, which holds its neighbours' light
    too: measure compact objects with ``aperture=`` at their sky positions. Ids whose
    footprint lies off the target grid are left out; ids that find no such pixel (two
    sub-pixel objects in one target pixel, the second) are left out with a
    :class:`~sciconv.errors.SciconvWarning` that counts them.

    Parameters
    ----------
    labels : GridImage, NDData or array_like of int, shape (H, W) or (H, W, 1)
        Instance labels, 0 = background (a GridImage from
        :func:`sciconv.io.read_labels` with ``grid=True`` carries its WCS).
    from_wcs : astropy.wcs.WCS or None
        The labels' grid; None: the labels' own ``.wcs`` (a GridImage's or NDData's).
    to_wcs : astropy.wcs.WCS
        The target grid (e.g. ``band.wcs``).
    shape : tuple of int
        The target grid's ``(H, W)``; an image's ``(H, W, C)`` is taken too.

    Returns
    -------
    numpy.ndarray or GridImage
        The labels on the target grid, in the labels' integer dtype (bools as uint8): an
        array ``(H, W)`` for array labels; for a GridImage (or NDData) a GridImage
        ``(H, W, 1)`` whose ``.wcs`` is ``to_wcs`` and whose header is the labels' with
        ``to_wcs``'s cards, ready for :func:`~sciconv.postprocess.measure` on the band.

    Raises
    ------
    ConfigError
        No ``from_wcs`` for labels that carry none, no ``to_wcs``, a bad ``shape``, or two
        WCSs astropy cannot relate.
    InvalidImageError
        Labels that are not a 2-D map of non-negative integers.

    Warns
    -----
    SciconvWarning
        Objects on the target grid that no target pixel could be given (counted).

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.wcs import WCS
    >>> from sciconv.postprocess import reproject_labels
    >>> a = WCS(naxis=2); a.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    >>> a.wcs.cdelt = [-7e-5, 7e-5]; a.wcs.crval = [150.0, 2.0]; a.wcs.crpix = [3, 3]
    >>> b = a.deepcopy(); b.wcs.crpix = [4, 3]  # the same sky one column right
    >>> labels = np.zeros((4, 5), np.int32); labels[1:3, 1:3] = 7
    >>> reproject_labels(labels, a, b, (4, 5))
    array([[0, 0, 0, 0, 0],
           [0, 0, 7, 7, 0],
           [0, 0, 7, 7, 0],
           [0, 0, 0, 0, 0]], dtype=int32)

    Onto pixels 4 times larger: the 1-pixel object 5 keeps the target pixel it falls in.

    >>> c = a.deepcopy(); c.wcs.cdelt = [-2.8e-4, 2.8e-4]; c.wcs.crpix = [1.5, 1.5]
    >>> small = np.zeros((8, 8), np.int32); small[0:4, 0:4] = 7; small[5, 6] = 5
    >>> reproject_labels(small, a, c, (2, 2))
    array([[7, 0],
           [0, 5]], dtype=int32)
    """
    from astropy.wcs.utils import pixel_to_pixel

    grid = isinstance(labels, GridImage) or is_nddata(labels)
    source = _plane_wcs(from_wcs) if from_wcs is not None else _own_wcs(labels)
    if source is None:
        raise ConfigError(
            "reproject_labels needs the labels' WCS: give from_wcs (labels that carry none: "
            "an array, or a GridImage without .wcs; sciconv.io.read_labels(path, grid=True) "
            "keeps a label file's)"
        )
    if to_wcs is None:
        raise ConfigError("reproject_labels needs to_wcs, the target grid's WCS (e.g. band.wcs)")
    target = _plane_wcs(to_wcs)
    h, w = _grid_shape(shape)
    ids = validate_labels(labels, keep_dtype=True)  # bools as uint8
    sh, sw = ids.shape
    out = np.zeros((h, w), dtype=ids.dtype)
    cols = np.arange(w, dtype=np.float64)
    for r0 in range(0, h, _ROWS_PER_CHUNK):
        rows = np.arange(r0, min(h, r0 + _ROWS_PER_CHUNK), dtype=np.float64)
        x, y = np.meshgrid(cols, rows)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # NaN for points off a projection: outside
                sx, sy = pixel_to_pixel(target, source, x, y)
        except Exception as exc:
            raise ConfigError(
                f"cannot map the target grid's pixels onto the labels' ({type(exc).__name__}: "
                f"{exc})"
            ) from exc
        with np.errstate(invalid="ignore"):
            ix = np.floor(np.asarray(sx, float) + 0.5)
            iy = np.floor(np.asarray(sy, float) + 0.5)
            inside = (ix >= 0) & (ix < sw) & (iy >= 0) & (iy < sh)  # NaN: False
        part = out[r0 : r0 + len(rows)]
        part[inside] = ids[iy[inside].astype(np.intp), ix[inside].astype(np.intp)]
    _keep_missed(out, ids, source, target)
    if not grid:
        return out
    header = labels.header if isinstance(labels, GridImage) else None  # an NDData has meta
    if header is not None and hasattr(target, "to_header"):  # an astropy WCS: its cards
        header = replace_wcs_cards(header, target)
    return GridImage(out[..., None], header=header, wcs=target, meta={"dtype": str(out.dtype)})


def _keep_missed(out: np.ndarray, ids: np.ndarray, source, target) -> None:
    """Give each id of ``ids`` on the target grid that nearest-neighbour sampling left out of
    ``out`` one target pixel, in place (:func:`reproject_labels`' rule); warn for the ids
    that find none."""
    from astropy.wcs.utils import pixel_to_pixel

    missed = np.setdiff1d(np.unique(ids[ids > 0]), np.unique(out[out > 0]))
    if missed.size == 0:
        return
    ys, xs = np.nonzero(np.isin(ids, missed))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NaN for points off a projection: off the grid
            tx, ty = pixel_to_pixel(source, target, xs.astype(float), ys.astype(float))
    except Exception as exc:
        raise ConfigError(
            f"cannot map the labels' pixels onto the target grid ({type(exc).__name__}: {exc})"
        ) from exc
    tx, ty = np.asarray(tx, float), np.asarray(ty, float)
    h, w = out.shape
    with np.errstate(invalid="ignore"):
        ix, iy = np.floor(tx + 0.5), np.floor(ty + 0.5)
        inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    if not inside.any():
        return  # every missed id lies off the target grid
    lab = ids[ys[inside], xs[inside]]
    tx, ty = tx[inside], ty[inside]
    flat = iy[inside].astype(np.int64) * w + ix[inside].astype(np.int64)
    # per id: its centroid on the target grid, then its target pixels, most covered first
    which, inverse = np.unique(lab, return_inverse=True)
    n = np.bincount(inverse).astype(float)
    cx, cy = np.bincount(inverse, tx) / n, np.bincount(inverse, ty) / n
    pairs, count = np.unique(np.stack([inverse, flat]), axis=1, return_counts=True)
    k, pix = pairs
    dist = np.hypot(pix % w - cx[k], pix // w - cy[k])
    order = np.lexsort((dist, -count, k))
    k, pix = k[order], pix[order]
    starts = np.searchsorted(k, np.arange(which.size))
    stops = np.append(starts[1:], k.size)
    occupants, sizes = np.unique(out, return_counts=True)
    size = dict(zip(occupants.tolist(), sizes.tolist()))
    flat_out = out.reshape(-1)
    lost = 0
    for i, label in enumerate(which.tolist()):
        # the most covered pixel that is background or that its object can spare
        chosen = next(
            (p for p in pix[starts[i] : stops[i]].tolist()
             if flat_out[p] == 0 or size[int(flat_out[p])] > 1),
            None,
        )  # fmt: skip
        if chosen is None:
            lost += 1
            continue
        if flat_out[chosen] != 0:
            size[int(flat_out[chosen])] -= 1
        flat_out[chosen] = label
        size[label] = 1
    if lost:
        warnings.warn(
            f"reproject_labels: {lost} of {int(np.unique(ids[ids > 0]).size)} labels are "
            "smaller than a target pixel and share it with another such label: they have no "
            "pixel on the target grid and no row in its catalog; measure them with aperture= "
            "at their sky positions",
            SciconvWarning,
            stacklevel=3,
        )
