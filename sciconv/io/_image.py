"""The image types every stage takes: :class:`GridImage`, :class:`LazyImage` and :func:`as_array`.

This is the ground floor of :mod:`sciconv.io`: the readers return these types, and the later
stages (preprocess, inference, postprocess, viz) unwrap whatever image they are given with
:func:`as_array`, the one rule for "an image or an array".
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sciconv.errors import ConfigError
from sciconv.io._header import slice_wcs
from sciconv.io._units import fits_unit


class LazyImage:
    """An image on disk read region by region: ``lazy[y0:y1, x0:x1]`` -> float32 ``(h, w, C)``.

    Returned as ``GridImage.data`` by ``read(..., lazy=True)``. Only the pixels asked for are read
    (FITS through astropy's ``hdu.section``, uncompressed TIFF through a memory map), with
    ``BSCALE``/``BZERO``/``BLANK`` applied and bad pixels set to NaN, exactly as :func:`read` would.
    ``np.asarray(lazy)`` reads everything.

    Attributes
    ----------
    shape : tuple of int
        ``(H, W, C)``.
    dtype : numpy.dtype
        Always float32.
    ndim : int
        Always 3.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from sciconv import io
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "big.fits"
    >>> _ = io.write(p, np.arange(20, dtype=np.int16).reshape(4, 5))
    >>> img = io.read(p, lazy=True)
    >>> img.data.shape
    (4, 5, 1)
    >>> img.data[1:3, 0:2, 0]
    array([[ 5.,  6.],
           [10., 11.]], dtype=float32)
    >>> img.data.close()
    """

    def __init__(
        self,
        reader: Callable[[slice, slice], np.ndarray],
        shape: tuple[int, int, int],
        *,
        path: str | None = None,
        closer: Callable[[], None] | None = None,
    ):
        self._reader = reader
        self._shape = tuple(int(s) for s in shape)
        self._path = path
        self._closer = closer
        self._reopen: Callable[[], LazyImage] | None = None

    def set_reopen(self, reopen: Callable[[], LazyImage] | None) -> None:
        """How another process opens the same pixels: a picklable callable returning a
        LazyImage (:func:`sciconv.io.read` sets it). A pickled image (a ``dask.distributed``
        worker's copy) then carries only that, not the open file, and opens the file itself at
        its first read."""
        self._reopen = reopen

    def __getstate__(self) -> dict:
        if self._reopen is None:
            return dict(self.__dict__)
        return {**self.__dict__, "_reader": None, "_closer": None}

    @property
    def shape(self) -> tuple[int, int, int]:
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def ndim(self) -> int:
        return 3

    @property
    def size(self) -> int:
        return int(np.prod(self._shape))

    def __len__(self) -> int:
        return self._shape[0]

    def __repr__(self) -> str:
        return f"LazyImage(shape={self._shape}, dtype=float32, path={self._path!r})"

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            i = next(i for i, k in enumerate(key) if k is Ellipsis)
            fill = (slice(None),) * (3 - (len(key) - 1))
            key = key[:i] + fill + key[i + 1 :]
        if len(key) > 3:
            raise IndexError(f"too many indices for LazyImage of shape {self._shape}: {key!r}")
        key = key + (slice(None),) * (3 - len(key))
        ky, kx, kc = key
        ys, y_local = _bounding(ky, self._shape[0], "y")
        xs, x_local = _bounding(kx, self._shape[1], "x")
        if ys.stop <= ys.start or xs.stop <= xs.start:
            block = np.empty(
                (max(ys.stop - ys.start, 0), max(xs.stop - xs.start, 0), self._shape[2]),
                dtype=np.float32,
            )
        else:
            if self._reader is None:  # a pickled copy: open the file in this process
                opened = self._reopen()
                self._reader, self._closer = opened._reader, opened._closer
            block = self._reader(ys, xs)
        # index one axis at a time (two index arrays at once would pair up, not cross)
        ints = [i for i, k in enumerate((y_local, x_local)) if isinstance(k, int)]
        block = block[slice(0, 1) if 0 in ints else y_local]
        block = block[:, slice(0, 1) if 1 in ints else x_local]
        block = block[:, :, kc]
        return np.squeeze(block, axis=tuple(ints)) if ints else block

    def __array__(self, dtype=None, copy=None):
        out = self[:, :, :]
        return out if dtype is None else out.astype(dtype)

    def close(self) -> None:
        """Close the file behind this image (reading afterwards raises)."""
        if self._closer is not None:
            self._closer()
            self._closer = None

    def __enter__(self) -> LazyImage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class InMemoryLazy(LazyImage):
    """A LazyImage over an array already in memory (fallback for compressed TIFF/PNG/JPEG)."""

    def __init__(self, array: np.ndarray, path: str | None):
        super().__init__(lambda ys, xs: array[ys, xs], array.shape, path=path)


# length units spelled the way microscopy files spell them -> astropy's spelling
_UNIT_SPELLINGS = {"µm": "um", "\u03bcm": "um", "micron": "um", "microns": "um", "Å": "Angstrom"}


def _parse_unit(unit: Any, *, name: str = "unit"):
    """An astropy unit of length or angle from a file's or a user's spelling, else ConfigError."""
    from astropy import units as u

    if isinstance(unit, u.UnitBase):
        parsed = unit
    else:
        text = str(unit).strip()
        text = _UNIT_SPELLINGS.get(text, _UNIT_SPELLINGS.get(text.lower(), text))
        try:
            parsed = u.Unit(text)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"{name} must be a unit of length or angle (e.g. 'um', 'arcsec'); got {unit!r}"
            ) from exc
    if parsed.physical_type not in ("length", "angle"):
        raise ConfigError(
            f"{name} must be a unit of length or angle (e.g. 'um', 'arcsec'); got {unit!r} "
            f"({parsed.physical_type})"
        )
    return parsed


@dataclasses.dataclass(frozen=True)
class PixelScale:
    """The physical size of one pixel, per axis: ``y`` and ``x`` in ``unit`` per pixel.

    Arcseconds per pixel for a sky image (from its celestial WCS), micrometres per pixel for a
    microscopy image (OME ``PhysicalSizeY/X``, ImageJ calibration, TIFF resolution tags). Pixels
    need not be square. Read it as :attr:`GridImage.pixel_scale`.

    Parameters
    ----------
    y, x : float
        Size of a pixel along the rows and along the columns, > 0.
    unit : str or astropy.units.Unit
        A unit of length (``"um"``, ``"nm"``, ``"µm"``, ``"micron"``) or angle (``"arcsec"``);
        stored as astropy spells it.

    Raises
    ------
    ConfigError
        A size is not a positive finite number, or the unit is not a length or an angle.

    Examples
    --------
    >>> s = PixelScale(0.5, 0.25, "µm")
    >>> s, s.mean, s.quantity
    (PixelScale(y=0.5, x=0.25, unit='um'), 0.3535533905932738, <Quantity [0.5 , 0.25] um>)
    >>> s.to("nm")
    PixelScale(y=500.0, x=250.0, unit='nm')
    """

    y: float
    x: float
    unit: str

    def __post_init__(self):
        for axis in ("y", "x"):
            value = getattr(self, axis)
            ok = not isinstance(value, bool) and isinstance(value, (int, float, np.number))
            if not ok or not np.isfinite(value) or value <= 0:
                raise ConfigError(f"pixel scale {axis} must be a positive number; got {value!r}")
            # 12 significant digits: unit conversions then read as 500.0, not 499.99999999999994
            object.__setattr__(self, axis, float(f"{float(value):.12g}"))
        object.__setattr__(self, "unit", _parse_unit(self.unit).to_string())

    @property
    def quantity(self):
        """``[y, x]`` as an :class:`astropy.units.Quantity` (unit per pixel)."""
        from astropy import units as u

        return u.Quantity([self.y, self.x], self.unit)

    @property
    def mean(self) -> float:
        """Geometric mean of ``y`` and ``x``: the side of a square pixel of the same area."""
        return float(np.sqrt(self.y * self.x))

    def to(self, unit: Any) -> PixelScale:
        """The same scale in another unit of the same kind (length to length, angle to angle).

        Raises
        ------
        ConfigError
            ``unit`` is not a length or angle, or not convertible (micrometres to arcseconds).

        Examples
        --------
        >>> PixelScale(0.1, 0.1, "arcsec").to("mas")
        PixelScale(y=100.0, x=100.0, unit='mas')
        """
        target = _parse_unit(unit)
        try:
            y, x = self.quantity.to_value(target)
        except Exception as exc:  # astropy's UnitConversionError
            raise ConfigError(
                f"a pixel scale in {self.unit} cannot be expressed in {target.to_string()} "
                f"({_parse_unit(self.unit).physical_type} vs {target.physical_type})"
            ) from exc
        return PixelScale(float(y), float(x), target)

    def to_dict(self) -> dict:
        """``{"y": ..., "x": ..., "unit": ...}``: JSON for run configs and model metadata.

        Examples
        --------
        >>> PixelScale.from_value(PixelScale(2.0, 2.0, "um").to_dict())
        PixelScale(y=2.0, x=2.0, unit='um')
        """
        return {"y": self.y, "x": self.x, "unit": self.unit}

    @classmethod
    def from_value(cls, value: Any) -> PixelScale | None:
        """A :class:`PixelScale` from what users and metadata hold; None stays None.

        Parameters
        ----------
        value : PixelScale, dict, astropy Quantity, str, (y, x, unit) or None
            A dict as :meth:`to_dict` writes; a scalar Quantity (square pixels) or one of two
            values ``[y, x]``; a string astropy reads as a Quantity (``"0.65 um"``).

        Raises
        ------
        ConfigError
            Anything else, a number without a unit among it.

        Examples
        --------
        >>> import astropy.units as u
        >>> PixelScale.from_value(0.65 * u.um), PixelScale.from_value("0.2 arcsec").unit
        (PixelScale(y=0.65, x=0.65, unit='um'), 'arcsec')
        """
        from astropy import units as u

        if value is None or isinstance(value, PixelScale):
            return value
        try:
            if isinstance(value, dict):
                return cls(value["y"], value["x"], value["unit"])
            if isinstance(value, str):
                value = u.Quantity(value)
            if isinstance(value, u.Quantity):
                v = np.atleast_1d(value.value).astype(float)
                if v.shape in ((1,), (2,)):
                    return cls(float(v[0]), float(v[-1]), value.unit)
            elif isinstance(value, (tuple, list)) and len(value) == 3:
                return cls(value[0], value[1], value[2])
        except ConfigError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                "a pixel scale must be a PixelScale, {'y', 'x', 'unit'}, a Quantity such as "
                f"0.65 * u.um, or (y, x, unit); got {value!r}"
            ) from exc
        raise ConfigError(
            "a pixel scale must be a PixelScale, {'y', 'x', 'unit'}, a Quantity such as "
            f"0.65 * u.um, or (y, x, unit); got {value!r} (a number needs its unit)"
        )

    @classmethod
    def from_wcs(cls, wcs: Any) -> PixelScale | None:
        """Arcseconds per pixel of a celestial WCS (``proj_plane_pixel_scales``); else None.

        Non-square pixels give different ``y`` and ``x``; a WCS that is not celestial (solar,
        spectral) or whose pixel scale cannot be computed gives None.

        Examples
        --------
        >>> from astropy.wcs import WCS
        >>> w = WCS(naxis=2); w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        >>> w.wcs.cdelt = [-0.1 / 3600, 0.2 / 3600]
        >>> PixelScale.from_wcs(w)
        PixelScale(y=0.2, x=0.1, unit='arcsec')
        """
        from astropy import units as u
        from astropy.wcs.utils import proj_plane_pixel_scales

        if wcs is None or not getattr(wcs, "has_celestial", False):
            return None
        try:
            cel = wcs.celestial
            sx, sy = proj_plane_pixel_scales(cel)[:2]
            units = [str(cel.wcs.cunit[i]) or "deg" for i in range(2)]
            sx = (sx * u.Unit(units[0])).to_value(u.arcsec)
            sy = (sy * u.Unit(units[1])).to_value(u.arcsec)
            return cls(float(sy), float(sx), "arcsec")
        except Exception:  # singular matrix, odd units: the scale is unknown, not an error
            return None


def _scale_from_meta(meta: dict) -> PixelScale | None:
    """The scale a reader left in ``meta["pixel_size"]`` / ``meta["pixel_unit"]``, or None."""
    size, unit = meta.get("pixel_size"), meta.get("pixel_unit")
    if size is None or unit in (None, "", "pixel", "pixels"):
        return None
    try:
        return PixelScale(float(size[0]), float(size[1]), unit)
    except (ConfigError, TypeError, ValueError, IndexError):
        return None


@dataclasses.dataclass(repr=False)
class GridImage:
    """An image with its metadata: pixels channels-last plus FITS header, WCS and bad-pixel mask.

    Parameters
    ----------
    data : numpy.ndarray or LazyImage
        ``(H, W, C)`` float32, NaN where bad; ``(N, H, W, C)`` when read with ``stack=True``; a
        :class:`LazyImage` when read with ``lazy=True``.
    header : astropy.io.fits.Header or None
        The header of the HDU read (FITS only).
    wcs : astropy.wcs.WCS or None
        Celestial 2-D WCS of the pixel grid, or None.
    mask : numpy.ndarray or None
        Bool, same shape as ``data``, True = bad pixel. None when lazy.
    path : str or None
        The file read.
    meta : dict
        Format, original dtype and axes, HDU index and EXTNAME, BUNIT, ...

    Attributes
    ----------
    pixel_scale : PixelScale or None
        Physical size of a pixel (arcsec from the WCS, µm from microscopy metadata), or None.

    Examples
    --------
    >>> import numpy as np
    >>> img = GridImage(np.zeros((4, 6, 1), dtype=np.float32))
    >>> img.cutout(1, 3, 2, 6).shape
    (2, 4, 1)
    """

    data: Any
    header: Any = None
    wcs: Any = None
    mask: np.ndarray | None = None
    path: str | None = None
    meta: dict = dataclasses.field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``data``: ``(H, W, C)`` (or ``(N, H, W, C)`` for a stack)."""
        return tuple(self.data.shape)

    @property
    def pixel_scale(self) -> PixelScale | None:
        """The physical size of a pixel when the file says it, else None.

        In order: ``meta["pixel_scale"]`` when set (anything :meth:`PixelScale.from_value`
        takes); arcsec/pixel from the celestial ``wcs``; the length per pixel the reader found
        (``meta["pixel_size"]`` in ``meta["pixel_unit"]``: OME-TIFF ``PhysicalSizeY/X``, ImageJ
        calibration, TIFF resolution tags, OME-Zarr scale).

        Examples
        --------
        >>> import numpy as np
        >>> img = GridImage(np.zeros((2, 2, 1), np.float32), meta={"pixel_size": (0.5, 0.5),
        ...                                                        "pixel_unit": "µm"})
        >>> img.pixel_scale
        PixelScale(y=0.5, x=0.5, unit='um')
        >>> GridImage(np.zeros((2, 2, 1), np.float32)).pixel_scale is None
        True
        """
        if self.meta.get("pixel_scale") is not None:
            return PixelScale.from_value(self.meta["pixel_scale"])
        return PixelScale.from_wcs(self.wcs) or _scale_from_meta(self.meta)

    @property
    def unit(self):
        """The pixels' astropy unit: an NDData's, else the FITS ``BUNIT`` read as
        :func:`sciconv.io.fits_unit` reads it (``ELECTRONS`` -> electron); None when unknown.

        Examples
        --------
        >>> import numpy as np
        >>> str(GridImage(np.zeros((2, 2, 1), np.float32), meta={"bunit": "ELECTRONS/S"}).unit)
        'electron / s'
        """
        if self.meta.get("unit") is None and self.meta.get("bunit"):
            return fits_unit(self.meta["bunit"], self.path)
        return self.meta.get("unit")

    def __repr__(self) -> str:
        wcs = "None" if self.wcs is None else "/".join(self.wcs.wcs.ctype)
        return (
            f"GridImage(shape={self.shape}, path={self.path!r}, wcs={wcs}, "
            f"header={'None' if self.header is None else f'<{len(self.header)} cards>'})"
        )

    def cutout(self, y0: int, y1: int, x0: int, x1: int) -> GridImage:
        """Return the pixels ``[y0:y1, x0:x1]`` with the WCS (and header WCS keywords) shifted.

        Parameters
        ----------
        y0, y1, x0, x1 : int
            Row and column bounds, ``0 <= y0 < y1 <= H`` and ``0 <= x0 < x1 <= W``.

        Returns
        -------
        GridImage
            In memory (a cutout of a lazy image reads only that region).

        Examples
        --------
        >>> import numpy as np
        >>> img = GridImage(np.arange(12, dtype=np.float32).reshape(3, 4, 1))
        >>> img.cutout(1, 3, 1, 3).data[..., 0]
        array([[ 5.,  6.],
               [ 9., 10.]], dtype=float32)
        """
        shape = self.shape
        ny, nx = shape[-3], shape[-2]
        ys = _validate_bounds(y0, y1, ny, "y", self.path)
        xs = _validate_bounds(x0, x1, nx, "x", self.path)
        if isinstance(self.data, LazyImage):
            data = self.data[ys, xs]
        else:
            data = np.array(self.data[..., ys, xs, :])
        if self.mask is not None:
            mask = np.array(self.mask[..., ys, xs, :])
        else:
            mask = np.isnan(data)
        wcs, header = slice_wcs(self.wcs, self.header, ys, xs)
        meta = dict(self.meta)
        meta["cutout"] = (int(ys.start), int(ys.stop), int(xs.start), int(xs.stop))
        if meta.get("uncertainty") is not None:  # an NDData's per-pixel error bars: the same cut
            meta["uncertainty"] = _cut_uncertainty(meta["uncertainty"], (ny, nx), ys, xs)
        return GridImage(data, header=header, wcs=wcs, mask=mask, path=self.path, meta=meta)

    def to_nddata(self, *, ccd: bool = False):
        """This image as an :class:`astropy.nddata.NDData` (or ``CCDData``), nothing dropped.

        The pixels go to ``data`` as astropy orders them: ``(H, W)`` for one channel, ``(C, H,
        W)`` for several (the FITS order); ``mask`` (True = bad), ``wcs``, the unit (``BUNIT``,
        or the unit of an NDData the image came from), the uncertainty and PSF of an NDData the
        image came from are carried, and ``meta`` is a copy of the FITS header (an empty dict when
        there is none): the astropy convention, so ``CCDData.write`` and photutils take it.
        :meth:`from_nddata` is the inverse.

        Parameters
        ----------
        ccd : bool, optional
            Return a :class:`astropy.nddata.CCDData` (unit ``dimensionless`` when none is known).
            Default False: an ``NDData``.

        Returns
        -------
        astropy.nddata.NDData or astropy.nddata.CCDData

        Raises
        ------
        ConfigError
            The image is a stack ``(N, H, W, C)``.

        Examples
        --------
        >>> import numpy as np
        >>> img = GridImage(np.ones((3, 4, 1), np.float32), mask=np.zeros((3, 4, 1), bool))
        >>> nd = img.to_nddata(ccd=True)
        >>> type(nd).__name__, nd.data.shape, nd.mask.shape, str(nd.unit)
        ('CCDData', (3, 4), (3, 4), '')
        >>> GridImage.from_nddata(nd).shape
        (3, 4, 1)
        """
        from astropy import units as u
        from astropy.nddata import CCDData, NDData

        if len(self.shape) != 3:
            raise ConfigError(f"to_nddata needs one image (H, W, C); got shape {self.shape}")
        data = np.asarray(self.data)
        mask = None if self.mask is None else np.asarray(self.mask, dtype=bool)
        if data.shape[-1] == 1:
            data = data[..., 0]
            mask = None if mask is None else mask[..., 0]
        else:
            data = np.moveaxis(data, -1, 0)
            mask = None if mask is None else np.moveaxis(mask, -1, 0)
        unit = self.unit
        meta = {} if self.header is None else self.header.copy()
        kwargs = dict(mask=mask, wcs=self.wcs, meta=meta, psf=self.meta.get("psf"))
        if ccd:
            return CCDData(
                data,
                unit=unit or u.dimensionless_unscaled,
                uncertainty=self.meta.get("uncertainty"),
                **kwargs,
            )
        return NDData(data, unit=unit, uncertainty=self.meta.get("uncertainty"), **kwargs)

    @classmethod
    def from_nddata(cls, nd) -> GridImage:
        """A :class:`GridImage` from an :class:`astropy.nddata.NDData` (or ``CCDData``).

        ``data`` ``(H, W)`` or ``(C, H, W)`` becomes ``(H, W, C)`` float32 with the masked pixels
        set to NaN (as :func:`sciconv.io.read` does, so prediction skips them); ``mask`` (True =
        bad, plus non-finite pixels) and the celestial ``wcs`` are kept; ``meta`` becomes the
        ``header`` when it holds FITS cards; the unit (``meta["unit"]``, ``meta["bunit"]``),
        uncertainty (``meta["uncertainty"]``), PSF (``meta["psf"]``) and a ``meta`` that is not
        a header (``meta["nddata_meta"]``) are kept for :meth:`to_nddata`.

        Parameters
        ----------
        nd : astropy.nddata.NDData
            E.g. ``CCDData.read("frame.fits", unit="adu")``.

        Returns
        -------
        GridImage

        Raises
        ------
        ConfigError
            ``nd`` is not an NDData, or its data is not 2-D or 3-D.

        Examples
        --------
        >>> import numpy as np
        >>> from astropy.nddata import CCDData
        >>> mask = np.zeros((2, 3), bool); mask[0, 0] = True
        >>> img = GridImage.from_nddata(CCDData(np.ones((2, 3)), unit="adu", mask=mask))
        >>> img.shape, img.data[0, 0, 0], img.meta["bunit"]
        ((2, 3, 1), np.float32(nan), 'adu')
        """
        from astropy.io import fits

        if not is_nddata(nd):
            raise ConfigError(
                f"from_nddata needs an astropy NDData or CCDData; got {type(nd).__name__}"
            )
        data = np.asarray(nd.data, dtype=np.float32)
        if data.ndim not in (2, 3):
            raise ConfigError(f"NDData must hold (H, W) or (C, H, W) data; got shape {data.shape}")
        mask = None if nd.mask is None else np.broadcast_to(np.asarray(nd.mask, bool), data.shape)
        data = data[..., None] if data.ndim == 2 else np.moveaxis(data, 0, -1)
        if mask is not None:
            mask = mask[..., None] if mask.ndim == 2 else np.moveaxis(mask, 0, -1)
            mask = mask | ~np.isfinite(data)
            data = np.where(mask, np.float32(np.nan), data)
        else:
            mask = ~np.isfinite(data)
        wcs = nd.wcs
        if wcs is not None and not getattr(wcs, "has_celestial", False):
            wcs = None
        elif wcs is not None and wcs.naxis > 2:
            wcs = wcs.celestial
        meta, header = {}, None
        if isinstance(nd.meta, fits.Header):
            header = nd.meta.copy()
        elif nd.meta:
            try:
                header = fits.Header(dict(nd.meta))
            except (ValueError, TypeError, KeyError):
                meta["nddata_meta"] = nd.meta
        if nd.unit is not None:
            try:
                bunit = nd.unit.to_string("fits")
            except ValueError:  # not a FITS unit: keep astropy's spelling
                bunit = nd.unit.to_string()
            meta["unit"], meta["bunit"] = nd.unit, bunit
        if nd.uncertainty is not None:
            meta["uncertainty"] = nd.uncertainty
        if nd.psf is not None:
            meta["psf"] = nd.psf
        meta["format"] = "nddata"
        return cls(data, header=header, wcs=wcs, mask=mask, meta=meta)


def as_array(image: Any, *, load: bool = False) -> Any:
    """The pixels of an image, whatever it came as: the one way every stage unwraps an image.

    Parameters
    ----------
    image : GridImage, astropy.nddata.NDData or array_like
        A :class:`GridImage` gives its ``.data``; an :class:`astropy.nddata.NDData` (and
        ``CCDData``) gives its ``.data`` (its mask, uncertainty and unit are not applied); any
        other array-like (numpy array, memory map, :class:`LazyImage`, dask or zarr array) is
        returned as it is.
    load : bool
        Return a :class:`numpy.ndarray`, reading a :class:`LazyImage`, dask or zarr array whole.
        Default False: nothing is read and the array keeps its type.

    Returns
    -------
    array_like or numpy.ndarray
        The pixels, with their shape and dtype unchanged.

    Raises
    ------
    ConfigError
        ``load`` is not True or False.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((4, 5, 1), dtype=np.float32)
    >>> as_array(GridImage(x)) is x
    True
    >>> lazy = LazyImage(lambda ys, xs: x[ys, xs], x.shape)
    >>> as_array(lazy) is lazy, type(as_array(lazy, load=True)).__name__
    (True, 'ndarray')
    >>> from astropy.nddata import NDData
    >>> as_array(NDData(x)).shape
    (4, 5, 1)
    """
    if not isinstance(load, (bool, np.bool_)):
        raise ConfigError(f"load must be True or False; got {load!r}")
    if isinstance(image, GridImage):
        data = image.data
    elif is_nddata(image):
        data = image.data
    else:
        data = image
    if load and type(data) is not np.ndarray:
        data = np.asarray(data)
    return data


def read_pixel_scale(path: str | os.PathLike) -> PixelScale | None:
    """The pixel scale a file states, reading only its metadata (no pixels).

    Same answer as ``read(path).pixel_scale``: arcsec/pixel from a FITS file's celestial WCS,
    µm/pixel from OME-TIFF, ImageJ or TIFF resolution tags and OME-Zarr; None when the file
    does not say (PNG, JPEG, a FITS file without a celestial WCS).

    Parameters
    ----------
    path : str or os.PathLike
        An image file or an OME-Zarr store.

    Returns
    -------
    PixelScale or None

    Raises
    ------
    InvalidImageError
        The file is missing or not a readable image.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, tifffile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "cells.tif"
    >>> tifffile.imwrite(p, np.zeros((4, 4), "uint8"), resolution=(2e4, 2e4),
    ...                  resolutionunit="CENTIMETER")
    >>> read_pixel_scale(p)
    PixelScale(y=0.5, x=0.5, unit='um')
    """
    from sciconv.io import read  # the package imports this module: import it when called
    from sciconv.io._files import format_from_name, is_zarr

    fmt = None if is_zarr(path) else format_from_name(Path(path))
    if fmt in ("png", "jpeg"):
        return None
    if fmt == "tiff":
        from sciconv.io._files import validate_path
        from sciconv.io._tiff import tiff_scale_meta

        return _scale_from_meta(tiff_scale_meta(validate_path(path)[0]))
    image = read(path, lazy=True)
    if isinstance(image.data, LazyImage):
        image.data.close()
    return image.pixel_scale


def is_nddata(value: Any) -> bool:
    """Whether ``value`` is an astropy ``NDData`` (``CCDData``, ...), without importing astropy.

    An NDData instance exists only once ``astropy.nddata`` was imported, so no import is needed.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.nddata import CCDData
    >>> is_nddata(CCDData(np.zeros((2, 2)), unit="adu")), is_nddata(np.zeros((2, 2)))
    (True, False)
    """
    nddata = sys.modules.get("astropy.nddata")
    return nddata is not None and isinstance(value, nddata.NDData)


def _cut_uncertainty(uncertainty, shape: tuple[int, int], ys: slice, xs: slice):
    """An NDUncertainty cut like the pixels (over its last two axes); None if it does not span
    the image (then no error bar is better than a misaligned one)."""
    array = getattr(uncertainty, "array", None)
    if array is None or np.ndim(array) < 2 or tuple(np.shape(array)[-2:]) != tuple(shape):
        return None
    return uncertainty[(..., ys, xs)]


def _validate_bounds(lo, hi, n: int, name: str, path) -> slice:
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ConfigError(f"cutout bounds must be ints; got {name}0={lo!r}, {name}1={hi!r}")
    if not 0 <= lo < hi <= n:
        raise ConfigError(
            f"cutout {name}-range [{lo}, {hi}) is empty or outside the image (0 to {n})", path=path
        )
    return slice(int(lo), int(hi))


def _bounding(key, n: int, name: str) -> tuple[slice, Any]:
    """Smallest step-1 range covering ``key`` on an axis of length ``n`` and the local index."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        i = int(key)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of bounds for {name} with size {n}")
        i %= n
        return slice(i, i + 1), 0
    if isinstance(key, slice):
        r = range(*key.indices(n))
        if len(r) == 0:
            return slice(0, 0), slice(None)
        lo, hi = min(r), max(r) + 1
        if r.step == 1:
            return slice(lo, hi), slice(None)
        return slice(lo, hi), np.asarray(r) - lo
    raise IndexError(f"LazyImage supports ints and slices on {name}; got {key!r}")
