"""The image types every stage takes: :class:`GridImage`, :class:`LazyImage` and :func:`as_array`.

This is the ground floor of :mod:`sciconv.io`: the readers return these types, and the later
stages (preprocess, inference, postprocess, viz) unwrap whatever image they are given with
:func:`as_array`, the one rule for "an image or an array".
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from sciconv._validation import check_bool
from sciconv.errors import ConfigError, InvalidImageError
from sciconv.io._header import (
    kept_plane_cards,
    plane_history,
    replace_wcs_cards,
    single_plane_header,
    slice_wcs,
    unit_card,
)
from sciconv.io._scale import PixelScale, scale_from_meta
from sciconv.io._units import fits_unit


class LazyImage:
    """An image on disk read region by region: ``lazy[y0:y1, x0:x1]`` -> float32 ``(h, w, C)``.

    Returned as ``GridImage.data`` by ``read(..., lazy=True)``. Only the pixels asked for are read
    (FITS through astropy's ``hdu.section``, uncompressed TIFF through a memory map), with
    ``BSCALE``/``BZERO``/``BLANK`` applied and bad pixels set to NaN, exactly as :func:`read` would.
    ``np.asarray(lazy)`` reads everything.

    Parameters
    ----------
    reader : callable
        ``reader(ys, xs)`` returns the float32 ``(h, w, C)`` pixels of the rows and columns in
        the slices ``ys``, ``xs`` (steps 1, within the image).
    shape : (int, int, int)
        ``(H, W, C)`` of the whole image.
    path : str, optional
        The file, named in errors and the repr. Default None.
    closer : callable, optional
        Called without arguments by :meth:`close` (once). Default None: nothing to close.

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
        self._pid = os.getpid()  # a forked child opens the file itself (a shared file position)

    def set_reopen(self, reopen: Callable[[], LazyImage] | None) -> None:
        """How another process opens the same pixels: a picklable callable returning a
        LazyImage (:func:`sciconv.io.read` sets it). A pickled image (a ``dask.distributed``
        worker's copy) then carries only that, not the open file, and opens the file itself at
        its first read.

        Parameters
        ----------
        reopen : callable or None
            Called without arguments, returns a LazyImage of the same pixels; None: a pickled
            image carries its reader as it is.
        """
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
            forked = self._reopen is not None and self._pid != os.getpid()  # QA: wrong tiles
            if self._reader is None or forked:  # a pickled copy, a forked child: its own file
                opened, self._pid = self._reopen(), os.getpid()
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

    def channel(self, k: int) -> LazyImage:
        """A lazy view of channel ``k`` (shape ``(H, W, 1)``): reads still read only their
        window, so a multi-channel whole slide can be segmented on one channel block by block.

        Parameters
        ----------
        k : int
            The channel, from 0 to C - 1.

        Examples
        --------
        >>> import numpy as np
        >>> from sciconv.io import LazyImage
        >>> x = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
        >>> lazy = LazyImage(lambda ys, xs: x[ys, xs], x.shape)
        >>> view = lazy.channel(1)
        >>> view.shape, view[0, 1:3, 0].tolist()
        ((2, 4, 1), [4.0, 7.0])
        """
        n = self._shape[2]
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 0 <= k < n:
            raise ConfigError(
                f"channel must be an int from 0 to {n - 1} (the image has {n}); got {k!r}",
                path=self._path,
            )
        return LazyImage(
            functools.partial(_read_channel, self, int(k)),
            (*self._shape[:2], 1),
            path=self._path,
            closer=self.close,
        )

    def close(self) -> None:
        """Close the file behind this image (reading afterwards raises)."""
        if self._closer is not None:
            self._closer()
            self._closer = None

    def __enter__(self) -> LazyImage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_channel(parent: LazyImage, k: int, ys: slice, xs: slice) -> np.ndarray:
    """:meth:`LazyImage.channel`'s reader (module level: the view pickles with its parent)."""
    return parent[ys, xs, k : k + 1]


class InMemoryLazy(LazyImage):
    """A LazyImage over an array already in memory (fallback for compressed TIFF/PNG/JPEG)."""

    def __init__(self, array: np.ndarray, path: str | None):  # pickles with its array (QA)
        super().__init__(functools.partial(_window_of, array), array.shape, path=path)


def _window_of(array: np.ndarray, ys: slice, xs: slice) -> np.ndarray:
    """:class:`InMemoryLazy`'s reader."""
    return array[ys, xs]


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
    >>> from sciconv.io import GridImage
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
        >>> from sciconv.io import GridImage
        >>> img = GridImage(np.zeros((2, 2, 1), np.float32), meta={"pixel_size": (0.5, 0.5),
        ...                                                        "pixel_unit": "µm"})
        >>> img.pixel_scale
        PixelScale(y=0.5, x=0.5, unit='um')
        >>> GridImage(np.zeros((2, 2, 1), np.float32)).pixel_scale is None
        True
        """
        if self.meta.get("pixel_scale") is not None:
            return PixelScale.from_value(self.meta["pixel_scale"])
        return PixelScale.from_wcs(self.wcs) or scale_from_meta(self.meta)

    @property
    def unit(self):
        """The pixels' astropy unit: an NDData's, else the FITS ``BUNIT`` or AIA's ``PIXLUNIT``
        (``meta["bunit"]``, else :func:`sciconv.io.unit_card` of the header) read leniently
        (``ELECTRONS`` -> electron); None when unknown.

        Examples
        --------
        >>> import numpy as np
        >>> from sciconv.io import GridImage
        >>> str(GridImage(np.zeros((2, 2, 1), np.float32), meta={"bunit": "ELECTRONS/S"}).unit)
        'electron / s'
        """
        bunit = self.meta.get("bunit")
        if not bunit and self.header is not None:  # GridImage(pixels, header=...): its BUNIT
            bunit = unit_card(self.header)  # BUNIT, else PIXLUNIT; unparsable: none (review)
        if self.meta.get("unit") is None and bunit:
            cached = self.__dict__.get("_read_bunit")  # read once: an unreadable one warns once
            if cached is None or cached[0] != bunit:
                cached = (bunit, fits_unit(bunit, self.path))
                self.__dict__["_read_bunit"] = cached
            return cached[1]
        return self.meta.get("unit")

    def close(self) -> None:
        """Close the file a lazily read image keeps open (nothing for pixels in memory).

        Examples
        --------
        >>> import numpy as np
        >>> from sciconv.io import GridImage
        >>> with GridImage(np.zeros((2, 2, 1), np.float32)) as img:
        ...     img.shape
        (2, 2, 1)
        """
        closer = getattr(self.data, "close", None)
        if callable(closer) and not isinstance(self.data, np.ndarray):
            closer()

    def __enter__(self) -> GridImage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        wcs = "None" if self.wcs is None else "/".join(self.wcs.wcs.ctype)
        return (
            f"GridImage(shape={self.shape}, path={self.path!r}, wcs={wcs}, "
            f"header={'None' if self.header is None else f'<{len(self.header)} cards>'})"
        )

    def channel(self, k: int) -> GridImage:
        """The image reduced to its channel ``k``: pixels ``(H, W, 1)`` (a lazy view when
        ``data`` is lazy, so a whole slide stays on disk), its mask channel, its channel name;
        header, WCS and pixel scale kept. A FITS cube's plane keeps its spectral/Stokes axis in
        its header as a degenerate one (``NAXIS3 = 1``, ``CRPIX3`` shifted by ``k``): its
        catalogs and products name the plane's frequency or velocity
        (:func:`sciconv.io.plane_coordinates`).

        Parameters
        ----------
        k : int
            The channel, from 0 to C - 1.

        Raises
        ------
        ConfigError
            If the pixels are not ``(H, W, C)`` or ``k`` is not a channel.

        Examples
        --------
        >>> import numpy as np
        >>> from sciconv.io import GridImage
        >>> names = {"channel_names": ["DAPI", "GFP"]}
        >>> img = GridImage(np.zeros((2, 3, 2), np.float32), meta=names)
        >>> one = img.channel(1)
        >>> one.shape, one.meta["channel_names"]
        ((2, 3, 1), ['GFP'])
        """
        if len(self.data.shape) != 3:
            raise ConfigError(
                f"channel() needs pixels (H, W, C); got shape {tuple(self.data.shape)}",
                path=self.path,
            )
        n = int(self.data.shape[-1])
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 0 <= k < n:
            raise ConfigError(
                f"channel must be an int from 0 to {n - 1} (the image has {n}); got {k!r}",
                path=self.path,
            )
        k = int(k)
        data = (
            self.data.channel(k) if isinstance(self.data, LazyImage) else self.data[..., k : k + 1]
        )
        mask = self.mask
        if mask is not None and mask.ndim == 3 and mask.shape[-1] == n:
            mask = mask[..., k : k + 1]
        meta = dict(self.meta)
        names = meta.get("channel_names")
        if isinstance(names, (list, tuple)) and len(names) == n:
            meta["channel_names"] = [names[k]]
        # a cube's plane keeps its frequency, and its own beam (a CASA BEAMS table)
        header = single_plane_header(self.header, k, n, self.meta.get("beams"))
        return dataclasses.replace(self, data=data, mask=mask, meta=meta, header=header)

    def cutout(self, y0: int, y1: int, x0: int, x1: int) -> GridImage:
        """Return the pixels ``[y0:y1, x0:x1]`` with the WCS (and header WCS keywords) shifted.

        Parameters
        ----------
        y0, y1, x0, x1 : int
            Row and column bounds, ``0 <= y0 < y1 <= H`` and ``0 <= x0 < x1 <= W`` (``y1``,
            ``x1`` exclusive: a catalog row's object is ``cutout(bbox_ymin, bbox_ymax + 1,
            bbox_xmin, bbox_xmax + 1)``, its maxima being the last row and column).

        Returns
        -------
        GridImage
            In memory (a cutout of a lazy image reads only that region).

        Examples
        --------
        >>> import numpy as np
        >>> from sciconv.io import GridImage
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
        mask = np.isnan(data) if self.mask is None else np.array(self.mask[..., ys, xs, :])
        wcs, header = slice_wcs(self.wcs, self.header, ys, xs)
        meta = dict(self.meta)
        meta["cutout"] = (int(ys.start), int(ys.stop), int(xs.start), int(xs.stop))
        if self.path is not None or meta.get("section_origin"):  # where it sits in its file
            oy, ox = meta.get("section_origin") or (0, 0)  # (full_resolution_frame, GeoJSON)
            meta["section_origin"] = (int(oy) + int(ys.start), int(ox) + int(xs.start))
        if meta.get("uncertainty") is not None:  # an NDData's per-pixel error bars: the same cut
            meta["uncertainty"] = _cut_uncertainty(meta["uncertainty"], (ny, nx), ys, xs)
        windows = meta.pop("uncertainty_windows", None)  # a lazy file's error HDU: read now
        if windows is not None:
            from astropy.nddata import StdDevUncertainty

            try:
                cut = windows.read((ys.start, ys.stop), (xs.start, xs.stop))
            except Exception:  # unreadable now: the pixels without error bars, as read eagerly
                cut = None
            if cut is not None:
                meta["uncertainty"] = StdDevUncertainty(cut)
        return GridImage(data, header=header, wcs=wcs, mask=mask, path=self.path, meta=meta)

    def to_nddata(self, *, ccd: bool = False):
        """This image as an :class:`astropy.nddata.NDData` (or ``CCDData``).

        The pixels go to ``data`` as astropy orders them: ``(H, W)`` for one channel, ``(C, H,
        W)`` for several (the FITS order); ``mask`` (True = bad), ``wcs``, the unit (``BUNIT``,
        or the unit of an NDData the image came from), the uncertainty and PSF of an NDData the
        image came from are carried, and ``meta`` is a copy of the FITS header (an empty dict when
        there is none; an NDData's own non-FITS meta as it was): the astropy convention, so
        ``CCDData.write`` and photutils take it. :meth:`from_nddata` is the inverse, but for the
        values of masked pixels: sciconv holds them as NaN (the mask says they are bad), so they
        come back NaN, not as the values the file had.

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
        >>> from sciconv.io import GridImage
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
        # the header's own WCS cards give way to the WCS carried (astropy writes it beside
        # ``meta``: a DSS plate solution next to its TPD translation aborts astropy's reader)
        meta = {} if self.header is None else self.header.copy()
        if self.header is not None and self.wcs is not None:
            meta = replace_wcs_cards(self.header, self.wcs)
            planes = int(self.data.shape[-1])
            meta.update(kept_plane_cards(self.header, planes))  # a cube's spectral axis stays
            plane = plane_history(self.header) if planes == 1 else None
            if plane is not None:  # one plane of it (2-D WCS): its frequency in words
                meta.add_history(plane)
        wcs = self.wcs
        if self.meta.get("nddata_meta") is not None:  # an NDData's own meta, as it was given
            meta = copy.copy(self.meta["nddata_meta"])
        full = self.meta.get("nddata_wcs")  # its WCS's other axes (spectral, slit), not read
        same = self.meta.get("nddata_shape") == tuple(self.shape)  # not a cutout of it (review)
        if full is not None and same and getattr(full, "pixel_n_dim", None) == data.ndim:
            wcs = full
        kwargs = dict(mask=mask, wcs=wcs, meta=meta, psf=self.meta.get("psf"))
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
        uncertainty (``meta["uncertainty"]``), PSF (``meta["psf"]``), a ``meta`` that is not
        a header (``meta["nddata_meta"]``, the dict as given) and a WCS with other axes than
        the celestial ones sciconv reads (``meta["nddata_wcs"]``: a cube's spectral axis, a
        slit's) are kept for :meth:`to_nddata`.

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
        >>> from sciconv.io import GridImage
        >>> from astropy.nddata import CCDData
        >>> mask = np.zeros((2, 3), bool); mask[0, 0] = True
        >>> img = GridImage.from_nddata(CCDData(np.ones((2, 3)), unit="adu", mask=mask))
        >>> img.shape, float(img.data[0, 0, 0]), img.meta["bunit"]
        ((2, 3, 1), nan, 'adu')
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
        if wcs is not nd.wcs:  # the axes sciconv does not read, given back by to_nddata
            meta["nddata_wcs"], meta["nddata_shape"] = nd.wcs, tuple(data.shape)
        if isinstance(nd.meta, fits.Header):
            header = nd.meta.copy()
        elif nd.meta:
            meta["nddata_meta"] = nd.meta  # to_nddata gives it back as it was (QA: lost)
            try:
                header = fits.Header(dict(nd.meta))
            except (ValueError, TypeError, KeyError):
                pass
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
        A :class:`GridImage` and an :class:`astropy.nddata.NDData` (and ``CCDData``) give
        their ``.data`` with the pixels their ``.mask`` flags NaN, sciconv's bad pixels (an
        ``(H, W)`` mask flags every channel; the uncertainty and unit are not applied); so does
        a :class:`numpy.ma.MaskedArray` (a copy, promoted to float32, or float64 for 32- and
        64-bit integers, when it holds integers; unchanged when nothing is masked or every
        masked pixel is NaN already, as :func:`read` gives them); a pandas DataFrame or Series gives
        ``.to_numpy()``; any other array-like (numpy array, memory map, :class:`LazyImage`,
        dask or zarr array) is returned as it is.
    load : bool
        Return a :class:`numpy.ndarray`, reading a :class:`LazyImage`, dask or zarr array whole.
        Default False: nothing is read and the array keeps its type.

    Returns
    -------
    array_like or numpy.ndarray
        The pixels, with their shape unchanged (and their dtype, but for a masked array's
        promotion to float).

    Raises
    ------
    ConfigError
        ``load`` is not True or False.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.io import GridImage, LazyImage, as_array
    >>> x = np.zeros((4, 5, 1), dtype=np.float32)
    >>> as_array(GridImage(x)) is x
    True
    >>> lazy = LazyImage(lambda ys, xs: x[ys, xs], x.shape)
    >>> as_array(lazy) is lazy, type(as_array(lazy, load=True)).__name__
    (True, 'ndarray')
    >>> from astropy.nddata import NDData
    >>> as_array(NDData(x)).shape
    (4, 5, 1)
    >>> as_array(np.ma.array([[1, 2], [3, 4]], mask=[[0, 1], [0, 0]])).tolist()
    [[1.0, nan], [3.0, 4.0]]
    >>> bad = np.zeros((4, 5), bool); bad[0, 0] = True
    >>> float(as_array(GridImage(x + 1, mask=bad))[0, 0, 0])
    nan
    """
    check_bool(load, name="load")
    if isinstance(image, GridImage) or is_nddata(image):
        data = _mask_applied(image.data, image.mask)
    else:
        data = image
    if isinstance(data, np.ma.MaskedArray):
        data = masked_as_nan(data)
    elif type(data).__module__.split(".")[0] == "pandas" and hasattr(data, "to_numpy"):
        data = data.to_numpy()
    if load and type(data) is not np.ndarray:
        data = np.asarray(data)
    return data


def _mask_applied(data, mask):
    """A GridImage's or NDData's pixels with its mask's pixels NaN: the pixels unchanged when
    nothing is masked or every masked pixel is NaN already (as :func:`read` gives them), lazy
    pixels as they are (a lazy read has no mask; its reader sets NaN window by window)."""
    if mask is None or not isinstance(data, np.ndarray) or isinstance(data, np.ma.MaskedArray):
        return data
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim == data.ndim - 1 and mask.shape == data.shape[: mask.ndim]:
        mask = mask[..., None]  # one (H, W) mask for every channel
    elif mask.ndim == data.ndim + 1 and mask.shape[-1] == 1:
        mask = mask[..., 0]  # an (H, W, 1) mask of (H, W) pixels
    try:
        mask = np.broadcast_to(mask, data.shape)
    except ValueError:
        raise InvalidImageError(
            f"mask of shape {mask.shape} does not match the image's pixels {data.shape}"
        ) from None
    if not mask.any() or (data.dtype.kind == "f" and np.isnan(data[mask]).all()):
        return data
    return masked_as_nan(np.ma.array(data, mask=mask))


def masked_as_nan(array: np.ma.MaskedArray) -> np.ndarray:
    """A masked array's data with its masked pixels NaN (see :func:`as_array`)."""
    mask = np.ma.getmaskarray(array)
    data = np.ma.getdata(array)
    if not mask.any() or data.dtype.kind not in "biufc":
        return data
    if data.dtype.kind in "fc":
        out = data.copy()
    else:
        out = data.astype(np.float64 if data.dtype.itemsize >= 4 else np.float32)
    out[mask] = np.nan
    return out


def decoded_image(data: np.ndarray, path, meta: dict, *, lazy: bool, stack: bool = False):
    """A GridImage of pixels decoded whole (PNG, palette or small TIFF): windows of them for a
    lazy read (:class:`InMemoryLazy`), else with a plane axis first for ``stack`` and NaN
    pixels masked.

    Examples
    --------
    >>> import numpy as np
    >>> data = np.ones((2, 3, 1), np.float32); data[0, 0, 0] = np.nan
    >>> img = decoded_image(data, "a.png", {}, lazy=False, stack=True)
    >>> img.data.shape, int(img.mask.sum())
    ((1, 2, 3, 1), 1)
    """
    if lazy:
        return GridImage(InMemoryLazy(data, str(path)), path=str(path), meta=meta)
    if stack:
        data = data[None]
    return GridImage(data, mask=np.isnan(data), path=str(path), meta=meta)


def is_nddata(value: Any) -> bool:
    """Whether ``value`` is an astropy ``NDData`` (``CCDData``, ...), without importing astropy.

    An NDData instance exists only once ``astropy.nddata`` was imported, so no import is needed.

    Parameters
    ----------
    value : object
        Anything.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.io import is_nddata
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
