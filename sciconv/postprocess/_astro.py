"""Products in the astronomers' own types: photutils catalogs, DS9 regions, ``CCDData``.

Each bridge hands the work to the library the format belongs to (photutils, regions, astropy);
nothing here re-implements a format.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sciconv._atomic import atomic_output
from sciconv._progress import progress_bar
from sciconv._validation import look_up_option, refuse_swapped
from sciconv.errors import ConfigError, InvalidImageError
from sciconv.io import (
    PIXEL_VALUE_KEYWORDS,
    UNIT_KEYWORDS,
    GridImage,
    as_array,
    drop_keywords,
    user_path,
)
from sciconv.io._common import warn_caller
from sciconv.io._scale import off_sky_frame
from sciconv.io._units import known_unit
from sciconv.postprocess._background import in_unit
from sciconv.postprocess._errors import own_error
from sciconv.postprocess._labels import READ_LABELS, validate_labels
from sciconv.postprocess._measure import celestial_wcs, id_dtype, measure, renumbered, sparse_ids
from sciconv.postprocess._pixels import per_pixel
from sciconv.postprocess._writers import (
    class_cards,
    class_name_list,
    fits_layout,
    like_wcs,
    validate_cube,
    validate_uncertainty,
)

#: Region shapes of :func:`to_regions`.
REGION_SHAPES = ("ellipse", "polygon")
_MIN_AXIS = 1.0  # a one-pixel-wide object has a zero second moment across: drawn one pixel wide
#: Region file extensions of :func:`write_regions` and the ``regions`` format each is written with.
REGION_FORMATS = {".reg": "ds9", ".crtf": "crtf"}


def _require(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ConfigError(
            f"this needs the optional package {package!r}, which is not installed; "
            f"install it with `pip install {package}`"
        ) from err


def _image_wcs(image, wcs):
    if wcs is None:
        wcs = getattr(image, "wcs", None)
    return celestial_wcs(wcs)


def _image_mask(image, mask, shape) -> np.ndarray | None:
    """The bad-pixel mask (H, W): ``mask``, else the image's own (GridImage / NDData)."""
    if mask is None:
        mask = getattr(image, "mask", None)
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim == 3:
        mask = mask.any(axis=-1) if mask.shape[:2] == tuple(shape) else mask.any(axis=0)
    if mask.shape != tuple(shape):
        raise InvalidImageError(f"mask must have shape {tuple(shape)}; got shape {mask.shape}")
    return mask


# --------------------------------------------------------------------------------------------------
# photutils


def to_photutils(
    labels, image, *, wcs=None, mask=None, error: str | np.ndarray | None = "auto", background=None
):
    """The photutils view of a segmentation: ``(SegmentationImage, SourceCatalog)``.

    Every photutils measurement (isophotal fluxes, Kron photometry, Gini, ``sky_centroid``, ...)
    then runs on sciconv's instance labels. photutils and :func:`measure` share the pixel
    convention (x = column, y = row, 0-based pixel centres). Given the same ``background`` and
    ``error``, ``segment_flux`` is :func:`measure`'s ``flux``, ``segment_flux_err`` its
    ``flux_err`` of independent pixels (``measure(noise_correlation=None)``: photutils has no
    correlated-noise factor for a resampled image), the centroid (``x_centroid``) its
    ``x_weighted`` and ``sky_centroid`` its ``ra``/``dec`` (photutils 1.9 to 2.x, which sciconv
    also takes, spell them ``segment_fluxerr`` and ``xcentroid``); photutils' ``area`` leaves
    masked pixels out where :func:`measure`'s counts every labelled pixel. The pixels keep the
    image's unit (a GridImage's ``BUNIT``, an NDData's unit), so fluxes come back as Quantities.

    photutils allocates by the largest id, so sparse ids (offset or hashed ones, ids above
    2**31 - 1; the ids :func:`measure` renumbers internally) are renumbered 1, 2, ... in
    increasing order for it, with a :class:`~sciconv.errors.SciconvWarning`: the catalog then
    has the property ``original_label`` (the given id of each row, int64), which
    ``catalog.to_table()`` lists right after ``label``.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W), or GridImage
        Instance labels (0 = background), e.g. from :func:`instances`; integer ``(H, W, 1)``
        too, as :func:`measure` takes them (floats refused: :func:`sciconv.io.read_labels`).
    image : ndarray of shape (H, W) or (H, W, 1), GridImage or NDData
        The pixels to measure (one channel).
    wcs : astropy.wcs.WCS, optional
        A celestial WCS; default the image's own (``GridImage.wcs``, ``NDData.wcs``). With one,
        the catalog has ``sky_centroid`` and friends.
    mask : ndarray of bool, shape (H, W), optional
        True = bad pixel, left out of every measurement; default the image's own mask. Non-finite
        pixels are always left out.
    error : "auto", ndarray of shape (H, W) or None, optional
        Per-pixel 1-sigma errors (:func:`estimate_error`), for ``segment_flux_err`` and friends.
        ``"auto"``: the image's own uncertainty (an NDData's), else none. An astropy Quantity is
        converted to the image's unit, as ``background`` is.
    background : float or ndarray of shape (H, W), optional
        Subtracted from the pixels first (photutils measures background-subtracted data), and
        given to photutils as ``background`` (its ``background_mean`` and friends). An astropy
        Quantity is converted to the image's unit (:func:`in_unit`: beside an image without a
        unit only a dimensionless one is taken).

    Returns
    -------
    segm : photutils.segmentation.SegmentationImage
    catalog : photutils.segmentation.SourceCatalog
        ``catalog.to_table()`` gives the default columns; ``catalog.to_table(columns=[...])``
        any of ``catalog.properties``.

    Raises
    ------
    ConfigError
        photutils is not installed (``pip install photutils``), there is no object, or a
        ``background`` / ``error`` Quantity whose unit does not convert to the image's.
    InvalidImageError
        ``labels``, ``image`` or ``mask`` of the wrong shape.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.postprocess import to_photutils
    >>> labels = np.zeros((10, 12), np.int32); labels[2:5, 3:9] = 1
    >>> segm, cat = to_photutils(labels, np.ones((10, 12)))
    >>> len(segm.labels), float(cat.area[0].value), float(cat.centroid[0][0])  # x: x_centroid
    (1, 18.0, 5.5)
    """
    segmentation = _require("photutils.segmentation", "photutils")
    labels = validate_labels(labels)
    data = np.asarray(as_array(image, load=True), dtype=np.float64)
    if data.ndim == 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.shape != labels.shape:
        raise InvalidImageError(
            f"image must be one channel of the labels' shape {labels.shape}; got {data.shape}"
        )
    bad = ~np.isfinite(data)
    given = _image_mask(image, mask, labels.shape)
    if given is not None:
        bad |= given
    if not (labels > 0).any():
        raise ConfigError("labels hold no object (all 0): photutils needs at least one")
    unit = known_unit(getattr(image, "unit", None))
    level = None
    if background is not None:
        background = in_unit(background, unit, name="background")
        level = np.broadcast_to(_plane(background, labels.shape, "background"), labels.shape)
        data = data - level
    if isinstance(error, str):
        look_up_option(error, ("auto",), name="error", error=ConfigError)
        error = own_error(image)
    sigma = (
        None if error is None else _plane(in_unit(error, unit, name="error"), labels.shape, "error")
    )

    def quantity(values):  # photutils wants data, error and background in one unit
        return values if unit is None else values * unit

    ids, given = _photutils_ids(labels)
    segm = segmentation.SegmentationImage(ids)
    catalog = segmentation.SourceCatalog(
        quantity(np.where(bad, 0.0, data)),
        segm,
        error=None if sigma is None else quantity(np.where(bad, 0.0, sigma)),
        background=None if level is None else quantity(np.array(level)),
        mask=bad if bad.any() else None,
        wcs=_image_wcs(image, wcs),
    )
    if given is not None:  # the user's ids beside photutils' (add_extra_property before 2.0)
        add = getattr(catalog, "add_property", None) or catalog.add_extra_property
        add("original_label", given[catalog.label])
        columns = list(catalog.default_columns)
        columns.insert(columns.index("label") + 1 if "label" in columns else 0, "original_label")
        catalog.default_columns = columns
    return segm, catalog


def _photutils_ids(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(ids, given)``: int32 labels photutils can take, and None when they are the labels
    themselves; sparse ids (:func:`measure`'s rule, and any above 2**31 - 1: photutils
    allocates by the largest id, a MemoryError near 2**31) renumbered 1, 2, ..., with
    ``given[k]`` the id numbered ``k`` (``given[0]`` = 0)."""
    largest = int(labels.max())
    if not sparse_ids(largest, labels.size) and id_dtype(largest) == np.int32:
        return labels.astype(np.int32), None
    index, given = renumbered(labels)
    warn_caller(
        f"labels up to {largest} renumbered 1..{len(given) - 1} for photutils (it allocates by "
        "the largest id): catalog.original_label holds the given ids",
        "sciconv",
    )
    return index.astype(np.int32), given.astype(np.int64)


def _plane(values, shape, name: str) -> np.ndarray:
    """A number or one (H, W) plane of ``values`` (float64) for :func:`to_photutils`."""
    v = per_pixel(values, name, shape)
    return v[0, 0, 0] if v.shape[0] == 1 else v[..., 0]


# --------------------------------------------------------------------------------------------------
# regions


def _region_rows(source, *, wcs, shape):
    """(catalog rows, labels or None) from a catalog Table or an instance-label image."""
    from astropy.table import Table

    if isinstance(source, Table):
        if shape == "polygon":
            raise ConfigError(
                "shape='polygon' needs the label image (the outlines), not a catalog; pass the "
                "labels, or use shape='ellipse'"
            )
        missing = [c for c in ("x", "y", "semi_major", "semi_minor") if c not in source.colnames]
        if missing:
            raise ConfigError(
                f"catalog has no column(s) {missing}: pass a table from sciconv.postprocess."
                "measure (x, y, semi_major, semi_minor, orientation) or the labels"
            )
        return source, None
    labels = validate_labels(source)
    return measure(labels), labels


def _outlines(labels, row) -> list[np.ndarray]:
    """The outer boundary of each connected piece of one object (4-connected, as the GeoJSON
    pieces), largest piece first: (n, 2) pixel (x, y) vertices each (holes are not outlined)."""
    from scipy import ndimage as ndi
    from skimage.measure import find_contours

    x0, y0 = int(row["bbox_xmin"]), int(row["bbox_ymin"])  # the box's max is inclusive
    box = labels[y0 : int(row["bbox_ymax"]) + 1, x0 : int(row["bbox_xmax"]) + 1] == row["label"]
    pieces, n = ndi.label(box)
    sizes = np.bincount(pieces.ravel(), minlength=n + 1)[1:]
    out = []
    for i in np.argsort(-sizes, kind="stable") + 1:
        piece = ndi.binary_fill_holes(pieces == i)  # one closed outer contour per piece
        contours = find_contours(np.pad(piece, 1).astype(np.float32), 0.5)
        if contours:
            rc = max(contours, key=len)[:-1]  # closed: the last vertex repeats the first
            out.append(np.column_stack([rc[:, 1] + x0 - 1, rc[:, 0] + y0 - 1]))
    return out


#: Objects above which ``sciconv predict`` and :func:`sciconv.inference.predict_mosaic` show
#: the progress of region writing (about 0.3 ms an object, mostly regions' own objects and
#: writer).
MANY_REGIONS = 10_000


def _ds9_wcs(wcs):
    """``wcs``, or None (pixel regions, with a warning) for an ecliptic WCS of an equinox other
    than J2000: region files name only ``ecliptic``, which DS9 and regions read as J2000 (QA: an
    EQUINOX 1950 image's regions 0.69 degrees off)."""
    from sciconv.io._frames import ecliptic_frame

    frame = None if wcs is None else ecliptic_frame(wcs)
    equinox = getattr(frame, "equinox", None)
    if equinox is None or abs(float(equinox.jyear) - 2000.0) < 1e-6:
        return wcs
    warn_caller(
        f"region files name no ecliptic of equinox {equinox.jyear:g} (only J2000's): pixel "
        "regions written, not sky ones"
    )
    return None


def _floats(column) -> np.ndarray:
    """A catalog column as float64, a masked entry NaN (as ``float(row[name])`` gives it)."""
    return np.ma.filled(np.ma.asarray(column, dtype=np.float64), np.nan)


def sky_ellipses(x, y, width, height, angle, wcs):
    """The sky ellipses of many pixel ellipses at once: what regions' ``EllipsePixelRegion.to_sky``
    gives one by one, from a few array calls of the WCS.

    The same steps as regions' ``pixel_shape_to_sky_svd`` (``regions._utils.wcs_helpers``): the
    local Jacobian from one-pixel steps in x and y at each centre (separations and position
    angles, so it holds at the poles and across RA = 0), the composite matrix of the pixel
    semi-axes, its SVD, regions' width/height assignment and sign rules, the position angle
    turned into regions' angle from the RA axis. The results equal ``to_sky``'s to float
    precision (a distorted WCS: to its iterative inverse's, 1e-9 of an axis) from regions 0.12
    on, whichever regions is installed (0.10-0.11 took the axes without the SVD: up to 36 %
    apart on a rotated or skewed WCS).

    Parameters
    ----------
    x, y : array_like of float, shape (N,)
        Centres, 0-based pixels.
    width, height : array_like of float, shape (N,)
        Full axes in pixels (``width`` along ``angle``).
    angle : array_like of float, shape (N,)
        Rotation of the width axis, degrees from +x towards +y.
    wcs : astropy.wcs.WCS
        A celestial WCS (any WCS of astropy's shared interface).

    Returns
    -------
    center : astropy.coordinates.SkyCoord, shape (N,)
    width, height : astropy.coordinates.Angle, shape (N,)
        Full axes (arcsec).
    angle : astropy.coordinates.Angle, shape (N,)
        regions' ``EllipseSkyRegion.angle``: from the longitude axis, in [0, 360) degrees.
    ok : ndarray of bool, shape (N,)
        False where the conversion is undefined (a centre off the projection, a singular
        Jacobian, NaN input): the other outputs are NaN there; ``to_sky`` tells why.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.wcs import WCS
    >>> wcs = WCS(naxis=2)
    >>> wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    >>> wcs.wcs.crval = [150.0, 2.0]
    >>> wcs.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    >>> center, width, height, angle, ok = sky_ellipses([0.0], [0.0], [10.0], [4.0], [90.0], wcs)
    >>> [round(float(v), 3) for v in (width.arcsec[0], height.arcsec[0], angle.deg[0])], ok
    ([2.0, 0.8, 90.0], array([ True]))
    >>> import regions, astropy.units as u  # what regions' own to_sky gives (0.10: to 1e-9")
    >>> one = regions.EllipsePixelRegion(regions.PixCoord(0.0, 0.0), 10.0, 4.0, angle=90 * u.deg)
    >>> one = one.to_sky(wcs)
    >>> pairs = ((one.width, width[0]), (one.height, height[0]), (one.angle, angle[0]))
    >>> all(u.isclose(theirs, ours, rtol=1e-9) for theirs, ours in pairs)
    True
    """
    from astropy import units as u
    from astropy.coordinates import Angle

    x, y, width, height, angle = (
        np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (x, y, width, height, angle)
    )
    center = wcs.pixel_to_world(x, y)
    # regions' compute_local_wcs_jacobian: the centre back to pixels, then one-pixel steps
    x0, y0 = wcs.world_to_pixel(center)
    sky0 = wcs.pixel_to_world(x0, y0)
    forward = np.empty((len(x), 2, 2))  # d(xi, eta arcsec) / d(x, y pixel)
    for col, step in enumerate((wcs.pixel_to_world(x0 + 1, y0), wcs.pixel_to_world(x0, y0 + 1))):
        sep = sky0.separation(step).rad
        pa = sky0.position_angle(step).rad
        forward[:, 0, col] = sep * np.sin(pa) * (3600.0 * np.degrees(1))
        forward[:, 1, col] = sep * np.cos(pa) * (3600.0 * np.degrees(1))
    rad = (angle * u.deg).to_value(u.radian)
    m_pix = np.empty_like(forward)  # columns: the pixel semi-axes
    m_pix[:, 0, 0], m_pix[:, 0, 1] = 0.5 * width * np.cos(rad), -0.5 * height * np.sin(rad)
    m_pix[:, 1, 0], m_pix[:, 1, 1] = 0.5 * width * np.sin(rad), 0.5 * height * np.cos(rad)
    ok = np.isfinite(forward).all(axis=(1, 2)) & np.isfinite(m_pix).all(axis=(1, 2))
    ok[ok] = np.linalg.det(forward[ok]) != 0
    forward[~ok] = np.eye(2)  # placeholders: NaN at the end
    # regions inverts twice (the Jacobian, then back): the same rounding
    m_sky = np.linalg.inv(np.linalg.inv(forward)) @ m_pix
    # regions' _svd_ellipse_from_composite, one matrix per object
    u_mat, s_vals, _ = np.linalg.svd(m_sky)
    width_col = m_sky[:, :, 0]
    along = np.abs(np.einsum("ni,nij->nj", width_col, u_mat))  # |u_k . width| per column k
    major_is_width = along[:, 0] >= along[:, 1]
    out_width = 2 * np.where(major_is_width, s_vals[:, 0], s_vals[:, 1])
    out_height = 2 * np.where(major_is_width, s_vals[:, 1], s_vals[:, 0])
    angle_col = np.where(major_is_width[:, None], u_mat[:, :, 0], u_mat[:, :, 1])
    flip = np.einsum("ni,ni->n", angle_col, width_col) < 0
    angle_col = np.where(flip[:, None], -angle_col, angle_col)
    norm = np.linalg.norm(width_col, axis=1)
    circular = np.isclose(width, height) & (norm > 0)  # a circle keeps its input angle
    with np.errstate(invalid="ignore", divide="ignore"):
        angle_col = np.where(circular[:, None], width_col / norm[:, None], angle_col)
    pa = Angle(np.rad2deg(np.arctan2(angle_col[:, 0], angle_col[:, 1])) * u.deg)
    sky_angle = (pa.wrap_at(360 * u.deg) + 90 * u.deg).wrap_at(360 * u.deg)
    bad = np.where(ok, 1.0, np.nan)
    return (
        center,
        Angle(out_width * bad, "arcsec"),
        Angle(out_height * bad, "arcsec"),
        sky_angle * bad,
        ok,
    )


def _ellipse_regions(x, y, width, height, angle, metas, *, wcs, bar) -> list:
    """regions' ellipses (pixel ones, or sky ones when ``wcs``), converted all at once."""
    regions = _require("regions", "regions")
    from astropy import units as u

    if wcs is not None:  # the batched to_sky (QA: 2.8 ms an object one by one)
        center, sky_w, sky_h, sky_angle, ok = sky_ellipses(x, y, width, height, angle, wcs)
    out = []
    for i, meta in enumerate(metas):
        if bar is not None:
            bar.update(1)
        if wcs is not None and ok[i]:
            out.append(
                regions.EllipseSkyRegion(
                    center[i], sky_w[i], sky_h[i], angle=sky_angle[i], meta=meta
                )
            )
            continue
        region = regions.EllipsePixelRegion(
            center=regions.PixCoord(float(x[i]), float(y[i])),
            width=float(width[i]),
            height=float(height[i]),
            angle=float(angle[i]) * u.deg,
            meta=meta,
        )
        # where the batch has no answer, regions' own to_sky says what it makes of it
        out.append(region if wcs is None else region.to_sky(wcs))
    return out


def _polygon_regions(pieces, *, wcs) -> list:
    """regions' polygons of ``(vertices, meta)`` pieces; sky ones from one WCS call for all."""
    regions = _require("regions", "regions")
    if wcs is None:
        return [
            regions.PolygonPixelRegion(vertices=regions.PixCoord(v[:, 0], v[:, 1]), meta=dict(m))
            for v, m in pieces
        ]
    if not pieces:
        return []
    every = np.concatenate([v for v, _ in pieces])
    sky = wcs.pixel_to_world(every[:, 0], every[:, 1])  # PolygonPixelRegion.to_sky, batched
    ends = np.cumsum([len(v) for v, _ in pieces])
    return [
        regions.PolygonSkyRegion(vertices=sky[end - len(v) : end], meta=dict(m))
        for (v, m), end in zip(pieces, ends, strict=True)
    ]


def to_regions(catalog_or_labels, *, wcs=None, shape: str = "ellipse", progress: bool = False):
    """DS9/Aladin regions of the detected objects: one region per object (per piece of it).

    Parameters
    ----------
    catalog_or_labels : astropy.table.Table, ndarray of int, shape (H, W), or GridImage
        A :func:`measure` table (``x``, ``y``, ``semi_major``, ``semi_minor``, ``orientation``;
        ``label`` is the region's text) or instance labels (measured here; taken as
        :func:`measure` takes them: integer ``(H, W, 1)``, a GridImage).
    wcs : astropy.wcs.WCS, optional
        A celestial WCS: the regions are in sky coordinates (``EllipseSkyRegion``,
        ``PolygonSkyRegion``). Default: pixel regions (0-based; DS9 files get 1-based pixels).
    shape : {"ellipse", "polygon"}, optional
        ``"ellipse"``: the second-moment ellipse of :func:`measure` (width ``2 * semi_major``,
        angle ``orientation`` from +x towards +y; axes at least one pixel, so a one-pixel-wide
        object is drawn one pixel wide). ``"polygon"``: the object's outer outline,
        traced through the pixel-edge midpoints by :func:`skimage.measure.find_contours` (needs
        labels); an object in separate (4-connected) pieces, a MultiPolygon in its GeoJSON,
        gets one polygon per piece, largest first, each with the object's ``text``. Default
        ``"ellipse"``.
    progress : bool, optional
        A progress bar over the objects. Sky ellipses are converted all at once
        (:func:`sky_ellipses`, regions' own ``to_sky`` math) and sky polygons with one WCS
        call; building the ``regions`` objects takes about 0.1 ms an object and regions' DS9
        writer about 0.2 ms more (a minute or two for a survey mosaic's 350,000 sources).
        Default False.

    Returns
    -------
    regions.Regions
        ``regions.Regions.write(path, format="ds9")`` or :func:`write_regions` writes it.

    Raises
    ------
    ConfigError
        Unknown ``shape``, a polygon from a catalog, a catalog without the columns, a WCS
        without celestial axes.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.postprocess import to_regions
    >>> labels = np.zeros((10, 12), np.int32); labels[2:5, 3:9] = 1
    >>> reg = to_regions(labels)
    >>> r = reg[0]
    >>> type(r).__name__, (float(r.center.x), float(r.center.y)), r.meta["text"]
    ('EllipsePixelRegion', (5.5, 3.0), '1')
    >>> type(to_regions(labels, shape="polygon")[0]).__name__
    'PolygonPixelRegion'
    """
    regions = _require("regions", "regions")
    shape = look_up_option(shape, REGION_SHAPES, name="shape")
    wcs = _ds9_wcs(celestial_wcs(wcs, instead="pixel regions written, not sky ones"))
    rows, labels = _region_rows(catalog_or_labels, wcs=wcs, shape=shape)
    # centre each ellipse where the catalog puts its RA/Dec (flux-weighted when measured so)
    cx, cy = ("x", "y")
    # (a VOTable read back has lost its meta, RADECSRC included: measure's ra/dec then came
    # from x_weighted whenever it has one; QA, regions up to 2.8 HST pixels off the catalog)
    # (a pixel catalog, no ra/dec, keeps its geometric centres: review)
    radecsrc = str(rows.meta.get("RADECSRC", "x_weighted" if "ra" in rows.colnames else "x"))
    if radecsrc.startswith("x_weighted") and "x_weighted" in rows.colnames:
        cx, cy = ("x_weighted", "y_weighted")
    texts = [str(v) for v in rows["label"]] if "label" in rows.colnames else [None] * len(rows)
    metas = [{"text": text} if text is not None else {} for text in texts]
    bar = progress_bar(len(rows), desc="to_regions", unit="object", enabled=progress)
    if shape == "ellipse":
        angle = _floats(rows["orientation"]) if "orientation" in rows.colnames else 0.0
        out = _ellipse_regions(
            _floats(rows[cx]),
            _floats(rows[cy]),
            np.maximum(2 * _floats(rows["semi_major"]), _MIN_AXIS),
            np.maximum(2 * _floats(rows["semi_minor"]), _MIN_AXIS),
            np.broadcast_to(angle, (len(rows),)),
            metas,
            wcs=wcs,
            bar=bar,
        )
    else:
        out = []
        for row, meta in zip(rows, metas, strict=True):
            if bar is not None:
                bar.update(1)
            for vertices in _outlines(labels, row):  # an object in pieces: one polygon each
                if len(vertices) >= 3:
                    out.append((vertices, meta))
        out = _polygon_regions(out, wcs=wcs)
    if bar is not None:
        bar.close()
    return regions.Regions(out)


def write_regions(
    regions_or_catalog,
    path: str | os.PathLike,
    *,
    wcs=None,
    shape: str = "ellipse",
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write regions as a DS9 (``.reg``) or CASA (``.crtf``) region file, atomically.

    Parameters
    ----------
    regions_or_catalog : regions.Regions, astropy.table.Table or ndarray of int
        Regions, or what :func:`to_regions` takes (then ``wcs`` and ``shape`` apply).
    path : str or os.PathLike
        ``.reg`` (DS9, which Aladin and most viewers read too) or ``.crtf``.
    wcs : astropy.wcs.WCS, optional
        Sky regions instead of ``image`` pixel ones, in the WCS's own frame (``icrs``/``fk5``,
        ``galactic`` or ``fk4`` in the file; a catalog's ``ra``/``dec`` are ICRS).
    shape : {"ellipse", "polygon"}, optional
        See :func:`to_regions`.
    overwrite : bool, optional
        Replace an existing file. Default False (raises ``OutputExistsError``).
    progress : bool, optional
        A progress bar while a catalog becomes regions (:func:`to_regions`). Default False.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, regions
    >>> from sciconv.postprocess import write_regions
    >>> labels = np.zeros((10, 12), np.int32); labels[2:5, 3:9] = 1
    >>> path = write_regions(labels, pathlib.Path(tempfile.mkdtemp()) / "objects.reg")
    >>> back = regions.Regions.read(path, format="ds9")
    >>> float(back[0].center.x), round(float(back[0].width), 2)
    (5.5, 6.83)
    """
    refuse_swapped(path, regions_or_catalog, call="write_regions(regions_or_catalog, path)")
    regions = _require("regions", "regions")
    path = user_path(path)
    ext = look_up_option(path.suffix.lower() or path.name, tuple(REGION_FORMATS), name="extension")
    reg = regions_or_catalog
    if not isinstance(reg, regions.Regions):
        reg = to_regions(reg, wcs=wcs, shape=shape, progress=progress)
    options = {}
    if REGION_FORMATS[ext] == "crtf":
        options = _crtf_options(reg, path, regions)
    with atomic_output(path, overwrite=overwrite) as tmp:
        reg.write(tmp, format=REGION_FORMATS[ext], **options)
    return path


def _crtf_options(reg, path: Path, regions) -> dict:
    """CRTF writing options: sky regions only (regions writes no pixel CRTF: QA, a bare
    UnitConversionError), in their own frame (astropy's default turned ICRS into FK5 J2000)
    with 9 decimals of a degree (6 rounded HST ellipse axes by up to 12.6 %)."""
    if any(not isinstance(r, regions.SkyRegion) for r in reg):
        raise ConfigError(
            f"{path}: CASA region files (.crtf) hold sky regions only; pass the image's wcs= "
            "(or write pixel regions to a DS9 .reg file)"
        )
    frames = {r.center.frame.name for r in reg if hasattr(r, "center")}
    frames |= {r.vertices.frame.name for r in reg if hasattr(r, "vertices")}
    frame = frames.pop() if len(frames) == 1 else "icrs"
    return {"fmt": ".9f", "coordsys": frame if frame in ("icrs", "fk5", "galactic") else "icrs"}


# --------------------------------------------------------------------------------------------------
# CCDData


def _like_parts(like):
    """(header, wcs, mask) of ``like``: a GridImage, an NDData or a FITS header."""
    from astropy.io import fits

    if like is None:
        return None, None, None
    if isinstance(like, fits.Header):
        return like, like_wcs(like), None
    if isinstance(like, GridImage):
        return like.header, like.wcs, like.mask
    if hasattr(like, "wcs") and hasattr(like, "meta"):  # NDData
        meta = like.meta if isinstance(like.meta, fits.Header) else None
        return meta, _product_wcs(like.wcs), like.mask
    raise ConfigError(
        f"like must be a GridImage, an NDData or an astropy.io.fits.Header; got "
        f"{type(like).__name__}"
    )


def _product_wcs(wcs):
    """The WCS a 2-D product of an NDData carries: its celestial part; a 2-D WCS of other axes
    (a long slit's WAVE x OFFSET) as it is (QA: refused as 'ra/dec need a celestial WCS',
    though no ra/dec were asked for); none for other axes, with a warning."""
    if wcs is None:
        return None
    if getattr(wcs, "has_celestial", False):
        if off_sky_frame(wcs) is not None:  # a solar or planetary map: its own WCS, no ra/dec
            return wcs.celestial if wcs.naxis > 2 else wcs
        return celestial_wcs(wcs)
    if getattr(wcs, "pixel_n_dim", None) == 2:
        return wcs
    warn_caller(
        f"the WCS's axes {list(getattr(wcs, 'world_axis_physical_types', []))} are not "
        "celestial and not 2-D: the product is written without a WCS",
        "sciconv",
    )
    return None


def to_ccddata(
    prob_or_labels,
    *,
    like=None,
    mask=None,
    uncertainty=None,
    class_names: Sequence[str] | None = None,
):
    """A prediction product as :class:`astropy.nddata.CCDData`, with the input's header and WCS.

    ``CCDData.write(path)`` then writes it as FITS with the mask in a ``MASK`` extension and the
    uncertainty in ``UNCERT`` (``UTYPE = 'StdDevUncertainty'``), and ccdproc, photutils and
    astropy take it as it is (:func:`write_products` writes the same extensions).

    Parameters
    ----------
    prob_or_labels : ndarray of shape (H, W, K), (H, W) float, (H, W) int, or GridImage
        Class probabilities (the full class cube, stored as astropy orders it, ``(K, H, W)``,
        float32, with ``CLASSi`` cards naming the planes as :func:`write_products` does; K = 1
        gives ``(H, W)``) or instance labels (integer, stored as int32, or int64 when an id
        exceeds 2**31 - 1, as :func:`write_products` stores them: never wrapped). Floats are
        probabilities: labels read with :func:`sciconv.io.read` (float32) are refused, naming
        :func:`sciconv.io.read_labels`.
    like : GridImage, NDData or astropy.io.fits.Header, optional
        The input image: its header (as ``meta``), celestial WCS and bad-pixel mask are carried.
    mask : ndarray of bool, shape (H, W), optional
        True = bad; default ``like``'s mask (any channel), else none.
    uncertainty : ndarray or astropy.nddata.StdDevUncertainty, optional
        One standard deviation per pixel, in the layout of ``prob_or_labels`` ((H, W, K) for
        probabilities, one per class; (H, W) otherwise); stored as a ``StdDevUncertainty`` in
        the data's layout (``(K, H, W)``).
    class_names : sequence of str, optional
        One name per probability plane; default as :func:`write_products`.

    Returns
    -------
    astropy.nddata.CCDData
        Unit ``dimensionless``, which FITS writes as no ``BUNIT``: read the file back with
        ``CCDData.read(path, unit=u.one)``.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from astropy import units as u
    >>> from astropy.nddata import CCDData
    >>> from sciconv.postprocess import to_ccddata
    >>> labels = np.zeros((6, 8), np.int32); labels[1:3, 2:5] = 1
    >>> mask = np.zeros((6, 8), bool); mask[5, 7] = True
    >>> ccd = to_ccddata(labels, mask=mask)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels.fits"
    >>> ccd.write(path)
    >>> back = CCDData.read(path, unit=u.one)  # dimensionless: the file has no BUNIT
    >>> int(back.data.sum()), bool(back.mask[5, 7]), back.data.dtype
    (6, True, dtype('>i4'))
    >>> prob = np.full((6, 8, 2), 0.5, np.float32)
    >>> ccd = to_ccddata(prob, uncertainty=np.full((6, 8, 2), 0.2))
    >>> ccd.data.shape, type(ccd.uncertainty).__name__, ccd.uncertainty.array.shape
    ((2, 6, 8), 'StdDevUncertainty', (2, 6, 8))
    """
    from astropy import units as u
    from astropy.io import fits
    from astropy.nddata import CCDData, StdDevUncertainty

    raw = as_array(prob_or_labels, load=True)
    if np.asarray(raw).dtype.kind in "iub":
        data = validate_labels(prob_or_labels)
        data = data.astype(id_dtype(data.max() if data.size else 0))
        cards = {}
        hw = shape = data.shape
    else:  # floats are probabilities (whole numbers too: a raw science image is not labels)
        cube = validate_cube(raw)
        finite = cube[np.isfinite(cube)]
        if finite.size and (finite.min() < -1e-3 or finite.max() > 1 + 1e-3):
            raise InvalidImageError(
                "to_ccddata takes class probabilities (in [0, 1]) or instance labels; got "
                f"values from {finite.min():.4g} to {finite.max():.4g} (a science image? "
                "GridImage.to_nddata(ccd=True) keeps its unit; instance labels as integers: "
                f"{READ_LABELS})"
            )
        names = class_name_list(class_names, cube.shape[-1])
        data = fits_layout(cube)
        cards = class_cards(names, "class of probability plane {i}")  # in ASCII, as FITS holds
        hw, shape = cube.shape[:2], cube.shape
    if uncertainty is not None:
        uncertainty = StdDevUncertainty(fits_layout(validate_uncertainty(uncertainty, shape)))
    header, wcs, like_mask = _like_parts(like)
    bad = _image_mask(None, mask if mask is not None else like_mask, hw)
    if bad is not None and data.ndim == 3:
        bad = np.broadcast_to(bad, data.shape).copy()
    meta = fits.Header() if header is None else header.copy()
    if wcs is not None:  # the product's WCS is the ``wcs`` attribute: no stale cards in meta
        for key in wcs.to_header(relax=True):
            meta.remove(key, ignore_missing=True, remove_all=True)
    for key in (*UNIT_KEYWORDS, "BSCALE", "BZERO", "BLANK", "BSOFTEN", "BOFFSET"):  # linear
        meta.remove(key, ignore_missing=True, remove_all=True)
    drop_keywords(meta, PIXEL_VALUE_KEYWORDS)  # DATAMIN, SATURATE, GAIN ...: the input's pixels'
    meta.update(cards)
    return CCDData(
        data,
        unit=u.dimensionless_unscaled,
        mask=bad,
        uncertainty=uncertainty,
        wcs=wcs,
        meta=meta,
    )
