"""Each object's ranking ``score`` in block-wise catalogs, as whole-image catalogs have it.

A block's probability map is gone once its labels are made (flat memory), so the score (the mean
foreground probability over the object, :func:`sciconv.postprocess.object_scores`) is taken
there, for the objects the block keeps, in their new numbering; the blocks' scores, in block
order, are the whole catalog's by global label (QA 56: ``sciconv predict`` catalogs had a
``score`` whole, none block by block, so the two paths' columns differed).
"""

from __future__ import annotations

import numpy as np

__all__ = ["add_block_scores", "owned_scores"]


def owned_scores(labels, prob, keep) -> np.ndarray:
    """The scores of the objects ``keep`` flags (an int flag per id of ``labels``, 0..max), in
    the order of their ids: the owned objects' new numbering 1..n.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[1, 1, 0], [0, 2, 2]])
    >>> prob = np.stack([1 - np.array([[0.9, 0.7, 0.1], [0.2, 0.6, 0.6]]),
    ...                  np.array([[0.9, 0.7, 0.1], [0.2, 0.6, 0.6]])], axis=-1)
    >>> [round(float(v), 2) for v in owned_scores(labels, prob, np.array([0, 0, 1]))]
    [0.6]
    """
    from sciconv import postprocess

    scored = postprocess.object_scores(labels, prob)
    by_id = np.full(len(keep), np.nan, np.float32)
    ids = np.asarray(scored["label"], dtype=np.int64)
    inside = ids < len(keep)  # objects of the window's labels; keep covers 0..max
    by_id[ids[inside]] = np.asarray(scored["score"], np.float32)[inside]
    return by_id[np.nonzero(keep)[0]]


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
    empty = np.zeros((1, 1), np.int32)
    template = postprocess.object_scores(empty, np.zeros((1, 1)), threshold=threshold)["score"]
    table["score"] = values
    table["score"].description, table["score"].unit = template.description, template.unit
    table["score"].meta.update(template.meta)
