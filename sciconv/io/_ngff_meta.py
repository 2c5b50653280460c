"""What an OME-Zarr store's NGFF metadata says of its pixels: where a reduced level sits in
level 0 (:func:`level_frame`), the pixel size, plane spacing and frame interval
(:func:`physical_meta`), with each level's ``coordinateTransformations`` composed with the
multiscale's own (:func:`node_metadata`). Read by :mod:`sciconv.io._zarr`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sciconv.io._tiff_units import UNIT_METRES, convert_length, length_unit, time_interval

__all__ = ["NGFF_UNITS", "level_frame", "node_metadata", "physical_meta"]

#: NGFF length units -> sciconv's (astropy's, with µm and Å)
NGFF_UNITS = {
    "meter": "m",
    "centimeter": "cm",
    "millimeter": "mm",
    "micrometer": "µm",
    "nanometer": "nm",
    "angstrom": "Å",
    "picometer": "pm",
}


def level_frame(metadata: dict, letters: str, level: int, levels: list) -> dict:
    """Where a reduced resolution level sits in level 0: its pixel size and pixel-edge origin.

    From the NGFF scale and translation of the level and of level 0 (a level of 2 x 2 means,
    translated by half a level-0 pixel, has offset 0); without them the ratio of the two
    levels' shapes. The keys of :data:`sciconv.io._pyramid.FRAME_KEYS`.

    Parameters
    ----------
    metadata : dict
        The node's metadata (:func:`node_metadata`).
    letters : str
        The axis letters (``"TCZYX"``).
    level : int
        The level read.
    levels : list of tuple
        Every level's shape.

    Returns
    -------
    dict
        ``level_downsample`` and ``level_offset`` (y, x), in level-0 pixels; ``{}`` for level 0.

    Examples
    --------
    >>> scales = [[{"type": "scale", "scale": s}] for s in ([1.0, 1.0], [2.0, 2.0])]
    >>> frame = level_frame({"coordinateTransformations": scales}, "YX", 1, [(8, 8), (4, 4)])
    >>> frame["level_downsample"], frame["level_offset"]
    ((2.0, 2.0), (-0.5, -0.5))
    """
    if level == 0:
        return {}
    iy, ix = letters.index("Y"), letters.index("X")
    try:
        transforms = metadata.get("coordinateTransformations") or []
        first, this = transforms[0], transforms[level]

        def member(kind, items):
            return next((t[kind] for t in items if t.get("type") == kind), None)

        s0, sk = member("scale", first), member("scale", this)
        t0 = member("translation", first) or [0.0] * len(s0)
        tk = member("translation", this) or [0.0] * len(sk)
        down = [float(sk[i]) / float(s0[i]) for i in (iy, ix)]
        # level k's pixel centre j is at tk + sk j; its edge e = j + 0.5 in level-0 edges
        offset = [(float(tk[i]) - float(t0[i])) / float(s0[i]) + 0.5 - 0.5 * f
                  for i, f in zip((iy, ix), down)]  # fmt: skip
    except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError, AttributeError):
        down, offset = [0.0, 0.0], [0.0, 0.0]
    if not (all(np.isfinite(down + offset)) and min(down) > 0):
        down = [levels[0][i] / levels[level][i] for i in (iy, ix)]
        offset = [0.0, 0.0]
    return {
        "level_downsample": tuple(round(v, 9) for v in down),
        "level_offset": tuple(round(v, 9) + 0.0 for v in offset),  # + 0.0: no -0.0
    }


def node_metadata(node) -> dict:
    """A multiscale node's ``metadata`` with each level's ``coordinateTransformations``
    composed with the multiscale's own, which NGFF 0.4 and 0.5 apply after them.

    ome-zarr-py's ``node.metadata["coordinateTransformations"]`` holds the datasets' transforms
    only; ``multiscales[0]["coordinateTransformations"]`` (a frame interval, a plane spacing,
    or a pixel size common to every level) then scales and shifts them: a level's scale
    becomes ``outer * scale`` and its translation ``outer * translation + outer_translation``.
    Without that element, or with one whose length is not the axes', the metadata as given.

    Parameters
    ----------
    node : ome_zarr.reader.Node
        A multiscale image node (:func:`ome_zarr.reader.Reader`'s).

    Returns
    -------
    dict
        The metadata; a new dict where transforms were composed, ``node.metadata`` otherwise.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> levels = [[{"type": "scale", "scale": [1.0, 0.5, 0.5]}]]
    >>> outer = [{"type": "scale", "scale": [30.0, 2.0, 2.0]}]
    >>> attrs = {"multiscales": [{"coordinateTransformations": outer}]}
    >>> node = SimpleNamespace(metadata={"coordinateTransformations": levels},
    ...                        zarr=SimpleNamespace(root_attrs=attrs))
    >>> node_metadata(node)["coordinateTransformations"]
    [[{'type': 'scale', 'scale': [30.0, 1.0, 1.0]}]]
    """
    metadata = node.metadata
    try:
        attrs = dict(node.zarr.root_attrs or {})
        multiscales = (attrs.get("ome") or attrs).get("multiscales") or [{}]
        outer = multiscales[0].get("coordinateTransformations") or []
        levels = metadata.get("coordinateTransformations") or []
        composed = [_compose_transforms(list(t), list(outer)) for t in levels]
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return metadata  # no readable multiscale-level transforms: the datasets' alone
    if not outer or not levels:
        return metadata
    return {**metadata, "coordinateTransformations": composed}


def _compose_transforms(inner: list, outer: list) -> list:
    """One level's NGFF transforms followed by the multiscale's ``outer`` ones, as one scale
    and one translation (``inner`` as it is where the lengths differ)."""

    def member(kind, items):
        found = next((t[kind] for t in items if t.get("type") == kind), None)
        return None if found is None else [float(v) for v in found]

    scale_i, scale_o = member("scale", inner), member("scale", outer)
    shift_i, shift_o = member("translation", inner), member("translation", outer)
    n = len(scale_i or scale_o or shift_i or shift_o or [])
    if any(v is not None and len(v) != n for v in (scale_i, scale_o, shift_i, shift_o)):
        return inner
    scale_i, scale_o = scale_i or [1.0] * n, scale_o or [1.0] * n
    out = [{"type": "scale", "scale": [a * b for a, b in zip(scale_o, scale_i)]}]
    if shift_i is not None or shift_o is not None:
        shift_i, shift_o = shift_i or [0.0] * n, shift_o or [0.0] * n
        shift = [so * ti + to for so, ti, to in zip(scale_o, shift_i, shift_o)]
        out.append({"type": "translation", "translation": shift})
    return out


def physical_meta(metadata: dict, names: list[str], level: int, path: Path) -> dict:
    """Pixel size, unit, plane spacing, frame interval and channel names of one level.

    From the NGFF ``multiscales`` (a level's ``scale``, composed with the multiscale's own
    by :func:`node_metadata`) and ``omero`` metadata: the ``y``/``x`` scales as
    ``pixel_size`` in ``pixel_unit``, a ``z`` axis's as ``z_spacing`` (in the pixel unit) and a
    ``t`` axis's as ``time_interval`` (seconds), where their units say what they are, as a
    TIFF's metadata fill them (:mod:`sciconv.io._tiff_meta`). What cannot be read is left out.

    Parameters
    ----------
    metadata : dict
        The node's metadata (:func:`node_metadata`).
    names : list of str
        The axis names (``["t", "c", "z", "y", "x"]``).
    level : int
        The level read.
    path : pathlib.Path
        The store (for messages).

    Returns
    -------
    dict
        Some of ``pixel_size``, ``pixel_unit``, ``z_spacing``, ``time_interval``,
        ``channel_names``.

    Examples
    --------
    >>> from pathlib import Path
    >>> axes = [{"name": "t", "unit": "second"}, {"name": "y", "unit": "micrometer"},
    ...         {"name": "x", "unit": "micrometer"}]
    >>> meta = {"axes": axes, "coordinateTransformations": [[{"type": "scale",
    ...                                                        "scale": [30.0, 0.5, 0.5]}]]}
    >>> out = physical_meta(meta, ["t", "y", "x"], 0, Path("movie.zarr"))
    >>> out["pixel_size"], out["pixel_unit"], out["time_interval"]
    ((0.5, 0.5), 'µm', 30.0)
    """
    out: dict = {}
    try:
        transforms = (metadata.get("coordinateTransformations") or [])[level]
        scale = next((t["scale"] for t in transforms if t.get("type") == "scale"), None)
        axes = metadata.get("axes") or []

        def unit_of(i):
            unit = axes[i].get("unit") if i < len(axes) and isinstance(axes[i], dict) else None
            return NGFF_UNITS.get(unit, unit) if unit else None

        if scale is not None and "y" in names and "x" in names:
            iy, ix = names.index("y"), names.index("x")
            out["pixel_size"] = (float(scale[iy]), float(scale[ix]))
            out["pixel_unit"] = unit_of(ix) or "pixel"
            out.update(_plane_steps(scale, names, unit_of, out["pixel_unit"]))
        names_c = metadata.get("channel_names")
        if names_c:
            out["channel_names"] = [str(n) for n in names_c]
    except (IndexError, KeyError, TypeError, ValueError):
        pass
    return out


def _plane_steps(scale, names: list[str], unit_of, pixel_unit: str) -> dict:
    """``z_spacing`` (the ``z`` scale in ``pixel_unit``, both lengths) and ``time_interval``
    (the ``t`` scale in seconds, in a stated time unit) of an NGFF scale; an axis without a unit
    gives nothing (a scale of 1 in no unit is ome-zarr-py's default, not a measurement)."""
    out: dict = {}
    letters = [str(n).upper()[:1] for n in names]
    if "Z" in letters:
        iz = letters.index("Z")
        step, unit = float(scale[iz]), length_unit(unit_of(iz) or "")
        if unit in UNIT_METRES and pixel_unit in UNIT_METRES and step > 0 and np.isfinite(step):
            out["z_spacing"] = convert_length(step, unit, pixel_unit)
    if "T" in letters and unit_of(letters.index("T")):
        it = letters.index("T")
        out.update(time_interval(scale[it], unit_of(it)))
    return out
