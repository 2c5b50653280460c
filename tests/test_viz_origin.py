"""sciconv.viz orientation: microscopy row 0 at the top, sky images row 0 at the bottom."""

from __future__ import annotations

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest
import tifffile
from _helpers import tan_wcs
from astropy.io import fits
from astropy.visualization.wcsaxes import WCSAxes
from matplotlib.figure import Figure

from sciconv import io, viz
from sciconv.errors import ConfigError

ROW = 5  # the labelled pixel's row, near the start of the file


def _pixels():
    image = np.full((40, 30), 10.0, np.float32)
    labels = np.zeros((40, 30), np.int32)
    labels[ROW - 1 : ROW + 2, 8:11] = 1
    image[labels > 0] = 100.0
    return image, labels


@pytest.fixture
def tiff_and_fits(tmp_path):
    image, labels = _pixels()
    tifffile.imwrite(tmp_path / "cells.tif", image)
    hdu = fits.PrimaryHDU(image, header=tan_wcs(image.shape).to_header())
    hdu.writeto(tmp_path / "field.fits")
    return io.read(tmp_path / "cells.tif"), io.read(tmp_path / "field.fits"), labels


@pytest.fixture(autouse=True)
def no_pyplot_leak():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "viz must not create pyplot figures"


def _screen_fraction_from_top(ax, y):
    """Where data row ``y`` lands on the axes: 0 = top edge, 1 = bottom edge."""
    _, y_disp = ax.transData.transform((0.0, y))
    _, y_axes = ax.transAxes.inverted().transform((0.0, y_disp))
    return 1.0 - y_axes


def _draw(kind, image, labels, **kw):
    if kind == "show":
        return viz.show(image, stretch="linear", **kw)
    if kind == "overlay_mask":
        return viz.overlay_mask(image, labels > 0, stretch="linear", **kw)
    if kind == "outlines":
        return viz.outlines(image, labels, stretch="linear", **kw)
    return viz.contours(image, labels.astype(float), levels=(0.5,), stretch="linear", **kw)


KINDS = ["show", "overlay_mask", "outlines", "contours"]


@pytest.mark.parametrize("kind", KINDS)
def test_microscopy_row_5_near_the_top_sky_row_5_near_the_bottom(tiff_and_fits, kind):
    tif, fit, labels = tiff_and_fits
    assert tif.wcs is None and fit.wcs is not None
    ax = _draw(kind, tif, labels).axes[0]
    assert not isinstance(ax, WCSAxes)
    assert all(im.origin == "upper" for im in ax.images)
    assert _screen_fraction_from_top(ax, ROW) < 0.2  # Fiji/napari/QuPath: near the top
    ax = _draw(kind, fit, labels).axes[0]
    assert isinstance(ax, WCSAxes)
    assert all(im.origin == "lower" for im in ax.images)
    assert _screen_fraction_from_top(ax, ROW) > 0.8  # DS9: near the bottom


@pytest.mark.parametrize("kind", KINDS)
def test_origin_forced_and_overlay_follows_the_image(tiff_and_fits, kind):
    tif, _, labels = tiff_and_fits
    ax = _draw(kind, tif, labels, origin="lower").axes[0]
    assert {im.origin for im in ax.images} == {"lower"}
    assert _screen_fraction_from_top(ax, ROW) > 0.8
    # a plain array is microscopy by default
    ax = _draw(kind, tif.data, labels).axes[0]
    assert {im.origin for im in ax.images} == {"upper"}


@pytest.mark.parametrize("origin", ["upper", "lower"])
def test_contours_sit_on_the_labelled_pixels(tiff_and_fits, origin):
    tif, _, labels = tiff_and_fits
    ax = viz.contours(tif, labels.astype(float), levels=(0.5,), origin=origin).axes[0]
    cs = next(c for c in ax.collections if hasattr(c, "allsegs"))
    ring = np.vstack(cs.allsegs[0])  # matplotlib 3.8.0 gives one (n, 2) array, later a list
    cx, cy = ring.mean(axis=0)  # in pixel coordinates: x = column, y = row
    assert abs(cx - 9.0) < 0.3 and abs(cy - ROW) < 0.3
    # and the outline image is drawn over the same pixels as the base image
    ax = viz.outlines(tif, labels, origin=origin, stretch="linear").axes[0]
    assert ax.images[0].get_extent() == ax.images[1].get_extent()


def test_fits_without_wcs_is_drawn_as_astronomy(tmp_path):
    image, _ = _pixels()
    fits.PrimaryHDU(image).writeto(tmp_path / "plain.fits")
    img = io.read(tmp_path / "plain.fits")
    assert img.wcs is None
    assert viz.show(img).axes[0].images[0].origin == "lower"


def test_upper_on_sky_data(tiff_and_fits):
    _, fit, _ = tiff_and_fits
    fig = viz.show(fit, origin="upper")  # pixel axes: sky axes need row 0 at the bottom
    assert not isinstance(fig.axes[0], WCSAxes)
    assert fig.axes[0].images[0].origin == "upper"
    own = Figure().add_subplot(projection=fit.wcs)
    assert viz.show(fit, ax=own).axes[0].images[0].origin == "lower"
    with pytest.raises(ConfigError, match="origin='upper' cannot be drawn on sky axes"):
        viz.show(fit, ax=own, origin="upper")
    # an array drawn into the caller's WCSAxes is a sky image
    own = Figure().add_subplot(projection=fit.wcs)
    assert (
        viz.outlines(fit.data, np.zeros((40, 30), int), ax=own).axes[0].images[0].origin == "lower"
    )


def test_bad_origin_suggests_nearest():
    with pytest.raises(ConfigError, match="upper"):
        viz.show(np.zeros((4, 4)), origin="uper")


def test_network_figures_follow_the_image(tiff_and_fits):
    tif, fit, _ = tiff_and_fits
    inp = keras.Input((40, 30, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(2)(x))
    for img, want in ((tif, "upper"), (fit, "lower")):
        fig = viz.grad_cam(model, img, class_index=0, normalize=None)
        assert [im.origin for im in fig.axes[1].images] == [want, want]
        fig = viz.feature_maps(model, img, normalize=None)
        assert fig.axes[0].images[0].origin == want
    fig = viz.grad_cam(model, tif, class_index=0, normalize=None, origin="lower")
    assert {im.origin for im in fig.axes[0].images + fig.axes[1].images} == {"lower"}
