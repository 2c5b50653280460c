"""Paths as users give them (QA round 52, storage and paths): ``~`` and ``$VARS``, names longer
than the file system allows, bytes, URLs, and names spelt in another Unicode normalization or
case than the file's."""

from __future__ import annotations

import argparse
import os
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import tifffile
from _helpers import assert_one_line_error, blob_images, run_cli
from astropy.io import fits

import sciconv as sc
from sciconv._cli_predict_plan import mask_file, segmentation_outputs
from sciconv._cli_train import load_config
from sciconv.errors import (
    ConfigError,
    DatasetError,
    InferenceError,
    InvalidImageError,
    WriteError,
)


def nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def nfd(name: str) -> str:
    return unicodedata.normalize("NFD", name)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh ``$HOME``; the working folder elsewhere, to see a literal ``./~`` appear."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return folder


def _name_max(folder: Path) -> int:
    return os.pathconf(folder, "PC_NAME_MAX")


# --------------------------------------------------------------------------- ~ and $VARS


def test_read_expands_home_as_astropy_does(home):
    """sc.io.read('~/a.fits') said "file not found" where astropy read the file."""
    fits.writeto(home / "a.fits", np.arange(6, dtype="float32").reshape(2, 3))
    fits.writeto(home / "dq.fits", np.array([[0, 4, 0], [0, 0, 0]], "int16"))
    img = sc.io.read("~/a.fits", mask="~/dq.fits")
    assert img.path == str(home / "a.fits")
    assert int(img.mask.sum()) == 1
    assert sc.io.read_pixels("~/a.fits")[1, 2, 0] == 5.0
    assert sc.io.probe_shape("~/a.fits") == (2, 3, 1)
    assert [p.name for p in sc.io.list_images("~")] == ["a.fits", "dq.fits"]
    assert not os.path.lexists("~")


def test_datasets_expand_home(home):
    """from_folder / from_pairs / from_catalog took '~/...' literally: "folder not found"."""
    blob_images(home / "gal" / "a", 3, bright=True, seed=1)
    blob_images(home / "gal" / "b", 3, bright=False, seed=2)
    ds = sc.datasets.from_folder("~/gal", batch_size=6, shuffle=False)
    assert [os.path.dirname(p) for p in ds.file_paths][:1] == [str(home / "gal" / "a")]
    with pytest.raises(ConfigError, match="cache file folder does not exist") as info:
        sc.datasets.from_folder("~/gal", cache="~/no/cache")
    assert str(home / "no") in str(info.value)  # the cache path expanded too

    (home / "cat.csv").write_text("file,label\n" + "".join(
        f"gal/{c}/img{i:02d}.tif,{c}\n" for c in "ab" for i in range(3)
    ))  # fmt: skip
    cat = sc.datasets.from_catalog("~/cat.csv", path_column="file", label_column="label")
    assert sorted(cat.file_paths)[0] == str(home / "gal" / "a" / "img00.tif")

    for side in ("images", "masks"):
        (home / side).mkdir()
        tifffile.imwrite(home / side / "c.tif", np.zeros((4, 4), "uint8"))
    pairs = sc.io.pair_by_stem("~/images", "~/masks")
    assert pairs == [(home / "images" / "c.tif", home / "masks" / "c.tif")]
    assert not os.path.lexists("~")


def _tiny_segmenter():
    return sc.models.segmenter(input_shape=(None, None, 1), num_classes=2, depth=1, filters=2)


def _arrays():
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype("float32")
    return x, (x[..., 0] > 0).astype("int32")


def test_fit_workdir_expands_home(home):
    """fit(workdir='~/runs/a') trained into a folder named '~' in the working folder."""
    sc.training.fit(_tiny_segmenter(), _arrays(), epochs=1, workdir="~/runs/a", verbose=0,
                    tensorboard=False)  # fmt: skip
    assert (home / "runs" / "a" / "best.keras").is_file()
    assert not os.path.lexists("~")


def test_fit_workdir_refuses_long_names_bytes_and_urls(tmp_path, monkeypatch):
    """A 257-byte workdir name escaped as a bare OSError; bytes and URLs are refused first."""
    monkeypatch.chdir(tmp_path)
    long = "x" * 257
    with pytest.raises(WriteError, match=r"file name too long \(257 bytes; the file system "
                       rf"allows {_name_max(tmp_path)}\)") as info:  # fmt: skip
        sc.training.fit(_tiny_segmenter(), _arrays(), epochs=1, workdir=long, verbose=0)
    assert info.value.path.startswith("x" * 20 + "...")
    with pytest.raises(ConfigError, match="URLs are not read or written"):
        sc.training.fit(_tiny_segmenter(), _arrays(), epochs=1, workdir="s3://b/run", verbose=0)
    with pytest.raises(ConfigError, match=r"workdir must be a str or os\.PathLike; got bytes"):
        sc.training.fit(_tiny_segmenter(), _arrays(), epochs=1, workdir=b"run", verbose=0)
    assert os.listdir(tmp_path) == []


def _yaml(tmp_path: Path, dataset: str, training: str = "", model: str = "type: classifier"):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"dataset: {{kind: folder, {dataset}}}\nmodel: {{{model}}}\ntraining: {{{training}}}\n"
    )
    return cfg


def test_train_yaml_expands_home_and_variables(home, tmp_path, monkeypatch):
    """workdir: ~/runs/x in a YAML file trained into ./~/runs/x and printed "model:
    ~/runs/x/best.keras", which reads as the home folder."""
    blob_images(home / "gal" / "a", 4, bright=True, seed=1)
    blob_images(home / "gal" / "b", 4, bright=False, seed=2)
    monkeypatch.setenv("SCRATCH", str(home / "scratch"))
    cfg = _yaml(
        tmp_path,
        "path: ~/gal, validation_split: 0.25, batch_size: 4, cache: $SCRATCH/c",
        "epochs: 1, workdir: ~/runs/gal, tensorboard: false, verbose: 0",
        "type: classifier, filters: [2], dense: []",
    )
    config = load_config(cfg)
    assert config["dataset"]["path"] == str(home / "gal")
    assert config["dataset"]["cache"] == str(home / "scratch" / "c")
    assert config["training"]["workdir"] == str(home / "runs" / "gal")


def test_train_yaml_runs_in_the_home_folder(home, tmp_path, capsys):
    """The run is in $HOME/runs/gal, and "model:" prints that real path."""
    blob_images(home / "gal" / "a", 4, bright=True, seed=1)
    blob_images(home / "gal" / "b", 4, bright=False, seed=2)
    cfg = _yaml(
        tmp_path,
        "path: ~/gal, validation_split: 0.25, batch_size: 4",
        "epochs: 1, workdir: ~/runs/gal, tensorboard: false, verbose: 0",
        "type: classifier, filters: [2], dense: []",
    )
    code, out, err = run_cli(capsys, "train", cfg)
    assert code == 0, err
    assert f"model: {home / 'runs' / 'gal' / 'best.keras'}" in out
    assert (home / "runs" / "gal" / "best.keras").is_file()
    assert not os.path.lexists("~")


@pytest.mark.parametrize(
    ("dataset", "training", "fragments"),
    [
        ("path: $NO_SUCH_VAR_QA52/gal", "", ("dataset.path", "$NO_SUCH_VAR_QA52", "not set")),
        ("path: data", "workdir: '${NO_SUCH_VAR_QA52}/r'", ("training.workdir", "not set")),
        ("path: ~no_such_user_qa52/gal", "", ("dataset.path", "~no_such_user_qa52", "./~")),
        ("path: 'https://host/gal'", "", ("dataset.path", "URLs are not read or written")),
    ],
)
def test_train_yaml_refuses_unexpanded_paths(tmp_path, monkeypatch, capsys, dataset, training,
                                             fragments):  # fmt: skip
    monkeypatch.delenv("NO_SUCH_VAR_QA52", raising=False)
    cfg = _yaml(tmp_path, dataset, training)
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert info.value.path == str(cfg)
    for fragment in fragments:
        assert fragment in str(info.value)
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 2
    assert_one_line_error(err, *fragments)


def test_train_yaml_keeps_pretrained_names(tmp_path):
    cfg = _yaml(tmp_path, "path: data", model="init: 'pretrained:nuclei'")
    assert load_config(cfg)["model"]["init"] == "pretrained:nuclei"


# -------------------------------------------------------------------- long names, bytes, URLs


def test_read_refuses_long_names_bytes_and_urls(tmp_path, monkeypatch):
    """Bare OSError (File name too long), and URLs read as local paths: "https:/host/a.fits:
    file not found"."""
    monkeypatch.chdir(tmp_path)
    name = "x" * 252 + ".fits"
    with pytest.raises(InvalidImageError, match=r"file name too long \(257 bytes; the file "
                       rf"system allows {_name_max(tmp_path)}\)"):  # fmt: skip
        sc.io.read(name)
    with pytest.raises(InvalidImageError, match=r"file name too long \(257 bytes"):
        sc.io.read_pixels(name)
    with pytest.raises(DatasetError, match=r"file name too long \(257 bytes"):
        sc.io.pair_by_stem(name, name)
    assert sc.io.is_zarr("z" * 300) is False  # pathlib's is_dir raised ENAMETOOLONG
    for url in ("https://archive.stsci.edu/a.fits", "file:///tmp/a.fits"):
        with pytest.raises(InvalidImageError, match="URLs are not read or written; download") as i:
            sc.io.read(url)
        assert i.value.path == url  # as given, not pathlib's "https:/archive..."
    with pytest.raises(InvalidImageError, match="URLs are not read"):
        sc.io.read(Path("https://archive.stsci.edu/a.fits"))  # folded by pathlib
    with pytest.raises(InvalidImageError, match=r"got bytes \(b'a.fits'\): decode it"):
        sc.io.read(b"a.fits")
    with pytest.raises(ConfigError, match=r"images must be a str or os\.PathLike; got bytes"):
        sc.io.pair_by_stem(b"images", b"masks")
    with pytest.raises(ConfigError, match="URLs are not read"):
        sc.datasets.from_catalog("https://host/cat.csv", label_column="label")
    assert os.listdir(tmp_path) == []


def test_user_path_and_check_name_length(tmp_path, monkeypatch):
    from sciconv.io._files import check_name_length, user_path

    monkeypatch.setenv("HOME", str(tmp_path))
    given = Path("a/b.fits")
    assert user_path(given) is given
    assert user_path("~/b.fits") == tmp_path / "b.fits"
    assert user_path("data:2024/a.fits") == Path("data:2024/a.fits")  # a folder, not a URL
    with pytest.raises(WriteError, match="hdf"):
        user_path("hdfs://cluster/x", error=WriteError)
    check_name_length(tmp_path / ("é" * 100))  # 200 bytes: fits
    with pytest.raises(ConfigError, match=r"file name too long \(260 bytes.*; rename it") as info:
        check_name_length(tmp_path / ("é" * 130) / "a.fits", error=ConfigError, hint="; rename it")
    assert info.value.path == str(tmp_path / ("é" * 20 + "...") / "a.fits")
    with pytest.raises(WriteError, match=r"path too long \(\d+ bytes; the file system allows"):
        check_name_length(Path(*["d" * 200] * 25))


def test_check_name_length_counts_utf16_units_on_windows(tmp_path, monkeypatch):
    # NTFS allows 255 UTF-16 units a name: 200 CJK characters (600 UTF-8 bytes) fit there
    from sciconv.io._files import check_name_length

    name = "\u89b3" * 200 + ".tif"
    with pytest.raises(WriteError, match=r"\(604 bytes"):
        check_name_length(tmp_path / name)
    monkeypatch.setattr(sys, "platform", "win32")
    check_name_length(tmp_path / name)
    with pytest.raises(WriteError, match=r"file name too long \(304 characters; the file system"):
        check_name_length(tmp_path / ("\u89b3" * 300 + ".tif"))


# --------------------------------------------------------------------------- Unicode, case


def _nfc_images_nfd_masks(root: Path, n: int = 2) -> None:
    for side, spell in (("images", nfc), ("masks", nfd)):
        (root / side).mkdir()
        for i in range(n):
            img = np.zeros((16, 16), "uint8")
            img[4:12, 4:12] = 1
            tifffile.imwrite(root / side / spell(f"cellule_é_{i}.tif"), img)


def test_pairs_match_names_in_either_unicode_normalization(tmp_path):
    """Images named on Linux (NFC) and masks on a Mac (NFD): "image cellule_é_0.tif has no
    mask: expected a file with stem 'cellule_é_0'" while the mask folder held exactly that."""
    _nfc_images_nfd_masks(tmp_path)
    pairs = sc.io.pair_by_stem(tmp_path / "images", tmp_path / "masks")
    assert [(p.name, m.name) for p, m in pairs] == [
        (nfc(f"cellule_é_{i}.tif"), nfd(f"cellule_é_{i}.tif")) for i in range(2)
    ]
    ds = sc.datasets.from_pairs(tmp_path / "images", tmp_path / "masks", batch_size=2)
    assert [Path(p).name for p in ds.mask_paths] == [nfd(f"cellule_é_{i}.tif") for i in range(2)]
    tifffile.imwrite(tmp_path / "masks" / nfc("cellule_é_0.tif"), np.zeros((16, 16), "uint8"))
    with pytest.raises(DatasetError, match="two Unicode normalizations, NFC and NFD"):
        sc.io.pair_by_stem(tmp_path / "images", tmp_path / "masks")


def test_catalog_finds_files_named_in_another_normalization(tmp_path):
    """A CSV typed in NFC, files from a Mac in NFD: "6 file(s) ... not found", or with
    on_missing='skip' the files dropped out of the training set."""
    rows = ["file,label"]
    for i in range(4):
        tifffile.imwrite(tmp_path / nfd(f"galaxie_é_{i}.tif"), np.full((8, 8), i, "float32"))
        rows.append(f"{nfc(f'galaxie_é_{i}.tif')},{'ab'[i % 2]}")
    (tmp_path / "cat.csv").write_text("\n".join(rows) + "\n")
    ds = sc.datasets.from_catalog(tmp_path / "cat.csv", path_column="file", label_column="label",
                                  on_missing="skip", batch_size=4)  # fmt: skip
    assert sorted(ds.file_paths) == [str(tmp_path / nfd(f"galaxie_é_{i}.tif")) for i in range(4)]


def test_read_names_the_other_spelling(tmp_path):
    from sciconv.io._files import find_same_name

    fits.writeto(tmp_path / nfd("é.fits"), np.zeros((2, 2), "float32"))
    with pytest.raises(InvalidImageError, match="another Unicode normalization") as info:
        sc.io.read(tmp_path / nfc("é.fits"))
    assert str(tmp_path / nfd("é.fits")) in str(info.value)
    assert find_same_name(tmp_path / nfc("é.fits")) == tmp_path / nfd("é.fits")


def test_cli_mask_template_matches_either_normalization(tmp_path):
    fits.writeto(tmp_path / nfd("cellule_é_dq.fits"), np.zeros((2, 2), "int16"))
    args = argparse.Namespace(mask=str(tmp_path / "{stem}_dq.fits"))
    found = mask_file(tmp_path / nfc("cellule_é.fits"), args)
    assert found == tmp_path / nfd("cellule_é_dq.fits")


@pytest.mark.parametrize(
    ("first", "second"),
    [("Cell.tif", "cell.tif"), (nfc("é.tif"), nfd("é.fits")), ("A.FITS", "a.tif")],
)
def test_cli_refuses_inputs_named_alike_on_case_insensitive_systems(first, second, monkeypatch):
    """d1/Cell.tif and d2/cell.tif passed: on APFS or NTFS their products are the same files;
    on ext4 they are two files, with two sets of products (review)."""
    import sciconv._cli_predict_plan as plan

    inputs = [Path("d1") / first, Path("d2") / second]
    assert len(segmentation_outputs(inputs, Path("out"))) == 2  # this machine's ext4/tmpfs
    monkeypatch.setattr(plan, "names_folded", lambda folder: (True, True))
    with pytest.raises(InferenceError, match="differ only in case or Unicode normalization"):
        segmentation_outputs(inputs, Path("out"))
    with pytest.raises(InferenceError, match="two inputs share the name 'cell'"):
        segmentation_outputs([Path("d1/cell.tif"), Path("d2/cell.fits")], Path("out"))


# ------------------------------------------------ io.write / write_ome_zarr, sciconv predict --out


def test_write_expands_home_and_refuses_long_names_bytes_and_urls(home, tmp_path):
    """sc.io.write('~/a.fits') wrote ./~/a.fits; a 257-byte name raised a bare OSError, bytes a
    bare TypeError, and 'file:///x/u.fits' wrote a folder tree ./file:/x/u.fits."""
    a = np.ones((4, 4), "float32")
    assert sc.io.write("~/a.fits", a) == home / "a.fits"
    assert (home / "a.fits").is_file()
    work = Path.cwd()
    with pytest.raises(WriteError, match=r"file name too long \(257 bytes; the file system "
                       rf"allows {_name_max(work)}\)") as info:  # fmt: skip
        sc.io.write("x" * 252 + ".fits", a)
    assert info.value.path.startswith("x" * 20 + "...")
    with pytest.raises(WriteError, match=r"file name too long \(259 bytes"):
        sc.io.write_ome_zarr("z" * 250 + ".ome.zarr", a)
    with pytest.raises(ConfigError, match=r"got bytes \(b'b.fits'\): decode it"):
        sc.io.write(b"b.fits", a)
    with pytest.raises(ConfigError, match="URLs are not read or written") as info:
        sc.io.write(f"file://{work}/u.fits", a)
    assert info.value.path == f"file://{work}/u.fits"
    assert os.listdir(work) == []


def test_cli_predict_out_expands_home_and_refuses_a_url(home, capsys):
    """--out file:///x wrote a ./file: folder tree; --out ~/res wrote ./~/res."""
    work = Path.cwd()
    sc.io.write(work / "a.fits", np.ones((8, 8), "float32"))
    code, _, err = run_cli(capsys, "predict", "none.keras", "a.fits", "--out", "file:///x/res")
    assert code == 2
    assert_one_line_error(err, "URLs are not read or written")
    assert sorted(os.listdir(work)) == ["a.fits"]
    code, _, err = run_cli(capsys, "predict", "none.keras", "a.fits", "--out", "~/res")
    assert "none.keras: model file not found" in err  # --out taken: the model is judged next
    assert not (work / "~").exists()


def test_catalogs_products_and_labels_expand_home(home):
    """write_catalog('~/cat.ecsv') wrote ./~/cat.ecsv, write_products('~/products') ./~/products,
    read_catalog checked ./~ and opened $HOME, read_labels('~/...') was 'no such file' (review)."""
    from astropy.table import Table

    work = Path.cwd()
    table = Table({"id": [1, 2], "flux": [1.0, 2.0]})
    assert sc.postprocess.write_catalog(table, "~/cat.ecsv") == home / "cat.ecsv"
    assert sc.postprocess.read_catalog("~/cat.ecsv")["id"].tolist() == [1, 2]
    labels = np.zeros((16, 16), np.int32)
    labels[2:6, 3:9] = 4
    written = sc.postprocess.write_products("~/products", labels=labels, stem="cells")
    assert all(p.is_relative_to(home / "products") for p in written.values())
    sc.io.write("~/lab.tif", labels)
    np.testing.assert_array_equal(sc.io.read_labels("~/lab.tif"), labels)
    assert sorted(os.listdir(work)) == []  # no ./~ anywhere


def test_names_folded_probes_the_file_system(tmp_path):
    """ext4 and tmpfs (this machine) keep both spellings apart; the probe leaves nothing."""
    from sciconv.io._files import names_folded

    assert names_folded(tmp_path) == (False, False)
    assert names_folded(tmp_path / "not" / "yet") == (False, False)  # its nearest parent
    assert list(tmp_path.iterdir()) == []
