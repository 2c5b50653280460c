"""sciconv.models.export on a full, over-quota or read-only disk: the WriteError every other
writer gives, naming the .onnx file, and no file left; a converter failure stays a ModelError."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap

import keras
import pytest

pytest.importorskip("onnx")
pytest.importorskip("tf2onnx")

import sciconv as sc
from sciconv.errors import ModelError, WriteError


@pytest.fixture(scope="module")
def model():
    inputs = keras.Input((None, None, 1))
    return keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same")(inputs))


@pytest.mark.parametrize(
    "code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EFBIG]
)
def test_a_refused_onnx_file_is_a_write_error(tmp_path, model, monkeypatch, code):
    def export(self, filepath, **kwargs):
        with open(filepath, "wb") as fh:  # half a file, then the disk refuses
            fh.write(b"\x08\x07")
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(keras.Model, "export", export)
    path = tmp_path / "seg.onnx"
    with pytest.raises(WriteError) as caught:
        sc.models.export(model, path)
    assert not isinstance(caught.value, ModelError)
    assert str(caught.value) == f"{path}: cannot write ({os.strerror(code)}); nothing was written"
    assert sorted(tmp_path.iterdir()) == []  # neither the file nor its scratch copy


def test_a_converter_failure_stays_a_model_error(tmp_path, model, monkeypatch):
    def export(self, filepath, **kwargs):
        raise ValueError("unsupported op FooBar")

    monkeypatch.setattr(keras.Model, "export", export)
    with pytest.raises(ModelError, match=r"seg\.onnx: ONNX export failed \(ValueError: unsup"):
        sc.models.export(model, tmp_path / "seg.onnx")
    assert sorted(tmp_path.iterdir()) == []


def test_a_full_disk_is_a_write_error(tmp_path):
    """No file may grow past 4 KiB (write() gives EFBIG), in a process of its own: the QA's
    ModelError("ONNX export failed (OSError ...)")."""
    path = tmp_path / "seg.onnx"
    script = textwrap.dedent(
        f"""
        import resource, signal, keras
        import sciconv as sc
        inputs = keras.Input((None, None, 1))
        x = keras.layers.Conv2D(64, 3, padding="same")(inputs)
        model = keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same")(x))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        try:
            sc.models.export(model, {str(path)!r})
        except Exception as e:
            print(type(e).__name__, e)
        """
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.stdout.strip().splitlines()[-1:] == [
        f"WriteError {path}: cannot write (File too large); nothing was written"
    ], out.stderr[-3000:]
    assert sorted(tmp_path.iterdir()) == []
