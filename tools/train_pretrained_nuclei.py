"""Train the pretrained nuclei segmenter shipped as ``sciconv/pretrained/nuclei.keras``.

Reproducible: a fixed seed, a fixed train/validation division of the DSB2018 images
(``data/real/nuclei_val_ids.txt``: every ``fluo`` id whose sha256 puts it in the first 15 %,
written by ``data/real/make_real_data.py``; the same rule for the other modalities), and every
setting written next to the weights in ``nuclei.json``.

The shipped model (all three DSB modalities, RGB input ``--input rgb``, depth 3, 32 filters) was
trained on one H200 GPU with Keras on JAX in two stages of one run
(``tools/train_pretrained_gpu.sh``, 2026-12-04): 200 warm-up + 17,799 cosine steps of batch 16 from
scratch at ``--lr 2e-3`` (398 s), then 100 warm-up + 14,423 cosine steps at ``--lr 6e-4`` with
``--seed 1`` started from those weights (``--init``, 251 s), saving the mean of the two end points
(``--average-with``: a weight average of one run, colour AP@0.5 +0.015 over the second stage
alone). ``nuclei.json`` records both stages (``init_settings``). The previous shipped model
(``--input gray``, 24 filters, 45,943 steps in one stage on an H100) scored 0.872 / 0.698 / 0.784
(fluo / colour / grey brightfield) against this one's 0.873 / 0.726 / 0.794. Any Keras backend runs
this script: the patches come from a plain numpy generator fed by a pool of sampler processes (no
tf.data). Pack the training images once where the DSB folder is (so a GPU machine needs neither the
folder nor astropy), train the two stages, then tune the post-processing here:

    python tools/train_pretrained_nuclei.py --modalities fluo,color,gray_bright \
        --input rgb --pack .gpu/dsb_train_rgb.npz && cp ../shared/data/dsb2018_train/index.csv .gpu/
    common="--data .gpu --input rgb --packed .gpu/dsb_train_rgb.npz \
        --modalities fluo,color,gray_bright --batch 16 --depth 3 --filters 32 --patch 128 \
        --target touching --workers 14 --no-tune"
    KERAS_BACKEND=jax python tools/train_pretrained_nuclei.py $common --seed 0 --lr 2e-3 \
        --warmup-steps 200 --steps 17799 --out /tmp/gpu/B/nuclei.keras
    KERAS_BACKEND=jax python tools/train_pretrained_nuclei.py $common --seed 1 --lr 6e-4 \
        --warmup-steps 100 --steps 14423 --init /tmp/gpu/B/nuclei.keras \
        --average-with /tmp/gpu/B/nuclei.keras --out /tmp/gpu/nuclei.keras
    python tools/train_pretrained_nuclei.py --modalities fluo,color,gray_bright --tune-only \
        --out /tmp/gpu/nuclei.keras

``--time-budget SECONDS`` replaces ``--steps``: the warm-up is timed and the cosine schedule gets
as many steps as the budget holds (how both counts were set: budgets 370 s and 185 s). The same
commands without ``KERAS_BACKEND=jax`` train with TensorFlow on a CPU (about 16 hours on 2 cores
for both stages, estimated; ``--steps 4000 --batch 8`` with 24 filters takes about 35 minutes).
The earlier fluorescence-only model came from ``--modalities fluo --steps 4000 --batch 8
--filters 20 --warmup-steps 0``.

Grey against RGB input at equal budget (CPU, issue 20; all three modalities, depth 3, 16 filters,
batch 8, seed 0, 100 warm-up + 400 cosine steps, tuned on the 99 validation images; AP@0.5 fluo /
colour / grey brightfield): ``--input gray`` 0.737 / 0.477 / 0.231, ``--input rgb`` 0.749 / 0.522
/ 0.269, ``--input rgb --stain-copies 2`` 0.749 / 0.481 / 0.222 (one seed; 14 colour and 3 grey
images: noise about +-0.02-0.05), hence the RGB default, which the GPU run confirmed.

With more than the ``fluo`` modality every image goes through
``sciconv.preprocess.apply_input_transform(rgb, transform)`` with the transform of ``--input``
(``nuclei_data.INPUTS``): ``gray`` = ``{"to_gray": true, "invert": "auto"}`` (grey = mean of R,
G, B; bright background inverted, so nuclei are bright as in fluorescence; fluorescence images
come out unchanged; the shipped model) or ``rgb`` = ``{"to_rgb": true, "invert": "auto"}`` (the
same flip decision, all three channels flipped about one maximum, grey images replicated to
R = G = B, one normalization over the three channels together so the H&E hue survives; HED stain
copies, ``--stain-copies N``, then change what the model sees). The model records
``input_transform``, ``normalization`` and ``input_channels`` in its metadata, the validation
part of the ``color`` and ``gray_bright`` images is picked by the same sha256 rule as the
fluorescence one (14 + 3 images, never trained on), patches are drawn per modality with the
``--share`` fractions (oversampling the minorities), and ``nuclei.json`` gets the validation
AP@0.5 per modality. ``--pack`` keeps what ``--input`` gives (3 channels for ``rgb``), and
``--packed`` refuses a file packed with another input. The data part (division, reading,
packing, patch sampling) is ``tools/nuclei_data.py``.

What it does
------------
1. Loads the ``--modalities`` images of ``../shared/data/dsb2018_train`` minus the validation ids,
   normalizes each whole image (percentile 1-99.8, the sciconv default; over R, G, B together
   for ``--input rgb``), and samples random
   128x128 patches with D4 flips/rotations, a random zoom (0.7-1.4) and intensity augmentation
   (gamma, contrast, offset, noise).
2. Targets (``--target``): ``touching`` (default; 3 classes: background / interior / boundary,
   where boundary = ``skimage.segmentation.find_boundaries(labels, mode="inner")`` plus every
   nucleus pixel within 2 px of another nucleus, so touching nuclei are split by a 4-px band),
   ``boundary`` (the inner boundary only) or ``semantic`` (background / nucleus; instances by
   distance-transform watershed). Loss: cross-entropy + soft Dice over the foreground classes.
3. Model: ``sciconv.models.segmenter(num_classes=K, depth, filters)`` trained with Adam and a
   cosine learning-rate decay after a short warm-up, in mixed bfloat16 on a GPU or where the CPU
   has it (weights are copied into a float32 model for saving, so inference never depends on
   bfloat16 support).
4. Tunes the post-processing (``sciconv.postprocess.instances`` keyword arguments) for the best
   mean instance AP@0.5 on the validation ids, and stores normalization + post-processing in the
   model metadata so ``sciconv.inference.predict_instances(model, image)`` uses them.

``--tune-only`` reloads a saved model and repeats step 4 (e.g. after the post-processing code
changed), with the input transform and normalization the model recorded (``--input`` is not
needed there). ``--init MODEL`` starts from a saved model of the same depth and filters; a grey
model given to an ``--input rgb`` run has its first kernel split in thirds over R, G, B
(:func:`widened_weights`), so training starts from the grey model's predictions.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # nuclei_data, nuclei_stain

from nuclei_data import (  # noqa: E402  (re-exported: benchmarks/real_nuclei.py uses them)
    INPUT_TRANSFORM,
    INPUTS,
    MODALITIES,
    NORMALIZATION,
    RGB_NORMALIZATION,
    PatchSampler,
    channels_of,
    for_inference,
    for_training,
    in_val_division,
    input_transform_for,
    load_packed,
    load_split,
    make_target,
    normalization_for,
    normalize,
    object_diameters,
    object_levels,
    pack,
    patch_batches,
    read_pair,
    start_workers,
)

__all__ = [
    "INPUTS",
    "INPUT_TRANSFORM",
    "MODALITIES",
    "NORMALIZATION",
    "RGB_NORMALIZATION",
    "PatchSampler",
    "in_val_division",
    "load_split",
    "make_target",
    "read_pair",
]


def _backend_version() -> str:
    import importlib

    import keras

    name = keras.backend.backend()
    return getattr(importlib.import_module(name), "__version__", "?")


def _device_name() -> str:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.devices()[0].device_kind
    return platform.processor() or platform.machine()


def log(*args) -> None:
    print(time.strftime("%H:%M:%S"), *args, flush=True)


class StepLogger:
    """Keras callback factory: log the loss every ``every`` steps with the elapsed time; keeps
    the time of every step in ``.times`` (``sync``: after waiting for the step to finish)."""

    def __new__(cls, every: int, sync: bool = False):
        import keras

        class _Logger(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.t0, self.times = time.time(), []

            def on_train_batch_end(self, batch, logs=None):
                if sync:  # wait for the step (JAX dispatches asynchronously)
                    float(logs["loss"])
                self.times.append(time.time())
                if (batch + 1) % every == 0:
                    log(
                        f"step {batch + 1}: loss {float(logs['loss']):.4f}, "
                        f"{time.time() - self.t0:.0f} s"
                    )

        return _Logger()


# ----------------------------------------------------------------------------- model
def build_model(num_classes: int, depth: int, filters: int, channels: int = 1):
    from sciconv.models import segmenter

    return segmenter(
        (None, None, channels),
        num_classes=num_classes,
        depth=depth,
        filters=filters,
        batch_norm=True,
        name="nuclei",
    )


def widened_weights(weights, shapes):
    """``weights`` of a grey-input model fitted to ``shapes`` of an RGB-input one: a first
    kernel ``(k, k, 1, f)`` becomes ``(k, k, 3, f)`` with a third of it on each of R, G, B, so
    the RGB model gives exactly the grey model's output on a grey image (R = G = B, normalized
    alike) and starts from it on colour ones (``--init`` of a grey model with ``--input rgb``).
    Every other weight must match."""
    out = []
    for w, shape in zip(weights, shapes, strict=True):
        w = np.asarray(w)
        if w.shape != tuple(shape):
            if w.ndim == 4 and w.shape[2] == 1 and tuple(shape) == (*w.shape[:2], 3, w.shape[3]):
                w = np.repeat(w / 3.0, 3, axis=2)
            else:
                raise SystemExit(f"--init: weight of shape {w.shape} cannot become {shape}")
        out.append(w)
    return out


def averaged_weights(*weight_lists):
    """The element-wise mean of the weights of models with one architecture (batch-norm
    statistics included): a weight average ("model soup") of two points of one training run,
    e.g. ``--average-with`` the model a ``--init`` continuation started from."""
    shapes = [[np.shape(w) for w in weights] for weights in weight_lists]
    if any(s != shapes[0] for s in shapes[1:]):
        raise SystemExit("--average-with: the models differ in architecture (weight shapes)")
    return [np.mean(np.stack([np.asarray(w) for w in ws]), axis=0) for ws in zip(*weight_lists)]


#: What ``nuclei.json`` keeps of the run a ``--init`` model came from (its ``init_settings``).
STAGE_KEYS = (
    "seed",
    "steps",
    "warmup_steps",
    "batch",
    "patch",
    "lr",
    "init",
    "input",
    "precision",
    "device",
    "time_budget",
    "train_seconds",
    "workers",
)


def init_settings(init: Path | None) -> dict | None:
    """The training settings of a ``--init`` model (its ``.json`` beside it, if there), so a
    continued run's ``nuclei.json`` records both stages."""
    path = None if init is None else init.with_suffix(".json")
    if path is None or not path.is_file():
        return None
    settings = json.loads(path.read_text())
    return {k: settings[k] for k in STAGE_KEYS if k in settings}


def ce_dice_loss(num_classes: int):
    import keras
    from keras import ops

    def loss(y_true, y_pred):
        y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")
        onehot = ops.one_hot(y_true, num_classes)
        y_pred = ops.cast(y_pred, "float32")
        ce = keras.losses.categorical_crossentropy(onehot, y_pred)
        ce = ops.mean(ce)
        axes = (0, 1, 2)
        inter = ops.sum(onehot * y_pred, axis=axes)
        denom = ops.sum(onehot + y_pred, axis=axes)
        dice = 1.0 - (2.0 * inter + 1.0) / (denom + 1.0)
        return ce + ops.mean(dice[1:])

    return loss


# ----------------------------------------------------------------------------- post-processing + AP
def ap50(true, pred) -> float:
    from sciconv.metrics import average_precision

    return float(average_precision(true, pred, thresholds=(0.5,))["ap"][0])


def predict_prob(model, img: np.ndarray, divisor: int, spec=NORMALIZATION) -> np.ndarray:
    """Class probabilities of one whole (H, W) or (H, W, 3) image, normalized with ``spec``."""
    x = normalize(img, spec)
    x = x[..., None] if x.ndim == 2 else x
    h, w = x.shape[:2]
    ph, pw = (-h) % divisor, (-w) % divisor
    x = np.pad(x, [(0, ph), (0, pw), (0, 0)], mode="reflect")
    prob = model.predict_on_batch(x[None])
    return np.asarray(prob)[0, :h, :w].astype(np.float32)


def tune(probs, labels, num_classes: int):
    """[(mean AP@0.5, kwargs, per-image AP@0.5)] of ``sciconv.postprocess.instances`` over a
    grid, best first."""
    from sciconv.postprocess import instances

    if num_classes == 3:
        grid = {
            "threshold": [0.3, 0.4, 0.5, 0.6],
            "seed_threshold": [0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
            "min_size": [15, 30, 50],
        }
    else:
        grid = {
            "threshold": [0.4, 0.5, 0.6],
            "min_distance": [3, 5, 8],
            "smooth": [0.0, 1.0, 2.0],
            "min_size": [15, 30, 50],
        }
    results = []
    for values in itertools.product(*grid.values()):
        kw = dict(zip(grid, values))
        aps = [ap50(lab, instances(prob, **kw)) for prob, lab in zip(probs, labels)]
        results.append((float(np.mean(aps)), kw, aps))
    results.sort(key=lambda r: -r[0])
    return results


# ----------------------------------------------------------------------------- main
def training_levels(data: Path, train_ids, transform, norm) -> dict:
    """:func:`object_levels` of the training images (stain-jittered copies left out), each read,
    transformed and normalized as the model took it."""
    ids = [i for i in train_ids if "~hed" not in i]
    images, labels = [], []
    for i in ids:
        img, lab = read_pair(data, i, transform)
        images.append(normalize(img, norm))
        labels.append(lab)
    return object_levels(images, labels)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "dsb2018_train")
    p.add_argument("--val-ids", type=Path, default=ROOT / "data" / "real" / "nuclei_val_ids.txt")
    p.add_argument("--out", type=Path, default=ROOT / "sciconv" / "pretrained" / "nuclei.keras")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--filters", type=int, default=24)
    p.add_argument("--target", choices=("touching", "boundary", "semantic"), default="touching")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--precision", choices=("auto", "float32", "mixed_bfloat16"), default="auto")
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--max-val", type=int, default=None, help="tune on the first N validation ids")
    p.add_argument("--tune-only", action="store_true")
    p.add_argument(
        "--modalities",
        default="fluo",
        help="comma-separated DSB modalities to train/validate on (fluo,color,gray_bright); "
        "anything beyond fluo uses the --input transform",
    )
    p.add_argument(
        "--input",
        choices=tuple(INPUTS),
        default=None,
        help="what the model takes: gray = " + json.dumps(INPUTS["gray"]) + " (1 channel; "
        "fluo alone: the R channel as it is), rgb = " + json.dumps(INPUTS["rgb"]) + " (3 "
        "channels normalized together, grey images replicated). Default: rgb with more than "
        "the fluo modality, gray for fluo alone. --tune-only takes the one the model recorded",
    )
    p.add_argument(
        "--share",
        default="fluo:0.6,color:0.28,gray_bright:0.12",
        help="fraction of training patches per modality (when several)",
    )
    p.add_argument(
        "--stain-copies",
        type=int,
        default=0,
        help="add N HED stain-jittered copies of every colour training image (nuclei_stain.py)",
    )
    p.add_argument(
        "--blur",
        type=float,
        default=0.0,
        help="share of training patches blurred out of focus (Gaussian, sigma 0.5-2.5 px; "
        "nuclei_data.BLUR_SIGMA); default 0",
    )
    p.add_argument("--init", type=Path, default=None, help="start from these weights (.keras)")
    p.add_argument(
        "--average-with",
        type=Path,
        default=None,
        help="save the mean of the trained weights and these (.keras, same architecture)",
    )
    p.add_argument("--workers", type=int, default=1, help="patch-sampling processes")
    p.add_argument(
        "--warmup-steps",
        type=int,
        default=200,
        help="steps at a quarter of --lr before the cosine schedule (0: none)",
    )
    p.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="seconds of training: time the warm-up steps, then give the cosine schedule as "
        "many steps as the budget holds (overrides --steps)",
    )
    p.add_argument("--log-every", type=int, default=500, help="log the loss every N steps")
    p.add_argument(
        "--pack", type=Path, default=None, help="only write the training images to this .npz"
    )
    p.add_argument(
        "--packed", type=Path, default=None, help="train from a --pack file instead of --data"
    )
    p.add_argument(
        "--no-tune",
        action="store_true",
        help="save the trained model and settings without tuning/validating (run --tune-only "
        "later where the DSB folder is)",
    )
    p.add_argument("--overwrite", action="store_true")
    p.add_argument(
        "--levels-only",
        action="store_true",
        help="only record the training nuclei's brightness and noise (object_level, object_snr) "
        "in the settings of the model --out names (brightness='auto' and denoise='auto' of "
        "predict_instances), nothing else changed",
    )
    a = p.parse_args(argv)
    a.tune_only = a.tune_only or a.levels_only

    num_classes = 2 if a.target == "semantic" else 3
    modalities = tuple(m for m in a.modalities.split(",") if m)
    for m in modalities:
        if m not in MODALITIES:
            p.error(f"unknown modality {m!r}; choose from {MODALITIES}")
    if a.input is None:  # rgb won on colour at equal budget without losing fluo (issue 20)
        a.input = "gray" if modalities == ("fluo",) else "rgb"
    transform = input_transform_for(a.input, modalities)
    if a.tune_only:  # the input the model was trained with, whatever --input says
        recorded = json.loads(a.out.with_suffix(".json").read_text())
        transform = for_training(recorded.get("input_transform", transform))
    norm, channels = normalization_for(transform), channels_of(transform)
    if a.tune_only:
        norm = recorded.get("normalization", norm)
    train_ids, val_ids, modality_of = load_split(a.data, a.val_ids, modalities, with_modality=True)
    if a.stain_copies:
        from nuclei_stain import copy_ids

        copies = copy_ids(train_ids, modality_of, a.stain_copies)
        train_ids, modality_of = (
            train_ids + copies,
            {**modality_of, **dict.fromkeys(copies, "color")},
        )
    if a.pack is not None:
        pack(a.data, train_ids, transform, a.pack)
        log(
            f"packed {len(train_ids)} training images into {a.pack} "
            f"({a.pack.stat().st_size / 1e6:.1f} MB)"
        )
        return
    for m in modalities:
        n_t = sum(modality_of[i] == m for i in train_ids)
        n_v = sum(modality_of[i] == m for i in val_ids)
        log(f"{m}: {n_t} train / {n_v} validation images")
    share = None
    if len(modalities) > 1:
        share = {k: float(v) for k, v in (kv.split(":") for kv in a.share.split(","))}
        share = {k: v for k, v in share.items() if k in modalities}
    settings_path = a.out.with_suffix(".json")
    if a.levels_only:
        from sciconv._atomic import atomic_output

        old = json.loads(settings_path.read_text())
        levels = training_levels(a.data, train_ids, transform, norm)
        old.update(levels)
        with atomic_output(settings_path, overwrite=True) as tmp:
            tmp.write_text(json.dumps(old, indent=2) + "\n")
        log(f"{levels} -> {settings_path}")
        return
    workdir = Path(f"/tmp/sciconv_nuclei_{a.target}_{a.filters}_{a.seed}")
    workdir.mkdir(parents=True, exist_ok=True)

    pool = None
    if not a.tune_only:
        # data and sampler processes first: nothing here imports Keras (see start_workers)
        if a.packed is not None:
            images, labels, packed_meta = load_packed(a.packed, train_ids)
            if packed_meta["transform"] != transform:
                p.error(f"{a.packed} was packed with input transform {packed_meta['transform']}")
            if packed_meta.get("normalization", NORMALIZATION) != norm:
                p.error(f"{a.packed} was packed with normalization {packed_meta['normalization']}")
        else:
            images, labels = [], []
            for i in train_ids:
                img, lab = read_pair(a.data, i, transform)
                images.append(normalize(img, norm))
                labels.append(lab)
        sampler = PatchSampler(
            images,
            labels,
            patch=a.patch,
            target=a.target,
            seed=a.seed,
            groups=[modality_of[i] for i in train_ids],
            group_share=share,
            blur=a.blur,
        )
        pool = start_workers(sampler, a.workers)

    import keras

    from sciconv._atomic import atomic_output
    from sciconv.models import get_metadata, set_metadata

    keras.utils.set_random_seed(a.seed)

    if a.tune_only:
        model = keras.models.load_model(a.out, compile=False)
        settings = json.loads(settings_path.read_text())
        num_classes = settings["num_classes"]
        depth = settings["depth"]
        train_seconds = settings["train_seconds"]
        steps, calibration = settings["steps"], settings.get("warmup_steps", 0)
        precision = settings.get("precision")
    else:
        precision = a.precision
        if precision == "auto":
            if keras.backend.backend() == "jax":
                import jax

                gpu = jax.default_backend() == "gpu"
                precision = "mixed_bfloat16" if gpu else "float32"
            else:
                flags = open("/proc/cpuinfo").read() if Path("/proc/cpuinfo").exists() else ""
                bf16 = "avx512_bf16" in flags or "amx_bf16" in flags
                precision = "mixed_bfloat16" if bf16 else "float32"
        keras.mixed_precision.set_global_policy(precision)
        train_model = build_model(num_classes, a.depth, a.filters, channels)
        if a.init is not None:
            init = keras.models.load_model(a.init, compile=False)
            train_model.set_weights(
                widened_weights(init.get_weights(), [w.shape for w in train_model.get_weights()])
            )
            log(f"initialized from {a.init}")
        log(f"model: {train_model.count_params()} parameters, precision {precision}")
        t0 = time.time()
        steps, calibration = a.steps, a.warmup_steps
        if a.time_budget and calibration < 20:
            p.error("--time-budget needs --warmup-steps of 20 or more (they are timed)")
        if calibration:
            # warm-up at a quarter of the learning rate (batches seeded with seed + 1), timed;
            # with --time-budget the cosine schedule then gets as many steps as the rest of the
            # budget holds (the machine's speed decides; nuclei.json records the count, and
            # --steps N --warmup-steps W repeats the run without a budget)
            timer = StepLogger(a.log_every, sync=bool(a.time_budget))
            train_model.compile(
                optimizer=keras.optimizers.Adam(a.lr / 4), loss=ce_dice_loss(num_classes)
            )
            train_model.fit(
                patch_batches(
                    sampler, batch=a.batch, steps=calibration, seed=a.seed + 1, pool=pool
                ),
                epochs=1,
                steps_per_epoch=calibration,
                shuffle=False,
                callbacks=[timer],
                verbose=0,
            )
        if a.time_budget:
            half = calibration // 2
            rate = (calibration - half) / max(timer.times[-1] - timer.times[half - 1], 1e-6)
            left = a.time_budget - (time.time() - t0) - 45.0  # recompile + saving
            steps = max(int(rate * left), 10)
            log(f"warm-up: {rate:.1f} steps/s -> {steps} steps in the remaining budget")
        schedule = keras.optimizers.schedules.CosineDecay(a.lr, steps, alpha=0.02)
        train_model.compile(
            optimizer=keras.optimizers.Adam(schedule), loss=ce_dice_loss(num_classes)
        )
        ds = patch_batches(sampler, batch=a.batch, steps=steps, seed=a.seed, pool=pool)
        ckpt = keras.callbacks.ModelCheckpoint(
            str(workdir / "last.weights.h5"),
            save_weights_only=True,
            save_freq=min(a.checkpoint_every, steps),
        )
        train_model.fit(
            ds,
            epochs=1,
            steps_per_epoch=steps,
            shuffle=False,
            callbacks=[ckpt, StepLogger(a.log_every)],
            verbose=0,
        )
        if pool is not None:
            pool.close()
        train_seconds = time.time() - t0
        log(f"trained {steps} steps in {train_seconds:.0f} s")
        keras.mixed_precision.set_global_policy("float32")
        model = build_model(num_classes, a.depth, a.filters, channels)
        model.set_weights(train_model.get_weights())
        if a.average_with is not None:
            other = keras.models.load_model(a.average_with, compile=False)
            model.set_weights(averaged_weights(model.get_weights(), other.get_weights()))
            log(f"weights averaged with {a.average_with}")
        depth = a.depth

    if a.tune_only:  # the training path has them loaded
        labels = [read_pair(a.data, i)[1] for i in train_ids]
    diameters = object_diameters([x for i, x in zip(train_ids, labels) if "~hed" not in i])
    levels = training_levels(a.data, train_ids, transform, norm)
    divisor = int(get_metadata(model).get("divisor", 2**depth))
    vids = [] if a.no_tune else (val_ids[: a.max_val] if a.max_val else val_ids)
    t0 = time.time()
    probs, labs = [], []
    for i in vids:
        img, lab = read_pair(a.data, i, transform)
        probs.append(predict_prob(model, img, divisor, norm))
        labs.append(lab)
    log(f"predicted {len(vids)} validation images in {time.time() - t0:.0f} s")
    per_modality = {}
    if a.no_tune:
        results, postprocess, best_ap = [], {}, None
    else:
        results = tune(probs, labs, num_classes)
        best_ap, best_kw, best_aps = results[0]
        log(f"post-processing: best AP@0.5 {best_ap:.4f} with {best_kw}")
        for ap, kw, _ in results[:5]:
            log(f"  {ap:.4f} {kw}")
        postprocess = dict(best_kw)
        for m in modalities:
            sel = [k for k, i in enumerate(vids) if modality_of[i] == m]
            if sel:
                per_modality[m] = float(np.mean([best_aps[k] for k in sel]))
    log(f"validation AP@0.5 per modality: {per_modality}")
    set_metadata(
        model,
        task="segmentation",
        normalization=norm,
        postprocess=postprocess,
        divisor=divisor,
        input_channels=channels,
        input_transform=for_inference(transform),
        description=f"sciconv pretrained nuclei segmenter (DSB2018 {'+'.join(modalities)}, "
        f"{'bg/interior/boundary' if num_classes == 3 else 'bg/nucleus'})",
    )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(a.out, overwrite=True if a.tune_only else a.overwrite) as tmp:
        model.save(tmp)
    settings = {
        "seed": a.seed,
        "steps": steps,
        "warmup_steps": calibration,
        "batch": a.batch,
        "patch": a.patch,
        "depth": depth,
        "filters": a.filters,
        "target": a.target,
        "num_classes": num_classes,
        "lr": a.lr,
        "loss": "categorical cross-entropy + soft Dice (foreground classes)",
        "augmentation": "D4, zoom 0.7-1.4, gamma 0.6-1.6, contrast 0.6-1.4, offset +-0.15, noise"
        + (f", blur {a.blur:g} of patches (sigma 0.5-2.5 px)" if a.blur else ""),
        "stain_copies": a.stain_copies,
        "normalization": norm,
        "input": "rgb" if channels == 3 else "gray",
        "postprocess": postprocess,
        "postprocess_function": "sciconv.postprocess.instances",
        "val_ap50": best_ap,
        "val_ap50_per_modality": per_modality,
        "modalities": list(modalities),
        "modality_share": share,
        "input_transform": for_inference(transform),
        # applied by sciconv.models.pretrained on top of "normalization": hot pixels clipped
        "normalization_at_inference": {"clip": True},
        "init": None if a.init is None else str(a.init.name),
        "init_settings": init_settings(a.init),
        "average_with": None if a.average_with is None else str(a.average_with.name),
        "n_train": len(train_ids),
        "object_diameter_px": diameters,
        **levels,
        "n_val": len(vids),
        "train_seconds": round(train_seconds, 1),
        "tuning_top5": [{"ap50": ap, **kw} for ap, kw, _ in results[:5]],
        "data": f"DSB2018 stage 1 train (fixed), modalities {','.join(modalities)}, minus the "
        "validation division (fluo: data/real/nuclei_val_ids.txt; others: the same sha256 rule)",
        "platform": f"{platform.machine()} {platform.processor()}",
        "backend": f"{keras.backend.backend()} {_backend_version()}",
        "device": _device_name(),
        "precision": precision,
        "time_budget": a.time_budget,
        "workers": a.workers,
        "keras": keras.__version__,
    }
    if a.tune_only:
        old = json.loads(settings_path.read_text())
        old.update(
            {
                k: settings[k]
                for k in (
                    "postprocess",
                    "postprocess_function",
                    "val_ap50",
                    "val_ap50_per_modality",
                    "input_transform",
                    "n_val",
                    "tuning_top5",
                    "object_diameter_px",
                    "object_level",
                    "object_snr",
                )
            }
        )
        settings = old
    with atomic_output(settings_path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(settings, indent=2) + "\n")
    log(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.2f} MB) and {settings_path}")


if __name__ == "__main__":
    main()
