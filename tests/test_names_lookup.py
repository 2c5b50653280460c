"""Names as users type them: NFC names of NFD folders (copied from a Mac), catalog CSVs saved
by Excel in a German or French locale, and YAML aliases that expand without bound (QA round
53)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest
import yaml
from _helpers import assert_one_line_error, run_cli
from PIL import Image

import sciconv as sc
from sciconv._cli_predict_plan import expand_inputs
from sciconv._cli_train import _unique_key_loader, load_config
from sciconv.errors import ConfigError, DatasetError

NFC = unicodedata.normalize("NFC", "Daten_Größe")
NFD = unicodedata.normalize("NFD", "Daten_Größe")


def _png(path: Path, seed: int, *, mask: bool = False) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 2, (16, 16)) if mask else rng.random((16, 16)) * 255
    Image.fromarray(pixels.astype("u1")).save(path, format="PNG")


@pytest.fixture
def mac_folder(tmp_path, monkeypatch):
    """``Daten_Größe`` spelled NFD on disk, with two class folders of 5 images each; the
    test's working folder is its parent."""
    for c, cls in enumerate(("spiral", "elliptical")):
        (tmp_path / NFD / cls).mkdir(parents=True)
        for i in range(5):
            _png(tmp_path / NFD / cls / f"g{i}.png", 10 * c + i)
    monkeypatch.chdir(tmp_path)
    if Path(NFC).exists():  # macOS: the file system folds the two spellings itself
        pytest.skip("this file system folds Unicode normalization")
    return tmp_path


def test_from_folder_finds_a_folder_typed_in_nfc_that_is_nfd_on_disk(mac_folder):
    train, val = sc.datasets.from_folder(NFC, image_size=16, validation_split=0.2, seed=0)
    assert train.class_names == ["elliptical", "spiral"]
    assert len(train.file_paths) + len(val.file_paths) == 10
    assert all(NFD in p for p in train.file_paths)


def test_from_pairs_finds_folders_typed_in_nfc(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for side in ("Bilder_Größe", "Masken_Größe"):
        (tmp_path / unicodedata.normalize("NFD", side)).mkdir()
    for i in range(3):
        _png(tmp_path / unicodedata.normalize("NFD", "Bilder_Größe") / f"c{i}.png", i)
        _png(tmp_path / unicodedata.normalize("NFD", "Masken_Größe") / f"c{i}.png", i, mask=True)
    ds = sc.datasets.from_pairs(
        unicodedata.normalize("NFC", "Bilder_Größe"),
        [unicodedata.normalize("NFC", f"Masken_Größe/c{i}.png") for i in range(3)],
        batch_size=3,
    )
    x = next(iter(ds))[0]
    assert tuple(x.shape)[:3] == (3, 16, 16)


def test_predict_inputs_typed_in_nfc_are_found(mac_folder):
    found = expand_inputs([f"{NFC}/spiral", f"{NFC}/elliptical/g0.png"])
    assert len(found) == 6 and all(NFD in str(p) for p in found)


def test_train_config_path_typed_in_nfc_is_found(mac_folder, capsys):
    cfg = mac_folder / "cfg.yaml"
    cfg.write_text(
        f'dataset: {{kind: folder, path: "{NFC}", image_size: [16, 16], validation_split: 0.2, '
        "batch_size: 4}\nmodel: {type: classifier, filters: [4], dense: []}\n"
        "training: {epochs: 1, workdir: run, tensorboard: false, verbose: 0}\n",
        encoding="utf-8",
    )
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 0, err
    assert (mac_folder / "run" / "best.keras").is_file()


def _images(folder: Path, n: int = 4) -> None:
    for i in range(n):
        _png(folder / f"g{i}.png", i)


def test_catalog_saved_semicolon_separated_by_excel_is_read(tmp_path):
    _images(tmp_path)
    (tmp_path / "labels.csv").write_text(
        "path;label\n"
        + "".join(f"g{i}.png;{'Spirale' if i % 2 else 'Ellipse'}\n" for i in range(4)),
        encoding="utf-8",
    )
    ds = sc.datasets.from_catalog(tmp_path / "labels.csv", label_column="label", image_size=16)
    assert ds.class_names == ["Ellipse", "Spirale"]
    assert len(ds.file_paths) == 4


def test_catalog_with_decimal_commas_says_so(tmp_path):
    _images(tmp_path)
    (tmp_path / "z.csv").write_text(
        "path;z\n" + "".join(f"g{i}.png;0,{i + 1}\n" for i in range(4)), encoding="utf-8"
    )
    with pytest.raises(DatasetError, match=r"z\.csv: line 2, .*'0,1'.*decimal point"):
        sc.datasets.from_catalog(
            tmp_path / "z.csv", label_column="z", task="regression", image_size=16
        )


def test_catalog_in_cp1252_names_the_line_and_the_way_out(tmp_path):
    _images(tmp_path)
    text = "path,label\ng0.png,Galaxie_a\ng1.png,Galaxie_ä\ng2.png,Galaxie_ö\n"
    (tmp_path / "labels.csv").write_bytes(text.encode("cp1252"))
    with pytest.raises(DatasetError) as info:
        sc.datasets.from_catalog(tmp_path / "labels.csv", label_column="label", image_size=16)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'labels.csv'}: not a UTF-8 text CSV (line 3: byte 0xe4")
    assert '"CSV UTF-8"' in message


def _augment_config(tmp_path: Path, augment: list[str]) -> Path:
    cfg = tmp_path / "laughs.yaml"
    lines = ["dataset:", "  kind: folder", "  path: data", "  augment:", *augment]
    cfg.write_text("\n".join([*lines, "model: {type: classifier}", ""]))
    return cfg


def test_config_aliases_expanding_without_bound_are_refused_naming_the_file(tmp_path):
    levels = ["    - &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 8):  # 9**7 = 4.8 million strings (the QA file had 9**10)
        refs = ", ".join([f"*x{i - 1}"] * 9)
        levels.append(f"    - &x{i} [{refs}]")
    cfg = _augment_config(tmp_path, levels)
    with pytest.raises(ConfigError, match=r"anchors and aliases .* expand to over") as info:
        load_config(cfg)
    assert info.value.path == str(cfg)
    assert len(str(info.value)) < 500


def test_config_alias_holding_itself_is_refused(tmp_path):
    cfg = _augment_config(tmp_path, ["    - &x [*x]"])
    with pytest.raises(ConfigError, match="a value that holds itself"):
        load_config(cfg)


def test_config_aliases_within_bound_load_as_before():
    text = "a: &s [16, 16]\nb: *s\nc: {x: *s, y: *s}\n"
    loaded = yaml.load(text, Loader=_unique_key_loader(yaml, len(text)))
    assert loaded == {"a": [16, 16], "b": [16, 16], "c": {"x": [16, 16], "y": [16, 16]}}


def test_cli_train_refuses_an_alias_bomb_in_one_line(tmp_path, capsys):
    levels = ["    - &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"    - &x{i} [{', '.join([f'*x{i - 1}'] * 9)}]" for i in range(1, 8)]
    cfg = _augment_config(tmp_path, levels)
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 2
    assert_one_line_error(err, str(cfg), "anchors and aliases")


def test_bad_augment_value_is_shown_bounded():
    # a YAML alias tree under dataset.augment can be large: the message shows its start only
    from sciconv.datasets._validate import validate_augment

    nested = [["x" * 1000] * 50] * 50
    with pytest.raises(ConfigError, match=r"augment must be True, False or a dict") as info:
        validate_augment(nested)
    assert len(str(info.value)) < 1000  # 2.5 MB unbounded
    assert "xxxx" in str(info.value) and "..." in str(info.value)
