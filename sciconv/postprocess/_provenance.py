"""Provenance of a prediction's products: what a referee needs to reproduce them.

The HISTORY lines :func:`~sciconv.postprocess.write_products` (and ``sciconv predict``) record:
the model and its content identity (:func:`model_digest`), the settings with what ``auto``
decided (:func:`history_record`, :func:`with_decisions`), the input file and its SHA-256
(:func:`input_record`), the software stack and device (:func:`software_record`); the same lines
for products without a HISTORY (:func:`prediction_history`: GeoJSON ``properties``, region
files' ``# sciconv`` comments, :func:`comment_regions`); a catalog's own record (``SOFTWARE``,
``INPUT``, ``HISTORY`` in its metadata: :func:`with_provenance`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from sciconv._atomic import atomic_output
from sciconv.errors import name_text
from sciconv.io._common import history_lines

__all__ = [
    "INPUT_HASH_LIMIT",
    "comment_regions",
    "history_record",
    "input_record",
    "model_digest",
    "prediction_history",
    "run_record",
    "software_record",
    "with_decisions",
    "with_provenance",
]


#: Inputs larger than this (bytes) are named in the products but not hashed (``input_record``):
#: hashing reads the whole file once more (about 1.5 s per GB from the page cache, more from disk).
INPUT_HASH_LIMIT = 2 * 1024**3


def input_record(path, *, limit: int = INPUT_HASH_LIMIT) -> str:
    """The HISTORY line that identifies a prediction's input: ``sciconv input PATH sha256:HEX``
    (the absolute path, the SHA-256 of the file's bytes, streamed), so a product tells which
    file it was made from, and whether that file changed since (``sha256sum PATH``). A file
    over ``limit`` bytes, or a folder (an OME-Zarr store), is named with its size and no hash.
    A path that is not UTF-8 (a latin-1 ``café`` folder) is named with its bytes escaped
    (``caf\\xe9``, :func:`sciconv.errors.name_text`), so that every product can hold the line.

    Parameters
    ----------
    path : str or os.PathLike
        The input file (or OME-Zarr folder).
    limit : int, optional
        Files larger than this many bytes are named, not hashed (:data:`INPUT_HASH_LIMIT`).

    Returns
    -------
    str
        The line.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sciconv.postprocess import input_record
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a.fits"
    >>> _ = f.write_bytes(b"abc")
    >>> input_record(f).split()[-1]
    'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    """
    name = os.path.abspath(os.fspath(path))
    # escaped once, here: the OME description, region comments and VOTables are strict UTF-8
    shown = name_text(name)
    if os.path.isdir(name):
        return f"sciconv input {shown} (a folder: not hashed)"
    try:
        state = os.stat(name)
        if state.st_size > limit:
            size, cap = state.st_size / 1e9, limit / 1e9
            return f"sciconv input {shown} ({size:.3g} GB: not hashed, over {cap:.3g} GB)"
        digest = _file_sha256(name, state.st_size, state.st_mtime_ns)
        return f"sciconv input {shown} sha256:{digest}"
    except OSError as err:
        return f"sciconv input {shown} (not hashed: {err.strerror or type(err).__name__})"


@functools.lru_cache(maxsize=64)
def _file_sha256(name: str, size: int, mtime_ns: int) -> str:
    """The SHA-256 of a file's bytes (pooch's, as sciconv.fetch checks downloads); read once per
    file state (size, time), though the image products, GeoJSON and region files of one input
    each record it."""
    import pooch

    return pooch.file_hash(name, alg="sha256")


def software_record() -> str:
    """The HISTORY line of the software stack and device a prediction ran on: ``sciconv stack:``
    the Python, TensorFlow, Keras, numpy and astropy versions, the CPU and GPUs (when TensorFlow
    is loaded) and ``TF_ENABLE_ONEDNN_OPTS`` when set (oneDNN's bfloat16 kernels change the
    probabilities by up to 0.01). ``sciconv predict --skip-existing`` does not compare it.

    Examples
    --------
    >>> from sciconv.postprocess import software_record
    >>> software_record().startswith("sciconv stack: python ")
    True
    """
    import platform
    from importlib import metadata

    versions = [f"python {platform.python_version()}"]
    for package in ("tensorflow", "keras", "numpy", "astropy"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} none")
    line = f"sciconv stack: {', '.join(versions)}; {_device()}"
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    return line if onednn is None else f"{line}; TF_ENABLE_ONEDNN_OPTS={onednn}"


@functools.lru_cache(maxsize=1)
def _cpu() -> str:
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _device() -> str:
    """``CPU <model>``, and the GPUs TensorFlow sees when it is loaded (not loaded for it)."""
    import sys

    gpus = []
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        try:
            for gpu in tf.config.list_physical_devices("GPU"):
                details = tf.config.experimental.get_device_details(gpu)
                gpus.append(str(details.get("device_name", gpu.name)))
        except Exception:  # a TensorFlow without these calls: the CPU alone
            gpus = []
    return f"CPU {_cpu()}" + (f"; GPU {', '.join(gpus)}" if gpus else "; no GPU")


def model_digest(model) -> str:
    """A model's content identity: ``sha256:`` and 16 hex digits of its architecture (the
    Keras config, sciconv's metadata with it; volatile fields such as ``shared_object_id`` left
    out) and its weights (dtype, shape and bytes, in order). Two bit-identical trainings give
    the same digest, though their ``.keras`` files differ (the save date); any other change of
    weights, metadata or architecture gives another.

    Parameters
    ----------
    model : keras.Model
        The model (its config, metadata and weights are digested).

    Returns
    -------
    str
        ``sha256:`` and 16 hex digits.

    Examples
    --------
    >>> import keras
    >>> from sciconv.postprocess import model_digest
    >>> inputs = keras.Input((None, None, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(2, 1, kernel_initializer="ones")(inputs))
    >>> model_digest(model) == model_digest(keras.models.clone_model(model))
    False
    >>> len(model_digest(model))
    23
    """
    import hashlib
    import json

    import numpy as np

    def stable(value):
        if isinstance(value, dict):
            return {k: stable(v) for k, v in value.items() if k not in _VOLATILE}
        if isinstance(value, (list, tuple)):
            return [stable(v) for v in value]
        return value

    digest = hashlib.sha256()
    config = stable(model.get_config())
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for weight in model.weights:
        array = np.asarray(weight.numpy() if hasattr(weight, "numpy") else weight)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return f"sha256:{digest.hexdigest()[:16]}"


#: Config fields that differ between saves of the same model (``shared_object_id``: a Python
#: ``id()``), left out of :func:`model_digest`.
_VOLATILE = frozenset({"shared_object_id", "date_saved"})


def with_decisions(lines: Sequence[str], decided: Mapping | None) -> list[str]:
    """HISTORY ``lines`` (``write_products``' model and settings lines) with what the automatic
    settings decided (``decided``, a ``sciconv.inference.decisions()`` log): a setting recorded
    as ``'auto'`` gets its decision (``  scale = '0.185 (auto: objects 97.8 px)'``); the
    decisions of no setting (``input_transform``) follow the last setting line.

    Parameters
    ----------
    lines : sequence of str
        The model and settings lines (:func:`history_record`).
    decided : mapping or None
        The decisions (``{"scale": "0.5 (auto)", ...}``); None: ``lines`` as they are.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from sciconv.postprocess import with_decisions
    >>> lines = ["sciconv prediction with model m.keras", "  scale = 'auto'", "  tile = 256"]
    >>> with_decisions(lines, {"scale": "0.5 (auto)", "input_transform": "not flipped (auto)"})
    ... # doctest: +NORMALIZE_WHITESPACE
    ['sciconv prediction with model m.keras', "  scale = '0.5 (auto)'", '  tile = 256',
     "  input_transform = 'not flipped (auto)'"]
    """
    import re

    out, pending, last = [], dict(decided or {}), None
    for line in lines:
        setting = re.match(r"  (\w+) = (.*)$", str(line))
        if setting and setting[1] in pending:
            value = pending.pop(setting[1])
            line = f"  {setting[1]} = {value!r}" if setting[2] == "'auto'" else line
        last = len(out) if setting else last
        out.append(str(line))
    at = len(out) if last is None else last + 1
    return [*out[:at], *(f"  {key} = {value!r}" for key, value in pending.items()), *out[at:]]


def run_record(model, params: Mapping | None, source=None) -> tuple[str | None, dict, list[str]]:
    """``write_products``' model name, parameters and the lines that identify the run: a Keras
    ``model`` gives its name and ``model_id`` (:func:`model_digest`,
    unless ``params`` has one); ``source`` (the input file) its ``sciconv input`` line; a
    prediction (a model or parameters) the ``sciconv stack`` line.

    Examples
    --------
    >>> from sciconv.postprocess._provenance import run_record
    >>> name, params, lines = run_record("m.keras", {"tile": 256})
    >>> name, params, lines[0].split(":")[0]
    ('m.keras', {'tile': 256}, 'sciconv stack')
    """
    params = dict(params or {})
    if model is not None and not isinstance(model, (str, os.PathLike)):  # a Keras model
        params = {"model_id": model_digest(model), **params}
        model = str(getattr(model, "name", type(model).__name__))
    elif model is not None:
        model = str(model)
    lines = [] if source is None else [input_record(source)]
    if model is not None or params:
        lines.append(software_record())
    return model, params, lines


def history_record(model: str | None, params: dict | None) -> list[str]:
    """The HISTORY lines ``write_products`` records for a prediction: the model, then one
    ``  key = value`` line per parameter (``sciconv predict --skip-existing`` reads them back).

    Parameters
    ----------
    model : str or None
        The model's name (None: no model line); one that is not UTF-8 is written with its
        bytes escaped (:func:`sciconv.errors.name_text`).
    params : dict or None
        The settings, one line each.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from sciconv.postprocess import history_record
    >>> history_record("best.keras", {"tile": 256})
    ['sciconv prediction with model best.keras', '  tile = 256']
    """
    lines = [] if model is None else [f"sciconv prediction with model {name_text(model)}"]
    return lines + [f"  {key} = {value!r}" for key, value in (params or {}).items()]


def prediction_history(
    model=None, params=None, *, decisions=None, history=None, source=None
) -> list[str]:
    """The HISTORY lines ``write_products`` records (model, settings with what ``auto``
    decided, ``history``, the input and its digest, the software stack), for the products it
    does not write: GeoJSON's ``properties``, a region file's ``# sciconv`` comment lines.

    Parameters
    ----------
    model : str, keras.Model or None
        The model: a name, or a model (its name and :func:`model_digest`).
    params : mapping or None
        The settings as asked.
    decisions : mapping or None
        What ``auto`` decided (a :func:`sciconv.inference.decisions` log).
    history : str or list of str, optional
        More lines, after the settings.
    source : str or os.PathLike, optional
        The input file (:func:`input_record`).

    Returns
    -------
    list of str

    Examples
    --------
    >>> from sciconv.postprocess import prediction_history
    >>> prediction_history("m.keras", {"scale": "auto"}, decisions={"scale": "0.5 (auto)"})[:2]
    ['sciconv prediction with model m.keras', "  scale = '0.5 (auto)'"]
    """
    model, params, run = run_record(model, params, source)
    return [
        *with_decisions(history_record(model, params), decisions),
        *history_lines(history),
        *run,
    ]


def comment_regions(path, lines: Sequence[str]) -> Path:
    r"""A region file (DS9 ``.reg``, CASA ``.crtf``) with ``lines`` as ``# sciconv`` comment
    lines after its first (format) line (``;`` written ``,``: region parsers split lines at
    it), rewritten atomically: viewers and the ``regions`` package skip comments.

    Parameters
    ----------
    path : str or os.PathLike
        The region file, rewritten in place.
    lines : sequence of str
        The lines to add as comments (:func:`prediction_history`).

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from sciconv.postprocess import comment_regions
    >>> reg = pathlib.Path(tempfile.mkdtemp()) / "a.reg"
    >>> _ = reg.write_text("# Region file format: DS9\nimage\ncircle(1,2,3)\n")
    >>> comment_regions(reg, ["  tile = 'auto'"]).read_text().splitlines()[1]
    "# sciconv   tile = 'auto'"
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8").splitlines(keepends=True)
    # one line each, no ";": the regions package (and DS9) split lines at it, comments too
    notes = [" ".join(str(line).splitlines()).replace(";", ",") for line in lines]
    notes = [f"# {n}\n" if n.startswith("sciconv ") else f"# sciconv {n}\n" for n in notes]
    with atomic_output(path, overwrite=True) as tmp:
        Path(tmp).write_text("".join([*text[:1], *notes, *text[1:]]), encoding="utf-8")
    return path


def with_provenance(table, history: str | Sequence[str] | None, *, source=None, name=None):
    """``table`` (a shallow copy) with what made it in its metadata: ``SOFTWARE`` (the sciconv
    version), ``INPUT`` (the image's file name) and ``HISTORY`` (the model and settings lines of
    the image products), so a catalog apart from its images can be traced (ECSV metadata, FITS
    SOFTWARE/INPUT/HISTORY cards, VOTable INFO elements).

    Parameters
    ----------
    table : astropy.table.Table
        The catalog; not changed.
    history : str, list of str or None
        Lines appended to the table's ``HISTORY`` (after any it has); a str is one line; empty
        or None adds none.
    source : str or os.PathLike, optional
        The input image's path; its file name becomes ``INPUT`` (a name that is not UTF-8 with
        its bytes escaped, ``caf\\xe9.fits``: :func:`sciconv.errors.name_text`). Default None
        (no ``INPUT``).
    name : str, optional
        What ``INPUT`` says instead of ``source``'s file name: ``sciconv predict --keep-tree``
        gives the input's path below the inputs' common folder (``n0/field.fits``), so two
        nights' catalogs of one file name tell which is which. Default None.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from sciconv.postprocess import with_provenance
    >>> t = with_provenance(Table({"label": [1]}), ["sciconv prediction with model m.keras"],
    ...                     source="/data/a.fits")
    >>> t.meta["INPUT"], t.meta["HISTORY"]
    ('a.fits', ['sciconv prediction with model m.keras'])
    """
    import sciconv

    out = table.copy(copy_data=False)
    out.meta["SOFTWARE"] = f"sciconv {sciconv.__version__}"
    if name is not None or source is not None:  # escaped as input_record spells it
        out.meta["INPUT"] = name_text(name if name is not None else Path(source).name)
    lines = history_lines(history)  # a str is one line (it was split into characters)
    if lines:
        before = out.meta.get("HISTORY") or []
        before = [before] if isinstance(before, str) else list(before)
        out.meta["HISTORY"] = [*before, *lines]
    return out
