"""The one FITS decoder: axes, truncation, masks and errors beside the pixels; its fast path.

:func:`read_fits` reads any FITS file astropy can open. Which HDU it reads and which is its
bad-pixel mask is :mod:`sciconv.io._fits_hdus`'s choice (``hdu=`` as an index, an EXTNAME,
``(EXTNAME, EXTVER)`` or ``"EXTNAME,EXTVER"``); stored values become physical ones in
:mod:`sciconv.io._fits_scaling` (``BSCALE``/``BZERO``/``BLANK``, and the asinh compression of
Pan-STARRS stacks, ``BSOFTEN``/``BOFFSET``). :func:`read_plain_fits` is the fast path for the
files training reads every epoch (an uncompressed primary HDU holding a plain 2-D image, no
scaling): it parses the few header cards it needs and decodes the pixels with
:func:`numpy.frombuffer`, about 20 times faster than a full astropy header parse. It declines
(returns None) for anything else (a card it needs appearing twice or out of place, a scaling,
BLANK, BSOFTEN or BOFFSET card, a NAXIS beyond 2, a non-ASCII header, a short file...), and
astropy decides; where it accepts, the pixels equal what :func:`read_fits` returns, converted
by the same code.

A ``DQ``, ``MASK`` or ``MSK`` HDU next to the science HDU (same EXTVER, same size) is its
bad-pixel mask (``mask_hdu=`` names one or turns this off): its flags are read region by region
with the pixels and the bad ones set to NaN (:mod:`sciconv.io._masks`). A file with any HDU
after its primary one is never "plain", so the fast path never skips such a mask.
"""

from __future__ import annotations

import os
import re
import stat
import threading
import weakref
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sciconv.errors import InvalidImageError, SciconvError
from sciconv.io._beams import plane_beams
from sciconv.io._checksum import check_datasum
from sciconv.io._common import (
    ROLE_C,
    ROLE_N,
    ROLE_ONE,
    ROLE_X,
    ROLE_Y,
    arrange_axes,
    astropy_fits,
    brief,
    check_memory,
    fits_text_unescaped,
    raw_index,
    section_slices,
    shift_axes,
)
from sciconv.io._fits_errors import (
    ErrorHDU,
    error_hdu_uncertainty,
    find_error_hdu,
    no_data_pixels,
    primary_cards,
)
from sciconv.io._fits_hdus import extname, find_mask_hdu, select_hdu
from sciconv.io._fits_scaling import FitsScaling, physical_values
from sciconv.io._fits_stream import open_fits
from sciconv.io._gzip_windows import GzipWindows
from sciconv.io._header import (
    UNPARSABLE,
    fits_wcs,
    hdu_dims,
    header_get,
    inherit_cards,
    layout_conflict,
    not_an_image_axis,
    slice_wcs,
    unit_card,
    written_by_sciconv,
)
from sciconv.io._image import GridImage, LazyImage
from sciconv.io._linear_scale import linear_scale_meta
from sciconv.io._mapped import read_mapped
from sciconv.io._masks import fits_flag_values, flags_to_bad, named_plane_flags


def _fits_roles(raw_shape: tuple[int, ...], *, stack: bool, path: Path, header=None) -> list[str]:
    """Roles of the numpy axes of FITS data (NAXISn ... NAXIS2, NAXIS1)."""
    for n in (1, 2):  # the image's axes must be NAXIS1 and NAXIS2: a cube ordered otherwise
        ctype = not_an_image_axis(header, n)
        if ctype is not None and any(k > 1 for k in raw_shape[:-2]):  # planes beyond axis 2
            raise InvalidImageError(
                f"FITS axis {n} is {ctype!r} (NAXIS1..{len(raw_shape)} = "
                f"{' x '.join(str(k) for k in raw_shape[::-1])}): sciconv reads images whose "
                "axes 1 and 2 are the image's x and y, with spectral/Stokes planes on axis 3 "
                "and beyond; reorder the cube first (e.g. spectral_cube, or numpy.moveaxis on "
                "the data and the matching CTYPE/CRPIX/CDELT cards)",
                path=path,
            )
    if len(raw_shape) < 2:
        raise InvalidImageError(
            f"1-D data (NAXIS={len(raw_shape)}, shape {raw_shape}); an image needs 2 axes",
            path=path,
        )
    extra = raw_shape[:-2]
    roles = [ROLE_ONE if n == 1 else "?" for n in extra] + [ROLE_Y, ROLE_X]
    live = [i for i, r in enumerate(roles) if r == "?"]
    fits_shape = " x ".join(str(n) for n in raw_shape[::-1])
    if len(live) + 2 > 4:
        raise InvalidImageError(
            f"{len(live) + 2}-D data (NAXIS1..n = {fits_shape}); sciconv reads 2-D images, "
            "3-D cubes and 4-D stacks of cubes",
            path=path,
        )
    if stack:
        for i in live:
            roles[i] = ROLE_N
    elif (
        len(live) == 1
        and len(raw_shape) == 3
        and raw_shape[-1] <= 4 < min(raw_shape[:2])
        and not written_by_sciconv(header)  # its channels are on NAXIS3: a narrow image
    ):
        # numpy (H, W, 3) written as it is: NAXIS1 holds the colours, not the image's x axis
        raise InvalidImageError(
            f"3-D data (NAXIS1..3 = {fits_shape}) looks like a colour image written "
            f"channels-last (numpy shape (H, W, {raw_shape[-1]})): read as FITS it would be "
            f"{raw_shape[0]} planes {raw_shape[-1]} px wide. FITS keeps colour planes on NAXIS3: "
            "write it as fits.writeto(path, numpy.moveaxis(rgb, -1, 0)); stack=True reads the "
            "planes as they are",
            path=path,
        )
    elif len(live) == 1:
        roles[live[0]] = ROLE_C
    elif len(live) == 2:
        raise InvalidImageError(
            f"4-D data (NAXIS1..4 = {fits_shape}): read(path, stack=True) reads it as a stack; "
            "to segment one plane, write it out first (e.g. astropy: data[k, j])",
            path=path,
        )
    return roles


def _mask_reader(
    m, m_index: int, roles, same_shape: bool, *, stack: bool, ignore_flags, path, lock, context=()
):
    """``read(ys, xs)``: bool bad pixels of the mask HDU there, arranged like the pixels
    (``context``: the image's headers, whose TELESCOP may set the flags' default meaning)."""
    what = f"mask HDU {m_index} ({extname(m) or 'no EXTNAME'})"
    ignore_flags, planes = named_plane_flags(m.header, ignore_flags, context=context)
    if planes is not None:  # a mask naming its planes: the defects only (DETECTED is not one)
        what += f", planes {'+'.join(planes) or 'none'}"

    def read(ys: slice, xs: slice) -> np.ndarray:
        idx = raw_index(roles, ys, xs) if same_shape else (ys, xs)
        try:
            with lock:  # the image's file: one section read at a time
                values = fits_flag_values(m, idx, path)
        except InvalidImageError:
            raise
        except Exception as exc:
            raise InvalidImageError(f"cannot read {what} ({brief(exc)})", path=path) from exc
        bad = flags_to_bad(values, ignore_flags, path=path, what=what)
        if same_shape:
            return arrange_axes(bad, roles, stack=stack)
        return bad[None, ..., None] if stack else bad[..., None]

    return read, what


def read_fits_flags(path: Path, section) -> np.ndarray:
    """The raw flags of a mask file's first image HDU, ``(H, W, C)`` (``section`` applied)."""
    hdul, copy = open_fits(path)  # a .fits.gz checked (QA 53), read from its copy (QA 54)
    try:
        index, h = select_hdu(hdul, None, path)
        dims = hdu_dims(h.header)
        bitpix = header_get(h.header, "BITPIX")
        if isinstance(bitpix, int):  # a truncated mask file: said as an image's is (QA)
            _check_truncated(_pixel_start(hdul, index, h), index, dims, bitpix, path, copy)
        raw_shape = tuple(dims[::-1])
        roles = _fits_roles(raw_shape, stack=False, path=path)
        ys, xs = section_slices(section, raw_shape[-2], raw_shape[-1], path)
        try:
            flags = fits_flag_values(h, raw_index(roles, ys, xs), path)
        except InvalidImageError:
            raise
        except Exception as exc:  # not a bare TypeError naming neither file
            raise InvalidImageError(f"cannot read its flags ({brief(exc)})", path=path) from exc
        return arrange_axes(flags, roles, stack=False)
    finally:
        hdul.close()


def read_fits(
    path: Path,
    *,
    hdu,
    stack: bool,
    section,
    lazy: bool,
    pixels_only: bool = False,
    mask_hdu="auto",
    ignore_flags=0,
) -> GridImage:
    """Read one HDU; ``pixels_only`` skips the WCS (no WCS is built, none is warned about)."""
    hdul, copy = open_fits(path)  # copy: a .fits.gz decompressed once, astropy reads it
    keep_open = False
    try:
        index, h = select_hdu(hdul, hdu, path)
        conflict = layout_conflict(h.header)
        if conflict is not None:
            raise InvalidImageError(f"HDU {index}: {conflict}", path=path)
        header = inherit_cards(h.header.copy(), hdul, index)
        dims = hdu_dims(header)
        bitpix = header_get(header, "BITPIX")
        if bitpix not in (8, 16, 32, 64, -32, -64):
            raise InvalidImageError(f"invalid BITPIX {bitpix!r} in HDU {index}", path=path)
        start = _pixel_start(hdul, index, h)  # None: compressed or unknown
        _check_truncated(start, index, dims, bitpix, path, copy)
        if not lazy:  # the pixels are read whole anyway: a DATASUM they fail is said
            check_datasum(h, index, path)
        raw_shape = tuple(dims[::-1])
        roles = _fits_roles(raw_shape, stack=stack, path=path, header=header)
        scaling = FitsScaling(header, bitpix, path)
        ny, nx = raw_shape[-2], raw_shape[-1]
        ys, xs = section_slices(section, ny, nx, path)
        if not lazy:
            n = int(np.prod(raw_shape[:-2], dtype=np.int64)) * (ys.stop - ys.start)
            check_memory(n * (xs.stop - xs.start), abs(bitpix) // 8, path)
        wcs = None if pixels_only else fits_wcs(header, hdul, path)
        if section is not None:
            wcs, header = slice_wcs(wcs, header, ys, xs)
        meta = _fits_meta(h, index, header, bitpix, roles, raw_shape, scaling)
        if wcs is None and not pixels_only:  # a lab or map WCS in lengths: its pixel size
            meta.update(linear_scale_meta(header))
        beams = None if pixels_only else plane_beams(hdul, header)
        if beams is not None:  # a CASA cube's restoring beam per plane (radio QA)
            meta["beams"] = beams
        # astropy's sections of a compressed file (.fits.gz) seek and read one shared stream:
        # windows read from several threads at once (dask) came back mixed (QA: 5 % of the
        # pixels wrong, no error); one window at a time per opened file
        file_lock = threading.Lock()
        found = find_mask_hdu(hdul, index, h, mask_hdu, dims, path)
        bad_at = None
        if found is not None:
            m_index, m = found
            same = list(hdu_dims(m.header)) == list(dims)
            bad_at, meta["mask_from"] = _mask_reader(
                m, m_index, roles, same, stack=stack, ignore_flags=ignore_flags, path=path,
                lock=file_lock, context=(header, hdul[0].header),
            )  # fmt: skip

        # a lazy plain HDU is read through a mapping of its own per window (read_mapped): astropy's
        # map of the whole file, held open, would keep every page read resident until closed
        direct = handle = None
        if lazy and start is not None:  # the file as opened now: a file replaced later is not read
            handle = open(path, "rb") if copy is None else copy  # a .fits.gz: its copy
            direct = (handle, _FAST_DTYPES[bitpix].str, raw_shape, start, "C")
        gz = GzipWindows.of(h, path, _FAST_DTYPES[bitpix].str, raw_shape) if lazy else None
        opened = [True]

        def close() -> None:
            opened[0] = False
            if handle is not None:
                handle.close()
            if gz is not None:
                gz.close()  # its decompressed copy
            hdul.close()  # and the copy astropy reads

        def reader(ys_: slice, xs_: slice) -> np.ndarray:
            if not opened[0]:
                raise InvalidImageError("LazyImage was closed", path=path)
            ys_abs, xs_abs = shift_axes(ys_, ys.start), shift_axes(xs_, xs.start)
            idx = raw_index(roles, ys_abs, xs_abs)
            try:
                if direct is not None:  # a mapping of its own per window: no shared position
                    raw = read_mapped(direct, idx)
                elif gz is None or (raw := gz.read(idx)) is None:  # .fits.gz: a copy, made once
                    with file_lock:
                        raw = h.section[idx]
            except Exception as exc:
                raise InvalidImageError(
                    f"cannot read pixels of HDU {index} ({brief(exc)})", path=path
                ) from exc
            block = arrange_axes(scaling.apply(raw), roles, stack=False)
            if bad_at is not None:
                block[np.broadcast_to(bad_at(ys_abs, xs_abs), block.shape)] = np.nan
            errors = meta.get("uncertainty_windows")  # no measurement there: bad, as read eagerly
            if errors is not None and ys_abs.step in (None, 1) and xs_abs.step in (None, 1):
                rel = ((ys_abs.start - ys.start, ys_abs.stop - ys.start),
                       (xs_abs.start - xs.start, xs_abs.stop - xs.start))  # fmt: skip
                try:
                    no_data = ~np.isfinite(errors.read(*rel))
                except SciconvError:  # the error HDU went unreadable: the pixels stand
                    no_data = None
                if no_data is not None:
                    block[np.broadcast_to(no_data[..., None], block.shape)] = np.nan
            return block

        if index != 0:  # the noise model's (and resampling's) cards left to the primary header
            primary = primary_cards(hdul[0].header)
            meta["primary"] = {k: v for k, v in primary.items() if v not in (None, UNPARSABLE)}
        if not (lazy or stack or pixels_only):  # an ERR / UNCERT HDU: the pixels' error bars
            found_error = error_hdu_uncertainty(hdul, index, ys, xs, path)
            if found_error is not None:
                meta["uncertainty"], meta["uncertainty_from"] = found_error
        elif lazy and not (stack or pixels_only):  # read window by window (mosaic catalogs)
            found_hdu = find_error_hdu(hdul, index)
            if found_hdu is not None:  # a truncated one: the pixels without error bars
                try:
                    e = hdul[found_hdu[0]]
                    e_dims, e_bits = hdu_dims(e.header), header_get(e.header, "BITPIX")
                    e_start = _pixel_start(hdul, found_hdu[0], e)
                    _check_truncated(e_start, 0, e_dims, e_bits, path, copy)
                except InvalidImageError:
                    found_hdu = None
            if found_hdu is not None:
                err_index, kind = found_hdu
                origin = (ys.start, xs.start)
                where = os.path.abspath(path)  # a worker or a later chdir reads it too
                meta["uncertainty_windows"] = ErrorHDU(where, err_index, kind, origin)
                meta["uncertainty_from"] = f"HDU {err_index} ({extname(hdul[err_index])})"
        if lazy:
            n_chan = int(np.prod([raw_shape[i] for i, r in enumerate(roles) if r == ROLE_C]))
            shape = (ys.stop - ys.start, xs.stop - xs.start, n_chan)
            data = LazyImage(reader, shape, path=str(path), closer=close)
            for held in (gz, copy):  # an image never closed: its copy removed when collected
                if held is not None:
                    weakref.finalize(data, held.close)
            keep_open = True
            return GridImage(data, header=header, wcs=wcs, mask=None, path=str(path), meta=meta)
        try:
            if section is None:  # whole image: astropy memory-maps unscaled data itself
                raw = h.data[raw_index(roles, slice(None), slice(None))]
            elif start is not None:  # a plain HDU: only the window's pages (ulimit -v QA)
                file = str(path) if copy is None else copy  # a .fits.gz: its copy
                plain = (file, _FAST_DTYPES[bitpix].str, raw_shape, start, "C")
                raw = read_mapped(plain, raw_index(roles, ys, xs))
            else:  # only the rows/tiles needed are read
                raw = h.section[raw_index(roles, ys, xs)]
        except Exception as exc:
            raise InvalidImageError(
                f"cannot read pixels of HDU {index} ({brief(exc)})", path=path
            ) from exc
        data = arrange_axes(scaling.apply(raw), roles, stack=stack)
        del raw
        if bad_at is not None:
            data[np.broadcast_to(bad_at(ys, xs), data.shape)] = np.nan
        no_data = no_data_pixels(meta.get("uncertainty"))
        if no_data is not None and no_data.shape == data.shape[:2]:
            data[no_data] = np.nan  # an inverse variance of 0, a NaN error: no measurement
        return GridImage(
            data, header=header, wcs=wcs, mask=np.isnan(data), path=str(path), meta=meta
        )
    finally:
        if not keep_open:
            hdul.close()


def _pixel_start(hdul, index: int, h) -> int | None:
    """First byte of an uncompressed HDU's pixels in the file astropy reads (a compressed file's
    copy); None when tile-compressed, read from a compressed stream, or unknown."""
    fits = astropy_fits()
    if isinstance(h, fits.CompImageHDU):
        return None
    try:
        # HDU._data_offset/_file: private but stable; HDUList.fileinfo() fails on odd headers
        start, fileobj = getattr(h, "_data_offset", None), getattr(h, "_file", None)
        if start is None or fileobj is None:
            info = hdul.fileinfo(index)
            start, fileobj = info["datLoc"], info["file"]
        if getattr(fileobj, "compression", None):
            return None
        return int(start)
    except Exception:
        return None


def _check_truncated(start: int | None, index: int, dims, bitpix: int, path: Path, copy) -> None:
    if start is None:
        return
    try:  # the file astropy reads: ``path`` or its decompressed copy
        size = os.path.getsize(path) if copy is None else os.fstat(copy.fileno()).st_size
    except OSError:
        return
    expected = abs(bitpix) // 8 * int(np.prod(dims, dtype=np.int64))
    if start + expected > size:
        raise InvalidImageError(
            f"truncated file: HDU {index} needs {expected} bytes of pixel data from byte {start}, "
            f"but the {'' if copy is None else 'decompressed '}file has {size} bytes",
            path=path,
        )


def _fits_meta(h, index, header, bitpix, roles, raw_shape, scaling) -> dict:
    names = {"?": "?", ROLE_Y: "Y", ROLE_X: "X", ROLE_C: "C", ROLE_N: "N", ROLE_ONE: "1"}
    meta = {
        "format": "fits",
        "hdu": index,
        "hdu_type": type(h).__name__,
        "bitpix": int(bitpix),
        "dtype": _fits_dtype(bitpix, scaling),
        "axes": "".join(names[r] for r in roles),
        "raw_shape": raw_shape,
    }
    for key, out in (("EXTNAME", "extname"), ("EXTVER", "extver")):
        value = header_get(header, key)
        if value is not None and value is not UNPARSABLE:
            meta[out] = value
    if unit_card(header) is not None:  # BUNIT, else AIA's PIXLUNIT
        meta["bunit"] = unit_card(header)
    meta.update(scaling.meta())  # bscale, bzero, blank; Pan-STARRS asinh: scaling, boffset ...
    names = _class_names(header, roles, raw_shape)
    if names is not None:
        meta["channel_names"] = names
    return meta


def _class_names(header, roles, raw_shape) -> list[str] | None:
    """The ``CLASS0``, ``CLASS1``, ... cards of a probability cube (sciconv's products name
    its planes so) as channel names, when every channel has one; None otherwise, and for a
    stack (its planes are images, not channels)."""
    if ROLE_N in roles:
        return None
    n = int(np.prod([k for k, r in zip(raw_shape, roles) if r == ROLE_C], dtype=np.int64))
    names = []
    for i in range(n if n <= 1000 else 0):  # FITS keywords: CLASS0 .. CLASS999 at most
        value = header_get(header, f"CLASS{i}")
        if not isinstance(value, str) or not value.strip():
            return None
        names.append(fits_text_unescaped(value.strip()))  # CLASSn of non-ASCII names
    return names or None


def _fits_dtype(bitpix: int, scaling: FitsScaling) -> str:
    base = {8: "uint8", 16: "int16", 32: "int32", 64: "int64", -32: "float32", -64: "float64"}
    if bitpix > 0 and scaling.bscale == 1.0:
        unsigned = {16: 2**15, 32: 2**31, 64: 2**63}
        if bitpix in unsigned and scaling.bzero == unsigned[bitpix]:
            return f"uint{bitpix}"
        if bitpix == 8 and scaling.bzero == -128:
            return "int8"
    return base[bitpix]


# --------------------------------------------------------------------------------------------------
# the fast path for plain files
# --------------------------------------------------------------------------------------------------

_BLOCK = 2880
_HEAD_BYTES = 36 * _BLOCK  # a longer header is not "plain": astropy reads it
_FAST_SUFFIXES = (".fits", ".fit", ".fts")
_FAST_DTYPES = {
    b: np.dtype(t)
    for b, t in {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}.items()
}
# the first five cards of a plain file, in this order (the order the FITS standard requires)
_FAST_FIRST = (b"SIMPLE", b"BITPIX", b"NAXIS", b"NAXIS1", b"NAXIS2")
# cards allowed later only once and only with their neutral value (1 and 0)
_FAST_NEUTRAL = {b"BSCALE": 1.0, b"BZERO": 0.0}
# cards that change how pixels are read or which HDU is read: their presence declines
# (BSOFTEN/BOFFSET: Pan-STARRS asinh compression, undone by FitsScaling)
_FAST_REFUSED = {
    b"SIMPLE", b"BITPIX", b"BLANK", b"GROUPS", b"PCOUNT", b"GCOUNT", b"XTENSION", b"BSOFTEN",
    b"BOFFSET",
}  # fmt: skip
_END_CARD = b"END" + b" " * 77
_MALFORMED_END = re.compile(rb"END {0,76}[^A-Z0-9_-]")  # astropy's test (ENDTIME is a keyword)
_INT = re.compile(rb"[+-]?[0-9]+")
_REAL = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[EeDd][+-]?[0-9]+)?")
_MEMORY_CHECK_BYTES = 1 << 26  # below this, loading cannot fail for lack of memory
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class _PlainLayout(NamedTuple):
    dtype: np.dtype
    shape: tuple[int, int]
    offset: int  # first byte of the pixels

    @property
    def end(self) -> int:
        return self.offset + self.shape[0] * self.shape[1] * self.dtype.itemsize


def _card_value(card: bytes) -> bytes:
    return card[10:].split(b"/", 1)[0].strip()


def _plain_layout(head: bytes) -> _PlainLayout | None:
    """Layout of a plain FITS file from its first bytes, or None when it is not plain."""
    values: dict[bytes, bytes] = {}
    for i in range(len(head) // 80):
        card = head[80 * i : 80 * i + 80]
        if card == _END_CARD:
            if i < len(_FAST_FIRST):
                return None
            offset = -(-(80 * (i + 1)) // _BLOCK) * _BLOCK
            header = head[:offset]
            if not header.isascii() or header.endswith(b"\0"):
                return None  # astropy warns about non-ASCII bytes and NUL padding
            return _layout_from(values, offset)
        if card[:3] == b"END" and _MALFORMED_END.match(card):
            return None  # astropy ends the header here too, with a warning
        if i < len(_FAST_FIRST):
            if card[:10] != _FAST_FIRST[i].ljust(8) + b"= ":
                return None
            values[_FAST_FIRST[i]] = _card_value(card)
            continue
        key = card[:8]
        if key == b"HIERARCH":
            key = card[8:].split(b"=", 1)[0]
        key = key.strip().upper()
        if key in _FAST_REFUSED or key.startswith(b"NAXIS"):
            return None
        if key in _FAST_NEUTRAL:
            if key in values or card[8:10] != b"= ":
                return None
            values[key] = _card_value(card)
    return None  # no END card in the first 36 blocks


def _layout_from(values: dict[bytes, bytes], offset: int) -> _PlainLayout | None:
    if values[b"SIMPLE"] != b"T":
        return None
    ints = [values[k] for k in (b"BITPIX", b"NAXIS", b"NAXIS1", b"NAXIS2")]
    if not all(_INT.fullmatch(v) for v in ints):
        return None
    bitpix, naxis, nx, ny = (int(v) for v in ints)
    if naxis != 2 or bitpix not in _FAST_DTYPES or nx < 1 or ny < 1:
        return None
    for key, neutral in _FAST_NEUTRAL.items():
        if key in values:
            text = values[key]
            if not _REAL.fullmatch(text) or float(text.upper().replace(b"D", b"E")) != neutral:
                return None
    return _PlainLayout(_FAST_DTYPES[bitpix], (ny, nx), offset)


def _plain_fits(path: str, *, pixels: bool) -> tuple[_PlainLayout, np.ndarray | None] | None:
    """Layout (and with ``pixels`` the pixels ``(H, W, 1)`` float32) of a plain FITS file.

    None when the file is not plain, not complete or cannot be opened: then :func:`read_fits`
    reads it (or says what is wrong with it).
    """
    if not path.lower().endswith(_FAST_SUFFIXES):
        return None
    try:  # os-level calls: a Python file object costs more than the whole decode of a cut-out
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK)  # a FIFO must not block: read() names it
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        size = st.st_size
        head = os.read(fd, min(size, _HEAD_BYTES))
        layout = _plain_layout(head)
        if layout is None or size < layout.end:
            return None  # not plain, or truncated: read() names the problem
        if pixels and size > -(-layout.end // _BLOCK) * _BLOCK:
            return None  # HDUs follow (a DQ or MASK among them?): read() decides
        if not pixels:
            return layout, None
        (h, w), itemsize = layout.shape, layout.dtype.itemsize
        if h * w * (itemsize + 12) > _MEMORY_CHECK_BYTES:
            check_memory(h * w, itemsize, Path(path))
        if layout.end <= len(head):
            buf, start = head, layout.offset
        else:
            os.lseek(fd, layout.offset, os.SEEK_SET)
            buf, start = _read_exactly(fd, layout.end - layout.offset), 0
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(buf) < start + h * w * itemsize:
        return None  # the file shrank while it was read
    raw = np.frombuffer(buf, layout.dtype, count=h * w, offset=start).reshape(h, w)
    return layout, physical_values(raw, 1.0, 0.0, None, path).reshape(h, w, 1)


def _read_exactly(fd: int, n: int) -> bytes:
    """``n`` bytes from ``fd`` (fewer only at the end of the file); os.read may return less."""
    parts, got = [], 0
    while got < n:
        part = os.read(fd, min(n - got, 1 << 30))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_plain_fits(path: str) -> np.ndarray | None:
    """Pixels ``(H, W, 1)`` float32 of a plain FITS file, NaN where not finite; else None."""
    found = _plain_fits(path, pixels=True)
    return None if found is None else found[1]


def plain_fits_shape(path: str) -> tuple[int, int, int] | None:
    """``(H, W, 1)`` of a complete plain FITS file from its header alone; else None."""
    found = _plain_fits(path, pixels=False)
    return None if found is None else (*found[0].shape, 1)
