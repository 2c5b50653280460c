"""What the per-object ``score`` and ``uncertainty`` say, as written to a catalog, and the napari
widget's per-object scores (QA: confidences of the pretrained nuclei model on real nuclei).

- ``score`` was tagged ``stat.probability`` and described as a probability although it is the
  mean foreground probability over pixels that all passed the threshold (its floor);
- ``uncertainty``'s 149-character description was too long for a FITS ``TCOMMn`` and lost;
- without a spread map, ``uncertainty`` was silently ``1 - score`` under the same name and UCD;
- the napari Labels layer had no per-object score.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table, join

from sciconv.errors import ConfigError
from sciconv.postprocess import instances, measure, object_scores, write_catalog


def _scene():
    """Two objects from a 3-class probability map, labels made by ``instances`` at 0.6."""
    prob = np.zeros((24, 24, 3), np.float32)
    prob[..., 0] = 1.0
    for (r, c), fg in (((3, 3), 0.95), ((13, 12), 0.7)):
        prob[r : r + 7, c : c + 8] = (1 - fg, fg / 2, fg / 2)
    prob[13, 12:20] = (0.35, 0.3, 0.35)  # rim pixels just past the threshold
    std = np.zeros((24, 24, 3), np.float32)
    std[13:20, 12:20] = 0.08
    labels = instances(prob, threshold=0.6, method="connected")
    return labels, prob, std


def _column_cards(header, name):
    i = [header[f"TTYPE{k}"] for k in range(1, header["TFIELDS"] + 1)].index(name) + 1
    return header.get(f"TUCD{i}"), header.get(f"TCOMM{i}")


def test_fits_catalog_describes_score_as_a_ranking_score_and_keeps_both_comments(tmp_path):
    labels, prob, std = _scene()
    scores = object_scores(labels, prob, std)
    out = write_catalog(join(measure(labels), scores, keys="label"), tmp_path / "cat.fits")
    with fits.open(out) as hdul:
        header = hdul[1].header
    score_ucd, score_comment = _column_cards(header, "score")
    spread_ucd, spread_comment = _column_cards(header, "uncertainty")
    # the score does not claim to be a probability; its comment says what it is, and its floor
    assert score_ucd == "meta.code.qual"
    assert "ranking score" in score_comment and "not P(real)" in score_comment
    assert ">= threshold" in score_comment
    # the spread's description is short enough for a TCOMMn (it was 149 characters: none)
    assert spread_ucd == "stat.error"
    assert spread_comment is not None and "spread of fg prob" in spread_comment
    for name in ("score", "uncertainty"):
        assert len(scores[name].description) <= 60, name
    np.testing.assert_allclose(scores["score"], [0.95, (0.65 * 8 + 0.7 * 48) / 56], rtol=1e-6)
    np.testing.assert_allclose(scores["uncertainty"], [0.0, 0.08], atol=1e-7)


def test_the_threshold_is_recorded_with_the_score_its_floor(tmp_path):
    labels, prob, std = _scene()
    scores = object_scores(labels, prob, std, threshold=0.6)
    # labels made by instances at 0.6 score at or above it, as the description says
    assert np.all(np.asarray(scores["score"]) >= 0.6)
    assert scores["score"].meta == {"ucd": "meta.code.qual", "threshold": 0.6}
    catalog = join(measure(labels), scores, keys="label")
    # kept in the column's metadata: astropy's serialized FITS header, the ECSV header
    assert Table.read(write_catalog(catalog, tmp_path / "cat.fits"))["score"].meta[
        "threshold"
    ] == pytest.approx(0.6)
    ecsv = Table.read(write_catalog(catalog, tmp_path / "cat.ecsv"))
    assert ecsv["score"].meta == {"ucd": "meta.code.qual", "threshold": 0.6}


def test_no_uncertainty_column_without_a_spread_map(tmp_path):
    labels, prob, _ = _scene()
    scores = object_scores(labels, prob)
    assert scores.colnames == ["label", "score"]  # was also "uncertainty" = 1 - score
    assert "threshold" not in scores["score"].meta  # not known: not recorded
    out = write_catalog(join(measure(labels), scores, keys="label"), tmp_path / "plain.fits")
    with fits.open(out) as hdul:
        names = hdul[1].columns.names
    assert "score" in names and "uncertainty" not in names
    empty = object_scores(np.zeros((3, 3), np.uint8), np.zeros((3, 3)))
    assert empty.colnames == ["label", "score"] and len(empty) == 0


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), "0.5", True])
def test_object_scores_refuses_a_threshold_that_is_not_a_probability(bad):
    labels, prob, _ = _scene()
    with pytest.raises(ConfigError, match=r"threshold must be a number in \[0, 1\]"):
        object_scores(labels, prob, threshold=bad)


# ------------------------------------------------------------------------------------------ napari


def _model():
    keras = pytest.importorskip("keras")
    inputs = keras.Input((None, None, 1))
    weights = keras.initializers.Constant([[[[-1.0, 1.0]]]])
    out = keras.layers.Conv2D(2, 1, kernel_initializer=weights, activation="softmax")(inputs)
    return keras.Model(inputs, out)


def _image(bright=1.0):
    image = np.zeros((32, 32), np.float32)
    image[4:12, 4:12] = bright
    image[20:28, 18:30] = 0.6 * bright  # a fainter object: a lower score
    return image


def test_napari_labels_layer_carries_each_objects_score(monkeypatch):
    import sciconv.inference
    from sciconv.napari import segment_nuclei

    model = _model()
    image = _image()
    calls = []
    real = sciconv.inference.predict_instances

    def spy(model, image, **kwargs):
        calls.append(kwargs.get("return_prob", False))
        return real(model, image, **kwargs)

    monkeypatch.setattr(sciconv.inference, "predict_instances", spy)
    labels, kwargs, kind = segment_nuclei(image, model=model, tile=32, threshold=0.5)
    assert calls == [True]  # one prediction gives the labels and the scores: no second pass
    monkeypatch.undo()
    same, prob = real(model, image, tile=32, threshold=0.5, progress=False, return_prob=True)
    np.testing.assert_array_equal(labels, same)
    expected = object_scores(labels, prob, threshold=0.5)
    features = kwargs["features"]
    assert kind == "labels" and set(features) == {"index", "label", "score"}
    assert features["label"].tolist() == [1, 2] == np.unique(labels)[1:].tolist()
    assert features["index"].tolist() == features["label"].tolist()  # napari's row lookup
    np.testing.assert_allclose(features["score"], expected["score"], rtol=1e-6)
    assert features["score"][0] > features["score"][1] >= 0.5


def test_napari_layer_features_of_a_stack_name_the_plane():
    pytest.importorskip("napari")
    from napari.layers import Labels

    from sciconv.napari import segment_nuclei

    model = _model()
    stack = np.stack([_image(), _image()[:, ::-1] * 0.0, _image(2.0)[::-1]])  # plane 1: empty
    labels, kwargs, _ = segment_nuclei(stack, model=model, tile=32, threshold=0.5, planes=1)
    features = kwargs["features"]
    assert set(features) == {"index", "plane", "label", "score"}
    assert features["plane"].tolist() == [0, 0, 2, 2]
    assert features["label"].tolist() == [1, 2, 1, 2]
    for k in (0, 2):
        alone, alone_kwargs, _ = segment_nuclei(stack[k], model=model, tile=32, threshold=0.5)
        np.testing.assert_array_equal(labels[k], alone)
        np.testing.assert_allclose(
            features["score"][features["plane"] == k], alone_kwargs["features"]["score"]
        )
    # the values repeat from plane to plane: napari finds no row by value (not another plane's)
    assert np.all(features["index"] == -1)
    # as napari shows them under the cursor (its status bar)
    layer = Labels(labels, features=features)
    assert layer.features["score"].tolist() == pytest.approx(features["score"].tolist())
    assert layer.get_status((0, 6, 6), world=True)["value"] == "1; [No Properties]"
    data, kw, _ = segment_nuclei(stack[0], model=model, tile=32, threshold=0.5)
    flat = Labels(data, **kw)
    shown = f"1; label: 1, score: {flat.features['score'][0]:.3g}"
    assert flat.get_status((6, 6), world=True)["value"] == shown
