"""The public data sets, re-exported from :mod:`sciconv.fetch`."""

from __future__ import annotations

from typing import Any

from sciconv.errors import DatasetError


def _fetch_module():
    try:
        from sciconv import fetch as module
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise DatasetError(f"sciconv.fetch is not available ({exc})") from None
    return module


def fetch(*args: Any, **kwargs: Any):
    """Download a public data set; see :func:`sciconv.fetch.fetch` (same arguments).

    Examples
    --------
    >>> from sciconv import datasets
    >>> path = datasets.fetch("dsb2018")  # doctest: +SKIP
    """
    return _fetch_module().fetch(*args, **kwargs)


def load(*args: Any, **kwargs: Any):
    """Load a fetched public data set; see :func:`sciconv.fetch.load` (same arguments).

    Examples
    --------
    >>> from sciconv import datasets
    >>> data = datasets.load("dsb2018")  # doctest: +SKIP
    """
    return _fetch_module().load(*args, **kwargs)
