"""Loading ``.keras`` model files safely: :func:`load`.

The file's ``config.json`` is scanned before anything is built: Lambda layers, serialized Python
functions and any object from outside Keras, sciconv and the registered custom objects are refused
(:class:`~sciconv.errors.UnsafeModelError`), and Keras then loads the file in safe mode. The zip
directory is checked first: member sizes (as declared there, which :mod:`zipfile` enforces when
reading) are capped, so a decompression bomb is refused before a byte is inflated. A model written
by a sciconv builder with a newer Keras than the installed one (the one case where Keras refuses a
config key it does not know) is rebuilt from its ``architecture`` metadata and given the file's
weights; no other refusal of Keras ever leads to a rebuild.

Importing this module registers every custom layer, loss and metric of sciconv with Keras, so
``keras.models.load_model`` works on sciconv models as well as :func:`load` does.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import stat
import sys
import warnings
import zipfile
from pathlib import Path

import keras

# imported for their side effect: registering sciconv's losses and metrics with Keras (the
# layers are registered by sciconv.models.layers, which the builders import)
import sciconv.losses  # noqa: F401
from sciconv import __version__
from sciconv._archive import zip_member_problem, zip_size_problem
from sciconv._fork import refuse_forked_tensorflow
from sciconv.errors import ConfigError, ModelError, SciconvWarning, UnsafeModelError
from sciconv.io import user_path
from sciconv.metrics import Dice, IoU, MeanIoU  # noqa: F401  (registers them for loading)
from sciconv.models._validate_meta import check_postprocess
from sciconv.models.builders import classifier, regressor, segmenter
from sciconv.models.metadata import get_metadata, metadata_layer

__all__ = ["load"]


#: Largest ``config.json`` / ``metadata.json`` accepted (bytes, uncompressed).
MAX_CONFIG_BYTES = 64 * 2**20
#: Largest total uncompressed size of a ``.keras`` file's members (bytes).
MAX_MODEL_BYTES = 16 * 2**30
#: Largest compression ratio of a member, or of the file, above 1 MiB (Keras stores members
#: uncompressed; re-zipped weights compress about 1.1:1, a decompression bomb about 1000:1).
MAX_COMPRESSION_RATIO = 100

# modules whose objects a safe .keras config may name: Keras' modeling APIs. Keras' non-modeling
# APIs (keras.utils.get_file, keras.saving, ...) are not; sciconv's layers, losses and metrics,
# like any custom object, pass by their registered name.
_SAFE_MODULE_ROOTS = ("keras",)
_UNSAFE_KERAS_MODULES = ("keras.utils", "keras.src.utils", "keras.saving", "keras.src.saving")


def _module_is_safe(module: str) -> bool:
    if any(module == m or module.startswith(m + ".") for m in _UNSAFE_KERAS_MODULES):
        return False
    return any(module == m or module.startswith(m + ".") for m in _SAFE_MODULE_ROOTS)


def _describe_unsafe_object(config: dict) -> str | None:
    """Describe a serialized object naming code outside Keras' modeling APIs and sciconv."""
    cls = config.get("class_name")
    module = config.get("module")
    if not isinstance(cls, str) or not isinstance(module, str):
        return None
    if _module_is_safe(module):
        return None
    # a custom object registered in this process (sciconv's own included) is allowed, as in
    # Keras' safe mode; a function is serialized with its registered name as its config
    registered = config.get("config") if cls == "function" else config.get("registered_name")
    if isinstance(registered, str) and keras.saving.get_registered_object(registered) is not None:
        return None
    name = config.get("config") if cls == "function" else cls
    return f"reference to {module}.{name} (neither Keras modeling code nor a registered object)"


def _first(config, probe):
    """The first non-None ``probe(d)`` over the dicts of a ``.keras`` config, depth first."""
    if isinstance(config, dict):
        found = probe(config)
        if found:
            return found
        values = config.values()
    elif isinstance(config, list):
        values = config
    else:
        return None
    for value in values:
        found = _first(value, probe)
        if found:
            return found
    return None


# Keras layers that run code or read files from outside the .keras file: a SavedModel's graph
# (TFSMLayer, which Keras' safe mode refuses only from 3.13.2 on), a pickled torch module, a JAX
# or Flax function. Refused by name, whatever the installed Keras checks.
_CODE_LAYERS = ("TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer")
_EXPORT_MODULES = ("keras.export", "keras.src.export")
# preprocessing layers whose string ``vocabulary`` names a file they read when built
_VOCABULARY_LAYERS = ("StringLookup", "IntegerLookup", "TextVectorization", "IndexLookup")


def _unsafe_probe(config: dict) -> str | None:
    cls = config.get("class_name")
    inner = config.get("config")
    inner = inner if isinstance(inner, dict) else {}
    if cls == "Lambda":
        return f"Lambda layer {inner.get('name', '?')!r}"
    if cls == "__lambda__":
        return "serialized Python lambda"
    module = config.get("module")
    exported = isinstance(module, str) and any(
        module == m or module.startswith(m + ".") for m in _EXPORT_MODULES
    )
    if cls in _CODE_LAYERS or exported:
        return (
            f"{cls} layer {inner.get('name', '?')!r} (it loads and runs code from outside the file)"
        )
    if cls in _VOCABULARY_LAYERS and isinstance(inner.get("vocabulary"), str):
        return (
            f"{cls} layer {inner.get('name', '?')!r} whose vocabulary is read from the file "
            f"{inner['vocabulary'][:200]!r} (outside the model file)"
        )
    return _describe_unsafe_object(config)


def _find_unsafe(config) -> str | None:
    """Return a description of the first unsafe object of a ``.keras`` config, if any.

    Unsafe: a Lambda layer, a serialized Python lambda, and any class or function from outside
    Keras' modeling APIs and sciconv that is not a custom object registered in this process.
    """
    return _first(config, _unsafe_probe)


def _import_sciconv_module(config: dict) -> None:
    """Import the sciconv module a serialized object names (``module``), so that the layers it
    registers are known; a module this sciconv lacks (a newer one's) is left to the probe."""
    module = config.get("module")
    if isinstance(module, str) and module.startswith("sciconv.") and module not in sys.modules:
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def _newer_sciconv_probe(config: dict) -> str | None:
    """A sciconv object (``sciconv>`` registered name) this installation does not register."""
    cls = config.get("class_name")
    registered = config.get("config") if cls == "function" else config.get("registered_name")
    if not (isinstance(registered, str) and registered.startswith("sciconv>")):
        return None
    if keras.saving.get_registered_object(registered) is not None:
        return None
    return f"{config.get('module', 'sciconv')}.{registered.split('>', 1)[1]}"


def _check_members(archive: zipfile.ZipFile, path: Path) -> None:
    """Refuse a zip whose directory declares oversized or bomb-like members (reads nothing)."""
    problem = zip_size_problem(
        archive,
        max_total=MAX_MODEL_BYTES,
        max_ratio=MAX_COMPRESSION_RATIO,
        member_limits={"config.json": MAX_CONFIG_BYTES, "metadata.json": MAX_CONFIG_BYTES},
    )
    if problem:
        raise ModelError(
            f"refusing to load: {problem} (limits: sciconv.models.loading.MAX_CONFIG_BYTES, "
            "MAX_MODEL_BYTES, MAX_COMPRESSION_RATIO)",
            path=path,
        )


_TOO_DEEP = "not a readable .keras model file (config.json nested too deep)"
_WEIGHTS = "model.weights.h5"


class _StoredMember:
    """Read-only file object over a stored (uncompressed) zip member, for h5py: seeks in place,
    where :class:`zipfile.ZipExtFile` rereads the member from its start on every backward seek."""

    def __init__(self, file, start: int, size: int):
        self._file, self._start, self._size, self._pos = file, start, size, 0

    def seek(self, pos: int, whence: int = 0) -> int:
        base = (0, self._pos, self._size)[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        left = max(0, self._size - self._pos)
        n = left if n is None or n < 0 else min(n, left)
        self._file.seek(self._start + self._pos)
        data = self._file.read(n)
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        pass


def _stored_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo):
    """A seekable file object over ``info``'s bytes (in place if stored, else via zipfile)."""
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        return archive.open(info)
    archive.fp.seek(info.header_offset)
    header = archive.fp.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header of {info.filename}")
    start = info.header_offset + 30 + int.from_bytes(header[26:28], "little")
    start += int.from_bytes(header[28:30], "little")
    return _StoredMember(archive.fp, start, info.file_size)


def _h5_problem(group, where: str, seen: set) -> str | None:
    """The first link or dataset of an HDF5 group that reads outside the file, depth first:
    external and soft links, external-storage and virtual datasets (as Keras 3.13.2+ refuses)."""
    import h5py

    for name in group:
        here = f"{where}/{name}"
        link = group.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            return f"an external link {here} (to {link.filename}:{link.path})"
        if isinstance(link, h5py.SoftLink):
            return f"a soft link {here} (to {link.path})"
        item = group.get(name)
        if isinstance(item, h5py.Dataset):
            if item.external:
                return f"an external dataset {here} (reading {item.external[0][0]!r})"
            if item.is_virtual:
                return f"a virtual dataset {here} (reading other files)"
        elif isinstance(item, h5py.Group):
            address = h5py.h5o.get_info(item.id).addr
            if address not in seen:
                seen.add(address)
                found = _h5_problem(item, here, seen)
                if found:
                    return found
    return None


def _check_weights(archive: zipfile.ZipFile, path: Path) -> None:
    """Refuse a ``model.weights.h5`` that makes Keras read other files (external datasets and
    links, virtual datasets), whatever the installed Keras checks (3.12 does not)."""
    try:
        info = archive.getinfo(_WEIGHTS)
    except KeyError:
        return
    import h5py

    try:
        member = _stored_member(archive, info)
        with contextlib.closing(member), h5py.File(member, "r") as weights:
            problem = _h5_problem(weights, "", set())
    except RecursionError:
        raise ModelError(f"its {_WEIGHTS} nests groups too deep", path=path) from None
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ModelError(
            f"not a readable .keras model file: its {_WEIGHTS} is not an HDF5 file ({err})",
            path=path,
        ) from None
    if problem:
        raise UnsafeModelError(
            f"refusing to load: its {_WEIGHTS} holds {problem}, which makes Keras read other "
            "files into the weights. If you trust the file's source, pass trust=True",
            path=path,
        )


def _read_config(path: Path) -> dict:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "config.json" not in names:
                raise ModelError(
                    f"not a .keras model file: the zip holds no config.json (found {names[:5]})",
                    path=path,
                )
            _check_members(archive, path)
            damaged = zip_member_problem(archive)  # CRC-checks every member, in bounded chunks
            if damaged:
                raise ModelError(
                    f"damaged model file: {damaged}; copy or download it again", path=path
                )
            with archive.open("config.json") as member:  # zipfile stops at the declared size
                data = member.read(MAX_CONFIG_BYTES + 1)
            return json.loads(data.decode("utf-8"))
    except ModelError:
        raise
    except RecursionError:
        raise ModelError(_TOO_DEEP, path=path) from None
    except (zipfile.BadZipFile, OSError, ValueError) as err:  # ValueError: bad UTF-8 or JSON
        raise ModelError(f"not a readable .keras model file ({err})", path=path) from None


def _recorded_metadata(config) -> dict | None:
    """The sciconv metadata a ``.keras`` config records (its SciconvMetadata layer), if any."""
    inner = config.get("config") if isinstance(config, dict) else None
    layers = inner.get("layers") if isinstance(inner, dict) else None
    for layer in layers if isinstance(layers, list) else []:
        if isinstance(layer, dict) and str(layer.get("class_name", "")).endswith("SciconvMetadata"):
            layer_config = layer.get("config")
            meta = layer_config.get("metadata") if isinstance(layer_config, dict) else None
            if meta is not None and not isinstance(meta, dict):
                raise ModelError(
                    f"recorded sciconv metadata must be a JSON object; got {type(meta).__name__}"
                )
            return meta
    return None


#: How to repair a file whose recorded settings :func:`load` refuses.
_REPAIR = (
    "; to repair the file: model = sciconv.models.load(path, check_metadata=False), then "
    "sciconv.models.set_metadata(model, postprocess={...}) (or postprocess=None) and "
    "model.save(path)"
)


def _check_recorded_settings(config, path: Path) -> None:
    """Refuse a model whose recorded metadata holds settings of the wrong kind (names the key)."""
    try:
        meta = _recorded_metadata(config)
    except ModelError as err:
        raise ModelError(
            err.message + "; load it with sciconv.models.load(path, check_metadata=False)",
            path=path,
        ) from None
    if meta:
        check_postprocess(meta.get("postprocess"), path=path, fix=_REPAIR)


def load(
    path: str | os.PathLike,
    *,
    trust: bool = False,
    compile: bool = True,
    check_metadata: bool = True,
) -> keras.Model:
    """Load a ``.keras`` model file safely.

    The file's zip directory and ``config.json`` are inspected before anything is built: a Lambda
    layer (arbitrary Python code) or a reference to code outside Keras and the registered custom
    objects is refused unless ``trust=True``; loading then goes through
    ``keras.saving.load_model(path, safe_mode=not trust)``. Nothing is unpickled. Only a file
    whose config a newer Keras wrote (keys the installed Keras does not know) is rebuilt from the
    sciconv metadata it records; every other refusal of Keras is raised.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.keras`` file written by ``model.save`` or :func:`sciconv.training.fit`.
    trust : bool
        Allow Lambda layers and other Python code stored in the file. Only for files from a
        source you trust: loading such a file can run any code.
    compile : bool
        Restore the optimizer, loss and metrics saved with the model.
    check_metadata : bool
        Refuse recorded post-processing settings of the wrong type or with unknown keys
        (default). False loads such a file as it is, so that
        :func:`sciconv.models.set_metadata` can repair it (``model.save(path)`` then writes it
        back); the safety checks of ``trust`` apply either way.

    Returns
    -------
    keras.Model

    Raises
    ------
    ModelError
        Missing file, a folder, a FIFO or device, a file that is not a ``.keras`` zip, a zip
        whose members declare sizes over the limits (:data:`MAX_CONFIG_BYTES`,
        :data:`MAX_MODEL_BYTES`, :data:`MAX_COMPRESSION_RATIO`), a damaged member (truncated,
        bad CRC; the message names it), recorded post-processing settings of the wrong type or
        with unknown keys (naming the key, and how to repair it with ``check_metadata=False``),
        or a model Keras cannot build (a class or function it does not know included).
    ConfigError
        ``path`` is not a str or os.PathLike (a model object, None), or ``trust`` /
        ``compile`` / ``check_metadata`` is not a bool (a string such as ``"no"`` is truthy:
        it would turn the safety check off).
    UnsafeModelError
        ``trust`` is False and the file holds a Lambda layer, a serialized Python function, or
        names a class or function from outside Keras' modeling APIs and the registered custom
        objects (``os.system``, ``builtins.eval``, ``keras.utils.get_file``, ...), or Keras'
        safe mode refused it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sciconv.models import classifier, get_metadata, load
    >>> model = classifier((16, 16, 1), 2, filters=(4,), dense=())
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.keras"
    >>> model.save(path)
    >>> get_metadata(load(path))["task"]
    'classification'

    A file whose recorded settings are refused is repaired by loading it unchecked:

    >>> from sciconv.models import set_metadata
    >>> model = load(path, check_metadata=False)
    >>> set_metadata(model, postprocess={"threshold": 0.4})
    >>> model.save(path)
    """
    refuse_forked_tensorflow("load a model (sciconv.models.load)")
    checked = ((trust, "trust"), (compile, "compile"), (check_metadata, "check_metadata"))
    for value, name in checked:
        if not isinstance(value, bool):
            raise ConfigError(
                f"{name} must be True or False; got {value!r} ({type(value).__name__})"
                + (". A string such as 'no' is not a bool" if isinstance(value, str) else "")
            )
    if isinstance(path, keras.Model):
        raise ConfigError(
            f"load needs the path of a .keras file; got the model {path.name!r} itself, which "
            "is already loaded: use it as it is"
        )
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(
            f"load needs the path of a .keras file (str or os.PathLike); got {type(path).__name__}"
        )
    path = user_path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ModelError("model file not found", path=path) from None
    except OSError as err:
        raise ModelError(f"cannot read the model file ({err.strerror or err})", path=path) from None
    if stat.S_ISDIR(mode):
        raise ModelError(
            "is a folder (a TensorFlow SavedModel?); sciconv loads .keras files written by "
            "model.save('name.keras')",
            path=path,
        )
    if not stat.S_ISREG(mode):
        raise ModelError(
            "is not a regular file (a FIFO, socket or device?); sciconv loads .keras files",
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
    # compile=False: the training settings (a custom loss, metrics) are not built, so only
    # the architecture must be safe (a custom loss function needs no trust then) and known
    scanned = config if compile or not isinstance(config, dict) else dict(config)
    if not compile and isinstance(scanned, dict):
        scanned.pop("compile_config", None)
    try:
        # sciconv's layers register when their module is imported (sciconv.augment's are not by
        # sciconv.models): import the ones the file names before judging what is unknown
        _first(scanned, _import_sciconv_module)
        newer = _first(scanned, _newer_sciconv_probe)
    except RecursionError:
        raise ModelError(_TOO_DEEP, path=path) from None
    if newer:  # was refused as unsafe code, then (trust=True) as a package to import (QA)
        raise ModelError(
            f"written by a newer sciconv: the model uses {newer}, which this sciconv "
            f"({__version__}) does not have; update sciconv to load it (the file is fine)",
            path=path,
        )
    if check_metadata:
        _check_recorded_settings(config, path)
    if not trust:
        try:
            unsafe = _find_unsafe(scanned)
        except RecursionError:
            raise ModelError(_TOO_DEEP, path=path) from None
        if unsafe:
            raise UnsafeModelError(
                f"refusing to load: the model holds a {unsafe}, which can run arbitrary code or "
                "read other files. If you trust the file's source, pass trust=True "
                "(sciconv.models.load(path, trust=True); sciconv predict --trust)",
                path=path,
            )
        with zipfile.ZipFile(path) as archive:
            _check_weights(archive, path)
    try:
        model = keras.saving.load_model(path, compile=compile, safe_mode=not trust)
    except ModelError:
        raise
    except Exception as err:  # Keras raises ValueError/TypeError/KeyError for unbuildable files
        model = _unbuildable(err, path, config, compile)
    _note_unrecorded_normalization(model, path)
    return model


def _note_unrecorded_normalization(model: keras.Model, path: Path) -> None:
    """Warn when a trained sciconv model records no input normalization (compat QA).

    Before 2026-12-05, :func:`sciconv.training.fit` on arrays or on ``normalize=None`` data
    recorded none; prediction's ``normalize="model"`` then applies the default percentile
    stretch to a model trained on raw pixels (6 of 12 classes changed). Trained: its optimizer
    took steps, or ``fit`` / calibration recorded other settings. A model only built is not.
    """
    meta = get_metadata(model)
    if "architecture" not in meta or "normalization" in meta:
        return
    optimizer = getattr(model, "optimizer", None)
    steps = getattr(optimizer, "iterations", None)
    trained = (steps is not None and int(steps.numpy()) > 0) or any(
        key in meta
        for key in ("class_names", "image_size", "size_policy", "training", "calibration")
    )
    if trained:
        warnings.warn(
            f"{path}: the trained model records no input normalization, so prediction "
            "applies the default percentile stretch (1-99.8) to its inputs. If it was trained "
            "on raw pixels or on inputs scaled by hand, pass normalize=None to the predict "
            "functions, or (for sciconv predict too) record what it saw: "
            "sciconv.models.set_metadata(model, normalization={'method': 'none'}) and save it "
            "(fit records none for data it cannot look into, and did not "
            "for arrays and normalize=None data before 2026-12-05)",
            SciconvWarning,
            stacklevel=3,
        )


def _unbuildable(err: Exception, path: Path, config: dict, compile: bool) -> keras.Model:
    """The model rebuilt from its metadata where a newer Keras wrote the file, else the error
    ``keras.saving.load_model`` raised, as a sciconv error naming the file."""
    kind = _classify_keras_error(err)
    if kind == "unsafe":
        raise UnsafeModelError(
            f"refusing to load: Keras refused the file for security ({_innermost(err)}). "
            "If you trust the file's source, pass trust=True",
            path=path,
        ) from None
    if kind == "newer-keras":
        rebuilt = _rebuild_from_metadata(path, config)
        if rebuilt is not None:
            return rebuilt
    if kind == "unknown-class":
        raise ModelError(
            f"cannot build the model: it names a class or function Keras does not know "
            f"({_innermost(err)}); import the package that registers it first",
            path=path,
        ) from err
    hint = "" if not compile else " (try compile=False if a custom loss or metric is missing)"
    # its first lines: Keras quotes whole weight arrays on a shape mismatch (QA: 9.9 kB)
    said = " ".join([line[:200] for line in str(err).split("\n") if line.strip()][:2])
    cause = _innermost(err)  # the reason, which Keras' outer message may only wrap (review)
    if cause and cause not in said:
        said += f" (cause: {cause})"
    raise ModelError(
        f"cannot build the model: {type(err).__name__}: {said}{hint}", path=path
    ) from err


def _error_chain(err: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        chain.append(err)
        err = err.__cause__ or err.__context__
    return chain


def _innermost(err: BaseException) -> str:
    return str(_error_chain(err)[-1]).split("\n")[0][:300]


def _classify_keras_error(err: BaseException) -> str:
    """Sort a refusal of ``keras.saving.load_model`` into the cases :func:`load` treats apart.

    ``"unsafe"``: a security refusal; ``"unknown-class"``: a class or function Keras cannot
    locate; ``"newer-keras"``: the one documented case a rebuild may repair, the innermost error
    being a keyword argument the installed Keras does not know; ``"other"``: everything else.
    """
    chain = _error_chain(err)
    texts = [str(e) for e in chain]
    refusals = (  # keras 3.12 says "... are not allowed during deserialization"
        "safe_mode",
        "disallowed during deserialization",
        "not allowed during deserialization",
        "for security",
        "Not allowed: H5 file",  # keras 3.13.2+: external datasets and links, virtual datasets
    )
    if any(said in t for t in texts for said in refusals):
        return "unsafe"
    if any("Could not locate class" in t or "Could not locate function" in t for t in texts):
        return "unknown-class"
    inner = chain[-1]
    if isinstance(inner, TypeError) and (
        "unexpected keyword argument" in str(inner) or "Unrecognized keyword argument" in str(inner)
    ):
        return "newer-keras"
    return "other"


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
    try:
        meta = _recorded_metadata(config)
    except ModelError:  # not a JSON object (load(check_metadata=False)): nothing to rebuild by
        return None
    arch = dict((meta or {}).get("architecture") or {})
    builder = arch.pop("builder", None)
    if builder not in _REBUILD_KEYS or "input_shape" not in meta:
        return None
    kwargs = {k: meta[k] for k in _REBUILD_KEYS[builder] if k in meta}
    if builder in ("classifier", "regressor"):  # recorded only when > 1: absent = none
        arch.setdefault("input_pool", 1)
    build = {"classifier": classifier, "regressor": regressor, "segmenter": segmenter}[builder]
    try:
        model = build(tuple(meta["input_shape"]), name=config["config"]["name"], **kwargs, **arch)
        model.load_weights(path)
    except Exception:  # not rebuildable with this sciconv/Keras: report the original error
        return None
    # the metadata as the file records it (not checked again: load(check_metadata=False) too)
    metadata_layer(model).metadata.update({k: v for k, v in meta.items() if v is not None})
    return model
