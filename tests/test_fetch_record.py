"""The SHA-256 record of a download without a published checksum (QA52 #8): written atomically,
an empty or torn record is no record (the file is checked by its structure again, not called
damaged for ever), and a cache folder that fills just after the download is named in a
WriteError instead of a bare OSError."""

from __future__ import annotations

import errno
import hashlib
import io
import pathlib
import zipfile

import numpy as np
import pytest

import sciconv.fetch as fetch_mod
from sciconv.errors import DownloadError, WriteError
from sciconv.fetch import fetch

FNAME = "stage1_train.zip"
RECORD = f".{FNAME}.sha256"


def _dsb_zip() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for iid in ("aaaa", "bbbb"):
            png = io.BytesIO()
            Image.fromarray(np.full((8, 8), 90, np.uint8)).save(png, format="PNG")
            zf.writestr(f"{iid}/images/{iid}.png", png.getvalue())
            zf.writestr(f"{iid}/masks/m1.png", png.getvalue())
    return buf.getvalue()


@pytest.fixture
def served(server, monkeypatch):
    """The DSB2018-shaped zip served on 127.0.0.1 (conftest's server) and registered as
    "dsb2018"."""
    base, files, _ = server
    body = files["/" + FNAME] = _dsb_zip()
    entry = {"url": f"{base}/{FNAME}", "fname": FNAME, "known_hash": None}
    monkeypatch.setitem(fetch_mod.REGISTRY, "dsb2018", entry)
    return body


def _disk_fills_on_records(monkeypatch):
    """Writing a ``.sha256`` file creates it, then the disk is full (ENOSPC), as on a real disk
    that the download just filled."""
    real = pathlib.Path.write_text

    def write_text(self, *args, **kwargs):
        if self.name.endswith(".sha256"):
            self.open("w").close()
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", write_text)


@pytest.mark.parametrize("record", ["", "\n", "3f2a", "not a checksum at all\n"])
def test_an_empty_or_torn_record_is_no_record_and_is_written_again(tmp_path, served, record):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / FNAME).write_bytes(served)  # an intact download
    (cache / RECORD).write_text(record)  # left by a disk that filled while it was written
    assert fetch("dsb2018", cache=cache, progress=False) == cache / FNAME  # not "damaged"
    assert (cache / RECORD).read_text() == hashlib.sha256(served).hexdigest() + "\n"
    assert sorted(p.name for p in cache.iterdir()) == sorted([FNAME, RECORD, f".{FNAME}.checked"])


def test_a_changed_file_is_still_called_damaged_against_its_record(tmp_path, served):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / FNAME).write_bytes(served)
    (cache / RECORD).write_text(hashlib.sha256(b"another file").hexdigest() + "\n")
    with pytest.raises(DownloadError, match="no longer matches the SHA-256 recorded in"):
        fetch("dsb2018", cache=cache, progress=False)


def test_a_disk_full_after_the_download_names_the_cache_and_leaves_no_empty_record(
    tmp_path, served, monkeypatch
):
    cache = tmp_path / "cache"
    with monkeypatch.context() as m:
        _disk_fills_on_records(m)
        with pytest.raises(WriteError) as info:
            fetch("dsb2018", cache=cache, progress=False, retries=0)
    message = str(info.value)
    assert f"in the cache folder {cache} (No space left on device)" in message
    assert "the download was kept" in message
    assert sorted(p.name for p in cache.iterdir()) == [FNAME]  # no empty record, no .part
    assert (cache / FNAME).read_bytes() == served
    # space again: the intact download is checked by its structure and recorded, not refetched
    assert fetch("dsb2018", cache=cache, progress=False) == cache / FNAME
    assert (cache / RECORD).read_text() == hashlib.sha256(served).hexdigest() + "\n"


def test_a_full_cache_during_the_download_is_named_as_the_cause(tmp_path, served, monkeypatch):
    import pooch

    def full(self, url, output_file, pooch_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", full)
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as info:
        fetch("dsb2018", cache=cache, progress=False, retries=0)
    assert f"cannot write into the cache folder {cache} (No space left on device)" in str(
        info.value
    )
    assert not cache.exists() or not any(cache.iterdir())
