"""Movies and Z-stacks segmented plane by plane with one size decision: :func:`predict_stack`.

``sciconv predict`` and the napari widget both segment a stack through it, so they give the
same labels for the same movie (QA 56: the widget decided the object size plane by plane, the
command line once per stack, and a sparse frame came out differently, silently).

Examples
--------
>>> import numpy as np, keras
>>> from sciconv.inference import predict_stack
>>> inputs = keras.Input((None, None, 1))
>>> model = keras.Model(inputs, keras.layers.Conv2D(2, 1, activation="softmax")(inputs))
>>> predict_stack(model, np.zeros((2, 16, 16)), axes="T", progress=False).shape
(2, 16, 16)
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sciconv._warnings import caught
from sciconv.errors import ConfigError, InferenceError, SciconvError, SciconvWarning
from sciconv.inference._decisions import decisions, merge_decisions, note_decision, trial
from sciconv.inference._instance_args import zoom_factor
from sciconv.inference._instances import auto_size_again, auto_size_decides, predict_instances
from sciconv.models import get_metadata

__all__ = ["STACK_AXES", "StackPlane", "predict_stack"]

#: The axes a stack's planes run along: time points, depth planes (:func:`sciconv.io.plane_axes`).
STACK_AXES = "TZ"

#: The products a stack's planes give, and their dtypes (``out=``'s keys).
_DTYPES = {"labels": np.int32, "prob": np.float32, "std": np.float32, "bad": np.bool_}


@dataclasses.dataclass(frozen=True)
class StackPlane:
    """One plane of a stack as :func:`predict_stack` segmented it: what its ``on_plane`` gets.

    Attributes
    ----------
    index : int
        The plane's number in file order (0 to N - 1).
    position : tuple of int
        Its index along each stack axis (``(t,)``, ``(t, z)``).
    name : str
        How warnings and errors name it: ``"T=3"``, ``"T=0, Z=2"`` (``"3"`` when the axes are
        unknown).
    image : GridImage or ndarray
        The plane as segmented (``channel`` picked): ``(H, W)`` or ``(H, W, C)``.
    labels : ndarray of int32, shape (H, W)
    prob : ndarray of float32, shape (H, W, K), or None
        With ``return_prob`` (or ``uncertainty``).
    std : ndarray of float32, or None
        With ``uncertainty``.
    bad : ndarray of bool, shape (H, W)
        Pixels with no data (NaN, or masked, in any channel).
    decisions : dict
        What the automatic settings decided for it (:func:`~sciconv.inference.decisions`).
    empty : bool
        True for a plane with no finite pixel: labels 0, probabilities NaN, ``bad`` all True.

    Examples
    --------
    >>> import numpy as np
    >>> from sciconv.inference import StackPlane
    >>> plane = StackPlane(0, (0,), "T=0", np.zeros((2, 2)), np.zeros((2, 2), np.int32),
    ...                    None, None, np.zeros((2, 2), bool), {}, False)
    >>> plane.name, int(plane.labels.max())
    ('T=0', 0)
    """

    index: int
    position: tuple[int, ...]
    name: str
    image: Any
    labels: np.ndarray
    prob: np.ndarray | None
    std: np.ndarray | None
    bad: np.ndarray
    decisions: dict
    empty: bool


def predict_stack(
    model,
    stack,
    *,
    axes: str | None = None,
    sizes: tuple[int, ...] | None = None,
    channel: int | None = None,
    scale: float | str | None = "auto",
    object_size: float | Any | str | None = "auto",
    return_prob: bool = False,
    uncertainty: str | None = None,
    on_plane: Callable[[StackPlane], Any] | None = None,
    out: Mapping[str, Any] | Callable[[str, tuple, Any], Any] | None = None,
    progress: bool = True,
    **kwargs,
):
    """Instance labels of every plane of a movie or Z-stack, with one size decision for all.

    Each plane is segmented as :func:`predict_instances` segments a 2-D image, with the same
    keywords, except that ``object_size="auto"`` decides **once for the whole stack**: a first
    pass at the pixel scale's factor, then :func:`auto_size_again` on the objects of all
    planes pooled (one warning), and, when it resamples, a second pass of every plane at that
    factor. A sparse frame is then segmented at the stack's scale, not at one of its own.

    Each plane's :class:`~sciconv.errors.SciconvWarning` is said again naming the plane
    (``"plane T=3: ..."``), and a plane's error is raised naming it. A plane with no finite
    pixel (all NaN or all masked: a dropped frame, registration padding) is not segmented: its
    labels are 0, its probabilities NaN, its ``bad`` mask all True, and one warning names every
    such plane; the other planes go on.

    Parameters
    ----------
    model : keras.Model
        A segmenter, as for :func:`predict_instances`.
    stack : GridImage or array_like
        A :class:`~sciconv.io.GridImage` read with ``io.read(path, stack=True)`` (planes
        ``(N, H, W, C)``, its mask and pixel scale kept per plane), or an array
        ``(*sizes, H, W)`` or ``(*sizes, H, W, C)``.
    axes : str, optional
        The stack axes, from ``"T"`` and ``"Z"`` in file order (:func:`sciconv.io.plane_axes`);
        default: a GridImage's own (its ``meta["axes"]``). For an array, ``axes`` or ``sizes``
        says how many leading axes are planes.
    sizes : tuple of int, optional
        The number of planes along each axis; default: an array's leading dimensions, or a
        GridImage's from its metadata (``(N,)`` for one axis).
    channel : int, optional
        Segment this channel of every plane (as :meth:`sciconv.io.GridImage.channel`).
    scale, object_size, return_prob, uncertainty
        As for :func:`predict_instances`, for every plane (``object_size="auto"`` once per
        stack, see above).
    on_plane : callable, optional
        Called once for every plane, in order, with its :class:`StackPlane` when its result is
        final (after the stack's size decision): measure or store the plane there. Its
        SciconvWarnings and errors name the plane as the segmentation's do.
    out : mapping or callable, optional
        Where the planes' products go, so a long movie need not sit in memory: a mapping of
        arrays to fill in place (``"labels"``, ``"prob"``, ``"std"``, ``"bad"``; each
        ``(N, H, W[, K])`` or ``(*sizes, H, W[, K])``; memory maps, zarr arrays), or a callable
        ``out(key, shape, dtype)`` returning such an array (e.g. wrapping
        :func:`numpy.lib.format.open_memmap`), called once per product, ``"bad"`` included.
        Default: numpy arrays in memory.
    progress : bool
        A progress bar over the planes.
    **kwargs
        Passed to :func:`predict_instances` for every plane: ``tile``, ``overlap``,
        ``batch_size``, ``normalize``, ``blend``, ``tta``, ``precision``, ``brightness``,
        ``denoise``, and post-processing overrides (``threshold``, ``min_size``, ...).

    Returns
    -------
    ndarray of int32, shape sizes + (H, W)
        Labels numbered per plane (not linked over time or depth); ``(labels, prob)`` with
        ``return_prob``, ``(labels, prob, std)`` with ``uncertainty``, as
        :func:`predict_instances` returns them. The arrays ``out`` gave, when it gave them.
        The decisions (the stack's one ``scale``; others merged over planes) go to an open
        :func:`~sciconv.inference.decisions` log.

    Raises
    ------
    ConfigError
        ``axes``, ``sizes``, ``channel`` or ``out`` that do not fit the stack.
    InferenceError
        No plane has a finite pixel; anything :func:`predict_instances` raises, naming the plane.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from sciconv.inference import predict_stack
    >>> inputs = keras.Input((None, None, 1))
    >>> logits = keras.layers.Conv2D(2, 1, kernel_initializer=keras.initializers.Constant(
    ...     [[[[-1.0, 1.0]]]]))(inputs)
    >>> model = keras.Model(inputs, keras.layers.Softmax()(logits))
    >>> movie = np.zeros((3, 32, 32), "float32"); movie[:, 4:12, 4:12] = 5
    >>> movie[1] = np.nan  # a dropped frame
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as said:
    ...     warnings.simplefilter("always")
    ...     labels, prob = predict_stack(model, movie, axes="T", normalize=None,
    ...                                  return_prob=True, progress=False)
    >>> [int(m) for m in labels.max(axis=(1, 2))], bool(np.isnan(prob[1]).all())
    ([1, 0, 1], True)
    >>> str(said[0].message).split(":")[0]
    'plane T=1'
    """
    planes = _Planes.of(stack, axes, sizes, channel)
    keys = ["labels"] + ["prob"] * (return_prob or uncertainty is not None)
    keys += ["std"] * (uncertainty is not None)
    if callable(out) or (isinstance(out, Mapping) and "bad" in out):
        keys.append("bad")
    store = _Store(out, planes, keys)
    run = dict(kwargs, return_prob=return_prob, uncertainty=uncertainty)
    auto = auto_size_decides(object_size, scale)
    records = _segment(model, planes, store, dict(run, scale=scale, object_size=None if auto
                                                   else object_size), progress)  # fmt: skip
    again = _stack_size_factor(model, planes, store, scale, records) if auto else None
    if again is not None:
        records = _segment(model, planes, store, dict(run, scale=again, object_size=None), progress)
    decided = merge_decisions([r.decided for r in records if not r.empty])
    if again is not None:  # the stack's scale: decided once for all its planes
        decided["scale"] = f"{again:.6g} (auto: all planes)"
        for r in records:
            if not r.empty:
                r.decided["scale"] = decided["scale"]
    for key, value in decided.items():
        note_decision(key, value)
    _warn_empty(planes, records)
    for i, record in enumerate(records):
        _say_again(record.heard, planes.name(i))
        if on_plane is not None:
            _call(on_plane, planes, store, i, record)
    found = tuple(store.result(key) for key in keys if key != "bad")
    return found[0] if len(found) == 1 else found


@dataclasses.dataclass
class _Record:
    """What one plane's segmentation said (its warnings) and decided; ``empty``: not segmented."""

    empty: bool
    heard: list = dataclasses.field(default_factory=list)
    decided: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class _Planes:
    """A stack's planes ``(N, H, W[, C])``, their names, their mask, the channel to segment."""

    data: Any
    mask: Any
    like: Any  # the GridImage each plane is made from (None for an array)
    axes: str
    sizes: tuple[int, ...]
    channel: int | None
    path: Any

    @classmethod
    def of(cls, stack, axes, sizes, channel) -> _Planes:
        from sciconv.io import GridImage

        path = getattr(stack, "path", None)
        if axes is not None and (
            not isinstance(axes, str)
            or not axes
            or set(axes) - set(STACK_AXES)
            or len(set(axes)) != len(axes)
        ):
            raise ConfigError(
                f"axes must be stack axes from {STACK_AXES!r} ('T', 'Z', 'TZ', 'ZT'); got {axes!r}",
                path=path,
            )
        if sizes is not None:
            sizes = tuple(sizes)
            if not sizes or not all(isinstance(s, (int, np.integer)) and s > 0 for s in sizes):
                raise ConfigError(f"sizes must be positive plane counts; got {sizes!r}", path=path)
            sizes = tuple(int(s) for s in sizes)
        if isinstance(stack, GridImage):
            data, mask, like = np.asarray(stack.data), stack.mask, stack
            if data.ndim != 4:
                raise ConfigError(
                    f"a GridImage stack holds planes (N, H, W, C); got shape {data.shape} "
                    "(read it with io.read(path, stack=True))",
                    path=path,
                )
            n = len(data)
            known = _meta_axes(stack.meta, n)
            if axes is None and sizes is None:
                axes, sizes = known
            elif sizes is None:
                sizes = known[1] if axes == known[0] else (n,) if len(axes) == 1 else None
        else:
            array, mask, like = np.asarray(stack), None, None
            lead = len(axes) if axes is not None else len(sizes) if sizes is not None else None
            if lead is None or array.ndim - lead not in (2, 3):
                raise ConfigError(
                    f"an array stack is (*sizes, H, W) or (*sizes, H, W, C): give axes= ('T', "
                    f"'Z', 'TZ') or sizes= for its leading plane axes; got shape {array.shape}, "
                    f"axes={axes!r}, sizes={sizes!r}",
                    path=path,
                )
            sizes = tuple(array.shape[:lead]) if sizes is None else sizes
            data = array.reshape(-1, *array.shape[lead:])
            n = len(data)
        if sizes is None or math.prod(sizes) != n or (axes and len(axes) != len(sizes)):
            raise ConfigError(
                f"axes={axes!r} and sizes={sizes!r} do not fit the stack's {n} planes", path=path
            )
        channels = data.shape[3] if data.ndim == 4 else 1
        if channel is not None and (
            isinstance(channel, bool)
            or not isinstance(channel, (int, np.integer))
            or not 0 <= channel < channels
        ):
            raise ConfigError(
                f"channel must be an int from 0 to {channels - 1} (the stack's planes have "
                f"{channels} channel(s)); got {channel!r}",
                path=path,
            )
        return cls(data, mask, like, axes or "", sizes, channel, path)

    def __len__(self) -> int:
        return len(self.data)

    def position(self, i: int) -> tuple[int, ...]:
        return tuple(int(j) for j in np.unravel_index(i, self.sizes))

    def name(self, i: int) -> str:
        position = self.position(i)
        if self.axes:
            return ", ".join(f"{a}={j}" for a, j in zip(self.axes, position))
        return ", ".join(str(j) for j in position)

    def image(self, i: int):
        """Plane ``i`` as segmented: a GridImage (its mask and pixel scale) or an array."""
        if self.like is None:
            plane = self.data[i]
            if self.channel is not None and plane.ndim == 3:
                return plane[..., self.channel : self.channel + 1]
            return plane
        mask = None if self.mask is None else self.mask[i]
        img = dataclasses.replace(self.like, data=self.data[i], mask=mask)
        return img if self.channel is None else img.channel(self.channel)

    def error(self, i: int, exc: SciconvError) -> SciconvError:
        """``exc`` naming plane ``i`` (and the stack's file)."""
        path = self.path if self.path is not None else exc.path
        return type(exc)(f"plane {self.name(i)}: {exc.message}", path=path)


def _meta_axes(meta: Mapping, n: int) -> tuple[str, tuple[int, ...]]:
    """The T/Z axes and sizes a stack's metadata record (``meta["axes"]``, ``meta["shape"]``),
    when they account for its ``n`` planes; else no names, ``(n,)``."""
    axes, shape = str(meta.get("axes") or ""), tuple(meta.get("shape") or ())
    if len(axes) == len(shape):
        found = [(a, int(s)) for a, s in zip(axes, shape) if a in STACK_AXES]
        if found and math.prod(s for _, s in found) == n:
            return "".join(a for a, _ in found), tuple(s for _, s in found)
    return "", (n,)


def _bad(image) -> tuple[np.ndarray, bool]:
    """A plane's pixels with no data ``(H, W)`` (NaN or masked in any channel), and whether it
    has no finite unmasked pixel at all."""
    data = np.asarray(getattr(image, "data", image))
    missing = ~np.isfinite(data)
    mask = getattr(image, "mask", None)
    if mask is not None:
        mask = np.asarray(mask, bool)
        missing = missing | (mask[..., None] if mask.ndim < missing.ndim else mask)
    empty = bool(missing.all())
    return (missing.any(axis=-1) if missing.ndim == 3 else missing), empty


class _Store:
    """The planes' products ``(N, H, W[, K])``, made at the first plane that gives them (in
    memory, or where ``out`` says)."""

    def __init__(self, out, planes: _Planes, keys: list[str]):
        if out is not None and not callable(out) and not isinstance(out, Mapping):
            raise ConfigError(f"out must be a mapping of arrays or a callable; got {out!r}")
        if isinstance(out, Mapping) and set(out) - set(_DTYPES):
            raise ConfigError(
                f"out's keys are {sorted(_DTYPES)}; got {sorted(out)}", path=planes.path
            )
        self.out, self.planes, self.keys = out, planes, keys
        self.arrays: dict[str, Any] = {}

    def put(self, key: str, i: int, value) -> None:
        value = np.asarray(value)
        if key not in self.arrays:
            shape = (len(self.planes), *value.shape)
            self.arrays[key] = self._allocate(key, shape)
        self.arrays[key][i] = value

    def _allocate(self, key: str, shape: tuple):
        dtype = _DTYPES[key]
        if callable(self.out):
            return self.out(key, shape, dtype)
        given = self.out.get(key) if isinstance(self.out, Mapping) else None
        if given is None:
            return np.zeros(shape, dtype)
        if int(np.prod(np.shape(given))) != math.prod(shape):
            raise ConfigError(
                f"out[{key!r}] has shape {np.shape(given)}; the stack's {key} are {shape}",
                path=self.planes.path,
            )
        return given.reshape(shape) if np.shape(given) != shape else given

    def fill_empty(self, i: int) -> None:
        """Plane ``i`` with no data: labels 0, maps NaN, all bad."""
        for key, array in self.arrays.items():
            array[i] = {"labels": 0, "bad": True}.get(key, np.nan)

    def plane(self, key: str, i: int):
        return None if key not in self.arrays else self.arrays[key][i]

    def result(self, key: str):
        array = self.arrays[key]
        return array.reshape(*self.planes.sizes, *array.shape[1:])


def _segment(model, planes: _Planes, store: _Store, run: dict, progress: bool) -> list[_Record]:
    """One pass over the planes (``run``: the keywords of :func:`predict_instances`); a plane's
    warnings and decisions kept, said and recorded by the caller once the pass is final."""
    from sciconv._progress import progress_bar

    records: list[_Record] = []
    bar = progress_bar(
        len(planes), desc="predict", unit="plane", enabled=progress and len(planes) > 1
    )
    try:
        for i in range(len(planes)):
            image = planes.image(i)
            bad, empty = _bad(image)
            if empty:  # a dropped frame: nothing to normalize, nothing to find
                records.append(_Record(empty=True))
            else:
                records.append(_one_plane(model, planes, store, run, i, image, bad))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if "labels" not in store.arrays:
        raise InferenceError(
            f"no plane of the stack's {len(planes)} has a finite pixel (all NaN or masked): "
            "nothing to segment",
            path=planes.path,
        )
    for i, record in enumerate(records):
        if record.empty:
            store.fill_empty(i)
    return records


def _one_plane(model, planes: _Planes, store: _Store, run: dict, i: int, image, bad) -> _Record:
    """Plane ``i`` segmented by :func:`predict_instances`, its products stored."""
    try:
        # each plane decides on its own (its second pass, its flip): its log, not the caller's
        with caught("always", record=True) as heard, trial(), decisions() as decided:
            found = predict_instances(model, image, progress=False, **run)
    except SciconvError as exc:  # which plane
        raise planes.error(i, exc) from exc
    if run["uncertainty"] is not None:
        labels, prob, std = found
    else:
        (labels, prob), std = (found if run["return_prob"] else (found, None)), None
    store.put("labels", i, labels)
    for key, value in (("prob", prob), ("std", std)):
        if value is not None and key in store.keys:
            store.put(key, i, value)
    if "bad" in store.keys:
        store.put("bad", i, bad)
    return _Record(empty=False, heard=list(heard), decided=dict(decided))


def _stack_size_factor(model, planes: _Planes, store: _Store, scale, records) -> float | None:
    """``object_size="auto"`` for a stack: the factor to segment every plane again at, from the
    objects of all planes of the first pass (:func:`auto_size_again`, which warns once); None
    to keep the first pass."""
    first_plane = next(i for i, r in enumerate(records) if not r.empty)
    with caught("ignore", SciconvWarning):  # a missing pixel scale was said for every plane
        first = zoom_factor(model, planes.image(first_plane), scale, None)
    labels = store.arrays["labels"]
    name = "the stack" if planes.path is None else Path(planes.path).name
    return auto_size_again(
        get_metadata(model),
        labels,
        first,
        found=f"the objects of {name}, all its {len(labels)} planes,",
        stacklevel=4,
    )


def _warn_empty(planes: _Planes, records: list[_Record]) -> None:
    """One warning naming every plane with no finite pixel."""
    empty = [planes.name(i) for i, r in enumerate(records) if r.empty]
    if not empty:
        return
    listed = "; ".join(empty[:20]) + (" ..." if len(empty) > 20 else "")
    warnings.warn(
        f"plane{'s' if len(empty) > 1 else ''} {listed}: no finite pixel (all NaN or masked), "
        f"so labels 0, probabilities NaN, no objects ({len(empty)} of {len(planes)} planes; "
        "the others are segmented)",
        SciconvWarning,
        stacklevel=3,
    )


def _say_again(heard, name: str) -> None:
    """A plane's warnings said again, each SciconvWarning naming the plane."""
    for said in heard:
        text = (
            f"plane {name}: {said.message}"
            if issubclass(said.category, SciconvWarning)
            else said.message
        )
        warnings.warn_explicit(text, said.category, said.filename, said.lineno)


def _call(on_plane, planes: _Planes, store: _Store, i: int, record: _Record) -> None:
    """``on_plane`` with plane ``i``'s final result; its warnings and errors naming the plane."""
    image = planes.image(i)
    bad = store.plane("bad", i)
    plane = StackPlane(
        index=i,
        position=planes.position(i),
        name=planes.name(i),
        image=image,
        labels=np.asarray(store.plane("labels", i)),  # a memory map's plane as an array
        prob=None if "prob" not in store.arrays else np.asarray(store.plane("prob", i)),
        std=None if "std" not in store.arrays else np.asarray(store.plane("std", i)),
        bad=np.asarray(bad) if bad is not None else _bad(image)[0],
        decisions=dict(record.decided),
        empty=record.empty,
    )
    try:
        with caught("always", record=True) as heard:
            on_plane(plane)
    except SciconvError as exc:
        raise planes.error(i, exc) from exc
    _say_again(heard, planes.name(i))
