"""Length and time units as TIFF metadata spell them (OME, ImageJ, vendors), in sciconv's names."""

from __future__ import annotations

import numpy as np

_UNIT_ALIASES = {
    "um": "µm",
    "micron": "µm",
    "microns": "µm",
    "\u03bcm": "µm",  # Greek mu -> micro sign
    "\\u00b5m": "µm",  # ImageJ writes the micro sign as this escape
}
#: Metres per length unit, by the names :func:`length_unit` gives.
UNIT_METRES = {"m": 1.0, "cm": 1e-2, "mm": 1e-3, "µm": 1e-6, "nm": 1e-9, "Å": 1e-10, "pm": 1e-12}


def length_unit(name) -> str:
    """A length unit's name as sciconv spells it (``"um"``, ``"micron"`` -> ``"µm"``); other
    names as they are.

    Examples
    --------
    >>> length_unit("micron"), length_unit("nm"), length_unit("pixel")
    ('µm', 'nm', 'pixel')
    """
    name = str(name).strip()
    return _UNIT_ALIASES.get(name.lower(), _UNIT_ALIASES.get(name, name))


def convert_length(value: float, unit: str, to: str) -> float:
    """``value`` in ``unit`` as a length in ``to`` (names of :data:`UNIT_METRES`); unchanged
    where either is not a length unit.

    Examples
    --------
    >>> round(convert_length(500.0, "nm", "µm"), 12), convert_length(3.0, "px", "µm")
    (0.5, 3.0)
    """
    if unit == to or unit not in UNIT_METRES or to not in UNIT_METRES:
        return value
    return value * UNIT_METRES[unit] / UNIT_METRES[to]


#: seconds per time unit, for the frame interval of OME (``TimeIncrementUnit``), ImageJ
#: (``tunit``) and NGFF (an OME-Zarr ``t`` axis's ``unit``) metadata
_TIME_SECONDS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("ds", "decisecond", "deciseconds"), 0.1),
    **dict.fromkeys(("cs", "centisecond", "centiseconds"), 1e-2),
    **dict.fromkeys(("ms", "msec", "millisecond", "milliseconds"), 1e-3),
    **dict.fromkeys(("us", "µs", "\u03bcs", "\\u00b5s", "microsecond", "microseconds"), 1e-6),
    **dict.fromkeys(("ns", "nanosecond", "nanoseconds"), 1e-9),
    **dict.fromkeys(("ps", "picosecond", "picoseconds"), 1e-12),
    **dict.fromkeys(("ks", "kilosecond", "kiloseconds"), 1e3),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
}


def time_seconds(value, unit) -> float | None:
    """``value`` in the time ``unit`` (``"ms"``, ``"min"``, NGFF's ``"millisecond"``, ...; the
    OME default ``"s"`` when None) in seconds, or None for a value that is not a finite number
    or a unit that is not a time.

    Examples
    --------
    >>> time_seconds("1.5", "min"), time_seconds(0, "millisecond"), time_seconds(3, "furlong")
    (90.0, 0.0, None)
    """
    try:
        seconds = float(value) * _TIME_SECONDS[str(unit or "s").strip().lower()]
    except (TypeError, ValueError, KeyError):
        return None
    return seconds if np.isfinite(seconds) else None


def time_interval(value, unit) -> dict:
    """``{"time_interval": seconds}`` for a positive frame interval in a known time unit; empty
    for anything else.

    Examples
    --------
    >>> time_interval(250, "ms"), time_interval(0, "s")
    ({'time_interval': 0.25}, {})
    """
    seconds = time_seconds(value, unit)
    return {"time_interval": seconds} if seconds is not None and seconds > 0 else {}
