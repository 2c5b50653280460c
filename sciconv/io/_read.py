"""The readers behind :func:`sciconv.io.read`: one entry point that picks FITS, TIFF, PNG/JPEG or
OME-Zarr by the file, checks the arguments once, adds a bad-pixel mask, and turns any failure of a
reader library into an :class:`~sciconv.errors.InvalidImageError` naming the file.
:func:`read_pixels` and :func:`probe_shape` are the fast pixels-only readers training uses.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from sciconv._validation import check_bool
from sciconv._warnings import caught
from sciconv.errors import ConfigError, InvalidImageError, SciconvError, SciconvWarning
from sciconv.io._common import brief, warn_caller
from sciconv.io._files import is_zarr, user_path, validate_path
from sciconv.io._fits import plain_fits_shape, read_fits, read_fits_flags, read_plain_fits
from sciconv.io._image import GridImage, LazyImage
from sciconv.io._masks import apply_bad, apply_nodata, read_mask_source, validate_ignore_flags
from sciconv.io._png import read_pil
from sciconv.io._tiff import TIFF_AXES, declared_planes, read_tiff, tiff_plane_axes
from sciconv.io._uncertainty_file import apply_uncertainty, validate_uncertainty_args
from sciconv.io._zarr import read_zarr, zarr_axes

__all__ = ["plane_axes", "probe_shape", "read", "read_pixels"]


def read(
    path: str | os.PathLike,
    *,
    hdu: int | str | tuple[str, int] | None = None,
    axes: str | None = None,
    stack: bool = False,
    section: tuple[slice, slice] | None = None,
    lazy: bool = False,
    level: int = 0,
    series: int | None = None,
    mask=None,
    mask_hdu: int | str | tuple[str, int] | None = "auto",
    ignore_flags: int | str | list | None = 0,
    nodata: float | None = None,
    uncertainty=None,
    uncertainty_type: str | None = None,
) -> GridImage:
    """Read a FITS, TIFF, PNG or JPEG file or an OME-Zarr store into a :class:`GridImage`.

    Parameters
    ----------
    path : str or os.PathLike
        The file. The format is taken from its first bytes; the extension only has to agree.
    hdu : int, str or (str, int), optional
        FITS only: HDU index, EXTNAME, or (EXTNAME, EXTVER). Default: the first HDU holding pixels.
    axes : str, optional
        TIFF only: the axes of the stored array (e.g. ``"CYX"``, ``"YXC"``, ``"ZYX"``), overriding
        what tifffile reports. ``Y`` and ``X`` must appear once; ``C``/``S`` are channels.
    stack : bool
        Return a stack ``(N, H, W, C)`` instead of ``(H, W, C)``: FITS cube planes (all axes beyond
        the second) become ``N`` with ``C = 1``; TIFF ``Z``/``T``/... axes become ``N``.
    section : (slice, slice), optional
        Read only ``[ys, xs]`` of the image (step 1); the WCS and header are shifted to match.
        Only those pixels are read from an uncompressed or tile-compressed file.
    lazy : bool
        Return ``.data`` as a :class:`LazyImage` that reads regions on demand (``.mask`` is None).
    level : int
        OME-Zarr only: the resolution level (0 = full resolution, ``i`` = downsampled ``2**i``
        by the usual NGFF pyramid); ``meta["levels"]`` lists the shapes of all of them. A store
        (``.ome.zarr`` folder, or any zarr group folder such as ``x.ome.zarr/labels/nuclei``)
        is read through ome-zarr/dask (``pip install "sciconv[ome]"``): ``lazy=True`` reads
        only the chunks a region needs.
    series : int, optional
        TIFF only: which image of a file holding several (tifffile's ``TiffFile.series``
        index; negative counts from the end). Default: the main one, the largest image that is
        not a whole slide's side image (a Leica SCN's scan, not the macro before it; an SVS's
        scan, not its thumbnail, label or macro; a plate's first position); a warning says
        which images were left out, with their sizes and what they are, when the image read is
        not the first or others of its size remain. ``meta["series"]`` records a series other
        than 0.
    mask : str, os.PathLike or array_like, optional
        A bad-pixel mask for this image: a file (FITS, TIFF, PNG; a FITS mask's first image HDU;
        ``section`` is applied to it as to the image) or an array of the pixels' ``(H, W)`` (or
        ``(H, W, C)``). True/nonzero = bad, read as flags with ``ignore_flags``. Added to the
        bad pixels the file has itself.
    mask_hdu : int, str, (str, int) or None, optional
        FITS only: the HDU holding the bad-pixel mask or data-quality flags (as ``hdu``).
        Default ``"auto"``: an HDU named ``DQ`` (else ``MASK``, else ``MSK``, see
        :data:`MASK_EXTNAMES`) with the EXTVER of the HDU read and its size, unless that HDU is
        itself one; None: none.
    ignore_flags : int, str, list or None, optional
        The flag bits that do *not* make a pixel bad, as astropy's
        :func:`~astropy.nddata.bitmask.bitfield_to_boolean_mask` reads them: ``0`` (default)
        every set bit is bad, except in a JWST/Roman ``DQ`` HDU (``TELESCOP``), where only
        ``DO_NOT_USE`` and ``NON_SCIENCE`` are, as the JWST pipeline reads it (a ``JUMP_DET``
        pixel is good), and in a ``MASK`` HDU naming its planes (:data:`BAD_MASK_PLANES`);
        ``"0"`` or ``[]`` makes every set bit bad there too; ``"~4096"`` only bit 4096 is bad;
        ``"4+8"`` or ``[4, 8]``: bits 4 and 8 are ignored; None: nothing is bad. Applies to
        ``mask`` and ``mask_hdu``.
    nodata : float, optional
        Pixels whose every channel equals this value are no data: NaN and masked (a mosaic's
        uncovered area, which SWarp and stitching tools fill with 0; FITS ``BLANK`` and NaN
        need nothing). Real pixels of exactly that value are masked too: give it for frames of
        no data, not for images whose background is truly 0. Prediction then sees the frame as
        bad pixels (mirrored good data, ``benchmarks/bad_pixel_fill.py``) and leaves it out of
        the normalization statistics.
    uncertainty : str, os.PathLike, array_like or astropy.nddata.NDUncertainty, optional
        The per-pixel errors of this image when the archive serves them as a file of their own
        (Legacy Surveys and unWISE ``-invvar-``, unWISE ``-std-``, Euclid ``RMS``, Pan-STARRS
        ``.wt``, DECam ``oow``): a file on the image's pixel grid (its first image HDU; the same
        size, and the same WCS cards when both have them; ``section`` is applied to it as to
        the image, a lazy image reads it window by window), or an array of the pixels'
        ``(H, W)`` as read. Read as an ``ERR``/``VAR``/``IVAR`` HDU in the image's own file
        would be (and instead of one): ``meta["uncertainty"]`` (``meta["uncertainty_windows"]``
        when lazy), from which catalogs take ``flux_err``; pixels with no measurement (an
        inverse variance of 0, an infinite or NaN error) are bad.
    uncertainty_type : {"std", "var", "ivar"}, optional
        What ``uncertainty`` holds: standard deviations, variances or inverse variances.
        Default: what the file says, when it does (a ``UTYPE`` card, an EXTNAME such as
        ``IVAR`` or ``RMS``, a ``BUNIT`` that is the image's unit squared or to the power -2,
        ``invvar``, ``var`` or ``std`` in its name; recorded in ``meta["uncertainty_from"]``);
        a file that says nothing, or says two things, is refused: give it. Needed for an array.

    Returns
    -------
    GridImage
        ``.data`` float32 ``(H, W, C)`` with NaN at bad pixels, ``.mask`` True there
        (``meta["mask_from"]`` names the mask HDU or file when one was applied). Microscopy
        files (OME-TIFF, ImageJ, OME-Zarr; Zeiss LSM, Aperio SVS, Leica SCN, MetaMorph STK,
        FluoView, Philips, NDPI and TIFF resolution tags in µm) also give
        ``meta["pixel_size"]`` ``(dy, dx)`` in ``meta["pixel_unit"]`` (e.g. ``"µm"``; where it
        was read: ``meta["pixel_size_from"]``) and ``meta["channel_names"]`` when they store
        them.

    Raises
    ------
    InvalidImageError
        The file is missing, unreadable, empty, truncated, not an image, or holds no 2-D pixels;
        the message names the file and the problem.
    ConfigError
        An argument is not valid (``hdu``, ``axes``, ``section``, ``stack`` with ``lazy``,
        ``level`` out of range or given for a file that is not OME-Zarr, ``series`` beyond the
        file's images or given for a file that is not TIFF).
    MissingDependencyError
        An OME-Zarr store was given and zarr / ome-zarr are not installed.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from sciconv.io import probe_shape, read, read_pixels, write
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "cube.fits"
    >>> _ = write(p, np.zeros((8, 8, 3), dtype=np.float32))
    >>> read(p).shape, read(p, stack=True).shape
    ((8, 8, 3), (3, 8, 8, 1))
    >>> read(p, section=(slice(2, 6), slice(0, 4))).shape
    (4, 4, 3)

    A data-quality plane (here a separate file, as the bundled HST cut-out has it):

    >>> dq = np.zeros((8, 8), np.int16); dq[0, :2] = 4096; dq[1, 0] = 8
    >>> _ = write(p.with_name("dq.fits"), dq)
    >>> img = read(p, mask=p.with_name("dq.fits"))
    >>> int(img.mask[..., 0].sum()), bool(np.isnan(img.data[0, 0]).all())
    (3, True)
    >>> int(read(p, mask=p.with_name("dq.fits"), ignore_flags="~4096").mask[..., 0].sum())
    2

    An inverse-variance map in a file of its own (Legacy Surveys' ``-invvar-`` files; 0 = no
    data), read as an ``IVAR`` HDU would be:

    >>> sci = p.with_name("image-r.fits"); ivar = np.full((8, 8), 4.0, np.float32)
    >>> _ = write(sci, np.ones((8, 8), np.float32)); ivar[0, 0] = 0
    >>> _ = write(p.with_name("invvar-r.fits"), ivar)
    >>> img = read(sci, uncertainty=p.with_name("invvar-r.fits"), uncertainty_type="ivar")
    >>> type(img.meta["uncertainty"]).__name__, bool(img.mask[0, 0, 0]), bool(img.mask[1, 1, 0])
    ('InverseVariance', True, False)
    """
    path = user_path(path, error=InvalidImageError)  # ~ expanded; bytes and URLs refused
    if isinstance(mask, (str, os.PathLike, bytes)):
        mask = user_path(mask, error=InvalidImageError, what="mask")
    if isinstance(uncertainty, (str, os.PathLike, bytes)):
        uncertainty = user_path(uncertainty, error=InvalidImageError, what="uncertainty")
    validate_uncertainty_args(uncertainty, uncertainty_type, stack=stack, path=path)
    ignore_flags = validate_ignore_flags(ignore_flags)
    _validate_mask_hdu(mask_hdu)
    number = isinstance(nodata, (int, float, np.integer, np.floating))
    if nodata is not None and (isinstance(nodata, bool) or not number):
        raise ConfigError(f"nodata must be a number or None; got {nodata!r}", path=path)
    with _header_fixes(path) as fixes:
        img = _read_file(
            path,
            hdu=hdu,
            axes=axes,
            stack=stack,
            section=section,
            lazy=lazy,
            level=level,
            series=series,
            mask_hdu=mask_hdu,
            ignore_flags=ignore_flags,
        )
    if fixes:  # said here, where the user's call is the next frame outside sciconv
        warn_caller(
            f"{path}: the FITS header is not standard; astropy read it as fixed: "
            + "; ".join(fixes),
            "sciconv",
        )
    if section is not None:  # where it sits in the file's image (QuPath GeoJSON, QA55 #5)
        origin = _section_origin(img, path, section, hdu=hdu, level=level, series=series)
        img.meta.setdefault("section_origin", origin)
    if nodata is not None:
        img = apply_nodata(img, nodata)
    if mask is not None:
        bad, source = read_mask_source(
            mask,
            shape=img.shape,
            section=section,
            ignore_flags=ignore_flags,
            path=img.path,
            read_fits_flags=read_fits_flags,
            read_other=lambda p, sec: np.asarray(_read_file(p, section=sec, pixels_only=True).data),
            image=img,
        )
        img = apply_bad(img, bad, source=source)
    if uncertainty is not None:  # a separate error map: as an ERR/VAR/IVAR HDU of the file
        img = apply_uncertainty(
            img,
            uncertainty,
            uncertainty_type,
            section=section,
            full_shape=_full_shape(img, path, section, hdu=hdu, level=level, series=series),
            read_file=_read_error_file,
        )
    if lazy and type(img.data) is LazyImage:  # picklable: workers open the file themselves
        mask_arg = mask
        if isinstance(mask, (str, os.PathLike)):  # the worker's working folder may differ
            mask_arg = os.path.abspath(os.fspath(mask))
        unc_arg = uncertainty
        if isinstance(uncertainty, (str, os.PathLike)):
            unc_arg = os.path.abspath(os.fspath(uncertainty))
        img.data.set_reopen(
            _Reopen(
                path,
                dict(
                    hdu=hdu,
                    axes=axes,
                    section=section,
                    level=level,
                    series=series,
                    mask=mask_arg,
                    mask_hdu=mask_hdu,
                    ignore_flags=ignore_flags,
                    nodata=nodata,
                    uncertainty=unc_arg,
                    uncertainty_type=uncertainty_type,
                ),
            )
        )
    return img


def _full_shape(img: GridImage, path, section, *, hdu, level, series) -> tuple[int, int]:
    """The ``(H, W)`` of the image in its file, before ``section``."""
    if section is None:
        return tuple(int(s) for s in img.shape[:2])
    whole = _read_file(
        path, hdu=hdu, level=level, series=series, lazy=True, pixels_only=True, mask_hdu=None
    )
    try:
        return tuple(int(s) for s in whole.data.shape[:2])
    finally:
        whole.data.close()


def _section_origin(img: GridImage, path, section, *, hdu, level, series) -> tuple[int, int]:
    """The first row and column of ``section`` in the file's image (``meta["section_origin"]``,
    :func:`sciconv.io._pyramid.full_resolution_frame`); a negative start counts from its end."""
    starts = [0 if s.start is None else int(s.start) for s in section]
    if min(starts) < 0:
        full = _full_shape(img, path, section, hdu=hdu, level=level, series=series)
        starts = [s.indices(n)[0] for s, n in zip(section, full)]
    return (starts[0], starts[1])


def _read_error_file(path, section, lazy: bool) -> GridImage:
    """A separate error file's pixels (``uncertainty=``): its first image HDU, nothing masked."""
    return _read_file(path, section=section, lazy=lazy, pixels_only=True, mask_hdu=None)


@contextmanager
def _header_fixes(path):
    """Collect astropy's notes on a non-standard FITS header (``VerifyWarning``: a card it
    fixed, in three pieces, no file named) into the yielded list, for one SciconvWarning naming
    the file; other warnings are shown as they are."""
    from astropy.io.fits.verify import VerifyWarning

    from sciconv._warnings import reworded

    fixes: list[str] = []

    def collect(message, category):
        if not issubclass(category, VerifyWarning):
            return message
        text = " ".join(str(message).split())
        if not text.startswith(("Verification reported", "Note: astropy.io.fits")):
            if text not in fixes:
                fixes.append(text)
        return None

    with caught("always", VerifyWarning):
        with reworded(collect):
            yield fixes


class _Reopen:
    """``read(path, lazy=True, **kwargs).data`` when called: how a pickled lazy image opens its
    file again in another process (its open file does not travel)."""

    def __init__(self, path, kwargs: dict):
        self.path, self.kwargs = os.path.abspath(os.fspath(path)), kwargs

    def __call__(self) -> LazyImage:
        with caught("ignore", SciconvWarning):  # said once already, where the image was first read
            return read(self.path, lazy=True, **self.kwargs).data


def _validate_mask_hdu(mask_hdu) -> None:
    if mask_hdu is None or (isinstance(mask_hdu, str) and mask_hdu == "auto"):
        return
    try:
        _validate_read_args(None, hdu=mask_hdu, axes=None, stack=False, section=None, lazy=False)
    except ConfigError as exc:
        raise ConfigError(f"mask_hdu: {exc.message}; or 'auto' or None") from exc


def _read_file(
    path,
    *,
    hdu=None,
    axes=None,
    stack=False,
    section=None,
    lazy=False,
    pixels_only=False,
    level=0,
    series=None,
    mask_hdu="auto",
    ignore_flags=0,
) -> GridImage:
    """:func:`read`; ``pixels_only`` skips what only metadata needs (the WCS, its warnings)."""
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
        raise ConfigError(f"level must be an int (0 = full resolution); got {level!r}")
    auto = isinstance(mask_hdu, str) and mask_hdu == "auto"
    path = user_path(path, error=InvalidImageError)
    if is_zarr(path):
        if not auto and mask_hdu is not None:
            raise ConfigError(f"mask_hdu= applies to FITS files only; got it for {path}")
        if series is not None:
            raise ConfigError(f"series= applies to TIFF files only; got it for {path}")
        return _read_zarr_store(
            Path(path), hdu=hdu, axes=axes, stack=stack, section=section, lazy=lazy, level=level
        )
    if level != 0:
        raise ConfigError(f"level= applies to OME-Zarr stores only; got level={level} for {path}")
    path, kind = validate_path(path)
    _validate_read_args(path, hdu=hdu, axes=axes, stack=stack, section=section, lazy=lazy)
    if kind != "fits" and not auto and mask_hdu is not None:
        raise ConfigError(f"mask_hdu= applies to FITS files only; {path.name} is {kind.upper()}")
    with _reader_failures(path, "unexpected error while reading"):
        return _read(
            path,
            kind,
            hdu=hdu,
            axes=axes,
            stack=stack,
            section=section,
            lazy=lazy,
            pixels_only=pixels_only,
            series=series,
            mask_hdu=mask_hdu,
            ignore_flags=ignore_flags,
        )


@contextmanager
def _reader_failures(path, what: str):
    """Turn a reader library's unforeseen failure into an InvalidImageError naming the file."""
    try:
        yield
    except SciconvError:
        raise
    except MemoryError as exc:
        raise InvalidImageError(
            "not enough memory to read the image; use lazy=True or section=", path=path
        ) from exc
    except Exception as exc:  # a reader library failed in a way not foreseen by the readers
        raise InvalidImageError(
            f"{what} ({brief(exc)}); the file may be damaged", path=path
        ) from exc


def _read_zarr_store(path: Path, *, hdu, axes, stack, section, lazy, level) -> GridImage:
    _validate_read_args(path, hdu=hdu, axes=axes, stack=stack, section=section, lazy=lazy)
    if hdu is not None or axes is not None:
        raise ConfigError("hdu= and axes= do not apply to OME-Zarr; its axes come from NGFF")
    with _reader_failures(path, "cannot read OME-Zarr store"):
        return read_zarr(path, level=int(level), stack=stack, section=section, lazy=lazy)


def _read(
    path: Path,
    kind: str,
    *,
    hdu,
    axes,
    stack,
    section,
    lazy,
    pixels_only,
    mask_hdu,
    ignore_flags,
    series=None,
) -> GridImage:
    if series is not None and kind != "tiff":
        raise ConfigError(f"series= applies to TIFF files only; {path.name} is {kind.upper()}")
    if kind == "fits":
        if axes is not None:
            raise ConfigError("axes= applies to TIFF files only; FITS axes come from the header")
        return read_fits(
            path,
            hdu=hdu,
            stack=stack,
            section=section,
            lazy=lazy,
            pixels_only=pixels_only,
            mask_hdu=mask_hdu,
            ignore_flags=ignore_flags,
        )
    if hdu is not None:
        raise ConfigError(f"hdu= applies to FITS files only; {path.name} is {kind.upper()}")
    if kind == "tiff":
        return read_tiff(
            path,
            axes=axes,
            stack=stack,
            section=section,
            lazy=lazy,
            pixels_only=pixels_only,
            series=series,
        )
    if axes is not None:
        raise ConfigError(f"axes= applies to TIFF files only; {path.name} is {kind.upper()}")
    return read_pil(path, kind=kind, stack=stack, section=section, lazy=lazy)


def _validate_read_args(path, *, hdu, axes, stack, section, lazy) -> None:
    if hdu is not None:
        ok = (
            (isinstance(hdu, (int, np.integer)) and not isinstance(hdu, bool))
            or isinstance(hdu, str)
            or (
                isinstance(hdu, tuple)
                and len(hdu) == 2
                and isinstance(hdu[0], str)
                and isinstance(hdu[1], (int, np.integer))
            )
        )
        if not ok:
            raise ConfigError(
                f"hdu must be an int index, an EXTNAME string or (EXTNAME, EXTVER); got {hdu!r}"
            )
    if axes is not None:
        if not isinstance(axes, str) or not axes:
            raise ConfigError(f"axes must be a string such as 'YX', 'CYX' or 'ZYX'; got {axes!r}")
        up = axes.upper()
        bad = [c for c in up if c not in TIFF_AXES]
        if bad or up.count("Y") != 1 or up.count("X") != 1 or len(set(up)) != len(up):
            raise ConfigError(
                "axes must name each axis once with letters from "
                f"{TIFF_AXES!r}, including exactly one 'Y' and one 'X'; got {axes!r}"
            )
    check_bool(stack, name="stack")
    check_bool(lazy, name="lazy")
    if stack and lazy:
        raise ConfigError("stack=True and lazy=True cannot be combined; read the stack eagerly")
    if section is not None:
        if (
            not isinstance(section, tuple)
            or len(section) != 2
            or not all(isinstance(s, slice) for s in section)
        ):
            raise ConfigError(
                f"section must be a pair of slices (ys, xs), e.g. (slice(0, 64), slice(0, 64)); "
                f"got {section!r}"
            )
        if any(s.step not in (None, 1) for s in section):
            raise ConfigError(f"section slices must have step 1; got {section!r}")


def read_pixels(path: str | os.PathLike) -> np.ndarray:
    """The pixels of an image file, ``(H, W, C)`` float32 with NaN where bad, as fast as it goes.

    The same values as ``read(path).data`` for every file :func:`read` reads. A plain FITS
    cut-out (an uncompressed primary HDU holding a 2-D image without scaling, the usual training
    file) is decoded straight from its bytes, about 20 times faster than :func:`read`; every
    other file goes through :func:`read`. Only the pixels are read: the WCS is never built, so a
    broken WCS gives no warning here.

    Parameters
    ----------
    path : str or os.PathLike
        The file (any format :func:`read` takes).

    Returns
    -------
    numpy.ndarray
        ``(H, W, C)`` float32, NaN at bad pixels.

    Raises
    ------
    InvalidImageError
        As :func:`read`: the file is missing, unreadable, truncated, not an image, ...

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from sciconv.io import probe_shape, read, read_pixels, write
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "cut.fits"
    >>> _ = write(p, np.arange(6, dtype=np.int16).reshape(2, 3))
    >>> read_pixels(p)[..., 0]
    array([[0., 1., 2.],
           [3., 4., 5.]], dtype=float32)
    >>> np.array_equal(read_pixels(p), read(p).data)
    True
    """
    path = user_path(path, error=InvalidImageError)
    fspath = os.fspath(path)
    if isinstance(fspath, str):
        data = read_plain_fits(fspath)
        if data is not None:
            return data
    data = np.asarray(_read_file(path, pixels_only=True).data, dtype=np.float32)
    if data.ndim != 3 or data.shape[0] < 1 or data.shape[1] < 1:
        raise InvalidImageError(f"expected pixels (H, W, C); got shape {data.shape}", path=path)
    return data


def probe_shape(
    path: str | os.PathLike,
    *,
    hdu: int | str | tuple[str, int] | None = None,
    series: int | None = None,
) -> tuple[int, int, int]:
    """The ``(H, W, C)`` an image file would read as, checked cheaply: header, shape, last row.

    Reads the header and the last row of pixels (which catches a truncated file) but not the
    whole image: a plain FITS file (see :func:`read_pixels`) needs only its header and its size,
    other files are opened with ``read(path, lazy=True)``. A file that passes reads whole with
    :func:`read_pixels` unless it is damaged inside.

    Parameters
    ----------
    path : str or os.PathLike
        The file (any format :func:`read` takes).
    hdu : int, str or (str, int), optional
        FITS only: the HDU, as :func:`read` takes it (default: the first holding pixels).
    series : int, optional
        TIFF only: the image of the file, as :func:`read` takes it (default: its main one).

    Returns
    -------
    (int, int, int)
        ``(H, W, C)``, as ``read(path, hdu=hdu, series=series).shape``.

    Raises
    ------
    InvalidImageError
        As :func:`read`: the file is missing, unreadable, truncated, not an image, ...

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from sciconv.io import probe_shape, read, read_pixels, write
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "rgb.tif"
    >>> _ = write(p, np.zeros((6, 8, 3), dtype=np.uint8))
    >>> probe_shape(p)
    (6, 8, 3)
    """
    path = user_path(path, error=InvalidImageError)
    fspath = os.fspath(path)
    if isinstance(fspath, str) and hdu is None and series is None:
        shape = plain_fits_shape(fspath)
        if shape is not None:
            return shape
    data = _read_file(path, hdu=hdu, series=series, lazy=True, pixels_only=True).data
    try:
        shape = tuple(int(s) for s in data.shape)
        if len(shape) != 3 or shape[0] < 1 or shape[1] < 1:
            raise InvalidImageError(f"expected pixels (H, W, C); got shape {shape}", path=path)
        np.asarray(data[shape[0] - 1 : shape[0], 0 : shape[1]])
    finally:
        data.close()
    return shape


def plane_axes(
    path: str | os.PathLike, *, series: int | None = None
) -> tuple[str, tuple[int, ...]]:
    """The time and depth axes of a stack file, as its metadata declare them, and their sizes.

    A TIFF whose OME, ImageJ or tifffile metadata name ``T`` (time points) or ``Z`` (depth
    planes) axes of more than one plane, or an OME-Zarr store whose NGFF axes do, holds a
    stack of 2-D images, not the channels of one:
    ``read(path, stack=True)`` gives its planes ``(N, H, W, C)`` in file order, ``N`` the
    product of the sizes. Segment them plane by plane (``sciconv predict`` does) and write the
    results back with ``write(..., stack_axes=axes)``.

    Parameters
    ----------
    path : str or os.PathLike
        Any file :func:`read` takes.
    series : int, optional
        TIFF only: the image of the file, as :func:`read` takes it (default: its main one).

    Returns
    -------
    (str, tuple of int)
        The axes in file order (``"T"``, ``"Z"``, ``"TZ"``, ...) and their sizes; ``("", ())``
        for other files: single images, FITS cubes, plain multi-page TIFFs
        (whose pages are read as channels), and TIFFs with further axes of unknown kind.

    Raises
    ------
    InvalidImageError
        The file is missing or not readable.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, tifffile
    >>> from sciconv.io import plane_axes, read
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "movie.tif"
    >>> tifffile.imwrite(p, np.zeros((5, 8, 8), np.uint16), metadata={"axes": "TYX"})
    >>> plane_axes(p), read(p, stack=True).shape
    (('T', (5,)), (5, 8, 8, 1))
    """
    path = user_path(path, error=InvalidImageError)
    if is_zarr(path):  # NGFF axes ("t", "z", "c", "y", "x") as the store names them
        with _reader_failures(path, "cannot read OME-Zarr store"):
            return declared_planes(*zarr_axes(Path(path)))
    path, kind = validate_path(path)
    if kind != "tiff":
        if series is not None:
            raise ConfigError(f"series= applies to TIFF files only; {path.name} is {kind.upper()}")
        return "", ()
    return tiff_plane_axes(path, series)
