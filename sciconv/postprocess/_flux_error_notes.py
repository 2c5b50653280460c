"""What a catalog says about its flux errors' correlated-noise factor: the note on
``meta["FLUXERR"]`` and the description of ``flux_err`` once
:func:`~sciconv.postprocess.apply_noise_correlation` put it on (``FLUXCORR``).
"""

from __future__ import annotations

__all__ = ["APPLIED_NOTE", "CORRELATED_FLUX_ERR", "flux_error_note"]

#: What ``meta["FLUXERR"]`` gets when the factor is applied
#: (:func:`~sciconv.postprocess.apply_noise_correlation`).
APPLIED_NOTE = " x correlated-noise factor (FLUXCORR)"
#: The description of ``flux_err`` when a correlated-noise factor is applied (``FLUXCORR``).
CORRELATED_FLUX_ERR = "1-sigma flux error: quadrature sum x sqrt(R), see FLUXCORR"


def flux_error_note(source: str, table) -> str:
    """``source`` (how the pixel errors were found: :func:`~sciconv.postprocess.estimate_error`'s
    second value) with :data:`APPLIED_NOTE` when ``table``'s ``flux_err`` carries a
    correlated-noise factor: what a caller that sets ``meta["FLUXERR"]`` after
    :func:`~sciconv.postprocess.measure` writes.

    Parameters
    ----------
    source : str
        The text.
    table : astropy.table.Table
        The catalog.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from sciconv.postprocess import flux_error_note
    >>> flux_error_note("image uncertainty", Table({"flux_err": [1.0]}))
    'image uncertainty'
    """
    col = table["flux_err"] if "flux_err" in table.colnames else None
    applied = col is not None and col.description == CORRELATED_FLUX_ERR
    return source + APPLIED_NOTE if applied and not source.endswith(APPLIED_NOTE) else source
