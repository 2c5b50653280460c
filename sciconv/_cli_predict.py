"""``sciconv predict MODEL INPUT... --out DIR``: the prediction runs.

Segmenters write per-input products (probabilities, labels, catalog; block by block for
mosaics), classifiers and regressors one ``predictions.csv``. The inputs and their planned
products, checked before the first prediction, are ``sciconv._cli_predict_plan``'s; what a
failing input does to the batch (``--keep-going``; no partial products left) is
``sciconv._cli_predict_batch``'s; ``--hdu all``'s chips, each a job of its own, are
``sciconv._cli_predict_chips``'s; the subcommand and its options
``sciconv._cli_predict_options``'s.

Examples
--------
>>> from pathlib import Path
>>> is_fits(Path("field.fits.fz")), product_format(Path("cells.tif"))
(True, 'tiff')
"""

from __future__ import annotations

import argparse
import contextlib
import warnings
from contextlib import contextmanager
from pathlib import Path

from sciconv._atomic import (
    remove_scratch,
    remove_stale_partials,
    scratch_folder,
    target_error,
)
from sciconv._cli_common import PRETRAINED_PREFIX, load_model_arg, one_line, say
from sciconv._cli_predict_batch import Batch
from sciconv._cli_predict_chips import (
    expand_chips,
    input_file,
    job_args,
    product_stem,
    refuse_block_chips,
)
from sciconv._cli_predict_history import (
    history_settings,
    model_identity,
    mosaic_history,
    products_record,
    provenance,
    series_record,
    warn_mixed_precision,
)
from sciconv._cli_predict_notes import note_chips, warn_empty_catalog
from sciconv._cli_predict_outputs import check_outputs
from sciconv._cli_predict_plan import (
    check_channel,
    check_tiling,
    check_uncertainty,
    done_inputs,
    expand_inputs,
    hdu_args,
    is_fits,
    mask_file,
    probe_inputs,
    product_format,
    refuse_mask_products,
    refuse_options,
    segmentation_outputs,
    sidecar_outputs,
    tree_root,
    without_own_products,
)
from sciconv._cli_predict_sidefiles import check_side_options, uncertainty_args, uncertainty_file
from sciconv._cli_predict_table import predict_table
from sciconv._warnings import caught
from sciconv._workdir_lock import lock_folder
from sciconv.errors import (
    ConfigError,
    OutputExistsError,
    SciconvError,
    SciconvWarning,
    WriteError,
)
from sciconv.io._files import user_path

__all__ = [
    "OUT_LOCK",
    "cmd_predict",
    "is_fits",
    "product_format",
    "segmentation_outputs",
]

#: The lock file of a ``sciconv predict`` run in its ``--out`` (hidden: never an input).
OUT_LOCK = ".sciconv-predict.lock"


@contextmanager
def _file_progress(total: int, *, enabled: bool, unit: str = "file"):
    """The shared progress over files or planes (``sciconv._progress.progress_bar``), closed
    on exit.

    A terminal or notebook gets a bar, anything else (a log, CI) a few plain lines; None (no
    output) for a single file or when ``enabled`` is False.
    """
    from sciconv._progress import progress_bar

    bar = progress_bar(total, desc="predict", unit=unit, enabled=enabled and total > 1)
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()


def _say(args, *parts) -> None:
    """One result line on stdout, unless ``--quiet``."""
    if not args.quiet:
        say(*parts)


def _read_args(path, args) -> dict:
    """``--hdu``, ``--series``, ``--nodata``, ``--mask``, ``--ignore-flags``,
    ``--uncertainty-file`` and ``--uncertainty-type``: what :func:`sciconv.io.read` (and
    :func:`sciconv.inference.predict_mosaic`) is given for an input."""
    given = {
        "nodata": getattr(args, "nodata", None),
        "mask": mask_file(path, args),
        "ignore_flags": getattr(args, "ignore_flags", None),
    }
    given = {k: v for k, v in given.items() if v is not None}
    return {**hdu_args(path, args), **given, **uncertainty_args(path, args)}


def _predict_mosaic(model, path, args, params: dict) -> list[Path]:
    """Labels to NAME_labels.zarr, the catalog to NAME_catalog.<fmt>, block by block."""
    from sciconv import inference

    outs = inference.predict_mosaic(
        model,
        path,
        args.out,
        block=args.block,
        margin="auto" if args.block_margin is None else args.block_margin,
        regions=args.regions,
        geojson=args.geojson,
        background=args.background,
        channel=args.channel,
        **_read_args(path, args),
        catalog_format=args.catalog_format,
        format=args.format,
        overwrite=args.overwrite,
        tile=args.tile if args.tile is not None else "auto",
        overlap=args.overlap,
        tta="d4" if args.tta else None,
        precision=args.precision,
        batch_size=args.batch_size,
        brightness=None if args.brightness == "none" else "auto",
        denoise=None if args.denoise == "none" else "auto",
        scale=args.scale if args.scale is not None else "auto",
        object_size=args.object_size,
        progress=not args.quiet,  # over blocks
        history=mosaic_history(params, args, model),  # --skip-existing compares them
        **_postprocess_overrides(args),
    )
    _say(args, f"{path}: block-wise -> {', '.join(p.name for p in outs.values())}")
    if is_fits(path):  # the other chips of a multi-chip file, said as for a whole image
        from sciconv import io

        with caught("ignore", SciconvWarning):  # said when the mosaic was read
            img = io.read(path, lazy=True, **hdu_args(path, args))
        img.data.close()
        note_chips(path, img, args)
    return list(outs.values())


def _predict_segmentation(model, paths, args) -> int:
    """Segment every input; the exit code (1 when ``--keep-going`` went past failed inputs)."""
    import numpy as np

    from sciconv import postprocess

    check_side_options(args)  # --uncertainty-type without its file: a usage error
    if args.geojson:  # a missing shapely fails before any prediction
        postprocess.labels_to_geojson(np.zeros((1, 1), np.int32))
    if args.format == "ome-zarr":  # a missing ome-zarr too (it failed after the first input)
        from sciconv.io._zarr import ome_zarr_modules

        ome_zarr_modules()

    # --keep-tree: products under --out as the inputs sit under their common folder (all of
    # them, before any is skipped or fails: where a product goes never depends on the others)
    args.tree_root = tree_root(paths) if args.keep_tree and paths else None
    paths, own = without_own_products(paths, args)
    if own:  # a warning on stderr, as for an earlier run's products (it went to stdout; QA)
        warnings.warn(
            f"skipped {len(own)} input(s) that this run writes: " + ", ".join(str(p) for p in own),
            SciconvWarning,
            stacklevel=2,
        )
    batch = Batch(keep_going=args.keep_going, overwrite=args.overwrite)
    for p in paths:  # the options no input can take, before any is read (usage errors)
        if args.keep_going and not p.exists():
            continue  # --keep-going: a vanished input (and its mask) fails as an input
        hdu_args(p, args)
        mask_file(p, args)
        uncertainty_file(p, args)
    # --hdu all: each chip of a multi-chip FITS file a job (_cli_predict_chips.Chip) of its own
    jobs = expand_chips(paths, args)
    stacks, mosaics = probe_inputs(jobs, args, batch)
    jobs = [p for p in jobs if p in stacks]  # --keep-going: the unreadable ones failed
    refuse_block_chips(mosaics)  # a chip's block-wise products would be named after the file
    for p in jobs:  # every input's options and products checked before any is segmented
        refuse_options(input_file(p), job_args(p, args), mosaic=p in mosaics, planes=stacks[p])
    planned = segmentation_outputs(
        jobs,
        args.out,
        regions=bool(args.regions),
        format=args.format,
        catalog_format=args.catalog_format,
        geojson=args.geojson,
        mosaics=mosaics,
        uncertainty=args.uncertainty is not None,
        root=args.tree_root,
    )
    params = {
        "tile": args.tile if args.tile is not None else "auto",
        "overlap": args.overlap,
        "tta": "d4" if args.tta else None,
        "precision": args.precision,
        "scale": args.scale if args.scale is not None else "auto",
        "object_size": args.object_size,
        "brightness": None if args.brightness == "none" else "auto",
        "denoise": None if args.denoise == "none" else "auto",
        **_postprocess_overrides(args),
    }
    sidecars = {
        p: sidecar_outputs(p, args.out, args.format, root=args.tree_root)
        for p in jobs
        if p not in mosaics
    }
    files = list(dict.fromkeys(input_file(p) for p in jobs))  # the readable ones
    refuse_mask_products(files, args, [*planned.values(), *sidecars.values()])
    if args.skip_existing:  # an earlier run's inputs, done; one with some products refused
        newer, unfinished = [], []
        settings = {  # each chip's records its --hdu
            p: (mosaic_history if p in mosaics else history_settings)(
                params, job_args(p, args), model, choose=False
            )
            for p in jobs
        }
        done = set(
            done_inputs(
                planned, sidecars=sidecars, settings=settings, newer=newer, unfinished=unfinished
            )
        )
        for p in (p for p in jobs if p in done):
            _say(args, f"{p}: skipped, its products exist (--skip-existing)")
            for product in planned[p].values():  # what a killed writer of it left (QA)
                remove_stale_partials(product)
        _redo(newer, "are newer than their products (changed since, or copied without keeping "
              "file times: cp -p keeps them)")  # fmt: skip
        _redo(unfinished, "have only some of their products (a run stopped between two of them)")
        jobs, mosaics = [p for p in jobs if p not in done], [p for p in mosaics if p not in done]
        warn_mixed_precision(model, args, planned, done, jobs)
        planned = {p: products for p, products in planned.items() if p not in done}
    check_outputs(
        [f for p, d in planned.items() for f in (*d.values(), *sidecars.get(p, [])[:1])],
        overwrite=args.overwrite,
    )  # the mask file, which an input may write, too
    stacks = {p: planes for p, planes in stacks.items() if planes[0]}
    skipped = len(done) if args.skip_existing else 0  # counted: "1 of 1 failed" hid 2 skipped
    total = len(jobs) + len(batch.failed) + skipped
    for job in mosaics:
        with batch.one_input(job, planned[job].values()):
            with _writing(planned[job]["labels"]):
                _predict_mosaic(model, input_file(job), job_args(job, args), params)
    jobs = [p for p in jobs if p not in mosaics]
    # one bar over files when there are several, else the one file's bar over tiles
    tile_progress = not args.quiet and len(jobs) == 1
    with _file_progress(len(jobs), enabled=not args.quiet) as bar:
        for job in jobs:
            path, given = input_file(job), job_args(job, args)  # a chip: its --hdu
            with batch.one_input(job, planned[job].values(), sidecars[job]):
                if job in stacks:
                    _segment_stack(model, path, given, params, *stacks[job])
                else:
                    _segment_file(model, path, given, planned[job], params, tile_progress)
            if bar is not None:
                bar.update(1)
    return batch.finish(total, note=f" ({skipped} skipped: done before)" if skipped else "")


@contextmanager
def _writing(target: Path):
    """An ``OSError`` of the block that is not a sciconv error (a name too long, a folder that
    went away) as a :class:`~sciconv.errors.WriteError` naming the file (``target`` when the
    error names none): one input's failure, which ``--keep-going`` goes past."""
    try:
        yield
    except OSError as err:
        if isinstance(err, SciconvError):
            raise
        named = err.filename if isinstance(err.filename, (str, bytes, Path)) else target
        reason = err.strerror or one_line(err)
        raise WriteError(f"cannot write ({reason}); nothing was written", path=named) from err


def _postprocess_overrides(args) -> dict:
    """``--threshold``, ``--min-size`` and ``--bridge``, when given: keywords of
    ``postprocess.instances``."""
    given = {
        "threshold": getattr(args, "threshold", None),
        "min_size": getattr(args, "min_size", None),
        "bridge": getattr(args, "bridge", None),
    }
    return {k: v for k, v in given.items() if v is not None}


def _segment_image(model, img, args, params, progress):
    """One 2-D image: labels, probabilities, spread (or None) and the catalog of its objects."""
    from sciconv import inference

    labels, prob, *spread = inference.predict_instances(  # recorded post-processing
        model,
        img,
        batch_size=args.batch_size,
        return_prob=True,
        uncertainty=args.uncertainty,
        progress=progress,
        **params,
    )
    std = spread[0] if spread else None
    return labels, prob, std, _catalog(model, img, labels, prob, std, args, params)


def _catalog(model, img, labels, prob, std, args, params):
    """The catalog of one image's objects: measurements, flux errors, scores."""
    from sciconv import models, postprocess

    # the mask columns (flag_masked, masked_fraction) whenever the image has a mask, bad pixels
    # or not, as the block-wise path gives them; the mask product only when a pixel is bad
    background, error, source = None, "auto", None  # "auto": the image's own uncertainty
    if postprocess.wants_background(args.background, img):
        background, rms = postprocess.background_and_rms(img, labels)
        # flux errors: the image's uncertainty, else background noise + the sources' Poisson term
        error, source = postprocess.estimate_error(
            img, labels, background=background, background_rms=rms
        )  # labels: a negative (fading) object's Poisson term from its own pixels
    table = postprocess.measure(  # mask="auto": img.mask or its NaN pixels; arcsec/um sizes
        labels, intensity=img, wcs=img.wcs, background=background, error=error,
        aperture=getattr(args, "aperture", None),
    )  # fmt: skip
    if source is not None and "flux_err" in table.colnames:
        table.meta["FLUXERR"] = postprocess.flux_error_note(source, table)
    # every catalog: each object's ranking score from the probabilities above (no extra pass;
    # QA 56: only --uncertainty runs had one, at 8 model passes); uncertainty with a spread only
    recorded = models.get_metadata(model).get("postprocess") or {}
    threshold = postprocess.instance_threshold({**recorded, **params})
    scores = postprocess.object_scores(labels, prob, std, threshold=threshold)
    return _with_scores(table, scores)


def _redo(inputs: list, why: str) -> None:
    """``--skip-existing``: ``inputs`` (``(input, its existing products)``) not finished by an
    earlier run (newer than their products, or with only some of them) are segmented again,
    their products removed first, with one warning naming them and ``why``."""
    if not inputs:
        return
    for _, products in inputs:
        for product in products:
            remove_scratch(product)
    names = ", ".join(str(p) for p, _ in inputs[:20]) + (" ..." if len(inputs) > 20 else "")
    warnings.warn(
        f"{len(inputs)} input(s) {why}, so they are segmented again: {names}",
        SciconvWarning,
        stacklevel=3,
    )


def _plane_positions(catalog, meta: dict) -> None:
    """A stack catalog's ``time`` (s) beside ``t`` and ``z_phys`` beside ``z`` when the input
    dates its frames (OME ``Plane/@DeltaT``) or records its frame interval, and its Z step (QA:
    a tracker reading the catalog had plane indices only; a movie with a pause was misdated)."""
    from astropy import units as u

    from sciconv.io import frame_seconds

    step, unit = meta.get("z_spacing"), meta.get("pixel_unit")
    seconds = frame_seconds(meta, catalog["t"]) if "t" in catalog.colnames else None
    if seconds is not None:
        catalog.add_column(seconds, name="time",
                           index=catalog.colnames.index("t") + 1)  # fmt: skip
        catalog["time"].unit = u.s
        catalog["time"].description = "time of the object's frame (DeltaT, else t x interval)"
    if "z" in catalog.colnames and step is not None and unit not in (None, "", "pixel"):
        from sciconv.postprocess import in_catalog_unit

        # in µm whatever the file's unit, as area_phys (QA: nm from some files)
        depth, depth_unit = in_catalog_unit(catalog["z"] * float(step), unit)
        catalog.add_column(depth, name="z_phys",
                           index=catalog.colnames.index("z") + 1)  # fmt: skip
        catalog["z_phys"].unit = depth_unit
        what = "depth of the object's plane (z x the Z step)"
        catalog["z_phys"].description = f"{what}, in {depth_unit.to_string()}"


def _write_segmentation(
    model, path, args, params, *, like, labels, prob, std, table, bad, stack, decided
):
    """The products of one input (:func:`sciconv.postprocess.write_products`), recording the
    settings, what ``auto`` ``decided``, the input and its digest; the files."""
    from sciconv import models, postprocess

    names = models.get_metadata(model).get("class_names")
    stem = product_stem(getattr(args, "job", path))  # a chip of --hdu all: NAME.SCI_2
    with _writing(Path(args.out) / stem):  # an OSError: a WriteError naming it
        return postprocess.write_products(  # the class cube, the labels, the mask, the catalog
            args.out,
            prob=prob,
            labels=labels,
            catalog=table,
            mask=bad,
            uncertainty=std,
            like=like,
            stem=stem,
            format=product_format(path, args.format),
            catalog_format=args.catalog_format,
            class_names=names if names and len(names) == prob.shape[-1] else None,
            model=Path(args.model).name,  # best.keras, pretrained:nuclei
            params=provenance(params, args, model, int(model.input_shape[-1] or 1)),
            history=["sciconv predict"],
            overwrite=args.overwrite,
            stack_axes=stack or None,
            decisions=decided,
            source=path,
            input_name=getattr(args, "input_name", None),  # --keep-tree: n0/field.fits
        )


def _remove_earlier_sidecars(path, args, *, written) -> None:
    """With --overwrite, the mask and uncertainty products of ``path`` that an earlier run wrote
    beside the ones just written, and this run did not (no bad pixels now, no --uncertainty),
    are removed with a warning: the folder then holds one run's products. Without it they are
    only named."""
    import shutil

    written, job = {Path(p) for p in written}, getattr(args, "job", path)
    stale = [
        p for p in sidecar_outputs(job, args.out, args.format) if p not in written and p.exists()
    ]
    if not stale:
        return
    listed = ", ".join(p.name for p in stale)
    if not args.overwrite:
        warnings.warn(
            f"{path}: {listed} in --out is an earlier run's (this run did not write it)",
            SciconvWarning,
            stacklevel=2,
        )
        return
    for p in stale:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    warnings.warn(
        f"{path}: removed {listed}, an earlier run's product this run does not write (--overwrite)",
        SciconvWarning,
        stacklevel=2,
    )


def _segment_file(model, path, args, planned, params, tile_progress) -> list[Path]:
    """One whole image: probabilities, labels, catalog (and regions); the files written."""
    from sciconv import __version__ as version
    from sciconv import inference, io, postprocess
    from sciconv.postprocess import comment_regions

    job = getattr(args, "job", path)  # a chip of --hdu all (NAME.fits[SCI,2]) in the lines
    img = _one_channel(io.read(path, **_read_args(path, args)), args.channel)
    if getattr(args, "nodata", None) is None and img.wcs is not None:  # a sky mosaic's 0 fill
        from sciconv.preprocess import check_nodata_fill

        check_nodata_fill(img, path=path)
    hdu = note_chips(path, img, args)  # a multi-chip file's other chips: said, not skipped unseen
    _say_errors(path, img, args)
    try:
        with inference.decisions() as decided:  # what auto decided, for the products
            labels, prob, std, table = _segment_image(model, img, args, params, tile_progress)
    except SciconvError as exc:  # which file (a batch of hundreds stops here)
        if exc.path is not None:
            raise
        raise type(exc)(exc.message, path=path) from exc
    if hdu is not None:  # which chip's objects these are (two chips' catalogs told apart)
        table.meta["HDU"] = hdu
    table.meta.update(series_record(path, args))  # which position of a plate's OME-TIFF
    warn_empty_catalog(job, img, len(table), args)  # 0 objects from an image with data
    bad = img.mask if img.mask is not None and img.mask.any() else None
    outs = _write_segmentation(
        model,
        path,
        args,
        params,
        like=img,
        labels=labels,
        prob=prob,
        std=std,
        table=table,
        bad=bad,
        stack="",
        decided=decided,
    )
    # the image products' HISTORY, as GeoJSON "properties" and region "# sciconv" comments
    record = (
        products_record(model, path, args, params, decided) if args.geojson or args.regions else []
    )
    if args.geojson:  # QuPath detections: outlines with the catalog's measurements
        with _writing(planned["geojson"]):
            outs["geojson"] = postprocess.write_geojson(
                labels, planned["geojson"], measurements=table, overwrite=args.overwrite,
                properties={"software": f"sciconv {version}", "history": record}, like=img,
            )  # fmt: skip
    if args.regions:  # DS9 / Aladin regions, in sky coordinates when the image has a WCS
        with _writing(planned["regions"]):
            outs["regions"] = postprocess.write_regions(
                table if args.regions == "ellipse" else labels,
                planned["regions"],
                wcs=img.wcs,
                shape=args.regions,
                overwrite=args.overwrite,
                progress=not args.quiet and len(table) > postprocess.MANY_REGIONS,
            )
            comment_regions(outs["regions"], record)
    _remove_earlier_sidecars(path, args, written=outs.values())
    where = outs["labels"]  # an OME-Zarr label group: name the store it sits in
    zarr_group = args.format == "ome-zarr" and where.parent.name == "labels"
    shown = where.parents[1].name if zarr_group else where.name
    _say(args, f"{job}: {int(labels.max())} objects -> {shown}")
    return list(outs.values())


def _say_errors(path, img, args) -> None:
    """``--uncertainty-file`` without ``--uncertainty-type``: what the file was read as, and
    why (its name, its header), on a result line."""
    told = img.meta.get("uncertainty_from") if getattr(args, "uncertainty_file", None) else None
    if told is not None and getattr(args, "uncertainty_type", None) is None:
        _say(args, f"{path}: errors from {told}; --uncertainty-type to say otherwise")


def _segment_stack(model, path, args, params, axes: str, sizes) -> list[Path]:
    """A movie or Z-stack (``io.plane_axes``): its planes segmented by
    :func:`sciconv.inference.predict_stack` (one size decision; a plane with no data empty), the
    products written as (OME-)TIFF stacks with the file's axes, one catalog with a column per
    axis (``t``, ``z``: the plane's index) before each plane's ``label``."""
    import numpy as np
    from astropy.table import vstack
    from numpy.lib.format import open_memmap

    from sciconv import inference, io, postprocess

    stack = io.read(path, stack=True, **_read_args(path, args))
    n = len(stack.data)
    if args.channel is not None:
        check_channel(path, args.channel, int(stack.data.shape[-1]))
    args.out.mkdir(parents=True, exist_ok=True)
    tables: list = [None] * n
    counts = [0] * n
    last: list = [stack]
    # the planes' products go to memory maps beside the outputs (removed after), so a long
    # movie holds only its input in memory, not its probabilities and labels
    target = postprocess.product_paths(
        args.out,
        stem=product_stem(getattr(args, "job", path)),
        format=product_format(path, args.format),
    )
    scratch = scratch_folder(target["labels"])  # swept by the next run if this one is killed
    maps: dict = {}

    def keep(key, shape, dtype):
        maps[key] = open_memmap(Path(scratch) / f"{key}.npy", mode="w+", dtype=dtype, shape=shape)
        return maps[key]

    def measure(plane):  # each plane's catalog, once its labels are final
        last[0] = plane.image
        if plane.empty:  # no data: no rows (the columns from another plane's, below)
            return
        table = _catalog(model, plane.image, plane.labels, plane.prob, plane.std, args, params)
        for axis, j in zip(axes, plane.position):  # a column, not a scalar: astropy < 7 refuses
            column = np.full(len(table), int(j))  # a scalar on a frame with no objects
            table.add_column(column, name=axis.lower(), index=axes.index(axis))
        tables[plane.index] = table
        counts[plane.index] = int(plane.labels.max())

    try:
        with inference.decisions() as decided:  # the stack's: one scale for all its planes
            labels, prob, *spread = inference.predict_stack(
                model,
                stack,
                axes=axes,
                sizes=tuple(sizes),
                channel=args.channel,
                return_prob=True,
                uncertainty=args.uncertainty,
                on_plane=measure,
                out=keep,
                progress=not args.quiet,
                batch_size=args.batch_size,
                **params,
            )
        some = next(t for t in tables if t is not None)
        tables = [some[:0] if t is None else t for t in tables]
        catalog = vstack(tables, metadata_conflicts="silent")
        catalog.meta.update(tables[0].meta)
        catalog.meta["stack_axes"] = axes
        catalog.meta.update(series_record(path, args))  # which position's stack
        _plane_positions(catalog, last[0].meta)
        outs = _write_segmentation(
            model,
            path,
            args,
            params,
            like=stack,
            labels=labels,
            prob=prob,
            std=spread[0] if spread else None,
            table=catalog,
            bad=maps["bad"].reshape(labels.shape) if maps["bad"].any() else None,
            stack=axes,
            decided=decided,
        )
    except OSError as err:  # a full disk or read-only folder: name the product, not scratch
        better = target_error(err, scratch, target["labels"])
        if better is None:
            raise
        raise better from err
    finally:
        labels = prob = spread = None
        maps.clear()  # the memory maps closed before their folder goes
        remove_scratch(scratch)
    warn_empty_catalog(path, stack, sum(counts), args)  # no object in any plane
    _say(
        args,
        f"{path}: {n} {axes} planes, {sum(counts)} objects "
        f"({min(counts)}-{max(counts)} per plane{_UNLINKED if 'Z' in axes else ''}) "
        f"-> {outs['labels'].name}",
    )
    return list(outs.values())


#: How a Z-stack's summary line says its object count is of cross-sections (QA 56: "179
#: objects" read as a nucleus count for 36 nuclei, each in 4-6 planes).
_UNLINKED = "; not linked over Z: each object in focus over k planes counts k times"


def _one_channel(img, channel: int | None):
    """``--channel K``: the image reduced to its channel K (:meth:`GridImage.channel`)."""
    if channel is None:
        return img
    check_channel(img.path, channel, int(img.data.shape[-1]))
    return img.channel(channel)  # a lazy view for a lazily read whole slide


def _with_scores(table, scores):
    """The catalog with the objects' ``score`` (and, with a spread, ``uncertainty``) columns,
    rows kept in order."""
    from astropy.table import join

    if len(table) == 0:  # nothing found: join refuses empty tables; the columns, no rows
        empty = table.copy()
        for name in scores.colnames:
            if name not in empty.colnames:
                empty[name] = scores[name][:0]
        return empty
    joined = join(table, scores, keys="label", join_type="left")
    joined.sort("label")
    joined.meta.update(table.meta)
    return joined


def _check_pinned_precision() -> None:
    """A ``SCICONV_PRECISION`` that is not a precision: a configuration error, before any input."""
    from sciconv.errors import InferenceError
    from sciconv.inference._precision import pinned_precision

    try:
        pinned_precision()
    except InferenceError as err:
        raise ConfigError(str(err)) from err


def cmd_predict(args: argparse.Namespace) -> int:
    """Run ``sciconv predict``: load the model, then segment or classify every input.

    Parameters
    ----------
    args : argparse.Namespace
        As ``sciconv._cli_predict_options.add_predict_parser`` parses them (``model``,
        ``inputs``, ``out``, ...).

    Returns
    -------
    int
        The exit code: 0, or 1 when ``--keep-going`` went past inputs that failed (each named
        on a ``sciconv: error:`` line, then a summary line); problems raise
        :class:`~sciconv.errors.SciconvError` subclasses, which :func:`sciconv.cli.main` turns
        into one ``sciconv: error:`` line.

    Examples
    --------
    >>> import argparse
    >>> cmd_predict(argparse.Namespace(out="out", overlap="auto", model="none.keras"))
    Traceback (most recent call last):
    ...
    sciconv.errors.SciconvError: none.keras: model file not found
    """
    args.out = user_path(args.out, what="--out")  # ~ expanded; a URL refused
    # a Namespace built by hand may lack them
    for name in ("quiet", "keep_going", "skip_existing", "keep_tree"):
        setattr(args, name, bool(getattr(args, name, False)))
    if args.out.exists() and not args.out.is_dir():
        raise OutputExistsError("--out must be a folder; a file of that name exists", path=args.out)
    if args.overlap != "auto" and args.overlap < 0:
        raise ConfigError(f"--overlap must be >= 0 or auto; got {args.overlap}")
    _check_pinned_precision()  # a bad SCICONV_PRECISION failed every input of a batch (QA)
    shipped = args.model.startswith(PRETRAINED_PREFIX)
    model_path = Path(args.model)
    if not shipped and model_path.is_dir():
        raise SciconvError("is a folder; give a .keras model file", path=model_path)
    if not shipped and not model_path.is_file():
        raise SciconvError("model file not found", path=model_path)
    if getattr(args, "scale", None) is not None and args.object_size not in ("auto", None):
        raise ConfigError("give --scale or --object-size PX, not both (both set the resampling)")
    created = not args.out.exists()
    try:
        # one run at a time writes into --out: a second is refused at once (exit 1), a dead
        # run's lock taken over; creating the lock also shows that --out is writable
        with lock_folder(args.out, name=OUT_LOCK, what="--out", busy=OutputExistsError):
            return _predict(args, model_path, shipped=shipped)
    finally:
        if created:  # a run refused before writing anything leaves no empty --out behind
            with contextlib.suppress(OSError):
                args.out.rmdir()


def _predict(args, model_path: Path, *, shipped: bool) -> int:
    """Load the model, then segment or classify every input (``--out`` locked)."""
    paths = expand_inputs(args.inputs, out=args.out, keep_missing=args.keep_going)

    from sciconv import models

    model = load_model_arg(args.model, trust=args.trust)  # no training settings
    args.model_id = model_identity(model_path, shipped=shipped, model=model)
    if models.model_task(model) == "segmentation":  # recorded, or a plain per-pixel model
        check_tiling(model, args)  # before any input is read
        check_uncertainty(model, args)
        return _predict_segmentation(model, paths, args)
    return predict_table(model, paths, args)
