"""Scanning many files up front: decode or probe in a thread pool, report, check, split.

Every file is checked before a pipeline exists, so bad input is a
:class:`~sciconv.errors.DatasetError` (or one
:class:`~sciconv.errors.SciconvWarning` naming the skipped files), never an error in a tf.data
worker.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from sciconv._warnings import carried, caught
from sciconv.datasets.prepare import FilePrep
from sciconv.errors import DatasetError, SciconvError, SciconvWarning
from sciconv.io import PixelScale, probe_shape, read_pixel_scale
from sciconv.io._common import warn_caller

WORKERS = max(2, min(8, 2 * (os.cpu_count() or 1)))
MAX_LISTED = 20
#: Pixel scales that differ by less than this fraction count as the same.
SCALE_RTOL = 0.01


def cache_budget() -> float:
    """:data:`sciconv.datasets.CACHE_BUDGET` as it is now (users and tests may change it)."""
    return sys.modules[__package__].CACHE_BUDGET


# quoted text in a reader's message may be the file's own bytes (its first line, a header value)
_QUOTED = re.compile(r"b?'(?:[^'\\]|\\.)*'" + r'|b?"(?:[^"\\]|\\.)*"')


def reason(exc: BaseException) -> str:
    """Why a file was skipped, without quoting anything the file holds.

    Messages are listed in warnings and logs: a file with a password on its first line must
    not end up there. Quoted text (where readers quote content) is replaced by ``'...'``.

    Examples
    --------
    >>> reason(ValueError("not a FITS file: it holds text starting 'password=hunter2'"))
    "ValueError: not a FITS file: it holds text starting '...'"
    """
    text = exc.message if isinstance(exc, SciconvError) else f"{type(exc).__name__}: {exc}"
    return _QUOTED.sub("'...'", text)


@contextlib.contextmanager
def collect_warnings():
    """Record the warnings raised while files are read by a thread pool (reported as one)."""
    with caught("always", UserWarning, record=True) as records:
        yield records  # SciconvWarning, AstropyUserWarning: of the pool's threads too


def report_warnings(records, *, what: str, stacklevel: int) -> None:
    # probing reads lazily; a file that cannot be memory-mapped is read whole, which is fine
    msgs = [
        str(r.message)
        for r in records
        if issubclass(r.category, UserWarning) and "memory-mapped" not in str(r.message)
    ]
    if not msgs:
        return
    shown = "; ".join(dict.fromkeys(msgs[:3]))
    warnings.warn(
        f"reading the files of {what} gave {len(msgs)} warning(s), e.g.: {shown}",
        SciconvWarning,
        stacklevel=stacklevel,
    )


@dataclass
class Scan:
    shapes: list  # raw (H, W, C) per file, None where bad
    arrays: list | None  # decoded arrays (None when the budget was exceeded: lazy path)
    bad: dict  # index -> reason


def scan(paths: Sequence[str], decode: Callable | None, *, budget: float) -> Scan:
    """Decode (while within ``budget`` bytes) or probe every file in a thread pool."""
    n = len(paths)
    shapes: list = [None] * n
    arrays: list | None = [None] * n if decode is not None and budget > 0 else None
    bad: dict = {}
    total = 0
    chunk = max(64, 8 * WORKERS)

    def run(fn, path):
        try:
            return fn(path), None
        except Exception as exc:  # every failure is reported with its file
            return None, reason(exc)

    with ThreadPoolExecutor(WORKERS) as pool:
        for start in range(0, n, chunk):
            idx = range(start, min(n, start + chunk))
            fn = decode if arrays is not None else probe_shape
            results = pool.map(carried(lambda j, fn=fn: run(fn, paths[j])), idx)
            for j, (res, err) in zip(idx, results):
                if err is not None:
                    bad[j] = err
                elif arrays is not None:
                    arrays[j] = res[0]
                    shapes[j] = res[1]
                    total += res[0].nbytes
                else:
                    shapes[j] = tuple(res)
            if arrays is not None and total > budget:
                arrays = None  # over budget: drop what was decoded, probe the rest
    return Scan(shapes, arrays, bad)


def report_bad(
    items: Sequence[tuple[str, str]], *, strict: bool, what: str, stacklevel: int = 4
) -> None:
    """One error (strict) or one warning listing every skipped file with its reason."""
    if not items:
        return
    listed = "; ".join(f"{p} ({r})" for p, r in items[:MAX_LISTED])
    more = f"; and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    if strict:
        raise DatasetError(
            f"{len(items)} unreadable or non-image file(s) in {what} (strict=True): {listed}{more}"
        )
    warnings.warn(
        f"skipped {len(items)} unreadable or non-image file(s) in {what}: {listed}{more}",
        SciconvWarning,
        stacklevel=stacklevel,
    )


def check_channels(paths: Sequence[str], shapes: Sequence, *, grey_to_rgb: bool = False) -> int:
    """The images' one channel count; with ``grey_to_rgb``, grey picture files (not FITS) among
    RGB ones count as RGB (their grey repeated, :meth:`FilePrep.to_channels`), with a warning."""
    by_c: dict[int, str] = {}
    for p, s in zip(paths, shapes):
        by_c.setdefault(s[2], p)
    grey = [p for p, s in zip(paths, shapes) if s[2] == 1]
    pictures = all(FilePrep.grey_as_colour(p) for p in grey)
    if grey_to_rgb and set(by_c) == {1, 3} and pictures:
        warn_caller(
            f"{len(grey)} grey image(s) among {len(paths)} colour ones (e.g. {grey[0]}): their "
            "grey is repeated in R, G and B",
            "sciconv",
        )
        return 3
    if len(by_c) > 1:
        ex = ", ".join(f"{c} channel(s): {p}" for c, p in sorted(by_c.items()))
        raise DatasetError(
            f"images have different channel counts ({ex}); convert them to one channel count "
            "before building a dataset"
        )
    return next(iter(by_c))


def check_sizes(paths, shapes, size, policy) -> tuple[int, int]:
    """Resolve the output (H, W) and check the size policy can honour it."""
    if size is None:
        by_hw: dict[tuple, str] = {}
        for p, s in zip(paths, shapes):
            by_hw.setdefault(tuple(s[:2]), p)
        if len(by_hw) > 1:
            ex = ", ".join(f"{hw[0]}x{hw[1]}: {p}" for hw, p in list(by_hw.items())[:5])
            raise DatasetError(
                f"images have different sizes ({ex}); pass image_size=(H, W) with "
                "size_policy='crop', 'pad' or 'resize'"
            )
        return next(iter(by_hw))
    if policy == "pad":
        big = [(p, s) for p, s in zip(paths, shapes) if s[0] > size[0] or s[1] > size[1]]
        if big:
            ex = ", ".join(f"{p} ({s[0]}x{s[1]})" for p, s in big[:5])
            raise DatasetError(
                f"{len(big)} image(s) larger than image_size={size} with size_policy='pad' "
                f"(which never crops): {ex}; use size_policy='crop' or 'resize'"
            )
    return size


#: Revision of the rule by which :func:`split` holds files out for validation
#: (``from_folder``, ``from_catalog``, ``from_pairs``): 2 since 2026-12-06, each file's
#: ``class/name`` hashed with the seed (:func:`stable_order`); 1 before, a seeded shuffle of
#: the files' positions, which holds other files out for the same call.
#: :func:`sciconv.training.fit` records it (``config.json``'s ``dataset.split.rule``, the
#: model's ``training`` metadata) and refuses to resume a run whose split was drawn by another
#: rule, or by an older sciconv that recorded none: the resumed run would validate on images
#: it trained on.
SPLIT_RULE = 2


def split(
    n: int,
    fraction: float | None,
    seed: int,
    strata: np.ndarray | None,
    names=None,
    *,
    keys: Sequence[str] | None = None,
):
    """Deterministic split of ``range(n)``; stratified by ``strata`` (class ids) when given.

    Stratified, every class keeps at least one training image, and a class left without a
    validation image (too few images for ``fraction``) is named in a warning (``names``: the
    class names of the ids). With ``keys`` (the files' names), each class's validation images
    are the ones whose keys hash lowest with the seed (:func:`stable_order`; rule
    :data:`SPLIT_RULE`), so a file added later leaves the others where they were (a shuffle of
    positions moved most of them: a model fine-tuned on a grown folder validated on the images
    it had trained on); without, a seeded shuffle.

    Examples
    --------
    >>> keys = [f"img{i}.tif" for i in range(10)]
    >>> _, val = split(10, 0.3, 0, None, keys=keys)
    >>> _, grown = split(11, 0.3, 0, None, keys=keys + ["img10.tif"])
    >>> set(val.tolist()) <= set(grown.tolist())  # what validated before still does
    True
    """
    all_idx = np.arange(n)
    if fraction is None:
        return all_idx, None
    rng = np.random.default_rng(seed)
    order = None if keys is None else stable_order(keys, seed)
    classes = [None] if strata is None else list(np.unique(strata))
    groups = [all_idx] if strata is None else [all_idx[strata == c] for c in classes]
    val, unseen = [], []
    for c, g in zip(classes, groups):
        k = round(len(g) * fraction)
        if strata is not None:
            k = min(k, len(g) - 1)  # a class the model never trains on cannot be learnt
            if k == 0:
                unseen.append(names[int(c)] if names is not None and 0 <= c < len(names) else c)
        val.extend((rng.permutation(g) if order is None else g[np.argsort(order[g])])[:k].tolist())
    if unseen and len(unseen) < len(classes):
        warn_caller(
            f"validation_split={fraction}: class(es) {unseen} have too few images for a "
            "validation image; they are trained on but not validated",
            package="sciconv",
        )
    val_idx = np.array(sorted(val), dtype=np.int64)
    train_idx = np.setdiff1d(all_idx, val_idx)
    if len(val_idx) == 0 or len(train_idx) == 0:
        raise DatasetError(
            f"validation_split={fraction} of {n} file(s) leaves an empty "
            f"{'validation' if len(val_idx) == 0 else 'training'} set; use more files or "
            "another fraction"
        )
    return train_idx, val_idx


def stable_order(keys: Sequence[str], seed: int) -> np.ndarray:
    """A rank for each key from its hash with ``seed`` (SHA-256): the same for a key whatever
    other keys there are.

    Examples
    --------
    >>> a = stable_order(["x.tif", "z.tif"], 0)
    >>> b = stable_order(["z.tif", "w.tif", "x.tif"], 0)
    >>> bool(a[0] == b[2] and a[1] == b[0])  # each key's rank is its own
    True
    """
    import hashlib

    # surrogateescape: a name that is not UTF-8 (caf\xe9 from an old zip) hashes as its own
    # bytes; a UTF-8 name as before (its rank, hence existing splits, unchanged)
    return np.array(
        [
            int.from_bytes(
                hashlib.sha256(f"{seed}:{key}".encode("utf-8", "surrogateescape")).digest()[:8],
                "big",
            )
            for key in keys
        ],
        dtype=np.uint64,
    )


def split_key(path: str | os.PathLike) -> str:
    """What :func:`split` hashes for a file: its folder's name and its own (``class/name``), so
    a dataset moved elsewhere splits alike.

    Examples
    --------
    >>> split_key("/data/galaxies/spiral/g001.png")
    'spiral/g001.png'
    """
    p = os.fspath(path).replace(os.sep, "/").rstrip("/").split("/")
    return "/".join(p[-2:])


def pixel_scales(paths: Sequence[str]) -> list[PixelScale | None]:
    """The pixel scale each file states (metadata only, in a thread pool); None where unknown."""

    def one(path):
        try:
            return read_pixel_scale(path)
        except Exception:  # the file was readable for its pixels: an odd header means unknown
            return None

    # the scan already reported what the readers warn about (BLANK, a broken WCS): not twice
    # recorded and dropped, not an "ignore" filter: the workers' own ("always", Warning)
    # blocks (library_warnings_said_once) put theirs before it while they run
    with caught(record=True), ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(carried(one), paths))


def common_scale(
    paths: Sequence[str], scales: Sequence[PixelScale | None], *, what: str, stacklevel: int = 4
) -> PixelScale | None:
    """The pixel scale the files share, or None: unknown for all, or they disagree (warned).

    Scales within :data:`SCALE_RTOL` of the first one (in its unit) agree. Files of which some
    state a scale and others do not, or whose scales differ, give a
    :class:`~sciconv.errors.SciconvWarning` naming an example of each, and None: a model
    trained on them has no single pixel scale to record.

    Examples
    --------
    >>> a = PixelScale(0.5, 0.5, "um")
    >>> common_scale(["a.tif", "b.tif"], [a, PixelScale(500, 500, "nm")], what="x")
    PixelScale(y=0.5, x=0.5, unit='um')
    >>> common_scale(["a.png"], [None], what="x") is None
    True
    """
    known = [(p, s) for p, s in zip(paths, scales) if s is not None]
    if not known:
        return None
    first_path, first = known[0]
    unknown = [p for p, s in zip(paths, scales) if s is None]
    if unknown:
        warnings.warn(
            f"{len(known)} file(s) of {what} state a pixel scale (e.g. {first_path}: "
            f"{first.mean:.4g} {first.unit}/pixel) and {len(unknown)} do not (e.g. "
            f"{unknown[0]}); no pixel scale is recorded",
            SciconvWarning,
            stacklevel=stacklevel,
        )
        return None
    for path, scale in known[1:]:
        try:
            other = scale.to(first.unit)
            same = np.allclose([other.y, other.x], [first.y, first.x], rtol=SCALE_RTOL, atol=0)
        except SciconvError:
            same = False
        if not same:
            warnings.warn(
                f"the files of {what} have different pixel scales (e.g. {first_path}: "
                f"{first.y:.4g} x {first.x:.4g} {first.unit}, {path}: {scale.y:.4g} x "
                f"{scale.x:.4g} {scale.unit}); no pixel scale is recorded. Resample them to one "
                "scale to train a model that knows its scale",
                SciconvWarning,
                stacklevel=stacklevel,
            )
            return None
    return first
