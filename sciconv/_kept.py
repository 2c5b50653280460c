"""Small results kept on disk across processes (the first process to write one wins).

What a process measures once and every later process may read instead of measuring again: the
``precision="auto"`` timing (:mod:`sciconv.inference._precision`) and a model's receptive field
(:func:`sciconv.models.receptive_field`), under ``<sciconv.fetch.cache_dir()>/<kind>/``. A
cache that cannot be written keeps the result for the process only; an unreadable or malformed
file reads as nothing kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
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
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def keep(path: Path, text: str, *, valid: Callable[[str], bool] | None = None) -> str | None:
    """Write ``text`` to ``path`` unless another process did first.

    A file that stands there but cannot be read, or whose text ``valid`` refuses (damaged by
    other means than these atomic writes: a full disk, a copy cut short), is replaced: it was
    never repaired, so every later process measured again and could decide otherwise (QA).

    Parameters
    ----------
    path : Path
        The file (:func:`kept_file`).
    text : str
        What this process measured.
    valid : callable, optional
        Whether a text found on disk is a result of this kind (default: any readable text).

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
    >>> keep(path, "third", valid=lambda t: t == "third"), read_kept(path)  # "first" refused
    ('third', 'third')
    """
    from sciconv._atomic import atomic_output
    from sciconv.errors import OutputExistsError, SciconvError

    overwrite = False
    for _ in range(2):  # once as the first writer; once more over a damaged file
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(path, overwrite=overwrite) as tmp:
                Path(tmp).write_text(text + "\n", encoding="utf-8")
        except OutputExistsError:
            standing = read_kept(path)
            if standing is not None and (valid is None or valid(standing)):
                return standing
            overwrite = True
            continue
        except (OSError, SciconvError):  # a read-only or full cache: this process's result only
            return text
        break
    return text
