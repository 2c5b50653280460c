"""sciconv.viz figures read right: bad pixels, colour bars, sky labels, class colours, outlines,
Grad-CAM, large images, pixel aspect, RGB photos, units and ``ax=`` (QA report qa53)."""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest
from astropy.wcs import WCS
from matplotlib import colors as mcolors
from matplotlib.figure import Figure

from sciconv import viz
from sciconv.errors import ConfigError
from sciconv.io import GridImage


def _rendered(fig) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3] / 255.0


def _pixel_colour(fig, ax, x, y) -> np.ndarray:
    """The rendered colour at data point (x, y) of ``ax``."""
    img = _rendered(fig)
    px, py = ax.transData.transform((x, y))
    return img[img.shape[0] - 1 - round(py), round(px)]


# ---------------------------------------------------------------- 1. bad pixels
def test_nan_pixels_get_a_colour_that_is_not_in_the_colormap():
    img = np.zeros((64, 64), np.float32)
    img[10:20, 10:20] = 1000.0  # a saturated star
    img[40:50, 40:50] = np.nan  # masked data
    fig = viz.show(img, stretch="linear", colorbar=False)
    ax = fig.axes[0]
    star, bad = _pixel_colour(fig, ax, 15, 15), _pixel_colour(fig, ax, 45, 45)
    np.testing.assert_allclose(star, [1, 1, 1], atol=0.02)
    assert np.abs(bad - star).max() > 0.5  # not white
    bad_rgba = ax.images[0].cmap.get_bad()
    assert bad_rgba[3] == 1.0 and not np.allclose(bad_rgba[0], bad_rgba[1:3])  # opaque, no grey
    np.testing.assert_allclose(bad, bad_rgba[:3], atol=0.02)
    # on another colormap another colour, never one of the map's
    cm = viz.show(img, cmap="viridis").axes[0].images[0].cmap
    dist = np.linalg.norm(cm(np.linspace(0, 1, 256))[:, :3] - cm.get_bad()[:3], axis=1)
    assert dist.min() > 0.3
    # chosen by the caller, and the same for RGB images
    given = viz.show(img, bad_color="blue").axes[0].images[0].cmap.get_bad()
    np.testing.assert_allclose(given, mcolors.to_rgba("blue"))
    rgb = np.stack([img] * 3, axis=-1)
    drawn = np.asarray(viz.show(rgb, bad_color="blue").axes[0].images[0].get_array())
    np.testing.assert_allclose(drawn[45, 45], [0, 0, 1])


# ---------------------------------------------------------------- 2. colour bar ticks
@pytest.mark.parametrize("stretch", ["asinh", "zscale", "percentile"])
def test_colour_bar_labels_only_values_inside_the_displayed_range(stretch):
    a = np.random.default_rng(1).normal(1000, 10, (64, 64)).astype("f4")
    fig = viz.show(a, stretch=stretch)
    fig.canvas.draw()
    im, cax = fig.axes[0].images[0], fig.axes[1]
    lo, hi = im.norm.vmin, im.norm.vmax
    y_lo, y_hi = (cax.transData.transform((0, v))[1] for v in (lo, hi))
    drawn = [
        loc
        for loc in cax.get_yticks()
        if y_lo - 0.5 <= cax.transData.transform((0, loc))[1] <= y_hi + 0.5
    ]
    assert drawn and all(lo <= loc <= hi for loc in drawn), (lo, hi, drawn)
    assert im.norm.clip is False


# ---------------------------------------------------------------- 3. sky frames
def _wcs(ctype):
    w = WCS(naxis=2)
    w.wcs.ctype = ctype
    w.wcs.crval = [30, 10]
    w.wcs.crpix = [16, 16]
    w.wcs.cdelt = [-0.01, 0.01]
    return w


@pytest.mark.parametrize(
    ("ctype", "labels"),
    [
        (["GLON-CAR", "GLAT-CAR"], ("Galactic longitude", "Galactic latitude")),
        (["ELON-TAN", "ELAT-TAN"], ("Ecliptic longitude", "Ecliptic latitude")),
        (["DEC--TAN", "RA---TAN"], ("Dec", "RA")),  # Dec first: not called "RA"
        (["RA---TAN", "DEC--TAN"], ("RA", "Dec")),
    ],
)
def test_sky_axes_are_labelled_by_their_frame(ctype, labels):
    ax = viz.show(np.zeros((32, 32)), wcs=_wcs(ctype)).axes[0]
    assert (ax.coords[0].get_axislabel(), ax.coords[1].get_axislabel()) == labels


def test_labels_on_the_callers_sky_axes_are_kept():
    w = _wcs(["GLON-CAR", "GLAT-CAR"])
    ax = Figure().add_subplot(projection=w)
    ax.coords[0].set_axislabel("l [deg]")
    viz.show(np.zeros((32, 32)), wcs=w, ax=ax)
    assert ax.coords[0].get_axislabel() == "l [deg]"  # the caller's
    assert ax.coords[1].get_axislabel() == "Galactic latitude"  # unset: filled in


# ---------------------------------------------------------------- 4. class colours by id
def _class_colours(fig, ids):
    rgba = np.asarray(fig.axes[0].images[1].get_array())
    return {int(k): tuple(rgba[ids == k][0]) for k in np.unique(ids[ids > 0])}


def test_overlay_mask_colours_a_class_by_its_id_in_every_panel():
    truth = np.zeros((30, 30), np.int32)
    truth[:10], truth[10:20], truth[20:] = 1, 2, 3
    pred = np.where(truth == 1, 0, truth)  # missed class 1
    only3 = np.where(truth == 3, 3, 0)
    img = np.ones((30, 30))
    a, b, c = (_class_colours(viz.overlay_mask(img, m), m) for m in (truth, pred, only3))
    assert a[2] == b[2] and a[3] == b[3] == c[3]
    assert len({a[1], a[2], a[3]}) == 3
    np.testing.assert_allclose(np.asarray(a[3][:3]) / 255, mcolors.to_rgb("tab:green"), atol=0.01)
    # chosen colours, and a legend naming the classes
    fig = viz.overlay_mask(
        img, truth, colors={2: "black"}, class_names=["background", "nucleus", "edge", "cell"]
    )
    assert _class_colours(fig, truth)[2][:3] == (0, 0, 0)
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["nucleus", "edge", "cell"]
    with pytest.raises(ConfigError, match="class_names must be a sequence"):
        viz.overlay_mask(img, truth, class_names="nucleus")


# ---------------------------------------------------------------- 5. outline width
def test_default_outlines_stay_thin_on_small_objects():
    labels = np.zeros((603, 1272), np.int32)
    yy, xx = np.mgrid[:603, :1272]
    k = 0
    for cy in range(20, 590, 30):
        for cx in range(20, 1260, 30):
            k += 1
            labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= 25] = k  # 10 px nuclei
    fig = viz.outlines(np.zeros(labels.shape), labels)
    drawn = np.asarray(fig.axes[0].images[1].get_array())[..., 3] > 0
    assert fig.thickness == 1
    assert drawn[labels > 0].mean() < 0.5  # the nuclei stay visible
    # big objects on a big image: about one screen pixel, not a fixed 1 px
    big = np.zeros((2000, 2000), np.int32)
    big[200:1000, 200:1000] = 1
    assert viz.outlines(np.zeros(big.shape), big).thickness >= 3


# ---------------------------------------------------------------- 6. Grad-CAM
def _toy(softmax=True):
    inp = keras.Input((32, 32, 1))
    conv = keras.layers.Conv2D(1, 1, activation="relu", name="conv")
    x = keras.layers.GlobalAveragePooling2D()(conv(inp))
    dense = keras.layers.Dense(2, name="scores")
    out = dense(x)
    if softmax:
        out = keras.layers.Activation("softmax")(out)
    model = keras.Model(inp, out)
    conv.set_weights([np.ones((1, 1, 1, 1), np.float32), np.zeros(1, np.float32)])
    dense.set_weights([np.array([[-1.0, 1.0]], np.float32), np.zeros(2, np.float32)])
    return model


def test_grad_cam_says_when_its_map_is_empty_and_uses_a_perceptual_map():
    yy, xx = np.mgrid[:32, :32]
    img = np.exp(-((yy - 20) ** 2 + (xx - 9) ** 2) / 8.0)[..., None].astype("f4")
    model = _toy()
    empty = viz.grad_cam(model, img, class_index=0, normalize=None)  # brightness lowers it
    assert empty.empty is True and not empty.heatmap.any()
    title = empty.axes[1].get_title()
    assert "Grad-CAM empty" in title and "'conv'" in title and "p=" in title
    full = viz.grad_cam(model, img, class_index=1, normalize=None)
    assert full.empty is False and "empty" not in full.axes[1].get_title()
    heat_im = full.axes[1].images[1]
    assert heat_im.cmap.name == "inferno"
    alpha = np.asarray(heat_im.get_alpha())
    assert alpha.shape == (32, 32) and alpha[0, 31] < 0.05 and alpha.max() == pytest.approx(0.5)
    assert "p=" in full.axes[1].get_title()
    logits = viz.grad_cam(_toy(softmax=False), img, class_index=1, normalize=None)
    assert "score" in logits.axes[1].get_title() and "p=" not in logits.axes[1].get_title()


# ---------------------------------------------------------------- 7, 8. large images
def test_images_are_sampled_before_colour_mapping():
    labels = np.zeros((64, 64), np.int32)
    labels[5:20, 5:20] = 1
    for fig in (
        viz.show(np.zeros((64, 64))),
        viz.overlay_mask(np.zeros((64, 64)), labels),
        viz.outlines(np.zeros((64, 64)), labels),
        viz.contours(np.zeros((64, 64)), labels.astype(float)),
    ):
        assert {im.get_interpolation_stage() for im in fig.axes[0].images} == {"data"}
    assert (
        np.asarray(viz.outlines(np.zeros((64, 64)), labels).axes[0].images[1].get_array()).dtype
        == np.uint8
    )


def test_overlay_mask_of_many_instances_is_one_pass_and_touching_ones_differ():
    n, step = 2048, 20
    ids = np.zeros((n, n), np.int32)
    cells = np.arange(n // step)
    grid = (cells[:, None] * (n // step) + cells[None, :] + 1).astype(np.int32)  # 10404 labels
    ids[: grid.shape[0] * step, : grid.shape[1] * step] = np.kron(grid, np.ones((step, step)))
    t = time.perf_counter()
    fig = viz.overlay_mask(np.zeros((n, n), np.float32), ids)
    # one pass: about 1 s here (5.2 s on a loaded 2-core CI box); a pass per label took 160 s
    assert time.perf_counter() - t < 30.0
    rgba = np.asarray(fig.axes[0].images[1].get_array())
    colour = rgba[step // 2 :: step, step // 2 :: step, :3][: grid.shape[0], : grid.shape[1]]
    colour = colour.astype(np.int64) @ np.array([1, 256, 65536])
    assert len(np.unique(colour)) > 10
    assert not np.any(colour[:, 1:] == colour[:, :-1])  # touching left-right
    assert not np.any(colour[1:] == colour[:-1])  # touching up-down
    assert not np.any(colour[1:, 1:] == colour[:-1, :-1])  # touching at a corner
    assert np.all(rgba[ids == 0, 3] == 0)  # background left clear


# ---------------------------------------------------------------- 9. pixel aspect
def test_non_square_pixels_are_drawn_with_their_aspect():
    img = GridImage(
        np.zeros((50, 200, 1), np.float32), meta={"pixel_size": (2.0, 0.5), "pixel_unit": "um"}
    )
    assert viz.show(img).axes[0].get_aspect() == pytest.approx(4.0)
    labels = np.zeros((50, 200), np.int32)
    labels[10:20, 10:50] = 1
    assert viz.outlines(img, labels).axes[0].get_aspect() == pytest.approx(4.0)
    assert viz.overlay_mask(img, labels).axes[0].get_aspect() == pytest.approx(4.0)
    square = GridImage(np.zeros((8, 8, 1)), meta={"pixel_size": (0.5, 0.5), "pixel_unit": "um"})
    assert viz.show(square).axes[0].get_aspect() == 1.0


# ---------------------------------------------------------------- 10. RGB photos
def test_8bit_rgb_is_drawn_as_stored_and_outlines_show_on_white():
    rgb = np.full((40, 40, 3), 230, np.uint8)
    rgb[10:30, 10:30] = (130, 75, 180)  # an H&E-like purple nucleus on white
    shown = np.asarray(viz.show(rgb).axes[0].images[0].get_array())
    np.testing.assert_allclose(shown, rgb / 255.0, atol=1e-6)
    # sciconv.io.read gives float32 pixels and records the file's dtype
    as_read = GridImage(rgb.astype(np.float32), meta={"dtype": "uint8"})
    shown = np.asarray(viz.show(as_read).axes[0].images[0].get_array())
    np.testing.assert_allclose(shown, rgb / 255.0, atol=1e-6)
    stretched = np.asarray(viz.show(rgb, stretch="asinh").axes[0].images[0].get_array())
    assert not np.allclose(stretched, rgb / 255.0, atol=0.02)  # a stretch given is applied
    labels = np.zeros((40, 40), np.int32)
    labels[10:30, 10:30] = 1
    line = np.asarray(viz.outlines(rgb, labels).axes[0].images[1].get_array())[10, 15, :3] / 255
    luminance = float(line @ [0.2126, 0.7152, 0.0722])
    assert luminance < 0.3  # dark on a bright slide (yellow is 0.93)
    night = np.random.default_rng(0).normal(0.0, 1.0, (40, 40))
    night[12:16, 12:16] += 100.0  # fluorescence: a dark field, a bright cell
    dark = np.asarray(viz.outlines(night, labels).axes[0].images[1].get_array())
    np.testing.assert_allclose(dark[10, 15, :3] / 255, mcolors.to_rgb("yellow"), atol=0.01)


# ---------------------------------------------------------------- 11. colour bar label
def test_colour_bar_names_the_unit_and_the_stretch():
    from astropy import units as u
    from astropy.io import fits
    from astropy.nddata import CCDData

    data = np.random.default_rng(0).random((16, 16, 1)).astype("f4")
    header = fits.Header({"BUNIT": "ELECTRONS"})
    fig = viz.show(GridImage(data, header=header))
    assert fig.axes[-1].get_ylabel() == "electron (asinh)"
    ccd = CCDData(data[..., 0], unit="electron/s")
    assert viz.show(ccd, stretch="zscale").axes[-1].get_ylabel() == "electron / s (zscale)"
    assert viz.show(data[..., 0] * u.Jy).axes[-1].get_ylabel() == "Jy (asinh)"
    assert viz.show(data).axes[-1].get_ylabel() == "asinh stretch"
    assert viz.show(data, colorbar_label="σ [e-/s]").axes[-1].get_ylabel() == "σ [e-/s]"


# ---------------------------------------------------------------- 12. smaller things
def test_epochs_are_whole_numbers_and_sky_catalogs_read_in_degrees():
    fig = viz.training_curves({"loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7]})
    fig.canvas.draw()
    ticks = fig.axes[0].get_xticks()
    assert np.all(ticks == np.round(ticks))
    from astropy.table import Table

    ref = Table({"ra": [150.10, 150.12], "dec": [2.20, 2.21]})
    fig = viz.compare_catalogs(ref, ref, max_separation=1.0, sky=True)
    fig.canvas.draw()
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("RA [deg]", "Dec [deg]")
    assert ax.xaxis.get_offset_text().get_text() == ""
    assert ax.get_aspect() == pytest.approx(1 / np.cos(np.radians(2.205)))


def test_feature_map_row_labels_are_short():
    inp = keras.Input((16, 16, 1))
    out = keras.layers.Conv2D(2, 3, padding="same", name="a_very_long_layer_name_conv_block")(inp)
    fig = viz.feature_maps(keras.Model(inp, out), np.zeros((16, 16, 1)), normalize=None)
    label = fig.axes[0].get_ylabel()
    assert label == "a_very_…nv_block\n16×16×2"  # fits a row: cut in the middle


# ---------------------------------------------------------------- 13. ax=
def test_evaluation_plots_draw_into_the_callers_axes():
    host = Figure()
    left, right = host.subplots(1, 2)
    assert viz.confusion_matrix([0, 1, 1], [0, 1, 0], ["a", "b"], ax=left) is host
    assert left.texts and left.get_xlabel() == "predicted"
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert viz.plot_reliability(probs, np.array([0, 1, 1]), bins=5, ax=right) is host
    assert right.get_ylabel() == "accuracy" and len(host.axes) == 3  # + the matrix's bar
    curves = Figure()
    ax = curves.add_subplot()
    assert viz.training_curves({"loss": [1.0, 0.5]}, ax=ax) is curves
    assert ax.get_title() == "loss"
    with pytest.raises(ConfigError, match="ax must be 2 Axes"):
        viz.training_curves({"loss": [1.0, 0.5], "accuracy": [0.5, 0.7]}, ax=ax)
    from astropy.table import Table

    ref = Table({"x": [10.0, 50.0], "y": [10.0, 50.0]})
    cat = Figure()
    assert viz.compare_catalogs(ref, ref, ax=cat.subplots(1, 2)) is cat
    sub = Figure().subfigures(1, 2)[1]
    inp = keras.Input((16, 16, 1))
    model = keras.Model(inp, keras.layers.Conv2D(2, 3, name="conv")(inp))
    assert viz.filters(model, "conv", fig=sub) is sub and len(sub.axes) == 3
    gc = Figure()
    gax = gc.add_subplot()
    assert viz.grad_cam(_toy(), np.zeros((32, 32, 1)), ax=gax, normalize=None) is gc


def test_instance_palette_is_the_callers_own_copy():
    # QA 54 (long-lived kernels): the cached array itself was returned, so `pal *= 255` for
    # napari changed every later instance overlay of the session
    from sciconv.viz import instance_palette

    first = instance_palette(24)
    want = first.copy()
    first *= 255
    again = instance_palette(24)
    np.testing.assert_array_equal(again, want)
    assert again.flags.writeable and again is not instance_palette(24)


def test_zscale_display_uses_every_pixel_as_normalization_does():
    # QA 54: the display drew astropy's 1000-pixel zscale sample (a NaN row moved its limits);
    # now the limits sciconv normalizes with: every finite pixel of rank 1/1001 to 1000/1001
    # (the expected extremes of astropy's 1000-pixel sample), a NaN frame changes nothing
    from astropy.visualization import ZScaleInterval

    from sciconv.preprocess._zscale import zscale_clamp

    rng = np.random.default_rng(0)
    sky = rng.normal(100, 5, (300, 300))
    sky[10:20, 10:20] += 500
    framed = np.full((311, 300), np.nan)
    framed[:300] = sky
    pixels = np.sort(sky.ravel())
    first, last = zscale_clamp(pixels.size)
    want = ZScaleInterval(n_samples=10**6).get_limits(pixels[first : last + 1])
    for image in (sky, framed):
        norm = viz.show(image, stretch="zscale").axes[0].images[0].norm
        np.testing.assert_allclose((norm.vmin, norm.vmax), want, rtol=1e-6)
