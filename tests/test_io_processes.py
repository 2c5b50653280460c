"""Images handed to worker processes (multiprocessing pools, ProcessPoolExecutor): the same
pixels as in the parent (QA procs: a lazy tiled TIFF inherited by forked workers read 9-32 of
480 windows wrong, an OME-Zarr read hung in them, an in-memory lazy image did not pickle)."""

from __future__ import annotations

import multiprocessing
import os
import pickle

import numpy as np
import pytest
import tifffile

from sciconv import io


def _window_in_child(args):
    img, ys, xs = args
    got = img.data[ys, xs, 0]
    return got, img.data._pid == os.getpid()


def test_a_lazy_tiled_tiff_inherited_by_a_forked_worker_opens_its_own_file(tmp_path):
    data = np.arange(256 * 256, dtype=np.uint16).reshape(256, 256)
    tifffile.imwrite(tmp_path / "slide.tif", data, tile=(64, 64), compression="zlib")
    img = io.read(tmp_path / "slide.tif", lazy=True)
    assert img.data[0:4, 0:4, 0].tolist() == data[0:4, 0:4].tolist()  # the parent's file open
    ctx = multiprocessing.get_context("fork")  # no TensorFlow in the child: only file reads
    with ctx.Pool(2) as pool:
        jobs = [(img, slice(y, y + 64), slice(x, x + 64)) for y in (0, 100) for x in (0, 150)]
        results = pool.map_async(_window_in_child, jobs).get(timeout=120)
    for (_, ys, xs), (got, own) in zip(jobs, results, strict=True):
        np.testing.assert_array_equal(got, data[ys, xs])
        assert own  # the child reopened the file: no shared position with the parent
    img.data.close()


def test_an_in_memory_lazy_image_pickles_with_its_pixels(data_dir):
    path = sorted((data_dir / "real" / "nuclei" / "images").glob("*.tif"))[0]
    img = io.read(path, lazy=True)  # a one-strip compressed TIFF: decoded into memory
    back = pickle.loads(pickle.dumps(img))
    np.testing.assert_array_equal(back.data[5:20, 7:30], img.data[5:20, 7:30])


def test_ome_zarr_reads_compute_in_the_calling_thread(tmp_path):
    pytest.importorskip("ome_zarr")
    import dask

    store = io.write_ome_zarr(tmp_path / "a.ome.zarr", np.ones((32, 32), np.float32), levels=1)

    def no_pool(*args, **kwargs):  # a forked parent's pool has no threads in the child: a hang
        raise AssertionError("dask's default scheduler was used")

    with dask.config.set(scheduler=no_pool):
        assert float(io.read(store).data.mean()) == 1.0
        assert float(io.read(store, lazy=True).data[4:8, 4:8].mean()) == 1.0


def test_a_model_path_given_for_a_model_names_the_loader():
    from sciconv import inference
    from sciconv.errors import SciconvError

    with pytest.raises(SciconvError, match=r"got str \(a file\? load it: sciconv\.models\.load"):
        inference.predict_instances("runs/best.keras", np.zeros((16, 16)), progress=False)
