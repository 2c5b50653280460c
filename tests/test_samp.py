"""SAMP: broadcasting catalogs and images to a hub (an in-process hub on localhost)."""

from __future__ import annotations

import tempfile
import threading

import numpy as np
import pytest
from astropy.table import Table

from sciconv import samp
from sciconv.errors import ConfigError


@pytest.fixture
def hub(tmp_path):
    """A private SAMP hub on localhost (no web profile), stopped afterwards."""
    module = samp._samp()
    server = module.SAMPHubServer(
        web_profile=False, mode="multiple", lockfile=str(tmp_path / "samp.lock"), addr="127.0.0.1"
    )
    server.start(wait=False)
    try:
        yield module, server
    finally:
        server.stop()


@pytest.fixture
def receiver(hub):
    """A client subscribed to table.load.votable and image.load.fits that records the messages."""
    module, server = hub
    got = []
    arrived = threading.Event()
    client = module.SAMPIntegratedClient(name="receiver", addr="127.0.0.1")
    client.connect(hub_params=server.params)

    def record(private_key, sender_id, msg_id, mtype, params, extra):
        got.append((mtype, params))
        arrived.set()

    try:
        for mtype in samp.MTYPES.values():
            client.bind_receive_notification(mtype, record)
        yield server, got, arrived
    finally:
        client.disconnect()


def test_send_broadcasts_a_catalog_as_votable(receiver):
    from astropy.io.votable import parse

    server, got, arrived = receiver
    table = Table({"ra": [10.68, 10.70], "dec": [41.27, 41.30]})
    table["ra"].unit = table["dec"].unit = "deg"
    table["ra"].meta["ucd"] = "pos.eq.ra;meta.main"
    recipients = samp.send(table, name="m31", hub_params=server.params, timeout=5)
    assert len(recipients) == 1
    assert arrived.wait(5)
    mtype, params = got[0]
    assert mtype == "table.load.votable" and params["name"] == "m31"
    path = params["url"].removeprefix("file://")
    fields = parse(path).get_first_table().fields
    assert fields[0].ucd == "pos.eq.ra;meta.main" and str(fields[0].unit) == "deg"
    assert Table.read(path)["dec"].tolist() == [41.27, 41.30]


def test_send_broadcasts_an_image_as_fits(receiver):
    from sciconv import io

    server, got, arrived = receiver
    samp.send(np.ones((4, 5), np.float32), name="ones", hub_params=server.params, timeout=5)
    assert arrived.wait(5)
    mtype, params = got[0]
    assert mtype == "image.load.fits"
    assert io.read(params["url"].removeprefix("file://")).shape == (4, 5, 1)


def test_hub_running_and_no_hub_error(hub, tmp_path, monkeypatch):
    _, server = hub
    assert samp.hub_running(hub_params=server.params, timeout=2)
    # no hub: SAMP_HUB names a lock file that does not exist
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:file://{tmp_path / 'none.lock'}")
    assert not samp.hub_running(timeout=1)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where send writes its copies
    with pytest.raises(samp.SampHubError, match="no SAMP hub is running"):
        samp.send(Table({"a": [1]}), timeout=1)
    assert not list(tmp_path.glob("sciconv-samp-*"))  # nothing sent: no copy left (QA)


def test_send_an_nddata_keeps_its_unit_header_and_distortion(receiver):
    """QA: an NDData was sent as its WCS's standard cards only: no SIP (CTYPE1 RA---TAN), no
    BUNIT, no header; and a header's BUNIT contradicting the NDData's unit won."""
    from astropy.io import fits
    from astropy.nddata import NDData
    from astropy.wcs import WCS

    server, got, arrived = receiver
    header = fits.Header({"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRVAL1": 10.0})
    header.update({"CRVAL2": 5.0, "CRPIX1": 3.0, "CRPIX2": 2.0, "CDELT1": -1e-4, "CDELT2": 1e-4})
    header.update({"A_ORDER": 2, "A_2_0": 1e-5, "B_ORDER": 2, "B_0_2": 1e-5, "BUNIT": "adu"})
    header.update({"OBJECT": "M31", "EXPTIME": 30.0})
    nd = NDData(np.ones((4, 5)), wcs=WCS(header), unit="electron/s", meta=header)
    samp.send(nd, name="nd", hub_params=server.params, timeout=5)
    assert arrived.wait(5)
    sent = fits.getheader(got[0][1]["url"].removeprefix("file://"))
    assert sent["CTYPE1"] == "RA---TAN-SIP" and sent["A_2_0"] == 1e-5
    assert (sent["BUNIT"], sent["OBJECT"], sent["EXPTIME"]) == ("electron / s", "M31", 30.0)
    cube = WCS(naxis=3)  # a cube keeps its spectral axis (review)
    cube.wcs.ctype = ["RA---TAN", "DEC--TAN", "FREQ"]
    cube.wcs.cdelt = [-1e-4, 1e-4, 1e6]
    arrived.clear()
    samp.send(NDData(np.ones((3, 4, 5)), wcs=cube), name="cube", hub_params=server.params)
    assert arrived.wait(5)
    sent = fits.getheader(got[-1][1]["url"].removeprefix("file://"))
    assert (sent["NAXIS3"], sent["CTYPE3"]) == (3, "FREQ")


def test_send_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="timeout must be a positive"):
        samp.send(Table({"a": [1]}), timeout=0)
    with pytest.raises(ConfigError, match="cannot tell what"):
        (tmp_path / "notes.txt").write_text("x")
        samp.send(tmp_path / "notes.txt")
    with pytest.raises(ConfigError, match="send needs an astropy Table"):
        samp.send({"a": 1})


def test_a_pyvo_without_samphuberror_falls_back_to_astropy_samp(tmp_path, monkeypatch):
    """pyvo 1.6's ``samp`` has a client but no ``SAMPHubError`` (nor hub): ``hub_running`` died
    in an AttributeError there (QA floors). Such a pyvo is passed over for astropy.samp."""
    import sys
    import types

    old = types.ModuleType("pyvo.samp")  # what pyvo 1.6 has: a client, no hub, no hub error
    old.SAMPIntegratedClient = object
    monkeypatch.setitem(sys.modules, "pyvo.samp", old)
    assert samp._samp().__name__ == "astropy.samp"
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:file://{tmp_path / 'none.lock'}")
    assert samp.hub_running(timeout=1) is False
