"""Rebuild the real sample data in ``data/real/`` from its public sources (deterministic).

Run from the project root::

    python data/real/make_real_data.py --dsb ../shared/data/dsb2018_train \
        --hst /tmp/drizzle/usr/share/python-drizzle/test_data/j8bt06nyq_flt.fits [--overwrite]

What it writes
--------------
``data/real/nuclei_val_ids.txt``
    The FIXED validation division of the DSB2018 fluorescence images: every ``fluo`` id whose
    ``sha256(id)`` read as a fraction of 2**32 (first 8 hex digits) is below 0.15. The pretrained
    nuclei model (``tools/train_pretrained_nuclei.py``) never trains on these ids.
``data/real/nuclei/images/<id>.tif`` + ``data/real/nuclei/labels/<id>.tif``
    15 of those validation images (uint8 grey, 2-D) and their instance labels (uint16): the first
    ten 256x256, three 360x360 and two 520x696 ids in sha256 order.
``data/real/nuclei_brightfield/images/<id>.tif`` + ``.../labels/<id>.tif``
    Brightfield images from the same validation rule applied to the other DSB modalities (never
    trained on): the first four H&E / brightfield colour images (256x320, RGB uint8, as the PNG
    holds them minus its opaque alpha) and the first grey brightfield image (1024x1024, uint8
    grey: its R = G = B) in sha256 order, with their labels (uint16).
``data/real/hst/j8bt06nyq_sci_cutout.fits`` + ``..._dq_cutout.fits``
    The central 512x512 pixels of the SCI and DQ arrays of the HST/ACS-HRC frame
    ``j8bt06nyq_flt.fits`` (47 Tucanae, F606W), read with ``sciconv.io.read(section=...)`` and
    written with ``sciconv.io.write(like=...)``, so the WCS is sciconv's own (checked against
    astropy's ``Cutout2D`` before writing).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
from pathlib import Path

import numpy as np
import tifffile
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS
from PIL import Image

HERE = Path(__file__).resolve().parent
VAL_FRACTION = 0.15
PICK = {(256, 256): 10, (360, 360): 3, (520, 696): 2}
PICK_BRIGHTFIELD = {"color": 4, "gray_bright": 1}
HST_CENTER = (512, 512)  # (x, y) 0-based pixel centre of the cutout
HST_SIZE = 512
PRIMARY_KEYS = (
    "TELESCOP",
    "INSTRUME",
    "DETECTOR",
    "FILTER1",
    "FILTER2",
    "TARGNAME",
    "EXPTIME",
    "DATE-OBS",
    "TIME-OBS",
    "PROPOSID",
    "ROOTNAME",
)


def id_fraction(image_id: str) -> float:
    """Position of an id in [0, 1) from its sha256: the split rule (stable across machines)."""
    return int(hashlib.sha256(image_id.encode()).hexdigest()[:8], 16) / 2**32


def validation_ids(index_csv: Path, modalities=("fluo",)) -> list[dict]:
    rows = [r for r in csv.DictReader(open(index_csv)) if r["modality"] in modalities]
    val = [r for r in rows if id_fraction(r["id"]) < VAL_FRACTION]
    return sorted(val, key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())


def _write_pair(root: Path, image_id: str, img: np.ndarray, lab: np.ndarray, overwrite: bool):
    """``root/images/<id>.tif`` and ``root/labels/<id>.tif`` (zlib), kept if present."""
    for folder, arr in (("images", img), ("labels", lab)):
        out = root / folder / f"{image_id}.tif"
        if out.exists() and not overwrite:
            continue
        tifffile.imwrite(out, arr, compression="zlib")


def make_nuclei(dsb: Path, overwrite: bool) -> None:
    val = validation_ids(dsb / "index.csv")
    (HERE / "nuclei_val_ids.txt").write_text(
        "".join(r["id"] + "\n" for r in sorted(val, key=lambda r: r["id"]))
    )
    counts = dict.fromkeys(PICK, 0)
    for folder in ("images", "labels"):
        (HERE / "nuclei" / folder).mkdir(parents=True, exist_ok=True)
    for r in val:
        shape = (int(r["height"]), int(r["width"]))
        if shape not in PICK or counts[shape] >= PICK[shape]:
            continue
        counts[shape] += 1
        img = np.asarray(Image.open(dsb / "images" / f"{r['id']}.png"))[..., 0].astype(np.uint8)
        lab = tifffile.imread(dsb / "labels" / f"{r['id']}.tif").astype(np.uint16)
        _write_pair(HERE / "nuclei", r["id"], img, lab, overwrite)
    print("nuclei:", counts, "of", len(val), "validation ids")


def make_brightfield(dsb: Path, overwrite: bool) -> None:
    counts = dict.fromkeys(PICK_BRIGHTFIELD, 0)
    for folder in ("images", "labels"):
        (HERE / "nuclei_brightfield" / folder).mkdir(parents=True, exist_ok=True)
    for r in validation_ids(dsb / "index.csv", tuple(PICK_BRIGHTFIELD)):
        m = r["modality"]
        if counts[m] >= PICK_BRIGHTFIELD[m]:
            continue
        counts[m] += 1
        rgba = np.asarray(Image.open(dsb / "images" / f"{r['id']}.png"))
        assert rgba.shape[-1] == 4 and (rgba[..., 3] == 255).all(), r["id"]
        img = rgba[..., :3] if m == "color" else rgba[..., 0]
        if m == "gray_bright":
            assert (rgba[..., 0] == rgba[..., 1]).all() and (rgba[..., 0] == rgba[..., 2]).all()
        lab = tifffile.imread(dsb / "labels" / f"{r['id']}.tif").astype(np.uint16)
        _write_pair(HERE / "nuclei_brightfield", r["id"], img.astype(np.uint8), lab, overwrite)
    print("nuclei_brightfield:", counts)


def make_hst(flt: Path, overwrite: bool) -> None:
    """Cut SCI and DQ with sciconv's own reader (WCS sliced by sciconv) and writer."""
    import sciconv.io as scio

    (HERE / "hst").mkdir(exist_ok=True)
    cx, cy = HST_CENTER
    y0, x0 = cy - HST_SIZE // 2, cx - HST_SIZE // 2
    section = (slice(y0, y0 + HST_SIZE), slice(x0, x0 + HST_SIZE))
    sci = scio.read(flt, hdu=("SCI", 1), section=section)
    with fits.open(flt) as hdul:
        primary = hdul[0].header
        raw = {
            "sci": np.asarray(hdul["SCI", 1].data[section]),  # native dtypes (float32, int16)
            "dq": np.asarray(hdul["DQ", 1].data[section]),
        }
        extra = {k: (primary[k], primary.comments[k]) for k in PRIMARY_KEYS if k in primary}
        # cross-check sciconv's sliced WCS against astropy's own Cutout2D before writing anything
        ref = Cutout2D(
            np.asarray(hdul["SCI", 1].data),
            (cx, cy),
            HST_SIZE,
            wcs=WCS(hdul["SCI", 1].header),
            mode="strict",
        )
    assert np.array_equal(ref.data, raw["sci"])
    pix = np.array([[0, 0], [100, 400], [511, 511]], dtype=float)
    assert np.allclose(
        ref.wcs.pixel_to_world_values(pix[:, 0], pix[:, 1]),
        sci.wcs.pixel_to_world_values(pix[:, 0], pix[:, 1]),
        rtol=0,
        atol=1e-10,
    )
    for tag, ext in (("sci", "SCI"), ("dq", "DQ")):
        out = HERE / "hst" / f"j8bt06nyq_{tag}_cutout.fits"
        if out.exists() and not overwrite:
            continue
        header = dict(extra)
        header["EXTNAME"] = ext
        header["LTV1"] = -float(x0)
        header["LTV2"] = -float(y0)
        if tag == "dq":
            header["BUNIT"] = ("UNITLESS", "data quality bit flags (ACS DQ), 0 = good")
        scio.write(
            out,
            raw[tag],
            like=sci,
            overwrite=True,
            header=header,
            history=f"{flt.name}[{ext},1] cutout [{y0}:{y0 + HST_SIZE}, "
            f"{x0}:{x0 + HST_SIZE}] (0-based y, x) for sciconv data/real",
        )
    print("hst: written with sciconv.io.write")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dsb", type=Path, default=Path("../shared/data/dsb2018_train"))
    p.add_argument(
        "--hst",
        type=Path,
        default=Path("/tmp/drizzle/usr/share/python-drizzle/test_data/j8bt06nyq_flt.fits"),
    )
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--only", choices=("nuclei", "brightfield", "hst"), default=None)
    a = p.parse_args(argv)
    if a.only in (None, "nuclei"):
        make_nuclei(a.dsb, a.overwrite)
    if a.only in (None, "brightfield"):
        make_brightfield(a.dsb, a.overwrite)
    if a.only in (None, "hst"):
        make_hst(a.hst, a.overwrite)


if __name__ == "__main__":
    main()
