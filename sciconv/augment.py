"""Seeded augmentation for images and masks: the dihedral group D4, crops, intensity jitter, noise.

Telescope and microscope images have no "up": the 8 symmetries of the square (4 rotations by 90°,
each with or without a mirror flip, the dihedral group D4) give 8 equally valid views of every
training image. Geometric transforms are applied identically to an image and its mask; intensity
transforms (brightness, contrast, Gaussian and Poisson noise) touch the image only.

Three ways in:

- numpy helpers :func:`d4_transform` / :func:`d4_inverse` (test-time augmentation);
- tf.data functions :func:`augment_batch` (a batch ``(N, H, W, C)``), :func:`augment_pair` (one
  image ``(H, W, C)`` and its mask ``(H, W)``) and :func:`random_crop`, seeded with a stateless seed
  (a shape ``(2,)`` integer tensor), so the same seed gives the same result;
- Keras preprocessing layers :class:`RandomD4` and :class:`RandomIntensity` (training only);
- the training default: :func:`resolve_train_augment` decides when :func:`sciconv.training.fit`
  turns D4 on by itself (classifiers trained on cutout files or sky images),
  :func:`d4_train_data` applies it.

Examples
--------
>>> import numpy as np
>>> from sciconv.augment import d4_inverse, d4_transform
>>> x = np.arange(12.0).reshape(3, 4, 1)
>>> [d4_transform(x, k).shape for k in (0, 1)]
[(3, 4, 1), (4, 3, 1)]
>>> all(np.array_equal(d4_inverse(d4_transform(x, k), k), x) for k in range(8))
True
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from sciconv._validation import check_int, standardize_tuple
from sciconv.errors import ConfigError

__all__ = [
    "D4_SIZE",
    "TRAIN_AUGMENT",
    "RandomD4",
    "RandomIntensity",
    "augment_batch",
    "augment_pair",
    "d4_inverse",
    "d4_train_data",
    "d4_transform",
    "is_sky_data",
    "random_crop",
    "resolve_train_augment",
    "validate_amounts",
]

#: Number of elements of the dihedral group D4 (valid ``k`` are ``0 .. D4_SIZE - 1``).
D4_SIZE = 8
#: What :func:`sciconv.training.fit` takes as ``augment`` (True means "d4", False means None).
TRAIN_AUGMENT = ("auto", "d4", None)
#: Tasks whose labels describe a whole image (those ``augment="auto"`` may turn D4 on for).
_IMAGE_LEVEL_TASKS = ("classification", "multilabel")


# --------------------------------------------------------------------------------------------
# numpy: test-time augmentation helpers
# --------------------------------------------------------------------------------------------
def _validate_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= int(k) < D4_SIZE:
        raise ConfigError(f"k must be an int in 0..{D4_SIZE - 1} (an element of D4); got {k!r}")
    return int(k)


def _validate_axes(array: np.ndarray, axes) -> tuple[int, int]:
    if len(axes) != 2:
        raise ConfigError(f"axes must name 2 spatial axes (rows, columns); got {axes!r}")
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise ConfigError(f"axes must be 2 ints; got {axes!r}")
        if not -array.ndim <= a < array.ndim:
            raise ConfigError(f"axes {axes!r} are out of range for an array of shape {array.shape}")
        out.append(int(a) % array.ndim)
    a0, a1 = out
    if a0 == a1:
        raise ConfigError(f"axes must be 2 different axes; got {axes!r}")
    return a0, a1


def d4_transform(array: np.ndarray, k: int, *, axes: Sequence[int] = (-3, -2)) -> np.ndarray:
    """Apply element ``k`` of the dihedral group D4 (8 flips/rotations) to an array.

    ``k % 4`` counts 90° counter-clockwise rotations (``np.rot90``) and ``k >= 4`` adds a flip
    of the columns after the rotation. ``k = 0`` is the identity.

    Parameters
    ----------
    array : ndarray
        Image ``(H, W, C)`` or batch ``(N, H, W, C)`` (the default ``axes=(-3, -2)`` are the rows
        and columns of both). For a 2-D mask ``(H, W)`` pass ``axes=(0, 1)``.
    k : int
        Element of D4, ``0 <= k < 8``.
    axes : pair of int, optional
        The (rows, columns) axes. Default ``(-3, -2)``.

    Returns
    -------
    ndarray
        A C-contiguous copy; rows and columns are swapped for odd ``k % 4``.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.augment import d4_transform
    >>> x = np.array([[1, 2], [3, 4]])[..., None]
    >>> d4_transform(x, 1)[..., 0]
    array([[2, 4],
           [1, 3]])
    >>> d4_transform(x, 4)[..., 0]
    array([[2, 1],
           [4, 3]])
    """
    array = np.asarray(array)
    k = _validate_k(k)
    a0, a1 = _validate_axes(array, axes)
    out = np.rot90(array, k % 4, axes=(a0, a1))
    if k >= 4:
        out = np.flip(out, axis=a1)
    return np.ascontiguousarray(out)


def d4_inverse(array: np.ndarray, k: int, *, axes: Sequence[int] = (-3, -2)) -> np.ndarray:
    """Undo :func:`d4_transform` with the same ``k``: ``d4_inverse(d4_transform(x, k), k) == x``.

    Parameters
    ----------
    array : ndarray
        Transformed image ``(H', W', C)`` or batch ``(N, H', W', C)`` (e.g. a prediction made on a
        transformed input).
    k : int
        The element of D4 that was applied, ``0 <= k < 8``.
    axes : pair of int, optional
        The (rows, columns) axes. Default ``(-3, -2)``.

    Returns
    -------
    ndarray
        A C-contiguous array in the original orientation.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.augment import d4_inverse, d4_transform
    >>> x = np.random.default_rng(0).random((2, 5, 3, 1))
    >>> all(np.array_equal(d4_inverse(d4_transform(x, k), k), x) for k in range(8))
    True
    """
    array = np.asarray(array)
    k = _validate_k(k)
    a0, a1 = _validate_axes(array, axes)
    out = np.flip(array, axis=a1) if k >= 4 else array
    out = np.rot90(out, -(k % 4), axes=(a0, a1))
    return np.ascontiguousarray(out)


# --------------------------------------------------------------------------------------------
# tf.data functions (stateless, seeded)
# --------------------------------------------------------------------------------------------
# No Python control flow on tensors below: AutoGraph is skipped (it cost seconds of tracing).
_no_autograph = tf.autograph.experimental.do_not_convert


def validate_amounts(
    brightness: float, contrast: float, gaussian_noise: float, poisson_noise: float | None
) -> None:
    """Check the intensity amounts of :func:`augment_batch` (raise
    :class:`~sciconv.errors.ConfigError` if bad).

    The one rule for these amounts, shared by :func:`augment_batch`, :class:`RandomIntensity`
    and the ``augment=`` dicts of :mod:`sciconv.datasets` (checked there before a pipeline is
    built).

    Parameters
    ----------
    brightness, contrast, gaussian_noise : float
        Numbers >= 0; ``contrast`` below 1 (a factor ``1 ± contrast``).
    poisson_noise : float or None
        None, or the counts per unit intensity (> 0).

    Raises
    ------
    ConfigError
        Naming the amount, what is allowed and what was received.

    Examples
    --------
    >>> from sciconv.augment import validate_amounts
    >>> validate_amounts(0.1, 0.2, 0.0, None)
    >>> validate_amounts(0.1, 1.5, 0.0, None)
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: contrast must be in [0, 1) (a factor 1 ± contrast); got 1.5
    """
    for name, value in (
        ("brightness", brightness),
        ("contrast", contrast),
        ("gaussian_noise", gaussian_noise),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"{name} must be a number >= 0; got {value!r}")
    if contrast >= 1:
        raise ConfigError(f"contrast must be in [0, 1) (a factor 1 ± contrast); got {contrast!r}")
    if poisson_noise is not None and (
        isinstance(poisson_noise, bool)
        or not isinstance(poisson_noise, (int, float))
        or poisson_noise <= 0
    ):
        raise ConfigError(
            "poisson_noise must be None or the counts per unit intensity (a number > 0); "
            f"got {poisson_noise!r}"
        )


def _stateless_seed(seed) -> tf.Tensor:
    """``seed`` as a stateless seed (an int64 tensor of shape ``(2,)``): an int ``s`` >= 0 is
    ``(0, s)``; a pair of ints or an integer tensor of shape ``(2,)`` is taken as it is."""
    bad = (
        "seed must be an int >= 0 or a pair of ints (a stateless seed, shape (2,)), e.g. "
        f"seed=0 or seed=(0, 1); got {seed!r}"
    )
    if seed is None or isinstance(seed, (bool, np.bool_, str, bytes, float)):
        raise ConfigError(bad)
    if isinstance(seed, (int, np.integer)):
        return tf.constant([0, check_int(seed, name="seed", minimum=0)], tf.int64)
    if isinstance(seed, (list, tuple)) and any(
        isinstance(v, (bool, np.bool_)) or not hasattr(v, "__index__") for v in seed
    ):
        raise ConfigError(bad)
    try:
        seed = tf.convert_to_tensor(seed)
    except (TypeError, ValueError):
        raise ConfigError(bad) from None
    if not seed.dtype.is_integer:
        raise ConfigError(bad)
    if seed.shape.rank == 0:  # an int tensor (a tf.data element): (0, s)
        seed = tf.stack([tf.zeros([], seed.dtype), seed])
    elif seed.shape.rank is not None and seed.shape.as_list() not in ([2], [None]):
        raise ConfigError(bad)
    return tf.cast(seed, tf.int64)


@_no_autograph
def _d4_apply(tensors, bits):
    """Apply D4 element ``bits[:, i]`` (transpose, flip H, flip W) to sample ``i`` of each tensor.

    ``bits`` is ``(3, N)`` of 0/1; every tensor of ``tensors`` (batches ``(N, H, W, ...)``) gets
    the same transforms. The transpose is skipped when H != W, which keeps the shape. Shared by
    :func:`augment_batch` (tf.data) and :class:`RandomD4` (a Keras layer).
    """
    n = ops.shape(tensors[0])[0]

    def pick(bit, a, b):
        shape = (n,) + (1,) * (len(a.shape) - 1)
        return ops.where(ops.reshape(ops.cast(bit, "bool"), shape), a, b)

    def transposed(ts):
        return [pick(bits[0], ops.swapaxes(t, 1, 2), t) for t in ts]

    h, w = tensors[0].shape[1], tensors[0].shape[2]
    if h is not None and w is not None:
        if h == w:
            tensors = transposed(tensors)
    else:
        dyn = ops.shape(tensors[0])
        tensors = list(
            ops.cond(
                ops.equal(dyn[1], dyn[2]),
                lambda: transposed(tensors),
                lambda: list(tensors),
            )
        )
    tensors = [pick(bits[1], ops.flip(t, axis=1), t) for t in tensors]
    return [pick(bits[2], ops.flip(t, axis=2), t) for t in tensors]


@_no_autograph
def _d4_batch(tensors, seed):
    """Apply one random D4 element per sample, the same to every tensor in ``tensors``."""
    n = tf.shape(tensors[0])[0]
    bits = tf.random.stateless_uniform([3, n], seed=seed, minval=0, maxval=2, dtype=tf.int32)
    return _d4_apply(tensors, bits)


@_no_autograph
def augment_batch(
    x,
    y=None,
    *,
    seed,
    d4: bool = True,
    brightness: float = 0.0,
    contrast: float = 0.0,
    gaussian_noise: float = 0.0,
    poisson_noise: float | None = None,
):
    """Augment a batch inside tf.data: one random transform per sample, seeded.

    Geometric transforms (D4) are applied identically to ``x`` and to ``y`` when ``y`` is a
    mask (rank 3 ``(N, H, W)`` or more); labels ``(N,)``/``(N, K)`` pass through. Intensity
    transforms touch ``x`` only.

    Parameters
    ----------
    x : tf.Tensor
        Images ``(N, H, W, C)`` float32 (normalized). Non-square images get the 4 elements of D4
        that keep their shape (flips and 180° rotation).
    y : tf.Tensor, optional
        Masks ``(N, H, W)`` or ``(N, H, W, K)``, or labels ``(N,)``/``(N, K)``.
    seed : int, pair of int or tf.Tensor
        Stateless seed, shape ``(2,)`` (an int ``s`` >= 0 is ``(0, s)``); the same seed gives
        the same result.
    d4 : bool, optional
        Random element of D4 per sample. Default True.
    brightness : float, optional
        Add ``U(-brightness, brightness)`` per sample. Default 0 (off).
    contrast : float, optional
        Scale deviations from each sample's mean by ``U(1 - contrast, 1 + contrast)``. Default 0.
    gaussian_noise : float, optional
        Standard deviation of added Gaussian noise. Default 0 (off).
    poisson_noise : float, optional
        Shot noise at this many counts per unit of (normalized) intensity:
        ``Poisson(max(x, 0) * s) / s - max(x, 0) + x``. Default None (off).

    Returns
    -------
    tf.Tensor or tuple of tf.Tensor
        ``x`` augmented, or ``(x, y)`` when ``y`` is given.

    Examples
    --------
    >>> import numpy as np, tensorflow as tf
    >>> from sciconv.augment import augment_batch
    >>> x = tf.constant(np.arange(32.0, dtype="float32").reshape(2, 4, 4, 1))
    >>> m = tf.cast(x[..., 0], tf.int32)
    >>> xa, ma = augment_batch(x, m, seed=(1, 2))
    >>> bool(tf.reduce_all(tf.cast(xa[..., 0], tf.int32) == ma))
    True
    """
    validate_amounts(brightness, contrast, gaussian_noise, poisson_noise)
    x = tf.convert_to_tensor(x)
    if x.shape.rank != 4:
        raise ConfigError(f"x must be a batch (N, H, W, C); got shape {tuple(x.shape)}")
    seeds = tf.random.experimental.stateless_split(_stateless_seed(seed), num=5)
    has_y = y is not None
    if has_y:
        y = tf.convert_to_tensor(y)
    spatial_y = has_y and y.shape.rank is not None and y.shape.rank >= 3
    if d4:
        if spatial_y:
            x, y = _d4_batch([x, y], seeds[0])
        else:
            (x,) = _d4_batch([x], seeds[0])
    n = tf.shape(x)[0]
    bshape = tf.stack([n, 1, 1, 1])
    if contrast:
        factor = tf.random.stateless_uniform([n], seeds[1], 1.0 - contrast, 1.0 + contrast)
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * tf.reshape(factor, bshape) + mean
    if brightness:
        delta = tf.random.stateless_uniform([n], seeds[2], -brightness, brightness)
        x = x + tf.reshape(delta, bshape)
    if poisson_noise is not None:
        pos = tf.maximum(x, 0.0)
        counts = tf.random.stateless_poisson(tf.shape(x), seeds[3], pos * poisson_noise, x.dtype)
        x = x + counts / poisson_noise - pos
    if gaussian_noise:
        x = x + tf.random.stateless_normal(tf.shape(x), seeds[4], stddev=gaussian_noise)
    return (x, y) if has_y else x


@_no_autograph
def augment_pair(x, y, seed, **options):
    """Augment one image and its mask (or label) inside ``Dataset.map``.

    Parameters
    ----------
    x : tf.Tensor
        Image ``(H, W, C)`` float32.
    y : tf.Tensor or None
        Mask ``(H, W)`` / ``(H, W, K)`` (transformed with ``x``), or a label (untouched).
    seed : int, pair of int or tf.Tensor
        Stateless seed, shape ``(2,)`` (an int ``s`` >= 0 is ``(0, s)``).
    **options
        ``d4``, ``brightness``, ``contrast``, ``gaussian_noise``, ``poisson_noise`` as in
        :func:`augment_batch`.

    Returns
    -------
    tuple of tf.Tensor
        ``(x, y)`` augmented.

    Examples
    --------
    >>> import numpy as np, tensorflow as tf
    >>> from sciconv.augment import augment_pair
    >>> img = tf.constant(np.arange(16.0, dtype="float32").reshape(4, 4, 1))
    >>> mask = tf.cast(img[..., 0] > 7, tf.int32)
    >>> xa, ya = augment_pair(img, mask, (3, 4))
    >>> bool(tf.reduce_all(tf.cast(xa[..., 0] > 7, tf.int32) == ya))
    True
    """
    x = tf.convert_to_tensor(x)
    if x.shape.rank != 3:
        raise ConfigError(f"x must be one image (H, W, C); got shape {tuple(x.shape)}")
    if y is None:
        return augment_batch(x[None], seed=seed, **options)[0], None
    y = tf.convert_to_tensor(y)
    xb, yb = augment_batch(x[None], y[None], seed=seed, **options)
    return xb[0], yb[0]


@_no_autograph
def random_crop(x, y=None, *, size, seed):
    """Crop the same random window of ``size`` from an image and its mask (stateless, seeded).

    Parameters
    ----------
    x : tf.Tensor
        Image ``(H, W, C)`` with ``H >= size[0]`` and ``W >= size[1]``.
    y : tf.Tensor, optional
        Mask ``(H, W)`` or ``(H, W, K)`` cropped at the same place.
    size : int or pair of int
        Crop height and width (an int: a square crop).
    seed : int, pair of int or tf.Tensor
        Stateless seed, shape ``(2,)`` (an int ``s`` >= 0 is ``(0, s)``).

    Returns
    -------
    tf.Tensor or tuple of tf.Tensor
        The crop of ``x``, or ``(x, y)`` crops when ``y`` is given.

    Examples
    --------
    >>> import numpy as np, tensorflow as tf
    >>> from sciconv.augment import random_crop
    >>> x = tf.reshape(tf.range(64.0), (8, 8, 1))
    >>> m = tf.cast(tf.reshape(tf.range(64), (8, 8)), tf.int32)
    >>> cx, cm = random_crop(x, m, size=(4, 4), seed=(0, 1))
    >>> tuple(cx.shape), bool(tf.reduce_all(tf.cast(cx[..., 0], tf.int32) == cm))
    ((4, 4, 1), True)
    """
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)  # an int: a square crop
    h, w = standardize_tuple(size, 2, name="size")
    seed = _stateless_seed(seed)
    x = tf.convert_to_tensor(x)
    known = x.shape[:2]
    if x.shape.rank is not None and None not in known and (h > known[0] or w > known[1]):
        raise ConfigError(f"size {(h, w)} is larger than the image {tuple(known)}")
    shape = tf.shape(x)
    oy = tf.random.stateless_uniform([], seed, 0, shape[0] - h + 1, dtype=tf.int32)
    ox = tf.random.stateless_uniform(
        [], tf.random.experimental.stateless_fold_in(seed, 1), 0, shape[1] - w + 1, dtype=tf.int32
    )
    cx = x[oy : oy + h, ox : ox + w]
    if y is None:
        return cx
    y = tf.convert_to_tensor(y)
    return cx, y[oy : oy + h, ox : ox + w]


# --------------------------------------------------------------------------------------------
# Keras preprocessing layers
# --------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="sciconv")
class RandomD4(keras.layers.Layer):
    """Random element of D4 per sample (flips and 90° rotations), active in training only.

    Called on one batch ``(N, H, W, C)``, or on a tuple ``(images, masks)`` (masks
    ``(N, H, W)`` or ``(N, H, W, K)``) which then get the same transform. Non-square inputs get
    the 4 shape-preserving elements (flips and 180° rotation). Only ``training=True`` (as Keras
    passes in ``fit``) transforms; ``training=False`` (``predict``/``evaluate``) and a plain call
    ``layer(x)`` or ``model(x)`` return the input unchanged.

    Parameters
    ----------
    seed : int, optional
        Seed of the layer's :class:`keras.random.SeedGenerator`.
    **kwargs
        Passed to :class:`keras.layers.Layer` (``name``, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.augment import RandomD4
    >>> layer = RandomD4(seed=0)
    >>> x = np.arange(32, dtype="float32").reshape(2, 4, 4, 1)
    >>> y = layer(x, training=True)
    >>> tuple(y.shape), bool(np.array_equal(np.sort(np.ravel(y)), np.ravel(x)))
    ((2, 4, 4, 1), True)
    >>> bool(np.array_equal(layer(x, training=False), x))
    True
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = None if seed is None else check_int(seed, name="seed", minimum=0)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.supports_masking = True

    def call(self, inputs, training=None):
        if not training:
            return inputs
        is_seq = isinstance(inputs, (list, tuple))
        tensors = [ops.convert_to_tensor(t) for t in (inputs if is_seq else [inputs])]
        n = ops.shape(tensors[0])[0]
        bits = keras.random.randint((3, n), 0, 2, seed=self.seed_generator, dtype="int32")
        out = _d4_apply(tensors, bits)
        return type(inputs)(out) if is_seq else out[0]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="sciconv")
class RandomIntensity(keras.layers.Layer):
    """Random brightness/contrast jitter and Gaussian noise per sample, active in training only.

    Only ``training=True`` (as Keras passes in ``fit``) changes the input; a plain call returns it.

    Parameters
    ----------
    brightness : float, optional
        Add ``U(-brightness, brightness)`` per sample. Default 0.05.
    contrast : float, optional
        Scale deviations from the sample mean by ``U(1 - contrast, 1 + contrast)``. Default 0.05.
    noise : float, optional
        Standard deviation of added Gaussian noise. Default 0.
    seed : int, optional
        Seed of the layer's :class:`keras.random.SeedGenerator`.
    **kwargs
        Passed to :class:`keras.layers.Layer`.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.augment import RandomIntensity
    >>> layer = RandomIntensity(brightness=0.1, contrast=0.0, seed=0)
    >>> x = np.zeros((2, 4, 4, 1), "float32")
    >>> out = np.asarray(layer(x, training=True))
    >>> bool(np.all(np.abs(out) <= 0.1)), bool(np.array_equal(layer(x, training=False), x))
    (True, True)
    """

    def __init__(
        self,
        brightness: float = 0.05,
        contrast: float = 0.05,
        noise: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_amounts(brightness, contrast, noise, None)
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.noise = float(noise)
        self.seed = None if seed is None else check_int(seed, name="seed", minimum=0)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        x = ops.convert_to_tensor(inputs)
        n = ops.shape(x)[0]
        shape = (n, 1, 1, 1)
        if self.contrast:
            f = keras.random.uniform(
                shape, 1 - self.contrast, 1 + self.contrast, seed=self.seed_generator
            )
            mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
            x = (x - mean) * ops.cast(f, x.dtype) + mean
        if self.brightness:
            d = keras.random.uniform(
                shape, -self.brightness, self.brightness, seed=self.seed_generator
            )
            x = x + ops.cast(d, x.dtype)
        if self.noise:
            x = x + ops.cast(
                keras.random.normal(ops.shape(x), stddev=self.noise, seed=self.seed_generator),
                x.dtype,
            )
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "brightness": self.brightness,
            "contrast": self.contrast,
            "noise": self.noise,
            "seed": self.seed,
        }


# --------------------------------------------------------------------------------------------
# the training default: D4 for classifiers of sky images
# --------------------------------------------------------------------------------------------
def _angular(scale) -> bool:
    """True for a recorded pixel scale ``{"y", "x", "unit"}`` whose unit is an angle."""
    import astropy.units as u

    unit = scale.get("unit") if isinstance(scale, dict) else getattr(scale, "unit", None)
    try:
        return unit is not None and u.Unit(unit).physical_type == "angle"
    except (ValueError, TypeError):
        return False


def is_sky_data(train, metadata: dict | None = None) -> bool:
    """Whether training data are sky images, by what the data (or the model) recorded.

    True when ``train`` (a dataset from :mod:`sciconv.datasets`) records an angular
    ``pixel_scale`` (FITS files with a celestial WCS) or reads only FITS files
    (``.file_paths``), or when the model ``metadata`` records an angular ``pixel_scale`` (a sky
    model being trained further). Plain arrays and other datasets carry neither: False.

    Parameters
    ----------
    train : tf.data.Dataset or tuple
        The training data; its ``.pixel_scale`` and ``.file_paths`` attributes are read if any.
    metadata : dict, optional
        The model's sciconv metadata (its ``pixel_scale`` is read). Default None: none.

    Returns
    -------
    bool

    Examples
    --------
    >>> import types
    >>> from sciconv.augment import is_sky_data
    >>> is_sky_data(types.SimpleNamespace(pixel_scale={"y": 0.2, "x": 0.2, "unit": "arcsec"}))
    True
    >>> is_sky_data(types.SimpleNamespace(file_paths=["a.tif"])), is_sky_data((None, None))
    (False, False)
    """
    from sciconv.io import FITS_EXTENSIONS

    if _angular(getattr(train, "pixel_scale", None)) or _angular(
        (metadata or {}).get("pixel_scale")
    ):
        return True
    paths = getattr(train, "file_paths", None)
    return bool(paths) and all(str(p).lower().endswith(FITS_EXTENSIONS) for p in paths)


def resolve_train_augment(augment, *, task: str | None, train, metadata: dict | None = None):
    """The augmentation :func:`sciconv.training.fit` applies: ``"d4"`` or None.

    The rule of ``augment="auto"`` (the default of ``fit``): **D4 is on for image-level labels
    (task ``"classification"`` or ``"multilabel"``) of cutout collections**: a dataset of image
    files from :func:`sciconv.datasets.from_folder` / :func:`~sciconv.datasets.from_catalog`
    (it records ``.file_paths``), or any data that say they are sky images
    (:func:`is_sky_data`). A galaxy, a star, an artefact on the sky (or a cell on a slide) has no
    "up" and no handedness that its class depends on, so the 8 flips/rotations of each cutout
    are 8 valid training images; on a few hundred cutouts that is the largest single gain there
    is. It stays off for regression (a position angle or a shear changes under rotation), for
    segmentation (masks must follow the image: ``sciconv.datasets.from_pairs(augment=True)``
    does that), and for plain arrays or datasets built elsewhere, which say nothing about what
    they hold (their labels may depend on orientation). ``"d4"`` (or True) turns it on for any
    task (masks and per-pixel weights of rank >= 3 follow the image); None (or False) turns it
    off: do that for labels that change under a flip or rotation (spiral handedness, the
    direction of a trail or a diffraction spike, anything with an "up").

    Parameters
    ----------
    augment : {"auto", "d4", None} or bool
        The ``augment`` argument of ``fit``.
    task : str or None
        The model's metadata ``task``.
    train : tf.data.Dataset or tuple
        The training data (their ``.pixel_scale`` / ``.file_paths`` attributes are read).
    metadata : dict, optional
        The model's sciconv metadata (its ``pixel_scale``).

    Returns
    -------
    str or None
        ``"d4"`` or None.

    Raises
    ------
    ConfigError
        An ``augment`` that is not one of the above.

    Examples
    --------
    >>> import types
    >>> from sciconv.augment import resolve_train_augment
    >>> files = types.SimpleNamespace(file_paths=["g1.fits", "g2.png"])
    >>> resolve_train_augment("auto", task="classification", train=files)
    'd4'
    >>> print(resolve_train_augment("auto", task="regression", train=files))
    None
    >>> resolve_train_augment(True, task="segmentation", train=(None, None))
    'd4'
    """
    value = (
        {True: "d4", False: None}.get(augment, augment) if isinstance(augment, bool) else augment
    )
    if value not in TRAIN_AUGMENT:
        raise ConfigError(
            f"augment must be 'auto', 'd4' (or True) or None (or False); got augment={augment!r}"
        )
    if value != "auto":
        return value
    cutouts = bool(getattr(train, "file_paths", None)) or is_sky_data(train, metadata)
    return "d4" if task in _IMAGE_LEVEL_TASKS and cutouts else None


def d4_train_data(train, *, seed: int | None = None, batch_size: int = 32, repeat: bool = False):
    """Training batches with a random D4 element per sample (masks and weights follow).

    Parameters
    ----------
    train : tf.data.Dataset or tuple
        Batches ``(x, y[, w])`` with ``x`` of shape ``(N, H, W, C)``, or arrays ``(x, y[, w])``
        (then shuffled every epoch, seeded, and batched by ``batch_size``). Parts of ``y``/``w``
        of rank >= 3 (masks, per-pixel weights) get the image's transform; labels pass through.
    seed : int, optional
        Seed of the transforms (and of the shuffle of arrays); the same seed gives the same
        epochs. None: a random one.
    batch_size : int, optional
        Batch size for arrays. Default 32.
    repeat : bool, optional
        Repeat the batches of arrays endlessly (for a fixed ``steps_per_epoch``). Default False.

    Returns
    -------
    tf.data.Dataset
        A new transform for every sample in every epoch; with a ``seed``, a dataset with
        ``.resume_at`` gives batch ``b`` seeded by ``(seed, b)``, resumable (``.resume_at(n)``).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.augment import d4_train_data
    >>> x = np.arange(32, dtype="float32").reshape(2, 4, 4, 1)
    >>> ds = d4_train_data((x, np.array([0, 1])), seed=0, batch_size=2)
    >>> xb, yb = next(iter(ds))
    >>> tuple(xb.shape), sorted(np.ravel(xb).tolist()) == sorted(np.ravel(x).tolist())
    ((2, 4, 4, 1), True)
    """
    stream = None if isinstance(train, tuple) else getattr(train, "resume_at", None)
    if callable(stream) and seed is not None:
        return _d4_indexed(stream, int(seed), getattr(train, "steps_per_epoch", None))
    if isinstance(train, tuple):
        n = len(train[0])
        ds = tf.data.Dataset.from_tensor_slices(train)
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True).batch(batch_size)
        ds = ds.repeat() if repeat else ds
    else:
        ds = train
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip((ds, seeds)).map(_d4_parts, num_parallel_calls=tf.data.AUTOTUNE)


@_no_autograph
def _d4_parts(batch, s):
    """One random D4 element per sample of ``x``, and of the parts of rank >= 3 that follow."""
    x, *rest = batch
    spatial = [i for i, t in enumerate(rest) if getattr(t, "ndim", 0) and t.ndim >= 3]
    out = _d4_batch([x] + [rest[i] for i in spatial], tf.cast(s, tf.int64))
    for j, i in enumerate(spatial, start=1):
        rest[i] = out[j]
    return (out[0], *rest)


def _d4_indexed(stream, seed: int, steps):
    """:func:`d4_train_data` of a dataset resumable at any batch: batch ``b``'s transforms
    seeded by ``(seed, b)`` (a stream of its own: the dataset's augmentation draws others)."""

    def resume_at(first: int = 0):
        batches, base = stream(first), tf.constant([seed, 0], tf.int64)  # stream checks first
        seeds = tf.data.Dataset.counter(first).map(lambda b: tf.random.fold_in(base, b))
        ds = tf.data.Dataset.zip((batches, seeds)).map(_d4_parts, num_parallel_calls=-1)
        ds.resume_at, ds.steps_per_epoch = resume_at, steps
        return ds

    return resume_at(0)
