"""Catalogs say which band, night and zero point they measure (QA 56, finding 4): the image's
observation and photometric cards in ``meta``, constant ``filter`` / ``mjd_obs`` columns, and
every catalog format's round trip keeping both (a VOTable's INFO elements came back as one
``description`` string)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.votable import from_table, parse, tree
from astropy.table import Table, vstack
from astropy.time import Time

from sciconv.io import GridImage
from sciconv.io import read as read_image
from sciconv.postprocess import measure, read_catalog, with_provenance, write_catalog
from sciconv.postprocess._observation import (
    add_observation_columns,
    image_headers,
    observation_cards,
)

NIGHTS = ((60300.1, 28.40), (60301.1, 28.10))


def _night(mjd: float, zp: float, **extra) -> GridImage:
    """One night's r-band frame: a header as a CCD pipeline writes it."""
    header = fits.Header(
        {
            "TELESCOP": "SIMTEL",
            "INSTRUME": "SIMCAM",
            "OBJECT": "FIELD1",
            "FILTER": "r",
            "EXPTIME": 100.0,
            "MJD-OBS": mjd,
            "DATE-OBS": Time(mjd, format="mjd").isot,
            "BUNIT": "ADU",
            "GAIN": 2.0,
            "RDNOISE": 5.0,
            "SATURATE": 60000.0,
            "PHOTZP": zp,
            **extra,
        }
    )
    pixels = np.full((12, 14, 1), 5.0, np.float32)
    pixels[3:6, 4:8] = 50.0
    return GridImage(pixels, header=header)


def _labels() -> np.ndarray:
    labels = np.zeros((12, 14), np.int32)
    labels[3:6, 4:8] = 1
    labels[8:10, 2:4] = 2
    return labels


def _image(header: dict, channels: int = 1, primary: dict | None = None) -> GridImage:
    meta = {} if primary is None else {"primary": primary}
    pixels = np.zeros((4, 4, channels), np.float32)
    return GridImage(pixels, header=fits.Header(header), meta=meta)


# --------------------------------------------------------------------------------------------
# the cards and the columns


def test_observation_cards_own_header_first_then_the_primary_cards():
    img = _image(
        {"FILTER": "r", "GAIN": 2.0, "SATURATE": 6e4, "PHOTZP": 28.4, "MAGZPUNC": 0.02},
        primary={"FILTER": "g", "TELESCOP": "INT", "DATE-OBS": "2023-12-20", "EXPTIME": 30.0},
    )
    # the gain and saturation are the noise model's, not the photometry's: left out
    assert observation_cards(img) == {
        "FILTER": "r",
        "PHOTZP": 28.4,
        "MAGZPUNC": 0.02,
        "TELESCOP": "INT",
        "DATE-OBS": "2023-12-20",
        "EXPTIME": 30.0,
    }
    assert [dict(h) if h is not None else None for h in image_headers(img)][1]["FILTER"] == "g"
    assert observation_cards(np.zeros((4, 4))) == {}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"FILTER1": "CLEAR1L", "FILTER2": "F814W"}, "F814W"),  # HST/ACS: two wheels
        ({"FILTER1": "F606W", "FILTER2": "CLEAR2L"}, "F606W"),
        ({"FILTNAM1": "F555W", "FILTNAM2": ""}, "F555W"),  # WFPC2
        ({"FILTER1": "CLEAR1L", "FILTER2": "CLEAR2L"}, "CLEAR1L+CLEAR2L"),  # unfiltered
        ({"BAND": "r"}, "r"),  # DECam's short name
        # DECam's Community Pipeline: the band, not the whole description (which meta keeps)
        ({"FILTER": "r DECam SDSS c0002 6415.0 1480.0", "BAND": "r"}, "r"),
        ({"FILTER": "N964 DECam c0008 9645.0 94.0", "BAND": "N964"}, "N964"),
        # a BAND that is not FILTER's first word: FILTER, as it is
        (
            {"FILTER": "i DECam SDSS c0003 7835.0 1470.0", "BAND": "z"},
            "i DECam SDSS c0003 7835.0 1470.0",
        ),
        ({"FILTER": "r SDSS k1018"}, "r SDSS k1018"),  # no BAND: the whole FILTER
        ({"BAND": 1}, "1"),  # WISE's band number
    ],
)
def test_filter_column_from_the_missions_filter_cards(header, expected):
    table = add_observation_columns(Table({"label": [1, 2]}), _image(header))
    assert table["filter"].tolist() == [expected, expected]
    assert table["filter"].meta["ucd"] == "meta.id;instr.filter"
    assert table.meta == {k: v for k, v in header.items() if v != ""}  # a blank card: not kept


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"MJD-OBS": 60300.1, "DATE-OBS": "2000-01-01"}, 60300.1),  # MJD-OBS over DATE-OBS
        ({"EXPSTART": 52345.25}, 52345.25),  # HST
        ({"OBSMJD": 58500.5}, 58500.5),  # ZTF
        ({"DATE-OBS": "2023-12-20T02:24:00"}, 60298.1),
        ({"DATE-OBS": "2023-12-20", "TIME-OBS": "06:00:00"}, 60298.25),  # two cards (HST, JWST)
        ({"DATE-OBS": "2023-12-20T06:00:00", "TIMESYS": "TT"}, 60298.25),  # in its own scale
        ({"MJD-OBS": 0.0, "DATE-OBS": "2023-12-20"}, 60298.0),  # a placeholder MJD-OBS
    ],
)
def test_mjd_obs_column_from_mjd_or_converted_date(header, expected):
    table = add_observation_columns(Table({"label": [1]}), _image(header))
    assert table["mjd_obs"][0] == pytest.approx(expected, abs=1e-9)
    assert table["mjd_obs"].dtype == np.float64
    assert str(table["mjd_obs"].unit) == "d" and table["mjd_obs"].meta["ucd"] == "time.epoch"


def test_no_mjd_obs_column_for_a_date_that_is_none_but_the_card_is_kept():
    header = {"DATE-OBS": "2021-13-45T99:00:00", "TIMESYS": "UTC"}  # impossible
    table = add_observation_columns(Table({"label": [1]}), _image(header))
    assert "mjd_obs" not in table.colnames
    assert table.meta["DATE-OBS"] == "2021-13-45T99:00:00"
    table = add_observation_columns(
        Table({"label": [1]}), _image({"DATE-OBS": "2023-01-01", "TIMESYS": "GPS"})
    )
    assert "mjd_obs" not in table.colnames  # a scale astropy does not know: not converted


def test_a_future_utc_date_converts_quietly():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # erfa's "dubious year" past the leap-second table
        table = add_observation_columns(Table({"label": [1]}), _image({"DATE-OBS": "2031-01-01"}))
    assert table["mjd_obs"][0] == 62867.0


def test_a_cube_of_bands_gets_the_cards_but_no_constant_columns():
    table = add_observation_columns(
        Table({"label": [1]}), _image({"FILTER": "g", "MJD-OBS": 60300.1}, channels=2)
    )
    assert table.meta == {"FILTER": "g", "MJD-OBS": 60300.1}
    assert table.colnames == ["label"]


def test_existing_metadata_and_columns_are_kept():
    table = Table({"label": [1], "filter": ["mine"]}, meta={"FILTER": "mine"})
    add_observation_columns(table, _image({"FILTER": "r", "MJD-OBS": 60300.1}))
    assert table.meta["FILTER"] == "mine" and table["filter"].tolist() == ["mine"]
    assert table["mjd_obs"].tolist() == [60300.1]


def test_an_empty_catalog_gets_typed_columns():
    table = add_observation_columns(
        Table({"label": np.zeros(0, int)}), _image({"FILTER": "r", "MJD-OBS": 60300.1})
    )
    assert table["filter"].dtype.kind == "U" and table["mjd_obs"].dtype == np.float64


# --------------------------------------------------------------------------------------------
# measure (the hook) and the files


def test_measure_catalog_says_band_night_and_zero_point():
    img = _night(60300.1, 28.4)
    table = measure(_labels(), intensity=img)
    for key in ("FILTER", "MJD-OBS", "DATE-OBS", "EXPTIME", "TELESCOP", "INSTRUME", "OBJECT"):
        assert table.meta[key] == img.header[key], key
    assert table.meta["PHOTZP"] == 28.4
    assert "GAIN" not in table.meta and "RDNOISE" not in table.meta
    assert table["filter"].tolist() == ["r", "r"]
    assert table["mjd_obs"].tolist() == [60300.1, 60300.1]


def test_two_nights_stacked_stay_apart(tmp_path):
    catalogs = []
    for n, (mjd, zp) in enumerate(NIGHTS):
        table = measure(_labels(), intensity=_night(mjd, zp))
        table = with_provenance(table, None, source=f"/data/n{n}/field.fits")
        catalogs.append(read_catalog(write_catalog(table, tmp_path / f"n{n}.vot")))
    assert [c.meta["PHOTZP"] for c in catalogs] == [28.4, 28.1]
    assert [c.meta["MJD-OBS"] for c in catalogs] == [60300.1, 60301.1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy: the two meta's PHOTZP differ
        both = vstack(catalogs)
    assert both["mjd_obs"].tolist() == [60300.1] * 2 + [60301.1] * 2


def _catalog() -> Table:
    img = _night(60300.1, 28.4, BUNIT="ELECTRONS/S")  # a unit outside FITS and VOUnit too
    table = add_observation_columns(measure(_labels(), intensity=img), img)  # as measure does
    table.meta["HDU"] = 0
    table.meta["FLAGGED"] = True
    return with_provenance(
        table, ["sciconv prediction with model m.keras", "42"], source="/data/n0/field.fits"
    )


@pytest.mark.parametrize("ext", ["ecsv", "fits", "vot"])
def test_round_trip_keeps_the_metadata_and_columns(tmp_path, ext):
    table = _catalog()
    back = read_catalog(write_catalog(table, tmp_path / f"cat.{ext}"))
    assert dict(back.meta) == dict(table.meta)  # typed: PHOTZP 28.4, HDU 0, FLAGGED True
    assert back.colnames == table.colnames
    for name in ("filter", "mjd_obs", "flux_sum", "x"):
        assert back[name].tolist() == table[name].tolist(), name
        assert back[name].unit == table[name].unit, name
        assert back[name].description == table[name].description, name
        assert back[name].meta["ucd"] == table[name].meta["ucd"], name
    assert back["filter"].dtype.kind == "U"  # str, not a FITS table's bytes


def test_csv_keeps_the_constant_columns(tmp_path):
    back = read_catalog(write_catalog(_catalog(), tmp_path / "cat.csv"))
    assert back["filter"].tolist() == ["r", "r"]
    assert back["mjd_obs"].tolist() == [60300.1, 60300.1]


def test_written_files_carry_cards_infos_units_and_ucds(tmp_path):
    table = _catalog()
    header = fits.getheader(write_catalog(table, tmp_path / "cat.fits"), 1)
    assert header["FILTER"] == "r" and header["MJD-OBS"] == 60300.1 and header["PHOTZP"] == 28.4
    i = table.colnames.index("mjd_obs") + 1
    assert (header[f"TUNIT{i}"], header[f"TUCD{i}"]) == ("d", "time.epoch")
    assert header[f"TUCD{table.colnames.index('filter') + 1}"] == "meta.id;instr.filter"
    vot = parse(write_catalog(table, tmp_path / "cat.vot"))
    infos = {info.name: info.value for info in vot.resources[0].infos}
    assert infos["FILTER"] == "r" and infos["MJD-OBS"] == "60300.1" and infos["PHOTZP"] == "28.4"
    fields = {f.name: f for f in vot.get_first_table().fields}
    assert (fields["mjd_obs"].ucd, str(fields["mjd_obs"].unit)) == ("time.epoch", "d")
    assert (
        fields["filter"].ucd == "meta.id;instr.filter" and "filter" in fields["filter"].description
    )


def test_read_votable_of_another_tool_restores_resource_and_table_infos(tmp_path):
    votable = from_table(Table({"a": [1, 2]}))
    resource, table = votable.resources[0], votable.resources[0].tables[0]
    for name, value in (("SATURATE", "60000.0"), ("HISTORY", "one"), ("HISTORY", "2")):
        resource.infos.append(tree.Info(name=name, value=value))
    table.infos.append(tree.Info(name="QUERY_STATUS", value="OK"))
    table.infos.append(tree.Info(name="NOTE", value="007"))  # not how Python writes 7: text
    table.description = "a table of mine"
    path = tmp_path / "other.xml"
    votable.to_xml(str(path))
    assert read_catalog(path).meta == {
        "SATURATE": 60000.0,
        "HISTORY": ["one", "2"],  # HISTORY lines stay text
        "QUERY_STATUS": "OK",
        "NOTE": "007",
        "description": "a table of mine",  # not a repeat of the INFOs: kept
    }


def test_read_fits_moves_column_cards_onto_the_columns(tmp_path):
    path = tmp_path / "topcat.fits"
    hdu = fits.BinTableHDU.from_columns([fits.Column("mag", "E", array=np.array([20.5]))])
    hdu.header["TUCD1"], hdu.header["TCOMM1"] = "phot.mag", "r magnitude"
    hdu.header["FILTER"] = "r"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    back = read_catalog(path)
    assert dict(back.meta) == {"FILTER": "r"}
    assert back["mag"].meta["ucd"] == "phot.mag" and back["mag"].description == "r magnitude"


def test_extension_image_keeps_its_primary_observation_cards(tmp_path):
    """JWST keeps FILTER, DATE-OBS and TELESCOP in the primary header and PHOTMJSR in SCI."""
    primary = fits.PrimaryHDU()
    primary.header.update(
        {
            "TELESCOP": "JWST",
            "INSTRUME": "NIRCAM",
            "FILTER": "F200W",
            "DATE-OBS": "2023-01-02",
            "TIME-OBS": "12:00:00",
        }
    )
    sci = fits.ImageHDU(np.ones((12, 14), np.float32), name="SCI")
    sci.header["PHOTMJSR"] = 1.5
    path = tmp_path / "cal.fits"
    fits.HDUList([primary, sci]).writeto(path)
    img = read_image(path, hdu="SCI")
    table = measure(_labels(), intensity=img)
    assert table.meta["PHOTMJSR"] == 1.5 and table.meta["FILTER"] == "F200W"
    assert table["filter"].tolist() == ["F200W", "F200W"]
    assert table["mjd_obs"][0] == Time("2023-01-02T12:00:00").mjd


def test_a_catalog_with_a_filter_column_is_a_valid_votable(tmp_path):
    """QA 56 review, finding 2: the ``filter`` column's UCD was ``instr.filter``, a
    secondary-only UCD1+ word, so astropy's VOTable validator (and TOPCAT's) refused the
    catalog of every image whose header names a filter (W06)."""
    import io

    from astropy.io.votable import validate
    from astropy.io.votable.ucd import check_ucd

    table = _catalog()
    assert {"filter", "mjd_obs"} <= set(table.colnames)
    for name in ("filter", "mjd_obs"):
        assert check_ucd(table[name].meta["ucd"], check_controlled_vocabulary=True), name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = write_catalog(table, tmp_path / "cat.vot")
    report = io.StringIO()
    ok = validate(str(path), output=report)
    assert "W06" not in report.getvalue(), report.getvalue()
    assert ok, report.getvalue()


def test_decam_community_pipeline_catalog_has_band_and_magzero(tmp_path):
    """QA 56 review, finding 7: a DECam CP ``ooi`` CCD (FILTER a description, BAND the band
    and MAGZERO the zero point, all in the primary header) gave the whole FILTER string as
    ``filter`` and dropped MAGZERO; the catalog keeps both cards, a product drops MAGZERO."""
    from sciconv.io import write as write_image

    primary = fits.PrimaryHDU()
    primary.header.update(
        {
            "INSTRUME": "DECam",
            "FILTER": "r DECam SDSS c0002 6415.0 1480.0",
            "BAND": "r",
            "MJD-OBS": 58000.1,
            "EXPTIME": 90.0,
            "MAGZERO": 31.2,
        }
    )
    ccd = fits.ImageHDU(np.ones((12, 14), np.float32), name="S29")
    ccd.header.update({"CCDNUM": 1, "GAIN": 4.0})
    path = tmp_path / "c4d_170904_ooi_r_v1.fits"
    fits.HDUList([primary, ccd]).writeto(path)
    img = read_image(path, hdu="S29")
    table = measure(_labels(), intensity=img)
    assert table["filter"].tolist() == ["r", "r"]
    assert table.meta["FILTER"] == "r DECam SDSS c0002 6415.0 1480.0"
    assert table.meta["BAND"] == "r" and table.meta["MAGZERO"] == 31.2
    back = read_catalog(write_catalog(table, tmp_path / "cat.fits"))
    assert back.meta["MAGZERO"] == 31.2 and back["filter"].tolist() == ["r", "r"]
    # the zero point describes the input's pixel values: a product of another kind drops it
    image = GridImage(img.data, header=fits.Header({**dict(img.header), "MAGZERO": 31.2}))
    out = write_image(
        tmp_path / "prob.fits", np.full((12, 14), 0.5, np.float32), like=image, like_pixels=False
    )
    header = fits.getheader(out)
    assert "MAGZERO" not in header and "GAIN" not in header
