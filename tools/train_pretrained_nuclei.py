"""Train the pretrained nuclei segmenter shipped as ``sciconv/pretrained/nuclei.keras``.

Reproducible: a fixed seed, a fixed train/validation division of the DSB2018 images
(``data/real/nuclei_val_ids.txt``: every ``fluo`` id whose sha256 puts it in the first 15 %,
written by ``data/real/make_real_data.py``; the same rule for the other modalities), and every
setting written next to the weights in ``nuclei.json``.

The shipped model (all three DSB modalities, depth 3, 24 filters, 200 warm-up + 45,943 cosine
steps of batch 16) was trained on one H100 GPU with Keras on JAX in 8.5 minutes
(``tools/train_pretrained_gpu.sh``, which also trained a depth-4 alternative side by side). Any
Keras backend runs this script: the patches come from a plain numpy generator fed by a pool of
sampler processes (no tf.data). Pack the training images once where the DSB folder is (so a GPU
machine needs neither the folder nor astropy), train, then tune the post-processing here:

    python tools/train_pretrained_nuclei.py --modalities fluo,color,gray_bright \
        --pack .gpu/dsb_train_all.npz && cp ../shared/data/dsb2018_train/index.csv .gpu/
    KERAS_BACKEND=jax python tools/train_pretrained_nuclei.py --data .gpu \
        --packed .gpu/dsb_train_all.npz --modalities fluo,color,gray_bright --seed 0 \
        --batch 16 --depth 3 --filters 24 --steps 45943 --workers 7 --no-tune \
        --out /tmp/gpu/nuclei.keras
    python tools/train_pretrained_nuclei.py --modalities fluo,color,gray_bright --tune-only \
        --out /tmp/gpu/nuclei.keras

``--time-budget SECONDS`` replaces ``--steps``: the warm-up is timed and the cosine schedule gets
as many steps as the budget holds (how the shipped count was set). The same command without
``KERAS_BACKEND=jax`` trains with TensorFlow on a CPU (about 13 hours on 2 cores for that many
steps; ``--steps 4000 --batch 8`` takes about 35 minutes). The earlier fluorescence-only model
came from ``--modalities fluo --steps 4000 --batch 8 --filters 20 --warmup-steps 0``.

With more than the ``fluo`` modality every image goes through
``sciconv.preprocess.apply_input_transform(rgb, INPUT_TRANSFORM)`` (grey = mean of R, G, B; bright
background inverted, so nuclei are bright as in fluorescence; fluorescence images come out
unchanged), the model records ``input_transform`` in its metadata, the validation part of the
``color`` and ``gray_bright`` images is picked by the same sha256 rule as the fluorescence one
(14 + 3 images, never trained on), patches are drawn per modality with the ``--share`` fractions
(oversampling the minorities), and ``nuclei.json`` gets the validation AP@0.5 per modality.

What it does
------------
1. Loads the ``--modalities`` images of ``../shared/data/dsb2018_train`` minus the validation ids,
   normalizes each whole image (percentile 1-99.8, the sciconv default), and samples random
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
changed).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage as ndi

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NORMALIZATION = {"method": "percentile", "low": 1.0, "high": 99.8}
#: What the multi-modality model records: grey = mean of R, G, B; brightfield (bright background)
#: flipped so nuclei are bright, as in fluorescence (fluorescence images pass through unchanged).
INPUT_TRANSFORM = {"to_gray": True, "invert": "auto"}
MODALITIES = ("fluo", "color", "gray_bright")
VAL_FRACTION = 0.15  # the sha256 rule of data/real/README.md


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


# ----------------------------------------------------------------------------- data
def in_val_division(image_id: str) -> bool:
    """The sha256 rule: sha256(id), its first 8 hex digits as a fraction of 2**32, below 0.15."""
    import hashlib

    return int(hashlib.sha256(image_id.encode()).hexdigest()[:8], 16) / 2**32 < VAL_FRACTION


def load_split(dsb: Path, val_ids_file: Path, modalities=("fluo",), *, with_modality=False):
    """Train / validation ids. ``fluo``: validation = ``val_ids_file``; other modalities: the
    same sha256 rule applied to their ids. ``with_modality`` also returns ``{id: modality}``."""
    rows = [r for r in csv.DictReader(open(dsb / "index.csv")) if r["modality"] in modalities]
    val_ids = set(val_ids_file.read_text().split())

    def is_val(r):
        return r["id"] in val_ids if r["modality"] == "fluo" else in_val_division(r["id"])

    train = sorted(r["id"] for r in rows if not is_val(r))
    val = sorted(r["id"] for r in rows if is_val(r))
    if with_modality:
        return train, val, {r["id"]: r["modality"] for r in rows}
    return train, val


def read_pair(dsb: Path, image_id: str, transform=None):
    """(image, labels). ``transform=None``: the R channel (the grey fluorescence image);
    otherwise ``sciconv.preprocess.apply_input_transform(rgb, transform)`` as (H, W) float32."""
    base, mark, _ = image_id.partition("~hed")  # a stain-jittered copy (tools/nuclei_stain.py)
    img = np.asarray(Image.open(dsb / "images" / f"{base}.png"))
    if mark:
        from nuclei_stain import hed_jitter

        img = hed_jitter(img, image_id)
    if transform is None:
        img = img[..., 0] if img.ndim == 3 else img
    else:
        from sciconv.preprocess import apply_input_transform

        img = apply_input_transform(img[..., :3] if img.ndim == 3 else img, transform)[..., 0]
    lab = tifffile.imread(dsb / "labels" / f"{base}.tif").astype(np.int32)
    return img, lab


def pack(dsb: Path, ids, transform, out: Path) -> None:
    """Write the training images of ``ids`` into one compressed ``.npz`` (about a third of the
    PNG folder) so the training can run on a machine that has neither the DSB folder nor astropy
    (e.g. a GPU box with Keras on JAX): ``3 * grey`` after ``transform`` as uint16 (exact: grey is
    a mean of three uint8 channels), the normalization limits sciconv computes for it (scaled by
    3), and the uint16 labels. :func:`load_packed` gives back what :func:`read_pair` +
    :func:`normalize` give, to float32 rounding (checked here)."""
    from sciconv._atomic import atomic_output
    from sciconv.preprocess import limits_from_spec

    arrays = {}
    for i in ids:
        img, lab = read_pair(dsb, i, transform)
        lim = limits_from_spec(img[..., None].astype(np.float32), NORMALIZATION)
        scaled = np.rint(3.0 * img.astype(np.float64))
        assert np.abs(scaled - 3.0 * img).max() < 1e-3 and scaled.max() < 2**16, i
        arrays[f"img/{i}"] = scaled.astype(np.uint16)
        arrays[f"lim/{i}"] = 3.0 * np.array([lim.vmin[0], lim.vmax[0]], np.float64)
        arrays[f"lab/{i}"] = lab.astype(np.uint16)
        x = _normalize_packed(arrays[f"img/{i}"], arrays[f"lim/{i}"])
        assert np.allclose(x, normalize(img), atol=1e-4), i
    meta = {"ids": list(ids), "transform": transform, "normalization": NORMALIZATION}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with atomic_output(out, overwrite=True) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def _normalize_packed(scaled: np.ndarray, lim: np.ndarray) -> np.ndarray:
    return ((scaled.astype(np.float32) - lim[0]) / max(float(lim[1] - lim[0]), 1e-6)).astype(
        np.float32
    )


def load_packed(path: Path, ids):
    """(normalized images, labels) of ``ids`` from a :func:`pack` file."""
    z = np.load(path)
    meta = json.loads(bytes(z["meta"]).decode())
    missing = sorted(set(ids) - set(meta["ids"]))
    if missing:
        raise SystemExit(f"{path} lacks {len(missing)} training ids, e.g. {missing[:3]}")
    images = [_normalize_packed(z[f"img/{i}"], z[f"lim/{i}"]) for i in ids]
    labels = [z[f"lab/{i}"].astype(np.int32) for i in ids]
    return images, labels, meta


def object_diameters(labels) -> dict:
    """Sizes of the training nuclei (equivalent diameter, px): the median over all nuclei and
    the 10th / 50th / 90th percentiles of the per-image medians (what ``scale=`` in
    ``predict_instances`` should bring a user's nuclei to)."""
    every, per_image = [], []
    for lab in labels:
        areas = np.bincount(np.asarray(lab).ravel())[1:]
        d = np.sqrt(4.0 * areas[areas > 0] / np.pi)
        if d.size:
            every.append(d)
            per_image.append(float(np.median(d)))
    p10, p50, p90 = np.percentile(per_image, [10, 50, 90])
    return {
        "median_nucleus": round(float(np.median(np.concatenate(every))), 1),
        "image_median_p10": round(float(p10), 1),
        "image_median_p50": round(float(p50), 1),
        "image_median_p90": round(float(p90), 1),
    }


def normalize(img: np.ndarray) -> np.ndarray:
    """The sciconv default normalization (percentile 1-99.8 over the whole image, no clipping)."""
    from sciconv.preprocess import normalize_spec

    out = normalize_spec(img[..., None].astype(np.float32), NORMALIZATION)[..., 0]
    return np.asarray(out, dtype=np.float32)


def make_target(lab: np.ndarray, target: str, touch: int = 2) -> np.ndarray:
    """0 background / 1 nucleus, or 0 / 1 interior / 2 boundary (int32).

    ``boundary``: the one-pixel inner boundary of every nucleus (``find_boundaries(mode="inner")``).
    ``touching``: that, plus every nucleus pixel within ``touch`` pixels (chessboard) of another
    nucleus, so touching nuclei are separated by a clear band the interior seeds cannot cross.
    Both are :func:`sciconv.datasets.boundary_target` (numpy only: no TensorFlow is imported).
    """
    if target not in ("boundary", "touching"):
        return (lab > 0).astype(np.int32)
    from sciconv.datasets.patches import boundary_target

    return boundary_target(lab, touch=touch if target == "touching" else 0).astype(np.int32)


class PatchSampler:
    """Random augmented patches (numpy), seeded."""

    def __init__(
        self,
        images,
        labels,
        *,
        patch,
        target,
        seed,
        zoom=(0.7, 1.4),
        intensity=True,
        groups=None,
        group_share=None,
    ):
        self.images, self.labels = images, labels
        self.patch, self.target, self.zoom, self.intensity = patch, target, zoom, intensity
        self.rng = np.random.default_rng(seed)
        sizes = np.array([im.size for im in images], dtype=float)
        self.p = np.sqrt(sizes) / np.sqrt(sizes).sum()  # big images a bit more often
        if groups is not None and group_share:
            # each group (modality) drawn with its share of the patches (oversampling minorities)
            groups = np.asarray(groups)
            p = self.p.copy()
            for g, share in group_share.items():
                sel = groups == g
                if sel.any():
                    p[sel] = self.p[sel] / self.p[sel].sum() * share
            self.p = p / p.sum()

    def one(self, rng=None):
        rng = self.rng if rng is None else rng
        p = self.patch
        i = rng.choice(len(self.images), p=self.p)
        img, lab = self.images[i], self.labels[i]
        z = 1.0
        if self.zoom[0] != self.zoom[1]:
            z = float(np.exp(rng.uniform(np.log(self.zoom[0]), np.log(self.zoom[1]))))
        src = round(p / z)
        src = min(src, img.shape[0], img.shape[1])
        for _ in range(4):  # prefer patches with some nuclei
            y0 = rng.integers(0, img.shape[0] - src + 1)
            x0 = rng.integers(0, img.shape[1] - src + 1)
            lab_c = lab[y0 : y0 + src, x0 : x0 + src]
            if lab_c.any():
                break
        img_c = img[y0 : y0 + src, x0 : x0 + src]
        if src != p:
            f = p / src
            img_c = ndi.zoom(img_c, f, order=1)[:p, :p]
            lab_c = ndi.zoom(lab_c, f, order=0)[:p, :p]
            if img_c.shape != (p, p):
                img_c = np.pad(
                    img_c, [(0, p - img_c.shape[0]), (0, p - img_c.shape[1])], mode="reflect"
                )
                lab_c = np.pad(lab_c, [(0, p - lab_c.shape[0]), (0, p - lab_c.shape[1])])
        k = rng.integers(4)
        img_c, lab_c = np.rot90(img_c, k), np.rot90(lab_c, k)
        if rng.random() < 0.5:
            img_c, lab_c = img_c[:, ::-1], lab_c[:, ::-1]
        x = img_c.astype(np.float32)
        if not self.intensity:
            return np.ascontiguousarray(x)[..., None], make_target(
                np.ascontiguousarray(lab_c), self.target
            )
        # intensity: gamma on the [0, 1] part, contrast, offset, noise
        if rng.random() < 0.5:
            g = float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
            x = np.sign(x) * np.abs(x) ** g
        x = x * rng.uniform(0.6, 1.4) + rng.uniform(-0.15, 0.15)
        if rng.random() < 0.3:
            x = x + rng.normal(0, rng.uniform(0.0, 0.08), x.shape).astype(np.float32)
        return np.ascontiguousarray(x)[..., None], make_target(
            np.ascontiguousarray(lab_c), self.target
        )

    def batch(self, size, rng=None):
        xs, ys = zip(*(self.one(rng) for _ in range(size)))
        return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.int32)


_WORKER_SAMPLER: PatchSampler | None = None


def _worker_init(sampler: PatchSampler) -> None:
    global _WORKER_SAMPLER
    _WORKER_SAMPLER = sampler


def _worker_batch(size: int, seed: int, idx: int):
    return _WORKER_SAMPLER.batch(size, np.random.default_rng([seed, idx]))


def start_workers(sampler: PatchSampler, workers: int):
    """A fork pool of patch samplers, or None for ``workers <= 1``. Started BEFORE Keras is
    imported: forking a process once JAX or TensorFlow runs threads can deadlock."""
    if workers <= 1:
        return None
    import multiprocessing

    return multiprocessing.get_context("fork").Pool(
        workers, initializer=_worker_init, initargs=(sampler,)
    )


def patch_batches(sampler: PatchSampler, *, batch: int, steps: int, seed: int, pool=None):
    """``steps`` augmented batches; batch ``i`` is drawn with ``default_rng([seed, i])``, so the
    patches do not depend on the number of worker processes. A plain generator, so it feeds
    ``model.fit`` on any Keras backend (TensorFlow on a CPU, JAX on a GPU)."""
    from collections import deque

    if pool is None:
        for i in range(steps):
            yield sampler.batch(batch, np.random.default_rng([seed, i]))
        return
    window = 4 * pool._processes  # bounded read-ahead
    pending, nxt = deque(), 0
    while nxt < min(window, steps):
        pending.append(pool.apply_async(_worker_batch, (batch, seed, nxt)))
        nxt += 1
    while pending:
        out = pending.popleft().get()
        if nxt < steps:
            pending.append(pool.apply_async(_worker_batch, (batch, seed, nxt)))
            nxt += 1
        yield out


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
def build_model(num_classes: int, depth: int, filters: int):
    from sciconv.models import segmenter

    return segmenter(
        (None, None, 1),
        num_classes=num_classes,
        depth=depth,
        filters=filters,
        batch_norm=True,
        name="nuclei",
    )


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


def predict_prob(model, img: np.ndarray, divisor: int) -> np.ndarray:
    x = normalize(img)
    h, w = x.shape
    ph, pw = (-h) % divisor, (-w) % divisor
    x = np.pad(x, [(0, ph), (0, pw)], mode="reflect")
    prob = model.predict_on_batch(x[None, ..., None])
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
        "anything beyond fluo uses the input transform " + json.dumps(INPUT_TRANSFORM),
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
    p.add_argument("--init", type=Path, default=None, help="start from these weights (.keras)")
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
    a = p.parse_args(argv)

    num_classes = 2 if a.target == "semantic" else 3
    modalities = tuple(m for m in a.modalities.split(",") if m)
    for m in modalities:
        if m not in MODALITIES:
            p.error(f"unknown modality {m!r}; choose from {MODALITIES}")
    transform = INPUT_TRANSFORM if modalities != ("fluo",) else None
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
    workdir = Path(f"/tmp/sciconv_nuclei_{a.target}_{a.filters}_{a.seed}")
    workdir.mkdir(parents=True, exist_ok=True)

    pool = None
    if not a.tune_only:
        # data and sampler processes first: nothing here imports Keras (see start_workers)
        if a.packed is not None:
            images, labels, packed_meta = load_packed(a.packed, train_ids)
            if packed_meta["transform"] != transform:
                p.error(f"{a.packed} was packed with input transform {packed_meta['transform']}")
        else:
            images, labels = [], []
            for i in train_ids:
                img, lab = read_pair(a.data, i, transform)
                images.append(normalize(img))
                labels.append(lab)
        sampler = PatchSampler(
            images,
            labels,
            patch=a.patch,
            target=a.target,
            seed=a.seed,
            groups=[modality_of[i] for i in train_ids],
            group_share=share,
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
        train_model = build_model(num_classes, a.depth, a.filters)
        if a.init is not None:
            init = keras.models.load_model(a.init, compile=False)
            train_model.set_weights(init.get_weights())
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
        model = build_model(num_classes, a.depth, a.filters)
        model.set_weights(train_model.get_weights())
        depth = a.depth

    if a.tune_only:  # the training path has them loaded
        labels = [read_pair(a.data, i)[1] for i in train_ids]
    diameters = object_diameters([x for i, x in zip(train_ids, labels) if "~hed" not in i])
    divisor = int(get_metadata(model).get("divisor", 2**depth))
    vids = [] if a.no_tune else (val_ids[: a.max_val] if a.max_val else val_ids)
    t0 = time.time()
    probs, labs = [], []
    for i in vids:
        img, lab = read_pair(a.data, i, transform)
        probs.append(predict_prob(model, img, divisor))
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
        normalization=NORMALIZATION,
        postprocess=postprocess,
        divisor=divisor,
        input_channels=1,
        input_transform=transform,
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
        "augmentation": "D4, zoom 0.7-1.4, gamma 0.6-1.6, contrast 0.6-1.4, offset +-0.15, noise",
        "stain_copies": a.stain_copies,
        "normalization": NORMALIZATION,
        "postprocess": postprocess,
        "postprocess_function": "sciconv.postprocess.instances",
        "val_ap50": best_ap,
        "val_ap50_per_modality": per_modality,
        "modalities": list(modalities),
        "modality_share": share,
        "input_transform": transform,
        "init": None if a.init is None else str(a.init.name),
        "n_train": len(train_ids),
        "object_diameter_px": diameters,
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
                )
            }
        )
        settings = old
    with atomic_output(settings_path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(settings, indent=2) + "\n")
    log(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.2f} MB) and {settings_path}")


if __name__ == "__main__":
    main()
