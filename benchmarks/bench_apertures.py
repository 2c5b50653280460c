"""Fixed-aperture photometry in catalogs: ``measure(aperture=)`` against photutils by hand.

A sky image with ``--objects`` Gaussian stars (one pixel label each: a 3 x 3 box) is measured
with one and two aperture radii through ``sciconv.postprocess.measure`` (the segment columns, the
weighted centroid, then the aperture columns) and, side by side in the same process, through the
calls a user would write with photutils: ``CircularAperture`` at the same centroids and one
``aperture_photometry`` with ``error=`` and ``mask=`` per radius, plus the background's sum. Both
are timed ``--repeats`` times in turn (medians); the script checks that the two give the same
fluxes and errors (to 1e-9 relative), then prints the ratio of sciconv's time to the reference's.

Usage::

    nice python benchmarks/bench_apertures.py                     # 2e4 objects, 5 repeats
    nice python benchmarks/bench_apertures.py --objects 100000 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from photutils.aperture import CircularAperture, aperture_photometry

from sciconv.postprocess import measure


def _field(n_objects: int, seed: int = 0):
    """An image with ``n_objects`` stars on a square grid, their 3 x 3 labels, sky and error."""
    side = int(np.ceil(np.sqrt(n_objects))) * 12 + 12
    rng = np.random.default_rng(seed)
    image = rng.normal(100.0, 2.0, (side, side)).astype(np.float32)
    labels = np.zeros((side, side), np.int32)
    yy, xx = np.mgrid[-5:6, -5:6]
    star = np.exp(-(yy**2 + xx**2) / (2 * 1.5**2)).astype(np.float32)
    k = 0
    for y in range(12, side - 6, 12):
        for x in range(12, side - 6, 12):
            if k == n_objects:
                break
            k += 1
            image[y - 5 : y + 6, x - 5 : x + 6] += rng.uniform(200, 2000) * star
            labels[y - 1 : y + 2, x - 1 : x + 2] = k
    sky = np.full(image.shape, 100.0, np.float32)
    error = np.full(image.shape, 2.0, np.float32)
    return image, labels, sky, error


def _by_hand(image, positions, sky, error, radii):
    """What a user writes with photutils: one aperture_photometry per radius, sky subtracted."""
    out = {}
    for r in radii:
        aperture = CircularAperture(positions, r=r)
        got = aperture_photometry(image - sky, aperture, error=error, method="exact")
        out[r] = (np.asarray(got["aperture_sum"]), np.asarray(got["aperture_sum_err"]))
    return out


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    image, labels, sky, error = _field(args.objects)
    print(f"{args.objects} objects on {image.shape[0]}^2 pixels; medians of {args.repeats}")
    for radii in ([4.0], [3.0, 6.0]):
        table = measure(labels, intensity=image, background=sky, error=error, aperture=radii)
        positions = np.column_stack([table["x_weighted"], table["y_weighted"]])
        ref = _by_hand(image, positions, sky, error, radii)
        for r in radii:  # the same numbers both ways
            name = "flux_aper" if len(radii) == 1 else f"flux_aper_{r:g}pix"
            np.testing.assert_allclose(np.asarray(table[name]), ref[r][0], rtol=1e-9, atol=1e-6)
            err = np.asarray(table[f"{name}_err"])
            np.testing.assert_allclose(err, ref[r][1], rtol=1e-9)
        plain = _median_time(
            lambda: measure(labels, intensity=image, background=sky, error=error), args.repeats
        )
        with_apertures = _median_time(
            lambda r=radii: measure(
                labels, intensity=image, background=sky, error=error, aperture=r
            ),
            args.repeats,
        )
        hand = _median_time(
            lambda r=radii, p=positions: _by_hand(image, p, sky, error, r), args.repeats
        )
        added = with_apertures - plain
        print(
            f"radii {radii}: measure {plain:.3f} s, with apertures {with_apertures:.3f} s "
            f"(+{added:.3f} s); photutils by hand {hand:.3f} s; "
            f"ratio (added / by hand) {added / hand:.2f}"
        )


if __name__ == "__main__":
    main()
