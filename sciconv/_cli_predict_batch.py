"""``sciconv predict`` over a batch: the inputs that fail, with and without ``--keep-going``.

An input that fails leaves no partial products: :meth:`Batch.one_input` removes what the input
wrote when it fails or is interrupted (Ctrl-C, SIGTERM) part-way through, so a rerun with
``--skip-existing`` finds the products of each input whole or absent. Only the files this
process itself put in place are removed (``_atomic.recording_writes``), never one that another
process wrote meanwhile; with ``--overwrite`` a failed input's products of an earlier run are
removed too (they were made from the file's earlier contents), and its error line says so.
With ``--keep-going`` an input's sciconv error (unreadable pixels, normalization, inference,
writing; not a usage error) is reported as one ``sciconv: error: FILE: message`` line and the
batch goes on, unless the disk is full or read-only (no later input could be written);
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

import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path

from sciconv._atomic import recording_writes, refusal_reason, remove_scratch, stops_every_write
from sciconv._cli_common import EXIT_ERROR, EXIT_OK, error_text, resolved
from sciconv._cli_predict_chips import Chip, input_file
from sciconv._warnings import naming
from sciconv.errors import ConfigError, SciconvError, WriteError, name_text

__all__ = ["Batch", "differing_setting", "error_line", "is_input_error", "recorded_history"]

#: The failed inputs the summary line names; the others were named by their own lines.
_NAMED = 20


def is_input_error(exc: BaseException, also: tuple = ()) -> bool:
    """Whether ``exc`` is one input's failure, which ``--keep-going`` goes past: a sciconv error
    that is not a usage error (:class:`~sciconv.errors.ConfigError`, exit 2), or one of the
    classes ``also`` (e.g. ConfigError for an option one input cannot take).

    Examples
    --------
    >>> is_input_error(SciconvError("too small")), is_input_error(ConfigError("--channel 3"))
    (True, False)
    >>> is_input_error(KeyboardInterrupt())
    False
    """
    if also and isinstance(exc, also):
        return True
    return isinstance(exc, SciconvError) and not isinstance(exc, ConfigError)


def _same_file(a, b) -> bool:
    a, b = input_file(a), input_file(b)  # a chip of --hdu all: its file
    return a == b or resolved(a) == resolved(b)


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


def _key(path) -> str:
    return os.path.abspath(path)


def _wrote(path: Path, written: set) -> bool:
    """Whether this process put ``path`` (or the store holding it) in place: ``written`` holds
    the targets of ``_atomic.recording_writes``."""
    keys = {_key(p) for p in written}
    return any(_key(p) in keys for p in (path, *path.parents))


def _remove_partial(planned: list, written: set, earlier: list, *, stale: bool) -> list[Path]:
    """An input that failed: the files of ``planned`` (its products and sidecars) that this
    process wrote removed, and then, when it wrote any (an earlier run's products beside its
    own would mix two runs) or ``stale`` (``--overwrite``: they are the file's earlier
    contents'), those of ``earlier`` (its products there before it started) too; a file that
    another process wrote meanwhile is never touched. The earlier run's files removed."""
    mine = [p for p in planned if _wrote(p, written)]
    for path in mine:
        remove_scratch(path)  # never raises: the error that stopped the input is reported
    if not (mine or stale):
        return []
    gone = [p for p in earlier if p not in mine and os.path.lexists(p)]
    for path in gone:
        remove_scratch(path)
    return [p for p in gone if not os.path.lexists(p)]


def _with_note(exc: BaseException, note: str) -> None:
    """``note`` added to a sciconv error's message (its line then says it); other errors are
    left as they are."""
    if isinstance(exc, SciconvError):
        exc.message += note
        exc.args = (f"{exc.args[0]}{note}", *exc.args[1:])


def _with_chip(exc: BaseException, job) -> None:
    """A chip's error (``--hdu all``) that names its file, or nothing, made to name the chip,
    ``NAME.fits[SCI,2]``, as the line that ends the run (the batch's own lines lead with it)."""
    if isinstance(job, Chip) and isinstance(exc, SciconvError):
        if exc.path is None or _same_file(exc.path, job):
            exc.path = str(job)
            exc.args = (name_text(f"{job}: {exc.message}"), *exc.args[1:])


def _stopped(exc: BaseException) -> WriteError:
    """The error that ends a ``--keep-going`` batch after ``exc``: a full or read-only disk."""
    reason = refusal_reason(exc) or "the disk refused the write"
    folder = Path(exc.path).parent if isinstance(exc, SciconvError) and exc.path else None
    return WriteError(
        f"the batch stops here ({reason}): no later input could be written there; the inputs "
        "after this one were not run (--keep-going goes past failed inputs, not a full or "
        "read-only disk)",
        path=folder,
    )


class Batch:
    """The inputs of one ``sciconv predict`` run and those that failed.

    Parameters
    ----------
    keep_going : bool
        ``--keep-going``: an input's sciconv error (:func:`is_input_error`) is reported and the
        batch goes on; otherwise it ends the run, as any error does.
    overwrite : bool, optional
        ``--overwrite``: a failed input's products of an earlier run are removed (stale).
    """

    def __init__(self, *, keep_going: bool, overwrite: bool = False):
        self.keep_going = bool(keep_going)
        self.overwrite = bool(overwrite)
        self.failed: list[Path] = []

    def _fail(self, path: Path, exc: BaseException) -> None:
        with contextlib.suppress(OSError, ValueError):  # a stderr that is gone: the tally stays
            print(error_line(path, exc), file=sys.stderr, flush=True)
        self.failed.append(path)

    @contextmanager
    def one_input(
        self,
        path: Path,
        products: Iterable[Path] = (),
        sidecars: Iterable[Path] = (),
        *,
        also: tuple = (),
    ):
        """Run the block for one input ``path``. When it fails or is interrupted, the files of
        ``products`` (its planned products) and ``sidecars`` (its mask and uncertainty files,
        written only when needed) that this process wrote are removed, with them (or, with
        ``overwrite``, when it fails in any way) its products of an earlier run, which would
        be mixed with this one's or are stale; with ``keep_going`` an :func:`is_input_error`
        (``also``: further error classes that are this input's) is then reported and
        swallowed, unless the disk is full or read-only.

        Examples
        --------
        >>> batch = Batch(keep_going=True)
        >>> with batch.one_input(Path("b.fits"), also=(ConfigError,)):
        ...     raise ConfigError("--channel 3: the image has 1 channel(s)", path="b.fits")
        >>> [p.name for p in batch.failed]
        ['b.fits']
        """
        planned = list(dict.fromkeys(Path(p) for p in (*products, *sidecars)))
        earlier = [p for p in planned if os.path.lexists(p)]
        with recording_writes() as written, naming(f"{path}: ", unless=path.name):
            try:
                yield
            except BaseException as exc:
                failed = isinstance(exc, Exception)
                gone = _remove_partial(planned, written, earlier, stale=self.overwrite and failed)
                if gone:
                    _with_note(
                        exc,
                        f"; its earlier products {', '.join(p.name for p in gone)} were "
                        "removed (stale: made from the file's earlier contents)",
                    )
                if not (self.keep_going and is_input_error(exc, also)):
                    _with_chip(exc, path)
                    raise
                self._fail(path, exc)
                if stops_every_write(exc):
                    raise _stopped(exc) from exc

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
        names = ", ".join(str(p) for p in self.failed[:_NAMED])  # a chip: NAME.fits[SCI,2]
        if len(self.failed) > _NAMED:
            names += f", ... ({len(self.failed) - _NAMED} more, named above)"
        print(
            f"sciconv: error: {len(self.failed)} of {total} inputs failed{note} (--keep-going): "
            f"{names}",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_ERROR


# ------------------------------------------------- --skip-existing: what the products record
def recorded_history(product: Path) -> list[str] | None:
    """The HISTORY lines a sciconv product records (FITS HISTORY cards, the TIFF description's
    ``history``, an OME-TIFF image's ``Description``, an ImageJ hyperstack's ``Info``, an
    OME-Zarr store's or block-wise labels' ``sciconv``
    attributes); None for a file that records
    none by format (catalogs, regions, block-wise labels written before they recorded settings).

    Raises ``OSError`` or ``ValueError`` for a product that cannot be read.

    Examples
    --------
    >>> recorded_history(Path("a_catalog.ecsv")) is None
    True
    """
    from sciconv import io

    name = product.name.lower()
    if name.endswith(".zarr"):  # an OME-Zarr store, or block-wise labels (a plain array)
        lines: list[str] = []
        for attrs in ("zarr.json", ".zattrs"):
            if (product / attrs).is_file():
                meta = json.loads((product / attrs).read_text(encoding="utf-8"))
                meta = meta.get("attributes", meta)
                lines = list(meta.get("sciconv", {}).get("history", []))
                break
        if not name.endswith(".ome.zarr") and not _a_prediction(lines):
            return None  # block-wise labels of before their settings were recorded: unchecked
        return lines
    if name.endswith(tuple(e.lower() for e in io.FITS_EXTENSIONS)):
        from astropy.io import fits

        with fits.open(product) as hdul:  # a FITS catalog's are its table's, HDU 1 (review)
            return [str(line) for hdu in hdul[:2] for line in hdu.header.get("HISTORY", [])]
    if name.endswith(tuple(io.TIFF_EXTENSIONS)):
        import tifffile

        try:
            return _tiff_history(product)
        except tifffile.TiffFileError as exc:  # a ValueError only from tifffile 2025.10 on
            if isinstance(exc, ValueError):
                raise
            raise ValueError(f"{exc} (TiffFileError)") from exc
    return None


def _tiff_history(product: Path) -> list[str]:
    """:func:`recorded_history` of a TIFF product."""
    import tifffile

    with tifffile.TiffFile(product) as tif:
        if tif.is_ome and tif.ome_metadata:  # the OME Image's Description, line by line
            image = tifffile.xml2dict(tif.ome_metadata).get("OME", {}).get("Image", {})
            image = image[0] if isinstance(image, list) else image
            return str(image.get("Description") or "").splitlines()
        if tif.is_imagej:  # an ImageJ hyperstack (the product of an ImageJ stack): Info
            return str((tif.imagej_metadata or {}).get("Info") or "").splitlines()
        meta = tif.shaped_metadata
        return list((meta[0] if meta else {}).get("history", []))


def _a_prediction(lines: Sequence[str]) -> bool:
    """Whether HISTORY ``lines`` record a sciconv prediction (``history_record``'s first line)."""
    return any(line.startswith("sciconv prediction with model ") for line in lines)


def records_prediction(product: Path) -> bool | None:
    """Whether ``product`` records a sciconv prediction in its HISTORY: True, False (its format
    records one and it has none: a file of another origin, ground truth), or None (its format
    records none, :func:`recorded_history`, or it cannot be read: cannot be told).

    Examples
    --------
    >>> records_prediction(Path("a_catalog.ecsv")) is None
    True
    """
    try:
        lines = recorded_history(product)
    except (OSError, ValueError, KeyError):
        return None
    return None if lines is None else _a_prediction(lines)


# how the lines write_products records begin (a FITS card's continuation begins otherwise)
_RECORD_START = re.compile(r"  \w+ = |sciconv |class probability planes: ")


def _settings(lines: Sequence[str]) -> dict[str, str]:
    """``{"model": ..., setting: value as written}`` from a product's HISTORY lines (a FITS
    card of 72 characters continues on the next)."""
    found: dict[str, str] = {}
    key, previous = None, ""
    for line in lines:
        model = re.match(r"sciconv prediction with model (.*)$", line)
        setting = re.match(r"  (\w+) = (.*)$", line)
        if model and "model" not in found:
            found["model"], key = model[1].strip(), None
        elif setting:
            key = setting[1]
            found[key] = setting[2].strip()
        elif key is not None and len(previous) >= 70 and not _RECORD_START.match(line):
            found[key] += line.strip()  # a long line split over FITS cards
        else:
            key = None
        previous = line
    return found


def _same_value(key: str, recorded: str | None, wanted: str | None) -> bool:
    if recorded == wanted:
        return True
    if recorded is None and wanted == _ADDED.get(key):  # recorded since, at its default
        return True
    # a setting asked as auto records what auto decided ('bfloat16 (auto)', '0.185 (auto:
    # objects 97.8 px)'), and decisions of no setting ('input_transform'): the same setting
    return wanted in ("'auto'", None) and _decided(recorded)


def _decided(recorded: str | None) -> bool:
    """Whether a recorded value is a decision of ``auto`` (``'... (auto)'``, ``'(auto: why)'``,
    ``'by plane: ...'`` of a stack's planes)."""
    return bool(recorded and "(auto" in recorded)


#: Settings recorded since products first recorded settings, with their default: an earlier
#: run's product without them was made with the default.
_ADDED = {"background": "'auto'"}


#: Settings that do not change the products (block-wise runs equal whole-image ones; a smaller
#: batch after running out of memory): a resume may differ in them (review).
_SAME_RESULT = frozenset({"batch_size", "block", "block_margin"})


def differing_setting(product: Path, settings: Sequence[str]) -> str | None:
    """What ``product`` records that differs from ``settings`` (the HISTORY lines this run
    writes: model and settings), in words; None when it matches or records nothing by format.

    Examples
    --------
    >>> differing_setting(Path("a_catalog.ecsv"), ["sciconv prediction with model m.keras"])
    """
    from sciconv import io
    from sciconv.io._common import fits_text

    try:
        lines = recorded_history(product)
    except (OSError, ValueError, KeyError) as err:
        return f"settings that cannot be read ({type(err).__name__})"
    if lines is None:
        return None
    fits = product.name.lower().endswith(tuple(e.lower() for e in io.FITS_EXTENSIONS))
    wanted = _settings([fits_text(line) if fits else line for line in settings])
    recorded = _settings(lines)
    if "model" not in recorded:
        return "no recorded sciconv settings"
    for key in dict.fromkeys([*wanted, *recorded]):
        if key in _SAME_RESULT:
            continue
        if not _same_value(key, recorded.get(key), wanted.get(key)):
            if key == "model":
                return f"model {recorded[key]} (this run: {wanted.get(key)})"
            return (
                f"{key} = {recorded.get(key, 'not set')} (this run: {wanted.get(key, 'not set')})"
            )
    return None


def recorded_precisions(products: Sequence[Path]) -> set[str]:
    """The precisions ``--precision auto`` chose for ``products`` (``"bfloat16"``,
    ``"float32"``), as their HISTORY records them; products that record none are left out.

    Examples
    --------
    >>> recorded_precisions([Path("a_catalog.ecsv")])
    set()
    """
    chosen = set()
    for product in products:
        try:
            lines = recorded_history(product)
        except (OSError, ValueError, KeyError):
            continue
        value = _settings(lines or []).get("precision", "")
        match = re.fullmatch(r"'(.+) \(auto\)'", value)
        if match:
            chosen.add(match[1])
    return chosen
