"""Datasets from a CSV catalog: one row per image file, with its label(s) or target value(s)."""

from __future__ import annotations

import contextlib
import csv
import math
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sciconv._validation import look_up_option
from sciconv.datasets._classes import class_order
from sciconv.datasets._images import build_image_datasets
from sciconv.datasets._pipelines import attach
from sciconv.datasets._scan import MAX_LISTED
from sciconv.datasets._validate import TASKS
from sciconv.errors import ConfigError, DatasetError, SciconvWarning
from sciconv.io._files import check_name_length, find_same_name, user_path
from sciconv.preprocess import NormSpec

_TRUE = {"1", "1.0", "true", "yes", "y", "t"}
_FALSE = {"0", "0.0", "false", "no", "n", "f"}


def _looks_continuous(class_names: list[str]) -> bool:
    """True when class labels are all numbers and some are not integers (e.g. a float column)."""
    try:
        values = [float(v) for v in class_names]
    except ValueError:
        return False
    return any(math.isfinite(v) and v != round(v) for v in values)


def _delimiter(header: str, needed: list[str]) -> str:
    """The CSV's delimiter: ``,``; ``;`` or a tab when the header is one field holding it and
    the columns sought (Excel's "CSV" where the decimal separator is a comma: German, French).

    Examples
    --------
    >>> _delimiter("path;label", ["path", "label"]), _delimiter("path,label", ["path"])
    (';', ',')
    """
    fields = next(csv.reader([header]), [])
    if len(fields) == 1:
        for other in ";\t":
            names = {f.strip() for f in next(csv.reader([header], delimiter=other), [])}
            if len(names) > 1 and set(needed) <= names:
                return other
    return ","


def _not_utf8(csv_path: Path, exc: UnicodeDecodeError) -> DatasetError:
    """The error for a CSV that is not UTF-8: the line and the byte, and how to save it so."""
    where = ""
    with contextlib.suppress(OSError):
        raw = csv_path.read_bytes()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:  # the first bad byte in the whole file
            line = raw.count(b"\n", 0, err.start) + 1
            where = f"line {line}: byte 0x{raw[err.start]:02x}, "
    return DatasetError(
        f'not a UTF-8 text CSV ({where}{exc.reason}); Excel\'s plain "CSV" uses the '
        'locale\'s code page (cp1252 in Western Europe): save it as "CSV UTF-8", or convert '
        "it (iconv -f cp1252 -t utf-8)",
        path=csv_path,
    )


def _read_catalog(csv_path: Path, needed: list[str]):
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            delimiter = _delimiter(fh.readline(), needed)
            fh.seek(0)
            reader = csv.DictReader(fh, delimiter=delimiter)
            if reader.fieldnames is None:
                raise DatasetError("empty CSV (no header row)", path=csv_path)
            fields = [f.strip() for f in reader.fieldnames]
            missing = [c for c in needed if c not in fields]
            if missing:
                raise DatasetError(
                    f"column(s) {missing} not found; available columns: {fields}", path=csv_path
                )
            reader.fieldnames = fields
            rows, extra = [], []
            for row in reader:
                if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                    continue  # blank line
                if any((v or "").strip() for v in row.get(None) or ()):
                    extra.append(reader.line_num)
                rows.append((reader.line_num, {k: (row.get(k) or "").strip() for k in needed}))
    except UnicodeDecodeError as exc:
        raise _not_utf8(csv_path, exc) from None
    except OSError as exc:  # permission denied, I/O error, a folder given as the CSV
        hint = "; check its permissions" if isinstance(exc, PermissionError) else ""
        raise DatasetError(
            f"cannot read the catalog ({exc.strerror or type(exc).__name__}){hint}",
            path=csv_path,
        ) from None
    except csv.Error as exc:
        raise DatasetError(f"malformed CSV: {exc}", path=csv_path) from None
    if not rows:
        raise DatasetError("CSV has a header but no rows", path=csv_path)
    if extra:
        listed = ", ".join(str(n) for n in extra[:MAX_LISTED])
        more = f" and {len(extra) - MAX_LISTED} more" if len(extra) > MAX_LISTED else ""
        warnings.warn(
            f"{csv_path}: line {listed}{more} hold(s) more fields than the header's "
            f"{len(fields)} columns; the extra fields were ignored (an unquoted comma in a "
            "path or label, or another delimiter? quote such values)",
            SciconvWarning,
            stacklevel=3,
        )
    return rows


def _warn_mostly_numeric(raw: list[str], lines: list[int], column: str, csv_path) -> None:
    """Warn when a few values of an otherwise numeric label column are not numbers (a typo)."""

    def number(v: str) -> bool:
        try:
            float(v)
        except ValueError:
            return False
        return True

    odd = [(ln, v) for ln, v in zip(lines, raw) if not number(v)]
    if not odd or len(raw) - len(odd) < 2 or len(odd) > max(1, len(raw) // 10):
        return
    values = sorted({v for _, v in odd})[:MAX_LISTED]
    where = ", ".join(str(ln) for ln, _ in odd[:MAX_LISTED])
    warnings.warn(
        f"{csv_path}: column {column!r} holds numbers except {values} (line {where}); each "
        "distinct value is made a class. Fix a typo there, or drop the row(s)",
        SciconvWarning,
        stacklevel=3,
    )


def _refuse_outside(rows, path_column: str, base: Path, csv_path: Path) -> None:
    """Raise a DatasetError naming the rows whose path leads out of ``base`` (an absolute path
    inside it, as pipelines write them, is in)."""
    root = os.path.normpath(os.path.abspath(base))
    outside = []
    for line, row in rows:
        rel = row[path_column]
        if not rel:
            continue
        full = os.path.normpath(os.path.join(root, rel))  # as written: ".." resolved, no links
        if os.path.commonpath([root, full]) != root:
            outside.append((line, rel))
    if outside:
        listed = ", ".join(f"line {ln}: {p}" for ln, p in outside[:MAX_LISTED])
        more = f" and {len(outside) - MAX_LISTED} more" if len(outside) > MAX_LISTED else ""
        raise DatasetError(
            f"{len(outside)} path(s) in column {path_column!r} lead outside the catalog's folder "
            f"{base} ({listed}{more}); move the files into it, or pass allow_outside=True if "
            "you trust the catalog",
            path=csv_path,
        )


def _same_numbers_one_class(raw: list[str], column: str, csv_path: Path) -> list[str]:
    """Numeric labels spelled apart (``1`` and ``1.0``: catalogs from pandas, whose column
    turns float after a NaN, joined to another tool's) made classes of their own (QA: 0, 1,
    1.0, 0.0 gave 4): the same number is one class, named as its shortest spelling."""
    try:
        values = {name: float(name) for name in set(raw)}
    except ValueError:
        return raw
    by_value: dict[float, list[str]] = {}
    for name, value in values.items():
        by_value.setdefault(value, []).append(name)
    merged = {v: sorted(names, key=lambda n: (len(n), n)) for v, names in sorted(by_value.items())}
    merged = {v: names for v, names in merged.items() if len(names) > 1}
    if not merged:
        return raw
    said = "; ".join(" = ".join(repr(n) for n in names) for names in merged.values())
    warnings.warn(
        f"{csv_path}: column {column!r}: labels that are the same number are one class ({said})",
        SciconvWarning,
        stacklevel=3,
    )
    name_of = {n: names[0] for names in merged.values() for n in names}
    return [name_of.get(name, name) for name in raw]


def _warn_label_typos(raw: list[str], lines: list[int], column: str, csv_path: Path) -> None:
    """Warn about a rare class label spelled like a common one (``elliptcal`` beside 300
    ``elliptical``), and about labels that differ only in case (``Spiral`` and ``spiral``,
    whatever their counts): each became a class of its own without a word (QA)."""
    import difflib
    from collections import Counter

    counts = Counter(raw)
    folded: dict[str, list[str]] = {}
    for name in counts:
        folded.setdefault(name.casefold(), []).append(name)
    for names in folded.values():
        if len(names) > 1:
            listed = ", ".join(f"{n!r} ({counts[n]} rows)" for n in sorted(names))
            warnings.warn(
                f"{csv_path}: column {column!r}: classes {listed} differ only in case; each is "
                "a class of its own: correct the catalog if they are one",
                SciconvWarning,
                stacklevel=3,
            )
    common = [name for name, n in counts.items() if n >= 5]
    for name, n in counts.items():
        if n > 2 or n * 10 > len(raw) or len(name) < 4:  # "Sab" beside "Sa" is a class
            continue
        close = difflib.get_close_matches(name, [c for c in common if c != name], 1, 0.85)
        if close:
            where = ", ".join(str(ln) for ln, v in zip(lines, raw) if v == name)
            warnings.warn(
                f"{csv_path}: column {column!r}: class {name!r} ({n} row(s), line(s) {where}) "
                f"looks like a misspelling of {close[0]!r} ({counts[close[0]]} rows); it is a "
                "class of its own: correct the catalog if it is not meant to be",
                SciconvWarning,
                stacklevel=3,
            )


def from_catalog(
    csv_path: str | os.PathLike,
    *,
    path_column: str = "path",
    label_column: str | None = None,
    label_columns: Sequence[str] | None = None,
    task: str | None = None,
    on_missing: str = "error",
    on_duplicate: str = "error",
    image_size: int | tuple[int, int] | None = None,
    validation_split: float | None = None,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int | None = 0,
    augment: bool | dict = False,
    normalize: str | dict | NormSpec | None = "default",
    size_policy: str = "auto",
    cache: str | bool | os.PathLike = "auto",
    strict: bool = False,
    allow_outside: bool = False,
):
    """Dataset from a CSV catalog: one row per image file, with its label(s) or target value(s).

    Read with the standard :mod:`csv` module (UTF-8, header row; comma-separated, or
    ``;``-separated as Excel saves it where the decimal separator is a comma: a header of one
    field holding the columns sought with ``;`` or tabs). Relative paths are relative to
    the CSV's folder, and must stay inside it unless ``allow_outside=True``: a catalog from
    elsewhere cannot make sciconv read ``../../home/you/.ssh/id_rsa`` or ``/etc/passwd``.

    Parameters
    ----------
    csv_path : str or path-like
        The catalog.
    path_column : str, optional
        Column holding the image paths. Default ``"path"``. A name spelt in another Unicode
        normalization than the file's (``é`` typed in the CSV, ``e`` + U+0301 on disk from a
        Mac) finds the file.
    label_column : str, optional
        One label column: class labels (``task="classification"``, strings sorted into
        ``class_names``, numerically when they are all numbers) or, with ``task="regression"``,
        one float target.
    label_columns : sequence of str, optional
        Several 0/1 columns (``task="multilabel"``, y float32 ``(N, K)``) or several float
        targets (``task="regression"``, y float32 ``(N, K)``).
    task : {"classification", "multilabel", "regression"}, optional
        Default: classification with ``label_column``, multilabel with ``label_columns``.
    on_missing : {"error", "skip"}, optional
        A row whose file does not exist: a :class:`~sciconv.errors.DatasetError` listing the rows
        (default), or
        dropped with one :class:`~sciconv.errors.SciconvWarning` giving the count.
    on_duplicate : {"error", "first"}, optional
        The same file on several rows: a :class:`~sciconv.errors.DatasetError` naming the lines
        (default; a file
        listed twice would leak between the splits or be over-weighted), or keep the first row
        with one :class:`~sciconv.errors.SciconvWarning`.
    image_size, validation_split, batch_size, shuffle, seed, augment, normalize, size_policy, \
cache, strict
        As in :func:`from_folder`; the split is stratified by class for classification.
        ``augment`` flips and rotates images: use it only for targets that do not change under
        flips/rotations (class, redshift, Sérsic index), not for orientations (position angle).
    allow_outside : bool, optional
        Accept absolute paths and paths leading out of the CSV's folder (``..``). Default False:
        such rows raise a :class:`~sciconv.errors.DatasetError` naming the line and the path.
        The check is on the paths as written; symbolic links inside the folder are followed.

    Returns
    -------
    tf.data.Dataset or (tf.data.Dataset, tf.data.Dataset)
        Batches ``(x, y)``: x float32 ``(N, H, W, C)``; y int32 ``(N,)`` (classification),
        float32 ``(N, K)`` (multilabel 0/1 and regression).

    Raises
    ------
    DatasetError
        Missing or unreadable (permission denied) CSV, missing columns (naming the available
        ones), missing, unreachable or duplicate files (naming the
        lines), paths outside the CSV's folder (naming the lines), unparsable labels (naming the
        line, column and value), plus the errors of
        :func:`from_folder`.
    ConfigError
        ``csv_path`` is not a path (a pandas DataFrame: write it to a CSV first).

    Warns
    -----
    SciconvWarning
        Rows with more fields than the header (the extras are ignored), or a label column of
        numbers with a few values that are not (each becomes a class).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from astropy.io import fits
    >>> from sciconv.datasets import from_catalog
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> rows = ["file,redshift,sersic"]
    >>> for i in range(4):
    ...     fits.writeto(root / f"g{i}.fits", np.full((8, 8), i, "float32"))
    ...     rows.append(f"g{i}.fits,{0.1 * i},{i + 1}")
    >>> _ = (root / "cat.csv").write_text("\\n".join(rows))
    >>> ds = from_catalog(root / "cat.csv", path_column="file", task="regression",
    ...                   label_columns=["redshift", "sersic"], batch_size=4, shuffle=False)
    >>> x, y = next(iter(ds))
    >>> tuple(x.shape), tuple(y.shape), y.dtype.name, ds.task
    ((4, 8, 8, 1), (4, 2), 'float32', 'regression')
    """
    if not isinstance(csv_path, str | os.PathLike | bytes):  # bytes: user_path says what to do
        fix = (
            ": write it with df.to_csv('catalog.csv', index=False) in the images' folder (paths "
            "are relative to the CSV's folder), or use from_arrays for images in memory"
            if hasattr(csv_path, "to_csv")
            else ""
        )
        raise ConfigError(
            f"csv_path must be the path of a CSV file; got {type(csv_path).__name__}{fix}"
        )
    csv_path = user_path(csv_path, what="csv_path")  # ~ expanded; a URL refused
    csv_path = find_same_name(csv_path) or csv_path  # typed in NFC, on disk in NFD (a Mac)
    check_name_length(csv_path, error=DatasetError)
    if isinstance(cache, (str, os.PathLike, bytes)) and cache != "auto":  # a file: ~ expanded
        cache = user_path(cache, what="cache")
    try:
        found = csv_path.is_file()
    except OSError as exc:  # its folder cannot be searched (permission denied)
        raise DatasetError(
            f"cannot reach the catalog ({exc.strerror or type(exc).__name__})", path=csv_path
        ) from None
    if not found:
        raise DatasetError("catalog CSV not found", path=csv_path)
    if (label_column is None) == (label_columns is None):
        raise ConfigError("give exactly one of label_column=... or label_columns=[...]")
    if label_columns is not None:
        if isinstance(label_columns, str) or not len(label_columns):
            raise ConfigError(
                f"label_columns must be a non-empty list of names; got {label_columns!r}"
            )
        label_columns = [str(c) for c in label_columns]
    task_defaulted = task is None
    if task is None:
        task = "classification" if label_column is not None else "multilabel"
    task = look_up_option(task, TASKS, name="task")
    if task == "classification" and label_column is None:
        raise ConfigError("task='classification' needs label_column=...; got label_columns")
    if task == "multilabel" and label_columns is None:
        raise ConfigError("task='multilabel' needs label_columns=[...]; got label_column")
    on_missing = look_up_option(on_missing, ("error", "skip"), name="on_missing")
    on_duplicate = look_up_option(on_duplicate, ("error", "first"), name="on_duplicate")
    columns = [label_column] if label_column is not None else list(label_columns)
    rows = _read_catalog(csv_path, [path_column, *columns])

    # files: rows leading outside the catalog's folder, missing and duplicate rows
    base = csv_path.parent
    if not allow_outside:
        _refuse_outside(rows, path_column, base, csv_path)
    missing, denied, seen, dups, kept = [], [], {}, [], []
    listings: dict = {}  # folders listed to find names spelt in another Unicode normalization
    for line, row in rows:
        rel = row[path_column]
        full = (base / rel) if rel else None
        try:
            is_file = full is not None and full.is_file()
            if full is not None and not is_file:  # é as e + U+0301 on disk (made on a Mac)
                other = find_same_name(full, listings=listings)
                if other is not None and other.is_file():
                    full, is_file = other, True
        except OSError as exc:  # a folder on the way cannot be searched (permission denied)
            denied.append((line, rel, exc.strerror or type(exc).__name__))
            continue
        if not is_file:
            missing.append((line, rel))
            continue
        key = os.path.realpath(full)
        if key in seen:
            dups.append((seen[key], line, rel))
            continue
        seen[key] = line
        kept.append((line, str(full), row))
    if denied:
        listed = ", ".join(f"line {ln}: {p} ({why})" for ln, p, why in denied[:MAX_LISTED])
        more = f" and {len(denied) - MAX_LISTED} more" if len(denied) > MAX_LISTED else ""
        raise DatasetError(
            f"{len(denied)} file(s) listed in column {path_column!r} cannot be reached (paths "
            f"are relative to {base}): {listed}{more}; check the folders' permissions",
            path=csv_path,
        )
    if missing:
        listed = ", ".join(f"line {ln}: {p or '(empty)'}" for ln, p in missing[:MAX_LISTED])
        more = f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
        if on_missing == "error":
            raise DatasetError(
                f"{len(missing)} file(s) listed in column {path_column!r} not found (paths are "
                f"relative to {base}): {listed}{more}; pass on_missing='skip' to drop them",
                path=csv_path,
            )
        warnings.warn(
            f"{csv_path}: skipped {len(missing)} row(s) whose file is missing ({listed}{more})",
            SciconvWarning,
            stacklevel=2,
        )
    if dups:
        listed = ", ".join(f"lines {a} and {b}: {p}" for a, b, p in dups[:MAX_LISTED])
        if on_duplicate == "error":
            raise DatasetError(
                f"{len(dups)} duplicate file path(s) ({listed}); remove them or pass "
                "on_duplicate='first'",
                path=csv_path,
            )
        warnings.warn(
            f"{csv_path}: {len(dups)} duplicate file path(s) ignored, first row kept ({listed})",
            SciconvWarning,
            stacklevel=2,
        )
    if not kept:
        raise DatasetError("no row of the catalog points to an existing file", path=csv_path)

    # labels
    def bad(line, col, value, want):
        comma = re.fullmatch(r"[-+]?\d*,\d+", value) and want == "a number"
        hint = "; write numbers with a decimal point (0.5, not 0,5)" if comma else ""
        raise DatasetError(
            f"line {line}, column {col!r}: cannot parse {value!r} as {want}{hint}", path=csv_path
        )

    lines = [ln for ln, _, _ in kept]
    if task == "classification":
        raw = []
        for ln, _, row in kept:
            if not row[label_column]:
                bad(ln, label_column, row[label_column], "a class label (empty)")
            raw.append(row[label_column])
        _warn_mostly_numeric(raw, [ln for ln, _, _ in kept], label_column, csv_path)
        raw = _same_numbers_one_class(raw, label_column, csv_path)
        class_names = class_order(raw)
        if task_defaulted and _looks_continuous(class_names):
            warnings.warn(
                f"{csv_path}: column {label_column!r} holds {len(class_names)} distinct "
                "non-integer numbers, each made a class; pass task='regression' for a "
                "continuous target (or task='classification' to keep classes and silence this)",
                SciconvWarning,
                stacklevel=2,
            )
        _warn_label_typos(raw, lines, label_column, csv_path)
        ids = {name: i for i, name in enumerate(class_names)}
        y = np.array([ids[v] for v in raw], dtype=np.int32)
        strata = y
    else:
        y = np.zeros((len(kept), len(columns)), dtype=np.float32)
        for r, (ln, _, row) in enumerate(kept):
            for k, col in enumerate(columns):
                value = row[col]
                if task == "multilabel":
                    low = value.lower()
                    if low not in _TRUE and low not in _FALSE:
                        bad(ln, col, value, "0/1")
                    y[r, k] = 1.0 if low in _TRUE else 0.0
                else:
                    try:
                        y[r, k] = float(value)
                    except ValueError:
                        bad(ln, col, value, "a number")
                    if not np.isfinite(y[r, k]):
                        bad(ln, col, value, "a finite number")
        class_names = list(columns)
        strata = None
    del lines
    built = build_image_datasets(
        [p for _, p, _ in kept],
        y,
        skipped=[],
        what=str(csv_path),
        task=task,
        class_names=class_names,
        strata=strata,
        image_size=image_size,
        validation_split=validation_split,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        augment=augment,
        normalize=normalize,
        size_policy=size_policy,
        cache=cache,
        strict=strict,
    )
    source = {"kind": "catalog", "catalog": os.path.abspath(csv_path), "path_column": path_column}
    for ds in built if isinstance(built, tuple) else (built,):
        attach(ds, source=source)  # what fit records in config.json, with a digest of the files
    return built
