"""``sciconv predict --keep-tree``: one folder per night or band with the same file names
(``nights/n0/field.fits``, ``nights/n1/field.fits``), each input's products in --out as its folder
sits below the inputs' common folder (``res/n0/field_catalog.ecsv``); refused without it, the
error naming the option.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from _helpers import assert_one_line_error, run_cli, threshold_model
from astropy.io import fits
from astropy.table import Table

from sciconv.errors import SciconvWarning

SHAPE = (48, 48)
#: Where each night's sources are: night k holds SPOTS[k].
SPOTS = {0: [(10, 10)], 1: [(24, 30), (38, 14)], 2: [(12, 36)]}


def _sky(night: int) -> np.ndarray:
    """Noise around 100 with the night's Gaussian sources (sigma 2 px, peak 400)."""
    img = np.random.default_rng(night).normal(100.0, 1.0, SHAPE).astype(np.float32)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    for cy, cx in SPOTS[night]:
        img += (400 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0)).astype(np.float32)
    return img


def _nights(tmp_path, nights=(0, 1), name="field.fits"):
    """``nights/nK/NAME`` for each night K (FITS, or TIFF with a NaN pixel: a mask product)."""
    for k in nights:
        folder = tmp_path / "nights" / f"n{k}"
        folder.mkdir(parents=True, exist_ok=True)
        if name.endswith(".fits"):
            fits.writeto(folder / name, _sky(k))
        else:
            data = _sky(k)
            data[0, 0] = np.nan
            tifffile.imwrite(folder / name, data)
    return tmp_path / "nights"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("keep_tree") / "thr.keras"
    threshold_model().save(path)
    return path


def _predict(capsys, model, *inputs_and_options):
    return run_cli(capsys, "predict", model, *inputs_and_options, "--background", "none")


def _files(out) -> list[str]:
    return sorted(
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )


def _found_where_expected(labels: np.ndarray, night: int) -> None:
    for cy, cx in SPOTS[night]:
        assert labels[cy, cx] > 0
    for other in SPOTS:
        for cy, cx in SPOTS[other] if other != night else ():
            assert labels[cy, cx] == 0


def test_each_nights_products_go_to_its_own_folder(capsys, tmp_path, model):
    nights = _nights(tmp_path)
    out = tmp_path / "res"
    code, _, err = _predict(
        capsys, model, nights / "n0", nights / "n1", "--out", out, "--keep-tree",
        "--regions", "ellipse", "--geojson",
    )  # fmt: skip
    assert code == 0, err
    ends = ("_catalog.ecsv", "_labels.fits", "_objects.geojson", "_prob.fits", "_regions.reg")
    assert _files(out) == sorted(f"n{k}/field{end}" for k in (0, 1) for end in ends)
    for k in (0, 1):
        catalog = Table.read(out / f"n{k}" / "field_catalog.ecsv")
        assert len(catalog) == len(SPOTS[k])  # each night's own objects
        _found_where_expected(fits.getdata(out / f"n{k}" / "field_labels.fits"), k)
        regions = (out / f"n{k}" / "field_regions.reg").read_text()
        assert regions.count("ellipse(") == len(SPOTS[k])
        history = list(fits.getheader(out / f"n{k}" / "field_labels.fits")["HISTORY"])
        assert any(f"n{k}/field.fits" in line for line in history)  # its own input recorded


def test_catalog_input_names_the_path_below_the_common_folder(capsys, tmp_path, model):
    nights = _nights(tmp_path)
    out = tmp_path / "res"
    code, _, err = _predict(capsys, model, f"{nights}/*/", "--out", out, "--keep-tree")
    assert code == 0, err
    inputs = [Table.read(out / f"n{k}" / "field_catalog.ecsv").meta["INPUT"] for k in (0, 1)]
    assert inputs == ["n0/field.fits", "n1/field.fits"]  # told apart once stacked


def test_sidecars_and_stacks_follow_the_tree(capsys, tmp_path, model):
    """A TIFF input's mask product (a NaN pixel) and a movie's stacked products go to the input's
    folder too."""
    nights = _nights(tmp_path, name="field.tif")
    for k in (0, 1):
        tifffile.imwrite(
            nights / f"n{k}" / "movie.tif", np.stack([_sky(k), _sky(2)]), metadata={"axes": "TYX"}
        )
    out = tmp_path / "res"
    code, _, err = _predict(capsys, model, f"{nights}/*/", "--out", out, "--keep-tree")
    assert code == 0, err
    for k in (0, 1):
        names = _files(out / f"n{k}")
        assert {"field_mask.tif", "field_labels.tif", "movie_labels.tif"} <= set(names), names
        assert len(Table.read(out / f"n{k}" / "field_catalog.ecsv")) == len(SPOTS[k])
        movie = Table.read(out / f"n{k}" / "movie_catalog.ecsv")
        assert sorted(np.bincount(movie["t"])) == sorted([len(SPOTS[k]), len(SPOTS[2])])
    assert not [p for p in out.iterdir() if p.is_file() and not p.name.startswith(".")]


def test_block_wise_products_follow_the_tree(capsys, tmp_path, model):
    nights = _nights(tmp_path)
    out = tmp_path / "res"
    code, _, err = _predict(
        capsys, model, f"{nights}/*/", "--out", out, "--keep-tree", "--block", "32"
    )
    assert code == 0, err
    for k in (0, 1):
        assert (out / f"n{k}" / "field_labels.zarr").is_dir()
        assert len(Table.read(out / f"n{k}" / "field_catalog.ecsv")) == len(SPOTS[k])


def test_refused_without_keep_tree_naming_it(capsys, tmp_path, model):
    nights = _nights(tmp_path)
    out = tmp_path / "res"
    code, _, err = _predict(capsys, model, nights / "n0", nights / "n1", "--out", out)
    assert code == 1
    assert_one_line_error(
        err,
        "two inputs share the name 'field'",
        "would collide in --out",
        "pass --keep-tree",
        f"{out.as_posix()}/n0/ and {out.as_posix()}/n1/",
    )
    assert not out.exists()  # refused before anything was written
    # the parent folder: its hint names the pattern with --keep-tree, which then works
    code, _, err = _predict(capsys, model, nights, "--out", out)
    assert code == 1
    assert_one_line_error(err, "folder holds no image files", f"{nights}/*/ --keep-tree")


def test_skip_existing_and_overwrite_per_tree_path(capsys, tmp_path, model):
    nights = _nights(tmp_path)
    out = tmp_path / "res"
    code, _, err = _predict(capsys, model, f"{nights}/*/", "--out", out, "--keep-tree")
    assert code == 0, err
    # a flat product of a run without --keep-tree is not n0's or n1's
    code, _, err = _predict(capsys, model, nights / "n0" / "field.fits", "--out", out)
    assert code == 0, err
    assert (out / "field_catalog.ecsv").is_file()
    # a rerun refuses the existing products, naming the tree path
    code, _, err = _predict(capsys, model, f"{nights}/*/", "--out", out, "--keep-tree")
    assert code == 1
    assert_one_line_error(err, "output exists", "--overwrite", "n0/field_")
    # a new night: the finished ones skipped, the new one written to its own folder
    _nights(tmp_path, nights=(2,))
    (out / "n1" / "field_catalog.ecsv").unlink()  # n1 unfinished: segmented again
    n0_labels = (out / "n0" / "field_labels.fits").stat().st_mtime_ns
    with pytest.warns(SciconvWarning, match="only some of their products") as heard:
        code, said, err = _predict(
            capsys, model, f"{nights}/*/", "--out", out, "--keep-tree", "--skip-existing"
        )
    assert code == 0, err
    assert "n1/field.fits" in str(heard[0].message) and "/n0/" not in str(heard[0].message)
    assert f"{nights / 'n0' / 'field.fits'}: skipped" in said
    assert "n1" not in " ".join(ln for ln in said.splitlines() if "skipped" in ln)
    assert (out / "n0" / "field_labels.fits").stat().st_mtime_ns == n0_labels
    assert len(Table.read(out / "n1" / "field_catalog.ecsv")) == len(SPOTS[1])
    assert len(Table.read(out / "n2" / "field_catalog.ecsv")) == len(SPOTS[2])
    _found_where_expected(fits.getdata(out / "n2" / "field_labels.fits"), 2)
    # --overwrite replaces each night's own products
    code, _, err = _predict(
        capsys, model, f"{nights}/*/", "--out", out, "--keep-tree", "--overwrite"
    )
    assert code == 0, err
    assert (out / "n0" / "field_labels.fits").stat().st_mtime_ns != n0_labels


def _flt(path, night: int):
    """An HST-like file of two chips: SCI,1 holds the night's sources, SCI,2 night 2's."""
    hdus = [fits.PrimaryHDU()]
    for ver, sky in ((1, _sky(night)), (2, _sky(2))):
        hdus += [fits.ImageHDU(sky, name="SCI", ver=ver)]
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path)


def test_hdu_all_chips_follow_the_tree(capsys, tmp_path, model):
    for k in (0, 1):
        _flt(tmp_path / "visits" / f"n{k}" / "j8bt_flt.fits", k)
    out = tmp_path / "res"
    code, _, err = _predict(
        capsys, model, f"{tmp_path / 'visits'}/*/", "--out", out, "--keep-tree", "--hdu", "all"
    )
    assert code == 0, err
    ends = ("_catalog.ecsv", "_labels.fits", "_prob.fits")
    assert _files(out) == sorted(
        f"n{k}/j8bt_flt.SCI_{v}{end}" for k in (0, 1) for v in (1, 2) for end in ends
    )
    for k in (0, 1):
        one = Table.read(out / f"n{k}" / "j8bt_flt.SCI_1_catalog.ecsv")
        assert one.meta["HDU"] == "SCI,1" and len(one) == len(SPOTS[k])
        _found_where_expected(fits.getdata(out / f"n{k}" / "j8bt_flt.SCI_2_labels.fits"), 2)
