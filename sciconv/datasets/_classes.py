"""The order of class names, one rule for class folders and catalog labels."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["class_order"]


def class_order(names: Iterable[str]) -> list[str]:
    """Class names in the order their indices follow: numerically when all are numbers.

    Folders ``2`` and ``10`` (or catalog labels 2 and 10) give ``["2", "10"]`` whether they
    come from :func:`sciconv.datasets.from_folder` or :func:`sciconv.datasets.from_catalog`;
    other names sort as text.

    Parameters
    ----------
    names : iterable of str
        The distinct class names.

    Returns
    -------
    list of str

    Examples
    --------
    >>> class_order({"10", "2", "1"}), class_order({"spiral", "elliptical"})
    (['1', '2', '10'], ['elliptical', 'spiral'])
    """
    values = set(names)
    try:
        return sorted(values, key=lambda v: (float(v), v))
    except ValueError:
        return sorted(values)
