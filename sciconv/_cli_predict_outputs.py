"""The output paths of ``sciconv predict``, checked before any input is computed: names the file
system takes, files that exist (``--overwrite``), and files that are not sciconv's (ground truth
where a product goes: never overwritten).

Examples
--------
>>> from pathlib import Path
>>> check_outputs([Path("no/such/folder/a_labels.tif")], overwrite=False)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sciconv._cli_predict_batch import records_prediction
from sciconv.errors import OutputExistsError
from sciconv.io._files import check_name_length

__all__ = ["check_outputs"]


def check_outputs(paths: Sequence[Path], *, overwrite: bool) -> None:
    """Refuse (:class:`~sciconv.errors.OutputExistsError`) when any of ``paths`` exists and not
    ``overwrite``, naming the first; or when one cannot be written over; or
    (:class:`~sciconv.errors.WriteError`) when a name is longer than its file system allows.

    Examples
    --------
    >>> check_outputs([Path("no/such/folder") / ("x" * 300)], overwrite=False)
    Traceback (most recent call last):
    ...
    sciconv.errors.WriteError: no/such/folder/xxx...: file name too long (300 bytes; ...
    """
    from sciconv._atomic import broken_link, check_writable

    for p in paths:
        check_name_length(p, hint="; rename the input to a shorter name")  # before any input
    existing = [p for p in paths if os.path.lexists(p)]  # a broken link too (QA)
    # a folder where a file product goes is nobody's product: --overwrite deleted it whole,
    # with what it held (QA); an OME-Zarr store is a folder by format (judged below)
    folder = next(
        (p for p in existing if p.is_dir() and not any(".zarr" in q.lower() for q in p.parts)),
        None,  # (a store's own sub-folders, NAME.ome.zarr/labels/instances, are its: review)
    )
    if folder is not None:
        raise OutputExistsError(
            "is a folder where a file product goes: it is never replaced, --overwrite or not; "
            "move it, or write the products to another folder (--out)",
            path=folder,
        )
    foreign = [p for p in existing if _foreign_image(p)]
    if foreign:  # ground truth where a product goes: --overwrite replaced it (QA)
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise OutputExistsError(
            f"exists{more} and holds no sciconv prediction (ground truth?): it is never "
            "overwritten, --overwrite or not; write the products to another folder (--out)",
            path=foreign[0],
        )
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputExistsError(
            f"output exists{more}{broken_link(existing[0])}; pass --overwrite to replace it",
            path=existing[0],
        )
    for p in paths:
        if not p.is_dir():  # an OME-Zarr store (a folder) is replaced whole by its writer
            check_writable(p, overwrite=overwrite)


def _foreign_image(path: Path) -> bool:
    """Whether an image file where a product goes records no sciconv prediction, though its
    format would (labels, probabilities: TIFF, FITS, OME-Zarr); catalogs and regions record
    none by format, and files that cannot be read as images, are not judged (``--overwrite``
    decides)."""
    return records_prediction(path) is False
