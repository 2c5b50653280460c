"""Tests for sciconv.viz: figures hold what they promise, Grad-CAM points at the object."""

from __future__ import annotations

import csv
import subprocess
import sys
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from _helpers import tan_wcs
from astropy.table import Table
from astropy.visualization.wcsaxes import WCSAxes
from matplotlib.figure import Figure

from sciconv import viz
from sciconv.errors import ConfigError, InvalidImageError, ModelError, SciconvError
from sciconv.io import GridImage
from sciconv.viz import _network


def _blob(size=32, cy=20, cx=9, sigma=2.0):
    yy, xx = np.mgrid[:size, :size]
    return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2)).astype(np.float32)


def test_show_limits_follow_stretch():
    img = np.arange(100, dtype=np.float32).reshape(10, 10)
    lin = viz.show(img, stretch="linear").axes[0].images[0].norm
    assert (lin.vmin, lin.vmax) == (0.0, 99.0)
    pct = viz.show(img, stretch="percentile").axes[0].images[0].norm
    assert pct.vmin == pytest.approx(np.percentile(img, 1.0))
    assert pct.vmax == pytest.approx(np.percentile(img, 99.8))


def test_show_ignores_nan_and_accepts_gridimage_like():
    img = _blob()[..., None].copy()
    img[0, 0, 0] = np.nan
    grid = GridImage(img)
    norm = viz.show(grid, stretch="linear").axes[0].images[0].norm
    assert (norm.vmin, norm.vmax) == (pytest.approx(0.0, abs=1e-6), pytest.approx(1.0))


def test_show_unwraps_nddata_and_lazy_images():
    from astropy.nddata import NDData

    from sciconv.io import LazyImage

    img = _blob()[..., None]
    fig = viz.show(NDData(img, wcs=tan_wcs()), stretch="linear")
    assert isinstance(fig.axes[0], WCSAxes)  # NDData brings its WCS too
    lazy = LazyImage(lambda ys, xs: img[ys, xs], img.shape)
    shown = viz.show(GridImage(lazy), stretch="linear").axes[0].images[0].get_array()
    np.testing.assert_array_equal(np.asarray(shown), img[..., 0])


def test_show_uses_sky_axes_with_wcs():
    w = tan_wcs()
    fig = viz.show(_blob(), wcs=w)
    assert isinstance(fig.axes[0], WCSAxes)
    assert fig.axes[0].coords[0].get_axislabel() == "RA"
    # a GridImage brings its own WCS
    fig = viz.show(GridImage(_blob()[..., None], wcs=w))
    assert isinstance(fig.axes[0], WCSAxes)
    assert not isinstance(viz.show(_blob()).axes[0], WCSAxes)


def test_show_rgb_and_given_axes():
    rgb = np.stack([_blob(), _blob(cx=20), _blob(cy=5)], axis=-1)
    fig = viz.show(rgb, stretch="linear", colorbar=True)
    assert fig.axes[0].images[0].get_array().shape == (32, 32, 3)
    assert len(fig.axes) == 1  # no colour bar for RGB
    host = Figure()
    ax = host.add_subplot(1, 2, 2)
    assert viz.show(_blob(), ax=ax, title="here") is host
    assert ax.get_title() == "here"


@pytest.mark.parametrize(
    ("image", "error", "match"),
    [
        (np.zeros((8, 8, 4)), InvalidImageError, r"got shape \(8, 8, 4\): pick one channel"),
        (np.full((8, 8), np.nan), InvalidImageError, "no finite pixels"),
        (np.zeros((0, 8)), InvalidImageError, "shape"),
        (np.array(["a", "b"]), InvalidImageError, "numeric array"),
    ],
)
def test_show_bad_images(image, error, match):
    with pytest.raises(error, match=match):
        viz.show(image)


def test_show_bad_stretch_suggests_nearest():
    with pytest.raises(
        ConfigError, match=r"stretch must be one of .*'zscale'.*did you mean 'zscale'"
    ):
        viz.show(_blob(), stretch="zscal")


def test_overlay_mask_colours_only_the_mask():
    img = _blob()
    mask = img > 0.5
    fig = viz.overlay_mask(img, mask, color="red", alpha=0.5, title="m")
    rgba = np.asarray(fig.axes[0].images[1].get_array())
    assert rgba.shape == (32, 32, 4)
    # uint8 RGBA (a quarter of float32's memory on large images)
    assert rgba.dtype == np.uint8
    np.testing.assert_allclose(rgba[mask] / 255, [[1, 0, 0, 0.5]] * int(mask.sum()), atol=0.005)
    assert np.all(rgba[~mask, 3] == 0)
    # several classes: one colour each
    ids = np.zeros((32, 32), np.int32)
    ids[:5], ids[-5:] = 1, 2
    rgba = np.asarray(viz.overlay_mask(img, ids).axes[0].images[1].get_array())
    assert not np.allclose(rgba[0, 0, :3], rgba[-1, 0, :3])
    with pytest.raises(InvalidImageError, match=r"mask must have the image's shape \(32, 32\)"):
        viz.overlay_mask(img, mask[:10])


def test_outlines_draw_shared_boundaries_of_touching_instances():
    labels = np.zeros((20, 20), np.int32)
    labels[4:12, 2:10] = 1
    labels[4:12, 10:18] = 2  # touches instance 1
    fig = viz.outlines(np.ones((20, 20)), labels, stretch="linear", color="yellow")
    edge = np.asarray(fig.axes[0].images[1].get_array())[..., 3] > 0
    assert edge[8, 9] and edge[8, 10]  # the shared border, on both sides
    assert not edge[8, 5] and not edge[0, 0]  # interior and background untouched
    with pytest.raises(ConfigError, match="mode must be one of"):
        viz.outlines(np.ones((20, 20)), labels, mode="wide")
    with pytest.raises(InvalidImageError, match="integer ids"):
        viz.outlines(np.ones((20, 20)), labels + 0.5)


def test_contours_on_sky_axes():
    prob = _blob(sigma=4.0)
    fig = viz.contours(prob, prob, levels=(0.25, 0.5), wcs=tan_wcs(), title="p")
    ax = fig.axes[0]
    assert isinstance(ax, WCSAxes)
    cs = [c for c in ax.collections if hasattr(c, "levels")]
    assert cs and list(cs[0].levels) == [0.25, 0.5]
    with pytest.raises(InvalidImageError, match="image's shape"):
        viz.contours(prob, prob[:5])


# ---------------------------------------------------------------- inside a network
@pytest.fixture(scope="module")
def toy_model():
    return _toy()


def _toy(softmax=False):
    """Conv(identity, negated) -> ReLU -> global mean -> Dense: class 1 = bright, class 0 = not."""
    inp = keras.Input((32, 32, 1))
    conv = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv")
    x = conv(inp)
    x = keras.layers.Conv2D(3, 1, name="mix")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    dense = keras.layers.Dense(2, name="scores")
    out = dense(x)
    if softmax:
        out = keras.layers.Activation("softmax", name="probs")(out)
    model = keras.Model(inp, out, name="toy")
    k = np.zeros((3, 3, 1, 2), np.float32)
    k[1, 1, 0, 0], k[1, 1, 0, 1] = 1.0, -1.0
    conv.set_weights([k, np.zeros(2, np.float32)])
    mix = np.zeros((1, 1, 2, 3), np.float32)
    mix[0, 0, 0, 0] = 1.0
    mix[0, 0, 1, 1] = 1.0
    mix[0, 0, 0, 2] = 0.5
    model.get_layer("mix").set_weights([mix, np.zeros(3, np.float32)])
    w = np.zeros((3, 2), np.float32)
    w[0, 1], w[0, 0] = 1.0, -1.0  # class 1 likes brightness, class 0 dislikes it
    dense.set_weights([w, np.zeros(2, np.float32)])
    return model


def test_grad_cam_peaks_inside_the_bright_blob(toy_model):
    img = _blob(cy=20, cx=9)[..., None]
    heat = viz.grad_cam_heatmap(toy_model, img, class_index=1, layer="conv")
    assert heat.shape == (32, 32) and heat.dtype == np.float32
    assert heat.max() == pytest.approx(1.0)
    py, px = np.unravel_index(np.argmax(heat), heat.shape)
    assert abs(py - 20) <= 1 and abs(px - 9) <= 1
    assert heat[0:5, 25:32].max() < 0.05  # far from the blob: nothing
    # the class that is pushed down by brightness gets no positive evidence
    assert np.all(viz.grad_cam_heatmap(toy_model, img, class_index=0, layer="conv") == 0)
    # default class = predicted one (class 1 for a bright image), default layer = last conv
    fig = viz.grad_cam(toy_model, img, class_names=["faint", "bright"])
    assert fig.class_index == 1
    assert fig.heatmap.shape == (32, 32)
    assert "bright" in fig.axes[1].get_title()


def test_normalize_model_uses_the_recorded_spec_like_inference(toy_model):
    """viz and inference share one rule for ``normalize="model"``."""
    from sciconv import models, preprocess

    img = _blob(cy=12, cx=20) * 50.0 + 7.0
    plain = _network._batch(toy_model, img, "model")  # no metadata: the shared default spec
    expected = preprocess.normalize_spec(img[..., None], preprocess.DEFAULT_NORMALIZATION)
    np.testing.assert_array_equal(plain[0], expected)
    wrapped = models.attach_metadata(toy_model, normalization={"method": "minmax"})
    x = _network._batch(wrapped, img, "model")
    assert x.shape == (1, 32, 32, 1)
    assert x.min() == pytest.approx(0.0) and x.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(_network._batch(wrapped, img, None)[0, ..., 0], img)
    with pytest.raises(ConfigError, match=r"normalize must be one of 'model'.*did you mean"):
        viz.grad_cam_heatmap(toy_model, img[..., None], normalize="modle")
    with pytest.raises(ConfigError, match=r"normalize must be 'model'.*None.*spec dict.*got 3"):
        viz.grad_cam_heatmap(toy_model, img[..., None], normalize=3)


def test_grad_cam_bad_arguments(toy_model):
    img = _blob()[..., None]
    with pytest.raises(ConfigError, match=r"class_index must be an int in 0..1; got 5"):
        viz.grad_cam_heatmap(toy_model, img, class_index=5)
    with pytest.raises(ModelError, match=r"layer must be one of .*did you mean 'conv'"):
        viz.grad_cam_heatmap(toy_model, img, layer="cnv")
    with pytest.raises(ModelError, match=r"expects inputs \(32, 32, 1\); image has \(16, 16, 1\)"):
        viz.grad_cam_heatmap(toy_model, np.zeros((16, 16, 1)))
    with pytest.raises(InvalidImageError, match=r"got \(2, 32, 32, 1\)"):
        viz.grad_cam_heatmap(toy_model, np.zeros((2, 32, 32, 1)))


def test_feature_maps_rows_per_layer(toy_model):
    img = _blob()[..., None]
    fig = viz.feature_maps(toy_model, img, max_maps=2, normalize=None)  # the pixels as given
    assert list(fig.activations) == ["conv", "mix"]  # default: convolution layers
    np.testing.assert_allclose(fig.activations["conv"][..., 0], img[..., 0], atol=1e-6)
    assert np.all(fig.activations["conv"][..., 1] == 0)  # ReLU of the negated image
    assert len(fig.axes) == 4  # 2 layers x 2 maps
    fig = viz.feature_maps(toy_model, img, layers=["mix"], max_maps=16)
    assert fig.activations["mix"].shape == (32, 32, 3) and len(fig.axes) == 3
    with pytest.raises(ModelError, match="feature maps need 4-D"):
        viz.feature_maps(toy_model, img, layers=["gap"])
    with pytest.raises(ConfigError, match="max_maps"):
        viz.feature_maps(toy_model, img, max_maps=0)


def test_filters_show_the_kernels(toy_model):
    fig = viz.filters(toy_model, "conv")
    np.testing.assert_array_equal(
        fig.kernels, toy_model.get_layer("conv").get_weights()[0][:, :, 0]
    )
    assert len(fig.axes) == 3  # two kernels + colour bar
    assert "conv" in fig._suptitle.get_text()
    with pytest.raises(ModelError, match="not a 2-D convolution"):
        viz.filters(toy_model, "gap")
    with pytest.raises(ConfigError, match=r"in_channel must be in 0..0"):
        viz.filters(toy_model, "conv", in_channel=3)


# ---------------------------------------------------------------- training and evaluation
def test_training_curves_from_csv_log(tmp_path):
    log = tmp_path / "log.csv"
    with open(log, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch", "accuracy", "learning_rate", "loss", "val_accuracy", "val_loss"])
        for e in range(4):
            w.writerow([e, 0.5 + 0.1 * e, 1e-3, 1.0 - 0.2 * e, 0.45 + 0.1 * e, 1.1 - 0.2 * e])
    for source in (log, tmp_path, str(log)):
        fig = viz.training_curves(source, title="run")
        titles = [ax.get_title() for ax in fig.axes]
        assert titles == ["accuracy", "learning_rate", "loss"]
        loss_ax = fig.axes[2]
        train, val = loss_ax.get_lines()
        np.testing.assert_allclose(train.get_ydata(), [1.0, 0.8, 0.6, 0.4])
        np.testing.assert_allclose(val.get_xdata(), [1, 2, 3, 4])
        assert fig.axes[1].get_yscale() == "log"


def test_training_curves_from_history_and_errors(tmp_path):
    hist = SimpleNamespace(history={"loss": [0.9, 0.5], "val_loss": [1.0, 0.7]})
    fig = viz.training_curves(hist)
    assert [ax.get_title() for ax in fig.axes] == ["loss"]
    with pytest.raises(SciconvError, match=r"missing\.csv: training log not found"):
        viz.training_curves(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("epoch,loss\n")
    with pytest.raises(SciconvError, match="no epochs"):
        viz.training_curves(tmp_path / "empty.csv")
    with pytest.raises(ConfigError, match="got int"):
        viz.training_curves(3)


def test_confusion_matrix_counts_and_labels():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 0, 1, 1, 1, 2, 2, 0, 2]
    fig = viz.confusion_matrix(y_true, y_pred, ["e", "s", "i"])
    expected = [[2, 1, 0], [0, 2, 0], [1, 0, 3]]
    assert fig.matrix.tolist() == expected
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == [str(v) for row in expected for v in row]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["e", "s", "i"]
    assert ax.get_title() == "accuracy 0.778 (N=9)"
    scores = np.eye(3)[y_pred] * 0.8 + 0.05
    assert viz.confusion_matrix(y_true, scores, ["e", "s", "i"]).matrix.tolist() == expected
    frac = viz.confusion_matrix(y_true, y_pred, ["e", "s", "i"], normalize=True)
    assert frac.axes[0].texts[0].get_text() == "0.67"
    with pytest.raises(ConfigError, match="as many items; got 9 and 2"):
        viz.confusion_counts(y_true, [0, 1])
    with pytest.raises(ConfigError, match="below num_classes=2"):
        viz.confusion_matrix(y_true, y_pred, ["a", "b"])


def test_match_and_compare_catalogs():
    ref = Table({"x": [10.0, 50.0, 80.0], "y": [10.0, 50.0, 20.0], "flux": [1.0, 2.0, 3.0]})
    got = Table({"x": [50.6, 10.2, 200.0], "y": [49.9, 10.1, 5.0], "flux": [2.1, 0.9, 9.0]})
    m = viz.match_catalogs(ref, got, max_separation=2.0)
    assert m["ref_index"].tolist() == [0, 1] and m["found_index"].tolist() == [1, 0]
    np.testing.assert_allclose(m["dx"], [0.2, 0.6])
    assert m["completeness"] == pytest.approx(2 / 3) and m["purity"] == pytest.approx(2 / 3)
    fig = viz.compare_catalogs(ref, got, max_separation=2.0, flux_columns=("flux", "flux"))
    assert len(fig.axes) == 3 and "completeness 0.67" in fig.axes[0].get_title()
    # on the sky: 1 arcsec offset in Dec
    sref = Table({"ra": [150.0], "dec": [2.0]})
    sgot = Table({"ra": [150.0], "dec": [2.0 + 1 / 3600]})
    m = viz.match_catalogs(sref, sgot, max_separation=1.5, sky=True)
    assert m["dy"][0] == pytest.approx(1.0) and m["completeness"] == 1.0
    with pytest.raises(ConfigError, match=r"found catalog lacks column\(s\) \['ra', 'dec'\]"):
        viz.match_catalogs(sref, got, max_separation=1.0, sky=True)


def test_outlines_thicken_on_large_images():
    labels = np.zeros((900, 900), np.int32)
    labels[100:300, 100:300] = 1
    fig = viz.outlines(np.ones((900, 900)), labels)
    edge = np.asarray(fig.axes[0].images[1].get_array())[..., 3] > 0
    # about one screen pixel: 900 px on a ~3.9 inch axes at 100 dpi = 2 image px
    assert fig.thickness == 2
    assert edge[200, 100:102].all() and not edge[200, 102]
    assert not edge[200, 99]  # inner mode stays inside the object
    thin = viz.outlines(np.ones((900, 900)), labels, thickness=1).axes[0].images[1].get_array()
    assert np.asarray(thin)[200, 100, 3] > 0 and np.asarray(thin)[200, 101, 3] == 0
    with pytest.raises(ConfigError, match="thickness must be a positive int"):
        viz.outlines(np.ones((900, 900)), labels, thickness=0)


def test_grad_cam_uses_logits_before_softmax(toy_model):
    """A softmax on top changes nothing: Grad-CAM explains the logit, as in the paper."""
    img = _blob()[..., None]
    soft = _toy(softmax=True)
    np.testing.assert_allclose(
        viz.grad_cam_heatmap(soft, img, class_index=1, layer="conv"),
        viz.grad_cam_heatmap(toy_model, img, class_index=1, layer="conv"),
        atol=1e-5,
    )
    # default layer of a classifier is the activation after the last convolution
    import sciconv as sc

    model = sc.models.classifier((32, 32, 1), 3, filters=(4, 8), dense=(8,))
    assert _network._last_conv(model).name == "classifier_stage2_relu1"
    assert viz.grad_cam(model, img).heatmap.shape == (32, 32)


def test_measurements_live_in_metrics_and_viz_stays_light():
    """viz draws only: its measurement names are sciconv.metrics' functions, loaded lazily."""
    code = "import sys, sciconv.viz; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    from sciconv import metrics

    assert viz.confusion_counts is metrics.confusion_counts
    assert viz.match_catalogs is metrics.match_catalogs
    assert {"confusion_counts", "match_catalogs"} <= set(dir(viz))
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        viz.nothing  # noqa: B018


def test_network_views_take_raw_pixels_like_the_rest_of_sciconv(toy_model):
    """feature_maps / grad_cam fed raw pixels to the network unnormalized by default (on raw
    Hubble cutouts the predictions saturated and Grad-CAM maps came out all zero); now they
    apply the model's normalization, as predict_files and the CLI do."""
    from sciconv.preprocess import normalize

    raw = 1000.0 + 400.0 * _blob()[..., None]  # counts, not normalized
    by_default = viz.grad_cam_heatmap(toy_model, raw, class_index=1, layer="conv")
    by_hand = viz.grad_cam_heatmap(
        toy_model, normalize(raw), class_index=1, layer="conv", normalize=None
    )
    np.testing.assert_allclose(by_default, by_hand, atol=1e-5)
    maps = viz.feature_maps(toy_model, raw, max_maps=1).activations["conv"]
    np.testing.assert_allclose(maps[..., 0], normalize(raw)[..., 0], atol=1e-5)
