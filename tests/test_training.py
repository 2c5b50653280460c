"""Tests of sciconv.training.fit: defaults, run directory, metadata, refusal, kill and resume."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import sciconv as sc
from sciconv.errors import ConfigError, ModelError, OutputExistsError, SciconvWarning, WriteError
from sciconv.models import classifier, get_metadata, load, regressor, segmenter
from sciconv.training import default_compile_args, fit, read_config

WORKER = Path(__file__).with_name("_train_worker.py")
TIMEOUT = 180


def _xy(n=32, size=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, size, size, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int64")
    return x, y


def _tiny():
    return classifier((8, 8, 1), 2, filters=(4,), dense=(4,), dropout=0.0)


def _dataset(x, y, **attrs):
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def _log_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- compile defaults


def test_default_compile_args_per_task():
    args = default_compile_args(_tiny())
    assert args == {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}
    one_hot = tf.TensorSpec((None, 2), tf.float32)
    assert default_compile_args(_tiny(), label_spec=one_hot)["loss"] == "categorical_crossentropy"
    multi = classifier((8, 8, 1), 3, filters=(2,), dense=(), multilabel=True)
    assert default_compile_args(multi)["loss"] == "binary_crossentropy"
    assert default_compile_args(regressor((8, 8, 1), filters=(2,), dense=()))["loss"] == "mse"
    nll = default_compile_args(regressor((8, 8, 1), filters=(2,), dense=(), uncertainty=True))
    assert nll["loss"] is sc.losses.gaussian_nll
    seg = default_compile_args(segmenter(depth=1, filters=2, num_classes=3))
    assert isinstance(seg["loss"], sc.losses.BCEDiceLoss)
    assert "metrics" not in seg  # weighted: per-pixel weights (bad pixels, padding) reach them
    assert [m.name for m in seg["weighted_metrics"]] == ["mean_iou", "iou_1", "dice"]
    two = default_compile_args(segmenter(depth=1, filters=2, instance_output="distance"))
    assert two["loss"][1] == "mse"
    inputs = keras.Input((3,))
    odd = keras.Model(inputs, keras.layers.Reshape((3, 1))(inputs))
    with pytest.raises(ModelError, match="cannot choose a loss"):
        default_compile_args(odd)


# --------------------------------------------------------------------------- run directory


def test_fit_writes_run_directory_and_records_metadata(tmp_path):
    x, y = _xy()
    norm = {"method": "percentile", "low": 1.0, "high": 99.8}
    train = _dataset(
        x, y, class_names=["faint", "bright"], normalization=norm, task="classification"
    )
    val = _dataset(*_xy(16, seed=1))
    model = _tiny()
    history = fit(
        model, train, val, epochs=3, workdir=tmp_path / "run", verbose=0, seed=0, tensorboard=False
    )
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == [
        "best.keras", "config.json", "last.keras", "log.csv"]  # fmt: skip
    assert len(history.history["loss"]) == 3
    rows = _log_rows(run / "log.csv")
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    np.testing.assert_allclose(
        [float(r["val_loss"]) for r in rows], history.history["val_loss"], rtol=1e-5
    )
    config = read_config(run)
    assert config["status"] == "finished" and config["epochs_done"] == 3
    # how it computed, for the run folder to say what precision its model runs in
    assert config["dtype_policy"] == "float32" and config["strategy"].endswith("Strategy")
    # the epoch best.keras holds, with its metrics (only the last epoch's were recorded)
    best = int(np.argmin(history.history["val_loss"]))
    assert config["best"]["epoch"] == best
    assert config["best"]["val_loss"] == pytest.approx(min(history.history["val_loss"]))
    assert config["monitor"] == "val_loss" and config["seed"] == 0
    assert config["versions"]["keras"] == keras.__version__
    assert config["versions"]["tensorflow"] == tf.__version__
    assert config["metadata"]["class_names"] == ["faint", "bright"]
    meta = get_metadata(model)
    assert meta["class_names"] == ["faint", "bright"] and meta["normalization"] == norm
    best, last = load(run / "best.keras"), load(run / "last.keras")
    assert get_metadata(best)["normalization"] == norm
    # no size attributes on the dataset: the model's input size, fitted the from_folder way
    assert meta["image_size"] == [8, 8] and meta["size_policy"] == "crop"
    assert get_metadata(best)["image_size"] == [8, 8]
    xv = _xy(16, seed=1)[0]
    np.testing.assert_allclose(last.predict(xv, verbose=0), model.predict(xv, verbose=0), atol=1e-6)
    best_epoch = int(np.argmin(history.history["val_loss"]))
    assert best.evaluate(val, verbose=0, return_dict=True)["loss"] == pytest.approx(
        history.history["val_loss"][best_epoch], rel=1e-4
    )


def test_finished_run_is_not_overwritten_without_flag(tmp_path):
    x, y = _xy(16)
    fit(_tiny(), (x, y), epochs=1, workdir=tmp_path, verbose=0, tensorboard=False)
    before = (tmp_path / "last.keras").read_bytes()
    with pytest.raises(OutputExistsError, match=r"holds a previous run.*overwrite=True"):
        fit(_tiny(), (x, y), epochs=1, workdir=tmp_path, verbose=0, tensorboard=False)
    assert (tmp_path / "last.keras").read_bytes() == before
    fit(_tiny(), (x, y), epochs=2, workdir=tmp_path, verbose=0, tensorboard=False, overwrite=True)
    assert [r["epoch"] for r in _log_rows(tmp_path / "log.csv")] == ["0", "1"]


def test_tensorboard_logs_or_a_clear_warning(tmp_path):
    x, y = _xy(16)
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.warns(SciconvWarning, match="tensorboard package is not installed"):
            fit(_tiny(), (x, y), epochs=1, workdir=tmp_path, verbose=0)
        assert not (tmp_path / "logs").exists()
    else:
        fit(_tiny(), (x, y), epochs=1, workdir=tmp_path, verbose=0)
        assert any((tmp_path / "logs").rglob("events.out.tfevents*"))


def test_fit_records_dataset_size_policy_and_passes_no_shuffle_to_keras():
    import warnings

    x, y = _xy(16)
    model = _tiny()
    train = _dataset(x, y, image_size=(8, 8), size_policy="resize")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(model, train, epochs=1, verbose=0, seed=0, reduce_lr=False)
    assert not [w for w in caught if "shuffle" in str(w.message)], [str(w.message) for w in caught]
    meta = get_metadata(model)
    assert meta["image_size"] == [8, 8] and meta["size_policy"] == "resize"
    # a model that takes any size records no size
    seg = segmenter((None, None, 1), depth=1, filters=2)
    xs = np.zeros((4, 8, 8, 1), np.float32)
    fit(seg, (xs, np.zeros((4, 8, 8), np.int32)), epochs=1, verbose=0, reduce_lr=False)
    assert "image_size" not in get_metadata(seg) and "size_policy" not in get_metadata(seg)


class _CountSteps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.per_epoch = []

    def on_epoch_begin(self, epoch, logs=None):
        self.per_epoch.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.per_epoch[-1] += 1


def _fit_counting(model, train, **kwargs):
    """(steps trained per epoch, Keras "ran out of data" warnings) of one fit call."""
    import warnings

    count = _CountSteps()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(model, train, verbose=0, reduce_lr=False, callbacks=[count], seed=0, **kwargs)
    return count.per_epoch, [str(w.message) for w in caught if "ran out of data" in str(w.message)]


def test_fit_trains_every_step_on_from_pairs_patches(tmp_path):
    import tifffile

    (tmp_path / "img").mkdir()
    (tmp_path / "msk").mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        lab = np.zeros((24, 24), np.int32)
        lab[4:12, 4:12], lab[14:22, 6:14] = 1, 2
        tifffile.imwrite(tmp_path / "img" / f"{i}.tif", (lab > 0) + rng.normal(0, 0.1, lab.shape))
        tifffile.imwrite(tmp_path / "msk" / f"{i}.tif", lab)
    train = sc.datasets.from_pairs(
        tmp_path / "img", tmp_path / "msk", patch_size=16, patches_per_image=4, batch_size=4, seed=0
    )
    assert train.steps_per_epoch == 3  # one pass: 3 images x 4 patches in batches of 4
    # more steps per epoch than one pass: all of them, epoch after epoch, and no warning
    model = segmenter(depth=1, filters=2)
    steps, ran_out = _fit_counting(model, train, epochs=3, steps_per_epoch=5)
    assert steps == [5, 5, 5] and not ran_out
    # no steps_per_epoch: one pass per epoch, from the dataset
    run = tmp_path / "run"
    steps, ran_out = _fit_counting(segmenter(depth=1, filters=2), train, epochs=2, workdir=run)
    assert steps == [3, 3] and not ran_out
    config = read_config(run)
    assert config["steps_per_epoch"] == 3
    # how batches were drawn, for a methods section (QA: "augment": null for augmented data,
    # "batch_size": null, no patches, the command without its config file)
    assert config["batch_size"] == 4 and config["patch_size"] == [16, 16]
    assert config["patches_per_image"] == 4 and config["augment"] is None
    assert config["optimizer"] == "Adam" and config["command"] == list(sys.argv)
    augmented = sc.datasets.from_pairs(
        tmp_path / "img", tmp_path / "msk", patch_size=16, batch_size=4, seed=0, augment=True
    )
    fit(segmenter(depth=1, filters=2), augmented, epochs=1, workdir=tmp_path / "aug", verbose=0)
    assert read_config(tmp_path / "aug")["augment"] == {"d4": True, "crop": True}


def test_fit_repeats_a_finite_dataset_for_steps_per_epoch_and_refuses_endless_without():
    x, y = _xy(16)  # 2 batches of 8
    steps, ran_out = _fit_counting(_tiny(), _dataset(x, y), epochs=2, steps_per_epoch=3)
    assert steps == [3, 3] and not ran_out
    steps, ran_out = _fit_counting(_tiny(), _dataset(x, y), epochs=2)
    assert steps == [2, 2] and not ran_out
    with pytest.raises(ConfigError, match="endless dataset: pass steps_per_epoch"):
        fit(_tiny(), _dataset(x, y).repeat(), epochs=1, verbose=0)


def test_fit_without_workdir_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x, y = _xy(16)
    history = fit(_tiny(), (x, y), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert list(tmp_path.iterdir()) == []


def test_seed_makes_runs_repeatable():
    x, y = _xy()
    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(3)  # initial weights: seed before building the model
        runs.append(fit(_tiny(), (x, y), epochs=2, verbose=0, seed=3).history["loss"])
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-5)


def test_user_compiled_model_is_kept_and_early_stopping_stops():
    x, y = _xy(16)
    model = _tiny()
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy"
    )
    history = fit(model, (x, y), (x, y), epochs=10, verbose=0, early_stopping=1, reduce_lr=False)
    assert model.loss == "sparse_categorical_crossentropy"
    assert len(history.history["loss"]) == 2  # val_loss never improves with a zero learning rate


def test_segmentation_fit_reports_iou():
    rng = np.random.default_rng(0)
    x = rng.random((8, 16, 16, 1)).astype("float32")
    y = (x[..., 0] > 0.5).astype("int32")
    history = fit(
        segmenter(depth=2, filters=4, batch_norm=False),
        (x, y),
        epochs=2,
        verbose=0,
        batch_size=4,
        seed=0,
        learning_rate=1e-2,
    )
    assert {"loss", "mean_iou", "iou_1", "dice"} <= set(history.history)
    assert history.history["loss"][-1] < history.history["loss"][0]


def _squares(n, seed):
    """Noisy images with one bright rectangle each: (images, masks, distance to background)."""
    from scipy.ndimage import distance_transform_edt

    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.2, (n, 16, 16, 1)).astype("float32")
    y = np.zeros((n, 16, 16), np.int32)
    for i in range(n):
        h, w = rng.integers(4, 9, size=2)
        r, c = rng.integers(0, 16 - h), rng.integers(0, 16 - w)
        y[i, r : r + h, c : c + w] = 1
    x[..., 0] += y
    dist = np.stack([distance_transform_edt(m) for m in y])[..., None].astype("float32")
    return x, y, dist


def test_segmenter_with_instance_output_learns_both_targets():
    """Both heads learn a tiny learnable task and beat chance on held-out images."""
    x, y, dist = _squares(32, seed=0)
    x_test, y_test, dist_test = _squares(16, seed=1)
    keras.utils.set_random_seed(0)
    model = segmenter(depth=1, filters=4, instance_output="distance", batch_norm=False)
    history = fit(
        model,
        (x, (y, dist)),
        epochs=15,
        verbose=0,
        batch_size=8,
        seed=0,
        learning_rate=1e-2,
        reduce_lr=False,
    ).history
    seg_loss, dist_loss = "segmenter_head_softmax_loss", "segmenter_head_distance_loss"
    assert {"loss", seg_loss, dist_loss} <= set(history)
    # measured with seeds 0-2: the total and mask losses end at <= 0.49 of the first epoch's,
    # the distance loss at <= 0.14 of it
    assert history["loss"][-1] < 0.6 * history["loss"][0]
    assert history[seg_loss][-1] < 0.6 * history[seg_loss][0]
    assert history[dist_loss][-1] < 0.5 * history[dist_loss][0]
    prob, dist_pred = model.predict(x_test, verbose=0)
    pred = prob.argmax(axis=-1)
    # held out: all-background scores 0.85 pixel accuracy and IoU 0 (measured: >= 0.99, >= 0.94)
    chance = max(y_test.mean(), 1 - y_test.mean())
    assert (pred == y_test).mean() > chance + 0.1
    iou = ((pred == 1) & (y_test == 1)).sum() / ((pred == 1) | (y_test == 1)).sum()
    assert iou > 0.8
    # the distance head beats a constant guess (the training mean) by far (measured: 5x)
    mse = np.mean((dist_pred - dist_test) ** 2)
    assert mse < 0.5 * np.mean((dist_test - dist.mean()) ** 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs must be an int >= 1"),
        ({"learning_rate": -1.0}, "learning_rate must be a positive number"),
        ({"early_stopping": True}, "early_stopping must be None"),
        ({"reduce_lr": 0}, "reduce_lr must be True, False or a patience"),
        ({"steps_per_epoch": 0}, "steps_per_epoch must be None or an int"),
        ({"seed": -2}, "seed must be None or an int"),
        ({"warmup": "on"}, "warmup must be .auto., None or a number of steps"),
    ],
)
def test_fit_argument_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        fit(_tiny(), _xy(8), verbose=0, **kwargs)


def test_fit_data_errors():
    x, y = _xy(8)
    with pytest.raises(ConfigError, match="got the path 'data/galaxies'"):
        fit(_tiny(), "data/galaxies")
    with pytest.raises(ConfigError, match=r"validation_data must be a tf\.data\.Dataset"):
        fit(_tiny(), (x, y), [x, y])
    with pytest.raises(ConfigError, match="x and y must hold as many samples; got 8 and 5"):
        fit(_tiny(), (x, y[:5]))
    with pytest.raises(ConfigError, match=r"yields single images of shape \(8, 8, 1\).*batch"):
        fit(_tiny(), tf.data.Dataset.from_tensor_slices((x, y)))
    with pytest.raises(ConfigError, match=r"must yield \(images, labels\) pairs"):
        fit(_tiny(), tf.data.Dataset.from_tensor_slices(x).batch(4))
    with pytest.raises(ModelError, match=r"3 channel\(s\).*expects 1"):
        fit(_tiny(), (np.zeros((8, 8, 8, 3), "float32"), y))
    with pytest.raises(ConfigError, match="class_weight works for image-level labels only"):
        fit(
            segmenter(depth=1, filters=2),
            (x, (x[..., 0] > 0).astype("int32")),
            class_weight={0: 1.0, 1: 5.0},
        )
    with pytest.raises(ModelError, match=r"has 3 classes \['a', 'b', 'c'\].*num_classes=3"):
        fit(_tiny(), _dataset(x, y, class_names=["a", "b", "c"]), verbose=0)
    with pytest.raises(ModelError, match="task 'segmentation' but model 'classifier'"):
        fit(_tiny(), _dataset(x, y, task="segmentation"), verbose=0)


# --------------------------------------------------------------------------- kill and resume


def _start(workdir, epochs, hang_epoch, logfile, seed=7):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(workdir), str(epochs), str(seed), str(hang_epoch),
         str(logfile)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _result(proc):
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err[-3000:]
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def _wait_for(path, text, proc, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"worker ended early: {proc.communicate()[1][-3000:]}")
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"worker did not reach {text!r} within {timeout} s")


@pytest.mark.slow
def test_sigkilled_run_resumes_and_matches_uninterrupted(tmp_path):
    epochs, kill_epoch = 5, 2
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    killed_log, resumed_log, clean_log = (tmp_path / n for n in ("a.txt", "b.txt", "c.txt"))

    clean = _start(clean_dir, epochs, -1, clean_log)  # the reference run, in parallel
    victim = _start(killed_dir, epochs, kill_epoch, killed_log)
    try:
        _wait_for(killed_log, f"hanging {kill_epoch}", victim)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL

    # what a kill in the middle of epoch 2 leaves behind
    config = read_config(killed_dir)
    assert config["status"] == "running" and config["epochs_done"] == kill_epoch
    assert json.loads((killed_dir / "backup" / "training_metadata.json").read_text())["epoch"] == 2
    assert [r["epoch"] for r in _log_rows(killed_dir / "log.csv")] == ["0", "1"]
    assert get_metadata(load(killed_dir / "last.keras"))["task"] == "classification"
    assert not list(killed_dir.glob(".*.part*")), "a partial temporary file was left behind"
    assert json.loads((killed_dir / "run.lock").read_text())["pid"] == victim.pid
    with pytest.raises(OutputExistsError, match=r"interrupted run \(resume=False\)"):
        fit(_tiny(), _xy(8), epochs=1, workdir=killed_dir, resume=False, verbose=0)
    # refused before the lock is taken (and before the model changes): the stale lock stays,
    # for the resumed run to take over
    assert json.loads((killed_dir / "run.lock").read_text())["pid"] == victim.pid

    resumed = _result(_start(killed_dir, epochs, -1, resumed_log))
    reference = _result(clean)

    assert resumed_log.read_text().split("\n")[0] == f"epoch {kill_epoch}"
    assert [ln for ln in resumed_log.read_text().splitlines()] == [
        f"epoch {e}" for e in range(kill_epoch, epochs)
    ]
    assert [r["epoch"] for r in _log_rows(killed_dir / "log.csv")] == [str(e) for e in range(5)]
    config = read_config(killed_dir)
    assert config["status"] == "finished" and config["resumed_from_epoch"] == kill_epoch
    assert not (killed_dir / "backup").exists()
    # same seed, same data: the resumed run ends where the uninterrupted one does (on the
    # machines measured the two final losses were bit-identical; 2 % leaves room for threads)
    assert reference["loss"] < 0.5 and reference["accuracy"] > 0.8
    assert resumed["loss"] == pytest.approx(reference["loss"], rel=0.02)
    assert resumed["val_loss"] == pytest.approx(reference["val_loss"], rel=0.02)
    assert resumed["val_accuracy"] == pytest.approx(reference["val_accuracy"], abs=0.05)


class _Interrupted(Exception):
    pass


class _InterruptAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise _Interrupted


def _interrupted_run(workdir, model=None):
    """A run stopped at the start of its third epoch: backup/ holds the states of epochs 1 and 2."""
    x, y = _xy(16)
    with pytest.raises(_Interrupted):
        fit(
            model or _tiny(),
            (x, y),
            epochs=3,
            workdir=workdir,
            verbose=0,
            tensorboard=False,
            callbacks=[_InterruptAt(2)],
        )
    assert read_config(workdir)["status"] == "running"
    return x, y


def test_corrupted_latest_backup_resumes_from_the_state_before_it(tmp_path):
    x, y = _interrupted_run(tmp_path)
    (tmp_path / "backup" / "training_metadata.json").write_text('{"epo')  # torn write
    with pytest.warns(SciconvWarning, match=r"backup.*unreadable.*resuming from epoch 1"):
        history = fit(_tiny(), (x, y), epochs=3, workdir=tmp_path, verbose=0, tensorboard=False)
    assert len(history.history["loss"]) == 2  # epochs 1 and 2
    assert [r["epoch"] for r in _log_rows(tmp_path / "log.csv")] == ["0", "1", "2"]
    assert read_config(tmp_path)["status"] == "finished"


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupted_backup_folder_starts_the_run_again_with_a_warning(tmp_path, damage):
    x, y = _interrupted_run(tmp_path)
    for file in (tmp_path / "backup").iterdir():
        data = file.read_bytes()
        file.write_bytes(b"junk" if damage == "garbage" else data[: len(data) // 2])
    with pytest.warns(SciconvWarning, match=r"backup.*discarded.*again from epoch 0"):
        history = fit(_tiny(), (x, y), epochs=2, workdir=tmp_path, verbose=0, tensorboard=False)
    assert len(history.history["loss"]) == 2
    assert [r["epoch"] for r in _log_rows(tmp_path / "log.csv")] == ["0", "1"]
    assert not (tmp_path / "backup").exists()


def test_resuming_with_another_architecture_names_the_run_folder(tmp_path):
    x, y = _interrupted_run(tmp_path)
    other = classifier((8, 8, 1), 2, filters=(8,), dense=(4,), dropout=0.0)
    # a configuration error (exit 2 from sciconv train), with the way out for the API and CLI
    fix = r"resume=False and overwrite=True \(YAML: training.resume: false, --overwrite\)"
    with pytest.raises(ConfigError, match=rf"another model.*another workdir.*{fix}") as err:
        fit(other, (x, y), epochs=3, workdir=tmp_path, verbose=0, tensorboard=False)
    assert err.value.path == str(tmp_path)
    # the interrupted run is untouched and still resumes with its own model
    history = fit(_tiny(), (x, y), epochs=3, workdir=tmp_path, verbose=0, tensorboard=False)
    assert len(history.history["loss"]) == 1
    # a run folder from before the weights fingerprint: caught when Keras restores the weights
    _interrupted_run(tmp_path / "old")
    (tmp_path / "old" / "config.json").write_text(json.dumps({"status": "running"}))
    with pytest.raises(ConfigError, match=r"another model.*weights do not fit"):
        fit(other, (x, y), epochs=3, workdir=tmp_path / "old", verbose=0, tensorboard=False)


# ------------------------------------------------------------------ data against the model (QA)


def test_fit_refuses_a_train_val_tuple_as_its_data():
    """``from_pairs``/``from_folder`` with validation_split return (train, val); handing the
    tuple on whole ended in a bare TypeError deep in fit."""
    x = np.zeros((4, 8, 8, 1), np.float32)
    y = np.zeros((4,), np.int32)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(2)
    model = classifier((8, 8, 1), 2, filters=(4,), dense=(), dropout=0.0)
    with pytest.raises(ConfigError, match=r"\(train, val\).*validation_data=val"):
        fit(model, (ds, ds), epochs=1, verbose=0)


def test_fit_refuses_targets_the_model_has_no_outputs_for():
    """A regressor with 1 output trained on 2 targets (or 3 outputs on 1) trained without a
    word: the loss broadcast one against the other. Multi-label likewise."""
    x = np.random.default_rng(0).normal(size=(8, 16, 16, 1)).astype(np.float32)
    model = regressor((16, 16, 1), 1, filters=(4,), dense=())
    with pytest.raises(ModelError, match=r"train has 2 targets per image .* outputs=2"):
        fit(model, (x, np.zeros((8, 2), np.float32)), epochs=1, verbose=0, tensorboard=False)
    model = regressor((16, 16, 1), 3, filters=(4,), dense=())
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(8, np.float32))).batch(4)
    with pytest.raises(ModelError, match=r"train has 1 targets per image .* outputs 3"):
        fit(model, ds, epochs=1, verbose=0, tensorboard=False)
    both = regressor((16, 16, 1), 2, filters=(4,), dense=(), uncertainty=True)  # 4 outputs
    fit(both, (x, np.zeros((8, 2), np.float32)), epochs=1, verbose=0, tensorboard=False)
    multi = classifier((16, 16, 1), 3, filters=(4,), dense=(), multilabel=True)
    with pytest.raises(ModelError, match=r"train has 2 labels per image .* num_classes=2"):
        fit(multi, (x, np.zeros((8, 2), np.float32)), epochs=1, verbose=0, tensorboard=False)


def test_fit_refuses_a_fixed_size_the_images_do_not_have_and_a_padding_the_unet_cannot_take():
    x = np.zeros((4, 48, 48, 1), np.float32)
    model = classifier((64, 64, 1), 2, filters=(4,), dense=())
    with pytest.raises(ModelError, match=r"train holds 48 x 48 images but .* takes 64 x 64"):
        fit(model, (x, np.zeros(4, np.int64)), epochs=1, verbose=0, tensorboard=False)
    # patches that a U-Net cannot pool evenly: refused before training, not by the model's
    # run-time check wrapped in Keras text with terminal escape codes
    unet3 = segmenter((None, None, 1), 2, depth=3, filters=2)
    patches = (np.zeros((2, 60, 60, 1), np.float32), np.zeros((2, 60, 60, 1), np.float32))
    with pytest.raises(ModelError, match=r"60 x 60 images .* multiples of 8"):
        fit(unet3, patches, epochs=1, verbose=0, tensorboard=False)
    # from_pairs pads validation images to a multiple of 16 by default: a depth-5 U-Net needs
    # 32, which failed deep inside TensorFlow after the first training epoch
    unet = segmenter((None, None, 1), 2, depth=5, filters=2)
    pairs = tf.data.Dataset.from_tensor_slices(
        (np.zeros((2, 32, 32, 1), np.float32), np.zeros((2, 32, 32, 1), np.float32))
    ).batch(2)
    val = pairs.map(lambda a, b: (a, b))
    val.pad_to_multiple = 16
    with pytest.raises(ModelError, match=r"validation_data pads .* multiple of 16 .* 32"):
        fit(unet, pairs, validation_data=val, epochs=1, verbose=0, tensorboard=False)


def test_class_weight_takes_ids_or_names_and_refuses_unknown_classes(tmp_path):
    """``{0: 1, 1: 5}`` for three classes failed inside TensorFlow (Keras sizes its table by the
    largest key), and an unknown id was ignored; now missing classes weigh 1, names work."""
    from sciconv._fit_data import check_class_weight

    model = classifier((16, 16, 1), 3, filters=(4,), dense=())
    names = ["Bright", "Rare", "fluo"]
    assert check_class_weight(model, {0: 1, 1: 5}, names) == {0: 1.0, 1: 5.0, 2: 1.0}
    assert check_class_weight(model, {"Rare": 5}, names) == {0: 1.0, 1: 5.0, 2: 1.0}
    with pytest.raises(ConfigError, match=r"unknown class\(es\) \[5, 'rare'\].*0\.\.2"):
        check_class_weight(model, {5: 2.0, "rare": 1.0}, names)
    with pytest.raises(ConfigError, match=r"class_weight\[1\] must be a number >= 0"):
        check_class_weight(model, {1: -1}, names)
    x = np.random.default_rng(1).normal(size=(9, 16, 16, 1)).astype(np.float32)
    y = np.array([0, 0, 0, 0, 0, 0, 1, 2, 2])
    history = fit(
        model, (x, y), epochs=1, verbose=0, tensorboard=False, class_weight={0: 1.0, 1: 5.0},
        workdir=tmp_path / "run",
    )  # fmt: skip
    assert np.isfinite(history.history["loss"][0])
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["class_weight"]
    assert recorded == {"0": 1.0, "1": 5.0, "2": 1.0}


def test_class_weight_is_refused_for_multilabel_and_regression_models():
    """QA: Keras weighs a multi-label sample by its first positive label (5 of the 20 samples
    carrying the weighted label got it) and a regression sample by its target rounded to a
    class id (loss 2.11 -> 39.06), silently."""
    x = np.random.default_rng(1).normal(size=(8, 16, 16, 1)).astype(np.float32)
    multi = classifier((16, 16, 1), 3, filters=(4,), dense=(), multilabel=True)
    y = (np.random.default_rng(2).random((8, 3)) > 0.5).astype(np.float32)
    with pytest.raises(ConfigError, match=r"task is 'multilabel'.*first positive label"):
        fit(multi, (x, y), epochs=1, verbose=0, class_weight={2: 10.0})
    reg = regressor((16, 16, 1), 1, filters=(4,), dense=())
    with pytest.raises(ConfigError, match=r"task is 'regression'.*rounded to a class id"):
        fit(reg, (x, np.arange(8.0)), epochs=1, verbose=0, class_weight={3: 100.0})


def test_unscaled_training_arrays_get_a_warning():
    """QA: arrays in ADU went to the network as given (recorded as raw), without a word: a
    regressor's RMSE 16.6 against 0.10 through from_arrays, a classifier's loss 143.8."""
    rng = np.random.default_rng(0)
    x = (1000 + 150 * rng.normal(size=(8, 16, 16, 1))).astype(np.float32)
    model = classifier((16, 16, 1), 2, filters=(4,), dense=())
    with pytest.warns(SciconvWarning, match=r"look like unscaled pixel values.*from_arrays"):
        fit(model, (x, np.arange(8) % 2), epochs=1, verbose=0)
    assert get_metadata(model)["normalization"] == {"method": "none"}
    z = rng.normal(size=(8, 16, 16, 1)).astype(np.float32)  # standardized: no warning,
    z[:, 6:10, 6:10] += 500.0  # bright sources in signal-to-noise units included (review)
    fit(classifier((16, 16, 1), 2, filters=(4,), dense=()), (z, np.arange(8) % 2), verbose=0)


def test_every_epoch_has_its_learning_rate_in_the_history_and_log_csv(tmp_path):
    """The rate rules wrote ``learning_rate`` only on epochs they acted on, so the history was
    one entry short (``pandas.DataFrame(history.history)`` failed) and log.csv, whose columns
    Keras fixes at the first epoch, never had it."""
    x = np.random.default_rng(0).normal(size=(16, 16, 16, 1)).astype(np.float32)
    y = x.mean(axis=(1, 2))
    model = regressor((16, 16, 1), 1, filters=(4,), dense=())
    history = fit(model, (x, y), epochs=3, verbose=0, tensorboard=False, workdir=tmp_path / "r")
    lengths = {k: len(v) for k, v in history.history.items()}
    assert lengths["learning_rate"] == lengths["loss"] == 3
    with open(tmp_path / "r" / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and all(float(r["learning_rate"]) > 0 for r in rows)
    # no validation data: no val_* columns (Keras added them all NA, val_learning_rate too)
    assert not [k for k in rows[0] if k.startswith("val_")]


def test_a_run_resumed_during_its_warm_up_reaches_the_set_rate(tmp_path):
    """Resumed after 2 of 5 warm-up epochs, the warm-up took the restored (partly warmed) rate
    as its target: 2.4e-4 ... 4e-4 instead of reaching 1e-3."""
    import keras

    x = np.random.default_rng(0).normal(size=(64, 8, 8, 1)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 2, 64)

    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    def run(callbacks=()):
        keras.utils.set_random_seed(0)
        model = classifier((8, 8, 1), 2, filters=(4,), dense=(8,))
        return fit(model, (x, y), epochs=6, warmup=20, reduce_lr=False, verbose=0, seed=0,
                   batch_size=16, workdir=tmp_path / "w", tensorboard=False,
                   callbacks=list(callbacks))  # fmt: skip

    with pytest.raises(KeyboardInterrupt):
        run([Stop()])
    # another learning rate would be ignored by the resumed optimizer (config.json recorded it)
    keras.utils.set_random_seed(0)
    other = classifier((8, 8, 1), 2, filters=(4,), dense=(8,))
    with pytest.raises(ConfigError, match=r"interrupted run with learning_rate .*asks 0\.01"):
        fit(other, (x, y), epochs=6, warmup=20, reduce_lr=False, verbose=0, seed=0,
            batch_size=16, workdir=tmp_path / "w", tensorboard=False,
            learning_rate=0.01)  # fmt: skip
    run()
    with open(tmp_path / "w" / "log.csv") as f:
        rates = [float(r["learning_rate"]) for r in csv.DictReader(f)]
    np.testing.assert_allclose(rates, [2e-4, 4e-4, 6e-4, 8e-4, 1e-3, 1e-3], rtol=1e-5)


def test_a_run_folder_that_cannot_be_made_is_a_write_error(tmp_path):
    (tmp_path / "file").write_text("in the way")
    x = np.zeros((4, 8, 8, 1), np.float32)
    model = regressor((8, 8, 1), 1, filters=(2,), dense=())
    with pytest.raises(WriteError, match=r"file/run: cannot create the run folder"):
        fit(model, (x, np.zeros(4)), epochs=1, verbose=0, workdir=tmp_path / "file" / "run")


def test_auto_verbosity_writes_plain_lines_off_a_terminal(capsys):
    """``verbose="auto"`` went to Keras as bars, which left escape codes, carriage returns and
    backspaces in redirected logs (README: plain lines in logs and CI)."""
    x = np.random.default_rng(0).normal(size=(8, 16, 16, 1)).astype(np.float32)
    model = regressor((16, 16, 1), 1, filters=(4,), dense=())
    fit(model, (x, x.mean(axis=(1, 2))), epochs=2, tensorboard=False)
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and "loss" in out
    assert not any(c in out for c in ("\x1b", "\r", "\b"))


def test_a_plain_keras_model_is_compiled_for_what_its_output_is():
    """QA: a linear Dense(1) regressor was compiled with sparse cross-entropy (loss 0, no
    learning); review: a Dense(K) logits classifier must stay a classifier, from logits."""
    inputs = keras.Input((8, 8, 1))
    flat = keras.layers.Flatten()(inputs)
    regressor_ = keras.Model(inputs, keras.layers.Dense(1)(flat))
    assert sc.models.model_task(regressor_) == "regression"
    assert default_compile_args(regressor_)["loss"] == "mse"
    logits = keras.Model(inputs, keras.layers.Dense(3)(flat))
    loss = default_compile_args(logits)["loss"]
    assert sc.models.model_task(logits) == "classification" and loss.get_config()["from_logits"]
    probs = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(flat))
    assert default_compile_args(probs)["loss"] == "sparse_categorical_crossentropy"
    multi = keras.Model(inputs, keras.layers.Dense(4, activation="sigmoid")(flat))
    assert sc.models.model_task(multi) == "multilabel"
