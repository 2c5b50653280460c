"""napari plugin (npe2): open FITS, TIFF and OME-Zarr, and segment nuclei with the pretrained model.

Install with ``pip install "sciconv[napari]"``; napari finds the plugin through the
``napari.manifest`` entry point (``sciconv/napari/napari.yaml``): *File > Open* reads FITS (the
WCS in the layer's ``metadata``), TIFF and OME-Zarr stores (the image and its NGFF label images,
e.g. ``sciconv predict --format ome-zarr``; napari's own reader also offers itself for folders,
so choose *sciconv*, or ``viewer.open(store, plugin="sciconv")``) through
:func:`sciconv.io.read`, and
*Plugins > sciconv > Segment nuclei* adds a Labels layer. The functions behind them return napari
layer data tuples and need neither napari nor Qt.

Software OpenGL (Mesa llvmpipe, as in VMs, remote desktops and Xvfb) and TensorFlow crash each other
in one process on the machines this was tested on (TensorFlow loaded after napari's OpenGL
segfaults; so does llvmpipe drawing after TensorFlow). There, start napari with TensorFlow loaded
first and Mesa's softpipe renderer:
``GALLIUM_DRIVER=softpipe python -c "import tensorflow, napari; napari.run()"``. Hardware OpenGL
drivers are not affected.

Examples
--------
>>> from sciconv.napari import napari_get_reader
>>> napari_get_reader("table.csv") is None
True
"""

from __future__ import annotations

from sciconv.napari._reader import READ_EXTENSIONS, napari_get_reader, read_layers, wcs_summary
from sciconv.napari._widget import nuclei_model, nuclei_widget, segment_nuclei

__all__ = [
    "READ_EXTENSIONS",
    "napari_get_reader",
    "nuclei_model",
    "nuclei_widget",
    "read_layers",
    "segment_nuclei",
    "wcs_summary",
]
