"""Public data sets one call away: download once (checksummed, cached), load in sciconv's forms.

Downloads go through `pooch <https://www.fatiando.org/pooch>`_ (the downloader scikit-image and
many science packages use): a registry of URLs and checksums, a per-user cache
(``pooch.os_cache("sciconv")``, or the folder named by the environment variable
``SCICONV_DATA_DIR``), a progress bar, retries, and a hash check. A file that fails its checksum
or arrives truncated is never left in the cache, and a cached file is not downloaded again.

Every use of a cached file checks it again: against the registry's published checksum, or, for a
data set that publishes none (DSB2018), against the SHA-256 recorded in ``.<file>.sha256`` when it
was downloaded and passed a structural check (a zip whose members all read back intact and hold
``<id>/images/<id>.png`` files; an HTML error page served with status 200 fails it and is not
kept). A cached file changed since then raises :class:`~sciconv.errors.DownloadError` saying
which file to delete to download it again.

Data sets (:data:`REGISTRY`):

``"galaxy10"``
    Galaxy10 DECaLS: 17,736 galaxies, 256x256 g/r/z colour images, 10 morphology classes (HDF5,
    2.7 GB, Zenodo record 10845026, MD5 checked). ``load("galaxy10")`` gives
    ``(images, labels, class_names)`` or, with ``out=``, a class-per-folder tree that
    :func:`sciconv.datasets.from_folder` reads.
``"dsb2018"``
    2018 Data Science Bowl stage 1 training set (BBBC038v1, 670 nucleus images with per-nucleus
    masks, ZIP, 82 MB). ``load("dsb2018")`` gives image/label arrays or, with ``out=``, an
    image/mask-pair folder that :func:`sciconv.datasets.from_pairs` reads.
``"dsb2018_local"``
    The same kind of data from a local folder already on disk (``images/<id>.png`` +
    ``labels/<id>.tif`` + ``index.csv``, as in the sciconv project's shared data, or the
    competition's own ``stage1_train/<id>/images/<id>.png`` + ``<id>/masks/*.png``, one PNG
    per nucleus, merged into instance labels); nothing is downloaded.

Examples
--------
>>> from sciconv.fetch import available
>>> sorted(available())
['dsb2018', 'dsb2018_local', 'galaxy10']
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from sciconv._archive import zip_member_problem, zip_size_problem
from sciconv._atomic import atomic_output, refusal_reason, remove_scratch
from sciconv._unpack import removed_when_read, unpack_once
from sciconv._validation import look_up_option
from sciconv._warnings import caught
from sciconv.errors import ConfigError, DatasetError, DownloadError, OutputExistsError, WriteError
from sciconv.io._open import open_regular

__all__ = ["ENV_VAR", "GALAXY10_CLASSES", "REGISTRY", "available", "cache_dir", "fetch", "load"]

#: Environment variable that overrides the cache folder.
ENV_VAR = "SCICONV_DATA_DIR"

#: Largest total size a downloaded archive may unpack to, in bytes (DSB2018 stage 1: ~0.4 GB).
MAX_EXTRACT_BYTES = 8 * 2**30
#: Largest compression ratio of an archive member, or of the whole archive, above 1 MiB
#: (PNG and TIFF images barely compress further; a decompression bomb reaches 1000:1).
MAX_EXTRACT_RATIO = 100

#: Galaxy10 DECaLS class names, in the order of the file's ``ans`` labels (astroNN's documentation).
GALAXY10_CLASSES = [
    "disturbed",
    "merging",
    "round_smooth",
    "in_between_round_smooth",
    "cigar_shaped_smooth",
    "barred_spiral",
    "unbarred_tight_spiral",
    "unbarred_loose_spiral",
    "edge_on_without_bulge",
    "edge_on_with_bulge",
]

#: Largest Galaxy10 HDF5 ``images`` dataset accepted, in bytes (the real one: 3.5 GB).
MAX_GALAXY10_BYTES = 8 * 2**30

#: Data sets that :func:`fetch` can download: URL, file name in the cache, checksum (``None``:
#: none is published; the file must pass the data set's structural check and its SHA-256 is
#: recorded then, and checked on every later use), what it is, its licence and how to cite it.
REGISTRY: dict[str, dict[str, Any]] = {
    "galaxy10": {
        "url": "https://zenodo.org/records/10845026/files/Galaxy10_DECals.h5",
        "fname": "Galaxy10_DECals.h5",
        "known_hash": "md5:c6b7b4db82b3a5d63d6a7e3e5249b51c",
        "description": "Galaxy10 DECaLS: 17,736 galaxies, 256x256 g/r/z, 10 morphology classes "
        "(2.7 GB)",
        "licence": "see Zenodo record 10845026 (images: DESI Legacy Imaging Surveys; labels: "
        "Galaxy Zoo DECaLS)",
        "citation": "Leung & Bovy (2019), MNRAS 483, 3255 (astroNN); Walmsley et al. (2022), "
        "MNRAS 509, 3966 (Galaxy Zoo DECaLS); Dey et al. (2019), AJ 157, 168 (DESI Legacy "
        "Imaging Surveys)",
    },
    "dsb2018": {
        "url": "https://data.broadinstitute.org/bbbc/BBBC038/stage1_train.zip",
        "fname": "dsb2018_stage1_train.zip",
        # No checksum published by the Broad, and these machines have no internet to compute one:
        # a download must pass _check_dsb2018_zip (every member intact, the stage-1 layout);
        # its SHA-256 is then recorded beside it and checked on every later use.
        "known_hash": None,
        "description": "2018 Data Science Bowl stage 1 training set (BBBC038v1): 670 nucleus "
        "images with per-nucleus masks (82 MB ZIP)",
        "licence": "CC0 1.0",
        "citation": "Caicedo et al. (2019), Nature Methods 16, 1247-1253, "
        "doi:10.1038/s41592-019-0612-7; image set BBBC038v1, Broad Bioimage Benchmark Collection "
        "(Ljosa et al. 2012, Nature Methods 9, 637)",
    },
}

_LOCAL = {
    "dsb2018_local": {
        "description": "a DSB2018-style folder on disk: images/<id>.png + labels/<id>.tif "
        "(+ index.csv with a modality column), or the competition's <id>/images/<id>.png + "
        "<id>/masks/*.png; pass path=",
        "licence": "as the folder's data (DSB2018: CC0 1.0)",
        "citation": REGISTRY["dsb2018"]["citation"],
    }
}

_MODALITIES = ("fluo", "color", "gray_bright")

_DSB2018_IMAGE = re.compile(r"([^/]+)/images/\1\.png")
#: A recorded SHA-256 (``.<file>.sha256``): 64 hex digits.
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def available() -> dict[str, str]:
    """Return ``{name: description}`` of the data sets :func:`fetch` / :func:`load` know.

    Examples
    --------
    >>> from sciconv.fetch import available
    >>> "galaxy10" in available()
    True
    """
    out = {name: entry["description"] for name, entry in REGISTRY.items()}
    out.update({name: entry["description"] for name, entry in _LOCAL.items()})
    return out


def cache_dir() -> Path:
    """Return the download cache: ``$SCICONV_DATA_DIR`` if set, else ``pooch.os_cache("sciconv")``.

    Examples
    --------
    >>> import os
    >>> from sciconv.fetch import cache_dir
    >>> os.environ["SCICONV_DATA_DIR"] = "/tmp/sciconv-cache-example"
    >>> str(cache_dir())
    '/tmp/sciconv-cache-example'
    >>> del os.environ["SCICONV_DATA_DIR"]
    """
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import pooch

    try:
        return Path(pooch.os_cache("sciconv"))
    except (RuntimeError, KeyError) as err:  # no HOME and no user entry (a container's uid)
        raise ConfigError(
            f"no cache folder: the home directory is unknown ({err}); set {ENV_VAR} (or HOME)"
        ) from err


def _validate_name(name: str, *, local: bool = False) -> str:
    choices = list(REGISTRY) + (list(_LOCAL) if local else [])
    if not isinstance(name, str):
        raise ConfigError(f"data set name must be a string, one of {choices}; got {name!r}")
    return look_up_option(name, choices, name="name")


def fetch(
    name: str,
    *,
    cache: str | os.PathLike | None = None,
    progress: bool = True,
    retries: int = 2,
) -> Path:
    """Download a registered data set file into the cache (once) and return its local path.

    Parameters
    ----------
    name : str
        A key of :data:`REGISTRY` (``"galaxy10"``, ``"dsb2018"``).
    cache : str or os.PathLike, optional
        Folder to keep downloads in; default :func:`cache_dir`.
    progress : bool, default True
        Show a progress bar (tqdm) while downloading.
    retries : int, default 2
        Extra attempts after a failed or corrupted download (waiting 1 s, 2 s, ... in between).

    Returns
    -------
    pathlib.Path
        The cached file; a second call returns it without any network access.

    Raises
    ------
    DownloadError
        The server cannot be reached, the transfer is cut short, or the file fails its checksum; the
        message names the URL and the file, and no partial file is left in the cache. A cache
        folder that cannot take the download (full, read-only) is named.
    WriteError
        The download arrived but its SHA-256 could not be recorded (the cache folder filled
        just then); the file is kept, and the next call checks it again.
    ConfigError
        ``name`` is not a registered data set (the message lists them).

    Examples
    --------
    >>> path = fetch("galaxy10")  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    'Galaxy10_DECals.h5'
    """
    name = _validate_name(name)
    if not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"retries must be an integer >= 0; got {retries!r}")
    entry = REGISTRY[name]
    folder = Path(cache).expanduser() if cache is not None else cache_dir()
    target = folder / entry["fname"]
    if target.is_file():
        _verify_cached(name, target, entry)
        return target
    import pooch
    import requests

    created = _first_missing(folder)
    registry = pooch.create(
        path=folder,
        base_url="",
        registry={entry["fname"]: entry["known_hash"]},
        urls={entry["fname"]: entry["url"]},
        retry_if_failed=retries,
    )
    downloader = pooch.HTTPDownloader(progressbar=bool(progress), timeout=60)
    try:
        path = Path(registry.fetch(entry["fname"], downloader=downloader))
    except (ValueError, requests.exceptions.RequestException, OSError) as err:
        _remove_empty(folder, created)
        _raise_download_error(err, entry, target, folder)
    if entry["known_hash"] is None:
        problem = _structure_problem(name, path)
        if problem:
            path.unlink(missing_ok=True)
            _remove_empty(folder, created)
            raise DownloadError(
                f"{problem}; the download of {entry['url']} was not kept: try again later, or "
                f"download it by hand into {folder}",
                path=target,
            )
        _write_record(path, folder)
    return path


def _first_missing(folder: Path) -> Path | None:
    """The outermost folder of ``folder``'s chain that does not exist yet (None: it exists)."""
    missing = None
    for parent in (folder, *folder.parents):
        if parent.exists():
            break
        missing = parent
    return missing


def _remove_empty(folder: Path, created: Path | None) -> None:
    """Remove the folders a failed download created, from ``folder`` up to ``created``, if empty."""
    if created is None:
        return
    for parent in (folder, *folder.parents):
        try:
            parent.rmdir()
        except OSError:
            return
        if parent == created:
            return


def _raise_download_error(err: Exception, entry: dict, target: Path, folder: Path):
    """Raise the DownloadError for a failed transfer or checksum (pooch raises ValueError)."""
    if isinstance(err, ValueError):
        raise DownloadError(
            f"download of {entry['url']} failed its checksum ({entry['known_hash']}): {err}; "
            "nothing was kept, try again or report a changed file",
            path=target,
        ) from err
    import requests

    refused = None  # a firewall's EPERM on connect is no refusal of the disk
    if not isinstance(err, requests.exceptions.RequestException):
        refused = refusal_reason(err)
    if isinstance(err, PermissionError) or getattr(err, "errno", None) == errno.EROFS or refused:
        raise DownloadError(  # pooch's "could not write to data cache folder" is a PermissionError
            f"cannot write into the cache folder {folder} ({refused or err}); nothing was kept: "
            f"free some space, or pass cache= or set {ENV_VAR} to a writable folder",
            path=target,
        ) from err
    raise DownloadError(
        f"could not download {entry['url']}: {type(err).__name__}: {err}; nothing was kept "
        f"(no internet? download it by hand into {folder} or set {ENV_VAR})",
        path=target,
    ) from err


# --------------------------------------------------------------------------- cached-file checks
def _record_path(file: Path) -> Path:
    """Where the SHA-256 of a download without a published checksum is recorded."""
    return file.with_name(f".{file.name}.sha256")


def _sha256(file: Path) -> str:
    import pooch

    return pooch.file_hash(str(file), alg="sha256")


def _recorded_sha256(file: Path) -> str | None:
    """The SHA-256 recorded for ``file``; None when there is no record, or an empty or torn
    one (a disk that filled while it was written by an older sciconv: QA), which is no record:
    the file is checked by its structure again instead of being called damaged."""
    try:
        text = _record_path(file).read_text(encoding="ascii", errors="replace").strip().lower()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    return text if _SHA256_HEX.fullmatch(text) else None


def _write_record(file: Path, folder: Path) -> None:
    """Record the SHA-256 of ``file`` (atomically: never an empty or torn record).

    Raises
    ------
    WriteError
        The cache folder refused it (full, over quota, read-only); the download is kept and is
        checked by its structure again on the next call.
    """
    record = _record_path(file)
    digest = _sha256(file)
    try:
        with atomic_output(record, overwrite=True) as tmp:
            tmp.write_text(digest + "\n", encoding="ascii")
    except WriteError as err:
        cause = err.__cause__
        reason = refusal_reason(cause) if isinstance(cause, OSError) else None
        raise WriteError(
            f"cannot record the SHA-256 of {file.name} in the cache folder {folder} "
            f"({reason or err.message}); the download was kept and is checked again on the "
            f"next call: free some space, or pass cache= or set {ENV_VAR} to a writable folder",
            path=record,
        ) from err


def _stale(target: Path, name: str, what: str) -> DownloadError:
    return DownloadError(
        f"the cached file {what}: it was changed or damaged after download. Delete it "
        f"({target}) and call sciconv.fetch.fetch({name!r}) again to download a fresh copy",
        path=target,
    )


def _stamp_path(file: Path) -> Path:
    """Where the size and modification time of a cached file's last successful check are kept."""
    return file.with_name(f".{file.name}.checked")


def _stat_key(file: Path) -> str:
    st = file.stat()
    return f"{st.st_size} {st.st_mtime_ns}\n"


def _verify_cached(name: str, target: Path, entry: dict[str, Any]) -> None:
    """Check a cached download again: its published checksum, or the SHA-256 recorded for it.

    A full hash is computed only when the file's size or modification time differ from those of
    its last successful check (a 3.5 GB file is not re-read on every use); anyone able to forge
    those could as well rewrite the recorded checksum.
    """
    stamp = _stamp_path(target)
    try:
        if stamp.is_file() and stamp.read_text(encoding="utf-8") == _stat_key(target):
            return
    except (OSError, UnicodeDecodeError):
        pass
    _verify_cached_contents(name, target, entry)
    try:
        stamp.write_text(_stat_key(target), encoding="utf-8")
    except OSError:  # a read-only cache still works, it is only hashed again next time
        pass


def _verify_cached_contents(name: str, target: Path, entry: dict[str, Any]) -> None:
    known = entry["known_hash"]
    try:
        if known is not None:
            import pooch

            alg, _, digest = str(known).rpartition(":")
            if pooch.file_hash(str(target), alg=alg or "sha256") != digest.lower():
                raise _stale(target, name, f"no longer matches its checksum ({known})")
            return
        record = _record_path(target)
        recorded = _recorded_sha256(target)
        if recorded is not None:
            if _sha256(target) != recorded:
                raise _stale(target, name, f"no longer matches the SHA-256 recorded in {record}")
            return
        # placed by hand (or downloaded by an older sciconv, or its record torn by a full
        # disk): check its structure, then record
        problem = _structure_problem(name, target)
        if problem:
            raise _stale(target, name, f"is not the {name} data set ({problem})")
        with contextlib.suppress(WriteError, OutputExistsError):  # read-only or full: next time
            _write_record(target, target.parent)
    except OSError as err:
        if isinstance(err, DownloadError):
            raise
        raise DownloadError(
            f"cannot check the cached file ({err.strerror or err})", path=target
        ) from err


def _structure_problem(name: str, file: Path) -> str | None:
    """What makes ``file`` not a download of data set ``name`` (checks without a checksum)."""
    check = _STRUCTURE_CHECKS.get(name)
    return None if check is None else check(file)


def _check_dsb2018_zip(file: Path) -> str | None:
    cannot = "cannot unpack it as the DSB2018 archive"
    if not zipfile.is_zipfile(file):
        return f"{cannot}: not a zip archive (an HTML error page? a truncated transfer?)"
    try:
        with zipfile.ZipFile(file) as zf:
            problem = zip_size_problem(zf, max_total=MAX_EXTRACT_BYTES, max_ratio=MAX_EXTRACT_RATIO)
            if problem:
                return (
                    f"refusing to unpack it: {problem} (limits: sciconv.fetch.MAX_EXTRACT_BYTES, "
                    "MAX_EXTRACT_RATIO)"
                )
            problem = zip_member_problem(zf)
            if problem:
                return f"{cannot}: {problem}"
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        return f"{cannot}: unreadable zip ({err})"
    if not any(_DSB2018_IMAGE.fullmatch(n.removeprefix("stage1_train/")) for n in names):
        return f"{cannot}: it holds no <id>/images/<id>.png member"
    return None


_STRUCTURE_CHECKS = {"dsb2018": _check_dsb2018_zip}


# ----------------------------------------------------------------------------------------- load
def load(
    name: str,
    *,
    out: str | os.PathLike | None = None,
    path: str | os.PathLike | None = None,
    format: str = "png",
    modality: str | None = None,
    overwrite: bool = False,
    cache: str | os.PathLike | None = None,
    progress: bool = True,
):
    """Load a public data set in sciconv's forms (downloading it first if needed).

    Parameters
    ----------
    name : str
        ``"galaxy10"``, ``"dsb2018"`` (downloaded) or ``"dsb2018_local"`` (a folder given by
        ``path``).
    out : str or os.PathLike, optional
        Write the data set out here instead of returning arrays: Galaxy10 as one sub-folder per
        class (``00_disturbed/``, ``01_merging/``, ... so the folder order is the Galaxy10 label
        order), DSB2018 as ``images/<id>.<ext>`` + ``masks/<id>.tif`` (uint16 instance labels).
    path : str or os.PathLike, optional
        The local folder for ``"dsb2018_local"`` (either layout: see the module notes).
    format : {"png", "fits", "tif"}, default "png"
        File format of the written images (Galaxy10: PNG RGB or FITS cube (H, W, 3); DSB2018: PNG
        or TIFF).
    modality : {"fluo", "color", "gray_bright"}, optional
        DSB2018 only: keep only this kind of image (from ``index.csv`` when present, otherwise
        guessed: grey with a dark background = fluo, grey with a bright background = gray_bright,
        colour = color).
    overwrite : bool, default False
        Replace existing output files.
    cache, progress
        Passed to :func:`fetch`.

    Returns
    -------
    tuple
        With ``out=None``: Galaxy10
        ``(images (N, 256, 256, 3) uint8, labels (N,) int64, class_names)``; DSB2018
        ``(images list of (H, W) or (H, W, 3) uint8, labels list of (H, W) int32, ids)``.
        With ``out``: Galaxy10 ``pathlib.Path`` of the class-per-folder root; DSB2018
        ``(images_dir, masks_dir)``.

    Raises
    ------
    DownloadError
        See :func:`fetch`; also a downloaded archive that cannot be read.
    DatasetError
        A local folder that is missing or not laid out as expected.

    Examples
    --------
    >>> images, labels, class_names = load("galaxy10")  # doctest: +SKIP
    >>> root = load("galaxy10", out="galaxy10", format="fits")  # doctest: +SKIP
    >>> images_dir, masks_dir = load("dsb2018", out="dsb", modality="fluo")  # doctest: +SKIP
    """
    name = _validate_name(name, local=True)
    format = look_up_option(format, ("png", "fits", "tif"), name="format")
    if modality is not None:
        modality = look_up_option(modality, _MODALITIES, name="modality")
    if name == "galaxy10":
        file = fetch(name, cache=cache, progress=progress)
        return _load_galaxy10(file, out=out, format=format, overwrite=overwrite)
    if name == "dsb2018":
        if format == "fits":
            raise ConfigError(
                "format='fits' is for Galaxy10; DSB2018 images are written as 'png' or 'tif'"
            )
        file = fetch(name, cache=cache, progress=progress)
        pairs = _dsb2018_zip_pairs(file)
    else:
        if path is None:
            raise ConfigError(
                "load('dsb2018_local') needs path= (a folder with images/ and labels/)"
            )
        if format == "fits":
            raise ConfigError(
                "format='fits' is for Galaxy10; DSB2018 images are written as 'png' or 'tif'"
            )
        pairs = _dsb2018_local_pairs(Path(path))
    return _emit_pairs(pairs, out=out, format=format, modality=modality, overwrite=overwrite)


def _load_galaxy10(file: Path, *, out, format: str, overwrite: bool):
    import h5py

    try:
        with h5py.File(file, "r") as h5:
            problem = _galaxy10_problem(h5, h5py)
            if problem:
                raise DownloadError(
                    f"not a Galaxy10 HDF5 file: {problem}; delete it and fetch it again",
                    path=file,
                )
            images = h5["images"][()]
            labels = h5["ans"][()].astype(np.int64)
    except DownloadError:
        raise
    except (OSError, KeyError, ValueError, TypeError, MemoryError) as err:
        raise DownloadError(
            f"cannot read Galaxy10 HDF5 (expected datasets 'images' and 'ans'): "
            f"{type(err).__name__}: {err}; delete the file and fetch it again",
            path=file,
        ) from err
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= len(GALAXY10_CLASSES):
        raise DownloadError(f"Galaxy10 labels outside 0..{len(GALAXY10_CLASSES) - 1}", path=file)
    class_names = list(GALAXY10_CLASSES)
    if out is None:
        return images, labels, class_names
    root = Path(out)
    folders = [f"{i:02d}_{c}" for i, c in enumerate(class_names)]
    for i, (image, label) in enumerate(zip(images, labels)):
        target = (
            root / folders[label] / f"galaxy10_{i:05d}.{'fits' if format == 'fits' else format}"
        )
        if target.exists() and not overwrite:
            continue
        _write_image(target, image, format=format)
    return root


def _galaxy10_problem(h5, h5py) -> str | None:
    """Check the Galaxy10 datasets' kinds, shapes and dtypes from the HDF5 metadata alone."""
    images, labels = h5.get("images"), h5.get("ans")
    for key, obj in (("images", images), ("ans", labels)):
        if not isinstance(obj, h5py.Dataset):
            found = "missing" if obj is None else f"a {type(obj).__name__}, not a dataset"
            return f"{key!r} is {found} (the file holds {sorted(h5.keys())[:10]})"
    if images.ndim != 4 or images.shape[-1] != 3 or min(images.shape, default=0) < 1:
        return f"'images' has shape {images.shape}; expected (N, H, W, 3)"
    if images.dtype != np.uint8:
        return f"'images' has dtype {images.dtype}; expected uint8"
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        return f"'ans' has shape {labels.shape}; expected ({images.shape[0]},), one per image"
    if labels.dtype.kind not in "iu":
        return f"'ans' has dtype {labels.dtype}; expected integers"
    size = int(np.prod(images.shape, dtype=np.float64))
    if size > MAX_GALAXY10_BYTES:
        return (
            f"'images' declares {size:,} bytes, over the {MAX_GALAXY10_BYTES:,}-byte limit "
            "(sciconv.fetch.MAX_GALAXY10_BYTES)"
        )
    return None


def _write_image(target: Path, array: np.ndarray, *, format: str) -> None:
    """Write one image file atomically (PNG via PIL, TIFF via tifffile, FITS via sciconv.io:
    channels as planes, so that ``sciconv.io.read`` gives the ``(H, W, C)`` image back)."""
    if format == "fits":
        from sciconv.io import write

        write(target, np.asarray(array), overwrite=True)
        return
    with atomic_output(target, overwrite=True) as tmp:
        if format == "tif":
            import tifffile

            tifffile.imwrite(tmp, np.asarray(array), compression="zlib")
        else:
            from PIL import Image

            Image.fromarray(np.asarray(array)).save(tmp, format="PNG")


def _archive_stamp(file: Path) -> str:
    """What names this copy of an archive: its recorded SHA-256 (the same for a copy made
    without its times: review), else its size and time."""
    try:
        recorded = _recorded_sha256(file)
    except OSError:
        recorded = None
    return _stat_key(file) if recorded is None else recorded + "\n"


def _dsb2018_zip_pairs(file: Path):
    """Unpack the stage-1 ZIP once (next to it) and yield ``(id, image, labels, modality)``."""
    folder, temporary = unpack_once(
        file,
        stamp=_archive_stamp(file),  # a fetched-again archive is unpacked again
        what="the DSB2018 archive",
        max_total=MAX_EXTRACT_BYTES,
        max_ratio=MAX_EXTRACT_RATIO,
        writable_hint=f"copy the archive into a writable {ENV_VAR}",
    )
    root = folder / "stage1_train" if (folder / "stage1_train").is_dir() else folder
    pairs = _kaggle_pairs(root, archive=file, relative_to=folder)
    if pairs is None:
        if temporary:
            remove_scratch(folder)
        raise DownloadError("the DSB2018 archive holds no <id>/images/<id>.png folders", path=file)
    return removed_when_read(pairs, folder) if temporary else pairs


def _kaggle_pairs(root: Path, *, archive: Path | None = None, relative_to: Path | None = None):
    """``(id, image, labels, None)`` of DSB2018's own layout under ``root`` (``<id>/images/
    <id>.png`` and ``<id>/masks/*.png``, one binary PNG per nucleus), each image's masks
    numbered 1..n in file-name order; None when ``root`` holds no such folder. Errors name the
    ``archive`` it was unpacked from (a DownloadError: fetch it again), else the file."""
    ids = sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "images").is_dir())
    if not ids:
        return None
    from PIL import Image

    def fail(member: Path, what: str):
        if archive is None:
            return DatasetError(what, path=member)
        name = member.relative_to(relative_to).as_posix()
        return DownloadError(
            f"archive member {name!r} {what}; delete the archive and fetch it again", path=archive
        )

    def read(member: Path) -> np.ndarray:
        """One PNG, with Pillow's pixel limits; errors name the file (or archive and member)."""
        try:
            # a FIFO (blocks for ever) or a device link: refused, never read (QA 53)
            with open_regular(member) as fh, caught("error", Image.DecompressionBombWarning):
                with Image.open(fh) as im:
                    if im.format != "PNG":
                        raise ValueError(f"a {im.format} file, not a PNG")
                    array = np.asarray(im)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError,
                Image.DecompressionBombWarning) as err:  # fmt: skip
            raise fail(member, f"is not a readable image ({type(err).__name__}: {err})") from None
        if array.ndim not in (2, 3) or array.size == 0:
            raise fail(member, f"has shape {array.shape}; expected (H, W) or (H, W, C)")
        return array

    def generate():
        for image_id in ids:
            img = read(root / image_id / "images" / f"{image_id}.png")
            masks = sorted((root / image_id / "masks").glob("*.png"))
            lab = np.zeros(img.shape[:2], np.int32)
            for k, m in enumerate(masks, start=1):
                mk = read(m) > 0
                if mk.ndim == 3:
                    mk = mk.any(axis=-1)
                if mk.shape != lab.shape:
                    raise fail(
                        m,
                        f"is a {mk.shape[0]} x {mk.shape[1]} mask for a {lab.shape[0]} x "
                        f"{lab.shape[1]} image",
                    )
                lab[mk & (lab == 0)] = k  # overlaps: the first mask in file-name order wins
            yield image_id, _to_gray_or_rgb(img), lab, None

    return generate()


def _dsb2018_local_pairs(folder: Path):
    if not (folder / "images").is_dir() or not (folder / "labels").is_dir():
        root = folder / "stage1_train" if (folder / "stage1_train").is_dir() else folder
        kaggle = _kaggle_pairs(root) if root.is_dir() else None  # the competition's layout
        if kaggle is not None:
            return kaggle
        raise DatasetError(
            "expected a folder with images/<id>.png and labels/<id>.tif, or the competition's "
            "stage1_train/<id>/images/<id>.png with <id>/masks/*.png",
            path=folder,
        )
    modality_of = {}
    if (folder / "index.csv").is_file():
        with open(folder / "index.csv", newline="", encoding="utf-8-sig") as fh:
            modality_of = {r["id"]: r.get("modality") for r in csv.DictReader(fh)}
    images = sorted((folder / "images").glob("*.png"))
    if not images:
        raise DatasetError("no images/<id>.png files", path=folder)
    import tifffile
    from PIL import Image

    from sciconv.io import pair_by_stem

    labels = sorted((folder / "labels").glob("*.tif"))
    for odd in [m for m in images + labels if m.exists() and not m.is_file()][:1]:  # FIFO, device
        raise DatasetError("is not a regular file (a FIFO, socket or device?)", path=odd)
    pairs = pair_by_stem(images, labels, unmatched="raise")

    def generate():
        for image_path, label_path in pairs:
            image_id = image_path.stem
            with open_regular(image_path) as fh, Image.open(fh) as im:
                img = _to_gray_or_rgb(np.asarray(im))
            with open_regular(label_path) as fh:
                lab = tifffile.imread(fh).astype(np.int32)
            if lab.shape != img.shape[:2]:
                raise DatasetError(
                    f"labels {lab.shape} and image {img.shape[:2]} differ in size", path=label_path
                )
            yield image_id, img, lab, modality_of.get(image_id)

    return generate()


def _to_gray_or_rgb(img: np.ndarray) -> np.ndarray:
    """RGBA/RGB with R = G = B -> (H, W) grey; colour -> (H, W, 3); grey stays grey."""
    if img.ndim == 3:
        img = img[..., :3]
        if np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2]):
            img = img[..., 0]
    return np.ascontiguousarray(img)


def _guess_modality(img: np.ndarray) -> str:
    """Guess the DSB2018 modality of an image: ``"color"``, ``"gray_bright"`` or ``"fluo"``."""
    if img.ndim == 3:
        return "color"
    return "gray_bright" if float(np.median(img)) > 100 else "fluo"


def _emit_pairs(pairs, *, out, format: str, modality: str | None, overwrite: bool):
    images, labels, ids = [], [], []
    if out is not None:
        images_dir, masks_dir = Path(out) / "images", Path(out) / "masks"
    for image_id, img, lab, mod in pairs:
        if modality is not None and (mod or _guess_modality(img)) != modality:
            continue
        if out is None:
            images.append(img)
            labels.append(lab)
            ids.append(image_id)
            continue
        ext = "tif" if format == "tif" else "png"
        image_path = images_dir / f"{image_id}.{ext}"
        if overwrite or not image_path.exists():
            _write_image(image_path, img, format=ext)
        mask_path = masks_dir / f"{image_id}.tif"
        if overwrite or not mask_path.exists():
            _write_image(mask_path, lab.astype(np.uint16), format="tif")
        ids.append(image_id)
    if not ids:
        raise DatasetError(f"no image matches modality={modality!r}")
    if out is None:
        return images, labels, ids
    return images_dir, masks_dir
