"""Masks as :func:`sciconv.datasets.from_pairs` reads them: label images from the tools of the
field, checked before anything trains on them.

A mask is an integer image, 0 = background: instance labels (1..N, one id per object: StarDist,
Cellpose, QuPath and Fiji label exports, napari, photutils segmentation maps), a binary mask
(any one value for foreground, e.g. 0/255) or class ids (with ``num_classes``). Read here:

- palette (indexed) PNG and TIFF files (Fiji label images with a colour lookup table, VOC-style
  PNGs) as their indices, not the colours the readers expand them to;
- grey masks saved as RGB or RGBA (all colour channels equal) as one channel;
- an ``ignore_label`` (e.g. 255 or -1: an unlabelled region) as 0 plus a map of those pixels,
  which then carry no weight.

Refused, naming the file and the fix: colour-coded masks, fractions, negative ids (other than
``ignore_label``), ids past float32's exact integers, and an image given as a mask (images and
masks swapped, a lossy JPEG, labels resized with interpolation, a class map read as instance
labels): a label image has about one connected region per id, an intensity image hundreds
(:data:`LABEL_REGIONS_PER_VALUE`). Across a dataset: masks without any background (ilastik's
"Simple Segmentation" numbers its classes 1, 2, ...: every pixel would be foreground), and
binary masks given to a boundary target (touching objects cannot be told apart) warn.
"""

from __future__ import annotations

import numpy as np

from sciconv.errors import DatasetError
from sciconv.io import read_pixels
from sciconv.io._common import warn_caller

__all__ = ["LABEL_REGIONS_PER_VALUE", "check_label_image", "check_masks", "read_mask"]

#: Most connected regions (8-connected: a thin diagonal track is one) per label id a mask may
#: hold: an object is one region (the 531 DSB2018 training masks: at most 1.01 regions per id,
#: 1.12 shrunk 4x by nearest neighbour), while an intensity image read as labels holds a value
#: in many places (their images: 44 to 3,243; saturated 1.8x: 8.3 and more).
LABEL_REGIONS_PER_VALUE = 4.0
#: Integers from 2**24 on are not all representable in float32 (the pixels' dtype when read).
EXACT_FLOAT32 = 2**24
#: Up to this many ids spread over many regions: a class map rather than an image.
_FEW_VALUES = 16


def _palette_indices(path: str) -> np.ndarray | None:
    """The indices of a palette (indexed) PNG or TIFF, which the image readers expand to RGB
    (a label image's lookup table colours its ids); None for any other file."""
    name = str(path).lower()
    try:
        if name.endswith(".png"):
            from PIL import Image

            with Image.open(path) as im:
                if im.mode not in ("P", "PA"):
                    return None
                data = np.asarray(im)
                return data[..., 0] if data.ndim == 3 else data
        if name.endswith((".tif", ".tiff")):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                if page.photometric != tifffile.PHOTOMETRIC.PALETTE:
                    return None
                return np.asarray(page.asarray())
    except Exception:  # unreadable here: read_pixels says why, naming the file
        return None
    return None


def _one_channel(data: np.ndarray, path: str) -> np.ndarray:
    if data.shape[2] == 1:
        return data[..., 0]
    grey = data.shape[2] in (3, 4) and all(  # grey saved as RGB, or RGBA with one alpha
        np.array_equal(data[..., 0], data[..., c]) for c in (1, 2)
    )
    if grey and (data.shape[2] == 3 or np.all(data[..., 3] == data[..., 3].flat[0])):
        return data[..., 0]
    raise DatasetError(
        f"a mask must have 1 channel; got {data.shape[2]} that differ (a colour-coded mask? "
        "number the objects 1..N in one channel, e.g. one id per distinct colour)",
        path=path,
    )


def read_mask(path, *, ignore_label: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A mask file as int64 labels ``(H, W)``, and where it holds ``ignore_label`` (those
    pixels set to 0), or None when it holds none.

    Parameters
    ----------
    path : str or os.PathLike
        The mask file (any format :func:`sciconv.io.read` reads; palette images as indices).
    ignore_label : int, optional
        The id of unlabelled pixels (255, -1, ...), which carry no weight in training.

    Returns
    -------
    labels : ndarray of int64, shape (H, W)
    ignored : ndarray of bool, shape (H, W), or None

    Raises
    ------
    DatasetError
        Several channels that differ, fractions, NaN, negative ids (other than
        ``ignore_label``), ids of 2**24 and more.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, tifffile
    >>> from sciconv.datasets import read_mask
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.tif"
    >>> tifffile.imwrite(p, np.array([[0, 1, 255], [2, 2, 255]], np.uint8))
    >>> labels, ignored = read_mask(p, ignore_label=255)
    >>> labels.tolist(), int(ignored.sum())
    ([[0, 1, 0], [2, 2, 0]], 2)
    """
    path = str(path)
    indices = _palette_indices(path)
    m = indices.astype(np.float64) if indices is not None else _one_channel(read_pixels(path), path)
    if not np.all(np.isfinite(m)) or np.any(m != np.round(m)):
        raise DatasetError("a mask must hold integer labels >= 0 (no NaN, no fractions)", path=path)
    ignored = None
    if ignore_label is not None:
        ignored = m == ignore_label
        m = np.where(ignored, 0, m)
        ignored = ignored if ignored.any() else None
    if m.size and m.min() < 0:
        hint = "" if ignore_label is not None else " (unlabelled pixels: pass ignore_label=-1)"
        raise DatasetError(f"a mask must hold integer labels >= 0{hint}", path=path)
    if m.size and m.max() >= EXACT_FLOAT32:  # read as float32: larger ids may have merged
        raise DatasetError(
            f"mask holds label ids up to {int(m.max())}; ids from {EXACT_FLOAT32} on are not kept "
            "exactly (neighbouring ids merge): number the objects 1..N first "
            "(skimage.segmentation.relabel_sequential)",
            path=path,
        )
    return m.astype(np.int64), ignored


def check_label_image(labels: np.ndarray, path: str) -> None:
    """Refuse a mask that is not instance labels or a binary mask: more than
    :data:`LABEL_REGIONS_PER_VALUE` connected regions per id (an image given as a mask, a class
    map without ``num_classes``, labels resized with interpolation).

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        The mask's ids (0 = background).
    path : str
        The mask's file, named in the error.

    Raises
    ------
    DatasetError
        The mask does not look like a label image (the message says what it looks like).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.datasets import check_label_image
    >>> labels = np.zeros((8, 8), int); labels[1:3, 1:3] = 1; labels[5:7, 5:7] = 2
    >>> check_label_image(labels, "m.tif")  # two objects, two regions: fine
    >>> noisy = np.random.default_rng(0).integers(1, 40, (16, 16))  # an image's pixels
    >>> try:
    ...     check_label_image(noisy, "img.tif")
    ... except Exception as err:
    ...     print(str(err).split(":")[1].strip())
    this mask does not look like a label image
    """
    from skimage.measure import label

    values = np.unique(labels[labels > 0])
    if len(values) < 2:  # background and one id: a binary mask (many objects) or one object
        return
    regions = int(label(labels, background=0, connectivity=2).max())
    per_value = regions / len(values)
    if per_value <= LABEL_REGIONS_PER_VALUE:
        return
    shown = ", ".join(str(int(v)) for v in values[:8])
    top = int(values.max())
    if len(values) <= _FEW_VALUES and not np.any(labels == 0):
        what = (
            f"it holds only the ids {shown}, no background (0), over {regions} separate regions: "
            "classes numbered from 1 (ilastik's Simple Segmentation exports 1, 2, ...)? Subtract "
            f"1 and pass num_classes={top} (class ids 0..{top - 1})"
        )
    elif len(values) <= _FEW_VALUES:
        what = (
            f"it holds {len(values)} ids ({shown}) spread over {regions} separate regions: a "
            f"class map? Pass num_classes={top + 1} (class ids 0..{top}); or a binary mask "
            "resized with interpolation (resize masks with nearest neighbour)"
        )
    else:
        what = (
            f"it holds {len(values)} distinct values in {regions} separate regions "
            f"({per_value:.0f} per value; a label image has about one per object, at most "
            f"{LABEL_REGIONS_PER_VALUE:g}). Are the images and masks swapped (from_pairs(images, "
            "masks)), or is it an image, a lossy JPEG, or labels resized with interpolation?"
        )
    repeat = " (labels whose ids repeat, numbered per tile say, are fine: check_labels=False)"
    raise DatasetError(f"this mask does not look like a label image: {what}{repeat}", path=path)


def check_masks(masks: list[np.ndarray], paths: list[str], *, boundary_target: bool) -> None:
    """Checks of a dataset's masks (instance labels or binary masks) taken together.

    Parameters
    ----------
    masks : list of ndarray of int, shape (H, W)
        The masks' ids (ignored pixels already 0).
    paths : list of str
        Their files.
    boundary_target : bool
        The target separates touching objects ("boundary", "touching").

    Raises
    ------
    DatasetError
        No mask holds background (0): every pixel would be foreground.

    Warns
    -----
    SciconvWarning
        Binary masks (one id for many objects) given to a boundary target.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.datasets._masks import check_masks
    >>> ilastik = np.ones((4, 4), int) + (np.arange(4) > 1)  # classes 1 and 2, no 0
    >>> try:
    ...     check_masks([ilastik], ["a.tif"], boundary_target=False)
    ... except Exception as err:
    ...     print(str(err).split(":")[0])
    no mask holds background (0)
    """
    from scipy import ndimage as ndi

    if masks and not any(np.any(m == 0) for m in masks):
        raise DatasetError(
            f"no mask holds background (0): every pixel of the {len(masks)} masks would be "
            f"foreground (e.g. {paths[0]}). Masks numbered from 1 (ilastik's Simple Segmentation "
            "exports classes 1, 2, ...) need 1 subtracted, then num_classes; instance labels "
            "and binary masks need 0 for background (unlabelled pixels: ignore_label)"
        )
    _warn_ignore_values(masks, paths)
    if not boundary_target:
        return
    binary = []
    for m, p in zip(masks, paths):
        ids = m[m > 0]  # one id for all (no sort, as np.unique), in several separate objects
        if ids.size and np.all(ids == ids[0]) and ndi.label(m > 0)[1] > 1:
            binary.append(p)
    if binary:
        warn_caller(
            f"{len(binary)} of {len(masks)} masks are binary (one id for every object, e.g. "
            f"{binary[0]}): a boundary target separates touching objects only in instance labels "
            "(one id per object), so touching objects train as one here. Give instance labels, "
            "or train target='semantic'",
            package="sciconv",
        )


#: Ids that data sets use for unlabelled pixels (8- and 16-bit maxima).
_IGNORE_CONVENTIONS = (255, 65535)


def _warn_ignore_values(masks: list[np.ndarray], paths: list[str]) -> None:
    """Warn when masks hold 255 (or 65535) far above their other ids: the common mark of an
    unlabelled region, which would train as one large object without ``ignore_label``."""
    found: dict[int, list] = {}
    for m, p in zip(masks, paths):
        top = int(m.max()) if m.size else 0
        if top not in _IGNORE_CONVENTIONS:
            continue
        rest = m[(m > 0) & (m != top)]
        if rest.size and int(rest.max()) < top // 2:
            found.setdefault(top, []).append((p, float(np.mean(m == top))))
    for value, hits in found.items():
        share = max(f for _, f in hits)
        warn_caller(
            f"{len(hits)} of {len(masks)} masks hold id {value} far above their other ids (e.g. "
            f"{hits[0][0]}, up to {share:.0%} of a mask's pixels): an unlabelled region? Pass "
            f"ignore_label={value}, else it trains as one object",
            package="sciconv",
        )
