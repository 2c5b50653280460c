"""``sciconv predict`` with a classifier or regressor: one ``predictions.csv`` for all inputs,
and the segmenter options such a model cannot take refused.

Examples
--------
>>> "mask" in SEGMENTER_OPTIONS and "uncertainty_file" in SEGMENTER_OPTIONS
True
"""

from __future__ import annotations

from sciconv._cli_common import say
from sciconv._cli_predict_batch import Batch
from sciconv._cli_predict_outputs import check_outputs
from sciconv.errors import ConfigError

__all__ = ["SEGMENTER_OPTIONS", "predict_table", "refuse_segmenter_options"]


#: ``sciconv predict`` options that only a segmenter uses, with the value meaning "not given".
SEGMENTER_OPTIONS = {
    "tile": None, "scale": None, "channel": None, "object_size": "auto", "brightness": "auto",
    "denoise": "auto", "threshold": None,
    "min_size": None, "regions": None, "hdu": None, "geojson": False, "block": None,
    "block_margin": None, "background": "auto", "nodata": None, "mask": None,
    "ignore_flags": None, "uncertainty_file": None, "uncertainty_type": None,
    "format": None, "precision": "auto",
}  # fmt: skip


def refuse_segmenter_options(args, model) -> None:
    """A classifier/regressor given segmenter options: an error, not options silently ignored."""
    if args.skip_existing:
        raise ConfigError(
            f"--skip-existing applies to segmenters (products per input); {args.model} is a "
            f"{_task_name(model)} model, which writes one predictions.csv at the end of the "
            "batch: pass --overwrite to replace it, --keep-going to go past failing files"
        )
    given = [
        "--" + name.replace("_", "-")
        for name, unset in SEGMENTER_OPTIONS.items()
        if getattr(args, name, unset) != unset
    ]
    if args.uncertainty == "mc_dropout":
        given.append("--uncertainty mc_dropout")
    if given:
        task = _task_name(model)
        raise ConfigError(
            f"{', '.join(given)} appl{'y' if len(given) > 1 else 'ies'} to segmenters; "
            f"{args.model} is a {task} model (predictions.csv per file; --tta or --uncertainty "
            "tta average over the 8 flips/rotations and add their spread)"
        )


def _task_name(model) -> str:
    """The model's task, for messages (``"classification"`` when it cannot be told)."""
    from sciconv.models import model_task

    return model_task(model) or "classification"


def predict_table(model, paths, args) -> int:
    """Classify every input into one predictions.csv; the exit code (1 when ``--keep-going``
    left failed inputs out of it)."""
    from sciconv import inference, postprocess

    refuse_segmenter_options(args, model)
    target = args.out / "predictions.csv"
    check_outputs([target], overwrite=args.overwrite)

    def predict(some):
        return inference.predict_files(
            model,
            [str(p) for p in some],
            batch_size=args.batch_size,
            tta=bool(args.tta) or args.uncertainty == "tta",
            progress=not args.quiet,
        )

    batch = Batch(keep_going=args.keep_going)
    table = batch.predict_table(predict, paths)  # --keep-going: failed files' rows left out
    if table is None:  # every file failed
        return batch.finish(len(paths), note="; no predictions.csv written")
    # CSV holds one value per cell: postprocess.flatten_table's rule, probabilities_<class name>
    postprocess.write_catalog(table, target, overwrite=args.overwrite)
    if not args.quiet:
        say(f"{len(table)} predictions -> {target}")
    return batch.finish(len(paths), note=", left out of predictions.csv")
