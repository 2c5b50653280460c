"""FITS data checksums: a file whose ``DATASUM``/``CHECKSUM`` cards fail is said, not read silently.

A bit flipped on disk or in transfer changes a pixel (QA: one became 2.78e-36) and, without a
check, flows into the science products; astropy verifies the cards only when asked.
"""

from __future__ import annotations

from sciconv.io._common import warn_caller

__all__ = ["check_datasum"]


def check_datasum(hdu, index: int, path) -> None:
    """Warn (naming the file) when ``hdu``'s ``DATASUM`` or ``CHECKSUM`` card does not match
    its data or header; nothing when it has none or they match.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from astropy.io import fits
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.fits"
    >>> fits.writeto(path, np.ones((4, 4), np.float32), checksum=True)
    >>> with fits.open(path) as hdul:
    ...     check_datasum(hdul[0], 0, path)  # matches: nothing said
    """
    from astropy.io import fits

    if isinstance(hdu, fits.CompImageHDU):  # its sums are the compressed table's (review: a
        return  # valid fpack file was said damaged)
    failed = []
    for card, verify in (("DATASUM", "verify_datasum"), ("CHECKSUM", "verify_checksum")):
        if card not in hdu.header or not callable(getattr(hdu, verify, None)):
            continue
        try:
            if getattr(hdu, verify)() == 0:  # 1: matches, 2: no card
                failed.append(card)
        except Exception:  # a value astropy cannot check: not a verdict either way
            continue
    if failed:
        warn_caller(
            f"{path}: HDU {index}'s {' and '.join(failed)} "
            f"{'does' if len(failed) == 1 else 'do'} not match the file: it was "
            "changed or damaged after it was written (a flipped bit in storage or transfer?); "
            "its pixels are read as they are"
        )
