"""``sciconv predict`` over a batch: the inputs that fail, with and without ``--keep-going``.

An input that fails leaves no partial products: :meth:`Batch.one_input` removes what the input
wrote when it fails or is interrupted (Ctrl-C, SIGTERM) part-way through, so a rerun with
``--skip-existing`` finds the products of each input whole or absent. With ``--keep-going`` an
input's sciconv error (unreadable pixels, normalization, inference, writing; not a usage error)
is reported as one ``sciconv: error: FILE: message`` line and the batch goes on;
:meth:`Batch.finish` then names the failed inputs and gives the exit code.
``sciconv._cli_predict`` runs the inputs.

Examples
--------
>>> batch = Batch(keep_going=True)
>>> with batch.one_input(Path("a.fits")):
...     raise SciconvError("normalization limits are not finite", path="a.fits")
>>> batch.failed
[PosixPath('a.fits')]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path

from sciconv._atomic import remove_scratch
from sciconv._cli_common import EXIT_ERROR, EXIT_OK, error_text
from sciconv.errors import ConfigError, SciconvError

__all__ = ["Batch", "error_line", "is_input_error"]

#: The failed inputs the summary line names; the others were named by their own lines.
_NAMED = 20


def is_input_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one input's failure, which ``--keep-going`` goes past: a sciconv error
    that is not a usage error (:class:`~sciconv.errors.ConfigError`, exit 2).

    Examples
    --------
    >>> is_input_error(SciconvError("too small")), is_input_error(ConfigError("--channel 3"))
    (True, False)
    >>> is_input_error(KeyboardInterrupt())
    False
    """
    return isinstance(exc, SciconvError) and not isinstance(exc, ConfigError)


def _same_file(a, b) -> bool:
    a, b = Path(a), Path(b)
    return a == b or a.resolve() == b.resolve()


def _index_of(exc: SciconvError, paths: Sequence[Path]) -> int | None:
    """Where the file ``exc`` names is in ``paths`` (None: it names none of them)."""
    if exc.path is None:
        return None
    return next((i for i, p in enumerate(paths) if _same_file(exc.path, p)), None)


def error_line(path: Path, exc: BaseException) -> str:
    """The ``sciconv: error: FILE: message`` line of an input that failed: the error as
    :func:`sciconv.cli.main` prints it, led by the input as the command line named it.

    Examples
    --------
    >>> error_line(Path("a.fits"), SciconvError("no finite pixel", path="./a.fits"))
    'sciconv: error: a.fits: no finite pixel'
    >>> from sciconv.errors import OutputExistsError
    >>> error_line(Path("a.fits"), OutputExistsError("exists; pass overwrite=True", path="o"))
    'sciconv: error: a.fits: o: exists; pass --overwrite'
    """
    named = exc.path if isinstance(exc, SciconvError) else None
    own = named is not None and _same_file(named, path)  # the input's own spelling leads
    return f"sciconv: error: {path}: {error_text(exc, with_path=not own)}"


def _stamp(path: Path):
    """What tells a file (or store) this run wrote from an earlier run's: None when absent."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _remove_partial(products: dict, sidecars: dict) -> None:
    """An input that failed while its files were written: what it wrote removed, and then its
    planned products of an earlier run too (only there with ``--overwrite``: kept, they would
    mix two runs); nothing when it wrote nothing (an earlier run's products are whole)."""
    changed = [p for p, stamp in {**products, **sidecars}.items() if _stamp(p) != stamp]
    if not changed:
        return
    for path in dict.fromkeys([*changed, *products]):
        remove_scratch(path)  # never raises: the error that stopped the input is reported


class Batch:
    """The inputs of one ``sciconv predict`` run and those that failed.

    Parameters
    ----------
    keep_going : bool
        ``--keep-going``: an input's sciconv error (:func:`is_input_error`) is reported and the
        batch goes on; otherwise it ends the run, as any error does.
    """

    def __init__(self, *, keep_going: bool):
        self.keep_going = bool(keep_going)
        self.failed: list[Path] = []

    def _fail(self, path: Path, exc: BaseException) -> None:
        print(error_line(path, exc), file=sys.stderr, flush=True)
        self.failed.append(path)

    @contextmanager
    def one_input(self, path: Path, products: Iterable[Path] = (), sidecars: Iterable[Path] = ()):
        """Run the block for one input ``path``. When it fails or is interrupted, the files of
        ``products`` (its planned products) and ``sidecars`` (its mask and uncertainty files,
        written only when needed) that it wrote are removed (with them its planned products of
        an earlier run, which would be mixed with this one's); with ``keep_going`` an
        :func:`is_input_error` is then reported and swallowed."""
        products = {Path(p): _stamp(Path(p)) for p in products}
        sidecars = {Path(p): _stamp(Path(p)) for p in sidecars}
        try:
            yield
        except BaseException as exc:
            _remove_partial(products, sidecars)
            if not (self.keep_going and is_input_error(exc)):
                raise
            self._fail(path, exc)

    def predict_table(self, predict: Callable[[list[Path]], object], paths: Sequence[Path]):
        """One table over all ``paths`` (``predict(paths)``, e.g. a ``predict_files`` call), the
        rows of failing inputs left out with ``keep_going``: a sciconv error naming one of them
        reports it, and the files before it and after it are predicted again without it (each
        file at most twice). An error naming none of them (the model's) ends the run. None when
        every input failed.
        """
        if not self.keep_going:
            return predict(list(paths))
        tables, pending = [], [list(paths)]
        while pending:
            part = pending.pop(0)
            if not part:
                continue
            try:
                tables.append(predict(part))
            except SciconvError as exc:
                i = _index_of(exc, part)
                if i is None or not is_input_error(exc):
                    raise
                self._fail(part[i], exc)
                pending[:0] = [part[:i], part[i + 1 :]]
        if len(tables) < 2:
            return tables[0] if tables else None
        from astropy.table import vstack

        table = vstack(tables, metadata_conflicts="silent")
        table.meta.update(tables[0].meta)
        return table

    def finish(self, total: int, *, note: str = "") -> int:
        """The exit code: 0, or 1 after one ``sciconv: error:`` line on stderr saying how many
        of ``total`` inputs failed and naming them (the first few; ``note`` after the count)."""
        if not self.failed:
            return EXIT_OK
        names = ", ".join(os.fspath(p) for p in self.failed[:_NAMED])
        if len(self.failed) > _NAMED:
            names += f", ... ({len(self.failed) - _NAMED} more, named above)"
        print(
            f"sciconv: error: {len(self.failed)} of {total} inputs failed{note} (--keep-going): "
            f"{names}",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_ERROR
