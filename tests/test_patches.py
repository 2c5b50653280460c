"""sciconv.datasets.patches: the foreground-centred patch sampler and the boundary target."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

from sciconv.datasets.patches import boundary_target, sample_patches
from sciconv.errors import ConfigError, InvalidImageError


def _one_object(shape=(200, 200), at=(100, 100), size=2):
    y = np.zeros(shape, np.int32)
    y[at[0] : at[0] + size, at[1] : at[1] + size] = 1
    x = np.random.default_rng(0).random((*shape, 2)).astype(np.float32)
    return x, y


# ---------------------------------------------------------------------------------------------
# sample_patches
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("image", "size", "expect"),
    [((40, 50), 16, (16, 16)), ((40, 50), (8, 24), (8, 24)), ((5, 7), (16, 12), (16, 12))],
)
def test_sample_patches_shapes(image, size, expect):
    y = np.zeros(image, np.int64)
    y[1:3, 2:4] = 3
    x = np.random.default_rng(1).random((*image, 3))
    xs, ys = sample_patches(x, y, size=size, count=5, rng=0)
    assert xs.shape == (5, *expect, 3) and xs.dtype == np.float32
    assert ys.shape == (5, *expect) and ys.dtype == np.int32


def test_sample_patches_are_windows_of_the_image():
    _, y = _one_object((30, 40))
    rows, cols = np.mgrid[:30, :40]
    x = np.stack([rows, cols], axis=-1).astype(np.float32)  # each pixel holds its position
    xs, ys = sample_patches(x, y, size=(8, 10), count=20, rng=3)
    for xp, yp in zip(xs, ys):
        top, left = int(xp[0, 0, 0]), int(xp[0, 0, 1])
        np.testing.assert_array_equal(xp, x[top : top + 8, left : left + 10])
        np.testing.assert_array_equal(yp, y[top : top + 8, left : left + 10])


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.7, 1.0])
def test_sample_patches_honour_the_foreground_fraction(fraction):
    # a 2x2 object in a 200x200 image: a uniform 8x8 patch holds it with probability ~0.2 %
    x, y = _one_object()
    _, ys = sample_patches(x, y, size=8, count=2000, fg_fraction=fraction, rng=11)
    seen = ys.reshape(len(ys), -1).any(axis=1).mean()
    assert abs(seen - fraction) < 0.04
    if fraction == 1.0:
        assert seen == 1.0


def test_sample_patches_are_seeded():
    x, y = _one_object((60, 70), at=(10, 50), size=5)
    a = sample_patches(x, y, size=16, count=12, rng=5)
    b = sample_patches(x, y, size=16, count=12, rng=np.random.default_rng(5))
    c = sample_patches(x, y, size=16, count=12, rng=6)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])


def test_sample_patches_without_foreground_are_uniform():
    x = np.random.default_rng(0).random((20, 20, 1))
    xs, ys = sample_patches(x, np.zeros((20, 20), int), size=4, count=50, fg_fraction=1.0, rng=0)
    assert not ys.any() and len({p.tobytes() for p in xs}) > 10


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"size": 0}, ConfigError, "size must hold positive ints"),
        ({"count": 0}, ConfigError, "count must be an int >= 1; got 0"),
        ({"fg_fraction": 1.5}, ConfigError, r"fg_fraction must be a number in \[0, 1\]; got 1.5"),
        ({"fg_fraction": True}, ConfigError, "fg_fraction must be a number"),
        ({"y": np.zeros((10, 11))}, InvalidImageError, r"same size; got shapes \(10, 10, 1\)"),
        ({"x": np.zeros((10, 10))}, InvalidImageError, r"x must be \(H, W, C\)"),
        ({"max_bad": 1.5}, ConfigError, r"max_bad must be a number in \[0, 1\]; got 1.5"),
        ({"bad": np.zeros((10, 10))}, InvalidImageError, "bad must be a bool mask"),
        ({"bad": np.zeros((9, 10), bool)}, InvalidImageError, r"the size of y \(10, 10\)"),
    ],
)
def test_sample_patches_errors(kwargs, error, match):
    args = {"x": np.zeros((10, 10, 1)), "y": np.zeros((10, 10)), "size": 4, "count": 2, "rng": 0}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        sample_patches(args.pop("x"), args.pop("y"), **args)


def test_sample_patches_with_bad_pixels_weights_and_redraws():
    x, y = _one_object(shape=(64, 64), at=(10, 10), size=6)
    y[40:46, 40:46] = 2  # a second object, inside the bad region
    bad = np.zeros((64, 64), bool)
    bad[32:, :] = True  # the lower half is bad
    xs, ys, ws = sample_patches(
        x, y, size=16, count=64, fg_fraction=0.5, rng=1, bad=bad, max_bad=0.2
    )
    assert ws.shape == (64, 16, 16) and ws.dtype == np.float32
    assert (1 - ws.reshape(64, -1).mean(axis=1)).max() <= 0.2
    assert not (ys == 2).any()  # foreground centres are good pixels: object 2 is never chosen
    # the weights are the window of the mask each patch was cut from
    for p in range(64):
        tops, lefts = np.nonzero((x[..., 0] == xs[p, 0, 0, 0]) & (x[..., 1] == xs[p, 0, 0, 1]))
        top, left = int(tops[0]), int(lefts[0])
        np.testing.assert_array_equal(ws[p], ~bad[top : top + 16, left : left + 16])
    # an image bad everywhere still gives patches (the least bad of the draws), all weight 0
    _, _, w_all = sample_patches(x, y, size=16, count=2, rng=0, bad=np.ones((64, 64), bool))
    assert (w_all == 0).all()
    # without a mask the draws are unchanged
    plain = sample_patches(x, y, size=16, count=8, rng=5)
    same = sample_patches(x, y, size=16, count=8, rng=5, bad=np.zeros((64, 64), bool))
    np.testing.assert_array_equal(plain[0], same[0])


# ---------------------------------------------------------------------------------------------
# boundary_target
# ---------------------------------------------------------------------------------------------
def _touching_squares():
    labels = np.zeros((14, 24), np.int32)
    labels[2:12, 2:12] = 1
    labels[2:12, 12:22] = 2  # touches square 1 along a column
    return labels


def test_boundary_target_is_the_inner_boundary():
    labels = _touching_squares()
    y = boundary_target(labels)
    assert y.dtype == np.uint8 and y.shape == labels.shape
    expect = (labels > 0).astype(np.uint8)
    expect[find_boundaries(labels, mode="inner") & (labels > 0)] = 2
    np.testing.assert_array_equal(y, expect)
    assert y[7].tolist()[1:23] == [0, 2, *[1] * 8, 2, 2, *[1] * 8, 2, 0]


def test_boundary_target_touch_separates_touching_squares():
    labels = _touching_squares()
    for touch, band in [(0, 2), (1, 2), (2, 4), (3, 6)]:
        y = boundary_target(labels, touch=touch)
        _, n = ndi.label(y == 1)
        assert n == 2
        row = y[7]
        assert (row[2:22] == 2).sum() - 2 == band  # minus the two outer boundary pixels
        assert row[1] == 0 and row[2] == 2 and row[3] == 1  # no thicker against the background
    # only object pixels are ever boundary
    assert not boundary_target(labels, touch=2)[labels == 0].any()


def test_boundary_target_touch_with_a_gap():
    labels = np.zeros((10, 20), np.int64)
    labels[2:8, 2:9] = 1
    labels[2:8, 11:18] = 7  # two pixels of background between them: 3 px from edge to edge
    for touch in (1, 2, 3):  # the edge pixels are boundary already
        np.testing.assert_array_equal(boundary_target(labels, touch=touch), boundary_target(labels))
    row = boundary_target(labels, touch=4)[5].tolist()
    assert row[6:14] == [1, 2, 2, 0, 0, 2, 2, 1]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.int64, bool])
def test_boundary_target_dtypes(dtype):
    labels = _touching_squares()
    if dtype is bool:
        labels = labels > 0
    out = boundary_target(labels.astype(dtype), touch=1)
    ref = boundary_target(labels.astype(np.int64), touch=1)
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize(
    ("labels", "touch", "error", "match"),
    [
        (np.zeros((4, 4), float), 0, InvalidImageError, "integer labels; got dtype float64"),
        (np.zeros((4, 4, 1), int), 0, InvalidImageError, r"shape \(H, W\); got shape"),
        (np.zeros((4, 4), int), -1, ConfigError, "touch must be an int >= 0; got -1"),
        (np.zeros((4, 4), int), 1.5, ConfigError, "touch must be an int >= 0; got 1.5"),
    ],
)
def test_boundary_target_errors(labels, touch, error, match):
    with pytest.raises(error, match=match):
        boundary_target(labels, touch=touch)


def test_boundary_target_is_the_target_of_from_pairs(tmp_path):
    from sciconv import datasets

    (tmp_path / "img").mkdir()
    (tmp_path / "msk").mkdir()
    masks = []
    for i in range(2):
        lab = np.zeros((30, 40), np.int32)
        lab[5:15, 5 + i : 15 + i] = 1
        lab[15:25, 5 + i : 15 + i] = 2
        lab[8:20, 25:33] = 3
        tifffile.imwrite(tmp_path / "img" / f"c{i}.tif", (lab * 3.0 + i).astype(np.float32))
        tifffile.imwrite(tmp_path / "msk" / f"c{i}.tif", lab)
        masks.append(lab)
    ds = datasets.from_pairs(
        tmp_path / "img", tmp_path / "msk", target="boundary", shuffle=False, batch_size=2
    )
    _, y, _ = next(iter(ds))  # whole 30 x 40 images, padded: with weights
    for lab, got in zip(masks, y.numpy()):
        np.testing.assert_array_equal(got[:30, :40], boundary_target(lab))


def test_sample_patches_on_given_centers_picks_objects_uniformly():
    """With centers, a one-pixel object is chosen as often as a big one (not by pixel count)."""
    y = np.zeros((200, 200), np.int32)
    y[20:80, 20:80] = 1  # 3600 px
    y[150, 150] = 2  # 1 px
    x = y[..., None].astype(np.float32)
    centers = np.array([[50.0, 50.0], [150.0, 150.0]])
    _, ys = sample_patches(x, y, size=9, count=400, fg_fraction=1.0, rng=0, centers=centers)
    small = (ys[:, 4, 4] == 2).mean()
    assert 0.4 < small < 0.6  # about half; by pixel count it would be 1/3601
    _, ys = sample_patches(x, y, size=9, count=200, fg_fraction=1.0, rng=0)
    assert (ys[:, 4, 4] == 2).mean() < 0.05
    _, ys = sample_patches(
        x, y, size=9, count=50, fg_fraction=1.0, rng=1, centers=centers[1:], jitter=3
    )
    assert np.all(ys[:, 1:8, 1:8].reshape(50, -1).max(axis=1) == 2)  # within 3 px of it
    with pytest.raises(ConfigError, match=r"centers must be finite \(y, x\) positions"):
        sample_patches(x, y, size=9, count=1, rng=0, centers=[1.0, 2.0])
    with pytest.raises(ConfigError, match="jitter must be a number >= 0; got -1"):
        sample_patches(x, y, size=9, count=1, rng=0, centers=centers, jitter=-1)
