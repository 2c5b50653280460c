"""OME-Zarr (NGFF) images written: a multiscale image store through ``ome-zarr``'s writer,
chunked for lazy reading and viewers, with its physical pixel size and channel names.

Labels go into such a store with :func:`sciconv.io.write_ome_zarr_labels`
(:mod:`sciconv.io._zarr`, which reads stores too).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sciconv._validation import refuse_swapped
from sciconv.errors import ConfigError, InvalidImageError, OutputExistsError
from sciconv.io._files import IMAGE_EXTENSIONS, check_name_length, user_path
from sciconv.io._image import GridImage, as_array
from sciconv.io._zarr import ASTROPY_NGFF, CHUNK_YX, UNITS_NGFF, ome_zarr_modules

__all__ = ["write_ome_zarr"]


def write_ome_zarr(
    path: str | Path,
    array,
    *,
    levels: int = 3,
    like: GridImage | None = None,
    overwrite: bool = False,
    channel_names: Sequence[str] | None = None,
) -> Path:
    """Write an image as a new OME-Zarr (NGFF 0.5) store with a multiscale pyramid.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.ome.zarr`` folder to create.
    array : array_like or GridImage, shape (H, W) or (H, W, C)
        The pixels (any numeric dtype, kept); stored with axes ``cyx``. A :class:`GridImage`
        gives its pixels and, without ``like``, its pixel size.
    levels : int
        Resolution levels (level ``i`` is downsampled by ``2**i``).
    like : GridImage, optional
        Whose :attr:`~GridImage.pixel_scale` (a length per pixel; else ``meta["pixel_size"]``
        in ``meta["pixel_unit"]``, µm when unstated) is written as the NGFF scale and units,
        and whose ``meta["channel_names"]``, when there is one per channel written, name the
        channels (unless ``channel_names`` is given), as OME-TIFF keeps them.
    overwrite : bool
        Replace an existing store.
    channel_names : sequence of str, optional
        One name per channel (e.g. the classes of a probability cube), written as the NGFF
        ``omero`` channel labels that viewers (napari-ome-zarr, Fiji, OMERO) show; read back as
        ``meta["channel_names"]``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ConfigError
        ``levels`` is not an int >= 1, or ``channel_names`` is not one name per channel.
    InvalidImageError
        The array is not one 2-D image (a Z or time stack ``(N, H, W, C)`` is refused, naming
        how to write it).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from sciconv import io
    >>> store = pathlib.Path(tempfile.mkdtemp()) / "a.ome.zarr"
    >>> _ = io.write_ome_zarr(store, np.ones((16, 8, 2), "uint8"), levels=2)
    >>> io.read(store).shape, io.read(store, level=1).meta["levels"]
    ((16, 8, 2), [(2, 16, 8), (2, 8, 4)])

    A GridImage's channel names are kept:

    >>> two = io.GridImage(np.ones((16, 8, 2), "float32"), meta={"channel_names": ["DAPI", "GFP"]})
    >>> io.read(io.write_ome_zarr(store, two, overwrite=True)).meta["channel_names"]
    ['DAPI', 'GFP']
    """
    from sciconv._atomic import atomic_store

    refuse_swapped(path, array, call="sciconv.io.write_ome_zarr(path, array)")
    path = user_path(path)  # ~ expanded; bytes and URLs refused (ConfigError)
    check_name_length(path)  # a WriteError naming the store, not a bare OSError
    zarr, ome_zarr = ome_zarr_modules(path)
    if path.name.lower().endswith(IMAGE_EXTENSIONS):  # a folder named x.tif (fuzzing QA)
        raise ConfigError(
            "an OME-Zarr store is a folder: name it .ome.zarr (this name is an image file's; "
            "sciconv.io.write writes those)",
            path=path,
        )
    if os.path.exists(path) and not overwrite:  # os.path: no OSError for a long name
        raise OutputExistsError("output exists; pass overwrite=True to replace it", path=path)
    if isinstance(array, GridImage):
        like = array if like is None else like
    arr = np.asarray(as_array(array, load=True))
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim == 4 and arr.size:  # read(stack=True)'s (N, H, W, C): say how to write it
        raise InvalidImageError(
            f"array must be (H, W) or (H, W, C), one 2-D image; got a stack of {arr.shape[0]} "
            f"planes {arr.shape} (N, H, W, C): write each plane (array[i]) to a store of its "
            "own, or the stack to OME-TIFF with sciconv.io.write(path.ome.tif, array, "
            'stack_axes="Z") (or "T" for a time series), which keeps its axes',
            path=path,
        )
    if arr.ndim != 3 or arr.size == 0:
        raise InvalidImageError(f"array must be (H, W) or (H, W, C); got {arr.shape}", path=path)
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 1:
        raise ConfigError(f"levels must be an int >= 1; got {levels!r}")
    kwargs: dict = {}
    if channel_names is None and isinstance(like, GridImage):  # as OME-TIFF: like's names
        names = like.meta.get("channel_names")
        if isinstance(names, Sequence) and not isinstance(names, str):
            channel_names = names if len(names) == arr.shape[-1] else None
    if channel_names is not None:
        kwargs["omero"] = _omero(arr, channel_names)
    meta = like.meta if isinstance(like, GridImage) else {}
    scale = like.pixel_scale if isinstance(like, GridImage) else None
    if scale is not None and scale.unit in ASTROPY_NGFF:  # NGFF space units are lengths
        kwargs["scale"] = {"c": 1.0, "y": scale.y, "x": scale.x}
        unit = ASTROPY_NGFF[scale.unit]
        kwargs["axes_units"] = {"y": unit, "x": unit}
    elif meta.get("pixel_size") is not None:
        dy, dx = (float(v) for v in meta["pixel_size"])
        kwargs["scale"] = {"c": 1.0, "y": dy, "x": dx}
        unit = UNITS_NGFF.get(meta.get("pixel_unit") or "µm")
        if unit:
            kwargs["axes_units"] = {"y": unit, "x": unit}
    # into a scratch store renamed onto path: a failed write leaves the old store as it was
    with atomic_store(path, overwrite=overwrite) as tmp:
        location = ome_zarr.io.parse_url(str(tmp), mode="w")
        group = zarr.group(store=location.store)
        ome_zarr.writer.write_image(
            np.ascontiguousarray(np.moveaxis(arr, -1, 0)),
            group,
            axes="cyx",
            scaler=None,
            scale_factors=tuple(2**i for i in range(1, int(levels))),
            storage_options={"chunks": (1, *CHUNK_YX)},
            **kwargs,
        )
        attrs = group.attrs.asdict()
        if "omero" in kwargs and "omero" not in attrs.get("ome", attrs):
            # ome-zarr 0.17 drops omero= without a word (taken from 0.18 on): added as 0.18 does
            ome_zarr.writer.add_metadata(group, {"omero": kwargs["omero"]})
    return path


#: Channel colours of the ``omero`` metadata (hex RGB), in channel order; one channel is grey.
_OMERO_COLORS = ("FFFFFF", "FF00FF", "00FFFF", "FFFF00", "FF0000", "00FF00", "0000FF")


def _omero(arr: np.ndarray, channel_names) -> dict:
    """NGFF ``omero`` metadata naming the channels of ``arr`` (H, W, C), each with a colour and
    a display window (its finite range; an integer dtype's limits as the window's bounds)."""
    if isinstance(channel_names, str) or not isinstance(channel_names, Sequence):
        raise ConfigError(f"channel_names must be a list of names; got {channel_names!r}")
    n = arr.shape[-1]
    if len(channel_names) != n:
        raise ConfigError(
            f"channel_names must give one name per channel ({n}); got {len(channel_names)}: "
            f"{list(channel_names)!r}"
        )
    channels = []
    for c, name in enumerate(channel_names):
        plane = arr[..., c]
        finite = plane[np.isfinite(plane)] if plane.dtype.kind == "f" else plane
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        bounds = np.iinfo(arr.dtype) if arr.dtype.kind in "iu" else None
        channels.append(
            {
                "label": str(name),
                "color": _OMERO_COLORS[0 if n == 1 else 1 + c % (len(_OMERO_COLORS) - 1)],
                "active": True,
                "window": {
                    "min": float(bounds.min) if bounds is not None else lo,
                    "max": float(bounds.max) if bounds is not None else hi,
                    "start": lo,
                    "end": hi,
                },
            }
        )
    return {"channels": channels}
