"""Label images as users hold them, and the bounding box convention of the catalogs.

QA (cross-module consistency):

- ``measure``'s ``bbox_xmax``/``bbox_ymax`` were exclusive (last column + 1) while the photutils
  catalog sciconv hands out (``to_photutils``) says the last column, under the same names;
- a GridImage of integer labels was refused ("got shape ()"); ``sc.io.read("x_labels.fits")``
  (float32 ``(H, W, 1)``, as every file it reads) is refused alike by every consumer, naming
  ``sciconv.io.read_labels``: whole floats are not taken (an image read as float32 would be
  thousands of objects; float32 merges ids from 2**24 on).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _helpers import photutils_name

from sciconv import io, postprocess
from sciconv.errors import InvalidImageError

photutils = pytest.importorskip("photutils")
pytest.importorskip("regions")
pytest.importorskip("shapely")

NUCLEI = "0532c64c2fd0c4d3188cc751cdfd566b1cfba3d269358717295bab1504c7c275.tif"


@pytest.fixture(scope="module")
def nuclei(data_dir):
    """A real DSB2018 image, its integer labels, and the labels as sciconv.io.read gives them
    from a FITS and a TIFF label file (GridImages of float32 (H, W, 1))."""
    image = io.read(data_dir / "real" / "nuclei" / "images" / NUCLEI)
    labels = io.read_labels(data_dir / "real" / "nuclei" / "labels" / NUCLEI)
    assert labels.dtype.kind in "iu" and labels.max() > 10
    return image, labels


@pytest.fixture(scope="module", params=["fits", "tif"])
def read_back(request, nuclei, tmp_path_factory):
    """The labels written by sc.io.write and read back by sc.io.read (not read_labels)."""
    _, labels = nuclei
    path = tmp_path_factory.mktemp("labels") / f"cells_labels.{request.param}"
    io.write(path, labels)
    grid = io.read(path)
    assert grid.data.dtype == np.float32 and grid.data.shape == (*labels.shape, 1)
    return grid


# --------------------------------------------------------------------------------------------
# A. bbox_xmax / bbox_ymax: the last column / row of the object (inclusive), as photutils


def _rectangle():
    labels = np.zeros((12, 24), np.int32)
    labels[3:8, 10:16] = 4  # rows 3..7, columns 10..15
    return labels


def test_measure_bbox_max_is_the_last_column_and_row():
    table = postprocess.measure(_rectangle())
    box = {k: int(table[k][0]) for k in ("bbox_xmin", "bbox_xmax", "bbox_ymin", "bbox_ymax")}
    assert box == {"bbox_xmin": 10, "bbox_xmax": 15, "bbox_ymin": 3, "bbox_ymax": 7}
    assert "inclusive" in table["bbox_xmax"].description
    assert "inclusive" in table["bbox_ymax"].description
    assert str(table["bbox_xmax"].unit) == "pix"
    assert table["bbox_xmax"].meta["ucd"] == "pos.cartesian.x;stat.max;instr.pixel"


def test_measure_bbox_equals_the_photutils_catalog_on_a_real_image(nuclei):
    image, labels = nuclei
    ours = postprocess.measure(labels, intensity=image)
    _, cat = postprocess.to_photutils(labels, image)
    assert list(cat.label) == list(ours["label"]) and len(ours) > 10
    for name in ("bbox_xmin", "bbox_xmax", "bbox_ymin", "bbox_ymax"):
        np.testing.assert_array_equal(np.asarray(getattr(cat, name)), ours[name], err_msg=name)
    for row in ours:  # the box holds every pixel of its object and reaches its last ones
        box = labels[
            row["bbox_ymin"] : row["bbox_ymax"] + 1, row["bbox_xmin"] : row["bbox_xmax"] + 1
        ]
        inside = box == row["label"]
        assert inside.sum() == row["area"]
        assert inside[-1].any() and inside[:, -1].any()


def test_polygon_regions_reach_the_last_column_and_row():
    """to_regions reads the box to cut out each object: the outline reaches its last pixels."""
    region = postprocess.to_regions(_rectangle(), shape="polygon")[0]
    xs, ys = np.asarray(region.vertices.x), np.asarray(region.vertices.y)
    assert (xs.min(), xs.max()) == (9.5, 15.5)  # through the pixel-edge midpoints
    assert (ys.min(), ys.max()) == (2.5, 7.5)


def test_geojson_box_measurements_are_the_polygon_bounds():
    """QuPath's pixel-corner convention: the box of columns 10..15 spans x 10 to 16."""
    labels = _rectangle()
    fc = postprocess.labels_to_geojson(labels, measurements=postprocess.measure(labels))
    m = fc["features"][0]["properties"]["measurements"]
    box = (m["bbox_xmin px"], m["bbox_ymin px"], m["bbox_xmax px"], m["bbox_ymax px"])
    assert box == (10.0, 3.0, 16.0, 8.0)


# --------------------------------------------------------------------------------------------
# B. every labels consumer takes a GridImage and (H, W, 1) of integers; floats are refused


def _tables_equal(got, expected):
    assert got.colnames == expected.colnames
    for name in expected.colnames:
        np.testing.assert_array_equal(np.asarray(got[name]), np.asarray(expected[name]), name)


def _forms(labels):
    """Integer labels as users hold them besides (H, W): in a GridImage, with a channel axis."""
    return {"GridImage": io.GridImage(labels[..., None]), "(H, W, 1)": labels[..., None]}


def test_measure_and_diameters_take_grid_images_and_a_channel_axis(nuclei):
    image, labels = nuclei
    expected = postprocess.measure(labels, intensity=image)
    for form, given in _forms(labels).items():
        _tables_equal(postprocess.measure(given, intensity=image), expected)
        np.testing.assert_array_equal(
            postprocess.equivalent_diameters(given), postprocess.equivalent_diameters(labels), form
        )


def test_to_photutils_takes_grid_images_and_a_channel_axis(nuclei):
    image, labels = nuclei
    columns = ["label", "area", "x_centroid", "y_centroid", "bbox_xmax", "segment_flux"]
    columns = [photutils_name(c) for c in columns]
    segm, cat = postprocess.to_photutils(labels, image)
    for given in _forms(labels).values():
        got_segm, got_cat = postprocess.to_photutils(given, image)
        np.testing.assert_array_equal(got_segm.data, segm.data)
        _tables_equal(got_cat.to_table(columns=columns), cat.to_table(columns=columns))


def test_to_regions_takes_grid_images_and_a_channel_axis(nuclei):
    _, labels = nuclei
    for shape in ("ellipse", "polygon"):
        expected = postprocess.to_regions(labels, shape=shape).serialize(format="ds9")
        for given in _forms(labels).values():
            assert postprocess.to_regions(given, shape=shape).serialize(format="ds9") == expected


def test_geojson_takes_grid_images_and_a_channel_axis(nuclei, tmp_path):
    _, labels = nuclei
    expected = postprocess.labels_to_geojson(labels)
    assert len(expected["features"]) == labels.max()
    postprocess.write_geojson(labels, tmp_path / "int.geojson", block=128)
    for k, given in enumerate(_forms(labels).values()):
        assert postprocess.labels_to_geojson(given) == expected
        out = postprocess.write_geojson(given, tmp_path / f"{k}.geojson", block=128)
        assert json.loads(out.read_text()) == json.loads((tmp_path / "int.geojson").read_text())


def test_object_scores_take_grid_images_and_a_channel_axis(nuclei):
    _, labels = nuclei
    prob = np.random.default_rng(0).random((*labels.shape, 2)).astype(np.float32)
    expected = postprocess.object_scores(labels, prob)
    for given in _forms(labels).values():
        _tables_equal(postprocess.object_scores(given, prob), expected)


def test_to_ccddata_takes_grid_images_and_a_channel_axis(nuclei):
    _, labels = nuclei
    expected = postprocess.to_ccddata(labels)
    assert expected.data.dtype == np.int32 and "CLASS0" not in expected.meta
    for given in _forms(labels).values():
        np.testing.assert_array_equal(postprocess.to_ccddata(given).data, expected.data)


def test_labels_read_with_io_read_are_refused_naming_read_labels(nuclei, read_back, tmp_path):
    # io.read gives images and label files alike as float32: taking whole floats for labels
    # made a raw image 1342 "objects" and merged ids from 2**24 on (review); read_labels reads
    # the file as integers, which every consumer takes
    image, labels = nuclei
    for given in (read_back, read_back.data, image):
        for call in _CONSUMERS.values():
            with pytest.raises(InvalidImageError, match=r"integer instance map.*read_labels"):
                call(given)
        with pytest.raises(InvalidImageError, match=r"read_labels"):
            postprocess.to_ccddata(given)
        with pytest.raises(InvalidImageError, match=r"read_labels"):
            postprocess.write_geojson(given, tmp_path / "x.geojson")
    assert not (tmp_path / "x.geojson").exists()
    np.testing.assert_array_equal(io.read_labels(read_back.path), labels)
    _tables_equal(postprocess.measure(io.read_labels(read_back.path)), postprocess.measure(labels))


def test_write_products_takes_grid_images_and_a_channel_axis(nuclei, tmp_path):
    _, labels = nuclei
    for k, given in enumerate(_forms(labels).values()):
        paths = postprocess.write_products(tmp_path / str(k), labels=given)
        back = io.read_labels(paths["labels"])
        assert back.dtype.kind == "i"
        np.testing.assert_array_equal(back, labels)


def test_background_estimators_take_grid_images_and_a_channel_axis(nuclei):
    image, labels = nuclei
    expected = postprocess.background_and_rms(image, labels, box_size=64)
    error = postprocess.estimate_error(image, labels, gain=1.0, box_size=64)[0]
    for given in _forms(labels).values():
        got = postprocess.background_and_rms(image, given, box_size=64)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
        np.testing.assert_array_equal(
            postprocess.estimate_background(image, given, box_size=64), expected[0]
        )
        np.testing.assert_array_equal(
            postprocess.estimate_error(image, given, gain=1.0, box_size=64)[0], error
        )


# --------------------------------------------------------------------------------------------
# the same refusal, with the same class and a pointer to read_labels, everywhere

_CONSUMERS = {
    "measure": lambda lab: postprocess.measure(lab),
    "equivalent_diameters": lambda lab: postprocess.equivalent_diameters(lab),
    "to_photutils": lambda lab: postprocess.to_photutils(lab, np.ones((8, 8))),
    "to_regions": lambda lab: postprocess.to_regions(lab),
    "labels_to_geojson": lambda lab: postprocess.labels_to_geojson(lab),
    "object_scores": lambda lab: postprocess.object_scores(lab, np.full((8, 8), 0.5)),
    "background_and_rms": lambda lab: postprocess.background_and_rms(np.ones((8, 8)), lab),
}


def _bad(value):
    labels = np.zeros((8, 8, 1), np.float32)
    labels[2:5, 2:5] = 1
    labels[6, 6] = value
    return labels


@pytest.mark.parametrize("name", sorted(_CONSUMERS))
@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (_bad(0.5), "integer instance map"),
        (_bad(np.nan), "integer instance map"),
        (_bad(2.0), "integer instance map"),  # whole floats too: an image read as float32?
        (_bad(-1).astype(np.int32), ">= 0"),
    ],
)
def test_labels_that_are_not_labels_are_refused_alike(name, labels, match):
    with pytest.raises(InvalidImageError, match=match) as err:
        _CONSUMERS[name](labels)
    assert "sciconv.io.read_labels" in str(err.value)


def test_write_geojson_refuses_fractions_alike(tmp_path):
    with pytest.raises(InvalidImageError, match=r"integer instance map.*sciconv\.io\.read_labels"):
        postprocess.write_geojson(_bad(0.5), tmp_path / "x.geojson")
    assert not (tmp_path / "x.geojson").exists()


def test_to_ccddata_refusal_of_a_float_image_names_read_labels():
    with pytest.raises(InvalidImageError, match=r"a science image.*sciconv\.io\.read_labels"):
        postprocess.to_ccddata(_bad(0.5) * 10 + 0.5)  # fractions beyond 1: not labels


def test_a_colour_image_as_labels_says_so():
    with pytest.raises(InvalidImageError, match=r"3 channels\? a label image has one"):
        postprocess.measure(np.zeros((8, 8, 3), np.uint8))


def test_metrics_and_viz_take_grid_images_and_labels_read_as_floats(nuclei, read_back):
    # QA: a GridImage of labels gave "got shape ()" in metrics and viz (postprocess took it)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sciconv import metrics, viz

    image, labels = nuclei
    shifted = np.roll(labels, 2, axis=1)
    expected = metrics.average_precision(labels, shifted)["ap"]
    for given in _forms(labels).values():
        np.testing.assert_array_equal(metrics.average_precision(given, shifted)["ap"], expected)
        assert metrics.matching(shifted, given)["tp"] == metrics.matching(shifted, labels)["tp"]
    assert metrics.dsb_score([read_back, read_back], [labels, labels]) == 1.0
    fig = viz.outlines(image, read_back)
    plt.close(fig)
