"""Input transforms: give an image the form a model was trained on (grey or RGB, bright nuclei)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from sciconv._validation import look_up_option
from sciconv.errors import ConfigError, InvalidImageError
from sciconv.io._common import channels_first_hint, transparent_as_nan, warn_caller
from sciconv.preprocess._limits import finite_values, validate_image
from sciconv.preprocess._saturation import channel_mean, plateau_heights, saturation_level

_TRANSFORM_KEYS = ("to_gray", "to_rgb", "invert", "dark_to_gray", "restore_saturated")
_INVERT_CHOICES = (True, False, "auto")
#: Percentiles whose midpoint the median is compared with by ``invert="auto"``.
_AUTO_INVERT_PERCENTILES = (0.1, 99.9)


def _check_flag(spec: Mapping, key: str) -> bool:
    value = spec.get(key, False)
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"input transform spec key {key!r} must be true or false; got {value!r}")
    return bool(value)


def validate_input_transform(spec) -> dict:
    """An input transform spec checked, with every key filled in (False where not given), so two
    specs that mean the same compare equal.

    Parameters
    ----------
    spec : Mapping
        The input transform spec (keys as :func:`apply_input_transform` lists them).

    Returns
    -------
    dict
        Every key of the spec, filled in.

    Raises
    ------
    ConfigError
        Not a dict, an unknown key (named, with the closest one), a bad value, or both
        ``to_gray`` and ``to_rgb``.

    Examples
    --------
    >>> from sciconv.preprocess import validate_input_transform
    >>> validate_input_transform({"to_gray": True})["invert"]
    False
    """
    if not isinstance(spec, Mapping):
        raise ConfigError(
            'input transform spec must be a dict like {"to_gray": true, "invert": "auto"} or '
            f"None; got {type(spec).__name__}"
        )
    for key in spec:
        look_up_option(key, _TRANSFORM_KEYS, name="input transform spec key")
    to_gray, to_rgb = _check_flag(spec, "to_gray"), _check_flag(spec, "to_rgb")
    if to_gray and to_rgb:
        raise ConfigError(
            "input transform spec asks for both 'to_gray' and 'to_rgb'; a model takes either "
            f"grey (1 channel) or RGB (3 channels), so set one of them; got {dict(spec)}"
        )
    invert = spec.get("invert", False)
    if isinstance(invert, np.bool_):
        invert = bool(invert)
    if not any(invert is c or (isinstance(invert, str) and invert == c) for c in _INVERT_CHOICES):
        if not isinstance(invert, str):  # 1 == True in Python, but 1 did not flip: refused
            raise ConfigError(
                f"input transform spec key 'invert' must be true, false or 'auto'; got {invert!r}"
            )
        look_up_option(invert, _INVERT_CHOICES, name="input transform spec key 'invert'")
    dark_to_gray = _check_flag(spec, "dark_to_gray")
    if dark_to_gray and not to_rgb:
        raise ConfigError(
            "input transform spec key 'dark_to_gray' needs 'to_rgb': true (it averages the R, "
            f"G, B of a dark-background image for an RGB model); got {dict(spec)}"
        )
    return {
        "to_gray": to_gray,
        "to_rgb": to_rgb,
        "invert": invert,
        "dark_to_gray": dark_to_gray,
        "restore_saturated": _check_flag(spec, "restore_saturated"),
    }


def _bad_channels(shape: tuple, key: str, allowed: str) -> InvalidImageError:
    fix = channels_first_hint(shape) or (
        "pass the nuclear channel alone (image[..., k]; sciconv predict --channel K), an RGB "
        "image, or one plane of a stack (stack[i])"
    )
    return InvalidImageError(
        f"image must have {allowed} channels for the input transform {key!r}; got "
        f"{shape[-1]} (the last axis): {fix}"
    )


def to_channels(x: np.ndarray, *, to_gray: bool = False, to_rgb: bool = False) -> np.ndarray:
    """The channel step of an input transform on an ``(H, W, C)`` float array (no flip).

    ``to_gray``: RGB(A) -> the mean of R, G, B as ``(H, W, 1)``; ``to_rgb``: ``(H, W, 1)``
    replicated to ``(H, W, 3)``, RGBA without its alpha, RGB unchanged. Shared by
    :func:`apply_input_transform` and the block-wise inference, so both convert alike.

    Raises
    ------
    InvalidImageError
        A channel count the asked conversion does not take (2, or more than 4).

    Examples
    --------
    >>> import numpy as np
    >>> to_channels(np.ones((2, 2, 1), np.float32), to_rgb=True).shape
    (2, 2, 3)
    """
    c = x.shape[-1]
    if to_gray and c != 1:
        if c not in (3, 4):
            raise _bad_channels(x.shape, "to_gray", "1, 3 (RGB) or 4 (RGBA)")
        return x[..., :3].mean(axis=-1, keepdims=True, dtype=np.float32)
    if to_rgb:
        if c not in (1, 3, 4):
            raise _bad_channels(x.shape, "to_rgb", "1 (grey), 3 (RGB) or 4 (RGBA)")
        return np.repeat(x, 3, axis=-1) if c == 1 else x[..., :3]
    return x


def gray_of(x: np.ndarray) -> np.ndarray:
    """The grey image ``invert="auto"`` decides on: mean of R, G, B for 3 or 4 channels.

    Examples
    --------
    >>> import numpy as np
    >>> gray_of(np.dstack([np.zeros((1, 1)), np.ones((1, 1)) * 3, np.ones((1, 1)) * 6])).tolist()
    [[[3.0]]]
    """
    if x.shape[-1] in (3, 4):
        return x[..., :3].mean(axis=-1, keepdims=True, dtype=np.float32)
    return x


def _median_position(x: np.ndarray) -> float:
    """Where the median sits between the 0.1st (0) and 99.9th (1) percentiles; 0 when flat."""
    finite = finite_values(x)
    if finite.size == 0:
        return 0.0
    lo, mid, hi = np.percentile(
        finite, (_AUTO_INVERT_PERCENTILES[0], 50.0, _AUTO_INVERT_PERCENTILES[1])
    )
    return float((mid - lo) / (hi - lo)) if hi > lo else 0.0


#: ``invert="auto"`` on colour: a median saturation above this, with saturation falling as the
#: brightness rises (correlation under :data:`_ABSORBING`) and green the darkest channel in most
#: pixels (:data:`_GREEN_ABSORBED`), is H&E on a light ground: flipped even when the tissue is
#: dense and its median sits at mid-range.
_STAINED_SATURATION = 0.15
_ABSORBING = -0.2
#: Haematoxylin and eosin both absorb green: G is the smallest channel in most pixels of raw H&E
#: (0.27-1.0 of them on the 91 DSB2018 colour images, 1.0 on dense slides) and the largest once
#: flipped (at most 0.33 of them smallest), so a flipped slide is not flipped back.
_GREEN_ABSORBED = 0.5
#: ...and its median grey at least this far up its range (dense H&E: 0.47-0.53; a dark
#: background, as fluorescence has, is never flipped by colour).
_STAINED_MEDIAN = 0.3
#: Pixels at most that the colour rule measures (a regular subsample of larger images).
_STAIN_SAMPLES = 1_000_000


def _stained(x: np.ndarray) -> bool:
    """Whether colour pixels ``(..., 3+)`` look like absorbing stains on a light ground.

    HSV saturation ``(max - min) / max`` and value ``max`` of each pixel: H&E tissue is
    saturated where it is dark (stain) and pale where it is bright (glass, lumen), so the two
    anti-correlate (-0.3 to -0.94 on the 91 DSB2018 colour images, -0.8 to -0.9 on dense H&E
    slides), and green is its darkest channel; a fluorescence composite is saturated where it
    is bright (the signal) or not saturated at all (grey). Dense H&E has its median at
    mid-range, where the median rule alone (above the midpoint: flipped) left it unflipped (the
    model outlined the pale gaps between nuclei).
    """
    rgb = np.asarray(x[..., :3], dtype=np.float32).reshape(-1, 3)
    step = max(1, rgb.shape[0] // _STAIN_SAMPLES)
    rgb = rgb[::step]
    rgb = rgb[np.isfinite(rgb).all(axis=1)]
    top = rgb.max(axis=1)
    keep = top > 0
    if keep.sum() < 16:
        return False
    rgb, top = rgb[keep], top[keep]
    if float(np.mean(rgb[:, 1] <= rgb[:, [0, 2]].min(axis=1))) <= _GREEN_ABSORBED:
        return False
    saturation = (top - rgb.min(axis=1)) / top
    if float(np.median(saturation)) <= _STAINED_SATURATION or 0 in (top.std(), saturation.std()):
        return False
    return bool(np.corrcoef(saturation, top)[0, 1] < _ABSORBING)


#: ``dark_to_gray``: a channel whose range is under this fraction of the widest one's is "empty".
_EMPTY_CHANNEL = 0.1


#: ``dark_to_gray``: two channels with signal that correlate less than this are two stains.
_SAME_STAIN = 0.9
#: A channel whose range is at least this fraction of the widest carries a signal of its own
#: (below: zeros or a camera offset's noise), for the composite warning.
_SIGNAL_CHANNEL = 0.02


def _average_to_grey(x: np.ndarray) -> bool:
    """Whether ``dark_to_gray`` averages an RGB image: one channel's range (1st to 99.8th
    percentile) is under :data:`_EMPTY_CHANNEL` of the widest channel's, as for a fluorescence
    image saved in colour (DAPI in blue only), not an H&E image flipped about its background
    (all three carry the stain). When the channels left carry different signals (a composite:
    DAPI and a cytoplasm stain), their mean merges the nuclei with the other stain, and a
    warning says to segment one channel."""
    if x.shape[-1] != 3:
        return False
    step = max(1, int(np.sqrt(x.shape[0] * x.shape[1] / 2**18)))  # about 256k pixels suffice
    sample = x[::step, ::step, :3]
    ranges = []
    for c in range(3):
        values = finite_values(sample[..., c])
        if values.size == 0:
            return False
        lo, hi = np.percentile(values, (1.0, 99.8))
        ranges.append(float(hi - lo))
    if not (max(ranges) > 0 and min(ranges) < _EMPTY_CHANNEL * max(ranges)):
        return False
    # channels with any signal: a dim 16-bit DAPI channel (range 300) beside a bright stain
    # (3000) is under the "empty" bar, yet the mean buries its nuclei under the other stain
    live = [c for c in range(3) if ranges[c] >= _SIGNAL_CHANNEL * max(ranges)]
    if _different_signals(sample, live):
        names = " and ".join("RGB"[c] for c in live)
        warn_caller(
            f"a dark-background colour image with different signals in {names} (a composite of "
            "stains?) is averaged to grey for the model, which merges nuclei with the other "
            "stain; segment the nuclear channel alone (image[..., k]; sciconv predict "
            "--channel K)",
            package="sciconv",
        )
    return True


def _different_signals(sample: np.ndarray, channels: list[int]) -> bool:
    """Whether two of ``channels`` correlate less than :data:`_SAME_STAIN` (finite pixels)."""
    finite = np.all(np.isfinite(sample), axis=-1)
    if finite.sum() <= 2:
        return False
    pairs = [(a, b) for i, a in enumerate(channels) for b in channels[i + 1 :]]
    return any(
        np.corrcoef(sample[..., a][finite], sample[..., b][finite])[0, 1] < _SAME_STAIN
        for a, b in pairs
    )


#: ``dark_to_gray``: R, G and B are one signal (a grey image with a colour cast) when the colour
#: spread off their main line is under this fraction of the spread along it (the square root of
#: the 2nd over the 1st eigenvalue of their covariance, on 8 x 8 pixel means). The 12 DSB2018
#: grey brightfield images with channel gains and offsets (an RGB camera's white balance), 8-bit:
#: 0.0007-0.0033; with noise of 3 grey levels per channel: up to 0.010 (6 levels: 0.013-0.020).
#: The 91 DSB2018 colour (H&E) images: 0.029-0.39, with a cast of their own from 0.027 (their hue
#: varies between stain, tissue and glass).
_ONE_SIGNAL = 0.015
#: ...measured on means of blocks of up to this many pixels a side (noise averages out, stains
#: stay), with at least :data:`_ONE_SIGNAL_BLOCKS` blocks.
_ONE_SIGNAL_BIN = 8
_ONE_SIGNAL_BLOCKS = 1024
#: Blocks at most that :func:`_one_signal` measures (every k-th block row and column).
_ONE_SIGNAL_SAMPLES = 16384


def _one_signal(x: np.ndarray) -> bool:
    """Whether the R, G, B of a colour image are one grey signal with a colour cast.

    A grey image saved by an RGB camera whose white balance is off has each channel an affine
    copy of one signal (``R = a_r * s + b_r`` and so on): its pixel colours lie on one line,
    whereas stains (H&E) vary in hue between nuclei, tissue and glass, and a composite of
    stains has different signals in its channels. Measured on means of up to 8 x 8 pixel blocks
    (so camera noise averages out) after leaving out the pixels where a channel is at its
    smallest or largest value (clipped: a saturated background is off the line); a constant
    channel is a copy with gain 0. An image with R = G = B is grey already: ``False``.

    Parameters
    ----------
    x : ndarray
        ``(H, W, 3)`` or ``(H, W, 4)`` pixels (alpha ignored); NaN = bad pixel.

    Returns
    -------
    bool
        ``True`` when the spread of the block colours off their main line is under 1.5 % of
        the spread along it (:data:`_ONE_SIGNAL`) and the channels are not all equal.

    Examples
    --------
    >>> import numpy as np
    >>> s = np.add.outer(np.arange(64.0), np.arange(64.0)) % 50 + 100
    >>> _one_signal(np.dstack([s, 0.8 * s + 10, 0.95 * s]))   # grey with a colour cast
    True
    >>> _one_signal(np.dstack([s, s, s]))                     # grey already
    False
    >>> _one_signal(np.dstack([s, s[::-1], s]))               # two different signals
    False
    """
    if x.ndim != 3 or x.shape[-1] not in (3, 4):
        return False
    h, w = x.shape[:2]
    b = int(min(_ONE_SIGNAL_BIN, max(1, np.sqrt(h * w / _ONE_SIGNAL_BLOCKS))))
    # every k-th block row and column: about _ONE_SIGNAL_SAMPLES blocks of contiguous pixels
    k = max(1, int(np.sqrt((h // b) * (w // b) / _ONE_SIGNAL_SAMPLES)))
    rows = (np.arange(0, h // b, k)[:, None] * b + np.arange(b)).ravel()
    cols = (np.arange(0, w // b, k)[:, None] * b + np.arange(b)).ravel()
    rgb = np.asarray(x[np.ix_(rows, cols)][..., :3], dtype=np.float32)
    if np.array_equal(rgb[..., 0], rgb[..., 1], equal_nan=True) and np.array_equal(
        rgb[..., 1], rgb[..., 2], equal_nan=True
    ):
        return False
    finite = np.isfinite(rgb).all(axis=-1)
    if finite.sum() < 16:
        return False
    # channel by channel: numpy's axis-0 reduction of the (N, 3) pixels took 20x as long
    channels = [rgb[..., c][finite] for c in range(3)]
    lo = np.array([v.min() for v in channels], np.float32)
    hi = np.array([v.max() for v in channels], np.float32)
    clipped = ((rgb <= lo) | (rgb >= hi)) & (hi > lo)
    rgb = np.where((finite & ~clipped.any(axis=-1))[..., None], rgb, np.nan)
    h, w = rgb.shape[:2]
    blocks = rgb.reshape(h // b, b, w // b, b, 3).mean(axis=(1, 3)).reshape(-1, 3)
    blocks = blocks[np.isfinite(blocks).all(axis=1)]
    if blocks.shape[0] < 16:
        return False
    ev = np.linalg.eigvalsh(np.cov(blocks.astype(np.float64), rowvar=False))
    return bool(ev[2] > 0 and max(ev[1], 0.0) < _ONE_SIGNAL**2 * ev[2])


#: The percentile of each channel taken as its white point (the glass of a slide) when a colour
#: image is flipped
WHITE_POINT = 99.5
#: A colour cast is taken out when one channel's white point is further than this share below
#: the brightest one's: 2 of the 14 colour validation images have glass tinted 5-7 %, and
#: balancing them lost AP@0.5 (0.375 -> 0.301, 0.833 -> 0.821); a camera's cast off by 22-30 %
#: took AP@0.5 from 0.699 to 0.442-0.567 on 8 of them (QA), balanced 0.699-0.703
WHITE_CAST = 0.10


def white_balance(rgb: np.ndarray) -> tuple[float, float, float] | None:
    """Per-channel gains that bring each channel's white point to the brightest one's.

    Transmitted light (H&E, brightfield) is flipped about one value; a white-balance cast of
    the camera or scanner (the glass bluish or yellowish) then becomes a different background
    level per channel, a hue the model never saw (QA: a blue cast on 8 real H&E images took
    AP@0.5 from 0.699 to 0.442; with the gains 0.699). The white point of a channel is its
    :data:`WHITE_POINT` percentile.

    Parameters
    ----------
    rgb : ndarray, shape (..., 3)
        Colour pixels (NaN left out).

    Returns
    -------
    tuple of float or None
        The gains (at most 2 each), or None when no white point is below the brightest one's by
        more than :data:`WHITE_CAST`, one is not positive, or green's is the lowest (the white
        points are then those of stained tissue filling the image, not of glass: eosin and
        haematoxylin absorb green).

    Examples
    --------
    >>> import numpy as np
    >>> glass = np.ones((64, 64, 3)) * np.array([200.0, 225.0, 250.0])  # a blue cast
    >>> [round(g, 3) for g in white_balance(glass)]
    [1.25, 1.111, 1.0]
    >>> white_balance(np.full((64, 64, 3), 240.0)) is None
    True
    >>> white_balance(np.ones((64, 64, 3)) * np.array([230.0, 200.0, 220.0])) is None  # eosin
    True
    """
    flat = np.asarray(rgb, dtype=np.float32).reshape(-1, 3)
    flat = flat[:: max(1, flat.shape[0] // _STAIN_SAMPLES)]
    white = np.array(
        [np.percentile(c, WHITE_POINT) if c.size else np.nan for c in map(finite_values, flat.T)]
    )
    if not (np.all(np.isfinite(white)) and np.all(white > 0)):
        return None
    if white.min() >= (1.0 - WHITE_CAST) * white.max():
        return None
    if int(np.argmin(white)) == 1:  # green the dimmest: stained tissue (H&E absorb green), no
        return None  # glass in the image; a camera's cast runs blue-yellow (R or B the dimmest)
    gains = np.minimum(white.max() / white, 2.0)
    return tuple(float(g) for g in gains)


#: Black edge rows and columns are padding only when at most this share of the pixels inside
#: them is black too: a fluorescence image on a background of exact 0 (thresholded,
#: background-subtracted) has black edges and black between its nuclei; taken for padding, the
#: box around dense nuclei was flipped and its background made no data (review: 9 of 9 nuclei
#: lost)
BLACK_INSIDE = 0.005


def _black(x: np.ndarray) -> np.ndarray:
    """``(H, W)``: pixels exactly 0 in every colour channel of ``x`` (alpha left out)."""
    colour = x[..., :3] if x.shape[-1] in (3, 4) else x
    return np.all(colour == 0, axis=-1)


def _black_frame(black: np.ndarray) -> tuple[slice, slice] | None:
    """The part of an image inside complete rows and columns at its edges that are black
    (``black``: :func:`_black` of the image, black in every colour channel): a tile padded past
    the scanned area, an RGBA region taken to RGB (OpenSlide's transparent black with its alpha
    dropped). None when no edge row or column is black, or all of them are (an empty image).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.full((5, 6, 3), 200.0); x[3:] = 0; x[:, 4:] = 0   # black below and right
    >>> _black_frame(_black(x))
    (slice(0, 3, None), slice(0, 4, None))
    >>> _black_frame(_black(np.full((5, 6, 3), 200.0))) is None
    True
    """
    top, bottom, left, right = 0, black.shape[0], 0, black.shape[1]
    while top < bottom and left < right:
        before = (top, bottom, left, right)
        while top < bottom and black[top, left:right].all():
            top += 1
        while bottom > top and black[bottom - 1, left:right].all():
            bottom -= 1
        while left < right and black[top:bottom, left].all():
            left += 1
        while right > left and black[top:bottom, right - 1].all():
            right -= 1
        if (top, bottom, left, right) == before:
            break
    whole = (top, bottom, left, right) == (0, black.shape[0], 0, black.shape[1])
    if whole or top == bottom or left == right:
        return None
    return slice(top, bottom), slice(left, right)


@dataclasses.dataclass(frozen=True)
class InputTransform:
    """An input transform resolved on one image: pointwise afterwards, so it can run per window.

    :func:`resolve_input_transform` decides the flip on the whole image once; calling the result
    on the whole image is :func:`apply_input_transform`, and calling it on every window of the
    image (the block-wise inference) gives the same pixels window by window.

    Attributes
    ----------
    to_gray, to_rgb : bool
        The channel step (:func:`to_channels`).
    flip_at : float or None
        Flip as ``flip_at - x`` (all channels about one value), or no flip.
    gray : bool
        With ``to_rgb``: replace R, G and B by their mean, before the flip (``dark_to_gray`` on a
        dark-background image with an empty channel, or on a grey image with a colour cast).
    transparent : bool
        An RGBA image whose alpha marks no data: its fully transparent pixels (alpha 0, as
        OpenSlide gives outside the scanned area) are NaN, bad pixels, before the alpha channel
        is dropped (QA: half a tile transparent black, AP@0.5 0.83 -> 0.00 unflipped; NaN there:
        0.83). False for an alpha that is 0 everywhere (meaningless) or nowhere.
    black_padding : bool
        A flipped image (a light background) padded with black: its pixels exactly 0 in every
        colour channel are NaN, bad pixels, before the channel step. Set where complete rows or
        columns at the image's edges are black and the image inside them is flipped (decided
        on that part alone): a tile past the scanned area as an RGBA region taken to RGB gives
        (QA: half a grey brightfield tile black, AP@0.5 0.83 -> 0.00 unflipped; 0.83 with it).
    gains : tuple of float or None
        A colour image flipped: each channel times its gain before the flip, so that its white
        point (:data:`WHITE_POINT` percentile: the glass of a slide) is the brightest one's (a
        colour cast of the camera or scanner taken out; None: no cast over :data:`WHITE_CAST`).
    saturated_at : float or None
        ``restore_saturated``: the level (after the flip) whose plateaus
        :func:`~sciconv.preprocess.restore_saturated` raises, last (None: the image has none).
        Not pointwise: a window of the image (a tile, a block) that holds a plateau whole gives
        its pixels as the whole image does; a plateau cut by the window's edge is raised as far
        as the window shows it, and a window narrower than a plateau's core (a row of a limits
        sample) raises nothing. :meth:`pointwise` leaves the step out.

    Examples
    --------
    >>> import numpy as np
    >>> t = InputTransform(to_gray=False, to_rgb=True, flip_at=10.0)
    >>> t(np.full((1, 1), 4.0)).tolist(), t.out_channels(1)
    ([[[6.0, 6.0, 6.0]]], 3)
    """

    to_gray: bool
    to_rgb: bool
    flip_at: float | None
    gray: bool = False
    saturated_at: float | None = None
    gains: tuple[float, ...] | None = None
    transparent: bool = False
    black_padding: bool = False

    def pointwise(self) -> InputTransform:
        """This transform without ``restore_saturated``: pixel by pixel, for what is not an
        image (a sample of rows and columns) or is cut into chunks with no overlap (dask)."""
        return dataclasses.replace(self, saturated_at=None)

    def out_channels(self, channels: int) -> int:
        """The channel count this transform gives an image of ``channels`` channels."""
        if self.to_gray and channels in (3, 4):
            return 1
        if self.to_rgb and channels in (1, 3, 4):
            return 3
        return channels

    def __call__(self, data) -> np.ndarray:
        x = np.asarray(data, dtype=np.float32)
        x = x[..., None] if x.ndim == 2 else x
        if self.transparent and x.shape[-1] == 4:
            x, _ = transparent_as_nan(x)
        if self.black_padding:
            x = np.where(_black(x)[..., None], np.float32(np.nan), x)
        x = to_channels(x, to_gray=self.to_gray, to_rgb=self.to_rgb)
        if self.gray and x.shape[-1] == 3:
            x = np.repeat(x.mean(axis=-1, keepdims=True, dtype=np.float32), 3, axis=-1)
        if self.gains is not None and x.shape[-1] == len(self.gains):
            x = x * np.asarray(self.gains, np.float32)
        if self.flip_at is not None:
            x = np.float32(self.flip_at) - x
        if self.saturated_at is not None:  # restore_saturated (x may be the caller's array)
            heights = plateau_heights(x, self.saturated_at)
            if heights is not None:
                x = x + heights[..., None]
        return np.ascontiguousarray(x, dtype=np.float32)


def _as_image(image) -> np.ndarray:
    arr = validate_image(image, name="image")
    if arr.ndim == 4:
        raise InvalidImageError(
            f"image must be one image (H, W) or (H, W, C), not a batch; got shape {arr.shape}"
        )
    return (arr[..., None] if arr.ndim == 2 else arr).astype(np.float32)


def resolve_input_transform(image, spec: Mapping) -> InputTransform:
    """Resolve ``spec`` on ``image`` (or a sample of its pixels): decide the flip once.

    ``invert="auto"`` is decided on the grey image (the mean of R, G, B for ``to_gray`` and
    ``to_rgb``; all channels together otherwise), ``invert=True`` flips about the largest finite
    value over all channels the model gets (one value, so the hue of an RGB image is kept), or
    of their mean where ``dark_to_gray`` averages them.

    Raises
    ------
    ConfigError, InvalidImageError
        As :func:`apply_input_transform`.

    Examples
    --------
    >>> import numpy as np
    >>> bright = np.full((4, 4, 3), 200.0); bright[1, 1] = (20.0, 40.0, 60.0)
    >>> resolve_input_transform(bright, {"to_rgb": True, "invert": "auto"}).flip_at
    200.0
    """
    return _resolve(_as_image(image), validate_input_transform(spec))


def _resolve(x: np.ndarray, spec: dict) -> InputTransform:
    transparent = False
    if x.shape[-1] == 4 and (spec["to_gray"] or spec["to_rgb"]):  # RGBA taken as colour
        cleared, count = transparent_as_nan(x)
        transparent = 0 < count < x.shape[0] * x.shape[1]  # alpha 0 somewhere, not everywhere
        if transparent:
            x = cleared
    # black rows and columns at the edges (a tile padded past the scanned area) are left out of
    # the flip decision: half a brightfield tile black kept it unflipped (AP@0.5 0.83 -> 0.00)
    black = _black(x)  # the one black mask: the frame, the share inside it, the padding
    frame = _black_frame(black)
    if frame is not None and black[frame].mean() > BLACK_INSIDE:
        frame = None  # black inside too: a background of 0 (fluorescence), not padding
    inside = (slice(None), slice(None)) if frame is None else frame
    decide_on = gray_of(x) if spec["to_rgb"] else None
    colour = x.shape[-1] in (3, 4)  # a grey image replicated to R = G = B needs no averaging
    original = x
    x = to_channels(x, to_gray=spec["to_gray"], to_rgb=spec["to_rgb"])
    invert = spec["invert"]
    if invert == "auto":  # a light background, or stains that absorb on a light ground
        position = _median_position((x if decide_on is None else decide_on)[inside])
        invert = position > 0.5 or (
            colour and spec["to_rgb"] and position > _STAINED_MEDIAN and _stained(original[inside])
        )
    # flipped, the black padding would become the brightest object of all: no data instead
    black_padding = invert is True and frame is not None
    if black_padding:
        x = np.where(black[..., None], np.float32(np.nan), x)
    # a dark background with an empty channel (fluorescence saved in colour), or any background
    # with R, G, B one signal (a grey image with a colour cast: flipped about one value, the
    # cast's gains became offsets of the background, a colour the model never saw)
    gray = (
        spec["dark_to_gray"]
        and colour
        and ((invert is not True and _average_to_grey(x)) or _one_signal(x))
    )
    top = gains = None
    if invert is True:
        gains = None if gray or x.shape[-1] != 3 else white_balance(x)
        if gains is not None:
            x = x * np.asarray(gains, np.float32)
        finite = finite_values(gray_of(x) if gray else x)
        top = float(finite.max()) if finite.size else 0.0
    transform = InputTransform(
        to_gray=spec["to_gray"],
        to_rgb=spec["to_rgb"],
        flip_at=top,
        gray=gray,
        gains=gains,
        transparent=transparent,
        black_padding=black_padding,
    )
    if not spec["restore_saturated"]:
        return transform
    # the ceiling the objects reach once flipped: the highest value of the grey image the model
    # gets that forms a plateau (decided once, like the flip, so every window restores alike;
    # None: the image is not saturated, and nothing is done at all)
    grey = channel_mean(x)
    level = saturation_level(grey if top is None else np.float32(top) - grey)
    return transform if level is None else dataclasses.replace(transform, saturated_at=level)


def apply_input_transform(image, spec: Mapping | None) -> np.ndarray:
    """Bring an image to the form a model was trained on: grey or RGB, objects bright.

    Applied before the normalization (:func:`normalize_spec`); models record the spec in their
    metadata (``"input_transform"``), so e.g. a fluorescence-trained nuclei model also takes
    colour (H&E) and brightfield images, whose nuclei are darker than the background.

    Parameters
    ----------
    image : array-like or sciconv.io.GridImage
        ``(H, W)``, ``(H, W, 1)``, or ``(H, W, 3|4)`` (RGB / RGBA) pixels. NaN = bad pixel.
    spec : dict or None
        ``None`` returns ``image`` unchanged. Keys (all optional; ``to_gray`` and ``to_rgb``
        exclude each other):

        ``"to_gray"`` : bool
            ``True``: an RGB(A) image becomes the mean of its R, G, B channels (alpha is
            dropped; fully transparent pixels, alpha 0, are NaN: no data, as outside a scanned
            slide, unless alpha is 0 everywhere); ``(H, W)`` and ``(H, W, 1)`` images pass
            through.
        ``"to_rgb"`` : bool
            ``True``: the model takes 3 channels: an ``(H, W)`` or ``(H, W, 1)`` image is
            replicated to R = G = B, an RGBA image loses its alpha (alpha 0: NaN, as above), an
            RGB image passes. The hue (e.g. purple haematoxylin nuclei on pink eosin) is kept.
        ``"invert"`` : True, False or "auto"
            ``True``: flip the brightness (``max - x``, NaN-safe; NaN stays NaN), so dark objects
            on a bright background become bright objects on a dark one; with several channels all
            of them flip about the one largest value (the hue of a flipped RGB image is the
            complement of the original's, the same for every image); a colour image whose glass
            has a cast (a channel's white point more than :data:`WHITE_CAST` below the
            brightest one's, not green's: :func:`white_balance`) is balanced first, channel by
            channel. ``"auto"``: flip only when
            the background is the bright side, i.e. the image median lies above the midpoint of
            its 0.1st and 99.9th percentiles (right for 530 of the 531 DSB2018 training images:
            all fluorescence images kept, all grey-brightfield and 90 of 91 H&E / brightfield
            colour images flipped; with ``to_rgb``, dense H&E whose median sits at mid-range is
            flipped too when its stains are saturated where it is dark, the 91st). Decided on
            the grey image (mean of R, G, B) with ``to_gray`` or ``to_rgb``, so both decide
            alike; otherwise over all channels together, leaving out black rows and columns at
            the image's edges (0 in every colour channel: a tile padded past the scanned area),
            which are NaN, no data, when the image is flipped. Default ``False``.
        ``"dark_to_gray"`` : bool
            With ``to_rgb``: an RGB image that is not flipped (dark background: fluorescence)
            and has an empty channel (range under a tenth of the widest channel's) gets R = G =
            B = the mean of its R, G, B, as the fluorescence images an RGB nuclei model was
            trained on (all grey). A fluorescence image saved in colour (DAPI in the blue
            channel only) then reaches the model as its grey image, not as a hue it never saw.
            Any RGB image whose R, G, B are one signal (a grey image with a colour cast, as an
            RGB camera with an off white balance saves it: each channel an affine copy of one
            grey image, up to noise) gets the mean too, before the flip (flipped about one
            value, the cast's gains became background offsets that differ by channel: a tinted
            grey brightfield image lost most nuclei). Stained
            colour images (H&E) keep their hue, flipped or not (all three channels carry the
            stain), so the transform stays idempotent. Default ``False``.
        ``"restore_saturated"`` : bool
            ``True``: last, the flat plateaus of saturated objects (at the highest value of
            the image the model gets that forms one, cores at least
            :data:`~sciconv.preprocess.MIN_PLATEAU_RADIUS` deep) are raised by a paraboloid
            continuing their flanks (:func:`~sciconv.preprocess.restore_saturated`), so
            over-exposed nuclei reach the network with the rise to their centre it was trained
            on. The pretrained nuclei model records it. Default ``False``.

    Returns
    -------
    ndarray, float32
        ``(H, W, 1)`` with ``to_gray``, ``(H, W, 3)`` with ``to_rgb``, otherwise ``(H, W, C)``.

    Raises
    ------
    ConfigError
        ``spec`` is not a dict or None, has an unknown key (the message names it), a bad value,
        or both ``to_gray`` and ``to_rgb``.
    InvalidImageError
        ``image`` is not an image, or ``to_gray`` / ``to_rgb`` is asked of an image with 2 or
        more than 4 channels.

    See Also
    --------
    resolve_input_transform : decide the flip once, then apply it window by window.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.preprocess import apply_input_transform
    >>> rgba = np.zeros((2, 2, 4), np.uint8)
    >>> rgba[..., 0], rgba[..., 1], rgba[..., 3] = 30, 60, 255
    >>> apply_input_transform(rgba, {"to_gray": True})[..., 0].tolist()
    [[30.0, 30.0], [30.0, 30.0]]
    >>> apply_input_transform(rgba, {"to_rgb": True})[0, 0].tolist()   # alpha dropped
    [30.0, 60.0, 0.0]
    >>> bright = np.full((4, 4), 200.0)
    >>> bright[1, 1] = 20.0                     # a dark object on a bright background
    >>> out = apply_input_transform(bright, {"invert": "auto"})
    >>> out.shape, float(out[1, 1, 0]), float(out[0, 0, 0])
    ((4, 4, 1), 180.0, 0.0)
    >>> he = np.full((4, 4, 3), (230.0, 200.0, 220.0))   # pink background
    >>> he[1, 1] = (90.0, 60.0, 140.0)                   # a purple nucleus
    >>> out = apply_input_transform(he, {"to_rgb": True, "invert": "auto"})
    >>> out.shape, out[1, 1].tolist(), out[0, 0].tolist()   # flipped about 230: hue kept apart
    ((4, 4, 3), [140.0, 170.0, 90.0], [0.0, 30.0, 10.0])
    >>> apply_input_transform(bright, {"to_rgb": True}).shape
    (4, 4, 3)
    >>> apply_input_transform(bright, None) is bright
    True
    """
    if spec is None:
        return image
    spec = validate_input_transform(spec)
    x = _as_image(image)
    return _resolve(x, spec)(x)
