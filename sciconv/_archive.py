"""Size limits and integrity checks for zip archives, before anything in them is used.

One rule for every zip sciconv opens (``.keras`` model files, downloaded archives): the sizes a
zip's central directory declares are checked first. :mod:`zipfile` never inflates more than a
member's declared size (a member that inflates to more fails its CRC check with ``BadZipFile``),
so these checks bound what reading the archive can cost. :func:`zip_member_problem` then reads
every member once (in bounded chunks) so a truncated, CRC-bad, encrypted or oddly compressed
member is named before a library trips over it half-way.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Mapping

__all__ = ["RATIO_EXEMPT_BYTES", "zip_member_problem", "zip_name_problem", "zip_size_problem"]

_CHUNK = 2**20

#: Members (and archives) smaller than this are not held to the compression-ratio limit.
RATIO_EXEMPT_BYTES = 2**20


def zip_size_problem(
    archive: zipfile.ZipFile,
    *,
    max_total: int,
    max_ratio: float,
    member_limits: Mapping[str, int] | None = None,
) -> str | None:
    """Describe the first size limit a zip's directory breaks, or return None.

    Parameters
    ----------
    archive : zipfile.ZipFile
        An open archive; only its directory (``infolist()``) is read.
    max_total : int
        Largest total uncompressed size of all members, in bytes.
    max_ratio : float
        Largest compression ratio (uncompressed / compressed) of a member, and of the whole
        archive, once above :data:`RATIO_EXEMPT_BYTES`.
    member_limits : mapping of str to int, optional
        Largest uncompressed size of named members, in bytes.

    Returns
    -------
    str or None
        A sentence naming the member, its sizes and the limit; None when every limit holds.

    Examples
    --------
    >>> import io, zipfile
    >>> buf = io.BytesIO()
    >>> with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    ...     z.writestr("zeros.bin", bytes(4 * 2**20))
    >>> zip_size_problem(zipfile.ZipFile(buf), max_total=2**30, max_ratio=100).split(" ")[:3]
    ['member', "'zeros.bin'", 'expands']
    >>> zip_size_problem(zipfile.ZipFile(buf), max_total=2**30, max_ratio=10_000) is None
    True
    """
    limits = dict(member_limits or {})
    total = packed = 0
    for info in archive.infolist():
        total += info.file_size
        packed += info.compress_size
        limit = limits.get(info.filename)
        if limit is not None and info.file_size > limit:
            return (
                f"{info.filename} declares {info.file_size:,} bytes, over the {limit:,}-byte limit"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_EXEMPT_BYTES and ratio > max_ratio:
            return (
                f"member {info.filename!r} expands {ratio:,.0f}-fold ({info.compress_size:,} -> "
                f"{info.file_size:,} bytes), over the {max_ratio:,g}:1 limit "
                "(a decompression bomb?)"
            )
    if total > max_total:
        return f"the members declare {total:,} bytes in all, over the {max_total:,}-byte limit"
    if total > RATIO_EXEMPT_BYTES and total / max(packed, 1) > max_ratio:
        return (
            f"the archive expands {total / max(packed, 1):,.0f}-fold ({packed:,} -> {total:,} "
            f"bytes), over the {max_ratio:,g}:1 limit (a decompression bomb?)"
        )
    return None


def zip_name_problem(archive: zipfile.ZipFile) -> str | None:
    """Describe the first member whose name points outside the folder it unpacks into, or None.

    An absolute name (``/etc/x``, ``C:/x``) or one with a ``..`` component is never written
    where it says (:mod:`zipfile` strips those parts), but no honest archive holds one: it is
    refused by name, before anything is unpacked.

    Parameters
    ----------
    archive : zipfile.ZipFile
        An open archive; only its directory is read.

    Returns
    -------
    str or None
        A sentence naming the member; None when every name is relative and stays inside.

    Examples
    --------
    >>> import io, zipfile
    >>> buf = io.BytesIO()
    >>> with zipfile.ZipFile(buf, "w") as z:
    ...     z.writestr("../../evil.txt", b"x")
    >>> zip_name_problem(zipfile.ZipFile(buf)).split(":")[0]
    "member '../../evil.txt' has an unsafe name (absolute, or with '..')"
    """
    for name in archive.namelist():
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
            return (
                f"member {name!r} has an unsafe name (absolute, or with '..'): it points outside "
                "the folder it unpacks into"
            )
    return None


def zip_member_problem(archive: zipfile.ZipFile) -> str | None:
    """Read every member of a zip once; describe the first one that cannot be read, or None.

    A member with an unsafe name (:func:`zip_name_problem`) is described before anything is read.

    Each member is inflated in 1 MiB chunks and checked against its CRC-32 by :mod:`zipfile`
    (so memory stays bounded); call :func:`zip_size_problem` first to bound the time.

    Parameters
    ----------
    archive : zipfile.ZipFile
        An open archive.

    Returns
    -------
    str or None
        A sentence naming the member and what is wrong with it (truncated, bad CRC, encrypted,
        unsupported compression); None when every member reads back intact.

    Examples
    --------
    >>> import io, zipfile
    >>> buf = io.BytesIO()
    >>> with zipfile.ZipFile(buf, "w") as z:
    ...     z.writestr("a.txt", b"hello world")
    >>> zip_member_problem(zipfile.ZipFile(buf)) is None
    True
    >>> raw = bytearray(buf.getvalue()); raw[raw.index(b"hello")] ^= 1
    >>> zip_member_problem(zipfile.ZipFile(io.BytesIO(bytes(raw)))).split(" ")[:4]
    ['member', "'a.txt'", 'is', 'corrupt']
    """
    unsafe = zip_name_problem(archive)
    if unsafe:
        return unsafe
    for info in archive.infolist():
        if info.is_dir():
            continue
        try:
            with archive.open(info) as member:
                while member.read(_CHUNK):
                    pass
        except EOFError:
            return f"member {info.filename!r} is truncated (the archive ends inside it)"
        except RuntimeError as err:  # zipfile: encrypted member, no password
            return f"member {info.filename!r} cannot be read ({err})"
        except NotImplementedError as err:
            return f"member {info.filename!r} uses a compression zipfile cannot read ({err})"
        except (zipfile.BadZipFile, zlib.error, OSError, ValueError) as err:
            return f"member {info.filename!r} is corrupt ({err})"
    return None
