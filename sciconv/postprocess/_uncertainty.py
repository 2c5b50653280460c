"""Per-object confidence: each instance's ranking score and, with a spread map, its uncertainty.

:func:`object_scores` makes one row per label with ``score`` (the mean per-pixel foreground
probability over the object's pixels) and, when a spread map from
:func:`sciconv.inference.predict_uncertainty` is given, ``uncertainty`` (the mean per-pixel
spread over the object). The table has a ``label`` column, so it joins a :func:`measure` table:
``astropy.table.join(table, scores, keys="label")``.

What the two are:

- ``score`` is a ranking score, not a calibrated probability that the object is real. Every
  pixel of an object that :func:`instances` made from the same map passed ``foreground >
  threshold``, so the score is at or above the segmentation threshold by construction (0.6 for
  the pretrained nuclei model, whose scores ran 0.70-0.995, median 0.974). On that model and
  the real DSB2018 validation images (57 images, 3,090 objects, a true positive matching a true
  nucleus at IoU > 0.5) it overstated precision: mean score 0.965 against 0.920 of the objects
  matched (colour images 0.942 against 0.848), and only 2 of the 18 objects scoring 0.70-0.80
  matched. Its UCD is ``meta.code.qual`` (a quality / reliability indicator), not
  ``stat.probability``.
- ``uncertainty`` is how much the model disagrees with itself under TTA, MC dropout or an
  ensemble, averaged over the object's pixels. It is largest at boundaries, so it grows with an
  object's fuzzy outskirts: on a simulated sky field it was higher for bright extended galaxies
  (0.06-0.09) than for faint stars the model scored 0.6 (0.03), whose every sample agreed.

Which to rank detections by depends on the model and the data, as measured: on that simulated
sky field, by ``score`` (the doubtful faint stars had the lowest spread). On the shipped nuclei
model and the same 57 real validation images (``uncertainty="tta"``), a low ``uncertainty``
separated true from false positives slightly better than the score: ROC AUC 0.844 against
0.832 (fluorescence 0.843 against 0.819, colour 0.828 against 0.820, grey brightfield 0.889
against 0.893); ``benchmarks/README.md`` (uncertainty section: every fluorescence validation
image, 3,954 objects) has 0.846 against 0.817. So with a TTA run of the nuclei model, rank by
``uncertainty`` (lowest first); without one (a plain run: no extra model pass), by ``score``
(AUC 0.834). Neither is a detection probability; for another model or data, measure it on
labelled validation images (``benchmarks/bench_uncertainty.py``).
"""

from __future__ import annotations

import math

import numpy as np

from sciconv._validation import is_number
from sciconv.errors import ConfigError, InferenceError
from sciconv.postprocess._labels import validate_labels
from sciconv.postprocess._measure import ROWS_PER_CHUNK, id_dtype, renumbered, sparse_ids

__all__ = ["describe_scores", "foreground_probability", "object_scores"]


def foreground_probability(prob) -> np.ndarray:
    """The foreground probability (H, W) of a per-pixel prediction, by the :func:`instances` rule.

    ``(H, W)`` or K = 1: the map itself; K = 2: channel 1; K = 3 (background, interior,
    boundary): interior + boundary.

    Parameters
    ----------
    prob : array_like, shape (H, W) or (H, W, K)
        Per-pixel probabilities, K = 1, 2 or 3.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.postprocess import foreground_probability
    >>> foreground_probability(np.array([[[0.25, 0.5, 0.25]]])).tolist()
    [[0.75]]
    """
    p = np.asarray(prob, dtype=np.float32)
    if p.ndim == 3 and p.shape[-1] in (1, 2):
        return p[..., -1]
    if p.ndim == 3 and p.shape[-1] == 3:
        return p[..., 1] + p[..., 2]
    if p.ndim == 2:
        return p
    raise InferenceError(
        f"prob must have shape (H, W) or (H, W, K) with K = 1, 2 or 3; got shape {p.shape}"
    )


def _foreground_spread(std, shape) -> np.ndarray:
    s = np.asarray(std, dtype=np.float32)
    if s.ndim == 3 and s.shape[-1] == 1:  # one channel: a foreground std or an entropy map
        s = s[..., 0]
    elif s.ndim == 3 and s.shape[-1] in (2, 3):
        # softmax outputs: foreground = 1 - background, so its spread is the background's
        s = s[..., 0]
    elif s.ndim != 2:
        raise InferenceError(
            f"std must have shape (H, W) or (H, W, K) with K = 1, 2 or 3; got shape {s.shape}"
        )
    if s.shape != shape:
        raise InferenceError(f"std has H, W = {s.shape}; labels have {shape}")
    return s


def _label_means(labels: np.ndarray, maps: list[np.ndarray], n: int):
    """``(present, means)``: the ids ``1..n`` of ``labels`` that hold a pixel, and the NaN-aware
    mean of each of ``maps`` over each of them (float32; NaN where none is finite), summed
    over row chunks with ``np.bincount`` (:func:`measure`'s way): memory by the chunk and the
    ids, in the labels' own dtype (QA: a sort of every pixel took 13 times the label image)."""
    area = np.zeros(n + 1, np.int64)
    sums = np.zeros((len(maps), n + 1))
    counts = np.zeros((len(maps), n + 1), np.int64)
    for r0 in range(0, labels.shape[0], ROWS_PER_CHUNK):
        lab = labels[r0 : r0 + ROWS_PER_CHUNK]
        fg = lab > 0  # the objects' pixels only, as measure takes them
        ids = lab[fg].astype(np.intp, copy=False)
        if not ids.size:
            continue
        area += np.bincount(ids, minlength=n + 1)
        for k, values in enumerate(maps):
            v = values[r0 : r0 + ROWS_PER_CHUNK][fg]
            finite = np.isfinite(v)
            if not finite.all():
                ids_k, v = ids[finite], v[finite]
            else:
                ids_k = ids
            sums[k] += np.bincount(ids_k, v.astype(np.float64), n + 1)
            counts[k] += np.bincount(ids_k, minlength=n + 1)
    present = np.nonzero(area[1:])[0] + 1
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (sums[:, present] / counts[:, present]).astype(np.float32)
    return present, means


#: (description, UCD) of each column: a description of at most 60 characters, so that a FITS
#: catalog carries it as the column's TCOMMn (``write_catalog`` leaves longer ones out; QA: the
#: uncertainty's 149 characters were lost to TOPCAT and CFITSIO). ``score``: ``meta.code.qual``
#: ("quality, precision, reliability flag or code"), the UCD1+ word for a reliability indicator
#: that is not a probability; ``stat.probability`` claimed a calibration it has not, and
#: ``stat.value`` ("miscellaneous value") says nothing.
_COLUMNS = {
    "score": ("ranking score, not P(real): mean fg prob (>= threshold)", "meta.code.qual"),
    "uncertainty": ("outline uncertainty: mean spread of fg prob (std or nats)", "stat.error"),
}


def object_scores(labels, prob, std=None, *, threshold=None):
    """Ranking score (and, with a spread map, uncertainty) of every object in a label image.

    Parameters
    ----------
    labels : ndarray of shape (H, W), int, or GridImage
        Instance labels, 0 = background (:func:`instances`); integer ``(H, W, 1)`` too, as
        :func:`measure` takes them.
    prob : ndarray of shape (H, W) or (H, W, K)
        The per-pixel prediction the labels came from (K = 1, 2 or 3, as for :func:`instances`).
    std : ndarray of shape (H, W) or (H, W, K'), optional
        The per-pixel spread from :func:`sciconv.inference.predict_uncertainty`: a standard
        deviation per channel (K' = K; for softmax outputs the background channel's spread is
        the foreground's) or one channel (a foreground std or a predictive entropy). Without
        it the table has no ``uncertainty`` column.
    threshold : float, optional
        The foreground threshold the labels were made with (:func:`instances`), recorded as
        ``table["score"].meta["threshold"]``: the score's floor.

    Returns
    -------
    astropy.table.Table
        One row per label present, in increasing order:

        - ``label`` (int32, or int64 when an id exceeds 2**31 - 1; sparse ids cost memory by
          objects, not by the largest id);
        - ``score`` (float32): the mean per-pixel foreground probability over the object. A
          ranking score, not a calibrated detection probability: for labels that
          :func:`instances` made from ``prob`` it is at or above their threshold by
          construction, and on the pretrained nuclei model it overstated the fraction of
          objects that are real (module docstring). UCD ``meta.code.qual``;
        - ``uncertainty`` (float32, only with ``std``): the mean spread over the object, an
          outline uncertainty (UCD ``stat.error``). On the pretrained nuclei model a low one
          ranked true detections above false ones slightly better than ``score`` did (module
          docstring).

        Both are dimensionless, with descriptions short enough for a FITS ``TCOMMn``. NaN
        pixels are left out of the means. Join it to :func:`measure` with
        ``astropy.table.join(..., keys="label")``.

    Raises
    ------
    InvalidImageError
        Labels that are not a 2-D map of non-negative integers (as :func:`measure`).
    InferenceError
        ``prob`` / ``std`` whose shape does not match the labels.
    ConfigError
        A ``threshold`` that is not a number in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.postprocess import object_scores
    >>> labels = np.array([[1, 1, 0], [0, 2, 2]])
    >>> prob = np.array([[0.9, 0.7, 0.1], [0.2, 0.6, 0.6]])
    >>> table = object_scores(labels, prob, threshold=0.5)
    >>> table.colnames, table["label"].tolist(), [round(float(v), 2) for v in table["score"]]
    (['label', 'score'], [1, 2], [0.8, 0.6])
    >>> table["score"].meta["threshold"], table["score"].meta["ucd"]
    (0.5, 'meta.code.qual')
    >>> std = np.full((2, 3), 0.05)
    >>> [round(float(v), 2) for v in object_scores(labels, prob, std)["uncertainty"]]
    [0.05, 0.05]
    """
    from astropy.table import Table

    if threshold is not None and not (
        is_number(threshold) and math.isfinite(threshold) and 0 <= threshold <= 1
    ):
        raise ConfigError(f"threshold must be a number in [0, 1]; got {threshold!r}")
    labels = validate_labels(labels, keep_dtype=True)  # measure's rule and errors, no copy
    fg = foreground_probability(prob)
    if fg.shape != labels.shape:
        raise InferenceError(f"prob has H, W = {fg.shape}; labels have {labels.shape}")
    maps = [fg] if std is None else [fg, _foreground_spread(std, labels.shape)]
    # measure's rule: sparse ids (offset, hashed) are numbered 1, 2, ..., so arrays go by the
    # objects, not by the largest id (QA: ids of 1e8 allocated 2.4 GB for a 32 x 32 image;
    # ids of 2**36 a MemoryError); dense ones are counted as they are (QA: renumbering them
    # all sorted every pixel, 16 s and 3 GiB for 3e5 objects)
    n = int(labels.max()) if labels.size else 0
    given = None
    if sparse_ids(n, labels.size):
        labels, given = renumbered(labels)
        n = len(given) - 1
    present, means = _label_means(labels, maps, n)
    ids = present if given is None else given[present]
    table = Table()
    table["label"] = ids.astype(id_dtype(ids[-1] if ids.size else 0))
    table["score"] = means[0]
    if std is not None:  # without a spread there is none (QA: 1 - score, under this name)
        table["uncertainty"] = means[1]
    return describe_scores(table, threshold)


def describe_scores(table, threshold=None):
    """Describe, in place, a catalog's ``score`` and ``uncertainty`` columns (those it has) as
    :func:`object_scores` writes them: description, UCD, dimensionless unit and the threshold
    (the score's floor) in ``score``'s meta.

    Parameters
    ----------
    table : astropy.table.Table
        A catalog with a ``score`` column (and ``uncertainty``), e.g. a block-wise one.
    threshold : float, optional
        The foreground threshold the labels were made with.

    Returns
    -------
    astropy.table.Table
        ``table``.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from sciconv.postprocess import describe_scores
    >>> t = describe_scores(Table({"label": [1], "score": [0.9]}), threshold=0.6)
    >>> t["score"].meta["ucd"], t["score"].meta["threshold"]
    ('meta.code.qual', 0.6)
    """
    for name in _COLUMNS:
        if name in table.colnames:
            table[name].description, table[name].meta["ucd"] = _COLUMNS[name]
            table[name].unit = ""  # dimensionless: VOTable and FITS say so, not leave it out
    if threshold is not None and "score" in table.colnames:
        table["score"].meta["threshold"] = float(threshold)
    return table
