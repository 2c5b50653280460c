"""Devices and scale: GPUs, mixed precision, XLA and ``tf.distribute`` strategies.

Going from a laptop CPU to one GPU, several GPUs or several machines is a setting, not a rewrite:

1. :func:`configure` once, at program start, before anything touches a GPU (memory growth, mixed
   precision policy, XLA default for :func:`jit_compile_default`);
2. :func:`strategy` picks TensorFlow's own engine: the default strategy on one device,
   ``MirroredStrategy`` when several GPUs are visible, ``MultiWorkerMirroredStrategy`` when
   ``TF_CONFIG`` describes a cluster of several workers;
3. build and compile the model inside ``strategy.scope()`` with the global batch size
   (:func:`scale_batch_size`); only the chief (:func:`is_chief`) writes checkpoints, the other
   workers write into a temporary folder (:func:`chief_workdir`).

:func:`info` and :func:`describe` report versions, CPUs, GPUs, the strategy and the policies
(``sciconv info`` prints :func:`describe`). Neither initializes the GPUs, so they may run before
:func:`configure`.

The CPU defaults were measured (``nice -n 10 python benchmarks/bench_devices.py``: reference
conv-pool-dense model, 64x64x1 images, batch 64, training images/s, median of 3 epochs of 20 steps,
one process; 2 cores, shared with other jobs, of an AMD EPYC with AVX-512 and AVX512_BF16;
TensorFlow 2.21, Keras 3.15, 2026-11-26)::

    policy            XLA off      XLA on
    float32           801 (x1.00)  174 (x0.22)
    mixed_bfloat16   1918 (x2.39)  427 (x0.53)
    mixed_float16     133 (x0.17)  -

Two more runs on the same machine under heavy load from other jobs (absolute figures 4-15x
lower, so only the ratios count) gave bfloat16 x4.75 and x4.61, XLA x0.44 and x0.51 (float32),
x0.38 and x0.56 (bfloat16), float16 x0.13 and x0.20.

So on CPU, "auto" keeps XLA off, and picks ``mixed_bfloat16`` where the CPU has bfloat16
instructions (AVX512_BF16 or AMX-BF16: oneDNN runs the convolutions and matmuls in bfloat16),
float32 elsewhere; ``mixed_float16`` is never chosen on CPU (emulated, 6x slower). On GPUs
"auto" follows the usual rule (tensor cores from compute capability 7.0), not measured here.

Examples
--------
>>> from sciconv import devices
>>> devices.is_chief(tf_config={"cluster": {"worker": ["a:1", "b:2"]},
...                             "task": {"type": "worker", "index": 1}})
False
>>> devices.scale_batch_size(32)  # one replica on the default strategy
32
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from sciconv._validation import look_up_option
from sciconv.errors import ConfigError, DatasetError, SciconvWarning

__all__ = [
    "chief_workdir",
    "configure",
    "describe",
    "distribute_dataset",
    "info",
    "is_chief",
    "jit_compile_default",
    "num_replicas",
    "num_workers",
    "scale_batch_size",
    "strategy",
    "task_name",
]

#: CPU flags reported by :func:`info` (those that decide bfloat16 and AVX-512 speed).
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")

_POLICY_NAMES = {
    "float32": "float32",
    "mixed_float16": "mixed_float16",
    "mixed_bfloat16": "mixed_bfloat16",
    "float16": "mixed_float16",
    "bfloat16": "mixed_bfloat16",
}
_MIXED_CHOICES = ("auto", True, False, None, *_POLICY_NAMES)
_STRATEGY_KINDS = ("auto", "default", "mirrored", "multiworker")
_SHARD_POLICIES = {
    "auto": "AUTO",
    "data": "DATA",
    "file": "FILE",
    "off": "OFF",
}

# CPU defaults, measured (see the module docstring and benchmarks/bench_devices.py). "auto" on a
# CPU-only machine uses these; explicit settings always win.
_CPU_XLA_DEFAULT = False  # XLA: 174 vs 801 images/s (float32), 427 vs 1918 (bfloat16)
_CPU_BF16_DEFAULT = True  # mixed_bfloat16: 1918 vs 801 images/s where the CPU has bf16 instructions

# What configure() applied; None until it runs.
_STATE: dict[str, Any] = {"xla": None, "configured": None}
_STRATEGIES: dict[tuple, tf.distribute.Strategy] = {}


# --------------------------------------------------------------------------------------------
# discovery (never initializes the GPUs)
# --------------------------------------------------------------------------------------------
def _cpu_info() -> dict[str, Any]:
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo") as fh:  # Linux; elsewhere only the platform's name
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    model = model or platform.processor() or "unknown"
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count()
    return {
        "model": model,
        "count": os.cpu_count(),
        "available": available,
        "flags": {flag: flag in flags for flag in CPU_FLAGS},
    }


def _cpu_prefers_bfloat16(cpu: Mapping[str, Any] | None = None) -> bool:
    flags = (cpu or _cpu_info())["flags"]
    return bool(flags.get("amx_bf16") or flags.get("avx512_bf16"))


def _gpu_memory_mib() -> list[int | None]:
    """Memory of each GPU from ``nvidia-smi`` (TensorFlow only knows it after initializing)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    values: list[int | None] = []
    for line in out.splitlines():
        try:
            values.append(int(float(line.strip())))
        except ValueError:
            values.append(None)
    return values


def _gpus() -> list[dict[str, Any]]:
    gpus = tf.config.list_physical_devices("GPU")
    memory = _gpu_memory_mib() if gpus else []
    out = []
    for i, gpu in enumerate(gpus):
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except (RuntimeError, ValueError):
            details = {}
        cc = details.get("compute_capability")
        out.append(
            {
                "name": gpu.name,
                "device_name": details.get("device_name", "unknown GPU"),
                "compute_capability": tuple(cc) if cc else None,
                "memory_mib": memory[i] if i < len(memory) else None,
            }
        )
    return out


def _parse_tf_config(tf_config: str | Mapping | None = None) -> dict[str, Any] | None:
    """Return TF_CONFIG (the argument, or the environment variable) as a dict; None if unset."""
    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG")
        if not tf_config:
            return None
    if isinstance(tf_config, str):
        try:
            tf_config = json.loads(tf_config)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"TF_CONFIG is not valid JSON ({exc.msg} at char {exc.pos})"
            ) from None
    if not isinstance(tf_config, Mapping):
        raise ConfigError(
            "TF_CONFIG must be a JSON object with 'cluster' and 'task'; "
            f"got {type(tf_config).__name__}"
        )
    cluster = tf_config.get("cluster", {}) or {}
    task = tf_config.get("task", {}) or {}
    if not isinstance(cluster, Mapping) or not isinstance(task, Mapping):
        raise ConfigError("TF_CONFIG 'cluster' and 'task' must be JSON objects")
    for job, addresses in cluster.items():
        if not isinstance(addresses, (list, tuple)):
            raise ConfigError(
                f"TF_CONFIG cluster[{job!r}] must be a list of 'host:port' addresses; "
                f"got {addresses!r}"
            )
    if task:
        if "type" not in task:
            raise ConfigError(f"TF_CONFIG task must name its 'type' (e.g. 'worker'); got {task!r}")
        index = task.get("index", 0)
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ConfigError(f"TF_CONFIG task 'index' must be an int >= 0; got {index!r}")
        if cluster and task["type"] in cluster and index >= len(cluster[task["type"]]):
            raise ConfigError(
                f"TF_CONFIG task {task['type']}:{index} is not in the cluster, which has "
                f"{len(cluster[task['type']])} {task['type']} address(es)"
            )
    return {"cluster": dict(cluster), "task": dict(task)}


def num_workers(*, tf_config: str | Mapping | None = None) -> int:
    """Number of training workers (``chief`` + ``worker`` jobs) that ``TF_CONFIG`` describes.

    Parameters
    ----------
    tf_config : str or dict, optional
        The cluster description; defaults to the ``TF_CONFIG`` environment variable. Unset means
        one worker, this process.

    Returns
    -------
    int

    Raises
    ------
    ConfigError
        ``TF_CONFIG`` is not valid JSON or not shaped like a cluster description.

    Examples
    --------
    >>> num_workers(tf_config={"cluster": {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]},
    ...                        "task": {"type": "chief", "index": 0}})
    3
    """
    config = _parse_tf_config(tf_config)
    if config is None:
        return 1
    cluster = config["cluster"]
    return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


def is_chief(*, tf_config: str | Mapping | None = None) -> bool:
    """Whether this process is the chief, the one worker that writes checkpoints and logs.

    The chief is task ``chief`` if the cluster has one, otherwise ``worker`` 0 (Keras' rule).
    Without ``TF_CONFIG`` this process is alone, hence the chief. Evaluators and parameter
    servers are not.

    Parameters
    ----------
    tf_config : str or dict, optional
        The cluster description; defaults to the ``TF_CONFIG`` environment variable.

    Returns
    -------
    bool

    Raises
    ------
    ConfigError
        ``TF_CONFIG`` is not valid JSON or not shaped like a cluster description.

    Examples
    --------
    >>> cluster = {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]}
    >>> is_chief(tf_config={"cluster": cluster, "task": {"type": "worker", "index": 0}})
    True
    >>> is_chief(tf_config={"cluster": cluster, "task": {"type": "worker", "index": 1}})
    False
    """
    config = _parse_tf_config(tf_config)
    if config is None or not config["task"]:
        return True
    task_type = config["task"]["type"]
    index = config["task"].get("index", 0)
    if task_type == "chief":
        return True
    if task_type == "worker":
        return index == 0 and "chief" not in config["cluster"]
    return False


def task_name(*, tf_config: str | Mapping | None = None) -> str | None:
    """This process's task in the cluster, e.g. ``"worker1"``; None without ``TF_CONFIG``.

    Unique per worker, hence usable in file names that the workers of one run must not share
    (backups on a shared file system).

    Parameters
    ----------
    tf_config : str or dict, optional
        Defaults to the ``TF_CONFIG`` environment variable.

    Returns
    -------
    str or None

    Raises
    ------
    ConfigError
        ``TF_CONFIG`` is not valid JSON or not shaped like a cluster description.

    Examples
    --------
    >>> task_name(tf_config={"cluster": {"worker": ["a:1", "b:1"]},
    ...                      "task": {"type": "worker", "index": 1}})
    'worker1'
    """
    config = _parse_tf_config(tf_config)
    if config is None or not config["task"]:
        return None
    return f"{config['task']['type']}{config['task'].get('index', 0)}"


def _strategy_summary(strat: tf.distribute.Strategy | None = None) -> dict[str, Any]:
    strat = strat if strat is not None else tf.distribute.get_strategy()
    name = type(strat).__name__
    if name == "_DefaultDistributionStrategy":
        name = "default"
    return {"name": name, "num_replicas": int(strat.num_replicas_in_sync)}


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
    (see the module docstring).

    Parameters
    ----------
    strategy : tf.distribute.Strategy, optional
        The strategy the model is compiled under; defaults to the current one.

    Returns
    -------
    bool

    Examples
    --------
    >>> isinstance(jit_compile_default(), bool)
    True
    """
    if _STATE["xla"] is not None:
        return bool(_STATE["xla"])
    return _xla_auto(strat=strategy)


def info() -> dict[str, Any]:
    """Versions, CPU, GPUs, distribution strategy and policies, as a dict.

    Does not initialize the GPUs, so it may run before :func:`configure`.

    Returns
    -------
    dict
        Keys ``python``, ``sciconv``, ``tensorflow``, ``keras``, ``keras_backend``, ``numpy``,
        ``cuda_build`` (bool), ``cuda_version``, ``cudnn_version``, ``cpu`` (``model``,
        ``count``, ``available``, ``flags``), ``gpus`` (list of dicts with ``name``,
        ``device_name``, ``compute_capability``, ``memory_mib``), ``strategy`` (``name``,
        ``num_replicas``), ``tf_config`` (parsed ``TF_CONFIG`` or None), ``num_workers``,
        ``is_chief``, ``mixed_precision`` (the Keras global policy name), ``xla`` (what
        :func:`jit_compile_default` returns) and ``configured`` (what :func:`configure`
        applied, or None).

    Examples
    --------
    >>> d = info()
    >>> d["tensorflow"] == tf.__version__, d["keras"] == keras.__version__
    (True, True)
    >>> sorted(d["cpu"])
    ['available', 'count', 'flags', 'model']
    """
    import numpy as np

    import sciconv

    build = dict(tf.sysconfig.get_build_info())
    try:
        tf_config = _parse_tf_config()
        workers, chief = num_workers(), is_chief()
    except ConfigError as exc:
        tf_config, workers, chief = {"error": str(exc)}, 1, True
    return {
        "python": sys.version.split()[0],
        "sciconv": sciconv.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "numpy": np.__version__,
        "cuda_build": bool(build.get("is_cuda_build", False)),
        "cuda_version": build.get("cuda_version"),
        "cudnn_version": build.get("cudnn_version"),
        "cpu": _cpu_info(),
        "gpus": _gpus(),
        "strategy": _strategy_summary(),
        "tf_config": tf_config,
        "num_workers": workers,
        "is_chief": chief,
        "mixed_precision": keras.mixed_precision.global_policy().name,
        "xla": jit_compile_default(),
        "configured": None if _STATE["configured"] is None else dict(_STATE["configured"]),
    }


def describe() -> str:
    """Human-readable summary of :func:`info` (what ``sciconv info`` prints).

    Returns
    -------
    str
        One line per topic: versions, CPU, each GPU, cluster, strategy, policies.

    Examples
    --------
    >>> text = describe()
    >>> text.splitlines()[1].startswith("tensorflow ")
    True
    """
    d = info()
    cuda = (
        f"CUDA {d['cuda_version']}, cuDNN {d['cudnn_version']}" if d["cuda_build"] else "CPU-only"
    )
    flags = " ".join(f for f, present in d["cpu"]["flags"].items() if present) or "none of interest"
    lines = [
        f"sciconv {d['sciconv']}, python {d['python']}, numpy {d['numpy']}",
        f"tensorflow {d['tensorflow']} ({cuda} build), keras {d['keras']} "
        f"(backend {d['keras_backend']})",
        f"CPU: {d['cpu']['model']}, {d['cpu']['available']} of {d['cpu']['count']} cores "
        f"available; flags: {flags}",
    ]
    if not d["gpus"]:
        lines.append("GPU: none visible (training runs on the CPU)")
    for gpu in d["gpus"]:
        cc = gpu["compute_capability"]
        cc_text = f"compute capability {cc[0]}.{cc[1]}" if cc else "compute capability unknown"
        mem = f", {gpu['memory_mib'] / 1024:.0f} GiB" if gpu["memory_mib"] else ""
        lines.append(f"GPU {gpu['name']}: {gpu['device_name']} ({cc_text}{mem})")
    tf_config = d["tf_config"]
    if tf_config is None:
        lines.append("cluster: none (TF_CONFIG not set)")
    elif "error" in tf_config:
        lines.append(f"cluster: invalid TF_CONFIG: {tf_config['error']}")
    else:
        task = tf_config["task"]
        role = "chief" if d["is_chief"] else "not chief"
        lines.append(
            f"cluster: {d['num_workers']} worker(s) from TF_CONFIG; this task "
            f"{task.get('type')}:{task.get('index', 0)} ({role})"
        )
    strat = d["strategy"]
    lines.append(f"strategy: {strat['name']} ({strat['num_replicas']} replica(s) in sync)")
    lines.append(
        f"mixed precision policy: {d['mixed_precision']}; "
        f"XLA (jit_compile) by default: {'on' if d['xla'] else 'off'}"
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
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
    if _CPU_BF16_DEFAULT and _cpu_prefers_bfloat16(cpu):
        return "mixed_bfloat16", "CPU with bfloat16 instructions (measured faster)"
    return "float32", "CPU without bfloat16 instructions"


def _set_memory_growth() -> list[str]:
    done = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            if tf.config.experimental.get_memory_growth(gpu):
                done.append(gpu.name)
                continue
            warnings.warn(
                f"memory growth not set on {gpu.name}: the GPUs were already initialized; call "
                "sciconv.devices.configure() at program start, before building models",
                SciconvWarning,
                stacklevel=3,
            )
        else:
            done.append(gpu.name)
    return done


def configure(
    *,
    mixed_precision: str | bool | None = "auto",
    xla: str | bool = "auto",
    memory_growth: bool = True,
) -> dict[str, Any]:
    """Set up the devices for training: GPU memory growth, mixed precision policy, XLA default.

    Call it once at program start, before building models (memory growth must be set before
    TensorFlow initializes the GPUs; the policy applies to layers built afterwards).

    Parameters
    ----------
    mixed_precision : {"auto", True, False, "float32", "mixed_float16", "mixed_bfloat16"}, optional
        Keras global dtype policy. ``"auto"``: ``mixed_bfloat16`` on GPUs of compute capability
        >= 8.0 (as fast as float16 there, no loss scaling, no float16 overflow),
        ``mixed_float16`` on 7.x GPUs, ``float32`` on older GPUs; on CPU ``mixed_bfloat16``
        where it has bfloat16 instructions (AVX512_BF16/AMX: measured 2.4x faster), else
        ``float32`` (see the module docstring). ``True``: the mixed policy the hardware prefers
        (bfloat16 on CPU). ``False``/``None``: float32. A policy name is used as given
        (``"float16"``/``"bfloat16"`` are accepted for the mixed ones). sciconv models keep
        their final layers float32, so outputs stay float32.
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
    >>> applied = configure(mixed_precision=False, xla=False)
    >>> applied["mixed_precision"], applied["xla"]
    ('float32', False)
    """
    mixed_precision, xla, memory_growth = _validate_configure(mixed_precision, xla, memory_growth)
    grown = _set_memory_growth() if memory_growth else []
    gpus = _gpus()
    cpu = _cpu_info()
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
    _STATE["xla"] = None if xla == "auto" else xla
    applied = {
        "mixed_precision": policy,
        "xla": jit_compile_default(),
        "memory_growth": grown,
        "device": "GPU" if gpus else "CPU",
        "reason": reason,
    }
    _STATE["configured"] = applied
    return dict(applied)


def _reset() -> None:
    """Forget what :func:`configure` set and restore the float32 policy (for tests)."""
    _STATE["xla"] = None
    _STATE["configured"] = None
    keras.mixed_precision.set_global_policy("float32")


# --------------------------------------------------------------------------------------------
# distribution
# --------------------------------------------------------------------------------------------
def strategy(
    kind: str = "auto",
    *,
    devices: list[str] | None = None,
) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy to build, compile and fit models under.

    Parameters
    ----------
    kind : {"auto", "default", "mirrored", "multiworker"}, optional
        ``"auto"``: ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` describes a cluster of
        more than one worker, else ``MirroredStrategy`` when more than one GPU is visible, else
        the default strategy (one device). The other values force that strategy.
    devices : list of str, optional
        Devices for ``"mirrored"`` (e.g. ``["/gpu:0", "/gpu:1"]``); default all GPUs (or the
        CPU when there are none).

    Returns
    -------
    tf.distribute.Strategy
        The same object for the same arguments in one process (a
        ``MultiWorkerMirroredStrategy`` can only be created once, at program start).

    Raises
    ------
    ConfigError
        Unknown ``kind``, ``devices`` given for another kind, or an invalid ``TF_CONFIG``.

    Notes
    -----
    Call :func:`configure` first: creating a mirrored strategy initializes the GPUs. With several
    workers, every worker runs the same program; the datasets should be batched with the global
    batch size (:func:`scale_batch_size`) and each worker reads its shard of them.

    Examples
    --------
    >>> strategy("default").num_replicas_in_sync
    1
    """
    kind = look_up_option(kind, _STRATEGY_KINDS, name="kind")
    if devices is not None:
        if kind != "mirrored":
            raise ConfigError(f"devices is only used with kind='mirrored'; got kind={kind!r}")
        if isinstance(devices, str) or not devices or not all(isinstance(d, str) for d in devices):
            raise ConfigError(f"devices must be a non-empty list of device names; got {devices!r}")
        devices = list(devices)
    if kind == "auto":
        if num_workers() > 1:
            kind = "multiworker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            kind = "mirrored"
        else:
            kind = "default"
    if kind == "default":
        return tf.distribute.get_strategy()
    key = (kind, tuple(devices) if devices else None)
    if key in _STRATEGIES:
        return _STRATEGIES[key]
    if _STATE["configured"] is None:
        _set_memory_growth()  # before the strategy initializes the GPUs
    if kind == "mirrored":
        strat = tf.distribute.MirroredStrategy(devices=devices)
    else:
        _parse_tf_config()  # a readable error rather than TensorFlow's
        strat = _MultiWorkerMirroredStrategy()
    _STRATEGIES[key] = strat
    return strat


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """``MultiWorkerMirroredStrategy`` whose ``reduce`` takes what Keras 3's ``fit`` gives it.

    Keras 3.15 with TensorFlow 2.21 cannot ``fit`` under the stock multi-worker strategy
    (keras-team/keras#20585, tensorflow/tensorflow#72388), for two reasons, both in
    ``strategy.reduce``:

    - before building, ``fit`` reduces the whole first ``(x, y)`` batch, a nest, which the
      multi-worker strategy refuses ("Attempt to convert a value (PerReplica...)");
      ``MirroredStrategy`` takes nests. Here nests are reduced leaf by leaf.
    - the per-step logs (scalar loss and metrics) are reduced with ``axis=0``, which fails on a
      scalar ("Invalid reduction dimension 0 for input with 0 dimensions"). A scalar has no batch
      axis to reduce: it is reduced across replicas only (``axis=None``), i.e. averaged.
    """

    def reduce(self, reduce_op, value, axis=None):
        if not isinstance(value, tf.distribute.DistributedValues) and tf.nest.is_nested(value):
            return tf.nest.map_structure(lambda v: self.reduce(reduce_op, v, axis), value)
        if axis is not None and _per_replica_rank(self, value) == 0:
            axis = None
        return super().reduce(reduce_op, value, axis)


def _per_replica_rank(strat: tf.distribute.Strategy, value) -> int | None:
    if isinstance(value, tf.distribute.DistributedValues):
        value = strat.experimental_local_results(value)[0]
    shape = getattr(value, "shape", None)
    return None if shape is None else shape.rank


def num_replicas(strategy: tf.distribute.Strategy | None = None) -> int:
    """Number of replicas that train in sync (GPUs times workers; 1 on the default strategy).

    Parameters
    ----------
    strategy : tf.distribute.Strategy, optional
        Defaults to the current strategy (the one whose ``scope()`` is active, else the default).

    Returns
    -------
    int

    Examples
    --------
    >>> num_replicas()
    1
    """
    strat = strategy if strategy is not None else tf.distribute.get_strategy()
    return int(strat.num_replicas_in_sync)


def scale_batch_size(per_replica: int, *, strategy: tf.distribute.Strategy | None = None) -> int:
    """Global batch size for ``per_replica`` examples on each replica.

    Batch datasets with the global size: ``tf.distribute`` splits each global batch among the
    replicas, so the per-replica batch (and the memory it needs) stays ``per_replica``.

    Parameters
    ----------
    per_replica : int
        Batch size on one device.
    strategy : tf.distribute.Strategy, optional
        Defaults to the current strategy.

    Returns
    -------
    int
        ``per_replica * num_replicas(strategy)``.

    Raises
    ------
    ConfigError
        ``per_replica`` is not a positive int.

    Examples
    --------
    >>> scale_batch_size(16)
    16
    """
    if isinstance(per_replica, bool) or not isinstance(per_replica, int) or per_replica <= 0:
        raise ConfigError(f"per_replica batch size must be a positive int; got {per_replica!r}")
    return per_replica * num_replicas(strategy)


def distribute_dataset(
    dataset: tf.data.Dataset,
    strategy: tf.distribute.Strategy | None = None,
    *,
    shard_policy: str = "data",
) -> tf.distribute.DistributedDataset:
    """Split a globally batched dataset among the replicas (and workers) of ``strategy``.

    ``model.fit`` accepts the result as it is, and custom training loops iterate over it inside
    ``strategy.run``. Passing a plain dataset to ``fit`` works too; this helper additionally sets
    the sharding policy, which matters with several workers: ``"data"`` (each worker reads the
    whole pipeline and keeps its share of every batch; works for in-memory and generated data),
    ``"file"`` (each worker reads its own files; needs at least as many files as workers),
    ``"auto"`` (TensorFlow tries files then data), ``"off"`` (every worker sees all data).

    Parameters
    ----------
    dataset : tf.data.Dataset
        Batched with the *global* batch size (:func:`scale_batch_size`).
    strategy : tf.distribute.Strategy, optional
        Defaults to the current strategy.
    shard_policy : {"data", "file", "auto", "off"}, optional
        Multi-worker sharding.

    Returns
    -------
    tf.distribute.DistributedDataset

    Raises
    ------
    DatasetError
        ``dataset`` is not a ``tf.data.Dataset``.
    ConfigError
        Unknown ``shard_policy``.

    Examples
    --------
    >>> ds = tf.data.Dataset.range(8).batch(4)
    >>> [x.numpy().tolist() for x in distribute_dataset(ds)]
    [[0, 1, 2, 3], [4, 5, 6, 7]]
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise DatasetError(f"dataset must be a tf.data.Dataset; got {type(dataset).__name__}")
    policy = look_up_option(shard_policy, tuple(_SHARD_POLICIES), name="shard_policy")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = getattr(
        tf.data.experimental.AutoShardPolicy, _SHARD_POLICIES[policy]
    )
    strat = strategy if strategy is not None else tf.distribute.get_strategy()
    return strat.experimental_distribute_dataset(dataset.with_options(options))


@contextlib.contextmanager
def chief_workdir(
    workdir: str | os.PathLike, *, tf_config: str | Mapping | None = None
) -> Iterator[Path]:
    """Yield where this worker writes checkpoints: ``workdir`` on the chief, a temp dir elsewhere.

    In multi-worker training every worker must run the same saving code (Keras' recommendation),
    but only the chief's files are kept: the other workers write into a temporary folder that is
    deleted on exit.

    Parameters
    ----------
    workdir : str or os.PathLike
        The run directory.
    tf_config : str or dict, optional
        Defaults to the ``TF_CONFIG`` environment variable.

    Yields
    ------
    pathlib.Path

    Examples
    --------
    >>> with chief_workdir("runs/example") as where:  # no TF_CONFIG: this process is the chief
    ...     where.as_posix()
    'runs/example'
    """
    if is_chief(tf_config=tf_config):
        yield Path(workdir)
        return
    tmp = Path(tempfile.mkdtemp(prefix="sciconv-worker-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
