"""``sciconv predict`` batches that meet other runs, earlier runs and a hostile file system
(QA report qa36): overlapping runs on one ``--out`` (its lock, a clean-up that removes only this
run's files), stale products after ``--overwrite``, ``--skip-existing`` that checks what the
products were made with, products and unreadable files among the inputs, long names, full
disks, broken stderr.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile
from _helpers import assert_one_line_error, live_process, run_cli

import sciconv as sc
from sciconv._atomic import atomic_output
from sciconv._cli_predict import OUT_LOCK
from sciconv.errors import OutputExistsError, SciconvWarning, WriteError


@pytest.fixture(scope="module")
def seg_model(tmp_path_factory):
    """A tiny untrained segmenter (divisor 8) saved to .keras."""
    path = tmp_path_factory.mktemp("cli_batch_runs") / "seg.keras"
    sc.models.segmenter((None, None, 1), depth=3, filters=2).save(path)
    return path


def _image(size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(10, 1, (size, size)).astype(np.float32)


def _fits(path, data) -> None:
    from astropy.io import fits

    fits.PrimaryHDU(data).writeto(path, overwrite=True)


def _tiffs(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        tifffile.imwrite(folder / name, _image(32, i))
    return [folder / n for n in names]


def _written(out) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def _errors(err: str) -> list[str]:
    assert "Traceback" not in err
    return [ln for ln in err.strip().splitlines() if ln.startswith("sciconv: error:")]


def _tif_products(*stems) -> list[str]:
    return sorted(f"{s}_{k}" for s in stems for k in ("catalog.ecsv", "labels.tif", "prob.tif"))


def _failing_writer(monkeypatch, stem: str, fail) -> list:
    """``postprocess.write_products`` calls ``fail(out_dir)`` for ``stem`` instead of writing;
    the stems it was called for are returned (a list filled as the run goes)."""
    real, calls = sc.postprocess.write_products, []

    def write(out_dir, **kwargs):
        calls.append(kwargs["stem"])
        if kwargs["stem"] == stem:
            fail(out_dir)
        return real(out_dir, **kwargs)

    monkeypatch.setattr(sc.postprocess, "write_products", write)
    return calls


# ------------------------------------------------------------------ F0: overlapping runs on --out
def test_a_failed_input_never_removes_files_another_process_wrote(
    capsys, tmp_path, seg_model, monkeypatch
):
    """Run 2 failed on a's products because run 1 linked them first; its clean-up saw them
    changed and deleted run 1's finished products (reported as done by run 1)."""
    (a,) = _tiffs(tmp_path / "in", "a.tif")
    out = tmp_path / "out"

    def other_run_wins(out_dir):
        for name in _tif_products("a"):  # the other process's finished products
            (out_dir / name).write_text("run 1")
        raise OutputExistsError(
            "output appeared while writing; not replaced", path=out / "a_prob.tif"
        )

    _failing_writer(monkeypatch, "a", other_run_wins)
    code, _, err = run_cli(capsys, "predict", seg_model, a, "--out", out, "--quiet")
    assert code == 1
    assert_one_line_error(err, "output appeared while writing")
    assert _written(out) == _tif_products("a")
    assert {(out / n).read_text() for n in _tif_products("a")} == {"run 1"}


def _lock(out, pid: int, started: str = "2024-01-02T03:04:05+00:00") -> None:
    out.mkdir(parents=True, exist_ok=True)
    text = {"pid": pid, "host": socket.gethostname(), "started": started}
    (out / OUT_LOCK).write_text(json.dumps(text))


def test_a_second_run_on_the_same_out_is_refused_at_once(capsys, tmp_path, seg_model):
    (a,) = _tiffs(tmp_path / "in", "a.tif")
    out = tmp_path / "out"
    with live_process() as (pid, started):
        _lock(out, pid, started)  # a live run on this host holds --out
        code, _, err = run_cli(capsys, "predict", seg_model, a, "--out", out, "--quiet")
    assert code == 1
    assert_one_line_error(err, str(out), "in use", f"pid {pid}", socket.gethostname(), started)
    assert _written(out) == [OUT_LOCK] and (out / OUT_LOCK).is_file()  # not ours: kept


def test_a_lock_whose_pid_was_reused_is_stale(capsys, tmp_path, seg_model):
    """QA: a container restarted after a SIGKILL runs sciconv with the same small pid (1) and
    host name; the dead run's lock named a live process (the new run itself, or another that
    got the pid), and every restart was refused."""
    (a,) = _tiffs(tmp_path / "in", "a.tif")
    for n, holder in enumerate(("self", "other")):
        out = tmp_path / f"out{n}"
        with live_process() as (other, _):
            _lock(out, os.getpid() if holder == "self" else other)  # written in 2024
            with pytest.warns(SciconvWarning, match="taking over the lock of a run that is no"):
                code, _, err = run_cli(capsys, "predict", seg_model, a, "--out", out, "--quiet")
        assert code == 0, err
        assert not (out / OUT_LOCK).exists()


def test_a_stale_lock_is_taken_over_and_the_lock_is_removed_at_the_end(
    capsys, tmp_path, seg_model, monkeypatch
):
    (a,) = _tiffs(tmp_path / "in", "a.tif")
    out = tmp_path / "out"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _lock(out, dead.pid)
    held = []
    real = sc.postprocess.write_products

    def write(out_dir, **kwargs):
        held.append(json.loads((out / OUT_LOCK).read_text())["pid"])
        return real(out_dir, **kwargs)

    monkeypatch.setattr(sc.postprocess, "write_products", write)
    with pytest.warns(SciconvWarning, match="taking over the lock of a run that is no longer"):
        code, _, err = run_cli(capsys, "predict", seg_model, a, "--out", out, "--quiet")
    assert code == 0, err
    assert held == [os.getpid()]  # held while the products were written
    assert _written(out) == _tif_products("a")  # and removed at the end


@pytest.mark.parametrize("fail", [KeyboardInterrupt(), WriteError("cannot write", path="x")])
def test_the_lock_is_removed_after_an_error_or_an_interrupt(
    capsys, tmp_path, seg_model, monkeypatch, fail
):
    inputs = _tiffs(tmp_path / "in", "a.tif")
    out = tmp_path / "in"  # --out = the input folder: the lock is no input either

    def stop(out_dir):
        raise fail

    _failing_writer(monkeypatch, "a", stop)
    code, _, _ = run_cli(capsys, "predict", seg_model, *inputs, "--out", out, "--quiet")
    assert code in (1, 130)
    assert _written(out) == ["a.tif"]


# ------------------------------------------------------------ F1: --overwrite and a failing input
@pytest.mark.parametrize("keep_going", [True, False])
def test_overwrite_removes_a_failing_inputs_stale_products(capsys, tmp_path, seg_model, keep_going):
    inputs = tmp_path / "in"
    inputs.mkdir()
    _fits(inputs / "m.fits", _image(32, 1))
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "predict", seg_model, inputs, "--out", out, "--quiet")
    assert code == 0, err
    _fits(inputs / "m.fits", np.full((32, 32), np.nan, np.float32))  # the file changed
    extra = ("--keep-going",) if keep_going else ()
    code, _, err = run_cli(
        capsys, "predict", seg_model, inputs, "--out", out, "--overwrite", "--quiet", *extra
    )
    assert code == 1
    line = _errors(err)[0]
    assert "m_prob.fits" in line and "removed" in line and "stale" in line, line
    assert _written(out) == []


# ------------------------------------------------------ F2: --skip-existing checks the products
def _first_run(capsys, tmp_path, seg_model, *extra):
    inputs = _tiffs(tmp_path / "in", "a.tif")
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "predict", seg_model, *inputs, "--out", out, "--quiet", *extra)
    assert code == 0, err
    return inputs, out


def test_skip_existing_with_the_same_settings_skips(capsys, tmp_path, seg_model):
    inputs, out = _first_run(capsys, tmp_path, seg_model, "--threshold", "0.4")
    code, stdout, err = run_cli(
        capsys, "predict", seg_model, *inputs, "--out", out, "--threshold", "0.4",
        "--skip-existing",
    )  # fmt: skip
    assert code == 0, err
    assert "skipped, its products exist" in stdout


def test_skip_existing_needs_the_uncertainty_file_asked_for(capsys, tmp_path, seg_model):
    inputs, out = _first_run(capsys, tmp_path, seg_model)
    code, _, err = run_cli(
        capsys, "predict", seg_model, *inputs, "--out", out, "--uncertainty", "tta",
        "--skip-existing", "--quiet",
    )  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "a.tif", "not a_uncert.tif", "--overwrite")


@pytest.mark.parametrize(
    "extra, fragment",
    [(("--threshold", "0.9"), "threshold = "), (("--tta",), "tta = ")],
)
def test_skip_existing_refuses_products_made_with_other_settings(
    capsys, tmp_path, seg_model, extra, fragment
):
    inputs, out = _first_run(capsys, tmp_path, seg_model)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code, _, err = run_cli(
        capsys, "predict", seg_model, *inputs, "--out", out, "--skip-existing", *extra
    )
    assert code == 1
    assert_one_line_error(err, "a_prob.tif", "was made with", fragment, "--overwrite")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_skip_existing_refuses_products_of_another_model(capsys, tmp_path, seg_model):
    inputs, out = _first_run(capsys, tmp_path, seg_model)
    other = tmp_path / "other.keras"
    other.write_bytes(seg_model.read_bytes())
    code, _, err = run_cli(capsys, "predict", other, *inputs, "--out", out, "--skip-existing")
    assert code == 1
    assert_one_line_error(err, "model seg.keras (this run: other.keras)")


def test_skip_existing_tells_two_models_of_one_name_apart(capsys, tmp_path, seg_model):
    """A retrained ``best.keras`` in another folder: the products recorded only the file's name,
    so --skip-existing took the first model's products as this one's."""
    inputs, out = _first_run(capsys, tmp_path, seg_model)
    other = tmp_path / "retrained" / "seg.keras"
    other.parent.mkdir()
    sc.models.segmenter((None, None, 1), depth=3, filters=3).save(other)
    code, _, err = run_cli(capsys, "predict", other, *inputs, "--out", out, "--skip-existing")
    assert code == 1
    assert_one_line_error(err, "was made with model_id = 'sha256:", "(this run: 'sha256:")
    copy = tmp_path / "copy" / "seg.keras"  # the same bytes elsewhere: the same model
    copy.parent.mkdir()
    copy.write_bytes(seg_model.read_bytes())
    code, stdout, err = run_cli(capsys, "predict", copy, *inputs, "--out", out, "--skip-existing")
    assert code == 0 and "skipped, its products exist" in stdout, err


def test_skip_existing_refuses_empty_and_outdated_products(capsys, tmp_path, seg_model):
    inputs, out = _first_run(capsys, tmp_path, seg_model)
    args = ("predict", seg_model, *inputs, "--out", out, "--skip-existing", "--quiet")
    later = time.time() + 10
    os.utime(inputs[0], (later, later))  # changed after its products were made (or copied)
    stale = (out / "a_labels.tif").stat().st_mtime_ns
    with pytest.warns(SciconvWarning, match=r"1 input\(s\) are newer than their products"):
        code, _, err = run_cli(capsys, *args)
    assert code == 0, err  # segmented again (a batch job staging inputs with cp was refused)
    assert (out / "a_labels.tif").stat().st_mtime_ns > stale
    os.utime(inputs[0], (1, 1))
    (out / "a_labels.tif").write_bytes(b"")
    code, _, err = run_cli(capsys, *args)
    assert code == 1
    assert_one_line_error(err, "a_labels.tif is empty")


def test_skip_existing_names_every_input_with_some_products(capsys, tmp_path, seg_model):
    inputs = _tiffs(tmp_path / "in", "a.tif", "b.tif", "c.tif")
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "predict", seg_model, *inputs, "--out", out, "--quiet")
    assert code == 0, err
    for stem in "abc":  # the catalogs left, which record no settings (not known to be ours)
        (out / f"{stem}_labels.tif").unlink()
        (out / f"{stem}_prob.tif").unlink()
    code, _, err = run_cli(capsys, "predict", seg_model, *inputs, "--out", out, "--skip-existing")
    assert code == 1
    assert_one_line_error(err, "3 inputs", *(str(p) for p in inputs), "--overwrite")


# --------------------------------------------------------- F3, F9: products are not inputs
def test_products_in_out_are_not_inputs_and_out_is_not_suggested(capsys, tmp_path, seg_model):
    folder = tmp_path / "t4"
    _tiffs(folder, "a.tif")
    tifffile.imwrite(folder / "b.tif", _image(32, 5))
    (folder / "other").mkdir()
    out = folder / "res"
    with pytest.warns(SciconvWarning, match=r"sub-folder\(s\) other not searched") as record:
        code, _, err = run_cli(
            capsys, "predict", seg_model, folder / "a.tif", folder, "--out", out, "--quiet"
        )
    assert code == 0, err
    assert all("res" not in str(w.message) for w in record)
    for name in _tif_products("b"):
        (out / name).unlink()
    with pytest.warns(SciconvWarning, match=r"skipped 2 input\(s\) named as sciconv products"):
        code, _, err = run_cli(  # the images of an earlier run's folder, recorded as products
            capsys, "predict", seg_model, out, "--out", tmp_path / "again", "--quiet"
        )
    assert code == 0, err
    assert _written(tmp_path / "again") == []
    with pytest.warns(SciconvWarning, match=r"skipped 3 input\(s\) named as sciconv products"):
        code, _, err = run_cli(
            capsys, "predict", seg_model, folder / "b.tif", *sorted(out.iterdir()), "--out", out,
            "--quiet",
        )  # fmt: skip
    assert code == 0, err
    assert _written(out) == _tif_products("a", "b")  # no a_labels_labels.tif


def test_earlier_products_of_every_kind_beside_their_inputs_are_not_inputs(
    capsys, tmp_path, seg_model
):
    folder = tmp_path / "t2"
    _tiffs(folder, "a.tif")
    code, _, err = run_cli(
        capsys, "predict", seg_model, folder, "--out", folder, "--quiet", "--regions", "ellipse",
        "--catalog-format", "fits",
    )  # fmt: skip
    assert code == 0, err
    listed = sorted(folder.iterdir())  # as the shell gives t2/*
    assert {"a_catalog.fits", "a_regions.reg"} <= {p.name for p in listed}
    out = tmp_path / "elsewhere"
    with pytest.warns(SciconvWarning, match=r"skipped 4 input\(s\)"):
        code, _, err = run_cli(
            capsys, "predict", seg_model, *listed, "--out", out, "--keep-going", "--quiet"
        )
    assert code == 0, err
    assert _written(out) == _tif_products("a")


# ------------------------------------------------ F4, F6: inputs that fail their up-front probe
def test_keep_going_goes_past_inputs_that_cannot_be_read(capsys, tmp_path, seg_model):
    folder = tmp_path / "bad"
    _tiffs(folder, "a.tif", "d.tif")
    (folder / "b_empty.tif").write_bytes(b"")
    (folder / "c_trunc.tif").write_bytes((folder / "a.tif").read_bytes()[:300])
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "predict", seg_model, folder, "--out", out, "--quiet")
    assert code == 1
    assert_one_line_error(err, "b_empty.tif")
    assert _written(out) == []  # without --keep-going: stopped before anything is segmented
    code, _, err = run_cli(
        capsys, "predict", seg_model, folder, "--out", out, "--quiet", "--keep-going"
    )
    assert code == 1
    errors = _errors(err)
    assert len(errors) == 3, err
    assert "b_empty.tif" in errors[0] and "c_trunc.tif" in errors[1]
    assert "2 of 4 inputs failed" in errors[2]
    assert _written(out) == _tif_products("a", "d")


def test_a_channel_an_input_lacks_is_found_before_any_input_runs(capsys, tmp_path, seg_model):
    folder = tmp_path / "ch"
    folder.mkdir()
    sc.io.write(folder / "a_rgb.png", np.full((32, 32, 3), 100, np.uint8))
    tifffile.imwrite(folder / "b_gray.tif", _image())
    out = tmp_path / "out"
    args = ("predict", seg_model, folder, "--out", out, "--channel", "1", "--quiet")
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert_one_line_error(err, "b_gray.tif", "--channel 1")
    assert _written(out) == []  # a_rgb.png was not segmented first
    code, _, err = run_cli(capsys, *args, "--keep-going")
    assert code == 1
    assert "b_gray.tif: --channel 1" in _errors(err)[0]
    assert _written(out) == _tif_products("a_rgb")


# ------------------------------------------------------------- F5, F7, F10: the file system
def test_a_long_legal_name_gets_a_short_scratch_name(tmp_path):
    target = tmp_path / ("y" * 240 + "_labels.tif")  # 251 bytes: legal
    with atomic_output(target) as tmp:
        assert len(tmp.name.encode()) <= 255
        tmp.write_bytes(b"x")
    assert target.read_bytes() == b"x"


def test_product_names_too_long_are_refused_up_front(capsys, tmp_path, seg_model):
    inputs = _tiffs(tmp_path / "in", "a.tif", "x" * 245 + ".tif")
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "predict", seg_model, *inputs, "--out", out, "--keep-going")
    assert code == 1
    assert_one_line_error(err, "file name too long", "xxxxxxxx")
    assert _written(out) == []


def test_an_oserror_while_writing_is_one_inputs_failure(capsys, tmp_path, seg_model, monkeypatch):
    inputs = _tiffs(tmp_path / "in", "a.tif", "d.tif")
    out = tmp_path / "out"

    def too_long(out_dir):
        raise OSError(errno.ENAMETOOLONG, "File name too long", str(out_dir / "a_prob.tif"))

    _failing_writer(monkeypatch, "a", too_long)
    code, _, err = run_cli(
        capsys, "predict", seg_model, *inputs, "--out", out, "--keep-going", "--quiet"
    )
    assert code == 1
    errors = _errors(err)
    assert "a_prob.tif: cannot write (File name too long)" in errors[0], errors
    assert "1 of 2 inputs failed" in errors[-1]
    assert _written(out) == _tif_products("d")


def test_an_unwritable_out_is_found_before_any_input_runs(capsys, tmp_path, seg_model, monkeypatch):
    inputs = _tiffs(tmp_path / "in", "a.tif")
    out = tmp_path / "out"
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(out)) and args and args[0] & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    calls = _failing_writer(monkeypatch, "none", lambda out_dir: None)
    code, _, err = run_cli(capsys, "predict", seg_model, *inputs, "--out", out, "--keep-going")
    assert code == 1
    assert_one_line_error(err, "Read-only file system", "--out is not writable")
    assert calls == []  # nothing was computed


def test_a_full_disk_stops_a_keep_going_batch(capsys, tmp_path, seg_model, monkeypatch):
    inputs = _tiffs(tmp_path / "in", "a.tif", "d.tif")
    out = tmp_path / "out"

    def full(out_dir):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as err:
            raise WriteError(
                "cannot write (No space left on device)", path=out_dir / "a_prob.tif"
            ) from err

    calls = _failing_writer(monkeypatch, "a", full)
    code, _, err = run_cli(
        capsys, "predict", seg_model, *inputs, "--out", out, "--keep-going", "--quiet"
    )
    assert code == 1
    errors = _errors(err)
    assert "a.tif" in errors[0] and "No space left" in errors[0]
    assert "the batch stops here" in errors[-1]
    assert calls == ["a"]  # d.tif was not computed


def test_progress_to_a_broken_stderr_does_not_stop_the_batch(
    capsys, tmp_path, seg_model, monkeypatch
):
    inputs = _tiffs(tmp_path / "in", "a.tif", "b.tif", "c.tif")
    out = tmp_path / "out"

    class Full:
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            pass

        def isatty(self):
            return False

    monkeypatch.setattr(sys, "stderr", Full())
    code, _, _ = run_cli(capsys, "predict", seg_model, *inputs, "--out", out)
    assert code == 0
    assert _written(out) == _tif_products("a", "b", "c")


# ------------------------------------------------------------- F8, F12, F13
def test_an_earlier_sidecar_is_found_before_anything_is_computed(capsys, tmp_path, seg_model):
    """An orphaned mask file (its products removed) was refused only after computing, or, for
    an input without bad pixels, left beside new products with a warning."""
    inputs = _tiffs(tmp_path / "in", "a.tif", "b.tif")
    out = tmp_path / "out"
    out.mkdir()
    (out / "b_mask.tif").write_bytes(b"old")
    code, _, err = run_cli(capsys, "predict", seg_model, *inputs, "--out", out, "--quiet")
    assert code == 1
    assert_one_line_error(err, "b_mask.tif", "output exists")
    assert _written(out) == ["b_mask.tif"]  # a.tif was not computed first
    (out / "b_uncert.tif").write_bytes(b"old")
    (out / "b_mask.tif").unlink()
    code, _, err = run_cli(
        capsys, "predict", seg_model, *inputs, "--out", out, "--uncertainty", "tta",
        "--skip-existing", "--quiet",
    )  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "b.tif", "only some of its products exist (b_uncert.tif")


def test_the_same_file_named_twice_is_taken_once(capsys, tmp_path, seg_model):
    folder = tmp_path / "in"
    (a,) = _tiffs(folder, "a.tif")
    out = tmp_path / "out"
    twice = (folder, a, f"{folder}/./a.tif")
    code, _, err = run_cli(capsys, "predict", seg_model, *twice, "--out", out, "--quiet")
    assert code == 0, err
    assert _written(out) == _tif_products("a")


def test_a_broken_link_in_an_input_folder_is_named(capsys, tmp_path, seg_model):
    folder = tmp_path / "in"
    _tiffs(folder, "a.tif")
    (folder / "dangling.tif").symlink_to(folder / "nothere.tif")
    with pytest.warns(SciconvWarning, match=r"broken link\(s\) skipped \(dangling\.tif\)"):
        code, _, err = run_cli(
            capsys, "predict", seg_model, folder, "--out", tmp_path / "out", "--quiet"
        )
    assert code == 0, err
