"""Movies and Z-stacks keep their time and depth (QA 56): OME ``Plane/@DeltaT`` dates each frame,
OME-Zarr ``t``/``z`` scales give the frame interval and Z step (read, napari, products), and a
movie of one time point stays a movie."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from _helpers import run_cli
from astropy.table import Table

from sciconv import io
from sciconv.io._tiff_meta import frame_seconds
from sciconv.napari import napari_get_reader, read_layers

PAUSE = [0.0, 31.2, 600.4, 631.0]  # real acquisition times (s): a 9-minute pause after frame 1


@pytest.fixture(scope="module")
def frames(data_dir):
    """Four bundled real nuclei images (128 x 128 crops), the frames of a movie."""
    images = sorted((data_dir / "real" / "nuclei" / "images").glob("*.tif"))[:4]
    return np.stack([tifffile.imread(p)[:128, :128] for p in images])


def _ome(path, data, axes="TYX", **metadata):
    scale = {"PhysicalSizeX": 0.65, "PhysicalSizeY": 0.65}
    tifffile.imwrite(path, data, ome=True, metadata={"axes": axes, **scale, **metadata})
    return path


def _ngff(path, data, axes: str, units: dict, scale: list):
    """An NGFF 0.5 store of ``data`` with ``axes`` (``"tzyx"``), their ``units`` (NGFF names)
    and the level-0 ``scale`` (ome-zarr-py 0.18's writer drops units, so they are set after)."""
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("ome_zarr")
    from ome_zarr.writer import write_image

    group = zarr.open_group(path, mode="w")
    write_image(data, group, axes=axes, scaler=None)
    ome = dict(group.attrs["ome"])
    kinds = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
    multiscale = ome["multiscales"][0]
    multiscale["axes"] = [
        {"name": a, "type": kinds[a], **({"unit": units[a]} if a in units else {})} for a in axes
    ]
    multiscale["datasets"][0]["coordinateTransformations"] = [{"type": "scale", "scale": scale}]
    group.attrs["ome"] = ome
    return path


def test_ome_plane_delta_t_dates_each_frame(tmp_path):
    """The catalog's ``time`` was t x TimeIncrement: frames after a pause misdated by minutes,
    and a file with DeltaT only had no time at all."""
    data = np.zeros((4, 8, 8), np.uint16)
    dated = {"Plane": {"DeltaT": PAUSE, "DeltaTUnit": ["s"] * 4}}
    both = io.read(_ome(tmp_path / "both.ome.tif", data, TimeIncrement=30.0, **dated), stack=True)
    assert both.meta["time_interval"] == 30.0  # the nominal interval, as writers record it
    assert both.meta["frame_times"] == tuple(PAUSE)
    np.testing.assert_allclose(frame_seconds(both.meta, [0, 1, 2, 3, 2]), [*PAUSE, 600.4])
    only = io.read(_ome(tmp_path / "only.ome.tif", data, **dated), stack=True)
    assert only.meta["frame_times"] == tuple(PAUSE)
    assert only.meta["time_interval"] == pytest.approx(31.2)  # the median step between frames
    # regular dates in ms: the interval, no per-frame list
    ms = {"Plane": {"DeltaT": [0, 500, 1000, 1500], "DeltaTUnit": ["ms"] * 4}}
    regular = io.read(_ome(tmp_path / "ms.ome.tif", data, **ms), stack=True).meta
    assert regular["time_interval"] == 0.5 and "frame_times" not in regular
    np.testing.assert_allclose(frame_seconds(regular, [3]), [1.5])
    # a TZ movie: each frame dated by its first plane (Z=0), not by its later ones
    tz = np.zeros((2, 3, 8, 8), np.uint16)
    planes = {"Plane": {"DeltaT": [0, 1, 2, 60, 61, 62]}}
    meta = io.read(_ome(tmp_path / "tz.ome.tif", tz, "TZYX", TimeIncrement=30.0, **planes),
                   stack=True).meta  # fmt: skip
    assert meta["frame_times"] == (0.0, 60.0)
    plain = io.read(_ome(tmp_path / "plain.ome.tif", data, TimeIncrement=30.0), stack=True)
    assert "frame_times" not in plain.meta
    np.testing.assert_allclose(frame_seconds(plain.meta, [0, 3]), [0.0, 90.0])


def test_catalog_time_of_a_movie_with_a_pause(capsys, tmp_path, frames):
    """``sciconv predict``: the catalog's ``time`` is each frame's own time (DeltaT), with or
    without TimeIncrement (was 0, 30, 60, 90, and no column without TimeIncrement)."""
    dated = {"Plane": {"DeltaT": PAUSE, "DeltaTUnit": ["s"] * 4}}
    both = _ome(tmp_path / "both.ome.tif", frames, TimeIncrement=30.0, **dated)
    only = _ome(tmp_path / "only.ome.tif", frames, **dated)
    code, _, err = run_cli(capsys, "predict", "pretrained:nuclei", both, only,
                           "--out", tmp_path / "o", "--quiet")  # fmt: skip
    assert code == 0, err
    for name in ("both", "only"):
        catalog = Table.read(tmp_path / "o" / f"{name}_catalog.ecsv")
        assert catalog.colnames[:3] == ["t", "time", "label"], name
        assert set(catalog["t"]) == {0, 1, 2, 3}, name
        np.testing.assert_allclose(catalog["time"], np.take(PAUSE, catalog["t"]), err_msg=name)
        assert str(catalog["time"].unit) == "s"


def test_ome_zarr_time_and_depth_scales(tmp_path):
    """Only the x/y scale of an OME-Zarr store was read: its ``t`` and ``z`` scales, in their
    units, are the frame interval (s) and Z step (in the pixel unit, as a TIFF's)."""
    data = np.zeros((2, 3, 16, 16), np.uint16)
    units = {"t": "millisecond", "z": "nanometer", "y": "micrometer", "x": "micrometer"}
    store = _ngff(tmp_path / "tz.ome.zarr", data, "tzyx", units, [500.0, 2000.0, 0.5, 0.5])
    assert io.plane_axes(store) == ("TZ", (2, 3))
    meta = io.read(store, stack=True).meta
    assert meta["time_interval"] == pytest.approx(0.5)
    assert meta["z_spacing"] == pytest.approx(2.0) and meta["pixel_unit"] == "µm"
    assert meta["pixel_size"] == (0.5, 0.5)
    units = {"t": "minute", "y": "micrometer", "x": "micrometer"}
    minutes = _ngff(tmp_path / "t.ome.zarr", data[:, 0], "tyx", units, [2.0, 0.5, 0.5])
    assert io.read(minutes, stack=True).meta["time_interval"] == 120.0
    # scales in no unit (ome-zarr-py's default of 1) say nothing about time or depth
    bare = _ngff(tmp_path / "bare.ome.zarr", data, "tzyx", {}, [1.0, 1.0, 1.0, 1.0])
    meta = io.read(bare, stack=True).meta
    assert "time_interval" not in meta and "z_spacing" not in meta


def test_ome_zarr_multiscale_level_transforms_compose_with_the_datasets(tmp_path):
    """QA 56 review, finding 6: the multiscale-level ``coordinateTransformations`` (NGFF 0.4
    and 0.5 apply them after each dataset's) were ignored, so a 30 s / 2 um movie read as
    1 s / 1 um frames and planes, and its pixel size as the dataset's alone."""
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("ome_zarr")
    axes = [
        {"name": "t", "type": "time", "unit": "second"},
        {"name": "c", "type": "channel"},
        {"name": "z", "type": "space", "unit": "micrometer"},
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"},
    ]
    data = np.zeros((3, 1, 2, 32, 32), np.uint16)
    # NGFF 0.4 (zarr v2): a scale and a translation at both levels
    path = tmp_path / "movie04.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=2)
    group.create_array("0", data=data, chunks=(1, 1, 1, 32, 32))
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": axes,
            "datasets": [
                {
                    "path": "0",
                    "coordinateTransformations": [
                        {"type": "scale", "scale": [1.0, 1.0, 1.0, 0.25, 0.25]},
                        {"type": "translation", "translation": [0.0, 0.0, 0.0, 4.0, 4.0]},
                    ],
                }
            ],
            "coordinateTransformations": [{"type": "scale", "scale": [30.0, 1.0, 2.0, 2.0, 2.0]}],
        }
    ]
    meta = io.read(path, stack=True).meta
    assert meta["time_interval"] == pytest.approx(30.0)
    assert meta["z_spacing"] == pytest.approx(2.0)
    assert meta["pixel_size"] == pytest.approx((0.5, 0.5)) and meta["pixel_unit"] == "µm"
    # NGFF 0.5 ("ome" attributes): the same composition
    units = {"t": "second", "z": "micrometer", "y": "micrometer", "x": "micrometer"}
    store = _ngff(tmp_path / "movie05.ome.zarr", data[:, 0], "tzyx", units, [1, 1, 0.25, 0.25])
    group = zarr.open_group(store, mode="r+")
    ome = dict(group.attrs["ome"])
    ome["multiscales"][0]["coordinateTransformations"] = [
        {"type": "scale", "scale": [60.0, 3.0, 2.0, 2.0]}
    ]
    group.attrs["ome"] = ome
    meta = io.read(store, stack=True).meta
    assert meta["time_interval"] == pytest.approx(60.0)
    assert meta["z_spacing"] == pytest.approx(3.0)
    assert meta["pixel_size"] == pytest.approx((0.5, 0.5))


def test_products_of_an_ome_zarr_stack_keep_time_and_depth(capsys, tmp_path, frames):
    """A TZ OME-Zarr movie: the catalog gets ``time`` and ``z_phys`` beside ``t`` and ``z``, and
    the label stack written from it keeps its frame interval and Z step."""
    units = {"t": "second", "z": "micrometer", "y": "micrometer", "x": "micrometer"}
    store = _ngff(tmp_path / "tz.ome.zarr", frames.reshape(2, 2, 128, 128), "tzyx", units,
                  [30.0, 2.0, 0.65, 0.65])  # fmt: skip
    code, _, err = run_cli(capsys, "predict", "pretrained:nuclei", store, "--out",
                           tmp_path / "o", "--quiet")  # fmt: skip
    assert code == 0, err
    catalog = Table.read(tmp_path / "o" / "tz_catalog.ecsv")
    assert catalog.colnames[:5] == ["t", "time", "z", "z_phys", "label"]
    np.testing.assert_allclose(catalog["time"], catalog["t"] * 30.0)
    np.testing.assert_allclose(catalog["z_phys"], catalog["z"] * 2.0)
    labels = io.read(tmp_path / "o" / "tz_labels.tif", stack=True)
    assert io.plane_axes(tmp_path / "o" / "tz_labels.tif") == ("TZ", (2, 2))
    assert labels.meta["time_interval"] == 30.0 and labels.meta["z_spacing"] == 2.0
    assert labels.pixel_scale.x == pytest.approx(0.65)


def test_napari_opens_ome_zarr_stacks_with_their_scales(tmp_path):
    """napari's sciconv reader refused OME-Zarr movies and Z-stacks, and read_layers gave a
    Z-stack a Z scale of 1."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 1000, (3, 16, 16)).astype(np.uint16)
    units = {"z": "micrometer", "y": "micrometer", "x": "micrometer"}
    zstack = _ngff(tmp_path / "z.ome.zarr", data, "zyx", units, [2.0, 0.3, 0.3])
    assert napari_get_reader(str(zstack)) is read_layers
    [(layer, kwargs, kind)] = read_layers(zstack)
    assert kind == "image" and layer.shape == (3, 16, 16)
    np.testing.assert_array_equal(layer, data)
    assert kwargs["scale"] == pytest.approx((2.0, 0.3, 0.3)) and kwargs["units"] == "um"
    units = {"t": "second", "y": "micrometer", "x": "micrometer"}
    movie = _ngff(tmp_path / "t.ome.zarr", data, "tyx", units, [30.0, 0.3, 0.3])
    assert napari_get_reader(str(movie)) is read_layers
    [(layer, kwargs, _)] = read_layers(movie)
    assert layer.shape == (3, 16, 16) and kwargs["scale"] == pytest.approx((30.0, 0.3, 0.3))
    assert kwargs["units"] == ("s", "um", "um")


def test_a_movie_of_one_frame_stays_a_movie(capsys, tmp_path, frames):
    """A T=1 movie (an acquisition stopped after its first frame) was read as a 2-D image: no
    ``t``/``time`` columns, no frame interval in its products, so a batch's catalogs did not
    stack."""
    one = frames[:1]
    ome = _ome(tmp_path / "one.ome.tif", one, TimeIncrement=30.0)
    assert tifffile.TiffFile(ome).series[0].axes == "YX"  # tifffile drops the size-1 T
    assert io.plane_axes(ome) == ("T", (1,))
    ij = {"axes": "TYX", "finterval": 5.0}
    tifffile.imwrite(tmp_path / "ij.tif", one, imagej=True, metadata=ij)
    assert io.plane_axes(tmp_path / "ij.tif") == ("T", (1,))
    tifffile.imwrite(tmp_path / "shaped.tif", one, metadata={"axes": "TYX"})
    assert io.plane_axes(tmp_path / "shaped.tif") == ("T", (1,))
    units = {"t": "second", "y": "micrometer", "x": "micrometer"}
    store = _ngff(tmp_path / "one.ome.zarr", one, "tyx", units, [30.0, 0.65, 0.65])
    assert io.plane_axes(store) == ("T", (1,))
    # nothing says time: still one image (bioformats2raw writes every image as t, c, z, y, x)
    assert io.plane_axes(_ome(tmp_path / "image.ome.tif", one)) == ("", ())
    bare = _ngff(tmp_path / "image.ome.zarr", one[:, None, None], "tczyx", {}, [1.0] * 5)
    assert io.plane_axes(bare) == ("", ())
    two = _ome(tmp_path / "two.ome.tif", frames[:2], TimeIncrement=30.0)
    code, _, err = run_cli(capsys, "predict", "pretrained:nuclei", ome, two, "--out",
                           tmp_path / "o", "--quiet")  # fmt: skip
    assert code == 0, err
    tables = [Table.read(tmp_path / "o" / f"{s}_catalog.ecsv") for s in ("one", "two")]
    assert tables[0].colnames == tables[1].colnames  # a batch's catalogs line up
    assert tables[0].colnames[:3] == ["t", "time", "label"] and len(tables[0]) > 5
    assert set(tables[0]["t"]) == {0} and set(tables[0]["time"]) == {0.0}
    labels = tmp_path / "o" / "one_labels.ome.tif"
    assert io.plane_axes(labels) == ("T", (1,))
    assert io.read(labels, stack=True).meta["time_interval"] == 30.0
