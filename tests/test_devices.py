"""sciconv.devices: discovery, configure() defaults and overrides, TF_CONFIG roles, helpers."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from sciconv import devices
from sciconv.devices._precision import reset_state
from sciconv.errors import ConfigError, DatasetError, SciconvWarning

CLUSTER = {"worker": ["10.0.0.1:2222", "10.0.0.2:2222", "10.0.0.3:2222"]}


def _cpu_flags():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


HAS_BF16 = bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


@pytest.fixture(autouse=True)
def _restore_state(monkeypatch):
    """Every test starts and ends with float32, no configure() state and no TF_CONFIG."""
    monkeypatch.delenv("TF_CONFIG", raising=False)
    reset_state()
    yield
    reset_state()
    assert keras.mixed_precision.global_policy().name == "float32"


# ------------------------------------------------------------------------------ info, describe
def test_info_versions_cpu_and_no_gpu():
    d = devices.info()
    assert d["tensorflow"] == tf.__version__
    assert d["keras"] == keras.__version__
    assert d["python"] == sys.version.split()[0]
    assert d["keras_backend"] == "tensorflow"
    assert d["cpu"]["count"] >= 1 and 1 <= d["cpu"]["available"] <= d["cpu"]["count"]
    flags = _cpu_flags()
    assert d["cpu"]["flags"] == {f: f in flags for f in devices.CPU_FLAGS}
    assert d["gpus"] == [] and not tf.config.list_physical_devices("GPU")
    assert d["strategy"] == {"name": "default", "num_replicas": 1}
    assert d["tf_config"] is None and d["num_workers"] == 1 and d["is_chief"] is True
    assert d["mixed_precision"] == "float32"
    assert d["xla"] is False  # CPU default
    assert d["configured"] is None
    json.dumps(d)  # plain data, loggable


def test_describe_has_versions_and_device_lines(monkeypatch):
    text = devices.describe()
    lines = text.splitlines()
    assert f"tensorflow {tf.__version__}" in text and f"keras {keras.__version__}" in text
    assert lines[0].startswith("sciconv ")
    assert any(re.match(r"CPU: .+, \d+ of \d+ cores available; flags: ", ln) for ln in lines)
    assert "GPU: none visible" in text
    assert "strategy: default (1 replica(s) in sync)" in text
    assert "mixed precision policy: float32; XLA (jit_compile) by default: off" in text
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": 2}})
    )
    assert (
        "cluster: 3 worker(s) from TF_CONFIG; this task worker:2 (not chief)" in devices.describe()
    )
    monkeypatch.setenv("TF_CONFIG", "{not json")
    assert "cluster: invalid TF_CONFIG: TF_CONFIG is not valid JSON" in devices.describe()


def test_cli_info_prints_describe(capsys):
    from sciconv import cli

    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"tensorflow {tf.__version__}" in out and "strategy: default" in out


# ------------------------------------------------------------------------------ configure
def test_configure_auto_on_cpu_xla_off_and_measured_policy():
    applied = devices.configure()
    assert applied["device"] == "CPU"
    assert applied["xla"] is False and devices.jit_compile_default() is False
    assert applied["memory_growth"] == []
    # measured on this machine kind: bfloat16 2.4x faster where the CPU has bf16 instructions
    expected = "mixed_bfloat16" if HAS_BF16 else "float32"
    assert applied["mixed_precision"] == expected
    assert keras.mixed_precision.global_policy().name == expected
    assert devices.info()["configured"] == applied


@pytest.mark.parametrize(
    ("kwargs", "policy", "xla"),
    [
        ({"xla": True}, None, True),
        ({"xla": False}, None, False),
        ({"mixed_precision": False}, "float32", False),
        ({"mixed_precision": None}, "float32", False),
        ({"mixed_precision": True}, "mixed_bfloat16", False),  # the CPU's mixed precision
        ({"mixed_precision": "mixed_bfloat16", "xla": True}, "mixed_bfloat16", True),
        ({"mixed_precision": "bfloat16"}, "mixed_bfloat16", False),
        ({"mixed_precision": "float32"}, "float32", False),
    ],
)
def test_configure_explicit_settings_win(kwargs, policy, xla):
    applied = devices.configure(**kwargs)
    if policy is not None:
        assert applied["mixed_precision"] == policy
    assert keras.mixed_precision.global_policy().name == applied["mixed_precision"]
    assert applied["xla"] is xla
    assert devices.jit_compile_default() is xla
    assert devices.info()["xla"] is xla


def test_configure_again_auto_forgets_explicit_xla():
    devices.configure(xla=True)
    assert devices.jit_compile_default() is True
    devices.configure(mixed_precision=False)
    assert devices.jit_compile_default() is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"mixed_precision": "mixed_flaot16"},
            "mixed_precision must be one of .*did you mean 'mixed_float16'",
        ),
        ({"mixed_precision": 16}, "mixed_precision must be 'auto', True, False.*got 16"),
        ({"xla": "yes"}, "xla must be 'auto', True or False; got 'yes'"),
        ({"memory_growth": "no"}, "memory_growth must be True or False; got 'no'"),
    ],
)
def test_configure_rejects_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        devices.configure(**kwargs)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_forced_mixed_float16_trains_one_step_and_predicts_float32():
    from sciconv import models

    with pytest.warns(SciconvWarning, match="mixed_float16 on a CPU is slower"):
        applied = devices.configure(mixed_precision="mixed_float16")
    assert applied["mixed_precision"] == "mixed_float16"
    model = models.classifier((16, 16, 1), 3, filters=(4, 8), dense=(8,), dropout=0.0)
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert conv.compute_dtype == "float16" and conv.kernel.dtype == "float32"
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 16, 16, 1)).astype("float32")
    y = rng.integers(0, 3, size=8)
    before = [w.copy() for w in model.get_weights()]
    # dynamic loss scaling starts at 2**15 and skips (halving the scale) the steps whose float16
    # gradients overflow; within a few steps one applies
    skipped = 0
    while not any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights())):
        assert skipped < 12, "no mixed_float16 training step changed the weights"
        if skipped:
            assert float(model.optimizer.dynamic_scale) == 2.0**15 / 2**skipped
        loss = model.train_on_batch(x, y)
        assert np.isfinite(loss)
        skipped += 1
    pred = model.predict(x, verbose=0)
    assert pred.dtype == np.float32 and pred.shape == (8, 3)
    np.testing.assert_allclose(pred.sum(axis=1), 1.0, atol=1e-3)


def test_mixed_bfloat16_classifier_learns():
    """The CPU default (where bf16 instructions exist) must still learn: held-out accuracy."""
    from sciconv import models

    devices.configure(mixed_precision="mixed_bfloat16")
    rng = np.random.default_rng(1)

    def data(n):
        y = rng.integers(0, 3, size=n)
        x = rng.normal(0, 0.5, size=(n, 16, 16, 1)).astype("float32")
        for i, c in enumerate(y):
            x[i, 4:12, 1 + 5 * c : 5 + 5 * c, 0] += 1.0
        return x, y

    (x, y), (xv, yv) = data(192), data(96)
    keras.utils.set_random_seed(0)
    model = models.classifier((16, 16, 1), 3, filters=(8, 16), dense=(16,), dropout=0.0)
    assert model.layers[2].compute_dtype == "bfloat16"
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        jit_compile=devices.jit_compile_default(),
    )
    model.fit(x, y, batch_size=32, epochs=4, verbose=0)
    pred = model.predict(xv, verbose=0)
    assert pred.dtype == np.float32
    assert np.mean(pred.argmax(axis=1) == yv) > 0.8  # chance is 1/3


# ------------------------------------------------------------------------------ TF_CONFIG roles
@pytest.mark.parametrize(
    ("tf_config", "chief", "workers"),
    [
        (None, True, 1),
        ({"cluster": CLUSTER, "task": {"type": "worker", "index": 0}}, True, 3),
        ({"cluster": CLUSTER, "task": {"type": "worker", "index": 2}}, False, 3),
        (
            {"cluster": {"chief": ["h:1"], **CLUSTER}, "task": {"type": "chief", "index": 0}},
            True,
            4,
        ),
        (
            {"cluster": {"chief": ["h:1"], **CLUSTER}, "task": {"type": "worker", "index": 0}},
            False,
            4,
        ),
        ({"cluster": {"evaluator": ["h:1"], **CLUSTER}, "task": {"type": "evaluator"}}, False, 3),
        ({"cluster": CLUSTER}, True, 3),  # no task: a launcher, not a worker
    ],
)
def test_is_chief_and_num_workers_from_tf_config(monkeypatch, tf_config, chief, workers):
    assert devices.is_chief(tf_config=tf_config) is chief
    task = (tf_config or {}).get("task")
    expected = f"{task['type']}{task.get('index', 0)}" if task else None
    assert devices.task_name(tf_config=tf_config) == expected
    assert devices.num_workers(tf_config=tf_config) == workers
    if tf_config is not None:  # the same through the environment variable
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
        assert devices.is_chief() is chief
        assert devices.num_workers() == workers


@pytest.mark.parametrize(
    ("tf_config", "message"),
    [
        ("{'cluster': 1}", r"TF_CONFIG is not valid JSON \(Expecting property name"),
        ("[1, 2]", "TF_CONFIG must be a JSON object with 'cluster' and 'task'; got list"),
        ({"cluster": {"worker": "h:1"}, "task": {}}, r"cluster\['worker'\] must be a list"),
        ({"cluster": CLUSTER, "task": {"index": 0}}, "task must name its 'type'"),
        (
            {"cluster": CLUSTER, "task": {"type": "worker", "index": -1}},
            "'index' must be an int >= 0",
        ),
        (
            {"cluster": CLUSTER, "task": {"type": "worker", "index": 3}},
            "task worker:3 is not in the cluster, which has 3 worker address",
        ),
    ],
)
def test_bad_tf_config_raises_config_error(monkeypatch, tf_config, message):
    with pytest.raises(ConfigError, match=message):
        devices.is_chief(tf_config=tf_config)
    raw = tf_config if isinstance(tf_config, str) else json.dumps(tf_config)
    monkeypatch.setenv("TF_CONFIG", raw)
    with pytest.raises(ConfigError, match=message):
        devices.strategy()


# ------------------------------------------------------------------------------ strategy helpers
def test_strategy_auto_is_default_on_one_cpu():
    strat = devices.strategy()
    assert strat is tf.distribute.get_strategy()
    assert devices.num_replicas(strat) == 1
    assert devices.strategy("default") is strat


def test_strategy_mirrored_is_cached():
    strat = devices.strategy("mirrored", devices=["/cpu:0"])
    assert isinstance(strat, tf.distribute.MirroredStrategy)
    assert devices.strategy("mirrored", devices=["/cpu:0"]) is strat
    assert devices.num_replicas(strat) == 1
    with strat.scope():
        assert devices.num_replicas() == 1 and devices.jit_compile_default() is False


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("mirroed",), {}, "kind must be one of .*did you mean 'mirrored'"),
        (("default",), {"devices": ["/cpu:0"]}, "devices is only used with kind='mirrored'"),
        (("mirrored",), {"devices": "/cpu:0"}, "devices must be a non-empty list of device names"),
        (("mirrored",), {"devices": []}, r"devices must be a non-empty list .*; got \[\]"),
    ],
)
def test_strategy_bad_arguments(args, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        devices.strategy(*args, **kwargs)


@pytest.mark.parametrize("bad", [0, -4, 2.5, True, "8"])
def test_scale_batch_size(bad):
    assert devices.scale_batch_size(12) == 12
    with pytest.raises(
        ConfigError, match=f"per_replica batch size must be a positive int; got {bad!r}"
    ):
        devices.scale_batch_size(bad)


def test_distribute_dataset_round_trip_and_errors():
    ds = tf.data.Dataset.from_tensor_slices(np.arange(10)).batch(4)
    got = [b.numpy().tolist() for b in devices.distribute_dataset(ds)]
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    with pytest.raises(DatasetError, match=r"dataset must be a tf\.data\.Dataset; got ndarray"):
        devices.distribute_dataset(np.arange(3))
    with pytest.raises(ConfigError, match=r"shard_policy must be one of .*did you mean 'file'"):
        devices.distribute_dataset(ds, shard_policy="files")


def test_chief_workdir(tmp_path):
    run = tmp_path / "run"
    with devices.chief_workdir(run) as where:
        assert where == run
    other = {"cluster": CLUSTER, "task": {"type": "worker", "index": 1}}
    with devices.chief_workdir(run, tf_config=other) as where:
        assert where != run and where.is_dir() and not where.is_relative_to(tmp_path)
        (where / "last.keras").write_bytes(b"x")
    assert not where.exists() and not run.exists()
