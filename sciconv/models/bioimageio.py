"""Export a sciconv model as a BioImage.IO model package (model spec 0.5, ``keras_v3`` weights).

The package (a zip) holds ``rdf.yaml`` written and validated by ``bioimageio.spec``, the model as a
Keras 3 ``.keras`` file (and, with ``onnx=True``, the ONNX file of :func:`sciconv.models.export`),
a test input (a sample after the model's input transform) and the test output sciconv computes
from it, a README and a cover image.
A mixed-precision model (trained after :func:`sciconv.devices.configure` chose ``mixed_bfloat16``)
is packaged as its float32 copy with the same weights, which every consumer runs.
Consumers (``bioimageio.core``, deepImageJ, ilastik, QuPath) run it as sciconv does:

- input ``batch, y, x, channel`` float32, **raw pixels**; the recorded percentile normalization
  (1-99.8 by default, statistics over the whole image) is the spec's ``scale_range``
  pre-processing, so consumers apply it themselves;
- output: per-pixel class probabilities ``batch, y, x, channel``, with a ``halo`` of the
  model's receptive-field half-width (:func:`sciconv.inference.receptive_field`: the pixels
  a tile loses a side, which consumers that tile overlap; sciconv's ``overlap="auto"``
  alike), so inputs are at least twice that plus a step;
- not in the package: a model's ``input_transform`` (the pretrained nuclei model takes R, G, B,
  replicates grey images, inverts bright-background images, averages fluorescence saved in
  colour to grey and gives saturated nuclei's flat tops a profile,
  :func:`sciconv.preprocess.restore_saturated`, before normalizing: feed it RGB with bright
  nuclei on a dark background) and the
  instance watershed (:func:`sciconv.postprocess.instances` with the recorded ``postprocess``
  keywords, listed in the README and the rdf's ``config.sciconv``).
"""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from sciconv._validation import not_a_model
from sciconv._warnings import caught
from sciconv.errors import ConfigError, MissingDependencyError, ModelError
from sciconv.io import user_path
from sciconv.models.metadata import get_metadata
from sciconv.preprocess import is_raw_normalization

__all__ = ["export_bioimageio"]


def _spec():
    try:
        import bioimageio.spec  # noqa: F401
        from bioimageio.spec.model import v0_5
    except ImportError as exc:
        raise MissingDependencyError(
            f"BioImage.IO export needs bioimageio.spec ({exc}); "
            'install it with: pip install "sciconv[bioimageio]"'
        ) from exc
    return v0_5


def _sample(
    sample_image: Any, channels: int, divisor: int, side: int, transform: dict | None
) -> np.ndarray:
    """The test input: ``(1, H, W, C)`` float32, H and W multiples of ``divisor`` and at least
    ``side``: a sample image after the model's input ``transform`` (the pixels the package's
    pre-processing takes; an H&E sample flipped as sciconv flips it), else seeded noise."""
    if sample_image is None:
        rng = np.random.default_rng(0)
        n = max(64, side)
        arr = rng.gamma(2.0, 20.0, size=(n, n, channels)).astype(np.float32)
    else:
        from sciconv.io import as_array
        from sciconv.preprocess import apply_input_transform

        arr = np.asarray(as_array(sample_image, load=True), dtype=np.float32)
        if transform and np.isfinite(arr).all():
            arr = apply_input_transform(arr, transform)
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim == 2:  # a grey image: each channel alike (R = G = B for an RGB model)
            arr = np.repeat(arr[..., None], channels, axis=-1)
        if arr.ndim != 3 or arr.shape[-1] != channels:
            raise ConfigError(
                f"sample_image must be (H, W) or (H, W, {channels}) for this model; "
                f"got shape {arr.shape}"
            )
        if not np.isfinite(arr).all():  # NaN test tensors pass any comparison: refuse them
            raise ConfigError(
                "sample_image has NaN or infinite pixels; give a sample without bad pixels"
            )
    h, w = (n - n % divisor for n in arr.shape[:2])
    if min(h, w) < max(divisor, side):
        raise ConfigError(
            f"sample_image of {arr.shape[0]} x {arr.shape[1]} px is smaller than the package's "
            f"least input ({max(divisor, side)} px a side: its halo on both sides and a step)"
        )
    return np.ascontiguousarray(arr[None, :h, :w])


def _portable(model: keras.Model) -> keras.Model:
    """The model without sciconv's metadata layer (an identity), so plain Keras loads it.

    Consumers of the package (bioimageio.core, deepImageJ, ...) load the ``.keras`` file without
    sciconv installed; the metadata travels in the rdf's ``config.sciconv`` instead.
    """
    from sciconv.models.layers import SciconvMetadata

    def clone(layer):
        if isinstance(layer, SciconvMetadata):
            return keras.layers.Identity(name=layer.name)
        if isinstance(layer, keras.layers.Lambda):  # keras 3.12 clones it (3.15 refuses)
            raise ValueError(f"Lambda layer {layer.name!r} is Python code consumers cannot load")
        config = layer.get_config()
        if isinstance(layer, keras.layers.BatchNormalization):
            # trained under MirroredStrategy (synchronized): Keras refuses that setting on
            # other backends, and inference (moving statistics) does not use it
            config["synchronized"] = False
        return layer.__class__.from_config(config)

    portable = keras.models.clone_model(model, clone_function=clone)
    portable.set_weights(model.get_weights())
    custom = sorted(
        {type(layer).__name__ for layer in portable.layers}
        - {type(layer).__name__ for layer in portable.layers if _is_keras(layer)}
    )
    if custom:
        raise ModelError(
            f"BioImage.IO export needs a model of Keras layers only (consumers load it without "
            f"sciconv); {model.name!r} has custom layers {custom}"
        )
    return portable


def _halo(model: keras.Model) -> int:
    """The receptive-field half-width of ``model`` (what sciconv's tiles overlap by, a side)."""
    from sciconv.models.introspect import receptive_field

    return int(max(receptive_field(model)))


def _is_keras(layer) -> bool:
    return type(layer).__module__.startswith("keras.")


def _preprocessing_text(normalization: dict) -> str:
    if is_raw_normalization(normalization):
        return "No pre-processing: the model was trained on pixels as given (scaled by its user)."
    return (
        f"Pre-processing (in rdf.yaml): `scale_range` with percentiles "
        f"{normalization.get('low')} to {normalization.get('high')} over the whole image, as "
        f"sciconv normalizes ({normalization})."
    )


def _readme(model: keras.Model, metadata: dict, normalization: dict) -> str:
    post = metadata.get("postprocess", {})
    classes = model.outputs[0].shape[-1]
    return f"""# {model.name} (sciconv)

Exported by sciconv from a `{metadata.get("task", "model")}` model.

## Input
`batch, y, x, channel` float32 **raw pixels**. {_preprocessing_text(normalization)}
Input transform applied by sciconv before that and NOT part of this package:
`{metadata.get("input_transform")}` (for the nuclei model: grey images are replicated to R, G,
B; images with a bright background (H&E, brightfield) are inverted, all channels about one
maximum; a dark-background image with an empty channel is averaged to grey; with
`restore_saturated`, the flat plateaus of over-exposed nuclei are raised to a rounded profile,
`sciconv.preprocess.restore_saturated`; feed RGB with bright nuclei on a dark background).

Height and width: multiples of {metadata.get("divisor", 1) or 1}, at least the minimum in
`rdf.yaml` (pad smaller images, by reflection as sciconv does).

## Output
Per-pixel class probabilities `batch, y, x, channel` (softmax over {classes} classes;
for the nuclei model background / interior / boundary). Tiles: overlap them by the `halo` of
`rdf.yaml` (the receptive field) on each side, or their borders differ from a whole-image run.

## Instances
The watershed that turns probabilities into instance labels is not part of the model:
`sciconv.postprocess.instances(prob, **{post})` (seeded watershed on the interior probability).
With sciconv installed, `sciconv.inference.predict_instances(model, image)` does all steps.

## Validation
The test input is a sample image after the input transform above (what the pre-processing
takes); the test output was computed from it by sciconv (normalization, then the network);
`bioimageio.core`'s model test reproduces them. Scores recorded with the model:
{ {k: v for k, v in metadata.items() if k.startswith("val_") or "score" in k.lower()} or "none" }.
"""


def _cover(prob: np.ndarray, path: Path) -> None:
    from PIL import Image

    fg = 1.0 - prob[0, ..., 0] if prob.shape[-1] > 1 else prob[0, ..., 0]
    img = (np.clip(fg, 0, 1) * 255).astype(np.uint8)
    big = Image.fromarray(img).resize((max(64, img.shape[1] * 4), max(64, img.shape[0] * 4)))
    big.convert("RGB").save(path)


def _class_names(metadata: dict, classes: int) -> list[str]:
    """The output planes' names: the model's recorded ``class_names`` (one per plane), else the
    names sciconv's products give the planes (``CLASSn`` cards of
    :func:`sciconv.postprocess.write_products`: background / interior / boundary for 3)."""
    from sciconv.postprocess import class_name_list

    names = metadata.get("class_names")
    if isinstance(names, (list, tuple)) and len(names) == classes:
        return [str(n) for n in names]
    return class_name_list(None, classes)


def _first_line(exc: Exception) -> str:
    """The first lines of a third-party error (pydantic lists every licence id otherwise)."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return f"{type(exc).__name__}: " + "; ".join(lines[:3])[:400]


def _preprocessing(v0_5, normalization: dict, y_in, x_in) -> list:
    """The percentile normalization as sciconv applies it: per channel (its default) over
    y and x, or over y, x and the channels together; then the clip to [0, 1] when recorded.
    None for a model trained on pixels as given (:data:`~sciconv.preprocess.RAW_NORMALIZATION`)."""
    if is_raw_normalization(normalization):
        return []
    axes = [y_in, x_in]
    if normalization.get("per_channel") is False:
        axes.append(v0_5.AxisId("channel"))
    steps = [
        v0_5.ScaleRangeDescr(
            kwargs=v0_5.ScaleRangeKwargs(
                axes=axes,
                min_percentile=float(normalization.get("low", 1.0)),
                max_percentile=float(normalization.get("high", 99.8)),
            )
        )
    ]
    if normalization.get("clip"):
        steps.append(v0_5.ClipDescr(kwargs=v0_5.ClipKwargs(min=0.0, max=1.0)))
    return steps


def export_bioimageio(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    sample_image: Any = None,
    name: str | None = None,
    description: str | None = None,
    authors: Sequence[str] = ("sciconv developers",),
    license: str = "BSD-3-Clause",
    cite: Sequence[tuple[str, str]] = (
        (
            "Ronneberger, Fischer and Brox (2015): U-Net: convolutional networks for "
            "biomedical image segmentation, MICCAI 2015",
            "https://doi.org/10.1007/978-3-319-24574-4_28",
        ),
    ),
    tags: Sequence[str] = ("sciconv", "segmentation", "2d", "keras"),
    onnx: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` as a BioImage.IO model package (zip, spec 0.5, ``keras_v3`` weights).

    Parameters
    ----------
    model : keras.Model
        A sciconv segmenter: one input ``(None, None, C)`` and per-pixel probabilities out.
    path : str or os.PathLike
        The ``.zip`` to write (atomically).
    sample_image : array_like or GridImage, optional
        Raw pixels ``(H, W)`` or ``(H, W, C)`` for the test tensors: the model's input
        transform applied (an H&E image flipped, as sciconv does), cropped to the model's
        divisor; at least the package's least input (twice the halo and a step a side).
        Default: a seeded random image of that size (64 x 64 at least).
    name, description : str, optional
        Default: from the model's name and metadata.
    authors : sequence of str
        Author names.
    license : str
        An SPDX licence id.
    cite : sequence of (text, url)
        Citations (the package's ``cite``; BioImage.IO's upload review follows each url).
        Default: the U-Net paper, the architecture of sciconv's segmenters; add your own
        work and the training data's (the shipped nuclei model: Caicedo et al. 2019, Nature
        Methods 16, 1247, https://doi.org/10.1038/s41592-019-0612-7).
    tags : sequence of str
    onnx : bool
        Add ONNX weights (through :func:`sciconv.models.export`; needs ``sciconv[onnx]``).
        Without them the package runs in Python only (bioimageio.core with Keras 3):
        deepImageJ, ilastik and QuPath's model runners take ONNX (or TensorFlow/PyTorch)
        weights, not ``keras_v3``.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ModelError
        The model is not built (a Sequential without an ``Input``), has more than one input
        or does not map ``(H, W, C)`` to ``(H, W, K)``.
    ConfigError
        ``sample_image`` has the wrong shape.
    MissingDependencyError
        bioimageio.spec is not installed (``pip install "sciconv[bioimageio]"``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sciconv.models import segmenter
    >>> model = segmenter((None, None, 1), depth=1, filters=2)
    >>> from sciconv.models import export_bioimageio
    >>> p = export_bioimageio(model, pathlib.Path(tempfile.mkdtemp()) / "seg.zip")
    >>> p.suffix
    '.zip'
    """
    from sciconv._atomic import atomic_output
    from sciconv.preprocess import DEFAULT_NORMALIZATION, normalize_spec

    if not isinstance(model, keras.Model):
        raise ModelError(not_a_model(model))
    said = ""
    try:
        model_inputs, model_outputs = model.inputs, model.outputs
    except (AttributeError, ValueError) as exc:  # a Sequential never built or called
        model_inputs = model_outputs = None
        said = f" ({str(exc).splitlines()[0]})"
    if not model_inputs or not model_outputs:
        raise ModelError(
            f"BioImage.IO export needs a built model; {model.name!r} has no defined input or "
            f"output yet{said}: give a Sequential a keras.Input((None, None, C)) first, or "
            "build it with sciconv.models.segmenter"
        )
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise ModelError(f"BioImage.IO export needs one (H, W, C) input; {model.name!r} differs")
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 4:
        raise ModelError(f"BioImage.IO export needs one (H, W, K) output; {model.name!r} differs")
    v0_5 = _spec()
    from bioimageio.spec import save_bioimageio_package

    from sciconv.models.export import float32_copy

    path = user_path(path)
    model = float32_copy(model, path)  # a mixed-precision model is packaged as its float32 copy
    metadata = get_metadata(model)
    normalization = dict(metadata.get("normalization") or DEFAULT_NORMALIZATION)
    raw = is_raw_normalization(normalization)  # trained on pixels as given: no pre-processing
    if not raw and normalization.get("method") != "percentile":
        raise ModelError(
            f"BioImage.IO export describes percentile normalization only; {model.name!r} "
            f"records {normalization}"
        )
    channels = int(model.inputs[0].shape[-1])
    classes = int(model.outputs[0].shape[-1])
    divisor = int(metadata.get("divisor", 1) or 1)
    step = max(divisor, 1)
    halo = max(_halo(model), 1)  # the spec takes a halo >= 1 (a 1x1-conv model has 0)
    least = step * (2 * halo // step + 1)  # the halo on both sides and one step of pixels
    transform = metadata.get("input_transform")
    x = _sample(sample_image, channels, divisor, least, transform)
    fed = x[0] if raw else normalize_spec(x[0], normalization)
    prob = np.asarray(model.predict(fed[None], verbose=0))
    prob = prob.astype(np.float32)

    with tempfile.TemporaryDirectory() as tmp_dir, atomic_output(path, overwrite=overwrite) as tmp:
        work = Path(tmp_dir)
        try:
            _portable(model).save(work / "model.keras")
        except (ValueError, TypeError) as exc:  # a Lambda layer, an unserializable custom one
            raise ModelError(
                f"the model cannot be packaged as a portable .keras file ({_first_line(exc)}); "
                "BioImage.IO consumers load it without sciconv or your code",
                path=path,
            ) from exc
        np.save(work / "test_input.npy", x)
        np.save(work / "test_output.npy", prob)
        (work / "README.md").write_text(_readme(model, metadata, normalization), encoding="utf-8")
        _cover(prob, work / "cover.png")
        y_in, x_in = v0_5.AxisId("y"), v0_5.AxisId("x")
        in_id, out_id = v0_5.TensorId("raw"), v0_5.TensorId("probabilities")
        rgb = bool(transform and transform.get("to_rgb")) and channels == 3
        channel_names = ["R", "G", "B"] if rgb else [f"c{i}" for i in range(channels)]
        inputs = [
            v0_5.InputTensorDescr(
                id=in_id,
                description="pixels as the model was trained on them (no pre-processing)"
                if raw
                else "raw pixels (the percentile normalization is the preprocessing)",
                axes=[
                    v0_5.BatchAxis(),
                    v0_5.SpaceInputAxis(id=y_in, size=v0_5.ParameterizedSize(min=least, step=step)),
                    v0_5.SpaceInputAxis(id=x_in, size=v0_5.ParameterizedSize(min=least, step=step)),
                    v0_5.ChannelAxis(channel_names=[v0_5.Identifier(n) for n in channel_names]),
                ],
                test_tensor=v0_5.FileDescr(source=work / "test_input.npy"),
                data=v0_5.IntervalOrRatioDataDescr(type="float32"),
                preprocessing=_preprocessing(v0_5, normalization, y_in, x_in),
            )
        ]
        names = _class_names(metadata, classes)
        outputs = [
            v0_5.OutputTensorDescr(
                id=out_id,
                description="per-pixel class probabilities (softmax)",
                axes=[
                    v0_5.BatchAxis(),
                    # tiles lose ``halo`` pixels a side to the border (the receptive field):
                    # consumers that tile (bioimageio.core, deepImageJ) overlap them by it
                    v0_5.SpaceOutputAxisWithHalo(
                        id=y_in, halo=halo, size=v0_5.SizeReference(tensor_id=in_id, axis_id=y_in)
                    ),
                    v0_5.SpaceOutputAxisWithHalo(
                        id=x_in, halo=halo, size=v0_5.SizeReference(tensor_id=in_id, axis_id=x_in)
                    ),
                    v0_5.ChannelAxis(channel_names=[str(n) for n in names]),
                ],
                test_tensor=v0_5.FileDescr(source=work / "test_output.npy"),
                data=v0_5.IntervalOrRatioDataDescr(type="float32"),
            )
        ]
        import tensorflow as tf

        weights: dict[str, Any] = {
            "keras_v3": v0_5.KerasV3WeightsDescr(
                source=work / "model.keras",
                keras_version=keras.__version__,
                backend=("tensorflow", tf.__version__),
            )
        }
        if onnx:
            from sciconv.models.export import export

            export(model, work / "model.onnx")
            import onnx as onnx_lib

            opset = max(o.version for o in onnx_lib.load(str(work / "model.onnx")).opset_import)
            weights["onnx"] = v0_5.OnnxWeightsDescr(
                source=work / "model.onnx", opset_version=opset, parent="keras_v3"
            )
        try:
            descr = v0_5.ModelDescr(
                name=name or f"sciconv {model.name}",
                description=description
                or f"sciconv {metadata.get('task', 'segmentation')} model {model.name!r}",
                authors=[v0_5.Author(name=a) for a in authors],
                cite=[v0_5.CiteEntry(text=t, url=u) for t, u in cite],
                license=license,
                tags=list(tags),
                documentation=v0_5.FileDescr(source=work / "README.md"),
                covers=[v0_5.FileDescr(source=work / "cover.png")],
                inputs=inputs,
                outputs=outputs,
                weights=v0_5.WeightsDescr(**weights),
                config={"sciconv": {k: v for k, v in metadata.items() if _plain(v)}},
            )
        except ValueError as exc:  # pydantic's ValidationError: a bad licence, a flat sample
            raise ModelError(
                f"BioImage.IO refuses the description ({_first_line(exc)})", path=path
            ) from exc
        summary = getattr(descr, "validation_summary", None)
        if summary is not None and summary.status == "failed":
            raise ModelError(f"BioImage.IO description is not valid: {summary}", path=path)
        with caught() as quiet:
            # bioimageio.spec leaves the packaged files open; close them (gc) before the
            # temporary folder goes, without a ResourceWarning per file
            quiet.simplefilter("ignore", ResourceWarning)
            save_bioimageio_package(descr, output_path=tmp)
            gc.collect()
    return path


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, list, dict, type(None)))
