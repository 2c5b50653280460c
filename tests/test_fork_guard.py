"""Workers forked after TensorFlow started in the parent hang at their first TensorFlow call
(measured: ``Pool(2).map`` of ``model.predict`` never returned with a model built in the parent;
multiprocessing forks by default on Linux before Python 3.14): sciconv's entry points refuse to
run there, naming the spawn start method, instead of hanging (``sciconv._fork``)."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sciconv import inference, models
from sciconv._fork import tensorflow_started
from sciconv.errors import ConfigError

_PARENT_MODEL = []  # a forked worker sees the parent's model here, as a global


def _in_child(job):
    what, path = job
    try:
        if what == "predict":
            inference.predict_tiled(_PARENT_MODEL[0], np.zeros((16, 16, 1), np.float32), tile=16)
        elif what == "load":
            models.load(path)
        elif what == "build":
            models.segmenter((16, 16, 1), num_classes=2, depth=1, filters=4)
        else:
            return f"received {path.name}"  # a model passed as an argument: unpickled on the way
    except ConfigError as err:
        return str(err)
    return "ran"


def test_a_worker_forked_after_tensorflow_started_refuses_instead_of_hanging(tmp_path):
    model = models.segmenter((16, 16, 1), num_classes=2, depth=1, filters=4)
    model.save(tmp_path / "m.keras")
    _PARENT_MODEL[:] = [model]
    assert tensorflow_started()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        jobs = [(what, tmp_path / "m.keras") for what in ("predict", "load", "build")]
        results = pool.map_async(_in_child, jobs).get(timeout=120)  # a hang before the guard
        for message in results:
            assert "forked from process" in message and "'spawn'" in message
    _PARENT_MODEL.clear()


def test_a_model_sent_to_a_worker_forked_after_tensorflow_started_breaks_the_pool(capfd):
    model = models.segmenter((16, 16, 1), num_classes=2, depth=1, filters=4)
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        # the model as an argument is unpickled in the worker, where Keras rebuilds it: it hung
        # there, now the worker's error (printed) ends the pool
        with pytest.raises(concurrent.futures.process.BrokenProcessPool):
            pool.submit(_in_child, ("argument", model)).result(timeout=120)
    assert "forked from process" in capfd.readouterr().err


_FRESH = textwrap.dedent(
    """
    import multiprocessing, numpy as np
    from sciconv import models

    def child(_):
        model = models.classifier((8, 8, 1), num_classes=2, filters=(4,))
        return model.predict(np.zeros((1, 8, 8, 1), np.float32), verbose=0).shape

    if __name__ == "__main__":  # sciconv imported, TensorFlow not started: forking is fine
        with multiprocessing.get_context("fork").Pool(1) as pool:
            print(pool.map_async(child, [0]).get(timeout=240))
    """
)


@pytest.mark.slow
def test_a_worker_forked_before_tensorflow_started_runs_models(tmp_path):
    script = tmp_path / "fresh.py"
    script.write_text(_FRESH)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[(1, 2)]" in done.stdout
