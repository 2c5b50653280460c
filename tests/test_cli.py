"""Tests for the ``sciconv`` command: each subcommand's success and its main error paths."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from _helpers import assert_one_line_error, blob_images, run_cli

from sciconv import cli
from sciconv.errors import SciconvWarning

ROOT = Path(__file__).resolve().parents[1]


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- help and usage
_PREDICT_OPTIONS = ["MODEL", "INPUT", "--out", "--tile", "--overlap", "--tta", "--overwrite"]


def test_help_lists_every_subcommand(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for sub in ("demo", "train", "predict", "info"):
        assert sub in out


@pytest.mark.parametrize(
    ("sub", "options"),
    [
        ("demo", ["--out", "--overwrite", "--fast", "--data"]),
        ("train", ["CONFIG.yaml", "--overwrite"]),
        ("predict", [*_PREDICT_OPTIONS, "--format", "ome-zarr", "--catalog-format", "votable"]),
        ("info", []),
    ],
)
def test_help_of_each_subcommand(capsys, sub, options):
    code, out, _ = run_cli(capsys, sub, "--help")
    assert code == 0
    assert out.startswith(f"usage: sciconv {sub}")
    for option in options:
        assert option in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["fly"], "invalid choice: 'fly'"),
        (["predict", "m.keras", "a.fits"], "the following arguments are required: --out"),
        (
            ["predict", "m.keras", "a.fits", "--out", "o", "--tile", "big"],
            "argument --tile: expected an integer >= 1, got 'big'",
        ),
        (["predict", "m.keras", "a.fits", "--out", "o", "--format", "zarr"], "invalid choice"),
        (
            ["predict", "m.keras", "a.fits", "--out", "o", "--catalog-format", "csv"],
            "argument --catalog-format: invalid choice: 'csv'",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, args, fragment):
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert_one_line_error(err, fragment)


def test_info_prints_versions_and_devices(capsys):
    code, out, _ = run_cli(capsys, "info")
    assert code == 0
    assert "tensorflow " in out and "strategy:" in out


def test_console_script_subprocess_exit_code_and_message(tmp_path):
    """The real entry point: a missing config ends in one stderr line and exit code 2."""
    env = {**os.environ, "SCICONV_DEBUG": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "sciconv.cli", "train", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == f"sciconv: error: {tmp_path / 'nope.yaml'}: configuration file not found"
    )


def test_a_closed_stderr_does_not_stop_the_work(tmp_path):
    """QA interrupt: started with file descriptor 2 closed (2>&-, a daemonising wrapper), every
    command exited 1 at once, silently (sys.stderr is None); a closed stdout was fine. QA env:
    with 0 closed too, /dev/null took descriptor 0, 2 stayed closed and TensorFlow's quiet
    import failed (EBADF, exit 1, no message anywhere)."""
    proc = subprocess.run(
        [sys.executable, "-m", "sciconv.cli", "info"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "SCICONV_DEBUG": "0"},
        preexec_fn=lambda: (os.close(0), os.close(2)),
        timeout=120,
    )
    assert proc.returncode == 0
    assert "tensorflow " in proc.stdout


def test_ctrl_c_while_tensorflow_loads_is_one_line(capsys, monkeypatch):
    """QA interrupt: the TensorFlow import ran before the signal handling, so a Ctrl-C in a
    command's first seconds printed 30 lines of TensorFlow's traceback."""

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "import_tensorflow_quietly", interrupted)
    monkeypatch.delenv("SCICONV_DEBUG", raising=False)
    code, _, err = run_cli(capsys, "info")
    assert code == 130 and err.strip() == "sciconv: interrupted"


def test_after_an_interrupt_a_second_signal_does_not_end_the_exit(monkeypatch):
    """QA interrupt: Ctrl-C twice (SIGTERM then SIGINT) ended the process by the signal while
    it joined its threads, status -2 instead of 130, sometimes with a traceback."""
    import signal

    set_to = {}
    monkeypatch.setattr(signal, "signal", lambda sig, handler: set_to.__setitem__(sig, handler))
    for code in (0, 1):
        monkeypatch.setattr(cli, "main", lambda code=code: code)
        assert cli.run() == code and not set_to
    for code in (130, cli.EXIT_TERMINATED):
        monkeypatch.setattr(cli, "main", lambda code=code: code)
        assert cli.run() == code
        assert set_to == {signal.SIGINT: signal.SIG_IGN, signal.SIGTERM: signal.SIG_IGN}


def test_unexpected_errors_are_one_line_unless_debugging(capsys, monkeypatch):
    def boom(args):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(cli, "_cmd_info", boom)
    code, _, err = run_cli(capsys, "info")
    assert code == 1
    assert_one_line_error(err, "unexpected RuntimeError: something broke", "SCICONV_DEBUG=1")
    monkeypatch.setenv("SCICONV_DEBUG", "1")
    with pytest.raises(RuntimeError, match="something"):
        cli.main(["info"])


# --------------------------------------------------------------------------- train: configs
GOOD_DATASET = "dataset: {kind: folder, path: DATA}\n"


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("dataset: [1, 2\n", ["not valid YAML"]),
        ("- just\n- a list\n", ["must be a mapping"]),
        (
            GOOD_DATASET + "model: {type: classifier}\ntrainng: {epochs: 1}\n",
            [
                "unknown key 'trainng' in the configuration (did you mean 'training'?)",
                "allowed keys: dataset, model, training",
            ],
        ),
        (
            "dataset: {kind: folder, path: DATA, imgsize: 32}\nmodel: {type: classifier}\n",
            ["unknown key 'imgsize' in dataset (kind folder)", "'image_size'", "validation_split"],
        ),
        (
            GOOD_DATASET + "model: {type: classifier, filter: [8]}\n",
            ["unknown key 'filter' in model (type classifier) (did you mean 'filters'?)", "dense"],
        ),
        (
            GOOD_DATASET + "model: {type: classifier}\ntraining: {epoch: 3}\n",
            ["unknown key 'epoch' in training (did you mean 'epochs'?)", "workdir"],
        ),
        (
            GOOD_DATASET + "model: {type: classifier}\ntraining: {overwrite: true}\n",
            ["unknown key 'overwrite' in training"],
        ),
        (
            "dataset: {kind: fold, path: DATA}\nmodel: {type: classifier}\n",
            ["dataset.kind must be one of 'folder', 'catalog', 'pairs'; got 'fold'"],
        ),
        (GOOD_DATASET + "model: {type: unet}\n", ["model.type must be one of 'classifier'"]),
        (
            "dataset: {kind: pairs, images: DATA}\nmodel: {type: segmenter}\n",
            ["needs the key 'masks'"],
        ),
        ("model: {type: classifier}\n", ["section 'dataset' is missing"]),
        (  # was accepted and ignored: fit's batch_size is for arrays, the data come batched
            GOOD_DATASET + "model: {type: classifier}\ntraining: {batch_size: 4}\n",
            ["unknown key 'batch_size' in training (the batch size is dataset.batch_size)"],
        ),
        (  # the last of two values won silently
            "dataset: {kind: folder, path: DATA, seed: 0, seed: 1}\nmodel: {type: classifier}\n",
            ["not valid YAML (key 'seed' appears twice)"],
        ),
    ],
)
def test_bad_config_names_key_and_allowed_ones(capsys, tmp_path, text, fragments):
    cfg = write_yaml(tmp_path / "run.yaml", text.replace("DATA", str(tmp_path)))
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 2
    assert_one_line_error(err, str(cfg), *fragments)


def test_example_config_in_repo_is_valid():
    config = cli.load_config(ROOT / "configs" / "example_train.yaml")
    assert config["dataset"]["kind"] == "folder"
    assert config["model"]["type"] == "classifier"
    assert config["training"]["workdir"] == "runs/galaxies"


def test_train_missing_data_path_is_one_line(capsys, tmp_path):
    cfg = write_yaml(
        tmp_path / "run.yaml",
        f"dataset: {{kind: folder, path: {tmp_path / 'none'}}}\nmodel: {{type: classifier}}\n"
        f"training: {{epochs: 1, workdir: {tmp_path / 'run'}}}\n",
    )
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 2
    assert_one_line_error(err, "dataset.path: path not found", "none")
    code, _, err = run_cli(capsys, "train", tmp_path)  # a folder for the config: said "not found"
    assert code == 2
    assert_one_line_error(err, f"{tmp_path}: is a folder; give the YAML configuration file")


# --------------------------------------------------------------------------- train + predict
@pytest.fixture(scope="module")
def trained_classifier(tmp_path_factory):
    """A tiny classifier trained through ``sciconv train`` (blob vs. no blob)."""
    root = tmp_path_factory.mktemp("cls")
    blob_images(root / "data" / "blob", 12, bright=True, seed=1)
    blob_images(root / "data" / "empty", 12, bright=False, seed=2)
    cfg = write_yaml(
        root / "run.yaml",
        f"dataset: {{kind: folder, path: {root / 'data'}, validation_split: 0.25, batch_size: 8, "
        "seed: 0}\n"
        "model: {type: classifier, filters: [4], dense: [8], dropout: 0.0}\n"
        f"training: {{epochs: 2, workdir: {root / 'run'}, tensorboard: false, verbose: 0, "
        "seed: 0}\n",
    )
    code = cli.main(["train", str(cfg)])
    return root, cfg, code


def test_train_writes_run_and_refuses_to_overwrite(capsys, trained_classifier):
    root, cfg, code = trained_classifier
    assert code == 0
    run = root / "run"
    for name in ("best.keras", "last.keras", "log.csv", "config.json"):
        assert (run / name).is_file()
    assert len((run / "log.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    mtime = (run / "best.keras").stat().st_mtime_ns
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 1
    assert_one_line_error(err, str(run), "--overwrite")
    assert (run / "best.keras").stat().st_mtime_ns == mtime  # untouched


def test_predict_classifier_writes_one_table(capsys, trained_classifier):
    from astropy.table import Table

    root, _, code = trained_classifier
    assert code == 0
    model = root / "run" / "best.keras"
    out = root / "pred"
    code, stdout, err = run_cli(
        capsys, "predict", model, root / "data" / "blob", root / "data" / "empty" / "img00.tif",
        "--out", out,
    )  # fmt: skip
    assert code == 0, err
    table = Table.read(out / "predictions.csv", format="ascii.csv")
    assert len(table) == 13
    # one column per class, by postprocess.flatten_table's rule (probabilities_<class name>)
    assert {"path", "class", "class_index", "probabilities_blob", "probabilities_empty"} <= set(
        table.colnames
    )
    np.testing.assert_allclose(
        table["probabilities_blob"] + table["probabilities_empty"], 1.0, atol=1e-5
    )
    assert set(table["class"]) <= {"blob", "empty"}
    assert "13 predictions" in stdout
    # a second run refuses to overwrite, then replaces with --overwrite
    code, _, err = run_cli(capsys, "predict", model, root / "data" / "blob", "--out", out)
    assert code == 1
    assert_one_line_error(err, "predictions.csv", "--overwrite")
    code, _, _ = run_cli(
        capsys, "predict", model, root / "data" / "blob", "--out", out, "--overwrite"
    )
    assert code == 0
    assert len(Table.read(out / "predictions.csv", format="ascii.csv")) == 12


def test_predict_classifier_tta_is_applied_and_segmenter_options_refused(
    capsys, trained_classifier
):
    """--tta was silently ignored for classifiers (the plain prediction was written), and
    segmenter options (--tile, --scale, ...) too: now the mean over the 8 views, and an error."""
    from astropy.table import Table

    from sciconv import inference, models

    root, _, code = trained_classifier
    assert code == 0
    model_path = root / "run" / "best.keras"
    files = sorted((root / "data" / "blob").iterdir())[:4]
    out = root / "pred_tta"
    code, _, err = run_cli(capsys, "predict", model_path, *files, "--out", out, "--tta")
    assert code == 0, err
    table = Table.read(out / "predictions.csv", format="ascii.csv")
    model = models.load(model_path)
    want = inference.predict_files(model, files, tta=True, progress=False)
    plain = inference.predict_files(model, files, progress=False)
    got = np.stack([table["probabilities_blob"], table["probabilities_empty"]], axis=1)
    np.testing.assert_allclose(got, want["probabilities"], atol=1e-5)
    assert not np.allclose(want["probabilities"], plain["probabilities"], atol=1e-5)
    assert {"tta_std_blob", "tta_std_empty"} <= set(table.colnames)
    for extra in (["--tile", "64"], ["--scale", "0.5"], ["--uncertainty", "mc_dropout"]):
        code, _, err = run_cli(
            capsys, "predict", model_path, files[0], "--out", root / "refused", *extra
        )
        assert code == 2  # a usage error
        assert_one_line_error(err, f"{extra[0]}", "applies to segmenters", "classification")
    assert not (root / "refused" / "predictions.csv").exists()


def test_predict_names_the_sub_folders_of_an_input_folder(capsys, trained_classifier, tmp_path):
    """A folder's sub-folders are not searched: their images were skipped without a word."""
    root, _, _ = trained_classifier
    folder = tmp_path / "blob"
    (folder / "night2").mkdir(parents=True)
    for i, p in enumerate(sorted((root / "data" / "blob").iterdir())[:3]):
        (folder / p.name if i < 2 else folder / "night2" / p.name).write_bytes(p.read_bytes())
    (folder / "scan.bmp").write_bytes(b"BM")  # a format sciconv does not read: named too
    with pytest.warns(SciconvWarning) as record:
        code, _, err = run_cli(
            capsys, "predict", root / "run" / "best.keras", folder, "--out", tmp_path / "o"
        )
    assert code == 0, err
    said = " | ".join(str(w.message) for w in record)
    assert "blob: sub-folder(s) night2 not searched" in said
    assert "1 image(s) of a format sciconv does not read skipped (scan.bmp)" in said
    assert len((tmp_path / "o" / "predictions.csv").read_text().splitlines()) == 3  # header + 2


@pytest.mark.parametrize(
    ("which", "fragment"),
    [
        ("model", "model file not found"),
        ("input", "input not found"),
        ("empty_folder", "folder holds no image files"),
        ("class_folders", "sub-folders blob, empty are not searched: name them"),
        ("overlap", "expected an integer >= 0 or auto"),
        ("out_is_file", "--out must be a folder"),
        ("model_is_folder", "is a folder; give a .keras model file"),
        ("scale_and_size", "give --scale or --object-size PX, not both"),
    ],
)
def test_predict_bad_inputs(capsys, trained_classifier, tmp_path, which, fragment):
    root, _, _ = trained_classifier
    model = root / "run" / "best.keras"
    image = root / "data" / "blob" / "img00.tif"
    out = tmp_path / "out"
    extra: list = []
    if which == "model":
        model = tmp_path / "missing.keras"
    elif which == "input":
        image = tmp_path / "missing.fits"
    elif which == "empty_folder":
        image = tmp_path / "empty"
        image.mkdir()
    elif which == "class_folders":  # the class-per-folder layout training used
        image = root / "data"
    elif which == "overlap":
        extra = ["--overlap", "lots"]
    elif which == "model_is_folder":  # was "model file not found"
        model = root / "data"
    elif which == "scale_and_size":  # a usage error (exit 2), not one blamed on the input file
        extra = ["--scale", "0.5", "--object-size", "30"]
    else:
        out = tmp_path / "file.txt"
        out.write_text("x")
    code, _, err = run_cli(capsys, "predict", model, image, "--out", out, *extra)
    assert code == (2 if which in ("overlap", "scale_and_size") else 1)
    assert_one_line_error(err, fragment)


@pytest.mark.parametrize(
    ("tile", "fragments"),
    [
        (20, ("--tile 20 is not a multiple of the model's divisor 8", "use 16 or 24")),
        (4, ("--tile 4 is smaller than the model's minimum tile 8",)),
    ],
)
def test_predict_tile_is_checked_by_the_library(capsys, tmp_path, tile, fragments):
    """The library's rule (its InferenceError), checked once after the model loads: a usage
    error naming --tile (it exited 1 after the first file was read, blamed on that file)."""
    import sciconv as sc

    model = tmp_path / "m.keras"
    sc.models.segmenter((None, None, 1), depth=3, filters=2).save(model)
    image = tmp_path / "a.tif"
    tifffile.imwrite(image, np.zeros((48, 48), np.float32))
    out = tmp_path / "o"
    code, _, err = run_cli(capsys, "predict", model, image, "--out", out, "--tile", tile)
    assert code == 2
    assert_one_line_error(err, *fragments)
    assert not out.exists() or not any(out.iterdir())  # nothing written
    code, _, err = run_cli(capsys, "predict", model, image, "--out", out, "--tile", 48)
    assert code == 0, err  # a multiple of the divisor passes


def test_predict_rejects_a_file_that_is_not_a_model(capsys, tmp_path):
    fake = tmp_path / "model.keras"
    fake.write_text("<html>not a model</html>")
    image = tmp_path / "a.tif"
    tifffile.imwrite(image, np.zeros((16, 16), np.float32))
    code, _, err = run_cli(capsys, "predict", fake, image, "--out", tmp_path / "o")
    assert code == 1
    assert_one_line_error(err, "model.keras")


def _pairs(root: Path, n: int = 4, size: int = 32) -> None:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        lab = np.zeros((size, size), np.int32)
        for k in range(1, 4):
            cy, cx = rng.integers(6, size - 6, 2)
            lab[cy - 3 : cy + 3, cx - 3 : cx + 3] = k
        img = rng.normal(5, 1, (size, size)) + 40.0 * (lab > 0)
        tifffile.imwrite(root / "images" / f"c{i}.tif", img.astype(np.float32))
        tifffile.imwrite(root / "masks" / f"c{i}.tif", lab)


def test_train_segmenter_takes_its_class_count_from_the_dataset(capsys, tmp_path):
    """dataset num_classes: 4 without model.num_classes built a 2-class segmenter and failed."""
    from sciconv import models

    _pairs(tmp_path / "cells")
    cfg = write_yaml(
        tmp_path / "seg4.yaml",
        f"dataset: {{kind: pairs, images: {tmp_path / 'cells/images'}, "
        f"masks: {tmp_path / 'cells/masks'}, patch_size: 16, batch_size: 4, num_classes: 4}}\n"
        "model: {type: segmenter, depth: 2, filters: 4}\n"
        f"training: {{epochs: 1, workdir: {tmp_path / 'run'}, tensorboard: false, verbose: 0}}\n",
    )
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 0, err
    assert models.load(tmp_path / "run" / "last.keras").output_shape[-1] == 4


def test_train_and_predict_segmenter_keeps_fits_wcs(capsys, tmp_path):
    from astropy.io import fits
    from astropy.table import Table
    from astropy.wcs import WCS

    from sciconv import io

    _pairs(tmp_path / "cells")
    cfg = write_yaml(
        tmp_path / "seg.yaml",
        f"dataset: {{kind: pairs, images: {tmp_path / 'cells/images'}, "
        f"masks: {tmp_path / 'cells/masks'}, patch_size: 16, batch_size: 4, seed: 0}}\n"
        "model: {type: segmenter, depth: 2, filters: 4}\n"
        f"training: {{epochs: 20, workdir: {tmp_path / 'run'}, tensorboard: false, verbose: 0, "
        "seed: 0}\n",
    )  # 20 steps (one per epoch), seeded weights too: the model finds objects whatever ran first
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 0, err
    # a FITS input with a celestial WCS
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [16.0, 16.0]
    w.wcs.cdelt = [-5e-5, 5e-5]
    header = w.to_header()
    header["OBJECT"] = "test field"
    data = tifffile.imread(tmp_path / "cells/images/c0.tif")
    fits.PrimaryHDU(data, header=header).writeto(tmp_path / "field.fits")
    out = tmp_path / "pred"
    code, _, err = run_cli(
        capsys, "predict", tmp_path / "run" / "best.keras", tmp_path / "field.fits",
        tmp_path / "cells/images/c1.tif", "--out", out, "--tile", "32", "--overlap", "8",
    )  # fmt: skip
    assert code == 0, err
    prob = io.read(out / "field_prob.fits")
    labels = io.read(out / "field_labels.fits")
    assert prob.shape[:2] == (32, 32) and labels.shape[:2] == (32, 32)
    # postprocess.write_products' convention: the full class cube, planes named by CLASSi cards
    assert prob.shape[-1] == 2
    assert (prob.header["CLASS0"], prob.header["CLASS1"]) == ("background", "foreground")
    np.testing.assert_allclose(prob.data.sum(axis=-1), 1.0, atol=1e-4)
    history = " ".join(str(h) for h in prob.header["HISTORY"])
    assert "best.keras" in history
    # what precision="auto" chose is recorded, not just "auto" (a rerun can ask for it)
    assert re.search(r"precision = '(float32|bfloat16) \(auto\)'", history), history
    assert prob.wcs is not None
    np.testing.assert_allclose(prob.wcs.wcs.crval, [150.0, 2.0])
    assert prob.header["OBJECT"] == "test field"
    finite = prob.data[np.isfinite(prob.data)]
    assert finite.min() >= 0 and finite.max() <= 1
    cat = Table.read(out / "field_catalog.ecsv")
    assert "ra" in cat.colnames and "dec" in cat.colnames
    assert len(cat) == int(np.nanmax(labels.data))
    # a sky image: background-subtracted fluxes beside the raw sums (--background auto)
    assert {"flux", "background", "flux_err"} <= set(cat.colnames)
    assert np.all(cat["flux_err"] > 0)  # no BUNIT / GAIN: the background's noise alone
    assert cat.meta["FLUXERR"].startswith("background rms only")
    np.testing.assert_allclose(
        cat["flux"], cat["flux_sum"] - cat["background"] * cat["area"], rtol=1e-6, atol=1e-6
    )
    assert (out / "c1_prob.tif").is_file() and (out / "c1_labels.tif").is_file()
    assert io.read(out / "c1_prob.tif").shape == (32, 32, 2)  # TIFF: the same cube
    assert "flux" not in Table.read(out / "c1_catalog.ecsv").colnames  # no sky WCS: raw only
    before = (out / "field_prob.fits").read_bytes()
    code, _, err = run_cli(
        capsys, "predict", tmp_path / "run" / "best.keras", tmp_path / "field.fits", "--out", out
    )
    assert code == 1
    assert_one_line_error(err, "field_prob.fits", "--overwrite")
    assert (out / "field_prob.fits").read_bytes() == before
    # --regions: the detections as DS9 regions in sky coordinates, one per catalog row
    from regions import Regions

    out2 = tmp_path / "pred_regions"
    code, _, err = run_cli(
        capsys, "predict", tmp_path / "run" / "best.keras", tmp_path / "field.fits",
        "--out", out2, "--tile", "32", "--overlap", "8", "--regions", "ellipse",
    )  # fmt: skip
    assert code == 0, err
    regs = Regions.read(out2 / "field_regions.reg", format="ds9")
    cat2 = Table.read(out2 / "field_catalog.ecsv")
    assert len(regs) == len(cat2) > 0
    ra = [r.center.ra.deg for r in regs]
    np.testing.assert_allclose(sorted(ra), sorted(np.asarray(cat2["ra"])), atol=1e-7)
    # a FITS input with bad (NaN) pixels to OME-Zarr and a VOTable: the labels and the mask as
    # NGFF label groups (what napari shows), the catalog with the UCDs TOPCAT recognises
    from astropy.io.votable import parse
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    bad = data.astype(np.float32)
    bad[:4, :6] = np.nan
    fits.PrimaryHDU(bad, header=header).writeto(tmp_path / "masked.fits")
    out3 = tmp_path / "pred_zarr"
    code, _, err = run_cli(
        capsys, "predict", tmp_path / "run" / "best.keras", tmp_path / "masked.fits",
        "--out", out3, "--tile", "32", "--overlap", "8", "--format", "ome-zarr",
        "--catalog-format", "votable",
    )  # fmt: skip
    assert code == 0, err
    store = out3 / "masked.ome.zarr"
    nodes = {n.zarr.path.rstrip("/").rsplit("/", 1)[-1]: n for n in Reader(parse_url(str(store)))()}
    assert np.asarray(nodes["masked.ome.zarr"].data[0]).shape == (2, 32, 32)  # the class cube
    for name in ("instances", "mask"):
        assert any(type(spec).__name__ == "Label" for spec in nodes[name].specs)
    zarr_labels = np.asarray(nodes["instances"].data[0])
    np.testing.assert_array_equal(np.asarray(nodes["mask"].data[0]), np.isnan(bad))
    table = parse(out3 / "masked_catalog.vot").get_first_table()
    ucds = {f.name: f.ucd for f in table.fields}
    assert (ucds["ra"], ucds["dec"]) == ("pos.eq.ra;meta.main", "pos.eq.dec;meta.main")
    assert len(table.array) == int(zarr_labels.max())
    assert sorted(p.name for p in out3.iterdir()) == ["masked.ome.zarr", "masked_catalog.vot"]
    code, _, err = run_cli(
        capsys, "predict", tmp_path / "run" / "best.keras", tmp_path / "masked.fits",
        "--out", out3, "--format", "ome-zarr", "--catalog-format", "votable",
    )  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "masked.ome.zarr", "--overwrite")


def test_predict_refuses_colliding_output_names(capsys, tmp_path):
    _pairs(tmp_path / "a")
    _pairs(tmp_path / "b")
    model = tmp_path / "m.keras"
    import sciconv as sc

    sc.models.segmenter((None, None, 1), depth=1, filters=2).save(model)
    code, _, err = run_cli(
        capsys, "predict", model, tmp_path / "a/images/c0.tif", tmp_path / "b/images/c0.tif",
        "--out", tmp_path / "o",
    )  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "two inputs share the name 'c0'")


@pytest.mark.parametrize(
    ("name", "stem", "fits"),
    [
        ("q.fits.bz2", "q", True),
        ("q.fits.Z", "q", True),
        ("q.FITS.GZ", "q", True),
        ("q.fits.fz", "q", True),
        ("q.fz", "q", True),
        ("q.fts", "q", True),
        ("q.v2.tif", "q.v2", False),
        ("q.TIFF", "q", False),
        ("q.png", "q", False),
    ],
)
def test_output_names_follow_the_dataset_pairing_rule(tmp_path, name, stem, fits):
    from sciconv import io

    path = tmp_path / name
    assert io.image_stem(path) == stem
    assert cli._is_fits(path) is fits
    planned = cli._segmentation_outputs([path], tmp_path / "out")[path]
    ext = ".fits" if fits else ".tif"
    assert planned["prob"] == tmp_path / "out" / f"{stem}_prob{ext}"
    assert planned["labels"] == tmp_path / "out" / f"{stem}_labels{ext}"
    assert planned["catalog"] == tmp_path / "out" / f"{stem}_catalog.ecsv"
    chosen = cli._segmentation_outputs(
        [path], tmp_path / "out", format="ome-zarr", catalog_format="votable"
    )[path]
    assert chosen["prob"] == tmp_path / "out" / f"{stem}.ome.zarr"
    assert chosen["labels"] == tmp_path / "out" / f"{stem}.ome.zarr" / "labels" / "instances"
    assert chosen["catalog"] == tmp_path / "out" / f"{stem}_catalog.vot"


def test_product_choices_are_the_library_formats():
    from sciconv import postprocess
    from sciconv.postprocess._writers import PRODUCT_CATALOG_FORMATS

    assert cli.PRODUCT_FORMATS == tuple(postprocess.PRODUCT_FORMATS)
    assert cli.PRODUCT_CATALOG_FORMATS == tuple(PRODUCT_CATALOG_FORMATS)
    assert cli.BACKGROUND_MODES == tuple(postprocess.BACKGROUND_MODES)


def test_predict_with_the_shipped_nuclei_model(capsys, tmp_path, data_dir):
    from sciconv import io, metrics

    image = sorted((data_dir / "real" / "nuclei" / "images").glob("*.tif"))[0]
    truth = io.read(data_dir / "real" / "nuclei" / "labels" / image.name).data[..., 0]
    out = tmp_path / "labels"  # the README's folder name (not an OME-Zarr labels group)
    code, said, err = run_cli(capsys, "predict", "pretrained:nuclei", image, "--out", out)
    assert code == 0, err
    assert f"objects -> {image.stem}_labels.tif" in said + err  # the file written, named
    labels = io.read(out / f"{image.stem}_labels.tif").data[..., 0]
    assert labels.shape == truth.shape
    assert metrics.matching(truth.astype(int), labels.astype(int), thresh=0.5)["f1"] > 0.6
    assert (out / f"{image.stem}_catalog.ecsv").is_file()


def test_predict_into_its_input_folder_skips_its_own_products(capsys, tmp_path, data_dir):
    """``--out`` = the input folder: a rerun with --overwrite segmented its own labels and
    probabilities (``a_labels_labels.tif``) and read files it was overwriting."""
    import shutil

    image = sorted((data_dir / "real" / "nuclei" / "images").glob("*.tif"))[0]
    shutil.copy(image, tmp_path / "a.tif")
    args = ("predict", "pretrained:nuclei", tmp_path, "--out", tmp_path)
    code, _, err = run_cli(capsys, *args, "--quiet")
    assert code == 0, err
    first = (tmp_path / "a_labels.tif").read_bytes()
    with pytest.warns(SciconvWarning, match=r"skipped 2 input\(s\) that this run writes"):
        code, _, err = run_cli(capsys, *args, "--overwrite")  # a warning (stdout before)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.tif", "a_catalog.ecsv", "a_labels.tif", "a_prob.tif",
    ]  # fmt: skip
    assert (tmp_path / "a_labels.tif").read_bytes() == first
    assert (tmp_path / "a.tif").read_bytes() == image.read_bytes()  # the input untouched


def test_predict_never_overwrites_ground_truth_named_as_a_product(capsys, tmp_path, data_dir):
    """QA: a folder with a.tif and its ground truth a_labels.tif, --out = that folder: the
    refusal said "pass --overwrite", and --overwrite replaced the ground truth (exit 0)."""
    import shutil

    image = sorted((data_dir / "real" / "nuclei" / "images").glob("*.tif"))[0]
    shutil.copy(image, tmp_path / "a.tif")
    shutil.copy(data_dir / "real" / "nuclei" / "labels" / image.name, tmp_path / "a_labels.tif")
    truth = (tmp_path / "a_labels.tif").read_bytes()
    args = ("predict", "pretrained:nuclei", tmp_path, "--out", tmp_path, "--quiet")
    for extra in ((), ("--overwrite",)):
        code, _, err = run_cli(capsys, *args, *extra)
        assert code == 2, err
        assert "a_labels.tif" in err and "hold no sciconv prediction (ground truth?)" in err
        assert "never overwritten" in err
    assert (tmp_path / "a_labels.tif").read_bytes() == truth
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "a_labels.tif"]
    # the image named alone, and --out a separate masks folder (review): refused the same way
    masks = tmp_path / "masks"
    masks.mkdir()
    shutil.copy(tmp_path / "a_labels.tif", masks / "a_labels.tif")
    for out in (tmp_path, masks):
        code, _, err = run_cli(capsys, "predict", "pretrained:nuclei", tmp_path / "a.tif",
                               "--out", out, "--overwrite", "--quiet")  # fmt: skip
        assert code == 1 and "holds no sciconv prediction (ground truth?)" in err
        assert (out / "a_labels.tif").read_bytes() == truth


def test_predict_never_deletes_a_folder_named_as_a_product(capsys, tmp_path, data_dir):
    """QA: a user's folder at out/a_labels.tif was deleted whole by --overwrite (the check
    skipped folders, the failed write's clean-up removed it as an 'earlier product')."""
    import shutil

    image = sorted((data_dir / "real" / "nuclei" / "images").glob("*.tif"))[0]
    shutil.copy(image, tmp_path / "a.tif")
    keep = tmp_path / "out" / "a_labels.tif" / "precious" / "thesis.txt"
    keep.parent.mkdir(parents=True)
    keep.write_text("my thesis")
    code, _, err = run_cli(capsys, "predict", "pretrained:nuclei", tmp_path / "a.tif",
                           "--out", tmp_path / "out", "--overwrite", "--quiet")  # fmt: skip
    assert code == 1 and "is a folder where a file product goes" in err and "a_labels.tif" in err
    assert keep.read_text() == "my thesis"


def test_a_corrupt_fits_header_is_one_line_naming_the_file_not_thousands(
    capsys, tmp_path, data_dir
):
    """QA: BITPIX -32 -> 17 in a real HST file made astropy parse the pixels as header cards:
    6,128 stderr lines quoting binary bytes, none naming the file; one warning names it."""
    raw = (data_dir / "real" / "hst" / "j8bt06nyq_sci_cutout.fits").read_bytes()
    bad = raw.replace(b"BITPIX  =                  -32", b"BITPIX  =                   17", 1)
    (tmp_path / "bad.fits").write_bytes(bad)
    code, _, err = run_cli(capsys, "predict", "pretrained:nuclei", tmp_path / "bad.fits",
                           "--out", tmp_path / "o", "--quiet")  # fmt: skip
    lines = [line for line in err.splitlines() if line.strip()]
    assert (tmp_path / "bad.fits").read_bytes() == bad  # the input as it was
    assert code == 1 and "invalid BITPIX 17" in err
    assert len(lines) <= 3 and all("bad.fits" in line for line in lines), lines[:5]
    assert all(line.isprintable() for line in lines)


def test_fits_catalogs_and_ome_zarr_products_are_resumed_and_redone(capsys, tmp_path, data_dir):
    """Review: --catalog-format fits was refused by --skip-existing and --overwrite (its
    HISTORY is in HDU 1, header 0 was read), and --format ome-zarr --overwrite by the folder
    check (NAME.ome.zarr/labels/instances is a folder)."""
    import shutil

    image = sorted((data_dir / "real" / "nuclei" / "images").glob("*.tif"))[0]
    shutil.copy(image, tmp_path / "a.tif")
    for extra in (("--catalog-format", "fits"), ("--format", "ome-zarr")):
        if extra[0] == "--format":
            pytest.importorskip("ome_zarr")
        out = tmp_path / extra[1]
        args = ("predict", "pretrained:nuclei", tmp_path / "a.tif", "--out", out, "--quiet")
        for again in ((), ("--skip-existing",), ("--overwrite",)):
            code, _, err = run_cli(capsys, *args, *extra, *again)
            assert code == 0, (extra, again, err)


def test_predict_refuses_products_named_as_their_input(capsys, tmp_path):
    """An OME-Zarr input written back as OME-Zarr into its own folder: NAME.ome.zarr is both;
    it was 'skipped' with exit code 0 and nothing written."""
    pytest.importorskip("ome_zarr")
    from sciconv import io

    path = io.write_ome_zarr(tmp_path / "c2.ome.zarr", np.zeros((32, 32), np.uint16))
    args = ("predict", "pretrained:nuclei", path, "--out", tmp_path, "--format", "ome-zarr")
    code, _, err = run_cli(capsys, *args, "--overwrite")
    assert code == 2
    assert_one_line_error(err, "c2.ome.zarr", "would have the input's own name", "--out")
    assert io.read(path).shape == (32, 32, 1)  # the input untouched


def test_predict_names_the_file_a_model_cannot_take(capsys, tmp_path, data_dir):
    """A two-channel file: the one-line error names it (it did not, so a batch of hundreds
    stopped without saying which file)."""
    image = sorted((data_dir / "real" / "nuclei" / "images").glob("*.tif"))[0]
    two = np.stack([tifffile.imread(image)] * 2)
    tifffile.imwrite(tmp_path / "two.tif", two, photometric="minisblack", metadata={"axes": "CYX"})
    code, _, err = run_cli(
        capsys, "predict", "pretrained:nuclei", tmp_path / "two.tif", "--out", tmp_path / "o"
    )
    assert code != 0
    assert_one_line_error(err, "two.tif: ", "channels")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "two.tif"), two)  # untouched
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_predict_scale_on_enlarged_nuclei(capsys, tmp_path, enlarged_real_nuclei):
    """--scale 1/3 on a real image enlarged 3x (tiled, overlap auto): outputs at the input's size,
    nuclei recovered (that scale beats no scale on such images is tested in test_pretrained)."""
    from sciconv import io, metrics

    ((_, big, truth),) = enlarged_real_nuclei(1, 3)
    image = tmp_path / "big.tif"
    tifffile.imwrite(image, big)
    before = image.read_bytes()
    f1 = {}
    for scale in (None, 1 / 3):
        out = tmp_path / f"out_{scale}"
        extra = [] if scale is None else ["--scale", str(scale)]
        code, _, err = run_cli(capsys, "predict", "pretrained:nuclei", image, "--out", out, *extra)
        assert code == 0, err
        labels = io.read(out / "big_labels.tif").data[..., 0]
        prob = io.read(out / "big_prob.tif").data[..., 0]
        assert labels.shape == prob.shape == big.shape
        f1[scale] = metrics.matching(truth.astype(int), labels.astype(int), thresh=0.5)["f1"]
    assert f1[1 / 3] > 0.85 and f1[None] > 0.5, f1
    assert image.read_bytes() == before  # the input is never written to


def test_predict_object_size_on_shrunk_nuclei(capsys, tmp_path, enlarged_real_nuclei):
    """Real nuclei shrunk to 0.4x (about 5 px, under the sizes the pretrained model saw): by
    default (--object-size auto) the CLI segments again at the training size and says so; the
    same as giving the size; --object-size none keeps the first pass, which finds fewer."""
    from sciconv import io, metrics

    ((_, small, truth),) = enlarged_real_nuclei(1, 0.4)
    image = tmp_path / "small.tif"
    tifffile.imwrite(image, small)
    f1, labels = {}, {}
    for size in ("auto", "none", "5.5"):
        out = tmp_path / f"out_{size}"
        args = ("predict", "pretrained:nuclei", image, "--out", out, "--object-size", size)
        if size == "auto":  # (any other sciconv warning fails the test: pyproject.toml)
            with pytest.warns(SciconvWarning, match=r"object_size='auto'.*resampled by 2\.7"):
                code, _, err = run_cli(capsys, *args)
        else:
            code, _, err = run_cli(capsys, *args)
        assert code == 0, err
        labels[size] = io.read(out / "small_labels.tif").data[..., 0]
        assert labels[size].shape == small.shape
        f1[size] = metrics.matching(truth.astype(int), labels[size].astype(int), thresh=0.5)["f1"]
    assert f1["auto"] > 0.75 and f1["auto"] > f1["none"] + 0.2, f1
    assert abs(f1["5.5"] - f1["auto"]) < 0.1, f1


def test_predict_channel_picks_the_nuclear_stain(capsys, tmp_path, data_dir):
    """A two-channel TIFF (nuclei + a membrane-like stain, CYX as microscopes save it) cannot go
    to the RGB nuclei model as it is (a clear error pointing to the channel); --channel 0
    segments the nuclear stain, exactly as the grey file alone."""
    from sciconv import io

    image = sorted((data_dir / "real" / "nuclei" / "images").glob("*.tif"))[0]
    grey = tifffile.imread(image)
    truth = tifffile.imread(data_dir / "real" / "nuclei" / "labels" / image.name)
    other = (truth > 0).astype(np.uint8) * 60
    two = tmp_path / "two.tif"
    tifffile.imwrite(
        two, np.stack([grey, other]), photometric="minisblack", metadata={"axes": "CYX"}
    )
    before = two.read_bytes()
    common = ("predict", "pretrained:nuclei", two, "--quiet")
    code, _, err = run_cli(capsys, *common, "--out", tmp_path / "a")
    assert code != 0
    assert_one_line_error(err, "2", "channels", "nuclear channel", "--channel K")
    code, _, err = run_cli(capsys, *common, "--out", tmp_path / "b", "--channel", "0")
    assert code == 0, err
    # the products say which channel they are of (labels of the membrane looked the same)
    with tifffile.TiffFile(tmp_path / "b" / "two_labels.tif") as tif:
        assert "channel = 0" in " ".join(tif.shaped_metadata[0]["history"]).replace("'", "")
    alone = tmp_path / "grey.tif"
    tifffile.imwrite(alone, grey)
    code, _, err = run_cli(
        capsys, "predict", "pretrained:nuclei", alone, "--quiet", "--out", tmp_path / "c"
    )
    assert code == 0, err
    np.testing.assert_array_equal(
        io.read(tmp_path / "b" / "two_labels.tif").data,
        io.read(tmp_path / "c" / "grey_labels.tif").data,
    )
    code, _, err = run_cli(capsys, *common, "--out", tmp_path / "d", "--channel", "2")
    assert code != 0
    assert_one_line_error(err, "two.tif", "--channel 2", "2 channel(s), numbered 0 to 1")
    assert two.read_bytes() == before  # the input is never written to


@pytest.mark.parametrize(
    "extra",
    [
        ("--uncertainty", "tta"),
        ("--format", "fits"),  # was accepted and ignored: labels went to a plain zarr array
        ("--format", "tiff"),
        ("--regions", "polygon"),
    ],
)
def test_predict_block_wise_refuses_what_it_cannot_write(capsys, tmp_path, extra):
    """Block by block there is no uncertainty map, no other format and no outline regions:
    they are refused, not ignored (--uncertainty wrote no map, exit code 0)."""
    image = tmp_path / "a.tif"
    tifffile.imwrite(image, np.zeros((48, 48), np.float32))
    before = image.read_bytes()
    args = ("predict", "pretrained:nuclei", image, "--out", tmp_path / "o", "--block", "32")
    code, _, err = run_cli(capsys, *args, *extra)
    assert code != 0
    assert_one_line_error(err, "a.tif", "block-wise", "--format, --uncertainty and --aperture")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    assert image.read_bytes() == before


def test_predict_block_wise_segments_one_channel_of_a_multichannel_slide(capsys, tmp_path):
    """A 2-channel whole slide over the block-mode size could not be segmented at all: block
    mode refused --channel and the model refused 2 channels. --channel K is a lazy view now."""
    from skimage.draw import disk

    from sciconv import io

    image = np.zeros((2, 96, 96), np.uint16)  # (C, Y, X): DAPI-like channel 1, channel 0 noise
    image[0] = np.random.default_rng(0).integers(0, 50, (96, 96))
    for cy, cx in ((20, 20), (20, 70), (70, 30), (66, 72), (45, 47)):
        image[(1, *disk((cy, cx), 7, shape=(96, 96)))] = 800
    path = tmp_path / "slide.ome.tif"
    tifffile.imwrite(path, image, metadata={"axes": "CYX"}, ome=True)
    common = ("predict", "pretrained:nuclei", path, "--channel", "1", "--quiet")
    code, _, err = run_cli(capsys, *common, "--out", tmp_path / "whole")
    assert code == 0, err
    code, _, err = run_cli(capsys, *common, "--out", tmp_path / "blocks", "--block", "48")
    assert code == 0, err
    whole = tifffile.imread(tmp_path / "whole" / "slide_labels.ome.tif")
    blocks = np.asarray(io.read(tmp_path / "blocks" / "slide_labels.zarr").data[..., 0])
    assert whole.max() == 5 and blocks.max() == 5
    np.testing.assert_array_equal(blocks > 0, whole > 0)


def test_predict_with_a_plain_keras_per_pixel_model_segments(capsys, tmp_path):
    """A fully convolutional Keras model without sciconv metadata was taken for a classifier
    ('takes images of any size; pass image_size=', an option the CLI does not have)."""
    import keras

    inputs = keras.Input((None, None, 1))
    logits = keras.layers.Conv2D(
        2, 1, kernel_initializer=keras.initializers.Constant([[[[-4.0, 4.0]]]]),
        bias_initializer=keras.initializers.Constant([2.0, -2.0]),
    )(inputs)  # fmt: skip
    keras.Model(inputs, keras.layers.Softmax()(logits)).save(tmp_path / "plain.keras")
    image = np.zeros((40, 40), np.float32)
    image[5:15, 5:15] = image[25:35, 20:30] = 1.0
    tifffile.imwrite(tmp_path / "two.tif", image)
    code, _, err = run_cli(
        capsys, "predict", tmp_path / "plain.keras", tmp_path / "two.tif", "--out", tmp_path / "o"
    )
    assert code == 0, err
    labels = tifffile.imread(tmp_path / "o" / "two_labels.tif")
    assert labels.max() == 2 and (labels[5:15, 5:15] > 0).all()


def test_predict_unknown_shipped_model(capsys, tmp_path):
    image = tmp_path / "a.tif"
    tifffile.imwrite(image, np.zeros((16, 16), np.float32))
    code, _, err = run_cli(capsys, "predict", "pretrained:nucleus", image, "--out", tmp_path / "o")
    assert code == 2
    assert_one_line_error(err, "'nucleus'", "did you mean 'nuclei'")


# --------------------------------------------------------------------------- hardening (issue 15)
@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--batch-size", "0"], "--batch-size: expected an integer >= 1, got '0'"),
        (["--scale", "nan"], "--scale: expected a finite number > 0, got 'nan'"),
        (["--scale", "-1"], "--scale: expected a finite number > 0, got '-1'"),
        (["--channel", "-1"], "--channel: expected a channel number >= 0, got '-1'"),
        (
            ["--object-size", "big"],
            "--object-size: expected auto, none or a diameter in pixels > 0, got 'big'",
        ),
    ],
)
def test_predict_bad_numbers_are_usage_errors(capsys, tmp_path, args, fragment):
    code, _, err = run_cli(capsys, "predict", "m.keras", "a.fits", "--out", tmp_path, *args)
    assert code == 2
    assert_one_line_error(err, fragment)


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("3", "dataset.images must be a path or a list of paths; got 3"),
        ("null", "dataset.images must be a path or a list of paths; got None"),
        ("[DATA/none]", "dataset.images: path not found"),
    ],
)
def test_train_dataset_paths_are_checked_not_a_type_error(capsys, tmp_path, value, fragment):
    cfg = write_yaml(
        tmp_path / "run.yaml",
        f"dataset: {{kind: pairs, images: {value.replace('DATA', str(tmp_path))}, "
        f"masks: [{tmp_path}]}}\nmodel: {{type: segmenter}}\n"
        f"training: {{epochs: 1, workdir: {tmp_path / 'run'}}}\n",
    )
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 2
    assert_one_line_error(err, fragment)


def test_predict_refuses_a_hostile_model_in_one_line(capsys, tmp_path):
    import json
    import zipfile

    from sciconv.models import classifier

    good = tmp_path / "good.keras"
    classifier((16, 16, 1), 2, filters=(4,), dense=()).save(good)
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "config.json":
                config = json.loads(data)
                for layer in config["config"]["layers"]:
                    if "activation" in layer.get("config", {}):
                        layer["config"]["activation"] = {
                            "module": "os",
                            "class_name": "system",
                            "config": {},
                            "registered_name": None,
                        }
                        break
                data = json.dumps(config).encode()
            zout.writestr(name, data)
    image = tmp_path / "a.tif"
    tifffile.imwrite(image, np.zeros((16, 16), np.float32))
    code, _, err = run_cli(capsys, "predict", bad, image, "--out", tmp_path / "out")
    assert code != 0
    assert_one_line_error(err, str(bad))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_predict_hdu_picks_the_extension_and_its_dq(capsys, tmp_path, data_dir):
    """--hdu SCI,2 segments the second science extension of a multi-extension file (its DQ,2
    marks the bad pixels) exactly as a file holding only that extension; refused for TIFF."""
    import keras
    from astropy.io import fits

    import sciconv as sc
    from sciconv import io

    real = fits.getdata(data_dir / "real" / "hst" / "j8bt06nyq_sci_cutout.fits")
    sci2 = real[:256, :256].astype(np.float32)
    dq2 = np.zeros(sci2.shape, np.int16)
    dq2[10:20, 30:40] = 256
    mef = fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(sci2[::-1].copy(), name="SCI", ver=1),
            fits.ImageHDU(np.zeros_like(dq2), name="DQ", ver=1),
            fits.ImageHDU(sci2, name="SCI", ver=2),
            fits.ImageHDU(dq2, name="DQ", ver=2),
        ]
    )
    mef.writeto(tmp_path / "flt.fits")
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(sci2, name="SCI"), fits.ImageHDU(dq2, name="DQ")]
    ).writeto(tmp_path / "chip2.fits")
    inputs = keras.Input((None, None, 1))
    logits = keras.layers.Conv2D(
        2,
        1,
        kernel_initializer=keras.initializers.Constant([[[[-20.0, 20.0]]]]),
        bias_initializer=keras.initializers.Constant([1.0, -1.0]),
    )(inputs)
    model = tmp_path / "thr.keras"
    plain = keras.Model(inputs, keras.layers.Softmax()(logits))
    sc.models.attach_metadata(  # foreground above 5 % of the 1-99.8 percentile range
        plain,
        task="segmentation",
        normalization={"method": "percentile", "low": 1.0, "high": 99.8, "per_channel": False},
    ).save(model)
    before = (tmp_path / "flt.fits").read_bytes()
    assert io.probe_shape(tmp_path / "flt.fits", hdu=("SCI", 2)) == (256, 256, 1)
    common = ("predict", model, "--quiet", "--tile", "64", "--overlap", "8")
    code, _, err = run_cli(
        capsys, *common, tmp_path / "flt.fits", "--hdu", "SCI,2", "--out", tmp_path / "a"
    )
    assert code == 0, err
    code, _, err = run_cli(capsys, *common, tmp_path / "chip2.fits", "--out", tmp_path / "b")
    assert code == 0, err
    got = io.read(tmp_path / "a" / "flt_labels.fits")
    expected = io.read(tmp_path / "b" / "chip2_labels.fits")
    assert np.nanmax(got.data) > 5  # NaN: the bad pixels of DQ,2 (the MASK,2 extension)
    np.testing.assert_array_equal(got.data, expected.data)
    assert got.header["EXTNAME"] == "SCI" and got.header["EXTVER"] == 2
    from astropy import units as u
    from astropy.nddata import CCDData

    ccd = CCDData.read(tmp_path / "a" / "flt_labels.fits", unit=u.one)  # MASK,2 beside SCI,2
    np.testing.assert_array_equal(ccd.mask, dq2 > 0)
    code, _, err = run_cli(
        capsys, *common, tmp_path / "flt.fits", "--hdu", "SCI,1", "--out", tmp_path / "c"
    )
    assert code == 0, err
    assert not np.array_equal(io.read(tmp_path / "c" / "flt_labels.fits").data, got.data)
    tif = tmp_path / "a.tif"
    tifffile.imwrite(tif, sci2)
    code, _, err = run_cli(capsys, *common, tif, "--hdu", "1", "--out", tmp_path / "d")
    assert code != 0
    assert_one_line_error(err, "a.tif", "--hdu applies to FITS files")
    code, _, err = run_cli(
        capsys, *common, tmp_path / "flt.fits", "--hdu", "SCI,x", "--out", tmp_path / "e"
    )
    assert code != 0 and "EXTVER must be an integer" in err
    assert (tmp_path / "flt.fits").read_bytes() == before


def test_predict_threshold_and_min_size_reach_the_instances(capsys, tmp_path):
    """Stars of a few pixels fell under the nuclei-sized default min_size (20 px), and the
    command line had no way to say otherwise short of editing the model's metadata."""
    import keras

    from sciconv import io, models

    inputs = keras.Input((None, None, 1))
    logits = keras.layers.Conv2D(
        2,
        1,
        kernel_initializer=keras.initializers.Constant([[[[-10.0, 10.0]]]]),
        bias_initializer=keras.initializers.Constant([5.0, -5.0]),
    )(inputs)
    model = models.attach_metadata(  # p = sigmoid(20 x - 10); minmax: -3 -> 0, 3 -> 1
        keras.Model(inputs, keras.layers.Softmax()(logits)),
        task="segmentation",
        normalization={"method": "minmax"},
    )
    model.save(tmp_path / "thr.keras")
    image = np.full((48, 64), -3.0, np.float32)
    for y, x in ((8, 8), (8, 40), (30, 20), (36, 50)):
        image[y : y + 3, x : x + 3] = 3.0  # 9-pixel "stars"
    image[20:22, 5] = 0.12  # x = 0.52, p = 0.6: kept at threshold 0.5, not at 0.7
    io.write(tmp_path / "stars.fits", image)
    base = ("predict", tmp_path / "thr.keras", tmp_path / "stars.fits")
    counts = {}
    for name, extra in (
        ("default", ()),
        ("small", ("--min-size", "2")),
        ("strict", ("--min-size", "2", "--threshold", "0.7")),
    ):
        code, _, err = run_cli(capsys, *base, "--out", tmp_path / name, "--quiet", *extra)
        assert code == 0, err
        counts[name] = int(io.read(tmp_path / name / "stars_labels.fits").data.max())
    assert counts == {"default": 0, "small": 5, "strict": 4}
    code, _, err = run_cli(capsys, *base, "--out", tmp_path / "x", "--threshold", "1.5")
    assert code == 2
    assert_one_line_error(err, "--threshold", "between 0 and 1")


GOOD_MODEL = "filters: [4], dense: [8]"


@pytest.mark.parametrize(
    ("dataset", "model", "training", "fragment"),
    [
        (
            "path: DATA, image_size: 48x48",
            GOOD_MODEL,
            "epochs: 1",
            "dataset (kind folder): image_size must",
        ),
        (
            "path: DATA",
            "filters: [-4], dense: [], dropout: 2.0",
            "epochs: 1",
            "model (type classifier)",
        ),
        (
            "path: DATA",
            GOOD_MODEL,
            "epochs: three",
            "training: epochs must be an int >= 1; got 'three'",
        ),
        ("path: DATA/nowhere", GOOD_MODEL, "epochs: 1", "dataset.path: path not found"),
    ],
)
def test_train_value_errors_name_the_config_and_its_section(
    capsys, tmp_path, dataset, model, training, fragment
):
    """A bad value is one configuration error naming the config file and its section (values
    under dataset: and training: named neither, and a bad training value was found only after
    the data were read and the model built)."""
    blob_images(tmp_path / "data" / "a", 4, bright=True, seed=1)
    blob_images(tmp_path / "data" / "b", 4, bright=False, seed=2)
    blob_images(tmp_path / "one" / "spiral", 4, bright=True, seed=3)
    dataset = dataset.replace("DATA", str(tmp_path / "data")).replace("ONE", str(tmp_path / "one"))
    cfg = write_yaml(
        tmp_path / "run.yaml",
        f"dataset: {{kind: folder, {dataset}}}\n"
        f"model: {{type: classifier, {model}}}\n"
        f"training: {{{training}, workdir: {tmp_path / 'run'}, tensorboard: false}}\n",
    )
    code, out, err = run_cli(capsys, "train", cfg)
    assert code == 2
    assert_one_line_error(err, f"{cfg}: {fragment}")
    assert "unexpected" not in err
    if fragment.startswith("training"):
        assert "dataset: folder" not in out  # refused before the data were read


def test_train_on_a_folder_of_one_class_names_the_folder(capsys, tmp_path):
    """A folder holding one class folder (often the class folder itself, given instead of its
    parent) is refused when the dataset is read, naming the folder (it said "num_classes must
    be an int >= 2; got 1", later "the dataset has one class" from the model section)."""
    blob_images(tmp_path / "one" / "spiral", 4, bright=True, seed=3)
    cfg = write_yaml(
        tmp_path / "run.yaml",
        f"dataset: {{kind: folder, path: {tmp_path / 'one'}}}\n"
        f"model: {{type: classifier, {GOOD_MODEL}}}\n"
        f"training: {{epochs: 1, workdir: {tmp_path / 'run'}, tensorboard: false}}\n",
    )
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 1
    assert_one_line_error(err, f"{tmp_path / 'one'}: only one class sub-folder ('spiral')")
    assert not (tmp_path / "run").exists()


def test_train_seed_fixes_the_initial_weights_too(capsys, tmp_path):
    """training.seed was set inside fit, after the model was built: two runs of one config
    started from different weights (whatever ran before drew from the global generators)."""
    import keras

    from sciconv import models

    blob_images(tmp_path / "data" / "a", 4, bright=True, seed=1)
    blob_images(tmp_path / "data" / "b", 4, bright=False, seed=2)
    weights = []
    for k in range(2):
        keras.utils.set_random_seed(100 + k)  # a different global state before each run
        cfg = write_yaml(
            tmp_path / f"run{k}.yaml",
            f"dataset: {{kind: folder, path: {tmp_path / 'data'}, batch_size: 4, seed: 0}}\n"
            f"model: {{type: classifier, {GOOD_MODEL}}}\n"
            f"training: {{epochs: 1, learning_rate: 1.0e-12, workdir: {tmp_path / f'run{k}'}, "
            "tensorboard: false, verbose: 0, seed: 3}\n",
        )  # a learning rate of 1e-12: the saved weights are the initial ones
        code, _, err = run_cli(capsys, "train", cfg)
        assert code == 0, err
        weights.append(models.load(tmp_path / f"run{k}" / "last.keras").get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-7)


def test_console_command_shows_sciconv_warnings_as_one_line(capsys, tmp_path, monkeypatch):
    """The console entry point (``cli.run``) prints a SciconvWarning as ``sciconv: warning:``
    instead of a source line of sciconv's code."""
    z = np.zeros((64, 64), np.uint8)
    yy, xx = np.mgrid[:64, :64]
    nuclei = (120 * np.exp(-((yy - 20) ** 2 + (xx - 30) ** 2) / 30)).astype(np.uint8)
    ring = (60 * np.exp(-((yy - 40) ** 2 + (xx - 20) ** 2) / 200)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", np.stack([ring, z, nuclei], axis=-1))
    monkeypatch.setattr(
        sys, "argv", ["sciconv", "predict", "pretrained:nuclei", str(tmp_path / "rgb.tif"),
                      "--out", str(tmp_path / "o"), "--quiet"],
    )  # fmt: skip
    assert cli.run() == 0
    err = capsys.readouterr().err
    # naming the file (each input's warnings do in a batch)
    assert f"sciconv: warning: {tmp_path / 'rgb.tif'}: a dark-background colour image" in err
    assert "SciconvWarning" not in err and "warn_caller" not in err


def test_block_wise_two_channel_slide_without_channel_names_the_file_and_shape(capsys, tmp_path):
    path = tmp_path / "slide.tif"
    tifffile.imwrite(path, np.zeros((80, 80, 2), np.uint16), metadata={"axes": "YXC"})
    code, _, err = run_cli(
        capsys, "predict", "pretrained:nuclei", path, "--out", tmp_path / "o", "--block", "32"
    )
    assert code != 0
    assert_one_line_error(err, "slide.tif", "channels for the input transform", "got 2 (the last",
                          "--channel K")  # fmt: skip


def test_predict_nodata_treats_a_zero_frame_as_a_nan_one(capsys, tmp_path, data_dir):
    """--nodata 0: a zero-filled frame around real nuclei is segmented as the same frame of
    NaN (bad pixels), not as dark pixels that pull the normalization and hide edge nuclei."""
    image = tifffile.imread(sorted((data_dir / "real" / "nuclei" / "images").glob("*.tif"))[0])
    image = image.astype(np.float32)
    framed = np.zeros((image.shape[0] + 64, image.shape[1] + 64, *image.shape[2:]), np.float32)
    framed[32:-32, 32:-32] = image
    tifffile.imwrite(tmp_path / "zero.tif", framed)
    nan = framed.copy()
    nan[framed.reshape(*framed.shape[:2], -1).max(axis=-1) == 0] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", nan)
    code, _, err = run_cli(capsys, "predict", "pretrained:nuclei", tmp_path / "zero.tif",
                           "--out", tmp_path / "a", "--nodata", "0", "--quiet")  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(capsys, "predict", "pretrained:nuclei", tmp_path / "nan.tif",
                           "--out", tmp_path / "b", "--quiet")  # fmt: skip
    assert code == 0, err
    a = tifffile.imread(tmp_path / "a" / "zero_labels.tif")
    b = tifffile.imread(tmp_path / "b" / "nan_labels.tif")
    np.testing.assert_array_equal(a, b)
    assert a.max() > 3
    with tifffile.TiffFile(tmp_path / "a" / "zero_labels.tif") as tif:  # provenance says so
        assert "nodata = 0.0" in tif.pages[0].description


def test_no_home_directory_says_what_to_set(capsys, monkeypatch):
    """QA env: a container's uid without a passwd entry and no HOME: astropy's import raised
    "Could not determine home directory", reported as "unexpected RuntimeError"."""

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(cli, "import_tensorflow_quietly", no_home)
    monkeypatch.delenv("SCICONV_DEBUG", raising=False)
    code, _, err = run_cli(capsys, "info")
    assert code == 1 and err.strip() == (
        "sciconv: error: Could not determine home directory: set HOME (or SCICONV_DATA_DIR for "
        "the download cache)"
    )
