"""Results kept on disk across processes (``sciconv._kept``): a damaged file is repaired, and
what is kept per architecture does not move with a model's metadata (QA, long-running use)."""

from __future__ import annotations

import keras
import pytest

from sciconv import models
from sciconv._kept import keep, read_kept
from sciconv.models import introspect
from sciconv.models.introspect import architecture_digest, measure_receptive_field


def _net(kernel=5):
    inputs = keras.Input((None, None, 1))
    return keras.Model(inputs, keras.layers.Conv2D(2, kernel, padding="same")(inputs))


def test_a_damaged_kept_file_is_replaced(tmp_path):
    """A truncated decision ('bfloa') stood for ever: every later process timed again and
    could decide the other way. A text the kind refuses is replaced; a valid one stands."""
    path = tmp_path / "precision" / "kept.txt"
    path.parent.mkdir()
    path.write_text("bfloa\n")
    ok = {"float32", "bfloat16"}.__contains__
    assert keep(path, "float32", valid=ok) == "float32"
    assert read_kept(path) == "float32"
    assert keep(path, "bfloat16", valid=ok) == "float32"  # a valid decision stands: first wins
    path.write_bytes(b"\xff\xfe\x00")  # unreadable
    assert keep(path, "bfloat16", valid=ok) == "bfloat16" and read_kept(path) == "bfloat16"


def test_a_damaged_receptive_field_file_is_measured_again_and_repaired(tmp_path, monkeypatch):
    monkeypatch.setenv("SCICONV_DATA_DIR", str(tmp_path / "cache"))
    net = _net()
    kept = introspect._kept_file(net, 64, 0)
    kept.parent.mkdir(parents=True)
    kept.write_text("[[2, ")  # cut short
    assert measure_receptive_field(net, max_size=64, seed=0) == ((2, 2), None)
    assert introspect._read_kept_field(kept) == ((2, 2), None)


def test_the_architecture_digest_leaves_the_metadata_out():
    """QA: the precision decision was keyed on a digest of get_config(), metadata included, so
    set_metadata gave one architecture a new key and a new timing (bfloat16 in one process,
    float32 in a fresh one: probabilities 0.19 apart)."""
    net = models.attach_metadata(_net())
    before = architecture_digest(net)
    models.set_metadata(net, normalization={"method": "percentile", "low": 2, "high": 98})
    assert architecture_digest(net) == before
    models.set_metadata(net, input_transform={"invert": "auto"})
    assert architecture_digest(net) == before
    assert architecture_digest(models.attach_metadata(_net(kernel=3))) != before


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
