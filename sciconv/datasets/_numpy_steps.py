"""A dataset's numpy steps (decoding, patch sampling), called from tf.data but held only by
the datasets that use them.

TensorFlow keeps every callable given to ``tf.numpy_function`` alive in the outermost graph:
in eager mode the process-wide default graph, which is never freed. A step that closes over
the data it reads (:func:`~sciconv.datasets.from_pairs`' decoded images, targets and bad-pixel
maps) then stayed in memory for good, and every rebuild of the dataset (a notebook cell run
again) added its data (QA: 6 rebuilds of 60 DSB2018 pairs, +94 MiB each, never freed).
:class:`NumpyStep` gives TensorFlow a stub holding only a weak reference to the step: the step
is held by the map function that calls it (tf.data keeps it, with every dataset and iterator
drawn from it) and by the datasets returned to the user (:meth:`NumpyStep.kept_by`), so
dropping them frees the step and its data.
"""

from __future__ import annotations

import weakref

import tensorflow as tf

from sciconv.errors import DatasetError

__all__ = ["NumpyStep"]


class _Stub:
    """What TensorFlow registers for good: a weak reference to the step it calls."""

    __slots__ = ("name", "step")

    def __init__(self, step: NumpyStep) -> None:
        self.step = weakref.ref(step)
        self.name = step.name

    def __call__(self, *args):
        step = self.step()
        if step is None:  # a dataset rebuilt from its graph outlived the Python datasets
            raise DatasetError(
                f"the dataset step {self.name} was freed with the dataset it belongs to; keep "
                "the dataset in a variable while it is iterated"
            )
        return step.func(*args)


class NumpyStep:
    """A numpy function of a tf.data pipeline that only its datasets keep alive.

    Call it inside the function given to ``Dataset.map`` (as ``tf.numpy_function``, always
    ``stateful=False``): the map function holds the step, so the dataset, the datasets drawn
    from it and their iterators do. TensorFlow's process-wide registry holds only a weak
    reference, so the step (and whatever ``func`` closes over: decoded images...) is freed
    with the last of them. Also mark the datasets returned to the user with :meth:`kept_by`.

    Parameters
    ----------
    func : callable
        numpy arrays in, a numpy array or a tuple of them out (as ``tf.numpy_function``).

    Examples
    --------
    >>> import numpy as np
    >>> import tensorflow as tf
    >>> scale = NumpyStep(lambda v: np.float32(v) * 2)
    >>> ds = tf.data.Dataset.range(3).map(lambda i: scale([i], tf.float32))
    >>> [float(v) for v in scale.kept_by(ds)]
    [0.0, 2.0, 4.0]
    """

    def __init__(self, func) -> None:
        self.func = func
        self.name = getattr(func, "__qualname__", type(func).__name__)

    def __call__(self, inp, Tout):
        """``tf.numpy_function(func, inp, Tout, stateful=False)``, ``func`` held weakly."""
        return tf.numpy_function(_Stub(self), inp, Tout, stateful=False)

    def kept_by(self, ds):
        """Make ``ds`` (a dataset returned to the user) hold this step too; returns ``ds``."""
        ds._sciconv_numpy_steps = (*getattr(ds, "_sciconv_numpy_steps", ()), self)
        return ds
