"""Edge cases of sciconv.metrics found by QA against StarDist, DSB2018 and scikit-learn references
(label shapes and ids, exact ties, empty images, catalogs on the sky, class ids), and the places
that report these numbers (the uncertainty benchmark's matching, the demo's pooled AP)."""

from __future__ import annotations

import importlib.util
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from sciconv import metrics
from sciconv.errors import ConfigError, InvalidImageError

ROOT = Path(__file__).resolve().parents[1]


def _scene(seed: int = 0, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A truth of squares and a prediction that shifts, shrinks, drops and adds some."""
    rng = np.random.default_rng(seed)
    truth, pred = np.zeros((size, size), np.int32), np.zeros((size, size), np.int32)
    k = 0
    for y in range(2, size - 8, 11):
        for x in range(2, size - 8, 11):
            k += 1
            s = int(rng.integers(4, 8))
            truth[y : y + s, x : x + s] = k
            if k % 5:  # every fifth is missed
                dy, dx, ds = rng.integers(-1, 2), rng.integers(-1, 2), rng.integers(-1, 1)
                pred[y + dy : y + dy + s + ds, x + dx : x + dx + s + ds] = 10 * k
    pred[size - 4 :, :3] = 999  # a false positive
    return truth, pred


# ------------------------------------------------------------------ 1. (H, W, 1) label images


def test_label_images_with_a_trailing_axis_are_one_image_and_channels_are_refused():
    """QA: a 3-D array was taken for an (N, H, W) stack, so an (H, W, 1) or (H, W, 3) label
    image was scored as H one-row images (AP@0.5 0.7548 for 0.7445, dsb_score 0.5622 for
    0.4904), silently; (H, W, 1) truth with a 2-D prediction failed naming a (256,) shape."""
    t, p = _scene()
    flat = metrics.average_precision(t, p)
    for tt, pp in ((t[..., None], p[..., None]), (t[..., None], p), (t, p[..., None])):
        r = metrics.average_precision(tt, pp)
        np.testing.assert_array_equal(r["ap"], flat["ap"])
        assert metrics.dsb_score(tt, pp) == metrics.dsb_score(t, p)
        assert metrics.matching(tt, pp)["tp"] == metrics.matching(t, p)["tp"]
    np.testing.assert_array_equal(metrics.iou_matrix(t[..., None], p), metrics.iou_matrix(t, p))
    three = np.repeat(t[..., None], 3, axis=-1)
    with pytest.raises(InvalidImageError, match=r"\(48, 48, 3\).*3 channels"):
        metrics.average_precision(three, np.repeat(p[..., None], 3, axis=-1))
    with pytest.raises(InvalidImageError, match=r"true_labels has shape \(48, 48, 3\)"):
        metrics.dsb_score(three, p)
    with pytest.raises(InvalidImageError, match=r"2-D .*\(48, 48, 3\).*3 channels"):
        metrics.matching(three, p)
    with pytest.raises(InvalidImageError, match=r"pred_labels\[1\] .*\(48, 48, 2\)"):
        metrics.average_precision([t, t], [p, np.stack([p, p], axis=-1)])
    # real stacks still work: (N, H, W), (N, H, W, 1) and lists of (H, W, 1)
    t2, p2 = _scene(1)
    pooled = metrics.average_precision([t, t2], [p, p2])
    for tt, pp in (
        (np.stack([t, t2]), np.stack([p, p2])),
        (np.stack([t, t2])[..., None], np.stack([p, p2])[..., None]),
        ([t[..., None], t2[..., None]], [p, p2]),
    ):
        np.testing.assert_array_equal(metrics.average_precision(tt, pp)["tp"], pooled["tp"])
    with pytest.raises(InvalidImageError, match="as many images; got 2 and 1"):
        metrics.average_precision(np.stack([t, t2]), p)


def test_a_label_image_as_sciconv_io_reads_it_scores_as_its_plane():
    from sciconv import io

    path = sorted((ROOT / "data" / "real" / "nuclei" / "labels").glob("*.tif"))[0]
    truth = io.read(path).data
    assert np.asarray(truth).shape[-1] == 1
    plane = np.asarray(truth)[..., 0].astype(np.int64)
    shifted = np.where(plane > 0, plane + 100, 0)  # the same objects, other ids
    r = metrics.average_precision(truth, shifted)
    assert r["ap"].tolist() == [1.0] * 9
    assert metrics.dsb_score(truth, shifted) == 1.0


# ------------------------------------------------------------ 2. the DSB2018 rule, not StarDist's


def test_the_docs_name_the_dsb_rule_and_how_stardist_differs():
    """QA: the docs said "the Data Science Bowl 2018 / StarDist rule, with a strict >"; StarDist
    counts IoU >= t (+0.009 pooled AP on grey brightfield at IoU 0.65, 47 of 1,089 scores)."""
    import ast

    from sciconv.metrics import _instances

    docs = {
        "matching": metrics.matching.__doc__,
        "average_precision": metrics.average_precision.__doc__,
        "sciconv.metrics": metrics.__doc__,
        "_instances": _instances.__doc__,
        "real_nuclei.py": ast.get_docstring(
            ast.parse((ROOT / "benchmarks" / "real_nuclei.py").read_text())
        ),
    }
    for name, doc in docs.items():
        flat = " ".join(doc.split())
        assert "StarDist one" not in flat and "DSB2018 / StarDist rule" not in flat, name
        assert "StarDist" in flat and ">=" in flat, name
        assert "Data Science Bowl" in flat or "DSB2018" in flat, name
    # the rule itself is unchanged: an IoU of exactly 0.5 is no match at 0.5
    t = np.array([[1, 1, 1, 1]])
    p = np.array([[1, 1, 2, 2]])
    assert metrics.matching(t, p, thresh=0.5)["tp"] == 0
    assert metrics.matching(t, p, thresh=0.49)["tp"] == 1


# ------------------------------------------------------- 3. the uncertainty benchmark's matching


def _bench_uncertainty():
    spec = importlib.util.spec_from_file_location(
        "bench_uncertainty_under_test", ROOT / "benchmarks" / "bench_uncertainty.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_uncertainty_matches_objects_by_the_library_rule():
    """QA: it counted a prediction as a TP at best IoU >= 0.5, not one-to-one: a nucleus split
    into two halves (IoU 0.5 each) gave two TPs for one true object."""
    match_objects = _bench_uncertainty().match_objects
    t = np.zeros((4, 4), int)
    t[:2, :2] = 1
    p = np.zeros((4, 4), int)
    p[:2, 0], p[:2, 1] = 1, 2
    assert match_objects(t, p) == {1: False, 2: False}
    assert match_objects(t, np.where(t > 0, 7, 0)) == {7: True}
    truth, pred = _scene(3)
    found = match_objects(truth, pred)
    m = metrics.matching(truth, pred, thresh=0.5)
    assert sorted(found) == sorted(np.unique(pred[pred > 0]).tolist())
    assert sum(found.values()) == m["tp"] and len(found) - sum(found.values()) == m["fp"]


def test_matching_returns_the_matched_pairs_on_request():
    t = np.zeros((1, 12), int)
    t[0, 0:4], t[0, 6:10] = 3, 8
    p = np.zeros_like(t)
    p[0, 6:10], p[0, 0:3], p[0, 11] = 5, 9, 4
    m = metrics.matching(t, p, thresh=0.5, pairs=True)
    assert m["true_ids"].tolist() == [3, 8] and m["pred_ids"].tolist() == [9, 5]
    np.testing.assert_allclose(m["matched_ious"], [0.75, 1.0])
    low = metrics.matching(t, p, thresh=0.1, pairs=True)  # the optimal-assignment path
    assert low["pred_ids"].tolist() == [9, 5]
    assert "true_ids" not in metrics.matching(t, p)


# ----------------------------------------------------------------- 4. catalogs on the sky


def test_match_catalogs_on_the_sky_uses_great_circles_across_the_pole():
    """QA: hypot(dRA cos Dec_ref, dDec) put (0, 89.99) and (180, 89.99), 72" apart, at 113"
    and left them unmatched with max_separation=100; 0.13" off at Dec -89.999."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    m = metrics.match_catalogs(
        Table({"ra": [0.0], "dec": [89.99]}),
        Table({"ra": [180.0], "dec": [89.99]}),
        max_separation=100.0,
        sky=True,
    )
    assert m["completeness"] == 1.0
    assert m["separation"][0] == pytest.approx(72.0, abs=1e-6)
    assert m["dy"][0] == pytest.approx(72.0, abs=1e-6) and m["dx"][0] == pytest.approx(0, abs=1e-6)
    with pytest.raises(ConfigError, match=r"reference catalog has dec outside \[-90, 90\] deg"):
        metrics.match_catalogs(
            Table({"ra": [0.0], "dec": [95.0]}), Table({"ra": [0.0], "dec": [0.0]}),
            max_separation=1.0, sky=True,
        )  # fmt: skip
    rng = np.random.default_rng(0)
    for dec0 in (-89.999, 89.9999, 45.0):
        ref = SkyCoord(rng.uniform(0, 360, 40) * u.deg, np.full(40, dec0) * u.deg)
        found = ref.directional_offset_by(
            rng.uniform(0, 360, 40) * u.deg, rng.uniform(0, 2, 40) * u.arcsec
        )
        m = metrics.match_catalogs(
            Table({"ra": ref.ra.deg, "dec": ref.dec.deg}),
            Table({"ra": found.ra.deg, "dec": found.dec.deg}),
            max_separation=2.5,
            sky=True,
        )
        r, f = m["ref_index"], m["found_index"]
        exact = ref[r].separation(found[f]).arcsec
        np.testing.assert_allclose(m["separation"], exact, atol=1e-7)
        east, north = ref[r].spherical_offsets_to(found[f])
        np.testing.assert_allclose(m["dx"], east.arcsec, atol=1e-7)
        np.testing.assert_allclose(m["dy"], north.arcsec, atol=1e-7)
        np.testing.assert_allclose(np.hypot(m["dx"], m["dy"]), exact, atol=1e-6)


def test_match_catalogs_stays_greedy_and_sparse():
    """Nearest pairs first (not the largest matching), the same ties as before; no dense
    N x M matrix (5,000 sources: 0.8 GB before)."""
    from astropy.table import Table

    chain = metrics.match_catalogs(  # B-X (0.95) first leaves A and Y apart; optimal: A-X, B-Y
        Table({"x": [0.0, 2.0], "y": [0.0, 0.0]}),
        Table({"x": [1.05, 3.0], "y": [0.0, 0.0]}),
        max_separation=1.1,
    )
    assert chain["ref_index"].tolist() == [1] and chain["found_index"].tolist() == [0]
    tie = metrics.match_catalogs(  # equal distances: the lower reference, then found, index
        Table({"x": [0.0, 2.0], "y": [0.0, 0.0]}),
        Table({"x": [1.0], "y": [0.0]}),
        max_separation=1.0,  # included
    )
    assert tie["ref_index"].tolist() == [0] and tie["separation"].tolist() == [1.0]
    nan = Table({"x": [np.nan, 5.0], "y": [0.0, 5.0]})
    assert metrics.match_catalogs(nan, nan, max_separation=1.0)["ref_index"].tolist() == [1]
    rng = np.random.default_rng(1)
    n = 5000
    x, y = rng.uniform(0, 2000, n), rng.uniform(0, 2000, n)
    ref = Table({"x": x, "y": y})
    got = Table({"x": x + rng.normal(0, 0.3, n), "y": y + rng.normal(0, 0.3, n)})
    tracemalloc.start()
    m = metrics.match_catalogs(ref, got, max_separation=2.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert m["completeness"] > 0.99 and peak < 50e6


def test_match_catalogs_of_1e5_sources_on_the_sky():
    import time

    from astropy.table import Table

    rng = np.random.default_rng(2)
    n = 100_000
    ra, dec = rng.uniform(0, 2, n), rng.uniform(-1, 1, n)
    ref = Table({"ra": ra, "dec": dec})
    got = Table({"ra": ra + rng.normal(0, 1e-4, n), "dec": dec + rng.normal(0, 1e-4, n)})
    t0 = time.perf_counter()
    m = metrics.match_catalogs(ref, got, max_separation=2.0, sky=True)
    assert time.perf_counter() - t0 < 30  # about 1.5 s here
    assert m["completeness"] > 0.99 and m["separation"].max() <= 2.0


# ---------------------------------------------------------------------------- 5. uint64 ids


def test_uint64_ids_beyond_int64_keep_their_order():
    """QA: ids >= 2**63 were cast to int64 and wrapped to negative numbers: identical
    segmentations gave iou_matrix [[0, 0], [1, 0]], one huge id an IndexError."""
    t = np.zeros((6, 6), np.uint64)
    t[:3, :3], t[3:, 3:] = 1, 2
    p = t.copy()
    p[t == 1], p[t == 2] = np.uint64(2**63 + 1), np.uint64(2**64 - 1)
    np.testing.assert_array_equal(metrics.iou_matrix(t, p), np.eye(2))
    m = metrics.matching(t, p, pairs=True)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 0, 0)
    assert m["pred_ids"].tolist() == [2**63 + 1, 2**64 - 1]
    assert metrics.average_precision(t, p)["ap"].tolist() == [1.0] * 9
    one_huge = t.copy()
    one_huge[t == 1] = np.uint64(2**63 + 1)
    m = metrics.matching(t, one_huge)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 0, 0)
    assert metrics.matching(one_huge, t)["tp"] == 2
    assert metrics.dsb_score(one_huge, p) == 1.0


# ------------------------------------------------------------------- 6. max_separation types


def test_max_separation_takes_numpy_numbers_and_quantities():
    """QA: np.float32(2.0), np.int64(2) and 2 * u.arcsec were refused as "not a positive
    number"."""
    import astropy.units as u
    from astropy.table import Table

    pix = Table({"x": [0.0, 10.0], "y": [0.0, 0.0]})
    pix_got = Table({"x": [1.5, 13.0], "y": [0.0, 0.0]})
    for limit in (np.float32(2.0), np.int64(2), np.array(2.0), 2 * u.pix, 2.0 * u.one):
        m = metrics.match_catalogs(pix, pix_got, max_separation=limit)
        assert m["ref_index"].tolist() == [0], limit
    sky = Table({"ra": [10.0, 20.0], "dec": [0.0, 0.0]})
    sky_got = Table({"ra": [10.0, 20.0], "dec": [1.5 / 3600, 3.0 / 3600]})
    for limit in (2 * u.arcsec, 2 / 60 * u.arcmin, np.float64(2.0), 2 / 3600 * u.deg):
        m = metrics.match_catalogs(sky, sky_got, max_separation=limit, sky=True)
        assert m["ref_index"].tolist() == [0], limit
    with pytest.raises(ConfigError, match="max_separation is in arcsec: pixel catalogs"):
        metrics.match_catalogs(pix, pix_got, max_separation=2 * u.arcsec)
    with pytest.raises(ConfigError, match=r"max_separation is in m: on the sky \(sky=True\)"):
        metrics.match_catalogs(sky, sky_got, max_separation=2 * u.m, sky=True)
    for bad in (0, -1.0, np.nan, np.inf, True, "2", [2.0], -2 * u.pix, [1, 2] * u.pix):
        with pytest.raises(ConfigError, match="max_separation must be a positive number"):
            metrics.match_catalogs(pix, pix_got, max_separation=bad, sky=False)


# ------------------------------------------------------------------------ 7. class ids


def test_confusion_counts_takes_bools_and_whole_floats_like_sklearn():
    """QA: bool ids and [0., 1., 1.] were refused; sklearn's confusion_matrix takes both."""
    assert metrics.confusion_counts([True, False, True], [True, True, False]).tolist() == [
        [0, 1],
        [1, 1],
    ]
    floats = metrics.confusion_counts(np.array([0.0, 1.0, 1.0]), [0, 1, 0])
    assert floats.dtype == np.int64 and floats.tolist() == [[1, 0], [1, 1]]
    with pytest.raises(ConfigError, match=r"y_pred must hold non-negative integer class ids; "):
        metrics.confusion_counts([0, 1], [0.5, 1.0])
    with pytest.raises(ConfigError, match=r"y_true .*got \[nan\]"):
        metrics.confusion_counts([0.0, np.nan], [0, 1])
    with pytest.raises(ConfigError, match=r"y_true .*got dtype <U1"):
        metrics.confusion_counts(["a", "b"], [0, 1])
    with pytest.raises(ConfigError, match=r"y_true .*got -1"):
        metrics.confusion_counts([0.0, -1.0], [0, 1])


# ------------------------------------------------------------------ 8. dsb_score's figures


def test_dsb_score_doc_gives_figures_measured_with_the_shipped_model():
    """QA could not reproduce "pooled AP@0.5:0.9 0.721, this score 0.568" on any 24 validation
    images; measured (float32): first 24 fluorescence 0.705 / 0.663, all 99 0.647 / 0.616."""
    doc = " ".join(metrics.dsb_score.__doc__.split())
    assert "0.721" not in doc and "0.568" not in doc
    assert (
        "first 24 fluorescence validation images pooled AP@0.5:0.9 0.705, this score 0.663" in doc
    )
    assert "all 99" in doc and "0.647 and 0.616" in doc


# --------------------------------------------------------- 9. empty truth and empty prediction


def test_an_empty_image_predicted_empty_scores_one_throughout():
    """QA: matching(empty, empty) gave ap 1.0 but precision = recall = f1 = PQ = 0.0."""
    empty = np.zeros((5, 5), int)
    one = empty.copy()
    one[1:3, 1:3] = 1
    m = metrics.matching(empty, empty)
    for key in ("ap", "precision", "recall", "f1", "panoptic_quality", "mean_matched_iou"):
        assert m[key] == 1.0, key
    assert (m["tp"], m["fp"], m["fn"]) == (0, 0, 0)
    r = metrics.average_precision([empty, empty], [empty, empty], thresholds=(0.5, 0.9))
    for key in ("ap", "precision", "recall", "f1"):
        assert r[key].tolist() == [1.0, 1.0], key
    # a miss or a false positive is still 0, and per-image means count the empty image as solved
    for t, p in ((one, empty), (empty, one)):
        m = metrics.matching(t, p)
        assert (m["ap"], m["f1"], m["panoptic_quality"]) == (0.0, 0.0, 0.0)
    per_image = [metrics.matching(t, p)["f1"] for t, p in ((one, one), (empty, empty))]
    assert per_image == [1.0, 1.0]
    assert metrics.dsb_score([one, empty], [one, empty]) == 1.0


# ------------------------------------------------------------------ 10. the demo's pooled AP


def test_the_demo_report_says_its_ap_is_pooled():
    """QA: the demo printed "AP@0.5 0.859" (pooled) where the READMEs give 0.835, the mean of
    the per-image APs, with nothing to tell the two apart."""
    from sciconv.demo import headline

    lines = headline(
        {
            "cells": {"iou": 0.8, "ap50": 0.7, "mean_ap": 0.5, "n_test": 4},
            "real_nuclei": {
                "ap50": 0.859,
                "mean_ap": 0.66,
                "n_images": 15,
                "brightfield": {"ap50": 0.62, "mean_ap": 0.42, "n_images": 5},
            },
        }
    )
    assert len(lines) == 3
    for line, value in zip(lines, ("0.700", "0.859", "0.620")):
        assert f"pooled AP@0.5 {value}" in line, line


def test_matching_a_list_of_images_names_the_functions_that_take_lists():
    # "Seen, left" of stop 49: a list of two sizes gave numpy's bare "inhomogeneous shape"
    a = np.zeros((8, 8), np.int32)
    a[1:4, 1:4] = 1
    b = np.zeros((6, 6), np.int32)
    b[1:4, 1:4] = 1
    assert metrics.average_precision([a, b], [a, b])["mean_ap"] == 1.0
    for call in (metrics.matching, metrics.iou_matrix):
        with pytest.raises(
            InvalidImageError,
            match=r"true_labels is a list of 2 label images.*average_precision and dsb_score take",
        ):
            call([a, b], [a, b])
    assert metrics.matching([[0, 1], [1, 1]], [[0, 1], [1, 1]])["tp"] == 1  # nested: one image
