"""Pretrained models shipped inside the sciconv package (the model zoo).

``pretrained()`` lists them; ``pretrained(name)`` loads one (Keras safe mode, nothing unpickled)
with its metadata: the normalization it was trained with and tuned post-processing settings, so
:func:`sciconv.inference.predict_instances` turns a raw image into instance labels with no settings
to repeat. The weights are reproducible: ``tools/train_pretrained_nuclei.py`` trains them from the
data with a fixed seed and writes its settings next to them (``sciconv/pretrained/<name>.json``).

Examples
--------
>>> from sciconv.models import pretrained
>>> sorted(pretrained())
['nuclei']
"""

from __future__ import annotations

import importlib.resources
import json
from typing import Any, overload

import keras

from sciconv._validation import look_up_option
from sciconv.errors import ConfigError, ModelError
from sciconv.models.loading import load
from sciconv.models.metadata import get_metadata, set_metadata

__all__ = ["PRETRAINED", "pretrained", "pretrained_info"]

#: The shipped models: files inside ``sciconv/pretrained/`` and a description.
PRETRAINED: dict[str, dict[str, str]] = {
    "nuclei": {
        "file": "nuclei.keras",
        "settings": "nuclei.json",
        "description": (
            "U-Net (depth 3, 32 filters) that segments cell nuclei in fluorescence, H&E / "
            "brightfield colour and grey brightfield microscopy images into background / "
            "interior / boundary (touching nuclei split by a boundary band); instance labels via "
            "seeded watershed. Trained on the Data Science Bowl 2018 stage 1 images of all three "
            "kinds (CC0) by tools/train_pretrained_nuclei.py. Its input transform (metadata "
            "'input_transform', sciconv.preprocess.apply_input_transform: R, G, B kept, grey "
            "images replicated; bright background inverted; a fluorescence image saved in "
            "colour averaged to grey) takes images as read. Validation "
            "AP@0.5 (input clipped at 1, as predict_instances gives it): 0.87 fluorescence, "
            "0.73 colour, 0.81 grey brightfield (the settings' val_ap50 figures were measured "
            "before the clip: 0.79 grey brightfield)."
        ),
    },
}


def _validate_name(name: Any) -> str:
    if not isinstance(name, str):
        raise ConfigError(f"name must be a string, one of {sorted(PRETRAINED)}; got {name!r}")
    return look_up_option(name, sorted(PRETRAINED), name="pretrained model name")


def _resource(file: str):
    return importlib.resources.files("sciconv").joinpath("pretrained", file)


def pretrained_digest(name: str) -> str:
    """``sha256:`` and 16 hex digits of a shipped model's weights and settings files together:
    what tells one state of it from another (the settings refine how images reach the weights,
    e.g. ``restore_saturated``, within one sciconv version).

    Parameters
    ----------
    name : str
        A name listed by :func:`pretrained`.

    Examples
    --------
    >>> from sciconv.models import pretrained_digest
    >>> pretrained_digest("nuclei").startswith("sha256:")
    True
    """
    import hashlib

    name = _validate_name(name)
    digest = hashlib.sha256()
    for key in ("file", "settings"):
        ref = _resource(PRETRAINED[name][key])
        if not ref.is_file():
            raise ModelError(f"pretrained model {name!r}: {ref} is missing from the package")
        digest.update(ref.read_bytes())
    return f"sha256:{digest.hexdigest()[:16]}"


def pretrained_info(name: str) -> dict[str, Any]:
    """Return the training settings and validation scores recorded for a shipped model.

    Parameters
    ----------
    name : str
        A name listed by :func:`pretrained`.

    Returns
    -------
    dict
        The JSON written by the training script (seed, steps, architecture, normalization,
        post-processing, validation AP@0.5, ...).

    Examples
    --------
    >>> from sciconv.models import pretrained_info
    >>> pretrained_info("nuclei")["target"]
    'touching'
    """
    name = _validate_name(name)
    ref = _resource(PRETRAINED[name]["settings"])
    if not ref.is_file():
        raise ModelError(
            f"pretrained model {name!r}: settings file {ref} is missing from the package"
        )
    return json.loads(ref.read_text(encoding="utf-8"))


# For type checkers: no name lists the models, a name loads one.
@overload
def pretrained(name: None = None) -> dict[str, str]: ...
@overload
def pretrained(name: str) -> keras.Model: ...
@overload
def pretrained(name: str | None = None) -> dict[str, str] | keras.Model: ...
def pretrained(name: str | None = None) -> dict[str, str] | keras.Model:
    """List the pretrained models, or load one.

    Parameters
    ----------
    name : str, optional
        ``None`` returns ``{name: description}`` of what is available; ``"nuclei"`` loads the
        fluorescence nuclei segmenter.

    Returns
    -------
    dict or keras.Model
        The listing, or the model (inference only, not compiled) with its sciconv metadata
        (``task``, ``normalization``, ``postprocess``, ``divisor``, ...).

    Raises
    ------
    ConfigError
        ``name`` is not a shipped model (the message lists the available ones).
    ModelError
        The weights file is missing from the installed package.

    Examples
    --------
    >>> from sciconv.models import get_metadata, pretrained
    >>> pretrained()["nuclei"][:6]
    'U-Net '
    >>> model = pretrained("nuclei")
    >>> get_metadata(model)["task"]
    'segmentation'
    >>> model.output.shape[-1]
    3
    """
    if name is None:
        return {key: entry["description"] for key, entry in PRETRAINED.items()}
    name = _validate_name(name)
    ref = _resource(PRETRAINED[name]["file"])
    if not ref.is_file():
        raise ModelError(
            f"pretrained model {name!r}: weights {ref} are missing from the installed package; "
            "reinstall sciconv or rebuild them with tools/train_pretrained_nuclei.py"
        )
    with importlib.resources.as_file(ref) as path:
        model = load(path, compile=False)
    # the typical object size it was trained on (median over images of the median nucleus
    # diameter, pixels): what a physical object_size= in predict_instances is compared with; and
    # the sizes it saw in training, outside which object_size="auto" resamples the image
    info = pretrained_info(name)
    sizes = info.get("object_diameter_px", {})
    meta = get_metadata(model)
    # the input transform the settings file records (it may add a key after training, e.g.
    # "dark_to_gray": the weights are the same, the way images reach them is refined)
    if info.get("input_transform") and info["input_transform"] != meta.get("input_transform"):
        set_metadata(model, input_transform=info["input_transform"])
    # the training normalization refined for inference: "clip" (pixels above the stretch's top,
    # hot pixels and cosmic rays at thousands of times the nuclei's level, reach the network at 1
    # instead of wiping out their neighbourhood)
    refined = {**meta.get("normalization", {}), **info.get("normalization_at_inference", {})}
    if meta.get("normalization") and refined != meta["normalization"]:
        set_metadata(model, normalization=refined)
    # the target its head was trained on ("touching": a 2 px band between touching nuclei), so
    # fit refuses to fine-tune it on another (sciconv.datasets.trained_settings gives it)
    if info.get("target") and not meta.get("target"):
        set_metadata(model, target=info["target"])
    if sizes.get("image_median_p50") is not None and "object_size" not in meta:
        set_metadata(model, object_size=float(sizes["image_median_p50"]))
    if sizes.get("segments_well_px") is not None and "object_size_range" not in meta:
        set_metadata(model, object_size_range=[float(v) for v in sizes["segments_well_px"]])
    # how bright its training objects were in the stretched image, and how far above the pixel
    # noise: brightness= and denoise="auto" of predict_instances segment again an image whose
    # objects come out fainter or noisier than all of them
    for key in ("object_level", "object_snr"):
        if info.get(key) is not None and key not in meta:
            set_metadata(model, **{key: dict(info[key])})
    return model
