"""Products -> files: the catalog writer, the one CSV flattening rule, the product writer.

Image products are FITS (the bad-pixel mask and the uncertainty as ``CCDData`` extensions), TIFF
or OME-Zarr (labels and mask as NGFF label groups, through :mod:`sciconv.io`'s OME-Zarr writers).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from sciconv._atomic import atomic_output, check_writable
from sciconv._validation import look_up_option
from sciconv._warnings import caught, reworded
from sciconv.errors import ConfigError, InvalidImageError, OutputExistsError
from sciconv.io import as_array, user_path
from sciconv.io._common import fits_text, history_lines, looks_channels_first
from sciconv.postprocess._catalog import check_table, with_provenance, write_catalog
from sciconv.postprocess._labels import validate_labels
from sciconv.postprocess._measure import id_dtype
from sciconv.postprocess._provenance import prediction_history
from sciconv.postprocess._zarr_products import (
    ZARR_LABELS,
    ZARR_MASK,
    write_zarr_products,
    zarr_image,
)

#: Product formats of :func:`write_products` and the image extension each writes.
PRODUCT_FORMATS = {
    "fits": ".fits",
    "tiff": ".tif",
    "ome-tiff": ".ome.tif",
    "ome-zarr": ".ome.zarr",
}
#: The product formats whose mask and uncertainty are files of their own, and which hold stacks.
TIFF_PRODUCT_FORMATS = ("tiff", "ome-tiff")
#: Catalog formats of :func:`write_products` (``sciconv predict --catalog-format``): extension.
PRODUCT_CATALOG_FORMATS = {"ecsv": ".ecsv", "votable": ".vot", "fits": ".fits"}
#: What a product's file name appends to the image's name (``m31_prob.fits``); an OME-Zarr
#: store keeps probabilities, labels and mask in one ``{stem}.ome.zarr`` (uncertainty beside it).
PRODUCT_SUFFIXES = {
    "prob": "_prob",
    "labels": "_labels",
    "uncert": "_uncert",
    "mask": "_mask",
    "catalog": "_catalog",
}
# class names of a probability cube whose model recorded none: the planes as instances() reads them
_DEFAULT_CLASSES = {
    1: ("foreground",),
    2: ("background", "foreground"),
    3: ("background", "interior", "boundary"),
}
_MAX_CLASS_CARDS = 1000  # CLASS0 .. CLASS999: FITS keywords have at most 8 characters


# --------------------------------------------------------------------------------------------------
# image products


def product_paths(
    out_dir: str | os.PathLike,
    *,
    stem: str = "prediction",
    format: str = "fits",
    catalog_format: str = "ecsv",
) -> dict[str, Path]:
    """The files :func:`write_products` writes for ``stem``: the one naming rule for products.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The output folder.
    stem : str, optional
        File name stem, e.g. ``sciconv.io.image_stem(input_path)``. Default ``"prediction"``.
    format : {"fits", "tiff", "ome-tiff", "ome-zarr"}, optional
        Image format of the products. Default ``"fits"``.
    catalog_format : {"ecsv", "votable", "fits"}, optional
        Catalog format (:data:`PRODUCT_CATALOG_FORMATS`). Default ``"ecsv"``.

    Returns
    -------
    dict
        ``"prob"``, ``"labels"`` and ``"catalog"`` (``{stem}_catalog.ecsv|.vot|.fits``), and:

        - ``"fits"``: ``{stem}_prob.fits`` and ``{stem}_labels.fits`` (the mask and the
          uncertainty are extensions of these files, not files of their own);
        - ``"tiff"``: ``{stem}_prob.tif``, ``{stem}_labels.tif``, ``"mask"``
          ``{stem}_mask.tif`` and ``"uncert"`` ``{stem}_uncert.tif``;
        - ``"ome-tiff"``: the same names ending ``.ome.tif`` (OME-XML: axes, pixel size and
          unit, channel names);
        - ``"ome-zarr"``: the store ``{stem}.ome.zarr`` (``"prob"``, the image) with its NGFF
          label groups ``labels/instances`` (``"labels"``) and ``labels/mask`` (``"mask"``), and
          the store ``{stem}_uncert.ome.zarr`` (``"uncert"``).

    Examples
    --------
    >>> from sciconv.postprocess import product_paths
    >>> sorted((k, p.name) for k, p in product_paths("out", stem="m31").items())
    [('catalog', 'm31_catalog.ecsv'), ('labels', 'm31_labels.fits'), ('prob', 'm31_prob.fits')]
    >>> paths = product_paths("out", stem="m31", format="ome-zarr", catalog_format="votable")
    >>> paths["labels"].as_posix(), paths["catalog"].name
    ('out/m31.ome.zarr/labels/instances', 'm31_catalog.vot')
    """
    fmt = look_up_option(format, tuple(PRODUCT_FORMATS), name="format")
    cat = look_up_option(catalog_format, tuple(PRODUCT_CATALOG_FORMATS), name="catalog_format")
    if not isinstance(stem, str) or not stem or Path(stem).name != stem:
        raise ConfigError(f"stem must be a non-empty file name without folders; got {stem!r}")
    out_dir, ext = user_path(out_dir, what="out_dir"), PRODUCT_FORMATS[fmt]
    catalog = out_dir / f"{stem}{PRODUCT_SUFFIXES['catalog']}{PRODUCT_CATALOG_FORMATS[cat]}"
    if fmt == "ome-zarr":
        store = out_dir / f"{stem}{ext}"
        return {
            "prob": store,
            "labels": store / "labels" / ZARR_LABELS,
            "mask": store / "labels" / ZARR_MASK,
            "uncert": out_dir / f"{stem}{PRODUCT_SUFFIXES['uncert']}{ext}",
            "catalog": catalog,
        }
    kinds = (
        ("prob", "labels", "mask", "uncert") if fmt in TIFF_PRODUCT_FORMATS else ("prob", "labels")
    )
    paths = {k: out_dir / f"{stem}{PRODUCT_SUFFIXES[k]}{ext}" for k in kinds}
    paths["catalog"] = catalog
    return paths


def validate_cube(prob) -> np.ndarray:
    prob = as_array(prob)
    if hasattr(prob, "compute") and not isinstance(prob, np.ndarray):  # dask
        prob = prob.compute()
    try:
        prob = np.asarray(prob, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InvalidImageError(f"prob must be a numeric array; got {type(prob).__name__}") from err
    if prob.ndim == 2:
        prob = prob[..., None]
    if prob.ndim != 3 or 0 in prob.shape:
        raise InvalidImageError(
            f"prob must have shape (H, W) or (H, W, K), one plane per class; got shape {prob.shape}"
        )
    return prob


def _per_plane(validate, array, lead: int, *, like: tuple | None = None) -> np.ndarray:
    """``validate`` applied to each 2-D plane of a stack with ``lead`` leading axes (``like``:
    their required sizes); ``validate(array)`` when ``lead`` is 0. The stack itself is returned
    (a memory map stays one, nothing is copied) when validating changes no plane's shape or
    dtype; else the validated planes are stacked."""
    if not lead:
        return validate(array)
    arr = np.asarray(as_array(array, load=True))
    if arr.ndim < lead + 2 or (like is not None and arr.shape[:lead] != tuple(like)):
        want = f"{tuple(like)} + (H, W, ...)" if like is not None else f"{lead} stack axes first"
        raise InvalidImageError(f"a stack product must have shape {want}; got {arr.shape}")
    planes = arr.reshape(-1, *arr.shape[lead:])
    unchanged = True
    for plane in planes:  # one plane at a time
        checked = validate(plane)
        unchanged &= checked.shape == plane.shape and checked.dtype == plane.dtype
    if unchanged:
        return arr
    checked = [validate(plane) for plane in planes]
    return np.stack(checked).reshape(*arr.shape[:lead], *checked[0].shape)


def _id_dtype(labels: np.ndarray) -> np.ndarray:
    """Instance ids as int32, or int64 when an id does not fit int32 (never wrapped)."""
    return labels.astype(id_dtype(labels.max() if labels.size else 0), copy=False)


def _validate_mask(mask, hw) -> np.ndarray:
    """The bad-pixel mask as (H, W) bool (True = bad; any channel of an (H, W, C) mask)."""
    mask = as_array(mask, load=True)
    try:
        mask = np.asarray(mask)
    except (TypeError, ValueError) as err:
        raise InvalidImageError(f"mask must be an array; got {type(mask).__name__}") from err
    if mask.dtype.kind not in "biuf":
        raise InvalidImageError(f"mask must be boolean (True = bad pixel); got dtype {mask.dtype}")
    if mask.ndim == 3 and mask.shape[:2] == tuple(hw):
        mask = mask.any(axis=-1)
    if mask.shape != tuple(hw):
        raise InvalidImageError(
            f"mask must have shape {tuple(hw)} (H, W), like the products; got shape {mask.shape}"
        )
    return mask.astype(bool)


def validate_uncertainty(uncertainty, shape) -> np.ndarray:
    """A standard-deviation map of ``shape`` ((H, W, K) or (H, W)), float32, never negative."""
    from astropy.nddata import NDUncertainty, StdDevUncertainty

    if isinstance(uncertainty, NDUncertainty):
        if not isinstance(uncertainty, StdDevUncertainty):
            raise ConfigError(
                f"uncertainty must be a standard deviation (an array or a StdDevUncertainty); "
                f"got {type(uncertainty).__name__}"
            )
        uncertainty = uncertainty.array
    raw = as_array(uncertainty, load=True)
    try:
        unc = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InvalidImageError(
            f"uncertainty must be a numeric array; got {type(raw).__name__}"
        ) from err
    if len(shape) == 3 and unc.ndim == 2:
        unc = unc[..., None]
    if unc.shape != tuple(shape):
        raise InvalidImageError(
            f"uncertainty must have the shape of the probabilities {tuple(shape)} (one standard "
            f"deviation per pixel and class); got shape {unc.shape}"
        )
    if (unc < 0).any():  # NaN compares False: NaN (masked) pixels pass
        raise InvalidImageError(
            f"uncertainty is a standard deviation and cannot be negative; got a minimum of "
            f"{float(np.nanmin(unc)):g}"
        )
    return unc


def fits_layout(array: np.ndarray) -> np.ndarray:
    """(H, W, K) as FITS stores it (as :func:`sciconv.io.write` writes it): (K, H, W), K = 1 2-D."""
    if array.ndim == 3:
        array = array[..., 0] if array.shape[-1] == 1 else np.moveaxis(array, -1, 0)
    return np.ascontiguousarray(array)


def like_wcs(like):
    """The celestial WCS of ``like`` (GridImage, NDData or FITS header), or None."""
    from astropy.io import fits

    if isinstance(like, fits.Header):
        from astropy.wcs import WCS

        with caught("ignore"):  # a header is taken as it is (io.write copies it so)
            try:
                wcs = WCS(like)
            except Exception:  # an unusable WCS: the products simply have none
                return None
        return wcs.celestial if wcs.has_celestial else None
    wcs = getattr(like, "wcs", None)
    if wcs is None or not getattr(wcs, "has_celestial", False):
        return None
    return wcs.celestial


def class_cards(
    names: Sequence[str], comment: str = "class of probability plane {i} (0-based)"
) -> dict[str, tuple[str, str]]:
    """The FITS cards ``CLASS0``, ``CLASS1``, ... naming a probability cube's planes (at most
    1000: keywords have 8 characters), as a dict of ``keyword: (value, comment)``.

    FITS cards hold printable ASCII: a name that is not is spelled with its other characters
    escaped as Python writes them (``Grenzfläche`` -> ``Grenzfl\\xe4che``, as HISTORY names
    files), so that no two names become one; TIFF, OME-TIFF and OME-Zarr products keep the
    names exactly (QA: ``set_metadata(class_names=[..., "Grenzfläche"])`` took every FITS
    product down with "invalid header card").

    Parameters
    ----------
    names : sequence of str
        One name per plane (:func:`class_name_list`).
    comment : str, optional
        Each card's comment; ``{i}`` is the plane's index.

    Returns
    -------
    dict

    Examples
    --------
    >>> from sciconv.postprocess._writers import class_cards
    >>> class_cards(["Zellkern", "Grenzfläche"])["CLASS1"]
    ('Grenzfl\\\\xe4che', 'class of probability plane 1 (0-based)')
    """
    return {
        f"CLASS{i}": (fits_text(n, exact=True), comment.format(i=i))
        for i, n in enumerate(list(names)[:_MAX_CLASS_CARDS])
    }


def class_name_list(names: Sequence[str] | None, k: int) -> list[str]:
    """The names of ``k`` class planes: ``names`` checked (one per plane), or sciconv's
    defaults (``foreground``; ``background``, ``foreground``; ``background``, ``interior``,
    ``boundary``; else ``class_0`` ...), as written to products' ``CLASSn`` cards.

    Parameters
    ----------
    names : sequence of str or None
        The names given; None for the defaults.
    k : int
        The number of planes.

    Returns
    -------
    list of str

    Raises
    ------
    ConfigError
        ``names`` is not a sequence of ``k`` names.

    Examples
    --------
    >>> from sciconv.postprocess import class_name_list
    >>> class_name_list(None, 3)
    ['background', 'interior', 'boundary']
    >>> class_name_list(["sky", "star"], 2)
    ['sky', 'star']
    """
    if names is None:
        return list(_DEFAULT_CLASSES.get(k, [f"class_{i}" for i in range(k)]))
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ConfigError(f"class_names must be a list of {k} names; got {names!r}")
    if len(names) != k:
        raise ConfigError(
            f"class_names has {len(names)} names but prob has {k} class planes; give one per plane"
        )
    return [str(n) for n in names]


def write_products(
    out_dir: str | os.PathLike,
    *,
    prob=None,
    labels=None,
    catalog=None,
    mask=None,
    uncertainty=None,
    like=None,
    stem: str = "prediction",
    format: str = "fits",
    catalog_format: str = "ecsv",
    class_names: Sequence[str] | None = None,
    model=None,
    params: Mapping | None = None,
    history: Iterable[str] | None = None,
    overwrite: bool = False,
    stack_axes: str | None = None,
    decisions: Mapping | None = None,
    source: str | os.PathLike | None = None,
    input_name: str | None = None,
) -> dict[str, Path]:
    """Write the products of a segmentation next to each other, with provenance.

    The one writer of prediction products (``sciconv predict`` and the demo use it), with one
    probability convention: the **full class cube**, one plane per class in the model's output
    order. FITS stores ``prob`` (H, W, K) as a cube (K, H, W) (``NAXIS3 = K``; K = 1 gives a 2-D
    image) whose cards ``CLASS0``, ``CLASS1``, ... name the class of each plane (0-based, as
    ``sciconv.io.read(path).data[..., i]``); TIFF stores it as (K, H, W) pages (axes ``CYX``),
    the class names in its description; OME-Zarr as an NGFF image with axes ``cyx``. Reading any
    of them back with :func:`sciconv.io.read` gives (H, W, K). FITS files also carry ``like``'s
    header (less its ``BUNIT`` and the cards that describe its pixel values, ``DATAMIN``,
    ``SATURATE``, ``GAIN``, ``PHOTFLAM`` ...: the products are dimensionless) and WCS (via
    :func:`sciconv.io.write`); every file gets HISTORY lines naming the
    model, ``params`` and the class planes (an OME-Zarr store keeps them in its ``sciconv``
    attributes).

    The bad-pixel mask and the uncertainty travel the way each format's users expect:

    - **FITS**: the astropy ``CCDData`` convention, written by ``CCDData.to_hdu`` itself (so
      ``CCDData.read`` and ccdproc read them back): an image extension ``MASK`` (uint8, 1 = bad)
      in the probability and label files, and ``UNCERT`` (float32, header ``UTYPE =
      'StdDevUncertainty'``) in the probability file; both extensions carry the WCS. Read them
      with ``CCDData.read(path, unit=u.one)`` (the products are dimensionless).
    - **TIFF**: files of their own, ``{stem}_mask.tif`` (uint8) and ``{stem}_uncert.tif``.
    - **OME-Zarr**: one store ``{stem}.ome.zarr`` whose image is ``prob`` (or ``like``'s pixels
      when only labels are given), the instance labels as its NGFF label group
      ``labels/instances`` and the mask as ``labels/mask`` (what napari and other NGFF viewers
      show over the image), and ``{stem}_uncert.ome.zarr`` for the uncertainty. Each store is
      written in a hidden folder and moved into place when complete.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Folder to write into (created if needed). File names: :func:`product_paths`.
    prob : ndarray of shape (H, W, K) or (H, W), optional
        Class probabilities (e.g. :func:`sciconv.inference.predict_tiled`), written whole as
        ``{stem}_prob.fits`` (or ``.tif``, or the ``.ome.zarr`` image), float32. Channels
        last: a ``prob`` that looks ``(K, H, W)`` (K <= 4, H and W > 16) gets a
        :class:`~sciconv.errors.SciconvWarning`.
    labels : ndarray of int, shape (H, W), or GridImage, optional
        Instance labels, written as ``{stem}_labels.fits`` (or ``.tif``, or the store's
        ``labels/instances``), int32; int64 when an id exceeds ``2**31 - 1`` (ids are never
        truncated). Integer ``(H, W, 1)`` too, as :func:`measure` takes them.
    catalog : astropy.table.Table, optional
        E.g. from :func:`measure`, written by :func:`write_catalog` as ``{stem}_catalog.ecsv``
        (or ``.vot``, ``.fits``: ``catalog_format``).
    mask : ndarray of bool, shape (H, W) or (H, W, C), optional
        Bad pixels (True = bad; an (H, W, C) mask is bad where any channel is), e.g. the input's
        ``GridImage.mask``. Needs ``prob`` or ``labels``.
    uncertainty : ndarray of shape (H, W, K) or (H, W), or StdDevUncertainty, optional
        One standard deviation per pixel and class plane of ``prob`` (e.g. from test-time
        augmentation), stored like ``prob``. Needs ``prob``.
    like : GridImage or astropy.io.fits.Header, optional
        The input image whose header and WCS the FITS products inherit (for TIFF and OME-TIFF:
        a microscope's pixel size, unit and Z spacing; for OME-Zarr: its pixel size, and its
        pixels when no ``prob`` is given).
    stem : str, optional
        File name stem. Default ``"prediction"``.
    format : {"fits", "tiff", "ome-tiff", "ome-zarr"}, optional
        Image format. Default ``"fits"``. OME-TIFF keeps a microscope's pixel size, unit and
        channel names in its OME-XML (plain TIFF: the pixel size as resolution tags). OME-Zarr
        needs ``pip install "sciconv[ome]"``.
    catalog_format : {"ecsv", "votable", "fits"}, optional
        Catalog format: ECSV (keeps everything), VOTable or a FITS table (TOPCAT's own formats,
        with units and UCDs). Default ``"ecsv"``.
    class_names : sequence of str, optional
        One name per plane of ``prob`` (e.g. the model's ``get_metadata(model)["class_names"]``).
        Default: the planes as :func:`instances` reads them: K = 1 ``foreground``, K = 2
        ``background, foreground``, K = 3 ``background, interior, boundary``, else ``class_i``.
    model : str or keras.Model, optional
        Model name or path, recorded in HISTORY; a Keras model records its name and its
        content identity as ``model_id`` (a digest of its architecture, metadata and weights;
        ``sciconv predict`` records the file's name and the same digest, or a shipped model's
        version and digest).
    params : dict, optional
        Prediction parameters (tile, overlap, threshold, ...), recorded in HISTORY as asked
        (``scale = 'auto'``).
    history : str or iterable of str, optional
        Extra HISTORY lines (in FITS spelled in ASCII, as :func:`sciconv.io.write` does).
    overwrite : bool, optional
        Replace existing files. Default False: an existing target raises ``OutputExistsError``
        before anything is written.
    stack_axes : str, optional
        The products of a stack segmented plane by plane (a movie, a Z-stack): ``prob``,
        ``labels``, ``mask`` and ``uncertainty`` have these leading axes (``"T"``, ``"Z"``,
        ``"TZ"``; :func:`sciconv.io.plane_axes`) before their 2-D shapes, and are written as
        TIFF stacks with those axes (``format="tiff"`` or ``"ome-tiff"`` only).
    decisions : dict, optional
        What the automatic settings decided, a :func:`sciconv.inference.decisions` log,
        recorded next to the setting asked as ``'auto'``: ``scale = '0.185 (auto: objects
        97.8 px)'``, ``denoise = 'gaussian 1 px (auto: median object SNR 4.85 < 5.56)'``,
        ``input_transform = 'flipped about 241 (auto)'``.
    source : str or os.PathLike, optional
        The input file, recorded as ``sciconv input PATH sha256:HEX`` (its absolute path and
        the SHA-256 of its bytes; files over 2 GB, or folders, named only). Default: ``like``'s
        path, when it was read from a file. With a model or parameters, a ``sciconv stack``
        line records the Python, TensorFlow, Keras, numpy and astropy versions and the device.
    input_name : str, optional
        What the catalog's ``INPUT`` names instead of the input's file name (its path below
        the batch's common folder, ``n0/field.fits``, under ``sciconv predict --keep-tree``).

    Returns
    -------
    dict
        The paths written, keyed as in :func:`product_paths` (``"prob"``, ``"labels"``,
        ``"catalog"``, and for TIFF and OME-Zarr ``"mask"`` and ``"uncert"``).

    Raises
    ------
    ConfigError
        Nothing to write, ``history`` that is not text, an unknown ``format``,
        ``class_names`` not one per plane, ``mask`` without ``prob`` or ``labels``,
        ``uncertainty`` without ``prob``.
    InvalidImageError
        ``prob``, ``labels``, ``mask`` or ``uncertainty`` of the wrong shape, or a negative
        uncertainty.
    OutputExistsError
        A target exists and ``overwrite`` is False.
    MissingDependencyError
        ``format="ome-zarr"`` without zarr and ome-zarr installed.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from sciconv import io
    >>> from sciconv.postprocess import write_products
    >>> labels = np.zeros((8, 8), np.int32); labels[2:5, 2:5] = 1
    >>> prob = np.stack([labels == 0, labels == 1], axis=-1).astype("float32")
    >>> paths = write_products(tempfile.mkdtemp(), prob=prob, labels=labels, model="demo.keras")
    >>> paths["labels"].name, paths["prob"].name
    ('prediction_labels.fits', 'prediction_prob.fits')
    >>> back = io.read(paths["prob"])
    >>> back.shape, back.header["CLASS1"]
    ((8, 8, 2), 'foreground')

    The mask and a standard deviation per class as ``CCDData`` extensions:

    >>> from astropy import units as u
    >>> from astropy.nddata import CCDData
    >>> bad = np.zeros((8, 8), bool); bad[0, 0] = True
    >>> paths = write_products(
    ...     tempfile.mkdtemp(), prob=prob, mask=bad, uncertainty=np.full((8, 8, 2), 0.1)
    ... )
    >>> ccd = CCDData.read(paths["prob"], unit=u.one)
    >>> type(ccd.uncertainty).__name__, ccd.uncertainty.array.shape, bool(ccd.mask[1, 0, 0])
    ('StdDevUncertainty', (2, 8, 8), True)

    From a prediction: its model, the settings as asked and what ``"auto"`` decided
    (:func:`sciconv.inference.decisions`), the input file and its digest:

    >>> import keras
    >>> from sciconv import inference
    >>> from sciconv.postprocess import measure
    >>> inputs = keras.Input((None, None, 1))
    >>> net = keras.Model(inputs, keras.layers.Conv2D(2, 1, activation="softmax")(inputs))
    >>> image = io.read(io.write(tempfile.mkdtemp() + "/cells.tif", np.ones((16, 16), "f4")))
    >>> settings = dict(scale="auto", denoise="auto", brightness="auto")
    >>> with inference.decisions() as decided:
    ...     labels, prob = inference.predict_instances(
    ...         net, image, return_prob=True, progress=False, **settings
    ...     )
    >>> paths = write_products(
    ...     tempfile.mkdtemp(), prob=prob, labels=labels, catalog=measure(labels, intensity=image),
    ...     like=image, stem="cells", format="tiff", model=net, params=settings,
    ...     decisions=decided,
    ... )
    >>> from astropy.table import Table
    >>> history = Table.read(paths["catalog"]).meta["HISTORY"]  # and every image product's
    >>> [line for line in history if "scale" in line or "model_id" in line]  # doctest: +ELLIPSIS
    ["  model_id = 'sha256:...'", "  scale = '1 (auto)'"]
    >>> [line.split()[2] for line in history if line.startswith("sciconv input")]
    ... # doctest: +ELLIPSIS
    ['/.../cells.tif']
    """
    fmt = look_up_option(format, tuple(PRODUCT_FORMATS), name="format")
    extra_history = history_lines(history)
    lead = len(stack_axes or "")
    if lead and fmt not in TIFF_PRODUCT_FORMATS:
        raise ConfigError(
            f"stack products (stack_axes=) are written as TIFF or OME-TIFF; got format={fmt!r}"
        )
    targets = product_paths(out_dir, stem=stem, format=fmt, catalog_format=catalog_format)
    given = {"prob": prob, "labels": labels, "catalog": catalog}
    if all(v is None for v in given.values()):
        raise ConfigError("write_products needs prob=, labels=, catalog= or several of them")
    if catalog is not None:
        check_table(catalog)
    hw = None  # the stack axes, then H, W
    if prob is not None:
        prob = _per_plane(validate_cube, prob, lead)
        if not lead and looks_channels_first(prob.shape):  # written as K x H pixels, W planes
            raise InvalidImageError(
                f"prob of shape {prob.shape} looks channels-first (K, H, W); products are "
                "written from (H, W, K): pass np.moveaxis(prob, 0, -1) (nothing was written)"
            )
        names = class_name_list(class_names, prob.shape[-1])
        hw = prob.shape[: lead + 2]
    if labels is not None:
        labels = _id_dtype(_per_plane(lambda p: _id_dtype(validate_labels(p)), labels, lead))
        if hw is not None and labels.shape != hw:
            raise InvalidImageError(
                f"labels are {' x '.join(map(str, labels.shape))} pixels but prob is "
                f"{' x '.join(map(str, hw))}; they must describe the same image"
            )
        hw = labels.shape
    if mask is not None:
        if hw is None:
            raise ConfigError("mask= is written with the images: give prob= or labels= too")
        mask = _per_plane(lambda m: _validate_mask(m, hw[lead:]), mask, lead, like=hw[:lead])
    if uncertainty is not None:
        if prob is None:
            raise ConfigError("uncertainty= belongs to the probabilities: give prob= too")
        uncertainty = _per_plane(
            lambda u: validate_uncertainty(u, prob.shape[lead:]),
            uncertainty,
            lead,
            like=prob.shape[:lead],
        )
    image = prob
    if fmt == "ome-zarr" and prob is None and labels is not None:
        image = zarr_image(like, hw)

    # refuse before writing anything
    if fmt == "ome-zarr":
        stores = [targets["prob"]] if image is not None else []
        stores += [targets["uncert"]] if uncertainty is not None else []
        for store in stores:
            if store.exists() and not overwrite:
                raise OutputExistsError(
                    "output exists; pass overwrite=True to replace it", path=store
                )
    else:
        keys = [k for k in ("prob", "labels") if given[k] is not None]
        if fmt in TIFF_PRODUCT_FORMATS:
            keys += [k for k, v in (("mask", mask), ("uncert", uncertainty)) if v is not None]
        for key in keys:
            check_writable(targets[key], overwrite=overwrite)
    if catalog is not None:
        check_writable(targets["catalog"], overwrite=overwrite)

    source = getattr(like, "path", None) if source is None else source
    lines = prediction_history(
        model, params, decisions=decisions, history=extra_history, source=source
    )
    prob_lines = lines
    if prob is not None:
        planes = ", ".join(f"{i}={n}" for i, n in enumerate(names))
        prob_lines = [*lines, f"class probability planes: {planes}"]

    written: dict[str, Path] = {}
    if fmt == "ome-zarr":
        written.update(
            write_zarr_products(
                targets,
                image=image,
                labels=labels,
                mask=mask,
                uncertainty=uncertainty,
                like=like,
                attrs={
                    "history": prob_lines,
                    "class_names": names if prob is not None else None,
                },
                overwrite=overwrite,
            )
        )
    else:
        written.update(
            _write_file_products(
                targets,
                fmt=fmt,
                prob=prob,
                labels=labels,
                mask=mask,
                uncertainty=uncertainty,
                like=like,
                cards=class_cards(names) if prob is not None else None,
                names=names if prob is not None else None,
                history=(prob_lines, lines),
                overwrite=overwrite,
                stack_axes=stack_axes,
            )
        )
    if catalog is not None:
        catalog = with_provenance(catalog, lines, source=source, name=input_name)
        written["catalog"] = write_catalog(catalog, targets["catalog"], overwrite=overwrite)
    return written


def _write_file_products(
    targets,
    *,
    fmt,
    prob,
    labels,
    mask,
    uncertainty,
    like,
    cards,
    names,
    history,
    overwrite,
    stack_axes,
) -> dict[str, Path]:
    """FITS (mask and uncertainty as CCDData extensions) or (OME-)TIFF (as files of their own)."""
    from sciconv import io as scio

    prob_lines, lines = history
    written = {}
    fits = fmt == "fits"
    wcs = like_wcs(like) if fits else None
    tiff = {"overwrite": overwrite, "stack_axes": stack_axes}
    if _microscopy_image(like):  # TIFF keeps its pixel size (resolution tags), not a FITS header
        tiff["like"] = like
    if prob is not None:
        if fits:
            written["prob"] = _write_fits_product(
                targets["prob"],
                prob,
                like=like,
                cards=cards,
                history=prob_lines,
                mask=mask,
                uncertainty=uncertainty,
                wcs=wcs,
                overwrite=overwrite,
            )
        else:
            written["prob"] = scio.write(
                targets["prob"], prob, history=prob_lines, channel_names=names, **tiff
            )
    if labels is not None:
        written["labels"] = (
            _write_fits_product(
                targets["labels"],
                labels,
                like=like,
                cards=None,
                history=lines,
                mask=mask,
                uncertainty=None,
                wcs=wcs,
                overwrite=overwrite,
            )
            if fits
            else scio.write(
                targets["labels"],
                labels,
                history=lines,
                **tiff,
            )
        )
    if not fits:
        if mask is not None:
            written["mask"] = scio.write(
                targets["mask"],
                mask.astype(np.uint8),
                history=[*lines, "bad-pixel mask: 1 = bad"],
                **tiff,
            )
        if uncertainty is not None:
            written["uncert"] = scio.write(
                targets["uncert"],
                uncertainty,
                history=[*prob_lines, "standard deviation of each class probability"],
                channel_names=names,
                **tiff,
            )
    return written


#: What a microscopy input's products take from it: its pixel size, a stack's Z step and frame
#: interval, its ImageJ origin (each alone: an uncalibrated ImageJ movie's interval; QA).
_CARRIED = ("pixel_size", "z_spacing", "time_interval", "imagej")


def _microscopy_image(like) -> bool:
    """A GridImage with a pixel size, Z step, frame interval or ImageJ origin and no FITS header
    or WCS (a TIFF, PNG or OME-Zarr input)."""
    from sciconv.io import GridImage
    from sciconv.io._write import carries_metadata

    return (
        isinstance(like, GridImage)
        and not carries_metadata(like)
        and any(like.meta.get(key) is not None for key in _CARRIED)
    )


def _write_fits_product(
    target: Path, data, *, like, cards, history, mask, uncertainty, wcs, overwrite
) -> Path:
    """One FITS product: the primary by :func:`sciconv.io.write` (header, WCS, HISTORY) less the
    input's ``BUNIT`` and the cards describing its pixel values (``like_pixels=False``:
    probabilities and labels are dimensionless and no detector's counts), then ``MASK``/
    ``UNCERT`` extensions made by ``CCDData.to_hdu`` (the ccdproc convention), each with the
    celestial WCS."""
    from astropy import units as u
    from astropy.io import fits
    from astropy.nddata import CCDData, StdDevUncertainty

    from sciconv import io as scio

    with atomic_output(target, overwrite=overwrite) as tmp:
        with reworded(lambda m, c: c(str(m).replace(str(tmp), str(target)))):  # not the scratch
            scio.write(
                tmp,
                data,
                like=like,
                header=cards,
                history=history,
                like_planes=False,
                like_pixels=False,  # no BUNIT, DATAMIN, GAIN, PHOTFLAM ... of the input's
            )
        extensions = []
        if mask is not None or uncertainty is not None:
            stored = fits_layout(data)
            ccd = CCDData(
                stored,
                unit=u.dimensionless_unscaled,
                mask=None if mask is None else np.broadcast_to(mask, stored.shape).copy(),
                uncertainty=None
                if uncertainty is None
                else StdDevUncertainty(fits_layout(uncertainty)),
            )
            extensions = list(ccd.to_hdu(hdu_mask="MASK", hdu_uncertainty="UNCERT")[1:])
        wcs_cards = wcs.to_header(relax=True) if wcs is not None else None
        with fits.open(tmp, mode="update") as hdul:
            version = hdul[0].header.get("EXTVER")  # e.g. SCI,2 of a multi-extension input
            for hdu in extensions:
                if wcs_cards is not None:
                    hdu.header.extend(wcs_cards, useblanks=False, update=True)
                if version is not None:  # MASK/UNCERT pair with it, as DQ,2 with SCI,2
                    hdu.header["EXTVER"] = version
                if hdu.name == "UNCERT":  # its planes are the primary's: name them alike
                    for key, value in hdul[0].header.items():
                        if key.startswith("CLASS") and key[5:].isdigit():
                            hdu.header[key] = value
                    hdu.header.add_comment("1-sigma spread of each plane (CLASSn) of the primary")
                hdul.append(hdu)
    return target
