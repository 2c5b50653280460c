"""``sciconv predict --keep-going``: an input that fails at prediction time (an all-NaN image,
a 1x1 FITS, an RGB file for a one-channel classifier) is reported as one ``sciconv: error: FILE:
message`` line and the batch goes on; a summary line at the end names the failed inputs (exit 1).
A failed input leaves no partial products, with or without the option.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from _helpers import assert_one_line_error, run_cli

import sciconv as sc
from sciconv.errors import WriteError


@pytest.fixture(scope="module")
def seg_model(tmp_path_factory):
    """A tiny untrained segmenter (divisor 8) saved to .keras."""
    path = tmp_path_factory.mktemp("keep_going") / "seg.keras"
    sc.models.segmenter((None, None, 1), depth=3, filters=2).save(path)
    return path


@pytest.fixture(scope="module")
def cls_model(tmp_path_factory):
    """A tiny untrained one-channel classifier of 16 x 16 cutouts saved to .keras."""
    path = tmp_path_factory.mktemp("keep_going_cls") / "cls.keras"
    sc.models.classifier((16, 16, 1), 2, filters=(4,), dense=()).save(path)
    return path


def _image(size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(10, 1, (size, size)).astype(np.float32)


def _fits(path, data) -> None:
    from astropy.io import fits

    fits.PrimaryHDU(data).writeto(path)


def _written(out) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def _errors(err: str) -> list[str]:
    assert "Traceback" not in err
    return [ln for ln in err.strip().splitlines() if ln.startswith("sciconv: error:")]


def _batch(folder):
    """a.fits, an all-NaN b_nan.fits, a 1x1 c_tiny.fits and d.fits (32 x 32 pixels)."""
    folder.mkdir()
    _fits(folder / "a.fits", _image(32, 1))
    _fits(folder / "b_nan.fits", np.full((32, 32), np.nan, np.float32))
    _fits(folder / "c_tiny.fits", np.ones((1, 1), np.float32))
    _fits(folder / "d.fits", _image(32, 2))
    return [folder / n for n in ("a.fits", "b_nan.fits", "c_tiny.fits", "d.fits")]


_PRODUCTS = ["{}_catalog.ecsv", "{}_labels.fits", "{}_prob.fits"]


def _products(*stems) -> list[str]:
    return sorted(p.format(s) for s in stems for p in _PRODUCTS)


def test_keep_going_reports_failed_inputs_and_goes_on(capsys, tmp_path, seg_model):
    """The all-NaN and the 1x1 image stopped the batch after a.fits (exit 1, d.fits never
    segmented); with --keep-going each is one error line, d.fits is segmented, a summary names
    both, exit 1."""
    inputs = _batch(tmp_path / "in")
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "predict", seg_model, *inputs, "--out", out, "--quiet")
    assert code == 1
    assert _written(out) == _products("a")  # stopped midway: the problem this option answers
    out2 = tmp_path / "out2"
    code, stdout, err = run_cli(
        capsys, "predict", seg_model, *inputs, "--out", out2, "--keep-going"
    )
    assert code == 1, err
    errors = _errors(err)
    assert len(errors) == 3, err
    assert errors[0].startswith(f"sciconv: error: {inputs[1]}: normalization limits are not finite")
    assert errors[1].startswith(f"sciconv: error: {inputs[2]}: ")
    assert "too small" in errors[1]
    assert "2 of 4 inputs failed" in errors[2]
    assert f"{inputs[1]}, {inputs[2]}" in errors[2]
    assert _written(out2) == _products("a", "d")
    assert f"{inputs[0]}: " in stdout and f"{inputs[3]}: " in stdout


def test_keep_going_without_failures_exits_0_without_a_summary(capsys, tmp_path, seg_model):
    inputs = _batch(tmp_path / "in")
    out = tmp_path / "out"
    good = [inputs[0], inputs[3]]
    code, _, err = run_cli(capsys, "predict", seg_model, *good, "--out", out, "--keep-going")
    assert code == 0, err
    assert _errors(err) == []
    assert _written(out) == _products("a", "d")


def test_keep_going_goes_past_a_missing_input(capsys, tmp_path, seg_model, cls_model):
    """One file of a long generated list gone: the whole batch stopped with nothing written,
    --keep-going or not (QA). With --keep-going it is a failed input like an unreadable one;
    without, the batch still stops before anything is segmented."""
    inputs = _batch(tmp_path / "in")
    gone = tmp_path / "in" / "gone.fits"
    args = (inputs[0], gone, inputs[3])
    code, _, err = run_cli(capsys, "predict", seg_model, *args, "--out", tmp_path / "a")
    assert code == 1
    assert_one_line_error(err, "gone.fits", "input not found")
    assert _written(tmp_path / "a") == []
    code, _, err = run_cli(
        capsys, "predict", seg_model, *args, "--out", tmp_path / "b", "--keep-going", "--quiet"
    )
    assert code == 1, err
    errors = _errors(err)
    assert errors[0].startswith(f"sciconv: error: {gone}: ") and len(errors) == 2, err
    assert "1 of 3 inputs failed" in errors[1]
    assert _written(tmp_path / "b") == _products("a", "d")
    for p in (inputs[0], inputs[3]):  # masks beside the images; the gone one's gone too
        _fits(p.with_name(f"{p.stem}_mask.fits"), np.zeros((32, 32), np.uint8))
    template = "{dir}/{stem}_mask.fits"
    code, _, err = run_cli(capsys, "predict", seg_model, *args, "--out", tmp_path / "m",
                           "--keep-going", "--quiet", "--mask", template)  # fmt: skip
    assert code == 1, err  # not 2 (a usage error), and the others segmented
    assert _written(tmp_path / "m") == _products("a", "d")
    cutouts = _cutouts(tmp_path / "cut")
    code, _, err = run_cli(capsys, "predict", cls_model, cutouts[0], gone, cutouts[3], "--out",
                           tmp_path / "c", "--keep-going", "--quiet")  # fmt: skip
    assert code == 1, err
    assert _errors(err)[0].startswith(f"sciconv: error: {gone}: ")
    assert _written(tmp_path / "c") == ["predictions.csv"]


def test_keep_going_goes_past_a_symbolic_link_loop(capsys, tmp_path, seg_model):
    """QA: an input that is a link loop (l1 -> l2 -> l1) stopped the whole --keep-going batch
    with 'unexpected RuntimeError: Symlink loop' before anything was segmented."""
    inputs = _batch(tmp_path / "in")
    (tmp_path / "l1.fits").symlink_to(tmp_path / "l2.fits")
    (tmp_path / "l2.fits").symlink_to(tmp_path / "l1.fits")
    code, _, err = run_cli(capsys, "predict", seg_model, inputs[0], tmp_path / "l1.fits",
                           "--out", tmp_path / "o", "--keep-going", "--quiet")  # fmt: skip
    assert code == 1 and "unexpected" not in err, err
    assert "1 of 2 inputs failed" in err and "l1.fits" in err
    assert _written(tmp_path / "o") == _products("a")


def test_keep_going_does_not_swallow_usage_errors(capsys, tmp_path, seg_model):
    """A usage error (here a --mask template naming no file) still stops the batch (exit 2).
    (--channel beyond one input's channels is that input's failure: tests/test_cli_batch_runs.py.)
    """
    inputs = _batch(tmp_path / "in")
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "predict", seg_model, inputs[0], inputs[3], "--out", out, "--keep-going",
        "--mask", str(tmp_path / "none_{stem}.fits"), "--quiet",
    )  # fmt: skip
    assert code == 2
    errors = _errors(err)
    assert len(errors) == 1 and "--mask" in errors[0]
    assert _written(out) == []


def _failing_writer(monkeypatch, stem: str, exc) -> None:
    """``postprocess.write_products`` writes the products of ``stem``, then raises ``exc`` (a
    full disk on its last file, a Ctrl-C)."""
    real = sc.postprocess.write_products

    def write(out_dir, **kwargs):
        written = real(out_dir, **kwargs)
        if kwargs["stem"] == stem:
            raise exc
        return written

    monkeypatch.setattr(sc.postprocess, "write_products", write)


@pytest.mark.parametrize("keep_going", [True, False])
def test_an_input_failing_while_written_leaves_no_partial_products(
    capsys, tmp_path, seg_model, monkeypatch, keep_going
):
    inputs = _batch(tmp_path / "in")
    good = [inputs[0], inputs[3]]
    out = tmp_path / "out"
    _failing_writer(monkeypatch, "a", WriteError("cannot write (disk full)", path=out / "x"))
    extra = ("--keep-going",) if keep_going else ()
    code, _, err = run_cli(capsys, "predict", seg_model, *good, "--out", out, "--quiet", *extra)
    assert code == 1
    assert "disk full" in _errors(err)[0]
    if keep_going:  # the input named first, then the error (here naming the product)
        assert _errors(err)[0].startswith(f"sciconv: error: {inputs[0]}: {out / 'x'}: cannot")
    assert _written(out) == (_products("d") if keep_going else [])


def test_an_interrupted_input_leaves_no_partial_products(capsys, tmp_path, seg_model, monkeypatch):
    """Ctrl-C (or SIGTERM) while an input's products are written: its files written so far are
    removed, so that a rerun with --skip-existing does not find a partial set."""
    inputs = _batch(tmp_path / "in")
    out = tmp_path / "out"
    _failing_writer(monkeypatch, "d", KeyboardInterrupt())
    code, _, err = run_cli(
        capsys, "predict", seg_model, inputs[0], inputs[3], "--out", out, "--quiet",
        "--keep-going",
    )  # fmt: skip
    assert code == 130
    assert "sciconv: interrupted" in err
    assert _written(out) == _products("a")


def test_keep_going_over_a_movie_with_an_empty_frame(capsys, tmp_path, seg_model):
    """A movie whose second frame is all NaN is segmented (QA 56: it failed the whole movie):
    that frame empty (labels 0, masked), a warning naming it; the image after it too."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    frames = np.stack([_image(32, 1), np.full((32, 32), np.nan, np.float32), _image(32, 2)])
    tifffile.imwrite(inputs / "movie.tif", frames, metadata={"axes": "TYX"})
    tifffile.imwrite(inputs / "z.tif", _image(32, 3))
    out = tmp_path / "out"
    with pytest.warns(sc.errors.SciconvWarning, match=r"plane T=1: no finite pixel"):
        code, _, err = run_cli(capsys, "predict", seg_model, inputs, "--out", out, "--keep-going")
    assert code == 0, err
    assert not _errors(err)
    assert _written(out) == [
        "movie_catalog.ecsv", "movie_labels.tif", "movie_mask.tif", "movie_prob.tif",
        "z_catalog.ecsv", "z_labels.tif", "z_prob.tif",
    ]  # fmt: skip
    assert not tifffile.imread(out / "movie_labels.tif")[1].any()


# ----------------------------------------------------------------------- classifiers/regressors
def _cutouts(folder):
    folder.mkdir()
    for name, seed in (("a", 1), ("e", 2), ("f", 3)):
        tifffile.imwrite(folder / f"{name}.tif", _image(16, seed))
    rgb = np.random.default_rng(4).normal(10, 1, (16, 16, 3)).astype(np.float32)
    tifffile.imwrite(folder / "b_rgb.tif", rgb, photometric="rgb")
    (folder / "c_bad.tif").write_bytes(b"not a tiff")
    names = ("a.tif", "b_rgb.tif", "c_bad.tif", "e.tif", "f.tif")
    return [folder / n for n in names]


def test_keep_going_leaves_failed_files_out_of_predictions_csv(capsys, tmp_path, cls_model):
    """An RGB file for a one-channel model, and a file that is not a TIFF: no predictions.csv at
    all (exit 1); with --keep-going the three other rows, the two named in the summary."""
    from astropy.table import Table

    inputs = _cutouts(tmp_path / "in")
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "predict", cls_model, *inputs, "--out", out, "--quiet")
    assert code == 1
    assert _written(out) == []
    args = ("predict", cls_model, *inputs, "--out", out, "--keep-going", "--batch-size", "2")
    code, stdout, err = run_cli(capsys, *args)
    assert code == 1, err
    errors = _errors(err)
    assert len(errors) == 3, err
    assert errors[0].startswith(f"sciconv: error: {inputs[1]}: image has 3 channel(s)")
    assert errors[1].startswith(f"sciconv: error: {inputs[2]}: not a TIFF file")
    assert "2 of 5 inputs failed" in errors[2] and "predictions.csv" in errors[2]
    assert f"{inputs[1]}, {inputs[2]}" in errors[2]
    table = Table.read(out / "predictions.csv", format="ascii.csv")
    assert list(table["path"]) == [str(inputs[i]) for i in (0, 3, 4)]
    assert "3 predictions" in stdout


def test_keep_going_rows_equal_a_run_without_the_failed_files(capsys, tmp_path, cls_model):
    from astropy.table import Table

    inputs = _cutouts(tmp_path / "in")
    good = [inputs[i] for i in (0, 3, 4)]
    code, _, err = run_cli(capsys, "predict", cls_model, *good, "--out", tmp_path / "o1")
    assert code == 0, err
    code, _, err = run_cli(
        capsys, "predict", cls_model, *inputs, "--out", tmp_path / "o2", "--keep-going"
    )
    assert code == 1
    want = Table.read(tmp_path / "o1" / "predictions.csv", format="ascii.csv")
    got = Table.read(tmp_path / "o2" / "predictions.csv", format="ascii.csv")
    assert got.colnames == want.colnames
    for name in want.colnames:
        if want[name].dtype.kind == "f":
            np.testing.assert_allclose(got[name], want[name], atol=1e-6)
        else:
            assert list(got[name]) == list(want[name])


def test_keep_going_with_every_file_failing_writes_no_table(capsys, tmp_path, cls_model):
    inputs = _cutouts(tmp_path / "in")
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "predict", cls_model, inputs[1], inputs[2], "--out", out, "--keep-going"
    )
    assert code == 1
    errors = _errors(err)
    assert len(errors) == 3 and "2 of 2 inputs failed" in errors[2]
    assert not (out / "predictions.csv").exists()


def test_the_summary_counts_inputs_skipped_as_done(capsys, tmp_path, seg_model):
    """QA: with --skip-existing, 2 inputs skipped and 1 broken said "1 of 1 inputs failed"."""
    folder = tmp_path / "in"
    folder.mkdir()
    _fits(folder / "a.fits", _image(32, 1))
    _fits(folder / "b.fits", _image(32, 2))
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "predict", seg_model, *sorted(folder.iterdir()), "--out", out,
                           "--quiet")  # fmt: skip
    assert code == 0, err
    (folder / "c.fits").write_bytes(b"garbage")
    code, _, err = run_cli(capsys, "predict", seg_model, *sorted(folder.iterdir()), "--out", out,
                           "--skip-existing", "--keep-going")  # fmt: skip
    assert code == 1
    assert "1 of 3 inputs failed (2 skipped: done before)" in _errors(err)[-1]


def test_movie_frames_with_no_objects_get_their_plane_column_on_old_astropy(
    capsys, tmp_path, seg_model, monkeypatch
):
    """astropy < 7 refuses a scalar column on an empty table: a movie frame with no objects
    ended the command in a TypeError there (QA floors). The plane index is given as a column,
    which every astropy takes; astropy 6's refusal is replayed here."""
    from astropy.table import Table

    real = Table.add_column

    def astropy6(self, col, *args, **kwargs):
        if len(self) == 0 and np.isscalar(col):
            raise TypeError("Empty table cannot have column set to scalar value")
        return real(self, col, *args, **kwargs)

    monkeypatch.setattr(Table, "add_column", astropy6)
    inputs = tmp_path / "in"
    inputs.mkdir()
    frames = np.stack([_image(32, 1), _image(32, 2)])
    tifffile.imwrite(inputs / "movie.tif", frames, metadata={"axes": "TYX"})
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "predict", seg_model, inputs / "movie.tif", "--out", out)
    assert code == 0, err
    catalog = Table.read(out / "movie_catalog.ecsv")
    assert catalog.colnames[0] == "t" and catalog.meta["stack_axes"] == "T"
