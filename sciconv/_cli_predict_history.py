"""The provenance ``sciconv predict`` records in its products' HISTORY: the model, its identity
and the settings, in the form ``--skip-existing`` compares an earlier run's with.

Examples
--------
>>> from pathlib import Path
>>> model_identity(Path("pretrained:nuclei"), shipped=True).startswith("sciconv ")
True
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["history_settings", "model_identity", "mosaic_history", "provenance"]


def provenance(params: dict, args, model, channels: int, *, choose: bool = True) -> dict:
    """The prediction's settings for the products' HISTORY: ``params`` plus what the command
    line chose around them (the channel segmented; the samples the probabilities average with
    ``--uncertainty``: ``tta`` says ``d4`` for ``--uncertainty tta``, QA read ``tta = None``
    as "not averaged"), and the precision ``auto`` chose (it
    changes the probabilities: a rerun elsewhere must be able to ask for the same; not
    ``choose``: ``auto`` left as it is, not timed)."""
    from sciconv import inference

    extra = {
        "model_id": getattr(args, "model_id", None),
        "channel": args.channel,
        "uncertainty": args.uncertainty,
        "nodata": getattr(args, "nodata", None),
        "mask": getattr(args, "mask", None),
        "ignore_flags": getattr(args, "ignore_flags", None),
        "hdu": getattr(args, "hdu", None),
    }
    out = {**params, **{k: v for k, v in extra.items() if v is not None}}
    if args.uncertainty == "tta" and out.get("tta") is None:  # the probabilities are its mean
        out["tta"] = "d4 (--uncertainty tta)"
    if out.get("precision") == "auto" and args.uncertainty is not None:
        out["precision"] = f"{inference.UNCERTAINTY_PRECISION} (auto)"
    elif out.get("precision") == "auto" and choose:  # cached by the prediction: no new timing
        chosen = inference.choose_precision(model, "auto", tile=(512, 512), channels=channels)
        out["precision"] = f"{chosen} (auto)"
    return out


def model_identity(path: Path, *, shipped: bool) -> str:
    """What tells one model file from another of the same name, for the products' HISTORY
    (``model_id``; ``--skip-existing`` compares it): ``sha256:`` and the first 16 hex digits
    of the file's SHA-256 (a retrained ``best.keras`` differs); for a shipped model the sciconv
    version and the digest of its weights and settings (``models.pretrained_digest``: they
    change within a version).

    Examples
    --------
    >>> model_identity(Path("pretrained:nuclei"), shipped=True).startswith("sciconv ")
    True
    """
    if shipped:
        from sciconv import __version__, models

        name = str(path).split(":", 1)[-1]
        return f"sciconv {__version__} {models.pretrained_digest(name)}"
    import pooch  # the file hash sciconv.fetch checks downloads with

    return f"sha256:{pooch.file_hash(str(path), alg='sha256')[:16]}"


def history_settings(params: dict, args, model, *, choose: bool = False) -> list[str]:
    """The model and settings lines ``sciconv predict`` records in the products'
    HISTORY (``write_products``' form), to compare an earlier run's with (``--skip-existing``);
    ``--precision auto`` as it is, not the choice it makes (``choose``: the choice, as
    :func:`provenance` gives it)."""
    from sciconv.postprocess._writers import history_record

    recorded = provenance(params, args, model, int(model.input_shape[-1] or 1), choose=choose)
    return history_record(Path(args.model).name, recorded)


def mosaic_history(params: dict, args, model, *, choose: bool = True) -> list[str]:
    """The model and settings lines of a block-wise input's products: the whole image's
    (:func:`history_settings`, with the precision ``auto`` chose) and the blocks'."""
    from sciconv.postprocess._writers import history_record

    margin = "auto" if args.block_margin is None else args.block_margin
    blocks = {"block": args.block, "block_margin": margin, "batch_size": args.batch_size}
    # the precision "auto" chose, as whole-image products record it (QA: "auto" hid bfloat16);
    # not ``choose``: "auto" as it is, to compare an earlier run's with (--skip-existing)
    return history_settings(params, args, model, choose=choose) + history_record(None, blocks)
