"""A run killed and resumed: what config.json and the CLI say about it covers the whole run."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from _helpers import kill_after, two_class_folder

import sciconv as sc


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8, 8, 1)).astype("float32")
    xv = rng.normal(size=(32, 8, 8, 1)).astype("float32")
    # validation targets of the opposite sign: val_loss gets worse as training goes on
    return (x, 10 * x.mean(axis=(1, 2))), (xv, -10 * xv.mean(axis=(1, 2)))


def _build():
    keras.utils.set_random_seed(0)
    return sc.models.regressor((8, 8, 1), filters=(4,), dense=(8,))


def test_config_best_is_over_the_whole_resumed_run(tmp_path):
    run = tmp_path / "run"
    train, val = _data()
    kw = dict(epochs=6, workdir=run, tensorboard=False, verbose=0, seed=0, learning_rate=3e-3,
              reduce_lr=False, batch_size=8)  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        sc.training.fit(_build(), train, validation_data=val, callbacks=[kill_after(2)], **kw)
    history = sc.training.fit(_build(), train, validation_data=val, **kw)
    assert len(history.history["val_loss"]) == 3  # this call ran epochs 3..5
    log = sc.runs.read_log(run)
    true_best = int(np.argmin(log["val_loss"]))
    assert true_best < 3  # in the killed call: what this call's history cannot see
    best = json.loads((run / "config.json").read_text())["best"]
    assert best["epoch"] == true_best
    assert best["val_loss"] == pytest.approx(log["val_loss"][true_best])
    assert best["loss"] == pytest.approx(log["loss"][true_best])
    assert sc.runs.best_epoch(run) == best


def _folder(root, n=6):
    return two_class_folder(root, n=n)


def test_datasets_record_the_seed_they_split_with(tmp_path):
    data = _folder(tmp_path / "data")
    train, val = sc.datasets.from_folder(data, validation_split=0.25, batch_size=4)
    assert isinstance(train.seed, int) and val.seed == train.seed  # drawn, and said
    _, held = sc.datasets.from_folder(data, validation_split=0.25, seed=train.seed)
    assert held.file_paths == val.file_paths
    assert sc.datasets.from_folder(data, seed=5).seed == 5


def test_resume_refuses_a_dataset_split_with_another_seed(tmp_path):
    data, run = _folder(tmp_path / "data"), tmp_path / "run"

    def build(seed):
        keras.utils.set_random_seed(0)
        model = sc.models.classifier((8, 8, 1), 2, filters=(2,), dense=())
        return model, sc.datasets.from_folder(data, validation_split=0.25, batch_size=4, seed=seed)

    kw = dict(epochs=3, workdir=run, tensorboard=False, verbose=0, reduce_lr=False)
    model, (train, val) = build(None)
    with pytest.raises(KeyboardInterrupt):
        sc.training.fit(model, train, validation_data=val, callbacks=[kill_after(0)], **kw)
    first = train.seed
    assert json.loads((run / "config.json").read_text())["dataset"]["seed"] == first
    model, (train, val) = build(first + 1)
    with pytest.raises(sc.errors.ConfigError, match=rf"with seed {first}.*seed={first}"):
        sc.training.fit(model, train, validation_data=val, **kw)
    model, (train, val) = build(first)  # the same split: resumes
    history = sc.training.fit(model, train, validation_data=val, **kw)
    assert len(history.history["loss"]) == 2


# ------------------------------------------------------------- the split of a resumed run (QA)


def _interrupt(model, train, val, run):
    kw = dict(epochs=3, workdir=run, tensorboard=False, verbose=0, reduce_lr=False)
    with pytest.raises(KeyboardInterrupt):
        sc.training.fit(model, train, validation_data=val, callbacks=[kill_after(0)], **kw)
    return kw


def _classifier():
    keras.utils.set_random_seed(0)
    return sc.models.classifier((8, 8, 1), 2, filters=(2,), dense=())


def test_resume_refuses_another_validation_split(tmp_path):
    data, run = _folder(tmp_path / "data"), tmp_path / "run"
    kw = _interrupt(
        _classifier(), *sc.datasets.from_folder(data, validation_split=0.34, seed=0), run
    )
    train, val = sc.datasets.from_folder(data, validation_split=0.5, seed=0)
    with pytest.raises(
        sc.errors.ConfigError,
        match=r"validation_split 0\.34 -> 0\.5, files held out for validation 4 -> 6\)",
    ) as err:
        sc.training.fit(_classifier(), train, validation_data=val, **kw)
    assert err.value.path == str(run) and "overwrite=True" in str(err.value)
    assert json.loads((run / "config.json").read_text())["dataset"]["split"]["validation"] == 4
    # the same split resumes, from a moved data folder too (file names are kept relative)
    moved = data.rename(tmp_path / "moved")
    train, val = sc.datasets.from_folder(moved, validation_split=0.34, seed=0)
    history = sc.training.fit(_classifier(), train, validation_data=val, **kw)
    assert len(history.history["loss"]) == 2


def test_resume_refuses_files_added_to_the_data_folders(tmp_path):
    import tifffile

    data, run = _folder(tmp_path / "data"), tmp_path / "run"
    kw = _interrupt(
        _classifier(), *sc.datasets.from_folder(data, validation_split=0.25, seed=0), run
    )
    for i in range(3):  # a sync job adds images before the resume
        tifffile.imwrite(data / "a" / f"new{i}.tif", np.full((8, 8), 10.0, np.float32))
    train, val = sc.datasets.from_folder(data, validation_split=0.25, seed=0)
    with pytest.raises(sc.errors.ConfigError, match=r"3 files added to the data, 12 -> 15 files"):
        sc.training.fit(_classifier(), train, validation_data=val, **kw)
    # one replaced by another of another name: the same count, other files
    for i in range(3):
        (data / "a" / f"new{i}.tif").unlink()
    (data / "b" / "b0.tif").rename(data / "b" / "b9.tif")
    train, val = sc.datasets.from_folder(data, validation_split=0.25, seed=0)
    with pytest.raises(sc.errors.ConfigError, match=r"the same number of other files: renamed"):
        sc.training.fit(_classifier(), train, validation_data=val, **kw)


def test_resume_refuses_image_pairs_added_without_validation(tmp_path):
    import tifffile

    run = tmp_path / "run"
    rng = np.random.default_rng(0)
    for folder in ("img", "lab"):
        (tmp_path / folder).mkdir()

    def add(i):
        lab = np.zeros((16, 16), np.uint16)
        lab[4:10, 4:10] = 1
        tifffile.imwrite(tmp_path / "lab" / f"p{i}.tif", lab)
        tifffile.imwrite(tmp_path / "img" / f"p{i}.tif", rng.normal(size=(16, 16)).astype("f4"))

    for i in range(3):
        add(i)

    def build():
        keras.utils.set_random_seed(0)
        model = sc.models.segmenter((None, None, 1), depth=1, filters=2)
        return model, sc.datasets.from_pairs(tmp_path / "img", tmp_path / "lab", seed=0)

    kw = _interrupt(*build(), None, run)
    add(3)
    with pytest.raises(sc.errors.ConfigError, match=r"1 file added to the training data, 3 -> 4"):
        sc.training.fit(*build(), **kw)


def test_resume_refuses_other_arrays(tmp_path):
    run = tmp_path / "run"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 8, 8, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int64")
    kw = _interrupt(_classifier(), (x[:12], y[:12]), (x[12:], y[12:]), run)
    with pytest.raises(sc.errors.ConfigError, match=r"4 samples added to the data, 16 -> 20"):
        more = (np.concatenate([x[:12], x[:4]]), np.concatenate([y[:12], y[:4]]))
        sc.training.fit(_classifier(), more, validation_data=(x[12:], y[12:]), **kw)
    with pytest.raises(sc.errors.ConfigError, match=r"samples held out for validation 4 -> 8"):
        sc.training.fit(_classifier(), (x[:8], y[:8]), validation_data=(x[8:], y[8:]), **kw)
    history = sc.training.fit(_classifier(), (x[:12], y[:12]), (x[12:], y[12:]), **kw)
    assert len(history.history["loss"]) == 2


# ------------------------------------------------- an interrupted backup write (SIGTERM, Ctrl-C)


def _backup_kw(run):
    return dict(epochs=5, workdir=run, tensorboard=False, verbose=0, seed=0, reduce_lr=False,
                batch_size=8)  # fmt: skip


@pytest.mark.parametrize("how", ["half_file", "inside_keras"])
def test_an_interrupted_backup_write_keeps_the_previous_backup(tmp_path, monkeypatch, how):
    """SIGTERM or Ctrl-C while Keras wrote backup/latest.weights.h5 in place left a truncated
    file (93 KB of 493 KB) that looked complete: the rerun refused it as "another model"."""
    run, (train, _) = tmp_path / "run", _data()
    backup = run / "backup"
    real_save_weights = keras.Model.save_weights
    real_dense_save = keras.layers.Dense.save_own_variables
    seen: dict = {"saves": 0, "armed": False}

    def save_weights(self, filepath, *args, **kwargs):
        seen["saves"] += 1
        if seen["saves"] != 3:  # the backup of the third epoch is interrupted
            return real_save_weights(self, filepath, *args, **kwargs)
        seen["before"] = (backup / "latest.weights.h5").read_bytes()
        if how == "half_file":
            real_save_weights(self, filepath, *args, **kwargs)
            data = open(filepath, "rb").read()
            with open(filepath, "wb") as fh:
                fh.write(data[: len(data) // 2])
            raise KeyboardInterrupt("simulated SIGTERM half-way through the write")
        seen["armed"] = True  # the HDF5 file is open and partly written when it raises
        try:
            return real_save_weights(self, filepath, *args, **kwargs)
        finally:
            seen["armed"] = False

    def dense_save(self, store):
        if seen["armed"]:
            raise KeyboardInterrupt("simulated SIGTERM in the middle of Keras' write")
        return real_dense_save(self, store)

    monkeypatch.setattr(keras.Model, "save_weights", save_weights)
    monkeypatch.setattr(keras.layers.Dense, "save_own_variables", dense_save)
    with pytest.raises(KeyboardInterrupt, match="simulated"):
        sc.training.fit(_build(), train, **_backup_kw(run))
    monkeypatch.undo()

    assert (backup / "latest.weights.h5").read_bytes() == seen["before"]  # intact
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 2
    assert json.loads((backup / "training_metadata.json.bkp").read_text())["epoch"] == 1
    assert not [p.name for p in backup.iterdir() if p.name.startswith(".")]  # no partial file
    assert not (run / "run.lock").exists()
    history = sc.training.fit(_build(), train, **_backup_kw(run))  # no warning: an error here
    assert len(history.history["loss"]) == 3  # epochs 2, 3, 4
    assert sc.runs.read_log(run)["epoch"].tolist() == [0, 1, 2, 3, 4]
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "finished" and config["resumed_from_epoch"] == 2


def _interrupted(run, after_epoch=2):
    train, _ = _data()
    with pytest.raises(KeyboardInterrupt):
        sc.training.fit(_build(), train, callbacks=[kill_after(after_epoch)], **_backup_kw(run))
    return train


def _tear(path):
    """Drop the last layer's weights from an HDF5 weights file: it reads back, but is not
    whole (what an exception in the middle of Keras' write left)."""
    import h5py

    with h5py.File(path, "r+") as h5:
        layers = [name for name in sorted(h5["layers"]) if len(h5["layers"][name]["vars"])]
        del h5["layers"][layers[-1]]


def test_a_backup_that_does_not_load_falls_back_to_its_previous_copy(tmp_path):
    run = tmp_path / "run"
    train = _interrupted(run)  # backup: epoch 3 (latest), epoch 2 (.bkp)
    _tear(run / "backup" / "latest.weights.h5")
    with pytest.warns(
        sc.errors.SciconvWarning, match=r"latest\.weights\.h5.*resuming from epoch 2"
    ):
        history = sc.training.fit(_build(), train, **_backup_kw(run))
    assert len(history.history["loss"]) == 3  # epochs 2, 3, 4
    assert sc.runs.read_log(run)["epoch"].tolist() == [0, 1, 2, 3, 4]
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "finished" and config["resumed_from_epoch"] == 2


def test_a_backup_whose_copies_both_fail_is_an_error_naming_the_file(tmp_path):
    run = tmp_path / "run"
    train = _interrupted(run)
    for name in ("latest.weights.h5", "latest.weights.h5.bkp"):
        _tear(run / "backup" / name)
    with pytest.raises(sc.errors.SciconvError, match=r"latest\.weights\.h5") as err:
        sc.training.fit(_build(), train, **_backup_kw(run))
    assert "another model" not in str(err.value)
    assert "resume=False and overwrite=True" in str(err.value)
    assert not (run / "run.lock").exists()


def test_a_run_stopped_in_its_first_backup_starts_again_without_a_warning(tmp_path, monkeypatch):
    """Stopped in the middle of its first backup, a run leaves only partial files in backup/:
    nothing to resume from, and nothing damaged to warn about."""
    run, (train, _) = tmp_path / "run", _data()
    real_save_weights = keras.Model.save_weights

    def save_weights(self, filepath, *args, **kwargs):
        real_save_weights(self, filepath, *args, **kwargs)
        raise KeyboardInterrupt("simulated SIGTERM at the end of the write")

    monkeypatch.setattr(keras.Model, "save_weights", save_weights)
    with pytest.raises(KeyboardInterrupt, match="simulated"):
        sc.training.fit(_build(), train, **_backup_kw(run))
    monkeypatch.undo()
    assert not [p for p in (run / "backup").iterdir() if not p.name.startswith(".")]
    history = sc.training.fit(_build(), train, **_backup_kw(run))  # no warning: an error here
    assert len(history.history["loss"]) == 5
    assert sc.runs.read_log(run)["epoch"].tolist() == [0, 1, 2, 3, 4]
    assert json.loads((run / "config.json").read_text())["resumed_from_epoch"] is None


# ------------------------- a killed and resumed run trains on the batches of an uninterrupted one


def _resumable_data(kind, root):
    """Training (and validation) data that draw random crops, shuffles and D4 moves."""
    if kind == "arrays":
        rng = np.random.default_rng(0)
        x = rng.normal(size=(20, 6, 6, 1)).astype("float32")
        return ((x, (x.mean(axis=(1, 2, 3)) > 0).astype("int64")),), {"augment": "d4"}
    data = root if (root / "a").exists() else _folder(root)
    cache = {"folder": True, "folder_lazy": False}[kind]
    split = sc.datasets.from_folder(
        data, image_size=6, size_policy="crop", validation_split=0.25, batch_size=4, seed=1,
        augment=True, cache=cache,
    )  # fmt: skip
    return split, {}  # fit's augment="auto": a D4 move of its own on these cutout files


@pytest.mark.parametrize("kind", ["folder", "folder_lazy", "arrays"])
def test_a_resumed_run_draws_the_batches_of_the_uninterrupted_run(tmp_path, kind):
    """from_folder/from_catalog/from_arrays datasets and fit's own augmentation restarted their
    random streams on resume (QA: log.csv differed from the uninterrupted run's)."""
    once, killed, data = tmp_path / "once", tmp_path / "killed", tmp_path / "data"

    def run(workdir, **extra):
        keras.utils.set_random_seed(0)
        model = sc.models.classifier((6, 6, 1), 2, filters=(2,), dense=())
        split, kw = _resumable_data(kind, data)
        kw.update(epochs=4, workdir=workdir, tensorboard=False, verbose=0, seed=0,
                  reduce_lr=False, learning_rate=3e-2, batch_size=4, **extra)  # fmt: skip
        return sc.training.fit(model, *split, **kw)

    run(once)
    with pytest.raises(KeyboardInterrupt):
        run(killed, callbacks=[kill_after(1)])
    run(killed)
    a, b = sc.runs.read_log(once), sc.runs.read_log(killed)
    assert b["epoch"].tolist() == [0, 1, 2, 3]
    for key in [k for k in a if k.endswith("loss") or k.endswith("accuracy")]:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6, err_msg=key)
    load = keras.saving.load_model
    for u, v in zip(
        load(once / "last.keras").get_weights(), load(killed / "last.keras").get_weights()
    ):
        np.testing.assert_allclose(v, u, rtol=1e-5, atol=1e-6)
    config = sc.training.read_config(killed)
    assert config["resumed_from_epoch"] == 2 and config["resume_exact"] is True
    assert config["augment"] == "d4"
