"""sciconv.inference.predict_stack: a movie or Z-stack segmented plane by plane with one size
decision, a plane with no data (a dropped frame) left empty instead of failing the stack, each
plane's warnings naming it; the products where ``out`` says (memory maps)."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
import tifffile
from _helpers import threshold_model

from sciconv import io
from sciconv.errors import ConfigError, InferenceError, SciconvWarning
from sciconv.inference import StackPlane, decisions, predict_instances, predict_stack


def _movie(n: int = 4, size: int = 48, seed: int = 0) -> np.ndarray:
    """``n`` frames of bright squares on a noisy background, one frame's layout per seed."""
    rng = np.random.default_rng(seed)
    frames = rng.normal(0.0, 0.01, (n, size, size)).astype(np.float32)
    for t in range(n):
        for y, x in rng.integers(2, size - 10, (3, 2)):
            frames[t, y : y + 7, x : x + 7] = 1.0
    return frames


def _said(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, SciconvWarning)]


def test_an_all_nan_frame_is_empty_and_the_others_are_the_2d_runs():
    """QA 56: one all-NaN frame failed the whole movie ("plane T=4: normalization limits are
    not finite"). Now that frame gives labels 0, probabilities NaN, bad all True and one warning
    naming it; every other frame is exactly its 2-D run."""
    model = threshold_model()
    movie = _movie()
    movie[2] = np.nan
    seen: list[StackPlane] = []
    with pytest.warns(SciconvWarning) as caught, decisions() as decided:
        labels, prob = predict_stack(
            model, movie, axes="T", return_prob=True, progress=False, on_plane=seen.append
        )
    said = _said(caught)
    assert len(said) == 1, said
    assert said[0].startswith("plane T=2: no finite pixel") and "1 of 4 planes" in said[0]
    assert labels.shape == (4, 48, 48) and labels.dtype == np.int32
    assert prob.shape == (4, 48, 48, 2)
    assert not labels[2].any() and np.isnan(prob[2]).all()
    for t in (0, 1, 3):
        alone, alone_prob = predict_instances(model, movie[t], return_prob=True, progress=False)
        np.testing.assert_array_equal(labels[t], alone)
        np.testing.assert_array_equal(prob[t], alone_prob)
        assert labels[t].max() >= 2
    # on_plane: once per plane, in order, the empty one flagged and all bad
    assert [p.index for p in seen] == [0, 1, 2, 3]
    assert [p.name for p in seen] == ["T=0", "T=1", "T=2", "T=3"]
    assert [p.empty for p in seen] == [False, False, True, False]
    assert seen[2].bad.all() and not seen[0].bad.any()
    np.testing.assert_array_equal(seen[3].labels, labels[3])
    # the decisions of the segmented planes only (not "1 x not decided")
    assert "not decided" not in str(decided), decided


def test_all_masked_planes_of_a_grid_image_and_a_tz_stack_are_named(tmp_path):
    """A GridImage read with stack=True: a plane whose pixels are all masked is empty too; the
    TZ axes and sizes come from the file's metadata, and the warning names both planes."""
    frames = _movie(6, 32, seed=1).reshape(2, 3, 32, 32)
    frames[1, 0] = np.nan
    frames[0, 2] = np.nan
    path = tmp_path / "tz.tif"
    tifffile.imwrite(path, frames, imagej=True, metadata={"axes": "TZYX"})
    stack = io.read(path, stack=True)
    assert stack.data.shape == (6, 32, 32, 1)
    with pytest.warns(SciconvWarning) as caught:
        labels = predict_stack(threshold_model(), stack, progress=False)
    said = _said(caught)
    assert len(said) == 1, said
    assert said[0].startswith("planes T=0, Z=2; T=1, Z=0: no finite pixel"), said
    assert labels.shape == (2, 3, 32, 32)
    assert not labels[0, 2].any() and not labels[1, 0].any() and labels[0, 0].max() >= 2


def test_plane_warnings_and_errors_name_the_plane(tmp_path):
    """Each plane's SciconvWarning is said naming its plane; an error names the plane and the
    stack's file; a stack with no data anywhere is an error, not a silent empty result."""
    model = threshold_model(pixel_scale={"y": 0.5, "x": 0.5, "unit": "um"})
    with pytest.warns(SciconvWarning) as caught:
        predict_stack(model, _movie(3, 32), axes="Z", progress=False)
    said = [s for s in _said(caught) if "pixel scale is unknown" in s]
    assert [s.split(":")[0] for s in said] == ["plane Z=0", "plane Z=1", "plane Z=2"], said

    path = tmp_path / "nan.tif"
    tifffile.imwrite(path, np.full((2, 16, 16), np.nan, np.float32), metadata={"axes": "TYX"})
    with pytest.raises(InferenceError, match=r"nan\.tif: no plane of the stack's 2 has a finite"):
        predict_stack(threshold_model(), io.read(path, stack=True), progress=False)

    def refuse(plane):
        raise ConfigError("cannot measure")

    with pytest.raises(ConfigError, match=r"^plane T=0: cannot measure"):
        predict_stack(threshold_model(), _movie(2, 32), axes="T", on_plane=refuse, progress=False)
    with pytest.raises(ConfigError, match=r"give axes= .* got shape \(2, 32, 32\)"):
        predict_stack(threshold_model(), _movie(2, 32), progress=False)
    with pytest.raises(ConfigError, match=r"axes must be stack axes from 'TZ'.*got 'C'"):
        predict_stack(threshold_model(), _movie(2, 32), axes="C", progress=False)
    with pytest.raises(ConfigError, match=r"channel must be an int from 0 to 0 .* got 3"):
        predict_stack(threshold_model(), _movie(2, 32), axes="T", channel=3, progress=False)


def test_products_go_where_out_says_and_stay_out_of_memory(tmp_path):
    """``out=``: the planes' products are written into the arrays it gives (memory maps, as
    sciconv predict keeps them), the same values as in memory, and the run holds none of the
    stack's probabilities in memory (a long movie stays flat)."""
    from numpy.lib.format import open_memmap

    model = threshold_model()
    movie = _movie(24, 128, seed=2)
    made = {}

    def to_disk(key, shape, dtype):
        made[key] = open_memmap(tmp_path / f"{key}.npy", mode="w+", dtype=dtype, shape=shape)
        return made[key]

    in_memory = predict_stack(model, movie, axes="T", return_prob=True, progress=False)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        on_disk = predict_stack(
            model, movie, axes="T", return_prob=True, progress=False, out=to_disk
        )
        peak_disk = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        predict_stack(model, movie, axes="T", return_prob=True, progress=False)
        peak_memory = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sorted(made) == ["bad", "labels", "prob"]
    assert all(isinstance(a, np.memmap) for a in on_disk)
    assert np.shares_memory(on_disk[0], made["labels"])
    for a, b in zip(in_memory, on_disk):
        np.testing.assert_array_equal(a, b)
    prob_bytes = made["prob"].nbytes  # 24 x 128 x 128 x 2 float32: 6.3 MB
    assert peak_memory - peak_disk > 0.8 * prob_bytes, (peak_memory, peak_disk)
    assert not made["bad"].any()
    given = {"labels": np.full((24, 128, 128), -1, np.int32)}
    result = predict_stack(model, movie, axes="T", out=given, progress=False)
    assert np.shares_memory(result, given["labels"])
    np.testing.assert_array_equal(given["labels"], in_memory[0])
    with pytest.raises(ConfigError, match=r"out\['labels'\] has shape \(3, 3\)"):
        predict_stack(model, movie, axes="T", out={"labels": np.zeros((3, 3))}, progress=False)


def test_the_napari_widget_names_the_plane_and_survives_a_dropped_frame():
    """The widget's stack path goes through predict_stack: a NaN frame gives labels 0 there and
    one warning naming it (it raised "normalization limits are not finite"); no features for
    it."""
    from sciconv.napari._widget import segment_nuclei

    movie = _movie(3, 48, seed=3)
    movie[1] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels, kwargs, kind = segment_nuclei(
            movie, model=threshold_model(), tile=48, planes=1, axes="T"
        )
    said = _said(caught)
    assert len(said) == 1 and said[0].startswith("plane T=1: no finite pixel"), said
    assert kind == "labels" and labels.shape == movie.shape
    assert not labels[1].any() and labels[0].max() >= 2 and labels[2].max() >= 2
    assert 1 not in kwargs["features"]["plane"].tolist()
    assert sorted(set(kwargs["features"]["plane"].tolist())) == [0, 2]
    assert len(kwargs["metadata"]["decisions"]) == 3
