"""Products of inputs whose names are not UTF-8 (latin-1 bytes, as Python's surrogate escapes),
catalogs holding such names, non-ASCII class names in FITS cards, and an ASCII file-system
encoding (QA round 53: findings 1, 2, 5, 6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _helpers import latin1_path
from astropy.io import fits
from astropy.table import MaskedColumn, Table

from sciconv import io, postprocess
from sciconv.errors import ConfigError, SciconvWarning
from sciconv.io._files import names_folded

#: The QA's German segmenter classes: one name is not ASCII.
CLASSES = ["Hintergrund", "Zellkern", "Grenzfläche"]


def _prediction(k: int = 2):
    """A small probability cube, its labels and their catalog."""
    prob = np.zeros((12, 14, k), np.float32)
    prob[..., 0] = 1.0
    prob[3:7, 4:9, 0], prob[3:7, 4:9, 1] = 0.1, 0.9
    labels = np.zeros((12, 14), np.int32)
    labels[3:7, 4:9] = 1
    return prob, labels, postprocess.measure(labels)


# ------------------------------------------------------------------ finding 1: the input's name
def test_input_record_names_a_latin1_file_with_its_bytes_escaped(tmp_path):
    path = latin1_path(tmp_path, b"caf\xe9.fits")
    Path(path).write_bytes(b"abc")
    line = postprocess.input_record(path)
    assert line == (
        f"sciconv input {tmp_path}/caf\\xe9.fits "
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    line.encode("utf-8")  # any UTF-8 writer takes it
    assert postprocess.input_record(tmp_path / "plain.fits").startswith(
        f"sciconv input {tmp_path}/plain.fits (not hashed: "
    )


def test_a_latin1_model_file_name_is_recorded_escaped():
    model = os.fsdecode(b"mod\xe8le.keras")
    assert postprocess.history_record(model, {"tile": 256}) == [
        "sciconv prediction with model mod\\xe8le.keras",
        "  tile = 256",
    ]


def test_products_of_a_latin1_input_record_its_name_in_every_format(tmp_path):
    import tifffile
    from astropy.io.votable import parse

    source = latin1_path(tmp_path, b"caf\xe9.fits")
    fits.PrimaryHDU(np.zeros((12, 14), np.float32)).writeto(source)
    prob, labels, table = _prediction()
    shown = f"{tmp_path}/caf\\xe9.fits"  # one spelling everywhere: FITS HISTORY's
    # OME-TIFF (tifffile's description: strict UTF-8) and VOTable (astropy's XML writer)
    ome = postprocess.write_products(
        tmp_path / "ome", prob=prob, labels=labels, catalog=table, format="ome-tiff",
        catalog_format="votable", model="m.keras", source=source,
    )  # fmt: skip
    with tifffile.TiffFile(ome["prob"]) as tif:
        assert f"sciconv input {shown} sha256:" in tif.ome_metadata
    votable = parse(ome["catalog"])
    assert {i.name: i.value for i in votable.resources[0].infos}["INPUT"] == "caf\\xe9.fits"
    # FITS HISTORY and catalog cards: the spelling they had escaped it in
    out = postprocess.write_products(
        tmp_path / "fits", prob=prob, labels=labels, catalog=table, model="m.keras",
        catalog_format="fits", like=io.read(source),
    )  # fmt: skip
    history = "".join(fits.getheader(out["prob"])["HISTORY"])
    assert f"sciconv input {shown} sha256:" in history
    assert fits.getheader(out["catalog"], 1)["INPUT"] == "caf\\xe9.fits"
    # ECSV: its YAML would keep the surrogate (unreadable elsewhere); the same spelling instead
    ecsv = postprocess.write_catalog(
        postprocess.with_provenance(table, None, source=source), tmp_path / "c.ecsv"
    )
    assert Table.read(ecsv).meta["INPUT"] == "caf\\xe9.fits"


def test_region_comments_of_a_latin1_input_are_utf8(tmp_path):
    source = latin1_path(tmp_path, b"caf\xe9.fits")
    Path(source).write_bytes(b"abc")
    reg = tmp_path / "a.reg"
    reg.write_text("# Region file format: DS9\nimage\ncircle(1,2,3)\n", encoding="utf-8")
    lines = postprocess.prediction_history("m.keras", {"tile": 256}, source=source)
    postprocess.comment_regions(reg, lines)
    text = reg.read_bytes().decode("utf-8")
    assert f"# sciconv input {tmp_path}/caf\\xe9.fits sha256:ba7816bf" in text
    assert text.splitlines()[-1] == "circle(1,2,3)"


# ---------------------------------------------------------- finding 2: catalogs holding the names
@pytest.fixture
def latin1_table():
    """predict_files' table of a classifier run over a latin-1 file, whose classes are folders
    with a latin-1 name: the path column, the class names and metadata hold surrogates."""
    odd = os.fsdecode(b"imgs/caf\xe9.png")
    table = Table({"path": ["imgs/a.png", odd], "probabilities": np.full((2, 2), 0.5)})
    table["path"].description = "the input"
    table["note"] = MaskedColumn(["x", os.fsdecode(b"n\xe9")], mask=[True, False])
    table.meta["class_names"] = ["spiral", os.fsdecode(b"ellipti\xe7al")]
    table.meta["INPUT"] = os.fsdecode(b"caf\xe9.fits")
    return table


@pytest.mark.parametrize("ext", [".ecsv", ".csv", ".vot"])
def test_write_catalog_writes_latin1_names_escaped_and_says_where(tmp_path, latin1_table, ext):
    before = (latin1_table["path"].tolist(), list(latin1_table.colnames), dict(latin1_table.meta))
    with pytest.warns(SciconvWarning, match=r"cat\.\w+: names that are not UTF-8 written") as rec:
        path = postprocess.write_catalog(latin1_table, tmp_path / f"cat{ext}")
    said = str(rec[0].message)
    assert "the values of column(s) 'path', 'note'" in said
    assert ("probabilities_ellipti\\xe7al" in said) == (ext == ".csv")  # CSV's flattened names
    assert ("the metadata" in said) == (ext == ".vot")  # ECSV's YAML escapes them itself
    path.read_bytes().decode("utf-8")  # strict UTF-8 throughout
    back = postprocess.read_catalog(path)
    assert back["path"].tolist() == ["imgs/a.png", "imgs/caf\\xe9.png"]
    assert back["note"][1] == "n\\xe9"
    if ext == ".csv":
        assert back.colnames == [
            "path",
            "probabilities_spiral",
            "probabilities_ellipti\\xe7al",
            "note",
        ]
    else:
        assert back["path"].description == "the input"
    if ext == ".ecsv":
        assert bool(back["note"].mask[0])  # masked values stay masked
        assert back.meta["INPUT"] == os.fsdecode(b"caf\xe9.fits")  # YAML's escape: exact
    if ext == ".vot":
        assert back.meta["INPUT"] == "caf\\xe9.fits"  # the INFO element, escaped
        assert "description" not in back.meta  # astropy's copy of the INFOs: not kept twice
    # the caller's table is not changed
    after = (latin1_table["path"].tolist(), list(latin1_table.colnames), dict(latin1_table.meta))
    assert after == before


def test_write_catalog_refuses_latin1_names_in_fits_naming_the_file(tmp_path, latin1_table):
    with pytest.raises(ConfigError, match=r"cat\.fits: column 'path' holds non-ASCII text"):
        postprocess.write_catalog(latin1_table, tmp_path / "cat.fits")
    assert not (tmp_path / "cat.fits").exists()


def test_write_catalog_of_utf8_names_is_unchanged_and_quiet(tmp_path):
    table = Table({"path": ["Größe/観測.png", "a.png"], "x": [1, 2]})
    table.meta["INPUT"] = "Größe.fits"
    for ext in (".ecsv", ".csv", ".vot"):  # sciconv's warnings are errors here
        back = postprocess.read_catalog(postprocess.write_catalog(table, tmp_path / f"c{ext}"))
        assert back["path"].tolist() == ["Größe/観測.png", "a.png"]


# -------------------------------------------------------- finding 5: an ASCII file-system encoding
def test_names_folded_under_an_ascii_file_system_encoding(tmp_path):
    env = {**os.environ, "PYTHONUTF8": "0", "LC_ALL": "C", "LANG": "C"}
    env.pop("PYTHONIOENCODING", None)
    code = (
        "import sys; from sciconv.io._files import names_folded; "
        "print(sys.getfilesystemencoding(), names_folded(sys.argv[1]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True
    )
    if done.returncode == 0 and not done.stdout.startswith("ascii "):
        pytest.skip(f"this Python does not take LC_ALL=C as ASCII ({done.stdout.strip()})")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split(" ", 1)[1].strip() == "(False, False)"
    assert os.listdir(tmp_path) == []  # no probe left behind
    assert names_folded(tmp_path) == (False, False)  # this process's: both probes ran


# --------------------------------------------------------------- finding 6: non-ASCII class names
def test_non_ascii_class_names_make_ascii_fits_cards_and_tiff_keeps_them(tmp_path):
    prob, labels, _ = _prediction(3)
    out = postprocess.write_products(
        tmp_path, prob=prob, labels=labels, class_names=CLASSES, uncertainty=prob * 0.1
    )
    header = fits.getheader(out["prob"])
    assert [header[f"CLASS{i}"] for i in range(3)] == ["Hintergrund", "Zellkern", "Grenzfl\\xe4che"]
    assert fits.getheader(out["prob"], "UNCERT")["CLASS2"] == "Grenzfl\\xe4che"
    assert "class probability planes: 0=Hintergrund, 1=Zellkern, 2=Grenzflache" in "".join(
        header["HISTORY"]
    )
    # TIFF keeps the names as they are
    tiff = postprocess.write_products(
        tmp_path / "tiff", prob=prob, labels=labels, class_names=CLASSES, format="tiff"
    )
    assert io.read(tiff["prob"]).meta["channel_names"] == CLASSES


def test_non_ascii_class_names_of_fits_products_read_back_exactly(tmp_path):
    prob, labels, _ = _prediction(3)
    out = postprocess.write_products(tmp_path, prob=prob, labels=labels, class_names=CLASSES)
    assert io.read(out["prob"]).meta["channel_names"] == CLASSES
    postprocess.to_ccddata(prob, class_names=CLASSES).write(tmp_path / "p.fits")
    assert io.read(tmp_path / "p.fits").meta["channel_names"] == CLASSES


def test_class_cards_keep_names_apart_that_accents_alone_tell_apart():
    from sciconv.postprocess._writers import class_cards

    cards = class_cards(["Fläche", "Flache", "観測"])
    assert [value for value, _ in cards.values()] == ["Fl\\xe4che", "Flache", "\\u89b3\\u6e2c"]
    assert cards["CLASS0"][1] == "class of probability plane 0 (0-based)"


def test_to_ccddata_of_non_ascii_class_names_writes(tmp_path):
    from astropy import units as u
    from astropy.nddata import CCDData

    prob, _, _ = _prediction(3)
    postprocess.to_ccddata(prob, class_names=CLASSES).write(tmp_path / "p.fits")
    back = CCDData.read(tmp_path / "p.fits", unit=u.one)
    assert back.header["CLASS2"] == "Grenzfl\\xe4che"
