"""Model files written by older sciconv versions (compat QA): a trained model without a recorded
input normalization (fit on arrays or ``normalize=None`` data before 2026-12-05) is named at
load time, since prediction then applies the default percentile stretch to it."""

from __future__ import annotations

import numpy as np
import pytest

from sciconv.errors import SciconvWarning
from sciconv.models import classifier, get_metadata, load, set_metadata


def _trained_without_record(path):
    model = classifier((8, 8, 1), 2, filters=(4,), dense=())
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(300, 50, (8, 8, 8, 1)), rng.integers(0, 2, 8), epochs=1, verbose=0)
    assert "normalization" not in get_metadata(model)  # as older fits left it
    model.save(path)
    return model


def test_a_trained_model_without_a_recorded_normalization_is_named_at_load(tmp_path):
    model = _trained_without_record(tmp_path / "old.keras")
    with pytest.warns(
        SciconvWarning, match=r"old\.keras: the trained model records no input normaliz"
    ):
        load(tmp_path / "old.keras")
    set_metadata(model, normalization={"method": "none"})  # the advice: pinned, saved again
    model.save(tmp_path / "pinned.keras")
    assert get_metadata(load(tmp_path / "pinned.keras"))["normalization"] == {"method": "none"}


def test_a_model_only_built_loads_without_a_word(tmp_path):
    classifier((8, 8, 1), 2, filters=(4,), dense=()).save(tmp_path / "new.keras")
    assert get_metadata(load(tmp_path / "new.keras"))["task"] == "classification"
