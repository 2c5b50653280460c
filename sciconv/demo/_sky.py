"""Part 3 of the demo: source detection on a sky field with a WCS, matched to its truth catalog."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sciconv.demo._output import Writer
from sciconv.demo._settings import DemoSettings
from sciconv.errors import DatasetError


def _source_mask(shape, truth, *, psf_fwhm: float = 3.0) -> np.ndarray:
    """Discs at the truth positions: PSF-sized for stars, r_eff-sized for galaxies."""
    mask = np.zeros(shape, dtype=np.int32)
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    for row in truth:
        r = psf_fwhm
        if "r_eff" in truth.colnames and str(row["kind"]) == "galaxy":
            r = max(psf_fwhm, float(row["r_eff"]))
        x, y = float(row["x"]), float(row["y"])
        y0, y1 = max(0, int(y - r - 1)), min(shape[0], int(y + r + 2))
        x0, x1 = max(0, int(x - r - 1)), min(shape[1], int(x + r + 2))
        sub = (yy[y0:y1] - y) ** 2 + (xx[:, x0:x1] - x) ** 2 <= r * r
        mask[y0:y1, x0:x1][sub] = 1
    return mask


def _sky_training_set(settings: DemoSettings, patch: int = 64, batch: int = 16):
    """A tf.data set of (image patch, source mask) from a field simulated with another seed."""
    import tensorflow as tf

    from sciconv import preprocess, simulate
    from sciconv.augment import d4_transform
    from sciconv.datasets.patches import sample_patches

    h, w = settings.sky_train_shape
    scale = (h * w) / (2048 * 2048)  # twice the bundled field's source density
    image, _, truth = simulate.sky_field(
        (h, w),
        seed=settings.seed + 101,
        n_stars=max(20, int(400 * scale * 2)),
        n_galaxies=max(10, int(250 * scale * 2)),
    )
    mask = _source_mask((h, w), truth)
    # zscale limits follow the sky and its noise, not the brightest sources, so a field with
    # more or fewer bright sources than the training field is normalized the same way (the
    # default percentile spec is not: the detector then sees noise as sources)
    spec = {"method": "zscale"}
    x = preprocess.normalize_spec(image[..., None], spec)
    rng = np.random.default_rng(settings.seed)
    n = settings.sky_steps * batch
    # half of the patches are centred on a source: sources cover about 1 % of the sky
    # centred on catalogue positions (not on source pixels, which would favour big galaxies)
    centers = np.column_stack([np.asarray(truth["y"]), np.asarray(truth["x"])])
    xp, yp = sample_patches(
        x, mask, size=patch, count=n, fg_fraction=0.5, rng=rng, centers=centers, jitter=patch / 4
    )
    k = rng.integers(0, 4, n)  # the four rotations of D4 (augment.d4_transform's k < 4)
    xp = np.stack([d4_transform(a, r) for a, r in zip(xp, k)])
    yp = np.stack([d4_transform(b, r, axes=(0, 1)) for b, r in zip(yp, k)])
    ds = tf.data.Dataset.from_tensor_slices((xp.astype(np.float32), yp.astype(np.int32)))
    ds = ds.shuffle(n, seed=settings.seed).batch(batch).repeat()
    ds.normalization = spec
    ds.task = "segmentation"
    ds.class_names = ["sky", "source"]
    return ds


def run_sky(paths, settings: DemoSettings, w: Writer, log) -> dict[str, Any]:
    import keras
    from astropy.table import Table

    from sciconv import inference, io, models, postprocess, training, viz

    sky_dir = paths["sky"]
    field = next(
        (
            sky_dir / n
            for n in ("field.fits", "field.fits.fz", "field.fits.gz")
            if (sky_dir / n).exists()
        ),
        None,
    )
    if field is None or not (sky_dir / "truth.ecsv").exists():
        raise DatasetError(
            "the sky part needs field.fits (or .fits.fz) and truth.ecsv", path=sky_dir
        )
    img = io.read(field)
    truth = Table.read(sky_dir / "truth.ecsv", encoding="utf-8")
    if settings.sky_crop and min(img.shape[:2]) > settings.sky_crop:
        c = settings.sky_crop
        img = img.cutout(0, c, 0, c)
        keep = (truth["x"] < c - 0.5) & (truth["y"] < c - 0.5)
        truth = truth[keep]
    log(
        f"[sky] field {field.name} {img.shape[:2]}, {len(truth)} truth sources, "
        f"WCS {img.wcs is not None}"
    )

    train = _sky_training_set(settings)
    model = models.segmenter(
        (None, None, 1),
        num_classes=2,
        depth=settings.sky_depth,
        filters=settings.sky_filters,
        batch_norm=False,  # measured: with BatchNorm the detector floods the sky with false sources
        name="sky_detector",
    )
    # Sources cover about 1 % of the sky: plain cross-entropy learns "mostly sky" quickly, while
    # the Dice term of the default segmentation loss over-predicts sources early in training.
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    training.fit(
        model,
        train,
        epochs=settings.sky_epochs,
        steps_per_epoch=settings.sky_steps,
        workdir=w.out / "runs" / "sky",
        tensorboard=False,
        overwrite=w.overwrite,
        seed=settings.seed,
        verbose=2,
    )
    w.model(model, "sky_detector.keras")
    t0 = time.perf_counter()
    prob = inference.predict_tiled(model, img, tile=256, overlap="auto", progress=True)
    labels = postprocess.instances(prob, threshold=0.5, min_size=4)
    table = postprocess.measure(labels, intensity=img, wcs=img.wcs)
    dt = time.perf_counter() - t0
    scale = 0.2
    if img.wcs is not None:
        from astropy.wcs.utils import proj_plane_pixel_scales

        scale = float(np.mean(proj_plane_pixel_scales(img.wcs)) * 3600.0)
    sky = "ra" in table.colnames and "ra" in truth.colnames
    match = viz.match_catalogs(truth, table, max_separation=3.0 * scale if sky else 3.0, sky=sky)
    flux = np.asarray(truth["flux"], dtype=float)
    bright = flux >= np.median(flux)
    found = np.zeros(len(truth), dtype=bool)
    found[match["ref_index"]] = True
    offset = float(np.median(match["separation"])) if match["separation"].size else float("nan")
    log(
        f"[sky] {len(table)} detections in {dt:.1f} s; completeness {match['completeness']:.3f} "
        f"(bright half {found[bright].mean():.3f}), purity {match['purity']:.3f}, "
        f"median offset {offset:.3f} {'arcsec' if sky else 'px'}"
    )
    w.products(
        "sky_field",  # sky_field_prob.fits: the class cube (sky, source); sky_field_labels.fits
        prob=prob,
        labels=labels,
        like=img,
        class_names=models.get_metadata(model).get("class_names"),
        model="sky_detector.keras",
        params={"tile": 256, "overlap": "auto", "threshold": 0.5, "min_size": 4},
        history=["sciconv demo: source detection"],
    )
    w.catalog(table, "sky_catalog.ecsv")
    fig = viz.outlines(img, labels, color="cyan", stretch="asinh", title="detected sources (cyan)")
    ax = fig.axes[0]
    ax.scatter(truth["x"], truth["y"], s=40, facecolors="none", edgecolors="red", lw=0.6,
               transform=ax.transData, label="truth")  # fmt: skip
    ax.legend(loc="upper right", fontsize=8)
    figs = {"field": w.figure(fig, "sky_field.png")}
    fig = viz.compare_catalogs(truth, table, max_separation=3.0 * scale if sky else 3.0, sky=sky,
                               names=("truth", "sciconv"))  # fmt: skip
    figs["catalog"] = w.figure(fig, "sky_catalog.png")
    return {
        "n_truth": len(truth),
        "n_detected": len(table),
        "completeness": float(match["completeness"]),
        "completeness_bright": float(found[bright].mean()) if bright.any() else float("nan"),
        "purity": float(match["purity"]),
        "median_offset": offset,
        "offset_unit": "arcsec" if sky else "pixel",
        "has_radec": sky,
        "seconds": dt,
        "figures": figs,
    }
