"""Label images as users hold them -> the integer ``(H, W)`` map the postprocess functions take.

One rule for every function of :mod:`sciconv.postprocess` that takes instance labels
(:func:`measure`, :func:`equivalent_diameters`, :func:`to_photutils`, :func:`to_regions`,
:func:`to_ccddata`, :func:`labels_to_geojson`, :func:`write_geojson`, :func:`object_scores`,
:func:`write_products` and the ``labels=`` of the background and error estimators), so the same
input is taken, or refused with the same error, by all of them:

- a :class:`~sciconv.io.GridImage` or an NDData gives its ``.data`` (its mask is not applied:
  a masked pixel keeps its label);
- a trailing channel axis of one is dropped;
- labels are integers (or bools): floats are refused, since ``sciconv.io.read`` gives images
  and label files alike as float32 (an image taken for labels gives thousands of "objects",
  and float32 merges ids from 2**24 on); :func:`sciconv.io.read_labels` reads label files;
- no label is negative (0 = background).

Every refusal is an :class:`~sciconv.errors.InvalidImageError` (a file name: a
:class:`~sciconv.errors.ConfigError`) that names :func:`sciconv.io.read_labels`, the reader of
label files. :mod:`sciconv.metrics` checks its labels with its own rule (it keeps the ids'
dtype).
"""

from __future__ import annotations

import numpy as np

from sciconv._validation import refuse_path
from sciconv.errors import InvalidImageError
from sciconv.io import GridImage, as_array, is_nddata

#: What a refused label image is told: the reader of label files.
READ_LABELS = "read label files with sciconv.io.read_labels (integer (H, W) labels)"


def label_pixels(labels, *, name: str = "labels"):
    """The pixels of a label image, neither copied nor read: a GridImage's or NDData's
    ``.data`` (its mask not applied), a list as an array, any other array (a memory map, a zarr
    or dask array) as it is. A file name is refused (``ConfigError``).

    Parameters
    ----------
    labels : GridImage, astropy.nddata.NDData or array_like
        The label image.
    name : str, optional
        The argument's name in messages.

    Returns
    -------
    array_like
        The pixels, shape and dtype unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.io import GridImage
    >>> label_pixels(GridImage(np.ones((2, 3, 1), np.float32))).shape
    (2, 3, 1)
    >>> label_pixels([[0, 1]]).dtype.kind
    'i'
    """
    refuse_path(labels, name=name, reader="sciconv.io.read_labels")
    if isinstance(labels, GridImage) or is_nddata(labels):
        return labels.data
    if not (hasattr(labels, "shape") and hasattr(labels, "dtype")):
        try:
            return np.asarray(as_array(labels, load=True))
        except ValueError as err:  # numpy's "inhomogeneous shape": a list of label images
            raise InvalidImageError(
                f"{name} must be one (H, W) label image; got a {type(labels).__name__} whose "
                f"items are not one grid (several label images? pass them one by one): {err}"
            ) from None
    return labels


def check_label_layout(shape, dtype, *, name: str = "labels") -> None:
    """Raise :class:`~sciconv.errors.InvalidImageError` unless ``shape`` and ``dtype`` can be
    a label image: ``(H, W)`` or ``(H, W, 1)`` of bools or integers (floats are refused: the
    module notes).

    Parameters
    ----------
    shape : tuple of int
        The array's shape.
    dtype : numpy.dtype
        The array's dtype.
    name : str, optional
        The argument's name in messages.

    Examples
    --------
    >>> check_label_layout((4, 5, 1), np.dtype("uint16"))
    >>> check_label_layout((4, 5, 3), np.dtype("uint8"))
    Traceback (most recent call last):
    ...
    sciconv.errors.InvalidImageError: labels must be a 2-D (H, W) or (H, W, 1) label image; got \
shape (4, 5, 3) (3 channels? a label image has one): read label files with \
sciconv.io.read_labels (integer (H, W) labels)
    """
    shape = tuple(int(n) for n in shape)
    if not (len(shape) == 2 or (len(shape) == 3 and shape[-1] == 1)):
        hint = ""
        if len(shape) == 3 and shape[-1] <= 4:
            hint = f" ({shape[-1]} channels? a label image has one)"
        raise InvalidImageError(
            f"{name} must be a 2-D (H, W) or (H, W, 1) label image; got shape {shape}{hint}: "
            f"{READ_LABELS}"
        )
    if np.dtype(dtype).kind == "f":  # sciconv.io.read gives every file as float32: images too
        raise InvalidImageError(
            f"{name} must be an integer instance map (0 = background); got {dtype} (a label "
            f"file read with sciconv.io.read, or an image?): {READ_LABELS}"
        )
    if np.dtype(dtype).kind not in "biu":
        raise InvalidImageError(
            f"{name} must be an integer instance map (0 = background); got dtype {dtype}: "
            f"{READ_LABELS}"
        )


def validate_labels(labels, *, name: str = "labels", keep_dtype: bool = False) -> np.ndarray:
    """Instance labels as users hold them, as an int64 ``(H, W)`` array (module notes).

    Parameters
    ----------
    labels : GridImage, astropy.nddata.NDData or array_like
        Instance labels, 0 = background: integers or bools, ``(H, W)`` or ``(H, W, 1)``. Floats
        are refused: :func:`sciconv.io.read` gives images and label files alike as float32
        (an image taken for labels gives thousands of objects, and float32 merges ids from
        2**24 on); :func:`sciconv.io.read_labels` reads label files as integers.
    name : str, optional
        The argument's name in messages.
    keep_dtype : bool, optional
        Keep the labels' own integer dtype (a view where they are a numpy array; bools as
        uint8), for callers that cast row chunks themselves: no int64 copy of the whole image.
        Default False.

    Returns
    -------
    ndarray of int64 (or the labels' own integer dtype), shape (H, W)

    Raises
    ------
    InvalidImageError
        Another shape, a dtype that is not integers (floats included), negative values (the
        message names :func:`sciconv.io.read_labels`), uint64 ids past int64's range.
    ConfigError
        A file name instead of pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.io import GridImage
    >>> grid = GridImage(np.array([[0, 2], [7, 7]], np.int32)[..., None])
    >>> validate_labels(grid).tolist(), validate_labels(grid).dtype
    ([[0, 2], [7, 7]], dtype('int64'))
    >>> validate_labels(grid, keep_dtype=True).dtype
    dtype('int32')
    >>> validate_labels(np.array([[0.0, 2.0]]))
    Traceback (most recent call last):
    ...
    sciconv.errors.InvalidImageError: labels must be an integer instance map (0 = background); \
got float64 (a label file read with sciconv.io.read, or an image?): read label files with \
sciconv.io.read_labels (integer (H, W) labels)
    """
    arr = _checked(labels, name)
    if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        # the int64 cast would wrap them negative: their objects vanished from catalogs
        raise InvalidImageError(
            f"{name} hold ids up to {int(arr.max())}, past int64's 2**63 - 1: number them "
            "1, 2, ... first (skimage.segmentation.relabel_sequential)"
        )
    if keep_dtype:
        return arr.view(np.uint8) if arr.dtype == bool else arr
    return arr.astype(np.int64, copy=False)


def _checked(labels, name: str) -> np.ndarray:
    """The labels' integer ``(H, W)`` pixels, checked (module notes): a view where they are a
    numpy array already; a zarr or dask array read whole."""
    arr = label_pixels(labels, name=name)
    if not isinstance(arr, np.ndarray):  # a zarr or dask array: read whole
        arr = as_array(arr, load=True)
    arr = np.asarray(arr)  # a masked array's data: a masked pixel keeps its label
    check_label_layout(arr.shape, arr.dtype, name=name)
    arr = arr.reshape(arr.shape[:2])
    refuse_negative(arr, name)
    return arr


def refuse_negative(arr: np.ndarray, name: str = "labels") -> None:
    """Raise :class:`~sciconv.errors.InvalidImageError` when integer labels hold a negative
    value (one pass over ``arr``, no copy).

    Examples
    --------
    >>> refuse_negative(np.array([[0, 3]]))  # fine
    """
    if arr.dtype.kind in "if" and arr.size and arr.min() < 0:
        raise InvalidImageError(
            f"{name} must be >= 0 (0 = background); got negative values (down to "
            f"{arr.min():g}): {READ_LABELS}"
        )


def labelled_pixels(labels, *, name: str = "labels") -> np.ndarray:
    """Bool ``(H, W)``, True where ``labels`` hold an object: the labels checked as
    :func:`validate_labels` checks them, without its int64 copy (the background estimators
    need only where the objects are).

    Parameters
    ----------
    labels : GridImage, astropy.nddata.NDData or array_like
        Instance labels, as :func:`validate_labels` takes them.
    name : str, optional
        The argument's name in messages.

    Returns
    -------
    ndarray of bool, shape (H, W)

    Examples
    --------
    >>> labelled_pixels(np.array([[0, 3]], np.uint16)).tolist()
    [[False, True]]
    >>> labelled_pixels(np.array([[0, 2]], np.int32)[..., None]).tolist()
    [[False, True]]
    """
    return _checked(labels, name) > 0
