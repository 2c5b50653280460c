"""object_size="auto": a second pass at the training size when the objects found are outside the
sizes the model segments well (sciconv.inference.auto_size_factor, predict_instances)."""

from __future__ import annotations

import re
import warnings

import keras
import numpy as np
import pytest

import sciconv
from sciconv import inference
from sciconv.errors import InferenceError, SciconvWarning
from sciconv.models import attach_metadata, set_metadata
from sciconv.postprocess import equivalent_diameters


def _squares(side: int, n: int = 6, gap: int = 12) -> np.ndarray:
    """Labels of ``n`` squares of ``side`` pixels in a row."""
    labels = np.zeros((side + 2 * gap, n * (side + gap) + gap), np.int32)
    for k in range(n):
        x0 = gap + k * (side + gap)
        labels[gap : gap + side, x0 : x0 + side] = k + 1
    return labels


def test_equivalent_diameters_are_the_circle_of_the_area():
    labels = np.zeros((30, 30), np.int32)
    labels[:10, :10] = 3  # numbers need not be consecutive
    labels[20:, 20:] = 7
    labels[15, 15] = 9
    np.testing.assert_allclose(
        equivalent_diameters(labels), np.sqrt(4 * np.array([100, 100, 1]) / np.pi)
    )
    assert equivalent_diameters(np.zeros((4, 4), int)).shape == (0,)
    with pytest.raises(sciconv.errors.InvalidImageError, match="integer"):
        equivalent_diameters(np.full((4, 4), 0.5))  # (whole-valued floats: labels read as float)


def test_auto_size_factor_only_outside_the_range():
    big = _squares(54)  # d = 60.9 px
    d = float(np.median(equivalent_diameters(big)))
    assert inference.auto_size_factor(big, 1.0, 18.0, (8.0, 66.0)) is None  # inside
    assert inference.auto_size_factor(big, 1.0, 18.0, (8.0, 50.0)) == pytest.approx(18.0 / d, 1e-2)
    # the size the model saw is d x factor: a first pass already at 0.5 saw 30 px, inside
    assert inference.auto_size_factor(big, 0.5, 18.0, (8.0, 50.0)) is None
    small = _squares(5)  # d = 5.6 px: enlarge
    assert inference.auto_size_factor(small, 1.0, 18.0, (8.0, 66.0)) == pytest.approx(3.2, 1e-2)
    # too few objects to tell, or a model that records no size: the first pass stands
    few = _squares(5, n=inference.AUTO_SIZE_MIN_OBJECTS - 1)
    assert inference.auto_size_factor(few, 1.0, 18.0, (8.0, 66.0)) is None
    assert inference.auto_size_factor(small, 1.0, None, (8.0, 66.0)) is None
    assert inference.auto_size_factor(small, 1.0, 18.0, None) is None


@pytest.fixture(scope="module")
def blob_model():
    """Background / foreground from a threshold at 0 on the normalized image (any size works)."""
    inputs = keras.Input((None, None, 1))
    kernel = keras.initializers.Constant([[[[-4.0, 4.0]]]])
    logits = keras.layers.Conv2D(2, 1, kernel_initializer=kernel, bias_initializer="zeros")(inputs)
    model = attach_metadata(keras.Model(inputs, keras.layers.Softmax()(logits)))
    set_metadata(
        model,
        object_size=18.0,
        object_size_range=[8.0, 40.0],
        postprocess={"threshold": 0.5, "min_size": 2},
    )
    return model


def _image(side: int) -> np.ndarray:
    return (_squares(side) > 0).astype(np.float32) * 2.0 - 1.0


def test_predict_instances_segments_again_outside_the_range(blob_model):
    image = _image(54)  # objects of 61 px, above the 40 px the model segments well
    kw = dict(normalize=None, progress=False)
    with pytest.warns(SciconvWarning, match=r"61 px.*8-40 px.*resampled by 0\.295"):
        labels = inference.predict_instances(blob_model, image, **kw)
    # exactly the explicit second pass, at the input's size
    np.testing.assert_array_equal(
        labels, inference.predict_instances(blob_model, image, scale=0.295, **kw)
    )
    assert labels.shape == image.shape and labels.max() == 6
    first = inference.predict_instances(blob_model, image, object_size=None, **kw)
    assert not np.array_equal(first, labels)  # resampling changed the outlines
    # with the probabilities, they come back at the input's size too
    with pytest.warns(SciconvWarning, match="object_size='auto'"):
        labels2, prob = inference.predict_instances(blob_model, image, return_prob=True, **kw)
    np.testing.assert_array_equal(labels2, labels)
    assert prob.shape == (*image.shape, 2)


def test_auto_size_keeps_the_first_pass_when_the_second_would_be_huge(blob_model, monkeypatch):
    """Small objects in a big image would be enlarged past what runs in one piece: the first
    pass stands, and the warning says why and what to do."""
    from sciconv.inference import _instances

    image = _image(5)  # objects of 5.6 px: enlarged 3.19x for the second pass
    monkeypatch.setattr(_instances, "AUTO_SIZE_MAX_PIXELS", image.size * 4)
    kw = dict(normalize=None, progress=False)
    with pytest.warns(SciconvWarning, match=r"would make an image of [\d,]+ pixels.*block"):
        labels = inference.predict_instances(blob_model, image, **kw)
    np.testing.assert_array_equal(
        labels, inference.predict_instances(blob_model, image, object_size=None, **kw)
    )
    monkeypatch.setattr(_instances, "AUTO_SIZE_MAX_PIXELS", image.size * 16)
    with pytest.warns(SciconvWarning, match=r"resampled by 3\.19"):
        inference.predict_instances(blob_model, image, **kw)


def test_predict_instances_inside_the_range_is_the_first_pass(blob_model):
    image = _image(20)
    kw = dict(normalize=None, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciconvWarning)
        auto = inference.predict_instances(blob_model, image, **kw)
        explicit = inference.predict_instances(blob_model, _image(54), scale=0.5, **kw)
        none = inference.predict_instances(blob_model, _image(54), scale=None, **kw)
    np.testing.assert_array_equal(
        auto, inference.predict_instances(blob_model, image, object_size=None, **kw)
    )
    # an explicit scale (a number or None) wins: no second pass, no warning
    assert explicit.max() == 6 and none.max() == 6
    with pytest.raises(InferenceError, match=r"object_size.*'auto'"):
        inference.predict_instances(blob_model, image, object_size="big", **kw)


def test_pretrained_nuclei_shrunk_real_images_recover(enlarged_real_nuclei):
    """Bundled real fluorescence nuclei of 9-14 px shrunk to 0.4x (4-6 px across, under the
    7.4 px the pretrained model saw in training): the default segments them again at the
    training size and beats segmenting them as they are."""
    model = sciconv.models.pretrained("nuclei")
    first, auto, warned = [], [], 0
    for _, image, truth in enlarged_real_nuclei(15, 0.4):
        if not np.median(equivalent_diameters(truth)) < 6:
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SciconvWarning)
            pred = inference.predict_instances(model, image, progress=False)
        warned += any("object_size='auto'" in str(w.message) for w in caught)
        plain = inference.predict_instances(model, image, object_size=None, progress=False)
        assert pred.shape == image.shape
        auto.append(float(sciconv.metrics.average_precision(truth, pred)["ap"][0]))
        first.append(float(sciconv.metrics.average_precision(truth, plain)["ap"][0]))
    assert len(auto) >= 5 and warned >= 3, (len(auto), warned)
    # measured: mean AP@0.5 0.29 as they are, 0.67 with the second pass (7 images)
    assert np.mean(auto) >= 0.6 and np.mean(auto) > np.mean(first) + 0.2, (first, auto)
    assert all(a >= f for a, f in zip(auto, first)), (first, auto)


def test_a_given_min_size_counts_the_input_pixels_when_resampling(blob_model):
    """``min_size`` given to predict_instances is in the input's pixels (what the catalog's
    ``area`` counts), whatever resampling runs; the model's recorded one stays in its own."""
    image = np.full((60, 90), -1.0, np.float32)
    image[10:13, 10:13] = 1.0  # 9 px
    image[10:20, 30:40] = 1.0  # 100 px
    image[30:44, 60:74] = 1.0  # 196 px
    kw = dict(normalize=None, progress=False)
    for scale, min_size, kept in [(2.0, 20, [100, 196]), (0.5, 60, [100, 196]), (2.0, 150, [196])]:
        labels = inference.predict_instances(
            blob_model, image, scale=scale, min_size=min_size, **kw
        )
        areas = np.bincount(labels.ravel())[1:]
        assert labels.max() == len(kept), (scale, min_size, areas)
        np.testing.assert_allclose(np.sort(areas), kept, rtol=0.1)
    # no min_size given: the recorded one (2 px in the model's pixels) keeps the 9 px square
    assert inference.predict_instances(blob_model, image, scale=2.0, **kw).max() == 3


def test_resampled_labels_come_back_in_one_piece_each(data_dir):
    """Labels found on a resampled image and mapped back to the input's pixels: each object one
    4-connected piece (nearest-neighbour sampling cut some in two), no object under min_size."""
    from scipy import ndimage as ndi

    image = sciconv.io.read(data_dir / "real" / "hst" / "j8bt06nyq_sci_cutout.fits")
    model = sciconv.models.pretrained("nuclei")
    with pytest.warns(SciconvWarning, match="object_size='auto'"):
        labels = inference.predict_instances(
            model, image, min_size=3, precision="float32", progress=False
        )
    areas = np.bincount(labels.ravel())[1:]
    assert labels.max() > 100 and areas.min() >= 3, (labels.max(), areas.min())
    pieces = [ndi.label(labels[s] == i)[1] for i, s in enumerate(ndi.find_objects(labels), 1)]
    assert max(pieces) == 1, sum(p > 1 for p in pieces)


def test_pretrained_nuclei_enlarged_are_found_whole(enlarged_real_nuclei):
    """A real fluorescence image enlarged 3x (nuclei of ~135 px, twice the largest size the
    model segments well): the first pass cuts each nucleus into pieces of about the training
    size, inside the range, so only the half-resolution probe sees they are larger. At their own
    size no bundled image is probed into a change."""
    model = sciconv.models.pretrained("nuclei")
    [(_, image, truth)] = [e for e in enlarged_real_nuclei(15, 3.0) if e[0].startswith("0532c6")]
    with pytest.warns(SciconvWarning, match="pieces of larger ones"):
        auto = inference.predict_instances(model, image, progress=False)
    plain = inference.predict_instances(model, image, object_size=None, progress=False)
    ap = [float(sciconv.metrics.average_precision(truth, p)["ap"][0]) for p in (plain, auto)]
    assert ap[1] >= 0.85 and ap[0] <= 0.3, ap  # measured: 0.13 -> 0.92
    for name, image, _ in enlarged_real_nuclei(15, 1.0):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SciconvWarning)
            inference.predict_instances(model, image, progress=False)
        assert not any("pieces" in str(w.message) for w in caught), name


def _three_class_model(boundary_offset: float):
    """Background / interior / boundary from the sign of the normalized image, the boundary's
    logit ``boundary_offset`` above the interior's everywhere on the objects: their boundary
    share is ``sigmoid(boundary_offset)`` (about 0.02 for -4, 0.6 for 0.4)."""
    inputs = keras.Input((None, None, 1))
    kernel = keras.initializers.Constant([[[[-6.0, 6.0, 6.0]]]])
    bias = keras.initializers.Constant([0.0, 0.0, boundary_offset])
    logits = keras.layers.Conv2D(3, 1, kernel_initializer=kernel, bias_initializer=bias)(inputs)
    model = attach_metadata(keras.Model(inputs, keras.layers.Softmax()(logits)))
    set_metadata(
        model,
        object_size=18.0,
        object_size_range=[8.0, 40.0],
        postprocess={"threshold": 0.5, "min_size": 2, "seed_threshold": 0.01},
    )
    return model


@pytest.mark.parametrize(("offset", "enlarged"), [(0.4, True), (-4.0, False)])
def test_small_objects_holding_no_boundary_are_not_enlarged(offset, enlarged):
    """Objects below the range are enlarged to the training size, unless they hold almost no
    boundary probability: then they are pieces of larger objects (real nuclei enlarged 2x came
    out as 7 px fragments, and enlarging them 2.6x made 2,380 objects, AP@0.5 0.92 -> 0.00;
    measured: small nuclei hold 0.50-0.70, such pieces 0.02)."""
    model = _three_class_model(offset)
    image = _image(5)  # six 5 px squares: d = 5.6 px, under the 8 px of the range
    kw = dict(normalize=None, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SciconvWarning)
        auto = inference.predict_instances(model, image, **kw)
    said = [str(w.message) for w in caught if "object_size='auto'" in str(w.message)]
    assert bool(said) is enlarged, said
    if not enlarged:  # the first pass is the result
        plain = inference.predict_instances(model, image, object_size=None, **kw)
        np.testing.assert_array_equal(auto, plain)


def test_a_second_pass_that_finds_nothing_gives_empty_labels(data_dir):
    """The real HST DQ cutout (flags, not light) through the nuclei model: the first pass finds
    specks, the pass at the training size finds nothing, and mapping no labels back to the
    input's size raised IndexError (sciconv predict: 'unexpected IndexError', no file named)."""
    image = sciconv.io.read(data_dir / "real" / "hst" / "j8bt06nyq_dq_cutout.fits")
    model = sciconv.models.pretrained("nuclei")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SciconvWarning)
        labels = inference.predict_instances(model, image, precision="float32", progress=False)
    assert labels.shape == image.shape[:2] and labels.dtype == np.int32


def _ap50(truth, labels) -> float:
    return float(sciconv.metrics.average_precision(truth, labels)["ap"][0])


def test_block_wise_runs_resample_every_block_as_the_whole_image(enlarged_real_nuclei):
    """Block by block the image was not resampled: object_size='auto' was dropped silently
    (real nuclei enlarged 3x: AP 0.855 whole, 0.580 block-wise), later only said in a warning.
    Now the busiest crop decides the factor and every block is resampled by it (labels back at
    the image's pixels): the block-wise labels score as the whole image's; a given size sets the
    blocks' factor instead of being refused."""
    [(_, image, truth)] = [e for e in enlarged_real_nuclei(15, 3.0) if e[0].startswith("0532c6")]
    model = sciconv.models.pretrained("nuclei")
    kw = dict(precision="float32", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SciconvWarning)
        whole = inference.predict_instances(model, image, **kw)
    with pytest.warns(SciconvWarning, match=r"object_size='auto' \(block by block\)") as said:
        blocks = inference.predict_instances(model, image, block=512, **kw)
    (note,) = [str(w.message) for w in said if "(block by block)" in str(w.message)]
    factor = float(re.search(r"needs resampling by ([0-9.]+)", note).group(1))
    assert 0.08 < factor < 0.25, note  # nuclei of ~135 px: 18 / 135 = 0.13
    assert f"every block is segmented resampled by {factor:.3g}" in note
    assert all(w.filename == __file__ for w in said if w.message is not None)
    assert blocks.shape == image.shape[:2]
    ap_whole, ap_blocks = (_ap50(truth, x) for x in (whole, blocks))
    assert ap_blocks >= ap_whole - 0.02 and ap_blocks > 0.85, (ap_whole, ap_blocks)
    with warnings.catch_warnings(record=True) as quiet:
        warnings.simplefilter("always")
        kept = inference.predict_instances(model, image, object_size=None, block=512, **kw)
    assert not any("object_size" in str(w.message) for w in quiet)
    assert _ap50(truth, kept) < ap_blocks - 0.2  # the image's own pixels: nuclei in pieces
    sized = inference.predict_instances_blocks(
        model, image, object_size=135, block=512, catalog=False, **kw
    )
    assert _ap50(truth, sized) > 0.85


def _quadrants(sides, gaps, quarter: int = 512) -> np.ndarray:
    """An image of 2 x 2 quarters, each a grid of squares of its side and gap (+1 on -1)."""
    image = -np.ones((2 * quarter, 2 * quarter), np.float32)
    for k, (side, gap) in enumerate(zip(sides, gaps, strict=True)):
        y0, x0 = quarter * (k // 2), quarter * (k % 2)
        for y in range(y0 + gap // 2, y0 + quarter - side, side + gap):
            for x in range(x0 + gap // 2, x0 + quarter - side, side + gap):
                image[y : y + side, x : x + side] = 1.0
    return image


def test_an_image_in_one_piece_that_holds_crops_apart_lets_its_busiest_crops_decide(
    blob_model, monkeypatch
):
    """The whole image decided on the median of all its objects, the block-wise run on its
    busiest crops: a mosaic of real nuclei enlarged 5x kept its pixels whole (AP@0.5 0.38,
    silent) and was resampled by 0.19 block by block (0.84, QA). Three quarters of large
    squares (68 px across, above the 40 px the model segments well) and one of many small ones
    (16 px): the small ones are most of the objects, so the whole image's median said keep; the
    quarters' vote says resample, and the image is segmented as block by block."""
    from sciconv.inference import _size_probe

    monkeypatch.setattr(_size_probe, "SIZE_CHECK_CROP", 512)
    image = _quadrants((60, 60, 14, 60), (40, 40, 10, 40))
    kw = dict(normalize=None, progress=False)
    sizes = equivalent_diameters(inference.predict_instances(blob_model, image, scale=None, **kw))
    assert 8 < np.median(sizes) < 40  # the whole image's median: inside the range
    with pytest.warns(SciconvWarning, match=r"\(in one piece\).*the image is segmented") as said:
        labels = inference.predict_instances(blob_model, image, **kw)
    (note,) = [str(w.message) for w in said]
    factor = float(re.search(r"resampled by ([0-9.]+)", note).group(1))
    assert factor == pytest.approx(18 / np.sqrt(4 * 3600 / np.pi), rel=0.02), note
    assert said[0].filename == __file__
    np.testing.assert_array_equal(
        labels, inference.predict_instances(blob_model, image, scale=factor, **kw)
    )
    with pytest.warns(SciconvWarning, match=rf"\(block by block\).*resampled by {factor:.3g}"):
        blocks = inference.predict_instances(blob_model, image, block=512, **kw)
    assert np.array_equal(blocks > 0, labels > 0)


def test_crops_that_agree_with_the_first_pass_cost_no_prediction(blob_model, monkeypatch):
    """The crops of an image in one piece decide on its first pass cut to them: an image whose
    objects are in range everywhere is predicted once, and says nothing."""
    from sciconv.inference import _instances, _size_probe

    monkeypatch.setattr(_size_probe, "SIZE_CHECK_CROP", 512)
    calls = []

    def counted(*args, **kwargs):
        calls.append(args[1].shape)
        return predict_tiled(*args, **kwargs)

    predict_tiled = _instances.predict_tiled
    monkeypatch.setattr(_instances, "predict_tiled", counted)
    image = _quadrants((14, 16, 14, 18), (10, 10, 10, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciconvWarning)
        labels = inference.predict_instances(blob_model, image, normalize=None, progress=False)
    assert calls == [image.shape] and labels.max() > 1500


def test_sparse_large_objects_are_resampled_though_each_crop_holds_few(blob_model, monkeypatch):
    """A crop with fewer than 5 objects voted keep: an image of 16 large squares, 4 per crop,
    kept its pixels silently once crops voted (review). The whole image's own rule decides it
    (crops vote only when it kept objects inside the range), and a crop too sparse to tell
    abstains."""
    from sciconv.inference import _size_probe

    monkeypatch.setattr(_size_probe, "SIZE_CHECK_CROP", 512)
    image = _quadrants((100,) * 4, (150,) * 4)  # 4 squares of 112 px across per quarter
    kw = dict(normalize=None, progress=False)
    with pytest.warns(SciconvWarning, match=r"112 px across.*outside the 8-40 px.*by 0\.16 "):
        labels = inference.predict_instances(blob_model, image, **kw)
    np.testing.assert_array_equal(
        labels, inference.predict_instances(blob_model, image, scale=0.16, **kw)
    )
    votes = iter([(1.0, None), (0.2, 90.0), (0.2, 90.0)])
    read = lambda ys, xs: image[ys[0] : ys[1], xs[0] : xs[1]]  # noqa: E731
    with pytest.warns(SciconvWarning, match="resampling by 0.2"):
        assert _size_probe.check_size_on_crop(read, image.shape, lambda ys, xs: next(votes)) == 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciconvWarning)
        assert _size_probe.check_size_on_crop(read, image.shape, lambda ys, xs: (1.0, None)) == 1.0


def test_a_crops_vote_too_large_to_run_in_one_piece_is_said_once(blob_model, monkeypatch):
    """The vote's warning said the image was segmented at the factor, then a second that the
    first pass was kept (review): only the second is given."""
    from sciconv.inference import _instances, _size_probe

    monkeypatch.setattr(_size_probe, "SIZE_CHECK_CROP", 512)
    # one quarter of many 9 px squares (in range, most objects), three of sparse 6.8 px ones
    image = _quadrants((8, 6, 6, 6), (4, 20, 20, 20))
    kw = dict(normalize=None, progress=False)
    with pytest.warns(SciconvWarning, match=r"\(in one piece\).*segmented at 2\.3"):
        inference.predict_instances(blob_model, image, **kw)
    monkeypatch.setattr(_instances, "AUTO_SIZE_MAX_PIXELS", 2_000_000)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        labels = inference.predict_instances(blob_model, image, **kw)
    assert [str(w.message)[:45] for w in said] == ["object_size='auto': resampling by 2.3 would m"]
    assert said[0].filename == __file__
    np.testing.assert_array_equal(
        labels, inference.predict_instances(blob_model, image, object_size=None, **kw)
    )


def test_brightness_and_noise_are_not_judged_on_objects_outside_the_sizes(blob_model, monkeypatch):
    """Zero-shot QA: real nuclei enlarged 2x were cut into pieces by the first pass, read as a
    faint image, and the saturated second pass gave 3454 objects for 13 nuclei (AP 1.00 ->
    0.00; brightness=None 1.00). Objects outside the model's sizes are resampled first: the
    brightness/denoise pass is not asked; inside them it is."""
    from sciconv.inference import _instances

    asked = []

    def spy(*args, **kwargs):
        asked.append(True)
        return None  # keep the first pass

    monkeypatch.setattr(_instances, "second_pass_input", spy)
    kw = dict(normalize=None, progress=False)
    with pytest.warns(SciconvWarning, match="object_size='auto'"):
        inference.predict_instances(blob_model, _image(54), **kw)  # 61 px: outside 8-40
    assert asked == []
    inference.predict_instances(blob_model, _image(16), **kw)  # 18 px: inside
    assert asked == [True]
    inference.predict_instances(blob_model, _image(54), object_size=None, **kw)  # no size rule
    assert asked == [True, True]
