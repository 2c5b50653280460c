"""Instance labels <-> GeoJSON polygons, the interchange format of QuPath (and napari, OMERO).

:func:`labels_to_geojson` outlines each object with :func:`skimage.measure.find_contours` and
makes valid :mod:`shapely` polygons (holes kept); :func:`geojson_to_labels` rasterizes them back
with :func:`skimage.draw.polygon`.

Coordinate convention (QuPath's): ``x`` is the column and ``y`` the row, in pixels, with
``(0, 0)`` the **top-left corner** of the first pixel, so pixel ``(r, c)`` covers
``[c, c + 1] x [r, r + 1]``. The outline follows pixel edges (a 4-connected boundary), so a
polygon's area equals the object's pixel count exactly. This is 0.5 off the pixel-centre
convention of :func:`sciconv.postprocess.measure`, whose centroid of the same object is
``polygon.centroid - 0.5``; a catalog's centroid columns (:data:`CENTRE_COLUMNS`) are
therefore written into a feature's measurements plus 0.5, in the geometry's convention (``x
px`` is the polygon's centroid, as QuPath's own ``Centroid X px`` is). The box columns are
written as the polygon's bounds (pixel edges): ``bbox_xmin``, ``bbox_ymin`` (the first column
and row, whose left and top edges they are) as they are, and ``bbox_xmax``, ``bbox_ymax`` (the
catalog's last column and row, inclusive: :data:`LAST_PIXEL_COLUMNS`) plus 1, their right and
bottom edges.

QuPath places objects in the full-resolution (level 0) pixels of a slide. Labels predicted on a
reduced level or a section (``read(store, level=1)``, ``section=``) are written there when the
writers are given that image as ``like``: coordinates, centroid and box columns become
``y0 + dy * row``, ``x0 + dx * column`` (:func:`sciconv.io._pyramid.full_resolution_frame`),
and the other pixel columns (``area px^2``, ``semi_major px``) are in full-resolution pixels
too; physical columns (``area_phys µm^2``) are unchanged.

Physical columns (names ending ``_phys``) are written in µm (or arcsec) to their power, as
:func:`sciconv.postprocess.add_physical_columns` makes them, whatever unit the table holds
them in (a catalog of an older run in nm²): ``area_phys µm^2`` is what QuPath's own ``Area
µm^2`` is, in every file.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sciconv._atomic import atomic_output
from sciconv._validation import refuse_swapped
from sciconv.errors import ConfigError, InvalidImageError, MissingDependencyError
from sciconv.io._common import brief, warn_caller
from sciconv.io._image import GridImage
from sciconv.io._pyramid import FullResolutionFrame, full_resolution_frame
from sciconv.postprocess._labels import (
    check_label_layout,
    label_pixels,
    refuse_negative,
    validate_labels,
)
from sciconv.postprocess._measure import id_dtype
from sciconv.postprocess._physical import PHYSICAL_SUFFIX, in_catalog_unit

__all__ = [
    "GEOJSON_SUFFIX",
    "geojson_to_labels",
    "labels_to_geojson",
    "measurement_name",
    "write_geojson",
]

#: The file name ending of the QuPath objects ``sciconv predict --geojson`` and
#: :func:`sciconv.inference.predict_mosaic` write for an input ``NAME``: ``NAME_objects.geojson``.
GEOJSON_SUFFIX = "_objects.geojson"
#: Catalog columns in 0-based pixel-centre coordinates (:func:`sciconv.postprocess.measure`'s
#: centroids): a feature's measurements hold them plus 0.5, in its geometry's pixel-corner
#: convention.
CENTRE_COLUMNS = ("x", "y", "x_weighted", "y_weighted")
#: Catalog columns that are the last column or row of an object (:func:`measure`'s inclusive
#: box): a feature's measurements hold them plus 1, the polygon's right and bottom edges.
LAST_PIXEL_COLUMNS = ("bbox_xmax", "bbox_ymax")
#: Catalog columns that are a column (x) or a row (y) of the image: placed in the full-resolution
#: image with the outlines (``like=``), the other pixel columns scaled.
X_COLUMNS = ("x", "x_weighted", "bbox_xmin", "bbox_xmax")
Y_COLUMNS = ("y", "y_weighted", "bbox_ymin", "bbox_ymax")


def _shapely():
    try:
        import shapely
        import shapely.geometry
    except ImportError as exc:  # pragma: no cover - shapely comes with the [ome] extra
        raise MissingDependencyError('GeoJSON needs shapely: pip install "sciconv[ome]"') from exc
    return shapely


def _outline(mask: np.ndarray, y0: int, x0: int):
    """The shapely (Multi)Polygon of a boolean mask, along pixel edges, offset by (y0, x0)."""
    shapely = _shapely()
    from skimage.measure import find_contours

    # upsample x2 so that contours at level 0.5 run along pixel edges, not through centres
    big = np.kron(np.pad(mask, 1), np.ones((2, 2), dtype=np.uint8)).astype(float)
    rings = []
    for contour in find_contours(big, 0.5):
        # upsampled index b sits at (b + 0.5) / 2 in edge coordinates (minus the padding); the
        # contour runs at edge +- 0.25 (corners cut by 0.25): rounding puts every vertex on a
        # pixel corner, so the ring is exactly the 4-connected pixel boundary
        pts = np.round((contour + 0.5) / 2.0 - 1.0)
        if len(pts) >= 4:
            ring = shapely.geometry.Polygon(pts[:, ::-1] + (x0, y0))
            rings.append(ring.simplify(0))
    if not rings:
        return None
    # even-odd: outer rings and holes alternate by nesting; symmetric difference builds holes
    shape = rings[0].buffer(0)
    for ring in rings[1:]:
        shape = shape.symmetric_difference(ring.buffer(0))
    shape = shapely.make_valid(shape)
    # RFC 7946 §3.1.6's right-hand rule in the file's (x, y): exteriors counter-clockwise, holes
    # clockwise (shapely's set operations wind them the other way; QuPath ignores winding, but
    # d3-geo fills the complement of a clockwise ring and geojsonhint warns)
    polys = [
        shapely.geometry.polygon.orient(g, 1.0)
        for g in getattr(shape, "geoms", [shape])
        if g.geom_type == "Polygon"
    ]
    if not polys:
        return None
    return polys[0] if len(polys) == 1 else shapely.geometry.MultiPolygon(polys)


def labels_to_geojson(
    labels,
    *,
    measurements=None,
    path: str | os.PathLike | None = None,
    classification: str | None = None,
    overwrite: bool = False,
    like: GridImage | Mapping | None = None,
) -> dict[str, Any]:
    """Instance labels as a GeoJSON FeatureCollection of QuPath detection objects.

    One Feature per object: its outline as a Polygon (a MultiPolygon if it is in pieces, holes
    kept) along the pixel edges, ``properties.objectType = "detection"`` (what QuPath's
    *File > Import objects* expects), ``properties.label`` its id, and its row of
    ``measurements`` under ``properties.measurements``. For labels too large for memory (a
    whole slide's zarr labels), :func:`write_geojson` writes the same features window by window.

    Parameters
    ----------
    labels : array_like of int, shape (H, W), or GridImage
        Instance labels, 0 = background; integer ``(H, W, 1)`` too, as :func:`measure` takes
        them (floats refused: :func:`sciconv.io.read_labels`).
    measurements : astropy.table.Table or mapping, optional
        A table with a ``label`` column (e.g. :func:`sciconv.postprocess.measure`); the numeric
        columns of each object's row become its QuPath measurements, named with their units as
        QuPath names its own (:func:`measurement_name`: ``area px^2``, ``area_phys µm^2``;
        physical columns, ``*_phys``, in µm or arcsec to their power whatever their unit; a
        per-channel column is split as :func:`sciconv.postprocess.flatten_table` does:
        ``flux_sum_0``, ...). The centroids (``x``, ``y``, ``x_weighted``, ``y_weighted``:
        0-based pixel centres in the catalog) are written plus 0.5, in the outline's
        pixel-corner convention: ``x px`` is the polygon's centroid; the box is written as the
        polygon's bounds (``bbox_xmax``, ``bbox_ymax``, the last column and row, plus 1;
        module notes).
    path : str or os.PathLike, optional
        Also write the collection there (``.geojson``), atomically.
    classification : str, optional
        A QuPath class name given to every object (``properties.classification.name``).
    overwrite : bool
        Replace an existing ``path``.
    like : GridImage or mapping, optional
        The image the labels were predicted on (or its ``meta``): labels of a reduced pyramid
        level, a section or a cutout of it (``read(store, level=1)``, ``section=``,
        ``GridImage.cutout`` of an image read from a file) are written in the full-resolution
        pixels of its file, where QuPath places objects (module notes). Must
        have the labels' size. Default: the labels' own meta when they are a GridImage; a
        plain array is written in its own pixels.

    Returns
    -------
    dict
        The FeatureCollection (JSON-able).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.postprocess import labels_to_geojson
    >>> labels = np.zeros((8, 8), "int32"); labels[1:4, 1:5] = 1; labels[5:7, 5:7] = 2
    >>> fc = labels_to_geojson(labels)
    >>> [f["properties"]["label"] for f in fc["features"]]
    [1, 2]
    >>> fc["features"][0]["properties"]["objectType"]
    'detection'
    >>> import shapely.geometry
    >>> shapely.geometry.shape(fc["features"][0]["geometry"]).area  # 3 x 4 pixels
    12.0
    >>> from sciconv.postprocess import measure
    >>> table = measure(labels)
    >>> props = labels_to_geojson(labels, measurements=table)["features"][0]["properties"]
    >>> float(table["x"][0]), props["measurements"]["x px"]  # the polygon's centroid: 3.0
    (2.5, 3.0)

    Labels of level 1 of a pyramid (half size), placed in the full-resolution image:

    >>> from sciconv.io import GridImage
    >>> level1 = GridImage(np.zeros((8, 8, 1), "float32"), meta={"level_downsample": (2, 2)})
    >>> fc = labels_to_geojson(labels, like=level1)
    >>> shapely.geometry.shape(fc["features"][0]["geometry"]).bounds  # (x0, y0, x1, y1)
    (2.0, 2.0, 10.0, 8.0)
    """
    _shapely()
    arr = validate_labels(labels)  # negative ids gave no features without a word
    frame = _frame(like, labels, arr.shape)
    rows = _measurement_rows(measurements, frame)
    features = list(
        _iter_features(arr, rows, classification, block=max(*arr.shape, 1), frame=frame)
    )
    collection = {"type": "FeatureCollection", "features": features}
    if path is not None:
        with atomic_output(path, overwrite=overwrite) as tmp:
            tmp.write_text(json.dumps(collection, allow_nan=False), encoding="utf-8")
    return collection


def write_geojson(
    labels,
    path: str | os.PathLike,
    *,
    measurements=None,
    classification: str | None = None,
    block: int = 4096,
    overwrite: bool = False,
    properties: Mapping | None = None,
    like: GridImage | Mapping | None = None,
) -> Path:
    """Write instance labels of any size as QuPath detections, window by window, in flat memory.

    The features of :func:`labels_to_geojson` (same outlines, ``label``, measurements), for
    labels that do not fit in memory: a whole slide's labels from
    :func:`sciconv.inference.predict_instances_blocks` (a zarr array or ``.npy`` memory map)
    are read ``block`` by ``block`` (plus the margin the largest object needs), each object is
    outlined once, in the window where it starts, and the features are streamed to the file;
    QuPath reads it with *File > Import objects*.

    Parameters
    ----------
    labels : array_like of int, shape (H, W), or GridImage
        Instance labels, 0 = background: numpy, a memory map, a zarr or dask array (read window
        by window), or a GridImage; integers, ``(H, W, 1)`` too, as :func:`measure` takes them
        (floats refused: :func:`sciconv.io.read_labels`).
    path : str or os.PathLike
        The ``.geojson`` file, written atomically.
    measurements : astropy.table.Table or mapping, optional
        As for :func:`labels_to_geojson` (e.g. the block-wise catalog; centroids plus 0.5).
    classification : str, optional
        A QuPath class name given to every object.
    block : int
        Side of the windows read at a time (pixels).
    overwrite : bool
        Replace an existing ``path``.
    properties : mapping, optional
        A top-level ``"properties"`` member of the FeatureCollection (a GeoJSON foreign member,
        which QuPath and other readers skip): ``sciconv predict`` records its provenance there
        (``{"software": ..., "history": [...]}``, the lines of the image products' HISTORY).
    like : GridImage or mapping, optional
        The image the labels were predicted on (or its ``meta``): labels of a reduced pyramid
        level, a section or a cutout of it (``read(store, level=1)``, ``section=``,
        ``GridImage.cutout`` of an image read from a file) are written in the full-resolution
        pixels of its file, where QuPath places objects (module notes). Must
        have the labels' size. Default: the labels' own meta when they are a GridImage; a
        plain array is written in its own pixels.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    InvalidImageError
        ``labels`` are not a 2-D map of integers (floats included), or hold negative ids (in
        memory or mapped); the message names :func:`sciconv.io.read_labels`.
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    ConfigError
        ``like`` is not the labels' size, or not a GridImage or mapping.

    Examples
    --------
    >>> import json, tempfile, pathlib, numpy as np
    >>> from sciconv.postprocess import write_geojson
    >>> labels = np.zeros((8, 8), "int32"); labels[1:4, 1:5] = 1; labels[5:7, 3:7] = 2
    >>> out = write_geojson(labels, pathlib.Path(tempfile.mkdtemp()) / "cells.geojson", block=4)
    >>> [f["properties"]["label"] for f in json.loads(out.read_text())["features"]]
    [1, 2]
    """
    _shapely()
    if isinstance(block, bool) or not (isinstance(block, (int, np.integer)) and block >= 1):
        raise ConfigError(f"block must be a positive integer (pixels); got {block!r}")
    refuse_swapped(path, labels, call="write_geojson(labels, path)")
    given = labels
    labels = label_pixels(labels)  # a GridImage's pixels; a list into memory
    check_label_layout(labels.shape, labels.dtype)  # integers, (H, W) or (H, W, 1)
    if len(labels.shape) == 3:
        labels = labels[..., 0]  # a view (a window by window read stays one)
    if isinstance(labels, np.ndarray):  # in memory or mapped (windows of zarr/dask: unchecked)
        refuse_negative(labels)
    frame = _frame(like, given, labels.shape)
    rows = _measurement_rows(measurements, frame)
    with (
        atomic_output(path, overwrite=overwrite) as tmp,
        open(tmp, "w", encoding="utf-8") as out,
    ):
        out.write('{"type": "FeatureCollection", ')
        if properties is not None:
            out.write(f'"properties": {json.dumps(dict(properties), allow_nan=False)}, ')
        out.write('"features": [')
        features = _iter_features(labels, rows, classification, block=block, frame=frame)
        for n, feature in enumerate(features):
            out.write(("\n" if n == 0 else ",\n") + json.dumps(feature, allow_nan=False))
        out.write("\n]}\n")
    return Path(path)


def _frame(like, labels, shape) -> FullResolutionFrame | None:
    """Where the labels lie in the full-resolution image: ``like``'s frame (by default the
    labels' own when they are a GridImage); None when that is the image itself."""
    if like is None:
        if not isinstance(labels, GridImage):
            return None
        like = labels
    if not isinstance(like, (GridImage, Mapping)):
        raise ConfigError(
            "like must be the GridImage the labels were predicted on (or its meta, a mapping); "
            f"got {type(like).__name__}"
        )
    if isinstance(like, GridImage) and tuple(like.shape[-3:-1]) != tuple(shape[:2]):
        raise ConfigError(
            f"like is {like.shape[-3]} x {like.shape[-2]} pixels and the labels "
            f"{shape[0]} x {shape[1]}: give the image the labels were predicted on",
            path=like.path,
        )
    frame = full_resolution_frame(like)
    return None if frame.identity else frame


def _iter_features(labels, rows, classification, *, block: int, frame=None):
    """The Feature of every object, window by window: an object is outlined in the window of the
    block holding its first row and column (the window reaches one pixel above and left of the
    block, to see whether an object starts there, and as far right and down as it needs). An
    object in separate pieces can look as if it started again in a later block (its first piece
    lies beyond that window): every label written is remembered (:class:`_Labels`) and never
    written twice; a piece farther than the window reaches from the first is left out of its
    geometry. ``frame`` places the outlines in the full-resolution image."""
    from scipy import ndimage

    h, w = (int(n) for n in labels.shape)
    written, apart = _Labels(), []  # apart: labels with a piece beyond their first's window
    spans = {}  # label -> (y0, y1, x0, x1) of the window its feature was made in, if in pieces
    for y0 in range(0, h, block):
        for x0 in range(0, w, block):
            y1, x1 = min(y0 + block, h), min(x0 + block, w)
            margin = 64
            while True:
                wy, wx = max(y0 - 1, 0), max(x0 - 1, 0)
                ey, ex = min(y1 + margin, h), min(x1 + margin, w)
                window = np.asarray(labels[wy:ey, wx:ex])
                index, ids = _indexed(window)
                found = []  # (value in index, slices) of the objects that start in this block
                cut = False
                for k, sl in enumerate(ndimage.find_objects(index), start=1):
                    if sl is None:
                        continue
                    if not (y0 <= wy + sl[0].start < y1 and x0 <= wx + sl[1].start < x1):
                        continue
                    cut |= (sl[0].stop == window.shape[0] and ey < h) or (
                        sl[1].stop == window.shape[1] and ex < w
                    )
                    found.append((k, sl))
                if not cut:
                    break
                margin *= 2  # an object reaches past the window: read further
            for k, sl in found:
                label = k if ids is None else ids[k]
                if written.seen(int(label)):  # a later piece of an object already written
                    y, x = wy + sl[0].start, wx + sl[1].start
                    span = spans.get(int(label))  # was this piece in the feature's window?
                    if span is None or not (span[0] <= y < span[1] and span[2] <= x < span[3]):
                        apart.append(int(label))
                    continue
                feature = _feature(index[sl] == k, wy + sl[0].start, wx + sl[1].start, label, frame)
                if feature is not None:
                    if feature["geometry"]["type"] == "MultiPolygon":
                        spans[int(label)] = (wy, wy + window.shape[0], wx, wx + window.shape[1])
                    _add_properties(feature, rows, classification)
                    yield feature
    if apart:
        warn_caller(
            f"{len(set(apart))} label(s) (e.g. {apart[0]}) have pieces farther apart than a "
            "window reaches from the first: each is one feature, its geometry without the far "
            "pieces (labels_to_geojson holds every piece)",
            "sciconv",
        )


class _Labels:
    """The labels written so far: a bit per label up to 2**30 (at most 128 MiB, grown as the
    largest label seen grows), a set for larger ones (hashed or offset ids)."""

    _DENSE = 2**30

    def __init__(self):
        self.bits = np.zeros(0, np.uint8)
        self.other: set[int] = set()

    def seen(self, label: int) -> bool:
        """Whether ``label`` was written before; marks it written."""
        if label >= self._DENSE or label < 0:
            known = label in self.other
            self.other.add(label)
            return known
        byte, bit = divmod(label, 8)
        if byte >= self.bits.size:
            grown = np.zeros(max(byte + 1, 2 * self.bits.size), np.uint8)
            grown[: self.bits.size] = self.bits
            self.bits = grown
        known = bool(self.bits[byte] >> bit & 1)
        self.bits[byte] |= np.uint8(1 << bit)
        return known


def _indexed(window: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(index, ids)`` for find_objects: the labels themselves (``ids`` None) while their largest
    value is modest, else ``ids[k]`` the label of index value ``k`` (1-based; ``ids[0]`` = 0)."""
    top = int(window.max()) if window.size else 0
    if top <= 4 * window.size + 1_000_000:  # find_objects lists every value up to the largest
        return (window if window.dtype.kind in "iu" else window.astype(np.int64)), None
    ids, index = np.unique(window, return_inverse=True)
    if ids[0] != 0:  # keep 0 for the background
        ids = np.concatenate([[0], ids])
        index = index + 1
    return index.reshape(window.shape), ids


def _feature(mask: np.ndarray, y0: int, x0: int, label, frame=None) -> dict | None:
    """One object's Feature (geometry, id, label) as plain JSON types; None without an outline.
    ``frame`` (a :class:`FullResolutionFrame`) places the outline in the full-resolution image."""
    shapely = _shapely()
    geometry = _outline(mask, y0, x0)
    if geometry is None:
        return None
    if frame is not None:  # (x, y) = (x0 + dx c, y0 + dy r): a positive scale keeps the winding
        scale, shift = np.array([frame.dx, frame.dy]), np.array([frame.x0, frame.y0])
        geometry = shapely.transform(geometry, lambda xy: xy * scale + shift)
    return {
        "type": "Feature",
        "id": str(int(label)),
        "geometry": json.loads(json.dumps(shapely.geometry.mapping(geometry))),
        "properties": {"objectType": "detection", "label": int(label)},
    }


def _add_properties(feature: dict, rows, classification) -> None:
    props = feature["properties"]
    if classification is not None:
        props["classification"] = {"name": str(classification)}
    row = rows(props["label"])
    if row is not None:
        props["measurements"] = row


def _measurement_rows(measurements, frame=None):
    """``row(label)``: the numeric scalar columns of ``measurements`` for that label as a dict
    (None when it has no row; :data:`CENTRE_COLUMNS` plus 0.5, :data:`LAST_PIXEL_COLUMNS` plus
    1; with a ``frame``, in full-resolution pixels: :func:`_frame_columns`); the columns are
    kept as arrays, not a dict per object."""
    if measurements is None:
        return lambda label: None
    if hasattr(measurements, "colnames"):  # per-channel columns (flux_sum of an RGB image)
        from sciconv.postprocess import flatten_table

        measurements = flatten_table(measurements)  # ... as flux_sum_0, flux_sum_1, ...
    try:
        names = list(measurements.colnames if hasattr(measurements, "colnames") else measurements)
        columns = {n: np.asarray(measurements[n]) for n in names}
    except Exception as exc:
        raise ConfigError(
            f"measurements must be a table or mapping of columns; got {type(measurements).__name__}"
        ) from exc
    if "label" not in columns:
        raise ConfigError(f"measurements need a 'label' column; got columns {names}")
    keep = [
        n for n, c in columns.items() if n != "label" and c.ndim == 1 and c.dtype.kind in "biuf"
    ]
    units = {n: getattr(measurements[n], "unit", None) for n in keep}
    for n in keep:  # µm / arcsec as every catalog has them (QA: nm² from some files)
        if n.endswith(PHYSICAL_SUFFIX) and units[n] is not None:
            try:
                columns[n], units[n] = in_catalog_unit(columns[n], units[n])
            except ConfigError:
                pass  # a unit astropy does not know: written with the name it has
    shown = {n: measurement_name(n, units[n]) for n in keep}
    labels = columns["label"].astype(np.int64)
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]

    # the catalog's pixel centres in the outline's pixel-corner convention (QA: "x px" sat 0.5
    # px from the feature's own polygon centroid)
    # and the box's last column and row (inclusive) as the polygon's right and bottom edges
    shift = {
        n: (0.5 if n in CENTRE_COLUMNS else 1.0 if n in LAST_PIXEL_COLUMNS else 0.0) for n in keep
    }
    scale, offset = _frame_columns(keep, units, frame)
    keep = [n for n in keep if n in scale]

    def row(label: int):
        at = int(np.searchsorted(ordered, label))
        if at == len(ordered) or ordered[at] != label:
            return None
        k = order[at]
        values = {shown[n]: scale[n] * (float(columns[n][k]) + shift[n]) + offset[n] for n in keep}
        # strict JSON has no NaN/Infinity: a value that is not a number is left out
        return {n: v for n, v in values.items() if np.isfinite(v)}

    return row


def _frame_columns(names, units, frame) -> tuple[dict, dict]:
    """``scale[n]``, ``offset[n]`` that put column ``n`` (in the outline's pixel-corner
    convention) in the full-resolution image of ``frame``: :data:`X_COLUMNS` and
    :data:`Y_COLUMNS` placed as the outlines are, other columns in pixels to a power ``p``
    (``area`` in ``pix2``) scaled by the downsample to ``p``, the rest as they are. A
    downsample that differs between rows and columns leaves out (with a warning) the lengths
    in pixels and ``orientation``, which it changes in ways a scale cannot write."""
    from astropy import units as u

    scale, offset = dict.fromkeys(names, 1.0), dict.fromkeys(names, 0.0)
    if frame is None:
        return scale, offset
    dropped = []
    for n in names:
        if n in X_COLUMNS or n in Y_COLUMNS:
            x = n in X_COLUMNS
            scale[n], offset[n] = (frame.dx, frame.x0) if x else (frame.dy, frame.y0)
            continue
        try:
            unit = u.Unit(units[n]) if units[n] is not None else None
        except (TypeError, ValueError):
            unit = None
        power = unit.powers[0] if unit is not None and unit.bases == [u.pix] else 0
        if power == 2 or (power and frame.dx == frame.dy):
            scale[n] = float(frame.dx * frame.dy) ** (power / 2)
        elif power or (n == "orientation" and frame.dx != frame.dy):
            del scale[n]
            dropped.append(n)
    if dropped:
        warn_caller(
            f"the labels' pixels are {frame.dy:g} x {frame.dx:g} full-resolution pixels (rows x "
            f"columns): the measurements {dropped} cannot be given in full-resolution pixels "
            "and are left out of the GeoJSON",
            "sciconv",
        )
    return scale, offset


def measurement_name(name: str, unit=None) -> str:
    """A catalog column's name as a QuPath measurement: with its unit, as QuPath names its own
    (``Area µm^2``): ``area_phys µm^2``, ``x px``, ``flux electron s^-1``; a column without a
    unit (or a dimensionless one) keeps its name.

    Parameters
    ----------
    name : str
        The column's name.
    unit : astropy.units.Unit or str, optional
        The column's unit; None (default) keeps the name as it is.

    Examples
    --------
    >>> from sciconv.postprocess import measurement_name
    >>> measurement_name("area_phys", "um2"), measurement_name("x", "pix")
    ('area_phys µm^2', 'x px')
    >>> measurement_name("flux", "electron / s"), measurement_name("snr")
    ('flux electron s^-1', 'snr')
    """
    from astropy import units as u

    if unit is None:
        return name
    try:
        unit = u.Unit(unit)
    except (TypeError, ValueError):
        return f"{name} {unit}"
    if unit == u.dimensionless_unscaled:
        return name
    if unit.scale != 1 or not unit.bases:
        return f"{name} {unit.to_string()}"
    words = []
    for base, power in zip(unit.bases, unit.powers):
        word = _QUPATH_UNITS.get(base.to_string(), base.to_string())
        words.append(word if power == 1 else f"{word}^{power:g}")
    return f"{name} {' '.join(words)}"


# astropy's spelling -> QuPath's (its measurement names say "µm" and "px")
_QUPATH_UNITS = {"um": "µm", "pix": "px"}


def geojson_to_labels(geojson: str | os.PathLike | Mapping, shape: tuple[int, int]) -> np.ndarray:
    """Rasterize GeoJSON polygons (QuPath objects) into int32 (or int64) instance labels.

    A pixel belongs to an object when its centre lies inside the polygon (holes excluded);
    objects are numbered by their ``properties.label`` when every feature has a distinct
    positive one that fits int64 (as :func:`labels_to_geojson` writes), else 1, 2, ... in file
    order. Later features are drawn over earlier ones.

    Parameters
    ----------
    geojson : str, os.PathLike or mapping
        A ``.geojson`` file or the parsed dict: a FeatureCollection, a list of Features (QuPath
        exports either), or one Feature.
    shape : (int, int)
        ``(H, W)`` of the label image.

    Returns
    -------
    numpy.ndarray
        int32 ``(H, W)``, 0 = background; int64 when an id exceeds 2**31 - 1 (never wrapped).
        ``"properties": null`` counts as no properties.

    Raises
    ------
    InvalidImageError
        The file cannot be read, is not JSON, is nested too deep, or is not a regular file; or
        a feature's geometry is unusable (an unknown type, a ring of under 4 points, an
        Infinity or NaN coordinate, one beyond +-:data:`MAX_COORDINATE` = 1e9 px, refused
        rather than clipped): the message names the file and the feature's index.
    ConfigError
        ``shape`` is not two positive ints, or the object is not GeoJSON features.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.postprocess import geojson_to_labels, labels_to_geojson
    >>> labels = np.zeros((6, 6), "int32"); labels[1:5, 2:4] = 3
    >>> back = geojson_to_labels(labels_to_geojson(labels), (6, 6))
    >>> bool((back == labels).all())
    True
    """
    shapely = _shapely()
    from skimage.draw import polygon as draw_polygon

    source = None
    if isinstance(geojson, (str, os.PathLike)):
        source = geojson
        geojson = _load_geojson(Path(geojson))
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 2
        or not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape)
    ):
        raise ConfigError(f"shape must be (H, W) positive ints; got {shape!r}")
    features = _features(geojson)
    # "properties": null is valid GeoJSON (RFC 7946 3.2): read as {}
    ids = [(f.get("properties") or {}) for f in features]
    ids = [p.get("label") if isinstance(p, Mapping) else None for p in ids]
    top = np.iinfo(np.int64).max
    if not (all(isinstance(i, int) and 0 < i <= top for i in ids) and len(set(ids)) == len(ids)):
        ids = list(range(1, len(features) + 1))
    largest = max(ids, default=0)
    out = np.zeros(tuple(int(n) for n in shape), dtype=id_dtype(largest))
    for i, (value, feature) in enumerate(zip(ids, features)):
        for poly in _polygons(shapely, feature["geometry"], i, source):
            # drawn in the polygon's own box (a full-size mask per object made a slide's worth
            # of objects cost objects x pixels)
            xmin, ymin, xmax, ymax = (int(np.floor(v)) for v in poly.bounds)
            r0, c0 = max(ymin, 0), max(xmin, 0)
            r1, c1 = min(ymax + 1, out.shape[0]), min(xmax + 1, out.shape[1])
            if r1 <= r0 or c1 <= c0:
                continue
            mask = np.zeros((r1 - r0, c1 - c0), dtype=bool)
            for ring, fill in [(poly.exterior, True)] + [(r, False) for r in poly.interiors]:
                xy = np.asarray(ring.coords)
                # pixel (r, c) is inside when its centre (c + 0.5, r + 0.5) is
                rr, cc = draw_polygon(xy[:, 1] - 0.5 - r0, xy[:, 0] - 0.5 - c0, shape=mask.shape)
                mask[rr, cc] = fill
            out[r0:r1, c0:c1][mask] = value
    return out


def _load_geojson(path: Path):
    """A GeoJSON file parsed; unreadable, not JSON or nested too deep: InvalidImageError."""
    try:
        regular = stat.S_ISREG(path.stat().st_mode)
    except OSError as exc:
        raise InvalidImageError(f"cannot read GeoJSON ({brief(exc)})", path=path) from None
    if not regular:
        raise InvalidImageError("cannot read GeoJSON: not a regular file (a FIFO?)", path=path)
    try:
        return json.loads(path.read_bytes())  # UTF-8 (RFC 8259), any locale
    except RecursionError:
        raise InvalidImageError("cannot read GeoJSON (nested too deep)", path=path) from None
    except (OSError, ValueError) as exc:
        raise InvalidImageError(f"cannot read GeoJSON ({brief(exc)})", path=path) from None


#: Largest coordinate magnitude accepted in GeoJSON read as labels (pixels); skimage's polygon
#: filling loses precision beyond about 1e12 (a square of side 2e300 labelled nothing).
MAX_COORDINATE = 1e9


def _polygons(shapely, geometry, index: int, source) -> list:
    """The Polygons of feature ``index``'s geometry; coordinates must be finite and within
    :data:`MAX_COORDINATE` (refused, not clipped: no image is that large)."""
    try:
        with np.errstate(invalid="ignore"):  # a NaN coordinate: refused below
            geometry = shapely.geometry.shape(geometry)
        polygons = [p for p in getattr(geometry, "geoms", [geometry]) if p.geom_type == "Polygon"]
        for poly in polygons:
            xy = shapely.get_coordinates(poly)
            if not np.all(np.isfinite(xy)):
                raise ValueError("coordinates must be finite numbers (found Infinity or NaN)")
            if xy.size and np.abs(xy).max() > MAX_COORDINATE:
                raise ValueError(
                    f"a coordinate of {np.abs(xy).max():.3g} is beyond +-{MAX_COORDINATE:.0e} px"
                )
        return polygons
    except RecursionError:
        problem = "nested too deep"
    except Exception as exc:  # shapely: GeometryTypeError, ValueError (a ring of 2 points), ...
        problem = brief(exc)
    raise InvalidImageError(f"feature {index}: not a usable geometry ({problem})", path=source)


def _features(geojson) -> list[dict]:
    if isinstance(geojson, Mapping) and geojson.get("type") == "FeatureCollection":
        features = list(geojson.get("features", []))
    elif isinstance(geojson, Mapping) and geojson.get("type") == "Feature":
        features = [geojson]
    elif isinstance(geojson, list):
        features = list(geojson)
    else:
        raise ConfigError(
            "geojson must be a FeatureCollection, a Feature or a list of Features; "
            f"got {type(geojson).__name__}"
        )
    return [f for f in features if isinstance(f, Mapping) and f.get("geometry")]
