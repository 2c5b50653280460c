"""The decisions of the automatic settings, recorded where they are made.

``scale="auto"`` / ``object_size="auto"`` (the resampling factor), ``brightness="auto"`` and
``denoise="auto"`` (a second pass) and a model's ``input_transform`` (the flip, white balance,
averaging, no-data pixels) decide from the image; their warnings say so, and a
:func:`decisions` log keeps them for the products (``write_products(decisions=...)``, next to
the setting as asked: ``scale = '0.18526 (auto: objects 97.7 px)'``).

The log is a :class:`contextvars.ContextVar`: thread-safe, one per thread or task, nothing
recorded when none is active. Block-wise runs decide once for the whole image and record that.

Examples
--------
>>> with decisions() as decided:
...     note_decision("scale", "0.5 (auto: objects 36 px)")
>>> decided
{'scale': '0.5 (auto: objects 36 px)'}
>>> note_decision("scale", "1 (auto)")  # no log: nothing recorded
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping, Sequence

__all__ = [
    "decisions",
    "merge_decisions",
    "note_decision",
    "note_scale",
    "note_second_pass",
    "note_settled",
    "note_transform",
    "settle_second_pass",
    "trial",
]

_LOG: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "sciconv_decisions", default=None
)


@contextlib.contextmanager
def decisions() -> Iterator[dict]:
    """Record the automatic decisions of the predictions run inside the block.

    :func:`~sciconv.inference.predict_instances`, block-wise runs and the model's input
    transform fill the dict where they decide: ``scale`` (the resampling factor
    ``scale``/``object_size="auto"`` chose), ``denoise`` and ``brightness`` (the second pass, or
    ``'none (auto)'``) and ``input_transform`` (flipped or not, about which value; white-balance
    gains; R, G, B averaged; black padding or transparent pixels as no data) and
    ``nodata_frame`` (a rectangular NaN frame cropped before prediction). Each value is
    text ending in ``(auto)`` or ``(auto: why)``. A log opened inside another passes its
    entries on to it on exit. Thread-safe (a context variable: each thread and asyncio task
    has its own); without an open log nothing is recorded.

    Yields
    ------
    dict
        The decisions, filled while the block runs; give it to
        :func:`sciconv.postprocess.write_products` (``decisions=``) to record them next to the
        settings.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from sciconv.inference import decisions, predict_instances
    >>> inputs = keras.Input((None, None, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(2, 1, activation="softmax")(inputs))
    >>> with decisions() as decided:
    ...     labels = predict_instances(model, np.zeros((32, 32)), progress=False)
    >>> decided["scale"]
    '1 (auto)'
    """
    log: dict = {}
    outer = _LOG.get()
    token = _LOG.set(log)
    try:
        yield log
    finally:
        _LOG.reset(token)
        if outer is not None:
            outer.update(log)


@contextlib.contextmanager
def trial() -> Iterator[None]:
    """A block whose decisions are not kept (a trial on a crop: its own resampling, its own
    flip), whether or not a log is open.

    Examples
    --------
    >>> with decisions() as decided:
    ...     with trial():
    ...         note_decision("scale", "2 (auto)")
    >>> decided
    {}
    """
    token = _LOG.set(None)
    try:
        yield
    finally:
        _LOG.reset(token)


def note_decision(key: str, value: str, *, first: bool = False) -> None:
    """Record ``key = value`` in the open :func:`decisions` log (none open: nothing);
    ``first``: keep an earlier value of ``key`` (the whole image's, not a crop's).

    Examples
    --------
    >>> with decisions() as decided:
    ...     note_decision("denoise", "none (auto)")
    ...     note_decision("denoise", "gaussian 2 px (auto)", first=True)
    >>> decided["denoise"]
    'none (auto)'
    """
    log = _LOG.get()
    if log is None:
        return
    if first:
        log.setdefault(key, value)
    else:
        log[key] = value


def note_scale(factor: float, *, first: float, training=None, why: str | None = None) -> None:
    """The resampling factor ``scale="auto"`` settled on: ``factor``, from ``first`` (the pixel
    scales', or a given ``object_size``'s: ``why``); ``training``: the model's training object
    size, which gives the size of the objects that moved the factor.

    Examples
    --------
    >>> with decisions() as decided:
    ...     note_scale(0.18526, first=1.0, training=18.1)
    >>> decided["scale"]
    '0.18526 (auto: objects 97.7 px)'
    """
    if factor != first and training:
        reason = f"auto: objects {float(training) / factor:.3g} px"
    elif why is not None and factor != 1.0:
        reason = f"auto: {why}"
    else:
        reason = "auto"
    note_decision("scale", f"{factor:.5g} ({reason})")


def note_settled(used: float, first: float, scale, object_size, meta, brightness, denoise) -> None:
    """After a prediction: the factor ``scale="auto"`` resampled by (``used``; ``first``, the
    first pass's: the pixel scales' or a given ``object_size``'s) and ``'none (auto)'`` for the
    second-pass checks that made none (:func:`settle_second_pass`).

    Examples
    --------
    >>> with decisions() as decided:
    ...     note_settled(0.5, 1.0, scale="auto", object_size="auto", meta={"object_size": 18},
    ...                  brightness=None, denoise="auto")
    >>> decided
    {'scale': '0.5 (auto: objects 36 px)', 'denoise': 'none (auto)'}
    """
    if isinstance(scale, str) and scale == "auto":
        given = object_size is not None and not isinstance(object_size, str)
        training = (meta or {}).get("object_size")
        note_scale(
            used, first=first, training=training, why="object_size" if given else "pixel scales"
        )
    settle_second_pass(brightness, denoise)


def note_second_pass(check, stats, second) -> None:
    """What ``brightness`` / ``denoise`` decided (a second pass, ``second``; the
    ``SecondPassCheck`` ``check`` and the first pass's ``ObjectStats`` ``stats`` say why).

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.inference._second_pass import ObjectStats, SecondPassCheck
    >>> from sciconv.preprocess import NormSpec
    >>> check = SecondPassCheck(NormSpec("percentile"), (0.5, 0.2), None)
    >>> stats = ObjectStats(np.full(40, 0.05), np.zeros(0, np.float32))
    >>> second = type("Second", (), {"noisy": False, "share": 0.1})()
    >>> with decisions() as decided:
    ...     note_second_pass(check, stats, second)
    >>> decided["brightness"]
    'top at 0.1 of the stretch (auto: median object at 0.050 < 0.2)'
    """
    from sciconv.inference._second_pass import DENOISE_SIGMA

    if second.noisy:
        why = check.why_noisy(stats)
        if why == "objects":
            because = f"median object SNR {stats.snr:.3g} < {check.snr_of[1]:g}"
        elif why == "pixels":
            because = (
                f"{stats.count} objects, pixel noise {stats.pixel_noise:.2g} > "
                f"{check.noise_limit:.2g}"
            )
        else:
            because = f"posterised, {getattr(stats.levels, 'size', '?')} pixel values"
        note_decision("denoise", f"gaussian {DENOISE_SIGMA:g} px (auto: {because})")
    if second.share is not None:
        note_decision(
            "brightness",
            f"top at {second.share:.3g} of the stretch (auto: median object at "
            f"{stats.level:.3f} < {check.level_of[1]:g})",
        )


def settle_second_pass(brightness, denoise) -> None:
    """``'none (auto)'`` for the checks that asked (``"auto"``) and made no second pass.

    Examples
    --------
    >>> with decisions() as decided:
    ...     settle_second_pass("auto", None)
    >>> decided
    {'brightness': 'none (auto)'}
    """
    for key, value in (("brightness", brightness), ("denoise", denoise)):
        if isinstance(value, str) and value == "auto":
            note_decision(key, "none (auto)", first=True)


def note_transform(transform, spec: Mapping):
    """What a model's input transform decided (``transform``, an ``InputTransform`` resolved
    from ``spec``), the whole image's (a crop's later one is not kept); ``transform`` back.

    Examples
    --------
    >>> from sciconv.preprocess._transform import InputTransform
    >>> t = InputTransform(to_gray=False, to_rgb=True, flip_at=231.0, gains=(1.0, 1.02, 1.1))
    >>> with decisions() as decided:
    ...     t = note_transform(t, {"to_rgb": True, "invert": "auto"})
    >>> decided["input_transform"]
    'flipped about 231, white balance gains 1/1.02/1.1 (auto)'
    """
    if transform is None or _LOG.get() is None:
        return transform
    parts = []
    if transform.flip_at is not None:
        parts.append(f"flipped about {transform.flip_at:.6g}")
    elif spec.get("invert") == "auto":
        parts.append("not flipped")
    if transform.gains is not None:
        parts.append("white balance gains " + "/".join(f"{g:.3g}" for g in transform.gains))
    if transform.gray:
        parts.append("R, G, B averaged")
    if transform.black_padding:
        parts.append("black padding as no data")
    if transform.transparent:
        parts.append("transparent pixels as no data")
    if transform.saturated_at is not None:
        parts.append(f"saturated plateaus restored above {transform.saturated_at:.6g}")
    if parts:
        note_decision("input_transform", f"{', '.join(parts)} (auto)", first=True)
    return transform


def merge_decisions(logs: Sequence[Mapping], what: str = "planes") -> dict:
    """One log of several (a stack's planes, each decided on its own): a key's value when every
    log agrees, else each value with its count (``'by plane: 3 x none (auto), 2 x ...'``).

    Examples
    --------
    >>> merge_decisions([{"denoise": "none (auto)"}, {"denoise": "none (auto)"}])
    {'denoise': 'none (auto)'}
    >>> merge_decisions([{"denoise": "a (auto)"}, {"denoise": "b (auto)"}, {}])["denoise"]
    'by plane: 1 x a (auto), 1 x b (auto), 1 x not decided'
    """
    keys = list(dict.fromkeys(k for log in logs for k in log))
    merged = {}
    for key in keys:
        values = [log.get(key, "not decided") for log in logs]
        counts = dict.fromkeys(values, 0)
        for value in values:
            counts[value] += 1
        if len(counts) == 1:
            merged[key] = values[0]
        else:
            listed = ", ".join(f"{n} x {v}" for v, n in counts.items())
            merged[key] = f"by {what[:-1] if what.endswith('s') else what}: {listed}"
    return merged
