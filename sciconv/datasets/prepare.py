"""A file prepared for a model: read, normalized, fitted to a size (numpy only, thread-safe).

:class:`FilePrep` is the one rule by which an image file becomes a model input, shared by the
dataset builders (training and validation images) and by :func:`sciconv.inference.predict_files`
(the same preparation at prediction time). It imports no TensorFlow.

Examples
--------
>>> import numpy as np
>>> prep = FilePrep.create(image_size=(2, 2), normalize="minmax")
>>> x = prep.fit(prep.normalize(np.arange(17.0)[1:].reshape(4, 4, 1)))  # (x - 1) / 15
>>> (15 * x[..., 0]).round().tolist()
[[5.0, 6.0], [9.0, 10.0]]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from sciconv._validation import look_up_option, standardize_tuple
from sciconv.datasets._arrays import center_crop, pad_to
from sciconv.errors import ConfigError, SciconvError
from sciconv.io import read_pixels
from sciconv.preprocess import (
    BAD_PIXEL_FILL,
    NormSpec,
    fill_nan,
    normalize_spec,
    resolve_normalization,
)

__all__ = ["SIZE_POLICIES", "FilePrep"]

#: How an image is fitted to a fixed ``(H, W)``: cut a window, zero-pad (never crop), resample.
SIZE_POLICIES = ("crop", "pad", "resize")


@dataclass(frozen=True)
class FilePrep:
    """How one image file becomes a model input: read, normalize, fit to a size.

    Build it with :meth:`create`, which validates every setting once; the methods then trust
    them. The dataset builders prepare each image this way (validation images with
    :meth:`fit`, training crops with :meth:`random_fit`), and prediction on files repeats it.

    Parameters
    ----------
    normalization : NormSpec or None
        Applied to the whole image (:func:`sciconv.preprocess.normalize_spec`); None: raw float32.
    size : (int, int) or None
        The output ``(H, W)``; None keeps each image's own size.
    policy : {"crop", "pad", "resize"}, optional
        See :data:`SIZE_POLICIES`: ``"crop"`` cuts the centre window (zero-padding smaller
        images), ``"pad"`` zero-pads and never crops, ``"resize"`` resamples (bilinear,
        anti-aliased when shrinking). Default ``"crop"``.

    Examples
    --------
    >>> import numpy as np
    >>> prep = FilePrep.create(image_size=4, size_policy="pad", normalize=None)
    >>> prep.fit(np.ones((2, 3, 1), np.float32))[..., 0].astype(int).tolist()
    [[0, 0, 0, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]]
    """

    normalization: NormSpec | None
    size: tuple[int, int] | None
    policy: str = "crop"

    @classmethod
    def create(
        cls,
        *,
        normalize: Any = "default",
        image_size: int | tuple[int, int] | None = None,
        size_policy: str = "crop",
        recorded: Any = None,
        error: type[SciconvError] = ConfigError,
    ) -> FilePrep:
        """Validate the settings once and return the preparation they describe.

        Parameters
        ----------
        normalize : str, dict, NormSpec or None, optional
            Any value :func:`sciconv.preprocess.resolve_normalization` accepts (``"default"``,
            ``"model"`` with ``recorded``, a method name, a spec dict, None). Default
            ``"default"``.
        image_size : int or (int, int), optional
            Output ``(H, W)`` (an int: square). Default None: each image's own size.
        size_policy : {"crop", "pad", "resize"}, optional
            Default ``"crop"``.
        recorded : dict or NormSpec, optional
            The spec a model or dataset recorded (for ``normalize="model"``).
        error : type, optional
            The :class:`~sciconv.errors.SciconvError` subclass raised. Default ``ConfigError``.

        Returns
        -------
        FilePrep

        Raises
        ------
        SciconvError
            (of type ``error``) naming the argument, what is allowed and what was received.

        Examples
        --------
        >>> prep = FilePrep.create(image_size=(32, 48))
        >>> prep.size, prep.policy, prep.normalization.to_dict()
        ((32, 48), 'crop', {'method': 'percentile', 'low': 1.0, 'high': 99.8})
        >>> FilePrep.create(size_policy="pda")
        Traceback (most recent call last):
        ...
        sciconv.errors.ConfigError: size_policy must be one of 'crop', 'pad', 'resize'; got 'pda' \
(did you mean 'pad'?)
        """
        size = None
        if image_size is not None:
            try:
                size = standardize_tuple(image_size, 2, name="image_size")
            except ConfigError as exc:
                if error is ConfigError:
                    raise
                raise error(exc.message) from exc
        spec = resolve_normalization(normalize, recorded=recorded, error=error)
        policy = look_up_option(size_policy, SIZE_POLICIES, name="size_policy", error=error)
        return cls(spec, size, policy)

    def read(self, path: str | os.PathLike) -> np.ndarray:
        """Read a file's pixels (:func:`sciconv.io.read_pixels`) and :meth:`normalize` them.

        Parameters
        ----------
        path : str or path-like
            A FITS, TIFF or PNG file.

        Returns
        -------
        numpy.ndarray
            float32 ``(H, W, C)``, the file's own size (call :meth:`fit` to size it).

        Examples
        --------
        >>> import pathlib, tempfile, numpy as np
        >>> from astropy.io import fits
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.fits"
        >>> fits.writeto(path, np.arange(6.0).reshape(2, 3))
        >>> (5 * FilePrep.create(normalize="minmax").read(path)[..., 0]).round().tolist()
        [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
        """
        return self.normalize(read_pixels(path))

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """Normalize a whole image with :attr:`FilePrep.normalization`; NaN and infinities are
        filled by :data:`sciconv.preprocess.BAD_PIXEL_FILL` (the good pixels mirrored across
        their edge), as prediction fills them.

        Examples
        --------
        >>> import numpy as np
        >>> prep = FilePrep.create(normalize="minmax")
        >>> prep.normalize(np.array([[[np.nan], [0.0], [2.0], [4.0]]]))[..., 0].tolist()
        [[0.5, 0.0, 0.5, 1.0]]
        """
        x = normalize_spec(x, self.normalization)
        x = np.asarray(x, dtype=np.float32)
        return fill_nan(x, method=BAD_PIXEL_FILL) if not np.isfinite(x).all() else x

    def fit(self, x: np.ndarray, *, keep_larger: bool = False) -> np.ndarray:
        """Fit an image ``(H, W, C)`` to :attr:`FilePrep.size` by :attr:`FilePrep.policy` (centre
        window for crop).

        ``keep_larger=True`` (crop policy) only pads smaller sides, leaving larger images whole
        for a later random crop.

        Examples
        --------
        >>> import numpy as np
        >>> prep = FilePrep.create(image_size=2, normalize=None)
        >>> prep.fit(np.arange(16.0).reshape(4, 4, 1))[..., 0].tolist()
        [[5.0, 6.0], [9.0, 10.0]]
        >>> prep.fit(np.ones((4, 4, 1)), keep_larger=True).shape
        (4, 4, 1)
        """
        if self.size is None:
            return x
        h, w = self.size
        if self.policy == "resize":
            if x.shape[:2] == (h, w):
                return x
            from skimage.transform import resize

            down = x.shape[0] > h or x.shape[1] > w
            out = resize(x, (h, w, x.shape[2]), order=1, anti_aliasing=down, preserve_range=True)
            return out.astype(np.float32)
        x = pad_to(x, h, w)
        return x if keep_larger else center_crop(x, h, w)

    def random_fit(self, x: np.ndarray, seed: int) -> np.ndarray:
        """A random window of :attr:`FilePrep.size` (the image zero-padded up to it first), seeded.

        Examples
        --------
        >>> import numpy as np
        >>> prep = FilePrep.create(image_size=2, normalize=None)
        >>> x = np.arange(16.0).reshape(4, 4, 1)
        >>> np.array_equal(prep.random_fit(x, 3), prep.random_fit(x, 3))
        True
        >>> prep.random_fit(x, 3).shape
        (2, 2, 1)
        """
        h, w = self.size
        x = pad_to(x, h, w)
        rng = np.random.default_rng(seed)
        top = int(rng.integers(0, x.shape[0] - h + 1))
        left = int(rng.integers(0, x.shape[1] - w + 1))
        return x[top : top + h, left : left + w]
