"""Movies and Z-stacks: the T/Z axes a TIFF declares (io.plane_axes), stacks written back
(io.write(stack_axes=), write_products(stack_axes=)), and sciconv predict segmenting them plane by
plane instead of reading three planes as the channels of an RGB image."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile
from _helpers import assert_one_line_error, run_cli
from astropy.table import Table

from sciconv import io, postprocess
from sciconv.errors import ConfigError, InvalidImageError, SciconvWarning


def test_plane_axes_only_where_the_metadata_declare_them(tmp_path):
    planes = np.zeros((3, 8, 9), np.uint16)
    cases = {
        "tyx.tif": (dict(metadata={"axes": "TYX"}), ("T", (3,))),
        "zyx.tif": (dict(metadata={"axes": "ZYX"}), ("Z", (3,))),
        "ij_zcyx.tif": (
            dict(data=np.zeros((3, 2, 8, 9), np.uint16), imagej=True, metadata={"axes": "ZCYX"}),
            ("Z", (3,)),
        ),
        "tzyx.ome.tif": (
            dict(data=np.zeros((3, 2, 8, 9), np.uint16), metadata={"axes": "TZYX"}),
            ("TZ", (3, 2)),
        ),
        "one_z.tif": (
            dict(data=np.zeros((1, 8, 9), np.uint16), metadata={"axes": "ZYX"}),
            ("", ()),
        ),
        "cyx.tif": (dict(metadata={"axes": "CYX"}), ("", ())),
        "ij_plain.tif": (dict(imagej=True), ("", ())),  # ImageJ without axes: channels
    }
    for name, (kwargs, expected) in cases.items():
        data = kwargs.pop("data", planes)
        tifffile.imwrite(tmp_path / name, data, **kwargs)
        assert io.plane_axes(tmp_path / name) == expected, name
    with tifffile.TiffWriter(tmp_path / "pages.tif") as w:  # plain pages: kind unknown (I)
        for page in planes:
            w.write(page, metadata=None)
    assert io.plane_axes(tmp_path / "pages.tif") == ("", ())
    io.write(tmp_path / "cube.fits", np.zeros((8, 9, 3), np.float32))
    assert io.plane_axes(tmp_path / "cube.fits") == ("", ())
    with pytest.raises(InvalidImageError, match=r"missing\.tif: file not found"):
        io.plane_axes(tmp_path / "missing.tif")


def test_write_stack_axes_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 50, (2, 3, 8, 9)).astype(np.int32)
    p = io.write(tmp_path / "labels.tif", labels, stack_axes="TZ")
    assert io.plane_axes(p) == ("TZ", (2, 3))
    back = io.read(p, stack=True)
    assert back.meta["dtype"] == "int32"
    np.testing.assert_array_equal(back.data[..., 0], labels.reshape(6, 8, 9))
    prob = rng.random((4, 8, 9, 3)).astype(np.float32)
    p = io.write(tmp_path / "prob.tif", prob, stack_axes="T")
    assert tifffile.TiffFile(p).series[0].axes == "TCYX"
    np.testing.assert_array_equal(io.read(p, stack=True).data, prob)
    # OME-TIFF keeps the source's pixel size and Z step
    source = io.GridImage(
        np.zeros((8, 9, 1), np.float32), meta={"pixel_size": (0.5, 0.25), "z_spacing": 2.0}
    )
    p = io.write(tmp_path / "z.ome.tif", labels[0], stack_axes="Z", like=source)
    back = io.read(p, stack=True)
    assert back.meta["pixel_size"] == (0.5, 0.25) and back.meta["z_spacing"] == 2.0
    assert io.plane_axes(p) == ("Z", (3,))
    for bad in ("Q", "TT", "YX"):
        with pytest.raises(ConfigError, match="stack_axes must be distinct letters of 'TZ'"):
            io.write(tmp_path / "x.tif", labels, stack_axes=bad)
    with pytest.raises(ConfigError, match=r"x\.fits: stack_axes= is written to TIFF"):
        io.write(tmp_path / "x.fits", labels[0], stack_axes="Z")
    with pytest.raises(InvalidImageError, match=r"x\.tif: array must be \(1 stack axes, H, W"):
        io.write(tmp_path / "x.tif", labels[0, 0], stack_axes="Z")
    assert not (tmp_path / "x.tif").exists() and not (tmp_path / "x.fits").exists()


def test_write_products_of_a_stack(tmp_path):
    rng = np.random.default_rng(1)
    prob = rng.random((3, 8, 9, 3)).astype(np.float32)
    labels = rng.integers(0, 5, (3, 8, 9)).astype(np.int32)
    bad = np.zeros((3, 8, 9), bool)
    bad[1, 0, 0] = True
    out = postprocess.write_products(
        tmp_path,
        prob=prob,
        labels=labels,
        mask=bad,
        uncertainty=np.full_like(prob, 0.1),
        format="tiff",
        stack_axes="T",
    )
    for key, axes in (("prob", "TCYX"), ("labels", "TYX"), ("mask", "TYX"), ("uncert", "TCYX")):
        assert tifffile.TiffFile(out[key]).series[0].axes == axes, key
    np.testing.assert_array_equal(io.read(out["labels"], stack=True).data[..., 0], labels)
    np.testing.assert_array_equal(io.read(out["prob"], stack=True).data, prob)
    np.testing.assert_array_equal(io.read(out["mask"], stack=True).data[..., 0], bad)
    with pytest.raises(
        InvalidImageError, match="labels are 2 x 8 x 9 pixels but prob is 3 x 8 x 9"
    ):
        postprocess.write_products(
            tmp_path / "b", prob=prob, labels=labels[:2], format="tiff", stack_axes="T"
        )
    with pytest.raises(InvalidImageError, match=r"stack product must have shape \(3,\)"):
        postprocess.write_products(
            tmp_path / "c", labels=labels, mask=bad[:2], format="tiff", stack_axes="T"
        )
    with pytest.raises(ConfigError, match=r"stack products .* TIFF or OME-TIFF; got format='fits'"):
        postprocess.write_products(tmp_path / "d", labels=labels, stack_axes="T")
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


@pytest.fixture(scope="module")
def movie(tmp_path_factory, data_dir):
    """Three real bundled nuclei images (256 x 256 crops) as the frames of a TYX movie, and each
    frame as a file of its own."""
    folder = tmp_path_factory.mktemp("movie")
    images = sorted((data_dir / "real" / "nuclei" / "images").glob("*.tif"))[:3]
    frames = [tifffile.imread(p)[:256, :256] for p in images]
    truth = [tifffile.imread(p.parent.parent / "labels" / p.name)[:256, :256] for p in images]
    assert all(f.ndim == 2 and f.shape == (256, 256) for f in frames)
    for i, frame in enumerate(frames):
        tifffile.imwrite(folder / f"frame{i}.tif", frame)
    tifffile.imwrite(folder / "movie.tif", np.stack(frames), metadata={"axes": "TYX"})
    return folder, np.stack(frames), np.stack(truth)


def test_predict_segments_a_movie_frame_by_frame(capsys, tmp_path, movie):
    """Three frames used to be read as the R, G, B of one image; now each frame is segmented
    alone, exactly as the same frame saved as a file of its own, into TIFF stacks and one
    catalog with a t column."""
    from astropy.table import Table

    from sciconv import metrics

    folder, _, truth = movie
    before = (folder / "movie.tif").read_bytes()
    code, out, err = run_cli(
        capsys, "predict", "pretrained:nuclei", folder / "movie.tif", "--out", tmp_path / "m"
    )
    assert code == 0, err
    assert "movie.tif: 3 T planes" in out
    assert "not linked over Z" not in out  # a movie's frames are separate scenes in time
    singles = [folder / f"frame{i}.tif" for i in range(3)]
    code, _, err = run_cli(
        capsys, "predict", "pretrained:nuclei", *singles, "--out", tmp_path / "s", "--quiet"
    )
    assert code == 0, err
    labels = tmp_path / "m" / "movie_labels.tif"
    assert io.plane_axes(labels) == ("T", (3,))
    # the planes' scratch memory maps are gone: only the products remain
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "movie_catalog.ecsv",
        "movie_labels.tif",
        "movie_prob.tif",
    ]
    stack = io.read(labels, stack=True).data[..., 0]
    prob = io.read(tmp_path / "m" / "movie_prob.tif", stack=True).data
    assert prob.shape == (3, 256, 256, 3)
    catalog = Table.read(tmp_path / "m" / "movie_catalog.ecsv")
    assert catalog.colnames[:2] == ["t", "label"] and catalog.meta["stack_axes"] == "T"
    # a plain run's catalog ranks its objects too (QA 56: only --uncertainty runs had a score,
    # at 8 model passes); no spread, no uncertainty column
    assert "score" in catalog.colnames and "uncertainty" not in catalog.colnames
    floor = catalog["score"].meta["threshold"]
    assert 0 < floor < 1 and np.all(catalog["score"] >= floor - 1e-6)
    for i in range(3):
        alone = io.read(tmp_path / "s" / f"frame{i}_labels.tif").data[..., 0]
        np.testing.assert_array_equal(stack[i], alone)
        # real nuclei found in every frame (read as the R, G, B of one image: F1 0.02-0.08)
        assert metrics.matching(truth[i], stack[i].astype(np.int32))["f1"] > 0.8
        rows = catalog[catalog["t"] == i]
        assert sorted(rows["label"]) == list(range(1, int(stack[i].max()) + 1))
    assert (folder / "movie.tif").read_bytes() == before


def test_predict_z_stack_with_channels_and_refusals(capsys, tmp_path, movie):
    folder, frames, _ = movie
    membrane = (frames > np.percentile(frames, 90)).astype(np.uint8) * 40
    zc = tmp_path / "zc.tif"
    tifffile.imwrite(
        zc, np.stack([frames, membrane], axis=1), imagej=True, metadata={"axes": "ZCYX"}
    )
    common = ("predict", "pretrained:nuclei", zc, "--quiet")
    code, _, err = run_cli(capsys, *common, "--out", tmp_path / "a")
    assert code != 0
    assert_one_line_error(err, "zc.tif", "plane Z=0", "2 separate channels (0, 1)", "--channel K")
    code, out, err = run_cli(
        capsys, *common[:-1], "--out", tmp_path / "b", "--channel", "0"
    )  # not --quiet: the summary line
    assert code == 0, err
    # a Z-stack's row count is of cross-sections, not of nuclei (QA 56): the summary says so
    assert "3 Z planes" in out and "not linked over Z" in out
    code, _, err = run_cli(
        capsys,
        "predict",
        "pretrained:nuclei",
        folder / "frame1.tif",
        "--quiet",
        "--out",
        tmp_path / "c",
    )
    assert code == 0, err
    np.testing.assert_array_equal(
        io.read(tmp_path / "b" / "zc_labels.tif", stack=True).data[1, ..., 0],
        io.read(tmp_path / "c" / "frame1_labels.tif").data[..., 0],
    )
    for extra in (("--regions", "ellipse"), ("--format", "fits"), ("--block", "1024")):
        code, _, err = run_cli(capsys, *common, "--channel", "0", "--out", tmp_path / "d", *extra)
        assert code != 0, extra
        assert_one_line_error(err, "zc.tif", "3 Z planes", "plane by plane")


def test_ome_zarr_movie_and_image_go_through_the_command_line(capsys, tmp_path, movie):
    """An OME-Zarr store is one input (it was taken as a folder of files: "holds no image
    files"); NGFF t/z axes make it a stack, segmented as the same frames in a TIFF movie."""
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("ome_zarr")
    from ome_zarr.writer import write_image

    folder, frames, _ = movie
    store = tmp_path / "movie.ome.zarr"
    write_image(frames, zarr.open_group(store, mode="w"), axes="tyx")
    assert io.plane_axes(store) == ("T", (3,))
    code, _, err = run_cli(
        capsys,
        "predict",
        "pretrained:nuclei",
        store,
        folder / "movie.tif",
        "--out",
        tmp_path / "o",
        "--quiet",
    )
    assert code != 0  # two inputs named "movie"
    assert_one_line_error(err, "two inputs share the name 'movie'")
    code, _, err = run_cli(
        capsys, "predict", "pretrained:nuclei", store, "--out", tmp_path / "z", "--quiet"
    )
    assert code == 0, err
    code, _, err = run_cli(
        capsys,
        "predict",
        "pretrained:nuclei",
        folder / "movie.tif",
        "--out",
        tmp_path / "t",
        "--quiet",
    )
    assert code == 0, err
    np.testing.assert_array_equal(
        io.read(tmp_path / "z" / "movie_labels.tif", stack=True).data,
        io.read(tmp_path / "t" / "movie_labels.tif", stack=True).data,
    )
    single = tmp_path / "frame.ome.zarr"  # one 2-D image: the frame's labels
    write_image(frames[1], zarr.open_group(single, mode="w"), axes="yx")
    code, _, err = run_cli(
        capsys, "predict", "pretrained:nuclei", single, "--out", tmp_path / "s", "--quiet"
    )
    assert code == 0, err
    np.testing.assert_array_equal(
        io.read(tmp_path / "s" / "frame_labels.tif").data[..., 0],
        io.read(tmp_path / "t" / "movie_labels.tif", stack=True).data[1, ..., 0],
    )


def test_predict_stack_decides_the_object_size_once(capsys, tmp_path, enlarged_real_nuclei):
    """--object-size auto on a movie: one decision from the objects of all planes, so every
    frame is segmented at the same scale and the user is warned once. Here the frames are real
    nuclei shrunk to 0.4x, and the second frame keeps only three nuclei, too few for a decision
    of its own (segmented plane by plane, it stayed at the wrong scale)."""
    import re
    import warnings

    from sciconv import metrics
    from sciconv.errors import SciconvWarning

    (_, a, truth_a), (_, b, truth_b) = enlarged_real_nuclei(2, 0.4)
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    a, truth_a, b, truth_b = a[:h, :w], truth_a[:h, :w], b[:h, :w], truth_b[:h, :w]
    ids = [i for i in np.unique(truth_b) if i][:3]
    sparse = np.where(np.isin(truth_b, ids) | (truth_b == 0), b, np.median(b[truth_b == 0]))
    sparse_truth = np.where(np.isin(truth_b, ids), truth_b, 0)
    movie = tmp_path / "movie.tif"
    tifffile.imwrite(movie, np.stack([a, sparse]).astype(np.float32), metadata={"axes": "TYX"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = run_cli(
            capsys, "predict", "pretrained:nuclei", movie, "--out", tmp_path / "m", "--quiet"
        )
    assert code == 0, err
    said = [str(c.message) for c in caught if issubclass(c.category, SciconvWarning)]
    assert len(said) == 1 and "its 2 planes" in said[0], said
    factor = float(re.search(r"resampled by ([0-9.]+)", said[0]).group(1))
    assert 2.0 < factor < 3.5  # back to the training size from 0.4x
    stack = io.read(tmp_path / "m" / "movie_labels.tif", stack=True).data[..., 0]
    for i, (frame, truth) in enumerate(((a, truth_a), (sparse, sparse_truth))):
        tifffile.imwrite(tmp_path / f"f{i}.tif", frame.astype(np.float32))
        code, _, err = run_cli(
            capsys, "predict", "pretrained:nuclei", tmp_path / f"f{i}.tif", "--quiet",
            "--out", tmp_path / f"s{i}", "--scale", str(factor), "--object-size", "none",
        )  # fmt: skip
        assert code == 0, err
        alone = io.read(tmp_path / f"s{i}" / f"f{i}_labels.tif").data[..., 0]
        np.testing.assert_array_equal(stack[i], alone)  # every plane at the one factor
        assert metrics.matching(truth, stack[i].astype(np.int32))["f1"] > 0.75


def test_ome_zarr_movie_with_channels_is_a_stack(capsys, tmp_path, movie):
    """A TCYX store (the usual NGFF layout: time, channel, y, x) is a movie whose nuclear stain
    ``--channel`` picks; ``plane_axes`` raised "pass stack=True" on it (from the pixel reader),
    so ``sciconv predict`` refused it. Its frames segment as the TIFF movie's do."""
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("ome_zarr")
    from ome_zarr.writer import write_image

    folder, frames, _ = movie
    other = (frames[:, ::-1] // 2).astype(frames.dtype)  # a second stain
    store = tmp_path / "tcyx.ome.zarr"
    write_image(np.stack([frames, other], axis=1), zarr.open_group(store, mode="w"), axes="tcyx")
    assert io.plane_axes(store) == ("T", (3,))
    with pytest.raises(InvalidImageError, match=r"tcyx\.ome\.zarr: OME-Zarr axes 'TCYX'"):
        io.read(store)  # more than channels
    code, _, err = run_cli(
        capsys, "predict", "pretrained:nuclei", store, "--channel", "0", "--out",
        tmp_path / "z", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(
        capsys, "predict", "pretrained:nuclei", folder / "movie.tif", "--out", tmp_path / "t",
        "--quiet",
    )  # fmt: skip
    assert code == 0, err
    np.testing.assert_array_equal(
        io.read(tmp_path / "z" / "tcyx_labels.tif", stack=True).data,
        io.read(tmp_path / "t" / "movie_labels.tif", stack=True).data,
    )


def test_read_refuses_a_movie_as_channels(tmp_path, movie):
    """``io.read`` of a TYX movie gave its frames as the channels of one image, and
    ``predict_instances`` then segmented their blend (AP@0.5 0.08 against 0.8 per frame) without
    a word; now it says to read a stack, and ``axes=`` still takes the planes as channels."""
    folder, frames, _ = movie
    before = (folder / "movie.tif").read_bytes()
    with pytest.raises(InvalidImageError, match=r"movie\.tif: .*'TYX'.*3 T planes.*stack=True"):
        io.read(folder / "movie.tif")
    assert (folder / "movie.tif").read_bytes() == before
    np.testing.assert_array_equal(
        io.read(folder / "movie.tif", axes="CYX").data, np.moveaxis(frames, 0, -1)
    )
    np.testing.assert_array_equal(io.read(folder / "movie.tif", stack=True).data[..., 0], frames)


def test_tiff_products_keep_the_microscope_pixel_size(capsys, tmp_path, movie):
    """The catalog had µm columns but the label and probability TIFFs were written without a
    pixel size (Fiji, QuPath and napari opened them in pixels); now they carry it, for a single
    image and for a movie. An OME-TIFF input gives OME-TIFF products (the pixel size in OME-XML;
    they were plain TIFF), a plain TIFF input plain TIFF (resolution tags)."""
    _, frames, _ = movie
    scale = {"PhysicalSizeX": 0.325, "PhysicalSizeY": 0.65}
    tifffile.imwrite(tmp_path / "one.ome.tif", frames[0], metadata={"axes": "YX", **scale})
    tifffile.imwrite(tmp_path / "mov.ome.tif", frames, metadata={"axes": "TYX", **scale})
    for name in ("one", "mov"):
        code, _, err = run_cli(
            capsys, "predict", "pretrained:nuclei", tmp_path / f"{name}.ome.tif", "--out",
            tmp_path / "o", "--quiet",
        )  # fmt: skip
        assert code == 0, err
        for product in ("labels", "prob"):
            path = tmp_path / "o" / f"{name}_{product}.ome.tif"
            with tifffile.TiffFile(path) as tif:
                assert tif.is_ome, path
                assert tif.series[0].axes[0] == ("T" if name == "mov" else "YC"[product == "prob"])
            img = io.read(path, stack=name == "mov")
            s = img.pixel_scale
            assert s is not None, (name, product)
            assert (round(s.y, 6), round(s.x, 6), s.unit) == (0.65, 0.325, "um"), (name, product)
    tifffile.imwrite(tmp_path / "plain.tif", frames[0], resolution=(1 / 0.325, 1 / 0.65))
    code, _, err = run_cli(
        capsys, "predict", "pretrained:nuclei", tmp_path / "plain.tif", "--out", tmp_path / "o",
        "--quiet",
    )  # fmt: skip
    assert code == 0, err
    with tifffile.TiffFile(tmp_path / "o" / "plain_labels.tif") as tif:
        assert not tif.is_ome


def test_plain_tiff_products_of_an_imagej_z_stack_keep_its_z_step(capsys, tmp_path, movie):
    """An ImageJ Z-stack (spacing 2 µm) gave label and probability TIFFs without the Z step:
    napari put the labels at Z scale 1 over the image's 2 (QA). The step is now in the plain
    TIFF's description, read back as ``z_spacing``; --format ome-tiff keeps it in OME-XML."""
    from sciconv.napari import read_layers

    _, frames, _ = movie
    path = tmp_path / "z.tif"
    tifffile.imwrite(
        path,
        frames[:, None],
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"axes": "ZCYX", "spacing": 2.0, "unit": "um"},
    )
    assert io.read(path, stack=True).meta["z_spacing"] == 2.0
    for fmt, suffix in (("tiff", ".tif"), ("ome-tiff", ".ome.tif")):
        code, _, err = run_cli(capsys, "predict", "pretrained:nuclei", path, "--out",
                               tmp_path / fmt, "--format", fmt, "--quiet")  # fmt: skip
        assert code == 0, err
        for product in ("labels", "prob"):
            out = tmp_path / fmt / f"z_{product}{suffix}"
            img = io.read(out, stack=True)
            assert img.meta["z_spacing"] == pytest.approx(2.0), out
            assert img.pixel_scale.x == pytest.approx(0.5), out
        [(_, kwargs, _)] = read_layers(tmp_path / fmt / f"z_labels{suffix}")
        assert kwargs["scale"] == pytest.approx((2.0, 0.5, 0.5))


def test_products_of_an_imagej_movie_are_imagej_hyperstacks_with_its_frame_interval(
    capsys, tmp_path, movie
):
    """QA: an ImageJ stack's products were tifffile "shaped" TIFFs, which Fiji opens as a flat
    run of slices (T and Z lost, the Z step only in sciconv's own description), and the frame
    interval (ImageJ finterval, OME TimeIncrement) was dropped from every product."""
    _, frames, _ = movie
    path = tmp_path / "t.tif"
    tifffile.imwrite(
        path, frames, imagej=True, resolution=(2.0, 2.0),
        metadata={"axes": "TYX", "finterval": 30.0, "unit": "um"},
    )  # fmt: skip
    assert io.read(path, stack=True).meta["time_interval"] == 30.0
    args = ["predict", "pretrained:nuclei", path, "--out", tmp_path / "o", "--quiet"]
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    for product, dtype in (("labels", "uint16"), ("prob", "float32")):
        with tifffile.TiffFile(tmp_path / "o" / f"t_{product}.tif") as tif:
            assert tif.is_imagej and tif.series[0].axes.startswith("T"), product
            ij = tif.imagej_metadata
            assert (ij["frames"], ij["finterval"], ij["unit"]) == (3, 30.0, "um"), product
            assert tif.series[0].dtype == dtype
            assert "model_id" in ij["Info"]  # the history, where --skip-existing reads it
    labels = io.read(tmp_path / "o" / "t_labels.tif", stack=True)
    assert labels.meta["time_interval"] == 30.0 and labels.pixel_scale.x == pytest.approx(0.5)
    catalog = Table.read(tmp_path / "o" / "t_catalog.ecsv")  # the time of each object's frame
    np.testing.assert_array_equal(catalog["time"], catalog["t"] * 30.0)
    assert str(catalog["time"].unit) == "s" and set(catalog["t"]) == {0, 1, 2}
    assert labels.data.max() > 10
    before = (tmp_path / "o" / "t_labels.tif").stat().st_mtime_ns
    code, _, err = run_cli(capsys, *args, "--skip-existing")
    assert code == 0, err
    assert (tmp_path / "o" / "t_labels.tif").stat().st_mtime_ns == before  # recognised as done
    code, _, err = run_cli(capsys, *args[:-1], "--format", "ome-tiff", "--quiet", "--out",
                           tmp_path / "ome")  # fmt: skip
    assert code == 0, err
    assert io.read(tmp_path / "ome" / "t_labels.ome.tif", stack=True).meta["time_interval"] == 30


def test_a_three_plane_stack_saved_as_planar_rgb_is_named(tmp_path):
    """tifffile.imwrite of a (3, H, W) Z-stack without axes stores planar RGB: sciconv read it
    as one colour image without a word (the CLI wrote one label image, AP 0.00 / 0.58 / 0.02
    against the planes)."""
    stack = np.random.default_rng(0).integers(0, 255, (3, 32, 40), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # tifffile's own, at writing
        tifffile.imwrite(tmp_path / "z3.tif", stack)
    with pytest.warns(SciconvWarning, match=r"3 planes of 32x40 px .* planar RGB .* 'ZYX'"):
        image = io.read(tmp_path / "z3.tif")
    assert image.shape == (32, 40, 3)
    tifffile.imwrite(tmp_path / "zyx.tif", stack, metadata={"axes": "ZYX"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciconvWarning)
        assert io.read(tmp_path / "zyx.tif", stack=True).data.shape[0] == 3
    rgb = np.moveaxis(stack, 0, -1).copy()  # an RGB image as tifffile stores it by default
    tifffile.imwrite(tmp_path / "rgb.tif", rgb)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciconvWarning)
        assert io.read(tmp_path / "rgb.tif").shape == (32, 40, 3)


def test_predict_movie_with_an_all_nan_frame_writes_every_frame(capsys, tmp_path, movie):
    """QA 56: one all-NaN frame (dropped, or registration padding) failed the whole movie with
    "plane T=1: normalization limits are not finite" and wrote nothing. Now: exit 0, that frame
    labels 0, probabilities NaN, masked, no catalog rows, one warning naming it; the other
    frames are the same frames' own runs."""
    folder, frames, _ = movie
    blank = frames.astype(np.float32)
    blank[1] = np.nan
    tifffile.imwrite(tmp_path / "gap.tif", blank, metadata={"axes": "TYX"})
    with pytest.warns(SciconvWarning) as caught:
        code, _, err = run_cli(
            capsys, "predict", "pretrained:nuclei", tmp_path / "gap.tif", "--out", tmp_path / "m",
            "--quiet",
        )  # fmt: skip
    assert code == 0, err
    said = [str(w.message) for w in caught if "no finite pixel" in str(w.message)]
    assert len(said) == 1 and "plane T=1: no finite pixel" in said[0], said
    out = tmp_path / "m"
    assert sorted(p.name for p in out.iterdir()) == [
        "gap_catalog.ecsv", "gap_labels.tif", "gap_mask.tif", "gap_prob.tif",
    ]  # fmt: skip
    labels = io.read(out / "gap_labels.tif", stack=True).data[..., 0]
    prob = io.read(out / "gap_prob.tif", stack=True).data
    mask = tifffile.imread(out / "gap_mask.tif").astype(bool)
    assert labels.shape == (3, 256, 256) and not labels[1].any()
    assert np.isnan(prob[1]).all() and not np.isnan(prob[0]).any()
    assert mask[1].all() and not mask[0].any() and not mask[2].any()
    catalog = Table.read(out / "gap_catalog.ecsv")
    assert sorted(set(catalog["t"].tolist())) == [0, 2]
    for t in (0, 2):
        code, _, err = run_cli(
            capsys, "predict", "pretrained:nuclei", folder / f"frame{t}.tif", "--quiet",
            "--out", tmp_path / f"s{t}",
        )  # fmt: skip
        assert code == 0, err
        alone = io.read(tmp_path / f"s{t}" / f"frame{t}_labels.tif").data[..., 0]
        np.testing.assert_array_equal(labels[t], alone)
        assert (catalog["t"] == t).sum() == alone.max() > 10


def test_napari_widget_and_command_line_give_the_same_labels(
    capsys, tmp_path, enlarged_real_nuclei
):
    """QA 56: the napari widget decided the object size plane by plane, the command line once
    per stack, so a sparse frame came out at another scale in napari, silently. Both go through
    predict_stack now: the same labels in every frame, and the same one decision."""
    from sciconv.napari._widget import segment_nuclei

    (_, a, _), (_, b, truth_b) = enlarged_real_nuclei(2, 0.4)
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    a, b, truth_b = a[:h, :w], b[:h, :w], truth_b[:h, :w]
    ids = [i for i in np.unique(truth_b) if i][:3]  # a sparse frame: three nuclei
    sparse = np.where(np.isin(truth_b, ids) | (truth_b == 0), b, np.median(b[truth_b == 0]))
    frames = np.stack([a, sparse]).astype(np.float32)
    tifffile.imwrite(tmp_path / "movie.tif", frames, metadata={"axes": "TYX"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SciconvWarning)  # the one size decision, said
        code, _, err = run_cli(
            capsys, "predict", "pretrained:nuclei", tmp_path / "movie.tif", "--out",
            tmp_path / "m", "--quiet",
        )  # fmt: skip
        assert code == 0, err
        widget, kwargs, _ = segment_nuclei(frames, planes=1, axes="T")
    cli = io.read(tmp_path / "m" / "movie_labels.tif", stack=True).data[..., 0]
    assert widget.shape == cli.shape == frames.shape
    for t in range(2):
        np.testing.assert_array_equal(widget[t], cli[t])
    scales = [d["scale"] for d in kwargs["metadata"]["decisions"]]
    assert scales[0] == scales[1] and scales[0].endswith("(auto: all planes)"), scales
