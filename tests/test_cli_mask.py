"""``sciconv predict --mask`` / ``--ignore-flags``: a bad-pixel file beside the image.

QA (2026-12-05): the bundled HST cutout keeps its science and DQ arrays in two files, as
archives serve cutouts; ``sciconv predict`` had no way to take the DQ file, so no object was
flagged (0 of 917), silently, while the same data as one multi-extension file flagged 94.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import sciconv as sc
from tests._helpers import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def everything_model(tmp_path_factory):
    """A segmenter that calls every pixel foreground: one object covering the image."""
    path = tmp_path_factory.mktemp("cli_mask") / "all.keras"
    model = sc.models.segmenter((None, None, 1), num_classes=2, depth=1, filters=2)
    last = model.layers[-2] if model.layers[-1].weights == [] else model.layers[-1]
    kernel, bias = last.get_weights()
    last.set_weights([np.zeros_like(kernel), np.array([0.0, 9.0], bias.dtype)])
    model.save(path)
    return path


@pytest.fixture
def hst(tmp_path, data_dir):
    """The real cutout as field.fits with its DQ file field_dq.fits beside it."""
    src = data_dir / "real" / "hst"
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(src / "j8bt06nyq_sci_cutout.fits", inputs / "field.fits")
    shutil.copy(src / "j8bt06nyq_dq_cutout.fits", inputs / "field_dq.fits")
    return inputs


def _predict(capsys, model, inputs, out, *extra):
    return run_cli(
        capsys, "predict", model, inputs / "field.fits", "--out", out, "--quiet",
        "--background", "none", *extra,
    )  # fmt: skip


def test_mask_file_flags_objects_and_writes_the_mask(capsys, tmp_path, hst, everything_model):
    dq = fits.getdata(hst / "field_dq.fits")
    assert (dq != 0).sum() > 0
    code, _, err = _predict(capsys, everything_model, hst, tmp_path / "plain")
    assert code == 0, err
    plain = Table.read(tmp_path / "plain" / "field_catalog.ecsv")
    assert "flag_masked" not in plain.colnames or not plain["flag_masked"].any()
    # the DQ file by a template ({dir}/{stem}_dq.fits), as for a batch of cutouts
    code, _, err = _predict(
        capsys, everything_model, hst, tmp_path / "dq", "--mask", "{dir}/{stem}_dq.fits"
    )
    assert code == 0, err
    table = Table.read(tmp_path / "dq" / "field_catalog.ecsv")
    assert table["flag_masked"].any()  # the bad pixels cut the foreground: pieces beside them
    with fits.open(tmp_path / "dq" / "field_prob.fits") as hdul:
        mask = hdul["MASK"].data
    assert mask.reshape(-1, *dq.shape)[0].astype(bool).tolist() == (dq != 0).tolist()
    # --ignore-flags: the bits that are fine leave the pixels good
    every = int(np.bitwise_or.reduce(dq[dq != 0].astype(np.int64)))
    bits = "+".join(str(1 << b) for b in range(every.bit_length()) if every >> b & 1)
    code, _, err = _predict(
        capsys, everything_model, hst, tmp_path / "ok", "--mask", str(hst / "field_dq.fits"),
        "--ignore-flags", bits,
    )  # fmt: skip
    assert code == 0, err
    ok = Table.read(tmp_path / "ok" / "field_catalog.ecsv")
    assert not ok["flag_masked"].any()


def test_missing_mask_is_refused_before_anything_is_written(
    capsys, tmp_path, hst, everything_model
):
    out = tmp_path / "out"
    code, _, err = _predict(capsys, everything_model, hst, out, "--mask", "{dir}/{stem}_x.fits")
    assert code != 0
    assert_one_line_error(err, "field.fits", "--mask", "field_x.fits")
    assert not out.exists() or not any(out.iterdir())
    code, _, err = _predict(capsys, everything_model, hst, out, "--mask", "{name}.fits")
    assert code != 0
    assert_one_line_error(err, "--mask", "{stem}")


def test_bad_ignore_flags_is_a_usage_error(capsys, tmp_path, hst, everything_model):
    """--ignore-flags 4+x failed on every input with an error naming ignore_flags (the Python
    keyword), after the inputs were read; now argparse refuses it (exit 2) naming the option."""
    code, _, err = _predict(
        capsys, everything_model, hst, tmp_path / "out", "--ignore-flags", "4+x"
    )
    assert code == 2 and "--ignore-flags" in err and "4+x" in err
    assert not (tmp_path / "out").exists()


def test_a_mask_named_as_a_product_is_refused(capsys, tmp_path, everything_model):
    """--mask '{dir}/{stem}_mask.tif' with --out the input folder: the TIFF products' mask has
    that name, so the user's mask would be replaced (or removed, with --overwrite, when the
    input failed). Refused before anything runs; the mask is untouched."""
    folder = tmp_path / "d"
    folder.mkdir()
    image = np.random.default_rng(0).normal(10, 1, (32, 32)).astype(np.float32)
    import tifffile

    tifffile.imwrite(folder / "a.tif", image)
    tifffile.imwrite(folder / "a_mask.tif", np.zeros((32, 32), np.uint8))
    before = (folder / "a_mask.tif").read_bytes()
    code, _, err = run_cli(
        capsys, "predict", everything_model, folder / "a.tif", "--out", folder, "--quiet",
        "--mask", "{dir}/{stem}_mask.tif", "--overwrite",
    )  # fmt: skip
    assert code != 0
    assert_one_line_error(err, "--mask", "a_mask.tif", "this run writes")
    assert (folder / "a_mask.tif").read_bytes() == before


def test_skip_existing_reads_back_a_long_last_setting(capsys, tmp_path, hst, everything_model):
    """A last setting line of 70-72 characters (one FITS card, not split) took the next
    HISTORY line as its continuation, so the recorded settings never matched and every
    finished input was refused by --skip-existing."""
    template = "{dir}/" + "y" * 43 + "{stem}.fits"  # "  mask = '...'": 71 characters
    assert len(f"  mask = {template!r}") == 71
    shutil.copy(hst / "field_dq.fits", hst / ("y" * 43 + "field.fits"))
    out = tmp_path / "o"
    code, _, err = _predict(capsys, everything_model, hst, out, "--mask", template)
    assert code == 0, err
    code, _, err = _predict(
        capsys, everything_model, hst, out, "--mask", template, "--skip-existing"
    )
    assert code == 0, err


def test_one_mask_file_whose_name_holds_braces_is_taken_as_it_is(tmp_path):
    # QA env: '/cal/{2024}/bpm.fits' was refused ("only {stem} and {dir} can be filled in")
    import argparse

    from sciconv._cli_predict_plan import mask_file
    from sciconv.errors import ConfigError

    folder = tmp_path / "cal" / "{2024}"
    folder.mkdir(parents=True)
    (folder / "bpm.fits").write_bytes(b"")
    args = argparse.Namespace(mask=str(folder / "bpm.fits"))
    assert mask_file(tmp_path / "a.fits", args) == folder / "bpm.fits"
    args = argparse.Namespace(mask=str(tmp_path / "{stem}_dq.fits"))  # a template still is one
    (tmp_path / "a_dq.fits").write_bytes(b"")
    assert mask_file(tmp_path / "a.fits", args) == tmp_path / "a_dq.fits"
    with pytest.raises(ConfigError, match=r"only \{stem\} and \{dir\} can be filled in"):
        mask_file(tmp_path / "a.fits", argparse.Namespace(mask=str(tmp_path / "{2025}/x.fits")))
