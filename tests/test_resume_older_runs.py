"""Resuming a run an older sciconv started (compat QA51, findings 1 and 2).

The older runs are simulated: a run interrupted by today's code, whose ``config.json`` /
``log.csv`` are then written back as the older versions wrote them (the layouts of the QA's
``art_*/run_killed_pristine`` folders).
"""

from __future__ import annotations

import csv
import json
import warnings

import keras
import numpy as np
import pytest
from _helpers import kill_after, two_class_folder

import sciconv as sc
from sciconv.datasets import SPLIT_RULE

_KW = dict(epochs=3, tensorboard=False, verbose=0, reduce_lr=False)

OLDER = r"this run was started by an older sciconv that drew the train/validation split differently"


def _folder(root, n=6):
    return two_class_folder(root, ("ring", "round"), n, "{i:02d}")


def _classifier():
    keras.utils.set_random_seed(0)
    return sc.models.classifier((8, 8, 1), 2, filters=(2,), dense=())


def _interrupted(tmp_path, seed=0):
    """A from_folder run killed after its first epoch; ``(data, run)``."""
    data, run = _folder(tmp_path / "data"), tmp_path / "run"
    train, val = sc.datasets.from_folder(data, validation_split=0.25, batch_size=4, seed=seed)
    with pytest.raises(KeyboardInterrupt):
        sc.training.fit(
            _classifier(), train, validation_data=val, workdir=run, seed=0,
            callbacks=[kill_after(0)], **_KW,
        )  # fmt: skip
    return data, run


def _resume(data, run, *, seed=0, **kw):
    train, val = sc.datasets.from_folder(data, validation_split=0.25, batch_size=4, seed=seed)
    return sc.training.fit(
        _classifier(), train, validation_data=val, workdir=run, seed=0, **{**_KW, **kw}
    )


def _rewrite_dataset(run, edit):
    config = json.loads((run / "config.json").read_text())
    edit(config["dataset"])
    (run / "config.json").write_text(json.dumps(config, indent=2))
    return config


# ------------------------------------------------------------------------------ the split rule


def test_the_split_rule_is_recorded_in_config_and_model(tmp_path):
    data, run = _interrupted(tmp_path)
    assert SPLIT_RULE == sc.datasets.SPLIT_RULE == 2
    assert json.loads((run / "config.json").read_text())["dataset"]["split"]["rule"] == SPLIT_RULE
    _resume(data, run)  # today's run resumes as before: exactly
    config = sc.training.read_config(run)
    assert config["status"] == "finished" and config["resumed_from_epoch"] == 1
    assert config["resume_exact"] is True
    assert config["dataset"]["split"]["rule"] == SPLIT_RULE
    for name in ("best.keras", "last.keras"):
        meta = sc.models.get_metadata(keras.saving.load_model(run / name, compile=False))
        assert meta["training"]["split"]["rule"] == SPLIT_RULE


def test_arrays_record_no_split_rule():
    """The caller's own split (arrays): no rule of sciconv's drew it."""
    from sciconv._fit_split import describe_split

    split = describe_split((np.zeros((6, 2)), np.zeros(6)), (np.zeros((2, 2)), np.zeros(2)))
    assert "rule" not in split


@pytest.mark.parametrize(
    "layout",
    [
        # 22311e5 (2026-12-05 11:55): the dataset's seed, no split, no source
        pytest.param(("split", "source", "content"), id="seed-no-split"),
        # 95c8f10 / 030a08f (2026-11-26, 12-03): not even the seed
        pytest.param(("split", "source", "content", "seed"), id="no-seed"),
    ],
)
def test_an_older_run_without_a_recorded_split_is_refused(tmp_path, layout):
    """Resumed silently on another split, and called exact (QA51 #1)."""
    data, run = _interrupted(tmp_path)
    before = _rewrite_dataset(run, lambda d: [d.pop(k) for k in layout])
    with pytest.raises(sc.errors.ConfigError, match=OLDER) as err:
        _resume(data, run)
    message = str(err.value)
    assert err.value.path == str(run)
    assert "resuming would validate on images it trained on" in message
    assert "overwrite=True" in message and "the sciconv version it started with" in message
    # the run's record is left as it was: today's split is not written in as its own
    assert json.loads((run / "config.json").read_text()) == before
    _resume(data, run, resume=False, overwrite=True)  # the advice works
    assert sc.training.read_config(run)["dataset"]["split"]["rule"] == SPLIT_RULE


def test_an_older_run_with_a_positional_split_is_refused_naming_the_cause(tmp_path):
    """77428ad (2026-12-06 08:49): its recorded split, drawn by the positional rule, differs
    from today's; the refusal said to resume with the data it started with (QA51 #1)."""
    data, run = _interrupted(tmp_path)
    other = sc.training.read_config(tmp_path / "run")["dataset"]["split"]
    # another partition of the same files, as the old rule drew for this seed
    train, val = sc.datasets.from_folder(data, validation_split=0.25, batch_size=4, seed=5)
    from sciconv._fit_split import describe_split

    old = describe_split(train, val)
    assert old["sha"] == other["sha"] and old["validation_sha"] != other["validation_sha"]
    old.pop("rule", None)  # recorded before the rule was
    before = _rewrite_dataset(run, lambda d: [d.update(split=old), d.pop("source")])
    with pytest.raises(sc.errors.ConfigError, match=OLDER) as err:
        _resume(data, run)
    assert "recorded no split rule" in str(err.value)
    assert "Resume with the data and validation_split" not in str(err.value)
    assert err.value.path == str(run)
    assert json.loads((run / "config.json").read_text()) == before


@pytest.mark.parametrize(("rule", "word"), [(1, "older"), (SPLIT_RULE + 1, "newer")])
def test_a_run_that_recorded_another_rule_is_refused(tmp_path, rule, word):
    data, run = _interrupted(tmp_path)
    _rewrite_dataset(run, lambda d: d["split"].update(rule=rule))
    with pytest.raises(sc.errors.ConfigError, match=rf"started by an? {word} sciconv") as err:
        _resume(data, run)
    assert f"split rule {rule}; this sciconv draws by rule {SPLIT_RULE}" in str(err.value)
    # refused before the seed: building the dataset with another seed would not help
    with pytest.raises(sc.errors.ConfigError, match=rf"started by an? {word} sciconv"):
        _resume(data, run, seed=3)


def test_a_rule_less_run_on_todays_split_resumes_but_not_exactly(tmp_path):
    """Started between 2026-12-06 (hashed names) and the rule's record: the same files held
    out, but older versions drew other batches for a seed."""
    data, run = _interrupted(tmp_path)
    config = _rewrite_dataset(run, lambda d: d["split"].pop("rule"))
    recorded = config["dataset"]["split"]
    history = _resume(data, run)
    assert len(history.history["loss"]) == 2
    config = sc.training.read_config(run)
    assert config["status"] == "finished"
    assert config["resume_exact"] is False
    assert "started by an older sciconv" in config["resume_note"]
    assert config["dataset"]["split"] == recorded  # its own record, no rule written in
    meta = sc.models.get_metadata(keras.saving.load_model(run / "last.keras", compile=False))
    assert "rule" not in meta["training"]["split"]


def test_a_changed_split_of_todays_run_keeps_its_message(tmp_path):
    """The rule check leaves today's refusals as they were."""
    data, run = _interrupted(tmp_path)
    train, val = sc.datasets.from_folder(data, validation_split=0.5, batch_size=4, seed=0)
    with (
        warnings.catch_warnings(),  # and no word of changed contents (only the order changed)
        pytest.raises(sc.errors.ConfigError, match=r"validation_split 0\.25 -> 0\.5"),
    ):
        warnings.simplefilter("error", sc.errors.SciconvWarning)
        sc.training.fit(_classifier(), train, validation_data=val, workdir=run, **_KW)
    with pytest.raises(sc.errors.ConfigError, match=r"built with seed 0.*seed=0"):
        _resume(data, run, seed=4)


# ------------------------------------------------------------------------------ log.csv


def _arrays():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 8, 8, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int64")
    return (x[:16], y[:16]), (x[16:], y[16:])


def _old_header_log(run):
    """log.csv as sciconv wrote it before 2026-12-05: no learning_rate column."""
    path = run / "log.csv"
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    keep = [j for j, name in enumerate(rows[0]) if name != "learning_rate"]
    assert len(keep) == len(rows[0]) - 1
    old = [[row[j] for j in keep] for row in rows]
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(old)
    return old


def _killed_array_run(tmp_path):
    """A 4-epoch run on arrays killed after its first epoch; ``(train, val, run, fit kwargs)``."""
    train, val = _arrays()
    run = tmp_path / "run"
    kw = dict(_KW, epochs=4, workdir=run, seed=0, batch_size=8)
    with pytest.raises(KeyboardInterrupt):
        sc.training.fit(_classifier(), train, validation_data=val, callbacks=[kill_after(1)], **kw)
    return train, val, run, kw


def test_an_older_runs_log_gets_todays_columns_before_rows_are_appended(tmp_path):
    """Rows of 6 cells under a 5-column header: the learning rate read as the loss (QA51 #2)."""
    train, val, run, kw = _killed_array_run(tmp_path)
    old = _old_header_log(run)
    assert old[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    _rewrite_dataset(run, lambda d: [d.pop("split"), d.pop("source")])  # as 030a08f wrote it
    sc.training.fit(_classifier(), train, validation_data=val, **kw)
    config = sc.training.read_config(run)  # arrays: no split of sciconv's, resumed
    assert config["resume_exact"] is False and "older sciconv" in config["resume_note"]
    assert "split" not in config["dataset"]  # today's is not written in as the run's
    with open(run / "log.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == [*old[0], "learning_rate"]
    assert all(len(row) == len(rows[0]) for row in rows)
    assert [row[:5] for row in rows[1:3]] == old[1:]  # the old rows' values, by name
    assert [row[5] for row in rows[1:3]] == ["", ""]  # unknown then: empty
    log = sc.runs.read_log(run)
    assert log["epoch"].tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(log["loss"][:2], [float(row[2]) for row in old[1:]])
    assert np.isnan(log["learning_rate"][:2]).all()
    np.testing.assert_allclose(log["learning_rate"][2:], 1e-3, rtol=1e-6)
    assert (log["loss"][2:] > 0.01).all()  # a loss, not the learning rate
    assert np.all((log["val_accuracy"] >= 0) & (log["val_accuracy"] <= 1))
    best = sc.training.read_config(run)["best"]
    assert best["epoch"] == int(np.argmin(log["val_loss"]))
    assert best["val_loss"] == pytest.approx(log["val_loss"].min())


def test_read_log_refuses_rows_longer_than_the_header(tmp_path):
    """The log the QA found: never read by position."""
    path = tmp_path / "log.csv"
    path.write_text(
        "epoch,accuracy,loss,val_accuracy,val_loss\n"
        "0,0.5,0.78,0.5,0.59\n"
        "1,0.5,0.5639,1.0,0.4505\n"
        "2,0.9444,0.0010000000474974513,0.4470,1.0,0.4422\n"
    )
    with pytest.raises(sc.errors.ConfigError, match=r"line 4 has 6 cells .* 5 columns") as err:
        sc.runs.read_log(path)
    assert err.value.path == str(path)
    with pytest.raises(sc.errors.ConfigError, match=r"line 4"):
        sc.runs.best_epoch(tmp_path)
    before = path.read_bytes()
    with pytest.raises(sc.errors.ConfigError, match=r"line 4"):
        sc.runs.widen_log(path, ["epoch", "learning_rate"])
    assert path.read_bytes() == before  # the refused log is left as it was
    short = tmp_path / "short.csv"  # a missing cell is still NaN
    short.write_text("epoch,loss,val_loss\n0,0.9\n")
    assert np.isnan(sc.runs.read_log(short)["val_loss"][0])


def test_a_log_misaligned_by_an_earlier_resume_is_refused_before_training(tmp_path):
    train, val, run, kw = _killed_array_run(tmp_path)
    text = (run / "log.csv").read_text().splitlines()
    header = text[0].split(",")
    text[0] = ",".join(h for h in header if h != "learning_rate")  # the old header kept
    (run / "log.csv").write_text("\n".join(text) + "\n")
    before = (run / "log.csv").read_bytes()
    epochs = []

    class Count(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs.append(epoch)

    with pytest.raises(sc.errors.ConfigError, match=r"line 2 has 6 cells") as err:
        sc.training.fit(_classifier(), train, validation_data=val, callbacks=[Count()], **kw)
    assert err.value.path == str(run / "log.csv") and epochs == []
    assert (run / "log.csv").read_bytes() == before
