"""Instance labels <-> GeoJSON polygons, the interchange format of QuPath (and napari, OMERO).

:func:`labels_to_geojson` outlines each object with :func:`skimage.measure.find_contours` and
makes valid :mod:`shapely` polygons (holes kept); :func:`geojson_to_labels` rasterizes them back
with :func:`skimage.draw.polygon`.

Coordinate convention (QuPath's): ``x`` is the column and ``y`` the row, in pixels, with
``(0, 0)`` the **top-left corner** of the first pixel, so pixel ``(r, c)`` covers
``[c, c + 1] x [r, r + 1]``. The outline follows pixel edges (a 4-connected boundary), so a
polygon's area equals the object's pixel count exactly. (This is 0.5 off the pixel-centre
convention of :func:`sciconv.postprocess.measure`, whose centroid of the same object is
``polygon.centroid - 0.5``.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sciconv._atomic import atomic_output
from sciconv.errors import ConfigError, InvalidImageError

__all__ = ["geojson_to_labels", "labels_to_geojson"]


def _shapely():
    try:
        import shapely
        import shapely.geometry
    except ImportError as exc:  # pragma: no cover - shapely comes with the [ome] extra
        raise ImportError('GeoJSON needs shapely: pip install "sciconv[ome]"') from exc
    return shapely


def _validate_labels(labels) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2 or arr.dtype.kind not in "iub":
        raise InvalidImageError(
            f"labels must be integer instance labels (H, W); got {arr.dtype} {arr.shape}"
        )
    return arr.astype(np.int64)


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
    polys = [g for g in getattr(shape, "geoms", [shape]) if g.geom_type == "Polygon"]
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
) -> dict[str, Any]:
    """Instance labels as a GeoJSON FeatureCollection of QuPath detection objects.

    One Feature per object: its outline as a Polygon (a MultiPolygon if it is in pieces, holes
    kept) along the pixel edges, ``properties.objectType = "detection"`` (what QuPath's
    *File > Import objects* expects), ``properties.label`` its id, and its row of
    ``measurements`` under ``properties.measurements``.

    Parameters
    ----------
    labels : array_like of int, shape (H, W)
        Instance labels, 0 = background.
    measurements : astropy.table.Table or mapping, optional
        A table with a ``label`` column (e.g. :func:`sciconv.postprocess.measure`); the numeric
        scalar columns of each object's row become its QuPath measurements.
    path : str or os.PathLike, optional
        Also write the collection there (``.geojson``), atomically.
    classification : str, optional
        A QuPath class name given to every object (``properties.classification.name``).
    overwrite : bool
        Replace an existing ``path``.

    Returns
    -------
    dict
        The FeatureCollection (JSON-able).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((8, 8), "int32"); labels[1:4, 1:5] = 1; labels[5:7, 5:7] = 2
    >>> fc = labels_to_geojson(labels)
    >>> [f["properties"]["label"] for f in fc["features"]]
    [1, 2]
    >>> fc["features"][0]["properties"]["objectType"]
    'detection'
    >>> import shapely.geometry
    >>> shapely.geometry.shape(fc["features"][0]["geometry"]).area  # 3 x 4 pixels
    12.0
    """
    shapely = _shapely()
    from scipy import ndimage

    arr = _validate_labels(labels)
    rows = _measurement_rows(measurements)
    features = []
    for i, sl in enumerate(ndimage.find_objects(arr), start=1):
        if sl is None:
            continue
        geometry = _outline(arr[sl] == i, sl[0].start, sl[1].start)
        if geometry is None:
            continue
        props: dict[str, Any] = {"objectType": "detection", "label": i}
        if classification is not None:
            props["classification"] = {"name": str(classification)}
        if i in rows:
            props["measurements"] = rows[i]
        features.append(
            {
                "type": "Feature",
                "id": str(i),
                "geometry": shapely.geometry.mapping(geometry),
                "properties": props,
            }
        )
    collection = {"type": "FeatureCollection", "features": features}
    collection = json.loads(json.dumps(collection))  # tuples -> lists, plain JSON types
    if path is not None:
        with atomic_output(path, overwrite=overwrite) as tmp:
            tmp.write_text(json.dumps(collection))
    return collection


def _measurement_rows(measurements) -> dict[int, dict[str, float]]:
    if measurements is None:
        return {}
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
    return {
        int(lab): {n: float(columns[n][k]) for n in keep} for k, lab in enumerate(columns["label"])
    }


def geojson_to_labels(geojson: str | os.PathLike | Mapping, shape: tuple[int, int]) -> np.ndarray:
    """Rasterize GeoJSON polygons (QuPath objects) into int32 instance labels.

    A pixel belongs to an object when its centre lies inside the polygon (holes excluded);
    objects are numbered by their ``properties.label`` when every feature has a distinct
    positive one (as :func:`labels_to_geojson` writes), else 1, 2, ... in file order. Later
    features are drawn over earlier ones.

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
        int32 ``(H, W)``, 0 = background.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((6, 6), "int32"); labels[1:5, 2:4] = 3
    >>> back = geojson_to_labels(labels_to_geojson(labels), (6, 6))
    >>> bool((back == labels).all())
    True
    """
    shapely = _shapely()
    from skimage.draw import polygon as draw_polygon

    if isinstance(geojson, (str, os.PathLike)):
        try:
            geojson = json.loads(Path(geojson).read_text())
        except (OSError, ValueError) as exc:
            raise InvalidImageError(f"cannot read GeoJSON ({exc})", path=geojson) from exc
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 2
        or not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape)
    ):
        raise ConfigError(f"shape must be (H, W) positive ints; got {shape!r}")
    features = _features(geojson)
    ids = [f.get("properties", {}).get("label") for f in features]
    if not (all(isinstance(i, int) and i > 0 for i in ids) and len(set(ids)) == len(ids)):
        ids = list(range(1, len(features) + 1))
    out = np.zeros(tuple(int(n) for n in shape), dtype=np.int32)
    for value, feature in zip(ids, features):
        geometry = shapely.geometry.shape(feature["geometry"])
        for poly in getattr(geometry, "geoms", [geometry]):
            if poly.geom_type != "Polygon":
                continue
            mask = np.zeros(out.shape, dtype=bool)
            for ring, fill in [(poly.exterior, True)] + [(r, False) for r in poly.interiors]:
                xy = np.asarray(ring.coords)
                # pixel (r, c) is inside when its centre (c + 0.5, r + 0.5) is
                rr, cc = draw_polygon(xy[:, 1] - 0.5, xy[:, 0] - 0.5, shape=out.shape)
                mask[rr, cc] = fill
            out[mask] = value
    return out


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
