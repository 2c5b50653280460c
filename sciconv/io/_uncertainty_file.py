"""A per-pixel error map kept in a file of its own: ``read(..., uncertainty=PATH_OR_ARRAY,
uncertainty_type="std" | "var" | "ivar")``.

Most survey archives serve the error of every pixel as a separate file on the image's pixel grid:
Legacy Surveys ``-invvar-`` and unWISE ``-invvar-`` files (inverse variance, 0 = no data),
unWISE ``-std-`` and Euclid ``RMS`` maps (standard deviation), Pan-STARRS ``.wt`` stacks
(variance, asinh-compressed like the image) and DECam Community Pipeline ``oow`` files (weight:
inverse variance). :func:`apply_uncertainty` reads such a file (or an array) into
``GridImage.meta["uncertainty"]`` as the astropy uncertainty an ``ERR``/``VAR``/``IVAR`` HDU in
the image's own file gives (:mod:`sciconv.io._fits_errors`), so catalogs take their flux errors
from it; its pixels of no measurement (an inverse variance of 0, an infinite or NaN error) are
bad, as there. A lazy read keeps a FITS error file as ``meta["uncertainty_windows"]``
(:class:`~sciconv.io.ErrorHDU`), read window by window with the pixels.

What the file holds is ``uncertainty_type`` when given; else what the file says (its ``UTYPE``
card, its EXTNAME, its ``BUNIT`` against the image's, or ``invvar``/``ivar``, ``var``,
``std``/``rms``/``err`` in its name), recorded in ``meta["uncertainty_from"]``; a file that says
nothing (``.wt``, ``oow``: "weight" means different things) or contradictory things is refused.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np

from sciconv._validation import look_up_option
from sciconv._warnings import caught
from sciconv.errors import ConfigError, InvalidImageError, SciconvWarning
from sciconv.io._common import section_slices, warn_caller
from sciconv.io._files import user_path, validate_path
from sciconv.io._fits_errors import ErrorHDU, no_data_pixels, sigma_of
from sciconv.io._header import header_get
from sciconv.io._image import GridImage, LazyImage

__all__ = [
    "UNCERTAINTY_ALIASES",
    "UNCERTAINTY_TYPES",
    "apply_uncertainty",
    "uncertainty_kind",
    "validate_uncertainty_args",
]

#: ``uncertainty_type`` -> the astropy.nddata class an error HDU of that kind is read as.
UNCERTAINTY_TYPES = {
    "std": "StdDevUncertainty",
    "var": "VarianceUncertainty",
    "ivar": "InverseVariance",
}
_WORDS = {
    "std": "standard deviation",
    "var": "variance",
    "ivar": "inverse variance",
}
_TYPE_OF_CLASS = {v: k for k, v in UNCERTAINTY_TYPES.items()}
#: Other spellings ``uncertainty_type`` takes (astropy's and the EXTNAMEs' long forms).
UNCERTAINTY_ALIASES = {
    "stddev": "std", "sigma": "std", "rms": "std", "err": "std", "error": "std",
    "variance": "var",
    "invvar": "ivar", "inverse_variance": "ivar", "inversevariance": "ivar",
}  # fmt: skip


def _checked_type(uncertainty_type) -> str:
    """``uncertainty_type`` as one of :data:`UNCERTAINTY_TYPES`' keys (aliases taken)."""
    if isinstance(uncertainty_type, str):
        text = uncertainty_type.strip().lower().replace(" ", "_").replace("-", "_")
        uncertainty_type = UNCERTAINTY_ALIASES.get(text, text)
    return look_up_option(uncertainty_type, tuple(UNCERTAINTY_TYPES), name="uncertainty_type")


# an error file's EXTNAME, and words of its file name, that say what it holds ("wt", "weight"
# do not: a Pan-STARRS .wt is a variance, a SWarp or DECam weight an inverse variance)
_EXTNAME_TYPES = {
    **dict.fromkeys(("ERR", "ERROR", "UNCERT", "STD", "STDDEV", "SIGMA", "RMS", "NOISE"), "std"),
    **dict.fromkeys(("VAR", "VARIANCE"), "var"),
    **dict.fromkeys(("IVAR", "INVVAR", "INVVARIANCE"), "ivar"),
}
_NAME_TYPES = {
    **dict.fromkeys(("std", "stddev", "sigma", "rms", "err", "error", "unc", "uncert"), "std"),
    **dict.fromkeys(("var", "variance"), "var"),
    **dict.fromkeys(("ivar", "invvar"), "ivar"),
}
_CONVENTIONS = (
    "Legacy Surveys and unWISE -invvar- files: ivar; unWISE -std- and Euclid RMS maps: std; "
    "Pan-STARRS .wt stacks: var; DECam Community Pipeline oow weights: ivar"
)
# the cards that place pixels on the sky: an error file's must agree with the image's
_GRID_CARDS = ("CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CDELT1", "CDELT2",
               "CD1_1", "CD1_2", "CD2_1", "CD2_2", "PC1_1", "PC1_2", "PC2_1", "PC2_2")  # fmt: skip


def validate_uncertainty_args(uncertainty, uncertainty_type, *, stack: bool, path) -> None:
    """Check ``read``'s ``uncertainty``/``uncertainty_type`` before anything is read.

    Examples
    --------
    >>> validate_uncertainty_args(None, "sd", stack=False, path=None)
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: uncertainty_type must be one of 'std', 'var', 'ivar'; got 'sd' ...
    """
    if uncertainty_type is not None:
        _checked_type(uncertainty_type)
        if uncertainty is None:
            raise ConfigError(
                f"uncertainty_type={uncertainty_type!r} was given without uncertainty= (the "
                "error file or array it describes)",
                path=path,
            )
    if uncertainty is not None and stack:
        raise ConfigError(
            "uncertainty= applies to single images; read a stack (stack=True) without it",
            path=path,
        )


def uncertainty_kind(uncertainty_type, *, header=None, name=None, unit=None, image_unit=None):
    """What an error map holds: ``("std" | "var" | "ivar", how it was told)``.

    ``uncertainty_type`` when given; else what the file says: a ``UTYPE`` card (astropy's
    ``CCDData``), its EXTNAME (``IVAR``, ``VARIANCE``, ``ERR``, ``RMS``...), its ``unit``
    against the ``image_unit`` (squared: a variance; to the power -2: an inverse variance; the
    same says nothing, a copied header has it), words of its file ``name`` (``invvar``,
    ``ivar``, ``var``, ``std``, ``rms``, ``err``...). None of them, or two that disagree: a
    :class:`~sciconv.errors.ConfigError` asking for ``uncertainty_type``.

    Parameters
    ----------
    uncertainty_type : {"std", "var", "ivar"} or None
        The caller's word, which wins.
    header : astropy.io.fits.Header, optional
        The error file's header.
    name : str, optional
        The error file's name.
    unit, image_unit : astropy.units.UnitBase, optional
        The error file's ``BUNIT`` and the image's.

    Returns
    -------
    (str, str)

    Examples
    --------
    >>> uncertainty_kind(None, name="legacysurvey-1501p022-invvar-r.fits.fz")
    ('ivar', "'invvar' in its name")
    >>> uncertainty_kind("var", name="rings.v3.skycell.1234.056.stk.r.unconv.wt.fits")
    ('var', 'as given')
    >>> uncertainty_kind(None, name="c4d_200101_012345_oow_r_v1.fits.fz")
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: c4d_200101_012345_oow_r_v1.fits.fz: nothing says whether it ...
    """
    if uncertainty_type is not None:
        return _checked_type(uncertainty_type), "as given"
    said: list[tuple[str, str]] = []
    if header is not None:
        utype = header_get(header, "UTYPE", None)
        if utype in _TYPE_OF_CLASS:
            said.append((_TYPE_OF_CLASS[utype], f"its UTYPE card {utype!r}"))
        extname = header_get(header, "EXTNAME", None)
        if isinstance(extname, str) and extname.strip().upper() in _EXTNAME_TYPES:
            said.append(
                (_EXTNAME_TYPES[extname.strip().upper()], f"its EXTNAME {extname.strip()!r}")
            )
    by_unit = _kind_of_unit(unit, image_unit)
    if by_unit is not None:
        said.append((by_unit, f"its BUNIT {unit} (the image's is {image_unit})"))
    if name is not None:
        words = [w for w in re.split(r"[^a-z0-9]+", str(name).lower()) if w in _NAME_TYPES]
        said.extend((_NAME_TYPES[w], f"{w!r} in its name") for w in dict.fromkeys(words))
    kinds = {k for k, _ in said}
    where = f"{name}: " if name is not None else ""
    if len(kinds) == 1:
        return said[0][0], "; ".join(how for _, how in said)
    if kinds:
        told = "; ".join(f"{how}: {_WORDS[k]}" for k, how in said)
        raise ConfigError(
            f"{where}the error file says different things about what it holds ({told}); pass "
            "uncertainty_type='std', 'var' or 'ivar' (sciconv predict: --uncertainty-type)"
        )
    raise ConfigError(
        f"{where}nothing says whether it holds standard deviations, variances or inverse "
        "variances (no UTYPE card, EXTNAME or BUNIT that tells, no 'std', 'var' or 'invvar' in "
        "its name); pass uncertainty_type='std', 'var' or 'ivar' (sciconv predict: "
        f"--uncertainty-type). Archives' conventions: {_CONVENTIONS}"
    )


def _kind_of_unit(unit, image_unit) -> str | None:
    """``var``/``ivar`` when ``unit`` is the image's unit to the power 2 or -2. The image's unit
    itself says nothing: error files written with a copy of the image's header carry it (QA:
    a Legacy Surveys invvar file with BUNIT nanomaggy)."""
    if unit is None or image_unit is None:
        return None
    from astropy import units as u

    try:
        if isinstance(unit, u.UnrecognizedUnit) or isinstance(image_unit, u.UnrecognizedUnit):
            return None
        if image_unit == u.dimensionless_unscaled:
            return None  # 1, 1**2 and 1**-2 are the same
        for kind, power in (("var", 2), ("ivar", -2)):  # the image's own unit: a copied header?
            if unit == image_unit**power:
                return kind
    except Exception:  # a unit astropy cannot compare: nothing said
        return None
    return None


def _bunit(header, path):
    """The unit of ``header``'s BUNIT, or None (absent, or not a unit astropy reads)."""
    bunit = None if header is None else header_get(header, "BUNIT", None)
    if not isinstance(bunit, str) or not bunit.strip():
        return None
    from astropy import units as u

    from sciconv.io._units import fits_unit

    with caught("ignore", SciconvWarning):  # an unread unit: it says nothing here
        unit = fits_unit(bunit, path)
    return None if isinstance(unit, u.UnrecognizedUnit) else unit


def apply_uncertainty(img: GridImage, uncertainty, uncertainty_type, *, section, full_shape,
                      read_file) -> GridImage:  # fmt: skip
    """``img`` with the error map ``uncertainty`` (a file, an array or an astropy uncertainty)
    as ``meta["uncertainty"]`` (``meta["uncertainty_windows"]`` for a lazy image and a FITS
    error file), its pixels of no measurement bad (NaN, ``.mask``).

    Parameters
    ----------
    img : GridImage
        The image as read (``section`` applied).
    uncertainty : str, os.PathLike, array_like or astropy.nddata.NDUncertainty
        The error map: a file on the image's pixel grid (``section`` is applied to it as to the
        image), or an array of the image's ``(H, W)`` as read.
    uncertainty_type : {"std", "var", "ivar"} or None
        What it holds (None: what the file says, :func:`uncertainty_kind`).
    section : (slice, slice) or None
        The section read.
    full_shape : (int, int)
        The image's ``(H, W)`` in its file (before ``section``).
    read_file : callable
        ``read_file(path, section, lazy)``: the error file as a GridImage, its pixels only
        (:func:`sciconv.io.read`'s reader).

    Returns
    -------
    GridImage

    Raises
    ------
    InvalidImageError
        The error file is missing, unreadable, not on the image's pixel grid, or not 2-D.
    ConfigError
        ``uncertainty_type`` is not given and the file does not say it; an array of another
        shape.

    Examples
    --------
    >>> img = GridImage(np.ones((2, 2, 1), np.float32))
    >>> out = apply_uncertainty(img, np.array([[4.0, 0.0], [1.0, 1.0]]), "ivar", section=None,
    ...                         full_shape=(2, 2), read_file=None)
    >>> type(out.meta["uncertainty"]).__name__, out.data[..., 0].tolist()
    ('InverseVariance', [[1.0, nan], [1.0, 1.0]])
    """
    uncertainty_type = None if uncertainty_type is None else _checked_type(uncertainty_type)
    if img.shape[-1] != 1:
        raise ConfigError(
            f"uncertainty= applies to one-channel images; this one has {img.shape[-1]} "
            "channels (read one channel's file, or pass the error as measure(error=...))",
            path=img.path,
        )
    if isinstance(uncertainty, (str, os.PathLike)):
        return _from_file(img, uncertainty, uncertainty_type, section, full_shape, read_file)
    kind, how, values = _from_array(img, uncertainty, uncertainty_type)
    unc = _uncertainty(kind, values)
    where = "array" + ("" if how == "as given" else f" ({_WORDS[kind]}: {how})")
    return _with_errors(img, unc, None, where)


def _from_array(img, uncertainty, uncertainty_type):
    from astropy.nddata import NDUncertainty

    if isinstance(uncertainty, NDUncertainty):
        own = _TYPE_OF_CLASS.get(type(uncertainty).__name__)
        if own is None:
            raise ConfigError(
                f"uncertainty must be a StdDevUncertainty, VarianceUncertainty or "
                f"InverseVariance; got a {type(uncertainty).__name__}",
                path=img.path,
            )
        if uncertainty_type is not None and uncertainty_type != own:
            raise ConfigError(
                f"uncertainty is a {type(uncertainty).__name__} but uncertainty_type="
                f"{uncertainty_type!r}; give one or the other",
                path=img.path,
            )
        uncertainty_type, how, uncertainty = (
            own,
            f"a {type(uncertainty).__name__}",
            uncertainty.array,
        )
    else:
        how = "as given"
    try:
        values = np.asarray(uncertainty, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            "uncertainty must be a file path, an array of the pixels' errors or an astropy "
            f"uncertainty; got {type(uncertainty).__name__}",
            path=img.path,
        ) from exc
    if uncertainty_type is None:
        raise ConfigError(
            "uncertainty= given as an array needs uncertainty_type='std', 'var' or 'ivar' (what "
            "it holds)",
            path=img.path,
        )
    hw = tuple(img.shape[:2])
    if values.ndim == 3 and values.shape[-1] == 1:
        values = values[..., 0]
    if values.shape != hw:
        raise ConfigError(
            f"uncertainty array has shape {values.shape} but the image is "
            f"{' x '.join(map(str, img.shape))} (an error map must be (H, W) = {hw})",
            path=img.path,
        )
    return uncertainty_type, how, values


def _from_file(img, uncertainty, uncertainty_type, section, full_shape, read_file):
    upath = user_path(uncertainty, error=InvalidImageError, what="uncertainty")
    upath, fmt = validate_path(upath)
    whole = read_file(upath, None, True)  # its shape and header: no pixels read
    try:
        shape = tuple(int(s) for s in whole.data.shape)
    finally:
        whole.data.close()
    if shape[:2] != tuple(full_shape):
        raise InvalidImageError(
            f"the uncertainty file is {shape[0]} x {shape[1]} pixels (H x W) but the image "
            f"{img.path or ''} is {full_shape[0]} x {full_shape[1]}: an error map must be on "
            "the image's pixel grid",
            path=upath,
        )
    if shape[2] != 1:
        raise InvalidImageError(
            f"the uncertainty file holds {shape[2]} planes; an error map is one 2-D image",
            path=upath,
        )
    lazy = isinstance(img.data, LazyImage)
    read = read_file(upath, section, lazy and fmt == "fits")
    _check_grid(img, read, upath)
    kind, how = _kind_for(uncertainty_type, read, upath, img)
    hdu = read.meta.get("hdu")
    label = f"{upath}" + (f", HDU {hdu}" if hdu is not None and fmt == "fits" else "")
    label += f" ({_WORDS[kind]}" + ("" if how == "as given" else f": {how}") + ")"
    if isinstance(read.data, LazyImage):  # a FITS error file, read window by window
        read.data.close()
        ys, xs = section_slices(section, *full_shape, upath)
        errors = ErrorHDU(
            os.path.abspath(upath), int(hdu), UNCERTAINTY_TYPES[kind], (ys.start, xs.start)
        )
        return _with_errors(img, None, errors, label)
    values = np.asarray(read.data, dtype=np.float64)[..., 0]
    return _with_errors(img, _uncertainty(kind, values), None, label)


def _kind_for(uncertainty_type, read: GridImage, upath: Path, img: GridImage):
    """:func:`uncertainty_kind` of an error file; a type given against what its header says
    is kept, with a warning."""
    unit, image_unit = _bunit(read.header, upath), _bunit(img.header, img.path)
    if uncertainty_type is None:
        return uncertainty_kind(
            None, header=read.header, name=upath.name, unit=unit, image_unit=image_unit
        )
    try:
        told, how = uncertainty_kind(None, header=read.header, unit=unit, image_unit=image_unit)
    except ConfigError:  # the header says nothing, or contradicts itself: the caller's word
        told = None
    if told is not None and told != uncertainty_type:
        warn_caller(
            f"{upath}: read as {_WORDS[uncertainty_type]} (uncertainty_type="
            f"{uncertainty_type!r}) though {how} says {_WORDS[told]}",
            "sciconv",
        )
    return uncertainty_type, "as given"


def _check_grid(img: GridImage, read: GridImage, upath: Path) -> None:
    """The error file's WCS cards equal the image's (both with ``section`` applied)."""
    if img.header is None or read.header is None:
        return
    for key in _GRID_CARDS:
        a, b = header_get(img.header, key, None), header_get(read.header, key, None)
        if a is None or b is None or a == b:
            continue
        if isinstance(a, str) or isinstance(b, str):
            same = str(a).strip().upper() == str(b).strip().upper()
        else:
            try:
                tol = 0.01 if key.startswith("CRPIX") else 1e-9 * max(abs(a), abs(b), 1e-300)
                same = abs(float(a) - float(b)) <= tol
            except (TypeError, ValueError):
                same = True  # a card that is not a number: not ours to judge
        if not same:
            raise InvalidImageError(
                f"the uncertainty file is not on the pixel grid of the image {img.path or ''}: "
                f"{key} = {b!r} there, {a!r} in the image (an error map of another field or "
                "tile?)",
                path=upath,
            )


def _uncertainty(kind: str, values: np.ndarray):
    from astropy import nddata

    return getattr(nddata, UNCERTAINTY_TYPES[kind])(values)


def _with_errors(img: GridImage, unc, windows, where: str) -> GridImage:
    """``img`` with ``unc`` (in memory) or ``windows`` (an ErrorHDU) as its errors and the
    pixels they give no measurement for NaN and masked."""
    meta = {k: v for k, v in img.meta.items() if k not in ("uncertainty", "uncertainty_windows")}
    meta["uncertainty_from"] = where
    if unc is not None:
        meta["uncertainty"] = unc
    else:
        meta["uncertainty_windows"] = windows
    no_data = None if unc is None else no_data_pixels(unc)
    data = img.data
    if isinstance(data, LazyImage):
        lazy = data
        if unc is not None:
            sigma = sigma_of(unc)
            windows = _Sigma(sigma)

        def reader(ys: slice, xs: slice) -> np.ndarray:
            block = np.array(lazy[ys, xs], dtype=np.float32)
            bad = ~np.isfinite(windows.read((ys.start, ys.stop), (xs.start, xs.stop)))
            block[np.broadcast_to(bad[..., None], block.shape)] = np.nan
            return block

        data = LazyImage(reader, lazy.shape, path=img.path, closer=lazy.close)
        return dataclasses.replace(img, data=data, mask=None, meta=meta)
    if no_data is None:
        return dataclasses.replace(img, meta=meta)
    data = np.array(data, dtype=np.float32)
    data[no_data] = np.nan
    mask = np.isnan(data) if img.mask is None else (np.asarray(img.mask) | np.isnan(data))
    return dataclasses.replace(img, data=data, mask=mask, meta=meta)


class _Sigma:
    """Window reads of an in-memory standard deviation (as ``ErrorHDU.read``)."""

    def __init__(self, sigma: np.ndarray):
        self.sigma = sigma

    def read(self, ys: tuple[int, int], xs: tuple[int, int]) -> np.ndarray:
        return self.sigma[ys[0] : ys[1], xs[0] : xs[1]]
