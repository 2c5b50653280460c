"""The physical metadata microscope and slide-scanner vendors keep in their own TIFF tags.

tifffile parses them (``TiffFile.lsm_metadata``, ``stk_metadata``, ``fluoview_metadata``,
``svs_description_metadata``; the XML of ``scn_metadata`` and ``philips_metadata`` is read here
with ElementTree, as tifffile reads it to build the series). :func:`vendor_meta` turns them into
the keys the OME/ImageJ readers give (:mod:`sciconv.io._tiff_meta`), lengths in µm, with
``meta["pixel_size_from"]`` naming the record:

========================  ===================================================================
Zeiss LSM (``.lsm``)      CZ_LSMINFO ``VoxelSizeX/Y/Z`` (metres), ``TimeIntervall`` (s),
                          ``ChannelColors`` names
Aperio SVS (``.svs``)     ``MPP`` (µm per pixel) in the full-resolution image's description
Leica SCN (``.scn``)      each image's ``<view>`` size (nm) over its ``<pixels>`` size
MetaMorph STK (``.stk``)  UIC ``XCalibration``/``YCalibration`` in ``CalibrationUnits``
Olympus FluoView          MM_Header dimensions' ``Resolution`` and ``Unit``
Philips TIFF              ``DICOM_PIXEL_SPACING`` (mm) of the full-resolution level
PerkinElmer QPTIFF        each channel's ``Name`` (the pixel size is in resolution tags, cm)
========================  ===================================================================

Hamamatsu NDPI keeps its pixel size in the resolution tags (centimetres), read as any TIFF's.
"""

from __future__ import annotations

import math
import re
from xml.etree import ElementTree

import numpy as np

from sciconv.io._common import brief, warn_caller
from sciconv.io._tiff_units import UNIT_METRES, length_unit, time_interval

#: tifffile series kinds whose ``C`` axis the file's metadata declares as channels (an LSM's
#: tracks, a QPTIFF's stains, ...); a plain TIFF's samples are ``S``
CHANNEL_SERIES_KINDS = frozenset(
    {"lsm", "stk", "fluoview", "mmstack", "ome", "imagej", "ndtiff", "scn", "qpi"}
)


def channels_declared(series, photometric, dtype) -> bool:
    """Whether ``series`` (a tifffile series) has more than one channel on an axis its file's
    metadata declares (:data:`CHANNEL_SERIES_KINDS`), other than the 3 or 4 8-bit samples of a
    colour camera's RGB (an LSM of a brightfield camera is a colour picture).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> lsm = SimpleNamespace(kind="lsm", axes="CYX", shape=(3, 8, 8))
    >>> channels_declared(lsm, "MINISBLACK", "uint8"), channels_declared(lsm, "RGB", "uint8")
    (True, False)
    """
    kind, axes = str(getattr(series, "kind", "")).lower(), str(series.axes)
    if kind not in CHANNEL_SERIES_KINDS or "C" not in axes:
        return False
    n = int(series.shape[axes.index("C")])
    colour = str(getattr(photometric, "name", photometric)).upper() == "RGB"
    return n > 1 and not (colour and n in (3, 4) and np.dtype(dtype) == np.uint8)


def vendor_meta(tif, index: int, page) -> dict:
    """The pixel size (µm), Z step, frame interval and channel names of series ``index`` of
    ``tif`` (``page``: its first page) that the vendor's metadata give (module notes); empty
    for other files. A record tifffile or this reader cannot make sense of is said in a warning
    naming the file, and ignored."""
    for flag, vendor, read in _READERS:
        if not getattr(tif, flag, False):
            continue
        try:
            return read(tif, index, page)
        except Exception as exc:  # metadata is a bonus: the pixels are still good
            warn_caller(
                f"{tif.filehandle.path}: {vendor} metadata not understood ({brief(exc)}); its "
                "pixel size is not read"
            )
            return {}
    return {}


def scn_macro(tif, index: int) -> bool:
    """Whether series ``index`` of a Leica SCN file is the macro image: its ``<view>`` covers
    the whole slide (the collection's size), as OpenSlide tells it from the scans."""
    if not getattr(tif, "is_scn", False):
        return False
    try:
        image, collection = _scn_images(tif.scn_metadata)[index]
        view = _child(image, "view")
        return view is not None and all(
            view.get(k) is not None and view.get(k) == collection.get(k) for k in ("sizeX", "sizeY")
        )
    except Exception:  # an odd SCN: nothing said about it
        return False


def _um(value, factor: float = 1.0) -> float:
    """``value * factor`` as a float with 10 significant digits (0.325e-6 m -> 0.325 µm, not
    0.32499999999999996); raises ValueError for a value that is not positive and finite."""
    out = float(value) * factor
    if not (out > 0 and math.isfinite(out)):
        raise ValueError(f"not a positive length: {value!r}")
    return float(f"{out:.10g}")


def _sizes(dy, dx, source: str, factor: float = 1.0) -> dict:
    """``pixel_size`` (µm) and its source from a vendor's ``dy``, ``dx`` in units of
    ``factor`` µm; empty when either is missing, 0 (uncalibrated) or not a number."""
    try:
        return {"pixel_size": (_um(dy, factor), _um(dx, factor)), "pixel_unit": "µm",
                "pixel_size_from": source}  # fmt: skip
    except (TypeError, ValueError):
        return {}


def _lsm(tif, index: int, page) -> dict:
    info = tif.lsm_metadata or {}
    if index != 0:  # the thumbnails' series: reduced copies
        return {}
    meta = _sizes(info.get("VoxelSizeY"), info.get("VoxelSizeX"), "Zeiss LSM VoxelSizeX/Y", 1e6)
    if meta and int(info.get("DimensionZ", 1) or 1) > 1:
        try:
            meta["z_spacing"] = _um(info.get("VoxelSizeZ"), 1e6)
        except (TypeError, ValueError):
            pass
    if int(info.get("DimensionTime", 1) or 1) > 1:
        meta.update(time_interval(info.get("TimeIntervall"), "s"))
    names = (info.get("ChannelColors") or {}).get("ColorNames") or []
    channels = int(info.get("DimensionChannels", 0) or 0)
    if channels > 1 and len(names) == channels and all(str(n).strip() for n in names):
        meta["channel_names"] = [str(n).strip() for n in names]
    return meta


def _svs(tif, index: int, page) -> dict:
    """Aperio's ``MPP`` is the full-resolution image's: the thumbnail's description repeats it
    (OpenSlide reads the first page's), the label and macro have none of their own."""
    import tifffile

    series = tif.series[index]
    if index != 0 or str(getattr(series, "name", "")) != "Baseline":
        return {}
    description = str(getattr(page, "description", "") or "")
    mpp = tifffile.tifffile.svs_description_metadata(description).get("MPP")
    return _sizes(mpp, mpp, "Aperio SVS MPP")


def _scn_images(xml: str) -> list:
    """``(image, collection)`` elements of a Leica SCN XML in tifffile's series order (an image
    with ``<pixels>`` dimensions is a series)."""
    root = ElementTree.fromstring(xml)
    found = []
    for collection in root:
        if not collection.tag.endswith("collection"):
            continue
        for image in collection:
            if not image.tag.endswith("image"):
                continue
            pixels = _child(image, "pixels")
            if pixels is not None and any(d.tag.endswith("dimension") for d in pixels):
                found.append((image, collection))
    return found


def _child(element, name: str):
    return next((e for e in element if e.tag.endswith(name)), None)


def _scn(tif, index: int, page) -> dict:
    images = _scn_images(tif.scn_metadata)
    if not 0 <= index < len(images):
        return {}
    image = images[index][0]
    pixels, view = _child(image, "pixels"), _child(image, "view")
    if pixels is None or view is None:
        return {}
    # <view> sizes in nm (the image's extent on the slide), <pixels> sizes in pixels
    dx = float(view.get("sizeX", "nan")) / float(pixels.get("sizeX", "nan"))
    dy = float(view.get("sizeY", "nan")) / float(pixels.get("sizeY", "nan"))
    return _sizes(dy, dx, "Leica SCN <view> size / <pixels> size", 1e-3)


def _stk(tif, index: int, page) -> dict:
    info = tif.stk_metadata or {}
    unit = _length_factor(info.get("CalibrationUnits"))
    if unit is None or not int(info.get("SpatialCalibration", 1) or 0):
        return {}
    meta = _sizes(
        info.get("YCalibration"), info.get("XCalibration"), "MetaMorph STK XCalibration", unit
    )
    steps = np.asarray(info.get("ZDistance", ()), dtype=float).ravel()
    if meta and tif.series[index].axes.startswith("Z") and steps.size > 1:
        # MetaMorph's plane-to-plane distances (µm): a stack's step where they are all one
        step = steps[1:] if steps[0] == 0 else steps
        if np.allclose(step, step[0]) and step[0] > 0:
            meta["z_spacing"] = float(f"{step[0]:.10g}")
    return meta


def _length_factor(unit) -> float | None:
    """µm per ``unit`` (a vendor's unit name), None for no length unit (``pixel``, empty)."""
    if isinstance(unit, bytes):
        unit = unit.decode("latin-1")
    name = length_unit(str(unit or "").strip("\x00 "))
    return UNIT_METRES[name] / UNIT_METRES["µm"] if name in UNIT_METRES else None


def _fluoview(tif, index: int, page) -> dict:
    info = tif.fluoview_metadata or {}
    found: dict = {}
    for name, size, _origin, resolution, unit in info.get("Dimensions", ()):
        found[str(name).strip().upper()] = (int(size), resolution, unit)
    meta: dict = {}
    if "X" in found and "Y" in found:
        (_, rx, ux), (_, ry, uy) = found["X"], found["Y"]
        fx, fy = _length_factor(ux), _length_factor(uy)
        if fx is not None and fy is not None:
            meta = _sizes(float(ry) * fy, float(rx) * fx, "FluoView MM_Header X/Y resolution")
    z = found.get("Z")
    if meta and z is not None and z[0] > 1 and _length_factor(z[2]) is not None:
        try:
            meta["z_spacing"] = _um(z[1], _length_factor(z[2]))
        except (TypeError, ValueError):
            pass
    t = found.get("T", found.get("TIME"))
    if t is not None and t[0] > 1:
        meta.update(time_interval(t[1], str(t[2]).strip() or "s"))
    return meta


def _philips(tif, index: int, page) -> dict:
    """The first level's ``DICOM_PIXEL_SPACING``: row then column spacing, in mm (DICOM)."""
    if index != 0:  # the macro and label images: no spacing of their own
        return {}
    root = ElementTree.fromstring(tif.philips_metadata)
    path = (
        ".//DataObject[@ObjectType='PixelDataRepresentation']"
        "/Attribute[@Name='DICOM_PIXEL_SPACING']"
    )
    for element in root.findall(path):
        values = re.findall(r"[-+0-9.eE]+", element.text or "")
        if len(values) >= 2:
            return _sizes(values[0], values[1], "Philips DICOM_PIXEL_SPACING", 1e3)
    return {}


def _qpi(tif, index: int, page) -> dict:
    """A QPTIFF's stains: each full-resolution page's XML description names its channel."""
    series = tif.series[index]
    if index != 0 or "C" not in series.axes:
        return {}
    names = []
    for p in series.pages:
        root = ElementTree.fromstring(str(getattr(p, "description", "") or "<x/>"))
        name = root.findtext("Name")
        if not name or not name.strip():
            return {}
        names.append(name.strip())
    return {"channel_names": names} if len(names) > 1 else {}


_READERS = (
    ("is_lsm", "Zeiss LSM", _lsm),
    ("is_svs", "Aperio SVS", _svs),
    ("is_scn", "Leica SCN", _scn),
    ("is_stk", "MetaMorph STK", _stk),
    ("is_fluoview", "Olympus FluoView", _fluoview),
    ("is_philips", "Philips TIFF", _philips),
    ("is_qpi", "PerkinElmer QPTIFF", _qpi),
)
