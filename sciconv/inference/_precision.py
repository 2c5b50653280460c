"""Compute precision of inference: float32, or bfloat16 where the hardware runs it natively.

(The rebuilds themselves, :func:`bfloat16_model` and :func:`float32_model`, live in
:mod:`sciconv.models.precision`, beside export, which writes the float32 copy of a model.)

A float32 model is run in bfloat16 by rebuilding it from its config under Keras's
``mixed_bfloat16`` dtype policy (variables stay float32, computations run in bfloat16) with the
same weights; the layers that produce the model's outputs stay float32, so probabilities are
float32. ``precision="auto"`` picks bfloat16 only where the hardware has native bfloat16
(a CPU with AVX512-BF16 or AMX-BF16, a GPU of compute capability >= 8) **and** a quick timing
on the first use finds it faster; elsewhere (e.g. an AVX2-only CPU, where bfloat16 is emulated
and slower) it stays float32. The environment variable ``SCICONV_PRECISION=float32`` (or
``bfloat16``) pins every ``"auto"`` for results that must not depend on the hardware.

A timing is noisy, and two processes timing the same model could decide differently, so the same
command would give slightly different numbers from run to run (measured: 112 of 12,084 sky
sources differed between a bfloat16 and a float32 run). The first decision for a model
architecture on a machine (CPU model and flags, GPUs, TensorFlow and Keras versions) is therefore
kept on disk, under ``<sciconv.fetch.cache_dir()>/precision/``, and every later process on that
machine, or on one of the same kind sharing the folder, reads it instead of timing again. Of
several processes deciding at once the first to write wins and the others adopt its decision.
Delete the folder to time again (after a hardware or driver change the key changes by itself);
where it cannot be written the decision is kept per process only.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from sciconv._kept import keep, kept_file, read_kept
from sciconv.errors import InferenceError, SciconvError
from sciconv.inference._decisions import note_decision
from sciconv.models.introspect import architecture_digest
from sciconv.models.precision import bfloat16_model, float32_model  # noqa: F401 (re-exported)

#: Accepted ``precision`` values of :func:`sciconv.inference.predict_tiled`.
PRECISIONS = ("auto", "float32", "bfloat16")
#: ``"auto"`` takes bfloat16 only when it runs the probe in at most this fraction of float32's time.
_AUTO_GAIN = 0.9

_AUTO_CHOICE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_AUTO_BY_ARCHITECTURE: dict[str, str] = {}


@functools.cache
def native_bfloat16() -> bool:
    """Whether this machine runs bfloat16 natively (CPU AVX512-BF16/AMX-BF16 or a GPU CC >= 8).

    Read once per process from :func:`sciconv.devices.info` (which does not initialize GPUs).

    Examples
    --------
    >>> isinstance(native_bfloat16(), bool)
    True
    """
    from sciconv import devices

    d = devices.info()
    flags = d["cpu"]["flags"]
    gpus = d["gpus"]
    if gpus:  # the model runs on the GPUs: all of them must have bfloat16 tensor cores
        return all(tuple(g.get("compute_capability") or (0, 0)) >= (8, 0) for g in gpus)
    return bool(flags.get("avx512_bf16") or flags.get("amx_bf16"))


def _time(model: keras.Model, x: np.ndarray, repeats: int = 5) -> float:
    model.predict_on_batch(x)  # trace
    model.predict_on_batch(x)  # the first run after tracing still sets up kernels: not timed
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict_on_batch(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def choose_precision(
    model: keras.Model, precision: str, *, tile: Sequence[int], channels: int
) -> str:
    """Resolve ``precision`` to ``"float32"`` or ``"bfloat16"`` (``"auto"``: see the module).

    The ``"auto"`` timing (one tile of at most 512 x 512 pixels, the median of five runs each
    after an untimed one) happens once per model and is cached. Smaller probes misjudge: on an
    AVX512-BF16 CPU a fresh U-Net (depth 3, 16 filters) timed on 256 x 256 came out between
    1.0x and 1.4x faster in bfloat16 from one probe to the next, and 1.4-1.5x on 512-768 px tiles
    (``benchmarks/README.md``, issue 21).

    Parameters
    ----------
    model : keras.Model
        The model to run; under ``"auto"`` one not computing in float32 gets ``"float32"``.
    precision : str
        One of :data:`PRECISIONS`; ``"float32"`` and ``"bfloat16"`` are returned as they are.
    tile : sequence of int
        The ``(h, w)`` tile the model will run on; the ``"auto"`` timing uses it, capped at
        512 x 512 for a model taking any size.
    channels : int
        Number of input channels of the timing probe.

    Returns
    -------
    str
        ``"float32"`` or ``"bfloat16"``.

    Examples
    --------
    >>> import keras
    >>> from sciconv.inference import choose_precision
    >>> inputs = keras.Input((None, None, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    >>> choose_precision(model, "bfloat16", tile=(32, 32), channels=1)
    'bfloat16'
    """
    if precision != "auto":
        return precision
    pinned = pinned_precision()
    if pinned != "auto":
        note_decision("precision", f"{pinned} (auto: SCICONV_PRECISION)", first=True)
        return pinned
    chosen = _auto_precision(model, tile, channels)
    note_decision("precision", f"{chosen} (auto)", first=True)  # recorded beside the setting
    return chosen


def _auto_precision(model: keras.Model, tile, channels: int) -> str:
    if model.dtype_policy.compute_dtype != "float32" or not native_bfloat16():
        return "float32"
    cached = _AUTO_CHOICE.get(model)
    if cached is not None:  # the usual case: no config digest on every call
        return cached
    # models of one architecture (a model loaded twice, the wrappers uncertainty_model builds
    # around it on each call) share one decision instead of each timing anew: two timings can
    # fall on either side of the threshold and the results would then differ between calls
    key = architecture_digest(model)
    cached = None if key is None else _AUTO_BY_ARCHITECTURE.get(key)
    if cached is None and key is not None:
        cached = _read_decision(key)
    if cached is None:
        fixed = model.input_shape[1] is not None  # a fixed-size model takes only its tile
        h, w = (int(t) if fixed else min(int(t), 512) for t in tile)
        x = np.random.default_rng(0).normal(size=(1, h, w, channels)).astype(np.float32)
        fast = _time(bfloat16_model(model), x) <= _AUTO_GAIN * _time(model, x)
        cached = "bfloat16" if fast else "float32"
        if key is not None:
            cached = _keep_decision(key, cached)
    if key is not None:
        _AUTO_BY_ARCHITECTURE[key] = cached
    _AUTO_CHOICE[model] = cached
    return cached


def decision_file(key: str) -> Path:
    """The file that keeps the ``"auto"`` decision for architecture digest ``key`` on this kind
    of machine (the module doc).

    Examples
    --------
    >>> decision_file("0" * 64).parent.name
    'precision'
    """
    from sciconv import devices

    d = devices.info()
    machine = {
        "cpu": d["cpu"].get("model"),
        "flags": d["cpu"].get("flags"),
        "gpus": [(g.get("name"), g.get("compute_capability")) for g in d["gpus"]],
        "versions": [d.get(k) for k in ("tensorflow", "keras", "keras_backend", "sciconv")],
    }
    text = json.dumps(machine, sort_keys=True, default=repr)
    return kept_file("precision", f"{key}:{text}")


def _read_decision(key: str) -> str | None:
    """The decision kept on disk for ``key``, or None (none yet, unreadable, or not a decision)."""
    value = read_kept(decision_file(key))
    return value if value in ("float32", "bfloat16") else None


def _keep_decision(key: str, decision: str) -> str:
    """Write ``decision`` for ``key`` unless another process did first; the one that stands."""
    try:
        path = decision_file(key)
    except (OSError, SciconvError):  # no cache folder to name: this process's decision only
        return decision
    standing = keep(path, decision, valid=lambda text: text in ("float32", "bfloat16"))
    return standing if standing in ("float32", "bfloat16") else decision


def pinned_precision() -> str:
    """What ``precision="auto"`` is pinned to by the ``SCICONV_PRECISION`` environment variable:
    ``"float32"`` or ``"bfloat16"`` (every ``"auto"`` resolves to it, e.g. for results that must
    not depend on the hardware or on a timing), or ``"auto"`` when it is unset or empty.

    Raises
    ------
    InferenceError
        If the variable holds anything else.

    Examples
    --------
    >>> import os
    >>> os.environ.get("SCICONV_PRECISION", "auto") in ("auto", "float32", "bfloat16")
    True
    >>> pinned_precision() in PRECISIONS
    True
    """
    value = os.environ.get("SCICONV_PRECISION", "").strip().lower() or "auto"
    if value not in PRECISIONS:
        raise InferenceError(
            f"environment variable SCICONV_PRECISION={value!r}: expected one of "
            f"{', '.join(PRECISIONS)} (or unset)"
        )
    return value
