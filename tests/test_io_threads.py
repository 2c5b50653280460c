"""Images read from several threads at once (dask's threaded scheduler, web workers): the same
pixels as one thread reads (QA: lazy .fits.gz windows came back mixed, 5 % of a mosaic's
pixels wrong, no error)."""

from __future__ import annotations

import gzip
import threading

import numpy as np
from astropy.io import fits

from sciconv import io


def test_lazy_gzipped_fits_windows_read_from_threads_are_the_pixels(tmp_path, monkeypatch):
    import sciconv.io._gzip_windows as gz_mod

    # the compressed stream itself (no temporary copy: a full temporary folder)
    monkeypatch.setattr(gz_mod, "gunzipped_copy", lambda path: None)
    monkeypatch.setattr("sciconv.io._fits_stream.COPY_SHARE_OF_FREE_SPACE", 0.0)  # none at opening
    rng = np.random.default_rng(0)
    data = rng.normal(100, 10, (128, 128)).astype(np.float32)
    dq = (rng.random((128, 128)) < 0.05).astype(np.int16) * 4
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, name="SCI")])
    hdul.append(fits.ImageHDU(dq, name="DQ"))
    path = tmp_path / "flt.fits.gz"
    with gzip.open(path, "wb") as out:
        hdul.writeto(out)
    eager = io.read(path, hdu="SCI").data
    assert np.isnan(eager).sum() == (dq != 0).sum()  # the DQ plane read as bad pixels
    lazy = io.read(path, hdu="SCI", lazy=True).data
    wrong, errors = [], []
    start = threading.Barrier(4)

    def cut(seed):
        r = np.random.default_rng(seed)
        start.wait()
        for _ in range(5):
            y, x = r.integers(0, 96, 2)
            try:
                got = lazy[y : y + 32, x : x + 32]
            except Exception as err:  # pragma: no cover - the failure being tested
                errors.append(err)
                continue
            if not np.array_equal(got, eager[y : y + 32, x : x + 32], equal_nan=True):
                wrong.append((y, x))

    threads = [threading.Thread(target=cut, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lazy.close()
    assert not errors and not wrong, (errors[:1], len(wrong))
