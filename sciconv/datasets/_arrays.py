"""Array helpers shared by the modules of sciconv.datasets (numpy only)."""

from __future__ import annotations

import numpy as np


def pad_to(x: np.ndarray, h: int, w: int, *, mode: str = "constant", center: bool = True):
    """Pad rows/columns up to at least ``(h, w)`` (never crops)."""
    dh, dw = max(0, h - x.shape[0]), max(0, w - x.shape[1])
    if not dh and not dw:
        return x
    top, left = (dh // 2, dw // 2) if center else (0, 0)
    pads = [(top, dh - top), (left, dw - left)] + [(0, 0)] * (x.ndim - 2)
    if mode == "reflect" and (x.shape[0] == 1 or x.shape[1] == 1):
        mode = "edge"
    return np.pad(x, pads, mode=mode)


def center_crop(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """The centre window ``(h, w)`` of an image at least that large."""
    top, left = (x.shape[0] - h) // 2, (x.shape[1] - w) // 2
    return x[top : top + h, left : left + w]
