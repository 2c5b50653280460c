"""Array helpers shared by the modules of sciconv.datasets (numpy only)."""

from __future__ import annotations

import numpy as np


def pad_to(x: np.ndarray, h: int, w: int, *, mode: str = "constant", center: bool = True):
    """Pad rows/columns up to at least ``(h, w)`` (never crops)."""
    dh, dw = max(0, h - x.shape[0]), max(0, w - x.shape[1])
    if not dh and not dw:
        return x
    top, left = (dh // 2, dw // 2) if center else (0, 0)
    pads = [(top, dh - top), (left, dw - left)] + [(0, 0)] * (x.ndim - 2)
    if mode == "reflect" and (x.shape[0] == 1 or x.shape[1] == 1):
        mode = "edge"
    return np.pad(x, pads, mode=mode)


def center_crop(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """The centre window ``(h, w)`` of an image at least that large."""
    top, left = (x.shape[0] - h) // 2, (x.shape[1] - w) // 2
    return x[top : top + h, left : left + w]


def image_array(
    image, *, name: str = "image", losses: list | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixels ``(H, W, C)`` float32 and per-pixel weights from an array, GridImage or NDData.

    An :class:`astropy.nddata.NDData` (``CCDData``) is unwrapped as
    :meth:`sciconv.io.GridImage.from_nddata` does: ``(H, W)`` or ``(C, H, W)`` data become
    ``(H, W, C)``, masked pixels become NaN. The weights are 0 where any channel is masked or
    not finite and 1 elsewhere, ``(H, W)`` float32; None when every pixel is good. A plain
    array's NaN pixels count as masked; a 2-D array becomes ``(H, W, 1)``. Pixels whose
    signal float32 loses (:func:`sciconv.io._precision.float32_loss`: a large pedestal under
    float64 or 32/64-bit integers) are warned about, or appended to ``losses`` as ``(name,
    Float32Loss)`` for the caller to say once for many images.

    Parameters
    ----------
    image : array_like, GridImage or astropy.nddata.NDData
    name : str
        Named in the error and the warning.
    losses : list, optional
        Where to collect a precision loss instead of warning.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray or None)

    Raises
    ------
    DatasetError
        The pixels are not 2-D or 3-D numbers.

    Examples
    --------
    >>> from astropy.nddata import CCDData
    >>> mask = np.zeros((2, 3), bool); mask[0, 0] = True
    >>> x, w = image_array(CCDData(np.ones((2, 3)), unit="adu", mask=mask))
    >>> x.shape, float(x[0, 0, 0]), w.tolist()
    ((2, 3, 1), nan, [[0.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    """
    from sciconv.errors import ConfigError, DatasetError, InvalidImageError
    from sciconv.io import GridImage, as_array, is_nddata
    from sciconv.io._precision import check_float32_precision, float32_loss

    try:
        if is_nddata(image):
            image = GridImage.from_nddata(image)
        data = np.asarray(as_array(image, load=True))
    except (ConfigError, InvalidImageError) as exc:  # e.g. a mask of another shape
        raise DatasetError(f"{name}: {exc.message}") from exc
    if data.dtype.kind not in "biuf" or data.ndim not in (2, 3):
        raise DatasetError(
            f"{name} must be (H, W) or (H, W, C) numbers (or an NDData/CCDData); got "
            f"{data.dtype} {data.shape}"
        )
    if losses is None:
        check_float32_precision(data, name=name)
    elif (loss := float32_loss(data)) is not None:
        losses.append((name, loss))
    data = np.asarray(data[..., None] if data.ndim == 2 else data, dtype=np.float32)
    bad = ~np.isfinite(data)  # a GridImage's or NDData's masked pixels are NaN (as_array)
    if not bad.any():
        return data, None
    data = np.where(bad, np.float32(np.nan), data)
    return data, (~bad.any(axis=-1)).astype(np.float32)
