"""The pretrained nuclei model on real fluorescence images saved in the forms users have them.

The 15 bundled real fluorescence images (``data/real/nuclei``, grey) are segmented as they are
and as RGB copies: nuclei in the blue channel only (DAPI as viewers export it), in the green
channel only, and blue nuclei with a red cytoplasm-like stain (the nuclei masks blurred with
sigma 6, at 60 % of the image's maximum). AP@0.5 (mean over images) per form, with the model's
input transform as shipped and with a transform given by ``--transform`` (JSON), so a change of
the transform is measured against the shipped one side by side.

    python benchmarks/real_nuclei_inputs.py
    python benchmarks/real_nuclei_inputs.py --transform '{"to_rgb": true, "invert": "auto"}'
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def forms(image: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """The grey image and its RGB copies (module doc)."""
    from scipy import ndimage as ndi

    z = np.zeros_like(image)
    cyto = ndi.gaussian_filter((truth > 0).astype(float), 6)
    cyto = (0.6 * float(image.max()) * cyto / cyto.max()).astype(image.dtype)
    return {
        "grey": image,
        "blue only": np.stack([z, z, image], axis=-1),
        "green only": np.stack([z, image, z], axis=-1),
        "blue + red cytoplasm": np.stack([cyto, z, image], axis=-1),
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--folder", type=Path, default=ROOT / "data" / "real" / "nuclei")
    p.add_argument("--transform", default=None, help="another input transform (JSON) to compare")
    a = p.parse_args(argv)
    import tifffile

    import sciconv as sc

    model = sc.models.pretrained("nuclei")
    shipped = sc.models.get_metadata(model)["input_transform"]
    transforms = {"shipped " + json.dumps(shipped): shipped}
    if a.transform:
        transforms["given " + a.transform] = json.loads(a.transform)
    scores: dict = {}
    for path in sorted((a.folder / "images").glob("*.tif")):
        image = tifffile.imread(path)
        truth = tifffile.imread(a.folder / "labels" / path.name)
        for name, spec in transforms.items():
            sc.models.set_metadata(model, input_transform=spec)
            for form, x in forms(image, truth).items():
                pred = sc.inference.predict_instances(
                    model, x, precision="float32", object_size=None, progress=False
                )
                ap = float(sc.metrics.average_precision(truth, pred)["ap"][0])
                scores.setdefault(name, {}).setdefault(form, []).append(ap)
    return mean_table(scores, "\n== input transform {name}: AP@0.5, {n} images", width=22)


def mean_table(scores: dict, heading: str, *, width: int) -> dict:
    """``{name: {form: mean AP}}`` of ``{name: {form: [AP per image]}}``, printed under
    ``heading`` (formatted with ``name`` and ``n``, the images of its "grey" form)."""
    table = {n: {f: float(np.mean(v)) for f, v in by.items()} for n, by in scores.items()}
    for name, row in table.items():
        print(heading.format(name=name, n=len(scores[name]["grey"])))
        for form, value in row.items():
            print(f"  {form:{width}s} {value:.3f}")
    return table


if __name__ == "__main__":
    main()
