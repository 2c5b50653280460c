"""The main job behind ``sciconv demo``: the whole pipeline on the bundled data, with a report.

Four parts, each a complete small science workflow:

1. **Galaxies** (``data/galaxies/<class>/*.fits``): a conv–pool–dense morphology classifier, trained
   on a seeded split and evaluated on the held-out part (accuracy, confusion matrix).
2. **Cells** (``data/cells/images|masks``): a small U-Net nuclei segmenter, evaluated on held-out
   images by foreground IoU and instance average precision (AP).
3. **Sky** (``data/sky/field.fits`` + ``truth.ecsv``): a source-detection U-Net trained on a
   separately simulated field, run tile by tile over the bundled field; instances become a
   catalog with RA/Dec that is matched against the truth catalog (completeness, purity, offsets).
4. **Real nuclei** (``data/real/nuclei``, and ``data/real/nuclei_brightfield`` when present): the
   pretrained nuclei model applied to real fluorescence (and brightfield) images it never saw in
   training, scored by AP against their labels.

Everything goes to one folder: ``models/`` (.keras), ``predictions/`` (written by
:func:`sciconv.postprocess.write_products`: FITS with the WCS, TIFF labels, ECSV catalogs),
``plots/`` (PNG), ``runs/`` (training work folders), ``metrics.json`` and ``report.md``.
``fast=True`` (or ``SCICONV_FAST=1``) shrinks every part to about a minute in all.

One file per part: ``_settings`` (:class:`DemoSettings`, :func:`find_data`), ``_output`` (the
output folder), ``_galaxies``, ``_cells``, ``_sky``, ``_real_nuclei`` (with ``_common``, what the
segmentation parts share) and ``_report`` (:func:`headline`, report.md, metrics.json).

Examples
--------
>>> from sciconv import demo
>>> demo.find_data().name
'data'
>>> result = demo.run(out="sciconv_demo", fast=True)  # doctest: +SKIP
>>> print("\\n".join(demo.headline(result)))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sciconv.demo._cells import run_cells
from sciconv.demo._galaxies import run_galaxies
from sciconv.demo._output import Writer, prepare_out
from sciconv.demo._real_nuclei import run_real_nuclei
from sciconv.demo._report import headline, jsonable, render_report
from sciconv.demo._settings import DATA_PARTS, DemoSettings, find_data, require_parts
from sciconv.demo._sky import run_sky

__all__ = ["DATA_PARTS", "DemoSettings", "find_data", "headline", "run"]


def run(
    *,
    out: str | os.PathLike = "sciconv_demo",
    data: str | os.PathLike | None = None,
    fast: bool | None = None,
    overwrite: bool = False,
    log: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Run the whole demo and write its outputs to ``out``.

    Parameters
    ----------
    out : str or os.PathLike
        Output folder (created). Refused if it already holds demo outputs, unless ``overwrite``.
    data : str or os.PathLike, optional
        The bundled data folder (default: :func:`find_data`).
    fast : bool, optional
        Tiny settings (about a minute). Default: ``SCICONV_FAST=1`` in the environment.
    overwrite : bool
        Replace the outputs of an earlier demo in ``out``.
    log : callable, optional
        Called with one line of progress text per step (the command line prints them).

    Returns
    -------
    dict
        Metrics of each part (``galaxies``, ``cells``, ``sky``, ``real_nuclei``), ``files``
        (every file written) and ``seconds``; also saved as ``metrics.json``.

    Examples
    --------
    >>> from sciconv.demo import run
    >>> result = run(out="demo_out", fast=True)  # doctest: +SKIP
    >>> sorted(result)  # doctest: +SKIP
    ['cells', 'files', 'galaxies', 'real_nuclei', 'seconds', 'sky']
    """
    t0 = time.perf_counter()
    if fast is None:
        fast = os.environ.get("SCICONV_FAST") == "1"
    log = log or (lambda _msg: None)
    settings = DemoSettings.fast() if fast else DemoSettings.full()
    data_dir = find_data(data)
    paths = require_parts(data_dir, *DATA_PARTS)
    out = Path(out)
    prepare_out(out, overwrite=overwrite)
    w = Writer(out, overwrite)
    log(f"sciconv demo ({'fast' if fast else 'default'} settings): data {data_dir}, output {out}")

    import keras

    keras.utils.set_random_seed(settings.seed)
    result: dict[str, Any] = {}
    result["galaxies"] = run_galaxies(paths, settings, w, log)
    result["cells"] = run_cells(paths, settings, w, log)
    result["sky"] = run_sky(paths, settings, w, log)
    result["real_nuclei"] = run_real_nuclei(paths, settings, w, log)
    result["seconds"] = time.perf_counter() - t0
    w.text("report.md", render_report(result, settings, fast))
    result["files"] = [str(p) for p in w.files]
    w.text("metrics.json", json.dumps(jsonable(result), indent=2) + "\n")
    return result
