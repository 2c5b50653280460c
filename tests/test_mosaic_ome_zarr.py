"""Block-wise labels as an OME-Zarr (NGFF 0.5) store: ``predict_mosaic(format="ome-zarr")``.

A whole slide or a survey mosaic segmented block by block gave a plain zarr array, which
napari-ome-zarr, vizarr, OMERO and QuPath do not open as labels and which has no pyramid to
view it by; ``sciconv predict --block N --format ome-zarr`` was refused. The store holds the
segmented image as its multiscale image and the labels as its NGFF label image
``labels/instances``, both pyramids built level by level from the block-written array.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from _helpers import assert_one_line_error, run_cli
from astropy.table import Table

from sciconv import io
from sciconv.errors import InvalidImageError, OutputExistsError
from sciconv.inference import _files, predict_mosaic
from sciconv.io import _zarr_mosaic

zarr = pytest.importorskip("zarr")
pytest.importorskip("ome_zarr")
from ome_zarr.io import parse_url  # noqa: E402
from ome_zarr.reader import Reader  # noqa: E402

FAST = dict(normalize=None, progress=False, blend="none", margin=24, min_size=4)
SHAPE = (300, 260)


@pytest.fixture(scope="module")
def model(threshold_model):
    return threshold_model


@pytest.fixture(autouse=True)
def small_pyramids(monkeypatch):
    """Pyramids of a few levels and chunks smaller than the image: 300 x 260 gives 4 levels
    (260, 130, 65, 32 on the short side) and several chunks per level."""
    monkeypatch.setattr(_files, "MOSAIC_MIN_SIDE", 32)
    monkeypatch.setattr(_zarr_mosaic, "MOSAIC_CHUNK", 64)


def _discs(shape=SHAPE) -> np.ndarray:
    """uint16 discs (value 3000) on a 0 background: 25 objects, some across block borders."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.zeros(shape, np.uint16)
    for cy in range(20, shape[0] - 10, 60):
        for cx in range(25, shape[1] - 10, 55):
            image[(yy - cy) ** 2 + (xx - cx) ** 2 <= 14**2] = 3000
    return image


@pytest.fixture
def slide(tmp_path):
    """An OME-TIFF of the discs with a pixel size of 0.5 µm."""
    path = tmp_path / "slide.ome.tif"
    meta = {"axes": "YX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5}
    meta.update(PhysicalSizeXUnit="µm", PhysicalSizeYUnit="µm")
    tifffile.imwrite(path, _discs(), ome=True, metadata=meta)
    return path


def _nodes(store):
    """The image node and the label node ome-zarr-py's reader finds in ``store``."""
    nodes = list(Reader(parse_url(str(store), mode="r"))())
    specs = [{type(s).__name__ for s in n.specs} for n in nodes]
    image = [n for n, s in zip(nodes, specs) if "Multiscales" in s and "Label" not in s]
    labels = [n for n, s in zip(nodes, specs) if "Label" in s]
    assert len(image) == 1 and len(labels) == 1, specs
    return image[0], labels[0]


def test_mosaic_store_is_an_ngff_image_with_a_label_pyramid(model, slide, tmp_path):
    outs = predict_mosaic(model, slide, tmp_path / "out", block=64, format="ome-zarr", **FAST)
    store = tmp_path / "out" / "slide.ome.zarr"
    assert list(outs) == ["image", "labels", "catalog"]
    assert outs["image"] == store and outs["labels"] == store / "labels" / "instances"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "slide.ome.zarr",
        "slide_catalog.ecsv",
    ]  # no plain zarr, no scratch folder left
    image, labels = _nodes(store)
    shapes = [tuple(d.shape) for d in labels.data]
    assert shapes == [(300, 260), (150, 130), (75, 65), (38, 33)]  # halves rounded up
    assert [tuple(d.shape[-2:]) for d in image.data] == shapes  # as many levels as the image
    ids = np.asarray(labels.data[0])
    assert ids.max() == 25
    for k, level in enumerate(labels.data[1:], start=1):
        level = np.asarray(level)
        np.testing.assert_array_equal(
            level, ids[:: 2**k, :: 2**k][: level.shape[0], : level.shape[1]]
        )
        assert set(np.unique(level)) <= set(np.unique(ids))
    pytest.importorskip("ome_zarr_models")
    from ome_zarr_models import open_ome_zarr
    from ome_zarr_models.v05.image import Image

    assert isinstance(open_ome_zarr(store), Image)  # valid NGFF 0.5, labels included


def test_mosaic_store_gives_back_the_plain_zarr_labels_and_pixel_size(model, slide, tmp_path):
    plain = predict_mosaic(model, slide, tmp_path / "plain", block=64, **FAST)
    outs = predict_mosaic(model, slide, tmp_path / "ngff", block=64, format="ome-zarr", **FAST)
    expected = io.read_labels(plain["labels"])
    np.testing.assert_array_equal(io.read_labels(outs["labels"] / "s0"), expected)
    got, want = Table.read(outs["catalog"]), Table.read(plain["catalog"])
    assert got.colnames == want.colnames and len(got) == len(want) == 25
    for name in ("label", "area", "x", "y", "flux_sum"):
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    as_image = io.read(outs["labels"])  # the label group: labels with their pixel size
    np.testing.assert_array_equal(as_image.data[..., 0], expected)
    assert as_image.pixel_scale == io.read(plain["labels"]).pixel_scale
    assert as_image.pixel_scale == io.PixelScale(0.5, 0.5, "um")
    stored = io.read(outs["image"])  # the store's image: the slide, in its own dtype
    assert stored.meta["dtype"] == "uint16" and stored.pixel_scale == as_image.pixel_scale
    np.testing.assert_array_equal(stored.data[..., 0], _discs())
    _, labels = _nodes(outs["image"])
    scales = [t[0]["scale"] for t in labels.metadata["coordinateTransformations"]]
    assert scales == [[0.5, 0.5], [1.0, 1.0], [2.0, 2.0], [4.0, 4.0]]
    assert {a["unit"] for a in labels.metadata["axes"]} == {"micrometer"}
    recorded = zarr.open_array(str(plain["labels"]), mode="r").attrs["sciconv"]
    for node in (outs["image"], outs["labels"], outs["labels"] / "s0"):  # provenance kept
        provenance = dict(zarr.open(str(node), mode="r").attrs["sciconv"])
        history = provenance.pop("history")
        assert provenance == {k: v for k, v in recorded.items() if k != "history"}, node
        # both begin with the model and settings (--skip-existing compares them)
        assert history == recorded["history"] and history[1] == "  block = 64", node
        assert history[0] == "sciconv prediction with model threshold"


def test_a_mosaic_store_is_known_as_a_product(model, slide, tmp_path):
    """Its history names a sciconv prediction, as a whole-image store's does: a rerun with
    --out = the input folder does not take the store for an input image."""
    from sciconv._cli_predict_plan import earlier_products

    predict_mosaic(model, slide, slide.parent, block=64, format="ome-zarr", **FAST)
    store = slide.parent / "slide.ome.zarr"
    assert earlier_products([slide, store]) == [store]
    assert earlier_products([store]) == [store]  # also without its input beside it


def test_mosaic_store_geojson_matches_the_plain_route(model, slide, tmp_path):
    pytest.importorskip("shapely")
    plain = predict_mosaic(model, slide, tmp_path / "p", block=64, geojson=True, **FAST)
    outs = predict_mosaic(
        model, slide, tmp_path / "n", block=64, geojson=True, format="ome-zarr", **FAST
    )
    assert outs["geojson"].read_text() == plain["geojson"].read_text()


def test_mosaic_store_keeps_the_wcs_of_a_fits_mosaic(model, tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval, wcs.wcs.crpix = [150.1, 2.2], [130.0, 150.0]
    wcs.wcs.cdelt = [-0.1 / 3600, 0.1 / 3600]
    fits.writeto(tmp_path / "field.fits", _discs().astype(np.float32), wcs.to_header())
    outs = predict_mosaic(
        model, tmp_path / "field.fits", tmp_path / "out", block=64, format="ome-zarr",
        background="none", **FAST,
    )  # fmt: skip
    for path in (outs["labels"], outs["image"], outs["labels"] / "s0"):
        got = io.read(path, lazy=True).wcs
        assert got is not None, path
        np.testing.assert_allclose(got.wcs.crval, wcs.wcs.crval)
        np.testing.assert_allclose(got.wcs.crpix, wcs.wcs.crpix)
    cut = io.read(outs["labels"], section=(slice(100, 200), slice(50, 120)))
    np.testing.assert_allclose(cut.wcs.wcs.crpix, [80.0, 50.0])
    assert io.read(outs["image"]).meta["dtype"] == "float32"  # float pixels stay float
    _, labels = _nodes(outs["image"])  # arcsec is no NGFF unit: the scale stays in pixels
    assert labels.metadata["coordinateTransformations"][0][0]["scale"] == [1.0, 1.0]


def test_mosaic_store_refuses_to_overwrite_before_predicting(model, slide, tmp_path, monkeypatch):
    out = tmp_path / "out"
    predict_mosaic(model, slide, out, block=64, format="ome-zarr", **FAST)
    before = io.read_labels(out / "slide.ome.zarr" / "labels" / "instances" / "s0")

    def no_blocks(*args, **kwargs):
        raise AssertionError("predicted before refusing")

    with monkeypatch.context() as patch:
        patch.setattr("sciconv.inference._blocks.predict_instances_blocks", no_blocks)
        with pytest.raises(OutputExistsError, match=r"slide\.ome\.zarr"):
            predict_mosaic(model, slide, out, block=64, format="ome-zarr", **FAST)
    (out / "slide_catalog.ecsv").unlink()  # the store alone is refused too
    with pytest.raises(OutputExistsError, match=r"slide\.ome\.zarr"):
        predict_mosaic(model, slide, out, block=64, format="ome-zarr", **FAST)
    outs = predict_mosaic(model, slide, out, block=64, format="ome-zarr", overwrite=True, **FAST)
    np.testing.assert_array_equal(io.read_labels(outs["labels"] / "s0"), before)
    assert sorted(p.name for p in out.iterdir()) == ["slide.ome.zarr", "slide_catalog.ecsv"]


def test_an_ome_zarr_input_is_never_written_over(model, tmp_path):
    from sciconv.errors import ConfigError

    source = io.write_ome_zarr(tmp_path / "m.ome.zarr", _discs(), levels=1)
    before = io.read(source).data
    with pytest.raises(ConfigError, match="would replace it"):
        predict_mosaic(model, source, tmp_path, block=64, format="ome-zarr", overwrite=True, **FAST)
    np.testing.assert_array_equal(io.read(source).data, before)
    outs = predict_mosaic(model, source, tmp_path / "out", block=64, format="ome-zarr", **FAST)
    assert int(io.read_labels(outs["labels"] / "s0").max()) == 25


def test_a_failed_store_write_leaves_nothing(model, slide, tmp_path, monkeypatch):
    """The store is built in a scratch folder and renamed at the end: a failure while writing
    its metadata leaves no store, no scratch folder and no catalog."""
    import ome_zarr.writer

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ome_zarr.writer, "write_label_metadata", broken)
    with pytest.raises(OSError, match=r"slide\.ome\.zarr"):
        predict_mosaic(model, slide, tmp_path / "out", block=64, format="ome-zarr", **FAST)
    assert list((tmp_path / "out").iterdir()) == []


def test_write_ome_zarr_mosaic_copies_unless_asked_to_move(tmp_path):
    labels = zarr.create_array(
        str(tmp_path / "ids.zarr"), shape=(96, 80), chunks=(32, 32), dtype="int32"
    )  # no dimension_names: copied into the store even with move=True
    ids = np.zeros((96, 80), np.int32)
    ids[10:30, 10:40], ids[50:90, 20:70] = 4, 70_000_000  # ids beyond float32's 2**24
    labels[:] = ids
    image = np.random.default_rng(1).integers(0, 255, (96, 80, 3)).astype(np.uint8)
    store = _zarr_mosaic.write_ome_zarr_mosaic(
        tmp_path / "a.ome.zarr", tmp_path / "ids.zarr", image, levels=3, move=True
    )
    assert (tmp_path / "ids.zarr").is_dir()
    np.testing.assert_array_equal(io.read_labels(store / "labels/instances/s0"), ids)
    level1 = io.read(store, level=1)
    assert level1.shape == (48, 40, 3) and level1.meta["dtype"] == "uint8"
    means = image.reshape(48, 2, 40, 2, 3).mean(axis=(1, 3))
    np.testing.assert_array_equal(level1.data, np.round(means))  # 2 x 2 means, rounded
    with pytest.raises(OutputExistsError):
        _zarr_mosaic.write_ome_zarr_mosaic(store, tmp_path / "ids.zarr", image, levels=3)
    with pytest.raises(InvalidImageError, match=r"= \(96, 80\)"):
        _zarr_mosaic.write_ome_zarr_mosaic(
            tmp_path / "b.ome.zarr", tmp_path / "ids.zarr", image[:50]
        )


def test_mosaic_image_of_asinh_pixels_is_stored_linear_float(tmp_path):
    """A Pan-STARRS int16 stack is read linear (BSOFTEN/BOFFSET) with BSCALE 1: its mosaic
    image must hold those float values, not be rounded back into the stored integers."""
    from astropy.io import fits

    from sciconv.io._fits_scaling import ASINH_ALPHA

    stored = np.zeros((96, 80), np.int16)  # BSCALE 1: whole asinh magnitudes
    stored[40:50, 30:40] = 9  # a star: 10 + 16 sinh(9 / 1.0857) = 31 785 counts
    hdr = fits.Header({"BSOFTEN": 8.0, "BOFFSET": 10.0})
    fits.PrimaryHDU(stored, header=hdr).writeto(tmp_path / "ps1.fits")
    image = io.read(tmp_path / "ps1.fits", lazy=True)
    assert image.meta["scaling"] == "asinh"
    read, channels, dtype = _zarr_mosaic._window_reader(image, (96, 80))
    assert channels == 1 and dtype == np.float32
    window = read(slice(40, 50), slice(30, 40))
    np.testing.assert_allclose(window, 10 + 16 * np.sinh(9 / ASINH_ALPHA), rtol=1e-6)


# ------------------------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, threshold_model):
    path = tmp_path_factory.mktemp("mosaic_ngff") / "threshold.keras"
    threshold_model.save(path)
    return path


def test_cli_writes_an_ome_zarr_mosaic_and_skips_it_after(capsys, model_file, slide, tmp_path):
    out = tmp_path / "out"
    common = ("predict", model_file, slide, "--out", out, "--block", "64", "--format", "ome-zarr")
    code, _, err = run_cli(capsys, *common, "--quiet")
    assert code == 0, err
    store = out / "slide.ome.zarr"
    _, labels = _nodes(store)
    assert len(labels.data) == 4 and int(np.asarray(labels.data[0]).max()) > 0
    assert sorted(p.name for p in out.iterdir()) == ["slide.ome.zarr", "slide_catalog.ecsv"]
    code, stdout, err = run_cli(capsys, *common, "--skip-existing")
    assert code == 0, err
    assert "skipped, its products exist" in stdout + err
    code, _, err = run_cli(capsys, *common, "--skip-existing", "--min-size", "50")  # QA
    assert code == 1
    assert_one_line_error(err, "slide.ome.zarr was made with min_size = not set", "50")
    code, _, err = run_cli(capsys, *common)  # no --overwrite: refused, naming the store
    assert code != 0
    assert_one_line_error(err, "slide.ome.zarr", "--overwrite")


@pytest.mark.parametrize("fmt", ["fits", "tiff"])
def test_cli_still_refuses_fits_and_tiff_block_by_block(capsys, model_file, slide, tmp_path, fmt):
    code, _, err = run_cli(
        capsys, "predict", model_file, slide, "--out", tmp_path / "o", "--block", "64",
        "--format", fmt,
    )  # fmt: skip
    assert code != 0
    assert_one_line_error(err, "slide.ome.tif", f"--format {fmt}", "block-wise", "ome-zarr")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_plan_names_the_store_for_mosaics(tmp_path):
    from sciconv._cli_predict_plan import segmentation_outputs

    mosaic, whole = tmp_path / "m.tif", tmp_path / "w.tif"
    planned = segmentation_outputs(
        [mosaic, whole], tmp_path / "o", format="ome-zarr", mosaics=[mosaic]
    )
    assert planned[mosaic] == {
        "image": tmp_path / "o" / "m.ome.zarr",
        "labels": tmp_path / "o" / "m.ome.zarr" / "labels" / "instances",
        "catalog": tmp_path / "o" / "m_catalog.ecsv",
    }
    assert planned[whole]["prob"] == tmp_path / "o" / "w.ome.zarr"


def test_mosaic_levels_reduce_as_the_tiff_pyramids_do(tmp_path):
    """The store's levels had their own halving: a blank (NaN) pixel blanked its whole 2 x 2
    block on every level, and odd sizes were trimmed (review). They reduce with
    sciconv.io._pyramid.halve now, NaN-aware, as the TIFF pyramids do."""
    import zarr

    from sciconv.io._pyramid import halve

    ids = zarr.create_array(str(tmp_path / "ids.zarr"), shape=(9, 7), dtype="int32")
    ids[2:6, 2:5] = 3
    image = np.arange(63, dtype=np.float32).reshape(9, 7)
    image[0, 0] = np.nan
    store = _zarr_mosaic.write_ome_zarr_mosaic(
        tmp_path / "m.ome.zarr", tmp_path / "ids.zarr", image, levels=3
    )
    root = zarr.open_group(str(store), mode="r")
    np.testing.assert_allclose(root["s1"][0], halve(image))
    np.testing.assert_allclose(root["s2"][0], halve(halve(image)))
    assert np.isfinite(root["s1"][0]).all()
    np.testing.assert_array_equal(root["labels/instances/s1"][:], halve(ids[:]))


def test_read_labels_takes_an_ome_zarr_store_or_label_image_and_refuses_an_image(tmp_path):
    """read_labels refused the store sciconv had just written ('a zarr group, not an array'):
    now a store with one label image, or the label image group, gives its full-resolution
    level; a store with several names them; an image's pixels are never read as labels."""
    store = tmp_path / "cells.ome.zarr"
    io.write_ome_zarr(store, np.arange(64 * 64, dtype="uint16").reshape(64, 64), levels=2)
    with pytest.raises(InvalidImageError, match=r"no label image \(an image's pixels"):
        io.read_labels(store)
    ids = np.zeros((64, 64), "int32")
    ids[5:20, 5:20], ids[30:60, 40:50] = 3, 16_777_217
    io.write_ome_zarr_labels(store, ids, name="nuclei")
    np.testing.assert_array_equal(io.read_labels(store), ids)
    np.testing.assert_array_equal(io.read_labels(store / "labels" / "nuclei"), ids)
    np.testing.assert_array_equal(np.asarray(io.read_labels(store, lazy=True)), ids)
    io.write_ome_zarr_labels(store, ids > 0, name="mask")

    def files():  # every file of the store and its bytes: reading changes none
        return {p: p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}

    before = files()
    with pytest.raises(InvalidImageError, match=r"2 label images \(labels/nuclei, labels/mask\)"):
        io.read_labels(store)
    assert files() == before
