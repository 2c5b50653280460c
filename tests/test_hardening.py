"""Attack and fault cases of issue 15: hostile model files, zip bombs, hostile PNGs, races."""

from __future__ import annotations

import copy
import json
import os
import threading
import time
import tracemalloc
import zipfile
import zlib

import keras
import numpy as np
import pytest
from _helpers import filtered_rows, png16

import sciconv.io as sc_io
import sciconv.models.loading as loading
from sciconv.errors import InvalidImageError, ModelError, UnsafeModelError
from sciconv.models import classifier, load

# --------------------------------------------------------------------------- hostile .keras files


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.keras"
    classifier((16, 16, 1), 2, filters=(4,), dense=()).save(path)
    return path


def _with_config(src, dst, edit):
    """Copy a .keras file, passing its config.json through ``edit``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            zout.writestr(name, data)
    return dst


def _set_activation(obj):
    def edit(config):
        for layer in config["config"]["layers"]:
            if "activation" in layer.get("config", {}):
                layer["config"]["activation"] = copy.deepcopy(obj)
                return
        raise AssertionError("no layer with an activation")

    return edit


HOSTILE = {
    "os.system": {"module": "os", "class_name": "system", "config": {}, "registered_name": None},
    "builtins.eval": {"module": "builtins", "class_name": "eval", "config": "1"},
    "keras.utils.get_file": {
        "module": "keras.utils",
        "class_name": "get_file",
        "config": {"fname": "x", "origin": "http://127.0.0.1:9/x"},
        "registered_name": "get_file",
    },
    "function os.system": {
        "module": "os",
        "class_name": "function",
        "config": "system",
        "registered_name": "function",
    },
    "function keras.utils.get_file": {
        "module": "keras.utils",
        "class_name": "function",
        "config": "get_file",
        "registered_name": "function",
    },
    "sciconv.fetch.download": {
        "module": "sciconv.fetch",
        "class_name": "function",
        "config": "download",
        "registered_name": "function",
    },
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_non_keras_callable_is_refused_never_rebuilt(tmp_path, saved_model, name):
    # before issue 15 these loaded: Keras refused them, and sciconv rebuilt the model from its
    # metadata because the error text lacked "safe_mode"
    path = _with_config(saved_model, tmp_path / "hostile.keras", _set_activation(HOSTILE[name]))
    with pytest.raises(UnsafeModelError, match=r"hostile\.keras: refusing to load") as info:
        load(path)
    assert name.split()[-1] in str(info.value)


def test_unknown_class_is_a_model_error_not_a_rebuild(tmp_path, saved_model):
    unknown = {"module": None, "class_name": "NoSuchThing", "config": {}, "registered_name": None}
    path = _with_config(saved_model, tmp_path / "unknown.keras", _set_activation(unknown))
    with pytest.raises(ModelError, match=r"unknown\.keras: .*does not know.*NoSuchThing"):
        load(path)


def _future_layer(config):
    """The metadata layer renamed as a sciconv layer this installation lacks (a newer one's)."""
    for layer in config["config"]["layers"]:
        if layer.get("registered_name") == "sciconv>SciconvMetadata":
            layer["class_name"] = "FutureLayer"
            layer["registered_name"] = "sciconv>FutureLayer"
            return
    raise AssertionError("no sciconv layer")


@pytest.mark.parametrize("trust", [False, True])
def test_a_model_from_a_newer_sciconv_says_so(tmp_path, saved_model, trust):
    # compat QA: "can run arbitrary Python code ... pass trust=True", then with trust=True
    # "import the package that registers it" (sciconv itself)
    path = _with_config(saved_model, tmp_path / "newer.keras", _future_layer)
    before = path.read_bytes()
    with pytest.raises(ModelError, match=r"newer\.keras: written by a newer sciconv") as info:
        load(path, trust=trust)
    assert path.read_bytes() == before
    assert "sciconv.models.layers.FutureLayer" in str(info.value)
    assert not isinstance(info.value, UnsafeModelError)


def test_keras_security_refusal_is_an_unsafe_model_error(tmp_path, saved_model, monkeypatch):
    # even where sciconv's own scan lets a file through, a Keras refusal is never a rebuild
    monkeypatch.setattr(loading, "_find_unsafe", lambda config: None)
    path = _with_config(
        saved_model, tmp_path / "h.keras", _set_activation(HOSTILE["keras.utils.get_file"])
    )
    with pytest.raises(UnsafeModelError, match="for security"):
        load(path)


def test_keras_3_12s_wording_of_a_security_refusal_is_one():
    """keras 3.12 refuses ``keras.utils.get_file`` in a config saying functions "are not allowed
    during deserialization" (later releases: "disallowed"): it was reported as a model that
    cannot be built (QA floors), not as the security refusal it is."""
    said = TypeError("Error when deserializing class 'Conv2D'")
    said.__cause__ = ValueError(
        "Cannot deserialize `keras.utils.get_file`, loading functions are not allowed during "
        "deserialization"
    )
    assert loading._classify_keras_error(said) == "unsafe"


def test_registered_custom_objects_still_load(tmp_path):
    @keras.saving.register_keras_serializable(package="sciconv_test_hardening")
    class Twice(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    inputs = keras.Input((3,))
    keras.Model(inputs, Twice()(inputs)).save(tmp_path / "custom.keras")
    model = load(tmp_path / "custom.keras")
    assert model.layers[-1].__class__ is Twice


# --------------------------------------------------------------------------- zip bombs


def _zip_with(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_model_config_bomb_is_refused_before_reading(tmp_path, saved_model, monkeypatch):
    # a small config.json declared bigger than the (lowered) cap: refused from the directory
    monkeypatch.setattr(loading, "MAX_CONFIG_BYTES", 1000)
    with pytest.raises(ModelError, match=r"config\.json declares [\d,]+ bytes, over"):
        load(saved_model)


def test_model_bomb_ratio_is_refused(tmp_path, saved_model):
    with zipfile.ZipFile(saved_model) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["model.weights.h5"] = members["model.weights.h5"] + b"\0" * (3 * 2**20)
    bomb = _zip_with(tmp_path / "bomb.keras", members, zipfile.ZIP_DEFLATED)
    with pytest.raises(ModelError, match=r"model\.weights\.h5' expands [\d,]+-fold"):
        load(bomb)


def test_model_total_size_is_capped(tmp_path, saved_model, monkeypatch):
    monkeypatch.setattr(loading, "MAX_MODEL_BYTES", 10_000)
    with pytest.raises(ModelError, match=r"declare [\d,]+ bytes in all, over"):
        load(saved_model)


# --------------------------------------------------------------------------- special files


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_model_path_that_is_a_fifo_is_refused_not_blocking(tmp_path):
    fifo = tmp_path / "pipe.keras"
    os.mkfifo(fifo)
    outcome = []

    def attempt():
        try:
            load(fifo)
        except ModelError as err:
            outcome.append(err)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(30)
    if worker.is_alive():  # unblock the reader opening the FIFO, then fail
        with open(fifo, "wb"):
            pass
        pytest.fail("sc.models.load blocked on a FIFO")
    assert outcome and "pipe.keras: is not a regular file" in str(outcome[0])


# --------------------------------------------------------------------------- hostile PNG files


@pytest.mark.parametrize("filters", [(4,), (3,), (3, 4, 0, 1, 2), (1, 2)])
@pytest.mark.parametrize("channels", [2, 3, 4])
def test_png16_unfilter_is_exact(tmp_path, filters, channels):
    from sciconv.io._png import _png_decode, _png_ihdr

    rng = np.random.default_rng(channels)
    data = rng.integers(0, 65535, (9, 13, channels), dtype=np.uint16, endpoint=True)
    expected = data.astype(np.float32)
    if channels != 3:  # an alpha: its zeros are no data (NaN), then it is dropped on reading
        data[..., -1][rng.random((9, 13)) < 0.4] = 0
        expected = np.where(data[..., -1:] == 0, np.nan, expected)[..., :-1]
    ctype = {2: 4, 3: 2, 4: 6}[channels]
    path = tmp_path / "f.png"
    path.write_bytes(png16(13, 9, zlib.compress(filtered_rows(data, filters)), ctype=ctype))
    np.testing.assert_array_equal(sc_io.read(path).data, expected)
    np.testing.assert_array_equal(_png_decode(path, _png_ihdr(path)), data)  # alpha too


def test_png16_paeth_decodes_fast(tmp_path):
    # before issue 15: a per-pixel Python loop, 3.4 s for this 3 KB file
    data = np.tile(np.arange(600, dtype=np.uint16) * 97, (600, 1))[..., None].repeat(3, axis=2)
    path = tmp_path / "paeth.png"
    path.write_bytes(png16(600, 600, zlib.compress(filtered_rows(data, (4, 3)), 9)))
    start = time.perf_counter()
    img = sc_io.read(path)
    elapsed = time.perf_counter() - start
    np.testing.assert_array_equal(img.data, data.astype(np.float32))
    assert elapsed < 1.5, f"decoding took {elapsed:.1f} s"


def test_png16_header_claiming_too_many_pixels_is_refused(tmp_path):
    path = tmp_path / "claim.png"
    path.write_bytes(png16(14000, 14000, zlib.compress(b"\0" * 1000)))
    with pytest.raises(InvalidImageError, match=r"claim\.png: .*MAX_IMAGE_PIXELS"):
        sc_io.read(path)


def test_png16_pixel_limit_follows_pillow(tmp_path, monkeypatch):
    from PIL import Image

    data = np.full((20, 20, 3), 7, np.uint16)
    path = tmp_path / "small.png"
    path.write_bytes(png16(20, 20, zlib.compress(filtered_rows(data, (0,)))))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(InvalidImageError, match="MAX_IMAGE_PIXELS"):
        sc_io.read(path)


def test_png16_memory_check(tmp_path, monkeypatch):
    data = np.full((20, 20, 3), 7, np.uint16)
    path = tmp_path / "small.png"
    path.write_bytes(png16(20, 20, zlib.compress(filtered_rows(data, (0,)))))
    monkeypatch.setattr("sciconv.io._common.available_memory", lambda: (1000, "free"))
    with pytest.raises(InvalidImageError, match="GiB free"):
        sc_io.read(path)


def test_png16_zlib_bomb_inflates_only_what_the_header_announces(tmp_path):
    # a 10 x 10 image whose pixel stream inflates to 64 MB: only 10 x 61 bytes are inflated
    data = np.full((10, 10, 3), 5, np.uint16)
    stream = filtered_rows(data, (0,)) + bytes(64 * 2**20)
    path = tmp_path / "bomb.png"
    path.write_bytes(png16(10, 10, zlib.compress(stream, 9)))
    tracemalloc.start()
    try:
        img = sc_io.read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(img.data, data.astype(np.float32))
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.0f} MiB"
