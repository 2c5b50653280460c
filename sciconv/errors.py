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
]


class SciconvError(Exception):
    """Base class of every error sciconv raises.

    Parameters
    ----------
    message : str
        What is wrong, in words a scientist can act on.
    path : str or os.PathLike, optional
        The file concerned; prefixed to the message so the log names it.

    Examples
    --------
    >>> from sciconv.errors import SciconvError
    >>> str(SciconvError("bad value", path="a.fits"))
    'a.fits: bad value'
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


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
