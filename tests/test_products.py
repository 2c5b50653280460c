"""Prediction products with their bad-pixel mask and uncertainty: FITS (CCDData), TIFF, OME-Zarr."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty, VarianceUncertainty
from astropy.table import Table
from astropy.wcs import WCS

from sciconv import io, postprocess
from sciconv.errors import ConfigError, InvalidImageError, OutputExistsError
from sciconv.io import GridImage, PixelScale

H, W = 40, 48


@pytest.fixture(scope="module")
def product():
    """A two-class probability cube, its labels, a mask, a std-dev per class, an input with WCS."""
    labels = np.zeros((H, W), np.int32)
    labels[5:12, 6:15] = 1
    labels[20:30, 25:40] = 2
    fg = (labels > 0).astype(np.float32) * 0.9 + 0.05
    prob = np.stack([1 - fg, fg], axis=-1)
    mask = np.zeros((H, W), bool)
    mask[0:3, 40:44] = True
    prob[mask] = np.nan  # masked pixels are NaN in probability maps
    rng = np.random.default_rng(0)
    unc = rng.uniform(0.0, 0.3, (H, W, 2)).astype(np.float32)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.1, 2.2]
    wcs.wcs.crpix = [24.5, 20.5]
    wcs.wcs.cdelt = [-0.05 / 3600, 0.05 / 3600]
    header = wcs.to_header()
    header["TELESCOP"] = "HST"
    header["BUNIT"] = "ELECTRONS"  # the input's unit: not the products'
    like = GridImage(np.ones((H, W, 1), np.float32), header=header, wcs=wcs)
    return {"prob": prob, "labels": labels, "mask": mask, "unc": unc, "like": like, "wcs": wcs}


def _same_sky(a, b):
    px = np.array([0.0, 17.0, W - 1.0])
    for p, q in zip(a.pixel_to_world_values(px, px[::-1]), b.pixel_to_world_values(px, px[::-1])):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-10)


def test_fits_products_carry_mask_and_uncertainty_as_ccddata_reads_them(tmp_path, product):
    p = product
    paths = postprocess.write_products(
        tmp_path,
        prob=p["prob"],
        labels=p["labels"],
        mask=p["mask"],
        uncertainty=StdDevUncertainty(p["unc"]),
        like=p["like"],
        stem="field",
        model="m.keras",
    )
    assert set(paths) == {"prob", "labels"}
    ccd = CCDData.read(paths["prob"], unit=u.one)
    np.testing.assert_array_equal(ccd.data, np.moveaxis(p["prob"], -1, 0))
    assert isinstance(ccd.uncertainty, StdDevUncertainty)
    np.testing.assert_array_equal(ccd.uncertainty.array, np.moveaxis(p["unc"], -1, 0))
    assert ccd.mask.shape == (2, H, W)
    np.testing.assert_array_equal(ccd.mask[0], p["mask"])
    np.testing.assert_array_equal(ccd.mask[1], p["mask"])
    _same_sky(ccd.wcs.celestial, p["wcs"])
    assert ccd.header["TELESCOP"] == "HST" and ccd.header["CLASS1"] == "foreground"
    assert "BUNIT" not in ccd.header  # probabilities are dimensionless
    assert any("m.keras" in str(h) for h in ccd.header["HISTORY"])
    with fits.open(paths["prob"]) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "MASK", "UNCERT"]
        assert hdul["MASK"].data.dtype == np.uint8
        assert hdul["UNCERT"].header["UTYPE"] == "StdDevUncertainty"
        # its planes are named as the primary's (they were anonymous)
        assert (hdul["UNCERT"].header["CLASS0"], hdul["UNCERT"].header["CLASS1"]) == (
            "background",
            "foreground",
        )
        assert "1-sigma spread" in str(hdul["UNCERT"].header["COMMENT"])
        for ext in ("MASK", "UNCERT"):  # each extension opens on the sky by itself (DS9)
            _same_sky(WCS(hdul[ext].header).celestial, p["wcs"])
    labels = CCDData.read(paths["labels"], unit=u.one)
    np.testing.assert_array_equal(labels.data, p["labels"])
    np.testing.assert_array_equal(labels.mask, p["mask"])
    assert labels.uncertainty is None
    _same_sky(labels.wcs.celestial, p["wcs"])
    # sciconv reads its own product back as the (H, W, K) cube
    np.testing.assert_array_equal(io.read(paths["prob"]).data, p["prob"])


def test_tiff_products_write_mask_and_uncertainty_files(tmp_path, product):
    p = product
    paths = postprocess.write_products(
        tmp_path,
        prob=p["prob"],
        mask=p["mask"][..., None],
        uncertainty=p["unc"],
        format="tiff",
    )
    assert {k: v.name for k, v in paths.items()} == {
        "prob": "prediction_prob.tif",
        "mask": "prediction_mask.tif",
        "uncert": "prediction_uncert.tif",
    }
    mask = io.read(paths["mask"])
    assert mask.meta["dtype"] == "uint8"
    np.testing.assert_array_equal(mask.data[..., 0], p["mask"])
    np.testing.assert_array_equal(io.read(paths["uncert"]).data, p["unc"])


def test_ome_zarr_products_hold_labels_and_mask_as_ngff_label_groups(tmp_path, product):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    p = product
    paths = postprocess.write_products(
        tmp_path,
        prob=p["prob"],
        labels=p["labels"],
        mask=p["mask"],
        uncertainty=p["unc"],
        stem="cells",
        format="ome-zarr",
        model="nuclei",
    )
    store = tmp_path / "cells.ome.zarr"
    assert paths["prob"] == store and paths["labels"] == store / "labels" / "instances"
    assert paths["mask"] == store / "labels" / "mask"
    nodes = list(Reader(parse_url(str(store)))())
    image = nodes[0]
    assert [a["name"] for a in image.metadata["axes"]] == ["c", "y", "x"]
    np.testing.assert_array_equal(
        np.asarray(image.data[0]), np.moveaxis(p["prob"], -1, 0)
    )  # NaN where masked, kept as NaN
    found = {  # ome-zarr's reader finds the NGFF labels (its "Label" spec: image-label metadata)
        n.zarr.path.rstrip("/").rsplit("/", 1)[-1]: n
        for n in nodes
        if any(type(s).__name__ == "Label" for s in n.specs)
    }
    assert set(found) == {"instances", "mask"}
    np.testing.assert_array_equal(np.asarray(found["instances"].data[0]), p["labels"])
    np.testing.assert_array_equal(np.asarray(found["mask"].data[0]), p["mask"].astype(np.uint8))
    np.testing.assert_array_equal(io.read(paths["labels"]).data[..., 0], p["labels"])
    np.testing.assert_array_equal(io.read(paths["uncert"]).data, p["unc"])
    # a microscope image's pixel size reaches the uncertainty store too (it was scale 1, no
    # unit: the error bars did not line up with the image in napari)
    micro = GridImage(np.ones((H, W, 1), np.float32), meta={"pixel_size": (0.4, 0.4),
                                                           "pixel_unit": "µm"})  # fmt: skip
    sized = postprocess.write_products(
        tmp_path.parent / f"{tmp_path.name}_sized", prob=p["prob"], uncertainty=p["unc"],
        like=micro, stem="cells", format="ome-zarr",
    )  # fmt: skip
    for key in ("prob", "uncert"):
        assert io.read(sized[key]).pixel_scale == PixelScale(0.4, 0.4, "um"), key
    import zarr

    attrs = dict(zarr.open_group(str(store), mode="r").attrs)["sciconv"]
    assert attrs["class_names"] == ["background", "foreground"]
    assert "sciconv prediction with model nuclei" in attrs["history"]
    # no overwrite without asking, nothing half-written left behind, overwrite replaces
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        postprocess.write_products(tmp_path, labels=p["labels"], like=p["like"], stem="cells",
                                   format="ome-zarr")  # fmt: skip
    again = postprocess.write_products(
        tmp_path, labels=p["labels"] * 2, like=p["like"], stem="cells", format="ome-zarr",
        overwrite=True,
    )  # fmt: skip
    assert set(again) == {"labels"}
    assert io.read(store).shape == (H, W, 1)  # the image is like's pixels now
    assert int(io.read(again["labels"]).data.max()) == 4
    assert sorted(x.name for x in tmp_path.iterdir()) == ["cells.ome.zarr", "cells_uncert.ome.zarr"]


def test_catalog_format_picks_the_catalog_writer(tmp_path, product):
    from astropy.io.votable import parse

    table = postprocess.measure(product["labels"], wcs=product["wcs"])
    paths = postprocess.write_products(tmp_path, catalog=table, catalog_format="votable")
    fields = {f.name: f for f in parse(paths["catalog"]).get_first_table().fields}
    assert paths["catalog"].name == "prediction_catalog.vot"
    assert fields["ra"].ucd == "pos.eq.ra;meta.main" and fields["dec"].ucd == "pos.eq.dec;meta.main"
    fits_cat = postprocess.write_products(tmp_path, catalog=table, catalog_format="fits")
    assert fits_cat["catalog"].name == "prediction_catalog.fits"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"mask": np.zeros((H, W), bool), "catalog": Table({"label": [1]})},
            ConfigError,
            "give prob= or labels= too",
        ),
        ({"labels": True, "mask": np.zeros((4, 4), bool)}, InvalidImageError, r"mask must have"),
        ({"labels": True, "uncertainty": np.ones((H, W, 2))}, ConfigError, "give prob= too"),
        ({"prob": True, "uncertainty": np.ones((H, W, 3))}, InvalidImageError, "shape of the prob"),
        ({"prob": True, "uncertainty": -np.ones((H, W, 2))}, InvalidImageError, "negative"),
        (
            {"prob": True, "uncertainty": VarianceUncertainty(np.ones((H, W, 2)))},
            ConfigError,
            "standard deviation",
        ),
        ({"labels": True, "format": "ome-zarr"}, ConfigError, "give prob= or like="),
        ({"prob": True, "format": "zarr"}, ConfigError, r"did you mean 'ome-zarr'"),
        ({"prob": True, "catalog_format": "vot"}, ConfigError, r"catalog_format must be one of"),
    ],
)
def test_write_products_bad_mask_uncertainty_and_formats(tmp_path, product, kwargs, error, match):
    kwargs = dict(kwargs)
    for key in ("prob", "labels"):
        if kwargs.get(key) is True:
            kwargs[key] = product[key]
    with pytest.raises(error, match=match):
        postprocess.write_products(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("catalog_format", ["votable", "fits", "ecsv"])
def test_catalogs_of_an_electron_image_validate_and_read_back_quietly(
    tmp_path, product, catalog_format
):
    """The catalog of an HST frame (BUNIT = 'ELECTRONS') failed astropy's VOTable validator
    (W06 on the background UCD, W50 on 'electron'), and its background had no unit."""
    import io as _io
    import warnings

    from astropy.io.votable import validate

    like = GridImage(  # as io.read gives an HST frame: BUNIT read as astropy's electron
        np.full((H, W, 1), 3.0, np.float32), wcs=product["wcs"], meta={"bunit": "ELECTRONS"}
    )
    assert like.unit == u.electron
    table = postprocess.measure(
        product["labels"], intensity=like, wcs=product["wcs"], background=0.25, mask=product["mask"]
    )
    assert table["background"].unit == u.electron
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = postprocess.write_products(
            tmp_path, labels=product["labels"], catalog=table, catalog_format=catalog_format
        )
        # FITS has no unit for electrons: astropy reads its TUNIT quietly only when told so
        quiet = {"unit_parse_strict": "silent"} if catalog_format == "fits" else {}
        back = Table.read(paths["catalog"], **quiet)
    for name in ("flux_sum", "flux_mean", "flux", "background"):
        assert u.Unit(str(back[name].unit)) == u.electron, name
    if catalog_format == "votable":
        report = _io.StringIO()
        assert validate(str(paths["catalog"]), output=report), report.getvalue()


def test_tiff_products_name_their_probability_planes(tmp_path):
    """TIFF probability and uncertainty products read back with their planes named (the names
    were only in the description's history text), and io.write's channel_names= round-trips
    through TIFF and OME-TIFF."""
    prob = np.full((16, 12, 3), 1 / 3, np.float32)
    written = postprocess.write_products(
        tmp_path, prob=prob, uncertainty=prob * 0.1, stem="c", format="tiff"
    )
    for key in ("prob", "uncert"):
        assert io.read(written[key]).meta["channel_names"] == ["background", "interior", "boundary"]
    for name in ("two.tif", "two.ome.tif"):
        path = io.write(tmp_path / name, prob[..., :2], channel_names=["DAPI", "GFP"])
        assert io.read(path).meta["channel_names"] == ["DAPI", "GFP"]
    with pytest.raises(ConfigError, match="2 channel names for 3 channels"):
        io.write(tmp_path / "bad.tif", prob, channel_names=["DAPI", "GFP"])


@pytest.mark.parametrize("catalog_format", ["ecsv", "votable", "fits"])
def test_catalogs_record_what_made_them(tmp_path, catalog_format):
    """Catalogs recorded no version, model, settings or input (QA: a catalog apart from its
    images could not be traced): SOFTWARE, INPUT and the image products' HISTORY lines now, as
    ECSV metadata, FITS cards and VOTable INFO elements."""
    from astropy.io.votable import parse

    labels = np.zeros((16, 16), np.int32)
    labels[2:6, 2:6] = 1
    like = io.GridImage(np.ones((16, 16, 1), np.float32), path=str(tmp_path / "field.fits"))
    table = postprocess.measure(labels)
    written = postprocess.write_products(
        tmp_path, labels=labels, catalog=table, like=like, stem="f", model="best.keras",
        params={"tile": 256}, catalog_format=catalog_format, format="tiff",
    )  # fmt: skip
    path = written["catalog"]
    if catalog_format == "votable":
        infos = parse(str(path), verify="exception").resources[0].infos
        meta = {}
        for info in infos:
            meta.setdefault(info.name, []).append(info.value)
        meta = {k: v if k == "HISTORY" else v[0] for k, v in meta.items()}
    elif catalog_format == "fits":
        header = fits.getheader(path, 1)
        meta = {k: header[k] for k in ("SOFTWARE", "INPUT")}
        meta["HISTORY"] = [str(line) for line in header["HISTORY"]]
    else:
        meta = Table.read(path).meta
    assert meta["SOFTWARE"].startswith("sciconv ") and meta["INPUT"] == "field.fits"
    assert meta["HISTORY"][:2] == ["sciconv prediction with model best.keras", "  tile = 256"]
    assert "INPUT" not in table.meta  # the caller's table is left as it was
    # a name with an accent, and a HISTORY string a table already had (review: a FITS
    # catalog lost the whole list; the string was split into characters)
    table.meta["HISTORY"] = "made by photutils"
    like = io.GridImage(np.ones((16, 16, 1), np.float32), path=str(tmp_path / "Zellkern_ä.tif"))
    path = postprocess.write_products(
        tmp_path / "accent", labels=labels, catalog=table, like=like, stem="z",
        model="jürgen.keras", catalog_format="fits", format="tiff",
    )["catalog"]  # fmt: skip
    header = fits.getheader(path, 1)
    history = [str(line) for line in header["HISTORY"]]
    assert history[0] == "made by photutils" and "j" in history[1] and "Zellkern" in header["INPUT"]
    # the input's name escaped, not transliterated into another file's (QA: 'Zellkern_a.tif')
    assert header["INPUT"] == "Zellkern_\\xe4.tif"


def test_shipped_model_products_record_its_digest(capsys, tmp_path):
    """The shipped model was identified by the sciconv version alone, though its settings
    changed twice within 0.1.0 (QA): products could not be told apart and --skip-existing took
    old ones for current. Its weights' and settings' digest is recorded now."""
    from pathlib import Path

    from _helpers import run_cli

    from sciconv import models

    nuclei = sorted((Path(__file__).resolve().parents[1] / "data/real/nuclei/images").glob("*"))
    code, _, err = run_cli(capsys, "predict", "pretrained:nuclei", nuclei[0], "--out", tmp_path,
                           "--quiet")  # fmt: skip
    assert code == 0, err
    digest = models.pretrained_digest("nuclei")
    assert digest.startswith("sha256:") and len(digest) == 7 + 16
    history = Table.read(next(tmp_path.glob("*_catalog.ecsv"))).meta["HISTORY"]
    assert any(digest in line and "model_id" in line for line in history)
