"""``sciconv predict``'s plan: its inputs and the products each will write, all checked before
the first input is predicted.

A batch of hundreds of files must not be refused after hours of work for something it could
have seen at the start: two inputs whose products would collide in ``--out`` (block-wise ones
included), outputs that exist, a ``--tile``/``--overlap`` the model cannot take, or, in
``--out`` = an input folder, products of this run or of an earlier one taken for inputs.
``sciconv._cli_predict`` runs the plan.

Examples
--------
>>> mosaic = Path("m.tif")
>>> planned = segmentation_outputs([Path("a.fits"), mosaic], Path("o"), mosaics=[mosaic])
>>> sorted(p.name for p in planned[mosaic].values())
['m_catalog.ecsv', 'm_labels.zarr']
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Collection, Sequence
from pathlib import Path

from sciconv.errors import ConfigError, InferenceError, OutputExistsError, SciconvWarning

__all__ = [
    "check_outputs",
    "check_tiling",
    "check_uncertainty",
    "done_inputs",
    "earlier_products",
    "expand_inputs",
    "is_fits",
    "product_format",
    "segmentation_outputs",
    "without_own_products",
]


def expand_inputs(inputs: Sequence[str]) -> list[Path]:
    """The image files ``sciconv predict`` is given: files, OME-Zarr stores and the images of
    folders (their sub-folders are not searched: a warning names them).

    Raises :class:`~sciconv.errors.InferenceError` for a missing input or a folder of no images.
    """
    from sciconv import io

    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if io.is_zarr(p) and p.exists():  # an OME-Zarr store: a folder that is one image
            paths.append(p)
        elif p.is_dir():
            found = io.list_images(p)
            if not found:
                subs = sorted(d.name for d in p.iterdir() if d.is_dir() and d.name[:1] != ".")
                hint = (
                    f" (its sub-folders {', '.join(subs[:5])}{', ...' if len(subs) > 5 else ''} "
                    f"are not searched: name them, e.g. {p}/*/)"
                    if subs
                    else ""
                )
                raise InferenceError(f"folder holds no image files{hint}", path=p)
            _warn_unsearched(p, found)
            paths.extend(Path(f) for f in found)
        elif p.exists():
            paths.append(p)
        else:
            raise InferenceError("input not found", path=p)
    return paths


#: Image files a microscope, scanner or viewer writes that sciconv does not read.
_UNREAD_IMAGE_SUFFIXES = (
    ".bmp", ".gif", ".webp", ".jp2", ".czi", ".nd2", ".lif", ".lsm", ".vsi", ".svs", ".ndpi",
    ".mrxs", ".dcm", ".heic",
)  # fmt: skip


def _warn_unsearched(folder: Path, found) -> None:
    """Warnings naming the sub-folders of an input folder and its images of formats sciconv
    does not read (neither is predicted)."""
    names = {Path(f).name for f in found}  # an OME-Zarr store is a folder that is an image
    subs = sorted(
        d.name for d in folder.iterdir() if d.is_dir() and d.name[:1] != "." and d.name not in names
    )
    if subs:
        warnings.warn(
            f"{folder}: sub-folder(s) {', '.join(subs[:5])}{', ...' if len(subs) > 5 else ''} "
            f"not searched (name them, e.g. {folder}/*/)",
            SciconvWarning,
            stacklevel=3,
        )
    other = sorted(  # images of formats sciconv does not read: say so, not skip them unseen
        f.name
        for f in folder.iterdir()
        if f.is_file() and f.suffix.lower() in _UNREAD_IMAGE_SUFFIXES and f.name not in names
    )
    if other:
        warnings.warn(
            f"{folder}: {len(other)} image(s) of a format sciconv does not read skipped "
            f"({', '.join(other[:5])}{', ...' if len(other) > 5 else ''}); convert them to "
            "TIFF, PNG or FITS",
            SciconvWarning,
            stacklevel=3,
        )


def is_fits(path: Path) -> bool:
    """Whether ``path`` names a FITS file (by its extension, compressed ones included).

    Examples
    --------
    >>> is_fits(Path("a.FITS")), is_fits(Path("a.tif"))
    (True, False)
    """
    from sciconv import io

    return path.name.lower().endswith(tuple(e.lower() for e in io.FITS_EXTENSIONS))


def product_format(path: Path, chosen: str | None = None) -> str:
    """``--format`` when given; else FITS inputs give FITS products (header and WCS kept), the
    others TIFF.

    Examples
    --------
    >>> product_format(Path("a.fits")), product_format(Path("a.fits"), "ome-zarr")
    ('fits', 'ome-zarr')
    """
    if chosen is not None:
        return chosen
    return "fits" if is_fits(path) else "tiff"


# the products sciconv predict writes for each input (postprocess.product_paths keys)
_WRITTEN_PRODUCTS = ("prob", "labels", "catalog")


def segmentation_outputs(
    paths: Sequence[Path],
    out: Path,
    *,
    regions: bool = False,
    format: str | None = None,
    catalog_format: str = "ecsv",
    geojson: bool = False,
    mosaics: Collection[Path] = (),
) -> dict[Path, dict[str, Path]]:
    """The product files of every input (postprocess.product_paths; those of ``mosaics``, the
    inputs segmented block by block, ``inference.mosaic_outputs``), named by io.image_stem.

    Raises :class:`~sciconv.errors.InferenceError` when two inputs would write the same files.

    Examples
    --------
    >>> planned = segmentation_outputs([Path("a.fits")], Path("out"))
    >>> sorted(p.name for p in planned[Path("a.fits")].values())
    ['a_catalog.ecsv', 'a_labels.fits', 'a_prob.fits']
    """
    from sciconv import io, postprocess
    from sciconv.inference._files import mosaic_outputs

    planned: dict[Path, dict[str, Path]] = {}
    seen: dict[str, Path] = {}
    for p in paths:
        stem = io.image_stem(p)
        if stem in seen:
            raise InferenceError(
                f"two inputs share the name {stem!r} ({seen[stem]} and {p}); their outputs "
                "would collide in --out"
            )
        seen[stem] = p
        if p in mosaics:  # labels to zarr, the catalog (and regions, geojson) beside it
            planned[p] = mosaic_outputs(
                out, stem, catalog_format=catalog_format,
                regions="ellipse" if regions else None, geojson=geojson,
            )  # fmt: skip
            continue
        names = postprocess.product_paths(
            out, stem=stem, format=product_format(p, format), catalog_format=catalog_format
        )
        planned[p] = {k: names[k] for k in _WRITTEN_PRODUCTS}
        if regions:
            planned[p]["regions"] = Path(out) / f"{stem}_regions.reg"
        if geojson:
            planned[p]["geojson"] = Path(out) / f"{stem}{postprocess.GEOJSON_SUFFIX}"
    return planned


def check_outputs(paths: Sequence[Path], *, overwrite: bool) -> None:
    """Refuse (:class:`~sciconv.errors.OutputExistsError`) when any of ``paths`` exists and not
    ``overwrite``, naming the first; or when one cannot be written over."""
    from sciconv._atomic import check_writable

    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputExistsError(
            f"output exists{more}; pass --overwrite to replace it", path=existing[0]
        )
    for p in paths:
        if not p.is_dir():  # an OME-Zarr store (a folder) is replaced whole by its writer
            check_writable(p, overwrite=overwrite)


def done_inputs(planned: dict[Path, dict[str, Path]]) -> list[Path]:
    """``--skip-existing``: the inputs of ``planned`` (:func:`segmentation_outputs`) whose
    products all exist, an earlier run's, to be skipped.

    Raises :class:`~sciconv.errors.OutputExistsError` for an input with only some of them (a
    run stopped while writing them, files removed since), naming which exist and which do not,
    before any input is segmented.

    Examples
    --------
    >>> done_inputs(segmentation_outputs([Path("a.fits")], Path("no/such/folder")))
    []
    """
    done, partial = [], []
    for path, products in planned.items():
        there = [p for p in products.values() if p.exists()]
        if len(there) == len(products):
            done.append(path)
        elif there:
            partial.append((path, there, [p for p in products.values() if p not in there]))
    if partial:
        path, there, missing = partial[0]
        more = f" (and {len(partial) - 1} more input(s) like it)" if len(partial) > 1 else ""
        raise OutputExistsError(
            f"only some of its products exist ({', '.join(p.name for p in there)}; not "
            f"{', '.join(p.name for p in missing)}){more}: remove them to segment it again, or "
            "pass --overwrite instead of --skip-existing to recompute every input",
            path=path,
        )
    return done


def without_own_products(paths: list[Path], args) -> tuple[list[Path], list[Path]]:
    """``paths`` less the files this run writes for another input (``--out`` = an input folder:
    a rerun would segment its own labels and probabilities, and read files it overwrites), and
    those files; less an earlier run's products too (:func:`earlier_products`, with a warning).
    """
    from sciconv import io, postprocess

    products = set()
    for p in paths:
        stem = io.image_stem(p)
        names = postprocess.product_paths(
            args.out, stem=stem, format=product_format(p, args.format),
            catalog_format=args.catalog_format,
        )  # fmt: skip
        mine = {Path(f).resolve() for f in names.values()}
        if p.resolve() in mine:  # its own product would replace it: never write over an input
            raise ConfigError(
                f"{p}: its products in {args.out} would have the input's own name (NAME.ome.zarr "
                "for NAME.ome.zarr); write them to another folder (--out)"
            )
        products.update(mine)
    own = [p for p in paths if p.resolve() in products]
    paths = [p for p in paths if p.resolve() not in products]
    earlier = earlier_products(paths)
    if earlier:
        warnings.warn(
            f"skipped {len(earlier)} input(s) named as sciconv products of other inputs (an "
            f"earlier run's, e.g. in another --format): {', '.join(str(p) for p in earlier)}; "
            "rename them to segment them",
            SciconvWarning,
            stacklevel=3,
        )
    return [p for p in paths if p not in earlier], own


def earlier_products(paths: Sequence[Path]) -> list[Path]:
    """The inputs named as image products of another input of the same batch: ``a_labels.tif``,
    ``a_prob.fits``, ``a_labels.zarr`` beside an ``a.*`` (an earlier run's, written into the
    input folder, maybe in another ``--format``). A product-like name without its input is not
    one of them.

    Examples
    --------
    >>> found = earlier_products([Path("a.png"), Path("a_labels.tif"), Path("b_prob.fits")])
    >>> [p.name for p in found]
    ['a_labels.tif']
    """
    from sciconv import io, postprocess

    # the image products' extensions, and zarr for the block-by-block labels
    extensions = (*postprocess.PRODUCT_FORMATS.values(), ".zarr")
    suffixes = postprocess.PRODUCT_SUFFIXES.values()
    stems = {io.image_stem(p) for p in paths}
    found = []
    for p in paths:
        stem = io.image_stem(p)
        base = next((stem[: -len(s)] for s in suffixes if stem.endswith(s)), None)
        if base and base in stems and p.name.lower().endswith(extensions):
            found.append(p)
    return found


def check_tiling(model, args) -> None:
    """``--tile`` (and a given ``--overlap`` with it) against the model: its divisor, its fixed
    input size, the stride left between tiles. Run once, before any input is read; a usage
    error (:class:`~sciconv.errors.ConfigError`) naming the option, not a file.

    ``--overlap auto`` is not checked here: what the model needs may exceed a small tile, which
    is fine for the images that fit in one tile (the library refuses the others).
    """
    if args.tile is None:  # auto tiles fit the image and the overlap
        return
    from sciconv import inference, models

    channels = model.input_shape[-1] or models.get_metadata(model).get("input_channels") or 1
    side = 2 * args.tile + 16  # larger than a tile: tiles are stitched, the overlap counts
    try:
        inference.resolve_settings(
            model, (side, side, int(channels)), tile=args.tile,
            overlap=0 if args.overlap == "auto" else args.overlap, blend="none",
            precision="float32",
        )  # fmt: skip
    except InferenceError as exc:
        message = re.sub(r"\btile=", "--tile ", exc.message)
        raise ConfigError(re.sub(r"\boverlap=", "--overlap ", message)) from None


def check_uncertainty(model, args) -> None:
    """``--uncertainty mc_dropout`` for a model without dropout: a usage error
    (:class:`~sciconv.errors.ConfigError`) once, before any input is read (the samples would all
    be equal, a spread of 0)."""
    if getattr(args, "uncertainty", None) != "mc_dropout":
        return
    from sciconv.inference._uncertainty import has_dropout

    if not has_dropout(model):
        raise ConfigError(
            f"--uncertainty mc_dropout: the model {model.name!r} has no Dropout layer, so its "
            "samples would all be equal (a spread of 0); use --uncertainty tta"
        )
