"""Channel names and per-channel saturation in measure's catalogs (QA 56, markers): a 3-channel
TIFF's DNA/MARKER/RING names reach the catalog files, a channels-first array is refused with the
np.moveaxis fix, and a 12-bit camera's 4095 clip in a 16-bit TIFF is flagged per channel."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile
from astropy.table import Table

from sciconv import io, postprocess
from sciconv.errors import InvalidImageError

NAMES = ["DNA", "MARKER", "RING"]


def _plate_field(path, names=NAMES):
    """A noisy 3-channel 12-bit field written as a 16-bit ImageJ TIFF (C, Y, X) with channel
    names; its labels."""
    rng = np.random.default_rng(0)
    labels = np.zeros((64, 64), np.int32)
    labels[10:20, 10:20] = 1
    labels[40:50, 30:42] = 2
    signal = np.stack([800 * (labels > 0), 900 * (labels == 1), 0 * labels])
    stack = rng.poisson(100 + signal).astype(np.uint16)
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "CYX", "Labels": list(names)})
    return labels, stack


def test_channel_names_name_the_csv_columns_and_stay_in_the_other_formats(tmp_path):
    labels, _ = _plate_field(tmp_path / "field.tif")
    table = postprocess.measure(labels, intensity=io.read(tmp_path / "field.tif"))
    assert table.meta["channel_names"] == NAMES
    assert table["flux_mean"].shape == (2, 3)  # the column names stay an API
    postprocess.write_catalog(table, tmp_path / "cat.csv")
    with open(tmp_path / "cat.csv", newline="") as f:
        header = next(csv.reader(f))
    assert [h for h in header if h.startswith("flux_mean")] == [
        "flux_mean_DNA",
        "flux_mean_MARKER",
        "flux_mean_RING",
    ]
    assert "flux_sum_MARKER" in header and "flux_sum_0" not in header
    marker = Table.read(tmp_path / "cat.csv")["flux_mean_MARKER"]
    np.testing.assert_allclose(marker, table["flux_mean"][:, 1])
    for ext in ("ecsv", "fits", "vot"):
        path = postprocess.write_catalog(table, tmp_path / f"cat.{ext}")
        assert postprocess.read_catalog(path).meta["channel_names"] == NAMES, ext


def test_one_named_channel_reads_back_as_a_list(tmp_path):
    labels, _ = _plate_field(tmp_path / "field.tif")
    one = io.read(tmp_path / "field.tif").channel(1)
    table = postprocess.measure(labels, intensity=one)
    assert table.meta["channel_names"] == ["MARKER"]
    for ext in ("ecsv", "fits", "vot"):
        path = postprocess.write_catalog(table, tmp_path / f"one.{ext}")
        assert postprocess.read_catalog(path).meta["channel_names"] == ["MARKER"], ext


def test_unsafe_duplicate_or_clashing_channel_names_fall_back_safely():
    flux = np.ones((2, 3))
    t = Table({"flux_sum": flux}, meta={"channel_names": ["DAPI 405", "GFP/FITC", "Ki-67"]})
    assert postprocess.flatten_table(t).colnames == [
        "flux_sum_DAPI_405",
        "flux_sum_GFP_FITC",
        "flux_sum_Ki_67",
    ]
    for names in (["GFP", "gfp", "RFP"], ["DNA", "", "RING"], ["DNA", " / ", "RING"]):
        t = Table({"flux_sum": flux}, meta={"channel_names": names})
        assert postprocess.flatten_table(t).colnames == ["flux_sum_0", "flux_sum_1", "flux_sum_2"]
    # a channel named "err" would split flux into flux_err, a column of its own: indices
    t = Table({"flux": flux, "flux_err": flux}, meta={"channel_names": ["err", "a", "b"]})
    assert postprocess.flatten_table(t).colnames[:3] == ["flux_0", "flux_1", "flux_2"]
    # names of another length (a two-channel list on three columns) are not used
    t = Table({"flux_sum": flux}, meta={"channel_names": ["DNA", "GFP"]})
    assert postprocess.flatten_table(t).colnames == ["flux_sum_0", "flux_sum_1", "flux_sum_2"]
    from sciconv.postprocess._image_columns import channel_labels

    assert channel_labels(["DNA", "GFP 488/525"]) == ["DNA", "GFP_488_525"]


def test_class_names_still_name_probabilities():
    t = Table({"probabilities": np.eye(2)}, meta={"class_names": ["spiral", "elliptical"]})
    assert postprocess.flatten_table(t).colnames == [
        "probabilities_spiral",
        "probabilities_elliptical",
    ]


def test_a_channels_first_intensity_is_refused_with_the_moveaxis_fix(tmp_path):
    labels, stack = _plate_field(tmp_path / "field.tif")
    with pytest.raises(InvalidImageError, match=r"np\.moveaxis\(image, 0, -1\)") as info:
        postprocess.measure(labels, intensity=tifffile.imread(tmp_path / "field.tif"))
    assert "(3, 64, 64)" in str(info.value)
    # the fix it names works
    table = postprocess.measure(labels, intensity=np.moveaxis(stack, 0, -1))
    assert table["flux_mean"].shape == (2, 3)


def _clipped_field(path, gain=1.0):
    """A 12-bit camera in a 16-bit TIFF: nuclei 1, 2 clip at 4095 in DNA, nucleus 4 in MARKER
    (none with ``gain`` 0.5)."""
    yy, xx = np.mgrid[0:128, 0:128]
    labels = np.zeros((128, 128), np.int32)
    for k, (cy, cx) in enumerate([(30, 30), (30, 90), (90, 30), (90, 90)], 1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < 14**2] = k
    prof = np.exp(-((yy % 60 - 30) ** 2 + (xx % 60 - 30) ** 2) / 200.0) * (labels > 0)
    dna = 100 + 6000 * prof * np.isin(labels, [1, 2]) + 2000 * prof * np.isin(labels, [3, 4])
    marker = 100 + 2000 * prof * np.isin(labels, [1, 3]) + 6000 * prof * (labels == 4)
    stack = np.clip(np.stack([dna, marker]) * gain, 0, 4095).astype(np.uint16)
    tifffile.imwrite(
        path, stack, imagej=True, metadata={"axes": "CYX", "Labels": ["DNA", "MARKER"]}
    )
    return labels, stack


def test_a_12_bit_clip_in_a_tiff_is_flagged_per_channel(tmp_path):
    labels, stack = _clipped_field(tmp_path / "clip.tif")
    img = io.read(tmp_path / "clip.tif")
    table = postprocess.measure(labels, intensity=img)  # saturation="auto"
    assert table["flag_saturated"].shape == (4, 2)
    assert table["flag_saturated"][:, 0].tolist() == [True, True, False, False]  # DNA
    assert table["flag_saturated"][:, 1].tolist() == [False, False, False, True]  # MARKER
    assert table.meta["SATURATE"] == 4095.0
    postprocess.write_catalog(table, tmp_path / "clip.csv")
    flat = Table.read(tmp_path / "clip.csv")
    assert [str(v) for v in flat["flag_saturated_MARKER"]] == ["False", "False", "False", "True"]
    # the plain integer array (tifffile's, channels last) is a camera's image too
    plain = postprocess.measure(labels, intensity=np.moveaxis(stack, 0, -1))
    assert plain["flag_saturated"].tolist() == table["flag_saturated"].tolist()
    # a manual level keeps its meaning: every pixel at or above it, per channel now
    manual = postprocess.measure(labels, intensity=img, saturation=3000)
    assert manual["flag_saturated"].tolist() == [
        [True, False],
        [True, False],
        [False, False],
        [False, True],
    ]
    assert manual.meta["SATURATE"] == 3000.0
    unflagged = postprocess.measure(labels, intensity=img, saturation=None)
    assert "flag_saturated" not in unflagged.colnames


def test_no_clip_no_flag_and_floats_are_not_guessed(tmp_path):
    # unclipped: the nuclei peak under the ceiling, no plateau at the top value
    labels, soft = _clipped_field(tmp_path / "soft.tif", gain=0.5)
    assert soft.max() < 4095
    table = postprocess.measure(labels, intensity=io.read(tmp_path / "soft.tif"))
    assert "flag_saturated" not in table.colnames and "SATURATE" not in table.meta
    labels, stack = _clipped_field(tmp_path / "clip.tif")
    # floats (a calibrated image) are not guessed at: only integers clip at a camera's ceiling
    as_float = np.moveaxis(stack, 0, -1).astype(np.float32)
    assert "flag_saturated" not in postprocess.measure(labels, intensity=as_float).colnames
    from sciconv.postprocess._image_columns import clip_levels

    assert clip_levels(as_float) is None
    # the clipped channel only: the other gives NaN
    levels = clip_levels(np.moveaxis(stack, 0, -1)[..., :1])
    assert levels.tolist() == [4095.0]


def test_one_channel_keeps_a_one_value_flag_and_fits_keeps_its_header_level(tmp_path):
    from astropy.io import fits

    labels, stack = _clipped_field(tmp_path / "clip.tif")
    one = postprocess.measure(labels, intensity=io.read(tmp_path / "clip.tif").channel(0))
    assert one["flag_saturated"].tolist() == [True, True, False, False]
    # a FITS image's clip is not guessed: its header says the level (SATURATE) or nothing
    fits.writeto(tmp_path / "clip.fits", stack[0].astype(np.int16))
    fitsimg = io.read(tmp_path / "clip.fits")
    assert "flag_saturated" not in postprocess.measure(labels, intensity=fitsimg).colnames
