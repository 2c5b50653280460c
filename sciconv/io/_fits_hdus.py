"""Which HDU of a FITS file is read, and which one is its bad-pixel mask.

:func:`select_hdu` takes ``hdu=`` as an index, an EXTNAME, ``(EXTNAME, EXTVER)`` or the command
line's text form ``"EXTNAME,EXTVER"`` (:func:`parse_hdu`); by default the first image HDU with
pixels that is not an error or mask HDU beside a science one. :func:`find_mask_hdu` pairs the
science HDU with its ``DQ``, ``MASK`` or ``MSK`` HDU (DES coadd tiles SCI/MSK/WGT, DECam CP
``immask`` files) of the same EXTVER and size.
"""

from __future__ import annotations

from pathlib import Path

from sciconv.errors import ConfigError, InvalidImageError
from sciconv.io._common import astropy_fits, brief, hdus_said_once, warn_caller
from sciconv.io._fits_errors import ERROR_EXTNAMES
from sciconv.io._header import DamagedAxes, hdu_dims, header_get, refuse_negative_axis
from sciconv.io._masks import MASK_EXTNAMES

__all__ = ["extname", "find_mask_hdu", "hdu_names", "is_image_hdu", "parse_hdu", "select_hdu"]


def is_image_hdu(h) -> bool:
    """Whether ``h`` is an image HDU (primary, image extension or tile-compressed image)."""
    fits = astropy_fits()
    # CompImageHDU subclasses ImageHDU from astropy 7 on, BinTableHDU before (astropy 6.1 is
    # the newest release for Python 3.10), so name it explicitly.
    image_types = (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)
    return isinstance(h, image_types) and not isinstance(h, fits.GroupsHDU)


def select_hdu(hdul, hdu, path: Path):
    """Return (index, HDU) of the HDU to read: by default the first image HDU with pixels that
    is not an error or mask HDU beside a science one (``IVAR`` before ``IMAGE``), else the first
    image HDU with pixels (a mask file's ``DQ``)."""
    if hdu is None:
        seen = []
        helper = None  # the first error/mask HDU with pixels: read when there is nothing else
        try:
            for i, h in enumerate(hdus_said_once(hdul, path)):
                dims = hdu_dims(h.header)
                refuse_negative_axis(h.header, i)  # astropy would read on past it for ever
                if is_image_hdu(h) and dims and all(d > 0 for d in dims):
                    if extname(h) not in (*ERROR_EXTNAMES, *MASK_EXTNAMES):
                        return i, h
                    helper = (i, h) if helper is None else helper
                name = header_get(h.header, "EXTNAME", "PRIMARY" if i == 0 else "")
                seen.append(f"{i}:{type(h).__name__}{'(' + str(name) + ')' if name else ''}")
        except DamagedAxes as exc:
            raise InvalidImageError(f"FITS header is damaged: {exc}", path=path) from None
        except Exception as exc:
            raise InvalidImageError(
                f"FITS structure is damaged after HDU {len(seen) - 1} ({brief(exc)})",
                path=path,
            ) from exc
        if helper is not None:
            return helper
        if len(seen) == 1 and is_image_hdu(hdul[0]):
            raise InvalidImageError(
                "no image data: header-only FITS (NAXIS=0 or a zero-length axis)", path=path
            )
        raise InvalidImageError(
            f"no image HDU with pixels (HDUs: {', '.join(seen) or 'none'})", path=path
        )
    try:  # the HDUs up to the one asked for, each checked: astropy reads on past a bad one
        for i, h in enumerate(hdus_said_once(hdul, path)):
            refuse_negative_axis(h.header, i)
    except DamagedAxes as exc:
        raise InvalidImageError(f"FITS header is damaged: {exc}", path=path) from None
    except Exception:  # a damaged tail: astropy's own lookup below says what it finds
        pass
    try:
        if isinstance(hdu, tuple):
            key = (hdu[0], int(hdu[1]))
        else:
            key = int(hdu) if not isinstance(hdu, str) else _text_key(hdul, hdu)
        h = hdul[key]
        index = hdul.index_of(key) if not isinstance(key, int) else key % max(len(hdul), 1)
    except (KeyError, IndexError) as exc:
        names = hdu_names(hdul)
        raise InvalidImageError(f"no HDU {hdu!r} in this file (HDUs: {names})", path=path) from exc
    except Exception as exc:
        raise InvalidImageError(f"cannot open HDU {hdu!r} ({brief(exc)})", path=path) from exc
    if not is_image_hdu(h):
        raise InvalidImageError(
            f"HDU {hdu!r} is a {type(h).__name__}, not an image (HDUs: {hdu_names(hdul)})",
            path=path,
        )
    dims = hdu_dims(h.header)
    if not dims or not all(d > 0 for d in dims):
        raise InvalidImageError(f"HDU {hdu!r} holds no pixels (NAXIS dims {dims})", path=path)
    return index, h


def parse_hdu(text: str) -> int | str | tuple[str, int]:
    """An HDU named in text, as ``--hdu`` and ``read(hdu=...)`` take it.

    Parameters
    ----------
    text : str
        An index (``"1"``), an EXTNAME (``"SCI"``) or ``"EXTNAME,EXTVER"`` (``"SCI,2"``: the
        second chip of an HST ``_flt``).

    Returns
    -------
    int, str or (str, int)
        What :func:`sciconv.io.read`'s ``hdu`` takes.

    Raises
    ------
    ConfigError
        ``text`` is empty or its EXTVER is not an integer.

    Examples
    --------
    >>> from sciconv.io import parse_hdu
    >>> parse_hdu("SCI,2"), parse_hdu("SCI"), parse_hdu("1"), parse_hdu(" dq , 1 ")
    (('SCI', 2), 'SCI', 1, ('dq', 1))
    """
    name, comma, version = str(text).strip().partition(",")
    name, version = name.strip(), version.strip()
    if not name:
        raise ConfigError(f"expected INDEX, EXTNAME or EXTNAME,EXTVER; got {text!r}")
    if not comma:
        return int(name) if name.isdigit() else name
    if not version.isdigit():
        raise ConfigError(f"EXTVER must be an integer, as in SCI,2; got {text!r}")
    return (name, int(version))


def _text_key(hdul, text: str):
    """``hdu=`` given as text: an EXTNAME the file has as it is spelled, else :func:`parse_hdu`
    (``"SCI,2"``, ``"1"``) of it; unparsable text stays the name (not found: said by the
    caller with the file's HDUs)."""
    try:
        hdul.index_of(text)
        return text
    except (KeyError, IndexError, ValueError):
        pass
    try:
        return parse_hdu(text)
    except ConfigError:
        return text


def hdu_names(hdul) -> str:
    """``"0:PrimaryHDU(PRIMARY), 1:ImageHDU(SCI,1), ..."``: the HDUs, for error messages."""
    out = []
    try:
        for i, h in enumerate(hdul):
            name = header_get(h.header, "EXTNAME", "PRIMARY" if i == 0 else "")
            ver = header_get(h.header, "EXTVER")
            label = f"{name},{ver}" if ver is not None and name else str(name)
            out.append(f"{i}:{type(h).__name__}({label})")
    except Exception:
        out.append("... (damaged)")
    return ", ".join(out)


def extname(h) -> str:
    """``h``'s EXTNAME in upper case, without spaces; "" when it has none."""
    name = header_get(h.header, "EXTNAME", "")
    return name.strip().upper() if isinstance(name, str) else ""


def _dims_text(dims) -> str:
    return " x ".join(str(d) for d in dims) if dims else "no"


def _mask_dims_ok(mask_dims, dims) -> bool:
    """A mask HDU fits an image HDU of ``dims`` (NAXIS1, NAXIS2, ...): same dims, or 2-D."""
    return bool(mask_dims) and (list(mask_dims) == list(dims) or list(mask_dims) == list(dims[:2]))


def find_mask_hdu(hdul, index: int, h, mask_hdu, dims, path: Path):
    """``(index, HDU)`` of the bad-pixel mask of HDU ``index``, or None.

    ``mask_hdu="auto"``: an image HDU named ``DQ`` (else ``MASK``, else ``MSK``) with the
    EXTVER of the science HDU, when the science HDU is not itself one; a mask of the wrong size
    is skipped with a warning. ``None``: no mask. Anything else names the HDU, as ``hdu=`` does.
    """
    if mask_hdu is None:
        return None
    if isinstance(mask_hdu, str) and mask_hdu == "auto":
        if extname(h) in MASK_EXTNAMES:
            return None
        ver = header_get(h.header, "EXTVER", 1)
        found = []
        try:
            for i, m in enumerate(hdus_said_once(hdul, path)):
                name = extname(m)
                if i != index and name in MASK_EXTNAMES and is_image_hdu(m):
                    if header_get(m.header, "EXTVER", 1) == ver:
                        found.append((MASK_EXTNAMES.index(name), i, m))
        except Exception:  # a damaged HDU after the science one: its pixels are still good
            return None
        if not found:
            return None
        _, i, m = min(found, key=lambda f: f[:2])
        if not _mask_dims_ok(hdu_dims(m.header), dims):
            warn_caller(
                f"{path}: HDU {i} ({extname(m)}) is {_dims_text(hdu_dims(m.header))} pixels, "
                f"not the image's {_dims_text(dims)}; not used as its bad-pixel mask"
            )
            return None
        return i, m
    i, m = select_hdu(hdul, mask_hdu, path)
    if i == index:
        raise ConfigError(f"mask_hdu={mask_hdu!r} is the HDU being read ({index})", path=path)
    if not _mask_dims_ok(hdu_dims(m.header), dims):
        raise InvalidImageError(
            f"mask HDU {mask_hdu!r} is {_dims_text(hdu_dims(m.header))} pixels (NAXIS1 x ...) "
            f"but the image HDU {index} is {_dims_text(dims)}",
            path=path,
        )
    return i, m
