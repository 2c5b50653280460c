"""QuPath GeoJSON of labels predicted on a reduced pyramid level or a section (QA55 #5): the
outlines and the pixel measurements go to the full-resolution (level 0) pixels QuPath uses."""

from __future__ import annotations

import json

import numpy as np
import pytest

shapely_geometry = pytest.importorskip("shapely.geometry")
pytest.importorskip("ome_zarr")

from sciconv import io  # noqa: E402
from sciconv.errors import ConfigError, SciconvWarning  # noqa: E402
from sciconv.postprocess import (  # noqa: E402
    geojson_to_labels,
    labels_to_geojson,
    measure,
    write_geojson,
)

#: Two bright objects of the level-0 image: (row0, row1, col0, col1), ends exclusive
BOXES = {"A": (12, 20, 32, 40), "B": (40, 52, 8, 16)}


@pytest.fixture
def store(tmp_path):
    pixels = np.zeros((64, 80, 1), np.float32)
    for r0, r1, c0, c1 in BOXES.values():
        pixels[r0:r1, c0:c1] = 100.0
    meta = {"pixel_size": (0.25, 0.25), "pixel_unit": "µm"}
    return io.write_ome_zarr(tmp_path / "slide.ome.zarr", io.GridImage(pixels, meta=meta))


def _labels(img):
    """The objects found on an image (what a model would give): its bright pixels."""
    from skimage.measure import label

    return label(img.data[..., 0] > 50).astype(np.int32)


def _boxes(collection):
    """Each feature's (x0, y0, x1, y1), sorted by x0 (B before A)."""
    shapes = [shapely_geometry.shape(f["geometry"]) for f in collection["features"]]
    return sorted(s.bounds for s in shapes)


EXPECTED = sorted((c0, r0, c1, r1) for r0, r1, c0, c1 in BOXES.values())


@pytest.mark.parametrize(
    "read_kw",
    [
        {"level": 1},
        {"level": 2},
        {"level": 1, "section": (slice(4, 30), slice(2, 36))},
        {"level": 0, "section": (slice(10, 60), slice(-76, None))},
    ],
)
def test_outlines_land_at_level_0_position_and_size(store, read_kw):
    img = io.read(store, **read_kw)
    labels = _labels(img)
    assert labels.max() == 2
    found = _boxes(labels_to_geojson(labels, like=img))
    np.testing.assert_allclose(found, EXPECTED, atol=1.0)  # within a pixel of level 0
    # QuPath's view: rasterized on the full-resolution grid, the objects are the level-0 boxes
    back = geojson_to_labels(labels_to_geojson(labels, like=img), (64, 80))
    for r0, r1, c0, c1 in BOXES.values():
        inside = back[r0:r1, c0:c1] > 0
        assert inside.mean() > 0.7
    assert (back > 0).sum() == pytest.approx(sum((b[1] - b[0]) * (b[3] - b[2]) for b in
                                                  BOXES.values()), rel=0.3)  # fmt: skip


def test_write_geojson_window_by_window_gives_the_same_full_resolution_features(store, tmp_path):
    img = io.read(store, level=1, section=(slice(4, 30), slice(2, 36)))
    labels = _labels(img)
    table = measure(labels, intensity=img)
    out = write_geojson(labels, tmp_path / "o.geojson", measurements=table, like=img, block=8)
    written = json.loads(out.read_text(encoding="utf-8"))
    np.testing.assert_allclose(_boxes(written), EXPECTED, atol=1.0)
    assert (
        written["features"] == labels_to_geojson(labels, measurements=table, like=img)["features"]
    )


def test_measurements_in_full_resolution_pixels_physical_unchanged(store):
    level0 = io.read(store)
    labels0 = _labels(level0)
    rows0 = {
        f["properties"]["label"]: f["properties"]["measurements"]
        for f in labels_to_geojson(labels0, measurements=measure(labels0, intensity=level0))[
            "features"
        ]
    }
    img = io.read(store, level=1, section=(slice(4, 30), slice(2, 36)))
    labels = _labels(img)
    fc = labels_to_geojson(labels, measurements=measure(labels, intensity=img), like=img)
    by_x0 = {round(m["bbox_xmin px"]): m for m in (f["properties"]["measurements"] for f in
                                                    fc["features"])}  # fmt: skip
    for want in rows0.values():
        got = by_x0[round(want["bbox_xmin px"])]
        for name in ("x px", "y px", "bbox_xmin px", "bbox_ymin px", "bbox_xmax px",
                     "bbox_ymax px"):  # fmt: skip
            assert got[name] == pytest.approx(want[name], abs=1.0), name
        assert got["area px^2"] == pytest.approx(want["area px^2"], rel=0.15)
        assert got["semi_major px"] == pytest.approx(want["semi_major px"], rel=0.15)
        assert got["area_phys µm^2"] == pytest.approx(want["area_phys µm^2"], rel=0.15)


def test_read_records_where_a_level_and_a_section_lie(store):
    from sciconv.io._pyramid import full_resolution_frame

    assert full_resolution_frame(io.read(store)) == (1.0, 1.0, 0.0, 0.0)
    img = io.read(store, level=1, section=(slice(4, 30), slice(-20, None)))
    assert img.meta["level_downsample"] == (2.0, 2.0)
    assert img.meta["level_offset"] == (0.0, 0.0)  # 2 x 2 means, translated half a pixel
    assert img.meta["section_origin"] == (4, 20)
    assert full_resolution_frame(img) == (2.0, 2.0, 8.0, 40.0)


def test_a_store_without_translations_places_level_centres_on_level_0_centres(store):
    # NGFF: level k's pixel j is centred on scale_k * j; no translation = level 0's centre 2 j
    attrs_file = store / "zarr.json"
    doc = json.loads(attrs_file.read_text(encoding="utf-8"))
    for dataset in doc["attributes"]["ome"]["multiscales"][0]["datasets"]:
        dataset["coordinateTransformations"] = dataset["coordinateTransformations"][:1]
    attrs_file.write_text(json.dumps(doc), encoding="utf-8")
    from sciconv.io._pyramid import full_resolution_frame

    img = io.read(store, level=1)
    assert img.meta["level_offset"] == (-0.5, -0.5)
    assert full_resolution_frame(img) == (2.0, 2.0, -0.5, -0.5)


def test_a_plain_array_keeps_its_own_pixels_and_labels_their_meta(store):
    img = io.read(store, level=1)
    labels = _labels(img)
    level1 = sorted((c0 / 2, r0 / 2, c1 / 2, r1 / 2) for c0, r0, c1, r1 in EXPECTED)
    np.testing.assert_allclose(_boxes(labels_to_geojson(labels)), level1, atol=1.0)
    # labels as a GridImage carrying the level's meta: placed without like=
    as_image = io.GridImage(labels[..., None], meta=dict(img.meta))
    np.testing.assert_allclose(_boxes(labels_to_geojson(as_image)), EXPECTED, atol=1.0)
    # the meta alone works as like
    np.testing.assert_allclose(_boxes(labels_to_geojson(labels, like=img.meta)), EXPECTED, atol=1)


def test_like_of_another_size_or_bad_meta_is_refused(store):
    level0, level1 = io.read(store), io.read(store, level=1)
    labels = _labels(level1)
    with pytest.raises(ConfigError, match=r"like is 64 x 80 pixels and the labels 32 x 40") as e:
        labels_to_geojson(labels, like=level0)
    assert e.value.path is not None and "slide.ome.zarr" in str(e.value)
    with pytest.raises(ConfigError, match=r'meta\["level_downsample"\] must be two finite'):
        write_geojson(labels, store.parent / "x.geojson", like={"level_downsample": (0, 2)})
    assert not (store.parent / "x.geojson").exists()
    with pytest.raises(ConfigError, match="like must be the GridImage"):
        labels_to_geojson(labels, like=[2, 2])


def test_anisotropic_downsample_leaves_out_lengths_with_a_warning():
    labels = np.zeros((10, 10), np.int32)
    labels[2:6, 3:5] = 1
    table = measure(labels)
    with pytest.warns(SciconvWarning, match=r"semi_major.*left out of the GeoJSON"):
        fc = labels_to_geojson(labels, measurements=table, like={"level_downsample": (2, 1)})
    got = fc["features"][0]["properties"]["measurements"]
    assert "semi_major px" not in got and "orientation deg" not in got
    assert got["area px^2"] == 16.0  # 8 pixels of 2 x 1
    assert (got["x px"], got["y px"]) == (4.0, 8.0)
    assert shapely_geometry.shape(fc["features"][0]["geometry"]).bounds == (3.0, 4.0, 5.0, 12.0)
