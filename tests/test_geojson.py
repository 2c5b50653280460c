"""Instance labels <-> GeoJSON (QuPath detections): sciconv.postprocess._geojson."""

from __future__ import annotations

import json

import numpy as np
import pytest

shapely_geometry = pytest.importorskip("shapely.geometry")

from sciconv.errors import ConfigError, InvalidImageError, OutputExistsError  # noqa: E402
from sciconv.postprocess import measure  # noqa: E402
from sciconv.postprocess._geojson import geojson_to_labels, labels_to_geojson  # noqa: E402


def _cells(seed=0, shape=(96, 128), n=12):
    """Random blobs (disks, ellipses, a ring with a hole, a two-piece object)."""
    from skimage.draw import disk, ellipse

    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int32)
    for i in range(1, n + 1):
        r, c = rng.integers(10, shape[0] - 10), rng.integers(10, shape[1] - 10)
        if i % 2:
            rr, cc = disk((r, c), rng.integers(3, 8), shape=shape)
        else:
            rr, cc = ellipse(
                r,
                c,
                rng.integers(3, 7),
                rng.integers(4, 9),
                shape=shape,
                rotation=rng.uniform(0, np.pi),
            )
        labels[rr, cc] = i
    ring = np.zeros(shape, bool)
    rr, cc = disk((20, 100), 9, shape=shape)
    ring[rr, cc] = True
    rr, cc = disk((20, 100), 4, shape=shape)
    ring[rr, cc] = False
    labels[ring] = n + 1  # a hole
    labels[80:84, 5:9] = n + 2
    labels[88:92, 5:9] = n + 2  # two pieces
    return labels


def test_polygons_are_valid_and_areas_equal_pixel_counts(tmp_path):
    labels = _cells()
    path = tmp_path / "cells.geojson"
    labels_to_geojson(labels, path=path)
    fc = json.loads(path.read_text())
    assert fc["type"] == "FeatureCollection"
    ids = [int(i) for i in np.unique(labels) if i]
    assert [f["properties"]["label"] for f in fc["features"]] == ids
    for feature in fc["features"]:
        assert feature["properties"]["objectType"] == "detection"
        geom = shapely_geometry.shape(feature["geometry"])
        assert geom.is_valid
        # outlines follow pixel edges (corner convention): area == pixel count exactly
        assert geom.area == np.count_nonzero(labels == feature["properties"]["label"])
    ring = shapely_geometry.shape(fc["features"][-2]["geometry"])
    assert ring.geom_type == "Polygon" and len(ring.interiors) == 1
    assert shapely_geometry.shape(fc["features"][-1]["geometry"]).geom_type == "MultiPolygon"


def test_round_trip_iou_per_object():
    labels = _cells(seed=3)
    back = geojson_to_labels(labels_to_geojson(labels), labels.shape)
    assert back.dtype == np.int32
    for i in np.unique(labels)[1:]:
        a, b = labels == i, back == i
        assert np.count_nonzero(a & b) / np.count_nonzero(a | b) > 0.95
    np.testing.assert_array_equal(back, labels)  # exact for pixel-edge outlines


def test_measurements_become_properties_and_centroid_convention():
    labels = np.zeros((20, 20), np.int32)
    labels[2:6, 3:11] = 1
    labels[10:18, 12:16] = 2
    table = measure(labels)
    fc = labels_to_geojson(labels, measurements=table, classification="Nucleus")
    props = fc["features"][1]["properties"]
    assert props["measurements"]["area"] == 32.0
    assert props["classification"] == {"name": "Nucleus"}
    geom = shapely_geometry.shape(fc["features"][1]["geometry"])
    # corner convention: measure()'s pixel-centre x/y are the polygon centroid minus 0.5
    assert geom.centroid.x - 0.5 == pytest.approx(table["x"][1])
    assert geom.centroid.y - 0.5 == pytest.approx(table["y"][1])


def test_qupath_style_list_without_labels_is_numbered_in_order():
    square = {"type": "Polygon", "coordinates": [[[1, 1], [4, 1], [4, 3], [1, 3], [1, 1]]]}
    features = [{"type": "Feature", "geometry": square, "properties": {"objectType": "detection"}}]
    out = geojson_to_labels(features, (5, 6))
    assert out.sum() == 6 and out[1:3, 1:4].min() == 1


def test_errors(tmp_path):
    with pytest.raises(InvalidImageError, match="integer instance labels"):
        labels_to_geojson(np.zeros((4, 4), np.float32))
    with pytest.raises(ConfigError, match="'label' column"):
        labels_to_geojson(np.zeros((4, 4), np.int32), measurements={"area": [1]})
    with pytest.raises(ConfigError, match="shape must be"):
        geojson_to_labels({"type": "FeatureCollection", "features": []}, (4,))
    with pytest.raises(ConfigError, match="FeatureCollection"):
        geojson_to_labels({"type": "Point"}, (4, 4))
    labels_to_geojson(np.ones((3, 3), np.int32), path=tmp_path / "a.geojson")
    with pytest.raises(OutputExistsError):
        labels_to_geojson(np.ones((3, 3), np.int32), path=tmp_path / "a.geojson")
