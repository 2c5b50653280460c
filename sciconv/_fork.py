"""TensorFlow in forked worker processes.

A process forked after TensorFlow started its runtime in the parent (a model built, loaded or
run there) hangs for ever at its first TensorFlow call: fork copies the runtime's state but not
its threads. ``multiprocessing`` forks by default on Linux before Python 3.14 (``Pool``,
``ProcessPoolExecutor``, dask's process scheduler), so the natural batch script - load the
model, then map ``predict_instances`` over files in a pool - hung without a word (measured: a
``Pool(2).map`` of ``model.predict`` never returned, with a model built or run in the parent).

The fork is noted here, in the child (:func:`os.register_at_fork`), when TensorFlow's runtime
had started in the parent; sciconv's entry points that build, load or run a model call
:func:`refuse_forked_tensorflow` first, which raises with the way out instead of hanging. A
forked child whose parent never started TensorFlow (sciconv imported only) is left alone: it can
run models itself.
"""

from __future__ import annotations

import os
import sys

from sciconv.errors import ConfigError

_FORKED_FROM: int | None = None  # the parent's pid, in a child forked after TensorFlow started


def tensorflow_started() -> bool:
    """Whether TensorFlow's eager runtime has started in this process (False when TensorFlow is
    not imported, or when its private context could not be read).

    Examples
    --------
    >>> isinstance(tensorflow_started(), bool)
    True
    """
    context = sys.modules.get("tensorflow.python.eager.context")
    if context is None:
        return False
    try:  # private: read defensively, a TensorFlow without it gives no guard, not an error
        ctx = context._context
        return ctx is not None and ctx._context_handle is not None
    except Exception:
        return False


def _note_fork() -> None:
    global _FORKED_FROM
    if tensorflow_started():
        _FORKED_FROM = os.getppid()


if hasattr(os, "register_at_fork"):  # POSIX only: Windows has no fork (nothing to note)
    os.register_at_fork(after_in_child=_note_fork)


def refuse_forked_tensorflow(what: str) -> None:
    """Raise :class:`~sciconv.errors.ConfigError` in a process forked after TensorFlow started
    in its parent, where ``what`` (a TensorFlow call) would hang for ever (module notes).

    Parameters
    ----------
    what : str
        What was about to happen, for the message: ``"cannot {what} here"`` (e.g. ``"run a
        model"``).

    Raises
    ------
    ConfigError
        In such a process, naming the parent's pid and the ``spawn`` start method.

    Examples
    --------
    >>> refuse_forked_tensorflow("run a model")  # this process was not forked so: nothing
    """
    if _FORKED_FROM is None:
        return
    raise ConfigError(
        f"cannot {what} here: this process was forked from process {_FORKED_FROM} after "
        "TensorFlow started there, and TensorFlow hangs in forked processes. Start the workers "
        "with the 'spawn' method (multiprocessing.get_context('spawn').Pool(...), "
        "ProcessPoolExecutor(mp_context=multiprocessing.get_context('spawn'))) and load the "
        "model in each worker (README: Process pools)"
    )
