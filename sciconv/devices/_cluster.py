"""The cluster that ``TF_CONFIG`` describes: workers, this task's role, where it writes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sciconv.errors import ConfigError


def parse_tf_config(tf_config: str | Mapping | None = None) -> dict[str, Any] | None:
    """Return TF_CONFIG (the argument, or the environment variable) as a dict; None if unset."""
    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG")
        if not tf_config:
            return None
    if isinstance(tf_config, str):
        try:
            tf_config = json.loads(tf_config)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"TF_CONFIG is not valid JSON ({exc.msg} at char {exc.pos})"
            ) from None
    if not isinstance(tf_config, Mapping):
        raise ConfigError(
            "TF_CONFIG must be a JSON object with 'cluster' and 'task'; "
            f"got {type(tf_config).__name__}"
        )
    cluster = tf_config.get("cluster", {}) or {}
    task = tf_config.get("task", {}) or {}
    if not isinstance(cluster, Mapping) or not isinstance(task, Mapping):
        raise ConfigError("TF_CONFIG 'cluster' and 'task' must be JSON objects")
    for job, addresses in cluster.items():
        if not isinstance(addresses, (list, tuple)):
            raise ConfigError(
                f"TF_CONFIG cluster[{job!r}] must be a list of 'host:port' addresses; "
                f"got {addresses!r}"
            )
    if task:
        if "type" not in task:
            raise ConfigError(f"TF_CONFIG task must name its 'type' (e.g. 'worker'); got {task!r}")
        index = task.get("index", 0)
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ConfigError(f"TF_CONFIG task 'index' must be an int >= 0; got {index!r}")
        if cluster and task["type"] in cluster and index >= len(cluster[task["type"]]):
            raise ConfigError(
                f"TF_CONFIG task {task['type']}:{index} is not in the cluster, which has "
                f"{len(cluster[task['type']])} {task['type']} address(es)"
            )
    return {"cluster": dict(cluster), "task": dict(task)}


def num_workers(*, tf_config: str | Mapping | None = None) -> int:
    """Number of training workers (``chief`` + ``worker`` jobs) that ``TF_CONFIG`` describes.

    Parameters
    ----------
    tf_config : str or dict, optional
        The cluster description; defaults to the ``TF_CONFIG`` environment variable. Unset means
        one worker, this process.

    Returns
    -------
    int

    Raises
    ------
    ConfigError
        ``TF_CONFIG`` is not valid JSON or not shaped like a cluster description.

    Examples
    --------
    >>> from sciconv.devices import num_workers
    >>> num_workers(tf_config={"cluster": {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]},
    ...                        "task": {"type": "chief", "index": 0}})
    3
    """
    config = parse_tf_config(tf_config)
    if config is None:
        return 1
    cluster = config["cluster"]
    return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


def is_chief(*, tf_config: str | Mapping | None = None) -> bool:
    """Whether this process is the chief, the one worker that writes checkpoints and logs.

    The chief is task ``chief`` if the cluster has one, otherwise ``worker`` 0 (Keras' rule).
    Without ``TF_CONFIG`` this process is alone, hence the chief. Evaluators and parameter
    servers are not.

    Parameters
    ----------
    tf_config : str or dict, optional
        The cluster description; defaults to the ``TF_CONFIG`` environment variable.

    Returns
    -------
    bool

    Raises
    ------
    ConfigError
        ``TF_CONFIG`` is not valid JSON or not shaped like a cluster description.

    Examples
    --------
    >>> from sciconv.devices import is_chief
    >>> cluster = {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]}
    >>> is_chief(tf_config={"cluster": cluster, "task": {"type": "worker", "index": 0}})
    True
    >>> is_chief(tf_config={"cluster": cluster, "task": {"type": "worker", "index": 1}})
    False
    """
    config = parse_tf_config(tf_config)
    if config is None or not config["task"]:
        return True
    task_type = config["task"]["type"]
    index = config["task"].get("index", 0)
    if task_type == "chief":
        return True
    if task_type == "worker":
        return index == 0 and "chief" not in config["cluster"]
    return False


def task_name(*, tf_config: str | Mapping | None = None) -> str | None:
    """This process's task in the cluster, e.g. ``"worker1"``; None without ``TF_CONFIG``.

    Unique per worker, hence usable in file names that the workers of one run must not share
    (backups on a shared file system).

    Parameters
    ----------
    tf_config : str or dict, optional
        Defaults to the ``TF_CONFIG`` environment variable.

    Returns
    -------
    str or None

    Raises
    ------
    ConfigError
        ``TF_CONFIG`` is not valid JSON or not shaped like a cluster description.

    Examples
    --------
    >>> from sciconv.devices import task_name
    >>> task_name(tf_config={"cluster": {"worker": ["a:1", "b:1"]},
    ...                      "task": {"type": "worker", "index": 1}})
    'worker1'
    """
    config = parse_tf_config(tf_config)
    if config is None or not config["task"]:
        return None
    return f"{config['task']['type']}{config['task'].get('index', 0)}"


@contextlib.contextmanager
def chief_workdir(
    workdir: str | os.PathLike, *, tf_config: str | Mapping | None = None
) -> Iterator[Path]:
    """Yield where this worker writes checkpoints: ``workdir`` on the chief, a temp dir elsewhere.

    In multi-worker training every worker must run the same saving code (Keras' recommendation),
    but only the chief's files are kept: the other workers write into a temporary folder that is
    deleted on exit.

    Parameters
    ----------
    workdir : str or os.PathLike
        The run directory.
    tf_config : str or dict, optional
        Defaults to the ``TF_CONFIG`` environment variable.

    Yields
    ------
    pathlib.Path

    Examples
    --------
    >>> from sciconv.devices import chief_workdir
    >>> with chief_workdir("runs/example") as where:  # no TF_CONFIG: this process is the chief
    ...     where.as_posix()
    'runs/example'
    """
    if is_chief(tf_config=tf_config):
        yield Path(workdir)
        return
    tmp = Path(tempfile.mkdtemp(prefix="sciconv-worker-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
