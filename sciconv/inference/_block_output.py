"""Where block-wise labels go: memory, a ``.npy`` memory map or a zarr array, written atomically.

The labels of :func:`~sciconv.inference.predict_instances_blocks` are pasted window by window
into a hidden scratch file next to the target, renamed onto it when the last block is done; a
failed or interrupted run leaves the target as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sciconv._atomic import abandon_scratch, remove_scratch, scratch_folder, target_error
from sciconv.errors import InferenceError, OutputExistsError
from sciconv.io import ZARR_ARRAY_ATTRS
from sciconv.io._common import warn_caller
from sciconv.io._zarr import zarr_module


class BlockOutput:
    """Where the labels go: a numpy array, a ``.npy`` memmap or a zarr array, written atomically.

    Examples
    --------
    >>> import numpy as np
    >>> output = BlockOutput(None, (4, 6), chunk=4, overwrite=False)
    >>> output.paste(np.array([[1, 0], [1, 2]], np.int32), (1, 3), offset=10)
    >>> output.finish(False)[1:3, 3:5].tolist()
    [[11, 0], [11, 12]]
    """

    def __init__(self, out, shape: tuple[int, int], *, chunk: int, overwrite: bool):
        self.final = None
        self.tmp = None
        #: objects pasted over an earlier block's objects, the pixels they took, the first one
        self.overlap_objects, self.overlap_pixels, self.first_overlap = 0, 0, None
        if out is None:
            self.array = np.zeros(shape, dtype=np.int32)
            return
        if not isinstance(out, (str, os.PathLike)):
            raise InferenceError(
                f"out must be None or a path ending in .zarr or .npy; got {type(out).__name__}"
            )
        path = Path(out)
        if path.suffix not in (".zarr", ".npy"):
            raise InferenceError("out must name a .zarr store or a .npy file", path=path)
        if path.exists() and not overwrite:
            raise OutputExistsError("output exists; pass overwrite=True to replace it", path=path)
        self.final = path
        # a hidden scratch folder next to the target; a killed run's is swept by the next write
        self.tmp = scratch_folder(path) / path.name
        try:
            if path.suffix == ".npy":
                self.array = np.lib.format.open_memmap(
                    self.tmp, mode="w+", dtype=np.int32, shape=shape
                )
            else:
                self.array = zarr_module(path).create_array(
                    store=str(self.tmp),
                    shape=shape,
                    chunks=(chunk, chunk),
                    dtype="int32",
                    fill_value=0,
                    dimension_names=("y", "x"),  # NGFF 0.5 asks its levels to name their axes
                )
        except BaseException as err:  # also Ctrl-C or SIGTERM before the caller's clean-up
            self.abort()
            if isinstance(err, OSError):
                self._refused(err)
            raise

    def paste(self, labels: np.ndarray, origin: tuple[int, int], offset: int) -> None:
        y0, x0 = origin
        region = (slice(y0, y0 + labels.shape[0]), slice(x0, x0 + labels.shape[1]))
        current = np.asarray(self.array[region])
        mask = labels > 0
        clash = mask & (current > 0)  # pixels an earlier block's object already holds
        if clash.any():
            if not self.overlap_pixels:
                ys, xs = np.nonzero(clash)
                self.first_overlap = (y0 + int(ys[0]), x0 + int(xs[0]))
            self.overlap_pixels += int(clash.sum())
            self.overlap_objects += len(np.unique(labels[clash]))
        current[mask] = labels[mask] + offset
        try:
            self.array[region] = current
        except OSError as err:  # full disk, quota: name the target, not the scratch folder
            self._refused(err)
            raise

    def _refused(self, err: OSError) -> None:
        """Raise the WriteError naming the target if ``err`` is the disk refusing a write."""
        if self.final is not None:
            mapped = target_error(err, self.tmp.parent, self.final)
            if mapped is not None:
                raise mapped from err

    def finish(self, overwrite: bool, attrs: dict | None = None):
        if self.final is None:
            return self.array
        holder = self.tmp.parent
        done = False
        try:
            if isinstance(self.array, np.memmap):
                self.array.flush()
            elif attrs:  # zarr: the WCS and pixel size travel with the labels (io.read reads them)
                self.array.attrs[ZARR_ARRAY_ATTRS] = attrs
            del self.array
            if self.final.exists():
                if not overwrite:
                    raise OutputExistsError(
                        "output appeared while writing; not replaced", path=self.final
                    )
                old = holder / (self.final.name + ".old")
                os.replace(self.final, old)
            os.replace(self.tmp, self.final)
            done = True
        except OSError as err:
            self._refused(err)
            raise
        finally:  # failed or interrupted: zarr's I/O thread may still write into it
            (remove_scratch if done else abandon_scratch)(holder)
        if self.final.suffix == ".npy":
            return np.load(self.final, mmap_mode="r")
        zarr = zarr_module(self.final)
        return zarr.open_array(str(self.final), mode="r")

    def abort(self):
        if self.tmp is not None:
            self.array = None
            abandon_scratch(self.tmp.parent)


__all__ = ["BlockOutput", "report_overlaps"]


def report_overlaps(output: BlockOutput, margin: int) -> None:
    """Say when objects two blocks kept overlap (the later block's pixels stand there, and the
    earlier object's catalog row counts pixels the labels no longer give it)."""
    if not output.overlap_pixels:
        return
    y, x = output.first_overlap
    warn_caller(
        f"{output.overlap_objects} object(s) of a block overlapped objects a neighbouring block "
        f"kept, by {output.overlap_pixels} px in all (the first at row {y}, column {x}): the "
        "two windows labelled them differently near their edges; the later block's labels "
        "stand there (a catalog without background subtraction still counts those pixels in "
        "the earlier object's row). A wider "
        f"margin (margin=, now {margin} px) gives each window more context",
        "sciconv",
    )
