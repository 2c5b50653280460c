"""Which image of an input file ``sciconv predict`` reads: ``--hdu``, ``--series``, and under
``--hdu all`` the chips of a multi-chip FITS file, each a job of its own.

An HST ``_flt``/``_flc`` keeps its CCDs as ``SCI,1`` and ``SCI,2``, a DECam ``ooi`` file its
60 CCDs as ``S1`` ... ``N31``, an HSC or MegaCam MEF one CCD per extension. ``--hdu all`` makes
each chip (:func:`sciconv.io._chips.science_hdus`) a :class:`Chip`: segmented as ``--hdu
SCI,2`` segments it (its DQ/ERR/MASK by EXTVER), with products of its own named
``NAME.TAG_...`` (:func:`product_stem`: ``j8bt06nyq_flt.SCI_2_labels.fits``,
``c4d_ooi.S29_catalog.ecsv``), skipped, refused, failed and counted on its own, and named in
messages as ``NAME.fits[SCI,2]`` (the CFITSIO spelling). A file that is not FITS, or a FITS
file of one science image, is one job as without ``--hdu``.

Where a job's products go is decided here too, in one place (:func:`output_folder`): ``--out``,
or with ``--keep-tree`` the input's folder relative to the batch's common parent folder
(:func:`tree_root`) under ``--out``: ``nights/n0/field.fits`` -> ``res/n0/field_...``.

Examples
--------
>>> chip = Chip(Path("in/j8bt06nyq_flt.fits"), "SCI,2", 4, chip_tag("SCI,2"))
>>> str(chip), product_stem(chip), product_stem(Path("in/cells.tif"))
('in/j8bt06nyq_flt.fits[SCI,2]', 'j8bt06nyq_flt.SCI_2', 'cells')
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from pathlib import Path

from sciconv._cli_predict_options import ALL_HDUS
from sciconv.errors import ConfigError

__all__ = [
    "ALL_HDUS",
    "Chip",
    "chip_tag",
    "expand_chips",
    "file_chips",
    "hdu_args",
    "input_file",
    "input_name",
    "is_fits",
    "job_args",
    "output_folder",
    "product_stem",
    "refuse_block_chips",
    "series_args",
    "tree_root",
]


@dataclasses.dataclass(frozen=True)
class Chip:
    """One science chip of a multi-chip FITS file: a job of ``sciconv predict --hdu all``.

    Parameters
    ----------
    path : pathlib.Path
        The FITS file, as the command line named it.
    hdu : str
        The chip as ``--hdu`` takes it (``SCI,2``, ``S29``; its index when the file's labels
        do not tell its chips apart).
    index : int
        Its HDU index in the file.
    tag : str
        ``hdu`` made safe for a file name (:func:`chip_tag`): what its products' names add.

    Examples
    --------
    >>> chip = Chip(Path("c4d_ooi.fits.fz"), "S29", 1, "S29")
    >>> str(chip), chip.name
    ('c4d_ooi.fits.fz[S29]', 'c4d_ooi.fits.fz[S29]')
    """

    path: Path
    hdu: str
    index: int
    tag: str

    def __str__(self) -> str:
        return f"{self.path}[{self.hdu}]"

    @property
    def name(self) -> str:
        """The file's name with the chip: ``NAME.fits[SCI,2]``."""
        return f"{self.path.name}[{self.hdu}]"


def chip_tag(label: str) -> str:
    """An HDU label made safe for a file name: each run of characters other than letters,
    digits, ``+`` and ``-`` becomes ``_`` (``SCI,2`` -> ``SCI_2``).

    Examples
    --------
    >>> chip_tag("SCI,2"), chip_tag("S29"), chip_tag("CCD 1/a")
    ('SCI_2', 'S29', 'CCD_1_a')
    """
    return re.sub(r"[^A-Za-z0-9+-]+", "_", str(label)).strip("_") or "HDU"


def file_chips(path: Path) -> list[Chip]:
    """The chips of FITS file ``path`` (:func:`sciconv.io._chips.science_hdus` of the HDU read
    by default), in file order; an empty list for a file of one science image, or one whose
    structure cannot be read (it then fails as a file of its own does).

    Chips whose tags (:func:`chip_tag`) are not unique, ignoring case (two ``SCI`` without
    EXTVER; ``A,1`` beside ``A_1``), are named by their index: ``HDU3``.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> p = Path(tempfile.mkdtemp()) / "x_flt.fits"
    >>> chip = np.zeros((4, 4), np.float32)
    >>> fits.HDUList([fits.PrimaryHDU()] + [fits.ImageHDU(chip, name=n, ver=v)
    ...               for v in (1, 2) for n in ("SCI", "DQ")]).writeto(p)
    >>> [(c.hdu, c.index, c.tag) for c in file_chips(p)]
    [('SCI,1', 1, 'SCI_1'), ('SCI,2', 3, 'SCI_2')]
    """
    from astropy.io import fits

    from sciconv._warnings import caught
    from sciconv.io._chips import science_hdus
    from sciconv.io._fits_hdus import select_hdu

    try:
        with caught("ignore"):  # the file's own warnings are said when a chip is read
            with fits.open(path, lazy_load_hdus=True, do_not_scale_image_data=True) as hdul:
                index, _ = select_hdu(hdul, None, path)
    except Exception:  # unreadable: the file fails as one input, with its own error
        return []
    found = science_hdus(path, index)
    tags = [chip_tag(label) for _, label in found]
    if len({t.lower() for t in tags}) < len(tags):  # labels that do not tell chips apart
        return [Chip(path, str(i), i, f"HDU{i}") for i, _ in found]
    return [Chip(path, label, i, tag) for (i, label), tag in zip(found, tags)]


def expand_chips(paths, args) -> list:
    """``--hdu all``: every FITS input of several science images (:func:`file_chips`) replaced
    by its chips, the other inputs kept as they are; ``paths`` unchanged without it.

    Examples
    --------
    >>> import argparse
    >>> expand_chips([Path("cells.tif")], argparse.Namespace(hdu="all"))
    [PosixPath('cells.tif')]
    """
    if getattr(args, "hdu", None) != ALL_HDUS:
        return list(paths)
    jobs: list = []
    for p in paths:
        chips = file_chips(p) if is_fits(p) and p.is_file() else []
        jobs.extend(chips or [p])
    return jobs


def input_file(job) -> Path:
    """The file a job (an input path or a :class:`Chip`) reads.

    Examples
    --------
    >>> input_file(Chip(Path("a.fits"), "SCI,1", 1, "SCI_1")), input_file(Path("b.tif"))
    (PosixPath('a.fits'), PosixPath('b.tif'))
    """
    return job.path if isinstance(job, Chip) else Path(job)


def product_stem(job) -> str:
    """The name a job's products begin with (``postprocess.product_paths``' ``stem``): the
    input's :func:`sciconv.io.image_stem`, a chip's tag after a dot (``NAME.SCI_2``), so the
    products of a file's chips never collide and sort together by chip.

    Examples
    --------
    >>> product_stem(Chip(Path("c4d_ooi.fits.fz"), "N4", 3, "N4"))
    'c4d_ooi.N4'
    """
    from sciconv import io

    stem = io.image_stem(input_file(job))
    return f"{stem}.{job.tag}" if isinstance(job, Chip) else stem


def tree_root(paths) -> Path:
    """``--keep-tree``: the folder whose layout the products keep under ``--out``, the deepest
    folder holding every input file (absolute; links not resolved: the layout as named). It
    depends on the inputs named, not on which of them fail, are skipped or come first.

    Parameters
    ----------
    paths : sequence of pathlib.Path or Chip
        The batch's inputs, all of them (before any is skipped or fails).

    Returns
    -------
    pathlib.Path
        Their common parent folder.

    Raises
    ------
    sciconv.errors.ConfigError
        When the inputs have no common folder (two Windows drives), or there are none.

    Examples
    --------
    >>> root = tree_root([Path("/d/nights/n0/field.fits"), Path("/d/nights/n1/field.fits")])
    >>> root.as_posix()
    '/d/nights'
    >>> output_folder(Path("/d/nights/n1/field.fits"), Path("res"), root).as_posix()
    'res/n1'
    """
    folders = {os.path.dirname(os.path.abspath(input_file(p))) for p in paths}
    try:
        return Path(os.path.commonpath(sorted(folders)))
    except ValueError as exc:  # no inputs, or two Windows drives
        raise ConfigError(f"--keep-tree: the inputs have no common folder ({exc})") from None


def output_folder(job, out, root=None) -> Path:
    """The folder a job's products go to: ``out``, or with ``root`` (``--keep-tree``,
    :func:`tree_root`) ``out`` and the input's folder relative to ``root``. The one place that
    decides it: planning, checks and writers all ask here (:func:`job_args` sets a job's).

    Parameters
    ----------
    job : pathlib.Path or Chip
        An input, or a chip of ``--hdu all``.
    out : pathlib.Path
        ``--out``.
    root : pathlib.Path, optional
        The batch's :func:`tree_root` under ``--keep-tree``; None (default): ``out`` itself.

    Returns
    -------
    pathlib.Path
        The folder.

    Examples
    --------
    >>> output_folder(Path("/d/n0/a.fits"), Path("res"), Path("/d")).as_posix()
    'res/n0'
    >>> output_folder(Path("/d/n0/a.fits"), Path("res")).as_posix()
    'res'
    """
    if root is None:
        return Path(out)
    return Path(out) / _relative(input_file(job), root).parent


def input_name(job, root=None) -> str:
    """The input as a catalog's ``INPUT`` names it: its file name, or with ``root``
    (``--keep-tree``) its path relative to ``root`` (``n0/field.fits``), so two nights'
    catalogs of the same file name say which is which.

    Examples
    --------
    >>> input_name(Path("/d/n0/field.fits"), Path("/d")), input_name(Path("/d/n0/field.fits"))
    ('n0/field.fits', 'field.fits')
    """
    path = input_file(job)
    return path.name if root is None else _relative(path, root).as_posix()


def _relative(path: Path, root) -> Path:
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root)))


def job_args(job, args):
    """The options one job runs with: under ``--hdu all`` a chip's with ``hdu`` set to it (as
    ``--hdu SCI,2`` sets it: read, recorded in the HISTORY and compared by
    ``--skip-existing`` alike), another input's with no ``--hdu``; ``job`` set to the job, for
    the product names (:func:`product_stem`) and the messages. Under ``--keep-tree``
    (``args.tree_root``, :func:`tree_root`) ``out`` is the job's own folder
    (:func:`output_folder`) and ``input_name`` its relative path (:func:`input_name`).

    Examples
    --------
    >>> import argparse
    >>> args = argparse.Namespace(hdu="all")
    >>> job_args(Chip(Path("a.fits"), "SCI,2", 4, "SCI_2"), args).hdu, args.hdu
    (('SCI', 2), 'all')
    >>> job_args(Path("b.tif"), args).hdu is None
    True
    >>> args = argparse.Namespace(hdu=None, out=Path("res"), tree_root=Path("/d"))
    >>> job_args(Path("/d/n1/b.tif"), args).out.as_posix()
    'res/n1'
    """
    from sciconv.io import parse_hdu

    given = copy.copy(args)
    if getattr(args, "hdu", None) == ALL_HDUS:
        given.hdu = parse_hdu(job.hdu) if isinstance(job, Chip) else None
    given.job = job
    root = getattr(args, "tree_root", None)
    if root is not None:
        given.out = output_folder(job, args.out, root)
        given.input_name = input_name(job, root)
        given.tree_root = None  # given.out is the job's folder: never nested twice
    return given


def refuse_block_chips(mosaics) -> None:
    """``--hdu all`` segments each chip whole: a chip to be segmented block by block (``--block``,
    or over ``inference.AUTO_BLOCK_PIXELS``) is refused (a
    :class:`~sciconv.errors.ConfigError`, before any input is segmented), naming it.

    Examples
    --------
    >>> refuse_block_chips([Path("mosaic.fits")])  # a whole file: block-wise as before
    """
    chips = [str(m) for m in mosaics if isinstance(m, Chip)]
    if chips:
        listed = ", ".join(chips[:5]) + (", ..." if len(chips) > 5 else "")
        raise ConfigError(
            f"--hdu all: {len(chips)} chip(s) would be segmented block by block ({listed}), "
            "whose products are named after the file, not the chip; run each with --hdu "
            "(e.g. --hdu SCI,2) and an --out of its own, or without --block"
        )


def is_fits(path: Path) -> bool:
    """Whether ``path`` names a FITS file (by its extension, compressed ones included).

    Examples
    --------
    >>> is_fits(Path("a.FITS")), is_fits(Path("a.tif"))
    (True, False)
    """
    from sciconv import io

    return path.name.lower().endswith(tuple(e.lower() for e in io.FITS_EXTENSIONS))


def hdu_args(path, args) -> dict:
    """``--hdu`` and ``--series``: the ``hdu=`` of :func:`sciconv.io.read` for a FITS input,
    its ``series=`` for a TIFF (:func:`series_args`; empty without them); a
    :class:`~sciconv.errors.ConfigError` for an input of another kind. ``--hdu all`` (before
    :func:`job_args` sets each job's) is nothing for an input that is not FITS.

    Examples
    --------
    >>> import argparse
    >>> hdu_args(Path("a.fits"), argparse.Namespace(hdu="SCI"))
    {'hdu': 'SCI'}
    >>> hdu_args(Path("a.tif"), argparse.Namespace(hdu="all"))
    {}
    """
    if args.hdu is None or (args.hdu == ALL_HDUS and not is_fits(path)):
        return series_args(path, args)
    if not is_fits(path):
        raise ConfigError(f"--hdu applies to FITS files; {path.name} is not one", path=path)
    return {} if args.hdu == ALL_HDUS else {"hdu": args.hdu}


def series_args(path, args) -> dict:
    """``--series``: the ``series=`` of :func:`sciconv.io.read` for a TIFF input (empty
    without it); a :class:`~sciconv.errors.ConfigError` for an input not named as a TIFF.

    Examples
    --------
    >>> import argparse
    >>> series_args(Path("slide.scn"), argparse.Namespace(series=0))
    {'series': 0}
    """
    from sciconv import io

    series = getattr(args, "series", None)
    if series is None:
        return {}
    if not path.name.lower().endswith(io.TIFF_EXTENSIONS):
        raise ConfigError(f"--series applies to TIFF files; {path.name} is not one", path=path)
    return {"series": series}
