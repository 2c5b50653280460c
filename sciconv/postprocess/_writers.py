"""Products -> files: the catalog writer, the one CSV flattening rule, the product writer."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from sciconv._atomic import atomic_output, check_writable
from sciconv._validation import look_up_option
from sciconv.errors import ConfigError, InvalidImageError
from sciconv.io import as_array
from sciconv.postprocess._measure import _validate_labels

#: Catalog file extensions and the astropy format each is written with.
CATALOG_FORMATS = {
    ".ecsv": "ascii.ecsv",
    ".csv": "ascii.csv",
    ".fits": "fits",
    ".fit": "fits",
    ".fits.gz": "fits",
    ".vot": "votable",
    ".votable": "votable",
    ".xml": "votable",
}
#: Product formats of :func:`write_products` and the image extension each writes.
PRODUCT_FORMATS = {"fits": ".fits", "tiff": ".tif"}
# class names of a probability cube whose model recorded none: the planes as instances() reads them
_DEFAULT_CLASSES = {
    1: ("foreground",),
    2: ("background", "foreground"),
    3: ("background", "interior", "boundary"),
}
_MAX_CLASS_CARDS = 1000  # CLASS0 .. CLASS999: FITS keywords have at most 8 characters


# --------------------------------------------------------------------------------------------------
# tables


def _catalog_format(path: Path) -> str:
    name = path.name.lower()
    for ext in sorted(CATALOG_FORMATS, key=len, reverse=True):
        if name.endswith(ext):
            return CATALOG_FORMATS[ext]
    look_up_option(
        "".join(path.suffixes) or path.name, tuple(CATALOG_FORMATS), name="catalog extension"
    )
    raise AssertionError("unreachable")  # pragma: no cover


def _check_table(table) -> None:
    from astropy.table import Table

    if not isinstance(table, Table):
        raise ConfigError(f"table must be an astropy Table; got {type(table).__name__}")


def flatten_table(table, *, names: Sequence[str] | None = None):
    """The table with one value per cell (for CSV): every multi-value column split into columns.

    The one rule for per-class and per-channel columns in flat files. A column ``name`` of shape
    (N, K) becomes K columns ``name_<label>``: ``label`` is the class name when there is one per
    value (``names``, by default ``table.meta["class_names"]``, has K entries), else the index
    ``0 .. K-1``. Wider columns (N, a, b, ...) are flattened in C order and indexed. Units and
    masks are kept; one-value columns are kept as they are; ``table`` itself is not changed.

    Parameters
    ----------
    table : astropy.table.Table
        E.g. from :func:`sciconv.inference.predict_files` (``probabilities`` of shape (N, K) and
        ``meta["class_names"]``) or :func:`measure` (``flux_sum`` of shape (N, C)).
    names : sequence of str, optional
        Class names; default ``table.meta["class_names"]`` when present.

    Returns
    -------
    astropy.table.Table
        A new table with the same rows and ``meta``.

    Raises
    ------
    ConfigError
        ``table`` is not a Table, or a split column's name is already taken.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import Table
    >>> t = Table({"path": ["a.fits", "b.fits"], "probabilities": np.eye(2)})
    >>> t.meta["class_names"] = ["spiral", "elliptical"]
    >>> flatten_table(t).colnames
    ['path', 'probabilities_spiral', 'probabilities_elliptical']
    >>> flatten_table(Table({"flux_sum": np.ones((2, 3))})).colnames
    ['flux_sum_0', 'flux_sum_1', 'flux_sum_2']
    """
    from astropy.table import Table

    _check_table(table)
    if names is None:
        names = table.meta.get("class_names")
    labels = [str(n) for n in names] if names is not None else []
    flat = Table(meta=dict(table.meta))
    for name in table.colnames:
        col = table[name]
        if col.ndim < 2:
            flat[name] = col
            continue
        values = col.reshape(len(col), -1)
        width = values.shape[1]
        keys = labels if col.ndim == 2 and len(labels) == width else [str(i) for i in range(width)]
        for i, key in enumerate(keys):
            new = f"{name}_{key}"
            if new in table.colnames or new in flat.colnames:
                raise ConfigError(
                    f"cannot split column {name!r}: the column {new!r} exists; rename one of them"
                )
            flat[new] = values[:, i]
    return flat


def write_catalog(table, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a table as ECSV, CSV, a FITS binary table or a VOTable (by extension), atomically.

    Column units, descriptions and UCDs (``col.meta["ucd"]``, which :func:`measure` sets) are
    kept: in VOTable as the ``unit``/``ucd`` attributes and ``DESCRIPTION`` of each ``FIELD``
    (what TOPCAT and Aladin read), in FITS as ``TUNITn``, ``TUCDn`` and ``TCOMMn`` cards (and
    astropy's column metadata), in ECSV in its YAML header.

    Parameters
    ----------
    table : astropy.table.Table
        E.g. from :func:`measure` or :func:`sciconv.inference.predict_files`.
    path : str or os.PathLike
        ``.ecsv`` (keeps units, dtypes, multi-value columns and metadata), ``.csv`` (multi-value
        columns split by :func:`flatten_table`: ``probabilities_<class name>``,
        ``flux_sum_0``, ...), ``.fits``/``.fit``/``.fits.gz``, or ``.vot``/``.votable``/``.xml``
        (VOTable, through :mod:`astropy.io.votable`; table-level ``meta`` is not kept there).
    overwrite : bool, optional
        Replace an existing file. Default False (raises ``OutputExistsError``).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from astropy.table import Table
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "cat.ecsv"
    >>> write_catalog(Table({"label": [1, 2], "x": [3.5, 7.0]}), path).name
    'cat.ecsv'
    >>> Table.read(path)["x"].tolist()
    [3.5, 7.0]
    >>> from astropy.io.votable import parse
    >>> import numpy as np
    >>> from sciconv.postprocess import measure
    >>> table = measure(np.pad(np.ones((2, 3), int), 1))
    >>> vot = write_catalog(table, path.with_suffix(".vot"))
    >>> [(f.name, f.ucd, str(f.unit)) for f in parse(vot).get_first_table().fields][1:3]
    [('area', 'phys.area;instr.pixel', 'pix2'), ('x', 'pos.cartesian.x;instr.pixel', 'pix')]
    """
    _check_table(table)
    path = Path(path)
    fmt = _catalog_format(path)
    if fmt == "ascii.csv":
        table = flatten_table(table)
    elif fmt == "fits":
        table = _with_fits_ucds(table)
    with atomic_output(path, overwrite=overwrite) as tmp:
        table.write(tmp, format=fmt)
    return path


def _with_fits_ucds(table):
    """A shallow copy whose header gets ``TUCDn``/``TCOMMn`` cards (read by TOPCAT/STIL)."""
    cards = {}
    for i, name in enumerate(table.colnames, start=1):
        col = table[name]
        ucd = (col.meta or {}).get("ucd")
        if ucd:
            cards[f"TUCD{i}"] = str(ucd)
        if col.description and len(str(col.description)) <= 60:
            cards[f"TCOMM{i}"] = str(col.description)
    if not cards:
        return table
    table = table.copy(copy_data=False)
    table.meta.update(cards)
    return table


# --------------------------------------------------------------------------------------------------
# image products


def product_paths(
    out_dir: str | os.PathLike, *, stem: str = "prediction", format: str = "fits"
) -> dict[str, Path]:
    """The files :func:`write_products` writes for ``stem``: the one naming rule for products.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The output folder.
    stem : str, optional
        File name stem, e.g. ``sciconv.io.image_stem(input_path)``. Default ``"prediction"``.
    format : {"fits", "tiff"}, optional
        Image format of the probability and label files. Default ``"fits"``.

    Returns
    -------
    dict
        ``{"prob": {stem}_prob.fits|.tif, "labels": {stem}_labels.fits|.tif,
        "catalog": {stem}_catalog.ecsv}``.

    Examples
    --------
    >>> sorted((k, p.name) for k, p in product_paths("out", stem="m31", format="tiff").items())
    [('catalog', 'm31_catalog.ecsv'), ('labels', 'm31_labels.tif'), ('prob', 'm31_prob.tif')]
    """
    fmt = look_up_option(format, tuple(PRODUCT_FORMATS), name="format")
    if not isinstance(stem, str) or not stem or Path(stem).name != stem:
        raise ConfigError(f"stem must be a non-empty file name without folders; got {stem!r}")
    out_dir, ext = Path(out_dir), PRODUCT_FORMATS[fmt]
    return {
        "prob": out_dir / f"{stem}_prob{ext}",
        "labels": out_dir / f"{stem}_labels{ext}",
        "catalog": out_dir / f"{stem}_catalog.ecsv",
    }


def _validate_cube(prob) -> np.ndarray:
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


def _class_names(names, k: int) -> list[str]:
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
    like=None,
    stem: str = "prediction",
    format: str = "fits",
    class_names: Sequence[str] | None = None,
    model: str | None = None,
    params: Mapping | None = None,
    history: Iterable[str] | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write the products of a segmentation next to each other, with provenance.

    The one writer of prediction products (``sciconv predict`` and the demo use it), with one
    probability convention: the **full class cube**, one plane per class in the model's output
    order. FITS stores ``prob`` (H, W, K) as a cube (K, H, W) (``NAXIS3 = K``; K = 1 gives a 2-D
    image) whose cards ``CLASS0``, ``CLASS1``, ... name the class of each plane (0-based, as
    ``sciconv.io.read(path).data[..., i]``); TIFF stores it as (K, H, W) pages (axes ``CYX``),
    the class names in its description. :func:`sciconv.io.read` gives (H, W, K) back for both.
    FITS files also carry ``like``'s header and WCS (via :func:`sciconv.io.write`); every file
    gets HISTORY lines naming the model, ``params`` and the class planes.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Folder to write into (created if needed). File names: :func:`product_paths`.
    prob : ndarray of shape (H, W, K) or (H, W), optional
        Class probabilities (e.g. :func:`sciconv.inference.predict_tiled`), written whole as
        ``{stem}_prob.fits`` (or ``.tif``), float32.
    labels : ndarray of int, shape (H, W), optional
        Instance labels, written as ``{stem}_labels.fits`` (or ``.tif``), int32.
    catalog : astropy.table.Table, optional
        E.g. from :func:`measure`, written as ``{stem}_catalog.ecsv`` (:func:`write_catalog`).
    like : GridImage or astropy.io.fits.Header, optional
        The input image whose header and WCS the FITS products inherit (ignored for TIFF).
    stem : str, optional
        File name stem. Default ``"prediction"``.
    format : {"fits", "tiff"}, optional
        Image format. Default ``"fits"``.
    class_names : sequence of str, optional
        One name per plane of ``prob`` (e.g. the model's ``get_metadata(model)["class_names"]``).
        Default: the planes as :func:`instances` reads them: K = 1 ``foreground``, K = 2
        ``background, foreground``, K = 3 ``background, interior, boundary``, else ``class_i``.
    model : str, optional
        Model name or path, recorded in HISTORY.
    params : dict, optional
        Prediction parameters (tile, overlap, threshold, ...), recorded in HISTORY.
    history : iterable of str, optional
        Extra HISTORY lines.
    overwrite : bool, optional
        Replace existing files. Default False: an existing target raises ``OutputExistsError``
        before anything is written.

    Returns
    -------
    dict
        ``{"prob": Path, "labels": Path, "catalog": Path}`` for what was written.

    Raises
    ------
    ConfigError
        Nothing to write, an unknown ``format``, ``class_names`` not one per plane.
    InvalidImageError
        ``prob`` or ``labels`` of the wrong shape, or of different heights and widths.
    OutputExistsError
        A target exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from sciconv import io
    >>> labels = np.zeros((8, 8), np.int32); labels[2:5, 2:5] = 1
    >>> prob = np.stack([labels == 0, labels == 1], axis=-1).astype("float32")
    >>> paths = write_products(tempfile.mkdtemp(), prob=prob, labels=labels, model="demo.keras")
    >>> paths["labels"].name, paths["prob"].name
    ('prediction_labels.fits', 'prediction_prob.fits')
    >>> back = io.read(paths["prob"])
    >>> back.shape, back.header["CLASS1"]
    ((8, 8, 2), 'foreground')
    """
    targets = product_paths(out_dir, stem=stem, format=format)
    fits = targets["prob"].suffix == ".fits"
    given = {"prob": prob, "labels": labels, "catalog": catalog}
    if all(v is None for v in given.values()):
        raise ConfigError("write_products needs prob=, labels=, catalog= or several of them")
    if catalog is not None:
        _check_table(catalog)
    hw = None
    if prob is not None:
        prob = _validate_cube(prob)
        names = _class_names(class_names, prob.shape[-1])
        hw = prob.shape[:2]
    if labels is not None:
        labels = _validate_labels(labels).astype(np.int32)
        if hw is not None and labels.shape != hw:
            raise InvalidImageError(
                f"labels are {labels.shape[0]} x {labels.shape[1]} pixels but prob is "
                f"{hw[0]} x {hw[1]}; they must describe the same image"
            )
    for key, value in given.items():  # refuse before writing anything
        if value is not None:
            check_writable(targets[key], overwrite=overwrite)

    from sciconv import io as scio

    lines = []
    if model is not None:
        lines.append(f"sciconv prediction with model {model}")
    for key, value in (params or {}).items():
        lines.append(f"  {key} = {value!r}")
    lines.extend(str(h) for h in history or [])
    like = like if fits else None
    written = {}
    if prob is not None:
        planes = ", ".join(f"{i}={n}" for i, n in enumerate(names))
        cards = {
            f"CLASS{i}": (n, f"class of probability plane {i} (0-based)")
            for i, n in enumerate(names[:_MAX_CLASS_CARDS])
        }
        written["prob"] = scio.write(
            targets["prob"],
            prob,
            like=like,
            header=cards if fits else None,
            history=[*lines, f"class probability planes: {planes}"],
            overwrite=overwrite,
        )
    if labels is not None:
        written["labels"] = scio.write(
            targets["labels"], labels, like=like, history=lines, overwrite=overwrite
        )
    if catalog is not None:
        written["catalog"] = write_catalog(catalog, targets["catalog"], overwrite=overwrite)
    return written
