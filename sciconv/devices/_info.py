"""info() and describe(): versions, CPU, GPUs, cluster, strategy and policies (``sciconv info``)."""

from __future__ import annotations

import sys
from typing import Any

import keras
import tensorflow as tf

from sciconv.devices._cluster import is_chief, num_workers, parse_tf_config
from sciconv.devices._discovery import cpu_info, list_gpus
from sciconv.devices._precision import STATE, jit_compile_default
from sciconv.devices._strategy import strategy_summary
from sciconv.errors import ConfigError


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
    >>> import tensorflow as tf
    >>> import keras
    >>> from sciconv.devices import info
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
        tf_config = parse_tf_config()
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
        "cpu": cpu_info(),
        "gpus": list_gpus(),
        "strategy": strategy_summary(),
        "tf_config": tf_config,
        "num_workers": workers,
        "is_chief": chief,
        "mixed_precision": keras.mixed_precision.global_policy().name,
        "xla": jit_compile_default(),
        "configured": None if STATE["configured"] is None else dict(STATE["configured"]),
    }


def describe() -> str:
    """Human-readable summary of :func:`info` (what ``sciconv info`` prints).

    Returns
    -------
    str
        One line per topic: versions, CPU, each GPU, cluster, strategy, policies.

    Examples
    --------
    >>> from sciconv.devices import describe
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
