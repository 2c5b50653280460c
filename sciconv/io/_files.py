"""Image files: the user's path arguments, kinds (extension, magic bytes), stems, folder
listing and pairing by stem.

One rule names and pairs files everywhere in sciconv: a path argument becomes a
:class:`~pathlib.Path` through :func:`user_path` (``~`` expanded, bytes and URLs refused), the
stem of ``"a.fits.gz"`` is ``"a"`` (:func:`image_stem`), the image files of a folder are those
:func:`list_images` lists, and images pair with masks by stem (:func:`pair_by_stem`), names
compared in Unicode NFC (:func:`same_name_key`).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from sciconv._validation import look_up_option
from sciconv.errors import ConfigError, DatasetError, InvalidImageError, SciconvError, WriteError
from sciconv.io._common import warn_caller

#: File name endings read as FITS (compressed variants included).
FITS_EXTENSIONS = (
    ".fits",
    ".fit",
    ".fts",
    ".fz",
    ".fits.gz",
    ".fit.gz",
    ".fts.gz",
    ".fits.fz",
    ".fits.bz2",
    ".fits.Z",
)
#: File name endings read as TIFF (through tifffile); ``.ome.tif`` names OME-TIFF. Besides
#: ``.tif``: BigTIFF (``.btf``, ``.tf8``) and the TIFF-based formats of microscopes and slide
#: scanners whose main image and pixel size sciconv reads (Aperio ``.svs``, Hamamatsu ``.ndpi``,
#: Leica ``.scn``, Zeiss ``.lsm``, MetaMorph ``.stk``, PerkinElmer ``.qptiff``); not Ventana
#: ``.bif``, whose tiles tifffile does not stitch.
TIFF_EXTENSIONS = (
    ".ome.tif", ".ome.tiff", ".tif", ".tiff", ".btf", ".tf8",
    ".svs", ".ndpi", ".scn", ".lsm", ".stk", ".qptiff",
)  # fmt: skip
#: Folder name endings read as OME-Zarr (NGFF) images; folders, so not in IMAGE_EXTENSIONS.
ZARR_EXTENSIONS = (".ome.zarr", ".zarr")
#: File name endings read as PNG.
PNG_EXTENSIONS = (".png",)
#: File name endings read as JPEG.
JPEG_EXTENSIONS = (".jpg", ".jpeg")
#: Every file name ending :func:`sciconv.io.read` and :func:`sciconv.io.list_images` know.
IMAGE_EXTENSIONS = FITS_EXTENSIONS + TIFF_EXTENSIONS + PNG_EXTENSIONS + JPEG_EXTENSIONS

_MAGIC = (
    (b"SIMPLE  =", "fits"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\x1f\x9d", "lzw"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),
    (b"MM\x00+", "tiff"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
)

_UNMATCHED = ("raise", "warn", "skip")
_MAX_LISTED = 10


#: A URL, not a file: ``scheme://...``, or pathlib's folding of one (``https:/host/a.fits``)
_URL = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9+.\-]+://"  # scheme://
    r"|(?:https?|s?ftp|file|s3|gs|gcs|az|abfss?|hdfs):/)"  # as pathlib folds them
)
#: The file name limit assumed where the file system does not say (no ``pathconf``: Windows)
_NAME_MAX = 255
_PATH_MAX = 4096


def _refusal(error: type[Exception], message: str, path: str | os.PathLike) -> Exception:
    """``error`` saying ``message`` about ``path``: a SciconvError gets it as its ``.path``,
    another exception class (``ValueError``) takes no ``path=``, so the path leads its message."""
    if issubclass(error, SciconvError):
        return error(message, path=path)
    return error(f"{os.fspath(path)}: {message}")


def user_path(path, *, error: type[Exception] = ConfigError, what: str = "path") -> Path:
    """A user's path argument as a :class:`~pathlib.Path`, ``~`` expanded (as astropy does).

    The one entry of a path into sciconv: ``bytes`` (pathlib refuses them with a bare
    ``TypeError``), other values and URLs (``Path`` folds ``https://host/a.fits`` into a local
    ``https:/host/a.fits``: read as "file not found", written as a folder tree named
    ``https:``) are refused with ``error``.

    Parameters
    ----------
    path : str or os.PathLike
        The path as the user gave it.
    error : type, optional
        The :class:`~sciconv.errors.SciconvError` raised (default
        :class:`~sciconv.errors.ConfigError`; a reader passes InvalidImageError). Another
        exception class (``ValueError``) is raised too, the path leading its message.
    what : str, optional
        The argument's name in the message (``"workdir"``, ``"images"``). Default ``"path"``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    error
        ``path`` is bytes, not a path, or a URL.

    Examples
    --------
    >>> import os
    >>> from pathlib import Path
    >>> from sciconv.io import user_path
    >>> user_path("~/data/a.fits") == Path(os.path.expanduser("~")) / "data" / "a.fits"
    True
    >>> user_path("https://archive.stsci.edu/a.fits")
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: https://archive.stsci.edu/a.fits: URLs are not read or written; ...
    >>> user_path(b"a.fits")
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: path must be a str or os.PathLike; got bytes (b'a.fits'): ...
    """
    text = os.fspath(path) if isinstance(path, os.PathLike) else path
    if isinstance(text, (bytes, bytearray)):
        raise error(
            f"{what} must be a str or os.PathLike; got bytes ({bytes(text)!r}): decode it "
            "with os.fsdecode(path)"
        )
    if not isinstance(text, str):
        raise error(f"{what} must be a str or os.PathLike; got {type(path).__name__}")
    if _URL.match(text):
        raise _refusal(
            error,
            "URLs are not read or written; download the file first (sciconv.fetch for "
            "registered data sets)",
            text,
        )
    if text.startswith("~"):
        return Path(os.path.expanduser(text))
    return path if isinstance(path, Path) else Path(text)


def names_folded(folder: str | os.PathLike) -> tuple[bool, bool]:
    """Whether the file system of ``folder`` (or its nearest existing parent) takes names that
    differ only in case, and only in Unicode normalization (NFC / NFD), for one name.

    Found by creating a hidden probe file and looking it up under the other spelling: NTFS and
    APFS fold case, APFS normalization too, ext4 neither. Where no probe can be written (a
    read-only folder), macOS and Windows are taken to fold both, other systems neither. Where
    Python's file-system encoding cannot spell both (ASCII under ``PYTHONUTF8=0 LC_ALL=C``,
    latin-1), normalization is False: no name has two spellings there.

    Parameters
    ----------
    folder : str or os.PathLike
        A folder (it need not exist yet).

    Returns
    -------
    (case, normalization) : tuple of bool

    Examples
    --------
    >>> import tempfile
    >>> case, normalization = names_folded(tempfile.mkdtemp())  # ext4: (False, False)
    >>> isinstance(case, bool) and isinstance(normalization, bool)
    True
    """
    import sys
    import tempfile

    folder = Path(folder)
    while not os.path.isdir(folder) and folder != folder.parent:
        folder = folder.parent
    found = []
    for stem in ("sciconv-case-probe", "sciconv-\u00e9-probe"):
        other = stem.upper() if "case" in stem else unicodedata.normalize("NFD", stem)
        if not (_encodable(stem) and _encodable(other)):  # PYTHONUTF8=0 LC_ALL=C: ASCII
            found.append(False)  # no two spellings to fold (QA: UnicodeEncodeError)
            continue
        try:
            fd, name = tempfile.mkstemp(prefix=f".{stem}.", dir=folder)
        except OSError:
            return (sys.platform in ("darwin", "win32"),) * 2
        try:
            os.close(fd)
            probe = Path(name)
            twin = probe.name.replace(stem, other)
            found.append(twin != probe.name and os.path.exists(probe.parent / twin))
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)
    return found[0], found[1]


def _encodable(name: str) -> bool:
    """Whether the file-system encoding (``sys.getfilesystemencoding()``) can spell ``name``."""
    try:
        os.fsencode(name)
    except UnicodeError:
        return False
    return True


def check_name_length(path, *, error: type[Exception] = WriteError, hint: str = "") -> None:
    """Refuse ``path`` when one of its names (or the whole path) is longer than its file system
    allows, naming it; the system's own ``OSError`` (``File name too long``) names nothing
    useful and, from :meth:`pathlib.Path.is_dir` and ``exists`` on Python 3.11, escapes as a
    bare ``OSError``.

    The limit is the nearest existing folder's ``PC_NAME_MAX`` (255 bytes on most file
    systems, 143 on eCryptfs), counted in bytes of the file system encoding (``é`` is 2); on
    Windows 255 UTF-16 units a name (``é`` and ``観`` are 1).

    Parameters
    ----------
    path : str or os.PathLike
        The path to check (it need not exist).
    error : type, optional
        The :class:`~sciconv.errors.SciconvError` raised. Default
        :class:`~sciconv.errors.WriteError`. Another exception class (``ValueError``) is raised
        too, the path leading its message.
    hint : str, optional
        Text after the message (``"; rename the input to a shorter name"``).

    Raises
    ------
    error
        A name or the path is too long.

    Examples
    --------
    >>> check_name_length("out/a.fits")
    >>> check_name_length("x" * 300 + ".fits")
    Traceback (most recent call last):
    ...
    sciconv.errors.WriteError: xxxxxxxxxxxxxxxxxxxx...: file name too long (305 bytes; ...
    """
    import sys

    path = Path(path)
    if sys.platform == "win32":  # NTFS, exFAT, SMB: 255 UTF-16 units a name, whatever the bytes
        unit = "characters"

        def size(text):
            return len(text.encode("utf-16-le", "surrogatepass")) // 2
    else:
        unit, size = "bytes", (lambda text: len(os.fsencode(text)))
    sizes = [size(part) for part in path.parts] or [0]
    total = size(os.fspath(path))
    if max(sizes) <= 14 and total < 256:  # within every file system's limits (POSIX minimums)
        return
    folder = path.parent
    while not os.path.isdir(folder) and folder != folder.parent:
        folder = folder.parent
    name_max, path_max = _NAME_MAX, _PATH_MAX
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX")
        path_max = os.pathconf(folder, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows), or not known
        pass
    shown = Path(*(p if len(p) <= 60 else p[:20] + "..." for p in path.parts))
    if max(sizes) > name_max:
        raise _refusal(
            error,
            f"file name too long ({max(sizes)} {unit}; the file system allows {name_max}){hint}",
            shown,
        )
    if total >= path_max:
        raise _refusal(
            error,
            f"path too long ({total} {unit}; the file system allows {path_max - 1}){hint}",
            shown,
        )


def same_name_key(name: str) -> str:
    """``name`` in Unicode NFC: how names are compared (pairs by stem, catalog entries, the
    CLI's ``--mask``). macOS tools and zips made on a Mac write ``é`` as ``e`` + U+0301 (NFD),
    Linux tools and hand-typed CSVs as U+00E9 (NFC): the same name, other bytes.

    Examples
    --------
    >>> same_name_key("cellule_e\u0301") == same_name_key("cellule_\u00e9")
    True
    """
    return name if name.isascii() else unicodedata.normalize("NFC", name)


def find_same_name(path, *, listings: dict | None = None) -> Path | None:
    """The existing file or folder named ``path`` up to Unicode normalization (NFC and NFD
    spellings of each name are the same name, :func:`same_name_key`), or None.

    ``path`` itself when it exists; else each missing name along it is looked up in its
    folder's listing (one match only: two spellings side by side are not guessed between).

    Parameters
    ----------
    path : str or os.PathLike
        The path as written (in a catalog, a template, a list).
    listings : dict, optional
        A cache of folder listings, shared by the calls of one lookup over many paths.

    Returns
    -------
    pathlib.Path or None
        The path as the file system spells it.

    Examples
    --------
    >>> import tempfile, unicodedata
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / unicodedata.normalize("NFD", "galaxie_é.fits")).write_bytes(b"x")
    >>> found = find_same_name(d / unicodedata.normalize("NFC", "galaxie_é.fits"))
    >>> found.name == unicodedata.normalize("NFD", "galaxie_é.fits"), found.exists()
    (True, True)
    >>> find_same_name(d / "other.fits") is None
    True
    """
    path = Path(path)
    if os.path.lexists(path):
        return path
    if os.fspath(path).isascii():
        return None
    listings = {} if listings is None else listings
    current = Path(path.anchor)
    for part in path.parts[1:] if path.anchor else path.parts:
        candidate = current / part
        if not os.path.lexists(candidate):
            key = os.fspath(current)
            if key not in listings:
                try:
                    names = os.listdir(current)
                except OSError:  # not a folder, not searchable
                    names = []
                by_key: dict[str, list[str]] = {}
                for n in names:
                    by_key.setdefault(same_name_key(n), []).append(n)
                listings[key] = by_key
            found = listings[key].get(same_name_key(part), [])
            if len(found) != 1:
                return None
            candidate = current / found[0]
        current = candidate
    return current


def _other_spelling(path: Path) -> str:
    """For "not found": the name that is there in another Unicode spelling (NFC/NFD)."""
    found = find_same_name(path)
    if found is None:
        return ""
    return (
        f" as written, but {found} is there: the same name in another Unicode normalization "
        "(NFC/NFD, e.g. made on a Mac); give that spelling, or rename the file"
    )


def validate_path(path) -> tuple[Path, str]:
    """Check the file exists, is readable and looks like an image; return it and its format."""
    path = user_path(path, error=InvalidImageError)
    if not os.path.exists(path):  # pathlib's exists() raises for a name too long (3.11)
        if os.path.lexists(path):
            target = os.readlink(path)
            raise InvalidImageError(
                f"broken symbolic link (target {target!r} does not exist)", path=path
            )
        check_name_length(path, error=InvalidImageError)
        raise InvalidImageError("file not found" + _other_spelling(path), path=path)
    try:
        st = path.stat()
    except OSError as exc:
        raise InvalidImageError(f"cannot access file: {exc.strerror or exc}", path=path) from exc
    if stat.S_ISDIR(st.st_mode):
        raise InvalidImageError("is a directory, not an image file", path=path)
    if not stat.S_ISREG(st.st_mode):
        raise InvalidImageError("not a regular file (device, FIFO or socket)", path=path)
    if st.st_size == 0:
        raise InvalidImageError("empty file (0 bytes)", path=path)
    if not os.access(path, os.R_OK):
        raise InvalidImageError("permission denied: the file is not readable", path=path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(1024)
    except PermissionError as exc:
        raise InvalidImageError("permission denied: the file is not readable", path=path) from exc
    except OSError as exc:
        raise InvalidImageError(f"cannot read file: {exc.strerror or exc}", path=path) from exc
    expected = format_from_name(path)
    found = next((fmt for magic, fmt in _MAGIC if head.startswith(magic)), None)
    if found in ("gzip", "bzip2", "lzw"):
        if expected not in (None, "fits"):
            raise InvalidImageError(
                f"{found}-compressed file with a {expected.upper()} name; only FITS may be "
                "compressed this way",
                path=path,
            )
        return path, "fits"
    if found is None:
        raise InvalidImageError(_describe_unknown(head, expected), path=path)
    if expected is not None and found != expected and {found, expected} != {"jpeg", "png"}:
        raise InvalidImageError(
            f"named as {expected.upper()} but the content is {found.upper()}; rename the file",
            path=path,
        )
    return path, found


def format_from_name(path: Path) -> str | None:
    name = path.name.lower()
    for exts, fmt in (
        (FITS_EXTENSIONS, "fits"),
        (TIFF_EXTENSIONS, "tiff"),
        (PNG_EXTENSIONS, "png"),
        (JPEG_EXTENSIONS, "jpeg"),
    ):
        if name.endswith(tuple(e.lower() for e in exts)):
            return fmt
    return None


def _describe_unknown(head: bytes, expected: str | None) -> str:
    what = "not a FITS, TIFF, PNG or JPEG file"
    if expected is not None:
        what = f"not a {expected.upper()} file"
    text = head.lstrip()
    lowered = text[:200].lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<html" in lowered:
        return f"{what}: it holds HTML/XML (a web page saved in place of the image?)"
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        decoded = None
    if decoded is not None and all(c.isprintable() or c in "\r\n\t" for c in decoded):
        return f"{what}: it holds plain text"  # never quote contents (a password, a key)
    for magic, vendor in _VENDOR_MAGIC:
        if head.startswith(magic):
            return (
                f"{what}: a {vendor} file, which sciconv does not read; convert it to OME-TIFF "
                "(Bio-Formats' bfconvert, or Fiji: File > Save As > OME-TIFF)"
            )
    return f"{what}: unrecognized binary content"


#: The first bytes of microscope vendors' formats, named in the refusal (QA: a CZI got
#: "unrecognized binary content").
_VENDOR_MAGIC = (
    (b"ZISRAWFILE", "Zeiss CZI"),
    (b"\xda\xce\xbe\x0a", "Nikon ND2"),
    (b"\x70\x00\x00\x00", "Leica LIF"),
)


# longest first, so that "a.fits.gz" has the stem "a" (not "a.fits")
_SUFFIXES_LONGEST_FIRST = tuple(
    sorted({e.lower() for e in IMAGE_EXTENSIONS + ZARR_EXTENSIONS}, key=lambda e: (-len(e), e))
)


def is_zarr(path) -> bool:
    """True for a path named like an OME-Zarr store (``.ome.zarr``, ``.zarr``) or a zarr group
    folder (``zarr.json`` or ``.zgroup`` inside, e.g. ``cells.ome.zarr/labels/nuclei``): a
    folder that :func:`read` takes as one image.

    Parameters
    ----------
    path : str or os.PathLike
        The path to test (anything else gives False).

    Examples
    --------
    >>> from sciconv.io import is_zarr
    >>> is_zarr("plate.ome.zarr"), is_zarr("cells.tif")
    (True, False)
    """
    try:
        path = user_path(path)
    except ConfigError:  # bytes, a URL, not a path
        return False
    if os.fspath(path).rstrip("/\\").lower().endswith(ZARR_EXTENSIONS):
        return True
    # zarr v3 (group or array), v2 group, v2 array (an NGFF 0.4 level such as ``labels/x/0``);
    # os.path.isdir: False for a name too long (pathlib's is_dir raises on Python 3.11)
    return os.path.isdir(path) and any(
        (path / m).is_file() for m in ("zarr.json", ".zgroup", ".zarray")
    )


def image_stem(path: str | os.PathLike) -> str:
    """File name without its image extension: ``"a.fits.gz"`` -> ``"a"``, ``"b.TIF"`` -> ``"b"``.

    The one rule for naming and pairing files (images and masks, inputs and outputs). Image
    extensions (:data:`IMAGE_EXTENSIONS`) are matched case-insensitively, longest first. A name
    that is only an extension, or has no image extension, falls back to
    :attr:`pathlib.Path.stem`.

    Parameters
    ----------
    path : str or os.PathLike
        A file path (only its name is used; the file need not exist).

    Returns
    -------
    str

    Examples
    --------
    >>> from sciconv.io import image_stem
    >>> image_stem("data/cell_7.fits.gz"), image_stem("B.TIF"), image_stem("notes.txt")
    ('cell_7', 'B', 'notes')
    >>> image_stem("c.ome.tif"), image_stem("plate/d.ome.zarr")
    ('c', 'd')
    """
    name = Path(path).name
    lower = name.lower()
    for suffix in _SUFFIXES_LONGEST_FIRST:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def list_images(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """List the image files of ``folder`` by extension, sorted.

    Hidden files (names starting with ``.``, which includes the temporary files of an interrupted
    :func:`~sciconv.io.write`) and broken links are skipped. Extensions are matched
    case-insensitively: ``.fits .fit .fts .fits.gz .fits.fz .fz .tif .tiff .png .jpg .jpeg``
    (``.ome.tif`` included), and the TIFF-based ``.btf .tf8 .svs .ndpi .scn .lsm .stk .qptiff``
    (:data:`TIFF_EXTENSIONS`). OME-Zarr stores are folders and are not listed.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to list.
    recursive : bool
        Also list sub-folders (hidden folders are skipped).

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    DatasetError
        ``folder`` does not exist or is not a directory.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from sciconv import io
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = io.write(d / "b.png", np.zeros((2, 2), dtype=np.uint8))
    >>> _ = io.write(d / "a.fits", np.zeros((2, 2), dtype=np.float32))
    >>> _ = (d / "notes.txt").write_text("x")
    >>> [p.name for p in io.list_images(d)]
    ['a.fits', 'b.png']
    """
    folder = user_path(folder, what="folder")
    if not os.path.exists(folder):
        check_name_length(folder, error=DatasetError)
        raise DatasetError("folder not found", path=folder)
    if not folder.is_dir():
        raise DatasetError("not a folder", path=folder)
    pattern = "**/*" if recursive else "*"
    out = []
    for p in folder.glob(pattern):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if not p.name.lower().endswith(tuple(e.lower() for e in IMAGE_EXTENSIONS)):
            continue
        if not p.is_file():  # broken links and folders named like images
            continue
        out.append(p)
    return sorted(out)


def pair_by_stem(
    images: str | os.PathLike | Iterable[str | os.PathLike],
    masks: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    unmatched: str = "raise",
    mask_suffix: str = "",
) -> list[tuple[Path, Path]]:
    """Pair image files with mask files by :func:`image_stem`: ``a.fits.gz`` with ``a.tif``.

    Stems are compared in Unicode NFC (:func:`same_name_key`): ``cellule_é_0.tif`` written on
    Linux pairs with the mask of that name a Mac wrote (``e`` + U+0301).

    Parameters
    ----------
    images, masks : folder, file or iterable of paths
        A folder is listed with :func:`list_images`; a single file is a list of one.
    unmatched : {"raise", "warn", "skip"}
        What to do with an image without a mask or a mask without an image: raise a
        :class:`~sciconv.errors.DatasetError` naming the file and the stem it needs (default),
        leave it out with a :class:`~sciconv.errors.SciconvWarning` listing what was left out,
        or leave it out quietly.
    mask_suffix : str, optional
        The end of the masks' stems after the image's: ``"_masks"`` pairs ``a.tif`` with
        ``a_masks.tif`` (Cellpose), also in one folder (``images`` and ``masks`` the same:
        the files whose stem ends with it are the masks, the others the images). Default ``""``.

    Returns
    -------
    list of (pathlib.Path, pathlib.Path)
        ``(image, mask)`` pairs sorted by stem (the same order whatever the listing order).

    Raises
    ------
    DatasetError
        A folder or file is missing, a folder holds no image files, a list is empty, two files
        on one side share a stem (the message names both), or (``unmatched="raise"``) a file has
        no partner (the message names it and the folder searched).
    ConfigError
        ``images``/``masks`` is not a path or an iterable of paths, or ``unmatched`` is unknown.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from sciconv import io
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "images").mkdir(); (root / "masks").mkdir()
    >>> for name in ("a.fits.gz", "b.fits"):
    ...     _ = io.write(root / "images" / name, np.zeros((4, 4), dtype=np.float32))
    >>> for name in ("a.tif", "b.tif", "c.tif"):
    ...     _ = io.write(root / "masks" / name, np.zeros((4, 4), dtype=np.uint8))
    >>> pairs = io.pair_by_stem(root / "images", root / "masks", unmatched="skip")
    >>> [(p.name, m.name) for p, m in pairs]
    [('a.fits.gz', 'a.tif'), ('b.fits', 'b.tif')]
    >>> from sciconv.errors import DatasetError
    >>> try:
    ...     io.pair_by_stem(root / "images", root / "masks")
    ... except DatasetError as exc:
    ...     print(str(exc).replace(str(root), "ROOT"))
    mask ROOT/masks/c.tif has no image: expected a file with stem 'c' in ROOT/images
    """
    unmatched = look_up_option(unmatched, _UNMATCHED, name="unmatched")
    if not isinstance(mask_suffix, str):
        raise ConfigError(f"mask_suffix must be a str (e.g. '_masks'); got {mask_suffix!r}")
    mask_suffix = same_name_key(mask_suffix)  # stems are compared in NFC
    image_files, image_where = _pair_inputs(images, "images")
    mask_files, mask_where = _pair_inputs(masks, "masks")
    if mask_suffix:  # masks beside their images (Cellpose: a.tif, a_masks.tif) or apart
        mask_files = [p for p in mask_files if same_name_key(image_stem(p)).endswith(mask_suffix)]
        image_files = [
            p for p in image_files if not same_name_key(image_stem(p)).endswith(mask_suffix)
        ]
        if not mask_files:
            raise DatasetError(f"no mask file's stem ends with mask_suffix={mask_suffix!r} in "
                               f"{mask_where}")  # fmt: skip
    elif {p.resolve() for p in image_files} == {p.resolve() for p in mask_files}:
        raise DatasetError(
            f"images and masks are the same {len(image_files)} files (in {image_where}): each "
            "image would be its own mask. Masks beside their images (a.tif with a_masks.tif, as "
            "Cellpose saves them) need mask_suffix='_masks'"
        )
    image_by = _unique_stems(image_files, "images")
    mask_by = {
        s[: len(s) - len(mask_suffix)]: p for s, p in _unique_stems(mask_files, "masks").items()
    }
    lonely_images = [(s, p) for s, p in image_by.items() if s not in mask_by]
    lonely_masks = [(s, p) for s, p in mask_by.items() if s not in image_by]
    problems = [
        _unmatched_message("image", "mask", lonely_images, mask_where),
        _unmatched_message("mask", "image", lonely_masks, image_where),
    ]
    problems = [m for m in problems if m]
    hint = _suffix_hint(lonely_masks, image_by) if not mask_suffix else ""
    problems = [m + hint for m in problems[:1]] + problems[1:]
    if problems and unmatched == "raise":
        raise DatasetError(problems[0])
    if problems and unmatched == "warn":
        warn_caller("left out of the pairs: " + "; ".join(problems))
    return [(image_by[s], mask_by[s]) for s in sorted(image_by) if s in mask_by]


def _pair_inputs(value, role: str) -> tuple[list[Path], str]:
    """The files of one side and where a missing partner was looked for (for messages)."""
    if isinstance(value, (str, os.PathLike, bytes)):
        path = user_path(value, what=role)
        if os.path.isdir(path):  # False for a name too long (pathlib's is_dir raises)
            files = list_images(path)
            if not files:
                nested = len(list_images(path, recursive=True))
                hint = (
                    f" ({nested} in its sub-folders: pass the lists "
                    "sciconv.io.list_images(folder, recursive=True) of both sides; pairs match "
                    "by file stem, so the stems must be unique across the sub-folders)"
                    if nested
                    else ""
                )
                raise DatasetError(f"{role} folder holds no image files{hint}", path=path)
            return files, str(path)
        if os.path.isfile(path):
            return [path], str(path.parent)
        check_name_length(path, error=DatasetError)
        raise DatasetError(f"{role}: no such file or folder", path=path)
    try:
        files = [user_path(p, what=f"{role} item") for p in value]
    except TypeError:
        raise ConfigError(
            f"{role} must be a folder or a list of file paths; got {value!r}"
        ) from None
    if not files:
        raise DatasetError(f"{role} is an empty list")
    missing = [str(p) for p in files if not os.path.isfile(p)]
    if missing:
        raise DatasetError(
            f"{role}: {len(missing)} file(s) not found: {missing[:_MAX_LISTED]}"
            + (" ..." if len(missing) > _MAX_LISTED else "")
        )
    parents = {str(p.parent) for p in files}
    where = parents.pop() if len(parents) == 1 else f"the {len(files)} {role} given"
    return files, where


def _unique_stems(files: list[Path], role: str) -> dict[str, Path]:
    """The files by stem in NFC (:func:`same_name_key`): a mask named on a Mac (NFD) pairs
    with its image named on Linux (NFC)."""
    out: dict[str, Path] = {}
    for f in files:
        s = same_name_key(image_stem(f))
        if s in out:
            spelt = (
                " (the same name in two Unicode normalizations, NFC and NFD)"
                if image_stem(out[s]) != image_stem(f)
                else ""
            )
            raise DatasetError(
                f"{role}: two files share the stem {s!r}{spelt} ({out[s]} and {f}); pairs are "
                "matched by stem, so each stem must be unique"
            )
        out[s] = f
    return out


def _suffix_hint(lonely_masks: list, image_by: dict) -> str:
    """``mask_suffix`` to pass when the lonely masks' stems are the images' plus one ending."""
    for stem, _ in lonely_masks[:_MAX_LISTED]:
        for base in image_by:
            if stem.startswith(base) and len(stem) > len(base) and not stem[len(base)].isalnum():
                end = stem[len(base) :]
                return f" (masks named like {stem!r} for {base!r}: pass mask_suffix={end!r})"
    return ""


def _unmatched_message(what: str, partner: str, lonely: list, where: str) -> str:
    if not lonely:
        return ""
    stem, path = lonely[0]
    message = f"{what} {path} has no {partner}: expected a file with stem {stem!r} in {where}"
    if len(lonely) > 1:
        more = ", ".join(str(p.name) for _, p in lonely[1:_MAX_LISTED])
        etc = ", ..." if len(lonely) > _MAX_LISTED else ""
        message += f" (and {len(lonely) - 1} more {what}(s) without a {partner}: {more}{etc})"
    return message
