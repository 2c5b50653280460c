"""No-data frames: the rectangular border of non-finite pixels around an image's data.

A sky mosaic reprojected onto a larger grid, or a stitched slide, holds its data inside a frame
of NaN. Predicted as it is, the network sees the frame filled by mirroring (not the zero padding
of a bare image's border) and, with a frame that is not a multiple of the model's divisor, the
data shifted against the U-Net's pooling grid: probabilities changed up to 0.61 even 50 px
inside a real image framed by 1 px of NaN (QA). So the frame is cropped before prediction and
the result pasted back: a framed image gives the bare image's result, whatever the frame's
width.

The frame is the rows and columns at the edges whose every value (every channel) is NaN or
infinite; pixels with one finite channel stay, so no finite value is dropped. It is looked for
only in images held in memory (a numpy array, an eager :class:`~sciconv.io.GridImage`, an
NDData): a memory map, a lazy file and a dask array would be read whole to find it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sciconv import io
from sciconv.inference._decisions import note_decision
from sciconv.inference._source import validate_image

#: Values looked at per step when scanning an image for its frame (bounds the temporary mask).
_SCAN_VALUES = 1 << 22


@dataclasses.dataclass(frozen=True)
class Frame:
    """Where an image's data lie inside its no-data frame.

    Attributes
    ----------
    y0, y1, x0, x1 : int
        The data's bounding box, ``[y0:y1, x0:x1]`` (``y1``, ``x1`` exclusive).
    shape : (int, int)
        The whole image's height and width.

    Examples
    --------
    >>> import numpy as np
    >>> frame = Frame(1, 3, 2, 4, (4, 6))
    >>> frame.crop(np.arange(24).reshape(4, 6))
    array([[ 8,  9],
           [14, 15]])
    >>> frame.paste(np.ones((2, 2), "int32"), 0)[..., 1:5]
    array([[0, 0, 0, 0],
           [0, 1, 1, 0],
           [0, 1, 1, 0],
           [0, 0, 0, 0]], dtype=int32)
    """

    y0: int
    y1: int
    x0: int
    x1: int
    shape: tuple[int, int]

    @property
    def box(self) -> tuple[slice, slice]:
        """The data's rows and columns, as slices."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def crop(self, array):
        """``array[y0:y1, x0:x1]`` (a view of a numpy array)."""
        return array[self.box]

    def paste(self, part: np.ndarray, fill) -> np.ndarray:
        """A new array of the whole image's height and width holding ``part`` (the crop's
        result, ``(y1 - y0, x1 - x0, ...)``) in the box and ``fill`` around it."""
        out = np.full((*self.shape, *part.shape[2:]), fill, dtype=part.dtype)
        out[self.box] = part
        return out

    def paste_results(self, found: tuple) -> tuple:
        """``(labels, maps...)`` of the crop at the whole image's size: labels 0 and maps
        (probabilities, spread) NaN in the frame, as predicted there with the frame; None
        stays None."""
        return tuple(
            m if m is None else self.paste(m, 0 if k == 0 else np.nan) for k, m in enumerate(found)
        )

    def inside(self, out: np.ndarray, fill) -> np.ndarray:
        """Set ``out`` (the whole image's height and width) to ``fill`` around the box; return
        the view of the box, for the crop's result to be written into."""
        out[: self.y0] = fill
        out[self.y1 :] = fill
        out[self.y0 : self.y1, : self.x0] = fill
        out[self.y0 : self.y1, self.x1 :] = fill
        return out[self.box]

    def describe(self) -> str:
        """The crop as the :func:`~sciconv.inference.decisions` log records it."""
        h, w = self.shape
        rows, cols = f"{self.y0}-{self.y1 - 1}", f"{self.x0}-{self.x1 - 1}"
        return f"cropped to rows {rows}, cols {cols} of {h}x{w} (auto)"


def _in_memory(arr) -> bool:
    """An array whose frame is cheap to find: numpy, in memory, holding floats."""
    return (
        isinstance(arr, np.ndarray)
        and not isinstance(arr, np.memmap)
        and arr.dtype.kind == "f"
        and arr.ndim in (2, 3)
    )


def _has_finite(line: np.ndarray) -> bool:
    return bool(np.isfinite(line).any())


def find_frame(arr) -> Frame | None:
    """The no-data frame of an image in memory, or None.

    Parameters
    ----------
    arr : ndarray of shape (H, W) or (H, W, C)
        The pixels.

    Returns
    -------
    Frame or None
        None when ``arr`` is not a float numpy array in memory (a memory map, a lazy or dask
        array, integers: not looked at), when its edge rows and columns all hold a finite value
        (no frame), when it holds no finite value (nothing to crop to), or when the data are
        less than 2 pixels high or wide (a bare image that small is refused; framed, it is
        predicted as before).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.full((6, 8), np.nan, "float32")
    >>> image[1:4, 2:7] = 1.0
    >>> find_frame(image)
    Frame(y0=1, y1=4, x0=2, x1=7, shape=(6, 8))
    >>> find_frame(np.ones((6, 8), "float32")) is None
    True
    """
    if not _in_memory(arr):
        return None
    h, w = arr.shape[:2]
    if all(_has_finite(line) for line in (arr[0], arr[-1], arr[:, 0], arr[:, -1])):
        return None  # the usual case: no frame, four lines read
    rows = np.zeros(h, bool)
    cols = np.zeros(w, bool)
    step = max(1, _SCAN_VALUES // max(1, arr[0].size))
    for y in range(0, h, step):
        finite = np.isfinite(arr[y : y + step])
        if finite.ndim == 3:
            finite = finite.any(axis=2)
        rows[y : y + step] = finite.any(axis=1)
        cols |= finite.any(axis=0)
    if not rows.any():
        return None
    y0, y1 = int(rows.argmax()), h - int(rows[::-1].argmax())
    x0, x1 = int(cols.argmax()), w - int(cols[::-1].argmax())
    if (y1 - y0, x1 - x0) == (h, w) or min(y1 - y0, x1 - x0) < 2:
        return None
    return Frame(y0, y1, x0, x1, (int(h), int(w)))


def crop_frame(image):
    """``(image cropped to its data, Frame)``, or ``(image, None)`` when it has no no-data frame
    that is cheap to find (:func:`find_frame`).

    A :class:`~sciconv.io.GridImage` (and an NDData, converted to one) is cut with
    :meth:`~sciconv.io.GridImage.cutout`, which keeps its path, pixel scale and metadata (its
    WCS shifted); an array is sliced. The crop is recorded in an open
    :func:`~sciconv.inference.decisions` log (``nodata_frame``).

    Raises
    ------
    InferenceError
        What :func:`~sciconv.inference.predict_tiled` raises for an image it cannot take (the
        whole image is checked before anything is cut).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.pad(np.ones((4, 5), "float32"), 3, constant_values=np.nan)
    >>> cropped, frame = crop_frame(image)
    >>> cropped.shape, (frame.y0, frame.x0)
    ((4, 5), (3, 3))
    """
    arr, _ = validate_image(image)
    frame = find_frame(arr)
    if frame is None:
        return image, None
    if isinstance(image, io.GridImage):
        cropped = image.cutout(frame.y0, frame.y1, frame.x0, frame.x1)
    elif type(image).__module__.startswith("astropy.nddata"):  # as validate_image takes it
        cropped = io.GridImage.from_nddata(image).cutout(frame.y0, frame.y1, frame.x0, frame.x1)
    else:
        cropped = frame.crop(arr)
    note(frame)
    return cropped, frame


def note(frame: Frame) -> None:
    """Record ``frame``'s crop in the open :func:`~sciconv.inference.decisions` log."""
    note_decision("nodata_frame", frame.describe(), first=True)
