"""Sky regions of many sources: sciconv's batched conversion vs regions' own per-object ``to_sky``,
side by side in one process.

``sciconv.postprocess.to_regions(catalog, wcs=...)`` converts every ellipse to the sky at once
(:func:`sciconv.postprocess._astro.sky_ellipses`: regions 0.12's ``to_sky`` steps on arrays) and
builds regions' own ``EllipseSkyRegion`` objects; the reference is what it did before and what a
user writes by hand: ``EllipsePixelRegion(...).to_sky(wcs)`` object by object. Reported: the
median milliseconds per object over ``--repeats`` runs of each, their ratio, regions' DS9 writer
per object (the same for both), and the largest difference of centres, axes and angles.

    python benchmarks/bench_sky_regions.py                   # 2000 ellipses, 3 repeats
    python benchmarks/bench_sky_regions.py --objects 20000 --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _catalog(n: int, rng):
    from astropy.table import Table

    table = Table()
    table["label"] = np.arange(1, n + 1)
    table["x"] = rng.uniform(0, 4000, n)
    table["y"] = rng.uniform(0, 4000, n)
    table["semi_major"] = rng.uniform(1.5, 8.0, n)
    table["semi_minor"] = table["semi_major"] * rng.uniform(0.4, 1.0, n)  # axes >= 1 px
    table["orientation"] = rng.uniform(-90, 90, n)
    return table


def _wcs():
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.1, 2.2]
    wcs.wcs.crpix = [2000.5, 2000.5]
    angle = np.radians(25.0)  # a rotated field, as survey tiles are
    scale = 0.2 / 3600
    wcs.wcs.cd = scale * np.array([[-np.cos(angle), np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return wcs


def _one_by_one(table, wcs):
    import astropy.units as u
    import regions

    return [
        regions.EllipsePixelRegion(
            center=regions.PixCoord(float(r["x"]), float(r["y"])),
            width=2 * float(r["semi_major"]),
            height=2 * float(r["semi_minor"]),
            angle=float(r["orientation"]) * u.deg,
            meta={"text": str(r["label"])},
        ).to_sky(wcs)
        for r in table
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    import regions

    from sciconv import postprocess

    table, wcs = _catalog(args.objects, np.random.default_rng(0)), _wcs()
    postprocess.to_regions(table[:10], wcs=wcs)  # imports and first calls out of the timing
    _one_by_one(table[:10], wcs)
    times = {"sciconv": [], "regions": []}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ours = postprocess.to_regions(table, wcs=wcs)
        times["sciconv"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref = _one_by_one(table, wcs)
        times["regions"].append(time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        regions.Regions(ours).write(str(Path(tmp) / "a.reg"), format="ds9")
        writer = time.perf_counter() - t0
    d_center = max(a.center.separation(b.center).arcsec for a, b in zip(ours, ref, strict=True))
    d_axes = max(
        max(
            abs((a.width - b.width).to_value("arcsec")),
            abs((a.height - b.height).to_value("arcsec")),
        )
        for a, b in zip(ours, ref, strict=True)
    )
    d_angle = max(
        abs(((a.angle - b.angle).to_value("deg") + 180) % 360 - 180)
        for a, b in zip(ours, ref, strict=True)
    )
    per = {k: 1e3 * statistics.median(v) / args.objects for k, v in times.items()}
    print(f"{args.objects} sky ellipses (regions {regions.__version__}), {args.repeats} repeats")
    print(f"  regions' to_sky, one by one : {per['regions']:.3f} ms/object (median)")
    print(f"  sciconv to_regions (batched): {per['sciconv']:.3f} ms/object (median)")
    print(f"  ratio                       : {per['regions'] / per['sciconv']:.1f}x")
    print(f"  regions' DS9 writer         : {1e3 * writer / args.objects:.3f} ms/object")
    print(
        f"  largest difference: centre {d_center:.2e} arcsec, axes {d_axes:.2e} arcsec, "
        f"angle {d_angle:.2e} deg"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
