"""sciconv: convolutional neural networks for scientific images.

Submodules are imported lazily, so ``import sciconv`` is quick and builds no TensorFlow graph;
``sciconv.io`` and friends load on first use. Keras learns sciconv's layers, losses and metrics
when :mod:`sciconv.models` is imported, so plain ``keras.models.load_model`` on a sciconv model
needs ``import sciconv.models`` first (:func:`sciconv.models.load` does not).

Examples
--------
>>> import sciconv as sc
>>> sc.__version__
'0.1.0'
"""

from __future__ import annotations

import atexit
import importlib
import sys

__version__ = "0.1.0"

_SUBMODULES = (
    "augment",
    "calibration",
    "cli",
    "datasets",
    "demo",
    "devices",
    "errors",
    "fetch",
    "inference",
    "io",
    "losses",
    "metrics",
    "models",
    "postprocess",
    "preprocess",
    "runs",
    "samp",
    "simulate",
    "training",
    "viz",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"sciconv.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'sciconv' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)


def _close_dataset_iterators() -> None:
    """At exit: :func:`sciconv.datasets._pipelines.close_iterators`, when datasets were built.
    Registered on ``import sciconv``, before any exit handler of a program that imports it, so
    theirs run first (atexit runs the last registered first) with their iterators working."""
    pipelines = sys.modules.get("sciconv.datasets._pipelines")
    if pipelines is not None:
        pipelines.close_iterators()


atexit.register(_close_dataset_iterators)
