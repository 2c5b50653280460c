"""Instance labels <-> GeoJSON (QuPath detections): sciconv.postprocess._geojson."""

from __future__ import annotations

import json

import numpy as np
import pytest

shapely_geometry = pytest.importorskip("shapely.geometry")

from sciconv.errors import (  # noqa: E402
    ConfigError,
    InvalidImageError,
    OutputExistsError,
    SciconvWarning,
)
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
    # RFC 7946 §3.1.6 (right-hand rule, in the file's x, y): exterior rings counter-clockwise,
    # holes clockwise; all were wound the other way (QA52 valid #4)
    for feature in fc["features"]:
        geom = shapely_geometry.shape(feature["geometry"])
        for poly in getattr(geom, "geoms", [geom]):
            assert poly.exterior.is_ccw
            assert all(not hole.is_ccw for hole in poly.interiors)
    assert len(ring.interiors) == 1  # the hole above was checked clockwise


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
    assert props["measurements"]["area px^2"] == 32.0
    assert props["measurements"]["x px"] == pytest.approx(table["x"][1] + 0.5)  # corners
    assert props["classification"] == {"name": "Nucleus"}
    geom = shapely_geometry.shape(fc["features"][1]["geometry"])
    # corner convention: measure()'s pixel-centre x/y are the polygon centroid minus 0.5
    assert geom.centroid.x - 0.5 == pytest.approx(table["x"][1])
    assert geom.centroid.y - 0.5 == pytest.approx(table["y"][1])


def test_nan_measurements_are_left_out_so_the_file_is_strict_json(tmp_path):
    """An object lying on NaN pixels has flux_mean NaN: bare NaN is not JSON (strict parsers
    reject the whole file), so the value is left out of its measurements."""
    from sciconv.postprocess import write_geojson

    labels = np.zeros((20, 20), np.int32)
    labels[2:6, 3:11] = 1
    labels[10:18, 12:16] = 2
    image = np.ones((20, 20))
    image[10:18, 12:16] = np.nan
    table = measure(labels, intensity=image)
    for path, kw in ((tmp_path / "a.geojson", {}), (tmp_path / "b.geojson", {"block": 8})):
        write_geojson(labels, path, measurements=table, **kw)
        text = path.read_text()
        assert "NaN" not in text and "Infinity" not in text
        data = json.loads(text)
        props = [f["properties"]["measurements"] for f in data["features"]]
        assert props[0]["flux_mean"] == 1.0 and "flux_mean" not in props[1]
        assert props[1]["area px^2"] == 32.0


def test_qupath_style_list_without_labels_is_numbered_in_order():
    square = {"type": "Polygon", "coordinates": [[[1, 1], [4, 1], [4, 3], [1, 3], [1, 1]]]}
    features = [{"type": "Feature", "geometry": square, "properties": {"objectType": "detection"}}]
    out = geojson_to_labels(features, (5, 6))
    assert out.sum() == 6 and out[1:3, 1:4].min() == 1


def test_errors(tmp_path):
    with pytest.raises(InvalidImageError, match="integer instance map"):
        labels_to_geojson(np.full((4, 4), 0.5, np.float32))  # whole floats are labels
    with pytest.raises(ConfigError, match="'label' column"):
        labels_to_geojson(np.zeros((4, 4), np.int32), measurements={"area": [1]})
    negative = np.zeros((4, 4), np.int32)
    negative[1:3, 1:3] = -1  # fuzzing QA: an empty FeatureCollection without a word
    with pytest.raises(InvalidImageError, match="labels must be >= 0"):
        labels_to_geojson(negative)
    huge = np.zeros((4, 4), np.uint64)
    huge[1:3, 1:3] = 2**63 + 5  # wrapped negative by the int64 cast: the object vanished
    with pytest.raises(InvalidImageError, match="relabel_sequential"):
        labels_to_geojson(huge)
    with pytest.raises(InvalidImageError, match="relabel_sequential"):
        measure(huge)
    # two label images in a list: numpy's bare "inhomogeneous shape" ValueError before
    with pytest.raises(InvalidImageError, match="one by one"):
        labels_to_geojson([np.ones((4, 4), np.int32), np.ones((5, 5), np.int32)])
    with pytest.raises(ConfigError, match="shape must be"):
        geojson_to_labels({"type": "FeatureCollection", "features": []}, (4,))
    with pytest.raises(ConfigError, match="FeatureCollection"):
        geojson_to_labels({"type": "Point"}, (4, 4))
    labels_to_geojson(np.ones((3, 3), np.int32), path=tmp_path / "a.geojson")
    with pytest.raises(OutputExistsError):
        labels_to_geojson(np.ones((3, 3), np.int32), path=tmp_path / "a.geojson")


class _RecordingLabels:
    """A label array that records the size of every window read from it (a stand-in for zarr)."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.reads = array, array.shape, array.dtype, []

    def __getitem__(self, index):
        window = self.array[index]
        self.reads.append(window.shape)
        return window

    def __array__(self, *args, **kwargs):  # as a zarr array would, but loading it all is a bug
        raise AssertionError("the whole label array was loaded")


def _by_label(collection):
    return {f["properties"]["label"]: f for f in collection["features"]}


def test_write_geojson_window_by_window_equals_the_whole(tmp_path):
    """Block by block (objects across block edges, one wider than the first margin, an L whose
    first row and first column lie in different blocks) the file holds exactly the features of
    labels_to_geojson, each once, and reads back to the labels; no window is much larger than a
    block plus the largest object."""
    from skimage.draw import disk

    from sciconv.postprocess import write_geojson

    labels = np.zeros((300, 260), np.int32)
    for i, (r, c) in enumerate([(60, 60), (64, 130), (130, 64), (200, 200), (290, 250)], 1):
        rr, cc = disk((r, c), 9, shape=labels.shape)
        labels[rr, cc] = i
    labels[100:112, 20:240] = 6  # wider than the first margin (64) and several blocks
    labels[150:190, 120:126] = 7  # an L: first row in block (2, 1), first column in (2, 1)...
    labels[184:190, 90:126] = 7  # ...its box starts at column 90, in block (2, 1) as well
    labels[0:5, 0:260] = 8  # a stripe along the top edge, all blocks
    table = measure(labels)
    whole = labels_to_geojson(labels, measurements=table, classification="Nucleus")
    recorded = _RecordingLabels(labels)
    out = write_geojson(
        recorded, tmp_path / "slide.geojson", measurements=table, classification="Nucleus", block=64
    )
    written = json.loads(out.read_text())
    assert len(written["features"]) == len(whole["features"]) == 8
    assert _by_label(written) == _by_label(whole)
    np.testing.assert_array_equal(geojson_to_labels(out, labels.shape), labels)
    assert max(h * w for h, w in recorded.reads) <= (64 + 1 + 256) * (64 + 1 + 256)
    assert min(h * w for h, w in recorded.reads) < 300 * 260 / 4  # not the whole image each time
    with pytest.raises(OutputExistsError):
        write_geojson(labels, out)
    with pytest.raises(InvalidImageError, match="integer instance map"):
        write_geojson(labels + 0.5, tmp_path / "f.geojson")  # whole floats are labels
    with pytest.raises(ConfigError, match="block must be a positive integer"):
        write_geojson(labels, tmp_path / "b.geojson", block=0)
    assert not (tmp_path / "f.geojson").exists() and not (tmp_path / "b.geojson").exists()


@pytest.mark.parametrize("block", [3, 7, 16])
def test_an_object_in_pieces_is_one_feature_whatever_the_block(tmp_path, block):
    """A label in separate pieces (ground truth, edited labels) whose second piece starts in a
    later block was written again from there: two features with one id, two detections in
    QuPath."""
    from sciconv.postprocess import write_geojson

    labels = np.zeros((40, 40), np.int32)
    labels[2:6, 30:34] = 5
    labels[10:14, 30:34] = 5  # four rows below the first piece
    labels[20:24, 2:6] = 6
    labels[22:26, 20:24] = 6  # right of the first piece, lower
    labels[30:34, 25:29] = 7
    labels[31:35, 5:9] = 7  # left of the first piece, lower
    labels[36:40, 36:40] = 8  # two pieces farther apart than a window reaches (64 px + block)
    labels = np.pad(labels, ((0, 200), (0, 0)))
    labels[230:234, 2:6] = 8
    whole = labels_to_geojson(labels)
    with pytest.warns(SciconvWarning, match=r"^1 label\(s\) \(e\.g\. 8\) have pieces farther"):
        out = write_geojson(labels, tmp_path / "pieces.geojson", block=block)
    written = json.loads(out.read_text())
    assert sorted(f["properties"]["label"] for f in written["features"]) == [5, 6, 7, 8]
    near = {k: v for k, v in _by_label(written).items() if k != 8}  # 8 loses its far piece
    assert near == {k: v for k, v in _by_label(whole).items() if k != 8}


def test_write_geojson_from_zarr_labels(tmp_path):
    zarr = pytest.importorskip("zarr")
    from sciconv.postprocess import write_geojson

    labels = _cells(seed=3, shape=(160, 200), n=20)
    store = zarr.open_array(
        tmp_path / "labels.zarr", mode="w", shape=labels.shape, chunks=(50, 50), dtype="int32"
    )
    store[:] = labels
    out = write_geojson(
        zarr.open_array(tmp_path / "labels.zarr", mode="r"), tmp_path / "l.geojson", block=48
    )
    assert _by_label(json.loads(out.read_text())) == _by_label(labels_to_geojson(labels))


def test_geojson_to_labels_at_the_image_edges_and_beyond():
    """Each polygon is drawn in its own box (not a full-size mask per object): boxes at the last
    row and column, and a polygon partly or wholly outside the image, are clipped."""
    labels = np.zeros((40, 50), np.int32)
    labels[35:40, 44:50] = 1  # the bottom-right corner
    labels[0:3, 0:50] = 2  # the whole top rows
    collection = labels_to_geojson(labels)
    np.testing.assert_array_equal(geojson_to_labels(collection, labels.shape), labels)
    outside = {
        "type": "Feature",
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[45, 30], [60, 30], [60, 45], [45, 45], [45, 30]]],
        },
        "properties": {"label": 3},
    }
    far = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[[70, 70], [80, 70], [80, 80], [70, 70]]]},
        "properties": {"label": 4},
    }
    back = geojson_to_labels([*collection["features"], outside, far], labels.shape)
    assert (back[30:40, 45:50] == 3).all() and (back == 3).sum() == 50 and not (back == 4).any()


def test_cli_geojson_whole_image_and_block_wise(capsys, tmp_path, data_dir):
    """sciconv predict --geojson: QuPath objects that rasterize back to the labels written beside
    them, whole-image and block by block (with zarr), each object with its catalog row."""
    from _helpers import run_cli

    from sciconv import io

    image = sorted((data_dir / "real" / "nuclei" / "images").glob("*.tif"))[0]
    before = image.read_bytes()
    code, _, err = run_cli(
        capsys,
        "predict",
        "pretrained:nuclei",
        image,
        "--out",
        tmp_path / "a",
        "--geojson",
        "--quiet",
    )
    assert code == 0, err
    stem = image.stem
    labels = io.read(tmp_path / "a" / f"{stem}_labels.tif").data[..., 0].astype(np.int32)
    path = tmp_path / "a" / f"{stem}_objects.geojson"
    features = json.loads(path.read_text())["features"]
    assert len(features) == labels.max() > 20
    assert features[0]["properties"]["objectType"] == "detection"
    assert {"area px^2", "flux_mean"} <= set(features[0]["properties"]["measurements"])
    np.testing.assert_array_equal(geojson_to_labels(path, labels.shape), labels)
    code, _, err = run_cli(
        capsys,
        "predict",
        "pretrained:nuclei",
        image,
        "--out",
        tmp_path / "a",
        "--geojson",
        "--quiet",
    )
    assert code != 0 and "--overwrite" in err  # the GeoJSON is not replaced silently
    pytest.importorskip("zarr")
    import zarr

    with pytest.warns(SciconvWarning, match="window by window"):  # a TIFF in one piece
        code, _, err = run_cli(
            capsys,
            "predict",
            "pretrained:nuclei",
            image,
            "--out",
            tmp_path / "b",
            "--geojson",
            "--block",
            "128",
            "--quiet",
        )
    assert code == 0, err
    blocks = zarr.open_array(str(tmp_path / "b" / f"{stem}_labels.zarr"), mode="r")[:]
    path = tmp_path / "b" / f"{stem}_objects.geojson"
    np.testing.assert_array_equal(geojson_to_labels(path, blocks.shape), blocks)
    assert image.read_bytes() == before


def test_per_channel_measurements_become_one_measurement_each():
    """QuPath measurements are numbers: the catalog's per-channel columns of an RGB image (which
    were dropped) are split as flatten_table does."""
    labels = _cells(seed=5)
    rgb = np.random.default_rng(5).random((*labels.shape, 3)).astype(np.float32)
    table = measure(labels, intensity=rgb)
    assert table["flux_sum"].shape[1:] == (3,)
    feature = labels_to_geojson(labels, measurements=table)["features"][0]
    values = feature["properties"]["measurements"]
    row = table[table["label"] == feature["properties"]["label"]][0]
    for c in range(3):
        assert values[f"flux_sum_{c}"] == pytest.approx(float(row["flux_sum"][c]))
    assert values["area px^2"] == float(row["area"])


def test_measurements_are_named_with_their_units_as_qupath_names_its_own():
    """QuPath showed "area_phys 12.5" with no unit (µm²? px?): the names now carry the column's
    unit as QuPath's own measurements do ("Area µm^2"); unitless columns keep their names."""
    from sciconv.io import PixelScale
    from sciconv.postprocess import add_physical_columns, measurement_name

    labels = np.zeros((20, 20), np.int32)
    labels[2:6, 3:11] = 1
    table = add_physical_columns(measure(labels), PixelScale(0.5, 0.5, "um"))
    table["snr"] = [3.0]
    values = labels_to_geojson(labels, measurements=table)["features"][0]["properties"]
    values = values["measurements"]
    assert values["area px^2"] == 32.0 and values["area_phys µm^2"] == 8.0
    assert values["equivalent_diameter_phys µm"] == pytest.approx(2 * np.sqrt(8 / np.pi))
    assert values["snr"] == 3.0
    assert not any(k in values for k in ("area", "area_phys", "x"))
    assert measurement_name("flux", "electron / s") == "flux electron s^-1"
    assert measurement_name("ra", "deg") == "ra deg"
    assert measurement_name("ratio", "") == "ratio"
