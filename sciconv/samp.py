"""Send catalogs and images to running Virtual Observatory tools (TOPCAT, Aladin, DS9) over SAMP.

SAMP (the IVOA Simple Application Messaging Protocol) links desktop tools through a hub that one
of them (TOPCAT, Aladin) starts. :func:`send` writes a table as a VOTable (``table.load.votable``)
or an image as FITS (``image.load.fits``) and broadcasts it; :func:`hub_running` says whether
there is a hub to send to. The SAMP machinery is ``pyvo.samp`` (``astropy.samp`` is deprecated
since astropy 8 and used only when pyvo is missing); only the local machine is contacted and
every call is bounded by ``timeout``.

Examples
--------
>>> from sciconv import samp
>>> samp.hub_running(timeout=1.0) in (True, False)
True
>>> from astropy.table import Table
>>> samp.send(Table({"ra": [10.68], "dec": [41.27]}))  # doctest: +SKIP
['cli#1']
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sciconv._warnings import caught
from sciconv.errors import ConfigError, SampHubError

__all__ = ["MTYPES", "SampHubError", "hub_running", "send"]

#: The SAMP message type sent for each kind of product.
MTYPES = {"table": "table.load.votable", "image": "image.load.fits"}
_TABLE_SUFFIXES = (".vot", ".votable", ".xml")
_IMAGE_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fits.fz")


def _samp():
    """``pyvo.samp``, else ``astropy.samp`` (deprecated in astropy 8; its warning silenced): a
    pyvo whose ``samp`` lacks ``SAMPHubError`` (pyvo 1.6) is passed over."""
    try:
        module = importlib.import_module("pyvo.samp")
    except ImportError:
        module = None
    if hasattr(module, "SAMPHubError"):
        return module
    with caught("ignore"):
        return importlib.import_module("astropy.samp")


@contextlib.contextmanager
def _bounded(timeout: float) -> Iterator[None]:
    """Socket operations (XML-RPC to the hub) give up after ``timeout`` seconds."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigError(f"timeout must be a positive number of seconds; got {timeout!r}")
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(float(timeout))
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


@contextlib.contextmanager
def _connected(client_name: str, hub_params: Mapping | None, timeout: float):
    samp = _samp()
    with _bounded(timeout):
        client = samp.SAMPIntegratedClient(name=client_name, callable=False)
        try:
            client.connect(hub_params=None if hub_params is None else dict(hub_params))
        except (samp.SAMPHubError, OSError) as err:
            raise SampHubError(
                "no SAMP hub is running (or it did not answer within "
                f"{timeout:g} s): start TOPCAT or Aladin, which run one, and try again"
            ) from err
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.disconnect()


def hub_running(*, hub_params: Mapping | None = None, timeout: float = 2.0) -> bool:
    """Whether a SAMP hub answers (the one named by ``SAMP_HUB`` or ``~/.samp`` by default).

    Parameters
    ----------
    hub_params : mapping, optional
        A particular hub's parameters (``SAMPHubServer.params``); default the running one.
    timeout : float, optional
        Seconds to wait for the hub. Default 2.

    Returns
    -------
    bool

    Examples
    --------
    >>> from sciconv.samp import hub_running
    >>> hub_running(timeout=1.0) in (True, False)
    True
    """
    try:
        with _connected("sciconv", hub_params, timeout):
            return True
    except SampHubError:
        return False


def _kind_of_path(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(_TABLE_SUFFIXES):
        return "table"
    if name.endswith(_IMAGE_SUFFIXES):
        return "image"
    raise ConfigError(
        f"cannot tell what {path.name!r} is: send a VOTable ({', '.join(_TABLE_SUFFIXES)}) or a "
        f"FITS image ({', '.join(_IMAGE_SUFFIXES)}), or pass the Table or image itself"
    )


def _to_file(product: Any, name: str) -> tuple[Path, str]:
    """(file, kind) for ``product``: written to a fresh temporary folder unless it is a path."""
    from astropy.table import Table

    if isinstance(product, (str, os.PathLike)):
        path = Path(product).resolve()
        if not path.is_file():
            raise ConfigError(f"no such file: {os.fspath(product)!r}")
        return path, _kind_of_path(path)
    # the receiving tool reads the file after the message: it must outlive this call
    folder = Path(tempfile.mkdtemp(prefix="sciconv-samp-"))
    if isinstance(product, Table):
        from sciconv.postprocess import write_catalog

        return write_catalog(product, folder / f"{name}.vot"), "table"
    from sciconv import io

    if hasattr(product, "to_hdu") and callable(product.to_hdu):  # CCDData
        path = folder / f"{name}.fits"
        product.write(path)
        return path, "image"
    data = io.as_array(product, load=True)
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "biuf":
        raise ConfigError(
            "send needs an astropy Table, an image (GridImage, NDData, numpy array) or a file "
            f"path; got {type(product).__name__}"
        )
    cards = None
    if io.is_nddata(product):  # its header, unit and whole WCS (SIP) as a GridImage keeps them
        full = product.wcs
        product = io.GridImage.from_nddata(product)
        data = io.as_array(product, load=True)
        if getattr(full, "naxis", 2) > 2 and data.ndim == 3 and data.shape[-1] > 1:
            cards = full.to_header(relax=True)  # a cube's spectral axis too (review)
    like = product if isinstance(product, io.GridImage) else None
    return io.write(folder / f"{name}.fits", data, like=like, header=cards), "image"


def send(
    table_or_image,
    *,
    name: str = "sciconv",
    client_name: str = "sciconv",
    hub_params: Mapping | None = None,
    timeout: float = 10.0,
) -> list[str]:
    """Broadcast a catalog or an image to the SAMP tools that are running (TOPCAT, Aladin, DS9).

    A table is written as a VOTable (with its units and UCDs, :func:`~sciconv.postprocess.
    write_catalog`) and sent as ``table.load.votable``; an image as FITS (with its header and
    WCS, :func:`sciconv.io.write`) and sent as ``image.load.fits``. The files are written to a new
    temporary folder and left there for the tools to read.

    Parameters
    ----------
    table_or_image : astropy.table.Table, GridImage, NDData, ndarray or path
        What to send. A path is sent as it is (a VOTable ``.vot``/``.votable``/``.xml`` or a FITS
        image ``.fits``...).
    name : str, optional
        The name the tools show (``samp.params["name"]``) and the file stem. Default "sciconv".
    client_name : str, optional
        The name sciconv registers with the hub. Default "sciconv".
    hub_params : mapping, optional
        A particular hub's parameters (e.g. ``SAMPHubServer.params``); default the running hub
        (``SAMP_HUB`` or ``~/.samp``).
    timeout : float, optional
        Seconds any exchange with the hub may take. Default 10.

    Returns
    -------
    list of str
        The SAMP ids of the clients subscribed to the message type (empty: nobody listens).

    Raises
    ------
    SampHubError
        No hub is running or it did not answer in time.
    ConfigError
        Something that is neither a table nor an image, an unknown file kind, a bad ``timeout``.

    Examples
    --------
    >>> import sciconv as sc
    >>> img = sc.io.read("data/sky/field.fits.fz")  # doctest: +SKIP
    >>> sc.samp.send(img, name="field")  # doctest: +SKIP
    ['c2']
    """
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise ConfigError(f"name must be a non-empty file name without folders; got {name!r}")
    with _bounded(timeout):  # refuse bad timeouts before writing anything
        pass
    path, kind = _to_file(table_or_image, name)
    mtype = MTYPES[kind]
    params = {"url": path.as_uri(), "name": name}
    params["table-id" if kind == "table" else "image-id"] = f"sciconv-{path.stem}"
    try:
        with _connected(client_name, hub_params, timeout) as client:
            recipients = sorted(client.get_subscribed_clients(mtype))
            client.notify_all({"samp.mtype": mtype, "samp.params": params})
    except BaseException:  # nothing sent: the copy is nobody's (QA: one left per retry)
        if not isinstance(table_or_image, (str, os.PathLike)):
            shutil.rmtree(path.parent, ignore_errors=True)
        raise
    return recipients
