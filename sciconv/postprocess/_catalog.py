"""Catalogs to files: ECSV, VOTable (units and UCDs for TOPCAT and Aladin), FITS tables, CSV.

:func:`write_catalog` writes a table atomically in the format its extension names;
:func:`flatten_table` is the one rule for per-class and per-channel columns in flat files.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

from sciconv._atomic import atomic_output
from sciconv._validation import look_up_option
from sciconv._warnings import caught
from sciconv.errors import ConfigError, name_text
from sciconv.io import user_path
from sciconv.io._common import brief, fits_output, fits_text
from sciconv.postprocess._image_columns import channel_labels
from sciconv.postprocess._provenance import with_provenance

__all__ = [
    "CATALOG_FORMATS",
    "check_table",
    "flatten_table",
    "read_catalog",
    "with_provenance",  # a catalog's provenance: defined in _provenance, imported from here too
    "write_catalog",
]

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
#: Metadata kept as lists of text in every format (a VOTable INFO each; one name read as a list)
_LIST_META = ("HISTORY", "channel_names", "class_names")


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


def check_table(table) -> None:
    from astropy.table import Table

    if not isinstance(table, Table):
        raise ConfigError(f"table must be an astropy Table; got {type(table).__name__}")


def flatten_table(table, *, names: Sequence[str] | None = None):
    """The table with one value per cell (for CSV): every multi-value column split into columns.

    The one rule for per-class and per-channel columns in flat files. A column ``name`` of shape
    (N, K) becomes K columns ``name_<label>``: ``label`` is the class name when there is one per
    value (``names``, by default ``table.meta["class_names"]``, has K entries), else the channel
    name (``table.meta["channel_names"]``, which :func:`measure` records: ``flux_mean_DNA``)
    made a safe name (other characters than letters, digits and ``_`` as ``_``:
    :func:`channel_labels`) when they are K distinct ones and the columns are free, else the
    index ``0 .. K-1``. Wider columns (N, a, b, ...) are flattened in C order and indexed. Units
    and masks are kept; one-value columns are kept as they are; ``table`` itself is not changed.

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
    >>> from sciconv.postprocess import flatten_table
    >>> t = Table({"path": ["a.fits", "b.fits"], "probabilities": np.eye(2)})
    >>> t.meta["class_names"] = ["spiral", "elliptical"]
    >>> flatten_table(t).colnames
    ['path', 'probabilities_spiral', 'probabilities_elliptical']
    >>> flatten_table(Table({"flux_sum": np.ones((2, 3))})).colnames
    ['flux_sum_0', 'flux_sum_1', 'flux_sum_2']
    >>> t = Table({"flux_sum": np.ones((2, 2))}, meta={"channel_names": ["DNA", "GFP 488"]})
    >>> flatten_table(t).colnames
    ['flux_sum_DNA', 'flux_sum_GFP_488']
    """
    from astropy.table import Table

    check_table(table)
    if names is None:
        names = table.meta.get("class_names")
    labels = [str(n) for n in names] if names is not None else []
    channels = channel_labels(table.meta.get("channel_names")) or []
    flat = Table(meta=dict(table.meta))
    for name in table.colnames:
        col = table[name]
        if col.ndim < 2:
            flat[name] = col
            continue
        values = col.reshape(len(col), -1)
        width = values.shape[1]
        keys = labels if col.ndim == 2 and len(labels) == width else [str(i) for i in range(width)]
        taken = {f"{name}_{key}" for key in channels} & {*table.colnames, *flat.colnames}
        if keys is not labels and col.ndim == 2 and len(channels) == width and not taken:
            keys = channels  # a channel named "err" would make flux_err: indices (QA 56)
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

    Units follow each format's standard where it can say them. A unit the standard does not
    define (astropy's ``electron``, which an HST ``BUNIT = 'ELECTRONS'``, ``ELECTRONS/S`` or
    ``e-/s`` becomes; ``DN``, ``DN/s``) is written so that the file says so and astropy's own
    readers keep what they can:

    - **ECSV**: astropy's string, read back exactly.
    - **FITS**: no ``TUNITn`` (FITS defines no such unit, and astropy's reader turned one into
      an unrecognized unit with a ``UnitsWarning`` per column); the column is stored as
      astropy stores a Quantity it cannot say in FITS, in its serialized-columns header, so
      ``Table.read`` and ``QTable.read`` give ``u.electron / u.s`` back, quietly; its
      ``TCOMMn`` (what TOPCAT shows as the description) ends with
      ``[electron / s: astropy's unit name, not in the FITS standard]``.
    - **VOTable**: the quoted VOUnit, VOUnit 1.0's own form for units outside its list
      (``'electron'``, ``'electron'.s**-1``; valid for astropy's and TOPCAT's validators), and
      the ``FIELD``'s ``DESCRIPTION`` ends with the same note. astropy's VOTable reader makes a
      quoted unit a new unit of that name, which does not convert to ``u.electron``:
      :func:`read_catalog` gives astropy's unit back (so does ``u.Unit(str(unit))``).

    Text and VOTable files are UTF-8: a file name that is not (a latin-1 ``café``, which Python
    lists as ``'caf\\udce9'``) in a str column, a column name (``probabilities_<class>`` of a
    class folder so named) or, for VOTable, the metadata is written with its bytes escaped,
    ``caf\\xe9``, as sciconv records such names everywhere (:func:`sciconv.errors.name_text`),
    with a :class:`~sciconv.errors.SciconvWarning`; ``table`` is not changed. FITS tables take
    ASCII only: such a table is refused there (``ConfigError``).

    Parameters
    ----------
    table : astropy.table.Table
        E.g. from :func:`measure` or :func:`sciconv.inference.predict_files`.
    path : str or os.PathLike
        ``.ecsv`` (keeps units, dtypes, multi-value columns and metadata), ``.csv`` (a plain
        header for spreadsheets and pandas: no units and no metadata, so ``area_phys`` does not
        say um2 or arcsec2 there; multi-value columns split by :func:`flatten_table`:
        ``probabilities_<class name>``, ``flux_sum_<channel name>`` or ``flux_sum_0``, ...),
        ``.fits``/``.fit``/``.fits.gz``,
        or ``.vot``/``.votable``/``.xml``
        (VOTable, through :mod:`astropy.io.votable`: ``ra``/``dec`` refer to an ICRS
        ``COOSYS``, scalar table-level ``meta`` becomes ``INFO`` elements).
    overwrite : bool, optional
        Replace an existing file. Default False (raises ``OutputExistsError``).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from astropy.table import Table
    >>> from sciconv.postprocess import write_catalog
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

    Fluxes in electrons (an HST frame) keep their unit in astropy's FITS reader:

    >>> from astropy import units as u
    >>> from astropy.table import QTable
    >>> table = measure(np.pad(np.ones((2, 3), int), 1), intensity=np.ones((4, 5)) * u.electron)
    >>> fits_cat = write_catalog(table, path.with_suffix(".fits"))
    >>> QTable.read(fits_cat)["flux_sum"].to(u.electron)
    <Quantity [6.] electron>
    """
    check_table(table)
    path = user_path(path)  # ~ expanded; bytes and URLs refused
    fmt = _catalog_format(path)
    if fmt == "ascii.csv":
        table = flatten_table(table)
    elif fmt == "fits":
        table = _with_fits_ucds(fits_columns(table, path))
    if fmt != "fits":  # FITS refuses them below, with the other non-ASCII text
        table = _utf8_names(table, path, meta=fmt == "votable")
    with atomic_output(path, overwrite=overwrite) as tmp:
        if fmt == "votable":
            _votable(table).to_xml(str(tmp))
        elif fmt == "fits":
            try:
                _write_fits_table(table, tmp, path)
            except (TypeError, ValueError, UnicodeError) as exc:
                raise ConfigError(
                    f"the table cannot be written as a FITS table ({brief(exc)}); write .ecsv "
                    "or .vot instead",
                    path=path,
                ) from exc
        else:
            _write_text(table, tmp, fmt)
    return path


def _utf8_names(table, path: Path, *, meta: bool):
    """``table`` as strict UTF-8 text can hold it: the str values and column names (and, for
    ``meta``, the metadata: the VOTable's INFO) that hold a name which is not UTF-8 (a latin-1
    ``caf\\udce9`` as Python lists it) with its bytes escaped, ``caf\\xe9`` as sciconv spells
    such names everywhere (:func:`sciconv.errors.name_text`), in a shallow copy, with a
    :class:`~sciconv.errors.SciconvWarning` naming where: the file's values then differ from the
    table's (QA: astropy's writers raised UnicodeEncodeError after every prediction was made).
    ``table`` itself when it holds none."""
    import numpy as np

    from sciconv.io._common import warn_caller

    columns = [name for name in table.colnames if _column_surrogates(table[name])]
    renamed = {n: name_text(n) for n in table.colnames if _surrogates(n)}
    in_meta = meta and _surrogates(table.meta)
    if not (columns or renamed or in_meta):
        return table
    out = table.copy(copy_data=False)
    for name in columns:
        col = table[name]
        values = np.asarray(col)
        escaped = np.array(
            [name_text(v) if isinstance(v, str) else v for v in values.ravel()], dtype=object
        ).reshape(values.shape)
        new = col.astype(object)  # its unit, description and format kept
        new[...] = escaped
        if getattr(col, "mask", None) is not None:
            new.mask = col.mask  # the assignment unmasked the masked values
        out[name] = new.astype(str) if values.dtype.kind == "U" else new
    if renamed:
        out.rename_columns(list(renamed), list(renamed.values()))
    if in_meta:
        out.meta = _escaped(table.meta)
    quoted = [f"'{name_text(n)}'" for n in columns]  # repr doubles the escapes' backslash
    where = [f"the values of column(s) {', '.join(quoted)}"] if columns else []
    where += [f"the column name(s) {', '.join(renamed.values())}"] if renamed else []
    where += ["the metadata"] if in_meta else []
    warn_caller(
        f"{name_text(path)}: names that are not UTF-8 written with their bytes escaped "
        f"(caf\\xe9, as sciconv records such names): {'; '.join(where)}; rename the files "
        "to UTF-8 (convmv) to keep their names",
        "sciconv",
    )
    return out


def _column_surrogates(col) -> bool:
    """Whether a str (or object) column holds a value with a lone surrogate."""
    import numpy as np

    values = np.asarray(col)
    if values.dtype.kind == "U":  # UCS-4: a surrogate is a code point U+D800..U+DFFF
        points = np.ascontiguousarray(values).view(np.uint32)
        return bool(((points >= 0xD800) & (points <= 0xDFFF)).any())
    return values.dtype.kind == "O" and any(_surrogates(v) for v in values.ravel())


def _surrogates(value) -> bool:
    """Whether ``value`` (a str, or metadata: lists, tuples and dicts of them) holds a lone
    surrogate, the byte of a name that is not UTF-8."""
    if isinstance(value, str):
        return not value.isascii() and any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, (list, tuple)):
        return any(_surrogates(v) for v in value)
    if isinstance(value, dict):
        return any(_surrogates(k) or _surrogates(v) for k, v in value.items())
    return False


def _escaped(value):
    """``value`` (a str, or metadata) with every str through :func:`sciconv.errors.name_text`."""
    if isinstance(value, str):
        return name_text(value) if _surrogates(value) else value
    if isinstance(value, (list, tuple)):
        return type(value)(_escaped(v) for v in value)
    if isinstance(value, dict):
        return type(value)((_escaped(k), _escaped(v)) for k, v in value.items())
    return value


def read_catalog(path: str | os.PathLike):
    """Read a catalog file (ECSV, CSV, FITS table, VOTable) with astropy's units restored.

    The reader for :func:`write_catalog`'s files, and for catalogs of other tools: astropy's
    ``Table.read`` with the units that FITS and VOUnit do not define (``electron``, ``DN``) made
    astropy's own again. A VOTable's quoted VOUnit (``'electron'.s**-1``), which astropy's
    VOTable reader makes a new unit that converts to nothing, becomes ``u.electron / u.s``,
    and the note :func:`write_catalog` added to the column's description is taken off; a
    FITS table's ``TUNITn`` that astropy does not read as a FITS unit (``electron``, as
    sciconv wrote them before) is read quietly as astropy's unit of that name. A unit astropy
    does not know either way is kept as read.

    The table's metadata comes back as written: a VOTable's ``INFO`` elements (its table's
    and its resources': ``PIXSCALE``, ``FLUXERR``, ``INPUT``, ``FILTER``, ``MJD-OBS``,
    ``PHOTZP``, ``HISTORY`` as a list), which astropy's reader drops, as ``meta`` keys, a
    value Python writes as a number or bool (``'28.4'``) as that number, as a FITS card's
    comes back; a FITS table's ``TUCDn``/``TCOMMn`` on their columns (UCD, description), not
    in ``meta``, and its text columns as str, as the other formats give them. CSV holds none.

    Parameters
    ----------
    path : str or os.PathLike
        The catalog; its extension names the format, as for :func:`write_catalog`.

    Returns
    -------
    astropy.table.Table
        Columns with their units (``astropy.table.QTable(table)`` for Quantities).

    Raises
    ------
    ConfigError
        The extension is not a catalog format, or the file is missing or not a readable
        catalog of that format.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from astropy import units as u
    >>> from sciconv.postprocess import measure, write_catalog
    >>> from sciconv.postprocess import read_catalog
    >>> table = measure(np.pad(np.ones((2, 3), int), 1), intensity=np.ones((4, 5)) * u.electron)
    >>> path = write_catalog(table, pathlib.Path(tempfile.mkdtemp()) / "cat.vot")
    >>> back = read_catalog(path)
    >>> back["flux_sum"].unit == u.electron, back["flux_sum"].description
    (True, 'sum of the finite pixels (background included)')
    """
    from astropy import units as u
    from astropy.table import Table

    path = user_path(path)
    fmt = _catalog_format(path)
    # FITS: units restored below; text as str, as the other formats give it (not bytes)
    quiet = {"unit_parse_strict": "silent", "character_as_bytes": False} if fmt == "fits" else {}
    if fmt.startswith("ascii."):  # ECSV is UTF-8; astropy reads in the locale's encoding
        quiet["encoding"] = "utf-8"
    if not path.is_file():
        raise ConfigError("catalog not found" if not path.exists() else "not a file", path=path)
    try:
        if fmt == "votable":  # parsed once: the table, and the INFO elements astropy drops
            from astropy.io.votable import parse

            votable = parse(str(path))
            table = Table.read(votable, format=fmt)
        else:
            table = Table.read(path, format=fmt, **quiet)
    except Exception as exc:  # astropy's reader: a damaged or mis-named file
        raise ConfigError(
            f"cannot read it as a {fmt.upper()} catalog ({type(exc).__name__}: {exc})", path=path
        ) from exc
    if fmt == "fits":
        _stored_integers(table, path)
        _column_cards(table)
    if fmt == "votable":
        table.meta = _votable_meta(votable, table.meta)
    for key in _LIST_META:  # a FITS table's one channel name (repeated cards: a list)
        if isinstance(table.meta.get(key), str):
            table.meta[key] = [table.meta[key]]
    standard = {"fits": "FITS", "votable": "VOUnit"}.get(fmt)
    for name in table.colnames:
        col = table[name]
        unit = getattr(col, "unit", None)
        if unit is None:
            continue
        own = u.Unit(unit.to_string(), parse_strict="silent")  # astropy's unit of that name
        if isinstance(own, u.UnrecognizedUnit) or own == unit:
            continue
        col.unit = own
        if standard and col.info.description:
            col.info.description = _without_unit_note(col.info.description, own, standard)
    return table


#: ECSV and CSV catalogs are formatted this many rows at a time (memory: astropy's text writer
#: holds every formatted line, about 18x the table: 0.8 GB for 300,000 rows of 20 columns).
TEXT_CHUNK_ROWS = 20_000


def _write_text(table, path: Path, fmt: str) -> None:
    """astropy's ECSV / CSV writer, :data:`TEXT_CHUNK_ROWS` rows at a time: the header once,
    then each slice's data lines (the same bytes as one write of the whole table). UTF-8 (ECSV's
    encoding): astropy opens a named file in the locale's (cp1252 on Windows)."""
    import io

    with open(path, "w", encoding="utf-8", newline="") as out:
        if len(table) <= TEXT_CHUNK_ROWS:
            table.write(out, format=fmt)
            return
        for start in range(0, len(table), TEXT_CHUNK_ROWS):
            text = io.StringIO(newline="")
            table[start : start + TEXT_CHUNK_ROWS].write(text, format=fmt)
            lines = text.getvalue().splitlines(keepends=True)
            if start:  # the comment lines (ECSV's header), then the column names: once only
                names = next(i for i, line in enumerate(lines) if not line.startswith("#"))
                lines = lines[names + 1 :]
            out.writelines(lines)


def _unit_text(unit, fmt: str) -> str | None:
    """``unit`` in format ``fmt`` ("fits", "vounit") when astropy reads that text back as the
    same unit (quietly, deprecated words aside), else None (no such unit in the standard)."""

    from astropy import units as u

    try:
        with caught("ignore", u.UnitsWarning):  # deprecated VOUnit words still read
            text = unit.to_string(fmt)
            same = u.Unit(text, format=fmt) == unit
    except (ValueError, u.UnitsError):
        return None
    return text if same else None


#: The note a catalog column's description gets where the file's standard has no name for its
#: unit: a FITS ``TCOMMn``, a VOTable ``FIELD``'s ``DESCRIPTION`` (:func:`read_catalog` takes it
#: off again).
UNIT_NOTE = "[{unit}: astropy's unit name, not in the {standard} standard]"


def _with_unit_note(description, unit, standard: str) -> str:
    note = UNIT_NOTE.format(unit=unit.to_string(), standard=standard)
    return f"{description} {note}" if description else note


def _stored_integers(table, path: Path) -> None:
    """Give, in place, the integer columns of ``path``'s table (its first) that astropy read as
    float their integers back: ``Table.read`` makes every column with a unit float when the
    table holds a Quantity (the fluxes in electrons :func:`write_catalog` stores so), as an
    integer ``area`` or ``bbox_xmin``."""
    import numpy as np
    from astropy.io import fits

    with fits.open(path) as hdul:
        hdu = next((h for h in hdul if isinstance(h, fits.BinTableHDU)), None)
        comments = [] if hdu is None else [str(c) for c in hdu.header.get("COMMENT", [])]
        if "--BEGIN-ASTROPY-SERIALIZED-COLUMNS--" not in comments:
            return  # no Quantity stored: astropy read every column as stored (review)
        # the values' type after TSCALn/TZEROn (a scaled int16 is float, TZERO 2**31 uint32)
        stored = {name: hdu.data.field(name).dtype for name in hdu.columns.names}
    for name in table.colnames:
        col, dtype = table[name], stored.get(name)
        if dtype is None or dtype.kind not in "iu" or getattr(col, "dtype", dtype).kind != "f":
            continue
        values = np.ma.getdata(col)[~np.ma.getmaskarray(col)]
        if np.isfinite(values).all() and (values == np.round(values)).all():  # whole numbers
            table[name] = col.astype(dtype.newbyteorder("="))


def _without_unit_note(description: str, unit, standard: str) -> str | None:
    """``description`` without the note :func:`_with_unit_note` ended it with (None if it was
    all there was)."""
    note = UNIT_NOTE.format(unit=unit.to_string(), standard=standard)
    text = " ".join(description.split())  # a VOTable's DESCRIPTION comes back wrapped
    if text == note:
        return None
    return text[: -len(note) - 1] if text.endswith(" " + note) else description


def _write_fits_table(table, tmp, path) -> None:
    """astropy's FITS table; a column whose unit FITS does not define (``electron`` from an HST
    ``BUNIT = 'ELECTRONS'``) as the Quantity astropy keeps in its serialized-column header,
    without a ``TUNITn`` (read back as that unit, quietly; QA: a TUNITn ``electron`` came back
    as an unrecognized unit with a ``UnitsWarning`` per column), and a ``TCOMMn`` that says so.

    Only those columns: every other unit is a ``TUNITn`` as astropy writes it, on a plain column
    (a Quantity column of an integer ``area`` or ``bbox_*`` reads back as float, and a unit in
    the serialized header alone is hidden from TOPCAT)."""
    from astropy.io import fits
    from astropy.table import QTable, Table
    from astropy.units import UnitsWarning

    # FITS cards hold ASCII: astropy dropped a whole HISTORY list (or INPUT) for one accent
    meta = dict(table.meta)
    for key, value in list(meta.items()):
        if isinstance(value, str):  # INPUT: a file's name, escaped, not turned into another
            meta[key] = fits_text(value, exact=key == "INPUT")
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            meta[key] = [fits_text(v) for v in value]
    # the columns whose unit FITS does not define; the TUNITn of the others, which a QTable
    # would make Quantities: written as plain columns, their TUNITn set after
    odd = {name: table[name].unit for name in table.colnames if _non_fits_unit(table[name])}
    units = {}
    if odd:
        table = Table(table, copy=False)  # a QTable's Quantities as columns with a unit
        out = QTable(meta=meta)
        for name in table.colnames:
            col = table[name]
            if name not in odd and getattr(col, "unit", None) is not None:
                units[name] = _unit_text(col.unit, "fits")
                col = col.copy(copy_data=False)
                col.unit = None
            out.add_column(col, name=name, copy=False)  # odd ones: a Quantity in a QTable
    else:
        out = table.copy(copy_data=False)
        out.meta = meta
    with caught() as quiet:  # channel_names, class_names: HIERARCH cards, as astropy reads them
        quiet.filterwarnings("ignore", message=".*a HIERARCH card will be created")
        if odd:  # written where astropy reads them back (above)
            quiet.simplefilter("ignore", UnitsWarning)
            quiet.filterwarnings("ignore", message=".*could not be saved in native FITS")
        if not odd:
            with fits_output(tmp, path) as dest:  # a .gz name in any case: gzip, stable bytes
                out.write(dest, format="fits")
            return
        buffer = io.BytesIO()  # astropy's table, then the cards it does not write
        out.write(buffer, format="fits")
    buffer.seek(0)
    with fits.open(buffer) as hdul:
        header, names = hdul[1].header, hdul[1].columns.names
        for name, text in units.items():  # where astropy puts a TUNITn: after its TFORMn
            i = names.index(name) + 1
            header.insert(f"TFORM{i}", (f"TUNIT{i}", text), after=True)
        for name, unit in odd.items():
            note = _with_unit_note(table[name].info.description, unit, "FITS")
            header[f"TCOMM{names.index(name) + 1}"] = fits_text(note)
        with fits_output(tmp, path) as dest:
            hdul.writeto(dest)


def _non_fits_unit(col) -> bool:
    """Whether ``col`` has a unit that FITS cannot say (:func:`_unit_text`)."""
    unit = getattr(col, "unit", None)
    return unit is not None and _unit_text(unit, "fits") is None


def _quoted_vounit(unit) -> str | None:
    """``unit`` as a VOUnit string whose units outside the VOUnit list are quoted (the VOUnit
    standard's form for them: ``'electron'``, ``'electron'.s**-1``, ``'DN'``), or None when
    even that does not read back (astropy then writes its own string, with a W50 warning)."""
    from fractions import Fraction

    from astropy import units as u

    try:
        terms = []
        for base, power in zip(unit.bases, unit.powers):
            name = _unit_text(base, "vounit") or f"'{base.to_string()}'"
            if power != 1:
                p = Fraction(power).limit_denominator(1000)
                name += f"**{p}" if p.denominator == 1 else f"**({p})"
            terms.append(name)
        text = ".".join(terms)
        if unit.scale != 1:
            text = f"{unit.scale:.8g}{text}"
        u.Unit(text, format="vounit")  # raises when VOUnit does not read it
    except (ValueError, u.UnitsError):
        return None
    return text


def _votable(table):
    """The VOTable of ``table`` (astropy's ``from_table``: units and UCDs) with a COOSYS that
    ``ra``/``dec`` refer to (ICRS, as :func:`measure` gives them) and the table's scalar
    ``meta`` (PIXCONV, RADECSRC, PIXSCALE, ...) as INFO elements."""
    from astropy.io.votable import from_table, tree

    votable = from_table(table)
    resource = votable.resources[0]
    for field, name in zip(resource.tables[0].fields, table.colnames):
        unit = table[name].unit
        if unit is not None and _unit_text(unit, "vounit") is None:
            text = _quoted_vounit(unit)
            if text is not None:
                field.unit = text
            field.description = _with_unit_note(field.description, unit, "VOUnit")
    if {"ra", "dec"} <= set(table.colnames):
        resource.coordinate_systems.append(tree.CooSys(ID="sciconv_icrs", system="ICRS"))
        for field in resource.tables[0].fields:
            if field.name in ("ra", "dec"):
                field.ref = "sciconv_icrs"
    for key, value in table.meta.items():
        if isinstance(value, (str, int, float)):
            resource.infos.append(_info(str(key), str(value)))
        elif key in _LIST_META and isinstance(value, list):  # provenance, names: one INFO each
            for line in value:
                resource.infos.append(_info(key, str(line)))
    # astropy's Table.read keeps none of the INFO elements (RESOURCE- or TABLE-level) nor
    # PARAMs in .meta (astropy 8), only the TABLE's DESCRIPTION: the provenance there too
    # (read_catalog gives the INFO elements back as meta)
    record = _provenance_record(table.meta)
    if record and not table.meta.get("description"):
        resource.tables[0].description = "\n".join(record)
    return votable


def _provenance_record(meta) -> list[str]:
    """The lines of a VOTable's TABLE ``DESCRIPTION`` that :func:`_votable` writes for
    astropy's reader: ``SOFTWARE``, ``INPUT`` and the ``HISTORY`` lines of ``meta``."""
    record = [f"{k} = {meta[k]}" for k in ("SOFTWARE", "INPUT") if k in meta]
    history = meta.get("HISTORY")
    return record + ([str(line) for line in history] if isinstance(history, list) else [])


def _votable_meta(votable, meta) -> dict:
    """A VOTable's table metadata as :func:`write_catalog` had it: the ``INFO`` elements of
    the resources holding its table and of the table itself (PIXSCALE, FLUXERR, FILTER,
    MJD-OBS, ...), which astropy's reader drops, as keys, a name given more than once (and
    ``HISTORY``) as a list of values; a value written from a number or bool as that number
    or bool again (``'28.4'`` -> 28.4, as a FITS card comes back); then astropy's ``meta``
    (the TABLE's ``DESCRIPTION``) unless it only repeats the provenance INFOs."""
    table = next(votable.iter_tables())

    def holding(resources):  # the chain of resources down to ``table``
        for resource in resources:
            if any(t is table for t in resource.tables):
                return [resource]
            inner = holding(resource.resources)
            if inner:
                return [resource, *inner]
        return []

    restored: dict = {}
    for element in [*holding(votable.resources), table]:
        for info in element.infos:
            name = str(info.name)
            value = str(info.value) if name in _LIST_META else _info_value(info.value)
            if name in _LIST_META or name in restored:
                before = restored.get(name, [])
                restored[name] = [*(before if isinstance(before, list) else [before]), value]
            else:
                restored[name] = value
    record = " ".join(_provenance_record(restored)).split()
    for key, value in meta.items():
        repeated = key == "description" and str(value).split() == record
        if key not in restored and not repeated:
            restored[key] = value
    return restored


def _info_value(text):
    """An INFO element's value as the metadata it was written from (``str(value)``): an int,
    a finite float or a bool when ``text`` is exactly how Python writes one, else ``text``."""
    if text in ("True", "False"):
        return text == "True"
    try:
        number = int(text)
    except (TypeError, ValueError):
        try:
            number = float(text)
        except (TypeError, ValueError):
            return text
    finite = isinstance(number, int) or math.isfinite(number)
    return number if finite and str(number) == text else text


def _column_cards(table) -> None:
    """Take, in place, the ``TUCDn``/``TCOMMn`` cards :func:`write_catalog` wrote for TOPCAT
    out of a FITS table's ``meta``, where astropy's reader leaves them: onto the columns they
    describe (their UCD and description, where astropy's own column record gave none)."""
    for i, name in enumerate(table.colnames, start=1):
        col = table[name]
        ucd, comment = table.meta.pop(f"TUCD{i}", None), table.meta.pop(f"TCOMM{i}", None)
        if ucd and not (col.meta or {}).get("ucd"):
            col.meta["ucd"] = ucd
        if comment and not col.info.description:
            col.info.description = comment


def _info(name: str, value: str):
    """An INFO element without the ID astropy copies from its name: XML IDs are unique, and
    the HISTORY lines repeat theirs (QA: the VOTable 1.4 schema refused every catalog)."""
    from astropy.io.votable import tree

    info = tree.Info(name=name, value=value)
    info.ID = None
    return info


def _printable_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


def fits_columns(table, path: Path | None = None):
    """``table`` as a FITS binary table can hold it: an object column of strings becomes a
    string column (a shallow copy; ``table`` is not changed).

    Raises
    ------
    ConfigError
        A column name that is not printable ASCII, an object column holding other values than
        strings, or a string column with non-ASCII text; the message names the column (ECSV
        and VOTable hold them all).
    """
    import numpy as np

    instead = "; write .ecsv or .vot, which keep it"
    converted = {}
    for name in table.colnames:
        col = table[name]
        if not _printable_ascii(str(name)):
            raise ConfigError(
                f"column {name!r}: FITS column names must be printable ASCII; rename it "
                f"(table.rename_column){instead}",
                path=path,
            )
        dtype = getattr(col, "dtype", None)
        if dtype is None:  # a mixin column (SkyCoord, Time): astropy writes it
            continue
        values = np.asarray(col).ravel()
        if dtype.kind == "O":
            bad = next((v for v in values if not isinstance(v, str)), "")
            if not isinstance(bad, str):
                raise ConfigError(
                    f"column {name!r} holds Python objects ({type(bad).__name__}); a FITS table "
                    f"holds numbers and strings: convert it{instead}",
                    path=path,
                )
            converted[name] = np.asarray(col, dtype=str)
            values = converted[name].ravel()
        codes = np.ascontiguousarray(values).view(np.uint32) if values.dtype.kind == "U" else ()
        if len(codes) and codes.max() >= 128:
            raise ConfigError(
                f"column {name!r} holds non-ASCII text, which FITS tables cannot store{instead}",
                path=path,
            )
    if not converted:
        return table
    table = table.copy(copy_data=False)
    for name, values in converted.items():
        table.replace_column(name, table.Column(values, name=name, **_column_info(table[name])))
    return table


def _column_info(col) -> dict:
    return {"unit": col.unit, "description": col.description, "meta": col.meta}


def _with_fits_ucds(table):
    """A shallow copy whose header gets ``TUCDn``/``TCOMMn`` cards (read by TOPCAT/STIL)."""
    cards = {}
    for i, name in enumerate(table.colnames, start=1):
        col = table[name]
        ucd = (col.meta or {}).get("ucd")
        if ucd:
            cards[f"TUCD{i}"] = fits_text(str(ucd))
        if col.description and len(fits_text(str(col.description))) <= 60:
            cards[f"TCOMM{i}"] = fits_text(str(col.description))
    if not cards:
        return table
    table = table.copy(copy_data=False)
    table.meta.update(cards)
    return table
