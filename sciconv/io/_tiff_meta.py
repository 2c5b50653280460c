"""The physical metadata of a TIFF (read by tifffile, never parsed by hand) in ``GridImage.meta``.

``meta["pixel_size"]``
    ``(dy, dx)``, the physical size of one pixel, in ``meta["pixel_unit"]`` (``"µm"``,
    ``"nm"``, ...); ``meta["pixel_size_from"]`` says where it was read. From, the first that
    gives one: OME ``PhysicalSizeY/X``; ImageJ ``1 / YResolution, 1 / XResolution`` with its
    ``unit``; a vendor's own record (:mod:`sciconv.io._tiff_vendor`: Zeiss LSM, Aperio SVS,
    Leica SCN, MetaMorph STK, Olympus FluoView, Philips), in µm; a GeoTIFF's
    ``ModelPixelScaleTag`` in metres when its CRS is projected (:func:`geotiff_meta`); the
    baseline resolution tags with ResolutionUnit inch or centimetre, in µm. Neither
    ResolutionUnit NONE nor the dots per inch of screens (72, 96, and the 120/144/192 of
    scaled and Retina displays, which screenshots carry) is a measurement.
    :attr:`GridImage.pixel_scale` turns it into a :class:`PixelScale`.
``meta["z_spacing"]``
    The step between Z planes (OME ``PhysicalSizeZ``, ImageJ ``spacing``, LSM ``VoxelSizeZ``,
    ...), same unit.
``meta["time_interval"]``
    Seconds between time points (OME ``TimeIncrement``, ImageJ ``finterval``, LSM
    ``TimeIntervall``, ...); an OME file that dates its planes (``Plane/@DeltaT``) but gives no
    ``TimeIncrement``: the median step between its frames' times.
``meta["frame_times"]``
    The time of each time point (seconds, one per ``T`` index) where an OME file dates its
    planes (``Plane/@DeltaT`` in ``DeltaTUnit``, read at each frame's first plane, ``TheZ=0``,
    ``TheC=0``) and the dates are not ``t x time_interval``: a movie with a pause, or frames
    taken at their own pace. :func:`frame_seconds` gives a frame's time either way.
``meta["channel_names"]``
    One name per channel (OME ``Channel/@Name``; ImageJ ``Labels`` when there is one per
    channel; LSM ``ChannelColors`` names, QPTIFF ``Name``).
``meta["ome"]``, ``meta["imagej"]``
    True when the file carries OME-XML or ImageJ hyperstack metadata; ``meta["axes"]`` is then
    the axes they give (``"TZCYX"``, ...).
"""

from __future__ import annotations

import numpy as np

from sciconv.io._common import brief, warn_caller
from sciconv.io._tiff_units import convert_length, length_unit, time_interval, time_seconds
from sciconv.io._tiff_vendor import vendor_meta


def microscopy_meta(tif, page, index: int = 0) -> dict:
    """Pixel size, unit, Z spacing, frame interval (``time_interval``, seconds) and channel
    names of series ``index`` of ``tif`` (``page``: its first page), from OME-XML, ImageJ, the
    vendor's metadata or resolution tags (module notes)."""
    meta: dict = {}
    try:
        if tif.is_ome and tif.ome_metadata:
            meta.update(_ome_meta(tif.ome_metadata, index, len(tif.series)))
        elif tif.is_imagej and tif.imagej_metadata:
            meta.update(_imagej_meta(tif.imagej_metadata, page))
        else:
            meta.update(_resolution_meta(page))
            # the vendor's own record wins over the resolution tags: it is the calibration the
            # instrument's software (ImageScope, ZEN, MetaMorph, ...) and OpenSlide/Bio-Formats
            # use, while these files' resolution tags, where present, are left at a default
            # (72 dpi, no unit) or describe something else (an LSM's 1 px/unit, the macro
            # camera of a slide scanner)
            meta.update(vendor_meta(tif, index, page))
            meta.update(geotiff_meta(page, tif.filehandle.path))  # a map's default 72 dpi
            meta.update(_shaped_meta(tif, in_um=meta.get("pixel_unit") == "µm"))
    except Exception as exc:  # metadata is a bonus: the pixels are still good
        warn_caller(
            f"{tif.filehandle.path}: microscopy metadata not understood ({brief(exc)}); ignored"
        )
    return meta


def _shaped_meta(tif, *, in_um: bool) -> dict:
    """The ``channel_names`` and ``z_spacing_um`` (a stack's Z step, with the resolution tags'
    pixel size, ``in_um``) sciconv writes in a plain TIFF's JSON description (tifffile's shaped
    metadata), when they are a list of strings and a positive number."""
    shaped = tif.shaped_metadata or ()
    shaped = shaped[0] if shaped and isinstance(shaped[0], dict) else {}
    meta: dict = {}
    names = shaped.get("channel_names")
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        meta["channel_names"] = names
    z_step = shaped.get("z_spacing_um")
    if in_um and isinstance(z_step, (int, float)) and not isinstance(z_step, bool) and z_step > 0:
        meta["z_spacing"] = float(z_step)
    meta.update(time_interval(shaped.get("time_interval_s"), "s"))
    return meta


def _ome_meta(xml: str, index: int = 0, n_series: int = 1) -> dict:
    """OME-XML's sizes and names for series ``index``: its Image when the file has one per
    series tifffile found (else the first)."""
    import tifffile

    ome = tifffile.xml2dict(xml).get("OME", {})
    images = ome.get("Image", {})
    images = images if isinstance(images, list) else [images]
    image = images[index] if len(images) == n_series and 0 <= index < len(images) else images[0]
    pixels = (image or {}).get("Pixels", {}) or {}
    meta: dict = {"ome": True}
    dx, dy = pixels.get("PhysicalSizeX"), pixels.get("PhysicalSizeY")
    if dx is not None or dy is not None:
        # each size in its own unit attribute, µm where that is missing (the OME schema default)
        unit = length_unit(pixels.get("PhysicalSizeXUnit", "µm"))
        y_unit = length_unit(pixels.get("PhysicalSizeYUnit", "µm"))
        if dx is None:
            dx, unit = dy, y_unit
        if dy is None:
            dy, y_unit = dx, unit
        dy = convert_length(float(dy), y_unit, unit)
        meta["pixel_size"] = (dy, float(dx))
        meta["pixel_unit"] = unit
        meta["pixel_size_from"] = "OME-XML PhysicalSizeX/Y"
        if pixels.get("PhysicalSizeZ") is not None:
            z_unit = length_unit(pixels.get("PhysicalSizeZUnit", "µm"))
            meta["z_spacing"] = convert_length(float(pixels["PhysicalSizeZ"]), z_unit, unit)
    meta.update(time_interval(pixels.get("TimeIncrement"), pixels.get("TimeIncrementUnit", "s")))
    meta.update(_plane_times(pixels, meta.get("time_interval")))
    channels = pixels.get("Channel", [])
    channels = [channels] if isinstance(channels, dict) else list(channels or [])
    names = [c.get("Name") for c in channels if isinstance(c, dict)]
    if names and all(n is not None for n in names):
        meta["channel_names"] = [str(n) for n in names]
    return meta


def _plane_times(pixels: dict, interval: float | None) -> dict:
    """``frame_times`` from OME ``Plane/@DeltaT`` (module notes): each time point's first plane
    (``TheZ=0``, ``TheC=0``), converted through ``DeltaTUnit``; nothing unless every time point
    has one, nor where they are ``t x interval``. Without ``interval`` (no ``TimeIncrement``),
    also the median step between the frames' times as ``time_interval``."""
    planes = pixels.get("Plane") or []
    planes = [planes] if isinstance(planes, dict) else planes
    dated: dict[int, float] = {}
    try:
        size_t = int(pixels.get("SizeT", 1) or 1)
        for plane in planes:
            if not isinstance(plane, dict) or plane.get("DeltaT") is None:
                continue
            if int(plane.get("TheZ", 0)) != 0 or int(plane.get("TheC", 0)) != 0:
                continue  # the frame's first plane dates it
            seconds = time_seconds(plane["DeltaT"], plane.get("DeltaTUnit", "s"))
            if seconds is None:
                return {}  # a unit that is not a time: no dates rather than wrong ones
            dated.setdefault(int(plane.get("TheT", 0)), seconds)
    except (TypeError, ValueError):  # indices that are not numbers: the dates are a bonus
        return {}
    if not dated or sorted(dated) != list(range(size_t)):
        return {}  # some frames undated: t x TimeIncrement for all
    times = np.array([dated[t] for t in range(size_t)])
    out: dict = {}
    steps = np.diff(times)
    if interval is None and np.any(steps > 0):
        out = time_interval(float(np.median(steps[steps > 0])), "s")
        interval = out.get("time_interval")
    nominal = None if interval is None else np.arange(size_t) * interval
    if nominal is None or not np.allclose(times, nominal, rtol=1e-6, atol=1e-6):
        out["frame_times"] = tuple(float(v) for v in times)
    return out


def frame_seconds(meta: dict, t) -> np.ndarray | None:
    """The time, in seconds, of time points ``t`` of an image read with ``meta``: the file's
    own date of each frame (``meta["frame_times"]``, OME ``Plane/@DeltaT``) where it records
    them, else ``t x meta["time_interval"]``; None when it records neither.

    Parameters
    ----------
    meta : dict
        :attr:`sciconv.io.GridImage.meta` of a movie (``read(path, stack=True)``).
    t : array_like of int
        Indices along the movie's ``T`` axis (a stack catalog's ``t`` column).

    Returns
    -------
    numpy.ndarray of float or None
        One time per index, in seconds.

    Examples
    --------
    >>> from sciconv.io import frame_seconds
    >>> frame_seconds({"time_interval": 30.0}, [0, 1, 2]).tolist()
    [0.0, 30.0, 60.0]
    >>> meta = {"time_interval": 30.0, "frame_times": (0.0, 31.2, 600.4)}  # a 9-minute pause
    >>> frame_seconds(meta, [0, 2]).tolist()
    [0.0, 600.4]
    >>> frame_seconds({}, [0]) is None
    True
    """
    t = np.asarray(t, dtype=np.int64)
    times = meta.get("frame_times")
    inside = t.size == 0 or (times is not None and 0 <= t.min() and t.max() < len(times))
    if times is not None and len(times) and inside:
        return np.asarray(times, dtype=float)[t]
    interval = meta.get("time_interval")
    return None if interval is None else t * float(interval)


def declares_time(tif, index: int = 0) -> bool:
    """Whether series ``index`` of ``tif`` is a time series by its OME or ImageJ metadata (a
    frame interval: OME ``TimeIncrement``, ImageJ ``finterval``), even of one time point,
    which tifffile's axes leave out (a size-1 ``T``).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, tifffile
    >>> from sciconv.io._tiff_meta import declares_time
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "one_frame.ome.tif"
    >>> tifffile.imwrite(p, np.zeros((1, 8, 8), "uint16"), ome=True,
    ...                  metadata={"axes": "TYX", "TimeIncrement": 30.0})
    >>> with tifffile.TiffFile(p) as tif:
    ...     tif.series[0].axes, declares_time(tif)
    ('YX', True)
    """
    try:
        if tif.is_ome and tif.ome_metadata:
            meta = _ome_meta(tif.ome_metadata, index, len(tif.series))
        elif tif.is_imagej and tif.imagej_metadata:
            ij = tif.imagej_metadata
            meta = time_interval(ij.get("finterval"), ij.get("tunit", "s"))
        else:
            return False
    except Exception:  # metadata not understood (read says so): no time axis declared
        return False
    return "time_interval" in meta


def _imagej_meta(ij: dict, page) -> dict:
    meta: dict = {"imagej": True}
    unit = length_unit(ij.get("unit", "pixel"))
    tags = page.tags
    if "XResolution" in tags and "YResolution" in tags:
        rx, ry = (tags[k].value for k in ("XResolution", "YResolution"))
        rx, ry = rx[0] / rx[1], ry[0] / ry[1]
        inch = unit.lower() in ("inch", "in")  # ImageJ's calibration of a 72-dpi file
        if inch and rx == ry and rx in _SCREEN_DPI:
            unit = "pixel"  # a screen convention, not a measurement (as for plain TIFF)
        if rx > 0 and ry > 0 and unit not in ("pixel", ""):
            to = 25400.0 if inch else 1.0  # inches in µm: OME and astropy know no "inch"
            meta["pixel_size"] = (to / ry, to / rx)
            meta["pixel_unit"] = "µm" if inch else unit
            meta["pixel_size_from"] = "ImageJ resolution and unit"
            if ij.get("spacing") is not None:
                meta["z_spacing"] = float(ij["spacing"]) * to
    meta.update(time_interval(ij.get("finterval"), ij.get("tunit", "s")))
    labels = ij.get("Labels")
    channels = int(ij.get("channels", 1) or 1)
    if isinstance(labels, (list, tuple)) and channels > 1 and len(labels) % channels == 0:
        first = [str(n) for n in labels[:channels]]
        if [str(n) for n in labels] == first * (len(labels) // channels):  # one per page
            meta["channel_names"] = first
    return meta


#: Dots per inch of screens, which image editors write by default and screenshots carry (72 and
#: 96; 120, 144 and 192 for displays scaled 125 %, 150 % and 200 %, and Retina screenshots): a
#: display convention, never the size of what was imaged (QA: a 144-dpi screenshot of a
#: micrograph read as 176 µm pixels)
_SCREEN_DPI = (72.0, 96.0, 120.0, 144.0, 192.0)
_RESOLUTION_UNITS = {2: ("inch", 25400.0), 3: ("centimeter", 10000.0)}  # -> µm per unit


def _resolution_meta(page) -> dict:
    """Pixel size in µm from the baseline XResolution/YResolution + ResolutionUnit tags.

    Only a stated unit counts: ResolutionUnit NONE (what tifffile writes by default) or absent
    says nothing about physical size, nor do the screen resolutions of image editors and
    screenshots (:data:`_SCREEN_DPI`).
    """
    tags = page.tags
    if not all(k in tags for k in ("XResolution", "YResolution", "ResolutionUnit")):
        return {}
    unit = _RESOLUTION_UNITS.get(int(tags["ResolutionUnit"].value))
    if unit is None:
        return {}
    rx, ry = (tags[k].value for k in ("XResolution", "YResolution"))
    rx, ry = rx[0] / rx[1], ry[0] / ry[1]
    if rx <= 0 or ry <= 0 or (unit[0] == "inch" and rx == ry and rx in _SCREEN_DPI):
        return {}
    return {
        "pixel_size": (unit[1] / ry, unit[1] / rx),
        "pixel_unit": "µm",
        "pixel_size_from": f"resolution tags (pixels per {unit[0]})",
    }


#: Metres per GeoTIFF linear unit (``ProjLinearUnitsGeoKey``, EPSG unit codes): metre, foot,
#: US survey foot, kilometre, nautical mile, Clarke's foot, Indian foot.
_GEO_LINEAR_UNITS = {
    9001: 1.0,
    9002: 0.3048,
    9003: 1200.0 / 3937.0,
    9036: 1000.0,
    9030: 1852.0,
    9005: 0.3047972654,
    9080: 0.30479951,
}
_GEO_USER_DEFINED = 32767


def geotiff_meta(page, path: str = "") -> dict:
    """Pixel size in metres from a GeoTIFF's ``ModelPixelScaleTag`` (33550), when its GeoKeys
    say the CRS is projected (``GTModelTypeGeoKey`` 1, or a ``ProjectedCSTypeGeoKey``), in
    ``ProjLinearUnitsGeoKey`` (metres when absent, as for most projected CRSs; feet and
    kilometres converted; a user-defined unit by ``ProjLinearUnitSizeGeoKey``); ``{}`` else.

    Geographic CRSs give degrees of longitude and latitude on the Earth, not a length: no
    scale. A projected CRS in a unit this does not know warns and gives none.

    Parameters
    ----------
    page : tifffile.TiffPage
        The first page of the series read (tifffile decodes its GeoKeys).
    path : str, optional
        The file, named in the warning.

    Returns
    -------
    dict
        ``pixel_size`` ``(dy, dx)``, ``pixel_unit`` ``"m"`` and ``pixel_size_from``, or ``{}``.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, tifffile
    >>> from sciconv.io._tiff_meta import geotiff_meta
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "utm.tif"
    >>> keys = (1, 1, 0, 2, 1024, 0, 1, 1, 3072, 0, 1, 32611)  # projected, UTM 11N
    >>> tifffile.imwrite(p, np.zeros((4, 4), "uint8"), extratags=[
    ...     (33550, "d", 3, (30.0, 30.0, 0.0)), (34735, "H", len(keys), keys)])
    >>> with tifffile.TiffFile(p) as tif:
    ...     geotiff_meta(tif.pages[0])["pixel_size"]
    (30.0, 30.0)
    """
    if not getattr(page, "is_geotiff", False):
        return {}
    geo = page.geotiff_tags or {}
    scale = geo.get("ModelPixelScale")
    if scale is None or len(scale) < 2:
        return {}
    model = geo.get("GTModelTypeGeoKey")
    pcs = geo.get("ProjectedCSTypeGeoKey")
    if not (model is not None and int(model) == 1) and not (model is None and pcs is not None):
        return {}  # geographic (degrees on the Earth), geocentric or unstated: not a pixel length
    code = geo.get("ProjLinearUnitsGeoKey")
    code = 9001 if code is None else int(code)
    metres = _GEO_LINEAR_UNITS.get(code)
    if code == _GEO_USER_DEFINED:
        metres = geo.get("ProjLinearUnitSizeGeoKey")
    sx, sy = float(scale[0]), float(scale[1])
    if not (isinstance(metres, (int, float)) and metres > 0 and sx > 0 and sy > 0):
        warn_caller(
            f"{path}: GeoTIFF pixel scale ignored: linear unit {code} "
            f"(ProjLinearUnitsGeoKey) or ModelPixelScale {list(scale)[:2]} not understood"
        )
        return {}
    crs = "" if pcs is None else f", EPSG:{int(pcs)}"
    return {
        "pixel_size": (sy * metres, sx * metres),
        "pixel_unit": "m",
        "pixel_size_from": f"GeoTIFF ModelPixelScaleTag (projected CRS{crs}, in metres)",
    }
