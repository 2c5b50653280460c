"""The dataset settings a trained model was fitted with, to fine-tune it on new data."""

from __future__ import annotations

from typing import Any

__all__ = ["trained_settings"]


def trained_settings(model) -> dict[str, Any]:
    """The keyword arguments of :func:`~sciconv.datasets.from_pairs` that give ``model`` its
    inputs and targets as it was trained: ``normalize`` and ``input_transform`` (those it
    records, which prediction applies) and, for a segmenter that records it, ``target``.

    Fine-tuning a trained model (the pretrained nuclei model, a model from an earlier ``fit``)
    on data prepared otherwise teaches its weights inputs they never saw: the nuclei model
    fine-tuned on unflipped colour images fell from AP@0.5 0.73 to 0.06 on colour and from 0.90
    to 0.23 on fluorescence. ``fit`` refuses such a dataset and names the setting; this gives
    all of them at once.

    Parameters
    ----------
    model : keras.Model
        A model with sciconv metadata.

    Returns
    -------
    dict
        ``normalize`` where the model records a normalization (the builders' default stays
        otherwise: a model that records none was not trained on raw pixels),
        ``input_transform`` (the recorded one, or None), and ``target`` where it records one.

    Examples
    --------
    >>> import sciconv as sc
    >>> from sciconv.datasets import trained_settings
    >>> nuclei = sc.models.pretrained("nuclei")
    >>> settings = trained_settings(nuclei)
    >>> settings["target"], settings["input_transform"]["invert"]
    ('touching', 'auto')
    >>> # train, val = sc.datasets.from_pairs("imgs", "masks", patch_size=128,
    >>> #                                     validation_split=0.2, **settings)
    """
    from sciconv.models import get_metadata

    meta = get_metadata(model)
    settings: dict[str, Any] = {}
    if meta.get("normalization"):  # none recorded: the builders' default, never raw pixels
        settings["normalize"] = dict(meta["normalization"])
    settings["input_transform"] = (
        dict(meta["input_transform"]) if meta.get("input_transform") else None
    )
    if meta.get("target"):
        settings["target"] = meta["target"]
    return settings
