"""``tf.distribute`` strategies (default, mirrored, multi-worker), batch size and data helpers."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from sciconv._validation import look_up_option
from sciconv.devices._cluster import num_workers, parse_tf_config
from sciconv.devices._discovery import enable_memory_growth
from sciconv.devices._precision import STATE
from sciconv.errors import ConfigError, DatasetError

_STRATEGY_KINDS = ("auto", "default", "mirrored", "multiworker")
_SHARD_POLICIES = {
    "auto": "AUTO",
    "data": "DATA",
    "file": "FILE",
    "off": "OFF",
}

_STRATEGIES: dict[tuple, tf.distribute.Strategy] = {}


def strategy(
    kind: str = "auto",
    *,
    devices: list[str] | None = None,
) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy to build, compile and fit models under.

    Parameters
    ----------
    kind : {"auto", "default", "mirrored", "multiworker"}, optional
        ``"auto"``: ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` describes a cluster of
        more than one worker, else ``MirroredStrategy`` when more than one GPU is visible, else
        the default strategy (one device). The other values force that strategy.
    devices : list of str, optional
        Devices for ``"mirrored"`` (e.g. ``["/gpu:0", "/gpu:1"]``); default all GPUs (or the
        CPU when there are none).

    Returns
    -------
    tf.distribute.Strategy
        The same object for the same arguments in one process (a
        ``MultiWorkerMirroredStrategy`` can only be created once, at program start).

    Raises
    ------
    ConfigError
        Unknown ``kind``, ``devices`` given for another kind, or an invalid ``TF_CONFIG``.

    Notes
    -----
    Call :func:`configure` first: creating a mirrored strategy initializes the GPUs. With several
    workers, every worker runs the same program; the datasets should be batched with the global
    batch size (:func:`scale_batch_size`) and each worker reads its shard of them.

    Examples
    --------
    >>> from sciconv.devices import strategy
    >>> strategy("default").num_replicas_in_sync
    1
    """
    kind = look_up_option(kind, _STRATEGY_KINDS, name="kind")
    if devices is not None:
        if kind != "mirrored":
            raise ConfigError(f"devices is only used with kind='mirrored'; got kind={kind!r}")
        if isinstance(devices, str) or not devices or not all(isinstance(d, str) for d in devices):
            raise ConfigError(f"devices must be a non-empty list of device names; got {devices!r}")
        devices = list(devices)
    if kind == "auto":
        if num_workers() > 1:
            kind = "multiworker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            kind = "mirrored"
        else:
            kind = "default"
    if kind == "default":
        return tf.distribute.get_strategy()
    key = (kind, tuple(devices) if devices else None)
    if key in _STRATEGIES:
        return _STRATEGIES[key]
    if STATE["configured"] is None:
        enable_memory_growth()  # before the strategy initializes the GPUs
    if kind == "mirrored":
        strat = tf.distribute.MirroredStrategy(devices=devices)
    else:
        parse_tf_config()  # a readable error rather than TensorFlow's
        strat = _MultiWorkerMirroredStrategy()
    _STRATEGIES[key] = strat
    return strat


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """``MultiWorkerMirroredStrategy`` whose ``reduce`` takes what Keras 3's ``fit`` gives it.

    Keras 3.15 with TensorFlow 2.21 cannot ``fit`` under the stock multi-worker strategy
    (keras-team/keras#20585, tensorflow/tensorflow#72388), for two reasons, both in
    ``strategy.reduce``:

    - before building, ``fit`` reduces the whole first ``(x, y)`` batch, a nest, which the
      multi-worker strategy refuses ("Attempt to convert a value (PerReplica...)");
      ``MirroredStrategy`` takes nests. Here nests are reduced leaf by leaf.
    - the per-step logs (scalar loss and metrics) are reduced with ``axis=0``, which fails on a
      scalar ("Invalid reduction dimension 0 for input with 0 dimensions"). A scalar has no batch
      axis to reduce: it is reduced across replicas only (``axis=None``), i.e. averaged.
    """

    def reduce(self, reduce_op, value, axis=None):
        if not isinstance(value, tf.distribute.DistributedValues) and tf.nest.is_nested(value):
            return tf.nest.map_structure(lambda v: self.reduce(reduce_op, v, axis), value)
        if axis is not None and _per_replica_rank(self, value) == 0:
            axis = None
        return super().reduce(reduce_op, value, axis)


def _per_replica_rank(strat: tf.distribute.Strategy, value) -> int | None:
    if isinstance(value, tf.distribute.DistributedValues):
        value = strat.experimental_local_results(value)[0]
    shape = getattr(value, "shape", None)
    return None if shape is None else shape.rank


def num_replicas(strategy: tf.distribute.Strategy | None = None) -> int:
    """Number of replicas that train in sync (GPUs times workers; 1 on the default strategy).

    Parameters
    ----------
    strategy : tf.distribute.Strategy, optional
        Defaults to the current strategy (the one whose ``scope()`` is active, else the default).

    Returns
    -------
    int

    Examples
    --------
    >>> from sciconv.devices import num_replicas
    >>> num_replicas()
    1
    """
    strat = strategy if strategy is not None else tf.distribute.get_strategy()
    return int(strat.num_replicas_in_sync)


def scale_batch_size(per_replica: int, *, strategy: tf.distribute.Strategy | None = None) -> int:
    """Global batch size for ``per_replica`` examples on each replica.

    Batch datasets with the global size: ``tf.distribute`` splits each global batch among the
    replicas, so the per-replica batch (and the memory it needs) stays ``per_replica``.

    Parameters
    ----------
    per_replica : int
        Batch size on one device.
    strategy : tf.distribute.Strategy, optional
        Defaults to the current strategy.

    Returns
    -------
    int
        ``per_replica * num_replicas(strategy)``.

    Raises
    ------
    ConfigError
        ``per_replica`` is not a positive int.

    Examples
    --------
    >>> from sciconv.devices import scale_batch_size
    >>> scale_batch_size(16)
    16
    """
    if isinstance(per_replica, bool) or not isinstance(per_replica, int) or per_replica <= 0:
        raise ConfigError(f"per_replica batch size must be a positive int; got {per_replica!r}")
    return per_replica * num_replicas(strategy)


def distribute_dataset(
    dataset: tf.data.Dataset,
    strategy: tf.distribute.Strategy | None = None,
    *,
    shard_policy: str = "data",
) -> tf.distribute.DistributedDataset:
    """Split a globally batched dataset among the replicas (and workers) of ``strategy``.

    ``model.fit`` accepts the result as it is, and custom training loops iterate over it inside
    ``strategy.run``. Passing a plain dataset to ``fit`` works too; this helper additionally sets
    the sharding policy, which matters with several workers: ``"data"`` (each worker reads the
    whole pipeline and keeps its share of every batch; works for in-memory and generated data),
    ``"file"`` (each worker reads its own files; needs at least as many files as workers),
    ``"auto"`` (TensorFlow tries files then data), ``"off"`` (every worker sees all data).

    Parameters
    ----------
    dataset : tf.data.Dataset
        Batched with the *global* batch size (:func:`scale_batch_size`).
    strategy : tf.distribute.Strategy, optional
        Defaults to the current strategy.
    shard_policy : {"data", "file", "auto", "off"}, optional
        Multi-worker sharding.

    Returns
    -------
    tf.distribute.DistributedDataset

    Raises
    ------
    DatasetError
        ``dataset`` is not a ``tf.data.Dataset``.
    ConfigError
        Unknown ``shard_policy``.

    Examples
    --------
    >>> import tensorflow as tf
    >>> from sciconv.devices import distribute_dataset
    >>> ds = tf.data.Dataset.range(8).batch(4)
    >>> [x.numpy().tolist() for x in distribute_dataset(ds)]
    [[0, 1, 2, 3], [4, 5, 6, 7]]
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise DatasetError(f"dataset must be a tf.data.Dataset; got {type(dataset).__name__}")
    policy = look_up_option(shard_policy, tuple(_SHARD_POLICIES), name="shard_policy")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = getattr(
        tf.data.experimental.AutoShardPolicy, _SHARD_POLICIES[policy]
    )
    strat = strategy if strategy is not None else tf.distribute.get_strategy()
    return strat.experimental_distribute_dataset(dataset.with_options(options))


def strategy_summary(strat: tf.distribute.Strategy | None = None) -> dict[str, Any]:
    strat = strat if strat is not None else tf.distribute.get_strategy()
    name = type(strat).__name__
    if name == "_DefaultDistributionStrategy":
        name = "default"
    return {"name": name, "num_replicas": int(strat.num_replicas_in_sync)}
