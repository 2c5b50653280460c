"""The demo's sizes and its data: :class:`DemoSettings`, :func:`find_data`, the data parts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sciconv.errors import DatasetError

#: Sub-folders of the data folder that the demo reads.
DATA_PARTS = {
    "galaxies": "galaxies",
    "cells_images": "cells/images",
    "cells_masks": "cells/masks",
    "sky": "sky",
    "real_nuclei_images": "real/nuclei/images",
    "real_nuclei_labels": "real/nuclei/labels",
}


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo's parts (:meth:`full` for the default run, :meth:`fast` for tests).

    Attributes
    ----------
    galaxy_epochs : int
        Training epochs of the galaxy classifier.
    galaxy_filters : tuple of int
        Filters of the galaxy classifier's convolution blocks (``models.classifier(filters=)``).
    galaxy_dense : tuple of int
        Units of its dense layers (``models.classifier(dense=)``).
    cell_epochs : int
        Training epochs of the nuclei segmenter (simulated cells).
    cell_patches : int
        Random training patches cut from each cell image per epoch (``patches_per_image``).
    cell_patch : int
        Side of those square patches, in pixels.
    cell_depth : int
        Depth of the nuclei segmenter (``models.segmenter(depth=)``).
    cell_filters : int
        Filters of its first level (``models.segmenter(filters=)``).
    sky_epochs : int
        Training epochs of the sky source detector.
    sky_steps : int
        Steps per epoch of the sky detector; it trains on ``16 * sky_steps`` 64-px patches.
    sky_train_shape : (int, int)
        ``(H, W)`` of the simulated field the sky detector trains on.
    sky_depth : int
        Depth of the sky detector (``models.segmenter(depth=)``).
    sky_filters : int
        Filters of its first level (``models.segmenter(filters=)``).
    sky_crop : int or None
        Evaluate on the top-left ``sky_crop`` x ``sky_crop`` pixels of the bundled field; None:
        the whole field.
    real_images : int or None
        At most this many real nuclei images (and as many brightfield ones) are scored; None:
        all of them.
    batch_norm : bool, optional
        BatchNormalization in the nuclei segmenter. Default True.
    seed : int, optional
        Seed of the whole run: Keras' random seed, the data splits, sampling and training.
        Default 0.

    Examples
    --------
    >>> from sciconv.demo import DemoSettings
    >>> DemoSettings.fast().galaxy_epochs < DemoSettings.full().galaxy_epochs
    True
    """

    galaxy_epochs: int
    galaxy_filters: tuple[int, ...]
    galaxy_dense: tuple[int, ...]
    cell_epochs: int
    cell_patches: int
    cell_patch: int
    cell_depth: int
    cell_filters: int
    sky_epochs: int
    sky_steps: int
    sky_train_shape: tuple[int, int]
    sky_depth: int
    sky_filters: int
    sky_crop: int | None
    real_images: int | None
    batch_norm: bool = True
    seed: int = 0

    @classmethod
    def full(cls) -> DemoSettings:
        """A few minutes on two CPU cores."""
        return cls(
            galaxy_epochs=12,
            galaxy_filters=(16, 32, 64),
            galaxy_dense=(64,),
            cell_epochs=10,
            cell_patches=24,
            cell_patch=96,
            cell_depth=3,
            cell_filters=16,
            sky_epochs=5,
            sky_steps=40,
            sky_train_shape=(768, 768),
            sky_depth=2,
            sky_filters=16,
            sky_crop=None,
            real_images=None,
        )

    @classmethod
    def fast(cls) -> DemoSettings:
        """About a minute: tiny models, few steps, a crop of the sky field, a few real images."""
        return cls(
            galaxy_epochs=6,
            galaxy_filters=(8, 16),
            galaxy_dense=(32,),
            cell_epochs=4,
            cell_patches=16,
            cell_patch=64,
            cell_depth=2,
            cell_filters=8,
            sky_epochs=4,
            sky_steps=25,
            sky_train_shape=(384, 384),
            sky_depth=2,
            sky_filters=8,
            sky_crop=512,
            real_images=4,
            batch_norm=False,  # BatchNorm statistics need more than a few dozen steps
        )


def find_data(data: str | os.PathLike | None = None) -> Path:
    """Return the bundled data folder: ``data`` if given, else ``<repository>/data``.

    The package is installed from the repository (editable), so the data sits next to the
    ``sciconv`` package folder.

    Parameters
    ----------
    data : str or os.PathLike, optional
        An explicit data folder (``sciconv demo --data DIR``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DatasetError
        The folder does not exist.

    Examples
    --------
    >>> from sciconv.demo import find_data
    >>> find_data().is_dir()
    True
    """
    if data is not None:
        path = Path(data)
    else:
        path = Path(__file__).resolve().parents[2] / "data"  # <repo>/sciconv/demo/_settings.py
    if not path.is_dir():
        raise DatasetError(
            "bundled data folder not found; run the demo from a clone of the sciconv repository "
            "(pip install -e .) or pass --data DIR",
            path=path,
        )
    return path


def require_parts(data: Path, *parts: str) -> dict[str, Path]:
    found = {}
    for key in parts:
        p = data / DATA_PARTS[key]
        if not p.exists():
            raise DatasetError(
                f"the demo needs {DATA_PARTS[key]}/ inside the data folder; it is missing "
                "(is the data folder complete? see data/README.md)",
                path=p,
            )
        found[key] = p
    return found
