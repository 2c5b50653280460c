"""Layers that make a conv-pool network exactly invariant to the flips and 90° rotations (D4).

A galaxy (or a cell) has no "up": its class does not change under the 8 symmetries of the square.
``classifier(..., invariant="d4")`` builds

.. math::

    f(x) = \\mathrm{head}\\Big(\\frac{1}{|G|} \\sum_{g \\in G} \\mathrm{backbone}(g\\,x)\\Big)

with :class:`D4Stack` (the batch of the ``|G|`` transformed images, one backbone call) and
:class:`D4Pool` (the mean of their features, before the dense layers). Since ``{g h : g in G}``
is ``G`` again for every ``h`` in the group, ``f(h x) = f(x)`` exactly (to float rounding), not
just approximately as after training with augmentation. ``G`` is D4 (8 elements) for square
inputs and the 4 elements that keep a non-square shape (identity, the two flips, the 180°
rotation) otherwise. The transforms are :class:`~sciconv.models.uncertainty_layers.D4Transform`'s
(``k & 4`` transposes, ``k & 1`` flips the rows, ``k & 2`` the columns).

The cost is ``|G|`` times the backbone's compute; the weights are the same.

Examples
--------
>>> import numpy as np
>>> from sciconv.models import D4Pool, D4Stack
>>> x = np.arange(8, dtype="float32").reshape(2, 2, 2, 1)
>>> stacked = D4Stack()(x)
>>> tuple(stacked.shape), np.asarray(D4Pool()(stacked)).shape
((16, 2, 2, 1), (2, 2, 2, 1))
"""

from __future__ import annotations

import keras
from keras import ops

from sciconv.errors import ModelError
from sciconv.models.uncertainty_layers import D4Transform

__all__ = ["INVARIANCES", "D4Pool", "D4Stack", "d4_elements"]

#: The ``invariant`` options of :func:`sciconv.models.classifier` and ``regressor``.
INVARIANCES = (None, "d4")


def _check_elements(elements) -> int:
    if isinstance(elements, bool) or elements not in (4, 8):
        raise ModelError(
            "elements must be 8 (all of D4, square images) or 4 (the flips and the 180° "
            f"rotation, which keep a non-square shape); got elements={elements!r}"
        )
    return int(elements)


def d4_elements(height: int | None, width: int | None) -> int:
    """How many D4 elements keep an ``(height, width)`` image's shape: 8 if square (or unknown),
    else 4.

    Parameters
    ----------
    height, width : int or None
        The image's height and width in pixels; None where unknown (any size).

    Examples
    --------
    >>> from sciconv.models.invariant import d4_elements
    >>> d4_elements(64, 64), d4_elements(64, 32), d4_elements(None, None)
    (8, 4, 8)
    """
    if height is not None and width is not None and height != width:
        return 4
    return 8


@keras.saving.register_keras_serializable(package="sciconv")
class D4Stack(keras.layers.Layer):
    """Stack the transformed copies of a batch: (N, H, W, C) -> (G * N, H, W, C), copy-major.

    Copy ``k`` (rows ``k * N`` to ``(k + 1) * N``) is ``D4Transform(k)`` of the batch, for
    ``k < elements``. With ``elements=8`` the images must be square (the transposes would not
    stack otherwise).

    Parameters
    ----------
    elements : {8, 4}, optional
        8 (default): all of D4. 4: identity, row flip, column flip and both (the 180° rotation).
    **kwargs
        Standard layer arguments.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.models import D4Stack
    >>> x = np.array([[[1.0], [2.0]], [[3.0], [4.0]]], "float32")[None]
    >>> np.asarray(D4Stack(4)(x))[:, :, :, 0].tolist()[1]
    [[3.0, 4.0], [1.0, 2.0]]
    """

    def __init__(self, elements: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.elements = _check_elements(elements)
        self._transforms = [D4Transform(k) for k in range(self.elements)]

    def build(self, input_shape):
        for t in self._transforms:
            t.build(input_shape)

    def call(self, inputs):
        return ops.concatenate([t(inputs) for t in self._transforms], axis=0)

    def compute_output_shape(self, input_shape):
        n = input_shape[0]
        return (None if n is None else n * self.elements, *input_shape[1:])

    def get_config(self) -> dict:
        config = super().get_config()
        config["elements"] = self.elements
        return config


@keras.saving.register_keras_serializable(package="sciconv")
class D4Pool(keras.layers.Layer):
    """Average over the transformed copies: (G * N, ...) -> (N, ...), the inverse of the stacking
    layout of :class:`D4Stack`.

    Parameters
    ----------
    elements : {8, 4}, optional
        ``G``, as given to :class:`D4Stack`. Default 8.
    **kwargs
        Standard layer arguments.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.models import D4Pool
    >>> y = np.arange(8, dtype="float32").reshape(8, 1)
    >>> np.asarray(D4Pool()(y)).tolist()
    [[3.5]]
    """

    def __init__(self, elements: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.elements = _check_elements(elements)

    def call(self, inputs):
        rest = tuple(inputs.shape[1:])
        if any(s is None for s in rest):
            rest = tuple(ops.shape(inputs)[1:])
        stacked = ops.reshape(inputs, (self.elements, -1, *rest))
        return ops.mean(stacked, axis=0)

    def compute_output_shape(self, input_shape):
        n = input_shape[0]
        return (None if n is None else n // self.elements, *input_shape[1:])

    def get_config(self) -> dict:
        config = super().get_config()
        config["elements"] = self.elements
        return config
