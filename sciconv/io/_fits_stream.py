"""What a compressed FITS file (``.fits.gz``, ``.fits.bz2``, ``.fits.xz``) holds past its last HDU.

Astropy reads whatever follows the last HDU of a compressed file as the next header, block after
block until it finds an END card: gzip-compressed zero padding (1 GiB of it is 1 MB on disk) then
costs minutes and twice its size in memory, and sciconv always looks past the first HDU (mask,
error and inherited cards). :func:`check_compressed_tail` streams the decompressed file once in
constant memory, reading each header and skipping the data it declares, and refuses a file whose
stream goes on past its last HDU by more than :data:`MAX_TRAILING_BYTES`, or whose header has no
END card within :data:`MAX_HEADER_BYTES`, before astropy sees it.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from pathlib import Path

from sciconv.errors import InvalidImageError

#: Bytes a compressed FITS file may hold past its last HDU (astropy warns of a little padding).
MAX_TRAILING_BYTES = 2**20
#: Largest header accepted in a compressed FITS file (about 800 000 cards).
MAX_HEADER_BYTES = 64 * 2**20

_BLOCK = 2880
_CHUNK = 2**20
_OPENERS = ((b"\x1f\x8b\x08", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ\x00", lzma.open))


def check_compressed_tail(path: Path) -> None:
    """Refuse a gzip, bzip2 or xz compressed FITS file that continues far past its last HDU.

    A plain file returns at once (its size is on disk). A damaged or truncated stream is left to
    astropy, which says what is wrong; only what this scan can count is refused.

    Parameters
    ----------
    path : pathlib.Path
        The FITS file.

    Raises
    ------
    InvalidImageError
        More than :data:`MAX_TRAILING_BYTES` decompressed bytes after the last HDU, or a header
        without END within :data:`MAX_HEADER_BYTES`; the message names the file.

    Examples
    --------
    >>> import gzip, tempfile, pathlib
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.fits.gz"
    >>> with gzip.open(path, "wb") as f:
    ...     fits.PrimaryHDU(np.zeros((4, 4), np.float32)).writeto(f)
    >>> check_compressed_tail(path)  # nothing past the HDU
    """
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError:
        return  # the reader says why it cannot open the file
    opener = next((o for m, o in _OPENERS if magic.startswith(m)), None)
    if opener is None:
        return
    try:
        with opener(path, "rb") as stream:
            _scan(stream, path)
    except InvalidImageError:  # a ValueError too
        raise
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError):
        return  # a damaged stream: astropy's error names it


def _scan(stream, path: Path) -> None:
    at, index = 0, 0
    while True:
        first = stream.read(_BLOCK)
        if not first:
            return
        if not first.startswith(b"SIMPLE" if index == 0 else b"XTENSION"):
            if index == 0:
                return  # not FITS: astropy says so
            _refuse_tail(stream, path, at, len(first))
            return
        cards, size = {}, len(first)
        block = first
        while not _has_end(block, cards):
            block = stream.read(_BLOCK)
            size += len(block)
            if len(block) < _BLOCK:
                return  # truncated: astropy and sciconv's truncation check say so
            if size > MAX_HEADER_BYTES:
                raise InvalidImageError(
                    f"HDU {index} of the compressed file has no END card in its first "
                    f"{MAX_HEADER_BYTES:,} bytes (from byte {at} of the decompressed data): a "
                    "damaged file or a decompression bomb (limit: sciconv.io._fits_stream."
                    "MAX_HEADER_BYTES)",
                    path=path,
                )
        data = _data_bytes(cards)
        if data is None:
            return  # a header this scan does not understand: astropy reads it
        padded = -(-data // _BLOCK) * _BLOCK
        if _skip(stream, padded) < padded:
            return  # truncated data
        at += size + padded
        index += 1


def _refuse_tail(stream, path: Path, at: int, read: int) -> None:
    """Count what follows the last HDU, up to the limit; refuse past it."""
    while read <= MAX_TRAILING_BYTES:
        chunk = stream.read(min(_CHUNK, MAX_TRAILING_BYTES + 1 - read))
        if not chunk:
            return
        read += len(chunk)
    raise InvalidImageError(
        f"the compressed stream continues more than {MAX_TRAILING_BYTES:,} bytes past the last "
        f"HDU (which ends at byte {at:,} of the decompressed data): padding or a decompression "
        "bomb, refused. Decompress the file and cut it after its last HDU if you trust it",
        path=path,
    )


def _has_end(block: bytes, cards: dict) -> bool:
    """Record the block's size cards in ``cards``; True at an END card."""
    for i in range(0, len(block) - 79, 80):
        card = block[i : i + 80]
        key = card[:8].rstrip()
        if key == b"END":
            return True
        if card[8:10] == b"= " and (key in _SIZE_KEYS or key.startswith(b"NAXIS")):
            cards[key] = card[10:].split(b"/", 1)[0].strip()
    return False


_SIZE_KEYS = (b"BITPIX", b"PCOUNT", b"GCOUNT", b"GROUPS")


def _data_bytes(cards: dict) -> int | None:
    """The data size a header declares (FITS standard 4.4.1), or None if it cannot be read."""
    try:
        bitpix = int(cards[b"BITPIX"])
        naxis = int(cards.get(b"NAXIS", b"0"))
        dims = [int(cards[b"NAXIS%d" % i]) for i in range(1, naxis + 1)]
        pcount = int(cards.get(b"PCOUNT", b"0"))
        gcount = int(cards.get(b"GCOUNT", b"1"))
    except (KeyError, ValueError):
        return None
    if naxis == 0:
        return 0
    if cards.get(b"GROUPS") == b"T" and dims[0] == 0:  # random groups: NAXIS1 = 0 is no axis
        dims = dims[1:]
    n = 1
    for d in dims:
        n *= d
    if any(v < 0 for v in (pcount, gcount, *dims)):
        return None
    return abs(bitpix) // 8 * gcount * (pcount + n)


def _skip(stream, n: int) -> int:
    """Read and drop ``n`` bytes in bounded chunks; the count actually read."""
    done = 0
    while done < n:
        chunk = stream.read(min(_CHUNK, n - done))
        if not chunk:
            break
        done += len(chunk)
    return done
