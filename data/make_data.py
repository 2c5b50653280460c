"""Make sciconv's bundled sample data, deterministically (fixed seeds), with a SHA-256 manifest.

Usage (from the repository root)::

    python data/make_data.py               # write the files; refuses to replace existing ones
    python data/make_data.py --overwrite   # regenerate in place
    python data/make_data.py --check       # regenerate into a temporary folder and compare with
                                           # data/MANIFEST.sha256 (exit status 1 on a difference)
    python data/make_data.py --out DIR     # write somewhere else

What it writes (see data/README.md):

- ``galaxies/<class>/<class>_NNN.fits``: 64 x 64 simulated cutouts, one folder per morphology class,
  each with a TAN WCS and OBJECT/EXPTIME/GAIN/RDNOISE/BUNIT and truth cards, plus
  ``galaxies/catalog.csv`` (path, class and true parameters, for regression);
- ``cells/images/cell_NN.tif`` (uint16 photon counts) and ``cells/masks/cell_NN.tif`` (uint16
  instance labels, 0 = background);
- ``sky/field.fits.fz`` (2048 x 2048 uint16 raw counts, lossless tile compression, TAN WCS) and
  ``sky/truth.ecsv`` (x, y, ra, dec, flux, kind of every source);
- ``MANIFEST.sha256``: ``sha256sum``-style lines for every file above (``sha256sum -c`` works from
  inside ``data/``).

Every file goes through :func:`sciconv.io.write` or :func:`sciconv._atomic.atomic_output`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io as _stdio
import sys
import tempfile
from pathlib import Path

import numpy as np

from sciconv import io, simulate
from sciconv._atomic import atomic_output

HERE = Path(__file__).resolve().parent
MANIFEST = "MANIFEST.sha256"

#: Seeds and sizes: change one and the bundled files (and their manifest) change.
GALAXY_SEED = 20240601
GALAXIES_PER_CLASS = 70
GALAXY_SIZE = 64
CELL_SEED = 20240602
N_CELLS = 16
CELL_SIZE = (256, 256)
SKY_SEED = 20240603
SKY_SHAPE = (2048, 2048)


def make_galaxies(out: Path, *, overwrite: bool) -> list[Path]:
    images, labels, names, params = simulate.galaxy_cutouts(
        GALAXIES_PER_CLASS, size=GALAXY_SIZE, seed=GALAXY_SEED
    )
    written = []
    rows = []
    counters = dict.fromkeys(names, 0)
    for i, (image, label) in enumerate(zip(images, labels)):
        cls = names[label]
        j = counters[cls]
        counters[cls] += 1
        rel = Path(cls) / f"{cls}_{j:03d}.fits"
        header = simulate.cutout_header(params, i, size=GALAXY_SIZE, class_name=cls)
        header["OBJECT"] = f"{cls}_{j:03d}"
        written.append(
            io.write(
                out / "galaxies" / rel,
                image,
                header=header,
                overwrite=overwrite,
                history=f"sciconv.simulate.galaxy_cutouts(seed={GALAXY_SEED}) index {i}",
            )
        )
        rows.append(
            {
                "path": rel.as_posix(),
                "class": cls,
                **{k: f"{params[k][i]:.6g}" for k in ("sersic_n", "r_eff", "flux", "ellip")},
                "theta": f"{params['theta'][i]:.6g}",
            }
        )
    buf = _stdio.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    catalog = out / "galaxies" / "catalog.csv"
    with atomic_output(catalog, overwrite=overwrite) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    return [*written, catalog]


def make_cells(out: Path, *, overwrite: bool) -> list[Path]:
    images, labels = simulate.nuclei(N_CELLS, size=CELL_SIZE, seed=CELL_SEED, channels=1)
    assert images.max() <= 65535 and labels.max() <= 65535
    written = []
    for k, (image, label) in enumerate(zip(images, labels)):
        hist = f"sciconv.simulate.nuclei(seed={CELL_SEED}) index {k}"
        written.append(
            io.write(
                out / "cells" / "images" / f"cell_{k:02d}.tif",
                image[..., 0].astype(np.uint16),
                overwrite=overwrite,
                history=hist,
            )
        )
        written.append(
            io.write(
                out / "cells" / "masks" / f"cell_{k:02d}.tif",
                label.astype(np.uint16),
                overwrite=overwrite,
                history=hist + " instance labels",
            )
        )
    return written


def make_sky(out: Path, *, overwrite: bool) -> list[Path]:
    image, wcs, truth = simulate.sky_field(SKY_SHAPE, seed=SKY_SEED)
    header = wcs.to_header()
    cards = {
        "OBJECT": ("SIMFIELD", "simulated field (sciconv.simulate.sky_field)"),
        "TELESCOP": ("SIMULATED", "sciconv.simulate.sky_field"),
        "EXPTIME": (300.0, "[s] exposure time"),
        "GAIN": (float(truth.meta["gain"]), "[e-/adu] detector gain"),
        "RDNOISE": (float(truth.meta["read_noise"]), "[e-] read noise"),
        "SATURATE": (65535, "[adu] 16-bit converter limit"),
        "BUNIT": ("adu", "raw counts, sky not subtracted"),
        "SKYLEVEL": (float(truth.meta["sky_adu"]), "[adu] sky background per pixel"),
        "PSFFWHM": (float(truth.meta["psf_fwhm_pix"]), "[pix] Moffat PSF FWHM"),
    }
    for key, value in cards.items():
        header[key] = value
    field = io.write(
        out / "sky" / "field.fits.fz",
        image.astype(np.uint16),
        header=header,
        overwrite=overwrite,
        history=f"sciconv.simulate.sky_field({SKY_SHAPE}, seed={SKY_SEED})",
    )
    catalog = out / "sky" / "truth.ecsv"
    with atomic_output(catalog, overwrite=overwrite) as tmp:
        truth.write(tmp, format="ascii.ecsv")
    return [field, catalog]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(out: Path, files: list[Path], *, overwrite: bool) -> Path:
    lines = [f"{sha256(p)}  {p.relative_to(out).as_posix()}\n" for p in sorted(files)]
    manifest = out / MANIFEST
    with atomic_output(manifest, overwrite=overwrite) as tmp:
        tmp.write_text("".join(lines), encoding="utf-8")
    return manifest


def read_manifest(path: Path) -> dict[str, str]:
    """``{relative path: sha256}`` from a manifest file."""
    entries = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            entries[rel.strip()] = digest
    return entries


def make_all(out: Path, *, overwrite: bool = False) -> list[Path]:
    out = Path(out)
    files = [
        *make_galaxies(out, overwrite=overwrite),
        *make_cells(out, overwrite=overwrite),
        *make_sky(out, overwrite=overwrite),
    ]
    write_manifest(out, files, overwrite=overwrite)
    return files


def _same_fits_content(a: Path, b: Path) -> bool:
    """True when two FITS files hold the same pixels and header cards.

    Tile-compressed files (GZIP_2) embed a gzip timestamp per tile, so their bytes differ from run
    to run while their content does not.
    """
    ia, ib = io.read(a), io.read(b)
    same_pixels = np.array_equal(ia.data, ib.data, equal_nan=True)
    return same_pixels and ia.header.tostring() == ib.header.tostring()


def check(reference: Path = HERE) -> list[str]:
    """Regenerate in a temporary folder; return the files whose content differs from ``reference``.

    Files are compared by SHA-256 against the manifest; a FITS file whose bytes differ is compared
    again by content (pixels and header), because tile compression stamps the time into each tile.
    """
    expected = read_manifest(reference / MANIFEST)
    with tempfile.TemporaryDirectory() as tmp:
        make_all(Path(tmp))
        got = read_manifest(Path(tmp) / MANIFEST)
        differ = []
        for rel in sorted(set(expected) | set(got)):
            if expected.get(rel) == got.get(rel):
                continue
            fits_like = rel.endswith((".fits", ".fits.fz"))
            if fits_like and rel in expected and rel in got:
                if _same_fits_content(reference / rel, Path(tmp) / rel):
                    continue
            differ.append(rel)
    return differ


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: data/)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.add_argument("--check", action="store_true", help="regenerate and compare hashes")
    args = parser.parse_args(argv)
    if args.check:
        diff = check(args.out)
        for rel in diff:
            sys.stderr.write(f"differs: {rel}\n")
        sys.stdout.write("bundled data reproduced exactly\n" if not diff else "")
        return 1 if diff else 0
    files = make_all(args.out, overwrite=args.overwrite)
    total = sum(p.stat().st_size for p in files)
    sys.stdout.write(f"wrote {len(files)} files, {total / 1e6:.1f} MB, to {args.out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
