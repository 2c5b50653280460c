"""Helpers shared by several test files (imported as ``_helpers``; not a test module)."""

from __future__ import annotations

import contextlib
import datetime
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

from sciconv import cli


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """Run ``sciconv ARGS...`` in-process; return (exit code, stdout, stderr)."""
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str, *fragments: str) -> None:
    """stderr ends in exactly one ``sciconv: error:`` line holding every fragment; no traceback."""
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("sciconv: error:")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def png_chunk(tag: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(tag + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", crc)


def png16(width: int, height: int, idat: bytes, *, ctype: int = 2) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 16, ctype, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def filtered_rows(data: np.ndarray, filters) -> bytes:
    """PNG-filter (h, w, c) uint16 rows with the given filter type per row."""
    h, w, c = data.shape
    bpp = 2 * c
    rows = data.astype(">u2").reshape(h, -1).view(np.uint8).reshape(h, -1).astype(np.int32)
    out, prev = bytearray(), np.zeros(w * bpp, np.int32)
    for y in range(h):
        cur, ftype = rows[y], filters[y % len(filters)]
        left = np.concatenate([np.zeros(bpp, np.int32), cur[:-bpp]])
        ul = np.concatenate([np.zeros(bpp, np.int32), prev[:-bpp]])
        if ftype == 0:
            pred = np.zeros_like(cur)
        elif ftype == 1:
            pred = left
        elif ftype == 2:
            pred = prev
        elif ftype == 3:
            pred = (left + prev) // 2
        else:
            p = left + prev - ul
            pa, pb, pc = abs(p - left), abs(p - prev), abs(p - ul)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, ul))
        out.append(ftype)
        out += ((cur - pred) % 256).astype(np.uint8).tobytes()
        prev = cur
    return bytes(out)


def blob_images(folder: Path, n: int, *, bright: bool, seed: int, size: int = 16) -> None:
    """``n`` float32 TIFFs of noise (10 +/- 1), each with a bright Gaussian blob when
    ``bright``: a two-class folder dataset the CLI tests train on."""
    import tifffile

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        img = rng.normal(10.0, 1.0, (size, size))
        if bright:
            cy, cx = rng.uniform(4, size - 4, 2)
            img += 50.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 4.0)
        tifffile.imwrite(folder / f"img{i:02d}.tif", img.astype(np.float32))


def two_class_folder(root: Path, names=("a", "b"), n: int = 6, stem: str = "{name}{i}") -> Path:
    """``root/<name>/`` folders of ``n`` 8x8 float32 noise TIFFs each, the first class
    at 10 +/- 1, the second at 0 +/- 1 (file names from ``stem``); returns ``root``."""
    import tifffile

    rng = np.random.default_rng(0)
    for name in names:
        (root / name).mkdir(parents=True)
        for i in range(n):
            img = rng.normal(10.0 if name == names[0] else 0.0, 1.0, (8, 8)).astype("float32")
            tifffile.imwrite(root / name / f"{stem.format(name=name, i=i)}.tif", img)
    return root


def run_python(script: str, *args, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """``script`` in a fresh interpreter (sciconv importable, TensorFlow quiet, no TF_CONFIG),
    e.g. for logical devices that must be set before TensorFlow starts; fails the test with
    its stderr unless it exits 0."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    env.pop("TF_CONFIG", None)
    proc = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


@contextlib.contextmanager
def live_process():
    """Another live process on this host, as a run holding a lock: ``(pid, started)``, the ISO
    time after it began (a lock older than its process is a reused pid's: stale)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        yield proc.pid, datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    finally:
        proc.kill()
        proc.wait()


def tan_wcs(shape=(32, 32)):
    """A TAN celestial WCS centred on an image of ``shape`` (1e-4 deg pixels, RA flipped)."""
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [10.0, -30.0]
    w.wcs.crpix = [shape[1] / 2, shape[0] / 2]
    w.wcs.cdelt = [-1e-4, 1e-4]
    return w


def threshold_model(level=0.02, **metadata):
    """A segmenter with metadata: foreground where the normalized image exceeds ``level`` (finds
    faint objects too); ``metadata`` is set on it (e.g. ``object_level=``)."""
    import keras

    from sciconv.models import attach_metadata, set_metadata

    inputs = keras.Input((None, None, 1))
    logits = keras.layers.Conv2D(
        2,
        1,
        kernel_initializer=keras.initializers.Constant([[[[-50.0, 50.0]]]]),
        bias_initializer=keras.initializers.Constant([50.0 * level, -50.0 * level]),
    )(inputs)
    model = attach_metadata(keras.Model(inputs, keras.layers.Softmax()(logits)))
    set_metadata(model, postprocess={"min_size": 3, "smooth": 0})
    metadata = {k: v for k, v in metadata.items() if v is not None}
    if metadata:
        set_metadata(model, **metadata)
    return model


def kill_after(epoch: int):
    """A Keras callback that stops ``fit`` as a kill would, after epoch ``epoch`` (0-based)."""
    import keras

    class _Kill(keras.callbacks.Callback):
        def on_epoch_end(self, e, logs=None):
            if e == epoch:
                raise KeyboardInterrupt("simulated kill")

    return _Kill()


def photutils_name(name: str) -> str:
    """A SourceCatalog property as the installed photutils spells it: ``x_centroid``,
    ``y_centroid`` and ``segment_flux_err`` are photutils 3's names (``xcentroid``, ... in the
    1.9 to 2.x releases sciconv also takes)."""
    from photutils.segmentation import SourceCatalog

    if hasattr(SourceCatalog, name):
        return name
    return {"x_centroid": "xcentroid", "y_centroid": "ycentroid"}.get(
        name, name.replace("_flux_err", "_fluxerr")
    )


def latin1_path(folder: Path, name: bytes) -> str:
    """``folder/name`` for a name of latin-1 bytes, as Python spells it (skips where the file
    system refuses such names: macOS, Windows)."""
    import pytest

    path = os.fsdecode(os.fsencode(folder) + b"/" + name)
    try:
        Path(path).write_bytes(b"")
        os.remove(path)
    except (OSError, UnicodeError):
        pytest.skip("this file system takes only UTF-8 names")
    return path
