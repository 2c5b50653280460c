"""TTA uncertainty wrapper: first call (trace) and steady-state time, D4Moments vs the others.

``sciconv.inference.uncertainty_model(model, "tta")`` used to call the base model once per D4
element (8 copies of the model in the traced graph, so every new tile shape traced it 8 times);
it now stacks the 8 transforms into one tensor and runs the model over it in one loop
(:class:`sciconv.models.uncertainty_layers.D4Moments`: one trace, each pass at the caller's
batch size; two stacks of 4 for non-square tiles). This script builds, around the
pretrained nuclei model, the wrappers named by ``--variants``:

- ``d4moments``: ``uncertainty_model(model, "tta")`` as it is now;
- ``per_transform``: the wrapper exactly as it was built before (the reference);
- ``one_batch``: the 8 transforms concatenated into one batch of ``8 N`` and one model call
  (square tiles only), the design that was measured and not taken;

and times them, rotating which goes first in each round, in one process:

- ``first``: the first ``predict_on_batch`` of a freshly built wrapper on a batch of ``--batch``
  tiles of ``--tile`` pixels (what ``predict_tiled`` pays once per new tile shape);
- ``steady``: the median of ``--repeats`` further calls on the same batch.

It prints the medians over the rounds, each variant's ratio to ``per_transform`` and the largest
difference of its output from ``per_transform``'s. The base model is called once on the tile
shape before the rounds, so TensorFlow's start-up costs no variant.

    nice -n 10 python benchmarks/bench_tta_trace.py                  # 256 px tile, 3 rounds
    nice -n 10 python benchmarks/bench_tta_trace.py --batch 8 --rounds 2 \\
        --variants per_transform,d4moments                      # predict_tiled's default batch
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def per_transform_wrapper(base, output: str = "std"):
    """The tta wrapper as ``uncertainty_model`` built it before D4Moments: 8 model calls."""
    import keras

    import sciconv as sc
    from sciconv.models.layers import SciconvMetadata
    from sciconv.models.uncertainty_layers import D4Transform, EnsembleMoments

    meta = dict(sc.models.get_metadata(base).items())
    meta.update(uncertainty_method="tta", uncertainty_output=output, uncertainty_samples=8)
    meta["mean_channels"] = int(base.outputs[0].shape[-1])
    inputs = keras.Input(shape=base.inputs[0].shape[1:], name=f"{base.name}_tta_input")
    x = SciconvMetadata(meta, name=f"{base.name}_tta_metadata")(inputs)
    preds = [
        D4Transform(k, inverse=True, name=f"{base.name}_tta_{k}_undo")(
            base(D4Transform(k, name=f"{base.name}_tta_{k}")(x))
        )
        for k in range(8)
    ]
    moments = EnsembleMoments(output=output, name=f"{base.name}_tta_moments")(preds)
    return keras.Model(inputs, moments, name=f"{base.name}_tta")


def one_batch_wrapper(base, output: str = "std"):
    """The 8 transforms as one batch of ``8 N`` through one model call (square tiles only)."""
    import keras
    from keras import ops

    import sciconv as sc
    from sciconv.models.layers import SciconvMetadata
    from sciconv.models.uncertainty_layers import D4Transform, EnsembleMoments

    class OneBatch(keras.layers.Layer):
        def __init__(self, model, **kwargs):
            super().__init__(**kwargs)
            self.model = model
            self.forward = [D4Transform(k) for k in range(8)]
            self.undo = [D4Transform(k, inverse=True) for k in range(8)]
            self.moments = EnsembleMoments(output=output)

        def call(self, x):
            y = self.model(ops.concatenate([t(x) for t in self.forward], axis=0))
            parts = ops.split(y, 8, axis=0)
            return self.moments([undo(part) for undo, part in zip(self.undo, parts)])

        def compute_output_shape(self, input_shape):
            k = int(self.model.outputs[0].shape[-1])
            return (*input_shape[:-1], 2 * k if output == "std" else k + 1)

    meta = dict(sc.models.get_metadata(base).items())
    inputs = keras.Input(shape=base.inputs[0].shape[1:])
    x = SciconvMetadata(meta, name=f"{base.name}_one_batch_metadata")(inputs)
    return keras.Model(inputs, OneBatch(base)(x), name=f"{base.name}_one_batch")


def time_wrapper(build, x: np.ndarray, repeats: int) -> tuple[float, float, np.ndarray]:
    """(first-call seconds, median steady-state seconds, output) of a freshly built wrapper."""
    wrapper = build()
    t0 = time.perf_counter()
    y = wrapper.predict_on_batch(x)
    first = time.perf_counter() - t0
    steady = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        wrapper.predict_on_batch(x)
        steady.append(time.perf_counter() - t0)
    return first, statistics.median(steady), np.asarray(y)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="nuclei", help="pretrained model name")
    parser.add_argument("--tile", type=int, default=256, help="tile side in pixels")
    parser.add_argument("--batch", type=int, default=1, help="tiles per call")
    parser.add_argument("--rounds", type=int, default=3, help="fresh wrappers per variant")
    parser.add_argument("--repeats", type=int, default=3, help="steady-state calls per wrapper")
    parser.add_argument(
        "--variants",
        default="per_transform,d4moments,one_batch",
        help="comma-separated, per_transform first (the reference)",
    )
    args = parser.parse_args(argv)

    import sciconv as sc
    from sciconv.inference import uncertainty_model

    base = sc.models.pretrained(args.model)
    channels = int(base.inputs[0].shape[-1])
    x = np.random.default_rng(0).random((args.batch, args.tile, args.tile, channels))
    x = x.astype(np.float32)
    base.predict_on_batch(x)  # TensorFlow's start-up and the base's own trace, outside the timing
    every = {
        "per_transform": lambda: per_transform_wrapper(base),
        "d4moments": lambda: uncertainty_model(base, "tta"),
        "one_batch": lambda: one_batch_wrapper(base),
    }
    names = args.variants.split(",")
    if names[0] != "per_transform" or not set(names) <= set(every):
        parser.error(f"--variants: per_transform first, then any of {sorted(every)}")
    times: dict[str, dict[str, list[float]]] = {k: {"first": [], "steady": []} for k in names}
    outputs = {}
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            first, steady, y = time_wrapper(every[name], x, args.repeats)
            times[name]["first"].append(first)
            times[name]["steady"].append(steady)
            outputs[name] = y
            print(f"round {r} {name:13s} first {first:6.2f} s  steady {steady:6.2f} s", flush=True)
    print(f"\n{args.model}, {args.batch} x {args.tile}^2 tile(s), {args.rounds} rounds (medians):")
    med = {k: {m: statistics.median(v) for m, v in t.items()} for k, t in times.items()}
    ref = med["per_transform"]
    for name in names:
        first, steady = med[name]["first"], med[name]["steady"]
        diff = float(np.abs(outputs[name] - outputs["per_transform"]).max())
        print(
            f"  {name:13s} first {first:6.2f} s ({ref['first'] / first:.2f}x faster)  "
            f"steady {steady:6.2f} s ({ref['steady'] / steady:.2f}x faster)  "
            f"max |diff| {diff:.1e}"
        )


if __name__ == "__main__":
    main()
