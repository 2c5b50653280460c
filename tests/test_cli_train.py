"""``sciconv train``: resumed runs, reproducible splits and configuration errors."""

from __future__ import annotations

import functools
from pathlib import Path

import keras
import pytest
from _helpers import assert_one_line_error, blob_images, run_cli

import sciconv.training


def _two_classes(root: Path) -> Path:
    blob_images(root / "data" / "a", 8, bright=True, seed=1)
    blob_images(root / "data" / "b", 8, bright=False, seed=2)
    return root / "data"


class _Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill")


def test_train_best_line_covers_the_whole_resumed_run(capsys, tmp_path, monkeypatch):
    """After a resume, "best.keras: epoch N" came from the resumed call's epochs only."""
    data = _two_classes(tmp_path)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"dataset: {{kind: folder, path: {data}, validation_split: 0.25, batch_size: 4, "
        "seed: 0}\n"
        "model: {type: classifier, filters: [4], dense: [], dropout: 0.0}\n"
        f"training: {{epochs: 4, workdir: {tmp_path / 'run'}, tensorboard: false, verbose: 0, "
        "seed: 0, reduce_lr: false, learning_rate: 0.01}\n"
    )
    real_fit = sciconv.training.fit

    @functools.wraps(real_fit)  # the CLI checks training keys against fit's signature
    def killed_fit(*args, **kwargs):
        return real_fit(*args, **{**kwargs, "callbacks": [_Kill()]})

    monkeypatch.setattr(sciconv.training, "fit", killed_fit)
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 130, err  # interrupted after 2 epochs
    monkeypatch.setattr(sciconv.training, "fit", real_fit)
    # make the logged best epoch one of the killed call's: its val_loss the lowest by far
    log = tmp_path / "run" / "log.csv"
    lines = log.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("val_loss")] = "1e-06"
    log.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    capsys.readouterr()
    code, out, err = run_cli(capsys, "train", cfg)
    assert code == 0, err
    assert "best.keras: epoch 1 of 4 (" in out
    assert "val_loss 1e-06" in out


def test_train_split_is_seeded_by_default_and_recorded(capsys, tmp_path):
    """Without dataset.seed, each run (and each resume) drew another validation split."""
    data = _two_classes(tmp_path)
    held = []
    for k, training_seed in enumerate(("", ", seed: 4", "")):
        cfg = tmp_path / f"run{k}.yaml"
        cfg.write_text(
            f"dataset: {{kind: folder, path: {data}, validation_split: 0.25, batch_size: 4}}\n"
            "model: {type: classifier, filters: [2], dense: []}\n"
            f"training: {{epochs: 1, workdir: {tmp_path / f'run{k}'}, tensorboard: false, "
            f"verbose: 0{training_seed}}}\n"
        )
        code, out, err = run_cli(capsys, "train", cfg)
        assert code == 0, err
        config = sciconv.training.read_config(tmp_path / f"run{k}")
        held.append(config["dataset"]["seed"])
        assert f"(seed {held[-1]})" in out
    assert held == [0, 4, 0]  # training.seed, else 0


def _config(tmp_path, dataset: str, model: str, training: str = "") -> Path:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"dataset: {{{dataset}, batch_size: 4}}\nmodel: {{{model}}}\n"
        f"training: {{epochs: 1, workdir: {tmp_path / 'run'}, tensorboard: false, verbose: 0"
        f"{training}}}\n"
    )
    return cfg


def test_train_reads_yaml_1_2_floats(capsys, tmp_path):
    """learning_rate: 1e-3 is a string to PyYAML (YAML 1.1) and was refused."""
    data = _two_classes(tmp_path)
    cfg = _config(
        tmp_path, f"kind: folder, path: {data}", "type: classifier, filters: [2], dense: []",
        ", learning_rate: 1e-3",
    )  # fmt: skip
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 0, err
    assert sciconv.training.read_config(tmp_path / "run")["learning_rate"] == 0.001


def test_train_catalog_with_a_regressor_is_regression(capsys, tmp_path):
    """label_column: flux with model type regressor made each flux value a class."""
    data = _two_classes(tmp_path)
    files = sorted(data.rglob("*.tif"))
    rows = [f"{f.relative_to(data)},{10.0 + 0.37 * i:.3f}" for i, f in enumerate(files)]
    (data / "cat.csv").write_text("file,flux\n" + "\n".join(rows) + "\n")
    cfg = _config(
        tmp_path,
        f"kind: catalog, path: {data / 'cat.csv'}, path_column: file, label_column: flux, "
        "validation_split: 0.25",
        "type: regressor, filters: [2], dense: []",
    )
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 0, err
    config = sciconv.training.read_config(tmp_path / "run")
    assert config["metadata"]["task"] == "regression"


@pytest.mark.parametrize(
    ("dataset", "model", "fragment"),
    [
        ("", "type: classifier, num_classes: 5", "build it with num_classes=2"),
        ("", "type: regressor", "the training data is for task 'classification'"),
        ("", "type: classifier, input_shape: [32, 32, 1]", "32"),
    ],
)
def test_train_model_data_mismatch_is_a_configuration_error(
    capsys, tmp_path, dataset, model, fragment
):
    """A model the configuration builds unfit for the data exited 1 (ModelError); the README
    says configuration errors exit 2."""
    data = _two_classes(tmp_path)
    cfg = _config(tmp_path, f"kind: folder, path: {data}{dataset}", f"{model}, filters: [2]")
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 2, err
    assert_one_line_error(err, f"{cfg}: training: ", fragment)


def test_train_model_input_shape_may_be_given(capsys, tmp_path):
    """configs/example_train.yaml says input_shape may be given under model; it was refused."""
    data = _two_classes(tmp_path)
    model = "type: classifier, input_shape: [16, 16, 1], filters: [2], dense: []"
    code, _, err = run_cli(capsys, "train", _config(tmp_path, f"kind: folder, path: {data}", model))
    assert code == 0, err


def test_train_resumed_with_another_model_is_a_configuration_error(capsys, tmp_path, monkeypatch):
    """An interrupted run resumed with another model exited 1 and said "pass overwrite=True"
    (the Python API's words; --overwrite alone did not start a new run either)."""
    data = _two_classes(tmp_path)
    training = ", seed: 0"
    cfg = _config(
        tmp_path, f"kind: folder, path: {data}", "type: classifier, filters: [2]", training
    )
    cfg.write_text(cfg.read_text().replace("epochs: 1", "epochs: 3"))
    real_fit = sciconv.training.fit

    @functools.wraps(real_fit)
    def killed_fit(*args, **kwargs):
        return real_fit(*args, **{**kwargs, "callbacks": [_Kill()]})

    monkeypatch.setattr(sciconv.training, "fit", killed_fit)
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 130, err
    monkeypatch.setattr(sciconv.training, "fit", real_fit)
    cfg.write_text(cfg.read_text().replace("filters: [2]", "filters: [4]"))
    for flags in ((), ("--overwrite",)):
        code, _, err = run_cli(capsys, "train", cfg, *flags)
        assert code == 2, err
        assert_one_line_error(err, "interrupted run of another model", "training.resume: false",
                              "--overwrite")  # fmt: skip
    cfg.write_text(cfg.read_text().replace("seed: 0", "seed: 0, resume: false"))
    code, _, err = run_cli(capsys, "train", cfg, "--overwrite")  # the way out it names
    assert code == 0, err


@pytest.mark.parametrize(("dataset_augment", "training", "recorded"), [
    (", augment: false", "", None),  # dataset.augment: false is no augmentation at all
    ("", "", "d4"),  # cutout files: fit's "auto" rotates and flips them
    (", augment: false", ", augment: d4", "d4"),  # training.augment, when given, decides
])  # fmt: skip
def test_train_dataset_augment_false_turns_d4_off(
    capsys, tmp_path, dataset_augment, training, recorded
):
    """dataset.augment: false still trained with D4 (fit's default for cutouts): on a clockwise
    vs anticlockwise spiral task, AUC 0.46 instead of 0.99."""
    data = _two_classes(tmp_path)
    cfg = _config(
        tmp_path,
        f"kind: folder, path: {data}{dataset_augment}",
        "type: classifier, filters: [2], dense: []",
        training,
    )
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 0, err
    assert sciconv.training.read_config(tmp_path / "run")["augment"] == recorded


def test_train_fine_tunes_the_pretrained_model_with_its_settings(capsys, tmp_path):
    """model: {init: pretrained:nuclei} fine-tunes the shipped model: its normalization, input
    transform and target become the dataset's defaults and the learning rate 1e-4 (all said),
    and the result keeps its metadata (QA: there was no way to start from a trained model)."""
    import numpy as np
    import tifffile

    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for i in range(3):  # H&E-like: dark nuclei on a light background
        lab = np.zeros((48, 48), "uint16")
        lab[6 + 3 * i : 20 + 3 * i, 8:22], lab[28:40, 24:38] = 1, 2
        rgb = 230 - rng.uniform(0, 30, (48, 48, 3)) - [120, 150, 60] * (lab > 0)[..., None]
        tifffile.imwrite(tmp_path / "images" / f"c{i}.tif", rgb.astype("uint8"))
        tifffile.imwrite(tmp_path / "masks" / f"c{i}.tif", lab)
    dataset = (
        f"kind: pairs, images: {tmp_path / 'images'}, masks: {tmp_path / 'masks'}, "
        "patch_size: 32, patches_per_image: 2, validation_split: 0.34"
    )
    cfg = _config(tmp_path, dataset, "init: 'pretrained:nuclei'", ", steps_per_epoch: 1")
    code, out, err = run_cli(capsys, "train", cfg)
    assert code == 0, err
    assert "dataset.input_transform: {'to_rgb': True" in out
    assert "dataset.target: touching (as pretrained:nuclei was trained)" in out
    assert "training.learning_rate: 0.0001 (fine-tuning pretrained:nuclei)" in out
    assert "validation loss: pretrained:nuclei " in out and ", best.keras " in out
    shipped = sciconv.models.get_metadata(sciconv.models.pretrained("nuclei"))
    tuned = sciconv.models.get_metadata(sciconv.models.load(tmp_path / "run" / "best.keras"))
    for key in ("normalization", "input_transform", "target", "postprocess", "object_size"):
        assert tuned[key] == shipped[key], key
    assert sciconv.training.read_config(tmp_path / "run")["learning_rate"] == 1e-4
    assert tuned["fine_tuned_from"] == "pretrained:nuclei"
    # init stands alone: builder keys beside it are refused; a missing model is named
    cfg = _config(tmp_path, dataset, "init: 'pretrained:nuclei', filters: 8")
    code, _, err = run_cli(capsys, "train", cfg, "--overwrite")
    assert code == 2
    assert_one_line_error(err, "unknown key 'filters' in model (init")
    cfg = _config(tmp_path, dataset, f"init: {tmp_path / 'none.keras'}")
    code, _, err = run_cli(capsys, "train", cfg, "--overwrite")
    assert code == 2
    assert_one_line_error(err, "model.init:", "model file not found")


def test_train_fine_tunes_a_plain_keras_model(capsys, tmp_path):
    """model.init on a .keras model without sciconv metadata exited 1 (recording
    fine_tuned_from needs the metadata layer), though fit trains such models (review)."""
    import numpy as np
    import tifffile

    for sub in ("img", "lab"):
        (tmp_path / sub).mkdir()
    for i in range(4):
        lab = np.zeros((32, 32), "int32")
        lab[4:12, 5:14] = 1
        tifffile.imwrite(tmp_path / "img" / f"c{i}.tif", (lab * 50 + i).astype("float32"))
        tifffile.imwrite(tmp_path / "lab" / f"c{i}.tif", lab)
    plain = keras.Sequential(
        [keras.Input((None, None, 1)), keras.layers.Conv2D(2, 3, padding="same")]
    )
    plain.save(tmp_path / "plain.keras")
    dataset = (
        f"kind: pairs, images: {tmp_path / 'img'}, masks: {tmp_path / 'lab'}, patch_size: 16, "
        "validation_split: 0.25"
    )
    cfg = _config(tmp_path, dataset, f"init: {tmp_path / 'plain.keras'}")
    code, out, err = run_cli(capsys, "train", cfg)
    assert code == 0, err
    assert "training.learning_rate: 0.0001" in out and (tmp_path / "run" / "best.keras").exists()
