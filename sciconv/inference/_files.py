"""``predict_files``: classify many image files (cutouts), streamed in batches, into a table."""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import keras
import numpy as np

from sciconv._atomic import abandon_scratch, remove_scratch, scratch_folder, target_error
from sciconv._progress import progress_bar
from sciconv._validation import check_int, look_up_option
from sciconv.datasets.prepare import FilePrep
from sciconv.errors import ConfigError, InferenceError, OutputExistsError, SciconvWarning
from sciconv.inference._d4 import predict_d4
from sciconv.inference._model import ClassifierRunner, check_image_level
from sciconv.inference._scale import SCALE_TOLERANCE
from sciconv.inference._settings import tta_mode
from sciconv.io import read_pixels
from sciconv.io._common import warn_caller
from sciconv.io._zarr import ome_zarr_modules
from sciconv.models import get_metadata
from sciconv.models.introspect import model_channels, model_fixed_hw, validate_model
from sciconv.preprocess import NormSpec, check_nodata_fill


def predict_files(
    model: keras.Model,
    paths: Iterable[str | os.PathLike],
    *,
    batch_size: int = 32,
    normalize: str | Mapping | NormSpec | None = "model",
    image_size: int | tuple[int, int] | None = None,
    size_policy: str | None = None,
    tta: bool = False,
    progress: bool = True,
):
    """Classify many image files (cutouts), streamed in batches, into a table.

    Each file is prepared exactly as :func:`sciconv.datasets.from_folder` prepares validation
    images: read, normalized on its own (per image, the model's recorded spec by default), NaN set
    to 0, then fitted to the model's image size by the training ``size_policy`` (by default a
    centre crop / zero pad, never a resample). Files are predicted ``batch_size`` at a time, so
    memory holds one batch.

    Parameters
    ----------
    model : keras.Model
        A classifier (or multilabel/regression model) taking (N, h, w, C).
    paths : path or iterable of path
        Image files (FITS, TIFF, PNG, JPEG); one path is a list of one. A folder's images:
        :func:`sciconv.io.list_images`.
    batch_size : int, optional
        Files per model call. Default 32.
    normalize : "model", "default", method name, dict, NormSpec or None, optional
        As for :func:`predict_tiled`, applied per image.
    image_size : int or (int, int), optional
        Size the images are fitted to; default: the ``image_size`` recorded by
        :func:`sciconv.training.fit`, else the model's input size (required when the model takes
        any size and recorded none).
    size_policy : {"crop", "pad", "resize"}, optional
        How an image of another size is fitted, as in :func:`sciconv.datasets.from_folder`;
        default: the ``size_policy`` recorded by :func:`sciconv.training.fit`, else ``"crop"``.
    tta : bool, optional
        Average the outputs over the 8 flips/90° rotations of each prepared image
        (:func:`sciconv.inference.predict_d4`; 8 x the time) and add a ``tta_std`` column, their
        spread over the views. A regressor's ``sigma`` then also holds the spread of its means.
        Default False (``"d4"``/None, the form of :func:`predict_tiled`, say the same).
    progress : bool, optional
        Progress over files on ``sys.stderr``, as :func:`predict_tiled` shows it (a ``tqdm`` bar
        on a terminal or in a notebook, a few plain lines in a log). Default True.

    Returns
    -------
    astropy.table.Table
        Columns ``path`` (str), then for a classifier ``class`` (the class name from the model's
        ``class_names`` metadata, else the index as text), ``class_index`` (int, the arg-max) and
        ``probabilities`` (float32, shape (N, K)), ``meta["class_names"]`` listing the names; for
        a multi-label model ``labels`` (the names of every class with probability >= 0.5,
        ``;``-separated) and ``probabilities``; for a regressor ``value`` (float32, (N, D)) and,
        when it predicts ``[mean, log_var]``, ``sigma`` (the 1-sigma error bar). Last,
        ``bad_fraction``: the fraction of each file's pixels that are NaN or flagged (set to 0
        before the model sees them). A file with no valid pixel is predicted NaN (class ``""``,
        index -1) with a warning, not given the network's answer to an empty image.

    Raises
    ------
    InferenceError
        A per-pixel model (a segmenter: use :func:`predict_instances` or
        :func:`predict_tiled`), no paths, a folder among them, no image size to fit to, an
        unknown ``size_policy`` or ``normalize``, or a channel count the model does not take.
    sciconv.errors.ConfigError
        ``paths`` holding arrays or other non-path values.
    sciconv.errors.InvalidImageError
        A file that cannot be read (the message names it).

    Examples
    --------
    >>> import pathlib  # doctest: +SKIP
    >>> paths = sorted(pathlib.Path("cutouts").glob("*.fits"))  # doctest: +SKIP
    >>> table = predict_files(model, paths)  # doctest: +SKIP
    >>> table["class"][0]  # doctest: +SKIP
    'spiral'
    """
    from astropy.table import Table

    model = check_image_level(validate_model(model))
    meta = get_metadata(model)
    batch_size = check_int(batch_size, name="batch_size", minimum=1, error=InferenceError)
    paths = file_paths(paths)
    if not paths:
        raise InferenceError("paths is empty: nothing to predict")
    if image_size is None:
        recorded_size = meta.get("image_size")
        image_size = model_fixed_hw(model) if recorded_size is None else tuple(recorded_size)
    if image_size is None:
        raise InferenceError(
            f"model {model.name!r} takes images of any size; pass image_size=(h, w) to fit to"
        )
    # the validation-image preparation of datasets.from_folder, the one rule for both
    prep = FilePrep.create(
        normalize=normalize,
        image_size=image_size,
        size_policy=size_policy or meta.get("size_policy") or "crop",
        recorded=meta.get("normalization"),
        error=InferenceError,
    )
    channels = model_channels(model)
    prep = dataclasses.replace(prep, channels=channels)  # a grey picture for a colour model
    tta = tta_mode(tta) == "d4"  # True/False, or the tiled paths' "d4"/None
    runner = ClassifierRunner(model)
    bar = progress_bar(len(paths), desc="predict_files", unit="file", enabled=progress)
    outputs, spreads, bad, sizes = [], [], [], []
    try:
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            loaded = [_load_cutout(prep, p, channels) for p in chunk]
            batch = np.stack([x for x, _, _ in loaded])
            sizes.extend(hw for _, _, hw in loaded)
            if tta:
                mean, std = predict_d4(
                    model, batch, normalize=None, batch_size=batch_size, return_std=True
                )
                outputs.append(mean.reshape(len(batch), -1))
                spreads.append(std.reshape(len(batch), -1))
            else:
                outputs.append(runner(batch))
            bad.extend(fraction for _, fraction, _ in loaded)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    out = np.concatenate(outputs).astype(np.float32)
    spread = np.concatenate(spreads).astype(np.float32) if tta else None
    bad = np.asarray(bad, dtype=np.float32)
    empty = bad >= 1.0  # no valid pixel: the network saw zeros only, its answer means nothing
    out[empty] = np.nan
    if spread is not None:
        spread[empty] = np.nan
    if empty.any():
        shown = ", ".join(paths[i].name for i in np.flatnonzero(empty)[:5])
        warnings.warn(
            f"{int(empty.sum())} of {len(paths)} file(s) have no valid pixel (all NaN or "
            f"flagged): predicted NaN ({shown}{', ...' if empty.sum() > 5 else ''})",
            SciconvWarning,
            stacklevel=2,
        )
    _warn_other_scales(model, paths)
    _warn_other_sizes(prep, meta.get("file_size"), paths, sizes)
    table = Table()
    table["path"] = [str(p) for p in paths]
    if meta.get("task") == "regression":
        _regression_columns(table, out, meta, spread)
    else:
        _class_columns(table, out, meta, multilabel=meta.get("task") == "multilabel")
    if spread is not None:
        table["tta_std"] = spread
        table["tta_std"].description = "standard deviation of the outputs over 8 flips/rotations"
    table["bad_fraction"] = bad
    table["bad_fraction"].description = "fraction of the file's pixels that are NaN or flagged"
    table.meta["model"] = model.name
    return table


def _is_path(value) -> bool:
    return isinstance(value, (str, os.PathLike))


def file_paths(paths) -> list[Path]:
    """``predict_files``' ``paths`` as a list: one path (str or PathLike) is a list of one; arrays
    and other values raise :class:`~sciconv.errors.ConfigError`, a folder
    :class:`~sciconv.errors.InferenceError` pointing to ``sciconv.io.list_images``."""
    if _is_path(paths):
        paths = [paths]
    elif isinstance(paths, np.ndarray) or not isinstance(paths, Iterable):
        raise ConfigError(
            f"paths must be image file paths (a path or a list of them); got "
            f"{type(paths).__name__}: for arrays in memory call the model itself "
            "(model.predict) or sciconv.inference.predict_d4"
        )
    out = []
    for i, p in enumerate(paths):
        if not _is_path(p):
            raise ConfigError(
                f"paths must be image file paths; paths[{i}] is a {type(p).__name__}: for "
                "arrays in memory call the model itself (model.predict) or "
                "sciconv.inference.predict_d4"
            )
        path = Path(p)
        if path.is_dir():
            raise InferenceError(
                "is a folder; predict_files takes image files: list a folder's images with "
                "sciconv.io.list_images(folder)",
                path=path,
            )
        out.append(path)
    return out


def _warn_other_scales(model: keras.Model, paths: list[Path]) -> None:
    """One warning naming the files whose stated pixel scale is not the model's training scale:
    a classifier sees their objects at another size (predict_instances resamples; this does not).
    """
    from sciconv.errors import ConfigError
    from sciconv.io import read_pixel_scale
    from sciconv.models import get_pixel_scale

    trained = get_pixel_scale(model)
    if trained is None:
        return
    other = []
    for path in paths:
        try:
            scale = read_pixel_scale(path)
            ratio = None if scale is None else scale.to(trained.unit).mean / trained.mean
        except ConfigError:  # arcsec against µm: another kind of image altogether
            ratio = float("nan")
        if ratio is not None and not abs(ratio - 1) <= SCALE_TOLERANCE:
            other.append(f"{path.name} (x{ratio:.3g})")
    if other:
        warnings.warn(
            f"{len(other)} of {len(paths)} file(s) have another pixel scale than the model's "
            f"training scale ({trained.mean:.4g} {trained.unit}/pixel): "
            f"{', '.join(other[:5])}{', ...' if len(other) > 5 else ''}; the classifier sees "
            "their objects at another size: resample them first (sciconv.inference.resample)",
            SciconvWarning,
            stacklevel=3,
        )


def _class_columns(table, prob: np.ndarray, meta: Mapping, *, multilabel: bool) -> None:
    """``class``/``class_index`` (arg-max; for multi-label ``labels``, every class >= 0.5) and
    ``probabilities``; NaN rows (no valid pixel) get class ``""`` and index -1."""
    names = meta.get("class_names")
    k = max(prob.shape[1], 2)
    if not names or len(names) < (prob.shape[1] if prob.shape[1] > 1 else 2):
        names = [str(i) for i in range(k)]
    valid = np.isfinite(prob).all(axis=1)
    safe = np.where(valid[:, None], prob, 0.0)
    if multilabel:
        table["labels"] = [
            ";".join(str(names[j]) for j in np.flatnonzero(row >= 0.5)) if ok else ""
            for row, ok in zip(safe, valid)
        ]
    else:
        index = np.argmax(safe, axis=1) if prob.shape[1] > 1 else (safe[:, 0] > 0.5).astype(int)
        index = np.where(valid, index, -1)
        table["class"] = [str(names[i]) if i >= 0 else "" for i in index]
        table["class_index"] = index.astype(np.int64)
    table["probabilities"] = prob
    table.meta["class_names"] = list(names)


def _regression_columns(table, out: np.ndarray, meta: Mapping, spread=None) -> None:
    """``value`` (N, D), and ``sigma`` (the 1-sigma error bar) for a ``[mean, log_var]`` model;
    with test-time views, sigma also holds the spread of the views' means (added in quadrature)."""
    from sciconv.calibration import regression_moments

    if not meta.get("uncertainty"):
        table["value"] = out
        return
    valid = np.isfinite(out).all(axis=1)
    d = out.shape[1] // 2
    mean = np.full((len(out), d), np.nan, np.float32)
    sigma = np.full((len(out), d), np.nan, np.float32)
    if valid.any():
        mean[valid], sigma[valid] = regression_moments(out[valid])
    if spread is not None:
        sigma = np.sqrt(sigma**2 + spread[:, :d] ** 2).astype(np.float32)
    table["value"] = mean
    table["sigma"] = sigma
    table["sigma"].description = "1-sigma error bar of value (exp(0.5 log_var))"


def _warn_other_sizes(prep: FilePrep, trained, paths, sizes) -> None:
    """Say when files are resampled by another factor than the training files were (their
    objects reach the model larger or smaller than in training)."""
    if trained is None or prep.size is None:
        return
    th, tw = (int(v) for v in trained)
    h, w = prep.size
    resampled = prep.resolved((th, tw)) == "resize"
    odd = []
    for path, (fh, fw) in zip(paths, sizes):
        if not (resampled or prep.resolved((fh, fw)) == "resize"):
            continue  # cropped or padded alike: the objects keep their size
        ratio = max(fh / th, fw / tw, th / fh, tw / fw)
        if ratio > 1.25:
            odd.append((path, fh, fw))
    if odd:
        path, fh, fw = odd[0]
        scale = (th / fh + tw / fw) / 2
        warnings.warn(
            f"{len(odd)} of {len(paths)} file(s) are not the size of the model's training files "
            f"({th}x{tw}, fitted to {h}x{w} by {prep.policy!r}; e.g. {path.name} {fh}x{fw}): "
            f"if they are cutouts at the training files' pixel scale, their objects reach the "
            f"model {scale:.2g}x the size they had in training (cut {th}x{tw} cutouts instead); "
            "if they cover the same field at another sampling, nothing changes",
            SciconvWarning,
            stacklevel=3,
        )


def _load_cutout(prep: FilePrep, path: Path, channels: int | None):
    """One file as ``datasets.from_folder`` prepares a validation image (read, normalize, fit),
    the fraction of its pixels that are bad (NaN in any channel) and its (H, W)."""
    x = read_pixels(path)
    if x.shape[-1] == 1 and channels == 3 and prep.grey_as_colour(path):
        warn_caller(
            f"{path}: a grey image for a colour model: its grey is repeated in R, G and B "
            "(as datasets.from_folder takes a grey picture among colour ones)",
            "sciconv",
        )
        x = prep.to_channels(x)
    if channels is not None and x.shape[-1] != channels:
        raise InferenceError(
            f"image has {x.shape[-1]} channel(s) but the model expects {channels}", path=path
        )
    bad = float(np.mean(~np.isfinite(x).all(axis=-1)))
    return np.ascontiguousarray(prep.fit(prep.normalize(x)), dtype=np.float32), bad, x.shape[:2]


#: Label formats of :func:`predict_mosaic`: a plain zarr array, or an OME-Zarr store.
MOSAIC_FORMATS = ("zarr", "ome-zarr")
#: The pyramid of an OME-Zarr mosaic: a level is added while its smaller side keeps
#: ``MOSAIC_MIN_SIDE`` pixels, up to ``MOSAIC_MAX_LEVELS`` levels (full resolution included).
MOSAIC_MIN_SIDE = 256
MOSAIC_MAX_LEVELS = 10


def mosaic_levels(hw) -> int:
    """The pyramid levels of an OME-Zarr mosaic of ``hw`` (H, W) pixels: full resolution, then
    halvings while the smaller side keeps :data:`MOSAIC_MIN_SIDE` pixels.

    Examples
    --------
    >>> mosaic_levels((8192, 6000)), mosaic_levels((100, 100))
    (5, 1)
    """
    from sciconv.io._pyramid import level_count

    return level_count(hw, min_side=MOSAIC_MIN_SIDE, most=MOSAIC_MAX_LEVELS)


def mosaic_outputs(
    out_dir: str | os.PathLike,
    stem: str,
    *,
    catalog_format: str = "ecsv",
    regions: str | None = None,
    geojson: bool = False,
    format: str | None = None,
) -> dict[str, Path]:
    """The files :func:`predict_mosaic` writes for an image named ``stem`` (nothing is checked
    on disk): a batch plans them with its other inputs' products, before predicting any.

    Parameters
    ----------
    out_dir : path
        The output folder.
    stem : str
        The image's name (``sciconv.io.image_stem``).
    catalog_format, regions, geojson, format
        As for :func:`predict_mosaic`.

    Returns
    -------
    dict
        ``{"labels": Path, "catalog": Path}`` (and ``"regions"``, ``"geojson"``); with
        ``format="ome-zarr"``, ``"image"`` the store ``STEM.ome.zarr`` and ``"labels"`` its
        label group ``labels/instances`` (the names of ``sciconv.postprocess.product_paths``).

    Raises
    ------
    InferenceError
        An unknown ``catalog_format`` or ``format``, or ``regions`` other than None or
        ``"ellipse"``.

    Examples
    --------
    >>> sorted(p.name for p in mosaic_outputs("out", "m31", regions="ellipse").values())
    ['m31_catalog.ecsv', 'm31_labels.zarr', 'm31_regions.reg']
    >>> outs = mosaic_outputs("out", "m31", format="ome-zarr")
    >>> outs["image"].name, outs["labels"].relative_to(outs["image"]).as_posix(), list(outs)
    ('m31.ome.zarr', 'labels/instances', ['image', 'labels', 'catalog'])
    """
    from sciconv import postprocess

    formats = postprocess.PRODUCT_CATALOG_FORMATS  # the same catalogs as write_products'
    look_up_option(catalog_format, tuple(formats), name="catalog_format", error=InferenceError)
    fmt = look_up_option(format or "zarr", MOSAIC_FORMATS, name="format", error=InferenceError)
    suffix = formats[catalog_format]
    out_dir = Path(out_dir)
    outs = {
        "labels": out_dir / f"{stem}{postprocess.PRODUCT_SUFFIXES['labels']}.zarr",
        "catalog": out_dir / f"{stem}{postprocess.PRODUCT_SUFFIXES['catalog']}{suffix}",
    }
    if fmt == "ome-zarr":  # the store and its label group, named as whole-image products are
        names = postprocess.product_paths(out_dir, stem=stem, format=fmt)
        outs = {"image": names["prob"], "labels": names["labels"], "catalog": outs["catalog"]}
    if regions is not None:
        if regions != "ellipse":
            raise InferenceError(
                f"regions must be None or 'ellipse' block by block; got {regions!r} (outlines "
                "need the whole label image in memory)"
            )
        outs["regions"] = out_dir / f"{stem}_regions.reg"
    if geojson:
        outs["geojson"] = out_dir / f"{stem}{postprocess.GEOJSON_SUFFIX}"
    return outs


def predict_mosaic(
    model: keras.Model,
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    block: int | None = None,
    catalog_format: str = "ecsv",
    overwrite: bool = False,
    scheduler=None,
    progress: bool = True,
    regions: str | None = None,
    geojson: bool = False,
    hdu: int | str | tuple[str, int] | None = None,
    series: int | None = None,
    background: str = "auto",
    channel: int | None = None,
    nodata: float | None = None,
    mask=None,
    ignore_flags: int | str | list | None = 0,
    uncertainty=None,
    uncertainty_type: str | None = None,
    format: str | None = None,
    history: Sequence[str] | None = None,
    **kwargs,
) -> dict[str, Path]:
    """Segment an image file larger than memory: labels to zarr, the catalog to a table file.

    The file is read lazily (``sciconv.io.read(path, lazy=True)``), segmented block by block
    (:func:`~sciconv.inference._blocks.predict_instances_blocks`, the model's recorded
    post-processing), the labels written block by block to ``out_dir/STEM_labels.zarr`` (or an
    OME-Zarr store, ``format="ome-zarr"``) and the catalog (:func:`sciconv.postprocess.measure`
    columns, ``ra``/``dec`` when the file has a celestial WCS, sizes in physical units when the
    file has a pixel scale) to ``out_dir/STEM_catalog.ecsv`` (or ``.vot``/``.fits``), all
    atomically.

    Parameters
    ----------
    model : keras.Model
        A segmenter.
    path : path
        A FITS, TIFF or OME-Zarr image.
    out_dir : path
        The output folder (created).
    block : int, optional
        Core side of the blocks (the file's pixels); default: ``predict_instances_blocks``'.
    catalog_format : {"ecsv", "votable", "fits"}, optional
        The catalog's format. Default ``"ecsv"``.
    overwrite : bool, optional
        Replace existing outputs (checked before anything is predicted).
    scheduler : None or dask.distributed.Client, optional
        Where the blocks run (see ``predict_instances_blocks``).
    progress : bool, optional
        A progress bar over blocks.
    regions : {None, "ellipse"}, optional
        Also write the objects as a DS9/Aladin region file ``out_dir/STEM_regions.reg``
        (:func:`sciconv.postprocess.write_regions`: ellipses from the catalog's moments, in sky
        coordinates when the file has a WCS). Outlines (``"polygon"``) need the labels in
        memory and are not offered here.
    geojson : bool, optional
        Also write the objects as QuPath detections, ``out_dir/STEM_objects.geojson``
        (:func:`sciconv.postprocess.write_geojson`: outlines with the catalog's measurements,
        read from the labels window by window). Needs shapely (``sciconv[ome]``).
    hdu : int, str or (str, int), optional
        FITS only: the HDU to segment (as :func:`sciconv.io.read` takes it).
    series : int, optional
        TIFF only: the image of a file holding several (as :func:`sciconv.io.read` takes it;
        default: its main one).
    background : {"auto", "map", "none"}, optional
        ``"map"``: catalog ``flux``/``background`` columns against a background map of each
        block window (``predict_instances_blocks(background=True)``); ``"auto"`` (default):
        so for a file with a celestial WCS (sky images); ``"none"``: raw pixel sums only.
    nodata : float, optional
        Pixels equal to this value in every channel are no data (``sciconv.io.read(nodata=)``:
        a mosaic's zero-filled frame).
    mask, ignore_flags : optional
        A bad-pixel mask file added to the file's own and the flag bits that are not bad
        (:func:`sciconv.io.read`'s); objects touching bad pixels get ``flag_masked``.
    uncertainty, uncertainty_type : optional
        An error map in a file of its own and its kind (``"std"``, ``"var"``, ``"ivar"``), as
        :func:`sciconv.io.read` takes them: read window by window, the catalog's ``flux_err``
        comes from it as from an ``ERR``/``IVAR`` HDU of the file.
    channel : int, optional
        Segment this channel of a multi-channel file (a lazy view, :meth:`GridImage.channel
        <sciconv.io.GridImage.channel>`: a fluorescence whole slide's DAPI, say).
    format : {None, "zarr", "ome-zarr"}, optional
        None or ``"zarr"`` (default): the labels as a plain zarr array ``STEM_labels.zarr``.
        ``"ome-zarr"``: an OME-Zarr (NGFF 0.5) store ``STEM.ome.zarr`` for napari, vizarr,
        OMERO and QuPath: the image segmented (the channel, when one is chosen) as its multiscale
        image, the labels as its NGFF label image ``labels/instances`` (level 0 the block-written
        array, moved in; halvings down to :data:`MOSAIC_MIN_SIDE` pixels computed chunk by chunk;
        :func:`sciconv.io.read` of the store or of the label group gives the WCS and pixel scale,
        :func:`sciconv.io.read_labels` of the store the ids). Needs
        ``sciconv[ome]``; the image is copied, a store about as large as the input in its dtype.
    history : sequence of str, optional
        The model and settings lines the labels store and the catalog record (HISTORY;
        ``sciconv predict --skip-existing`` compares them with its own). Default: the model's
        name, ``block`` and the keyword settings. What ``"auto"`` decided (for the whole image:
        the resampling factor, the second pass, the input transform;
        :func:`~sciconv.inference.decisions`) is recorded beside them, then the input file with
        its digest and the software stack (``sciconv input``, ``sciconv stack`` lines).
    **kwargs
        Passed to ``predict_instances_blocks`` (``tile``, ``batch_size``, post-processing
        overrides, ...).

    Returns
    -------
    dict
        ``{"labels": Path, "catalog": Path}`` (and ``"regions"``, ``"geojson"``; ``"image"``,
        the store, with ``format="ome-zarr"``): :func:`mosaic_outputs`.

    Raises
    ------
    OutputExistsError
        An output exists and ``overwrite`` is False.
    InferenceError
        A ``format`` other than ``"zarr"`` or ``"ome-zarr"`` (FITS and TIFF products are
        written whole, from labels in memory).
    sciconv.errors.ConfigError
        ``path`` or ``out_dir`` that is not a path (an array: use :func:`predict_instances`), or
        an OME-Zarr input whose store would be written over it.

    Examples
    --------
    >>> paths = predict_mosaic(model, "mosaic.fits", "results/")  # doctest: +SKIP
    >>> sorted(paths)  # doctest: +SKIP
    ['catalog', 'labels']
    """
    import sciconv
    from sciconv import io, postprocess
    from sciconv.inference._blocks import predict_instances_blocks
    from sciconv.inference._decisions import decisions
    from sciconv.postprocess import (
        comment_regions,
        history_record,
        input_record,
        software_record,
        with_decisions,
    )

    if not _is_path(path):
        raise ConfigError(
            f"path must be an image file's path (predict_mosaic reads it lazily); got "
            f"{type(path).__name__}: for an image in memory use "
            "sciconv.inference.predict_instances"
        )
    if not _is_path(out_dir):
        raise ConfigError(f"out_dir must be a folder's path; got {type(out_dir).__name__}")
    modes = postprocess.BACKGROUND_MODES
    look_up_option(background, modes, name="background", error=InferenceError)
    outs = mosaic_outputs(
        out_dir, io.image_stem(path), catalog_format=catalog_format, regions=regions,
        geojson=geojson, format=format,
    )  # fmt: skip
    if geojson:  # a missing shapely fails here, not after hours of blocks
        postprocess.labels_to_geojson(np.zeros((1, 1), np.int32))
    store = outs.get("image")  # an OME-Zarr store: zarr and ome-zarr checked before any block
    if store is not None:
        ome_zarr_modules(store)  # installed, or MissingDependencyError naming the extra
        if store.resolve() == Path(path).resolve():  # NAME.ome.zarr in, NAME.ome.zarr out
            raise ConfigError(
                f"the OME-Zarr store written for {path} would replace it; choose another out_dir"
            )
    for target in outs.values():
        if target.exists() and not overwrite:
            raise OutputExistsError("output exists; pass overwrite=True to replace it", path=target)
    image = io.read(
        path,
        lazy=True,
        hdu=hdu,
        series=series,
        nodata=nodata,
        mask=mask,
        ignore_flags=ignore_flags,
        uncertainty=uncertainty,
        uncertainty_type=uncertainty_type,
    )
    if nodata is None and image.wcs is not None:  # a sky mosaic's uncovered area filled with 0
        check_nodata_fill(image, path=path)
    if channel is not None:
        try:
            image = image.channel(channel)
        except BaseException:
            getattr(image.data, "close", lambda: None)()
            raise
    sky = postprocess.wants_background(background, image)  # checked above
    if history is None:
        settings = {k: v for k, v in kwargs.items() if isinstance(v, (str, int, float, type(None)))}
        history = history_record(getattr(model, "name", model), {"block": block, **settings})
    lines = [str(line) for line in history]
    # an OME-Zarr store: the labels go to a scratch folder next to it, then into the store
    scratch = None if store is None else scratch_folder(store)
    done = False
    try:
        with decisions() as decided:  # recorded beside the settings asked as "auto"
            labels, table = predict_instances_blocks(
                model,
                image,
                block=block,
                out=outs["labels"] if scratch is None else scratch / "labels.zarr",
                overwrite=overwrite,
                catalog=True,
                scheduler=scheduler,
                progress=progress,
                background=sky,
                **kwargs,
            )
        lines = [*with_decisions(lines, decided), input_record(path), software_record()]
        if scratch is None:
            _record_history(outs["labels"], lines)
        else:
            _record_history(scratch / "labels.zarr", lines)
            labels = _mosaic_store(store, outs["labels"].name, scratch, image, overwrite)
        done = True
    except Exception as err:  # a full disk, a read-only folder: name the store, not the scratch
        mapped = None if scratch is None else target_error(err, scratch, store)
        if mapped is None:
            raise
        raise mapped from err
    finally:  # the lazy reader holds the file open
        close = getattr(image.data, "close", None)
        if close is not None:
            close()
        # failed or interrupted: zarr's I/O thread may still write into it
        (remove_scratch if done else abandon_scratch)(scratch)
    table = postprocess.with_provenance(table, lines, source=path)
    postprocess.write_catalog(table, outs["catalog"], overwrite=overwrite)
    if regions is not None:  # ellipses from the catalog's moments, sky coordinates with a WCS
        postprocess.write_regions(  # a survey's 350,000 sky ellipses take minutes: say so
            table, outs["regions"], wcs=image.wcs, shape=regions, overwrite=overwrite,
            progress=bool(progress) and len(table) > postprocess.MANY_REGIONS,
        )  # fmt: skip
        comment_regions(outs["regions"], lines)  # the provenance, as "# sciconv" comments
    if geojson:  # QuPath detections, from the labels on disk window by window
        postprocess.write_geojson(
            labels, outs["geojson"], measurements=table, block=4096, overwrite=overwrite,
            properties={"software": f"sciconv {sciconv.__version__}", "history": lines},
        )  # fmt: skip
    return outs


def _record_history(store: Path, lines: list[str]) -> None:
    """Put the prediction's model and settings ``lines`` first in the block-written labels'
    sciconv history (as whole-image products begin theirs: ``sciconv predict --skip-existing``
    reads them back and compares, QA: a rerun with another model or threshold skipped the
    mosaics it had finished, silently)."""
    import zarr

    from sciconv import io

    labels = zarr.open_array(str(store), mode="r+")
    attrs = dict(labels.attrs.get(io.ZARR_ARRAY_ATTRS) or {})
    attrs["history"] = [*lines, *attrs.get("history", [])]
    labels.attrs[io.ZARR_ARRAY_ATTRS] = attrs


def _mosaic_store(store: Path, name: str, scratch: Path, image, overwrite: bool):
    """The OME-Zarr store of a mosaic: its block-written labels ``scratch/labels.zarr`` moved in
    as level 0 of ``labels/<name>``, with ``image``'s pixels; the labels' level 0 (zarr)."""
    import zarr

    from sciconv import io
    from sciconv.io._zarr_mosaic import write_ome_zarr_mosaic

    write_ome_zarr_mosaic(
        store, scratch / "labels.zarr", image, levels=mosaic_levels(image.shape[:2]), name=name,
        move=True, overwrite=overwrite,
    )  # fmt: skip
    return zarr.open_array(str(io.ome_zarr_labels(store)[name][0]), mode="r")
