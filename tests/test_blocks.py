"""Block-wise instances with stitching (sciconv.inference._blocks): seams, outputs, distributed."""

from __future__ import annotations

import json
import pickle
import warnings

import keras
import numpy as np
import pytest

from sciconv import io, postprocess
from sciconv.errors import InferenceError, OutputExistsError, SciconvWarning
from sciconv.inference import BlockPlan, predict_instances, predict_instances_blocks

FAST = dict(normalize=None, progress=False, blend="none")


def _threshold_model(name="threshold"):
    """A deterministic 'model': foreground probability sigmoid(2 x) (labels known from pixels)."""
    inputs = keras.Input((None, None, 1))
    logits = keras.layers.Conv2D(
        2, 1, kernel_initializer=keras.initializers.Constant([[[[-1.0, 1.0]]]])
    )(inputs)
    return keras.Model(inputs, keras.layers.Softmax()(logits), name=name)


@pytest.fixture(scope="module")
def model():
    return _threshold_model()


def _disc(image, cy, cx, r, value=5.0):
    yy, xx = np.ogrid[: image.shape[0], : image.shape[1]]
    image[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = value


def _same_up_to_renumbering(a, b, *, ties=0):
    """Equal labels up to renumbering; ``ties`` pixels may differ (exact watershed ties)."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    assert a.max() == b.max()
    counts = np.zeros((a.max() + 1, b.max() + 1), np.int64)
    np.add.at(counts, (a, b), 1)
    best = counts[1:].argmax(axis=1)  # each object's partner
    # one to one (no object split in two or merged with another), all but `ties` pixels agree
    assert sorted(best.tolist()) == list(range(1, b.max() + 1))
    assert a.size - counts[0, 0] - counts[1:][np.arange(a.max()), best].sum() <= ties


def _seam_image():
    """Objects on the seams of a 32-pixel block grid: isolated, touching pairs, a corner one."""
    image = np.zeros((96, 96), np.float32)
    image[28:37, 4:14] = 5  # isolated, across the row seam at y=32
    image[40:50, 60:69] = 5  # isolated, across the column seam at x=64
    image[58:70, 58:70] = 5  # on the corner (64, 64)
    _disc(image, 80, 27, 5)  # two discs touching on the seam x=32
    _disc(image, 80, 37, 5)
    _disc(image, 27, 80, 5)  # two discs touching across the seam y=32
    _disc(image, 37, 80, 5)
    return image


@pytest.mark.parametrize("method", ["connected", "watershed"])
def test_objects_on_block_seams_are_never_split(model, method):
    image = _seam_image()
    whole = predict_instances(model, image, method=method, min_size=4, **FAST)
    labels, table = predict_instances_blocks(
        model, image, block=32, margin=24, method=method, min_size=4, **FAST
    )
    expected = 7 if method == "watershed" else 5
    assert whole.max() == labels.max() == len(table) == expected
    # a pixel on an exact tie between two touching discs may be flooded differently
    _same_up_to_renumbering(labels, whole, ties=0 if method == "connected" else 2)
    assert table["label"].tolist() == list(range(1, expected + 1))
    np.testing.assert_array_equal(table["area"], np.bincount(labels.ravel())[1:])


def test_blockwise_equals_whole_image_on_random_blobs(model):
    rng = np.random.default_rng(3)
    image = np.zeros((128, 112), np.float32)
    for cy, cx, r in zip(
        rng.integers(0, 128, 40), rng.integers(0, 112, 40), rng.integers(3, 7, 40)
    ):
        _disc(image, cy, cx, r)
    whole = predict_instances(model, image, min_size=4, **FAST)
    labels, table = predict_instances_blocks(model, image, block=24, margin=28, min_size=4, **FAST)
    assert labels.dtype == np.int32 and labels.max() == whole.max() > 20
    _same_up_to_renumbering(labels, whole, ties=4)
    expected = postprocess.measure(labels, intensity=image)
    for name in ("label", "area", "x", "y", "bbox_xmin", "bbox_ymax", "flux_sum", "x_weighted"):
        np.testing.assert_allclose(table[name], expected[name], err_msg=name)


def test_objects_wider_than_the_margin_warn(model):
    image = np.zeros((64, 64), np.float32)
    image[10:14, 2:62] = 5  # a bar across every block: no window holds it whole
    with pytest.warns(SciconvWarning, match="margin"):
        labels = predict_instances_blocks(
            model, image, block=16, margin=4, catalog=False, method="connected", min_size=1, **FAST
        )
    assert (labels[10:14, 2:62] > 0).all() and labels.max() >= 2


def test_zarr_and_npy_outputs_round_trip_from_lazy_inputs(model, tmp_path):
    zarr = pytest.importorskip("zarr")
    image = _seam_image()
    expected = predict_instances_blocks(model, image, block=32, margin=24, catalog=False, **FAST)
    source = zarr.create_array(
        store=str(tmp_path / "in.zarr"), shape=image.shape, chunks=(32, 32), dtype="float32"
    )
    source[:] = image
    out = tmp_path / "labels.zarr"
    got = predict_instances_blocks(
        model, source, block=32, margin=24, catalog=False, out=out, **FAST
    )
    assert isinstance(got, zarr.Array) and got.dtype == np.int32
    np.testing.assert_array_equal(zarr.open_array(str(out), mode="r")[:], expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr", "labels.zarr"]  # no temp
    with pytest.raises(OutputExistsError, match=r"labels\.zarr"):
        predict_instances_blocks(model, source, block=32, margin=24, out=out, **FAST)
    np.save(tmp_path / "in.npy", image)
    memmap = np.load(tmp_path / "in.npy", mmap_mode="r")
    npy = predict_instances_blocks(
        model, memmap, block=32, margin=24, catalog=False, out=tmp_path / "labels.npy", **FAST
    )
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), expected)
    assert isinstance(npy, np.memmap)
    again = predict_instances_blocks(
        model, source, block=32, margin=24, catalog=False, out=out, overwrite=True, **FAST
    )
    np.testing.assert_array_equal(again[:], expected)


def test_bad_arguments_raise_before_prediction(model, tmp_path):
    image = np.zeros((40, 40), np.float32)
    with pytest.raises(InferenceError, match="block"):
        predict_instances_blocks(model, image, block=4, **FAST)
    with pytest.raises(InferenceError, match="margin"):
        predict_instances_blocks(model, image, block=16, margin=-1, **FAST)
    with pytest.raises(InferenceError, match=r"\.zarr"):
        predict_instances_blocks(model, image, block=16, margin=0, out=tmp_path / "x.tif", **FAST)
    with pytest.raises(InferenceError, match="scheduler"):
        predict_instances_blocks(model, image, block=16, margin=0, scheduler="processes", **FAST)


def test_block_plan_owner_is_unique():
    plan = BlockPlan((100, 100), block=32, margin=10)
    assert plan.owner((28, 28, 36, 36)) == (0, 0)  # centre (31, 31) in core (0, 0)
    assert plan.owner((30, 2, 60, 8)) == (1, 0)  # too tall for block 0's window: block 1 has it
    assert plan.owner((0, 0, 100, 100)) is None


def _lambda_model():
    inputs = keras.Input((None, None, 1))
    lam = keras.layers.Lambda(lambda t: t * 1.0)(inputs)
    logits = keras.layers.Conv2D(
        2, 1, kernel_initializer=keras.initializers.Constant([[[[-1.0, 1.0]]]])
    )(lam)
    return keras.Model(inputs, keras.layers.Softmax()(logits), name="with_lambda")


def test_worker_processes_load_lambda_models_only_with_trust(model):
    from sciconv.inference._dask import ModelHandle

    image = _seam_image()
    lambda_model = _lambda_model()

    def in_a_fresh_worker(handle):  # what a worker process gets: the pickled file, no live model
        shipped = pickle.loads(pickle.dumps(handle))
        ModelHandle._live.pop(shipped.key, None)
        return shipped

    refused = in_a_fresh_worker(ModelHandle(lambda_model))
    with pytest.raises(InferenceError, match=r"with_lambda.*trust=True"):
        refused.get()
    loaded = in_a_fresh_worker(ModelHandle(lambda_model, trust=True)).get()
    assert loaded is not lambda_model
    np.testing.assert_allclose(loaded(image[None, ..., None]), lambda_model(image[None, ..., None]))


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_distributed_run_is_identical(model, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    image = _seam_image()
    expected, table = predict_instances_blocks(model, image, block=48, margin=24, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's own start-up warnings
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    # files read lazily (a mosaic larger than memory): the workers open the file themselves
    from astropy.io import fits

    fits.writeto(tmp_path / "m.fits", image)
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "m.tif", image, tile=(32, 32), compression="zlib")
    with cluster, distributed.Client(cluster) as client:
        got, got_table = predict_instances_blocks(
            model, image, block=48, margin=24, scheduler=client, out=tmp_path / "l.zarr", **FAST
        )
        assert len(client.scheduler_info()["workers"]) == 2
        for name in ("m.fits", "m.tif"):
            lazy = io.read(tmp_path / name, lazy=True)
            from_file = predict_instances_blocks(
                model, lazy, block=48, margin=24, scheduler=client, catalog=False, **FAST
            )
            lazy.data.close()
            np.testing.assert_array_equal(from_file, expected)
        # a second pass scatters the model and image again: with the same keys, releasing the
        # first pass's copies raced with it (FutureCancelledError, 3 runs in 5)
        from test_second_pass import LEVEL, _faint_field, _threshold_model

        faint = _threshold_model(level=0.02, object_level=LEVEL)
        field = np.tile(_faint_field(), (2, 1))
        kw = dict(block=48, margin=24, catalog=False, progress=False)
        with pytest.warns(SciconvWarning, match="segmenting again"):
            here = predict_instances_blocks(faint, field, **kw)
        for _ in range(3):
            with pytest.warns(SciconvWarning, match="segmenting again"):
                there = predict_instances_blocks(faint, field, scheduler=client, **kw)
            np.testing.assert_array_equal(there, here)
    np.testing.assert_array_equal(got[:], expected)
    np.testing.assert_allclose(got_table["x"], table["x"])


def test_predict_instances_goes_block_by_block_when_asked(model, tmp_path):
    image = _seam_image()
    expected = predict_instances_blocks(model, image, block=32, catalog=False, **FAST)
    got = predict_instances(model, image, block=32, out=tmp_path / "l.npy", **FAST)
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(InferenceError, match="return_prob"):
        predict_instances(model, image, block=32, return_prob=True, **FAST)


# a noiseless mosaic: its error bars are unknown, said (asserted once below) at each run
@pytest.mark.filterwarnings("ignore:estimate_error. the background rms is 0:UserWarning")
def test_predict_mosaic_writes_zarr_labels_and_a_sky_catalog(model, tmp_path):
    pytest.importorskip("zarr")
    from astropy.io import fits
    from astropy.table import Table
    from astropy.wcs import WCS

    from sciconv.inference import predict_mosaic

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval, wcs.wcs.crpix, wcs.wcs.cdelt = [150.0, 2.0], [40.0, 50.0], [-1e-4, 1e-4]
    image = _seam_image()
    header = wcs.to_header()
    header["BUNIT"] = "ELECTRONS/S"  # HST's spelling: the catalog's fluxes carry it
    fits.writeto(tmp_path / "mosaic.fits", image, header)
    # a noiseless image in e-/s without EXPTIME: no error bar can be given (NaN, said once)
    with pytest.warns(SciconvWarning, match="rms is 0"):
        outs = predict_mosaic(
            model, tmp_path / "mosaic.fits", tmp_path / "out", block=32, margin=24, **FAST
        )
    import zarr

    labels = zarr.open_array(str(outs["labels"]), mode="r")[:]
    _same_up_to_renumbering(labels, predict_instances(model, image, **FAST), ties=2)
    got = Table.read(outs["catalog"])
    expected = postprocess.measure(labels, intensity=image, wcs=wcs)
    assert len(got) == labels.max() == 7
    np.testing.assert_allclose(got["ra"], expected["ra"], atol=1e-9)  # < 0.01 arcsec
    np.testing.assert_allclose(got["dec"], expected["dec"], atol=1e-9)
    assert str(got["flux_sum"].unit) == str(got["flux_mean"].unit) == "electron / s"
    # the label array carries the WCS: io.read gives it back (it was a bare array, which
    # io.read refused and which lost the sky coordinates of every large mosaic's labels)
    back = io.read(outs["labels"])
    np.testing.assert_array_equal(back.data[..., 0], labels)
    assert back.wcs is not None
    np.testing.assert_allclose(
        back.wcs.pixel_to_world_values(10.0, 20.0), wcs.pixel_to_world_values(10.0, 20.0)
    )
    part = io.read(outs["labels"], lazy=True)
    np.testing.assert_array_equal(np.asarray(part.data[5:9, 3:7])[..., 0], labels[5:9, 3:7])
    with pytest.raises(OutputExistsError, match="labels"):
        predict_mosaic(model, tmp_path / "mosaic.fits", tmp_path / "out", block=32, **FAST)
    # QuPath detections from the zarr labels, window by window, with the catalog's columns
    pytest.importorskip("shapely")
    outs = predict_mosaic(
        model, tmp_path / "mosaic.fits", tmp_path / "qp", block=32, margin=24, geojson=True, **FAST
    )
    assert outs["geojson"].name == "mosaic_objects.geojson"
    features = json.loads(outs["geojson"].read_text())["features"]
    whole = postprocess.labels_to_geojson(labels, measurements=Table.read(outs["catalog"]))
    assert features == whole["features"]
    assert {"ra deg", "dec deg", "area px^2"} <= set(features[0]["properties"]["measurements"])


def test_zarr_labels_keep_a_microscope_pixel_size(model, tmp_path):
    pytest.importorskip("zarr")
    image = io.GridImage(_seam_image()[..., None],
                         meta={"pixel_size": (0.325, 0.325), "pixel_unit": "µm"})  # fmt: skip
    predict_instances_blocks(model, image, block=32, out=tmp_path / "l.zarr", catalog=False, **FAST)
    back = io.read(tmp_path / "l.zarr")
    assert back.pixel_scale == io.PixelScale(0.325, 0.325, "um") and back.wcs is None
    assert "block-wise instance labels" in back.meta["history"][0]


def test_block_options_given_to_predict_instances_name_predict_instances_blocks(model):
    """predict_instances(block=..., scheduler=client) was refused as 'a post-processing keyword
    of predict_instances', naming neither the option's home nor what to do."""
    image = np.zeros((48, 48), np.float32)
    for key in ("scheduler", "margin", "catalog"):
        with pytest.raises(
            InferenceError, match=rf"^{key}= is an option of .*predict_instances_blocks"
        ):
            predict_instances(model, image, block=32, **{key: None}, **FAST)
    with pytest.raises(InferenceError, match=r"post-processing keyword .* got 'thresold'"):
        predict_instances(model, image, thresold=0.5, **FAST)


def test_block_catalog_of_a_float_array_with_nan_flags_as_measure_does(model):
    """A float array in memory with NaN pixels: the whole-image measure(mask="auto") flags the
    objects touching them, the block-wise catalog had no mask columns at all."""
    image = np.zeros((64, 64), np.float32)
    _disc(image, 20, 20, 5)
    _disc(image, 44, 44, 5)
    image[44, 50] = np.nan  # inside the second disc's edge
    labels, table = predict_instances_blocks(model, image, block=32, margin=16, min_size=4, **FAST)
    whole = postprocess.measure(np.asarray(labels), intensity=image)
    assert table["flag_masked"].tolist() == whole["flag_masked"].tolist() == [False, True]
    _, clean = predict_instances_blocks(
        model, np.nan_to_num(image), block=32, margin=16, min_size=4, **FAST
    )
    assert "flag_masked" not in clean.colnames  # as measure gives it without bad pixels


def test_block_catalog_of_a_radio_cube_plane_has_the_whole_image_columns(model, tmp_path):
    """QA: a Jy/beam map's block-wise catalog had no flux_density (the whole image's had), and
    neither said which plane of a cube (--channel K) it measured: both get the same columns,
    flux densities and the plane's velocity (the cube's CRPIX3 shifted to plane 2)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.crval, wcs.wcs.crpix, wcs.wcs.cdelt = [150.0, 2.0], [40.0, 50.0], [-1e-4, 1e-4]
    header = wcs.to_header()
    header.update({"BUNIT": "JY/BEAM", "BMAJ": 4e-4, "BMIN": 3e-4, "BPA": 0.0})
    header.update({"CTYPE3": "VRAD", "CRVAL3": 1000.0, "CDELT3": 5000.0, "CRPIX3": 1.0})
    header["CUNIT3"] = "m/s"
    plane = _seam_image()
    fits.writeto(tmp_path / "cube.fits", np.stack([plane * 0, plane * 0, plane]), header)
    image = io.read(tmp_path / "cube.fits").channel(2)
    labels, table = predict_instances_blocks(
        model,
        image,
        block=32,
        margin=24,
        background=False,
        **FAST,  # as measure() has none
    )
    whole = postprocess.measure(np.asarray(labels), intensity=image, wcs=image.wcs)
    # measure's columns, and each object's ranking score from its block's probabilities
    assert set(table.colnames) == set(whole.colnames) | {"score"}
    assert {"flux_density", "vrad"} <= set(table.colnames)
    assert table["vrad"].tolist() == [11000.0] * len(table) and str(table["vrad"].unit) == "m / s"
    np.testing.assert_allclose(table["flux_density"], whole["flux_density"], rtol=1e-5)
    assert table.meta["BEAMPIX"] == pytest.approx(whole.meta["BEAMPIX"])


def test_workers_paused_for_memory_are_named_not_waited_on_for_ever():
    """QA: 2 GB dask workers paused at 80 % of their limit under TensorFlow and the blocks
    waited silently for ever (9 min, no error). Small limits now get a warning, and a wait on
    workers that are all paused ends in an error naming the fix."""
    distributed = pytest.importorskip("distributed")
    from sciconv.inference._dask import worker_results

    class Waiting:
        def result(self, timeout=None):
            raise distributed.TimeoutError("still waiting")

        def release(self):
            pass

    class Done(Waiting):
        def result(self, timeout=None):
            return "block"

    class Cluster:
        status = "paused"
        cancelled = 0

        def cancel(self, futures):
            Cluster.cancelled = len(futures)

        def scheduler_info(self, n_workers=5):
            worker = {"memory_limit": 2 * 10**9, "status": self.status}
            return {"workers": {"tcp://a": worker, "tcp://b": dict(worker)}}

    cluster = Cluster()
    with pytest.warns(SciconvWarning, match=r"memory limits of 1\.9 GiB.*at least 3\.0 GiB"):
        with pytest.raises(InferenceError, match=r"every dask worker \(2\) is paused for memory"):
            list(worker_results(cluster, [Done(), Waiting(), Waiting()], patience=0.01))
    assert Cluster.cancelled == 2  # the blocks not run are not left queued
    cluster.status = "running"
    with pytest.warns(SciconvWarning, match="memory limits"):
        assert list(worker_results(cluster, [Done(), Done()], patience=0.01)) == ["block"] * 2
