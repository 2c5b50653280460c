"""An alpha channel is dropped on reading, once its fully transparent pixels are NaN.

QA (dtypes, findings 1-3): kept as a channel, the alpha of a PNG or TIFF with a transparent area
made sc.viz refuse the reader's own output, was measured as a 4th flux band (a mean of 255) in
catalogs, and made a grey+alpha PNG unusable with the pretrained model (2 channels). Finding 5:
a big-endian uint16 array was refused by the PNG writer.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from _helpers import run_cli
from astropy.table import QTable
from PIL import Image

from sciconv import inference, io, models, postprocess, viz
from sciconv.datasets import read_mask
from sciconv.errors import InvalidImageError

CENTRES = [(20, 20), (60, 70), (30, 75), (75, 25), (50, 45)]
MARGIN = 3  # columns on the left that are fully transparent


def _cells() -> np.ndarray:
    """96 x 96 uint8: five bright round nuclei on a dim background."""
    yy, xx = np.mgrid[:96, :96]
    im = np.full((96, 96), 20.0)
    for cy, cx in CENTRES:
        im += 200 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 3.5**2))
    return im.clip(0, 255).astype(np.uint8)


def _alpha(shape) -> np.ndarray:
    alpha = np.full(shape, 255, np.uint8)
    alpha[:, :MARGIN] = 0
    alpha[10, 50] = 128  # half transparent: data
    return alpha


def _save(path, kind: str) -> np.ndarray:
    """Write ``kind`` (rgba, grey_alpha, palette) of the cells image; return its colours."""
    g = _cells()
    a = _alpha(g.shape)
    colour = np.dstack([g, g // 2, 255 - g])
    if kind == "rgba":
        Image.fromarray(np.dstack([colour, a]), "RGBA").save(path)
        return colour
    if kind == "rgba_tiff":
        tifffile.imwrite(path, np.dstack([colour, a]), photometric="rgb", extrasamples=[2])
        return colour
    if kind == "grey_alpha":
        Image.fromarray(np.dstack([g, a]), "LA").save(path)
        return g[..., None]
    # a palette with a transparent index: the margin takes that index
    idx = (g // 16).astype(np.uint8) + 1
    idx[:, :MARGIN] = 0
    pal = Image.fromarray(idx, "P")
    pal.putpalette([v for k in range(256) for v in (k * 16 % 256, k, 255 - k)])
    pal.save(path, transparency=0)
    lut = np.array([(k * 16 % 256, k, 255 - k) for k in range(256)], np.uint8)
    return lut[idx]


KINDS = {"rgba": "png", "grey_alpha": "png", "palette": "png", "rgba_tiff": "tif"}


@pytest.mark.parametrize("kind", KINDS)
def test_read_drops_the_alpha_once_transparent_pixels_are_nan(tmp_path, kind):
    path = tmp_path / f"{kind}.{KINDS[kind]}"
    colour = _save(path, kind)
    img = io.read(path)
    assert img.shape == colour.shape  # grey or RGB, no alpha channel
    assert img.meta["alpha"] == (
        f"dropped; {96 * MARGIN} fully transparent pixels are no data (NaN)"
    )
    assert np.isnan(img.data[:, :MARGIN]).all() and img.mask[:, :MARGIN].all()
    np.testing.assert_array_equal(img.data[:, MARGIN:], colour[:, MARGIN:].astype(np.float32))
    assert img.data[10, 50, 0] == colour[10, 50, 0]  # half transparent: kept as data


@pytest.mark.parametrize("kind", KINDS)
def test_viz_shows_what_the_reader_returns(tmp_path, kind):
    """Finding 1: viz.show and viz.outlines refused (H, W, 4) and (H, W, 2) reads."""
    path = tmp_path / f"{kind}.{KINDS[kind]}"
    colour = _save(path, kind)
    img = io.read(path)
    shown = np.asarray(viz.show(img, colorbar=False).axes[0].images[0].get_array())
    assert shown.shape[:2] == (96, 96)
    if colour.shape[-1] == 3:  # displayed in colour, all three channels
        assert shown.shape == (96, 96, 3)
    labels = (np.nan_to_num(img.data[..., 0]) > 128).astype(np.int32)
    fig = viz.outlines(img, labels)
    assert np.asarray(fig.axes[0].images[0].get_array()).shape[:2] == (96, 96)


def test_measure_of_a_read_rgba_png_has_its_three_colours(tmp_path):
    """Finding 2: the alpha was measured as a 4th band (flux_mean 255)."""
    colour = _save(tmp_path / "cells.png", "rgba")
    img = io.read(tmp_path / "cells.png")
    yy, xx = np.mgrid[:96, :96]
    labels = np.zeros((96, 96), np.int32)
    labels[(yy - 20) ** 2 + (xx - 20) ** 2 < 36] = 1
    labels[(yy - 50) ** 2 + (xx - 45) ** 2 < 36] = 2
    table = postprocess.measure(labels, intensity=img)
    for k in (1, 2):
        want = colour[labels == k].astype(np.float64)
        np.testing.assert_allclose(table["flux_sum"][k - 1], want.sum(axis=0))
        np.testing.assert_allclose(table["flux_mean"][k - 1], want.mean(axis=0))


@pytest.fixture(scope="module")
def nuclei():
    return models.pretrained("nuclei")


def _found(labels: np.ndarray) -> None:
    """Every nucleus found, once, and nothing in the transparent margin."""
    ids = {int(labels[cy, cx]) for cy, cx in CENTRES}
    assert 0 not in ids and len(ids) == len(CENTRES) == labels.max()
    assert not labels[:, :MARGIN].any()


@pytest.mark.parametrize("kind", ["grey_alpha", "rgba"])
def test_pretrained_model_segments_a_read_png_with_a_transparent_margin(tmp_path, nuclei, kind):
    """Finding 3: grey+alpha was refused ('must have 1, 3 or 4 channels; got 2')."""
    _save(tmp_path / "cells.png", kind)
    img = io.read(tmp_path / "cells.png")
    _found(inference.predict_instances(nuclei, img, progress=False))


def test_cli_predict_on_grey_alpha_and_rgba_pngs(tmp_path, capsys):
    """Findings 2 and 3 through `sciconv predict`: grey+alpha segmented; the catalog of an RGBA
    PNG holds three colour bands, none of them the alpha's 255."""
    _save(tmp_path / "ga.png", "grey_alpha")
    colour = _save(tmp_path / "rgba.png", "rgba")
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "predict", "pretrained:nuclei", tmp_path / "ga.png", tmp_path / "rgba.png",
        "--out", out, "--quiet",
    )  # fmt: skip
    assert code == 0, err
    for stem in ("ga", "rgba"):
        _found(io.read_labels(next(out.glob(f"{stem}_labels.*"))))
    catalog = QTable.read(out / "rgba_catalog.ecsv")
    labels = io.read_labels(out / "rgba_labels.tif")
    flux = np.asarray(catalog["flux_mean"])
    assert flux.shape == (5, 3)  # R, G, B: no 4th band of 255 (the alpha)
    want = [colour[labels == k].mean(axis=0) for k in catalog["label"]]
    np.testing.assert_allclose(flux, want, rtol=1e-5)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_lazy_and_section_tiff_reads_drop_the_alpha_too(tmp_path, compression):
    """Window by window (a memory map; tiles through zarr) and sections: the same channels."""
    colour = _save(tmp_path / "c.png", "rgba")
    rgba = np.dstack([colour, _alpha(colour.shape[:2])])
    path = tmp_path / "c.tif"
    tile = None if compression is None else (32, 32)
    tifffile.imwrite(
        path, rgba, photometric="rgb", extrasamples=[2], compression=compression, tile=tile
    )
    eager = io.read(path)
    assert eager.shape == (96, 96, 3)
    lazy = io.read(path, lazy=True)
    try:
        assert lazy.shape == (96, 96, 3) and lazy.meta["alpha"].startswith("dropped; ")
        np.testing.assert_array_equal(lazy.data[0:40, 0:70], eager.data[0:40, 0:70])
        np.testing.assert_array_equal(lazy.data[50:96, 10:96], eager.data[50:96, 10:96])
    finally:
        lazy.data.close()
    assert io.probe_shape(path) == (96, 96, 3)
    sec = io.read(path, section=(slice(5, 60), slice(1, 40)))
    assert sec.meta["alpha"] == "dropped; 110 fully transparent pixels are no data (NaN)"
    np.testing.assert_array_equal(sec.data, eager.data[5:60, 1:40])
    png_sec = io.read(tmp_path / "c.png", section=(slice(5, 60), slice(1, 40)))
    np.testing.assert_array_equal(png_sec.data, sec.data)


def test_grey_alpha_tiff_and_16_bit_png_read_as_grey_and_rgb(tmp_path):
    g = _cells().astype(np.uint16) * 257
    a = _alpha(g.shape).astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "ga.tif", np.dstack([g, a]), photometric="minisblack",
                     extrasamples=[2], planarconfig="contig")  # fmt: skip
    img = io.read(tmp_path / "ga.tif")
    assert img.shape == (96, 96, 1) and np.isnan(img.data[:, :MARGIN]).all()
    np.testing.assert_array_equal(img.data[:, MARGIN:, 0], g[:, MARGIN:])
    # 16-bit RGBA PNG (the hand decoder: Pillow reduces it to 8 bits)
    io.write(tmp_path / "c16.png", np.dstack([g, g, g, a]))
    img = io.read(tmp_path / "c16.png")
    assert img.shape == (96, 96, 3) and img.meta["dtype"] == "uint16"
    assert np.isnan(img.data[:, :MARGIN]).all() and img.data[0, 50, 1] == g[0, 50]


def test_translucent_alpha_without_transparent_pixels_is_dropped(tmp_path):
    rgba = np.full((4, 5, 4), 90, np.uint8)
    rgba[..., 3] = 200
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    img = io.read(tmp_path / "t.png")
    assert img.shape == (4, 5, 3) and img.meta["alpha"] == "dropped (no pixel fully transparent)"
    assert not img.mask.any() and (img.data == 90).all()


def test_rgba_label_mask_with_a_constant_alpha_reads_as_its_ids(tmp_path):
    ids = np.zeros((8, 8), np.uint8)
    ids[2:5, 2:5], ids[5:8, 5:8] = 1, 2
    Image.fromarray(np.dstack([ids, ids, ids, np.full_like(ids, 128)]), "RGBA").save(
        tmp_path / "m.png"
    )
    labels, ignored = read_mask(tmp_path / "m.png")
    np.testing.assert_array_equal(labels, ids)
    assert ignored is None


@pytest.mark.parametrize("channels", [1, 3])
def test_png_writes_big_endian_uint16(tmp_path, channels):
    """Finding 5: '>u2' (np.fromfile, h5py) was refused: 'PNG stores uint8 or uint16; got >u2'."""
    native = (np.arange(40 * 30 * channels) * 1013 % 65536).astype(np.uint16)
    native = native.reshape(40, 30, channels)
    p = io.write(tmp_path / "be.png", native.astype(">u2"))
    img = io.read(p)
    assert img.meta["dtype"] == "uint16"
    np.testing.assert_array_equal(img.data, native.astype(np.float32))
    if channels == 1:  # Pillow reads it the same: a valid 16-bit PNG
        np.testing.assert_array_equal(np.asarray(Image.open(p)), native[..., 0])
    with pytest.raises(InvalidImageError, match=r"be16\.png: PNG stores uint8 or uint16"):
        io.write(tmp_path / "be16.png", native.astype(">i2"))


@pytest.mark.parametrize("channels", [2, 4])
def test_grey_tiff_channels_of_unspecified_meaning_are_not_alpha(tmp_path, channels):
    """tifffile writes an (H, W, 2) or (H, W, 4) grey array with extra samples 'unspecified':
    data, not alpha (its zeros made the pixels NaN; dropped, a channel would be lost)."""
    data = np.arange(6 * 5 * channels, dtype=np.uint16).reshape(6, 5, channels) % 7
    tifffile.imwrite(tmp_path / "c.tif", data, photometric="minisblack", planarconfig="contig")
    assert tifffile.TiffFile(tmp_path / "c.tif").pages[0].extrasamples[-1] == 0
    img = io.read(tmp_path / "c.tif")
    assert img.shape == (6, 5, channels) and img.meta.get("alpha") is None
    np.testing.assert_array_equal(img.data, data.astype(np.float32))
    assert not img.mask.any()


def test_png_alpha_zero_everywhere_is_ignored_with_a_warning(tmp_path):
    # an export that records no transparency (alpha 0 in every pixel): taken at its word, the
    # whole image was no data (all NaN); a PNG is decoded whole, so its pixels are read as
    # stored, and it is said
    from sciconv.errors import SciconvWarning

    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[..., :3] = np.arange(24 * 32 * 3, dtype=np.uint32).reshape(24, 32, 3) % 251
    path = tmp_path / "clear.png"
    Image.fromarray(rgba, "RGBA").save(path)
    for section in (None, (slice(2, 9), slice(None))):
        with pytest.warns(SciconvWarning, match=r"clear\.png.*alpha channel is 0 everywhere"):
            img = io.read(path, section=section)
        assert img.meta["alpha"].startswith("ignored")
        want = rgba[..., :3] if section is None else rgba[section][..., :3]
        np.testing.assert_array_equal(img.data, want.astype(np.float32))


@pytest.mark.parametrize("lazy", [False, True])
def test_tiff_transparent_region_is_no_data_in_every_read(tmp_path, lazy):
    # review 54: a section inside a TIFF's transparent region came back opaque (the all-0 rule
    # decided on the window), and a fully transparent TIFF read opaque eagerly, NaN lazily: a
    # TIFF read window by window keeps its alpha's word everywhere
    rgba = np.full((40, 32, 4), 200, np.uint8)
    rgba[:10, :, 3] = 0
    path = tmp_path / "top_clear.tif"
    tifffile.imwrite(path, rgba, photometric="rgb", extrasamples=[2], tile=(16, 16))
    whole = io.read(path, lazy=lazy).data
    part = io.read(path, section=(slice(2, 8), slice(None))).data
    assert np.isnan(np.asarray(whole[:10])).all() and np.isfinite(np.asarray(whole[10:])).all()
    assert part.shape == (6, 32, 3) and np.isnan(part).all()
    clear = np.zeros_like(rgba)
    tifffile.imwrite(tmp_path / "clear.tif", clear, photometric="rgb", extrasamples=[2])
    got = io.read(tmp_path / "clear.tif", lazy=lazy).data
    assert np.isnan(np.asarray(got[:, :])).all()
