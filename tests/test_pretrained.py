"""The pretrained nuclei segmenter (sciconv/pretrained/) on the held-out nuclei in data/real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import sciconv
from sciconv.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = Path(sciconv.__file__).parent / "pretrained" / "nuclei.json"

# Runs in a fresh interpreter: nothing from this test session (registered layers, policies) helps.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np, tifffile
    import sciconv as sc
    from sciconv.preprocess import apply_input_transform

    folder = Path(sys.argv[1])
    model = sc.models.pretrained("nuclei")
    meta = sc.models.get_metadata(model)
    transform = meta.get("input_transform")
    out = {"metadata": meta, "ap50": {}, "ap": {}, "dtype": None, "copies": {}}
    for k, path in enumerate(sorted((folder / "images").glob("*.tif"))):
        image = tifffile.imread(path)
        truth = tifffile.imread(folder / "labels" / path.name)
        pred = sc.inference.predict_instances(model, image, progress=False)
        out["dtype"], out["shape_ok"] = str(pred.dtype), pred.shape == image.shape
        scores = sc.metrics.average_precision(truth, pred)
        out["ap50"][path.stem] = float(scores["ap"][0])
        out["ap"][path.stem] = float(scores["mean_ap"])
        if k < 2:
            # the raw DSB form (RGBA, R = G = B, opaque alpha) and a brightfield-looking copy
            # (dark nuclei on a bright background, RGB), passed raw: predict_instances applies the
            # stored input transform; applying it by hand first must change nothing (idempotent)
            opaque = np.full(image.shape, 255, np.uint8)
            rgba = np.stack([image, image, image, opaque], axis=-1)
            bright = np.stack([255 - image] * 3, axis=-1)
            same = {}
            for name, copy in (("rgba", rgba), ("bright", bright)):
                p = sc.inference.predict_instances(model, copy, progress=False)
                by_hand = apply_input_transform(copy, transform)
                p2 = sc.inference.predict_instances(model, by_hand, progress=False)
                same[name] = {
                    "equal": bool(np.array_equal(p, pred)),
                    "by_hand_equal": bool(np.array_equal(p2, p)),
                    "ap50": float(sc.metrics.average_precision(truth, p)["ap"][0]),
                }
            out["copies"][path.stem] = same
    print("RESULT" + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def fresh_run(data_dir):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data_dir / "real" / "nuclei")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT") :])


def test_pretrained_segments_held_out_real_nuclei(fresh_run):
    ap50 = fresh_run["ap50"]
    assert len(ap50) == 15
    assert fresh_run["dtype"] == "int32" and fresh_run["shape_ok"]
    mean = sum(ap50.values()) / len(ap50)
    # issue 10 asks for >= 0.75; the shipped model measured 0.835 (the grey-input one before it:
    # 0.829), so guard it at 0.82
    assert mean >= 0.82, f"mean AP@0.5 {mean:.3f} on the bundled real nuclei: {ap50}"
    # no image is a total failure
    assert min(ap50.values()) >= 0.4, ap50
    mean_ap = sum(fresh_run["ap"].values()) / len(ap50)  # AP averaged over IoU 0.5-0.9
    assert 0.3 < mean_ap < mean


def test_rgb_and_brightfield_copies_match_grey(fresh_run):
    """RGBA (as DSB ships it) and a bright-background copy give the grey image's labels."""
    copies = fresh_run["copies"]
    assert len(copies) == 2
    for stem, same in copies.items():
        assert same["rgba"]["equal"], (stem, same)  # mean of R = G = B is the grey image
        assert same["rgba"]["by_hand_equal"] and same["bright"]["by_hand_equal"], (stem, same)
        # 255 - image, flipped back by invert="auto", is the image shifted by a constant, which the
        # percentile normalization removes: the same labels (allow float round-off at a pixel)
        assert abs(same["bright"]["ap50"] - fresh_run["ap50"][stem]) <= 0.02, (stem, same)
        assert same["bright"]["ap50"] >= 0.4, (stem, same)


def test_pretrained_segments_held_out_brightfield_nuclei(data_dir):
    """H&E / brightfield colour and grey brightfield images as read (RGB or grey, dark nuclei):
    the stored input transform brings them to the model, which was trained on all three kinds."""
    import tifffile

    model = sciconv.models.pretrained("nuclei")
    folder = data_dir / "real" / "nuclei_brightfield"
    ap50 = {}
    for path in sorted((folder / "images").glob("*.tif")):
        image = tifffile.imread(path)
        truth = tifffile.imread(folder / "labels" / path.name)
        pred = sciconv.inference.predict_instances(model, image, progress=False)
        assert pred.shape == truth.shape and pred.dtype == "int32"
        ap50[path.stem[:8]] = float(sciconv.metrics.average_precision(truth, pred)["ap"][0])
    assert len(ap50) == 5
    mean = sum(ap50.values()) / len(ap50)
    # measured 0.638 (0.644 before the input was clipped at 1; the grey-input model before it:
    # 0.625; the fluorescence-only one: 0.343)
    assert mean >= 0.60, ap50
    assert min(ap50.values()) >= 0.3, ap50


def test_scale_recovers_enlarged_real_nuclei(enlarged_real_nuclei):
    """Real fluorescence images enlarged 3x (nuclei of ~40 px, sharp edges lost): scale=1/3 brings
    them back to the training size and clearly beats segmenting them as they are."""
    model = sciconv.models.pretrained("nuclei")
    plain, scaled = [], []
    for _, image, truth in enlarged_real_nuclei(3, 3):
        for out, scale in ((plain, None), (scaled, 1 / 3)):
            pred = sciconv.inference.predict_instances(model, image, scale=scale, progress=False)
            assert pred.shape == image.shape
            out.append(float(sciconv.metrics.average_precision(truth, pred)["ap"][0]))
    assert np.mean(scaled) >= 0.8, scaled
    assert np.mean(scaled) > np.mean(plain) + 0.1, (plain, scaled)
    # the same rescaling from a physical object size: the model records its training size
    # (18.1 px), the image its pixel scale; nuclei 3 x 18.1 px x 0.1 um across -> scale 1/3
    import astropy.units as u

    from sciconv.io import GridImage

    assert sciconv.models.get_metadata(model)["object_size"] == pytest.approx(18.1)
    meta = {"pixel_scale": {"y": 0.1, "x": 0.1, "unit": "um"}}
    np.testing.assert_array_equal(
        sciconv.inference.predict_instances(
            model, GridImage(image[..., None], meta=meta), object_size=5.43 * u.um, progress=False
        ),
        pred,  # the last image at scale=1/3
    )


def test_metadata_matches_training_settings(fresh_run):
    settings = json.loads(SETTINGS.read_text())
    meta = fresh_run["metadata"]
    assert meta["task"] == "segmentation"
    # the training normalization, clipped at 1 for inference (hot pixels: test_second_pass.py)
    assert meta["normalization"] == {
        **settings["normalization"],
        **settings["normalization_at_inference"],
    }
    # one percentile normalization over R, G, B together, so the H&E hue survives
    want = {"method": "percentile", "low": 1.0, "high": 99.8, "per_channel": False}
    assert settings["normalization"] == want
    assert meta["normalization"] == dict(want, clip=True)
    assert meta["postprocess"] == settings["postprocess"]
    assert meta["divisor"] == 2 ** settings["depth"]
    assert meta["input_channels"] == 3  # R, G, B (H&E hue kept), grey images replicated
    assert meta["input_transform"] == settings["input_transform"]
    # dark_to_gray: a fluorescence image saved in colour reaches it grey (tests/test_dark_to_gray);
    # restore_saturated: over-exposed nuclei get their profile back (tests/test_saturated)
    assert meta["input_transform"] == {
        "to_rgb": True,
        "invert": "auto",
        "dark_to_gray": True,
        "restore_saturated": True,
    }
    # two stages of one run: seed 0 from scratch, then seed 1 continued from it and averaged
    assert settings["init_settings"]["seed"] == 0 and settings["init_settings"]["init"] is None
    assert settings["seed"] == 1 and settings["init"] == settings["average_with"]
    assert settings["val_ap50"] >= 0.84
    per_modality = settings["val_ap50_per_modality"]  # held-out DSB2018 images, input transform on
    assert set(per_modality) == {"fluo", "color", "gray_bright"}
    assert set(settings["modalities"]) == set(per_modality)  # trained on all three kinds
    # measured 0.873 / 0.726 / 0.794 (the grey-input model before it: 0.873 / 0.698 / 0.784)
    assert per_modality["fluo"] >= 0.87
    assert per_modality["color"] >= 0.72 and per_modality["gray_bright"] >= 0.79


def test_weights_match_training_settings():
    import keras

    settings = json.loads(SETTINGS.read_text())
    model = sciconv.models.pretrained("nuclei")
    assert model.output.shape[-1] == settings["num_classes"] == 3
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs[0].filters == settings["filters"]
    assert max(c.filters for c in convs) == settings["filters"] * 2 ** settings["depth"]
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(pools) == settings["depth"]
    assert all(w.dtype == "float32" for w in model.weights)  # saved as float32, not bfloat16
    size = (Path(sciconv.__file__).parent / "pretrained" / "nuclei.keras").stat().st_size
    assert size < 10_000_000  # issue 20: small enough to ship inside the package


def test_listing_and_unknown_name():
    listing = sciconv.models.pretrained()
    assert set(listing) == {"nuclei"} and "fluorescence" in listing["nuclei"]
    assert sciconv.models.pretrained_info("nuclei") == json.loads(SETTINGS.read_text())
    with pytest.raises(
        ConfigError,
        match=r"pretrained model name must be one of 'nuclei'; got 'nucleus' \(did you mean",
    ):
        sciconv.models.pretrained("nucleus")
    with pytest.raises(ConfigError, match="must be a string"):
        sciconv.models.pretrained(3)
