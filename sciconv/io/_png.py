"""PNG and JPEG through Pillow, and the 16-bit colour PNG codec Pillow lacks.

Pillow (13 included) reduces 16-bit grey+alpha, RGB and RGBA PNG to 8 bits; those are decoded here
(:func:`_png_decode`, non-interlaced) and written here (:func:`png_encode`). Both paths keep the
same limits: Pillow's decompression-bomb pixel limit (``PIL.Image.MAX_IMAGE_PIXELS``, refused above
twice it, as Pillow does) and the memory check every sciconv reader makes; the hand decoder also
inflates no more than the pixel data the header announces, and unfilters with numpy along
anti-diagonals (each pixel depends only on its left, upper and upper-left neighbours), never pixel
by pixel in Python.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from sciconv.errors import InvalidImageError, name_text
from sciconv.io._common import (
    brief,
    check_memory,
    check_pixel_limit,
    section_slices,
    to_float32,
    transparent_as_no_data,
    warn_caller,
)
from sciconv.io._image import GridImage, decoded_image

#: ``meta["alpha"]`` of a PNG whose alpha is 0 everywhere: an export that records no transparency
#: (taken at its word, every pixel would be no data); its pixels are read as stored. (A TIFF is
#: read window by window, where an all-0 alpha may be a transparent region: its alpha is kept.)
ALPHA_ZERO_EVERYWHERE = "ignored (alpha 0 everywhere: read as opaque)"


def read_pil(path: Path, *, kind: str, stack, section, lazy) -> GridImage:
    from PIL import Image

    info = _png_ihdr(path) if kind == "png" else None
    meta: dict[str, Any] = {"format": kind}
    if info is not None and info["bit_depth"] == 16 and info["color_type"] in (2, 4, 6):
        check_pixel_limit(info["width"] * info["height"], path)
        # decoding holds the inflated rows, two int16 work arrays, uint16 and float32 results
        check_memory(info["width"] * info["height"] * info["channels"], 12, path)
        raw = _png_decode(path, info)  # Pillow would silently reduce these to 8 bits
        meta.update(dtype="uint16", mode=f"{info['channels']}x16-bit")
    else:
        try:
            with Image.open(path) as im:
                wide = im.mode in ("I", "F") or im.mode.startswith("I;16")
                check_memory(im.size[0] * im.size[1] * len(im.getbands()), 4 if wide else 1, path)
                im.load()
                mode = im.mode
                meta["mode"] = mode
                if mode == "P":
                    has_alpha = "transparency" in im.info
                    im = im.convert("RGBA" if has_alpha else "RGB")
                    meta["palette"] = "expanded to RGB"
                elif mode == "PA":
                    im = im.convert("RGBA")
                    meta["palette"] = "expanded to RGB"
                elif mode == "1":
                    im = im.convert("L")
                elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                    im = im.convert("RGB")
                raw = np.asarray(im)
        except InvalidImageError:
            raise
        except Exception as exc:
            raise InvalidImageError(
                f"not a readable {kind.upper()} file ({brief(exc)})", path=path
            ) from exc
        meta["dtype"] = raw.dtype.name
        if mode.startswith("I;16") or (
            mode == "I" and info is not None and info["bit_depth"] == 16
        ):
            raw = raw.astype(np.uint16)
            meta["dtype"] = "uint16"
    if raw.ndim == 2:
        raw = raw[:, :, None]
    meta["axes"] = "YXS" if raw.shape[2] > 1 else "YX"
    if raw.shape[0] == 0 or raw.shape[1] == 0:
        raise InvalidImageError(f"image holds no pixels (shape {raw.shape})", path=path)
    if raw.shape[2] in (2, 4):
        top = np.iinfo(raw.dtype).max if raw.dtype.kind in "iu" else 1.0
        if np.all(raw[..., -1] == top):
            raw = raw[..., :-1]
            meta["alpha"] = "dropped (fully opaque)"
        elif not np.any(raw[..., -1]):
            raw = raw[..., :-1]
            meta["alpha"] = ALPHA_ZERO_EVERYWHERE
            warn_caller(
                f"{name_text(path)}: its alpha channel is 0 everywhere (no pixel visible): read "
                "as opaque"
            )
        else:  # dropped below, once its fully transparent pixels are NaN
            meta["alpha"] = "kept"
    ys, xs = section_slices(section, raw.shape[0], raw.shape[1], path)
    data = transparent_as_no_data(to_float32(raw[ys, xs], path=path), meta)
    return decoded_image(data, path, meta, lazy=lazy, stack=stack)


def _png_ihdr(path: Path) -> dict | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(33)
        if len(head) < 33 or head[12:16] != b"IHDR":
            return None
        w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    except OSError:
        return None
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(ctype, 1)
    return {
        "width": w,
        "height": h,
        "bit_depth": depth,
        "color_type": ctype,
        "channels": channels,
        "interlace": interlace,
    }


def _png_decode(path: Path, info: dict) -> np.ndarray:
    """Decode a non-interlaced 16-bit PNG (gray+alpha, RGB, RGBA) that Pillow reads at 8 bits."""
    if info["interlace"]:
        raise InvalidImageError(
            "interlaced 16-bit colour PNG is not supported; save it as TIFF", path=path
        )
    h, w, c = info["height"], info["width"], info["channels"]
    bpp = 2 * c
    stride = w * bpp
    expected = h * (stride + 1)
    try:
        blob = Path(path).read_bytes()
        pos, chunks = 8, []
        while pos + 8 <= len(blob):
            (length,) = struct.unpack(">I", blob[pos : pos + 4])
            ctype = blob[pos + 4 : pos + 8]
            if ctype == b"IDAT":
                chunks.append(blob[pos + 8 : pos + 8 + length])
            if ctype == b"IEND":
                break
            pos += 12 + length
        # inflate no more than the header announces: a zlib bomb stops here
        raw = zlib.decompressobj().decompress(b"".join(chunks), expected)
    except Exception as exc:
        raise InvalidImageError(f"damaged PNG data ({brief(exc)})", path=path) from exc
    if len(raw) < expected:
        raise InvalidImageError("truncated PNG pixel data", path=path)
    rows = np.frombuffer(raw, dtype=np.uint8, count=expected).reshape(h, stride + 1)
    filters = rows[:, 0]
    bad = np.flatnonzero(filters > 4)
    if bad.size:
        y = int(bad[0])
        raise InvalidImageError(
            f"damaged PNG data (filter type {filters[y]} in row {y})", path=path
        )
    out = _unfilter(filters, rows[:, 1:].reshape(h, w, bpp))
    return out.reshape(h, stride).view(">u2").reshape(h, w, c).astype(np.uint16)


def _unfilter(filters: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Undo PNG filtering of ``lines`` (h, w, bytes per pixel), uint8, with numpy.

    Every filter predicts a pixel from its left (a), upper (b) and upper-left (c) neighbours,
    so the pixels of one anti-diagonal ``y + x = d`` depend only on the two diagonals before:
    ``h + w - 1`` vectorized steps. Images using only None/Sub/Up are undone row by row.
    """
    h, w, bpp = lines.shape
    if not np.isin(filters, (3, 4)).any():
        out = np.empty((h, w, bpp), dtype=np.uint8)
        prev = np.zeros((w, bpp), dtype=np.uint8)
        for y in range(h):
            line = lines[y]
            if filters[y] == 1:
                line = np.cumsum(line, axis=0, dtype=np.uint64).astype(np.uint8)  # mod 256
            elif filters[y] == 2:
                line = line + prev  # uint8 arithmetic wraps mod 256
            out[y] = line
            prev = out[y]
        return out
    # padded by one zero row and column: the neighbours outside the image are 0
    done = np.zeros((h + 1, w + 1, bpp), dtype=np.int16)
    filt = filters.astype(np.int16)
    for d in range(h + w - 1):
        ys = np.arange(max(0, d - w + 1), min(h - 1, d) + 1)
        xs = d - ys
        a = done[ys + 1, xs]
        b = done[ys, xs + 1]
        c = done[ys, xs]
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        f = filt[ys][:, None]
        pred = np.select([f == 1, f == 2, f == 3, f == 4], [a, b, (a + b) >> 1, paeth], 0)
        done[ys + 1, xs + 1] = (lines[ys, xs] + pred) & 255
    return done[1:, 1:].astype(np.uint8)


def png_encode(array: np.ndarray) -> bytes:
    """Encode (H, W, C) uint8/uint16 with C in 1..4 as PNG bytes (no filtering, zlib level 6)."""
    h, w, c = array.shape
    depth = 16 if array.dtype == np.uint16 else 8
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    data = array.astype(">u2" if depth == 16 else np.uint8)
    rows = data.reshape(h, -1).view(np.uint8).reshape(h, -1)
    body = np.concatenate([np.zeros((h, 1), dtype=np.uint8), rows], axis=1).tobytes()

    def chunk(tag: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(tag + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(body, 6))
        + chunk(b"IEND", b"")
    )
