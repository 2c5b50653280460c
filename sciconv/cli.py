"""The ``sciconv`` command: ``demo``, ``train``, ``predict`` and ``info``.

``sciconv demo`` runs the whole pipeline on the bundled data; ``sciconv train CONFIG.yaml``
trains a model described by a YAML file (see ``configs/example_train.yaml``); ``sciconv predict
MODEL INPUT... --out DIR`` applies a trained model to images; ``sciconv info`` prints versions and
devices.

Every problem with the input (missing file, bad configuration key, existing output) ends in one
line ``sciconv: error: <message>`` on stderr and a non-zero exit code: 2 for usage and
configuration errors, 1 for the rest. Set ``SCICONV_DEBUG=1`` to see the full traceback instead.
Nothing is overwritten without ``--overwrite``.

Examples
--------
>>> from sciconv.cli import main
>>> main(["train", "no/such/config.yaml"])  # doctest: +SKIP
sciconv: error: no/such/config.yaml: configuration file not found
2
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sciconv._quiet_tf import import_tensorflow_quietly
from sciconv._validation import look_up_option
from sciconv.errors import ConfigError, InferenceError, OutputExistsError, SciconvError

__all__ = ["build_parser", "load_config", "main"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

DATASET_KINDS = ("folder", "catalog", "pairs")
MODEL_TYPES = ("classifier", "regressor", "segmenter")
CONFIG_SECTIONS = ("dataset", "model", "training")
# sciconv.postprocess.PRODUCT_FORMATS and PRODUCT_CATALOG_FORMATS, written out so that parsing
# the command line does not import the postprocess stack (tests/test_cli.py checks they agree)
PRODUCT_FORMATS = ("fits", "tiff", "ome-zarr")
PRODUCT_CATALOG_FORMATS = ("ecsv", "votable", "fits")

# (datasets function, its positional data arguments as config keys)
_DATASET_FUNCS = {
    "folder": ("from_folder", ("path",)),
    "catalog": ("from_catalog", ("path",)),
    "pairs": ("from_pairs", ("images", "masks")),
}
# keys the command fills in itself for each model builder
_MODEL_DERIVED = {
    "classifier": ("input_shape", "num_classes"),
    "regressor": ("input_shape", "outputs"),
    "segmenter": ("input_shape", "num_classes"),
}
# fit arguments a YAML file does not set: the data, the model, and what the flags decide
_FIT_EXCLUDED = ("model", "train", "validation_data", "overwrite", "callbacks")


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error format used everywhere in the command."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"sciconv: error: {message}\n")


def _say(*parts: Any) -> None:
    """Print progress for the person at the terminal (the CLI is the one place that prints)."""
    print(*parts, flush=True)


# --------------------------------------------------------------------------------------------
# configuration files
# --------------------------------------------------------------------------------------------
def _keyword_names(func: Callable, exclude: Sequence[str] = ()) -> list[str]:
    params = inspect.signature(func).parameters.values()
    return [
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in exclude
    ]


def _check_keys(section: Mapping, allowed: Sequence[str], *, where: str, path: Path) -> None:
    import difflib

    for key in section:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), list(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"unknown key {key!r} in {where}{hint}; allowed keys: {', '.join(allowed)}",
                path=path,
            )


def load_config(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read and check a ``sciconv train`` YAML configuration.

    The file has three sections: ``dataset`` (``kind``: folder, catalog or pairs, the data paths,
    and any keyword of the matching :mod:`sciconv.datasets` builder), ``model`` (``type``:
    classifier, regressor or segmenter, and any keyword of that builder) and ``training`` (any
    keyword of :func:`sciconv.training.fit`). Unknown keys are refused with the allowed ones.

    Parameters
    ----------
    path : str or os.PathLike
        The YAML file.

    Returns
    -------
    dict
        ``{"dataset": {...}, "model": {...}, "training": {...}}``.

    Raises
    ------
    ConfigError
        Missing file, invalid YAML, unknown section or key, bad ``kind``/``type``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> cfg = pathlib.Path(tempfile.mkdtemp()) / "run.yaml"
    >>> text = "dataset: {kind: folder, path: data/galaxies}\\nmodel: {type: classifier}\\n"
    >>> _ = cfg.write_text(text)
    >>> load_config(cfg)["model"]
    {'type': 'classifier'}
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError("configuration file not found", path=path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"not valid YAML ({first})", path=path) from None
    if not isinstance(raw, dict):
        raise ConfigError(
            "configuration must be a mapping with sections dataset, model, training", path=path
        )
    _check_keys(raw, CONFIG_SECTIONS, where="the configuration", path=path)
    config: dict[str, dict[str, Any]] = {}
    for name in CONFIG_SECTIONS:
        section = raw.get(name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"section {name!r} must be a mapping of keys to values", path=path)
        config[name] = dict(section)
    for name in ("dataset", "model"):
        if not config[name]:
            raise ConfigError(f"section {name!r} is missing", path=path)

    from sciconv import datasets, models, training

    ds = config["dataset"]
    kind = look_up_option(ds.get("kind"), DATASET_KINDS, name="dataset.kind", path=path)
    func_name, positional = _DATASET_FUNCS[kind]
    func = getattr(datasets, func_name)
    data_params = list(inspect.signature(func).parameters)[: len(positional)]
    allowed = ["kind", *positional, *_keyword_names(func, exclude=data_params)]
    allowed = list(dict.fromkeys(allowed))
    _check_keys(ds, allowed, where=f"dataset (kind {kind})", path=path)
    for key in positional:
        if key not in ds:
            raise ConfigError(f"dataset (kind {kind}) needs the key {key!r}", path=path)

    mod = config["model"]
    mtype = look_up_option(mod.get("type"), MODEL_TYPES, name="model.type", path=path)
    builder = getattr(models, mtype)
    allowed = ["type", *_keyword_names(builder, exclude=("input_shape",))]
    _check_keys(mod, allowed, where=f"model (type {mtype})", path=path)

    allowed = _keyword_names(training.fit, exclude=_FIT_EXCLUDED)
    _check_keys(config["training"], allowed, where="training", path=path)
    return config


# --------------------------------------------------------------------------------------------
# sciconv train
# --------------------------------------------------------------------------------------------
_RUN_FILES = ("best.keras", "last.keras", "log.csv", "config.json")


def _interrupted(workdir: Path) -> bool:
    """True when ``workdir`` holds a run that was killed (fit resumes it)."""
    import json

    try:
        return json.loads((workdir / "config.json").read_text()).get("status") == "running"
    except (OSError, ValueError):
        return False


def _cmd_train(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    ds_cfg = dict(config["dataset"])
    model_cfg = dict(config["model"])
    fit_cfg = dict(config["training"])
    kind = ds_cfg.pop("kind")
    mtype = model_cfg.pop("type")
    workdir = Path(fit_cfg.get("workdir") or Path("runs") / Path(args.config).stem)
    fit_cfg["workdir"] = str(workdir)
    existing = [f for f in _RUN_FILES if (workdir / f).exists()]
    if existing and not args.overwrite and not _interrupted(workdir):
        raise OutputExistsError(
            f"workdir holds a finished run ({', '.join(existing)}); pass --overwrite to replace "
            "it, or set training.workdir to a new folder",
            path=workdir,
        )

    from sciconv import datasets, training

    func_name, positional = _DATASET_FUNCS[kind]
    data_args = [ds_cfg.pop(k) for k in positional]
    for key, value in zip(positional, data_args):
        paths = value if isinstance(value, list) else [value]
        if not paths or not all(isinstance(v, (str, os.PathLike)) for v in paths):
            raise ConfigError(
                f"dataset.{key} must be a path or a list of paths; got {value!r}", path=args.config
            )
        for one in paths:
            if not Path(one).exists():
                raise ConfigError(f"dataset.{key}: path not found: {one}")
    _say(f"dataset: {kind} {' '.join(str(a) for a in data_args)}")
    built = getattr(datasets, func_name)(*data_args, **ds_cfg)
    train, val = built if isinstance(built, tuple) else (built, None)

    spec = train.element_spec
    x_spec = spec[0] if isinstance(spec, tuple) else spec
    shape = tuple(x_spec.shape[1:])
    try:
        model = _build_model(mtype, model_cfg, train, shape, ds_cfg)
    except (SciconvError, TypeError, ValueError) as exc:  # a bad value under model:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"model (type {mtype}): {_one_line(exc)}", path=args.config) from None
    _say(f"model: {mtype}, {model.count_params():,} parameters; workdir {workdir}")
    history = training.fit(model, train, validation_data=val, overwrite=args.overwrite, **fit_cfg)
    last = {k: v[-1] for k, v in history.history.items() if v}
    summary = ", ".join(f"{k} {v:.4g}" for k, v in sorted(last.items()) if k != "learning_rate")
    _say(f"done: {summary}")
    _say(f"model: {workdir / 'best.keras'}")
    return EXIT_OK


def _build_model(mtype: str, model_cfg: dict, train, shape: tuple, ds_cfg: dict):
    from sciconv import models

    spec = train.element_spec
    if mtype == "segmenter":
        model_cfg.setdefault("input_shape", (None, None, shape[-1]))
        if "num_classes" not in model_cfg:
            model_cfg["num_classes"] = 3 if ds_cfg.get("target") == "boundary" else 2
        model = models.segmenter(**model_cfg)
    elif mtype == "classifier":
        names = getattr(train, "class_names", None)
        if "num_classes" not in model_cfg:
            if not names:
                raise ConfigError("model.num_classes is needed: the dataset has no class_names")
            model_cfg["num_classes"] = len(names)
        model = models.classifier(shape, **model_cfg)
    else:
        y_spec = spec[1] if isinstance(spec, tuple) else None
        outputs = int(y_spec.shape[-1]) if y_spec is not None and len(y_spec.shape) > 1 else 1
        model_cfg.setdefault("outputs", outputs)
        model = models.regressor(shape, **model_cfg)
    return model


# --------------------------------------------------------------------------------------------
# sciconv predict
# --------------------------------------------------------------------------------------------
def _expand_inputs(inputs: Sequence[str]) -> list[Path]:
    from sciconv import io

    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = io.list_images(p)
            if not found:
                raise InferenceError("folder holds no image files", path=p)
            paths.extend(Path(f) for f in found)
        elif p.exists():
            paths.append(p)
        else:
            raise InferenceError("input not found", path=p)
    return paths


def _is_fits(path: Path) -> bool:
    from sciconv import io

    return path.name.lower().endswith(tuple(e.lower() for e in io.FITS_EXTENSIONS))


def _product_format(path: Path, chosen: str | None = None) -> str:
    """``--format`` when given; else FITS inputs give FITS products (header and WCS kept), the
    others TIFF."""
    if chosen is not None:
        return chosen
    return "fits" if _is_fits(path) else "tiff"


# the products sciconv predict writes for each input (postprocess.product_paths keys)
_WRITTEN_PRODUCTS = ("prob", "labels", "catalog")


def _segmentation_outputs(
    paths: Sequence[Path],
    out: Path,
    *,
    regions: bool = False,
    format: str | None = None,
    catalog_format: str = "ecsv",
) -> dict[Path, dict[str, Path]]:
    """The product files of every input (postprocess.product_paths), named by io.image_stem."""
    from sciconv import io, postprocess

    planned: dict[Path, dict[str, Path]] = {}
    seen: dict[str, Path] = {}
    for p in paths:
        stem = io.image_stem(p)
        if stem in seen:
            raise InferenceError(
                f"two inputs share the name {stem!r} ({seen[stem]} and {p}); their outputs "
                "would collide in --out"
            )
        seen[stem] = p
        names = postprocess.product_paths(
            out, stem=stem, format=_product_format(p, format), catalog_format=catalog_format
        )
        planned[p] = {k: names[k] for k in _WRITTEN_PRODUCTS}
        if regions:
            planned[p]["regions"] = Path(out) / f"{stem}_regions.reg"
    return planned


def _check_outputs(paths: Sequence[Path], *, overwrite: bool) -> None:
    from sciconv._atomic import check_writable

    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputExistsError(
            f"output exists{more}; pass --overwrite to replace it", path=existing[0]
        )
    for p in paths:
        if not p.is_dir():  # an OME-Zarr store (a folder) is replaced whole by its writer
            check_writable(p, overwrite=overwrite)


def _progress(items, *, desc: str):
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="file", disable=len(items) < 2, file=sys.stderr)


def _is_mosaic(path, args) -> bool:
    """Segment block by block: asked for (``--block``), or too many pixels for one call."""
    from sciconv import inference, io

    if args.block is not None:
        return True
    h, w, _ = io.probe_shape(path)
    return h * w > inference.AUTO_BLOCK_PIXELS


def _predict_mosaic(model, path, args) -> list[Path]:
    """Labels to NAME_labels.zarr, the catalog to NAME_catalog.<fmt>, block by block."""
    from sciconv import inference

    if args.regions or args.format not in (None, "ome-zarr") or args.scale is not None:
        raise ConfigError(
            f"{path}: block-wise segmentation (--block, or images over "
            f"{inference.AUTO_BLOCK_PIXELS} pixels) writes labels to zarr and a catalog; "
            "--regions, --format and --scale are not available for it"
        )
    outs = inference.predict_mosaic(
        model,
        path,
        args.out,
        block=args.block,
        catalog_format=args.catalog_format,
        overwrite=args.overwrite,
        tile=args.tile if args.tile is not None else "auto",
        overlap=args.overlap,
        tta="d4" if args.tta else None,
        batch_size=args.batch_size,
    )
    _say(f"{path}: block-wise -> {', '.join(p.name for p in outs.values())}")
    return list(outs.values())


def _predict_segmentation(model, paths, args) -> list[Path]:
    from sciconv import inference, io, models, postprocess

    mosaics = [p for p in paths if _is_mosaic(p, args)]
    paths = [p for p in paths if p not in mosaics]
    written: list[Path] = []
    for path in mosaics:
        written.extend(_predict_mosaic(model, path, args))
    planned = _segmentation_outputs(
        paths,
        args.out,
        regions=bool(args.regions),
        format=args.format,
        catalog_format=args.catalog_format,
    )
    _check_outputs([f for d in planned.values() for f in d.values()], overwrite=args.overwrite)
    names = models.get_metadata(model).get("class_names")
    params = {
        "tile": args.tile if args.tile is not None else "auto",
        "overlap": args.overlap,
        "tta": "d4" if args.tta else None,
        "scale": args.scale if args.scale is not None else "auto",
    }
    for path in _progress(paths, desc="predict"):
        img = io.read(path)
        labels, prob, *spread = inference.predict_instances(  # recorded post-processing
            model,
            img,
            batch_size=args.batch_size,
            return_prob=True,
            uncertainty=args.uncertainty,
            **params,
        )
        std = spread[0] if spread else None
        bad = img.mask if img.mask is not None and img.mask.any() else None
        table = postprocess.measure(labels, intensity=img, wcs=img.wcs, mask=bad)
        if img.pixel_scale is not None:  # sizes in arcsec or micrometres too
            postprocess.add_physical_columns(table, img.pixel_scale)
        if std is not None:  # each object's score and uncertainty
            table = _with_scores(table, postprocess.object_scores(labels, prob, std))
        outs = postprocess.write_products(  # the class cube, the labels, the mask, the catalog
            args.out,
            prob=prob,
            labels=labels,
            catalog=table,
            mask=bad,
            uncertainty=std,
            like=img,
            stem=io.image_stem(path),
            format=_product_format(path, args.format),
            catalog_format=args.catalog_format,
            class_names=names if names and len(names) == prob.shape[-1] else None,
            model=Path(args.model).name,  # best.keras, pretrained:nuclei
            params=params,
            history=["sciconv predict"],
            overwrite=args.overwrite,
        )
        if args.regions:  # DS9 / Aladin regions, in sky coordinates when the image has a WCS
            outs["regions"] = postprocess.write_regions(
                table if args.regions == "ellipse" else labels,
                planned[path]["regions"],
                wcs=img.wcs,
                shape=args.regions,
                overwrite=args.overwrite,
            )
        written.extend(outs.values())
        _say(f"{path}: {int(labels.max())} objects -> {outs['labels'].name}")
    return written


def _with_scores(table, scores):
    """The catalog with the objects' ``score`` and ``uncertainty`` columns, rows kept in order."""
    from astropy.table import join

    joined = join(table, scores, keys="label", join_type="left")
    joined.sort("label")
    joined.meta.update(table.meta)
    return joined


def _predict_table(model, paths, args) -> list[Path]:
    from sciconv import inference, postprocess

    target = args.out / "predictions.csv"
    _check_outputs([target], overwrite=args.overwrite)
    table = inference.predict_files(model, [str(p) for p in paths], batch_size=args.batch_size)
    # CSV holds one value per cell: postprocess.flatten_table's rule, probabilities_<class name>
    postprocess.write_catalog(table, target, overwrite=args.overwrite)
    _say(f"{len(table)} predictions -> {target}")
    return [target]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def _overlap_arg(text: str) -> int | str:
    """``--overlap``: an int, or ``auto`` (the library default)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or auto, got {text!r}") from None


def _cmd_predict(args: argparse.Namespace) -> int:
    args.out = Path(args.out)
    if args.out.exists() and not args.out.is_dir():
        raise OutputExistsError("--out must be a folder; a file of that name exists", path=args.out)
    if args.overlap != "auto" and args.overlap < 0:
        raise ConfigError(f"--overlap must be >= 0 or auto; got {args.overlap}")
    shipped = args.model.startswith("pretrained:")
    model_path = Path(args.model)
    if not shipped and not model_path.is_file():
        raise SciconvError("model file not found", path=model_path)
    paths = _expand_inputs(args.inputs)

    from sciconv import models

    if shipped:
        model = models.pretrained(args.model.split(":", 1)[1])
    else:
        model = models.load(model_path, trust=args.trust)
    meta = models.get_metadata(model)
    if meta.get("task") == "segmentation":
        _predict_segmentation(model, paths, args)
    else:
        _predict_table(model, paths, args)
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# sciconv demo / info
# --------------------------------------------------------------------------------------------
def _cmd_demo(args: argparse.Namespace) -> int:
    from sciconv import demo

    fast = args.fast or os.environ.get("SCICONV_FAST") == "1"
    result = demo.run(out=args.out, data=args.data, fast=fast, overwrite=args.overwrite, log=_say)
    _say("")
    _say("headline metrics")
    for line in demo.headline(result):
        _say(f"  {line}")
    _say(f"report: {Path(args.out) / 'report.md'}")
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    from sciconv import devices

    _say(devices.describe())
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# parser and entry point
# --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``sciconv`` argument parser with its four subcommands.

    Examples
    --------
    >>> args = build_parser().parse_args(["predict", "m.keras", "a.fits", "--out", "res"])
    >>> args.command, args.inputs, args.tta
    ('predict', ['a.fits'], False)
    """
    from sciconv import __version__

    parser = _Parser(
        prog="sciconv",
        description="Convolutional neural networks for scientific images (FITS, TIFF, PNG).",
        epilog="Run 'sciconv COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"sciconv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "demo",
        help="train, evaluate and apply models on the bundled data; write a report",
        description="The whole pipeline on the bundled data: a galaxy classifier, a nuclei "
        "segmenter, tiled detection on a sky field with a WCS, and the pretrained nuclei model on "
        "real images. Writes models, predictions (FITS/TIFF/ECSV), plots and report.md to --out.",
    )
    p.add_argument("--out", default="sciconv_demo", help="output folder (default: %(default)s)")
    p.add_argument("--data", default=None, help="bundled data folder (default: the repo's data/)")
    p.add_argument("--fast", action="store_true", help="tiny run (~1 min); also SCICONV_FAST=1")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "train",
        help="train a model described by a YAML configuration",
        description="Train a model from a YAML file with sections dataset, model and training "
        "(see configs/example_train.yaml). Writes best.keras, last.keras, log.csv and "
        "config.json to training.workdir; an interrupted run resumes when run again.",
    )
    p.add_argument("config", metavar="CONFIG.yaml", help="the configuration file")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in the workdir")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "predict",
        help="apply a trained model to images",
        description="Apply a .keras model to images or folders of images. Segmenters write, per "
        "input NAME, NAME_prob (the class probabilities, one plane per class, named by the "
        "CLASS0, CLASS1, ... cards of a FITS file), NAME_labels (instance labels) and "
        "NAME_catalog (one row per object, with RA/Dec when the input has a WCS); FITS "
        "inputs give FITS files keeping the input's header and WCS, other inputs TIFF (--format "
        "chooses; ome-zarr writes one NAME.ome.zarr store with the labels as its NGFF "
        "labels/instances group). The input's bad-pixel mask is written with the products (a "
        "MASK extension in FITS). Classifiers and regressors write one predictions.csv (one "
        "column per class: probabilities_<class name>).",
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help="a .keras model saved by sciconv, or pretrained:NAME for a shipped model "
        "(e.g. pretrained:nuclei)",
    )
    p.add_argument("inputs", metavar="INPUT", nargs="+", help="image files or folders")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--tile",
        type=int,
        default=None,
        metavar="N",
        help="tile size, a multiple of the model's divisor (default: auto)",
    )
    p.add_argument(
        "--overlap",
        type=_overlap_arg,
        default="auto",
        metavar="N",
        help="tile overlap in pixels, or auto: what the model's receptive field needs "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--batch-size", type=_positive_int, default=8, metavar="N", help="tiles per batch"
    )
    p.add_argument("--tta", action="store_true", help="test-time augmentation (8 flips/rotations)")
    p.add_argument(
        "--scale",
        type=_positive_float,
        default=None,
        metavar="F",
        help="segmenters: resample images by F first, labels mapped back (e.g. 0.3 for nuclei "
        "~60 px across with pretrained:nuclei, trained on ~18 px)",
    )
    p.add_argument(
        "--regions",
        choices=("ellipse", "polygon"),
        default=None,
        help="segmenters: also write the detections as a DS9/Aladin region file NAME_regions.reg "
        "(ellipses from moments or label outlines; sky coordinates when the image has a WCS)",
    )
    p.add_argument(
        "--uncertainty",
        choices=("tta", "mc_dropout"),
        default=None,
        help="segmenters: also an uncertainty map (8 flips/rotations, or 8 samples with dropout "
        "active; 8x the time): a standard-deviation extension in the products, score and "
        "uncertainty columns in the catalog",
    )
    p.add_argument(
        "--block",
        type=_positive_int,
        default=None,
        metavar="N",
        help="segmenters: work block by block (N-px cores) for images larger than memory: "
        "labels to NAME_labels.zarr, catalog to NAME_catalog.<fmt> (automatic above "
        "2 x 4096^2 pixels)",
    )
    _add_product_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--trust", action="store_true", help="load a model holding code (Lambda layers)")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "info",
        help="print versions, devices and the active distribution strategy",
        description="Print sciconv/TensorFlow/Keras versions, CPU and GPUs, cluster and policies.",
    )
    p.set_defaults(func=_cmd_info)
    return parser


def _add_product_options(p: argparse.ArgumentParser) -> None:
    """``sciconv predict``'s product formats: add product options here."""
    group = p.add_argument_group("products (segmenters)")
    group.add_argument(
        "--format",
        choices=PRODUCT_FORMATS,
        default=None,
        help="image format of the products: fits (header, WCS, MASK extension), tiff, or "
        "ome-zarr (NAME.ome.zarr: the probabilities with the labels and mask as NGFF label "
        "groups, for napari and other NGFF viewers); default: fits for FITS inputs, else tiff",
    )
    group.add_argument(
        "--catalog-format",
        choices=PRODUCT_CATALOG_FORMATS,
        default="ecsv",
        help="catalog format: ecsv, votable (NAME_catalog.vot, for TOPCAT and Aladin, with "
        "units and UCDs) or fits (a FITS table); default: %(default)s",
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and getattr(exc, "filename", None) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sciconv`` command; returns the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 for usage and configuration errors, 1 for any other error.

    Examples
    --------
    >>> main(["--version"])  # doctest: +SKIP
    sciconv 0.1.0
    0
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code or 0)
    debug = os.environ.get("SCICONV_DEBUG") == "1"
    if not debug:
        import_tensorflow_quietly()
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("sciconv: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        code = EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_ERROR
        if isinstance(exc, (SciconvError, OSError)):
            msg = _one_line(exc)
            if isinstance(exc, OutputExistsError):  # the library says overwrite=True
                msg = msg.replace("overwrite=True", "--overwrite")
        else:
            msg = (
                f"unexpected {type(exc).__name__}: {_one_line(exc)} "
                "(set SCICONV_DEBUG=1 for the traceback)"
            )
        print(f"sciconv: error: {msg}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
