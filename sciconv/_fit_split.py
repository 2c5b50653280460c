"""The train/validation split of :func:`sciconv.training.fit`'s data: what config.json
records of it (:func:`describe_split`), and the resumes it refuses because the resumed run
would validate on images it trained on (:func:`check_resumed_split`)."""

from __future__ import annotations

import hashlib
import os

from sciconv.datasets import SPLIT_RULE
from sciconv.errors import ConfigError
from sciconv.io._common import warn_caller
from sciconv.runs import read_config

__all__ = ["OLDER_RUN_NOTE", "check_resumed_split", "describe_split"]


def describe_split(train, validation_data=None) -> dict | None:
    """What defines the train/validation split of ``fit``'s data, recorded to check a resume.

    Data from files (datasets with ``.file_paths``: ``from_folder``, ``from_pairs``,
    ``from_catalog``): the file counts and hashes of the sorted file names (relative to the
    folder holding them all, so a moved data folder is the same data), with the dataset's
    ``.validation_split`` and, when it drew one, the revision of the rule that held the files
    out (``rule``: :data:`sciconv.datasets.SPLIT_RULE`). Arrays: the sample counts. None for
    other data (nothing known).

    Examples
    --------
    >>> import numpy as np
    >>> describe_split((np.zeros((6, 2)), np.zeros(6)), (np.zeros((2, 2)), np.zeros(2)))
    {'unit': 'samples', 'training': 6, 'validation': 2}
    """
    if isinstance(train, tuple):

        def count(data):  # x is a tuple of arrays for a model of several inputs
            return len(data[0][0] if isinstance(data[0], tuple) else data[0])

        val = count(validation_data) if isinstance(validation_data, tuple) else None
        val = 0 if validation_data is None else val
        return {"unit": "samples", "training": count(train), "validation": val}
    paths = getattr(train, "file_paths", None)
    if not isinstance(paths, (list, tuple)):
        return None
    held = [] if validation_data is None else getattr(validation_data, "file_paths", None)
    held = list(held) if isinstance(held, (list, tuple)) else None
    every = [os.path.abspath(p) for p in [*paths, *(held or [])]]
    try:
        root = os.path.commonpath([os.path.dirname(p) for p in every]) if every else ""
    except ValueError:  # paths on different drives
        root = ""

    def digest(files) -> str | None:
        if files is None:
            return None
        names = sorted(
            (os.path.relpath(os.path.abspath(p), root) if root else os.path.abspath(p)).replace(
                os.sep, "/"
            )
            for p in files
        )
        # a name that is not UTF-8 hashes as its bytes (a UTF-8 one as before: records match)
        text = "\n".join(names).encode("utf-8", "surrogateescape")
        return hashlib.sha256(text).hexdigest()[:16]

    out = {
        "unit": "files",
        "training": len(paths),
        "validation": None if held is None else len(held),
        "sha": digest([*paths, *held]) if held is not None else None,
        "training_sha": digest(paths),
        "validation_sha": digest(held),
    }
    fraction = getattr(train, "validation_split", "unknown")
    if fraction is None or isinstance(fraction, (int, float)):
        out["validation_split"] = fraction
    if isinstance(fraction, (int, float)) and not isinstance(fraction, bool):
        out["rule"] = SPLIT_RULE  # sciconv held the files out: by this revision of its rule
    return out


def _split_changes(before: dict, now: dict) -> list[str]:
    """How the split ``now`` differs from the recorded one ``before``, in words."""
    unit = now.get("unit")
    if before.get("unit") != unit:
        return [f"the data were {before.get('unit')}, now {unit}"]
    changes = []
    old_val, new_val = before.get("validation"), now.get("validation")
    held = f"{unit} held out for validation {old_val} -> {new_val}"
    if "validation_split" in before and "validation_split" in now:
        a, b = before["validation_split"], now["validation_split"]
        if a != b:
            changes.append(
                f"validation_split {a} -> {b}" + (f", {held}" if old_val != new_val else "")
            )
    if None in (before.get("training"), now.get("training"), old_val, new_val):
        total_before = total_now = None
    else:
        total_before, total_now = before["training"] + old_val, now["training"] + new_val
    if total_before != total_now:
        k = abs(total_now - total_before)
        what = unit[:-1] if k == 1 else unit
        verb = "added to" if total_now > total_before else "removed from"
        where = "the training data" if old_val == new_val == 0 else "the data"
        changes.append(f"{k} {what} {verb} {where}, {total_before} -> {total_now} {unit}")
    elif before.get("sha") != now.get("sha"):
        changes.append(f"the same number of other {unit}: renamed or replaced")
    elif not changes and (
        before.get("training") != now.get("training")
        or old_val != new_val
        or before.get("training_sha") != now.get("training_sha")
        or before.get("validation_sha") != now.get("validation_sha")
    ):
        same = f"as many other {unit} held out for validation"
        changes.append(same if old_val == new_val else held)
    return changes


def check_resumed_split(
    workdir, seed: int | None, split: dict | None = None, content: dict | None = None
) -> dict | None:
    """Refuse to resume a run on another train/validation split than the one it started on.

    A dataset's ``.seed`` decides which images are held out, and so do the files it was built
    from, its ``validation_split`` and the rule that draws the split
    (:data:`sciconv.datasets.SPLIT_RULE`): a resumed run on another split (another seed, a new
    fraction, files added to the data folders since, a split drawn by an older sciconv) would
    validate on images it trained on before the kill, and ``best.keras`` would be chosen on
    them. ``split`` is what :func:`describe_split` says of this call's data. Runs that recorded
    neither are not checked. Files whose contents changed since (``content``, a
    :func:`sciconv._fit_workdir.content_digest`, against the recorded one) get a warning.

    A split drawn by sciconv is refused when the run recorded another rule; or no rule (an
    older sciconv) and a split that is not this call's, or no split at all but a description
    of its data (before 2026-12-05). A run that recorded no rule and the very split this call
    draws resumes, but not exactly (older versions drew other batches for a seed); so does a
    run from before 2026-12-06 (no ``dataset.source``) on data this call does not split.

    Returns
    -------
    dict or None
        For those two cases ``{"split": the run's recorded split (None: none), "note": why the
        resume is not exact}`` (``fit`` keeps the one and records the other); else None.

    Raises
    ------
    ConfigError
        Naming the workdir, what changed and the fix (resume on the same data, or start a new
        run; for an older sciconv's split: start again, or finish it with that version).

    Examples
    --------
    >>> import tempfile, pathlib, json
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> dataset = {"seed": 7, "source": {"kind": "folder", "path": "/data"}}
    >>> _ = (run / "config.json").write_text(json.dumps({"dataset": dataset}))
    >>> check_resumed_split(run, 7)
    >>> check_resumed_split(run, 3)
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: ... was built with seed 7 ...; this dataset with seed 3 ...

    A run of a sciconv from before 2026-12-05 recorded its seed, neither its split nor the data's
    source:

    >>> _ = (run / "config.json").write_text(json.dumps({"dataset": {"seed": 7}}))
    >>> split = {"unit": "files", "training": 6, "validation": 2, "validation_split": 0.25}
    >>> check_resumed_split(run, 7, {**split, "rule": 2})
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: ...: this run was started by an older sciconv that drew the \
train/validation split differently (...); resuming would validate on images it trained on: ...
    """
    try:
        recorded = read_config(workdir).get("dataset") or {}
    except ConfigError:
        return None
    recorded = recorded if isinstance(recorded, dict) else {}
    old = recorded.get("split")
    kept = _check_split_rule(workdir, recorded, old, split)  # before the seed: its advice fails
    before = recorded.get("seed")
    if isinstance(before, int) and isinstance(seed, int) and before != seed:
        raise ConfigError(
            f"workdir holds an interrupted run whose dataset was built with seed {before} (its "
            f"train/validation split); this dataset with seed {seed} would hold other images "
            "out, so the resumed run would validate on images it trained on: build the dataset "
            f"with seed={before} (sciconv train: dataset.seed: {before}), or start again with "
            "resume=False and overwrite=True",
            path=workdir,
        )
    changes = (
        _split_changes(old, split) if isinstance(old, dict) and isinstance(split, dict) else []
    )
    if changes:
        raise ConfigError(
            f"workdir holds an interrupted run trained on another train/validation split "
            f"({'; '.join(changes)}): the resumed run would validate on images it trained on. "
            "Resume with the data and validation_split it started with, or start again with "
            "resume=False and overwrite=True (sciconv train: training.resume: false, "
            "--overwrite)",
            path=workdir,
        )
    # after the refusals: another split lists the same files in another order (same bytes)
    _warn_changed_content(recorded, content)
    return kept


#: ``resume_note`` of a run an older sciconv started, resumed on its split (one it drew without
#: recording its rule, or none drawn) (:func:`check_resumed_split`).
OLDER_RUN_NOTE = (
    "this run was started by an older sciconv, which recorded no split rule: nothing it "
    "recorded of its train/validation split differs from this call's (the same files held "
    "out, or no split drawn), but versions before 2026-12-07 drew other batches for a seed, "
    "so the resumed epochs need not be those of an uninterrupted run"
)


def _check_split_rule(workdir, recorded: dict, old, split) -> dict | None:
    """Refuse a resume whose recorded split was drawn by another rule than this call's (or by
    an older sciconv, which recorded none); ``{"split", "note"}`` for an older sciconv's run
    on the split this call draws, or on data it does not split; None when nothing is to be
    said (the split checks that follow still apply)."""
    rule = split.get("rule") if isinstance(split, dict) else None
    older = bool(recorded) and "source" not in recorded  # recorded before 2026-12-06 23:04
    if rule is None:  # this call's data were not split by sciconv (arrays, no fraction)
        return {"split": old, "note": OLDER_RUN_NOTE} if older else None
    if isinstance(old, dict) and "rule" in old:
        if old["rule"] == rule:
            return None
        raise _other_rule(workdir, old["rule"], rule)
    if isinstance(old, dict):
        if old.get("unit") != "files" or old.get("validation_split", 0.0) is None:
            return None  # the run drew no split of files: the changes say what differs
        changes = _split_changes(old, split)  # rule-less: the same files held out are fine
        if not changes:
            return {"split": old, "note": OLDER_RUN_NOTE}
        raise _other_rule(workdir, None, rule, changes)
    if older:  # and before config.json recorded splits (2026-12-05)
        raise _other_rule(workdir, None, rule, ["it recorded no split to compare with"])
    return None


def _other_rule(workdir, before, now: int, changes=()) -> ConfigError:
    """The refusal of a resume on a split drawn by another rule (``before``: None for an older
    sciconv that recorded none)."""
    said = "recorded no split rule" if before is None else f"split rule {before}"
    said += f"; this sciconv draws by rule {now}, sciconv.datasets.SPLIT_RULE"
    if changes:
        said += f"; {'; '.join(changes)}"
    if isinstance(before, int) and not isinstance(before, bool) and before > now:
        return ConfigError(
            f"this run was started by a newer sciconv that draws the train/validation split "
            f"differently ({said}); resuming would validate on images it trained on: finish it "
            "with the sciconv version it started with, or start it again (overwrite=True / a "
            "new workdir; sciconv train: --overwrite)",
            path=workdir,
        )
    return ConfigError(
        f"this run was started by an older sciconv that drew the train/validation split "
        f"differently ({said}); resuming would validate on images it trained on: start it "
        "again (overwrite=True / a new workdir; sciconv train: --overwrite) or finish it with "
        "the sciconv version it started with",
        path=workdir,
    )


def _warn_changed_content(recorded, content: dict | None) -> None:
    """Warn when the training files' contents differ from those the run started on."""
    before = recorded.get("content") if isinstance(recorded, dict) else None
    if not isinstance(before, dict) or not isinstance(content, dict):
        return
    if before.get("method") == content.get("method") and before.get("sha256") != content.get(
        "sha256"
    ):
        warn_caller(
            "the training files' contents differ from those the interrupted run started on "
            "(same names, other bytes: config.json's dataset.content): the resumed run trains "
            "on other data than its first epochs did",
            "sciconv",
        )
