"""``sciconv predict``'s progress suits where it goes: plain lines off a terminal, none if quiet.

The file loop, the tiles of a single file, the blocks of a mosaic and the classifier table all
go through ``sciconv._progress.progress_bar``: a log or CI output (stderr not a
terminal, as under ``capsys``) gets a few complete lines, with no carriage return, no escape code
and no per-item redraw.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import tifffile
from _helpers import run_cli

import sciconv as sc

N_FILES = 6
ESCAPES = re.compile(r"\r|\x1b\[")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny segmenter and a classifier saved to .keras, and N_FILES 32 x 32 TIFF images."""
    root = tmp_path_factory.mktemp("cli_progress")
    sc.models.segmenter((None, None, 1), depth=1, filters=2).save(root / "seg.keras")
    sc.models.classifier((32, 32, 1), 2, filters=(2,), dense=()).save(root / "cls.keras")
    rng = np.random.default_rng(0)
    images = []
    for i in range(N_FILES):
        images.append(root / f"im{i}.tif")
        tifffile.imwrite(images[-1], rng.normal(size=(32, 32)).astype(np.float32))
    return root, images


def _progress_lines(err: str, desc: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(f"{desc}:")]


def _segment(capsys, inputs, out, *extra):
    root, images = inputs
    return run_cli(
        capsys, "predict", root / "seg.keras", *images, "--out", out, "--tile", "32",
        "--overlap", "18", *extra,
    )  # fmt: skip


def test_file_loop_off_a_terminal_writes_a_few_plain_lines(capsys, inputs, tmp_path):
    code, out, err = _segment(capsys, inputs, tmp_path / "o")
    assert code == 0, err
    assert not ESCAPES.search(err), repr(err)
    lines = _progress_lines(err, "predict")
    assert 1 <= len(lines) <= 5, err  # one line per quarter, not one per file or redraw
    assert lines[-1].startswith(f"predict: {N_FILES}/{N_FILES} files (100%)")
    assert not _progress_lines(err, "predict_tiled")  # several files: one bar, over files
    assert len(out.splitlines()) == N_FILES  # one result line per input on stdout


def test_single_file_shows_its_tiles_and_a_mosaic_its_blocks(capsys, inputs, tmp_path):
    root, images = inputs
    code, _, err = run_cli(
        capsys, "predict", root / "seg.keras", images[0], "--out", tmp_path / "o", "--tile",
        "24", "--overlap", "18",
    )  # fmt: skip
    assert code == 0, err
    assert not ESCAPES.search(err), repr(err)
    assert not _progress_lines(err, "predict")
    tiles = _progress_lines(err, "predict_tiled")
    assert 1 <= len(tiles) <= 5 and "(100%)" in tiles[-1], err
    code, _, err = run_cli(
        capsys, "predict", root / "seg.keras", images[0], "--out", tmp_path / "b", "--block",
        "16", "--overlap", "18",
    )  # fmt: skip
    assert code == 0, err
    assert not ESCAPES.search(err), repr(err)
    blocks = _progress_lines(err, "predict_instances_blocks")
    assert 1 <= len(blocks) <= 5 and blocks[-1].startswith("predict_instances_blocks: 4/4"), err


def test_classifier_table_progress_is_plain(capsys, inputs, tmp_path):
    root, images = inputs
    code, _, err = run_cli(capsys, "predict", root / "cls.keras", *images, "--out", tmp_path)
    assert code == 0, err
    assert not ESCAPES.search(err), repr(err)
    lines = _progress_lines(err, "predict_files")
    assert 1 <= len(lines) <= 5 and "(100%)" in lines[-1], err


def test_quiet_prints_nothing(capsys, inputs, tmp_path):
    root, images = inputs
    code, out, err = _segment(capsys, inputs, tmp_path / "o", "--quiet")
    assert code == 0, err
    assert (out, err) == ("", "")
    assert len(list((tmp_path / "o").glob("*_labels.tif"))) == N_FILES  # the work was done
    code, out, err = run_cli(
        capsys, "predict", root / "cls.keras", *images, "--out", tmp_path / "c", "--quiet"
    )
    assert code == 0, err
    assert (out, err) == ("", "")
    assert (tmp_path / "c" / "predictions.csv").is_file()
    code, out, err = run_cli(
        capsys, "predict", root / "seg.keras", images[0], "--out", tmp_path / "b", "--block",
        "16", "--overlap", "18", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert (out, err) == ("", "")
