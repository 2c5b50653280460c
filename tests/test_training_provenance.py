"""What a run folder and its models record about how they were trained (QA47 findings 5, 6).

A run folder names the data it trained on (dataset kind, absolute paths, a digest of the
files' contents), the YAML it was started from, keeps its first start time when it resumes,
and its models carry the seed, the split and the library versions. A killed and resumed
``from_pairs`` run draws the patches (and the augmentation) the uninterrupted run would have.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest
from _helpers import kill_after, run_cli

import sciconv as sc


def _pairs(root: Path, n: int = 5) -> Path:
    import tifffile

    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True)
    (root / "lab").mkdir()
    for i in range(n):
        lab = np.zeros((24, 28), "int32")
        for k in range(1, 4):
            r, c = rng.integers(2, 18), rng.integers(2, 22)
            lab[r : r + 5, c : c + 5] = k
        img = (lab > 0) * 5.0 + rng.normal(0, 1, lab.shape)
        tifffile.imwrite(root / "img" / f"c{i}.tif", img.astype("float32"))
        tifffile.imwrite(root / "lab" / f"c{i}.tif", lab)
    return root


def _segmenter():
    keras.utils.set_random_seed(0)
    return sc.models.segmenter((None, None, 1), num_classes=3, depth=1, filters=4)


def _data(root, augment=False):
    return sc.datasets.from_pairs(
        root / "img", root / "lab", patch_size=16, patches_per_image=3, batch_size=4,
        target="boundary", validation_split=0.2, seed=3, augment=augment,
    )  # fmt: skip


_FIT = dict(epochs=4, tensorboard=False, verbose=0, seed=0, reduce_lr=False, learning_rate=3e-3)


def _weights(run):
    return keras.saving.load_model(run / "last.keras", compile=False).get_weights()


@pytest.mark.parametrize("augment", [False, True])
def test_a_resumed_patch_run_is_the_uninterrupted_run(tmp_path, augment):
    """The endless patch stream restarted at its beginning on resume (QA47 #6): epochs 2-3
    saw epoch 0-1's patches again (dice 0.1644 against 0.2485)."""
    data = _pairs(tmp_path / "data")
    once, killed = tmp_path / "once", tmp_path / "killed"
    sc.training.fit(_segmenter(), *_data(data, augment), workdir=once, **_FIT)
    with pytest.raises(KeyboardInterrupt):
        sc.training.fit(
            _segmenter(), *_data(data, augment), workdir=killed, callbacks=[kill_after(1)], **_FIT
        )
    sc.training.fit(_segmenter(), *_data(data, augment), workdir=killed, **_FIT)
    a, b = sc.runs.read_log(once), sc.runs.read_log(killed)
    for key in ("loss", "val_loss", "dice"):
        np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6, err_msg=key)
    for u, v in zip(_weights(once), _weights(killed)):
        np.testing.assert_allclose(v, u, rtol=1e-5, atol=1e-6)
    config = sc.training.read_config(killed)
    assert config["resumed_from_epoch"] == 2
    assert config["resume_exact"] is True


def test_from_pairs_resume_at_continues_the_stream(tmp_path):
    data = _pairs(tmp_path / "data")
    for augment in (False, True):
        train = sc.datasets.from_pairs(
            data / "img", data / "lab", patch_size=16, patches_per_image=3, batch_size=4,
            seed=1, augment=augment,
        )  # fmt: skip
        whole = [b[0].numpy() for b in train.take(9)]
        later = [b[0].numpy() for b in train.resume_at(5).take(4)]
        for u, v in zip(whole[5:], later):
            np.testing.assert_array_equal(u, v)
        assert not np.array_equal(whole[0], whole[4])  # a new pass draws new patches
    full = sc.datasets.from_pairs(data / "img", data / "lab", batch_size=2, seed=1)
    whole = [b[1].numpy() for b in full.take(6)]
    later = [b[1].numpy() for b in full.resume_at(3).take(3)]
    for u, v in zip(whole[3:], later):
        np.testing.assert_array_equal(u, v)


def test_the_run_folder_names_the_data_and_its_contents(tmp_path):
    """config.json named no data folder and no digest of the pixels (QA47 #5)."""
    data = _pairs(tmp_path / "data")
    run = tmp_path / "run"
    sc.training.fit(_segmenter(), *_data(data), workdir=run, **{**_FIT, "epochs": 1})
    config = sc.training.read_config(run)
    source = config["dataset"]["source"]
    assert source["kind"] == "pairs"
    assert source["images"] == str((data / "img").resolve())
    assert source["masks"] == str((data / "lab").resolve())
    content = config["dataset"]["content"]
    assert content["files"] == 10 and content["method"] == "sha256"
    assert len(content["sha256"]) == 64
    # the same names with other pixels: another digest
    import tifffile

    img = tifffile.imread(data / "img" / "c0.tif")
    tifffile.imwrite(data / "img" / "c0.tif", img + 1)
    again = tmp_path / "again"
    sc.training.fit(_segmenter(), *_data(data), workdir=again, **{**_FIT, "epochs": 1})
    other = sc.training.read_config(again)["dataset"]
    assert other["split"]["sha"] == config["dataset"]["split"]["sha"]  # the same names
    assert other["content"]["sha256"] != content["sha256"]


def test_a_resumed_run_keeps_its_start_time(tmp_path):
    data = _pairs(tmp_path / "data")
    run = tmp_path / "run"
    kw = {**_FIT, "epochs": 2}
    with pytest.raises(KeyboardInterrupt):
        sc.training.fit(_segmenter(), *_data(data), workdir=run, callbacks=[kill_after(0)], **kw)
    first = sc.training.read_config(run)
    first["started"] = "2000-01-01T00:00:00+00:00"  # as if long ago
    (run / "config.json").write_text(json.dumps(first))
    sc.training.fit(_segmenter(), *_data(data), workdir=run, **kw)
    config = sc.training.read_config(run)
    assert config["started"] == "2000-01-01T00:00:00+00:00"
    assert len(config["resumed"]) == 1 and config["resumed"][0] > config["started"]


def test_the_model_carries_its_training_provenance(tmp_path):
    """best.keras had the sciconv version only: no seed, split or TF/Keras versions (QA47 #5)."""
    data = _pairs(tmp_path / "data")
    run = tmp_path / "run"
    sc.training.fit(_segmenter(), *_data(data), workdir=run, **{**_FIT, "epochs": 1})
    config = sc.training.read_config(run)
    for name in ("best.keras", "last.keras"):
        meta = sc.models.get_metadata(keras.saving.load_model(run / name, compile=False))
        training = meta["training"]
        assert training["seed"] == 0 and training["data_seed"] == 3
        assert training["split_sha"] == config["dataset"]["split"]["sha"]
        assert training["content_sha256"] == config["dataset"]["content"]["sha256"]
        for lib in ("tensorflow", "keras", "numpy", "sciconv"):
            assert training["versions"][lib] == config["versions"][lib]
        assert len(json.dumps(training)) < 1000  # small


def test_arrays_record_no_source_and_resume_exactly(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8, 8, 1)).astype("float32")
    y = x.mean(axis=(1, 2))

    def model():
        keras.utils.set_random_seed(0)
        return sc.models.regressor((8, 8, 1), filters=(2,), dense=())

    once, killed = tmp_path / "once", tmp_path / "killed"
    kw = {**_FIT, "batch_size": 8}
    sc.training.fit(model(), (x, y), workdir=once, **kw)
    with pytest.raises(KeyboardInterrupt):
        sc.training.fit(model(), (x, y), workdir=killed, callbacks=[kill_after(1)], **kw)
    sc.training.fit(model(), (x, y), workdir=killed, **kw)
    config = sc.training.read_config(killed)
    assert config["dataset"]["source"] == {"kind": "arrays"}
    assert "content" not in config["dataset"]
    assert config["resume_exact"] is True
    np.testing.assert_allclose(sc.runs.read_log(killed)["loss"], sc.runs.read_log(once)["loss"])


def test_folder_datasets_resume_exactly_and_own_pipelines_say_they_do_not(tmp_path):
    import tensorflow as tf
    from _helpers import blob_images

    blob_images(tmp_path / "data" / "a", 4, bright=True, seed=1)
    blob_images(tmp_path / "data" / "b", 4, bright=False, seed=2)
    train = sc.datasets.from_folder(tmp_path / "data", batch_size=4, seed=0)
    model = sc.models.classifier((16, 16, 1), 2, filters=(2,), dense=())
    sc.training.fit(model, train, workdir=tmp_path / "run", **{**_FIT, "epochs": 1})
    config = sc.training.read_config(tmp_path / "run")
    assert config["resume_exact"] is True
    assert "dataset.resume_at" in config["resume_note"]
    assert config["dataset"]["source"] == {
        "kind": "folder",
        "path": str((tmp_path / "data").resolve()),
    }
    assert config["dataset"]["content"]["files"] == 8
    x, y = next(iter(train.unbatch().batch(8)))
    own = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(8, seed=0).batch(4)
    model = sc.models.classifier((16, 16, 1), 2, filters=(2,), dense=())
    sc.training.fit(model, own, workdir=tmp_path / "own", **{**_FIT, "epochs": 1})
    config = sc.training.read_config(tmp_path / "own")
    assert config["resume_exact"] is False
    assert "restarts its shuffling" in config["resume_note"]


def test_cli_records_the_yaml_and_its_folder(capsys, tmp_path, monkeypatch):
    """config.json had only `command: [..., "train", "train/tiny_A.yaml"]`, a relative path
    with no working directory (QA47 #5)."""
    data = _pairs(tmp_path / "data")
    (tmp_path / "cfg").mkdir()
    text = (
        "dataset: {kind: pairs, images: ../data/img, masks: ../data/lab, patch_size: 16,\n"
        "          patches_per_image: 2, batch_size: 4, target: boundary, seed: 1}\n"
        "model: {type: segmenter, depth: 1, filters: 4}\n"
        "training: {epochs: 1, workdir: ../run, tensorboard: false, verbose: 0, seed: 0}\n"
    )
    (tmp_path / "cfg" / "tiny.yaml").write_text(text)
    monkeypatch.chdir(tmp_path / "cfg")
    code, _, err = run_cli(capsys, "train", "tiny.yaml")
    assert code == 0, err
    config = sc.training.read_config(tmp_path / "run")
    recorded = config["configuration"]
    assert recorded["path"] == str((tmp_path / "cfg" / "tiny.yaml").resolve())
    assert recorded["cwd"] == os.getcwd()
    assert recorded["text"] == text
    resolved = recorded["resolved"]["dataset"]
    assert resolved["images"] == str((data / "img").resolve())
    assert resolved["masks"] == str((data / "lab").resolve())
    assert config["dataset"]["source"]["images"] == resolved["images"]
