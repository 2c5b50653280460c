"""Data of the pretrained nuclei model: DSB2018 division, input transform, packing, patch sampling.

Split out of ``tools/train_pretrained_nuclei.py`` (which re-exports every name used elsewhere, so
``benchmarks/real_nuclei.py`` keeps finding ``in_val_division`` there). Nothing here imports Keras:
the sampler processes fork before the training script imports it.

Two model inputs (``--input`` of the training script, :data:`INPUTS`):

``gray``  ``{"to_gray": true, "invert": "auto"}``: grey = mean of R, G, B, one channel, bright
          background flipped (the shipped model);
``rgb``   ``{"to_rgb": true, "invert": "auto"}``: three channels (grey images replicated), the
          flip decided on the grey mean alike and applied to all channels about one maximum, and
          one normalization over the three channels together (:data:`RGB_NORMALIZATION`), so the
          H&E hue (purple haematoxylin nuclei, pink eosin cytoplasm) reaches the model.

Each image is normalized whole with the spec the model records, so what
``sciconv.inference.predict_instances`` gives the model is what the training fed it (tested in
``tests/test_input_rgb.py``).
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage as ndi

#: The normalization of the grey model (the sciconv default: percentile 1-99.8 over the image).
NORMALIZATION = {"method": "percentile", "low": 1.0, "high": 99.8}
#: The normalization of the RGB model: the same percentiles over the three channels together,
#: so the relative brightness of R, G and B (the hue) survives.
RGB_NORMALIZATION = {**NORMALIZATION, "per_channel": False}
#: The model inputs: the input transform each records (``gray``: the shipped model).
INPUTS = {
    "gray": {"to_gray": True, "invert": "auto"},
    # dark-background (fluorescence) images reach the model grey, as all its fluorescence
    # training images are: a fluorescence image saved in colour is then read right
    "rgb": {"to_rgb": True, "invert": "auto", "dark_to_gray": True},
}
#: Keys a trained model's input transform gets for inference only (its training images are
#: packed as integers, which a restored plateau is not): over-exposed nuclei's flat tops get a
#: profile back (``sciconv.preprocess.restore_saturated``; 5 of the 99 validation images have
#: plateaus that deep, the AP of none falls).
AT_INFERENCE = {"restore_saturated": True}


def for_inference(transform: dict | None) -> dict | None:
    """The input transform a trained model records: the training one plus :data:`AT_INFERENCE`."""
    return None if transform is None else {**transform, **AT_INFERENCE}


def for_training(transform: dict | None) -> dict | None:
    """The input transform training images get: a recorded one without :data:`AT_INFERENCE`."""
    if transform is None:
        return None
    return {k: v for k, v in transform.items() if k not in AT_INFERENCE}


#: What the multi-modality grey model records (kept for older callers).
INPUT_TRANSFORM = INPUTS["gray"]
MODALITIES = ("fluo", "color", "gray_bright")
VAL_FRACTION = 0.15  # the sha256 rule of data/real/README.md


def input_transform_for(name: str, modalities) -> dict | None:
    """The input transform of ``--input name``: None for a grey fluorescence-only model (the R
    channel as it is, as the first fluorescence model was trained)."""
    if name == "gray" and tuple(modalities) == ("fluo",):
        return None
    return INPUTS[name]


def channels_of(transform) -> int:
    """Input channels of a model trained with ``transform`` (3 for ``to_rgb``, else 1)."""
    return 3 if transform and transform.get("to_rgb") else 1


def normalization_for(transform) -> dict:
    """The normalization spec a model trained with ``transform`` records and trains with."""
    return RGB_NORMALIZATION if channels_of(transform) == 3 else NORMALIZATION


# ----------------------------------------------------------------------------- division
def in_val_division(image_id: str) -> bool:
    """The sha256 rule: sha256(id), its first 8 hex digits as a fraction of 2**32, below 0.15."""
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


# ----------------------------------------------------------------------------- images
def transform_image(img: np.ndarray, transform) -> np.ndarray:
    """A DSB PNG's pixels as the model takes them, before normalization: ``transform=None``: the
    R channel (the grey fluorescence image), otherwise
    ``sciconv.preprocess.apply_input_transform(rgb, transform)`` as (H, W) for a grey model and
    (H, W, 3) for an RGB one (float32)."""
    if transform is None:
        return img[..., 0] if img.ndim == 3 else img
    from sciconv.preprocess import apply_input_transform

    out = apply_input_transform(img[..., :3] if img.ndim == 3 else img, transform)
    return out if channels_of(transform) == 3 else out[..., 0]


def read_pair(dsb: Path, image_id: str, transform=None):
    """(image, labels) of a DSB id (``<id>~hed<k>``: a stain-jittered copy, tools/nuclei_stain.py);
    the image after :func:`transform_image`."""
    base, mark, _ = image_id.partition("~hed")
    img = np.asarray(Image.open(dsb / "images" / f"{base}.png"))
    if mark:
        from nuclei_stain import hed_jitter

        img = hed_jitter(img, image_id)
    lab = tifffile.imread(dsb / "labels" / f"{base}.tif").astype(np.int32)
    return transform_image(img, transform), lab


def normalize(img: np.ndarray, spec=None) -> np.ndarray:
    """The whole-image normalization the model records (``spec``; default :data:`NORMALIZATION`:
    percentile 1-99.8, no clipping): (H, W) stays (H, W), (H, W, 3) stays (H, W, 3)."""
    from sciconv.preprocess import normalize_spec

    x = img[..., None] if img.ndim == 2 else img
    out = normalize_spec(x.astype(np.float32), NORMALIZATION if spec is None else spec)
    out = np.asarray(out, dtype=np.float32)
    return out[..., 0] if img.ndim == 2 else out


def _packed_scale(transform) -> float:
    # grey = a mean of three uint8 channels: 3 * grey is an exact integer; RGB stays integer (the
    # flip is about the largest channel value, an integer too)
    return 1.0 if channels_of(transform) == 3 else 3.0


def pack(dsb: Path, ids, transform, out: Path) -> None:
    """Write the training images of ``ids`` into one compressed ``.npz`` (about a third of the
    PNG folder) so the training can run on a machine that has neither the DSB folder nor astropy
    (e.g. a GPU box with Keras on JAX): ``3 * grey`` after ``transform`` as uint16 (exact: grey is
    a mean of three uint8 channels) or the transformed RGB as uint8 (exact; one channel where
    R = G = B), the normalization limits sciconv computes for it (scaled alike; one pair for the
    three RGB channels, which are normalized together), and the uint16 labels.
    :func:`load_packed` gives back what :func:`read_pair` + :func:`normalize` give, to float32
    rounding (checked here)."""
    from sciconv._atomic import atomic_output
    from sciconv.preprocess import limits_from_spec

    spec, scale = normalization_for(transform), _packed_scale(transform)
    dtype = np.uint8 if scale == 1.0 else np.uint16
    arrays = {}
    for i in ids:
        img, lab = read_pair(dsb, i, transform)
        x = img[..., None] if img.ndim == 2 else img
        lim = limits_from_spec(x.astype(np.float32), spec)
        scaled = np.rint(scale * img.astype(np.float64))
        assert np.abs(scaled - scale * img).max() < 1e-3, i
        assert scaled.min() >= 0 and scaled.max() <= np.iinfo(dtype).max, i
        grey = scaled.ndim == 3 and bool((scaled == scaled[..., :1]).all())
        arrays[f"img/{i}"] = (scaled[..., 0] if grey else scaled).astype(dtype)
        arrays[f"lim/{i}"] = scale * np.array([lim.vmin[0], lim.vmax[0]], np.float64)
        arrays[f"lab/{i}"] = lab.astype(np.uint16)
        x = normalize_packed(_unpacked(arrays[f"img/{i}"], img.ndim), arrays[f"lim/{i}"])
        assert np.allclose(x, normalize(img, spec), atol=1e-4), i
    meta = {"ids": list(ids), "transform": transform, "normalization": spec}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with atomic_output(out, overwrite=True) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def _unpacked(stored: np.ndarray, ndim: int) -> np.ndarray:
    """A packed image with the dimensions the input transform gives: an RGB-input image whose
    three channels are equal (a grey image replicated by ``to_rgb``) is packed as one channel,
    which keeps the RGB pack inside the GPU machine's carry limit."""
    return np.repeat(stored[..., None], 3, axis=-1) if stored.ndim < ndim else stored


def normalize_packed(scaled: np.ndarray, lim: np.ndarray) -> np.ndarray:
    """A packed image normalized with its packed limits (float32)."""
    return ((scaled.astype(np.float32) - lim[0]) / max(float(lim[1] - lim[0]), 1e-6)).astype(
        np.float32
    )


def load_packed(path: Path, ids):
    """(normalized images, labels, meta) of ``ids`` from a :func:`pack` file."""
    z = np.load(path)
    meta = json.loads(bytes(z["meta"]).decode())
    missing = sorted(set(ids) - set(meta["ids"]))
    if missing:
        raise SystemExit(f"{path} lacks {len(missing)} training ids, e.g. {missing[:3]}")
    ndim = 3 if channels_of(meta["transform"]) == 3 else 2
    images = [normalize_packed(_unpacked(z[f"img/{i}"], ndim), z[f"lim/{i}"]) for i in ids]
    labels = [z[f"lab/{i}"].astype(np.int32) for i in ids]
    return images, labels, meta


#: the random zoom of the training patches (log-uniform): nuclei are seen at these times their size
ZOOM = (0.7, 1.4)


def object_diameters(labels, zoom=ZOOM) -> dict:
    """Sizes of the training nuclei (equivalent diameter, px): the median over all nuclei and
    the 10th / 50th / 90th percentiles of the per-image medians (what ``scale=`` in
    ``predict_instances`` should bring a user's nuclei to), and ``segments_well_px``, the
    sizes the model saw in training between those percentiles with the random ``zoom`` (p10 x
    zoom[0], p90 x zoom[1]): ``predict_instances(..., object_size="auto")`` resamples an image
    whose nuclei come out outside it."""
    from sciconv.postprocess import equivalent_diameters

    every, per_image = [], []
    for lab in labels:
        d = equivalent_diameters(lab)
        if d.size:
            every.append(d)
            per_image.append(float(np.median(d)))
    p10, p50, p90 = np.percentile(per_image, [10, 50, 90])
    return {
        "median_nucleus": round(float(np.median(np.concatenate(every))), 1),
        "image_median_p10": round(float(p10), 1),
        "image_median_p50": round(float(p50), 1),
        "image_median_p90": round(float(p90), 1),
        "segments_well_px": [round(float(p10) * zoom[0], 1), round(float(p90) * zoom[1], 1)],
    }


#: ``faint_below`` is this share of the faintest training image's median object level
FAINT_SHARE = 0.75
#: ``noisy_below`` is this share of the noisiest training image's: below it, smoothing gained on
#: average on the bundled images in low light (benchmarks/README.md, real_nuclei_brightness.py)
NOISY_SHARE = 0.5


def object_levels(images, labels) -> dict:
    """Brightness and noise of the training nuclei in the normalized images the model took, for
    ``predict_instances(..., brightness="auto", denoise="auto")``: per image the median object
    level (:func:`sciconv.inference.object_level`) and how far it stands above the pixel noise
    (:func:`sciconv.inference.object_snr`); over images ``typical`` (the median), the minimum and
    2nd percentile, and ``faint_below`` / ``noisy_below``, :data:`FAINT_SHARE` /
    :data:`NOISY_SHARE` of the minimum (an image whose nuclei come out below is segmented
    again). Returns ``{"object_level": ..., "object_snr": ...}``."""
    from sciconv.inference import object_level, object_snr

    def summary(values, low_key, share):
        values = np.array([v for v in values if v is not None and np.isfinite(v)])
        p2, p50 = np.percentile(values, [2, 50])
        low = float(values.min())
        return {
            "typical": round(float(p50), 3),
            low_key: round(share * low, 3),
            "image_median_min": round(low, 3),
            "image_median_p2": round(float(p2), 3),
        }

    pairs = list(zip(images, labels))
    return {
        "object_level": summary(
            [object_level(lab, img) for img, lab in pairs], "faint_below", FAINT_SHARE
        ),
        "object_snr": summary(
            [object_snr(lab, img) for img, lab in pairs], "noisy_below", NOISY_SHARE
        ),
    }


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


# ----------------------------------------------------------------------------- patches
#: the sigma range (px, log-uniform) of the out-of-focus augmentation (``PatchSampler(blur=p)``):
#: grey brightfield blurred by sigma 2 lost AP@0.5 0.833 -> 0.231 with the shipped model (QA)
BLUR_SIGMA = (0.5, 2.5)


class PatchSampler:
    """Random augmented patches (numpy), seeded. Images are (H, W) or (H, W, C) (normalized);
    patches come out (patch, patch, C)."""

    def __init__(
        self,
        images,
        labels,
        *,
        patch,
        target,
        seed,
        zoom=ZOOM,
        intensity=True,
        groups=None,
        group_share=None,
        blur=0.0,
    ):
        self.images, self.labels = images, labels
        self.patch, self.target, self.zoom, self.intensity = patch, target, zoom, intensity
        self.blur = float(blur)
        self.rng = np.random.default_rng(seed)
        sizes = np.array([im.shape[0] * im.shape[1] for im in images], dtype=float)
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

    def _crop(self, rng):
        p = self.patch
        i = rng.choice(len(self.images), p=self.p)
        img, lab = self.images[i], self.labels[i]
        img = img[..., None] if img.ndim == 2 else img
        z = 1.0
        if self.zoom[0] != self.zoom[1]:
            z = float(np.exp(rng.uniform(np.log(self.zoom[0]), np.log(self.zoom[1]))))
        src = min(round(p / z), img.shape[0], img.shape[1])
        for _ in range(4):  # prefer patches with some nuclei
            y0 = rng.integers(0, img.shape[0] - src + 1)
            x0 = rng.integers(0, img.shape[1] - src + 1)
            lab_c = lab[y0 : y0 + src, x0 : x0 + src]
            if lab_c.any():
                break
        img_c = img[y0 : y0 + src, x0 : x0 + src]
        if src != p:
            f = p / src
            img_c = ndi.zoom(img_c, (f, f, 1), order=1)[:p, :p]
            lab_c = ndi.zoom(lab_c, f, order=0)[:p, :p]
            if img_c.shape[:2] != (p, p):
                pad = [(0, p - img_c.shape[0]), (0, p - img_c.shape[1])]
                img_c = np.pad(img_c, [*pad, (0, 0)], mode="reflect")
                lab_c = np.pad(lab_c, pad)
        return img_c, lab_c

    def one(self, rng=None):
        rng = self.rng if rng is None else rng
        img_c, lab_c = self._crop(rng)
        k = rng.integers(4)
        img_c, lab_c = np.rot90(img_c, k), np.rot90(lab_c, k)
        if rng.random() < 0.5:
            img_c, lab_c = img_c[:, ::-1], lab_c[:, ::-1]
        x = img_c.astype(np.float32)
        if self.blur and rng.random() < self.blur:
            # out of focus (before the camera's noise): Gaussian, sigma log-uniform in BLUR_SIGMA
            # px; linear, so blurring the normalized, flipped image equals blurring the raw one
            sigma = float(np.exp(rng.uniform(*np.log(BLUR_SIGMA))))
            x = ndi.gaussian_filter(x, (sigma, sigma, 0), mode="reflect")
        if self.intensity:
            # gamma on the [0, 1] part, contrast, offset, noise (the same for every channel,
            # except the noise)
            if rng.random() < 0.5:
                g = float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
                x = np.sign(x) * np.abs(x) ** g
            x = x * rng.uniform(0.6, 1.4) + rng.uniform(-0.15, 0.15)
            if rng.random() < 0.3:
                x = x + rng.normal(0, rng.uniform(0.0, 0.08), x.shape).astype(np.float32)
        return np.ascontiguousarray(x), make_target(np.ascontiguousarray(lab_c), self.target)

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
