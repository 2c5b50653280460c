"""The sky position's 1-sigma errors of a catalog row, from its pixel centroid's.

A centroid's errors in pixels (``x_weighted_err``, ``y_weighted_err`` and their covariance) go
to the sky through the WCS's local Jacobian at the centroid, ``J`` (the sky offsets of a step of
one pixel along x and along y: the pixel scale of each axis, the rotation, any skew and, with
SIP or lookup-table distortions, the local distortion): ``C_sky = J C_pix J^T``. ``ra_err`` is
the error along the RA direction on the sky, that of ``ra * cos(dec)`` (Gaia's ``ra_error``,
which stays finite near a pole), ``dec_err`` along the declination; both in arcsec.
"""

from __future__ import annotations

import numpy as np

from sciconv._warnings import caught

__all__ = ["sky_errors", "sky_jacobians"]


def sky_jacobians(wcs, x, y) -> np.ndarray:
    """The WCS's local Jacobian at each pixel position, ``(N, 2, 2)`` in arcsec per pixel.

    Row 0 is the offset east (along RA, on the sky), row 1 north; column 0 a step of one pixel
    along x, column 1 along y (central differences over ``+- 0.5`` pixel, offsets in ICRS by
    astropy's ``spherical_offsets_to``).

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        A 2-D celestial WCS.
    x, y : array_like, shape (N,)
        0-based pixel positions (x = column).

    Returns
    -------
    ndarray, shape (N, 2, 2)

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.wcs import WCS
    >>> from sciconv.postprocess._sky_errors import sky_jacobians
    >>> w = WCS(naxis=2); w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    >>> w.wcs.cdelt = [-0.1 / 3600, 0.2 / 3600]; w.wcs.crval = [30.0, 10.0]
    >>> sky_jacobians(w, [0.0], [0.0]).round(6).tolist()  # x: 0.1" west; y: 0.2" north
    [[[-0.1, -0.0], [-0.0, 0.2]]]
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    jac = np.empty((x.size, 2, 2))
    with caught("ignore"):  # astropy's FITSFixedWarning and friends, said when read
        for column, (dx, dy) in enumerate(((0.5, 0.0), (0.0, 0.5))):
            start = wcs.pixel_to_world(x - dx, y - dy).icrs
            end = wcs.pixel_to_world(x + dx, y + dy).icrs
            east, north = start.spherical_offsets_to(end)
            jac[:, 0, column] = east.to_value("arcsec")
            jac[:, 1, column] = north.to_value("arcsec")
    return jac


def sky_errors(wcs, x, y, var_x, var_y, cov_xy) -> tuple[np.ndarray, np.ndarray]:
    """``(ra_err, dec_err)`` in arcsec of positions ``(x, y)`` with pixel (co)variances
    (module notes).

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        A 2-D celestial WCS.
    x, y : array_like, shape (N,)
        0-based pixel positions.
    var_x, var_y, cov_xy : array_like, shape (N,)
        Their variances and covariance (pixels squared; NaN: unknown).

    Returns
    -------
    tuple of ndarray
        ``ra_err`` (the error of ``ra * cos(dec)``) and ``dec_err``, arcsec.

    Examples
    --------
    >>> from astropy.wcs import WCS
    >>> from sciconv.postprocess._sky_errors import sky_errors
    >>> w = WCS(naxis=2); w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    >>> w.wcs.cdelt = [-0.5 / 3600, 0.5 / 3600]
    >>> w.wcs.pc = [[0.0, -1.0], [1.0, 0.0]]  # rotated 90 degrees: y is east
    >>> ra_err, dec_err = sky_errors(w, [10.0], [10.0], [4.0], [1.0], [0.0])
    >>> float(ra_err[0].round(6)), float(dec_err[0].round(6))  # 1 px in y, 2 px in x
    (0.5, 1.0)
    """
    jac = sky_jacobians(wcs, x, y)
    cov = np.empty((jac.shape[0], 2, 2))
    cov[:, 0, 0] = np.asarray(var_x, dtype=np.float64)
    cov[:, 1, 1] = np.asarray(var_y, dtype=np.float64)
    cov[:, 0, 1] = cov[:, 1, 0] = np.asarray(cov_xy, dtype=np.float64)
    sky = jac @ cov @ np.swapaxes(jac, -1, -2)
    return np.sqrt(np.maximum(sky[:, 0, 0], 0.0)), np.sqrt(np.maximum(sky[:, 1, 1], 0.0))
