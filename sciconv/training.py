"""Train a sciconv model with sensible defaults, a run directory and resumable runs.

:func:`fit` compiles an uncompiled model for its task (read from the model's metadata), adds the
usual callbacks and writes a run directory::

    workdir/
      config.json    run settings, library versions, status ("running" / "finished"), the
                     data (dataset.source: kind, absolute folders; dataset.content: a
                     sha256 of the files), sciconv train's YAML (configuration), first
                     start and resumes (started, resumed), resume_exact / resume_note
      best.keras     best model so far (val_loss, or loss without validation data)
      last.keras     model at the end of the latest epoch
      log.csv        one row per epoch (appended to when a run resumes)
      backup/        BackupAndRestore state while a run is in progress (deleted when it ends)
      logs/          TensorBoard event files (tensorboard=True)
      run.lock       pid, host and start of the run training there (removed when it ends)

A run killed at any point (Ctrl-C, SIGKILL, a pre-empted job) continues from the last finished
epoch when :func:`fit` is called again with the same ``workdir`` and a freshly built model of the
same architecture; a sciconv dataset (or arrays) then goes on with the batches the
uninterrupted run would have drawn (``resume_exact`` in config.json; dropout is not restored).
A run still training holds the workdir: a second :func:`fit` on it is refused
(a lock left by a process that is gone is taken over with a warning). Model files are written
atomically (temporary file + rename), only by the chief worker in multi-worker training.

Examples
--------
>>> import numpy as np, sciconv as sc
>>> x = np.random.default_rng(0).normal(size=(16, 8, 8, 1)).astype("float32")
>>> y = (x.mean(axis=(1, 2, 3)) > 0).astype("int64")
>>> model = sc.models.classifier((8, 8, 1), 2, filters=(4,), dense=())
>>> history = sc.training.fit(model, (x, y), epochs=2, verbose=0, seed=0)
>>> len(history.history["loss"])
2
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from sciconv import __version__, devices
from sciconv._atomic import atomic_output
from sciconv._fit_args import validate_fit_args
from sciconv._fit_backup import (
    COMPILED_BY_FIT,
    OPTIMIZER_STEPPED,
    BackupAndRestore,
    RestoreBackup,
    take_stopped_mark,
    undo_interrupted_call,
)
from sciconv._fit_data import (
    as_fit_arrays,
    check_class_weight,
    check_data_shapes,
    check_replica_split,
    warn_imbalance,
)
from sciconv._fit_log import CsvLog
from sciconv._fit_metadata import (
    adapt_target_scale,
    check_validation_data,
    record_dataset_metadata,
    record_training_provenance,
    resume_exactness,
)
from sciconv._fit_schedule import LearningRateLog, chance_loss, schedule_callbacks
from sciconv._fit_split import check_resumed_split, describe_split
from sciconv._fit_workdir import (
    content_digest,
    data_files,
    json_default,
    prepare_workdir,
    refuse_workdir,
    run_times,
    tensorboard_dir,
    workdir_path,
)
from sciconv._progress import interactive
from sciconv._workdir_lock import lock_workdir
from sciconv.augment import d4_train_data, resolve_train_augment
from sciconv.datasets._pipelines import array_batches
from sciconv.errors import (
    ConfigError,
    ModelError,
    SciconvError,
)
from sciconv.losses import BCEDiceLoss, bce_dice_loss, dice_loss, focal_loss, gaussian_nll
from sciconv.metrics import Dice, IoU, MeanIoU
from sciconv.models.metadata import get_metadata, model_task, output_activation
from sciconv.runs import best_epoch, read_config, read_log, truncate_log

__all__ = ["default_compile_args", "fit", "read_config"]

TASKS = ("classification", "multilabel", "regression", "segmentation")


# --------------------------------------------------------------------------- compile defaults


def _label_spec(train):
    spec = getattr(train, "element_spec", None)
    if isinstance(spec, tuple) and len(spec) >= 2:
        return spec[1]
    return None


def default_compile_args(model: keras.Model, *, label_spec=None) -> dict:
    """Loss and metrics :func:`fit` uses for an uncompiled model, from its metadata ``task``.

    ============== ======================================================================
    task           loss / metrics
    ============== ======================================================================
    classification sparse categorical cross-entropy (categorical for one-hot labels) /
                   accuracy
    multilabel     binary cross-entropy / binary accuracy
    regression     mean squared error / mean absolute error; with ``uncertainty``:
                   :func:`sciconv.losses.gaussian_nll`
    segmentation   :class:`sciconv.losses.BCEDiceLoss` (cross-entropy + Dice; a Loss object,
                   so per-pixel weights of masked pixels reach it) / mean IoU, the IoU of
                   class 1 (``iou_1``: the foreground of a 2-class model, the interior of a
                   3-class boundary/touching one), Dice as ``weighted_metrics`` (a pixel of
                   weight 0, bad or padding, counts in no metric either)
    ============== ======================================================================

    Cross-entropy + Dice is the default for segmentation: cross-entropy alone under-segments
    small foregrounds (nuclei cover ~20 % of a field), Dice alone gives noisy gradients early on.

    Parameters
    ----------
    model : keras.Model
        A model with sciconv metadata (``task``); a model without it is treated by its output
        (:func:`sciconv.models.model_task`): ``(N, K)`` as classification (logits, a linear
        output, with ``from_logits``), as multi-label with a sigmoid, as regression with one
        linear unit; ``(N, H, W, K)`` as segmentation.
    label_spec : tf.TensorSpec, optional
        Spec of the labels (to tell one-hot from sparse classification labels).

    Returns
    -------
    dict
        ``{"loss": ..., "metrics": [...]}`` for ``model.compile`` (``"weighted_metrics"``
        instead of ``"metrics"`` for segmentation).

    Examples
    --------
    >>> import sciconv as sc
    >>> from sciconv.training import default_compile_args
    >>> args = default_compile_args(sc.models.classifier((8, 8, 1), 3, filters=(2,), dense=()))
    >>> args["loss"], args["metrics"]
    ('sparse_categorical_crossentropy', ['accuracy'])
    """
    meta = get_metadata(model)
    task = model_task(model)
    if task == "classification":
        one_hot = (
            label_spec is not None
            and label_spec.shape.rank == 2
            and label_spec.shape[-1] not in (None, 1)
        )
        if output_activation(model) == "linear":  # logits (a Dense with no activation)
            cls = keras.losses.CategoricalCrossentropy if one_hot else None
            cls = cls or keras.losses.SparseCategoricalCrossentropy
            return {"loss": cls(from_logits=True), "metrics": ["accuracy"]}
        loss = "categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy"
        return {"loss": loss, "metrics": ["accuracy"]}
    if task == "multilabel":
        return {"loss": "binary_crossentropy", "metrics": ["binary_accuracy"]}
    if task == "regression":
        if meta.get("uncertainty"):
            return {"loss": gaussian_nll, "metrics": []}
        return {"loss": "mse", "metrics": ["mae"]}
    if task == "segmentation":
        k = int(meta.get("num_classes") or model.outputs[0].shape[-1])
        metrics = [MeanIoU(k), IoU(k, class_id=1), Dice(k)]
        extra = meta.get("instance_output")
        # weighted: a dataset's per-pixel weights (0 on bad pixels and padding) reach them
        if extra:
            second = "mse" if extra == "distance" else "binary_crossentropy"
            return {"loss": [BCEDiceLoss(), second], "weighted_metrics": [metrics, []]}
        return {"loss": BCEDiceLoss(), "weighted_metrics": metrics}
    raise ModelError(
        f"cannot choose a loss for model {model.name!r}: its metadata task is {task!r}; compile "
        f"the model yourself or set_metadata(model, task=...) with one of {', '.join(TASKS)}"
    )


# --------------------------------------------------------------------------- callbacks


class _AtomicCheckpoint(keras.callbacks.Callback):
    """Save the model as ``.keras`` atomically: every epoch, or when ``monitor`` improves."""

    def __init__(self, path: Path, *, monitor: str | None = None, best: float = math.inf):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.best = best

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor is not None:
            value = (logs or {}).get(self.monitor)
            if value is None or not np.isfinite(value) or value >= self.best:
                return
            self.best = float(value)
        with atomic_output(self.path, overwrite=True) as tmp:
            self.model.save(tmp)


class _RunStatus(keras.callbacks.Callback):
    """Record the epoch reached in config.json (status stays "running" until fit returns)."""

    def __init__(self, workdir: Path, config: dict):
        super().__init__()
        self.workdir = workdir
        self.config = config

    def on_epoch_end(self, epoch, logs=None):
        self.config["epochs_done"] = epoch + 1
        _write_config(self.workdir, self.config)


# the dataset attributes that say how batches were drawn (recorded in config.json)
_DRAWN = ("augmentation", "batch_size", "patch_size", "patches_per_image")


def _write_config(workdir: Path, config: dict) -> None:
    with atomic_output(workdir / "config.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(config, indent=2, default=json_default) + "\n", encoding="utf-8")


def _fingerprint(model) -> dict:
    """What tells two architectures apart in config.json: parameter count, weight shapes' hash."""
    shapes = ";".join(str(tuple(w.shape)) for w in model.weights)  # names vary per build
    return {
        "params": int(model.count_params()),
        "weights": hashlib.sha256(shapes.encode()).hexdigest()[:16],
    }


def _best_from_log(log: Path, monitor: str) -> float:
    """The best (lowest finite) ``monitor`` value in a run's log; inf when there is none."""
    with contextlib.suppress(SciconvError):
        values = read_log(log, columns=[monitor])[monitor]
        values = values[np.isfinite(values)]
        if values.size:
            return float(values.min())
    return math.inf


def _epoch_steps(train, steps_per_epoch):
    """``(train, steps_per_epoch)`` for ``keras.Model.fit``: never an input that runs out early.

    The dataset's ``.steps_per_epoch`` is the default. With a count, a finite dataset is repeated:
    Keras would otherwise end an epoch early (and warn "Your input ran out of data") whenever the
    data hold fewer batches than are still to be trained.
    """
    if isinstance(train, tuple):
        return train, steps_per_epoch
    if steps_per_epoch is None:
        own = getattr(train, "steps_per_epoch", None)
        if isinstance(own, (int, np.integer)) and not isinstance(own, bool) and own >= 1:
            steps_per_epoch = int(own)
    endless = int(train.cardinality()) == int(tf.data.INFINITE_CARDINALITY)
    if steps_per_epoch is None:
        if endless:
            raise ConfigError(
                "train is an endless dataset: pass steps_per_epoch (batches per epoch)"
            )
        return train, None
    return (train if endless else train.repeat()), steps_per_epoch


def _check_pixel_weights(model, train) -> None:
    """Refuse per-pixel weights with a sciconv loss *function*: Keras cannot weigh its pixels."""
    if isinstance(train, tuple):
        ranked = len(train) > 2 and np.ndim(train[2]) >= 2
    else:
        spec = train.element_spec
        ranked = isinstance(spec, tuple) and len(spec) > 2 and len(spec[2].shape) >= 2
    losses = getattr(model, "loss", None)
    losses = list(losses) if isinstance(losses, (list, tuple)) else [losses]
    functions = {bce_dice_loss: "BCEDiceLoss", dice_loss: "DiceLoss", focal_loss: "FocalLoss"}
    bad = [functions[f] for f in losses if ranked and f in functions]
    if bad:
        raise ConfigError(
            "the training data carry per-pixel weights (masked pixels, or the padding of images "
            "smaller than their patches, which mirrors objects labelled background) but the "
            "model was "
            f"compiled with a sciconv loss function, which Keras cannot weigh per pixel; compile "
            f"with the Loss object instead: loss=sciconv.losses.{bad[0]}()"
        )


def _source(train) -> dict:
    """Where ``fit``'s data came from: a sciconv dataset's ``.source`` (kind and absolute
    paths), else ``{"kind": "arrays"}`` or ``{"kind": "tf.data"}``."""
    source = getattr(train, "source", None)
    if isinstance(source, dict):
        return dict(source)
    return {"kind": "arrays" if isinstance(train, tuple) else "tf.data"}


def _versions() -> dict:
    out = {
        "sciconv": __version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    return out


# --------------------------------------------------------------------------- fit


def fit(
    model: keras.Model,
    train,
    validation_data=None,
    *,
    epochs: int = 10,
    workdir: str | os.PathLike | None = None,
    learning_rate: float = 1e-3,
    early_stopping: int | None = None,
    reduce_lr: bool | int = True,
    tensorboard: bool = True,
    class_weight: Mapping[int | str, float] | None = None,
    steps_per_epoch: int | None = None,
    batch_size: int = 32,
    augment: bool | str | None = "auto",
    resume: bool = True,
    overwrite: bool = False,
    callbacks: list | None = None,
    verbose: str | int = "auto",
    seed: int | None = None,
    warmup: int | str | None = "auto",
) -> keras.callbacks.History:
    """Train ``model`` on ``train``, checkpointing into ``workdir``; resumable after a kill.

    Parameters
    ----------
    model : keras.Model
        A sciconv model (or any Keras model). If it is not compiled, :func:`fit` compiles it
        with Adam(``learning_rate``) and the loss/metrics of :func:`default_compile_args`,
        inside the model's distribution strategy scope, with ``jit_compile`` from
        ``sciconv.devices.jit_compile_default()``.
    train : tf.data.Dataset or tuple
        Batched dataset of ``(x, y)`` (e.g. from :mod:`sciconv.datasets`; its ``.task``,
        ``.class_names`` and ``.normalization`` attributes are recorded in the model metadata,
        its ``.source`` and a digest of its files in config.json, with ``.configuration``,
        which ``sciconv train`` sets; a resumed run starts a dataset with ``.resume_at`` at
        the batch it reached), or an ``(x, y)`` tuple of arrays (batched by ``batch_size``
        and shuffled). The model's metadata ``training`` records ``seed``, the data's seed,
        split hash, file digest and library versions.
    validation_data : tf.data.Dataset or tuple, optional
        Held-out data; when given, ``best.keras`` and the callbacks follow ``val_loss``.
    epochs : int
        Total number of epochs (a resumed run continues up to this number).
    workdir : str or os.PathLike, optional
        Run directory (see the module docstring; ``~`` is expanded). None trains without
        writing anything.
    learning_rate : float
        Adam learning rate (only when ``fit`` compiles the model).
    early_stopping : int, optional
        Patience in epochs; stops when the monitored loss has not improved and restores the best
        weights. None (default) trains all epochs.
    reduce_lr : bool or int
        Halve the learning rate when the monitored loss plateaus (an int sets the patience;
        True means 3 epochs), once it has dropped 5 % below its first-epoch value (or below
        chance, ``ln K``, for a classifier ``fit`` compiles, if lower): a model still at its
        starting loss keeps its rate (:mod:`sciconv._fit_schedule`).
    tensorboard : bool
        Write TensorBoard logs to ``workdir/logs`` (epoch-level scalars only; cheap). Needs the
        ``tensorboard`` package, and a workdir path TensorFlow takes (UTF-8: one under a folder
        whose name is not is given relative to the working folder when that is); without them
        a :class:`~sciconv.errors.SciconvWarning` says no logs are written.
    class_weight : dict, optional
        ``{class id or class name: weight}`` (classification); classes not named weigh 1, and
        unknown classes are refused. Passed to ``keras.Model.fit``.
    steps_per_epoch : int, optional
        Batches per epoch. Default: the dataset's ``.steps_per_epoch`` when it has one (the
        endless training datasets of :func:`sciconv.datasets.from_pairs`: one pass), else one
        pass over the data. Needed for other endless datasets. When it is set, a finite dataset
        is repeated, so every epoch trains all ``steps_per_epoch`` batches.
    batch_size : int
        Batch size for ``(x, y)`` arrays; ignored for datasets (already batched).
    augment : {"auto", "d4", None} or bool
        Random flips/90° rotations (D4) of every training sample, masks following. ``"auto"``
        (default): on for classifiers (``classification``/``multilabel``) trained on cutout files
        (``sciconv.datasets.from_folder``/``from_catalog``) or sky images, which have no "up";
        off for arrays and other tasks (rule: :func:`sciconv.augment.resolve_train_augment`).
        ``"d4"``/True: on for any data; None/False: off. Recorded as ``augment`` in config.json.
        Seeded by ``seed`` (else the dataset's ``.seed``) and the batch index (exact resumes).
    resume : bool
        If ``workdir`` holds an interrupted run (config status ``"running"``), continue it from
        its last finished epoch. With False, an interrupted run is only restarted from scratch
        when ``overwrite=True``.
    overwrite : bool
        Replace the files of a finished (or, with ``resume=False``, interrupted) run in
        ``workdir``. Without it such a ``workdir`` raises
        :class:`~sciconv.errors.OutputExistsError`.
    callbacks : list, optional
        Extra Keras callbacks, run after sciconv's.
    verbose : "auto", 0, 1 or 2
        Keras progress output: ``"auto"`` is bars (1) on a terminal or in a notebook and one
        line per epoch (2) in logs and CI, where bars left escape codes and backspaces.
    seed : int, optional
        Seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``) before training:
        shuffling and dropout repeat. The initial weights are drawn when the model is built, so
        call ``keras.utils.set_random_seed(seed)`` before building it for a fully repeatable run.
        These generators are the process's: fits run at once in threads draw from each other's
        (run a sweep in processes to repeat each run).
    warmup : "auto", int or None
        Raise the learning rate linearly from ``learning_rate / N`` to ``learning_rate`` over
        the first N optimizer steps (:class:`sciconv._fit_schedule.LinearWarmup`): Adam's first
        steps otherwise throw a large dense head far off (loss 8-23 within a few batches on
        128 px cutouts). ``"auto"`` (default): one epoch (at most 1000 steps) for a
        classifier ``fit`` compiles; none for segmenters and regressors (not measured better)
        or a model compiled by the caller; a resumed run continues where it was. None or 0:
        off.

    Returns
    -------
    keras.callbacks.History
        Of this call (a resumed run lists only the epochs run now; ``log.csv`` has them all,
        and ``config.json``'s ``best`` is the best epoch over all of them).

    Raises
    ------
    ConfigError
        An invalid argument, or a dataset normalized otherwise than the model records (a
        trained model keeps the normalization its weights were fitted to: build the dataset
        with ``normalize=`` the model's ``get_metadata(model)["normalization"]``). ``workdir``
        is in use by a run in progress (its ``run.lock`` names the process and host), or holds
        an interrupted run that this call cannot resume: another model, other settings, or
        another train/validation split.
    ModelError
        The data's task or class count does not match the model.
    OutputExistsError
        ``workdir`` holds a finished run and ``overwrite`` is False.

    Examples
    --------
    >>> import numpy as np, sciconv as sc, tempfile
    >>> x = np.random.default_rng(0).normal(size=(8, 8, 8, 1)).astype("float32")
    >>> model = sc.models.regressor((8, 8, 1), filters=(2,), dense=())
    >>> run = tempfile.mkdtemp()
    >>> _ = sc.training.fit(model, (x, x.mean(axis=(1, 2))), epochs=1, workdir=run, verbose=0,
    ...                    tensorboard=False)
    >>> sorted(p.name for p in __import__("pathlib").Path(run).iterdir() if p.is_file())
    ['best.keras', 'config.json', 'last.keras', 'log.csv']
    """
    validate_fit_args(
        model,
        train,
        validation_data,
        epochs,
        learning_rate,
        early_stopping,
        reduce_lr,
        steps_per_epoch,
        seed,
        warmup,
        batch_size=batch_size,
        verbose=verbose,
    )
    learning_rate = float(learning_rate)  # an int or numpy float failed inside Keras (QA)
    workdir = workdir_path(workdir)  # ~ expanded; bytes, URLs, names too long refused
    train = as_fit_arrays(model, train, name="train")
    if validation_data is not None:
        validation_data = as_fit_arrays(model, validation_data, name="validation_data")
    meta = get_metadata(model)
    aug = resolve_train_augment(augment, task=meta.get("task"), train=train, metadata=meta)
    if seed is not None:
        keras.utils.set_random_seed(seed)

    for data, label in ((train, "train"), (validation_data, "validation_data")):
        if data is not None:
            check_data_shapes(model, data, name=label)
    class_weight = check_class_weight(model, class_weight, getattr(train, "class_names", None))
    warn_imbalance(model, train, class_weight)
    fit_data, steps_per_epoch = _epoch_steps(train, steps_per_epoch)  # refuses before any change
    check_validation_data(model, validation_data, train)  # endless, or prepared otherwise
    # how the data were drawn: a sciconv dataset's own augmentation, batches and patches
    drawn = {k: getattr(train, k, None) for k in _DRAWN}
    refuse_workdir(workdir, resume=resume, overwrite=overwrite)  # before the model changes
    recorded = record_dataset_metadata(model, train)  # from the attributes (lost by a repeat)
    adapt_target_scale(model, train)  # a regressor learns standardized targets
    if isinstance(getattr(train, "seed", None), int):  # the split: checked when a run resumes
        recorded["seed"] = train.seed
    split = describe_split(train, validation_data)
    if split is not None:
        recorded["split"] = split
    recorded["source"] = _source(train)  # the data's kind and folders (absolute)
    content = content_digest(data_files(train, validation_data))  # the files' bytes
    if content is not None:
        recorded["content"] = content
    tuple_batch = batch_size if isinstance(train, tuple) else None
    batch = tuple_batch or drawn["batch_size"]  # the data's own batches, a dataset's recorded
    check_replica_split(model, batch)
    # batches as a function of their index (.resume_at): a resumed run draws what it would have
    if callable(getattr(train, "resume_at", None)) and steps_per_epoch is not None:
        fit_data = train if fit_data is train else train.resume_at(0)  # a finite one: all passes
    aug_seed = seed if seed is not None else getattr(train, "seed", None)
    if aug is not None:  # arrays become a dataset, repeated for a fixed steps_per_epoch
        if isinstance(fit_data, tuple) and aug_seed is not None:
            fit_data = array_batches(fit_data, batch_size=batch_size, seed=aug_seed)
            steps_per_epoch = steps_per_epoch or fit_data.steps_per_epoch
        repeat = steps_per_epoch is not None
        fit_data = d4_train_data(fit_data, seed=aug_seed, batch_size=batch_size, repeat=repeat)
    exact = resume_exactness(train, fit_data, aug)
    resumable = exact[0] and callable(getattr(fit_data, "resume_at", None)) and steps_per_epoch
    source_data, train = train, fit_data
    record_training_provenance(model, seed=seed, recorded=recorded, versions=_versions())
    compiled_here = False
    stopped = take_stopped_mark(model)  # a call on this model was interrupted
    if stopped == OPTIMIZER_STEPPED:
        exact = (False, "the caller's optimizer was stepped by an interrupted call (compile again)")
    if (
        getattr(model, "optimizer", None) is None
        or not getattr(model, "compiled", False)
        or stopped == COMPILED_BY_FIT
    ):
        compile_args = default_compile_args(model, label_spec=_label_spec(train))
        scope = getattr(model, "distribute_strategy", None)
        with scope.scope() if scope is not None else contextlib.nullcontext():
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate),
                jit_compile=devices.jit_compile_default(),
                **compile_args,
            )
        compiled_here = True
    _check_pixel_weights(model, train)

    chief = workdir is not None and devices.is_chief()
    # Only the chief inspects and prepares a (possibly shared) workdir, holding its lock: a
    # second run on it is refused while this one trains.
    with lock_workdir(workdir) if chief else contextlib.nullcontext():
        monitor = "val_loss" if validation_data is not None else "loss"
        cbs: list = [LearningRateLog()]  # first: every epoch's rate in log.csv and the history
        initial_epoch = 0
        same_model = False  # the interrupted run's weights fingerprint matched this model's
        if workdir is not None:
            workdir = Path(workdir)
            writes = chief  # other workers would race it; their own backup folder restores
            # them to the chief's epoch
            if writes:
                same_model = _fingerprinted(workdir)
                initial_epoch = prepare_workdir(
                    workdir,
                    resume=resume,
                    overwrite=overwrite,
                    model=_fingerprint(model),
                    settings={
                        "learning_rate": learning_rate,
                        "warmup": warmup,
                        "reduce_lr": reduce_lr,
                        "early_stopping": early_stopping,
                        "batch_size": batch,
                    },
                )
                older = None  # a run an older sciconv started, resumed on its own split
                if initial_epoch:
                    older = check_resumed_split(workdir, recorded.get("seed"), split, content)
                if older is not None:  # its record stays; the batches it drew need not be ours
                    recorded.pop("split", None)
                    if older["split"] is not None:
                        recorded["split"] = older["split"]
                    exact = (False, older["note"])
                    record_training_provenance(
                        model, seed=seed, recorded=recorded, versions=_versions()
                    )
                same_model = same_model and bool(initial_epoch)
                if initial_epoch and resumable:  # the batches the uninterrupted run draws next
                    train = fit_data.resume_at(initial_epoch * steps_per_epoch)
            now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            config = {
                "status": "running",
                **run_times(workdir, initial_epoch if writes else 0, now),  # started, resumed
                "resumed_from_epoch": initial_epoch or None,
                "resume_exact": exact[0],  # a resumed run trains as the uninterrupted one
                "resume_note": exact[1],
                "epochs": epochs,
                "epochs_done": initial_epoch,
                "learning_rate": learning_rate,
                "monitor": monitor,
                "early_stopping": early_stopping,
                "reduce_lr": reduce_lr,
                "warmup": warmup,
                "steps_per_epoch": steps_per_epoch,
                "batch_size": batch,
                # fit's own augmentation, else the dataset's (from_pairs(augment=...), ...)
                "augment": aug if aug is not None else drawn["augmentation"],
                "patch_size": drawn["patch_size"],
                "patches_per_image": drawn["patches_per_image"],
                "optimizer": type(model.optimizer).__name__,  # Adam (the learning rate above)
                "seed": seed,
                "class_weight": None
                if class_weight is None
                else {str(k): v for k, v in class_weight.items()},
                "compiled_by_fit": compiled_here,
                "loss": _describe(getattr(model, "loss", None)),
                "model": {"name": model.name, **_fingerprint(model)},
                "metadata": get_metadata(model),
                "dataset": recorded,
                "versions": _versions(),
                # how it computed: a mixed policy's model runs so when loaded; the devices used
                "dtype_policy": getattr(model.dtype_policy, "name", str(model.dtype_policy)),
                "strategy": type(tf.distribute.get_strategy()).__name__,
                "command": list(sys.argv),  # sciconv train CONFIG: the config file too
                "cwd": os.getcwd(),
            }
            if isinstance(getattr(source_data, "configuration", None), dict):
                config["configuration"] = source_data.configuration  # sciconv train's YAML
            if writes:  # the folder exists: lock_workdir made it
                logs = tensorboard_dir(workdir) if tensorboard else None  # before config.json
                _write_config(workdir, config)
                log = workdir / "log.csv"
                if initial_epoch:
                    truncate_log(log, initial_epoch)
                best = _best_from_log(log, monitor) if initial_epoch else math.inf
                best_checkpoint = _AtomicCheckpoint(
                    workdir / "best.keras", monitor=monitor, best=best
                )

                def rewind(epoch: int) -> None:
                    # the latest backup did not load: the run resumes from the state before it
                    nonlocal initial_epoch
                    initial_epoch = config["epochs_done"] = epoch
                    config["resumed_from_epoch"] = epoch or None
                    if config["resume_exact"]:  # the data were set for the later epoch
                        config["resume_exact"] = False
                        config["resume_note"] = "resumed from an older backup: " + exact[1]
                    _write_config(workdir, config)
                    truncate_log(log, epoch)
                    best_checkpoint.best = _best_from_log(log, monitor) if epoch else math.inf

                cbs += [
                    best_checkpoint,
                    _AtomicCheckpoint(workdir / "last.keras"),
                    CsvLog(str(log), append=bool(initial_epoch), validates=monitor != "loss"),
                    _RunStatus(workdir, config),
                ]
                if logs is not None:
                    cbs.append(
                        keras.callbacks.TensorBoard(
                            log_dir=logs,
                            histogram_freq=0,
                            write_graph=False,
                            update_freq="epoch",
                            profile_batch=0,
                        )
                    )
            # Every worker keeps its own backup so that all of them restart at the same epoch. It
            # runs after the checkpoints and the CSV row of an epoch: a kill in between repeats that
            # epoch (its row is dropped from log.csv on resume) instead of losing its row.
            # Its state is restored by its RestoreBackup, put first: a fallback to the state before
            # the latest (rewind) then comes before log.csv is opened.
            backup = workdir / "backup" if writes else workdir / f"backup-{devices.task_name()}"
            backup_cb = BackupAndRestore(
                backup, same_model=same_model, on_rewind=rewind if writes else None
            )
            cbs.insert(0, RestoreBackup(backup_cb))
            cbs.append(backup_cb)
        chance = chance_loss(meta, model.loss) if compiled_here else None  # fit's own loss only
        cbs += schedule_callbacks(
            monitor=monitor,
            reduce_lr=reduce_lr,
            early_stopping=early_stopping,
            start_loss=chance,
            warmup=_resolve_warmup(warmup, compiled_here=compiled_here, task=meta.get("task")),
        )
        cbs += list(callbacks or [])

        kwargs: dict[str, Any] = dict(
            epochs=epochs,
            callbacks=cbs,
            class_weight=class_weight,
            steps_per_epoch=steps_per_epoch,
            verbose=(1 if interactive(sys.stdout) else 2) if verbose == "auto" else verbose,
        )
        if isinstance(train, tuple):
            x, y, *rest = train
            kwargs.update(x=x, y=y, batch_size=batch_size, shuffle=True)
            if rest:
                kwargs["sample_weight"] = rest[0]
        else:
            kwargs.update(x=train, shuffle=False)  # a dataset is shuffled (or not) by its builder
        if validation_data is not None:
            kwargs["validation_data"] = validation_data
        start_weights = model.get_weights() if workdir is not None else None
        try:
            history = model.fit(**kwargs)
        except BaseException:  # a rerun of the call trains as a fresh one (or resumes)
            undo_interrupted_call(model, start_weights, compiled_here=compiled_here)
            raise
        finally:  # interrupted (Ctrl-C, an error): Keras leaves log.csv open until collected
            for cb in cbs:
                if isinstance(cb, CsvLog) and cb.csv_file is not None and not cb.csv_file.closed:
                    cb.csv_file.close()

        if workdir is not None and writes:
            config["status"] = "finished"
            config["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            )
            config["metadata"] = get_metadata(model)
            config["final"] = {k: float(v[-1]) for k, v in history.history.items() if v}
            best = _run_best(workdir / "log.csv", monitor, history, initial_epoch)
            if (
                best is not None
            ):  # the epoch best.keras holds (over the whole run), with its metrics
                config["best"] = best
            _write_config(workdir, config)
        return history


def _fingerprinted(workdir: Path) -> bool:
    """Whether ``workdir``'s config.json records the weights fingerprint of its model (a run
    resumed there was checked to be of the same model)."""
    with contextlib.suppress(ConfigError):
        model = read_config(workdir).get("model")
        return isinstance(model, dict) and "weights" in model
    return False


def _run_best(log: Path, monitor: str, history, initial_epoch: int) -> dict | None:
    """The best epoch of the whole run from ``log.csv`` (a resumed call's history holds only
    its own epochs); from this call's history when the log cannot be read."""
    with contextlib.suppress(SciconvError):
        best = best_epoch(log, monitor)
        if best is not None:
            return best
    scores = history.history.get(monitor) or []
    if not scores:
        return None
    i = int(np.nanargmin(scores)) if np.isfinite(scores).any() else len(scores) - 1
    values = {k: float(v[i]) for k, v in history.history.items() if len(v) > i}
    return {"epoch": initial_epoch + i, **values}


def _resolve_warmup(warmup, *, compiled_here: bool, task: str | None):
    """``warmup="auto"``: one epoch for a classifier ``fit`` compiles (its dense head is what
    Adam's first steps throw off), none otherwise (a segmenter's short run lost to it: the
    demo's U-Net, 5 epochs, AP@0.5 0.938 -> 0.828)."""
    if warmup != "auto":
        return warmup or None
    return "auto" if compiled_here and task in ("classification", "multilabel") else None


def _describe(loss) -> Any:
    if loss is None or isinstance(loss, str):
        return loss
    if isinstance(loss, (list, tuple)):
        return [_describe(v) for v in loss]
    return getattr(loss, "__name__", None) or getattr(loss, "name", None) or type(loss).__name__
