"""Prediction settings: every knob of :func:`predict_tiled`, validated and resolved once.

:func:`resolve_settings` is the one place where the arguments are checked against the model and
the image shape (tile size, overlap, normalization, blend, ...). It returns a frozen
:class:`PredictionSettings` that the rest of the code trusts; it holds no model and no image, so it
pickles cleanly and travels to dask workers as it is.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from sciconv import preprocess
from sciconv._validation import check_int, look_up_option
from sciconv.errors import InferenceError, SciconvWarning
from sciconv.inference._blend import BLEND_MODES
from sciconv.inference._model import bytes_per_pixel, output_channels
from sciconv.inference._precision import PRECISIONS, choose_precision
from sciconv.inference._tiles import auto_tile, fit_tile, frame_origin, round_up, tile_starts
from sciconv.io._common import channels_first_hint
from sciconv.models import get_metadata
from sciconv.models.introspect import (
    measure_receptive_field,
    model_channels,
    model_divisor,
    model_fixed_hw,
    receptive_field,
    validate_model,
)

#: How an image smaller than a tile is padded up to it.
PAD_MODES = ("reflect", "symmetric", "edge", "constant")
#: Test-time augmentation: none, or the eight flips/rotations of the square (D4).
TTA_MODES = (None, "d4")
#: Memory (bytes) that ``tile="auto"`` lets one batch of activations use (an estimate from the
#: widest layer of the model).
AUTO_MEMORY_BUDGET = 1 << 30


@dataclass(frozen=True)
class PredictionSettings:
    """The resolved settings of one tiled prediction (build it with :func:`resolve_settings`).

    Attributes
    ----------
    tile : (int, int)
        Tile height and width: multiples of ``divisor``, at most what the image needs.
    overlap : int
        Pixels shared by neighbouring tiles (``"auto"`` resolved to twice the receptive field).
    batch_size : int
        Tiles per model call (lowered by ``tile="auto"`` to stay in the memory budget).
    blend : {"gaussian", "linear", "none"}
    pad_mode : {"reflect", "symmetric", "edge", "constant"}
    tta : None or "d4" (True, False: the same)
    normalization : NormSpec or None
        The normalization to apply (:func:`sciconv.preprocess.resolve_normalization`); None feeds
        raw pixels.
    divisor : int
        What tile sides must be multiples of (``2**depth`` for a U-Net).
    fixed_size : bool
        The model takes only inputs of size ``tile``.
    channels : int
        Input channels C of the image.
    outputs : int
        Output channels K of the model.
    margin : int
        Pixels next to a tile's interior edges that blending gives no weight: the model's
        receptive-field half-width (at most ``overlap // 2``), so blended tiles reproduce the
        whole-image call when ``overlap >= 2 * margin``; 0 for ``blend="none"`` or one tile.
    precision : {"float32", "bfloat16"}
        The compute precision the model runs in (outputs are float32 either way).
    origin : (int, int) or None
        Where the whole image's divisor grid falls in this extent's coordinates, for a window
        of a larger image (a block): its tiles then start on that grid, so a window computes
        what the whole-image call does. None: the extent is the whole image.

    Examples
    --------
    >>> import keras
    >>> from sciconv.inference import resolve_settings
    >>> inputs = keras.Input((None, None, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same")(inputs))
    >>> settings = resolve_settings(model, (100, 60), tile=32, overlap=8)
    >>> settings.tile, settings.overlap, settings.outputs
    ((32, 32), 8, 2)
    >>> settings.tile_starts((100, 60))
    ([0, 24, 48, 68], [0, 24, 28])
    """

    tile: tuple[int, int]
    overlap: int
    batch_size: int
    blend: str
    pad_mode: str
    tta: str | None
    normalization: preprocess.NormSpec | None
    divisor: int
    fixed_size: bool
    channels: int
    outputs: int
    margin: int = 0
    precision: str = "float32"
    origin: tuple[int, int] | None = None

    def fit_to(self, hw: Sequence[int]) -> PredictionSettings:
        """These settings for an extent ``(h, w)``: tiles no larger than it needs (divisor-rounded).

        A fixed-size model keeps its tile. Used for a dask block smaller than the tile, so the
        block is not padded far beyond its edges.

        Parameters
        ----------
        hw : sequence of int
            The extent ``(h, w)`` in pixels.

        Examples
        --------
        >>> import keras
        >>> from sciconv.inference import resolve_settings
        >>> inputs = keras.Input((None, None, 1))
        >>> model = keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs))
        >>> resolve_settings(model, (500, 500), tile=64, overlap=0).fit_to((40, 500)).tile
        (40, 64)
        """
        if self.fixed_size:
            return self
        tile = fit_tile(self.tile, hw, self.divisor, self.origin)
        return self if tile == self.tile else dataclasses.replace(self, tile=tile)

    def within(self, offset: Sequence[int], whole: Sequence[int]) -> PredictionSettings:
        """These settings for a window starting at ``offset`` ``(y, x)`` of an image of shape
        ``whole`` ``(H, W)``: its tiles keep the whole image's divisor grid (``origin``).

        Parameters
        ----------
        offset : sequence of int
            The window's first pixel ``(y, x)`` in the whole image.
        whole : sequence of int
            The whole image's shape ``(H, W)``.

        Examples
        --------
        >>> import keras
        >>> from sciconv.inference import resolve_settings
        >>> inputs = keras.Input((None, None, 1))
        >>> model = keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs))
        >>> s = resolve_settings(model, (1001, 64), tile=64, overlap=0)
        >>> s.within((40, 0), (1001, 64)).origin
        (-40, 0)
        """
        origin = tuple(
            frame_origin(int(n), self.divisor) - int(o) for o, n in zip(offset, whole, strict=True)
        )
        return dataclasses.replace(self, origin=origin)

    def tile_starts(self, hw: Sequence[int]) -> tuple[list[int], list[int]]:
        """Where the tiles of an image ``(h, w)`` start, per axis (the tile grid).

        Along an axis longer than the tile, starts step by ``tile - overlap`` (rounded down to
        the divisor) and the last tile ends at the image edge; an axis that fits in one tile gets
        one start, negative by the padding before the image.

        Parameters
        ----------
        hw : sequence of int
            The image's ``(h, w)`` in pixels.

        Returns
        -------
        (list of int, list of int)
            The tiles' start rows and start columns.
        """
        origin = (None, None) if self.origin is None else self.origin
        return tuple(
            tile_starts(int(n), t, overlap=self.overlap, divisor=self.divisor, origin=o)
            for n, t, o in zip(hw, self.tile, origin, strict=True)
        )


def tta_mode(tta) -> str | None:
    """``tta`` as the tiled paths take it: ``"d4"`` or None; True and False (the form of
    :func:`~sciconv.inference.predict_files` and ``sciconv predict --tta``) mean the same.

    Examples
    --------
    >>> tta_mode(True), tta_mode(False), tta_mode("d4"), tta_mode(None)
    ('d4', None, 'd4', None)
    """
    if isinstance(tta, (bool, np.bool_)):
        return "d4" if tta else None
    return look_up_option(tta, (*TTA_MODES, True, False), name="tta", error=InferenceError)


def tile_pair(tile, *, name: str = "tile") -> tuple[int, int]:
    """``tile`` (an int or a pair of ints, each >= 1) as ``(h, w)``."""
    if isinstance(tile, (int, np.integer)) and not isinstance(tile, bool):
        tile = (int(tile), int(tile))
    if not isinstance(tile, Sequence) or isinstance(tile, str) or len(tile) != 2:
        raise InferenceError(f"{name} must be 'auto', an int or a pair of ints; got {tile!r}")
    return (
        check_int(tile[0], name=name, minimum=1, error=InferenceError),
        check_int(tile[1], name=name, minimum=1, error=InferenceError),
    )


def _explicit_tile(tile, model, fixed, divisor: int) -> tuple[int, int]:
    tiles = tile_pair(tile)
    if fixed and tiles != fixed:
        raise InferenceError(
            f"tile={tile!r}: model {model.name!r} takes inputs of fixed size {fixed}; "
            f"use tile={fixed} or tile='auto'"
        )
    for t in tiles:
        if t < divisor:
            raise InferenceError(
                f"tile={tile!r} is smaller than the model's minimum tile {divisor} (a U-Net "
                f"pools down by {divisor}); use a tile of at least {divisor} pixels"
            )
        if t % divisor:
            lo, hi = t // divisor * divisor, round_up(t, divisor)
            raise InferenceError(
                f"tile={tile!r} is not a multiple of the model's divisor {divisor}; use "
                f"{lo if lo else hi} or {hi}"
            )
    return tiles


def resolve_settings(
    model: keras.Model,
    shape: Sequence[int],
    *,
    tile: int | tuple[int, int] | str = "auto",
    overlap: int | str = "auto",
    batch_size: int = 8,
    normalize: str | Mapping | preprocess.NormSpec | None = "model",
    blend: str = "gaussian",
    tta: str | None = None,
    pad_mode: str = "reflect",
    memory_budget: int = AUTO_MEMORY_BUDGET,
    precision: str = "auto",
    path: str | None = None,
) -> PredictionSettings:
    """Validate the knobs of :func:`predict_tiled` against a model and an image shape, once.

    This is what :func:`predict_tiled` runs before reading a pixel; call it to see what
    ``tile="auto"`` and ``overlap="auto"`` pick for an image (e.g. in a benchmark or a log).

    Parameters
    ----------
    model : keras.Model
        A 2-D model with one image input ``(None, h, w, C)``.
    shape : (int, int) or (int, int, int)
        The image's ``(H, W)`` (one channel) or ``(H, W, C)``.
    tile, overlap, batch_size, normalize, blend, tta, pad_mode, memory_budget, precision
        As for :func:`predict_tiled`.
    path : str, optional
        The image's file, named in error messages.

    Returns
    -------
    PredictionSettings
        Frozen; ``tile`` is a pair, ``overlap`` an int, ``normalization`` a
        :class:`~sciconv.preprocess.NormSpec` or None.

    Raises
    ------
    InferenceError
        A channel count the model does not take, a tile that is not a multiple of the model's
        divisor (or below it, or not the size of a fixed-size model), an overlap that leaves no
        stride, an unknown ``blend``/``pad_mode``/``tta``/``normalize``.

    Examples
    --------
    >>> import keras
    >>> from sciconv.inference import resolve_settings
    >>> inputs = keras.Input((None, None, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same")(inputs))
    >>> settings = resolve_settings(model, (300, 500))
    >>> settings.tile, settings.overlap, settings.normalization.method
    ((300, 500), 2, 'percentile')
    """
    model = validate_model(model)
    meta = get_metadata(model)
    shape = tuple(int(s) for s in shape)
    h, w, c = shape if len(shape) == 3 else (*shape, 1)
    channels = model_channels(model) or meta.get("input_channels")
    if channels is not None and int(channels) != c:
        fix = (
            "select or stack channels to match (image[..., k] for channel k; sciconv predict "
            "--channel K)"
        )
        if c == 1 and int(channels) == 3:  # a grey image for a model trained on R = G = B
            fix = (
                "repeat a grey image to R, G, B (np.repeat(image[..., None], 3, axis=-1)), or "
                "train the model with an input transform that does it for every image, "
                "input_transform={'to_rgb': True} (YAML: dataset.input_transform), as the "
                "pretrained nuclei model does"
            )
        fix = channels_first_hint(shape) or fix
        raise InferenceError(
            f"image has {c} channel(s) (shape {shape}) but model {model.name!r} expects "
            f"{channels}; {fix}",
            path=path,
        )
    blend = look_up_option(blend, BLEND_MODES, name="blend", error=InferenceError)
    pad_mode = look_up_option(pad_mode, PAD_MODES, name="pad_mode", error=InferenceError)
    tta = tta_mode(tta)
    batch_size = check_int(batch_size, name="batch_size", minimum=1, error=InferenceError)
    memory_budget = check_int(memory_budget, name="memory_budget", minimum=1, error=InferenceError)
    divisor = model_divisor(meta)
    fixed = model_fixed_hw(model)
    precision = look_up_option(precision, PRECISIONS, name="precision", error=InferenceError)
    r = None
    if isinstance(overlap, str):
        look_up_option(overlap, ("auto",), name="overlap", error=InferenceError)
        r = max(receptive_field(model))
        overlap = round_up(2 * r, divisor) if r else 0
    else:
        overlap = check_int(overlap, name="overlap", minimum=0, error=InferenceError)
    spec = preprocess.resolve_normalization(
        normalize, recorded=meta.get("normalization"), error=InferenceError
    )
    auto = isinstance(tile, str)
    if auto:
        look_up_option(tile, ("auto",), name="tile", error=InferenceError)
        max_pixels = memory_budget / bytes_per_pixel(model)
        tiles = fixed or auto_tile((h, w), overlap=overlap, divisor=divisor, max_pixels=max_pixels)
    else:
        tiles = _explicit_tile(tile, model, fixed, divisor)
        if not fixed:  # never tile beyond what the image needs
            tiles = fit_tile(tiles, (h, w), divisor)

    def most_overlap(t: int) -> int:  # that leaves a tile of side t a stride of the divisor
        return max(0, (t - divisor) // divisor * divisor)

    if fixed and r is not None:  # auto overlap, fixed tiles: leave them a stride (QA: none was
        # left for a 48 x 64 U-Net, and the errors sent the user round in a circle)
        overlap = min([overlap, *(most_overlap(t) for t, n in zip(tiles, (h, w)) if n > t)])
    for t, n in zip(tiles, (h, w)):
        if n > t and t - overlap < divisor:
            fix = (
                f"the model takes tiles of {fixed[0]} x {fixed[1]} only: use overlap <= "
                f"{most_overlap(t)}"
                if fixed
                else f"use a tile of at least {round_up(overlap + divisor, divisor)} pixels or "
                "a smaller overlap"
            )
            raise InferenceError(
                f"overlap={overlap} leaves no stride in tile {t}: tiles must exceed the overlap "
                f"by at least the model's divisor {divisor}; {fix}"
            )
    if auto:  # a big auto tile must not blow the budget through the batch
        per_image = bytes_per_pixel(model) * tiles[0] * tiles[1]
        batch_size = max(1, min(batch_size, int(memory_budget // per_image)))
    margin = 0
    if blend != "none" and any(n > t for t, n in zip(tiles, (h, w))):  # tiles are blended
        # measured quietly: stitching with too little overlap warns in predict_tiled
        r = max(measure_receptive_field(model)[0]) if r is None else r
        margin = min(r, overlap // 2)
    return PredictionSettings(
        tile=(int(tiles[0]), int(tiles[1])),
        overlap=overlap,
        batch_size=batch_size,
        blend=blend,
        pad_mode=pad_mode,
        tta=tta,
        normalization=spec,
        divisor=divisor,
        fixed_size=fixed is not None,
        channels=c,
        outputs=output_channels(model),
        margin=margin,
        precision=choose_precision(model, precision, tile=tiles, channels=c),
    )


def check_overlap(model, settings: PredictionSettings, hw, *, stacklevel: int) -> None:
    """Warn when tiles are stitched with less overlap than the receptive field needs."""
    if all(n <= t for n, t in zip(hw, settings.tile)):
        return  # a single tile: nothing is stitched
    r = max(receptive_field(model))
    if settings.overlap < 2 * r:
        fixed = model_fixed_hw(model)
        fix = (
            f"the model's fixed {fixed[0]} x {fixed[1]} tiles allow no more; a model built for "
            "any size ((None, None, C) inputs) tiles without seams"
            if fixed
            else f"pass overlap>={2 * r} (or overlap='auto')"
        )
        warnings.warn(
            f"overlap={settings.overlap} is below twice the receptive-field half-width of model "
            f"{model.name!r} ({r} px): tile seams may differ from a whole-image call; {fix}",
            SciconvWarning,
            stacklevel=stacklevel + 1,
        )
