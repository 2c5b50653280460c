"""configure(): GPU memory growth, the mixed precision policy and the XLA default."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

from sciconv._validation import look_up_option
from sciconv.devices._discovery import (
    cpu_info,
    cpu_prefers_bfloat16,
    enable_memory_growth,
    list_gpus,
)
from sciconv.errors import ConfigError, SciconvWarning

_POLICY_NAMES = {
    "float32": "float32",
    "mixed_float16": "mixed_float16",
    "mixed_bfloat16": "mixed_bfloat16",
    "float16": "mixed_float16",
    "bfloat16": "mixed_bfloat16",
}
_MIXED_CHOICES = ("auto", True, False, None, *_POLICY_NAMES)

# CPU defaults, measured (see the sciconv.devices docstring and benchmarks/bench_devices.py).
# "auto" on a CPU-only machine uses these; explicit settings always win.
_CPU_XLA_DEFAULT = False  # XLA: 174 vs 801 images/s (float32), 427 vs 1918 (bfloat16)
_CPU_BF16_DEFAULT = True  # mixed_bfloat16: 1918 vs 801 images/s where the CPU has bf16 instructions

# What configure() applied; None until it runs.
STATE: dict[str, Any] = {"xla": None, "configured": None}


def _xla_auto(gpus: list | None = None, strat: tf.distribute.Strategy | None = None) -> bool:
    if gpus is None:
        gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return _CPU_XLA_DEFAULT
    strat = strat if strat is not None else tf.distribute.get_strategy()
    # Keras' own "auto" turns XLA off under tf.distribute; follow it.
    return strat.num_replicas_in_sync == 1


def jit_compile_default(*, strategy: tf.distribute.Strategy | None = None) -> bool:
    """The ``jit_compile`` value ``model.compile`` should get (``sciconv.training.fit`` uses it).

    An explicit ``configure(xla=True/False)`` wins. Otherwise ("auto"): on for one GPU; off
    under a multi-replica strategy (as Keras' own "auto"); off on CPU, where XLA measured slower
    (see the ``sciconv.devices`` docstring).

    Parameters
    ----------
    strategy : tf.distribute.Strategy, optional
        The strategy the model is compiled under; defaults to the current one.

    Returns
    -------
    bool

    Examples
    --------
    >>> from sciconv.devices import jit_compile_default
    >>> isinstance(jit_compile_default(), bool)
    True
    """
    if STATE["xla"] is not None:
        return bool(STATE["xla"])
    return _xla_auto(strat=strategy)


def _validate_configure(mixed_precision, xla, memory_growth):
    if isinstance(mixed_precision, str):
        mixed_precision = look_up_option(
            mixed_precision,
            [c for c in _MIXED_CHOICES if isinstance(c, str)],
            name="mixed_precision",
        )
    elif mixed_precision not in (True, False, None):
        raise ConfigError(
            "mixed_precision must be 'auto', True, False, 'float32', 'mixed_float16' or "
            f"'mixed_bfloat16'; got {mixed_precision!r}"
        )
    if xla is None:
        xla = "auto"
    if not (xla == "auto" or isinstance(xla, bool)):
        raise ConfigError(f"xla must be 'auto', True or False; got {xla!r}")
    if not isinstance(memory_growth, bool):
        raise ConfigError(f"memory_growth must be True or False; got {memory_growth!r}")
    return mixed_precision, xla, memory_growth


def _best_mixed_policy(gpus: list[dict], cpu: Mapping[str, Any]) -> str:
    """The mixed policy the hardware runs fastest and safest."""
    if gpus:
        ccs = [g["compute_capability"] or (0, 0) for g in gpus]
        # Ampere (8.0) and newer run bfloat16 on tensor cores as fast as float16; bfloat16 keeps
        # float32's exponent range, so no loss scaling and no overflow on bright astronomical
        # pixels. Volta/Turing (7.x) have float16 tensor cores only.
        return "mixed_bfloat16" if min(ccs) >= (8, 0) else "mixed_float16"
    return "mixed_bfloat16"  # CPUs: bfloat16 is what oneDNN accelerates (AVX512_BF16, AMX)


def _auto_policy(gpus: list[dict], cpu: Mapping[str, Any]) -> tuple[str, str]:
    if gpus:
        ccs = [g["compute_capability"] or (0, 0) for g in gpus]
        if min(ccs) >= (7, 0):
            return _best_mixed_policy(gpus, cpu), f"GPU compute capability {min(ccs)} >= 7.0"
        return "float32", f"GPU compute capability {min(ccs)} < 7.0 (no tensor cores)"
    if _CPU_BF16_DEFAULT and cpu_prefers_bfloat16(cpu):
        return "mixed_bfloat16", "CPU with bfloat16 instructions (measured faster)"
    return "float32", "CPU without bfloat16 instructions"


def configure(
    *,
    mixed_precision: str | bool | None = "auto",
    xla: str | bool = "auto",
    memory_growth: bool = True,
) -> dict[str, Any]:
    """Set up the devices for training: GPU memory growth, mixed precision policy, XLA default.

    Call it once at program start, before building models (memory growth must be set before
    TensorFlow initializes the GPUs; the policy applies to layers built afterwards). Keras keeps
    the policy per thread: a model built in a worker thread (a ``ThreadPoolExecutor``, dask's
    threaded scheduler) is float32 unless that thread calls ``configure`` too.

    Parameters
    ----------
    mixed_precision : {"auto", True, False, "float32", "mixed_float16", "mixed_bfloat16"}, optional
        Keras global dtype policy. ``"auto"``: ``mixed_bfloat16`` on GPUs of compute capability
        >= 8.0 (as fast as float16 there, no loss scaling, no float16 overflow),
        ``mixed_float16`` on 7.x GPUs, ``float32`` on older GPUs; on CPU ``mixed_bfloat16``
        where it has bfloat16 instructions (AVX512_BF16/AMX: measured 2.4x faster), else
        ``float32`` (see the ``sciconv.devices`` docstring). ``True``: the mixed policy the
        hardware prefers (bfloat16 on CPU). ``False``/``None``: float32. A policy name is used
        as given (``"float16"``/``"bfloat16"`` are accepted for the mixed ones). sciconv models
        keep their final layers float32, so outputs stay float32.
    xla : {"auto", True, False}, optional
        The ``jit_compile`` default returned by :func:`jit_compile_default`. ``"auto"``: on for a
        single GPU, off on CPU (measured slower) and under multi-replica strategies.
    memory_growth : bool, optional
        Let TensorFlow allocate GPU memory as needed instead of grabbing it all (so several
        processes can share a GPU). Ignored without GPUs.

    Returns
    -------
    dict
        What was applied: ``mixed_precision`` (policy name), ``xla`` (bool), ``memory_growth``
        (names of the GPUs it was set on), ``device`` ("GPU" or "CPU") and ``reason`` (why
        "auto" chose that policy).

    Raises
    ------
    ConfigError
        An argument is not one of the allowed values.

    Warns
    -----
    SciconvWarning
        The GPUs were already initialized, so memory growth could not be set.

    Examples
    --------
    >>> from sciconv.devices import configure
    >>> applied = configure(mixed_precision=False, xla=False)
    >>> applied["mixed_precision"], applied["xla"]
    ('float32', False)
    """
    mixed_precision, xla, memory_growth = _validate_configure(mixed_precision, xla, memory_growth)
    grown = enable_memory_growth() if memory_growth else []
    gpus = list_gpus()
    cpu = cpu_info()
    if mixed_precision == "auto":
        policy, reason = _auto_policy(gpus, cpu)
    elif mixed_precision is True:
        policy, reason = _best_mixed_policy(gpus, cpu), "mixed_precision=True"
    elif mixed_precision in (False, None):
        policy, reason = "float32", f"mixed_precision={mixed_precision}"
    else:
        policy, reason = _POLICY_NAMES[mixed_precision], f"mixed_precision={mixed_precision!r}"
    if policy == "mixed_float16" and not gpus:
        warnings.warn(
            "mixed_float16 on a CPU is slower than float32 and needs loss scaling; "
            "mixed_bfloat16 is the CPU's mixed precision",
            SciconvWarning,
            stacklevel=2,
        )
    keras.mixed_precision.set_global_policy(policy)
    STATE["xla"] = None if xla == "auto" else xla
    applied = {
        "mixed_precision": policy,
        "xla": jit_compile_default(),
        "memory_growth": grown,
        "device": "GPU" if gpus else "CPU",
        "reason": reason,
    }
    STATE["configured"] = applied
    return dict(applied)


def reset_state() -> None:
    """Forget what :func:`configure` set and restore the float32 policy (for tests)."""
    STATE["xla"] = None
    STATE["configured"] = None
    keras.mixed_precision.set_global_policy("float32")
