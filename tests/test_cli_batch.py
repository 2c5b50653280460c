"""``sciconv predict`` as a batch tool: everything a batch can be refused for is found before the
first input is predicted (name collisions and existing outputs of block-wise inputs too, options
an input cannot take, bad --tile/--overlap/--block values), and an earlier run's products in
the input folder are not segmented as inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from _helpers import assert_one_line_error, run_cli

import sciconv as sc
from sciconv.errors import SciconvWarning


@pytest.fixture(scope="module")
def seg_model(tmp_path_factory):
    """A tiny untrained segmenter (divisor 8) saved to .keras."""
    path = tmp_path_factory.mktemp("cli_batch") / "seg.keras"
    sc.models.segmenter((None, None, 1), depth=3, filters=2).save(path)
    return path


def _image(size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(10, 1, (size, size)).astype(np.float32)


def _fits(path, data) -> None:
    from astropy.io import fits

    fits.PrimaryHDU(data).writeto(path)


def _contents(folder) -> dict:
    """Every file under ``folder`` with its bytes (the inputs' state, to check them untouched)."""
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _written(out) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


# ------------------------------------------------------------------- block-wise inputs (finding 1)
def test_block_wise_inputs_go_through_the_collision_check(capsys, tmp_path, seg_model):
    """``field.fits`` and ``field.tif`` block by block with --overwrite: the second's labels and
    catalog silently replaced the first's (exit 0)."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    _fits(inputs / "field.fits", _image(128, 1))
    tifffile.imwrite(inputs / "field.tif", _image(128, 2))
    before = _contents(inputs)
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "predict", seg_model, inputs, "--out", out, "--block", "64", "--overwrite",
        "--quiet",
    )  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "two inputs share the name 'field'", "would collide in --out")
    assert _written(out) == []  # refused before anything was predicted
    assert _contents(inputs) == before


def test_automatic_block_mode_beside_a_whole_image_collides(
    capsys, tmp_path, seg_model, monkeypatch
):
    """An automatically block-wise ``field.fits`` and an ordinary ``field.tif``: the mosaic was
    computed, then the run failed on the catalog it had just written."""
    monkeypatch.setattr(sc.inference, "AUTO_BLOCK_PIXELS", 100 * 100)
    inputs = tmp_path / "in"
    inputs.mkdir()
    _fits(inputs / "field.fits", _image(128, 1))
    tifffile.imwrite(inputs / "field.tif", _image(48, 2))
    out = tmp_path / "out"
    for extra in ((), ("--overwrite",)):
        code, _, err = run_cli(capsys, "predict", seg_model, inputs, "--out", out, *extra)
        assert code == 1, extra
        assert_one_line_error(err, "two inputs share the name 'field'")
        assert _written(out) == [], extra


def test_existing_outputs_are_found_before_a_mosaic_is_computed(
    capsys, tmp_path, seg_model, monkeypatch
):
    """One whole image's product exists: the mosaic before it was computed (hours on a real
    one) before the run was refused. Its own existing catalog is named up front too."""
    monkeypatch.setattr(sc.inference, "AUTO_BLOCK_PIXELS", 100 * 100)
    inputs = tmp_path / "in"
    inputs.mkdir()
    _fits(inputs / "big.fits", _image(128, 1))
    tifffile.imwrite(inputs / "small.tif", _image(48, 2))
    before = _contents(inputs)
    out = tmp_path / "out"
    out.mkdir()
    (out / "small_prob.tif").write_bytes(b"old")
    code, _, err = run_cli(capsys, "predict", seg_model, inputs, "--out", out, "--quiet")
    assert code == 1
    assert_one_line_error(err, "small_prob.tif", "output exists", "--overwrite")
    assert _written(out) == ["small_prob.tif"]
    (out / "small_prob.tif").unlink()
    (out / "big_catalog.ecsv").write_text("old")
    code, _, err = run_cli(capsys, "predict", seg_model, inputs, "--out", out, "--quiet")
    assert code == 1
    assert_one_line_error(err, "big_catalog.ecsv", "output exists")
    assert _written(out) == ["big_catalog.ecsv"]
    code, _, err = run_cli(
        capsys, "predict", seg_model, inputs, "--out", out, "--quiet", "--overwrite"
    )
    assert code == 0, err
    assert {"big_labels.zarr", "big_catalog.ecsv", "small_labels.tif"} <= set(_written(out))
    assert _contents(inputs) == before


# ----------------------------------------------------------- input-specific options (finding 7)
def test_an_option_a_movie_cannot_take_is_refused_before_anything_is_written(
    capsys, tmp_path, seg_model
):
    """``a.tif``, ``b.tif`` and a movie with --regions: a and b's products were written, then the
    movie was refused (exit 2), and a retry without --regions failed on them."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    tifffile.imwrite(inputs / "a.tif", _image(32, 1))
    tifffile.imwrite(inputs / "b.tif", _image(32, 2))
    frames = np.stack([_image(32, s) for s in range(3)])
    tifffile.imwrite(inputs / "movie.tif", frames, metadata={"axes": "TYX"})
    before = _contents(inputs)
    out = tmp_path / "out"
    for extra in (("--regions", "ellipse"), ("--format", "fits"), ("--geojson",)):
        code, _, err = run_cli(capsys, "predict", seg_model, inputs, "--out", out, *extra)
        assert code == 2, (extra, err)
        assert_one_line_error(err, "movie.tif", "3 T planes", "plane by plane")
        assert _written(out) == [], extra
    assert _contents(inputs) == before


def test_an_option_a_mosaic_cannot_take_is_refused_before_anything_is_written(
    capsys, tmp_path, seg_model, monkeypatch
):
    """A whole image before an automatically block-wise one, with --uncertainty: refused up
    front."""
    monkeypatch.setattr(sc.inference, "AUTO_BLOCK_PIXELS", 100 * 100)
    inputs = tmp_path / "in"
    inputs.mkdir()
    tifffile.imwrite(inputs / "a.tif", _image(32, 1))
    tifffile.imwrite(inputs / "z.tif", _image(128, 2))
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "predict", seg_model, inputs, "--out", out, "--uncertainty", "tta"
    )
    assert code == 2
    assert_one_line_error(err, "z.tif", "block-wise")
    assert _written(out) == []


# ------------------------------------------------------------ --tile/--overlap/--block (finding 6)
@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (("--tile", "0"), "--tile: expected an integer >= 1, got '0'"),
        (("--tile", "-64"), "--tile: expected an integer >= 1, got '-64'"),
        (("--block", "7"), "--block: expected an integer >= 16, got '7'"),
        (("--block", "-256"), "--block: expected an integer >= 16, got '-256'"),
        (("--overlap", "-1"), "--overlap: expected an integer >= 0 or auto, got '-1'"),
    ],
)
def test_bad_tile_and_block_values_are_usage_errors(capsys, tmp_path, extra, fragment):
    code, _, err = run_cli(capsys, "predict", "m.keras", "a.fits", "--out", tmp_path, *extra)
    assert code == 2
    assert_one_line_error(err, fragment)


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (("--tile", "100"), ("--tile 100 is not a multiple of the model's divisor 8", "96 or 104")),
        (("--tile", "4"), ("--tile 4 is smaller than the model's minimum tile 8",)),
        (("--tile", "64", "--overlap", "64"), ("--overlap 64 leaves no stride in tile 64",)),
        (("--tile", "64", "--overlap", "60", "--block", "64"), ("--overlap 60 leaves no stride",)),
    ],
)
def test_tile_checks_needing_the_model_run_before_any_input_is_read(
    capsys, tmp_path, seg_model, extra, fragments
):
    """Exit 1 after the first file was read, blamed on it; now a usage error naming the option,
    before any input is opened (the input here is not even an image)."""
    image = tmp_path / "a.tif"
    image.write_bytes(b"not a tiff")
    code, _, err = run_cli(capsys, "predict", seg_model, image, "--out", tmp_path / "o", *extra)
    assert code == 2, err
    assert_one_line_error(err, *fragments)
    assert "a.tif" not in err
    assert not (tmp_path / "o").exists() or _written(tmp_path / "o") == []


# ----------------------------------------------------- an earlier run's products (finding 9)
def test_products_of_an_earlier_run_in_another_format_are_not_inputs(capsys, tmp_path, seg_model):
    """``--out`` = the input folder, first TIFF products then FITS: ``a_labels.tif`` and
    ``a_prob.tif`` were segmented as images (``a_labels_labels.fits``)."""
    tifffile.imwrite(tmp_path / "a.tif", _image(32, 1))
    before = (tmp_path / "a.tif").read_bytes()
    args = ("predict", seg_model, tmp_path, "--out", tmp_path, "--quiet")
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    with pytest.warns(SciconvWarning, match=r"a_labels\.tif, \S*a_prob\.tif") as record:
        code, _, err = run_cli(capsys, *args, "--format", "fits", "--overwrite")
    assert code == 0, err
    assert "sciconv products of other inputs" in str(record[0].message)
    assert _written(tmp_path) == [
        "a.tif", "a_catalog.ecsv", "a_labels.fits", "a_labels.tif", "a_prob.fits", "a_prob.tif",
    ]  # fmt: skip
    assert (tmp_path / "a.tif").read_bytes() == before


def test_a_product_like_name_without_its_input_is_an_input(capsys, tmp_path, seg_model):
    """Conservative: ``b_labels.tif`` alone (no ``b.*`` input) is segmented as an image."""
    tifffile.imwrite(tmp_path / "b_labels.tif", _image(32, 1))
    code, _, err = run_cli(capsys, "predict", seg_model, tmp_path, "--out", tmp_path / "o")
    assert code == 0, err
    assert "b_labels_labels.tif" in _written(tmp_path / "o")


# ---------------------------------------------------------- an earlier run's sidecars (finding 8)
def test_overwrite_removes_an_earlier_runs_sidecars_this_run_does_not_write(
    capsys, tmp_path, seg_model
):
    """Run 1 with --uncertainty wrote a_uncert.tif; run 2 without it, --overwrite, replaced
    prob/labels/catalog and left run 1's a_uncert.tif beside them (one folder, two runs)."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    tifffile.imwrite(inputs / "a.tif", _image(64))
    common = ("predict", seg_model, inputs, "--out", out, "--quiet")
    code, _, err = run_cli(capsys, *common, "--uncertainty", "tta")
    assert code == 0, err
    assert (out / "a_uncert.tif").is_file()
    keep = out / "notes_uncert.tif"  # not a product of this run's inputs: left alone
    keep.write_bytes(b"x")
    with pytest.warns(SciconvWarning, match=r"removed a_uncert\.tif, an earlier run's"):
        code, _, err = run_cli(capsys, *common, "--overwrite")
    assert code == 0, err
    assert not (out / "a_uncert.tif").exists()
    assert _written(out) == ["a_catalog.ecsv", "a_labels.tif", "a_prob.tif", "notes_uncert.tif"]


def test_uncertainty_on_an_image_without_objects(capsys, tmp_path):
    """--uncertainty on an image where nothing is found: an empty catalog with the score and
    uncertainty columns (astropy's join refused the empty tables: exit 1)."""
    path = tmp_path / "empty.keras"
    model = sc.models.segmenter((None, None, 1), depth=1, filters=2)
    last = model.layers[-2] if model.layers[-1].weights == [] else model.layers[-1]
    kernel, bias = last.get_weights()
    last.set_weights([np.zeros_like(kernel), np.array([9.0, 0.0, 0.0][: bias.size], bias.dtype)])
    model.save(path)
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    tifffile.imwrite(inputs / "a.tif", _image(32))
    code, _, err = run_cli(
        capsys, "predict", path, inputs, "--out", out, "--uncertainty", "tta", "--quiet"
    )
    assert code == 0, err
    from astropy.table import Table

    table = Table.read(out / "a_catalog.ecsv")
    assert len(table) == 0 and {"label", "score", "uncertainty"} <= set(table.colnames)
    # the maps were computed in float32 whatever "auto" picks for the model (the HISTORY said
    # the model's bfloat16 choice while the uncertainty wrapper ran in float32)
    with tifffile.TiffFile(out / "a_prob.tif") as tif:
        history = " ".join(tif.shaped_metadata[0]["history"])
    assert "precision = 'float32 (auto)'" in history, history


# -------------------------------------------------------------- --skip-existing (QA report, resume)
def _stamps(out) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in out.iterdir()}


def test_skip_existing_continues_an_interrupted_batch(capsys, tmp_path, seg_model):
    """A batch stopped by a bad file (an all-NaN image) after a.fits: the retry failed with
    "output exists" for a.fits, and --overwrite recomputed everything. With --skip-existing the
    inputs whose products all exist are skipped (a line says so) and the rest are segmented."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    _fits(inputs / "a.fits", _image(32, 1))
    _fits(inputs / "b.fits", np.full((32, 32), np.nan, np.float32))
    _fits(inputs / "c.fits", _image(32, 2))
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "predict", seg_model, inputs, "--out", out, "--quiet")
    assert code == 1
    assert_one_line_error(err, "b.fits", "normalization limits are not finite")
    assert _written(out) == ["a_catalog.ecsv", "a_labels.fits", "a_prob.fits"]
    done = _stamps(out)
    (inputs / "b.fits").unlink()  # the bad file moved away
    code, _, err = run_cli(capsys, "predict", seg_model, inputs, "--out", out)
    assert code == 1
    assert_one_line_error(err, "output exists", "--overwrite")
    code, stdout, err = run_cli(
        capsys, "predict", seg_model, inputs, "--out", out, "--skip-existing"
    )
    assert code == 0, err
    assert f"{inputs / 'a.fits'}: skipped, its products exist (--skip-existing)" in stdout
    assert f"{inputs / 'c.fits'}: " in stdout
    assert _written(out) == [
        "a_catalog.ecsv", "a_labels.fits", "a_prob.fits",
        "c_catalog.ecsv", "c_labels.fits", "c_prob.fits",
    ]  # fmt: skip
    assert {k: v for k, v in _stamps(out).items() if k in done} == done  # a's untouched
    code, stdout, err = run_cli(
        capsys, "predict", seg_model, inputs, "--out", out, "--skip-existing", "--quiet"
    )
    assert code == 0, err
    assert stdout == ""


def test_ome_tiff_inputs_get_ome_tiff_products_that_skip_existing_reads(
    capsys, tmp_path, seg_model
):
    """An OME-TIFF input gave plain-TIFF products (the OME-XML pixel size, unit and channel
    names gone); now OME-TIFF products, whose recorded settings --skip-existing reads back (the
    history is the OME image's Description) and --format tiff still gives plain TIFF."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    scale = {"PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "PhysicalSizeXUnit": "nm"}
    scale["PhysicalSizeYUnit"] = "nm"
    tifffile.imwrite(inputs / "a.ome.tif", _image(32, 1), metadata={"axes": "YX", **scale})
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "predict", seg_model, inputs, "--out", out, "--quiet")
    assert code == 0, err
    assert _written(out) == ["a_catalog.ecsv", "a_labels.ome.tif", "a_prob.ome.tif"]
    for name in ("a_labels.ome.tif", "a_prob.ome.tif"):
        with tifffile.TiffFile(out / name) as tif:
            pixels = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]
        assert (pixels["PhysicalSizeX"], pixels["PhysicalSizeXUnit"]) == (0.5, "nm"), name
    assert sc.io.read(out / "a_prob.ome.tif").meta["channel_names"] == ["background", "foreground"]
    done = _stamps(out)
    code, stdout, err = run_cli(
        capsys, "predict", seg_model, inputs, "--out", out, "--skip-existing"
    )
    assert code == 0, err
    assert "skipped, its products exist (--skip-existing)" in stdout
    assert _stamps(out) == done
    code, stdout, err = run_cli(capsys, "predict", seg_model, inputs, "--out", out, "--tile",
                                "16", "--skip-existing")  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "a.ome.tif", "a_prob.ome.tif was made with tile = 'auto'")
    assert _stamps(out) == done
    code, _, err = run_cli(
        capsys, "predict", seg_model, inputs, "--out", tmp_path / "t", "--format", "tiff"
    )
    assert code == 0, err
    with tifffile.TiffFile(tmp_path / "t" / "a_labels.tif") as tif:
        assert not tif.is_ome and tif.pages[0].resolution[0] > 0


def test_skip_existing_redoes_an_input_a_killed_run_left_unfinished(capsys, tmp_path, seg_model):
    """Only some products of an input, recording this run's settings (a batch job SIGKILLed
    between two of them): --skip-existing refused the whole batch until they were removed by
    hand (QA); now that input is segmented again, with a warning. Only some products that
    record no sciconv prediction (a lone catalog) are still refused, before anything runs."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    tifffile.imwrite(inputs / "a.tif", _image(32, 1))
    tifffile.imwrite(inputs / "b.tif", _image(32, 2))
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "predict", seg_model, inputs / "a.tif", "--out", out, "--quiet")
    assert code == 0, err
    whole = (out / "a_labels.tif").read_bytes()
    (out / "a_catalog.ecsv").unlink()
    with pytest.warns(
        SciconvWarning, match=r"1 input\(s\) have only some of their products.*a\.tif"
    ):
        code, _, err = run_cli(
            capsys, "predict", seg_model, inputs, "--out", out, "--skip-existing", "--quiet"
        )
    assert code == 0, err
    assert _written(out) == [f"{s}_{k}" for s in "ab" for k in ("catalog.ecsv", "labels.tif",
                                                              "prob.tif")]  # fmt: skip
    assert (out / "a_labels.tif").read_bytes() == whole
    (out / "b_labels.tif").unlink()
    (out / "b_prob.tif").unlink()  # b's catalog alone records nothing: not known to be ours
    before = _stamps(out)
    code, _, err = run_cli(capsys, "predict", seg_model, inputs, "--out", out, "--skip-existing")
    assert code == 1
    assert_one_line_error(
        err, "b.tif", "only some of its products exist (b_catalog.ecsv", "--overwrite"
    )
    assert _stamps(out) == before


def test_skip_existing_with_block_wise_inputs(capsys, tmp_path, seg_model):
    inputs = tmp_path / "in"
    inputs.mkdir()
    _fits(inputs / "big.fits", _image(64, 1))
    out = tmp_path / "out"
    common = ("predict", seg_model, inputs, "--out", out, "--block", "32")
    code, _, err = run_cli(capsys, *common, "--quiet")
    assert code == 0, err
    assert _written(out) == ["big_catalog.ecsv", "big_labels.zarr"]
    import os
    import subprocess
    import sys
    import time

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = out / f".big_labels.zarr.{dead.pid}.abc123.part"  # a SIGKILLed writer's store
    (stale / "c").mkdir(parents=True)
    then = time.time() - 120
    for p in (stale, stale / "c"):
        os.utime(p, (then, then))
    from sciconv._atomic import forget_listings

    forget_listings()  # a new process: no folder listing cached by the first run
    code, stdout, err = run_cli(capsys, *common, "--skip-existing")
    assert code == 0, err
    assert "big.fits: skipped, its products exist" in stdout
    assert not stale.exists()  # QA: only writes swept them, and a resume writes none there
    # QA: a resume with other settings (or another model) skipped finished mosaics silently
    code, _, err = run_cli(capsys, *common, "--skip-existing", "--threshold", "0.9")
    assert code == 1
    assert_one_line_error(err, "big_labels.zarr was made with threshold = not set", "0.9")
    # settings that do not change the products may differ (a smaller batch after an OOM)
    code, stdout, err = run_cli(capsys, *common, "--skip-existing", "--batch-size", "2")
    assert code == 0, err
    assert "big.fits: skipped, its products exist" in stdout


def test_skip_existing_and_overwrite_are_exclusive(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "predict", "m.keras", "a.fits", "--out", tmp_path, "--skip-existing", "--overwrite"
    )
    assert code == 2
    assert_one_line_error(err, "--overwrite", "not allowed with argument --skip-existing")


def test_skip_existing_is_refused_for_a_classifier(capsys, tmp_path):
    """One predictions.csv for the whole batch: nothing per input to skip; a usage error."""
    model = tmp_path / "cls.keras"
    sc.models.classifier((16, 16, 1), 2, filters=(4,), dense=()).save(model)
    tifffile.imwrite(tmp_path / "a.tif", _image(16))
    code, _, err = run_cli(
        capsys, "predict", model, tmp_path / "a.tif", "--out", tmp_path / "o", "--skip-existing"
    )
    assert code == 2
    assert_one_line_error(err, "--skip-existing", "segmenters", "predictions.csv")
    assert not (tmp_path / "o" / "predictions.csv").exists()


def test_mc_dropout_on_a_model_without_dropout_is_a_usage_error(capsys, tmp_path, seg_model):
    """--uncertainty mc_dropout on a model with no dropout failed per input (exit 1, the message
    blaming the first image) after the model loaded; it is the option that cannot work."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    tifffile.imwrite(inputs / "a.tif", _image(32))
    out = tmp_path / "out"
    args = ("predict", seg_model, inputs, "--out", out, "--uncertainty", "mc_dropout")
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert_one_line_error(err, "--uncertainty mc_dropout", "no Dropout", "tta")
    assert "a.tif" not in err and not out.exists()


def test_a_resume_that_would_mix_precisions_says_so(capsys, tmp_path, seg_model, monkeypatch):
    """QA: a batch resumed where --precision auto chooses otherwise (another machine,
    SCICONV_PRECISION) finished in another precision than its first inputs, without a word."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    _fits(inputs / "a.fits", _image(32, 1))
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "predict", seg_model, inputs, "--out", out, "--quiet")
    assert code == 0, err
    _fits(inputs / "b.fits", _image(32, 2))  # the rest of the batch
    monkeypatch.setattr(sc.inference, "choose_precision", lambda *a, **k: "bfloat16")
    with pytest.warns(SciconvWarning, match=r"1 finished input\(s\) were segmented in float32 "
                      r"and --precision auto chooses bfloat16"):  # fmt: skip
        code, _, err = run_cli(capsys, "predict", seg_model, inputs, "--out", out, "--quiet",
                               "--skip-existing")  # fmt: skip
    assert code == 0, err


def test_block_wise_products_record_the_precision_auto_chose(
    capsys, tmp_path, seg_model, monkeypatch
):
    """QA interrupt: the zarr store and catalog of a mosaic said precision = 'auto' while its
    labels were bfloat16's; a resume elsewhere could not tell (whole-image products said it)."""
    import zarr
    from astropy.table import Table

    inputs = tmp_path / "in"
    inputs.mkdir()
    _fits(inputs / "big.fits", _image(64, 1))
    out = tmp_path / "out"
    common = ("predict", seg_model, inputs, "--out", out, "--block", "32", "--quiet")
    code, _, err = run_cli(capsys, *common)
    assert code == 0, err
    chosen = sc.inference.choose_precision(
        sc.models.load(seg_model), "auto", tile=(512, 512), channels=1
    )
    stored = zarr.open(out / "big_labels.zarr", mode="r").attrs["sciconv"]["history"]
    catalog = Table.read(out / "big_catalog.ecsv").meta["HISTORY"]
    for history in (stored, catalog):
        assert f"precision = '{chosen} (auto)'" in " ".join(history), history
    other = "bfloat16" if chosen == "float32" else "float32"
    _fits(inputs / "more.fits", _image(64, 2))
    monkeypatch.setattr(sc.inference, "choose_precision", lambda *a, **k: other)
    with pytest.warns(SciconvWarning, match=rf"segmented in {chosen} and --precision auto"):
        code, _, err = run_cli(capsys, *common, "--skip-existing")
    assert code == 0, err


def test_a_non_tiff_product_cannot_be_told_with_an_old_tifffile(tmp_path, monkeypatch):
    """tifffile < 2025.10's TiffFileError is no ValueError: a non-TIFF file where a product goes
    ended ``sciconv predict`` in "unexpected TiffFileError" (QA floors). It is a product whose
    history cannot be read, on every tifffile; the old exception class is replayed here."""
    from sciconv._cli_predict_batch import recorded_history, records_prediction

    class TiffFileError(Exception):  # tifffile <= 2025.9
        pass

    def old_tifffile(*args, **kwargs):
        raise TiffFileError("not a TIFF file b'old'")

    monkeypatch.setattr(tifffile, "TiffFileError", TiffFileError)
    monkeypatch.setattr(tifffile, "TiffFile", old_tifffile)
    product = tmp_path / "small_prob.tif"
    product.write_text("old")
    with pytest.raises(ValueError, match="not a TIFF file"):
        recorded_history(product)
    assert records_prediction(product) is None
