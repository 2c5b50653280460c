"""Export a model for runtimes without TensorFlow: ONNX through Keras' own ``model.export``.

Keras 3 exports to ONNX itself (``model.export(path, format="onnx")``, which converts the
TensorFlow graph with ``tf2onnx``); :func:`export` adds what a consumer needs to use the file the
way sciconv does: the model's sciconv metadata (task, classes, the **normalization** it was
trained with, post-processing parameters, divisor) as ONNX ``metadata_props``. A model that
computes in mixed precision (trained after :func:`sciconv.devices.configure` chose
``mixed_bfloat16`` or ``mixed_float16``) is exported as its float32 copy (same weights), since
onnxruntime has no bfloat16 convolutions; the file then reproduces
``predict_tiled(..., precision="float32")``.

What the ONNX file is not: the network maps normalized pixels ``(N, H, W, C)`` float32 to
per-pixel class probabilities ``(N, H, W, K)``; the normalization before it and the instance
watershed after it (:func:`sciconv.postprocess.instances`) are not part of the graph. A consumer
normalizes with the recorded ``normalization`` spec (percentile 1-99.8 by default, statistics over
the whole image) and makes instances from the probabilities with the recorded ``postprocess``
keywords (sciconv's ``postprocess.instances(prob, **postprocess)``, or a watershed of its own).
A U-Net takes sides that are multiples of its ``divisor``: pad others as :data:`PADDING` says
(reflect, centred) and crop the output back; the README gives the whole recipe.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import keras

from sciconv._validation import not_a_model
from sciconv.errors import ConfigError, MissingDependencyError, ModelError, name_text
from sciconv.io import user_path
from sciconv.models.metadata import get_metadata

__all__ = ["EXPORT_FORMATS", "PADDING", "export"]

#: Formats :func:`export` writes.
EXPORT_FORMATS = ("onnx", "bioimageio")
#: How sciconv pads an image whose sides are not multiples of a U-Net's ``divisor`` (the
#: whole-image call and every tile of :func:`sciconv.inference.predict_tiled`): reflect, centred.
#: Recorded in a segmenter's ONNX ``metadata_props`` as ``"padding"``.
PADDING = {
    "mode": "reflect",
    "to_multiple_of": "divisor",
    "before": "(padded - size) // 2",
    "after": "padded - size - before",
    "then": "crop the output back to [before, before + size)",
}


def export(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    format: str = "onnx",
    opset: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Export ``model`` to ONNX (its sciconv metadata in ``metadata_props``) or to BioImage.IO.

    Parameters
    ----------
    model : keras.Model
        A sciconv model (or any single-input Keras model).
    path : str or os.PathLike
        The ``.onnx`` file to write (atomically; another suffix is refused), or the ``.zip``
        package for ``format="bioimageio"``.
    format : {"onnx", "bioimageio"}
        The export format: an ONNX file, or a BioImage.IO model package (a zip written by
        :func:`~sciconv.models.bioimageio.export_bioimageio` with its defaults; call that function
        for the package's name, authors, licence and sample image).
    opset : int, optional
        The ONNX opset; default: the converter's.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    WriteError
        The disk or folder refused the file (full, quota, read-only); nothing is written.
    ModelError
        The converter failed on the model, or the graph it made is not valid.

    Notes
    -----
    ``metadata_props`` holds ``"sciconv"`` (the JSON of :func:`~sciconv.models.get_metadata`),
    ``"input_transform"``, ``"normalization"``, ``"postprocess"`` and ``"divisor"`` (JSON, when
    recorded), ``"padding"`` (:data:`PADDING`, with a divisor), ``"task"`` and
    ``"sciconv_version"``. Sides that are not multiples of the divisor are padded **centred**
    (reflect, half the padding rounded down before the image), as ``predict_tiled`` pads them;
    padding only after the image gives other values near the borders. The input transform
    (grey/RGB, flipping bright backgrounds, saturated plateaus restored:
    :func:`sciconv.preprocess.apply_input_transform`), normalization and the instance watershed
    are not in the graph (see the module docstring): run them around the ONNX model as sciconv
    does (the README's ONNX recipe). A mixed-precision model (``mixed_bfloat16``,
    ``mixed_float16``) is exported as its float32 copy with the same weights. Needs the
    optional extra ``pip install "sciconv[onnx]"``
    (onnx, onnxruntime, tf2onnx).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, onnxruntime
    >>> from sciconv.models import export, segmenter
    >>> model = segmenter((None, None, 1), depth=2, filters=4)
    >>> p = export(model, pathlib.Path(tempfile.mkdtemp()) / "seg.onnx")
    >>> session = onnxruntime.InferenceSession(str(p))
    >>> x = np.zeros((1, 16, 16, 1), np.float32)
    >>> session.run(None, {session.get_inputs()[0].name: x})[0].shape
    (1, 16, 16, 2)
    >>> session.get_modelmeta().custom_metadata_map["task"]
    'segmentation'
    """
    import sciconv
    from sciconv._atomic import atomic_output, write_error

    if not isinstance(model, keras.Model):
        raise ModelError(not_a_model(model))
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"format must be one of {EXPORT_FORMATS}; got {format!r}")
    if format == "bioimageio":
        from sciconv.models.bioimageio import export_bioimageio

        return export_bioimageio(model, path, overwrite=overwrite)
    if len(model.inputs) != 1:
        raise ModelError(
            f"export needs a model with one input; {model.name!r} has {len(model.inputs)}"
        )
    path = user_path(path)
    if path.suffix.lower() != ".onnx":  # ONNX bytes in a file named .keras (fuzzing QA)
        raise ConfigError(
            f"format='onnx' writes an ONNX file: name it .onnx; got {path.name!r} (a .keras "
            "file: model.save; a BioImage.IO package: format='bioimageio', a .zip)",
            path=path,
        )
    onnx = _onnx()
    import tensorflow as tf

    model = float32_copy(model, path)

    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name=model.inputs[0].name)
    metadata = get_metadata(model)
    props = {
        "sciconv": json.dumps(metadata),
        "sciconv_version": sciconv.__version__,
        "task": str(metadata.get("task", "")),
    }
    for key in ("input_transform", "normalization", "postprocess", "class_names", "divisor"):
        if key in metadata:
            props[key] = json.dumps(metadata[key])
    if "divisor" in metadata:  # how predict_tiled pads a side that is not a multiple of it
        props["padding"] = json.dumps(PADDING)
    if "normalization" not in metadata:  # what sciconv's predict paths apply to such a model
        from sciconv.preprocess import DEFAULT_NORMALIZATION

        props["normalization"] = json.dumps(DEFAULT_NORMALIZATION)
    with atomic_output(path, overwrite=overwrite) as tmp:
        try:
            with _log_settings_kept():
                model.export(
                    str(tmp),
                    format="onnx",
                    input_signature=[spec],
                    opset_version=opset,
                    verbose=False,
                )
        except Exception as exc:  # a full, over-quota or read-only disk is a WriteError
            raise write_error(exc, path) or ModelError(
                f"ONNX export failed ({type(exc).__name__}: {exc})", path=path
            ) from exc
        proto = onnx.load(str(tmp))
        del proto.metadata_props[:]
        for key, value in props.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.doc_string = (
            f"sciconv {metadata.get('task', 'model')} {model.name!r}: normalized (N, H, W, C) "
            "float32 in; the input transform, normalization and instance post-processing are "
            "not in the graph (see metadata_props 'input_transform', 'normalization' and "
            "'postprocess')"
        )
        if "padding" in props:
            proto.doc_string += (
                "; pad H and W up to a multiple of metadata_props 'divisor' as 'padding' says "
                "(reflect, centred) and crop the output back"
            )
        onnx.save(proto, str(tmp))
        try:  # a graph onnxruntime cannot load (an op or dtype the converter left) is not kept
            # the file; the model in memory where its name is not UTF-8 (caf\xe9: onnx's C++
            # takes no such str; the graph is the same)
            onnx.checker.check_model(
                str(tmp) if name_text(tmp) == str(tmp) else proto, full_check=True
            )
        except Exception as exc:
            first = str(exc).strip().splitlines()[0][:300]
            raise ModelError(
                f"the ONNX graph tf2onnx made is not valid ({type(exc).__name__}: {first}); "
                f"nothing was written ({_hint(str(exc))})",
                path=path,
            ) from exc
    return path


def float32_copy(model: keras.Model, path: str | os.PathLike | None = None) -> keras.Model:
    """``model`` when it computes in float32, else a float32 copy built now with its current
    weights and metadata (what ONNX and BioImage.IO receive: their runtimes do not run
    bfloat16).

    The copy is built under the float32 global policy, so layers that custom layers make
    inside themselves (which take the global policy) compute in float32 too.

    Raises
    ------
    ModelError
        The model cannot be rebuilt in float32, or a layer keeps another dtype.

    Examples
    --------
    >>> inputs = keras.Input((None, None, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    >>> float32_copy(model) is model
    True
    """
    from sciconv.models.precision import mixed_dtypes, with_policy

    if not mixed_dtypes(model):
        return model
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        copy = with_policy(model, "float32")
    except Exception as exc:
        raise ModelError(
            f"{model.name!r} computes in {', '.join(mixed_dtypes(model))}, which ONNX runtimes "
            f"do not run, and could not be rebuilt in float32 ({type(exc).__name__}: {exc}); "
            "build it under keras.config.set_dtype_policy('float32'), copy the weights "
            "(set_weights) and export that model",
            path=path,
        ) from exc
    finally:
        keras.config.set_dtype_policy(policy)
    left = mixed_dtypes(copy)
    if left:
        raise ModelError(
            f"{model.name!r} still computes in {', '.join(left)} after the float32 rebuild "
            "(a custom layer fixes its own dtype); give that layer dtype='float32' and export "
            "again",
            path=path,
        )
    return copy


def _hint(message: str) -> str:
    """Why the checker refused the graph, from its message."""
    import re

    dtype = re.search(r"tensor\((b?float16)\)", message)
    if dtype:
        return (
            f"a layer computes in {dtype.group(1)}, which ONNX convolutions do not take; give "
            "that layer dtype='float32'"
        )
    op = re.search(r"No Op registered for (\w+)", message)
    if op:
        return (
            f"the TensorFlow op {op.group(1)} has no ONNX equivalent: random ops such as "
            "mc_dropout's and the loops of uncertainty wrappers do not convert; export the "
            "plain model and run such wrappers around it"
        )
    return "export the plain model; wrappers and custom ops may not convert"


def _onnx():
    try:
        with _log_settings_kept():
            import onnx
            import tf2onnx  # noqa: F401  (Keras' ONNX export converts through it)
    except ImportError as exc:
        raise MissingDependencyError(
            f"ONNX export needs onnx and tf2onnx ({exc}); "
            'install them with: pip install "sciconv[onnx]"'
        ) from exc
    return onnx


@contextlib.contextmanager
def _log_settings_kept():
    """``TF_CPP_MIN_LOG_LEVEL`` and the ``absl`` logger's level as they were before the block.

    tf2onnx's modules set ``TF_CPP_MIN_LOG_LEVEL=3`` and the absl logger's level when imported
    (``tf2onnx.convert`` only when Keras' export first converts): for good, whatever the caller
    had set, so every process started afterwards (dask workers, subprocesses) lost TensorFlow's
    C++ errors (QA52 state #5).
    """
    import logging

    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    absl = logging.getLogger("absl")
    absl_level = absl.level
    try:
        yield
    finally:
        if level is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        else:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = level
        absl.setLevel(absl_level)
