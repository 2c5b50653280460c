"""Tests for the bundled sample data in data/: manifest, layout, metadata, reproducibility."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

from sciconv import io, preprocess, simulate


@pytest.fixture(scope="module")
def make_data(data_dir):
    spec = importlib.util.spec_from_file_location("sciconv_make_data", data_dir / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def manifest(data_dir, make_data):
    return make_data.read_manifest(data_dir / "MANIFEST.sha256")


def test_manifest_files_exist_with_their_hash(data_dir, manifest):
    assert len(manifest) > 200
    bad = []
    for rel, digest in manifest.items():
        path = data_dir / rel
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            bad.append(rel)
    assert not bad, f"missing or changed: {bad[:5]}"


def test_manifest_covers_every_generated_file(data_dir, manifest):
    generated = [
        p.relative_to(data_dir).as_posix()
        for sub in ("galaxies", "cells", "sky")
        for p in (data_dir / sub).rglob("*")
        if p.is_file()
    ]
    assert sorted(generated) == sorted(manifest)


def test_data_folder_size(data_dir):
    total = sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file())
    assert total < 25e6, f"data/ holds {total / 1e6:.1f} MB"
    ours = sum(
        p.stat().st_size for s in ("galaxies", "cells", "sky") for p in (data_dir / s).rglob("*")
    )
    assert ours < 15e6, f"simulated samples hold {ours / 1e6:.1f} MB"


# ---------------------------------------------------------------------------------- galaxies


def test_galaxy_classes(data_dir):
    folders = sorted(p.name for p in (data_dir / "galaxies").iterdir() if p.is_dir())
    assert len(folders) >= 3
    assert folders == list(simulate.GALAXY_CLASSES)
    for name in folders:
        files = io.list_images(data_dir / "galaxies" / name)
        assert 60 <= len(files) <= 80, (name, len(files))
        assert all(f.name.startswith(name + "_") and f.suffix == ".fits" for f in files)


def test_galaxy_files_have_wcs_and_cards(data_dir):
    files = io.list_images(data_dir / "galaxies" / "spiral")[::9]
    for path in files:
        img = io.read(path)
        assert img.shape == (64, 64, 1)
        assert img.data.dtype == np.float32
        assert img.wcs is not None and img.wcs.has_celestial
        for key in ("OBJECT", "EXPTIME", "GAIN", "BUNIT", "RDNOISE", "SIMCLASS", "R_EFF"):
            assert key in img.header, (path, key)
        assert img.header["SIMCLASS"] == "spiral"
        assert img.header["OBJECT"] == path.name.removesuffix(".fits")
        # the sky level card agrees with the pixels
        assert np.median(img.data) == pytest.approx(img.header["SKYLEVEL"], rel=0.1)


def test_galaxy_catalog_matches_files(data_dir):
    with open(data_dir / "galaxies" / "catalog.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    listed = {r["path"] for r in rows}
    on_disk = {
        f"{d.name}/{p.name}"
        for d in (data_dir / "galaxies").iterdir()
        if d.is_dir()
        for p in io.list_images(d)
    }
    assert listed == on_disk
    for row in rows[::37]:
        hdr = io.read(data_dir / "galaxies" / row["path"]).header
        assert row["class"] == hdr["SIMCLASS"] == row["path"].split("/")[0]
        assert float(row["r_eff"]) == pytest.approx(hdr["R_EFF"], rel=1e-4, abs=1e-4)


def test_galaxies_reproduce_from_simulator(data_dir, make_data):
    images, labels, names, _ = simulate.galaxy_cutouts(
        make_data.GALAXIES_PER_CLASS, size=make_data.GALAXY_SIZE, seed=make_data.GALAXY_SEED
    )
    n = make_data.GALAXIES_PER_CLASS
    for i in (0, n + 3, 3 * n - 1):
        cls = names[labels[i]]
        path = data_dir / "galaxies" / cls / f"{cls}_{i % n:03d}.fits"
        np.testing.assert_array_equal(io.read(path).data, images[i])


# ---------------------------------------------------------------------------------- cells


def test_cell_pairs(data_dir):
    images = io.list_images(data_dir / "cells" / "images")
    masks = io.list_images(data_dir / "cells" / "masks")
    assert len(images) >= 12
    assert [p.stem for p in images] == [p.stem for p in masks]
    for ip, mp in list(zip(images, masks))[::5]:
        img, mask = io.read(ip), io.read(mp)
        assert img.shape == mask.shape == (256, 256, 1)
        assert img.meta["dtype"] == "uint16"
        assert mask.meta["dtype"] in ("uint16", "int32")
        labels = mask.data[..., 0].astype(np.int64)
        np.testing.assert_array_equal(labels, mask.data[..., 0])  # integers
        ids = np.unique(labels)
        np.testing.assert_array_equal(ids, np.arange(len(ids)))
        assert len(ids) > 10
        # nuclei are bright where the mask says so
        assert img.data[labels > 0].mean() > 4 * img.data[labels == 0].mean()


def test_cells_reproduce_from_simulator(data_dir, make_data):
    images, labels = simulate.nuclei(2, size=make_data.CELL_SIZE, seed=make_data.CELL_SEED)
    # the script draws all images from one stream: the first two match the first two files
    for k in range(2):
        np.testing.assert_array_equal(
            io.read(data_dir / "cells" / "images" / f"cell_{k:02d}.tif").data, images[k]
        )
        np.testing.assert_array_equal(
            io.read(data_dir / "cells" / "masks" / f"cell_{k:02d}.tif").data[..., 0], labels[k]
        )


# ---------------------------------------------------------------------------------- sky


@pytest.fixture(scope="module")
def sky(data_dir):
    candidates = [data_dir / "sky" / n for n in ("field.fits", "field.fits.fz")]
    path = next(p for p in candidates if p.exists())
    return io.read(path), Table.read(data_dir / "sky" / "truth.ecsv")


def test_sky_field_reads_with_wcs(sky):
    img, truth = sky
    assert img.shape == (2048, 2048, 1)
    assert img.wcs is not None and img.wcs.has_celestial
    assert img.header["BUNIT"] == "adu"
    assert len(truth) > 100
    assert set(truth["kind"]) == {"star", "galaxy"}


def test_sky_truth_radec_matches_wcs(sky):
    img, truth = sky
    world = img.wcs.pixel_to_world(np.asarray(truth["x"]), np.asarray(truth["y"]))
    cat = SkyCoord(np.asarray(truth["ra"]), np.asarray(truth["dec"]), unit="deg", frame="icrs")
    assert world.separation(cat).max().to_value("arcsec") < 0.01


def test_sky_truth_positions_on_sources(sky):
    img, truth = sky
    data = img.data[..., 0]
    sky_level = np.median(data)
    bright = truth[truth["flux"] > 2e4]
    assert len(bright) > 10
    peaks = data[np.round(bright["y"]).astype(int), np.round(bright["x"]).astype(int)]
    assert np.all(peaks > sky_level + 100)


def test_sky_limits_from_lazy_read_match_in_memory(sky):
    img, _ = sky
    lazy = io.read(img.path, lazy=True)
    sampled = preprocess.compute_limits(lazy.data, max_samples=250_000)
    full = preprocess.compute_limits(img.data)
    assert sampled.vmin[0] == pytest.approx(full.vmin[0], rel=0.02)
    assert sampled.vmax[0] == pytest.approx(full.vmax[0], rel=0.1)
    assert full.vmin[0] < img.header["SKYLEVEL"] < full.vmax[0]


def test_sky_reproduces_from_simulator(sky, make_data):
    img, truth = sky
    image, _, truth2 = simulate.sky_field(make_data.SKY_SHAPE, seed=make_data.SKY_SEED)
    np.testing.assert_array_equal(img.data[..., 0], image)
    np.testing.assert_allclose(np.asarray(truth["x"]), np.asarray(truth2["x"]))


# ---------------------------------------------------------------------------------- README


def test_readme_describes_each_folder(data_dir):
    text = Path(data_dir / "README.md").read_text(encoding="utf-8")
    for word in ("galaxies/", "cells/", "sky/", "field.fits.fz", "truth.ecsv", "make_data.py",
                 "MANIFEST.sha256", "real/README.md"):  # fmt: skip
        assert word in text, word
