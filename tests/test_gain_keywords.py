"""Which header card gives the electrons per ADU: ``EGAIN`` before ``GAIN``.

N.I.N.A., MaxIm DL and SGP write ``GAIN`` = the CMOS camera's gain setting (120, in the
camera's own steps) beside ``EGAIN`` = electrons per ADU (0.25): read first, ``GAIN`` made the
Poisson term of a bright star's ``flux_err`` 4.9x too small (QA 55).
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from sciconv.io import GridImage
from sciconv.postprocess import effective_gain, estimate_error, measure


def _frame(header: dict) -> GridImage:
    rng = np.random.default_rng(3)
    sky = rng.poisson(400.0, (48, 48)).astype(np.float64)
    yy, xx = np.mgrid[:48, :48]
    star = 2e5 * np.exp(-((yy - 24) ** 2 + (xx - 24) ** 2) / 8.0) / (8.0 * np.pi)
    adu = (sky + star) / 0.25  # electrons -> ADU at 0.25 e-/ADU
    return GridImage(adu[..., None].astype(np.float32), header=fits.Header(header))


def test_egain_is_the_electrons_per_adu_when_gain_is_a_camera_setting():
    img = _frame({"GAIN": 120, "EGAIN": 0.25, "EXPTIME": 60.0})
    assert effective_gain(img) == pytest.approx(0.25)
    alone = _frame({"GAIN": 1.5})  # a CCD header with GAIN only: that is the gain
    assert effective_gain(alone) == pytest.approx(1.5)


def test_a_bright_star_flux_err_holds_its_poisson_term():
    img = _frame({"GAIN": 120, "EGAIN": 0.25})
    labels = np.zeros((48, 48), np.int32)
    labels[18:31, 18:31] = 1
    error, how = estimate_error(img, labels)
    assert "0.25" in how
    row = measure(labels, intensity=img, error=error)[0]
    # the star's own Poisson noise: sqrt(electrons) / gain in ADU (about 1800 ADU)
    poisson = np.sqrt(2e5 * 0.99) / 0.25
    assert row["flux_err"] >= 0.95 * poisson


def test_a_chips_own_gain_wins_over_a_primary_egain():
    """Review: looked up key by key (each in the extension, then the primary), a primary
    ``EGAIN = 1.0`` beat the chip's own ``GAIN = 4.2``."""
    img = GridImage(
        np.zeros((4, 4, 1), np.float32),
        header=fits.Header({"GAIN": 4.2}),
        meta={"primary": fits.Header({"EGAIN": 1.0})},
    )
    assert effective_gain(img) == pytest.approx(4.2)
    bare = GridImage(np.zeros((4, 4, 1), np.float32), meta={"primary": {"EGAIN": 1.0}})
    assert effective_gain(bare) == pytest.approx(1.0)  # the primary's, when the chip has none
