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

from sciconv.devices._cluster import chief_workdir, is_chief, num_workers, task_name
from sciconv.devices._discovery import CPU_FLAGS as CPU_FLAGS
from sciconv.devices._info import describe, info
from sciconv.devices._precision import configure, jit_compile_default
from sciconv.devices._strategy import (
    distribute_dataset,
    num_replicas,
    scale_batch_size,
    strategy,
)

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
