"""``sciconv predict``'s command line: the subcommand, its options and their value types.

:func:`add_predict_parser` adds the subcommand to the ``sciconv`` parser; running it is
``sciconv._cli_predict.cmd_predict``'s (:mod:`sciconv.cli` joins the two).

Examples
--------
>>> _positive_int("3"), _block_arg("256"), _object_size_arg("auto"), _hdu_arg("SCI,2")
(3, 256, 'auto', ('SCI', 2))
"""

from __future__ import annotations

import argparse
import math

__all__ = [
    "ALL_HDUS",
    "BACKGROUND_MODES",
    "PRODUCT_CATALOG_FORMATS",
    "PRODUCT_FORMATS",
    "add_predict_parser",
]

# sciconv.postprocess.PRODUCT_FORMATS, PRODUCT_CATALOG_FORMATS and BACKGROUND_MODES, written out
# so that parsing the command line does not import the postprocess stack (tests/test_cli.py
# checks they agree)
PRODUCT_FORMATS = ("fits", "tiff", "ome-tiff", "ome-zarr")
PRODUCT_CATALOG_FORMATS = ("ecsv", "votable", "fits")
BACKGROUND_MODES = ("auto", "map", "none")
#: ``--hdu all``: every science chip of a multi-chip FITS file (``sciconv._cli_predict_chips``).
ALL_HDUS = "all"


def _channel_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a channel number >= 0, got {text!r}")
    return value


def _hdu_arg(text: str) -> int | str | tuple[str, int]:
    """``--hdu``: an index (``1``), an EXTNAME (``SCI``) or EXTNAME,EXTVER (``SCI,2``), parsed
    as ``read(hdu=...)`` parses it (:func:`sciconv.io.parse_hdu`); ``all`` (any case):
    :data:`ALL_HDUS`."""
    from sciconv.errors import ConfigError
    from sciconv.io import parse_hdu

    if str(text).strip().lower() == ALL_HDUS:
        return ALL_HDUS

    try:
        return parse_hdu(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _aperture_arg(text: str) -> str:
    """``--aperture``: one radius, a number (pixels) or a number with a unit of angle or length
    (``2arcsec``, ``1.5um``), checked as ``measure(aperture=)`` reads it
    (:func:`sciconv.postprocess.aperture_radius`) so a typo stops the run before any input;
    converted per image with that image's pixel scale."""
    from sciconv.errors import ConfigError
    from sciconv.postprocess import aperture_radius

    try:
        aperture_radius(text.strip())
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    return text.strip()


def _ignore_flags_arg(text: str) -> int | str:
    """``--ignore-flags``: an integer or a flag expression, checked as astropy reads it."""
    from sciconv.errors import ConfigError
    from sciconv.io._masks import validate_ignore_flags

    value = int(text) if text.strip().lstrip("-").isdigit() else text.strip()
    try:
        return validate_ignore_flags(value)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err).replace("ignore_flags", "BITS")) from err


def _int_at_least(minimum: int):
    """An argparse type: an integer of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1)


def _or_auto(parse):
    """An argparse type: ``auto`` (None, the default: what the products' HISTORY records as
    ``'auto'``, so a command rebuilt from it runs) or what ``parse`` takes."""

    def parse_or_auto(text: str):
        return None if text.strip().lower() == "auto" else parse(text)

    return parse_or_auto


#: ``--block``: a block's core side, at least 16 pixels (``predict_instances_blocks``)
_block_arg = _int_at_least(16)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def _probability_arg(text: str) -> float:
    """``--threshold``: a probability strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1, got {text!r}")
    return value


def _object_size_arg(text: str) -> float | str | None:
    """``--object-size``: ``auto`` (the library default), ``none``, or a diameter in pixels."""
    if text.strip().lower() in ("auto", "none"):
        return None if text.strip().lower() == "none" else "auto"
    try:
        return _positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected auto, none or a diameter in pixels > 0, got {text!r}"
        ) from None


def _overlap_arg(text: str) -> int | str:
    """``--overlap``: an int >= 0, or ``auto`` (the library default)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 or auto, got {text!r}")
    return value


def add_predict_parser(sub) -> argparse.ArgumentParser:
    """Add ``sciconv predict`` to the subcommands ``sub`` (from ``add_subparsers``); return it.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="sciconv")
    >>> _ = add_predict_parser(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["predict", "m.keras", "a.fits", "--out", "res", "--tile", "256"])
    >>> args.tile, args.overlap, args.format
    (256, 'auto', None)
    """
    p = sub.add_parser(
        "predict",
        help="apply a trained model to images",
        description="Apply a .keras model to images or folders of images. Segmenters write, per "
        "input NAME, NAME_prob (the class probabilities, one plane per class, named by the "
        "CLASS0, CLASS1, ... cards of a FITS file), NAME_labels (instance labels) and "
        "NAME_catalog (one row per object, with RA/Dec when the input has a WCS); FITS "
        "inputs give FITS files keeping the input's header and WCS, other inputs TIFF (--format "
        "chooses; ome-zarr writes one NAME.ome.zarr store with the labels as its NGFF "
        "labels/instances group). The input's bad-pixel mask is written with the products (a "
        "MASK extension in FITS). TIFF movies and Z-stacks (T or Z axes in their OME, ImageJ "
        "or tifffile metadata) are segmented plane by plane into TIFF stacks with the same "
        "axes and one catalog with t/z columns. Classifiers and regressors write one "
        "predictions.csv (one column per class: probabilities_<class name>).",
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help="a .keras model saved by sciconv, or pretrained:NAME for a shipped model "
        "(e.g. pretrained:nuclei)",
    )
    p.add_argument(
        "inputs",
        metavar="INPUT",
        nargs="+",
        help="image files, folders or patterns (cells/*.tif: expanded on Windows too)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--tile",
        type=_or_auto(_positive_int),
        default=None,
        metavar="N",
        help="tile size, a multiple of the model's divisor, or auto (default: auto)",
    )
    p.add_argument(
        "--overlap",
        type=_overlap_arg,
        default="auto",
        metavar="N",
        help="tile overlap in pixels, or auto: what the model's receptive field needs "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=8,
        metavar="N",
        help="tiles (segmenters) or files (classifiers) per model call (default: %(default)s)",
    )
    p.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation: the mean over the 8 flips/rotations (8x the time)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="segmenters: compute precision (auto: bfloat16 only on hardware with native "
        "bfloat16 where it measures faster; bfloat16 moves object edges by a few pixels, and "
        "bright objects' fluxes by more than flux_err: float32 for catalogs compared across "
        "machines; default: %(default)s)",
    )
    p.add_argument(
        "--scale",
        type=_or_auto(_positive_float),
        default=None,
        metavar="F",
        help="segmenters: resample images by F first, labels mapped back (e.g. 0.3 for nuclei "
        "~60 px across with pretrained:nuclei, trained on ~18 px), or auto (the default: the "
        "pixel scales' ratio, and --object-size auto's decision)",
    )
    p.add_argument(
        "--channel",
        type=_channel_arg,
        default=None,
        metavar="K",
        help="segmenters: segment channel K (0-based) of multi-channel images, e.g. the nuclear "
        "stain of a nuclei + membrane TIFF (default: all channels, as the model takes them)",
    )
    p.add_argument(
        "--object-size",
        type=_object_size_arg,
        default="auto",
        metavar="auto|none|PX",
        help="segmenters: the objects' typical diameter in pixels (the image is resampled to the "
        "model's training size; not with --scale), or auto: segment again at the training size "
        "when the objects found are outside the sizes the model segments well (pretrained:nuclei "
        "7.4-65.9 px), or none (default: %(default)s)",
    )
    p.add_argument(
        "--brightness",
        choices=("auto", "none"),
        default="auto",
        help="segmenters: auto: segment again, the stretch's top set on the typical object, an "
        "image whose objects come out fainter than the model's training objects (a few far "
        "brighter ones set the top: raw 16-bit images; models that record their training "
        "objects' level, e.g. pretrained:nuclei; block-wise: decided once for the whole "
        "image), or none (default: %(default)s)",
    )
    p.add_argument(
        "--denoise",
        choices=("auto", "none"),
        default="auto",
        help="segmenters: auto: smooth (Gaussian, 1 px) and segment again an image whose objects "
        "stand less far above the pixel noise than the model's training objects (low light; "
        "models that record it, e.g. pretrained:nuclei; block-wise: decided once for the "
        "whole image), or none (default: %(default)s)",
    )
    p.add_argument(
        "--threshold",
        type=_probability_arg,
        default=None,
        metavar="P",
        help="segmenters: foreground probability threshold of the instances (default: the "
        "model's recorded post-processing, else 0.5)",
    )
    p.add_argument(
        "--min-size",
        type=_positive_int,
        default=None,
        metavar="PX",
        help="segmenters: smallest object kept, in the input image's pixels (default: the "
        "model's recorded post-processing, in its own pixels, else 20, sized for nuclei; stars "
        "of a few pixels need e.g. 3)",
    )
    p.add_argument(
        "--bridge",
        type=int,
        default=None,
        metavar="PX",
        help="segmenters: masked (bad) pixels inside an object join it when they fill a gap of "
        "it up to 2 PX + 1 pixels across: a flagged saturated core, a bad column through a star "
        "(default: the model's recorded post-processing, else 8; 0: masked pixels are never "
        "labelled)",
    )
    p.add_argument(
        "--regions",
        choices=("ellipse", "polygon"),
        default=None,
        help="segmenters: also write the detections as a DS9/Aladin region file NAME_regions.reg "
        "(ellipses from moments or label outlines; sky coordinates when the image has a WCS)",
    )
    p.add_argument(
        "--hdu",
        type=_hdu_arg,
        default=None,
        metavar="HDU",
        help="FITS inputs: the image HDU to segment, as an index (1), EXTNAME (SCI) or "
        "EXTNAME,EXTVER (SCI,2: the second science extension of an HST FLT file); its DQ/MASK "
        "HDU of the same EXTVER gives the bad pixels (default: the first HDU holding an image). "
        "'all': every science chip of a multi-chip file (HST SCI,1 and SCI,2, DECam's CCDs), "
        "each segmented as --hdu CHIP into products of its own, NAME.SCI_2_labels.fits, "
        "NAME.S29_catalog.ecsv; other inputs as without --hdu",
    )
    p.add_argument(
        "--series",
        type=int,
        default=None,
        metavar="N",
        help="TIFF inputs holding several images (a whole slide's scan beside its macro and "
        "label, a plate's positions): segment image N (0-based, tifffile's series; default: "
        "the main one, the largest that is not a slide's macro, label or thumbnail)",
    )
    p.add_argument(
        "--nodata",
        type=float,
        default=None,
        metavar="VALUE",
        help="pixels equal to VALUE in every channel are no data (a mosaic's or stitched "
        "slide's uncovered frame, often 0): bad pixels, left out of the normalization and "
        "seen by the network as the good data mirrored, as NaN are. Real pixels of that value "
        "are masked too",
    )
    p.add_argument(
        "--mask",
        default=None,
        metavar="FILE",
        help="a bad-pixel mask (FITS, TIFF, PNG; nonzero = bad, read as DQ flags with "
        "--ignore-flags) added to each input's own: one file for every input (a detector's "
        "bad-pixel map), or a name with {stem} (the input's name without extension) and {dir} "
        "(its folder), e.g. '{dir}/{stem}_dq.fits'. Objects touching bad pixels get flag_masked",
    )
    p.add_argument(
        "--ignore-flags",
        type=_ignore_flags_arg,
        default=None,
        metavar="BITS",
        help="the data-quality bits that do not make a pixel bad, in a DQ HDU or --mask file, as "
        "astropy's bitfield_to_boolean_mask reads them: '4+8' (bits 4 and 8 are fine), "
        "'~4096' (only bit 4096 is bad), '0' (every set bit); default: every set bit is bad, "
        "except in a JWST/Roman DQ HDU (only DO_NOT_USE and NON_SCIENCE, as the JWST pipeline "
        "reads it) and a Rubin MASK HDU (its defect planes)",
    )
    p.add_argument(
        "--uncertainty-file",
        default=None,
        metavar="FILE",
        help="the per-pixel errors of each input, as archives serve them beside the image "
        "(Legacy Surveys/unWISE -invvar-, unWISE -std-, Euclid RMS, Pan-STARRS .wt, DECam oow), "
        "on its pixel grid: one file, or a name with {stem} and {dir} as for --mask, e.g. "
        "'{dir}/{stem}_invvar.fits'. Read as an ERR/VAR/IVAR extension would be: the catalog's "
        "flux_err comes from it, pixels without a measurement (inverse variance 0) are bad",
    )
    p.add_argument(
        "--uncertainty-type",
        choices=("std", "var", "ivar", "stddev", "variance", "invvar"),
        default=None,
        help="what --uncertainty-file holds: standard deviations (unWISE -std-, Euclid RMS), "
        "variances (Pan-STARRS .wt) or inverse variances (Legacy Surveys -invvar-, DECam oow); "
        "default: what the file says (UTYPE, EXTNAME, BUNIT, or invvar/var/std in its name), "
        "else an error",
    )
    p.add_argument(
        "--geojson",
        action="store_true",
        help="segmenters: also write the objects as QuPath detections NAME_objects.geojson "
        "(outlines with the catalog's measurements; File > Import objects), block by block "
        'for slides too (needs shapely: pip install "sciconv[ome]")',
    )
    p.add_argument(
        "--uncertainty",
        choices=("tta", "mc_dropout"),
        default=None,
        help="segmenters: also an uncertainty map (8 flips/rotations, or 8 samples with dropout "
        "active; 8x the time): a standard-deviation extension in the products, score and "
        "uncertainty columns in the catalog; classifiers and regressors: tta only, as --tta "
        "(the mean over the 8 views and a tta_std column)",
    )
    p.add_argument(
        "--block",
        type=_block_arg,
        default=None,
        metavar="N",
        help="segmenters: work block by block (N-px cores, N >= 16) for images larger than memory: "
        "labels to NAME_labels.zarr, catalog to NAME_catalog.<fmt> (automatic above "
        "2 x 4096^2 pixels)",
    )
    p.add_argument(
        "--block-margin",
        type=_or_auto(_positive_int),
        default=None,
        metavar="PX",
        help="segmenters, block by block: the margin around each block's core, at least the "
        "largest object's size (default: from the model's receptive field and its recorded "
        "largest object)",
    )
    _add_product_options(p)
    _add_batch_options(p)
    p.add_argument(
        "--quiet",
        action="store_true",
        help="print nothing but warnings and errors: no progress (a bar on a terminal, a few "
        "plain lines in a log) and no per-input result lines",
    )
    p.add_argument("--trust", action="store_true", help="load a model holding code (Lambda layers)")
    # p.set_defaults(func=...): sciconv.cli gives it sciconv._cli_predict.cmd_predict
    return p


def _add_product_options(p: argparse.ArgumentParser) -> None:
    """``sciconv predict``'s product formats: add product options here."""
    group = p.add_argument_group("products (segmenters)")
    group.add_argument(
        "--format",
        choices=PRODUCT_FORMATS,
        default=None,
        help="image format of the products: fits (header, WCS, MASK extension), tiff, "
        "ome-tiff (NAME_labels.ome.tif, ...: OME-XML with the pixel size, unit and channel "
        "names), or ome-zarr (NAME.ome.zarr: the probabilities with the labels and mask as NGFF "
        "label groups, for napari and other NGFF viewers); default: fits for FITS inputs, "
        "ome-tiff for OME-TIFF inputs (NAME.ome.tif), else tiff. "
        "Block by block (--block, large images) the labels go to NAME_labels.zarr, or with "
        "ome-zarr to NAME.ome.zarr: the image with its labels as an NGFF label pyramid",
    )
    group.add_argument(
        "--catalog-format",
        choices=PRODUCT_CATALOG_FORMATS,
        default="ecsv",
        help="catalog format: ecsv, votable (NAME_catalog.vot, for TOPCAT and Aladin, with "
        "units and UCDs) or fits (a FITS table); default: %(default)s",
    )
    group.add_argument(
        "--background",
        choices=BACKGROUND_MODES,
        default="auto",
        help="catalog fluxes: 'map' adds background-subtracted 'flux' and 'background' columns "
        "(photutils' Background2D with the objects left out) and weights the centroid, hence "
        "ra/dec, with the background-subtracted pixels; 'auto' (default) does so for images "
        "with a sky WCS; 'none': raw pixel sums only (block by block: a map per block window)",
    )
    group.add_argument(
        "--aperture",
        nargs="+",
        type=_aperture_arg,
        default=None,
        metavar="R",
        help="catalog: fixed circular apertures at each object's centroid, one per radius, in "
        "pixels (6) or converted with each image's own pixel scale (2arcsec, 1.5um: the same "
        "circle on the sky in every band and night): flux_aper, flux_aper_err and flags, "
        "background-subtracted as 'flux' is (whose share of the total changes with seeing: "
        "not for colours or light curves); not block by block",
    )
    group.add_argument(
        "--keep-tree",
        action="store_true",
        help="write each input's products into a sub-folder of --out that follows the input's "
        "folder below the inputs' common parent folder: nights/n0/field.fits and "
        "nights/n1/field.fits -> OUT/n0/field_catalog.ecsv and OUT/n1/field_catalog.ecsv (one "
        "folder per night or band, the same file names: refused without it, their products "
        "would collide)",
    )


def _add_batch_options(p: argparse.ArgumentParser) -> None:
    """``--overwrite`` or ``--skip-existing`` (not both), and ``--keep-going``: what a batch does
    with the outputs of an earlier run and with an input that fails."""
    group = p.add_argument_group("batches")
    existing = group.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    existing.add_argument(
        "--skip-existing",
        action="store_true",
        help="segmenters: skip the inputs whose products all exist (an earlier run's), so that "
        "a rerun of an interrupted batch goes on where it stopped; an input with only some of "
        "its products is segmented again (a warning); products made with another model or "
        "settings are an error",
    )
    group.add_argument(
        "--keep-going",
        action="store_true",
        help="an input that fails (unreadable pixels, no finite pixel to normalize, too small, "
        "...) is reported as 'sciconv: error: FILE: ...' and the batch goes on; a last line "
        "names the failed inputs and the exit code is 1. Its products are not written "
        "(classifiers: its row is left out of predictions.csv). Usage errors still stop the "
        "batch",
    )
