"""Convolutional networks for scientific images: classifier, regressor, segmenter.

The builders (:mod:`~sciconv.models.builders`) are thin functions over tensor-in/tensor-out blocks
(:mod:`~sciconv.models.blocks`), backbones (:mod:`~sciconv.models.backbones`) and heads
(:mod:`~sciconv.models.heads`). Every layer is named ``{name}_{stage}_{role}``
(``classifier_stage1_conv1``, ``segmenter_dec2_concat``, ``classifier_head_softmax``), so
``model.summary()`` reads like the architecture. Each model carries its sciconv metadata (task,
class count, divisor, normalization, ...) inside the ``.keras`` file: see :func:`get_metadata` and
:func:`set_metadata` (:mod:`~sciconv.models.metadata`). :func:`load`
(:mod:`~sciconv.models.loading`) reads a ``.keras`` file safely; :func:`pretrained`
(:mod:`~sciconv.models.zoo`) lists and loads the models shipped with sciconv.

Importing this module registers every custom layer, loss and metric of sciconv with Keras, so
``keras.models.load_model`` works on sciconv models as well as :func:`load` does.

Examples
--------
>>> import sciconv as sc
>>> model = sc.models.classifier((32, 32, 1), 3, filters=(8, 16), dense=(32,))
>>> model.output_shape
(None, 3)
>>> [layer.name for layer in model.layers][:4]
['classifier_input', 'classifier_metadata', 'classifier_stage1_conv1', 'classifier_stage1_relu1']
"""

from __future__ import annotations

from sciconv.models import uncertainty_layers  # noqa: F401  (registers its layers for loading)
from sciconv.models._validate_meta import check_postprocess
from sciconv.models.bioimageio import export_bioimageio
from sciconv.models.builders import check_input_shape, classifier, regressor, segmenter
from sciconv.models.export import EXPORT_FORMATS, export
from sciconv.models.invariant import INVARIANCES, D4Pool, D4Stack
from sciconv.models.layers import BilinearUpSampling2D, SciconvMetadata
from sciconv.models.loading import load
from sciconv.models.metadata import (
    attach_metadata,
    get_metadata,
    get_pixel_scale,
    metadata_layer,
    model_task,
    set_metadata,
)
from sciconv.models.zoo import PRETRAINED, pretrained, pretrained_digest, pretrained_info

__all__ = [
    "EXPORT_FORMATS",
    "INVARIANCES",
    "PRETRAINED",
    "BilinearUpSampling2D",
    "D4Pool",
    "D4Stack",
    "SciconvMetadata",
    "attach_metadata",
    "check_input_shape",
    "check_postprocess",
    "classifier",
    "export",
    "export_bioimageio",
    "get_metadata",
    "get_pixel_scale",
    "load",
    "metadata_layer",
    "model_task",
    "pretrained",
    "pretrained_digest",
    "pretrained_info",
    "regressor",
    "segmenter",
    "set_metadata",
]
