"""Small results kept on disk across processes (the first process to write one wins).

What a process measures once and every later process may read instead of measuring again: the
``precision="auto"`` timing (:mod:`sciconv.inference._precision`) and a model's receptive field
(:func:`sciconv.models.receptive_field`), under ``<sciconv.fetch.cache_dir()>/<kind>/``. A
cache that cannot be written keeps the result for the process only; an unreadable or malformed
file reads as nothing kept.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def kept_file(kind: str, key: str, suffix: str = ".txt") -> Path:
    """The file that keeps the result named ``key`` (any text: it is hashed) of ``kind``.

    Examples
    --------
    >>> kept_file("precision", "some key").parent.name
    'precision'
    >>> len(kept_file("precision", "some key").stem)
    32
    """
    from sciconv.fetch import cache_dir

    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return cache_dir() / kind / f"{digest}{suffix}"


def read_kept(path: Path) -> str | None:
    """The text kept at ``path``, stripped, or None (nothing kept, or unreadable).

    Examples
    --------
    >>> from pathlib import Path
    >>> read_kept(Path("/nonexistent/kept.txt")) is None
    True
    """
    try:
        return Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def keep(path: Path, text: str) -> str | None:
    """Write ``text`` to ``path`` unless another process did first.

    Returns
    -------
    str or None
        What stands on disk after the call: ``text``, or the text the other process wrote
        first (None where that one cannot be read); ``text`` where the cache cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "kind" / "kept.txt"
    >>> keep(path, "first"), keep(path, "second"), read_kept(path)
    ('first', 'first', 'first')
    """
    from sciconv._atomic import atomic_output
    from sciconv.errors import OutputExistsError, SciconvError

    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, overwrite=False) as tmp:
            Path(tmp).write_text(text + "\n")
    except OutputExistsError:
        return read_kept(path)
    except (OSError, SciconvError):  # a read-only or full cache: this process's result only
        return text
    return text
