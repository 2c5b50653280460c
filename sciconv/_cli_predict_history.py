"""The provenance ``sciconv predict`` records in its products' HISTORY: the model, its identity
and the settings, in the form ``--skip-existing`` compares an earlier run's with.

Examples
--------
>>> from pathlib import Path
>>> model_identity(Path("pretrained:nuclei"), shipped=True).startswith("sciconv ")
True
"""

from __future__ import annotations

import warnings
from pathlib import Path

from sciconv.errors import SciconvWarning

__all__ = [
    "history_settings",
    "model_identity",
    "mosaic_history",
    "products_record",
    "provenance",
    "series_record",
    "warn_mixed_precision",
]


def provenance(params: dict, args, model, channels: int, *, choose: bool = True) -> dict:
    """The prediction's settings for the products' HISTORY: ``params`` plus what the command
    line chose around them (the channel segmented; the image read, ``hdu`` of a FITS file and
    ``series`` of a TIFF holding several, so ``--skip-existing`` tells one plate position's
    products from another's (QA 56); the samples the probabilities average with
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
        "uncertainty_file": getattr(args, "uncertainty_file", None),
        "uncertainty_type": getattr(args, "uncertainty_type", None),
        "ignore_flags": getattr(args, "ignore_flags", None),
        "hdu": getattr(args, "hdu", None),
        "series": getattr(args, "series", None),  # a plate's position, a slide's image (QA 56)
        "background": getattr(args, "background", None),  # the catalog's fluxes (QA)
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


def series_record(path, args) -> dict:
    """Which image of a TIFF holding several (a plate's positions, a slide's scan beside its
    label) a catalog's objects are from, for its metadata: ``SERIES``, the index read
    (``--series``, or the one :func:`sciconv.io.read` takes by default), and ``SERIESNM``, the
    name the file gives it (an OME ``Image Name``: ``"A01 field 2"``), when it gives one. Two
    positions' catalogs are told apart without their images (QA 56: no catalog said which field
    it measured).

    Parameters
    ----------
    path : pathlib.Path
        The input file.
    args : argparse.Namespace
        ``sciconv predict``'s options (``series``).

    Returns
    -------
    dict
        Empty for an input that is not a TIFF, and for a TIFF holding one image read without
        ``--series``; ``{"SERIES": index}`` alone when the file cannot be read again.

    Examples
    --------
    >>> import argparse
    >>> series_record(Path("a.fits"), argparse.Namespace(series=None))
    {}
    """
    from sciconv import io
    from sciconv.io._tiff_series import choose_series

    asked = getattr(args, "series", None)
    if not Path(path).name.lower().endswith(io.TIFF_EXTENSIONS):
        return {}
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            if asked is None and len(tif.series) < 2:
                return {}
            index = choose_series(tif, asked, path)
            name = str(getattr(tif.series[index], "name", "") or "").strip()
    except Exception:  # read once already: the record is no reason to fail the input
        return {} if asked is None else {"SERIES": int(asked)}
    record = {"SERIES": int(index)}
    if name.lower() not in _UNNAMED:
        record["SERIESNM"] = name
    return record


#: The names tifffile gives a series whose file names none (``describe_series`` omits them too).
_UNNAMED = ("", "baseline", "unknown")


def model_identity(path: Path, *, shipped: bool, model=None) -> str:
    """What tells one model file from another of the same name, for the products' HISTORY
    (``model_id``; ``--skip-existing`` compares it): the loaded ``model``'s content identity,
    ``sha256:`` and 16 hex digits of its architecture, metadata and weights
    (``postprocess._catalog.model_digest``: a retrained ``best.keras`` differs, two bit-identical
    trainings do not, though their files differ in the save date; without ``model``, of the
    file's bytes); for a shipped model the sciconv version and the digest of its weights and
    settings (``models.pretrained_digest``: they change within a version).

    Examples
    --------
    >>> model_identity(Path("pretrained:nuclei"), shipped=True).startswith("sciconv ")
    True
    """
    if shipped:
        from sciconv import __version__, models

        name = str(path).split(":", 1)[-1]
        return f"sciconv {__version__} {models.pretrained_digest(name)}"
    if model is not None:
        from sciconv.postprocess import model_digest

        return model_digest(model)
    import pooch  # the file hash sciconv.fetch checks downloads with

    return f"sha256:{pooch.file_hash(str(path), alg='sha256')[:16]}"


def history_settings(params: dict, args, model, *, choose: bool = False) -> list[str]:
    """The model and settings lines ``sciconv predict`` records in the products'
    HISTORY (``write_products``' form), to compare an earlier run's with (``--skip-existing``);
    ``--precision auto`` as it is, not the choice it makes (``choose``: the choice, as
    :func:`provenance` gives it)."""
    from sciconv.postprocess import history_record

    recorded = provenance(params, args, model, int(model.input_shape[-1] or 1), choose=choose)
    return history_record(Path(args.model).name, recorded)


def mosaic_history(params: dict, args, model, *, choose: bool = True) -> list[str]:
    """The model and settings lines of a block-wise input's products: the whole image's
    (:func:`history_settings`, with the precision ``auto`` chose) and the blocks'."""
    from sciconv.postprocess import history_record

    margin = "auto" if args.block_margin is None else args.block_margin
    blocks = {"block": args.block, "block_margin": margin, "batch_size": args.batch_size}
    # the precision "auto" chose, as whole-image products record it (QA: "auto" hid bfloat16);
    # not ``choose``: "auto" as it is, to compare an earlier run's with (--skip-existing)
    return history_settings(params, args, model, choose=choose) + history_record(None, blocks)


def products_record(model, path, args, params, decided) -> list[str]:
    """The HISTORY lines of ``path``'s image products (``postprocess.write_products``')."""
    from sciconv.postprocess import prediction_history

    settings = provenance(params, args, model, int(model.input_shape[-1] or 1))
    return prediction_history(
        Path(args.model).name, settings, decisions=decided, history=["sciconv predict"],
        source=path,
    )  # fmt: skip


def warn_mixed_precision(model, args, planned, done, rest) -> None:
    """``--skip-existing --precision auto``: warn when the finished inputs were segmented in
    another precision than ``auto`` chooses now (another machine, SCICONV_PRECISION): the batch
    would mix bfloat16 and float32 products without a word (QA)."""
    from sciconv import inference
    from sciconv._cli_predict_batch import recorded_precisions

    if args.precision != "auto" or not done or not rest or args.uncertainty is not None:
        return
    before = recorded_precisions([q for p in done for q in planned[p].values()])
    if not before:
        return
    channels = int(model.input_shape[-1] or 1)
    now = inference.choose_precision(model, "auto", tile=(512, 512), channels=channels)
    if before != {now}:
        warnings.warn(
            f"the {len(done)} finished input(s) were segmented in {', '.join(sorted(before))} "
            f"and --precision auto chooses {now} here, so the batch mixes them; pass --precision "
            f"{sorted(before)[0]} (or remove the products) for one precision throughout",
            SciconvWarning,
            stacklevel=3,
        )
