"""GeoJSON from other tools (QA 53, finding 6): valid and hostile files give labels or a sciconv
error naming the file and the feature, never a raw exception."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from sciconv.errors import InvalidImageError
from sciconv.postprocess import geojson_to_labels

SQUARE = {"type": "Polygon", "coordinates": [[[1, 1], [5, 1], [5, 5], [1, 5], [1, 1]]]}


def _write(tmp_path, text: str):
    path = tmp_path / "objects.geojson"
    path.write_text(text)
    return path


def _feature(geometry, properties=None) -> dict:
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def test_null_properties_read_as_none(tmp_path):
    path = _write(
        tmp_path, json.dumps({"type": "FeatureCollection", "features": [_feature(SQUARE)]})
    )
    out = geojson_to_labels(path, (8, 8))
    assert out[1:5, 1:5].tolist() == [[1] * 4] * 4 and int(out.sum()) == 16


@pytest.mark.parametrize(
    ("geometry", "said"),
    [
        ('{"type":"Polygon","coordinates":[[[1,1],[Infinity,1],[5,5],[1,1]]]}', "finite"),
        ('{"type":"Polygon","coordinates":[[[1,1],[NaN,1],[5,5],[1,1]]]}', "finite"),
        ('{"type":"Polygon","coordinates":[[[1,1],[2,2]]]}', "at least 4 coordinates"),
        ('{"type":"Circle","coordinates":[1,1]}', "Unknown geometry type"),
    ],
)
def test_bad_geometry_named_with_feature_index(tmp_path, geometry, said):
    good = json.dumps(_feature(SQUARE, {}))
    feature = f'{{"type":"Feature","properties":{{}},"geometry":{geometry}}}'
    text = f'{{"type":"FeatureCollection","features":[{good},{feature}]}}'
    path = _write(tmp_path, text)
    with pytest.raises(InvalidImageError, match=f"feature 1: .*{said}") as err:
        geojson_to_labels(path, (8, 8))
    assert str(path) in str(err.value)


def test_deep_nesting_named(tmp_path):
    path = _write(tmp_path, "[" * 100000 + "]" * 100000)
    with pytest.raises(InvalidImageError, match="nested too deep") as err:
        geojson_to_labels(path, (8, 8))
    assert str(path) in str(err.value)


def test_coordinates_far_out_refused_in_range_drawn(tmp_path):
    for far, refused in ((1e6, False), (1e300, True)):
        ring = [[3, -far], [far, -far], [far, far], [3, far], [3, -far]]  # columns 3 and on
        path = _write(tmp_path, json.dumps(_feature({"type": "Polygon", "coordinates": [ring]})))
        if refused:
            with pytest.raises(InvalidImageError, match=r"feature 0: .*1e\+300 is beyond") as err:
                geojson_to_labels(path, (8, 8))
            assert str(path) in str(err.value)
        else:
            out = geojson_to_labels(path, (8, 8))
            assert np.array_equal(out, np.broadcast_to(np.arange(8) >= 3, (8, 8)).astype(out.dtype))


def test_fifo_refused_without_blocking(tmp_path):
    path = tmp_path / "pipe.geojson"
    os.mkfifo(path)
    with pytest.raises(InvalidImageError, match="not a regular file") as err:
        geojson_to_labels(path, (8, 8))
    assert str(path) in str(err.value)
