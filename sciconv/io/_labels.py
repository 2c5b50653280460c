"""Instance label images read as integers (:func:`read_labels`): ids are never float32; with
``grid=True`` they keep the pixel grid of their file (header, WCS, pixel size)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sciconv.errors import InvalidImageError, MissingDependencyError
from sciconv.io._common import check_pixel_limit
from sciconv.io._files import FITS_EXTENSIONS, PNG_EXTENSIONS, TIFF_EXTENSIONS, is_zarr, user_path
from sciconv.io._image import GridImage
from sciconv.io._read import read
from sciconv.io._zarr import zarr_module


def read_labels(path: str | os.PathLike, *, lazy: bool = False, grid: bool = False):
    """An instance label image ``(H, W)`` with its integer ids exactly as stored.

    :func:`read` gives float32 pixels, whose 24-bit mantissa merges ids from 2**24 on
    (16,777,216 and 16,777,217 become one object): a mosaic's block-wise labels, or ids from
    another tool, need this reader. FITS (the first image HDU), TIFF (the first series), PNG,
    plain zarr arrays (``predict_instances_blocks(out="labels.zarr")``) and OME-Zarr label
    images are read: a store with one label image (``predict_mosaic(format="ome-zarr")``,
    ``sciconv predict --format ome-zarr``) or a label image group (``labels/NAME``) gives its
    full-resolution level.

    Parameters
    ----------
    path : str or os.PathLike
        The label file, zarr array, OME-Zarr store or label image.
    lazy : bool, optional
        Zarr and TIFF: a :mod:`dask.array` reading chunks on demand (a mosaic's labels stay on
        disk); FITS and PNG are read whole either way. Default: a numpy array.
    grid : bool, optional
        Return a :class:`~sciconv.io.GridImage` that carries the labels' pixel grid: the
        file's header and celestial WCS (FITS; a zarr array's recorded WCS) and the pixel size
        :func:`sciconv.io.read` finds (OME-TIFF, ImageJ and resolution tags, OME-Zarr scale),
        so that :func:`sciconv.postprocess.measure` can refuse an ``intensity`` on another
        grid and :func:`sciconv.postprocess.reproject_labels` can carry the labels onto it.
        Default False: the bare array.

    Returns
    -------
    numpy.ndarray or dask.array.Array or GridImage
        Integer ids (the stored dtype), shape ``(H, W)``; with ``grid=True`` a GridImage whose
        ``.data`` holds them, shape ``(H, W, 1)`` and the stored integer type in native byte
        order (not float32), with ``.header``, ``.wcs`` and ``.meta`` as :func:`sciconv.io.read`
        gives them.

    Raises
    ------
    InvalidImageError
        Not an integer image, not 2-D, or not readable; a store with several label images
        (the message names them) or none.

    Examples
    --------
    >>> from sciconv.io import read_labels
    >>> import tempfile, pathlib, numpy as np, tifffile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels.tif"
    >>> tifffile.imwrite(path, np.array([[0, 16_777_216], [16_777_217, 2]], np.uint32))
    >>> read_labels(path).tolist()
    [[0, 16777216], [16777217, 2]]

    With its grid (here the pixel size of the TIFF's resolution tags):

    >>> tifffile.imwrite(path, np.array([[0, 3], [3, 0]], np.uint16), resolution=(2e4, 2e4),
    ...                  resolutionunit="CENTIMETER")
    >>> labels = read_labels(path, grid=True)
    >>> labels.shape, labels.data.dtype.name, labels.pixel_scale
    ((2, 2, 1), 'uint16', PixelScale(y=0.5, x=0.5, unit='um'))
    """
    path = user_path(path)
    if not path.exists():
        raise InvalidImageError("no such file", path=path)
    name = path.name.lower()
    described = path  # where read() finds the labels' grid; hdu: the FITS HDU read
    hdu = None
    try:
        if is_zarr(path):
            labels, described = _zarr(path, lazy)
        elif name.endswith(TIFF_EXTENSIONS):
            labels = _tiff(path, lazy)
        elif name.endswith(FITS_EXTENSIONS):
            labels, hdu = _fits(path)
        elif name.endswith(PNG_EXTENSIONS):
            from PIL import Image

            with Image.open(path) as im:
                labels = np.asarray(im)
        else:
            raise InvalidImageError(
                "read_labels reads FITS, TIFF, PNG and zarr label images", path=path
            )
    except (InvalidImageError, MissingDependencyError):
        raise
    except Exception as exc:  # a damaged or foreign file: say which
        raise InvalidImageError(f"not a readable label image ({exc})", path=path) from exc
    while labels.ndim > 2 and labels.shape[0] == 1:  # FITS/TIFF (1, H, W)
        labels = labels[0]
    if labels.ndim == 3 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.ndim != 2:
        raise InvalidImageError(f"labels must be 2-D (H, W); got shape {labels.shape}", path=path)
    if np.dtype(labels.dtype).kind not in "iub":
        raise InvalidImageError(
            f"labels must be integers (0 = background); got dtype {labels.dtype}", path=path
        )
    if grid:
        return _with_grid(labels, path, described, hdu)
    return labels


#: What a labels GridImage keeps of the metadata ``read`` finds: no error map, mask or scaling
#: of the pixels read as floats (the ids are read as stored)
_PIXEL_META = ("uncertainty", "uncertainty_windows", "uncertainty_from", "mask_from", "scaling")


def _with_grid(labels, path: Path, described: Path, hdu):
    """``labels`` (H, W) as a GridImage (H, W, 1) with the header, WCS and pixel size that
    :func:`sciconv.io.read` finds in ``described`` (the file, or a label image's group)."""
    found = read(described, lazy=True, **({} if hdu is None else {"hdu": hdu}))
    found.close()  # only its metadata: the ids are the ones read above
    meta = {k: v for k, v in found.meta.items() if k not in _PIXEL_META}
    if not labels.dtype.isnative:  # FITS stores big-endian: the same integers, native order
        labels = labels.astype(labels.dtype.newbyteorder("="))
    meta["dtype"] = str(labels.dtype)
    return GridImage(
        labels[..., None], header=found.header, wcs=found.wcs, path=str(path), meta=meta
    )


def _zarr(path: Path, lazy: bool):
    """The labels and where their grid is described: the array itself, or the label image
    group whose first level they are (its NGFF scale)."""
    zarr = zarr_module(path)

    described = path
    node = zarr.open(str(path), mode="r")
    if not hasattr(node, "shape"):
        level = _label_level(path, dict(node.attrs))
        node = zarr.open(str(level), mode="r")
        described = level.parent
    if lazy:
        import dask.array as da

        return da.from_zarr(node), described
    check_pixel_limit(_plane(node.shape), path, source="the zarr array", windowed=True)
    return node[...], described


def _label_level(path: Path, attrs: dict) -> Path:
    """The full-resolution array of the label image a zarr group holds: an OME-Zarr store's one
    label image (``labels/NAME``), or a label image's own first level."""
    from sciconv.io._zarr import multiscale_levels, ome_zarr_labels

    found = ome_zarr_labels(path)
    if len(found) == 1:
        return next(iter(found.values()))[0]
    if found:
        names = ", ".join(f"labels/{name}" for name in found)
        raise InvalidImageError(
            f"an OME-Zarr store with {len(found)} label images ({names}): give one, e.g. "
            f"{Path(path) / next(iter(found))}",
            path=path,
        )
    levels = multiscale_levels(path, attrs)
    is_label = "image-label" in attrs.get("ome", attrs) or Path(path).parent.name == "labels"
    if is_label and levels:
        return levels[0]
    raise InvalidImageError(
        "a zarr group holding no label image (an image's pixels are not labels): give the "
        "labels array itself, an OME-Zarr store with labels/, or one of its label images "
        "(labels/NAME)",
        path=path,
    )


def _tiff(path: Path, lazy: bool):
    import tifffile

    if lazy:
        import dask.array as da

        zarr = zarr_module(path)
        with tifffile.TiffFile(path) as tif:
            store = tif.series[0].aszarr(level=0)
        return da.from_zarr(zarr.open(store, mode="r"))
    with tifffile.TiffFile(path) as tif:  # a few-kB file may declare a huge image: refused
        check_pixel_limit(_plane(tif.series[0].shape), path, source="the TIFF", windowed=True)
        return tif.asarray()


def _plane(shape) -> int:
    """Pixels of the stored array's last two axes (one plane, as Pillow counts them)."""
    return int(np.prod(shape[-2:], dtype=np.int64)) if len(shape) >= 2 else int(np.prod(shape))


def _fits(path: Path):
    from astropy.io import fits

    with fits.open(path) as hdul:  # unsigned ids carry BZERO: astropy reads them eagerly
        for index, hdu in enumerate(hdul):
            if getattr(hdu, "is_image", False) and hdu.data is not None and hdu.data.ndim >= 2:
                if "BSCALE" in hdu.header and hdu.header["BSCALE"] != 1:
                    raise InvalidImageError("labels must not be scaled (BSCALE != 1)", path=path)
                return np.array(hdu.data), index
    raise InvalidImageError("no image HDU", path=path)
