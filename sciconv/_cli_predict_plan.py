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

import glob
import os
import re
import warnings
from collections.abc import Collection, Sequence
from pathlib import Path

from sciconv._cli_common import resolved
from sciconv._cli_predict_batch import differing_setting, records_prediction
from sciconv._cli_predict_chips import (
    hdu_args,
    input_file,
    is_fits,
    job_args,
    output_folder,
    product_stem,
    series_args,
    tree_root,
)
from sciconv._cli_predict_sidefiles import refuse_side_products, side_file, uncertainty_file
from sciconv.errors import ConfigError, InferenceError, OutputExistsError, SciconvWarning
from sciconv.io._files import find_same_name, names_folded, same_name_key

__all__ = [
    "check_channel",
    "check_tiling",
    "check_uncertainty",
    "done_inputs",
    "earlier_products",
    "expand_inputs",
    "hdu_args",
    "is_fits",
    "is_mosaic",
    "mask_file",
    "probe_inputs",
    "product_endings",
    "product_format",
    "refuse_mask_products",
    "refuse_options",
    "segmentation_outputs",
    "series_args",
    "sidecar_outputs",
    "tree_root",
    "without_own_products",
]


def expand_inputs(
    inputs: Sequence[str], *, out: Path | None = None, keep_missing: bool = False
) -> list[Path]:
    """The image files ``sciconv predict`` is given: files, OME-Zarr stores and the images of
    folders (their sub-folders are not searched: a warning names them, never ``out``; so do
    its broken links). A file named twice (the same after resolving links, or the same file)
    is taken once.

    An input that does not exist and holds ``*``, ``?`` or ``[`` is a pattern: the files and
    folders it matches, sorted (cmd.exe and PowerShell pass ``cells\\*.tif`` as typed); an
    existing file of such a name is that file.

    Raises :class:`~sciconv.errors.InferenceError` for a missing input (unless
    ``keep_missing``, ``--keep-going``: kept, to fail as an input of its own), a pattern that
    matches nothing, or a folder of no images.

    Examples
    --------
    >>> expand_inputs(["no/such.fits"])
    Traceback (most recent call last):
    ...
    sciconv.errors.InferenceError: no/such.fits: input not found
    >>> expand_inputs(["no/*.fits"])
    Traceback (most recent call last):
    ...
    sciconv.errors.InferenceError: no/*.fits: no file matches this pattern
    """
    from sciconv import io

    paths: list[Path] = []
    items = _matched(inputs)
    given = {resolved(p) for p in items}  # data data/*/: data/night2 is searched, not skipped
    for p in items:
        if io.is_zarr(p) and p.exists():  # an OME-Zarr store: a folder that is one image
            paths.append(p)
        elif p.is_dir():
            found = io.list_images(p)
            if not found:
                subs = _sub_folders(p, out=out)
                hint = (
                    f" (its sub-folders {', '.join(subs[:5])}{', ...' if len(subs) > 5 else ''} "
                    f"are not searched: name them, e.g. {_sub_folder_pattern(p, subs)})"
                    if subs
                    else ""
                )
                raise InferenceError(f"folder holds no image files{hint}", path=p)
            _warn_unsearched(p, found, out=out, given=given)
            paths.extend(Path(f) for f in found)
        elif p.exists() or keep_missing:
            paths.append(p)
        else:
            raise InferenceError("input not found", path=p)
    return _once(paths)


def _matched(inputs: Sequence[str]) -> list[Path]:
    """``inputs`` with each pattern that names no file replaced by what it matches (sorted):
    the shell's expansion, which Windows' shells leave to the program."""
    items: list[Path] = []
    for item in inputs:
        p = find_same_name(item) or Path(item)  # typed in NFC, on disk in NFD (a Mac's copy)
        if os.path.lexists(p) or not any(c in str(item) for c in "*?["):
            items.append(p)
            continue
        matches = sorted(glob.glob(str(item)))
        if not matches:
            raise InferenceError("no file matches this pattern", path=p)
        items.extend(Path(m) for m in matches)
    return items


def _once(paths: list[Path]) -> list[Path]:
    """``paths`` with each file once: the same path after resolving, or the same file (its
    device and inode: a hard link); one look-up per path, however many there are."""
    kept: list[Path] = []
    seen: set = set()
    for p in paths:
        keys = {("path", resolved(p))}  # a link loop: the input's own error, later
        try:
            st = os.stat(p)
            keys.add(("inode", st.st_dev, st.st_ino))
        except OSError:
            pass
        if keys & seen:
            continue
        seen |= keys
        kept.append(p)
    return kept


def _sub_folders(folder: Path, *, out: Path | None, names=()) -> list[str]:
    """The sub-folders of ``folder`` an input folder does not search (hidden ones, ``names``
    and ``out``, the run's output folder, left out)."""
    skip = None if out is None else Path(out).resolve()
    return sorted(
        d.name
        for d in folder.iterdir()
        if d.is_dir() and d.name[:1] != "." and d.name not in names and d.resolve() != skip
    )


#: The sub-folders :func:`_sub_folder_pattern` lists, at most, to find shared image names.
_LOOKED_AT = 200


def _sub_folder_pattern(folder: Path, subs: Sequence[str], found=()) -> str:
    """What to pass to have the sub-folders ``subs`` of ``folder`` searched: ``folder/*/``, and
    ``--keep-tree`` when their images (and the folder's own, ``found``) share names (one folder
    per night or band, each with ``field.fits``), whose products would collide in ``--out``
    otherwise."""
    from sciconv import io

    stems = [io.image_stem(Path(f)) for f in found]
    for sub in subs[:_LOOKED_AT]:
        try:
            stems += [io.image_stem(Path(f)) for f in io.list_images(folder / sub)]
        except OSError:  # unreadable: said when it is named
            continue
    shared = len(set(stems)) < len(stems)
    return f"{folder}/*/ --keep-tree" if shared else f"{folder}/*/"


#: Image files a microscope, scanner or viewer writes that sciconv does not read.
_UNREAD_IMAGE_SUFFIXES = (
    ".bmp", ".gif", ".webp", ".jp2", ".czi", ".nd2", ".lif", ".vsi", ".mrxs", ".bif", ".dcm",
    ".heic",
)  # fmt: skip


def _warn_unsearched(folder: Path, found, *, out: Path | None = None, given=()) -> None:
    """Warnings naming the sub-folders of an input folder (not ``out``, the run's output
    folder, nor those ``given`` as inputs too, resolved), its images of formats sciconv does
    not read and its broken links (none of them is predicted)."""
    names = {Path(f).name for f in found}  # an OME-Zarr store is a folder that is an image
    subs = [
        s for s in _sub_folders(folder, out=out, names=names) if resolved(folder / s) not in given
    ]
    if subs:
        warnings.warn(
            f"{folder}: sub-folder(s) {', '.join(subs[:5])}{', ...' if len(subs) > 5 else ''} "
            f"not searched (name them, e.g. {_sub_folder_pattern(folder, subs, found)})",
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
    broken = sorted(
        f.name for f in folder.iterdir() if f.is_symlink() and not f.exists() and f.name[:1] != "."
    )
    if broken:
        warnings.warn(
            f"{folder}: {len(broken)} broken link(s) skipped ({', '.join(broken[:5])}"
            f"{', ...' if len(broken) > 5 else ''}): their targets do not exist",
            SciconvWarning,
            stacklevel=3,
        )


def product_format(path: Path, chosen: str | None = None) -> str:
    """``--format`` when given; else FITS inputs give FITS products (header and WCS kept),
    OME-TIFF inputs (named ``.ome.tif``/``.ome.tiff``, as the OME specification has them)
    OME-TIFF products (pixel size, unit and channel names in OME-XML), the others TIFF.

    Examples
    --------
    >>> product_format(Path("a.fits")), product_format(Path("a.fits"), "ome-zarr")
    ('fits', 'ome-zarr')
    >>> product_format(Path("slide.ome.tiff")), product_format(Path("cells.tif"))
    ('ome-tiff', 'tiff')
    """
    if chosen is not None:
        return chosen
    if is_fits(path):
        return "fits"
    return "ome-tiff" if path.name.lower().endswith((".ome.tif", ".ome.tiff")) else "tiff"


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
    uncertainty: bool = False,
    root: Path | None = None,
) -> dict[Path, dict[str, Path]]:
    """The product files of every input (postprocess.product_paths; those of ``mosaics``, the
    inputs segmented block by block, ``inference.mosaic_outputs``: a zarr array, or with
    ``format="ome-zarr"`` the store and its label group), named by io.image_stem (a chip of
    ``--hdu all``, ``_cli_predict_chips.Chip``, by ``product_stem``: ``NAME.SCI_2``); with
    ``uncertainty`` the uncertainty file too (TIFF and OME-Zarr; FITS keeps it in the
    probability file). In ``out``, or with ``root`` (``--keep-tree``: the inputs'
    ``tree_root``) in each input's folder relative to it under ``out``
    (``_cli_predict_chips.output_folder``).

    Raises :class:`~sciconv.errors.InferenceError` when two inputs would write the same files
    (also names that differ only in case or Unicode normalization: one on macOS and Windows);
    for inputs of two folders, the error names ``--keep-tree``.

    Examples
    --------
    >>> planned = segmentation_outputs([Path("a.fits")], Path("out"))
    >>> sorted(p.name for p in planned[Path("a.fits")].values())
    ['a_catalog.ecsv', 'a_labels.fits', 'a_prob.fits']
    >>> m = Path("m.tif")
    >>> planned = segmentation_outputs([m], Path("o"), format="ome-zarr", mosaics=[m])
    >>> [p.as_posix() for p in planned[m].values()]
    ['o/m.ome.zarr', 'o/m.ome.zarr/labels/instances', 'o/m_catalog.ecsv']
    >>> n0, n1 = Path("/d/n0/f.fits"), Path("/d/n1/f.fits")
    >>> planned = segmentation_outputs([n0, n1], Path("o"), root=Path("/d"))
    >>> planned[n1]["catalog"].as_posix()
    'o/n1/f_catalog.ecsv'
    """
    from sciconv import postprocess
    from sciconv.inference._files import mosaic_outputs

    planned: dict[Path, dict[str, Path]] = {}
    seen: dict[str, Path] = {}
    # names --out's file system takes for one (APFS, NTFS: Cell and cell; APFS: NFC and NFD);
    # on ext4 they are two files, with two sets of products (review)
    case, normalization = names_folded(out) if len(paths) > 1 else (False, False)
    for p in paths:
        stem, folder, name = product_stem(p), output_folder(p, out, root), _tree_name(p, out, root)
        key = same_name_key(name) if normalization else name
        key = key.lower() if case else key
        if key in seen and _tree_name(seen[key], out, root) != name:
            raise InferenceError(
                f"two inputs' names {_tree_name(seen[key], out, root)!r} and {name!r} differ "
                f"only in case or Unicode normalization ({seen[key]} and {p}); the file system "
                f"of {out} takes them for one name, so their outputs would collide: rename one"
            )
        if key in seen:
            raise InferenceError(_collision(seen[key], p, stem, out, root))
        seen[key] = p
        if p in mosaics:  # labels to zarr or OME-Zarr, the catalog (regions, geojson) beside it
            planned[p] = mosaic_outputs(
                folder, stem, catalog_format=catalog_format,
                regions="ellipse" if regions else None, geojson=geojson, format=format,
            )  # fmt: skip
            continue
        names = postprocess.product_paths(
            folder, stem=stem, format=product_format(input_file(p), format),
            catalog_format=catalog_format,
        )  # fmt: skip
        planned[p] = {k: names[k] for k in _WRITTEN_PRODUCTS}
        if uncertainty and "uncert" in names:
            planned[p]["uncert"] = names["uncert"]
        if regions:
            planned[p]["regions"] = folder / f"{stem}_regions.reg"
        if geojson:
            planned[p]["geojson"] = folder / f"{stem}{postprocess.GEOJSON_SUFFIX}"
    return planned


def _tree_name(job, out: Path, root: Path | None) -> str:
    """A job's products' name in ``out``: its stem, under ``--keep-tree`` after its folder."""
    folder = output_folder(job, out, root).relative_to(out)
    return (folder / product_stem(job)).as_posix()


def _collision(first, second, stem: str, out: Path, root: Path | None) -> str:
    """Why two inputs' products would collide: for inputs of two folders (one per night or
    band), how ``--keep-tree`` would write them apart."""
    text = f"two inputs share the name {stem!r} ({first} and {second}); their outputs would collide"
    a, b = (os.path.dirname(os.path.abspath(input_file(j))) for j in (first, second))
    if root is not None or a == b:
        return f"{text} in --out: rename one"
    apart = tree_root([first, second])
    folders = " and ".join(f"{output_folder(j, out, apart).as_posix()}/" for j in (first, second))
    return (
        f"{text} in --out; pass --keep-tree to write them into sub-folders of --out that follow "
        f"the inputs' folders (e.g. {folders})"
    )


def sidecar_outputs(
    path: Path, out: Path, format: str | None = None, *, root: Path | None = None
) -> list[Path]:
    """The mask and uncertainty files of ``path``'s products (written only when needed: bad
    pixels, ``--uncertainty``); none for FITS, which keeps them in its products. ``path``: an
    input, or a chip of ``--hdu all``; ``root``: ``--keep-tree``'s (see
    :func:`segmentation_outputs`), the files then in the input's own folder under ``out``.

    Examples
    --------
    >>> [p.name for p in sidecar_outputs(Path("a.png"), Path("out"))]
    ['a_mask.tif', 'a_uncert.tif']
    """
    from sciconv import postprocess

    folder = output_folder(path, out, root)
    names = postprocess.product_paths(
        folder, stem=product_stem(path), format=product_format(input_file(path), format)
    )
    return [names[k] for k in ("mask", "uncert") if k in names and names[k].parent == folder]


def done_inputs(
    planned: dict[Path, dict[str, Path]],
    *,
    sidecars: dict[Path, list[Path]] | None = None,
    settings: dict[Path, list[str]] | None = None,
    newer: list | None = None,
    unfinished: list | None = None,
) -> list[Path]:
    """``--skip-existing``: the inputs of ``planned`` (:func:`segmentation_outputs`) that an
    earlier run finished, to be skipped: every product exists, is not empty, is not older than
    the input (make's rule) and records the same model and settings as ``settings`` (the
    HISTORY lines this run would write for the input; not checked for an input without them).

    Inputs whose products are whole and made alike but older than the input (changed since,
    or copied without keeping file times, as batch jobs staging their inputs do) are not done:
    they go to ``newer`` (``(input, its existing products)``), for the caller to segment again.
    So do inputs with only some of their products (``sidecars``: the mask and uncertainty
    files, which count when present), each whole and recording this run's model and settings:
    a run killed between two of them (a batch system's SIGKILL, the OOM killer) goes to
    ``unfinished``, for the caller to segment again.

    Raises :class:`~sciconv.errors.OutputExistsError` for inputs with only some products of
    which none records a sciconv prediction (files of another origin, removed since; without
    ``unfinished``: any partial set), or with products that are empty or made otherwise,
    naming up to 20 of them, before any input is segmented.

    Examples
    --------
    >>> done_inputs(segmentation_outputs([Path("a.fits")], Path("no/such/folder")))
    []
    """
    done, refused = [], []
    for path, products in planned.items():
        there = [p for p in products.values() if p.exists()]
        extra = [p for p in (sidecars or {}).get(path, []) if p.exists() and p not in there]
        if not there and not extra:
            continue
        if len(there) < len(products):
            why = _not_done(path, there + extra, (settings or {}).get(path))
            ours = why in (None, _OLDER) and any(records_prediction(p) for p in there + extra)
            if ours and unfinished is not None:  # a run killed between two of its products
                unfinished.append((path, there + extra))
                continue
            have = ", ".join(p.name for p in there + extra)
            missing = ", ".join(p.name for p in products.values() if p not in there)
            refused.append((path, f"only some of its products exist ({have}; not {missing})"))
            continue
        why = _not_done(path, there, (settings or {}).get(path))
        if why == _OLDER and newer is not None:
            newer.append((path, there + extra))
        elif why:
            refused.append((path, why))
        else:
            done.append(path)
    if refused:
        shown = "; ".join(f"{p}: {why}" for p, why in refused[:_LISTED])
        more = f"; and {len(refused) - _LISTED} more input(s)" if len(refused) > _LISTED else ""
        lead = refused[0][0] if len(refused) == 1 else None
        text = refused[0][1] if lead is not None else f"{len(refused)} inputs: {shown}{more}"
        raise OutputExistsError(
            f"{text}: --skip-existing takes only inputs whose products are whole and current; "
            "remove them to segment the input again, or pass --overwrite instead of "
            "--skip-existing to recompute every input",
            path=None if lead is None else str(lead),  # a chip: NAME.fits[SCI,2]
        )
    return done


#: The inputs a refusal names at most (the others are counted).
_LISTED = 20
# why products older than their input are not done (see done_inputs' ``newer``)
_OLDER = "its products are older than the input (the input changed since)"


def _not_done(path: Path, products: list[Path], settings: list[str] | None) -> str | None:
    """Why the existing ``products`` of ``path`` are not a finished earlier run's; None if
    they are."""
    try:
        made = input_file(path).stat().st_mtime
    except OSError:
        made = None
    for p in products:
        if p.is_file() and p.stat().st_size == 0:
            return f"its product {p.name} is empty"
        if p.is_dir() and not any(p.iterdir()):
            return f"its product {p.name} is empty"
    for p in products if settings is not None else ():
        differs = differing_setting(p, settings)
        if differs:
            return f"its product {p.name} was made with {differs}"
    if made is not None and any(p.stat().st_mtime < made for p in products):
        return _OLDER
    return None


def without_own_products(paths: list[Path], args) -> tuple[list[Path], list[Path]]:
    """``paths`` less the files this run writes for another input (``--out`` = an input folder:
    a rerun would segment its own labels and probabilities, and read files it overwrites), and
    those files; less an earlier run's products too (:func:`earlier_products`, with a warning).
    Such a file that records no sciconv prediction (ground truth ``NAME_labels.tif`` beside
    ``NAME.tif``) is refused with a :class:`~sciconv.errors.ConfigError`: never overwritten.
    """
    from sciconv import io, postprocess

    products = set()
    root = getattr(args, "tree_root", None)  # --keep-tree: each input's own folder in --out
    for p in paths:
        stem = io.image_stem(p)
        names = postprocess.product_paths(
            output_folder(p, args.out, root), stem=stem, format=product_format(p, args.format),
            catalog_format=args.catalog_format,
        )  # fmt: skip
        mine = {Path(f).resolve() for f in names.values()}
        if resolved(p) in mine:  # its own product would replace it: never write over an input
            raise ConfigError(
                f"{p}: its products in {args.out} would have the input's own name (NAME.ome.zarr "
                "for NAME.ome.zarr); write them to another folder (--out)"
            )
        products.update(mine)
    own = [p for p in paths if resolved(p) in products]
    foreign = [p for p in own if p.is_file() and not records_prediction(p)]
    if foreign:  # ground truth beside its image (NAME_labels.tif): --overwrite replaced it (QA)
        listed = ", ".join(str(p) for p in foreign[:_LISTED])
        more = f" and {len(foreign) - _LISTED} more" if len(foreign) > _LISTED else ""
        raise ConfigError(
            f"{len(foreign)} input(s) have the names of this run's products in {args.out} and "
            f"hold no sciconv prediction (ground truth?): {listed}{more}; they are never "
            "overwritten, --overwrite or not: write the products to another folder (--out)"
        )
    paths = [p for p in paths if resolved(p) not in products]
    earlier = earlier_products(paths, out=args.out)
    if earlier:
        warnings.warn(
            f"skipped {len(earlier)} input(s) named as sciconv products of other inputs or in "
            "--out (an earlier run's, e.g. in another --format): "
            f"{', '.join(str(p) for p in earlier)}; rename them to segment them",
            SciconvWarning,
            stacklevel=3,
        )
    return [p for p in paths if p not in earlier], own


def product_endings() -> tuple[str, ...]:
    """What the name of every product sciconv predict writes ends with after its input's name
    (``_labels.tif``, ``_catalog.vot``, ``.ome.zarr``, ``_objects.geojson``, ...), longest
    first: ``postprocess.product_paths`` and ``inference.mosaic_outputs``, the naming rules, for
    every format.

    Examples
    --------
    >>> wanted = {"_labels.tif", "_catalog.fits", "_regions.reg", "_uncert.ome.zarr"}
    >>> wanted <= set(product_endings())
    True
    """
    from sciconv import postprocess
    from sciconv.inference._files import mosaic_outputs

    folder, stem = Path("out"), "x"
    names = []
    for cat in postprocess.PRODUCT_CATALOG_FORMATS:
        for fmt in postprocess.PRODUCT_FORMATS:
            names += postprocess.product_paths(
                folder, stem=stem, format=fmt, catalog_format=cat
            ).values()
        names += mosaic_outputs(
            folder, stem, catalog_format=cat, regions="ellipse", geojson=True
        ).values()
    endings = {p.name[len(stem) :] for p in names if p.parent == folder}
    return tuple(sorted(endings, key=len, reverse=True))


def _product_base(path: Path, endings: Sequence[str]) -> tuple[str | None, str]:
    """The input name ``path`` is named after as a product, and the product ending."""
    lower = path.name.lower()
    for ending in endings:
        if lower.endswith(ending.lower()) and len(path.name) > len(ending):
            return path.name[: -len(ending)], ending
    return None, ""


def earlier_products(paths: Sequence[Path], *, out: Path | None = None) -> list[Path]:
    """The inputs named as products of another input of the same batch: ``a_labels.tif``,
    ``a_prob.fits``, ``a_labels.zarr``, ``a_catalog.ecsv``, ``a_regions.reg``, ``a.ome.zarr``
    beside an ``a.*`` (an earlier run's, written into the input folder, maybe in another
    ``--format``); those in ``out``, the run's output folder, named as products; and, anywhere,
    those named as products that record a sciconv prediction's settings (an image store
    ``NAME.ome.zarr`` only then). A product-like name without its input, in ``out`` or such a
    record is not one of them.

    Examples
    --------
    >>> found = earlier_products([Path("a.png"), Path("a_labels.tif"), Path("b_prob.fits")])
    >>> [p.name for p in found]
    ['a_labels.tif']
    >>> [p.name for p in earlier_products([Path("o/b_prob.fits")], out=Path("o"))]
    ['b_prob.fits']
    """
    from sciconv import io

    endings = product_endings()
    inside = None if out is None else Path(out).resolve()
    stems: dict[str, list[Path]] = {}
    for p in paths:
        stems.setdefault(io.image_stem(p), []).append(p)
    found = []
    for p in paths:
        base, ending = _product_base(p, endings)
        if base is None:
            continue
        store = ending[:1] == "."  # NAME.ome.zarr: an image in its own right, unless recorded
        if any(q != p for q in stems.get(base, ())) and (not store or records_prediction(p)):
            found.append(p)
        elif inside is not None and resolved(p).parent == inside and ending[:1] != ".":
            found.append(p)
        elif records_prediction(p):  # NAME.ome.zarr, or a product elsewhere (old_results/)
            found.append(p)
    return found


def mask_file(path, args) -> Path | None:
    """``--mask`` for ``path``: the one file (its name as it is, braces and all, when it has no
    ``{stem}`` or ``{dir}`` and exists), or the name those give; a
    missing file is refused naming the input (before any input is segmented).

    Examples
    --------
    >>> import argparse
    >>> mask_file(Path("a.fits"), argparse.Namespace(mask=None)) is None
    True
    """
    return side_file(path, getattr(args, "mask", None), "--mask")


def is_mosaic(path, args, shape=None) -> bool:
    """Segment block by block: asked for (``--block``), or too many pixels for one call
    (``shape``: the input's ``io.probe_shape``, read when not given).

    Examples
    --------
    >>> import argparse
    >>> is_mosaic(Path("a.fits"), argparse.Namespace(block=None), shape=(64, 64, 1))
    False
    """
    from sciconv import inference, io

    if args.block is not None:
        return True
    h, w, _ = shape if shape is not None else io.probe_shape(path, **hdu_args(path, args))
    return h * w > inference.AUTO_BLOCK_PIXELS


def refuse_options(path, args, *, mosaic: bool, planes) -> None:
    """The options ``path`` cannot take, refused (:class:`~sciconv.errors.ConfigError`) for every
    input before any is segmented: ``--hdu`` for a file that is not FITS; for a movie or Z-stack
    (``planes``: its ``io.plane_axes``), what TIFF stacks cannot hold; block by block
    (``mosaic``), uncertainty, outlines and the FITS and TIFF formats (OME-Zarr is written).

    Examples
    --------
    >>> import argparse
    >>> args = argparse.Namespace(hdu=None, mask=None, format=None, regions="ellipse",
    ...                           geojson=False, block=None, object_size="auto")
    >>> refuse_options(Path("movie.tif"), args, mosaic=False, planes=("T", (5,)))
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: movie.tif: a stack of 5 T planes is segmented plane by plane ...
    """
    from sciconv import inference
    from sciconv.postprocess._writers import TIFF_PRODUCT_FORMATS

    hdu_args(path, args)  # --hdu is for FITS files
    mask_file(path, args)  # --mask names a file for every input
    errors = uncertainty_file(path, args)  # so does --uncertainty-file
    axes, sizes = planes
    if errors is not None and axes:
        raise ConfigError(
            f"{path}: --uncertainty-file applies to one image, not to a stack of {axes} planes; "
            "run without it (flux errors then come from the background noise)"
        )
    fmt = product_format(path, args.format)
    if axes and (
        args.regions or args.geojson or fmt not in TIFF_PRODUCT_FORMATS or args.block is not None
    ):
        raise ConfigError(
            f"{path}: a stack of {' x '.join(map(str, sizes))} {axes} planes is segmented plane "
            "by plane into TIFF stacks; --regions, --geojson, --block and --format other than "
            "tiff and ome-tiff are not available for it"
        )
    if not mosaic:
        return
    refused = [
        option
        for option, given in (
            ("--regions polygon", args.regions == "polygon"),
            (f"--format {args.format}", args.format in ("fits", *TIFF_PRODUCT_FORMATS)),
            ("--uncertainty", args.uncertainty is not None),
            ("--aperture", getattr(args, "aperture", None) is not None),
        )
        if given
    ]
    if refused:
        raise ConfigError(
            f"{path}: {', '.join(refused)}: block-wise segmentation (--block, or images over "
            f"{inference.AUTO_BLOCK_PIXELS} pixels) writes labels to zarr (NAME_labels.zarr, or "
            "NAME.ome.zarr with --format ome-zarr) and a catalog; --regions polygon (ellipse "
            "is), --format, --uncertainty and --aperture are not available for it (--format "
            "ome-zarr is)"
        )


def refuse_mask_products(paths, args, products) -> None:
    """Refuse a ``--mask`` (or ``--uncertainty-file``) file that is also a product this run
    writes (``{stem}_mask.tif`` is the TIFF products' own mask name): it would be replaced, or
    removed with ``--overwrite`` (:func:`sciconv._cli_predict_sidefiles.refuse_side_products`).

    Examples
    --------
    >>> import argparse
    >>> args = argparse.Namespace(mask=None)
    >>> refuse_mask_products([Path("a.png")], args, [{"mask": Path("o/a_mask.tif")}])
    """
    refuse_side_products(paths, args, products)


def probe_inputs(paths, args, batch) -> tuple[dict, list]:
    """Each input's stack axes (``io.plane_axes``) and whether it is segmented block by block,
    read before any input is segmented: an unreadable, truncated or empty file, or one without
    the ``--channel`` asked for, fails there (in ``batch``, a ``_cli_predict_batch.Batch``:
    with ``--keep-going`` as a failed input, left out of the returned dict).

    Examples
    --------
    >>> import argparse
    >>> from sciconv._cli_predict_batch import Batch
    >>> batch = Batch(keep_going=True)
    >>> args = argparse.Namespace(block=None, channel=None, hdu=None)
    >>> probe_inputs([Path("no/such.tif")], args, batch)  # doctest: +ELLIPSIS
    ({}, [])
    >>> batch.failed
    [PosixPath('no/such.tif')]
    """
    from sciconv import io

    stacks, mosaics = {}, []
    for p in paths:  # inputs, and chips of --hdu all (_cli_predict_chips.Chip), each its own
        f, given = input_file(p), job_args(p, args)
        with batch.one_input(p, also=(ConfigError,)):  # --channel K beyond its channels: its own
            planes = io.plane_axes(f, **series_args(f, given))
            shape = None
            if not planes[0] and (args.block is None or args.channel is not None):
                shape = io.probe_shape(f, **hdu_args(f, given))
            if shape is not None and args.channel is not None:
                check_channel(f, args.channel, shape[-1])
            stacks[p] = planes
            if not planes[0] and is_mosaic(f, given, shape):
                mosaics.append(p)
    return stacks, mosaics


def check_channel(path, channel: int, n: int) -> None:
    """``--channel K`` for an image of ``n`` channels: a ConfigError naming ``path`` when
    there is no channel K.

    Examples
    --------
    >>> check_channel(Path("a.tif"), 1, 1)
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: a.tif: --channel 1: the image has 1 channel(s), numbered 0 to 0
    """
    if channel >= n:
        raise ConfigError(
            f"--channel {channel}: the image has {n} channel(s), numbered 0 to {n - 1}",
            path=path,
        )


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
