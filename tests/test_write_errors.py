"""A write the disk refuses (full disk, quota, short write, read-only folder) is a ``WriteError``
naming the target (never a hidden temporary file or scratch folder) and the reason, and leaves
no partial file: TIFF, FITS products, OME-Zarr stores and block-wise label stores."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

import sciconv.io as sc_io
from sciconv import postprocess
from sciconv.errors import WriteError

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _partial_then(error: OSError):
    """A writer that leaves a partial file (or store) at its target, then fails with ``error``."""

    def fail(*args, **kwargs):
        target = Path(next(a for a in args if isinstance(a, (str, os.PathLike))))
        if target.suffix == ".zarr":
            (target / "c").mkdir(parents=True)
            (target / "c" / "0").write_bytes(b"chunk")
        else:
            target.write_bytes(b"partial")
        raise error

    return fail


def _astropy_full_disk() -> OSError:
    """What astropy raises on a full disk: a bare OSError raised while handling ENOSPC."""
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise OSError(f"Not enough space on disk: requested 9000, available 10. {exc}")  # noqa: B904
    except OSError as wrapped:
        return wrapped


def _check(info, target: Path, reason: str) -> None:
    message = str(info.value)
    assert message.startswith(f"{target}: "), message
    assert reason in message, message
    assert ".part" not in message and ".sciconv-" not in message, message


def test_short_write_of_tifffile_is_a_write_error(tmp_path, monkeypatch):
    import tifffile

    # numpy's tofile (under tifffile) reports a short write with errno None
    short = OSError("196608 requested and 153448 written")
    monkeypatch.setattr(tifffile, "imwrite", _partial_then(short))
    target = tmp_path / "out.tif"
    with pytest.raises(WriteError) as info:
        sc_io.write(target, np.zeros((4, 4), np.uint16))
    _check(info, target, "153448 of 196608 bytes")
    assert not target.exists() and _hidden(tmp_path) == []


def test_other_errno_less_os_errors_are_not_write_errors(tmp_path, monkeypatch):
    import tifffile

    monkeypatch.setattr(tifffile, "imwrite", _partial_then(OSError("cannot write mode P")))
    with pytest.raises(OSError, match="cannot write mode P") as info:
        sc_io.write(tmp_path / "out.tif", np.zeros((4, 4), np.uint16))
    assert not isinstance(info.value, WriteError)
    assert _hidden(tmp_path) == []


def test_fits_product_on_a_full_disk_names_the_target(tmp_path, monkeypatch):
    from astropy.io import fits

    monkeypatch.setattr(fits.HDUList, "writeto", _partial_then(_astropy_full_disk()))
    prob = np.random.default_rng(0).random((8, 8, 2)).astype(np.float32)
    with pytest.raises(WriteError) as info:
        postprocess.write_products(tmp_path, stem="a", prob=prob, format="fits")
    _check(info, tmp_path / "a_prob.fits", "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_ome_zarr_store_on_a_full_disk_names_the_target(tmp_path, monkeypatch):
    full = OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(sc_io, "write_ome_zarr", _partial_then(full))
    prob = np.random.default_rng(0).random((8, 8, 2)).astype(np.float32)
    with pytest.raises(WriteError) as info:
        postprocess.write_products(tmp_path, stem="a", prob=prob, format="ome-zarr")
    _check(info, tmp_path / "a.ome.zarr", "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.fixture
def read_only(monkeypatch):
    """Make a folder read-only: chmod where that binds, else (root) refuse the scratch
    folders and temporary files there as a read-only folder does."""
    folders = []

    def make(folder: Path) -> Path:
        folder.mkdir()
        folders.append(folder)
        if not ROOT:
            folder.chmod(0o555)
            return folder
        real_mkdtemp, real_mkstemp = tempfile.mkdtemp, tempfile.mkstemp

        def refuse(real):
            def call(*args, dir=None, **kwargs):
                if dir is not None and Path(dir) == folder:
                    name = folder / ".hidden.123.x.part"
                    raise PermissionError(errno.EACCES, "Permission denied", str(name))
                return real(*args, dir=dir, **kwargs)

            return call

        monkeypatch.setattr(tempfile, "mkdtemp", refuse(real_mkdtemp))
        monkeypatch.setattr(tempfile, "mkstemp", refuse(real_mkstemp))
        return folder

    yield make
    for folder in folders:
        folder.chmod(0o755)


def test_ome_zarr_store_in_a_read_only_folder_names_the_target(tmp_path, read_only):
    folder = read_only(tmp_path / "ro")
    prob = np.random.default_rng(0).random((8, 8, 2)).astype(np.float32)
    with pytest.raises(WriteError) as info:
        postprocess.write_products(folder, stem="a", prob=prob, format="ome-zarr")
    _check(info, folder / "a.ome.zarr", "Permission denied")
    assert list(folder.iterdir()) == []


def test_block_wise_store_in_a_read_only_folder_names_the_target(tmp_path, read_only):
    import keras

    from sciconv.inference import predict_instances_blocks

    folder = read_only(tmp_path / "ro")
    inputs = keras.Input((None, None, 1))
    model = keras.Model(inputs, keras.layers.Softmax()(keras.layers.Conv2D(2, 1)(inputs)))
    image = np.zeros((32, 32), np.float32)
    target = folder / "m_labels.zarr"
    with pytest.raises(WriteError) as info:
        predict_instances_blocks(
            model, image, block=16, margin=0, out=target, normalize=None, progress=False
        )
    _check(info, target, "Permission denied")
    assert list(folder.iterdir()) == []


def test_block_wise_store_on_a_full_disk_names_the_target(tmp_path, monkeypatch):
    import keras
    import zarr

    from sciconv.inference import predict_instances_blocks

    def full(self, key, value):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zarr.Array, "__setitem__", full)
    inputs = keras.Input((None, None, 1))
    init = keras.initializers.Constant([[[[-1.0, 1.0]]]])  # foreground where the pixels are > 0
    logits = keras.layers.Conv2D(2, 1, kernel_initializer=init)(inputs)
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    image = np.full((32, 32), -5.0, np.float32)
    image[4:12, 4:12] = 5.0
    target = tmp_path / "m_labels.zarr"
    with pytest.raises(WriteError) as info:
        predict_instances_blocks(
            model,
            image,
            block=16,
            margin=0,
            out=target,
            normalize=None,
            progress=False,
        )
    _check(info, target, "No space left on device")
    assert list(tmp_path.iterdir()) == []
