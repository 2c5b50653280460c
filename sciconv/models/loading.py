"""Loading ``.keras`` model files safely: :func:`load`.

The file's ``config.json`` is scanned for Lambda layers and serialized Python functions before
anything is built, and Keras loads it in safe mode. A model written by a sciconv builder with a
newer Keras than the installed one is rebuilt from its ``architecture`` metadata and given the
file's weights.

Importing this module registers every custom layer, loss and metric of sciconv with Keras, so
``keras.models.load_model`` works on sciconv models as well as :func:`load` does.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import keras

# imported for their side effect: registering sciconv's losses and metrics with Keras (the
# layers are registered by sciconv.models.layers, which the builders import)
import sciconv.losses
import sciconv.metrics  # noqa: F401
from sciconv.errors import ModelError, UnsafeModelError
from sciconv.models.builders import classifier, regressor, segmenter
from sciconv.models.metadata import set_metadata

__all__ = ["load"]


def _find_unsafe(config) -> str | None:
    """Return a description of the first Lambda layer / serialized Python function, if any."""
    if isinstance(config, dict):
        cls = config.get("class_name")
        if cls == "Lambda":
            layer = config.get("config", {}).get("name", "?")
            return f"Lambda layer {layer!r}"
        if cls == "__lambda__":
            return "serialized Python lambda"
        for value in config.values():
            found = _find_unsafe(value)
            if found:
                return found
    elif isinstance(config, list):
        for value in config:
            found = _find_unsafe(value)
            if found:
                return found
    return None


def _read_config(path: Path) -> dict:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "config.json" not in names:
                raise ModelError(
                    f"not a .keras model file: the zip holds no config.json (found {names[:5]})",
                    path=path,
                )
            return json.loads(archive.read("config.json").decode("utf-8"))
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"not a readable .keras model file ({err})", path=path) from None


def load(path: str | os.PathLike, *, trust: bool = False, compile: bool = True) -> keras.Model:
    """Load a ``.keras`` model file safely.

    The file's ``config.json`` is inspected before anything is built: a Lambda layer (arbitrary
    Python code) is refused unless ``trust=True``; loading then goes through
    ``keras.saving.load_model(path, safe_mode=not trust)``. Nothing is unpickled.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.keras`` file written by ``model.save`` or :func:`sciconv.training.fit`.
    trust : bool
        Allow Lambda layers and other Python code stored in the file. Only for files from a
        source you trust: loading such a file can run any code.
    compile : bool
        Restore the optimizer, loss and metrics saved with the model.

    Returns
    -------
    keras.Model

    Raises
    ------
    ModelError
        Missing file, a folder, a file that is not a ``.keras`` zip, or a model Keras cannot build.
    UnsafeModelError
        The file holds a Lambda layer and ``trust`` is False.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sciconv.models import get_metadata
    >>> model = classifier((16, 16, 1), 2, filters=(4,), dense=())
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.keras"
    >>> model.save(path)
    >>> get_metadata(load(path))["task"]
    'classification'
    """
    path = Path(path)
    if not path.exists():
        raise ModelError("model file not found", path=path)
    if path.is_dir():
        raise ModelError(
            "is a folder (a TensorFlow SavedModel?); sciconv loads .keras files written by "
            "model.save('name.keras')",
            path=path,
        )
    if path.suffix != ".keras":
        raise ModelError(
            f"model files must end in .keras (the Keras 3 zip format); got suffix "
            f"{path.suffix!r}. Legacy .h5 files can hold unsafe code: load them with "
            "keras.models.load_model yourself and save them again as .keras",
            path=path,
        )
    if not zipfile.is_zipfile(path):
        raise ModelError(
            "not a .keras model file (expected a zip archive holding config.json and "
            "model.weights.h5); the file may be truncated or of another format",
            path=path,
        )
    config = _read_config(path)
    if not trust:
        unsafe = _find_unsafe(config)
        if unsafe:
            raise UnsafeModelError(
                f"refusing to load: the model holds a {unsafe}, which can run arbitrary Python "
                "code. If you trust the file's source, pass trust=True "
                "(sciconv.models.load(path, trust=True))",
                path=path,
            )
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=not trust)
    except ModelError:
        raise
    except Exception as err:  # Keras raises ValueError/TypeError/KeyError for unbuildable files
        if "safe_mode" in str(err):
            raise UnsafeModelError(
                f"refusing to load: {err}. If you trust the file's source, pass trust=True",
                path=path,
            ) from None
        rebuilt = _rebuild_from_metadata(path, config)
        if rebuilt is not None:
            return rebuilt
        hint = "" if not compile else " (try compile=False if a custom loss or metric is missing)"
        raise ModelError(
            f"cannot build the model: {type(err).__name__}: {err}{hint}", path=path
        ) from err


# metadata keys, besides ``architecture``, that each builder takes back as keyword arguments
_REBUILD_KEYS = {
    "classifier": ("num_classes",),
    "regressor": ("outputs", "uncertainty"),
    "segmenter": ("num_classes", "instance_output"),
}


def _rebuild_from_metadata(path: Path, config: dict) -> keras.Model | None:
    """Rebuild a sciconv model from its recorded architecture and load its weights.

    A ``.keras`` file stores every layer's full config, and a Keras release older than the one
    that wrote it refuses keys it does not know (e.g. ``HeNormal(input_axes=...)`` written by
    Keras 3.15 and read by Keras 3.12, the newest for Python 3.10). The weights themselves are
    version-independent, so a model made by a sciconv builder is rebuilt from its metadata with
    the installed Keras and given the file's weights. Returns None when that is not possible.
    """
    meta = next(
        (
            layer["config"].get("metadata")
            for layer in config.get("config", {}).get("layers", [])
            if str(layer.get("class_name", "")).endswith("SciconvMetadata")
        ),
        None,
    )
    arch = dict((meta or {}).get("architecture") or {})
    builder = arch.pop("builder", None)
    if builder not in _REBUILD_KEYS or "input_shape" not in meta:
        return None
    kwargs = {k: meta[k] for k in _REBUILD_KEYS[builder] if k in meta}
    build = {"classifier": classifier, "regressor": regressor, "segmenter": segmenter}[builder]
    try:
        model = build(tuple(meta["input_shape"]), name=config["config"]["name"], **kwargs, **arch)
        model.load_weights(path)
    except Exception:  # not rebuildable with this sciconv/Keras: report the original error
        return None
    set_metadata(model, **meta)
    return model
