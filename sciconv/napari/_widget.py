"""The napari widget: segment nuclei with the pretrained model and add a Labels layer.

:func:`segment_nuclei` is the whole computation, a pure function (no Qt) returning a napari layer
data tuple; :func:`nuclei_widget` wraps it in a magicgui form (image layer, scale, probability
threshold, tile size) that napari docks. magicgui and napari are imported only when the widget is
built, so this module imports without them.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from sciconv.errors import ConfigError

if TYPE_CHECKING:  # TensorFlow loads only when a model runs, not when napari lists plugins
    import keras

__all__ = ["nuclei_model", "nuclei_widget", "segment_nuclei"]

LayerData = tuple[Any, dict[str, Any], str]


@functools.lru_cache(maxsize=1)
def nuclei_model() -> keras.Model:
    """The pretrained nuclei segmenter (:func:`sciconv.models.pretrained`), loaded once.

    Returns
    -------
    keras.Model

    Examples
    --------
    >>> from sciconv.napari import nuclei_model
    >>> nuclei_model() is nuclei_model()
    True
    """
    from sciconv.models import pretrained

    return pretrained("nuclei")


def _recorded_threshold(model: keras.Model) -> float:
    from sciconv.models import get_metadata
    from sciconv.postprocess import instance_threshold

    return instance_threshold(get_metadata(model).get("postprocess"))


def segment_nuclei(
    image: Any,
    *,
    scale: float | str = "auto",
    threshold: float | None = None,
    tile: int = 256,
    model: keras.Model | None = None,
    name: str = "nuclei",
    layer_kwargs: dict[str, Any] | None = None,
    planes: int = 0,
    axes: str | None = None,
) -> LayerData:
    """Instance labels of the nuclei in ``image`` as a napari ``(data, kwargs, "labels")`` tuple.

    Runs :func:`sciconv.inference.predict_instances` (tiled prediction with the model's recorded
    normalization and input transform, then the seeded watershed) and scores every object from
    the probabilities of that same prediction (:func:`sciconv.postprocess.object_scores`).

    Parameters
    ----------
    image : array_like
        Raw pixels ``(H, W)`` or ``(H, W, C)``, as read (the model's input transform takes grey,
        RGB and colour-saved fluorescence images as they are).
    scale : "auto" or float
        ``"auto"`` (default): as :func:`~sciconv.inference.predict_instances` and ``sciconv
        predict`` do (nuclei far larger or smaller than the model's training sizes are found
        and the image resampled to them). A number: resample by this factor before segmenting
        (``18 / nucleus diameter in pixels`` for the pretrained model; 1: as it is); the labels
        come back at the image's size.
    threshold : float, optional
        Foreground probability threshold; default: the model's recorded one.
    tile : int
        Tile size in pixels (the image is predicted in overlapping tiles of this size; a
        smaller image in one tile, ``"auto"`` in the metadata).
    model : keras.Model, optional
        A segmenter; default: :func:`nuclei_model`.
    name : str
        The layer name.
    layer_kwargs : dict, optional
        Extra layer keywords (e.g. the image layer's ``scale`` and ``translate``).
    planes : int
        The number of leading axes of a stack (1 for a movie ``(T, H, W)`` or a Z-stack, 2 for
        ``(T, Z, H, W)``): the planes are segmented by :func:`sciconv.inference.predict_stack`,
        as ``sciconv predict`` segments them (one object-size decision for the whole stack; a
        plane with no finite pixel gives labels 0 and a warning), and the labels keep those
        axes (numbered per plane). Default 0: one image.
    axes : str, optional
        The names of those axes (``"T"``, ``"Z"``, ``"TZ"``), which the planes' warnings use
        (``"plane T=3: ..."``); default: their indices only (``"plane 3: ..."``).

    Returns
    -------
    (ndarray of int32 (H, W), dict, "labels")
        ``kwargs["metadata"]`` records the settings, the object count (of every plane) and
        ``"decisions"``: what the automatic settings chose (:func:`sciconv.inference.decisions`:
        ``{"scale": "0.25 (auto: objects 72 px)", ...}``; a list, one per plane, for a stack).
        ``kwargs["features"]``: one row per object, ``label`` and ``score`` (the mean
        foreground probability over it: a ranking score, at or above ``threshold``, not the
        probability that it is a nucleus; :func:`~sciconv.postprocess.object_scores`), and
        ``index``, the label value napari looks a row up by. For a stack, ``plane`` too (the
        plane's number in ``metadata["decisions"]``' order) and ``index`` -1: the values repeat
        from plane to plane. A plane of more than
        :data:`~sciconv.inference.AUTO_BLOCK_PIXELS` pixels is segmented block by block,
        without probabilities, and has no rows.

    Raises
    ------
    ConfigError
        ``scale``, ``threshold`` or ``tile`` out of range.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from sciconv.napari import segment_nuclei
    >>> inputs = keras.Input((None, None, 1))
    >>> out = keras.layers.Conv2D(2, 1, kernel_initializer=keras.initializers.Constant(
    ...     [[[[-1.0, 1.0]]]]), activation="softmax")(inputs)
    >>> image = np.zeros((32, 32), "float32"); image[4:12, 4:12] = 1; image[20:28, 18:30] = 1
    >>> data, kwargs, kind = segment_nuclei(image, model=keras.Model(inputs, out), tile=32)
    >>> kind, int(data.max()), kwargs["metadata"]["count"]
    ('labels', 2, 2)
    >>> features = kwargs["features"]
    >>> features["label"].tolist(), [round(float(s), 2) for s in features["score"]]
    ([1, 2], [0.88, 0.88])
    """
    number, whole = (int, float, np.integer, np.floating), (int, np.integer)  # numpy's too
    fixed = isinstance(scale, number) and not isinstance(scale, bool) and 0.05 <= scale <= 20
    if scale != "auto" and not fixed:
        raise ConfigError(f"scale must be 'auto' or a number between 0.05 and 20; got {scale!r}")
    if threshold is not None and not (isinstance(threshold, number) and 0 < threshold < 1):
        raise ConfigError(f"threshold must be a probability in (0, 1); got {threshold!r}")
    if isinstance(tile, bool) or not (isinstance(tile, whole) and tile >= 32):
        raise ConfigError(f"tile must be an integer of at least 32 pixels; got {tile!r}")
    from sciconv.inference import AUTO_BLOCK_PIXELS, decisions, predict_instances, predict_stack
    from sciconv.postprocess import object_scores

    model = nuclei_model() if model is None else model
    threshold = _recorded_threshold(model) if threshold is None else float(threshold)
    arr = np.asarray(image)
    if isinstance(planes, bool) or not (isinstance(planes, whole) and 0 <= planes <= arr.ndim - 2):
        raise ConfigError(f"planes must be 0 to {arr.ndim - 2} for shape {arr.shape}; got {planes}")
    if axes is not None and (not isinstance(axes, str) or len(axes) != planes):
        raise ConfigError(f"axes must name the {planes} plane axes ('T', 'Z', 'TZ'); got {axes!r}")
    lead = arr.shape[:planes]
    stack = arr.reshape(-1, *arr.shape[planes:])
    # a plane smaller than the tile: one tile the model can take ("auto"; a tile cut to the
    # plane's side, 102 px, was refused as not a multiple of the model's divisor)
    tile = int(tile) if max(stack.shape[1:3]) >= tile else "auto"
    # the scores come from the probabilities of the same prediction (no second pass); a plane
    # too big for them whole goes block by block, as before, and gets none
    scored = stack.shape[1] * stack.shape[2] <= AUTO_BLOCK_PIXELS
    run = dict(
        tile=tile,
        scale="auto" if not fixed else None if scale == 1 else float(scale),
        threshold=threshold,
        progress=False,
        return_prob=scored,
    )
    if planes:  # a movie or Z-stack: as sciconv predict, one size decision for all its planes
        decided = [{}] * len(stack)
        scores = [None] * len(stack)

        def keep(plane):
            decided[plane.index] = plane.decisions
            if plane.prob is not None and not plane.empty:
                scores[plane.index] = object_scores(plane.labels, plane.prob, threshold=threshold)

        result = predict_stack(model, arr, axes=axes, sizes=lead, on_plane=keep, **run)
        labels = result[0] if scored else result
        found = list(labels.reshape(-1, *labels.shape[planes:]))
    else:
        with decisions() as log:  # what "auto" chose (the factor, the flip)
            result = predict_instances(model, arr, **run)
        labels, prob = result if scored else (result, None)
        found, decided = [labels], [log]
        scores = [None if prob is None else object_scores(labels, prob, threshold=threshold)]
    settings = {"scale": float(scale) if fixed else scale, "threshold": threshold, "tile": tile}
    meta = {"model": model.name, **settings, "count": sum(int(f.max()) for f in found)}
    meta["decisions"] = decided if planes else decided[0]
    kwargs = {
        "name": name,
        "metadata": meta,
        "features": _features(scores, stacked=bool(planes)),
        **(layer_kwargs or {}),
    }
    return labels, kwargs, "labels"


def _features(scores: list, *, stacked: bool) -> dict[str, np.ndarray]:
    """The Labels layer's ``features``: ``label`` and ``score`` of every object (``plane``
    first for a stack), from each plane's :func:`~sciconv.postprocess.object_scores` table
    (None: a plane segmented block by block, without probabilities: no rows).

    napari finds an object's row by the label value in the ``index`` column (the status bar
    under the cursor). A stack's labels are numbered per plane, so a value names one object in
    each plane: its ``index`` is -1, which no label has (napari then shows no feature rather
    than another plane's)."""
    rows = [(k, t) for k, t in enumerate(scores) if t is not None]
    label = np.concatenate([np.asarray(t["label"]) for _, t in rows] or [np.zeros(0, np.int64)])
    score = np.concatenate([np.asarray(t["score"]) for _, t in rows] or [np.zeros(0, np.float32)])
    if not stacked:
        return {"index": label, "label": label, "score": score}
    plane = np.concatenate([np.full(len(t), k, np.int64) for k, t in rows] or [np.zeros(0, int)])
    return {"index": np.full(len(label), -1), "plane": plane, "label": label, "score": score}


def nuclei_widget():
    """The dock widget napari shows: image layer, scale, threshold and tile, and a Run button.

    Each run adds (or replaces) a Labels layer ``"<image> nuclei"`` on top of the image, with its
    ``scale`` and ``translate``. Needs ``pip install "sciconv[napari]"``.

    Returns
    -------
    magicgui.widgets.FunctionGui

    Examples
    --------
    >>> from sciconv.napari import nuclei_widget
    >>> callable(nuclei_widget)
    True
    """
    try:
        import napari
        from magicgui import magicgui
    except ImportError as exc:
        from sciconv.errors import MissingDependencyError

        raise MissingDependencyError(
            f'the napari widget needs napari and magicgui ({exc}); pip install "sciconv[napari]"'
        ) from exc

    from sciconv.models import pretrained_info

    recorded = float(pretrained_info("nuclei")["postprocess"]["threshold"])

    @magicgui(
        call_button="Segment nuclei",
        scale={"min": 0.0, "max": 20.0, "step": 0.05, "label": "scale (0: auto)"},
        threshold={"min": 0.05, "max": 0.95, "step": 0.05, "label": "probability threshold"},
        tile={"min": 32, "max": 4096, "step": 32, "label": "tile (px)"},
    )
    def widget(
        image: napari.layers.Image,
        scale: float = 0.0,
        threshold: float = recorded,
        tile: int = 256,
    ) -> napari.types.LayerDataTuple:
        if getattr(image, "multiscale", False):
            raise ConfigError(
                f"layer {image.name!r} is a multiscale whole slide: segment it block by block "
                "with `sciconv predict pretrained:nuclei SLIDE --out DIR --geojson` and open "
                "the labels or the GeoJSON here"
            )
        data = image.data  # a movie or Z-stack (sliders): every plane, labels with its axes
        planes = data.ndim - (3 if image.rgb else 2)
        named = (image.metadata or {}).get("stack_axes")  # sciconv's reader: "T", "TZ"
        axes = named if isinstance(named, str) and len(named) == planes else None
        extra = {"scale": tuple(image.scale), "translate": tuple(image.translate)}
        return segment_nuclei(
            data,
            scale="auto" if scale == 0 else scale,  # 0: as predict_instances' default
            threshold=threshold,
            tile=tile,
            name=f"{image.name} nuclei",
            layer_kwargs=extra,
            planes=planes,
            axes=axes,
        )

    return widget
