"""Catalog flux units that neither FITS nor VOUnit defines, read back by astropy's own readers
(QA finding 2).

An image in electrons (HST: ``BUNIT = 'ELECTRONS'``, ``'ELECTRONS/S'``) or DN gives fluxes in
astropy's ``electron`` or ``DN``. The FITS catalog wrote them as ``TUNITn = 'electron'``, which
astropy's ``QTable.read`` gave back as an ``UnrecognizedUnit`` with a ``UnitsWarning`` per column;
the VOTable's quoted VOUnit came back as a unit of that name that converts to nothing.
"""

from __future__ import annotations

import io as _io
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.io.votable import parse, validate
from astropy.table import QTable, Table

from sciconv import io, postprocess
from sciconv.errors import ConfigError

FLUXES = ("flux_sum", "flux_mean", "flux", "background")
UNITS = ["electron", "electron / s", "DN", "DN / s"]


def _catalog(unit: str) -> Table:
    """measure()'s catalog of a frame in ``unit``: fluxes, a background, integer areas."""
    labels = np.zeros((40, 60), np.int32)
    labels[9:12, 19:22] = 1
    labels[30:35, 40:50] = 2
    return postprocess.measure(
        labels, intensity=np.full((40, 60), 3.0) * u.Unit(unit), background=0.5
    )


def _quiet_read(path, cls=QTable, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a UnitsWarning (or any) fails the read
        return cls.read(path, **kwargs)


@pytest.mark.parametrize("unit", UNITS)
def test_fits_catalog_fluxes_read_back_by_astropy_in_their_unit(tmp_path, unit):
    """QTable.read(fits)["flux"].to(u.electron / u.s) raised (UnrecognizedUnit), with
    UnitsWarnings; now quietly the unit, and the file has no TUNITn outside the standard: the
    TCOMMn says the unit instead (what TOPCAT shows)."""
    table = _catalog(unit)
    path = postprocess.write_catalog(table, tmp_path / "cat.fits")
    for cls in (QTable, Table):
        back = _quiet_read(path, cls)
        for name in FLUXES:
            assert back[name].unit == u.Unit(unit), (cls.__name__, name)
            np.testing.assert_allclose(u.Quantity(back[name]).to_value(unit), table[name])
    with fits.open(path) as hdul:
        hdul.verify("exception")
        header, names = hdul[1].header, hdul[1].columns.names
    for i, name in enumerate(names, start=1):
        if f"TUNIT{i}" in header:  # every unit written is a FITS unit
            assert u.Unit(header[f"TUNIT{i}"], format="fits") == table[name].unit, name
    for name in FLUXES:
        i = names.index(name) + 1
        assert f"TUNIT{i}" not in header
        assert header[f"TCOMM{i}"] == (
            f"{table[name].description} [{u.Unit(unit).to_string()}: astropy's unit name, "
            "not in the FITS standard]"
        )
    assert header[f"TUNIT{names.index('area') + 1}"] == "pix2"  # the others as astropy writes
    assert header[f"TFORM{names.index('area') + 1}"] == "K"  # integers stay integers


@pytest.mark.parametrize("unit", UNITS)
def test_votable_says_the_unit_and_read_catalog_restores_it(tmp_path, unit):
    """The quoted VOUnit is valid, but astropy's VOTable reader makes 'electron' a unit of its own:
    the FIELD's description says so, and read_catalog gives astropy's unit back."""
    from sciconv.postprocess._catalog import read_catalog

    table = _catalog(unit)
    path = postprocess.write_catalog(table, tmp_path / "cat.vot")
    report = _io.StringIO()
    assert validate(str(path), output=report), report.getvalue()
    fields = {f.name: f for f in parse(path).get_first_table().fields}
    for name in FLUXES:
        assert "'" in fields[name].unit.to_string("vounit")  # VOUnit's quoted form
        assert (
            fields[name].description.split()
            == (
                f"{table[name].description} [{u.Unit(unit).to_string()}: astropy's unit name, "
                "not in the VOUnit standard]"
            ).split()
        )
    plain = _quiet_read(path)  # astropy alone: a look-alike that converts to nothing
    with pytest.raises(u.UnitConversionError):
        plain["flux"].to(unit)
    back = read_catalog(path)
    for name in FLUXES:
        assert back[name].unit == u.Unit(unit), name
        assert back[name].description == table[name].description, name
    assert back["area"].unit == u.pix**2 and back["area"].dtype.kind == "i"


@pytest.mark.parametrize("ext", [".fits", ".vot", ".ecsv", ".csv"])
def test_read_catalog_round_trips_every_format(tmp_path, ext):
    """read_catalog gives write_catalog's columns back: units, descriptions, UCDs and integer
    dtypes (astropy's FITS reader makes every column with a unit float when a table holds a
    Quantity), quietly."""
    from sciconv.postprocess._catalog import read_catalog

    table = _catalog("electron / s")
    path = postprocess.write_catalog(table, tmp_path / f"cat{ext}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = read_catalog(path)
    if ext == ".csv":  # no units or metadata in CSV
        assert back.colnames == table.colnames and back["area"].dtype.kind == "i"
        return
    for name in table.colnames:
        assert back[name].unit == table[name].unit, name
        assert back[name].dtype.kind == table[name].dtype.kind, name
        assert back[name].description == table[name].description, name
        assert back[name].meta.get("ucd") == table[name].meta.get("ucd"), name


def test_read_catalog_reads_an_earlier_fits_catalog_quietly(tmp_path):
    """Catalogs written before kept TUNITn = 'electron / s': astropy reads it with a warning as
    an unrecognized unit; read_catalog as astropy's unit."""
    from sciconv.postprocess._catalog import read_catalog

    path = tmp_path / "old.fits"
    Table({"label": [1, 2], "flux": [3.0, 4.0]}).write(path)
    with fits.open(path, mode="update") as hdul:
        hdul[1].header["TUNIT2"] = "electron / s"
    with pytest.warns(u.UnitsWarning):
        assert isinstance(Table.read(path)["flux"].unit, u.UnrecognizedUnit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = read_catalog(path)
    assert back["flux"].unit == u.electron / u.s


def test_real_hst_catalog_fluxes_convert_to_electrons(tmp_path):
    """repro_2 on the bundled HST/ACS cutout (BUNIT = 'ELECTRONS'): FITS through astropy alone,
    VOTable and FITS through read_catalog, every flux convertible to u.electron."""
    from sciconv.postprocess._catalog import read_catalog

    hst = Path(__file__).parents[1] / "data" / "real" / "hst" / "j8bt06nyq_sci_cutout.fits"
    img = io.read(hst)
    labels = np.zeros(img.shape[:2], np.int32)
    labels[100:110, 100:110] = 1
    labels[200:212, 300:309] = 2
    table = postprocess.measure(labels, intensity=img, wcs=img.wcs)
    assert table["flux_sum"].unit == u.electron
    fits_path = postprocess.write_catalog(table, tmp_path / "cat.fits")
    assert _quiet_read(fits_path)["flux_sum"].to(u.electron).unit == u.electron
    for ext in (".fits", ".vot"):
        back = read_catalog(postprocess.write_catalog(table, tmp_path / f"both{ext}"))
        np.testing.assert_allclose(
            back["flux_sum"].quantity.to_value(u.electron), table["flux_sum"]
        )


def test_read_catalog_names_a_missing_or_damaged_file(tmp_path):
    with pytest.raises(ConfigError, match="catalog not found") as err:
        postprocess.read_catalog(tmp_path / "none.fits")
    assert err.value.path == str(tmp_path / "none.fits")
    bad = tmp_path / "bad.fits"
    bad.write_text("not a FITS file")
    with pytest.raises(ConfigError, match=r"cannot read it as a FITS catalog"):
        postprocess.read_catalog(bad)


def test_read_catalog_keeps_scaled_and_unsigned_columns_as_stored(tmp_path):
    """The integers given back were the stored ones before TSCALn/TZEROn (review): another
    tool's magnitudes in scaled int16 came back truncated (20.123 -> 20), and a uint32 id of
    3e9 in a catalog with electrons came back negative."""
    raw = np.array([123, 1456, -1], dtype=">i2")
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(name="mag", format="I", unit="mag", array=raw),
         fits.Column(name="flux", format="E", unit="adu", array=np.array([1.5, 2.5, 3.5]))]
    )  # fmt: skip
    hdu.header["TSCAL1"], hdu.header["TZERO1"] = 0.001, 20.0
    hdu.writeto(tmp_path / "other.fits")
    back = postprocess.read_catalog(tmp_path / "other.fits")
    np.testing.assert_allclose(back["mag"], [20.123, 21.456, 19.999], rtol=1e-6)
    table = Table()
    table["id"] = np.array([40_000, 3_000_000_000, 7], np.uint32)
    table["id"].unit = u.pix  # a unit: read as float beside a stored Quantity, then cast
    table["area"] = np.array([4, 9, 16])
    table["area"].unit = u.pix**2
    table["flux"] = np.array([1.0, 2.0, 3.0]) * u.electron
    path = postprocess.write_catalog(table, tmp_path / "cat.fits")
    back = postprocess.read_catalog(path)
    assert back["id"].dtype == np.uint32 and back["id"].tolist() == [40_000, 3_000_000_000, 7]
    assert back["area"].dtype.kind == "i" and back["flux"].unit == u.electron
