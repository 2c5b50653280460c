"""What the machine has, found without initializing the GPUs; GPU memory growth."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import warnings
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from sciconv.errors import SciconvWarning

#: CPU flags reported by :func:`info` (those that decide bfloat16 and AVX-512 speed).
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")


def cpu_info() -> dict[str, Any]:
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:  # Linux
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


def cpu_prefers_bfloat16(cpu: Mapping[str, Any] | None = None) -> bool:
    flags = (cpu or cpu_info())["flags"]
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


def list_gpus() -> list[dict[str, Any]]:
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


def enable_memory_growth() -> list[str]:
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
