"""OME-Zarr prediction products: the image store with NGFF label groups, written atomically.

The part of :func:`sciconv.postprocess.write_products` for ``format="ome-zarr"``. The stores
are made by :mod:`sciconv.io`'s OME-Zarr writers (``ome-zarr``/``zarr``); this module only
decides what goes where and moves each finished store into place.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from sciconv._atomic import atomic_store
from sciconv.errors import ConfigError, InvalidImageError
from sciconv.io import GridImage, as_array
from sciconv.io._pyramid import level_count

#: NGFF label groups of an OME-Zarr product: the instance labels and the bad-pixel mask.
ZARR_LABELS, ZARR_MASK = "instances", "mask"


def zarr_image(like, hw) -> np.ndarray:
    """The pixels an OME-Zarr store of labels holds as its image: ``like``'s."""
    if like is None or not hasattr(like, "data"):
        raise ConfigError(
            "format='ome-zarr' stores the labels in an image's labels/ group: give prob= or "
            "like= (the image, a GridImage or NDData)"
        )
    image = np.asarray(as_array(like, load=True))
    if image.shape[:2] != tuple(hw):
        raise InvalidImageError(
            f"like= is {image.shape[0]} x {image.shape[1]} pixels but labels are "
            f"{hw[0]} x {hw[1]}; they must describe the same image"
        )
    return image


def _zarr_levels(hw) -> int:
    """Pyramid levels: halve while the smallest level keeps at least 64 pixels (at most 3)."""
    return level_count(hw, min_side=64, most=3)


def write_zarr_products(
    targets, *, image, labels, mask, uncertainty, like, attrs, overwrite
) -> dict[str, Path]:
    """The image store with its NGFF label groups, and the uncertainty store (io's writers)."""
    from sciconv import io as scio

    written = {}
    grid = like if isinstance(like, GridImage) else None
    if image is not None:
        store = targets["prob"]
        levels = _zarr_levels(image.shape[:2])
        with atomic_store(store, overwrite=overwrite) as tmp:
            scio.write_ome_zarr(
                tmp, image, levels=levels, like=grid, channel_names=attrs.get("class_names")
            )
            if labels is not None:
                scio.write_ome_zarr_labels(tmp, labels, name=ZARR_LABELS)
            if mask is not None:
                scio.write_ome_zarr_labels(tmp, mask.astype(np.uint8), name=ZARR_MASK)
            _zarr_attrs(tmp, attrs)
        if attrs.get("class_names") is not None:
            written["prob"] = store
        if labels is not None:
            written["labels"] = targets["labels"]
        if mask is not None:
            written["mask"] = targets["mask"]
    if uncertainty is not None:
        with atomic_store(targets["uncert"], overwrite=overwrite) as tmp:
            scio.write_ome_zarr(
                tmp,
                uncertainty,
                levels=_zarr_levels(uncertainty.shape[:2]),
                like=grid,
                channel_names=attrs.get("class_names"),
            )  # the input's pixel size and axes: it lines up with the image in a viewer
            _zarr_attrs(
                tmp,
                {**attrs, "history": [*attrs["history"], "standard deviation of each class"]},
            )
        written["uncert"] = targets["uncert"]
    return written


def _zarr_attrs(store: Path, attrs: Mapping) -> None:
    """Provenance in the store's root attributes under ``sciconv`` (HISTORY's counterpart)."""
    import zarr

    import sciconv

    group = zarr.open_group(str(store), mode="r+")
    group.attrs["sciconv"] = {
        "version": sciconv.__version__,
        **{k: v for k, v in attrs.items() if v is not None},
    }
