"""PNG and JPEG through Pillow, and the 16-bit colour PNG codec Pillow lacks.

Pillow reduces 16-bit grey+alpha, RGB and RGBA PNG to 8 bits; those are decoded here
(:func:`_png_decode`, non-interlaced) and written here (:func:`_png_encode`).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from sciconv.errors import InvalidImageError
from sciconv.io._common import _section_slices, _short, _to_float32
from sciconv.io._image import GridImage, _InMemoryLazy


def _read_pil(path: Path, *, kind: str, stack, section, lazy) -> GridImage:
    from PIL import Image

    info = _png_ihdr(path) if kind == "png" else None
    meta: dict[str, Any] = {"format": kind}
    if info is not None and info["bit_depth"] == 16 and info["color_type"] in (2, 4, 6):
        raw = _png_decode(path, info)  # Pillow would silently reduce these to 8 bits
        meta.update(dtype="uint16", mode=f"{info['channels']}x16-bit")
    else:
        try:
            with Image.open(path) as im:
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
        except Exception as exc:
            raise InvalidImageError(
                f"not a readable {kind.upper()} file ({_short(exc)})", path=path
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
        else:
            meta["alpha"] = "kept"
    ys, xs = _section_slices(section, raw.shape[0], raw.shape[1], path)
    data = _to_float32(raw[ys, xs], path=path)
    if lazy:
        return GridImage(_InMemoryLazy(data, str(path)), path=str(path), meta=meta)
    if stack:
        data = data[None]
    return GridImage(data, mask=np.isnan(data), path=str(path), meta=meta)


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
        raw = zlib.decompress(b"".join(chunks))
    except Exception as exc:
        raise InvalidImageError(f"damaged PNG data ({_short(exc)})", path=path) from exc
    h, w, c = info["height"], info["width"], info["channels"]
    bpp = 2 * c
    stride = w * bpp
    if len(raw) < h * (stride + 1):
        raise InvalidImageError("truncated PNG pixel data", path=path)
    rows = np.frombuffer(raw, dtype=np.uint8, count=h * (stride + 1)).reshape(h, stride + 1)
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        ftype, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 1:
            cur = np.cumsum(line.reshape(w, bpp), axis=0).reshape(-1) % 256
        elif ftype == 2:
            cur = (line + prev) % 256
        elif ftype in (3, 4):
            cur = np.zeros(stride, dtype=np.int32)
            for x in range(0, stride, bpp):
                left = cur[x - bpp : x] if x else np.zeros(bpp, dtype=np.int32)
                up = prev[x : x + bpp]
                if ftype == 3:
                    pred = (left + up) // 2
                else:
                    ul = prev[x - bpp : x] if x else np.zeros(bpp, dtype=np.int32)
                    p = left + up - ul
                    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - ul)
                    pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, ul))
                cur[x : x + bpp] = (line[x : x + bpp] + pred) % 256
        else:
            raise InvalidImageError(f"damaged PNG data (filter type {ftype} in row {y})", path=path)
        out[y] = cur
        prev = cur
    return out.view(">u2").reshape(h, w, c).astype(np.uint16)


def _png_encode(array: np.ndarray) -> bytes:
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
