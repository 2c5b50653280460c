"""Private: write outputs atomically and never overwrite without being asked.

Every writer in sciconv (images, catalogs, models, reports) goes through :func:`atomic_output`, so a
process killed mid-write leaves the old file or no file, never a partial one.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with atomic_output(d / "a.txt") as tmp:
...     _ = tmp.write_text("hello")
>>> (d / "a.txt").read_text()
'hello'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sciconv.errors import OutputExistsError


def check_writable(path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Return ``path`` as a Path; raise :class:`~sciconv.errors.OutputExistsError` if it exists (no
    ``overwrite``).

    Examples
    --------
    >>> check_writable("does/not/exist.fits", overwrite=False).name
    'exist.fits'
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError("output exists; pass overwrite=True to replace it", path=path)
    if path.is_dir():
        raise OutputExistsError("output path is a directory", path=path)
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    The temporary file keeps the target's suffixes (``.fits``, ``.tif``, ...) so format detection by
    extension works on it. On any exception the temporary file is removed and ``path`` is untouched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "cat.csv"
    >>> with atomic_output(target) as tmp:
    ...     _ = tmp.write_text("a,b\\n")
    >>> target.exists()
    True
    """
    path = check_writable(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) or ".tmp"
    # a leading "." keeps the temporary file hidden (io.list_images skips it) if we are killed
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=".part" + suffix, dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # writers (astropy, tifffile) create the file themselves
    try:
        yield tmp
        if not tmp.exists():
            raise OSError(f"{path}: writer produced no file")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        if not overwrite and path.exists():
            raise OutputExistsError("output appeared while writing; not replaced", path=path)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
