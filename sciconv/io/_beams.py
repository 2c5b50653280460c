"""Per-plane restoring beams of radio cubes: CASA's ``BEAMS`` table (``CASAMBM = T``).

A cube whose channels were restored with beams of their own has no single ``BMAJ``/``BMIN`` (or
one representative beam): the ``BEAMS`` binary table gives one row per channel (``CHAN``) and
Stokes parameter (``POL``). A plane taken out of such a cube (:meth:`GridImage.channel`) gets its
own row's beam as ``BMAJ``/``BMIN``/``BPA``, so its flux densities use it (radio QA: the header's
representative beam made a channel with a larger beam 1.83 times too bright).
"""

from __future__ import annotations

from sciconv.io._common import hdus_said_once, warn_caller
from sciconv.io._header import header_get, plane_sizes

__all__ = ["plane_beams"]


def plane_beams(hdul, header) -> list[tuple[float, float, float]] | None:
    """The beam ``(BMAJ, BMIN, BPA)`` (degrees) of each plane of ``header``'s cube, in the
    order sciconv reads its planes (the one axis beyond 2 longer than 1: channels, or Stokes
    parameters), from the file's ``BEAMS`` table; None when there is none or it does not
    describe these planes. Only a header saying ``CASAMBM = T`` (as CASA writes it) is looked
    at.

    Examples
    --------
    >>> from astropy.io import fits
    >>> import numpy as np
    >>> beams = fits.BinTableHDU.from_columns([
    ...     fits.Column(name="BMAJ", format="E", unit="arcsec", array=[9.0, 12.0]),
    ...     fits.Column(name="BMIN", format="E", unit="arcsec", array=[6.0, 8.0]),
    ...     fits.Column(name="BPA", format="E", unit="deg", array=[0.0, 10.0]),
    ...     fits.Column(name="CHAN", format="J", array=[0, 1]),
    ...     fits.Column(name="POL", format="J", array=[0, 0])], name="BEAMS")
    >>> cube = fits.PrimaryHDU(np.zeros((2, 4, 4), np.float32))
    >>> cube.header["CTYPE3"], cube.header["CASAMBM"] = "FREQ", True
    >>> [round(b[0] * 3600, 1) for b in plane_beams(fits.HDUList([cube, beams]), cube.header)]
    [9.0, 12.0]
    """
    from astropy import units as u

    if header_get(header, "CASAMBM") is not True:  # no per-plane beams said: no HDU read
        return None
    path = getattr(hdul, "filename", lambda: None)()
    hdus = hdus_said_once(hdul, path)
    table = next((h for i, h in enumerate(hdus) if i and str(h.name).upper() == "BEAMS"), None)
    if table is None or getattr(table, "columns", None) is None:
        return None
    names = {c.name.upper(): c for c in table.columns}
    if not {"BMAJ", "BMIN"} <= set(names):
        return None
    sizes = plane_sizes(header)
    live = [n for n, size in sizes.items() if size > 1]
    if len(live) != 1:
        return None
    ctype = str(header_get(header, f"CTYPE{live[0]}") or "").upper()
    index = "POL" if ctype.startswith("STOKES") else "CHAN"
    planes = int(sizes[live[0]])
    other = "CHAN" if index == "POL" else "POL"
    try:
        data = list(table.data)
        if other in names and data:  # the rows of the one other CHAN / POL (review)
            first = min(int(r[other]) for r in data)
            data = [r for r in data if int(r[other]) == first]
        rows = {int(r[index]) if index in names else i: r for i, r in enumerate(data)}
        start = min(rows, default=0)  # 0-based as CASA writes it; 1-based taken too
        scale = {
            key: u.Unit((names[key].unit or "arcsec").lower()).to(u.deg) for key in ("BMAJ", "BMIN")
        }
        beams = []
        for k in range(planes):
            row = rows[start + k]
            bpa = float(row["BPA"]) if "BPA" in names else 0.0
            bmaj, bmin = float(row["BMAJ"]) * scale["BMAJ"], float(row["BMIN"]) * scale["BMIN"]
            beams.append((bmaj, bmin, bpa))
    except (KeyError, ValueError, TypeError, u.UnitsError):
        warn_caller(  # the header's one beam would stand for every plane, silently (review)
            f"{path or 'the file'}: its BEAMS table does "
            f"not give a beam for each of the {planes} planes; the header's BMAJ/BMIN (if any) "
            "stand for every plane"
        )
        return None
    return beams
