"""``sciconv predict``'s files given beside each input: ``--mask`` (bad pixels) and
``--uncertainty-file`` (per-pixel errors, with ``--uncertainty-type``), each one file for every
input or a name with ``{stem}`` and ``{dir}`` filled in per input; checked before any input is
segmented.

Examples
--------
>>> import argparse
>>> args = argparse.Namespace(uncertainty_file="{dir}/{stem}_invvar.fits", uncertainty_type="ivar")
>>> side_name(Path("data/a.fits"), args.uncertainty_file, "--uncertainty-file").as_posix()
'data/a_invvar.fits'
"""

from __future__ import annotations

import os
from pathlib import Path

from sciconv.errors import ConfigError
from sciconv.io._files import find_same_name

__all__ = [
    "SIDE_OPTIONS",
    "check_side_options",
    "refuse_side_products",
    "side_file",
    "side_name",
    "uncertainty_args",
    "uncertainty_file",
]

#: The options naming a file beside each input: option -> its ``args`` attribute.
SIDE_OPTIONS = {"--mask": "mask", "--uncertainty-file": "uncertainty_file"}


def side_name(path: Path, template: str, option: str) -> Path:
    """``template`` for the input ``path``: its name as it is when it has no ``{stem}`` or
    ``{dir}`` and exists (braces and all), else with the input's stem and folder filled in.

    Examples
    --------
    >>> side_name(Path("x/b.fits"), "/cal/bpm.fits", "--mask").as_posix()
    '/cal/bpm.fits'
    """
    from sciconv import io

    literal = Path(template).expanduser()
    if "{stem}" not in template and "{dir}" not in template and literal.is_file():
        return literal  # one file whose name holds braces (QA: '/cal/{2024}/bpm.fits' refused)
    try:
        name = template.format(stem=io.image_stem(path), dir=path.parent)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"{option} {template!r}: only {{stem}} and {{dir}} can be filled in ({exc})"
        ) from exc
    return Path(name).expanduser()


def side_file(path: Path, template: str | None, option: str) -> Path | None:
    """The file ``option`` (``--mask``, ``--uncertainty-file``) names for the input ``path``
    (:func:`side_name`), None without the option; a missing file is refused naming the input.

    Examples
    --------
    >>> side_file(Path("a.fits"), None, "--mask") is None
    True
    >>> side_file(Path("d/a.fits"), "{dir}/{stem}_std.fits", "--uncertainty-file")
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: d/a.fits: --uncertainty-file: no file d/a_std.fits for this input
    """
    if template is None:
        return None
    found = side_name(path, template, option)
    if not found.is_file():  # é as e + U+0301 (a Mac's) in the template, the input or the file
        found = find_same_name(found) or found
    if not found.is_file():
        raise ConfigError(f"{option}: no file {found} for this input", path=path)
    return found


def uncertainty_file(path: Path, args) -> Path | None:
    """``--uncertainty-file`` for the input ``path`` (:func:`side_file`).

    Examples
    --------
    >>> import argparse
    >>> uncertainty_file(Path("a.fits"), argparse.Namespace(uncertainty_file=None)) is None
    True
    """
    return side_file(path, getattr(args, "uncertainty_file", None), "--uncertainty-file")


def uncertainty_args(path: Path, args) -> dict:
    """``uncertainty=`` and ``uncertainty_type=`` of :func:`sciconv.io.read` for the input
    ``path`` (empty without ``--uncertainty-file``).

    Examples
    --------
    >>> import argparse
    >>> uncertainty_args(Path("a.fits"), argparse.Namespace(uncertainty_file=None))
    {}
    """
    found = uncertainty_file(path, args)
    if found is None:
        return {}
    return {"uncertainty": found, "uncertainty_type": getattr(args, "uncertainty_type", None)}


def check_side_options(args) -> None:
    """``--uncertainty-type`` without ``--uncertainty-file``: a usage error, before any input.

    Examples
    --------
    >>> import argparse
    >>> check_side_options(argparse.Namespace(uncertainty_file=None, uncertainty_type="ivar"))
    Traceback (most recent call last):
    ...
    sciconv.errors.ConfigError: --uncertainty-type ivar says what --uncertainty-file holds; ...
    """
    kind = getattr(args, "uncertainty_type", None)
    if kind is not None and getattr(args, "uncertainty_file", None) is None:
        raise ConfigError(
            f"--uncertainty-type {kind} says what --uncertainty-file holds; give the file too "
            "(e.g. --uncertainty-file '{dir}/{stem}_invvar.fits')"
        )


def refuse_side_products(paths, args, products) -> None:
    """Refuse a ``--mask`` or ``--uncertainty-file`` file that is also a product this run writes
    (``{stem}_mask.tif`` is the TIFF products' own mask name, ``{stem}_uncert.tif`` their
    uncertainty's): it would be replaced, or removed with ``--overwrite``.

    Examples
    --------
    >>> import argparse
    >>> args = argparse.Namespace(mask=None, uncertainty_file=None)
    >>> refuse_side_products([Path("a.png")], args, [{"mask": Path("o/a_mask.tif")}])
    """
    given = {o: getattr(args, a, None) for o, a in SIDE_OPTIONS.items()}
    if not any(v is not None for v in given.values()):
        return
    written = {
        Path(os.path.abspath(f))
        for group in products  # {kind: path} of planned products, [path] of sidecars
        for f in (group.values() if isinstance(group, dict) else group)
    }
    for path in paths:
        for option, template in given.items():
            found = side_file(path, template, option)
            if found is not None and Path(os.path.abspath(found)) in written:
                what = "mask" if option == "--mask" else "error file"
                raise ConfigError(
                    f"{option} {found} is also a file this run writes (a product's name); "
                    f"rename the {what} or choose another --out",
                    path=path,
                )
