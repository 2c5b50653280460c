"""Each object's ranking ``score`` in block-wise catalogs, as whole-image catalogs have it.

A block's probability map is gone once its labels are made (flat memory), so the score (the mean
foreground probability over the object, :func:`sciconv.postprocess.object_scores`) is taken
there as a map of per-object scores, carried back to the input pixels with the labels when the
window was resampled, and averaged over each object the block keeps; the blocks' scores, in
block order, are the whole catalog's by global label (QA 56: ``sciconv predict`` catalogs had a
``score`` whole, none block by block, so the two paths' columns differed). On resampled images
the score is the zoomed pixels' (a whole image's: the input pixels'), 0.06 apart in median.
"""

from __future__ import annotations

import numpy as np

__all__ = ["add_block_scores", "owned_scores", "score_map"]


def score_map(labels, prob) -> np.ndarray:
    """Each pixel of an object: the object's score (0 on the background), float32 ``(H, W)``.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[1, 1, 0], [0, 2, 2]])
    >>> fg = np.array([[0.9, 0.7, 0.1], [0.2, 0.6, 0.6]])
    >>> score_map(labels, np.stack([1 - fg, fg], axis=-1)).astype(float).round(2).tolist()
    [[0.8, 0.8, 0.0], [0.0, 0.6, 0.6]]
    """
    from sciconv import postprocess

    scored = postprocess.object_scores(labels, prob)
    by_id = np.zeros(int(labels.max()) + 1 if labels.size else 1, np.float32)
    by_id[np.asarray(scored["label"], dtype=np.int64)] = np.asarray(scored["score"], np.float32)
    return by_id[labels]


def owned_scores(labels, scores, n: int) -> np.ndarray:
    """The mean of the :func:`score_map` ``scores`` over each object ``1..n`` of ``labels``
    (the owned objects, renumbered), in the order of their ids.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[1, 1, 0], [0, 2, 2]])
    >>> owned_scores(labels, np.array([[0.8, 0.8, 0], [0, 0.6, 0.6]], np.float32), 2).tolist()
    [0.800000011920929, 0.6000000238418579]
    """
    flat = np.asarray(labels).ravel()
    counts = np.bincount(flat, minlength=n + 1)[1 : n + 1]
    sums = np.bincount(flat, weights=np.asarray(scores, np.float64).ravel(), minlength=n + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums[1 : n + 1] / counts).astype(np.float32)


def add_block_scores(table, scores: np.ndarray, threshold=None) -> None:
    """Add ``score`` (``scores[label - 1]``, NaN past them) to a block-wise catalog in place,
    described as :func:`sciconv.postprocess.object_scores` describes it.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import Table
    >>> t = Table({"label": [2, 1]})
    >>> add_block_scores(t, np.array([0.9, 0.7], np.float32), threshold=0.5)
    >>> t["score"].tolist(), t["score"].meta["threshold"]
    ([0.699999988079071, 0.8999999761581421], 0.5)
    """
    from sciconv import postprocess

    labels = np.asarray(table["label"], dtype=np.int64)
    values = np.full(len(labels), np.nan, np.float32)
    known = (labels >= 1) & (labels <= len(scores))
    values[known] = scores[labels[known] - 1]
    table["score"] = values
    postprocess.describe_scores(table, threshold)
