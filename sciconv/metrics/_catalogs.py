"""Source catalogs scored against a reference: completeness, purity, offsets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sciconv.errors import ConfigError

__all__ = ["match_catalogs"]


def _catalog_positions(table: Any, names: Sequence[str], *, which: str) -> np.ndarray:
    missing = [c for c in names if c not in table.colnames]
    if missing:
        raise ConfigError(
            f"{which} catalog lacks column(s) {missing}; it has {list(table.colnames)}"
        )
    return np.column_stack([np.asarray(table[c], dtype=np.float64) for c in names])


def match_catalogs(
    reference: Any,
    found: Any,
    *,
    max_separation: float,
    columns: tuple[str, str] = ("x", "y"),
    sky: bool = False,
) -> dict[str, Any]:
    """Match each reference source to its nearest found source within ``max_separation``.

    Each found source is used at most once (nearest pairs first).

    Parameters
    ----------
    reference, found : astropy.table.Table
        Catalogs with the position columns.
    max_separation : float
        Largest separation of a match: pixels, or arcseconds when ``sky=True``.
    columns : (str, str)
        Position columns (pixels); ignored when ``sky=True`` (which uses ``ra``/``dec`` in deg).
    sky : bool
        Match on the sky with great-circle separations.

    Returns
    -------
    dict
        ``ref_index``, ``found_index`` (matched pairs), ``separation`` (pixels or arcsec),
        ``dx``, ``dy`` (found − reference, in pixels or arcsec on the sky), ``completeness``
        (matched / reference), ``purity`` (matched / found).

    Raises
    ------
    ConfigError
        For a catalog without the position columns, or a separation that is not positive.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from sciconv.metrics import match_catalogs
    >>> ref = Table({"x": [10.0, 50.0], "y": [10.0, 50.0]})
    >>> got = Table({"x": [10.5, 90.0], "y": [9.8, 90.0]})
    >>> m = match_catalogs(ref, got, max_separation=2.0)
    >>> m["ref_index"].tolist(), m["found_index"].tolist(), m["completeness"]
    ([0], [0], 0.5)
    """
    if not (isinstance(max_separation, (int, float)) and max_separation > 0):
        raise ConfigError(f"max_separation must be a positive number; got {max_separation!r}")
    cols = ("ra", "dec") if sky else tuple(columns)
    a = _catalog_positions(reference, cols, which="reference")
    b = _catalog_positions(found, cols, which="found")
    if sky:
        dec0 = np.deg2rad(a[:, 1])[:, None]
        dra = (b[None, :, 0] - a[:, None, 0] + 180.0) % 360.0 - 180.0
        dx = dra * np.cos(dec0) * 3600.0
        dy = (b[None, :, 1] - a[:, None, 1]) * 3600.0
    else:
        dx = b[None, :, 0] - a[:, None, 0]
        dy = b[None, :, 1] - a[:, None, 1]
    d = np.hypot(dx, dy) if a.size and b.size else np.zeros((len(a), len(b)))
    ri, fi = np.nonzero(d <= max_separation)
    order = np.argsort(d[ri, fi], kind="stable")
    used_r, used_f, pairs = set(), set(), []
    for k in order:
        r, f = int(ri[k]), int(fi[k])
        if r not in used_r and f not in used_f:
            used_r.add(r)
            used_f.add(f)
            pairs.append((r, f))
    pairs.sort()
    r_idx = np.array([p[0] for p in pairs], dtype=np.int64)
    f_idx = np.array([p[1] for p in pairs], dtype=np.int64)
    return {
        "ref_index": r_idx,
        "found_index": f_idx,
        "separation": d[r_idx, f_idx] if pairs else np.zeros(0),
        "dx": dx[r_idx, f_idx] if pairs else np.zeros(0),
        "dy": dy[r_idx, f_idx] if pairs else np.zeros(0),
        "completeness": len(pairs) / len(a) if len(a) else float("nan"),
        "purity": len(pairs) / len(b) if len(b) else float("nan"),
    }
