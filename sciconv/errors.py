"""Exceptions and warnings raised by sciconv.

Every sciconv error is a :class:`SciconvError`; catch that to handle all of them. Messages name the
file (or argument) and the problem, so a pipeline log line is enough to act on.

Examples
--------
>>> from sciconv.errors import InvalidImageError, SciconvError
>>> err = InvalidImageError("no image data in any HDU", path="empty.fits")
>>> str(err)
'empty.fits: no image data in any HDU'
>>> isinstance(err, SciconvError)
True
"""

from __future__ import annotations

import os
import unicodedata

__all__ = [
    "ConfigError",
    "DatasetError",
    "DownloadError",
    "InferenceError",
    "InvalidImageError",
    "MissingDependencyError",
    "ModelError",
    "OutputExistsError",
    "SampHubError",
    "SciconvError",
    "SciconvWarning",
    "UnsafeModelError",
    "WriteError",
    "name_text",
]


def name_text(name: str | os.PathLike, *, controls: bool = False) -> str:
    """``name`` (a file name or path) as text that any UTF-8 writer takes: the bytes of a name
    that is not UTF-8 are shown escaped (``caf\\xe9``), the rest kept as it is.

    Python hands such a name over (a latin-1 ``café`` from an old zip, an NFS export) as a
    str holding lone surrogates (``'caf\\udce9'``), which a UTF-8 file, terminal or log
    refuses with UnicodeEncodeError. The spelling is the one FITS HISTORY uses; a valid UTF-8
    name (``Größe``, ``観測``) is returned unchanged.

    Parameters
    ----------
    name : str or os.PathLike
        The name as Python gives it (``os.listdir``, ``os.fsdecode``).
    controls : bool, optional
        Also show control characters escaped (a newline as ``\\n``), for a line of a log.
        Default False.

    Returns
    -------
    str

    Examples
    --------
    >>> import os
    >>> from sciconv.errors import name_text
    >>> name_text(os.fsdecode(b"caf\\xe9.fits"))
    'caf\\\\xe9.fits'
    >>> name_text("Größe.fits")
    'Größe.fits'
    >>> name_text("new\\nline.fits", controls=True)
    'new\\\\nline.fits'
    """
    text = os.fspath(name)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text.isascii():
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a lone surrogate that is no byte (not U+DC80-U+DCFF)
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if controls and not text.isprintable():  # line breaks and other C0/C1 controls
        text = "".join(
            repr(c)[1:-1] if unicodedata.category(c) in _LINE_BREAKING else c for c in text
        )
    return text


#: The Unicode categories ``name_text(controls=True)`` escapes: controls, line and paragraph
#: separators (not the format characters that join emoji)
_LINE_BREAKING = ("Cc", "Zl", "Zp")


class SciconvError(Exception):
    """Base class of every error sciconv raises.

    Parameters
    ----------
    message : str
        What is wrong, in words a scientist can act on.
    path : str or os.PathLike, optional
        The file concerned; prefixed to the message so the log names it. Kept as given in
        ``.path``; in the text, a name that is not UTF-8 is shown escaped (:func:`name_text`),
        so that the error prints and logs anywhere.

    Examples
    --------
    >>> from sciconv.errors import SciconvError
    >>> str(SciconvError("bad value", path="a.fits"))
    'a.fits: bad value'
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.message = message
        text = f"{self.path}: {message}" if self.path is not None else message
        super().__init__(name_text(text) if isinstance(text, str) else text)


class InvalidImageError(SciconvError, ValueError):
    """A file or array cannot be read as an image (truncated, bad format, no pixels, bad shape)."""


class DatasetError(SciconvError, ValueError):
    """A dataset cannot be built: empty folder, missing files, bad labels, mismatched pairs."""


class ModelError(SciconvError, ValueError):
    """A model cannot be built, loaded or used with the given input."""


class UnsafeModelError(ModelError):
    """A model file holds code (a Lambda layer) and was not explicitly trusted."""


class InferenceError(SciconvError, ValueError):
    """Prediction cannot run on the given image with the given settings."""


class ConfigError(SciconvError, ValueError):
    """A configuration key or value is not valid; the message lists the allowed ones."""


class OutputExistsError(SciconvError, FileExistsError):
    """An output file exists and ``overwrite=True`` was not given."""


class WriteError(SciconvError, OSError):
    """An output file cannot be written (read-only folder, full disk, quota); nothing is left.

    Examples
    --------
    >>> from sciconv.errors import WriteError
    >>> str(WriteError("cannot write (No space left on device)", path="out.tif"))
    'out.tif: cannot write (No space left on device)'
    """


class DownloadError(SciconvError, OSError):
    """A public data set could not be fetched or failed its checksum."""


class MissingDependencyError(SciconvError, ImportError):
    """An optional dependency is not installed; the message names the ``pip install`` line."""


class SampHubError(SciconvError, ConnectionError):
    """No SAMP hub is running (start TOPCAT or Aladin, which run one), or it did not answer."""


class SciconvWarning(UserWarning):
    """A recoverable problem: sciconv carried on, and says what it did instead."""
