"""tf.distribute on CPU: MirroredStrategy over two logical CPUs, MultiWorkerMirroredStrategy over
two local worker processes. Each runs in subprocesses (tests/_mwms_worker.py), since logical
devices and cluster servers must be set up before TensorFlow initializes and cannot be undone."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

WORKER = Path(__file__).with_name("_mwms_worker.py")
ROOT = Path(__file__).resolve().parents[1]


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT), **extra)
    return env


def _free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _start(args, *, env, log):
    return subprocess.Popen(
        [sys.executable, str(WORKER), *map(str, args)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )


def _stop(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _wait_all(procs, logs, *, timeout):
    deadline = time.monotonic() + timeout  # one deadline for all of them
    for p, log in zip(procs, logs):
        try:
            rc = p.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker did not finish in {timeout} s; log:\n{_tail(log)}")
        assert rc == 0, f"worker exited with {rc}; log:\n{_tail(log)}"


def _tail(path, n=3000):
    return Path(path).read_text(errors="replace")[-n:]


def _h5_arrays(path):
    out = {}
    with h5py.File(path, "r") as fh:
        fh.visititems(
            lambda name, obj: (
                out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return out


@pytest.mark.timeout(180)
def test_mirrored_two_logical_cpus_matches_one_device(tmp_path):
    out = tmp_path / "mirrored.json"
    log = tmp_path / "mirrored.log"
    with open(log, "w") as fh:
        proc = _start(["mirrored", out], env=_env(), log=fh)
        try:
            _wait_all([proc], [log], timeout=150)
        finally:
            _stop([proc])
    result = json.loads(out.read_text())
    assert result["strategy_class"] == "MirroredStrategy"
    assert result["num_replicas"] == 2
    assert result["scaled_batch"] == 16  # 8 per replica x 2 replicas
    assert result["jit_default_mirrored"] is False  # XLA off under multi-replica strategies
    single, mirrored = np.array(result["loss_single"]), np.array(result["loss_mirrored"])
    # it learns: loss falls well below chance (ln 3 = 1.10) and the model fits the task
    assert mirrored[-1] < 0.5 * mirrored[0] and mirrored[-1] < 0.6
    assert result["accuracy_mirrored"] > 0.9
    # same global batch and seed: same losses and weights as one device, up to float round-off
    np.testing.assert_allclose(mirrored, single, rtol=1e-4, atol=1e-5)
    assert result["max_weight_diff"] < 1e-4
    assert result["tiled_shape"] == [40, 48, 2] and result["tiled_vs_direct"] < 1e-5
    assert "batches of 1 but model 'segmenter' trains on 2 replicas" in result["small_val_batches"]
    assert "batches of 3 do not split evenly over the 2 replicas" in result["uneven_batches"]
    assert "batch_size=4" in result["uneven_batches"]


@pytest.mark.timeout(240)
def test_multiworker_two_processes_fit_same_weights_chief_writes(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    out = tmp_path / "out"
    out.mkdir()
    procs, logs = [], []
    try:
        for index in (0, 1):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            logs.append(tmp_path / f"worker{index}.log")
            with open(logs[-1], "w") as fh:
                procs.append(
                    _start(
                        ["multiworker", out, tmp_path / f"run{index}"],
                        env=_env(TF_CONFIG=tf_config),
                        log=fh,
                    )
                )
        # the single-device reference, same seed and global batch, runs alongside
        logs.append(tmp_path / "single.log")
        with open(logs[-1], "w") as fh:
            procs.append(_start(["multiworker", out, tmp_path / "run_single"], env=_env(), log=fh))
        _wait_all(procs, logs, timeout=200)
    finally:
        _stop(procs)

    w0, w1, ws = (json.loads((out / f"worker_{i}.json").read_text()) for i in (0, 1, "single"))
    assert [w0["is_chief"], w1["is_chief"], ws["is_chief"]] == [True, False, True]
    assert w0["strategy_class"] == w1["strategy_class"] == "_MultiWorkerMirroredStrategy"
    assert w0["num_replicas"] == w1["num_replicas"] == 2
    assert ws["num_replicas"] == 1
    assert [w0["scaled_batch"], ws["scaled_batch"]] == [16, 8]  # 8 per replica
    # both workers end with identical weights (synchronous all-reduce)
    a0, a1 = _h5_arrays(out / "weights_0.weights.h5"), _h5_arrays(out / "weights_1.weights.h5")
    assert a0.keys() == a1.keys() and len(a0) >= 8
    for name in a0:
        np.testing.assert_array_equal(a0[name], a1[name], err_msg=name)
    # ... and they trained like one device with the same global batch and seed
    np.testing.assert_allclose(w0["loss"], ws["loss"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w1["loss"], w0["loss"], rtol=1e-6)
    np.testing.assert_allclose(w0["val_loss"], ws["val_loss"], rtol=1e-4, atol=1e-5)
    single = _h5_arrays(out / "weights_single.weights.h5")
    for name in a0:
        np.testing.assert_allclose(a0[name], single[name], atol=1e-4, err_msg=name)
    # only the chief wrote checkpoints; the other worker's went to a deleted temp dir
    chief_files = {p.name for p in (tmp_path / "run0").rglob("*.keras")}
    assert "last.keras" in chief_files, sorted((tmp_path / "run0").rglob("*"))
    other = tmp_path / "run1"
    assert not other.exists() or not any(other.rglob("*.keras")), sorted(other.rglob("*"))
