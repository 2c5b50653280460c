"""The ``sciconv`` command: ``demo``, ``train``, ``predict`` and ``info``.

``sciconv demo`` runs the whole pipeline on the bundled data; ``sciconv train CONFIG.yaml``
trains a model described by a YAML file (see ``configs/example_train.yaml``); ``sciconv predict
MODEL INPUT... --out DIR`` applies a trained model to images; ``sciconv info`` prints versions and
devices.

Every problem with the input (missing file, bad configuration key, existing output) ends in one
line ``sciconv: error: <message>`` on stderr and a non-zero exit code: 2 for usage and
configuration errors, 1 for the rest. Set ``SCICONV_DEBUG=1`` to see the full traceback instead.
Nothing is overwritten without ``--overwrite``. Ctrl-C (SIGINT) stops a command cleanly (exit 130,
``sciconv: interrupted``); so does SIGTERM, what Slurm and cron timeouts send (exit 143,
``sciconv: terminated``): ``predict`` removes its scratch and partial files and keeps the files it
finished; ``train`` (and ``demo``) releases its run folder's lock, and the same command run again
resumes from the last finished epoch.

Examples
--------
>>> from sciconv.cli import main
>>> main(["train", "no/such/config.yaml"])  # doctest: +SKIP
sciconv: error: no/such/config.yaml: configuration file not found
2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from sciconv._cli_common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    Parser,
    error_text,
    one_line,
    say,
)
from sciconv._cli_predict import (
    cmd_predict,
    is_fits,
    segmentation_outputs,
)
from sciconv._cli_predict_options import (  # noqa: F401 (the constants are re-exported)
    BACKGROUND_MODES,
    PRODUCT_CATALOG_FORMATS,
    PRODUCT_FORMATS,
    add_predict_parser,
)
from sciconv._cli_train import (  # noqa: F401 (the constants are re-exported)
    CONFIG_SECTIONS,
    DATASET_KINDS,
    MODEL_TYPES,
    add_train_parser,
    cmd_train,
    load_config,
)
from sciconv._quiet_tf import import_tensorflow_quietly
from sciconv.errors import ConfigError, SciconvError

__all__ = ["build_parser", "load_config", "main"]

#: Exit code after SIGTERM (128 + 15, as a shell reports a process the signal ended).
EXIT_TERMINATED = 128 + int(signal.SIGTERM)

# the names this module had before the subcommands moved to sciconv/_cli_*.py
_cmd_train, _cmd_predict = cmd_train, cmd_predict
_is_fits, _segmentation_outputs = is_fits, segmentation_outputs


# --------------------------------------------------------------------------------------------
# sciconv demo / info
# --------------------------------------------------------------------------------------------
def _cmd_demo(args: argparse.Namespace) -> int:
    from sciconv import demo

    fast = args.fast or os.environ.get("SCICONV_FAST") == "1"
    result = demo.run(out=args.out, data=args.data, fast=fast, overwrite=args.overwrite, log=say)
    say("")
    say("headline metrics")
    for line in demo.headline(result):
        say(f"  {line}")
    say(f"report: {Path(args.out) / 'report.md'}")
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    from sciconv import devices

    say(devices.describe())
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# parser and entry point
# --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``sciconv`` argument parser with its four subcommands.

    Examples
    --------
    >>> from sciconv.cli import build_parser
    >>> args = build_parser().parse_args(["predict", "m.keras", "a.fits", "--out", "res"])
    >>> args.command, args.inputs, args.tta
    ('predict', ['a.fits'], False)
    """
    from sciconv import __version__

    parser = Parser(
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

    add_train_parser(sub)
    add_predict_parser(sub).set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "info",
        help="print versions, devices and the active distribution strategy",
        description="Print sciconv/TensorFlow/Keras versions, CPU and GPUs, cluster and policies.",
    )
    p.set_defaults(func=_cmd_info)
    return parser


def run() -> int:
    """The ``sciconv`` console command: :func:`main`, with each sciconv warning shown as one
    ``sciconv: warning: <message>`` line on stderr (not a source line of sciconv's code), and
    each astropy warning (e.g. a FITS card fixed on reading) as one
    ``sciconv: warning: <Category>: <message>`` line instead of astropy's multi-line block.

    Returns
    -------
    int
        :func:`main`'s exit code.
    """
    import warnings

    # the console command's own process (and its children) only: main() called from Python
    # leaves the caller's environment, which its later subprocesses inherit, as it was
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import astropy  # noqa: F401 (its logger takes over showwarning on import: it must come first)

    from sciconv.errors import SciconvWarning

    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        stream = sys.stderr if file is None else file
        if issubclass(category, SciconvWarning):
            print(f"sciconv: warning: {message}", file=stream)
        elif category.__module__.split(".")[0] == "astropy":
            text = one_line(message) if isinstance(message, Warning) else " ".join(message.split())
            print(f"sciconv: warning: {category.__name__}: {text}", file=stream)
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        code = main()
    finally:
        warnings.showwarning = original
    if code in (130, EXIT_TERMINATED) and threading.current_thread() is threading.main_thread():
        # cleaned up and said so: a second Ctrl-C or SIGTERM while Python joins its threads
        # and exits (about a second) ended it by the signal (status -2) with a traceback (QA)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return code


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM (a Slurm or cron timeout), so that the command ends
    as after Ctrl-C: ``finally`` blocks remove its scratch and partial files."""


# The commands that SIGTERM ends through their clean-up (as Ctrl-C does): every one. train and
# demo (which trains) may take it in the middle of writing the weights backup, which is atomic
# (sciconv/_fit_backup.py): the previous state or the new one is left whole, and the lock of the
# run folder is released, so the rerun resumes without a stale-lock warning.
_CLEAN_ON_SIGTERM = frozenset({"demo", "info", "predict", "train"})


@contextlib.contextmanager
def _sigterm_interrupts(enabled: bool = True) -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Terminated` (once; a repeated SIGTERM is
    ignored so the clean-up it started can finish). The previous handler is restored after.

    Signal handlers can only be set in the main thread: elsewhere (or not ``enabled``) this
    does nothing.
    """
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def handler(signum, frame):
        nonlocal raised
        if not raised:
            raised = True
            raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sciconv`` command; returns the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 for usage and configuration errors, 1 for any other error, 130 after
        Ctrl-C (SIGINT) and 143 after SIGTERM.

    Examples
    --------
    >>> main(["--version"])  # doctest: +SKIP
    sciconv 0.1.0
    0
    """
    if sys.stderr is None:  # started with file descriptor 2 closed (2>&-): messages are dropped,
        sink = os.open(os.devnull, os.O_WRONLY)  # the work is done (it exited 1 at once, silently)
        if sink != 2:  # descriptor 2 itself, not 0 or 1 when those are closed too (QA: EBADF)
            os.dup2(sink, 2)
            os.close(sink)
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code or 0)
    debug = os.environ.get("SCICONV_DEBUG") == "1"
    try:
        with _sigterm_interrupts(args.command in _CLEAN_ON_SIGTERM):
            if not debug:  # a Ctrl-C in these seconds: "interrupted", not TensorFlow's traceback
                import_tensorflow_quietly()
            return int(args.func(args))
    except Terminated:
        print("sciconv: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("sciconv: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        code = EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_ERROR
        if isinstance(exc, (SciconvError, OSError)):
            msg = error_text(exc)
        elif "home directory" in str(exc):  # astropy's and platformdirs' RuntimeError (QA env)
            msg = one_line(exc).rstrip(".")
            msg += ": set HOME (or SCICONV_DATA_DIR for the download cache)"
        else:
            msg = (
                f"unexpected {type(exc).__name__}: {one_line(exc)} "
                "(set SCICONV_DEBUG=1 for the traceback)"
            )
        print(f"sciconv: error: {msg}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(run())
