"""tf.data pipelines from folders, CSV catalogs and image+mask pairs.

Files are read with :func:`sciconv.io.read_pixels` and normalized per image with
:func:`sciconv.preprocess.normalize_spec` (raw pixels in; the spec used is recorded on the dataset
as ``.normalization`` so a model can re-apply it at inference). :class:`FilePrep`
(:mod:`sciconv.datasets.prepare`) is that preparation of one file, shared with prediction;
:func:`sample_patches` and :func:`boundary_target` (:mod:`sciconv.datasets.patches`) are the
patch sampler and the 3-class target of :func:`from_pairs`. Those two submodules are numpy only:
they, and ``import sciconv.datasets``, do not import TensorFlow (the builders do, on first use).

The defaults are the fast path:

- ``cache="auto"``: every file is decoded once, up front, by a thread pool; when the decoded data
  fit :data:`CACHE_BUDGET` (1 GiB; set ``sciconv.datasets.CACHE_BUDGET`` to change it) the
  dataset is built from in-memory tensors (as fast as ``model.fit(x, y)`` on numpy arrays).
  Otherwise files are only checked up front (header, shape, last row) and decoded lazily in
  parallel (``tf.numpy_function`` with ``num_parallel_calls=tf.data.AUTOTUNE``).
  ``cache="path/file"`` decodes lazily once and keeps a TensorFlow cache file
  (``path/file.<fingerprint>.train``/``.val``).
- Every file is validated before a pipeline exists, so bad input is a
  :class:`~sciconv.errors.DatasetError` (or a
  :class:`~sciconv.errors.SciconvWarning` for skipped files) naming the file, never an error in a
  tf.data worker.
- Shuffling and augmentation are seeded: the same ``seed`` gives the same batches, epoch after
  epoch, each time the dataset is built. Augmentation and random crops apply to the training split
  only; validation batches are identical every epoch.

Returned datasets carry Python attributes, as Keras does for ``class_names``: ``.class_names``,
``.normalization`` (spec dict or None), ``.task`` (``"classification"``, ``"multilabel"``,
``"regression"`` or ``"segmentation"``), ``.seed`` (the seed of the split and the shuffles:
the one given, 0 by default, or the one drawn for ``seed=None``; :func:`sciconv.training.fit`
records it and refuses to resume a run on another split), ``.file_paths``, ``.class_counts`` (per
class counts of samples, or of pixels for segmentation; None for multilabel/regression),
``.cache_mode`` (``"memory"``, ``"file"`` or ``"none"``); training datasets also have
``.steps_per_epoch``
(batches of one pass) and ``.resume_at(n)`` (the same stream from batch ``n`` on: a resumed
:func:`sciconv.training.fit` trains on the batches the uninterrupted run would have). They are
lost by ``ds.map(...)``, like Keras's.

The package is split by role: ``prepare`` (one file -> one array), ``patches`` (patch sampler,
boundary target), ``_validate`` (arguments), ``_scan`` (files checked and decoded up front,
splits), ``_pipelines`` (tf.data), ``_images`` + ``_folder`` + ``_catalog`` (image-level
datasets, class weights), ``_pairs`` (image+mask pairs), ``_masks`` (masks read and checked),
``_trained`` (a trained model's dataset settings, to fine-tune it) and ``_fetch`` (public data
sets).

Examples
--------
>>> import tempfile, pathlib, numpy as np
>>> from astropy.io import fits
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> for c, name in enumerate(["elliptical", "spiral"]):
...     (root / name).mkdir()
...     for i in range(4):
...         fits.writeto(root / name / f"{i}.fits", np.full((8, 8), c + i, "float32"))
>>> from sciconv.datasets import from_folder
>>> train, val = from_folder(root, validation_split=0.5, batch_size=4, seed=0)
>>> train.class_names, train.task
(['elliptical', 'spiral'], 'classification')
>>> x, y = next(iter(train))
>>> tuple(x.shape), x.dtype.name, y.dtype.name
((4, 8, 8, 1), 'float32', 'int32')
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__all__ = [
    "CACHE_BUDGET",
    "SIZE_POLICIES",
    "SPLIT_RULE",
    "FilePrep",
    "boundary_target",
    "check_label_image",
    "class_weights",
    "fetch",
    "from_arrays",
    "from_catalog",
    "from_folder",
    "from_pairs",
    "load",
    "read_mask",
    "sample_patches",
    "trained_settings",
]

#: Decoded bytes kept in memory by ``cache="auto"`` (above it, files are decoded lazily).
CACHE_BUDGET = 1 << 30

# public name -> the submodule that defines it (imported on first use: PEP 562)
_HOMES = {
    "SIZE_POLICIES": "prepare",
    "SPLIT_RULE": "_scan",
    "FilePrep": "prepare",
    "boundary_target": "patches",
    "sample_patches": "patches",
    "class_weights": "_images",
    "from_folder": "_folder",
    "from_catalog": "_catalog",
    "from_pairs": "_pairs",
    "read_mask": "_masks",
    "check_label_image": "_masks",
    "from_arrays": "_images",
    "fetch": "_fetch",
    "load": "_fetch",
    "trained_settings": "_trained",
}
_SUBMODULES = ("patches", "prepare")


if TYPE_CHECKING:  # what type checkers and editors see: the objects of _HOMES, typed
    from sciconv.datasets import patches as patches
    from sciconv.datasets import prepare as prepare
    from sciconv.datasets._catalog import from_catalog as from_catalog
    from sciconv.datasets._fetch import fetch as fetch
    from sciconv.datasets._fetch import load as load
    from sciconv.datasets._folder import from_folder as from_folder
    from sciconv.datasets._images import class_weights as class_weights
    from sciconv.datasets._images import from_arrays as from_arrays
    from sciconv.datasets._masks import (
        check_label_image as check_label_image,
    )
    from sciconv.datasets._masks import (
        read_mask as read_mask,
    )
    from sciconv.datasets._pairs import from_pairs as from_pairs
    from sciconv.datasets._scan import SPLIT_RULE as SPLIT_RULE
    from sciconv.datasets._trained import trained_settings as trained_settings
    from sciconv.datasets.patches import (
        boundary_target as boundary_target,
    )
    from sciconv.datasets.patches import (
        sample_patches as sample_patches,
    )
    from sciconv.datasets.prepare import SIZE_POLICIES as SIZE_POLICIES
    from sciconv.datasets.prepare import FilePrep as FilePrep
else:  # at run time each loads on first use (PEP 562); checkers never see this, so a typo is one

    def __getattr__(name: str) -> object:
        if name in _HOMES:
            value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
        elif name in _SUBMODULES:
            value = importlib.import_module(f"{__name__}.{name}")
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBMODULES})
