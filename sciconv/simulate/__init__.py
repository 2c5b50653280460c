"""Seeded synthetic telescope and microscopy images with ground truth.

Everything here is deterministic for a given ``seed`` and physically sensible enough for tests,
notebooks and the demo:

- :func:`galaxy_cutouts`: small telescope cutouts of three morphology classes (Sérsic n~4
  ellipticals, n~1 disks with two logarithmic spiral arms and a small bulge, point sources),
  convolved with a Moffat PSF, on a sky background, with Poisson and read noise, digitized to ADU;
- :func:`sky_field`: a large field (2048 x 2048 by default) of stars and galaxies with a TAN WCS
  and a truth catalog (pixel and RA/Dec); each source is rendered in its own postage stamp, so the
  whole field takes about a second;
- :func:`nuclei`: fluorescence-microscopy-like nuclei (touching and overlapping, irregular,
  textured, blurred, Poisson noise) with int32 instance labels, optionally with a second cytoplasm
  channel.

Profiles come from :mod:`astropy.modeling` (``Sersic2D``, ``Moffat2D``). Pixel coordinates are
0-based with integer values at pixel centres (numpy and ``WCS.pixel_to_world`` convention).

Examples
--------
>>> from sciconv.simulate import galaxy_cutouts
>>> images, labels, class_names, params = galaxy_cutouts(2, size=32, seed=1)
>>> images.shape, images.dtype, class_names
((6, 32, 32, 1), dtype('float32'), ['elliptical', 'point', 'spiral'])
"""

from sciconv.simulate._cutouts import GALAXY_CLASSES, GALAXY_SHAPES, galaxy_cutouts
from sciconv.simulate._nuclei import nuclei
from sciconv.simulate._sky import cutout_header, sky_field, tan_wcs

__all__ = [
    "GALAXY_CLASSES",
    "GALAXY_SHAPES",
    "cutout_header",
    "galaxy_cutouts",
    "nuclei",
    "sky_field",
    "tan_wcs",
]
