"""Build-time helpers of the sciconv documentation (a small local Sphinx extension).

At ``builder-inited`` it

1. copies the four notebooks of ``../notebooks`` into ``docs/notebooks/`` (Sphinx reads only
   files under its source folder; the copies are generated and git-ignored, and are rewritten only
   when their content changed, so an unchanged notebook is not read again);
2. writes ``docs/_generated/architecture.svg``, the stage diagram of the architecture page, from
   the *live* package: each stage box names the module or package and its sub-modules as they are
   in ``sciconv/`` now, so the diagram follows the code;
3. writes ``docs/_generated/concepts.md``, the "where each concept lives" table: each concept's
   public name and the module that defines it (``obj.__module__``); a public name that does not
   import is a warning, so with ``-W`` a renamed or lost public name fails the build;
4. checks that the API reference (``docs/api.rst``) and the diagram name exactly the public
   modules of the package (``sciconv.__all__``): a new, renamed or removed module is a warning.

During the build it also gives a constant that a package re-exports (``sciconv.io.FITS_EXTENSIONS``,
defined in ``sciconv/io/_files.py``) the ``#:`` comment written where it is defined: autodoc looks
for the comment only in the package's ``__init__.py`` and would otherwise show the docstring of
``tuple`` or ``str``. A public constant with no ``#:`` comment anywhere is a warning.

Only the standard library is needed (no graphviz, no mermaid).
"""

from __future__ import annotations

import html
import importlib
import inspect
import itertools
import pkgutil
import re
import sys
import textwrap
from pathlib import Path

from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging

logger = logging.getLogger(__name__)

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
PACKAGE = ROOT / "sciconv"
GENERATED = DOCS / "_generated"

# --------------------------------------------------------------------------------------------
# 1. notebooks


def copy_notebooks() -> list[str]:
    """Mirror ``../notebooks/*.ipynb`` into ``docs/notebooks/``; return the copied names."""
    target = DOCS / "notebooks"
    target.mkdir(exist_ok=True)
    sources = sorted((ROOT / "notebooks").glob("*.ipynb"))
    names = {p.name for p in sources}
    for stale in target.glob("*.ipynb"):
        if stale.name not in names:
            stale.unlink()
    for src in sources:
        dst = target / src.name
        data = src.read_bytes()
        if dst.is_file() and dst.read_bytes() == data:
            continue
        tmp = dst.with_name(f".{dst.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(dst)  # atomic: a concurrent build never reads half a notebook
    return sorted(names)


# --------------------------------------------------------------------------------------------
# 2. the stage diagram

#: The data flow, in order: (module, what it turns into what, how).
STAGES = [
    ("io", "files ⇄ GridImage", "read(), write(); one room per concern"),
    ("preprocess", "raw pixels → normalized", "the one normalization spec"),
    ("datasets", "files → tf.data.Dataset", "folders, catalogs, image+mask pairs"),
    ("models", "→ keras.Model", "blocks → backbones → heads"),
    ("training", "model + data → .keras run", "fit(), callbacks, resumable runs"),
    ("inference", "model × image → scores", "tiled, blended, TTA; numpy or dask"),
    ("postprocess", "scores → labels → tables", "instances, measure, the one product writer"),
]
#: The end of the flow: files, not a module.
PRODUCTS = (
    "products",
    "files out",
    [
        "FITS with header + WCS",
        "TIFF instance labels",
        "catalogs (ECSV / VOTable / FITS)",
        "written atomically",
    ],
)
#: Modules that serve the stages, and which stage uses them.
SUPPORT = [
    ("errors", "SciconvError and its family"),
    ("augment", "D4, crops, noise (datasets)"),
    ("simulate", "seeded fields with ground truth"),
    ("fetch", "public data sets via pooch"),
    ("losses", "registered losses (training)"),
    ("metrics", "IoU, Dice, AP (training)"),
    ("calibration", "temperature scaling, ECE"),
    ("devices", "GPUs, precision, strategy"),
    ("runs", "a run folder read back"),
    ("viz", "draws only; measures elsewhere"),
    ("samp", "send to TOPCAT, Aladin, DS9"),
]
#: Modules on top: they drive every stage.
DRIVERS = [("cli", "the sciconv command"), ("demo", "the demo, one file per part")]

BOX_W, GAP, PAD, LINE = 232, 36, 14, 16
SUP_COLS, SUP_H, SUP_GAP = 5, 50, 12


def module_label(name: str) -> tuple[str, list[str]]:
    """``("io/", ["_image", ...])`` for a package, ``("viz.py", [])`` for a module."""
    pkg = PACKAGE / name
    if (pkg / "__init__.py").is_file():
        subs = sorted(m.name for m in pkgutil.iter_modules([str(pkg)]))
        return f"{name}/", subs
    if (PACKAGE / f"{name}.py").is_file():
        return f"{name}.py", []
    logger.warning("architecture diagram: sciconv has no module %r (sciconv/%s)", name, name)
    return f"{name} (missing)", []


def _text(x, y, s, *, cls):
    return f'<text x="{x}" y="{y}" class="{cls}">{html.escape(s)}</text>'


def _box(x, y, w, h, *, cls="stage"):
    return f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" class="{cls}"/>'


def _stage_lines(name: str, what: str, how: str) -> tuple[str, list[tuple[str, str]]]:
    title, subs = module_label(name)
    lines = [(what, "what"), *((s, "how") for s in textwrap.wrap(how, 30))]
    if subs:
        for chunk in textwrap.wrap("  ".join(subs), 30):
            lines.append((chunk, "sub"))
    return title, lines


def _small_box(x, y, w, name, help_):
    title, _ = module_label(name)
    return [
        _box(x, y, w, SUP_H, cls="support"),
        _text(x + 10, y + 20, title, cls="stitle"),
        _text(x + 10, y + 38, help_, cls="shelp"),
    ]


def diagram_svg() -> str:
    """The stage diagram as an SVG document.

    A band on top (the command line and the demo drive every stage), the stages in two rows of
    four (left to right, then right to left), and the modules the stages use below.
    """
    boxes = [_stage_lines(*s) for s in STAGES]
    boxes.append((PRODUCTS[0], [(PRODUCTS[1], "what"), *((s, "how") for s in PRODUCTS[2])]))
    order = [(0, i) for i in range(4)] + [(1, 3 - i) for i in range(4)]
    heights = [PAD + 22 + LINE * len(lines) + PAD // 2 for _, lines in boxes]
    row_h = [max(heights[:4]), max(heights[4:])]
    inner = 4 * BOX_W + 3 * GAP
    width = inner + 2 * 20
    sup_w = (inner - (SUP_COLS - 1) * SUP_GAP) // SUP_COLS
    y = 20
    out_top = []
    out_top.append(_text(20, y + 14, "on top: they drive every stage", cls="head"))
    for i, (name, help_) in enumerate(DRIVERS):
        out_top += _small_box(20 + i * (sup_w + SUP_GAP), y + 24, sup_w, name, help_)
    y += 24 + SUP_H + 30
    flow = "the data flow: each stage takes the previous stage's plain output"
    out_top.append(_text(20, y + 14, flow, cls="head"))
    top = [y + 28, y + 28 + row_h[0] + GAP + 10]
    sup_top = top[1] + row_h[1] + 30
    sup_rows = -(-len(SUPPORT) // SUP_COLS)
    height = sup_top + 24 + sup_rows * (SUP_H + SUP_GAP) + 8
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" '
        'aria-label="sciconv data flow: io, preprocess, datasets, models, training, inference, '
        'postprocess, products">',
        "<style>"
        ".stage{fill:#eef4fb;stroke:#2b6cb0;stroke-width:1.5}"
        ".end{fill:#f0f8ee;stroke:#2f855a;stroke-width:1.5}"
        ".support{fill:#f7f7f7;stroke:#888;stroke-width:1}"
        "text{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;fill:#1a202c}"
        ".title{font-family:DejaVu Sans Mono,Menlo,Consolas,monospace;font-size:15px;"
        "font-weight:bold}"
        ".what{font-size:12.5px;font-weight:bold;fill:#2c5282}"
        ".how{font-size:12px}"
        ".sub{font-family:DejaVu Sans Mono,Menlo,Consolas,monospace;font-size:11px;fill:#4a5568}"
        ".head{font-size:13px;font-style:italic;fill:#4a5568}"
        ".stitle{font-family:DejaVu Sans Mono,Menlo,Consolas,monospace;font-size:12.5px;"
        "font-weight:bold}"
        ".shelp{font-size:11px;fill:#4a5568}"
        ".arrow{stroke:#2b6cb0;stroke-width:2;fill:none;marker-end:url(#head)}"
        "</style>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        '<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" '
        'fill="#2b6cb0"/></marker></defs>',
        *out_top,
    ]
    pos = []
    for (row, col), (title, lines) in zip(order, boxes):
        x, y = 20 + col * (BOX_W + GAP), top[row]
        pos.append((x, y))
        cls = "end" if title == PRODUCTS[0] else "stage"
        out.append(_box(x, y, BOX_W, row_h[row], cls=cls))
        out.append(_text(x + PAD, y + PAD + 12, title, cls="title"))
        for i, (s, kind) in enumerate(lines):
            out.append(_text(x + PAD, y + PAD + 30 + i * LINE, s, cls=kind))
    for (x0, y0), (x1, y1) in itertools.pairwise(pos):
        mid = y0 + 28
        if y0 == y1 and x1 > x0:  # row 1, left to right
            out.append(f'<path class="arrow" d="M{x0 + BOX_W},{mid} L{x1 - 2},{mid}"/>')
        elif y0 == y1:  # row 2, right to left
            out.append(f'<path class="arrow" d="M{x0},{mid} L{x1 + BOX_W + 2},{mid}"/>')
        else:  # down from the end of row 1 to the start of row 2
            xm = x0 + BOX_W // 2
            out.append(f'<path class="arrow" d="M{xm},{y0 + row_h[0]} L{xm},{y1 - 2}"/>')
    out.append(_text(20, sup_top + 14, "used by the stages", cls="head"))
    for i, (name, help_) in enumerate(SUPPORT):
        r, c = divmod(i, SUP_COLS)
        x, y = 20 + c * (sup_w + SUP_GAP), sup_top + 24 + r * (SUP_H + SUP_GAP)
        out += _small_box(x, y, sup_w, name, help_)
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# 3. where each concept lives

#: (concept, public name). The table says which module defines each one today.
CONCEPTS = [
    ("The image type every stage takes", "sciconv.io.GridImage"),
    ("Reading FITS / TIFF / PNG", "sciconv.io.read"),
    ("Writing with header, WCS, HISTORY (atomic)", "sciconv.io.write"),
    ("Which files are images", "sciconv.io.list_images"),
    ("Normalization (percentile, minmax, zscale, asinh)", "sciconv.preprocess.normalize"),
    ("The one normalization spec and its resolver", "sciconv.preprocess.resolve_normalization"),
    ("Class-per-folder datasets", "sciconv.datasets.from_folder"),
    ("Catalog (CSV) datasets", "sciconv.datasets.from_catalog"),
    ("Image + mask pairs, patches", "sciconv.datasets.from_pairs"),
    ("D4 flips and rotations", "sciconv.augment.RandomD4"),
    ("Synthetic sky fields with truth", "sciconv.simulate.sky_field"),
    ("Classifier builder", "sciconv.models.classifier"),
    ("U-Net segmenter builder", "sciconv.models.segmenter"),
    ("Model metadata (normalization, task)", "sciconv.models.get_metadata"),
    ("Safe loading of .keras files", "sciconv.models.load"),
    ("Shipped pretrained models", "sciconv.models.pretrained"),
    ("Losses", "sciconv.losses.dice_loss"),
    ("Instance AP (Data Science Bowl rule)", "sciconv.metrics.average_precision"),
    ("Devices, precision, distribution strategy", "sciconv.devices.strategy"),
    ("Training with a resumable run directory", "sciconv.training.fit"),
    ("A run folder's log read back (no TensorFlow)", "sciconv.runs.read_log"),
    ("Tiled inference", "sciconv.inference.predict_tiled"),
    ("Receptive field (sets the tile overlap)", "sciconv.inference.receptive_field"),
    ("Raw image → instance labels", "sciconv.inference.predict_instances"),
    ("Probabilities → instance labels", "sciconv.postprocess.instances"),
    ("Measurement table / sky catalog", "sciconv.postprocess.measure"),
    ("The product writer", "sciconv.postprocess.write_products"),
    ("Display with a stretch (draws only)", "sciconv.viz.show"),
    ("Public data sets (pooch)", "sciconv.fetch.fetch"),
    ("The error family", "sciconv.errors.SciconvError"),
    ("The command line", "sciconv.cli.main"),
    ("The demo", "sciconv.demo.run"),
]


def _resolve(dotted: str):
    module, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def concepts_markdown() -> str:
    rows = [
        "| concept | public name | defined in |",
        "|---|---|---|",
    ]
    for concept, dotted in CONCEPTS:
        try:
            obj = _resolve(dotted)
        except Exception as exc:  # an import error or a missing name: the table is stale
            why = f"{type(exc).__name__}: {exc}"
            logger.warning("concept table: %s does not import (%s)", dotted, why, type="sciconv")
            continue
        home = getattr(obj, "__module__", None) or dotted.rpartition(".")[0]
        path = home.replace(".", "/")
        path += "/__init__.py" if (ROOT / path).is_dir() else ".py"
        rows.append(f"| {concept} | {{py:obj}}`{dotted}` | `{path}` |")
    return "\n".join(rows) + "\n"


def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)


# --------------------------------------------------------------------------------------------
# 4. doc comments of re-exported constants


def _binders(name: str, obj) -> list:
    """The sciconv modules that bind ``name`` to ``obj`` (the defining one and its re-exports)."""
    found = []
    for modname, module in sorted(sys.modules.items()):
        if modname.startswith("sciconv.") and getattr(module, name, None) is obj:
            found.append(module)
    return found


def _defining_comment(name: str, obj) -> list[str] | None:
    """The ``#:`` comment of ``name`` in the sciconv module that binds it to ``obj``."""
    for module in _binders(name, obj):
        try:
            docs = ModuleAnalyzer.for_module(module.__name__).find_attr_docs()
        except Exception:  # no source (a C extension, a namespace package)
            continue
        if ("", name) in docs:
            return list(docs[("", name)])
    return None


def _assignment(name: str, obj) -> str | None:
    """``path:line`` of the module-level assignment that defines ``name``."""
    pattern = re.compile(rf"^{re.escape(name)}\s*[:=]")
    for module in _binders(name, obj):
        path = Path(getattr(module, "__file__", None) or "")
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.match(line):
                return f"{path.relative_to(ROOT)}:{number}"
    return None


def process_docstring(app, what, name, obj, options, lines) -> None:
    if what != "data" or not name.startswith("sciconv."):
        return
    type_doc = inspect.cleandoc(type(obj).__doc__ or "")
    if "\n".join(lines).strip() != type_doc.strip():
        return  # autodoc found the constant's own comment
    short = name.rpartition(".")[2]
    comment = _defining_comment(short, obj)
    if comment is None:
        where = _assignment(short, obj) or name
        message = "%s: public constant %s has no '#:' doc comment"
        logger.warning(message, where, short, type="sciconv")
        comment = []
    lines[:] = comment


# --------------------------------------------------------------------------------------------
# 5. every public module is documented


def check_public_modules() -> None:
    import sciconv

    public = {name for name in sciconv.__all__ if not name.startswith("_")}
    api = set(re.findall(r"^\s+sciconv\.(\w+)\s*$", (DOCS / "api.rst").read_text(), re.M))
    drawn = {name for name, *_ in STAGES + SUPPORT + DRIVERS}
    for where, names in (("docs/api.rst", api), ("the architecture diagram", drawn)):
        for name in sorted(public - names):
            logger.warning("%s does not list the public module sciconv.%s", where, name)
        for name in sorted(names - public):
            logger.warning("%s lists sciconv.%s, not in sciconv.__all__", where, name)


def builder_inited(app) -> None:
    check_public_modules()
    copy_notebooks()
    _write_if_changed(GENERATED / "architecture.svg", diagram_svg())
    _write_if_changed(GENERATED / "concepts.md", concepts_markdown())


def setup(app):
    app.connect("builder-inited", builder_inited)
    # before numpydoc (priority 500) rewrites the lines into its own layout
    app.connect("autodoc-process-docstring", process_docstring, priority=100)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
