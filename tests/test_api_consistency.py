"""One concept, one spelling across the public API (QA: the API seen as one library)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from sciconv import datasets, inference
from sciconv.errors import InferenceError


def _pixel_model():
    """A 1x1 two-class segmenter that is not D4-symmetric in its inputs' position (none is)."""
    inputs = keras.Input((None, None, 1))
    weights = keras.initializers.Constant([[[[-1.0, 1.0]]]])
    out = keras.layers.Conv2D(2, 1, kernel_initializer=weights, activation="softmax")(inputs)
    return keras.Model(inputs, out)


def test_tta_takes_true_false_and_d4_none_everywhere():
    # tta="d4" in predict_tiled / predict_instances, tta=True in predict_files: each refused the
    # other's form ("tta must be one of None, 'd4'" / "tta must be True or False")
    model = _pixel_model()
    image = np.random.default_rng(0).random((24, 24)).astype(np.float32)
    kw = dict(normalize=None, progress=False, tile=24)
    d4 = inference.predict_tiled(model, image, tta="d4", **kw)
    np.testing.assert_array_equal(inference.predict_tiled(model, image, tta=True, **kw), d4)
    plain = inference.predict_tiled(model, image, tta=None, **kw)
    np.testing.assert_array_equal(inference.predict_tiled(model, image, tta=False, **kw), plain)
    with pytest.raises(InferenceError, match="tta must be one of"):
        inference.predict_tiled(model, image, tta="d8", **kw)
    # uncertainty="tta" averages the 8 views already; tta=False beside it is no conflict
    mean, _ = inference.predict_tiled(model, image, uncertainty="tta", tta=False, **kw)
    assert mean.shape == d4.shape


def test_dataset_builders_split_alike_on_every_call_by_default(tmp_path):
    # QA: from_folder / from_pairs / from_catalog drew a new seed per call (from_arrays: 0), so a
    # rerun notebook cell moved training images into the validation set
    import tifffile

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(6):
            tifffile.imwrite(tmp_path / name / f"{name}{i}.tif", np.full((8, 8), i, np.float32))
    first = datasets.from_folder(tmp_path, validation_split=0.5, batch_size=2)
    again = datasets.from_folder(tmp_path, validation_split=0.5, batch_size=2)
    assert first[1].file_paths == again[1].file_paths and first[0].seed == again[0].seed == 0
    drawn = datasets.from_folder(tmp_path, validation_split=0.5, batch_size=2, seed=None)
    assert isinstance(drawn[0].seed, int)  # None: a random seed, recorded


@pytest.mark.parametrize(
    "writer",
    [
        "io.write",
        "io.write_ome_zarr",
        "io.write_ome_zarr_labels",
        "postprocess.write_regions",
        "postprocess.write_geojson",
    ],
)
def test_writers_given_their_arguments_swapped_say_so(writer, tmp_path):
    # io writes (path, data), postprocess (data, path): the swap gave a bare TypeError
    from sciconv import io, postprocess
    from sciconv.errors import ConfigError

    labels = np.zeros((16, 16), np.int32)
    labels[4:9, 4:9] = 1
    suffix = {"regions": "r.reg", "geojson": "r.geojson", "zarr": "a.ome.zarr"}
    target = tmp_path / next((v for k, v in suffix.items() if k in writer), "a.tif")
    module, name = writer.split(".")
    call = getattr({"io": io, "postprocess": postprocess}[module], name)
    with pytest.raises(ConfigError, match=rf"the arguments look swapped: the file name '{target}'"):
        call(target, labels) if module == "postprocess" else call(labels, target)
    assert not target.exists()


def test_ome_zarr_labels_of_a_missing_store_is_an_error_not_no_labels(tmp_path):
    pytest.importorskip("ome_zarr")
    from sciconv import io
    from sciconv.errors import InvalidImageError

    with pytest.raises(InvalidImageError, match="file not found"):
        io.ome_zarr_labels(tmp_path / "typo.ome.zarr")
    io.write(tmp_path / "a.tif", np.zeros((8, 8), np.uint8))
    with pytest.raises(InvalidImageError, match="not a zarr store"):
        io.ome_zarr_labels(tmp_path / "a.tif")
    store = io.write_ome_zarr(tmp_path / "a.ome.zarr", np.zeros((16, 16), np.float32), levels=1)
    assert io.ome_zarr_labels(store) == {}  # a store without labels: empty, as documented


def test_calibration_with_its_arguments_swapped_says_so():
    # QA: "must be a 0/1 array of shape (500, 1); got shape (500, 1)"
    from sciconv import calibration
    from sciconv.errors import ConfigError

    rng = np.random.default_rng(0)
    p = rng.random((50, 1))
    y = (rng.random((50, 1)) < p).astype(float)
    assert 0 <= calibration.expected_calibration_error(p, y) < 0.5
    with pytest.raises(ConfigError, match=r"got other values \(probabilities\? they come first"):
        calibration.expected_calibration_error(y, p)


def test_showing_a_stack_names_the_fix_that_works():
    # QA: "pick one channel first, e.g. image[..., 0]" left a 3-D array for (N, H, W, 1)
    from sciconv import viz
    from sciconv.errors import InvalidImageError

    stack = np.zeros((4, 16, 16, 1), np.float32)
    with pytest.raises(InvalidImageError, match=r"a stack of 4 images\? show one, e\.g\. image\[0"):
        viz.show(stack)
    fig = viz.show(stack[0])
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_geojson_of_empty_labels_is_an_empty_collection():
    # review: labels_to_geojson of 0x0 labels raised "range() arg 3 must not be zero"
    from sciconv import postprocess

    pytest.importorskip("shapely")
    empty = postprocess.labels_to_geojson(np.zeros((0, 0), np.int32))
    assert empty == {"type": "FeatureCollection", "features": []}


def test_softmax_calibration_with_its_arguments_swapped_says_so():
    # "Seen, left" of stop 49: the softmax inputs swapped got no order hint
    from sciconv import calibration
    from sciconv.errors import ConfigError

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=60)
    ids = np.array([rng.choice(3, p=row) for row in p])
    assert 0 <= calibration.expected_calibration_error(p, ids) < 0.5
    with pytest.raises(ConfigError, match=r"got 0\.0\.\.2\.0 \(class ids\? the probabilities come"):
        calibration.expected_calibration_error(ids, p)
    with pytest.raises(ConfigError, match=r"probabilities\? they come first"):
        calibration.expected_calibration_error(np.eye(3)[ids], p)  # one-hot first
    with pytest.raises(ConfigError, match=r"got nan\.\.nan$"):
        calibration.expected_calibration_error(np.full((4, 2), np.nan), [0, 1, 0, 1])
