"""HED stain jitter of H&E / brightfield colour images (training augmentation for the nuclei model).

Tellez et al. 2018 ("Whole-slide mitosis detection in H&E breast histology using PHH3 as a
reference to train distilled stain-invariant convolutional networks"): the RGB image is split
into haematoxylin, eosin and DAB optical densities by colour deconvolution
(:func:`skimage.color.rgb2hed`), each channel is scaled by ``1 + U(-sigma, sigma)`` and shifted by
``U(-bias, bias)``, and the result is recombined (:func:`skimage.color.hed2rgb`). The copies
differ in stain strength and hue as slides from different labs do, so a model trained on them
sees more of the range of real H&E: in hue with the RGB input (``--input rgb``, the default for
several modalities), in contrast only with the grey one (whose grey image of a jittered copy
correlates 0.998 with the original's, so there the copies change little).

``tools/train_pretrained_nuclei.py --stain-copies N`` adds N jittered copies of every colour
training image (ids ``<id>~hed<k>``); each copy's jitter is seeded by its id, so a packed file and
a run from the DSB folder hold the same pixels.
"""

from __future__ import annotations

import hashlib

import numpy as np

#: Scale and shift ranges of the H, E, D optical densities (Tellez et al.: 0.05 for both).
STAIN_SIGMA = 0.05
STAIN_BIAS = 0.05
#: The marker of a jittered copy in an image id: ``<id>~hed<k>``.
COPY_MARK = "~hed"


def copy_ids(ids, modality_of: dict, copies: int) -> list[str]:
    """The ids of ``copies`` jittered copies of every ``color`` image among ``ids``.

    >>> copy_ids(["a", "b"], {"a": "color", "b": "fluo"}, 2)
    ['a~hed0', 'a~hed1']
    """
    return [f"{i}{COPY_MARK}{k}" for i in ids if modality_of[i] == "color" for k in range(copies)]


def hed_jitter(rgb: np.ndarray, key: str, *, sigma=STAIN_SIGMA, bias=STAIN_BIAS) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 with its H, E, D densities jittered; seeded by the string ``key``.

    >>> img = np.full((4, 4, 3), 200, np.uint8); img[1:3, 1:3] = (120, 60, 160)
    >>> out = hed_jitter(img, "x~hed0")
    >>> out.shape, out.dtype, bool((out == hed_jitter(img, "x~hed0")).all())
    ((4, 4, 3), dtype('uint8'), True)
    """
    from skimage.color import hed2rgb, rgb2hed

    rng = np.random.default_rng(int(hashlib.sha256(key.encode()).hexdigest()[:16], 16))
    hed = rgb2hed(rgb[..., :3])
    hed = hed * rng.uniform(1 - sigma, 1 + sigma, 3) + rng.uniform(-bias, bias, 3)
    out = hed2rgb(hed)
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)
