"""The chips of a multi-chip FITS exposure: the image HDUs that each hold a science image.

An HST ACS/WFC or WFC3/UVIS ``_flt``/``_flc`` keeps its two CCDs as ``SCI,1`` and ``SCI,2`` (each
with its own ``ERR``/``DQ``); a DECam Community Pipeline ``ooi`` file keeps its 60 CCDs as
extensions named by detector (``S29``, ``N4``...) after an empty primary HDU.
:func:`sciconv.io.read` reads one HDU (by default the first), so a caller that segments a file
needs to know what it left out: :func:`science_hdus` lists them, :func:`hdu_label` names an
HDU the way ``sciconv predict --hdu`` takes it and :func:`image_source` names the file and HDU
an image was read from (``j8bt06nyq_flc.fits[SCI,2]``), so that two chips of one file are told
apart in messages. HDUs that describe a science image rather than
being one (errors, masks, weights, exposure and context maps, variance planes, tables) are not
chips.
"""

from __future__ import annotations

import os
from pathlib import Path

from sciconv._warnings import caught
from sciconv.io._fits_errors import ERROR_EXTNAMES
from sciconv.io._fits_hdus import extname, is_image_hdu
from sciconv.io._header import hdu_dims, header_get
from sciconv.io._masks import MASK_EXTNAMES

__all__ = ["AUXILIARY_EXTNAMES", "hdu_label", "image_source", "science_hdus"]

#: EXTNAMEs of image HDUs that go with a science image and are not one: errors and masks
#: (:data:`ERROR_EXTNAMES`, :data:`MASK_EXTNAMES`), weights (HST ``WHT``, DES/DECam ``WGT``),
#: context and exposure maps, JWST's ``AREA``/``CON`` and ``VAR_*`` planes (by prefix).
AUXILIARY_EXTNAMES = (
    *ERROR_EXTNAMES,
    *MASK_EXTNAMES,
    "WHT", "WGT", "WEIGHT", "CTX", "CON", "BPM", "AREA", "EXP", "EXPMAP", "FLAGS",
    "RMS", "STD", "SIGMA", "NOISE", "SAMP", "TIME", "HDRTAB", "ASDF", "PSF", "BKG", "BACK",
    "BACKGROUND", "SKY", "MODEL", "CHI", "COV", "NMAP",
)  # fmt: skip


def _auxiliary(name: str) -> bool:
    return name in AUXILIARY_EXTNAMES or name.startswith("VAR_")


def hdu_label(header, index: int, *, shared: bool = True) -> str:
    """An HDU named as ``hdu=`` and ``sciconv predict --hdu`` take it: ``EXTNAME,EXTVER`` when
    the name is shared (``shared``; HST's ``SCI,2``), ``EXTNAME`` alone (DECam's ``S30``), else
    the index.

    Parameters
    ----------
    header : astropy.io.fits.Header or dict
        The HDU's header (a GridImage's ``header``).
    index : int
        Its index in the file.
    shared : bool
        Whether other HDUs of the file have the same EXTNAME.

    Returns
    -------
    str

    Examples
    --------
    >>> from astropy.io import fits
    >>> hdu_label(fits.Header({"EXTNAME": "SCI", "EXTVER": 2}), 4)
    'SCI,2'
    >>> hdu_label(fits.Header({"EXTNAME": "S30"}), 2, shared=False), hdu_label(fits.Header(), 0)
    ('S30', '0')
    """
    name = header_get(header, "EXTNAME", "") if header is not None else ""
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        return str(index)
    if not shared:
        return name
    ver = header_get(header, "EXTVER", 1)
    ver = ver if isinstance(ver, int) and not isinstance(ver, bool) else 1
    return f"{name},{ver}"


def image_source(image) -> str | None:
    """The file and HDU an image was read from, as messages name it: ``PATH[SCI,2]``.

    The CFITSIO spelling, with the HDU as :func:`hdu_label` gives it: ``EXTNAME,EXTVER`` where
    the header gives an ``EXTVER`` (HST's ``SCI,2``), ``EXTNAME`` alone (DECam's ``S29``), else
    the HDU's index; the path alone for a file's primary HDU or a file of another format.

    Parameters
    ----------
    image : GridImage or object
        The image (:func:`sciconv.io.read`'s ``path`` and ``meta["hdu"]``, ``"extname"``,
        ``"extver"``).

    Returns
    -------
    str or None
        None where the image names no file (an array wrapped in memory).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.io import GridImage
    >>> chip = GridImage(np.zeros((2, 2, 1), np.float32), path="j8_flc.fits",
    ...                  meta={"hdu": 4, "extname": "SCI", "extver": 2})
    >>> image_source(chip)
    'j8_flc.fits[SCI,2]'
    >>> image_source(GridImage(np.zeros((2, 2, 1)), path="c4d.fits.fz",
    ...                        meta={"hdu": 29, "extname": "S29"}))
    'c4d.fits.fz[S29]'
    >>> image_source(GridImage(np.zeros((2, 2, 1)), path="r.fits", meta={"hdu": 0}))
    'r.fits'
    >>> image_source(GridImage(np.zeros((2, 2, 1)))) is None
    True
    """
    path = getattr(image, "path", None)
    if not path:
        return None
    meta = getattr(image, "meta", None) or {}
    index = meta.get("hdu") if isinstance(meta, dict) else None
    if not isinstance(index, int) or isinstance(index, bool):
        return str(path)
    cards = {k: meta[m] for k, m in (("EXTNAME", "extname"), ("EXTVER", "extver")) if m in meta}
    if index == 0 and not cards.get("EXTNAME"):
        return str(path)
    return f"{path}[{hdu_label(cards, index, shared='EXTVER' in cards)}]"


def science_hdus(path: str | os.PathLike, index: int) -> list[tuple[int, str]]:
    """The science image HDUs of a FITS file that hold a chip each, when HDU ``index`` is one
    of several; an empty list when it is the file's only one (or the file cannot be scanned).

    Chips are the 2-D image HDUs of HDU ``index``'s size that either share its EXTNAME (HST:
    ``SCI,1``, ``SCI,2``), or, after an empty primary HDU, have EXTNAMEs of their own (DECam:
    ``S29``, ``S30``...); an HDU named as an error, mask, weight or map
    (:data:`AUXILIARY_EXTNAMES`) is never one. Only the headers are read.

    Parameters
    ----------
    path : str or os.PathLike
        The FITS file.
    index : int
        The HDU read (``GridImage.meta["hdu"]``).

    Returns
    -------
    list of (int, str)
        Every chip, HDU ``index`` included: its index and its label (:func:`hdu_label`), in
        file order.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from astropy.io import fits
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x_flt.fits"
    >>> chip = np.zeros((4, 4), np.float32)
    >>> fits.HDUList([fits.PrimaryHDU()] + [fits.ImageHDU(chip, name=n, ver=v)
    ...               for v in (1, 2) for n in ("SCI", "ERR", "DQ")]).writeto(p)
    >>> science_hdus(p, 1)
    [(1, 'SCI,1'), (4, 'SCI,2')]
    """
    from astropy.io import fits

    try:
        with caught("ignore"):  # the file was read already: its warnings were said then
            with fits.open(Path(path), lazy_load_hdus=True, do_not_scale_image_data=True) as hdul:
                return _chips(hdul, index)
    except Exception:  # a damaged tail, an unreadable file: the image read is all there is
        return []


def _chips(hdul, index: int) -> list[tuple[int, str]]:
    heads = []
    for i, h in enumerate(hdul):
        dims = hdu_dims(h.header) if is_image_hdu(h) else None
        heads.append((i, h.header, extname(h), dims if dims and all(d > 0 for d in dims) else None))
    if not 0 <= index < len(heads) or heads[index][3] is None:
        return []
    _, _, name, dims = heads[index]
    if len(dims) != 2 or _auxiliary(name):
        return []
    images = [(i, hd, n) for i, hd, n, d in heads if d == dims and not _auxiliary(n)]
    if name:
        same = [(i, hd) for i, hd, n in images if n == name]
        if len(same) > 1:
            return [(i, hdu_label(hd, i, shared=True)) for i, hd in same]
    if index == 0 or heads[0][3] is not None:  # data in the primary: one image, extensions its
        return []
    chips = [(i, hd, n) for i, hd, n in images if i != 0]
    if len(chips) < 2:
        return []
    counts = {n: sum(1 for _, _, m in chips if m == n) for _, _, n in chips}
    return [(i, hdu_label(hd, i, shared=bool(n) and counts[n] > 1)) for i, hd, n in chips]
