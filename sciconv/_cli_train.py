"""``sciconv train CONFIG.yaml``: the YAML configuration, its checks, and the training run.

Examples
--------
>>> import tempfile, pathlib
>>> cfg = pathlib.Path(tempfile.mkdtemp()) / "run.yaml"
>>> _ = cfg.write_text("dataset: {kind: folder, path: data/galaxies}\\nmodel: {type: regressor}\\n")
>>> sorted(load_config(cfg))
['dataset', 'model', 'training']
"""

from __future__ import annotations

import argparse
import codecs
import inspect
import os
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sciconv._cli_common import EXIT_OK, PRETRAINED_PREFIX, load_model_arg, one_line, say
from sciconv._validation import look_up_option
from sciconv._workdir_lock import check_workdir_free
from sciconv.errors import ConfigError, ModelError, OutputExistsError, SciconvError
from sciconv.io._files import check_name_length, find_same_name, user_path

__all__ = [
    "CONFIG_SECTIONS",
    "DATASET_KINDS",
    "MODEL_TYPES",
    "add_train_parser",
    "cmd_train",
    "load_config",
]

DATASET_KINDS = ("folder", "catalog", "pairs")
MODEL_TYPES = ("classifier", "regressor", "segmenter")
CONFIG_SECTIONS = ("dataset", "model", "training")

# (datasets function, its positional data arguments as config keys)
_DATASET_FUNCS = {
    "folder": ("from_folder", ("path",)),
    "catalog": ("from_catalog", ("path",)),
    "pairs": ("from_pairs", ("images", "masks")),
}
# fit arguments a YAML file does not set: the data, the model, what the flags decide, and
# batch_size (fit's is for arrays; the CLI's datasets are batched: dataset.batch_size)
_FIT_EXCLUDED = ("model", "train", "validation_data", "overwrite", "callbacks", "batch_size")


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
            if key == "batch_size" and where == "training":
                hint = " (the batch size is dataset.batch_size)"
            raise ConfigError(
                f"unknown key {key!r} in {where}{hint}; allowed keys: {', '.join(allowed)}",
                path=path,
            )


def _unique_key_loader(yaml, size: int = 0):
    """yaml's SafeLoader refusing a key given twice in one mapping (safe_load keeps the last
    value silently: a typo's twin would pass unseen), and anchors and aliases that expand to
    much more than the file's ``size`` bytes (a "billion laughs": 700 bytes that make 3.5e9
    strings when an error message prints the value)."""

    class UniqueKeyLoader(yaml.SafeLoader):
        def compose_document(self):
            node = super().compose_document()
            _check_expansion(yaml, node, 2 * size + ALIAS_EXPANSION_LIMIT)
            return node

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    # YAML 1.2 floats: PyYAML (YAML 1.1) reads 1e-3 and 1.0e-3 without a sign as strings
    UniqueKeyLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        _FLOAT_12,
        list("-+0123456789."),
    )
    return UniqueKeyLoader


#: How much larger than its file (in values and characters) a configuration's aliases may
#: make it: real ones repeat a few settings, if any
ALIAS_EXPANSION_LIMIT = 100_000


def _check_expansion(yaml, root, limit: int) -> None:
    """Raise a YAMLError when the node tree ``root`` expands (each alias as a copy of its
    anchor's values) to more than ``limit`` values and characters, or into itself; one visit
    per distinct node.

    Examples
    --------
    >>> import yaml
    >>> node = yaml.compose("a: &x [1, 2]\\nb: [*x, *x, *x]")
    >>> _check_expansion(yaml, node, 100)
    >>> _check_expansion(yaml, node, 10)
    Traceback (most recent call last):
    ...
    yaml.composer.ComposerError: its anchors and aliases (&name, *name) expand to over 10 ...
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def refuse(node, what: str):
        raise yaml.composer.ComposerError(
            None,
            None,
            f"its anchors and aliases (&name, *name) expand to {what}; write the values out",
            node.start_mark,
        )

    def size(node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            refuse(node, "a value that holds itself")
        open_nodes.add(key)
        if isinstance(node.value, str):
            total = 1 + len(node.value)
        else:
            # a sequence's items; a mapping's (key, value) pairs
            children = [
                c for item in node.value for c in (item if isinstance(item, tuple) else (item,))
            ]
            total = 1
            for child in children:
                total += size(child)
                if total > limit:
                    refuse(node, f"over {limit} values and characters")
        open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root)


def _yaml_problem(exc) -> str:
    """PyYAML's error ``exc`` for ``not valid YAML ...``: what is wrong, then where (line and
    column, 1-based), with the way out for a Windows path in double quotes (``"C:\\Users"``:
    ``\\U`` starts an escape sequence).

    Examples
    --------
    >>> import yaml
    >>> try:
    ...     yaml.safe_load('path: "C:\\\\Users\\\\anna"')
    ... except yaml.YAMLError as exc:
    ...     print(_yaml_problem(exc))  # doctest: +NORMALIZE_WHITESPACE
    (expected escape sequence of 8 hexadecimal numbers, but found 's' while scanning a
    double-quoted scalar) at line 1, column 12; backslashes in double quotes are escapes: use
    single quotes or forward slashes
    """
    from yaml.reader import ReaderError

    if isinstance(exc, ReaderError):  # neither UTF-8 nor UTF-16 text
        return f"(not UTF-8 text: {exc.reason} at byte {exc.position}); save it as UTF-8"
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    what = " ".join(p for p in (problem, context) if p) or one_line(exc)
    text = f"({what})"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        text += f" at line {mark.line + 1}, column {mark.column + 1}"
    if problem and "escape" in problem and "double-quoted" in (context or ""):
        text += "; backslashes in double quotes are escapes: use single quotes or forward slashes"
    return text


_FLOAT_12 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


def load_config(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read and check a ``sciconv train`` YAML configuration.

    The file has three sections: ``dataset`` (``kind``: folder, catalog or pairs, the data paths,
    and any keyword of the matching :mod:`sciconv.datasets` builder), ``model`` (``type``:
    classifier, regressor or segmenter, and any keyword of that builder; or ``init``: a trained
    model to fine-tune, ``pretrained:nuclei`` or a ``.keras`` file, alone) and ``training`` (any
    keyword of :func:`sciconv.training.fit`). Unknown keys are refused with the allowed ones.
    The paths (``dataset.path``, ``images``, ``masks``, ``cache``, ``training.workdir``,
    ``model.init``) have ``~`` and ``$VARS`` expanded, as a shell would; a variable that is not
    set is refused naming its key.

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
        Missing file, invalid YAML, unknown section or key, bad ``kind``/``type``, a path
        with a variable that is not set, or a URL.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> cfg = pathlib.Path(tempfile.mkdtemp()) / "run.yaml"
    >>> text = "dataset: {kind: folder, path: data/galaxies}\\nmodel: {type: classifier}\\n"
    >>> _ = cfg.write_text(text)
    >>> from sciconv.cli import load_config
    >>> load_config(cfg)["model"]
    {'type': 'classifier'}
    """
    import yaml

    path = user_path(path, what="the configuration")
    if os.path.isdir(path):  # os.path: False for a name too long (pathlib's raises)
        raise ConfigError("is a folder; give the YAML configuration file", path=path)
    if not os.path.isfile(path):
        check_name_length(path, error=ConfigError)
        raise ConfigError("configuration file not found", path=path)
    try:  # bytes: PyYAML decodes UTF-8 or, after a byte-order mark, UTF-16 (not the locale's)
        text = path.read_bytes()
        raw = yaml.load(text, Loader=_unique_key_loader(yaml, len(text)))
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML {_yaml_problem(exc)}", path=path) from None
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
    if "init" in mod:  # a trained model, fine-tuned as it is: no builder keys
        _check_keys(mod, ["init"], where="model (init: a trained model as it is)", path=path)
        if not isinstance(mod["init"], str) or not mod["init"]:
            raise ConfigError(
                f"model.init must be a .keras file or pretrained:NAME; got {mod['init']!r}",
                path=path,
            )
    else:
        mtype = look_up_option(mod.get("type"), MODEL_TYPES, name="model.type", path=path)
        builder = getattr(models, mtype)
        allowed = ["type", *_keyword_names(builder)]  # input_shape too: else from the dataset
        _check_keys(mod, allowed, where=f"model (type {mtype})", path=path)

    allowed = _keyword_names(training.fit, exclude=_FIT_EXCLUDED)
    _check_keys(config["training"], allowed, where="training", path=path)
    _expand_paths(config, positional, path)
    return config


#: A ``$NAME`` or ``${NAME}`` that os.path.expandvars left: the variable is not set
_UNSET_VARIABLE = re.compile(r"\$(?:\w+|\{[^}]*\})")


def _expand_paths(config: dict, positional: Sequence[str], path: Path) -> None:
    """Expand ``~`` and ``$VARS`` in the configuration's paths, in place: no shell expands a
    YAML file, and ``workdir: ~/runs/x`` trained into a folder named ``~`` in the working
    directory (QA). A variable that is not set, or a ``~user`` that is no user, is refused
    naming the key; so is a URL."""
    keys = [("dataset", k) for k in (*positional, "cache")] + [("training", "workdir")]
    init = config["model"].get("init")
    if isinstance(init, str) and not init.startswith(PRETRAINED_PREFIX):
        keys.append(("model", "init"))
    for section, key in keys:
        value = config[section].get(key)
        if key == "cache" and value == "auto":
            continue
        name = f"{section}.{key}"
        if isinstance(value, str):
            config[section][key] = _expanded(value, name, path)
        elif isinstance(value, list):
            config[section][key] = [
                _expanded(v, f"{name}[{i}]", path) if isinstance(v, str) else v
                for i, v in enumerate(value)
            ]


def _expanded(value: str, key: str, config: Path) -> str:
    out = os.path.expanduser(os.path.expandvars(value))
    unset = _UNSET_VARIABLE.search(out)
    if unset is not None:
        raise ConfigError(
            f"{key}: the environment variable {unset.group(0)} in {value!r} is not set; set "
            "it, or write the path out",
            path=config,
        )
    if out.startswith("~"):
        raise ConfigError(
            f"{key}: {value!r}: {out.split('/')[0]} is not a user's home folder (write ./~ for "
            "a folder named ~)",
            path=config,
        )
    try:
        user_path(out, what=key)
    except ConfigError as exc:  # a URL
        raise ConfigError(f"{key}: {exc}", path=config) from None
    return out


_RUN_FILES = ("best.keras", "last.keras", "log.csv", "config.json")


def _interrupted(workdir: Path) -> bool:
    """True when ``workdir`` holds a run that was killed (fit resumes it): status "running" and
    no live run holding its lock (:func:`check_workdir_free` refused that one before)."""
    import json

    try:
        return (
            json.loads((workdir / "config.json").read_text(encoding="utf-8")).get("status")
            == "running"
        )
    except (OSError, ValueError):
        return False


def cmd_train(args: argparse.Namespace) -> int:
    """Run ``sciconv train``: check the configuration, build the data and model, fit.

    Parameters
    ----------
    args : argparse.Namespace
        ``config`` (the YAML path) and ``overwrite``, as :func:`add_train_parser` parses them.

    Returns
    -------
    int
        The exit code (0); problems raise :class:`~sciconv.errors.SciconvError` subclasses,
        which :func:`sciconv.cli.main` turns into one ``sciconv: error:`` line.

    Examples
    --------
    >>> import argparse
    >>> cmd_train(argparse.Namespace(config="no/such.yaml", overwrite=False))
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: no/such.yaml: configuration file not found
    """
    config = load_config(args.config)
    ds_cfg = dict(config["dataset"])
    model_cfg = dict(config["model"])
    fit_cfg = dict(config["training"])
    kind = ds_cfg.pop("kind")
    init = model_cfg.pop("init", None)
    mtype = model_cfg.pop("type", None)
    if kind == "catalog" and mtype == "regressor" and ds_cfg.get("task") is None:
        ds_cfg["task"] = "regression"  # else float labels were made classes, one per value
    if "seed" not in ds_cfg:  # the split repeats: a rerun or a resumed run holds the same out
        seed = fit_cfg.get("seed")
        ds_cfg["seed"] = seed if isinstance(seed, int) and not isinstance(seed, bool) else 0
    workdir = user_path(fit_cfg.get("workdir") or Path("runs") / Path(args.config).stem)
    check_name_length(workdir)  # as fit would, before the data are read
    fit_cfg["workdir"] = str(workdir)
    check_workdir_free(workdir)  # a run in progress there: refused before the data are read
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
    for i, (key, value) in enumerate(zip(positional, data_args)):
        paths = value if isinstance(value, list) else [value]
        if not paths or not all(isinstance(v, (str, os.PathLike)) for v in paths):
            raise ConfigError(
                f"dataset.{key} must be a path or a list of paths; got {value!r}", path=args.config
            )
        # a name typed in NFC that is on disk in NFD (a folder copied from a Mac): its spelling
        spelled = [one if os.path.exists(one) else find_same_name(one) or one for one in paths]
        for one in spelled:
            if not os.path.exists(one):  # os.path: False for a name too long
                raise ConfigError(f"dataset.{key}: path not found: {one}", path=args.config)
        data_args[i] = [str(p) for p in spelled] if isinstance(value, list) else str(spelled[0])
    from sciconv._fit_args import validate_fit_values  # imports TensorFlow: not at start-up

    with _section(args.config, "training"):  # before the data are read
        names = ("epochs", "learning_rate", "early_stopping", "reduce_lr", "steps_per_epoch")
        validate_fit_values(**{k: fit_cfg[k] for k in (*names, "seed", "warmup") if k in fit_cfg})
    start = None
    if init is not None:  # its settings are the dataset's defaults, before the data are read
        try:
            start = load_model_arg(init)
        except SciconvError as exc:  # a missing or unreadable model: the configuration's
            raise ConfigError(f"model.init: {one_line(exc)}", path=args.config) from None
        _fine_tuning_defaults(start, init, getattr(datasets, func_name), ds_cfg, fit_cfg)
    say(f"dataset: {kind} {' '.join(str(a) for a in data_args)} (seed {ds_cfg['seed']})")
    with _section(args.config, f"dataset (kind {kind})"):
        built = getattr(datasets, func_name)(*data_args, **ds_cfg)
    train, val = built if isinstance(built, tuple) else (built, None)

    spec = train.element_spec
    x_spec = spec[0] if isinstance(spec, tuple) else spec
    shape = tuple(x_spec.shape[1:])
    if fit_cfg.get("seed") is not None:  # the initial weights too: a run repeats exactly
        import keras

        keras.utils.set_random_seed(fit_cfg["seed"])
    if start is not None:
        from sciconv.models import metadata_layer, set_metadata

        model = start
        if metadata_layer(model) is not None:  # the saved models say where they started
            set_metadata(model, fine_tuned_from=init)
        say(f"model: {init}, fine-tuned, {model.count_params():,} parameters; workdir {workdir}")
    else:
        try:
            model = _build_model(mtype, model_cfg, train, shape)
        except (SciconvError, TypeError, ValueError) as exc:  # a bad value under model:
            if isinstance(exc, ConfigError) and exc.path is not None:
                raise
            text = exc.message if isinstance(exc, ConfigError) else one_line(exc)
            raise ConfigError(f"model (type {mtype}): {text}", path=args.config) from None
        say(f"model: {mtype}, {model.count_params():,} parameters; workdir {workdir}")
    if ds_cfg.get("augment") is False and "augment" not in fit_cfg:
        # dataset.augment: false says no augmentation; fit's "auto" would add D4 to cutouts
        fit_cfg["augment"] = None
    # fit records it in config.json: the YAML as written, where, and as this run resolved it
    resolved = {"dataset": ds_cfg, "model": config["model"], "training": fit_cfg}
    train.configuration = _configuration(
        args.config, kind, dict(zip(positional, data_args)), resolved
    )
    with _section(args.config, "training"):
        history = training.fit(
            model, train, validation_data=val, overwrite=args.overwrite, **fit_cfg
        )
    last = {k: v[-1] for k, v in history.history.items() if v}
    summary = ", ".join(f"{k} {v:.4g}" for k, v in sorted(last.items()) if k != "learning_rate")
    say(f"done: {summary}")
    best, done = _run_best(workdir)
    if best is not None and done and best["epoch"] + 1 != done:  # best.keras is not the last
        shown = ", ".join(
            f"{k} {v:.4g}" for k, v in sorted(best.items()) if k not in ("epoch", "learning_rate")
        )
        say(f"best.keras: epoch {best['epoch'] + 1} of {done} ({shown})")
    if init is not None and val is not None and best is not None and "val_loss" in best:
        _compare_with_start(init, model, val, best["val_loss"])
    say(f"model: {workdir / 'best.keras'}")
    return EXIT_OK


def _configuration(path, kind: str, data: dict, config: dict) -> dict:
    """The YAML file of a ``sciconv train`` run as config.json records it: its absolute path,
    the working directory (relative paths in it are relative to that), its text, and the
    configuration resolved (dataset paths and workdir absolute, the dataset seed filled in)."""
    path = Path(path)
    try:  # as load_config read it (UTF-8, or UTF-16 after a byte-order mark)
        raw = path.read_bytes()
        utf16 = raw[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
        text = raw.decode("utf-16" if utf16 else "utf-8-sig")
    except (OSError, UnicodeDecodeError):  # read moments ago; gone since
        text = None

    def absolute(value):
        if isinstance(value, list):
            return [os.path.abspath(v) for v in value]
        return os.path.abspath(value)

    dataset = {"kind": kind, **{k: absolute(v) for k, v in data.items()}, **config["dataset"]}
    training = dict(config["training"])
    training["workdir"] = os.path.abspath(training.get("workdir") or Path("runs") / path.stem)
    return {
        "path": os.path.abspath(path),
        "cwd": os.getcwd(),
        "text": text,
        "resolved": {"dataset": dataset, "model": dict(config["model"]), "training": training},
    }


def _compare_with_start(init: str, tuned, val, best_loss: float) -> None:
    """Score the model a fine-tune started from on the validation data, with the tuned
    model's loss, and say whether best.keras beats it (a fine-tune can make a model worse on
    the user's own data; nothing said so)."""
    start = load_model_arg(init)
    try:
        start.compile(loss=tuned.loss, jit_compile=False)
        scores = start.evaluate(val, verbose=0, return_dict=True)
    except Exception as exc:  # an uncomparable model: the run stands, unscored
        say(f"{init} not scored on the validation data ({one_line(exc)})")
        return
    before = float(scores["loss"])
    say(f"validation loss: {init} {before:.4g}, best.keras {best_loss:.4g}")
    if not best_loss < before:
        say(
            f"note: fine-tuning did not lower the validation loss below {init}'s; keep using "
            f"{init} unless best.keras scores better on your own measure"
        )


#: ``training.learning_rate`` of a run that fine-tunes a trained model (``model.init``), unless
#: given: fit's 1e-3 moved the pretrained nuclei model far from what it had learnt (QA: colour
#: AP@0.5 0.609 at 1e-3 against 0.686 at 1e-4, 12 colour images, 300 steps).
FINE_TUNE_LEARNING_RATE = 1e-4


def _fine_tuning_defaults(model, init: str, builder, ds_cfg: dict, fit_cfg: dict) -> None:
    """Fill in what a run that fine-tunes ``model`` needs and the configuration leaves out: the
    dataset settings it was trained with (:func:`sciconv.datasets.trained_settings`, those the
    dataset builder takes) and a lower learning rate; say each."""
    from sciconv.datasets import trained_settings

    takes = inspect.signature(builder).parameters
    for key, value in trained_settings(model).items():
        if key in takes and key not in ds_cfg:
            ds_cfg[key] = value
            say(f"dataset.{key}: {value} (as {init} was trained)")
    if "learning_rate" not in fit_cfg:
        fit_cfg["learning_rate"] = FINE_TUNE_LEARNING_RATE
        say(f"training.learning_rate: {FINE_TUNE_LEARNING_RATE:g} (fine-tuning {init})")


def _run_best(workdir: Path) -> tuple[dict | None, int | None]:
    """The best epoch of the whole run (``config.json``'s ``best``, over every resumed call)
    and the epochs done; ``(None, None)`` when the run folder does not say."""
    from sciconv.runs import read_config

    try:
        config = read_config(workdir)
    except SciconvError:
        return None, None
    best, done = config.get("best"), config.get("epochs_done")
    if not isinstance(best, dict) or not isinstance(best.get("epoch"), int):
        return None, None
    return best, done if isinstance(done, int) else None


@contextmanager
def _section(config: Path, section: str):
    """A ConfigError or ModelError under ``section`` names the config file and the section (one
    that names a file of its own, e.g. an unreadable image, is left as it is)."""
    try:
        yield
    except (ConfigError, ModelError) as exc:
        if exc.path is not None:
            raise
        # the model is built from the configuration: a model that does not fit the data (task,
        # class count, input size) is a configuration error (exit code 2), as the README says
        raise ConfigError(f"{section}: {exc.message}", path=config) from None


def _build_model(mtype: str, model_cfg: dict, train, shape: tuple):
    from sciconv import models

    spec = train.element_spec
    if mtype == "segmenter":
        model_cfg.setdefault("input_shape", (None, None, shape[-1]))
        if "num_classes" not in model_cfg:  # the classes the masks hold, as the dataset says
            names = getattr(train, "class_names", None)
            model_cfg["num_classes"] = len(names) if names else 2
        model = models.segmenter(**model_cfg)
    elif mtype == "classifier":
        shape = model_cfg.pop("input_shape", shape)
        names = getattr(train, "class_names", None)
        if "num_classes" not in model_cfg:
            if not names:
                raise ConfigError("model.num_classes is needed: the dataset has no class_names")
            if len(names) < 2:
                raise ConfigError(
                    f"the dataset has one class ({names[0]!r}); a classifier needs at least two "
                    "(one sub-folder per class)"
                )
            model_cfg["num_classes"] = len(names)
        model = models.classifier(shape, **model_cfg)
    else:
        y_spec = spec[1] if isinstance(spec, tuple) else None
        outputs = int(y_spec.shape[-1]) if y_spec is not None and len(y_spec.shape) > 1 else 1
        model_cfg.setdefault("outputs", outputs)
        model = models.regressor(model_cfg.pop("input_shape", shape), **model_cfg)
    return model


def add_train_parser(sub) -> argparse.ArgumentParser:
    """Add ``sciconv train`` to the subcommands ``sub`` (from ``add_subparsers``); return it.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="sciconv")
    >>> _ = add_train_parser(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["train", "run.yaml", "--overwrite"]).overwrite
    True
    """
    p = sub.add_parser(
        "train",
        help="train a model described by a YAML configuration",
        description="Train a model from a YAML file with sections dataset, model and training "
        "(see configs/example_train.yaml). Writes best.keras, last.keras, log.csv and "
        "config.json to training.workdir; an interrupted run resumes when run again.",
    )
    p.add_argument("config", metavar="CONFIG.yaml", help="the configuration file")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in the workdir")
    p.set_defaults(func=cmd_train)
    return p
