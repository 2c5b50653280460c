"""Bad-pixel masks: flag images (data quality, masks) to a boolean mask, applied to an image.

A mask comes from a FITS ``DQ``/``MASK`` HDU next to the science HDU (found by
:mod:`sciconv.io._fits`), from a separate file, or from an array. Flag images (HST/JWST data
quality, a 0/1 mask) are turned into "bad" with astropy's
:func:`~astropy.nddata.bitmask.bitfield_to_boolean_mask`, so ``ignore_flags`` means what it
means there: the bits that do *not* make a pixel bad (``0``: every set bit is bad; ``"~4096"``:
only bit 4096 is; ``"4+8"`` or ``[4, 8]``: bits 4 and 8 are ignored; None: no pixel is bad).
A boolean mask is True at bad pixels. Applying a mask sets the image's bad pixels to NaN and
``GridImage.mask`` True there, the one form every later stage reads.

Where the pipeline that wrote a flag plane reads some flags as good, the default ``0`` follows
the pipeline (:func:`named_plane_flags`): a Rubin ``MASK`` HDU's defect planes only, a JWST (or
Roman) ``DQ`` HDU's ``DO_NOT_USE`` and ``NON_SCIENCE`` only. A mask given with ``mask=`` that
flags the sources themselves (a detection plane) is said (:mod:`sciconv.io._mask_sources`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from sciconv.errors import ConfigError, InvalidImageError
from sciconv.io._common import brief
from sciconv.io._files import validate_path
from sciconv.io._header import header_get, header_number
from sciconv.io._image import GridImage, LazyImage
from sciconv.io._mask_sources import warn_if_sources_masked

#: EXTNAMEs of the FITS HDUs read as the bad-pixel mask of the science HDU next to them, in
#: order of preference (``MSK``: DES coadd tiles).
MASK_EXTNAMES = ("DQ", "MASK", "MSK")
#: Mask planes that make a pixel bad in a mask that names its bit planes (Rubin/LSST ``MASK``
#: HDUs: ``MP_<NAME> = bit`` cards). The others (``DETECTED``, ``DETECTED_NEGATIVE``,
#: ``CLIPPED``, ``CROSSTALK``, ...) flag measurements, not defects: read as bad, every source
#: the pipeline detected became NaN.
BAD_MASK_PLANES = (
    "BAD",
    "CR",
    "EDGE",
    "INTRP",
    "NO_DATA",
    "SAT",
    "SENSOR_EDGE",
    "STREAK",
    "SUSPECT",
    "UNMASKEDNAN",
)


#: The flags that make a pixel of a ``DQ`` HDU bad by default, by the ``TELESCOP`` of its file,
#: where the mission's pipeline reads the other flags as good. JWST: the ``resample`` and
#: ``outlier_detection`` steps drizzle with ``good_bits="~DO_NOT_USE+NON_SCIENCE"``
#: (spacetelescope/jwst ``jwst/resample/resample_step.py``: "use of all DQ flagged data except
#: for DO_NOT_USE and NON_SCIENCE"); ``JUMP_DET`` (4) marks a cosmic ray fitted out of the ramp,
#: the slope being good, and long exposures have 10-30 % of their pixels so flagged. Values from
#: stdatamodels ``jwst/datamodels/dqflags.py`` (``DO_NOT_USE = 2**0``, ``NON_SCIENCE = 2**9``);
#: Roman's romancal uses the same bits (``romancal/lib/dqflags.py``).
PIPELINE_BAD_FLAGS = {
    "JWST": {"DO_NOT_USE": 1, "NON_SCIENCE": 512},
    "ROMAN": {"DO_NOT_USE": 1, "NON_SCIENCE": 512},
}


def _telescope(headers) -> str | None:
    """The first ``TELESCOP`` of ``headers`` (upper case), or None."""
    for h in headers:
        value = header_get(h, "TELESCOP") if h is not None else None
        if isinstance(value, str) and value.strip():
            return value.strip().upper()
    return None


def named_plane_flags(header, ignore_flags: Any, *, context=()) -> tuple[Any, list[str] | None]:
    """``ignore_flags`` for a mask HDU with ``header``, and the bad planes it keeps (None: the
    given flags, as they are).

    The default ``0`` ("every set bit is bad") on a mask whose header names its bit planes
    (``MP_<NAME>`` cards, Rubin/LSST) keeps only the planes of :data:`BAD_MASK_PLANES`; on a
    ``DQ`` HDU of a JWST or Roman file (``TELESCOP`` of ``header`` or of a ``context`` header:
    the science HDU's, the primary one's) only the flags of :data:`PIPELINE_BAD_FLAGS`, the
    mission pipeline's own rule. Any other ``ignore_flags`` is the caller's choice and stands
    (every set bit bad, said explicitly: ``"0"`` or ``[]``).

    Parameters
    ----------
    header : astropy.io.fits.Header
        The mask HDU's header.
    ignore_flags : int, str, list or None
        What the caller gave (``0``: the default).
    context : sequence of astropy.io.fits.Header
        The headers of the image the mask belongs to, for its ``TELESCOP``.

    Returns
    -------
    (ignore_flags, list of str or None)
        The flags to read the HDU with, and the names of the bad planes or flags kept (for
        ``meta["mask_from"]``), None where ``ignore_flags`` is returned as given.

    Examples
    --------
    >>> from astropy.io import fits
    >>> h = fits.Header({"MP_BAD": 0, "MP_SAT": 1, "MP_DETECTED": 5})
    >>> named_plane_flags(h, 0), named_plane_flags(h, "~4")
    (('~3', ['BAD', 'SAT']), ('~4', None))
    >>> dq, primary = fits.Header({"EXTNAME": "DQ"}), fits.Header({"TELESCOP": "JWST"})
    >>> named_plane_flags(dq, 0, context=[primary]), named_plane_flags(dq, "0", context=[primary])
    (('~513', ['DO_NOT_USE', 'NON_SCIENCE']), ('0', None))
    """
    if isinstance(ignore_flags, bool) or not (isinstance(ignore_flags, int) and ignore_flags == 0):
        return ignore_flags, None
    planes = {}
    for key, bit in header.items():
        name = str(key).upper()
        if name.startswith("MP_") and isinstance(bit, int) and not isinstance(bit, bool):
            if 0 <= bit < 63:
                planes[name[3:]] = bit
    if not planes:
        name = header_get(header, "EXTNAME")
        flags = PIPELINE_BAD_FLAGS.get(_telescope((header, *context)))
        if flags is None or not (isinstance(name, str) and name.strip().upper() == "DQ"):
            return ignore_flags, None
        return f"~{sum(flags.values())}", list(flags)
    kept = sorted(n for n in planes if n in BAD_MASK_PLANES)
    bits = sum(1 << planes[n] for n in kept)
    return (f"~{bits}" if bits else None), kept


def validate_ignore_flags(ignore_flags: Any) -> Any:
    """Check ``ignore_flags`` the way astropy reads it (int, str expression, list, None)."""
    from astropy.nddata.bitmask import interpret_bit_flags

    if isinstance(ignore_flags, bool):
        raise ConfigError(
            f"ignore_flags must be an int, a flag expression such as '~4096' or '4+8', a list "
            f"of bit flags, or None; got {ignore_flags!r}"
        )
    try:
        interpret_bit_flags(ignore_flags)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"ignore_flags must be an int, a flag expression such as '~4096' or '4+8', a list "
            f"of bit flags (powers of 2), or None; got {ignore_flags!r} ({brief(exc)})"
        ) from exc
    return ignore_flags


def flags_to_bad(values: np.ndarray, ignore_flags: Any = 0, *, path=None, what="mask"):
    """Bool array, True at bad pixels, from a flag image or a boolean mask.

    Parameters
    ----------
    values : numpy.ndarray
        Bool (True = bad) or integer bit flags (0 = good); float values must be whole numbers
        (a flag image read as float), NaN counts as bad.
    ignore_flags : int, str, list or None
        As astropy's :func:`~astropy.nddata.bitmask.bitfield_to_boolean_mask`.
    path, what
        Name the file and the thing in error messages.

    Examples
    --------
    >>> import numpy as np
    >>> dq = np.array([0, 8, 4096, 4104], dtype=np.int16)
    >>> flags_to_bad(dq).tolist(), flags_to_bad(dq, "~4096").tolist()
    ([False, True, True, True], [False, False, True, True])
    """
    from astropy.nddata.bitmask import bitfield_to_boolean_mask

    values = np.asarray(values)
    nan = None
    if values.dtype == bool:
        values = values.view(np.uint8)
    elif values.dtype.kind == "f":
        nan = ~np.isfinite(values)
        clean = np.where(nan, 0, values)
        if np.any(clean != np.round(clean)) or np.any(np.abs(clean) >= 2.0**63):
            raise InvalidImageError(
                f"{what} must hold integer flags or True/False (0 = good); it holds fractions",
                path=path,
            )
        values = clean.astype(np.int64)
    elif values.dtype.kind not in "iu":
        raise InvalidImageError(
            f"{what} must hold integer flags or True/False; got dtype {values.dtype}", path=path
        )
    if not values.dtype.isnative:
        values = values.astype(values.dtype.newbyteorder("="))
    bad = bitfield_to_boolean_mask(values, ignore_flags=ignore_flags, good_mask_value=False)
    return bad if nan is None else bad | nan


def fits_flag_values(h, idx, path) -> np.ndarray:
    """The integer flags of the FITS HDU ``h``'s ``h.section[idx]``, ``h`` opened unscaled
    (BZERO offsets of unsigned types applied here: a uint16 DQ HDU's stored -32768 is 0); scaled
    values are refused.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from astropy.io import fits
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "dq.fits"
    >>> fits.PrimaryHDU(np.array([[0, 4096]], np.uint16)).writeto(path)  # BZERO 32768
    >>> with fits.open(path, do_not_scale_image_data=True) as hdul:  # as sciconv opens files
    ...     fits_flag_values(hdul[0], (slice(None), slice(None)), path).tolist()
    [[0, 4096]]
    """
    raw = np.asarray(h.section[idx])
    bitpix = header_get(h.header, "BITPIX")
    bscale = header_number(h.header, "BSCALE", 1.0, path)
    bzero = header_number(h.header, "BZERO", 0.0, path)
    if not isinstance(bitpix, int) or bitpix < 0 or (bscale == 1.0 and bzero == 0.0):
        return raw  # floats are checked to hold whole numbers by flags_to_bad
    if bitpix == 64 and bscale == 1.0 and bzero == 2.0**63:
        return raw.astype(np.int64).view(np.uint64) ^ np.uint64(2**63)
    if bscale == 1.0 and bzero == int(bzero) and bitpix < 64:
        return raw.astype(np.int64) + int(bzero)
    raise InvalidImageError(
        f"mask HDU holds scaled values (BSCALE={bscale:g}, BZERO={bzero:g}); a flag image holds "
        "integers",
        path=path,
    )


def fit_mask(bad: np.ndarray, shape: tuple[int, ...], *, path=None, what="mask") -> np.ndarray:
    """``bad`` shaped to broadcast against pixels of ``shape`` ``(H, W, C)`` / ``(N, H, W, C)``.

    A mask ``(H, W)`` or ``(H, W, 1)`` applies to every channel (and plane), ``(H, W, C)`` per
    channel; a stack's mask may also be ``(N, H, W, C)``.

    Examples
    --------
    >>> import numpy as np
    >>> fit_mask(np.zeros((4, 5), bool), (4, 5, 3)).shape
    (4, 5, 1)
    """
    hw = tuple(shape[-3:-1])
    if bad.shape == tuple(shape):
        return bad
    if bad.shape == hw:
        return bad[..., None]
    if bad.ndim == 3 and bad.shape[:2] == hw and bad.shape[2] in (1, shape[-1]):
        return bad
    raise InvalidImageError(
        f"{what} has shape {bad.shape} but the image is {' x '.join(map(str, shape))} "
        f"(a mask must be (H, W) = {hw}, or (H, W, C) with C = 1 or {shape[-1]})",
        path=path,
    )


def _masked(img: GridImage, bad_of, meta: dict) -> GridImage:
    """``img`` with the pixels ``bad_of(block, ys, xs)`` (bool, broadcastable to the block)
    says are bad set to NaN and masked; a lazy image is masked region by region as it is read."""
    data = img.data
    if isinstance(data, LazyImage):
        lazy = data

        def reader(ys: slice, xs: slice) -> np.ndarray:
            block = np.array(lazy[ys, xs], dtype=np.float32)
            block[np.broadcast_to(bad_of(block, ys, xs), block.shape)] = np.nan
            return block

        data = LazyImage(reader, lazy.shape, path=img.path, closer=lazy.close)
        return GridImage(data, header=img.header, wcs=img.wcs, mask=None, path=img.path, meta=meta)
    data = np.array(data, dtype=np.float32)
    everything = slice(None)
    data[np.broadcast_to(bad_of(data, everything, everything), data.shape)] = np.nan
    mask = np.isnan(data) if img.mask is None else (np.asarray(img.mask) | np.isnan(data))
    return GridImage(data, header=img.header, wcs=img.wcs, mask=mask, path=img.path, meta=meta)


def apply_nodata(img: GridImage, value: float) -> GridImage:
    """``img`` with the pixels whose every channel equals ``value`` NaN and masked (a mosaic's
    uncovered area, filled with 0 by SWarp and stitching tools); ``meta["nodata"]``.

    A lazy image stays lazy: every region read is masked as it is read.

    Examples
    --------
    >>> import numpy as np
    >>> img = apply_nodata(GridImage(np.array([[[0.0], [2.0]], [[0.0], [0.0]]], np.float32)), 0)
    >>> img.data[..., 0].tolist(), int(img.mask.sum())
    ([[nan, 2.0], [nan, nan]], 3)
    """
    value = float(value)
    return _masked(
        img,
        lambda block, ys, xs: np.all(block == value, axis=-1, keepdims=True),
        {**img.meta, "nodata": value},
    )


def apply_bad(img: GridImage, bad: np.ndarray, *, source: str) -> GridImage:
    """``img`` with its ``bad`` pixels (broadcastable bool) NaN and masked; ``meta["mask_from"]``.

    A lazy image stays lazy: every region read is masked as it is read.

    Examples
    --------
    >>> import numpy as np
    >>> img = apply_bad(GridImage(np.ones((2, 2, 1), np.float32)), np.eye(2, dtype=bool)[..., None],
    ...                 source="array")
    >>> img.data[..., 0].tolist(), int(img.mask.sum())
    ([[nan, 1.0], [1.0, nan]], 2)
    """
    return _masked(
        img,
        lambda block, ys, xs: bad[ys, xs] if bad.ndim == 3 else bad,
        {**img.meta, "mask_from": source},
    )


def read_mask_source(
    mask, *, shape, section, ignore_flags, path, read_fits_flags, read_other, image=None
):
    """The bad-pixel mask ``mask=`` names (a file or an array), fitted to ``shape``.

    ``read_fits_flags(path, section)`` returns a FITS file's raw flags; ``read_other(path,
    section)`` the pixels of any other image file (both from :mod:`sciconv.io`). Returns the
    bool mask and a word on where it came from (the file, or ``"array"``). Given the
    ``image`` (a :class:`GridImage`, before the mask), a mask that flags its sources
    themselves is said (:func:`~sciconv.io._mask_sources.warn_if_sources_masked`).

    Examples
    --------
    >>> import numpy as np
    >>> bad, source = read_mask_source(np.array([[0, 4], [0, 0]]), shape=(2, 2, 1), section=None,
    ...                                ignore_flags=0, path=None, read_fits_flags=None,
    ...                                read_other=None)
    >>> bad[..., 0].tolist(), source
    ([[False, True], [False, False]], 'array')
    """
    if isinstance(mask, (str, os.PathLike)):
        mpath, kind = validate_path(Path(mask))
        what = f"mask file {mpath}"
        values = read_fits_flags(mpath, section) if kind == "fits" else read_other(mpath, section)
        if values.ndim == 3 and values.shape[-1] == 1:
            values = values[..., 0]
        bad = flags_to_bad(values, ignore_flags, path=mpath, what=what)
        bad = fit_mask(bad, shape, path=path, what=what)
        if image is not None:
            warn_if_sources_masked(
                image.data, bad, values, source=str(mpath), ignore_flags=ignore_flags
            )
        return bad, str(mpath)
    if isinstance(mask, GridImage):
        mask = mask.data
    try:
        values = np.asarray(mask)
    except Exception as exc:
        raise ConfigError(
            f"mask must be a file path or an array (True/nonzero = bad); got {type(mask).__name__}"
        ) from exc
    if values.ndim == 0 or values.dtype == object:
        raise ConfigError(
            f"mask must be a file path or an array (True/nonzero = bad); got {mask!r:.60}"
        )
    bad = flags_to_bad(values, ignore_flags, path=path, what="mask array")
    bad = fit_mask(bad, shape, path=path, what="mask array")
    if image is not None:
        warn_if_sources_masked(
            image.data, bad, values, source="mask array", ignore_flags=ignore_flags
        )
    return bad, "array"
