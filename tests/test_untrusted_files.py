"""FIFOs and devices where a regular file is expected (QA 53, finding 7): refused at once with an
error naming the file, never opened for reading (a FIFO would block for ever, /dev/zero would be
read until memory runs out)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

import sciconv as sc
from sciconv.errors import ConfigError, DatasetError
from sciconv.runs import read_config

pytestmark = pytest.mark.timeout(60)  # a FIFO opened for reading would block for ever


def _competition_layout(tmp_path):
    root = tmp_path / "stage1_train"
    (root / "a" / "images").mkdir(parents=True)
    (root / "a" / "masks").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "a" / "images" / "a.png")
    mask = np.zeros((8, 8), np.uint8)
    mask[2:5, 2:5] = 255
    Image.fromarray(mask).save(root / "a" / "masks" / "m0.png")
    return root


@pytest.mark.parametrize("odd", ["fifo", "dev_zero"])
def test_dsb2018_local_competition_layout_refuses_fifo_and_device(tmp_path, odd):
    root = _competition_layout(tmp_path)
    _, labels, ids = sc.fetch.load("dsb2018_local", path=tmp_path)
    assert ids == ["a"] and int(labels[0].max()) == 1 and int((labels[0] > 0).sum()) == 9
    member = root / "a" / "masks" / "m1.png"
    if odd == "fifo":
        os.mkfifo(member)
    else:
        member.symlink_to("/dev/zero")
    with pytest.raises(DatasetError, match="not a regular file") as err:
        sc.fetch.load("dsb2018_local", path=tmp_path)
    assert str(member) in str(err.value)


def test_dsb2018_local_own_layout_names_fifo(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "images" / "a.png")
    import tifffile

    tifffile.imwrite(tmp_path / "labels" / "a.tif", np.ones((8, 8), np.int32))
    os.mkfifo(tmp_path / "images" / "b.png")
    with pytest.raises(DatasetError, match="not a regular file") as err:
        sc.fetch.load("dsb2018_local", path=tmp_path)
    assert str(tmp_path / "images" / "b.png") in str(err.value)


@pytest.mark.parametrize("odd", ["fifo", "dev_zero"])
def test_read_config_refuses_fifo_and_device(tmp_path, odd):
    path = tmp_path / "config.json"
    if odd == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match="not a regular file") as err:
        read_config(tmp_path)
    assert str(path) in str(err.value)


def test_read_config_reads_a_regular_file_and_bounds_it(tmp_path, monkeypatch):
    from sciconv import runs

    (tmp_path / "config.json").write_text(json.dumps({"status": "finished", "epochs_done": 3}))
    assert read_config(tmp_path)["epochs_done"] == 3
    monkeypatch.setattr(runs, "MAX_CONFIG_BYTES", 10)
    with pytest.raises(ConfigError, match="over the 10-byte limit"):
        read_config(tmp_path)


@pytest.mark.parametrize("name", ["../../escaped.txt", "/abs/escaped.txt", "a/../../escaped.txt"])
def test_archive_member_with_unsafe_name_refused_by_name(tmp_path, name):
    import zipfile

    from sciconv._archive import zip_member_problem
    from sciconv._unpack import extract_checked
    from sciconv.errors import DownloadError

    archive = tmp_path / "dl" / "set.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok/a.txt", "1")
        zf.writestr(name, "2")
    with zipfile.ZipFile(archive) as zf:  # what the cached-archive check sees first
        assert f"member {name!r} has an unsafe name" in zip_member_problem(zf)
    scratch = tmp_path / "dl" / "scratch"
    with pytest.raises(DownloadError, match="unsafe name") as err:
        extract_checked(archive, scratch, what="the test archive")
    assert str(archive) in str(err.value) and name in str(err.value)
    assert not scratch.exists() and not list(tmp_path.rglob("escaped.txt"))
