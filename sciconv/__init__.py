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
from typing import TYPE_CHECKING

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


if TYPE_CHECKING:  # what type checkers and editors see: the submodules, each with its types
    from sciconv import augment as augment
    from sciconv import calibration as calibration
    from sciconv import cli as cli
    from sciconv import datasets as datasets
    from sciconv import demo as demo
    from sciconv import devices as devices
    from sciconv import errors as errors
    from sciconv import fetch as fetch
    from sciconv import inference as inference
    from sciconv import io as io
    from sciconv import losses as losses
    from sciconv import metrics as metrics
    from sciconv import models as models
    from sciconv import postprocess as postprocess
    from sciconv import preprocess as preprocess
    from sciconv import runs as runs
    from sciconv import samp as samp
    from sciconv import simulate as simulate
    from sciconv import training as training
    from sciconv import viz as viz
else:  # at run time each loads on first use (PEP 562); checkers never see this, so a typo is one

    def __getattr__(name: str) -> object:
        if name in _SUBMODULES:
            module = importlib.import_module(f"sciconv.{name}")
            globals()[name] = module
            return module
        raise AttributeError(f"module 'sciconv' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


def _close_dataset_iterators() -> None:
    """At exit: :func:`sciconv.datasets._pipelines.close_iterators`, when datasets were built.
    Registered on ``import sciconv``, before any exit handler of a program that imports it, so
    theirs run first (atexit runs the last registered first) with their iterators working."""
    pipelines = sys.modules.get("sciconv.datasets._pipelines")
    if pipelines is not None:
        pipelines.close_iterators()


atexit.register(_close_dataset_iterators)
