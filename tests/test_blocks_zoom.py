"""Block-wise instances of a resampled image: each window resampled, labels mapped back.

Whole slides of large nuclei (a 40x scan, nuclei three times the training size) were segmented
block by block at their own pixels only: a warning said to resample first, and a given
``scale=`` or ``object_size=`` was refused. Now every block window is resampled by the one
factor the whole image would be, and its labels come back at the image's pixels.
"""

from __future__ import annotations

import numpy as np
import pytest

from sciconv import models
from sciconv.errors import InferenceError, SciconvWarning
from sciconv.inference import predict_instances, predict_instances_blocks
from sciconv.metrics import average_precision

FAST = dict(normalize=None, progress=False, blend="none", threshold=0.99)  # p > 0.99: x > 2.3


@pytest.fixture(scope="module")
def model(threshold_model):
    return threshold_model


def _squares(shape=(240, 320), side=24, step=40, value=5.0):
    """Squares of ``side`` px on a grid: (image, truth labels)."""
    image = np.zeros(shape, np.float32)
    truth = np.zeros(shape, np.int32)
    n = 0
    for y in range(8, shape[0] - side, step):
        for x in range(8, shape[1] - side, step):
            n += 1
            image[y : y + side, x : x + side] = value
            truth[y : y + side, x : x + side] = n
    return image, truth


def _ap(truth, labels, threshold):
    return float(average_precision(truth, labels, thresholds=(threshold,))["mean_ap"])


def test_blocks_resampled_by_a_given_scale_match_the_whole_image(model):
    """scale=0.5 block by block was refused ("do not resample the image"); now the labels are
    the whole image's, resampled the same way, at the input's pixels, with a catalog measured
    there (areas of the input's squares, not of the model's half-size ones)."""
    image, truth = _squares()
    whole = predict_instances(model, image, scale=0.5, **FAST)
    labels, table = predict_instances_blocks(model, image, scale=0.5, block=64, **FAST)
    assert labels.shape == image.shape and labels.max() == truth.max()
    assert _ap(whole, labels, 0.95) == 1.0  # the same objects, pixel for pixel or nearly
    assert _ap(truth, labels, 0.8) == 1.0
    assert np.all(np.abs(np.asarray(table["area"]) - 24 * 24) <= 0.15 * 24 * 24)
    # predict_instances(block=) takes the scale now (it raised InferenceError)
    again = predict_instances(model, image, scale=0.5, block=64, **FAST)
    assert _ap(labels, again, 0.99) == 1.0


def test_a_given_min_size_counts_the_image_pixels_when_blocks_are_resampled(model):
    """min_size given by the caller is in the image's pixels, as predict_instances takes it:
    6 x 6 dots (36 px, 9 px resampled) go with min_size=100, the 576 px squares stay."""
    image, truth = _squares()
    image[37:43, 37:43] = 5.0  # dots between the squares
    image[77:83, 117:123] = 5.0
    whole = predict_instances(model, image, scale=0.5, min_size=100, **FAST)
    blocks = predict_instances_blocks(
        model, image, scale=0.5, min_size=100, block=64, catalog=False, **FAST
    )
    assert whole.max() == blocks.max() == truth.max()
    assert _ap(truth, blocks, 0.8) == 1.0
    kept = predict_instances_blocks(
        model, image, scale=0.5, min_size=4, block=64, catalog=False, **FAST
    )
    assert kept.max() == truth.max() + 2


def test_the_automatic_margin_grows_as_the_blocks_shrink(model):
    """The margin planned for max_object (64 px as the model sees them) and the receptive field
    is in the image's pixels: at scale=0.5, 110 px squares stay whole with block=64 (a margin
    in the model's pixels, 48, cut them at seams: SciconvWarning, an error under pytest)."""
    image, truth = _squares(shape=(300, 400), side=110, step=140)
    labels = predict_instances_blocks(model, image, scale=0.5, block=64, catalog=False, **FAST)
    assert labels.max() == truth.max()
    assert _ap(truth, labels, 0.9) == 1.0
    # the old margin, too small: objects cut, and pieces two blocks kept overlap (said, with
    # the margin: the later block's labels overwrote the earlier's silently)
    with pytest.warns(SciconvWarning, match=r"overlapped objects .* now 48 px"):
        with pytest.warns(SciconvWarning, match="in pieces|MISSING"):
            predict_instances_blocks(model, image, scale=0.5, block=64, margin=48, **FAST)


def test_object_size_sets_the_blocks_resampling(model):
    """object_size=<diameter> (a number) was refused block by block; it resamples every block
    by training size / diameter, as predict_instances does, and needs the training size."""
    image, truth = _squares(side=36, step=48)
    sized = models.attach_metadata(model, object_size=18.0)
    labels = predict_instances_blocks(sized, image, object_size=36, block=64, catalog=False, **FAST)
    assert _ap(truth, labels, 0.8) == 1.0
    assert _ap(predict_instances(sized, image, scale=0.5, **FAST), labels, 0.95) == 1.0
    with pytest.raises(InferenceError, match=r"object_size= and scale=0\.5 both set"):
        predict_instances_blocks(sized, image, object_size=36, scale=0.5, block=64, **FAST)


def test_a_bad_scale_is_refused_before_any_block_runs(model):
    image, _ = _squares()
    with pytest.raises(InferenceError, match="scale must be a positive number"):
        predict_instances_blocks(model, image, scale=-1, block=64, **FAST)


def test_blocks_follow_the_pixel_scales_and_say_a_missing_one_once(model):
    """scale='auto': a model trained at 0.5 um/px and a slide at 0.25 um/px are resampled by 0.5
    block by block as in one piece; a slide without a pixel scale is said once (the factor was
    resolved twice on the way to the blocks: two warnings)."""
    from sciconv.io import GridImage

    image, truth = _squares()
    scaled = models.attach_metadata(model, pixel_scale={"y": 0.5, "x": 0.5, "unit": "um"})
    slide = GridImage(image, meta={"pixel_scale": {"y": 0.25, "x": 0.25, "unit": "um"}})
    with pytest.warns(SciconvWarning, match="resampling the image by 0.5") as said:
        labels = predict_instances(scaled, slide, block=64, **FAST)
    assert len(said) == 1
    assert _ap(predict_instances(scaled, image, scale=0.5, **FAST), labels, 0.95) == 1.0
    assert _ap(truth, labels, 0.8) == 1.0
    with pytest.warns(SciconvWarning, match="pixel scale") as said:
        predict_instances(scaled, image, block=64, **FAST)
    assert len([w for w in said if "pixel scale" in str(w.message)]) == 1


def test_resampled_windows_share_the_whole_images_pixel_grid(model):
    """Each window was resampled on its own grid (its own sub-pixel phase), so two windows saw
    an object differently: on real nuclei enlarged 3x, 4-6 objects per 3k mosaic kept twice
    (overlapping, catalog areas off) and 3-7 lost. Windows now take the whole resampled image's
    pixels (ZoomGrid): at an awkward factor the labels are the whole image's, pixel for pixel."""
    rng = np.random.default_rng(3)
    image = np.zeros((300, 340), np.float32)
    yy, xx = np.mgrid[:300, :340]
    for _ in range(60):  # discs of 5-14 px radius anywhere, seams included
        cy, cx, r = rng.uniform(0, 300), rng.uniform(0, 340), rng.uniform(5, 14)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = rng.uniform(3, 6)
    for factor in (0.37, 0.61, 1.7):
        whole = predict_instances(model, image, scale=factor, **FAST)
        blocks = predict_instances_blocks(
            model, image, scale=factor, block=48, catalog=False, **FAST
        )
        assert np.array_equal(whole > 0, blocks > 0), factor
        assert whole.max() == blocks.max() and _ap(whole, blocks, 0.99) == 1.0, factor


def test_the_size_check_takes_the_median_of_crops_apart_and_says_when_they_disagree():
    """One busy crop decided for the whole slide: a slide whose busiest quarter held nuclei five
    times larger was resampled by 0.19 everywhere, and its other three quarters lost every
    nucleus (AP 0.82 -> 0.00, QA). Crops apart now vote; the median wins, said when they
    disagree."""
    from sciconv.errors import SciconvWarning
    from sciconv.inference._size_probe import check_size_on_crop

    image = np.zeros((300, 300), np.float32)
    image[::7, ::7] = 1.0  # ordinary objects everywhere

    def odd(y, x):  # a tile of the 3 x 3 grid whose objects are larger (and brighter)
        tile = image[y : y + 100, x : x + 100]
        tile[...] = np.where(tile > 0, 9.0, 2.0)

    def read(ys, xs):
        return image[ys[0] : ys[1], xs[0] : xs[1]]

    def decide(ys, xs):  # an odd tile alone asks for resampling
        return 0.2 if read(ys, xs).mean() > 1.5 else 1.0

    odd(200, 200)
    with pytest.warns(SciconvWarning, match=r"need different resampling \(rows 200:300, col"):
        assert check_size_on_crop(read, image.shape, decide, side=100) == 1.0
    odd(0, 200)  # two odd tiles among the three busiest: they win
    with pytest.warns(SciconvWarning, match="at the median, 0.2"):
        assert check_size_on_crop(read, image.shape, decide, side=100) == 0.2
    small = image[:150, :150]  # one crop only (windows overlap): its factor, said as before
    with pytest.warns(SciconvWarning, match="every block is segmented resampled by 0.2"):
        check_size_on_crop(
            lambda ys, xs: small[ys[0] : ys[1], xs[0] : xs[1]], small.shape, lambda ys, xs: 0.2,
            side=100,
        )  # fmt: skip


def test_crops_that_disagree_are_segmented_at_a_factor_that_keeps_them_all_in_range():
    """The median of disagreeing crops kept a mosaic of real nuclei enlarged 5x at its pixels:
    crops of 46 and 61 px nuclei voted 1, one of 95 px nuclei 0.19, and the 95 px nuclei came
    out in pieces (AP@0.5 0.38, whole and block by block). A factor that brings every crop's
    objects within 2x of the training size, the extremes equally far from it, scores 0.83;
    when none does, the median stands."""
    from sciconv.errors import SciconvWarning
    from sciconv.inference._size_probe import check_size_on_crop

    image = np.zeros((300, 300), np.float32)
    image[::5, ::5] = 1.0
    meta = {"object_size": 18.0, "object_size_range": [7.4, 65.9]}

    def read(ys, xs):
        return image[ys[0] : ys[1], xs[0] : xs[1]]

    def vote(*found):
        votes = iter(found)
        return check_size_on_crop(
            read, image.shape, lambda ys, xs: next(votes), side=100, meta=meta
        )

    with pytest.warns(
        SciconvWarning, match=r"at 0\.272, which brings every crop's objects \(46, 61, 95 px"
    ):
        assert vote((1.0, 46.0), (1.0, 61.0), (0.189, 95.0)) == 0.272  # 18 / sqrt(46 x 95)
    with pytest.warns(SciconvWarning, match=r"at 0\.822, which"):  # 12 and 40 px: 9.9, 32.9
        assert vote((1.0, 12.0), (1.0, 12.0), (0.45, 40.0)) == 0.822
    # rows of nuclei at 1x and 5x (18 and 90 px): 0.45 left the 18 px ones at 8 px (AP@0.5
    # 0.74 -> 0.21 on real nuclei): no factor brings both within 2x of 18 px, the median stands
    with pytest.warns(SciconvWarning, match=r"at the median, 1\b"):
        assert vote((1.0, 18.0), (1.0, 18.0), (0.2, 90.0)) == 1.0
    with pytest.warns(SciconvWarning, match=r"at the median, 1\b"):  # 5 and 200 px: none fits
        assert vote((3.6, 5.0), (1.0, 30.0), (0.09, 200.0)) == 1.0
    with pytest.warns(SciconvWarning, match=r"at the median, 0\.5\b"):  # a size unknown
        assert vote((0.5, None), (1.0, 30.0), (0.2, 90.0)) == 0.5
    # a crop that keeps with no size (too few objects, or pieces) abstains: the others decide
    with pytest.warns(
        SciconvWarning, match=r"at 0\.346, which brings every crop's objects \(30, 90"
    ):
        assert vote((1.0, None), (1.0, 30.0), (0.2, 90.0)) == 0.346


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        (dict(scale="0.2"), "scale must be a positive number, 'auto' or None; got '0.2'"),
        (dict(scale=True), "scale must be a positive number, 'auto' or None; got True"),
        (dict(scale=1e-4), r"scale 0.0001 turns an image of \(240, 320\) pixels into \[0, 0\]"),
        (dict(scale=0.5, min_size="x"), "min_size must be a number of pixels >= 0.*got 'x'"),
        (dict(scale=0.5, min_size=-1), "min_size must be a number of pixels >= 0.*got -1$"),
        (dict(scale=0.5, max_object=0), "max_object must be a positive int or None; got 0"),
        (dict(scale=40, block=2048), r"gives the model windows of .* give block=\d+ or less"),
    ],
)
def test_block_options_are_checked_as_given(model, kw, error):
    """Were: a string scale let object_size='auto' re-decide, True counted as 1, a tiny factor
    raised ZeroDivisionError, min_size was scaled before it was checked (TypeError; 'got
    -0.25'), max_object <= 0 shrank the margin, an enlarged block ran out of memory."""
    image, _ = _squares()
    with pytest.raises(InferenceError, match=error):
        predict_instances_blocks(model, image, catalog=False, **dict(FAST, **kw))


def test_a_pixel_scale_given_as_scale_sizes_the_catalog(model):
    """scale= 0.25 um (a model trained at 0.5 um: resampled by 0.5): the blocks' catalog had no
    physical columns (the image's own scale, unknown, was used); a model that records no pixel
    scale says it did not resample."""
    import astropy.units as u

    image, _ = _squares()
    sized = models.attach_metadata(model, pixel_scale={"y": 0.5, "x": 0.5, "unit": "um"})
    labels, table = predict_instances_blocks(sized, image, scale=0.25 * u.um, block=64, **FAST)
    assert np.allclose(table["area_phys"], table["area"] * 0.0625, rtol=1e-6)
    assert _ap(predict_instances(sized, image, scale=0.5, **FAST), labels, 0.95) == 1.0
    with pytest.warns(SciconvWarning, match="the model records none it was trained at"):
        predict_instances_blocks(model, image, scale=0.25 * u.um, block=64, **FAST)


def _faint_model():
    from test_second_pass import LEVEL, _threshold_model

    return _threshold_model(level=0.02, object_level=LEVEL)


def test_resampled_blocks_stretch_as_the_whole_resampled_image_on_a_large_image():
    """Above 4 Mpx the limits came from the image's own sampled lines, not from the resampled
    image the model sees: on a 2200² image at scale=0.3 the stretch's top was 915 block-wise,
    659 whole, and the labels differed (review). The blocks now take the resampled image's
    sample (read band by band), as the whole image does."""
    rng = np.random.default_rng(5)
    image = rng.normal(10, 0.5, (2100, 2100)).astype(np.float32)
    for k in range(42):  # squares of varied brightness
        y, x = 300 * (k // 7) + 40, 280 * (k % 7) + 40
        image[y : y + 60, x : x + 60] += 20 + 10 * (k % 5)
    # 0.5 % hot pixels set the top of the image's own stretch; resampled, they blur away
    image[rng.integers(0, 2100, 22000), rng.integers(0, 2100, 22000)] = 400.0
    from test_second_pass import _threshold_model

    model = _threshold_model(level=0.3)
    kw = dict(scale=0.3, progress=False, brightness=None, denoise=None)
    whole = predict_instances(model, image, **kw)
    blocks = predict_instances_blocks(model, image, block=512, catalog=False, **kw)
    assert whole.max() == blocks.max() >= 30
    assert float(np.mean((whole > 0) != (blocks > 0))) < 1e-4


def test_the_second_pass_measures_resampled_blocks_as_the_whole_image():
    """The brightness pass measured the blocks' objects with the resampled image's limits (the
    whole image measures them with its own): up to 92 pixels differed (review)."""
    from test_second_pass import _faint_field

    field = np.kron(np.tile(_faint_field(), (2, 2)), np.ones((2, 2), np.float32))  # 16 px
    model = _faint_model()
    with pytest.warns(SciconvWarning, match="segmenting again"):
        whole = predict_instances(model, field, scale=0.5, progress=False)
    with pytest.warns(SciconvWarning, match="segmenting again"):
        blocks = predict_instances_blocks(
            model, field, scale=0.5, block=96, catalog=False, progress=False
        )
    assert whole.max() == blocks.max() == 48
    np.testing.assert_array_equal(whole > 0, blocks > 0)


def test_zoom_grid_samples_the_resampled_image_exactly_and_takes_any_slide_size():
    """The resampled image's limits sample, read band by band, equals the one taken from the
    resampled image itself; a slide over 2**31 pixels is a grid like any other (it was refused
    even unresampled, review)."""
    from sciconv.inference._source import Source
    from sciconv.inference._zoom import ZoomGrid, rescale_image

    rng = np.random.default_rng(2)
    for shape, factor in (((300, 257), 0.37), ((2300, 2100), 1.3), ((5000, 3000), 0.3)):
        image = rng.normal(size=(*shape, 2)).astype(np.float32)
        whole = Source(rescale_image(image, factor), promote=False, path=None).limits_sample()
        grid = ZoomGrid.of(shape, factor)
        got = grid.sample(lambda ys, xs, im=image: im[ys[0] : ys[1], xs[0] : xs[1]])
        np.testing.assert_allclose(got, whole, atol=1e-6)
    assert ZoomGrid.of((60000, 60000), 0.5).zoomed == (30000, 30000)


def test_zoom_window_silences_only_old_scipys_per_call_affine_transform_warning(monkeypatch):
    """scipy 1.10-1.15 warn about a 1-D matrix on every ``affine_transform`` call (one warning
    per block, QA floors); that warning is filtered inside the window, any other one passes."""
    import warnings

    from scipy import ndimage

    from sciconv.inference import _zoom
    from sciconv.inference._zoom import ZoomGrid

    real = ndimage.affine_transform
    said = [
        "The behavior of affine_transform with a 1-D array supplied for the matrix parameter "
        "has changed in SciPy 0.18.0."
    ]

    def old_scipy(*args, **kwargs):
        warnings.warn(said[0], UserWarning, stacklevel=2)
        return real(*args, **kwargs)

    monkeypatch.setattr(ndimage, "affine_transform", old_scipy)
    monkeypatch.setattr(_zoom, "_scipy_warns_1d", lambda: True)  # as scipy 1.10-1.15
    grid = ZoomGrid.of((64, 64), 0.5)
    image = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, origin = grid.window(image, (0, 0))
    assert out.shape == (32, 32) and origin == (0, 0)
    said[0] = "another scipy warning"
    with pytest.warns(UserWarning, match="another scipy warning"):
        grid.window(image, (0, 0))


def test_zoom_window_leaves_the_warning_filters_alone_on_a_scipy_that_does_not_warn(monkeypatch):
    """review: a filter added and removed around every band reset Python's "already shown"
    memory (< 3.14): a band reader's warning was shown once per band, on today's scipy too."""
    import warnings

    from scipy import ndimage

    from sciconv.inference import _zoom
    from sciconv.inference._zoom import ZoomGrid

    real, seen = ndimage.affine_transform, []

    def recording(*args, **kwargs):
        seen.append(list(warnings.filters))
        return real(*args, **kwargs)

    monkeypatch.setattr(ndimage, "affine_transform", recording)
    monkeypatch.setattr(_zoom, "_scipy_warns_1d", lambda: False)  # scipy >= 1.16
    before = list(warnings.filters)
    ZoomGrid.of((64, 64), 0.5).window(np.zeros((64, 64), np.float32), (0, 0))
    assert seen == [before]
