"""Tests for inference speed features: exact blending, bfloat16 precision, progress output."""

from __future__ import annotations

import io

import keras
import numpy as np
import pytest

from sciconv import _progress, inference
from sciconv import devices as sc_devices
from sciconv.errors import InferenceError
from sciconv.inference import _precision
from sciconv.inference._blend import axis_spans
from sciconv.models import segmenter
from sciconv.models.introspect import architecture_digest

RF = 3  # three 3x3 convolutions


def _conv_stack(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="tanh")(x)
    outputs = keras.layers.Conv2D(2, 3, padding="same")(x)
    return keras.Model(inputs, outputs, name="stack")


@pytest.fixture(scope="module")
def stack():
    return _conv_stack()


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).normal(size=(77, 131)).astype(np.float32)


def _whole(model, x):
    return np.asarray(model(x[None, ..., None].astype(np.float32)))[0]


def _tiled(model, x, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("normalize", None)
    return inference.predict_tiled(model, x, **kw)


# --------------------------------------------------------------------------------------------------
# exact blending


def test_interior_tile_edges_get_zero_weight_and_image_edges_keep_theirs():
    spans = axis_spans(100, 40, [0, 30, 60], blend="gaussian", overlap=10, margin=3)
    assert [(sp.out_lo, sp.out_hi) for sp in spans] == [(0, 37), (33, 67), (63, 100)]
    assert all(float(sp.weights.min()) > 0 for sp in spans)
    total = np.zeros(100)
    for sp in spans:
        total[sp.out_lo : sp.out_hi] += sp.weights
    np.testing.assert_allclose(total, 1.0, rtol=1e-6)
    # the margin never exceeds half the overlap: every pixel keeps a positive weight
    wide = axis_spans(100, 40, [0, 30, 60], blend="linear", overlap=10, margin=50)
    assert [(sp.out_lo, sp.out_hi) for sp in wide] == [(0, 35), (35, 65), (65, 100)]


@pytest.mark.parametrize("blend", ["gaussian", "linear", "none"])
@pytest.mark.parametrize(("tile", "overlap"), [(32, 2 * RF), (48, 16)])
def test_blended_equals_whole_image_when_overlap_covers_the_receptive_field(
    stack, image, blend, tile, overlap
):
    tiled = _tiled(stack, image, tile=tile, overlap=overlap, blend=blend, batch_size=3)
    np.testing.assert_allclose(tiled, _whole(stack, image), rtol=0, atol=1e-6)


def test_settings_record_the_receptive_field_margin(stack):
    s = inference.resolve_settings(stack, (77, 131), tile=32, overlap=16)
    assert s.margin == RF
    assert inference.resolve_settings(stack, (77, 131), tile=32, overlap=4).margin == 2
    assert inference.resolve_settings(stack, (77, 131), tile=32, blend="none").margin == 0
    assert inference.resolve_settings(stack, (20, 20), tile=32).margin == 0  # one tile


def test_unet_auto_overlap_blended_equals_whole_image():
    keras.utils.set_random_seed(1)
    model = segmenter((None, None, 1), 2, depth=2, filters=4)  # divisor 4
    x = np.random.default_rng(4).normal(size=(96, 136)).astype(np.float32)
    s = inference.resolve_settings(model, x.shape, tile=64)
    assert s.overlap >= 2 * max(inference.receptive_field(model)) and s.margin > 0
    assert len(s.tile_starts(x.shape)[1]) > 2
    tiled = _tiled(model, x, tile=64)  # gaussian blend, overlap="auto"
    np.testing.assert_allclose(tiled, _whole(model, x), rtol=0, atol=1e-6)


def test_unet_tiles_blocks_and_dask_chunks_keep_the_whole_image_grid_on_odd_sizes():
    """A U-Net's output shifts with its input only by multiples of its divisor (4 here). On a
    side that is not a multiple, the last tile (at ``n - tile``) and a single centred tile fell
    off the whole image's grid: probabilities changed by up to 0.9 with the tile size and
    block-wise catalogs missed objects of the whole-image one (a drizzled 1137 x 1163 HST
    image). Now every tile, block window and dask chunk keeps one grid."""
    import dask.array as da

    from sciconv.inference import predict_instances, predict_instances_blocks

    keras.utils.set_random_seed(1)
    model = segmenter((None, None, 1), 2, depth=2, filters=4)  # divisor 4
    x = np.random.default_rng(5).normal(size=(101, 135)).astype(np.float32)
    whole = _tiled(model, x, tile=(104, 136), blend="none")  # one tile: the whole-image call
    for tile in (48, 64, 128):
        for blend in ("none", "gaussian"):
            got = _tiled(model, x, tile=tile, blend=blend)
            np.testing.assert_allclose(got, whole, rtol=0, atol=1e-5, err_msg=f"{tile} {blend}")
    lazy = _tiled(model, da.from_array(x, chunks=(37, 45)), tile=64, blend="none")
    np.testing.assert_allclose(lazy.compute(scheduler="threads"), whole, rtol=0, atol=1e-5)
    top = float(np.quantile(whole[..., 1], 0.92))  # the brightest 8 %: small separate objects
    kw = dict(normalize=None, progress=False, blend="none", min_size=6, threshold=top)
    labels = predict_instances(model, x, tile=(104, 136), method="connected", **kw)
    blocks = predict_instances_blocks(
        model, x, block=40, tile=64, method="connected", catalog=False, **kw
    )
    assert labels.max() > 5
    np.testing.assert_array_equal(blocks > 0, labels > 0)
    assert blocks.max() == labels.max()


# --------------------------------------------------------------------------------------------------
# precision


def test_bfloat16_agrees_with_float32_on_classes():
    keras.utils.set_random_seed(2)
    model = segmenter((None, None, 1), 3, depth=2, filters=8)
    x = np.random.default_rng(5).normal(size=(64, 96)).astype(np.float32)
    f32 = _tiled(model, x, precision="float32")
    bf16 = _tiled(model, x, precision="bfloat16")
    assert bf16.dtype == np.float32 and bf16.shape == f32.shape
    assert not np.array_equal(bf16, f32)  # it did run in bfloat16
    assert np.abs(bf16 - f32).max() < 0.05
    agree = (bf16.argmax(-1) == f32.argmax(-1)).mean()
    assert agree >= 0.99
    fast = _precision.bfloat16_model(model)
    assert fast is _precision.bfloat16_model(model)  # rebuilt once
    assert fast.layers[1].compute_dtype == "bfloat16"
    assert fast.layers[-1].compute_dtype == "float32"  # probabilities stay float32
    assert model.layers[1].compute_dtype == "float32"  # the user's model is untouched


def test_bfloat16_prediction_follows_training_done_since(tmp_path):
    """The bfloat16 rebuild is cached per model: after more training (new weights) it ran the
    weights of the first call, silently; and an export wrote its stale float32 copy."""
    keras.utils.set_random_seed(4)
    model = segmenter((None, None, 1), 2, depth=1, filters=4)
    x = np.random.default_rng(6).normal(size=(32, 32)).astype(np.float32)
    before = _tiled(model, x, precision="bfloat16")
    model.set_weights([w * 1.5 for w in model.get_weights()])  # "trained" since
    after = _tiled(model, x, precision="bfloat16")
    fresh = keras.models.clone_model(model)  # a model never predicted: its own rebuild
    fresh.set_weights(model.get_weights())
    np.testing.assert_allclose(after, _tiled(fresh, x, precision="bfloat16"), atol=1e-6)
    assert np.abs(after - before).max() > 0.01


def test_float32_models_are_not_kept_alive_by_the_precision_cache():
    """float32_model cached a float32 model as its own value: a weak-key dict holding its key
    strongly, so no predicted model was ever freed (cross-validation loops grew)."""
    import gc
    import weakref

    model = segmenter((None, None, 1), 2, depth=1, filters=2)
    _tiled(model, np.zeros((16, 16), np.float32), precision="float32")
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_a_model_saved_under_mixed_bfloat16_runs_in_float32_when_asked(tmp_path):
    """Trained after devices.configure() chose mixed_bfloat16, the saved model kept that policy:
    precision="float32" (and SCICONV_PRECISION=float32) still ran it in bfloat16."""
    from sciconv.models import load

    keras.utils.set_random_seed(3)
    try:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        trained = segmenter((None, None, 1), 3, depth=2, filters=8)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    trained.save(tmp_path / "mixed.keras")
    model = load(tmp_path / "mixed.keras")
    assert model.layers[2].compute_dtype == "bfloat16"  # as saved
    x = np.random.default_rng(5).normal(size=(64, 96)).astype(np.float32)
    f32 = _tiled(model, x, precision="float32")
    bf16 = _tiled(model, x, precision="bfloat16")
    assert not np.array_equal(f32, bf16)  # they were identical: both bfloat16
    exact = _precision.float32_model(model)
    assert exact.layers[2].compute_dtype == "float32" and exact is _precision.float32_model(model)
    np.testing.assert_allclose(f32, _tiled(exact, x, precision="float32"), atol=1e-6)
    assert model.layers[2].compute_dtype == "bfloat16"  # the loaded model is untouched


def test_predict_instances_runs_in_the_precision_asked_whole_and_block_by_block(monkeypatch):
    from sciconv.inference import _model

    keras.utils.set_random_seed(3)
    model = segmenter((None, None, 1), 3, depth=2, filters=8)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(96, 96)).astype(np.float32)
    x[20:40, 20:40] += 4.0
    calls = []

    def spy(m):
        calls.append(m.name)
        return _precision.bfloat16_model(m)

    monkeypatch.setattr(_model, "bfloat16_model", spy)
    kw = dict(progress=False, min_size=1)
    f32, p32 = inference.predict_instances(model, x, precision="float32", return_prob=True, **kw)
    assert calls == []
    bf16, p16 = inference.predict_instances(model, x, precision="bfloat16", return_prob=True, **kw)
    assert calls and not np.array_equal(p16, p32)  # the bfloat16 rebuild ran
    assert (p16.argmax(-1) == p32.argmax(-1)).mean() >= 0.99
    assert bf16.shape == f32.shape == x.shape
    n = len(calls)
    blocks = inference.predict_instances(model, x, precision="bfloat16", block=48, **kw)
    assert len(calls) > n  # block by block too
    assert blocks.shape == x.shape
    with pytest.raises(InferenceError, match=r"precision.*bfloat16"):
        inference.predict_instances(model, x, precision="float16", **kw)


def _fresh_auto_caches(monkeypatch, tmp_path):
    """No decision in this process nor on disk (the disk cache under a fresh folder)."""
    monkeypatch.delenv("SCICONV_PRECISION", raising=False)
    monkeypatch.setenv("SCICONV_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(_precision, "_AUTO_CHOICE", _precision.weakref.WeakKeyDictionary())
    monkeypatch.setattr(_precision, "_AUTO_BY_ARCHITECTURE", {})


def test_auto_precision_follows_the_hardware_and_a_timing(monkeypatch, tmp_path, stack):
    _fresh_auto_caches(monkeypatch, tmp_path)
    monkeypatch.setattr(_precision, "native_bfloat16", lambda: False)
    assert inference.resolve_settings(stack, (40, 40), tile=32).precision == "float32"
    monkeypatch.setattr(_precision, "native_bfloat16", lambda: True)
    calls = []

    def fake_time(model, x, repeats=3):
        calls.append(model is stack)
        return 1.0 if model is stack else 0.5  # bfloat16 twice as fast

    monkeypatch.setattr(_precision, "_time", fake_time)
    assert inference.resolve_settings(stack, (40, 40), tile=32).precision == "bfloat16"
    assert inference.resolve_settings(stack, (40, 40), tile=32).precision == "bfloat16"
    assert sorted(calls) == [False, True]  # timed once per model, then cached
    slow = _conv_stack(seed=3)
    monkeypatch.setattr(_precision, "_AUTO_BY_ARCHITECTURE", {})
    monkeypatch.setattr(_precision, "_time", lambda model, x, repeats=3: 1.0)
    assert inference.resolve_settings(slow, (40, 40), tile=32).precision == "float32"
    assert inference.resolve_settings(slow, (40, 40), precision="float32").precision == "float32"


def test_auto_precision_is_decided_once_per_architecture(monkeypatch, tmp_path):
    """Two models of one architecture (a model loaded twice; the wrapper predict_uncertainty
    builds on every call) get one decision: a second timing could fall on the other side of
    the threshold and the same call would then give other numbers."""
    _fresh_auto_caches(monkeypatch, tmp_path)
    monkeypatch.setattr(_precision, "native_bfloat16", lambda: True)
    timings = iter([0.5, 1.0, 1.0, 1.0])  # (bfloat16, float32): twice as fast, then not
    calls = []

    def fake_time(model, x, repeats=3):
        calls.append(model)
        return next(timings)

    monkeypatch.setattr(_precision, "_time", fake_time)
    a = _conv_stack(seed=5)
    b = keras.Model.from_config(a.get_config())  # same architecture, another object
    assert _precision.choose_precision(a, "auto", tile=(64, 64), channels=1) == "bfloat16"
    assert _precision.choose_precision(b, "auto", tile=(64, 64), channels=1) == "bfloat16"
    assert len(calls) == 2  # a was timed (both precisions), b was not
    other = _conv_stack(seed=6)  # new layer names: another config, timed anew
    assert _precision.choose_precision(other, "auto", tile=(64, 64), channels=1) == "float32"
    assert len(calls) == 4


def _timing(monkeypatch, bf16: float, f32: float) -> list:
    """Fake timings (bfloat16 model, float32 model); the list of timed models."""
    calls = []

    def fake_time(model, x, repeats=3):
        calls.append(model)
        return bf16 if model.layers[1].compute_dtype == "bfloat16" else f32

    monkeypatch.setattr(_precision, "native_bfloat16", lambda: True)
    monkeypatch.setattr(_precision, "_time", fake_time)
    return calls


def _new_process(monkeypatch):
    """Forget this process's decisions, as a new process would have none."""
    monkeypatch.setattr(_precision, "_AUTO_CHOICE", _precision.weakref.WeakKeyDictionary())
    monkeypatch.setattr(_precision, "_AUTO_BY_ARCHITECTURE", {})


def test_auto_precision_is_kept_on_disk_for_later_processes(monkeypatch, tmp_path):
    """A later process on the same machine reads the first decision instead of timing again,
    even when its own timing would come out the other way: one command, one result."""
    _fresh_auto_caches(monkeypatch, tmp_path)
    calls = _timing(monkeypatch, bf16=0.5, f32=1.0)
    model = _conv_stack(seed=7)
    assert _precision.choose_precision(model, "auto", tile=(64, 64), channels=1) == "bfloat16"
    assert len(calls) == 2
    key = architecture_digest(model)
    kept = _precision.decision_file(key)
    assert kept.read_text().strip() == "bfloat16"
    assert kept.is_relative_to(tmp_path / "cache" / "precision")
    _new_process(monkeypatch)
    calls = _timing(monkeypatch, bf16=1.0, f32=1.0)  # this process's timing would say float32
    again = keras.Model.from_config(model.get_config())
    assert _precision.choose_precision(again, "auto", tile=(64, 64), channels=1) == "bfloat16"
    assert calls == []  # read, not timed
    # another kind of machine (here: other CPU flags) has its own decision
    info = sc_devices.info()
    other = {**info, "cpu": {**info["cpu"], "model": "another CPU"}}
    monkeypatch.setattr(sc_devices, "info", lambda: other)
    assert _precision.decision_file(key) != kept
    _new_process(monkeypatch)
    assert _precision.choose_precision(again, "auto", tile=(64, 64), channels=1) == "float32"
    assert len(calls) == 2


def test_auto_precision_adopts_the_decision_of_a_process_that_wrote_first(monkeypatch, tmp_path):
    _fresh_auto_caches(monkeypatch, tmp_path)
    model = _conv_stack(seed=8)
    kept = _precision.decision_file(architecture_digest(model))
    calls = []

    def racing_time(model, x, repeats=3):  # another process writes while this one times
        calls.append(model)
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text("float32\n")
        return 0.5 if len(calls) == 1 else 1.0  # this process alone would take bfloat16

    monkeypatch.setattr(_precision, "native_bfloat16", lambda: True)
    monkeypatch.setattr(_precision, "_time", racing_time)
    assert _precision.choose_precision(model, "auto", tile=(64, 64), channels=1) == "float32"
    assert kept.read_text().strip() == "float32"


def test_auto_precision_without_a_writable_cache_decides_per_process(monkeypatch, tmp_path):
    _fresh_auto_caches(monkeypatch, tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("SCICONV_DATA_DIR", str(blocker))
    calls = _timing(monkeypatch, bf16=0.5, f32=1.0)
    model = _conv_stack(seed=9)
    assert _precision.choose_precision(model, "auto", tile=(64, 64), channels=1) == "bfloat16"
    assert _precision.choose_precision(model, "auto", tile=(64, 64), channels=1) == "bfloat16"
    assert len(calls) == 2  # decided once in this process, nothing raised
    # an unreadable decision (not float32/bfloat16) is ignored and timed anew
    monkeypatch.setenv("SCICONV_DATA_DIR", str(tmp_path / "cache"))
    _new_process(monkeypatch)
    kept = _precision.decision_file(architecture_digest(model))
    kept.parent.mkdir(parents=True)
    kept.write_text("float16\n")
    assert _precision.choose_precision(model, "auto", tile=(64, 64), channels=1) == "bfloat16"
    assert len(calls) == 4


def test_sciconv_precision_pins_auto(monkeypatch, tmp_path, stack, image):
    _fresh_auto_caches(monkeypatch, tmp_path)
    monkeypatch.setattr(_precision, "native_bfloat16", lambda: True)

    def no_timing(model, x, repeats=3):
        raise AssertionError("a pinned precision needs no timing")

    monkeypatch.setattr(_precision, "_time", no_timing)
    monkeypatch.setenv("SCICONV_PRECISION", "float32")
    assert inference.resolve_settings(stack, (40, 40), tile=32).precision == "float32"
    monkeypatch.setenv("SCICONV_PRECISION", "BFloat16 ")
    assert inference.resolve_settings(stack, (40, 40), tile=32).precision == "bfloat16"
    # an explicit argument wins over the variable
    assert inference.resolve_settings(stack, (40, 40), precision="float32").precision == "float32"
    pinned = _tiled(stack, image, tile=32, overlap=8)
    explicit = _tiled(stack, image, tile=32, overlap=8, precision="bfloat16")
    np.testing.assert_array_equal(pinned, explicit)
    monkeypatch.setenv("SCICONV_PRECISION", "half")
    with pytest.raises(InferenceError, match=r"SCICONV_PRECISION='half'.*float32, bfloat16"):
        inference.resolve_settings(stack, (40, 40), tile=32)


def test_native_bfloat16_reads_the_cpu_flags():
    expected = any(
        flag in line.split()
        for line in open("/proc/cpuinfo")
        if line.startswith("flags")
        for flag in ("avx512_bf16", "amx_bf16")
    )
    assert _precision.native_bfloat16() in (expected, True)  # True also with a CC >= 8 GPU


def test_unknown_precision_is_refused(stack, image):
    with pytest.raises(InferenceError, match=r"precision.*bfloat16"):
        _tiled(stack, image, precision="float16")


# --------------------------------------------------------------------------------------------------
# progress


def test_progress_on_a_non_terminal_stream_is_a_few_plain_lines(stack, image, capsys):
    _tiled(stack, image, tile=32, overlap=8, progress=True)  # 3 x 6 tiles
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert "\r" not in captured.err and "\x1b" not in captured.err
    assert 1 <= len(lines) <= 4 and lines[-1].startswith("predict_tiled: 18/18 tiles (100%)")


def test_progress_false_is_silent(stack, image, capsys):
    _tiled(stack, image, tile=32, overlap=8, progress=False)
    assert capsys.readouterr() == ("", "")


def test_progress_on_a_terminal_is_a_tqdm_bar():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    bar = _progress.progress_bar(3, desc="predict_tiled", unit="tile", enabled=True, file=stream)
    for _ in range(3):
        bar.update(1)
    bar.close()
    assert "\r" in stream.getvalue() and "3/3" in stream.getvalue()
